/* sdpa_flash_backward.c - the FlashAttention-2 backward pass (Dao 2023, Algorithm 2) as a
 * plain-C teaching implementation in f64. It computes the gradients of sdpa_backward.c without
 * ever holding a row of probabilities: the forward saved only O and the log-sum-exp L, so each
 * pair of tiles (Q_i: Br query rows, K_j/V_j: Bc keys) recomputes
 *
 *   S_ij = scale Q_i K_j^T (soft-capped, masked),  P_ij = exp(S_ij - L_i)
 *   dV_j += P_ij^T dO_i              dP_ij = dO_i V_j^T
 *   dS_ij = P_ij * (dP_ij - D_i)     with D_i = rowsum(dO_i * O_i), computed once per row
 *   dQ_i += scale dS_ij K_j          dK_j += scale dS_ij^T Q_i   (dS through the soft-cap)
 *
 * Two loop orders: key tiles outer (the paper's: dK_j and dV_j stay on chip for a whole sweep
 * over the query tiles and are written once, dQ_i is accumulated in memory; a parallel version
 * needs atomics or a second pass for dQ), or query tiles outer (dQ_i stays on chip, dK_j and
 * dV_j are accumulated). Both skip tile pairs outside the causal / window band with
 * attn_band(). See docs/ops/sdpa-backward.md. */
#include "sdpa_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* On-chip working set of one pair of tiles, in the paper's symbols. */
typedef struct bwd_tile {
    double *Q, *dO;   /* Q_i [Br][Dk], dO_i [Br][Dv] */
    double *K, *V;    /* K_j [Bc][Dk], V_j [Bc][Dv] */
    double *S, *C;    /* S_ij, then P_ij [Br][Bc]; C: the soft-cap's derivative [Br][Bc] */
    double *dP;       /* dP_ij, then dS_ij [Br][Bc] */
    double *D;        /* D [B][Hq][Sq]: rowsum(dO * O) of every row */
} bwd_tile;

/* D_i = rowsum(dO_i * O_i) for every row, from the forward's output. */
static void rows_D(const attn_sdpa_problem *p, const double *out, double *D)
{
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t h = 0; h < p->Hq; h++) {
                const double *o = out + ((b * p->Sq + i) * p->Hq + h) * p->Dv;
                double acc = 0.0;
                for (int64_t d = 0; d < p->Dv; d++)
                    acc += attn_load_f64(p->dout.ptr, p->dout.dtype,
                                         attn_at(&p->dout, b, i, h, d)) * o[d];
                D[(b * p->Hq + h) * p->Sq + i] = acc;
            }
}

/* Additive-mask gradient element of logit (b, i, h, j) (size-1 dims summed over). */
static double *dmask_at(const attn_sdpa_problem *p, double *dmask, int64_t b, int64_t i,
                        int64_t h, int64_t j)
{
    const int64_t *sh = p->mask_add.t->shape;
    return dmask + (((sh[0] == 1 ? 0 : b) * sh[1] + (sh[1] == 1 ? 0 : i)) * sh[2] +
                    (sh[2] == 1 ? 0 : h)) * sh[3] + (sh[3] == 1 ? 0 : j);
}

/* P_ij = exp(S_ij - L_i), then dS_ij = P_ij (dP_ij - D_i) for the tile's rows; hidden
 * elements and rows with no visible key (L = -inf) give 0. */
static void tile_ds(const attn_sdpa_problem *p, bwd_tile *t, const attn_ref_tile *g,
                    const double *lse, const attn_ref_sdpa_grads *gr)
{
    for (int64_t r = 0; r < g->rows; r++) {
        const int64_t row = (g->b * p->Hq + g->h) * p->Sq + g->i0 + r;
        for (int64_t c = 0; c < g->cols; c++) {
            double *s = &t->S[r * g->ld + c], *dp = &t->dP[r * g->ld + c];
            *s = *s == -INFINITY || lse[row] == -INFINITY ? 0.0 : exp(*s - lse[row]);
            double acc = 0.0;
            for (int64_t d = 0; d < p->Dv; d++)
                acc += t->dO[r * p->Dv + d] * t->V[c * p->Dv + d];
            *dp = *s * (acc - t->D[row]);
            if (gr->dmask)
                *dmask_at(p, gr->dmask, g->b, g->i0 + r, g->h, g->j0 + c) += *dp;
        }
    }
}

/* The four products of a tile pair after dS: dV_j += P^T dO_i, dQ_i += scale dS K_j (into dq,
 * rows of Q_i), dK_j += scale dS^T Q_i (into dk, rows of K_j). dS goes through the soft-cap's
 * derivative first. */
static void tile_grads(const attn_sdpa_problem *p, bwd_tile *t, const attn_ref_tile *g,
                       double *dq, double *dk, double *dv)
{
    for (int64_t r = 0; r < g->rows; r++)
        for (int64_t c = 0; c < g->cols; c++) {
            const double P = t->S[r * g->ld + c];
            if (P == 0.0)
                continue; /* hidden: contributes nothing */
            const double ds = p->scale * t->dP[r * g->ld + c] * t->C[r * g->ld + c];
            for (int64_t d = 0; d < p->Dv; d++)
                dv[c * p->Dv + d] += P * t->dO[r * p->Dv + d];
            for (int64_t d = 0; d < p->Dk; d++) {
                dq[r * p->Dk + d] += ds * t->K[c * p->Dk + d];
                dk[c * p->Dk + d] += ds * t->Q[r * p->Dk + d];
            }
        }
}

/* Whether key tile [j0, j0 + cols) meets the band of query rows [i0, i0 + rows); *interior:
 * it lies inside every row's band. */
static int tile_in_band(const attn_sdpa_problem *p, int64_t i0, int64_t rows, int64_t j0,
                        int64_t cols, int *interior)
{
    int64_t lo_first, hi_first, lo_last, hi_last;
    attn_band(p, i0, &lo_first, &hi_first);
    attn_band(p, i0 + rows - 1, &lo_last, &hi_last);
    *interior = j0 >= lo_last && j0 + cols <= hi_first;
    return j0 + cols > lo_first && j0 < hi_last;
}

/* Row s of head h in a dense [B][S][H][D] gradient. */
static double *row_of(double *base, int64_t b, int64_t s, int64_t S, int64_t H, int64_t h,
                      int64_t D)
{
    return base + ((b * S + s) * H + h) * D;
}

/* One pair of tiles: load both (a real kernel keeps the outer loop's tile on chip; loading it
 * again keeps this code the same for both orders), recompute P, then dS and the gradients
 * into the tile accumulators tq [Br][Dk], tk [Bc][Dk], tv [Bc][Dv]. */
static void tile_pair(const attn_sdpa_problem *p, bwd_tile *t, const attn_ref_tile *g,
                      const double *lse, const attn_ref_sdpa_grads *gr, double *tq, double *tk,
                      double *tv)
{
    const int64_t kvh = g->h / p->group;
    attn_ref_flash_load(&p->q, g->b, g->i0, g->rows, g->h, p->Dk, t->Q);
    attn_ref_flash_load(&p->dout, g->b, g->i0, g->rows, g->h, p->Dv, t->dO);
    attn_ref_flash_load(&p->k, g->b, g->j0, g->cols, kvh, p->Dk, t->K);
    attn_ref_flash_load(&p->v, g->b, g->j0, g->cols, kvh, p->Dv, t->V);
    attn_ref_flash_scores(p, g, t->Q, t->K, t->S, t->C);
    tile_ds(p, t, g, lse, gr);
    tile_grads(p, t, g, tq, tk, tv);
}

/* Add a tile's accumulator acc [n][D] into rows of a dense [.., S, H, D] gradient, then clear
 * it. */
static void flush(double *acc, double *dst, int64_t n, int64_t H, int64_t D)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t d = 0; d < D; d++) {
            dst[r * H * D + d] += acc[r * D + d];
            acc[r * D + d] = 0.0;
        }
}

/* Accumulators of one tile pair's gradients: dQ_i [Br][Dk], dK_j [Bc][Dk], dV_j [Bc][Dv]. */
typedef struct bwd_acc {
    double *dq, *dk, *dv;
} bwd_acc;

/* Sweep every (query head of KV head kvh, query tile, key tile) of batch b in the chosen loop
 * order; the inner tile's gradient is flushed after each pair, the outer one after its sweep. */
static void sweep(const attn_sdpa_problem *p, bwd_tile *t, bwd_acc *a, int64_t br, int64_t bc,
                  int kv_outer, int64_t b, int64_t kvh, const double *lse,
                  const attn_ref_sdpa_grads *gr)
{
    const int64_t nq = (p->Sq + br - 1) / br, nk = (p->Skv + bc - 1) / bc;
    for (int64_t h = kvh * p->group; h < (kvh + 1) * p->group; h++)
        for (int64_t o = 0; o < (kv_outer ? nk : nq); o++) {
            for (int64_t x = 0; x < (kv_outer ? nq : nk); x++) {
                const int64_t i0 = (kv_outer ? x : o) * br, j0 = (kv_outer ? o : x) * bc;
                attn_ref_tile g = {b, h, i0, i0 + br <= p->Sq ? br : p->Sq - i0, j0,
                                   j0 + bc <= p->Skv ? bc : p->Skv - j0, bc, 0};
                if (!tile_in_band(p, g.i0, g.rows, g.j0, g.cols, &g.interior))
                    continue;
                tile_pair(p, t, &g, lse, gr, a->dq, a->dk, a->dv);
                double *dq = row_of(gr->dq, b, i0, p->Sq, p->Hq, h, p->Dk);
                if (kv_outer) {
                    flush(a->dq, dq, g.rows, p->Hq, p->Dk);
                } else {
                    flush(a->dk, row_of(gr->dk, b, j0, p->Skv, p->Hkv, kvh, p->Dk), g.cols,
                          p->Hkv, p->Dk);
                    flush(a->dv, row_of(gr->dv, b, j0, p->Skv, p->Hkv, kvh, p->Dv), g.cols,
                          p->Hkv, p->Dv);
                }
            }
            const int64_t s0 = o * (kv_outer ? bc : br);
            if (kv_outer) {
                const int64_t n = s0 + bc <= p->Skv ? bc : p->Skv - s0;
                flush(a->dk, row_of(gr->dk, b, s0, p->Skv, p->Hkv, kvh, p->Dk), n, p->Hkv,
                      p->Dk);
                flush(a->dv, row_of(gr->dv, b, s0, p->Skv, p->Hkv, kvh, p->Dv), n, p->Hkv,
                      p->Dv);
            } else {
                const int64_t n = s0 + br <= p->Sq ? br : p->Sq - s0;
                flush(a->dq, row_of(gr->dq, b, s0, p->Sq, p->Hq, h, p->Dk), n, p->Hq, p->Dk);
            }
        }
}

attn_status attn_ref_sdpa_flash_backward(const attn_sdpa_problem *p, int64_t br, int64_t bc,
                                         int kv_outer, const double *out, const double *lse,
                                         const attn_ref_sdpa_grads *g)
{
    if (br < 1 || bc < 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "ref_sdpa_flash_backward: tile sizes must "
                         "be >= 1 (got Br=%lld, Bc=%lld)", (long long)br, (long long)bc);
    br = br > p->Sq ? (p->Sq > 0 ? p->Sq : 1) : br;
    bc = bc > p->Skv ? p->Skv : bc;
    bwd_tile t = {attn_ref_alloc(br, p->Dk), attn_ref_alloc(br, p->Dv), attn_ref_alloc(bc, p->Dk),
                  attn_ref_alloc(bc, p->Dv), attn_ref_alloc(br, bc),    attn_ref_alloc(br, bc),
                  attn_ref_alloc(br, bc),    attn_ref_alloc(p->B * p->Hq, p->Sq)};
    bwd_acc a = {calloc((size_t)(br * p->Dk), sizeof(double)),
                 calloc((size_t)(bc * p->Dk), sizeof(double)),
                 calloc((size_t)(bc * p->Dv), sizeof(double))};
    attn_status st = ATTN_OK;
    if (!t.Q || !t.dO || !t.K || !t.V || !t.S || !t.C || !t.dP || !t.D || !a.dq || !a.dk ||
        !a.dv) {
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref_sdpa_flash_backward: cannot allocate tiles "
                       "of %lldx%lld", (long long)br, (long long)bc);
    } else {
        memset(g->dq, 0, (size_t)(p->B * p->Sq * p->Hq * p->Dk) * sizeof(double));
        memset(g->dk, 0, (size_t)(p->B * p->Skv * p->Hkv * p->Dk) * sizeof(double));
        memset(g->dv, 0, (size_t)(p->B * p->Skv * p->Hkv * p->Dv) * sizeof(double));
        if (g->dmask) {
            const int64_t *sh = p->mask_add.t->shape;
            memset(g->dmask, 0, (size_t)(sh[0] * sh[1] * sh[2] * sh[3]) * sizeof(double));
        }
        rows_D(p, out, t.D);
        for (int64_t b = 0; b < p->B; b++)
            for (int64_t kvh = 0; kvh < p->Hkv; kvh++)
                sweep(p, &t, &a, br, bc, kv_outer, b, kvh, lse, g);
        st = attn_ok();
    }
    double *all[] = {t.Q, t.dO, t.K, t.V, t.S, t.C, t.dP, t.D, a.dq, a.dk, a.dv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    return st;
}
