/* cpu_transnormer_diag.c - DiagAttention on the CPU: attention inside non-overlapping blocks of
 * the sequence, per (batch, query head, block, tile of query rows) work item with two BLIS
 * products, S = scale Q K^T over the block's keys the tile can see, then Y = P V, where P is the
 * softmax of each row (with the authors' zero-padded keys in the denominator when asked) or
 * relu(S). Keys after a causal query get weight 0. */
#include "cpu_transnormer.h"

#include "cpu_math.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

typedef struct diag_scratch {
    float *q, *k, *v, *s, *l; /* R x Dk, L x Dk, L x Dv, R x L, R */
} diag_scratch;

static int scratch_alloc(const attn_transnormer_problem *p, int64_t rows, int64_t keys,
                         diag_scratch *w)
{
    w->q = attn_cpu_tn_alloc(rows, p->Dk, 1);
    w->k = attn_cpu_tn_alloc(keys, p->Dk, 1);
    w->v = attn_cpu_tn_alloc(keys, p->Dv, 1);
    w->s = attn_cpu_tn_alloc(rows, keys, 1);
    w->l = attn_cpu_tn_alloc(rows, 1, 1);
    return w->q && w->k && w->v && w->s && w->l ? 0 : -1;
}

static void scratch_free(diag_scratch *w)
{
    free(w->q);
    free(w->k);
    free(w->v);
    free(w->s);
    free(w->l);
}

/* Softmax weights of one row over its nv visible scores (the rest of the n become 0), npad
 * padded keys of logit 0 in the denominator; returns the denominator. A NaN logit makes the
 * maximum, hence every weight, NaN. */
ATTN_CPU_HOT
static float softmax_row(float *s, int64_t nv, int64_t n, int64_t npad)
{
    float m = npad > 0 ? 0.0f : -INFINITY;
    for (int64_t j = 0; j < nv; j++)
        m = s[j] > m || isnan(s[j]) ? s[j] : m;
    float l = 0.0f;
    for (int64_t j = 0; j < nv; j++) {
        s[j] = attn_cpu_expf(s[j] - m);
        l += s[j];
    }
    for (int64_t j = nv; j < n; j++)
        s[j] = 0.0f;
    return npad > 0 ? l + (float)npad * attn_cpu_expf(-m) : l;
}

/* relu of the nv visible scores (NaN kept), 0 for the rest. */
static void relu_row(float *s, int64_t nv, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        s[j] = j < nv && !(s[j] <= 0.0f) ? s[j] : 0.0f;
}

/* One work item: rows [i0, i0 + n) of block [lo, end) for query head h of batch b. */
static void tile(const attn_transnormer_problem *p, int64_t b, int64_t h, int64_t lo,
                 int64_t end, int64_t i0, int64_t n, float *y, diag_scratch *w)
{
    const int64_t g = h / p->group, nk = (p->causal ? i0 + n : end) - lo;
    const int64_t ldy = p->Hq * p->Dv;
    attn_cpu_plane_to_f32(&p->q, b, h, i0, n, p->Dk, w->q);
    attn_cpu_plane_to_f32(&p->k, b, g, lo, nk, p->Dk, w->k);
    attn_cpu_plane_to_f32(&p->v, b, g, lo, nk, p->Dv, w->v);
    const attn_cpu_mat q = {w->q, p->Dk, 1}, kt = {w->k, 1, p->Dk};
    attn_cpu_sgemm(n, nk, p->Dk, (float)p->scale, q, kt, 0.0f, w->s, nk);
    const int soft = p->scores == ATTN_TRANSNORMER_SCORES_SOFTMAX;
    const int64_t npad = attn_transnormer_pad_keys(p, i0);
    for (int64_t r = 0; r < n; r++) {
        const int64_t nv = p->causal ? i0 + r + 1 - lo : nk;
        if (soft)
            w->l[r] = softmax_row(w->s + r * nk, nv, nk, npad);
        else
            relu_row(w->s + r * nk, nv, nk);
    }
    float *yt = y + (b * p->S + i0) * ldy + h * p->Dv;
    const attn_cpu_mat pm = {w->s, nk, 1}, v = {w->v, p->Dv, 1};
    attn_cpu_sgemm(n, p->Dv, nk, 1.0f, pm, v, 0.0f, yt, ldy);
    for (int64_t r = 0; soft && r < n; r++)
        for (int64_t d = 0; d < p->Dv; d++)
            yt[r * ldy + d] /= w->l[r];
}

attn_status attn_cpu_transnormer_diag(const attn_transnormer_problem *p, int threads,
                                      int64_t rows, float *y)
{
    const int64_t bl = p->block < p->S ? p->block : p->S; /* keys of a block, at most */
    const int64_t nblk = (p->S + bl - 1) / bl, ntile = (bl + rows - 1) / rows;
    const int64_t items = p->B * p->Hq * nblk * ntile;
    int oom = 0;
#pragma omp parallel num_threads(threads) reduction(| : oom)
    {
        diag_scratch w;
        const int bad = scratch_alloc(p, rows, bl, &w) != 0;
        oom = bad;
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            const int64_t t = it % ntile, blk = it / ntile % nblk, bh = it / ntile / nblk;
            const int64_t lo = blk * bl, end = p->S - lo < bl ? p->S : lo + bl;
            const int64_t i0 = lo + t * rows;
            if (!bad && i0 < end)
                tile(p, bh / p->Hq, bh % p->Hq, lo, end, i0, end - i0 < rows ? end - i0 : rows,
                     y, &w);
        }
        scratch_free(&w);
    }
    return oom ? attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: out of memory (transnormer scratch)")
               : ATTN_OK;
}
