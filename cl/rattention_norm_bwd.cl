/* rattention_norm_bwd.cl - RATTENTION backward's own kernels (docs/ops/rattention.md,
 * "Backward"); the window's softmax and the residual branch go back through the sdpa and
 * linear backward kernels, these do the rest:
 *   attn_ratt_norm_bwd  per (token, query head), both GroupRMSNorms backward: with
 *                       r = 1 / sqrt(mean(x^2) + eps), dx = r gamma dO - x r^3 (sum gamma dO x)
 *                       / DV for x = a (the window's result) and x = b (the residual one), into
 *                       f32 scratch, and each row's r kept for the gains;
 *   attn_ratt_dgamma    per (query head, channel) of each gain: sum over batch and rows of
 *                       dO x r, in row order (one writer per element, no atomics);
 *   attn_ratt_dq_sum,   the gradients of q and k: the window's, taken on the rotated vectors,
 *   attn_ratt_dk_sum    rotated back (RoPE by minus the position: the transposed rotation),
 *                       plus the residual branch's, stored once in the gradient's dtype;
 *   attn_ratt_dv_sum    the gradient of v: both branches' summed and stored.
 * Angles as cl/rope_apply.cl (64-bit fixed-point turns). Strict IEEE math. */
#ifndef ATTN_COMMON_CL
#include "common.cl"
#endif

#ifndef INTERLEAVED
#define INTERLEAVED 1  /* RoPE pairs: 1 (2i, 2i + 1); 0 (i, i + DK/2) */
#endif
#ifndef HAS_DGS
#define HAS_DGS 0      /* grads.dgamma_swa asked for */
#endif
#ifndef HAS_DGR
#define HAS_DGR 0      /* grads.dgamma_rla asked for */
#endif

#define NPAIRS (DK / 2)

/* Element [i0, i1, i2, i3] of a view with element strides st. */
#define RATT_AT(st, i0, i1, i2, i3) ((i0) * (st).s0 + (i1) * (st).s1 + (i2) * (st).s2 + (i3) * (st).s3)
/* gamma[h, c] of an optional f32 [1, 1, Hq, DV] view (1 when absent). */
#define RATT_GAMMA(has, g, off, st, h, c) ((has) ? (g)[(off) + (h) * (st).s2 + (c) * (st).s3] : 1.0f)

/* One norm's backward on row x (DV values) given dO at do_at (step do_step): dx into dx, and
 * r returned. */
float ratt_norm_vjp(const global float *x, ATTN_CPTR(DT_DO) dout, long do_at, long do_step,
                    int has_g, const global float *g, ulong g_off, long4 g_st, long h,
                    float eps, global float *dx)
{
    float ss = 0.0f, dot = 0.0f;
    for (int c = 0; c < DV; c++) {
        const float gd = RATT_GAMMA(has_g, g, g_off, g_st, h, c) *
                         ATTN_LOAD(DT_DO, dout, do_at + c * do_step);
        ss += x[c] * x[c];
        dot += gd * x[c];
    }
    const float r = 1.0f / sqrt(ss / (float)DV + eps), k = r * r * r * dot / (float)DV;
    for (int c = 0; c < DV; c++) {
        const float gd = RATT_GAMMA(has_g, g, g_off, g_st, h, c) *
                         ATTN_LOAD(DT_DO, dout, do_at + c * do_step);
        dx[c] = r * gd - x[c] * k;
    }
    return r;
}

/* One work-item per row r = (b * S + i) * Hq + h of the compact f32 branch results a, b
 * [B][S][Hq][DV] (a unused without HAS_SWA): da, db the same shape, rn [rows][2] the rows'
 * r(a), r(b). */
kernel void attn_ratt_norm_bwd(global const float *a, global const float *b,
                               ATTN_CPTR(DT_DO) dout, ulong do_off, long4 do_st,
                               global const float *gs, ulong gs_off, long4 gs_st,
                               global const float *gr, ulong gr_off, long4 gr_st,
                               global float *da, global float *db, global float *rn, long S,
                               long Hq, long nrows, float eps)
{
    const long r = get_global_id(0);
    if (r >= nrows)
        return;
    const long h = r % Hq, i = r / Hq % S, bb = r / Hq / S;
    const long at = do_off + RATT_AT(do_st, bb, i, h, 0);
#if HAS_SWA
    rn[2 * r] = ratt_norm_vjp(a + r * DV, dout, at, do_st.s3, HAS_GS, gs, gs_off, gs_st, h, eps,
                              da + r * DV);
#else
    rn[2 * r] = 0.0f;
#endif
    rn[2 * r + 1] = ratt_norm_vjp(b + r * DV, dout, at, do_st.s3, HAS_GR, gr, gr_off, gr_st, h,
                                  eps, db + r * DV);
}

/* Work-item y < 2 Hq DV: gain `br` = y / (Hq DV) (0: gamma_swa from a, 1: gamma_rla from b),
 * element (h, c): sum over b and i of dO x r, rows in order. The window's gain gets 0 without
 * HAS_SWA; a gain not asked for is skipped. */
kernel void attn_ratt_dgamma(global const float *a, global const float *b,
                             ATTN_CPTR(DT_DO) dout, ulong do_off, long4 do_st,
                             global const float *rn, global float *dgs, ulong dgs_off,
                             long4 dgs_st, global float *dgr, ulong dgr_off, long4 dgr_st,
                             long B, long S, long Hq)
{
    const long y = get_global_id(0);
    if (y >= 2 * Hq * DV)
        return;
    const int br = (int)(y / (Hq * DV));
    const long h = y / DV % Hq;
    const int c = (int)(y % DV);
    if (br == 0 ? !HAS_DGS : !HAS_DGR)
        return;
    const global float *x = br == 0 ? a : b;
    float acc = 0.0f;
    if (br == 1 || HAS_SWA)
        for (long bb = 0; bb < B; bb++)
            for (long i = 0; i < S; i++) {
                const long r = (bb * S + i) * Hq + h;
                acc += ATTN_LOAD(DT_DO, dout, do_off + RATT_AT(do_st, bb, i, h, c)) *
                       x[r * DV + c] * rn[2 * r + br];
            }
    if (br == 0)
        dgs[dgs_off + h * dgs_st.s2 + c * dgs_st.s3] = acc;
    else
        dgr[dgr_off + h * dgr_st.s2 + c * dgr_st.s3] = acc;
}

/* Features of RoPE pair i. */
#if INTERLEAVED
#define RATT_PA(i) (2 * (i))
#define RATT_PC(i) ((2 * (i)) + 1)
#else
#define RATT_PA(i) (i)
#define RATT_PC(i) ((i) + NPAIRS)
#endif

/* Pair i of row `row` ([B][S][H] order) of the compact f32 gradients: the window's (t, on the
 * rotated vector, with HAS_SWA) rotated back by pos = offset + s, plus the residual
 * branch's (l). */
float2 ratt_grad_pair(global const float *t, global const float *l, global const ulong *turns,
                      long offset, long row, int i, long S, long H)
{
    const long at = row * DK;
    float2 y = (float2)(l[at + RATT_PA(i)], l[at + RATT_PC(i)]);
#if HAS_SWA
    const long s = row / H % S;
    const ulong frac = ((ulong)offset + (ulong)s) * turns[i];
    const float half_turns = convert_float((long)frac) * 0x1p-63f;
    const float cs = cospi(half_turns), sn = sinpi(half_turns);
    const float ta = t[at + RATT_PA(i)], tc = t[at + RATT_PC(i)];
    y += (float2)(ta * cs + tc * sn, tc * cs - ta * sn);
#endif
    return y;
}

/* Work-item id < nrows NPAIRS: pair id % NPAIRS of row id / NPAIRS ([B][S][H]) into the
 * gradient view o of dtype DT. */
#define RATT_ROPE_GRAD_KERNEL(name, DT)                                                        \
    kernel void name(global const float *t, global const float *l,                             \
                     global const ulong *turns, ATTN_PTR(DT) o, ulong o_off, long4 o_st,       \
                     long offset, long S, long H, long total)                                  \
    {                                                                                          \
        const long id = get_global_id(0);                                                      \
        if (id >= total)                                                                       \
            return;                                                                            \
        const long row = id / NPAIRS, h = row % H, s = row / H % S, bb = row / H / S;          \
        const int i = (int)(id % NPAIRS);                                                      \
        const float2 y = ratt_grad_pair(t, l, turns, offset, row, i, S, H);                    \
        const long at = o_off + RATT_AT(o_st, bb, s, h, 0);                                    \
        ATTN_STORE(DT, o, at + RATT_PA(i) * o_st.s3, y.s0);                                    \
        ATTN_STORE(DT, o, at + RATT_PC(i) * o_st.s3, y.s1);                                    \
    }

RATT_ROPE_GRAD_KERNEL(attn_ratt_dq_sum, DT_DQ)
RATT_ROPE_GRAD_KERNEL(attn_ratt_dk_sum, DT_DK)

/* Work-item id < B S Hkv DV: element id of the compact f32 dv of both branches (t only with
 * HAS_SWA), summed into the view o. */
kernel void attn_ratt_dv_sum(global const float *t, global const float *l, ATTN_PTR(DT_DV) o,
                             ulong o_off, long4 o_st, long S, long Hkv, long total)
{
    const long id = get_global_id(0);
    if (id >= total)
        return;
    const long c = id % DV, row = id / DV, g = row % Hkv, s = row / Hkv % S, bb = row / Hkv / S;
#if HAS_SWA
    const float y = t[id] + l[id];
#else
    const float y = l[id];
#endif
    ATTN_STORE(DT_DV, o, o_off + RATT_AT(o_st, bb, s, g, c), y);
}
