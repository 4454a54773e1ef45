/* model_ref.h - the ground truth of the BERT encoder (reference/model.c): Hugging Face's
 * BertForSequenceClassification forward in eval mode, in f64 over the model's f32 parameters.
 * The model's tests compare attn_model_forward with it and take finite differences of it to
 * check attn_model_backward. */
#ifndef ATTN_MODEL_REF_H_
#define ATTN_MODEL_REF_H_

#include "attn_model_weights.h"

/* What attn_ref_model_forward writes, as doubles in dense row-major layouts (the layouts of
 * attn_model_outputs). logits is required, every other pointer may be NULL. L is num_layers,
 * H num_heads, d hidden_size, C num_labels. */
typedef struct attn_ref_model_out {
    double *logits;        /* [B, C] */
    double *attentions;    /* [L, B, H, S, S]: softmax probabilities (0 at padded keys) */
    double *key_score;     /* [L, B, S, H]: sum over every query row i of P[l, b, h, i, j] */
    double *hidden;        /* [L + 1, B, S, d]: e, then each layer's output */
    double *attn_residual; /* [L, B, S, d]: a layer's input plus its attention output */
    double *pooled;        /* [B, d]: tanh(Wp x_L[b, 0] + bp) */
} attn_ref_model_out;

/* The forward of a configuration cfg with parameters w on a batch in (host memory), f64
 * throughout. A query row whose keys are all padded gets probabilities 0 and attention output 0
 * (attn's convention for a row with no visible key; Hugging Face adds the float minimum instead
 * and so spreads such a row evenly over the padded keys). Checks its arguments first (NULL
 * pointers, sizes, ids and token types in range) and writes nothing on error. */
attn_status attn_ref_model_forward(const attn_model_config *cfg, const attn_model_weights *w,
                                   const attn_model_input *in, const attn_ref_model_out *o);

#endif /* ATTN_MODEL_REF_H_ */
