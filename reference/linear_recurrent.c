/* linear_recurrent.c - kernel linear attention in its recurrent (RNN) form (Katharopoulos §3.4,
 * algos.md E): one state S (Df x Dv) and z (Df) per (batch, KV head), updated once per
 * position and read by the queries of that position:
 *
 *   S_t = lambda S_{t-1} + phi(k_{t-shift})^T v_{t-shift}   (no key while t < shift)
 *   z_t = lambda z_{t-1} + phi(k_{t-shift})
 *   out_t = f S_t  [/ (f . z_t + eps)],  f = scale * phi(q_t)
 *
 * (non-causal: every key first, then every query reads the final state). ATTN_REF_F64 is exact
 * to f64 rounding; ATTN_REF_F32 rounds every intermediate to float, which is what naive float
 * code (fast-transformers' CPU causal product, a decode loop) computes: the working-precision
 * result the conformance policy calibrates a backend against. docs/ops/linear.md. */
#include "linear_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec_state {
    double *s, *z, *f, *kf, *tmp; /* S [Df][Dv], z [Df], f and phi(k) [Df], tmp [Dk] */
    double lambda;
} rec_state;

/* S = lambda S + phi(k_j)^T v_j (j < 0: decay only). */
static void rec_update(const attn_linear_problem *p, attn_ref_precision prec, int64_t b,
                       int64_t g, int64_t j, rec_state *r)
{
    if (r->lambda != 1.0) {
        for (int64_t e = 0; e < p->Df * p->Dv; e++)
            r->s[e] = rnd(prec, r->lambda * r->s[e]);
        for (int64_t d = 0; d < p->Df; d++)
            r->z[d] = rnd(prec, r->lambda * r->z[d]);
    }
    if (j < 0)
        return;
    attn_ref_linear_phi_row(p, &p->k, b, j, g, prec, r->tmp, r->kf);
    for (int64_t c = 0; c < p->Dv; c++) {
        const double vc = attn_load_f64(p->v.ptr, p->v.dtype, attn_at(&p->v, b, j, g, c));
        for (int64_t d = 0; d < p->Df; d++)
            r->s[d * p->Dv + c] = rnd(prec, r->s[d * p->Dv + c] + rnd(prec, r->kf[d] * vc));
    }
    for (int64_t d = 0; d < p->Df; d++)
        r->z[d] = rnd(prec, r->z[d] + r->kf[d]);
}

/* out[b, i, h, :] from the current state. */
static void rec_read(const attn_linear_problem *p, attn_ref_precision prec, int64_t b, int64_t i,
                     int64_t h, rec_state *r, double *out)
{
    attn_ref_linear_phi_row(p, &p->q, b, i, h, prec, r->tmp, r->f);
    const double scale = rnd(prec, p->scale);
    for (int64_t d = 0; d < p->Df; d++)
        r->f[d] = rnd(prec, scale * r->f[d]);
    double den = 0.0;
    for (int64_t d = 0; d < p->Df; d++)
        den = rnd(prec, den + rnd(prec, r->f[d] * r->z[d]));
    den = rnd(prec, den + rnd(prec, p->eps));
    double *o = out + ((b * p->S + i) * p->Hq + h) * p->Dv;
    for (int64_t c = 0; c < p->Dv; c++) {
        double acc = 0.0;
        for (int64_t d = 0; d < p->Df; d++)
            acc = rnd(prec, acc + rnd(prec, r->f[d] * r->s[d * p->Dv + c]));
        o[c] = p->normalize ? rnd(prec, acc / den) : acc;
    }
}

static void rec_group(const attn_linear_problem *p, attn_ref_precision prec, int64_t b,
                      int64_t g, rec_state *r, attn_linear_ref_out *o)
{
    r->lambda = rnd(prec, attn_ref_linear_decay_pow(p, g, 1.0));
    for (int64_t d = 0; d < p->Df; d++) {
        for (int64_t c = 0; c < p->Dv; c++)
            r->s[d * p->Dv + c] = attn_ref_linear_state_in(&p->state_in, b, g, d, c);
        r->z[d] = attn_ref_linear_state_in(&p->z_in, b, g, d, 0);
    }
    for (int64_t t = 0; t < p->S; t++) {
        if (!p->causal) {
            rec_update(p, prec, b, g, t, r);
            continue;
        }
        rec_update(p, prec, b, g, t - p->shift, r);
        for (int64_t h = g * p->group; h < (g + 1) * p->group; h++)
            rec_read(p, prec, b, t, h, r, o->out);
    }
    for (int64_t t = 0; !p->causal && t < p->S; t++)
        for (int64_t h = g * p->group; h < (g + 1) * p->group; h++)
            rec_read(p, prec, b, t, h, r, o->out);
    const int64_t at = (b * p->Hkv + g) * p->Df;
    if (o->state)
        memcpy(o->state + at * p->Dv, r->s, sizeof(double) * (size_t)(p->Df * p->Dv));
    if (o->z)
        memcpy(o->z + at, r->z, sizeof(double) * (size_t)p->Df);
}

attn_status attn_ref_linear_recurrent(const attn_linear_problem *p, attn_ref_precision prec,
                                      attn_linear_ref_out *o)
{
    rec_state r = {attn_ref_alloc(p->Df, p->Dv), attn_ref_alloc(p->Df, 1),
                   attn_ref_alloc(p->Df, 1), attn_ref_alloc(p->Df, 1), attn_ref_alloc(p->Dk, 1),
                   1.0};
    attn_status st = ATTN_OK;
    if (!r.s || !r.z || !r.f || !r.kf || !r.tmp)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate the recurrent state");
    for (int64_t b = 0; st == ATTN_OK && b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++)
            rec_group(p, prec, b, g, &r, o);
    free(r.s);
    free(r.z);
    free(r.f);
    free(r.kf);
    free(r.tmp);
    return st == ATTN_OK ? attn_ok() : st;
}
