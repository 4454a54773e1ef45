/* model_fixture.h - what the BERT encoder's suites share: the backends they run on, a tiny
 * configuration, a seeded batch with padding and token types, parameters drawn at scales where
 * every path of the encoder matters, output buffers of the model's and the reference's
 * layouts, the comparison of f32 results with the f64 reference (reference/model_ref.h), the
 * reference forward on a model's current parameters, and AdamW settings out of their domain. */
#ifndef ATTN_MODEL_FIXTURE_H_
#define ATTN_MODEL_FIXTURE_H_

#include "attn/attn.h"
#include "attn_model_weights.h"
#include "model_ref.h"

#include <check.h>

/* Every backend the suites run on; one this build or machine lacks is skipped. */
#define MODEL_FX_N_BACKENDS 3
extern const char *const model_fx_backends[MODEL_FX_N_BACKENDS];
/* The backend opened, or NULL after printing why it is skipped (no cpu backend in this build,
 * no OpenCL device on this machine). */
attn_backend *model_fx_open(const char *name);

/* vocab 23, d 16, 2 layers, 4 heads (Dh 4), MLP 24, 12 positions, 2 token types, 3 labels. */
attn_model_config model_fx_config(void);

/* The batch: B 2, S 7; row 0 all tokens with types 0 0 0 0 1 1 1, row 1 four tokens (types
 * 0 0 1 1) then three padded positions holding pad id 0. Ids of the tokens are drawn from
 * [1, vocab), so no token is the pad id (PyTorch's Embedding(padding_idx) would zero that
 * row's gradient) and id 2 opens both rows (a word-embedding row used twice). labels {0, 2}. */
enum { MODEL_FX_B = 2, MODEL_FX_S = 7 };
typedef struct model_fx_batch {
    int32_t ids[MODEL_FX_B * MODEL_FX_S];
    uint8_t mask[MODEL_FX_B * MODEL_FX_S];
    int32_t types[MODEL_FX_B * MODEL_FX_S];
    int32_t labels[MODEL_FX_B];
    attn_model_input in; /* points into this struct: fill it in place, never copy it */
} model_fx_batch;
void model_fx_batch_fill(model_fx_batch *b, uint64_t seed);

/* A model of model_fx_config on be (created under seed, then model_fx_randomize). */
attn_model *model_fx_model(attn_backend *be, uint64_t seed);
/* Redraws every parameter so that attention is far from uniform and no path is negligible:
 * embeddings U(-1, 1), Linear weights U(-a, a) with a = sqrt(3 / fan_in) (unit gain),
 * biases U(-0.2, 0.2), LayerNorm weights 1 + U(-0.3, 0.3). */
void model_fx_randomize(attn_model *m, uint64_t seed);

/* Element counts of every output of a batch of B x S. */
typedef struct model_fx_sizes {
    int64_t logits, attentions, key_score, hidden, attn_residual, pooled;
} model_fx_sizes;
model_fx_sizes model_fx_sizes_of(const attn_model_config *cfg, int64_t B, int64_t S);

/* Every output allocated (f32 filled with NaN, so an element never written shows). */
attn_model_outputs model_fx_outputs_new(const attn_model_config *cfg, int64_t B, int64_t S);
void model_fx_outputs_free(attn_model_outputs *o);
attn_ref_model_out model_fx_ref_new(const attn_model_config *cfg, int64_t B, int64_t S);
void model_fx_ref_free(attn_ref_model_out *o);

/* max |got - ref| / max |ref| over n elements (max |got - ref| when ref is all 0; infinite
 * when got has a NaN); *at gets the index of the largest difference. */
double model_fx_rel_err(const float *got, const double *ref, int64_t n, int64_t *at);
/* Fails the test unless model_fx_rel_err <= tol, naming `what` and the worst element. */
void model_fx_expect_close(const float *got, const double *ref, int64_t n, double tol,
                           const char *what);

/* AdamW settings each with one field out of its domain (the model's and the transfer
 * model's train steps refuse every one): lr < 0, beta1 1, beta2 < 0, eps 0, weight decay NaN,
 * clip norm < 0, a reserved field nonzero. */
enum { MODEL_FX_N_BAD_ADAMW = 7 };
void model_fx_bad_adamw(attn_model_adamw bad[MODEL_FX_N_BAD_ADAMW]);

/* attn_ref_model_forward on the model's current parameter values; fails the test on error. */
void model_fx_ref_forward(const attn_model *m, const attn_model_input *in,
                          const attn_ref_model_out *o);

#endif /* ATTN_MODEL_FIXTURE_H_ */
