/* transnormer_attn.cl - TransNormer's two attentions, each writing y as f32 [B][S][Hq][DV]
 * (transnormer_srms.cl normalises and stores it).
 *
 * NormAttention, y_i = sum_j (phi(q_i).phi(k_j)) v_j, in the chunked form: attn_tn_chunk_state builds each chunk's state phi(K_c)^T V_c (one work-item per
 * state element), attn_tn_scan turns them into exclusive prefix sums over the chunks (causal)
 * or the total (left in chunk 0's slot), attn_tn_norm_rows computes one (token, head) row:
 * phi(q_i) S plus, when causal, the masked part of its own chunk.
 *
 * DiagAttention, attention inside non-overlapping blocks of `block` tokens: attn_tn_diag_rows,
 * one work-item per (token, query head) row. Softmax scores take two passes over the block's
 * visible keys (the maximum, then the weights and the weighted sum of V), with the authors'
 * zero-padded keys in the denominator when PAD_ZERO; ReLU scores one pass, no normalisation. */
#ifndef ATTN_COMMON_CL
#include "common.cl"
#endif

#ifndef FEATURE
#define FEATURE 0 /* attn_transnormer_feature: 0 1+elu, 1 elu, 2 relu, 3 identity */
#endif
#ifndef CAUSAL
#define CAUSAL 0
#endif
#ifndef RELU
#define RELU 0 /* DiagAttention's scores: 1 relu, 0 softmax */
#endif
#ifndef PAD_ZERO
#define PAD_ZERO 0
#endif

/* phi, keeping NaN (x > 0 and x <= 0 are both false for it). */
float attn_tn_phi(float x)
{
#if FEATURE == 0
    return x > 0.0f ? 1.0f + x : 1.0f + expm1(x);
#elif FEATURE == 1
    return x > 0.0f ? x : expm1(x);
#elif FEATURE == 2
    return x <= 0.0f ? 0.0f : x;
#else
    return x;
#endif
}

kernel void attn_tn_chunk_state(ATTN_CPTR(DT_K) k, ulong k_off, long4 k_st,
                                ATTN_CPTR(DT_V) v, ulong v_off, long4 v_st, global float *st,
                                long B, long S, long Hkv, long chunk, long nc)
{
    long gid = get_global_id(0);
    if (gid >= B * Hkv * nc * DK * DV)
        return;
    long e = gid % DV, a = gid / DV % DK, c = gid / (DV * DK) % nc, bg = gid / (DV * DK * nc);
    long b = bg / Hkv, g = bg % Hkv, end = min(S, (c + 1) * chunk);
    float acc = 0.0f;
    for (long j = c * chunk; j < end; j++) {
        float kk = ATTN_LOAD(DT_K, k, k_off + b * k_st.s0 + j * k_st.s1 + g * k_st.s2 + a * k_st.s3);
        float vv = ATTN_LOAD(DT_V, v, v_off + b * v_st.s0 + j * v_st.s1 + g * v_st.s2 + e * v_st.s3);
        acc += attn_tn_phi(kk) * vv;
    }
    st[gid] = acc;
}

kernel void attn_tn_scan(global float *st, long nbg, long nc)
{
    long gid = get_global_id(0);
    if (gid >= nbg * DK * DV)
        return;
    global float *s = st + gid / (DK * DV) * nc * DK * DV + gid % (DK * DV);
    float run = 0.0f;
    for (long c = 0; c < nc; c++) {
        float x = s[c * DK * DV];
#if CAUSAL
        s[c * DK * DV] = run;
#endif
        run += x;
    }
#if !CAUSAL
    s[0] = run;
#endif
}

kernel void attn_tn_norm_rows(ATTN_CPTR(DT_Q) q, ulong q_off, long4 q_st,
                              ATTN_CPTR(DT_K) k, ulong k_off, long4 k_st,
                              ATTN_CPTR(DT_V) v, ulong v_off, long4 v_st,
                              global const float *st, global float *y, long B, long S, long Hq,
                              long Hkv, long group, long chunk, long nc)
{
    long gid = get_global_id(0);
    if (gid >= B * S * Hq)
        return;
    long h = gid % Hq, i = gid / Hq % S, b = gid / (Hq * S), g = h / group, c = i / chunk;
    float pq[DK];
    for (int a = 0; a < DK; a++)
        pq[a] = attn_tn_phi(ATTN_LOAD(DT_Q, q, q_off + b * q_st.s0 + i * q_st.s1 + h * q_st.s2 +
                                                   a * q_st.s3));
    global const float *s = st + ((b * Hkv + g) * nc + (CAUSAL ? c : 0)) * DK * DV;
    global float *yr = y + gid * DV;
    for (int e = 0; e < DV; e++) {
        float acc = 0.0f;
        for (int a = 0; a < DK; a++)
            acc += pq[a] * s[a * DV + e];
        yr[e] = acc;
    }
#if CAUSAL
    for (long j = c * chunk; j <= i; j++) {
        long kb = k_off + b * k_st.s0 + j * k_st.s1 + g * k_st.s2;
        long vb = v_off + b * v_st.s0 + j * v_st.s1 + g * v_st.s2;
        float w = 0.0f;
        for (int a = 0; a < DK; a++)
            w += pq[a] * attn_tn_phi(ATTN_LOAD(DT_K, k, kb + a * k_st.s3));
        for (int e = 0; e < DV; e++)
            yr[e] += w * ATTN_LOAD(DT_V, v, vb + e * v_st.s3);
    }
#endif
}

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
