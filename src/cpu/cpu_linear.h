/* cpu_linear.h - linear attention on the cpu backend: the chunked forward (cpu_linear.c, BLIS
 * products inside a chunk and for the state across chunks) and the float feature maps
 * (cpu_linear_feature.c). rattention's residual branch calls the same kernel with a problem
 * whose shift is its window + 1. */
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

/* y[0..Df) = phi(x[0..dk)) in float (x and y distinct). */
void attn_cpu_linear_phi(attn_linear_feature f, const float *x, int64_t dk, float *y);

#endif /* ATTN_CPU_LINEAR_H_ */
