/* attn_linear_backward_validate.c - validation of a linear attention backward call: the
 * forward's checks (attn_linear_validate) with dout standing where out stands, then the final
 * state's gradients (inputs) and the gradients (outputs), whose shapes follow the tensors they
 * differentiate. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_qkv.h"
#include "attn_linear_problem.h"

#include <string.h>

/* The operands of a backward call: inputs, then the gradients. */
enum { L_Q, L_K, L_V, L_SIN, L_ZIN, L_DOUT, L_DSOUT, L_DZOUT, L_DQ, L_DK, L_DV, L_DSIN, L_DZIN,
       L_N };

static const char *const names[L_N] = {"q",       "k",        "v",        "state_in",
                                       "z_in",    "dout",     "d_state_out", "d_z_out",
                                       "grads.dq", "grads.dk", "grads.dv", "grads.d_state_in",
                                       "grads.d_z_in"};

/* Every dim of t equal to that of `like`. */
static attn_status same_shape(const attn_tensor *t, const char *name, const attn_tensor *like,
                              const char *like_name)
{
    for (int i = 0; i < 4; i++)
        ATTN_TRY(attn_view_expect_dim(t, name, attn_dims_bshd, i, like->shape[i], like_name));
    return ATTN_OK;
}

/* What each optional gradient needs beside it. */
static attn_status check_pairs(const attn_linear_desc *d, const attn_linear_state *st,
                               const attn_linear_grads *g)
{
    if (st->state_out || st->z_out)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "attn_linear_backward: st->%s is given (the "
                         "backward writes no state: pass the final state's gradient as "
                         "grads.d_state_out)", st->state_out ? "state_out" : "z_out");
    if (g->d_state_in && !st->state_in)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "grads.d_state_in is given but st->state_in is NULL");
    if (g->d_z_in && !st->z_in)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "grads.d_z_in is given but st->z_in is NULL");
    if (g->d_z_out && !d->normalize)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "grads.d_z_out is given but desc.normalize is 0 (no running sum)");
    return ATTN_OK;
}

static attn_status check_grads(const attn_linear_problem *p, const attn_tensor *const *t,
                               attn_span *s)
{
    for (int i = L_DOUT; i < L_N; i++)
        if (t[i] && i != L_DOUT)
            switch (i) {
            case L_DQ:
            case L_DK:
            case L_DV:
                ATTN_TRY(attn_view_check(t[i], names[i], ATTN_DTYPES_FLOAT, attn_dims_bshd,
                                         3u, &s[i]));
                ATTN_TRY(same_shape(t[i], names[i], t[i - L_DQ], names[i - L_DQ]));
                break;
            default: /* the states: [B, Hkv, Df, Dv] or [B, Hkv, Df, 1] */
                ATTN_TRY(attn_linear_check_state(t[i], names[i], p->B, p->Hkv, p->Df,
                                                 i == L_DZOUT || i == L_DZIN ? 1 : p->Dv,
                                                 &s[i]));
                break;
            }
    return attn_view_check_outputs(t, s, names, L_DQ, L_N);
}

/* Spans of the checked inputs, for the overlap checks against the gradients. */
static attn_status input_spans(const attn_tensor *const *t, attn_span *s)
{
    for (int i = 0; i <= L_DOUT; i++)
        if (t[i])
            ATTN_TRY(attn_view_check(t[i], names[i], ~0u, attn_dims_bshd, 15u, &s[i]));
    return ATTN_OK;
}

attn_status attn_linear_validate_backward(const attn_linear_desc *d, const attn_tensor *q,
                                          const attn_tensor *k, const attn_tensor *v,
                                          const attn_linear_state *st, const attn_tensor *dout,
                                          const attn_linear_grads *g, attn_linear_problem *p)
{
    static const attn_linear_state none = {NULL, NULL, NULL, NULL};
    if (!g || !dout)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_linear_backward: %s is NULL",
                         !g ? "grads" : "dout");
    if (!g->dq || !g->dk || !g->dv)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_linear_backward: grads.%s is NULL",
                         !g->dq ? "dq" : !g->dk ? "dk" : "dv");
    ATTN_TRY(ATTN_DESC_RESERVED(g, "a zeroed attn_linear_grads"));
    if (!st)
        st = &none;
    if (d)
        ATTN_TRY(check_pairs(d, st, g));
    ATTN_TRY(attn_qkv_check_dout(dout, q, v));
    /* dout has out's shape and rules: the forward's checks with dout as out */
    ATTN_TRY(attn_linear_validate(d, q, k, v, dout, st, p));
    const attn_tensor *const t[L_N] = {q,         k,      v,      st->state_in, st->z_in,
                                       dout,      g->d_state_out, g->d_z_out, g->dq,
                                       g->dk,     g->dv,  g->d_state_in, g->d_z_in};
    attn_span s[L_N];
    attn_status r = input_spans(t, s);
    if (r == ATTN_OK)
        r = check_grads(p, t, s);
    if (r != ATTN_OK) {
        attn_linear_problem_release(p);
        return r;
    }
    p->backward = 1;
    p->dout = p->out;
    memset(&p->out, 0, sizeof p->out);
    attn_operand *const ops[] = {&p->d_state_out, &p->d_z_out, &p->dq, &p->dk, &p->dv,
                                 &p->d_state_in, &p->d_z_in};
    for (int i = L_DSOUT; i < L_N; i++)
        attn_operand_fill(ops[i - L_DSOUT], t[i]);
    return ATTN_OK;
}
