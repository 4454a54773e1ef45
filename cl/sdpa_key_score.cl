/* sdpa_key_score.cl - the softmax forward's key_score output (include/attn/attn_sdpa.h): the
 * attention probability each key receives, summed over the query rows and the query heads of
 * its KV head, run after the forward has written the final LSE (after the merge on the split-KV
 * decode path). P is never stored: it is recomputed tile by tile from that LSE, as the
 * backward's attn_bwd_dkdv does, whose structure and helpers (sdpa_flash_bwd.cl, built first)
 * this file reuses.
 *   attn_sdpa_key_score  one work-item owns BC keys of one (batch, KV head), with their K^T in
 *                        a private tile; it walks the query rows whose band reaches its keys
 *                        and, per row, the query heads of the group, RB (row, head) pairs at a
 *                        time (a decode fills them with the group's heads), recomputes the
 *                        logits and P = exp(s - lse) as BC-wide vectors and adds them to its
 *                        sums (compensated, in that fixed order): no atomics, the same bits on
 *                        every run and work-group size.
 * A row with no visible key (lse = -inf) adds nothing (its q is not even read); a hidden key
 * gets 0 from every row, also from a NaN row (lse NaN), whose visible keys get NaN, as in
 * reference/sdpa_key_score.c. */
#ifndef ATTN_SDPA_FLASH_BWD_CL
#include "sdpa_flash_bwd.cl"
#endif

/* s[r] = q[r] . k over the private K^T tile kt[d * BC + c] (attn_bwd_scores' q.k half). */
void attn_ks_scores(float q[RB][DK], const float *kt, VBC s[RB])
{
    for (int r = 0; r < RB; r++)
        s[r] = (VBC)(0.0f);
    for (int d = 0; d < DK; d++) {
        VBC kv = VLOAD_BC(d, kt);
        for (int r = 0; r < RB; r++)
            s[r] = fma((VBC)(q[r][d]), kv, s[r]);
    }
}

/* The tile's K^T kt[d * BC + c] from K rows at kb + (j0 + c) * kst, elements at step kd, zero
 * past nc (keys beyond Skv, hidden from every row); 16 elements per load when the rows are
 * contiguous (the copy's scalar loads otherwise cost more than a decode's whole pass). */
void attn_ks_load_k(float *kt, ATTN_CPTR(DT_K) k, long kb, long kst, long kd, long j0, int nc)
{
#if DK % 16 == 0
    if (kd == 1) {
        for (int c = 0; c < BC; c++)
            for (int d0 = 0; d0 < DK; d0 += 16) {
                float x[16];
                vstore16(c < nc ? ATTN_VLOAD16(DT_K, k, kb + (j0 + c) * kst + d0)
                                : (float16)(0.0f),
                         0, x);
                for (int e = 0; e < 16; e++)
                    kt[(d0 + e) * BC + c] = x[e];
            }
        return;
    }
#endif
    for (int c = 0; c < BC; c++)
        for (int d = 0; d < DK; d++)
            kt[d * BC + c] = c < nc ? ATTN_LOAD(DT_K, k, kb + (j0 + c) * kst + d * kd) : 0.0f;
}

/* key_score [B, Skv, Hkv, 1] at ks (f32, strided) from q, k, the masks and the forward's LSE
 * [B, Sq, Hq]; ntiles = ceil(Skv / BC) work-items per (b, KV head). */
kernel void attn_sdpa_key_score(ATTN_CPTR(DT_Q) q, ulong q_off, long4 q_st,
                                ATTN_CPTR(DT_K) k, ulong k_off, long4 k_st,
                                global const float *lse, ulong lse_off, long4 lse_st,
                                ATTN_CPTR(DT_M) ma, ulong ma_off, long4 ma_st,
                                global const uchar *mb, ulong mb_off, long4 mb_st,
                                global float *ks, ulong ks_off, long4 ks_st,
                                long B, long Sq, long Skv, long Hkv, long group,
                                float scale, float softcap, long q_offset, long wl, long wr,
                                long ntiles)
{
    long gid = get_global_id(0);
    if (gid >= ntiles * B * Hkv)
        return;
    long tile = gid % ntiles, bh = gid / ntiles, b = bh / Hkv, hkv = bh % Hkv;
    long Hq = Hkv * group, j0 = tile * BC;
    int nc = (int)min((long)BC, Skv - j0);
    attn_bwd_masks m = {ma, ma_off, ma_st, mb, mb_off, mb_st};

    float kt[DK * BC];
    attn_ks_load_k(kt, k, k_off + b * k_st.s0 + hkv * k_st.s2, k_st.s1, k_st.s3, j0, nc);

    /* Kahan-compensated sums: a key may collect Sq * group terms. */
    VBC sum = (VBC)(0.0f), comp = (VBC)(0.0f);
    long ilo, ihi;
    attn_bwd_query_range(j0, nc, Sq, q_offset, wl, wr, &ilo, &ihi);
    /* The rows (query i, head h of the group) flattened as f = (i - ilo) * group + h % group
     * (h - hkv * group), as the forward's rows are: a decode fills its RB-row blocks with the
     * group's heads. */
    float qb[RB][DK];
    for (long f0 = 0; f0 < (ihi - ilo) * group; f0 += RB) {
        attn_bwd_row w[RB];
        bool any = false;
        int bad = 0; /* unused: a non-finite q makes its row's LSE NaN */
        for (int r = 0; r < RB; r++) {
            long f = f0 + r, i = ilo + f / group, h = hkv * group + f % group;
            w[r] = attn_bwd_row_at(b, i, h, i < ihi, lse, lse_off, lse_st, 0, Sq, Skv, Hq,
                                   q_offset, wl, wr);
            w[r].live = w[r].live && w[r].hi > j0 && w[r].lo < j0 + nc;
            any = any || w[r].live;
            ATTN_BWD_LOAD_ROW(DT_Q, qb[r], q, q_off + b * q_st.s0 + i * q_st.s1 + h * q_st.s2,
                              q_st.s3, DK, w[r].live, bad)
        }
        (void)bad;
        if (!any)
            continue;
        VBC s[RB];
        attn_ks_scores(qb, kt, s);
        for (int r = 0; r < RB; r++) {
            VBC dcap, none = (VBC)(0.0f);
            VBC x = attn_bwd_logits(s[r], &w[r], j0, nc, scale, softcap, &m, &dcap);
            VBC p = w[r].live ? exp(x - w[r].lse) : none;
            /* a hidden key gets 0, also in a NaN row */
            p = select(p, none, isequal(x, (VBC)(-INFINITY)));
            VBC y = p - comp, t = sum + y;
            comp = (t - sum) - y;
            sum = t;
        }
    }

    float out[BC];
    VSTORE_BC(sum, 0, out);
    for (int c = 0; c < nc; c++)
        ks[ks_off + b * ks_st.s0 + (j0 + c) * ks_st.s1 + hkv * ks_st.s2] = out[c];
}
