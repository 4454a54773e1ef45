/* rope_apply.cl - rotary position embedding (docs/ops/rope.md). Work-item (j, row) of a 2-D
 * range handles feature slot j of row (b, s) = (row / S, row % S) for every head: slots
 * j < NPAIRS are the rotated pairs, the others copy feature rot + (j - npairs). The angle
 * never exists as a large float: the host gives each pair its frequency in turns as a 64-bit
 * fixed-point fraction (turns[i] = freq_i / 2pi * 2^64), so pos * turns[i] wraps modulo 2^64
 * to the exact fractional turn (integer arithmetic, any position), whose top bits as a float
 * in [-1, 1) feed sinpi/cospi: the angle error is about pi 2^-25 at every position. */
#ifndef ATTN_COMMON_CL
#include "common.cl"
#endif

#ifndef DT_X
#define DT_X ATTN_DT_F32
#endif
#ifndef INTERLEAVED
#define INTERLEAVED 0 /* 0: pairs (i, i + rot/2); 1: pairs (2i, 2i + 1) */
#endif
#ifndef POS_DT
#define POS_DT 0 /* 0: position s; 4 (i32) or 5 (i64): positions tensor (attn_dtype codes) */
#endif

#if POS_DT == 5
#define POS_PTR global const long *
#else
#define POS_PTR global const int *
#endif

kernel void attn_rope(ATTN_CPTR(DT_X) x, ulong x_off, long4 x_st,
                      ATTN_PTR(DT_O) o, ulong o_off, long4 o_st,
                      POS_PTR pos, ulong p_off, long4 p_st,
                      global const ulong *turns, long offset, long S, long H, long D, long rot,
                      long nrows)
{
    const long j = get_global_id(0), row = get_global_id(1), npairs = rot / 2;
    if (j >= D - npairs || row >= nrows)
        return;
    const long b = row / S, s = row % S;
    const long xr = x_off + b * x_st.s0 + s * x_st.s1, orow = o_off + b * o_st.s0 + s * o_st.s1;
    if (j >= npairs) { /* a feature beyond rot_dim: copied */
        const long d = rot + j - npairs;
        for (long h = 0; h < H; h++)
            ATTN_STORE(DT_O, o, orow + h * o_st.s2 + d * o_st.s3,
                       ATTN_LOAD(DT_X, x, xr + h * x_st.s2 + d * x_st.s3));
        return;
    }
#if POS_DT
    const long p = pos[p_off + b * p_st.s0 + s * p_st.s1];
#else
    const long p = s;
#endif
    /* fractional turn of the angle, wrapped to [-1/2, 1/2): angle / pi in [-1, 1) */
    const ulong frac = ((ulong)offset + (ulong)p) * turns[j];
    const float half_turns = convert_float((long)frac) * 0x1p-63f;
    const float cs = cospi(half_turns), sn = sinpi(half_turns);
#if INTERLEAVED
    const long a = 2 * j, c = 2 * j + 1;
#else
    const long a = j, c = j + npairs;
#endif
    for (long h = 0; h < H; h++) {
        const long xh = xr + h * x_st.s2, oh = orow + h * o_st.s2;
        const float xa = ATTN_LOAD(DT_X, x, xh + a * x_st.s3);
        const float xc = ATTN_LOAD(DT_X, x, xh + c * x_st.s3);
        ATTN_STORE(DT_O, o, oh + a * o_st.s3, xa * cs - xc * sn);
        ATTN_STORE(DT_O, o, oh + c * o_st.s3, xc * cs + xa * sn);
    }
}
