/* cpu_transnormer.h - TransNormer in the CPU backend: NormAttention in the chunked form
 * (cpu_transnormer_norm.c), DiagAttention as per-block products (cpu_transnormer_diag.c), and
 * the helpers they share with the dispatch and the SimpleRMSNorm store
 * (cpu_transnormer_impl.c). Both attentions write the pre-norm result y as f32
 * [B][S][Hq][Dv]; the store normalises each token and rounds it into out. */
#ifndef ATTN_CPU_TRANSNORMER_H_
#define ATTN_CPU_TRANSNORMER_H_

#include "attn_transnormer_problem.h"
#include "cpu_internal.h"

#include <stdint.h>

/* Chunk of the NormAttention chunked form: intra-chunk masked products, inter-chunk state. */
#define ATTN_CPU_TN_CHUNK 128
/* Query rows per DiagAttention work item (a block is split into tiles of this many rows). */
#define ATTN_CPU_TN_ROWS 64

/* NormAttention into y; ATTN_ERR_OUT_OF_MEMORY when scratch cannot be allocated. */
attn_status attn_cpu_transnormer_norm(const attn_transnormer_problem *p, int threads,
                                      int64_t chunk, float *y);
/* DiagAttention into y. */
attn_status attn_cpu_transnormer_diag(const attn_transnormer_problem *p, int threads,
                                      int64_t rows, float *y);

/* Rows [r0, r0+n) of the plane (b, h) of q or k as f32 (n x Dk, contiguous), with NormAttention's
 * feature map applied. */
void attn_cpu_tn_load_phi(const attn_transnormer_problem *p, const attn_operand *o, int64_t b,
                          int64_t h, int64_t r0, int64_t n, float *dst);
/* malloc'd room for n1 * n2 * n3 floats (NULL on overflow or failure). */
float *attn_cpu_tn_alloc(int64_t n1, int64_t n2, int64_t n3);

#endif /* ATTN_CPU_TRANSNORMER_H_ */
