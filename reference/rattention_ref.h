/* rattention_ref.h - the ground-truth entry points of RATTENTION: the naive definition of the
 * forward (reference/rattention.c: both branches written out per query row, the residual
 * branch as its explicit sum over the keys the window has left behind) and the decode step
 * over the ring-buffer cache (reference/rattention_decode.c: one token at a time, folding the
 * evicted slot into the state), in f64 or in the float working precision, with the condition
 * scales the conformance policy uses. The documented internal interface of the conformance
 * driver (tools/rattention_conform.c); docs/ops/rattention.md. */
#ifndef ATTN_RATTENTION_REF_H_
#define ATTN_RATTENTION_REF_H_

#include "attn_rattention_problem.h"
#include "ref_alloc.h"
#include "ref_precision.h"

/* Results in f64, row-major; any pointer but out may be NULL.
 * out [B][S][Hq][Dv]: the context (both norms summed);
 * swa, rla [B][S][Hq][Dv]: each branch before its norm (swa all 0 when w = -1);
 * swa_cond [B][S][Hq][Dv]: sum_j p_ij |v_j| over the window (the softmax output's scale);
 * rla_cond [B][S][Hq][Dv]: sum_f |phi(q_i)_f S0_fc| + sum_j |phi(q_i).phi(k_j)| |v_jc|;
 * state [B][Hkv][Df][Dv]: the state after the call (forward: state_out's value; decode: the
 *   cache's new state);
 * state_cond: the same sums of magnitudes (|S0| + sum_j |phi(k_j)_f| |v_jc|);
 * k_ring [B][slots][Hkv][Dk], v_ring [B][slots][Hkv][Dv] (decode only): the ring after the
 *   call, each stored value rounded to the ring's dtype as a backend stores it. */
typedef struct attn_rattention_ref_out {
    double *out, *swa, *rla, *swa_cond, *rla_cond, *state, *state_cond, *k_ring, *v_ring;
} attn_rattention_ref_out;

/* The forward's definition on a validated forward problem with host-accessible operands.
 * F32 rounds every intermediate to float (RoPE's angles in f64 then rounded, as the cpu
 * backend does). ATTN_ERR_OUT_OF_MEMORY if scratch cannot be allocated. */
attn_status attn_ref_rattention(const attn_rattention_problem *p, attn_ref_precision prec,
                                attn_rattention_ref_out *o);

/* The gradients of the backward in f64, row-major: dq [B][S][Hq][Dk], dk [B][S][Hkv][Dk],
 * dv [B][S][Hkv][Dv], dgamma_swa and dgamma_rla [Hq][Dv] (required), d_state_in
 * [B][Hkv][Df][Dv] (or NULL). The *_mag arrays (same layouts; all given, or dq_mag NULL for
 * none; d_state_in_mag with d_state_in) hold each element's condition scale. */
typedef struct attn_rattention_ref_grads {
    double *dq, *dk, *dv, *dgamma_swa, *dgamma_rla, *d_state_in;
    double *dq_mag, *dk_mag, *dv_mag, *dgamma_swa_mag, *dgamma_rla_mag, *d_state_in_mag;
} attn_rattention_ref_grads;

/* The chain rule through the forward's definition (rattention_backward.c) on a validated
 * backward problem (p->backward), in f64. */
attn_status attn_ref_rattention_backward(const attn_rattention_problem *p,
                                         const attn_rattention_ref_grads *g);

/* The decode step on a validated decode problem (p->decode): reads the cache's ring and state
 * (never writes them) and the new tokens, and returns what the step produces (out, and the
 * cache after it in state, k_ring, v_ring). The branches and conditions are filled as in the
 * forward. */
attn_status attn_ref_rattention_decode(const attn_rattention_problem *p,
                                       attn_ref_precision prec, attn_rattention_ref_out *o);

/* ---- shared by both forms (rattention.c) ---- */

/* GroupRMSNorm of one head's n values x (gamma NULL: 1) added into y:
 * y[c] += x[c] / sqrt(mean(x^2) + eps) * gamma[c]. */
void attn_ref_rattention_norm_add(attn_ref_precision prec, const double *x, const float *gamma,
                                  int64_t n, double eps, double *y);
/* gamma row of head h (Dv floats) of a gamma operand, or NULL when absent. */
const float *attn_ref_rattention_gamma(const attn_operand *g, int64_t h, int64_t dv,
                                       float *buf);
/* The SWA branch of one query row: q (Dk, already rotated) against n keys krow[j] (rotated,
 * Dk each) with values vrow[j] (Dv each): logits scale * q.k, softmax, weighted sum into o
 * (Dv; 0 when n = 0); cond (may be NULL) gets sum_j p_j |v_j|. s: n doubles of scratch. */
void attn_ref_rattention_swa_row(const attn_rattention_problem *p, attn_ref_precision prec,
                                 const double *q, const double *const *krow,
                                 const double *const *vrow, int64_t n, double *s, double *o,
                                 double *cond);
/* y = RoPE(x) at pos over all Dk features, rounded to the working precision. */
void attn_ref_rattention_rotate(const attn_rattention_problem *p, attn_ref_precision prec,
                                const double *x, double pos, double *y);
/* phi(k)^T v folded into the state st [Df][Dv] (and the magnitudes into sabs). */
void attn_ref_rattention_fold(const attn_rattention_problem *p, attn_ref_precision prec,
                              const double *fk, const double *v, double *st, double *sabs);
/* o = phi(q) st (Dv) and cond = phi(q) sabs (phi(q) >= 0; cond may be NULL). */
void attn_ref_rattention_read(const attn_rattention_problem *p, attn_ref_precision prec,
                              const double *fq, const double *st, const double *sabs,
                              double *o, double *cond);

#endif /* ATTN_RATTENTION_REF_H_ */
