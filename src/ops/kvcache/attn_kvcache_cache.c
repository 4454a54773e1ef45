/* attn_kvcache_cache.c - the KV cache of one layer (attn_kvcache.h): creation from its
 * descriptor, append into free slots (growing the storage), attention over the live slots
 * (attn_kvcache_attention) with H2O's score accumulation, eviction by the policy, compaction,
 * budget changes, and the read-outs (info, positions, scores, storage views). Every call
 * validates all its arguments before it changes anything. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_half.h"
#include "attn_kvcache_policy.h"
#include "attn_kvcache_store.h"
#include "attn_view.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct attn_kvcache {
    attn_backend *be;
    attn_kvcache_desc d;   /* budget and recent as in force now (recent resolved) */
    attn_kvcache_shape sh;
    const attn_kvcache_policy *policy;
    attn_kvcache_store st;
    int64_t *hint;         /* [hkv]: no free slot of head g lies below hint[g] */
    int64_t nslot;         /* slots in use: 1 + the last slot holding a live token */
    int64_t live, appended, evicted;
    int64_t last_pos;      /* the largest position appended, -1 before the first */
};

/* A tensor [1, n, hkv, 1] over a host array of n * hkv elements. */
static attn_tensor column_view(void *data, attn_dtype t, int64_t n, int64_t hkv)
{
    attn_tensor v = {.data = data, .dtype = t, .shape = {1, n, hkv, 1},
                     .stride = {n * hkv, hkv, 1, 1}};
    return v;
}

attn_kvcache_desc attn_kvcache_desc_default(void)
{
    attn_kvcache_desc d = {
        .kv_heads = 1,
        .head_dim_k = 64,
        .head_dim_v = 64,
        .dtype = ATTN_F32,
        .policy = ATTN_KV_FULL,
        .budget = 0,
        .sinks = 4,
        .recent = -1,
        .attn = attn_kvcache_attn_desc_default(),
        .initial_slots = 0,
        .reserved = {0},
    };
    return d;
}

/* ---- validation ----------------------------------------------------------------------- */

/* The budget, sinks and recent window a policy needs; *recent_out: recent resolved. */
static attn_status budget_check(const char *fn, attn_kv_policy policy, int64_t budget,
                                int64_t sinks, int64_t recent, int64_t *recent_out)
{
    if (budget < (policy == ATTN_KV_FULL ? 0 : 1))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: budget = %lld must be %s", fn,
                         (long long)budget,
                         policy == ATTN_KV_FULL ? ">= 0" : ">= 1 (tokens kept between steps)");
    if (sinks < 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: sinks = %lld must be >= 0", fn,
                         (long long)sinks);
    if (policy == ATTN_KV_STREAMING && budget <= sinks)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "%s: StreamingLLM budget = %lld must exceed sinks = %lld", fn,
                         (long long)budget, (long long)sinks);
    if (policy == ATTN_KV_H2O && (recent < -1 || recent > budget))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "%s: H2O recent = %lld must be -1 (budget / 2) or 0 .. budget (%lld)",
                         fn, (long long)recent, (long long)budget);
    *recent_out = recent == -1 ? budget / 2 : recent;
    return ATTN_OK;
}

static attn_status desc_check(const attn_kvcache_desc *d, int64_t *recent)
{
    static const char *const fn = "attn_kvcache_create";
    ATTN_TRY(ATTN_DESC_RESERVED(d, "attn_kvcache_desc_default"));
    ATTN_TRY(ATTN_DESC_RESERVED(&d->attn, "attn_kvcache_attn_desc_default"));
    if (d->kv_heads < 1 || d->head_dim_k < 1 || d->head_dim_v < 1)
        return attn_fail(ATTN_ERR_SHAPE,
                         "%s: desc.kv_heads = %lld, head_dim_k = %lld, head_dim_v = %lld must "
                         "all be >= 1", fn, (long long)d->kv_heads, (long long)d->head_dim_k,
                         (long long)d->head_dim_v);
    if ((unsigned)d->dtype > ATTN_I64 || !(ATTN_DTYPES_FLOAT >> (unsigned)d->dtype & 1u))
        return attn_fail(ATTN_ERR_DTYPE, "%s: desc.dtype %s (%d): the storage is f32, f16 or bf16",
                         fn, attn_dtype_name(d->dtype), (int)d->dtype);
    ATTN_TRY(attn_desc_enum("desc.policy", (int)d->policy, ATTN_KV_H2O, "attn_kv_policy"));
    ATTN_TRY(attn_desc_enum("desc.attn.positions", (int)d->attn.positions, ATTN_KV_POS_CACHE,
                            "attn_kv_positions"));
    if (d->initial_slots < 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: desc.initial_slots = %lld must be >= 0",
                         fn, (long long)d->initial_slots);
    return budget_check(fn, d->policy, d->budget, d->sinks, d->recent, recent);
}

/* A host view: checked, host memory, shape [1, n, Hkv, D] (n from shape[1] unless want_n >= 0). */
static attn_status host_view_check(const char *fn, const attn_tensor *t, const char *name,
                                   unsigned dtypes, int64_t want_n, int64_t hkv, int64_t d,
                                   attn_span *span)
{
    if (!t)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: %s is NULL", fn, name);
    ATTN_TRY(attn_view_check(t, name, dtypes, attn_dims_bshd, 1u << 1, span));
    if (!t->data)
        return attn_fail(ATTN_ERR_BUFFER, "%s: must be host memory (data, not a buffer)", name);
    ATTN_TRY(attn_view_expect_dim(t, name, attn_dims_bshd, 0, 1, "one sequence per cache"));
    if (want_n >= 0)
        ATTN_TRY(attn_view_expect_dim(t, name, attn_dims_bshd, 1, want_n, "the cache's slots"));
    ATTN_TRY(attn_view_expect_dim(t, name, attn_dims_bshd, 2, hkv, "the cache's kv_heads"));
    return attn_view_expect_dim(t, name, attn_dims_bshd, 3, d, "the cache's head dim");
}

static attn_status append_check(const attn_kvcache *c, const attn_tensor *k,
                                const attn_tensor *v, int64_t pos0)
{
    if (!c)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_append: cache is NULL");
    attn_span sk, sv;
    static const char *const fn = "attn_kvcache_append";
    ATTN_TRY(host_view_check(fn, k, "k", ATTN_DTYPES_FLOAT, -1, c->sh.hkv, c->sh.dk, &sk));
    ATTN_TRY(host_view_check(fn, v, "v", ATTN_DTYPES_FLOAT, k->shape[1], c->sh.hkv, c->sh.dv,
                             &sv));
    if (pos0 < 0 || pos0 <= c->last_pos || pos0 > INT64_MAX - k->shape[1])
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "attn_kvcache_append: pos0 = %lld must be >= 0 and exceed the last "
                         "position appended (%lld), with pos0 + n in range",
                         (long long)pos0, (long long)c->last_pos);
    return ATTN_OK;
}

/* ---- creation ------------------------------------------------------------------------- */

/* The attention's own checks of desc.attn (RoPE dims, scale, cap) on a one-slot problem over
 * the new storage, so that a cache that cannot attend is never created. */
static attn_status attn_probe(attn_kvcache *c)
{
    const int64_t hkv = c->sh.hkv, n = hkv * (c->sh.dk + c->sh.dv);
    float *q = calloc((size_t)n, sizeof *q);
    if (!q)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_kvcache_create: out of memory");
    int64_t qpos = 0;
    attn_tensor tq = attn_tensor_bshd(q, ATTN_F32, 1, 1, hkv, c->sh.dk);
    attn_tensor to = attn_tensor_bshd(q + hkv * c->sh.dk, ATTN_F32, 1, 1, hkv, c->sh.dv);
    attn_tensor tp = column_view(&qpos, ATTN_I64, 1, 1);
    attn_tensor tk = attn_kvcache_store_view(&c->st, &c->sh, 0, 1, 0);
    attn_tensor tv = attn_kvcache_store_view(&c->st, &c->sh, 1, 1, 0);
    attn_tensor ts = column_view(c->st.pos, ATTN_I64, 1, hkv);
    attn_status st = attn_kvcache_attention_supported(c->be, &c->d.attn, &tq, &tp, &tk, &tv, &ts,
                                                      &to, NULL);
    free(q);
    return st;
}

attn_status attn_kvcache_create(attn_backend *be, const attn_kvcache_desc *desc,
                                attn_kvcache **out)
{
    if (!be || !desc || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_create: %s is NULL",
                         !be ? "backend" : !desc ? "desc" : "out");
    int64_t recent = 0;
    ATTN_TRY(desc_check(desc, &recent));
    attn_kvcache *c = calloc(1, sizeof *c);
    if (c)
        c->hint = calloc((size_t)desc->kv_heads, sizeof *c->hint);
    if (!c || !c->hint) {
        free(c);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_kvcache_create: out of memory");
    }
    c->be = be;
    c->d = *desc;
    c->d.recent = recent;
    c->sh = (attn_kvcache_shape){desc->kv_heads, desc->head_dim_k, desc->head_dim_v, desc->dtype};
    c->policy = attn_kvcache_policy_of(desc->policy);
    c->last_pos = -1;
    int64_t cap = desc->initial_slots;
    if (cap == 0)
        cap = desc->policy == ATTN_KV_FULL ? 256
              : desc->budget < INT64_MAX ? desc->budget + 1 : desc->budget;
    attn_status st = attn_kvcache_store_alloc(be, &c->sh, cap, &c->st);
    if (st == ATTN_OK)
        st = attn_probe(c);
    if (st != ATTN_OK) {
        attn_kvcache_destroy(c);
        return st;
    }
    *out = c;
    return attn_ok();
}

void attn_kvcache_destroy(attn_kvcache *c)
{
    if (!c)
        return;
    attn_kvcache_store_free(&c->st);
    free(c->hint);
    free(c);
}

/* ---- append --------------------------------------------------------------------------- */

/* The slot of token t in head g (slots[t * hkv + g]): the lowest free one from hint[g] on,
 * the appended tokens included; *need gets 1 + the largest. */
static void plan_slots(const attn_kvcache *c, int64_t n, int64_t *slots, int64_t *hint,
                       int64_t *need)
{
    const int64_t hkv = c->sh.hkv;
    *need = c->nslot;
    for (int64_t g = 0; g < hkv; g++) {
        int64_t j = c->hint[g];
        for (int64_t t = 0; t < n; t++) {
            while (j < c->nslot && c->st.pos[j * hkv + g] >= 0)
                j++;
            slots[t * hkv + g] = j++;
        }
        hint[g] = j;
        if (j > *need)
            *need = j;
    }
}

/* Row (t, g) of a [1, n, Hkv, D] input converted to the storage dtype at dst. */
static void convert_row(const attn_operand *o, int64_t t, int64_t g, int64_t d,
                        attn_dtype to, void *dst)
{
    const int64_t at = attn_at(o, 0, t, g, 0);
    if (o->dtype == to && (o->stride[3] == 1 || d == 1)) {
        memcpy(dst, (const char *)o->ptr + (size_t)at * attn_dtype_size(to),
               (size_t)d * attn_dtype_size(to));
        return;
    }
    for (int64_t i = 0; i < d; i++)
        attn_store_f64(dst, to, i, attn_load_f64(o->ptr, o->dtype, at + i * o->stride[3]));
}

/* Whether token t sits in slot s0 + t of every head (then tokens t0.. form one block). */
static int same_slot(const int64_t *slots, int64_t hkv, int64_t t, int64_t s0, int64_t t0)
{
    for (int64_t g = 0; g < hkv; g++)
        if (slots[t * hkv + g] != s0 + (t - t0))
            return 0;
    return 1;
}

/* Write the n converted rows of K or V (stage: [n, Hkv, D]) to their slots: runs of tokens in
 * consecutive slots of every head in one write, other rows one by one. */
static attn_status write_rows(attn_kvcache *c, int which, const unsigned char *stage, int64_t n,
                              const int64_t *slots)
{
    const int64_t hkv = c->sh.hkv;
    const size_t row = attn_kvcache_row_bytes(&c->sh, which);
    for (int64_t t = 0; t < n;) {
        const int64_t s0 = slots[t * hkv];
        int64_t e = t;
        while (e < n && same_slot(slots, hkv, e, s0, t))
            e++;
        if (e > t) {
            ATTN_TRY(attn_kvcache_store_write(&c->st, which, (size_t)(s0 * hkv) * row,
                                              stage + (size_t)(t * hkv) * row,
                                              (size_t)((e - t) * hkv) * row));
            t = e;
            continue;
        }
        for (int64_t g = 0; g < hkv; g++)
            ATTN_TRY(attn_kvcache_store_write(&c->st, which,
                                              (size_t)(slots[t * hkv + g] * hkv + g) * row,
                                              stage + (size_t)(t * hkv + g) * row, row));
        t++;
    }
    return ATTN_OK;
}

static attn_status write_tensor(attn_kvcache *c, int which, const attn_tensor *x, int64_t n,
                                const int64_t *slots, unsigned char *stage)
{
    attn_operand o;
    attn_operand_fill(&o, x);
    const int64_t d = which ? c->sh.dv : c->sh.dk;
    const size_t row = attn_kvcache_row_bytes(&c->sh, which);
    for (int64_t t = 0; t < n; t++)
        for (int64_t g = 0; g < c->sh.hkv; g++)
            convert_row(&o, t, g, d, c->sh.dtype, stage + (size_t)(t * c->sh.hkv + g) * row);
    return write_rows(c, which, stage, n, slots);
}

/* Append with the slots used returned in *slots_out (for the step's undo; NULL: freed). */
static attn_status append_impl(attn_kvcache *c, const attn_tensor *k, const attn_tensor *v,
                               int64_t pos0, int64_t **slots_out)
{
    ATTN_TRY(append_check(c, k, v, pos0));
    const int64_t n = k->shape[1], hkv = c->sh.hkv;
    const size_t row = attn_kvcache_row_bytes(&c->sh, 0) > attn_kvcache_row_bytes(&c->sh, 1)
                           ? attn_kvcache_row_bytes(&c->sh, 0)
                           : attn_kvcache_row_bytes(&c->sh, 1);
    int64_t *slots = malloc(((size_t)(n * hkv) + (size_t)hkv) * sizeof *slots);
    unsigned char *stage = malloc((size_t)(n * hkv) * row + 1);
    attn_status st = ATTN_OK;
    if (!slots || !stage) {
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_kvcache_append: out of memory");
        goto done;
    }
    int64_t *hint = slots + n * hkv, need;
    plan_slots(c, n, slots, hint, &need);
    st = attn_kvcache_store_grow(c->be, &c->sh, &c->st, c->nslot, need);
    if (st == ATTN_OK)
        st = write_tensor(c, 0, k, n, slots, stage);
    if (st == ATTN_OK)
        st = write_tensor(c, 1, v, n, slots, stage);
    if (st != ATTN_OK)
        goto done;
    /* commit: the rows are written, now the tokens become live */
    for (int64_t t = 0; t < n; t++)
        for (int64_t g = 0; g < hkv; g++) {
            const int64_t e = slots[t * hkv + g] * hkv + g;
            c->st.pos[e] = pos0 + t;
            c->st.score[e] = 0;
        }
    memcpy(c->hint, hint, (size_t)hkv * sizeof *hint);
    c->nslot = need;
    c->live += n;
    c->appended += n;
    if (n)
        c->last_pos = pos0 + n - 1;
    if (slots_out) {
        *slots_out = slots;
        slots = NULL;
    }
    attn_ok();
done:
    free(slots);
    free(stage);
    return st;
}

attn_status attn_kvcache_append(attn_kvcache *c, const attn_tensor *k, const attn_tensor *v,
                                int64_t pos0)
{
    return append_impl(c, k, v, pos0, NULL);
}

/* ---- attention ------------------------------------------------------------------------ */

static attn_status attend_check(const attn_kvcache *c, const attn_tensor *q, int64_t qpos0,
                                const attn_tensor *out)
{
    if (!c || !q || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_attend: %s is NULL",
                         !c ? "cache" : !q ? "q" : "out");
    if (q->shape[1] < 0 || qpos0 < 0 || qpos0 > INT64_MAX - q->shape[1])
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "attn_kvcache_attend: qpos0 = %lld must be >= 0 (and qpos0 + Sq in "
                         "range)", (long long)qpos0);
    return ATTN_OK;
}

attn_status attn_kvcache_attend(attn_kvcache *c, const attn_tensor *q, int64_t qpos0,
                                const attn_tensor *out)
{
    ATTN_TRY(attend_check(c, q, qpos0, out));
    const int h2o = c->d.policy == ATTN_KV_H2O;
    const int64_t hkv = c->sh.hkv;
    /* An empty cache still has one (free) slot to show: its queries see nothing. */
    const int64_t sq = q->shape[1], ns = c->nslot ? c->nslot : 1;
    int64_t *qpos = malloc(((size_t)sq + 1) * sizeof *qpos);
    float *ks = h2o ? c->st.ks : NULL; /* room for ns * hkv: ns <= capacity */
    if (!qpos)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_kvcache_attend: out of memory");
    for (int64_t i = 0; i < sq; i++)
        qpos[i] = qpos0 + i;
    attn_tensor tp = column_view(qpos, ATTN_I64, sq, 1);
    tp.shape[2] = 1;
    attn_tensor tk = attn_kvcache_store_view(&c->st, &c->sh, 0, ns, 0);
    attn_tensor tv = attn_kvcache_store_view(&c->st, &c->sh, 1, ns, 0);
    attn_tensor tsp = column_view(c->st.pos, ATTN_I64, ns, hkv);
    attn_tensor tks = column_view(ks, ATTN_F32, ns, hkv);
    attn_status st = attn_kvcache_attention(c->be, &c->d.attn, q, &tp, &tk, &tv, &tsp, out,
                                            h2o ? &tks : NULL);
    if (st == ATTN_OK && h2o)
        for (int64_t e = 0; e < c->nslot * hkv; e++)
            if (c->st.pos[e] >= 0)
                c->st.score[e] += (double)ks[e];
    free(qpos);
    return st;
}

attn_status attn_kvcache_add_scores(attn_kvcache *c, const attn_tensor *score)
{
    static const char *const fn = "attn_kvcache_add_scores";
    if (!c)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: cache is NULL", fn);
    attn_span sp;
    ATTN_TRY(host_view_check(fn, score, "score", ATTN_DTYPES_F32, c->nslot, c->sh.hkv, 1, &sp));
    attn_operand o;
    attn_operand_fill(&o, score);
    const float *x = o.ptr;
    for (int64_t j = 0; j < c->nslot; j++)
        for (int64_t g = 0; g < c->sh.hkv; g++) {
            const float s = x[attn_at(&o, 0, j, g, 0)];
            const int live = c->st.pos[j * c->sh.hkv + g] >= 0;
            if (!isfinite(s) || (!live && s != 0))
                return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                                 "%s: score[0, %lld, %lld, 0] = %g: %s", fn, (long long)j,
                                 (long long)g, (double)s,
                                 live ? "scores must be finite" : "the slot is empty (must be 0)");
        }
    if (c->d.policy == ATTN_KV_H2O)
        for (int64_t j = 0; j < c->nslot; j++)
            for (int64_t g = 0; g < c->sh.hkv; g++)
                c->st.score[j * c->sh.hkv + g] += (double)x[attn_at(&o, 0, j, g, 0)];
    return attn_ok();
}

/* ---- eviction, budget, compaction ----------------------------------------------------- */

/* Whether slot j holds a live token in some head. */
static int slot_used(const attn_kvcache *c, int64_t j)
{
    for (int64_t g = 0; g < c->sh.hkv; g++)
        if (c->st.pos[j * c->sh.hkv + g] >= 0)
            return 1;
    return 0;
}

/* Evict down to the budget; cannot fail (the scratch is part of the storage). */
static void evict_impl(attn_kvcache *c)
{
    if (!c->policy->choose || c->live <= c->d.budget)
        return;
    const int64_t hkv = c->sh.hkv, ne = c->nslot * hkv;
    const attn_kvcache_slots s = {c->nslot, hkv, c->st.pos, c->st.score,
                                  c->d.budget, c->d.sinks, c->d.recent};
    memset(c->st.evict, 0, (size_t)ne);
    attn_kvcache_memo memo = {0, 0, 0};
    for (int64_t g = 0; g < hkv; g++) {
        const int64_t live = attn_kvcache_live_entries(&s, g, c->st.order);
        c->policy->choose(&s, g, c->st.order, live, c->st.evict, c->st.scratch, &memo);
    }
    for (int64_t e = 0; e < ne; e++)
        if (c->st.evict[e]) {
            c->st.pos[e] = -1;
            c->st.score[e] = 0;
            if (e / hkv < c->hint[e % hkv])
                c->hint[e % hkv] = e / hkv;
        }
    c->evicted += c->live - c->d.budget;
    c->live = c->d.budget;
    /* trailing slots free in every head are no longer in use */
    while (c->nslot > 0 && !slot_used(c, c->nslot - 1))
        c->nslot--;
}

attn_status attn_kvcache_evict(attn_kvcache *c)
{
    if (!c)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_evict: cache is NULL");
    evict_impl(c);
    return attn_ok();
}

attn_status attn_kvcache_set_budget(attn_kvcache *c, int64_t budget, int64_t recent)
{
    if (!c)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_set_budget: cache is NULL");
    int64_t r = 0;
    ATTN_TRY(budget_check("attn_kvcache_set_budget", c->d.policy, budget, c->d.sinks, recent,
                          &r));
    c->d.budget = budget;
    c->d.recent = r;
    return attn_ok();
}

/* Gather the live rows of K or V into slots 0 .. T-1 (order: the live entries of every head
 * in position order, head g's i-th at new[i * hkv + g]) through host staging. */
static attn_status compact_data(attn_kvcache *c, int which, const int64_t *from, int64_t T)
{
    const int64_t hkv = c->sh.hkv;
    const size_t row = attn_kvcache_row_bytes(&c->sh, which);
    unsigned char *old = malloc((size_t)(c->nslot * hkv) * row + 1);
    unsigned char *neu = malloc((size_t)(T * hkv) * row + 1);
    attn_status st = old && neu ? ATTN_OK
                                : attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                                            "attn_kvcache_compact: out of memory");
    if (st == ATTN_OK)
        st = attn_kvcache_store_read(&c->st, which, 0, old, (size_t)(c->nslot * hkv) * row);
    if (st == ATTN_OK) {
        for (int64_t e = 0; e < T * hkv; e++)
            memcpy(neu + (size_t)e * row, old + (size_t)from[e] * row, row);
        st = attn_kvcache_store_write(&c->st, which, 0, neu, (size_t)(T * hkv) * row);
    }
    free(old);
    free(neu);
    return st;
}

/* The metadata of the gathered slots: entry e takes entry from[e] (through copies, since a
 * slot's new content may come from a slot gathered before it). */
static void compact_meta(attn_kvcache *c, const int64_t *from, int64_t T, int64_t *pos,
                         double *score)
{
    const int64_t hkv = c->sh.hkv;
    for (int64_t e = 0; e < T * hkv; e++) {
        pos[e] = c->st.pos[from[e]];
        score[e] = c->st.score[from[e]];
    }
    for (int64_t e = 0; e < c->nslot * hkv; e++) {
        c->st.pos[e] = e < T * hkv ? pos[e] : -1;
        c->st.score[e] = e < T * hkv ? score[e] : 0;
    }
    for (int64_t g = 0; g < hkv; g++)
        c->hint[g] = T;
    c->nslot = T;
}

attn_status attn_kvcache_compact(attn_kvcache *c)
{
    if (!c)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_compact: cache is NULL");
    const int64_t hkv = c->sh.hkv, T = c->live;
    const size_t ne = (size_t)(T * hkv) + 1;
    int64_t *from = malloc(ne * sizeof *from), *pos = malloc(ne * sizeof *pos);
    double *score = malloc(ne * sizeof *score);
    attn_status st = ATTN_OK;
    if (!from || !pos || !score) {
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_kvcache_compact: out of memory");
        goto done;
    }
    const attn_kvcache_slots s = {c->nslot, hkv, c->st.pos, c->st.score, 0, 0, 0};
    for (int64_t g = 0; g < hkv; g++) {
        attn_kvcache_live_order(&s, g, c->st.order, c->st.scratch);
        for (int64_t i = 0; i < T; i++)
            from[i * hkv + g] = c->st.order[i];
    }
    st = compact_data(c, 0, from, T);
    if (st == ATTN_OK)
        st = compact_data(c, 1, from, T);
    if (st == ATTN_OK) {
        compact_meta(c, from, T, pos, score);
        attn_ok();
    }
done:
    free(from);
    free(pos);
    free(score);
    return st;
}

/* ---- the decode step ------------------------------------------------------------------ */

/* Take back an append whose step failed: its slots become free again. */
static void undo_append(attn_kvcache *c, const int64_t *slots, int64_t n, int64_t nslot,
                        int64_t last_pos)
{
    const int64_t hkv = c->sh.hkv;
    for (int64_t t = 0; t < n; t++)
        for (int64_t g = 0; g < hkv; g++) {
            const int64_t j = slots[t * hkv + g];
            c->st.pos[j * hkv + g] = -1;
            if (j < c->hint[g])
                c->hint[g] = j;
        }
    c->nslot = nslot;
    c->live -= n;
    c->appended -= n;
    c->last_pos = last_pos;
}

attn_status attn_kvcache_step(attn_kvcache *c, const attn_tensor *q, const attn_tensor *k,
                              const attn_tensor *v, int64_t pos, const attn_tensor *out)
{
    ATTN_TRY(attend_check(c, q, pos, out));
    const int64_t nslot = c->nslot, last_pos = c->last_pos;
    int64_t *slots = NULL;
    ATTN_TRY(append_impl(c, k, v, pos, &slots));
    attn_status st = attn_kvcache_attend(c, q, pos, out);
    if (st != ATTN_OK)
        undo_append(c, slots, k->shape[1], nslot, last_pos);
    else
        evict_impl(c);
    free(slots);
    return st;
}

/* ---- read-outs ------------------------------------------------------------------------ */

attn_status attn_kvcache_get_info(const attn_kvcache *c, attn_kvcache_info *info)
{
    if (!c || !info)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_get_info: %s is NULL",
                         c ? "info" : "cache");
    const size_t tok = (attn_kvcache_row_bytes(&c->sh, 0) + attn_kvcache_row_bytes(&c->sh, 1)) *
                       (size_t)c->sh.hkv;
    memset(info, 0, sizeof *info);
    info->live = c->live;
    info->slots = c->nslot;
    info->capacity = c->st.cap;
    info->budget = c->d.budget;
    info->recent = c->d.policy == ATTN_KV_H2O ? c->d.recent : 0;
    info->sinks = c->d.policy == ATTN_KV_STREAMING ? c->d.sinks : 0;
    info->appended = c->appended;
    info->evicted = c->evicted;
    info->live_bytes = tok * (size_t)c->live;
    info->alloc_bytes = tok * (size_t)c->st.cap;
    info->full_bytes = tok * (size_t)c->appended;
    return attn_ok();
}

/* A read-out's output: host, [1, nslot, Hkv, 1] of dtype t, its elements distinct. */
static attn_status readout_check(const char *fn, const attn_kvcache *c, const attn_tensor *t,
                                 const char *name, attn_dtype dt, attn_operand *o)
{
    if (!c)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: cache is NULL", fn);
    attn_span sp;
    ATTN_TRY(host_view_check(fn, t, name, 1u << dt, c->nslot, c->sh.hkv, 1, &sp));
    ATTN_TRY(attn_view_check_distinct(t, name));
    attn_operand_fill(o, t);
    return ATTN_OK;
}

attn_status attn_kvcache_get_positions(const attn_kvcache *c, const attn_tensor *pos)
{
    attn_operand o;
    ATTN_TRY(readout_check("attn_kvcache_get_positions", c, pos, "pos", ATTN_I64, &o));
    for (int64_t j = 0; j < c->nslot; j++)
        for (int64_t g = 0; g < c->sh.hkv; g++)
            ((int64_t *)o.ptr)[attn_at(&o, 0, j, g, 0)] = c->st.pos[j * c->sh.hkv + g];
    return attn_ok();
}

attn_status attn_kvcache_get_scores(const attn_kvcache *c, const attn_tensor *score)
{
    attn_operand o;
    ATTN_TRY(readout_check("attn_kvcache_get_scores", c, score, "score", ATTN_F32, &o));
    for (int64_t j = 0; j < c->nslot; j++)
        for (int64_t g = 0; g < c->sh.hkv; g++)
            ((float *)o.ptr)[attn_at(&o, 0, j, g, 0)] = (float)c->st.score[j * c->sh.hkv + g];
    return attn_ok();
}

attn_status attn_kvcache_get_views(const attn_kvcache *c, attn_tensor *k, attn_tensor *v)
{
    if (!c || !k || !v)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_get_views: %s is NULL",
                         !c ? "cache" : !k ? "k" : "v");
    *k = attn_kvcache_store_view(&c->st, &c->sh, 0, c->nslot, 1);
    *v = attn_kvcache_store_view(&c->st, &c->sh, 1, c->nslot, 1);
    return attn_ok();
}
