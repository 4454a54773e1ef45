/* attn_model_impl.h - the model object: configuration, parameter values and gradients in flat
 * blocks with the named views over them, AdamW moments, and the tape of the last forward (the
 * activations the backward reads). Private to the model room. */
#ifndef ATTN_MODEL_IMPL_H_
#define ATTN_MODEL_IMPL_H_

#include "attn_model_saliency.h"
#include "attn_model_weights.h"
#include "attn/attn_sdpa.h"

/* One layer's activations. LayerNorms keep their normalised input and 1/std. */
typedef struct attn_model_layer_tape {
    float *x;              /* [N, d] the layer's input (the previous LayerNorm's output) */
    float *q, *k, *v;      /* [B, S, H, Dh] views of one [N, 3d] product: row stride 3d */
    float *ctx;            /* [N, d] the attention output */
    float *lse;            /* [N, H] its log-sum-exp */
    float *xhat1, *rstd1;  /* LayerNorm1 of x + ctx Wo^T + bo */
    float *h1;             /* [N, d] LayerNorm1's output */
    float *u, *cdf, *m;    /* [N, I] MLP pre-activation, Phi(u), GELU(u) = u Phi(u) */
    float *xhat2, *rstd2;  /* LayerNorm2 of h1 + m W2^T + b2 */
} attn_model_layer_tape;

typedef struct attn_model_tape {
    int64_t cap_tokens;    /* tokens the buffers hold */
    int64_t cap_batch;     /* sequences they hold */
    int64_t batch, seq;    /* the last forward's shape; 0 = no forward yet */
    int from_embeddings;   /* the last forward was given e directly */
    /* The last layer ran on the [CLS] rows only (no output needed the others): its k and v
     * cover every token, everything else (q, ctx, lse, LayerNorms, MLP) the first B rows of
     * its buffers, q at each sequence's first row. */
    int cls_only;
    int32_t *ids, *types;  /* [N] */
    uint8_t *mask;         /* [N] 1 token, 0 padding; NULL-equivalent when !has_mask */
    int has_mask;
    float *xhat0, *rstd0;  /* embedding LayerNorm */
    attn_model_layer_tape *layer;
    float *x_out;          /* [N, d] the last layer's output */
    float *cls, *pooled;   /* [B, d] x_out's first token, tanh(W cls + b) */
    float *logits;         /* [B, C] */
    float *block;          /* everything above, one allocation */
    float *scratch;        /* the backward's temporaries, kept between calls */
    int64_t scratch_cap;   /* floats in scratch */
} attn_model_tape;

struct attn_model {
    attn_backend *be;
    attn_model_config cfg;
    int64_t ntensor, numel;
    attn_model_param *param; /* ntensor entries; names in `names` */
    char *names;
    float *value, *grad;     /* numel each */
    float *adam_m, *adam_v;  /* numel each, allocated on the first step */
    int64_t adam_step;
    attn_model_weights w, g; /* views over value and grad */
    attn_model_tape tape;
    double attn_seconds;     /* wall time inside the attention calls, for `attn bench` */
    int all_rows;            /* `attn bench --all-rows`: never the [CLS]-only last layer */
    /* Set only during attn_model_backward_saliency: no parameter gradient, and the pooler's
     * local derivative replaced (attn_model_saliency.h). */
    int no_param_grad;
    const float *pool_slope;
};

#define ATTN_MODEL_NAME_MAX 160


/* Wall-clock seconds (monotonic). */
double attn_model_now(void);

/* Allocates a model with zeroed values for cfg (checked). */
attn_status attn_model_alloc(attn_backend *be, const attn_model_config *cfg, attn_model **out);
/* Fills the parameters as transformers initialises BERT (normal(0, range), biases 0, LN 1). */
void attn_model_init_params(attn_model *m, uint64_t seed, int64_t first, int64_t last);
/* Grows the tape to hold B x S tokens. */
attn_status attn_model_tape_reserve(attn_model *m, int64_t batch, int64_t seq);
void attn_model_tape_free(attn_model_tape *t);

/* The attention tensors of one layer: q, k, v as [B, S, H, Dh] views of [N, 3d] rows, ctx of
 * [N, d] rows, the
 * LSE and key scores as [B, S, H, 1], the padding mask as [B, 1, 1, S] key flags. */
typedef struct attn_model_attn_views {
    attn_tensor q, k, v, ctx, lse, ks, mask;
} attn_model_attn_views;

/* A [B, S, H, Dh] view of q, k or v inside the fused [N, 3d] projection rows. */
attn_tensor attn_model_qkv_view(float *p, int64_t B, int64_t S, int64_t H, int64_t Dh);
void attn_model_views(const attn_model *m, const attn_model_layer_tape *lt, float *ks,
                      attn_model_attn_views *lv);
/* The views of a layer run on the [CLS] rows only: q, ctx and lse with one query row per
 * sequence, k and v over every token. */
void attn_model_views_cls(const attn_model *m, const attn_model_layer_tape *lt,
                          attn_model_attn_views *lv);
/* The softmax attention of every layer: BERT's scale, the padding mask when there is one. */
attn_sdpa_desc attn_model_sdpa_desc(const attn_model *m, const attn_tensor *mask);

#endif /* ATTN_MODEL_IMPL_H_ */
