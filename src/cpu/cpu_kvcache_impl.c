/* cpu_kvcache_impl.c - the attention over cache slots on the "cpu" backend: the backend's own
 * RoPE and SDPA composed (src/ops/kvcache/attn_kvcache_compose.c; no kernel of its own), named
 * "cpu:kvcache[<rotation>+<mask>+<SDPA's name>]". */
#include "attn_kvcache_problem.h"

const attn_op_impl attn_cpu_kvcache_impl = {
    .supported = attn_kvcache_compose_supported,
    .run = attn_kvcache_compose_run,
    .impl_name = attn_kvcache_compose_impl_name,
};
