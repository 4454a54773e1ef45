/* check_sdpa_backward_cpu.c - the cpu backend's SDPA backward (src/cpu/cpu_sdpa_backward.c)
 * through the public attn_sdpa_backward, against the f64 naive reference
 * (attn_ref_sdpa_backward) over a grid of every forward feature: ragged tiles, Sq != Skv in both
 * alignments, windows, GQA and MQA, Dk != Dv, masks with broadcast dims and their gradient,
 * soft-cap, f16/bf16 inputs and gradients, strided views (row-padded and column-major planes),
 * rows with no visible key; bitwise-identical results on 1, 2 and 3 threads; no query rows.
 *
 * Error bound, per element: |got - want| <= mag * (C u32 sqrt(L) + u_out + u_grad), where mag
 * is the reference's condition scale of the element (the same sums over |terms|), L = Skv +
 * group * Sq + Dk + Dv the summed lengths an element's error can gather (keys for dq, query rows
 * of the group for dk/dv, head dims for the scores and dP), u the unit roundoff of f32, of the
 * forward's out (D_i = rowsum(dO * O) is taken from it) and of the gradient's dtype (one
 * rounding on store). C = 4 allows for the products' and the exponential's own few ulps; the
 * largest ratio seen over the grid is printed. Inputs are rounded to their dtype before both
 * sides read them, so they add nothing. Hidden rows and keys have mag 0: exactly 0 expected. */
#include "attn/attn.h"
#include "attn_half.h"
#include "attn_rng.h"
#include "attn_sdpa_problem.h"
#include "sdpa_ref.h"

#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOUND_C 4.0
#define SEED 4242

typedef struct bcase {
    int64_t B, Sq, Skv, Hq, Hkv, Dk, Dv;
    int causal;
    attn_align align;
    int64_t wl, wr;
    float softcap, scale;
    int64_t madd[4], mbool[4]; /* mask shapes ([0] = 0: none; 1 = broadcast dim) */
    int dmask;                 /* ask for the additive mask's gradient */
    attn_dtype in, grad, out;  /* q, k, v, dout / dq, dk, dv / the forward's out */
    int layout;                /* of q, k, v, dout and the gradients: 0 contiguous BSHD;
                                * 1 row-padded [B, H, S, D]; 2 column-major planes [B, H, D, S] */
    int hide;                  /* mask_bool hides every key of query row 3 */
    int plant;                 /* Inf/NaN where nothing may read it (hidden keys 200, 201 and
                                * row 3; needs hide and Skv > 201) */
} bcase;

static bcase base(int64_t B, int64_t Sq, int64_t Skv, int64_t Hq, int64_t Hkv, int64_t Dk,
                  int64_t Dv)
{
    return (bcase){.B = B, .Sq = Sq, .Skv = Skv, .Hq = Hq, .Hkv = Hkv, .Dk = Dk, .Dv = Dv,
                   .wl = -1, .wr = -1, .in = ATTN_F32, .grad = ATTN_F32, .out = ATTN_F32};
}

/* ---- tensors -------------------------------------------------------------------------------- */

typedef struct btensor {
    unsigned char *mem;
    size_t bytes;
    attn_tensor t;
} btensor;

/* A [d0, d1, d2, d3] view of dtype dt in the given layout, every byte 0xff (NaN in each float
 * dtype) before it is filled. Layout 1: [d0][d2][d1][d3 + 3]; 2: [d0][d2][d3][d1]. */
static btensor bt_new(attn_dtype dt, const int64_t *sh, int layout)
{
    btensor x = {0};
    int64_t st[4], n;
    if (layout == 0) {
        st[3] = 1, st[2] = sh[3], st[1] = sh[2] * sh[3], st[0] = sh[1] * sh[2] * sh[3];
        n = sh[0] * st[0];
    } else if (layout == 1) {
        st[3] = 1, st[1] = sh[3] + 3, st[2] = sh[1] * st[1], st[0] = sh[2] * st[2];
        n = sh[0] * st[0];
    } else {
        st[1] = 1, st[3] = sh[1], st[2] = sh[3] * sh[1], st[0] = sh[2] * st[2];
        n = sh[0] * st[0];
    }
    x.bytes = (size_t)(n > 0 ? n : 1) * attn_dtype_size(dt);
    x.mem = malloc(x.bytes);
    ck_assert_ptr_nonnull(x.mem);
    memset(x.mem, 0xff, x.bytes);
    x.t = (attn_tensor){.data = x.mem, .dtype = dt};
    for (int i = 0; i < 4; i++)
        x.t.shape[i] = sh[i], x.t.stride[i] = st[i];
    return x;
}

static int64_t bt_count(const btensor *x)
{
    return x->t.shape[0] * x->t.shape[1] * x->t.shape[2] * x->t.shape[3];
}

/* Element offset of dense index e (row-major over the shape). */
static int64_t bt_at(const btensor *x, int64_t e)
{
    int64_t off = 0;
    for (int i = 3; i >= 0; i--) {
        off += e % x->t.shape[i] * x->t.stride[i];
        e /= x->t.shape[i];
    }
    return off;
}

static void bt_set(btensor *x, int64_t i0, int64_t i1, int64_t i2, int64_t i3, double v)
{
    const int64_t *st = x->t.stride;
    attn_store_f64(x->mem, x->t.dtype, i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3], v);
}

static void bt_fill(btensor *x, uint64_t stream, double lo, double hi)
{
    for (int64_t e = 0; e < bt_count(x); e++)
        attn_store_f64(x->mem, x->t.dtype, bt_at(x, e),
                       attn_rng_uniform(SEED, stream, (uint64_t)e, lo, hi));
}

/* Whether the bytes outside the view's elements still hold 0xff (nothing written there). */
static int bt_pad_intact(const btensor *x)
{
    unsigned char *in = calloc(x->bytes, 1);
    ck_assert_ptr_nonnull(in);
    const size_t es = attn_dtype_size(x->t.dtype);
    for (int64_t e = 0; e < bt_count(x); e++)
        memset(in + (size_t)bt_at(x, e) * es, 1, es);
    int ok = 1;
    for (size_t i = 0; i < x->bytes; i++)
        ok &= in[i] || x->mem[i] == 0xff;
    free(in);
    return ok;
}

/* Every tensor of a case. */
typedef struct bprob {
    btensor q, k, v, out, lse, dout, madd, mbool, dq, dk, dv, dmask;
    attn_sdpa_desc desc;
    attn_sdpa_grads grads;
} bprob;

static void bp_init(bprob *x, const bcase *c)
{
    memset(x, 0, sizeof *x);
    const int64_t sq[4] = {c->B, c->Sq, c->Hq, c->Dk}, so[4] = {c->B, c->Sq, c->Hq, c->Dv};
    const int64_t sk[4] = {c->B, c->Skv, c->Hkv, c->Dk}, sv[4] = {c->B, c->Skv, c->Hkv, c->Dv};
    const int64_t sl[4] = {c->B, c->Sq, c->Hq, 1};
    x->q = bt_new(c->in, sq, c->layout);
    x->k = bt_new(c->in, sk, c->layout);
    x->v = bt_new(c->in, sv, c->layout);
    x->dout = bt_new(c->in, so, c->layout);
    x->out = bt_new(c->out, so, 0);
    x->lse = bt_new(ATTN_F32, sl, 0);
    x->dq = bt_new(c->grad, sq, c->layout);
    x->dk = bt_new(c->grad, sk, c->layout);
    x->dv = bt_new(c->grad, sv, c->layout);
    bt_fill(&x->q, 1, -2, 2);
    bt_fill(&x->k, 2, -2, 2);
    bt_fill(&x->v, 3, -1, 1);
    bt_fill(&x->dout, 4, -1, 1);
    x->desc = attn_sdpa_desc_default();
    x->desc.causal = c->causal;
    x->desc.align = c->align;
    x->desc.window_left = c->wl;
    x->desc.window_right = c->wr;
    x->desc.softcap = c->softcap;
    x->desc.scale = c->scale;
    x->grads = (attn_sdpa_grads){.dq = &x->dq.t, .dk = &x->dk.t, .dv = &x->dv.t};
    if (c->madd[0]) {
        x->madd = bt_new(ATTN_F32, c->madd, 0);
        bt_fill(&x->madd, 5, -1, 1);
        x->desc.mask_add = &x->madd.t;
        if (c->dmask) {
            x->dmask = bt_new(ATTN_F32, c->madd, c->layout ? 1 : 0);
            x->grads.dmask_add = &x->dmask.t;
        }
    }
    if (c->mbool[0]) {
        x->mbool = bt_new(ATTN_U8, c->mbool, 0);
        for (int64_t e = 0; e < bt_count(&x->mbool); e++) {
            const int64_t i = e / (c->mbool[2] * c->mbool[3]) % c->mbool[1];
            const int keep = attn_rng_uniform(SEED, 6, (uint64_t)e, 0, 1) < 0.8;
            const int64_t j = e % c->mbool[3];
            const int planted = c->plant && (j == 200 || j == 201);
            x->mbool.mem[bt_at(&x->mbool, e)] =
                (unsigned char)(keep && !(c->hide && i == 3) && !planted);
        }
        x->desc.mask_bool = &x->mbool.t;
    }
    if (c->plant) {
        bt_set(&x->k, 0, 200, 0, 5, NAN);
        bt_set(&x->v, 0, 201, 0, 6, INFINITY);
        bt_set(&x->q, 0, 3, 0, 2, INFINITY);
        bt_set(&x->dout, 0, 3, c->Hq - 1, 1, -INFINITY);
    }
}

static void bp_free(bprob *x)
{
    btensor *all[] = {&x->q,  &x->k,     &x->v,    &x->out, &x->lse, &x->dout,
                      &x->madd, &x->mbool, &x->dq, &x->dk,  &x->dv,  &x->dmask};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]->mem);
}

/* Forward then backward on the cpu backend with the given options. */
static void bp_run(bprob *x, const char *options)
{
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("cpu", options, &be), ATTN_OK);
    attn_status st =
        attn_sdpa_forward(be, &x->desc, &x->q.t, &x->k.t, &x->v.t, &x->out.t, &x->lse.t);
    ck_assert_msg(st == ATTN_OK, "forward: %s", attn_last_error());
    char name[64];
    st = attn_sdpa_backward_impl_name(be, &x->desc, &x->q.t, &x->k.t, &x->v.t, &x->out.t,
                                      &x->lse.t, &x->dout.t, &x->grads, name, sizeof name);
    ck_assert_msg(st == ATTN_OK, "impl_name: %s", attn_last_error());
    ck_assert_msg(strncmp(name, "cpu:flash_bwd_blis_br", 21) == 0, "%s", name);
    st = attn_sdpa_backward(be, &x->desc, &x->q.t, &x->k.t, &x->v.t, &x->out.t, &x->lse.t,
                            &x->dout.t, &x->grads);
    ck_assert_msg(st == ATTN_OK, "backward: %s", attn_last_error());
    attn_backend_close(be);
}

/* ---- comparison with the reference ---------------------------------------------------------- */

static double unit(attn_dtype t)
{
    return t == ATTN_F16 ? 0x1p-11 : t == ATTN_BF16 ? 0x1p-8 : 0x1p-24;
}

/* Over the grid: the largest share of its bound an error used, and on the all-f32 cases the
 * largest |err| / (mag u32 sqrt(L)) (what the constant C must cover). */
static double worst_share, worst_f32;

/* Every element of gradient x within mag * rel. */
static void expect_close(const char *name, const btensor *x, const double *want,
                         const double *mag, double rel, double f32_unit, const char *what)
{
    for (int64_t e = 0; e < bt_count(x); e++) {
        const double got = attn_load_f64(x->mem, x->t.dtype, bt_at(x, e));
        const double err = fabs(got - want[e]), tol = mag[e] * rel;
        ck_assert_msg(err <= tol, "%s: %s[%lld] = %.9g, want %.9g (mag %.3g, bound %.3g)", what,
                      name, (long long)e, got, want[e], mag[e], tol);
        if (mag[e] > 0) {
            worst_share = fmax(worst_share, err / tol);
            worst_f32 = fmax(worst_f32, err / (mag[e] * f32_unit));
        }
    }
}

static double *dalloc(int64_t n)
{
    double *a = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    ck_assert_ptr_nonnull(a);
    return a;
}

static void expect_reference(bprob *x, const bcase *c, const char *what)
{
    attn_sdpa_problem p;
    attn_status st = attn_sdpa_validate_backward(&x->desc, &x->q.t, &x->k.t, &x->v.t, &x->out.t,
                                                 &x->lse.t, &x->dout.t, &x->grads, &p);
    ck_assert_msg(st == ATTN_OK, "validate: %s", attn_last_error());
    const int64_t nq = bt_count(&x->dq), nk = bt_count(&x->dk), nv = bt_count(&x->dv);
    const int64_t nm = c->dmask ? bt_count(&x->dmask) : 0;
    attn_ref_sdpa_grads g = {dalloc(nq), dalloc(nk), dalloc(nv), c->dmask ? dalloc(nm) : NULL,
                             dalloc(nq), dalloc(nk), dalloc(nv), c->dmask ? dalloc(nm) : NULL};
    ck_assert_int_eq(attn_ref_sdpa_backward(&p, ATTN_REF_F64, &g), ATTN_OK);
    const double sqrt_l = sqrt((double)(c->Skv + c->Hq / c->Hkv * c->Sq + c->Dk + c->Dv));
    const double rel = BOUND_C * 0x1p-24 * sqrt_l + unit(c->out);
    const int all_f32 = c->out == ATTN_F32 && c->grad == ATTN_F32;
    const double f32u = all_f32 ? 0x1p-24 * sqrt_l : INFINITY; /* ratios of f32 cases only */
    expect_close("dq", &x->dq, g.dq, g.dq_mag, rel + unit(c->grad), f32u, what);
    expect_close("dk", &x->dk, g.dk, g.dk_mag, rel + unit(c->grad), f32u, what);
    expect_close("dv", &x->dv, g.dv, g.dv_mag, rel + unit(c->grad), f32u, what);
    if (c->dmask)
        expect_close("dmask_add", &x->dmask, g.dmask, g.dmask_mag, rel + 0x1p-24, f32u, what);
    const btensor *grads[] = {&x->dq, &x->dk, &x->dv, &x->dmask};
    for (int i = 0; i < (c->dmask ? 4 : 3); i++)
        ck_assert_msg(bt_pad_intact(grads[i]), "%s: bytes beside gradient %d written", what, i);
    double *all[] = {g.dq, g.dk, g.dv, g.dmask, g.dq_mag, g.dk_mag, g.dv_mag, g.dmask_mag};
    for (int i = 0; i < 8; i++)
        free(all[i]);
}

/* ---- the grid ------------------------------------------------------------------------------- */

#define N_GRID 28

static bcase grid(int k)
{
    bcase c = base(1, 150, 270, 2, 1, 32, 32); /* ragged tiles both ways, 2 key slices */
    switch (k) {
    case 0: break;
    case 1: c.causal = 1; break;
    case 2: c.causal = 1, c.Sq = 100, c.align = ATTN_ALIGN_BOTTOM_RIGHT; break;
    case 3: c.causal = 1, c.Sq = 300, c.Skv = 140, c.align = ATTN_ALIGN_BOTTOM_RIGHT; break;
    case 4: c.causal = 1, c.Sq = 300, c.Skv = 140; break; /* top-left, Sq > Skv */
    case 5: c.wl = 40, c.wr = 7; break;
    case 6: c.causal = 1, c.wl = 64, c.Sq = 90, c.align = ATTN_ALIGN_BOTTOM_RIGHT; break;
    case 7: c.wl = 0, c.wr = 0; break;                    /* one key per row */
    case 8: c.Hq = 4, c.Hkv = 2, c.B = 2, c.causal = 1; break;   /* GQA 4/2 */
    case 9: c.Hq = 4, c.Hkv = 1, c.Dk = 48, c.Dv = 20; break;    /* MQA, Dk != Dv */
    case 10: c.Dk = 16, c.Dv = 72, c.scale = 0.3f; break;
    case 11: c.softcap = 5.0f, c.causal = 1; break;
    case 12: c.softcap = 2.0f, c.scale = 1.0f, c.Hq = 4, c.Hkv = 2; break;
    case 13: /* full additive mask and its gradient */
        c.B = 2, c.Hq = 4, c.Hkv = 2, c.madd[0] = 2, c.madd[1] = c.Sq, c.madd[2] = 4;
        c.madd[3] = c.Skv, c.dmask = 1;
        break;
    case 14: /* shared over batch and KV heads: one item set */
        c.B = 2, c.Hq = 4, c.Hkv = 2, c.madd[0] = 1, c.madd[1] = c.Sq, c.madd[2] = 1;
        c.madd[3] = c.Skv, c.dmask = 1, c.causal = 1;
        break;
    case 15: /* broadcast over query rows (a per-key bias) */
        c.madd[0] = 1, c.madd[1] = 1, c.madd[2] = 2, c.madd[3] = c.Skv, c.dmask = 1;
        c.softcap = 4.0f, c.wl = 100;
        break;
    case 16: /* boolean mask with broadcast heads, additive without its gradient */
        c.Hq = 4, c.Hkv = 2, c.mbool[0] = 1, c.mbool[1] = c.Sq, c.mbool[2] = 1;
        c.mbool[3] = c.Skv, c.madd[0] = 1, c.madd[1] = 1, c.madd[2] = 1, c.madd[3] = c.Skv;
        break;
    case 17: /* hidden rows: row 3 sees nothing (cases 3, 4, 18: rows before the diagonal) */
        c.mbool[0] = 1, c.mbool[1] = c.Sq, c.mbool[2] = 2, c.mbool[3] = c.Skv, c.hide = 1;
        c.madd[0] = 1, c.madd[1] = c.Sq, c.madd[2] = 1, c.madd[3] = c.Skv, c.dmask = 1;
        break;
    case 18: c.Sq = 200, c.Skv = 60, c.causal = 1, c.align = ATTN_ALIGN_BOTTOM_RIGHT; break;
    case 19: c.in = ATTN_F16, c.grad = ATTN_F16; break;
    case 20: c.in = ATTN_BF16, c.grad = ATTN_BF16, c.out = ATTN_BF16, c.causal = 1; break;
    case 21: c.in = ATTN_F16, c.grad = ATTN_F32, c.out = ATTN_F16, c.Hq = 4, c.Hkv = 2; break;
    case 22: c.layout = 1, c.causal = 1, c.Hq = 4, c.Hkv = 2; break;
    case 23: /* column-major planes (f32: read in place), dmask into a padded view */
        c.layout = 2, c.madd[0] = 1, c.madd[1] = c.Sq, c.madd[2] = 2, c.madd[3] = c.Skv;
        c.dmask = 1;
        break;
    case 24: c.layout = 1, c.in = ATTN_BF16, c.grad = ATTN_F16, c.wl = 30, c.wr = 30; break;
    case 26: /* non-finite q, dout of a hidden row, k and v of keys no row sees */
        c.mbool[0] = 1, c.mbool[1] = c.Sq, c.mbool[2] = 2, c.mbool[3] = c.Skv, c.hide = 1;
        c.plant = 1;
        break;
    case 25: /* one key column: every key adds into it (one group: key slices otherwise) */
        c.madd[0] = 1, c.madd[1] = c.Sq, c.madd[2] = 2, c.madd[3] = 1, c.dmask = 1;
        break;
    default: /* tiny, one tile each way; many (batch, KV head) groups */
        c = base(3, 5, 7, 6, 3, 8, 4), c.causal = 1;
        break;
    }
    return c;
}

START_TEST(test_grid)
{
    char what[32];
    for (int k = 0; k < N_GRID; k++) {
        const bcase c = grid(k);
        bprob x;
        bp_init(&x, &c);
        bp_run(&x, NULL);
        snprintf(what, sizeof what, "grid case %d", k);
        expect_reference(&x, &c, what);
        bp_free(&x);
    }
    printf("sdpa backward cpu: largest share of the bound used %.3f; f32 cases: largest "
           "|err| / (mag u32 sqrt(L)) %.3f (C = %.0f)\n", worst_share, worst_f32, BOUND_C);
}
END_TEST

/* ---- thread counts -------------------------------------------------------------------------- */

static unsigned char *copy_of(const btensor *x)
{
    unsigned char *c = malloc(x->bytes);
    ck_assert_ptr_nonnull(c);
    memcpy(c, x->mem, x->bytes);
    return c;
}

/* Cases with one item set per group (and key slices: fewer groups than BWD_MIN_ITEMS), with
 * the shared mask gradient (one set, slices), and with many groups. */
START_TEST(test_threads)
{
    static const int cases[] = {1, 8, 14, 15, 21, 25, 27};
    static const char *const counts[] = {"threads=1", "threads=2", "threads=3"};
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        const bcase c = grid(cases[n]);
        unsigned char *first[4] = {0};
        for (int t = 0; t < 3; t++) {
            bprob x;
            bp_init(&x, &c);
            bp_run(&x, counts[t]);
            const btensor *g[] = {&x.dq, &x.dk, &x.dv, &x.dmask};
            for (int i = 0; i < (c.dmask ? 4 : 3); i++) {
                if (t == 0)
                    first[i] = copy_of(g[i]);
                else
                    ck_assert_msg(memcmp(first[i], g[i]->mem, g[i]->bytes) == 0,
                                  "case %d: gradient %d differs on %s", cases[n], i, counts[t]);
            }
            bp_free(&x);
        }
        for (int i = 0; i < 4; i++)
            free(first[i]);
    }
}
END_TEST

/* No query rows: dk, dv and dmask_add (query dim 1) are zeroed, nothing else is written. */
START_TEST(test_no_queries)
{
    bcase c = base(2, 0, 200, 4, 2, 16, 24);
    c.madd[0] = 2, c.madd[1] = 1, c.madd[2] = 4, c.madd[3] = c.Skv, c.dmask = 1;
    c.layout = _i;
    bprob x;
    bp_init(&x, &c);
    bp_run(&x, NULL);
    const btensor *g[] = {&x.dk, &x.dv, &x.dmask};
    for (int i = 0; i < 3; i++) {
        for (int64_t e = 0; e < bt_count(g[i]); e++)
            ck_assert(attn_load_f64(g[i]->mem, g[i]->t.dtype, bt_at(g[i], e)) == 0.0);
        ck_assert(bt_pad_intact(g[i]));
    }
    bp_free(&x);
}
END_TEST

static Suite *backward_cpu_suite(void)
{
    Suite *s = suite_create("sdpa_backward_cpu");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_grid);
    tcase_add_test(tc, test_threads);
    tcase_add_loop_test(tc, test_no_queries, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(backward_cpu_suite());
}
