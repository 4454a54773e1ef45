/* attn_explain.c - attn_explain: the method names and options, the checks every method relies
 * on (model, batch, target classes, options), the predicted class when none is given, and the
 * helpers the methods share (token positions, batches of copies of one row). */
#include "attn_explain_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_model_saliency.h"

static const char *const method_names[ATTN_EXPLAIN_METHOD_COUNT] = {
    "all_attention", "last_attention", "vanilla_gradient", "input_x_gradient",
    "integrated_gradients", "deeplift", "lime", "random", "rollout", "flow"};

const char *attn_explain_method_name(attn_explain_method m)
{
    return (unsigned)m < ATTN_EXPLAIN_METHOD_COUNT ? method_names[m] : "?";
}

attn_status attn_explain_method_parse(const char *name, attn_explain_method *m)
{
    if (!name || !m)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_explain_method_parse: NULL %s",
                         !name ? "name" : "method");
    for (int i = 0; i < ATTN_EXPLAIN_METHOD_COUNT; i++)
        if (strcmp(name, method_names[i]) == 0) {
            *m = (attn_explain_method)i;
            return attn_ok();
        }
    return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                     "unknown saliency method '%s' (all_attention, last_attention, "
                     "vanilla_gradient, input_x_gradient, integrated_gradients, deeplift, lime, "
                     "random, rollout, flow)", name);
}

attn_explain_options attn_explain_options_default(void)
{
    return (attn_explain_options){.method = ATTN_EXPLAIN_INTEGRATED_GRADIENTS,
                                  .ig_steps = 100,
                                  .lime_samples = 40,
                                  .lime_kernel_width = 1000.0,
                                  .seed = 1,
                                  .max_batch = 0};
}

/* ---- shared helpers ------------------------------------------------------------------------ */

int attn_explain_is_token(const attn_model_input *in, int64_t b, int64_t s)
{
    return !in->attention_mask || in->attention_mask[b * in->seq + s];
}

int64_t attn_explain_chunk(const attn_explain_options *opt)
{
    return opt->max_batch > 0 ? opt->max_batch : 128;
}

attn_status attn_explain_rows_of(const attn_model_input *in, int64_t b, int64_t n,
                                 attn_explain_rows *rows)
{
    const int64_t S = in->seq;
    memset(rows, 0, sizeof *rows);
    if (in->attention_mask && !(rows->mask = malloc((size_t)(n * S))))
        goto oom;
    if (in->token_types && !(rows->types = malloc((size_t)(n * S) * sizeof(int32_t))))
        goto oom;
    for (int64_t r = 0; r < n; r++) {
        if (rows->mask)
            memcpy(rows->mask + r * S, in->attention_mask + b * S, (size_t)S);
        if (rows->types)
            memcpy(rows->types + r * S, in->token_types + b * S, (size_t)S * sizeof(int32_t));
    }
    rows->in = (attn_model_input){.batch = n, .seq = S, .attention_mask = rows->mask,
                                  .token_types = rows->types};
    return ATTN_OK;
oom:
    attn_explain_rows_free(rows);
    return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "explain: out of memory (%lld rows of %lld)",
                     (long long)n, (long long)S);
}

void attn_explain_rows_free(attn_explain_rows *rows)
{
    free(rows->mask);
    free(rows->types);
    memset(rows, 0, sizeof *rows);
}

/* ---- checks -------------------------------------------------------------------------------- */

static attn_status check_options(const attn_explain_options *o)
{
    if (!attn_model_reserved_zero(o->reserved, 4))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "explain options: reserved fields must be zero");
    if ((unsigned)o->method >= ATTN_EXPLAIN_METHOD_COUNT)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "explain options: method %d is not one of "
                         "the %d methods", (int)o->method, ATTN_EXPLAIN_METHOD_COUNT);
    if (o->ig_steps < 1 || o->ig_steps > 10000)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "explain options: ig_steps %lld is outside [1, 10000]",
                         (long long)o->ig_steps);
    if (o->lime_samples < 2 || o->lime_samples > 100000)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "explain options: lime_samples %lld is outside [2, 100000]",
                         (long long)o->lime_samples);
    if (!(o->lime_kernel_width > 0.0) || !isfinite(o->lime_kernel_width))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "explain options: lime_kernel_width %g must be positive and finite",
                         o->lime_kernel_width);
    if (o->max_batch < 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "explain options: max_batch %lld < 0",
                         (long long)o->max_batch);
    return ATTN_OK;
}

/* LIME's given masks hold 0 or 1 only (their size is the caller's promise). */
static attn_status check_lime_masks(const attn_model *m, const attn_model_input *in,
                                    const attn_explain_options *o)
{
    if (o->method != ATTN_EXPLAIN_LIME || !o->lime_masks)
        return ATTN_OK;
    const int64_t d = attn_model_get_config(m)->hidden_size;
    const int64_t per = in->seq * d, n = in->batch * o->lime_samples * per;
    for (int64_t i = 0; i < n; i++)
        if (o->lime_masks[i] > 1) {
            const int64_t b = i / (o->lime_samples * per), r = i % (o->lime_samples * per);
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "explain: LIME mask value %d at [%lld, %lld, %lld, %lld] is not 0 "
                             "or 1", (int)o->lime_masks[i], (long long)b, (long long)(r / per),
                             (long long)(r % per / d), (long long)(r % d));
        }
    return ATTN_OK;
}

static attn_status check_targets(const attn_model *m, const attn_model_input *in,
                                 const int32_t *t)
{
    const int64_t C = attn_model_get_config(m)->num_labels;
    for (int64_t b = 0; t && b < in->batch; b++)
        if (t[b] < 0 || t[b] >= C)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "explain: target class %d of sequence %lld is outside [0, %lld)",
                             (int)t[b], (long long)b, (long long)C);
    return ATTN_OK;
}

static attn_status check_call(attn_model *m, const attn_model_input *in, const int32_t *targets,
                              const attn_explain_options *opt, const float *scores)
{
    if (!m || !in || !opt || !scores)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_explain: NULL %s",
                         !m ? "model" : !in ? "input" : !opt ? "options" : "scores");
    if (in->embeddings || !in->ids)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "attn_explain: the input must give token ids (and no embeddings): the "
                         "methods derive e from them");
    attn_status st = attn_model_input_check(m, in);
    if (st == ATTN_OK)
        st = check_options(opt);
    if (st == ATTN_OK)
        st = check_targets(m, in, targets);
    if (st == ATTN_OK)
        st = check_lime_masks(m, in, opt);
    return st;
}

/* The class the model predicts for each sequence (the first of equal logits). */
static attn_status predicted(attn_model *m, const attn_model_input *in, int32_t *t)
{
    const int64_t C = attn_model_get_config(m)->num_labels;
    float *lg = malloc((size_t)(in->batch * C) * sizeof(float));
    if (!lg)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "explain: out of memory");
    const attn_model_outputs o = {.logits = lg};
    const attn_status st = attn_model_forward(m, in, &o);
    for (int64_t b = 0; st == ATTN_OK && b < in->batch; b++) {
        int32_t best = 0;
        for (int64_t c = 1; c < C; c++)
            if (lg[b * C + c] > lg[b * C + best])
                best = (int32_t)c;
        t[b] = best;
    }
    free(lg);
    return st;
}

static attn_status run_method(attn_model *m, const attn_model_input *in, const int32_t *t,
                              const attn_explain_options *o, float *s)
{
    switch (o->method) {
    case ATTN_EXPLAIN_ALL_ATTENTION: return attn_explain_attention(m, in, 0, s);
    case ATTN_EXPLAIN_LAST_ATTENTION: return attn_explain_attention(m, in, 1, s);
    case ATTN_EXPLAIN_VANILLA_GRADIENT: return attn_explain_gradient(m, in, t, 0, s);
    case ATTN_EXPLAIN_INPUT_X_GRADIENT: return attn_explain_gradient(m, in, t, 1, s);
    case ATTN_EXPLAIN_INTEGRATED_GRADIENTS:
        return attn_explain_integrated_gradients(m, in, t, o, s);
    case ATTN_EXPLAIN_DEEPLIFT: return attn_explain_deeplift(m, in, t, o, s);
    case ATTN_EXPLAIN_LIME: return attn_explain_lime(m, in, t, o, s);
    case ATTN_EXPLAIN_RANDOM: attn_explain_random(in, o->seed, s); return ATTN_OK;
    case ATTN_EXPLAIN_ROLLOUT: return attn_explain_rollout(m, in, s);
    case ATTN_EXPLAIN_FLOW: return attn_explain_flow(m, in, s);
    default: return attn_fail(ATTN_ERR_INTERNAL, "explain: method %d", (int)o->method);
    }
}

attn_status attn_explain(attn_model *m, const attn_model_input *in, const int32_t *targets,
                         const attn_explain_options *opt, float *scores)
{
    attn_status st = check_call(m, in, targets, opt, scores);
    if (st != ATTN_OK)
        return st;
    const int64_t B = in->batch, N = B * in->seq;
    int32_t *t = malloc((size_t)B * sizeof(int32_t));
    float *s = calloc((size_t)N, sizeof(float));
    if (!t || !s)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "explain: out of memory (%lld tokens)",
                       (long long)N);
    else if (targets)
        memcpy(t, targets, (size_t)B * sizeof(int32_t));
    else if (opt->method != ATTN_EXPLAIN_RANDOM) /* the attention methods ignore the class */
        st = predicted(m, in, t);
    if (st == ATTN_OK)
        st = run_method(m, in, t, opt, s);
    if (st == ATTN_OK)
        memcpy(scores, s, (size_t)N * sizeof(float));
    free(t);
    free(s);
    return st == ATTN_OK ? attn_ok() : st;
}
