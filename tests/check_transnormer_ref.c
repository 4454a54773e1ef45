/* check_transnormer_ref.c - invariants of the TransNormer reference (reference/transnormer.c):
 * DiagAttention with one block covering the sequence is softmax attention (the SDPA
 * reference), NormAttention with the identity map is Q (K^T V) computed here by hand (masked
 * when causal), ReLU DiagAttention with block 1 is relu(scale q.k) v, SimpleRMSNorm is
 * invariant to the scale of v and gives rows of unit RMS, GQA equals repeated KV heads, the
 * authors' zero padding matters exactly where it should, F32 mode stays close to F64. */
#include "sdpa_ref.h"
#include "transnormer_ref.h"

#include "attn_rng.h"

#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct prob {
    int64_t B, S, Hq, Hkv, D;
    float *q, *k, *v, *o;
    attn_tensor tq, tk, tv, to;
} prob;

static float *rand_f32(int64_t n, uint64_t stream, double scale)
{
    float *p = malloc((size_t)n * sizeof(float));
    ck_assert_ptr_nonnull(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(scale * attn_rng_uniform(5, stream, (uint64_t)i, -1, 1));
    return p;
}

static prob make(int64_t B, int64_t S, int64_t Hq, int64_t Hkv, int64_t D)
{
    prob p = {.B = B, .S = S, .Hq = Hq, .Hkv = Hkv, .D = D, .q = rand_f32(B * S * Hq * D, 1, 1),
              .k = rand_f32(B * S * Hkv * D, 2, 1), .v = rand_f32(B * S * Hkv * D, 3, 1),
              .o = calloc((size_t)(B * S * Hq * D), sizeof(float))};
    p.tq = attn_tensor_bshd(p.q, ATTN_F32, B, S, Hq, D);
    p.tk = attn_tensor_bshd(p.k, ATTN_F32, B, S, Hkv, D);
    p.tv = attn_tensor_bshd(p.v, ATTN_F32, B, S, Hkv, D);
    p.to = attn_tensor_bshd(p.o, ATTN_F32, B, S, Hq, D);
    return p;
}

static void release(prob *p)
{
    free(p->q);
    free(p->k);
    free(p->v);
    free(p->o);
}

/* The reference's out (and pre, when asked) of p under desc d, malloc'd. */
static double *run(const prob *p, const attn_transnormer_desc *d, attn_ref_precision prec,
                   double **pre)
{
    attn_transnormer_problem tp;
    ck_assert_int_eq(attn_transnormer_validate(d, &p->tq, &p->tk, &p->tv, &p->to, &tp), ATTN_OK);
    const int64_t n = p->B * p->S * p->Hq * p->D;
    double *out = malloc((size_t)n * sizeof(double));
    if (pre)
        *pre = malloc((size_t)n * sizeof(double));
    ck_assert_int_eq(attn_ref_transnormer(&tp, prec, out, pre ? *pre : NULL, NULL), ATTN_OK);
    return out;
}

static double max_diff(const double *a, const double *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static attn_transnormer_desc diag_desc(int64_t block, int causal, attn_transnormer_scores s)
{
    attn_transnormer_desc d = attn_transnormer_desc_default();
    d.mode = ATTN_TRANSNORMER_MODE_DIAG;
    d.block = block;
    d.causal = causal;
    d.scores = s;
    return d;
}

START_TEST(diag_one_block_is_softmax_attention)
{
    prob p = make(2, 37, 4, 2, 16);
    const int64_t n = p.B * p.S * p.Hq * p.D;
    for (int causal = 0; causal < 2; causal++)
        for (int64_t block = 37; block <= 100; block += 63) {
            attn_transnormer_desc d = diag_desc(block, causal, ATTN_TRANSNORMER_SCORES_SOFTMAX);
            double *got = run(&p, &d, ATTN_REF_F64, NULL);
            attn_sdpa_desc sd = attn_sdpa_desc_default();
            sd.causal = causal;
            attn_sdpa_problem sp;
            ck_assert_int_eq(attn_sdpa_validate(&sd, &p.tq, &p.tk, &p.tv, &p.to, NULL, &sp),
                             ATTN_OK);
            double *want = malloc((size_t)n * sizeof(double));
            ck_assert_int_eq(attn_ref_sdpa(&sp, ATTN_REF_F64, want, NULL, NULL), ATTN_OK);
            ck_assert_double_le(max_diff(got, want, n), 1e-14);
            free(got);
            free(want);
        }
    release(&p);
}
END_TEST

/* NormAttention, identity map, no norm: y = Q K^T V (masked when causal), by hand. */
START_TEST(norm_identity_is_explicit_formula)
{
    prob p = make(1, 23, 2, 1, 8);
    for (int causal = 0; causal < 2; causal++) {
        attn_transnormer_desc d = attn_transnormer_desc_default();
        d.feature = ATTN_TRANSNORMER_FEATURE_IDENTITY;
        d.norm = ATTN_TRANSNORMER_NORM_NONE;
        d.causal = causal;
        double *got = run(&p, &d, ATTN_REF_F64, NULL);
        for (int64_t i = 0; i < p.S; i++)
            for (int64_t h = 0; h < p.Hq; h++)
                for (int64_t e = 0; e < p.D; e++) {
                    double want = 0; /* sum_a q_a (sum_j k_ja v_je): the state form */
                    for (int64_t a = 0; a < p.D; a++) {
                        double st = 0;
                        for (int64_t j = 0; j < (causal ? i + 1 : p.S); j++)
                            st += (double)p.k[j * p.D + a] * p.v[j * p.D + e];
                        want += p.q[(i * p.Hq + h) * p.D + a] * st;
                    }
                    ck_assert_double_eq_tol(got[(i * p.Hq + h) * p.D + e], want, 1e-12);
                }
        free(got);
    }
    release(&p);
}
END_TEST

START_TEST(diag_relu_block1_is_elementwise)
{
    prob p = make(1, 9, 2, 2, 8);
    attn_transnormer_desc d = diag_desc(1, 0, ATTN_TRANSNORMER_SCORES_RELU);
    d.norm = ATTN_TRANSNORMER_NORM_NONE;
    d.scale = 0.75f;
    double *got = run(&p, &d, ATTN_REF_F64, NULL);
    int positive = 0;
    for (int64_t i = 0; i < p.S; i++)
        for (int64_t h = 0; h < p.Hq; h++) {
            double s = 0;
            for (int64_t a = 0; a < p.D; a++)
                s += 0.75 * p.q[(i * p.Hq + h) * p.D + a] * (double)p.k[(i * p.Hkv + h) * p.D + a];
            positive += s > 0;
            for (int64_t e = 0; e < p.D; e++)
                ck_assert_double_eq_tol(got[(i * p.Hq + h) * p.D + e],
                                        (s > 0 ? s : 0) * p.v[(i * p.Hkv + h) * p.D + e], 1e-14);
        }
    ck_assert_int_gt(positive, 0);
    ck_assert_int_lt(positive, p.S * p.Hq);
    free(got);
    release(&p);
}
END_TEST

/* SimpleRMSNorm: scaling v by 8 (exact in f32) leaves out unchanged but for eps, and every
 * token's out has RMS 1 / (1 + eps / rms(y)). */
START_TEST(srms_scale_invariant_unit_rms)
{
    prob p = make(1, 30, 3, 3, 16);
    const int64_t n = p.S * p.Hq * p.D, N = p.Hq * p.D;
    attn_transnormer_desc d = attn_transnormer_desc_default();
    d.causal = 1;
    double *pre, *a = run(&p, &d, ATTN_REF_F64, &pre);
    for (int64_t t = 0; t < p.S; t++) {
        double ss = 0, yy = 0;
        for (int64_t c = 0; c < N; c++) {
            ss += a[t * N + c] * a[t * N + c];
            yy += pre[t * N + c] * pre[t * N + c];
        }
        const double r = sqrt(yy / (double)N);
        ck_assert_double_eq_tol(sqrt(ss / (double)N), r / (r + 1e-8), 1e-12);
    }
    for (int64_t i = 0; i < p.S * p.Hkv * p.D; i++)
        p.v[i] *= 8.0f;
    double *b = run(&p, &d, ATTN_REF_F64, NULL);
    ck_assert_double_le(max_diff(a, b, n), 1e-7);
    ck_assert_double_gt(max_diff(a, b, n), 0.0); /* eps is there */
    free(a);
    free(b);
    free(pre);
    release(&p);
}
END_TEST

/* GQA (Hq 4 over Hkv 2) equals the same problem with K and V repeated per query head. */
START_TEST(gqa_equals_repeated_heads)
{
    prob g = make(1, 19, 4, 2, 8), r = make(1, 19, 4, 4, 8);
    memcpy(r.q, g.q, sizeof(float) * (size_t)(19 * 4 * 8));
    for (int64_t j = 0; j < 19; j++)
        for (int64_t h = 0; h < 4; h++) {
            memcpy(r.k + (j * 4 + h) * 8, g.k + (j * 2 + h / 2) * 8, 8 * sizeof(float));
            memcpy(r.v + (j * 4 + h) * 8, g.v + (j * 2 + h / 2) * 8, 8 * sizeof(float));
        }
    for (int mode = 0; mode < 2; mode++) {
        attn_transnormer_desc d = diag_desc(8, 1, ATTN_TRANSNORMER_SCORES_SOFTMAX);
        d.mode = (attn_transnormer_mode)mode;
        double *a = run(&g, &d, ATTN_REF_F64, NULL), *b = run(&r, &d, ATTN_REF_F64, NULL);
        ck_assert_int_eq(memcmp(a, b, sizeof(double) * 19 * 4 * 8), 0);
        free(a);
        free(b);
    }
    release(&g);
    release(&r);
}
END_TEST

/* The authors' zero padding changes non-causal softmax with a partial last block (only its
 * rows), and nothing else. */
START_TEST(pad_zero_where_it_matters)
{
    prob p = make(1, 37, 2, 2, 8);
    const int64_t n = p.S * p.Hq * p.D;
    for (int k = 0; k < 4; k++) {
        const int causal = k & 1;
        attn_transnormer_desc d = diag_desc(8, causal, k & 2 ? ATTN_TRANSNORMER_SCORES_RELU
                                                              : ATTN_TRANSNORMER_SCORES_SOFTMAX);
        d.norm = ATTN_TRANSNORMER_NORM_NONE;
        double *m = run(&p, &d, ATTN_REF_F64, NULL);
        d.pad = ATTN_TRANSNORMER_PAD_ZERO;
        double *z = run(&p, &d, ATTN_REF_F64, NULL);
        if (k == 0) {
            ck_assert_double_eq(max_diff(m, z, 32 * p.Hq * p.D), 0.0); /* full blocks */
            ck_assert_double_gt(max_diff(m, z, n), 1e-3);               /* the last one */
        } else {
            ck_assert_double_eq(max_diff(m, z, n), 0.0);
        }
        free(m);
        free(z);
    }
    release(&p);
}
END_TEST

START_TEST(f32_mode_close_not_equal)
{
    prob p = make(1, 50, 2, 2, 32);
    const int64_t n = p.S * p.Hq * p.D;
    for (int mode = 0; mode < 2; mode++) {
        attn_transnormer_desc d = diag_desc(16, 1, ATTN_TRANSNORMER_SCORES_SOFTMAX);
        d.mode = (attn_transnormer_mode)mode;
        double *a = run(&p, &d, ATTN_REF_F64, NULL), *b = run(&p, &d, ATTN_REF_F32, NULL);
        ck_assert_double_gt(max_diff(a, b, n), 0.0);
        ck_assert_double_lt(max_diff(a, b, n), 1e-4);
        for (int64_t i = 0; i < n; i++)
            ck_assert_double_eq(b[i], (double)(float)b[i]);
        free(a);
        free(b);
    }
    release(&p);
}
END_TEST

/* The feature maps: 1 + elu = elu + 1 on the dot products' inputs (so the outputs differ), and
 * relu of all-negative queries gives y = 0, which the norm keeps 0 (not NaN). */
START_TEST(feature_maps)
{
    prob p = make(1, 12, 2, 2, 8);
    const int64_t n = p.S * p.Hq * p.D;
    attn_transnormer_desc d = attn_transnormer_desc_default();
    double *a = run(&p, &d, ATTN_REF_F64, NULL);
    d.feature = ATTN_TRANSNORMER_FEATURE_ELU;
    double *b = run(&p, &d, ATTN_REF_F64, NULL);
    ck_assert_double_gt(max_diff(a, b, n), 1e-3);
    for (int64_t i = 0; i < n; i++)
        p.q[i] = -fabsf(p.q[i]) - 0.01f;
    d.feature = ATTN_TRANSNORMER_FEATURE_RELU;
    double *c = run(&p, &d, ATTN_REF_F64, NULL);
    for (int64_t i = 0; i < n; i++)
        ck_assert_double_eq(c[i], 0.0);
    free(a);
    free(b);
    free(c);
    release(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("transnormer_ref");
    TCase *tc = tcase_create("invariants");
    tcase_add_test(tc, diag_one_block_is_softmax_attention);
    tcase_add_test(tc, norm_identity_is_explicit_formula);
    tcase_add_test(tc, diag_relu_block1_is_elementwise);
    tcase_add_test(tc, srms_scale_invariant_unit_rms);
    tcase_add_test(tc, gqa_equals_repeated_heads);
    tcase_add_test(tc, pad_zero_where_it_matters);
    tcase_add_test(tc, f32_mode_close_not_equal);
    tcase_add_test(tc, feature_maps);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
