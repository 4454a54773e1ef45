/* kvcache_policy_ref.h - the ground truth of the KV cache's eviction and of SqueezeAttention's
 * clustering, for tests: a naive simulation of each policy over one KV head's list of kept
 * positions (no slots, no storage), and the brute-force optimal 3-means of L values. */
#ifndef ATTN_KVCACHE_POLICY_REF_H_
#define ATTN_KVCACHE_POLICY_REF_H_

#include "attn/attn.h"

#include <stdint.h>

/* One KV head as the simulation sees it: the kept positions in increasing order and their
 * accumulated scores; the caller owns the arrays (room for `cap` tokens). */
typedef struct attn_ref_kv_list {
    int64_t n, cap;
    int64_t *pos;
    double *score;
} attn_ref_kv_list;

/* Append position p (larger than every kept one) with score 0; 0 when the list is full. */
int attn_ref_kv_append(attn_ref_kv_list *h, int64_t p);
/* Add x to the score of position p if it is kept. */
void attn_ref_kv_add(attn_ref_kv_list *h, int64_t p, double x);
/* Evict down to `budget` as the policy says (recent: H2O's resolved window, 0 .. budget;
 * sinks: StreamingLLM's, < budget). */
void attn_ref_kv_evict(attn_ref_kv_list *h, attn_kv_policy policy, int64_t budget,
                       int64_t sinks, int64_t recent);

/* The optimal 3-means of x[0..L) (L >= 3 values, at least 3 distinct) by trying every
 * partition of the sorted values into three contiguous runs that do not split equal values:
 * cls[l] = 1..3 by ascending centre, centres[3], *sse the least within-cluster sum of squares
 * (the first partition found wins a tie). */
void attn_ref_kmeans3_brute(const double *x, int64_t L, int *cls, double *centres, double *sse);

#endif /* ATTN_KVCACHE_POLICY_REF_H_ */
