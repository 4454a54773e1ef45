/* cpu_rattention_decode_simd.h - the scores of RATTENTION's decode step with RoPE applied on
 * the way, written once for any vector width: up to 4 query rows against the ring's keys read
 * in place (f32, f16, bf16), each key rotated in registers by minus its distance (a row of the
 * step's rotation table, see attn_cpu_ratt_rot) right before its dot products, so the ring's
 * keys are read once and no rotated copy is stored. Included by cpu_rattention_decode_avx2.c
 * and cpu_rattention_decode_avx512.c after the vector vocabulary. */
#include "cpu_decode_rows_simd.h"

/* Element e of key row k rotated by table row tr (np pairs; the tails of the vector loops). */
INLINE float rot1(const void *k, const float *tr, int64_t e, int64_t np, int half, attn_dtype t)
{
    if (e >= 2 * np) /* odd Dk: the last element is not rotated */
        return load1(k, e, t);
    if (!half) {
        const int64_t i = e / 2;
        const float a = load1(k, 2 * i, t), c = load1(k, 2 * i + 1, t);
        return e % 2 == 0 ? a * tr[2 * i] - c * tr[2 * i + 1] : c * tr[2 * i] + a * tr[2 * i + 1];
    }
    if (e < np)
        return load1(k, e, t) * tr[e] - load1(k, e + np, t) * tr[np + e];
    return load1(k, e, t) * tr[e - np] + load1(k, e - np, t) * tr[e];
}

/* Interleaved pairs: lanes (2i, 2i + 1) of x rotated by (cos, -sin) in lanes (2i, 2i + 1) of
 * tv: x0 cos - x1 sin' ... with sin' = -sin, i.e. (x0 c - x1 s', x1 c + x0 s'). */
INLINE VEC rot_interleaved(VEC x, VEC tv)
{
    return V_FMADDSUB(x, V_DUP_EVEN(tv), V_MUL(V_SWAP_PAIRS(x), V_DUP_ODD(tv)));
}

/* Scores of rows q[0..nr) (nr <= RB) against keys k0 and k1 (kn = 1 or 2; k1 = k0 when 1)
 * rotated by table rows t0 and t1: accumulator a[2r + c] is row r x key c, reduced once; the
 * elements the vector loop leaves (Dk not a multiple of the width) are added after. */
INLINE void qk_rope_pair(const float *q, int nr, const void *k0, const void *k1,
                         const float *t0, const float *t1, int kn, int64_t d, int64_t np,
                         int half, float scale, float *s, int64_t lds, attn_dtype t)
{
    VEC a[8];
    for (int x = 0; x < 8; x++)
        a[x] = V_ZERO();
    int64_t ev = 0; /* interleaved: elements [0, ev); half-split: pairs [0, ev) */
    if (!half) {
        for (; ev + VW <= 2 * np; ev += VW) {
            VEC x0 = rot_interleaved(loadv(k0, ev, t), V_LOADU(t0 + ev));
            VEC x1 = rot_interleaved(loadv(k1, ev, t), V_LOADU(t1 + ev));
            for (int r = 0; r < nr; r++) {
                VEC qv = V_LOADU(q + r * d + ev);
                __asm__("" : "+v"(qv)); /* one load for both FMAs (see qk_pair) */
                a[2 * r] = V_FMA(qv, x0, a[2 * r]);
                a[2 * r + 1] = V_FMA(qv, x1, a[2 * r + 1]);
            }
        }
    } else {
        for (; ev + VW <= np; ev += VW) {
            VEC a0 = loadv(k0, ev, t), c0 = loadv(k0, np + ev, t);
            VEC a1 = loadv(k1, ev, t), c1 = loadv(k1, np + ev, t);
            VEC cs0 = V_LOADU(t0 + ev), sn0 = V_LOADU(t0 + np + ev);
            VEC cs1 = V_LOADU(t1 + ev), sn1 = V_LOADU(t1 + np + ev);
            VEC ya0 = V_FMSUB(a0, cs0, V_MUL(c0, sn0)), yc0 = V_FMA(c0, cs0, V_MUL(a0, sn0));
            VEC ya1 = V_FMSUB(a1, cs1, V_MUL(c1, sn1)), yc1 = V_FMA(c1, cs1, V_MUL(a1, sn1));
            for (int r = 0; r < nr; r++) {
                VEC qa = V_LOADU(q + r * d + ev), qc = V_LOADU(q + r * d + np + ev);
                __asm__("" : "+v"(qa), "+v"(qc));
                a[2 * r] = V_FMA(qc, yc0, V_FMA(qa, ya0, a[2 * r]));
                a[2 * r + 1] = V_FMA(qc, yc1, V_FMA(qa, ya1, a[2 * r + 1]));
            }
        }
    }
    float sum[8];
    _mm256_storeu_ps(sum, reduce8(a));
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < kn; c++) {
            const void *kr = c ? k1 : k0;
            const float *tr = c ? t1 : t0;
            float tail = 0.0f;
            for (int64_t e = ev; e < d; e++)
                if (!half || e < np || e >= np + ev)
                    tail += q[r * d + e] * rot1(kr, tr, e, np, half, t);
            s[r * lds + c] = scale * (sum[2 * r + c] + tail);
        }
}

/* Table row of key j: its distance d0 - j, wrapped into [0, period). */
INLINE const float *rot_row(const attn_cpu_ratt_rot *rot, int64_t j)
{
    const int64_t dist = rot->d0 - j >= 0 ? rot->d0 - j : rot->d0 - j + rot->period;
    return rot->tab + dist * 2 * rot->np;
}

INLINE void qk_rope_rows(const float *q, int nr, const attn_cpu_rows *k, int64_t nk, int64_t d,
                         const attn_cpu_ratt_rot *rot, int half, float scale, float *s,
                         int64_t lds, attn_dtype t, const pf_plan *pf)
{
    int64_t j = 0;
    for (; j + 2 <= nk; j += 2) {
        if (pf)
            prefetch_pair(pf, j);
        qk_rope_pair(q, nr, row_at(k, j, t), row_at(k, j + 1, t), rot_row(rot, j),
                     rot_row(rot, j + 1), 2, d, rot->np, half, scale, s + j, lds, t);
    }
    if (j < nk)
        qk_rope_pair(q, nr, row_at(k, j, t), row_at(k, j, t), rot_row(rot, j), rot_row(rot, j),
                     1, d, rot->np, half, scale, s + j, lds, t);
}

/* Row blocks of RB with the block size a constant in each instance; the first block issues
 * the prefetches. */
INLINE void qk_rope_layout(const float *q, int64_t nq, const attn_cpu_rows *k, int64_t nk,
                           int64_t d, const attn_cpu_ratt_rot *rot, int half, float scale,
                           float *s, int64_t lds, attn_dtype t, const pf_plan *pf)
{
    int64_t r = 0;
    for (; r + RB <= nq; r += RB, pf = NULL)
        qk_rope_rows(q + r * d, RB, k, nk, d, rot, half, scale, s + r * lds, lds, t, pf);
    switch (nq - r) {
    case 3: qk_rope_rows(q + r * d, 3, k, nk, d, rot, half, scale, s + r * lds, lds, t, pf); break;
    case 2: qk_rope_rows(q + r * d, 2, k, nk, d, rot, half, scale, s + r * lds, lds, t, pf); break;
    case 1: qk_rope_rows(q + r * d, 1, k, nk, d, rot, half, scale, s + r * lds, lds, t, pf); break;
    default: break;
    }
}

/* One function per dtype and layout, each with its four row-block instances (with all of them
 * in one function GCC moved the key loop's pointers to the stack). */
#define QK_ROPE_INSTANCE(name, t, half)                                                      \
    static __attribute__((noinline)) TARGET void name(                                       \
        const float *q, int64_t nq, const attn_cpu_rows *k, int64_t nk, int64_t d,           \
        const attn_cpu_ratt_rot *rot, float scale, float *s, int64_t lds, const pf_plan *pf) \
    {                                                                                        \
        qk_rope_layout(q, nq, k, nk, d, rot, half, scale, s, lds, t, pf);                    \
    }
QK_ROPE_INSTANCE(qk_rope_f32_il, ATTN_F32, 0)
QK_ROPE_INSTANCE(qk_rope_f32_half, ATTN_F32, 1)
QK_ROPE_INSTANCE(qk_rope_f16_il, ATTN_F16, 0)
QK_ROPE_INSTANCE(qk_rope_f16_half, ATTN_F16, 1)
QK_ROPE_INSTANCE(qk_rope_bf16_il, ATTN_BF16, 0)
QK_ROPE_INSTANCE(qk_rope_bf16_half, ATTN_BF16, 1)

TARGET
void SIMD_NAME(attn_cpu_ratt_dec_qk)(const float *q, int64_t nq, const attn_cpu_rows *k,
                                     int64_t nk, int64_t d, float scale, float *s, int64_t lds,
                                     const attn_cpu_rows *v, int64_t dv,
                                     const attn_cpu_ratt_rot *rot)
{
    int64_t kes = (int64_t)attn_dtype_size(k->dtype), ves = (int64_t)attn_dtype_size(v->dtype);
    pf_plan pf = {k->p, v->p, k->ld * kes, v->ld * ves, d * kes, dv * ves, nk};
    const int h = rot->half;
    switch (k->dtype) {
    case ATTN_F32:
        (h ? qk_rope_f32_half : qk_rope_f32_il)(q, nq, k, nk, d, rot, scale, s, lds, &pf);
        break;
    case ATTN_F16:
        (h ? qk_rope_f16_half : qk_rope_f16_il)(q, nq, k, nk, d, rot, scale, s, lds, &pf);
        break;
    default:
        (h ? qk_rope_bf16_half : qk_rope_bf16_il)(q, nq, k, nk, d, rot, scale, s, lds, &pf);
        break;
    }
}
