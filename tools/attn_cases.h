/* attn_cases.h - helpers every op's case grammar shares (bounded string building, whole-token
 * numbers and choices, error messages). The op-neutral case type, parsing and lists are in
 * attn_conform.h. */
#ifndef ATTN_CASES_H_
#define ATTN_CASES_H_

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

#endif /* ATTN_CASES_H_ */
