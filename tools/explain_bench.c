/* explain_bench.c - `attn bench --op explain`: every saliency method (attn_explain) on one text
 * of the default shapes, S 128, for a BERT classifier of d 256, 4 layers, 4 heads, MLP 1024,
 * vocab 30522, 2 labels (attn_model_create under a seed; random ids). Each method runs --repeat
 * times and its median time is reported. Integrated gradients and LIME run the model on
 * batches of copies of the text (ig_steps interpolations, lime_samples perturbations): their
 * time is set beside one forward and one backward (the gradient with respect to the embedding
 * output, as the gradient methods take it) of a batch of that many rows, measured in the same
 * run, so the ratio shows what a method costs beyond its batch's model passes. */
#include "explain_bench.h"

#include "attn_args.h"
#include "attn_bench_util.h"
#include "attn_model_saliency.h"
#include "attn_rng.h"
#include "model_tool.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPEAT 1024

typedef struct explain_bench_opts {
    attn_bench_common c;
    int64_t seq, ig_steps, lime_samples;
} explain_bench_opts;

static const char usage[] =
    "usage: attn bench --op explain [--backend B] [--options STR] [--threads N] [--repeat N]\n"
    "                  [--seq S] [--ig-steps N] [--lime-n N]\n"
    "Every saliency method on one text of S tokens (128), the class explained the one\n"
    "predicted, for a BERT classifier of d 256, 4 layers, 4 heads, MLP 1024, vocab 30522,\n"
    "2 labels: the median of --repeat runs (3). Integrated gradients (--ig-steps, 100) and\n"
    "LIME (--lime-n, 40) beside one forward + backward (d logit / d embedding output) of a\n"
    "batch of as many rows, measured in the same run.\n";

/* 1: --help printed; 0: parsed; -1: usage error (printed). */
static int parse_args(int argc, char **argv, explain_bench_opts *o)
{
    static const char *const names[] = {"--seq", "--ig-steps", "--lime-n"};
    int64_t *const dst[] = {&o->seq, &o->ig_steps, &o->lime_samples};
    static const int64_t lo[] = {3, 1, 2};
    *o = (explain_bench_opts){.c = {"cpu", NULL, omp_get_max_threads(), 3},
                              .seq = 128, .ig_steps = 100, .lime_samples = 40};
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        if ((r = attn_bench_size_arg(argc, argv, &i, 3, names, dst, lo)) == 0 &&
            (r = attn_bench_common_arg(argc, argv, &i, &o->c)) == 0)
            fprintf(stderr, "attn bench: unknown option %s\n%s", argv[i], usage);
        if (r <= 0)
            return -1;
    }
    return 0;
}

/* ---- the model and its inputs ---------------------------------------------------------------- */

typedef struct explain_bench_ctx {
    attn_model *m;
    const explain_bench_opts *o;
    int32_t *ids;   /* [rows, S]: the text, copied on every row */
    float *logits;  /* [rows, 2] */
    float *dlogits; /* [rows, 2]: one-hot on class 0 */
    float *grad;    /* [rows, S, d] */
    float *scores;  /* [S] */
    int64_t rows;   /* the largest batch of the yardstick */
    int oom;        /* an allocation of ctx_init failed (the library has no message) */
} explain_bench_ctx;

static attn_model_config config_of(const explain_bench_opts *o)
{
    attn_model_config c = attn_model_config_default();
    c.vocab_size = 30522;
    c.hidden_size = 256;
    c.num_layers = 4;
    c.num_heads = 4;
    c.intermediate_size = 1024;
    c.num_labels = 2;
    c.max_positions = o->seq > c.max_positions ? o->seq : c.max_positions;
    return c;
}

static void ctx_free(explain_bench_ctx *x)
{
    free(x->ids);
    free(x->logits);
    free(x->dlogits);
    free(x->grad);
    free(x->scores);
    attn_model_free(x->m);
}

/* The model under seed 1 and the text: ids uniform over the vocabulary (counter-based, seed
 * 7), copied onto every row of the yardstick's largest batch. */
static attn_status ctx_init(explain_bench_ctx *x, attn_backend *be, const explain_bench_opts *o)
{
    const attn_model_config cfg = config_of(o);
    const int64_t S = o->seq, d = cfg.hidden_size;
    memset(x, 0, sizeof *x);
    x->o = o;
    x->rows = o->ig_steps > o->lime_samples ? o->ig_steps : o->lime_samples;
    attn_status st = attn_model_create(be, &cfg, 1, &x->m);
    if (st != ATTN_OK)
        return st;
    x->ids = malloc(sizeof(int32_t) * (size_t)(x->rows * S));
    x->logits = malloc(sizeof(float) * (size_t)(x->rows * 2));
    x->dlogits = calloc((size_t)(x->rows * 2), sizeof(float));
    x->grad = malloc(sizeof(float) * (size_t)(x->rows * S * d));
    x->scores = malloc(sizeof(float) * (size_t)S);
    x->oom = !x->ids || !x->logits || !x->dlogits || !x->grad || !x->scores;
    if (x->oom)
        return ATTN_ERR_OUT_OF_MEMORY;
    for (int64_t s = 0; s < S; s++)
        x->ids[s] = (int32_t)(attn_rng_bits(7, 1, (uint64_t)s) % (uint64_t)cfg.vocab_size);
    for (int64_t r = 1; r < x->rows; r++)
        memcpy(x->ids + r * S, x->ids, sizeof(int32_t) * (size_t)S);
    for (int64_t r = 0; r < x->rows; r++)
        x->dlogits[r * 2] = 1.0f;
    return ATTN_OK;
}

/* ---- timing ---------------------------------------------------------------------------------- */

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One forward and one backward (d logit 0 / d e) of `rows` copies of the text. */
static attn_status pass_once(explain_bench_ctx *x, int64_t rows, double *fwd, double *total)
{
    const attn_model_input in = {.batch = rows, .seq = x->o->seq, .ids = x->ids};
    const attn_model_outputs out = {.logits = x->logits};
    const double t0 = attn_model_tool_now();
    attn_status st = attn_model_forward(x->m, &in, &out);
    const double t1 = attn_model_tool_now();
    if (st == ATTN_OK)
        st = attn_model_backward_saliency(x->m, x->dlogits, NULL, x->grad);
    *fwd = t1 - t0;
    *total = attn_model_tool_now() - t0;
    return st;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof t[0], by_value);
    return t[n / 2];
}

/* The medians of `repeat` runs of method m on the text and, when rows > 0, of as many passes
 * of `rows` rows (fwd: the forward alone, total: forward + backward), a pass after each run so
 * that both see the same machine load. */
static attn_status time_method(explain_bench_ctx *x, attn_explain_method m, int64_t rows,
                               double *method, double *fwd, double *total)
{
    attn_explain_options opt = attn_explain_options_default();
    opt.method = m;
    opt.ig_steps = x->o->ig_steps;
    opt.lime_samples = x->o->lime_samples;
    const attn_model_input in = {.batch = 1, .seq = x->o->seq, .ids = x->ids};
    double t[MAX_REPEAT], f[MAX_REPEAT], p[MAX_REPEAT];
    attn_status st = ATTN_OK;
    const int n = x->o->c.repeat;
    for (int r = 0; st == ATTN_OK && r < n; r++) {
        const double t0 = attn_model_tool_now();
        st = attn_explain(x->m, &in, NULL, &opt, x->scores);
        t[r] = attn_model_tool_now() - t0;
        f[r] = p[r] = 0;
        if (st == ATTN_OK && rows > 0)
            st = pass_once(x, rows, &f[r], &p[r]);
    }
    *method = median(t, n);
    *fwd = median(f, n);
    *total = median(p, n);
    return st;
}

/* ---- the command ----------------------------------------------------------------------------- */

static attn_status bench(explain_bench_ctx *x)
{
    const explain_bench_opts *o = x->o;
    double fwd, total;
    /* warm-up: the largest batch touches the model's buffers first */
    attn_status st = pass_once(x, x->rows, &fwd, &total);
    if (st != ATTN_OK)
        return st;
    printf("%-22s %10s  %s\n", "method", "ms", "/ (forward + backward of its batch, ms; forward "
           "alone, ms)");
    for (int k = 0; k < ATTN_EXPLAIN_METHOD_COUNT; k++) {
        const attn_explain_method m = (attn_explain_method)k;
        const int64_t rows = m == ATTN_EXPLAIN_INTEGRATED_GRADIENTS ? o->ig_steps
                             : m == ATTN_EXPLAIN_LIME                ? o->lime_samples
                                                                     : 0;
        double t;
        if ((st = time_method(x, m, rows, &t, &fwd, &total)) != ATTN_OK)
            return st;
        printf("%-22s %10.2f", attn_explain_method_name(m), 1e3 * t);
        if (rows)
            printf("  %.2f (%lld rows: %.1f; %.1f)", t / total, (long long)rows, 1e3 * total,
                   1e3 * fwd);
        printf("\n");
        fflush(stdout);
    }
    return ATTN_OK;
}

int attn_explain_cmd_bench(int argc, char **argv)
{
    explain_bench_opts o;
    const int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    char opts[256], cpu[128];
    attn_backend *be;
    if (attn_bench_open(&o.c, opts, sizeof opts, &be))
        return 2;
    /* the dense layers use the OpenMP threads: as many as the backend */
    omp_set_num_threads(o.c.threads);
    attn_bench_cpu_model(cpu, sizeof cpu);
    printf("attn bench --op explain: %s; CPU %s; %d thread%s; median of %d runs\n",
           attn_backend_describe(be), cpu, o.c.threads, o.c.threads == 1 ? "" : "s",
           o.c.repeat);
    printf("BERT classifier: d 256, 4 layers, 4 heads, MLP 1024, vocab 30522, 2 labels; one "
           "text of %lld tokens; ig_steps %lld, lime_samples %lld\n", (long long)o.seq,
           (long long)o.ig_steps, (long long)o.lime_samples);
    explain_bench_ctx x;
    attn_status st = ctx_init(&x, be, &o);
    if (st == ATTN_OK)
        st = bench(&x);
    if (st != ATTN_OK)
        fprintf(stderr, "attn bench: explain: %s: %s\n", attn_status_name(st),
                x.oom ? "out of memory" : attn_last_error());
    ctx_free(&x);
    attn_backend_close(be);
    return st == ATTN_OK ? 0 : 1;
}
