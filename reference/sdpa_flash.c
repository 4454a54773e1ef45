/* sdpa_flash.c - the FlashAttention-2 forward pass (Dao 2023, Algorithm 1; Dao et al. 2022 for
 * the online softmax) as a plain-C teaching implementation in f64. It computes the same
 * outputs as the naive definition in sdpa.c without ever holding a full row of logits:
 * queries are processed in tiles Q_i of Br rows, keys and values in tiles K_j, V_j of Bc rows,
 * and each query row keeps a running max m, a running sum l and an un-normalised accumulator
 * O~ that is rescaled whenever m grows. Tiles outside the causal / sliding-window band are
 * skipped entirely, using attn_band() (the same helper the fast backends use, so the
 * flash-vs-naive tests also check it). See docs/flash-attention.md. */
#include "sdpa_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"

#include <math.h>
#include <stdlib.h>

/* On-chip working set of one query tile, in the paper's symbols. */
typedef struct flash_tile {
    double *Q;  /* Q_i [Br][Dk] */
    double *K;  /* K_j [Bc][Dk] */
    double *V;  /* V_j [Bc][Dv] */
    double *S;  /* S_ij [Br][Bc], logits of the current pair of tiles */
    double *O;  /* O~_i [Br][Dv], un-normalised output */
    double *m;  /* m_i [Br], running row max */
    double *l;  /* l_i [Br], running row sum of exp(s - m_i) */
} flash_tile;

/* max() that keeps NaN: a NaN logit anywhere makes its row NaN, as in the naive definition. */
static double flash_max(double a, double b)
{
    if (isnan(a) || isnan(b))
        return NAN;
    return a > b ? a : b;
}

void attn_ref_flash_load(const attn_operand *o, int64_t b, int64_t r0, int64_t n, int64_t head,
                         int64_t dim, double *dst)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t d = 0; d < dim; d++)
            dst[r * dim + d] = attn_load_f64(o->ptr, o->dtype, attn_at(o, b, r0 + r, head, d));
}

/* The band test is needed only on tiles that straddle a band edge (interior = 0); the boolean
 * mask is per element and applies everywhere. */
void attn_ref_flash_scores(const attn_sdpa_problem *p, const attn_ref_tile *g, const double *Q,
                           const double *K, double *S, double *C)
{
    for (int64_t r = 0; r < g->rows; r++) {
        int64_t lo = 0, hi = p->Skv;
        if (!g->interior)
            attn_band(p, g->i0 + r, &lo, &hi);
        for (int64_t c = 0; c < g->cols; c++) {
            const int64_t j = g->j0 + c;
            double *s = &S[r * g->ld + c];
            int hidden = j < lo || j >= hi;
            if (!hidden && p->mask_bool.t != NULL)
                hidden = attn_load_f64(p->mask_bool.ptr, ATTN_U8,
                                       attn_at(&p->mask_bool, g->b, g->i0 + r, g->h, j)) == 0.0;
            if (hidden) {
                *s = -INFINITY;
                continue;
            }
            double dot = 0.0;
            for (int64_t d = 0; d < p->Dk; d++)
                dot += Q[r * p->Dk + d] * K[c * p->Dk + d];
            *s = p->scale * dot;
            double dcap = 1.0;
            if (p->softcap > 0) {
                const double th = tanh(*s / p->softcap);
                *s = p->softcap * th;
                dcap = 1.0 - th * th;
            }
            if (C)
                C[r * g->ld + c] = dcap;
            if (p->mask_add.t != NULL)
                *s += attn_load_f64(p->mask_add.ptr, p->mask_add.dtype,
                                    attn_at(&p->mask_add, g->b, g->i0 + r, g->h, j));
        }
    }
}

/* One step of the online softmax for every row of the tile (FA2 Algorithm 1, inner loop):
 *   m_new = max(m, rowmax(S_ij)),  P~ = exp(S_ij - m_new),  alpha = exp(m - m_new),
 *   l = alpha l + rowsum(P~),      O~ = diag(alpha) O~ + P~ V_j,  m = m_new. */
static void flash_update(const attn_sdpa_problem *p, flash_tile *t, int64_t rows, int64_t cols,
                         int64_t bc)
{
    const int64_t dv = p->Dv;
    for (int64_t r = 0; r < rows; r++) {
        const double *s = &t->S[r * bc];
        double *o = &t->O[r * dv];
        double m_new = t->m[r];
        for (int64_t c = 0; c < cols; c++)
            m_new = flash_max(m_new, s[c]);
        if (m_new == -INFINITY)
            continue; /* nothing visible yet: exp(-inf - -inf) would be NaN */

        const double alpha = exp(t->m[r] - m_new); /* 0 on the first visible tile */
        t->l[r] *= alpha;
        for (int64_t d = 0; d < dv; d++)
            o[d] *= alpha;
        for (int64_t c = 0; c < cols; c++) {
            if (s[c] == -INFINITY)
                continue; /* P~ = 0: a hidden key's value is never read */
            const double pc = exp(s[c] - m_new);
            t->l[r] += pc;
            for (int64_t d = 0; d < dv; d++)
                o[d] += pc * t->V[c * dv + d];
        }
        t->m[r] = m_new;
    }
}

/* O_i = diag(l)^-1 O~ and L_i = m + log l; a row that saw no key gives 0 and -inf. */
static void flash_finish(const attn_sdpa_problem *p, const flash_tile *t, int64_t b, int64_t h,
                         int64_t i0, int64_t rows, double *out, double *lse)
{
    for (int64_t r = 0; r < rows; r++) {
        const int64_t i = i0 + r;
        const int empty = t->m[r] == -INFINITY;
        double *o = out + ((b * p->Sq + i) * p->Hq + h) * p->Dv;
        for (int64_t d = 0; d < p->Dv; d++)
            o[d] = empty ? 0.0 : t->O[r * p->Dv + d] / t->l[r];
        if (lse)
            lse[(b * p->Hq + h) * p->Sq + i] = empty ? -INFINITY : t->m[r] + log(t->l[r]);
    }
}

/* One query tile Q_i = rows [i0, i0 + rows) of head h: the FA2 outer-loop body. */
static void flash_query_tile(const attn_sdpa_problem *p, flash_tile *t, int64_t b, int64_t h,
                             int64_t i0, int64_t rows, int64_t bc, double *out, double *lse)
{
    const int64_t g = h / p->group; /* the KV head this query head reads (GQA/MQA) */
    attn_ref_flash_load(&p->q, b, i0, rows, h, p->Dk, t->Q);
    for (int64_t r = 0; r < rows; r++) {
        t->m[r] = -INFINITY;
        t->l[r] = 0.0;
        for (int64_t d = 0; d < p->Dv; d++)
            t->O[r * p->Dv + d] = 0.0;
    }

    /* Band of the first and last row. lo and hi never decrease with the row, so the keys any
     * row of this tile may see lie in [lo_first, hi_last), and every row sees all of
     * [lo_last, hi_first). Key tiles outside the first range are skipped; tiles inside the
     * second need no band test per element. */
    int64_t lo_first, hi_first, lo_last, hi_last;
    attn_band(p, i0, &lo_first, &hi_first);
    attn_band(p, i0 + rows - 1, &lo_last, &hi_last);

    for (int64_t j0 = lo_first / bc * bc; j0 < hi_last; j0 += bc) {
        const int64_t cols = j0 + bc <= p->Skv ? bc : p->Skv - j0; /* ragged last tile */
        const int interior = j0 >= lo_last && j0 + cols <= hi_first;
        attn_ref_flash_load(&p->k, b, j0, cols, g, p->Dk, t->K);
        attn_ref_flash_load(&p->v, b, j0, cols, g, p->Dv, t->V);
        const attn_ref_tile tile = {b, h, i0, rows, j0, cols, bc, interior};
        attn_ref_flash_scores(p, &tile, t->Q, t->K, t->S, NULL);
        flash_update(p, t, rows, cols, bc);
    }
    flash_finish(p, t, b, h, i0, rows, out, lse);
}

attn_status attn_ref_sdpa_flash(const attn_sdpa_problem *p, int64_t br, int64_t bc, double *out,
                           double *lse)
{
    if (br < 1 || bc < 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "ref_sdpa_flash: tile sizes must be >= 1 "
                         "(got Br=%lld, Bc=%lld)", (long long)br, (long long)bc);
    if (br > p->Sq)
        br = p->Sq;
    if (bc > p->Skv)
        bc = p->Skv;

    flash_tile t;
    t.Q = attn_ref_alloc(br, p->Dk);
    t.K = attn_ref_alloc(bc, p->Dk);
    t.V = attn_ref_alloc(bc, p->Dv);
    t.S = attn_ref_alloc(br, bc);
    t.O = attn_ref_alloc(br, p->Dv);
    t.m = attn_ref_alloc(br, 1);
    t.l = attn_ref_alloc(br, 1);
    attn_status st = ATTN_OK;
    if (!t.Q || !t.K || !t.V || !t.S || !t.O || !t.m || !t.l) {
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref_sdpa_flash: cannot allocate tiles of %lldx%lld",
                       (long long)br, (long long)bc);
    } else {
        for (int64_t b = 0; b < p->B; b++)
            for (int64_t h = 0; h < p->Hq; h++)
                for (int64_t i0 = 0; i0 < p->Sq; i0 += br)
                    flash_query_tile(p, &t, b, h, i0, i0 + br <= p->Sq ? br : p->Sq - i0, bc,
                                     out, lse);
        st = attn_ok();
    }
    free(t.Q);
    free(t.K);
    free(t.V);
    free(t.S);
    free(t.O);
    free(t.m);
    free(t.l);
    return st;
}
