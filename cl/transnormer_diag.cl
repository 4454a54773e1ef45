/* transnormer_diag.cl - DiagAttention (TransNormer): attention inside non-overlapping blocks of
 * BLOCK tokens, one work-item per (token, query head) row. Softmax scores take two passes over
 * the block's visible keys (the maximum, then the weights and the weighted sum of V), with the
 * authors' zero-padded keys in the denominator when PAD_ZERO; ReLU scores one pass, no
 * normalisation. y is f32 [B][S][Hq][DV]; transnormer_srms.cl normalises and stores it. */
#ifndef ATTN_COMMON_CL
#include "common.cl"
#endif

#ifndef DK
#define DK 64
#endif
#ifndef DV
#define DV 64
#endif
#ifndef DT_Q
#define DT_Q ATTN_DT_F32
#endif
#ifndef DT_K
#define DT_K ATTN_DT_F32
#endif
#ifndef DT_V
#define DT_V ATTN_DT_F32
#endif
#ifndef CAUSAL
#define CAUSAL 0
#endif
#ifndef RELU
#define RELU 0 /* 1: relu scores, 0: softmax */
#endif
#ifndef PAD_ZERO
#define PAD_ZERO 0
#endif

float attn_tn_logit(const float *sq, ATTN_CPTR(DT_K) k, long kb, long ks)
{
    float s = 0.0f;
    for (int a = 0; a < DK; a++)
        s += sq[a] * ATTN_LOAD(DT_K, k, kb + a * ks);
    return s;
}

kernel void attn_tn_diag_rows(ATTN_CPTR(DT_Q) q, ulong q_off, long4 q_st,
                              ATTN_CPTR(DT_K) k, ulong k_off, long4 k_st,
                              ATTN_CPTR(DT_V) v, ulong v_off, long4 v_st, global float *y,
                              long B, long S, long Hq, long group, long block, float scale)
{
    long gid = get_global_id(0);
    if (gid >= B * S * Hq)
        return;
    long h = gid % Hq, i = gid / Hq % S, b = gid / (Hq * S), g = h / group;
    long lo = i - i % block, hi = S - lo > block ? lo + block : S;
    long npad = PAD_ZERO && S - lo < block ? block - (S - lo) : 0;
#if CAUSAL
    hi = i + 1;
#endif
    float sq[DK];
    for (int a = 0; a < DK; a++) /* the authors scale q before the product */
        sq[a] = scale * ATTN_LOAD(DT_Q, q, q_off + b * q_st.s0 + i * q_st.s1 + h * q_st.s2 +
                                               a * q_st.s3);
    long kb0 = k_off + b * k_st.s0 + g * k_st.s2, vb0 = v_off + b * v_st.s0 + g * v_st.s2;
    global float *yr = y + gid * DV;
    for (int e = 0; e < DV; e++)
        yr[e] = 0.0f;
#if RELU
    for (long j = lo; j < hi; j++) {
        float s = attn_tn_logit(sq, k, kb0 + j * k_st.s1, k_st.s3);
        float p = s <= 0.0f ? 0.0f : s;
        for (int e = 0; e < DV; e++)
            yr[e] += p * ATTN_LOAD(DT_V, v, vb0 + j * v_st.s1 + e * v_st.s3);
    }
#else
    float m = npad > 0 ? 0.0f : -INFINITY, l = 0.0f;
    for (long j = lo; j < hi; j++) {
        float s = attn_tn_logit(sq, k, kb0 + j * k_st.s1, k_st.s3);
        m = s > m || isnan(s) ? s : m;
    }
    for (long j = lo; j < hi; j++) {
        float p = exp(attn_tn_logit(sq, k, kb0 + j * k_st.s1, k_st.s3) - m);
        l += p;
        for (int e = 0; e < DV; e++)
            yr[e] += p * ATTN_LOAD(DT_V, v, vb0 + j * v_st.s1 + e * v_st.s3);
    }
    l += (float)npad * exp(-m);
    for (int e = 0; e < DV; e++)
        yr[e] /= l;
#endif
}
