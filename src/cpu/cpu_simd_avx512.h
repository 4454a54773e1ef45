/* cpu_simd_avx512.h - the vector vocabulary of the register-blocked decode kernels
 * (cpu_decode_rows_simd.h and the kernels written on it) on 16-lane AVX-512 vectors, AVX-512F
 * CPUs with F16C. Included by each kernel file's AVX-512 instance before its kernel header. */
#include <immintrin.h>

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
/* the pairs' two lanes swapped; even lanes copied to odd, odd to even; a*b -+ c alternating */
#define V_SWAP_PAIRS(x) _mm512_permute_ps(x, 0xB1)
#define V_DUP_EVEN(x) _mm512_moveldup_ps(x)
#define V_DUP_ODD(x) _mm512_movehdup_ps(x)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_FMADDSUB(a, b, c) _mm512_fmaddsub_ps(a, b, c)
#define V_FMSUB(a, b, c) _mm512_fmsub_ps(a, b, c)
