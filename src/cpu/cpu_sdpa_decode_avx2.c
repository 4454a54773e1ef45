/* cpu_sdpa_decode_avx2.c - the decode kernels of cpu_sdpa_decode_simd.h on 8-lane AVX2 vectors
 * (AVX2+FMA+F16C CPUs). On other architectures or compilers they are absent and the portable
 * path is used. */
#include "cpu_sdpa.h"
#include "cpu_math.h"

#if ATTN_CPU_HAVE_AVX2_KERNELS

#define SIMD_TARGET "avx2,fma,f16c"
#define SIMD_NAME(f) f##_avx2
#define VW 8
#define VEC __m256
#define V_ZERO() _mm256_setzero_ps()
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_LOADH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define V_LOADBF(p)                                                                          \
    _mm256_castsi256_ps(                                                                     \
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_BCAST(p) _mm256_broadcast_ss(p)
#define V_STOREU(p, x) _mm256_storeu_ps(p, x)
#define V_TO8(x) (x)

#include "cpu_sdpa_decode_simd.h"

#endif /* ATTN_CPU_HAVE_AVX2_KERNELS */
