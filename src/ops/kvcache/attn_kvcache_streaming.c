/* attn_kvcache_streaming.c - StreamingLLM: the `sinks` lowest positions (attention sinks) and
 * the budget - sinks most recent tokens stay; what lies between goes (the same positions in
 * every KV head): the positions ranked sinks .. live - recent - 1. The cache guarantees
 * budget > sinks. */
#include "attn_kvcache_policy.h"

static void streaming_choose(const attn_kvcache_slots *s, int64_t g, const int64_t *live_e,
                             int64_t live, unsigned char *evict, int64_t *scratch,
                             attn_kvcache_memo *memo)
{
    (void)g;
    const int64_t recent = s->budget - s->sinks;
    int64_t lo, hi;
    attn_kvcache_rank_range(s, live_e, live, s->sinks, live - recent - 1, memo, scratch, &lo,
                            &hi);
    attn_kvcache_evict_pos_range(s, live_e, live, lo, hi, evict);
}

const attn_kvcache_policy attn_kvcache_policy_streaming = {"streaming", streaming_choose};
