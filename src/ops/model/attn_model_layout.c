/* attn_model_layout.c - where each BERT parameter lives: the Hugging Face state-dict order of
 * BertForSequenceClassification, each tensor's name and shape, and the weights struct laid over
 * one flat f32 block (values, gradients and Adam moments share the layout). */
#include "attn_model_weights.h"

#include <stdio.h>

/* Per-layer tensors, in state-dict order: suffix, rows ('d' hidden, 'I' intermediate, '-' none
 * for a vector), columns, whether weight decay applies. */
typedef struct layer_tensor {
    const char *suffix;
    char rows, cols;
} layer_tensor;

static const layer_tensor k_layer[16] = {
    {"attention.self.query.weight", 'd', 'd'},    {"attention.self.query.bias", '-', 'd'},
    {"attention.self.key.weight", 'd', 'd'},      {"attention.self.key.bias", '-', 'd'},
    {"attention.self.value.weight", 'd', 'd'},    {"attention.self.value.bias", '-', 'd'},
    {"attention.output.dense.weight", 'd', 'd'},  {"attention.output.dense.bias", '-', 'd'},
    {"attention.output.LayerNorm.weight", '-', 'd'}, {"attention.output.LayerNorm.bias", '-', 'd'},
    {"intermediate.dense.weight", 'I', 'd'},      {"intermediate.dense.bias", '-', 'I'},
    {"output.dense.weight", 'd', 'I'},            {"output.dense.bias", '-', 'd'},
    {"output.LayerNorm.weight", '-', 'd'},        {"output.LayerNorm.bias", '-', 'd'},
};

int64_t attn_model_tensor_count(const attn_model_config *cfg)
{
    return 5 + 16 * cfg->num_layers + 4;
}

static int64_t dim_of(const attn_model_config *cfg, char c)
{
    return c == 'I' ? cfg->intermediate_size : cfg->hidden_size;
}

/* Only 2-D matrices and embeddings decay: biases and LayerNorm parameters do not (the usual
 * transformers fine-tuning recipe). */
static void set_info(char *buf, size_t n, const char *name, int *ndim, int64_t shape[2],
                     int *decay, int64_t rows, int64_t cols)
{
    snprintf(buf, n, "%s", name);
    *ndim = rows > 0 ? 2 : 1;
    shape[0] = rows > 0 ? rows : cols;
    shape[1] = rows > 0 ? cols : 1;
    *decay = rows > 0;
}

void attn_model_tensor_info(const attn_model_config *cfg, int64_t i, char *buf, size_t n,
                            int *ndim, int64_t shape[2], int *decay)
{
    const int64_t d = cfg->hidden_size, L = cfg->num_layers;
    char name[160];
    if (i < 5) {
        static const char *emb[5] = {"word_embeddings.weight", "position_embeddings.weight",
                                     "token_type_embeddings.weight", "LayerNorm.weight",
                                     "LayerNorm.bias"};
        const int64_t rows[5] = {cfg->vocab_size, cfg->max_positions, cfg->type_vocab_size, 0, 0};
        snprintf(name, sizeof name, "bert.embeddings.%s", emb[i]);
        set_info(buf, n, name, ndim, shape, decay, rows[i], d);
        return;
    }
    i -= 5;
    if (i < 16 * L) {
        const layer_tensor *t = &k_layer[i % 16];
        snprintf(name, sizeof name, "bert.encoder.layer.%lld.%s", (long long)(i / 16), t->suffix);
        set_info(buf, n, name, ndim, shape, decay, t->rows == '-' ? 0 : dim_of(cfg, t->rows),
                 dim_of(cfg, t->cols));
        return;
    }
    i -= 16 * L;
    static const char *head[4] = {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                  "classifier.weight", "classifier.bias"};
    const int64_t cols = i < 2 ? d : cfg->num_labels;
    set_info(buf, n, head[i], ndim, shape, decay, i % 2 == 0 ? cols : 0, i % 2 == 0 ? d : cols);
}

static int64_t numel_of(const attn_model_config *cfg, int64_t i);

int64_t attn_model_numel(const attn_model_config *cfg)
{
    int64_t total = 0;
    for (int64_t i = 0; i < attn_model_tensor_count(cfg); i++)
        total += numel_of(cfg, i);
    return total;
}

/* Storage order within a layer: the three projection weights next to each other, then their
 * biases, so q, k and v come out of one [N, 3d] product (and their gradients go into one). The
 * table order (state-dict order) is unchanged; only where each tensor lives differs. */
static const int k_storage[16] = {0, 3, 1, 4, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static int64_t numel_of(const attn_model_config *cfg, int64_t i)
{
    char name[160];
    int ndim, decay;
    int64_t shape[2];
    attn_model_tensor_info(cfg, i, name, sizeof name, &ndim, shape, &decay);
    return shape[0] * shape[1];
}

int64_t attn_model_tensor_offset(const attn_model_config *cfg, int64_t i)
{
    const int64_t L = cfg->num_layers;
    int64_t off = 0;
    if (i >= 5 && i < 5 + 16 * L) {
        const int64_t layer0 = 5 + (i - 5) / 16 * 16;
        for (int64_t t = 0; t < layer0; t++)
            off += numel_of(cfg, t);
        const int slot = k_storage[(i - 5) % 16];
        for (int64_t t = 0; t < 16; t++)
            if (k_storage[t] < slot)
                off += numel_of(cfg, layer0 + t);
        return off;
    }
    for (int64_t t = 0; t < i; t++)
        off += numel_of(cfg, t);
    return off;
}

void attn_model_weights_over(const attn_model_config *cfg, float *block, attn_model_weights *w)
{
    float **slot_emb[5] = {&w->word, &w->pos, &w->type, &w->emb_ln_w, &w->emb_ln_b};
    float **slot_head[4] = {&w->pool_w, &w->pool_b, &w->cls_w, &w->cls_b};
    const int64_t L = cfg->num_layers;
    for (int64_t i = 0; i < attn_model_tensor_count(cfg); i++) {
        const int64_t li = i - 5;
        float **slot;
        if (i < 5)
            slot = slot_emb[i];
        else if (li < 16 * L) /* the layer struct's members follow k_layer's order exactly */
            slot = (float **)&w->layer[li / 16] + li % 16;
        else
            slot = slot_head[li - 16 * L];
        *slot = block + attn_model_tensor_offset(cfg, i);
    }
}
