/* attn_rattention_backward_validate.c - validation of a RATTENTION backward call: the
 * forward's checks (attn_rattention_validate) with dout standing where out stands, then the
 * final state's gradient (an input) and the gradients (outputs), whose shapes follow the
 * tensors they differentiate. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_qkv.h"
#include "attn_rattention_problem.h"

#include <string.h>

/* The operands of a backward call: inputs, then the gradients. */
enum { R_Q, R_K, R_V, R_GS, R_GR, R_SIN, R_DOUT, R_DSOUT, R_DQ, R_DK, R_DV, R_DGS, R_DGR,
       R_DSIN, R_N };

static const char *const names[R_N] = {
    "q",        "k",        "v",        "gamma_swa",        "gamma_rla",
    "state_in", "dout",     "grads.d_state_out", "grads.dq", "grads.dk",
    "grads.dv", "grads.dgamma_swa", "grads.dgamma_rla", "grads.d_state_in"};

static attn_status check_grads(const attn_rattention_problem *p, const attn_tensor *const *t,
                               attn_span *s)
{
    for (int i = R_DSOUT; i < R_N; i++) {
        if (!t[i])
            continue;
        if (i == R_DQ || i == R_DK || i == R_DV) {
            ATTN_TRY(attn_view_check(t[i], names[i], ATTN_DTYPES_FLOAT, attn_dims_bshd, 3u,
                                     &s[i]));
            for (int d = 0; d < 4; d++)
                ATTN_TRY(attn_view_expect_dim(t[i], names[i], attn_dims_bshd, d,
                                              t[i - R_DQ]->shape[d], names[i - R_DQ]));
        } else if (i == R_DGS || i == R_DGR) {
            ATTN_TRY(attn_rattention_check_gamma(t[i], names[i], p->Hq, p->Dv, &s[i]));
        } else {
            ATTN_TRY(attn_rattention_check_state(t[i], names[i], p->B, p->Hkv, p->Df, p->Dv,
                                                 &s[i]));
        }
    }
    return attn_view_check_outputs(t, s, names, R_DQ, R_N);
}

/* Spans of the checked inputs, for the overlap checks against the gradients. */
static attn_status input_spans(const attn_tensor *const *t, attn_span *s)
{
    for (int i = 0; i <= R_DOUT; i++)
        if (t[i])
            ATTN_TRY(attn_view_check(t[i], names[i], ~0u, attn_dims_bshd, 15u, &s[i]));
    return ATTN_OK;
}

attn_status attn_rattention_validate_backward(const attn_rattention_desc *d,
                                              const attn_tensor *q, const attn_tensor *k,
                                              const attn_tensor *v, const attn_rattention_io *io,
                                              const attn_tensor *dout,
                                              const attn_rattention_grads *g,
                                              attn_rattention_problem *p)
{
    static const attn_rattention_io none = {NULL, NULL, NULL, NULL};
    if (!g || !dout)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rattention_backward: %s is NULL",
                         !g ? "grads" : "dout");
    if (!g->dq || !g->dk || !g->dv)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rattention_backward: grads.%s is NULL",
                         !g->dq ? "dq" : !g->dk ? "dk" : "dv");
    ATTN_TRY(ATTN_DESC_RESERVED(g, "a zeroed attn_rattention_grads"));
    if (!io)
        io = &none;
    if (io->state_out)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "attn_rattention_backward: io->state_out "
                         "is given (the backward writes no state: pass the final state's "
                         "gradient as grads.d_state_out)");
    if (g->d_state_in && !io->state_in)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "grads.d_state_in is given but io->state_in is NULL");
    ATTN_TRY(attn_qkv_check_dout(dout, q, v));
    /* dout has out's shape and rules: the forward's checks with dout as out */
    ATTN_TRY(attn_rattention_validate(d, q, k, v, dout, io, p));
    const attn_tensor *const t[R_N] = {q,     k,      v,      io->gamma_swa, io->gamma_rla,
                                       io->state_in,  dout,   g->d_state_out, g->dq,
                                       g->dk, g->dv,  g->dgamma_swa, g->dgamma_rla,
                                       g->d_state_in};
    attn_span s[R_N];
    ATTN_TRY(input_spans(t, s));
    ATTN_TRY(check_grads(p, t, s));
    p->backward = 1;
    p->dout = p->out;
    memset(&p->out, 0, sizeof p->out);
    attn_operand *const ops[] = {&p->d_state_out, &p->dq, &p->dk, &p->dv, &p->dgamma_swa,
                                 &p->dgamma_rla, &p->d_state_in};
    for (int i = R_DSOUT; i < R_N; i++)
        attn_operand_fill(ops[i - R_DSOUT], t[i]);
    return ATTN_OK;
}
