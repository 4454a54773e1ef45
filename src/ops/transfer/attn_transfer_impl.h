/* attn_transfer_impl.h - the transfer model's private layout: the parameter arena with the
 * named tensors, the tape of one forward (the activations the backward reads), and the
 * functions the room's files share. */
#ifndef ATTN_TRANSFER_IMPL_H_
#define ATTN_TRANSFER_IMPL_H_

#include "attn/attn_sdpa.h"
#include "attn/attn_transfer.h"

#include <math.h>

#define ATTN_TRANSFER_MAX_TENSORS 11

/* Pointers into the value (or grad) arena, one per parameter tensor; NULL where the
 * configuration has no such tensor. */
typedef struct attn_transfer_weights {
    float *Wc, *bc; /* embed.weight [m, F], embed.bias [m] */
    float *Ws, *bs; /* source.weight [K, m], source.bias [K] */
    float *wt, *bt; /* target.weight [m], target.bias [1] */
    float *Wa;      /* attention.key.weight [h, m] */
    float *Wq, *bq; /* attention.query.weight [h, m], attention.query.bias [h] */
    float *v;       /* attention.score.weight [h] */
    float *rho;     /* attention.log_temperature [1] */
} attn_transfer_weights;

/* One forward's activations for Nt target and Ns source examples; R rows of attention
 * (Nt per example, else 1). Buffers grow to the largest batch seen and are reused. */
typedef struct attn_transfer_tape {
    int64_t nt, ns, rows; /* 0 until a forward succeeds */
    size_t cap_floats;    /* floats held by `arena` */
    float *arena;         /* the float buffers below, carved from one allocation */
    float *xt, *xs;       /* copies of the inputs [Nt, F], [Ns, F] */
    float *et, *es;       /* embeddings after the activation [Nt, m], [Ns, m] */
    float *zt, *zs;       /* logits [Nt], [Ns, K] */
    float *vals;          /* sdpa's values [K, m + 1]: rows [w_i, b_i] */
    float *q;             /* the query w_t [m] per attribute (per example the rows of et) */
    float *zeros;         /* mlp score: h zeros, W_a's bias for attn_model_linear (which
                           * takes one) */
    float *ukey;          /* mlp score: W_a w_i [K, h] */
    float *uquery;        /* mlp score: W_q q_r + b_q [R, h] */
    float *hid;           /* mlp score: tanh(W_a w_i + W_q q_r + b_q) [R, K, h] */
    float *score;         /* mlp and cosine scores: s [R, K], sdpa's additive mask */
    float *qnorm, *knorm; /* cosine score: |q_r| [R], |w_i| [K] (eps included) */
    float *out;           /* sum_i alpha_i [w_i, b_i] [R, m + 1] */
    float *lse;           /* sdpa's log-sum-exp [R] */
    float *alpha;         /* the attention weights [R, K] */
    float *comb;          /* the combined classifier [w*, b*] [R, m + 1] */
    uint8_t *yt, *ys;     /* copies of the labels [Nt], [Ns, K] (unset by predict) */
    size_t cap_labels;
    double loss, loss_t, loss_s;
    int source_only;      /* the batch's source_only: the target BCE is out of the loss */
} attn_transfer_tape;

struct attn_transfer {
    attn_backend *be;
    attn_transfer_config cfg;
    int64_t ntensor, numel;
    attn_transfer_param param[ATTN_TRANSFER_MAX_TENSORS];
    float *value, *grad;    /* numel each */
    float *adam_m, *adam_v; /* numel each, allocated on the first step */
    int64_t adam_step;
    attn_transfer_weights w, g; /* the tensors in value and in grad */
    attn_transfer_tape tape;
};

/* The default of attn_transfer_config.detach (docs/transfer.md: the sources are available
 * classifiers, trained on the source data alone). */
#define ATTN_TRANSFER_DETACH_DEFAULT ATTN_TRANSFER_DETACH_NONE

/* The cosine score's default tau (the best of 1 .. 5 on the benchmark at 20 labels,
 * docs/transfer.md), and the largest accepted (logits stay far below f32's exp overflow). */
#define ATTN_TRANSFER_TEMPERATURE_DEFAULT 2.5
#define ATTN_TRANSFER_TEMPERATURE_MAX 50.0

/* 1 when the target loss trains the source classifiers (and with them the keys and values). */
static inline int attn_transfer_target_trains_heads(const attn_transfer_config *c)
{
    return c->detach == ATTN_TRANSFER_DETACH_NONE;
}
/* 1 when the target loss trains the shared embedding. */
static inline int attn_transfer_target_trains_embed(const attn_transfer_config *c)
{
    return c->detach != ATTN_TRANSFER_DETACH_SHARED;
}

/* 1 when the query side of the attention exists (ATTENTION mode). */
static inline int attn_transfer_attends(const attn_transfer_config *c)
{
    return c->mode == ATTN_TRANSFER_ATTENTION;
}
/* Rows of attention for nt target examples: nt with one query per example, else 1. */
static inline int64_t attn_transfer_rows(const attn_transfer_config *c, int64_t nt)
{
    return attn_transfer_attends(c) && c->query == ATTN_TRANSFER_QUERY_EXAMPLE ? nt : 1;
}
/* 1 when the mlp score's parameters exist. */
static inline int attn_transfer_has_mlp(const attn_transfer_config *c)
{
    return attn_transfer_attends(c) && c->score == ATTN_TRANSFER_SCORE_MLP;
}
/* 1 when the cosine score is used (ATTENTION mode). */
static inline int attn_transfer_has_cosine(const attn_transfer_config *c)
{
    return attn_transfer_attends(c) && c->score == ATTN_TRANSFER_SCORE_COSINE;
}
/* 1 when the score is computed on the host and enters sdpa as its additive mask. */
static inline int attn_transfer_host_score(const attn_transfer_config *c)
{
    return attn_transfer_has_mlp(c) || attn_transfer_has_cosine(c);
}
/* 1 when tau is the parameter attention.log_temperature. */
static inline int attn_transfer_learns_temperature(const attn_transfer_config *c)
{
    return attn_transfer_has_cosine(c) && c->learn_temperature;
}
/* 1 when w_t, b_t enter the combined classifier. */
static inline int attn_transfer_adds_target(const attn_transfer_config *c)
{
    return c->mode == ATTN_TRANSFER_TARGET_ONLY || c->include_target;
}

/* The query rows the score reads: w_t (one row) or the target embeddings (one per example). */
static inline const float *attn_transfer_query_rows(const attn_transfer *t,
                                                    const attn_transfer_tape *tp)
{
    return t->cfg.query == ATTN_TRANSFER_QUERY_EXAMPLE ? tp->et : tp->q;
}

/* The cosine score's tau under the current parameters. */
static inline double attn_transfer_tau(const attn_transfer *t)
{
    return attn_transfer_learns_temperature(&t->cfg) ? exp((double)t->w.rho[0])
                                                     : t->cfg.temperature;
}
/* The norm of a vector with a floor inside the root, so that cos stays differentiable at 0. */
#define ATTN_TRANSFER_NORM_EPS 1e-12

/* attn_transfer_forward.c: sizes the tape for a batch (nothing else is touched on failure),
 * then runs the model on it; labels are copied and the loss taken when yt is not NULL. */
attn_status attn_transfer_tape_reserve(const attn_transfer_config *c, attn_transfer_tape *tp,
                                       int64_t nt, int64_t ns);
void attn_transfer_tape_free(attn_transfer_tape *tp);
attn_status attn_transfer_run(attn_transfer *t, attn_transfer_tape *tp, int64_t nt,
                              const float *xt, const uint8_t *yt, int64_t ns, const float *xs,
                              const uint8_t *ys);
/* The sdpa operands of the tape's attention: q, k, v, out, lse, mask (mask unused for dot),
 * and the descriptor. Shared by the forward and the backward. */
typedef struct attn_transfer_views {
    attn_tensor q, k, v, out, lse, mask;
    attn_sdpa_desc desc;
} attn_transfer_views;
void attn_transfer_views_make(const attn_transfer *t, const attn_transfer_tape *tp,
                              attn_transfer_views *vw);
/* The derivative of the activation, read from its output e (relu: e > 0, tanh: 1 - e^2). */
float attn_transfer_act_grad(attn_transfer_act act, float e);
/* The constant zero the mlp score's query and keys point at (sdpa's logit is then the mask). */
extern const float attn_transfer_zero;

#endif /* ATTN_TRANSFER_IMPL_H_ */
