/* check_run_files.h - what the suites that drive `attn run` / `attn compare` on .npy files
 * share: calling a command in-process, inputs on an exact grid, .npy files in the test's
 * directory, head-major copies, bit-exact checks. */
#ifndef ATTN_CHECK_RUN_FILES_H_
#define ATTN_CHECK_RUN_FILES_H_

#include "attn/attn.h"
#include "attn_cmds.h"
#include "attn_npy.h"
#include "test_files.h"

#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int rf_call(int (*cmd)(int, char **), ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, cmd);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        ck_assert_int_lt(argc, 63);
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    return cmd(argc, argv);
}
#define RF_RUN(...) rf_call(attn_cmd_run, "run", __VA_ARGS__, (char *)NULL)
#define RF_COMPARE(...) rf_call(attn_cmd_compare, "compare", __VA_ARGS__, (char *)NULL)

/* n values uniform in [-1, 1) on a 2^-6 grid (exact in every storage dtype), times scale. */
static inline float *rf_grid(uint64_t *state, int64_t n, float scale)
{
    float *x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    ck_assert(x);
    for (int64_t i = 0; i < n; i++) {
        *state = *state * 6364136223846793005u + 1442695040888963407u;
        x[i] = scale * (float)((int)(*state >> 57) - 64) / 64.0f;
    }
    return x;
}

static inline void rf_save(const char *name, int ndim, const int64_t *shape, const float *x)
{
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_save(tpath(name), ATTN_NPY_F32, ndim, shape, x, err) == 0, "%s", err);
}

/* Load a file and check its dtype and shape; returns its data (the caller frees a). */
static inline void *rf_load(const char *name, attn_npy_dtype t, int ndim, const int64_t *shape,
                            attn_npy *a)
{
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_load(tpath(name), a, err) == 0, "%s", err);
    ck_assert_int_eq(a->dtype, t);
    ck_assert_int_eq(a->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_int_eq(a->shape[d], shape[d]);
    return a->data;
}

/* a[0 .. n) has the bits of b[0 .. n) (what: the name in the message). */
static inline void rf_assert_same_f32(const float *a, const float *b, int64_t n,
                                      const char *what)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], 4) == 0, "%s[%lld]: %.9g vs %.9g", what,
                      (long long)i, a[i], b[i]);
}

/* The f32 file `name` (dims ndim, shape) holds exactly want[0 .. n). */
static inline void rf_assert_file_f32(const char *name, int ndim, const int64_t *shape,
                                      const float *want, int64_t n)
{
    attn_npy a;
    rf_assert_same_f32(rf_load(name, ATTN_NPY_F32, ndim, shape, &a), want, n, name);
    attn_npy_free(&a);
}

/* The f64 file `name` holds exactly want[0 .. n). */
static inline void rf_assert_file_f64(const char *name, int ndim, const int64_t *shape,
                                      const double *want, int64_t n)
{
    attn_npy a;
    const double *got = rf_load(name, ATTN_NPY_F64, ndim, shape, &a);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s[%lld]: %.17g vs %.17g", name, (long long)i,
                      got[i], want[i]);
    attn_npy_free(&a);
}

/* A file the command writes: its name, dims and shape, and its element count. */
typedef struct rf_file {
    const char *name;
    int ndim;
    const int64_t *shape;
    int64_t n;
} rf_file;

/* Each of the n files holds exactly the f32 values w[i]. */
static inline void rf_assert_files_f32(const rf_file *files, int n, float *const *w)
{
    for (int i = 0; i < n; i++)
        rf_assert_file_f32(files[i].name, files[i].ndim, files[i].shape, w[i], files[i].n);
}

/* Each of the n files holds exactly the f64 values w[i]. */
static inline void rf_assert_files_f64(const rf_file *files, int n, double *const *w)
{
    for (int i = 0; i < n; i++)
        rf_assert_file_f64(files[i].name, files[i].ndim, files[i].shape, w[i], files[i].n);
}

/* [B, S, H, D] elements of esz bytes -> a new [B, H, S, D] copy (the caller frees it). */
static inline void *rf_to_bhsd(const void *x, size_t esz, int64_t B, int64_t S, int64_t H,
                               int64_t D)
{
    unsigned char *y = malloc(esz * (size_t)(B * S * H * D));
    ck_assert(y);
    const unsigned char *src = x;
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t h = 0; h < H; h++)
                memcpy(y + esz * (size_t)(((b * H + h) * S + s) * D),
                       src + esz * (size_t)(((b * S + s) * H + h) * D), esz * (size_t)D);
    return y;
}

/* A backend that opens (opencl may have no device). */
static inline int rf_backend_opens(const char *name)
{
    attn_backend *be;
    if (attn_backend_open(name, NULL, &be) != ATTN_OK)
        return 0;
    attn_backend_close(be);
    return 1;
}

/* rc of a run with gradients on `backend`: 1 when it ran, 0 when the backend has no backward
 * yet (unsupported: the caller skips it); any other failure fails the test. */
static inline int rf_ran_backward(const char *backend, int rc)
{
    if (rc != 0 && strstr(attn_last_error(), "backward") != NULL)
        return 0;
    ck_assert_msg(rc == 0, "%s: %s", backend, attn_last_error());
    return 1;
}

/* A backward run suite: the three tests in one case, each in its own temporary directory. */
static inline Suite *rf_backward_suite(const char *name, const TTest *direct, const TTest *f64,
                                       const TTest *errors)
{
    Suite *s = suite_create(name);
    TCase *r = tcase_create("run");
    tcase_add_checked_fixture(r, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(r, direct);
    tcase_add_test(r, f64);
    tcase_add_test(r, errors);
    suite_add_tcase(s, r);
    return s;
}

#endif /* ATTN_CHECK_RUN_FILES_H_ */
