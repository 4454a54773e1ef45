/* rattention_attn.cl - RATTENTION's own kernels (docs/ops/rattention.md):
 *   attn_ratt_rla_*   the forward's residual branch, chunked over keys for runtimes that like
 *                     independent work-items with private register tiles (PoCL): phi(q), phi(k)
 *                     and the values to f32 scratch (prep); the state from S0 through the keys
 *                     in order, saved before every chunk, and state_out (state); the rows
 *                     o_i = phi(q_i) S_c + sum_{j = cL}^{i - shift} (phi(q_i).phi(k_j)) v_j
 *                     with c the chunk of key i - shift (rows);
 *   attn_ratt_norm    the forward's last step: per (token, query head) the GroupRMSNorm of each
 *                     branch's f32 result with its gamma, summed and stored in out's dtype;
 *   attn_ratt_decode  the decode step over the ring cache: one work-group per (batch, KV head)
 *                     walks the call's tokens in order; per token it folds the token leaving the
 *                     ring into the f32 state (work-items own state columns, no atomics),
 *                     writes (k_t, v_t) into slot t mod (w + 1), attends over the window with
 *                     RoPE applied at attention time (keys are stored un-rotated; each key is
 *                     rotated once per call into scratch), reads phi(q) S, and stores the sum
 *                     of the two norms;
 *   attn_ratt_angles  the decode call's RoPE (cos, sin) table, once for all work-groups.
 * Per-token vectors shared by a decode work-group live in global scratch (no local-memory
 * limits on the group size or head dims), ordered by barriers with CLK_GLOBAL_MEM_FENCE.
 * Reductions run in a fixed order. Strict IEEE math. */
#ifndef ATTN_COMMON_CL
#include "common.cl"
#endif

#ifndef FEATURE
#define FEATURE 5      /* attn_linear_feature: 5 softmax-pair, 6 relu-pair */
#endif
#ifndef INTERLEAVED
#define INTERLEAVED 1  /* RoPE pairs: 1 (2i, 2i + 1); 0 (i, i + DK/2) */
#endif
#ifndef DT_KR
#define DT_KR 0        /* ring dtypes */
#endif
#ifndef DT_VR
#define DT_VR 0
#endif
#ifndef CHUNK
#define CHUNK 64       /* residual branch: keys per chunk (a multiple of BR) */
#endif
#ifndef BR
#define BR 4           /* residual branch: rows per work-item */
#endif
#define DVP ((DV + 7) / 8 * 8) /* value columns of the f32 scratch, padded for float8 */
#define NV (DVP / 8)

#define DF (2 * DK)
#define NPAIRS (DK / 2)

/* Element [i0, i1, i2, i3] of a view with element strides st. */
#define RATT_AT(st, i0, i1, i2, i3) ((i0) * (st).s0 + (i1) * (st).s1 + (i2) * (st).s2 + (i3) * (st).s3)

/* ---- GroupRMSNorm (both forms) ---- */

/* 1 / sqrt(mean(x^2) + eps) over the DV values of one head. */
float ratt_rms_scale(const global float *x, float eps)
{
    float ss = 0.0f;
    for (int c = 0; c < DV; c++)
        ss += x[c] * x[c];
    return 1.0f / sqrt(ss / (float)DV + eps);
}

/* gamma[h, c] of an optional f32 [1, 1, Hq, DV] view (1 when absent). */
#define RATT_GAMMA(has, g, off, st, h, c) ((has) ? (g)[(off) + (h) * (st).s2 + (c) * (st).s3] : 1.0f)

/* out[c] = (x_swa[c] r_swa) g_swa[c] + (x_rla[c] r_rla) g_rla[c], stored at element
 * o_at + c * o_step (the SWA term only with HAS_SWA). */
void ratt_norm_store(const global float *xs, float rs, const global float *xr, float rr,
                     const global float *gs, ulong gs_off, long4 gs_st,
                     const global float *gr, ulong gr_off, long4 gr_st, long h,
                     ATTN_PTR(DT_O) o, long o_at, long o_step)
{
    for (int c = 0; c < DV; c++) {
        float y = 0.0f;
#if HAS_SWA
        y += xs[c] * rs * RATT_GAMMA(HAS_GS, gs, gs_off, gs_st, h, c);
#endif
        y += xr[c] * rr * RATT_GAMMA(HAS_GR, gr, gr_off, gr_st, h, c);
        ATTN_STORE(DT_O, o, o_at + c * o_step, y);
    }
}

/* The forward's norms: one work-item per row r = (b * S + i) * Hq + h of the compact f32
 * branch results swa, rla [B][S][Hq][DV] (swa unused without HAS_SWA). */
kernel void attn_ratt_norm(global const float *swa, global const float *rla,
                           global const float *gs, ulong gs_off, long4 gs_st,
                           global const float *gr, ulong gr_off, long4 gr_st,
                           ATTN_PTR(DT_O) o, ulong o_off, long4 o_st,
                           long S, long Hq, long nrows, float eps)
{
    const long r = get_global_id(0);
    if (r >= nrows)
        return;
    const long h = r % Hq, i = r / Hq % S, b = r / Hq / S;
    const global float *xs = swa + r * DV, *xr = rla + r * DV;
#if HAS_SWA
    const float rs = ratt_rms_scale(xs, eps);
#else
    const float rs = 0.0f;
#endif
    ratt_norm_store(xs, rs, xr, ratt_rms_scale(xr, eps), gs, gs_off, gs_st, gr, gr_off, gr_st,
                    h, o, o_off + RATT_AT(o_st, b, i, h, 0), o_st.s3);
}

/* ---- the decode step ---- */

/* phi(x) of reference/linear_feature.c (the paired maps) into y[0..DF): softmax of sign * x,
 * max-subtracted (a NaN makes the half NaN). 8 features at a time when DK allows (vector exp;
 * the sum in a fixed order of 8 lanes). */
#if DK % 8 == 0
void ratt_softmax_half(const float *x, float sign, global float *y)
{
    float8 m8 = -INFINITY, l8 = 0.0f;
    int nan = 0;
    for (int d = 0; d < DK; d += 8) {
        const float8 v = sign * vload8(0, x + d);
        m8 = fmax(m8, v);
        nan |= any(isnan(v));
    }
    const float m = nan ? NAN : attn_hmax8(m8);
    for (int d = 0; d < DK; d += 8) {
        const float8 e = exp(sign * vload8(0, x + d) - m);
        vstore8(e, 0, y + d);
        l8 += e;
    }
    const float l = attn_hsum8(l8);
    for (int d = 0; d < DK; d += 8)
        vstore8(vload8(0, y + d) / l, 0, y + d);
}
#else
void ratt_softmax_half(const float *x, float sign, global float *y)
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
#endif

float ratt_relu(float x)
{
    return x > 0.0f || isnan(x) ? x : 0.0f;
}

void ratt_phi(const float *x, global float *y)
{
#if FEATURE == 5
    ratt_softmax_half(x, 1.0f, y);
    ratt_softmax_half(x, -1.0f, y + DK);
#else
    for (int d = 0; d < DK; d++) {
        y[d] = ratt_relu(x[d]);
        y[DK + d] = ratt_relu(-x[d]);
    }
#endif
}

/* Features of RoPE pair i. */
#if INTERLEAVED
#define RATT_PA(i) (2 * (i))
#define RATT_PC(i) (2 * (i) + 1)
#else
#define RATT_PA(i) (i)
#define RATT_PC(i) ((i) + NPAIRS)
#endif

/* Work-item j * NPAIRS + i: (cos, sin) of pair i's angle at position p0 + j (64-bit
 * fixed-point turns, as cl/rope_apply.cl: the fractional turn wraps exactly at any
 * position), the table every decode work-group rotates with. */
kernel void attn_ratt_angles(global const ulong *turns, global float2 *cs, long p0, long n)
{
    const long id = get_global_id(0);
    if (id >= n * NPAIRS)
        return;
    const ulong frac = (ulong)(p0 + id / NPAIRS) * turns[id % NPAIRS];
    const float half_turns = convert_float((long)frac) * 0x1p-63f;
    cs[id] = (float2)(cospi(half_turns), sinpi(half_turns));
}

/* Pair (xa, xc) rotated by the angle whose (cos, sin) is a. */
float2 ratt_rotate(float xa, float xc, float2 a)
{
    return (float2)(xa * a.s0 - xc * a.s1, xc * a.s0 + xa * a.s1);
}

/* Key of ring slot `slot` (as stored) rotated by the angles of row `row` of the table into
 * krow[0..DK), pairs strided over the work-items. */
void ratt_rotate_key(ATTN_PTR(DT_KR) kr, long kr_at, long4 skr, long slot,
                     global const float2 *cs, global float *krow, int lid, int lsz)
{
    for (int i = lid; i < NPAIRS; i += lsz) {
        const long at = kr_at + slot * skr.s1;
        const float2 y = ratt_rotate(ATTN_LOAD(DT_KR, kr, at + RATT_PA(i) * skr.s3),
                                     ATTN_LOAD(DT_KR, kr, at + RATT_PC(i) * skr.s3), cs[i]);
        krow[RATT_PA(i)] = y.s0;
        krow[RATT_PC(i)] = y.s1;
    }
}

/* Work-group (b, g) = (group / Hkv, group % Hkv). Scratch of the group (floats):
 *   phk[DF] phi of the key folded in; fq[G][DF] phi(q); rq[G][DK] RoPE(q); sc[G][ns] scores,
 *   then probabilities; osw[G][DV], orl[G][DV] the branches; rn[3 G] softmax sums and the
 *   two norms' scales;
 * krot[ns][DK]: the rotated key of each slot (ns = slots seen by the call, min(w+1, pos+T)).
 * Token j (query or key) rotates with row j - j0 of the angle table cs (j0: the oldest token
 * the call's window reaches). */
kernel void attn_ratt_decode(ATTN_CPTR(DT_Q) q, ulong q_off, long4 sq,
                             ATTN_CPTR(DT_K) k, ulong k_off, long4 sk,
                             ATTN_CPTR(DT_V) v, ulong v_off, long4 sv,
                             ATTN_PTR(DT_O) o, ulong o_off, long4 so,
                             ATTN_PTR(DT_KR) kr, ulong kr_off, long4 skr,
                             ATTN_PTR(DT_VR) vr, ulong vr_off, long4 svr,
                             global float *st, ulong st_off, long4 sst,
                             global const float *gs, ulong gs_off, long4 gs_st,
                             global const float *gr, ulong gr_off, long4 gr_st,
                             global const float2 *cs, global float *scratch,
                             global float *krot, long T, long Hkv, long G, long pos,
                             long slots, long ns, long j0, float scale, float eps)
{
    const long grp = get_group_id(0), g = grp % Hkv, b = grp / Hkv;
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    global float *phk = scratch + grp * (DF + G * (DF + DK + ns + 2 * DV + 3));
    global float *fq = phk + DF, *rq = fq + G * DF, *sc = rq + G * DK, *osw = sc + G * ns;
    global float *orl = osw + G * DV, *rn = orl + G * DV;
    global float *kro = krot + grp * ns * DK;
    global float *S = st + st_off + b * sst.s0 + g * sst.s1;
    const long kr_at = kr_off + b * skr.s0 + g * skr.s2, vr_at = vr_off + b * svr.s0 + g * svr.s2;
    float x[DK];
#if HAS_SWA
    /* the window's keys already in the ring, rotated once for the whole call */
    for (long j = j0; j < pos; j++)
        ratt_rotate_key(kr, kr_at, skr, j % slots, cs + (j - j0) * NPAIRS,
                        kro + j % slots * DK, lid, lsz);
#endif
    for (long s = 0; s < T; s++) {
        const long t = pos + s;
        /* 1. phi(q) of every head of the group and phi of the key leaving the ring (w = -1: the
         * token itself) */
        const int fold = slots == 0 || t >= slots;
        for (long y = lid; y <= G; y += lsz) {
            if (y < G) {
                const long at = q_off + RATT_AT(sq, b, s, g * G + y, 0);
                for (int d = 0; d < DK; d++)
                    x[d] = ATTN_LOAD(DT_Q, q, at + d * sq.s3);
                ratt_phi(x, fq + y * DF);
            } else if (fold) {
                for (int d = 0; d < DK; d++)
                    x[d] = slots ? ATTN_LOAD(DT_KR, kr, kr_at + t % slots * skr.s1 + d * skr.s3)
                                 : ATTN_LOAD(DT_K, k, k_off + RATT_AT(sk, b, s, g, d));
                ratt_phi(x, phk);
            }
        }
#if HAS_SWA
        for (long y = lid; y < G * NPAIRS; y += lsz) {
            const long h = y / NPAIRS;
            const int i = (int)(y % NPAIRS);
            const long at = q_off + RATT_AT(sq, b, s, g * G + h, 0);
            const float2 r = ratt_rotate(ATTN_LOAD(DT_Q, q, at + RATT_PA(i) * sq.s3),
                                         ATTN_LOAD(DT_Q, q, at + RATT_PC(i) * sq.s3),
                                         cs[(t - j0) * NPAIRS + i]);
            rq[h * DK + RATT_PA(i)] = r.s0;
            rq[h * DK + RATT_PC(i)] = r.s1;
        }
#endif
        barrier(CLK_GLOBAL_MEM_FENCE);
        /* 2. S += phi(k_e)^T v_e, one state column per work-item */
        if (fold)
            for (int c = lid; c < DV; c += lsz) {
                const float vc = slots ? ATTN_LOAD(DT_VR, vr, vr_at + t % slots * svr.s1 +
                                                                  c * svr.s3)
                                       : ATTN_LOAD(DT_V, v, v_off + RATT_AT(sv, b, s, g, c));
                for (int f = 0; f < DF; f++) {
                    global float *e = S + f * sst.s2 + c * sst.s3;
                    *e = *e + phk[f] * vc;
                }
            }
        barrier(CLK_GLOBAL_MEM_FENCE); /* the evicted slot is read before it is overwritten */
#if HAS_SWA
        /* 3. (k_t, v_t) into slot t mod (w + 1), rounded to the ring's dtypes */
        const long slot = t % slots, lo = t >= slots ? t - slots + 1 : 0, n = t - lo + 1;
        for (int y = lid; y < DK + DV; y += lsz) {
            if (y < DK)
                ATTN_STORE(DT_KR, kr, kr_at + slot * skr.s1 + y * skr.s3,
                           ATTN_LOAD(DT_K, k, k_off + RATT_AT(sk, b, s, g, y)));
            else
                ATTN_STORE(DT_VR, vr, vr_at + slot * svr.s1 + (y - DK) * svr.s3,
                           ATTN_LOAD(DT_V, v, v_off + RATT_AT(sv, b, s, g, y - DK)));
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
        ratt_rotate_key(kr, kr_at, skr, slot, cs + (t - j0) * NPAIRS, kro + slot * DK, lid,
                        lsz);
        barrier(CLK_GLOBAL_MEM_FENCE);
        /* 4. scores of the window's keys lo .. t, one key per work-item for all heads */
        for (long y = lid; y < n; y += lsz) {
            const global float *kk = kro + (lo + y) % slots * DK;
            for (long h = 0; h < G; h++) {
                float acc = 0.0f;
                for (int d = 0; d < DK; d++)
                    acc += rq[h * DK + d] * kk[d];
                sc[h * ns + y] = scale * acc;
            }
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
        /* 5. softmax per head: probabilities in place, their sum in rn[h] */
        for (long h = lid; h < G; h += lsz) {
            global float *p = sc + h * ns;
            float m = -INFINITY, l = 0.0f;
            for (long y = 0; y < n; y++)
                m = p[y] > m || isnan(p[y]) ? p[y] : m;
            for (long y = 0; y < n; y++) {
                p[y] = exp(p[y] - m);
                l += p[y];
            }
            rn[h] = l;
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
#endif
        /* 6. o_swa = P V / l and o_rla = phi(q) S, one value column per work-item */
        for (long y = lid; y < G * DV; y += lsz) {
            const long h = y / DV;
            const int c = (int)(y % DV);
#if HAS_SWA
            float acc = 0.0f;
            for (long j = 0; j < n; j++)
                acc += sc[h * ns + j] *
                       ATTN_LOAD(DT_VR, vr, vr_at + (lo + j) % slots * svr.s1 + c * svr.s3);
            osw[h * DV + c] = acc / rn[h];
#endif
            float r = 0.0f;
            for (int f = 0; f < DF; f++)
                r += fq[h * DF + f] * S[f * sst.s2 + c * sst.s3];
            orl[h * DV + c] = r;
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
        /* 7. the norms' scales, then the sum of the norms stored */
        for (long y = lid; y < 2 * G; y += lsz)
            if (HAS_SWA || y >= G)
                rn[G + y] = ratt_rms_scale(y < G ? osw + y * DV : orl + (y - G) * DV, eps);
        barrier(CLK_GLOBAL_MEM_FENCE);
        for (long h = lid; h < G; h += lsz)
            ratt_norm_store(osw + h * DV, rn[G + h], orl + h * DV, rn[2 * G + h], gs, gs_off,
                            gs_st, gr, gr_off, gr_st, g * G + h, o,
                            o_off + RATT_AT(so, b, s, g * G + h, 0), so.s3);
        barrier(CLK_GLOBAL_MEM_FENCE);
    }
}

/* ---- the forward's residual branch ---- */

/* Work-item (b, i, y): y < Hq: phi(q[b, i, y]) into fq [B][S][Hq][DF]; else KV head
 * g = y - Hq: phi(k[b, i, g]) into fk [B][S][Hkv][DF] and v[b, i, g] into vv [B][S][Hkv][DVP]
 * (zero padded). */
kernel void attn_ratt_rla_prep(ATTN_CPTR(DT_Q) q, ulong q_off, long4 sq,
                               ATTN_CPTR(DT_K) k, ulong k_off, long4 sk,
                               ATTN_CPTR(DT_V) v, ulong v_off, long4 sv,
                               global float *fq, global float *fk, global float *vv, long S,
                               long Hq, long Hkv, long total)
{
    const long id = get_global_id(0);
    if (id >= total)
        return;
    const long y = id % (Hq + Hkv), bi = id / (Hq + Hkv), b = bi / S, i = bi % S;
    float x[DK];
    if (y < Hq) {
        for (int d = 0; d < DK; d++)
            x[d] = ATTN_LOAD(DT_Q, q, q_off + RATT_AT(sq, b, i, y, d));
        ratt_phi(x, fq + (bi * Hq + y) * DF);
        return;
    }
    const long g = y - Hq, row = bi * Hkv + g;
    for (int d = 0; d < DK; d++)
        x[d] = ATTN_LOAD(DT_K, k, k_off + RATT_AT(sk, b, i, g, d));
    ratt_phi(x, fk + row * DF);
    for (int c = 0; c < DVP; c++)
        vv[row * DVP + c] = c < DV ? ATTN_LOAD(DT_V, v, v_off + RATT_AT(sv, b, i, g, c)) : 0.0f;
}

/* Features per work-item of attn_ratt_rla_state (DF = 2 DK is a multiple of 4). */
#if DF % 8 == 0
#define RF 8
#else
#define RF 4
#endif

/* Work-item (b * Hkv + g) * (DF / RF) + fb: features RF fb .. RF fb + RF - 1 of the state,
 * from S0 (state_in, else 0) through the nk keys in order (S += phi(k_j)^T v_j, as the
 * reference folds them), stored before each chunk of CHUNK keys into slot c of
 * sx [B][Hkv][nc + 1][DF][DVP] and after the last one into slot nc (and state_out). The
 * running state lives in the slots: per chunk and block of 8 columns, RF vectors in registers
 * walk the chunk's keys. */
kernel void attn_ratt_rla_state(global const float *fk, global const float *vv,
                                global float *sx, global const float *s_in, ulong si_off,
                                long4 ssi, global float *s_out, ulong so_off, long4 sso, long S,
                                long Hkv, long nk, long nc, long total)
{
    const long id = get_global_id(0);
    if (id >= total)
        return;
    const long fb = id % (DF / RF), bg = id / (DF / RF), b = bg / Hkv, g = bg % Hkv;
    global float *base = sx + (bg * (nc + 1) * DF + RF * fb) * DVP;
    for (int r = 0; r < RF; r++)
        for (int col = 0; col < DVP; col++) {
#if HAS_STATE_IN
            base[r * DVP + col] =
                col < DV ? s_in[si_off + RATT_AT(ssi, b, g, RF * fb + r, col)] : 0.0f;
#else
            base[r * DVP + col] = 0.0f;
#endif
        }
    for (long c = 0; c < nc; c++) {
        const global float *src = base + c * DF * DVP;
        global float *dst = base + (c + 1) * DF * DVP;
        const long j0 = c * CHUNK, j1 = min(j0 + CHUNK, nk);
        for (int x = 0; x < NV; x++) {
            float8 acc[RF];
            for (int r = 0; r < RF; r++)
                acc[r] = vload8(x, src + r * DVP);
            for (long j = j0; j < j1; j++) {
                const long row = (b * S + j) * Hkv + g;
                const global float *kf = fk + row * DF + RF * fb;
                const float8 w = vload8(x, vv + row * DVP);
                for (int r = 0; r < RF; r++)
                    acc[r] += kf[r] * w;
            }
            for (int r = 0; r < RF; r++)
                vstore8(acc[r], x, dst + r * DVP);
        }
    }
#if HAS_STATE_OUT
    const global float *last = base + nc * DF * DVP;
    for (int r = 0; r < RF; r++)
        for (int col = 0; col < DV; col++)
            s_out[so_off + RATT_AT(sso, b, g, RF * fb + r, col)] = last[r * DVP + col];
#endif
}

/* Work-item ((b * Hq + h) * nb + kb - kb0): BR rows of query head h whose newest key
 * e = i - shift lies in [kb BR - pad, kb BR - pad + BR) (pad: shift rounded up to CHUNK, so
 * every row of the block has the same chunk, or all have no key: e < 0 reads S0 alone). Into
 * rla [B][S][Hq][DV]: per block of 8 columns, BR vectors in registers take phi(q) S_c, then
 * the chunk's keys weighted by the scores computed first. */
kernel void attn_ratt_rla_rows(global const float *fq, global const float *fk,
                               global const float *vv, global const float *sx,
                               global float *rla, long S, long Hq, long Hkv, long G, long shift,
                               long nc, long kb0, long nb, long pad, long total)
{
    const long id = get_global_id(0);
    if (id >= total)
        return;
    const long kb = kb0 + id % nb, h = id / nb % Hq, b = id / nb / Hq, bg = b * Hkv + h / G;
    const long e0 = kb * BR - pad, c = e0 >= 0 ? e0 / CHUNK : 0;
    if (e0 + shift >= S || e0 + BR + shift <= 0) /* no row of the call */
        return;
    const global float *st = sx + (bg * (nc + 1) + c) * DF * DVP;
    const global float *fr[BR];
    int live[BR];
    for (int r = 0; r < BR; r++) {
        const long i = e0 + r + shift;
        live[r] = i >= 0 && i < S;
        fr[r] = fq + ((b * S + (live[r] ? i : 0)) * Hq + h) * DF;
    }
    /* scores of the chunk's keys up to each row's newest (hidden keys are never added) */
    const long j0 = c * CHUNK, nj = e0 >= 0 ? min(e0 + BR, S - shift) - j0 : 0;
    float sc[BR][CHUNK];
    for (long j = 0; j < nj; j++) {
        const global float *kf = fk + ((b * S + j0 + j) * Hkv + h / G) * DF;
        for (int r = 0; r < BR; r++) {
            float4 s4 = 0.0f; /* DF = 2 DK is a multiple of 4 */
            if (live[r] && j0 + j <= e0 + r)
                for (int f = 0; f < DF / 4; f++)
                    s4 += vload4(f, fr[r]) * vload4(f, kf);
            sc[r][j] = attn_hsum4(s4);
        }
    }
    for (int x = 0; x < NV; x++) {
        float8 acc[BR];
        for (int r = 0; r < BR; r++)
            acc[r] = 0.0f;
        for (int f = 0; f < DF; f++) {
            const float8 w = vload8(x, st + f * DVP);
            for (int r = 0; r < BR; r++)
                acc[r] += fr[r][f] * w;
        }
        for (long j = 0; j < nj; j++) { /* rows r >= j0 + j - e0 see key j0 + j */
            const float8 w = vload8(x, vv + ((b * S + j0 + j) * Hkv + h / G) * DVP);
            for (int r = (int)max(0L, j0 + j - e0); r < BR; r++)
                acc[r] += sc[r][j] * w;
        }
        for (int r = 0; r < BR; r++) {
            if (!live[r])
                continue;
            global float *o = rla + ((b * S + e0 + r + shift) * Hq + h) * DV + 8 * x;
            float t[8];
            vstore8(acc[r], 0, t);
            for (int y = 0; y < 8 && 8 * x + y < DV; y++)
                o[y] = t[y];
        }
    }
}
