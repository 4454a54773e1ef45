/* attn_transfer.c - the transfer model object: its parameter tensors laid over one f32 arena
 * (values, gradients and Adam moments share the layout), their initialisation as torch's
 * nn.Linear, lookup by index and name, zero_grad and free. */
#include "attn_transfer_impl.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_rng.h"

/* One parameter tensor: its name, where it lives in the weights struct, its shape (rows 0: a
 * vector), the fan-in of its initialisation. */
typedef struct tensor_spec {
    const char *name;
    size_t field; /* offsetof(attn_transfer_weights, ...) */
    int64_t rows, cols, fan_in;
} tensor_spec;

/* The configuration's tensors in the public order; returns how many. */
static int tensor_specs(const attn_transfer_config *c, tensor_spec *s)
{
    const int64_t m = c->embed, F = c->features, K = c->sources, h = c->attn_hidden;
    int n = 0;
#define SPEC(nm, fld, r, cl, fi)                                                                 \
    s[n++] = (tensor_spec){nm, offsetof(attn_transfer_weights, fld), r, cl, fi}
    SPEC("embed.weight", Wc, m, F, F);
    SPEC("embed.bias", bc, 0, m, F);
    SPEC("source.weight", Ws, K, m, m);
    SPEC("source.bias", bs, 0, K, m);
    SPEC("target.weight", wt, 0, m, m);
    SPEC("target.bias", bt, 0, 1, m);
    if (attn_transfer_has_mlp(c)) {
        SPEC("attention.key.weight", Wa, h, m, m);
        SPEC("attention.query.weight", Wq, h, m, m);
        SPEC("attention.query.bias", bq, 0, h, m);
        SPEC("attention.score.weight", v, 0, h, h);
    }
    if (attn_transfer_learns_temperature(c))
        SPEC("attention.log_temperature", rho, 0, 1, 1);
#undef SPEC
    return n;
}

/* Lays the tensors over the value and grad arenas and fills the parameter table. */
static void layout(attn_transfer *t)
{
    tensor_spec s[ATTN_TRANSFER_MAX_TENSORS];
    const int n = tensor_specs(&t->cfg, s);
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        const int64_t numel = (s[i].rows ? s[i].rows : 1) * s[i].cols;
        *(float **)((char *)&t->w + s[i].field) = t->value + off;
        *(float **)((char *)&t->g + s[i].field) = t->grad + off;
        t->param[i] = (attn_transfer_param){
            .name = s[i].name, .ndim = s[i].rows ? 2 : 1,
            .shape = {s[i].rows ? s[i].rows : s[i].cols, s[i].rows ? s[i].cols : 1},
            .numel = numel, .value = t->value + off, .grad = t->grad + off,
            .decay = s[i].rows > 0 || !strcmp(s[i].name, "target.weight") ||
                     !strcmp(s[i].name, "attention.score.weight")};
        off += numel;
    }
    t->ntensor = n;
}

/* nn.Linear's default: weight and bias uniform in +-1/sqrt(fan_in), one stream per tensor. */
static void init_params(attn_transfer *t, uint64_t seed)
{
    tensor_spec s[ATTN_TRANSFER_MAX_TENSORS];
    tensor_specs(&t->cfg, s);
    for (int64_t i = 0; i < t->ntensor; i++) {
        const double b = 1.0 / sqrt((double)s[i].fan_in);
        const attn_transfer_param *p = &t->param[i];
        for (int64_t j = 0; j < p->numel; j++)
            p->value[j] = (float)attn_rng_uniform(seed, (uint64_t)i, (uint64_t)j, -b, b);
    }
    if (t->w.rho) /* tau starts at the configured temperature */
        t->w.rho[0] = (float)log(t->cfg.temperature);
}

static int64_t count_numel(const attn_transfer_config *c)
{
    tensor_spec s[ATTN_TRANSFER_MAX_TENSORS];
    const int n = tensor_specs(c, s);
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += (s[i].rows ? s[i].rows : 1) * s[i].cols;
    return total;
}

attn_status attn_transfer_create(attn_backend *be, const attn_transfer_config *cfg,
                                 uint64_t seed, attn_transfer **out)
{
    if (!be || !cfg || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_transfer_create: NULL %s",
                         !be ? "backend" : !cfg ? "config" : "out");
    ATTN_TRY(attn_transfer_config_check(cfg));
    attn_transfer *t = calloc(1, sizeof *t);
    if (!t)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_transfer_create: out of memory");
    t->be = be;
    t->cfg = *cfg;
    t->numel = count_numel(cfg);
    t->value = calloc((size_t)t->numel, sizeof(float));
    t->grad = calloc((size_t)t->numel, sizeof(float));
    if (!t->value || !t->grad) {
        attn_transfer_free(t);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_transfer_create: out of memory for "
                         "%lld parameters", (long long)count_numel(cfg));
    }
    layout(t);
    init_params(t, seed);
    *out = t;
    return attn_ok();
}

void attn_transfer_free(attn_transfer *t)
{
    if (!t)
        return;
    attn_transfer_tape_free(&t->tape);
    free(t->value);
    free(t->grad);
    free(t->adam_m);
    free(t->adam_v);
    free(t);
}

const attn_transfer_config *attn_transfer_get_config(const attn_transfer *t)
{
    return t ? &t->cfg : NULL;
}

int64_t attn_transfer_alpha_rows(const attn_transfer *t, int64_t n)
{
    if (!t)
        return 0;
    return attn_transfer_rows(&t->cfg, n);
}

int64_t attn_transfer_param_count(const attn_transfer *t)
{
    return t ? t->ntensor : 0;
}

attn_status attn_transfer_param_get(attn_transfer *t, int64_t i, attn_transfer_param *p)
{
    if (!t || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_transfer_param_get: NULL %s",
                         !t ? "model" : "param");
    if (i < 0 || i >= t->ntensor)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "attn_transfer_param_get: index %lld outside [0, %lld)", (long long)i,
                         (long long)t->ntensor);
    *p = t->param[i];
    return attn_ok();
}

attn_status attn_transfer_param_find(attn_transfer *t, const char *name, attn_transfer_param *p)
{
    if (!t || !name || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_transfer_param_find: NULL %s",
                         !t ? "model" : !name ? "name" : "param");
    for (int64_t i = 0; i < t->ntensor; i++)
        if (!strcmp(t->param[i].name, name)) {
            *p = t->param[i];
            return attn_ok();
        }
    return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "transfer: no parameter named \"%s\"", name);
}

void attn_transfer_zero_grad(attn_transfer *t)
{
    if (t)
        memset(t->grad, 0, (size_t)t->numel * sizeof(float));
}
