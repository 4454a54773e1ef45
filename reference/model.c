/* model.c - the ground truth of the BERT encoder (attn_model_forward): Hugging Face's
 * BertForSequenceClassification in eval mode (dropout off) written as its formulas in plain
 * loops, one token or one query row at a time, every intermediate a double over the f32
 * parameters (attn_model_weights.h; Linear weights [out, in], y = x W^T + b as nn.Linear).
 * With d = hidden_size, H heads of Dh = d / H features (head h: features h Dh .. h Dh + Dh - 1),
 * token s of sequence b with id t_s and token type y_s:
 *
 *   LN(x) = (x - mean x) / sqrt(var x + eps) w + b    var biased (divides by d), eps inside
 *   e     = LN(word[t_s] + pos[s] + type[y_s])         or in->embeddings as given
 * every layer, x its input (x = e for the first):
 *   q, k, v = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv
 *   s_ij  = q_i . k_j / sqrt(Dh) per head,  -inf when key j is padded (attention_mask 0)
 *   P_ij  = exp(s_ij) / sum_j' exp(s_ij'),  ctx_i = sum_j P_ij v_j
 *   a     = ctx Wo^T + bo,  r = x + a (attn_residual),  h1 = LN1(r)
 *   u     = h1 W1^T + b1,   m = gelu(u) = u/2 (1 + erf(u / sqrt 2))
 *   x'    = LN2(m W2^T + b2 + h1)
 * and the head: pooled = tanh(Wp x_L[b, 0] + bp), logits = Wc pooled + bc.
 *
 * Hugging Face adds the float minimum to a padded key's score instead of -inf: the same
 * probabilities unless a row has no visible key, where attn's convention applies (P = 0,
 * ctx = 0; model_ref.h). key_score[l, b, j, h] = sum_i P_ij over every query row i, padded
 * query rows included, as attn_sdpa's key_score. See docs/model.md. */
#include "model_ref.h"

#include "attn_backend_impl.h"
#include "ref_alloc.h"

#include <math.h>
#include <stdlib.h>

/* ---- the building blocks ------------------------------------------------------------------- */

/* nn.Linear on one row: y[o] = b[o] + sum_i W[o, i] x[i], W [n_out, n_in]. */
static void ref_linear(const float *W, const float *b, const double *x, int64_t n_in,
                       int64_t n_out, double *y)
{
    for (int64_t o = 0; o < n_out; o++) {
        double acc = b[o];
        for (int64_t i = 0; i < n_in; i++)
            acc += (double)W[o * n_in + i] * x[i];
        y[o] = acc;
    }
}

/* nn.LayerNorm on one row of n: y = (x - mean) / sqrt(var + eps) * w + b (y may be x). */
static void ref_layer_norm(const double *x, const float *w, const float *b, int64_t n,
                           double eps, double *y)
{
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; i++)
        mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= (double)n; /* biased, as torch's LayerNorm */
    const double inv = 1.0 / sqrt(var + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = (x[i] - mean) * inv * (double)w[i] + (double)b[i];
}

/* The exact (erf) GELU of BERT's hidden_act "gelu". */
static double ref_gelu(double u)
{
    return 0.5 * u * (1.0 + erf(u * M_SQRT1_2));
}

/* ---- scratch ------------------------------------------------------------------------------- */

/* The sizes of one forward and its per-token activations ([B S, d] or [B S, I]). */
typedef struct ref_model {
    const attn_model_config *cfg;
    const attn_model_weights *w;
    const attn_model_input *in;
    int64_t B, S, d, H, Dh, I, L, C, n; /* n = B S tokens */
    double *x, *q, *k, *v, *ctx, *h1, *u, *row, *s;
} ref_model;

static void ref_model_free(ref_model *r)
{
    free(r->x);
    free(r->q);
    free(r->k);
    free(r->v);
    free(r->ctx);
    free(r->h1);
    free(r->u);
    free(r->row);
    free(r->s);
}

static attn_status ref_model_alloc(ref_model *r)
{
    const int64_t wide = r->I > r->d ? r->I : r->d;
    r->x = attn_ref_alloc(r->n, r->d);
    r->q = attn_ref_alloc(r->n, r->d);
    r->k = attn_ref_alloc(r->n, r->d);
    r->v = attn_ref_alloc(r->n, r->d);
    r->ctx = attn_ref_alloc(r->n, r->d);
    r->h1 = attn_ref_alloc(r->n, r->d);
    r->u = attn_ref_alloc(r->n, r->I);
    r->row = attn_ref_alloc(wide, 1);
    r->s = attn_ref_alloc(r->S, 1);
    if (r->x && r->q && r->k && r->v && r->ctx && r->h1 && r->u && r->row && r->s)
        return attn_ok();
    ref_model_free(r);
    return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                     "attn_ref_model_forward: cannot allocate the activations of %lld tokens",
                     (long long)r->n);
}

/* ---- the encoder --------------------------------------------------------------------------- */

/* The embedding-layer output of every token into x: LN(word[id] + pos[s] + type[t]), or the
 * given embeddings. */
static void ref_embeddings(const ref_model *r)
{
    const attn_model_weights *w = r->w;
    const attn_model_input *in = r->in;
    for (int64_t e = 0; e < r->n; e++) {
        double *x = r->x + e * r->d;
        if (in->embeddings) {
            for (int64_t c = 0; c < r->d; c++)
                x[c] = in->embeddings[e * r->d + c];
            continue;
        }
        const int64_t id = in->ids[e], pos = e % r->S;
        const int64_t type = in->token_types ? in->token_types[e] : 0;
        for (int64_t c = 0; c < r->d; c++)
            x[c] = (double)w->word[id * r->d + c] + (double)w->pos[pos * r->d + c] +
                   (double)w->type[type * r->d + c];
        ref_layer_norm(x, w->emb_ln_w, w->emb_ln_b, r->d, r->cfg->layer_norm_eps, x);
    }
}

static int ref_key_visible(const ref_model *r, int64_t b, int64_t j)
{
    return !r->in->attention_mask || r->in->attention_mask[b * r->S + j] != 0;
}

/* The attention of query i, head h of sequence b over the keys of its sequence: ctx, and
 * layer l's probabilities and key scores when asked. */
static void ref_attention_row(const ref_model *r, const attn_ref_model_out *o, int64_t l,
                              int64_t b, int64_t h, int64_t i)
{
    const int64_t S = r->S, d = r->d, Dh = r->Dh;
    const double *qi = r->q + (b * S + i) * d + h * Dh;
    double m = -INFINITY;
    for (int64_t j = 0; j < S; j++) {
        r->s[j] = -INFINITY;
        if (!ref_key_visible(r, b, j))
            continue;
        const double *kj = r->k + (b * S + j) * d + h * Dh;
        double dot = 0.0;
        for (int64_t c = 0; c < Dh; c++)
            dot += qi[c] * kj[c];
        r->s[j] = dot / sqrt((double)Dh);
        m = fmax(m, r->s[j]);
    }
    double sum = 0.0; /* softmax, shifted by the row's maximum */
    for (int64_t j = 0; j < S; j++) {
        r->s[j] = r->s[j] == -INFINITY ? 0.0 : exp(r->s[j] - m);
        sum += r->s[j];
    }
    double *ctx = r->ctx + (b * S + i) * d + h * Dh;
    for (int64_t c = 0; c < Dh; c++)
        ctx[c] = 0.0;
    for (int64_t j = 0; j < S; j++) {
        const double p = sum > 0.0 ? r->s[j] / sum : 0.0; /* no visible key: P = 0 */
        const double *vj = r->v + (b * S + j) * d + h * Dh;
        for (int64_t c = 0; c < Dh; c++)
            ctx[c] += p * vj[c];
        if (o->attentions)
            o->attentions[(((l * r->B + b) * r->H + h) * S + i) * S + j] = p;
        if (o->key_score)
            o->key_score[((l * r->B + b) * S + j) * r->H + h] += p;
    }
}

/* Layer l on r->x in place: self-attention, residual + LN1, MLP, residual + LN2. */
static void ref_layer(const ref_model *r, const attn_ref_model_out *o, int64_t l)
{
    const attn_model_layer_w *w = &r->w->layer[l];
    const int64_t d = r->d, I = r->I;
    const double eps = r->cfg->layer_norm_eps;
    for (int64_t e = 0; e < r->n; e++) {
        const double *x = r->x + e * d;
        ref_linear(w->wq, w->bq, x, d, d, r->q + e * d);
        ref_linear(w->wk, w->bk, x, d, d, r->k + e * d);
        ref_linear(w->wv, w->bv, x, d, d, r->v + e * d);
    }
    for (int64_t b = 0; b < r->B; b++)
        for (int64_t h = 0; h < r->H; h++)
            for (int64_t i = 0; i < r->S; i++)
                ref_attention_row(r, o, l, b, h, i);
    for (int64_t e = 0; e < r->n; e++) {
        double *x = r->x + e * d, *h1 = r->h1 + e * d, *u = r->u + e * I;
        ref_linear(w->wo, w->bo, r->ctx + e * d, d, d, h1); /* a */
        for (int64_t c = 0; c < d; c++)
            h1[c] += x[c]; /* r = x + a */
        if (o->attn_residual)
            for (int64_t c = 0; c < d; c++)
                o->attn_residual[(l * r->n + e) * d + c] = h1[c];
        ref_layer_norm(h1, w->ln1_w, w->ln1_b, d, eps, h1);
        ref_linear(w->w1, w->b1, h1, d, I, u);
        for (int64_t c = 0; c < I; c++)
            u[c] = ref_gelu(u[c]);
        ref_linear(w->w2, w->b2, u, I, d, x); /* the layer's input is no longer needed */
        for (int64_t c = 0; c < d; c++)
            x[c] += h1[c];
        ref_layer_norm(x, w->ln2_w, w->ln2_b, d, eps, x);
    }
}

/* hidden[slot] = the current activations. */
static void ref_store_hidden(const ref_model *r, const attn_ref_model_out *o, int64_t slot)
{
    if (o->hidden)
        for (int64_t e = 0; e < r->n * r->d; e++)
            o->hidden[slot * r->n * r->d + e] = r->x[e];
}

/* pooled = tanh(Wp x_L[b, 0] + bp), logits = Wc pooled + bc. */
static void ref_head(const ref_model *r, const attn_ref_model_out *o)
{
    const attn_model_weights *w = r->w;
    for (int64_t b = 0; b < r->B; b++) {
        ref_linear(w->pool_w, w->pool_b, r->x + b * r->S * r->d, r->d, r->d, r->row);
        for (int64_t c = 0; c < r->d; c++) {
            r->row[c] = tanh(r->row[c]);
            if (o->pooled)
                o->pooled[b * r->d + c] = r->row[c];
        }
        ref_linear(w->cls_w, w->cls_b, r->row, r->d, r->C, o->logits + b * r->C);
    }
}

/* ---- arguments ----------------------------------------------------------------------------- */

static attn_status ref_check_tokens(const attn_model_config *cfg, const attn_model_input *in)
{
    if (in->embeddings)
        return attn_ok(); /* ids and token types are not read */
    for (int64_t e = 0; e < in->batch * in->seq; e++) {
        const long long b = (long long)(e / in->seq), s = (long long)(e % in->seq);
        if (in->ids[e] < 0 || in->ids[e] >= cfg->vocab_size)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "attn_ref_model_forward: ids[%lld, %lld] = %d is outside "
                             "[0, vocab_size %lld)", b, s, (int)in->ids[e],
                             (long long)cfg->vocab_size);
        if (in->token_types &&
            (in->token_types[e] < 0 || in->token_types[e] >= cfg->type_vocab_size))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "attn_ref_model_forward: token_types[%lld, %lld] = %d is outside "
                             "[0, type_vocab_size %lld)", b, s, (int)in->token_types[e],
                             (long long)cfg->type_vocab_size);
    }
    return attn_ok();
}

static attn_status ref_check(const attn_model_config *cfg, const attn_model_weights *w,
                             const attn_model_input *in, const attn_ref_model_out *o)
{
    if (!cfg || !w || !in || !o)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_ref_model_forward: %s is NULL",
                         !cfg ? "cfg" : !w ? "weights" : !in ? "input" : "outputs");
    if (!o->logits)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_ref_model_forward: logits is NULL");
    if (!w->layer)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_ref_model_forward: weights.layer is NULL");
    const attn_status st = attn_model_config_check(cfg);
    if (st != ATTN_OK)
        return st;
    if (in->batch < 1 || in->seq < 1)
        return attn_fail(ATTN_ERR_SHAPE, "attn_ref_model_forward: batch %lld and seq %lld must "
                         "be at least 1", (long long)in->batch, (long long)in->seq);
    if (in->seq > cfg->max_positions)
        return attn_fail(ATTN_ERR_SHAPE, "attn_ref_model_forward: seq %lld exceeds "
                         "max_positions %lld", (long long)in->seq, (long long)cfg->max_positions);
    int64_t n;
    if (__builtin_mul_overflow(in->batch, in->seq, &n))
        return attn_fail(ATTN_ERR_OVERFLOW, "attn_ref_model_forward: batch %lld x seq %lld "
                         "overflows", (long long)in->batch, (long long)in->seq);
    if (!in->ids && !in->embeddings)
        return attn_fail(ATTN_ERR_NULL_POINTER,
                         "attn_ref_model_forward: ids is NULL and no embeddings are given");
    return ref_check_tokens(cfg, in);
}

/* ---- driver -------------------------------------------------------------------------------- */

attn_status attn_ref_model_forward(const attn_model_config *cfg, const attn_model_weights *w,
                                   const attn_model_input *in, const attn_ref_model_out *o)
{
    attn_status st = ref_check(cfg, w, in, o);
    if (st != ATTN_OK)
        return st;
    ref_model r = {.cfg = cfg, .w = w, .in = in, .B = in->batch, .S = in->seq,
                   .d = cfg->hidden_size, .H = cfg->num_heads,
                   .Dh = cfg->hidden_size / cfg->num_heads, .I = cfg->intermediate_size,
                   .L = cfg->num_layers, .C = cfg->num_labels, .n = in->batch * in->seq};
    if ((st = ref_model_alloc(&r)) != ATTN_OK)
        return st;
    if (o->key_score)
        for (int64_t e = 0; e < r.L * r.n * r.H; e++)
            o->key_score[e] = 0.0;

    ref_embeddings(&r);
    ref_store_hidden(&r, o, 0);
    for (int64_t l = 0; l < r.L; l++) {
        ref_layer(&r, o, l);
        ref_store_hidden(&r, o, l + 1);
    }
    ref_head(&r, o);
    ref_model_free(&r);
    return attn_ok();
}
