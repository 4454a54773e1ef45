/* cpu_sdpa_decode_avx512.c - the decode kernels of cpu_sdpa_decode_simd.h on 16-lane AVX-512
 * vectors (AVX-512F CPUs with F16C). Half the instructions of the AVX2 kernels per row; on
 * CPUs with two 512-bit FMA units also twice the arithmetic rate. */
#include "cpu_sdpa.h"
#include "cpu_math.h"

#if ATTN_CPU_HAVE_AVX2_KERNELS

#define SIMD_TARGET "avx512f,avx2,fma,f16c"
#define SIMD_NAME(f) f##_avx512
#define VW 16
#define VEC __m512
#define V_ZERO() _mm512_setzero_ps()
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_LOADH(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define V_LOADBF(p)                                                                          \
    _mm512_castsi512_ps(                                                                     \
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_BCAST(p) _mm512_set1_ps(*(p))
#define V_STOREU(p, x) _mm512_storeu_ps(p, x)
/* lanes i and i + 8 added: the 512-bit accumulator as the 256-bit one reduce8 takes */
#define V_TO8(x)                                                                             \
    _mm256_add_ps(_mm512_castps512_ps256(x),                                                 \
                  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)))

#include "cpu_sdpa_decode_simd.h"

#endif /* ATTN_CPU_HAVE_AVX2_KERNELS */
