/* attn_explain_impl.h - the saliency methods behind attn_explain, private to the explain room.
 * attn_explain (attn_explain.c) checks the arguments and resolves the classes before any of
 * them runs, so each gets a valid batch, targets [B] that are never NULL and checked options,
 * and writes scores [B, S] in full (0 at padding) or fails without a partial guarantee (the
 * caller copies out on success only). */
#ifndef ATTN_EXPLAIN_IMPL_H_
#define ATTN_EXPLAIN_IMPL_H_

#include "attn/attn_explain.h"

/* Attention received: sum over layers (all) or the last layer, heads and query rows. */
attn_status attn_explain_attention(attn_model *m, const attn_model_input *in, int last_only,
                                   float *scores);
/* Rollout: row [CLS] of the product over layers of 0.5 mean_h A + 0.5 I. */
attn_status attn_explain_rollout(attn_model *m, const attn_model_input *in, float *scores);
/* Flow: max-flow from each input node to ([CLS], last layer) on the layered graph. */
attn_status attn_explain_flow(attn_model *m, const attn_model_input *in, float *scores);
/* Vanilla gradient (times_input 0) or input x gradient (1). */
attn_status attn_explain_gradient(attn_model *m, const attn_model_input *in,
                                  const int32_t *targets, int times_input, float *scores);
attn_status attn_explain_integrated_gradients(attn_model *m, const attn_model_input *in,
                                              const int32_t *targets,
                                              const attn_explain_options *opt, float *scores);
attn_status attn_explain_deeplift(attn_model *m, const attn_model_input *in,
                                  const int32_t *targets, const attn_explain_options *opt,
                                  float *scores);
attn_status attn_explain_lime(attn_model *m, const attn_model_input *in, const int32_t *targets,
                              const attn_explain_options *opt, float *scores);
/* Random: each row's tokens get a random permutation of 1 .. (its token count), padding 0. */
void attn_explain_random(const attn_model_input *in, uint64_t seed, float *scores);

/* ---- shared by the methods (attn_explain.c) ------------------------------------------------- */
/* 1 when position s of row b is a token (no mask, or mask 1). */
int attn_explain_is_token(const attn_model_input *in, int64_t b, int64_t s);
/* A batch of n copies of row b of `in` (its mask and token types; ids NULL), for the methods
 * that run many inputs derived from one sequence; `embeddings` is left for the caller. The
 * rows live in *buf (free it with attn_explain_rows_free). */
typedef struct attn_explain_rows {
    attn_model_input in;
    uint8_t *mask;
    int32_t *types;
} attn_explain_rows;
attn_status attn_explain_rows_of(const attn_model_input *in, int64_t b, int64_t n,
                                 attn_explain_rows *rows);
void attn_explain_rows_free(attn_explain_rows *rows);
/* Sequences per model call: opt->max_batch, or 128 when 0. */
int64_t attn_explain_chunk(const attn_explain_options *opt);

/* ---- shared by rollout and flow (attn_explain_attention.c) ---------------------------------- */
/* Row b's graph: its nodes are its tokens and position 0 ([CLS], the row the pooler reads, a
 * node even where masked), pos[0 .. n) ascending with pos[0] = 0; ahat [L, n, n] holds, per
 * layer l, Ahat[i, k] = 0.5 mean_h A[l, h, pos[i], pos[k]] + 0.5 [i == k] with each row
 * re-normalised to sum 1 (query node i, key node k). */
typedef attn_status (*attn_explain_ahat_fn)(void *ctx, int64_t b, const int64_t *pos, int64_t n,
                                            const double *ahat);
/* Runs the model (the attention maps of a few rows per call) and calls fn on every row in
 * order; stops at the first status fn returns that is not ATTN_OK and returns it. */
attn_status attn_explain_each_ahat(attn_model *m, const attn_model_input *in,
                                   attn_explain_ahat_fn fn, void *ctx);
/* The n-point Gauss-Legendre rule on [-1, 1]: nodes x [n] ascending and weights w [n] (summing
 * to 2), accurate to about 1e-15 for n up to 1000 (attn_explain_quadrature.c). */
attn_status attn_explain_gauss_legendre(int64_t n, double *x, double *w);

#endif /* ATTN_EXPLAIN_IMPL_H_ */
