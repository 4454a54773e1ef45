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

/* The forward's key_score (sdpa_key_score.c): ks double [B][Skv][Hkv] gets
 * sum_{h of KV head g} sum_i w_{b,i,h} P[b, h, i, j] with w = row_weight[(b Sq + i) Hq + h]
 * (NULL: 1). Keys no row sees get 0. */
attn_status attn_ref_sdpa_key_score(const attn_sdpa_problem *p, attn_ref_precision prec,
                                    const double *row_weight, double *ks);

/* FlashAttention-2 forward (tiled, online softmax, band tile skipping) with Br x Bc tiles,
 * f64 accumulation; same outputs as attn_ref_sdpa (no absmag). */
attn_status attn_ref_sdpa_flash(const attn_sdpa_problem *p, int64_t br, int64_t bc, double *out,
                           double *lse);

/* One tile of logits: query rows [i0, i0 + rows) of batch b, head h against keys
 * [j0, j0 + cols), stored with row stride ld; interior: every row's band holds every key. */
typedef struct attn_ref_tile {
    int64_t b, h, i0, rows, j0, cols, ld;
    int interior;
} attn_ref_tile;

/* Rows [r0, r0 + n) of one head of a [B, S, H, D] operand into dst [n][D], as doubles. */
void attn_ref_flash_load(const attn_operand *o, int64_t b, int64_t r0, int64_t n, int64_t head,
                         int64_t dim, double *dst);

/* The tile's logits S = scale Q K^T, soft-capped, plus the additive mask; -inf where hidden
 * (band, boolean mask). Q [rows][Dk], K [cols][Dk]. C (or NULL) gets d s / d(scale q.k): the
 * soft-cap's 1 - tanh^2, or 1. Shared by the FlashAttention forward and backward. */
void attn_ref_flash_scores(const attn_sdpa_problem *p, const attn_ref_tile *g, const double *Q,
                           const double *K, double *S, double *C);

/* K and V of one (batch, KV head) in double, shared by every query row of that head: kt is K
 * transposed [Dk][Skv], v is [Skv][Dv]. */
typedef struct attn_ref_kv {
    double *kt;
    double *v;
} attn_ref_kv;

/* Load K and V of batch b, KV head g into kv (allocated by the caller). */
void attn_ref_sdpa_load_kv(const attn_sdpa_problem *p, int64_t b, int64_t g, attn_ref_kv *kv);

/* The definition's logits of row (b, i, h) into s [Skv] (-inf where hidden), its query into
 * q [Dk]; dcap [Skv] (or NULL) gets d s_j / d(scale q.k_j) at visible keys: the soft-cap's
 * 1 - tanh^2, or 1 without a cap. */
void attn_ref_sdpa_logits(const attn_sdpa_problem *p, attn_ref_precision prec, int64_t b,
                          int64_t i, int64_t h, const attn_ref_kv *kv, double *q, double *s,
                          double *dcap);

/* The gradients of the backward (attn_sdpa_backward), as doubles in dense row-major layouts:
 * dq [B][Sq][Hq][Dk], dk [B][Skv][Hkv][Dk], dv [B][Skv][Hkv][Dv] (required); dmask [mB][mSq][mH]
 * [mSkv] with the additive mask's own dims (size-1 dims summed over), or NULL. The *_mag arrays
 * (same layouts, each optional) are the condition scales of each gradient element: the same
 * sums over |terms| (docs/conformance.md derives the bounds from them). */
typedef struct attn_ref_sdpa_grads {
    double *dq, *dk, *dv, *dmask;
    double *dq_mag, *dk_mag, *dv_mag, *dmask_mag;
} attn_ref_sdpa_grads;

/* Naive SDPA backward of a validated backward problem (p->backward; host-accessible q, k, v,
 * dout, masks), the chain rule one row at a time: P recomputed from q and k, dP = dO V^T,
 * D_i = sum_j P_ij dP_ij, dS = P * (dP - D), then dQ = scale dS K, dK = scale dS^T Q,
 * dV = P^T dO (with the soft-cap's 1 - tanh^2 on dS). Reads neither out nor lse. */
attn_status attn_ref_sdpa_backward(const attn_sdpa_problem *p, attn_ref_precision prec,
                                   const attn_ref_sdpa_grads *g);

/* The FlashAttention-2 backward (Dao 2023, Algorithm 2) in f64 with Br x Bc tiles: P recomputed
 * tile by tile from the forward's lse (double [B][Hq][Sq]) and D_i = rowsum(dO_i * O_i) from
 * its out (double [B][Sq][Hq][Dv]). kv_outer = 1: the paper's loop order (key tiles outer, dK
 * and dV finished per key tile, dQ accumulated); 0: query tiles outer (dQ finished per query
 * tile, dK and dV accumulated). Fills g->dq, dk, dv (and dmask); no magnitudes. */
attn_status attn_ref_sdpa_flash_backward(const attn_sdpa_problem *p, int64_t br, int64_t bc,
                                         int kv_outer, const double *out, const double *lse,
                                         const attn_ref_sdpa_grads *g);

#endif /* ATTN_SDPA_REF_H_ */
