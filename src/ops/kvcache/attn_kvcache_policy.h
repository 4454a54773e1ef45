/* attn_kvcache_policy.h - the eviction policies of the KV cache behind one interface: a table
 * of {name, choose victims} per attn_kv_policy, and the view of a cache's slots a policy reads
 * (original positions and scores per slot and KV head). Each policy is one small file
 * (attn_kvcache_full.c, _sliding.c, _streaming.c, _h2o.c); the cache object calls them. */
#ifndef ATTN_KVCACHE_POLICY_H_
#define ATTN_KVCACHE_POLICY_H_

#include "attn/attn.h"

#include <stdint.h>

/* The slots of one cache as a policy sees them: entry j * hkv + g is slot j of KV head g. */
typedef struct attn_kvcache_slots {
    int64_t nslot, hkv;
    const int64_t *pos;  /* original position, -1 = free */
    const double *score; /* accumulated attention (H2O) */
    int64_t budget, sinks, recent; /* resolved: recent in 0 .. budget */
} attn_kvcache_slots;

/* Order statistics a policy found on one KV head, offered to the next heads: sliding window
 * and StreamingLLM keep the same positions in every head, and H2O the same recent window, so
 * one selection usually serves them all (each head checks it by counting, O(n)). */
typedef struct attn_kvcache_memo {
    int set;
    int64_t lo, hi; /* a position range */
} attn_kvcache_memo;

/* Choose the victims of KV head g, which holds `live` > budget tokens: `live_e` holds the
 * entries (j * hkv + g) of its live slots in slot order (attn_kvcache_live_entries; not sorted
 * by position: a decode step must not pay a sort); the policy sets evict[e] = 1 for exactly
 * live - budget of them. `scratch` has room for 2 * live int64 values; `memo` starts unset for
 * each eviction and is shared by its heads. */
typedef void (*attn_kvcache_choose_fn)(const attn_kvcache_slots *s, int64_t g,
                                       const int64_t *live_e, int64_t live, unsigned char *evict,
                                       int64_t *scratch, attn_kvcache_memo *memo);

typedef struct attn_kvcache_policy {
    const char *name;
    attn_kvcache_choose_fn choose; /* NULL: never evicts */
} attn_kvcache_policy;

extern const attn_kvcache_policy attn_kvcache_policy_full;
extern const attn_kvcache_policy attn_kvcache_policy_sliding;
extern const attn_kvcache_policy attn_kvcache_policy_streaming;
extern const attn_kvcache_policy attn_kvcache_policy_h2o;

/* The policy of an enum value (checked by the caller: ATTN_KV_FULL .. ATTN_KV_H2O). */
const attn_kvcache_policy *attn_kvcache_policy_of(attn_kv_policy p);

/* The entries of the live slots of KV head g in increasing original position (tmp: room for
 * as many); returns their count. */
int64_t attn_kvcache_live_order(const attn_kvcache_slots *s, int64_t g, int64_t *order,
                                int64_t *tmp);

/* The entries of the live slots of KV head g in slot order; returns their count. */
int64_t attn_kvcache_live_entries(const attn_kvcache_slots *s, int64_t g, int64_t *live_e);

/* The k-th smallest original position (k = 0 .. n-1) among the entries e[0..n), in expected
 * O(n) (quickselect on a copy in scratch, room for n; positions of a head are distinct, so
 * the answer does not depend on the pivots). */
int64_t attn_kvcache_nth_pos(const attn_kvcache_slots *s, const int64_t *e, int64_t n, int64_t k,
                             int64_t *scratch);

/* The number of the entries whose position lies in [lo, hi]. */
int64_t attn_kvcache_count_pos_range(const attn_kvcache_slots *s, const int64_t *e, int64_t n,
                                     int64_t lo, int64_t hi);

/* The memo's range when it holds exactly `want` of the entries (set it first when unset,
 * from the ranks [rlo, rhi] of the entries' positions); else the range of those ranks. */
void attn_kvcache_rank_range(const attn_kvcache_slots *s, const int64_t *e, int64_t n,
                             int64_t rlo, int64_t rhi, attn_kvcache_memo *memo,
                             int64_t *scratch, int64_t *lo, int64_t *hi);

/* Mark as victims the entries whose position lies in [lo, hi]. */
void attn_kvcache_evict_pos_range(const attn_kvcache_slots *s, const int64_t *e, int64_t n,
                                  int64_t lo, int64_t hi, unsigned char *evict);

/* Whether entry a goes strictly before entry b in an order over the slots. */
typedef int (*attn_kvcache_before_fn)(const attn_kvcache_slots *s, int64_t a, int64_t b);

/* Stable merge sort of the entries a[0..n) by `before` (tmp: room for n); portable where
 * qsort_r is not, and deterministic. */
void attn_kvcache_sort(int64_t *a, int64_t n, int64_t *tmp, attn_kvcache_before_fn before,
                       const attn_kvcache_slots *s);

#endif /* ATTN_KVCACHE_POLICY_H_ */
