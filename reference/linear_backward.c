/* linear_backward.c - the ground truth of linear attention's gradients: the chain rule through
 * the quadratic definition of linear.c, one query row at a time over every key it sees, f64 (or
 * every intermediate rounded to float). For query i of head h (KV head g), f = scale phi(q_i),
 * the visible keys j with weights w_j = lambda^e_j (f . phi(k_j)) (e_j = i - shift - j, causal;
 * 0 otherwise) and the initial state's weight c = lambda^(i+1) (causal; 1 otherwise):
 *
 *   num = c f S0 + sum_j w_j v_j,   den = c f . z0 + sum_j w_j + eps,   out = num / den
 *   dnum = dO / den,                dden = -(dO . out) / den      (no normaliser: dO, 0)
 *   dw_j = dnum . v_j + dden        gradient of the weight of key j
 *   dv_j      += w_j dnum
 *   dphi(k_j) += lambda^e_j dw_j f
 *   df        += sum_j lambda^e_j dw_j phi(k_j) + c (S0 dnum + z0 dden)
 *   dS0 += c f^T dnum,  dz0 += c f dden
 *   dq_i = scale J_phi(q_i)^T df,  dk_j = J_phi(k_j)^T dphi(k_j)
 *
 * The final state S_T = lambda^T S0 + sum_j lambda^(T-1-shift-j) phi(k_j)^T v_j (z_T likewise)
 * passes its gradient (d_state_out, d_z_out) back the same way. dk, dv and the initial state's
 * gradients of a KV head sum over its query heads. The magnitudes (conformance condition
 * scales) run the same sums over |terms|. docs/ops/linear.md, "Backward". */
#include "linear_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Inputs of one (batch, KV head) as f64 and the per-key accumulators: raw k [S][Dk], phi(k)
 * [S][Df], v [S][Dv], dphi(k) [S][Df] (and magnitudes); one row's f, q, dO, num, dnum, df;
 * S0 [Df][Dv], z0 [Df]. */
typedef struct lb_ws {
    double *kraw, *kf, *v, *dkf, *dkf_m;
    double *qraw, *f, *dout, *num, *dnum, *df, *df_m, *tmp;
    double *s0, *z0;
} lb_ws;

/* Where one (batch, KV head) writes: its rows of the dense gradients. */
typedef struct lb_dst {
    const attn_linear_ref_grads *g;
    int64_t b, kvh;
} lb_dst;

static double *kv_row(const attn_linear_problem *p, double *base, const lb_dst *d, int64_t j,
                      int64_t D)
{
    return base ? base + ((d->b * p->S + j) * p->Hkv + d->kvh) * D : NULL;
}

static double *state_at(const attn_linear_problem *p, double *base, const lb_dst *d, int64_t D)
{
    return base ? base + (d->b * p->Hkv + d->kvh) * p->Df * D : NULL;
}

static void load_head(const attn_linear_problem *p, attn_ref_precision prec, int64_t b,
                      int64_t g, lb_ws *w)
{
    for (int64_t j = 0; j < p->S; j++) {
        for (int64_t d = 0; d < p->Dk; d++)
            w->kraw[j * p->Dk + d] = attn_load_f64(p->k.ptr, p->k.dtype, attn_at(&p->k, b, j, g, d));
        attn_ref_linear_phi(p->feature, prec, w->kraw + j * p->Dk, p->Dk, w->kf + j * p->Df);
    }
    attn_ref_linear_load_v(p, b, g, w->v);
    for (int64_t d = 0; d < p->Df; d++) {
        for (int64_t c = 0; c < p->Dv; c++)
            w->s0[d * p->Dv + c] = attn_ref_linear_state_in(&p->state_in, b, g, d, c);
        w->z0[d] = attn_ref_linear_state_in(&p->z_in, b, g, d, 0);
    }
    memset(w->dkf, 0, sizeof(double) * (size_t)(p->S * p->Df));
    memset(w->dkf_m, 0, sizeof(double) * (size_t)(p->S * p->Df));
}

/* Weight lambda^e of key j for row i (causal), or 1; -1 when j is not visible. */
static double key_weight(const attn_linear_problem *p, int64_t g, int64_t i, int64_t j)
{
    if (!p->causal)
        return 1.0;
    return j <= i - p->shift ? attn_ref_linear_decay_pow(p, g, (double)(i - p->shift - j)) : -1.0;
}

/* num, den and out of row i (the forward of linear.c), then dnum and dden. */
static void row_forward(const attn_linear_problem *p, attn_ref_precision prec, int64_t g,
                        int64_t i, double c, lb_ws *w, double *dden, double *dden_m,
                        double *dnum_m)
{
    double den = 0.0;
    for (int64_t x = 0; x < p->Dv; x++)
        w->num[x] = 0.0;
    for (int64_t d = 0; d < p->Df; d++) {
        for (int64_t x = 0; x < p->Dv; x++)
            w->num[x] = rnd(prec, w->num[x] + rnd(prec, c * rnd(prec, w->f[d] * w->s0[d * p->Dv + x])));
        den = rnd(prec, den + rnd(prec, c * rnd(prec, w->f[d] * w->z0[d])));
    }
    for (int64_t j = 0; j < p->S; j++) {
        const double lw = key_weight(p, g, i, j);
        if (lw < 0)
            continue;
        double a = 0.0;
        for (int64_t d = 0; d < p->Df; d++)
            a = rnd(prec, a + rnd(prec, w->f[d] * w->kf[j * p->Df + d]));
        const double wt = rnd(prec, lw * a);
        for (int64_t x = 0; x < p->Dv; x++)
            w->num[x] = rnd(prec, w->num[x] + rnd(prec, wt * w->v[j * p->Dv + x]));
        den = rnd(prec, den + wt);
    }
    den = rnd(prec, den + p->eps);
    double dot = 0.0, dot_m = 0.0;
    for (int64_t x = 0; x < p->Dv; x++) {
        const double out = p->normalize ? rnd(prec, w->num[x] / den) : w->num[x];
        dot = rnd(prec, dot + rnd(prec, w->dout[x] * out));
        dot_m += fabs(w->dout[x] * out);
        w->dnum[x] = p->normalize ? rnd(prec, w->dout[x] / den) : w->dout[x];
        dnum_m[x] = fabs(w->dnum[x]);
    }
    *dden = p->normalize ? rnd(prec, -dot / den) : 0.0;
    *dden_m = p->normalize ? dot_m / fabs(den) : 0.0;
}

/* Key j's terms of row i: dv_j, dphi(k_j), df (weight lw = lambda^e). */
static void row_key(const attn_linear_problem *p, attn_ref_precision prec, const lb_dst *dst,
                    int64_t j, double lw, double dden, double dden_m, const double *dnum_m,
                    lb_ws *w)
{
    const double *kf = w->kf + j * p->Df, *v = w->v + j * p->Dv;
    double a = 0.0, a_m = 0.0, dw = dden, dw_m = dden_m;
    for (int64_t d = 0; d < p->Df; d++) {
        a = rnd(prec, a + rnd(prec, w->f[d] * kf[d]));
        a_m += fabs(w->f[d] * kf[d]);
    }
    for (int64_t x = 0; x < p->Dv; x++) {
        dw = rnd(prec, dw + rnd(prec, w->dnum[x] * v[x]));
        dw_m += dnum_m[x] * fabs(v[x]);
    }
    double *dv = kv_row(p, dst->g->dv, dst, j, p->Dv), *dv_m = kv_row(p, dst->g->dv_mag, dst, j, p->Dv);
    const double wt = rnd(prec, lw * a);
    for (int64_t x = 0; x < p->Dv; x++) {
        dv[x] = rnd(prec, dv[x] + rnd(prec, wt * w->dnum[x]));
        if (dv_m)
            dv_m[x] += lw * a_m * dnum_m[x];
    }
    const double da = rnd(prec, lw * dw), da_m = lw * dw_m;
    for (int64_t d = 0; d < p->Df; d++) {
        w->dkf[j * p->Df + d] = rnd(prec, w->dkf[j * p->Df + d] + rnd(prec, da * w->f[d]));
        w->dkf_m[j * p->Df + d] += da_m * fabs(w->f[d]);
        w->df[d] = rnd(prec, w->df[d] + rnd(prec, da * kf[d]));
        w->df_m[d] += da_m * fabs(kf[d]);
    }
}

/* The initial state's terms of row i (weight c): df, dS0, dz0. */
static void row_state(const attn_linear_problem *p, attn_ref_precision prec, const lb_dst *dst,
                      double c, double dden, double dden_m, const double *dnum_m, lb_ws *w)
{
    const attn_linear_ref_grads *g = dst->g;
    double *ds = state_at(p, g->d_state_in, dst, p->Dv), *dz = state_at(p, g->d_z_in, dst, 1);
    double *ds_m = state_at(p, g->d_state_in_mag, dst, p->Dv);
    double *dz_m = state_at(p, g->d_z_in_mag, dst, 1);
    for (int64_t d = 0; d < p->Df; d++) {
        double acc = rnd(prec, w->z0[d] * dden), acc_m = fabs(w->z0[d]) * dden_m;
        for (int64_t x = 0; x < p->Dv; x++) {
            acc = rnd(prec, acc + rnd(prec, w->s0[d * p->Dv + x] * w->dnum[x]));
            acc_m += fabs(w->s0[d * p->Dv + x]) * dnum_m[x];
            if (ds)
                ds[d * p->Dv + x] = rnd(prec, ds[d * p->Dv + x] + rnd(prec, c * rnd(prec, w->f[d] * w->dnum[x])));
            if (ds_m)
                ds_m[d * p->Dv + x] += c * fabs(w->f[d]) * dnum_m[x];
        }
        w->df[d] = rnd(prec, w->df[d] + rnd(prec, c * acc));
        w->df_m[d] += c * acc_m;
        if (dz)
            dz[d] = rnd(prec, dz[d] + rnd(prec, c * rnd(prec, w->f[d] * dden)));
        if (dz_m)
            dz_m[d] += c * fabs(w->f[d]) * dden_m;
    }
}

/* One query row (b, i, h): its dq, and its terms of every key's and the state's gradients. */
static void row_backward(const attn_linear_problem *p, attn_ref_precision prec,
                         const lb_dst *dst, int64_t i, int64_t h, lb_ws *w, double *dnum_m)
{
    const int64_t b = dst->b, g = dst->kvh;
    for (int64_t d = 0; d < p->Dk; d++)
        w->qraw[d] = attn_load_f64(p->q.ptr, p->q.dtype, attn_at(&p->q, b, i, h, d));
    attn_ref_linear_phi(p->feature, prec, w->qraw, p->Dk, w->f);
    for (int64_t d = 0; d < p->Df; d++) {
        w->f[d] = rnd(prec, rnd(prec, p->scale) * w->f[d]);
        w->df[d] = w->df_m[d] = 0.0;
    }
    for (int64_t x = 0; x < p->Dv; x++)
        w->dout[x] = attn_load_f64(p->dout.ptr, p->dout.dtype, attn_at(&p->dout, b, i, h, x));
    const double c = p->causal ? attn_ref_linear_decay_pow(p, g, (double)(i + 1)) : 1.0;
    double dden, dden_m;
    row_forward(p, prec, g, i, c, w, &dden, &dden_m, dnum_m);
    for (int64_t j = 0; j < p->S; j++) {
        const double lw = key_weight(p, g, i, j);
        if (lw >= 0)
            row_key(p, prec, dst, j, lw, dden, dden_m, dnum_m, w);
    }
    row_state(p, prec, dst, c, dden, dden_m, dnum_m, w);
    /* dq = scale J^T df */
    const int64_t at = ((b * p->S + i) * p->Hq + h) * p->Dk;
    for (int64_t d = 0; d < p->Df; d++) {
        w->df[d] = rnd(prec, rnd(prec, p->scale) * w->df[d]);
        w->df_m[d] *= fabs(p->scale);
    }
    attn_ref_linear_phi_vjp(p->feature, prec, w->qraw, p->Dk, w->df, 0, w->tmp,
                            dst->g->dq + at);
    if (dst->g->dq_mag)
        attn_ref_linear_phi_vjp(p->feature, prec, w->qraw, p->Dk, w->df_m, 1, w->tmp,
                                dst->g->dq_mag + at);
}

/* The final state's gradient (d_state_out, d_z_out) into every key it holds and S0, z0. */
static void final_state(const attn_linear_problem *p, attn_ref_precision prec,
                        const lb_dst *dst, lb_ws *w)
{
    const int64_t b = dst->b, g = dst->kvh, T = p->S;
    const attn_operand *os = &p->d_state_out, *oz = &p->d_z_out;
    if (!os->t && !oz->t)
        return;
    /* the final state's gradient as a pseudo-row: dnum <- dS_T, dden <- dz_T, f <- phi(k) */
    for (int64_t j = 0; j < T; j++) {
        const double lw = p->causal ? (j <= T - 1 - p->shift ?
                                        attn_ref_linear_decay_pow(p, g, (double)(T - 1 - p->shift - j)) : -1.0)
                                    : 1.0;
        if (lw < 0)
            continue;
        const double *kf = w->kf + j * p->Df, *v = w->v + j * p->Dv;
        double *dv = kv_row(p, dst->g->dv, dst, j, p->Dv), *dv_m = kv_row(p, dst->g->dv_mag, dst, j, p->Dv);
        for (int64_t d = 0; d < p->Df; d++) {
            double acc = oz->t ? attn_load_f64(oz->ptr, ATTN_F32, attn_at(oz, b, g, d, 0)) : 0.0;
            double acc_m = fabs(acc);
            for (int64_t x = 0; x < p->Dv && os->t; x++) {
                const double gs = attn_load_f64(os->ptr, ATTN_F32, attn_at(os, b, g, d, x));
                acc = rnd(prec, acc + rnd(prec, gs * v[x]));
                acc_m += fabs(gs * v[x]);
                dv[x] = rnd(prec, dv[x] + rnd(prec, lw * rnd(prec, gs * kf[d])));
                if (dv_m)
                    dv_m[x] += lw * fabs(gs * kf[d]);
            }
            w->dkf[j * p->Df + d] = rnd(prec, w->dkf[j * p->Df + d] + rnd(prec, lw * acc));
            w->dkf_m[j * p->Df + d] += lw * acc_m;
        }
    }
    /* S0 (z0) reaches the final state with weight lambda^T: the gradient passes straight on */
    const double c = p->causal ? attn_ref_linear_decay_pow(p, g, (double)T) : 1.0;
    const attn_linear_ref_grads *o = dst->g;
    double *ds = state_at(p, o->d_state_in, dst, p->Dv), *dz = state_at(p, o->d_z_in, dst, 1);
    double *ds_m = state_at(p, o->d_state_in_mag, dst, p->Dv);
    double *dz_m = state_at(p, o->d_z_in_mag, dst, 1);
    for (int64_t d = 0; d < p->Df; d++) {
        for (int64_t x = 0; os->t && x < p->Dv; x++) {
            const double gs = attn_load_f64(os->ptr, ATTN_F32, attn_at(os, b, g, d, x));
            if (ds)
                ds[d * p->Dv + x] = rnd(prec, ds[d * p->Dv + x] + rnd(prec, c * gs));
            if (ds_m)
                ds_m[d * p->Dv + x] += c * fabs(gs);
        }
        if (oz->t) {
            const double gz = attn_load_f64(oz->ptr, ATTN_F32, attn_at(oz, b, g, d, 0));
            if (dz)
                dz[d] = rnd(prec, dz[d] + rnd(prec, c * gz));
            if (dz_m)
                dz_m[d] += c * fabs(gz);
        }
    }
}

/* dk_j = J_phi(k_j)^T dphi(k_j) for every key of the head. */
static void keys_vjp(const attn_linear_problem *p, attn_ref_precision prec, const lb_dst *dst,
                     lb_ws *w)
{
    for (int64_t j = 0; j < p->S; j++) {
        attn_ref_linear_phi_vjp(p->feature, prec, w->kraw + j * p->Dk, p->Dk,
                                w->dkf + j * p->Df, 0, w->tmp,
                                kv_row(p, dst->g->dk, dst, j, p->Dk));
        if (dst->g->dk_mag)
            attn_ref_linear_phi_vjp(p->feature, prec, w->kraw + j * p->Dk, p->Dk,
                                    w->dkf_m + j * p->Df, 1, w->tmp,
                                    kv_row(p, dst->g->dk_mag, dst, j, p->Dk));
    }
}

static void zero(double *a, int64_t n)
{
    if (a)
        memset(a, 0, sizeof(double) * (size_t)(n > 0 ? n : 0));
}

/* Scratch doubles of one head: the blocks of lb_ws, then dnum's magnitudes. */
static int64_t ws_doubles(const attn_linear_problem *p)
{
    return p->S * (p->Dk + 3 * p->Df + p->Dv) + 2 * p->Dk + 4 * p->Df + 4 * p->Dv +
           p->Df * p->Dv;
}

static double *ws_carve(const attn_linear_problem *p, double *m, lb_ws *w)
{
    double **parts[] = {&w->kraw, &w->kf,  &w->v,   &w->dkf, &w->dkf_m, &w->qraw, &w->f,
                        &w->dout, &w->num, &w->dnum, &w->df, &w->df_m, &w->tmp,  &w->s0,
                        &w->z0};
    const int64_t n[] = {p->S * p->Dk, p->S * p->Df, p->S * p->Dv, p->S * p->Df, p->S * p->Df,
                         p->Dk,        p->Df,        p->Dv,        p->Dv,        p->Dv,
                         p->Df,        p->Df,        p->Dk,        p->Df * p->Dv, p->Df};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
        *parts[i] = m;
        m += n[i];
    }
    return m; /* dnum's magnitudes: Dv */
}

attn_status attn_ref_linear_backward(const attn_linear_problem *p, attn_ref_precision prec,
                                     const attn_linear_ref_grads *g)
{
    double *m = attn_ref_alloc(ws_doubles(p), 1);
    if (!m)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate the linear backward's "
                         "scratch (%.3g doubles)", (double)ws_doubles(p));
    lb_ws w;
    double *dnum_m = ws_carve(p, m, &w);
    const int64_t kv = p->B * p->S * p->Hkv, st = p->B * p->Hkv * p->Df;
    zero(g->dk, kv * p->Dk);
    zero(g->dv, kv * p->Dv);
    zero(g->dk_mag, kv * p->Dk);
    zero(g->dv_mag, kv * p->Dv);
    zero(g->d_state_in, st * p->Dv);
    zero(g->d_z_in, st);
    zero(g->d_state_in_mag, st * p->Dv);
    zero(g->d_z_in_mag, st);
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t kvh = 0; kvh < p->Hkv; kvh++) {
            const lb_dst dst = {g, b, kvh};
            load_head(p, prec, b, kvh, &w);
            for (int64_t h = kvh * p->group; h < (kvh + 1) * p->group; h++)
                for (int64_t i = 0; i < p->S; i++)
                    row_backward(p, prec, &dst, i, h, &w, dnum_m);
            final_state(p, prec, &dst, &w);
            keys_vjp(p, prec, &dst, &w);
        }
    free(m);
    return attn_ok();
}
