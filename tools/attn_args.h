/* attn_args.h - command-line option helpers shared by the `attn` subcommands: option matching
 * ("--name value" and "--name=value") and strict number parsing with range checks.
 * Errors are printed to stderr as "attn: --name: message". */
#ifndef ATTN_ARGS_H_
#define ATTN_ARGS_H_

#include "attn/attn.h"

#include <stdint.h>

/* Does argv[*i] name option `name`? Returns 1 and sets *val (and advances *i past a separate
 * value) for "--name value" / "--name=value"; 0 if argv[*i] is another option; -1 (printed) if
 * the value is missing. */
int attn_arg_value(int argc, char **argv, int *i, const char *name, const char **val);
/* Does argv[*i] equal the flag `name` exactly? ("--name=..." is an error, printed, -1.) */
int attn_arg_flag(char **argv, int i, const char *name);

/* Strict parsers: the whole string must be a number in [lo, hi] (finite for doubles).
 * Return 0, or -1 after printing "attn: <opt>: ..." to stderr. */
int attn_parse_f64(const char *opt, const char *s, double lo, double hi, double *out);
int attn_parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
/* A descriptor's float field (scale, eps: 0 there selects the default): a number in
 * [lo, FLT_MAX] that is not 0 once rounded to f32. */
int attn_parse_f32_nonzero(const char *opt, const char *s, double lo, float *out);
/* s must be one of the NULL-terminated names; *out = its index. */
int attn_parse_choice(const char *opt, const char *s, const char *const *names, int *out);

#endif /* ATTN_ARGS_H_ */
