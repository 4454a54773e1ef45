/* attn_kvcache.h - a KV cache for decoding with eviction: the cache of one layer of one sequence
 * (storage, original positions, append, attention, eviction, compaction, memory accounting),
 * its eviction policies (full, sliding window, StreamingLLM, H2O), the attention over a cache's
 * slots whose live tokens need not be contiguous, and SqueezeAttention's per-layer budgets.
 * Part of attn.h; docs/ops/kvcache.md defines every policy and convention. */
#ifndef ATTN_KVCACHE_H_
#define ATTN_KVCACHE_H_

#include "attn/attn_core.h"
#include "attn/attn_rope.h"
#include "attn/attn_sdpa.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- attention over cache slots (the op: ref, cpu and opencl implement it) ---------------- */

/* How keys get their rotary position embedding at attention time. */
typedef enum attn_kv_positions {
    /* Keys are attended as stored: rotated by the caller at append time, or no RoPE. */
    ATTN_KV_POS_STORED = 0,
    /* Keys are stored un-rotated and rotated at attention time at their original positions;
     * query i at its own position (the same scores as ATTN_KV_POS_STORED with keys rotated
     * at append time, but the cache keeps the raw keys). */
    ATTN_KV_POS_ORIGINAL = 1,
    /* Keys are stored un-rotated and rotated at their in-cache positions: the live tokens of a
     * KV head, in the order of their original positions, sit at 0, 1, ..., T-1, and query i at
     * the number of live tokens of that head whose position is below its own (StreamingLLM:
     * "positions within the cache rather than those in the original text"). */
    ATTN_KV_POS_CACHE = 2
} attn_kv_positions;

/* The attention of attn_kvcache_attention: softmax attention as attn_sdpa_forward (scale,
 * soft-cap) where query i (at original position q_pos[b, i]) sees the slot j of KV head g iff
 * the slot is live (slot_pos[b, j, g] >= 0) and slot_pos[b, j, g] <= q_pos[b, i] (causal by
 * original position, whatever the slot order); before the dot products q and k are rotated
 * as `positions` says, with rope's layout, theta and rot_dim (its offset and positions must be
 * 0 and NULL). A query that sees no slot gives output 0. */
typedef struct attn_kvcache_attn_desc {
    float scale;   /* 0 selects 1/sqrt(Dk) */
    float softcap; /* 0 = none */
    attn_kv_positions positions;
    attn_rope_desc rope; /* used when positions != ATTN_KV_POS_STORED */
    uint64_t reserved[6]; /* must be zero */
} attn_kvcache_attn_desc;

/* scale 1/sqrt(Dk), no cap, keys as stored, rope = attn_rope_desc_default(). */
ATTN_API attn_kvcache_attn_desc attn_kvcache_attn_desc_default(void);

/* q [B, Sq, Hq, Dk] (f32/f16/bf16), q_pos i64 [B, Sq, 1, 1] (>= 0);
 * k [B, Nslot, Hkv, Dk], v [B, Nslot, Hkv, Dv] (f32/f16/bf16): the slots;
 * slot_pos i64 [B, Nslot, Hkv, 1]: the original position of the token in each slot of each KV
 * head, -1 for an empty slot (whose k and v are never read: they may hold anything);
 * out [B, Sq, Hq, Dv] (f32/f16/bf16); key_score optional (NULL) f32 [B, Nslot, Hkv, 1]: the
 * attention each slot receives, summed over the queries and the query heads of its KV head
 * (attn_sdpa_outputs.key_score), 0 for empty slots. Hq a multiple of Hkv. On any error
 * nothing is written to out or key_score. */
ATTN_API attn_status attn_kvcache_attention(attn_backend *be, const attn_kvcache_attn_desc *desc,
                                            const attn_tensor *q, const attn_tensor *q_pos,
                                            const attn_tensor *k, const attn_tensor *v,
                                            const attn_tensor *slot_pos, const attn_tensor *out,
                                            const attn_tensor *key_score);
/* Same checks as attn_kvcache_attention, runs nothing. */
ATTN_API attn_status attn_kvcache_attention_supported(
    attn_backend *be, const attn_kvcache_attn_desc *desc, const attn_tensor *q,
    const attn_tensor *q_pos, const attn_tensor *k, const attn_tensor *v,
    const attn_tensor *slot_pos, const attn_tensor *out, const attn_tensor *key_score);
/* Name of the implementation attn_kvcache_attention would run (as attn_sdpa_impl_name). */
ATTN_API attn_status attn_kvcache_attention_impl_name(
    attn_backend *be, const attn_kvcache_attn_desc *desc, const attn_tensor *q,
    const attn_tensor *q_pos, const attn_tensor *k, const attn_tensor *v,
    const attn_tensor *slot_pos, const attn_tensor *out, const attn_tensor *key_score,
    char *buf, size_t n);

/* ---- the cache of one layer ------------------------------------------------------------- */

typedef enum attn_kv_policy {
    ATTN_KV_FULL = 0,      /* no eviction: every token stays */
    ATTN_KV_SLIDING = 1,   /* the `budget` most recent tokens */
    ATTN_KV_STREAMING = 2, /* StreamingLLM: the `sinks` first tokens + the most recent ones */
    ATTN_KV_H2O = 3        /* H2O: `budget - recent` heavy hitters (largest accumulated
                            * attention, per KV head) + the `recent` most recent tokens */
} attn_kv_policy;

/* One step of a layer's decode loop is append (the new tokens), attend (their queries over
 * the cache, the new tokens included), evict (back down to the budget). So between steps the
 * cache holds at most `budget` tokens and a step attends over at most budget + new tokens;
 * a prefill appends the prompt, attends (or the caller runs its own attention and hands the
 * key scores to attn_kvcache_add_scores) and evicts once. */
typedef struct attn_kvcache_desc {
    int64_t kv_heads, head_dim_k, head_dim_v; /* Hkv, Dk, Dv */
    attn_dtype dtype;       /* storage of K and V: f32, f16 or bf16 */
    attn_kv_policy policy;
    int64_t budget;         /* tokens kept between steps, >= 1 (ignored by ATTN_KV_FULL) */
    int64_t sinks;          /* ATTN_KV_STREAMING: first tokens always kept (default 4), budget
                             * must exceed it */
    int64_t recent;         /* ATTN_KV_H2O: the recent window, 0 .. budget; -1 = budget / 2 */
    attn_kvcache_attn_desc attn; /* the attention of attn_kvcache_attend (RoPE convention) */
    int64_t initial_slots;  /* slots allocated at creation (0: budget + 1, or 256 for FULL);
                             * the storage grows when an append needs more */
    uint64_t reserved[8];   /* must be zero */
} attn_kvcache_desc;

/* Hkv 1, Dk = Dv = 64, f32, full cache, budget 0, sinks 4, recent -1, default attention. */
ATTN_API attn_kvcache_desc attn_kvcache_desc_default(void);

typedef struct attn_kvcache attn_kvcache;

/* A cache whose storage lives in `be`'s memory (device memory on opencl) and whose attention
 * runs on `be`; be must outlive it. */
ATTN_API attn_status attn_kvcache_create(attn_backend *be, const attn_kvcache_desc *desc,
                                         attn_kvcache **out);
ATTN_API void attn_kvcache_destroy(attn_kvcache *c); /* NULL is fine */

/* Append n tokens: k [1, n, Hkv, Dk], v [1, n, Hkv, Dv] (host memory, f32/f16/bf16, any
 * strides, converted to the storage dtype) at original positions pos0 .. pos0 + n - 1, which
 * must exceed every position appended before. Each goes to the lowest free slot of every KV
 * head (a slot freed by eviction), or past the last used slot (the storage grows).
 * New tokens start with score 0. */
ATTN_API attn_status attn_kvcache_append(attn_kvcache *c, const attn_tensor *k,
                                         const attn_tensor *v, int64_t pos0);

/* Attention of the queries q [1, Sq, Hq, Dk] at original positions qpos0 .. qpos0 + Sq - 1
 * over the live tokens (attn_kvcache_attention with the cache's slots and desc.attn), out
 * [1, Sq, Hq, Dv]. Under ATTN_KV_H2O the attention each token receives (summed over the queries
 * and the query heads of its KV head) is added to its score. q and out: host memory or `be`'s
 * buffers. */
ATTN_API attn_status attn_kvcache_attend(attn_kvcache *c, const attn_tensor *q, int64_t qpos0,
                                         const attn_tensor *out);

/* Add scores to the live tokens: score f32 host memory [1, Nslot, Hkv, 1] over the current
 * slots (attn_kvcache_info.slots), e.g. a prefill's attn_sdpa_outputs.key_score when the
 * prompt's slots are 0 .. P-1. Empty slots must have score 0. */
ATTN_API attn_status attn_kvcache_add_scores(attn_kvcache *c, const attn_tensor *score);

/* Evict down to the budget by the policy (nothing for ATTN_KV_FULL or when within budget).
 * Evicted slots become free (holes) until an append fills them or attn_kvcache_compact runs.
 * Ties between equal H2O scores evict the older token (lower original position). */
ATTN_API attn_status attn_kvcache_evict(attn_kvcache *c);

/* Change the budget (and the H2O recent window, -1 = budget / 2) from now on, e.g. to the
 * layer's SqueezeAttention budget after the prefill; takes effect at the next evict. */
ATTN_API attn_status attn_kvcache_set_budget(attn_kvcache *c, int64_t budget, int64_t recent);

/* Move the live tokens of every KV head to slots 0 .. T-1 in the order of their original
 * positions (order-preserving gather); the slot count becomes T. */
ATTN_API attn_status attn_kvcache_compact(attn_kvcache *c);

/* A decode step: append (k, v at pos), attend (q at pos), evict. */
ATTN_API attn_status attn_kvcache_step(attn_kvcache *c, const attn_tensor *q,
                                       const attn_tensor *k, const attn_tensor *v, int64_t pos,
                                       const attn_tensor *out);

/* What a cache holds and costs. */
typedef struct attn_kvcache_info {
    int64_t live;         /* tokens per KV head (every head holds as many) */
    int64_t slots;        /* slots in use, holes included: the attention's Nslot */
    int64_t capacity;     /* slots allocated */
    int64_t budget, recent, sinks;
    int64_t appended;     /* tokens appended since creation */
    int64_t evicted;      /* tokens evicted since creation (per KV head) */
    size_t live_bytes;    /* K and V bytes of the live tokens */
    size_t alloc_bytes;   /* K and V bytes allocated (capacity) */
    size_t full_bytes;    /* K and V bytes a cache without eviction would hold now */
    uint64_t reserved[4];
} attn_kvcache_info;

ATTN_API attn_status attn_kvcache_get_info(const attn_kvcache *c, attn_kvcache_info *info);

/* The original positions of the slots, i64 host [1, Nslot, Hkv, 1] (-1 = free), and the H2O
 * scores f32 host [1, Nslot, Hkv, 1] (0 for free slots and other policies); Nslot =
 * info.slots. */
ATTN_API attn_status attn_kvcache_get_positions(const attn_kvcache *c, const attn_tensor *pos);
ATTN_API attn_status attn_kvcache_get_scores(const attn_kvcache *c, const attn_tensor *score);

/* Views of the storage over the slots in use, [1, Nslot, Hkv, D] in the cache's dtype (host
 * data on the ref and cpu backends, the backend's buffer on opencl); valid until the next call
 * that changes the cache. */
ATTN_API attn_status attn_kvcache_get_views(const attn_kvcache *c, attn_tensor *k,
                                            attn_tensor *v);

/* ---- SqueezeAttention: per-layer budgets ------------------------------------------------ */

/* A layer's importance score: the mean over the prompt's tokens of the cosine similarity
 * between the layer's input hidden state x and its hidden state y after the attention
 * residual add, x, y [B, P, 1, D] (or [B, P, H, d]: the hidden vector is the last two dims),
 * f32/f16/bf16; s gets B values (one per sequence), in double:
 *   s[b] = (1/P) sum_t <x_t, y_t> / max(|x_t| |y_t|, 1e-8). */
ATTN_API attn_status attn_kvcache_squeeze_similarity(const attn_tensor *x, const attn_tensor *y,
                                                     double *s);

/* The exact optimal 1-D k-means (minimum within-cluster sum of squares, dynamic programming
 * over the sorted values; ties toward the lower index) of L values into k clusters (1 <= k <=
 * number of distinct values): cls[l] = 1 .. k in ascending order of the centres; centres[k]
 * (or NULL). */
ATTN_API attn_status attn_kvcache_kmeans1d(const double *x, int64_t L, int k, int *cls,
                                           double *centres);

typedef struct attn_kvcache_squeeze_desc {
    double b_init;      /* the uniform budget, a fraction of base (0 < b_init) */
    double p;           /* the fraction of base of the least important group, 0 < p <= b_init */
    int64_t base;       /* BASE: the prompt length, or a constant (the sliding-window path's 8000) */
    int64_t min_budget; /* clamp of every budget (>= 1; StreamingLLM needs sinks + 1) */
    int64_t max_budget; /* and its upper end (e.g. the prompt length + new tokens) */
    int round_bf16;     /* round the similarities to bf16 before clustering, as the authors'
                         * bf16 pipeline does (their budgets are reproduced exactly) */
    uint64_t reserved[4];
} attn_kvcache_squeeze_desc;

/* b_init 0.2, p 0.1, base 0 (must be set), min_budget 1, max_budget INT64_MAX, no rounding. */
ATTN_API attn_kvcache_squeeze_desc attn_kvcache_squeeze_desc_default(void);

/* Budgets of L layers from their similarities s[L]: 3-means (attn_kvcache_kmeans1d) of s; the
 * highest-centre cluster (class 3, least important) gets ratio p, every other layer
 *   a = (L b_init - n3 p) / (L - n3),
 * budget[l] = (int64)(ratio_l * base), clamped to [min_budget, max_budget]; cls[l] (or NULL)
 * gets the class 1..3. Before the clamp the total is L b_init base (to the truncation). Fewer
 * than 3 distinct similarities, or every layer in class 3: the uniform b_init budgets. */
ATTN_API attn_status attn_kvcache_squeeze_budgets(const attn_kvcache_squeeze_desc *d,
                                                  const double *s, int64_t L, int64_t *budget,
                                                  int *cls);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_KVCACHE_H_ */
