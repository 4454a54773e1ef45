/* attn_linear_validate.c - validation of a linear attention call and its normalisation into an
 * attn_linear_problem (view checks from the core's attn_view.c), and Lightning Attention's
 * decay slopes. The only place linear attention user input is checked: every backend trusts
 * its result. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_linear_problem.h"
#include "attn_qkv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ALiBi's slopes for n heads, n a power of two: 2^(-8(g+1)/n). */
static double slope_pow2(int64_t n, int64_t g)
{
    return exp2(-8.0 * (double)(g + 1) / (double)n);
}

/* ALiBi / TransNormerLLM _build_slope_tensor: the slopes of the closest power of two below
 * hkv, then every second slope of twice that many heads. */
void attn_linear_slopes(int64_t hkv, double *log_decay)
{
    int64_t p2 = 1;
    while (p2 * 2 <= hkv)
        p2 *= 2;
    for (int64_t g = 0; g < hkv; g++)
        log_decay[g] = -(g < p2 ? slope_pow2(p2, g) : slope_pow2(2 * p2, 2 * (g - p2)));
}

static attn_status check_desc(const attn_linear_desc *d)
{
    ATTN_TRY(ATTN_DESC_RESERVED(d, "attn_linear_desc_default"));
    ATTN_TRY(attn_desc_enum("feature", (int)d->feature, ATTN_LINEAR_RELU_PAIR,
                            "attn_linear_feature"));
    ATTN_TRY(attn_desc_flag("normalize", d->normalize));
    ATTN_TRY(attn_desc_flag("causal", d->causal));
    if (!(d->eps >= 0.0f) || isinf(d->eps))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.eps = %g must be finite and >= 0",
                         (double)d->eps);
    if (!isfinite(d->scale) || d->scale == 0.0f)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.scale = %g must be finite and nonzero",
                         (double)d->scale);
    ATTN_TRY(attn_desc_enum("decay", (int)d->decay, ATTN_LINEAR_DECAY_GIVEN,
                            "attn_linear_decay"));
    if (d->decay != ATTN_LINEAR_DECAY_NONE && !d->causal)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "desc.decay needs causal (the decay weighs keys by their distance in "
                         "the past)");
    if (d->decay == ATTN_LINEAR_DECAY_GIVEN && !d->decay_values)
        return attn_fail(ATTN_ERR_NULL_POINTER,
                         "desc.decay_values is NULL with ATTN_LINEAR_DECAY_GIVEN");
    if (d->decay != ATTN_LINEAR_DECAY_GIVEN && d->decay_values)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "desc.decay_values is set but desc.decay is not ATTN_LINEAR_DECAY_GIVEN");
    return ATTN_OK;
}

attn_status attn_linear_check_state(const attn_tensor *t, const char *name, int64_t B,
                                    int64_t Hkv, int64_t Df, int64_t cols, attn_span *s)
{
    return attn_view_check_state(t, name, B, Hkv, Df, "features of phi: Dk, 2 Dk for paired maps",
                                 cols, cols == 1 ? "z holds one column" : "Dv of v", s);
}

/* The normaliser's running sum travels with the state exactly when the call normalises. */
static attn_status check_state_set(const attn_linear_desc *d, const attn_linear_state *st)
{
    if (!d->normalize && (st->z_in || st->z_out))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s is given but desc.normalize is 0 (z is "
                         "the normaliser's running sum)", st->z_in ? "z_in" : "z_out");
    if (d->normalize && st->state_in && !st->z_in)
        return attn_fail(ATTN_ERR_NULL_POINTER, "state_in with desc.normalize needs z_in (the "
                         "normaliser's running sum of phi(k))");
    if (d->normalize && st->state_out && !st->z_out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "state_out with desc.normalize needs z_out (a "
                         "resumed call needs the normaliser's running sum too)");
    if ((st->z_in && !st->state_in) || (st->z_out && !st->state_out))
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s without %s", st->z_in && !st->state_in ?
                         "z_in" : "z_out", st->z_in && !st->state_in ? "state_in" : "state_out");
    return ATTN_OK;
}

/* Decay values given by the user: each in (0, 1]. */
static attn_status fill_decay(const attn_linear_desc *d, int64_t hkv, double *ld)
{
    if (d->decay == ATTN_LINEAR_DECAY_SLOPES) {
        attn_linear_slopes(hkv, ld);
        return ATTN_OK;
    }
    for (int64_t g = 0; g < hkv; g++) {
        float x = d->decay_values[g];
        if (!(x > 0.0f && x <= 1.0f))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "desc.decay_values[%lld] = %g must be in (0, 1]", (long long)g,
                             (double)x);
        ld[g] = log((double)x);
    }
    return ATTN_OK;
}

#define N_OPS 8
enum { OP_Q, OP_K, OP_V, OP_SIN, OP_ZIN, OP_OUT, OP_SOUT, OP_ZOUT };

static attn_status check_views(const attn_linear_desc *d, const attn_tensor *const t[N_OPS],
                               attn_span s[N_OPS])
{
    static const int qkv_at[4] = {OP_Q, OP_K, OP_V, OP_OUT};
    ATTN_TRY(attn_qkv_check_self(t, qkv_at, s));
    const int64_t B = t[OP_Q]->shape[0], Hkv = t[OP_K]->shape[2];
    const int64_t Df = attn_linear_features(d->feature, t[OP_Q]->shape[3]);
    static const char *const st_names[] = {"state_in", "z_in", "state_out", "z_out"};
    static const int st_ops[] = {OP_SIN, OP_ZIN, OP_SOUT, OP_ZOUT};
    for (int i = 0; i < 4; i++)
        if (t[st_ops[i]])
            ATTN_TRY(attn_linear_check_state(t[st_ops[i]], st_names[i], B, Hkv, Df,
                                 i % 2 ? 1 : t[OP_V]->shape[3], &s[st_ops[i]]));
    static const char *const names[N_OPS] = {"q", "k", "v", "state_in", "z_in", "out",
                                              "state_out", "z_out"};
    return attn_view_check_outputs(t, s, names, OP_OUT, N_OPS);
}

attn_status attn_linear_validate(const attn_linear_desc *d, const attn_tensor *q,
                                 const attn_tensor *k, const attn_tensor *v,
                                 const attn_tensor *out, const attn_linear_state *st,
                                 attn_linear_problem *p)
{
    static const attn_linear_state none = {NULL, NULL, NULL, NULL};
    if (!d || !q || !k || !v || !out || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_linear: %s is NULL",
                         !d ? "desc" : !q ? "q" : !k ? "k" : !v ? "v" : !out ? "out" : "problem");
    if (!st)
        st = &none;
    ATTN_TRY(check_desc(d));
    ATTN_TRY(check_state_set(d, st));
    const attn_tensor *t[N_OPS] = {q, k, v, st->state_in, st->z_in, out, st->state_out,
                                   st->z_out};
    attn_span s[N_OPS];
    ATTN_TRY(check_views(d, t, s));
    double *ld = NULL;
    if (d->decay != ATTN_LINEAR_DECAY_NONE) {
        ld = malloc(sizeof(double) * (size_t)k->shape[2]);
        if (!ld)
            return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_linear: cannot allocate %lld decay "
                             "values", (long long)k->shape[2]);
        attn_status dst = fill_decay(d, k->shape[2], ld);
        if (dst != ATTN_OK) {
            free(ld);
            return dst;
        }
    }
    memset(p, 0, sizeof *p);
    ATTN_QKV_SIZES(p, q, k, v);
    p->S = q->shape[1];
    p->Df = attn_linear_features(d->feature, p->Dk);
    p->feature = d->feature;
    p->normalize = d->normalize;
    p->eps = d->eps;
    p->causal = d->causal;
    p->scale = d->scale;
    p->log_decay = ld;
    attn_operand *ops[N_OPS] = {&p->q, &p->k, &p->v, &p->state_in, &p->z_in, &p->out,
                                &p->state_out, &p->z_out};
    for (int i = 0; i < N_OPS; i++)
        attn_operand_fill(ops[i], t[i]);
    return ATTN_OK;
}

void attn_linear_problem_release(attn_linear_problem *p)
{
    free(p->log_decay);
    p->log_decay = NULL;
}
