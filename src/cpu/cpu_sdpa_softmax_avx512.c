/* cpu_sdpa_softmax_avx512.c - the online-softmax step of a score panel (attn_cpu_softmax_panel)
 * on AVX-512 vectors, for CPUs that have AVX-512F: one vector is one 16-lane query group of a
 * key row. It is the packed forward's hottest loop after the two products; written with
 * intrinsics because the portable loop pays for semantics the instruction set gives for free:
 * VMAXPS skips a NaN in its first operand (the portable loop maps floats to ordered integers),
 * VRNDSCALEPS rounds without the shifter, VSCALEFPS applies 2^n with one rounding into the
 * subnormal range and overflows to +inf (the portable exp splits 2^n and masks the range). */
#include "cpu_sdpa.h"

#if ATTN_CPU_HAVE_AVX2_KERNELS

#include <immintrin.h>
#include <math.h>

#define TARGET __attribute__((target("avx512f,fma")))

/* exp(x) for every lane: the Cody-Waite split and the degree-5 polynomial of attn_cpu_expf
 * (with fused multiply-adds), 2^n by VSCALEFPS. x is clamped to [-104, 89] first, which keeps
 * NaN (VMAXPS/VMINPS return their second operand when either is NaN) and gives exp(-inf) = 0,
 * exp(+inf) = +inf and 0 below half the smallest subnormal, as attn_cpu_expf. */
TARGET static inline __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    return _mm512_scalef_ps(_mm512_add_ps(p, _mm512_set1_ps(1.0f)), n);
}

/* Lane max over nk key rows of the group at s (row stride lq), NaN skipped; -inf if none. */
TARGET static inline __m512 group_max(const float *s, int64_t nk, int64_t lq)
{
    __m512 a = _mm512_set1_ps(-INFINITY), b = a;
    int64_t j = 0;
    for (; j + 2 <= nk; j += 2) {
        a = _mm512_max_ps(_mm512_load_ps(s + j * lq), a);
        b = _mm512_max_ps(_mm512_load_ps(s + (j + 1) * lq), b);
    }
    if (j < nk)
        a = _mm512_max_ps(_mm512_load_ps(s + j * lq), a);
    return _mm512_max_ps(a, b);
}

/* p = exp(s - mu) in place, -0 where s is -inf (a hidden key); returns the lane sums. */
TARGET static inline __m512 group_exp(float *s, int64_t nk, int64_t lq, __m512 mu)
{
    const __m512i neg_inf = _mm512_set1_epi32((int)0xff800000u);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512 sum0 = _mm512_setzero_ps(), sum1 = sum0;
    for (int64_t j = 0; j < nk; j++) {
        __m512 x = _mm512_load_ps(s + j * lq);
        __m512 e = exp16(_mm512_sub_ps(x, mu));
        __mmask16 hidden = _mm512_cmpeq_epi32_mask(_mm512_castps_si512(x), neg_inf);
        __m512i bits = _mm512_castps_si512(e);
        _mm512_store_ps(s + j * lq, _mm512_castsi512_ps(_mm512_mask_or_epi32(bits, hidden,
                                                                               bits, sign)));
        if (j & 1)
            sum1 = _mm512_add_ps(sum1, e);
        else
            sum0 = _mm512_add_ps(sum0, e);
    }
    return _mm512_add_ps(sum0, sum1);
}

TARGET void attn_cpu_softmax_panel_avx512(float *s, int64_t nk, int64_t lq, float *m, float *l,
                                          float *alpha)
{
    for (int64_t g = 0; g < lq; g += 16) {
        __m512 m_old = _mm512_loadu_ps(m + g);
        __m512 m_new = _mm512_max_ps(group_max(s + g, nk, lq), m_old);
        /* With nothing visible yet, subtract 0 so exp(-inf) gives 0 instead of exp(NaN). */
        __mmask16 none = _mm512_cmp_ps_mask(m_new, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
        __m512 mu = _mm512_mask_blend_ps(none, m_new, _mm512_setzero_ps());
        __m512 a = exp16(_mm512_sub_ps(m_old, mu));
        __m512 sum = group_exp(s + g, nk, lq, mu);
        _mm512_storeu_ps(alpha + g, a);
        _mm512_storeu_ps(m + g, m_new);
        _mm512_storeu_ps(l + g, _mm512_fmadd_ps(_mm512_loadu_ps(l + g), a, sum));
    }
}

#endif /* ATTN_CPU_HAVE_AVX2_KERNELS */
