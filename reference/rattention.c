/* rattention.c - the ground truth of RATTENTION's forward, written as its definition, one
 * (batch, KV head) at a time in plain loops (no BLIS, no chunking). For row i (position
 * pos_i = offset + i) of query head h, KV head g = h / (Hq / Hkv):
 *
 *   SWA (w >= 0):  s_j = scale * RoPE(q_i, pos_i) . RoPE(k_j, pos_j)   for j in [max(0, i-w), i]
 *                  o_swa = sum_j softmax_j(s) v_j
 *   RLA:           S_i = S0 + sum_{j <= i - w - 1} phi(k_j)^T v_j      (paper Eq. 4, the state
 *                  the window has left behind; w = -1: j <= i)
 *                  o_rla = phi(q_i) S_i                  raw q and k, no scale, no denominator
 *   out_i = GroupRMSNorm(o_swa; gamma_swa[h]) + GroupRMSNorm(o_rla; gamma_rla[h])
 *
 * S_i is built as the recurrence reads it: before row i the key i - w - 1 (if any) is folded
 * in, and every query head of the group reads the same state (the keys are shared). The
 * paired feature maps are non-negative, so |phi(q).phi(k)| = |phi(q)|.|phi(k)| and the
 * condition of o_rla is phi(q) applied to the state of magnitudes. ATTN_REF_F32 runs the same
 * code with every intermediate rounded to float. docs/ops/rattention.md. */
#include "rattention_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"
#include "linear_ref.h"
#include "rope_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared with the decode form ------------------------------------------------------------ */

void attn_ref_rattention_norm_add(attn_ref_precision prec, const double *x, const float *gamma,
                                  int64_t n, double eps, double *y)
{
    double ss = 0.0;
    for (int64_t c = 0; c < n; c++)
        ss = rnd(prec, ss + rnd(prec, x[c] * x[c]));
    const double r = rnd(prec, 1.0 / rnd(prec, sqrt(rnd(prec, rnd(prec, ss / (double)n) + eps))));
    for (int64_t c = 0; c < n; c++) {
        const double g = gamma ? (double)gamma[c] : 1.0;
        y[c] = rnd(prec, y[c] + rnd(prec, rnd(prec, x[c] * r) * g));
    }
}

const float *attn_ref_rattention_gamma(const attn_operand *g, int64_t h, int64_t dv, float *buf)
{
    if (!g->t)
        return NULL;
    for (int64_t c = 0; c < dv; c++)
        buf[c] = (float)attn_load_f64(g->ptr, g->dtype, attn_at(g, 0, 0, h, c));
    return buf;
}

void attn_ref_rattention_swa_row(const attn_rattention_problem *p, attn_ref_precision prec,
                                 const double *q, const double *const *krow,
                                 const double *const *vrow, int64_t n, double *s, double *o,
                                 double *cond)
{
    double m = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        double acc = 0.0;
        for (int64_t d = 0; d < p->Dk; d++)
            acc = rnd(prec, acc + rnd(prec, q[d] * krow[j][d]));
        s[j] = rnd(prec, p->scale * acc);
        m = s[j] > m || isnan(s[j]) ? s[j] : m;
    }
    double l = 0.0;
    for (int64_t j = 0; j < n; j++) {
        s[j] = r_exp(prec, rnd(prec, s[j] - m));
        l = rnd(prec, l + s[j]);
    }
    for (int64_t c = 0; c < p->Dv; c++) {
        double acc = 0.0, mag = 0.0;
        for (int64_t j = 0; j < n; j++) {
            acc = rnd(prec, acc + rnd(prec, s[j] * vrow[j][c]));
            mag += s[j] * fabs(vrow[j][c]);
        }
        o[c] = n ? rnd(prec, acc / l) : 0.0;
        if (cond)
            cond[c] = n ? mag / l : 0.0;
    }
}

void attn_ref_rattention_rotate(const attn_rattention_problem *p, attn_ref_precision prec,
                                const double *x, double pos, double *y)
{
    attn_ref_rope_row(p->rope, p->theta, p->Dk, p->Dk, pos, x, y);
    for (int64_t d = 0; d < p->Dk; d++)
        y[d] = rnd(prec, y[d]);
}

static void load_row(const attn_operand *o, int64_t b, int64_t s, int64_t h, int64_t n,
                     double *y)
{
    for (int64_t d = 0; d < n; d++)
        y[d] = attn_load_f64(o->ptr, o->dtype, attn_at(o, b, s, h, d));
}

/* ---- one (batch, KV head) of the forward ---------------------------------------------------- */

typedef struct fwd_scratch {
    double *kraw, *krot, *v, *st, *sabs, *q, *qrot, *fq, *fk, *s, *swa, *rla, *y;
    const double **kp, **vp;
    float *gs, *gr;
} fwd_scratch;

/* S0 of (b, g) into st (and |S0| into sabs). */
static void load_state(const attn_operand *o, int64_t b, int64_t g, int64_t df, int64_t dv,
                       double *st, double *sabs)
{
    for (int64_t f = 0; f < df; f++)
        for (int64_t c = 0; c < dv; c++) {
            st[f * dv + c] = o->t ? attn_load_f64(o->ptr, o->dtype, attn_at(o, b, g, f, c)) : 0.0;
            sabs[f * dv + c] = fabs(st[f * dv + c]);
        }
}

void attn_ref_rattention_fold(const attn_rattention_problem *p, attn_ref_precision prec,
                              const double *fk, const double *v, double *st, double *sabs)
{
    for (int64_t f = 0; f < p->Df; f++)
        for (int64_t c = 0; c < p->Dv; c++) {
            st[f * p->Dv + c] = rnd(prec, st[f * p->Dv + c] + rnd(prec, fk[f] * v[c]));
            sabs[f * p->Dv + c] += fabs(fk[f] * v[c]);
        }
}

void attn_ref_rattention_read(const attn_rattention_problem *p, attn_ref_precision prec,
                              const double *fq, const double *st, const double *sabs,
                              double *o, double *cond)
{
    for (int64_t c = 0; c < p->Dv; c++) {
        double acc = 0.0, mag = 0.0;
        for (int64_t f = 0; f < p->Df; f++) {
            acc = rnd(prec, acc + rnd(prec, fq[f] * st[f * p->Dv + c]));
            mag += fabs(fq[f]) * sabs[f * p->Dv + c];
        }
        o[c] = acc;
        if (cond)
            cond[c] = mag;
    }
}

/* Index of element [b, i, h, 0] in a [B][S][Hq][Dv] result. */
static int64_t row_index(const attn_rattention_problem *p, int64_t b, int64_t i, int64_t h)
{
    return ((b * p->S + i) * p->Hq + h) * p->Dv;
}

/* Copy x (Dv) into dst at row (b, i, h) when dst is asked for. */
static void put(const attn_rattention_problem *p, double *dst, int64_t b, int64_t i, int64_t h,
                const double *x)
{
    if (dst)
        memcpy(dst + row_index(p, b, i, h), x, sizeof(double) * (size_t)p->Dv);
}

/* Both branches and the sum of their norms for the G query heads of row i. */
static void rows_of_group(const attn_rattention_problem *p, attn_ref_precision prec,
                          fwd_scratch *w, int64_t b, int64_t g, int64_t i,
                          attn_rattention_ref_out *o)
{
    int64_t lo, hi;
    attn_rattention_swa_keys(p, i, &lo, &hi);
    for (int64_t j = lo; j < hi; j++) {
        w->kp[j - lo] = w->krot + j * p->Dk;
        w->vp[j - lo] = w->v + j * p->Dv;
    }
    for (int64_t h = g * p->group; h < (g + 1) * p->group; h++) {
        load_row(&p->q, b, i, h, p->Dk, w->q);
        attn_ref_rattention_rotate(p, prec, w->q, (double)(p->offset + i), w->qrot);
        attn_ref_rattention_swa_row(p, prec, w->qrot, w->kp, w->vp, hi - lo, w->s, w->swa,
                                    o->swa_cond ? o->swa_cond + row_index(p, b, i, h) : NULL);
        attn_ref_linear_phi(p->feature, prec, w->q, p->Dk, w->fq);
        attn_ref_rattention_read(p, prec, w->fq, w->st, w->sabs, w->rla,
                   o->rla_cond ? o->rla_cond + row_index(p, b, i, h) : NULL);
        memset(w->y, 0, sizeof(double) * (size_t)p->Dv);
        if (p->swa)
            attn_ref_rattention_norm_add(prec, w->swa,
                                         attn_ref_rattention_gamma(&p->gamma_swa, h, p->Dv, w->gs),
                                         p->Dv, p->eps, w->y);
        attn_ref_rattention_norm_add(prec, w->rla,
                                     attn_ref_rattention_gamma(&p->gamma_rla, h, p->Dv, w->gr),
                                     p->Dv, p->eps, w->y);
        put(p, o->out, b, i, h, w->y);
        put(p, o->swa, b, i, h, w->swa);
        put(p, o->rla, b, i, h, w->rla);
    }
}

static void forward_group(const attn_rattention_problem *p, attn_ref_precision prec,
                          fwd_scratch *w, int64_t b, int64_t g, attn_rattention_ref_out *o)
{
    for (int64_t j = 0; j < p->S; j++) {
        load_row(&p->k, b, j, g, p->Dk, w->kraw + j * p->Dk);
        load_row(&p->v, b, j, g, p->Dv, w->v + j * p->Dv);
        attn_ref_rattention_rotate(p, prec, w->kraw + j * p->Dk, (double)(p->offset + j),
                                   w->krot + j * p->Dk);
    }
    load_state(&p->state_in, b, g, p->Df, p->Dv, w->st, w->sabs);
    for (int64_t i = 0; i < p->S; i++) {
        const int64_t e = i - p->shift; /* the key leaving the window before row i */
        if (e >= 0) {
            attn_ref_linear_phi(p->feature, prec, w->kraw + e * p->Dk, p->Dk, w->fk);
            attn_ref_rattention_fold(p, prec, w->fk, w->v + e * p->Dv, w->st, w->sabs);
        }
        rows_of_group(p, prec, w, b, g, i, o);
    }
    const size_t sz = sizeof(double) * (size_t)(p->Df * p->Dv);
    const int64_t at = (b * p->Hkv + g) * p->Df * p->Dv;
    if (o->state)
        memcpy(o->state + at, w->st, sz);
    if (o->state_cond)
        memcpy(o->state_cond + at, w->sabs, sz);
}

static void scratch_free(fwd_scratch *w)
{
    void *all[] = {w->kraw, w->krot, w->v, w->st, w->sabs, w->q, w->qrot, w->fq, w->fk, w->s,
                   w->swa, w->rla, w->y, (void *)w->kp, (void *)w->vp, w->gs, w->gr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static int scratch_alloc(const attn_rattention_problem *p, fwd_scratch *w)
{
    memset(w, 0, sizeof *w);
    const int64_t S = p->S > 0 ? p->S : 1;
    w->kraw = attn_ref_alloc(S, p->Dk);
    w->krot = attn_ref_alloc(S, p->Dk);
    w->v = attn_ref_alloc(S, p->Dv);
    w->st = attn_ref_alloc(p->Df, p->Dv);
    w->sabs = attn_ref_alloc(p->Df, p->Dv);
    w->q = attn_ref_alloc(1, p->Dk);
    w->qrot = attn_ref_alloc(1, p->Dk);
    w->fq = attn_ref_alloc(1, p->Df);
    w->fk = attn_ref_alloc(1, p->Df);
    w->s = attn_ref_alloc(1, S);
    w->swa = attn_ref_alloc(1, p->Dv);
    w->rla = attn_ref_alloc(1, p->Dv);
    w->y = attn_ref_alloc(1, p->Dv);
    w->kp = malloc(sizeof(double *) * (size_t)S);
    w->vp = malloc(sizeof(double *) * (size_t)S);
    w->gs = malloc(sizeof(float) * (size_t)p->Dv);
    w->gr = malloc(sizeof(float) * (size_t)p->Dv);
    return w->kraw && w->krot && w->v && w->st && w->sabs && w->q && w->qrot && w->fq &&
           w->fk && w->s && w->swa && w->rla && w->y && w->kp && w->vp && w->gs && w->gr;
}

attn_status attn_ref_rattention(const attn_rattention_problem *p, attn_ref_precision prec,
                                attn_rattention_ref_out *o)
{
    fwd_scratch w;
    if (!scratch_alloc(p, &w)) {
        scratch_free(&w);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "reference: cannot allocate rattention "
                         "scratch for %lld tokens", (long long)p->S);
    }
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++)
            forward_group(p, prec, &w, b, g, o);
    scratch_free(&w);
    return ATTN_OK;
}
