/* cpu_decode_rows_simd.h - what the register-blocked decode kernels (cpu_sdpa_decode_simd.h,
 * cpu_rattention_decode_simd.h) share, for any vector width: loads of K/V rows in place in
 * their storage dtype, the reduction of 8 accumulators and the software prefetch of the score
 * loop. Included after a vector vocabulary (cpu_simd_avx2.h, cpu_simd_avx512.h) that defines:
 *   SIMD_TARGET   the target attribute string      VW           lanes of VEC
 *   VEC           the f32 vector type              V_ZERO()     all zeros
 *   V_LOADU(p)    VW floats                        V_LOADH(p)   VW f16 (F16C) as floats
 *   V_LOADBF(p)   VW bf16 as floats                V_FMA(a,b,c) a*b+c
 *   V_BCAST(p)    *p in every lane                 V_STOREU(p,x)
 *   V_TO8(x)      the VW lanes folded to 8 (__m256): lane i is the sum of lanes i, i+8, ...
 *   V_SWAP_PAIRS(x), V_DUP_EVEN(x), V_DUP_ODD(x)   lanes (2i, 2i+1) swapped / both 2i / both 2i+1
 *   V_MUL(a,b), V_FMADDSUB(a,b,c), V_FMSUB(a,b,c)  a*b; a*b-c in even lanes, +c in odd; a*b-c
 *   SIMD_NAME(f)  f with the variant's suffix
 */
#ifndef ATTN_CPU_DECODE_ROWS_SIMD_H_
#define ATTN_CPU_DECODE_ROWS_SIMD_H_

#include <immintrin.h>

#define TARGET __attribute__((target(SIMD_TARGET)))
#define INLINE static inline __attribute__((always_inline)) TARGET
#define RB 4 /* query rows per register block */

/* VW consecutive elements of a row in dtype t (a compile-time constant after inlining). */
INLINE VEC loadv(const void *row, int64_t e, attn_dtype t)
{
    if (t == ATTN_F32)
        return V_LOADU((const float *)row + e);
    if (t == ATTN_F16)
        return V_LOADH((const uint16_t *)row + e);
    return V_LOADBF((const uint16_t *)row + e);
}

INLINE float load1(const void *row, int64_t e, attn_dtype t)
{
    if (t == ATTN_F32)
        return ((const float *)row)[e];
    uint16_t h = ((const uint16_t *)row)[e];
    return t == ATTN_F16 ? attn_cpu_f16_to_f32(h) : attn_cpu_bf16_to_f32(h);
}

/* Row j of m; t is m->dtype as a compile-time constant (so the row step is one add). */
INLINE const void *row_at(const attn_cpu_rows *m, int64_t j, attn_dtype t)
{
    return (const char *)m->p + j * m->ld * (t == ATTN_F32 ? 4 : 2);
}

/* The 8 sums of a[0..7] (one per accumulator), in order. */
INLINE __m256 reduce8(const VEC a[8])
{
    __m256 t0 = _mm256_hadd_ps(V_TO8(a[0]), V_TO8(a[1]));
    __m256 t1 = _mm256_hadd_ps(V_TO8(a[2]), V_TO8(a[3]));
    __m256 t2 = _mm256_hadd_ps(V_TO8(a[4]), V_TO8(a[5]));
    __m256 t3 = _mm256_hadd_ps(V_TO8(a[6]), V_TO8(a[7]));
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* Software prefetch for the score loop: K rows PF_KEYS keys ahead and the V rows of the keys
 * being scored (the P V product of the tile reads them next). The rows of one head are a head
 * stride apart, so a 4 KiB page holds few of them and the hardware prefetchers, which stop at
 * page boundaries, cannot run ahead; in a process whose memory had been recycled (`attn bench`
 * after the forward shapes) the rows ran at 2/3 of the speed without these requests. */
#ifndef PF_KEYS
#define PF_KEYS 16
#endif

typedef struct pf_plan {
    const char *k, *v;      /* first row of each */
    int64_t kstep, vstep;   /* bytes between rows */
    int64_t kbytes, vbytes; /* bytes per row */
    int64_t nk;
} pf_plan;

INLINE void prefetch_row(const char *row, int64_t bytes)
{
    for (int64_t off = 0; off < bytes; off += 64)
        _mm_prefetch(row + off, _MM_HINT_T0);
}

/* Requests for keys j and j + 1 of the score loop. */
INLINE void prefetch_pair(const pf_plan *pf, int64_t j)
{
    for (int64_t x = j; x < j + 2; x++) {
        if (x + PF_KEYS < pf->nk)
            prefetch_row(pf->k + (x + PF_KEYS) * pf->kstep, pf->kbytes);
        prefetch_row(pf->v + x * pf->vstep, pf->vbytes);
    }
}

#endif /* ATTN_CPU_DECODE_ROWS_SIMD_H_ */
