/* cpu_sdpa.h - SDPA in the CPU backend: row kernels of the online softmax, the steps shared by
 * the tiled forward and the decode path, the AVX2 decode kernels, the two forward drivers and
 * the backward. */
#ifndef ATTN_CPU_SDPA_H_
#define ATTN_CPU_SDPA_H_

#include "attn_sdpa_problem.h"
#include "cpu_internal.h"
#include "attn_half.h"

#include <stdint.h>

/* ---- tile kernels (cpu_sdpa_softmax.c) -------------------------------------------------------- */
/* Logit transforms of one row of n scores for keys j0..j0+n-1: soft-cap, additive mask
 * (f32 row, or NULL), boolean mask (u8 row with element stride, or NULL), band [lo, hi). */
void attn_cpu_logits_row(float *s, int64_t n, float softcap, const float *madd,
                         const uint8_t *mbool, int64_t mbool_stride, int64_t j0, int64_t lo,
                         int64_t hi);
/* Online-softmax step of one row: s (n scores) becomes p = exp(s - m_new), -0 for hidden keys
 * (logit -inf) and +0 for visible ones that underflow; *m and *l are updated; returns the
 * factor the row's output accumulator must be multiplied by. */
float attn_cpu_softmax_row(float *s, int64_t n, float *m, float *l);
/* Small products of the decode path (no BLIS call overhead): s[r][j] = scale * q[r] . k[j]
 * for nq query rows and nk key rows (contiguous rows of length d); o[r] += sum_j p[r][j] v[j]
 * over nk contiguous V rows of dv, hidden keys (p = -0) skipped (their V rows never read). */
void attn_cpu_qk_block(const float *q, int64_t nq, const float *k, int64_t nk, int64_t d,
                       float scale, float *s, int64_t lds);
void attn_cpu_pv_block(const float *p, int64_t ldp, int64_t nq, const float *v, int64_t nk,
                       int64_t dv, float *o);
/* Whether a probability marks a hidden key (-0, see attn_cpu_softmax_row): its V row is never
 * read, while a visible key with p = +0 still multiplies its V row (0 * NaN = NaN). */
static inline int attn_cpu_p_hidden(float p)
{
    return attn_f32_bits(p) == 0x80000000u;
}
/* The same step on a score panel of nk keys x lq query lanes ((key, q) at key*lq + q, lq a
 * multiple of 16), for every lane: m, l, alpha hold lq values; alpha gets each lane's rescale
 * factor. Hidden keys get p = -0 as in the row step. */
void attn_cpu_softmax_panel(float *s, int64_t nk, int64_t lq, float *m, float *l, float *alpha);
typedef void (*attn_cpu_softmax_panel_fn)(float *s, int64_t nk, int64_t lq, float *m, float *l,
                                          float *alpha);
#if defined(__GNUC__) && defined(__x86_64__)
/* The same on AVX-512F vectors (cpu_sdpa_softmax_avx512.c); exp rounded within 2 ulp as the
 * portable one, with fused multiply-adds (so not bit for bit the portable loop's results). */
void attn_cpu_softmax_panel_avx512(float *s, int64_t nk, int64_t lq, float *m, float *l,
                                   float *alpha);
/* o[d * lq + q] += sum_j s[j * lq + q] * v[j * lk + d] for the nd (< 16) dims of a last, partial
 * value panel (cpu_sdpa_pv_tail_avx512.c): the micro-kernel would compute all lk. */
void attn_cpu_pv_tail_avx512(const float *s, int64_t nk, int64_t lq, const float *v,
                             int64_t lk, int64_t nd, float *o);
#endif
typedef void (*attn_cpu_pv_tail_fn)(const float *s, int64_t nk, int64_t lq, const float *v,
                                    int64_t lk, int64_t nd, float *o);
/* The panel loops of the packed tiles for the widest SIMD set allowed: the softmax step, and
 * the partial value panel's product (NULL: the micro-kernel on the zero-padded panel). */
typedef struct attn_cpu_panel_fns {
    attn_cpu_softmax_panel_fn softmax;
    attn_cpu_pv_tail_fn pv_tail;
} attn_cpu_panel_fns;
attn_cpu_panel_fns attn_cpu_panel_fns_for(int simd);
/* The packed V of keys k0.. of KV head hk of batch b: value-dim panels (panel t at panels +
 * t * ld_panel, key k0 + j's dims at j * lk) and a flag per key whose V row holds Inf/NaN
 * (zeroed in the pack). */
typedef struct attn_cpu_panel_v {
    const float *panels;
    int64_t ld_panel, b, hk, k0;
    const uint8_t *bad;
} attn_cpu_panel_v;
/* After a panel's softmax step over nk keys: its accumulator o (dims x lq lanes) rescaled by
 * alpha where a lane's max grew, then O += P V (the micro-kernel on each full lk-dim panel,
 * the partial last one by f->pv_tail where there is one), then the exact terms of flagged keys
 * for the lanes that see them (p = +0 included, hidden keys p = -0 never). row: Dv floats. */
void attn_cpu_panel_pv(const attn_sdpa_problem *p, const attn_cpu_ukr *u,
                       const attn_cpu_panel_fns *f, const attn_cpu_panel_v *v, int64_t nk,
                       const float *s, const float *alpha, float *row, float *o);
/* o (nd x lq, (d, q) at d*lq + q): lane q *= alpha[q]. */
void attn_cpu_scale_panel(float *o, int64_t nd, int64_t lq, const float *alpha);
/* o[0..n) *= f */
void attn_cpu_scale_row(float *o, int64_t n, float f);
/* Final output of one row from (o, m, l): out = o / l (0 when l == 0); *lse_out = m + log l
 * (-inf when l == 0). */
void attn_cpu_finish_row(float *o, int64_t n, float m, float l, float *lse_out);

/* Store a finished row (f32, n values) into the output operand at (b, i, h). */
void attn_cpu_store_row(const attn_operand *out, int64_t b, int64_t i, int64_t h,
                        const float *src, int64_t n);

/* ---- tile steps shared by the two drivers (cpu_sdpa.c) ------------------------------------ */
/* The logits of row srow (query i, head h, keys [j0, j0 + nc), scaled scores on entry):
 * soft-cap, masks, band (hidden keys -inf). madd_scratch holds nc floats. */
void attn_cpu_row_logits(const attn_sdpa_problem *p, float *srow, float *madd_scratch,
                         int64_t b, int64_t i, int64_t h, int64_t j0, int64_t nc);
/* Row step for query i, head h over keys [j0, j0 + nc): the logits (attn_cpu_row_logits),
 * online softmax (srow becomes p; *m, *l updated) and the rescale of the output row orow (Dv
 * floats). madd_scratch holds nc floats. */
void attn_cpu_row_step(const attn_sdpa_problem *p, float *srow, float *madd_scratch,
                       float *orow, float *m, float *l, int64_t b, int64_t i, int64_t h,
                       int64_t j0, int64_t nc);
/* o (nr x Dv, contiguous) += P (nr x nc, row stride ldp) * V rows vt (nc x Dv); keys with
 * p = 0 never contribute, even with non-finite V. vbad: nc flags (V row holds Inf/NaN), or
 * NULL to scan vt here. vfix: nc x Dv floats of scratch. */
void attn_cpu_pv(const attn_sdpa_problem *p, const float *pt, int64_t ldp, int64_t nr,
                 attn_cpu_mat vt, int64_t nc, const uint8_t *vbad, float *o, float *vfix);

/* ---- decode kernels reading K/V in place (cpu_sdpa_decode_simd.h, one instance per SIMD set) -- */
/* Rows of a K or V head read in place: row j starts at element j * ld of p (dtype f32, f16 or
 * bf16), its elements are contiguous. */
typedef struct attn_cpu_rows {
    const void *p;
    attn_dtype dtype;
    int64_t ld;
} attn_cpu_rows;

/* The kernels' types: scores of nq query rows against nk keys, and O += P V. */
typedef void (*attn_cpu_dec_qk_fn)(const float *q, int64_t nq, const attn_cpu_rows *k,
                                   int64_t nk, int64_t d, float scale, float *s, int64_t lds,
                                   const attn_cpu_rows *v, int64_t dv);
typedef void (*attn_cpu_dec_pv_fn)(const float *p, int64_t ldp, int64_t nq,
                                   const attn_cpu_rows *v, int64_t nk, int64_t dv, float *o);

#if defined(__GNUC__) && defined(__x86_64__)
#define ATTN_CPU_HAVE_AVX2_KERNELS 1
/* s[r][j] = scale * q[r] . k[j] for nq f32 query rows (contiguous, length d) and nk keys.
 * v: the V rows (dv elements) of the same keys, requested from memory for the P V product
 * that follows. */
void attn_cpu_dec_qk_avx2(const float *q, int64_t nq, const attn_cpu_rows *k, int64_t nk,
                          int64_t d, float scale, float *s, int64_t lds,
                          const attn_cpu_rows *v, int64_t dv);
/* o[r] += sum_j p[r][j] v[j] for nq rows (o contiguous rows of dv) over nk V rows. Every
 * term is added, so hidden keys (p = 0) need finite V rows (the caller checks). */
void attn_cpu_dec_pv_avx2(const float *p, int64_t ldp, int64_t nq, const attn_cpu_rows *v,
                          int64_t nk, int64_t dv, float *o);
/* The same two on AVX-512 vectors. */
void attn_cpu_dec_qk_avx512(const float *q, int64_t nq, const attn_cpu_rows *k, int64_t nk,
                            int64_t d, float scale, float *s, int64_t lds,
                            const attn_cpu_rows *v, int64_t dv);
void attn_cpu_dec_pv_avx512(const float *p, int64_t ldp, int64_t nq, const attn_cpu_rows *v,
                            int64_t nk, int64_t dv, float *o);
#else
#define ATTN_CPU_HAVE_AVX2_KERNELS 0
#endif

/* ---- drivers (cpu_sdpa.c, cpu_sdpa_decode.c) -------------------------------------------------- */
/* The cpu backend's SDPA on a problem: the path cpu_sdpa_impl.c picks (decode, packed tiles or
 * sgemm tiles) with the state's threads and options. Other ops (rattention's window branch)
 * hand it problems over their own f32 scratch. */
attn_status attn_cpu_sdpa_dispatch(const attn_sdpa_problem *p, const attn_cpu_state *s);
attn_status attn_cpu_sdpa_tiled(const attn_sdpa_problem *p, int threads, int64_t br,
                                int64_t bc);
/* The tiled forward on BLIS's micro-kernel with K and V packed once per KV group
 * (cpu_sdpa_packed.c). Requires attn_cpu_sdpa_packed_fits(p, u). simd: the widest SIMD set
 * allowed (attn_cpu_simd) for the softmax step. */
attn_status attn_cpu_sdpa_packed(const attn_sdpa_problem *p, const attn_cpu_ukr *u,
                                 int threads, int simd, int64_t br, int64_t bc);
/* Keys [k0, k0 + nk) of a score panel ((key, lane) at key*lq + lane) that the band hides from
 * query rows i .. i + rows - 1 (lanes past rows are padding, left as they are) get -inf. */
void attn_cpu_mask_panel(const attn_sdpa_problem *p, float *s, int64_t lq, int64_t i,
                         int64_t rows, int64_t k0, int64_t nk);
/* Whether the packed forward runs p: no masks or soft-cap, a micro-kernel whose query lanes
 * are a multiple of 16 and key lanes fit a packing step. (V rows with Inf/NaN are handled per
 * group: such groups take the tiled forward's exact path.) */
int attn_cpu_sdpa_packed_fits(const attn_sdpa_problem *p, const attn_cpu_ukr *u);
/* simd: the widest SIMD kernel set allowed (attn_cpu_simd), used when the CPU has it and K/V
 * rows are contiguous. */
attn_status attn_cpu_sdpa_decode(const attn_sdpa_problem *p, int threads, int simd);
/* The SIMD kernel set the decode path would use for p (ATTN_CPU_SIMD_OFF: portable). */
attn_cpu_simd attn_cpu_decode_uses_simd(const attn_sdpa_problem *p, int simd);
/* Work items the decode path would make for p: batch x key chunks. */
int64_t attn_cpu_decode_items(const attn_sdpa_problem *p, int threads);
/* The decode items' products on the micro-kernel (cpu_sdpa_decode_ukr.c) for groups of at least
 * ATTN_CPU_DECODE_UKR_ROWS query rows (group * Sq) without masks, soft-cap or key_score:
 * whether p runs there, the floats of one thread's scratch, and one item (KV head hk of batch
 * b, keys [j_begin, j_end), the G f32 query rows q) into the decode path's partial. */
#define ATTN_CPU_DECODE_UKR_ROWS 64
int attn_cpu_dec_ukr_fits(const attn_sdpa_problem *p, const attn_cpu_ukr *u, int64_t G);
int64_t attn_cpu_dec_ukr_floats(const attn_sdpa_problem *p, const attn_cpu_ukr *u, int64_t G);
void attn_cpu_dec_ukr_run(const attn_sdpa_problem *p, const attn_cpu_ukr *u,
                          const attn_cpu_panel_fns *f, float *scratch, const float *q,
                          int64_t G, int64_t b, int64_t hk, int64_t j_begin, int64_t j_end,
                          float *part);
/* Whether p's decode items run on the micro-kernel (its lanes in *u). */
int attn_cpu_decode_uses_ukr(const attn_sdpa_problem *p, attn_cpu_ukr *u);
/* Sq at or below which the decode path is always used: reading K/V once for all
 * G = group * Sq rows beats BLIS tiles of so few rows even on one thread (docs/cpu.md). */
#define ATTN_CPU_DECODE_MAX_SQ 16
/* Sq at or below which it is used when its key chunks give every thread a work item. */
#define ATTN_CPU_DECODE_WIDE_SQ 64
/* ... and up to ATTN_CPU_DECODE_UKR_SQ when its items run on the micro-kernel over at least
 * ATTN_CPU_DECODE_UKR_KV_PER_Q keys per query (measured, docs/cpu.md: stacking a group's rows
 * beats tiles that read K/V once per query head; over short square causal problems the tiles,
 * which skip the hidden half, win). */
#define ATTN_CPU_DECODE_UKR_SQ 128
#define ATTN_CPU_DECODE_UKR_KV_PER_Q 8

/* Whether the decode path computes p's key_score itself: the probabilities it keeps for one
 * batch (every query row over the keys the band reaches) take at most
 * ATTN_CPU_DECODE_KS_FLOATS floats (64 MiB; more batches go in slices); else the key_score
 * sweep follows the forward. */
#define ATTN_CPU_DECODE_KS_FLOATS ((int64_t)1 << 24)
int attn_cpu_decode_keeps_probs(const attn_sdpa_problem *p);

/* ---- key_score (cpu_sdpa_key_score.c) ----------------------------------------------------- */
/* col[j] += p[j] * f over n probabilities of one row step (p = exp(s - m) of its tile, f =
 * exp(m - lse)); hidden keys (p = -0) add 0 whatever f is. */
void attn_cpu_ks_add_scaled(const float *p, int64_t n, float f, float *col);
/* key_score[b, j0 + j, hk] = col[j] for j < n (0 when col is NULL). */
void attn_cpu_ks_store(const attn_sdpa_problem *p, int64_t b, int64_t hk, int64_t j0,
                       int64_t n, const float *col);
/* A forward path of the backend on a problem (no key_score). */
typedef attn_status (*attn_cpu_sdpa_fwd_fn)(const attn_sdpa_problem *p, const attn_cpu_state *s);
/* The forward with key_score for the paths that do not compute it: fwd runs on p with the LSE
 * kept (the user's, else scratch), then a sweep over (key tile, query tile) blocks recomputes
 * the scores (on the micro-kernel u where the packed forward runs, else on BLIS sgemm; u NULL)
 * and sums the columns of P = exp(s - lse) per (batch, KV head). Deterministic; scratch
 * allocated first (nothing written on failure). */
attn_status attn_cpu_sdpa_key_score(const attn_sdpa_problem *p, const attn_cpu_state *s,
                                    const attn_cpu_ukr *u, attn_cpu_sdpa_fwd_fn fwd);
/* Floats of scratch the sweep takes on `threads` threads (either score code), or -1 when the
 * count leaves int64. */
int64_t attn_cpu_ks_scratch(const attn_sdpa_problem *p, int threads);

/* ---- backward (cpu_sdpa_backward.c) ------------------------------------------------------- */
/* Tile sizes of the backward (query rows x keys): constants, so that the bits of the result
 * never depend on the thread count. 128 x 256 measured best on 2 threads (B1 H8 S2048
 * D64/D128: 2-5% over 96 x 192, which was 5-15% over 64 x 128 per CPU second; 64 x 256 and
 * 192 x 192 slower). */
#define ATTN_CPU_BWD_BR 128
#define ATTN_CPU_BWD_BC 256
/* Floats of scratch the backward of p takes on `threads` threads, or -1 when the count leaves
 * int64 (checked arithmetic). */
int64_t attn_cpu_sdpa_backward_scratch(const attn_sdpa_problem *p, int threads);
/* The tiled FlashAttention-2 backward of a backward problem (p->backward). */
attn_status attn_cpu_sdpa_backward(const attn_sdpa_problem *p, int threads);

#endif /* ATTN_CPU_SDPA_H_ */
