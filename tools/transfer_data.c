/* transfer_data.c - `attn data --task transfer`: writes the synthetic attribute-transfer
 * benchmark (transfer_planted.h) as the six .npy files `attn transfer` reads, plus
 * planted.json naming the sources the target mixes and their weights. docs/transfer.md
 * describes it. */
#include "attn_args.h"
#include "transfer_planted.h"
#include "transfer_tool.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "data"

typedef struct data_opts {
    const char *out;
    int64_t n[3]; /* examples of each split: source, target training, test */
    attn_transfer_planted p;
} data_opts;

static const char usage[] =
    "usage: attn data --task transfer --out DIR [options]\n"
    "Writes a synthetic attribute-transfer benchmark with a planted relatedness:\n"
    "DIR/source_x.npy (float32 [Ns, F]), source_y.npy (uint8 [Ns, K]), target_x.npy /\n"
    "target_y.npy (the few labelled target examples: [Nt, F], uint8 [Nt]), test_x.npy /\n"
    "test_y.npy (target examples to measure on) and planted.json (the mixture below).\n"
    "Features: domain d has mean mu_d ~ separation * N(0, I/F); an example is mu_d + N(0, I).\n"
    "Target examples come from domain 0, source examples from domains 1 .. D-1 uniformly\n"
    "(all from domain 0 when D = 1). Source attribute k is 1 where a_k . x + b_k > 0 (a_k a\n"
    "random unit direction, b_k centring it on the source domains). The target attribute\n"
    "is 1 where sum_r w_r (a_{s_r} . x + b_{s_r}) + own a_t . x + b_t > 0: R sources s_r\n"
    "drawn without replacement with weights w_r (uniform in [0.5, 1.5), scaled to sum to\n"
    "1 - own) plus its own direction a_t, b_t centring it on domain 0. Every label is then\n"
    "flipped with probability --noise. Every draw comes from the counter-based generator:\n"
    "the same options give the same bytes; an example depends on its split and index only.\n"
    "options:\n"
    "  --task transfer    this benchmark (`attn data --help`: the planted sequence task)\n"
    "  --out DIR          output directory, created with its parents when missing\n"
    "  --n-source N       source examples (2000)\n"
    "  --target-train N   labelled target examples (20)\n"
    "  --n-test N         target test examples (2000)\n"
    "  --features F       feature width (32)\n"
    "  --domains D        latent domains (3)\n"
    "  --sources K        source attributes (12)\n"
    "  --related R        sources the target mixes (3)\n"
    "  --own X            weight of the target's own part, [0, 1) (0.25)\n"
    "  --separation X     spread of the domain means (1)\n"
    "  --noise X          label flip probability, [0, 0.5) (0)\n"
    "  --seed N           (1)\n"
    "Exit status: 0 written, 2 bad options or a file error.\n";

/* An integer option: 1 consumed, 0 not one, -1 error. */
static int int_opt(int argc, char **argv, int *i, data_opts *o)
{
    static const char *const names[] = {"--n-source", "--target-train", "--n-test",
                                        "--features", "--domains",      "--sources",
                                        "--related"};
    int64_t *const dst[] = {&o->n[0],         &o->n[1],         &o->n[2],        &o->p.features,
                            &o->p.domains,    &o->p.sources,    &o->p.related};
    const char *v;
    int r;
    for (int k = 0; k < 7; k++)
        if ((r = attn_arg_value(argc, argv, i, names[k], &v)) != 0)
            return r < 0 || attn_parse_i64(names[k], v, 0, INT32_MAX, dst[k]) ? -1 : 1;
    return 0;
}

/* Any option: 1 consumed, 0 not one, -1 error. */
static int one_opt(int argc, char **argv, int *i, void *opts)
{
    data_opts *o = opts;
    static const char *const tasks[] = {"transfer", NULL};
    static const char *const reals[] = {"--own", "--separation", "--noise"};
    double *const rdst[] = {&o->p.own, &o->p.separation, &o->p.noise};
    const char *v;
    int64_t n;
    int r, task;
    if ((r = int_opt(argc, argv, i, o)) != 0)
        return r;
    for (int k = 0; k < 3; k++)
        if ((r = attn_arg_value(argc, argv, i, reals[k], &v)) != 0)
            return r < 0 || attn_parse_f64(reals[k], v, -1e300, 1e300, rdst[k]) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--out", &o->out)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--task", &v)) != 0)
        return r < 0 || attn_parse_choice("--task", v, tasks, &task) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--seed", &v)) != 0)
        return r < 0 || attn_parse_i64("--seed", v, 0, INT64_MAX, &n)
                   ? -1
                   : (o->p.seed = (uint64_t)n, 1);
    return 0;
}

/* 1: --help printed; 0: parsed; -1: usage error (printed). */
static int parse_args(int argc, char **argv, data_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n[0] = 2000;
    o->n[1] = 20;
    o->n[2] = 2000;
    o->p = (attn_transfer_planted){.features = 32, .domains = 3, .sources = 12, .related = 3,
                                   .own = 0.25, .separation = 1, .noise = 0, .seed = 1};
    const int r = attn_model_tool_parse(CMD, argc, argv, usage, one_opt, o);
    if (r != 0)
        return r;
    char err[256];
    if (!o->out)
        snprintf(err, sizeof err, "--out DIR is required");
    else if (o->n[0] < 1 || o->n[1] < 1)
        snprintf(err, sizeof err, "--n-source and --target-train must be at least 1");
    else if (attn_transfer_planted_check(&o->p, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "attn data: %s\n", err);
    return -1;
}

/* One split: generated and written as its two files (names[0] the features). 0, or -1. */
static int write_split(const data_opts *o, const attn_transfer_truth *t, attn_transfer_split sp,
                       const char *const *names)
{
    const int64_t n = o->n[sp], F = t->F, ny = sp == ATTN_TRANSFER_SPLIT_SOURCE ? t->K : 1;
    float *x = malloc(sizeof *x * (size_t)(n * F + 1));
    uint8_t *y = malloc((size_t)(n * ny + 1));
    int rc = -1;
    char path[4096];
    if (!x || !y || attn_transfer_planted_generate(&o->p, t, sp, n, x, y))
        fprintf(stderr, "attn data: out of memory (%lld examples of %lld features)\n",
                (long long)n, (long long)F);
    else if (attn_model_tool_path(CMD, o->out, names[0], path, sizeof path) == 0 &&
             attn_model_tool_save(CMD, path, ATTN_NPY_F32, 2, (int64_t[]){n, F}, x) == 0 &&
             attn_model_tool_path(CMD, o->out, names[1], path, sizeof path) == 0 &&
             attn_model_tool_save(CMD, path, ATTN_NPY_U8, sp == ATTN_TRANSFER_SPLIT_SOURCE ? 2 : 1,
                                  (int64_t[]){n, ny}, y) == 0)
        rc = 0;
    free(x);
    free(y);
    return rc;
}

/* planted.json: the options and the mixture. */
static cJSON *planted_json(const data_opts *o, const attn_transfer_truth *t)
{
    cJSON *j = cJSON_CreateObject(), *mix = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "task", "transfer");
    static const char *const sizes[] = {"n_source", "target_train", "n_test"};
    for (int k = 0; k < 3; k++)
        cJSON_AddNumberToObject(j, sizes[k], (double)o->n[k]);
    cJSON_AddNumberToObject(j, "features", (double)t->F);
    cJSON_AddNumberToObject(j, "domains", (double)t->D);
    cJSON_AddNumberToObject(j, "sources", (double)t->K);
    cJSON_AddNumberToObject(j, "related", (double)t->R);
    cJSON_AddNumberToObject(j, "own", o->p.own);
    cJSON_AddNumberToObject(j, "separation", o->p.separation);
    cJSON_AddNumberToObject(j, "noise", o->p.noise);
    cJSON_AddNumberToObject(j, "seed", (double)o->p.seed);
    for (int64_t r = 0; r < t->R; r++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "source", (double)t->related[r]);
        cJSON_AddNumberToObject(e, "weight", t->weight[r]);
        cJSON_AddItemToArray(mix, e);
    }
    cJSON_AddItemToObject(j, "planted", mix);
    return j;
}

static int write_planted(const data_opts *o, const attn_transfer_truth *t)
{
    char path[4096];
    if (attn_model_tool_path(CMD, o->out, attn_transfer_tool_planted_name, path, sizeof path))
        return -1;
    cJSON *j = planted_json(o, t);
    const int rc = attn_transfer_tool_write_json(CMD, path, j);
    cJSON_Delete(j);
    return rc;
}

static void print_summary(const data_opts *o, const attn_transfer_truth *t)
{
    printf("attn data: transfer task, %lld source examples x %lld attributes, %lld target "
           "training + %lld test examples, %lld features, %lld domains; the target mixes",
           (long long)o->n[0], (long long)t->K, (long long)o->n[1], (long long)o->n[2],
           (long long)t->F, (long long)t->D);
    for (int64_t r = 0; r < t->R; r++)
        printf(" %.3f x source %lld%s", t->weight[r], (long long)t->related[r],
               r + 1 < t->R ? "," : "");
    printf(" and %.3f x its own part; seed %llu; wrote %s\n", t->own,
           (unsigned long long)o->p.seed, o->out);
}

int attn_transfer_tool_data(int argc, char **argv)
{
    data_opts o;
    const int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    attn_transfer_truth t;
    if (attn_transfer_truth_make(&o.p, &t)) {
        fprintf(stderr, "attn data: out of memory\n");
        return 2;
    }
    const char *const *names = attn_transfer_tool_file_names;
    int rc = attn_model_tool_mkdirs(CMD, o.out) ||
             write_split(&o, &t, ATTN_TRANSFER_SPLIT_SOURCE, names + ATTN_TRANSFER_TOOL_SOURCE_X) ||
             write_split(&o, &t, ATTN_TRANSFER_SPLIT_TRAIN, names + ATTN_TRANSFER_TOOL_TARGET_X) ||
             write_split(&o, &t, ATTN_TRANSFER_SPLIT_TEST, names + ATTN_TRANSFER_TOOL_TEST_X) ||
             write_planted(&o, &t)
                 ? 2
                 : 0;
    if (rc == 0)
        print_summary(&o, &t);
    attn_transfer_truth_free(&t);
    return rc;
}
