/* cpu_sdpa_impl.c - SDPA on the "cpu" backend: dispatch between the tiled forward
 * (cpu_sdpa.c) and the decode path (cpu_sdpa_decode.c), their tile sizes, and the name of the
 * implementation a call runs. */
#include "cpu_sdpa.h"

#include <stdio.h>

/* Tile sizes of the tiled forward (query rows x key columns), tuned with `attn bench` (B1 H8
 * S2048, D64/D128): 256 x 512 was best among 64..256 x 128..512. Fewer query rows per tile
 * when that leaves too few work items to keep the threads busy. */
#define CPU_BR 256
#define CPU_BC 512
#define CPU_MIN_ITEMS_PER_THREAD 4

static int64_t pick_br(const attn_sdpa_problem *p, int threads)
{
    int64_t br = CPU_BR;
    while (br > 32 && p->B * p->Hq * ((p->Sq + br - 1) / br) < CPU_MIN_ITEMS_PER_THREAD * threads)
        br /= 2;
    return br;
}

static attn_status cpu_sdpa_run(attn_backend *be, const void *problem)
{
    const attn_sdpa_problem *p = problem;
    const attn_cpu_state *s = be->impl;
    attn_status st = p->Sq <= ATTN_CPU_DECODE_MAX_SQ
                         ? attn_cpu_sdpa_decode(p, s->threads, s->simd)
                         : attn_cpu_sdpa_tiled(p, s->threads, pick_br(p, s->threads), CPU_BC);
    return st == ATTN_OK ? attn_ok() : st;
}

/* "cpu:decode_splitkv_avx2" / "cpu:decode_splitkv_c" / "cpu:flash_blis_br256_bc512". */
static void cpu_sdpa_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    const attn_sdpa_problem *p = problem;
    const attn_cpu_state *s = be->impl;
    if (p->Sq <= ATTN_CPU_DECODE_MAX_SQ)
        snprintf(buf, n, "cpu:decode_splitkv_%s",
                 attn_cpu_decode_uses_simd(p, s->simd) ? "avx2" : "c");
    else
        snprintf(buf, n, "cpu:flash_blis_br%lld_bc%d", (long long)pick_br(p, s->threads),
                 CPU_BC);
}

const attn_op_impl attn_cpu_sdpa_impl = {
    .supported = NULL,
    .run = cpu_sdpa_run,
    .impl_name = cpu_sdpa_impl_name,
};
