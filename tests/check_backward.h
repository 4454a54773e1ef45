/* check_backward.h - what the backward suites on a device share: the OpenCL backend under
 * test (or a skip without a device), gradient tensors in a chosen dtype and layout whose gaps
 * show any stray write, the comparison of a gradient with the f64 reference within its
 * condition scale, device copies of host operands and the bit-for-bit checks (a second run,
 * device against host memory), the suites' common case. */
#ifndef ATTN_CHECK_BACKWARD_H_
#define ATTN_CHECK_BACKWARD_H_

#include "attn/attn.h"

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* 1 when an OpenCL device is present; else prints the skip of `test` and returns 0. */
int attn_test_have_opencl(const char *test);

/* The OpenCL backend with option chunk= (0: the default) and ATTN_TEST_OPENCL_OPTIONS added
 * (e.g. a GPU's work-group size for a run under a simulator). */
attn_backend *attn_test_open_opencl(int chunk);

/* attn_test_open_opencl(0), or NULL (the skip of `test` printed) without a device. */
attn_backend *attn_test_opencl_or_skip(const char *test);

/* Layouts of a view: [B,S,H,D]; [B,H,S,D+3]; [B,S,H,D] every 2nd element. */
enum { ATTN_VT_DENSE, ATTN_VT_BHSD_PAD, ATTN_VT_STEP2 };

/* A tensor with its own allocation (bytes: the whole of it, gaps included). */
typedef struct attn_vt {
    void *data;
    size_t bytes;
    attn_tensor t;
} attn_vt;

/* For each element of shape sh with strides st: i0..i3, its dense index di and its index in
 * the view vi. */
#define ATTN_VT_EACH(sh, st, body)                                                          \
    for (int64_t i0 = 0; i0 < (sh)[0]; i0++)                                                \
        for (int64_t i1 = 0; i1 < (sh)[1]; i1++)                                            \
            for (int64_t i2 = 0; i2 < (sh)[2]; i2++)                                        \
                for (int64_t i3 = 0; i3 < (sh)[3]; i3++) {                                  \
                    const int64_t di = ((i0 * (sh)[1] + i1) * (sh)[2] + i2) * (sh)[3] + i3; \
                    const int64_t vi =                                                      \
                        i0 * (st)[0] + i1 * (st)[1] + i2 * (st)[2] + i3 * (st)[3];           \
                    body                                                                    \
                }

/* A tensor of shape sh in layout `layout` holding src (dense f32; NULL: all bytes 0xff, a NaN
 * in every float dtype, so an unwritten element shows). */
attn_vt attn_vt_new(const float *src, const int64_t *sh, attn_dtype dt, int layout);

/* Unit roundoff of a gradient dtype. */
double attn_grad_ulp(attn_dtype dt);

/* How close a gradient must be: tol * its condition scale + its dtype's rounding of the
 * reference + floor; nonfinite: NaN exactly where the reference is NaN and its infinities
 * (otherwise never NaN). */
typedef struct attn_close_rule {
    double tol, floor;
    int nonfinite;
} attn_close_rule;

/* Every element of got (shape sh) against ref within the rule; every byte between the
 * elements untouched (0xff). Messages name case k and the gradient. */
void attn_vt_expect_close(const attn_vt *got, const int64_t *sh, const double *ref,
                          const double *mag, attn_close_rule rule, const char *name, int k);

/* Two runs of case k wrote the same bits into a and b (gradient `name`). */
void attn_vt_expect_same_bits(const attn_vt *a, const attn_vt *b, const char *name, int k);

/* n zeroed doubles (at least one). */
double *attn_test_dalloc(int64_t n);

/* A device copy of `bytes` bytes of a host tensor's memory, at byte offset 64 of a new buffer. */
attn_tensor attn_test_on_device(attn_backend *be, const attn_tensor *h, size_t bytes,
                                attn_buffer **buf);

/* Gradients 0 .. ng read back from bufs[nin + i] (offset 64) into host1[i] have the bits of
 * host0[i]; then every buffer (nin inputs, ng gradients) is freed. */
void attn_test_expect_device_grads(attn_buffer **bufs, int nin, const attn_vt *host0,
                                   attn_vt *host1, int ng);

/* A device suite's one case `tcase` (timeout seconds): the loop test over cases 0 .. n, then
 * the device-memory test and the capability-and-name test. */
Suite *attn_backward_device_suite(const char *name, const char *tcase, double timeout,
                                  const TTest *loop, int n, const TTest *device,
                                  const TTest *names);

#endif
