/* attn_model_forward.c - the encoder's forward: embeddings and their LayerNorm, per layer the
 * self-attention through attn_sdpa_forward_ex on the model's backend (the padding mask as a
 * boolean key mask), output projection, residual, LayerNorm, GELU MLP, residual, LayerNorm;
 * pooler and classifier. Every activation the backward needs stays on the tape. */
#include "attn_model_impl.h"

#include <math.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_model_dense.h"
#include "attn_model_saliency.h"

/* Checks the batch against the configuration; names the first offending token. */
static attn_status check_input(const attn_model_config *c, const attn_model_input *in)
{
    if (!attn_model_reserved_zero(in->reserved, 4))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "model input: reserved fields must be zero");
    if (in->batch < 1 || in->seq < 1)
        return attn_fail(ATTN_ERR_SHAPE, "model input: batch %lld x seq %lld must be positive",
                         (long long)in->batch, (long long)in->seq);
    if (in->seq > c->max_positions)
        return attn_fail(ATTN_ERR_SHAPE,
                         "model input: sequence of %lld tokens is longer than the %lld "
                         "positions of the model (max_position_embeddings)",
                         (long long)in->seq, (long long)c->max_positions);
    if (in->batch > INT64_MAX / in->seq / c->hidden_size / 16)
        return attn_fail(ATTN_ERR_OVERFLOW, "model input: batch %lld x seq %lld overflows",
                         (long long)in->batch, (long long)in->seq);
    if (!in->ids && !in->embeddings)
        return attn_fail(ATTN_ERR_NULL_POINTER, "model input: ids (or embeddings) required");
    const int64_t N = in->batch * in->seq;
    for (int64_t i = 0; i < N; i++) {
        const long long b = i / in->seq, s = i % in->seq;
        if (!in->embeddings && (in->ids[i] < 0 || in->ids[i] >= c->vocab_size))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "model input: token id %d at [%lld, %lld] is outside the vocabulary "
                             "[0, %lld)", (int)in->ids[i], b, s, (long long)c->vocab_size);
        if (in->token_types && (in->token_types[i] < 0 || in->token_types[i] >= c->type_vocab_size))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "model input: token type %d at [%lld, %lld] is outside [0, %lld)",
                             (int)in->token_types[i], b, s, (long long)c->type_vocab_size);
        if (in->attention_mask && in->attention_mask[i] > 1)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "model input: attention mask %d at [%lld, %lld] is not 0 or 1",
                             (int)in->attention_mask[i], b, s);
    }
    return ATTN_OK;
}

attn_status attn_model_input_check(const attn_model *m, const attn_model_input *in)
{
    if (!m || !in)
        return attn_fail(ATTN_ERR_NULL_POINTER, "model input: NULL %s", !m ? "model" : "input");
    return check_input(&m->cfg, in);
}

const float *attn_model_last_embeddings(const attn_model *m)
{
    return m->cfg.num_layers > 0 ? m->tape.layer[0].x : m->tape.x_out;
}

void attn_model_pooler_pre(const attn_model *m, float *z)
{
    const int64_t d = m->cfg.hidden_size;
    attn_model_linear(m->tape.batch, d, d, m->tape.cls, m->w.pool_w, m->w.pool_b, z);
}

/* e = LayerNorm(word[id] + pos[s] + type[t]) into x, or the given embeddings. */
static void embed(attn_model *m, const attn_model_input *in, float *x)
{
    const attn_model_config *c = &m->cfg;
    attn_model_tape *t = &m->tape;
    const int64_t d = c->hidden_size, S = in->seq, N = in->batch * S;
    if (in->embeddings) {
        memcpy(x, in->embeddings, (size_t)(N * d) * sizeof(float));
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *w = m->w.word + t->ids[i] * d, *p = m->w.pos + (i % S) * d;
        const float *ty = m->w.type + t->types[i] * d;
        for (int64_t j = 0; j < d; j++)
            x[i * d + j] = w[j] + p[j] + ty[j];
    }
    attn_model_layernorm(N, d, x, m->w.emb_ln_w, m->w.emb_ln_b, c->layer_norm_eps, t->xhat0,
                         t->rstd0, x);
}

attn_tensor attn_model_qkv_view(float *p, int64_t B, int64_t S, int64_t H, int64_t Dh)
{
    const int64_t row = 3 * H * Dh;
    return (attn_tensor){.data = p, .dtype = ATTN_F32, .shape = {B, S, H, Dh},
                         .stride = {S * row, row, Dh, 1}};
}

void attn_model_views_cls(const attn_model *m, const attn_model_layer_tape *lt,
                          attn_model_attn_views *lv)
{
    const int64_t B = m->tape.batch, H = m->cfg.num_heads, Dh = m->cfg.hidden_size / H;
    attn_model_views(m, lt, NULL, lv);
    lv->q.shape[1] = 1;
    lv->ctx = attn_tensor_bshd(lt->ctx, ATTN_F32, B, 1, H, Dh);
    lv->lse = attn_tensor_bshd(lt->lse, ATTN_F32, B, 1, H, 1);
}

void attn_model_views(const attn_model *m, const attn_model_layer_tape *lt, float *ks,
                  attn_model_attn_views *lv)
{
    const attn_model_tape *t = &m->tape;
    const int64_t B = t->batch, S = t->seq, H = m->cfg.num_heads, Dh = m->cfg.hidden_size / H;
    lv->q = attn_model_qkv_view(lt->q, B, S, H, Dh);
    lv->k = attn_model_qkv_view(lt->k, B, S, H, Dh);
    lv->v = attn_model_qkv_view(lt->v, B, S, H, Dh);
    lv->ctx = attn_tensor_bshd(lt->ctx, ATTN_F32, B, S, H, Dh);
    lv->lse = attn_tensor_bshd(lt->lse, ATTN_F32, B, S, H, 1);
    lv->ks = attn_tensor_bshd(ks, ATTN_F32, B, S, H, 1);
    /* [batch, query, head, key]: one row of key flags per sequence, broadcast elsewhere. */
    lv->mask = (attn_tensor){.data = t->mask, .dtype = ATTN_U8, .shape = {B, 1, 1, S},
                             .stride = {S, 0, 0, 1}};
}

attn_sdpa_desc attn_model_sdpa_desc(const attn_model *m, const attn_tensor *mask)
{
    attn_sdpa_desc desc = attn_sdpa_desc_default();
    desc.mask_bool = m->tape.has_mask ? mask : NULL;
    return desc;
}

/* P[b, h, i, j] = exp(scale q_i . k_j - lse) on visible keys, 0 elsewhere, into [B, H, S, S]. */
static void probabilities(const attn_model *m, const attn_model_layer_tape *lt, float *P)
{
    const attn_model_tape *t = &m->tape;
    const int64_t B = t->batch, S = t->seq, H = m->cfg.num_heads, d = m->cfg.hidden_size;
    const int64_t Dh = d / H;
    const double scale = 1.0 / sqrt((double)Dh);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            for (int64_t i = 0; i < S; i++) {
                const float *qi = lt->q + (b * S + i) * 3 * d + h * Dh;
                const double lse = lt->lse[(b * S + i) * H + h];
                float *row = P + ((b * H + h) * S + i) * S;
                for (int64_t j = 0; j < S; j++) {
                    const float *kj = lt->k + (b * S + j) * 3 * d + h * Dh;
                    double dot = 0.0;
                    for (int64_t e = 0; e < Dh; e++)
                        dot += (double)qi[e] * kj[e];
                    const int seen = !t->has_mask || t->mask[b * S + j];
                    row[j] = seen && isfinite(lse) ? (float)exp(scale * dot - lse) : 0.0f;
                }
            }
        }
    }
}

/* The block after the attention, on R rows: r = x + ctx Wo^T + bo, h1 = LN1(r),
 * x_next = LN2(h1 + GELU(h1 W1^T + b1) W2^T + b2). x's rows are ldx apart (every S-th token for
 * the [CLS] rows); every other buffer holds R contiguous rows. */
static void block_forward(attn_model *m, int64_t l, int64_t R, const float *x, int64_t ldx,
                          float *x_next, float *attn_residual)
{
    const attn_model_config *c = &m->cfg;
    const attn_model_layer_w *w = &m->w.layer[l];
    attn_model_layer_tape *lt = &m->tape.layer[l];
    const int64_t d = c->hidden_size, I = c->intermediate_size;
    /* r1 is kept in h1 until its LayerNorm overwrites it in place. */
    attn_model_linear(R, d, d, lt->ctx, w->wo, w->bo, lt->h1);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < d; j++)
            lt->h1[i * d + j] += x[i * ldx + j];
    if (attn_residual)
        memcpy(attn_residual, lt->h1, (size_t)(R * d) * sizeof(float));
    attn_model_layernorm(R, d, lt->h1, w->ln1_w, w->ln1_b, c->layer_norm_eps, lt->xhat1,
                         lt->rstd1, lt->h1);
    attn_model_linear(R, d, I, lt->h1, w->w1, w->b1, lt->u);
    attn_model_gelu(R * I, lt->u, lt->cdf, lt->m);
    attn_model_linear(R, I, d, lt->m, w->w2, w->b2, x_next);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < R * d; i++)
        x_next[i] += lt->h1[i];
    attn_model_layernorm(R, d, x_next, w->ln2_w, w->ln2_b, c->layer_norm_eps, lt->xhat2,
                         lt->rstd2, x_next);
}

static attn_status run_attention(attn_model *m, const attn_model_attn_views *lv, int want_ks)
{
    const attn_sdpa_desc desc = attn_model_sdpa_desc(m, &lv->mask);
    const attn_sdpa_outputs so = {.out = &lv->ctx, .lse = &lv->lse,
                                  .key_score = want_ks ? &lv->ks : NULL};
    const double t0 = attn_model_now();
    attn_status st = attn_sdpa_forward_ex(m->be, &desc, &lv->q, &lv->k, &lv->v, &so);
    m->attn_seconds += attn_model_now() - t0;
    return st;
}

/* One encoder layer from lt->x to x_next; the optional outputs of this layer where asked. */
static attn_status layer_forward(attn_model *m, int64_t l, float *x_next,
                                 const attn_model_outputs *o)
{
    const attn_model_layer_w *w = &m->w.layer[l];
    attn_model_layer_tape *lt = &m->tape.layer[l];
    const int64_t B = m->tape.batch, S = m->tape.seq, N = B * S, d = m->cfg.hidden_size;
    const int64_t H = m->cfg.num_heads;
    /* wq, wk, wv are stored as one [3d, d] weight and bq, bk, bv as one [3d] bias. */
    attn_model_linear(N, d, 3 * d, lt->x, w->wq, w->bq, lt->q);
    attn_model_attn_views lv;
    attn_model_views(m, lt, o->key_score ? o->key_score + l * N * H : NULL, &lv);
    attn_status st = run_attention(m, &lv, o->key_score != NULL);
    if (st != ATTN_OK)
        return st;
    if (o->attentions)
        probabilities(m, lt, o->attentions + l * B * H * S * S);
    block_forward(m, l, N, lt->x, d, x_next,
                  o->attn_residual ? o->attn_residual + l * N * d : NULL);
    return ATTN_OK;
}

/* The last layer when only the logits (and pooled) are wanted: the pooler reads the [CLS]
 * row alone, so k and v are projected for every token and everything else for the B [CLS]
 * rows: about 10/12 of a layer's products saved, the same function. Output into t->cls. */
static attn_status layer_forward_cls(attn_model *m, int64_t l)
{
    const attn_model_layer_w *w = &m->w.layer[l];
    attn_model_layer_tape *lt = &m->tape.layer[l];
    const int64_t B = m->tape.batch, S = m->tape.seq, N = B * S, d = m->cfg.hidden_size;
    attn_model_linear_ld(N, d, 2 * d, lt->x, d, w->wk, w->bk, lt->k, 3 * d); /* wk, wv */
    attn_model_linear_ld(B, d, d, lt->x, S * d, w->wq, w->bq, lt->q, S * 3 * d);
    attn_model_attn_views lv;
    attn_model_views_cls(m, lt, &lv);
    attn_status st = run_attention(m, &lv, 0);
    if (st == ATTN_OK)
        block_forward(m, l, B, lt->x, S * d, m->tape.cls, NULL);
    return st;
}

/* pooled = tanh(Wp h_CLS + bp), logits = Wc pooled + bc. */
static void head_forward(attn_model *m)
{
    attn_model_tape *t = &m->tape;
    const int64_t B = t->batch, S = t->seq, d = m->cfg.hidden_size;
    for (int64_t b = 0; b < B && !t->cls_only; b++)
        memcpy(t->cls + b * d, t->x_out + b * S * d, (size_t)d * sizeof(float));
    attn_model_linear(B, d, d, t->cls, m->w.pool_w, m->w.pool_b, t->pooled);
    for (int64_t i = 0; i < B * d; i++)
        t->pooled[i] = tanhf(t->pooled[i]);
    attn_model_linear(B, d, m->cfg.num_labels, t->pooled, m->w.cls_w, m->w.cls_b, t->logits);
}

/* Copies the batch's integer inputs onto the tape (defaults: type 0, every token visible). */
static void record_input(attn_model *m, const attn_model_input *in)
{
    attn_model_tape *t = &m->tape;
    const int64_t N = in->batch * in->seq;
    t->from_embeddings = in->embeddings != NULL;
    t->has_mask = in->attention_mask != NULL;
    for (int64_t i = 0; i < N; i++) {
        t->ids[i] = in->embeddings ? 0 : in->ids[i];
        t->types[i] = in->token_types ? in->token_types[i] : 0;
        t->mask[i] = in->attention_mask ? in->attention_mask[i] : 1;
    }
}

static void write_outputs(const attn_model *m, const attn_model_outputs *o)
{
    const attn_model_tape *t = &m->tape;
    const attn_model_config *c = &m->cfg;
    const int64_t B = t->batch, N = B * t->seq, d = c->hidden_size;
    memcpy(o->logits, t->logits, (size_t)(B * c->num_labels) * sizeof(float));
    if (o->pooled)
        memcpy(o->pooled, t->pooled, (size_t)(B * d) * sizeof(float));
    if (o->hidden) {
        for (int64_t l = 0; l < c->num_layers; l++)
            memcpy(o->hidden + l * N * d, t->layer[l].x, (size_t)(N * d) * sizeof(float));
        memcpy(o->hidden + c->num_layers * N * d, t->x_out, (size_t)(N * d) * sizeof(float));
    }
}

attn_status attn_model_forward(attn_model *m, const attn_model_input *in,
                               const attn_model_outputs *outs)
{
    if (!m || !in || !outs || !outs->logits)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_forward: NULL %s",
                         !m ? "model" : !in ? "input" : !outs ? "outputs" : "logits");
    if (!attn_model_reserved_zero(outs->reserved, 4))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "model outputs: reserved fields must be zero");
    attn_status st = check_input(&m->cfg, in);
    if (st == ATTN_OK)
        st = attn_model_tape_reserve(m, in->batch, in->seq);
    if (st != ATTN_OK)
        return st;
    attn_model_tape *t = &m->tape;
    record_input(m, in);
    /* The attention's capability on this backend, before anything is written. */
    attn_model_attn_views lv;
    attn_model_views(m, &t->layer[0], outs->key_score, &lv);
    const attn_sdpa_desc desc = attn_model_sdpa_desc(m, &lv.mask);
    const attn_sdpa_outputs so = {.out = &lv.ctx, .lse = &lv.lse,
                                  .key_score = outs->key_score ? &lv.ks : NULL};
    st = attn_sdpa_supported_ex(m->be, &desc, &lv.q, &lv.k, &lv.v, &so);
    if (st != ATTN_OK) {
        t->batch = 0;
        return st;
    }
    const int64_t L = m->cfg.num_layers;
    t->cls_only = !m->all_rows && !outs->attentions && !outs->key_score && !outs->hidden &&
                  !outs->attn_residual;
    embed(m, in, L > 0 ? t->layer[0].x : t->x_out);
    for (int64_t l = 0; l < L && st == ATTN_OK; l++) {
        if (l == L - 1 && t->cls_only)
            st = layer_forward_cls(m, l);
        else
            st = layer_forward(m, l, l + 1 < L ? t->layer[l + 1].x : t->x_out, outs);
    }
    if (st != ATTN_OK) {
        t->batch = 0;
        return st;
    }
    head_forward(m);
    write_outputs(m, outs);
    return attn_ok();
}
