/* attn_sdpa.h - softmax attention (SDPA): the descriptor, the forward and backward calls, their
 * capability checks and the name of the implementation a backend runs. Part of attn.h. */
#ifndef ATTN_SDPA_H_
#define ATTN_SDPA_H_

#include "attn/attn_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- softmax attention ------------------------------------------------------------------- */
typedef enum attn_align {
    ATTN_ALIGN_TOP_LEFT = 0,    /* query i sits at key position i (PyTorch is_causal) */
    ATTN_ALIGN_BOTTOM_RIGHT = 1 /* query i sits at key position i + Skv - Sq (FA2, decoding) */
} attn_align;

/* Query i (aligned position p = i, or i + Skv - Sq for bottom-right) sees key j iff
 *   (window_left < 0 or j >= p - window_left) and (right bound)
 * where the right bound is j <= p when causal, j <= p + window_right when window_right >= 0, and
 * none otherwise; the boolean mask must be nonzero there. Logit:
 *   s = scale * q.k; if softcap > 0: s = softcap * tanh(s / softcap); s += mask_add.
 * Rows with no visible key (or all logits -inf) give output 0 and LSE -inf. */
typedef struct attn_sdpa_desc {
    float scale;        /* 0 selects 1/sqrt(Dk); must be finite */
    int causal;         /* 0 or 1 */
    attn_align align;   /* alignment of causal and window bounds when Sq != Skv */
    int64_t window_left;  /* visible past keys besides the current one; -1 unlimited */
    int64_t window_right; /* visible future keys; -1 unlimited; must be -1 or 0 when causal */
    float softcap;      /* 0 = none; else > 0 */
    /* Optional masks, shape [B or 1, Sq or 1, Hq or 1, Skv] (the view's dims read as
     * [batch, query, head, key]); size-1 dims broadcast. */
    const attn_tensor *mask_add;  /* f32/f16/bf16, added to the logit (-inf hides the key) */
    const attn_tensor *mask_bool; /* u8, 0 hides the key */
    /* Room for later fields (see "Growable descriptors" in docs/api.md): must be zero. A field
     * added here later means "as before" when zero, so code that starts from
     * attn_sdpa_desc_default() keeps compiling and keeps its meaning. */
    uint64_t reserved[6];
} attn_sdpa_desc;

/* Always start from this (or zero every field): scale 1/sqrt(Dk), not causal, bottom-right, unlimited window, no cap, no masks. */
ATTN_API attn_sdpa_desc attn_sdpa_desc_default(void);

/* q [B, Sq, Hq, Dk], k [B, Skv, Hkv, Dk], v [B, Skv, Hkv, Dv], out [B, Sq, Hq, Dv];
 * lse optional (NULL): f32 [B, Sq, Hq, 1], natural log; contiguous [B, H, Sq] is the tensor
 * with strides {Hq*Sq, 1, Sq, 1}. Hq must be a multiple of Hkv (query head h uses KV head
 * h / (Hq/Hkv)). On any error nothing is written to out or lse. */
ATTN_API attn_status attn_sdpa_forward(attn_backend *be, const attn_sdpa_desc *desc,
                                       const attn_tensor *q, const attn_tensor *k,
                                       const attn_tensor *v, const attn_tensor *out,
                                       const attn_tensor *lse);
/* Same checks as attn_sdpa_forward, runs nothing: ATTN_OK iff forward would run. */
ATTN_API attn_status attn_sdpa_supported(attn_backend *be, const attn_sdpa_desc *desc,
                                         const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *v, const attn_tensor *out,
                                         const attn_tensor *lse);

/* Name of the implementation (kernel specialisation) attn_sdpa_forward would run for this call,
 * e.g. "cpu:flash_blis_br64_bc256" or "opencl:flash_fwd[-DDK=64 ...]", written to buf (n bytes,
 * NUL-terminated, truncated if needed). Runs the same checks as attn_sdpa_supported. */
ATTN_API attn_status attn_sdpa_impl_name(attn_backend *be, const attn_sdpa_desc *desc,
                                         const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *v, const attn_tensor *out,
                                         const attn_tensor *lse, char *buf, size_t n);

/* ---- every output: attention received per key -------------------------------------------- */

/* The outputs of attn_sdpa_forward_ex. out is required; lse and key_score are optional (NULL).
 * key_score: f32 [B, Skv, Hkv, 1]: the attention probability each key receives, summed over
 * every query row and over the query heads of its KV head,
 *   key_score[b, j, g] = sum_i sum_{h: h / (Hq/Hkv) == g} P[b, h, i, j],
 * without materialising P (H2O's heavy-hitter score, attention received per token). Keys no
 * query sees and rows with no visible key contribute 0; a NaN row gives NaN to the keys it
 * sees. Accumulated in f32 or better, stored once. */
typedef struct attn_sdpa_outputs {
    const attn_tensor *out;
    const attn_tensor *lse;
    const attn_tensor *key_score;
    uint64_t reserved[5]; /* must be zero */
} attn_sdpa_outputs;

/* attn_sdpa_forward with every output: the same checks and semantics, key_score besides. On
 * any error nothing is written to any output. */
ATTN_API attn_status attn_sdpa_forward_ex(attn_backend *be, const attn_sdpa_desc *desc,
                                          const attn_tensor *q, const attn_tensor *k,
                                          const attn_tensor *v, const attn_sdpa_outputs *outs);
/* Same checks as attn_sdpa_forward_ex, runs nothing. */
ATTN_API attn_status attn_sdpa_supported_ex(attn_backend *be, const attn_sdpa_desc *desc,
                                            const attn_tensor *q, const attn_tensor *k,
                                            const attn_tensor *v, const attn_sdpa_outputs *outs);
/* Name of the implementation attn_sdpa_forward_ex would run (as attn_sdpa_impl_name). */
ATTN_API attn_status attn_sdpa_impl_name_ex(attn_backend *be, const attn_sdpa_desc *desc,
                                            const attn_tensor *q, const attn_tensor *k,
                                            const attn_tensor *v, const attn_sdpa_outputs *outs,
                                            char *buf, size_t n);

/* ---- backward ---------------------------------------------------------------------------- */

/* The gradients attn_sdpa_backward writes. dq [B, Sq, Hq, Dk] like q, dk [B, Skv, Hkv, Dk] like
 * k, dv [B, Skv, Hkv, Dv] like v: each f32, f16 or bf16 (accumulated in f32 or better, rounded
 * once when stored). dk and dv of a KV head sum over the query heads of its group.
 * dmask_add: optional (NULL), f32 with the shape of desc->mask_add (which it requires): the
 * gradient of the additive mask (the logit's own gradient), summed over the dims where the mask
 * has size 1, e.g. for learned biases such as ALiBi slopes or relative-position tables. */
typedef struct attn_sdpa_grads {
    const attn_tensor *dq;
    const attn_tensor *dk;
    const attn_tensor *dv;
    const attn_tensor *dmask_add;
    uint64_t reserved[4]; /* must be zero */
} attn_sdpa_grads;

/* Gradients of the forward's output with respect to q, k, v (and the additive mask) given the
 * output's gradient dout [B, Sq, Hq, Dv] (f32/f16/bf16). desc, q, k, v (and the masks) are the
 * forward's; out and lse (required here) are what attn_sdpa_forward returned for them: the fast
 * backends recompute the probabilities from lse and take rowsum(dout * out) from out, as
 * FlashAttention's backward does; the reference recomputes everything from q, k, v in f64.
 * Every forward feature is differentiated: scale, causal and windows, GQA, masks, the soft-cap
 * (through 1 - tanh^2). A row with no visible key gets zero gradients. Deterministic: the same
 * bits on every run and thread count. On any error nothing is written to the gradients. */
ATTN_API attn_status attn_sdpa_backward(attn_backend *be, const attn_sdpa_desc *desc,
                                        const attn_tensor *q, const attn_tensor *k,
                                        const attn_tensor *v, const attn_tensor *out,
                                        const attn_tensor *lse, const attn_tensor *dout,
                                        const attn_sdpa_grads *grads);
/* Same checks as attn_sdpa_backward, runs nothing: ATTN_OK iff backward would run. */
ATTN_API attn_status attn_sdpa_backward_supported(attn_backend *be, const attn_sdpa_desc *desc,
                                                  const attn_tensor *q, const attn_tensor *k,
                                                  const attn_tensor *v, const attn_tensor *out,
                                                  const attn_tensor *lse,
                                                  const attn_tensor *dout,
                                                  const attn_sdpa_grads *grads);
/* Name of the implementation attn_sdpa_backward would run (as attn_sdpa_impl_name). */
ATTN_API attn_status attn_sdpa_backward_impl_name(attn_backend *be, const attn_sdpa_desc *desc,
                                                  const attn_tensor *q, const attn_tensor *k,
                                                  const attn_tensor *v, const attn_tensor *out,
                                                  const attn_tensor *lse,
                                                  const attn_tensor *dout,
                                                  const attn_sdpa_grads *grads, char *buf,
                                                  size_t n);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_SDPA_H_ */
