/* attn_transfer_backward.c - the transfer model's backward: from the mean BCE of the last
 * forward through the target logits, the combined classifier (attn_sdpa_backward for the
 * attention, its dmask_add for the mlp and cosine scores), the source heads and the shared
 * embedding, into every parameter's grad, with the penalty on w_t; config.detach stops the
 * target loss's gradient at the source classifiers (and the embedding). Host loops run in a
 * fixed order: the result is deterministic. */
#include "attn_transfer_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_model_dense.h"
#include "attn_view.h" /* ATTN_TRY */

/* Gradient buffers of one backward, carved from one allocation. */
typedef struct grads {
    float *dzt, *dzs;      /* d loss / d logits [Nt], [Ns, K] */
    float *det, *des;      /* d loss / d embeddings [Nt, m], [Ns, m] */
    float *dcomb;          /* d loss / d [w*, b*] [R, m + 1] */
    float *dq, *dk, *dv;   /* sdpa's [R, Dk], [R, K, Dk], [R, K, m + 1] */
    float *dscore;         /* sdpa's dmask_add [R, K] (mlp) */
    float *dukey, *duq;    /* d / d (W_a w_i) [K, h] and d / d (W_q q_r + b_q) [R, h] (mlp) */
    float *dnobias;        /* [h]: where attn_model_linear_dw sums W_a's absent bias */
    float *block;
} grads;

static attn_status grads_alloc(const attn_transfer *t, grads *g)
{
    const attn_transfer_tape *tp = &t->tape;
    const int64_t nt = tp->nt, ns = tp->ns, R = tp->rows;
    const int64_t K = t->cfg.sources, m = t->cfg.embed, dv = m + 1;
    const int mlp = attn_transfer_host_score(&t->cfg);
    const int64_t dk = mlp ? 1 : m, h = attn_transfer_has_mlp(&t->cfg) ? t->cfg.attn_hidden : 0;
    const int64_t sizes[10] = {nt,         ns * K,     nt * m, ns * m, R * dv,
                               R * dk,     R * K * dk, R * K * dv,
                               R * K,      (K + R + 1) * h};
    size_t total = 0;
    for (int i = 0; i < 10; i++)
        total += (size_t)sizes[i];
    g->block = calloc(total, sizeof(float));
    if (!g->block)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_transfer_backward: out of memory");
    float **dst[10] = {&g->dzt, &g->dzs, &g->det,    &g->des, &g->dcomb,
                       &g->dq,  &g->dk,  &g->dv,     &g->dscore, &g->dukey};
    float *p = g->block;
    for (int i = 0; i < 10; i++) {
        *dst[i] = p;
        p += sizes[i];
    }
    g->duq = g->dukey + K * h;
    g->dnobias = g->duq + R * h;
    return ATTN_OK;
}

/* d mean BCE / d z = (sigmoid(z) - y) / count, times the term's weight. */
static void dlogits(int64_t n, const float *z, const uint8_t *y, double w, float *dz)
{
    for (int64_t i = 0; i < n; i++)
        dz[i] = (float)(w * (1.0 / (1.0 + exp(-(double)z[i])) - y[i]) / (double)n);
}

/* z_t[n] = e_t[n] . w*_r + b*_r: into det and dcomb. */
static void target_head(const attn_transfer *t, grads *g)
{
    const attn_transfer_tape *tp = &t->tape;
    const int64_t m = t->cfg.embed, dv = m + 1;
    for (int64_t n = 0; n < tp->nt; n++) {
        const int64_t r = tp->rows > 1 ? n : 0;
        const float *cb = tp->comb + r * dv, *e = tp->et + n * m;
        float *dc = g->dcomb + r * dv, *de = g->det + n * m;
        for (int64_t j = 0; j < m; j++) {
            de[j] = g->dzt[n] * cb[j];
            dc[j] += g->dzt[n] * e[j];
        }
        dc[m] += g->dzt[n];
    }
}

/* The rows of dcomb summed into the [w, b] pair dw [m], db [1], times `scale`. */
static void add_rows(const attn_transfer *t, const float *rows, int64_t R, float scale,
                     float *dw, float *db)
{
    const int64_t m = t->cfg.embed, dv = m + 1;
    for (int64_t r = 0; r < R; r++) {
        for (int64_t j = 0; j < m; j++)
            dw[j] += scale * rows[r * dv + j];
        db[0] += scale * rows[r * dv + m];
    }
}

/* The mlp score's backward from ds = dscore [R, K]: v, W_a, W_q, b_q, the keys w_i and the
 * query (w_t or the target embeddings). */
static void mlp_backward(attn_transfer *t, grads *g)
{
    const attn_transfer_tape *tp = &t->tape;
    const int64_t R = tp->rows, K = t->cfg.sources, m = t->cfg.embed, h = t->cfg.attn_hidden;
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < K; i++) {
            const float ds = g->dscore[r * K + i], *hd = tp->hid + (r * K + i) * h;
            for (int64_t j = 0; j < h; j++) {
                const float du = ds * t->w.v[j] * (1.0f - hd[j] * hd[j]);
                t->g.v[j] += ds * hd[j];
                g->dukey[i * h + j] += du;
                g->duq[r * h + j] += du;
            }
        }
    attn_model_linear_dw(K, m, h, g->dukey, t->w.Ws, t->g.Wa, g->dnobias);
    if (attn_transfer_target_trains_heads(&t->cfg))
        attn_model_linear_dx(K, m, h, g->dukey, t->w.Wa, 1.0f, t->g.Ws);
    attn_model_linear_dw(R, m, h, g->duq, attn_transfer_query_rows(t, tp), t->g.Wq, t->g.bq);
    float *dquery = t->cfg.query == ATTN_TRANSFER_QUERY_EXAMPLE ? g->det : t->g.wt;
    attn_model_linear_dx(R, m, h, g->duq, t->w.Wq, 1.0f, dquery);
}

/* The cosine score's backward from ds = dscore [R, K]: with c = q . w / (|q| |w|),
 * dc/dq = w / (|q| |w|) - c q / |q|^2 (and symmetrically for w_i); tau's own gradient is
 * sum ds c, times tau for rho = log tau. */
static void cosine_backward(attn_transfer *t, grads *g)
{
    const attn_transfer_tape *tp = &t->tape;
    const int64_t R = tp->rows, K = t->cfg.sources, m = t->cfg.embed;
    const float *q = attn_transfer_query_rows(t, tp);
    float *dquery = t->cfg.query == ATTN_TRANSFER_QUERY_EXAMPLE ? g->det : t->g.wt;
    const int heads = attn_transfer_target_trains_heads(&t->cfg);
    const double tau = attn_transfer_tau(t);
    double dtau = 0.0;
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < K; i++) {
            const float *qr = q + r * m, *wi = t->w.Ws + i * m;
            const double qn = tp->qnorm[r], kn = tp->knorm[i], ds = g->dscore[r * K + i];
            double d = 0.0;
            for (int64_t j = 0; j < m; j++)
                d += (double)qr[j] * wi[j];
            const double c = d / (qn * kn), a = tau * ds;
            dtau += ds * c;
            for (int64_t j = 0; j < m; j++) {
                dquery[r * m + j] += (float)(a * (wi[j] / (qn * kn) - c * qr[j] / (qn * qn)));
                if (heads)
                    t->g.Ws[i * m + j] += (float)(a * (qr[j] / (qn * kn) - c * wi[j] / (kn * kn)));
            }
        }
    if (attn_transfer_learns_temperature(&t->cfg))
        t->g.rho[0] += (float)(dtau * tau);
}

/* The attention's backward through sdpa into g's own buffers: d values, and d keys and d query
 * for the dot score or the logit's gradient (dmask_add) for the mlp and cosine scores. Runs
 * before any parameter gradient is touched, so a backend failure leaves them as they were. */
static attn_status attention_sdpa(attn_transfer *t, grads *g)
{
    const attn_transfer_tape *tp = &t->tape;
    const int64_t R = tp->rows, K = t->cfg.sources, dv = t->cfg.embed + 1;
    const int mlp = attn_transfer_host_score(&t->cfg);
    const int64_t dk = mlp ? 1 : t->cfg.embed;
    attn_transfer_views vw;
    attn_transfer_views_make(t, tp, &vw);
    const attn_tensor dout = attn_tensor_bshd(g->dcomb, ATTN_F32, R, 1, 1, dv);
    const attn_tensor tdq = attn_tensor_bshd(g->dq, ATTN_F32, R, 1, 1, dk);
    const attn_tensor tdk = attn_tensor_bshd(g->dk, ATTN_F32, R, K, 1, dk);
    const attn_tensor tdv = attn_tensor_bshd(g->dv, ATTN_F32, R, K, 1, dv);
    const attn_tensor tds = attn_tensor_bshd(g->dscore, ATTN_F32, R, 1, 1, K);
    const attn_sdpa_grads sg = {.dq = &tdq, .dk = &tdk, .dv = &tdv,
                                .dmask_add = mlp ? &tds : NULL};
    return attn_sdpa_backward(t->be, &vw.desc, &vw.q, &vw.k, &vw.v, &vw.out, &vw.lse, &dout,
                              &sg);
}

/* sdpa's gradients into the parameters. The batch entries share keys and values, so their
 * gradients sum over the rows; the mlp score's zero query and keys get none. */
static void attention_accumulate(attn_transfer *t, grads *g)
{
    const attn_transfer_tape *tp = &t->tape;
    const int64_t R = tp->rows, K = t->cfg.sources, m = t->cfg.embed, dv = m + 1;
    const int heads = attn_transfer_target_trains_heads(&t->cfg);
    for (int64_t r = 0; heads && r < R; r++)
        for (int64_t i = 0; i < K; i++) {
            const float *d = g->dv + (r * K + i) * dv;
            for (int64_t j = 0; j < m; j++)
                t->g.Ws[i * m + j] += d[j];
            t->g.bs[i] += d[m];
        }
    if (attn_transfer_has_mlp(&t->cfg)) {
        mlp_backward(t, g);
        return;
    }
    if (attn_transfer_has_cosine(&t->cfg)) {
        cosine_backward(t, g);
        return;
    }
    for (int64_t r = 0; heads && r < R; r++)
        for (int64_t x = 0; x < K * m; x++)
            t->g.Ws[x] += g->dk[r * K * m + x];
    if (t->cfg.query == ATTN_TRANSFER_QUERY_EXAMPLE)
        for (int64_t x = 0; x < R * m; x++)
            g->det[x] += g->dq[x];
    else
        for (int64_t j = 0; j < m; j++)
            t->g.wt[j] += g->dq[j];
}

/* e = act(x W_c^T + b_c): de becomes d pre-activation in place, then W_c and b_c. */
static void embed_backward(attn_transfer *t, int64_t n, const float *x, const float *e,
                           float *de)
{
    const int64_t F = t->cfg.features, m = t->cfg.embed;
    if (n == 0)
        return;
    for (int64_t i = 0; i < n * m; i++)
        de[i] *= attn_transfer_act_grad(t->cfg.act, e[i]);
    attn_model_linear_dw(n, F, m, de, x, t->g.Wc, t->g.bc);
}

attn_status attn_transfer_backward(attn_transfer *t)
{
    if (!t)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_transfer_backward: NULL model");
    const attn_transfer_tape *tp = &t->tape;
    if (tp->nt == 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "attn_transfer_backward: no successful forward to go back through");
    const attn_transfer_config *c = &t->cfg;
    const int64_t K = c->sources, m = c->embed;
    grads g;
    ATTN_TRY(grads_alloc(t, &g));
    dlogits(tp->nt, tp->zt, tp->yt, tp->source_only ? 0.0 : 1.0, g.dzt);
    dlogits(tp->ns * K, tp->zs, tp->ys, c->source_weight, g.dzs);
    target_head(t, &g);
    if (c->mode == ATTN_TRANSFER_ATTENTION) {
        const attn_status st = attention_sdpa(t, &g);
        if (st != ATTN_OK) {
            free(g.block);
            return st;
        }
        attention_accumulate(t, &g);
    }
    if (c->mode == ATTN_TRANSFER_UNIFORM && attn_transfer_target_trains_heads(c))
        for (int64_t i = 0; i < K; i++)
            add_rows(t, g.dcomb, 1, 1.0f / (float)K, t->g.Ws + i * m, t->g.bs + i);
    if (attn_transfer_adds_target(c))
        add_rows(t, g.dcomb, tp->rows, 1.0f, t->g.wt, t->g.bt);
    for (int64_t j = 0; c->target_decay > 0 && j < m; j++)
        t->g.wt[j] += (float)(c->target_decay * t->w.wt[j]);
    if (tp->ns > 0) {
        attn_model_linear_dw(tp->ns, m, K, g.dzs, tp->es, t->g.Ws, t->g.bs);
        attn_model_linear_dx(tp->ns, m, K, g.dzs, t->w.Ws, 0.0f, g.des);
    }
    if (attn_transfer_target_trains_embed(c))
        embed_backward(t, tp->nt, tp->xt, tp->et, g.det);
    embed_backward(t, tp->ns, tp->xs, tp->es, g.des);
    free(g.block);
    return attn_ok();
}
