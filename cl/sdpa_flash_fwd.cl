/* flash_fwd.cl - FlashAttention-2 forward for softmax attention (SDPA), also the split-KV
 * half of the decode path. One work-item owns a block of BR query rows of one (batch, KV
 * head): the rows are the (query, head-in-group) pairs sharing that KV head, so GQA reuses
 * every K/V tile across the group. Q rows, the output accumulators and the running max/sum
 * live in private arrays; keys stream in tiles of BC (K transposed so the score loop is a
 * BC-wide vector FMA over Dk, V row-major so the PV loop is a VW-wide FMA over Dv; RB rows are
 * updated together so each loaded K/V vector feeds RB FMAs). With PACK=1, attn_pack_kv first
 * converts K and V once per call into f32 tiles laid out for exactly these loops (K^T and
 * zero-padded V), read straight from global memory, or (LOCAL_KV=1, GPUs) staged per tile in
 * local memory by the work-group; with PACK=0 (decode, where K/V are read once anyway) each
 * work-item gathers its tiles into private arrays, or (KV_VEC) reads contiguous K/V rows
 * straight from global memory with 16-wide vector loads.
 * Tiles outside the causal/window band are never visited; tiles fully inside it skip
 * per-element masking. See docs/opencl.md for why this shape suits PoCL and GPUs. */
#ifndef ATTN_COMMON_CL
#include "common.cl"
#endif

/* ---- specialisation (-D options); defaults make the file compile standalone ---- */
#ifndef BR
#define BR 16 /* query rows per work-item */
#endif
#ifndef BC
#define BC 16 /* keys per tile: 2, 4, 8 or 16 (one floatBC score vector per row) */
#endif
#ifndef VW
#define VW 8 /* vector width over Dv: 2, 4, 8 or 16 */
#endif
#ifndef HAS_LSE
#define HAS_LSE 1
#endif
#ifndef SPLIT
#define SPLIT 0 /* 1: write f32 partial outputs + partial LSE per key split (decode) */
#endif
#ifndef PACK
#define PACK 1 /* 1: K/V come pre-packed by attn_pack_kv */
#endif
#ifndef KV_VEC
#define KV_VEC 0 /* PACK=0 only: K/V rows contiguous, Dk and Dv multiples of 16 */
#endif
#ifndef LOCAL_KV
#define LOCAL_KV 0 /* PACK=1 only: the work-group stages each packed tile in local memory */
#endif

/* Rows updated together in the FMA loops (BR is a multiple of it). The accumulators are
 * named variables, not an array, so every compiler keeps them in registers. */
#if BR % 4 == 0
#define RB 4
#define ATTN_EACH_ROW(X) X(0) X(1) X(2) X(3)
#elif BR % 2 == 0
#define RB 2
#define ATTN_EACH_ROW(X) X(0) X(1)
#else
#define RB 1
#define ATTN_EACH_ROW(X) X(0)
#endif

#define DVP (((DV) + (VW) - 1) / (VW) * (VW)) /* Dv padded to whole vectors */
#define VBC ATTN_CAT(float, BC)
#define VVW ATTN_CAT(float, VW)
#define VLOAD_BC ATTN_CAT(vload, BC)
#define VSTORE_BC ATTN_CAT(vstore, BC)
#define VLOAD_VW ATTN_CAT(vload, VW)
#define VSTORE_VW ATTN_CAT(vstore, VW)
#define HMAX_BC ATTN_CAT(attn_hmax, BC)
#define HSUM_BC ATTN_CAT(attn_hsum, BC)

#if SPLIT
#define O_PTR global float *
#define STORE_O(p, i, x) ((p)[i] = (x))
#else
#define O_PTR ATTN_PTR(DT_O)
#define STORE_O(p, i, x) ATTN_STORE(DT_O, p, i, x)
#endif

/* Where a work-item's rows sit: batch b, KV head hkv, flattened rows [r0, r0 + BR) of the
 * Sq * group rows that share hkv (row r is query r / group, head hkv * group + r % group). */
typedef struct attn_rows {
    long b, hkv, r0, nrows, group;
} attn_rows;

long attn_row_query(const attn_rows *w, int r)
{
    long rr = min(w->r0 + r, w->nrows - 1); /* padding rows repeat the last real row */
    return rr / w->group;
}

long attn_row_head(const attn_rows *w, int r)
{
    long rr = min(w->r0 + r, w->nrows - 1);
    return w->hkv * w->group + rr % w->group;
}

/* A probability that marks a hidden key: -0 (attn_softmax_tile). */
#define ATTN_P_HIDDEN(p) (as_uint(p) == 0x80000000u)

/* Per-element visibility and masks of one tile (only for tiles not fully inside the band,
 * or when a mask is present). */
void attn_tile_mask(float s[BR][BC], const attn_rows *w, long j0, long kend,
                           long q_offset, long wl, long wr,
                           ATTN_CPTR(DT_M) ma, ulong ma_off, long4 ma_st,
                           global const uchar *mb, ulong mb_off, long4 mb_st)
{
    for (int r = 0; r < BR; r++) {
        long i = attn_row_query(w, r), h = attn_row_head(w, r);
        long lo = 0, hi = kend; /* the keys [0, kend) of this work-item, cut to the band */
#if HAS_BAND
        attn_band_range(i + q_offset, wl, wr, kend, &lo, &hi);
#endif
        for (int c = 0; c < BC; c++) {
            long j = j0 + c;
            bool vis = j >= lo && j < hi;
            long mi = w->b * ma_st.s0 + i * ma_st.s1 + h * ma_st.s2 + j * ma_st.s3;
            long bi = w->b * mb_st.s0 + i * mb_st.s1 + h * mb_st.s2 + j * mb_st.s3;
#if HAS_MASK_BOOL
            vis = vis && mb[mb_off + bi] != 0;
#endif
            float x = s[r][c];
#if HAS_MASK_ADD
            if (vis)
                x += ATTN_LOAD(DT_M, ma, ma_off + mi);
#endif
            s[r][c] = vis ? x : -INFINITY;
            (void)mi;
            (void)bi;
        }
    }
}

/* Packed layout per (b, hkv) = bh, with skp = Skv rounded up to BC:
 *   kp[(bh * DK + d) * skp + j]   K transposed, f32, zero for j >= Skv
 *   vp[(bh * skp + j) * DVP + d]  V, f32, zero for j >= Skv or d >= DV
 * One work-item per (bh, j). */
kernel void attn_pack_kv(ATTN_CPTR(DT_K) k, ulong k_off, long4 k_st,
                         ATTN_CPTR(DT_V) v, ulong v_off, long4 v_st,
                         global float *kp, global float *vp, long B, long Skv, long Hkv, long skp)
{
    long gid = get_global_id(0);
    if (gid >= B * Hkv * skp)
        return;
    long j = gid % skp, bh = gid / skp, b = bh / Hkv, h = bh % Hkv;
    bool in = j < Skv;
    long kb = k_off + b * k_st.s0 + j * k_st.s1 + h * k_st.s2;
    long vb = v_off + b * v_st.s0 + j * v_st.s1 + h * v_st.s2;
    for (int d = 0; d < DK; d++)
        kp[(bh * DK + d) * skp + j] = in ? ATTN_LOAD(DT_K, k, kb + d * k_st.s3) : 0.0f;
    for (int d = 0; d < DVP; d++)
        vp[(bh * skp + j) * DVP + d] = in && d < DV ? ATTN_LOAD(DT_V, v, vb + d * v_st.s3) : 0.0f;
}

#if LOCAL_KV
#define TILE_SPACE local const
#elif PACK
#define TILE_SPACE global const
#else
#define TILE_SPACE
#endif

#if HAS_SOFTCAP
#define ATTN_CAP(x) (softcap * tanh((x) / softcap))
#else
#define ATTN_CAP(x) (x)
#endif

/* s[r] = scale * q[r] . k over the tile (then soft-cap); kt row d is at kt + d * kstride. */
void attn_scores(float s[BR][BC], float qv[BR][DK], TILE_SPACE float *kt, long kstride,
                        float scale, float softcap)
{
    for (int r = 0; r < BR; r += RB) {
#define ATTN_DECL(i) VBC acc##i = (VBC)(0.0f);
#define ATTN_STEP(i) acc##i = fma((VBC)(qv[r + i][d]), kv, acc##i);
#define ATTN_PUT(i) VSTORE_BC(ATTN_CAP(acc##i * scale), 0, s[r + i]);
        ATTN_EACH_ROW(ATTN_DECL)
        for (int d = 0; d < DK; d++) {
            VBC kv = VLOAD_BC(0, kt + d * kstride);
            ATTN_EACH_ROW(ATTN_STEP)
        }
        ATTN_EACH_ROW(ATTN_PUT)
#undef ATTN_DECL
#undef ATTN_STEP
#undef ATTN_PUT
    }
}

#if KV_VEC
/* Decode with contiguous K/V rows: scores straight from global memory, 16 elements of a K row
 * per vector load (converted once, used for RB rows), one dot product per (row, key). Keys
 * past kend read the last valid row; the mask step hides them. */
void attn_scores_kv(float s[BR][BC], float qv[BR][DK], ATTN_CPTR(DT_K) k, long kb, long ks,
                    long j0, long kend, float scale, float softcap)
{
    for (int c = 0; c < BC; c++) {
        long row = kb + min(j0 + c, kend - 1) * ks;
        for (int r = 0; r < BR; r += RB) {
#define ATTN_DECL(i) float16 acc##i = (float16)(0.0f);
#define ATTN_STEP(i) acc##i = fma(vload16(0, qv[r + i] + d), kv, acc##i);
#define ATTN_PUT(i) s[r + i][c] = ATTN_CAP(attn_hsum16(acc##i) * scale);
            ATTN_EACH_ROW(ATTN_DECL)
            for (int d = 0; d < DK; d += 16) {
                float16 kv = ATTN_VLOAD16(DT_K, k, row + d);
                ATTN_EACH_ROW(ATTN_STEP)
            }
            ATTN_EACH_ROW(ATTN_PUT)
#undef ATTN_DECL
#undef ATTN_STEP
#undef ATTN_PUT
        }
    }
}

/* ov[r] += p[r] . V for the tile's first nc keys (the rest are past kend), V rows read from
 * global memory 16 elements at a time, RB rows per load. */
void attn_accumulate_kv(float ov[BR][DVP], float s[BR][BC], ATTN_CPTR(DT_V) v, long vb, long vs,
                        long j0, int nc)
{
    for (int r = 0; r < BR; r += RB)
        for (int d = 0; d < DV; d += 16) {
#define ATTN_DECL(i) float16 acc##i = vload16(0, ov[r + i] + d);
#define ATTN_STEP(i)                                                                       \
    if (!ATTN_P_HIDDEN(s[r + i][c]))                                                       \
        acc##i = fma((float16)(s[r + i][c]), vv, acc##i);
#define ATTN_PUT(i) vstore16(acc##i, 0, ov[r + i] + d);
            ATTN_EACH_ROW(ATTN_DECL)
            for (int c = 0; c < nc; c++) {
                float16 vv = ATTN_VLOAD16(DT_V, v, vb + (j0 + c) * vs + d);
                ATTN_EACH_ROW(ATTN_STEP)
            }
            ATTN_EACH_ROW(ATTN_PUT)
#undef ATTN_DECL
#undef ATTN_STEP
#undef ATTN_PUT
        }
}
#endif

/* ov[r] += p[r] . V over the tile; vt row c (DVP floats) is at vt + c * DVP. */
void attn_accumulate(float ov[BR][DVP], float s[BR][BC], TILE_SPACE float *vt)
{
    for (int r = 0; r < BR; r += RB)
        for (int d = 0; d < DVP / VW; d++) {
#define ATTN_DECL(i) VVW acc##i = VLOAD_VW(d, ov[r + i]);
#define ATTN_STEP(i)                                                                       \
    if (!ATTN_P_HIDDEN(s[r + i][c]))                                                       \
        acc##i = fma((VVW)(s[r + i][c]), vv, acc##i);
#define ATTN_PUT(i) VSTORE_VW(acc##i, d, ov[r + i]);
            ATTN_EACH_ROW(ATTN_DECL)
            for (int c = 0; c < BC; c++) {
                VVW vv = VLOAD_VW(d, vt + c * DVP);
                ATTN_EACH_ROW(ATTN_STEP)
            }
            ATTN_EACH_ROW(ATTN_PUT)
#undef ATTN_DECL
#undef ATTN_STEP
#undef ATTN_PUT
        }
}

/* Online softmax over one tile of scores: running max m, running sum l, accumulators
 * rescaled; s becomes the probabilities. A row that has seen only -inf keeps m = -inf and
 * uses 0 as its shift, so p = 0, never NaN. A hidden key (score -inf) gets p = -0 and the
 * products with V skip it (0 * NaN in its V row must not reach the row); a visible key whose
 * p underflows to +0 still multiplies its V row, as in the reference. */
void attn_softmax_tile(float s[BR][BC], float ov[BR][DVP], float m[BR], float l[BR])
{
    for (int r = 0; r < BR; r++) {
        VBC sv = VLOAD_BC(0, s[r]);
        float mn = fmax(m[r], HMAX_BC(sv));
        float shift = mn == -INFINITY ? 0.0f : mn;
        VBC p = exp(sv - shift);
        p = select(p, (VBC)(-0.0f), isequal(sv, (VBC)(-INFINITY)));
        float alpha = exp(m[r] - shift);
        l[r] = l[r] * alpha + HSUM_BC(p);
        m[r] = mn;
        VSTORE_BC(p, 0, s[r]);
        if (alpha != 1.0f)
            for (int d = 0; d < DVP; d++)
                ov[r][d] *= alpha;
    }
}

kernel void attn_flash_fwd(ATTN_CPTR(DT_Q) q, ulong q_off, long4 q_st,
                           ATTN_CPTR(DT_K) k, ulong k_off, long4 k_st,
                           ATTN_CPTR(DT_V) v, ulong v_off, long4 v_st,
                           global const float *kp, global const float *vp, long skp,
                           O_PTR o, ulong o_off, long4 o_st, long o_split,
                           global float *lse, ulong lse_off, long4 lse_st, long lse_split,
                           ATTN_CPTR(DT_M) ma, ulong ma_off, long4 ma_st,
                           global const uchar *mb, ulong mb_off, long4 mb_st,
                           long B, long Sq, long Skv, long Hkv, long group,
                           float scale, float softcap, long q_offset, long wl, long wr,
                           long nblocks, long nsplit, long split_len)
{
    attn_rows w;
#if LOCAL_KV
    /* 2-D grid: (row block, bh + split * B * Hkv); a work-group shares bh, so it can share
     * K/V tiles. Padding work-items (blk >= nblocks) help load tiles and store nothing. */
    long blk = get_global_id(0), rest = get_global_id(1);
#else
    long gid = get_global_id(0);
    if (gid >= nblocks * B * Hkv * nsplit)
        return;
    /* Blocks of one (b, hkv) are adjacent; the last (heaviest under causal) run first. */
    long blk = nblocks - 1 - gid % nblocks, rest = gid / nblocks;
#endif
    long bh = rest % (B * Hkv);
    w.b = bh / Hkv;
    w.hkv = bh % Hkv;
    long split = rest / (B * Hkv);
    w.group = group;
    w.nrows = Sq * group;
    w.r0 = blk * BR;

    /* Key range: band of the first row's right edge and last row's left edge, cut to the split. */
    long lo_first, hi_first, lo_last, hi_last;
    attn_band_range(attn_row_query(&w, 0) + q_offset, wl, wr, Skv, &lo_first, &hi_first);
    attn_band_range(attn_row_query(&w, BR - 1) + q_offset, wl, wr, Skv, &lo_last, &hi_last);
    long kbeg = max(lo_first, split * split_len);
    long kend = min(hi_last, min(Skv, (split + 1) * split_len));
#if PACK
    kbeg -= kbeg % BC; /* packed tiles start at multiples of BC (masking covers the rest) */
#endif

    float qv[BR][DK];
    float ov[BR][DVP];
    float m[BR], l[BR];
    for (int r = 0; r < BR; r++) {
        long qb = q_off + w.b * q_st.s0 + attn_row_query(&w, r) * q_st.s1 +
                  attn_row_head(&w, r) * q_st.s2;
        for (int d = 0; d < DK; d++)
            qv[r][d] = ATTN_LOAD(DT_Q, q, qb + d * q_st.s3);
        for (int d = 0; d < DVP; d++)
            ov[r][d] = 0.0f;
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }

    float s[BR][BC]; /* scores, then probabilities */
#if !PACK && !KV_VEC
    float kt[DK * BC];  /* K tile, transposed: kt[d * BC + c] */
    float vt[BC * DVP]; /* V tile, row-major, zero-padded to DVP */
#endif
#if !PACK
    long kb = k_off + w.b * k_st.s0 + w.hkv * k_st.s2;
    long vb = v_off + w.b * v_st.s0 + w.hkv * v_st.s2;
#endif
#if LOCAL_KV
    local float lk[DK * BC], lv[BC * DVP];
    /* The group's key range: from its first row's band to its last row's (rows ascend). */
    attn_rows g = w;
    g.r0 = get_group_id(0) * get_local_size(0) * BR;
    long lo_g, hi_g, unused;
    attn_band_range(attn_row_query(&g, 0) + q_offset, wl, wr, Skv, &lo_g, &unused);
    attn_band_range(attn_row_query(&g, get_local_size(0) * BR - 1) + q_offset, wl, wr, Skv,
                    &unused, &hi_g);
    lo_g = max(lo_g, split * split_len);
    hi_g = min(hi_g, min(Skv, (split + 1) * split_len));
    for (long j0 = lo_g - lo_g % BC; j0 < hi_g; j0 += BC) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is no longer read */
        for (int e = get_local_id(0); e < DK * BC; e += get_local_size(0))
            lk[e] = kp[(bh * DK + e / BC) * skp + j0 + e % BC];
        for (int e = get_local_id(0); e < BC * DVP; e += get_local_size(0))
            lv[e] = vp[(bh * skp + j0) * DVP + e];
        barrier(CLK_LOCAL_MEM_FENCE);
        if (blk >= nblocks || j0 + BC <= kbeg || j0 >= kend)
            continue; /* outside this work-item's band */
        attn_scores(s, qv, lk, BC, scale, softcap);
#else
    for (long j0 = kbeg; j0 < kend; j0 += BC) {
#endif
#if LOCAL_KV
#elif PACK
        attn_scores(s, qv, kp + bh * DK * skp + j0, skp, scale, softcap);
#elif KV_VEC
        attn_scores_kv(s, qv, k, kb, k_st.s1, j0, kend, scale, softcap);
#else
        for (int c = 0; c < BC; c++) {
            long j = j0 + c;
            bool in = j < kend;
            for (int d = 0; d < DK; d++)
                kt[d * BC + c] = in ? ATTN_LOAD(DT_K, k, kb + j * k_st.s1 + d * k_st.s3) : 0.0f;
            for (int d = 0; d < DVP; d++)
                vt[c * DVP + d] =
                    in && d < DV ? ATTN_LOAD(DT_V, v, vb + j * v_st.s1 + d * v_st.s3) : 0.0f;
        }
        attn_scores(s, qv, kt, BC, scale, softcap);
#endif
        bool full = j0 >= lo_last && j0 + BC <= hi_first && j0 + BC <= kend;
        if (!full || HAS_MASK_ADD || HAS_MASK_BOOL)
            attn_tile_mask(s, &w, j0, kend, q_offset, wl, wr, ma, ma_off, ma_st, mb, mb_off,
                           mb_st);
        attn_softmax_tile(s, ov, m, l);
#if LOCAL_KV
        attn_accumulate(ov, s, lv);
#elif PACK
        attn_accumulate(ov, s, vp + (bh * skp + j0) * DVP);
#elif KV_VEC
        /* only keys before kend: p = 0 past it, but 0 * inf or NaN would still poison o */
        attn_accumulate_kv(ov, s, v, vb, v_st.s1, j0, (int)min((long)BC, kend - j0));
#else
        attn_accumulate(ov, s, vt);
#endif
    }

    /* Normalise and store the real rows; an empty row (l == 0) gives 0 and LSE -inf. */
    for (int r = 0; r < BR && w.r0 + r < w.nrows; r++) { /* none for padding blocks */
        long i = attn_row_query(&w, r), h = attn_row_head(&w, r);
        bool empty = l[r] == 0.0f;
        float inv = empty ? 0.0f : 1.0f / l[r];
        long ob = o_off + split * o_split + w.b * o_st.s0 + i * o_st.s1 + h * o_st.s2;
        for (int d = 0; d < DV; d++)
            STORE_O(o, ob + d * o_st.s3, empty ? 0.0f : ov[r][d] * inv);
#if HAS_LSE
        lse[lse_off + split * lse_split + w.b * lse_st.s0 + i * lse_st.s1 + h * lse_st.s2] =
            empty ? -INFINITY : m[r] + log(l[r]);
#endif
    }
}
