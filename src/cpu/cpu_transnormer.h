/* cpu_transnormer.h - TransNormer in the CPU backend: NormAttention as linear attention's
 * chunked kernel (cpu_transnormer_norm.c), DiagAttention as per-block products
 * (cpu_transnormer_diag.c), and the helpers they share with the dispatch and the SimpleRMSNorm
 * store (cpu_transnormer_impl.c). Both attentions write the pre-norm result y in f32; the store
 * normalises each token and rounds it into out. */
#ifndef ATTN_CPU_TRANSNORMER_H_
#define ATTN_CPU_TRANSNORMER_H_

#include "attn_transnormer_problem.h"
#include "cpu_internal.h"

#include <stdint.h>

/* Chunk of the NormAttention chunked form: intra-chunk masked products, inter-chunk state. */
#define ATTN_CPU_TN_CHUNK 128
/* Query rows per DiagAttention work item (a block is split into tiles of this many rows). */
#define ATTN_CPU_TN_ROWS 64

/* The pre-norm result y: f32 rows of Dv values, element (b, i, h, d) at
 * p[b * sb + i * ss + h * sh + d]. out itself when it is f32 with unit-stride rows (the norm
 * then runs in place), else a scratch [B][S][Hq][Dv]. */
typedef struct attn_cpu_tn_y {
    float *p;
    int64_t sb, ss, sh;
} attn_cpu_tn_y;

static inline float *attn_cpu_tn_row(const attn_cpu_tn_y *y, int64_t b, int64_t i, int64_t h)
{
    return y->p + b * y->sb + i * y->ss + h * y->sh;
}

/* NormAttention into y; ATTN_ERR_OUT_OF_MEMORY (before anything is written) when scratch
 * cannot be allocated. */
attn_status attn_cpu_transnormer_norm(const attn_transnormer_problem *p, int threads,
                                      int64_t chunk, const attn_cpu_tn_y *y);
/* DiagAttention into y; the same error rule. */
attn_status attn_cpu_transnormer_diag(const attn_transnormer_problem *p, int threads,
                                      int64_t rows, const attn_cpu_tn_y *y);

/* malloc'd room for n1 * n2 * n3 floats (NULL on overflow or failure). */
float *attn_cpu_tn_alloc(int64_t n1, int64_t n2, int64_t n3);

#endif /* ATTN_CPU_TRANSNORMER_H_ */
