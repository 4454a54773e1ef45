/* cpu_bench.h - the CPU backend's BLIS calls for code outside the backend: `attn bench`'s
 * same-run reference rate and the model's dense layers (so neither depends on the backend's
 * internals). */
#ifndef ATTN_CPU_BENCH_H_
#define ATTN_CPU_BENCH_H_

#include <stdint.h>

#include "attn/attn_core.h"

/* C[m x n] = A[m x k] * B[k x n] (row-major, contiguous) with BLIS's own threading (nt
 * threads), after the backend's BLIS set-up (kernel choice); does nothing when that set-up
 * refused BLIS (then the cpu backend does not open either). */
void attn_cpu_sgemm_threads(int nt, int64_t m, int64_t n, int64_t k, const float *a,
                            const float *b, float *c);

/* 1 when the backend's BLIS set-up succeeded (kernel choice done, BLIS usable), else 0. */
int attn_cpu_blis_usable(void);

/* C = alpha A B + beta C with any strides (a transpose is a swap of row and column stride),
 * BLIS-threaded on nt threads after the backend's BLIS set-up; the set-up's status when BLIS
 * is unusable (nothing is computed then). The model's dense layers use it. */
attn_status attn_cpu_sgemm_general(int nt, int64_t m, int64_t n, int64_t k, float alpha,
                                   const float *a, int64_t rsa, int64_t csa, const float *b,
                                   int64_t rsb, int64_t csb, float beta, float *c, int64_t rsc);

#endif /* ATTN_CPU_BENCH_H_ */
