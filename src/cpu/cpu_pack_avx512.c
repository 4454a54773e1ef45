/* cpu_pack_avx512.c - the transposition at the heart of attn_cpu_pack_across (rows of a plane
 * into a panel that stores each column's lanes together) as 16 x 16 register transposes on
 * AVX-512F CPUs. The portable loop moves one float per load and store with a stride on one
 * side; packing K and Q is then a visible part of attention over short key ranges (sliding
 * windows). The result is the same bits: data is only moved. */
#include "cpu_internal.h"

#if defined(__GNUC__) && defined(__x86_64__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f")))

/* r[k] (16 rows of 16) becomes its transpose: r[c] lane i = old r[i] lane c. */
TARGET static void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int k = 0; k < 16; k += 2) { /* per 128-bit block: (a0 b0 a1 b1), (a2 b2 a3 b3) */
        t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 16; k += 4) { /* r[k + e], block j: rows k..k+3 of column 4j + e */
        __m512d a = _mm512_castps_pd(t[k]), b = _mm512_castps_pd(t[k + 1]);
        __m512d c = _mm512_castps_pd(t[k + 2]), d = _mm512_castps_pd(t[k + 3]);
        r[k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int e = 0; e < 4; e++) { /* blocks (0 2) and (1 3) of row groups 0,1 and 2,3 */
        t[e] = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x88);
        t[4 + e] = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xdd);
        t[8 + e] = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x88);
        t[12 + e] = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xdd);
    }
    for (int e = 0; e < 4; e++) { /* column 4j + e: block j of every row group */
        r[e] = _mm512_shuffle_f32x4(t[e], t[8 + e], 0x88);
        r[8 + e] = _mm512_shuffle_f32x4(t[e], t[8 + e], 0xdd);
        r[4 + e] = _mm512_shuffle_f32x4(t[4 + e], t[12 + e], 0x88);
        r[12 + e] = _mm512_shuffle_f32x4(t[4 + e], t[12 + e], 0xdd);
    }
}

TARGET void attn_cpu_transpose_avx512(const float *x, int64_t ld, int64_t np, int64_t cols,
                                      int64_t lanes, float *panel)
{
    for (int64_t r0 = 0; r0 < lanes; r0 += 16) {
        int64_t nr = np - r0 < 0 ? 0 : np - r0 > 16 ? 16 : np - r0;
        int64_t nl = lanes - r0 < 16 ? lanes - r0 : 16;
        __mmask16 store = (__mmask16)((1u << nl) - 1u);
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            int64_t nc = cols - c0 < 16 ? cols - c0 : 16;
            __mmask16 load = (__mmask16)((1u << nc) - 1u);
            __m512 r[16];
            for (int64_t k = 0; k < 16; k++)
                r[k] = k < nr ? _mm512_maskz_loadu_ps(load, x + (r0 + k) * ld + c0)
                              : _mm512_setzero_ps();
            transpose16(r);
            for (int64_t k = 0; k < nc; k++)
                _mm512_mask_storeu_ps(panel + (c0 + k) * lanes + r0, store, r[k]);
        }
    }
}

#endif
