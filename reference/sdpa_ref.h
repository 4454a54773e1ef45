/* sdpa_ref.h - the ground-truth entry points of the reference (plain loops, no BLIS):
 * the naive SDPA definition and the FlashAttention forward algorithm written out in C. */
#ifndef ATTN_SDPA_REF_H_
#define ATTN_SDPA_REF_H_

#include "attn_sdpa_problem.h"
#include "ref_alloc.h"
#include "ref_precision.h"


/* Naive SDPA of a validated problem with host-accessible q, k, v (and masks).
 * out:    double [B][Sq][Hq][Dv], required;
 * lse:    double [B][Hq][Sq] or NULL (natural log; -inf for rows with no visible key);
 * absmag: double [B][Sq][Hq][Dv] or NULL: sum_j p_ij * |v_j| (the condition scale of each
 *         output element, used by the conformance error bound).
 * Returns ATTN_ERR_OUT_OF_MEMORY if scratch cannot be allocated. */
attn_status attn_ref_sdpa(const attn_sdpa_problem *p, attn_ref_precision prec, double *out,
                          double *lse, double *absmag);

/* FlashAttention-2 forward (tiled, online softmax, band tile skipping) with Br x Bc tiles,
 * f64 accumulation; same outputs as attn_ref_sdpa (no absmag). */
attn_status attn_ref_sdpa_flash(const attn_sdpa_problem *p, int64_t br, int64_t bc, double *out,
                           double *lse);

#endif /* ATTN_SDPA_REF_H_ */
