/* attn_model_io.c - a model directory as transformers' save_pretrained writes it: config.json
 * and model.safetensors with BertForSequenceClassification's tensor names. Loading matches
 * each parameter to its tensor (with or without the "bert." prefix, LayerNorm gamma/beta as
 * older checkpoints name them), checks its shape against the configuration and converts it to
 * f32; saving writes f32 tensors that transformers loads unchanged. */
#include "attn_model_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_model_safetensors.h"

/* A path inside dir; ATTN_ERR_INVALID_ARGUMENT when it does not fit. */
static attn_status join(char *buf, size_t n, const char *dir, const char *file)
{
    if ((size_t)snprintf(buf, n, "%s/%s", dir, file) >= n)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "model: path \"%s/%s\" is too long", dir,
                         file);
    return ATTN_OK;
}

/* The checkpoint's tensor for parameter `name`: the name itself, without "bert.", or with the
 * LayerNorm's older gamma/beta. */
static const attn_st_tensor *find_tensor(const attn_st_file *f, const char *name)
{
    char alt[ATTN_MODEL_NAME_MAX + 8];
    const char *bare = strncmp(name, "bert.", 5) == 0 ? name + 5 : name;
    const attn_st_tensor *t = attn_st_find(f, name);
    if (!t)
        t = attn_st_find(f, bare);
    const char *ln = strstr(name, "LayerNorm.");
    for (int pass = 0; !t && ln && pass < 2; pass++) {
        const char *base = pass ? bare : name;
        const size_t stem = (size_t)(strstr(base, "LayerNorm.") - base) + strlen("LayerNorm.");
        snprintf(alt, sizeof alt, "%.*s%s", (int)stem, base,
                 strcmp(ln + strlen("LayerNorm."), "weight") == 0 ? "gamma" : "beta");
        t = attn_st_find(f, alt);
    }
    return t;
}

static int is_head(const char *name)
{
    return strncmp(name, "bert.pooler.", 12) == 0 || strncmp(name, "classifier.", 11) == 0;
}

static attn_status load_param(attn_model *m, const attn_st_file *f, int64_t i, unsigned flags,
                              uint64_t seed, const char *path)
{
    const attn_model_param *p = &m->param[i];
    const attn_st_tensor *t = find_tensor(f, p->name);
    if (!t) {
        if ((flags & ATTN_MODEL_LOAD_NEW_HEAD) && is_head(p->name)) {
            attn_model_init_params(m, seed, i, i + 1);
            return ATTN_OK;
        }
        return attn_fail(ATTN_ERR_FORMAT, "%s: missing tensor \"%s\"%s", path, p->name,
                         is_head(p->name) ? " (a checkpoint without a classification head "
                                            "loads with ATTN_MODEL_LOAD_NEW_HEAD / --new-head)"
                                          : "");
    }
    const int ok = t->ndim == p->ndim && t->shape[0] == p->shape[0] &&
                   (p->ndim == 1 || t->shape[1] == p->shape[1]);
    if (!ok) {
        char got[96] = "", want[64];
        for (int k = 0; k < t->ndim && strlen(got) < 80; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? ", " : "",
                     (long long)t->shape[k]);
        if (p->ndim == 1)
            snprintf(want, sizeof want, "%lld", (long long)p->shape[0]);
        else
            snprintf(want, sizeof want, "%lld, %lld", (long long)p->shape[0],
                     (long long)p->shape[1]);
        return attn_fail(ATTN_ERR_SHAPE,
                         "%s: tensor \"%s\" has shape [%s], config.json gives [%s]", path,
                         t->name, got, want);
    }
    return attn_st_to_f32(f, t, p->value);
}

attn_status attn_model_load(attn_backend *be, const char *dir, unsigned flags, uint64_t seed,
                            attn_model **out)
{
    if (!be || !dir || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_load: NULL %s",
                         !be ? "backend" : !dir ? "directory" : "out");
    if (flags & ~ATTN_MODEL_LOAD_NEW_HEAD)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "attn_model_load: unknown flags 0x%x",
                         flags);
    char cpath[4096], wpath[4096];
    attn_status st = join(cpath, sizeof cpath, dir, "config.json");
    if (st == ATTN_OK)
        st = join(wpath, sizeof wpath, dir, "model.safetensors");
    attn_model_config cfg;
    if (st == ATTN_OK)
        st = attn_model_config_read(cpath, &cfg);
    if (st != ATTN_OK)
        return st;
    attn_st_file f;
    st = attn_st_read(wpath, &f);
    if (st != ATTN_OK)
        return st;
    attn_model *m = NULL;
    st = attn_model_alloc(be, &cfg, &m);
    for (int64_t i = 0; st == ATTN_OK && i < m->ntensor; i++)
        st = load_param(m, &f, i, flags, seed, wpath);
    attn_st_close(&f);
    if (st != ATTN_OK) {
        attn_model_free(m);
        return st;
    }
    *out = m;
    return attn_ok();
}

attn_status attn_model_save(const attn_model *m, const char *dir)
{
    if (!m || !dir)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_save: NULL %s",
                         !m ? "model" : "directory");
    char cpath[4096], wpath[4096];
    attn_status st = join(cpath, sizeof cpath, dir, "config.json");
    if (st == ATTN_OK)
        st = join(wpath, sizeof wpath, dir, "model.safetensors");
    if (st != ATTN_OK)
        return st;
    const size_t n = (size_t)m->ntensor;
    const char **names = calloc(n, sizeof *names);
    const float **data = calloc(n, sizeof *data);
    int *ndim = calloc(n, sizeof *ndim);
    int64_t(*shape)[2] = calloc(n, sizeof *shape);
    if (!names || !data || !ndim || !shape) {
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_model_save: out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            names[i] = m->param[i].name;
            data[i] = m->param[i].value;
            ndim[i] = m->param[i].ndim;
            shape[i][0] = m->param[i].shape[0];
            shape[i][1] = m->param[i].shape[1];
        }
        st = attn_st_write_f32(wpath, n, names, data, ndim, (const int64_t(*)[2])shape);
        if (st == ATTN_OK)
            st = attn_model_config_write(&m->cfg, cpath);
    }
    free(names);
    free(data);
    free(ndim);
    free(shape);
    return st == ATTN_OK ? attn_ok() : st;
}
