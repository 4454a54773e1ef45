/* cpu_sdpa_decode_simd.h - the decode path's register-blocked kernels, written once for any
 * vector width: the scores of up to 4 query rows against a tile of K rows, and O += P V over a
 * tile of V rows, both reading K and V in place in their storage dtype (f32, f16 through F16C,
 * bf16 by a shift). Included by cpu_sdpa_decode_avx2.c and cpu_sdpa_decode_avx512.c after the
 * vector vocabulary (cpu_simd_avx2.h, cpu_simd_avx512.h). Each instance is compiled with its
 * target attribute (not the file's baseline), so the library runs on any x86-64 CPU;
 * attn_cpu_simd_level() picks one at run time. */
#include "cpu_decode_rows_simd.h"

/* Scores of rows q[0..nr) (nr <= RB, f32, row stride d) against keys j0 and j0 + 1 (kn = 1 or
 * 2 keys): accumulator a[2r + c] is row r x key c, VW lanes over the dimension, kept in
 * registers over the whole row and reduced once; the d % VW tail is added after. */
INLINE void qk_pair(const float *q, int nr, const attn_cpu_rows *k, int64_t j0, int kn,
                    int64_t d, float scale, float *s, int64_t lds, attn_dtype t)
{
    const void *k0 = row_at(k, j0, t), *k1 = row_at(k, j0 + kn - 1, t);
    VEC a[8];
    for (int x = 0; x < 8; x++)
        a[x] = V_ZERO();
    int64_t e = 0;
    for (; e + VW <= d; e += VW) {
        VEC x0 = loadv(k0, e, t), x1 = loadv(k1, e, t);
        for (int r = 0; r < nr; r++) {
            VEC qv = V_LOADU(q + r * d + e);
            /* Keep qv in a register: GCC would otherwise fold the load into both FMAs and
             * load it twice, which makes the loop load-bound. */
            __asm__("" : "+v"(qv));
            a[2 * r] = V_FMA(qv, x0, a[2 * r]);
            a[2 * r + 1] = V_FMA(qv, x1, a[2 * r + 1]);
        }
    }
    __m256 sums = reduce8(a);
    if (e == d && kn == 2) { /* no tail: the pairs (row r: keys j0, j0 + 1) go out as they are */
        __m256 sc = _mm256_mul_ps(sums, _mm256_set1_ps(scale));
        __m128 lo = _mm256_castps256_ps128(sc), hi = _mm256_extractf128_ps(sc, 1);
        float *row = s + j0;
        for (int r = 0; r < nr; r++, row += lds) {
            __m128 h = r < 2 ? lo : hi;
            if (r % 2 == 0)
                _mm_storel_pi((__m64 *)row, h);
            else
                _mm_storeh_pi((__m64 *)row, h);
        }
        return;
    }
    float sum[8];
    _mm256_storeu_ps(sum, sums);
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < kn; c++) {
            const void *kr = c ? k1 : k0;
            float tail = 0.0f;
            for (int64_t f = e; f < d; f++)
                tail += q[r * d + f] * load1(kr, f, t);
            s[r * lds + j0 + c] = scale * (sum[2 * r + c] + tail);
        }
}

INLINE void qk_rows(const float *q, int nr, const attn_cpu_rows *k, int64_t nk, int64_t d,
                    float scale, float *s, int64_t lds, attn_dtype t, const pf_plan *pf)
{
    int64_t j = 0;
    for (; j + 2 <= nk; j += 2) {
        if (pf)
            prefetch_pair(pf, j);
        qk_pair(q, nr, k, j, 2, d, scale, s, lds, t);
    }
    if (j < nk)
        qk_pair(q, nr, k, j, 1, d, scale, s, lds, t);
}

/* Row blocks of RB with the block size a constant in each instance (so the loops over rows
 * unroll and the accumulators stay in registers); the first block issues the prefetches. */
INLINE void qk_dtype(const float *q, int64_t nq, const attn_cpu_rows *k, int64_t nk,
                     int64_t d, float scale, float *s, int64_t lds, attn_dtype t,
                     const pf_plan *pf)
{
    int64_t r = 0;
    for (; r + RB <= nq; r += RB, pf = NULL)
        qk_rows(q + r * d, RB, k, nk, d, scale, s + r * lds, lds, t, pf);
    switch (nq - r) {
    case 3: qk_rows(q + r * d, 3, k, nk, d, scale, s + r * lds, lds, t, pf); break;
    case 2: qk_rows(q + r * d, 2, k, nk, d, scale, s + r * lds, lds, t, pf); break;
    case 1: qk_rows(q + r * d, 1, k, nk, d, scale, s + r * lds, lds, t, pf); break;
    default: break;
    }
}

TARGET
void SIMD_NAME(attn_cpu_dec_qk)(const float *q, int64_t nq, const attn_cpu_rows *k, int64_t nk,
                                int64_t d, float scale, float *s, int64_t lds,
                                const attn_cpu_rows *v, int64_t dv)
{
    int64_t kes = (int64_t)attn_dtype_size(k->dtype), ves = (int64_t)attn_dtype_size(v->dtype);
    pf_plan pf = {k->p, v->p, k->ld * kes, v->ld * ves, d * kes, dv * ves, nk};
    switch (k->dtype) {
    case ATTN_F32: qk_dtype(q, nq, k, nk, d, scale, s, lds, ATTN_F32, &pf); break;
    case ATTN_F16: qk_dtype(q, nq, k, nk, d, scale, s, lds, ATTN_F16, &pf); break;
    default: qk_dtype(q, nq, k, nk, d, scale, s, lds, ATTN_BF16, &pf); break;
    }
}

/* o[r][e0 .. e0 + VW*nv) += sum_j p[r][j] v[j][...] for rows r < nr (nr <= RB, nv = 1 or 2
 * vectors): the RB x nv block of o stays in registers across the keys. */
INLINE void pv_cols(const float *p, int64_t ldp, int nr, const attn_cpu_rows *v, int64_t nk,
                    int64_t e0, int nv, float *o, int64_t ldo, attn_dtype t)
{
    VEC a[RB][2];
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nv; c++)
            a[r][c] = V_LOADU(o + r * ldo + e0 + VW * c);
    int64_t step = v->ld * (t == ATTN_F32 ? 4 : 2);
    const char *vr = v->p;
    for (int64_t j = 0; j < nk; j++, vr += step) {
        VEC x[2];
        for (int c = 0; c < nv; c++)
            x[c] = loadv(vr, e0 + VW * c, t);
        for (int r = 0; r < nr; r++) {
            VEC pb = V_BCAST(p + r * ldp + j);
            for (int c = 0; c < nv; c++)
                a[r][c] = V_FMA(pb, x[c], a[r][c]);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nv; c++)
            V_STOREU(o + r * ldo + e0 + VW * c, a[r][c]);
}

INLINE void pv_rows(const float *p, int64_t ldp, int nr, const attn_cpu_rows *v, int64_t nk,
                    int64_t dv, float *o, attn_dtype t)
{
    int64_t e = 0;
    for (; e + 2 * VW <= dv; e += 2 * VW)
        pv_cols(p, ldp, nr, v, nk, e, 2, o, dv, t);
    if (e + VW <= dv) {
        pv_cols(p, ldp, nr, v, nk, e, 1, o, dv, t);
        e += VW;
    }
    for (; e < dv; e++) /* dv % VW tail */
        for (int r = 0; r < nr; r++) {
            float acc = o[r * dv + e];
            for (int64_t j = 0; j < nk; j++)
                acc += p[r * ldp + j] * load1(row_at(v, j, t), e, t);
            o[r * dv + e] = acc;
        }
}

INLINE void pv_dtype(const float *p, int64_t ldp, int64_t nq, const attn_cpu_rows *v,
                     int64_t nk, int64_t dv, float *o, attn_dtype t)
{
    int64_t r = 0;
    for (; r + RB <= nq; r += RB)
        pv_rows(p + r * ldp, ldp, RB, v, nk, dv, o + r * dv, t);
    switch (nq - r) {
    case 3: pv_rows(p + r * ldp, ldp, 3, v, nk, dv, o + r * dv, t); break;
    case 2: pv_rows(p + r * ldp, ldp, 2, v, nk, dv, o + r * dv, t); break;
    case 1: pv_rows(p + r * ldp, ldp, 1, v, nk, dv, o + r * dv, t); break;
    default: break;
    }
}

TARGET
void SIMD_NAME(attn_cpu_dec_pv)(const float *p, int64_t ldp, int64_t nq,
                                const attn_cpu_rows *v, int64_t nk, int64_t dv, float *o)
{
    switch (v->dtype) {
    case ATTN_F32: pv_dtype(p, ldp, nq, v, nk, dv, o, ATTN_F32); break;
    case ATTN_F16: pv_dtype(p, ldp, nq, v, nk, dv, o, ATTN_F16); break;
    default: pv_dtype(p, ldp, nq, v, nk, dv, o, ATTN_BF16); break;
    }
}
