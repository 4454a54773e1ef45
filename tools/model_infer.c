/* model_infer.c - `attn infer`: a saved BERT classifier (attn_model_load) on token ids from a
 * .npy file, batch by batch: the logits and optionally every intermediate the forward offers
 * (attention maps, attention received per key, hidden states, attention residuals, pooled
 * output) and the gradient of a logit or of the cross-entropy with respect to the embedding
 * output (attn_model_backward), each scattered into one array over all rows. */
#include "attn_args.h"
#include "attn_cmds.h"
#include "model_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "infer"

/* The output files, in the order of their options. */
enum { O_LOGITS, O_ATTENTIONS, O_KEY_SCORE, O_HIDDEN, O_RESIDUAL, O_POOLED, O_GRAD, O_COUNT };
static const char *const out_opts[O_COUNT] = {"--out",    "--attentions", "--key-score",
                                              "--hidden", "--attn-residual", "--pooled",
                                              "--grad-embed"};

typedef struct infer_opts {
    const char *model, *ids, *mask, *types, *labels, *backend, *device, *options;
    const char *out[O_COUNT];
    int64_t batch, grad_logit; /* grad_logit -1: none */
    int new_head;
    uint64_t seed;
} infer_opts;

/* The inputs, dense int32 / uint8, [N, S]. */
typedef struct infer_inputs {
    attn_model_tool_array ids, mask, types, labels;
    int64_t n, s;
} infer_inputs;

/* One output: the whole array [outer, N, row...] and, when a batch's rows are not contiguous
 * in it (outer > 1 and more than one batch), the batch's [outer, B, row...] scratch. */
typedef struct infer_out {
    int64_t outer, row; /* row: floats per sequence */
    int ndim;
    int64_t shape[5];
    float *all, *scratch;
} infer_out;

static const char usage[] =
    "usage: attn infer --model DIR --ids IDS.npy --out LOGITS.npy [options]\n"
    "Runs a BERT sequence classifier saved as save_pretrained writes it (config.json and\n"
    "model.safetensors: `attn train`, or transformers' BertForSequenceClassification) on\n"
    "token ids, --batch rows at a time, and writes the logits f32 [N, C].\n"
    "inputs:\n"
    "  --model DIR        the checkpoint\n"
    "  --ids FILE         int32 or int64, [N, S] (or [S]: one sequence, N = 1)\n"
    "  --mask FILE        attention mask, uint8 or bool, IDS's shape: 1 a token, 0 padding\n"
    "  --types FILE       token types (segment ids), int32 or int64, IDS's shape (default 0)\n"
    "  --new-head         a checkpoint without pooler or classifier (a pre-trained BertModel)\n"
    "                     gets fresh ones drawn under --seed N (1)\n"
    "optional outputs (f32; L layers, H heads, d hidden size):\n"
    "  --attentions FILE  [L, N, H, S, S]: each layer's attention probabilities\n"
    "  --key-score FILE   [L, N, S, H]: the attention each key receives, summed over queries\n"
    "  --hidden FILE      [L+1, N, S, d]: the embedding output, then each layer's output\n"
    "  --attn-residual FILE  [L, N, S, d]: each layer's input plus its attention output\n"
    "  --pooled FILE      [N, d]: the pooler's output tanh(W h_CLS + b)\n"
    "  --grad-embed FILE  [N, S, d]: the gradient with respect to the embedding output of\n"
    "    --grad-logit K     each row's logit K, or\n"
    "    --labels FILE      the mean cross-entropy over the N rows against labels (int32 or\n"
    "                       int64 [N])\n"
    "run:\n"
    "  --batch B          rows per forward (32)\n"
    "%s"
    "Prints one line: the model's sizes, N, S, the backend and the time.\n"
    "Exit status: 0 written, 1 the library failed on valid inputs, 2 bad options or inputs.\n";

/* A file option: 1 consumed, 0 not one, -1 error. */
static int file_opt(int argc, char **argv, int *i, infer_opts *o)
{
    static const char *const names[] = {"--model", "--ids", "--mask", "--types", "--labels",
                                        "--backend", "--device", "--options"};
    const char **const dst[] = {&o->model,  &o->ids,     &o->mask,   &o->types,
                                &o->labels, &o->backend, &o->device, &o->options};
    int r;
    for (int k = 0; k < 8; k++)
        if ((r = attn_arg_value(argc, argv, i, names[k], dst[k])) != 0)
            return r;
    for (int k = 0; k < O_COUNT; k++)
        if ((r = attn_arg_value(argc, argv, i, out_opts[k], &o->out[k])) != 0)
            return r;
    return 0;
}

/* Any option: 1 consumed, 0 not one, -1 error. */
static int one_opt(int argc, char **argv, int *i, void *opts)
{
    infer_opts *o = opts;
    const char *v;
    int64_t n;
    int r;
    if ((r = file_opt(argc, argv, i, o)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--batch", &v)) != 0)
        return r < 0 || attn_parse_i64("--batch", v, 1, INT32_MAX, &o->batch) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--grad-logit", &v)) != 0)
        return r < 0 || attn_parse_i64("--grad-logit", v, 0, INT32_MAX, &o->grad_logit) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--seed", &v)) != 0)
        return r < 0 || attn_parse_i64("--seed", v, 0, INT64_MAX, &n) ? -1
                                                                       : (o->seed = (uint64_t)n, 1);
    if ((r = attn_arg_flag(argv, *i, "--new-head")) != 0)
        return r < 0 ? -1 : (o->new_head = 1);
    return 0;
}

/* The options' combinations; 0, or -1 (printed). */
static int check_opts(const infer_opts *o)
{
    const char *missing = !o->model ? "--model DIR" : !o->ids ? "--ids FILE"
                                                  : !o->out[O_LOGITS] ? "--out FILE" : NULL;
    const char *err = NULL;
    if (missing) {
        fprintf(stderr, "attn infer: %s is required (see attn infer --help)\n", missing);
        return -1;
    }
    if (o->out[O_GRAD] && (o->grad_logit >= 0) == (o->labels != NULL))
        err = "--grad-embed needs exactly one of --grad-logit K and --labels FILE";
    else if (!o->out[O_GRAD] && (o->grad_logit >= 0 || o->labels))
        err = "--grad-logit and --labels go with --grad-embed FILE";
    if (err)
        fprintf(stderr, "attn infer: %s\n", err);
    return err ? -1 : 0;
}

/* 1: --help printed; 0: parsed; -1: usage error (printed). */
static int parse_args(int argc, char **argv, infer_opts *o)
{
    memset(o, 0, sizeof *o);
    o->backend = attn_model_tool_default_backend();
    o->batch = 32;
    o->grad_logit = -1;
    o->seed = 1;
    const int r = attn_model_tool_parse("infer", argc, argv, usage, one_opt, o);
    if (r != 0)
        return r;
    return check_opts(o);
}

/* ---- inputs ---------------------------------------------------------------------------------- */

static void inputs_free(infer_inputs *in)
{
    attn_model_tool_array_free(&in->ids);
    attn_model_tool_array_free(&in->mask);
    attn_model_tool_array_free(&in->types);
    attn_model_tool_array_free(&in->labels);
}

/* The files of the options, shapes checked against the ids. 0, or -1 (printed). */
static int inputs_load(const infer_opts *o, infer_inputs *in)
{
    memset(in, 0, sizeof *in);
    if (attn_model_tool_read_i32(CMD, o->ids, 1, 2, &in->ids))
        return -1;
    in->n = in->ids.ndim == 2 ? in->ids.shape[0] : 1;
    in->s = in->ids.shape[in->ids.ndim - 1];
    if (in->n < 1 || in->s < 1) {
        fprintf(stderr, "attn infer: %s: no tokens\n", o->ids);
        return -1;
    }
    if ((o->mask && (attn_model_tool_read_u8(CMD, o->mask, 1, 2, &in->mask) ||
                     attn_model_tool_same_shape(CMD, &in->ids, "--ids", &in->mask, "--mask"))) ||
        (o->types && (attn_model_tool_read_i32(CMD, o->types, 1, 2, &in->types) ||
                      attn_model_tool_same_shape(CMD, &in->ids, "--ids", &in->types, "--types"))))
        return -1;
    const attn_model_tool_array rows = {.ndim = 1, .shape = {in->n}};
    if (o->labels && (attn_model_tool_read_i32(CMD, o->labels, 1, 1, &in->labels) ||
                      attn_model_tool_same_shape(CMD, &rows, "one per row of --ids",
                                                 &in->labels, "--labels")))
        return -1;
    return 0;
}

/* ---- outputs --------------------------------------------------------------------------------- */

/* Sizes of output k for the model's configuration: file dims [layers?, N, row dims...]. */
static void out_shape(int k, const attn_model_config *c, int64_t n, int64_t s, infer_out *r)
{
    const int64_t L = c->num_layers, H = c->num_heads, d = c->hidden_size, C = c->num_labels;
    static const int ndims[O_COUNT] = {2, 5, 4, 4, 4, 2, 3};
    static const int layer_axis[O_COUNT] = {0, 1, 1, 1, 1, 0, 0};
    const int64_t shapes[O_COUNT][5] = {{n, C},           {L, n, H, s, s}, {L, n, s, H},
                                        {L + 1, n, s, d}, {L, n, s, d},    {n, d},
                                        {n, s, d}};
    r->ndim = ndims[k];
    memcpy(r->shape, shapes[k], sizeof r->shape);
    r->outer = layer_axis[k] ? r->shape[0] : 1;
    r->row = 1;
    for (int dd = layer_axis[k] + 1; dd < r->ndim; dd++)
        r->row *= r->shape[dd];
}

static void outs_free(infer_out *r)
{
    for (int k = 0; k < O_COUNT; k++) {
        free(r[k].all);
        free(r[k].scratch);
    }
}

/* floats as a byte count, 0 on overflow or for 0 floats. */
static size_t float_bytes(int64_t a, int64_t b, int64_t c)
{
    int64_t n;
    if (__builtin_mul_overflow(a, b, &n) || __builtin_mul_overflow(n, c, &n) || n <= 0 ||
        (uint64_t)n > SIZE_MAX / sizeof(float))
        return 0;
    return (size_t)n * sizeof(float);
}

/* The arrays of the requested outputs (and their batch scratch). 0, or -1 (printed). */
static int outs_alloc(const infer_opts *o, const attn_model_config *c, const infer_inputs *in,
                      int64_t batch, infer_out *r)
{
    memset(r, 0, sizeof *r * O_COUNT);
    for (int k = 0; k < O_COUNT; k++) {
        if (!o->out[k])
            continue;
        out_shape(k, c, in->n, in->s, &r[k]);
        const size_t all = float_bytes(r[k].outer, in->n, r[k].row);
        const int scattered = r[k].outer > 1 && batch < in->n;
        const size_t part = float_bytes(r[k].outer, batch, r[k].row);
        r[k].all = all ? malloc(all) : NULL;
        r[k].scratch = scattered && part ? malloc(part) : NULL;
        if (!r[k].all || (scattered && !r[k].scratch)) {
            fprintf(stderr, "attn infer: %s: out of memory (or a size overflow)\n", out_opts[k]);
            return -1;
        }
    }
    return 0;
}

/* Where the forward writes output r for the batch of rows [b0, b0 + b): its place in the whole
 * array when the batch's rows are contiguous there, else the scratch. */
static float *out_target(const infer_out *r, int64_t b0)
{
    if (!r->all)
        return NULL;
    return r->scratch ? r->scratch : r->all + b0 * r->row;
}

/* The scratch of the batch [b0, b0 + b) into the whole array:
 * [outer, b, row] -> [outer, N, row]. */
static void out_scatter(const infer_out *r, int64_t n, int64_t b0, int64_t b)
{
    if (!r->scratch)
        return;
    for (int64_t u = 0; u < r->outer; u++)
        memcpy(r->all + (u * n + b0) * r->row, r->scratch + u * b * r->row,
               sizeof(float) * (size_t)(b * r->row));
}

static int outs_save(const infer_opts *o, const infer_out *r)
{
    for (int k = 0; k < O_COUNT; k++)
        if (o->out[k] &&
            attn_model_tool_save(CMD, o->out[k], ATTN_NPY_F32, r[k].ndim, r[k].shape, r[k].all))
            return -1;
    return 0;
}

/* ---- the run --------------------------------------------------------------------------------- */

/* dlogits [b, C] of the batch: one-hot at K on every row, or the cross-entropy's gradient
 * rescaled from the batch mean to the mean over all N rows (*loss_sum += batch loss x b). */
static attn_status batch_dlogits(const infer_opts *o, attn_model *m, const infer_inputs *in,
                                 int64_t b0, int64_t b, float *dl, double *loss_sum)
{
    const int64_t C = attn_model_get_config(m)->num_labels;
    if (o->grad_logit >= 0) {
        memset(dl, 0, sizeof(float) * (size_t)(b * C));
        for (int64_t i = 0; i < b; i++)
            dl[i * C + o->grad_logit] = 1.0f;
        return ATTN_OK;
    }
    double loss;
    const attn_status st = attn_model_loss(m, (const int32_t *)in->labels.data + b0, &loss, dl);
    if (st != ATTN_OK)
        return st;
    *loss_sum += loss * (double)b;
    if (b != in->n)
        for (int64_t i = 0; i < b * C; i++)
            dl[i] = (float)((double)dl[i] * (double)b / (double)in->n);
    return ATTN_OK;
}

/* Every batch through the model into the outputs. *loss: the mean cross-entropy (with
 * --labels). ATTN_OK, or the failing call's status (*what names it). */
static attn_status run_batches(const infer_opts *o, attn_model *m, const infer_inputs *in,
                               int64_t batch, infer_out *r, double *loss, const char **what)
{
    const int64_t S = in->s, C = attn_model_get_config(m)->num_labels;
    float *dl = o->out[O_GRAD] ? malloc(sizeof(float) * (size_t)(batch * C)) : NULL;
    attn_status st = o->out[O_GRAD] && !dl ? ATTN_ERR_OUT_OF_MEMORY : ATTN_OK;
    double loss_sum = 0;
    *what = "out of memory";
    for (int64_t b0 = 0; st == ATTN_OK && b0 < in->n; b0 += batch) {
        const int64_t b = in->n - b0 < batch ? in->n - b0 : batch;
        const attn_model_input x = {
            .batch = b, .seq = S, .ids = (const int32_t *)in->ids.data + b0 * S,
            .attention_mask = in->mask.data ? (const uint8_t *)in->mask.data + b0 * S : NULL,
            .token_types = in->types.data ? (const int32_t *)in->types.data + b0 * S : NULL};
        const attn_model_outputs y = {
            .logits = out_target(&r[O_LOGITS], b0), .attentions = out_target(&r[O_ATTENTIONS], b0),
            .key_score = out_target(&r[O_KEY_SCORE], b0), .hidden = out_target(&r[O_HIDDEN], b0),
            .attn_residual = out_target(&r[O_RESIDUAL], b0),
            .pooled = out_target(&r[O_POOLED], b0)};
        *what = "forward";
        st = attn_model_forward(m, &x, &y);
        if (st == ATTN_OK && dl) {
            *what = o->labels ? "cross-entropy" : "gradient";
            st = batch_dlogits(o, m, in, b0, b, dl, &loss_sum);
            if (st == ATTN_OK) {
                *what = "backward";
                st = attn_model_backward(m, dl, out_target(&r[O_GRAD], b0));
            }
        }
        for (int k = 0; st == ATTN_OK && k < O_COUNT; k++)
            out_scatter(&r[k], in->n, b0, b);
    }
    free(dl);
    *loss = loss_sum / (double)in->n;
    return st;
}

static void print_summary(const infer_opts *o, attn_model *m, attn_backend *be,
                          const infer_inputs *in, int64_t batch, double loss, double seconds)
{
    printf("attn infer: ");
    attn_model_tool_print_sizes(stdout, m);
    printf("; N %lld x S %lld in batches of %lld; backend %s; ", (long long)in->n,
           (long long)in->s, (long long)batch, attn_backend_describe(be));
    if (o->labels)
        printf("cross-entropy %.6f; ", loss);
    printf("%.3f s\n", seconds);
}

/* The model loaded, the inputs checked against it, the outputs computed and written. */
static int infer(const infer_opts *o, attn_backend *be, const infer_inputs *in)
{
    attn_model *m = NULL;
    infer_out r[O_COUNT] = {{0}};
    attn_status st = attn_model_load(be, o->model, o->new_head ? ATTN_MODEL_LOAD_NEW_HEAD : 0,
                                     o->seed, &m);
    if (st != ATTN_OK)
        return attn_model_tool_lib_error(CMD, o->model, st);
    const attn_model_config *c = attn_model_get_config(m);
    const int64_t batch = o->batch < in->n ? o->batch : in->n;
    int rc = 2;
    if (o->grad_logit >= c->num_labels) {
        fprintf(stderr, "attn infer: --grad-logit %lld: the model has %lld labels\n",
                (long long)o->grad_logit, (long long)c->num_labels);
        goto done;
    }
    if (outs_alloc(o, c, in, batch, r))
        goto done;
    const double t0 = attn_model_tool_now();
    double loss = 0;
    const char *what = "";
    st = run_batches(o, m, in, batch, r, &loss, &what);
    const double seconds = attn_model_tool_now() - t0;
    if (st != ATTN_OK) {
        rc = attn_model_tool_lib_error(CMD, what, st);
        goto done;
    }
    if (outs_save(o, r))
        goto done;
    print_summary(o, m, be, in, batch, loss, seconds);
    rc = 0;
done:
    outs_free(r);
    attn_model_free(m); /* m is set: the load succeeded */
    return rc;
}

int attn_cmd_infer(int argc, char **argv)
{
    infer_opts o;
    const int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    infer_inputs in;
    if (inputs_load(&o, &in)) {
        inputs_free(&in);
        return 2;
    }
    attn_backend *be = NULL;
    int rc = attn_model_tool_backend(CMD, o.backend, o.device, o.options, &be);
    if (rc == 0)
        rc = infer(&o, be, &in);
    attn_backend_close(be);
    inputs_free(&in);
    return rc;
}
