/* linear_chunk_bwd.cl - the backward of kernel linear attention (reference/linear_backward.c,
 * docs/ops/linear.md "Backward") in the chunked form of linear_chunk.cl, whose feature maps,
 * key/value tiles, state read and state update it reuses (the host builds this file after
 * linear_chunk.cl). Both kernels run one work-group per (batch b, KV head g), all of the
 * group's query heads, every value column; no atomics, every sum in a fixed order.
 *
 * With the augmented state S~ = [S | z] (the z column only with the normaliser) and, per row,
 * f = scale phi(q), num = f S~_i, den = num_z + eps, u = [dO / den | -(dO . out) / den]
 * (u = dO without the normaliser):
 *   attn_linear_bwd_q   forward sweep over the chunks carrying S~ in local memory (as the
 *                       forward does): per row u (kept in the f32 scratch u for the second
 *                       kernel) and df = S~_i u, i.e. lambda^(r+1) S~ u with the state
 *                       before the chunk plus the in-chunk keys' lambda^(r-c) phi(k_c)
 *                       (v~_c . u), then
 *                       dq = scale J_phi(q)^T df;
 *   attn_linear_bwd_kv  reverse sweep carrying R = sum over later rows (and the final state's
 *                       gradient [dS_T | dz_T] as a row at the last position) of
 *                       lambda^(row - position) f^T u, summed over the group's heads: for the
 *                       key at position c of a chunk of len rows,
 *                       G = lambda^(len-1-c) R + sum_{r >= c} lambda^(r-c) f_r^T u_r,
 *                       dv = phi(k) G (value columns), dphi(k) = G v~, dk = J_phi(k)^T dphi(k);
 *                       then R = lambda^len R + sum_r lambda^(r+1) f_r^T u_r, and after
 *                       chunk 0 (the last walked) R is [d_state_in | d_z_in].
 * Position p holds key p - shift; keys no row and no final state sees get zero gradients.
 * Non-causal: the full state (dq) and the full R (dk, dv) are summed first. Strict IEEE math. */
#ifndef ATTN_LINEAR_CHUNK_CL
#include "linear_chunk.cl"
#endif

#ifndef HAS_DSTATE_OUT /* gradients arriving at the final state, S_T and z_T */
#define HAS_DSTATE_OUT 0
#endif
#ifndef HAS_DZ_OUT
#define HAS_DZ_OUT 0
#endif
#ifndef HAS_DSTATE_IN  /* gradients of the initial state to write, S0 and z0 */
#define HAS_DSTATE_IN 0
#endif
#ifndef HAS_DZ_IN
#define HAS_DZ_IN 0
#endif
#if VB != DV
#error "the backward keeps every value column in one work-group: build it with VB = DV"
#endif

/* a . b over n values: eight partial sums (a strict-math reduction is otherwise one long
 * chain of dependent adds), then a fixed-order horizontal sum and the tail. */
float lin_dot(const float *a, local const float *b, int n)
{
    float8 s8 = (float8)(0.0f);
    int d = 0;
    for (; d + 8 <= n; d += 8)
        s8 += vload8(0, a + d) * vload8(0, b + d);
    float s = attn_hsum8(s8);
    for (; d < n; d++)
        s += a[d] * b[d];
    return s;
}

/* dx[0..DK) = J_phi(x)^T dy[0..DF), the VJPs of reference/linear_feature.c: elu's slope at 0
 * is 1, relu's 0; the softmax pair gives sign p (dy - p . dy) per half. */
void lin_phi_vjp(const float *x, const float *dy, float *dx)
{
#if FEATURE == 5
    float p[DK];
    for (int d = 0; d < DK; d++)
        dx[d] = 0.0f;
    for (int hs = 0; hs < 2; hs++) {
        const float sign = hs ? -1.0f : 1.0f;
        const float *dh = dy + hs * DK;
        lin_softmax_half(x, sign, p);
        float pd = 0.0f;
        for (int d = 0; d < DK; d++)
            pd += p[d] * dh[d];
        for (int d = 0; d < DK; d++)
            dx[d] += sign * (p[d] * (dh[d] - pd));
    }
#else
    for (int d = 0; d < DK; d++) {
        const float v = x[d];
#if FEATURE == 1 || FEATURE == 2
        dx[d] = (v > 0.0f ? 1.0f : exp(v)) * dy[d];
#elif FEATURE == 3
        dx[d] = v > 0.0f ? dy[d] : 0.0f * dy[d];
#elif FEATURE == 4
        const float sg = 1.0f / (1.0f + exp(-v));
        dx[d] = sg * (1.0f + v * (1.0f - sg)) * dy[d];
#elif FEATURE == 6
        dx[d] = v > 0.0f ? dy[d] : v < 0.0f ? -dy[DK + d] : 0.0f;
#else
        dx[d] = dy[d];
#endif
    }
#endif
}

/* Row [b, i, h] (head dim n) of a tensor as floats. */
#define LIN_ROW(dt, p, s, b, i, h, n, x)                                                     \
    for (int d_ = 0; d_ < (n); d_++)                                                       \
        (x)[d_] = ATTN_LOAD(dt, p, (b) * (s).s0 + (i) * (s).s1 + (h) * (s).s2 + d_ * (s).s3)
/* Row [b, i, h] of a gradient, rounded once to its dtype. */
#define LIN_ROW_STORE(dt, p, s, b, i, h, n, x)                                               \
    for (int d_ = 0; d_ < (n); d_++)                                                       \
        ATTN_STORE(dt, p, (b) * (s).s0 + (i) * (s).s1 + (h) * (s).s2 + d_ * (s).s3, (x)[d_])

/* u of row [b, i, h] from its state read acc = [num | den - eps]: dnum = dO / den and
 * dden = -(dO . out) / den with the normaliser, dO without. */
void lin_row_u(ATTN_CPTR(DT_DO) dout, long4 sdo, long b, long i, long h, float eps,
               const float *acc, float *u)
{
    LIN_ROW(DT_DO, dout, sdo, b, i, h, DV, u);
#if NORMALIZE
    const float den = acc[DV] + eps;
    float dot = 0.0f;
    for (int c = 0; c < DV; c++) {
        dot += u[c] * (acc[c] / den);
        u[c] = u[c] / den;
    }
    u[DV] = -dot / den;
#endif
}

/* df = w S~ u (the state's part of a row's df). */
void lin_state_times_u(local const float *ls, const float *u, float w, float *df)
{
    for (int d = 0; d < DF; d++)
        df[d] = w * lin_dot(u, ls + d * WB, WB);
}

/* dq of row [b, i, h] from df: scale J_phi(q)^T df. */
void lin_store_dq(ATTN_CPTR(DT_Q) q, long4 sq, ATTN_PTR(DT_DQ) dq, long4 sdq, long b, long i,
                  long h, float scale, float *df)
{
    float x[DK], dx[DK];
    LIN_ROW(DT_Q, q, sq, b, i, h, DK, x);
    for (int d = 0; d < DF; d++)
        df[d] *= scale;
    lin_phi_vjp(x, df, dx);
    LIN_ROW_STORE(DT_DQ, dq, sdq, b, i, h, DK, dx);
}

/* S~ of the initial state (zero when absent), one element per work-item. */
void lin_state_in(global const float *s_in, ulong si_off, long4 ssi, global const float *z_in,
                  ulong zi_off, long4 szi, long b, long g, local float *ls)
{
    for (int e = get_local_id(0); e < DF * WB; e += get_local_size(0)) {
        const int d = e / WB, c = e % WB;
        float x = 0.0f;
#if HAS_STATE_IN
        if (c < DV)
            x = s_in[si_off + b * ssi.s0 + g * ssi.s1 + d * ssi.s2 + c * ssi.s3];
#if NORMALIZE
        else
            x = z_in[zi_off + b * szi.s0 + g * szi.s1 + d * szi.s2];
#endif
#endif
        ls[e] = x;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* One work-group per (batch, KV head) = group id b * Hkv + g. u: f32 [B][Hq][S][WB]. */
kernel void attn_linear_bwd_q(ATTN_CPTR(DT_Q) q, ulong q_off, long4 sq,
                              ATTN_CPTR(DT_K) k, ulong k_off, long4 sk,
                              ATTN_CPTR(DT_V) v, ulong v_off, long4 sv,
                              ATTN_CPTR(DT_DO) dout, ulong do_off, long4 sdo,
                              global const float *s_in, ulong si_off, long4 ssi,
                              global const float *z_in, ulong zi_off, long4 szi,
                              ATTN_PTR(DT_DQ) dq, ulong dq_off, long4 sdq,
                              global float *u_all, global const float *log_decay, long S,
                              long Hkv, long G, long shift, float scale, float eps,
                              local float *ls, local float *lk, local float *lv)
{
    q += q_off;
    k += k_off;
    v += v_off;
    dout += do_off;
    dq += dq_off;
    const long g = get_group_id(0) % Hkv, b = get_group_id(0) / Hkv;
    const float ll = lin_log_decay(log_decay, g);
    lin_state_in(s_in, si_off, ssi, z_in, zi_off, szi, b, g, ls);
    float f[DF], acc[WB], u[WB], df[DF];
    for (long c0 = 0; c0 < S; c0 += CHUNK) {
        const int len = (int)min((long)CHUNK, S - c0);
        lin_load_keys(k, sk, v, sv, b, g, c0, len, shift, 0, DV, lk, lv);
        barrier(CLK_LOCAL_MEM_FENCE);
#if CAUSAL
        for (int x = get_local_id(0); x < G * len; x += get_local_size(0)) {
            const int r = x % len;
            const long h = g * G + x / len, i = c0 + r;
            lin_query(q, sq, b, i, h, scale, f);
            lin_read_state(f, ls, lin_pow(ll, r + 1), acc);
            for (int c = 0; c <= r; c++) {
                const float s = lin_dot(f, lk + c * DF, DF) * lin_pow(ll, r - c);
                for (int y = 0; y < WB; y++)
                    acc[y] += s * lv[c * WB + y];
            }
            lin_row_u(dout, sdo, b, i, h, eps, acc, u);
            global float *ur = u_all + ((b * Hkv * G + h) * S + i) * WB;
            for (int c = 0; c < WB; c++)
                ur[c] = u[c];
            lin_state_times_u(ls, u, lin_pow(ll, r + 1), df);
            for (int c = 0; c <= r; c++) {
                const float s = lin_dot(u, lv + c * WB, WB) * lin_pow(ll, r - c);
                for (int d = 0; d < DF; d++)
                    df[d] += s * lk[c * DF + d];
            }
            lin_store_dq(q, sq, dq, sdq, b, i, h, scale, df);
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
        lin_row_u(dout, sdo, b, i, h, eps, acc, u);
        global float *ur = u_all + ((b * Hkv * G + h) * S + i) * WB;
        for (int c = 0; c < WB; c++)
            ur[c] = u[c];
        lin_state_times_u(ls, u, 1.0f, df);
        lin_store_dq(q, sq, dq, sdq, b, i, h, scale, df);
    }
#endif
}

/* f (scaled phi(q)) and u of the chunk's rows, every head of the group, into local memory:
 * row r of head slot hh at lf[(hh * CHUNK + r) * DF], lu[(hh * CHUNK + r) * WB]. */
void lin_load_rows(ATTN_CPTR(DT_Q) q, long4 sq, global const float *u_all, long b, long g,
                   long G, long Hkv, long S, long c0, int len, float scale, local float *lf,
                   local float *lu)
{
    float f[DF];
    for (int x = get_local_id(0); x < G * len; x += get_local_size(0)) {
        const int r = x % len, hh = x / len;
        const long h = g * G + hh;
        lin_query(q, sq, b, c0 + r, h, scale, f);
        for (int d = 0; d < DF; d++)
            lf[(hh * CHUNK + r) * DF + d] = f[d];
        global const float *ur = u_all + ((b * Hkv * G + h) * S + c0 + r) * WB;
        for (int c = 0; c < WB; c++)
            lu[(hh * CHUNK + r) * WB + c] = ur[c];
    }
}

/* R = w R + sum over the chunk's rows r and heads of lambda^(r+1) f^T u (w = lambda^len;
 * without decay every weight is 1), one element per work-item. */
void lin_reverse_update(local float *lr, local const float *lf, local const float *lu,
                        long G, int len, float ll)
{
    const float wl = lin_pow(ll, len);
    float w[CHUNK]; /* the rows' weights, once per work-item rather than once per term */
    for (int r = 0; r < len; r++)
        w[r] = lin_pow(ll, r + 1);
    for (int e = get_local_id(0); e < DF * WB; e += get_local_size(0)) {
        const int d = e / WB, c = e % WB;
        float s = 0.0f;
        for (int hh = 0; hh < G; hh++)
            for (int r = 0; r < len; r++)
                s += w[r] * lf[(hh * CHUNK + r) * DF + d] * lu[(hh * CHUNK + r) * WB + c];
        lr[e] = wl * lr[e] + s;
    }
}

/* dk and dv of key j (raw k row x, phi(k) kf, v~ vt) from the carried R weighted by w, plus,
 * causal, the rows r >= c of its chunk (len rows in lf, lu). */
void lin_key_grads(const float *x, const float *kf, const float *vt, local const float *lr,
                   float w, local const float *lf, local const float *lu, long G, int c,
                   int len, float ll, float *dv, float *dphi, float *dk)
{
    for (int y = 0; y < DV; y++)
        dv[y] = 0.0f;
    for (int d = 0; d < DF; d++)
        for (int y = 0; y < DV; y++)
            dv[y] += kf[d] * lr[d * WB + y];
    for (int y = 0; y < DV; y++)
        dv[y] *= w;
    for (int d = 0; d < DF; d++)
        dphi[d] = w * lin_dot(vt, lr + d * WB, WB);
    for (int hh = 0; hh < G; hh++)
        for (int r = c; r < len; r++) {
            local const float *fr = lf + (hh * CHUNK + r) * DF, *ur = lu + (hh * CHUNK + r) * WB;
            const float lw = lin_pow(ll, r - c);
            const float a = lin_dot(kf, fr, DF) * lw, dw = lin_dot(vt, ur, WB) * lw;
            for (int y = 0; y < DV; y++)
                dv[y] += a * ur[y];
            for (int d = 0; d < DF; d++)
                dphi[d] += dw * fr[d];
        }
    lin_phi_vjp(x, dphi, dk);
}

/* One work-group per (batch, KV head) = group id b * Hkv + g. */
kernel void attn_linear_bwd_kv(ATTN_CPTR(DT_Q) q, ulong q_off, long4 sq,
                               ATTN_CPTR(DT_K) k, ulong k_off, long4 sk,
                               ATTN_CPTR(DT_V) v, ulong v_off, long4 sv,
                               global const float *u_all,
                               global const float *ds_out, ulong dso_off, long4 sdso,
                               global const float *dz_out, ulong dzo_off, long4 sdzo,
                               ATTN_PTR(DT_DK) dk, ulong dk_off, long4 sdk,
                               ATTN_PTR(DT_DV) dv, ulong dv_off, long4 sdv,
                               global float *ds_in, ulong dsi_off, long4 sdsi,
                               global float *dz_in, ulong dzi_off, long4 sdzi,
                               global const float *log_decay, long S, long Hkv, long G,
                               long shift, float scale, local float *lr, local float *lf,
                               local float *lu)
{
    q += q_off;
    k += k_off;
    v += v_off;
    dk += dk_off;
    dv += dv_off;
    const long g = get_group_id(0) % Hkv, b = get_group_id(0) / Hkv;
    const float ll = lin_log_decay(log_decay, g);
    for (int e = get_local_id(0); e < DF * WB; e += get_local_size(0)) {
        const int d = e / WB, c = e % WB;
        float x = 0.0f;
#if HAS_DSTATE_OUT
        if (c < DV)
            x = ds_out[dso_off + b * sdso.s0 + g * sdso.s1 + d * sdso.s2 + c * sdso.s3];
#endif
#if HAS_DZ_OUT
        if (c == DV)
            x = dz_out[dzo_off + b * sdzo.s0 + g * sdzo.s1 + d * sdzo.s2];
#endif
        lr[e] = x;
    }
    /* keys past the last position (j >= S - shift): seen by nothing */
    float x[DK], kf[DF], vt[WB], gv[DV], dphi[DF], gk[DK];
    for (int d = 0; d < DK; d++)
        gk[d] = 0.0f;
    for (int y = 0; y < DV; y++)
        gv[y] = 0.0f;
    for (long j = max(S - shift, 0L) + get_local_id(0); j < S; j += get_local_size(0)) {
        LIN_ROW_STORE(DT_DK, dk, sdk, b, j, g, DK, gk);
        LIN_ROW_STORE(DT_DV, dv, sdv, b, j, g, DV, gv);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const long last = S > 0 ? (S - 1) / CHUNK * CHUNK : 0;
#if !CAUSAL
    for (long c0 = last; c0 >= 0 && S > 0; c0 -= CHUNK) {
        const int len = (int)min((long)CHUNK, S - c0);
        lin_load_rows(q, sq, u_all, b, g, G, Hkv, S, c0, len, scale, lf, lu);
        barrier(CLK_LOCAL_MEM_FENCE);
        lin_reverse_update(lr, lf, lu, G, len, ll);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#endif
    for (long c0 = last; c0 >= 0 && S > 0; c0 -= CHUNK) {
        const int len = (int)min((long)CHUNK, S - c0);
#if CAUSAL
        lin_load_rows(q, sq, u_all, b, g, G, Hkv, S, c0, len, scale, lf, lu);
        barrier(CLK_LOCAL_MEM_FENCE);
#endif
        for (int c = get_local_id(0); c < len; c += get_local_size(0)) {
            const long j = c0 + c - shift;
            if (j < 0)
                continue;
            LIN_ROW(DT_K, k, sk, b, j, g, DK, x);
            lin_phi(x, kf);
            LIN_ROW(DT_V, v, sv, b, j, g, DV, vt);
#if NORMALIZE
            vt[DV] = 1.0f;
#endif
#if CAUSAL
            lin_key_grads(x, kf, vt, lr, lin_pow(ll, len - 1 - c), lf, lu, G, c, len, ll, gv,
                          dphi, gk);
#else
            lin_key_grads(x, kf, vt, lr, 1.0f, lf, lu, G, len, len, ll, gv, dphi, gk);
#endif
            LIN_ROW_STORE(DT_DK, dk, sdk, b, j, g, DK, gk);
            LIN_ROW_STORE(DT_DV, dv, sdv, b, j, g, DV, gv);
        }
#if CAUSAL
        barrier(CLK_LOCAL_MEM_FENCE);
        lin_reverse_update(lr, lf, lu, G, len, ll);
        barrier(CLK_LOCAL_MEM_FENCE);
#endif
    }
    for (int e = get_local_id(0); e < DF * WB; e += get_local_size(0)) {
        const int d = e / WB, c = e % WB;
#if HAS_DSTATE_IN
        if (c < DV)
            ds_in[dsi_off + b * sdsi.s0 + g * sdsi.s1 + d * sdsi.s2 + c * sdsi.s3] = lr[e];
#endif
#if HAS_DZ_IN
        if (c == DV)
            dz_in[dzi_off + b * sdzi.s0 + g * sdzi.s1 + d * sdzi.s2] = lr[e];
#endif
    }
}
