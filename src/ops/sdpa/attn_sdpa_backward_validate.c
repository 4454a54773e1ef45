/* attn_sdpa_backward_validate.c - validation of an SDPA backward call: the forward's checks on
 * q, k, v, out, lse and the masks (attn_sdpa_validate), then dout and the gradients, whose
 * shapes follow the tensors they differentiate. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_sdpa_problem.h"

#include <string.h>

/* Every dim of t equal to that of `like` (named like_name in messages). */
static attn_status same_shape(const attn_tensor *t, const char *name, const attn_tensor *like,
                              const char *like_name, attn_dim_names dims)
{
    for (int i = 0; i < 4; i++)
        ATTN_TRY(attn_view_expect_dim(t, name, dims, i, like->shape[i], like_name));
    return ATTN_OK;
}

/* The operands of a backward call: inputs, then the gradients. */
enum { B_Q, B_K, B_V, B_MADD, B_MBOOL, B_OUT, B_LSE, B_DOUT, B_DQ, B_DK, B_DV, B_DMASK, B_N };

static attn_status check_grads(const attn_sdpa_desc *d, const attn_tensor *const *t,
                               attn_span *s)
{
    static const char *const like[B_N] = {[B_DOUT] = "out", [B_DQ] = "q", [B_DK] = "k",
                                          [B_DV] = "v", [B_DMASK] = "mask_add"};
    static const int of[B_N] = {[B_DOUT] = B_OUT, [B_DQ] = B_Q, [B_DK] = B_K, [B_DV] = B_V,
                                [B_DMASK] = B_MADD};
    static const char *const names[B_N] = {"dout", "dq", "dk", "dv", "dmask_add"};
    if (t[B_DMASK] && !d->mask_add)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "grads.dmask_add is given but desc.mask_add is NULL (nothing to "
                         "differentiate)");
    for (int i = B_DOUT; i < B_N; i++) {
        const char *name = names[i - B_DOUT];
        if (!t[i])
            continue;
        const int mask = i == B_DMASK;
        ATTN_TRY(attn_view_check(t[i], name, mask ? ATTN_DTYPES_F32 : ATTN_DTYPES_FLOAT,
                                 mask ? attn_dims_mask : attn_dims_bshd,
                                 mask || i == B_DQ || i == B_DOUT ? 3u : 1u, &s[i]));
        ATTN_TRY(same_shape(t[i], name, t[of[i]], like[i], mask ? attn_dims_mask
                                                                   : attn_dims_bshd));
    }
    static const char *const all[B_N] = {"q", "k", "v", "mask_add", "mask_bool", "out", "lse",
                                         "dout", "grads.dq", "grads.dk", "grads.dv",
                                         "grads.dmask_add"};
    return attn_view_check_outputs(t, s, all, B_DQ, B_N);
}

/* Spans of the forward's operands, for the overlap checks against the gradients. */
static attn_status input_spans(const attn_tensor *const *t, attn_span *s)
{
    static const char *const names[B_DOUT] = {"q", "k", "v", "mask_add", "mask_bool", "out",
                                              "lse"};
    for (int i = 0; i < B_DOUT; i++)
        if (t[i])
            ATTN_TRY(attn_view_check(t[i], names[i], ~0u,
                                     i == B_MADD || i == B_MBOOL ? attn_dims_mask
                                                                 : attn_dims_bshd,
                                     15u, &s[i]));
    return ATTN_OK;
}

attn_status attn_sdpa_validate_backward(const attn_sdpa_desc *d, const attn_tensor *q,
                                        const attn_tensor *k, const attn_tensor *v,
                                        const attn_tensor *out, const attn_tensor *lse,
                                        const attn_tensor *dout, const attn_sdpa_grads *g,
                                        attn_sdpa_problem *p)
{
    if (!g || !dout || !lse)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_sdpa_backward: %s is NULL%s",
                         !g ? "grads" : !dout ? "dout" : "lse",
                         lse ? "" : " (the backward needs the forward's lse)");
    if (!g->dq || !g->dk || !g->dv)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_sdpa_backward: grads.%s is NULL",
                         !g->dq ? "dq" : !g->dk ? "dk" : "dv");
    ATTN_TRY(ATTN_DESC_RESERVED(g, "a zeroed attn_sdpa_grads"));
    attn_sdpa_problem f;
    ATTN_TRY(attn_sdpa_validate(d, q, k, v, out, lse, &f));
    const attn_tensor *const t[B_N] = {q,    k,     v,     d->mask_add, d->mask_bool,
                                       out,  lse,   dout,  g->dq,       g->dk,
                                       g->dv, g->dmask_add};
    attn_span s[B_N];
    ATTN_TRY(input_spans(t, s));
    ATTN_TRY(check_grads(d, t, s));
    *p = f;
    p->backward = 1;
    attn_operand_fill(&p->dout, dout);
    attn_operand_fill(&p->dq, g->dq);
    attn_operand_fill(&p->dk, g->dk);
    attn_operand_fill(&p->dv, g->dv);
    attn_operand_fill(&p->dmask_add, g->dmask_add);
    return ATTN_OK;
}
