/* linear_chunk.cl - kernel linear attention, chunked (reference/linear_chunked.c): one
 * work-group per (batch, KV head, block of value columns) walks the chunks of C positions in
 * order, carrying its f32 state block S [DF x WB] (WB = value columns + 1 z column with the
 * normaliser) in local memory. Per chunk: the work-items compute phi(k) and the values of the
 * chunk into local memory; each then takes query rows (every head of the group), computing
 * phi(q) in private memory and
 *   out_r = lambda^(r+1) f S + sum_{c <= r} lambda^(r-c) (f . phi(k_c)) v_c
 * and after a barrier the state update S = lambda^L S + sum_c lambda^(L-1-c) phi(k_c)^T v_c,
 * one state element per work-item at a time. Position p holds key p - shift. Non-causal:
 * every chunk updates the state first, then a second pass reads it. Strict IEEE math. */
#ifndef ATTN_LINEAR_CHUNK_CL
#define ATTN_LINEAR_CHUNK_CL /* linear_chunk_bwd.cl builds on this file */
#ifndef ATTN_COMMON_CL
#include "common.cl"
#endif

#ifndef FEATURE
#define FEATURE 2      /* attn_linear_feature: 0 identity, 1 elu, 2 elu+1, 3 relu, 4 silu,
                        * 5 softmax-pair, 6 relu-pair */
#endif
#ifndef CHUNK
#define CHUNK 32       /* positions per chunk */
#endif
#ifndef VB
#define VB 64          /* value columns per work-group (the last block may be narrower) */
#endif
#ifndef NORMALIZE
#define NORMALIZE 1
#endif
#ifndef CAUSAL
#define CAUSAL 1
#endif
#ifndef HAS_DECAY
#define HAS_DECAY 0
#endif

#if FEATURE == 5 || FEATURE == 6
#define DF (2 * DK)
#else
#define DF DK
#endif
#define WB (VB + NORMALIZE) /* state columns of a work-group: values, then z */

/* softmax of sign * x over DK values into y, max-subtracted. */
void lin_softmax_half(const float *x, float sign, float *y)
{
    float m = -INFINITY, l = 0.0f;
    for (int d = 0; d < DK; d++)
        m = isnan(x[d]) || sign * x[d] > m ? sign * x[d] : m;
    for (int d = 0; d < DK; d++) {
        y[d] = exp(sign * x[d] - m);
        l += y[d];
    }
    for (int d = 0; d < DK; d++)
        y[d] = y[d] / l;
}

float lin_relu(float x)
{
    return x > 0.0f || isnan(x) ? x : 0.0f;
}

/* y[0..DF) = phi(x[0..DK)), the maps of reference/linear_feature.c. */
void lin_phi(const float *x, float *y)
{
#if FEATURE == 5
    lin_softmax_half(x, 1.0f, y);
    lin_softmax_half(x, -1.0f, y + DK);
#else
    for (int d = 0; d < DK; d++) {
        float v = x[d];
#if FEATURE == 1
        y[d] = v > 0.0f ? v : expm1(v);
#elif FEATURE == 2
        y[d] = v > 0.0f ? v + 1.0f : exp(v);
#elif FEATURE == 3
        y[d] = lin_relu(v);
#elif FEATURE == 4
        y[d] = v / (1.0f + exp(-v));
#elif FEATURE == 6
        y[d] = lin_relu(v);
        y[DK + d] = lin_relu(-v);
#else
        y[d] = v;
#endif
    }
#endif
}

/* log lambda of KV head g (0: no decay). */
float lin_log_decay(global const float *log_decay, long g)
{
#if HAS_DECAY
    return log_decay[g];
#else
    return 0.0f;
#endif
}

/* lambda^n as exp(n log lambda). */
float lin_pow(float log_lambda, int n)
{
#if HAS_DECAY
    return exp((float)n * log_lambda);
#else
    return 1.0f;
#endif
}

/* phi(k) and values (+ ones) of positions [c0, c0+len) into local memory; no key before the
 * shift. */
void lin_load_keys(ATTN_CPTR(DT_K) k, long4 sk, ATTN_CPTR(DT_V) v, long4 sv, long b, long g,
                   long c0, int len, long shift, long c_lo, int cols, local float *lk,
                   local float *lv)
{
    float x[DK], y[DF];
    for (int r = get_local_id(0); r < CHUNK; r += get_local_size(0)) {
        long j = c0 + r - shift;
        int live = r < len && j >= 0;
        for (int d = 0; d < DK; d++)
            x[d] = live ? ATTN_LOAD(DT_K, k, b * sk.s0 + j * sk.s1 + g * sk.s2 + d * sk.s3) : 0;
        lin_phi(x, y);
        for (int d = 0; d < DF; d++)
            lk[r * DF + d] = live ? y[d] : 0.0f;
        for (int c = 0; c < VB; c++)
            lv[r * WB + c] = live && c < cols ? ATTN_LOAD(DT_V, v, b * sv.s0 + j * sv.s1 +
                                                               g * sv.s2 + (c_lo + c) * sv.s3)
                                              : 0.0f;
#if NORMALIZE
        lv[r * WB + VB] = live ? 1.0f : 0.0f;
#endif
    }
}

/* f = scale * phi(q[b, i, h]). */
void lin_query(ATTN_CPTR(DT_Q) q, long4 sq, long b, long i, long h, float scale, float *f)
{
    float x[DK];
    for (int d = 0; d < DK; d++)
        x[d] = ATTN_LOAD(DT_Q, q, b * sq.s0 + i * sq.s1 + h * sq.s2 + d * sq.s3);
    lin_phi(x, f);
    for (int d = 0; d < DF; d++)
        f[d] *= scale;
}

/* acc = w * f S (the state read). */
void lin_read_state(const float *f, local const float *ls, float w, float *acc)
{
    for (int c = 0; c < WB; c++)
        acc[c] = 0.0f;
    for (int d = 0; d < DF; d++)
        for (int c = 0; c < WB; c++)
            acc[c] += f[d] * ls[d * WB + c];
    for (int c = 0; c < WB; c++)
        acc[c] *= w;
}

void lin_store(ATTN_PTR(DT_O) o, long4 so, long b, long i, long h, long c_lo, int cols,
               float eps, const float *acc)
{
    for (int c = 0; c < cols; c++) {
#if NORMALIZE
        float x = acc[c] / (acc[VB] + eps);
#else
        float x = acc[c];
#endif
        ATTN_STORE(DT_O, o, b * so.s0 + i * so.s1 + h * so.s2 + (c_lo + c) * so.s3, x);
    }
}

/* S = lambda^len S + sum_c lambda^(len-1-c) phi(k_c)^T v_c, one element per work-item. */
void lin_update(local float *ls, local const float *lk, local const float *lv, int len,
                float log_lambda)
{
    const float wl = lin_pow(log_lambda, len);
    float w[CHUNK]; /* the keys' weights, once per work-item rather than once per term */
    for (int r = 0; r < len; r++)
        w[r] = lin_pow(log_lambda, len - 1 - r);
    for (int e = get_local_id(0); e < DF * WB; e += get_local_size(0)) {
        const int d = e / WB, c = e % WB;
        float s = 0.0f;
        for (int r = 0; r < len; r++)
            s += w[r] * lk[r * DF + d] * lv[r * WB + c];
        ls[e] = wl * ls[e] + s;
    }
}

/* One work-group: (batch b, KV head g, value block blk) = group id (b * Hkv + g) * nvb + blk. */
kernel void attn_linear_chunk(ATTN_CPTR(DT_Q) q, ulong q_off, long4 sq,
                              ATTN_CPTR(DT_K) k, ulong k_off, long4 sk,
                              ATTN_CPTR(DT_V) v, ulong v_off, long4 sv,
                              ATTN_PTR(DT_O) o, ulong o_off, long4 so,
                              global float *s_in, ulong si_off, long4 ssi,
                              global float *z_in, ulong zi_off, long4 szi,
                              global float *s_out, ulong so_off, long4 sso,
                              global float *z_out, ulong zo_off, long4 szo,
                              global const float *log_decay, long S, long Hkv, long G,
                              long shift, long nvb, float scale, float eps,
                              local float *ls, local float *lk, local float *lv)
{
    q += q_off;
    k += k_off;
    v += v_off;
    o += o_off;
    const long grp = get_group_id(0), blk = grp % nvb, g = grp / nvb % Hkv, b = grp / nvb / Hkv;
    const long c_lo = blk * VB;
    const int cols = (int)min((long)VB, (long)DV - c_lo);
    const float ll = lin_log_decay(log_decay, g);
    for (int e = get_local_id(0); e < DF * WB; e += get_local_size(0)) {
        const int d = e / WB, c = e % WB;
        float x = 0.0f;
#if HAS_STATE_IN
        if (c < cols)
            x = s_in[si_off + b * ssi.s0 + g * ssi.s1 + d * ssi.s2 + (c_lo + c) * ssi.s3];
#if NORMALIZE
        if (c == VB)
            x = z_in[zi_off + b * szi.s0 + g * szi.s1 + d * szi.s2];
#endif
#endif
        ls[e] = x;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float f[DF], acc[WB];
    for (long c0 = 0; c0 < S; c0 += CHUNK) {
        const int len = (int)min((long)CHUNK, S - c0);
        lin_load_keys(k, sk, v, sv, b, g, c0, len, shift, c_lo, cols, lk, lv);
        barrier(CLK_LOCAL_MEM_FENCE);
#if CAUSAL
        for (int x = get_local_id(0); x < G * len; x += get_local_size(0)) {
            const int r = x % len;
            const long h = g * G + x / len;
            lin_query(q, sq, b, c0 + r, h, scale, f);
            lin_read_state(f, ls, lin_pow(ll, r + 1), acc);
            for (int c = 0; c <= r; c++) {
                float s = 0.0f;
                for (int d = 0; d < DF; d++)
                    s += f[d] * lk[c * DF + d];
                s *= lin_pow(ll, r - c);
                for (int y = 0; y < WB; y++)
                    acc[y] += s * lv[c * WB + y];
            }
            lin_store(o, so, b, c0 + r, h, c_lo, cols, eps, acc);
        }
#endif
        barrier(CLK_LOCAL_MEM_FENCE);
        lin_update(ls, lk, lv, len, ll);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#if !CAUSAL
    for (long x = get_local_id(0); x < G * S; x += get_local_size(0)) {
        const long i = x % S, h = g * G + x / S;
        lin_query(q, sq, b, i, h, scale, f);
        lin_read_state(f, ls, 1.0f, acc);
        lin_store(o, so, b, i, h, c_lo, cols, eps, acc);
    }
#endif
#if HAS_STATE_OUT
    for (int e = get_local_id(0); e < DF * WB; e += get_local_size(0)) {
        const int d = e / WB, c = e % WB;
        if (c < cols)
            s_out[so_off + b * sso.s0 + g * sso.s1 + d * sso.s2 + (c_lo + c) * sso.s3] = ls[e];
#if NORMALIZE
        if (c == VB && blk == 0)
            z_out[zo_off + b * szo.s0 + g * szo.s1 + d * szo.s2] = ls[e];
#endif
    }
#endif
}
#endif /* ATTN_LINEAR_CHUNK_CL */
