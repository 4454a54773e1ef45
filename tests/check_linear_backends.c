/* check_linear_backends.c - every backend of this build (ref, cpu, opencl) on the same linear
 * attention cases through the shared fixture (linear_fixture.h): the sampled family (host and
 * device memory), the chunk lengths of the fast backends (option chunk=), split-and-resume
 * (state out, then state in, equals one call) on every backend, and the cpu kernel with a shift
 * (rattention's residual branch) against the reference. Under sanitizers (ATTN_TEST_QUICK=1)
 * every fourth family case runs. A backend this build or machine lacks is skipped. */
#include "linear_fixture.h"

#include "attn_fill.h"
#include "linear_ref.h"
#ifdef ATTN_HAVE_CPU
#include "cpu/cpu_linear.h"
#endif

#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const struct {
    const char *backend;
    int device_mem, thin;
} runs[] = {{"ref", 0, 3}, {"cpu", 0, 1}, {"cpu", 1, 3}, {"opencl", 1, 2}, {"opencl", 0, 5}};
enum { N_RUNS = sizeof runs / sizeof runs[0] };

static int available(const char *backend)
{
    return linear_fx_available(backend);
}

static int step(void)
{
    return getenv("ATTN_TEST_QUICK") ? 4 : 1;
}

START_TEST(family_on_backend)
{
    if (!available(runs[_i].backend))
        return;
    const linear_fx x = {runs[_i].backend, NULL, runs[_i].device_mem};
    char name[300];
    for (int k = _i % runs[_i].thin; k < linear_fx_family_count(); k += runs[_i].thin * step())
        linear_fx_expect_pass(&x, linear_fx_family(k, name, sizeof name));
}
END_TEST

/* Chunk lengths from 1 to more than the sequence, on lengths around them. */
START_TEST(chunk_options)
{
    static const char *const opts[] = {"chunk=1", "chunk=7", "chunk=64", "chunk=128",
                                       "chunk=256"};
    static const char *const cases[] = {
        "linear b1 s300 hq4 hkv2 d32 feature=softmax_pair norm=0 causal=1 state=inout",
        "linear b1 s129 hq2 hkv1 d16 feature=elu1 norm=1 causal=1 decay=slopes state=out",
        "linear b2 s65 hq2 hkv2 d16 feature=relu_pair norm=0 causal=0 state=inout"};
    const char *backend = _i < 5 ? "cpu" : "opencl";
    if (!available(backend) || (_i >= 5 && _i % 5 == 0)) /* opencl: chunk=1 is slow to build */
        return;
    const linear_fx x = {backend, opts[_i % 5], backend[0] == 'o'};
    for (int c = 0; c < 3; c++)
        linear_fx_expect_pass(&x, cases[c]);
}
END_TEST

/* _i over backends x cases x split points. */
START_TEST(split_resume)
{
    static const char *const backends[] = {"ref", "cpu", "opencl"};
    static const char *const cases[] = {
        "linear b2 s100 hq4 hkv2 d16 feature=elu1 norm=1 causal=1",
        "linear b1 s100 hq2 hkv1 d16 feature=softmax_pair norm=0 causal=1 decay=slopes",
        "linear b1 s100 hq2 hkv2 dk16 dv8 feature=relu_pair norm=0 causal=1 decay=0.9"};
    static const int64_t splits[] = {0, 1, 37, 64, 99, 100};
    const char *backend = backends[_i % 3];
    if (!available(backend))
        return;
    const linear_fx x = {backend, NULL, 0};
    const attn_linear_case c = linear_fx_parse(cases[_i / 3 % 3]);
    for (int s = 0; s < 6; s++) {
        const double e = linear_fx_split_resume(&x, &c, splits[s]);
        ck_assert_msg(e < 2e-5, "%s on %s split at %lld: relative difference %g", cases[_i / 3],
                      backend, (long long)splits[s], e);
    }
}
END_TEST

#ifdef ATTN_HAVE_CPU
/* The cpu kernel with shift s (rattention's residual branch: query i sees keys j <= i - s)
 * against the reference, out and final state, every paired map, with and without state. */
START_TEST(cpu_shift)
{
    enum { S = 150, HQ = 4, HKV = 2, D = 16, DF = 32 };
    const int64_t shift = (int64_t[]){1, 5, 64, 149, 150, 200}[_i % 6];
    float *m = calloc((size_t)(S * HQ * D * 2 + S * HKV * D * 2 + 3 * HKV * DF * D), 4);
    ck_assert(m);
    attn_tensor q = attn_tensor_bshd(m, ATTN_F32, 1, S, HQ, D);
    attn_tensor k = attn_tensor_bshd(m + S * HQ * D, ATTN_F32, 1, S, HKV, D);
    attn_tensor v = attn_tensor_bshd(m + S * HQ * D + S * HKV * D, ATTN_F32, 1, S, HKV, D);
    attn_tensor o = attn_tensor_bshd(m + S * HQ * D + 2 * S * HKV * D, ATTN_F32, 1, S, HQ, D);
    float *sm = m + 2 * S * HQ * D + 2 * S * HKV * D;
    attn_tensor si = attn_tensor_bshd(sm, ATTN_F32, 1, HKV, DF, D);
    attn_tensor so = attn_tensor_bshd(sm + HKV * DF * D, ATTN_F32, 1, HKV, DF, D);
    attn_fill_tensor(&q, ATTN_FILL_UNIFORM, 3, ATTN_FILL_Q);
    attn_fill_tensor(&k, ATTN_FILL_UNIFORM, 3, ATTN_FILL_K);
    attn_fill_tensor(&v, ATTN_FILL_UNIFORM, 3, ATTN_FILL_V);
    attn_fill_tensor(&si, ATTN_FILL_UNIFORM, 3, (attn_fill_id)6);
    attn_linear_desc d = attn_linear_desc_default();
    d.normalize = 0;
    d.feature = _i / 6 % 2 ? ATTN_LINEAR_RELU_PAIR : ATTN_LINEAR_SOFTMAX_PAIR;
    const attn_linear_state st = {_i >= 12 ? &si : NULL, NULL, &so, NULL};
    attn_linear_problem p;
    ck_assert_int_eq(attn_linear_validate(&d, &q, &k, &v, &o, &st, &p), ATTN_OK);
    p.shift = shift;
    ck_assert_int_eq(attn_cpu_linear_chunked(&p, 2, 64), ATTN_OK);
    double *gold = calloc((size_t)(S * HQ * D + HKV * DF * D), sizeof(double));
    ck_assert(gold);
    attn_linear_ref_out r = {gold, gold + S * HQ * D, NULL, NULL, NULL, NULL};
    ck_assert_int_eq(attn_ref_linear(&p, &r), ATTN_OK);
    const float *got[2] = {o.data, so.data};
    const int64_t n[2] = {S * HQ * D, HKV * DF * D};
    for (int t = 0; t < 2; t++) {
        const double *g = t ? r.state : r.out;
        double mx = 1e-30;
        for (int64_t i = 0; i < n[t]; i++)
            mx = fmax(mx, fabs(g[i]));
        for (int64_t i = 0; i < n[t]; i++)
            ck_assert_msg(fabs(got[t][i] - g[i]) <= 1e-5 * mx, "shift %lld %s[%lld]: %g vs %g",
                          (long long)shift, t ? "state" : "out", (long long)i, got[t][i], g[i]);
    }
    attn_linear_problem_release(&p);
    free(gold);
    free(m);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("linear_backends");
    TCase *tc = tcase_create("backends");
    tcase_set_timeout(tc, 1200);
    tcase_add_loop_test(tc, family_on_backend, 0, N_RUNS);
    tcase_add_loop_test(tc, chunk_options, 0, 10);
    tcase_add_loop_test(tc, split_resume, 0, 9);
#ifdef ATTN_HAVE_CPU
    tcase_add_loop_test(tc, cpu_shift, 0, 24);
#endif
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
