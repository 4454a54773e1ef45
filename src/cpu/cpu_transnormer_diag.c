/* cpu_transnormer_diag.c - DiagAttention on the CPU: attention inside non-overlapping blocks of
 * the sequence, per (batch, query head, block, tile of query rows) work item with two BLIS
 * products, S = scale Q K^T over the block's keys the tile can see, then Y = P V, where P is the
 * softmax of each row (sdpa's vectorised row step, with the authors' zero-padded keys in the
 * denominator when asked) or relu(S). f32 operands are read in place. Keys after a causal query
 * get weight 0 and never contribute, also with Inf/NaN in their V rows (cpu_linear_tril.c). */
#include "cpu_transnormer.h"

#include "cpu_linear.h"
#include "cpu_math.h"
#include "cpu_sdpa.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

/* Per-thread scratch: R x Dk, L x Dk, L x Dv, R x L, R, L x Dv (the masked product's copy). */
typedef struct diag_scratch {
    float *q, *k, *v, *s, *l, *vfix;
} diag_scratch;

static int64_t scratch_floats(const attn_transnormer_problem *p, int64_t rows, int64_t keys)
{
    return rows * p->Dk + keys * p->Dk + 2 * keys * p->Dv + rows * keys + rows;
}

static void scratch_carve(const attn_transnormer_problem *p, int64_t rows, int64_t keys,
                          float *base, diag_scratch *w)
{
    w->q = base;
    w->k = w->q + rows * p->Dk;
    w->v = w->k + keys * p->Dk;
    w->s = w->v + keys * p->Dv;
    w->l = w->s + rows * keys;
    w->vfix = w->l + rows;
}

/* Softmax weights of one row over its nv visible scores (the rest of the n become 0), npad
 * padded keys of logit 0 in the denominator; returns the denominator. A NaN logit makes the
 * row NaN (through exp and the sum, as in the reference). */
static float softmax_row(float *s, int64_t nv, int64_t n, int64_t npad)
{
    float m = npad > 0 ? 0.0f : -INFINITY, l = 0.0f;
    attn_cpu_softmax_row(s, nv, &m, &l);
    for (int64_t j = nv; j < n; j++)
        s[j] = 0.0f;
    return npad > 0 ? l + (float)npad * attn_cpu_expf(-m) : l;
}

/* relu of the nv visible scores (NaN kept), 0 for the rest. */
ATTN_CPU_HOT
static void relu_row(float *s, int64_t nv, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        s[j] = j < nv && !(s[j] <= 0.0f) ? s[j] : 0.0f;
}

/* One work item: rows [i0, i0 + n) of block [lo, end) for query head h of batch b. */
static void tile(const attn_transnormer_problem *p, int64_t b, int64_t h, int64_t lo,
                 int64_t end, int64_t i0, int64_t n, const attn_cpu_tn_y *y, diag_scratch *w)
{
    const int64_t g = h / p->group, nk = (p->causal ? i0 + n : end) - lo;
    const attn_cpu_mat q = attn_cpu_linear_rows(&p->q, b, h, i0, n, p->Dk, w->q);
    const attn_cpu_mat k = attn_cpu_linear_rows(&p->k, b, g, lo, nk, p->Dk, w->k);
    const attn_cpu_mat v = attn_cpu_linear_rows(&p->v, b, g, lo, nk, p->Dv, w->v);
    attn_cpu_sgemm(n, nk, p->Dk, (float)p->scale, q, (attn_cpu_mat){k.p, 1, k.rs}, 0.0f, w->s,
                   nk);
    const int soft = p->scores == ATTN_TRANSNORMER_SCORES_SOFTMAX;
    const int64_t npad = attn_transnormer_pad_keys(p, i0);
    for (int64_t r = 0; r < n; r++) {
        const int64_t nv = p->causal ? i0 + r + 1 - lo : nk;
        if (soft)
            w->l[r] = softmax_row(w->s + r * nk, nv, nk, npad);
        else
            relu_row(w->s + r * nk, nv, nk);
    }
    float *yt = attn_cpu_tn_row(y, b, i0, h);
    const attn_cpu_tril t = {n, p->Dv, nk, n, p->causal ? i0 - lo : nk};
    attn_cpu_tril_pv(&t, w->s, nk, v.p, v.rs, 0.0f, yt, y->ss, w->vfix);
    for (int64_t r = 0; soft && r < n; r++) {
        const float l = w->l[r];
        for (int64_t d = 0; d < p->Dv; d++)
            yt[r * y->ss + d] /= l;
    }
}

attn_status attn_cpu_transnormer_diag(const attn_transnormer_problem *p, int threads,
                                      int64_t rows, const attn_cpu_tn_y *y)
{
    const int64_t bl = p->block < p->S ? p->block : p->S; /* keys of a block, at most */
    const int64_t nblk = (p->S + bl - 1) / bl, ntile = (bl + rows - 1) / rows;
    const int64_t items = p->B * p->Hq * nblk * ntile, per = scratch_floats(p, rows, bl);
    const int nt = items < threads ? (int)(items > 0 ? items : 1) : threads;
    float *ws = attn_cpu_tn_alloc(per, nt, 1);
    if (!ws)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: out of memory (transnormer scratch)");
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
        const int64_t t = it % ntile, blk = it / ntile % nblk, bh = it / ntile / nblk;
        const int64_t lo = blk * bl, end = p->S - lo < bl ? p->S : lo + bl;
        const int64_t i0 = lo + t * rows;
        diag_scratch w;
        scratch_carve(p, rows, bl, ws + (int64_t)omp_get_thread_num() * per, &w);
        if (i0 < end)
            tile(p, bh / p->Hq, bh % p->Hq, lo, end, i0, end - i0 < rows ? end - i0 : rows, y,
                 &w);
    }
    free(ws);
    return ATTN_OK;
}
