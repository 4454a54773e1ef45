/* attn_kvcache_full.c - the full cache: no eviction, every token stays. */
#include "attn_kvcache_policy.h"

const attn_kvcache_policy attn_kvcache_policy_full = {"full", NULL};
