/* attn_transfer.h - attention-guided attribute transfer after "Asking Friendly Strangers:
 * Non-Semantic Attribute Transfer" (Murrugarra-Llerena & Kovashka, AAAI 2018): a shared
 * embedding of source and target examples, K source attribute classifiers and one target
 * attribute classifier; an attention over the source classifiers (through attn_sdpa_forward_ex /
 * attn_sdpa_backward on the object's backend) combines them into the classifier applied to the
 * target examples. Multi-task BCE training with AdamW. Part of attn.h.
 *
 * The paper's equations were not available; this is our reading of the structure its text
 * describes (docs/transfer.md). Where the reading is uncertain the choice is an option:
 *
 *   E        = act(X W_c^T + b_c)            shared embedding, W_c [m, F]; act none|relu|tanh
 *   source   p_s[n, i] = sigmoid(E_s[n] . w_i + b_i), i = 1..K          (multi-task heads)
 *   query    q = w_t (one query per target attribute: alpha is [1, K]), or
 *            q = E_t[n] (one query per target example: alpha is [Nt, K])
 *   score    dot:  s_i = q . w_i / sqrt(m)                 (sdpa's own logit, keys w_i)
 *            mlp:  s_i = v . tanh(W_a w_i + W_q q + b_q)   (Stacked Attention Networks' form,
 *                  hidden size h; SAN's output bias is dropped: softmax ignores a shift)
 *            cosine: s_i = tau cos(q, w_i)                 (bounded logits, |s_i| <= tau; tau
 *                  fixed or learned as exp(rho))
 *   alpha    = softmax_i(s_i)                 values [w_i, b_i] (width m + 1)
 *   combine  w* = sum_i alpha_i w_i (+ w_t),  b* = sum_i alpha_i b_i (+ b_t)   (include_target)
 *   target   p_t[n] = sigmoid(E_t[n] . w* + b*)
 *   loss     mean over Nt of BCE(p_t, y_t) + source_weight * mean over [Ns, K] of BCE(p_s, Y_s)
 *            + target_decay / 2 * |w_t|^2     (the target BCE left out for a source-only batch)
 *   detach   the target BCE's gradient stops at the source classifiers (heads) and also at the
 *            embedding (shared); the source BCE trains them in every case
 *
 * Modes: ATTENTION (learned alpha, the default), UNIFORM (alpha = 1/K, no attention
 * parameters), TARGET_ONLY (w* = w_t, b* = b_t: the baseline without transfer; the source
 * heads still train the shared embedding when source_weight > 0).
 *
 * How the attention runs: one sdpa call of B = R batch entries (R = 1 per attribute, Nt per
 * example) with one query row each (Sq = 1, one head) over the same K keys and values (batch
 * stride 0), so sdpa's key_score is alpha row by row and its out is [w*, b*] before w_t, b_t;
 * the backward sums dk and dv over the entries. The mlp score is computed on the host and fed
 * as sdpa's additive mask [R, 1, 1, K] with a query and keys of width 1 that are all zero: the
 * logit is then exactly 0 + s_i, and its gradient comes back as sdpa's dmask_add (dq and dk
 * are identically zero and unused); the cosine score enters the same way. */
#ifndef ATTN_TRANSFER_H_
#define ATTN_TRANSFER_H_

#include "attn/attn_core.h"
#include "attn/attn_model.h" /* attn_model_param, attn_model_adamw */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configuration --------------------------------------------------------------------------- */
typedef enum attn_transfer_mode {
    ATTN_TRANSFER_ATTENTION = 0,  /* learned attention over the source classifiers */
    ATTN_TRANSFER_UNIFORM = 1,    /* alpha = 1/K */
    ATTN_TRANSFER_TARGET_ONLY = 2 /* the target classifier alone */
} attn_transfer_mode;

typedef enum attn_transfer_score {
    ATTN_TRANSFER_SCORE_DOT = 0, /* q . w_i / sqrt(m) */
    ATTN_TRANSFER_SCORE_MLP = 1, /* v . tanh(W_a w_i + W_q q + b_q) */
    ATTN_TRANSFER_SCORE_COSINE = 2 /* tau cos(q, w_i) */
} attn_transfer_score;

typedef enum attn_transfer_query {
    ATTN_TRANSFER_QUERY_ATTRIBUTE = 0, /* q = w_t: one alpha for the target attribute */
    ATTN_TRANSFER_QUERY_EXAMPLE = 1    /* q = E_t[n]: one alpha per target example */
} attn_transfer_query;

typedef enum attn_transfer_act {
    ATTN_TRANSFER_ACT_NONE = 0,
    ATTN_TRANSFER_ACT_RELU = 1,
    ATTN_TRANSFER_ACT_TANH = 2
} attn_transfer_act;

/* Which parameters the target loss trains besides w_t, b_t and the attention's own (the
 * source loss trains the embedding and the source classifiers in every case). */
typedef enum attn_transfer_detach {
    ATTN_TRANSFER_DETACH_NONE = 0,   /* the target loss reaches every parameter */
    ATTN_TRANSFER_DETACH_HEADS = 1,  /* not the source classifiers w_i, b_i (stop-gradient) */
    ATTN_TRANSFER_DETACH_SHARED = 2  /* neither the source classifiers nor the embedding */
} attn_transfer_detach;

typedef struct attn_transfer_config {
    int64_t features;          /* F: width of an input example (fc7 features in the paper) */
    int64_t embed;             /* m: width of the shared embedding */
    int64_t sources;           /* K >= 1: number of source attributes */
    int64_t attn_hidden;       /* h: hidden width of the mlp score (unused otherwise) */
    attn_transfer_act act;     /* the embedding's activation */
    attn_transfer_mode mode;
    attn_transfer_score score; /* ATTENTION mode only */
    attn_transfer_query query; /* ATTENTION mode only */
    int include_target;        /* 1: w* adds w_t and b* adds b_t (ATTENTION, UNIFORM) */
    double source_weight;      /* weight of the source BCE in the loss, >= 0 */
    attn_transfer_detach detach; /* what the target loss does not train */
    uint32_t learn_temperature; /* 1: the cosine score's tau is a parameter (0 or 1) */
    double temperature;        /* the cosine score's tau (its start when learned): finite, > 0
                                * with the cosine score, >= 0 (unused) otherwise */
    double target_decay;       /* >= 0: the L2 penalty target_decay / 2 |w_t|^2 in the loss */
    uint64_t reserved[1];      /* must be zero */
} attn_transfer_config;

/* features 32, embed 16, sources 8, attn_hidden 16, relu, attention, dot, per attribute,
 * include_target 1, source_weight 1, detach none, learn_temperature 0, temperature 2.5,
 * target_decay 0. */
ATTN_API attn_transfer_config attn_transfer_config_default(void);
/* Every size positive, K >= 1, enums in range, include_target 0 or 1, source_weight finite and
 * >= 0, no size product that overflows, reserved zero. ATTN_ERR_INVALID_ARGUMENT naming the
 * field otherwise. */
ATTN_API attn_status attn_transfer_config_check(const attn_transfer_config *cfg);
/* Sets one field from text, as the command line spells it: features, embed, sources,
 * attn_hidden (integers), act (none|relu|tanh), mode (attention|uniform|target-only), score
 * (dot|mlp|cosine), query (attribute|example), include_target (0|1), source_weight (a number),
 * detach (none|heads|shared), learn_temperature (0|1), temperature, target_decay (numbers). An
 * unknown key or a value that does not parse is ATTN_ERR_INVALID_ARGUMENT; cfg is then
 * unchanged. Ranges are left to attn_transfer_config_check. */
ATTN_API attn_status attn_transfer_config_set(attn_transfer_config *cfg, const char *key,
                                              const char *value);
/* Writes "features=32 embed=16 sources=8 attn_hidden=16 act=relu mode=attention score=dot
 * query=attribute include_target=1 source_weight=1 detach=none learn_temperature=0
 * temperature=2.5 target_decay=0" (the keys of attn_transfer_config_set) into
 * buf (n bytes, NUL-terminated, truncated if needed). */
ATTN_API attn_status attn_transfer_config_describe(const attn_transfer_config *cfg, char *buf,
                                                   size_t n);

/* ---- the model ------------------------------------------------------------------------------ */
typedef struct attn_transfer attn_transfer;

/* Fresh parameters under `seed` from the counter-based generator, as torch's nn.Linear
 * initialises: every weight and bias uniform in +-1/sqrt(fan_in). be runs the attention (owned
 * by the caller; it must outlive the object). */
ATTN_API attn_status attn_transfer_create(attn_backend *be, const attn_transfer_config *cfg,
                                          uint64_t seed, attn_transfer **out);
ATTN_API void attn_transfer_free(attn_transfer *t);
ATTN_API const attn_transfer_config *attn_transfer_get_config(const attn_transfer *t);
/* Rows of the attention weights for n target examples: n per example, 1 per attribute (and in
 * UNIFORM and TARGET_ONLY modes). */
ATTN_API int64_t attn_transfer_alpha_rows(const attn_transfer *t, int64_t n);

/* ---- parameters, by name ------------------------------------------------------------------- */
/* Fields as attn_model_param (name, ndim, shape, numel, value, grad, decay); weights are
 * [out, in] as torch stores them. The names, in this order:
 *   embed.weight [m, F], embed.bias [m]            W_c, b_c
 *   source.weight [K, m], source.bias [K]          w_i, b_i
 *   target.weight [m], target.bias [1]             w_t, b_t
 *   attention.key.weight [h, m]                    W_a   (mlp score only)
 *   attention.query.weight [h, m]                  W_q   (mlp score only)
 *   attention.query.bias [h]                       b_q   (mlp score only)
 *   attention.score.weight [h]                     v     (mlp score only)
 *   attention.log_temperature [1]                  rho = log tau (cosine score with
 *                                                  learn_temperature only; starts at
 *                                                  log(temperature))
 * decay is 1 on the weights, 0 on the biases and rho. */
typedef attn_model_param attn_transfer_param;

ATTN_API int64_t attn_transfer_param_count(const attn_transfer *t);
/* Parameter i, 0 <= i < count. */
ATTN_API attn_status attn_transfer_param_get(attn_transfer *t, int64_t i, attn_transfer_param *p);
/* Parameter by name; ATTN_ERR_INVALID_ARGUMENT if none. */
ATTN_API attn_status attn_transfer_param_find(attn_transfer *t, const char *name,
                                              attn_transfer_param *p);

/* ---- forward, backward, training ------------------------------------------------------------ */
/* One batch, host memory, row-major f32 features and 0/1 labels. */
typedef struct attn_transfer_batch {
    int64_t n_source;          /* Ns >= 0 (0: no source term in the loss) */
    int64_t n_target;          /* Nt >= 1 */
    const float *x_source;     /* [Ns, F], finite; may be NULL when Ns = 0 */
    const uint8_t *y_source;   /* [Ns, K] in {0, 1}; may be NULL when Ns = 0 */
    const float *x_target;     /* [Nt, F], finite */
    const uint8_t *y_target;   /* [Nt] in {0, 1} */
    uint64_t source_only;      /* 1: the target BCE is left out of the loss and its gradient
                                * (still reported in loss_parts[0]): training on the source
                                * data alone, e.g. before the attention is fitted. 0 or 1 */
    uint64_t reserved[3];      /* must be zero */
} attn_transfer_batch;

/* What a forward writes; every field optional (NULL). R = attn_transfer_alpha_rows(t, Nt). */
typedef struct attn_transfer_outputs {
    float *prob;          /* [Nt]: p_t */
    float *alpha;         /* [R, K]: the attention weights (1/K in UNIFORM, 0 in TARGET_ONLY) */
    float *source_prob;   /* [Ns, K]: p_s */
    double *loss;         /* [1]: the total loss */
    double *loss_parts;   /* [2]: the target BCE and the (unweighted) source BCE */
    uint64_t reserved[4]; /* must be zero */
} attn_transfer_outputs;

/* Runs the model on a batch and keeps its activations for attn_transfer_backward (one call at
 * a time per object). outs may be NULL. Bad input is refused before anything is written. */
ATTN_API attn_status attn_transfer_forward(attn_transfer *t, const attn_transfer_batch *batch,
                                           const attn_transfer_outputs *outs);
/* Adds the gradient of the last forward's loss to every parameter's grad. */
ATTN_API attn_status attn_transfer_backward(attn_transfer *t);
ATTN_API void attn_transfer_zero_grad(attn_transfer *t);

/* forward, zero_grad, backward, the global-norm clip and AdamW (as torch.optim.AdamW, decay on
 * the weights only) with the settings of attn_model_adamw (attn_model_adamw_default: lr 1e-3,
 * wd 0.01, clip 1). Writes the loss (before the update) and the gradient norm (before
 * clipping) where not NULL. Deterministic: the same bits for the same seed, batches, settings
 * and thread count. A bad batch or setting is refused before any parameter changes. */
ATTN_API attn_status attn_transfer_train_step(attn_transfer *t, const attn_transfer_batch *batch,
                                              const attn_model_adamw *opt, double *loss,
                                              double *grad_norm);

/* Target probabilities prob [n] (required) and, where not NULL, the attention weights alpha
 * [attn_transfer_alpha_rows(t, n), K] for n unlabelled target examples x [n, F]. Leaves the
 * last forward's activations alone. */
ATTN_API attn_status attn_transfer_predict(attn_transfer *t, int64_t n, const float *x,
                                           float *prob, float *alpha);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_TRANSFER_H_ */
