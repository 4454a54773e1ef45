/* rattention_backward.c - the ground truth of RATTENTION's gradients: the chain rule through
 * the definition of rattention.c, one query row at a time, in f64. For row i of query head h
 * (KV head g), with a = o_swa and b = o_rla the branches before their norms and
 * r(x) = 1 / sqrt(mean(x^2) + eps):
 *
 *   out = a r(a) gamma_swa + b r(b) gamma_rla
 *   dgamma_swa += dO a r(a),   da = r(a) gamma_swa dO - a r(a)^3 (sum gamma_swa dO a) / Dv
 *   (the same for b and gamma_rla)
 *
 *   SWA, on the rotated q~ = RoPE(q_i, pos_i), k~_j = RoPE(k_j, pos_j), j in the window:
 *     dP_j = da . v_j,  D = sum_j P_j dP_j,  dS_j = P_j (dP_j - D)
 *     dq~ = scale sum_j dS_j k~_j,  dk~_j += scale dS_j q~,  dv_j += P_j da
 *     and back through the rotation (orthogonal): dq_i += RoPE(dq~, -pos_i), dk_j likewise
 *   RLA, b = phi(q_i) S0 + sum_{j <= i - w - 1} (phi(q_i) . phi(k_j)) v_j:
 *     dv_j += (phi(q_i) . phi(k_j)) db,  dphi(k_j) += (db . v_j) phi(q_i),
 *     dphi(q_i) = sum_j (db . v_j) phi(k_j) + S0 db,  dS0 += phi(q_i)^T db
 *     and back through the feature map: dq_i += J_phi(q_i)^T dphi(q_i), dk_j likewise.
 *
 * The final state S_T = S0 + sum_{j <= T-1-w-1} phi(k_j)^T v_j passes d_state_out back into
 * every key it holds and into S0. With w = -1 the SWA branch and its norm are absent (and
 * dgamma_swa is 0). Neither is computed from a saved output: this is the derivative of the
 * function. docs/ops/rattention.md, "Backward". */
#include "rattention_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"
#include "linear_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One (batch, KV head): its keys raw, rotated and mapped, values, initial state, and the keys'
 * and state's gradient accumulators; one row's vectors. */
typedef struct bw_ws {
    double *kraw, *krot, *fk, *v, *s0, *dkrot, *dfk, *ds0;
    double *q, *qrot, *fq, *P, *a, *b, *dout, *da, *db, *dqrot, *dfq, *tmp, *dx;
    float *gs, *gr;
} bw_ws;

static void load_row(const attn_operand *o, int64_t b, int64_t s, int64_t h, int64_t n,
                     double *y)
{
    for (int64_t d = 0; d < n; d++)
        y[d] = attn_load_f64(o->ptr, o->dtype, attn_at(o, b, s, h, d));
}

/* GroupRMSNorm's vector-Jacobian product: dx for y = x r(x) gamma (gamma NULL: 1), and the
 * gain's gradient added into dgamma (Dv values). */
static void norm_vjp(const attn_rattention_problem *p, const double *x, const float *gamma,
                     const double *dy, double *dx, double *dgamma)
{
    const int64_t n = p->Dv;
    double ss = 0.0, dot = 0.0;
    for (int64_t c = 0; c < n; c++)
        ss += x[c] * x[c];
    const double r = 1.0 / sqrt(ss / (double)n + p->eps);
    for (int64_t c = 0; c < n; c++) {
        const double gc = gamma ? (double)gamma[c] : 1.0;
        dot += gc * dy[c] * x[c];
        dgamma[c] += dy[c] * x[c] * r;
    }
    for (int64_t c = 0; c < n; c++) {
        const double gc = gamma ? (double)gamma[c] : 1.0;
        dx[c] = r * gc * dy[c] - x[c] * r * r * r * dot / (double)n;
    }
}

/* The window's probabilities P [n] (keys lo..) and a = sum P v. */
static void swa_forward(const attn_rattention_problem *p, bw_ws *w, int64_t lo, int64_t n)
{
    double m = -INFINITY, l = 0.0;
    for (int64_t x = 0; x < n; x++) {
        double acc = 0.0;
        for (int64_t d = 0; d < p->Dk; d++)
            acc += w->qrot[d] * w->krot[(lo + x) * p->Dk + d];
        w->P[x] = p->scale * acc;
        m = w->P[x] > m || isnan(w->P[x]) ? w->P[x] : m;
    }
    for (int64_t x = 0; x < n; x++) {
        w->P[x] = exp(w->P[x] - m);
        l += w->P[x];
    }
    memset(w->a, 0, sizeof(double) * (size_t)p->Dv);
    for (int64_t x = 0; x < n; x++) {
        w->P[x] /= l;
        for (int64_t c = 0; c < p->Dv; c++)
            w->a[c] += w->P[x] * w->v[(lo + x) * p->Dv + c];
    }
}

/* The window's softmax backward: dq~ (into dqrot), dk~ and dv of its keys. */
static void swa_backward(const attn_rattention_problem *p, bw_ws *w, int64_t lo, int64_t n,
                         double *dv)
{
    double D = 0.0;
    for (int64_t x = 0; x < n; x++) {
        double dp = 0.0;
        for (int64_t c = 0; c < p->Dv; c++)
            dp += w->da[c] * w->v[(lo + x) * p->Dv + c];
        D += w->P[x] * dp;
        w->dx[x] = dp; /* dP, kept for dS */
    }
    for (int64_t x = 0; x < n; x++) {
        const int64_t j = lo + x;
        const double ds = p->scale * w->P[x] * (w->dx[x] - D);
        for (int64_t d = 0; d < p->Dk; d++) {
            w->dqrot[d] += ds * w->krot[j * p->Dk + d];
            w->dkrot[j * p->Dk + d] += ds * w->qrot[d];
        }
        for (int64_t c = 0; c < p->Dv; c++)
            dv[(j * p->Hkv) * p->Dv + c] += w->P[x] * w->da[c];
    }
}

/* b = phi(q) S0 + sum over the keys the window has left behind row i. */
static void rla_forward(const attn_rattention_problem *p, bw_ws *w, int64_t i)
{
    for (int64_t c = 0; c < p->Dv; c++) {
        double acc = 0.0;
        for (int64_t f = 0; f < p->Df; f++)
            acc += w->fq[f] * w->s0[f * p->Dv + c];
        w->b[c] = acc;
    }
    for (int64_t j = 0; j <= i - p->shift; j++) {
        double s = 0.0;
        for (int64_t f = 0; f < p->Df; f++)
            s += w->fq[f] * w->fk[j * p->Df + f];
        for (int64_t c = 0; c < p->Dv; c++)
            w->b[c] += s * w->v[j * p->Dv + c];
    }
}

/* The residual branch's backward: dphi(q) (into dfq), dphi(k) and dv of its keys, dS0. */
static void rla_backward(const attn_rattention_problem *p, bw_ws *w, int64_t i, double *dv)
{
    for (int64_t f = 0; f < p->Df; f++) {
        double acc = 0.0;
        for (int64_t c = 0; c < p->Dv; c++) {
            acc += w->s0[f * p->Dv + c] * w->db[c];
            w->ds0[f * p->Dv + c] += w->fq[f] * w->db[c];
        }
        w->dfq[f] = acc;
    }
    for (int64_t j = 0; j <= i - p->shift; j++) {
        double s = 0.0, dw = 0.0;
        for (int64_t f = 0; f < p->Df; f++)
            s += w->fq[f] * w->fk[j * p->Df + f];
        for (int64_t c = 0; c < p->Dv; c++) {
            dw += w->db[c] * w->v[j * p->Dv + c];
            dv[(j * p->Hkv) * p->Dv + c] += s * w->db[c];
        }
        for (int64_t f = 0; f < p->Df; f++) {
            w->dfk[j * p->Df + f] += dw * w->fq[f];
            w->dfq[f] += dw * w->fk[j * p->Df + f];
        }
    }
}

/* Where a (batch, KV head) writes. */
typedef struct bw_dst {
    const attn_rattention_ref_grads *g;
    int64_t b, kvh;
} bw_dst;

/* Row i of query head h: both branches forward, then back. */
static void row(const attn_rattention_problem *p, bw_ws *w, const bw_dst *o, int64_t i,
                int64_t h)
{
    const int64_t b = o->b;
    double *dv = o->g->dv + ((b * p->S) * p->Hkv + o->kvh) * p->Dv; /* key j at j * Hkv rows */
    int64_t lo, hi;
    attn_rattention_swa_keys(p, i, &lo, &hi);
    load_row(&p->q, b, i, h, p->Dk, w->q);
    load_row(&p->dout, b, i, h, p->Dv, w->dout);
    attn_ref_rattention_rotate(p, ATTN_REF_F64, w->q, (double)(p->offset + i), w->qrot);
    attn_ref_linear_phi(p->feature, ATTN_REF_F64, w->q, p->Dk, w->fq);
    memset(w->dqrot, 0, sizeof(double) * (size_t)p->Dk);
    if (p->swa) {
        swa_forward(p, w, lo, hi - lo);
        norm_vjp(p, w->a, attn_ref_rattention_gamma(&p->gamma_swa, h, p->Dv, w->gs), w->dout,
                 w->da, o->g->dgamma_swa + h * p->Dv);
        swa_backward(p, w, lo, hi - lo, dv);
    }
    rla_forward(p, w, i);
    norm_vjp(p, w->b, attn_ref_rattention_gamma(&p->gamma_rla, h, p->Dv, w->gr), w->dout, w->db,
             o->g->dgamma_rla + h * p->Dv);
    rla_backward(p, w, i, dv);
    double *dq = o->g->dq + ((b * p->S + i) * p->Hq + h) * p->Dk;
    attn_ref_rattention_rotate(p, ATTN_REF_F64, w->dqrot, -(double)(p->offset + i), dq);
    attn_ref_linear_phi_vjp(p->feature, ATTN_REF_F64, w->q, p->Dk, w->dfq, 0, w->tmp, w->dx);
    for (int64_t d = 0; d < p->Dk; d++)
        dq[d] += w->dx[d];
}

/* The final state's gradient into S0 and the keys it holds. */
static void final_state(const attn_rattention_problem *p, bw_ws *w, const bw_dst *o)
{
    const attn_operand *G = &p->d_state_out;
    if (!G->t)
        return;
    double *dv = o->g->dv + ((o->b * p->S) * p->Hkv + o->kvh) * p->Dv;
    for (int64_t f = 0; f < p->Df; f++)
        for (int64_t c = 0; c < p->Dv; c++) {
            const double gfc = attn_load_f64(G->ptr, ATTN_F32, attn_at(G, o->b, o->kvh, f, c));
            w->ds0[f * p->Dv + c] += gfc;
            for (int64_t j = 0; j <= p->S - 1 - p->shift; j++) {
                w->dfk[j * p->Df + f] += gfc * w->v[j * p->Dv + c];
                dv[(j * p->Hkv) * p->Dv + c] += gfc * w->fk[j * p->Df + f];
            }
        }
}

static void load_group(const attn_rattention_problem *p, bw_ws *w, int64_t b, int64_t g)
{
    for (int64_t j = 0; j < p->S; j++) {
        load_row(&p->k, b, j, g, p->Dk, w->kraw + j * p->Dk);
        load_row(&p->v, b, j, g, p->Dv, w->v + j * p->Dv);
        attn_ref_rattention_rotate(p, ATTN_REF_F64, w->kraw + j * p->Dk,
                                   (double)(p->offset + j), w->krot + j * p->Dk);
        attn_ref_linear_phi(p->feature, ATTN_REF_F64, w->kraw + j * p->Dk, p->Dk,
                            w->fk + j * p->Df);
    }
    const attn_operand *s = &p->state_in;
    for (int64_t f = 0; f < p->Df; f++)
        for (int64_t c = 0; c < p->Dv; c++)
            w->s0[f * p->Dv + c] =
                s->t ? attn_load_f64(s->ptr, ATTN_F32, attn_at(s, b, g, f, c)) : 0.0;
    memset(w->dkrot, 0, sizeof(double) * (size_t)(p->S * p->Dk));
    memset(w->dfk, 0, sizeof(double) * (size_t)(p->S * p->Df));
    memset(w->ds0, 0, sizeof(double) * (size_t)(p->Df * p->Dv));
}

/* dk_j = RoPE(dk~_j, -pos_j) + J_phi(k_j)^T dphi(k_j); the state's gradient. */
static void finish_group(const attn_rattention_problem *p, bw_ws *w, const bw_dst *o)
{
    for (int64_t j = 0; j < p->S; j++) {
        double *dk = o->g->dk + ((o->b * p->S + j) * p->Hkv + o->kvh) * p->Dk;
        attn_ref_rattention_rotate(p, ATTN_REF_F64, w->dkrot + j * p->Dk,
                                   -(double)(p->offset + j), dk);
        attn_ref_linear_phi_vjp(p->feature, ATTN_REF_F64, w->kraw + j * p->Dk, p->Dk,
                                w->dfk + j * p->Df, 0, w->tmp, w->dx);
        for (int64_t d = 0; d < p->Dk; d++)
            dk[d] += w->dx[d];
    }
    if (o->g->d_state_in)
        memcpy(o->g->d_state_in + (o->b * p->Hkv + o->kvh) * p->Df * p->Dv, w->ds0,
               sizeof(double) * (size_t)(p->Df * p->Dv));
}

/* Carve the scratch: per-group blocks, then the row vectors; NULL when it cannot be had. */
static double *ws_alloc(const attn_rattention_problem *p, bw_ws *w)
{
    const int64_t S = p->S > 0 ? p->S : 1, Dk = p->Dk, Df = p->Df, Dv = p->Dv;
    const int64_t n[] = {S * Dk, S * Dk, S * Df, S * Dv, Df * Dv, S * Dk, S * Df, Df * Dv,
                         Dk,     Dk,     Df,     S,      Dv,      Dv,     Dv,     Dv,
                         Dv,     Dk,     Df,     Dk,     S + Dk};
    double **parts[] = {&w->kraw, &w->krot, &w->fk,   &w->v,    &w->s0,   &w->dkrot, &w->dfk,
                        &w->ds0,  &w->q,    &w->qrot, &w->fq,   &w->P,    &w->a,     &w->b,
                        &w->dout, &w->da,   &w->db,   &w->dqrot, &w->dfq, &w->tmp,   &w->dx};
    int64_t total = 0;
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++)
        total += n[i];
    double *m = attn_ref_alloc(total, 1);
    w->gs = malloc(sizeof(float) * (size_t)Dv);
    w->gr = malloc(sizeof(float) * (size_t)Dv);
    if (!m || !w->gs || !w->gr) {
        free(m);
        free(w->gs);
        free(w->gr);
        return NULL;
    }
    double *at = m;
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
        *parts[i] = at;
        at += n[i];
    }
    return m;
}

attn_status attn_ref_rattention_backward(const attn_rattention_problem *p,
                                         const attn_rattention_ref_grads *g)
{
    bw_ws w;
    double *m = ws_alloc(p, &w);
    if (!m)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "reference: cannot allocate the rattention "
                         "backward's scratch for %lld tokens", (long long)p->S);
    const int64_t kv = p->B * p->S * p->Hkv;
    memset(g->dk, 0, sizeof(double) * (size_t)(kv * p->Dk));
    memset(g->dv, 0, sizeof(double) * (size_t)(kv * p->Dv));
    memset(g->dgamma_swa, 0, sizeof(double) * (size_t)(p->Hq * p->Dv));
    memset(g->dgamma_rla, 0, sizeof(double) * (size_t)(p->Hq * p->Dv));
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t kvh = 0; kvh < p->Hkv; kvh++) {
            const bw_dst o = {g, b, kvh};
            load_group(p, &w, b, kvh);
            for (int64_t h = kvh * p->group; h < (kvh + 1) * p->group; h++)
                for (int64_t i = 0; i < p->S; i++)
                    row(p, &w, &o, i, h);
            final_state(p, &w, &o);
            finish_group(p, &w, &o);
        }
    free(m);
    free(w.gs);
    free(w.gr);
    return attn_ok();
}
