/* attn_fill.h - deterministic input fills of the conformance tool. Every value is a pure
 * function of (seed, tensor id, logical element index) through the counter-based attn_rng, so
 * any case and any single element replays exactly, whatever the layout or thread count. */
#ifndef ATTN_FILL_H_
#define ATTN_FILL_H_

#include "attn/attn.h"

#include <stdint.h>

typedef enum attn_fill_mode {
    ATTN_FILL_UNIFORM = 0, /* q, k, v uniform in [-1, 1] */
    ATTN_FILL_STRESS = 1   /* q scaled by ATTN_FILL_STRESS_Q: logits with std ~30, beyond +-88 */
} attn_fill_mode;

#define ATTN_FILL_STRESS_Q 90.0

/* Tensor ids: the RNG stream of each input. */
typedef enum attn_fill_id {
    ATTN_FILL_Q = 1,
    ATTN_FILL_K = 2,
    ATTN_FILL_V = 3,
    ATTN_FILL_MASK_ADD = 4,
    ATTN_FILL_MASK_BOOL = 5
} attn_fill_id;

/* Logical index of [i0, i1, i2, i3] in a [s0, s1, s2, s3] shape (row-major). */
static inline int64_t attn_fill_index(const int64_t shape[4], int64_t i0, int64_t i1,
                                      int64_t i2, int64_t i3)
{
    return ((i0 * shape[1] + i1) * shape[2] + i2) * shape[3] + i3;
}

/* Value of q, k or v element `idx` (before rounding to the storage dtype). */
double attn_fill_value(attn_fill_mode mode, uint64_t seed, attn_fill_id id, int64_t idx);

/* Whether mask row i (query index in the mask's own shape) is fully hidden: every 7th row
 * starting at 3, so a broadcast (1-row) mask and Sq <= 3 never hide a whole row. */
static inline int attn_fill_row_hidden(int64_t i)
{
    return i % 7 == 3;
}

/* Fill a host view (t->data) of q, k or v, rounding once to its dtype. */
void attn_fill_tensor(const attn_tensor *t, attn_fill_mode mode, uint64_t seed, attn_fill_id id);
/* The output's gradient dout of a backward case: uniform, a stream of its own. */
void attn_fill_dout(const attn_tensor *t, uint64_t seed);
/* Additive mask: uniform in [-4, 0], -inf over ~20% of 4x16 (query x key) blocks, and every
 * key -inf on hidden rows. */
void attn_fill_mask_add(const attn_tensor *t, uint64_t seed);
/* Boolean mask: each key hidden with probability 0.2, every key hidden on hidden rows. */
void attn_fill_mask_bool(const attn_tensor *t, uint64_t seed);

#endif /* ATTN_FILL_H_ */
