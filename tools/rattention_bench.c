/* rattention_bench.c - `attn bench --op rattention`: RATTENTION's forward and decode step on a
 * backend next to what it is meant to replace, all measured in one run (same process, same
 * threads), each row naming the implementation that ran:
 *   forward  RATTENTION (window w)   vs  SWA: attn_sdpa_forward causal, window_left w
 *                                    vs  full causal SDPA
 *   branch   the residual branch's kernel: attn_linear_forward (softmax-pair, no normaliser,
 *            the same chunk), GFLOP/s as a fraction of a BLIS sgemm 2048^3 measured just before
 *   decode   one RATTENTION step after `ctx` tokens (ring of w + 1 slots, state 2Dk x Dv)
 *                                    vs  an SDPA step, Sq 1 over a cache of w + 1 keys
 * FLOP counts: attended (query, key) pairs x 2 (Dk + Dv) per head for the softmax parts; the
 * chunked products 2 G L L (Df + Dv) + 2 G L Df Dv + 2 L Df Dv per KV head and chunk of L for
 * the residual branch (Df = 2 Dk; in RATTENTION over the S - w - 1 rows past its shift, the
 * standalone kernel over all S); per decode step 2 Df Dv (Hkv + Hq) for the state's fold and
 * read. RoPE, the feature maps and the norms are not counted. Times are the best of --repeat
 * rounds, each round timing every variant in turn (decode: DECODE_CALLS steps each) so that
 * the ratios compare calls made under the same machine load. Default shapes: f32 B1
 * S4096 D128 with H8/Hkv8 and the GQA 16/4, w 512, decode after 4096 tokens.
 * --backward times attn_rattention_backward (f32 gradients, no state, no gains) against the
 * forward of the same shape, beside its two parts' kernels alone: the window's
 * attn_sdpa_backward (causal, window_left w, out and lse from one forward before) and the
 * residual branch's attn_linear_backward over all S rows. Times only (no FLOP counts). */
#include "rattention_tool.h"

#include "attn_args.h"
#include "attn_bench_util.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECODE_CALLS 64

typedef struct rb_shape {
    int64_t b, s, hq, hkv, d, window, ctx;
} rb_shape;

/* ---- flop counts ---------------------------------------------------------------------------- */

/* Softmax attention over rows 0..s-1 each seeing min(i + 1, w + 1) keys (w < 0: i + 1). */
static double window_flops(const rb_shape *sh, int64_t w)
{
    double pairs = 0.0;
    for (int64_t i = 0; i < sh->s; i++)
        pairs += (double)(w >= 0 && i > w ? w + 1 : i + 1);
    return pairs * 2.0 * (double)(2 * sh->d) * (double)(sh->b * sh->hq);
}

/* The residual branch's chunked products with chunk C over `rows` rows (see the file
 * comment). */
static double branch_flops(const rb_shape *sh, int64_t chunk, int64_t rows)
{
    const double df = 2.0 * (double)sh->d, dv = (double)sh->d, g = (double)(sh->hq / sh->hkv);
    double f = 0.0;
    for (int64_t c0 = 0; c0 < rows; c0 += chunk) {
        const double l = (double)(rows - c0 < chunk ? rows - c0 : chunk);
        f += 2.0 * (g * l * l * (df + dv) + g * l * df * dv + l * df * dv);
    }
    return f * (double)(sh->b * sh->hkv);
}

static double decode_swa_flops(const rb_shape *sh)
{
    return (double)(sh->window + 1) * 2.0 * (double)(2 * sh->d) * (double)(sh->b * sh->hq);
}

static double decode_ratt_flops(const rb_shape *sh)
{
    return decode_swa_flops(sh) +
           2.0 * (double)(2 * sh->d * sh->d) * (double)(sh->b * (sh->hkv + sh->hq));
}

/* ---- tensors and calls ---------------------------------------------------------------------- */

/* Tensors of one shape: the sequence (q, k, v, out), one decode token, the ring and state. */
typedef struct rb_io {
    attn_tensor q, k, v, o, q1, k1, v1, o1, kr, vr, st;
    float *mem[11];
} rb_io;

static void io_free(rb_io *x)
{
    for (int i = 0; i < 11; i++)
        free(x->mem[i]);
}

static int io_make(const rb_shape *sh, rb_io *x)
{
    const int64_t b = sh->b, s = sh->s, d = sh->d, sl = sh->window + 1;
    const int64_t n[11] = {b * s * sh->hq * d, b * s * sh->hkv * d, b * s * sh->hkv * d,
                           b * s * sh->hq * d, b * sh->hq * d,      b * sh->hkv * d,
                           b * sh->hkv * d,    b * sh->hq * d,      b * sl * sh->hkv * d,
                           b * sl * sh->hkv * d, b * sh->hkv * 2 * d * d};
    int ok = 1;
    for (int i = 0; i < 11; i++)
        ok &= (x->mem[i] = attn_bench_random_f32(n[i], (uint64_t)i + 1)) != NULL;
    if (!ok)
        return -1;
    memset(x->mem[10], 0, sizeof(float) * (size_t)n[10]);
    x->q = attn_tensor_bshd(x->mem[0], ATTN_F32, b, s, sh->hq, d);
    x->k = attn_tensor_bshd(x->mem[1], ATTN_F32, b, s, sh->hkv, d);
    x->v = attn_tensor_bshd(x->mem[2], ATTN_F32, b, s, sh->hkv, d);
    x->o = attn_tensor_bshd(x->mem[3], ATTN_F32, b, s, sh->hq, d);
    x->q1 = attn_tensor_bshd(x->mem[4], ATTN_F32, b, 1, sh->hq, d);
    x->k1 = attn_tensor_bshd(x->mem[5], ATTN_F32, b, 1, sh->hkv, d);
    x->v1 = attn_tensor_bshd(x->mem[6], ATTN_F32, b, 1, sh->hkv, d);
    x->o1 = attn_tensor_bshd(x->mem[7], ATTN_F32, b, 1, sh->hq, d);
    x->kr = attn_tensor_bshd(x->mem[8], ATTN_F32, b, sl, sh->hkv, d);
    x->vr = attn_tensor_bshd(x->mem[9], ATTN_F32, b, sl, sh->hkv, d);
    x->st = attn_tensor_bshd(x->mem[10], ATTN_F32, b, sh->hkv, 2 * d, d);
    return 0;
}

typedef struct rb_call {
    attn_backend *be;
    const rb_io *x;
    attn_rattention_desc rd;
    attn_sdpa_desc sd;
    attn_linear_desc ld;
    attn_rattention_cache cache;
    attn_tensor kc, vc; /* the SDPA step's cache: the ring's w + 1 keys */
    attn_status st;
} rb_call;

static int ratt_fwd(void *ctx)
{
    rb_call *c = ctx;
    c->st = attn_rattention_forward(c->be, &c->rd, &c->x->q, &c->x->k, &c->x->v, &c->x->o, NULL);
    return c->st == ATTN_OK ? 0 : -1;
}

static int sdpa_fwd(void *ctx)
{
    rb_call *c = ctx;
    c->st = attn_sdpa_forward(c->be, &c->sd, &c->x->q, &c->x->k, &c->x->v, &c->x->o, NULL);
    return c->st == ATTN_OK ? 0 : -1;
}

static int linear_fwd(void *ctx)
{
    rb_call *c = ctx;
    c->st = attn_linear_forward(c->be, &c->ld, &c->x->q, &c->x->k, &c->x->v, &c->x->o, NULL);
    return c->st == ATTN_OK ? 0 : -1;
}

static int ratt_step(void *ctx)
{
    rb_call *c = ctx;
    c->st = attn_rattention_decode(c->be, &c->rd, &c->cache, &c->x->q1, &c->x->k1, &c->x->v1,
                                   &c->x->o1, NULL);
    return c->st == ATTN_OK ? 0 : -1;
}

static int sdpa_step(void *ctx)
{
    rb_call *c = ctx;
    c->st = attn_sdpa_forward(c->be, &c->sd, &c->x->q1, &c->kc, &c->vc, &c->x->o1, NULL);
    return c->st == ATTN_OK ? 0 : -1;
}

/* ---- one shape -------------------------------------------------------------------------------- */

/* One result row: time, GFLOP/s and GFLOP, the implementation. */
static void row(const char *what, double t, double flops, const char *impl)
{
    printf("  %-28s %10.3f ms %8.2f GFLOP/s (%9.4g GFLOP)  [%s]\n", what, t * 1e3,
           flops / t * 1e-9, flops * 1e-9, impl);
}

/* The chunk length in an implementation name ("...chunk64..."), else 64. */
static int64_t chunk_of(const char *impl)
{
    const char *s = strstr(impl, "chunk");
    return s ? strtoll(s + 5, NULL, 10) : 64;
}

static int bench_shape(attn_backend *be, const char *backend, const char *options,
                       const rb_shape *sh, int threads, int repeat)
{
    rb_io x;
    char impl[4][128] = {"", "", "", ""}, opts[256];
    printf("f32 B%lld S%lld Hq%lld/Hkv%lld D%lld, window %lld:\n", (long long)sh->b,
           (long long)sh->s, (long long)sh->hq, (long long)sh->hkv, (long long)sh->d,
           (long long)sh->window);
    if (io_make(sh, &x)) {
        io_free(&x);
        fprintf(stderr, "attn bench: out of memory\n");
        return 1;
    }
    /* the calls: RATTENTION, SWA (causal, window_left w), full causal, the residual branch's
     * kernel alone (attn_linear_forward on a backend with RATTENTION's chunk) */
    rb_call c[4];
    for (int k = 0; k < 4; k++)
        c[k] = (rb_call){.be = be, .x = &x, .rd = attn_rattention_desc_default(),
                         .sd = attn_sdpa_desc_default(), .ld = attn_linear_desc_default()};
    c[0].rd.window = sh->window;
    c[1].sd.causal = c[2].sd.causal = 1;
    c[1].sd.window_left = sh->window;
    c[3].ld.feature = ATTN_LINEAR_SOFTMAX_PAIR;
    c[3].ld.normalize = 0;
    attn_status st = attn_rattention_impl_name(be, &c[0].rd, &x.q, &x.k, &x.v, &x.o, NULL,
                                               impl[0], 128);
    snprintf(opts, sizeof opts, "%s%schunk=%lld", options ? options : "", options ? "," : "",
             (long long)chunk_of(impl[0]));
    c[3].be = NULL; /* the cpu backend with RATTENTION's chunk; another backend as it is */
    if (st == ATTN_OK && strcmp(backend, "cpu") == 0)
        st = attn_backend_open(backend, opts, &c[3].be);
    if (!c[3].be)
        c[3].be = be;
    if (st == ATTN_OK) {
        attn_sdpa_impl_name(be, &c[1].sd, &x.q, &x.k, &x.v, &x.o, NULL, impl[1], 128);
        attn_sdpa_impl_name(be, &c[2].sd, &x.q, &x.k, &x.v, &x.o, NULL, impl[2], 128);
        attn_linear_impl_name(c[3].be, &c[3].ld, &x.q, &x.k, &x.v, &x.o, NULL, impl[3], 128);
    }
    const double gemm = st == ATTN_OK ? attn_bench_sgemm_gflops(threads, 3) : -1;
    int (*const fwd[4])(void *) = {ratt_fwd, sdpa_fwd, sdpa_fwd, linear_fwd};
    void *const ctx[4] = {&c[0], &c[1], &c[2], &c[3]};
    double t[4] = {-1, -1, -1, -1};
    if (gemm > 0)
        attn_bench_best_times(repeat, 1, 4, fwd, ctx, t);
    if (c[3].be != be)
        attn_backend_close(c[3].be);
    const int fwd_ok = t[0] > 0 && t[1] > 0 && t[2] > 0 && t[3] > 0;
    if (fwd_ok) {
        const double f_swa = window_flops(sh, sh->window);
        /* RATTENTION's branch runs the rows past its shift w + 1 (the others read S0) */
        const int64_t past = sh->s - sh->window - 1 > 0 ? sh->s - sh->window - 1 : 0;
        const double f_lin = branch_flops(sh, chunk_of(impl[0]), sh->s);
        row("RATTENTION forward", t[0], f_swa + branch_flops(sh, chunk_of(impl[0]), past),
            impl[0]);
        row("SWA forward", t[1], f_swa, impl[1]);
        row("full causal SDPA", t[2], window_flops(sh, -1), impl[2]);
        row("residual branch kernel", t[3], f_lin, impl[3]);
        printf("  RATT/SWA %.2fx, RATT/full causal %.2fx; "
               "branch %.1f%% of sgemm %.1f GFLOP/s\n",
               t[0] / t[1], t[0] / t[2], 100.0 * f_lin / t[3] * 1e-9 / gemm, gemm);
    }
    /* decode: a ring after ctx tokens, one token per step, against an SDPA step (Sq 1) over a
     * cache of the ring's w + 1 keys */
    c[0].cache = (attn_rattention_cache){&x.kr, &x.vr, &x.st, sh->ctx};
    c[1].kc = x.kr;
    c[1].vc = x.vr;
    c[1].sd = attn_sdpa_desc_default();
    double td[2] = {-1, -1};
    if (fwd_ok) {
        attn_rattention_decode_impl_name(be, &c[0].rd, &c[0].cache, &x.q1, &x.k1, &x.v1, &x.o1,
                                         NULL, impl[0], 128);
        attn_sdpa_impl_name(be, &c[1].sd, &x.q1, &c[1].kc, &c[1].vc, &x.o1, NULL, impl[1], 128);
        int (*const dec[2])(void *) = {ratt_step, sdpa_step};
        attn_bench_best_times(repeat, DECODE_CALLS, 2, dec, ctx, td);
    }
    if (td[0] > 0 && td[1] > 0) {
        row("RATTENTION decode step", td[0], decode_ratt_flops(sh), impl[0]);
        row("SWA decode step (w+1 keys)", td[1], decode_swa_flops(sh), impl[1]);
        printf("  decode RATT/SWA %.2fx, after %lld tokens\n", td[0] / td[1],
               (long long)sh->ctx);
    }
    io_free(&x);
    if (td[0] > 0 && td[1] > 0)
        return 0;
    for (int k = 0; k < 4; k++)
        if (c[k].st != ATTN_OK)
            st = c[k].st;
    fprintf(stderr, "attn bench: %s: %s\n", attn_status_name(st), attn_last_error());
    return 1;
}

/* ---- backward ------------------------------------------------------------------------------ */

/* The backward's own tensors: dout, the window's lse, the gradients of q, k, v. */
typedef struct rb_bwd {
    const rb_call *c; /* be, inputs, descriptors */
    attn_tensor dout, lse, dq, dk, dv;
    float *mem[5];
    attn_status st;
} rb_bwd;

static int bwd_make(const rb_shape *sh, rb_bwd *w)
{
    const int64_t nq = sh->b * sh->s * sh->hq, nk = sh->b * sh->s * sh->hkv;
    const int64_t n[5] = {nq * sh->d, nq, nq * sh->d, nk * sh->d, nk * sh->d};
    int ok = 1;
    for (int i = 0; i < 5; i++)
        ok &= (w->mem[i] = attn_bench_random_f32(n[i], (uint64_t)i + 20)) != NULL;
    w->dout = attn_tensor_bshd(w->mem[0], ATTN_F32, sh->b, sh->s, sh->hq, sh->d);
    w->lse = attn_tensor_bshd(w->mem[1], ATTN_F32, sh->b, sh->s, sh->hq, 1);
    w->dq = attn_tensor_bshd(w->mem[2], ATTN_F32, sh->b, sh->s, sh->hq, sh->d);
    w->dk = attn_tensor_bshd(w->mem[3], ATTN_F32, sh->b, sh->s, sh->hkv, sh->d);
    w->dv = attn_tensor_bshd(w->mem[4], ATTN_F32, sh->b, sh->s, sh->hkv, sh->d);
    return ok ? 0 : -1;
}

static void bwd_free(rb_bwd *w)
{
    for (int i = 0; i < 5; i++)
        free(w->mem[i]);
}

static int ratt_bwd(void *ctx)
{
    rb_bwd *w = ctx;
    const attn_rattention_grads g = {.dq = &w->dq, .dk = &w->dk, .dv = &w->dv};
    w->st = attn_rattention_backward(w->c->be, &w->c->rd, &w->c->x->q, &w->c->x->k,
                                     &w->c->x->v, NULL, &w->dout, &g);
    return w->st == ATTN_OK ? 0 : -1;
}

static int swa_bwd(void *ctx)
{
    rb_bwd *w = ctx;
    const attn_sdpa_grads g = {.dq = &w->dq, .dk = &w->dk, .dv = &w->dv};
    w->st = attn_sdpa_backward(w->c->be, &w->c->sd, &w->c->x->q, &w->c->x->k, &w->c->x->v,
                               &w->c->x->o, &w->lse, &w->dout, &g);
    return w->st == ATTN_OK ? 0 : -1;
}

static int linear_bwd(void *ctx)
{
    rb_bwd *w = ctx;
    const attn_linear_grads g = {.dq = &w->dq, .dk = &w->dk, .dv = &w->dv};
    w->st = attn_linear_backward(w->c->be, &w->c->ld, &w->c->x->q, &w->c->x->k, &w->c->x->v,
                                 NULL, &w->dout, &g);
    return w->st == ATTN_OK ? 0 : -1;
}

/* One time row of the backward's table. */
static void time_row(const char *what, double t, double fwd, const char *impl)
{
    printf("  %-28s %10.3f ms %6.2fx the forward  [%s]\n", what, t * 1e3, t / fwd, impl);
}

/* One shape: RATTENTION's backward and forward, the window's SDPA backward and the residual
 * branch's linear backward, timed interleaved. */
static int bench_backward(attn_backend *be, const rb_shape *sh, int repeat)
{
    rb_io x;
    rb_bwd w[3];
    printf("f32 B%lld S%lld Hq%lld/Hkv%lld D%lld, window %lld, backward:\n", (long long)sh->b,
           (long long)sh->s, (long long)sh->hq, (long long)sh->hkv, (long long)sh->d,
           (long long)sh->window);
    rb_call c = {.be = be, .x = &x, .rd = attn_rattention_desc_default(),
                 .sd = attn_sdpa_desc_default(), .ld = attn_linear_desc_default()};
    c.rd.window = sh->window;
    c.sd.causal = 1;
    c.sd.window_left = sh->window;
    c.ld.feature = ATTN_LINEAR_SOFTMAX_PAIR;
    c.ld.normalize = 0;
    const int made = io_make(sh, &x) == 0;
    for (int k = 0; k < 3; k++)
        w[k] = (rb_bwd){.c = &c};
    int ok = made && bwd_make(sh, &w[0]) == 0;
    for (int k = 1; k < 3; k++)
        w[k] = w[0]; /* the same tensors: the calls run one after another */
    char impl[4][128] = {"", "", "", ""};
    attn_status st = ATTN_ERR_OUT_OF_MEMORY;
    if (ok) {
        const attn_rattention_grads rg = {.dq = &w[0].dq, .dk = &w[0].dk, .dv = &w[0].dv};
        const attn_sdpa_grads sg = {.dq = &w[0].dq, .dk = &w[0].dk, .dv = &w[0].dv};
        const attn_linear_grads lg = {.dq = &w[0].dq, .dk = &w[0].dk, .dv = &w[0].dv};
        /* the window's out and lse, which its backward reads */
        st = attn_sdpa_forward(be, &c.sd, &x.q, &x.k, &x.v, &x.o, &w[0].lse);
        if (st == ATTN_OK)
            st = attn_rattention_backward_impl_name(be, &c.rd, &x.q, &x.k, &x.v, NULL,
                                                    &w[0].dout, &rg, impl[0], 128);
        if (st == ATTN_OK)
            st = attn_rattention_impl_name(be, &c.rd, &x.q, &x.k, &x.v, &x.o, NULL, impl[1],
                                           128);
        if (st == ATTN_OK)
            st = attn_sdpa_backward_impl_name(be, &c.sd, &x.q, &x.k, &x.v, &x.o, &w[0].lse,
                                              &w[0].dout, &sg, impl[2], 128);
        if (st == ATTN_OK)
            st = attn_linear_backward_impl_name(be, &c.ld, &x.q, &x.k, &x.v, NULL, &w[0].dout,
                                                &lg, impl[3], 128);
    }
    /* the forward writes x.o, the window backward's out: time it on a copy of the call whose
     * output is dq (dead between calls) */
    rb_io xf = x;
    rb_call cf = c;
    xf.o = w[0].dq;
    cf.x = &xf;
    int (*const fn[4])(void *) = {ratt_bwd, ratt_fwd, swa_bwd, linear_bwd};
    void *const ctx[4] = {&w[0], &cf, &w[1], &w[2]};
    double t[4] = {-1, -1, -1, -1};
    if (st == ATTN_OK)
        attn_bench_best_times(repeat, 1, 4, fn, ctx, t);
    const int done = t[0] > 0 && t[1] > 0 && t[2] > 0 && t[3] > 0;
    if (done) {
        time_row("RATTENTION backward", t[0], t[1], impl[0]);
        time_row("RATTENTION forward", t[1], t[1], impl[1]);
        time_row("SWA backward (SDPA, w)", t[2], t[1], impl[2]);
        time_row("residual branch backward", t[3], t[1], impl[3]);
    } else {
        for (int k = 0; k < 3; k++)
            st = w[k].st != ATTN_OK ? w[k].st : st;
        st = cf.st != ATTN_OK ? cf.st : st;
        fprintf(stderr, "attn bench: backward: %s: %s\n", attn_status_name(st),
                attn_last_error());
    }
    if (made)
        bwd_free(&w[0]);
    io_free(&x);
    return done ? 0 : 1;
}

static const char usage[] =
    "usage: attn bench --op rattention [--backend B] [--options STR] [--threads N]\n"
    "                  [--repeat N] [--b N --h N --hkv N --s N --d N --window W --ctx N]\n"
    "                  [--backward]\n"
    "Without shape options: the default shapes (f32 B1 S4096 D128, H8/Hkv8 and GQA 16/4,\n"
    "window 512, decode after 4096 tokens).\n"
    "  --backward  time the backward against the forward (and the SDPA and linear backward\n"
    "              of its two branches) instead\n";

/* Shape option at argv[*i]: 1 consumed, 0 not one, -1 error. */
static int shape_opt(int argc, char **argv, int *i, rb_shape *sh)
{
    static const char *const names[] = {"--b", "--h", "--hkv", "--s", "--d", "--window", "--ctx"};
    static const int64_t lo[] = {1, 1, 1, 1, 1, 0, 1};
    int64_t *const dst[] = {&sh->b, &sh->hq, &sh->hkv, &sh->s, &sh->d, &sh->window, &sh->ctx};
    return attn_bench_size_arg(argc, argv, i, 7, names, dst, lo);
}

int attn_rattention_cmd_bench(int argc, char **argv)
{
    attn_bench_common o = {"cpu", NULL, omp_get_max_threads(), 3};
    int custom = 0, backward = 0;
    rb_shape sh = {1, 4096, 8, 0, 128, 512, 4096};
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if ((r = attn_arg_flag(argv, i, "--backward")) != 0)
            backward = 1;
        else if ((r = shape_opt(argc, argv, &i, &sh)) != 0)
            custom |= r > 0;
        else if ((r = attn_bench_common_arg(argc, argv, &i, &o)) == 0)
            fprintf(stderr, "attn bench: unknown option %s\n%s", argv[i], usage);
        if (r <= 0)
            return 2;
    }
    sh.hkv = sh.hkv ? sh.hkv : sh.hq;
    char opts[256], model[200];
    attn_backend *be;
    if (attn_bench_open(&o, opts, sizeof opts, &be))
        return 2;
    attn_bench_cpu_model(model, sizeof model);
    printf("attn bench --op rattention: %s\n%s; %d threads for sgemm; best of %d\n",
           attn_backend_describe(be), model, o.threads, o.repeat);
    int fail = 0;
    if (custom && backward) {
        fail |= bench_backward(be, &sh, o.repeat);
    } else if (custom) {
        fail |= bench_shape(be, o.backend, opts[0] ? opts : NULL, &sh, o.threads, o.repeat);
    } else {
        const int64_t heads[][2] = {{8, 8}, {16, 4}};
        for (int k = 0; k < 2; k++) {
            rb_shape s = sh;
            s.hq = heads[k][0];
            s.hkv = heads[k][1];
            fail |= backward ? bench_backward(be, &s, o.repeat)
                             : bench_shape(be, o.backend, opts[0] ? opts : NULL, &s, o.threads,
                                           o.repeat);
        }
    }
    attn_backend_close(be);
    return fail ? 1 : 0;
}
