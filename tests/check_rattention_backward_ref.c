/* check_rattention_backward_ref.c - the ground truth of RATTENTION's gradients
 * (reference/rattention_backward.c) against central finite differences of the f64 forward
 * definition (Richardson-extrapolated; inputs on a 2^-12 grid, q and k at least 1/32 from the
 * relu pair's kink, so the steps are exact and smooth), for every element of q, k, v, both
 * gains and the initial state, with the loss sum dout * out + sum d_state_out * S_T: windows
 * -1, 0, inside and past the sequence, both feature maps and RoPE layouts, a position offset,
 * GQA and MQA; then the ref backend's public call (rounding once), bad input, and the other
 * backends' clean refusal. */
#include "check_badinput.h"
#include "check_run.h"
#include "rattention_fixture.h"

#include "attn_backend_impl.h"
#include "attn_rng.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct bcase {
    int64_t S, Hq, Hkv, window;
    attn_linear_feature feature;
    attn_rope_layout rope;
    int gammas, state_in, state_out;
} bcase;

static const bcase cases[] = {
    {13, 4, 2, 3, ATTN_LINEAR_SOFTMAX_PAIR, ATTN_ROPE_INTERLEAVED, 1, 1, 1},
    {9, 3, 1, -1, ATTN_LINEAR_RELU_PAIR, ATTN_ROPE_HALF, 1, 1, 0},
    {7, 2, 2, 0, ATTN_LINEAR_SOFTMAX_PAIR, ATTN_ROPE_HALF, 0, 0, 0},
    {9, 2, 1, 20, ATTN_LINEAR_SOFTMAX_PAIR, ATTN_ROPE_INTERLEAVED, 1, 0, 1},
    {11, 4, 2, 2, ATTN_LINEAR_RELU_PAIR, ATTN_ROPE_INTERLEAVED, 1, 0, 1},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* A problem: the fixture's tensors, dout, the gradients (f32) and the final state's gradient. */
typedef struct bx {
    ratt_fx f;
    attn_rattention_desc d;
    float *dout, *dq, *dk, *dv, *dgs, *dgr, *dsin, *dsout;
    attn_tensor tdout, tdq, tdk, tdv, tdgs, tdgr, tdsin, tdsout;
    attn_rattention_grads g;
} bx;

/* Values of a host f32 view requantised to a 2^-12 grid; `away`: at least 1/32 from 0. */
static void grid(const attn_tensor *t, int away)
{
    float *x = t->data;
    for (int64_t i = 0; i < ratt_fx_numel(t); i++) {
        double v = nearbyint((double)x[i] * 4096.0) / 4096.0;
        if (away && fabs(v) < 1.0 / 32)
            v += v >= 0 ? 1.0 / 16 : -1.0 / 16;
        x[i] = (float)v;
    }
}

static float *fill(int64_t n, uint64_t seed)
{
    float *a = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    ck_assert(a != NULL);
    for (int64_t i = 0; i < n; i++)
        a[i] = (float)(nearbyint(attn_rng_uniform(seed, 5, (uint64_t)i, -1, 1) * 4096.0) / 4096.0);
    return a;
}

static void bx_make(bx *x, const bcase *c)
{
    memset(x, 0, sizeof *x);
    ratt_fx_spec sp = ratt_fx_spec_sized(1, c->S, c->Hq, c->Hkv, 4, 3);
    sp.gammas = c->gammas;
    sp.state_in = c->state_in;
    sp.seed = 100 + (uint64_t)c->S;
    ratt_fx_make(&x->f, &sp);
    grid(&x->f.q, 1);
    grid(&x->f.k, 1);
    grid(&x->f.v, 0);
    if (c->gammas) {
        grid(&x->f.gamma_swa, 0);
        grid(&x->f.gamma_rla, 0);
    }
    if (c->state_in)
        grid(&x->f.state_in, 0);
    x->d = ratt_fx_desc(c->window, c->feature, c->rope, 5);
    const int64_t nq = ratt_fx_numel(&x->f.q), nk = ratt_fx_numel(&x->f.k);
    const int64_t nv = ratt_fx_numel(&x->f.v), no = ratt_fx_numel(&x->f.out);
    const int64_t ng = c->Hq * 3, ns = c->Hkv * 8 * 3;
    x->dout = fill(no, 1);
    x->dsout = fill(ns, 2);
    x->dq = fill(nq, 3);
    x->dk = fill(nk, 4);
    x->dv = fill(nv, 6);
    x->dgs = fill(ng, 7);
    x->dgr = fill(ng, 8);
    x->dsin = fill(ns, 9);
    x->tdout = attn_tensor_bshd(x->dout, ATTN_F32, 1, c->S, c->Hq, 3);
    x->tdq = attn_tensor_bshd(x->dq, ATTN_F32, 1, c->S, c->Hq, 4);
    x->tdk = attn_tensor_bshd(x->dk, ATTN_F32, 1, c->S, c->Hkv, 4);
    x->tdv = attn_tensor_bshd(x->dv, ATTN_F32, 1, c->S, c->Hkv, 3);
    x->tdgs = attn_tensor_bshd(x->dgs, ATTN_F32, 1, 1, c->Hq, 3);
    x->tdgr = attn_tensor_bshd(x->dgr, ATTN_F32, 1, 1, c->Hq, 3);
    x->tdsin = attn_tensor_bshd(x->dsin, ATTN_F32, 1, c->Hkv, 8, 3);
    x->tdsout = attn_tensor_bshd(x->dsout, ATTN_F32, 1, c->Hkv, 8, 3);
    x->g = (attn_rattention_grads){.dq = &x->tdq, .dk = &x->tdk, .dv = &x->tdv,
                                   .dgamma_swa = &x->tdgs, .dgamma_rla = &x->tdgr,
                                   .d_state_in = c->state_in ? &x->tdsin : NULL,
                                   .d_state_out = c->state_out ? &x->tdsout : NULL};
}

static void bx_free(bx *x)
{
    ratt_fx_free(&x->f);
    float *all[] = {x->dout, x->dq, x->dk, x->dv, x->dgs, x->dgr, x->dsin, x->dsout};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static void bx_problem(bx *x, attn_rattention_problem *p)
{
    ck_assert_msg(attn_rattention_validate_backward(&x->d, &x->f.q, &x->f.k, &x->f.v, &x->f.io,
                                                    &x->tdout, &x->g, p) == ATTN_OK,
                  "%s", attn_last_error());
}

/* ---- finite differences -------------------------------------------------------------------- */

static double loss(const attn_rattention_problem *p, const bx *x, double *out, double *state)
{
    attn_rattention_ref_out o = {0};
    o.out = out;
    o.state = state;
    ck_assert(attn_ref_rattention(p, ATTN_REF_F64, &o) == ATTN_OK);
    double l = 0.0;
    for (int64_t i = 0; i < ratt_fx_numel(&x->tdout); i++)
        l += (double)x->dout[i] * out[i];
    for (int64_t i = 0; x->g.d_state_out && i < ratt_fx_numel(&x->tdsout); i++)
        l += (double)x->dsout[i] * state[i];
    return l;
}

static void expect_fd(const attn_rattention_problem *p, const bx *x, const attn_tensor *t,
                      const double *g, const char *name, int k)
{
    float *a = t->data;
    double *out = calloc((size_t)ratt_fx_numel(&x->tdout), sizeof(double));
    double *state = calloc((size_t)ratt_fx_numel(&x->tdsout), sizeof(double));
    ck_assert(out && state);
    for (int64_t i = 0; i < ratt_fx_numel(t); i++) {
        const float x0 = a[i];
        double d[2];
        for (int s = 0; s < 2; s++) {
            const float h = s == 0 ? 0x1p-8f : 0x1p-9f;
            a[i] = x0 + h;
            const double up = loss(p, x, out, state);
            a[i] = x0 - h;
            d[s] = (up - loss(p, x, out, state)) / (2.0 * (double)h);
        }
        a[i] = x0;
        const double want = (4.0 * d[1] - d[0]) / 3.0;
        ck_assert_msg(fabs(g[i] - want) <= 1e-7 * (1.0 + fabs(want)),
                      "case %d: d%s[%lld] = %.12g, finite differences %.12g", k, name,
                      (long long)i, g[i], want);
    }
    free(out);
    free(state);
}

static double *dalloc(const attn_tensor *t)
{
    double *a = calloc((size_t)ratt_fx_numel(t), sizeof(double));
    ck_assert(a != NULL);
    return a;
}

START_TEST(test_matches_finite_differences)
{
    bx x;
    bx_make(&x, &cases[_i]);
    attn_rattention_problem p;
    bx_problem(&x, &p);
    attn_rattention_ref_grads g = {.dq = dalloc(&x.tdq), .dk = dalloc(&x.tdk),
                                   .dv = dalloc(&x.tdv), .dgamma_swa = dalloc(&x.tdgs),
                                   .dgamma_rla = dalloc(&x.tdgr),
                                   .d_state_in = x.g.d_state_in ? dalloc(&x.tdsin) : NULL};
    ck_assert(attn_ref_rattention_backward(&p, &g) == ATTN_OK);
    expect_fd(&p, &x, &x.f.q, g.dq, "q", _i);
    expect_fd(&p, &x, &x.f.k, g.dk, "k", _i);
    expect_fd(&p, &x, &x.f.v, g.dv, "v", _i);
    if (cases[_i].gammas) {
        expect_fd(&p, &x, &x.f.gamma_swa, g.dgamma_swa, "gamma_swa", _i);
        expect_fd(&p, &x, &x.f.gamma_rla, g.dgamma_rla, "gamma_rla", _i);
    }
    if (g.d_state_in)
        expect_fd(&p, &x, &x.f.state_in, g.d_state_in, "state_in", _i);
    double *all[] = {g.dq, g.dk, g.dv, g.dgamma_swa, g.dgamma_rla, g.d_state_in};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    bx_free(&x);
}
END_TEST

/* The magnitudes bound the values they belong to, element by element, and the value side
 * does not depend on whether they are asked for. */
START_TEST(test_magnitudes_bound_values)
{
    bx x;
    bx_make(&x, &cases[_i]);
    attn_rattention_problem p;
    bx_problem(&x, &p);
    const attn_tensor *t[] = {&x.tdq, &x.tdk, &x.tdv, &x.tdgs, &x.tdgr, &x.tdsin};
    double *v[6], *m[6], *plain[6];
    for (int k = 0; k < 6; k++) {
        v[k] = dalloc(t[k]);
        m[k] = dalloc(t[k]);
        plain[k] = dalloc(t[k]);
    }
    const attn_rattention_ref_grads g = {v[0], v[1], v[2], v[3], v[4], v[5],
                                         m[0], m[1], m[2], m[3], m[4], m[5]};
    const attn_rattention_ref_grads g0 = {.dq = plain[0], .dk = plain[1], .dv = plain[2],
                                          .dgamma_swa = plain[3], .dgamma_rla = plain[4],
                                          .d_state_in = plain[5]};
    ck_assert(attn_ref_rattention_backward(&p, &g) == ATTN_OK);
    ck_assert(attn_ref_rattention_backward(&p, &g0) == ATTN_OK);
    for (int k = 0; k < 6; k++) {
        if (k == 5 && !x.g.d_state_in)
            break;
        for (int64_t e = 0; e < ratt_fx_numel(t[k]); e++) {
            ck_assert_msg(fabs(v[k][e]) <= m[k][e] * (1 + 1e-12) + 1e-300,
                          "case %d tensor %d [%lld]: |%.9g| > magnitude %.9g", _i, k,
                          (long long)e, v[k][e], m[k][e]);
            ck_assert(v[k][e] == plain[k][e]);
        }
    }
    for (int k = 0; k < 6; k++) {
        free(v[k]);
        free(m[k]);
        free(plain[k]);
    }
    bx_free(&x);
}
END_TEST

/* The ref backend rounds the f64 gradients once into f32; without gains in io, their gradient
 * is that of gains of 1; cpu and opencl refuse cleanly and write nothing. */
START_TEST(test_public_call)
{
    static const char *const backends[] = {"ref", "cpu", "opencl"};
    bx x;
    bx_make(&x, &cases[0]);
    attn_rattention_problem p;
    bx_problem(&x, &p);
    attn_rattention_ref_grads g = {.dq = dalloc(&x.tdq), .dk = dalloc(&x.tdk),
                                   .dv = dalloc(&x.tdv), .dgamma_swa = dalloc(&x.tdgs),
                                   .dgamma_rla = dalloc(&x.tdgr), .d_state_in = dalloc(&x.tdsin)};
    ck_assert(attn_ref_rattention_backward(&p, &g) == ATTN_OK);
    for (int b = 0; b < 3; b++) {
        attn_backend *be = NULL;
        if (!attn_bad_available(backends[b]))
            continue;
        ck_assert(attn_backend_open(backends[b], NULL, &be) == ATTN_OK);
        memset(x.dq, 0x5a, sizeof(float) * (size_t)ratt_fx_numel(&x.tdq));
        const attn_status st = attn_rattention_backward(be, &x.d, &x.f.q, &x.f.k, &x.f.v,
                                                        &x.f.io, &x.tdout, &x.g);
        if (b == 0) {
            ck_assert_msg(st == ATTN_OK, "%s", attn_last_error());
            for (int64_t i = 0; i < ratt_fx_numel(&x.tdq); i++)
                ck_assert(x.dq[i] == (float)g.dq[i]);
            for (int64_t i = 0; i < ratt_fx_numel(&x.tdk); i++)
                ck_assert(x.dk[i] == (float)g.dk[i]);
            for (int64_t i = 0; i < ratt_fx_numel(&x.tdgs); i++)
                ck_assert(x.dgs[i] == (float)g.dgamma_swa[i] &&
                          x.dgr[i] == (float)g.dgamma_rla[i]);
            for (int64_t i = 0; i < ratt_fx_numel(&x.tdsin); i++)
                ck_assert(x.dsin[i] == (float)g.d_state_in[i]);
        } else if (st != ATTN_OK) {
            attn_bad_expect(st, ATTN_ERR_UNSUPPORTED, "backward", backends[b]);
            attn_bad_untouched(x.dq, sizeof(float) * (size_t)ratt_fx_numel(&x.tdq), 0x5a,
                               "backward", "dq");
        }
        attn_backend_close(be);
    }
    double *all[] = {g.dq, g.dk, g.dv, g.dgamma_swa, g.dgamma_rla, g.d_state_in};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    bx_free(&x);
}
END_TEST

/* Malformed calls: their status and message, nothing written. */
START_TEST(test_bad_input)
{
    attn_backend *be = NULL;
    ck_assert(attn_backend_open("ref", NULL, &be) == ATTN_OK);
    bx x;
    bx_make(&x, &cases[0]);
    memset(x.dq, 0x5a, sizeof(float) * (size_t)ratt_fx_numel(&x.tdq));
    attn_rattention_grads g = x.g;
    attn_rattention_io io = x.f.io;
#define CALL() attn_rattention_backward(be, &x.d, &x.f.q, &x.f.k, &x.f.v, &io, &x.tdout, &g)
    g.dq = NULL;
    attn_bad_expect(CALL(), ATTN_ERR_NULL_POINTER, "dq NULL", "ref");
    g = x.g;
    io.state_out = &x.f.state_out;
    attn_bad_expect(CALL(), ATTN_ERR_INVALID_ARGUMENT, "state_out given", "ref");
    io = x.f.io;
    io.state_in = NULL;
    attn_bad_expect(CALL(), ATTN_ERR_INVALID_ARGUMENT, "d_state_in without state_in", "ref");
    io = x.f.io;
    x.tdk.shape[2] = 1;
    attn_bad_expect(CALL(), ATTN_ERR_SHAPE, "dk heads", "ref");
    x.tdk.shape[2] = cases[0].Hkv;
    x.tdgs.shape[2] = 1;
    attn_bad_expect(CALL(), ATTN_ERR_SHAPE, "dgamma_swa heads", "ref");
    x.tdgs.shape[2] = cases[0].Hq;
    x.tdsin.dtype = ATTN_F16;
    attn_bad_expect(CALL(), ATTN_ERR_DTYPE, "d_state_in f16", "ref");
    x.tdsin.dtype = ATTN_F32;
    x.tdv.data = x.f.v.data;
    attn_bad_expect(CALL(), ATTN_ERR_ALIAS, "dv aliases v", "ref");
    x.tdv.data = x.dv;
    g.reserved[1] = 3;
    attn_bad_expect(CALL(), ATTN_ERR_INVALID_ARGUMENT, "reserved", "ref");
#undef CALL
    attn_bad_untouched(x.dq, sizeof(float) * (size_t)ratt_fx_numel(&x.tdq), 0x5a, "bad input",
                       "dq");
    bx_free(&x);
    attn_backend_close(be);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rattention_backward_ref");
    TCase *tc = tcase_create("backward");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_matches_finite_differences, 0, N_CASES);
    tcase_add_loop_test(tc, test_magnitudes_bound_values, 0, N_CASES);
    tcase_add_test(tc, test_public_call);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(suite());
}
