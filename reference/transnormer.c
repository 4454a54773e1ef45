/* transnormer.c - the ground truth of TransNormer's attentions, written as their definitions,
 * one query row at a time in plain loops (no BLIS, no chunking). For query i of batch b and
 * head h, with KV head g = h / (Hq / Hkv) and the keys j it sees (attn_transnormer_keys: all,
 * or j <= i when causal; DiagAttention: only its block):
 *
 *   NormAttention:  y_i = sum_j (phi(q_i) . phi(k_j)) v_j        no denominator, no scaling
 *   DiagAttention:  s_j = (scale q_i) . k_j
 *                   softmax: y_i = sum_j exp(s_j - m) v_j / (sum_j exp(s_j - m) + npad e^-m)
 *                   relu:    y_i = sum_j relu(s_j) v_j
 *   SimpleRMSNorm (per token, over all Hq * Dv values):  out = y / (||y||_2 / sqrt(N) + eps)
 *
 * npad is the count of zero-padded keys of the authors' padding (0 unless pad_zero; then m
 * also takes their logit 0 into account). ATTN_REF_F32 runs the same code with every
 * intermediate rounded to float. docs/ops/transnormer.md. */
#include "transnormer_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The feature map phi of NormAttention. */
static double phi(const attn_transnormer_problem *p, attn_ref_precision prec, double x)
{
    switch (p->feature) {
    case ATTN_TRANSNORMER_FEATURE_1_ELU:
        return x > 0.0 ? rnd(prec, 1.0 + x) : rnd(prec, 1.0 + r_expm1(prec, x));
    case ATTN_TRANSNORMER_FEATURE_ELU:
        return x > 0.0 ? x : r_expm1(prec, x);
    case ATTN_TRANSNORMER_FEATURE_RELU:
        return relu(x);
    default:
        return x;
    }
}

/* What a row of q or k becomes before the dot product: phi (NormAttention), scale * q
 * (DiagAttention queries: the authors scale q only), k as is (DiagAttention keys). */
static double prep(const attn_transnormer_problem *p, attn_ref_precision prec, double x,
                   int is_q)
{
    if (p->mode == ATTN_TRANSNORMER_MODE_NORM)
        return phi(p, prec, x);
    return is_q ? rnd(prec, p->scale * x) : x;
}

/* ---- one (batch, KV head) ------------------------------------------------------------------ */

/* K (prepared) and V of one (batch, KV head) as doubles: k [S][Dk], v [S][Dv]. */
static void load_kv(const attn_transnormer_problem *p, attn_ref_precision prec, int64_t b,
                    int64_t g, double *k, double *v)
{
    for (int64_t j = 0; j < p->S; j++) {
        for (int64_t d = 0; d < p->Dk; d++)
            k[j * p->Dk + d] =
                prep(p, prec, attn_load_f64(p->k.ptr, p->k.dtype, attn_at(&p->k, b, j, g, d)), 0);
        for (int64_t d = 0; d < p->Dv; d++)
            v[j * p->Dv + d] = attn_load_f64(p->v.ptr, p->v.dtype, attn_at(&p->v, b, j, g, d));
    }
}

/* Per-thread scratch of one row. */
typedef struct row_scratch {
    double *q, *s;
} row_scratch;

/* x . y (abs: |x| . |y|), summed over d in order. */
static double dot(attn_ref_precision prec, const double *x, const double *y, int64_t n, int abs)
{
    double acc = 0.0;
    for (int64_t d = 0; d < n; d++)
        acc = rnd(prec, acc + rnd(prec, abs ? fabs(x[d] * y[d]) : x[d] * y[d]));
    return acc;
}

/* Softmax weights in place over s[0 .. n): returns the denominator l (with npad padded keys of
 * logit 0), or 0 after writing NaN weights when a logit is NaN. */
static double softmax(attn_ref_precision prec, double *s, int64_t n, int64_t npad)
{
    double m = npad > 0 ? 0.0 : -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        if (isnan(s[j]))
            m = NAN;
        else if (s[j] > m)
            m = s[j];
    }
    double l = 0.0;
    for (int64_t j = 0; j < n; j++) {
        s[j] = r_exp(prec, rnd(prec, s[j] - m));
        l = rnd(prec, l + s[j]);
    }
    if (npad > 0) /* the padded keys, each exp(0 - m) */
        l = rnd(prec, l + rnd(prec, (double)npad * r_exp(prec, -m)));
    return l;
}

/* y (and its condition a, when not NULL) of query row i of head h (KV head rows in k, v). */
static void query_row(const attn_transnormer_problem *p, attn_ref_precision prec, int64_t b,
                      int64_t i, int64_t h, const double *k, const double *v, row_scratch *w,
                      double *y, double *a)
{
    int64_t lo, hi;
    attn_transnormer_keys(p, i, &lo, &hi);
    for (int64_t d = 0; d < p->Dk; d++)
        w->q[d] = prep(p, prec, attn_load_f64(p->q.ptr, p->q.dtype, attn_at(&p->q, b, i, h, d)),
                       1);
    const int diag = p->mode == ATTN_TRANSNORMER_MODE_DIAG;
    const int soft = diag && p->scores == ATTN_TRANSNORMER_SCORES_SOFTMAX;
    for (int64_t j = lo; j < hi; j++) {
        double sj = dot(prec, w->q, k + j * p->Dk, p->Dk, 0);
        w->s[j - lo] = diag && !soft ? relu(sj) : sj;
    }
    double l = soft ? softmax(prec, w->s, hi - lo, attn_transnormer_pad_keys(p, i)) : 1.0;
    for (int64_t d = 0; d < p->Dv; d++)
        y[d] = 0.0;
    for (int64_t j = lo; j < hi; j++)
        for (int64_t d = 0; d < p->Dv; d++)
            y[d] = rnd(prec, y[d] + rnd(prec, w->s[j - lo] * v[j * p->Dv + d]));
    for (int64_t d = 0; d < p->Dv; d++)
        y[d] = rnd(prec, y[d] / l);
    if (!a)
        return;
    for (int64_t d = 0; d < p->Dv; d++)
        a[d] = 0.0;
    for (int64_t j = lo; j < hi; j++) {
        /* condition weight: p_j (softmax), else |scale| |q|.|k| (the scale is inside w->q) */
        const double cj = soft ? w->s[j - lo] / l : dot(ATTN_REF_F64, w->q, k + j * p->Dk, p->Dk, 1);
        for (int64_t d = 0; d < p->Dv; d++)
            a[d] += cj * fabs(v[j * p->Dv + d]);
    }
}

/* ---- SimpleRMSNorm ------------------------------------------------------------------------- */

/* out = y / (||y||_2 / sqrt(N) + eps) over the N = Hq * Dv values of token t, or out = y. */
static void srms_token(const attn_transnormer_problem *p, attn_ref_precision prec,
                       const double *y, double *out)
{
    const int64_t n = p->Hq * p->Dv;
    if (!p->srms) {
        for (int64_t c = 0; c < n; c++)
            out[c] = y[c];
        return;
    }
    double ss = 0.0;
    for (int64_t c = 0; c < n; c++)
        ss = rnd(prec, ss + rnd(prec, y[c] * y[c]));
    const double den = rnd(prec, rnd(prec, sqrt(rnd(prec, ss / (double)n))) + rnd(prec, p->eps));
    for (int64_t c = 0; c < n; c++)
        out[c] = rnd(prec, y[c] / den);
}

void attn_ref_transnormer_cond(const attn_transnormer_problem *p, const double *pre,
                               const double *absmag, const double *out, double *cond)
{
    const int64_t n = p->Hq * p->Dv, tokens = p->B * p->S;
    for (int64_t t = 0; t < tokens; t++) {
        const double *y = pre + t * n, *a = absmag + t * n, *o = out + t * n;
        double yy = 0.0, aa = 0.0;
        for (int64_t c = 0; c < n; c++) {
            yy += y[c] * y[c];
            aa += a[c] * a[c];
        }
        const double r = sqrt(yy / (double)n), ra = sqrt(aa / (double)n);
        for (int64_t c = 0; c < n; c++)
            cond[t * n + c] = p->srms ? (a[c] + fabs(o[c]) * (ra + r)) / (r + p->eps) : a[c];
    }
}

/* ---- the whole problem --------------------------------------------------------------------- */

/* Every row of one (batch, KV head) into y / a ([B][S][Hq][Dv]); 0, or -1 out of memory. */
static int kv_head(const attn_transnormer_problem *p, attn_ref_precision prec, int64_t b,
                   int64_t g, const double *k, const double *v, double *y, double *a)
{
    int oom = 0;
#pragma omp parallel reduction(| : oom)
    {
        row_scratch w = {attn_ref_alloc(p->Dk, 1), attn_ref_alloc(p->S, 1)};
        oom = !w.q || !w.s;
        const int64_t rows = p->S * p->group;
#pragma omp for schedule(dynamic, 4)
        for (int64_t r = 0; r < rows; r++) {
            if (oom)
                continue;
            const int64_t i = r / p->group, h = g * p->group + r % p->group;
            const int64_t at = ((b * p->S + i) * p->Hq + h) * p->Dv;
            query_row(p, prec, b, i, h, k, v, &w, y + at, a ? a + at : NULL);
        }
        free(w.q);
        free(w.s);
    }
    return oom ? -1 : 0;
}

attn_status attn_ref_transnormer(const attn_transnormer_problem *p, attn_ref_precision prec,
                                 double *out, double *pre, double *absmag)
{
    const int64_t n = p->Hq * p->Dv;
    double *k = attn_ref_alloc(p->S, p->Dk), *v = attn_ref_alloc(p->S, p->Dv);
    double *y = pre ? pre : attn_ref_alloc(p->B * p->S, n);
    int oom = !k || !v || !y;
    for (int64_t b = 0; b < p->B && !oom; b++)
        for (int64_t g = 0; g < p->Hkv && !oom; g++) {
            load_kv(p, prec, b, g, k, v);
            oom = kv_head(p, prec, b, g, k, v, y, absmag) != 0;
        }
    if (!oom)
        for (int64_t t = 0; t < p->B * p->S; t++)
            srms_token(p, prec, y + t * n, out + t * n);
    free(k);
    free(v);
    if (!pre)
        free(y);
    return oom ? attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: out of memory (transnormer scratch)")
               : ATTN_OK;
}
