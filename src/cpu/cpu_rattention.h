/* cpu_rattention.h - RATTENTION on the cpu backend: the forward (cpu_rattention_fwd.c: RoPE
 * into f32 scratch, the window branch on the SDPA kernels, the residual branch on linear
 * attention's chunked kernel), the backward (cpu_rattention_backward.c: the forward's steps
 * recomputed, the norms' backward, then SDPA's and linear attention's backward kernels), the
 * decode step over the ring cache (cpu_rattention_decode.c, its scores with RoPE applied in
 * registers in cpu_rattention_decode_simd.h) and the pieces forward and decode
 * share (cpu_rattention_norm.c: the two GroupRMSNorms and their sum, the RLA state's fold and
 * read). Dispatch and names: cpu_rattention_impl.c. */
#ifndef ATTN_CPU_RATTENTION_H_
#define ATTN_CPU_RATTENTION_H_

#include "attn_rattention_problem.h"
#include "attn_sdpa_problem.h"
#include "cpu_internal.h"
#include "cpu_sdpa.h"

#include <stdint.h>

/* Default chunk of the residual branch's chunked form (option chunk= overrides), tuned with
 * `attn bench --op rattention` (S4096 D128 H8, w 512). */
#define ATTN_CPU_RATT_CHUNK 64

/* The forward of a validated problem into out (and state_out); ATTN_ERR_OUT_OF_MEMORY, with
 * nothing written, when scratch cannot be had. */
attn_status attn_cpu_rattention_forward(const attn_rattention_problem *p,
                                        const attn_cpu_state *s, int64_t chunk);
/* The forward's steps (cpu_rattention_fwd.c), which the backward recomputes:
 * q and k rotated at their positions into f32 qr [B, S, Hq, Dk] and kr [B, S, Hkv, Dk]; */
attn_status attn_cpu_ratt_rotate(const attn_rattention_problem *p, int threads, float *qr,
                                 float *kr);
/* the window's SDPA problem without operands (causal, window_left w, p's v); */
void attn_cpu_ratt_swa_problem(const attn_rattention_problem *p, attn_sdpa_problem *sp);
/* the window branch over the rotated tq, tk into f32 tout (and tlse unless NULL) on the
 * SDPA tiles; */
attn_status attn_cpu_ratt_swa(const attn_rattention_problem *p, const attn_cpu_state *s,
                              const attn_tensor *tq, const attn_tensor *tk,
                              const attn_tensor *tout, const attn_tensor *tlse);
/* Rows [r0, r0 + n) of an operand (dim 1; its view, with n rows, in *t). */
attn_operand attn_cpu_ratt_rows(const attn_operand *o, int64_t r0, int64_t n, attn_tensor *t);
/* the residual branch into f32 rla [B, S, Hq, Dv] (and p's state_out when present). */
attn_status attn_cpu_ratt_rla(const attn_rattention_problem *p, int threads, int64_t chunk,
                              float *rla);

/* The backward of a validated backward problem (p->backward): the branches recomputed with
 * the forward's residual chunk fwd_chunk, the residual branch's backward with chunk bwd_chunk;
 * ATTN_ERR_OUT_OF_MEMORY, with nothing written, when scratch cannot be had. */
attn_status attn_cpu_rattention_backward(const attn_rattention_problem *p,
                                         const attn_cpu_state *s, int64_t fwd_chunk,
                                         int64_t bwd_chunk);
/* Floats of scratch the backward takes at most beyond the forward's recomputation (its own
 * buffers and its sub-problems' backward), in double; -1 when a sub-problem's count leaves
 * int64. */
double attn_cpu_rattention_backward_floats(const attn_rattention_problem *p,
                                           const attn_cpu_state *s, int64_t bwd_chunk);

/* The decode step of a validated decode problem: out, ring, state; the same error rule. */
attn_status attn_cpu_rattention_decode(const attn_rattention_problem *p,
                                       const attn_cpu_state *s);

/* malloc'd room for n1 * n2 floats (NULL on overflow or failure; n1 * n2 == 0 gives one). */
float *attn_cpu_ratt_alloc(int64_t n1, int64_t n2);

/* Gamma row of head h (Dv floats) of a gamma operand into buf, or NULL when absent. */
const float *attn_cpu_ratt_gamma(const attn_operand *g, int64_t h, int64_t dv, float *buf);

/* y = GroupRMSNorm(swa; gs) + GroupRMSNorm(rla; gr) over n values (swa NULL: that term is
 * absent; gs/gr NULL: gamma 1). Sums of squares in double. y may be neither input. */
void attn_cpu_ratt_norm_sum(const float *swa, const float *gs, const float *rla,
                            const float *gr, int64_t n, double eps, float *y);

/* The decode step's state products in one pass over the state st [df][dv] (rows ld apart):
 * st += fk^T v (one key's features times its values; skipped when fk is NULL), then
 * o[r] = fq[r] st for nq rows of df features (fq rows df apart, o rows dv apart). */
void attn_cpu_ratt_fold_read(const float *fk, const float *v, const float *fq, int64_t nq,
                             float *st, int64_t ld, int64_t df, int64_t dv, float *o);

/* The decode step's rotation table as its score kernels read it: row dist (2 np floats,
 * np = Dk / 2) rotates a key by -dist; interleaved layout: cos and -sin of pair i at 2i and
 * 2i + 1 (the key's own lanes); half-split: cos at i, -sin at np + i. Key j of a kernel call
 * sits at distance d0 - j, wrapped into [0, period) (the ring's slots). */
typedef struct attn_cpu_ratt_rot {
    const float *tab;
    int64_t np;
    int half;
    int64_t d0, period;
} attn_cpu_ratt_rot;

#if ATTN_CPU_HAVE_AVX2_KERNELS
/* s[r][j] = scale * q[r] . (key j rotated by its table row) for nq f32 query rows (contiguous,
 * length d) and nk keys read in place; v: the same keys' V rows (dv elements), requested from
 * memory for the P V product that follows. AVX2 and AVX-512 instances. */
void attn_cpu_ratt_dec_qk_avx2(const float *q, int64_t nq, const attn_cpu_rows *k, int64_t nk,
                               int64_t d, float scale, float *s, int64_t lds,
                               const attn_cpu_rows *v, int64_t dv, const attn_cpu_ratt_rot *rot);
void attn_cpu_ratt_dec_qk_avx512(const float *q, int64_t nq, const attn_cpu_rows *k,
                                 int64_t nk, int64_t d, float scale, float *s, int64_t lds,
                                 const attn_cpu_rows *v, int64_t dv,
                                 const attn_cpu_ratt_rot *rot);
#endif

#endif /* ATTN_CPU_RATTENTION_H_ */
