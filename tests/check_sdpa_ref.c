/* check_sdpa_ref.c - invariants of the ground truth: the naive definition (reference/sdpa.c
 * through the public API and directly), its F32 calibration mode, and the FlashAttention
 * teaching implementation (reference/sdpa_flash.c), which must agree with it on every shape.
 * Expected values come from hand-derived formulas or from a second, independent way of
 * computing the same thing (permuted layouts, repeated heads, expanded masks). */
#include "check_run.h"

#include <check.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "attn_backend_impl.h"
#include "attn_half.h"
#include "attn_rng.h"
#include "sdpa_ref.h"

#define SEED 20240611u

/* ---- a test problem: f32 BSHD inputs filled from the counter-based generator ----------------- */

typedef struct tcase {
    int64_t B, Sq, Skv, Hq, Hkv, Dk, Dv;
    float *q, *k, *v, *o;
    attn_tensor tq, tk, tv, to;
} tcase;

static void fill(float *x, int64_t n, uint64_t stream, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)attn_rng_uniform(SEED, stream, (uint64_t)i, lo, hi);
}

static void tc_init(tcase *c, int64_t B, int64_t Sq, int64_t Skv, int64_t Hq, int64_t Hkv,
                    int64_t Dk, int64_t Dv)
{
    *c = (tcase){.B = B, .Sq = Sq, .Skv = Skv, .Hq = Hq, .Hkv = Hkv, .Dk = Dk, .Dv = Dv};
    c->q = malloc(sizeof(float) * (size_t)(B * Sq * Hq * Dk));
    c->k = malloc(sizeof(float) * (size_t)(B * Skv * Hkv * Dk));
    c->v = malloc(sizeof(float) * (size_t)(B * Skv * Hkv * Dv));
    c->o = malloc(sizeof(float) * (size_t)(B * Sq * Hq * Dv));
    ck_assert(c->q && c->k && c->v && c->o);
    fill(c->q, B * Sq * Hq * Dk, 1, -2, 2);
    fill(c->k, B * Skv * Hkv * Dk, 2, -2, 2);
    fill(c->v, B * Skv * Hkv * Dv, 3, -1, 1);
    c->tq = attn_tensor_bshd(c->q, ATTN_F32, B, Sq, Hq, Dk);
    c->tk = attn_tensor_bshd(c->k, ATTN_F32, B, Skv, Hkv, Dk);
    c->tv = attn_tensor_bshd(c->v, ATTN_F32, B, Skv, Hkv, Dv);
    c->to = attn_tensor_bshd(c->o, ATTN_F32, B, Sq, Hq, Dv);
}

static void tc_free(tcase *c)
{
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->o);
}

static int64_t n_out(const tcase *c)
{
    return c->B * c->Sq * c->Hq * c->Dv;
}

static int64_t n_lse(const tcase *c)
{
    return c->B * c->Hq * c->Sq;
}

/* f64 results of the reference entry points. */
typedef struct dres {
    double *o, *lse, *mag;
} dres;

static dres dres_new(const tcase *c)
{
    dres r = {malloc(sizeof(double) * (size_t)n_out(c)), malloc(sizeof(double) * (size_t)n_lse(c)),
              malloc(sizeof(double) * (size_t)n_out(c))};
    ck_assert(r.o && r.lse && r.mag);
    return r;
}

static void dres_free(dres *r)
{
    free(r->o);
    free(r->lse);
    free(r->mag);
}

static attn_sdpa_problem tc_problem(const attn_sdpa_desc *d, tcase *c)
{
    attn_sdpa_problem p;
    attn_status st = attn_sdpa_validate(d, &c->tq, &c->tk, &c->tv, &c->to, NULL, &p);
    ck_assert_msg(st == ATTN_OK, "validate: %s", attn_last_error());
    return p;
}

static dres naive(const attn_sdpa_desc *d, tcase *c, attn_ref_precision prec)
{
    attn_sdpa_problem p = tc_problem(d, c);
    dres r = dres_new(c);
    ck_assert_int_eq(attn_ref_sdpa(&p, prec, r.o, r.lse, r.mag), ATTN_OK);
    return r;
}

static dres flash(const attn_sdpa_desc *d, tcase *c, int64_t br, int64_t bc)
{
    attn_sdpa_problem p = tc_problem(d, c);
    dres r = dres_new(c);
    ck_assert_int_eq(attn_ref_sdpa_flash(&p, br, bc, r.o, r.lse), ATTN_OK);
    return r;
}

/* Through the public API on the "ref" backend: f32 out and lse ([B, H, Sq] contiguous). */
static void forward(const attn_sdpa_desc *d, tcase *c, const attn_tensor *q, const attn_tensor *k,
                    const attn_tensor *v, const attn_tensor *out, float *lse)
{
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    attn_tensor tl = {.data = lse, .dtype = ATTN_F32, .shape = {c->B, c->Sq, c->Hq, 1},
                      .stride = {c->Hq * c->Sq, 1, c->Sq, 1}};
    attn_status st = attn_sdpa_forward(be, d, q, k, v, out, lse ? &tl : NULL);
    ck_assert_msg(st == ATTN_OK, "forward: %s", attn_last_error());
    attn_backend_close(be);
}

/* Public-API run on the case's own tensors into a fresh f32 output (caller frees). */
static float *forward_tc(const attn_sdpa_desc *d, tcase *c, float *lse)
{
    forward(d, c, &c->tq, &c->tk, &c->tv, &c->to, lse);
    float *o = malloc(sizeof(float) * (size_t)n_out(c));
    ck_assert(o);
    memcpy(o, c->o, sizeof(float) * (size_t)n_out(c));
    return o;
}

/* The element checks scan first and assert once: a Check assertion per element would record
 * a location per call and dominate the suite's run time. */
static void assert_same_floats(const float *a, const float *b, int64_t n, const char *what)
{
    int64_t i = 0;
    while (i < n && memcmp(&a[i], &b[i], sizeof(float)) == 0)
        i++;
    ck_assert_msg(i == n, "%s: element %lld: %.9g vs %.9g", what, (long long)i,
                  i < n ? (double)a[i] : 0.0, i < n ? (double)b[i] : 0.0);
}

/* |a - b| <= rel * scale per element (scale = absmag, the row's condition) and lse within
 * rel * max(1, |lse|); -inf and exact zeros must match exactly. */
static void assert_close(const dres *a, const dres *ref, const tcase *c, double rel,
                         const char *what)
{
    int64_t i = 0;
    while (i < n_out(c) && fabs(a->o[i] - ref->o[i]) <= rel * ref->mag[i])
        i++;
    ck_assert_msg(i == n_out(c), "%s: out[%lld] %.17g vs %.17g", what, (long long)i,
                  i < n_out(c) ? a->o[i] : 0.0, i < n_out(c) ? ref->o[i] : 0.0);
    i = 0;
    while (i < n_lse(c) && (isinf(ref->lse[i]) ? a->lse[i] == ref->lse[i]
                            : fabs(a->lse[i] - ref->lse[i]) <=
                                  rel * fmax(1.0, fabs(ref->lse[i]))))
        i++;
    ck_assert_msg(i == n_lse(c), "%s: lse[%lld] %.17g vs %.17g", what, (long long)i,
                  i < n_lse(c) ? a->lse[i] : 0.0, i < n_lse(c) ? ref->lse[i] : 0.0);
}

/* ---- closed forms ---------------------------------------------------------------------------- */

/* One query, two keys, Dk = 1, scale 1: the softmax written out by hand,
 * s_j = cap * tanh(q k_j / cap) + mask_j (cap = 0: no cap), p = e^s / sum e^s. */
static void closed_form(float cap, const float *mask)
{
    tcase c;
    tc_init(&c, 1, 1, 2, 1, 1, 1, 2);
    const float q = 0.75f, k[2] = {-0.5f, 1.25f}, v[4] = {2.0f, -1.0f, 6.0f, 3.0f};
    c.q[0] = q;
    memcpy(c.k, k, sizeof k);
    memcpy(c.v, v, sizeof v);
    attn_tensor tm = attn_tensor_bshd((void *)mask, ATTN_F32, 1, 1, 1, 2);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.scale = 1.0f;
    d.softcap = cap;
    d.mask_add = mask ? &tm : NULL;

    double s[2], e[2];
    for (int j = 0; j < 2; j++) {
        s[j] = (double)q * k[j];
        if (cap > 0)
            s[j] = cap * tanh(s[j] / cap);
        if (mask)
            s[j] += mask[j];
        e[j] = exp(s[j]);
    }
    const double sum = e[0] + e[1];
    const double want_o[2] = {(e[0] * v[0] + e[1] * v[2]) / sum, (e[0] * v[1] + e[1] * v[3]) / sum};
    const double want_lse = log(sum);

    float lse;
    float *o = forward_tc(&d, &c, &lse);
    for (int x = 0; x < 2; x++)
        ck_assert_double_eq_tol(o[x], want_o[x], 1e-6 * fabs(want_o[x]));
    ck_assert_double_eq_tol(lse, want_lse, 1e-6 * fabs(want_lse));

    dres r = naive(&d, &c, ATTN_REF_F64);
    for (int x = 0; x < 2; x++) {
        ck_assert_double_eq_tol(r.o[x], want_o[x], 1e-14);
        ck_assert_double_eq_tol(r.mag[x],
                                (e[0] * fabs(v[x]) + e[1] * fabs(v[2 + x])) / sum, 1e-14);
    }
    ck_assert_double_eq_tol(r.lse[0], want_lse, 1e-14);
    dres_free(&r);
    free(o);
    tc_free(&c);
}

START_TEST(test_closed_form)
{
    closed_form(0, NULL);
}
END_TEST

/* Soft-cap comes before the additive mask: cap*tanh(s/cap) + mask, not cap*tanh((s+mask)/cap). */
START_TEST(test_closed_form_cap_then_mask)
{
    const float mask[2] = {0.5f, -1.0f};
    closed_form(0.3f, mask);
    closed_form(0, mask);
    closed_form(0.3f, NULL);
}
END_TEST

/* ---- softmax rows sum to one (V = identity makes the output the probability matrix) ---------- */

static void identity_v(tcase *c)
{
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t j = 0; j < c->Skv; j++)
            for (int64_t g = 0; g < c->Hkv; g++)
                for (int64_t x = 0; x < c->Dv; x++)
                    c->v[((b * c->Skv + j) * c->Hkv + g) * c->Dv + x] = j == x;
}

/* Each row of P sums to 1 (or is exactly 0 with lse -inf when nothing is visible), and every
 * key the band hides has probability exactly 0. Returns the number of empty rows. */
static int check_rows(const attn_sdpa_desc *d, tcase *c)
{
    dres r = naive(d, c, ATTN_REF_F64);
    const int64_t off = d->align == ATTN_ALIGN_BOTTOM_RIGHT ? c->Skv - c->Sq : 0;
    int empty = 0;
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t i = 0; i < c->Sq; i++)
            for (int64_t h = 0; h < c->Hq; h++) {
                const double *p = r.o + ((b * c->Sq + i) * c->Hq + h) * c->Dv;
                double sum = 0;
                for (int64_t j = 0; j < c->Skv; j++) {
                    const int64_t pos = i + off;
                    int band = (d->window_left < 0 || j >= pos - d->window_left) &&
                               (!d->causal || j <= pos) &&
                               (d->window_right < 0 || j <= pos + d->window_right);
                    ck_assert_msg(p[j] >= 0 && (band || p[j] == 0), "row %lld key %lld: p=%g",
                                  (long long)i, (long long)j, p[j]);
                    sum += p[j];
                }
                if (r.lse[(b * c->Hq + h) * c->Sq + i] == -INFINITY) {
                    ck_assert(sum == 0);
                    empty++;
                } else {
                    ck_assert_double_eq_tol(sum, 1.0, 1e-13);
                }
            }
    dres_free(&r);
    return empty;
}

START_TEST(test_rows_sum_to_one)
{
    tcase c;
    tc_init(&c, 2, 9, 20, 4, 2, 16, 20);
    identity_v(&c);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    ck_assert_int_eq(check_rows(&d, &c), 0);
    d.causal = 1;
    ck_assert_int_eq(check_rows(&d, &c), 0);
    d.window_left = 4;
    ck_assert_int_eq(check_rows(&d, &c), 0);
    d.causal = 0;
    d.window_right = 2;
    d.align = ATTN_ALIGN_TOP_LEFT;
    ck_assert_int_eq(check_rows(&d, &c), 0);

    /* random boolean mask with one row fully hidden, and an additive mask */
    uint8_t *mb = malloc((size_t)(c.Sq * c.Skv));
    float *ma = malloc(sizeof(float) * (size_t)(c.Sq * c.Skv));
    ck_assert(mb && ma);
    for (int64_t x = 0; x < c.Sq * c.Skv; x++) {
        mb[x] = x / c.Skv == 3 ? 0 : attn_rng_unit(SEED, 7, (uint64_t)x) < 0.7;
        ma[x] = (float)attn_rng_uniform(SEED, 8, (uint64_t)x, -3, 3);
    }
    attn_tensor tb = attn_tensor_bshd(mb, ATTN_U8, 1, c.Sq, 1, c.Skv);
    attn_tensor ta = attn_tensor_bshd(ma, ATTN_F32, 1, c.Sq, 1, c.Skv);
    d = attn_sdpa_desc_default();
    d.mask_bool = &tb;
    d.mask_add = &ta;
    ck_assert_int_eq(check_rows(&d, &c), (int)(c.B * c.Hq)); /* row 3 of every (b, h) */
    free(mb);
    free(ma);
    tc_free(&c);
}
END_TEST

/* ---- key_score: column sums of the probability matrix -------------------------------------- */

/* With Dv == Skv and v_j = e_j, out[b, i, h, :] is row i's probabilities, so key_score[b, j, g]
 * must be the sum of out[b, i, h, j] over the rows i and the heads h of KV head g: a second,
 * independent computation through attn_ref_sdpa. Checks the reference entry point (f64, also
 * with row weights w_r = 1 + r % 5) and the ref backend's f32 key_score (attn_sdpa_forward_ex,
 * the f64 value rounded once). Keys no row sees must be exactly 0. Returns their number. */
static int check_key_score(const attn_sdpa_desc *d, tcase *c)
{
    ck_assert_int_eq(c->Dv, c->Skv);
    identity_v(c);
    dres r = naive(d, c, ATTN_REF_F64);
    attn_sdpa_problem p = tc_problem(d, c);
    const int64_t nk = c->B * c->Skv * c->Hkv, nr = c->B * c->Sq * c->Hq, grp = c->Hq / c->Hkv;
    double *ks = malloc(sizeof(double) * (size_t)nk), *ksw = malloc(sizeof(double) * (size_t)nk);
    double *w = malloc(sizeof(double) * (size_t)nr);
    float *ksf = malloc(sizeof(float) * (size_t)nk);
    ck_assert(ks && ksw && w && ksf);
    for (int64_t x = 0; x < nr; x++)
        w[x] = 1.0 + (double)(x % 5);
    ck_assert_int_eq(attn_ref_sdpa_key_score(&p, ATTN_REF_F64, NULL, ks), ATTN_OK);
    ck_assert_int_eq(attn_ref_sdpa_key_score(&p, ATTN_REF_F64, w, ksw), ATTN_OK);
    attn_tensor tks = attn_tensor_bshd(ksf, ATTN_F32, c->B, c->Skv, c->Hkv, 1);
    const attn_sdpa_outputs outs = {.out = &c->to, .key_score = &tks};
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    ck_assert_msg(attn_sdpa_forward_ex(be, d, &c->tq, &c->tk, &c->tv, &outs) == ATTN_OK, "%s",
                  attn_last_error());
    attn_backend_close(be);
    double err = 0, err_w = 0;
    int unseen = 0, bad_zero = 0, bad_f32 = 0;
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t j = 0; j < c->Skv; j++)
            for (int64_t g = 0; g < c->Hkv; g++) {
                double want = 0, want_w = 0;
                for (int64_t h = g * grp; h < (g + 1) * grp; h++)
                    for (int64_t i = 0; i < c->Sq; i++) {
                        const int64_t row = (b * c->Sq + i) * c->Hq + h;
                        want += r.o[row * c->Dv + j];
                        want_w += w[row] * r.o[row * c->Dv + j];
                    }
                const int64_t e = (b * c->Skv + j) * c->Hkv + g;
                err = fmax(err, fabs(ks[e] - want) / fmax(1.0, want));
                err_w = fmax(err_w, fabs(ksw[e] - want_w) / fmax(1.0, want_w));
                unseen += want == 0;
                bad_zero += (want == 0) != (ks[e] == 0);
                bad_f32 += ksf[e] != (float)ks[e];
            }
    ck_assert_msg(err <= 1e-12 && err_w <= 1e-12, "key_score vs column sums: %g, weighted %g",
                  err, err_w);
    ck_assert_msg(bad_zero == 0, "%d keys: zero key_score and zero column sum disagree", bad_zero);
    ck_assert_msg(bad_f32 == 0, "%d f32 key_score elements not the f64 value rounded", bad_f32);
    free(ks);
    free(ksw);
    free(w);
    free(ksf);
    dres_free(&r);
    return unseen;
}

START_TEST(test_key_score_column_sums)
{
    tcase c;
    tc_init(&c, 2, 9, 20, 4, 2, 16, 20); /* GQA: groups of 2 */
    attn_sdpa_desc d = attn_sdpa_desc_default();
    ck_assert_int_eq(check_key_score(&d, &c), 0);
    d.causal = 1; /* bottom-right: the last row sees every key */
    ck_assert_int_eq(check_key_score(&d, &c), 0);
    d.align = ATTN_ALIGN_TOP_LEFT; /* rows 0..8 see keys 0..8 only */
    ck_assert_int_eq(check_key_score(&d, &c), 2 * 2 * 11);
    d.align = ATTN_ALIGN_BOTTOM_RIGHT;
    d.window_left = 2; /* positions 11..19 see [pos - 2, pos]: keys 9..19 */
    ck_assert_int_eq(check_key_score(&d, &c), 2 * 2 * 9);
    d.causal = 0;
    d.window_right = 1;
    d.align = ATTN_ALIGN_TOP_LEFT; /* keys 0..9 */
    ck_assert_int_eq(check_key_score(&d, &c), 2 * 2 * 10);

    /* a fully hidden row (3) and a key nobody sees (5), with an additive mask: both masks
     * broadcast over batch and heads */
    uint8_t mb[9 * 20];
    float ma[9 * 20];
    for (int x = 0; x < 9 * 20; x++) {
        mb[x] = x / 20 != 3 && x % 20 != 5 && attn_rng_unit(SEED, 9, (uint64_t)x) < 0.8;
        ma[x] = (float)attn_rng_uniform(SEED, 10, (uint64_t)x, -3, 3);
    }
    attn_tensor tb = attn_tensor_bshd(mb, ATTN_U8, 1, 9, 1, 20);
    attn_tensor ta = attn_tensor_bshd(ma, ATTN_F32, 1, 9, 1, 20);
    d = attn_sdpa_desc_default();
    d.mask_bool = &tb;
    d.mask_add = &ta;
    int hidden = 0; /* keys the boolean mask hides from every row */
    for (int j = 0; j < 20; j++) {
        int seen = 0;
        for (int i = 0; i < 9; i++)
            seen |= mb[i * 20 + j];
        hidden += !seen;
    }
    ck_assert_int_ge(hidden, 1);
    ck_assert_int_eq(check_key_score(&d, &c), 2 * 2 * hidden);
    tc_free(&c);

    tc_init(&c, 1, 6, 12, 4, 1, 8, 12); /* MQA, soft-capped */
    d = attn_sdpa_desc_default();
    d.softcap = 2.0f;
    ck_assert_int_eq(check_key_score(&d, &c), 0);
    tc_free(&c);
}
END_TEST

/* ---- windows and alignment ------------------------------------------------------------------- */

START_TEST(test_window_ge_skv_is_causal)
{
    tcase c;
    tc_init(&c, 2, 17, 23, 4, 4, 32, 24);
    for (int align = 0; align < 2; align++) {
        attn_sdpa_desc d = attn_sdpa_desc_default();
        d.causal = 1;
        d.align = (attn_align)align;
        float *plain = forward_tc(&d, &c, NULL);
        const int64_t wins[] = {c.Skv - 1 + c.Sq, c.Skv, c.Skv + 1, 1 << 30};
        for (size_t w = 0; w < sizeof wins / sizeof wins[0]; w++) {
            d.window_left = wins[w];
            float *win = forward_tc(&d, &c, NULL);
            assert_same_floats(win, plain, n_out(&c), "window >= Skv vs causal");
            free(win);
        }
        free(plain);
    }
    tc_free(&c);
}
END_TEST

/* window_left = 0 with causal: each query sees only its own (aligned) key, so the output is
 * exactly that key's value row. */
START_TEST(test_window_zero_is_diagonal)
{
    tcase c;
    tc_init(&c, 1, 7, 12, 2, 1, 8, 5);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    d.window_left = 0;
    for (int align = 0; align < 2; align++) {
        d.align = (attn_align)align;
        const int64_t off = align ? c.Skv - c.Sq : 0;
        dres r = naive(&d, &c, ATTN_REF_F64);
        for (int64_t i = 0; i < c.Sq; i++)
            for (int64_t h = 0; h < c.Hq; h++) {
                for (int64_t x = 0; x < c.Dv; x++)
                    ck_assert(r.o[(i * c.Hq + h) * c.Dv + x] == c.v[(i + off) * c.Dv + x]);
                /* lse = the only logit */
                double s = 0;
                for (int64_t x = 0; x < c.Dk; x++)
                    s += (double)c.q[(i * c.Hq + h) * c.Dk + x] * c.k[(i + off) * c.Dk + x];
                ck_assert_double_eq_tol(r.lse[h * c.Sq + i], s / sqrt((double)c.Dk), 1e-13);
            }
        dres_free(&r);
    }
    tc_free(&c);
}
END_TEST

START_TEST(test_alignment)
{
    tcase c;
    tc_init(&c, 1, 5, 13, 2, 2, 16, 16);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    d.align = ATTN_ALIGN_TOP_LEFT;
    float *tl = forward_tc(&d, &c, NULL);
    d.align = ATTN_ALIGN_BOTTOM_RIGHT;
    float *br = forward_tc(&d, &c, NULL);
    ck_assert(memcmp(tl, br, sizeof(float) * (size_t)n_out(&c)) != 0);
    free(tl);
    free(br);
    tc_free(&c);

    tc_init(&c, 1, 13, 13, 2, 2, 16, 16);
    d.align = ATTN_ALIGN_TOP_LEFT;
    tl = forward_tc(&d, &c, NULL);
    d.align = ATTN_ALIGN_BOTTOM_RIGHT;
    br = forward_tc(&d, &c, NULL);
    assert_same_floats(tl, br, n_out(&c), "Sq == Skv alignments");
    free(tl);
    free(br);
    tc_free(&c);
}
END_TEST

/* ---- layouts and views ----------------------------------------------------------------------- */

/* Copy a BSHD array into a tensor view (any strides). */
static void scatter(const float *src, const attn_tensor *t)
{
    float *dst = t->data;
    const int64_t *n = t->shape, *s = t->stride;
    for (int64_t a = 0; a < n[0]; a++)
        for (int64_t b = 0; b < n[1]; b++)
            for (int64_t c = 0; c < n[2]; c++)
                for (int64_t x = 0; x < n[3]; x++)
                    dst[a * s[0] + b * s[1] + c * s[2] + x * s[3]] =
                        src[((a * n[1] + b) * n[2] + c) * n[3] + x];
}

static void gather(const attn_tensor *t, float *dst)
{
    const float *src = t->data;
    const int64_t *n = t->shape, *s = t->stride;
    for (int64_t a = 0; a < n[0]; a++)
        for (int64_t b = 0; b < n[1]; b++)
            for (int64_t c = 0; c < n[2]; c++)
                for (int64_t x = 0; x < n[3]; x++)
                    dst[((a * n[1] + b) * n[2] + c) * n[3] + x] =
                        src[a * s[0] + b * s[1] + c * s[2] + x * s[3]];
}

START_TEST(test_layouts_and_kv_views)
{
    tcase c;
    tc_init(&c, 2, 11, 19, 4, 2, 16, 12);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    d.window_left = 6;
    float lse_ref[2 * 4 * 11], lse_x[2 * 4 * 11];
    float *want = forward_tc(&d, &c, lse_ref);

    /* all four tensors BHSD */
    float *q = malloc(sizeof(float) * (size_t)(2 * 11 * 4 * 16));
    float *k = malloc(sizeof(float) * (size_t)(2 * 19 * 2 * 16));
    float *v = malloc(sizeof(float) * (size_t)(2 * 19 * 2 * 12));
    float *o = malloc(sizeof(float) * (size_t)n_out(&c));
    float *got = malloc(sizeof(float) * (size_t)n_out(&c));
    ck_assert(q && k && v && o && got);
    attn_tensor tq = attn_tensor_bhsd(q, ATTN_F32, 2, 11, 4, 16);
    attn_tensor tk = attn_tensor_bhsd(k, ATTN_F32, 2, 19, 2, 16);
    attn_tensor tv = attn_tensor_bhsd(v, ATTN_F32, 2, 19, 2, 12);
    attn_tensor to = attn_tensor_bhsd(o, ATTN_F32, 2, 11, 4, 12);
    scatter(c.q, &tq);
    scatter(c.k, &tk);
    scatter(c.v, &tv);
    forward(&d, &c, &tq, &tk, &tv, &to, lse_x);
    gather(&to, got);
    assert_same_floats(got, want, n_out(&c), "BHSD");
    assert_same_floats(lse_x, lse_ref, n_lse(&c), "BHSD lse");

    /* K and V as views into a bigger cache [B, 40, 3, 24] holding K and V side by side at
     * sequence offset 5 and head offset 1 */
    const int64_t SMAX = 40, HC = 3, DC = 24 + 16;
    float *cache = malloc(sizeof(float) * (size_t)(2 * SMAX * HC * DC));
    ck_assert(cache);
    fill(cache, 2 * SMAX * HC * DC, 9, -50, 50); /* garbage around the views */
    const int64_t cs[4] = {SMAX * HC * DC, HC * DC, DC, 1};
    attn_tensor vk = {.data = cache + 5 * cs[1] + 1 * cs[2], .dtype = ATTN_F32,
                      .shape = {2, 19, 2, 16}, .stride = {cs[0], cs[1], cs[2], cs[3]}};
    attn_tensor vv = vk;
    vv.data = cache + 5 * cs[1] + 1 * cs[2] + 16;
    vv.shape[3] = 12;
    scatter(c.k, &vk);
    scatter(c.v, &vv);
    forward(&d, &c, &c.tq, &vk, &vv, &c.to, lse_x);
    assert_same_floats(c.o, want, n_out(&c), "KV cache views");
    assert_same_floats(lse_x, lse_ref, n_lse(&c), "KV cache views lse");

    free(cache);
    free(q);
    free(k);
    free(v);
    free(o);
    free(got);
    free(want);
    tc_free(&c);
}
END_TEST

/* ---- GQA / MQA ------------------------------------------------------------------------------- */

static void gqa_equals_repeated(int64_t hkv)
{
    const int64_t Hq = 8, group = Hq / hkv;
    tcase c, r;
    tc_init(&c, 2, 9, 14, Hq, hkv, 16, 8);
    tc_init(&r, 2, 9, 14, Hq, Hq, 16, 8);
    memcpy(r.q, c.q, sizeof(float) * (size_t)(2 * 9 * Hq * 16));
    for (int64_t b = 0; b < 2; b++)
        for (int64_t j = 0; j < 14; j++)
            for (int64_t h = 0; h < Hq; h++) {
                const int64_t to = (b * 14 + j) * Hq + h, from = (b * 14 + j) * hkv + h / group;
                memcpy(r.k + to * 16, c.k + from * 16, sizeof(float) * 16);
                memcpy(r.v + to * 8, c.v + from * 8, sizeof(float) * 8);
            }
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    float *got = forward_tc(&d, &c, NULL);
    float *want = forward_tc(&d, &r, NULL);
    assert_same_floats(got, want, n_out(&c), "GQA vs repeated KV");
    free(got);
    free(want);
    tc_free(&c);
    tc_free(&r);
}

START_TEST(test_gqa_mqa)
{
    gqa_equals_repeated(2);
    gqa_equals_repeated(1);
}
END_TEST

/* ---- soft-cap -------------------------------------------------------------------------------- */

START_TEST(test_softcap)
{
    tcase c;
    tc_init(&c, 1, 16, 16, 2, 2, 32, 16);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.scale = 1.0f; /* large logits so a small cap matters */
    dres none = naive(&d, &c, ATTN_REF_F64);
    d.softcap = 1e30f;
    dres huge = naive(&d, &c, ATTN_REF_F64);
    assert_close(&huge, &none, &c, 1e-12, "cap 1e30 vs none");
    d.softcap = 2.0f;
    dres small = naive(&d, &c, ATTN_REF_F64);
    double maxdiff = 0;
    for (int64_t i = 0; i < n_out(&c); i++)
        maxdiff = fmax(maxdiff, fabs(small.o[i] - none.o[i]));
    ck_assert_msg(maxdiff > 1e-2, "cap 2 changed the output by only %g", maxdiff);
    dres_free(&none);
    dres_free(&huge);
    dres_free(&small);
    tc_free(&c);
}
END_TEST

/* ---- rows with no visible key ---------------------------------------------------------------- */

static void assert_row(const float *o, const float *lse, const tcase *c, int64_t i, int empty)
{
    for (int64_t h = 0; h < c->Hq; h++) {
        for (int64_t x = 0; x < c->Dv; x++) {
            float y = o[(i * c->Hq + h) * c->Dv + x];
            ck_assert(!isnan(y));
            if (empty)
                ck_assert_msg(y == 0 && !signbit(y), "row %lld: %g", (long long)i, (double)y);
        }
        float l = lse[h * c->Sq + i];
        ck_assert(empty ? l == -INFINITY : isfinite(l));
    }
}

START_TEST(test_fully_masked_rows)
{
    tcase c;
    tc_init(&c, 1, 8, 5, 2, 1, 8, 4);
    float lse[2 * 8];
    /* causal bottom-right with Sq > Skv: queries 0..2 sit before the first key */
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    float *o = forward_tc(&d, &c, lse);
    for (int64_t i = 0; i < c.Sq; i++)
        assert_row(o, lse, &c, i, i < 3);
    free(o);

    /* bool mask hiding row 2, additive -inf hiding row 5, both broadcast over heads */
    uint8_t mb[8 * 5];
    float ma[8 * 5];
    for (int x = 0; x < 40; x++) {
        mb[x] = x / 5 != 2;
        ma[x] = x / 5 == 5 ? -INFINITY : (x % 3 == 0 ? -INFINITY : 0.25f);
    }
    attn_tensor tb = attn_tensor_bshd(mb, ATTN_U8, 1, 8, 1, 5);
    attn_tensor ta = attn_tensor_bshd(ma, ATTN_F32, 1, 8, 1, 5);
    d = attn_sdpa_desc_default();
    d.mask_bool = &tb;
    d.mask_add = &ta;
    o = forward_tc(&d, &c, lse);
    for (int64_t i = 0; i < c.Sq; i++)
        assert_row(o, lse, &c, i, i == 2 || i == 5);
    free(o);
    tc_free(&c);
}
END_TEST

/* NaN in a visible input poisons exactly the rows that read it. */
START_TEST(test_nan_propagates)
{
    tcase c;
    tc_init(&c, 1, 6, 6, 1, 1, 4, 3);
    c.q[2 * 4 + 1] = NAN; /* query row 2 */
    c.v[4 * 3 + 0] = NAN; /* value of key 4: seen by causal rows 4 and 5 */
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    float lse[6];
    float *o = forward_tc(&d, &c, lse);
    for (int64_t i = 0; i < 6; i++) {
        ck_assert_int_eq(isnan(lse[i]) != 0, i == 2);
        ck_assert_int_eq(isnan(o[i * 3 + 0]) != 0, i == 2 || i >= 4);
        ck_assert_int_eq(isnan(o[i * 3 + 1]) != 0, i == 2);
    }
    free(o);

    /* NaN and Inf behind a boolean mask (key 1 for every row) never reach the output */
    c.q[2 * 4 + 1] = 0.5f;
    c.v[4 * 3 + 0] = 0.5f;
    c.k[1 * 4 + 2] = NAN;
    c.v[1 * 3 + 1] = INFINITY;
    uint8_t mb[6 * 6];
    for (int x = 0; x < 36; x++)
        mb[x] = x % 6 != 1;
    attn_tensor tb = attn_tensor_bshd(mb, ATTN_U8, 1, 6, 1, 6);
    d.mask_bool = &tb;
    d.causal = 0;
    o = forward_tc(&d, &c, lse);
    for (int64_t i = 0; i < 6 * 3; i++)
        ck_assert_msg(isfinite(o[i]), "out[%lld] = %g", (long long)i, (double)o[i]);
    free(o);
    tc_free(&c);
}
END_TEST

/* ---- mask broadcasting ----------------------------------------------------------------------- */

START_TEST(test_mask_broadcast)
{
    tcase c;
    tc_init(&c, 2, 6, 10, 4, 2, 8, 8);
    const int64_t full = 2 * 6 * 4 * 10;
    float *mfull = malloc(sizeof(float) * (size_t)full);
    float *mb = malloc(sizeof(float) * (size_t)full);
    ck_assert(mfull && mb);
    /* shapes [1,1,1,Skv], [B,Sq,1,Skv], [B,Sq,Hq,Skv]: each compact mask m(b', i', h', j) is
     * expanded into the full tensor by hand */
    const int64_t shapes[3][3] = {{1, 1, 1}, {2, 6, 1}, {2, 6, 4}};
    for (int s = 0; s < 3; s++) {
        const int64_t nb = shapes[s][0], ni = shapes[s][1], nh = shapes[s][2];
        fill(mb, nb * ni * nh * 10, 20 + (uint64_t)s, -4, 4);
        for (int64_t b = 0; b < 2; b++)
            for (int64_t i = 0; i < 6; i++)
                for (int64_t h = 0; h < 4; h++)
                    for (int64_t j = 0; j < 10; j++)
                        mfull[((b * 6 + i) * 4 + h) * 10 + j] =
                            mb[(((b % nb) * ni + i % ni) * nh + h % nh) * 10 + j];
        attn_tensor tsmall = attn_tensor_bshd(mb, ATTN_F32, nb, ni, nh, 10);
        attn_tensor tfull = attn_tensor_bshd(mfull, ATTN_F32, 2, 6, 4, 10);
        attn_sdpa_desc d = attn_sdpa_desc_default();
        d.mask_add = &tsmall;
        float *got = forward_tc(&d, &c, NULL);
        d.mask_add = &tfull;
        float *want = forward_tc(&d, &c, NULL);
        assert_same_floats(got, want, n_out(&c), "broadcast mask");
        free(got);
        free(want);
    }
    free(mfull);
    free(mb);
    tc_free(&c);
}
END_TEST

/* ---- flash-in-C equals naive ----------------------------------------------------------------- */

typedef struct flash_cfg {
    const char *name;
    int causal, align, hkv;
    int64_t wl, wr;
    float cap;
    int bool_mask, add_mask;
} flash_cfg;

static const flash_cfg flash_cfgs[] = {
    {"plain", 0, 1, 2, -1, -1, 0, 0, 0},
    {"causal-tl", 1, 0, 2, -1, -1, 0, 0, 0},
    {"causal-br", 1, 1, 2, -1, -1, 0, 0, 0},
    {"causal-br-w0", 1, 1, 2, 0, 0, 0, 0, 0},
    {"causal-tl-w16", 1, 0, 2, 16, 0, 0, 0, 0},
    {"causal-br-w16", 1, 1, 4, 16, 0, 0, 0, 0},
    {"right-w3-5", 0, 1, 2, 3, 5, 0, 0, 0},
    {"right-only-4", 0, 0, 1, -1, 4, 0, 0, 0},
    {"masks", 0, 1, 2, -1, -1, 0, 1, 1},
    {"softcap-mqa", 1, 1, 1, 16, 0, 1.5f, 0, 1},
};

static void flash_vs_naive(int64_t sq, int64_t skv, const flash_cfg *f)
{
    static const int64_t tiles[][2] = {{1, 1}, {7, 5}, {16, 16}, {32, 64}};
    tcase c;
    tc_init(&c, 1, sq, skv, 4, f->hkv, 8, 12);
    uint8_t *mb = malloc((size_t)(sq * skv));
    float *ma = malloc(sizeof(float) * (size_t)(sq * 4 * skv));
    ck_assert(mb && ma);
    for (int64_t x = 0; x < sq * skv; x++)
        mb[x] = attn_rng_unit(SEED, 30, (uint64_t)x) < 0.8;
    fill(ma, sq * 4 * skv, 31, -2, 2);
    attn_tensor tb = attn_tensor_bshd(mb, ATTN_U8, 1, sq, 1, skv);
    attn_tensor ta = attn_tensor_bshd(ma, ATTN_F32, 1, sq, 4, skv);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = f->causal;
    d.align = (attn_align)f->align;
    d.window_left = f->wl;
    d.window_right = f->wr;
    d.softcap = f->cap;
    d.mask_bool = f->bool_mask ? &tb : NULL;
    d.mask_add = f->add_mask ? &ta : NULL;

    dres want = naive(&d, &c, ATTN_REF_F64);
    for (size_t t = 0; t < sizeof tiles / sizeof tiles[0]; t++) {
        dres got = flash(&d, &c, tiles[t][0], tiles[t][1]);
        memcpy(got.mag, want.mag, sizeof(double) * (size_t)n_out(&c));
        char what[96];
        snprintf(what, sizeof what, "flash %s Sq=%lld Skv=%lld tile %lldx%lld", f->name,
                 (long long)sq, (long long)skv, (long long)tiles[t][0], (long long)tiles[t][1]);
        assert_close(&got, &want, &c, 1e-12, what);
        dres_free(&got);
    }
    dres_free(&want);
    free(mb);
    free(ma);
    tc_free(&c);
}

START_TEST(test_flash_equals_naive)
{
    static const int64_t lens[] = {1, 3, 17, 64, 113};
    const flash_cfg *f = &flash_cfgs[_i];
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 5; b++)
            flash_vs_naive(lens[a], lens[b], f);
}
END_TEST

START_TEST(test_flash_bad_tiles)
{
    tcase c;
    tc_init(&c, 1, 3, 3, 1, 1, 4, 4);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    attn_sdpa_problem p = tc_problem(&d, &c);
    double o[12], l[3];
    ck_assert_int_eq(attn_ref_sdpa_flash(&p, 0, 4, o, l), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_ref_sdpa_flash(&p, 4, -1, o, l), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_ref_sdpa_flash(&p, 1 << 20, 1 << 20, o, NULL), ATTN_OK); /* clamped */
    tc_free(&c);
}
END_TEST

/* ---- F32 calibration mode -------------------------------------------------------------------- */

START_TEST(test_f32_mode)
{
    tcase c;
    tc_init(&c, 1, 64, 64, 2, 1, 32, 32);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    d.softcap = 5.0f;
    dres r64 = naive(&d, &c, ATTN_REF_F64);
    dres r32 = naive(&d, &c, ATTN_REF_F32);
    assert_close(&r32, &r64, &c, 1e-5, "F32 vs F64");
    int64_t differ = 0, not_float = 0;
    for (int64_t i = 0; i < n_out(&c); i++) {
        differ += r32.o[i] != r64.o[i];
        not_float += r32.o[i] != (double)(float)r32.o[i];
    }
    ck_assert_msg(differ > n_out(&c) / 4, "F32 mode matches F64 on %lld of %lld elements",
                  (long long)(n_out(&c) - differ), (long long)n_out(&c));
    ck_assert_int_eq(not_float, 0); /* every F32 result is a float */
    dres_free(&r64);
    dres_free(&r32);
    tc_free(&c);
}
END_TEST

/* F32 mode is a naive float implementation: the loop below, written in plain float, gives the
 * same bits (causal bottom-right, soft-cap; one head). This relies on the build's ISO C mode
 * (-std=c11), in which GCC does not contract a*b+c into an FMA. */
START_TEST(test_f32_mode_is_native_float)
{
    tcase c;
    tc_init(&c, 1, 37, 53, 1, 1, 24, 20);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    d.softcap = 3.0f;
    attn_sdpa_problem p = tc_problem(&d, &c);
    dres r = naive(&d, &c, ATTN_REF_F32);
    const float scale = (float)p.scale, cap = 3.0f;
    float s[53], acc[20];
    int64_t bad = 0;
    for (int64_t i = 0; i < c.Sq; i++) {
        const int64_t pos = i + c.Skv - c.Sq;
        float m = -INFINITY, l = 0;
        for (int64_t j = 0; j <= pos; j++) {
            float a = 0;
            for (int64_t x = 0; x < c.Dk; x++)
                a += c.q[i * c.Dk + x] * c.k[j * c.Dk + x];
            s[j] = cap * tanhf(scale * a / cap);
            m = s[j] > m ? s[j] : m;
        }
        memset(acc, 0, sizeof acc);
        for (int64_t j = 0; j <= pos; j++) {
            const float pj = expf(s[j] - m);
            l += pj;
            for (int64_t x = 0; x < c.Dv; x++)
                acc[x] += pj * c.v[j * c.Dv + x];
        }
        for (int64_t x = 0; x < c.Dv; x++)
            bad += acc[x] / l != (float)r.o[i * c.Dv + x];
        bad += m + logf(l) != (float)r.lse[i];
    }
    ck_assert_msg(bad == 0, "%lld values differ from the native float loop", (long long)bad);
    dres_free(&r);
    tc_free(&c);
}
END_TEST

/* ---- storage dtypes -------------------------------------------------------------------------- */

/* Round x to dtype t in place (as float values) and return the raw 16-bit copy. */
static uint16_t *to_half(float *x, int64_t n, attn_dtype t)
{
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)n);
    ck_assert(h);
    for (int64_t i = 0; i < n; i++) {
        h[i] = t == ATTN_F16 ? attn_f32_to_f16(x[i]) : attn_f32_to_bf16(x[i]);
        x[i] = t == ATTN_F16 ? attn_f16_to_f32(h[i]) : attn_bf16_to_f32(h[i]);
    }
    return h;
}

static void half_inputs_exact(attn_dtype tq, attn_dtype tk, attn_dtype tv)
{
    tcase c;
    tc_init(&c, 1, 9, 13, 2, 2, 16, 8);
    uint16_t *hq = tq != ATTN_F32 ? to_half(c.q, 9 * 2 * 16, tq) : NULL;
    uint16_t *hk = tk != ATTN_F32 ? to_half(c.k, 13 * 2 * 16, tk) : NULL;
    uint16_t *hv = tv != ATTN_F32 ? to_half(c.v, 13 * 2 * 8, tv) : NULL;
    attn_tensor q = attn_tensor_bshd(hq ? (void *)hq : c.q, tq, 1, 9, 2, 16);
    attn_tensor k = attn_tensor_bshd(hk ? (void *)hk : c.k, tk, 1, 13, 2, 16);
    attn_tensor v = attn_tensor_bshd(hv ? (void *)hv : c.v, tv, 1, 13, 2, 8);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    float *want = forward_tc(&d, &c, NULL); /* the f32 tensors holding the same values */
    forward(&d, &c, &q, &k, &v, &c.to, NULL);
    assert_same_floats(c.o, want, n_out(&c), "16-bit inputs");

    /* 16-bit outputs are the f64 result rounded once */
    dres r = naive(&d, &c, ATTN_REF_F64);
    uint16_t ho[9 * 2 * 8];
    attn_tensor o16 = attn_tensor_bshd(ho, tq, 1, 9, 2, 8);
    if (tq != ATTN_F32) {
        forward(&d, &c, &q, &k, &v, &o16, NULL);
        for (int64_t i = 0; i < n_out(&c); i++)
            ck_assert_uint_eq(ho[i], tq == ATTN_F16 ? attn_f64_to_f16(r.o[i])
                                                    : attn_f64_to_bf16(r.o[i]));
    }
    dres_free(&r);
    free(want);
    free(hq);
    free(hk);
    free(hv);
    tc_free(&c);
}

START_TEST(test_half_inputs)
{
    half_inputs_exact(ATTN_F16, ATTN_F16, ATTN_F16);
    half_inputs_exact(ATTN_BF16, ATTN_BF16, ATTN_BF16);
    half_inputs_exact(ATTN_F16, ATTN_BF16, ATTN_F32);
}
END_TEST

/* ---- the backend itself ---------------------------------------------------------------------- */

START_TEST(test_backend)
{
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    ck_assert_str_eq(attn_backend_name(be), "ref");
    ck_assert_ptr_nonnull(strstr(attn_backend_describe(be), "f64"));
    attn_backend_close(be);
    be = NULL;
    ck_assert_int_eq(attn_backend_open("ref", "threads=2", &be), ATTN_ERR_BACKEND);
    ck_assert_ptr_null(be);

    /* an operand without a host address (a device-only buffer) is unsupported: the core's
     * host-only rule, before the op's implementation is reached */
    tcase c;
    tc_init(&c, 1, 2, 2, 1, 1, 4, 4);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    attn_sdpa_problem p = tc_problem(&d, &c);
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    attn_op_call call = {.op = ATTN_OP_SDPA, .problem = &p};
    attn_op_call_add(&call, "q", &p.q);
    attn_op_call_add(&call, "v", &p.v);
    ck_assert_int_eq(attn_op_dispatch(be, &call, ATTN_DISPATCH_SUPPORTED, NULL, 0), ATTN_OK);
    p.v.ptr = NULL;
    ck_assert_int_eq(attn_op_dispatch(be, &call, ATTN_DISPATCH_SUPPORTED, NULL, 0),
                     ATTN_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(attn_last_error(), "operand v "));
    attn_backend_close(be);
    tc_free(&c);
}
END_TEST

/* Finite f32 inputs whose dot products leave the f32 range (q . k = 4e38 > FLT_MAX, the
 * scaled logit 2e38 is below it): the f64 reference stays finite (softmax of logits 4e38 apart
 * is one-hot); the f32 backends do not promise this (docs/semantics.md, "outside the f32
 * class"). */
START_TEST(test_logits_beyond_f32)
{
    float q[4] = {2e19f, 0, 0, 0}, k[8] = {2e19f, 0, 0, 0, -2e19f, 0, 0, 0};
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[4], lse[1];
    attn_backend *be;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    attn_tensor tq = attn_tensor_bshd(q, ATTN_F32, 1, 1, 1, 4);
    attn_tensor tk = attn_tensor_bshd(k, ATTN_F32, 1, 2, 1, 4);
    attn_tensor tv = attn_tensor_bshd(v, ATTN_F32, 1, 2, 1, 4);
    attn_tensor to = attn_tensor_bshd(out, ATTN_F32, 1, 1, 1, 4);
    attn_tensor tl = attn_tensor_bhsd(lse, ATTN_F32, 1, 1, 1, 1);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    ck_assert_int_eq(attn_sdpa_forward(be, &d, &tq, &tk, &tv, &to, &tl), ATTN_OK);
    for (int e = 0; e < 4; e++)
        ck_assert_float_eq(out[e], v[e]); /* key 0 alone */
    ck_assert(isfinite(lse[0]) && fabs(lse[0] - 2e38) <= 1e32); /* m + log 1 */
    attn_backend_close(be);
}
END_TEST

static Suite *ref_suite(void)
{
    Suite *s = suite_create("ref");
    TCase *t = tcase_create("invariants");
    tcase_add_test(t, test_closed_form);
    tcase_add_test(t, test_closed_form_cap_then_mask);
    tcase_add_test(t, test_rows_sum_to_one);
    tcase_add_test(t, test_key_score_column_sums);
    tcase_add_test(t, test_window_ge_skv_is_causal);
    tcase_add_test(t, test_window_zero_is_diagonal);
    tcase_add_test(t, test_alignment);
    tcase_add_test(t, test_layouts_and_kv_views);
    tcase_add_test(t, test_gqa_mqa);
    tcase_add_test(t, test_softcap);
    tcase_add_test(t, test_fully_masked_rows);
    tcase_add_test(t, test_nan_propagates);
    tcase_add_test(t, test_mask_broadcast);
    tcase_add_test(t, test_f32_mode);
    tcase_add_test(t, test_f32_mode_is_native_float);
    tcase_add_test(t, test_half_inputs);
    tcase_add_test(t, test_backend);
    tcase_add_test(t, test_logits_beyond_f32);
    suite_add_tcase(s, t);

    TCase *f = tcase_create("flash");
    tcase_add_loop_test(f, test_flash_equals_naive, 0,
                        (int)(sizeof flash_cfgs / sizeof flash_cfgs[0]));
    tcase_add_test(f, test_flash_bad_tiles);
    suite_add_tcase(s, f);
    return s;
}

int main(void)
{
    return attn_check_run(ref_suite());
}
