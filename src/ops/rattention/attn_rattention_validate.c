/* attn_rattention_validate.c - validation of a RATTENTION forward or decode call and its
 * normalisation into an attn_rattention_problem (view checks from the core's attn_view.c and
 * attn_qkv.c), and the linear attention sub-problem of the residual branch. The only place
 * RATTENTION user input is checked: every backend trusts its result. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_qkv.h"
#include "attn_rattention_problem.h"

#include <math.h>
#include <string.h>

#define MAX_OFFSET ((int64_t)1 << 40)
#define ZERO_BATCH 1u /* batch may be 0: nothing computed */

static attn_dim_names dims_gamma = {"-", "-", "head", "value"};
static attn_dim_names dims_ring = {"batch", "slot", "kv_head", "dim"};

static attn_status check_desc(const attn_rattention_desc *d)
{
    ATTN_TRY(ATTN_DESC_RESERVED(d, "attn_rattention_desc_default"));
    if (d->window < -1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.window = %lld must be >= -1 (-1: no "
                         "sliding-window branch)", (long long)d->window);
    if (d->feature != ATTN_LINEAR_SOFTMAX_PAIR && d->feature != ATTN_LINEAR_RELU_PAIR)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.feature = %d: RATTENTION's feature map "
                         "is ATTN_LINEAR_SOFTMAX_PAIR or ATTN_LINEAR_RELU_PAIR", (int)d->feature);
    ATTN_TRY(attn_desc_enum("rope", (int)d->rope, ATTN_ROPE_INTERLEAVED, "attn_rope_layout"));
    if (!isfinite(d->rope_theta) || !(d->rope_theta > 0.0))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.rope_theta = %g must be finite and > 0",
                         d->rope_theta);
    if (d->offset > MAX_OFFSET || d->offset < -MAX_OFFSET)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.offset = %lld: |offset| must be <= "
                         "2^40", (long long)d->offset);
    if (!isfinite(d->scale))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.scale = %g must be finite (0 selects "
                         "1/sqrt(Dk))", (double)d->scale);
    if (!isfinite(d->eps) || d->eps < 0.0f)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.eps = %g must be finite and >= 0 (0 "
                         "selects 1e-8)", (double)d->eps);
    return ATTN_OK;
}

attn_status attn_rattention_check_gamma(const attn_tensor *t, const char *name, int64_t Hq,
                                        int64_t Dv, attn_span *s)
{
    ATTN_TRY(attn_view_check(t, name, ATTN_DTYPES_F32, dims_gamma, 0, s));
    ATTN_TRY(attn_view_expect_dim(t, name, dims_gamma, 0, 1, "gammas are [1, 1, Hq, Dv]"));
    ATTN_TRY(attn_view_expect_dim(t, name, dims_gamma, 1, 1, "gammas are [1, 1, Hq, Dv]"));
    ATTN_TRY(attn_view_expect_dim(t, name, dims_gamma, 2, Hq, "Hq of q: one norm per head"));
    return attn_view_expect_dim(t, name, dims_gamma, 3, Dv, "Dv of v");
}

attn_status attn_rattention_check_state(const attn_tensor *t, const char *name, int64_t B,
                                        int64_t Hkv, int64_t Df, int64_t Dv, attn_span *s)
{
    return attn_view_check_state(t, name, B, Hkv, Df, "2 Dk: features of the paired map", Dv,
                                 "Dv of v", s);
}

/* [B, w + 1, Hkv, D] in any float dtype. */
static attn_status check_ring(const attn_tensor *t, const char *name, int64_t B, int64_t slots,
                              int64_t Hkv, int64_t D, const char *dwhat, attn_span *s)
{
    ATTN_TRY(attn_view_check(t, name, ATTN_DTYPES_FLOAT, dims_ring, ZERO_BATCH, s));
    ATTN_TRY(attn_view_expect_dim(t, name, dims_ring, 0, B, "batch of q"));
    ATTN_TRY(attn_view_expect_dim(t, name, dims_ring, 1, slots, "desc.window + 1 slots"));
    ATTN_TRY(attn_view_expect_dim(t, name, dims_ring, 2, Hkv, "Hkv of k"));
    return attn_view_expect_dim(t, name, dims_ring, 3, D, dwhat);
}

/* Operands in one order for both calls: inputs first, then outputs (decode: the ring and the
 * state are read and written, so they are checked as outputs). */
enum { OP_Q, OP_K, OP_V, OP_GSWA, OP_GRLA, OP_SIN, OP_OUT, OP_SOUT, OP_KRING, OP_VRING,
       OP_STATE, N_OPS };

static attn_status check_views(const attn_rattention_desc *d, const attn_tensor *const t[N_OPS],
                               attn_span s[N_OPS])
{
    static const int qkv_at[4] = {OP_Q, OP_K, OP_V, OP_OUT};
    ATTN_TRY(attn_qkv_check_self(t, qkv_at, s));
    const int64_t B = t[OP_Q]->shape[0], Hq = t[OP_Q]->shape[2], Dk = t[OP_Q]->shape[3];
    const int64_t Hkv = t[OP_K]->shape[2], Dv = t[OP_V]->shape[3];
    if (Dk % 2)
        return attn_fail(ATTN_ERR_SHAPE, "q: dim = %lld must be even (RoPE rotates pairs of "
                         "features)", (long long)Dk);
    if (t[OP_GSWA])
        ATTN_TRY(attn_rattention_check_gamma(t[OP_GSWA], "gamma_swa", Hq, Dv, &s[OP_GSWA]));
    if (t[OP_GRLA])
        ATTN_TRY(attn_rattention_check_gamma(t[OP_GRLA], "gamma_rla", Hq, Dv, &s[OP_GRLA]));
    if (t[OP_SIN])
        ATTN_TRY(attn_rattention_check_state(t[OP_SIN], "state_in", B, Hkv, 2 * Dk, Dv, &s[OP_SIN]));
    if (t[OP_SOUT])
        ATTN_TRY(attn_rattention_check_state(t[OP_SOUT], "state_out", B, Hkv, 2 * Dk, Dv, &s[OP_SOUT]));
    if (t[OP_STATE])
        ATTN_TRY(attn_rattention_check_state(t[OP_STATE], "cache.state", B, Hkv, 2 * Dk, Dv, &s[OP_STATE]));
    const int64_t slots = d->window < MAX_OFFSET ? d->window + 1 : MAX_OFFSET;
    if (t[OP_KRING])
        ATTN_TRY(check_ring(t[OP_KRING], "cache.k_ring", B, slots, Hkv, Dk, "Dk of k",
                            &s[OP_KRING]));
    if (t[OP_VRING])
        ATTN_TRY(check_ring(t[OP_VRING], "cache.v_ring", B, slots, Hkv, Dv, "Dv of v",
                            &s[OP_VRING]));
    static const char *const names[N_OPS] = {"q", "k", "v", "gamma_swa", "gamma_rla", "state_in",
                                              "out", "state_out", "cache.k_ring", "cache.v_ring",
                                              "cache.state"};
    return attn_view_check_outputs(t, s, names, OP_OUT, N_OPS);
}

/* Everything but the views: sizes and resolved scalars. */
static void fill_problem(const attn_rattention_desc *d, const attn_tensor *const t[N_OPS],
                         attn_rattention_problem *p)
{
    memset(p, 0, sizeof *p);
    ATTN_QKV_SIZES(p, t[OP_Q], t[OP_K], t[OP_V]);
    p->S = t[OP_Q]->shape[1];
    p->Df = 2 * p->Dk;
    p->window = d->window;
    p->swa = d->window >= 0;
    p->shift = d->window < p->S ? d->window + 1 : p->S + 1; /* S + 1: no key enters */
    p->feature = d->feature;
    p->rope = d->rope;
    p->theta = d->rope_theta;
    p->offset = d->offset;
    p->scale = d->scale != 0.0f ? (double)d->scale : 1.0 / sqrt((double)p->Dk);
    p->eps = d->eps != 0.0f ? (double)d->eps : ATTN_RATTENTION_EPS_DEFAULT;
    attn_operand *ops[N_OPS] = {&p->q, &p->k, &p->v, &p->gamma_swa, &p->gamma_rla,
                                &p->state_in, &p->out, &p->state_out, &p->k_ring, &p->v_ring,
                                &p->state};
    for (int i = 0; i < N_OPS; i++)
        attn_operand_fill(ops[i], t[i]);
}

static attn_status check_common(const attn_rattention_desc *d, const attn_tensor *q,
                                const attn_tensor *k, const attn_tensor *v,
                                const attn_tensor *out, const attn_rattention_problem *p)
{
    if (!d || !q || !k || !v || !out || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rattention: %s is NULL",
                         !d ? "desc" : !q ? "q" : !k ? "k" : !v ? "v" : !out ? "out" : "problem");
    return check_desc(d);
}

attn_status attn_rattention_validate(const attn_rattention_desc *d, const attn_tensor *q,
                                     const attn_tensor *k, const attn_tensor *v,
                                     const attn_tensor *out, const attn_rattention_io *io,
                                     attn_rattention_problem *p)
{
    static const attn_rattention_io none = {NULL, NULL, NULL, NULL};
    ATTN_TRY(check_common(d, q, k, v, out, p));
    if (!io)
        io = &none;
    const attn_tensor *t[N_OPS] = {q, k, v, io->gamma_swa, io->gamma_rla, io->state_in, out,
                                   io->state_out, NULL, NULL, NULL};
    attn_span s[N_OPS];
    ATTN_TRY(check_views(d, t, s));
    fill_problem(d, t, p);
    return ATTN_OK;
}

attn_status attn_rattention_validate_decode(const attn_rattention_desc *d,
                                            const attn_rattention_cache *cache,
                                            const attn_tensor *q, const attn_tensor *k,
                                            const attn_tensor *v, const attn_tensor *out,
                                            const attn_rattention_io *io,
                                            attn_rattention_problem *p)
{
    static const attn_rattention_io none = {NULL, NULL, NULL, NULL};
    ATTN_TRY(check_common(d, q, k, v, out, p));
    if (!cache)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rattention_decode: cache is NULL");
    if (!io)
        io = &none;
    if (io->state_in || io->state_out)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "attn_rattention_decode: io.%s must be NULL "
                         "(the cache holds the state)", io->state_in ? "state_in" : "state_out");
    if (!cache->state)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rattention_decode: cache.state is NULL");
    if (d->window >= 0 && (!cache->k_ring || !cache->v_ring))
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rattention_decode: cache.%s is NULL (a "
                         "window of %lld needs a ring of %lld slots)",
                         !cache->k_ring ? "k_ring" : "v_ring", (long long)d->window,
                         (long long)d->window + 1);
    if (d->window >= MAX_OFFSET)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "attn_rattention_decode: desc.window = %lld "
                         "needs a ring of window + 1 slots: at most 2^40", (long long)d->window);
    if (d->window < 0 && (cache->k_ring || cache->v_ring))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "attn_rattention_decode: cache.%s must be "
                         "NULL with desc.window = -1 (no sliding-window branch)",
                         cache->k_ring ? "k_ring" : "v_ring");
    if (cache->pos < 0 || cache->pos > MAX_OFFSET)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "cache.pos = %lld must be in [0, 2^40]",
                         (long long)cache->pos);
    const attn_tensor *t[N_OPS] = {q, k, v, io->gamma_swa, io->gamma_rla, NULL, out, NULL,
                                   cache->k_ring, cache->v_ring, cache->state};
    attn_span s[N_OPS];
    ATTN_TRY(check_views(d, t, s));
    if (cache->pos + q->shape[1] > MAX_OFFSET || d->offset + cache->pos > MAX_OFFSET)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "cache.pos + seq of q = %lld: positions "
                         "must stay <= 2^40", (long long)(cache->pos + q->shape[1]));
    fill_problem(d, t, p);
    p->decode = 1;
    p->pos = cache->pos;
    p->slots = d->window + 1;
    p->shift = d->window + 1; /* decode reads the ring, not rows of the call */
    p->offset = d->offset + cache->pos;
    return ATTN_OK;
}

void attn_rattention_rla_problem(const attn_rattention_problem *p, attn_linear_problem *lp)
{
    memset(lp, 0, sizeof *lp);
    lp->B = p->B;
    lp->S = p->S;
    lp->Hq = p->Hq;
    lp->Hkv = p->Hkv;
    lp->Dk = p->Dk;
    lp->Dv = p->Dv;
    lp->Df = p->Df;
    lp->group = p->group;
    lp->feature = p->feature;
    lp->normalize = 0;
    lp->causal = 1;
    lp->scale = 1.0;
    lp->shift = p->shift;
    lp->q = p->q;
    lp->k = p->k;
    lp->v = p->v;
    lp->state_in = p->state_in;
    lp->state_out = p->state_out;
}
