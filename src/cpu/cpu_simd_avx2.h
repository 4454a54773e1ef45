/* cpu_simd_avx2.h - the vector vocabulary of the register-blocked decode kernels
 * (cpu_decode_rows_simd.h and the kernels written on it) on 8-lane AVX2 vectors, AVX2+FMA+F16C
 * CPUs. Included by each kernel file's AVX2 instance before its kernel header. */
#include <immintrin.h>

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
/* the pairs' two lanes swapped; even lanes copied to odd, odd to even; a*b -+ c alternating */
#define V_SWAP_PAIRS(x) _mm256_permute_ps(x, 0xB1)
#define V_DUP_EVEN(x) _mm256_moveldup_ps(x)
#define V_DUP_ODD(x) _mm256_movehdup_ps(x)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_FMADDSUB(a, b, c) _mm256_fmaddsub_ps(a, b, c)
#define V_FMSUB(a, b, c) _mm256_fmsub_ps(a, b, c)
