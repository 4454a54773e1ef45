/* linear.c - the ground truth of kernel linear attention: its quadratic masked form, one query
 * row at a time over every key it sees, f64 (no state recurrence, no chunks, no BLIS). For
 * query i of batch b and head h, KV head g = h / (Hq / Hkv), f = scale * phi(q_i),
 * lambda = lambda_g (1 without decay) and the keys j visible to it (causal: j <= i - shift,
 * with weight lambda^(i - shift - j); non-causal: every j, weight 1):
 *
 *   w_j   = lambda^(i - shift - j) * (f . phi(k_j))
 *   num_i = lambda^(i+1) f S0 + sum_j w_j v_j          (non-causal: f S0 + ...)
 *   den_i = lambda^(i+1) f . z0 + sum_j w_j
 *   out_i = num_i / (den_i + eps)  with the normaliser, else num_i
 *
 * and the final state S = lambda^S S0 + sum_{j <= S-1-shift} lambda^(S-1-shift-j) phi(k_j)^T
 * v_j (z likewise with v = 1). The conditions replace every product by its magnitudes:
 * |f| . |phi(k_j)| |v_j| summed elementwise (see docs/conformance.md, "Linear attention").
 * docs/ops/linear.md. */
#include "linear_ref.h"

#include "attn_backend_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* phi(k) of one (batch, KV head) and its magnitudes, the values: [S][Df], [S][Df], [S][Dv];
 * wt[j]: the weight of key j in the final state. */
typedef struct lin_kv {
    double *k, *kabs, *v, *wt;
} lin_kv;

static void load_kv(const attn_linear_problem *p, int64_t b, int64_t g, double *tmp, lin_kv *kv)
{
    for (int64_t j = 0; j < p->S; j++) {
        double *kj = kv->k + j * p->Df;
        attn_ref_linear_phi_row(p, &p->k, b, j, g, ATTN_REF_F64, tmp, kj);
        for (int64_t d = 0; d < p->Df; d++)
            kv->kabs[j * p->Df + d] = fabs(kj[d]);
    }
    attn_ref_linear_load_v(p, b, g, kv->v);
}

/* Sums of one query row: numerator and its magnitude [Dv], denominator and its magnitude. */
typedef struct lin_row {
    double *f, *fabs, *num, *nabs, *tmp;
    double den, dabs;
} lin_row;

/* The initial state's share of row i: weight lambda^(i+1) (causal) or 1. */
static void row_state_in(const attn_linear_problem *p, int64_t b, int64_t g, double wt,
                         lin_row *r)
{
    for (int64_t d = 0; d < p->Df; d++) {
        for (int64_t c = 0; c < p->Dv; c++) {
            const double s = attn_ref_linear_state_in(&p->state_in, b, g, d, c);
            r->num[c] += wt * r->f[d] * s;
            r->nabs[c] += wt * r->fabs[d] * fabs(s);
        }
        const double z = attn_ref_linear_state_in(&p->z_in, b, g, d, 0);
        r->den += wt * r->f[d] * z;
        r->dabs += wt * r->fabs[d] * fabs(z);
    }
}

/* Key j's share of the row, weighed by lambda^dist. */
static void row_key(const attn_linear_problem *p, const lin_kv *kv, int64_t j, double wt,
                    lin_row *r)
{
    const double *kj = kv->k + j * p->Df, *ka = kv->kabs + j * p->Df, *vj = kv->v + j * p->Dv;
    double s = 0.0, sa = 0.0;
    for (int64_t d = 0; d < p->Df; d++) {
        s += r->f[d] * kj[d];
        sa += r->fabs[d] * ka[d];
    }
    s *= wt;
    sa *= wt;
    for (int64_t c = 0; c < p->Dv; c++) {
        r->num[c] += s * vj[c];
        r->nabs[c] += sa * fabs(vj[c]);
    }
    r->den += s;
    r->dabs += sa;
}

/* out and its condition: num, or num / (den + eps) whose first-order error is
 * (|dnum| + |out| |dden|) / |den + eps|. */
static void row_finish(const attn_linear_problem *p, const lin_row *r, double *out, double *cond)
{
    const double den = r->den + p->eps;
    for (int64_t c = 0; c < p->Dv; c++) {
        const double o = p->normalize ? r->num[c] / den : r->num[c];
        out[c] = o;
        if (cond)
            cond[c] = p->normalize ? (r->nabs[c] + fabs(o) * r->dabs) / fabs(den) : r->nabs[c];
    }
}

static void query_row(const attn_linear_problem *p, const lin_kv *kv, int64_t b, int64_t i,
                      int64_t h, lin_row *r, double *out, double *cond)
{
    const int64_t g = h / p->group;
    attn_ref_linear_phi_row(p, &p->q, b, i, h, ATTN_REF_F64, r->tmp, r->f);
    for (int64_t d = 0; d < p->Df; d++) {
        r->f[d] *= p->scale;
        r->fabs[d] = fabs(r->f[d]);
    }
    memset(r->num, 0, sizeof(double) * (size_t)p->Dv);
    memset(r->nabs, 0, sizeof(double) * (size_t)p->Dv);
    r->den = r->dabs = 0.0;
    if (!p->causal) {
        row_state_in(p, b, g, 1.0, r);
        for (int64_t j = 0; j < p->S; j++)
            row_key(p, kv, j, 1.0, r);
    } else {
        row_state_in(p, b, g, attn_ref_linear_decay_pow(p, g, (double)(i + 1)), r);
        for (int64_t j = 0; j <= i - p->shift; j++)
            row_key(p, kv, j, attn_ref_linear_decay_pow(p, g, (double)(i - p->shift - j)), r);
    }
    row_finish(p, r, out, cond);
}

/* The final state and z of (b, g) with their conditions: the initial state decayed over the S
 * positions plus every key that entered (j <= S-1-shift; all keys when not causal). */
static void final_state(const attn_linear_problem *p, lin_kv *kv, int64_t b, int64_t g,
                        attn_linear_ref_out *o)
{
    const int64_t last = p->causal ? p->S - 1 - p->shift : p->S - 1;
    const double w0 = p->causal ? attn_ref_linear_decay_pow(p, g, (double)p->S) : 1.0;
    for (int64_t j = 0; j <= last; j++)
        kv->wt[j] = attn_ref_linear_decay_pow(p, g, (double)(last - j));
    for (int64_t d = 0; d < p->Df; d++) {
        const int64_t zi = (b * p->Hkv + g) * p->Df + d;
        double z = w0 * attn_ref_linear_state_in(&p->z_in, b, g, d, 0), za = fabs(z);
        for (int64_t c = 0; c < p->Dv; c++) {
            double s = w0 * attn_ref_linear_state_in(&p->state_in, b, g, d, c), sa = fabs(s);
            for (int64_t j = 0; j <= last; j++) {
                s += kv->wt[j] * kv->k[j * p->Df + d] * kv->v[j * p->Dv + c];
                sa += kv->wt[j] * kv->kabs[j * p->Df + d] * fabs(kv->v[j * p->Dv + c]);
            }
            if (o->state)
                o->state[zi * p->Dv + c] = s;
            if (o->state_cond)
                o->state_cond[zi * p->Dv + c] = sa;
        }
        for (int64_t j = 0; j <= last; j++) {
            z += kv->wt[j] * kv->k[j * p->Df + d];
            za += kv->wt[j] * kv->kabs[j * p->Df + d];
        }
        if (o->z)
            o->z[zi] = z;
        if (o->z_cond)
            o->z_cond[zi] = za;
    }
}

static lin_row row_at(const attn_linear_problem *p, double *scratch, int t)
{
    lin_row r;
    r.f = scratch + (int64_t)t * (2 * p->Df + 2 * p->Dv + p->Dk);
    r.fabs = r.f + p->Df;
    r.num = r.fabs + p->Df;
    r.nabs = r.num + p->Dv;
    r.tmp = r.nabs + p->Dv;
    r.den = r.dabs = 0.0;
    return r;
}

static int n_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Every query row of the heads of KV head g, in parallel. */
static void group_rows(const attn_linear_problem *p, const lin_kv *kv, int64_t b, int64_t g,
                       double *scratch, attn_linear_ref_out *o)
{
    const int64_t rows = p->group * p->S;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 4) if (rows * p->S >= 4096)
#endif
    for (int64_t x = 0; x < rows; x++) {
        const int64_t h = g * p->group + x / p->S, i = x % p->S;
        const int64_t at = ((b * p->S + i) * p->Hq + h) * p->Dv;
        lin_row r = row_at(p, scratch, thread_id());
        query_row(p, kv, b, i, h, &r, o->out + at, o->out_cond ? o->out_cond + at : NULL);
    }
}

attn_status attn_ref_linear(const attn_linear_problem *p, attn_linear_ref_out *o)
{
    const int nt = n_threads();
    lin_kv kv = {attn_ref_alloc(p->S, p->Df), attn_ref_alloc(p->S, p->Df),
                 attn_ref_alloc(p->S, p->Dv), attn_ref_alloc(p->S, 1)};
    double *scratch = attn_ref_alloc(nt, 2 * p->Df + 2 * p->Dv + p->Dk);
    attn_status st = ATTN_OK;
    if (!kv.k || !kv.kabs || !kv.v || !kv.wt || !scratch)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate linear attention scratch");
    for (int64_t b = 0; st == ATTN_OK && b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++) {
            load_kv(p, b, g, scratch, &kv);
            group_rows(p, &kv, b, g, scratch, o);
            final_state(p, &kv, b, g, o);
        }
    free(kv.k);
    free(kv.kabs);
    free(kv.v);
    free(kv.wt);
    free(scratch);
    return st == ATTN_OK ? attn_ok() : st;
}
