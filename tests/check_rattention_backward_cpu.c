/* check_rattention_backward_cpu.c - the cpu backend's RATTENTION backward (recomputed branches,
 * the norms' backward, SDPA's and linear attention's backward kernels) through the public call
 * against the f64 ground truth attn_ref_rattention_backward on the same (rounded) inputs:
 * windows -1, 0, small, S - 1 and past the sequence, both feature maps and RoPE layouts,
 * position offsets, GQA and MQA, gains given or not (and their gradients asked or not),
 * initial and final states' gradients, f16/bf16 inputs and gradients, strided views, lengths
 * that are no multiple of the residual chunk, several chunk lengths; bit-identical gradients
 * on 1, 2 and 3 threads; the implementation name.
 *
 * Tolerance, per gradient relative to its largest magnitude: 16 u32 sqrt(S) (u32 = 2^-24)
 * (the errors of f32 sums over up to S terms grow like sqrt(S); the norms' and the softmax's
 * backward add a few roundings per term), plus one rounding of the gradient's dtype (f16/bf16
 * gradients are rounded once on store). Measured: f32 gradients use at most 1/8 of it (most
 * below 1/20), rounded bf16 ones up to 0.77. */
#include "check_run.h"
#include "rattention_fixture.h"

#include "attn_half.h"
#include "attn_rng.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SP ATTN_LINEAR_SOFTMAX_PAIR
#define RP ATTN_LINEAR_RELU_PAIR
#define IL ATTN_ROPE_INTERLEAVED
#define HF ATTN_ROPE_HALF

typedef struct bcase {
    int64_t B, S, Hq, Hkv, Dk, Dv, window, offset;
    attn_linear_feature feature;
    attn_rope_layout rope;
    int gammas;          /* gains given in io */
    int dgammas;         /* their gradients asked */
    int state_in;        /* state_in given, d_state_in asked */
    int state_out;       /* d_state_out given */
    attn_dtype in, grad; /* q, k, v and dout; dq, dk, dv */
    int strided;         /* q, k, v, dout, dq, dk, dv as padded BHSD views */
} bcase;

static const bcase cases[] = {
    {1, 13, 4, 2, 8, 6, 3, 5, SP, IL, 1, 1, 1, 1, ATTN_F32, ATTN_F32, 0},
    {1, 9, 3, 1, 8, 8, -1, 0, RP, HF, 1, 1, 1, 0, ATTN_F32, ATTN_F32, 0},     /* MQA, no window */
    {1, 7, 2, 2, 16, 16, 0, 0, SP, HF, 0, 1, 0, 0, ATTN_F32, ATTN_F32, 0},    /* w 0, gain 1 */
    {1, 9, 2, 1, 16, 8, 20, 0, SP, IL, 1, 1, 0, 1, ATTN_F32, ATTN_F32, 0},    /* w past S */
    {1, 20, 2, 1, 8, 8, 19, 3, RP, IL, 1, 0, 1, 1, ATTN_F32, ATTN_F32, 0},    /* w = S - 1 */
    {2, 150, 4, 2, 32, 32, 17, 1000, RP, IL, 1, 1, 1, 1, ATTN_F32, ATTN_F32, 0},
    {2, 150, 4, 2, 32, 32, 17, 0, SP, HF, 1, 1, 0, 1, ATTN_F32, ATTN_F32, 0}, /* no S0 */
    {1, 33, 4, 2, 32, 32, 5, 3, SP, HF, 1, 1, 0, 1, ATTN_F16, ATTN_F16, 0},
    {1, 33, 4, 2, 32, 32, 5, 0, RP, IL, 0, 1, 1, 0, ATTN_BF16, ATTN_BF16, 1},
    {1, 100, 2, 2, 16, 24, 8, 7, SP, IL, 1, 1, 1, 1, ATTN_F32, ATTN_F32, 1},
    {1, 70, 4, 4, 16, 16, 6, 0, SP, HF, 1, 1, 1, 1, ATTN_F16, ATTN_F32, 0},
    {1, 300, 8, 2, 64, 64, 40, 1000, SP, IL, 1, 1, 1, 1, ATTN_F32, ATTN_F32, 0},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

enum { PAD = 3 }; /* elements after each row of a strided view */

/* A problem: the fixture's tensors (its out is dout), the gradients and d_state_out. */
typedef struct bx {
    ratt_fx f;
    attn_rattention_desc d;
    attn_tensor dq, dk, dv, dgs, dgr, dsin, dsout;
    attn_rattention_grads g;
    void *mem[7];
} bx;

/* A [b, s, h, d] view of fresh memory filled with the byte 0x5a (BHSD with padded rows when
 * strided). */
static attn_tensor view(void **mem, attn_dtype dt, int strided, int64_t b, int64_t s, int64_t h,
                        int64_t d)
{
    const int64_t row = strided ? d + PAD : d, n = b * s * h * row + 1;
    *mem = malloc((size_t)n * attn_dtype_size(dt));
    ck_assert_ptr_nonnull(*mem);
    memset(*mem, 0x5a, (size_t)n * attn_dtype_size(dt));
    attn_tensor t = attn_tensor_bshd(*mem, dt, b, s, h, d);
    if (strided) {
        t.stride[0] = h * s * row;
        t.stride[1] = row;
        t.stride[2] = s * row;
    }
    return t;
}

static int64_t off(const attn_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return a * t->stride[0] + b * t->stride[1] + c * t->stride[2] + d * t->stride[3];
}

/* Every element uniform in [-1, 1) from (seed, stream), rounded to the view's dtype. */
static void fill(const attn_tensor *t, uint64_t seed, uint64_t stream)
{
    int64_t i = 0;
    for (int64_t a = 0; a < t->shape[0]; a++)
        for (int64_t b = 0; b < t->shape[1]; b++)
            for (int64_t c = 0; c < t->shape[2]; c++)
                for (int64_t d = 0; d < t->shape[3]; d++)
                    attn_store_f64(t->data, t->dtype, off(t, a, b, c, d),
                                   attn_rng_uniform(seed, stream, (uint64_t)i++, -1, 1));
}

static void bx_make(bx *x, const bcase *c)
{
    memset(x, 0, sizeof *x);
    ratt_fx_spec sp = ratt_fx_spec_sized(c->B, c->S, c->Hq, c->Hkv, c->Dk, c->Dv);
    sp.dt_q = sp.dt_kv = sp.dt_out = c->in;
    sp.strided = c->strided;
    sp.gammas = c->gammas;
    sp.state_in = c->state_in;
    sp.seed = 200 + (uint64_t)c->S;
    ratt_fx_make(&x->f, &sp);
    fill(&x->f.out, sp.seed, 40); /* dout */
    x->d = ratt_fx_desc(c->window, c->feature, c->rope, c->offset);
    const int64_t Df = 2 * c->Dk;
    x->dq = view(&x->mem[0], c->grad, c->strided, c->B, c->S, c->Hq, c->Dk);
    x->dk = view(&x->mem[1], c->grad, c->strided, c->B, c->S, c->Hkv, c->Dk);
    x->dv = view(&x->mem[2], c->grad, c->strided, c->B, c->S, c->Hkv, c->Dv);
    x->dgs = view(&x->mem[3], ATTN_F32, 0, 1, 1, c->Hq, c->Dv);
    x->dgr = view(&x->mem[4], ATTN_F32, 0, 1, 1, c->Hq, c->Dv);
    x->dsin = view(&x->mem[5], ATTN_F32, 0, c->B, c->Hkv, Df, c->Dv);
    x->dsout = view(&x->mem[6], ATTN_F32, 0, c->B, c->Hkv, Df, c->Dv);
    fill(&x->dsout, sp.seed, 41);
    x->g = (attn_rattention_grads){.dq = &x->dq, .dk = &x->dk, .dv = &x->dv,
                                   .dgamma_swa = c->dgammas ? &x->dgs : NULL,
                                   .dgamma_rla = c->dgammas ? &x->dgr : NULL,
                                   .d_state_in = c->state_in ? &x->dsin : NULL,
                                   .d_state_out = c->state_out ? &x->dsout : NULL};
}

static void bx_free(bx *x)
{
    ratt_fx_free(&x->f);
    for (int i = 0; i < 7; i++)
        free(x->mem[i]);
}

static double *dalloc(const attn_tensor *t)
{
    double *a = calloc((size_t)ratt_fx_numel(t) + 1, sizeof(double));
    ck_assert_ptr_nonnull(a);
    return a;
}

/* The f64 ground truth of x's gradients (d_state_in NULL unless asked). */
static attn_rattention_ref_grads reference(bx *x)
{
    attn_rattention_problem p;
    ck_assert_msg(attn_rattention_validate_backward(&x->d, &x->f.q, &x->f.k, &x->f.v, &x->f.io,
                                                    &x->f.out, &x->g, &p) == ATTN_OK,
                  "%s", attn_last_error());
    attn_rattention_ref_grads g = {.dq = dalloc(&x->dq), .dk = dalloc(&x->dk),
                                   .dv = dalloc(&x->dv), .dgamma_swa = dalloc(&x->dgs),
                                   .dgamma_rla = dalloc(&x->dgr),
                                   .d_state_in = x->g.d_state_in ? dalloc(&x->dsin) : NULL};
    ck_assert(attn_ref_rattention_backward(&p, &g) == ATTN_OK);
    return g;
}

static void ref_free(attn_rattention_ref_grads *g)
{
    double *all[] = {g->dq, g->dk, g->dv, g->dgamma_swa, g->dgamma_rla, g->d_state_in};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static void run_cpu(bx *x, const char *options)
{
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open("cpu", options, &be) == ATTN_OK, "%s", attn_last_error());
    ck_assert_msg(attn_rattention_backward(be, &x->d, &x->f.q, &x->f.k, &x->f.v, &x->f.io,
                                           &x->f.out, &x->g) == ATTN_OK,
                  "%s", attn_last_error());
    attn_backend_close(be);
}

/* Unit roundoff of a gradient's dtype. */
static double unit(attn_dtype t)
{
    return t == ATTN_F16 ? 0x1p-11 : t == ATTN_BF16 ? 0x1p-8 : 0x1p-24;
}

static void expect_close(const attn_tensor *t, const double *want, const char *name,
                         const bcase *c, int k, const char *options)
{
    double *got = ratt_fx_load(t);
    const double err = ratt_fx_max_rel(got, want, ratt_fx_numel(t));
    const double tol = 16.0 * 0x1p-24 * sqrt((double)c->S) + unit(t->dtype);
    if (getenv("ATTN_CHECK_SHOW"))
        fprintf(stderr, "case %d %s d%s: %.3g (tol %.3g)\n", k, options, name, err, tol);
    ck_assert_msg(err <= tol, "case %d (%s): d%s off by %.3g of its largest magnitude (> %.3g)",
                  k, options, name, err, tol);
    free(got);
}

static void expect_all(bx *x, const attn_rattention_ref_grads *g, const bcase *c, int k,
                       const char *options)
{
    expect_close(&x->dq, g->dq, "q", c, k, options);
    expect_close(&x->dk, g->dk, "k", c, k, options);
    expect_close(&x->dv, g->dv, "v", c, k, options);
    if (c->dgammas) {
        expect_close(&x->dgs, g->dgamma_swa, "gamma_swa", c, k, options);
        expect_close(&x->dgr, g->dgamma_rla, "gamma_rla", c, k, options);
    }
    if (c->state_in)
        expect_close(&x->dsin, g->d_state_in, "state_in", c, k, options);
}

START_TEST(test_matches_reference)
{
    const bcase *c = &cases[_i];
    bx x;
    bx_make(&x, c);
    attn_rattention_ref_grads g = reference(&x);
    run_cpu(&x, "threads=2");
    expect_all(&x, &g, c, _i, "threads=2");
    ref_free(&g);
    bx_free(&x);
}
END_TEST

/* Other residual chunks (shorter than, dividing or not, and past the sequence), with and
 * without S0 (the whole shifted residual problem, or its rows past the shift). */
START_TEST(test_chunks)
{
    static const char *const opts[] = {"chunk=16", "chunk=7", "chunk=512"};
    const int k = 5 + _i;
    const bcase *c = &cases[k];
    bx x;
    bx_make(&x, c);
    attn_rattention_ref_grads g = reference(&x);
    for (int o = 0; o < 3; o++) {
        run_cpu(&x, opts[o]);
        expect_all(&x, &g, c, k, opts[o]);
    }
    ref_free(&g);
    bx_free(&x);
}
END_TEST

/* Bytes of a view's memory (its padded allocation). */
static size_t bytes(const attn_tensor *t, int strided)
{
    const int64_t row = strided ? t->shape[3] + PAD : t->shape[3];
    return (size_t)(t->shape[0] * t->shape[1] * t->shape[2] * row) * attn_dtype_size(t->dtype);
}

/* The thread count changes no bit of any gradient. */
START_TEST(test_threads)
{
    static const int pick[] = {5, 6, 7, 11};
    const bcase *c = &cases[pick[_i]];
    bx x;
    bx_make(&x, c);
    const attn_tensor *t[] = {&x.dq, &x.dk, &x.dv, &x.dgs, &x.dgr, &x.dsin};
    const int strided[] = {c->strided, c->strided, c->strided, 0, 0, 0};
    void *first[6];
    run_cpu(&x, "threads=1");
    for (int i = 0; i < 6; i++) {
        first[i] = malloc(bytes(t[i], strided[i]));
        ck_assert_ptr_nonnull(first[i]);
        memcpy(first[i], t[i]->data, bytes(t[i], strided[i]));
    }
    static const char *const opts[] = {"threads=2", "threads=3"};
    for (int o = 0; o < 2; o++) {
        for (int i = 0; i < 6; i++)
            memset(t[i]->data, 0x5a, bytes(t[i], strided[i]));
        run_cpu(&x, opts[o]);
        for (int i = 0; i < 6; i++)
            ck_assert_msg(memcmp(first[i], t[i]->data, bytes(t[i], strided[i])) == 0,
                          "case %d: gradient %d differs between threads=1 and %s", pick[_i], i,
                          opts[o]);
    }
    for (int i = 0; i < 6; i++)
        free(first[i]);
    bx_free(&x);
}
END_TEST

START_TEST(test_impl_name)
{
    attn_backend *be = NULL;
    ck_assert(attn_backend_open("cpu", "chunk=32", &be) == ATTN_OK);
    bx x;
    bx_make(&x, &cases[0]);
    char name[64];
    ck_assert_msg(attn_rattention_backward_impl_name(be, &x.d, &x.f.q, &x.f.k, &x.f.v, &x.f.io,
                                                     &x.f.out, &x.g, name,
                                                     sizeof name) == ATTN_OK,
                  "%s", attn_last_error());
    ck_assert_str_eq(name, "cpu:rattention_bwd_chunk32");
    ck_assert(attn_rattention_backward_supported(be, &x.d, &x.f.q, &x.f.k, &x.f.v, &x.f.io,
                                                 &x.f.out, &x.g) == ATTN_OK);
    bx_free(&x);
    attn_backend_close(be);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rattention_backward_cpu");
    TCase *tc = tcase_create("backward");
    tcase_set_timeout(tc, 300);
    if (ratt_fx_available("cpu")) {
        tcase_add_loop_test(tc, test_matches_reference, 0, N_CASES);
        tcase_add_loop_test(tc, test_chunks, 0, 2);
        tcase_add_loop_test(tc, test_threads, 0, 4);
        tcase_add_test(tc, test_impl_name);
    }
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(suite());
}
