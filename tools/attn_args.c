/* attn_args.c - strict option parsing for the `attn` subcommands: numbers must be consumed
 * entirely (no "12abc", no "", no hex surprises for integers), be in range and finite, and every
 * error names the option. */
#include "attn_args.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int arg_error(const char *opt, const char *fmt, const char *s)
{
    fprintf(stderr, "attn: %s: ", opt);
    fprintf(stderr, fmt, s);
    fputc('\n', stderr);
    return -1;
}

int attn_arg_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return arg_error(name, "%s", "missing value");
    *val = argv[++*i];
    return 1;
}

int attn_arg_flag(char **argv, int i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[i], name, n) != 0)
        return 0;
    if (argv[i][n] == '\0')
        return 1;
    if (argv[i][n] == '=')
        return arg_error(name, "%s", "takes no value");
    return 0;
}

/* strtod/strtoll accept leading blanks; an option value with them is a typo, not a number. */
static int starts_badly(const char *s)
{
    return *s == '\0' || *s == ' ' || *s == '\t' || *s == '\n';
}

int attn_parse_f64(const char *opt, const char *s, double lo, double hi, double *out)
{
    if (starts_badly(s))
        return arg_error(opt, "'%s' is not a number", s);
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*end != '\0')
        return arg_error(opt, "'%s' is not a number", s);
    if (!isfinite(x) || errno == ERANGE)
        return arg_error(opt, "'%s' is not a finite number in range", s);
    if (x < lo || x > hi) {
        fprintf(stderr, "attn: %s: %s is out of range [%g, %g]\n", opt, s, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int attn_parse_f32_nonzero(const char *opt, const char *s, double lo, float *out)
{
    double x;
    if (attn_parse_f64(opt, s, lo, FLT_MAX, &x))
        return -1;
    if ((float)x == 0.0f) {
        fprintf(stderr, "attn: %s: %s is 0 in f32; leave the option out for the default\n", opt,
                s);
        return -1;
    }
    *out = (float)x;
    return 0;
}

int attn_parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (starts_badly(s))
        return arg_error(opt, "'%s' is not an integer", s);
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (*end != '\0')
        return arg_error(opt, "'%s' is not an integer", s);
    if (errno == ERANGE || x < lo || x > hi) {
        fprintf(stderr, "attn: %s: %s is out of range [%" PRId64 ", %" PRId64 "]\n", opt, s, lo,
                hi);
        return -1;
    }
    *out = x;
    return 0;
}

int attn_parse_choice(const char *opt, const char *s, const char *const *names, int *out)
{
    for (int k = 0; names[k]; k++)
        if (strcmp(s, names[k]) == 0) {
            *out = k;
            return 0;
        }
    fprintf(stderr, "attn: %s: unknown value '%s' (one of:", opt, s);
    for (int k = 0; names[k]; k++)
        fprintf(stderr, " %s", names[k]);
    fprintf(stderr, ")\n");
    return -1;
}
