/* model_bench.c - `attn bench --op model`: one training step of the BERT classifier on a batch,
 * forward (attn_model_forward, then attn_model_loss for dlogits) and backward
 * (attn_model_backward, every parameter's gradient), at the default shapes B 8, S 128, d 256,
 * 4 layers, 4 heads, MLP 1024, vocab 30522, 2 labels (every size a flag), f32, no padding.
 * The step is timed --repeat times after a warm-up and the median step is reported: tokens/s,
 * GFLOP/s counting the matrix products only,
 *   dense     F_d = 2 N (4 d^2 + 2 d I) L   forward (Q, K, V, O projections, the MLP's two),
 *   attention F_a = 4 B H S^2 Dh L         forward (Q K^T and P V),
 *   step      F   = 3 F_d + 3.5 F_a        (backward: 2x the dense, 2.5x the attention),
 * with N = B S tokens and Dh = d / H (the pooler, classifier, embeddings, LayerNorms and GELU
 * are not counted): the model's FLOPs, what a full forward computes. The model runs its last
 * layer on the [CLS] rows only (the logits need no other), so it executes fewer: K and V of
 * that layer for every token, the rest for B rows; GFLOP/s are of the executed count, tokens/s
 * compare with other implementations whatever they execute. The backward's time includes
 * clearing the gradients (transformers' backward allocates zeroed ones). The share of the step spent inside the attention calls (the model's own
 * clock around attn_sdpa_forward_ex / attn_sdpa_backward) against the dense layers and the
 * rest, and the BLIS sgemm rate measured in the same run as the yardstick. */
#include "model_bench.h"

#include "attn_args.h"
#include "attn_bench_util.h"
#include "attn_model_impl.h"
#include "attn_rng.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPEAT 1024

typedef struct model_bench_opts {
    attn_bench_common c;
    const char *json;
    int all_rows; /* every layer on every row, as transformers computes */
    int64_t batch, seq, hidden, layers, heads, intermediate, vocab, labels;
} model_bench_opts;

/* One timed step: its phases and the time inside the attention calls of each. */
typedef struct step_time {
    double fwd, bwd, attn_fwd, attn_bwd;
} step_time;

/* The batch: random ids and labels, the logits and their gradient. */
typedef struct bench_batch {
    int32_t *ids, *labels;
    float *logits, *dlogits;
} bench_batch;

/* The FLOP counts of one step (see the header comment). */
typedef struct step_flops {
    double dense, attn;         /* the model's forward */
    double dense_run, attn_run; /* the forward as executed: the last layer on [CLS] rows */
} step_flops;

static const char usage[] =
    "usage: attn bench --op model [--backend B] [--options STR] [--threads N] [--repeat N]\n"
    "                  [--json FILE] [--all-rows] [--batch B --seq S --hidden D --layers L\n"
    "                  --heads H --intermediate I --vocab V --labels C]\n"
    "One training step of the BERT classifier on a batch (forward with the cross-entropy's\n"
    "gradient, then backward into every parameter), f32, no padding; default B 8, S 128,\n"
    "d 256, 4 layers, 4 heads, MLP 1024, vocab 30522, 2 labels. The median of --repeat steps\n"
    "(5) after a warm-up: tokens/s, GFLOP/s of the matrix products\n"
    "  F = 3 * 2 N (4 d^2 + 2 d I) L + 3.5 * 4 B H S^2 Dh L   (N = B S, Dh = d / H)\n"
    "(dense layers forward once and backward twice, attention forward once and backward 2.5\n"
    "times), the share of the step inside the attention calls, and the same-run BLIS sgemm\n"
    "rate. --backend picks the attention's backend (the dense layers run on the host's BLIS).\n"
    "The last layer runs on the [CLS] rows only (all the logits need); --all-rows runs it on\n"
    "every row, as transformers does.\n";

/* ---- options ------------------------------------------------------------------------------- */

/* 1: --help printed; 0: parsed; -1: usage error (printed). */
static int parse_args(int argc, char **argv, model_bench_opts *o)
{
    static const char *const names[] = {"--batch",  "--seq",          "--hidden", "--layers",
                                        "--heads",  "--intermediate", "--vocab",  "--labels"};
    int64_t *const dst[] = {&o->batch, &o->seq,          &o->hidden, &o->layers,
                            &o->heads, &o->intermediate, &o->vocab,  &o->labels};
    *o = (model_bench_opts){.c = {"cpu", NULL, omp_get_max_threads(), 5},
                            .batch = 8, .seq = 128, .hidden = 256, .layers = 4, .heads = 4,
                            .intermediate = 1024, .vocab = 30522, .labels = 2};
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--all-rows") == 0) {
            o->all_rows = 1;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        if ((r = attn_bench_size_arg(argc, argv, &i, 8, names, dst, NULL)) == 0 &&
            (r = attn_bench_common_arg(argc, argv, &i, &o->c)) == 0 &&
            (r = attn_arg_value(argc, argv, &i, "--json", &o->json)) == 0)
            fprintf(stderr, "attn bench: unknown option %s\n%s", argv[i], usage);
        if (r <= 0)
            return -1;
    }
    if (o->hidden % o->heads != 0) {
        fprintf(stderr, "attn bench: --hidden must be a multiple of --heads\n");
        return -1;
    }
    return 0;
}

static attn_model_config config_of(const model_bench_opts *o)
{
    attn_model_config c = attn_model_config_default();
    c.vocab_size = o->vocab;
    c.hidden_size = o->hidden;
    c.num_layers = o->layers;
    c.num_heads = o->heads;
    c.intermediate_size = o->intermediate;
    c.num_labels = o->labels;
    c.max_positions = o->seq > c.max_positions ? o->seq : c.max_positions;
    return c;
}

static step_flops flops_of(const model_bench_opts *o)
{
    const double B = (double)o->batch, S = (double)o->seq, d = (double)o->hidden;
    const double L = (double)o->layers, I = (double)o->intermediate;
    /* H * Dh = d: the attention's 4 B H S^2 Dh is 4 B S^2 d per layer */
    const double layer = 2 * B * S * (4 * d * d + 2 * d * I), attn = 4 * B * S * S * d;
    const double last = 2 * B * S * 2 * d * d + 2 * B * (2 * d * d + 2 * d * I);
    if (o->all_rows)
        return (step_flops){layer * L, attn * L, layer * L, attn * L};
    return (step_flops){layer * L, attn * L, layer * (L - 1) + last, attn * (L - 1) + attn / S};
}

/* ---- the batch ----------------------------------------------------------------------------- */

static void batch_free(bench_batch *b)
{
    free(b->ids);
    free(b->labels);
    free(b->logits);
    free(b->dlogits);
}

/* Ids uniform over the vocabulary, labels over the classes (counter-based, seed 7). */
static int batch_init(bench_batch *b, const model_bench_opts *o)
{
    const int64_t n = o->batch * o->seq;
    b->ids = malloc(sizeof(int32_t) * (size_t)n);
    b->labels = malloc(sizeof(int32_t) * (size_t)o->batch);
    b->logits = malloc(sizeof(float) * (size_t)(o->batch * o->labels));
    b->dlogits = malloc(sizeof(float) * (size_t)(o->batch * o->labels));
    if (!b->ids || !b->labels || !b->logits || !b->dlogits)
        return -1;
    for (int64_t i = 0; i < n; i++)
        b->ids[i] = (int32_t)(attn_rng_bits(7, 1, (uint64_t)i) % (uint64_t)o->vocab);
    for (int64_t i = 0; i < o->batch; i++)
        b->labels[i] = (int32_t)(attn_rng_bits(7, 2, (uint64_t)i) % (uint64_t)o->labels);
    return 0;
}

/* ---- timing -------------------------------------------------------------------------------- */

/* One step: forward and the loss's gradient, then backward; times each phase and the
 * attention calls inside it (the model adds their wall time to attn_seconds). */
static attn_status step_once(attn_model *m, const model_bench_opts *o, bench_batch *b,
                             step_time *t)
{
    const attn_model_input in = {.batch = o->batch, .seq = o->seq, .ids = b->ids};
    const attn_model_outputs out = {.logits = b->logits};
    double loss;
    m->attn_seconds = 0;
    const double t0 = omp_get_wtime();
    attn_status st = attn_model_forward(m, &in, &out);
    if (st == ATTN_OK)
        st = attn_model_loss(m, b->labels, &loss, b->dlogits);
    const double t1 = omp_get_wtime();
    t->attn_fwd = m->attn_seconds;
    m->attn_seconds = 0;
    attn_model_zero_grad(m); /* timed: transformers' backward allocates zeroed gradients */
    if (st == ATTN_OK)
        st = attn_model_backward(m, b->dlogits, NULL);
    t->fwd = t1 - t0;
    t->bwd = omp_get_wtime() - t1;
    t->attn_bwd = m->attn_seconds;
    return st;
}

static int by_step(const void *a, const void *b)
{
    const step_time *x = a, *y = b;
    const double dx = x->fwd + x->bwd, dy = y->fwd + y->bwd;
    return (dx > dy) - (dx < dy);
}

/* The median of `repeat` steps after a warm-up (the step of median total time, so that its
 * phases add up). */
static attn_status time_steps(attn_model *m, const model_bench_opts *o, bench_batch *b,
                              step_time *median)
{
    step_time t[MAX_REPEAT];
    attn_status st = step_once(m, o, b, &t[0]); /* warm-up: first-touch of the tape */
    for (int r = 0; st == ATTN_OK && r < o->c.repeat; r++)
        st = step_once(m, o, b, &t[r]);
    if (st != ATTN_OK)
        return st;
    qsort(t, (size_t)o->c.repeat, sizeof t[0], by_step);
    *median = t[o->c.repeat / 2];
    return ATTN_OK;
}

/* ---- report -------------------------------------------------------------------------------- */

static void print_config(const model_bench_opts *o, const step_flops *f)
{
    printf("BERT classifier: B %lld, S %lld (%lld tokens), d %lld, %lld layers, %lld heads "
           "(Dh %lld), MLP %lld, vocab %lld, %lld labels; f32, no padding\n",
           (long long)o->batch, (long long)o->seq, (long long)(o->batch * o->seq),
           (long long)o->hidden, (long long)o->layers, (long long)o->heads,
           (long long)(o->hidden / o->heads), (long long)o->intermediate, (long long)o->vocab,
           (long long)o->labels);
    printf("FLOPs per step = 3 * 2 N (4 d^2 + 2 d I) L + 3.5 * 4 B H S^2 Dh L = %.2f + %.2f = "
           "%.2f GFLOP (dense forward 1x, backward 2x; attention forward 1x, backward 2.5x)\n",
           3 * f->dense / 1e9, 3.5 * f->attn / 1e9, (3 * f->dense + 3.5 * f->attn) / 1e9);
    if (o->all_rows)
        printf("executed: all of it (--all-rows)\n");
    else
        printf("executed: %.2f GFLOP (the last layer on the %lld [CLS] rows, its K and V on "
               "every token); GFLOP/s below are of these\n",
               (3 * f->dense_run + 3.5 * f->attn_run) / 1e9, (long long)o->batch);
}

/* One phase's line: time, tokens/s, GFLOP/s, its share of sgemm, the attention's share. */
static void print_phase(const char *name, double sec, double attn_sec, double flops,
                        double tokens, double gemm)
{
    const double gf = flops / sec / 1e9;
    printf("%-9s %9.2f %10.0f %9.1f %8.2f %9.1f%% %9.1f%%\n", name, 1e3 * sec, tokens / sec, gf,
           gf / gemm, 100 * attn_sec / sec, 100 * (sec - attn_sec) / sec);
}

static void print_report(const model_bench_opts *o, const step_time *t, double gemm)
{
    const step_flops f = flops_of(o);
    const double tokens = (double)(o->batch * o->seq);
    print_config(o, &f);
    printf("same run: sgemm %d^3 %.1f GFLOP/s\n", ATTN_BENCH_SGEMM_N, gemm);
    printf("phase            ms   tokens/s   GFLOP/s  / sgemm  attention  dense+other\n");
    print_phase("forward", t->fwd, t->attn_fwd, f.dense_run + f.attn_run, tokens, gemm);
    print_phase("backward", t->bwd, t->attn_bwd, 2 * f.dense_run + 2.5 * f.attn_run, tokens,
                gemm);
    print_phase("step", t->fwd + t->bwd, t->attn_fwd + t->attn_bwd,
                3 * f.dense_run + 3.5 * f.attn_run, tokens, gemm);
}

/* The figures of the median step as a one-element JSON array (bench_peers.py reads it). */
static int write_json(const model_bench_opts *o, const step_time *t, double gemm,
                      const char *cpu, const char *impl)
{
    const step_flops f = flops_of(o);
    const double sec = t->fwd + t->bwd, flops = 3 * f.dense + 3.5 * f.attn;
    const double run = 3 * f.dense_run + 3.5 * f.attn_run;
    const double tokens = (double)(o->batch * o->seq);
    cJSON *arr = cJSON_CreateArray(), *j = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, j);
    cJSON_AddStringToObject(j, "op", "model");
    cJSON_AddStringToObject(j, "kind", "train_step");
    cJSON_AddStringToObject(j, "impl", impl);
    cJSON_AddStringToObject(j, "cpu", cpu);
    cJSON_AddNumberToObject(j, "threads", o->c.threads);
    const char *const names[] = {"batch", "seq",          "hidden", "layers",
                                 "heads", "intermediate", "vocab",  "labels"};
    const int64_t vals[] = {o->batch, o->seq,          o->hidden, o->layers,
                            o->heads, o->intermediate, o->vocab,  o->labels};
    for (int k = 0; k < 8; k++)
        cJSON_AddNumberToObject(j, names[k], (double)vals[k]);
    cJSON_AddNumberToObject(j, "seconds", sec);
    cJSON_AddNumberToObject(j, "forward_seconds", t->fwd);
    cJSON_AddNumberToObject(j, "backward_seconds", t->bwd);
    cJSON_AddNumberToObject(j, "attention_seconds", t->attn_fwd + t->attn_bwd);
    cJSON_AddNumberToObject(j, "attention_forward_seconds", t->attn_fwd);
    cJSON_AddNumberToObject(j, "attention_backward_seconds", t->attn_bwd);
    cJSON_AddNumberToObject(j, "attention_share", (t->attn_fwd + t->attn_bwd) / sec);
    cJSON_AddNumberToObject(j, "tokens", tokens);
    cJSON_AddNumberToObject(j, "tokens_per_s", tokens / sec);
    cJSON_AddNumberToObject(j, "flops", flops);
    cJSON_AddNumberToObject(j, "dense_flops_forward", f.dense);
    cJSON_AddNumberToObject(j, "attention_flops_forward", f.attn);
    cJSON_AddNumberToObject(j, "flops_executed", run);
    cJSON_AddNumberToObject(j, "gflops", run / sec / 1e9);
    cJSON_AddNumberToObject(j, "sgemm_gflops", gemm);
    cJSON_AddNumberToObject(j, "ratio", run / sec / 1e9 / gemm);
    char *text = cJSON_Print(arr);
    cJSON_Delete(arr);
    FILE *fp = text ? fopen(o->json, "w") : NULL;
    int ok = fp && fputs(text, fp) >= 0;
    if (fp && fclose(fp) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "attn bench: cannot write %s\n", o->json);
    free(text);
    return ok ? 0 : 1;
}

/* ---- the command --------------------------------------------------------------------------- */

static int bench(attn_backend *be, const model_bench_opts *o, const char *cpu)
{
    const attn_model_config cfg = config_of(o);
    attn_model *m = NULL;
    bench_batch b = {0};
    step_time t = {0};
    attn_status st = attn_model_create(be, &cfg, 1, &m);
    if (st == ATTN_OK)
        m->all_rows = o->all_rows;
    const int oom = st == ATTN_OK && batch_init(&b, o) != 0;
    if (oom)
        st = ATTN_ERR_OUT_OF_MEMORY;
    const double gemm = st == ATTN_OK ? attn_bench_sgemm_gflops(o->c.threads, 3) : -1;
    if (st == ATTN_OK)
        st = time_steps(m, o, &b, &t);
    int rc = st == ATTN_OK ? 0 : 1;
    if (st == ATTN_OK) {
        print_report(o, &t, gemm);
        if (o->json)
            rc = write_json(o, &t, gemm, cpu, attn_backend_describe(be));
    } else {
        fprintf(stderr, "attn bench: model: %s: %s\n", attn_status_name(st),
                oom ? "out of memory" : attn_last_error());
    }
    batch_free(&b);
    attn_model_free(m);
    return rc;
}

int attn_model_cmd_bench(int argc, char **argv)
{
    model_bench_opts o;
    const int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    char opts[256], cpu[128];
    attn_backend *be;
    if (attn_bench_open(&o.c, opts, sizeof opts, &be))
        return 2;
    /* the dense layers use the OpenMP threads: as many as the backend and the sgemm */
    omp_set_num_threads(o.c.threads);
    attn_bench_cpu_model(cpu, sizeof cpu);
    printf("attn bench --op model: %s; CPU %s; %d thread%s; median of %d steps after a "
           "warm-up\n", attn_backend_describe(be), cpu, o.c.threads,
           o.c.threads == 1 ? "" : "s", o.c.repeat);
    const int rc = bench(be, &o, cpu);
    attn_backend_close(be);
    return rc;
}
