/* attn_rattention.h - RATTENTION (Wang et al. 2025, "RATTENTION: Towards the Minimal
 * Sliding Window Size in Local-Global Attention Models"; Apple axlearn): sliding-window softmax
 * attention plus residual linear attention over exactly the tokens the window has left behind,
 * each branch through its own per-head RMSNorm, summed. The descriptor, the forward call, the
 * decode step over a ring-buffer cache, their capability checks and implementation names.
 * Part of attn.h; docs/ops/rattention.md gives the definition term by term. */
#ifndef ATTN_RATTENTION_H_
#define ATTN_RATTENTION_H_

#include "attn/attn_core.h"
#include "attn/attn_linear.h"
#include "attn/attn_rope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* For query row i (position pos_i = offset + i) of head h, KV head g = h / (Hq/Hkv), all rows
 * raw projections (no RoPE, no scale applied by the caller):
 *   SWA  (window w >= 0): keys j in [max(0, i - w), i] (the current token and w past ones),
 *        q and k rotated by RoPE at their positions, logits scale * <RoPE(q_i), RoPE(k_j)>,
 *        o_swa_i = sum_j softmax_j(logits) v_j;                 no SWA branch when w = -1.
 *   RLA: S_i = S0 + sum_{j <= i - w - 1} phi(k_j)^T v_j   (S0 = state_in, 0 when absent)
 *        o_rla_i = phi(q_i) S_i     (raw q and k: no RoPE, no scale, no denominator)
 *   out_i = GroupRMSNorm(o_swa_i; gamma_swa[h]) + GroupRMSNorm(o_rla_i; gamma_rla[h])
 *   GroupRMSNorm(x; g)[c] = x[c] / sqrt(mean_c x^2 + eps) * g[c]    (over the Dv values of
 *   one head of one token). The SWA term is absent when w = -1; w >= S leaves RLA only S0. */
typedef struct attn_rattention_desc {
    int64_t window;              /* w >= -1: past tokens the SWA branch sees besides the
                                  * current one (axlearn's sliding_window_size; HF/Gemma's
                                  * sliding_window W is w = W - 1). Default 512. */
    attn_linear_feature feature; /* ATTN_LINEAR_SOFTMAX_PAIR (default) or ATTN_LINEAR_RELU_PAIR:
                                  * Df = 2 Dk features */
    attn_rope_layout rope;       /* SWA's RoPE pairs; default ATTN_ROPE_INTERLEAVED (axlearn) */
    double rope_theta;           /* > 0, finite; default 500000 (axlearn's RAttention) */
    int64_t offset;              /* position of row 0 (forward), |offset| <= 2^40; decode takes
                                  * positions from the cache */
    float scale;                 /* SWA logit scale, finite; 0 selects 1/sqrt(Dk) */
    float eps;                   /* GroupRMSNorm's eps, finite, > 0; 0 selects 1e-8 */
    /* Room for later fields (docs/api.md, "Growable descriptors"): must be zero. */
    uint64_t reserved[6];
} attn_rattention_desc;

/* Always start from this: w 512, softmax-pair, interleaved RoPE with theta 500000, offset 0,
 * scale 1/sqrt(Dk), eps 1e-8. */
ATTN_API attn_rattention_desc attn_rattention_desc_default(void);

/* The optional tensors of a call (the struct and any pointer may be NULL).
 * gamma_swa, gamma_rla: f32 [1, 1, Hq, Dv] (dims [-, -, head, value]): the norms' learned
 *   scales, 1 when absent.
 * state_in:  f32 [B, Hkv, 2 Dk, Dv] (dims [batch, kv head, feature, value]): S0, the RLA state
 *   before row 0 (axlearn's h0, one per KV head), zero when absent.
 * state_out: the same shape: the state the next token continues from, S0 + sum over
 *   j <= S - w - 2 (the tokens the window has left behind after the last row; a decode step
 *   at position S first folds token S - w - 1 in). */
typedef struct attn_rattention_io {
    const attn_tensor *gamma_swa, *gamma_rla;
    const attn_tensor *state_in, *state_out;
} attn_rattention_io;

/* q [B, S, Hq, Dk], k [B, S, Hkv, Dk], v [B, S, Hkv, Dv], out [B, S, Hq, Dv] (f32, f16 or
 * bf16 each), Dk even; Hq a multiple of Hkv. On any error nothing is written to outputs. */
ATTN_API attn_status attn_rattention_forward(attn_backend *be, const attn_rattention_desc *desc,
                                             const attn_tensor *q, const attn_tensor *k,
                                             const attn_tensor *v, const attn_tensor *out,
                                             const attn_rattention_io *io);
ATTN_API attn_status attn_rattention_supported(attn_backend *be,
                                               const attn_rattention_desc *desc,
                                               const attn_tensor *q, const attn_tensor *k,
                                               const attn_tensor *v, const attn_tensor *out,
                                               const attn_rattention_io *io);
/* Name of the implementation forward would run (e.g. "cpu:rattention_chunk128"), into buf. */
ATTN_API attn_status attn_rattention_impl_name(attn_backend *be,
                                               const attn_rattention_desc *desc,
                                               const attn_tensor *q, const attn_tensor *k,
                                               const attn_tensor *v, const attn_tensor *out,
                                               const attn_rattention_io *io, char *buf,
                                               size_t n);

/* The decode cache of one layer: a ring of w + 1 slots per (batch, KV head) holding the keys
 * (un-rotated: RoPE is applied at attention time) and values of the last w + 1 tokens, token t
 * in slot t mod (w + 1), and the RLA state of every token that has left the ring.
 * k_ring [B, w + 1, Hkv, Dk], v_ring [B, w + 1, Hkv, Dv] (f32, f16 or bf16; NULL when w = -1),
 * state f32 [B, Hkv, 2 Dk, Dv]; pos: tokens seen so far (the position of the next one is
 * desc.offset + pos). Start with pos 0 and a zero state (or S0); slots of tokens not yet seen
 * are never read or written. The ring and the state are read and written in place. */
typedef struct attn_rattention_cache {
    const attn_tensor *k_ring, *v_ring, *state;
    int64_t pos;
} attn_rattention_cache;

/* T new tokens q [B, T, Hq, Dk], k [B, T, Hkv, Dk], v [B, T, Hkv, Dv] -> out [B, T, Hq, Dv],
 * token by token: token t = cache->pos + s first folds the token leaving the ring
 * (t - w - 1, if any) into the state, then takes its slot, then attends as the forward's row t.
 * A prefill of T tokens followed by single-token steps gives the forward's rows; so does any
 * split of the sequence. On success cache->pos advances by T; on error nothing is written
 * (out, ring, state, pos). io->state_in / state_out must be NULL here (the cache holds it). */
ATTN_API attn_status attn_rattention_decode(attn_backend *be, const attn_rattention_desc *desc,
                                            attn_rattention_cache *cache, const attn_tensor *q,
                                            const attn_tensor *k, const attn_tensor *v,
                                            const attn_tensor *out,
                                            const attn_rattention_io *io);
ATTN_API attn_status attn_rattention_decode_supported(attn_backend *be,
                                                      const attn_rattention_desc *desc,
                                                      const attn_rattention_cache *cache,
                                                      const attn_tensor *q,
                                                      const attn_tensor *k,
                                                      const attn_tensor *v,
                                                      const attn_tensor *out,
                                                      const attn_rattention_io *io);
/* Name of the implementation decode would run (e.g. "cpu:rattention_ring"), into buf. */
ATTN_API attn_status attn_rattention_decode_impl_name(attn_backend *be,
                                                      const attn_rattention_desc *desc,
                                                      const attn_rattention_cache *cache,
                                                      const attn_tensor *q,
                                                      const attn_tensor *k,
                                                      const attn_tensor *v,
                                                      const attn_tensor *out,
                                                      const attn_rattention_io *io, char *buf,
                                                      size_t n);

/* ---- backward ---------------------------------------------------------------------------- */

/* The gradients attn_rattention_backward writes, and the one arriving at the final state.
 * dq, dk, dv: the shapes of q, k, v, f32/f16/bf16 (required). dgamma_swa, dgamma_rla: f32
 * [1, 1, Hq, Dv], the norms' gains' gradients summed over batch and rows (optional; a gain left
 * out of io is 1 and still has a gradient). d_state_in: f32 [B, Hkv, 2 Dk, Dv], requires
 * io->state_in (optional). d_state_out: f32 [B, Hkv, 2 Dk, Dv] input, the final state's gradient
 * when a later call or a loss uses it (optional, absent = 0). */
typedef struct attn_rattention_grads {
    const attn_tensor *dq, *dk, *dv;
    const attn_tensor *dgamma_swa, *dgamma_rla;
    const attn_tensor *d_state_in;
    const attn_tensor *d_state_out;
    uint64_t reserved[4]; /* must be zero */
} attn_rattention_grads;

/* Gradients of the forward (same desc, q, k, v, io->gamma_swa, io->gamma_rla, io->state_in;
 * io->state_out must be NULL) given dout [B, S, Hq, Dv] (f32/f16/bf16): through both norms,
 * the window's softmax and its RoPE (rotated back), the residual branch's feature map and state.
 * Recomputes what it needs from the inputs. On any error nothing is written to the gradients.
 * docs/ops/rattention.md, "Backward". */
ATTN_API attn_status attn_rattention_backward(attn_backend *be, const attn_rattention_desc *desc,
                                              const attn_tensor *q, const attn_tensor *k,
                                              const attn_tensor *v, const attn_rattention_io *io,
                                              const attn_tensor *dout,
                                              const attn_rattention_grads *g);
/* Same checks as attn_rattention_backward, runs nothing. */
ATTN_API attn_status attn_rattention_backward_supported(
    attn_backend *be, const attn_rattention_desc *desc, const attn_tensor *q,
    const attn_tensor *k, const attn_tensor *v, const attn_rattention_io *io,
    const attn_tensor *dout, const attn_rattention_grads *g);
/* Name of the implementation attn_rattention_backward would run. */
ATTN_API attn_status attn_rattention_backward_impl_name(
    attn_backend *be, const attn_rattention_desc *desc, const attn_tensor *q,
    const attn_tensor *k, const attn_tensor *v, const attn_rattention_io *io,
    const attn_tensor *dout, const attn_rattention_grads *g, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_RATTENTION_H_ */
