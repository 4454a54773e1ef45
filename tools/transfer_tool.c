/* transfer_tool.c - `attn transfer`: trains the attention-guided transfer model (attn_transfer.h)
 * on a data set of six .npy files, learned attention beside the uniform weights and the
 * target-only baseline over several seeds; prints the mean attention weight of every source
 * classifier and each mode's target test accuracy with a 95% t interval over the seeds, writes
 * the weights as an SVG bar chart (--svg) and every figure as JSON (--json). */
#include "attn_args.h"
#include "attn_cmds.h"
#include "transfer_tool.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "transfer"
#define MODES 3

const char *const attn_transfer_tool_file_names[ATTN_TRANSFER_TOOL_FILES] = {
    "source_x.npy", "source_y.npy", "target_x.npy", "target_y.npy", "test_x.npy", "test_y.npy"};
const char attn_transfer_tool_planted_name[] = "planted.json";

/* The modes in the order they run and print. */
static const attn_transfer_mode modes[MODES] = {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_UNIFORM,
                                                ATTN_TRANSFER_TARGET_ONLY};
static const char *const mode_names[MODES] = {"attention", "uniform", "target-only"};

typedef struct transfer_opts {
    const char *data, *file[ATTN_TRANSFER_TOOL_FILES], *planted, *svg, *json;
    const char *backend, *device, *options;
    attn_transfer_config cfg; /* features and sources come from the data */
    attn_transfer_tool_train tr;
    uint64_t seed;
    int64_t seeds;
    double target_prior; /* --target-prior: target_decay = X / Nt; < 0 unset */
} transfer_opts;

static const char usage[] =
    "usage: attn transfer --data DIR [options]\n"
    "Attention-guided attribute transfer (docs/transfer.md): trains a shared embedding, K\n"
    "source attribute classifiers and a target classifier with an attention over the source\n"
    "classifiers, on DIR/source_x.npy (float32 [Ns, F]), source_y.npy (uint8 [Ns, K], 0 or 1),\n"
    "target_x.npy / target_y.npy (the labelled target examples, [Nt, F] and [Nt]) and\n"
    "test_x.npy / test_y.npy (`attn data --task transfer` writes them). Three modes each over\n"
    "--seeds seeds: attention (learned weights), uniform (weights 1/K) and target-only (no\n"
    "transfer). Prints the learned weight of every source classifier (mean and sd over the\n"
    "seeds; '*' marks the planted sources when DIR/planted.json names them) and each mode's\n"
    "accuracy on the test set, mean with its 95% t interval over the seeds, and attention's\n"
    "gain over target-only paired by seed.\n"
    "files (each overrides its file in --data):\n"
    "  --data DIR         the directory of the six files\n"
    "  --source-x F --source-y F --target-x F --target-y F --test-x F --test-y F\n"
    "  --planted FILE     planted.json of the benchmark (default DIR/planted.json if present)\n"
    "model (the fields of attn_transfer_config):\n"
    "  --embed M          width of the shared embedding (16)\n"
    "  --act A            the embedding's activation: none, relu or tanh (relu)\n"
    "  --query Q          attribute (one set of weights) or example (weights per example)\n"
    "  --score S          dot (q . w_i / sqrt(m)), mlp (v . tanh(W_a w_i + W_q q + b)) or\n"
    "                     cosine (tau cos(q, w_i)) (mlp)\n"
    "  --attn-hidden H    the mlp score's hidden width (16)\n"
    "  --temperature T    the cosine score's tau, > 0, at most 50 (2.5)\n"
    "  --learn-temperature  tau is learned (as log tau), starting at --temperature\n"
    "  --target-decay X   L2 penalty X/2 |w_t|^2 on the target classifier in the loss (the\n"
    "                     target-only baseline is never penalised)\n"
    "  --target-prior X   the same penalty worth X labels: target decay X / Nt, strong with\n"
    "                     few labels, vanishing with many (6; the later of the two wins)\n"
    "  --no-target-classifier  the combined classifier leaves out the target's own w_t, b_t\n"
    "  --source-weight X  weight of the source attributes' BCE in the loss (1)\n"
    "  --detach D         what the target loss does not train: none, heads (the source\n"
    "                     classifiers) or shared (those and the embedding) (heads)\n"
    "training (AdamW at a constant rate):\n"
    "  --source-epochs N  first N passes over the source examples with the target term left\n"
    "                     out of the loss (10): the source classifiers train on their data alone\n"
    "  --epochs N         passes over the source examples (30), then with the target term\n"
    "  --batch B          source examples per step (64), with min(B, Nt) target examples\n"
    "  --lr X             learning rate (0.01)\n"
    "  --weight-decay X   decoupled weight decay on the weights (0.01)\n"
    "  --clip X           global gradient-norm clip, 0 = none (1)\n"
    "  --seed N           the first seed (1): seeds N .. N + seeds - 1 initialise and shuffle\n"
    "  --seeds N          models per mode (5)\n"
    "output:\n"
    "  --svg FILE         bar chart of the learned weights\n"
    "  --json FILE        every figure printed, and the per-seed accuracies\n"
    "%s"
    "Exit status: 0 done, 1 the library failed on valid inputs, 2 bad options or data.\n";

/* ---- options --------------------------------------------------------------------------------- */

/* A field of the configuration from its option: 1 consumed, 0 not one, -1 error (printed). */
static int config_opt(int argc, char **argv, int *i, transfer_opts *o)
{
    static const char *const names[] = {"--embed",       "--act",           "--query",
                                        "--score",       "--attn-hidden",   "--source-weight",
                                        "--detach",      "--temperature",   "--target-decay"};
    static const char *const keys[] = {"embed",       "act",           "query",      "score",
                                       "attn_hidden", "source_weight", "detach",     "temperature",
                                       "target_decay"};
    const char *v;
    int r;
    if (attn_arg_flag(argv, *i, "--no-target-classifier"))
        return o->cfg.include_target = 0, 1;
    if (attn_arg_flag(argv, *i, "--learn-temperature"))
        return o->cfg.learn_temperature = 1, 1;
    for (int k = 0; k < 9; k++)
        if ((r = attn_arg_value(argc, argv, i, names[k], &v)) != 0) {
            if (r < 0)
                return -1;
            if (attn_transfer_config_set(&o->cfg, keys[k], v) == ATTN_OK) {
                if (!strcmp(keys[k], "target_decay")) /* the later of the two penalties wins */
                    o->target_prior = -1.0;
                return 1;
            }
            fprintf(stderr, "attn transfer: %s: %s\n", names[k], attn_last_error());
            return -1;
        }
    return 0;
}

/* A training option: 1 consumed, 0 not one, -1 error. */
static int train_opt(int argc, char **argv, int *i, transfer_opts *o)
{
    static const char *const ints[] = {"--epochs", "--batch", "--seeds", "--source-epochs"};
    int64_t *const idst[] = {&o->tr.epochs, &o->tr.batch, &o->seeds, &o->tr.source_epochs};
    static const int64_t ilo[] = {1, 1, 1, 0}, ihi[] = {INT32_MAX, INT32_MAX, 10000, INT32_MAX};
    static const char *const reals[] = {"--lr", "--weight-decay", "--clip"};
    static const double lo[] = {1e-300, 0, 0}, hi[] = {1e3, 1e3, 1e30};
    double *const rdst[] = {&o->tr.lr, &o->tr.weight_decay, &o->tr.clip};
    const char *v;
    int64_t n;
    int r;
    for (int k = 0; k < 4; k++)
        if ((r = attn_arg_value(argc, argv, i, ints[k], &v)) != 0)
            return r < 0 || attn_parse_i64(ints[k], v, ilo[k], ihi[k], idst[k]) ? -1 : 1;
    for (int k = 0; k < 3; k++)
        if ((r = attn_arg_value(argc, argv, i, reals[k], &v)) != 0)
            return r < 0 || attn_parse_f64(reals[k], v, lo[k], hi[k], rdst[k]) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--target-prior", &v)) != 0)
        return r < 0 || attn_parse_f64("--target-prior", v, 0, 1e6, &o->target_prior)
                   ? -1
                   : (o->cfg.target_decay = 0.0, 1);
    if ((r = attn_arg_value(argc, argv, i, "--seed", &v)) != 0)
        return r < 0 || attn_parse_i64("--seed", v, 0, INT64_MAX, &n) ? -1
                                                                       : (o->seed = (uint64_t)n, 1);
    return 0;
}

/* Any option: 1 consumed, 0 not one, -1 error. */
static int one_opt(int argc, char **argv, int *i, void *opts)
{
    transfer_opts *o = opts;
    static const char *const files[] = {"--source-x", "--source-y", "--target-x",
                                        "--target-y", "--test-x",   "--test-y"};
    static const char *const names[] = {"--data",    "--planted", "--svg",    "--json",
                                        "--backend", "--device",  "--options"};
    const char **const dst[] = {&o->data,    &o->planted, &o->svg,    &o->json,
                                &o->backend, &o->device,  &o->options};
    int r;
    for (int k = 0; k < ATTN_TRANSFER_TOOL_FILES; k++)
        if ((r = attn_arg_value(argc, argv, i, files[k], &o->file[k])) != 0)
            return r;
    for (int k = 0; k < 7; k++)
        if ((r = attn_arg_value(argc, argv, i, names[k], dst[k])) != 0)
            return r;
    if ((r = config_opt(argc, argv, i, o)) != 0)
        return r;
    return train_opt(argc, argv, i, o);
}

/* 1: --help printed; 0: parsed; -1: usage error (printed). */
static int parse_args(int argc, char **argv, transfer_opts *o)
{
    memset(o, 0, sizeof *o);
    o->backend = attn_model_tool_default_backend();
    /* The command's reading (docs/transfer.md, the one that best meets the benchmark's bar):
     * the mlp score, source classifiers trained on the sources alone first and then detached,
     * w_t penalised as a prior worth 6 labels. The library's defaults stay the first reading. */
    o->cfg = attn_transfer_config_default();
    o->cfg.score = ATTN_TRANSFER_SCORE_MLP;
    o->cfg.detach = ATTN_TRANSFER_DETACH_HEADS;
    o->tr = (attn_transfer_tool_train){.source_epochs = 10, .epochs = 30, .batch = 64,
                                       .lr = 1e-2,
                                       .weight_decay = 0.01, .clip = 1.0};
    o->seed = 1;
    o->seeds = 5;
    o->target_prior = 6.0;
    const int r = attn_model_tool_parse(CMD, argc, argv, usage, one_opt, o);
    if (r != 0)
        return r;

    for (int k = 0; k < ATTN_TRANSFER_TOOL_FILES; k++)
        if (!o->file[k] && !o->data) {
            fprintf(stderr, "attn transfer: --data DIR (or every one of --source-x .. "
                    "--test-y) is required\n");
            return -1;
        }
    return 0;
}

/* ---- the data set ---------------------------------------------------------------------------- */

/* Each file's path: its option, else DIR/its name (bufs of 4096 bytes). 0, or -1 (printed). */
static int resolve_paths(const transfer_opts *o, char (*bufs)[4096], const char **path)
{
    for (int k = 0; k < ATTN_TRANSFER_TOOL_FILES; k++) {
        path[k] = o->file[k];
        if (!path[k]) {
            if (attn_model_tool_path(CMD, o->data, attn_transfer_tool_file_names[k], bufs[k],
                                     4096))
                return -1;
            path[k] = bufs[k];
        }
    }
    return 0;
}

/* b's rows (or columns: dim 1) equal a's; else printed, -1. */
static int same_dim(const char *pa, const attn_model_tool_array *a, int da, const char *pb,
                    const attn_model_tool_array *b, int db, const char *what)
{
    if (a->shape[da] == b->shape[db])
        return 0;
    fprintf(stderr, "attn transfer: %s has %lld %s, %s has %lld\n", pb, (long long)b->shape[db],
            what, pa, (long long)a->shape[da]);
    return -1;
}

/* Every byte of a label file is 0 or 1; else printed, -1. */
static int binary_labels(const char *path, const attn_model_tool_array *a)
{
    const uint8_t *y = a->data;
    for (int64_t i = 0; i < a->count; i++)
        if (y[i] > 1) {
            fprintf(stderr, "attn transfer: %s: element %lld is %d: labels must be 0 or 1\n",
                    path, (long long)i, y[i]);
            return -1;
        }
    return 0;
}

/* The shapes agree: rows within each split, features across the splits, at least one source
 * attribute and one example of each split. 0, or -1 (printed). */
static int check_shapes(const char *const *p, attn_transfer_tool_set *s)
{
    const attn_model_tool_array *a = s->a;
    enum { SX = ATTN_TRANSFER_TOOL_SOURCE_X, SY, TX, TY, EX, EY };
    if (same_dim(p[SX], &a[SX], 0, p[SY], &a[SY], 0, "rows") ||
        same_dim(p[TX], &a[TX], 0, p[TY], &a[TY], 0, "rows") ||
        same_dim(p[EX], &a[EX], 0, p[EY], &a[EY], 0, "rows") ||
        same_dim(p[SX], &a[SX], 1, p[TX], &a[TX], 1, "features") ||
        same_dim(p[SX], &a[SX], 1, p[EX], &a[EX], 1, "features"))
        return -1;
    s->ns = a[SX].shape[0];
    s->F = a[SX].shape[1];
    s->K = a[SY].shape[1];
    s->nt = a[TX].shape[0];
    s->ne = a[EX].shape[0];
    const char *why = s->K < 1    ? "no source attributes (0 columns)"
                      : s->ns < 1 ? "no source examples"
                      : s->F < 1  ? "no features"
                                  : NULL;
    if (why) {
        fprintf(stderr, "attn transfer: %s: %s\n", p[s->ns < 1 || s->F < 1 ? SX : SY], why);
        return -1;
    }
    if (s->nt < 1 || s->ne < 1) {
        fprintf(stderr, "attn transfer: %s: no examples\n", p[s->nt < 1 ? TX : EX]);
        return -1;
    }
    return binary_labels(p[SY], &a[SY]) || binary_labels(p[TY], &a[TY]) ||
                   binary_labels(p[EY], &a[EY])
               ? -1
               : 0;
}

static void set_free(attn_transfer_tool_set *s)
{
    for (int k = 0; k < ATTN_TRANSFER_TOOL_FILES; k++)
        attn_model_tool_array_free(&s->a[k]);
}

/* Reads and checks the six files. 0, or -1 (printed; s left empty). */
static int load_set(const char *const *path, attn_transfer_tool_set *s)
{
    memset(s, 0, sizeof *s);
    int bad = 0;
    for (int k = 0; k < ATTN_TRANSFER_TOOL_FILES && !bad; k++) {
        const int is_x = k % 2 == 0, rank = is_x || k == ATTN_TRANSFER_TOOL_SOURCE_Y ? 2 : 1;
        bad = is_x ? attn_model_tool_read_f32(CMD, path[k], 2, 2, &s->a[k])
                   : attn_model_tool_read_u8(CMD, path[k], rank, rank, &s->a[k]);
    }
    if (bad || check_shapes(path, s)) {
        set_free(s);
        return -1;
    }
    return 0;
}

/* planted.json's mixture as each source's share of the sources' part ([K], w_r / sum w; 0
 * where not planted): what the attention weights, which sum to 1 over the sources, would be
 * if they matched the mixture. 1 read, 0 no file (not an error unless named by --planted), -1
 * error (printed). */
static int read_planted(const char *path, int named, int64_t K, double *w)
{
    if (!named && access(path, F_OK) != 0)
        return 0;
    char *text = attn_model_tool_read_text(CMD, path);
    if (!text)
        return -1;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *mix = cJSON_GetObjectItemCaseSensitive(j, "planted");
    const cJSON *e;
    int ok = cJSON_IsArray(mix) && cJSON_GetArraySize(mix) > 0;
    memset(w, 0, sizeof *w * (size_t)K);
    cJSON_ArrayForEach(e, mix)
    {
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(e, "source"),
                    *wt = cJSON_GetObjectItemCaseSensitive(e, "weight");
        const int in = cJSON_IsNumber(src) && src->valuedouble >= 0 && src->valuedouble < K &&
                       cJSON_IsNumber(wt) && wt->valuedouble > 0;
        ok = ok && in;
        if (in)
            w[(int64_t)src->valuedouble] = wt->valuedouble;
    }
    cJSON_Delete(j);
    double sum = 0;
    for (int64_t k = 0; k < K; k++)
        sum += w[k];
    for (int64_t k = 0; ok && k < K; k++) /* each source's share of the sources' part */
        w[k] /= sum;
    if (ok)
        return 1;
    fprintf(stderr, "attn transfer: %s: not a planted.json with a \"planted\" list of "
            "{\"source\": 0..%lld, \"weight\": > 0}\n", path, (long long)(K - 1));
    return -1;
}

/* ---- the runs -------------------------------------------------------------------------------- */

/* Every figure of the runs: accuracy [MODES][seeds], the learned weights [seeds][K]. */
typedef struct transfer_runs {
    int64_t seeds, K;
    double *acc, *alpha;
} transfer_runs;

static void runs_free(transfer_runs *r)
{
    free(r->acc);
    free(r->alpha);
}

/* Trains MODES x seeds models, printing one line per seed. 0, or the exit code (printed). */
static int run_all(const transfer_opts *o, attn_backend *be, const attn_transfer_tool_set *s,
                   transfer_runs *r)
{
    for (int64_t i = 0; i < o->seeds; i++) {
        const uint64_t seed = o->seed + (uint64_t)i;
        printf("  seed %llu:", (unsigned long long)seed);
        for (int m = 0; m < MODES; m++) {
            attn_transfer_config cfg = o->cfg;
            cfg.mode = modes[m];
            if (modes[m] == ATTN_TRANSFER_TARGET_ONLY) /* the baseline keeps w_t unpenalised */
                cfg.target_decay = 0.0;
            attn_transfer_tool_score sc;
            const int rc = attn_transfer_tool_fit(CMD, be, &cfg, &o->tr, s, seed, &sc,
                                                  m == 0 ? r->alpha + i * s->K : NULL);
            if (rc) {
                printf("\n");
                return rc;
            }
            r->acc[m * o->seeds + i] = sc.accuracy;
            printf(" %s %.4f%s", mode_names[m], sc.accuracy, m + 1 < MODES ? "," : "");
        }
        printf("\n");
        fflush(stdout);
    }
    return 0;
}

/* ---- the report ------------------------------------------------------------------------------ */

/* Per-source mean and sd of the learned weights over the seeds, into mean [K], sd [K]. */
static void weight_stats(const transfer_runs *r, double *mean, double *sd, double *col)
{
    for (int64_t k = 0; k < r->K; k++) {
        double half;
        for (int64_t i = 0; i < r->seeds; i++)
            col[i] = r->alpha[i * r->K + k];
        attn_transfer_tool_mean_ci(col, r->seeds, &mean[k], &sd[k], &half);
    }
}

static void print_weights(const transfer_runs *r, const double *mean, const double *sd,
                          const double *planted)
{
    double sum = 0, mass = 0;
    int64_t np = 0;
    printf("attention weights over the %lld source classifiers (mean and sd over %lld seeds%s):\n",
           (long long)r->K, (long long)r->seeds,
           planted ? "; * planted, with its share of the planted mixture" : "");
    for (int64_t k = 0; k < r->K; k++) {
        printf("  source %-4lld %.4f  %.4f", (long long)k, mean[k], isnan(sd[k]) ? 0 : sd[k]);
        if (planted && planted[k] > 0)
            printf("  * %.3f", planted[k]);
        printf("\n");
        sum += mean[k];
        if (planted && planted[k] > 0)
            mass += mean[k], np++;
    }
    printf("  sum         %.4f\n", sum);
    if (planted)
        printf("  on the %lld planted sources: %.4f (uniform %.4f)\n", (long long)np, mass,
               (double)np / (double)r->K);
}

/* "0.8123 +- 0.0104 [0.8019, 0.8227]" (the interval only with two seeds or more). */
static void print_ci(const double *v, int64_t n)
{
    double mean, sd, half;
    attn_transfer_tool_mean_ci(v, n, &mean, &sd, &half);
    if (isnan(half))
        printf("%.4f", mean);
    else
        printf("%.4f +- %.4f  [%.4f, %.4f]", mean, half, mean - half, mean + half);
}

static void print_accuracy(const transfer_runs *r)
{
    printf("target test accuracy (mean over %lld seeds", (long long)r->seeds);
    if (r->seeds > 1)
        printf(", 95%% t interval with %lld df", (long long)(r->seeds - 1));
    printf("):\n");
    for (int m = 0; m < MODES; m++) {
        printf("  %-12s ", mode_names[m]);
        print_ci(r->acc + m * r->seeds, r->seeds);
        printf("\n");
    }
    double *d = malloc(sizeof *d * (size_t)r->seeds);
    if (!d)
        return;
    for (int64_t i = 0; i < r->seeds; i++)
        d[i] = r->acc[i] - r->acc[2 * r->seeds + i];
    printf("  attention - target-only, paired by seed: ");
    print_ci(d, r->seeds);
    printf("\n");
    free(d);
}

static cJSON *json_array(const double *v, int64_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(isnan(v[i]) ? 0 : v[i]));
    return a;
}

/* The figures as JSON: config, weights (mean, sd, planted), accuracy per mode. */
static cJSON *report_json(const transfer_opts *o, const attn_transfer_tool_set *s,
                          const transfer_runs *r, const double *mean, const double *sd,
                          const double *planted)
{
    char desc[512];
    attn_transfer_config cfg = o->cfg;
    cfg.features = s->F;
    cfg.sources = s->K;
    attn_transfer_config_describe(&cfg, desc, sizeof desc);
    cJSON *j = cJSON_CreateObject(), *w = cJSON_CreateObject(), *acc = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "config", desc);
    cJSON_AddNumberToObject(j, "seeds", (double)r->seeds);
    cJSON_AddNumberToObject(j, "source_epochs", (double)o->tr.source_epochs);
    if (o->target_prior >= 0)
        cJSON_AddNumberToObject(j, "target_prior", o->target_prior);
    cJSON_AddItemToObject(w, "mean", json_array(mean, r->K));
    cJSON_AddItemToObject(w, "sd", json_array(sd, r->K));
    if (planted)
        cJSON_AddItemToObject(w, "planted", json_array(planted, r->K));
    cJSON_AddItemToObject(j, "weights", w);
    for (int m = 0; m < MODES; m++) {
        double mn, dev, half;
        const double *v = r->acc + m * r->seeds;
        attn_transfer_tool_mean_ci(v, r->seeds, &mn, &dev, &half);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "mean", mn);
        cJSON_AddNumberToObject(e, "ci95_half", isnan(half) ? 0 : half);
        cJSON_AddItemToObject(e, "per_seed", json_array(v, r->seeds));
        cJSON_AddItemToObject(acc, mode_names[m], e);
    }
    cJSON_AddItemToObject(j, "accuracy", acc);
    return j;
}

int attn_transfer_tool_write_json(const char *cmd, const char *path, const cJSON *j)
{
    char *text = j ? cJSON_Print(j) : NULL;
    const size_t n = text ? strlen(text) : 0;
    char *line = text ? malloc(n + 2) : NULL;
    int rc = -1;
    if (!line) {
        fprintf(stderr, "attn %s: out of memory\n", cmd);
    } else {
        memcpy(line, text, n);
        memcpy(line + n, "\n", 2);
        rc = attn_model_tool_write_text(cmd, path, line);
    }
    cJSON_free(text);
    free(line);
    return rc;
}

/* The weights' table, the accuracies and the requested files. 0, or 2 (printed). */
static int report(const transfer_opts *o, const attn_transfer_tool_set *s,
                  const transfer_runs *r, const double *planted)
{
    const size_t K = (size_t)r->K;
    double *mean = malloc(sizeof *mean * K), *sd = malloc(sizeof *sd * K),
           *col = malloc(sizeof *col * (size_t)r->seeds);
    int rc = 2;
    if (!mean || !sd || !col) {
        fprintf(stderr, "attn transfer: out of memory\n");
        goto done;
    }
    weight_stats(r, mean, sd, col);
    print_weights(r, mean, sd, planted);
    print_accuracy(r);
    char title[160];
    snprintf(title, sizeof title, "learned attention over %lld source classifiers (%lld seeds)",
             (long long)r->K, (long long)r->seeds);
    if (o->svg && attn_transfer_tool_svg(CMD, o->svg, r->K, mean, sd, planted, title))
        goto done;
    if (o->json) {
        cJSON *j = report_json(o, s, r, mean, sd, planted);
        const int bad = attn_transfer_tool_write_json(CMD, o->json, j);
        cJSON_Delete(j);
        if (bad)
            goto done;
    }
    rc = 0;
done:
    free(mean);
    free(sd);
    free(col);
    return rc;
}

/* ---- the command ----------------------------------------------------------------------------- */

static void print_header(const transfer_opts *o, const attn_transfer_tool_set *s)
{
    char desc[512];
    attn_transfer_config cfg = o->cfg;
    cfg.features = s->F;
    cfg.sources = s->K;
    attn_transfer_config_describe(&cfg, desc, sizeof desc);
    printf("attn transfer: %lld source examples x %lld attributes, %lld target training and "
           "%lld test examples, %lld features; %s (mode: each of attention, uniform, "
           "target-only); %lld source-only epochs, then %lld epochs, batch %lld, lr %g; %lld "
           "seeds from %llu\n",
           (long long)s->ns, (long long)s->K, (long long)s->nt, (long long)s->ne,
           (long long)s->F, desc, (long long)o->tr.source_epochs, (long long)o->tr.epochs,
           (long long)o->tr.batch, o->tr.lr,
           (long long)o->seeds, (unsigned long long)o->seed);
}

/* Loads the data and the planted mixture, opens the backend, checks the configuration. */
static int prepare(transfer_opts *o, attn_transfer_tool_set *s, double **planted,
                   attn_backend **be)
{
    char bufs[ATTN_TRANSFER_TOOL_FILES][4096], pbuf[4096];
    const char *path[ATTN_TRANSFER_TOOL_FILES];
    *planted = NULL;
    if (resolve_paths(o, bufs, path) || load_set(path, s))
        return 2;
    o->cfg.features = s->F;
    o->cfg.sources = s->K;
    if (o->target_prior >= 0)
        o->cfg.target_decay = o->target_prior / (double)s->nt;
    if (attn_transfer_config_check(&o->cfg) != ATTN_OK) {
        fprintf(stderr, "attn transfer: %s\n", attn_last_error());
        return 2;
    }
    const char *pp = o->planted;
    if (!pp && o->data && attn_model_tool_path(CMD, o->data, attn_transfer_tool_planted_name,
                                               pbuf, sizeof pbuf) == 0)
        pp = pbuf;
    if (pp) {
        double *w = malloc(sizeof *w * (size_t)s->K);
        const int got = w ? read_planted(pp, o->planted != NULL, s->K, w) : -1;
        if (got <= 0)
            free(w);
        if (got < 0)
            return 2;
        *planted = got > 0 ? w : NULL;
    }
    return attn_model_tool_backend(CMD, o->backend, o->device, o->options, be);
}

int attn_cmd_transfer(int argc, char **argv)
{
    transfer_opts o;
    const int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    attn_transfer_tool_set s;
    attn_backend *be = NULL;
    double *planted = NULL;
    memset(&s, 0, sizeof s);
    int rc = prepare(&o, &s, &planted, &be);
    transfer_runs r = {.seeds = o.seeds, .K = s.K};
    if (rc == 0) {
        const size_t n = (size_t)(MODES * o.seeds);
        r.acc = malloc(sizeof *r.acc * n);
        r.alpha = malloc(sizeof *r.alpha * (size_t)(o.seeds * s.K));
        if (!r.acc || !r.alpha) {
            fprintf(stderr, "attn transfer: out of memory\n");
            rc = 2;
        }
    }
    if (rc == 0) {
        print_header(&o, &s);
        rc = run_all(&o, be, &s, &r);
    }
    if (rc == 0)
        rc = report(&o, &s, &r, planted);
    runs_free(&r);
    free(planted);
    set_free(&s);
    attn_backend_close(be);
    return rc;
}
