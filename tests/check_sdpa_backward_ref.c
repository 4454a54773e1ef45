/* check_sdpa_backward_ref.c - the ground truth of SDPA's gradients: the naive chain rule
 * (reference/sdpa_backward.c) against central finite differences of the f64 forward
 * (Richardson-extrapolated, on inputs where the steps are exact), the FlashAttention-2 backward
 * (reference/sdpa_flash_backward.c) against the naive one for both loop orders and many tile
 * sizes, the float working-precision mode, and the ref backend's public call (rounding once,
 * strided and half-precision gradients, hidden rows, no query rows). */
#include "check_run.h"
#include "sdpa_backward_fixture.h"
#include "sdpa_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20261207u

/* The shapes: GQA with bottom-right causal and Sq < Skv; windows both sides with soft-cap and
 * broadcast masks; bottom-right causal with Sq > Skv (two rows see no key) and a full mask; a
 * mask of one key column (a bias per row, its gradient summed over the keys); a larger one with
 * ragged tiles. */
static const sbw_shape shapes[] = {
    {2, 5, 7, 4, 2, 3, 4, {0}, {0}},
    {1, 6, 6, 2, 1, 4, 2, {1, 6, 1, 6}, {1, 1, 2, 6}},
    {1, 6, 4, 3, 1, 2, 3, {1, 6, 3, 4}, {0}},
    {2, 5, 6, 2, 1, 3, 2, {2, 5, 1, 1}, {0}},
    {1, 37, 53, 4, 2, 8, 5, {1, 37, 1, 53}, {1, 37, 4, 53}},
};

static void setup(sbw *x, int k, attn_backend *be, attn_sdpa_problem *p)
{
    sbw_init(x, &shapes[k], SEED + (uint64_t)k);
    attn_sdpa_desc *d = &x->desc;
    switch (k) {
    case 0:
        d->causal = 1;
        break;
    case 1:
        d->window_left = 2;
        d->window_right = 1;
        d->softcap = 1.5f;
        d->scale = 0.7f;
        break;
    case 2:
        d->causal = 1;
        break;
    case 3:
        d->window_left = 3;
        break;
    default:
        d->causal = 1;
        d->align = ATTN_ALIGN_TOP_LEFT;
        d->window_left = 9;
        d->softcap = 4.0f;
        break;
    }
    sbw_problem(x, be, p);
}

static attn_backend *ref_backend(void)
{
    attn_backend *be = NULL;
    ck_assert(attn_backend_open("ref", NULL, &be) == ATTN_OK);
    return be;
}

/* Run body on the first n shapes, each set up on the ref backend and freed after. */
typedef void (*shape_body)(sbw *x, const attn_sdpa_problem *p, attn_backend *be, int k);

static void each_shape(int n, shape_body body)
{
    attn_backend *be = ref_backend();
    for (int k = 0; k < n; k++) {
        sbw x;
        attn_sdpa_problem p;
        setup(&x, k, be, &p);
        body(&x, &p, be, k);
        sbw_free(&x);
    }
    attn_backend_close(be);
}

/* Dense f64 gradients (and magnitudes) of a problem. */
typedef struct dgrads {
    attn_ref_sdpa_grads g;
} dgrads;

static double *dalloc(int64_t n)
{
    double *a = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    ck_assert(a != NULL);
    return a;
}

static dgrads dgrads_new(const sbw *x, int mags)
{
    dgrads r = {{0}};
    r.g.dq = dalloc(sbw_n(x, "dq"));
    r.g.dk = dalloc(sbw_n(x, "dk"));
    r.g.dv = dalloc(sbw_n(x, "dv"));
    r.g.dmask = x->madd ? dalloc(sbw_n(x, "madd")) : NULL;
    if (mags) {
        r.g.dq_mag = dalloc(sbw_n(x, "dq"));
        r.g.dk_mag = dalloc(sbw_n(x, "dk"));
        r.g.dv_mag = dalloc(sbw_n(x, "dv"));
        r.g.dmask_mag = x->madd ? dalloc(sbw_n(x, "madd")) : NULL;
    }
    return r;
}

static void dgrads_free(dgrads *r)
{
    double *all[] = {r->g.dq, r->g.dk, r->g.dv, r->g.dmask,
                     r->g.dq_mag, r->g.dk_mag, r->g.dv_mag, r->g.dmask_mag};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* ---- finite differences -------------------------------------------------------------------- */

/* L = sum dout * O, O the f64 forward of the problem's current inputs. */
static double loss(const attn_sdpa_problem *p, const sbw *x, double *o)
{
    ck_assert(attn_ref_sdpa(p, ATTN_REF_F64, o, NULL, NULL) == ATTN_OK);
    double l = 0.0;
    for (int64_t i = 0; i < sbw_n(x, "out"); i++)
        l += (double)x->dout[i] * o[i];
    return l;
}

/* dL/dx_i by central differences at steps h and h/2, Richardson-extrapolated (error O(h^4)):
 * every x_i +- h is exact in f32 on the fixture's grid. */
static double fd(const attn_sdpa_problem *p, const sbw *x, float *a, int64_t i, double *o)
{
    const float x0 = a[i];
    double d[2];
    for (int s = 0; s < 2; s++) {
        const float h = s == 0 ? 0x1p-8f : 0x1p-9f;
        a[i] = x0 + h;
        const double up = loss(p, x, o);
        a[i] = x0 - h;
        d[s] = (up - loss(p, x, o)) / (2.0 * (double)h);
    }
    a[i] = x0;
    return (4.0 * d[1] - d[0]) / 3.0;
}

static void expect_fd(const attn_sdpa_problem *p, const sbw *x, float *a, const double *g,
                      int64_t n, const char *name, int k)
{
    double *o = dalloc(sbw_n(x, "out"));
    for (int64_t i = 0; i < n; i++) {
        const double want = fd(p, x, a, i, o);
        ck_assert_msg(fabs(g[i] - want) <= 1e-7 * (1.0 + fabs(want)),
                      "shape %d: d%s[%lld] = %.12g, finite differences %.12g", k, name,
                      (long long)i, g[i], want);
    }
    free(o);
}

static void fd_body(sbw *x, const attn_sdpa_problem *p, attn_backend *be, int k)
{
    (void)be;
    dgrads r = dgrads_new(x, 0);
    ck_assert(attn_ref_sdpa_backward(p, ATTN_REF_F64, &r.g) == ATTN_OK);
    expect_fd(p, x, x->q, r.g.dq, sbw_n(x, "q"), "q", k);
    expect_fd(p, x, x->k, r.g.dk, sbw_n(x, "k"), "k", k);
    expect_fd(p, x, x->v, r.g.dv, sbw_n(x, "v"), "v", k);
    if (x->madd)
        expect_fd(p, x, x->madd, r.g.dmask, sbw_n(x, "madd"), "mask_add", k);
    dgrads_free(&r);
}

START_TEST(test_naive_matches_finite_differences)
{
    each_shape(4, fd_body);
}
END_TEST

/* ---- FlashAttention-2 backward == naive ---------------------------------------------------- */

static void expect_close(const double *a, const double *b, const double *mag, int64_t n,
                         const char *what)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(a[i] - b[i]) <= 1e-12 * mag[i] + 1e-15, "%s[%lld]: %.17g vs %.17g",
                      what, (long long)i, a[i], b[i]);
}

static void flash_body(sbw *x, const attn_sdpa_problem *p, attn_backend *be, int k)
{
    static const int64_t tiles[][2] = {{1, 1}, {3, 5}, {8, 16}, {64, 64}};
    (void)be;
    (void)k;
    dgrads want = dgrads_new(x, 1);
    ck_assert(attn_ref_sdpa_backward(p, ATTN_REF_F64, &want.g) == ATTN_OK);
    double *o = dalloc(sbw_n(x, "out")), *lse = dalloc(sbw_n(x, "lse"));
    ck_assert(attn_ref_sdpa(p, ATTN_REF_F64, o, lse, NULL) == ATTN_OK);
    for (int t = 0; t < 4; t++)
        for (int kv_outer = 0; kv_outer < 2; kv_outer++) {
            dgrads got = dgrads_new(x, 0);
            ck_assert(attn_ref_sdpa_flash_backward(p, tiles[t][0], tiles[t][1], kv_outer,
                                                   o, lse, &got.g) == ATTN_OK);
            expect_close(got.g.dq, want.g.dq, want.g.dq_mag, sbw_n(x, "dq"), "dq");
            expect_close(got.g.dk, want.g.dk, want.g.dk_mag, sbw_n(x, "dk"), "dk");
            expect_close(got.g.dv, want.g.dv, want.g.dv_mag, sbw_n(x, "dv"), "dv");
            if (x->madd)
                expect_close(got.g.dmask, want.g.dmask, want.g.dmask_mag,
                             sbw_n(x, "madd"), "dmask");
            dgrads_free(&got);
        }
    free(o);
    free(lse);
    dgrads_free(&want);
}

START_TEST(test_flash_matches_naive)
{
    each_shape(5, flash_body);
}
END_TEST

/* The float working-precision mode stays within a few hundred float ulps of the magnitudes. */
static void f32_body(sbw *x, const attn_sdpa_problem *p, attn_backend *be, int k)
{
    (void)be;
    dgrads a = dgrads_new(x, 1), b = dgrads_new(x, 0);
    ck_assert(attn_ref_sdpa_backward(p, ATTN_REF_F64, &a.g) == ATTN_OK);
    ck_assert(attn_ref_sdpa_backward(p, ATTN_REF_F32, &b.g) == ATTN_OK);
    const double *ga[] = {a.g.dq, a.g.dk, a.g.dv}, *gb[] = {b.g.dq, b.g.dk, b.g.dv};
    const double *m[] = {a.g.dq_mag, a.g.dk_mag, a.g.dv_mag};
    const char *names[] = {"dq", "dk", "dv"};
    int differs = 0;
    for (int t = 0; t < 3; t++)
        for (int64_t i = 0; i < sbw_n(x, names[t]); i++) {
            ck_assert_msg(fabs(ga[t][i] - gb[t][i]) <= 1e-4 * m[t][i] + 1e-30,
                          "shape %d %s[%lld]: f64 %.9g, f32 %.9g", k, names[t],
                          (long long)i, ga[t][i], gb[t][i]);
            differs |= ga[t][i] != gb[t][i];
        }
    ck_assert_msg(differs, "shape %d: the float mode rounds nothing", k);
    dgrads_free(&a);
    dgrads_free(&b);
}

START_TEST(test_f32_mode_close)
{
    each_shape(5, f32_body);
}
END_TEST

/* ---- the ref backend's public call --------------------------------------------------------- */

/* The call rounds the f64 gradients once into f32; rows that see no key get dq exactly 0. */
static void public_body(sbw *x, const attn_sdpa_problem *p, attn_backend *be, int k)
{
    dgrads want = dgrads_new(x, 0);
    ck_assert(attn_ref_sdpa_backward(p, ATTN_REF_F64, &want.g) == ATTN_OK);
    ck_assert_msg(attn_sdpa_backward(be, &x->desc, &x->tq, &x->tk, &x->tv, &x->tout, &x->tlse,
                                     &x->tdout, &x->grads) == ATTN_OK,
                  "%s", attn_last_error());
    for (int64_t i = 0; i < sbw_n(x, "dq"); i++)
        ck_assert(x->dq[i] == (float)want.g.dq[i]);
    for (int64_t i = 0; i < sbw_n(x, "dk"); i++)
        ck_assert(x->dk[i] == (float)want.g.dk[i]);
    for (int64_t i = 0; i < sbw_n(x, "dv"); i++)
        ck_assert(x->dv[i] == (float)want.g.dv[i]);
    for (int64_t i = 0; x->madd && i < sbw_n(x, "madd"); i++)
        ck_assert(x->dmask[i] == (float)want.g.dmask[i]);
    if (k == 2) /* rows 0 and 1 see no key */
        for (int64_t i = 0; i < 2 * x->s.Hq * x->s.Dk; i++)
            ck_assert(x->dq[i] == 0.0f && !signbit(x->dq[i]));
    dgrads_free(&want);
}

START_TEST(test_public_call_rounds_once)
{
    each_shape(5, public_body);
}
END_TEST

/* Gradients into a strided view ([B, H, S, D] memory) and an f16 dq: the same values as the
 * contiguous f32 call, rounded to their dtype. */
START_TEST(test_public_call_views_and_dtypes)
{
    attn_backend *be = ref_backend();
    sbw x;
    attn_sdpa_problem p;
    setup(&x, 0, be, &p);
    ck_assert(attn_sdpa_backward(be, &x.desc, &x.tq, &x.tk, &x.tv, &x.tout, &x.tlse, &x.tdout,
                                 &x.grads) == ATTN_OK);
    const sbw_shape *s = &x.s;
    uint16_t *dq16 = malloc(sizeof(uint16_t) * (size_t)sbw_n(&x, "dq"));
    float *dkt = malloc(sizeof(float) * (size_t)sbw_n(&x, "dk"));
    ck_assert(dq16 && dkt);
    attn_tensor tdq = attn_tensor_bshd(dq16, ATTN_F16, s->B, s->Sq, s->Hq, s->Dk);
    attn_tensor tdk = attn_tensor_bshd(dkt, ATTN_F32, s->B, s->Skv, s->Hkv, s->Dk);
    /* [B, H, S, D] memory seen as [B, S, H, D] */
    tdk.stride[0] = s->Hkv * s->Skv * s->Dk;
    tdk.stride[1] = s->Dk;
    tdk.stride[2] = s->Skv * s->Dk;
    attn_sdpa_grads g = {.dq = &tdq, .dk = &tdk, .dv = &x.tdv};
    ck_assert_msg(attn_sdpa_backward(be, &x.desc, &x.tq, &x.tk, &x.tv, &x.tout, &x.tlse,
                                     &x.tdout, &g) == ATTN_OK,
                  "%s", attn_last_error());
    for (int64_t i = 0; i < sbw_n(&x, "dq"); i++)
        ck_assert(fabsf(attn_f16_to_f32(dq16[i]) - x.dq[i]) <= 0x1p-11f * fabsf(x.dq[i]) + 1e-7f);
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t j = 0; j < s->Skv; j++)
            for (int64_t h = 0; h < s->Hkv; h++)
                for (int64_t d = 0; d < s->Dk; d++)
                    ck_assert(dkt[((b * s->Hkv + h) * s->Skv + j) * s->Dk + d] ==
                              x.dk[((b * s->Skv + j) * s->Hkv + h) * s->Dk + d]);
    free(dq16);
    free(dkt);
    sbw_free(&x);
    attn_backend_close(be);
}
END_TEST

/* No query row: dk and dv are zeroed (every key's gradient is an empty sum). */
START_TEST(test_no_query_rows_zero_dk_dv)
{
    attn_backend *be = ref_backend();
    sbw_shape s = {1, 0, 5, 2, 1, 3, 3, {0}, {0}};
    sbw x;
    sbw_init(&x, &s, SEED);
    for (int64_t i = 0; i < sbw_n(&x, "dk"); i++)
        x.dk[i] = x.dv[i] = NAN;
    ck_assert_msg(attn_sdpa_backward(be, &x.desc, &x.tq, &x.tk, &x.tv, &x.tout, &x.tlse,
                                     &x.tdout, &x.grads) == ATTN_OK,
                  "%s", attn_last_error());
    for (int64_t i = 0; i < sbw_n(&x, "dk"); i++)
        ck_assert(x.dk[i] == 0.0f && x.dv[i] == 0.0f);
    sbw_free(&x);
    attn_backend_close(be);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sdpa_backward_ref");
    TCase *tc = tcase_create("backward");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_naive_matches_finite_differences);
    tcase_add_test(tc, test_flash_matches_naive);
    tcase_add_test(tc, test_f32_mode_close);
    tcase_add_test(tc, test_public_call_rounds_once);
    tcase_add_test(tc, test_public_call_views_and_dtypes);
    tcase_add_test(tc, test_no_query_rows_zero_dk_dv);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(suite());
}
