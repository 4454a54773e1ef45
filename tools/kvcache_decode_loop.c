/* kvcache_decode_loop.c - the decode loop of `attn decode`: every layer's prefill (append the
 * prompt, attend with the causal mask through the cache, evict) and decode steps (append,
 * attend, evict) through a cache of the configured policy and budget, measured against a full
 * cache fed the same streams: its memory and each step's deviation from the full output. */
#include "kvcache_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Rows s0 .. s0 + n - 1 of a stream view [1, T, H, D]. */
static attn_tensor rows(const attn_tensor *t, int64_t s0, int64_t n)
{
    attn_tensor r = *t;
    r.shape[1] = n;
    r.offset += (size_t)(s0 * t->stride[1]) * attn_dtype_size(t->dtype);
    return r;
}

static attn_status cache_open(attn_backend *be, const attn_kvcache_streams *s,
                              const attn_kvcache_run_cfg *c, attn_kv_policy policy,
                              int64_t budget, attn_kvcache **out)
{
    attn_kvcache_desc d = attn_kvcache_desc_default();
    d.kv_heads = s->hkv;
    d.head_dim_k = s->dk;
    d.head_dim_v = s->dv;
    d.dtype = c->kv_dtype;
    d.policy = policy;
    d.budget = policy == ATTN_KV_FULL ? s->prompt + s->new_tokens : budget;
    d.sinks = c->sinks;
    d.recent = c->recent > d.budget ? d.budget : c->recent;
    d.attn = c->attn;
    d.initial_slots = policy == ATTN_KV_FULL ? s->prompt + s->new_tokens : 0;
    return attn_kvcache_create(be, &d, out);
}

/* The prompt: append, attend (causal by position; H2O scores accumulate), evict, then compact
 * so that the decode steps attend over budget + 1 slots, not the prompt's slots with holes. */
static attn_status prefill(attn_kvcache *c, const attn_kvcache_streams *s, int l, float *scratch)
{
    const int64_t P = s->prompt;
    const attn_tensor q = rows(&s->q[l], 0, P), k = rows(&s->k[l], 0, P),
                      v = rows(&s->v[l], 0, P);
    const attn_tensor out = attn_tensor_bshd(scratch, ATTN_F32, 1, P, s->hq, s->dv);
    attn_status st = attn_kvcache_append(c, &k, &v, 0);
    if (st == ATTN_OK)
        st = attn_kvcache_attend(c, &q, 0, &out);
    if (st == ATTN_OK)
        st = attn_kvcache_evict(c);
    return st == ATTN_OK ? attn_kvcache_compact(c) : st;
}

/* Decode step t of layer l into out [Hq, Dv]; its seconds are added to *seconds. */
static attn_status step(attn_kvcache *c, const attn_kvcache_streams *s, int l, int64_t t,
                        float *out, double *seconds)
{
    const int64_t pos = s->prompt + t;
    const attn_tensor q = rows(&s->q[l], pos, 1), k = rows(&s->k[l], pos, 1),
                      v = rows(&s->v[l], pos, 1);
    const attn_tensor o = attn_tensor_bshd(out, ATTN_F32, 1, 1, s->hq, s->dv);
    const double t0 = now();
    const attn_status st = attn_kvcache_step(c, &q, &k, &v, pos, &o);
    *seconds += now() - t0;
    return st;
}

static float *scratch_alloc(const attn_kvcache_streams *s)
{
    return malloc(sizeof(float) * (size_t)(s->prompt * s->hq * s->dv));
}

attn_status attn_kvcache_decode_reference(attn_backend *be, const attn_kvcache_streams *s,
                                          const attn_kvcache_run_cfg *cfg, attn_kvcache_ref *r)
{
    const size_t per_layer = (size_t)(s->new_tokens * s->hq * s->dv);
    r->seconds = 0;
    r->out = malloc(sizeof(float) * per_layer * (size_t)s->layers);
    float *scratch = scratch_alloc(s);
    attn_status st = r->out && scratch ? ATTN_OK : ATTN_ERR_OUT_OF_MEMORY;
    for (int l = 0; l < s->layers && st == ATTN_OK; l++) {
        attn_kvcache *c = NULL;
        st = cache_open(be, s, cfg, ATTN_KV_FULL, 0, &c);
        if (st == ATTN_OK)
            st = prefill(c, s, l, scratch);
        for (int64_t t = 0; t < s->new_tokens && st == ATTN_OK; t++)
            st = step(c, s, l, t, r->out + per_layer * (size_t)l + (size_t)(t * s->hq * s->dv),
                      &r->seconds);
        attn_kvcache_destroy(c);
    }
    free(scratch);
    if (st != ATTN_OK)
        attn_kvcache_ref_free(r);
    return st;
}

/* The layers' budgets: uniform, or SqueezeAttention's from the hidden states' similarities
 * (b_init = budget / P, class 3 gets p; clamped to [1 or sinks + 1, P + N]). */
static attn_status layer_budgets(const attn_kvcache_streams *s, const attn_kvcache_run_cfg *c,
                                 attn_kvcache_layer *ly)
{
    const int L = s->layers;
    for (int l = 0; l < L; l++) {
        ly[l].budget = c->budget;
        ly[l].cls = 0;
        ly[l].sim = NAN;
    }
    if (c->squeeze <= 0)
        return ATTN_OK;
    double *sim = malloc(sizeof(double) * (size_t)L);
    int64_t *b = malloc(sizeof(int64_t) * (size_t)L);
    int *cls = malloc(sizeof(int) * (size_t)L);
    attn_status st = sim && b && cls ? ATTN_OK : ATTN_ERR_OUT_OF_MEMORY;
    for (int l = 0; l < L && st == ATTN_OK; l++)
        st = attn_kvcache_squeeze_similarity(&s->x[l], &s->y[l], &sim[l]);
    attn_kvcache_squeeze_desc d = attn_kvcache_squeeze_desc_default();
    d.b_init = (double)c->budget / (double)s->prompt;
    d.p = c->squeeze < d.b_init ? c->squeeze : d.b_init;
    d.base = s->prompt;
    d.min_budget = c->policy == ATTN_KV_STREAMING ? c->sinks + 1 : 1;
    d.max_budget = s->prompt + s->new_tokens;
    d.round_bf16 = c->squeeze_bf16;
    if (st == ATTN_OK)
        st = attn_kvcache_squeeze_budgets(&d, sim, L, b, cls);
    for (int l = 0; l < L && st == ATTN_OK; l++) {
        ly[l].budget = b[l];
        ly[l].cls = cls[l];
        ly[l].sim = sim[l];
    }
    free(sim);
    free(b);
    free(cls);
    return st;
}

/* Deviation of out from ref [Hq, Dv]: the largest |difference| into *max_abs, the sum over
 * heads of the cosine similarity into *cos_sum (two zero vectors agree: 1). */
static void deviation(const float *out, const float *ref, int64_t hq, int64_t dv,
                      double *max_abs, double *cos_sum)
{
    for (int64_t h = 0; h < hq; h++) {
        double ab = 0, aa = 0, bb = 0;
        for (int64_t d = 0; d < dv; d++) {
            const double a = out[h * dv + d], b = ref[h * dv + d], e = fabs(a - b);
            *max_abs = e > *max_abs || isnan(e) ? e : *max_abs;
            ab += a * b;
            aa += a * a;
            bb += b * b;
        }
        *cos_sum += aa == 0 && bb == 0 ? 1.0 : aa * bb > 0 ? ab / sqrt(aa * bb) : 0.0;
    }
}

/* One layer through a cache of the configuration, its figures into *ly. */
static attn_status run_layer(attn_backend *be, const attn_kvcache_streams *s,
                             const attn_kvcache_run_cfg *cfg, const float *ref, int l,
                             float *scratch, attn_kvcache_layer *ly)
{
    attn_kvcache *c = NULL;
    attn_status st = cache_open(be, s, cfg, cfg->policy, ly->budget, &c);
    if (st == ATTN_OK)
        st = prefill(c, s, l, scratch);
    double cos_sum = 0;
    ly->max_abs = 0;
    ly->seconds = 0;
    for (int64_t t = 0; t < s->new_tokens && st == ATTN_OK; t++) {
        st = step(c, s, l, t, scratch, &ly->seconds);
        if (st == ATTN_OK)
            deviation(scratch, ref + t * s->hq * s->dv, s->hq, s->dv, &ly->max_abs, &cos_sum);
    }
    ly->mean_cos = cos_sum / (double)(s->new_tokens * s->hq);
    attn_kvcache_info info;
    if (st == ATTN_OK)
        st = attn_kvcache_get_info(c, &info);
    if (st == ATTN_OK) {
        ly->live_bytes = info.live_bytes;
        ly->alloc_bytes = info.alloc_bytes;
        ly->full_bytes = info.full_bytes;
    }
    attn_kvcache_destroy(c);
    return st;
}

attn_status attn_kvcache_decode_run(attn_backend *be, const attn_kvcache_streams *s,
                                    const attn_kvcache_run_cfg *cfg, const attn_kvcache_ref *ref,
                                    attn_kvcache_result *r)
{
    memset(r, 0, sizeof *r);
    r->layer = calloc((size_t)s->layers, sizeof *r->layer);
    float *scratch = scratch_alloc(s);
    attn_status st = r->layer && scratch ? ATTN_OK : ATTN_ERR_OUT_OF_MEMORY;
    if (st == ATTN_OK)
        st = layer_budgets(s, cfg, r->layer);
    const size_t per_layer = (size_t)(s->new_tokens * s->hq * s->dv);
    double cos_sum = 0;
    for (int l = 0; l < s->layers && st == ATTN_OK; l++) {
        attn_kvcache_layer *ly = &r->layer[l];
        st = run_layer(be, s, cfg, ref->out + per_layer * (size_t)l, l, scratch, ly);
        r->live_bytes += ly->live_bytes;
        r->alloc_bytes += ly->alloc_bytes;
        r->full_bytes += ly->full_bytes;
        r->max_abs = ly->max_abs > r->max_abs || isnan(ly->max_abs) ? ly->max_abs : r->max_abs;
        r->seconds += ly->seconds;
        cos_sum += ly->mean_cos;
    }
    r->mean_cos = cos_sum / s->layers;
    free(scratch);
    if (st != ATTN_OK)
        attn_kvcache_result_free(r);
    return st;
}

void attn_kvcache_ref_free(attn_kvcache_ref *r)
{
    free(r->out);
    r->out = NULL;
}

void attn_kvcache_result_free(attn_kvcache_result *r)
{
    free(r->layer);
    r->layer = NULL;
}
