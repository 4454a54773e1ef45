/* attn_rope.h - rotary position embedding (RoPE): the descriptor, the forward call, its
 * capability check and the name of the implementation a backend runs. Part of attn.h.
 * docs/ops/rope.md defines the op and maps HF, GPT-NeoX, GPT-J, Llama and axlearn onto it. */
#ifndef ATTN_ROPE_H_
#define ATTN_ROPE_H_

#include "attn/attn_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which features form the rotated pairs (i = 0 .. rot_dim/2 - 1). */
typedef enum attn_rope_layout {
    ATTN_ROPE_HALF = 0,       /* (i, i + rot_dim/2): GPT-NeoX, HF rotate_half, Gemma */
    ATTN_ROPE_INTERLEAVED = 1 /* (2i, 2i + 1): GPT-J, Meta Llama (complex), axlearn */
} attn_rope_layout;

/* For row (b, s) at position pos = offset + (positions ? positions[b, s] : s), pair i with
 * features (a, c) of the layout is rotated by angle pos * theta^(-2i / rot_dim):
 *   out[a] = x[a] cos - x[c] sin,   out[c] = x[c] cos + x[a] sin;
 * features rot_dim .. D-1 are copied. Every head of the row gets the same rotation. */
typedef struct attn_rope_desc {
    attn_rope_layout layout;
    double theta;       /* base of the frequencies, finite and > 0 (default 10000) */
    int64_t rot_dim;    /* rotated features, even, 2 .. D; 0 = all D (then D must be even) */
    int64_t offset;     /* added to every position, |offset| <= 2^40 */
    /* Optional positions, i32 or i64, shape [B or 1, S, 1, 1] (dims read as [batch, seq, -,
     * -]); NULL: position s. Values are read as given (a negative one rotates backwards);
     * angles are specified for |offset + position| <= 2^40. */
    const attn_tensor *positions;
    /* Room for later fields (docs/api.md, "Growable descriptors"): must be zero. */
    uint64_t reserved[6];
} attn_rope_desc;

/* Always start from this: half-split pairs, theta 10000, full rotation, offset 0, positions
 * s. */
ATTN_API attn_rope_desc attn_rope_desc_default(void);

/* x [B, S, H, D] (f32/f16/bf16), out [B, S, H, D] (f32/f16/bf16, its own dtype). out may be
 * x itself (in place: the same memory, offset, dtype and strides) or must not overlap it.
 * On any error nothing is written to out. */
ATTN_API attn_status attn_rope_forward(attn_backend *be, const attn_rope_desc *desc,
                                       const attn_tensor *x, const attn_tensor *out);
/* Same checks as attn_rope_forward, runs nothing: ATTN_OK iff forward would run. */
ATTN_API attn_status attn_rope_supported(attn_backend *be, const attn_rope_desc *desc,
                                         const attn_tensor *x, const attn_tensor *out);
/* Name of the implementation attn_rope_forward would run (e.g. "cpu:rope_half_f32"), written
 * to buf (n bytes, NUL-terminated, truncated if needed). Same checks as attn_rope_supported. */
ATTN_API attn_status attn_rope_impl_name(attn_backend *be, const attn_rope_desc *desc,
                                         const attn_tensor *x, const attn_tensor *out, char *buf,
                                         size_t n);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_ROPE_H_ */
