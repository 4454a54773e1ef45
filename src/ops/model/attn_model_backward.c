/* attn_model_backward.c - reverse mode through the last forward: classifier and pooler, then
 * per layer (last first) LayerNorm2, the MLP with the erf GELU, LayerNorm1, the output
 * projection, the softmax attention through attn_sdpa_backward on the model's backend, the
 * q/k/v projections; finally the embedding LayerNorm and the three embedding tables (the
 * padding row of the word table gets no gradient, as nn.Embedding(padding_idx)). */
#include "attn_model_impl.h"

#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_model_dense.h"
#include "attn_model_saliency.h"

/* Scratch of one backward: the running gradient of the residual stream and the per-layer
 * temporaries. */
typedef struct grad_scratch {
    float *dx, *dctx;                /* [N, d] */
    float *dqkv;                     /* [N, 3d]: dq, dk, dv side by side, as the forward's */
    float *dI;                       /* [N, I] */
    float *head;                     /* [B, d] x 2 */
} grad_scratch;

/* The temporaries live on the tape and grow with it: no page faults on every step. */
static attn_status scratch_alloc(attn_model *m, grad_scratch *s)
{
    const int64_t B = m->tape.batch, N = B * m->tape.seq, d = m->cfg.hidden_size;
    const int64_t I = m->cfg.intermediate_size, need = 5 * N * d + N * I + 2 * B * d;
    if (need > m->tape.scratch_cap) {
        float *p = malloc((size_t)need * sizeof(float));
        if (!p)
            return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                             "model backward: out of memory (%lld tokens)", (long long)N);
        free(m->tape.scratch);
        m->tape.scratch = p;
        m->tape.scratch_cap = need;
    }
    float *p = m->tape.scratch;
    s->dx = p, p += N * d;
    s->dctx = p, p += N * d;
    s->dqkv = p, p += 3 * N * d;
    s->dI = p, p += N * I;
    s->head = p;
    return ATTN_OK;
}

/* Where layer l's parameter gradients go: nowhere (NULL views, which the dense backward
 * skips) when only the gradient of the input is wanted. */
static attn_model_layer_w *layer_grads(attn_model *m, int64_t l, attn_model_layer_w *none)
{
    return m->no_param_grad ? none : &m->g.layer[l];
}

/* From dlogits to the gradient of the last layer's output (only the [CLS] rows are nonzero). */
static void head_backward(attn_model *m, const float *dlogits, grad_scratch *s)
{
    const attn_model_tape *t = &m->tape;
    const int64_t B = t->batch, S = t->seq, d = m->cfg.hidden_size, C = m->cfg.num_labels;
    float *dp = s->head, *dcls = s->head + B * d;
    const int dw = !m->no_param_grad;
    if (dw)
        attn_model_linear_dw(B, d, C, dlogits, t->pooled, m->g.cls_w, m->g.cls_b);
    attn_model_linear_dx(B, d, C, dlogits, m->w.cls_w, 0.0f, dp);
    for (int64_t i = 0; i < B * d; i++) /* tanh', or DeepLIFT's multiplier in its place */
        dp[i] *= m->pool_slope ? m->pool_slope[i] : 1.0f - t->pooled[i] * t->pooled[i];
    if (dw)
        attn_model_linear_dw(B, d, d, dp, t->cls, m->g.pool_w, m->g.pool_b);
    attn_model_linear_dx(B, d, d, dp, m->w.pool_w, 0.0f, dcls);
    if (t->cls_only)
        return; /* the [CLS]-only last layer starts from dcls itself */
    memset(s->dx, 0, (size_t)(B * S * d) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        memcpy(s->dx + b * S * d, dcls + b * d, (size_t)d * sizeof(float));
}

/* The block after the attention, backwards, on R contiguous rows: dx holds the gradient of
 * the layer's output on entry and of r = x + ctx Wo^T + bo on return; s->dctx gets ctx's. */
static void block_backward(attn_model *m, int64_t l, int64_t R, float *dx, grad_scratch *s)
{
    const attn_model_config *c = &m->cfg;
    const attn_model_layer_w *w = &m->w.layer[l];
    attn_model_layer_w none = {0}, *g = layer_grads(m, l, &none);
    const attn_model_layer_tape *lt = &m->tape.layer[l];
    const int64_t d = c->hidden_size, I = c->intermediate_size;
    /* x' = LN2(h1 + m W2^T + b2): dx becomes the gradient of that sum. */
    attn_model_layernorm_bwd(R, d, dx, lt->xhat2, lt->rstd2, w->ln2_w, g->ln2_w, g->ln2_b, dx);
    attn_model_linear_dw(R, I, d, dx, lt->m, g->w2, g->b2);
    attn_model_linear_dx(R, I, d, dx, w->w2, 0.0f, s->dI);
    attn_model_gelu_bwd(R * I, lt->u, lt->cdf, s->dI, s->dI);
    attn_model_linear_dw(R, d, I, s->dI, lt->h1, g->w1, g->b1);
    attn_model_linear_dx(R, d, I, s->dI, w->w1, 1.0f, dx); /* dh1: residual + MLP */
    /* h1 = LN1(x + ctx Wo^T + bo). */
    attn_model_layernorm_bwd(R, d, dx, lt->xhat1, lt->rstd1, w->ln1_w, g->ln1_w, g->ln1_b, dx);
    attn_model_linear_dw(R, d, d, dx, lt->ctx, g->wo, g->bo);
    attn_model_linear_dx(R, d, d, dx, w->wo, 0.0f, s->dctx);
}

/* The softmax attention's backward on the forward's views; gv holds dq, dk, dv and dout. */
static attn_status attention_backward(attn_model *m, const attn_model_attn_views *lv,
                                      const attn_model_attn_views *gv)
{
    const attn_sdpa_desc desc = attn_model_sdpa_desc(m, &lv->mask);
    const attn_sdpa_grads grads = {.dq = &gv->q, .dk = &gv->k, .dv = &gv->v};
    const double t0 = attn_model_now();
    attn_status st = attn_sdpa_backward(m->be, &desc, &lv->q, &lv->k, &lv->v, &lv->ctx,
                                        &lv->lse, &gv->ctx, &grads);
    m->attn_seconds += attn_model_now() - t0;
    return st;
}

/* s->dx: the gradient of layer l's output on entry, of its input on return. */
static attn_status layer_backward(attn_model *m, int64_t l, grad_scratch *s)
{
    const attn_model_layer_w *w = &m->w.layer[l];
    attn_model_layer_w none = {0}, *g = layer_grads(m, l, &none);
    attn_model_layer_tape *lt = &m->tape.layer[l];
    const int64_t B = m->tape.batch, S = m->tape.seq, N = B * S, d = m->cfg.hidden_size;
    const int64_t H = m->cfg.num_heads, Dh = d / H;
    block_backward(m, l, N, s->dx, s);
    attn_model_attn_views lv;
    attn_model_views(m, lt, NULL, &lv);
    const attn_model_attn_views gv = {.q = attn_model_qkv_view(s->dqkv, B, S, H, Dh),
                                      .k = attn_model_qkv_view(s->dqkv + d, B, S, H, Dh),
                                      .v = attn_model_qkv_view(s->dqkv + 2 * d, B, S, H, Dh),
                                      .ctx = attn_tensor_bshd(s->dctx, ATTN_F32, B, S, H, Dh)};
    attn_status st = attention_backward(m, &lv, &gv);
    if (st != ATTN_OK)
        return st;
    /* The fused projection: [3d, d] weight, [3d] bias (g's layout is w's). */
    attn_model_linear_dw(N, d, 3 * d, s->dqkv, lt->x, g->wq, g->bq);
    attn_model_linear_dx(N, d, 3 * d, s->dqkv, w->wq, 1.0f, s->dx); /* residual + q, k, v */
    return ATTN_OK;
}

/* The [CLS]-only last layer (see layer_forward_cls): from dcls (s->head + B d) to the
 * gradient of the layer's input over every token in s->dx. */
static attn_status layer_backward_cls(attn_model *m, int64_t l, grad_scratch *s)
{
    const attn_model_layer_w *w = &m->w.layer[l];
    attn_model_layer_w none = {0}, *g = layer_grads(m, l, &none);
    attn_model_layer_tape *lt = &m->tape.layer[l];
    const int64_t B = m->tape.batch, S = m->tape.seq, N = B * S, d = m->cfg.hidden_size;
    const int64_t H = m->cfg.num_heads, Dh = d / H;
    float *dr = s->head + B * d, *dq = s->head; /* the pooler's dp is spent by now */
    block_backward(m, l, B, dr, s);
    attn_model_attn_views lv;
    attn_model_views_cls(m, lt, &lv);
    const attn_model_attn_views gv = {.q = attn_tensor_bshd(dq, ATTN_F32, B, 1, H, Dh),
                                      .k = attn_model_qkv_view(s->dqkv + d, B, S, H, Dh),
                                      .v = attn_model_qkv_view(s->dqkv + 2 * d, B, S, H, Dh),
                                      .ctx = attn_tensor_bshd(s->dctx, ATTN_F32, B, 1, H, Dh)};
    attn_status st = attention_backward(m, &lv, &gv);
    if (st != ATTN_OK)
        return st;
    attn_model_linear_dw_ld(B, d, d, dq, d, lt->x, S * d, g->wq, g->bq);
    attn_model_linear_dw_ld(N, d, 2 * d, s->dqkv + d, 3 * d, lt->x, d, g->wk, g->bk);
    attn_model_linear_dx_ld(N, d, 2 * d, s->dqkv + d, 3 * d, w->wk, 0.0f, s->dx, d);
    attn_model_linear_dx_ld(B, d, d, dq, d, w->wq, 1.0f, s->dx, S * d);
    for (int64_t b = 0; b < B; b++) /* the residual of the [CLS] rows */
        for (int64_t j = 0; j < d; j++)
            s->dx[b * S * d + j] += dr[b * d + j];
    return ATTN_OK;
}

/* e = LN(word[id] + pos[s] + type[t]): the tables' rows accumulate, in token order. */
static void embed_backward(attn_model *m, grad_scratch *s)
{
    const attn_model_tape *t = &m->tape;
    const int64_t S = t->seq, N = t->batch * S, d = m->cfg.hidden_size;
    float *de = s->dctx;
    attn_model_layernorm_bwd(N, d, s->dx, t->xhat0, t->rstd0, m->w.emb_ln_w, m->g.emb_ln_w,
                             m->g.emb_ln_b, de);
    for (int64_t i = 0; i < N; i++) {
        float *gw = t->ids[i] == m->cfg.pad_token_id ? NULL : m->g.word + t->ids[i] * d;
        float *gp = m->g.pos + (i % S) * d, *gt = m->g.type + t->types[i] * d;
        for (int64_t j = 0; j < d; j++) {
            if (gw)
                gw[j] += de[i * d + j];
            gp[j] += de[i * d + j];
            gt[j] += de[i * d + j];
        }
    }
}

/* Both entries after their checks: the reverse pass, then the embedding tables unless the
 * forward was given e or no parameter gradient is wanted. */
static attn_status backward_run(attn_model *m, const float *dlogits, float *d_embeddings)
{
    grad_scratch s = {0};
    attn_status st = scratch_alloc(m, &s);
    if (st != ATTN_OK)
        return st;
    head_backward(m, dlogits, &s);
    for (int64_t l = m->cfg.num_layers - 1; l >= 0 && st == ATTN_OK; l--) {
        if (l == m->cfg.num_layers - 1 && m->tape.cls_only)
            st = layer_backward_cls(m, l, &s);
        else
            st = layer_backward(m, l, &s);
    }
    if (st == ATTN_OK) {
        const int64_t n = m->tape.batch * m->tape.seq * m->cfg.hidden_size;
        if (d_embeddings)
            memcpy(d_embeddings, s.dx, (size_t)n * sizeof(float));
        if (!m->tape.from_embeddings && !m->no_param_grad)
            embed_backward(m, &s);
    }
    return st == ATTN_OK ? attn_ok() : st;
}

static attn_status need_forward(const attn_model *m, const char *fn)
{
    if (m->tape.batch == 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "%s: no forward to differentiate (run attn_model_forward first; a "
                         "failed forward leaves none)", fn);
    return ATTN_OK;
}

attn_status attn_model_backward(attn_model *m, const float *dlogits, float *d_embeddings)
{
    if (!m || !dlogits)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_backward: NULL %s",
                         !m ? "model" : "dlogits");
    const attn_status st = need_forward(m, "attn_model_backward");
    return st != ATTN_OK ? st : backward_run(m, dlogits, d_embeddings);
}

attn_status attn_model_backward_saliency(attn_model *m, const float *dlogits,
                                         const float *pool_slope, float *d_embeddings)
{
    if (!m || !dlogits || !d_embeddings)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_backward_saliency: NULL %s",
                         !m ? "model" : !dlogits ? "dlogits" : "d_embeddings");
    attn_status st = need_forward(m, "attn_model_backward_saliency");
    if (st != ATTN_OK)
        return st;
    m->no_param_grad = 1;
    m->pool_slope = pool_slope;
    st = backward_run(m, dlogits, d_embeddings);
    m->no_param_grad = 0;
    m->pool_slope = NULL;
    return st;
}
