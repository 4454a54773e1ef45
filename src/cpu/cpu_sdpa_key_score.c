/* cpu_sdpa_key_score.c - the forward's key_score output on the CPU backend: the attention
 * probability each key receives, summed over the query rows and the query heads of its KV head.
 * The decode path keeps its probabilities and sums them itself (cpu_sdpa_decode.c); every
 * other call runs the forward with its LSE kept (the user's, or scratch), then a second sweep
 * over the tiles recomputes P = exp(s - lse) from the scores (as FlashAttention's backward
 * does) and sums its columns. P is never stored beyond one tile.
 *
 * Determinism: a work item of the sweep is (batch, KV head, key tile) with constant tile sizes;
 * it owns its keys and adds its query heads, query tiles and rows in a fixed order (rows of a
 * tile in f32, tiles in f64), so the bits never depend on the thread count. All scratch is
 * allocated before the forward runs: a failed call writes nothing. */
#include "cpu_sdpa.h"

#include "cpu_math.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Query rows x keys of a sweep tile (constants: see the header; the micro-kernel's tiles take
 * the multiple of its key lanes below KS_BC). 256 x 256 keeps the score tile in L2. */
#define KS_BR 256
#define KS_BC 256

/* col[j] += exp(s[j] - lse) over the n logits of one row: its P recomputed from its LSE.
 * Hidden keys (s = -inf) add 0; a row with lse = -inf (nothing visible) adds nothing; a NaN
 * row (lse NaN) gives NaN to the keys it sees. */
ATTN_CPU_HOT
static void add_row(const float *s, int64_t n, float lse, float *col)
{
    if (lse == -INFINITY)
        return; /* no visible key: the row adds nothing */
    for (int64_t j = 0; j < n; j++) {
        /* A hidden key (-inf) adds 0 even when lse is NaN (a NaN row gives NaN to the keys
         * it sees only); masked with bits, which vectorises. */
        uint32_t seen = -(uint32_t)(s[j] != -INFINITY);
        col[j] += attn_bits_f32(attn_f32_bits(attn_cpu_expf(s[j] - lse)) & seen);
    }
}

ATTN_CPU_HOT
void attn_cpu_ks_add_scaled(const float *p, int64_t n, float f, float *col)
{
    for (int64_t j = 0; j < n; j++) {
        uint32_t seen = -(uint32_t)(attn_f32_bits(p[j]) != 0x80000000u);
        col[j] += attn_bits_f32(attn_f32_bits(p[j] * f) & seen);
    }
}

void attn_cpu_ks_store(const attn_sdpa_problem *p, int64_t b, int64_t hk, int64_t j0,
                       int64_t n, const float *col)
{
    if (n <= 0)
        return;
    float *dst = (float *)attn_cpu_elem(&p->key_score, b, j0, hk, 0);
    const int64_t st = p->key_score.stride[1];
    for (int64_t j = 0; j < n; j++)
        dst[j * st] = col ? col[j] : 0.0f;
}

/* The columns of P on a score panel of nk keys x lq lanes ((key, lane) at key*lq + lane, lq
 * a multiple of 16): colq[key*lq + lane] += exp(s - lse[lane]), 0 for hidden keys and lanes
 * with lse = -inf (rows with nothing visible, padding). In groups of 16 lanes with their LSE
 * in locals, as attn_cpu_softmax_panel, so that the loop vectorises. */
ATTN_CPU_HOT
static void add_panel(const float *s, int64_t nk, int64_t lq, const float *lse, float *colq)
{
    for (int64_t g = 0; g < lq; g += 16) {
        float l[16];
        uint32_t live[16];
        for (int k = 0; k < 16; k++) {
            l[k] = lse[g + k];
            live[k] = -(uint32_t)(l[k] != -INFINITY);
        }
        for (int64_t j = 0; j < nk; j++)
            for (int k = 0; k < 16; k++) {
                const float x = s[j * lq + g + k];
                const uint32_t seen = live[k] & -(uint32_t)(x != -INFINITY);
                colq[j * lq + g + k] +=
                    attn_bits_f32(attn_f32_bits(attn_cpu_expf(x - l[k])) & seen);
            }
    }
}

typedef struct ks_ctx {
    const attn_sdpa_problem *p; /* the forward's problem, with its LSE and key_score */
    const attn_cpu_ukr *u;      /* the micro-kernel, or NULL: sgemm */
    int64_t lq, lk, bc, n_kt;   /* lanes (1 x 1 on sgemm), keys per item */
    int k_conv;                 /* sgemm: K goes through f32 scratch */
} ks_ctx;

typedef struct ks_scratch {
    float *s, *q, *k, *madd, *col, *tmp, *lse;
    double *acc;
} ks_scratch;

/* Sizes in floats rounded up to 16: every buffer starts on a 64-byte line (the micro-kernel
 * reads the packed Q side with aligned loads). */
static int64_t r16(int64_t n)
{
    return (n + 15) / 16 * 16;
}

/* Scratch of one thread for lanes lq x lk (sgemm: 1 x 1): in order acc (KS_BC doubles), s, q,
 * k, madd, col, tmp, lse. */
static int64_t scratch_floats(const attn_sdpa_problem *p, int64_t lq, int64_t lk)
{
    const int64_t s = KS_BR * KS_BC > (KS_BC + lk) * lq ? KS_BR * KS_BC : (KS_BC + lk) * lq;
    return r16(2 * KS_BC) + r16(s) + r16(KS_BR * p->Dk) + r16((KS_BC + lk) * p->Dk) +
           r16(KS_BC) + r16((KS_BC + lk) * lq) + r16(ATTN_CPU_PACK_ROWS * p->Dk) + r16(lq);
}

static ks_scratch scratch_at(float *base, const attn_sdpa_problem *p, int64_t lq, int64_t lk)
{
    const int64_t s = KS_BR * KS_BC > (KS_BC + lk) * lq ? KS_BR * KS_BC : (KS_BC + lk) * lq;
    ks_scratch w;
    w.acc = (double *)base;
    w.s = base + r16(2 * KS_BC);
    w.q = w.s + r16(s);
    w.k = w.q + r16(KS_BR * p->Dk);
    w.madd = w.k + r16((KS_BC + lk) * p->Dk);
    w.col = w.madd + r16(KS_BC);
    w.tmp = w.col + r16((KS_BC + lk) * lq);
    w.lse = w.tmp + r16(ATTN_CPU_PACK_ROWS * p->Dk);
    return w;
}

int64_t attn_cpu_ks_scratch(const attn_sdpa_problem *p, int threads)
{
    /* the most either score code takes: lanes at most ATTN_CPU_PACK_ROWS */
    int64_t n, rows, one = scratch_floats(p, ATTN_CPU_PACK_ROWS, ATTN_CPU_PACK_ROWS);
    if (p->Dk > ((int64_t)1 << 40) || __builtin_mul_overflow(one, (int64_t)threads, &n) ||
        __builtin_mul_overflow(p->B * p->Hq, p->Sq, &rows) || __builtin_add_overflow(n, rows, &n))
        return -1;
    return n;
}

static float lse_at(const attn_sdpa_problem *p, int64_t b, int64_t i, int64_t h)
{
    return *(const float *)attn_cpu_elem(&p->lse, b, i, h, 0);
}

/* sgemm: query rows [i0, i0 + nr) of head h against keys [k0, k0 + nk) of the item (kt: its K
 * rows from j0): scores, logits, and their P added to w->col (offset k0 - j0). */
static void block_sgemm(const ks_ctx *c, ks_scratch *w, int64_t b, int64_t h, int64_t i0,
                        int64_t nr, attn_cpu_mat kt, int64_t j0, int64_t k0, int64_t nk)
{
    const attn_sdpa_problem *p = c->p;
    attn_cpu_mat q;
    if (!attn_cpu_plane_mat(&p->q, p->Sq, p->Dk, b, h, i0, &q)) {
        attn_cpu_plane_to_f32(&p->q, b, h, i0, nr, p->Dk, w->q);
        q = (attn_cpu_mat){w->q, p->Dk, 1};
    }
    /* K^T of keys from k0: element (d, j) at K(j, d). */
    attn_cpu_mat kk = {kt.p + (k0 - j0) * kt.rs, kt.cs, kt.rs};
    attn_cpu_sgemm(nr, nk, p->Dk, (float)p->scale, q, kk, 0.0f, w->s, KS_BC);
    for (int64_t r = 0; r < nr; r++) {
        float *srow = w->s + r * KS_BC;
        attn_cpu_row_logits(p, srow, w->madd, b, i0 + r, h, k0, nk);
        add_row(srow, nk, lse_at(p, b, i0 + r, h), w->col + (k0 - j0));
    }
}

/* Micro-kernel: the same block on packed operands (K of the item packed in w->k from j0), one
 * query panel of lq rows at a time over the keys its rows can see (from a multiple of lk);
 * the lanes' sums go to w->col per (key, lane). */
static void block_ukr(const ks_ctx *c, ks_scratch *w, int64_t b, int64_t h, int64_t i0,
                      int64_t nr, int64_t j0, int64_t k0, int64_t nk)
{
    const attn_sdpa_problem *p = c->p;
    const int64_t lq = c->lq, lk = c->lk;
    attn_cpu_pack_across(&p->q, b, h, i0, nr, p->Dk, lq, w->q, w->tmp);
    for (int64_t r0 = 0; r0 < nr; r0 += lq) {
        const int64_t rows = nr - r0 < lq ? nr - r0 : lq;
        int64_t lo, hi_first, lo_last, hi;
        attn_band(p, i0 + r0, &lo, &hi_first);
        attn_band(p, i0 + r0 + rows - 1, &lo_last, &hi);
        lo = lo > k0 ? lo : k0;
        hi = hi < k0 + nk ? hi : k0 + nk;
        if (hi <= lo)
            continue;
        const int64_t a = j0 + (lo - j0) / lk * lk, n = hi - a; /* from a packed K panel */
        for (int64_t kb = 0; kb < n; kb += lk)
            attn_cpu_ukr_panel(c->u, p->Dk, (float)p->scale, w->q + r0 * p->Dk,
                               w->k + (a - j0 + kb) * p->Dk, 0.0f, w->s + kb * lq);
        if (lo_last > a || hi_first < hi)
            attn_cpu_mask_panel(p, w->s, lq, i0 + r0, rows, a, n);
        for (int64_t q = 0; q < lq; q++)
            w->lse[q] = q < rows ? lse_at(p, b, i0 + r0 + q, h) : -INFINITY;
        add_panel(w->s, n, lq, w->lse, w->col + (a - j0) * lq);
    }
}

/* Item it: keys [j0, j0 + nc) of group g, every query head of the group and every query tile
 * whose band reaches them. */
static void run_item(const ks_ctx *c, ks_scratch *w, int64_t it)
{
    const attn_sdpa_problem *p = c->p;
    const int64_t g = it / c->n_kt, b = g / p->Hkv, hk = g % p->Hkv, lq = c->lq;
    const int64_t j0 = it % c->n_kt * c->bc, nc = p->Skv - j0 < c->bc ? p->Skv - j0 : c->bc;
    attn_cpu_mat kt = {0};
    if (c->u)
        attn_cpu_pack_across(&p->k, b, hk, j0, nc, p->Dk, c->lk, w->k, w->tmp);
    else if (c->k_conv) {
        attn_cpu_plane_to_f32(&p->k, b, hk, j0, nc, p->Dk, w->k);
        kt = (attn_cpu_mat){w->k, p->Dk, 1};
    } else {
        attn_cpu_plane_mat(&p->k, p->Skv, p->Dk, b, hk, j0, &kt);
    }
    for (int64_t j = 0; j < nc; j++)
        w->acc[j] = 0.0;
    for (int64_t h = hk * p->group; h < (hk + 1) * p->group; h++)
        for (int64_t i0 = 0; i0 < p->Sq; i0 += KS_BR) {
            const int64_t nr = p->Sq - i0 < KS_BR ? p->Sq - i0 : KS_BR;
            /* Bands are monotone in i: the tile's rows see at most keys [lo(i0), hi(last)). */
            int64_t lo, hi, unused;
            attn_band(p, i0, &lo, &unused);
            attn_band(p, i0 + nr - 1, &unused, &hi);
            lo = lo > j0 ? lo : j0;
            hi = hi < j0 + nc ? hi : j0 + nc;
            if (hi <= lo)
                continue;
            for (int64_t e = 0; e < (nc + c->lk) * lq; e++)
                w->col[e] = 0.0f;
            if (c->u)
                block_ukr(c, w, b, h, i0, nr, j0, lo, hi - lo);
            else
                block_sgemm(c, w, b, h, i0, nr, kt, j0, lo, hi - lo);
            for (int64_t j = lo - j0; j < hi - j0; j++) /* the lanes in order, in f64 */
                for (int64_t q = 0; q < lq; q++)
                    w->acc[j] += w->col[j * lq + q];
        }
    for (int64_t j = 0; j < nc; j++)
        w->col[j] = (float)w->acc[j];
    attn_cpu_ks_store(p, b, hk, j0, nc, w->col);
}

attn_status attn_cpu_sdpa_key_score(const attn_sdpa_problem *p, const attn_cpu_state *s,
                                    const attn_cpu_ukr *u, attn_cpu_sdpa_fwd_fn fwd)
{
    ks_ctx c = {.u = u, .lq = u ? u->lq : 1, .lk = u ? u->lk : 1};
    c.bc = KS_BC / c.lk * c.lk;
    c.n_kt = (p->Skv + c.bc - 1) / c.bc;
    const int threads = s->threads;
    const int64_t per_thread = scratch_floats(p, c.lq, c.lk), rows = p->B * p->Hq * p->Sq;
    const size_t bytes = (size_t)(per_thread * threads + (p->lse.t ? 0 : rows)) * sizeof(float);
    float *mem = aligned_alloc(64, (bytes + 64) / 64 * 64);
    if (!mem)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes of scratch",
                         bytes);
    /* The forward keeps its LSE: the user's, or [B, Sq, Hq] in scratch. */
    attn_sdpa_problem f = *p;
    memset(&f.key_score, 0, sizeof f.key_score);
    attn_tensor lse = attn_tensor_bshd(mem + per_thread * threads, ATTN_F32, p->B, p->Sq, p->Hq, 1);
    if (!p->lse.t)
        attn_operand_fill(&f.lse, &lse);
    attn_status st = fwd(&f, s);
    if (st != ATTN_OK) {
        free(mem);
        return st;
    }
    f.key_score = p->key_score;
    c.p = &f;
    attn_cpu_mat probe;
    c.k_conv = !attn_cpu_plane_mat(&p->k, p->Skv, p->Dk, 0, 0, 0, &probe);
    const int64_t n_items = p->B * p->Hkv * c.n_kt;
#pragma omp parallel num_threads(threads)
    {
        ks_scratch w = scratch_at(mem + per_thread * omp_get_thread_num(), p, c.lq, c.lk);
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < n_items; it++)
            run_item(&c, &w, it);
    }
    free(mem);
    return ATTN_OK;
}
