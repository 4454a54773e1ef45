/* transnormer_srms.cl - the last step of both TransNormer attentions: SimpleRMSNorm of each
 * token over its Hq * Dv values, out = y / (||y||_2 / sqrt(Hq Dv) + eps) (SRMS=1), or y as is,
 * stored into out's dtype and strides (round to nearest even). One work-item per token. */
#ifndef ATTN_COMMON_CL
#include "common.cl"
#endif

#ifndef SRMS
#define SRMS 1
#endif

kernel void attn_tn_srms(global const float *y, ATTN_PTR(DT_O) o, ulong o_off, long4 o_st,
                         long B, long S, long Hq, long Dv, float eps)
{
    long t = get_global_id(0);
    if (t >= B * S)
        return;
    long b = t / S, i = t % S, n = Hq * Dv;
    global const float *yr = y + t * n;
    float den = 1.0f;
#if SRMS
    float ss = 0.0f;
    for (long c = 0; c < n; c++)
        ss += yr[c] * yr[c];
    den = sqrt(ss / (float)n) + eps;
#endif
    for (long h = 0; h < Hq; h++)
        for (long e = 0; e < Dv; e++)
            ATTN_STORE(DT_O, o, o_off + b * o_st.s0 + i * o_st.s1 + h * o_st.s2 + e * o_st.s3,
                       yr[h * Dv + e] / den);
}
