/* cpu_bench.h - the one CPU-backend helper `attn bench` uses for its same-run reference rate
 * (a tools-facing internal header, so the tool does not depend on the backend's internals). */
#ifndef ATTN_CPU_BENCH_H_
#define ATTN_CPU_BENCH_H_

#include <stdint.h>

/* C[m x n] = A[m x k] * B[k x n] (row-major, contiguous) with BLIS's own threading (nt
 * threads), after the backend's BLIS set-up (kernel choice); does nothing when that set-up
 * refused BLIS (then the cpu backend does not open either). */
void attn_cpu_sgemm_threads(int nt, int64_t m, int64_t n, int64_t k, const float *a,
                            const float *b, float *c);

#endif /* ATTN_CPU_BENCH_H_ */
