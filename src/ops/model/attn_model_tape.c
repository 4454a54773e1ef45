/* attn_model_tape.c - the activations one forward keeps for the backward, in one allocation
 * that grows with the largest batch seen (layout in attn_model_impl.h). */
#include "attn_model_impl.h"

#include <stdlib.h>

#include "attn_backend_impl.h"

void attn_model_tape_free(attn_model_tape *t)
{
    free(t->block);
    free(t->scratch);
    free(t->ids);
    free(t->layer);
    *t = (attn_model_tape){0};
}

/* Carves n floats off the block cursor. */
static float *take(float **cur, int64_t n)
{
    float *p = *cur;
    *cur += n;
    return p;
}

static int64_t floats_per_token(const attn_model_config *c)
{
    const int64_t d = c->hidden_size, I = c->intermediate_size, H = c->num_heads;
    return d + 1 + c->num_layers * (9 * d + H + 3 * I + 2) + d;
}

static void carve(attn_model_tape *t, const attn_model_config *c, int64_t N, int64_t B)
{
    const int64_t d = c->hidden_size, I = c->intermediate_size, H = c->num_heads;
    float *cur = t->block;
    t->xhat0 = take(&cur, N * d);
    t->rstd0 = take(&cur, N);
    for (int64_t l = 0; l < c->num_layers; l++) {
        attn_model_layer_tape *lt = &t->layer[l];
        lt->x = take(&cur, N * d);
        lt->q = take(&cur, 3 * N * d);
        lt->k = lt->q + d;
        lt->v = lt->q + 2 * d;
        lt->ctx = take(&cur, N * d);
        lt->lse = take(&cur, N * H);
        lt->xhat1 = take(&cur, N * d);
        lt->rstd1 = take(&cur, N);
        lt->h1 = take(&cur, N * d);
        lt->u = take(&cur, N * I);
        lt->cdf = take(&cur, N * I);
        lt->m = take(&cur, N * I);
        lt->xhat2 = take(&cur, N * d);
        lt->rstd2 = take(&cur, N);
    }
    t->x_out = take(&cur, N * d);
    t->cls = take(&cur, B * d);
    t->pooled = take(&cur, B * d);
    t->logits = take(&cur, B * c->num_labels);
}

attn_status attn_model_tape_reserve(attn_model *m, int64_t batch, int64_t seq)
{
    attn_model_tape *t = &m->tape;
    const attn_model_config *c = &m->cfg;
    const int64_t N = batch * seq;
    if (N > t->cap_tokens || batch > t->cap_batch) {
        const int64_t per_tok = floats_per_token(c);
        const int64_t per_seq = 2 * c->hidden_size + c->num_labels;
        if (N > (int64_t)(SIZE_MAX / sizeof(float) / 4) / per_tok)
            return attn_fail(ATTN_ERR_OVERFLOW, "model: %lld tokens overflow the activations",
                             (long long)N);
        float *block = malloc((size_t)(N * per_tok + batch * per_seq) * sizeof(float));
        int32_t *ids = malloc((size_t)N * (2 * sizeof(int32_t) + 1));
        attn_model_layer_tape *layer = calloc((size_t)c->num_layers, sizeof *layer);
        if (!block || !ids || !layer) {
            free(block);
            free(ids);
            free(layer);
            return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                             "model: out of memory for the activations of %lld tokens",
                             (long long)N);
        }
        attn_model_tape_free(t);
        t->block = block;
        t->ids = ids;
        t->layer = layer;
        t->cap_tokens = N;
        t->cap_batch = batch;
    }
    t->types = t->ids + N;
    t->mask = (uint8_t *)(t->types + N);
    carve(t, c, N, batch);
    t->batch = batch;
    t->seq = seq;
    return ATTN_OK;
}
