/* check_linear_backward_ref.c - the ground truth of linear attention's gradients
 * (reference/linear_backward.c): against central finite differences of the f64 definition
 * (Richardson-extrapolated, steps exact in f32) for every element of q, k, v and the initial
 * state, with the loss sum dout * out + sum d_state_out * S_T + sum d_z_out * z_T, over every
 * feature map, causal or not, decay, GQA/MQA, the normaliser and a shifted window (rattention's
 * residual branch); the float working-precision mode; the ref backend's public call. */
#include "check_run.h"
#include "linear_backward_fixture.h"
#include "linear_ref.h"

#include "attn_backend_impl.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20261207u

static const lbw_shape shapes[] = {
    /* B S Hq Hkv Dk Dv feature normalize causal decay state_in state_out */
    {2, 6, 4, 2, 3, 4, ATTN_LINEAR_ELU1, 1, 1, ATTN_LINEAR_DECAY_NONE, 1, 1},
    {1, 7, 2, 2, 3, 2, ATTN_LINEAR_SOFTMAX_PAIR, 0, 1, ATTN_LINEAR_DECAY_SLOPES, 1, 1},
    {1, 5, 3, 1, 2, 3, ATTN_LINEAR_RELU_PAIR, 0, 0, ATTN_LINEAR_DECAY_NONE, 1, 1},
    {1, 8, 2, 2, 3, 2, ATTN_LINEAR_SILU, 0, 1, ATTN_LINEAR_DECAY_GIVEN, 1, 1},
    {1, 6, 2, 1, 2, 3, ATTN_LINEAR_ELU, 0, 1, ATTN_LINEAR_DECAY_NONE, 0, 0},
    {1, 5, 2, 2, 3, 2, ATTN_LINEAR_IDENTITY, 1, 0, ATTN_LINEAR_DECAY_NONE, 1, 0},
    {1, 6, 2, 1, 3, 2, ATTN_LINEAR_RELU, 0, 1, ATTN_LINEAR_DECAY_NONE, 0, 1},
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* Shape 3 runs with a shift of 2 (query i sees keys j <= i - 2), as rattention's residual
 * branch builds its problem; the identity map normalises with a positive z0 and eps. */
static void setup(lbw *x, int k, attn_linear_problem *p)
{
    lbw_init(x, &shapes[k], SEED + (uint64_t)k);
    if (shapes[k].feature == ATTN_LINEAR_IDENTITY)
        x->desc.eps = 4.0f;
    lbw_problem(x, p);
    if (k == 3)
        p->shift = 2;
}

static double *dalloc(int64_t n)
{
    double *a = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    ck_assert(a != NULL);
    return a;
}

typedef struct dg {
    attn_linear_ref_grads g;
} dg;

static dg dg_new(const lbw *x, int mags)
{
    dg r = {{0}};
    r.g.dq = dalloc(lbw_n(x, "q"));
    r.g.dk = dalloc(lbw_n(x, "k"));
    r.g.dv = dalloc(lbw_n(x, "v"));
    r.g.d_state_in = x->s0 ? dalloc(lbw_n(x, "state")) : NULL;
    r.g.d_z_in = x->st.z_in ? dalloc(lbw_n(x, "z")) : NULL;
    if (mags) {
        r.g.dq_mag = dalloc(lbw_n(x, "q"));
        r.g.dk_mag = dalloc(lbw_n(x, "k"));
        r.g.dv_mag = dalloc(lbw_n(x, "v"));
        r.g.d_state_in_mag = x->s0 ? dalloc(lbw_n(x, "state")) : NULL;
        r.g.d_z_in_mag = x->st.z_in ? dalloc(lbw_n(x, "z")) : NULL;
    }
    return r;
}

static void dg_free(dg *r)
{
    double *all[] = {r->g.dq,     r->g.dk,     r->g.dv,     r->g.d_state_in,     r->g.d_z_in,
                     r->g.dq_mag, r->g.dk_mag, r->g.dv_mag, r->g.d_state_in_mag, r->g.d_z_in_mag};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* ---- finite differences -------------------------------------------------------------------- */

typedef struct fwd_buf {
    double *out, *state, *z;
} fwd_buf;

/* L = sum dout * out + sum dS_T * S_T + sum dz_T * z_T of the f64 definition. */
static double loss(const attn_linear_problem *p, const lbw *x, fwd_buf *b)
{
    attn_linear_ref_out o = {b->out, b->state, b->z, NULL, NULL, NULL};
    ck_assert(attn_ref_linear(p, &o) == ATTN_OK);
    double l = 0.0;
    for (int64_t i = 0; i < lbw_n(x, "out"); i++)
        l += (double)x->dout[i] * b->out[i];
    for (int64_t i = 0; x->grads.d_state_out && i < lbw_n(x, "state"); i++)
        l += (double)x->dsT[i] * b->state[i];
    for (int64_t i = 0; x->grads.d_z_out && i < lbw_n(x, "z"); i++)
        l += (double)x->dzT[i] * b->z[i];
    return l;
}

static double fd(const attn_linear_problem *p, const lbw *x, float *a, int64_t i, fwd_buf *b)
{
    const float x0 = a[i];
    double d[2];
    for (int s = 0; s < 2; s++) {
        const float h = s == 0 ? 0x1p-8f : 0x1p-9f;
        a[i] = x0 + h;
        const double up = loss(p, x, b);
        a[i] = x0 - h;
        d[s] = (up - loss(p, x, b)) / (2.0 * (double)h);
    }
    a[i] = x0;
    return (4.0 * d[1] - d[0]) / 3.0;
}

static void expect_fd(const attn_linear_problem *p, const lbw *x, float *a, const double *g,
                      int64_t n, const char *name, int k)
{
    fwd_buf b = {dalloc(lbw_n(x, "out")), dalloc(lbw_n(x, "state")), dalloc(lbw_n(x, "z"))};
    for (int64_t i = 0; i < n; i++) {
        const double want = fd(p, x, a, i, &b);
        ck_assert_msg(fabs(g[i] - want) <= 1e-7 * (1.0 + fabs(want)),
                      "shape %d: d%s[%lld] = %.12g, finite differences %.12g", k, name,
                      (long long)i, g[i], want);
    }
    free(b.out);
    free(b.state);
    free(b.z);
}

START_TEST(test_matches_finite_differences)
{
    lbw x;
    attn_linear_problem p;
    setup(&x, _i, &p);
    dg r = dg_new(&x, 0);
    ck_assert(attn_ref_linear_backward(&p, ATTN_REF_F64, &r.g) == ATTN_OK);
    expect_fd(&p, &x, x.q, r.g.dq, lbw_n(&x, "q"), "q", _i);
    expect_fd(&p, &x, x.k, r.g.dk, lbw_n(&x, "k"), "k", _i);
    expect_fd(&p, &x, x.v, r.g.dv, lbw_n(&x, "v"), "v", _i);
    if (x.s0)
        expect_fd(&p, &x, x.s0, r.g.d_state_in, lbw_n(&x, "state"), "state_in", _i);
    if (x.st.z_in)
        expect_fd(&p, &x, x.z0, r.g.d_z_in, lbw_n(&x, "z"), "z_in", _i);
    dg_free(&r);
    attn_linear_problem_release(&p);
    lbw_free(&x);
}
END_TEST

/* The float mode stays within 1e-4 of the magnitudes and does round something. */
START_TEST(test_f32_mode_close)
{
    lbw x;
    attn_linear_problem p;
    setup(&x, _i, &p);
    dg a = dg_new(&x, 1), b = dg_new(&x, 0);
    ck_assert(attn_ref_linear_backward(&p, ATTN_REF_F64, &a.g) == ATTN_OK);
    ck_assert(attn_ref_linear_backward(&p, ATTN_REF_F32, &b.g) == ATTN_OK);
    const double *ga[] = {a.g.dq, a.g.dk, a.g.dv}, *gb[] = {b.g.dq, b.g.dk, b.g.dv};
    const double *m[] = {a.g.dq_mag, a.g.dk_mag, a.g.dv_mag};
    const char *names[] = {"q", "k", "v"};
    int differs = 0;
    for (int t = 0; t < 3; t++)
        for (int64_t i = 0; i < lbw_n(&x, names[t]); i++) {
            ck_assert_msg(fabs(ga[t][i] - gb[t][i]) <= 1e-4 * m[t][i] + 1e-30,
                          "shape %d d%s[%lld]: f64 %.9g, f32 %.9g (magnitude %.3g)", _i,
                          names[t], (long long)i, ga[t][i], gb[t][i], m[t][i]);
            differs |= ga[t][i] != gb[t][i];
        }
    ck_assert_msg(differs, "shape %d: the float mode rounds nothing", _i);
    dg_free(&a);
    dg_free(&b);
    attn_linear_problem_release(&p);
    lbw_free(&x);
}
END_TEST

/* The ref backend rounds the f64 gradients once into the f32 tensors. */
START_TEST(test_public_call_rounds_once)
{
    if (_i == 3)
        return; /* the shifted problem exists only inside rattention */
    attn_backend *be = NULL;
    ck_assert(attn_backend_open("ref", NULL, &be) == ATTN_OK);
    lbw x;
    attn_linear_problem p;
    setup(&x, _i, &p);
    dg want = dg_new(&x, 0);
    ck_assert(attn_ref_linear_backward(&p, ATTN_REF_F64, &want.g) == ATTN_OK);
    ck_assert_msg(attn_linear_backward(be, &x.desc, &x.tq, &x.tk, &x.tv, &x.st, &x.tdout,
                                       &x.grads) == ATTN_OK,
                  "%s", attn_last_error());
    const float *got[] = {x.dq, x.dk, x.dv, x.ds0, x.dz0};
    const double *w[] = {want.g.dq, want.g.dk, want.g.dv, want.g.d_state_in, want.g.d_z_in};
    const char *names[] = {"q", "k", "v", "state", "z"};
    for (int t = 0; t < 5; t++)
        for (int64_t i = 0; w[t] && i < lbw_n(&x, names[t]); i++)
            ck_assert_msg(got[t][i] == (float)w[t][i], "d%s[%lld]", names[t], (long long)i);
    dg_free(&want);
    attn_linear_problem_release(&p);
    lbw_free(&x);
    attn_backend_close(be);
}
END_TEST

/* The slopes at 0, where finite differences cannot tell: relu's is 0, elu's 1 (PyTorch's
 * conventions), the paired relu passes nothing at 0. */
START_TEST(test_slopes_at_zero)
{
    const double x[1] = {0.0}, dy[2] = {3.0, 5.0};
    double dx[1], tmp[1];
    attn_ref_linear_phi_vjp(ATTN_LINEAR_RELU, ATTN_REF_F64, x, 1, dy, 0, tmp, dx);
    ck_assert(dx[0] == 0.0);
    attn_ref_linear_phi_vjp(ATTN_LINEAR_RELU_PAIR, ATTN_REF_F64, x, 1, dy, 0, tmp, dx);
    ck_assert(dx[0] == 0.0);
    attn_ref_linear_phi_vjp(ATTN_LINEAR_ELU, ATTN_REF_F64, x, 1, dy, 0, tmp, dx);
    ck_assert(dx[0] == 3.0);
    attn_ref_linear_phi_vjp(ATTN_LINEAR_ELU1, ATTN_REF_F64, x, 1, dy, 0, tmp, dx);
    ck_assert(dx[0] == 3.0);
    attn_ref_linear_phi_vjp(ATTN_LINEAR_SILU, ATTN_REF_F64, x, 1, dy, 0, tmp, dx);
    ck_assert(dx[0] == 1.5); /* silu'(0) = 1/2 */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("linear_backward_ref");
    TCase *tc = tcase_create("backward");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_matches_finite_differences, 0, N_SHAPES);
    tcase_add_loop_test(tc, test_f32_mode_close, 0, N_SHAPES);
    tcase_add_loop_test(tc, test_public_call_rounds_once, 0, N_SHAPES);
    tcase_add_test(tc, test_slopes_at_zero);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(suite());
}
