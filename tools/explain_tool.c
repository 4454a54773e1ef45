/* explain_tool.c - `attn explain`: token saliency of a saved BERT classifier (attn_explain) on
 * token ids from .npy files or an `attn data` directory. One method writes its scores; without
 * --method every method runs and is evaluated (attn_explain_evaluate: the model and a
 * bag-of-words reader shown the top k tokens, faithfulness, planted precision / recall), and
 * the command writes each method's scores, eval.json and the HTML report and prints the
 * figures and the ranking beside the saliency study's human ranking. This file holds the usage,
 * the options and the command's flow; the pieces are named in explain_tool.h. */
#include "attn_args.h"
#include "attn_cmds.h"
#include "explain_tool.h"
#include "model_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "explain"

/* ---- options --------------------------------------------------------------------------------- */

/* The names of the file options (explain_tool.h). */
static const char *const file_names[ATTN_EXPLAIN_F_COUNT] = {
    "--model",       "--ids",          "--mask",         "--types",        "--data",
    "--labels",      "--rationale",    "--targets",      "--reader-ids",   "--reader-labels",
    "--reader-mask", "--lime-samples", "--out",          "--backend",      "--device",
    "--options"};

static const char usage[] =
    "usage: attn explain --model DIR (--ids IDS.npy [--mask M.npy] [--types T.npy] | --data DIR)\n"
    "                    [--method NAME] --out PATH [options]\n"
    "Token saliency of a BERT sequence classifier (a checkpoint as `attn train` or\n"
    "save_pretrained writes it): each token's attribution to the logit of the class explained\n"
    "(by default the class the model predicts for the text).\n"
    "With --method NAME it writes that method's scores, f32 [N, S] (padding 0), to --out. The\n"
    "methods: all_attention, last_attention, vanilla_gradient, input_x_gradient,\n"
    "integrated_gradients, deeplift, lime, random, rollout, flow.\n"
    "Without --method every method runs and is evaluated: --out is a directory (created) that\n"
    "gets <method>.npy for each, eval.json (every figure) and report.html (the texts coloured\n"
    "by score, the tables, the deletion and insertion curves); stdout gets the figures and the\n"
    "ranking of the methods by the readers' weighted accuracy beside the saliency study's.\n"
    "inputs:\n"
    "  --model DIR        the checkpoint; DIR/vocab.txt, when present, names the tokens\n"
    "  --ids FILE         int32 or int64 [N, S] (or [S]: one text)\n"
    "  --mask FILE        uint8 or bool, IDS's shape: 1 a token, 0 padding\n"
    "  --types FILE       token types, int32 or int64, IDS's shape\n"
    "  --data DIR         an `attn data` directory: the texts DIR/test_ids.npy with test_mask,\n"
    "                     test_labels and test_rationale; the bag-of-words reader learns from\n"
    "                     train_ids, train_mask and train_labels (each file used when present)\n"
    "  --n N              the first N texts only\n"
    "  --target C         explain class C for every text, or\n"
    "  --targets FILE     the class of each text, int32 or int64 [N]\n"
    "methods:\n"
    "  --method NAME      one method only\n"
    "  --ig-steps N       integrated gradients' Gauss-Legendre nodes (100)\n"
    "  --lime-n N         LIME's perturbed samples per text (40)\n"
    "  --lime-width X     LIME's kernel width (1000)\n"
    "  --lime-samples FILE  LIME's masks replayed: uint8 [N, n, S, d] (or [n, S, d] for one\n"
    "                     text), 1 keeps an embedding element, 0 zeroes it; n is --lime-n\n"
    "  --seed N           the random and LIME draws (1)\n"
    "  --max-batch N      sequences per model call (128)\n"
    "evaluation (every method):\n"
    "  --labels FILE      gold labels, int32 or int64 [N]; without them the model's own\n"
    "                     predictions on the full texts are the labels (and the report says so)\n"
    "  --rationale FILE   uint8 or bool, IDS's shape: 1 at the planted tokens (precision and\n"
    "                     recall of the top k)\n"
    "  --reader-ids FILE --reader-labels FILE [--reader-mask FILE]\n"
    "                     the texts the bag-of-words reader learns from\n"
    "  --k LIST           the top-k sizes, percent of a text's eligible tokens (5,10,20,30,40)\n"
    "  --k-count LIST     the top-k sizes as token counts instead (e.g. 1,2,4)\n"
    "  --aopc-steps K     AOPC removes the top 1 .. K tokens (10)\n"
    "  --show N           texts drawn in the report (20)\n"
    "  --special LIST     more ids that are never ranked, \"ID,ID,...\"\n"
    "  --filler ID        the id that replaces a hidden token\n"
    "Eligible tokens (the ones ranked; the rest stay as they are): with vocab.txt every token\n"
    "but [CLS] [SEP] [PAD] [UNK] [MASK] and tokens of punctuation only, the filler being \".\";\n"
    "without it every token but padding and the first and last of each row ([CLS] and [SEP]),\n"
    "the filler being --filler (default: the config's pad_token_id).\n"
    "run:\n"
    "%s"
    "Exit status: 0 written, 1 the library failed on valid inputs, 2 bad options or inputs.\n";

/* A comma-separated list of at most max numbers in [lo, hi] into v; the count, or -1. */
static int parse_list(const char *opt, const char *s, double lo, double hi, int integers,
                      double *v, int max)
{
    char buf[64];
    int n = 0;
    for (const char *p = s;; p++) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == max || len >= sizeof buf) {
            fprintf(stderr, "attn explain: %s: at most %d values of at most %d characters\n",
                    opt, max, (int)sizeof buf - 1);
            return -1;
        }
        memcpy(buf, p, len);
        buf[len] = '\0';
        int64_t i;
        if (integers ? attn_parse_i64(opt, buf, (int64_t)lo, (int64_t)hi, &i)
                     : attn_parse_f64(opt, buf, lo, hi, &v[n]))
            return -1;
        if (integers)
            v[n] = (double)i;
        n++;
        if (!end)
            return n;
        p = end;
    }
}

/* --k, --k-count or --special: 1 consumed, 0 not one, -1 error. */
static int list_opt(int argc, char **argv, int *i, attn_explain_tool_opts *o)
{
    double v[ATTN_EXPLAIN_TOOL_MAX_SPECIAL];
    const char *s;
    int r, n;
    if ((r = attn_arg_value(argc, argv, i, "--special", &s)) != 0) {
        if (r < 0 || (n = parse_list("--special", s, 0, INT32_MAX, 1, v,
                                     ATTN_EXPLAIN_TOOL_MAX_SPECIAL)) < 0)
            return -1;
        for (int k = 0; k < n; k++)
            o->special[k] = (int32_t)v[k];
        o->n_special = n;
        return 1;
    }
    const int count = (r = attn_arg_value(argc, argv, i, "--k-count", &s)) != 0;
    if (!count && (r = attn_arg_value(argc, argv, i, "--k", &s)) == 0)
        return 0;
    if (r < 0 || (n = parse_list(count ? "--k-count" : "--k", s, count ? 1 : 0,
                                 count ? INT32_MAX : 100, count, v, ATTN_EXPLAIN_MAX_K)) < 0)
        return -1;
    for (int k = 0; k < n; k++)
        if (v[k] <= 0) {
            fprintf(stderr, "attn explain: --k: %g: each k is a percentage in (0, 100]\n", v[k]);
            return -1;
        }
    if (o->k_set) {
        fprintf(stderr, "attn explain: give one of --k and --k-count, once\n");
        return -1;
    }
    o->k_set = 1;
    o->eo.n_k = n;
    o->eo.k_as_fraction = !count;
    for (int k = 0; k < n; k++)
        o->eo.k[k] = count ? v[k] : v[k] / 100;
    return 1;
}

/* An integer option: 1 consumed, 0 not one, -1 error. */
static int int_opt(int argc, char **argv, int *i, attn_explain_tool_opts *o)
{
    static const char *const names[] = {"--n",        "--target",   "--ig-steps", "--lime-n",
                                        "--seed",     "--max-batch", "--aopc-steps", "--show",
                                        "--filler"};
    int64_t seed = 1;
    int64_t *const dst[] = {&o->n,          &o->target,       &o->xo.ig_steps, &o->xo.lime_samples,
                            &seed,          &o->xo.max_batch, &o->eo.aopc_steps, &o->show,
                            &o->filler};
    static const int64_t lo[] = {1, 0, 1, 2, 0, 1, 0, 0, 0};
    const char *v;
    for (int k = 0; k < 9; k++) {
        const int r = attn_arg_value(argc, argv, i, names[k], &v);
        if (r == 0)
            continue;
        if (r < 0 || attn_parse_i64(names[k], v, lo[k], k == 4 ? INT64_MAX : INT32_MAX, dst[k]))
            return -1;
        if (k == 4)
            o->xo.seed = (uint64_t)seed;
        o->lime_n_set |= k == 3;
        return 1;
    }
    return 0;
}

/* Any option: 1 consumed, 0 not one, -1 error. */
static int one_opt(int argc, char **argv, int *i, void *opts)
{
    attn_explain_tool_opts *o = opts;
    const char *v;
    int r;
    for (int k = 0; k < ATTN_EXPLAIN_F_COUNT; k++)
        if ((r = attn_arg_value(argc, argv, i, file_names[k], &o->f[k])) != 0)
            return r;
    if ((r = attn_arg_value(argc, argv, i, "--method", &v)) != 0) {
        if (r < 0)
            return -1;
        const attn_status st = attn_explain_method_parse(v, &o->method);
        if (st != ATTN_OK)
            return attn_model_tool_lib_error(CMD, "--method", st), -1;
        o->all = 0;
        return 1;
    }
    if ((r = attn_arg_value(argc, argv, i, "--lime-width", &v)) != 0)
        return r < 0 || attn_parse_f64("--lime-width", v, 1e-300, 1e300,
                                       &o->xo.lime_kernel_width) ? -1 : 1;
    if ((r = int_opt(argc, argv, i, o)) != 0)
        return r;
    return list_opt(argc, argv, i, o);
}

/* The options' combinations; 0, or -1 (printed). */
static int check_opts(attn_explain_tool_opts *o)
{
    const char *missing = !o->f[ATTN_EXPLAIN_F_MODEL] ? "--model DIR"
                          : !o->f[ATTN_EXPLAIN_F_OUT] ? (o->all ? "--out DIR" : "--out FILE")
                          : !o->f[ATTN_EXPLAIN_F_IDS] && !o->f[ATTN_EXPLAIN_F_DATA]
                              ? "--ids FILE or --data DIR"
                              : NULL;
    const char *err = NULL;
    if (missing) {
        fprintf(stderr, "attn explain: %s is required (see attn explain --help)\n", missing);
        return -1;
    }
    if (o->f[ATTN_EXPLAIN_F_IDS] && o->f[ATTN_EXPLAIN_F_DATA])
        err = "give one of --ids FILE and --data DIR";
    else if (o->target >= 0 && o->f[ATTN_EXPLAIN_F_TARGETS])
        err = "give one of --target C and --targets FILE";
    else if (o->lime_n_set && o->f[ATTN_EXPLAIN_F_LIME])
        err = "--lime-samples FILE sets the sample count: drop --lime-n";
    if (err) {
        fprintf(stderr, "attn explain: %s\n", err);
        return -1;
    }
    if (o->f[ATTN_EXPLAIN_F_DATA])
        attn_explain_tool_data_files(o);
    if (o->all && !o->f[ATTN_EXPLAIN_F_READER_IDS] != !o->f[ATTN_EXPLAIN_F_READER_LABELS]) {
        fprintf(stderr, "attn explain: the bag-of-words reader needs both --reader-ids and "
                "--reader-labels\n");
        return -1;
    }
    return 0;
}

/* 1: --help printed; 0: parsed; -1: usage error (printed). */
static int parse_args(int argc, char **argv, attn_explain_tool_opts *o)
{
    memset(o, 0, sizeof *o);
    o->f[ATTN_EXPLAIN_F_BACKEND] = attn_model_tool_default_backend();
    o->all = 1;
    o->n = o->target = o->filler = -1;
    o->show = 20;
    o->xo = attn_explain_options_default();
    o->xo.max_batch = 128;
    o->eo = attn_explain_eval_options_default();
    const int r = attn_model_tool_parse(CMD, argc, argv, usage, one_opt, o);
    if (r != 0)
        return r;
    o->eo.max_batch = o->xo.max_batch;
    return check_opts(o);
}

/* ---- the command ----------------------------------------------------------------------------- */

/* The whole command on loaded inputs. */
static int explain(const attn_explain_tool_opts *o, attn_backend *be,
                   const attn_explain_tool_inputs *in)
{
    attn_explain_tool_run r;
    memset(&r, 0, sizeof r);
    const double t0 = attn_model_tool_now();
    int rc = attn_explain_tool_run_prepare(o, be, in, &r);
    if (rc == 0 && o->all && r.labels_predicted)
        fprintf(stderr, "attn explain: no labels: the model's own predictions on the full texts "
                "are the labels\n");
    if (rc == 0)
        rc = attn_explain_tool_run_methods(o, in, &r);
    if (rc == 0 && o->all)
        rc = attn_explain_tool_run_evaluation(o, in, &r);
    if (rc == 0) {
        const int64_t shape[2] = {in->n, in->s};
        rc = (o->all ? attn_explain_tool_write_all(o, &r)
                     : attn_model_tool_save(CMD, o->f[ATTN_EXPLAIN_F_OUT], ATTN_NPY_F32, 2, shape,
                                            r.scores[0]))
                 ? 2
                 : 0;
    }
    if (rc == 0) {
        attn_explain_tool_print_summary(o, &r, be, attn_model_tool_now() - t0);
        if (o->all)
            attn_explain_tool_print_report(&r);
    }
    attn_explain_tool_run_free(&r);
    return rc;
}

int attn_cmd_explain(int argc, char **argv)
{
    attn_explain_tool_opts *o = malloc(sizeof *o); /* the --data paths make it large */
    if (!o) {
        fprintf(stderr, "attn explain: out of memory\n");
        return 1;
    }
    const int pr = parse_args(argc, argv, o);
    if (pr != 0) {
        free(o);
        return pr > 0 ? 0 : 2;
    }
    attn_explain_tool_inputs in;
    int rc = attn_explain_tool_inputs_load(o, &in) ? 2 : 0;
    attn_backend *be = NULL;
    if (rc == 0)
        rc = attn_model_tool_backend(CMD, o->f[ATTN_EXPLAIN_F_BACKEND],
                                     o->f[ATTN_EXPLAIN_F_DEVICE], o->f[ATTN_EXPLAIN_F_OPTIONS],
                                     &be);
    if (rc == 0)
        rc = explain(o, be, &in);
    attn_backend_close(be);
    attn_explain_tool_inputs_free(&in);
    free(o);
    return rc;
}
