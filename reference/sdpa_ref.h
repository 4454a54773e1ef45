/* sdpa_ref.h - the ground-truth entry points of the reference (plain loops, no BLIS):
 * the naive SDPA definition and the FlashAttention forward algorithm written out in C. */
#ifndef ATTN_SDPA_REF_H_
#define ATTN_SDPA_REF_H_

#include "attn_sdpa_problem.h"

#include <stdlib.h>

/* Working precision of the naive definition. F64 is the ground truth; F32 rounds every
 * intermediate to float and is the "same working precision" naive code the conformance
 * policy calibrates a backend against. */
typedef enum attn_ref_precision { ATTN_REF_F64 = 0, ATTN_REF_F32 = 1 } attn_ref_precision;

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

/* malloc'd room for n1 x n2 doubles, or NULL when the byte count does not fit size_t: sizes of
 * broadcast (stride 0) inputs are bounded only by 64-bit element counts, not by memory. */
static inline double *attn_ref_alloc(int64_t n1, int64_t n2)
{
    size_t n;
    if (n1 < 0 || n2 < 0 || __builtin_mul_overflow((size_t)n1, (size_t)n2, &n) ||
        __builtin_mul_overflow(n, sizeof(double), &n))
        return NULL;
    return malloc(n ? n : 1);
}

#endif /* ATTN_SDPA_REF_H_ */
