/* explain_fixture.h - what the explain room's suites share: the encoder's tiny test model and
 * padded batch (model_fixture.h), a run of one saliency method that fails the test on error,
 * and single logits of a forward from ids or from given embeddings. */
#ifndef ATTN_EXPLAIN_FIXTURE_H_
#define ATTN_EXPLAIN_FIXTURE_H_

#include "attn/attn.h"
#include "model_fixture.h"

/* Scores [B, S] of `method` (opt NULL: the defaults with that method), malloc'd; fails the
 * test when attn_explain does not return ATTN_OK. */
float *explain_fx_run(attn_model *m, const attn_model_input *in, const int32_t *targets,
                      attn_explain_method method, const attn_explain_options *opt);
/* Logits [B, num_labels] of a forward of `in`, malloc'd; fails the test on error. */
float *explain_fx_logits(attn_model *m, const attn_model_input *in);
/* The embedding output e [B, S, d] of `in` (a forward with hidden states), malloc'd. */
float *explain_fx_embeddings(attn_model *m, const attn_model_input *in);

#endif /* ATTN_EXPLAIN_FIXTURE_H_ */
