/* sdpa_bench.c - `attn bench` of SDPA: forward speed of a backend beside same-run machine rates.
 * Forward shapes report GFLOP/s counting only attended query-key pairs,
 *   FLOPs = 2 * (Dk + Dv) * pairs   (pairs summed over batch and query heads),
 * next to a BLIS sgemm (large square, BLIS-threaded) measured in the same process right before.
 * Decode shapes (Sq <= 4) report GB/s of K and V bytes read next to a memory-copy rate measured
 * the same way, counted STREAM-style (bytes read + bytes written; the ratio uses this, the
 * stricter convention) and also as bytes copied; caches are flushed before every timed decode
 * run so K and V come from memory. Timings are best of --repeat runs. Each line names the
 * implementation that ran (attn_sdpa_impl_name); for a backend other than cpu, the cpu backend
 * runs the same shape in the same process and the line gives the speed ratio to it.
 * --backward times attn_sdpa_backward instead (gradients of the inputs' dtypes, given the
 * forward's out and lse) on the prefill shapes, counting five products per attended pair,
 *   FLOPs = 2 * (3 Dk + 2 Dv) * pairs   (S = Q K^T, dP = dO V^T, dV, dQ, dK: 2.5x the forward's
 * when Dk = Dv), beside the same sgemm rate and the forward's time measured interleaved. */
#include "sdpa_tool.h"

#include "attn/attn.h"
#include "attn_args.h"
#include "attn_bench_util.h"
#include "attn_half.h"
#include "attn_sdpa_problem.h"
#include "attn_rng.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_BYTES ((size_t)128 << 20)
#define FLUSH_BYTES ((size_t)96 << 20)

typedef struct bench_shape {
    int64_t b, h, hkv, sq, skv, d, dv, window;
    int causal;
    attn_dtype dtype, kv_dtype;
} bench_shape;

typedef struct bench_opts {
    const char *backend, *json, *device, *options;
    int threads, repeat, custom, backward;
    bench_shape shape;
} bench_opts;

typedef struct bench_result {
    double seconds, pairs, flops, bytes, rate, ref_rate;
    double cpu_seconds; /* the cpu backend on the same shape (0 when not run) */
    char impl[128], cpu_impl[128];
} bench_result;

/* ---- same-run machine rates ---------------------------------------------------------------- */

typedef struct copy_arg {
    int threads;
    char *src, *dst;
    size_t n;
} copy_arg;

static int copy_once(void *p)
{
    copy_arg *c = p;
#pragma omp parallel num_threads(c->threads)
    {
        size_t per = c->n / (size_t)omp_get_num_threads(), at = per * (size_t)omp_get_thread_num();
        memcpy(c->dst + at, c->src + at, per);
    }
    return 0;
}

/* GB/s of a threaded memcpy of COPY_BYTES (best of 5 after a warm-up), counting read + write
 * bytes; < 0 on failure. */
static double copy_rate(int threads)
{
    copy_arg c = {threads, malloc(COPY_BYTES), malloc(COPY_BYTES), COPY_BYTES};
    double rate = -1;
    if (c.src && c.dst) {
        memset(c.src, 1, c.n);
        memset(c.dst, 2, c.n);
        rate = 2.0 * (double)c.n / attn_bench_best_time(5, copy_once, &c) / 1e9;
    }
    free(c.src);
    free(c.dst);
    return rate;
}

/* ---- one shape ----------------------------------------------------------------------------- */

typedef struct sdpa_bufs {
    void *q, *k, *v, *o;
    attn_tensor tq, tk, tv, to;
    attn_sdpa_desc d;
} sdpa_bufs;

static void *filled(attn_dtype t, int64_t n, uint64_t stream)
{
    void *p = attn_bench_alloc((size_t)n * attn_dtype_size(t));
    for (int64_t i = 0; p && i < n; i++)
        attn_store_f64(p, t, i, attn_rng_uniform(7, stream, (uint64_t)i, -1, 1));
    return p;
}

static int bufs_init(sdpa_bufs *s, const bench_shape *b)
{
    memset(s, 0, sizeof *s);
    s->q = filled(b->dtype, b->b * b->sq * b->h * b->d, 1);
    s->k = filled(b->kv_dtype, b->b * b->skv * b->hkv * b->d, 2);
    s->v = filled(b->kv_dtype, b->b * b->skv * b->hkv * b->dv, 3);
    s->o = attn_bench_alloc((size_t)(b->b * b->sq * b->h * b->dv) * attn_dtype_size(b->dtype));
    if (!s->q || !s->k || !s->v || !s->o)
        return -1;
    s->tq = attn_tensor_bshd(s->q, b->dtype, b->b, b->sq, b->h, b->d);
    s->tk = attn_tensor_bshd(s->k, b->kv_dtype, b->b, b->skv, b->hkv, b->d);
    s->tv = attn_tensor_bshd(s->v, b->kv_dtype, b->b, b->skv, b->hkv, b->dv);
    s->to = attn_tensor_bshd(s->o, b->dtype, b->b, b->sq, b->h, b->dv);
    s->d = attn_sdpa_desc_default();
    s->d.causal = b->causal;
    s->d.window_left = b->window;
    return 0;
}

static void bufs_free(sdpa_bufs *s)
{
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->o);
}

/* Attended pairs (over batch and heads) and the K+V bytes the band makes readable. */
static attn_status count_work(const sdpa_bufs *s, const bench_shape *b, double *pairs,
                              double *bytes)
{
    attn_sdpa_problem p;
    attn_status st = attn_sdpa_validate(&s->d, &s->tq, &s->tk, &s->tv, &s->to, NULL, &p);
    if (st != ATTN_OK)
        return st;
    double per_head = 0;
    int64_t jlo = p.Skv, jhi = 0;
    for (int64_t i = 0; i < p.Sq; i++) {
        int64_t lo, hi;
        attn_band(&p, i, &lo, &hi);
        hi = hi < p.Skv ? hi : p.Skv;
        if (hi > lo) {
            per_head += (double)(hi - lo);
            jlo = lo < jlo ? lo : jlo;
            jhi = hi > jhi ? hi : jhi;
        }
    }
    *pairs = per_head * (double)(b->b * b->h);
    double keys = jhi > jlo ? (double)(jhi - jlo) : 0;
    *bytes = keys * (double)(b->b * b->hkv) * (double)(b->d + b->dv) *
             (double)attn_dtype_size(b->kv_dtype);
    return ATTN_OK;
}

typedef struct run_arg {
    attn_backend *be;
    sdpa_bufs *s;
    attn_status st;
    char *flush;
} run_arg;

static void forward_once(void *p)
{
    run_arg *r = p;
    attn_status st = attn_sdpa_forward(r->be, &r->s->d, &r->s->tq, &r->s->tk, &r->s->tv,
                                       &r->s->to, NULL);
    if (st != ATTN_OK)
        r->st = st;
}

/* Best time of `repeat` forwards; with a flush buffer, caches are evicted before each run. */
static double time_forward(run_arg *r, int repeat)
{
    forward_once(r); /* warm-up */
    double best = 1e30;
    for (int it = 0; it < repeat && r->st == ATTN_OK; it++) {
        if (r->flush)
            memset(r->flush, it & 0xff, FLUSH_BYTES);
        double t = omp_get_wtime();
        forward_once(r);
        t = omp_get_wtime() - t;
        best = t < best ? t : best;
    }
    return best;
}

static void shape_name(const bench_shape *b, char *buf, size_t n)
{
    char w[32] = "";
    if (b->window >= 0)
        snprintf(w, sizeof w, " w%lld", (long long)b->window);
    snprintf(buf, n, "%s%s%s B%lld Hq%lld/Hkv%lld Sq%lld Skv%lld D%lld/%lld%s%s",
             attn_dtype_name(b->dtype), b->kv_dtype != b->dtype ? " kv " : "",
             b->kv_dtype != b->dtype ? attn_dtype_name(b->kv_dtype) : "", (long long)b->b,
             (long long)b->h, (long long)b->hkv, (long long)b->sq, (long long)b->skv,
             (long long)b->d, (long long)b->dv, b->causal ? " causal" : "", w);
}

/* Best time of the forward on backend be (the buffers' dtypes as the shape says) and the name
 * of the implementation that ran. */
static attn_status measure(attn_backend *be, sdpa_bufs *s, char *flush, int repeat,
                           double *seconds, char *impl, size_t n)
{
    attn_status st = attn_sdpa_impl_name(be, &s->d, &s->tq, &s->tk, &s->tv, &s->to, NULL, impl,
                                         n);
    if (st != ATTN_OK)
        return st;
    run_arg r = {be, s, ATTN_OK, flush};
    *seconds = time_forward(&r, repeat);
    return r.st;
}

static void print_result(const bench_shape *b, const char *name, const bench_result *res)
{
    int decode = b->sq <= 4;
    if (decode)
        printf("%-52s %9.3f ms %8.2f GB/s  memcpy %7.2f GB/s r+w (%.2f copied)  ratio %5.2f",
               name, res->seconds * 1e3, res->rate, res->ref_rate, res->ref_rate / 2,
               res->rate / res->ref_rate);
    else
        printf("%-52s %9.3f ms %8.2f GFLOP/s  sgemm %7.2f GFLOP/s  ratio %5.2f", name,
               res->seconds * 1e3, res->rate, res->ref_rate, res->rate / res->ref_rate);
    if (res->cpu_seconds > 0)
        printf("  cpu %.3f ms (%s)  vs cpu %5.2fx", res->cpu_seconds * 1e3, res->cpu_impl,
               res->cpu_seconds / res->seconds);
    printf("  [%s]\n", res->impl);
    fflush(stdout);
}

static void add_json(cJSON *arr, const bench_shape *b, const char *name,
                     const bench_result *res)
{
    int decode = b->sq <= 4;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "shape", name);
    cJSON_AddStringToObject(j, "kind", decode ? "decode" : "forward");
    cJSON_AddStringToObject(j, "impl", res->impl);
    cJSON_AddNumberToObject(j, "seconds", res->seconds);
    cJSON_AddNumberToObject(j, "flops", res->flops);
    cJSON_AddNumberToObject(j, "pairs", res->pairs);
    cJSON_AddNumberToObject(j, "kv_bytes", res->bytes);
    cJSON_AddNumberToObject(j, decode ? "gbps" : "gflops", res->rate);
    cJSON_AddNumberToObject(j, decode ? "memcpy_gbps_rw" : "sgemm_gflops", res->ref_rate);
    if (decode)
        cJSON_AddNumberToObject(j, "memcpy_gbps_copied", res->ref_rate / 2);
    cJSON_AddNumberToObject(j, "ratio", res->rate / res->ref_rate);
    if (res->cpu_seconds > 0) {
        cJSON_AddStringToObject(j, "cpu_impl", res->cpu_impl);
        cJSON_AddNumberToObject(j, "cpu_seconds", res->cpu_seconds);
        cJSON_AddNumberToObject(j, "speedup_vs_cpu", res->cpu_seconds / res->seconds);
    }
    cJSON_AddItemToArray(arr, j);
}

/* One shape on be (and on cpu, when not NULL, for the ratio to the cpu backend). */
static int bench_one(const bench_opts *o, attn_backend *be, attn_backend *cpu,
                     const bench_shape *b, cJSON *arr)
{
    int decode = b->sq <= 4;
    sdpa_bufs s;
    char *flush = decode ? malloc(FLUSH_BYTES) : NULL;
    bench_result res = {0};
    attn_status st = ATTN_ERR_OUT_OF_MEMORY;
    if (bufs_init(&s, b) == 0 && (!decode || flush))
        st = count_work(&s, b, &res.pairs, &res.bytes);
    if (st == ATTN_OK) {
        res.ref_rate = decode ? copy_rate(o->threads) : attn_bench_sgemm_gflops(o->threads, 3);
        st = measure(be, &s, flush, o->repeat, &res.seconds, res.impl, sizeof res.impl);
    }
    if (st == ATTN_OK && cpu)
        st = measure(cpu, &s, flush, o->repeat, &res.cpu_seconds, res.cpu_impl,
                     sizeof res.cpu_impl);
    char name[160];
    shape_name(b, name, sizeof name);
    bufs_free(&s);
    free(flush);
    if (st != ATTN_OK) {
        fprintf(stderr, "attn bench: %s: %s (%s)\n", name, attn_status_name(st),
                attn_last_error());
        return 1;
    }
    res.flops = 2.0 * (double)(b->d + b->dv) * res.pairs;
    res.rate = decode ? res.bytes / res.seconds / 1e9 : res.flops / res.seconds / 1e9;
    print_result(b, name, &res);
    add_json(arr, b, name, &res);
    return 0;
}

/* ---- backward ------------------------------------------------------------------------------ */

/* The backward's own tensors: dout, the forward's lse, the gradients. */
typedef struct bwd_bufs {
    void *dout, *lse, *dq, *dk, *dv;
    attn_tensor tdout, tlse, tdq, tdk, tdv;
    attn_sdpa_grads g;
    sdpa_bufs *s;
    attn_backend *be;
} bwd_bufs;

static int bwd_init(bwd_bufs *w, sdpa_bufs *s, attn_backend *be, const bench_shape *b)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->be = be;
    const size_t qs = attn_dtype_size(b->dtype), ks = attn_dtype_size(b->kv_dtype);
    w->dout = filled(b->dtype, b->b * b->sq * b->h * b->dv, 4);
    w->lse = attn_bench_alloc((size_t)(b->b * b->sq * b->h) * sizeof(float));
    w->dq = attn_bench_alloc((size_t)(b->b * b->sq * b->h * b->d) * qs);
    w->dk = attn_bench_alloc((size_t)(b->b * b->skv * b->hkv * b->d) * ks);
    w->dv = attn_bench_alloc((size_t)(b->b * b->skv * b->hkv * b->dv) * ks);
    if (!w->dout || !w->lse || !w->dq || !w->dk || !w->dv)
        return -1;
    w->tdout = attn_tensor_bshd(w->dout, b->dtype, b->b, b->sq, b->h, b->dv);
    w->tlse = attn_tensor_bshd(w->lse, ATTN_F32, b->b, b->sq, b->h, 1);
    w->tdq = attn_tensor_bshd(w->dq, b->dtype, b->b, b->sq, b->h, b->d);
    w->tdk = attn_tensor_bshd(w->dk, b->kv_dtype, b->b, b->skv, b->hkv, b->d);
    w->tdv = attn_tensor_bshd(w->dv, b->kv_dtype, b->b, b->skv, b->hkv, b->dv);
    w->g = (attn_sdpa_grads){.dq = &w->tdq, .dk = &w->tdk, .dv = &w->tdv};
    return 0;
}

static void bwd_free(bwd_bufs *w)
{
    free(w->dout);
    free(w->lse);
    free(w->dq);
    free(w->dk);
    free(w->dv);
}

static int forward_lse(void *p)
{
    bwd_bufs *w = p;
    return attn_sdpa_forward(w->be, &w->s->d, &w->s->tq, &w->s->tk, &w->s->tv, &w->s->to,
                             &w->tlse) != ATTN_OK;
}

static int backward_once(void *p)
{
    bwd_bufs *w = p;
    return attn_sdpa_backward(w->be, &w->s->d, &w->s->tq, &w->s->tk, &w->s->tv, &w->s->to,
                              &w->tlse, &w->tdout, &w->g) != ATTN_OK;
}

/* One shape: the backward and the forward (with lse) timed interleaved on be. */
static int bench_backward(const bench_opts *o, attn_backend *be, const bench_shape *b,
                          cJSON *arr)
{
    sdpa_bufs s;
    bwd_bufs w = {0};
    bench_result res = {0};
    double fwd = -1, t[2] = {-1, -1};
    attn_status st = ATTN_ERR_OUT_OF_MEMORY;
    if (bufs_init(&s, b) == 0 && bwd_init(&w, &s, be, b) == 0)
        st = count_work(&s, b, &res.pairs, &res.bytes);
    if (st == ATTN_OK && forward_lse(&w) == 0)
        st = attn_sdpa_backward_impl_name(be, &s.d, &s.tq, &s.tk, &s.tv, &s.to, &w.tlse,
                                          &w.tdout, &w.g, res.impl, sizeof res.impl);
    if (st == ATTN_OK) {
        res.ref_rate = attn_bench_sgemm_gflops(o->threads, 3);
        int (*const fn[2])(void *) = {backward_once, forward_lse};
        void *const ctx[2] = {&w, &w};
        attn_bench_best_times(o->repeat, 1, 2, fn, ctx, t);
        st = t[0] < 0 || t[1] < 0 ? ATTN_ERR_BACKEND : ATTN_OK;
        res.seconds = t[0];
        fwd = t[1];
    }
    char name[160];
    shape_name(b, name, sizeof name);
    bufs_free(&s);
    bwd_free(&w);
    if (st != ATTN_OK) {
        fprintf(stderr, "attn bench: %s backward: %s (%s)\n", name, attn_status_name(st),
                attn_last_error());
        return 1;
    }
    res.flops = 2.0 * (double)(3 * b->d + 2 * b->dv) * res.pairs;
    res.rate = res.flops / res.seconds / 1e9;
    const double fwd_rate = 2.0 * (double)(b->d + b->dv) * res.pairs / fwd / 1e9;
    printf("%-44s bwd %9.3f ms %8.2f GFLOP/s  sgemm %7.2f  ratio %5.2f  fwd %8.3f ms %7.2f "
           "GFLOP/s  bwd/fwd %4.2fx  [%s]\n", name, res.seconds * 1e3, res.rate, res.ref_rate,
           res.rate / res.ref_rate, fwd * 1e3, fwd_rate, res.seconds / fwd, res.impl);
    fflush(stdout);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "shape", name);
    cJSON_AddStringToObject(j, "kind", "backward");
    cJSON_AddStringToObject(j, "impl", res.impl);
    cJSON_AddNumberToObject(j, "seconds", res.seconds);
    cJSON_AddNumberToObject(j, "flops", res.flops);
    cJSON_AddNumberToObject(j, "pairs", res.pairs);
    cJSON_AddNumberToObject(j, "gflops", res.rate);
    cJSON_AddNumberToObject(j, "sgemm_gflops", res.ref_rate);
    cJSON_AddNumberToObject(j, "ratio", res.rate / res.ref_rate);
    cJSON_AddNumberToObject(j, "forward_seconds", fwd);
    cJSON_AddNumberToObject(j, "forward_gflops", fwd_rate);
    cJSON_AddItemToArray(arr, j);
    return 0;
}

/* ---- options ------------------------------------------------------------------------------- */

static const char usage[] =
    "usage: attn bench [--op sdpa] [--backend B] [--device P:D] [--options STR] [--threads N]\n"
    "                  [--repeat N] [--json FILE] [--backward]\n"
    "                  [--b N --h N --hkv N --sq N --skv N --d N --dv N --causal --window W\n"
    "                   --dtype f32|f16|bf16 --kv-dtype f32|f16|bf16]\n"
    "Without shape options: the default shapes (f32 B1 H8 S2048 D64/D128, causal and not;\n"
    "decode Sq1 Skv8192 Hq32 Hkv8 D128 f16 KV).\n"
    "  --device P:D   backend option device=P:D (opencl)\n"
    "  --options STR  more backend options, \"key=value,...\" (cpu: threads=N, simd=on|off|avx2|avx512)\n"
    "  --threads N    threads of the cpu backend, the sgemm and the memcpy (default: all)\n"
    "  --backward     time the backward (gradients) on the shape, or on the four prefill\n"
    "                 default shapes, beside the forward\n"
    "A backend other than cpu is compared with the cpu backend on each shape.\n";

static int parse_dtype(const char *opt, const char *v, attn_dtype *t)
{
    static const char *const names[] = {"f32", "f16", "bf16", NULL};
    int k;
    if (attn_parse_choice(opt, v, names, &k) != 0)
        return -1;
    *t = (attn_dtype)k;
    return 0;
}

/* One option at argv[*i]: 1 consumed, 0 unknown, -1 error. */
static int parse_opt(int argc, char **argv, int *i, bench_opts *o, int *kv_set)
{
    static const char *const ints[] = {"--b", "--h", "--hkv", "--sq", "--skv", "--d", "--dv",
                                       "--window"};
    bench_shape *b = &o->shape;
    int64_t *dst[] = {&b->b, &b->h, &b->hkv, &b->sq, &b->skv, &b->d, &b->dv, &b->window};
    const char *v;
    int r;
    for (int k = 0; k < 8; k++) {
        if ((r = attn_arg_value(argc, argv, i, ints[k], &v)) != 0) {
            o->custom = 1;
            return r < 0 ? -1
                         : attn_parse_i64(ints[k], v, k == 7 ? -1 : 1, (int64_t)1 << 24,
                                          dst[k]) == 0 ? 1 : -1;
        }
    }
    if ((r = attn_arg_flag(argv, *i, "--backward")) != 0) {
        o->backward = 1;
        return r;
    }
    if ((r = attn_arg_flag(argv, *i, "--causal")) != 0) {
        o->custom = 1;
        b->causal = 1;
        return r;
    }
    if ((r = attn_arg_value(argc, argv, i, "--dtype", &v)) != 0)
        return r < 0 || parse_dtype("--dtype", v, &b->dtype) ? -1 : (o->custom = 1);
    if ((r = attn_arg_value(argc, argv, i, "--kv-dtype", &v)) != 0) {
        *kv_set = 1;
        return r < 0 || parse_dtype("--kv-dtype", v, &b->kv_dtype) ? -1 : (o->custom = 1);
    }
    if ((r = attn_arg_value(argc, argv, i, "--backend", &o->backend)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--json", &o->json)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--device", &o->device)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--options", &o->options)) != 0)
        return r;
    int64_t n;
    if ((r = attn_arg_value(argc, argv, i, "--threads", &v)) != 0)
        return r < 0 || attn_parse_i64("--threads", v, 1, 1024, &n) ? -1 : (o->threads = (int)n, 1);
    if ((r = attn_arg_value(argc, argv, i, "--repeat", &v)) != 0)
        return r < 0 || attn_parse_i64("--repeat", v, 1, 1000, &n) ? -1 : (o->repeat = (int)n, 1);
    return 0;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.backend = "cpu", .threads = omp_get_max_threads(), .repeat = 5,
                      .shape = {.b = 1, .h = 8, .hkv = 0, .sq = 2048, .skv = 0, .d = 64,
                                .dv = 0, .window = -1, .dtype = ATTN_F32}};
    int kv_set = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        int r = parse_opt(argc, argv, &i, o, &kv_set);
        if (r == 0)
            fprintf(stderr, "attn bench: unknown option %s\n%s", argv[i], usage);
        if (r <= 0)
            return -1;
    }
    bench_shape *b = &o->shape;
    b->hkv = b->hkv ? b->hkv : b->h;
    b->skv = b->skv ? b->skv : b->sq;
    b->dv = b->dv ? b->dv : b->d;
    if (!kv_set)
        b->kv_dtype = b->dtype;
    return 0;
}

static int write_json(const char *path, cJSON *arr)
{
    char *text = cJSON_Print(arr);
    FILE *f = text ? fopen(path, "w") : NULL;
    int ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "attn bench: cannot write %s\n", path);
    free(text);
    return ok ? 0 : 1;
}

/* Opens backend `name`: cpu gets threads=N first (its own options may override it); --device
 * becomes device=P:D; --options is appended. Prints the error; returns NULL on failure. */
static attn_backend *open_backend(const bench_opts *o, const char *name, int with_user_opts)
{
    char opts[512] = "";
    size_t k = 0;
    if (strcmp(name, "cpu") == 0)
        k += (size_t)snprintf(opts + k, sizeof opts - k, "threads=%d,", o->threads);
    if (with_user_opts && o->device)
        k += (size_t)snprintf(opts + k, sizeof opts - k, "device=%s,", o->device);
    if (with_user_opts && o->options)
        k += (size_t)snprintf(opts + k, sizeof opts - k, "%s,", o->options);
    if (k >= sizeof opts) {
        fprintf(stderr, "attn bench: backend options too long\n");
        return NULL;
    }
    if (k > 0)
        opts[k - 1] = '\0'; /* the trailing comma */
    attn_backend *be = NULL;
    attn_status st = attn_backend_open(name, k > 0 ? opts : NULL, &be);
    if (st != ATTN_OK) {
        fprintf(stderr, "attn bench: %s: %s: %s\n", name, attn_status_name(st),
                attn_last_error());
        return NULL;
    }
    return be;
}

/* Default prefill shape k of 4: f32 B1 H8 S2048, D64 then D128, not causal then causal. */
static bench_shape prefill_shape(int k)
{
    return (bench_shape){1, 8, 8, 2048, 2048, k < 2 ? 64 : 128, k < 2 ? 64 : 128, -1, k % 2,
                         ATTN_F32, ATTN_F32};
}

int attn_sdpa_cmd_bench(int argc, char **argv)
{
    bench_opts o;
    int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    attn_backend *be = open_backend(&o, o.backend, 1), *cpu = NULL;
    if (!be)
        return 2;
    if (strcmp(o.backend, "cpu") != 0 && !(cpu = open_backend(&o, "cpu", 0))) {
        attn_backend_close(be);
        return 2;
    }
    printf("attn bench: %s; %d threads for sgemm/memcpy; best of %d\n",
           attn_backend_describe(be), o.threads, o.repeat);
    if (cpu)
        printf("compared with %s\n", attn_backend_describe(cpu));
    cJSON *arr = cJSON_CreateArray();
    int fail = 0;
    if (o.backward && o.custom) {
        fail |= bench_backward(&o, be, &o.shape, arr);
    } else if (o.backward) {
        for (int k = 0; k < 4; k++) {
            const bench_shape b = prefill_shape(k);
            fail |= bench_backward(&o, be, &b, arr);
        }
    } else if (o.custom) {
        fail |= bench_one(&o, be, cpu, &o.shape, arr);
    } else {
        for (int k = 0; k < 4; k++) {
            const bench_shape b = prefill_shape(k);
            fail |= bench_one(&o, be, cpu, &b, arr);
        }
        bench_shape dec = {1, 32, 8, 1, 8192, 128, 128, -1, 0, ATTN_F32, ATTN_F16};
        fail |= bench_one(&o, be, cpu, &dec, arr);
    }
    if (o.json && arr)
        fail |= write_json(o.json, arr);
    cJSON_Delete(arr);
    attn_backend_close(cpu);
    attn_backend_close(be);
    return fail ? 1 : 0;
}
