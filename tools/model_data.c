/* model_data.c - `attn data`: writes a synthetic sequence-classification data set as .npy
 * files (train_* and test_*: ids, labels, attention mask, rationale) for `attn train` and
 * `attn infer`. The planted task's generator is model_planted.c; docs/model.md describes it.
 * `--task transfer` hands the command line to the transfer room's benchmark (transfer_data.c). */
#include "attn_args.h"
#include "attn_cmds.h"
#include "model_planted.h"
#include "model_tool.h"
#include "transfer_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "data"

typedef struct data_opts {
    const char *out;
    int64_t n_train, n_test;
    int min_seq_set;
    attn_model_planted p; /* everything but n and split */
} data_opts;

static const char usage[] =
    "usage: attn data [--task planted] --out DIR [options]\n"
    "Writes a synthetic sequence-classification data set: DIR/train_ids.npy (int32 [N, S]),\n"
    "train_labels.npy (int32 [N]), train_mask.npy (uint8 [N, S]: 1 a token, 0 padding),\n"
    "train_rationale.npy (uint8 [N, S]: 1 at the tokens that decide the label), and the same\n"
    "four test_*.npy files.\n"
    "The planted task: ids 0 [PAD], 1 [CLS], 2 [SEP]; label 0's signal ids are 3 .. 2+M,\n"
    "label 1's 3+M .. 2+2M (M = --signals), the distractors the rest of the vocabulary. Each\n"
    "example draws its label (0 or 1, fair coin) and its length L in [min-seq, seq]: [CLS] at\n"
    "position 0, [SEP] at L-1, [PAD] after (mask 0); K = --planted distinct positions among\n"
    "1 .. L-2 hold signal ids of the label's set, every other position a distractor drawn\n"
    "uniformly. Which set the planted ids come from decides the label, and the rationale is\n"
    "exactly the planted positions. Every draw comes from the counter-based generator: the\n"
    "same options give the same bytes; train and test use disjoint random streams.\n"
    "options:\n"
    "  --task planted     this task; `--task transfer`: the attribute-transfer benchmark\n"
    "                     (attn data --task transfer --help)\n"
    "  --out DIR          output directory, created with its parents when missing\n"
    "  --n-train N        training examples (4000)\n"
    "  --n-test N         test examples (1000; 0 writes empty test files)\n"
    "  --seq S            row length: the longest example (32)\n"
    "  --min-seq S        the shortest example (default: seq, every example full length)\n"
    "  --vocab V          vocabulary size (1000)\n"
    "  --planted K        signal tokens planted per example (2)\n"
    "  --signals M        signal ids per label (4)\n"
    "  --seed N           (1)\n"
    "Exit status: 0 written, 2 bad options or a file error.\n";

/* A size option: 1 consumed, 0 not one, -1 error. */
static int size_opt(int argc, char **argv, int *i, data_opts *o)
{
    static const char *const names[] = {"--n-train", "--n-test", "--seq",    "--min-seq",
                                        "--vocab",   "--planted", "--signals"};
    int64_t *const dst[] = {&o->n_train, &o->n_test,   &o->p.seq,    &o->p.min_seq,
                            &o->p.vocab, &o->p.planted, &o->p.signals};
    const char *v;
    int r;
    for (int k = 0; k < 7; k++)
        if ((r = attn_arg_value(argc, argv, i, names[k], &v)) != 0) {
            o->min_seq_set |= k == 3;
            return r < 0 || attn_parse_i64(names[k], v, 0, INT32_MAX, dst[k]) ? -1 : 1;
        }
    return 0;
}

/* Any option: 1 consumed, 0 not one, -1 error. */
static int one_opt(int argc, char **argv, int *i, data_opts *o)
{
    static const char *const tasks[] = {"planted", NULL};
    const char *v;
    int64_t n;
    int r, task;
    if ((r = size_opt(argc, argv, i, o)) != 0)
        return r;
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
    o->n_train = 4000;
    o->n_test = 1000;
    o->p = (attn_model_planted){.seq = 32, .vocab = 1000, .planted = 2, .signals = 4, .seed = 1};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        const int r = one_opt(argc, argv, &i, o);
        if (r == 0)
            fprintf(stderr, "attn data: unknown option '%s' (see attn data --help)\n", argv[i]);
        if (r <= 0)
            return -1;
    }
    if (!o->out) {
        fprintf(stderr, "attn data: --out DIR is required\n");
        return -1;
    }
    if (o->n_train < 1) {
        fprintf(stderr, "attn data: --n-train must be at least 1\n");
        return -1;
    }
    o->p.min_seq = o->min_seq_set ? o->p.min_seq : o->p.seq;
    char err[256];
    o->p.n = o->n_train > o->n_test ? o->n_train : o->n_test;
    if (attn_model_planted_check(&o->p, err, sizeof err)) {
        fprintf(stderr, "attn data: %s\n", err);
        return -1;
    }
    return 0;
}

/* One split: generate it and write its four files. 0, or -1 (printed). */
static int write_split(const data_opts *o, const char *prefix, int64_t n, uint64_t split)
{
    attn_model_planted p = o->p;
    p.n = n;
    p.split = split;
    const size_t cells = (size_t)(n * p.seq) + 1;
    int32_t *ids = malloc(cells * sizeof *ids), *labels = malloc((size_t)(n + 1) * sizeof *labels);
    uint8_t *rationale = malloc(cells), *mask = malloc(cells);
    int rc = -1;
    if (!ids || !labels || !rationale || !mask) {
        fprintf(stderr, "attn data: out of memory (%lld examples of %lld tokens)\n",
                (long long)n, (long long)p.seq);
        goto done;
    }
    attn_model_planted_generate(&p, ids, labels, rationale, mask);
    const int64_t shape[2] = {n, p.seq};
    const struct {
        const char *name;
        attn_npy_dtype t;
        int ndim;
        const void *data;
    } files[] = {{"ids", ATTN_NPY_I32, 2, ids},
                 {"labels", ATTN_NPY_I32, 1, labels},
                 {"mask", ATTN_NPY_U8, 2, mask},
                 {"rationale", ATTN_NPY_U8, 2, rationale}};
    for (int f = 0; f < 4; f++) {
        char name[64], path[4096];
        snprintf(name, sizeof name, "%s_%s.npy", prefix, files[f].name);
        if (attn_model_tool_path(CMD, o->out, name, path, sizeof path) ||
            attn_model_tool_save(CMD, path, files[f].t, files[f].ndim, shape, files[f].data))
            goto done;
    }
    rc = 0;
done:
    free(ids);
    free(labels);
    free(rationale);
    free(mask);
    return rc;
}

/* Does the command line ask for --task transfer (the transfer room's benchmark)? */
static int is_transfer(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--task=transfer") == 0 ||
            (strcmp(argv[i], "--task") == 0 && i + 1 < argc &&
             strcmp(argv[i + 1], "transfer") == 0))
            return 1;
    return 0;
}

int attn_cmd_data(int argc, char **argv)
{
    if (is_transfer(argc, argv))
        return attn_transfer_tool_data(argc, argv);
    data_opts o;
    const int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    if (attn_model_tool_mkdirs(CMD, o.out) || write_split(&o, "train", o.n_train, 0) ||
        write_split(&o, "test", o.n_test, 1))
        return 2;
    const int64_t m = o.p.signals, a = ATTN_MODEL_FIRST_SIGNAL;
    printf("attn data: planted task, %lld train + %lld test examples of %lld tokens (shortest "
           "%lld), vocab %lld, %lld planted per example; signal ids %lld..%lld (label 0), "
           "%lld..%lld (label 1); seed %llu; wrote %s\n",
           (long long)o.n_train, (long long)o.n_test, (long long)o.p.seq,
           (long long)o.p.min_seq, (long long)o.p.vocab, (long long)o.p.planted, (long long)a,
           (long long)(a + m - 1), (long long)(a + m), (long long)(a + 2 * m - 1),
           (unsigned long long)o.p.seed, o.out);
    return 0;
}
