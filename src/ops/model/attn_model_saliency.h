/* attn_model_saliency.h - what the saliency methods (the explain room) need of the model
 * beyond the public API: the input check alone, the embedding output and the pooler's
 * pre-activation of the last forward, the reserved-field check, and a backward that computes only the gradient with
 * respect to e (the parameter gradients are left as they are), optionally with DeepLIFT's
 * rescale multiplier in place of tanh' at the pooler. */
#ifndef ATTN_MODEL_SALIENCY_H_
#define ATTN_MODEL_SALIENCY_H_

#include "attn/attn_model.h"

/* 1 when the n reserved words of a public struct are all zero (the model's and explain's). */
int attn_model_reserved_zero(const uint64_t *r, int n);

/* The checks attn_model_forward makes on a batch (reserved fields, sizes, ids, types, mask). */
attn_status attn_model_input_check(const attn_model *m, const attn_model_input *in);
/* The embedding-layer output e [B, S, d] of the last forward (valid until the next one). */
const float *attn_model_last_embeddings(const attn_model *m);
/* z = Wp h_CLS + bp [B, d] of the last forward: the pooler's tanh input. */
void attn_model_pooler_pre(const attn_model *m, float *z);
/* d sum(dlogits * logits) / d e [B, S, d] through the last forward, writing d_embeddings and no
 * parameter gradient. pool_slope [B, d], when not NULL, replaces tanh'(z) at the pooler. */
attn_status attn_model_backward_saliency(attn_model *m, const float *dlogits,
                                         const float *pool_slope, float *d_embeddings);

#endif /* ATTN_MODEL_SALIENCY_H_ */
