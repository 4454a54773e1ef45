/* attn_model_dense.h - the model's dense layers on host f32 rows of tokens: nn.Linear forward
 * and its two gradients (BLIS where the build has the cpu backend, a plain loop otherwise),
 * LayerNorm and the erf GELU with their backwards. N is the number of token rows. */
#ifndef ATTN_MODEL_DENSE_H_
#define ATTN_MODEL_DENSE_H_

#include <stdint.h>

/* y[N, out] = x[N, in] W^T + b, W [out, in]. */
void attn_model_linear(int64_t N, int64_t in, int64_t out, const float *x, const float *W,
                       const float *b, float *y);
/* dx[N, in] = beta dx + dy[N, out] W. */
void attn_model_linear_dx(int64_t N, int64_t in, int64_t out, const float *dy, const float *W,
                          float beta, float *dx);
/* dW[out, in] += dy^T x, db[out] += sum over rows of dy; nothing when dW is NULL. */
void attn_model_linear_dw(int64_t N, int64_t in, int64_t out, const float *dy, const float *x,
                          float *dW, float *db);
/* The same three on rows with a leading dimension (the distance between rows, >= the row's
 * width): a column block of a wider matrix, or every S-th row (the [CLS] tokens). */
void attn_model_linear_ld(int64_t N, int64_t in, int64_t out, const float *x, int64_t ldx,
                          const float *W, const float *b, float *y, int64_t ldy);
void attn_model_linear_dx_ld(int64_t N, int64_t in, int64_t out, const float *dy, int64_t lddy,
                             const float *W, float beta, float *dx, int64_t lddx);
void attn_model_linear_dw_ld(int64_t N, int64_t in, int64_t out, const float *dy, int64_t lddy,
                             const float *x, int64_t ldx, float *dW, float *db);
/* y = (r - mean) / sqrt(var + eps) * w + b per row of r [N, d] (biased variance, as
 * nn.LayerNorm); keeps xhat [N, d] and rstd [N] for the backward. y may alias r. */
void attn_model_layernorm(int64_t N, int64_t d, const float *r, const float *w, const float *b,
                          double eps, float *xhat, float *rstd, float *y);
/* dr = LayerNorm's input gradient for dy; dw += sum dy xhat, db += sum dy. dr may alias dy. */
void attn_model_layernorm_bwd(int64_t N, int64_t d, const float *dy, const float *xhat,
                              const float *rstd, const float *w, float *dw, float *db,
                              float *dr); /* dw and db NULL: only dr */
/* cdf = Phi(u) = 0.5 (1 + erf(u / sqrt 2)) and m = u Phi(u), elementwise over n values. */
void attn_model_gelu(int64_t n, const float *u, float *cdf, float *m);
/* du = dm * GELU'(u) = dm (Phi(u) + u phi(u)), with Phi(u) kept by the forward. du may alias
 * dm. */
void attn_model_gelu_bwd(int64_t n, const float *u, const float *cdf, const float *dm,
                         float *du);

#endif /* ATTN_MODEL_DENSE_H_ */
