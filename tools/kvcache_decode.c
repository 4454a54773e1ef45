/* kvcache_decode.c - `attn decode`: the options, one configuration's per-layer table (budget,
 * cache bytes, bytes saved against the full cache, deviation of the attention output from the
 * full cache's, decode tokens/s) or the sweep of every policy over budgets 10..90 % of the
 * prompt with its SVG plot. The streams and the loop are in kvcache_streams.c and
 * kvcache_decode_loop.c; docs/ops/kvcache.md explains how to read the output. */
#include "kvcache_decode.h"

#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct decode_opts {
    attn_kvcache_synth synth;
    const char *streams, *backend, *options, *svg;
    int bf16, sweep, prompt_set, new_set;
    attn_kvcache_run_cfg cfg;
    double budget_pct; /* the budget as a % of the prompt (when budget_tokens is 0) */
    int64_t budget_tokens;
} decode_opts;

static const char *const policy_names[] = {"full", "sliding", "streaming", "h2o", NULL};
static const char *const positions_names[] = {"stored", "original", "cache", NULL};

static const char usage[] =
    "usage: attn decode [streams] [cache options] [--sweep [--svg FILE]] [--backend B]\n"
    "A multi-layer decode loop: per layer, the prompt's prefill (append, attend, evict) and N\n"
    "decode steps (append, attend, evict) through a cache of the policy, beside a full cache;\n"
    "prints per layer the budget, the cache bytes (live, allocated, saved against the full\n"
    "cache), each step's deviation from the full cache's output, and decode tokens/s.\n"
    "streams (synthetic by default, attention peaked on a sink and a few heavy tokens):\n"
    "  --layers L --hq N --hkv N --d N --dv N   (8, 8, 2, 64, = d)\n"
    "  --prompt P --new N --seed S              (256, 32, 1)\n"
    "  --streams DIR      DIR/q_<l>.npy [T,Hq,Dk], k_<l>.npy [T,Hkv,Dk], v_<l>.npy [T,Hkv,Dv],\n"
    "                     optional x_<l>.npy, y_<l>.npy [P,D] (layer input, after the attention\n"
    "                     residual), l = 0, 1, ...; P from x_0.npy or --prompt, N = T - P or\n"
    "                     --new (tools/kvcache_dump_hf.py writes them from a HF model)\n"
    "  --bf16             read '<u2' arrays as bfloat16\n"
    "cache:\n"
    "  --policy P         full, sliding, streaming or h2o (default)\n"
    "  --budget N | N%    tokens each layer keeps between steps, or a % of the prompt (20%)\n"
    "  --sinks N          StreamingLLM's first tokens always kept (4)\n"
    "  --recent N         H2O's recent window (default budget / 2; heavy = budget - recent)\n"
    "  --squeeze F | F%   SqueezeAttention: layer budgets from the similarities of x and y;\n"
    "                     the least important cluster gets F of the prompt, the others share\n"
    "                     the rest of layers x budget\n"
    "  --squeeze-bf16     round the similarities to bf16 before clustering (the authors' way)\n"
    "  --positions M      stored (keys attended as given, default), original (rotated at\n"
    "                     their original positions) or cache (at their in-cache positions)\n"
    "  --rope half|interleaved  --rope-theta X  --rot-dim N   RoPE of original/cache\n"
    "  --kv-dtype T       storage of K and V: f32, f16 (default) or bf16\n"
    "  --backend B        ref, cpu (default where built) or opencl; --options STR\n"
    "  --sweep            every policy at budgets 10..90% (with --squeeze: also squeezed)\n"
    "  --svg FILE         with --sweep: plot deviation against memory per policy\n"
    "Exit status: 0 ran, 1 a backend failed, 2 bad options or inputs.\n";

/* "N" (tokens, >= 1) or "N%" (a percentage > 0) into *tokens or *pct. */
static int parse_budget(const char *opt, const char *v, int64_t *tokens, double *pct)
{
    const size_t n = strlen(v);
    if (n > 1 && v[n - 1] == '%') {
        char buf[64];
        if (n > sizeof buf) {
            fprintf(stderr, "attn: %s: value too long\n", opt);
            return -1;
        }
        memcpy(buf, v, n - 1);
        buf[n - 1] = '\0';
        *tokens = 0;
        return attn_parse_f64(opt, buf, 1e-9, 1e6, pct);
    }
    return attn_parse_i64(opt, v, 1, (int64_t)1 << 40, tokens);
}

/* A fraction "0.1" or a percentage "10%" into (0, 1]. */
static int parse_fraction(const char *opt, const char *v, double *f)
{
    int64_t tokens = 0;
    double pct = 0;
    const size_t n = strlen(v);
    if (n > 1 && v[n - 1] == '%') {
        if (parse_budget(opt, v, &tokens, &pct))
            return -1;
        *f = pct / 100;
    } else if (attn_parse_f64(opt, v, 1e-9, 1, f)) {
        return -1;
    }
    if (*f > 1) {
        fprintf(stderr, "attn: %s: at most 100%%\n", opt);
        return -1;
    }
    return 0;
}

/* A shape or stream option: 1 consumed, 0 not one, -1 error. */
static int stream_opt(int argc, char **argv, int *i, decode_opts *o)
{
    static const char *const names[] = {"--hq", "--hkv", "--d", "--dv", "--prompt", "--new"};
    attn_kvcache_synth *s = &o->synth;
    int64_t *const dst[] = {&s->hq, &s->hkv, &s->dk, &s->dv, &s->prompt, &s->new_tokens};
    const char *v;
    int64_t n;
    int r;
    for (int k = 0; k < 6; k++)
        if ((r = attn_arg_value(argc, argv, i, names[k], &v)) != 0) {
            o->prompt_set |= k == 4;
            o->new_set |= k == 5;
            return r < 0 || attn_parse_i64(names[k], v, 1, (int64_t)1 << 24, dst[k]) ? -1 : 1;
        }
    if ((r = attn_arg_value(argc, argv, i, "--layers", &v)) != 0)
        return r < 0 || attn_parse_i64("--layers", v, 1, 4096, &n) ? -1 : (s->layers = (int)n, 1);
    if ((r = attn_arg_value(argc, argv, i, "--seed", &v)) != 0)
        return r < 0 || attn_parse_i64("--seed", v, 0, INT64_MAX, &n) ? -1
                                                                        : (s->seed = (uint64_t)n, 1);
    if ((r = attn_arg_value(argc, argv, i, "--streams", &o->streams)) != 0)
        return r;
    if ((r = attn_arg_flag(argv, *i, "--bf16")) != 0)
        return r < 0 ? -1 : (o->bf16 = 1);
    return 0;
}

/* The RoPE options of --positions original|cache: 1 consumed, 0 not one, -1 error. */
static int rope_opt(int argc, char **argv, int *i, attn_rope_desc *d)
{
    static const char *const layouts[] = {"half", "interleaved", NULL};
    const char *v;
    int r, k;
    if ((r = attn_arg_value(argc, argv, i, "--rope", &v)) != 0)
        return r < 0 || attn_parse_choice("--rope", v, layouts, &k) ? -1
                                                                     : (d->layout = k, 1);
    if ((r = attn_arg_value(argc, argv, i, "--rope-theta", &v)) != 0)
        return r < 0 || attn_parse_f64("--rope-theta", v, 1e-300, 1e300, &d->theta) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--rot-dim", &v)) != 0)
        return r < 0 || attn_parse_i64("--rot-dim", v, 0, (int64_t)1 << 24, &d->rot_dim) ? -1
                                                                                         : 1;
    return 0;
}

/* A cache option: 1 consumed, 0 not one, -1 error. */
static int cache_opt(int argc, char **argv, int *i, decode_opts *o)
{
    static const char *const dtypes[] = {"f32", "f16", "bf16", NULL};
    attn_kvcache_run_cfg *c = &o->cfg;
    const char *v;
    int r, k;
    if ((r = attn_arg_value(argc, argv, i, "--policy", &v)) != 0)
        return r < 0 || attn_parse_choice("--policy", v, policy_names, &k) ? -1
                                                                            : (c->policy = k, 1);
    if ((r = attn_arg_value(argc, argv, i, "--budget", &v)) != 0)
        return r < 0 || parse_budget("--budget", v, &o->budget_tokens, &o->budget_pct) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--sinks", &v)) != 0)
        return r < 0 || attn_parse_i64("--sinks", v, 0, (int64_t)1 << 40, &c->sinks) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--recent", &v)) != 0)
        return r < 0 || attn_parse_i64("--recent", v, 0, (int64_t)1 << 40, &c->recent) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--squeeze", &v)) != 0)
        return r < 0 || parse_fraction("--squeeze", v, &c->squeeze) ? -1 : 1;
    if ((r = attn_arg_flag(argv, *i, "--squeeze-bf16")) != 0)
        return r < 0 ? -1 : (c->squeeze_bf16 = 1);
    if ((r = attn_arg_value(argc, argv, i, "--positions", &v)) != 0)
        return r < 0 || attn_parse_choice("--positions", v, positions_names, &k)
                   ? -1
                   : (c->attn.positions = k, 1);
    if ((r = attn_arg_value(argc, argv, i, "--kv-dtype", &v)) != 0)
        return r < 0 || attn_parse_choice("--kv-dtype", v, dtypes, &k) ? -1
                                                                        : (c->kv_dtype = k, 1);
    return rope_opt(argc, argv, i, &c->attn.rope);
}

/* A run option: 1 consumed, 0 not one, -1 error. */
static int run_opt(int argc, char **argv, int *i, decode_opts *o)
{
    int r;
    if ((r = attn_arg_value(argc, argv, i, "--backend", &o->backend)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--options", &o->options)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--svg", &o->svg)) != 0)
        return r;
    if ((r = attn_arg_flag(argv, *i, "--sweep")) != 0)
        return r < 0 ? -1 : (o->sweep = 1);
    return 0;
}

static void opts_default(decode_opts *o)
{
    memset(o, 0, sizeof *o);
    o->synth = (attn_kvcache_synth){8, 8, 2, 64, 0, 256, 32, 1};
#ifdef ATTN_HAVE_CPU
    o->backend = "cpu";
#else
    o->backend = "ref";
#endif
    o->cfg.policy = ATTN_KV_H2O;
    o->cfg.sinks = 4;
    o->cfg.recent = -1;
    o->cfg.kv_dtype = ATTN_F16;
    o->cfg.attn = attn_kvcache_attn_desc_default();
    o->budget_pct = 20;
}

/* 1: --help printed; 0: parsed; -1: usage error (printed). */
static int parse_args(int argc, char **argv, decode_opts *o)
{
    opts_default(o);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        int r = stream_opt(argc, argv, &i, o);
        r = r ? r : cache_opt(argc, argv, &i, o);
        r = r ? r : run_opt(argc, argv, &i, o);
        if (r == 0)
            fprintf(stderr, "attn decode: unknown option '%s' (see attn decode --help)\n",
                    argv[i]);
        if (r <= 0)
            return -1;
    }
    o->synth.dv = o->synth.dv ? o->synth.dv : o->synth.dk;
    if (o->svg && !o->sweep) {
        fprintf(stderr, "attn decode: --svg FILE goes with --sweep\n");
        return -1;
    }
    if (!o->streams && o->synth.hq % o->synth.hkv != 0) {
        fprintf(stderr, "attn decode: --hq %lld is not a multiple of --hkv %lld\n",
                (long long)o->synth.hq, (long long)o->synth.hkv);
        return -1;
    }
    return 0;
}

/* ---- one configuration ---------------------------------------------------------------------- */

/* The budget in tokens: given (tokens > 0), or pct % of the prompt (truncated, at least 1). */
static int64_t budget_tokens(int64_t tokens, double pct, const attn_kvcache_streams *s)
{
    if (tokens)
        return tokens;
    const int64_t b = (int64_t)(pct / 100.0 * (double)s->prompt);
    return b < 1 ? 1 : b;
}

/* The configuration's inputs make sense beyond what the library checks. */
static int check_cfg(const attn_kvcache_run_cfg *c, const attn_kvcache_streams *s)
{
    if (c->squeeze > 0 && !s->x[0].data) {
        fprintf(stderr, "attn decode: --squeeze needs the hidden states x_<l>.npy and "
                        "y_<l>.npy in the stream directory\n");
        return -1;
    }
    if (c->squeeze > 0 && c->policy == ATTN_KV_FULL) {
        fprintf(stderr, "attn decode: --squeeze needs a policy that evicts\n");
        return -1;
    }
    if (c->policy == ATTN_KV_STREAMING && c->squeeze <= 0 && c->budget <= c->sinks) {
        fprintf(stderr, "attn decode: streaming: the budget (%lld) must exceed --sinks (%lld)\n",
                (long long)c->budget, (long long)c->sinks);
        return -1;
    }
    return 0;
}

static double kib(size_t b)
{
    return (double)b / 1024.0;
}

static double saved_pct(size_t live, size_t full)
{
    return full ? 100.0 * (1.0 - (double)live / (double)full) : 0.0;
}

static void print_layers(const attn_kvcache_streams *s, const attn_kvcache_result *r, int squeeze)
{
    printf("layer  budget  %s    live KiB   alloc KiB    full KiB   saved    max|dev|   "
           "mean cos\n", squeeze ? "cls  similarity" : "");
    for (int l = 0; l < s->layers; l++) {
        const attn_kvcache_layer *y = &r->layer[l];
        char sq[32] = "";
        if (squeeze)
            snprintf(sq, sizeof sq, "%3d  %10.6f  ", y->cls, y->sim);
        printf("%5d  %6lld  %s%10.1f  %10.1f  %10.1f  %5.1f%%  %10.3g  %9.6f\n", l,
               (long long)y->budget, sq, kib(y->live_bytes), kib(y->alloc_bytes),
               kib(y->full_bytes), saved_pct(y->live_bytes, y->full_bytes), y->max_abs,
               y->mean_cos);
    }
    int64_t total = 0;
    for (int l = 0; l < s->layers; l++)
        total += r->layer[l].budget;
    printf("total  %6lld  %s%10.1f  %10.1f  %10.1f  %5.1f%%  %10.3g  %9.6f\n", (long long)total,
           squeeze ? "                 " : "", kib(r->live_bytes), kib(r->alloc_bytes),
           kib(r->full_bytes), saved_pct(r->live_bytes, r->full_bytes), r->max_abs, r->mean_cos);
}

static void print_header(const decode_opts *o, const attn_kvcache_streams *s, attn_backend *be)
{
    printf("attn decode: %d layers, Hq %lld / Hkv %lld, Dk %lld, Dv %lld, prompt %lld, %lld new "
           "tokens; ", s->layers, (long long)s->hq, (long long)s->hkv, (long long)s->dk,
           (long long)s->dv, (long long)s->prompt, (long long)s->new_tokens);
    if (o->streams)
        printf("streams %s\n", o->streams);
    else
        printf("synthetic streams, seed %llu\n", (unsigned long long)o->synth.seed);
    printf("%s KV, positions %s; backend %s\n", attn_dtype_name(o->cfg.kv_dtype),
           positions_names[o->cfg.attn.positions], attn_backend_describe(be));
}

/* A library call failed: its context, then the status and message; the exit code. */
static int lib_failure(const char *what, attn_status st)
{
    fprintf(stderr, "attn decode: %s failed\n", what);
    return attn_run_lib_error(st);
}

static int run_one(const decode_opts *o, const attn_kvcache_streams *s, attn_backend *be)
{
    attn_kvcache_run_cfg c = o->cfg;
    c.budget = budget_tokens(o->budget_tokens, o->budget_pct, s);
    if (check_cfg(&c, s))
        return 2;
    print_header(o, s, be);
    attn_kvcache_ref ref = {0};
    attn_kvcache_result r = {0};
    attn_status st = attn_kvcache_decode_reference(be, s, &c, &ref);
    if (st != ATTN_OK)
        return lib_failure("the full cache", st);
    st = attn_kvcache_decode_run(be, s, &c, &ref, &r);
    if (st != ATTN_OK) {
        attn_kvcache_ref_free(&ref);
        return lib_failure(policy_names[c.policy], st);
    }
    printf("cache: %s, budget %lld", policy_names[c.policy], (long long)c.budget);
    if (!o->budget_tokens)
        printf(" (%g%% of the prompt)", o->budget_pct);
    if (c.policy == ATTN_KV_STREAMING)
        printf(", sinks %lld", (long long)c.sinks);
    if (c.policy == ATTN_KV_H2O && c.recent < 0)
        printf(", recent budget / 2");
    else if (c.policy == ATTN_KV_H2O)
        printf(", recent %lld (at most the budget)", (long long)c.recent);
    if (c.squeeze > 0)
        printf("; SqueezeAttention p = %g%s", c.squeeze, c.squeeze_bf16 ? " (bf16 similarities)"
                                                                          : "");
    printf("\n");
    print_layers(s, &r, c.squeeze > 0);
    const double n = (double)s->new_tokens;
    printf("decode: %lld tokens x %d layers in %.4f s: %.1f tokens/s (full cache %.1f "
           "tokens/s)\n", (long long)s->new_tokens, s->layers, r.seconds, n / r.seconds,
           n / ref.seconds);
    attn_kvcache_result_free(&r);
    attn_kvcache_ref_free(&ref);
    return 0;
}

/* ---- the sweep ------------------------------------------------------------------------------ */

static void print_row(const attn_kvcache_sweep_row *w)
{
    char name[32];
    snprintf(name, sizeof name, "%s%s", policy_names[w->policy], w->squeeze ? "+squeeze" : "");
    printf("%-18s %5d%%  %6.1f%%  %6.1f%%  %10.3g  %10.3g  %10.1f\n", name, w->pct,
           100 * w->mem, 100 * (1 - w->mem), w->max_abs, 1 - w->mean_cos, w->tokens_per_s);
}

/* One sweep row: the policy at pct % (with SqueezeAttention when set: class 3 gets the share
 * `ratio` of the budget). 0 ran, 1 skipped (streaming's budget within the sinks), or minus the
 * exit code of a failure. */
static int sweep_one(const attn_kvcache_streams *s, attn_backend *be, const attn_kvcache_ref *ref,
                     attn_kvcache_run_cfg c, double ratio, attn_kvcache_sweep_row *w)
{
    c.budget = budget_tokens(0, w->pct, s);
    c.squeeze = w->squeeze ? ratio * w->pct / 100.0 : 0;
    if (c.policy == ATTN_KV_STREAMING && !w->squeeze && c.budget <= c.sinks)
        return 1;
    attn_kvcache_result r;
    const attn_status st = attn_kvcache_decode_run(be, s, &c, ref, &r);
    if (st != ATTN_OK)
        return -lib_failure(policy_names[c.policy], st);
    w->mem = r.full_bytes ? (double)r.live_bytes / (double)r.full_bytes : 1;
    w->max_abs = r.max_abs;
    w->mean_cos = r.mean_cos;
    w->tokens_per_s = (double)s->new_tokens / r.seconds;
    attn_kvcache_result_free(&r);
    print_row(w);
    return 0;
}

/* Every policy at 10..90 % of the prompt; with --squeeze, SqueezeAttention's class 3 gets the
 * same share of each budget as --squeeze is of --budget. */
static int run_sweep(const decode_opts *o, const attn_kvcache_streams *s, attn_backend *be)
{
    attn_kvcache_run_cfg c = o->cfg;
    c.budget = budget_tokens(o->budget_tokens, o->budget_pct, s);
    const double ratio = c.squeeze * (double)s->prompt / (double)c.budget;
    c.policy = ATTN_KV_H2O;
    if (check_cfg(&c, s))
        return 2;
    print_header(o, s, be);
    if (c.squeeze > 0)
        printf("SqueezeAttention: class 3 gets %.3g of each budget\n", ratio < 1 ? ratio : 1);
    attn_kvcache_ref ref = {0};
    attn_status st = attn_kvcache_decode_reference(be, s, &c, &ref);
    if (st != ATTN_OK)
        return lib_failure("the full cache", st);
    attn_kvcache_sweep_row rows[2 * 3 * 9 + 1];
    int n = 0, rc = 0;
    printf("policy             budget  memory   saved    max|dev|     1 - cos    tokens/s\n");
    rows[n++] = (attn_kvcache_sweep_row){ATTN_KV_FULL, 0, 100, 1, 0, 1,
                                         (double)s->new_tokens / ref.seconds};
    print_row(&rows[0]);
    for (int sq = 0; sq < (o->cfg.squeeze > 0 ? 2 : 1) && rc == 0; sq++)
        for (int p = ATTN_KV_SLIDING; p <= ATTN_KV_H2O && rc == 0; p++)
            for (int pct = 10; pct <= 90 && rc == 0; pct += 10) {
                rows[n] = (attn_kvcache_sweep_row){(attn_kv_policy)p, sq, pct, 0, 0, 0, 0};
                c.policy = (attn_kv_policy)p;
                const int r = sweep_one(s, be, &ref, c, ratio, &rows[n]);
                n += r == 0;
                rc = r < 0 ? -r : 0;
            }
    attn_kvcache_ref_free(&ref);
    if (rc == 0 && o->svg) {
        char title[160];
        snprintf(title, sizeof title, "attn decode: %d layers, prompt %lld, %lld new tokens",
                 s->layers, (long long)s->prompt, (long long)s->new_tokens);
        rc = attn_kvcache_sweep_svg(o->svg, rows, n, title) ? 1 : 0;
        if (rc == 0)
            printf("wrote %s\n", o->svg);
    }
    return rc;
}

int attn_cmd_decode(int argc, char **argv)
{
    decode_opts o;
    const int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    attn_kvcache_streams s;
    if (o.streams ? attn_kvcache_streams_load(o.streams, o.prompt_set ? o.synth.prompt : 0,
                                              o.new_set ? o.synth.new_tokens : 0, o.bf16, &s)
                  : attn_kvcache_streams_synth(&o.synth, &s))
        return 2;
    attn_backend *be = NULL;
    const attn_status st = attn_backend_open(o.backend, o.options, &be);
    if (st != ATTN_OK) {
        attn_kvcache_streams_free(&s);
        fprintf(stderr, "attn decode: backend %s: %s: %s\n", o.backend, attn_status_name(st),
                attn_last_error());
        return 2;
    }
    const int rc = o.sweep ? run_sweep(&o, &s, be) : run_one(&o, &s, be);
    attn_backend_close(be);
    attn_kvcache_streams_free(&s);
    return rc;
}
