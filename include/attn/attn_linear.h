/* attn_linear.h - kernel linear attention (Katharopoulos et al. 2020, "Transformers are RNNs";
 * with Lightning Attention's per-head decay): the descriptor, the forward and backward calls,
 * their capability checks and the name of the implementation a backend runs. Part of attn.h. docs/ops/linear.md
 * gives the definition option by option. */
#ifndef ATTN_LINEAR_H_
#define ATTN_LINEAR_H_

#include "attn/attn_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The feature map phi, applied to each q and k row (Dk values). The paired maps return
 * Df = 2 Dk features, the others Df = Dk. */
typedef enum attn_linear_feature {
    ATTN_LINEAR_IDENTITY = 0,     /* phi(x) = x */
    ATTN_LINEAR_ELU = 1,          /* elu(x): x if x > 0 else exp(x) - 1 */
    ATTN_LINEAR_ELU1 = 2,         /* elu(x) + 1 (Katharopoulos; strictly positive) */
    ATTN_LINEAR_RELU = 3,         /* max(x, 0) */
    ATTN_LINEAR_SILU = 4,         /* x / (1 + exp(-x)) (TransNormerLLM's Swish) */
    ATTN_LINEAR_SOFTMAX_PAIR = 5, /* [softmax(x), softmax(-x)] over the row (RATTENTION) */
    ATTN_LINEAR_RELU_PAIR = 6     /* [relu(x), relu(-x)] */
} attn_linear_feature;

/* Per-head decay lambda of the state, S_t = lambda S_{t-1} + phi(k_t)^T v_t. */
typedef enum attn_linear_decay {
    ATTN_LINEAR_DECAY_NONE = 0,   /* lambda = 1 */
    ATTN_LINEAR_DECAY_SLOPES = 1, /* Lightning Attention / TransNormerLLM: lambda_g =
                                   * exp(-s_g), s_g the ALiBi slopes of Hkv heads
                                   * (2^(-8(g+1)/Hkv) for a power of two) */
    ATTN_LINEAR_DECAY_GIVEN = 2   /* lambda_g = decay_values[g], g < Hkv, each in (0, 1] */
} attn_linear_decay;

/* For query row i of head h (KV head g = h / (Hq/Hkv)), with f = phi(q_i) and
 * lambda = lambda_g (1 without decay):
 *   causal:     S_i = lambda^(i+1) S0 + sum_{j<=i} lambda^(i-j) phi(k_j)^T v_j
 *   non-causal: S   = S0 + sum_j phi(k_j)^T v_j         (every query sees every key)
 *   out_i = scale * f S_i                                              (normalize = 0)
 *   out_i = scale * f S_i / (scale * f . z_i + eps)                    (normalize = 1)
 * where z is S's companion with v = 1: z_i = lambda^(i+1) z0 + sum_{j<=i} lambda^(i-j)
 * phi(k_j). S0 (z0) is state_in (z_in), zero when absent. */
typedef struct attn_linear_desc {
    attn_linear_feature feature; /* default ATTN_LINEAR_ELU1 */
    int normalize;               /* 0 or 1 (default 1): divide by the running sum */
    float eps;                   /* added to the denominator; >= 0, finite (default 1e-6) */
    int causal;                  /* 0 or 1 (default 1) */
    float scale;                 /* multiplies phi(q); finite, nonzero (default 1) */
    attn_linear_decay decay;     /* default none; decay needs causal */
    const float *decay_values;   /* host array of Hkv values for ATTN_LINEAR_DECAY_GIVEN */
    /* Room for later fields (docs/api.md "Growable descriptors"): must be zero. */
    uint64_t reserved[6];
} attn_linear_desc;

/* Always start from this: elu+1, normalised (eps 1e-6), causal, scale 1, no decay. */
ATTN_API attn_linear_desc attn_linear_desc_default(void);

/* The state tensors of a call (any may be NULL). state_in / state_out: f32 [B, Hkv, Df, Dv]
 * (dims [batch, kv head, feature, value]): the running sum S of phi(k)^T v of the keys
 * before the call (in) and after it (out). z_in / z_out: f32 [B, Hkv, Df, 1], the running sum
 * of phi(k), which the normaliser needs: with normalize, state_in requires z_in and state_out
 * requires z_out; without it, z tensors are an error. Resuming from (state_out, z_out) equals
 * one call over the concatenated sequence (causal). */
typedef struct attn_linear_state {
    const attn_tensor *state_in, *z_in;
    const attn_tensor *state_out, *z_out;
} attn_linear_state;

/* q [B, S, Hq, Dk], k [B, S, Hkv, Dk], v [B, S, Hkv, Dv], out [B, S, Hq, Dv]; Hq a multiple of
 * Hkv. st may be NULL (no state). On any error nothing is written to the outputs. */
ATTN_API attn_status attn_linear_forward(attn_backend *be, const attn_linear_desc *desc,
                                         const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *v, const attn_tensor *out,
                                         const attn_linear_state *st);
/* Same checks as attn_linear_forward, runs nothing: ATTN_OK iff forward would run. */
ATTN_API attn_status attn_linear_supported(attn_backend *be, const attn_linear_desc *desc,
                                           const attn_tensor *q, const attn_tensor *k,
                                           const attn_tensor *v, const attn_tensor *out,
                                           const attn_linear_state *st);
/* Name of the implementation attn_linear_forward would run (e.g. "cpu:linear_chunk128"),
 * written to buf (n bytes, NUL-terminated). Runs the same checks as attn_linear_supported. */
ATTN_API attn_status attn_linear_impl_name(attn_backend *be, const attn_linear_desc *desc,
                                           const attn_tensor *q, const attn_tensor *k,
                                           const attn_tensor *v, const attn_tensor *out,
                                           const attn_linear_state *st, char *buf, size_t n);

/* ---- backward ---------------------------------------------------------------------------- */

/* The gradients attn_linear_backward writes, and those arriving at the forward's final state.
 * dq, dk, dv: the shapes of q, k, v, each f32/f16/bf16 (required). d_state_in, d_z_in: f32,
 * the shapes of st->state_in and st->z_in, which they require (optional outputs).
 * d_state_out [B, Hkv, Df, Dv] and d_z_out [B, Hkv, Df, 1]: f32 inputs, the gradients of the
 * final state and running sum when a later call or a loss uses them (optional, absent = 0;
 * d_z_out needs desc.normalize). dk and dv of a KV head sum over the query heads of its group. */
typedef struct attn_linear_grads {
    const attn_tensor *dq, *dk, *dv;
    const attn_tensor *d_state_in, *d_z_in;
    const attn_tensor *d_state_out, *d_z_out;
    uint64_t reserved[4]; /* must be zero */
} attn_linear_grads;

/* Gradients of the forward (same desc, q, k, v, st->state_in and st->z_in; st->state_out and
 * st->z_out must be NULL) with respect to q, k, v and the initial state, given dout
 * [B, S, Hq, Dv] (f32/f16/bf16), the gradient of out. The backward recomputes what it needs
 * from the inputs (no saved output). Deterministic; on any error nothing is written to the
 * gradients. docs/ops/linear.md, "Backward". */
ATTN_API attn_status attn_linear_backward(attn_backend *be, const attn_linear_desc *desc,
                                          const attn_tensor *q, const attn_tensor *k,
                                          const attn_tensor *v, const attn_linear_state *st,
                                          const attn_tensor *dout, const attn_linear_grads *g);
/* Same checks as attn_linear_backward, runs nothing. */
ATTN_API attn_status attn_linear_backward_supported(attn_backend *be,
                                                    const attn_linear_desc *desc,
                                                    const attn_tensor *q, const attn_tensor *k,
                                                    const attn_tensor *v,
                                                    const attn_linear_state *st,
                                                    const attn_tensor *dout,
                                                    const attn_linear_grads *g);
/* Name of the implementation attn_linear_backward would run. */
ATTN_API attn_status attn_linear_backward_impl_name(attn_backend *be,
                                                    const attn_linear_desc *desc,
                                                    const attn_tensor *q, const attn_tensor *k,
                                                    const attn_tensor *v,
                                                    const attn_linear_state *st,
                                                    const attn_tensor *dout,
                                                    const attn_linear_grads *g, char *buf,
                                                    size_t n);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_LINEAR_H_ */
