/* cpu_decode.c - the decode path (Sq <= ATTN_CPU_DECODE_MAX_SQ): few queries over a long KV.
 * There is too little query work to split, so the KV range is split instead: a work item is
 * (batch, key chunk) and covers every KV head, each with all G = (Hq/Hkv) * Sq query rows of
 * its GQA group, so each K/V row is read from memory once per call. Tiles of KB keys are
 * converted to f32 key-major (all heads of key j, then key j+1: sequential memory in BSHD
 * layouts; walking one head's rows instead touches a new 4 KiB page per row, which the
 * hardware prefetchers do not follow, and ran latency-bound at a fraction of the bandwidth).
 * The products are small (G x KB), so they use hand-vectorised loops rather than BLIS calls.
 * Each (head, chunk) leaves a partial (m, l, o) per row, merged by log-sum-exp:
 *   M = max_c m_c,  L = sum_c l_c e^(m_c - M),  O = sum_c o_c e^(m_c - M),  out = O / L. */
#include "cpu_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define KB 32              /* keys per tile: Hkv * KB * (Dk + Dv) floats stay in L2 */
#define MIN_CHUNK 1024     /* keys per work item, at least */
#define ITEMS_PER_THREAD 4 /* aim for this many items per thread (balance) */

typedef struct dec_ctx {
    const attn_sdpa_problem *p;
    int64_t G, jlo, jhi, chunk, n_chunks;
    float *part; /* per item: G rows of (m, l, o[Dv]) */
} dec_ctx;

typedef struct dec_scratch {
    float *q, *s, *k, *v, *madd, *o;
} dec_scratch;

static int64_t row_floats(const attn_sdpa_problem *p)
{
    return 2 + p->Dv;
}

static int64_t scratch_floats(const attn_sdpa_problem *p, int64_t G)
{
    return p->Hkv * G * p->Dk + G * KB + p->Hkv * KB * (p->Dk + p->Dv) + KB + p->Dv;
}

static dec_scratch scratch_at(float *base, const attn_sdpa_problem *p, int64_t G)
{
    dec_scratch s;
    s.q = base;
    s.s = s.q + p->Hkv * G * p->Dk;
    s.k = s.s + G * KB;
    s.v = s.k + p->Hkv * KB * p->Dk;
    s.madd = s.v + p->Hkv * KB * p->Dv;
    s.o = s.madd + KB;
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

static void init_item(const dec_ctx *c, dec_scratch *w, int64_t b, int64_t chunk)
{
    const attn_sdpa_problem *p = c->p;
    int64_t G = c->G;
    for (int64_t hk = 0; hk < p->Hkv; hk++) {
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

/* Keys [j0, j0 + nc) (already converted into w->k, w->v) for KV head hk of batch b. */
static void head_tile(const dec_ctx *c, dec_scratch *w, int64_t b, int64_t hk, int64_t chunk,
                      int64_t j0, int64_t nc)
{
    const attn_sdpa_problem *p = c->p;
    int64_t G = c->G;
    float *part = partial(c, b * p->Hkv + hk, chunk), *o = part + 2 * G;
    attn_cpu_qk_block(w->q + hk * G * p->Dk, G, w->k + hk * nc * p->Dk, nc, p->Dk,
                      (float)p->scale, w->s, KB);
    for (int64_t r = 0; r < G; r++) {
        int64_t h, i;
        row_of(c, hk, r, &h, &i);
        attn_cpu_row_step(p, w->s + r * KB, w->madd, o + r * p->Dv, &part[r], &part[G + r], b,
                          i, h, j0, nc);
    }
    attn_cpu_pv_block(w->s, KB, G, w->v + hk * nc * p->Dv, nc, p->Dv, o);
}

static void run_item(const dec_ctx *c, dec_scratch *w, int64_t b, int64_t chunk)
{
    const attn_sdpa_problem *p = c->p;
    init_item(c, w, b, chunk);
    int64_t j_begin = c->jlo + chunk * c->chunk;
    int64_t j_end = j_begin + c->chunk < c->jhi ? j_begin + c->chunk : c->jhi;
    for (int64_t j0 = j_begin; j0 < j_end; j0 += KB) {
        int64_t nc = j_end - j0 < KB ? j_end - j0 : KB;
        attn_cpu_heads_to_f32(&p->k, b, j0, nc, p->Hkv, p->Dk, w->k);
        attn_cpu_heads_to_f32(&p->v, b, j0, nc, p->Hkv, p->Dv, w->v);
        for (int64_t hk = 0; hk < p->Hkv; hk++)
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
}

/* Chunking: enough items to balance the threads, but chunks of at least MIN_CHUNK keys. */
static void plan(dec_ctx *c, int threads)
{
    const attn_sdpa_problem *p = c->p;
    int64_t unused;
    attn_band(p, 0, &c->jlo, &unused);
    attn_band(p, p->Sq - 1, &unused, &c->jhi);
    c->jhi = c->jhi < p->Skv ? c->jhi : p->Skv;
    int64_t keys = c->jhi > c->jlo ? c->jhi - c->jlo : 0;
    int64_t want = (ITEMS_PER_THREAD * threads + p->B - 1) / p->B;
    int64_t most = (keys + MIN_CHUNK - 1) / MIN_CHUNK;
    c->n_chunks = want < most ? want : most;
    c->n_chunks = c->n_chunks < 1 ? 1 : c->n_chunks;
    c->chunk = (keys + c->n_chunks - 1) / c->n_chunks;
    c->chunk = (c->chunk + KB - 1) / KB * KB;
    c->n_chunks = keys > 0 ? (keys + c->chunk - 1) / c->chunk : 1;
}

attn_status attn_cpu_sdpa_decode(const attn_sdpa_problem *p, int threads)
{
    dec_ctx c = {.p = p, .G = p->group * p->Sq};
    plan(&c, threads);
    if (c.chunk == 0)
        c.chunk = 1; /* no visible key at all: one empty item per group */
    int64_t groups = p->B * p->Hkv, n_items = p->B * c.n_chunks;
    int64_t per_thread = scratch_floats(p, c.G);
    size_t total = (size_t)(per_thread * threads + groups * c.n_chunks * c.G * row_floats(p));
    float *mem = malloc(total * sizeof(float));
    if (!mem)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes of scratch",
                         total * sizeof(float));
    c.part = mem + per_thread * threads;
#pragma omp parallel num_threads(threads)
    {
        dec_scratch w = scratch_at(mem + per_thread * omp_get_thread_num(), p, c.G);
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < n_items; it++)
            run_item(&c, &w, it / c.n_chunks, it % c.n_chunks);
#pragma omp for schedule(static)
        for (int64_t it = 0; it < groups * c.G; it++)
            merge_row(&c, it / c.G, it % c.G, w.o);
    }
    free(mem);
    return ATTN_OK;
}
