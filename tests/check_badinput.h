/* check_badinput.h - what every op's bad-input table shares: the row type over the op's call
 * set-up, the verdict of one malformed call (its specific status with a readable message), and
 * the check that an output was left untouched. */
#ifndef ATTN_CHECK_BADINPUT_H_
#define ATTN_CHECK_BADINPUT_H_

#include "attn/attn.h"

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A row: what it breaks, the mutation of a valid set-up T, the status the call must return. */
#define ATTN_BAD_ROW(T)                                                                          \
    struct {                                                                                     \
        const char *name;                                                                        \
        void (*mutate)(T *);                                                                     \
        attn_status want;                                                                        \
    }

/* The call of row `name` on `backend` returned `want` and left a message. */
static inline void attn_bad_expect(attn_status st, attn_status want, const char *name,
                                   const char *backend)
{
    ck_assert_msg(st == want && strlen(attn_last_error()) > 10,
                  "%s on %s: got %s ('%s'), want %s with a message", name, backend,
                  attn_status_name(st), attn_last_error(), attn_status_name(want));
}

/* Every byte of an output still the poison byte it was filled with. */
static inline void attn_bad_untouched(const void *p, size_t n, unsigned char poison,
                                      const char *name, const char *what)
{
    for (size_t b = 0; b < n; b++)
        ck_assert_msg(((const unsigned char *)p)[b] == poison, "%s: %s written", name, what);
}

/* Whether this build and machine can open a backend; says why on stderr when not (no OpenCL
 * platform, a backend not built), so a skipped table is visible in the log. */
static inline int attn_bad_available(const char *backend)
{
    attn_backend *be = NULL;
    if (attn_backend_open(backend, NULL, &be) != ATTN_OK) {
        fprintf(stderr, "skipping backend %s: %s\n", backend, attn_last_error());
        return 0;
    }
    attn_backend_close(be);
    return 1;
}

/* The backends every table runs on (skipped where attn_bad_available says no). */
enum { ATTN_BAD_N_BACKENDS = 3 };
static inline const char *attn_bad_backend(int i)
{
    static const char *const names[ATTN_BAD_N_BACKENDS] = {"ref", "cpu", "opencl"};
    return names[i];
}

/* The valid call on `backend` ran (st ATTN_OK) or said it is unsupported. */
static inline void attn_bad_valid(attn_status st, const char *backend)
{
    ck_assert_msg(st == ATTN_OK || st == ATTN_ERR_UNSUPPORTED, "%s: %s", backend,
                  attn_last_error());
}

/* Every f32 element of an output written over its poison (which reads as about 1.5e16). */
static inline void attn_bad_written(const float *p, int64_t n, unsigned char poison,
                                    const char *backend, const char *what)
{
    float bad;
    memset(&bad, poison, sizeof bad);
    for (int64_t e = 0; e < n; e++)
        ck_assert_msg(p[e] != bad, "%s: %s[%lld] not written", backend, what, (long long)e);
}

/* A table's suite: the rows on every backend, then the valid call on every backend. */
static inline Suite *attn_bad_suite(const char *name, const TTest *rows, int n_rows,
                                    const TTest *valid)
{
    Suite *s = suite_create(name);
    TCase *tc = tcase_create("rows");
    tcase_add_loop_test(tc, rows, 0, n_rows * ATTN_BAD_N_BACKENDS);
    tcase_add_loop_test(tc, valid, 0, ATTN_BAD_N_BACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

#endif /* ATTN_CHECK_BADINPUT_H_ */
