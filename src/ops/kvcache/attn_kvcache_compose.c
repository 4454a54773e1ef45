/* attn_kvcache_compose.c - the attention over cache slots composed from a backend's own RoPE
 * and SDPA (the cpu and opencl implementations share it; no kernel of its own):
 *
 *   1. positions != STORED: every KV head's keys are rotated into f32 scratch in the backend's
 *      memory by attn_rope_forward, one call per KV head with that head's slot positions
 *      (original, or in-cache ranks) as a host positions tensor, and its query heads likewise
 *      (in-cache positions differ from head to head); one call for all heads when every head
 *      holds the same positions (RoPE then takes one sin/cos per row for all of them);
 *   2. a boolean mask [B, Sq, 1 or Hq, Nslot] is built on the host only when some slot is
 *      empty or some live slot is newer than some query: in the steady decode state (every
 *      slot live and older than the query) there is none, and SDPA's unmasked path runs;
 *   3. attn_sdpa_forward_ex on the same backend over the slots (key_score passed through: a
 *      backend whose SDPA refuses it refuses the call).
 *
 * SDPA's capability check and name see views of the run's shapes, strides and dtypes over a
 * placeholder that nothing reads (they run no kernel). */
#include "attn_backend_impl.h"
#include "attn_kvcache_problem.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the run composes. */
typedef struct kv_plan {
    int rotate;      /* q and k rotated into scratch */
    int mask;        /* some slot hidden from some query */
    int64_t mask_h;  /* the mask's head dim: 1 (every KV head sees alike) or Hq */
    int64_t rope_h;  /* KV heads per RoPE call: Hkv when every head holds the same positions
                      * (full, sliding, StreamingLLM caches; one sin/cos per row), else 1 */
} kv_plan;

/* The operands handed to RoPE and SDPA, and what owns them. */
typedef struct kv_work {
    attn_buffer *kr, *qr;   /* rotated keys [B, Nslot, Hkv, Dk], queries [B, Sq, Hq, Dk], f32 */
    int64_t *kpos, *qpos;   /* host rotation positions [B][Nslot][Hkv], [B][Sq][Hkv] */
    uint8_t *mask;          /* host [B][Sq][mask_h][Nslot] */
    attn_tensor q, k, m;    /* SDPA's q, k and mask_bool */
} kv_work;

/* Bytes of n0 x n1 x n2 x n3 elements of `size` bytes, or SIZE_MAX (which no allocation
 * gets) when that overflows: broadcast inputs may describe more elements than memory holds. */
static size_t bytes_of(size_t size, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    size_t n = size;
    const int64_t d[4] = {n0, n1, n2, n3};
    for (int i = 0; i < 4; i++)
        if (__builtin_mul_overflow(n, (size_t)d[i], &n))
            return SIZE_MAX;
    return n;
}

/* ---- the plan -------------------------------------------------------------------------------- */

static int visible(const attn_kvcache_problem *p, int64_t b, int64_t i, int64_t j, int64_t g)
{
    const int64_t x = attn_kv_slot_pos(p, b, j, g);
    return x >= 0 && x <= attn_kv_qpos(p, b, i);
}

static kv_plan make_plan(const attn_kvcache_problem *p)
{
    kv_plan pl = {.rotate = p->positions != ATTN_KV_POS_STORED && p->Sq > 0, .mask_h = 1,
                  .rope_h = p->Hkv};
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t j = 0; j < p->Nslot; j++)
            for (int64_t g = 1; g < p->Hkv; g++)
                if (attn_kv_slot_pos(p, b, j, g) != attn_kv_slot_pos(p, b, j, 0))
                    pl.rope_h = 1;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t j = 0; j < p->Nslot; j++)
                for (int64_t g = 0; g < p->Hkv; g++) {
                    const int v = visible(p, b, i, j, g);
                    pl.mask |= !v;
                    if (v != visible(p, b, i, j, 0))
                        pl.mask_h = p->Hq;
                }
    return pl;
}

/* ---- rotation positions ---------------------------------------------------------------------- */

typedef struct kv_live {
    int64_t pos, slot;
} kv_live;

static int live_cmp(const void *a, const void *b)
{
    const int64_t x = ((const kv_live *)a)->pos, y = ((const kv_live *)b)->pos;
    return (x > y) - (x < y);
}

/* Live slots of sorted[0..n) whose position is below t (binary search). */
static int64_t rank_below(const kv_live *sorted, int64_t n, int64_t t)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (sorted[mid].pos < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The rotation positions of KV head g of batch b: ORIGINAL the stored ones, CACHE the number
 * of live slots of the head below them (empty slots get 0: masked, never seen). */
static void head_positions(const attn_kvcache_problem *p, int64_t b, int64_t g, kv_live *live,
                           kv_work *w)
{
    int64_t n = 0;
    for (int64_t j = 0; j < p->Nslot; j++) {
        const int64_t x = attn_kv_slot_pos(p, b, j, g);
        if (x >= 0)
            live[n++] = (kv_live){x, j};
    }
    if (p->positions == ATTN_KV_POS_CACHE)
        qsort(live, (size_t)n, sizeof *live, live_cmp);
    for (int64_t j = 0; j < p->Nslot; j++)
        w->kpos[(b * p->Nslot + j) * p->Hkv + g] = 0;
    for (int64_t r = 0; r < n; r++)
        w->kpos[(b * p->Nslot + live[r].slot) * p->Hkv + g] =
            p->positions == ATTN_KV_POS_CACHE ? rank_below(live, n, live[r].pos) : live[r].pos;
    for (int64_t i = 0; i < p->Sq; i++) {
        const int64_t t = attn_kv_qpos(p, b, i);
        w->qpos[(b * p->Sq + i) * p->Hkv + g] =
            p->positions == ATTN_KV_POS_CACHE ? rank_below(live, n, t) : t;
    }
}

static attn_status make_positions(const attn_kvcache_problem *p, const kv_plan *pl,
                                  kv_work *w)
{
    const size_t lb = bytes_of(sizeof(kv_live), p->Nslot, 1, 1, 1);
    const size_t kb = bytes_of(sizeof(int64_t), p->B, p->Nslot, p->Hkv, 1);
    const size_t qb = bytes_of(sizeof(int64_t), p->B, p->Sq, p->Hkv, 1);
    kv_live *live = lb < SIZE_MAX ? malloc(lb) : NULL;
    w->kpos = kb < SIZE_MAX ? malloc(kb) : NULL;
    w->qpos = qb < SIZE_MAX ? malloc(qb) : NULL;
    if (!live || !w->kpos || !w->qpos) {
        free(live);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "kvcache: cannot allocate the positions");
    }
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g += pl->rope_h)
            head_positions(p, b, g, live, w);
    free(live);
    return ATTN_OK;
}

/* ---- views ----------------------------------------------------------------------------------- */

/* A dense f32 [d0, d1, d2, d3] view of a backend buffer (NULL: the placeholder). */
static attn_tensor dense_f32(attn_buffer *buf, void *placeholder, int64_t d0, int64_t d1,
                             int64_t d2, int64_t d3)
{
    attn_tensor t = {.data = buf ? NULL : placeholder, .buffer = buf, .dtype = ATTN_F32,
                     .shape = {d0, d1, d2, d3},
                     .stride = {d1 * d2 * d3, d2 * d3, d3, 1}};
    return t;
}

/* Heads [h0, h0 + n) of a view, as a view. */
static attn_tensor heads(const attn_tensor *t, int64_t h0, int64_t n)
{
    attn_tensor v = *t;
    v.offset += (size_t)(h0 * t->stride[2]) * attn_dtype_size(t->dtype);
    v.shape[2] = n;
    return v;
}

/* Host i64 positions pos[d0][d1][Hkv] of KV head g as a RoPE positions view [d0, d1, 1, 1]. */
static attn_tensor pos_view(int64_t *pos, int64_t d0, int64_t d1, int64_t Hkv, int64_t g)
{
    attn_tensor t = {.data = pos + g, .dtype = ATTN_I64, .shape = {d0, d1, 1, 1},
                     .stride = {d1 * Hkv, Hkv, 0, 0}};
    return t;
}

/* SDPA's q, k and mask: the user's or the rotated (scratch, or the placeholder) ones. */
static void sdpa_views(const attn_kvcache_problem *p, const kv_plan *pl, kv_work *w,
                       void *placeholder)
{
    w->q = *p->q.t;
    w->k = *p->k.t;
    if (pl->rotate) {
        w->q = dense_f32(w->qr, placeholder, p->B, p->Sq, p->Hq, p->Dk);
        w->k = dense_f32(w->kr, placeholder, p->B, p->Nslot, p->Hkv, p->Dk);
    }
    const int64_t mh = pl->mask_h;
    w->m = (attn_tensor){.data = w->mask ? (void *)w->mask : placeholder, .dtype = ATTN_U8,
                         .shape = {p->B, p->Sq, mh, p->Nslot},
                         .stride = {p->Sq * mh * p->Nslot, mh * p->Nslot, p->Nslot, 1}};
}

static attn_sdpa_desc sdpa_desc(const attn_kvcache_problem *p, const kv_plan *pl,
                                const kv_work *w)
{
    attn_sdpa_desc d = attn_sdpa_desc_default();
    /* the default scale stays SDPA's own default; any other came from a float */
    d.scale = p->scale == 1.0 / sqrt((double)p->Dk) ? 0.0f : (float)p->scale;
    d.softcap = (float)p->softcap;
    d.mask_bool = pl->mask ? &w->m : NULL;
    return d;
}

/* ---- the run --------------------------------------------------------------------------------- */

/* One RoPE call per KV head (its keys, then its query heads), or one for all heads when they
 * hold the same positions. */
static attn_status rotate(attn_backend *be, const attn_kvcache_problem *p, const kv_plan *pl,
                          kv_work *w)
{
    attn_rope_desc d = attn_rope_desc_default();
    d.layout = p->rope_layout;
    d.theta = p->rope_theta;
    d.rot_dim = p->rot;
    const int64_t nk = pl->rope_h, nq = nk * p->group;
    for (int64_t g = 0; g < p->Hkv; g += nk) {
        attn_tensor kpos = pos_view(w->kpos, p->B, p->Nslot, p->Hkv, g);
        attn_tensor qpos = pos_view(w->qpos, p->B, p->Sq, p->Hkv, g);
        const attn_tensor kx = heads(p->k.t, g, nk), ko = heads(&w->k, g, nk);
        const attn_tensor qx = heads(p->q.t, g * p->group, nq);
        const attn_tensor qo = heads(&w->q, g * p->group, nq);
        d.positions = &kpos;
        ATTN_TRY(attn_rope_forward(be, &d, &kx, &ko));
        d.positions = &qpos;
        ATTN_TRY(attn_rope_forward(be, &d, &qx, &qo));
    }
    return ATTN_OK;
}

static attn_status build_mask(const attn_kvcache_problem *p, const kv_plan *pl, kv_work *w)
{
    const int64_t mh = pl->mask_h;
    const size_t n = bytes_of(1, p->B, p->Sq, mh, p->Nslot);
    if (n == SIZE_MAX || !(w->mask = malloc(n)))
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "kvcache: cannot allocate the mask of %.3g "
                         "bytes", (double)p->B * (double)p->Sq * (double)mh * (double)p->Nslot);
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t h = 0; h < mh; h++)
                for (int64_t j = 0; j < p->Nslot; j++)
                    w->mask[((b * p->Sq + i) * mh + h) * p->Nslot + j] =
                        (uint8_t)visible(p, b, i, j, h / p->group);
    return ATTN_OK;
}

static attn_status alloc_scratch(attn_backend *be, const attn_kvcache_problem *p, kv_work *w)
{
    /* check_sizes() bounded both */
    ATTN_TRY(attn_buffer_alloc(be, bytes_of(sizeof(float), p->B, p->Nslot, p->Hkv, p->Dk),
                               &w->kr));
    return attn_buffer_alloc(be, bytes_of(sizeof(float), p->B, p->Sq, p->Hq, p->Dk), &w->qr);
}

static void work_free(kv_work *w)
{
    attn_buffer_free(w->kr);
    attn_buffer_free(w->qr);
    free(w->kpos);
    free(w->qpos);
    free(w->mask);
}

attn_status attn_kvcache_compose_run(attn_backend *be, const void *problem)
{
    const attn_kvcache_problem *p = problem;
    const kv_plan pl = make_plan(p);
    kv_work w;
    memset(&w, 0, sizeof w);
    attn_status st = ATTN_OK;
    if (pl.rotate && (st = alloc_scratch(be, p, &w)) == ATTN_OK)
        st = make_positions(p, &pl, &w);
    if (st == ATTN_OK && pl.mask)
        st = build_mask(p, &pl, &w);
    if (st == ATTN_OK) {
        sdpa_views(p, &pl, &w, NULL);
        if (pl.rotate)
            st = rotate(be, p, &pl, &w);
    }
    if (st == ATTN_OK) {
        const attn_sdpa_desc d = sdpa_desc(p, &pl, &w);
        const attn_sdpa_outputs o = {.out = p->out.t, .key_score = p->key_score.t};
        st = attn_sdpa_forward_ex(be, &d, &w.q, &w.k, p->v.t, &o);
    }
    work_free(&w);
    return st;
}

/* ---- capability and name --------------------------------------------------------------------- */

/* SDPA's capability check or name on the run's views over a placeholder. */
static attn_status sdpa_ask(attn_backend *be, const attn_kvcache_problem *p, const kv_plan *pl,
                            char *buf, size_t n)
{
    static float placeholder;
    kv_work w;
    memset(&w, 0, sizeof w);
    sdpa_views(p, pl, &w, &placeholder);
    const attn_sdpa_desc d = sdpa_desc(p, pl, &w);
    const attn_sdpa_outputs o = {.out = p->out.t, .key_score = p->key_score.t};
    if (buf)
        return attn_sdpa_impl_name_ex(be, &d, &w.q, &w.k, p->v.t, &o, buf, n);
    return attn_sdpa_supported_ex(be, &d, &w.q, &w.k, p->v.t, &o);
}

/* The scratch (rotated q and k, the widest mask) must have a byte count: broadcast inputs may
 * describe more elements than any memory holds, which is reported before anything is sized or
 * walked. */
static attn_status check_sizes(const attn_kvcache_problem *p)
{
    if (bytes_of(sizeof(float), p->B, p->Nslot, p->Hkv, p->Dk) == SIZE_MAX ||
        bytes_of(sizeof(float), p->B, p->Sq, p->Hq, p->Dk) == SIZE_MAX ||
        bytes_of(sizeof(int64_t), p->B, p->Sq, p->Hq, p->Nslot) == SIZE_MAX)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                         "kvcache: the scratch of Sq %lld, Nslot %lld, Hq %lld, Dk %lld exceeds "
                         "any memory", (long long)p->Sq, (long long)p->Nslot, (long long)p->Hq,
                         (long long)p->Dk);
    return ATTN_OK;
}

attn_status attn_kvcache_compose_supported(attn_backend *be, const void *problem)
{
    ATTN_TRY(check_sizes(problem));
    const kv_plan pl = make_plan(problem);
    return sdpa_ask(be, problem, &pl, NULL, 0);
}

/* "cpu:kvcache[rope_cache_heads+mask+cpu:...]": the rotation (_heads: one RoPE call per KV
 * head), the mask (mask_h1: one row for every head) and SDPA's own name. */
void attn_kvcache_compose_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    static const char *const rope[] = {"", "rope_original", "rope_cache"};
    const attn_kvcache_problem *p = problem;
    const kv_plan pl = make_plan(p);
    char inner[192];
    if (sdpa_ask(be, p, &pl, inner, sizeof inner) != ATTN_OK)
        snprintf(inner, sizeof inner, "unsupported");
    const char *heads = pl.rope_h == 1 && p->Hkv > 1 ? "_heads" : "";
    snprintf(buf, n, "%s:kvcache[%s%s%s%s%s]", attn_backend_name(be),
             pl.rotate ? rope[p->positions] : "", pl.rotate ? heads : "", pl.rotate ? "+" : "",
             !pl.mask ? "" : pl.mask_h == 1 ? "mask_h1+" : "mask+", inner);
}
