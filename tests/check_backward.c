/* check_backward.c - the backward suites' shared device runs, gradient views and comparisons
 * (see check_backward.h). */
#include "check_backward.h"

#include "attn/attn_opencl.h"
#include "attn_half.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int attn_test_have_opencl(const char *test)
{
#ifdef ATTN_HAVE_OPENCL /* a build without OpenCL has no device query to link */
    int n = 0;
    if (attn_opencl_devices(NULL, 0, &n) == ATTN_OK && n > 0)
        return 1;
#endif
    printf("SKIPPED %s: no OpenCL device\n", test);
    return 0;
}

attn_backend *attn_test_open_opencl(int chunk)
{
    char opts[256] = "";
    const char *env = getenv("ATTN_TEST_OPENCL_OPTIONS");
    if (chunk)
        snprintf(opts, sizeof opts, "chunk=%d%s%s", chunk, env ? "," : "", env ? env : "");
    else if (env)
        snprintf(opts, sizeof opts, "%s", env);
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open("opencl", opts[0] ? opts : NULL, &be) == ATTN_OK, "%s",
                  attn_last_error());
    return be;
}

attn_backend *attn_test_opencl_or_skip(const char *test)
{
    return attn_test_have_opencl(test) ? attn_test_open_opencl(0) : NULL;
}

static void strides_of(const int64_t *sh, int layout, int64_t st[4])
{
    const int64_t dp = sh[3] + 3, f = layout == ATTN_VT_STEP2 ? 2 : 1;
    const int64_t dense[4] = {f * sh[1] * sh[2] * sh[3], f * sh[2] * sh[3], f * sh[3], f};
    const int64_t pad[4] = {sh[2] * sh[1] * dp, dp, sh[1] * dp, 1};
    memcpy(st, layout == ATTN_VT_BHSD_PAD ? pad : dense, sizeof dense);
}

attn_vt attn_vt_new(const float *src, const int64_t *sh, attn_dtype dt, int layout)
{
    attn_vt r;
    int64_t st[4], n = 1;
    strides_of(sh, layout, st);
    for (int i = 0; i < 4; i++)
        n += (sh[i] - 1) * st[i];
    r.bytes = (size_t)(n > 0 ? n : 1) * attn_dtype_size(dt);
    r.data = malloc(r.bytes);
    ck_assert(r.data != NULL);
    memset(r.data, 0xff, r.bytes);
    if (src) {
        ATTN_VT_EACH(sh, st, attn_store_f64(r.data, dt, vi, src[di]);)
    }
    r.t = attn_tensor_bshd(r.data, dt, sh[0], sh[1], sh[2], sh[3]);
    memcpy(r.t.stride, st, sizeof st);
    return r;
}

double attn_grad_ulp(attn_dtype dt)
{
    return dt == ATTN_F16 ? 0x1p-11 : dt == ATTN_BF16 ? 0x1p-8 : 0x1p-24;
}

static int within(double g, double ref, double bound, int nonfinite)
{
    if (nonfinite && isnan(ref))
        return isnan(g);
    if (nonfinite && isinf(ref))
        return g == ref;
    return !isnan(g) && fabs(g - ref) <= bound;
}

void attn_vt_expect_close(const attn_vt *got, const int64_t *sh, const double *ref,
                          const double *mag, attn_close_rule rule, const char *name, int k)
{
    const attn_dtype dt = got->t.dtype;
    const size_t esz = attn_dtype_size(dt);
    unsigned char *seen = calloc(got->bytes, 1);
    ck_assert(seen != NULL);
    ATTN_VT_EACH(sh, got->t.stride, {
        const double g = attn_load_f64(got->data, dt, vi);
        const double bound = rule.tol * mag[di] + attn_grad_ulp(dt) * fabs(ref[di]) + rule.floor;
        ck_assert_msg(within(g, ref[di], bound, rule.nonfinite),
                      "case %d %s[%lld,%lld,%lld,%lld] = %.9g, reference %.9g (bound %.3g)", k,
                      name, (long long)i0, (long long)i1, (long long)i2, (long long)i3, g,
                      ref[di], bound);
        memset(seen + (size_t)vi * esz, 1, esz);
    })
    const unsigned char *b = got->data;
    for (size_t i = 0; i < got->bytes; i++)
        ck_assert_msg(seen[i] || b[i] == 0xff, "case %d %s: byte %zu between elements written",
                      k, name, i);
    free(seen);
}

void attn_vt_expect_same_bits(const attn_vt *a, const attn_vt *b, const char *name, int k)
{
    ck_assert_msg(memcmp(a->data, b->data, a->bytes) == 0,
                  "case %d %s: a second run gave other bits", k, name);
}

double *attn_test_dalloc(int64_t n)
{
    double *a = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    ck_assert(a != NULL);
    return a;
}

attn_tensor attn_test_on_device(attn_backend *be, const attn_tensor *h, size_t bytes,
                                attn_buffer **buf)
{
    ck_assert(attn_buffer_alloc(be, bytes + 64, buf) == ATTN_OK);
    ck_assert(attn_buffer_write(*buf, 64, h->data, bytes) == ATTN_OK);
    attn_tensor t = *h;
    t.data = NULL;
    t.buffer = *buf;
    t.offset = 64;
    return t;
}

void attn_test_expect_device_grads(attn_buffer **bufs, int nin, const attn_vt *host0,
                                   attn_vt *host1, int ng)
{
    for (int i = 0; i < ng; i++) {
        ck_assert(attn_buffer_read(bufs[nin + i], 64, host1[i].data, host1[i].bytes) == ATTN_OK);
        ck_assert_msg(memcmp(host0[i].data, host1[i].data, host0[i].bytes) == 0,
                      "gradient %d differs between device and host memory", i);
    }
    for (int i = 0; i < nin + ng; i++)
        attn_buffer_free(bufs[i]);
}

Suite *attn_backward_device_suite(const char *name, const char *tcase, double timeout,
                                  const TTest *loop, int n, const TTest *device,
                                  const TTest *names)
{
    Suite *s = suite_create(name);
    TCase *tc = tcase_create(tcase);
    tcase_set_timeout(tc, timeout);
    tcase_add_loop_test(tc, loop, 0, n);
    tcase_add_test(tc, device);
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    return s;
}
