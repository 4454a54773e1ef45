/* cpu_sdpa_decode.c - the decode path (few queries over a long KV; cpu_sdpa_impl.c decides).
 * There is too little query work to split, so the KV range is split instead: a work item is
 * (batch, key chunk, block of KV heads), each head with all G = (Hq/Hkv) * Sq query rows of
 * its GQA group, so each K/V row is read from memory once per call and the threads stream
 * disjoint ranges. Items cover every KV head (rows of all heads of a key are adjacent in BSHD
 * layouts) unless the key chunks are too few to keep the threads busy (short caches), then
 * the SIMD path splits the heads into blocks. Per tile of KB keys and KV head: scores of the G rows
 * (G x KB), one online-softmax step per row, then O += P V.
 * - SIMD path (AVX-512 or AVX2 CPUs with FMA+F16C, rows with unit element stride;
 *   cpu_sdpa_decode_simd.h): register-blocked kernels read K and V in place in their storage
 *   dtype. A tile where some
 *   row has p = 0 gets its V rows checked for Inf/NaN (0 * Inf would leak); if any, that tile's
 *   P V runs on the portable kernel, which skips p = 0 terms.
 * - Portable path (simd=off, other CPUs, odd strides): K and V of all heads are converted to
 *   f32 key-major per tile (sequential memory in BSHD layouts) and the products are the
 *   vectorisable loops of cpu_sdpa_softmax.c.
 * Each (head, chunk) leaves a partial (m, l, o) per row, merged by log-sum-exp:
 *   M = max_c m_c,  L = sum_c l_c e^(m_c - M),  O = sum_c o_c e^(m_c - M),  out = O / L.
 * key_score: each row step's probabilities p = exp(s - m) are kept (G rows x the keys the band
 * reaches, per KV head: small for few queries) with the step's m, and after the merge each key
 * sums p exp(m - lse) over its G rows, so K is read once and no exponential is taken twice
 * (items of keys per KV head, rows in a fixed order). Batches whose kept values would exceed
 * ATTN_CPU_DECODE_KS_FLOATS run in slices. */
#include "cpu_sdpa.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define KB 128             /* keys per tile (one softmax step per head and tile) */
#define MIN_CHUNK 1024     /* keys per work item, at least */
#define ITEMS_PER_THREAD 2 /* aim for this many items per thread (balance vs. merge) */
#define KS_KEYS 1024       /* keys per item of the key_score sums */

typedef struct dec_ctx {
    const attn_sdpa_problem *p;
    int64_t G, jlo, jhi, chunk, n_chunks;
    int64_t hblock, n_hblocks; /* KV heads per item, blocks per (batch, chunk) */
    attn_cpu_simd simd; /* SIMD kernels reading K/V in place, or the portable path */
    attn_cpu_dec_qk_fn qk;
    attn_cpu_dec_pv_fn pv;
    int ukr; /* items on the micro-kernel (cpu_sdpa_decode_ukr.c) */
    attn_cpu_ukr u;
    attn_cpu_panel_fns fns;
    float *part; /* per item: G rows of (m, l, o[Dv]) */
    /* key_score (else NULL): per group, G rows of the probabilities of keys [jlo, jhi) and G
     * rows of the m of each tile (n_tiles); the LSE of each row (group * G + r) */
    float *probs, *tile_m, *lse;
    int64_t n_tiles;
} dec_ctx;

typedef struct dec_scratch {
    float *q, *s, *k, *v, *madd, *o, *col, *ukr;
} dec_scratch;

static int64_t row_floats(const attn_sdpa_problem *p)
{
    return 2 + p->Dv;
}

/* Per-thread scratch: q rows of every head, scores, K/V tiles in f32 (the portable path
 * converts every head's tile; the SIMD path only one head's V tile, for tiles with hidden
 * non-finite V rows), one additive-mask row, one merged output row. */
static int64_t kv_tile_floats(const dec_ctx *c, int64_t d)
{
    return (c->simd ? 0 : c->p->Hkv - 1) * KB * d + KB * d;
}

static int64_t scratch_floats(const dec_ctx *c)
{
    const attn_sdpa_problem *p = c->p;
    return p->Hkv * c->G * p->Dk + c->G * KB + kv_tile_floats(c, p->Dk) +
           kv_tile_floats(c, p->Dv) + KB + p->Dv + (p->key_score.t ? KS_KEYS : 0) +
           (c->ukr ? attn_cpu_dec_ukr_floats(p, &c->u, c->G) : 0);
}

static dec_scratch scratch_at(float *base, const dec_ctx *c)
{
    const attn_sdpa_problem *p = c->p;
    dec_scratch s;
    s.q = base;
    s.s = s.q + p->Hkv * c->G * p->Dk;
    s.k = s.s + c->G * KB;
    s.v = s.k + kv_tile_floats(c, p->Dk);
    s.madd = s.v + kv_tile_floats(c, p->Dv);
    s.o = s.madd + KB;
    s.col = s.o + p->Dv;
    s.ukr = s.col + (p->key_score.t ? KS_KEYS : 0);
    return s;
}

/* Query row r of group hk: head and query index. */
static void row_of(const dec_ctx *c, int64_t hk, int64_t r, int64_t *h, int64_t *i)
{
    *h = hk * c->p->group + r / c->p->Sq;
    *i = r % c->p->Sq;
}

static float *partial(const dec_ctx *c, int64_t g, int64_t chunk)
{
    return c->part + (g * c->n_chunks + chunk) * c->G * row_floats(c->p);
}

static void init_item(const dec_ctx *c, dec_scratch *w, int64_t b, int64_t chunk, int64_t h0,
                      int64_t h1)
{
    const attn_sdpa_problem *p = c->p;
    int64_t G = c->G;
    for (int64_t hk = h0; hk < h1; hk++) {
        float *part = partial(c, b * p->Hkv + hk, chunk);
        for (int64_t r = 0; r < G; r++) {
            int64_t h, i;
            row_of(c, hk, r, &h, &i);
            attn_cpu_plane_to_f32(&p->q, b, h, i, 1, p->Dk, w->q + (hk * G + r) * p->Dk);
            part[r] = -INFINITY;
            part[G + r] = 0.0f;
        }
        for (int64_t e = 0; e < G * p->Dv; e++)
            part[2 * G + e] = 0.0f;
    }
}

#if ATTN_CPU_HAVE_AVX2_KERNELS
/* Rows of head hk of operand o (batch b) from key j0, read in place. */
static attn_cpu_rows head_rows(const attn_operand *o, int64_t b, int64_t hk, int64_t j0)
{
    return (attn_cpu_rows){attn_cpu_elem(o, b, j0, hk, 0), o->dtype, o->stride[1]};
}

/* Whether the G x nc probabilities of the tile hold an exact 0 (branch-free, vectorises). */
static int any_zero(const float *s, int64_t G, int64_t nc)
{
    int zero = 0;
    for (int64_t r = 0; r < G; r++)
        for (int64_t j = 0; j < nc; j++)
            zero |= s[r * KB + j] == 0.0f;
    return zero;
}

/* Whether some key of the tile has p = 0 (hidden: -0, or visible and underflowed: +0) in some
 * row and a V row holding Inf/NaN: then the portable product, which skips exactly the hidden
 * keys, runs instead (the SIMD one adds every term); converts the head's V tile into w->v when
 * it has to look. */
static int hidden_bad_v(const dec_ctx *c, dec_scratch *w, int64_t b, int64_t hk, int64_t j0,
                        int64_t nc)
{
    const attn_sdpa_problem *p = c->p;
    if (!any_zero(w->s, c->G, nc))
        return 0;
    attn_cpu_plane_to_f32(&p->v, b, hk, j0, nc, p->Dv, w->v);
    for (int64_t j = 0; j < nc; j++) {
        int zero = 0;
        for (int64_t r = 0; r < c->G; r++)
            zero |= w->s[r * KB + j] == 0.0f;
        for (int64_t e = 0; zero && e < p->Dv; e++)
            if (!isfinite(w->v[j * p->Dv + e]))
                return 1;
    }
    return 0;
}
#endif /* ATTN_CPU_HAVE_AVX2_KERNELS */

/* key_score: the tile's probabilities (G rows of w->s) and each row's m after the step. */
static void keep_tile(const dec_ctx *c, const dec_scratch *w, int64_t g, const float *m,
                      int64_t j0, int64_t nc)
{
    const int64_t keys = c->jhi - c->jlo, t = (j0 - c->jlo) / KB;
    for (int64_t r = 0; r < c->G; r++) {
        memcpy(c->probs + (g * c->G + r) * keys + (j0 - c->jlo), w->s + r * KB,
               (size_t)nc * sizeof(float));
        c->tile_m[(g * c->G + r) * c->n_tiles + t] = m[r];
    }
}

/* Keys [j0, j0 + nc) for KV head hk of batch b. Portable path: K and V of all heads already
 * converted into w->k, w->v. SIMD path: read in place by the SIMD kernels. */
static void head_tile(const dec_ctx *c, dec_scratch *w, int64_t b, int64_t hk, int64_t chunk,
                      int64_t j0, int64_t nc)
{
    const attn_sdpa_problem *p = c->p;
    int64_t G = c->G;
    float *part = partial(c, b * p->Hkv + hk, chunk), *o = part + 2 * G;
    const float *q = w->q + hk * G * p->Dk;
#if ATTN_CPU_HAVE_AVX2_KERNELS
    attn_cpu_rows kr = head_rows(&p->k, b, hk, j0), vr = head_rows(&p->v, b, hk, j0);
    if (c->simd)
        c->qk(q, G, &kr, nc, p->Dk, (float)p->scale, w->s, KB, &vr, p->Dv);
    else
#endif
        attn_cpu_qk_block(q, G, w->k + hk * nc * p->Dk, nc, p->Dk, (float)p->scale, w->s, KB);
    for (int64_t r = 0; r < G; r++) {
        int64_t h, i;
        row_of(c, hk, r, &h, &i);
        attn_cpu_row_step(p, w->s + r * KB, w->madd, o + r * p->Dv, &part[r], &part[G + r], b,
                          i, h, j0, nc);
    }
    if (c->probs)
        keep_tile(c, w, b * p->Hkv + hk, part, j0, nc);
#if ATTN_CPU_HAVE_AVX2_KERNELS
    if (c->simd) {
        if (!hidden_bad_v(c, w, b, hk, j0, nc))
            c->pv(w->s, KB, G, &vr, nc, p->Dv, o);
        else
            attn_cpu_pv_block(w->s, KB, G, w->v, nc, p->Dv, o);
        return;
    }
#endif
    attn_cpu_pv_block(w->s, KB, G, w->v + hk * nc * p->Dv, nc, p->Dv, o);
}

/* Keys [*j0, *j1) of chunk k: the band's KB-key tiles spread evenly over the chunks (rounding
 * every chunk up to whole tiles instead would leave the last one short and the threads
 * unbalanced: 4097 keys in 4 chunks would be 1152 x 3 + 641). */
static void chunk_range(const dec_ctx *c, int64_t k, int64_t *j0, int64_t *j1)
{
    const int64_t tiles = (c->jhi - c->jlo + KB - 1) / KB;
    *j0 = c->jlo + k * tiles / c->n_chunks * KB;
    *j1 = c->jlo + (k + 1) * tiles / c->n_chunks * KB;
    *j0 = *j0 < c->jhi ? *j0 : c->jhi;
    *j1 = *j1 < c->jhi ? *j1 : c->jhi;
}

/* Item it: batch, key chunk, KV heads [h0, h1). */
static void run_item(const dec_ctx *c, dec_scratch *w, int64_t it)
{
    const attn_sdpa_problem *p = c->p;
    int64_t b = it / (c->n_chunks * c->n_hblocks), chunk = it / c->n_hblocks % c->n_chunks;
    int64_t h0 = it % c->n_hblocks * c->hblock;
    int64_t h1 = h0 + c->hblock < p->Hkv ? h0 + c->hblock : p->Hkv;
    init_item(c, w, b, chunk, h0, h1);
    int64_t j_begin, j_end;
    chunk_range(c, chunk, &j_begin, &j_end);
    if (c->ukr) {
        for (int64_t hk = h0; hk < h1; hk++)
            attn_cpu_dec_ukr_run(p, &c->u, &c->fns, w->ukr, w->q + hk * c->G * p->Dk, c->G,
                                 b, hk, j_begin, j_end, partial(c, b * p->Hkv + hk, chunk));
        return;
    }
    for (int64_t j0 = j_begin; j0 < j_end; j0 += KB) {
        int64_t nc = j_end - j0 < KB ? j_end - j0 : KB;
        if (!c->simd) {
            attn_cpu_heads_to_f32(&p->k, b, j0, nc, p->Hkv, p->Dk, w->k);
            attn_cpu_heads_to_f32(&p->v, b, j0, nc, p->Hkv, p->Dv, w->v);
        }
        for (int64_t hk = h0; hk < h1; hk++)
            head_tile(c, w, b, hk, chunk, j0, nc);
    }
}

/* Merges the chunk partials of row r of group g into o (Dv floats) and stores the results. */
static void merge_row(const dec_ctx *c, int64_t g, int64_t r, float *o)
{
    const attn_sdpa_problem *p = c->p;
    int64_t G = c->G, rf = row_floats(p), b = g / p->Hkv, h, i;
    float M = -INFINITY, L = 0.0f, lse;
    for (int64_t k = 0; k < c->n_chunks; k++) {
        float mk = c->part[(g * c->n_chunks + k) * G * rf + r];
        M = mk > M ? mk : M;
    }
    float mu = M == -INFINITY ? 0.0f : M;
    for (int64_t e = 0; e < p->Dv; e++)
        o[e] = 0.0f;
    for (int64_t k = 0; k < c->n_chunks; k++) {
        const float *part = c->part + (g * c->n_chunks + k) * G * rf;
        if (part[G + r] == 0.0f && part[r] == -INFINITY)
            continue; /* nothing visible in this chunk (its o is 0) */
        float f = expf(part[r] - mu);
        L += part[G + r] * f;
        for (int64_t e = 0; e < p->Dv; e++)
            o[e] += part[2 * G + r * p->Dv + e] * f;
    }
    attn_cpu_finish_row(o, p->Dv, M, L, &lse);
    row_of(c, g % p->Hkv, r, &h, &i);
    attn_cpu_store_row(&p->out, b, i, h, o, p->Dv);
    if (p->lse.t)
        *(float *)attn_cpu_elem(&p->lse, b, i, h, 0) = lse;
    if (c->lse)
        c->lse[g * G + r] = lse;
}

/* key_score of keys [j0, j0 + n) (n <= KS_KEYS) of group g from the kept probabilities: P =
 * p exp(m - lse) per tile of each row, the rows in order; a row with nothing visible (lse
 * -inf) adds nothing; keys the band leaves out get 0. */
static void key_score_keys(const dec_ctx *c, dec_scratch *w, int64_t g, int64_t j0, int64_t n)
{
    const attn_sdpa_problem *p = c->p;
    const int64_t keys = c->jhi - c->jlo;
    const int64_t lo = j0 > c->jlo ? j0 : c->jlo, hi = j0 + n < c->jhi ? j0 + n : c->jhi;
    for (int64_t j = 0; j < n; j++)
        w->col[j] = 0.0f;
    for (int64_t r = 0; hi > lo && r < c->G; r++) {
        const int64_t row = g * c->G + r;
        const float lse = c->lse[row];
        if (lse == -INFINITY)
            continue;
        for (int64_t a = lo, e; a < hi; a = e) {
            const int64_t t = (a - c->jlo) / KB;
            const float m = c->tile_m[row * c->n_tiles + t];
            e = c->jlo + (t + 1) * KB < hi ? c->jlo + (t + 1) * KB : hi;
            /* the step subtracted 0 while nothing was visible (see attn_cpu_softmax_row) */
            attn_cpu_ks_add_scaled(c->probs + row * keys + (a - c->jlo), e - a,
                                   expf((m == -INFINITY ? 0.0f : m) - lse), w->col + (a - j0));
        }
    }
    attn_cpu_ks_store(p, g / p->Hkv, g % p->Hkv, j0, n, w->col);
}

/* Floats of probabilities one batch keeps for key_score (-1 past int64). */
static int64_t batch_probs(const attn_sdpa_problem *p)
{
    int64_t lo, hi, unused, n;
    attn_band(p, 0, &lo, &unused);
    attn_band(p, p->Sq - 1, &unused, &hi);
    hi = hi < p->Skv ? hi : p->Skv;
    return __builtin_mul_overflow(p->Hq * p->Sq, hi > lo ? hi - lo : 0, &n) ? -1 : n;
}

int attn_cpu_decode_keeps_probs(const attn_sdpa_problem *p)
{
    const int64_t n = batch_probs(p);
    return n >= 0 && n <= ATTN_CPU_DECODE_KS_FLOATS;
}

/* Batches [b0, b0 + nb) of p as a problem of their own (host operands moved by b0 batches;
 * broadcast operands have batch stride 0). */
static attn_sdpa_problem batch_slice(const attn_sdpa_problem *p, int64_t b0, int64_t nb)
{
    attn_sdpa_problem s = *p;
    attn_operand *const ops[] = {&s.q,        &s.k,         &s.v,        &s.out,
                                 &s.lse,      &s.mask_add,  &s.mask_bool, &s.key_score};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (ops[i]->t)
            ops[i]->ptr = (char *)ops[i]->ptr +
                          b0 * ops[i]->stride[0] * (int64_t)attn_dtype_size(ops[i]->dtype);
    s.B = nb;
    return s;
}

/* Chunking: enough items to balance the threads, but chunks of at least MIN_CHUNK keys (about:
 * the tiles are spread evenly, chunk_range). */
static void plan(dec_ctx *c, int threads)
{
    const attn_sdpa_problem *p = c->p;
    int64_t unused;
    attn_band(p, 0, &c->jlo, &unused);
    attn_band(p, p->Sq - 1, &unused, &c->jhi);
    c->jhi = c->jhi < p->Skv ? c->jhi : p->Skv;
    c->jhi = c->jhi > c->jlo ? c->jhi : c->jlo; /* an empty band may sit beyond Skv */
    int64_t keys = c->jhi - c->jlo;
    int64_t want = (ITEMS_PER_THREAD * threads + p->B - 1) / p->B;
    int64_t most = (keys + MIN_CHUNK - 1) / MIN_CHUNK;
    const int64_t tiles = (keys + KB - 1) / KB;
    c->n_chunks = want < most ? want : most;
    c->n_chunks = c->n_chunks < tiles ? c->n_chunks : tiles;
    c->n_chunks = c->n_chunks < 1 ? 1 : c->n_chunks;
    c->chunk = (tiles + c->n_chunks - 1) / c->n_chunks * KB; /* the longest chunk */
    int64_t blocks = (ITEMS_PER_THREAD * threads + p->B * c->n_chunks - 1) / (p->B * c->n_chunks);
    blocks = blocks < 1 || !(c->simd || c->ukr) ? 1 : blocks > p->Hkv ? p->Hkv : blocks; /* the
                           portable path converts the tiles of all heads at once */
    c->hblock = p->Hkv > 0 ? (p->Hkv + blocks - 1) / blocks : 1;
    c->n_hblocks = p->Hkv > 0 ? (p->Hkv + c->hblock - 1) / c->hblock : 1;
}

int attn_cpu_decode_uses_ukr(const attn_sdpa_problem *p, attn_cpu_ukr *u)
{
    return attn_cpu_ukr_get(u) && attn_cpu_dec_ukr_fits(p, u, p->group * p->Sq);
}

int64_t attn_cpu_decode_items(const attn_sdpa_problem *p, int threads)
{
    dec_ctx c = {.p = p};
    plan(&c, threads);
    return p->B * c.n_chunks;
}

attn_cpu_simd attn_cpu_decode_uses_simd(const attn_sdpa_problem *p, int simd)
{
    /* Element strides of size-1 dimensions are meaningless; rows of one element are
     * contiguous whatever they say. */
    int rows = (p->k.stride[3] == 1 || p->Dk == 1) && (p->v.stride[3] == 1 || p->Dv == 1);
    return rows ? attn_cpu_simd_use(simd) : ATTN_CPU_SIMD_OFF;
}

/* The kernels of the chosen SIMD set. */
static void pick_kernels(dec_ctx *c)
{
#if ATTN_CPU_HAVE_AVX2_KERNELS
    c->qk = c->simd == ATTN_CPU_SIMD_AVX512 ? attn_cpu_dec_qk_avx512 : attn_cpu_dec_qk_avx2;
    c->pv = c->simd == ATTN_CPU_SIMD_AVX512 ? attn_cpu_dec_pv_avx512 : attn_cpu_dec_pv_avx2;
#else
    c->simd = ATTN_CPU_SIMD_OFF;
#endif
}

/* The plan of p and the floats of scratch it takes on `threads` threads. */
static int64_t setup(dec_ctx *c, const attn_sdpa_problem *p, int threads, int simd)
{
    *c = (dec_ctx){.p = p, .G = p->group * p->Sq, .simd = attn_cpu_decode_uses_simd(p, simd)};
    pick_kernels(c);
    c->ukr = attn_cpu_decode_uses_ukr(p, &c->u);
    c->fns = attn_cpu_panel_fns_for(simd);
    plan(c, threads);
    if (c->chunk == 0)
        c->chunk = 1; /* no visible key at all: one empty item per group */
    const int64_t groups = p->B * p->Hkv;
    c->n_tiles = (c->jhi - c->jlo + KB - 1) / KB;
    int64_t n = scratch_floats(c) * threads + groups * c->n_chunks * c->G * row_floats(p);
    return n + (p->key_score.t ? groups * c->G * (c->jhi - c->jlo + c->n_tiles + 1) : 0);
}

/* Runs p on mem (setup's floats). */
static void decode_run(const attn_sdpa_problem *p, int threads, int simd, float *mem)
{
    dec_ctx c;
    setup(&c, p, threads, simd);
    int64_t groups = p->B * p->Hkv, n_items = p->B * c.n_chunks * c.n_hblocks;
    int64_t per_thread = scratch_floats(&c), n_parts = groups * c.n_chunks * c.G * row_floats(p);
    int64_t ks_items = p->key_score.t ? groups * ((p->Skv + KS_KEYS - 1) / KS_KEYS) : 0;
    c.part = mem + per_thread * threads;
    if (p->key_score.t) {
        c.lse = c.part + n_parts;
        c.tile_m = c.lse + groups * c.G;
        c.probs = c.tile_m + groups * c.G * c.n_tiles;
    }
#pragma omp parallel num_threads(threads)
    {
        dec_scratch w = scratch_at(mem + per_thread * omp_get_thread_num(), &c);
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < n_items; it++)
            run_item(&c, &w, it);
#pragma omp for schedule(static)
        for (int64_t it = 0; it < groups * c.G; it++)
            merge_row(&c, it / c.G, it % c.G, w.o);
        const int64_t per_group = (p->Skv + KS_KEYS - 1) / KS_KEYS;
#pragma omp for schedule(static)
        for (int64_t it = 0; it < ks_items; it++) {
            const int64_t j0 = it % per_group * KS_KEYS;
            const int64_t n = p->Skv - j0 < KS_KEYS ? p->Skv - j0 : KS_KEYS;
            key_score_keys(&c, &w, it / per_group, j0, n);
        }
    }
}

/* With key_score, the kept probabilities of a call are bounded: the batches go in slices
 * whose probabilities take at most ATTN_CPU_DECODE_KS_FLOATS (the dispatch checks that one
 * batch does), all on one scratch allocated first (the largest slice's: the last one may
 * plan more key chunks). */
attn_status attn_cpu_sdpa_decode(const attn_sdpa_problem *p, int threads, int simd)
{
    const int64_t per = p->key_score.t ? batch_probs(p) : 0;
    int64_t nb = per > 0 ? ATTN_CPU_DECODE_KS_FLOATS / per : p->B;
    nb = nb < 1 ? 1 : nb > p->B ? p->B : nb;
    const attn_sdpa_problem first = batch_slice(p, 0, nb), last = batch_slice(p, 0, p->B % nb);
    dec_ctx c;
    int64_t n = setup(&c, &first, threads, simd);
    const int64_t n_last = p->B % nb ? setup(&c, &last, threads, simd) : 0;
    n = n > n_last ? n : n_last;
    float *mem = malloc((size_t)n * sizeof(float));
    if (!mem)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes of scratch",
                         (size_t)n * sizeof(float));
    for (int64_t b0 = 0; b0 < p->B; b0 += nb) {
        const attn_sdpa_problem s = batch_slice(p, b0, p->B - b0 < nb ? p->B - b0 : nb);
        decode_run(&s, threads, simd, mem);
    }
    free(mem);
    return ATTN_OK;
}
