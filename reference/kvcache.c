/* kvcache.c - the ground truth of the attention over cache slots (attn_kvcache_attention),
 * written as its definition in plain loops, one query row at a time. For batch b, query i at
 * position t = q_pos[b, i], query head h of KV head g = h / (Hq / Hkv), the live slots j of g
 * (slot_pos[b, j, g] = p_j >= 0) that the query sees are those with p_j <= t; then
 *
 *   k~_j = RoPE(k_j, r_j),  q~ = RoPE(q_i, r_q)      r = p_j, t (ORIGINAL) or the in-cache
 *                                                    ranks (CACHE); no rotation (STORED)
 *   s_j  = scale q~ . k~_j,   s_j = cap tanh(s_j / cap) when capped
 *   m = max_j s_j,  p_j = exp(s_j - m) / sum_j exp(s_j - m)
 *   out = sum_j p_j v_j,   key_score[b, j, g] += p_j   (summed over i and the heads of g)
 *
 * An empty slot, or one the query does not see, is never read. A query that sees no slot
 * gives 0. The rotation is rope_ref.h's row helper in f64. See docs/ops/kvcache.md. */
#include "kvcache_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"
#include "ref_alloc.h"
#include "rope_ref.h"

#include <math.h>
#include <stdlib.h>

/* ---- positions ----------------------------------------------------------------------------- */

/* Live slots of KV head g whose position is below t. */
static int64_t live_below(const attn_kvcache_problem *p, int64_t b, int64_t g, int64_t t)
{
    int64_t n = 0;
    for (int64_t j = 0; j < p->Nslot; j++) {
        const int64_t x = attn_kv_slot_pos(p, b, j, g);
        n += x >= 0 && x < t;
    }
    return n;
}

int64_t attn_ref_kvcache_slot_rot_pos(const attn_kvcache_problem *p, int64_t b, int64_t j,
                                      int64_t g)
{
    const int64_t x = attn_kv_slot_pos(p, b, j, g);
    return p->positions == ATTN_KV_POS_CACHE ? live_below(p, b, g, x) : x;
}

int64_t attn_ref_kvcache_query_rot_pos(const attn_kvcache_problem *p, int64_t b, int64_t i,
                                       int64_t g)
{
    const int64_t t = attn_kv_qpos(p, b, i);
    return p->positions == ATTN_KV_POS_CACHE ? live_below(p, b, g, t) : t;
}

/* ---- one KV head ----------------------------------------------------------------------------- */

/* Scratch of one (batch, KV head): its rotated keys [Nslot][Dk] and values [Nslot][Dv] (live
 * slots only), a query [Dk], logits [Nslot], accumulators [Dv] twice. */
typedef struct kv_head {
    double *k, *v, *q, *s, *acc, *mag;
} kv_head;

/* Row x of operand o as doubles into y [n], rotated at position pos unless STORED; in F32 the
 * rotated row is rounded to float once. */
static void load_rotated(const attn_kvcache_problem *p, attn_ref_precision prec,
                         const attn_operand *o, int64_t b, int64_t s, int64_t h, int64_t pos,
                         double *y)
{
    for (int64_t d = 0; d < p->Dk; d++)
        y[d] = attn_load_f64(o->ptr, o->dtype, attn_at(o, b, s, h, d));
    if (p->positions == ATTN_KV_POS_STORED)
        return;
    attn_ref_rope_row(p->rope_layout, p->rope_theta, p->rot, p->Dk, (double)pos, y, y);
    for (int64_t d = 0; d < p->Dk; d++)
        y[d] = rnd(prec, y[d]);
}

static void load_head(const attn_kvcache_problem *p, attn_ref_precision prec, int64_t b,
                      int64_t g, kv_head *w)
{
    for (int64_t j = 0; j < p->Nslot; j++) {
        if (attn_kv_slot_pos(p, b, j, g) < 0)
            continue; /* empty: never read */
        load_rotated(p, prec, &p->k, b, j, g, attn_ref_kvcache_slot_rot_pos(p, b, j, g),
                     w->k + j * p->Dk);
        for (int64_t d = 0; d < p->Dv; d++)
            w->v[j * p->Dv + d] = attn_load_f64(p->v.ptr, p->v.dtype, attn_at(&p->v, b, j, g, d));
    }
}

static double norm(const double *x, int64_t n)
{
    double s = 0.0;
    for (int64_t d = 0; d < n; d++)
        s += x[d] * x[d];
    return sqrt(s);
}

/* Logits of row (b, i, h) into w->s (-inf where not seen); returns the logit bound. */
static double row_logits(const attn_kvcache_problem *p, attn_ref_precision prec, int64_t b,
                         int64_t i, int64_t h, kv_head *w)
{
    const int64_t g = h / p->group, t = attn_kv_qpos(p, b, i);
    load_rotated(p, prec, &p->q, b, i, h, attn_ref_kvcache_query_rot_pos(p, b, i, g), w->q);
    const double scale = rnd(prec, p->scale), cap = rnd(prec, p->softcap);
    double kmax = 0.0;
    for (int64_t j = 0; j < p->Nslot; j++) {
        const int64_t x = attn_kv_slot_pos(p, b, j, g);
        if (x < 0 || x > t) {
            w->s[j] = -INFINITY;
            continue;
        }
        const double *kj = w->k + j * p->Dk;
        double dot = 0.0;
        for (int64_t d = 0; d < p->Dk; d++)
            dot = rnd(prec, dot + rnd(prec, w->q[d] * kj[d]));
        double s = rnd(prec, scale * dot);
        if (p->softcap > 0)
            s = rnd(prec, cap * r_tanh(prec, rnd(prec, s / cap)));
        w->s[j] = s;
        kmax = fmax(kmax, norm(kj, p->Dk));
    }
    return fabs(p->scale) * norm(w->q, p->Dk) * kmax;
}

/* Softmax of the row and its outputs (row index r). A NaN logit makes the row NaN; a row that
 * sees no slot gives 0, lse -inf and adds nothing to key_score. */
static void row_softmax(const attn_kvcache_problem *p, attn_ref_precision prec, int64_t r,
                        int64_t b, int64_t g, kv_head *w, const attn_ref_kvcache_out *o)
{
    double m = -INFINITY;
    for (int64_t j = 0; j < p->Nslot; j++)
        m = isnan(w->s[j]) || isnan(m) ? NAN : fmax(m, w->s[j]);
    double l = 0.0;
    for (int64_t d = 0; d < p->Dv; d++)
        w->acc[d] = w->mag[d] = 0.0;
    for (int64_t j = 0; m != -INFINITY && j < p->Nslot; j++)
        if (w->s[j] != -INFINITY)
            l = rnd(prec, l + r_exp(prec, rnd(prec, w->s[j] - m)));
    for (int64_t j = 0; m != -INFINITY && j < p->Nslot; j++) {
        if (w->s[j] == -INFINITY)
            continue;
        const double pj = rnd(prec, r_exp(prec, rnd(prec, w->s[j] - m)) / l);
        const double *vj = w->v + j * p->Dv;
        for (int64_t d = 0; d < p->Dv; d++) {
            w->acc[d] = rnd(prec, w->acc[d] + rnd(prec, pj * vj[d]));
            w->mag[d] = rnd(prec, w->mag[d] + rnd(prec, pj * fabs(vj[d])));
        }
        if (o->key_score) {
            double *ks = o->key_score + (b * p->Nslot + j) * p->Hkv + g;
            *ks = rnd(prec, *ks + rnd(prec, (o->row_weight ? o->row_weight[r] : 1.0) * pj));
        }
    }
    for (int64_t d = 0; d < p->Dv; d++) {
        o->out[r * p->Dv + d] = w->acc[d];
        if (o->absmag)
            o->absmag[r * p->Dv + d] = w->mag[d];
    }
    if (o->lse)
        o->lse[r] = m == -INFINITY ? -INFINITY : rnd(prec, m + r_log(prec, l));
}

/* ---- driver -------------------------------------------------------------------------------- */

attn_status attn_ref_kvcache(const attn_kvcache_problem *p, attn_ref_precision prec,
                             const attn_ref_kvcache_out *o)
{
    kv_head w = {attn_ref_alloc(p->Nslot, p->Dk), attn_ref_alloc(p->Nslot, p->Dv),
                 attn_ref_alloc(p->Dk, 1), attn_ref_alloc(p->Nslot, 1),
                 attn_ref_alloc(p->Dv, 1), attn_ref_alloc(p->Dv, 1)};
    attn_status st = attn_ok();
    if (!w.k || !w.v || !w.q || !w.s || !w.acc || !w.mag)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate kvcache scratch (Nslot "
                       "%lld, Dk %lld, Dv %lld)", (long long)p->Nslot, (long long)p->Dk,
                       (long long)p->Dv);
    if (st == ATTN_OK && o->key_score)
        for (int64_t e = 0; e < p->B * p->Nslot * p->Hkv; e++)
            o->key_score[e] = 0.0;
    for (int64_t b = 0; st == ATTN_OK && b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++) {
            load_head(p, prec, b, g, &w);
            for (int64_t h = g * p->group; h < (g + 1) * p->group; h++)
                for (int64_t i = 0; i < p->Sq; i++) {
                    const int64_t r = (b * p->Sq + i) * p->Hq + h;
                    const double bound = row_logits(p, prec, b, i, h, &w);
                    if (o->logit_bound)
                        o->logit_bound[r] = bound;
                    row_softmax(p, prec, r, b, g, &w, o);
                }
        }
    free(w.k);
    free(w.v);
    free(w.q);
    free(w.s);
    free(w.acc);
    free(w.mag);
    return st;
}
