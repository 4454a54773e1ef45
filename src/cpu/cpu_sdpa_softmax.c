/* cpu_sdpa_softmax.c - the per-row work of a score tile between the two BLIS products: logit
 * transforms and masking, the online-softmax step (running max m, running sum l, rescale
 * factor), the final normalisation, and storing a row in the output dtype. Loops are written
 * branch-free with explicit lane accumulators so GCC vectorises them without fast-math. */
#include "cpu_sdpa.h"
#include "cpu_math.h"

#include "attn_half.h"

#include <math.h>

#define LANES 16

/* Floats as integers with the same order (non-NaN values): the sign-magnitude bits with the
 * magnitude bits flipped for negatives; NaN maps to the key of -inf, so it never wins. The max
 * is taken on these keys because integer max vectorises, while GCC keeps the float ternary
 * scalar (NaN semantics) without finite-math. The map is its own inverse on non-NaN keys. */
#define KEY_NEG_INF ((int32_t)0x807fffff)

static inline int32_t order_key(float x)
{
    uint32_t b = attn_f32_bits(x);
    uint32_t neg = -(b >> 31), nan = -(uint32_t)((b & 0x7fffffffu) > 0x7f800000u);
    uint32_t k = b ^ (neg & 0x7fffffffu);
    return (int32_t)((k & ~nan) | ((uint32_t)KEY_NEG_INF & nan));
}

static inline float key_value(int32_t k)
{
    uint32_t u = (uint32_t)k, neg = -(u >> 31);
    return attn_bits_f32(u ^ (neg & 0x7fffffffu));
}

/* Max of x[0..n) ignoring NaN (NaN logits reach the output through exp and the sums); -inf
 * when there is no non-NaN value. */
static inline float row_max(const float *x, int64_t n)
{
    int32_t acc[LANES];
    for (int k = 0; k < LANES; k++)
        acc[k] = KEY_NEG_INF;
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int k = 0; k < LANES; k++) {
            int32_t key = order_key(x[j + k]);
            acc[k] = key > acc[k] ? key : acc[k];
        }
    int32_t m = KEY_NEG_INF;
    for (; j < n; j++) {
        int32_t key = order_key(x[j]);
        m = key > m ? key : m;
    }
    for (int k = 0; k < LANES; k++)
        m = acc[k] > m ? acc[k] : m;
    return key_value(m);
}

static inline float row_sum(const float *x, int64_t n)
{
    float acc[LANES] = {0};
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int k = 0; k < LANES; k++)
            acc[k] += x[j + k];
    float s = 0.0f;
    for (; j < n; j++)
        s += x[j];
    for (int k = 0; k < LANES; k++)
        s += acc[k];
    return s;
}

static void fill_neg_inf(float *s, int64_t from, int64_t to)
{
    for (int64_t j = from; j < to; j++)
        s[j] = -INFINITY;
}

ATTN_CPU_HOT
void attn_cpu_logits_row(float *s, int64_t n, float softcap, const float *madd,
                         const uint8_t *mbool, int64_t mbool_stride, int64_t j0, int64_t lo,
                         int64_t hi)
{
    if (softcap > 0.0f)
        for (int64_t j = 0; j < n; j++)
            s[j] = softcap * tanhf(s[j] / softcap);
    if (madd)
        for (int64_t j = 0; j < n; j++)
            s[j] += madd[j];
    if (mbool)
        for (int64_t j = 0; j < n; j++)
            s[j] = mbool[j * mbool_stride] ? s[j] : -INFINITY;
    int64_t a = lo - j0, b = hi - j0; /* band in tile coordinates */
    a = a < 0 ? 0 : a > n ? n : a;
    b = b < a ? a : b > n ? n : b;
    fill_neg_inf(s, 0, a);
    fill_neg_inf(s, b, n);
}

ATTN_CPU_HOT
float attn_cpu_softmax_row(float *s, int64_t n, float *m, float *l)
{
    float mx = row_max(s, n);
    float m_new = mx > *m ? mx : *m;
    /* With nothing visible yet, subtract 0 so exp(-inf) gives 0 instead of exp(NaN). */
    float mu = m_new == -INFINITY ? 0.0f : m_new;
    /* A hidden key (logit -inf) gets p = -0, a visible one whose p underflows gets +0: the
     * product with V skips the first and keeps the second (0 * NaN is NaN, as in the
     * reference: a visible key takes part). Both add nothing to the sum. */
    for (int64_t j = 0; j < n; j++) {
        uint32_t hidden = (uint32_t)(attn_f32_bits(s[j]) == 0xff800000u) << 31;
        s[j] = attn_bits_f32(attn_f32_bits(attn_cpu_expf(s[j] - mu)) | hidden);
    }
    float sum = row_sum(s, n);
    float alpha = attn_cpu_expf(*m - mu);
    *l = *l * alpha + sum;
    *m = m_new;
    return alpha;
}

ATTN_CPU_HOT
void attn_cpu_scale_row(float *o, int64_t n, float f)
{
    for (int64_t j = 0; j < n; j++)
        o[j] *= f;
}

/* dot(a, b) over n floats with 32 independent lanes (4 vector chains, so the FMA latency does
 * not serialise it), folded pairwise at the end. */
static inline float dot32(const float *a, const float *b, int64_t n)
{
    float acc[32] = {0};
    int64_t d = 0;
    for (; d + 32 <= n; d += 32)
        for (int k = 0; k < 32; k++)
            acc[k] += a[d + k] * b[d + k];
    float t[8];
    for (int k = 0; k < 8; k++)
        t[k] = (acc[k] + acc[k + 8]) + (acc[k + 16] + acc[k + 24]);
    float s = ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]));
    for (; d < n; d++)
        s += a[d] * b[d];
    return s;
}

ATTN_CPU_HOT
void attn_cpu_qk_block(const float *q, int64_t nq, const float *k, int64_t nk, int64_t d,
                       float scale, float *s, int64_t lds)
{
    for (int64_t r = 0; r < nq; r++)
        for (int64_t j = 0; j < nk; j++)
            s[r * lds + j] = scale * dot32(q + r * d, k + j * d, d);
}

ATTN_CPU_HOT
void attn_cpu_pv_block(const float *p, int64_t ldp, int64_t nq, const float *v, int64_t nk,
                       int64_t dv, float *o)
{
    for (int64_t r = 0; r < nq; r++)
        for (int64_t j = 0; j < nk; j++) {
            float pj = p[r * ldp + j];
            if (attn_cpu_p_hidden(pj))
                continue; /* hidden key: its V row is never read (may hold Inf/NaN) */
            for (int64_t e = 0; e < dv; e++)
                o[r * dv + e] += pj * v[j * dv + e];
        }
}

void attn_cpu_finish_row(float *o, int64_t n, float m, float l, float *lse_out)
{
    if (l == 0.0f) { /* no visible key, or all logits -inf */
        for (int64_t j = 0; j < n; j++)
            o[j] = 0.0f;
        *lse_out = -INFINITY;
        return;
    }
    for (int64_t j = 0; j < n; j++)
        o[j] /= l;
    *lse_out = m + logf(l);
}

void attn_cpu_store_row(const attn_operand *out, int64_t b, int64_t i, int64_t h,
                        const float *src, int64_t n)
{
    void *dst = (void *)attn_cpu_elem(out, b, i, h, 0);
    int64_t st = out->stride[3];
    if (st == 1 || n == 1) {
        attn_cpu_row_from_f32(src, n, out->dtype, dst);
        return;
    }
    for (int64_t j = 0; j < n; j++)
        attn_store_f64(dst, out->dtype, j * st, src[j]);
}

/* Online-softmax step of a score panel of nk keys x lq query lanes ((key, q) at key*lq + q,
 * lq a multiple of 16): per lane the same arithmetic as attn_cpu_softmax_row (hidden keys
 * marked -0), with the reductions over keys in lane order instead of row order. */
ATTN_CPU_HOT
void attn_cpu_softmax_panel(float *s, int64_t nk, int64_t lq, float *m, float *l, float *alpha)
{
    for (int64_t g = 0; g < lq; g += 16) {
        int32_t key_max[16];
        float mu[16], sum[16] = {0};
        for (int k = 0; k < 16; k++)
            key_max[k] = KEY_NEG_INF;
        for (int64_t j = 0; j < nk; j++)
            for (int k = 0; k < 16; k++) {
                int32_t key = order_key(s[j * lq + g + k]);
                key_max[k] = key > key_max[k] ? key : key_max[k];
            }
        for (int k = 0; k < 16; k++) {
            float mx = key_value(key_max[k]), m_new = mx > m[g + k] ? mx : m[g + k];
            mu[k] = m_new == -INFINITY ? 0.0f : m_new;
            alpha[g + k] = attn_cpu_expf(m[g + k] - mu[k]);
            m[g + k] = m_new;
        }
        for (int64_t j = 0; j < nk; j++)
            for (int k = 0; k < 16; k++) {
                float x = s[j * lq + g + k], e = attn_cpu_expf(x - mu[k]);
                uint32_t hidden = (uint32_t)(attn_f32_bits(x) == 0xff800000u) << 31;
                s[j * lq + g + k] = attn_bits_f32(attn_f32_bits(e) | hidden);
                sum[k] += e;
            }
        for (int k = 0; k < 16; k++)
            l[g + k] = l[g + k] * alpha[g + k] + sum[k];
    }
}

ATTN_CPU_HOT
void attn_cpu_scale_panel(float *o, int64_t nd, int64_t lq, const float *alpha)
{
    for (int64_t d = 0; d < nd; d++)
        for (int64_t q = 0; q < lq; q++)
            o[d * lq + q] *= alpha[q];
}

attn_cpu_panel_fns attn_cpu_panel_fns_for(int simd)
{
    attn_cpu_panel_fns f = {attn_cpu_softmax_panel, NULL};
#if ATTN_CPU_HAVE_AVX2_KERNELS
    if (attn_cpu_simd_use(simd) >= ATTN_CPU_SIMD_AVX512)
        f = (attn_cpu_panel_fns){attn_cpu_softmax_panel_avx512, attn_cpu_pv_tail_avx512};
#else
    (void)simd;
#endif
    return f;
}

static void pv_panels(const attn_cpu_ukr *u, const attn_cpu_panel_fns *f, int64_t Dv,
                      int64_t nk, const float *s, const float *vp, int64_t ld_panel, float *o)
{
    const int64_t lk = u->lk, lq = u->lq, full = f->pv_tail ? Dv / lk * lk : Dv;
    for (int64_t d = 0; d < full; d += lk)
        attn_cpu_ukr_panel(u, nk, 1.0f, s, vp + d / lk * ld_panel, 1.0f, o + d * lq);
    if (full < Dv)
        f->pv_tail(s, nk, lq, vp + full / lk * ld_panel, lk, Dv - full, o + full * lq);
}

static int all_one(const float *a, int64_t n)
{
    int ok = 1;
    for (int64_t i = 0; i < n; i++)
        ok &= a[i] == 1.0f;
    return ok;
}

void attn_cpu_panel_pv(const attn_sdpa_problem *p, const attn_cpu_ukr *u,
                       const attn_cpu_panel_fns *f, const attn_cpu_panel_v *v, int64_t nk,
                       const float *s, const float *alpha, float *row, float *o)
{
    const int64_t lq = u->lq, dv_pad = (p->Dv + u->lk - 1) / u->lk * u->lk;
    if (!all_one(alpha, lq))
        attn_cpu_scale_panel(o, dv_pad, lq, alpha);
    pv_panels(u, f, p->Dv, nk, s, v->panels, v->ld_panel, o);
    for (int64_t j = 0; j < nk; j++) { /* flagged keys' terms, exactly, where p is not -0 */
        if (!v->bad[j])
            continue;
        attn_cpu_plane_to_f32(&p->v, v->b, v->hk, v->k0 + j, 1, p->Dv, row);
        for (int64_t q = 0; q < lq; q++)
            if (!attn_cpu_p_hidden(s[j * lq + q]))
                for (int64_t d = 0; d < p->Dv; d++)
                    o[d * lq + q] += s[j * lq + q] * row[d];
    }
}
