/* rattention_decode.c - the ground truth of RATTENTION's decode step: the ring-buffer cache
 * (w + 1 slots, token t in slot t mod (w + 1), keys un-rotated) and the RLA state, advanced one
 * token at a time. For token t (position offset + t):
 *
 *   if t >= w + 1:  S += phi(k_e)^T v_e    e = t - w - 1, the token in the slot t is about to
 *                                          take: it leaves the window as it enters the state
 *   (w = -1: no ring; S += phi(k_t)^T v_t, the token itself)
 *   slot t mod (w + 1) <- (k_t, v_t)       rounded to the ring's dtype
 *   o_swa = softmax attention of RoPE(q_t) over RoPE(k_j) of the slots of j = max(0, t-w) .. t
 *   o_rla = phi(q_t) S
 *   out_t = GroupRMSNorm(o_swa) + GroupRMSNorm(o_rla)
 *
 * which is the forward's row t (reference/rattention.c) for any split of the sequence into
 * calls. Reads the cache, never writes it: the results carry the cache after the step.
 * docs/ops/rattention.md, "Decode". */
#include "rattention_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"
#include "linear_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* x as the ring's dtype stores it. */
static double stored(attn_dtype t, double x)
{
    unsigned char cell[8];
    attn_store_f64(cell, t, 0, x);
    return attn_load_f64(cell, t, 0);
}

typedef struct dec_scratch {
    double *kr, *vr, *st, *sabs, *krot, *q, *qrot, *fq, *fk, *s, *swa, *rla, *y;
    const double **kp, **vp;
    float *gs, *gr;
} dec_scratch;

/* The ring of (b, g) (slots x D) from its operand, as stored. */
static void load_ring(const attn_operand *o, int64_t b, int64_t g, int64_t slots, int64_t n,
                      double *r)
{
    for (int64_t s = 0; s < slots; s++)
        for (int64_t d = 0; d < n; d++)
            r[s * n + d] = attn_load_f64(o->ptr, o->dtype, attn_at(o, b, s, g, d));
}

/* New token s of the call: (k, v) of (b, g) into slot `slot` of the ring, rounded as stored. */
static void write_slot(const attn_rattention_problem *p, dec_scratch *w, int64_t b, int64_t g,
                       int64_t s, int64_t slot)
{
    for (int64_t d = 0; d < p->Dk; d++)
        w->kr[slot * p->Dk + d] = stored(p->k_ring.dtype, attn_load_f64(
            p->k.ptr, p->k.dtype, attn_at(&p->k, b, s, g, d)));
    for (int64_t d = 0; d < p->Dv; d++)
        w->vr[slot * p->Dv + d] = stored(p->v_ring.dtype, attn_load_f64(
            p->v.ptr, p->v.dtype, attn_at(&p->v, b, s, g, d)));
}

/* Fold the token leaving the window at token t (w = -1: token t itself, from the call). */
static void fold_evicted(const attn_rattention_problem *p, attn_ref_precision prec,
                         dec_scratch *w, int64_t b, int64_t g, int64_t s, int64_t t)
{
    if (p->slots == 0) {
        for (int64_t d = 0; d < p->Dk; d++)
            w->q[d] = attn_load_f64(p->k.ptr, p->k.dtype, attn_at(&p->k, b, s, g, d));
        for (int64_t d = 0; d < p->Dv; d++)
            w->y[d] = attn_load_f64(p->v.ptr, p->v.dtype, attn_at(&p->v, b, s, g, d));
        attn_ref_linear_phi(p->feature, prec, w->q, p->Dk, w->fk);
        attn_ref_rattention_fold(p, prec, w->fk, w->y, w->st, w->sabs);
        return;
    }
    if (t < p->slots)
        return;
    const int64_t slot = t % p->slots;
    attn_ref_linear_phi(p->feature, prec, w->kr + slot * p->Dk, p->Dk, w->fk);
    attn_ref_rattention_fold(p, prec, w->fk, w->vr + slot * p->Dv, w->st, w->sabs);
}

/* Rotated keys of the window of token t (tokens lo .. t, from the ring); returns their count. */
static int64_t window_keys(const attn_rattention_problem *p, attn_ref_precision prec,
                           dec_scratch *w, int64_t t)
{
    if (!p->swa)
        return 0;
    const int64_t lo = t > p->window ? t - p->window : 0, base = p->offset - p->pos;
    for (int64_t j = lo; j <= t; j++) {
        const int64_t slot = j % p->slots;
        double *kr = w->krot + (j - lo) * p->Dk;
        attn_ref_rattention_rotate(p, prec, w->kr + slot * p->Dk, (double)(base + j), kr);
        w->kp[j - lo] = kr;
        w->vp[j - lo] = w->vr + slot * p->Dv;
    }
    return t - lo + 1;
}

static double *at_row(const attn_rattention_problem *p, double *a, int64_t b, int64_t s,
                      int64_t h)
{
    return a ? a + ((b * p->S + s) * p->Hq + h) * p->Dv : NULL;
}

static void put(const attn_rattention_problem *p, double *a, int64_t b, int64_t s, int64_t h,
                const double *x)
{
    if (a)
        memcpy(at_row(p, a, b, s, h), x, sizeof(double) * (size_t)p->Dv);
}

/* Token s of the call for every query head of KV head g. */
static void token(const attn_rattention_problem *p, attn_ref_precision prec, dec_scratch *w,
                  int64_t b, int64_t g, int64_t s, attn_rattention_ref_out *o)
{
    const int64_t t = p->pos + s;
    fold_evicted(p, prec, w, b, g, s, t);
    if (p->slots)
        write_slot(p, w, b, g, s, t % p->slots);
    const int64_t n = window_keys(p, prec, w, t);
    for (int64_t h = g * p->group; h < (g + 1) * p->group; h++) {
        for (int64_t d = 0; d < p->Dk; d++)
            w->q[d] = attn_load_f64(p->q.ptr, p->q.dtype, attn_at(&p->q, b, s, h, d));
        attn_ref_rattention_rotate(p, prec, w->q, (double)(p->offset + s), w->qrot);
        attn_ref_rattention_swa_row(p, prec, w->qrot, w->kp, w->vp, n, w->s, w->swa,
                                    at_row(p, o->swa_cond, b, s, h));
        attn_ref_linear_phi(p->feature, prec, w->q, p->Dk, w->fq);
        attn_ref_rattention_read(p, prec, w->fq, w->st, w->sabs, w->rla,
                                 at_row(p, o->rla_cond, b, s, h));
        memset(w->y, 0, sizeof(double) * (size_t)p->Dv);
        if (p->swa)
            attn_ref_rattention_norm_add(
                prec, w->swa, attn_ref_rattention_gamma(&p->gamma_swa, h, p->Dv, w->gs), p->Dv,
                p->eps, w->y);
        attn_ref_rattention_norm_add(prec, w->rla,
                                     attn_ref_rattention_gamma(&p->gamma_rla, h, p->Dv, w->gr),
                                     p->Dv, p->eps, w->y);
        put(p, o->out, b, s, h, w->y);
        put(p, o->swa, b, s, h, w->swa);
        put(p, o->rla, b, s, h, w->rla);
    }
}

/* The cache of (b, g) after the call into the results asked for. */
static void save_cache(const attn_rattention_problem *p, const dec_scratch *w, int64_t b,
                       int64_t g, attn_rattention_ref_out *o)
{
    const int64_t n = p->Df * p->Dv, at = (b * p->Hkv + g) * n;
    if (o->state)
        memcpy(o->state + at, w->st, sizeof(double) * (size_t)n);
    if (o->state_cond)
        memcpy(o->state_cond + at, w->sabs, sizeof(double) * (size_t)n);
    for (int64_t s = 0; s < p->slots; s++) {
        if (o->k_ring)
            memcpy(o->k_ring + ((b * p->slots + s) * p->Hkv + g) * p->Dk, w->kr + s * p->Dk,
                   sizeof(double) * (size_t)p->Dk);
        if (o->v_ring)
            memcpy(o->v_ring + ((b * p->slots + s) * p->Hkv + g) * p->Dv, w->vr + s * p->Dv,
                   sizeof(double) * (size_t)p->Dv);
    }
}

static void group(const attn_rattention_problem *p, attn_ref_precision prec, dec_scratch *w,
                  int64_t b, int64_t g, attn_rattention_ref_out *o)
{
    if (p->slots) {
        load_ring(&p->k_ring, b, g, p->slots, p->Dk, w->kr);
        load_ring(&p->v_ring, b, g, p->slots, p->Dv, w->vr);
    }
    for (int64_t f = 0; f < p->Df; f++)
        for (int64_t c = 0; c < p->Dv; c++) {
            const double x = attn_load_f64(p->state.ptr, p->state.dtype,
                                           attn_at(&p->state, b, g, f, c));
            w->st[f * p->Dv + c] = x;
            w->sabs[f * p->Dv + c] = fabs(x);
        }
    for (int64_t s = 0; s < p->S; s++)
        token(p, prec, w, b, g, s, o);
    save_cache(p, w, b, g, o);
}

static void scratch_free(dec_scratch *w)
{
    void *all[] = {w->kr, w->vr, w->st, w->sabs, w->krot, w->q, w->qrot, w->fq, w->fk, w->s,
                   w->swa, w->rla, w->y, (void *)w->kp, (void *)w->vp, w->gs, w->gr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static int scratch_alloc(const attn_rattention_problem *p, dec_scratch *w)
{
    memset(w, 0, sizeof *w);
    const int64_t n = p->slots > 0 ? p->slots : 1, D = p->Dk > p->Dv ? p->Dk : p->Dv;
    w->kr = attn_ref_alloc(n, p->Dk);
    w->vr = attn_ref_alloc(n, p->Dv);
    w->st = attn_ref_alloc(p->Df, p->Dv);
    w->sabs = attn_ref_alloc(p->Df, p->Dv);
    w->krot = attn_ref_alloc(n, p->Dk);
    w->q = attn_ref_alloc(1, D);
    w->qrot = attn_ref_alloc(1, p->Dk);
    w->fq = attn_ref_alloc(1, p->Df);
    w->fk = attn_ref_alloc(1, p->Df);
    w->s = attn_ref_alloc(1, n);
    w->swa = attn_ref_alloc(1, p->Dv);
    w->rla = attn_ref_alloc(1, p->Dv);
    w->y = attn_ref_alloc(1, D);
    w->kp = malloc(sizeof(double *) * (size_t)n);
    w->vp = malloc(sizeof(double *) * (size_t)n);
    w->gs = malloc(sizeof(float) * (size_t)p->Dv);
    w->gr = malloc(sizeof(float) * (size_t)p->Dv);
    return w->kr && w->vr && w->st && w->sabs && w->krot && w->q && w->qrot && w->fq &&
           w->fk && w->s && w->swa && w->rla && w->y && w->kp && w->vp && w->gs && w->gr;
}

attn_status attn_ref_rattention_decode(const attn_rattention_problem *p,
                                       attn_ref_precision prec, attn_rattention_ref_out *o)
{
    dec_scratch w;
    if (!scratch_alloc(p, &w)) {
        scratch_free(&w);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "reference: cannot allocate the rattention "
                         "decode scratch for a ring of %lld slots", (long long)p->slots);
    }
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++)
            group(p, prec, &w, b, g, o);
    scratch_free(&w);
    return ATTN_OK;
}
