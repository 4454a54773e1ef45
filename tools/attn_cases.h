/* attn_cases.h - helpers every op's case grammar shares (bounded string building, whole-token
 * numbers, choices, sizes and dtype lists, token dispatch and its error messages). The op-neutral case type, parsing and lists are in
 * attn_conform.h. */
#ifndef ATTN_CASES_H_
#define ATTN_CASES_H_

#include "attn/attn_core.h"

#include <stddef.h>
#include <stdint.h>

/* Appends to a bounded buffer; remembers the full length like snprintf. */
typedef struct attn_sbuf {
    char *p;
    size_t size, len;
} attn_sbuf;

void attn_sb_add(attn_sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write a message to err (when err and n) and return -1. */
int attn_perr(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Whole-string integer / finite real in [lo, hi]: 0, or -1. */
int attn_tok_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
int attn_tok_real(const char *s, double lo, double hi, double *out);
/* Index of s in a NULL-terminated list of names, or -1. */
int attn_tok_choice(const char *s, const char *const *names);
/* A descriptor factor (scale, cap): 0, or a magnitude in [1e-30, 1e30] not below lo, normal in
 * float and double so that its %.9g spelling parses back to it. 0, or -1. */
int attn_tok_factor(const char *s, double lo, double *out);
/* dt=a:b:...: up to max dtype names (each of `names`, NULL-terminated) between colons into
 * out[]; the count read, or -1 (an unknown or empty name, too many). */
int attn_tok_dtypes(const char *s, const char *const *names, int max, int *out);
/* dt=q:kv:out, or one dtype for all three: 0, or -1. */
int attn_tok_dtypes_qkv(const char *s, const char *const *names, attn_dtype *q, attn_dtype *kv,
                        attn_dtype *out);

/* Size tokens: a prefix and digits in [1, 2^40] ("hkv2", "d64"), stored at the int64 fields at
 * byte offsets off and off2 of the case (equal for one field; "d" sets dk and dv). */
typedef struct attn_tok_size_key {
    const char *prefix;
    size_t off, off2;
} attn_tok_size_key;
/* keys[] tried in order (longer prefixes first): 1 consumed, 0 no prefix matches, -1 bad size. */
int attn_tok_size(const char *tok, const attn_tok_size_key *keys, size_t n, void *c);

/* One token of a case name: a "key=value" token is split in place and its value returned (tok
 * is then the key), a bare token gives NULL. */
char *attn_tok_split(char *tok);
/* The token function's answer from its parser's r (1 consumed, 0 unknown key or token, -1 bad
 * value or size; val from attn_tok_split): 0, or -1 with the message in err. */
int attn_tok_verdict(int r, const char *tok, const char *val, char *err, size_t errsize);

#endif /* ATTN_CASES_H_ */
