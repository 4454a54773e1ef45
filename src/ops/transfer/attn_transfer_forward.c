/* attn_transfer_forward.c - the transfer model's forward: the batch check, the tape, the shared
 * embedding, the source heads, the combined classifier (attention through attn_sdpa_forward_ex,
 * the uniform average, or the target classifier alone), the target logits and the loss; and
 * predict, which runs the same on a tape of its own. */
#include "attn_transfer_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_model_dense.h"
#include "attn_model_saliency.h" /* attn_model_reserved_zero */
#include "attn_view.h"           /* ATTN_TRY */

const float attn_transfer_zero = 0.0f;

/* ---- checks ------------------------------------------------------------------------------- */

/* Rows of examples the tape holds at most: keeps every buffer size below 2^40 floats. */
static int64_t max_rows(const attn_transfer_config *c)
{
    const int64_t per_row = c->features + c->embed * 2 + c->sources * (c->attn_hidden + 4) + 5;
    return ((int64_t)1 << 40) / per_row;
}

static attn_status check_features(const char *fn, const char *name, int64_t n, int64_t F,
                                  const float *x)
{
    for (int64_t i = 0; i < n * F; i++)
        if (!isfinite(x[i]))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "%s: %s[%lld, %lld] = %g is not finite", fn, name,
                             (long long)(i / F), (long long)(i % F), (double)x[i]);
    return ATTN_OK;
}

static attn_status check_labels(const char *fn, const char *name, int64_t n, int64_t K,
                                const uint8_t *y)
{
    for (int64_t i = 0; i < n * K; i++)
        if (y[i] > 1) {
            char at[48];
            if (K == 1)
                snprintf(at, sizeof at, "%lld", (long long)i);
            else
                snprintf(at, sizeof at, "%lld, %lld", (long long)(i / K), (long long)(i % K));
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: %s[%s] = %d is not 0 or 1", fn,
                             name, at, (int)y[i]);
        }
    return ATTN_OK;
}

static attn_status check_count(const char *fn, const char *name, int64_t n, int64_t lo,
                               const attn_transfer_config *c)
{
    if (n < lo || n > max_rows(c))
        return attn_fail(n < lo ? ATTN_ERR_SHAPE : ATTN_ERR_OVERFLOW,
                         "%s: %s = %lld must be in [%lld, %lld]", fn, name, (long long)n,
                         (long long)lo, (long long)max_rows(c));
    return ATTN_OK;
}

static attn_status check_batch(const attn_transfer *t, const attn_transfer_batch *b,
                               const attn_transfer_outputs *outs)
{
    static const char fn[] = "attn_transfer_forward";
    const attn_transfer_config *c = &t->cfg;
    if (!attn_model_reserved_zero(b->reserved, 3))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: batch reserved fields must be zero", fn);
    if (b->source_only > 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: source_only = %llu must be 0 or 1", fn,
                         (unsigned long long)b->source_only);
    if (outs && !attn_model_reserved_zero(outs->reserved, 4))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: outputs reserved fields must be zero",
                         fn);
    ATTN_TRY(check_count(fn, "n_target", b->n_target, 1, c));
    ATTN_TRY(check_count(fn, "n_source", b->n_source, 0, c));
    if (!b->x_target || !b->y_target)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: NULL %s", fn,
                         !b->x_target ? "x_target" : "y_target");
    if (b->n_source > 0 && (!b->x_source || !b->y_source))
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: NULL %s with n_source = %lld", fn,
                         !b->x_source ? "x_source" : "y_source", (long long)b->n_source);
    ATTN_TRY(check_features(fn, "x_target", b->n_target, c->features, b->x_target));
    ATTN_TRY(check_labels(fn, "y_target", b->n_target, 1, b->y_target));
    if (b->n_source > 0) {
        ATTN_TRY(check_features(fn, "x_source", b->n_source, c->features, b->x_source));
        ATTN_TRY(check_labels(fn, "y_source", b->n_source, c->sources, b->y_source));
    }
    return ATTN_OK;
}

/* ---- the tape ----------------------------------------------------------------------------- */

/* Carves the tape's buffers for nt, ns out of `arena` (NULL: only counts); returns floats. */
static size_t carve(const attn_transfer_config *c, attn_transfer_tape *tp, float *arena,
                    int64_t nt, int64_t ns, int64_t R)
{
    const int64_t F = c->features, m = c->embed, K = c->sources;
    const int64_t h = attn_transfer_has_mlp(c) ? c->attn_hidden : 0;
    size_t off = 0;
#define TAKE(field, n)                                                                           \
    do {                                                                                         \
        if (arena)                                                                               \
            tp->field = arena + off;                                                             \
        off += (size_t)(n);                                                                      \
    } while (0)
    TAKE(xt, nt * F);
    TAKE(xs, ns * F);
    TAKE(et, nt * m);
    TAKE(es, ns * m);
    TAKE(zt, nt);
    TAKE(zs, ns * K);
    TAKE(vals, K * (m + 1));
    TAKE(q, m);
    TAKE(zeros, h);
    TAKE(ukey, K * h);
    TAKE(uquery, R * h);
    TAKE(hid, R * K * h);
    TAKE(score, R * K);
    TAKE(qnorm, attn_transfer_has_cosine(c) ? R : 0);
    TAKE(knorm, attn_transfer_has_cosine(c) ? K : 0);
    TAKE(out, R * (m + 1));
    TAKE(lse, R);
    TAKE(alpha, R * K);
    TAKE(comb, R * (m + 1));
#undef TAKE
    return off;
}

attn_status attn_transfer_tape_reserve(const attn_transfer_config *c, attn_transfer_tape *tp,
                                       int64_t nt, int64_t ns)
{
    const int64_t R = attn_transfer_rows(c, nt);
    const size_t need = carve(c, tp, NULL, nt, ns, R);
    const size_t labels = (size_t)(nt + ns * c->sources);
    if (need > tp->cap_floats) {
        float *a = realloc(tp->arena, need * sizeof(float));
        if (!a)
            return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "transfer: out of memory for %zu "
                             "activations", need);
        tp->arena = a;
        tp->cap_floats = need;
    }
    if (labels > tp->cap_labels) {
        uint8_t *y = realloc(tp->yt, labels);
        if (!y)
            return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "transfer: out of memory for labels");
        tp->yt = y;
        tp->cap_labels = labels;
    }
    carve(c, tp, tp->arena, nt, ns, R);
    tp->ys = tp->yt + nt;
    tp->nt = 0; /* the buffers are being rewritten: no valid forward until run succeeds */
    return ATTN_OK;
}

void attn_transfer_tape_free(attn_transfer_tape *tp)
{
    free(tp->arena);
    free(tp->yt);
    memset(tp, 0, sizeof *tp);
}

/* ---- the pieces of the forward ------------------------------------------------------------- */

float attn_transfer_act_grad(attn_transfer_act act, float e)
{
    switch (act) {
    case ATTN_TRANSFER_ACT_RELU:
        return e > 0.0f ? 1.0f : 0.0f;
    case ATTN_TRANSFER_ACT_TANH:
        return 1.0f - e * e;
    default:
        return 1.0f;
    }
}

/* e = act(x W_c^T + b_c) for n rows. */
static void embed(const attn_transfer *t, int64_t n, const float *x, float *e)
{
    const attn_transfer_config *c = &t->cfg;
    if (n == 0)
        return;
    attn_model_linear(n, c->features, c->embed, x, t->w.Wc, t->w.bc, e);
    for (int64_t i = 0; c->act != ATTN_TRANSFER_ACT_NONE && i < n * c->embed; i++)
        e[i] = c->act == ATTN_TRANSFER_ACT_RELU ? (e[i] > 0.0f ? e[i] : 0.0f) : tanhf(e[i]);
}

void attn_transfer_views_make(const attn_transfer *t, const attn_transfer_tape *tp,
                              attn_transfer_views *vw)
{
    const int64_t R = tp->rows, K = t->cfg.sources, m = t->cfg.embed, dv = m + 1;
    const int mlp = attn_transfer_host_score(&t->cfg);
    /* One query row per batch entry; every batch entry sees the same K keys and values
     * (batch stride 0), so sdpa's key_score is the attention of that row alone. */
    vw->v = (attn_tensor){.data = tp->vals, .dtype = ATTN_F32, .shape = {R, K, 1, dv},
                          .stride = {0, dv, dv, 1}};
    vw->out = attn_tensor_bshd(tp->out, ATTN_F32, R, 1, 1, dv);
    vw->lse = attn_tensor_bshd(tp->lse, ATTN_F32, R, 1, 1, 1);
    vw->desc = attn_sdpa_desc_default();
    if (mlp) {
        /* The mlp and cosine scores enter as the additive mask; query and keys are one shared
         * zero of width 1, so the logit is exactly 0 + s_i and nothing else depends on them. */
        float *zero = (float *)&attn_transfer_zero;
        vw->q = (attn_tensor){.data = zero, .dtype = ATTN_F32, .shape = {R, 1, 1, 1}};
        vw->k = (attn_tensor){.data = zero, .dtype = ATTN_F32, .shape = {R, K, 1, 1}};
        vw->mask = (attn_tensor){.data = tp->score, .dtype = ATTN_F32, .shape = {R, 1, 1, K},
                                 .stride = {K, K, K, 1}};
        vw->desc.scale = 1.0f;
        vw->desc.mask_add = &vw->mask;
    } else {
        /* Dot score: the keys are the w_i columns of the values, scale 1/sqrt(m). */
        vw->q = attn_tensor_bshd((void *)attn_transfer_query_rows(t, tp), ATTN_F32, R, 1, 1, m);
        vw->k = (attn_tensor){.data = tp->vals, .dtype = ATTN_F32, .shape = {R, K, 1, m},
                              .stride = {0, dv, dv, 1}};
        vw->mask = (attn_tensor){0};
    }
}

/* s[r, i] = v . tanh(W_a w_i + W_q q_r + b_q), keeping the tanh for the backward. */
static void mlp_score(const attn_transfer *t, attn_transfer_tape *tp)
{
    const int64_t R = tp->rows, K = t->cfg.sources, m = t->cfg.embed, h = t->cfg.attn_hidden;
    memset(tp->zeros, 0, (size_t)h * sizeof(float));
    attn_model_linear(K, m, h, t->w.Ws, t->w.Wa, tp->zeros, tp->ukey);
    attn_model_linear(R, m, h, attn_transfer_query_rows(t, tp), t->w.Wq, t->w.bq, tp->uquery);
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < K; i++) {
            float *hd = tp->hid + (r * K + i) * h;
            double s = 0.0;
            for (int64_t j = 0; j < h; j++) {
                hd[j] = tanhf(tp->ukey[i * h + j] + tp->uquery[r * h + j]);
                s += (double)t->w.v[j] * hd[j];
            }
            tp->score[r * K + i] = (float)s;
        }
}

/* sqrt(|v|^2 + eps) of v [m]. */
static double norm_eps(const float *v, int64_t m)
{
    double s = ATTN_TRANSFER_NORM_EPS;
    for (int64_t j = 0; j < m; j++)
        s += (double)v[j] * v[j];
    return sqrt(s);
}

/* s[r, i] = tau q_r . w_i / (|q_r| |w_i|), keeping the norms for the backward. */
static void cosine_score(const attn_transfer *t, attn_transfer_tape *tp)
{
    const int64_t R = tp->rows, K = t->cfg.sources, m = t->cfg.embed;
    const float *q = attn_transfer_query_rows(t, tp);
    const double tau = attn_transfer_tau(t);
    for (int64_t i = 0; i < K; i++)
        tp->knorm[i] = (float)norm_eps(t->w.Ws + i * m, m);
    for (int64_t r = 0; r < R; r++) {
        tp->qnorm[r] = (float)norm_eps(q + r * m, m);
        for (int64_t i = 0; i < K; i++) {
            double d = 0.0;
            for (int64_t j = 0; j < m; j++)
                d += (double)q[r * m + j] * t->w.Ws[i * m + j];
            tp->score[r * K + i] = (float)(tau * d / ((double)tp->qnorm[r] * tp->knorm[i]));
        }
    }
}

/* alpha and out = sum_i alpha_i [w_i, b_i] through sdpa (ATTENTION mode). */
static attn_status attend(attn_transfer *t, attn_transfer_tape *tp)
{
    const int64_t R = tp->rows, K = t->cfg.sources;
    if (t->cfg.query == ATTN_TRANSFER_QUERY_ATTRIBUTE)
        memcpy(tp->q, t->w.wt, (size_t)t->cfg.embed * sizeof(float));
    if (attn_transfer_has_mlp(&t->cfg))
        mlp_score(t, tp);
    else if (attn_transfer_has_cosine(&t->cfg))
        cosine_score(t, tp);
    attn_transfer_views vw;
    attn_transfer_views_make(t, tp, &vw);
    const attn_tensor ks = attn_tensor_bshd(tp->alpha, ATTN_F32, R, K, 1, 1);
    const attn_sdpa_outputs so = {.out = &vw.out, .lse = &vw.lse, .key_score = &ks};
    return attn_sdpa_forward_ex(t->be, &vw.desc, &vw.q, &vw.k, &vw.v, &so);
}

/* The combined classifier rows comb [R, m + 1] = sum_i alpha_i [w_i, b_i] (+ [w_t, b_t]). */
static attn_status combine(attn_transfer *t, attn_transfer_tape *tp)
{
    const attn_transfer_config *c = &t->cfg;
    const int64_t R = tp->rows, K = c->sources, m = c->embed, dv = m + 1;
    for (int64_t i = 0; i < K; i++) {
        memcpy(tp->vals + i * dv, t->w.Ws + i * m, (size_t)m * sizeof(float));
        tp->vals[i * dv + m] = t->w.bs[i];
    }
    if (c->mode == ATTN_TRANSFER_ATTENTION) {
        ATTN_TRY(attend(t, tp));
    } else {
        const float a = c->mode == ATTN_TRANSFER_UNIFORM ? 1.0f / (float)K : 0.0f;
        for (int64_t i = 0; i < K; i++)
            tp->alpha[i] = a;
        for (int64_t j = 0; j < dv; j++) {
            double s = 0.0;
            for (int64_t i = 0; i < K; i++)
                s += tp->vals[i * dv + j];
            tp->out[j] = (float)(s * a);
        }
    }
    const int add = attn_transfer_adds_target(c);
    for (int64_t r = 0; r < R; r++) {
        float *cb = tp->comb + r * dv;
        const float *o = tp->out + r * dv;
        for (int64_t j = 0; j < m; j++)
            cb[j] = o[j] + (add ? t->w.wt[j] : 0.0f);
        cb[m] = o[m] + (add ? t->w.bt[0] : 0.0f);
    }
    return ATTN_OK;
}

/* softplus(z) - y z: BCE with logits, stable for any z. */
static double bce_logit(float z, uint8_t y)
{
    return fmax(z, 0.0) + log1p(exp(-fabs((double)z))) - (y ? z : 0.0);
}

static void loss(const attn_transfer *t, attn_transfer_tape *tp)
{
    const int64_t K = t->cfg.sources;
    double lt = 0.0, ls = 0.0;
    for (int64_t n = 0; n < tp->nt; n++)
        lt += bce_logit(tp->zt[n], tp->yt[n]);
    for (int64_t i = 0; i < tp->ns * K; i++)
        ls += bce_logit(tp->zs[i], tp->ys[i]);
    tp->loss_t = lt / (double)tp->nt;
    tp->loss_s = tp->ns > 0 ? ls / (double)(tp->ns * K) : 0.0;
    double pen = 0.0;
    for (int64_t j = 0; j < t->cfg.embed; j++)
        pen += (double)t->w.wt[j] * t->w.wt[j];
    tp->loss = (tp->source_only ? 0.0 : tp->loss_t) + t->cfg.source_weight * tp->loss_s +
               0.5 * t->cfg.target_decay * pen;
}

attn_status attn_transfer_run(attn_transfer *t, attn_transfer_tape *tp, int64_t nt,
                              const float *xt, const uint8_t *yt, int64_t ns, const float *xs,
                              const uint8_t *ys)
{
    const attn_transfer_config *c = &t->cfg;
    const int64_t F = c->features, m = c->embed, K = c->sources;
    ATTN_TRY(attn_transfer_tape_reserve(c, tp, nt, ns));
    tp->rows = attn_transfer_rows(c, nt);
    memcpy(tp->xt, xt, (size_t)(nt * F) * sizeof(float));
    if (ns > 0)
        memcpy(tp->xs, xs, (size_t)(ns * F) * sizeof(float));
    embed(t, nt, tp->xt, tp->et);
    embed(t, ns, tp->xs, tp->es);
    if (ns > 0)
        attn_model_linear(ns, m, K, tp->es, t->w.Ws, t->w.bs, tp->zs);
    ATTN_TRY(combine(t, tp));
    for (int64_t n = 0; n < nt; n++) {
        const float *cb = tp->comb + (tp->rows > 1 ? n : 0) * (m + 1), *e = tp->et + n * m;
        double z = cb[m];
        for (int64_t j = 0; j < m; j++)
            z += (double)e[j] * cb[j];
        tp->zt[n] = (float)z;
    }
    tp->ns = ns;
    tp->nt = nt;
    if (yt) {
        memcpy(tp->yt, yt, (size_t)nt);
        if (ns > 0)
            memcpy(tp->ys, ys, (size_t)(ns * K));
        loss(t, tp);
    }
    return ATTN_OK;
}

static float sigmoid(float z)
{
    return (float)(1.0 / (1.0 + exp(-(double)z)));
}

/* ---- the public calls ---------------------------------------------------------------------- */

attn_status attn_transfer_forward(attn_transfer *t, const attn_transfer_batch *b,
                                  const attn_transfer_outputs *outs)
{
    if (!t || !b)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_transfer_forward: NULL %s",
                         !t ? "model" : "batch");
    ATTN_TRY(check_batch(t, b, outs));
    attn_transfer_tape *tp = &t->tape;
    tp->source_only = (int)b->source_only;
    ATTN_TRY(attn_transfer_run(t, tp, b->n_target, b->x_target, b->y_target, b->n_source,
                               b->x_source, b->y_source));
    if (!outs)
        return attn_ok();
    const int64_t K = t->cfg.sources;
    for (int64_t n = 0; outs->prob && n < tp->nt; n++)
        outs->prob[n] = sigmoid(tp->zt[n]);
    for (int64_t i = 0; outs->source_prob && i < tp->ns * K; i++)
        outs->source_prob[i] = sigmoid(tp->zs[i]);
    if (outs->alpha)
        memcpy(outs->alpha, tp->alpha, (size_t)(tp->rows * K) * sizeof(float));
    if (outs->loss)
        *outs->loss = tp->loss;
    if (outs->loss_parts) {
        outs->loss_parts[0] = tp->loss_t;
        outs->loss_parts[1] = tp->loss_s;
    }
    return attn_ok();
}

attn_status attn_transfer_predict(attn_transfer *t, int64_t n, const float *x, float *prob,
                                  float *alpha)
{
    static const char fn[] = "attn_transfer_predict";
    if (!t || !x || !prob)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: NULL %s", fn,
                         !t ? "model" : !x ? "x" : "prob");
    ATTN_TRY(check_count(fn, "n", n, 1, &t->cfg));
    ATTN_TRY(check_features(fn, "x", n, t->cfg.features, x));
    attn_transfer_tape tp = {0};
    attn_status st = attn_transfer_run(t, &tp, n, x, NULL, 0, NULL, NULL);
    if (st == ATTN_OK) {
        for (int64_t i = 0; i < n; i++)
            prob[i] = sigmoid(tp.zt[i]);
        if (alpha)
            memcpy(alpha, tp.alpha, (size_t)(tp.rows * t->cfg.sources) * sizeof(float));
        st = attn_ok();
    }
    attn_transfer_tape_free(&tp);
    return st;
}
