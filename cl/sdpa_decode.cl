/* decode.cl - second half of the split-KV decode path: merges the per-split partial outputs
 * (already normalised within their split, f32) and partial log-sum-exps written by
 * attn_flash_fwd with SPLIT=1 into the final output and LSE. One work-item per query row.
 * out = sum_s w_s o_s / sum_s w_s with w_s = exp(lse_s - max lse); lse = max + log(sum w). */
#ifndef ATTN_COMMON_CL
#include "common.cl"
#endif

#ifndef HAS_LSE
#define HAS_LSE 1
#endif
#ifndef MAX_SPLIT
#define MAX_SPLIT 64 /* the host never splits a row further */
#endif

/* Partials: po[(s * nrows + row) * DV + d], plse[s * nrows + row], row = (b * Sq + i) * Hq + h. */
kernel void attn_lse_merge(global const float *po, global const float *plse, long nsplit,
                           long B, long Sq, long Hq,
                           ATTN_PTR(DT_O) o, ulong o_off, long4 o_st,
                           global float *lse, ulong lse_off, long4 lse_st)
{
    long row = get_global_id(0), nrows = B * Sq * Hq;
    if (row >= nrows)
        return;
    long h = row % Hq, i = row / Hq % Sq, b = row / (Hq * Sq);
    float mx = -INFINITY;
    bool nan_seen = false;
    for (long s = 0; s < nsplit; s++) {
        float x = plse[s * nrows + row];
        nan_seen = nan_seen || isnan(x);
        mx = fmax(mx, x);
    }
    bool empty = mx == -INFINITY && !nan_seen; /* no split saw a visible key */
    float shift = mx == -INFINITY ? 0.0f : mx;
    float wt[MAX_SPLIT], wsum = 0.0f;
    for (long s = 0; s < nsplit && s < MAX_SPLIT; s++) {
        wt[s] = exp(plse[s * nrows + row] - shift);
        wsum += wt[s];
    }
    float inv = empty ? 0.0f : 1.0f / wsum;
    long ob = o_off + b * o_st.s0 + i * o_st.s1 + h * o_st.s2;
    for (int d = 0; d < DV; d++) {
        float acc = 0.0f;
        for (long s = 0; s < nsplit && s < MAX_SPLIT; s++)
            acc += wt[s] * po[(s * nrows + row) * DV + d];
        ATTN_STORE(DT_O, o, ob + d * o_st.s3, empty ? 0.0f : acc * inv);
    }
#if HAS_LSE
    lse[lse_off + b * lse_st.s0 + i * lse_st.s1 + h * lse_st.s2] =
        empty ? -INFINITY : shift + log(wsum);
#endif
}
