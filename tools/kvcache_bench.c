/* kvcache_bench.c - `attn bench --op kvcache`: decode throughput of one layer's KV cache (one
 * step = append the new token, attend, evict) at Skv 8192, Hq 32 / Hkv 8, D 128, f16 K and V:
 * the full cache, and sliding, StreamingLLM and H2O at budgets of 20 % and 50 %, all in the
 * same run. Each line gives tokens/s, the GB/s of K and V the step reads (the live slots),
 * that rate against a same-run memcpy (read + write, STREAM-style), and the time against the
 * proportional time, time_budget / (time_full * budget fraction): 1 means the step costs
 * exactly its share of the full cache's. H2O's score bookkeeping (key_score, accumulation, the
 * heavy-hitter choice) is its step beyond the sliding window's at the same budget. Caches are
 * flushed before every timed step so K and V come from memory, as in a model whose layers do
 * not fit the last-level cache; times are the best of --repeat rounds, every variant timed in each round. */
#include "kvcache_bench.h"

#include "attn_bench_util.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_BYTES ((size_t)128 << 20)
#define FLUSH_BYTES ((size_t)96 << 20)

typedef struct kv_shape {
    int64_t skv, hq, hkv, d;
} kv_shape;

/* One timed variant: a cache stepped (append, attend, evict). */
typedef struct kv_variant {
    const char *name;
    attn_kv_policy policy;
    double frac;       /* budget / Skv (1 for the full cache) */
    attn_backend *be;
    attn_kvcache *c;
    attn_kvcache_attn_desc ad;
    attn_tensor q, k, v, out;
    int64_t pos, live;
    double best;
} kv_variant;

typedef struct kv_inputs {
    float *k, *v, *q, *knew, *vnew, *out, *scores;
} kv_inputs;

/* ---- same-run memcpy rate ------------------------------------------------------------------ */

typedef struct copy_ctx {
    char *src, *dst;
} copy_ctx;

static int copy_call(void *p)
{
    copy_ctx *c = p;
#pragma omp parallel
    {
        const size_t per = COPY_BYTES / (size_t)omp_get_num_threads();
        memcpy(c->dst + per * (size_t)omp_get_thread_num(),
               c->src + per * (size_t)omp_get_thread_num(), per);
    }
    return 0;
}

/* GB/s of a threaded memcpy of COPY_BYTES, read + written bytes; -1 when out of memory. */
static double copy_gbps(void)
{
    copy_ctx c = {malloc(COPY_BYTES), malloc(COPY_BYTES)};
    double rate = -1;
    if (c.src && c.dst) {
        memset(c.src, 1, COPY_BYTES);
        memset(c.dst, 2, COPY_BYTES);
        rate = 2.0 * (double)COPY_BYTES / attn_bench_best_time(5, copy_call, &c) / 1e9;
    }
    free(c.src);
    free(c.dst);
    return rate;
}

/* ---- set-up -------------------------------------------------------------------------------- */

static int inputs_init(kv_inputs *in, const kv_shape *s)
{
    in->k = attn_bench_random_f32(s->skv * s->hkv * s->d, 1);
    in->v = attn_bench_random_f32(s->skv * s->hkv * s->d, 2);
    in->q = attn_bench_random_f32(s->hq * s->d, 3);
    in->knew = attn_bench_random_f32(s->hkv * s->d, 4);
    in->vnew = attn_bench_random_f32(s->hkv * s->d, 5);
    in->out = attn_bench_random_f32(s->hq * s->d, 6);
    in->scores = attn_bench_random_f32(s->skv * s->hkv, 7);
    if (!in->k || !in->v || !in->q || !in->knew || !in->vnew || !in->out || !in->scores)
        return -1;
    for (int64_t i = 0; i < s->skv * s->hkv; i++) /* H2O's prefill scores: positive */
        in->scores[i] = in->scores[i] + 1.0f;
    return 0;
}

static void inputs_free(kv_inputs *in)
{
    free(in->k);
    free(in->v);
    free(in->q);
    free(in->knew);
    free(in->vnew);
    free(in->out);
    free(in->scores);
}

/* The cache after the prompt: Skv tokens appended, H2O given prefill scores, evicted to the
 * budget and compacted (the steps then attend over budget + 1 slots without holes). */
static attn_status cache_fill(kv_variant *w, const kv_shape *s, const kv_inputs *in)
{
    attn_kvcache_desc d = attn_kvcache_desc_default();
    d.kv_heads = s->hkv;
    d.head_dim_k = d.head_dim_v = s->d;
    d.dtype = ATTN_F16;
    d.policy = w->policy;
    d.budget = w->policy == ATTN_KV_FULL ? s->skv : (int64_t)(w->frac * (double)s->skv);
    d.initial_slots = w->policy == ATTN_KV_FULL ? s->skv + 4096 : 0;
    attn_status st = attn_kvcache_create(w->be, &d, &w->c);
    const attn_tensor k = attn_tensor_bshd(in->k, ATTN_F32, 1, s->skv, s->hkv, s->d);
    const attn_tensor v = attn_tensor_bshd(in->v, ATTN_F32, 1, s->skv, s->hkv, s->d);
    const attn_tensor sc = attn_tensor_bshd(in->scores, ATTN_F32, 1, s->skv, s->hkv, 1);
    if (st == ATTN_OK)
        st = attn_kvcache_append(w->c, &k, &v, 0);
    if (st == ATTN_OK && w->policy == ATTN_KV_H2O)
        st = attn_kvcache_add_scores(w->c, &sc);
    if (st == ATTN_OK)
        st = attn_kvcache_evict(w->c);
    if (st == ATTN_OK)
        st = attn_kvcache_compact(w->c);
    w->pos = s->skv;
    w->ad = d.attn;
    return st;
}

/* One step of a stepped variant. */
static attn_status step_once(kv_variant *w)
{
    return attn_kvcache_step(w->c, &w->q, &w->k, &w->v, w->pos++, &w->out);
}

static attn_status variant_init(kv_variant *w, const kv_shape *s, const kv_inputs *in)
{
    w->q = attn_tensor_bshd(in->q, ATTN_F32, 1, 1, s->hq, s->d);
    w->k = attn_tensor_bshd(in->knew, ATTN_F32, 1, 1, s->hkv, s->d);
    w->v = attn_tensor_bshd(in->vnew, ATTN_F32, 1, 1, s->hkv, s->d);
    w->out = attn_tensor_bshd(in->out, ATTN_F32, 1, 1, s->hq, s->d);
    attn_status st = cache_fill(w, s, in);
    attn_kvcache_info info;
    if (st == ATTN_OK)
        st = attn_kvcache_get_info(w->c, &info);
    if (st == ATTN_OK) /* a step attends over what stays between steps plus the new token */
        w->live = info.live + 1;
    return st;
}

static void variant_free(kv_variant *w)
{
    attn_kvcache_destroy(w->c);
}

/* ---- timing -------------------------------------------------------------------------------- */

static attn_status run_once(kv_variant *w)
{
    return step_once(w);
}

/* Best of `repeat` rounds; in each, every variant runs once after a cache flush. */
static attn_status time_all(kv_variant *w, int n, int repeat, char *flush)
{
    for (int k = 0; k < n; k++) {
        w[k].best = 1e300;
        const attn_status st = run_once(&w[k]); /* warm-up */
        if (st != ATTN_OK)
            return st;
    }
    for (int r = 0; r < repeat; r++)
        for (int k = 0; k < n; k++) {
            memset(flush, r + k, FLUSH_BYTES);
            const double t0 = omp_get_wtime();
            const attn_status st = run_once(&w[k]);
            const double t = omp_get_wtime() - t0;
            if (st != ATTN_OK)
                return st;
            w[k].best = t < w[k].best ? t : w[k].best;
        }
    return ATTN_OK;
}

/* ---- report -------------------------------------------------------------------------------- */

static void print_variants(const kv_variant *w, int n, const kv_shape *s, double copy)
{
    const double full = w[0].best, per_token = 2.0 * (double)(s->hkv * s->d) * 2.0;
    printf("cache      budget   slots    ms/step   tokens/s  KV GB/s  /memcpy  "
           "time/proportional\n");
    for (int k = 0; k < n; k++) {
        const double gbps = (double)w[k].live * per_token / w[k].best / 1e9;
        printf("%-9s  %5.0f%%  %6lld  %9.3f  %9.1f  %7.2f  %7.2f  %8.2f\n", w[k].name,
               100 * w[k].frac, (long long)w[k].live, 1e3 * w[k].best, 1 / w[k].best, gbps,
               gbps / copy, w[k].best / (full * w[k].frac));
    }
}

/* H2O's bookkeeping: what its step costs beyond the sliding window's step at the same budget
 * (both append, attend and evict as many tokens; H2O adds key_score, the score accumulation
 * and the heavy-hitter choice). */
static void print_h2o_split(const kv_variant *step, const kv_variant *sliding)
{
    const double t = step->best, extra = step->best - sliding->best;
    printf("h2o %2.0f%%: step %.3f ms, sliding step %.3f ms: bookkeeping %.3f ms = %.0f%% of the "
           "step\n", 100 * step->frac, 1e3 * t, 1e3 * sliding->best, 1e3 * extra,
           100 * extra / t);
}

static const char usage[] =
    "usage: attn bench --op kvcache [--backend B] [--options STR] [--threads N] [--repeat N]\n"
    "                  [--skv N --h N --hkv N --d N]\n"
    "Decode steps (append, attend, evict) of one layer's KV cache, f16 K and V (default Skv\n"
    "8192, Hq 32 / Hkv 8, D 128): the full cache, and sliding, streaming and h2o at budgets\n"
    "of 20% and 50% of Skv, in the same run; tokens/s, GB/s of K and V read, the time over\n"
    "the proportional time (time_budget / (time_full * fraction)), H2O's bookkeeping share\n"
    "(its step beyond the sliding window's step at the same budget).\n";

/* The variants: full; each policy at 20 % and 50 %. */
static int variants_make(kv_variant *w, attn_backend *be)
{
    static const char *const names[] = {"full", "sliding", "streaming", "h2o"};
    static const double fracs[] = {0.2, 0.5};
    int n = 0;
    w[n++] = (kv_variant){.name = names[0], .policy = ATTN_KV_FULL, .frac = 1, .be = be};
    for (int p = ATTN_KV_SLIDING; p <= ATTN_KV_H2O; p++)
        for (int f = 0; f < 2; f++)
            w[n++] = (kv_variant){.name = names[p], .policy = (attn_kv_policy)p,
                                  .frac = fracs[f], .be = be};
    return n;
}

static int bench(attn_backend *be, const kv_shape *s, const attn_bench_common *o)
{
    kv_variant w[8];
    const int n = variants_make(w, be);
    kv_inputs in = {0};
    char *flush = malloc(FLUSH_BYTES);
    attn_status st = flush && inputs_init(&in, s) == 0 ? ATTN_OK : ATTN_ERR_OUT_OF_MEMORY;
    for (int k = 0; k < n && st == ATTN_OK; k++)
        st = variant_init(&w[k], s, &in);
    const double copy = st == ATTN_OK ? copy_gbps() : -1;
    const double gemm = st == ATTN_OK ? attn_bench_sgemm_gflops(o->threads, 3) : -1;
    if (st == ATTN_OK)
        st = time_all(w, n, o->repeat, flush);
    if (st == ATTN_OK) {
        printf("same run: memcpy %.2f GB/s (read + written), sgemm %d^3 %.1f GFLOP/s\n", copy,
               ATTN_BENCH_SGEMM_N, gemm);
        printf("decode step (append, attend, evict): Skv %lld, Hq %lld / Hkv %lld, D %lld, f16 "
               "K and V, f32 q\n", (long long)s->skv, (long long)s->hq, (long long)s->hkv,
               (long long)s->d);
        print_variants(w, n, s, copy);
        print_h2o_split(&w[5], &w[1]);
        print_h2o_split(&w[6], &w[2]);
    } else {
        fprintf(stderr, "attn bench: kvcache: %s: %s\n", attn_status_name(st),
                st == ATTN_ERR_OUT_OF_MEMORY ? "out of memory" : attn_last_error());
    }
    for (int k = 0; k < n; k++)
        variant_free(&w[k]);
    inputs_free(&in);
    free(flush);
    return st == ATTN_OK ? 0 : 1;
}

int attn_kvcache_cmd_bench(int argc, char **argv)
{
    attn_bench_common o = {"cpu", NULL, omp_get_max_threads(), 20};
    kv_shape s = {8192, 32, 8, 128};
    static const char *const names[] = {"--skv", "--h", "--hkv", "--d"};
    int64_t *const dst[] = {&s.skv, &s.hq, &s.hkv, &s.d};
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if ((r = attn_bench_size_arg(argc, argv, &i, 4, names, dst, NULL)) == 0 &&
            (r = attn_bench_common_arg(argc, argv, &i, &o)) == 0)
            fprintf(stderr, "attn bench: unknown option %s\n%s", argv[i], usage);
        if (r <= 0)
            return 2;
    }
    if (s.hq % s.hkv != 0 || s.skv < 10) {
        fprintf(stderr, "attn bench: --h must be a multiple of --hkv and --skv at least 10\n");
        return 2;
    }
    char opts[256], cpu[128];
    attn_backend *be;
    if (attn_bench_open(&o, opts, sizeof opts, &be))
        return 2;
    attn_bench_cpu_model(cpu, sizeof cpu);
    printf("attn bench --op kvcache: %s; CPU %s; %d thread%s; best of %d, caches flushed "
           "before each step\n", attn_backend_describe(be), cpu, o.threads,
           o.threads == 1 ? "" : "s", o.repeat);
    const int rc = bench(be, &s, &o);
    attn_backend_close(be);
    return rc;
}
