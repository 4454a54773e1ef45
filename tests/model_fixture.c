/* model_fixture.c - the BERT encoder suites' shared configuration, batch, parameters, buffers
 * and comparisons (see model_fixture.h). */
#include "model_fixture.h"

#include "attn_rng.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const model_fx_backends[MODEL_FX_N_BACKENDS] = {"ref", "cpu", "opencl"};

attn_backend *model_fx_open(const char *name)
{
    attn_backend *be = NULL;
    if (attn_backend_open(name, NULL, &be) == ATTN_OK)
        return be;
    fprintf(stderr, "skipping backend %s: %s\n", name, attn_last_error());
    return NULL;
}

attn_model_config model_fx_config(void)
{
    attn_model_config c = attn_model_config_default();
    c.vocab_size = 23;
    c.hidden_size = 16;
    c.num_layers = 2;
    c.num_heads = 4;
    c.intermediate_size = 24;
    c.max_positions = 12;
    c.type_vocab_size = 2;
    c.num_labels = 3;
    c.pad_token_id = 0;
    return c;
}

void model_fx_batch_fill(model_fx_batch *b, uint64_t seed)
{
    enum { B = MODEL_FX_B, S = MODEL_FX_S };
    static const int tokens[B] = {S, 4};                 /* row 1: three padded positions */
    static const int first_type1[B] = {4, 2}, last_type1[B] = {S - 1, 3};
    const int64_t vocab = model_fx_config().vocab_size;
    memset(b, 0, sizeof *b);
    for (int r = 0; r < B; r++)
        for (int s = 0; s < S; s++) {
            const int e = r * S + s, token = s < tokens[r];
            b->ids[e] = token ? 1 + (int32_t)(attn_rng_bits(seed, 1, (uint64_t)e) %
                                              (uint64_t)(vocab - 1))
                              : 0;
            b->mask[e] = (uint8_t)token;
            b->types[e] = token && s >= first_type1[r] && s <= last_type1[r];
        }
    b->ids[0] = b->ids[S] = 2; /* a word-embedding row that two tokens share */
    b->labels[0] = 0;
    b->labels[1] = 2;
    b->in.batch = B;
    b->in.seq = S;
    b->in.ids = b->ids;
    b->in.attention_mask = b->mask;
    b->in.token_types = b->types;
}

/* ---- parameters ---------------------------------------------------------------------------- */

static double draw(attn_model_param *p, uint64_t seed, int64_t i, int64_t k)
{
    const double u = attn_rng_uniform(seed, 100 + (uint64_t)i, (uint64_t)k, -1.0, 1.0);
    if (strstr(p->name, "_embeddings."))
        return u;
    if (strstr(p->name, "LayerNorm.weight"))
        return 1.0 + 0.3 * u;
    if (p->ndim == 1)
        return 0.2 * u; /* a bias */
    return sqrt(3.0 / (double)p->shape[1]) * u; /* a Linear weight [out, in] */
}

void model_fx_randomize(attn_model *m, uint64_t seed)
{
    for (int64_t i = 0; i < attn_model_param_count(m); i++) {
        attn_model_param p;
        ck_assert_msg(attn_model_param_get(m, i, &p) == ATTN_OK, "%s", attn_last_error());
        for (int64_t k = 0; k < p.numel; k++)
            p.value[k] = (float)draw(&p, seed, i, k);
    }
}

attn_model *model_fx_model(attn_backend *be, uint64_t seed)
{
    const attn_model_config cfg = model_fx_config();
    attn_model *m = NULL;
    ck_assert_msg(attn_model_create(be, &cfg, seed, &m) == ATTN_OK, "%s", attn_last_error());
    model_fx_randomize(m, seed);
    return m;
}

/* ---- buffers ------------------------------------------------------------------------------- */

model_fx_sizes model_fx_sizes_of(const attn_model_config *c, int64_t B, int64_t S)
{
    const int64_t L = c->num_layers, H = c->num_heads, d = c->hidden_size;
    return (model_fx_sizes){.logits = B * c->num_labels,
                            .attentions = L * B * H * S * S,
                            .key_score = L * B * S * H,
                            .hidden = (L + 1) * B * S * d,
                            .attn_residual = L * B * S * d,
                            .pooled = B * d};
}

static float *fnew(int64_t n)
{
    float *a = malloc((size_t)n * sizeof(float));
    ck_assert_ptr_nonnull(a);
    for (int64_t i = 0; i < n; i++)
        a[i] = NAN;
    return a;
}

static double *dnew(int64_t n)
{
    double *a = calloc((size_t)n, sizeof(double));
    ck_assert_ptr_nonnull(a);
    return a;
}

attn_model_outputs model_fx_outputs_new(const attn_model_config *cfg, int64_t B, int64_t S)
{
    const model_fx_sizes n = model_fx_sizes_of(cfg, B, S);
    return (attn_model_outputs){.logits = fnew(n.logits),
                                .attentions = fnew(n.attentions),
                                .key_score = fnew(n.key_score),
                                .hidden = fnew(n.hidden),
                                .attn_residual = fnew(n.attn_residual),
                                .pooled = fnew(n.pooled)};
}

void model_fx_outputs_free(attn_model_outputs *o)
{
    free(o->logits);
    free(o->attentions);
    free(o->key_score);
    free(o->hidden);
    free(o->attn_residual);
    free(o->pooled);
}

attn_ref_model_out model_fx_ref_new(const attn_model_config *cfg, int64_t B, int64_t S)
{
    const model_fx_sizes n = model_fx_sizes_of(cfg, B, S);
    return (attn_ref_model_out){.logits = dnew(n.logits),
                                .attentions = dnew(n.attentions),
                                .key_score = dnew(n.key_score),
                                .hidden = dnew(n.hidden),
                                .attn_residual = dnew(n.attn_residual),
                                .pooled = dnew(n.pooled)};
}

void model_fx_ref_free(attn_ref_model_out *o)
{
    free(o->logits);
    free(o->attentions);
    free(o->key_score);
    free(o->hidden);
    free(o->attn_residual);
    free(o->pooled);
}

/* ---- comparisons --------------------------------------------------------------------------- */

double model_fx_rel_err(const float *got, const double *ref, int64_t n, int64_t *at)
{
    double diff = 0.0, mag = 0.0;
    *at = 0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - ref[i]);
        if (isnan(e)) {
            *at = i;
            return INFINITY;
        }
        if (e > diff) {
            diff = e;
            *at = i;
        }
        mag = fmax(mag, fabs(ref[i]));
    }
    return mag > 0.0 ? diff / mag : diff;
}

void model_fx_expect_close(const float *got, const double *ref, int64_t n, double tol,
                           const char *what)
{
    int64_t at;
    const double err = model_fx_rel_err(got, ref, n, &at);
    ck_assert_msg(err <= tol, "%s: relative error %.3g > %.3g (element %lld: %.9g, reference "
                  "%.9g)", what, err, tol, (long long)at, (double)got[at], ref[at]);
}

void model_fx_ref_forward(const attn_model *m, const attn_model_input *in,
                          const attn_ref_model_out *o)
{
    ck_assert_msg(attn_ref_model_forward(attn_model_get_config(m), attn_model_values(m), in, o) ==
                      ATTN_OK, "reference forward: %s", attn_last_error());
}

void model_fx_bad_adamw(attn_model_adamw bad[MODEL_FX_N_BAD_ADAMW])
{
    for (int i = 0; i < MODEL_FX_N_BAD_ADAMW; i++)
        bad[i] = attn_model_adamw_default();
    bad[0].lr = -1e-3;
    bad[1].beta1 = 1.0;
    bad[2].beta2 = -0.1;
    bad[3].eps = 0.0;
    bad[4].weight_decay = NAN;
    bad[5].clip_norm = -1.0;
    bad[6].reserved[3] = 1;
}
