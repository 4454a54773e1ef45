/* cpu_sdpa_impl.c - SDPA on the "cpu" backend: dispatch between the tiled forward
 * (cpu_sdpa.c) and the decode path (cpu_sdpa_decode.c), their tile sizes, the way key_score
 * is computed (cpu_sdpa_key_score.c), the backward (cpu_sdpa_backward.c), and the name of the
 * implementation a call runs. */
#include "cpu_sdpa.h"

#include <stdio.h>
#include <string.h>

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

/* a * b + c, or -1 when it leaves int64 (sizes are non-negative). */
static int64_t mul_add(int64_t a, int64_t b, int64_t c)
{
    int64_t r;
    if (a < 0 || b < 0 || c < 0 || __builtin_mul_overflow(a, b, &r) ||
        __builtin_add_overflow(r, c, &r))
        return -1;
    return r;
}

/* The scratch of either path is a few floats per (row, key) of a tile, per (key, dim) of a KV
 * group and per (row, dim): bound it with checked arithmetic before any path sizes it, so a
 * broadcast (stride-0) view describing more elements than memory can hold gets a clear status
 * instead of a size that wrapped around. */
static attn_status cpu_sdpa_supported(attn_backend *be, const void *problem)
{
    const attn_sdpa_problem *p = problem;
    const int threads = ((const attn_cpu_state *)be->impl)->threads;
    if (p->backward) {
        const int64_t n = attn_cpu_sdpa_backward_scratch(p, threads);
        if (n < 0 || n > (int64_t)1 << 58)
            return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                             "cpu: the backward's scratch (Sq %lld, Skv %lld, Dk %lld, Dv %lld) "
                             "exceeds any memory", (long long)p->Sq, (long long)p->Skv,
                             (long long)p->Dk, (long long)p->Dv);
        return ATTN_OK;
    }
    const int64_t d = p->Dk + p->Dv, rows = mul_add(p->group, p->Sq, 0);
    int64_t n = mul_add(CPU_BR + CPU_BC, d, CPU_BR * CPU_BC);       /* one tile */
    n = mul_add(n < 0 ? -1 : n, threads, 0);
    n = n < 0 || rows < 0 ? -1 : mul_add(rows, d, n);             /* decode rows */
    n = n < 0 ? -1 : mul_add(p->Skv, d, n);                       /* a KV group */
    n = n < 0 ? -1 : mul_add(p->B * p->Hkv > 0 ? p->B : 0, p->Hkv, n);
    if (p->key_score.t) { /* the sweep's tiles and an LSE per row */
        const int64_t ks = attn_cpu_ks_scratch(p, threads);
        n = n < 0 || ks < 0 ? -1 : mul_add(n, 1, ks);
    }
    if (n < 0 || n > (int64_t)1 << 58 || d < 0)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                         "cpu: the problem's scratch (Sq %lld, Skv %lld, Dk %lld, Dv %lld) "
                         "exceeds any memory", (long long)p->Sq, (long long)p->Skv,
                         (long long)p->Dk, (long long)p->Dv);
    return ATTN_OK;
}

/* The decode path for a few queries (always up to ATTN_CPU_DECODE_MAX_SQ; when its key chunks
 * give every thread an item, up to ATTN_CPU_DECODE_WIDE_SQ, or ATTN_CPU_DECODE_UKR_SQ when its
 * items run on the micro-kernel over a KV ATTN_CPU_DECODE_UKR_KV_PER_Q times longer), else the
 * tiles;
 * option path= overrides. */
static int use_decode(const attn_sdpa_problem *p, const attn_cpu_state *s)
{
    if (s->path != ATTN_CPU_PATH_AUTO)
        return s->path == ATTN_CPU_PATH_DECODE;
    if (p->Sq <= ATTN_CPU_DECODE_MAX_SQ)
        return 1;
    attn_cpu_ukr u;
    const int64_t most = p->Skv >= ATTN_CPU_DECODE_UKR_KV_PER_Q * p->Sq &&
                                 attn_cpu_decode_uses_ukr(p, &u)
                             ? ATTN_CPU_DECODE_UKR_SQ
                             : ATTN_CPU_DECODE_WIDE_SQ;
    return p->Sq <= most && attn_cpu_decode_items(p, s->threads) >= s->threads;
}

/* The tiles run on BLIS's micro-kernel (K and V packed once) unless path=sgemm or the problem
 * has masks or a soft-cap (their row steps work on rows of a score tile). */
static int use_packed(const attn_sdpa_problem *p, const attn_cpu_state *s, attn_cpu_ukr *u)
{
    return s->path != ATTN_CPU_PATH_SGEMM && attn_cpu_ukr_get(u) &&
           attn_cpu_sdpa_packed_fits(p, u);
}

/* key_score: zeros when there is no query; the decode path's own sums when the probabilities
 * one batch keeps fit its bound; else the sweep after the forward. */
enum { KS_NONE, KS_ZERO, KS_DECODE, KS_SWEEP };

static int key_score_way(const attn_sdpa_problem *p, const attn_cpu_state *s)
{
    if (!p->key_score.t)
        return KS_NONE;
    if (p->Sq == 0)
        return KS_ZERO;
    return use_decode(p, s) && attn_cpu_decode_keeps_probs(p) ? KS_DECODE : KS_SWEEP;
}

static attn_status forward(const attn_sdpa_problem *p, const attn_cpu_state *s)
{
    attn_cpu_ukr u;
    if (use_decode(p, s))
        return attn_cpu_sdpa_decode(p, s->threads, s->simd);
    if (use_packed(p, s, &u))
        return attn_cpu_sdpa_packed(p, &u, s->threads, s->simd, pick_br(p, s->threads), CPU_BC);
    return attn_cpu_sdpa_tiled(p, s->threads, pick_br(p, s->threads), CPU_BC);
}

attn_status attn_cpu_sdpa_dispatch(const attn_sdpa_problem *p, const attn_cpu_state *s)
{
    switch (key_score_way(p, s)) {
    case KS_ZERO:
        for (int64_t b = 0; b < p->B; b++)
            for (int64_t g = 0; g < p->Hkv; g++)
                attn_cpu_ks_store(p, b, g, 0, p->Skv, NULL);
        return ATTN_OK;
    case KS_SWEEP: {
        attn_cpu_ukr u;
        return attn_cpu_sdpa_key_score(p, s, use_packed(p, s, &u) ? &u : NULL, forward);
    }
    default: /* none, or the decode path's own */
        return forward(p, s);
    }
}

static attn_status cpu_sdpa_run(attn_backend *be, const void *problem)
{
    const attn_sdpa_problem *p = problem;
    const attn_cpu_state *s = be->impl;
    const attn_status st =
        p->backward ? attn_cpu_sdpa_backward(p, s->threads) : attn_cpu_sdpa_dispatch(p, s);
    return st == ATTN_OK ? attn_ok() : st;
}

/* The decode kernels' name: "avx512", "avx2" or "c". */
static const char *decode_kernels(const attn_sdpa_problem *p, const attn_cpu_state *s)
{
    attn_cpu_simd level = attn_cpu_decode_uses_simd(p, s->simd);
    return level == ATTN_CPU_SIMD_OFF ? "c" : attn_cpu_simd_name(level);
}

/* "cpu:decode_splitkv_avx512" (or _avx2, _c; _ukr32x12 on the micro-kernel) /
 * "cpu:flash_ukr16x6_br256_bc510" (micro-kernel lanes: query rows x keys) /
 * "cpu:flash_blis_br256_bc512"; the backward
 * "cpu:flash_bwd_blis_br128_bc256". key_score adds "+ks_probs" (the decode path's kept
 * probabilities) or "+ks_sweep" (the sweep after the forward). */
static void cpu_sdpa_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    const attn_sdpa_problem *p = problem;
    const attn_cpu_state *s = be->impl;
    attn_cpu_ukr u;
    if (p->backward)
        snprintf(buf, n, "cpu:flash_bwd_blis_br%d_bc%d", ATTN_CPU_BWD_BR, ATTN_CPU_BWD_BC);
    else if (use_decode(p, s) && attn_cpu_decode_uses_ukr(p, &u))
        snprintf(buf, n, "cpu:decode_splitkv_ukr%lldx%lld", (long long)u.lq, (long long)u.lk);
    else if (use_decode(p, s))
        snprintf(buf, n, "cpu:decode_splitkv_%s", decode_kernels(p, s));
    else if (use_packed(p, s, &u))
        snprintf(buf, n, "cpu:flash_ukr%lldx%lld_br%lld_bc%lld", (long long)u.lq,
                 (long long)u.lk, (long long)pick_br(p, s->threads),
                 (long long)(CPU_BC / u.lk * u.lk));
    else
        snprintf(buf, n, "cpu:flash_blis_br%lld_bc%d", (long long)pick_br(p, s->threads),
                 CPU_BC);
    const int ks = key_score_way(p, s);
    const size_t len = strlen(buf);
    if (!p->backward && (ks == KS_DECODE || ks == KS_SWEEP) && len + 1 < n)
        snprintf(buf + len, n - len, "%s", ks == KS_DECODE ? "+ks_probs" : "+ks_sweep");
}

const attn_op_impl attn_cpu_sdpa_impl = {
    .supported = cpu_sdpa_supported,
    .run = cpu_sdpa_run,
    .impl_name = cpu_sdpa_impl_name,
};
