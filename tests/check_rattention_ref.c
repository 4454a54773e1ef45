/* check_rattention_ref.c - the RATTENTION reference (reference/rattention.c and
 * rattention_decode.c) against other references and closed forms, all in f64: the residual
 * branch is the linear op's reference on k and v shifted by w + 1 (and the linear problem the
 * op builds for backends); the sliding-window branch is the SDPA reference on RoPE-rotated q
 * and k with window_left = w; w = -1 and w = 0; the decode step over any split of the sequence
 * gives the forward's rows, and the forward's state_out hands over to decode; GroupRMSNorm;
 * the float working precision; and a worked example computed by hand. */
#include "rattention_fixture.h"

#include "linear_ref.h"
#include "rope_ref.h"
#include "sdpa_ref.h"

#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static attn_rattention_desc desc(int64_t window, attn_linear_feature feature)
{
    attn_rattention_desc d = attn_rattention_desc_default();
    d.window = window;
    d.feature = feature;
    return d;
}

static attn_linear_feature map_of(int k)
{
    return k % 2 ? ATTN_LINEAR_RELU_PAIR : ATTN_LINEAR_SOFTMAX_PAIR;
}

static void expect_close(const double *got, const double *want, int64_t n, double tol,
                         const char *what, int case_no)
{
    const double e = ratt_fx_max_rel(got, want, n);
    ck_assert_msg(e <= tol, "case %d, %s: relative difference %g > %g", case_no, what, e, tol);
}

/* ---- the residual branch is shifted linear attention ------------------------------------ */

/* k or v of f shifted right by `shift` rows along the sequence, zero rows in front, as a
 * dense f32 BSHD tensor over *mem. */
static attn_tensor shifted(const attn_tensor *t, int64_t shift, float **mem)
{
    const int64_t B = t->shape[0], S = t->shape[1], H = t->shape[2], D = t->shape[3];
    *mem = calloc((size_t)(B * S * H * D + 1), sizeof(float));
    ck_assert_ptr_nonnull(*mem);
    double *x = ratt_fx_load(t);
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = shift; s < S; s++)
            for (int64_t i = 0; i < H * D; i++)
                (*mem)[(b * S + s) * H * D + i] = (float)x[(b * S + s - shift) * H * D + i];
    free(x);
    return attn_tensor_bshd(*mem, ATTN_F32, B, S, H, D);
}

/* _i over maps x windows x state_in. */
START_TEST(rla_is_shifted_linear)
{
    static const int64_t windows[] = {-1, 0, 1, 4, 16, 17, 20};
    ratt_fx_spec sp = ratt_fx_spec_sized(2, 17, 4, 2, 6, 5);
    sp.state_in = _i / 14;
    sp.state_out = 1;
    ratt_fx f;
    ratt_fx_make(&f, &sp);
    const attn_rattention_desc d = desc(windows[_i / 2 % 7], map_of(_i));
    ratt_fx_ref r = ratt_fx_forward_ref(&f, &d, ATTN_REF_F64);
    /* shift w + 1 (0 for w = -1): zero V rows add nothing although phi(0) != 0 (softmax) */
    const int64_t shift = d.window + 1 < sp.S ? d.window + 1 : sp.S;
    float *km, *vm;
    const attn_tensor ks = shifted(&f.k, shift, &km), vs = shifted(&f.v, shift, &vm);
    attn_linear_desc ld = attn_linear_desc_default();
    ld.feature = d.feature;
    ld.normalize = 0;
    ld.causal = 1;
    ld.scale = 1.0f;
    const attn_linear_state st = {f.io.state_in, NULL, &f.state_out, NULL};
    attn_linear_problem lp;
    ck_assert_int_eq(attn_linear_validate(&ld, &f.q, &ks, &vs, &f.out, &st, &lp), ATTN_OK);
    const int64_t no = ratt_fx_numel(&f.out), ns = ratt_fx_numel(&f.state_out);
    double *lo = calloc((size_t)no, sizeof(double)), *ls = calloc((size_t)ns, sizeof(double));
    ck_assert(lo && ls);
    attn_linear_ref_out o = {lo, ls, NULL, NULL, NULL, NULL};
    ck_assert_int_eq(attn_ref_linear(&lp, &o), ATTN_OK);
    expect_close(r.rla, lo, no, 1e-12, "rla vs shifted linear", _i);
    expect_close(r.state, ls, ns, 1e-12, "state vs shifted linear", _i);
    attn_linear_problem_release(&lp);
    /* the sub-problem backends hand to the linear kernels: the same numbers unshifted */
    attn_rattention_problem p;
    ck_assert_int_eq(attn_rattention_validate(&d, &f.q, &f.k, &f.v, &f.out, &f.io, &p), ATTN_OK);
    attn_rattention_rla_problem(&p, &lp);
    ck_assert_int_eq(lp.shift, d.window < sp.S ? d.window + 1 : sp.S + 1);
    memset(lo, 0, sizeof(double) * (size_t)no);
    memset(ls, 0, sizeof(double) * (size_t)ns);
    ck_assert_int_eq(attn_ref_linear(&lp, &o), ATTN_OK);
    expect_close(r.rla, lo, no, 1e-12, "rla vs attn_rattention_rla_problem", _i);
    expect_close(r.state, ls, ns, 1e-12, "state vs attn_rattention_rla_problem", _i);
    free(lo);
    free(ls);
    free(km);
    free(vm);
    ratt_fx_ref_free(&r);
    ratt_fx_free(&f);
}
END_TEST

/* ---- the sliding-window branch is SDPA on rotated q and k ---------------------------------- */

/* RoPE of every row of t (positions offset + s) as a dense f32 BSHD tensor over *mem. */
static attn_tensor rotated(const attn_tensor *t, const attn_rattention_desc *d, float **mem)
{
    const int64_t B = t->shape[0], S = t->shape[1], H = t->shape[2], D = t->shape[3];
    *mem = malloc(sizeof(float) * (size_t)(B * S * H * D));
    ck_assert_ptr_nonnull(*mem);
    double *x = ratt_fx_load(t), y[64];
    ck_assert_int_le(D, 64);
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t h = 0; h < H; h++) {
                const int64_t at = ((b * S + s) * H + h) * D;
                attn_ref_rope_row(d->rope, d->rope_theta, D, D, (double)(d->offset + s), x + at,
                                  y);
                for (int64_t i = 0; i < D; i++)
                    (*mem)[at + i] = (float)y[i];
            }
    free(x);
    return attn_tensor_bshd(*mem, ATTN_F32, B, S, H, D);
}

/* _i over RoPE layouts x windows x offsets. The rotated q and k are stored in f32 for the SDPA
 * reference (it reads float tensors) while the op rotates in f64: logits differ by about
 * 1e-7 |q| |k| scale, so the branches agree to 2e-6, not to 1e-12. */
START_TEST(swa_is_sdpa_on_rotated)
{
    static const int64_t windows[] = {0, 1, 3, 18, 21};
    ratt_fx_spec sp = ratt_fx_spec_sized(2, 19, 6, 2, 10, 7);
    sp.gammas = 1;
    ratt_fx f;
    ratt_fx_make(&f, &sp);
    attn_rattention_desc d = desc(windows[_i / 2 % 5], ATTN_LINEAR_SOFTMAX_PAIR);
    d.rope = _i % 2 ? ATTN_ROPE_INTERLEAVED : ATTN_ROPE_HALF;
    d.offset = _i >= 10 ? 1000 : 0;
    d.rope_theta = _i >= 10 ? 10000.0 : 500000.0;
    ratt_fx_ref r = ratt_fx_forward_ref(&f, &d, ATTN_REF_F64);
    float *qm, *km;
    const attn_tensor qr = rotated(&f.q, &d, &qm), kr = rotated(&f.k, &d, &km);
    attn_sdpa_desc sd = attn_sdpa_desc_default();
    sd.causal = 1;
    sd.window_left = d.window;
    attn_sdpa_problem p;
    ck_assert_int_eq(attn_sdpa_validate(&sd, &qr, &kr, &f.v, &f.out, NULL, &p), ATTN_OK);
    const int64_t n = ratt_fx_numel(&f.out);
    double *want = malloc(sizeof(double) * (size_t)n);
    ck_assert_ptr_nonnull(want);
    ck_assert_int_eq(attn_ref_sdpa(&p, ATTN_REF_F64, want, NULL, NULL), ATTN_OK);
    expect_close(r.swa, want, n, 2e-6, "swa vs sdpa", _i);
    /* w >= S without state_in: no key reaches the residual branch, out = GroupRMSNorm(swa) */
    if (d.window >= sp.S) {
        for (int64_t i = 0; i < n; i++)
            ck_assert(r.rla[i] == 0.0);
        double *y = calloc((size_t)n, sizeof(double));
        ck_assert_ptr_nonnull(y);
        for (int64_t row = 0; row < n / sp.Dv; row++)
            attn_ref_rattention_norm_add(ATTN_REF_F64, r.swa + row * sp.Dv,
                                         (const float *)f.gamma_swa.data +
                                             row % sp.Hq * sp.Dv,
                                         sp.Dv, 1e-8, y + row * sp.Dv);
        expect_close(r.out, y, n, 0.0, "out vs norm(swa)", _i);
        free(y);
    }
    free(want);
    free(qm);
    free(km);
    ratt_fx_ref_free(&r);
    ratt_fx_free(&f);
}
END_TEST

/* ---- the window's extremes --------------------------------------------------------------- */

/* w = -1: no SWA term, out = GroupRMSNorm(rla), and row i's residual branch covers j <= i
 * (row 0: phi(q_0) (S0 + phi(k_0)^T v_0), by hand). w = 0: SWA sees only the current token,
 * so its output is v_i exactly. */
START_TEST(window_extremes)
{
    ratt_fx_spec sp = ratt_fx_spec_default();
    sp.state_in = 1;
    sp.gammas = 1;
    ratt_fx f;
    ratt_fx_make(&f, &sp);
    const int64_t n = ratt_fx_numel(&f.out), G = sp.Hq / sp.Hkv, Df = 2 * sp.Dk;
    double *q = ratt_fx_load(&f.q), *k = ratt_fx_load(&f.k), *v = ratt_fx_load(&f.v);
    double *s0 = ratt_fx_load(&f.state_in);
    for (int m = 0; m < 2; m++) {
        attn_rattention_desc d = desc(-1, map_of(m));
        ratt_fx_ref r = ratt_fx_forward_ref(&f, &d, ATTN_REF_F64);
        double *y = calloc((size_t)n, sizeof(double));
        ck_assert_ptr_nonnull(y);
        for (int64_t row = 0; row < n / sp.Dv; row++) {
            ck_assert(r.swa[row * sp.Dv] == 0.0);
            attn_ref_rattention_norm_add(ATTN_REF_F64, r.rla + row * sp.Dv,
                                         (const float *)f.gamma_rla.data + row % sp.Hq * sp.Dv,
                                         sp.Dv, 1e-8, y + row * sp.Dv);
        }
        expect_close(r.out, y, n, 0.0, "w = -1: out vs norm(rla)", m);
        double fq[64], fk[64];
        for (int64_t h = 0; h < sp.Hq; h++) {
            const int64_t g = h / G;
            attn_ref_linear_phi(d.feature, ATTN_REF_F64, q + h * sp.Dk, sp.Dk, fq);
            attn_ref_linear_phi(d.feature, ATTN_REF_F64, k + g * sp.Dk, sp.Dk, fk);
            for (int64_t c = 0; c < sp.Dv; c++) {
                double want = 0.0;
                for (int64_t x = 0; x < Df; x++)
                    want += fq[x] * (s0[(g * Df + x) * sp.Dv + c] + fk[x] * v[g * sp.Dv + c]);
                ck_assert_double_eq_tol(r.rla[h * sp.Dv + c], want, 1e-14);
            }
        }
        free(y);
        ratt_fx_ref_free(&r);
        d.window = 0;
        r = ratt_fx_forward_ref(&f, &d, ATTN_REF_F64);
        for (int64_t s = 0; s < sp.S; s++)
            for (int64_t h = 0; h < sp.Hq; h++)
                for (int64_t c = 0; c < sp.Dv; c++)
                    ck_assert(r.swa[(s * sp.Hq + h) * sp.Dv + c] ==
                              v[(s * sp.Hkv + h / G) * sp.Dv + c]);
        ratt_fx_ref_free(&r);
    }
    free(q);
    free(k);
    free(v);
    free(s0);
    ratt_fx_free(&f);
}
END_TEST

/* ---- decode --------------------------------------------------------------------------------- */

/* _i over maps x windows x (f32 or f16 k, v and ring) x (dyadic inputs). Every split
 * (ratt_fx_split: one call, a prefill of 5 then single steps, single steps from 0, random
 * chunks) gives the forward's rows. One call from pos 0 agrees to 1e-12 (rounding only in the order of sums);
 * between calls the state lives in the cache's f32 tensor, so a split agrees to f32 level
 * (1e-6) unless the inputs are dyadic with the relu-pair map, whose state is exact in f32
 * (then 1e-12 again). The ring stores k and v exactly (their own dtype). */
START_TEST(decode_splits_equal_forward)
{
    static const int64_t windows[] = {-1, 0, 3, 23};
    ratt_fx_spec sp = ratt_fx_spec_sized(2, 21, 6, 3, 8, 6);
    sp.state_in = 1;
    sp.gammas = 1;
    sp.dt_kv = _i / 8 % 2 ? ATTN_F16 : ATTN_F32;
    sp.dyadic = _i / 16;
    ratt_fx f;
    ratt_fx_make(&f, &sp);
    const attn_rattention_desc d = desc(windows[_i / 2 % 4], map_of(_i));
    ratt_fx_ref r = ratt_fx_forward_ref(&f, &d, ATTN_REF_F64);
    const int64_t n = ratt_fx_numel(&f.out);
    double *got = calloc((size_t)n, sizeof(double));
    ck_assert_ptr_nonnull(got);
    int64_t len[32];
    for (int kind = 0; kind < 4; kind++) {
        ratt_fx_cache c;
        ratt_fx_cache_make(&c, &f, d.window, sp.dt_kv);
        const int calls = ratt_fx_split(kind, sp.S, len);
        for (int64_t i = 0, s = 0; i < calls; s += len[i++])
            ratt_fx_decode_ref(&f, &d, &c, s, len[i], got);
        ck_assert_int_eq(c.c.pos, sp.S);
        const int exact = kind == 0 || (sp.dyadic && d.feature == ATTN_LINEAR_RELU_PAIR);
        char what[80];
        snprintf(what, sizeof what, "decode split kind %d", kind);
        expect_close(got, r.out, n, exact ? 1e-12 : 1e-6, what, _i);
        ratt_fx_cache_free(&c);
    }
    free(got);
    ratt_fx_ref_free(&r);
    ratt_fx_free(&f);
}
END_TEST

/* The forward's state_out is the cache's state after decoding the same tokens; a forward
 * prefill of T tokens with state_out, a ring filled from its last w + 1 tokens and decode of
 * the rest give the forward's rows over the whole sequence. _i over maps x windows x T. */
START_TEST(forward_hands_over_to_decode)
{
    static const int64_t windows[] = {-1, 0, 3, 40};
    static const int64_t Ts[] = {0, 1, 4, 9, 19};
    ratt_fx_spec sp = ratt_fx_spec_default();
    sp.S = 19;
    sp.state_in = _i % 3 == 0;
    sp.state_out = 1;
    sp.gammas = 1;
    ratt_fx f;
    ratt_fx_make(&f, &sp);
    const attn_rattention_desc d = desc(windows[_i / 2 % 4], map_of(_i));
    const int64_t T = Ts[_i / 8];
    ratt_fx_ref r = ratt_fx_forward_ref(&f, &d, ATTN_REF_F64);
    const int64_t n = ratt_fx_numel(&f.out), ns = ratt_fx_numel(&f.state_out);
    double *got = calloc((size_t)n, sizeof(double));
    ck_assert_ptr_nonnull(got);
    /* state_out (f64) against the cache after one decode call over every token */
    ratt_fx_cache c;
    ratt_fx_cache_make(&c, &f, d.window, ATTN_F32);
    ratt_fx_decode_ref(&f, &d, &c, 0, sp.S, got);
    double *cs = ratt_fx_load(&c.state);
    expect_close(cs, r.state, ns, 1e-7, "cache state vs state_out", _i); /* f32 rounding */
    free(cs);
    ratt_fx_cache_free(&c);
    /* the prefill on the ref backend (state_out rounded to f32), then decode */
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    const attn_tensor q = ratt_fx_rows(&f.q, 0, T), k = ratt_fx_rows(&f.k, 0, T);
    const attn_tensor v = ratt_fx_rows(&f.v, 0, T), o = ratt_fx_rows(&f.out, 0, T);
    ck_assert_msg(attn_rattention_forward(be, &d, &q, &k, &v, &o, &f.io) == ATTN_OK, "%s",
                  attn_last_error());
    attn_backend_close(be);
    ratt_fx_cache_make(&c, &f, d.window, ATTN_F32);
    ratt_fx_cache_fill(&c, &f, d.window, T, &f.state_out);
    for (int64_t s = T; s < sp.S; s += 2)
        ratt_fx_decode_ref(&f, &d, &c, s, s + 2 <= sp.S ? 2 : 1, got);
    const int64_t row = sp.Hq * sp.Dv;
    expect_close(got + T * row, r.out + T * row, n - T * row, 1e-6, "prefill + decode", _i);
    ratt_fx_cache_free(&c);
    free(got);
    ratt_fx_ref_free(&r);
    ratt_fx_free(&f);
}
END_TEST

/* ---- GroupRMSNorm, working precision, a worked example -------------------------------------- */

START_TEST(group_rms_norm)
{
    const double zero[4] = {0, 0, 0, 0}, x[4] = {0.5, -1.0, 2.0, 0.25};
    const float gamma[4] = {2.0f, 0.5f, -1.0f, 3.0f};
    double y[4] = {0}, y1[4] = {0};
    attn_ref_rattention_norm_add(ATTN_REF_F64, zero, gamma, 4, 1e-8, y);
    for (int c = 0; c < 4; c++)
        ck_assert(y[c] == 0.0); /* 0 / sqrt(eps): no NaN */
    attn_ref_rattention_norm_add(ATTN_REF_F64, x, gamma, 4, 1e-8, y);
    attn_ref_rattention_norm_add(ATTN_REF_F64, x, NULL, 4, 1e-8, y1);
    const double r = 1.0 / sqrt((0.25 + 1.0 + 4.0 + 0.0625) / 4.0 + 1e-8);
    for (int c = 0; c < 4; c++) {
        ck_assert_double_eq_tol(y1[c], x[c] * r, 1e-15);
        ck_assert(y[c] == y1[c] * gamma[c]); /* gamma scales its channel */
    }
    /* the norm adds into y: a second call doubles */
    attn_ref_rattention_norm_add(ATTN_REF_F64, x, NULL, 4, 1e-8, y1);
    ck_assert_double_eq_tol(y1[2], 2.0 * x[2] * r, 1e-15);
}
END_TEST

/* ATTN_REF_F32 rounds every intermediate to float: close to F64, not equal, floats out. */
START_TEST(f32_mode_close_not_equal)
{
    ratt_fx_spec sp = ratt_fx_spec_sized(1, 40, 4, 2, 16, 16);
    sp.state_in = 1;
    sp.gammas = 1;
    ratt_fx f;
    ratt_fx_make(&f, &sp);
    for (int m = 0; m < 2; m++) {
        const attn_rattention_desc d = desc(5, map_of(m));
        ratt_fx_ref a = ratt_fx_forward_ref(&f, &d, ATTN_REF_F64);
        ratt_fx_ref b = ratt_fx_forward_ref(&f, &d, ATTN_REF_F32);
        const int64_t n = ratt_fx_numel(&f.out);
        const double e = ratt_fx_max_rel(b.out, a.out, n);
        ck_assert_msg(e > 0.0 && e < 1e-5, "map %d: f32 vs f64 %g", m, e);
        for (int64_t i = 0; i < n; i++)
            ck_assert(b.out[i] == (double)(float)b.out[i]);
        ratt_fx_ref_free(&a);
        ratt_fx_ref_free(&b);
    }
    ratt_fx_free(&f);
}
END_TEST

/* Dk = Dv = 2, S = 4, w = 1, relu-pair, one head, scale 1, theta irrelevant (one pair: the
 * angle is the position in radians). Row i: SWA over j in [i - 1, i] with logits
 * RoPE(q_i, i) . RoPE(k_j, j) = q_i . R(j - i) k_j; RLA over j <= i - 2:
 *   row 2: phi(q_2) = [1 1 0 0], phi(k_0) = [1 0 0 0]: weight 1, o_rla = v_0 = [1, 2];
 *   row 3: phi(q_3) = [0 .5 1 0], phi(k_0): 0, phi(k_1) = [0 1 .5 0]: weight 1, o_rla = v_1.
 * The expected values were computed in Python (math.cos, math.sin, math.exp in double) from
 * these formulas, eps 1e-8. */
START_TEST(worked_example)
{
    float q[8] = {1, 0, 0, 1, 1, 1, -1, 0.5f}, k[8] = {1, 0, -0.5f, 1, 0, 1, 1, 1};
    float v[8] = {1, 2, -1, 1, 0.5f, -0.5f, 2, 0}, o[8];
    const double swa[8] = {1, 2, -0.72624517067848215, 1.136877414660759,
                           -0.44504923555237885, 0.44504923555237885, 1.2767336061648753,
                           -0.24108879794504159};
    const double rla[8] = {0, 0, 0, 0, 1, 2, -1, 1};
    const double out[8] = {0.63245553076876482, 1.2649110615375296, -0.76132804676500221,
                           1.1917967877243276, -0.36754444398748531, 2.2649110362937797,
                           0.3896546177646385, 0.73758804114175436};
    const attn_tensor tq = attn_tensor_bshd(q, ATTN_F32, 1, 4, 1, 2);
    const attn_tensor tk = attn_tensor_bshd(k, ATTN_F32, 1, 4, 1, 2);
    const attn_tensor tv = attn_tensor_bshd(v, ATTN_F32, 1, 4, 1, 2);
    const attn_tensor to = attn_tensor_bshd(o, ATTN_F32, 1, 4, 1, 2);
    attn_rattention_desc d = desc(1, ATTN_LINEAR_RELU_PAIR);
    d.scale = 1.0f;
    attn_rattention_problem p;
    ck_assert_int_eq(attn_rattention_validate(&d, &tq, &tk, &tv, &to, NULL, &p), ATTN_OK);
    double ro[8], rs[8], rr[8];
    attn_rattention_ref_out r = {.out = ro, .swa = rs, .rla = rr};
    ck_assert_int_eq(attn_ref_rattention(&p, ATTN_REF_F64, &r), ATTN_OK);
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(fabs(rs[i] - swa[i]) <= 1e-15, "swa[%d] %.17g vs %.17g", i, rs[i], swa[i]);
        ck_assert_msg(rr[i] == rla[i], "rla[%d] %.17g vs %.17g", i, rr[i], rla[i]);
        ck_assert_msg(fabs(ro[i] - out[i]) <= 1e-15, "out[%d] %.17g vs %.17g", i, ro[i], out[i]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rattention_ref");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, rla_is_shifted_linear, 0, 28);
    tcase_add_loop_test(tc, swa_is_sdpa_on_rotated, 0, 20);
    tcase_add_test(tc, window_extremes);
    tcase_add_loop_test(tc, decode_splits_equal_forward, 0, 32);
    tcase_add_loop_test(tc, forward_hands_over_to_decode, 0, 40);
    tcase_add_test(tc, group_rms_norm);
    tcase_add_test(tc, f32_mode_close_not_equal);
    tcase_add_test(tc, worked_example);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
