/* kvcache_policy.c - the eviction policies as a naive simulation over one KV head's list of
 * kept positions (squeeze.md §3.1 - §3.3), written from the papers' pseudo-code and independent
 * of the cache's slots: the ground truth of the cache object's tests. */
#include "kvcache_policy_ref.h"

int attn_ref_kv_append(attn_ref_kv_list *h, int64_t p)
{
    if (h->n == h->cap)
        return 0;
    h->pos[h->n] = p;
    h->score[h->n] = 0;
    h->n++;
    return 1;
}

void attn_ref_kv_add(attn_ref_kv_list *h, int64_t p, double x)
{
    for (int64_t i = 0; i < h->n; i++)
        if (h->pos[i] == p)
            h->score[i] += x;
}

/* Remove entry i, keeping the order. */
static void drop(attn_ref_kv_list *h, int64_t i)
{
    for (int64_t j = i + 1; j < h->n; j++) {
        h->pos[j - 1] = h->pos[j];
        h->score[j - 1] = h->score[j];
    }
    h->n--;
}

void attn_ref_kv_evict(attn_ref_kv_list *h, attn_kv_policy policy, int64_t budget,
                       int64_t sinks, int64_t recent)
{
    if (policy == ATTN_KV_FULL)
        return;
    while (h->n > budget) {
        int64_t victim = 0; /* sliding window: the oldest */
        if (policy == ATTN_KV_STREAMING) {
            victim = sinks; /* the oldest token after the sinks */
        } else if (policy == ATTN_KV_H2O) {
            /* the lowest score outside the recent window; a tie: the older one (scanned
             * first, replaced only by a strictly lower score) */
            for (int64_t i = 1; i < h->n - recent; i++)
                if (h->score[i] < h->score[victim])
                    victim = i;
        }
        drop(h, victim);
    }
}
