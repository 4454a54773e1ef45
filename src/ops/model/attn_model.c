/* attn_model.c - the model object's life: allocation from a checked configuration, BERT's
 * initialisation, the parameter table by Hugging Face name, gradients, release. */
#include "attn_model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attn_backend_impl.h"
#include "attn_rng.h"

_Static_assert(sizeof(attn_model_layer_w) == 16 * sizeof(float *),
               "attn_model_layer_w is 16 pointers in state-dict order");

static void fill_table(attn_model *m)
{
    for (int64_t i = 0; i < m->ntensor; i++) {
        attn_model_param *p = &m->param[i];
        char *name = m->names + i * ATTN_MODEL_NAME_MAX;
        attn_model_tensor_info(&m->cfg, i, name, ATTN_MODEL_NAME_MAX, &p->ndim, p->shape,
                               &p->decay);
        p->name = name;
        p->numel = p->shape[0] * p->shape[1];
    }
    for (int64_t i = 0; i < m->ntensor; i++) {
        const int64_t off = attn_model_tensor_offset(&m->cfg, i);
        m->param[i].value = m->value + off;
        m->param[i].grad = m->grad + off;
    }
    attn_model_weights_over(&m->cfg, m->value, &m->w);
    attn_model_weights_over(&m->cfg, m->grad, &m->g);
}

attn_status attn_model_alloc(attn_backend *be, const attn_model_config *cfg, attn_model **out)
{
    attn_status st = attn_model_config_check(cfg);
    if (st != ATTN_OK)
        return st;
    attn_model *m = calloc(1, sizeof *m);
    if (!m)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "model: out of memory");
    m->be = be;
    m->cfg = *cfg;
    m->ntensor = attn_model_tensor_count(cfg);
    m->numel = attn_model_numel(cfg);
    m->param = calloc((size_t)m->ntensor, sizeof *m->param);
    m->names = calloc((size_t)m->ntensor, ATTN_MODEL_NAME_MAX);
    m->value = calloc((size_t)m->numel, sizeof(float));
    m->grad = calloc((size_t)m->numel, sizeof(float));
    m->w.layer = calloc((size_t)cfg->num_layers, sizeof *m->w.layer);
    m->g.layer = calloc((size_t)cfg->num_layers, sizeof *m->g.layer);
    if (!m->param || !m->names || !m->value || !m->grad || !m->w.layer || !m->g.layer) {
        attn_model_free(m);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "model: out of memory for %lld parameters",
                         (long long)cfg->num_layers);
    }
    fill_table(m);
    *out = m;
    return ATTN_OK;
}

/* Standard normal from two uniforms of the counter-based generator (Box-Muller), so every
 * element is a pure function of (seed, tensor, index). */
static double normal_at(uint64_t seed, uint64_t stream, uint64_t i)
{
    const double u1 = attn_rng_unit(seed, stream, 2 * i);
    const double u2 = attn_rng_unit(seed, stream, 2 * i + 1);
    return sqrt(-2.0 * log1p(-u1)) * cos(6.283185307179586 * u2);
}

void attn_model_init_params(attn_model *m, uint64_t seed, int64_t first, int64_t last)
{
    for (int64_t t = first; t < last; t++) {
        attn_model_param *p = &m->param[t];
        const int is_ln = strstr(p->name, "LayerNorm.weight") != NULL;
        for (int64_t i = 0; i < p->numel; i++) {
            if (p->ndim == 2)
                p->value[i] = (float)(m->cfg.initializer_range * normal_at(seed, (uint64_t)t, i));
            else
                p->value[i] = is_ln ? 1.0f : 0.0f;
        }
    }
    /* nn.Embedding(padding_idx) starts the padding row at zero, as transformers does. */
    if (first == 0 && last > 0)
        memset(m->w.word + m->cfg.pad_token_id * m->cfg.hidden_size, 0,
               (size_t)m->cfg.hidden_size * sizeof(float));
}

attn_status attn_model_create(attn_backend *be, const attn_model_config *cfg, uint64_t seed,
                              attn_model **out)
{
    if (!be || !cfg || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_create: NULL %s",
                         !be ? "backend" : !cfg ? "config" : "out");
    attn_model *m;
    attn_status st = attn_model_alloc(be, cfg, &m);
    if (st != ATTN_OK)
        return st;
    attn_model_init_params(m, seed, 0, m->ntensor);
    *out = m;
    return ATTN_OK;
}

void attn_model_free(attn_model *m)
{
    if (!m)
        return;
    attn_model_tape_free(&m->tape);
    free(m->param);
    free(m->names);
    free(m->value);
    free(m->grad);
    free(m->adam_m);
    free(m->adam_v);
    free(m->w.layer);
    free(m->g.layer);
    free(m);
}

const attn_model_config *attn_model_get_config(const attn_model *m)
{
    return m ? &m->cfg : NULL;
}

const attn_model_weights *attn_model_values(const attn_model *m)
{
    return &m->w;
}

int64_t attn_model_param_count(const attn_model *m)
{
    return m ? m->ntensor : 0;
}

attn_status attn_model_param_get(attn_model *m, int64_t i, attn_model_param *p)
{
    if (!m || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_param_get: NULL %s",
                         !m ? "model" : "param");
    if (i < 0 || i >= m->ntensor)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "attn_model_param_get: index %lld outside [0, %lld)", (long long)i,
                         (long long)m->ntensor);
    *p = m->param[i];
    return ATTN_OK;
}

attn_status attn_model_param_find(attn_model *m, const char *name, attn_model_param *p)
{
    if (!m || !name || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_param_find: NULL argument");
    for (int64_t i = 0; i < m->ntensor; i++) {
        const char *n = m->param[i].name;
        const char *bare = strncmp(n, "bert.", 5) == 0 ? n + 5 : n;
        if (strcmp(n, name) == 0 || strcmp(bare, name) == 0) {
            *p = m->param[i];
            return ATTN_OK;
        }
    }
    return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "model: no parameter named \"%s\"", name);
}

int attn_model_reserved_zero(const uint64_t *r, int n)
{
    for (int i = 0; i < n; i++)
        if (r[i])
            return 0;
    return 1;
}

double attn_model_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void attn_model_zero_grad(attn_model *m)
{
    if (m)
        memset(m->grad, 0, (size_t)m->numel * sizeof(float));
}
