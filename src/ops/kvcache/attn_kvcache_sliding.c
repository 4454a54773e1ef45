/* attn_kvcache_sliding.c - the sliding window: the `budget` most recent tokens stay (the same
 * positions in every KV head): the live - budget lowest positions go. */
#include "attn_kvcache_policy.h"

static void sliding_choose(const attn_kvcache_slots *s, int64_t g, const int64_t *live_e,
                           int64_t live, unsigned char *evict, int64_t *scratch,
                           attn_kvcache_memo *memo)
{
    (void)g;
    int64_t lo, hi;
    attn_kvcache_rank_range(s, live_e, live, 0, live - s->budget - 1, memo, scratch, &lo, &hi);
    attn_kvcache_evict_pos_range(s, live_e, live, lo, hi, evict);
}

const attn_kvcache_policy attn_kvcache_policy_sliding = {"sliding", sliding_choose};
