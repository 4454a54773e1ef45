/* attn_model_weights.h - the BERT encoder's parameters as named arrays: one struct of pointers
 * laid over the model's values (or over its gradients, or Adam moments: the same layout), in the
 * order of the Hugging Face state dict (the storage order fuses each layer's q, k, v). Shared by the model, its reference forward and tests. */
#ifndef ATTN_MODEL_WEIGHTS_H_
#define ATTN_MODEL_WEIGHTS_H_

#include "attn/attn_model.h"

/* One encoder layer. Linear weights are [out, in] row-major (PyTorch's nn.Linear): y = x W^T + b. */
typedef struct attn_model_layer_w {
    float *wq, *bq, *wk, *bk, *wv, *bv; /* attention.self.{query,key,value}: [d, d], [d] */
    float *wo, *bo;                     /* attention.output.dense: [d, d], [d] */
    float *ln1_w, *ln1_b;               /* attention.output.LayerNorm: [d] */
    float *w1, *b1;                     /* intermediate.dense: [I, d], [I] */
    float *w2, *b2;                     /* output.dense: [d, I], [d] */
    float *ln2_w, *ln2_b;               /* output.LayerNorm: [d] */
} attn_model_layer_w;

typedef struct attn_model_weights {
    float *word, *pos, *type;   /* embeddings: [V, d], [P, d], [T, d] */
    float *emb_ln_w, *emb_ln_b; /* embeddings.LayerNorm: [d] */
    attn_model_layer_w *layer;  /* [num_layers] */
    float *pool_w, *pool_b;     /* pooler.dense: [d, d], [d] */
    float *cls_w, *cls_b;       /* classifier: [C, d], [C] */
} attn_model_weights;

/* The number of parameter tensors of a configuration: 5 + 16 L + 4. */
int64_t attn_model_tensor_count(const attn_model_config *cfg);
/* Tensor i's Hugging Face name (with the "bert." prefix where BertForSequenceClassification
 * has it), shape and weight-decay flag; name is written to buf (n bytes). */
void attn_model_tensor_info(const attn_model_config *cfg, int64_t i, char *buf, size_t n,
                            int *ndim, int64_t shape[2], int *decay);
/* Total f32 elements of every parameter (the size of one flat block). */
int64_t attn_model_numel(const attn_model_config *cfg);
/* Where tensor i starts in the flat block (layers keep wq, wk, wv adjacent, then bq, bk, bv:
 * one [3d, d] weight and one [3d] bias for the fused projection). */
int64_t attn_model_tensor_offset(const attn_model_config *cfg, int64_t i);
/* Lays the weights struct over a flat block of attn_model_numel floats; w->layer must point to
 * num_layers layer structs. */
void attn_model_weights_over(const attn_model_config *cfg, float *block, attn_model_weights *w);

/* The model's parameter values as a weights struct (tests, the reference forward). */
const attn_model_weights *attn_model_values(const attn_model *m);

#endif /* ATTN_MODEL_WEIGHTS_H_ */
