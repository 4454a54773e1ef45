/* transnormer_bench.c - `attn bench --op transnormer`: forward speed of a backend next to a
 * BLIS sgemm (2048^3, same threads) measured in the same process just before. GFLOP/s count
 * the products of the algorithm:
 *   NormAttention: 2 S Dk Dv (Hkv + Hq)  (chunk states and their use), plus when causal the
 *                  intra-chunk products 2 S C (Dk + Dv) Hq (C = 128, computed in full)
 *   DiagAttention: 2 (Dk + Dv) per attended (query, key) pair
 * Timings are best of --repeat runs; each line names the implementation that ran. */
#include "transnormer_tool.h"

#include "attn_args.h"
#include "attn_bench_util.h"
#include "attn_half.h"
#include "transnormer_case.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NORM_CHUNK 128.0

typedef struct tn_shape {
    int64_t b, s, hq, hkv, d, dv;
    attn_transnormer_desc desc;
} tn_shape;

typedef struct fwd_ctx {
    attn_backend *be;
    const attn_transnormer_desc *d;
    attn_tensor q, k, v, o;
    attn_status st;
} fwd_ctx;

static int fwd_call(void *ctx)
{
    fwd_ctx *f = ctx;
    f->st = attn_transnormer_forward(f->be, f->d, &f->q, &f->k, &f->v, &f->o);
    return f->st == ATTN_OK ? 0 : -1;
}

/* The algorithm's flops (see the file comment). */
static double shape_flops(const tn_shape *sh)
{
    const attn_transnormer_desc *d = &sh->desc;
    const double s = (double)sh->s, dk = (double)sh->d, dv = (double)sh->dv;
    if (d->mode == ATTN_TRANSNORMER_MODE_NORM)
        return 2.0 * (double)sh->b * s *
               (dk * dv * (double)(sh->hkv + sh->hq) +
                (d->causal ? NORM_CHUNK * (dk + dv) * (double)sh->hq : 0.0));
    attn_transnormer_case c; /* the case's cost counts the attended pairs */
    attn_transnormer_case_default(&c);
    c.b = sh->b;
    c.s = sh->s;
    c.hq = sh->hq;
    c.dk = sh->d;
    c.dv = sh->dv;
    c.mode = d->mode;
    c.causal = d->causal;
    c.block = d->block ? d->block : 64;
    return attn_transnormer_case_cost(&c);
}

static void shape_name(const tn_shape *sh, char *buf, size_t n)
{
    const attn_transnormer_desc *d = &sh->desc;
    char mode[48];
    if (d->mode == ATTN_TRANSNORMER_MODE_NORM)
        snprintf(mode, sizeof mode, "norm");
    else
        snprintf(mode, sizeof mode, "diag %s block %lld",
                 d->scores == ATTN_TRANSNORMER_SCORES_RELU ? "relu" : "softmax",
                 (long long)(d->block ? d->block : 64));
    snprintf(buf, n, "f32 B%lld Hq%lld/Hkv%lld S%lld D%lld/%lld %s%s", (long long)sh->b,
             (long long)sh->hq, (long long)sh->hkv, (long long)sh->s, (long long)sh->d,
             (long long)sh->dv, mode, d->causal ? " causal" : "");
}

static int bench_shape(attn_backend *be, const tn_shape *sh, int threads, int repeat)
{
    fwd_ctx f = {be, &sh->desc, {0}, {0}, {0}, {0}, ATTN_OK};
    void *q = attn_bench_random_f32(sh->b * sh->s * sh->hq * sh->d, 1);
    void *k = attn_bench_random_f32(sh->b * sh->s * sh->hkv * sh->d, 2);
    void *v = attn_bench_random_f32(sh->b * sh->s * sh->hkv * sh->dv, 3);
    void *o = attn_bench_alloc((size_t)(sh->b * sh->s * sh->hq * sh->dv) * sizeof(float));
    char name[128], impl[128] = "";
    shape_name(sh, name, sizeof name);
    int rc = 1;
    if (q && k && v && o) {
        f.q = attn_tensor_bshd(q, ATTN_F32, sh->b, sh->s, sh->hq, sh->d);
        f.k = attn_tensor_bshd(k, ATTN_F32, sh->b, sh->s, sh->hkv, sh->d);
        f.v = attn_tensor_bshd(v, ATTN_F32, sh->b, sh->s, sh->hkv, sh->dv);
        f.o = attn_tensor_bshd(o, ATTN_F32, sh->b, sh->s, sh->hq, sh->dv);
        f.st = attn_transnormer_impl_name(be, f.d, &f.q, &f.k, &f.v, &f.o, impl, sizeof impl);
        const double gemm = f.st == ATTN_OK ? attn_bench_sgemm_gflops(threads, 3) : -1;
        const double t = f.st == ATTN_OK ? attn_bench_best_time(repeat, fwd_call, &f) : -1;
        if (t > 0 && gemm > 0) {
            const double rate = shape_flops(sh) / t / 1e9;
            printf("%-58s %9.3f ms %8.2f GFLOP/s  sgemm %7.2f GFLOP/s  ratio %5.2f  [%s]\n",
                   name, t * 1e3, rate, gemm, rate / gemm, impl);
            rc = 0;
        }
    }
    if (rc)
        fprintf(stderr, "attn bench: %s: %s (%s)\n", name, attn_status_name(f.st),
                f.st == ATTN_OK ? "out of memory" : attn_last_error());
    free(q);
    free(k);
    free(v);
    free(o);
    return rc;
}

static const char usage[] =
    "usage: attn bench --op transnormer [--backend B] [--options STR] [--threads N]\n"
    "                  [--repeat N] [--b N --h N --hkv N --s N --d N --dv N] [descriptor options]\n"
    "Without shape options: the default shapes (f32 B1 S4096, H8 D64 and GQA 16/4 D128;\n"
    "NormAttention causal and not, DiagAttention softmax and relu).\n";

/* Shape option at argv[*i]: 1 consumed, 0 not one, -1 error. */
static int shape_opt(int argc, char **argv, int *i, tn_shape *sh)
{
    static const char *const names[] = {"--b", "--h", "--hkv", "--s", "--d", "--dv"};
    int64_t *const dst[] = {&sh->b, &sh->hq, &sh->hkv, &sh->s, &sh->d, &sh->dv};
    return attn_bench_size_arg(argc, argv, i, 6, names, dst, NULL);
}

int attn_transnormer_cmd_bench(int argc, char **argv)
{
    attn_bench_common o = {"cpu", NULL, omp_get_max_threads(), 5};
    int custom = 0;
    tn_shape sh = {1, 4096, 8, 0, 64, 0, attn_transnormer_desc_default()};
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if ((r = shape_opt(argc, argv, &i, &sh)) != 0 ||
            (r = attn_args_transnormer(argc, argv, &i, &sh.desc)) != 0)
            custom |= r > 0;
        else if ((r = attn_bench_common_arg(argc, argv, &i, &o)) == 0)
            fprintf(stderr, "attn bench: unknown option %s\n%s", argv[i], usage);
        if (r <= 0)
            return 2;
    }
    sh.hkv = sh.hkv ? sh.hkv : sh.hq;
    sh.dv = sh.dv ? sh.dv : sh.d;
    char opts[256];
    attn_backend *be;
    if (attn_bench_open(&o, opts, sizeof opts, &be))
        return 2;
    printf("attn bench: %s; %d threads for sgemm; best of %d\n", attn_backend_describe(be),
           o.threads, o.repeat);
    int fail = 0;
    if (custom) {
        fail |= bench_shape(be, &sh, o.threads, o.repeat);
    } else {
        const int64_t shapes[][5] = {/* hq, hkv, d, mode, causal */
                                     {8, 8, 64, 0, 0},  {8, 8, 64, 0, 1},  {16, 4, 128, 0, 1},
                                     {8, 8, 64, 1, 1},  {8, 8, 64, 2, 0}};
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            tn_shape s = {1, 4096, shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][2],
                          attn_transnormer_desc_default()};
            s.desc.mode = shapes[k][3] ? ATTN_TRANSNORMER_MODE_DIAG : ATTN_TRANSNORMER_MODE_NORM;
            s.desc.scores = shapes[k][3] == 2 ? ATTN_TRANSNORMER_SCORES_RELU
                                              : ATTN_TRANSNORMER_SCORES_SOFTMAX;
            s.desc.causal = (int)shapes[k][4];
            fail |= bench_shape(be, &s, o.threads, o.repeat);
        }
    }
    attn_backend_close(be);
    return fail ? 1 : 0;
}
