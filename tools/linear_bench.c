/* linear_bench.c - `attn bench --op linear`: forward speed of linear attention on a backend
 * beside a BLIS sgemm (2048^3, BLIS-threaded) measured in the same process right before. The
 * GFLOP/s count the products the chunked algorithm performs with chunk C (read from the
 * implementation name), per KV head and chunk of L positions with G = Hq/Hkv query heads and
 * W = Dv (+1 with the normaliser):
 *   2 G L L Df (Q K^T) + 2 G L L W (A V) + 2 G L Df W (Q S) + 2 L Df W (state update)
 * so the fraction of sgemm says how close the kernel runs to the machine's matrix rate.
 * Shapes are conformance case names (`--case 'linear b1 s4096 hq8 hkv8 d128 ...'`); the
 * defaults are S4096 D128 with H8/Hkv8 and the GQA 16/4, elu+1 and softmax-pair maps.
 * --backward times attn_linear_backward (no state) beside the forward of the same case; its
 * products (the cpu's chunked backward, src/cpu/cpu_linear_backward.c), per chunk:
 *   2 (4 G L L (Df + W) + 3 G L Df W + 3 L Df W)
 * (scores and their gradients twice, A V, dP K, A^T dN, dP^T F; O = Q S, dN S^T and the state
 * gradient; the state, K D and V D^T). Its defaults: H8 S4096 D128, elu+1 normalised and the
 * softmax-pair map without the normaliser, causal. */
#include "linear_tool.h"

#include "attn_args.h"
#include "attn_bench_util.h"
#include "attn_conform.h"
#include "attn_fill.h"
#include "attn_linear_problem.h"
#include "linear_case.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SHAPES 16

static const char *const default_shapes[] = {
    "linear b1 s4096 hq8 hkv8 d128 feature=elu1 norm=1 causal=1",
    "linear b1 s4096 hq16 hkv4 d128 feature=elu1 norm=1 causal=1",
    "linear b1 s4096 hq8 hkv8 d128 feature=softmax_pair norm=0 causal=1",
    "linear b1 s4096 hq16 hkv4 d128 feature=softmax_pair norm=0 causal=1",
};

/* Products of a chunked sweep, per chunk of l rows: kq g l^2 (Df + W) in-chunk scores and
 * terms, kr g l Df W state reads, ks l Df W state updates (see the header comment). */
static double sweep_flops(const attn_linear_case *c, int64_t chunk, double kq, double kr,
                          double ks)
{
    const double df = (double)attn_linear_features(c->feature, c->dk);
    const double w = (double)c->dv + (c->normalize ? 1.0 : 0.0), g = (double)(c->hq / c->hkv);
    double f = 0.0;
    for (int64_t c0 = 0; c0 < c->s; c0 += chunk) {
        const double l = (double)(c->s - c0 < chunk ? c->s - c0 : chunk);
        f += 2.0 * (kq * g * l * l * (df + w) + kr * g * l * df * w + ks * l * df * w);
    }
    return f * (double)(c->b * c->hkv);
}

/* The chunked algorithm's products. */
static double chunked_flops(const attn_linear_case *c, int64_t chunk)
{
    return sweep_flops(c, chunk, 1.0, 1.0, 1.0);
}

/* The chunked backward's products (causal): both sweeps. */
static double backward_flops(const attn_linear_case *c, int64_t chunk)
{
    return sweep_flops(c, chunk, 4.0, 3.0, 3.0);
}

/* Dense tensors of a case, filled like conformance inputs; with the backward also dout (filled
 * like v) and the gradients. */
typedef struct bench_io {
    attn_tensor q, k, v, out, dq, dk, dv;
    float *mem;
} bench_io;

static int io_make(const attn_linear_case *c, int backward, bench_io *io)
{
    const size_t nq = (size_t)(c->b * c->s * c->hq * c->dk);
    const size_t nk = (size_t)(c->b * c->s * c->hkv * c->dk);
    const size_t nv = (size_t)(c->b * c->s * c->hkv * c->dv);
    const size_t no = (size_t)(c->b * c->s * c->hq * c->dv);
    io->mem = attn_bench_alloc(sizeof(float) * (size_t)(nq + nk + nv + no) * (backward ? 2 : 1));
    if (!io->mem)
        return -1;
    io->q = attn_tensor_bshd(io->mem, ATTN_F32, c->b, c->s, c->hq, c->dk);
    io->k = attn_tensor_bshd(io->mem + nq, ATTN_F32, c->b, c->s, c->hkv, c->dk);
    io->v = attn_tensor_bshd(io->mem + nq + nk, ATTN_F32, c->b, c->s, c->hkv, c->dv);
    io->out = attn_tensor_bshd(io->mem + nq + nk + nv, ATTN_F32, c->b, c->s, c->hq, c->dv);
    attn_fill_tensor(&io->q, ATTN_FILL_UNIFORM, 42, ATTN_FILL_Q);
    attn_fill_tensor(&io->k, ATTN_FILL_UNIFORM, 42, ATTN_FILL_K);
    attn_fill_tensor(&io->v, ATTN_FILL_UNIFORM, 42, ATTN_FILL_V);
    if (!backward)
        return 0;
    float *g = io->mem + nq + nk + nv + no;
    io->dq = attn_tensor_bshd(g, ATTN_F32, c->b, c->s, c->hq, c->dk);
    io->dk = attn_tensor_bshd(g + nq, ATTN_F32, c->b, c->s, c->hkv, c->dk);
    io->dv = attn_tensor_bshd(g + nq + nk, ATTN_F32, c->b, c->s, c->hkv, c->dv);
    attn_fill_tensor(&io->out, ATTN_FILL_UNIFORM, 43, ATTN_FILL_V); /* as dout */
    return 0;
}

/* One call: the forward, or the backward with out as dout. */
static attn_status call(attn_backend *be, const attn_linear_desc *d, const bench_io *io,
                        int backward)
{
    const attn_linear_grads g = {.dq = &io->dq, .dk = &io->dk, .dv = &io->dv};
    return backward ? attn_linear_backward(be, d, &io->q, &io->k, &io->v, NULL, &io->out, &g)
                    : attn_linear_forward(be, d, &io->q, &io->k, &io->v, &io->out, NULL);
}

/* Best time of `repeat` forwards (backwards) after one warm-up; the implementation name into
 * impl. */
static attn_status time_case(attn_backend *be, const attn_linear_case *c, int backward,
                             int repeat, double *best, char *impl, size_t n)
{
    bench_io io;
    float dv[1024];
    if (c->hkv > 1024 || io_make(c, backward, &io))
        return ATTN_ERR_OUT_OF_MEMORY;
    const attn_linear_desc d = attn_linear_case_desc(c, dv);
    const attn_linear_grads g = {.dq = &io.dq, .dk = &io.dk, .dv = &io.dv};
    attn_status st = backward ? attn_linear_backward_impl_name(be, &d, &io.q, &io.k, &io.v,
                                                               NULL, &io.out, &g, impl, n)
                              : attn_linear_impl_name(be, &d, &io.q, &io.k, &io.v, &io.out,
                                                      NULL, impl, n);
    *best = 1e30;
    for (int r = 0; r <= repeat && st == ATTN_OK; r++) {
        const double t0 = omp_get_wtime();
        st = call(be, &d, &io, backward);
        const double t = omp_get_wtime() - t0;
        if (r > 0 && t < *best)
            *best = t;
    }
    free(io.mem);
    return st;
}

/* The chunk length in an implementation name ("...chunk128..."), else 128. */
static int64_t chunk_of(const char *impl)
{
    const char *s = strstr(impl, "chunk");
    return s ? strtoll(s + 5, NULL, 10) : 128;
}

typedef struct bench_args {
    const char *backend, *options;
    int repeat, threads, n, backward;
    const char *shapes[MAX_SHAPES];
} bench_args;

static int parse_args(int argc, char **argv, bench_args *a)
{
    a->backend = "cpu";
    a->repeat = 3;
    a->threads = omp_get_max_threads();
    for (int i = 1; i < argc; i++) {
        const char *val;
        int64_t x;
        int r = strcmp(argv[i], "--backward") == 0 ? (a->backward = 1) : 0;
        if (r == 0)
            r = attn_arg_value(argc, argv, &i, "--backend", &a->backend);
        if (r == 0)
            r = attn_arg_value(argc, argv, &i, "--options", &a->options);
        if (r == 0 && (r = attn_arg_value(argc, argv, &i, "--repeat", &val)) > 0)
            r = attn_parse_i64("--repeat", val, 1, 1000, &x) ? -1 : (a->repeat = (int)x, 1);
        if (r == 0 && (r = attn_arg_value(argc, argv, &i, "--case", &val)) > 0) {
            if (a->n == MAX_SHAPES)
                r = -1;
            else
                a->shapes[a->n++] = val;
        }
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "attn bench --op linear: unknown option '%s'\n"
                                "usage: attn bench --op linear [--backend B] [--options STR] "
                                "[--repeat N] [--backward] [--case 'linear ...']...\n", argv[i]);
            return -1;
        }
    }
    for (int k = 0; a->n == 0 && k < 4; k++)
        if (!a->backward || k % 2 == 0) /* the backward's defaults: H8 */
            a->shapes[k / (a->backward ? 2 : 1)] = default_shapes[k];
    if (a->n == 0)
        a->n = a->backward ? 2 : 4;
    return 0;
}

int attn_linear_cmd_bench(int argc, char **argv)
{
    bench_args a;
    memset(&a, 0, sizeof a);
    if (parse_args(argc, argv, &a))
        return 2;
    attn_backend *be;
    attn_status st = attn_backend_open(a.backend, a.options, &be);
    if (st != ATTN_OK) {
        fprintf(stderr, "attn bench: %s\n", attn_last_error());
        return 3;
    }
    const double sgemm = attn_bench_sgemm_gflops(a.threads, a.repeat);
    printf("attn bench --op linear: %s\nsgemm %d^3 (BLIS, %d threads): %.1f GFLOP/s\n",
           attn_backend_describe(be), ATTN_BENCH_SGEMM_N, a.threads, sgemm);
    int rc = 0;
    for (int k = 0; k < a.n; k++) {
        attn_case c;
        char err[200], impl[200] = "";
        double t;
        if (attn_case_parse(a.shapes[k], &c, err, sizeof err) || strcmp(c.op->stem, "linear")) {
            fprintf(stderr, "attn bench: bad case '%s': %s\n", a.shapes[k], err);
            rc = 2;
            continue;
        }
        const attn_linear_case *lc = attn_case_cdata(&c);
        if ((st = time_case(be, lc, 0, a.repeat, &t, impl, sizeof impl)) != ATTN_OK) {
            fprintf(stderr, "attn bench: %s: %s\n", a.shapes[k], attn_last_error());
            rc = 1;
            continue;
        }
        const double gf = chunked_flops(lc, chunk_of(impl)) / t * 1e-9;
        printf("%-70s %8.2f ms %7.1f GFLOP/s %5.1f%% of sgemm  %s\n", a.shapes[k], t * 1e3, gf,
               100.0 * gf / sgemm, impl);
        double tb;
        if (a.backward && (st = time_case(be, lc, 1, a.repeat, &tb, impl, sizeof impl))) {
            fprintf(stderr, "attn bench: %s backward: %s\n", a.shapes[k], attn_last_error());
            rc = 1;
        } else if (a.backward) {
            const double gb = backward_flops(lc, chunk_of(impl)) / tb * 1e-9;
            printf("%-70s %8.2f ms %7.1f GFLOP/s %5.1f%% of sgemm  %s (backward, %.2fx the "
                   "forward's time)\n", "  backward", tb * 1e3, gb, 100.0 * gb / sgemm, impl,
                   tb / t);
        }
    }
    attn_backend_close(be);
    return rc;
}
