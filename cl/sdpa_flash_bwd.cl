/* sdpa_flash_bwd.cl - FlashAttention-2 backward for softmax attention (SDPA), without atomics:
 * every gradient element has one owner that sums its terms in a fixed order, so the result is
 * the same bits on every run and every work-group size.
 *   attn_bwd_pack  K and V of each (batch, KV head) once in f32: K^T and V^T (key-contiguous
 *                  rows) for the scores, K row-major for dQ.
 *   attn_bwd_dot   D_i = rowsum(dO_i * O_i), one work-item per query row (f32 scratch).
 *   attn_bwd_dkdv  one work-item owns BC keys of one (batch, KV head), with its dK^T and dV^T
 *                  accumulators in private tiles; it walks the query heads of the group and,
 *                  per head, the query rows of the band, RB rows at a time, recomputing the
 *                  logits, P = exp(s - lse), dP = dO . v and dS = P (dP - D) as BC-wide vectors
 *                  (FMAs over the head dims, no horizontal sums).
 *   attn_bwd_dq    one work-item owns BR query rows of one (batch, head), with their dQ
 *                  accumulators; it walks the key tiles of the rows' band (the same per-row
 *                  vectors, then dQ += G K with VW columns of RB rows in registers). With
 *                  HAS_DMASK it also writes each logit's dS to an f32 scratch [B][Sq][Hq][Skv]
 *                  (each element by its one owner; the host zero-fills it first).
 *   attn_bwd_dmask sums that scratch over the additive mask's size-1 dims in a fixed order.
 * A row with no visible key (lse = -inf) contributes nothing and gets dQ = 0 (its inputs are
 * not even read); a key whose P is 0 (hidden, or underflowed) gets dS = 0, as in
 * reference/sdpa_backward.c.
 * Inf/NaN: a pair whose P is 0 adds nothing, also where its other factor is not finite (the
 * reference skips it; 0 * Inf would be NaN). Rows loaded with a non-finite q or dO element (in
 * attn_bwd_dkdv) and key tiles holding a key flagged by attn_bwd_pack (in attn_bwd_dq) run
 * their accumulating loops with that skip; all-finite ones run the plain loops. */
#ifndef ATTN_SDPA_FLASH_BWD_CL
#define ATTN_SDPA_FLASH_BWD_CL /* sdpa_key_score.cl builds on this file */
#ifndef ATTN_COMMON_CL
#include "common.cl"
#endif

/* ---- specialisation (-D options); defaults make the file compile standalone ---- */
#ifndef BR
#define BR 8 /* query rows per work-item of attn_bwd_dq */
#endif
#ifndef BC
#define BC 16 /* keys per tile (one floatBC per row): 2, 4, 8 or 16 */
#endif
#ifndef VW
#define VW 8 /* vector width of the dQ update over Dk: 2, 4, 8 or 16 */
#endif
#ifndef HAS_DMASK
#define HAS_DMASK 0 /* attn_bwd_dq writes dS to the dmask scratch */
#endif

#define DKP (((DK) + (VW) - 1) / (VW) * (VW)) /* Dk padded to whole VW vectors */
#define VBC ATTN_CAT(float, BC)
#define VLOAD_BC ATTN_CAT(vload, BC)
#define VSTORE_BC ATTN_CAT(vstore, BC)
#define VVW ATTN_CAT(float, VW)
#define VLOAD_VW ATTN_CAT(vload, VW)
#define VSTORE_VW ATTN_CAT(vstore, VW)

/* Query rows handled together: each loaded K/V vector feeds RB FMAs, and each accumulator
 * load/store RB updates (BR is a multiple of it). */
#if BR % 4 == 0
#define RB 4
#else
#define RB (BR % 2 == 0 ? 2 : 1)
#endif

/* n elements of a strided row into a private f32 row, or zeros when `keep` is false (a row
 * that contributes nothing must not carry a NaN of its inputs into the sums); `bad` becomes
 * nonzero when an element loaded is not finite (an int: no branch per element). */
#define ATTN_BWD_LOAD_ROW(dt, dst, src, base, step, n, keep, bad)                            \
    for (int d_ = 0; d_ < (n); d_++) {                                                       \
        (dst)[d_] = (keep) ? ATTN_LOAD(dt, src, (base) + d_ * (step)) : 0.0f;                \
        (bad) |= !isfinite((dst)[d_]);                                                       \
    }

/* Masks of the problem, as the forward's attn_flash_fwd receives them. */
typedef struct attn_bwd_masks {
    ATTN_CPTR(DT_M) ma;
    ulong ma_off;
    long4 ma_st;
    global const uchar *mb;
    ulong mb_off;
    long4 mb_st;
} attn_bwd_masks;

/* One query row of a block: where it is, its band [lo, hi), lse and D; `live` when it has a
 * visible key in the tile. */
typedef struct attn_bwd_row {
    long b, i, h, lo, hi;
    float lse, D;
    bool live;
} attn_bwd_row;

/* The band [lo, hi) of query i (all keys without a band). */
void attn_bwd_band(long i, long q_offset, long wl, long wr, long Skv, long *lo, long *hi)
{
#if HAS_BAND
    attn_band_range(i + q_offset, wl, wr, Skv, lo, hi);
#else
    *lo = 0;
    *hi = Skv;
#endif
}

/* s[r] = q[r] . k and dp[r] = dO[r] . v over the key tile (kt, vt: packed K^T and V^T, row d
 * at d * stride), BC keys per vector, RB rows per loaded vector. */
void attn_bwd_scores(float q[RB][DK], float dout[RB][DV], global const float *kt,
                     global const float *vt, long stride, VBC s[RB], VBC dp[RB])
{
    for (int r = 0; r < RB; r++)
        s[r] = dp[r] = (VBC)(0.0f);
    for (int d = 0; d < DK; d++) {
        VBC kv = VLOAD_BC(0, kt + d * stride);
        for (int r = 0; r < RB; r++)
            s[r] = fma((VBC)(q[r][d]), kv, s[r]);
    }
    for (int d = 0; d < DV; d++) {
        VBC vv = VLOAD_BC(0, vt + d * stride);
        for (int r = 0; r < RB; r++)
            dp[r] = fma((VBC)(dout[r][d]), vv, dp[r]);
    }
}

/* One row's tile [j0, j0 + nc) of logits from s = q.k, as the forward computes them
 * (r = scale q.k, soft-cap, additive mask; hidden, past nc or a row that is not live: -inf),
 * and *dcap = 1 - tanh^2(r / cap) (1 without a cap). A tile fully inside the band without
 * masks skips the per-key pass. */
VBC attn_bwd_logits(VBC s, const attn_bwd_row *w, long j0, int nc, float scale, float softcap,
                    const attn_bwd_masks *m, VBC *dcap)
{
    s *= scale;
    *dcap = (VBC)(1.0f);
#if HAS_SOFTCAP
    VBC t = tanh(s / softcap);
    s = softcap * t;
    *dcap = 1.0f - t * t;
#endif
    if (!w->live) {
        s = (VBC)(-INFINITY);
    } else if (nc < BC || j0 < w->lo || j0 + BC > w->hi || HAS_MASK_ADD || HAS_MASK_BOOL) {
        float sv[BC];
        VSTORE_BC(s, 0, sv);
        for (int c = 0; c < BC; c++) {
            long j = j0 + c;
            bool vis = c < nc && j >= w->lo && j < w->hi;
#if HAS_MASK_BOOL
            vis = vis && m->mb[m->mb_off + w->b * m->mb_st.s0 + w->i * m->mb_st.s1 +
                               w->h * m->mb_st.s2 + j * m->mb_st.s3] != 0;
#endif
#if HAS_MASK_ADD
            if (vis)
                sv[c] += ATTN_LOAD(DT_M, m->ma,
                                   m->ma_off + w->b * m->ma_st.s0 + w->i * m->ma_st.s1 +
                                       w->h * m->ma_st.s2 + j * m->ma_st.s3);
#endif
            sv[c] = vis ? sv[c] : -INFINITY;
        }
        s = VLOAD_BC(0, sv);
    }
    (void)m;
    (void)softcap;
    return s;
}

/* One row's tile from s = q.k and dp = dO.v: the logits (attn_bwd_logits), P = exp(s - lse),
 * dS = P (dP - D) (0 where P is 0, so a hidden key's V never reaches the gradients) and
 * G = scale dS (1 - tanh^2(r / cap)), the gradient of q.k. A row that is not live gets
 * P = dS = G = 0. */
void attn_bwd_probs(VBC s, VBC dp, const attn_bwd_row *w, long j0, int nc, float scale,
                    float softcap, const attn_bwd_masks *m, VBC *p, VBC *ds, VBC *g)
{
    VBC dcap;
    s = attn_bwd_logits(s, w, j0, nc, scale, softcap, m, &dcap);
    *p = w->live ? exp(s - w->lse) : (VBC)(0.0f);
    VBC none = (VBC)(0.0f);
    *ds = select(*p * (dp - w->D), none, isequal(*p, none));
    *g = scale * select(*ds * dcap, none, isequal(*p, none)); /* dcap is NaN for a NaN logit */
}

/* acct[d * BC + c] += wgt[r][c] * x[r * n + d] over d < n and the RB rows in order: dV^T += P^T dO
 * or dK^T += G^T Q of attn_bwd_dkdv. With `guard` (a row holds a non-finite element) a term whose
 * P is 0 is skipped; inlined with a constant `guard`, the plain loop keeps its FMAs. */
void attn_bwd_acc_rows(float *acct, int n, const VBC wgt[RB], const VBC p[RB], const float *x,
                       bool guard)
{
    for (int d = 0; d < n; d++) {
        VBC acc = VLOAD_BC(d, acct);
        for (int r = 0; r < RB; r++) {
            VBC t = fma(wgt[r], (VBC)(x[r * n + d]), acc);
            acc = guard ? select(t, acc, isequal(p[r], (VBC)(0.0f))) : t;
        }
        VSTORE_BC(acc, d, acct);
    }
}

/* dQ += G K over a key tile of nc keys (krt: packed K rows, G: gt): VW columns of RB rows in
 * registers across the keys. With `guard` (the tile holds a non-finite K element) the pairs
 * whose bit is set in zero[r] (P is 0) are skipped. */
void attn_bwd_dq_tile(float dqt[BR][DKP], float gt[BR][BC], const uint zero[BR],
                      global const float *krt, int nc, bool guard)
{
    for (int r0 = 0; r0 < BR; r0 += RB)
        for (int d = 0; d < DKP / VW; d++) {
            VVW acc[RB];
            for (int r = 0; r < RB; r++)
                acc[r] = VLOAD_VW(d, dqt[r0 + r]);
            for (int c = 0; c < nc; c++) {
                VVW kv = VLOAD_VW(d, krt + c * DKP);
                for (int r = 0; r < RB; r++)
                    if (!guard || !(zero[r0 + r] >> c & 1u))
                        acc[r] = fma((VVW)(gt[r0 + r][c]), kv, acc[r]);
            }
            for (int r = 0; r < RB; r++)
                VSTORE_VW(acc[r], d, dqt[r0 + r]);
        }
}

/* Row (b, i, h) of a block: band, lse, D (0 when D is NULL), and whether it has a visible
 * key. */
attn_bwd_row attn_bwd_row_at(long b, long i, long h, bool real, global const float *lse,
                             ulong lse_off, long4 lse_st, global const float *D, long Sq,
                             long Skv, long Hq, long q_offset, long wl, long wr)
{
    attn_bwd_row w = {b, i, h, 0, 0, -INFINITY, 0.0f, false};
    if (!real)
        return w;
    attn_bwd_band(i, q_offset, wl, wr, Skv, &w.lo, &w.hi);
    w.lse = lse[lse_off + b * lse_st.s0 + i * lse_st.s1 + h * lse_st.s2];
    w.D = D ? D[(b * Sq + i) * Hq + h] : 0.0f;
    w.live = w.lse != -INFINITY && w.lo < w.hi; /* no visible key: no gradient */
    return w;
}

/* The queries [*ilo, *ihi) whose band can reach keys [j0, j0 + nc): aligned position p sees
 * key j iff j - wr <= p <= j + wl (each bound only when set). */
void attn_bwd_query_range(long j0, int nc, long Sq, long q_offset, long wl, long wr, long *ilo,
                          long *ihi)
{
    *ilo = 0;
    *ihi = Sq;
#if HAS_BAND
    if (wr >= 0)
        *ilo = max(0L, j0 - wr - q_offset);
    if (wl >= 0)
        *ihi = min(Sq, j0 + nc - 1 + wl - q_offset + 1);
#endif
}

/* K and V of each (b, KV head) = bh once in f32, with skp = Skv rounded up to BC, zero past Skv:
 *   kp[(bh * DK + d) * skp + j]   K^T  (the scores of a row: BC-wide FMAs over d)
 *   vp[(bh * DV + d) * skp + j]   V^T  (dP likewise)
 *   kr[(bh * skp + j) * DKP + d]  K row-major, zero-padded to DKP (dQ += G K, VW-wide)
 *   kbad[bh * skp + j]            1 when key j's K holds an Inf or NaN
 * One work-item per (bh, j). */
kernel void attn_bwd_pack(ATTN_CPTR(DT_K) k, ulong k_off, long4 k_st,
                          ATTN_CPTR(DT_V) v, ulong v_off, long4 v_st, global float *kp,
                          global float *vp, global float *kr, global uchar *kbad, long B,
                          long Skv, long Hkv, long skp)
{
    long gid = get_global_id(0);
    if (gid >= B * Hkv * skp)
        return;
    long j = gid % skp, bh = gid / skp, b = bh / Hkv, h = bh % Hkv;
    bool in = j < Skv;
    long kb = k_off + b * k_st.s0 + j * k_st.s1 + h * k_st.s2;
    long vb = v_off + b * v_st.s0 + j * v_st.s1 + h * v_st.s2;
    int bad = 0;
    for (int d = 0; d < DKP; d++) {
        float x = in && d < DK ? ATTN_LOAD(DT_K, k, kb + d * k_st.s3) : 0.0f;
        if (d < DK)
            kp[(bh * DK + d) * skp + j] = x;
        kr[(bh * skp + j) * DKP + d] = x;
        bad |= !isfinite(x);
    }
    kbad[bh * skp + j] = bad != 0;
    for (int d = 0; d < DV; d++)
        vp[(bh * DV + d) * skp + j] = in ? ATTN_LOAD(DT_V, v, vb + d * v_st.s3) : 0.0f;
}

kernel void attn_bwd_dot(ATTN_CPTR(DT_O) o, ulong o_off, long4 o_st,
                         ATTN_CPTR(DT_DO) dout, ulong do_off, long4 do_st,
                         global float *D, long B, long Sq, long Hq)
{
    long gid = get_global_id(0);
    if (gid >= B * Sq * Hq)
        return;
    long h = gid % Hq, i = gid / Hq % Sq, b = gid / (Hq * Sq);
    long ob = o_off + b * o_st.s0 + i * o_st.s1 + h * o_st.s2;
    long db = do_off + b * do_st.s0 + i * do_st.s1 + h * do_st.s2;
    float acc = 0.0f;
    for (int d = 0; d < DV; d++)
        acc = fma(ATTN_LOAD(DT_DO, dout, db + d * do_st.s3), ATTN_LOAD(DT_O, o, ob + d * o_st.s3),
                  acc);
    D[gid] = acc;
}

/* The inputs attn_bwd_dkdv and attn_bwd_dq share: q, the packed K/V (attn_bwd_pack), dout,
 * lse, the D rows, the masks. */
#define ATTN_BWD_INPUTS                                                                      \
    ATTN_CPTR(DT_Q) q, ulong q_off, long4 q_st, global const float *kp,                      \
        global const float *vp, global const float *kr, global const uchar *kbad, long skp,  \
        ATTN_CPTR(DT_DO) dout,                                                               \
        ulong do_off, long4 do_st, global const float *lse, ulong lse_off, long4 lse_st,     \
        global const float *D, ATTN_CPTR(DT_M) ma, ulong ma_off, long4 ma_st,                \
        global const uchar *mb, ulong mb_off, long4 mb_st

kernel void attn_bwd_dkdv(ATTN_BWD_INPUTS,
                          ATTN_PTR(DT_DK) dk, ulong dk_off, long4 dk_st,
                          ATTN_PTR(DT_DV) dv, ulong dv_off, long4 dv_st,
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
    (void)kr;
    (void)kbad;

    /* The tile's packed K^T and V^T, and its dK^T, dV^T accumulators: [d * BC + c]. */
    global const float *kt = kp + bh * DK * skp + j0, *vt = vp + bh * DV * skp + j0;
    float dkt[DK * BC], dvt[DV * BC];
    for (int e = 0; e < DK * BC; e++)
        dkt[e] = 0.0f;
    for (int e = 0; e < DV * BC; e++)
        dvt[e] = 0.0f;

    long ilo, ihi;
    attn_bwd_query_range(j0, nc, Sq, q_offset, wl, wr, &ilo, &ihi);
    float qb[RB][DK], dob[RB][DV];
    for (long h = hkv * group; h < (hkv + 1) * group; h++)
        for (long i0 = ilo; i0 < ihi; i0 += RB) {
            attn_bwd_row w[RB];
            bool any = false;
            int bad = 0;
            for (int r = 0; r < RB; r++) {
                long i = i0 + r;
                w[r] = attn_bwd_row_at(b, i, h, i < ihi, lse, lse_off, lse_st, D, Sq, Skv, Hq,
                                       q_offset, wl, wr);
                w[r].live = w[r].live && w[r].hi > j0 && w[r].lo < j0 + nc;
                any = any || w[r].live;
                ATTN_BWD_LOAD_ROW(DT_Q, qb[r], q, q_off + b * q_st.s0 + i * q_st.s1 + h * q_st.s2,
                                  q_st.s3, DK, w[r].live, bad)
                ATTN_BWD_LOAD_ROW(DT_DO, dob[r], dout,
                                  do_off + b * do_st.s0 + i * do_st.s1 + h * do_st.s2, do_st.s3,
                                  DV, w[r].live, bad)
            }
            if (!any)
                continue;
            VBC s[RB], dp[RB], p[RB], ds[RB], g[RB];
            attn_bwd_scores(qb, dob, kt, vt, skp, s, dp);
            for (int r = 0; r < RB; r++)
                attn_bwd_probs(s[r], dp[r], &w[r], j0, nc, scale, softcap, &m, &p[r], &ds[r],
                               &g[r]);
            if (bad) { /* dV += P^T dO, dK += G^T Q */
                attn_bwd_acc_rows(dvt, DV, p, p, &dob[0][0], true);
                attn_bwd_acc_rows(dkt, DK, g, p, &qb[0][0], true);
            } else {
                attn_bwd_acc_rows(dvt, DV, p, p, &dob[0][0], false);
                attn_bwd_acc_rows(dkt, DK, g, p, &qb[0][0], false);
            }
        }

    for (int c = 0; c < nc; c++) {
        long kb = dk_off + b * dk_st.s0 + (j0 + c) * dk_st.s1 + hkv * dk_st.s2;
        long vb = dv_off + b * dv_st.s0 + (j0 + c) * dv_st.s1 + hkv * dv_st.s2;
        for (int d = 0; d < DK; d++)
            ATTN_STORE(DT_DK, dk, kb + d * dk_st.s3, dkt[d * BC + c]);
        for (int d = 0; d < DV; d++)
            ATTN_STORE(DT_DV, dv, vb + d * dv_st.s3, dvt[d * BC + c]);
    }
}

kernel void attn_bwd_dq(ATTN_BWD_INPUTS,
                        ATTN_PTR(DT_DQ) dq, ulong dq_off, long4 dq_st,
                        global float *dmask,
                        long B, long Sq, long Skv, long Hq, long group,
                        float scale, float softcap, long q_offset, long wl, long wr,
                        long nblocks)
{
    long gid = get_global_id(0);
    if (gid >= nblocks * B * Hq)
        return;
    /* Blocks of one (b, h) are adjacent; the last (heaviest under causal) run first. */
    long blk = nblocks - 1 - gid % nblocks, bh = gid / nblocks, b = bh / Hq, h = bh % Hq;
    long hkvb = b * (Hq / group) + h / group, i0 = blk * BR;
    attn_bwd_masks m = {ma, ma_off, ma_st, mb, mb_off, mb_st};

    float qt[BR][DK], dot[BR][DV], dqt[BR][DKP];
    attn_bwd_row w[BR];
    int bad = 0; /* unused: a non-finite q or dO reaches dQ only through its own row */
    long kbeg = Skv, kend = 0; /* the keys any row sees */
    for (int r = 0; r < BR; r++) {
        long i = i0 + r;
        w[r] = attn_bwd_row_at(b, i, h, i < Sq, lse, lse_off, lse_st, D, Sq, Skv, Hq, q_offset,
                               wl, wr);
        ATTN_BWD_LOAD_ROW(DT_Q, qt[r], q, q_off + b * q_st.s0 + i * q_st.s1 + h * q_st.s2,
                          q_st.s3, DK, w[r].live, bad)
        ATTN_BWD_LOAD_ROW(DT_DO, dot[r], dout, do_off + b * do_st.s0 + i * do_st.s1 + h * do_st.s2,
                          do_st.s3, DV, w[r].live, bad)
        for (int d = 0; d < DKP; d++)
            dqt[r][d] = 0.0f;
        if (w[r].live) {
            kbeg = min(kbeg, w[r].lo);
            kend = max(kend, w[r].hi);
        }
    }

    /* Tiles start at multiples of BC (the packed arrays end there; masking covers the rest). */
    float gt[BR][BC]; /* the tile's G, row by row */
    uint zero[BR];    /* with a flagged key: bit c set where the row's P is 0 */
    for (long j0 = kbeg - kbeg % BC; j0 < kend; j0 += BC) {
        int nc = (int)min((long)BC, kend - j0);
        global const float *kt = kp + hkvb * DK * skp + j0, *vt = vp + hkvb * DV * skp + j0;
        global const float *krt = kr + (hkvb * skp + j0) * DKP;
        uint kflag = 0u;
        for (int c = 0; c < nc; c++)
            kflag |= kbad[hkvb * skp + j0 + c];
        for (int r0 = 0; r0 < BR; r0 += RB) {
            VBC s[RB], dp[RB], p, ds, g;
            attn_bwd_scores(qt + r0, dot + r0, kt, vt, skp, s, dp);
            for (int r = 0; r < RB; r++) {
                attn_bwd_probs(s[r], dp[r], &w[r0 + r], j0, nc, scale, softcap, &m, &p, &ds, &g);
                VSTORE_BC(g, 0, gt[r0 + r]);
                if (kflag) {
                    int z[BC];
                    ATTN_CAT(vstore, BC)(isequal(p, (VBC)(0.0f)), 0, z);
                    zero[r0 + r] = 0u;
                    for (int c = 0; c < BC; c++)
                        zero[r0 + r] |= (z[c] != 0 ? 1u : 0u) << c;
                }
#if HAS_DMASK
                float dsv[BC];
                VSTORE_BC(ds, 0, dsv);
                if (w[r0 + r].live)
                    for (int c = 0; c < nc; c++)
                        dmask[((b * Sq + i0 + r0 + r) * Hq + h) * Skv + j0 + c] = dsv[c];
#endif
            }
        }
        if (kflag)
            attn_bwd_dq_tile(dqt, gt, zero, krt, nc, true);
        else
            attn_bwd_dq_tile(dqt, gt, zero, krt, nc, false);
    }
    (void)dmask;
    (void)bad;

    for (int r = 0; r < BR && i0 + r < Sq; r++) {
        long qb = dq_off + b * dq_st.s0 + (i0 + r) * dq_st.s1 + h * dq_st.s2;
        for (int d = 0; d < DK; d++)
            ATTN_STORE(DT_DQ, dq, qb + d * dq_st.s3, dqt[r][d]);
    }
}

/* dmask [mB][mSq][mH][Skv] (the additive mask's shape, at the view's strides) from the dS
 * scratch [B][Sq][Hq][Skv]: each element sums the logits it broadcast to, b then i then h. */
kernel void attn_bwd_dmask(global const float *ds, global float *dmask, ulong dm_off,
                           long4 dm_st, long4 msh, long B, long Sq, long Hq, long Skv)
{
    long gid = get_global_id(0);
    if (gid >= msh.s0 * msh.s1 * msh.s2 * Skv)
        return;
    long j = gid % Skv, e = gid / Skv;
    long mh = e % msh.s2, mi = e / msh.s2 % msh.s1, mbat = e / (msh.s2 * msh.s1);
    long nb = msh.s0 == 1 ? B : 1, ni = msh.s1 == 1 ? Sq : 1, nh = msh.s2 == 1 ? Hq : 1;
    float acc = 0.0f;
    for (long b = 0; b < nb; b++)
        for (long i = 0; i < ni; i++)
            for (long h = 0; h < nh; h++)
                acc += ds[(((mbat + b) * Sq + mi + i) * Hq + mh + h) * Skv + j];
    dmask[dm_off + mbat * dm_st.s0 + mi * dm_st.s1 + mh * dm_st.s2 + j * dm_st.s3] = acc;
}

#endif /* ATTN_SDPA_FLASH_BWD_CL */
