/* model_train.c - `attn train`: trains a BERT sequence classifier on a data directory as
 * `attn data` writes it (train_ids.npy, train_labels.npy, optional train_mask.npy and test_*):
 * a fresh model (attn_model_create) or a checkpoint, shuffled mini-batches under the seed,
 * AdamW (attn_model_train_step) with linear warmup then linear decay, the loss and accuracies
 * after every epoch, the final model saved as save_pretrained writes it. */
#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_rng.h"
#include "model_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "train"
/* The shuffle's random streams (epoch e uses SHUFFLE_STREAM + e), far from the model's. */
#define SHUFFLE_STREAM ((uint64_t)0x5348554646 << 24)

typedef struct train_opts {
    const char *data, *out, *init, *backend, *device, *options;
    int64_t layers, heads, hidden, intermediate, max_positions, vocab; /* vocab 0: from data */
    int sizes_set;                                                      /* a size option given */
    int64_t epochs, batch;
    double lr, warmup, weight_decay, clip;
    uint64_t seed;
} train_opts;

/* One split of the data set: ids [n, s], labels [n], mask (data NULL when absent). */
typedef struct train_split {
    attn_model_tool_array ids, labels, mask;
    int64_t n, s;
} train_split;

static const char usage[] =
    "usage: attn train --data DIR --out DIR [options]\n"
    "Trains a BERT sequence classifier (BertForSequenceClassification) with cross-entropy and\n"
    "AdamW on DIR/train_ids.npy (int32 or int64 [N, S]), train_labels.npy ([N]) and, when\n"
    "present, train_mask.npy (uint8 or bool [N, S]); test_ids.npy, test_labels.npy and\n"
    "test_mask.npy when present are the test set (`attn data` writes all six). After each epoch\n"
    "prints the mean training loss, the accuracy on the training and test sets and the time;\n"
    "at the end saves config.json and model.safetensors into --out (`attn infer --model`,\n"
    "transformers' from_pretrained). Same data, options, seed and thread count: same bits.\n"
    "model (a fresh one, initialised as transformers does under --seed):\n"
    "  --layers L --heads H --hidden D --intermediate I --max-positions P  (2, 4, 64, 256, 128)\n"
    "  --vocab V          vocabulary size (default: the largest id in the data + 1)\n"
    "                     (labels: the largest label + 1, at least 2)\n"
    "  --init DIR         start from a checkpoint instead (a missing pooler or classifier is\n"
    "                     drawn fresh); the size options then come from it\n"
    "training:\n"
    "  --epochs N         passes over the training set (3)\n"
    "  --batch B          examples per step (32); the last step of an epoch takes the rest\n"
    "  --lr X             peak learning rate (1e-3): it rises linearly over the first\n"
    "                     --warmup F of the steps (0.1), then falls linearly towards 0\n"
    "  --weight-decay X   AdamW's decoupled weight decay on weights (0.01)\n"
    "  --clip X           global gradient-norm clip, 0 = none (1.0)\n"
    "  --seed N           initialisation and the shuffle of every epoch (1)\n"
    "%s"
    "Exit status: 0 trained and saved, 1 the library failed on valid inputs, 2 bad options or\n"
    "data.\n";

/* An integer option: 1 consumed, 0 not one, -1 error. */
static int int_opt(int argc, char **argv, int *i, train_opts *o)
{
    static const char *const names[] = {"--layers",        "--heads", "--hidden",
                                        "--intermediate",  "--max-positions", "--vocab",
                                        "--epochs",        "--batch"};
    int64_t *const dst[] = {&o->layers, &o->heads, &o->hidden, &o->intermediate,
                            &o->max_positions, &o->vocab, &o->epochs, &o->batch};
    const char *v;
    int r;
    for (int k = 0; k < 8; k++)
        if ((r = attn_arg_value(argc, argv, i, names[k], &v)) != 0) {
            o->sizes_set |= k < 6;
            return r < 0 || attn_parse_i64(names[k], v, 1, INT32_MAX, dst[k]) ? -1 : 1;
        }
    return 0;
}

/* A real-valued option: 1 consumed, 0 not one, -1 error. */
static int real_opt(int argc, char **argv, int *i, train_opts *o)
{
    static const char *const names[] = {"--lr", "--warmup", "--weight-decay", "--clip"};
    static const double lo[] = {1e-300, 0, 0, 0}, hi[] = {1e3, 1, 1e3, 1e30};
    double *const dst[] = {&o->lr, &o->warmup, &o->weight_decay, &o->clip};
    const char *v;
    int r;
    for (int k = 0; k < 4; k++)
        if ((r = attn_arg_value(argc, argv, i, names[k], &v)) != 0)
            return r < 0 || attn_parse_f64(names[k], v, lo[k], hi[k], dst[k]) ? -1 : 1;
    return 0;
}

/* Any option: 1 consumed, 0 not one, -1 error. */
static int one_opt(int argc, char **argv, int *i, void *opts)
{
    train_opts *o = opts;
    static const char *const names[] = {"--data", "--out",    "--init",
                                        "--backend", "--device", "--options"};
    const char **const dst[] = {&o->data, &o->out, &o->init, &o->backend, &o->device, &o->options};
    const char *v;
    int64_t n;
    int r;
    for (int k = 0; k < 6; k++)
        if ((r = attn_arg_value(argc, argv, i, names[k], dst[k])) != 0)
            return r;
    if ((r = attn_arg_value(argc, argv, i, "--seed", &v)) != 0)
        return r < 0 || attn_parse_i64("--seed", v, 0, INT64_MAX, &n) ? -1
                                                                       : (o->seed = (uint64_t)n, 1);
    if ((r = int_opt(argc, argv, i, o)) != 0)
        return r;
    return real_opt(argc, argv, i, o);
}

/* 1: --help printed; 0: parsed; -1: usage error (printed). */
static int parse_args(int argc, char **argv, train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->backend = attn_model_tool_default_backend();
    o->layers = 2;
    o->heads = 4;
    o->hidden = 64;
    o->intermediate = 256;
    o->max_positions = 128;
    o->epochs = 3;
    o->batch = 32;
    o->lr = 1e-3;
    o->warmup = 0.1;
    o->weight_decay = 0.01;
    o->clip = 1.0;
    o->seed = 1;
    const int r = attn_model_tool_parse("train", argc, argv, usage, one_opt, o);
    if (r != 0)
        return r;
    const char *err = !o->data ? "--data DIR is required"
                      : !o->out ? "--out DIR is required"
                      : o->init && o->sizes_set
                          ? "--init takes the model's sizes from the checkpoint: leave out "
                            "--layers, --heads, --hidden, --intermediate, --max-positions, --vocab"
                          : NULL;
    if (err)
        fprintf(stderr, "attn train: %s\n", err);
    return err ? -1 : 0;
}

/* ---- data ------------------------------------------------------------------------------------ */

static void split_free(train_split *d)
{
    attn_model_tool_array_free(&d->ids);
    attn_model_tool_array_free(&d->labels);
    attn_model_tool_array_free(&d->mask);
}

/* DIR/<prefix>_<name>.npy into path (n bytes); whether it exists. -1 when the path is too long. */
static int data_file(const char *dir, const char *prefix, const char *name, char *path, size_t n)
{
    char file[64];
    snprintf(file, sizeof file, "%s_%s.npy", prefix, name);
    if (attn_model_tool_path(CMD, dir, file, path, n))
        return -1;
    return access(path, F_OK) == 0;
}

/* prefix's ids, labels and mask (when present). 1 loaded, 0 absent (test only), -1 error. */
static int split_load(const char *dir, const char *prefix, int required, train_split *d)
{
    char path[4096];
    memset(d, 0, sizeof *d);
    const int e = data_file(dir, prefix, "ids", path, sizeof path);
    if (e < 0 || (e == 0 && !required))
        return e;
    if (attn_model_tool_read_i32(CMD, path, 2, 2, &d->ids))
        return -1;
    d->n = d->ids.shape[0];
    d->s = d->ids.shape[1];
    const attn_model_tool_array rows = {.ndim = 1, .shape = {d->n}};
    if (data_file(dir, prefix, "labels", path, sizeof path) < 0 ||
        attn_model_tool_read_i32(CMD, path, 1, 1, &d->labels) ||
        attn_model_tool_same_shape(CMD, &rows, "one per row of the ids", &d->labels, path))
        return -1;
    const int m = data_file(dir, prefix, "mask", path, sizeof path);
    if (m < 0 || (m > 0 && (attn_model_tool_read_u8(CMD, path, 2, 2, &d->mask) ||
                            attn_model_tool_same_shape(CMD, &d->ids, "the ids", &d->mask, path))))
        return -1;
    return 1;
}

/* The largest value of a split's array; -1 when empty. Negative values are an error (-2). */
static int64_t largest(const attn_model_tool_array *a, const char *what)
{
    int64_t top = -1;
    for (int64_t i = 0; i < a->count; i++) {
        const int32_t v = ((const int32_t *)a->data)[i];
        if (v < 0) {
            fprintf(stderr, "attn train: %s: element %lld is negative (%d)\n", what,
                    (long long)i, (int)v);
            return -2;
        }
        top = v > top ? v : top;
    }
    return top;
}

/* The largest id and label over both splits. 0, or -1 (printed). */
static int data_range(const train_split *tr, const train_split *te, int64_t *max_id,
                      int64_t *max_label)
{
    const int64_t a = largest(&tr->ids, "train ids"), b = largest(&te->ids, "test ids");
    const int64_t c = largest(&tr->labels, "train labels"), d = largest(&te->labels, "test labels");
    if (a < -1 || b < -1 || c < -1 || d < -1)
        return -1;
    *max_id = a > b ? a : b;
    *max_label = c > d ? c : d;
    if (te->n && te->s != tr->s) {
        fprintf(stderr, "attn train: test sequences have %lld tokens, training ones %lld\n",
                (long long)te->s, (long long)tr->s);
        return -1;
    }
    return 0;
}

/* ---- the model ------------------------------------------------------------------------------- */

/* A fresh model sized by the options and the data, or the --init checkpoint checked against the
 * data. 0, or the exit code (printed). */
static int model_open(const train_opts *o, attn_backend *be, const train_split *tr,
                      int64_t max_id, int64_t max_label, attn_model **m)
{
    attn_status st;
    if (o->init) {
        st = attn_model_load(be, o->init, ATTN_MODEL_LOAD_NEW_HEAD, o->seed, m);
        if (st != ATTN_OK)
            return attn_model_tool_lib_error(CMD, o->init, st);
    } else {
        attn_model_config c = attn_model_config_default();
        c.num_layers = o->layers;
        c.num_heads = o->heads;
        c.hidden_size = o->hidden;
        c.intermediate_size = o->intermediate;
        c.max_positions = o->max_positions;
        c.vocab_size = o->vocab ? o->vocab : max_id + 1;
        c.num_labels = max_label + 1 > 2 ? max_label + 1 : 2;
        st = attn_model_create(be, &c, o->seed, m);
        if (st != ATTN_OK)
            return attn_model_tool_lib_error(CMD, "model", st);
    }
    const attn_model_config *c = attn_model_get_config(*m);
    const char *err = max_id >= c->vocab_size        ? "an id is outside the vocabulary"
                      : max_label >= c->num_labels   ? "a label is outside the model's labels"
                      : tr->s > c->max_positions     ? "sequences are longer than the positions"
                                                     : NULL;
    if (!err)
        return 0;
    fprintf(stderr, "attn train: %s (ids < %lld, labels < %lld, %lld tokens <= %lld "
            "positions)\n", err, (long long)c->vocab_size, (long long)c->num_labels,
            (long long)tr->s, (long long)c->max_positions);
    attn_model_free(*m);
    *m = NULL;
    return 2;
}

/* ---- training -------------------------------------------------------------------------------- */

/* The rows of one step, gathered contiguous. */
typedef struct train_batch {
    int32_t *ids, *labels;
    uint8_t *mask;
    float *logits; /* the evaluation's */
} train_batch;

static void batch_free(train_batch *b)
{
    free(b->ids);
    free(b->labels);
    free(b->mask);
    free(b->logits);
}

static int batch_alloc(int64_t batch, int64_t s, int64_t classes, train_batch *b)
{
    const size_t cells = (size_t)(batch * s);
    b->ids = malloc(cells * sizeof *b->ids);
    b->labels = malloc((size_t)batch * sizeof *b->labels);
    b->mask = malloc(cells);
    b->logits = malloc((size_t)(batch * classes) * sizeof *b->logits);
    return b->ids && b->labels && b->mask && b->logits ? 0 : -1;
}

/* Rows order[0 .. n) of the split into the batch; the input over them. */
static attn_model_input batch_gather(const train_split *d, const int64_t *order, int64_t n,
                                     train_batch *b)
{
    const int64_t S = d->s;
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = order[i];
        memcpy(b->ids + i * S, (const int32_t *)d->ids.data + r * S, sizeof(int32_t) * (size_t)S);
        b->labels[i] = ((const int32_t *)d->labels.data)[r];
        if (d->mask.data)
            memcpy(b->mask + i * S, (const uint8_t *)d->mask.data + r * S, (size_t)S);
    }
    return (attn_model_input){.batch = n, .seq = S, .ids = b->ids,
                              .attention_mask = d->mask.data ? b->mask : NULL};
}

/* The fraction of the split the model classifies right (argmax, ties to the lower label). */
static attn_status accuracy(attn_model *m, const train_split *d, const int64_t *order,
                            int64_t batch, train_batch *b, double *acc)
{
    const int64_t C = attn_model_get_config(m)->num_labels;
    int64_t right = 0;
    for (int64_t b0 = 0; b0 < d->n; b0 += batch) {
        const int64_t n = d->n - b0 < batch ? d->n - b0 : batch;
        const attn_model_input in = batch_gather(d, order + b0, n, b);
        const attn_model_outputs out = {.logits = b->logits};
        const attn_status st = attn_model_forward(m, &in, &out);
        if (st != ATTN_OK)
            return st;
        for (int64_t i = 0; i < n; i++) {
            int64_t best = 0;
            for (int64_t c = 1; c < C; c++)
                best = b->logits[i * C + c] > b->logits[i * C + best] ? c : best;
            right += best == b->labels[i];
        }
    }
    *acc = d->n ? (double)right / (double)d->n : 0;
    return ATTN_OK;
}

/* Fisher-Yates under the seed: epoch e's order of the n rows. */
static void shuffle(int64_t *order, int64_t n, uint64_t seed, int64_t epoch)
{
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(attn_rng_unit(seed, SHUFFLE_STREAM + (uint64_t)epoch, (uint64_t)i) *
                              (double)(i + 1));
        j = j <= i ? j : i;
        const int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* The learning rate of step t (0-based) of total: linear warmup over the first `warm` steps
 * (the first step already at lr / warm), then linear decay ending at lr / (total - warm). */
static double lr_at(double lr, int64_t t, int64_t warm, int64_t total)
{
    if (t < warm)
        return lr * (double)(t + 1) / (double)warm;
    return lr * (double)(total - t) / (double)(total - warm);
}

/* The whole run's state. */
typedef struct trainer {
    const train_opts *o;
    attn_model *m;
    const train_split *tr, *te;
    int64_t *order, *identity;
    train_batch b;
    int64_t steps, warm; /* per epoch, warmup steps */
} trainer;

/* One epoch: its steps, then the evaluation; prints its line. ATTN_OK or the failure. */
static attn_status epoch(trainer *t, int64_t e, const char **what)
{
    const train_opts *o = t->o;
    attn_model_adamw opt = attn_model_adamw_default();
    opt.weight_decay = o->weight_decay;
    opt.clip_norm = o->clip;
    const double t0 = attn_model_tool_now();
    double loss_sum = 0;
    attn_status st = ATTN_OK;
    shuffle(t->order, t->tr->n, o->seed, e);
    *what = "training step";
    for (int64_t k = 0; st == ATTN_OK && k < t->steps; k++) {
        const int64_t b0 = k * o->batch, n = t->tr->n - b0 < o->batch ? t->tr->n - b0 : o->batch;
        const attn_model_input in = batch_gather(t->tr, t->order + b0, n, &t->b);
        double loss = 0;
        opt.lr = lr_at(o->lr, e * t->steps + k, t->warm, o->epochs * t->steps);
        st = attn_model_train_step(t->m, &in, t->b.labels, &opt, &loss, NULL);
        loss_sum += loss * (double)n;
    }
    if (st != ATTN_OK)
        return st;
    const double t1 = attn_model_tool_now();
    double train_acc = 0, test_acc = 0;
    *what = "evaluation";
    st = accuracy(t->m, t->tr, t->identity, o->batch, &t->b, &train_acc);
    if (st == ATTN_OK && t->te->n)
        st = accuracy(t->m, t->te, t->identity, o->batch, &t->b, &test_acc);
    if (st != ATTN_OK)
        return st;
    printf("epoch %lld/%lld: loss %.4f, train accuracy %.2f %%", (long long)(e + 1),
           (long long)o->epochs, loss_sum / (double)t->tr->n, 100 * train_acc);
    if (t->te->n)
        printf(", test accuracy %.2f %%", 100 * test_acc);
    printf(", %.2f s (+ %.2f s evaluation)\n", t1 - t0, attn_model_tool_now() - t1);
    fflush(stdout);
    return ATTN_OK;
}

static void print_header(const trainer *t, attn_backend *be)
{
    const train_opts *o = t->o;
    printf("attn train: %s", o->init ? "from a checkpoint, " : "");
    attn_model_tool_print_sizes(stdout, t->m);
    printf("; %lld training and %lld test sequences of %lld tokens\n", (long long)t->tr->n,
           (long long)t->te->n, (long long)t->tr->s);
    printf("%lld epochs x %lld steps of %lld; lr %g (warmup %lld steps, then linear decay), "
           "weight decay %g, clip %g; seed %llu; backend %s\n",
           (long long)o->epochs, (long long)t->steps, (long long)o->batch, o->lr,
           (long long)t->warm, o->weight_decay, o->clip, (unsigned long long)o->seed,
           attn_backend_describe(be));
}

/* Every epoch, then the save. 0, or the exit code (printed). */
static int train(trainer *t, attn_backend *be)
{
    const train_opts *o = t->o;
    const int64_t n = t->tr->n > t->te->n ? t->tr->n : t->te->n;
    t->steps = (t->tr->n + o->batch - 1) / o->batch;
    t->warm = (int64_t)(o->warmup * (double)(o->epochs * t->steps) + 0.5);
    t->order = malloc(sizeof(int64_t) * (size_t)n);
    t->identity = malloc(sizeof(int64_t) * (size_t)n);
    if (!t->order || !t->identity ||
        batch_alloc(o->batch < n ? o->batch : n, t->tr->s,
                    attn_model_get_config(t->m)->num_labels, &t->b)) {
        fprintf(stderr, "attn train: out of memory\n");
        return 2;
    }
    for (int64_t i = 0; i < n; i++)
        t->identity[i] = i;
    print_header(t, be);
    fflush(stdout);
    const char *what = "";
    for (int64_t e = 0; e < o->epochs; e++) {
        const attn_status st = epoch(t, e, &what);
        if (st != ATTN_OK)
            return attn_model_tool_lib_error(CMD, what, st);
    }
    const attn_status st = attn_model_save(t->m, o->out);
    if (st != ATTN_OK)
        return attn_model_tool_lib_error(CMD, o->out, st);
    printf("saved %s\n", o->out);
    return 0;
}

int attn_cmd_train(int argc, char **argv)
{
    train_opts o;
    const int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    train_split tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    int64_t max_id = 0, max_label = 0;
    attn_backend *be = NULL;
    trainer t = {.o = &o, .tr = &tr, .te = &te};
    int rc = split_load(o.data, "train", 1, &tr) < 0 || split_load(o.data, "test", 0, &te) < 0 ||
                     data_range(&tr, &te, &max_id, &max_label) || attn_model_tool_mkdirs(CMD, o.out)
                 ? 2
                 : 0;
    if (rc == 0 && tr.n < 1) {
        fprintf(stderr, "attn train: %s: no training examples\n", o.data);
        rc = 2;
    }
    rc = rc ? rc : attn_model_tool_backend(CMD, o.backend, o.device, o.options, &be);
    rc = rc ? rc : model_open(&o, be, &tr, max_id, max_label, &t.m);
    rc = rc ? rc : train(&t, be);
    batch_free(&t.b);
    free(t.order);
    free(t.identity);
    if (t.m)
        attn_model_free(t.m);
    attn_backend_close(be);
    split_free(&tr);
    split_free(&te);
    return rc;
}
