/* attn_bench_util.h - the pieces every `attn bench --op <stem>` shares: best-of timing of
 * calls made under the same machine load, the same-run BLIS sgemm rate, random f32 inputs, the
 * CPU's model name, the common options and the backend they open. Built with the cpu
 * backend only (the sgemm rate is its yardstick). */
#ifndef ATTN_BENCH_UTIL_H_
#define ATTN_BENCH_UTIL_H_

#include "attn/attn.h"

#include <stddef.h>
#include <stdint.h>

/* Per call, the best of `repeat` rounds; a round times n calls of each fn[k](ctx[k]) in turn
 * (after one warm-up call each), so that every variant sees the same machine load. best[k]:
 * seconds per call, or -1 when a call failed (fn returns nonzero). */
void attn_bench_best_times(int repeat, int n, int nf, int (*const *fn)(void *),
                           void *const *ctx, double *best);
/* The best of `repeat` times of fn(ctx), one call each after a warm-up call; -1 on failure. */
double attn_bench_best_time(int repeat, int (*fn)(void *), void *ctx);

/* The side of the square sgemm that serves as the same-run yardstick. */
#define ATTN_BENCH_SGEMM_N 2048
/* GFLOP/s of a BLIS-threaded sgemm ATTN_BENCH_SGEMM_N^3 on `threads` threads, the best of
 * `repeat` after a warm-up; -1 when out of memory. */
double attn_bench_sgemm_gflops(int threads, int repeat);

/* `bytes` bytes aligned to 64 (a cache line, as PyTorch and NumPy hand tensors over; rows
 * from malloc's 16-byte alignment split cache lines and ran the decode steps up to 1.5x
 * slower); free() releases them. NULL when out of memory. */
void *attn_bench_alloc(size_t bytes);
/* n floats uniform in [-1, 1) from counter stream `stream` (attn_bench_alloc; NULL when out
 * of memory). */
float *attn_bench_random_f32(int64_t n, uint64_t stream);

/* The CPU's model name (Linux /proc/cpuinfo), else "unknown CPU". */
void attn_bench_cpu_model(char *buf, size_t n);

/* The options every bench takes: --backend B, --options STR, --threads N, --repeat N (N in
 * 1..1024). */
typedef struct attn_bench_common {
    const char *backend; /* "cpu" by default */
    const char *options; /* backend options, or NULL */
    int threads;         /* the cpu backend's and the sgemm's (default: all) */
    int repeat;
} attn_bench_common;

/* One of the common options at argv[*i]: 1 consumed, 0 another option, -1 error (printed). */
int attn_bench_common_arg(int argc, char **argv, int *i, attn_bench_common *c);
/* One of the n size options names[k] at argv[*i] into *dst[k], in lo[k] .. 2^24 (lo NULL: all
 * 1): 1 consumed, 0 another option, -1 error (printed). */
int attn_bench_size_arg(int argc, char **argv, int *i, int n, const char *const *names,
                        int64_t *const *dst, const int64_t *lo);
/* Open the backend: cpu gets threads=N first (its own options may override it), another
 * backend its options as given; the option string used goes into opts ("" when none). 0, or
 * 2 after printing why it failed. */
int attn_bench_open(const attn_bench_common *c, char *opts, size_t n, attn_backend **be);

#endif /* ATTN_BENCH_UTIL_H_ */
