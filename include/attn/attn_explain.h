/* attn_explain.h - token saliency for the model's classifier (attn_model.h) and its evaluation:
 * the attention-based scores (attention received, rollout, flow), the gradient-based ones
 * (vanilla gradient, input x gradient, integrated gradients, DeepLIFT), LIME and a random
 * baseline, each exactly as captum and the saliency study compute it (docs/explain.md); then
 * the evaluation without a crowd: top-k selection, simulated readers (the model itself and a
 * bag-of-words reader), faithfulness metrics and, with planted rationales, precision/recall.
 * Part of attn.h. */
#ifndef ATTN_EXPLAIN_H_
#define ATTN_EXPLAIN_H_

#include "attn/attn_core.h"
#include "attn/attn_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- methods ------------------------------------------------------------------------------- */
typedef enum attn_explain_method {
    ATTN_EXPLAIN_ALL_ATTENTION,        /* "all_attention": attention received, all layers */
    ATTN_EXPLAIN_LAST_ATTENTION,       /* "last_attention": the same, last layer only */
    ATTN_EXPLAIN_VANILLA_GRADIENT,     /* "vanilla_gradient": sum_k |d f_c / d e_jk| */
    ATTN_EXPLAIN_INPUT_X_GRADIENT,     /* "input_x_gradient": sum_k e_jk d f_c / d e_jk */
    ATTN_EXPLAIN_INTEGRATED_GRADIENTS, /* "integrated_gradients": zero baseline, Gauss-Legendre */
    ATTN_EXPLAIN_DEEPLIFT,             /* "deeplift": rescale rule at the pooler tanh */
    ATTN_EXPLAIN_LIME,                 /* "lime": per-scalar features, min-norm least squares */
    ATTN_EXPLAIN_RANDOM,               /* "random": a random permutation of the positions */
    ATTN_EXPLAIN_ROLLOUT,              /* "rollout": attention rollout, row [CLS] */
    ATTN_EXPLAIN_FLOW,                 /* "flow": attention flow (max-flow) to [CLS] */
    ATTN_EXPLAIN_METHOD_COUNT
} attn_explain_method;

/* The method's name as above ("all_attention", ...); "?" outside the enum. */
ATTN_API const char *attn_explain_method_name(attn_explain_method m);
/* The method of a name; ATTN_ERR_INVALID_ARGUMENT naming the known ones otherwise. */
ATTN_API attn_status attn_explain_method_parse(const char *name, attn_explain_method *m);

typedef struct attn_explain_options {
    attn_explain_method method;
    int64_t ig_steps;          /* integrated gradients: Gauss-Legendre nodes on [0, 1] (100) */
    int64_t lime_samples;      /* LIME: perturbed samples per sequence (40) */
    double lime_kernel_width;  /* LIME: width of the exponential kernel (1000) */
    /* LIME: optional given masks [B, lime_samples, S, d] of 0/1 (1 keeps e_jk, 0 sets it to the
     * zero baseline), to replay a run; NULL draws Bernoulli(0.5) from the generator under seed. */
    const uint8_t *lime_masks;
    uint64_t seed;             /* random and LIME draws (1) */
    int64_t max_batch;         /* sequences per model call in IG, LIME, DeepLIFT (128) */
    uint64_t reserved[4];      /* must be zero */
} attn_explain_options;

ATTN_API attn_explain_options attn_explain_options_default(void);

/* Token scores [B, S] of one method for the classes targets [B] (each in [0, num_labels);
 * NULL: the class the model predicts for each sequence). `in` gives ids (embeddings must be
 * NULL) and optionally the attention mask and token types; padding positions score 0.
 * The scores are f_c's attribution to each token, higher = more salient; their meaning per
 * method is in docs/explain.md. Runs the model (forward, and backward for the gradient
 * methods); nothing is written to scores on bad input. */
ATTN_API attn_status attn_explain(attn_model *m, const attn_model_input *in,
                                  const int32_t *targets, const attn_explain_options *opt,
                                  float *scores);

/* ---- evaluation ---------------------------------------------------------------------------- */
/* A bag-of-words reader: multinomial logistic regression on the counts of the token ids of a
 * text (the ids in `ignore` not counted), trained on full texts; the independent reader of the
 * simulated study. */
typedef struct attn_explain_bow attn_explain_bow;

typedef struct attn_explain_bow_options {
    int64_t epochs;        /* passes of full-batch gradient descent with AdamW (200) */
    double lr;             /* (0.05) */
    double l2;             /* weight decay (1e-4) */
    const int32_t *ignore; /* ids not counted (special tokens, the filler); may be NULL */
    int64_t n_ignore;
    uint64_t seed;         /* (1) */
    uint64_t reserved[4];  /* must be zero */
} attn_explain_bow_options;

ATTN_API attn_explain_bow_options attn_explain_bow_options_default(void);
/* Trains on N texts of S ids (ids in [0, vocab); mask [N, S] optional, 0 = padding) with labels
 * in [0, num_labels). */
ATTN_API attn_status attn_explain_bow_train(int64_t vocab, int64_t num_labels, int64_t N,
                                            int64_t S, const int32_t *ids, const uint8_t *mask,
                                            const int32_t *labels,
                                            const attn_explain_bow_options *opt,
                                            attn_explain_bow **out);
/* Class probabilities [N, num_labels] of N texts. */
ATTN_API attn_status attn_explain_bow_predict(const attn_explain_bow *r, int64_t N, int64_t S,
                                              const int32_t *ids, const uint8_t *mask,
                                              float *probs);
ATTN_API void attn_explain_bow_free(attn_explain_bow *r);

/* Which tokens a method may rank: eligible[B, S] is 1 for a word piece, 0 for padding, special
 * tokens and punctuation (they stay as they are in every shown text). */
/* keep[B, S]: 1 at the k most salient eligible tokens of each row (ties: the earlier position
 * first), 0 elsewhere. k is a fraction of the row's eligible tokens when as_fraction (rounded
 * up, so any positive fraction keeps at least 1 when the row has any; 0 keeps none), else a
 * whole count (capped at the row's eligible count). ATTN_ERR_INVALID_ARGUMENT for k < 0, a
 * fraction above 1, a count that is not whole, or a NaN score of an eligible token. */
ATTN_API attn_status attn_explain_top_k(int64_t B, int64_t S, const float *scores,
                                        const uint8_t *eligible, double k, int as_fraction,
                                        uint8_t *keep);

#define ATTN_EXPLAIN_MAX_K 16      /* reader k values and metric bins */
#define ATTN_EXPLAIN_MAX_CURVE 101 /* points of a deletion / insertion curve */

typedef struct attn_explain_eval_options {
    int32_t filler_id;          /* required (the default -1 is refused): the id that replaces
                                 * a hidden token ("." in the study) */
    int64_t n_k;                /* reader k values (5: 5, 10, 20, 30, 40 %) */
    double k[ATTN_EXPLAIN_MAX_K];
    int k_as_fraction;          /* 1: k are fractions of the eligible tokens; 0: counts */
    int64_t n_bins;             /* comprehensiveness / sufficiency bins (5: 1, 5, 10, 20, 50 %) */
    double bins[ATTN_EXPLAIN_MAX_K];
    int64_t aopc_steps;         /* AOPC's K: the top 1..K tokens removed (10) */
    double log_odds_fraction;   /* log-odds: the top fraction masked (0.2) */
    int64_t curve_points;       /* deletion / insertion points from 0 to 100 % (11) */
    const attn_explain_bow *bow; /* optional second reader */
    const uint8_t *rationale;   /* optional [B, S]: 1 at the planted tokens */
    int64_t max_batch;          /* sequences per model call (128) */
    uint64_t reserved[4];       /* must be zero */
} attn_explain_eval_options;

ATTN_API attn_explain_eval_options attn_explain_eval_options_default(void);

/* One method's figures over a batch. Probabilities p are of the class the model predicts on
 * the full text (y^). Means over the B texts. */
typedef struct attn_explain_eval {
    double model_acc[ATTN_EXPLAIN_MAX_K]; /* the model as reader: top-k shown, label correct */
    double bow_acc[ATTN_EXPLAIN_MAX_K];   /* the bag-of-words reader (0 without one) */
    double precision[ATTN_EXPLAIN_MAX_K]; /* planted tokens among the top k / k (0 without) */
    double recall[ATTN_EXPLAIN_MAX_K];    /* planted tokens among the top k / planted */
    double comprehensiveness;             /* mean over bins of p(y^|x) - p(y^|x without top) */
    double sufficiency;                   /* mean over bins of p(y^|x) - p(y^|top only) */
    double aopc;                          /* mean over k = 0..K of p(y^|x) - p(y^|x^(k)) */
    double log_odds;                      /* mean log(p(y^|x without top) / p(y^|x)) */
    double deletion[ATTN_EXPLAIN_MAX_CURVE];  /* p(y^) with the top t % removed */
    double insertion[ATTN_EXPLAIN_MAX_CURVE]; /* p(y^) with only the top t % shown */
    double deletion_auc, insertion_auc;   /* trapezoid areas over t in [0, 1] */
    uint64_t reserved[4];
} attn_explain_eval;

/* Evaluates one method's scores [B, S] on texts `in` with gold labels [B] and eligible [B, S]:
 * every figure of attn_explain_eval, by running the model (and the bag-of-words reader) on
 * texts whose hidden tokens are replaced by the filler. */
ATTN_API attn_status attn_explain_evaluate(attn_model *m, const attn_model_input *in,
                                           const int32_t *labels, const uint8_t *eligible,
                                           const float *scores,
                                           const attn_explain_eval_options *opt,
                                           attn_explain_eval *out);

/* The study's weighted average over k: acc [n_methods, n_k] row-major; weight of k is its
 * difficulty, 1 - (mean accuracy of all methods at k), normalised to sum 1 (equal weights when
 * every method is perfect at every k). Writes the weights [n_k] and avg [n_methods]. */
ATTN_API attn_status attn_explain_weighted_accuracy(int64_t n_methods, int64_t n_k,
                                                    const double *acc, double *weights,
                                                    double *avg);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_EXPLAIN_H_ */
