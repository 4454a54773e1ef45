/* transnormer_ref.h - the ground-truth entry points of TransNormer (reference/transnormer.c):
 * the naive definition of NormAttention and DiagAttention with SimpleRMSNorm, in f64 or in
 * the float working precision, and the condition scale of each output element that the
 * conformance policy uses (docs/conformance.md, "TransNormer"). */
#ifndef ATTN_TRANSNORMER_REF_H_
#define ATTN_TRANSNORMER_REF_H_

#include "attn_transnormer_problem.h"
#include "ref_alloc.h"
#include "ref_precision.h"

/* Naive TransNormer of a validated problem with host-accessible q, k, v.
 * out:    double [B][S][Hq][Dv], required: the result (after SimpleRMSNorm when p->srms);
 * pre:    double [B][S][Hq][Dv] or NULL: the attention output before the norm;
 * absmag: double [B][S][Hq][Dv] or NULL: the condition scale of pre, per element:
 *         NormAttention sum_j (|phi(q_i)|.|phi(k_j)|) |v_j|; softmax DiagAttention
 *         sum_j p_ij |v_j|; ReLU DiagAttention sum_j |scale| (|q_i|.|k_j|) |v_j| (sums over
 *         the keys query i sees; |x|.|y| = sum_d |x_d| |y_d|).
 * F32 rounds every intermediate to float (the naive float code of the calibration gate).
 * Returns ATTN_ERR_OUT_OF_MEMORY if scratch cannot be allocated. */
attn_status attn_ref_transnormer(const attn_transnormer_problem *p, attn_ref_precision prec,
                                 double *out, double *pre, double *absmag);

/* Condition scale of each output element (cond, [B][S][Hq][Dv]) from the pre-norm result, its
 * condition `absmag` and the output: absmag itself without the norm; with it, per token
 * (N = Hq * Dv values, r = ||pre||_2 / sqrt(N)):
 *   cond_c = (absmag_c + |out_c| (rms(absmag) + r)) / (r + eps)
 * (the first-order sensitivity of y / (r + eps), plus the norm's own rounding). */
void attn_ref_transnormer_cond(const attn_transnormer_problem *p, const double *pre,
                               const double *absmag, const double *out, double *cond);

#endif /* ATTN_TRANSNORMER_REF_H_ */
