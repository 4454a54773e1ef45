/* attn_bench_util.c - the pieces every `attn bench --op <stem>` shares (see attn_bench_util.h):
 * best-of timing, the same-run BLIS sgemm rate, random inputs, the CPU model, the common
 * options and the backend they open. */
#include "attn_bench_util.h"

#include "attn_args.h"
#include "attn_rng.h"
#include "cpu/cpu_bench.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void attn_bench_best_times(int repeat, int n, int nf, int (*const *fn)(void *),
                           void *const *ctx, double *best)
{
    for (int k = 0; k < nf; k++)
        best[k] = fn[k](ctx[k]) == 0 ? 1e300 : -1;
    for (int r = 0; r < repeat; r++)
        for (int k = 0; k < nf; k++) {
            const double t0 = omp_get_wtime();
            for (int i = 0; i < n && best[k] > 0; i++)
                if (fn[k](ctx[k]) != 0)
                    best[k] = -1;
            const double t = (omp_get_wtime() - t0) / n;
            if (best[k] > 0 && t < best[k])
                best[k] = t;
        }
}

double attn_bench_best_time(int repeat, int (*fn)(void *), void *ctx)
{
    int (*const f[1])(void *) = {fn};
    void *const c[1] = {ctx};
    double t;
    attn_bench_best_times(repeat, 1, 1, f, c, &t);
    return t;
}

typedef struct gemm_ctx {
    int threads;
    float *m; /* A, B and C, each ATTN_BENCH_SGEMM_N^2 */
} gemm_ctx;

static int gemm_call(void *ctx)
{
    gemm_ctx *g = ctx;
    const int64_t n = ATTN_BENCH_SGEMM_N;
    attn_cpu_sgemm_threads(g->threads, n, n, n, g->m, g->m + n * n, g->m + 2 * n * n);
    return 0;
}

double attn_bench_sgemm_gflops(int threads, int repeat)
{
    const size_t n = (size_t)ATTN_BENCH_SGEMM_N * ATTN_BENCH_SGEMM_N;
    gemm_ctx g = {threads, calloc(3 * n, sizeof(float))};
    if (!g.m)
        return -1;
    for (size_t i = 0; i < 2 * n; i++)
        g.m[i] = (float)(i % 11) * 0.05f;
    const double t = attn_bench_best_time(repeat, gemm_call, &g);
    free(g.m);
    return t > 0 ? 2.0 * (double)n * ATTN_BENCH_SGEMM_N / t / 1e9 : -1;
}

void *attn_bench_alloc(size_t bytes)
{
    return aligned_alloc(64, bytes ? (bytes + 63) / 64 * 64 : 64); /* a multiple of 64 */
}

float *attn_bench_random_f32(int64_t n, uint64_t stream)
{
    float *p = attn_bench_alloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; p && i < n; i++)
        p[i] = (float)attn_rng_uniform(11, stream, (uint64_t)i, -1, 1);
    return p;
}

void attn_bench_cpu_model(char *buf, size_t n)
{
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(buf, n, "%s", strchr(line, ':') + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    if (f)
        fclose(f);
}

/* --name N (1..1024) at argv[*i] into *dst: 1 consumed, 0 another option, -1 error. */
static int int_opt(int argc, char **argv, int *i, const char *name, int *dst)
{
    const char *v;
    int64_t n;
    int r = attn_arg_value(argc, argv, i, name, &v);
    if (r <= 0)
        return r;
    if (attn_parse_i64(name, v, 1, 1024, &n))
        return -1;
    *dst = (int)n;
    return 1;
}

int attn_bench_common_arg(int argc, char **argv, int *i, attn_bench_common *c)
{
    int r = attn_arg_value(argc, argv, i, "--backend", &c->backend);
    r = r ? r : attn_arg_value(argc, argv, i, "--options", &c->options);
    r = r ? r : int_opt(argc, argv, i, "--threads", &c->threads);
    return r ? r : int_opt(argc, argv, i, "--repeat", &c->repeat);
}

int attn_bench_size_arg(int argc, char **argv, int *i, int n, const char *const *names,
                        int64_t *const *dst, const int64_t *lo)
{
    for (int k = 0; k < n; k++) {
        const char *v;
        const int r = attn_arg_value(argc, argv, i, names[k], &v);
        if (r)
            return r < 0 || attn_parse_i64(names[k], v, lo ? lo[k] : 1, (int64_t)1 << 24, dst[k])
                       ? -1
                       : 1;
    }
    return 0;
}

int attn_bench_open(const attn_bench_common *c, char *opts, size_t n, attn_backend **be)
{
    opts[0] = '\0';
    if (strcmp(c->backend, "cpu") == 0)
        snprintf(opts, n, "threads=%d%s%s", c->threads, c->options ? "," : "",
                 c->options ? c->options : "");
    else if (c->options)
        snprintf(opts, n, "%s", c->options);
    *be = NULL;
    if (attn_backend_open(c->backend, opts[0] ? opts : NULL, be) != ATTN_OK) {
        fprintf(stderr, "attn bench: %s: %s\n", c->backend, attn_last_error());
        return 2;
    }
    return 0;
}
