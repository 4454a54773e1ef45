/* cpu_linear.h - linear attention on the cpu backend: the chunked forward (cpu_linear.c, BLIS
 * products inside a chunk and for the state across chunks) and the float feature maps
 * (cpu_linear_feature.c), and the chunked backward (cpu_linear_backward.c). rattention's
 * residual branch calls the same kernel with a problem whose shift is its window + 1. */
#ifndef ATTN_CPU_LINEAR_H_
#define ATTN_CPU_LINEAR_H_

#include "attn_linear_problem.h"
#include "cpu_internal.h"

/* Default chunk length (tuned with `attn bench --op linear`, S4096 D128 H8). */
#define ATTN_CPU_LINEAR_CHUNK 128

/* The chunked forward of a validated problem (any shift) on `threads` OpenMP threads, with
 * chunks of `chunk` positions. Work items are (batch, KV head, block of value columns); each
 * keeps its f32 state block across the chunks. */
attn_status attn_cpu_linear_chunked(const attn_linear_problem *p, int threads, int64_t chunk);
/* Value-column blocks per (batch, KV head) the kernel uses (so that every thread has work). */
int64_t attn_cpu_linear_col_blocks(const attn_linear_problem *p, int threads);

/* The shape of a masked product O += A V (cpu_linear_tril.c): rows x cols of O, keys columns
 * of A; row x sees the keys c <= x % period + diag (period: the rows of one head when the rows
 * of several heads are stacked). */
typedef struct attn_cpu_tril {
    int64_t rows, cols, keys, period, diag;
} attn_cpu_tril;
/* O = A V + beta O (A: rows x keys, row stride lda, zero where hidden; V: keys x cols,
 * contiguous rows of stride ldv) in which hidden keys never contribute, also with Inf/NaN in
 * their V rows (a visible key's non-finite values propagate). vfix: keys x cols floats of
 * scratch, used only when V holds a non-finite value. */
void attn_cpu_tril_pv(const attn_cpu_tril *t, const float *a, int64_t lda, const float *v,
                      int64_t ldv, float beta, float *o, int64_t ldo, float *vfix);

/* O = A^T V + beta O for the same masked A (rows x keys): O keys x cols, V rows x cols (row
 * stride ldv), in which a row of V holding Inf/NaN reaches only the keys that row sees (the
 * backward's products over the queries of a chunk). vfix: rows x cols floats of scratch, used
 * only when V holds a non-finite value. */
void attn_cpu_tril_tpv(const attn_cpu_tril *t, const float *a, int64_t lda, const float *v,
                       int64_t ldv, float beta, float *o, int64_t ldo, float *vfix);

/* Rows [r0, r0+n) of the plane (b, h) of o (cols wide) as a matrix with unit-stride rows: the
 * operand in place when it is f32 with such rows, else converted into buf (n x cols). */
attn_cpu_mat attn_cpu_linear_rows(const attn_operand *o, int64_t b, int64_t h, int64_t r0,
                                  int64_t n, int64_t cols, float *buf);

/* y[0..Df) = phi(x[0..dk)) in float (x and y distinct). */
void attn_cpu_linear_phi(attn_linear_feature f, const float *x, int64_t dk, float *y);
/* dx[0..dk) = J_phi(x)^T dy (dy: Df values) in float (cpu_linear_feature_vjp.c); tmp holds
 * Df floats. */
void attn_cpu_linear_phi_vjp(attn_linear_feature f, const float *x, int64_t dk,
                             const float *dy, float *tmp, float *dx);

/* Default chunk length of the backward (`attn bench --op linear --backward`, S4096 D128 H8:
 * 128 beat 64 and 32). */
#define ATTN_CPU_LINEAR_BWD_CHUNK 128

/* The chunked backward of a validated backward problem (p->backward, any shift) on `threads`
 * OpenMP threads (cpu_linear_backward.c): work items (batch, KV head), each owning its
 * gradients, so the bits do not depend on the thread count. */
attn_status attn_cpu_linear_backward(const attn_linear_problem *p, int threads, int64_t chunk);
/* Scratch floats of one backward thread with chunks of `chunk` positions into *n: 1, or 0
 * when the count overflows. */
int attn_cpu_linear_backward_floats(const attn_linear_problem *p, int64_t chunk, int64_t *n);

#endif /* ATTN_CPU_LINEAR_H_ */
