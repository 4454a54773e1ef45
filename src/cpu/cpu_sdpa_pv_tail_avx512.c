/* cpu_sdpa_pv_tail_avx512.c - the last, partial value panel of O += P V in the packed tiles on
 * AVX-512F. The micro-kernel computes lk value dims per call (skx: 12), so a head dim that is
 * not a multiple of lk pays for a whole panel: D64 is 5 panels and 4 dims, 72 dims of work for
 * 64 (a ninth of the P V product, a twentieth of the forward). This loop computes only the
 * remaining dims: per key, one load of the probabilities of each 16 query lanes and one
 * broadcast per dim, accumulators in registers across the keys. */
#include "cpu_sdpa.h"

#if ATTN_CPU_HAVE_AVX2_KERNELS

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f")))
#define MAX_DIMS 16

/* The loop for a constant number of dims nd and of 16-lane query groups ng (1 or 2) per pass
 * (inlined per case, so the accumulators are registers, the loops unroll, and each broadcast
 * of a V value serves ng groups). */
TARGET static inline __attribute__((always_inline)) void tail_dims(const float *s, int64_t nk,
                                                                  int64_t lq, const float *v,
                                                                  int64_t lk, float *o,
                                                                  const int nd, const int ng)
{
    for (int64_t g = 0; g < lq; g += 16 * ng) {
        __m512 acc[MAX_DIMS][2];
#pragma GCC unroll 16
        for (int d = 0; d < nd; d++)
#pragma GCC unroll 2
            for (int e = 0; e < ng; e++)
                acc[d][e] = _mm512_loadu_ps(o + d * lq + g + 16 * e);
        for (int64_t j = 0; j < nk; j++) {
            __m512 p[2];
#pragma GCC unroll 2
            for (int e = 0; e < ng; e++)
                p[e] = _mm512_load_ps(s + j * lq + g + 16 * e);
#pragma GCC unroll 16
            for (int d = 0; d < nd; d++) {
                const __m512 x = _mm512_set1_ps(v[j * lk + d]);
#pragma GCC unroll 2
                for (int e = 0; e < ng; e++)
                    acc[d][e] = _mm512_fmadd_ps(p[e], x, acc[d][e]);
            }
        }
#pragma GCC unroll 16
        for (int d = 0; d < nd; d++)
#pragma GCC unroll 2
            for (int e = 0; e < ng; e++)
                _mm512_storeu_ps(o + d * lq + g + 16 * e, acc[d][e]);
    }
}

/* o[d * lq + q] += sum_j s[j * lq + q] * v[j * lk + d] for d < nd (< 16), q < lq (a multiple of
 * 16), j < nk; every term is added, as the micro-kernel does. Two query groups per pass up to
 * 11 dims (22 accumulators), one beyond. */
TARGET void attn_cpu_pv_tail_avx512(const float *s, int64_t nk, int64_t lq, const float *v,
                                    int64_t lk, int64_t nd, float *o)
{
    const int two = lq % 32 == 0;
    switch (nd) {
#define TAIL_CASE(n)                                                                        \
    case n:                                                                                 \
        if (two && n <= 11)                                                                 \
            tail_dims(s, nk, lq, v, lk, o, n, 2);                                           \
        else                                                                                \
            tail_dims(s, nk, lq, v, lk, o, n, 1);                                           \
        break;
        TAIL_CASE(1) TAIL_CASE(2) TAIL_CASE(3) TAIL_CASE(4) TAIL_CASE(5) TAIL_CASE(6)
        TAIL_CASE(7) TAIL_CASE(8) TAIL_CASE(9) TAIL_CASE(10) TAIL_CASE(11) TAIL_CASE(12)
        TAIL_CASE(13) TAIL_CASE(14) TAIL_CASE(15)
#undef TAIL_CASE
    default: break;
    }
}

#endif /* ATTN_CPU_HAVE_AVX2_KERNELS */
