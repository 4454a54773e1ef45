/* explain_fixture.c - the explain suites' shared runs (explain_fixture.h). */
#include "explain_fixture.h"

#include <stdlib.h>

float *explain_fx_run(attn_model *m, const attn_model_input *in, const int32_t *targets,
                      attn_explain_method method, const attn_explain_options *opt)
{
    attn_explain_options o = opt ? *opt : attn_explain_options_default();
    o.method = method;
    float *s = malloc((size_t)(in->batch * in->seq) * sizeof(float));
    ck_assert_ptr_nonnull(s);
    const attn_status st = attn_explain(m, in, targets, &o, s);
    ck_assert_msg(st == ATTN_OK, "%s: %s: %s", attn_explain_method_name(method),
                  attn_status_name(st), attn_last_error());
    return s;
}

float *explain_fx_logits(attn_model *m, const attn_model_input *in)
{
    const int64_t C = attn_model_get_config(m)->num_labels;
    float *lg = malloc((size_t)(in->batch * C) * sizeof(float));
    ck_assert_ptr_nonnull(lg);
    const attn_model_outputs o = {.logits = lg};
    const attn_status st = attn_model_forward(m, in, &o);
    ck_assert_msg(st == ATTN_OK, "forward: %s", attn_last_error());
    return lg;
}

float *explain_fx_embeddings(attn_model *m, const attn_model_input *in)
{
    const attn_model_config *c = attn_model_get_config(m);
    const int64_t N = in->batch * in->seq, d = c->hidden_size;
    float *h = malloc((size_t)((c->num_layers + 1) * N * d) * sizeof(float));
    float *lg = malloc((size_t)(in->batch * c->num_labels) * sizeof(float));
    ck_assert(h && lg);
    const attn_model_outputs o = {.logits = lg, .hidden = h};
    const attn_status st = attn_model_forward(m, in, &o);
    ck_assert_msg(st == ATTN_OK, "forward: %s", attn_last_error());
    free(lg);
    return realloc(h, (size_t)(N * d) * sizeof(float)); /* layer 0 is e */
}
