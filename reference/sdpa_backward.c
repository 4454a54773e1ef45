/* sdpa_backward.c - the ground truth of SDPA's gradients: the chain rule through the definition
 * of sdpa.c, one query row at a time, in plain loops. For query i of batch b and head h (KV
 * head g), with the row's probabilities P_j recomputed from q and k exactly as the forward
 * computes them (logits by attn_ref_sdpa_logits) and the output's gradient dO_i:
 *
 *   dP_j = dO_i . v_j                      gradient of P_j (o_i = sum_j P_j v_j)
 *   D    = sum_j P_j dP_j                  (= dO_i . o_i)
 *   dS_j = P_j (dP_j - D)                  gradient of the logit s_j, and so of mask_add
 *   dR_j = dS_j * (1 - tanh^2(r_j / cap))  through the soft-cap, r_j = scale q_i . k_j
 *                                          (no cap: dR_j = dS_j)
 *   dq_i = scale sum_j dR_j k_j,  dk_j += scale dR_j q_i,  dv_j += P_j dO_i
 *
 * dk and dv of a KV head sum over every row of every query head of its group; the additive
 * mask's gradient sums dS over the dims the mask broadcasts over. A hidden key has P_j = 0 and
 * gets nothing from the row; a row with no visible key contributes nothing and gets dq_i = 0.
 * Neither out nor lse is read: this is the derivative of the function, not of a stored result.
 * The magnitudes (the condition scales of the conformance bounds) run the same sums over the
 * terms' absolute values. ATTN_REF_F32 rounds every intermediate to float, as sdpa.c does.
 * See docs/ops/sdpa-backward.md. */
#include "sdpa_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Scratch of one (batch, KV head) task: K and V of the head, and one row's q, dO, logits
 * (turned into probabilities in place), soft-cap derivatives, dP and dP's magnitudes. */
typedef struct bwd_ws {
    attn_ref_kv kv;
    double *q, *dout, *s, *dcap, *dp, *dpm;
} bwd_ws;

static int64_t ws_doubles(const attn_sdpa_problem *p)
{
    int64_t n;
    if (__builtin_mul_overflow(p->Skv, p->Dk + p->Dv + 4, &n) ||
        __builtin_add_overflow(n, p->Dk + p->Dv, &n))
        return INT64_MAX;
    return n;
}

static bwd_ws ws_at(const attn_sdpa_problem *p, double *base)
{
    bwd_ws w;
    w.kv.kt = base;
    w.kv.v = w.kv.kt + p->Dk * p->Skv;
    w.q = w.kv.v + p->Skv * p->Dv;
    w.dout = w.q + p->Dk;
    w.s = w.dout + p->Dv;
    w.dcap = w.s + p->Skv;
    w.dp = w.dcap + p->Skv;
    w.dpm = w.dp + p->Skv;
    return w;
}

/* Softmax of the row's logits into probabilities, in place. Returns 0 for a row with no
 * visible key (every logit -inf), which then contributes nothing. A NaN logit makes the
 * visible keys' probabilities NaN, as it makes the forward's output NaN; hidden keys keep
 * P = 0 (the row does not depend on them, so they get nothing from it). */
static int row_probs(const attn_sdpa_problem *p, attn_ref_precision prec, double *s)
{
    double m = -INFINITY, l = 0.0;
    for (int64_t j = 0; j < p->Skv; j++)
        m = isnan(s[j]) || isnan(m) ? NAN : s[j] > m ? s[j] : m;
    if (m == -INFINITY)
        return 0;
    for (int64_t j = 0; j < p->Skv; j++) {
        s[j] = s[j] == -INFINITY ? 0.0 : r_exp(prec, rnd(prec, s[j] - m));
        l = rnd(prec, l + s[j]);
    }
    for (int64_t j = 0; j < p->Skv; j++) /* a hidden key stays 0, even when l is NaN */
        s[j] = s[j] == 0.0 ? 0.0 : rnd(prec, s[j] / l);
    return 1;
}

/* Element of the dense dmask array that logit (b, i, h, j) adds into. */
static int64_t dmask_at(const attn_sdpa_problem *p, int64_t b, int64_t i, int64_t h, int64_t j)
{
    const int64_t *sh = p->mask_add.t->shape;
    return (((sh[0] == 1 ? 0 : b) * sh[1] + (sh[1] == 1 ? 0 : i)) * sh[2] +
            (sh[2] == 1 ? 0 : h)) * sh[3] + (sh[3] == 1 ? 0 : j);
}

/* dP_j = dO . v_j and D = sum_j P_j dP_j (and their magnitudes). */
static void row_dp(const attn_sdpa_problem *p, attn_ref_precision prec, bwd_ws *w, double *D,
                   double *Dm)
{
    *D = *Dm = 0.0;
    for (int64_t j = 0; j < p->Skv; j++) {
        double dp = 0.0, dpm = 0.0;
        if (w->s[j] != 0.0) { /* a hidden key (or an underflowed one) adds nothing */
            const double *vj = w->kv.v + j * p->Dv;
            for (int64_t d = 0; d < p->Dv; d++) {
                dp = rnd(prec, dp + rnd(prec, w->dout[d] * vj[d]));
                dpm += fabs(w->dout[d] * vj[d]);
            }
        }
        w->dp[j] = dp;
        w->dpm[j] = dpm;
        *D = rnd(prec, *D + rnd(prec, w->s[j] * dp));
        *Dm += w->s[j] * dpm;
    }
}

/* One query row (b, i, h) of KV head g: its dq row, and its terms of dk, dv and dmask. */
static void row_backward(const attn_sdpa_problem *p, attn_ref_precision prec,
                         const attn_ref_sdpa_grads *g, bwd_ws *w, int64_t b, int64_t i,
                         int64_t h, int64_t kvh)
{
    const int64_t Dk = p->Dk, Dv = p->Dv, Skv = p->Skv;
    const int64_t qrow = ((b * p->Sq + i) * p->Hq + h) * Dk;
    double *dq = g->dq + qrow, *dqm = g->dq_mag ? g->dq_mag + qrow : NULL;
    memset(dq, 0, (size_t)Dk * sizeof *dq);
    if (dqm)
        memset(dqm, 0, (size_t)Dk * sizeof *dqm);
    attn_ref_sdpa_logits(p, prec, b, i, h, &w->kv, w->q, w->s, w->dcap);
    if (!row_probs(p, prec, w->s))
        return;
    for (int64_t d = 0; d < Dv; d++)
        w->dout[d] = attn_load_f64(p->dout.ptr, p->dout.dtype, attn_at(&p->dout, b, i, h, d));
    double D, Dm;
    row_dp(p, prec, w, &D, &Dm);
    const double scale = rnd(prec, p->scale);
    for (int64_t j = 0; j < Skv; j++) {
        const double P = w->s[j];
        if (P == 0.0)
            continue;
        const double ds = rnd(prec, P * rnd(prec, w->dp[j] - D));
        const double dsm = P * (w->dpm[j] + Dm);
        if (g->dmask)
            g->dmask[dmask_at(p, b, i, h, j)] += ds;
        if (g->dmask_mag)
            g->dmask_mag[dmask_at(p, b, i, h, j)] += dsm;
        const double gr = rnd(prec, scale * rnd(prec, ds * w->dcap[j]));
        const double grm = fabs(scale * w->dcap[j]) * dsm;
        const int64_t krow = ((b * Skv + j) * p->Hkv + kvh);
        for (int64_t d = 0; d < Dk; d++) {
            const double kd = w->kv.kt[d * Skv + j];
            dq[d] = rnd(prec, dq[d] + rnd(prec, gr * kd));
            g->dk[krow * Dk + d] = rnd(prec, g->dk[krow * Dk + d] + rnd(prec, gr * w->q[d]));
            if (dqm)
                dqm[d] += grm * fabs(kd);
            if (g->dk_mag)
                g->dk_mag[krow * Dk + d] += grm * fabs(w->q[d]);
        }
        for (int64_t d = 0; d < Dv; d++) {
            g->dv[krow * Dv + d] = rnd(prec, g->dv[krow * Dv + d] + rnd(prec, P * w->dout[d]));
            if (g->dv_mag)
                g->dv_mag[krow * Dv + d] += P * fabs(w->dout[d]);
        }
    }
}

/* Every row of the query heads of KV head kvh in batch b, in order (so dk and dv sum in a
 * fixed order: the result does not depend on the thread count). */
static void head_backward(const attn_sdpa_problem *p, attn_ref_precision prec,
                          const attn_ref_sdpa_grads *g, bwd_ws *w, int64_t b, int64_t kvh)
{
    attn_ref_sdpa_load_kv(p, b, kvh, &w->kv);
    for (int64_t h = kvh * p->group; h < (kvh + 1) * p->group; h++)
        for (int64_t i = 0; i < p->Sq; i++)
            row_backward(p, prec, g, w, b, i, h, kvh);
}

/* Zero an optional dense array of n1 x n2 doubles. */
static void zero(double *a, int64_t n1, int64_t n2)
{
    if (a)
        memset(a, 0, (size_t)n1 * (size_t)n2 * sizeof *a);
}

attn_status attn_ref_sdpa_backward(const attn_sdpa_problem *p, attn_ref_precision prec,
                                   const attn_ref_sdpa_grads *g)
{
#ifdef _OPENMP
    const int nthreads = omp_get_max_threads();
#else
    const int nthreads = 1;
#endif
    double *scratch = attn_ref_alloc(nthreads, ws_doubles(p));
    if (!scratch)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate %.3g bytes of scratch",
                         8.0 * nthreads * (double)ws_doubles(p));
    const int64_t kv_rows = p->B * p->Skv * p->Hkv;
    zero(g->dk, kv_rows, p->Dk);
    zero(g->dk_mag, kv_rows, p->Dk);
    zero(g->dv, kv_rows, p->Dv);
    zero(g->dv_mag, kv_rows, p->Dv);
    if (g->dmask || g->dmask_mag) {
        const int64_t *sh = p->mask_add.t->shape;
        zero(g->dmask, sh[0] * sh[1] * sh[2], sh[3]);
        zero(g->dmask_mag, sh[0] * sh[1] * sh[2], sh[3]);
    }
    /* Tasks (batch, KV head) own their dk, dv and dq rows; a broadcast mask's gradient is
     * shared between tasks, so with it they run one after another. */
    const int64_t tasks = p->B * p->Hkv;
#ifdef _OPENMP
    const int threaded = tasks > 1 && !g->dmask && !g->dmask_mag;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) if (threaded)
#endif
    for (int64_t t = 0; t < tasks; t++) {
#ifdef _OPENMP
        const int me = omp_get_thread_num();
#else
        const int me = 0;
#endif
        bwd_ws w = ws_at(p, scratch + (int64_t)me * ws_doubles(p));
        head_backward(p, prec, g, &w, t / p->Hkv, t % p->Hkv);
    }
    free(scratch);
    return attn_ok();
}
