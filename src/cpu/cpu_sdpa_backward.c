/* cpu_sdpa_backward.c - the SDPA backward of the CPU backend: FlashAttention-2's backward
 * (Dao 2023, Algorithm 2, key tiles outer) on BLIS block products. For a key tile K_j, V_j of a
 * (batch, KV head) and every query tile Q_i of the group's query heads whose band reaches it:
 *   S = scale Q_i K_j^T, soft-cap, masks, band; P = exp(S - lse_i)   (recomputed, never stored)
 *   dV_j += P^T dO_i,  dP = dO_i V_j^T,  dS = P * (dP - D_i)      (D_i = rowsum(dO_i * O_i),
 *   dR = dS * (1 - tanh^2(r / cap)),  dQ_i += scale dR K_j,  dK_j += scale dR^T Q_i
 * (five single-threaded BLIS products per block; dS is also the additive mask's gradient). D
 * is taken once per row from out before the tiles; memory is O(tiles + rows), never O(S^2).
 *
 * Determinism (the same bits on every run and thread count): the tile sizes are constants and
 * the work items depend on the problem's shape only. An item is (set of groups, key slice):
 * normally one (batch, KV head) group; when dmask_add is given and broadcast over batches or
 * over KV heads (so two groups add into the same elements), one set holding every group,
 * swept in order. Keys are cut into a fixed number of slices (key tiles dealt round-robin,
 * which balances causal bands): enough that there are BWD_MIN_ITEMS items when the groups
 * alone are fewer, whatever the thread count (one slice when dmask_add has a single key
 * column, which every key adds into). Each item sweeps its key tiles, groups, query heads and
 * query tiles serially in a fixed order; it owns the dK/dV rows of its key tiles (finished and
 * stored per tile) and the dmask_add columns of its slice, and accumulates dQ in its slice's
 * private f32 copy. The copies are summed in slice order at the end and rounded once into dq.
 * Which thread runs an item changes nothing. All scratch is allocated before anything is
 * written, so a failed call writes nothing.
 *
 * Inf/NaN: a block whose Q, dO or K rows hold any runs its three accumulating products as
 * plain loops that skip the zero entries of P and dS, so that a pair contributing nothing (a
 * hidden key, a row with nothing visible) never turns 0 * Inf into NaN. */
#include "cpu_sdpa.h"

#include "attn_half.h"
#include "cpu_math.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define BWD_MIN_ITEMS 8 /* items wanted when groups are fewer (a constant: see the header) */
#define ROW_CHUNK ATTN_CPU_BWD_BR /* rows per item of the D pass (its scratch holds Br rows) */

typedef struct bwd_plan {
    int64_t n_kt;      /* key tiles */
    int64_t n_sets;    /* sets of groups (B * Hkv, or 1 when dmask_add is shared) */
    int64_t n_slices;  /* key slices */
    int64_t rows;      /* B * Hq * Sq: query rows */
    int64_t per_thread, dq_copy; /* floats: a thread's scratch, one dQ copy */
} bwd_plan;

/* a * b + c, or -1 when it leaves int64 (sizes are non-negative). */
static int64_t mad(int64_t a, int64_t b, int64_t c)
{
    int64_t r;
    if (a < 0 || b < 0 || c < 0 || __builtin_mul_overflow(a, b, &r) ||
        __builtin_add_overflow(r, c, &r))
        return -1;
    return r;
}

/* Whether two groups add into the same dmask_add elements: the mask has size 1 on a dim where
 * groups differ (batch, or KV head when there are several). */
static int dmask_shared(const attn_sdpa_problem *p)
{
    if (!p->dmask_add.t)
        return 0;
    const int64_t *sh = p->dmask_add.t->shape;
    return (sh[0] == 1 && p->B > 1) || (sh[2] == 1 && p->Hkv > 1);
}

/* The items and scratch of p; returns 0 when a size leaves int64. */
static int make_plan(const attn_sdpa_problem *p, bwd_plan *pl)
{
    const int64_t br = ATTN_CPU_BWD_BR, bc = ATTN_CPU_BWD_BC;
    pl->n_kt = (p->Skv + bc - 1) / bc;
    pl->n_sets = dmask_shared(p) ? 1 : p->B * p->Hkv;
    int64_t want = pl->n_sets >= BWD_MIN_ITEMS ? 1 : (BWD_MIN_ITEMS + pl->n_sets - 1) / pl->n_sets;
    if (p->dmask_add.t && p->dmask_add.t->shape[3] == 1)
        want = 1; /* a one-column mask's gradient sums over every key: one slice owns it */
    pl->n_slices = want < pl->n_kt ? want : pl->n_kt > 0 ? pl->n_kt : 1;
    int64_t blk = mad(br, bc, 0);                                 /* P, dP, soft-cap slope */
    int64_t n = mad(blk, p->softcap > 0 ? 3 : 2, bc);             /* + mask row */
    n = n < 0 ? -1 : mad(br, p->Dk + 2 * p->Dv, n);               /* Q, dO, O rows */
    n = n < 0 ? -1 : mad(2 * bc, p->Dk + p->Dv, n);               /* K, V tiles, dK, dV */
    pl->per_thread = n;
    pl->rows = mad(p->B * p->Hq, p->Sq, 0);
    pl->dq_copy = pl->rows < 0 ? -1 : mad(pl->rows, p->Dk, 0);
    return n >= 0 && pl->dq_copy >= 0 && p->Dk + 2 * p->Dv >= 0;
}

int64_t attn_cpu_sdpa_backward_scratch(const attn_sdpa_problem *p, int threads)
{
    bwd_plan pl;
    if (!make_plan(p, &pl))
        return -1;
    int64_t n = mad(pl.per_thread, threads, pl.rows);
    return n < 0 ? -1 : mad(pl.n_slices, pl.dq_copy, n);
}

typedef struct bwd_ctx {
    const attn_sdpa_problem *p;
    bwd_plan pl;
    float *dvec; /* D per query row, at (b * Hq + h) * Sq + i */
    float *dq;   /* n_slices copies of dQ, rows as dvec, Dk floats each */
    uint8_t *bad; /* per query row as dvec: its q or dout row holds Inf/NaN */
} bwd_ctx;

typedef struct bwd_scratch {
    float *s, *dp, *dcap, *madd, *q, *dout, *o, *kt, *vt, *dk, *dv;
} bwd_scratch;

static bwd_scratch scratch_at(float *base, const attn_sdpa_problem *p)
{
    const int64_t br = ATTN_CPU_BWD_BR, bc = ATTN_CPU_BWD_BC;
    bwd_scratch w;
    w.s = base;
    w.dp = w.s + br * bc;
    w.dcap = w.dp + br * bc;
    w.madd = w.dcap + (p->softcap > 0 ? br * bc : 0);
    w.q = w.madd + bc;
    w.dout = w.q + br * p->Dk;
    w.o = w.dout + br * p->Dv;
    w.kt = w.o + br * p->Dv;
    w.vt = w.kt + bc * p->Dk;
    w.dk = w.vt + bc * p->Dv;
    w.dv = w.dk + bc * p->Dk;
    return w;
}

/* Rows [r0, r0 + n) of plane (b, h) of o as a matrix: in place when BLIS can read it, else
 * converted into dst (n x cols). */
static attn_cpu_mat rows_mat(const attn_operand *o, int64_t rows, int64_t cols, int64_t b,
                             int64_t h, int64_t r0, int64_t n, float *dst)
{
    attn_cpu_mat m;
    if (attn_cpu_plane_mat(o, rows, cols, b, h, r0, &m))
        return m;
    attn_cpu_plane_to_f32(o, b, h, r0, n, cols, dst);
    return (attn_cpu_mat){dst, cols, 1};
}

static attn_cpu_mat transposed(attn_cpu_mat m)
{
    return (attn_cpu_mat){m.p, m.cs, m.rs};
}

/* ---- row kernels ---------------------------------------------------------------------------- */

/* Soft-cap of a row of scaled scores r: s = cap tanh(r / cap) (as attn_cpu_logits_row computes
 * it) and its slope 1 - tanh^2(r / cap). */
static void softcap_row(float *s, int64_t n, float cap, float *slope)
{
    for (int64_t j = 0; j < n; j++) {
        float t = tanhf(s[j] / cap);
        slope[j] = 1.0f - t * t;
        s[j] = cap * t;
    }
}

/* Logits into probabilities P = exp(s - lse). A row with no visible key (lse = -inf) gets
 * P = 0, so it contributes nothing and never NaN; a hidden key (s = -inf) gets exactly 0. */
ATTN_CPU_HOT
static void exp_row(float *s, int64_t n, float lse)
{
    if (lse == -INFINITY) {
        for (int64_t j = 0; j < n; j++)
            s[j] = 0.0f;
        return;
    }
    for (int64_t j = 0; j < n; j++)
        s[j] = attn_cpu_expf(s[j] - lse);
}

/* dS = P * (dP - D) in place of dP, 0 wherever P is 0 (hidden keys, rows with nothing
 * visible), whatever dP holds there (a hidden V row may be non-finite). */
ATTN_CPU_HOT
static void ds_row(const float *pr, float *dp, int64_t n, float d)
{
    for (int64_t j = 0; j < n; j++) {
        uint32_t keep = -(uint32_t)(pr[j] != 0.0f);
        dp[j] = attn_bits_f32(attn_f32_bits(pr[j] * (dp[j] - d)) & keep);
    }
}

ATTN_CPU_HOT
static void mul_row(float *x, const float *y, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        x[j] *= y[j];
}

/* Query row i of head h against keys [j0, j0 + n): the logits (soft-cap slope into slope) and
 * the probabilities, in place of the row s of scaled scores. */
static void probs_row(const attn_sdpa_problem *p, float *s, float *slope, float *madd_row,
                      int64_t b, int64_t i, int64_t h, int64_t j0, int64_t n)
{
    const float *madd = NULL;
    const uint8_t *mbool = NULL;
    if (p->softcap > 0)
        softcap_row(s, n, (float)p->softcap, slope);
    if (p->mask_add.t) {
        attn_convert_to_f32_strided(attn_cpu_elem(&p->mask_add, b, i, h, j0), p->mask_add.dtype,
                                    n, p->mask_add.stride[3], madd_row);
        madd = madd_row;
    }
    if (p->mask_bool.t)
        mbool = attn_cpu_elem(&p->mask_bool, b, i, h, j0);
    int64_t lo, hi;
    attn_band(p, i, &lo, &hi);
    attn_cpu_logits_row(s, n, 0.0f, madd, mbool, p->mask_bool.stride[3], j0, lo, hi);
    exp_row(s, n, *(const float *)attn_cpu_elem(&p->lse, b, i, h, 0));
}

/* Adds the row's dS into dmask_add (stride-0 dims fold the broadcast sums). */
static void dmask_row(const attn_sdpa_problem *p, const float *ds, int64_t b, int64_t i,
                      int64_t h, int64_t j0, int64_t n)
{
    float *dst = (float *)attn_cpu_elem(&p->dmask_add, b, i, h, j0);
    const int64_t st = p->dmask_add.stride[3];
    for (int64_t j = 0; j < n; j++)
        dst[j * st] += ds[j];
}

/* Whether every element of the rows x cols matrix m is finite: the largest exponent field is
 * below the Inf/NaN one (an integer max, which vectorises). */
ATTN_CPU_HOT
static int mat_finite(attn_cpu_mat m, int64_t rows, int64_t cols)
{
    uint32_t top = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = m.p + r * m.rs;
        if (m.cs == 1)
            for (int64_t c = 0; c < cols; c++) {
                uint32_t e = attn_f32_bits(x[c]) & 0x7f800000u;
                top = e > top ? e : top;
            }
        else
            for (int64_t c = 0; c < cols; c++) {
                uint32_t e = attn_f32_bits(x[c * m.cs]) & 0x7f800000u;
                top = e > top ? e : top;
            }
    }
    return top != 0x7f800000u;
}

/* C (m x n, ldc) += alpha A B, skipping the zero entries of A: the products of a block whose
 * operands hold Inf/NaN, where a pair that contributes nothing (P or dS = 0: a hidden key, a row
 * with nothing visible) must not turn 0 * Inf into NaN. */
static void gemm_skip_zero(int64_t m, int64_t n, int64_t k, float alpha, attn_cpu_mat a,
                           attn_cpu_mat b, float *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t l = 0; l < k; l++) {
            const float x = a.p[i * a.rs + l * a.cs];
            if (x == 0.0f)
                continue;
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] += alpha * (x * b.p[l * b.rs + j * b.cs]);
        }
}

/* C += alpha A B on BLIS, or skipping A's zeros when the operands are not all finite. */
static void accumulate(int exact, int64_t m, int64_t n, int64_t k, float alpha, attn_cpu_mat a,
                       attn_cpu_mat b, float *c, int64_t ldc)
{
    if (exact)
        gemm_skip_zero(m, n, k, alpha, a, b, c, ldc);
    else
        attn_cpu_sgemm(m, n, k, alpha, a, b, 1.0f, c, ldc);
}

/* ---- blocks and items ------------------------------------------------------------------------ */

/* The current key tile of an item: group g (batch b, KV head hk), keys [j0, j0 + nc) as f32
 * matrices, the slice's dQ copy. */
typedef struct bwd_tile {
    int64_t b, hk, j0, nc;
    attn_cpu_mat k, v;
    int kbad; /* a K row of the tile holds Inf/NaN */
    float *dq;
} bwd_tile;

/* Query rows [i0, i0 + nr) of head h against the tile: the five products, over only the keys
 * the block's band reaches. */
static void block_step(const bwd_ctx *c, bwd_scratch *w, const bwd_tile *t, int64_t h,
                       int64_t i0, int64_t nr)
{
    const attn_sdpa_problem *p = c->p;
    const int64_t bc = ATTN_CPU_BWD_BC, b = t->b;
    int64_t lo, hi, unused;
    attn_band(p, i0, &lo, &unused);
    attn_band(p, i0 + nr - 1, &unused, &hi);
    const int64_t ja = lo > t->j0 ? lo : t->j0;
    const int64_t jb = hi < t->j0 + t->nc ? hi : t->j0 + t->nc, n = jb - ja, off = ja - t->j0;
    if (n <= 0)
        return; /* no row of the block sees a key of the tile */
    attn_cpu_mat q = rows_mat(&p->q, p->Sq, p->Dk, b, h, i0, nr, w->q);
    attn_cpu_mat dout = rows_mat(&p->dout, p->Sq, p->Dv, b, h, i0, nr, w->dout);
    attn_cpu_mat kj = {t->k.p + off * t->k.rs, t->k.rs, t->k.cs};
    attn_cpu_mat vj = {t->v.p + off * t->v.rs, t->v.rs, t->v.cs};
    const float scale = (float)p->scale;
    attn_cpu_sgemm(nr, n, p->Dk, scale, q, transposed(kj), 0.0f, w->s, bc);
    for (int64_t r = 0; r < nr; r++)
        probs_row(p, w->s + r * bc, w->dcap + r * bc, w->madd, b, i0 + r, h, ja, n);
    /* Non-finite Q, dO or K rows would leak 0 * Inf into pairs that contribute nothing (V's
     * only product, dP, is cleaned by ds_row). */
    const uint8_t *bad = c->bad + (b * p->Hq + h) * p->Sq + i0;
    int exact = t->kbad;
    for (int64_t r = 0; r < nr; r++)
        exact |= bad[r];
    attn_cpu_mat pm = {w->s, bc, 1}, dsm = {w->dp, bc, 1};
    accumulate(exact, n, p->Dv, nr, 1.0f, transposed(pm), dout, w->dv + off * p->Dv, p->Dv);
    attn_cpu_sgemm(nr, n, p->Dv, 1.0f, dout, transposed(vj), 0.0f, w->dp, bc);
    const float *dvec = c->dvec + (b * p->Hq + h) * p->Sq + i0;
    for (int64_t r = 0; r < nr; r++) {
        float *ds = w->dp + r * bc;
        ds_row(w->s + r * bc, ds, n, dvec[r]);
        if (p->dmask_add.t)
            dmask_row(p, ds, b, i0 + r, h, ja, n);
        if (p->softcap > 0)
            mul_row(ds, w->dcap + r * bc, n);
    }
    float *dq = t->dq + ((b * p->Hq + h) * p->Sq + i0) * p->Dk;
    accumulate(exact, nr, p->Dk, n, scale, dsm, kj, dq, p->Dk);
    accumulate(exact, n, p->Dk, nr, scale, transposed(dsm), q, w->dk + off * p->Dk, p->Dk);
}

/* Key tile kt of group g: every query tile of the group's heads that its band reaches, then
 * the tile's dK and dV rows stored. */
static void key_tile(const bwd_ctx *c, bwd_scratch *w, int64_t g, int64_t kt, float *dq)
{
    const attn_sdpa_problem *p = c->p;
    const int64_t br = ATTN_CPU_BWD_BR, bc = ATTN_CPU_BWD_BC;
    bwd_tile t = {.b = g / p->Hkv, .hk = g % p->Hkv, .j0 = kt * bc, .dq = dq};
    t.nc = p->Skv - t.j0 < bc ? p->Skv - t.j0 : bc;
    t.k = rows_mat(&p->k, p->Skv, p->Dk, t.b, t.hk, t.j0, t.nc, w->kt);
    t.v = rows_mat(&p->v, p->Skv, p->Dv, t.b, t.hk, t.j0, t.nc, w->vt);
    t.kbad = !mat_finite(t.k, t.nc, p->Dk);
    memset(w->dk, 0, (size_t)(t.nc * p->Dk) * sizeof(float));
    memset(w->dv, 0, (size_t)(t.nc * p->Dv) * sizeof(float));
    for (int64_t h = t.hk * p->group; h < (t.hk + 1) * p->group; h++)
        for (int64_t i0 = 0; i0 < p->Sq; i0 += br)
            block_step(c, w, &t, h, i0, p->Sq - i0 < br ? p->Sq - i0 : br);
    for (int64_t r = 0; r < t.nc; r++) {
        attn_cpu_store_row(&p->dk, t.b, t.j0 + r, t.hk, w->dk + r * p->Dk, p->Dk);
        attn_cpu_store_row(&p->dv, t.b, t.j0 + r, t.hk, w->dv + r * p->Dv, p->Dv);
    }
}

/* Item it: slice it % n_slices of set it / n_slices, key tiles in order, groups in order. */
static void run_item(const bwd_ctx *c, bwd_scratch *w, int64_t it)
{
    const attn_sdpa_problem *p = c->p;
    const int64_t set = it / c->pl.n_slices, slice = it % c->pl.n_slices;
    const int64_t g0 = c->pl.n_sets == 1 ? 0 : set;
    const int64_t g1 = c->pl.n_sets == 1 ? p->B * p->Hkv : set + 1;
    float *dq = c->dq + slice * c->pl.dq_copy;
    for (int64_t kt = slice; kt < c->pl.n_kt; kt += c->pl.n_slices)
        for (int64_t g = g0; g < g1; g++)
            key_tile(c, w, g, kt, dq);
}

/* ---- passes over rows ------------------------------------------------------------------------ */

/* D_i = rowsum(dO_i * O_i) of every query row (double sums, rounded once), and whether its
 * q or dO row holds Inf/NaN. */
static void row_terms(const bwd_ctx *c, bwd_scratch *w)
{
    const attn_sdpa_problem *p = c->p;
    const int64_t per = (p->Sq + ROW_CHUNK - 1) / ROW_CHUNK, n = p->B * p->Hq * per;
#pragma omp for schedule(static)
    for (int64_t it = 0; it < n; it++) {
        const int64_t bh = it / per, b = bh / p->Hq, h = bh % p->Hq, i0 = it % per * ROW_CHUNK;
        const int64_t nr = p->Sq - i0 < ROW_CHUNK ? p->Sq - i0 : ROW_CHUNK;
        attn_cpu_plane_to_f32(&p->dout, b, h, i0, nr, p->Dv, w->dout);
        attn_cpu_plane_to_f32(&p->out, b, h, i0, nr, p->Dv, w->o);
        attn_cpu_mat q = rows_mat(&p->q, p->Sq, p->Dk, b, h, i0, nr, w->q);
        for (int64_t r = 0; r < nr; r++) {
            c->bad[bh * p->Sq + i0 + r] =
                (uint8_t)(!mat_finite((attn_cpu_mat){w->dout + r * p->Dv, p->Dv, 1}, 1, p->Dv) ||
                          !mat_finite((attn_cpu_mat){q.p + r * q.rs, q.rs, q.cs}, 1, p->Dk));
            double d = 0.0;
            for (int64_t e = 0; e < p->Dv; e++)
                d += (double)w->dout[r * p->Dv + e] * w->o[r * p->Dv + e];
            c->dvec[bh * p->Sq + i0 + r] = (float)d;
        }
    }
}

/* Zeroes the dQ copies and dmask_add (the items add into both). */
static void zero_accumulators(const bwd_ctx *c)
{
    const attn_sdpa_problem *p = c->p;
    const int64_t n = c->pl.n_slices * c->pl.rows;
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < n; r++)
        memset(c->dq + r * p->Dk, 0, (size_t)p->Dk * sizeof(float));
    if (!p->dmask_add.t)
        return;
    const int64_t *sh = p->dmask_add.t->shape, m = sh[0] * sh[1] * sh[2];
#pragma omp for schedule(static)
    for (int64_t r = 0; r < m; r++) {
        float *row = (float *)attn_cpu_elem(&p->dmask_add, r / (sh[1] * sh[2]),
                                            r / sh[2] % sh[1], r % sh[2], 0);
        for (int64_t j = 0; j < sh[3]; j++)
            row[j * p->dmask_add.stride[3]] = 0.0f;
    }
}

/* dq = the sum of the slices' copies, in slice order, rounded once. */
static void finish_dq(const bwd_ctx *c)
{
    const attn_sdpa_problem *p = c->p;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < c->pl.rows; r++) {
        float *acc = c->dq + r * p->Dk;
        for (int64_t s = 1; s < c->pl.n_slices; s++)
            for (int64_t e = 0; e < p->Dk; e++)
                acc[e] += c->dq[s * c->pl.dq_copy + r * p->Dk + e];
        const int64_t i = r % p->Sq, bh = r / p->Sq;
        attn_cpu_store_row(&p->dq, bh / p->Hq, i, bh % p->Hq, acc, p->Dk);
    }
}

attn_status attn_cpu_sdpa_backward(const attn_sdpa_problem *p, int threads)
{
    const int64_t total = attn_cpu_sdpa_backward_scratch(p, threads);
    if (total < 0 || (uint64_t)total > SIZE_MAX / sizeof(float))
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: the backward's scratch exceeds any memory");
    bwd_ctx c = {.p = p};
    make_plan(p, &c.pl);
    float *mem = malloc((size_t)total * sizeof(float) + (size_t)c.pl.rows + 1);
    if (!mem)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes of scratch",
                         (size_t)total * sizeof(float));
    c.dvec = mem;
    c.dq = c.dvec + c.pl.rows;
    float *per_thread = c.dq + c.pl.n_slices * c.pl.dq_copy;
    c.bad = (uint8_t *)(mem + total);
    const int64_t items = c.pl.n_sets * c.pl.n_slices;
#pragma omp parallel num_threads(threads)
    {
        bwd_scratch w = scratch_at(per_thread + c.pl.per_thread * omp_get_thread_num(), p);
        zero_accumulators(&c);
        row_terms(&c, &w);
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++)
            run_item(&c, &w, it);
        finish_dq(&c);
    }
    free(mem);
    return ATTN_OK;
}
