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
 * function. The magnitudes (the conformance bounds' condition scales) run the same backward a
 * second time on the inputs' absolute values with every difference turned into a sum (the
 * probabilities, feature maps and norms' scales those of the true inputs); a rotation back
 * mixes each pair of features, so its magnitude is the pair's sum. docs/ops/rattention.md,
 * "Backward". */
#include "rattention_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"
#include "linear_ref.h"
#include "rope_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rope_ref.h"

/* One side of the backward: the values, or their magnitudes. The inputs it reads (rotated
 * keys, values, initial state, the row's rotated query and dO, the final state's gradient as
 * signed or absolute values), its accumulators and its outputs. */
typedef struct bw_side {
    int mag;
    double *krot, *v, *s0, *qrot, *dout;                /* inputs ([S][Dk], [S][Dv], ...) */
    double *dkrot, *dfk, *ds0;                          /* per (batch, KV head) */
    double *da, *db, *dqrot, *dfq, *dp;                 /* per row */
    double *dq, *dk, *dv, *dgamma_swa, *dgamma_rla, *d_state_in; /* outputs (dense f64) */
} bw_side;

/* One (batch, KV head): what both sides share (raw keys, feature maps, the row's raw query,
 * features, probabilities, branch outputs and the gains) and the sides. */
typedef struct bw_ws {
    double *kraw, *fk, *q, *fq, *P, *a, *b, *tmp, *dx;
    float *gs, *gr;
    bw_side side[2];
} bw_ws;

static void load_row(const attn_operand *o, int64_t b, int64_t s, int64_t h, int64_t n,
                     double *y)
{
    for (int64_t d = 0; d < n; d++)
        y[d] = attn_load_f64(o->ptr, o->dtype, attn_at(o, b, s, h, d));
}

/* x - y, or with magnitudes x + y. */
static double diff(int mag, double x, double y)
{
    return mag ? x + y : x - y;
}

/* GroupRMSNorm's vector-Jacobian product for y = x r(x) gamma (gamma NULL: 1): dx, and the
 * gain's gradient added into dgamma. r comes from the true x; the magnitude side uses |x|,
 * |gamma| and its own (absolute) dy. */
static void norm_vjp(const attn_rattention_problem *p, int mag, const double *x,
                     const float *gamma, const double *dy, double *dx, double *dgamma)
{
    const int64_t n = p->Dv;
    double ss = 0.0, dot = 0.0;
    for (int64_t c = 0; c < n; c++)
        ss += x[c] * x[c];
    const double r = 1.0 / sqrt(ss / (double)n + p->eps);
    for (int64_t c = 0; c < n; c++) {
        const double gc = gamma ? (double)gamma[c] : 1.0, xc = mag ? fabs(x[c]) : x[c];
        dot += (mag ? fabs(gc) : gc) * dy[c] * xc;
        dgamma[c] += dy[c] * xc * r;
    }
    for (int64_t c = 0; c < n; c++) {
        const double gc = gamma ? (double)gamma[c] : 1.0, xc = mag ? fabs(x[c]) : x[c];
        dx[c] = diff(mag, r * (mag ? fabs(gc) : gc) * dy[c], xc * r * r * r * dot / (double)n);
    }
}

/* The window's probabilities P [n] (keys lo..) and a = sum P v, from the true values. */
static void swa_forward(const attn_rattention_problem *p, const bw_side *t, bw_ws *w,
                        int64_t lo, int64_t n)
{
    double m = -INFINITY, l = 0.0;
    for (int64_t x = 0; x < n; x++) {
        double acc = 0.0;
        for (int64_t d = 0; d < p->Dk; d++)
            acc += t->qrot[d] * t->krot[(lo + x) * p->Dk + d];
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
            w->a[c] += w->P[x] * t->v[(lo + x) * p->Dv + c];
    }
}

/* The window's softmax backward on one side: dq~ (dqrot), dk~ and dv of its keys. */
static void swa_backward(const attn_rattention_problem *p, const bw_ws *w, bw_side *t,
                         int64_t lo, int64_t n, double *dv)
{
    double D = 0.0;
    for (int64_t x = 0; x < n; x++) {
        double dp = 0.0;
        for (int64_t c = 0; c < p->Dv; c++)
            dp += t->da[c] * t->v[(lo + x) * p->Dv + c];
        D += w->P[x] * dp;
        t->dp[x] = dp;
    }
    const double scale = t->mag ? fabs(p->scale) : p->scale;
    for (int64_t x = 0; x < n; x++) {
        const int64_t j = lo + x;
        const double ds = scale * w->P[x] * diff(t->mag, t->dp[x], D);
        for (int64_t d = 0; d < p->Dk; d++) {
            t->dqrot[d] += ds * t->krot[j * p->Dk + d];
            t->dkrot[j * p->Dk + d] += ds * t->qrot[d];
        }
        for (int64_t c = 0; c < p->Dv; c++)
            dv[(j * p->Hkv) * p->Dv + c] += w->P[x] * t->da[c];
    }
}

/* b = phi(q) S0 + sum over the keys the window has left behind row i (true values). */
static void rla_forward(const attn_rattention_problem *p, const bw_side *t, bw_ws *w, int64_t i)
{
    for (int64_t c = 0; c < p->Dv; c++) {
        double acc = 0.0;
        for (int64_t f = 0; f < p->Df; f++)
            acc += w->fq[f] * t->s0[f * p->Dv + c];
        w->b[c] = acc;
    }
    for (int64_t j = 0; j <= i - p->shift; j++) {
        double s = 0.0;
        for (int64_t f = 0; f < p->Df; f++)
            s += w->fq[f] * w->fk[j * p->Df + f];
        for (int64_t c = 0; c < p->Dv; c++)
            w->b[c] += s * t->v[j * p->Dv + c];
    }
}

/* The residual branch's backward on one side: dphi(q) (dfq), dphi(k) and dv of its keys,
 * dS0. The paired maps are non-negative, so phi(q) . phi(k) is its own magnitude. */
static void rla_backward(const attn_rattention_problem *p, const bw_ws *w, bw_side *t, int64_t i,
                         double *dv)
{
    for (int64_t f = 0; f < p->Df; f++) {
        double acc = 0.0;
        for (int64_t c = 0; c < p->Dv; c++) {
            acc += t->s0[f * p->Dv + c] * t->db[c];
            t->ds0[f * p->Dv + c] += w->fq[f] * t->db[c];
        }
        t->dfq[f] = acc;
    }
    for (int64_t j = 0; j <= i - p->shift; j++) {
        double s = 0.0, dw = 0.0;
        for (int64_t f = 0; f < p->Df; f++)
            s += w->fq[f] * w->fk[j * p->Df + f];
        for (int64_t c = 0; c < p->Dv; c++) {
            dw += t->db[c] * t->v[j * p->Dv + c];
            dv[(j * p->Hkv) * p->Dv + c] += s * t->db[c];
        }
        for (int64_t f = 0; f < p->Df; f++) {
            t->dfk[j * p->Df + f] += dw * w->fq[f];
            t->dfq[f] += dw * w->fk[j * p->Df + f];
        }
    }
}

/* y = RoPE(x, -pos) (the rotation's transpose); on the magnitude side each pair's sum. */
static void rotate_back(const attn_rattention_problem *p, int mag, const double *x, double pos,
                        double *y)
{
    if (!mag) {
        attn_ref_rattention_rotate(p, ATTN_REF_F64, x, -pos, y);
        return;
    }
    for (int64_t i = 0; i < p->Dk / 2; i++) {
        int64_t a, c;
        attn_ref_rope_pair(p->rope, p->Dk, i, &a, &c);
        y[a] = y[c] = x[a] + x[c];
    }
}

/* Rows of the dense outputs: key j of (b, g) at dv + j * Hkv * Dv. */
static double *kv_base(const attn_rattention_problem *p, double *base, int64_t b, int64_t g,
                       int64_t D)
{
    return base + ((b * p->S) * p->Hkv + g) * D;
}

/* Row i of query head h on one side, after the shared forward of the row. */
static void row_side(const attn_rattention_problem *p, bw_ws *w, bw_side *t, int64_t b,
                     int64_t g, int64_t i, int64_t h)
{
    double *dv = kv_base(p, t->dv, b, g, p->Dv);
    int64_t lo, hi;
    attn_rattention_swa_keys(p, i, &lo, &hi);
    memset(t->dqrot, 0, sizeof(double) * (size_t)p->Dk);
    if (p->swa) {
        norm_vjp(p, t->mag, w->a, w->gs, t->dout, t->da, t->dgamma_swa + h * p->Dv);
        swa_backward(p, w, t, lo, hi - lo, dv);
    }
    norm_vjp(p, t->mag, w->b, w->gr, t->dout, t->db, t->dgamma_rla + h * p->Dv);
    rla_backward(p, w, t, i, dv);
    double *dq = t->dq + ((b * p->S + i) * p->Hq + h) * p->Dk;
    rotate_back(p, t->mag, t->dqrot, (double)(p->offset + i), dq);
    attn_ref_linear_phi_vjp(p->feature, ATTN_REF_F64, w->q, p->Dk, t->dfq, t->mag, w->tmp,
                            w->dx);
    for (int64_t d = 0; d < p->Dk; d++)
        dq[d] += w->dx[d];
}

/* Row i of query head h: the shared forward (from the value side's true inputs), then each
 * side's backward. */
static void row(const attn_rattention_problem *p, bw_ws *w, int nsides, int64_t b, int64_t g,
                int64_t i, int64_t h)
{
    bw_side *val = &w->side[0];
    int64_t lo, hi;
    attn_rattention_swa_keys(p, i, &lo, &hi);
    load_row(&p->q, b, i, h, p->Dk, w->q);
    load_row(&p->dout, b, i, h, p->Dv, val->dout);
    attn_ref_rattention_rotate(p, ATTN_REF_F64, w->q, (double)(p->offset + i), val->qrot);
    attn_ref_linear_phi(p->feature, ATTN_REF_F64, w->q, p->Dk, w->fq);
    attn_ref_rattention_gamma(&p->gamma_swa, h, p->Dv, w->gs);
    attn_ref_rattention_gamma(&p->gamma_rla, h, p->Dv, w->gr);
    if (!p->gamma_swa.t)
        for (int64_t c = 0; c < p->Dv; c++)
            w->gs[c] = 1.0f;
    if (!p->gamma_rla.t)
        for (int64_t c = 0; c < p->Dv; c++)
            w->gr[c] = 1.0f;
    if (p->swa)
        swa_forward(p, val, w, lo, hi - lo);
    rla_forward(p, val, w, i);
    if (nsides > 1) {
        bw_side *m = &w->side[1];
        for (int64_t d = 0; d < p->Dk; d++)
            m->qrot[d] = fabs(val->qrot[d]);
        for (int64_t c = 0; c < p->Dv; c++)
            m->dout[c] = fabs(val->dout[c]);
    }
    for (int s = 0; s < nsides; s++)
        row_side(p, w, &w->side[s], b, g, i, h);
}

/* The final state's gradient into S0 and the keys it holds, on one side. */
static void final_state(const attn_rattention_problem *p, const bw_ws *w, bw_side *t, int64_t b,
                        int64_t g)
{
    const attn_operand *G = &p->d_state_out;
    if (!G->t)
        return;
    double *dv = kv_base(p, t->dv, b, g, p->Dv);
    for (int64_t f = 0; f < p->Df; f++)
        for (int64_t c = 0; c < p->Dv; c++) {
            double gfc = attn_load_f64(G->ptr, ATTN_F32, attn_at(G, b, g, f, c));
            gfc = t->mag ? fabs(gfc) : gfc;
            t->ds0[f * p->Dv + c] += gfc;
            for (int64_t j = 0; j <= p->S - 1 - p->shift; j++) {
                t->dfk[j * p->Df + f] += gfc * t->v[j * p->Dv + c];
                dv[(j * p->Hkv) * p->Dv + c] += gfc * w->fk[j * p->Df + f];
            }
        }
}

/* Keys, values and the initial state of (b, g) on both sides; the accumulators cleared. */
static void load_group(const attn_rattention_problem *p, bw_ws *w, int nsides, int64_t b,
                       int64_t g)
{
    bw_side *val = &w->side[0];
    for (int64_t j = 0; j < p->S; j++) {
        load_row(&p->k, b, j, g, p->Dk, w->kraw + j * p->Dk);
        load_row(&p->v, b, j, g, p->Dv, val->v + j * p->Dv);
        attn_ref_rattention_rotate(p, ATTN_REF_F64, w->kraw + j * p->Dk,
                                   (double)(p->offset + j), val->krot + j * p->Dk);
        attn_ref_linear_phi(p->feature, ATTN_REF_F64, w->kraw + j * p->Dk, p->Dk,
                            w->fk + j * p->Df);
    }
    const attn_operand *s = &p->state_in;
    for (int64_t f = 0; f < p->Df; f++)
        for (int64_t c = 0; c < p->Dv; c++)
            val->s0[f * p->Dv + c] =
                s->t ? attn_load_f64(s->ptr, ATTN_F32, attn_at(s, b, g, f, c)) : 0.0;
    for (int x = 0; x < nsides; x++) {
        bw_side *t = &w->side[x];
        if (x > 0) {
            double *const src[] = {val->krot, val->v, val->s0}, *const dst[] = {t->krot, t->v, t->s0};
            const int64_t n[] = {p->S * p->Dk, p->S * p->Dv, p->Df * p->Dv};
            for (int a = 0; a < 3; a++)
                for (int64_t e = 0; e < n[a]; e++)
                    dst[a][e] = fabs(src[a][e]);
        }
        memset(t->dkrot, 0, sizeof(double) * (size_t)(p->S * p->Dk));
        memset(t->dfk, 0, sizeof(double) * (size_t)(p->S * p->Df));
        memset(t->ds0, 0, sizeof(double) * (size_t)(p->Df * p->Dv));
    }
}

/* dk_j = RoPE(dk~_j, -pos_j) + J_phi(k_j)^T dphi(k_j); the state's gradient (one side). */
static void finish_group(const attn_rattention_problem *p, bw_ws *w, bw_side *t, int64_t b,
                         int64_t g)
{
    for (int64_t j = 0; j < p->S; j++) {
        double *dk = kv_base(p, t->dk, b, g, p->Dk) + j * p->Hkv * p->Dk;
        rotate_back(p, t->mag, t->dkrot + j * p->Dk, (double)(p->offset + j), dk);
        attn_ref_linear_phi_vjp(p->feature, ATTN_REF_F64, w->kraw + j * p->Dk, p->Dk,
                                t->dfk + j * p->Df, t->mag, w->tmp, w->dx);
        for (int64_t d = 0; d < p->Dk; d++)
            dk[d] += w->dx[d];
    }
    if (t->d_state_in)
        memcpy(t->d_state_in + (b * p->Hkv + g) * p->Df * p->Dv, t->ds0,
               sizeof(double) * (size_t)(p->Df * p->Dv));
}

/* Carve n doubles per part from m (advanced). */
static void carve(double **m, double **const *parts, const int64_t *n, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        *parts[i] = *m;
        *m += n[i];
    }
}

/* Doubles of the shared part and of one side. */
static void ws_sizes(const attn_rattention_problem *p, int64_t *shared, int64_t *side)
{
    const int64_t S = p->S > 0 ? p->S : 1;
    *shared = S * p->Dk + S * p->Df + p->Dk + p->Df + S + 2 * p->Dv + 2 * p->Dk;
    *side = 2 * S * p->Dk + S * p->Dv + 2 * p->Df * p->Dv + S * p->Df + 2 * p->Dk + 3 * p->Dv +
            p->Df + S;
}

static double *ws_alloc(const attn_rattention_problem *p, int nsides, bw_ws *w)
{
    const int64_t S = p->S > 0 ? p->S : 1, Dk = p->Dk, Df = p->Df, Dv = p->Dv;
    int64_t shared, side;
    ws_sizes(p, &shared, &side);
    double *m = attn_ref_alloc(shared + nsides * side, 1);
    w->gs = malloc(sizeof(float) * (size_t)Dv);
    w->gr = malloc(sizeof(float) * (size_t)Dv);
    if (!m || !w->gs || !w->gr) {
        free(m);
        free(w->gs);
        free(w->gr);
        return NULL;
    }
    double *at = m;
    double **const sh[] = {&w->kraw, &w->fk, &w->q, &w->fq, &w->P, &w->a, &w->b, &w->tmp, &w->dx};
    const int64_t nsh[] = {S * Dk, S * Df, Dk, Df, S, Dv, Dv, Dk, Dk};
    carve(&at, sh, nsh, sizeof nsh / sizeof nsh[0]);
    for (int x = 0; x < nsides; x++) {
        bw_side *t = &w->side[x];
        double **const sd[] = {&t->krot, &t->dkrot, &t->v,    &t->s0,    &t->ds0,  &t->dfk,
                               &t->qrot, &t->dqrot, &t->dout, &t->da,    &t->db,   &t->dfq,
                               &t->dp};
        const int64_t nsd[] = {S * Dk, S * Dk, S * Dv, Df * Dv, Df * Dv, S * Df, Dk,
                               Dk,     Dv,     Dv,     Dv,      Df,      S};
        carve(&at, sd, nsd, sizeof nsd / sizeof nsd[0]);
        t->mag = x;
    }
    return m;
}

/* Point a side's outputs at the grads struct's arrays (values or magnitudes). */
static void side_outputs(bw_side *t, const attn_rattention_ref_grads *g)
{
    if (!t->mag) {
        t->dq = g->dq, t->dk = g->dk, t->dv = g->dv;
        t->dgamma_swa = g->dgamma_swa, t->dgamma_rla = g->dgamma_rla;
        t->d_state_in = g->d_state_in;
    } else {
        t->dq = g->dq_mag, t->dk = g->dk_mag, t->dv = g->dv_mag;
        t->dgamma_swa = g->dgamma_swa_mag, t->dgamma_rla = g->dgamma_rla_mag;
        t->d_state_in = g->d_state_in_mag;
    }
}

/* Zero a side's accumulated outputs. */
static void side_zero(const attn_rattention_problem *p, const bw_side *t)
{
    const int64_t kv = p->B * p->S * p->Hkv;
    memset(t->dk, 0, sizeof(double) * (size_t)(kv * p->Dk));
    memset(t->dv, 0, sizeof(double) * (size_t)(kv * p->Dv));
    memset(t->dgamma_swa, 0, sizeof(double) * (size_t)(p->Hq * p->Dv));
    memset(t->dgamma_rla, 0, sizeof(double) * (size_t)(p->Hq * p->Dv));
}

attn_status attn_ref_rattention_backward(const attn_rattention_problem *p,
                                         const attn_rattention_ref_grads *g)
{
    const int nsides = g->dq_mag ? 2 : 1;
    bw_ws w;
    double *m = ws_alloc(p, nsides, &w);
    if (!m)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "reference: cannot allocate the rattention "
                         "backward's scratch for %lld tokens", (long long)p->S);
    for (int x = 0; x < nsides; x++) {
        side_outputs(&w.side[x], g);
        side_zero(p, &w.side[x]);
    }
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t kvh = 0; kvh < p->Hkv; kvh++) {
            load_group(p, &w, nsides, b, kvh);
            for (int64_t h = kvh * p->group; h < (kvh + 1) * p->group; h++)
                for (int64_t i = 0; i < p->S; i++)
                    row(p, &w, nsides, b, kvh, i, h);
            for (int x = 0; x < nsides; x++) {
                final_state(p, &w, &w.side[x], b, kvh);
                finish_group(p, &w, &w.side[x], b, kvh);
            }
        }
    free(m);
    free(w.gs);
    free(w.gr);
    return attn_ok();
}
