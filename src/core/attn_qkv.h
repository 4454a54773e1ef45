/* attn_qkv.h - the shape rules of q, k, v and out that every attention op shares ([batch, seq,
 * heads, dim] views): batch and head dims agree, v follows k's tokens, out is [B, Sq, Hq, Dv],
 * and the query heads come in whole groups per KV head. */
#ifndef ATTN_QKV_H_
#define ATTN_QKV_H_

#include "attn/attn_core.h"

#include "attn_view.h"

/* The four views in the order of attn_qkv_names: {"q", "k", "v", "out"}. */
extern const char *const attn_qkv_names[4];

/* t = {q, k, v, out}: each a float [batch, seq, heads, dim] view (attn_view_check; q and out
 * may have a zero batch or seq, k and v zero dims of the bit set kv_zero_ok), spans into s[];
 * then q [B, Sq, Hq, Dk], k [B, Skv, Hkv, Dk], v [B, Skv, Hkv, Dv], out [B, Sq, Hq, Dv], Hq a
 * multiple of Hkv. self_seq: NULL when Skv is free, else the reason k's seq must be Sq (for
 * the message). Aliasing is left to the op (attn_view_check_outputs). */
attn_status attn_qkv_check(const attn_tensor *const t[4], unsigned kv_zero_ok,
                           const char *self_seq, attn_span s[4]);

/* attn_qkv_check for a self-attention over the same tokens (k's seq is q's; batch or seq may be
 * 0) on the operands t[at[0..3]] = q, k, v, out of an op's operand list; their spans go into
 * the same slots of s[]. */
attn_status attn_qkv_check_self(const attn_tensor *const *t, const int at[4], attn_span *s);

/* A backward call's dout has out's shape [B, Sq, Hq, Dv] (from q and v): checked first, so
 * that a wrong dout is named as such (the op then checks it as it checks out). */
attn_status attn_qkv_check_dout(const attn_tensor *dout, const attn_tensor *q,
                                const attn_tensor *v);

/* The sizes every attention problem p holds (fields B, Hq, Dk, Hkv, Dv, group), from checked
 * q and k, v; each op adds its sequence lengths. */
#define ATTN_QKV_SIZES(p, q, k, v)                                                               \
    do {                                                                                         \
        (p)->B = (q)->shape[0];                                                                  \
        (p)->Hq = (q)->shape[2];                                                                 \
        (p)->Dk = (q)->shape[3];                                                                 \
        (p)->Hkv = (k)->shape[2];                                                                \
        (p)->Dv = (v)->shape[3];                                                                 \
        (p)->group = (p)->Hq / (p)->Hkv;                                                         \
    } while (0)

#endif /* ATTN_QKV_H_ */
