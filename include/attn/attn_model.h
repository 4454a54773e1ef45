/* attn_model.h - a small BERT encoder for sequence classification built on attn: the Hugging
 * Face configuration and safetensors checkpoints of BertForSequenceClassification, forward
 * (logits, attention maps, attention received per key, hidden states), backward (every
 * parameter and the embedding-layer output), cross-entropy training with AdamW. Every attention
 * call goes through attn_sdpa_forward_ex / attn_sdpa_backward on the model's backend; the dense
 * layers run on the host in f32 (BLIS where the build has the cpu backend). Part of attn.h. */
#ifndef ATTN_MODEL_H_
#define ATTN_MODEL_H_

#include "attn/attn_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configuration (Hugging Face config.json of model_type "bert") ------------------------ */
typedef struct attn_model_config {
    int64_t vocab_size;        /* vocab_size */
    int64_t hidden_size;       /* hidden_size: d, a multiple of num_heads */
    int64_t num_layers;        /* num_hidden_layers */
    int64_t num_heads;         /* num_attention_heads */
    int64_t intermediate_size; /* intermediate_size (the MLP's width) */
    int64_t max_positions;     /* max_position_embeddings */
    int64_t type_vocab_size;   /* type_vocab_size (token types) */
    int64_t num_labels;        /* number of classes: num_labels or the size of id2label */
    int64_t pad_token_id;      /* pad_token_id (written back; the attention mask is explicit) */
    double layer_norm_eps;     /* layer_norm_eps */
    double initializer_range;  /* initializer_range: std of the normal initialisation */
    uint64_t reserved[4];      /* must be zero */
} attn_model_config;

/* BERT-base's values except the small sizes: vocab 30522, d 64, 2 layers, 4 heads, MLP 256,
 * 512 positions, 2 token types, 2 labels, eps 1e-12, init range 0.02. */
ATTN_API attn_model_config attn_model_config_default(void);
/* Checks a configuration: every size positive, d a multiple of the heads, no size product that
 * overflows. ATTN_ERR_INVALID_ARGUMENT with the field named otherwise. */
ATTN_API attn_status attn_model_config_check(const attn_model_config *cfg);
/* Parses config.json text (n bytes, not necessarily NUL-terminated). Fields absent from the
 * text take transformers' BertConfig defaults (BERT-base: d 768, 12 layers, 12 heads, MLP
 * 3072, the rest as attn_model_config_default); an activation other than "gelu" or a position embedding type other
 * than "absolute" is ATTN_ERR_UNSUPPORTED. */
ATTN_API attn_status attn_model_config_parse(const char *json, size_t n, attn_model_config *cfg);
/* Reads and parses a config.json file. */
ATTN_API attn_status attn_model_config_read(const char *path, attn_model_config *cfg);
/* Writes a config.json that transformers' BertForSequenceClassification loads unchanged. */
ATTN_API attn_status attn_model_config_write(const attn_model_config *cfg, const char *path);

/* ---- the model ------------------------------------------------------------------------------ */
typedef struct attn_model attn_model;

/* A model with freshly initialised parameters, as transformers initialises BERT: weights
 * normal(0, initializer_range) from the counter-based generator under `seed`, biases 0,
 * LayerNorm weights 1. be runs the attention (it stays owned by the caller and must outlive
 * the model). */
ATTN_API attn_status attn_model_create(attn_backend *be, const attn_model_config *cfg,
                                       uint64_t seed, attn_model **out);

/* Load flags. NEW_HEAD: a checkpoint without pooler or classifier (a pre-trained BertModel or
 * BertForPreTraining) gets freshly initialised ones under `seed`, as transformers does with a
 * warning; without it their absence is an error naming the tensor. */
#define ATTN_MODEL_LOAD_NEW_HEAD 1u

/* Loads a directory as save_pretrained writes it: config.json and model.safetensors (f32, f16
 * or bf16 tensors, named as BertForSequenceClassification's, with or without the "bert."
 * prefix; LayerNorm gamma/beta accepted for weight/bias). Tensors the model does not use (the
 * pre-training heads, position_ids) are ignored. A missing or mis-shaped tensor, an unknown
 * dtype, a truncated file or a configuration the weights contradict is an error naming it. */
ATTN_API attn_status attn_model_load(attn_backend *be, const char *dir, unsigned flags,
                                     uint64_t seed, attn_model **out);
/* Writes config.json and model.safetensors (f32) into dir (which must exist). */
ATTN_API attn_status attn_model_save(const attn_model *m, const char *dir);
ATTN_API void attn_model_free(attn_model *m);
ATTN_API const attn_model_config *attn_model_get_config(const attn_model *m);

/* ---- parameters, by their Hugging Face names ---------------------------------------------- */
typedef struct attn_model_param {
    const char *name; /* e.g. "bert.encoder.layer.0.attention.self.query.weight" */
    int ndim;         /* 1 or 2 */
    int64_t shape[2]; /* PyTorch's shape: Linear weights are [out, in] */
    int64_t numel;
    float *value;     /* row-major f32, owned by the model */
    float *grad;      /* the accumulated gradient, same shape */
    int decay;        /* 1 where AdamW applies weight decay (not biases, not LayerNorm) */
} attn_model_param;

ATTN_API int64_t attn_model_param_count(const attn_model *m);
/* Parameter i (0 <= i < count) in a fixed order: embeddings, layers, pooler, classifier. */
ATTN_API attn_status attn_model_param_get(attn_model *m, int64_t i, attn_model_param *p);
/* Parameter by name (with or without the "bert." prefix); ATTN_ERR_INVALID_ARGUMENT if none. */
ATTN_API attn_status attn_model_param_find(attn_model *m, const char *name, attn_model_param *p);

/* ---- forward ------------------------------------------------------------------------------- */
/* One batch of B sequences of S tokens, host memory, row-major [B, S]. */
typedef struct attn_model_input {
    int64_t batch, seq;
    const int32_t *ids;            /* token ids in [0, vocab); required unless embeddings */
    const uint8_t *attention_mask; /* optional: 1 a token, 0 padding (hidden as a key) */
    const int32_t *token_types;    /* optional: in [0, type_vocab); default 0 */
    /* optional [B, S, d]: the embedding-layer output e = LayerNorm(word + position + type)
     * given directly (the saliency methods' interpolations); ids are then ignored. */
    const float *embeddings;
    uint64_t reserved[4];          /* must be zero */
} attn_model_input;

/* What a forward writes, host memory, f32. logits is required, the rest optional (NULL). L is
 * num_layers, H num_heads, d hidden_size. */
typedef struct attn_model_outputs {
    float *logits;        /* [B, num_labels] */
    float *attentions;    /* [L, B, H, S, S]: each layer's attention probabilities */
    float *key_score;     /* [L, B, S, H]: attention each key receives, summed over queries */
    float *hidden;        /* [L + 1, B, S, d]: the embedding output, then each layer's output */
    float *attn_residual; /* [L, B, S, d]: each layer's input plus its attention output, before
                           * the LayerNorm (the pair SqueezeAttention compares with its input) */
    float *pooled;        /* [B, d]: tanh(W h_CLS + b) */
    uint64_t reserved[4]; /* must be zero */
} attn_model_outputs;

/* Runs the encoder. The activations are kept in the model for attn_model_backward (the model
 * is not thread-safe: one call at a time). Bad input (ids outside the vocabulary, a sequence
 * longer than max_positions, ...) and an attention the backend cannot run are found before
 * anything is written; a device failure mid-way may leave the outputs partly written. */
ATTN_API attn_status attn_model_forward(attn_model *m, const attn_model_input *in,
                                        const attn_model_outputs *outs);

/* ---- backward ------------------------------------------------------------------------------ */
/* Back-propagates dlogits [B, num_labels] through the last forward: adds every parameter's
 * gradient to its grad (attn_model_zero_grad clears them) and, when d_embeddings is not NULL,
 * writes the gradient with respect to the embedding-layer output e, [B, S, d]. After a forward
 * given `embeddings`, the embedding tables and their LayerNorm get no gradient. The word
 * embedding of pad_token_id gets none either (nn.Embedding's padding_idx). */
ATTN_API attn_status attn_model_backward(attn_model *m, const float *dlogits, float *d_embeddings);
ATTN_API void attn_model_zero_grad(attn_model *m);

/* Mean cross-entropy of the last forward's logits against labels [B] (in [0, num_labels)),
 * and, when dlogits is not NULL, its gradient [B, num_labels]. */
ATTN_API attn_status attn_model_loss(const attn_model *m, const int32_t *labels, double *loss,
                                     float *dlogits);

/* ---- training ------------------------------------------------------------------------------ */
typedef struct attn_model_adamw {
    double lr;           /* learning rate of this step */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* decoupled (AdamW), on weights only (param.decay) */
    double clip_norm;    /* global gradient-norm clip; 0 = none */
    uint64_t reserved[4];
} attn_model_adamw;

ATTN_API attn_model_adamw attn_model_adamw_default(void); /* lr 1e-3, wd 0.01, clip 1.0 */

/* One training step on a batch: forward, mean cross-entropy, backward, global-norm clip, AdamW
 * update. Writes the loss (before the update) and the gradient norm (before clipping) where not
 * NULL. Deterministic for a given thread count. */
ATTN_API attn_status attn_model_train_step(attn_model *m, const attn_model_input *in,
                                           const int32_t *labels, const attn_model_adamw *opt,
                                           double *loss, double *grad_norm);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_MODEL_H_ */
