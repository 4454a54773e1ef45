/* explain_compute.c - the computation of `attn explain` on loaded inputs: the model and the
 * token rules, the model's class on every full text, every method's scores, then (every method
 * run) the bag-of-words reader, each method's figures and the readers' weighted accuracies. */
#include "explain_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "explain"

void attn_explain_tool_run_free(attn_explain_tool_run *r)
{
    for (int k = 0; k < r->n_methods; k++)
        free(r->scores[k]);
    free(r->eligible);
    free(r->pred);
    free(r->target_fill);
    attn_explain_bow_free(r->bow);
    attn_explain_tool_tokens_free(&r->tokens);
    attn_explain_tool_vocab_free(&r->vocab);
    attn_model_free(r->m);
}

/* The model's class on every full text, max_batch rows per forward. 0, or an exit code
 * (printed). */
static int predict(attn_explain_tool_run *r, int64_t chunk)
{
    const int64_t B = r->x.batch, S = r->x.seq, C = attn_model_get_config(r->m)->num_labels;
    chunk = chunk < B ? chunk : B;
    float *logits = malloc(sizeof(float) * (size_t)(chunk * C));
    r->pred = malloc(sizeof(int32_t) * (size_t)B);
    if (!logits || !r->pred) {
        free(logits);
        fprintf(stderr, "attn explain: out of memory\n");
        return 1;
    }
    attn_status st = ATTN_OK;
    for (int64_t b0 = 0; st == ATTN_OK && b0 < B; b0 += chunk) {
        const int64_t b = B - b0 < chunk ? B - b0 : chunk;
        const attn_model_input xi = {
            .batch = b, .seq = S, .ids = r->x.ids + b0 * S,
            .attention_mask = r->x.attention_mask ? r->x.attention_mask + b0 * S : NULL,
            .token_types = r->x.token_types ? r->x.token_types + b0 * S : NULL};
        const attn_model_outputs y = {.logits = logits};
        st = attn_model_forward(r->m, &xi, &y);
        for (int64_t i = 0; st == ATTN_OK && i < b; i++) {
            int32_t best = 0;
            for (int32_t c = 1; c < C; c++)
                best = logits[i * C + c] > logits[i * C + best] ? c : best;
            r->pred[b0 + i] = best;
        }
    }
    free(logits);
    return st == ATTN_OK ? 0 : attn_model_tool_lib_error(CMD, "forward", st);
}

/* The checks that need the model's configuration. 0, or -1 (printed). */
static int check_against_model(const attn_explain_tool_opts *o,
                               const attn_explain_tool_inputs *in, const attn_model_config *c)
{
    if (o->target >= c->num_labels) {
        fprintf(stderr, "attn explain: --target %lld: the model has %lld labels\n",
                (long long)o->target, (long long)c->num_labels);
        return -1;
    }
    if (in->lime && in->lime_shape[3] != c->hidden_size) {
        fprintf(stderr, "attn explain: --lime-samples: d is %lld, the model's hidden size "
                "%lld\n", (long long)in->lime_shape[3], (long long)c->hidden_size);
        return -1;
    }
    return 0;
}

int attn_explain_tool_run_prepare(const attn_explain_tool_opts *o, attn_backend *be,
                                  const attn_explain_tool_inputs *in, attn_explain_tool_run *r)
{
    attn_status st = attn_model_load(be, o->f[ATTN_EXPLAIN_F_MODEL], 0, o->xo.seed, &r->m);
    if (st != ATTN_OK)
        return attn_model_tool_lib_error(CMD, o->f[ATTN_EXPLAIN_F_MODEL], st);
    const attn_model_config *c = attn_model_get_config(r->m);
    r->x = (attn_model_input){.batch = in->n, .seq = in->s, .ids = in->ids.data,
                              .attention_mask = in->mask.data, .token_types = in->types.data};
    if (check_against_model(o, in, c) ||
        attn_explain_tool_vocab_read(o->f[ATTN_EXPLAIN_F_MODEL], &r->vocab) ||
        attn_explain_tool_tokens_make(o, &r->vocab, c, &r->tokens))
        return 2;
    if (!(r->eligible = malloc((size_t)(in->n * in->s)))) {
        fprintf(stderr, "attn explain: out of memory\n");
        return 1;
    }
    attn_explain_tool_eligible(&r->tokens, &r->x, c->vocab_size, r->eligible);
    const int rc = predict(r, o->xo.max_batch);
    if (rc)
        return rc;
    r->targets = in->targets.data;
    if (o->target >= 0) {
        if (!(r->target_fill = malloc(sizeof(int32_t) * (size_t)in->n))) {
            fprintf(stderr, "attn explain: out of memory\n");
            return 1;
        }
        for (int64_t i = 0; i < in->n; i++)
            r->target_fill[i] = (int32_t)o->target;
        r->targets = r->target_fill;
    }
    r->labels = in->labels.data ? in->labels.data : r->pred;
    r->labels_predicted = !in->labels.data;
    return 0;
}

int attn_explain_tool_run_methods(const attn_explain_tool_opts *o,
                                  const attn_explain_tool_inputs *in, attn_explain_tool_run *r)
{
    r->n_methods = o->all ? ATTN_EXPLAIN_METHOD_COUNT : 1;
    for (int k = 0; k < r->n_methods; k++) {
        r->methods[k] = o->all ? (attn_explain_method)k : o->method;
        attn_explain_options xo = o->xo;
        xo.method = r->methods[k];
        if (in->lime) {
            xo.lime_masks = in->lime;
            xo.lime_samples = in->lime_shape[1];
        }
        if (!(r->scores[k] = malloc(sizeof(float) * (size_t)(in->n * in->s)))) {
            fprintf(stderr, "attn explain: out of memory\n");
            return 1;
        }
        const double t0 = attn_model_tool_now();
        const attn_status st = attn_explain(r->m, &r->x, r->targets, &xo, r->scores[k]);
        r->seconds[k] = attn_model_tool_now() - t0;
        if (st != ATTN_OK)
            return attn_model_tool_lib_error(CMD, attn_explain_method_name(r->methods[k]), st);
    }
    return 0;
}

/* The readers' weighted accuracies of every method. */
static attn_status run_weights(attn_explain_tool_run *r)
{
    double model[ATTN_EXPLAIN_METHOD_COUNT * ATTN_EXPLAIN_MAX_K];
    double bow[ATTN_EXPLAIN_METHOD_COUNT * ATTN_EXPLAIN_MAX_K];
    const int64_t nk = r->eo.n_k;
    for (int k = 0; k < r->n_methods; k++)
        for (int64_t j = 0; j < nk; j++) {
            model[k * nk + j] = r->eval[k].model_acc[j];
            bow[k * nk + j] = r->eval[k].bow_acc[j];
        }
    attn_status st = attn_explain_weighted_accuracy(r->n_methods, nk, model, r->model_w,
                                                    r->model_avg);
    if (st == ATTN_OK && r->bow)
        st = attn_explain_weighted_accuracy(r->n_methods, nk, bow, r->bow_w, r->bow_avg);
    return st;
}

int attn_explain_tool_run_evaluation(const attn_explain_tool_opts *o,
                                     const attn_explain_tool_inputs *in, attn_explain_tool_run *r)
{
    const attn_model_config *c = attn_model_get_config(r->m);
    attn_status st;
    if (in->r_ids.data) {
        attn_explain_bow_options bo = attn_explain_bow_options_default();
        bo.ignore = r->tokens.ignore;
        bo.n_ignore = r->tokens.n_ignore;
        bo.seed = o->xo.seed;
        st = attn_explain_bow_train(c->vocab_size, c->num_labels, in->r_ids.shape[0],
                                    in->r_ids.shape[1], in->r_ids.data, in->r_mask.data,
                                    in->r_labels.data, &bo, &r->bow);
        if (st != ATTN_OK)
            return attn_model_tool_lib_error(CMD, "bag-of-words reader", st);
    }
    r->eo = o->eo;
    r->eo.filler_id = r->tokens.filler;
    r->eo.bow = r->bow;
    r->eo.rationale = in->rationale.data;
    for (int k = 0; k < r->n_methods; k++) {
        st = attn_explain_evaluate(r->m, &r->x, r->labels, r->eligible, r->scores[k], &r->eo,
                                   &r->eval[k]);
        if (st != ATTN_OK)
            return attn_model_tool_lib_error(CMD, attn_explain_method_name(r->methods[k]), st);
    }
    if ((st = run_weights(r)) != ATTN_OK)
        return attn_model_tool_lib_error(CMD, "weighted accuracy", st);
    return 0;
}
