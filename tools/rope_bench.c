/* rope_bench.c - `attn bench --op rope`: RoPE speed of a backend as memory bandwidth, next to
 * a memory copy of the same bytes measured in the same process right before. RoPE reads x
 * (and the positions) and writes out once, so its rate counts bytes read + bytes written,
 * STREAM-style, and so does the copy's (its bytes read + written; OpenMP-parallel over
 * the backend's threads where the build has OpenMP). The ratio rope / copy says how close the
 * op runs to the machine's copy bandwidth. Tensors live in the backend's buffers (device
 * memory on opencl). Timings are best of --repeat runs. */
#include "rope_tool.h"

#include "attn_args.h"
#include "attn_rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct rope_shape {
    int64_t b, s, h, d, rot;
    attn_rope_layout pairs;
    attn_dtype dt;
    int positions; /* 0 none, else i64 [B, S] */
} rope_shape;

/* The default shapes: a Llama-style prefill (B1 S4096 H32 D128) in both layouts, partial
 * rotation, bf16, positions given; and a batch of decode rows far into a cache. */
static const rope_shape default_shapes[] = {
    {1, 4096, 32, 128, 0, ATTN_ROPE_HALF, ATTN_F32, 0},
    {1, 4096, 32, 128, 0, ATTN_ROPE_INTERLEAVED, ATTN_F32, 0},
    {1, 4096, 32, 128, 64, ATTN_ROPE_HALF, ATTN_F32, 0},
    {1, 4096, 32, 128, 0, ATTN_ROPE_HALF, ATTN_BF16, 0},
    {1, 4096, 32, 128, 0, ATTN_ROPE_HALF, ATTN_F32, 1},
    {64, 1, 32, 128, 0, ATTN_ROPE_HALF, ATTN_F32, 1},
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* GB/s (read + written) of copying n bytes, best of `repeat`. */
static double copy_rate(size_t n, int repeat)
{
    char *a = malloc(n), *b = malloc(n);
    double best = 1e30;
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    const size_t chunk = 1 << 20;
    for (int r = 0; r < repeat + 1; r++) { /* the first run warms the pages */
        const double t = now();
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (size_t off = 0; off < n; off += chunk)
            memcpy(b + off, a + off, n - off < chunk ? n - off : chunk);
        if (r > 0 && now() - t < best)
            best = now() - t;
    }
    free(a);
    free(b);
    return 2.0 * (double)n / best / 1e9;
}

/* One shape on an open backend: seconds (best of repeat), or < 0 with a message printed. */
static double time_shape(attn_backend *be, const rope_shape *sh, int repeat, char *impl,
                         size_t n_impl)
{
    const int64_t elems = sh->b * sh->s * sh->h * sh->d;
    const size_t bytes = (size_t)elems * attn_dtype_size(sh->dt);
    const size_t pbytes = (size_t)(sh->b * sh->s) * 8;
    attn_buffer *bx = NULL, *bo = NULL, *bp = NULL;
    double best = -1;
    void *host = malloc(bytes > pbytes ? bytes : pbytes);
    if (host && attn_buffer_alloc(be, bytes, &bx) == ATTN_OK &&
        attn_buffer_alloc(be, bytes, &bo) == ATTN_OK &&
        attn_buffer_alloc(be, pbytes, &bp) == ATTN_OK) {
        for (size_t i = 0; i < bytes; i += 2) /* bit patterns of small values in any dtype */
            ((uint16_t *)host)[i / 2] = (uint16_t)(0x3c00u | (attn_rng_bits(1, 1, i) & 0x3ffu));
        attn_buffer_write(bx, 0, host, bytes);
        for (int64_t i = 0; i < sh->b * sh->s; i++)
            ((int64_t *)host)[i] = 100000 + i % sh->s;
        attn_buffer_write(bp, 0, host, pbytes);
        attn_tensor x = attn_tensor_bshd(NULL, sh->dt, sh->b, sh->s, sh->h, sh->d);
        attn_tensor o = x, p = attn_tensor_bshd(NULL, ATTN_I64, sh->b, sh->s, 1, 1);
        x.buffer = bx;
        o.buffer = bo;
        p.buffer = bp;
        attn_rope_desc d = attn_rope_desc_default();
        d.layout = sh->pairs;
        d.rot_dim = sh->rot;
        d.positions = sh->positions ? &p : NULL;
        attn_status st = attn_rope_impl_name(be, &d, &x, &o, impl, n_impl);
        for (int r = 0; r < repeat + 1 && st == ATTN_OK; r++) { /* run 0 builds kernels */
            const double t = now();
            st = attn_rope_forward(be, &d, &x, &o);
            if (r > 0 && (best < 0 || now() - t < best))
                best = now() - t;
        }
        if (st != ATTN_OK) {
            fprintf(stderr, "attn bench: rope: %s: %s\n", attn_status_name(st), attn_last_error());
            best = -1;
        }
    } else {
        fprintf(stderr, "attn bench: rope: cannot allocate %zu bytes: %s\n", bytes,
                attn_last_error());
    }
    attn_buffer_free(bx);
    attn_buffer_free(bo);
    attn_buffer_free(bp);
    free(host);
    return best;
}

static const char bench_help[] =
    "usage: attn bench --op rope [--backend B] [--options STR] [--repeat N]\n"
    "                  [--b N --s N --h N --d N --rot N --rope half|interleaved\n"
    "                   --dtype f32|f16|bf16 --positions]\n"
    "RoPE bandwidth (bytes read + written) beside a same-run memory copy; without a shape\n"
    "option, the default shapes (B1 S4096 H32 D128 and a decode batch).\n";

static int parse(int argc, char **argv, const char **backend, const char **options,
                 int64_t *repeat, rope_shape *sh, int *custom)
{
    static const char *const ints[] = {"--b", "--s", "--h", "--d", "--rot"};
    int64_t *dst[] = {&sh->b, &sh->s, &sh->h, &sh->d, &sh->rot};
    static const char *const dts[] = {"f32", "f16", "bf16", NULL};
    static const char *const pairs[] = {"half", "interleaved", NULL};
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r = 0, k;
        for (int j = 0; j < 5 && r == 0; j++)
            if ((r = attn_arg_value(argc, argv, &i, ints[j], &v)) > 0)
                r = attn_parse_i64(ints[j], v, j == 4 ? 0 : 1, (int64_t)1 << 30, dst[j]) ? -1 : 1;
        if (r == 0 && (r = attn_arg_value(argc, argv, &i, "--dtype", &v)) > 0)
            r = attn_parse_choice("--dtype", v, dts, &k) ? -1 : (sh->dt = (attn_dtype)k, 1);
        if (r == 0 && (r = attn_arg_value(argc, argv, &i, "--rope", &v)) > 0)
            r = attn_parse_choice("--rope", v, pairs, &k) ? -1 : (sh->pairs = k, 1);
        if (r == 0 && (r = attn_arg_flag(argv, i, "--positions")) > 0)
            sh->positions = 1;
        *custom |= r > 0;
        if (r == 0 && (r = attn_arg_value(argc, argv, &i, "--backend", backend)) == 0 &&
            (r = attn_arg_value(argc, argv, &i, "--options", options)) == 0 &&
            (r = attn_arg_value(argc, argv, &i, "--repeat", &v)) > 0)
            r = attn_parse_i64("--repeat", v, 1, 1000, repeat) ? -1 : 1;
        if (r == 0) {
            fputs(bench_help, strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? -1 : 1;
        }
        if (r < 0)
            return -1;
    }
    return 0;
}

int attn_rope_cmd_bench(int argc, char **argv)
{
    const char *backend = "cpu", *options = NULL;
    int64_t repeat = 5;
    int custom = 0;
    rope_shape one = default_shapes[0];
    int rc = parse(argc, argv, &backend, &options, &repeat, &one, &custom);
    if (rc)
        return rc < 0 ? 2 : 0;
    attn_backend *be = NULL;
    if (attn_backend_open(backend, options, &be) != ATTN_OK) {
        fprintf(stderr, "attn bench: backend %s: %s\n", backend, attn_last_error());
        return 3;
    }
    printf("attn bench --op rope: %s\n", attn_backend_describe(be));
    const rope_shape *list = custom ? &one : default_shapes;
    const int n = custom ? 1 : (int)(sizeof default_shapes / sizeof default_shapes[0]);
    rc = 0;
    for (int k = 0; k < n; k++) {
        const rope_shape *sh = &list[k];
        const double pos_bytes = sh->positions ? 8.0 * (double)(sh->b * sh->s) : 0.0;
        const double bytes = (double)(sh->b * sh->s * sh->h * sh->d) * 2.0 *
                                 (double)attn_dtype_size(sh->dt) + pos_bytes;
        char impl[128] = "";
        const double copy = copy_rate((size_t)(bytes / 2), (int)repeat);
        const double t = time_shape(be, sh, (int)repeat, impl, sizeof impl);
        if (t < 0) {
            rc = 1;
            continue;
        }
        const double rate = bytes / t / 1e9;
        printf("rope B%lld S%lld H%lld D%lld rot %lld %-11s %-4s%s | %8.3f ms %7.2f GB/s | "
               "memcpy %7.2f GB/s | ratio %.2f | %s\n",
               (long long)sh->b, (long long)sh->s, (long long)sh->h, (long long)sh->d,
               (long long)(sh->rot ? sh->rot : sh->d),
               sh->pairs == ATTN_ROPE_INTERLEAVED ? "interleaved" : "half",
               attn_dtype_name(sh->dt), sh->positions ? " pos" : "", 1e3 * t, rate, copy,
               copy > 0 ? rate / copy : 0.0, impl);
    }
    attn_backend_close(be);
    return rc;
}
