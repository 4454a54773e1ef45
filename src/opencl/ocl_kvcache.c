/* ocl_kvcache.c - the attention over cache slots on the "opencl" backend: the backend's own
 * RoPE and SDPA composed on its buffers (src/ops/kvcache/attn_kvcache_compose.c; no kernel of
 * its own), named "opencl:kvcache[<rotation>+<mask>+<SDPA's name>]". */
#include "attn_kvcache_problem.h"

const attn_op_impl attn_opencl_kvcache_impl = {
    .supported = attn_kvcache_compose_supported,
    .run = attn_kvcache_compose_run,
    .impl_name = attn_kvcache_compose_impl_name,
};
