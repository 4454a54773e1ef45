/* rattention_impl.c - RATTENTION on the "ref" backend: the f64 definitions of rattention.c
 * (forward), rattention_decode.c (decode step) and rattention_backward.c (gradients), each
 * result rounded once into the caller's dtype and strides: out, state_out, for a decode step
 * the cache's ring and state, for the backward the gradients. */
#include "attn_backend_impl.h"
#include "attn_half.h"
#include "rattention_ref.h"

#include <stdio.h>
#include <stdlib.h>

/* A [n0][n1][n2][n3] f64 result into a 4-D operand. */
static void store4(const attn_operand *o, const double *x, int64_t n0, int64_t n1, int64_t n2,
                   int64_t n3)
{
    for (int64_t a = 0; a < n0; a++)
        for (int64_t b = 0; b < n1; b++)
            for (int64_t c = 0; c < n2; c++)
                for (int64_t d = 0; d < n3; d++)
                    attn_store_f64(o->ptr, o->dtype, attn_at(o, a, b, c, d),
                                   x[((a * n1 + b) * n2 + c) * n3 + d]);
}

/* The backward: the f64 chain rule of rattention_backward.c, rounded once into the gradients. */
static attn_status ref_backward_run(const attn_rattention_problem *p)
{
    attn_rattention_ref_grads g = {
        .dq = attn_ref_alloc(p->B * p->S * p->Hq, p->Dk),
        .dk = attn_ref_alloc(p->B * p->S * p->Hkv, p->Dk),
        .dv = attn_ref_alloc(p->B * p->S * p->Hkv, p->Dv),
        .dgamma_swa = attn_ref_alloc(p->Hq, p->Dv),
        .dgamma_rla = attn_ref_alloc(p->Hq, p->Dv),
        .d_state_in = p->d_state_in.t ? attn_ref_alloc(p->B * p->Hkv * p->Df, p->Dv) : NULL,
    };
    attn_status st;
    if (!g.dq || !g.dk || !g.dv || !g.dgamma_swa || !g.dgamma_rla ||
        (p->d_state_in.t && !g.d_state_in))
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate the f64 gradients");
    else
        st = attn_ref_rattention_backward(p, &g);
    if (st == ATTN_OK) {
        store4(&p->dq, g.dq, p->B, p->S, p->Hq, p->Dk);
        store4(&p->dk, g.dk, p->B, p->S, p->Hkv, p->Dk);
        store4(&p->dv, g.dv, p->B, p->S, p->Hkv, p->Dv);
        if (p->dgamma_swa.t)
            store4(&p->dgamma_swa, g.dgamma_swa, 1, 1, p->Hq, p->Dv);
        if (p->dgamma_rla.t)
            store4(&p->dgamma_rla, g.dgamma_rla, 1, 1, p->Hq, p->Dv);
        if (g.d_state_in)
            store4(&p->d_state_in, g.d_state_in, p->B, p->Hkv, p->Df, p->Dv);
    }
    double *all[] = {g.dq, g.dk, g.dv, g.dgamma_swa, g.dgamma_rla, g.d_state_in};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    return st;
}

static attn_status ref_ratt_run(attn_backend *be, const void *problem)
{
    const attn_rattention_problem *p = problem;
    (void)be;
    if (p->backward)
        return ref_backward_run(p);
    const int dec = p->decode, want_state = dec || p->state_out.t;
    attn_rattention_ref_out o = {0};
    o.out = attn_ref_alloc(p->B * p->S * p->Hq, p->Dv);
    o.state = want_state ? attn_ref_alloc(p->B * p->Hkv * p->Df, p->Dv) : NULL;
    if (dec && p->slots) {
        o.k_ring = attn_ref_alloc(p->B * p->slots * p->Hkv, p->Dk);
        o.v_ring = attn_ref_alloc(p->B * p->slots * p->Hkv, p->Dv);
    }
    attn_status st = ATTN_OK;
    if (!o.out || (want_state && !o.state) || (dec && p->slots && (!o.k_ring || !o.v_ring)))
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate rattention results");
    if (st == ATTN_OK)
        st = dec ? attn_ref_rattention_decode(p, ATTN_REF_F64, &o)
                 : attn_ref_rattention(p, ATTN_REF_F64, &o);
    if (st == ATTN_OK) {
        store4(&p->out, o.out, p->B, p->S, p->Hq, p->Dv);
        if (want_state)
            store4(dec ? &p->state : &p->state_out, o.state, p->B, p->Hkv, p->Df, p->Dv);
        if (o.k_ring) {
            store4(&p->k_ring, o.k_ring, p->B, p->slots, p->Hkv, p->Dk);
            store4(&p->v_ring, o.v_ring, p->B, p->slots, p->Hkv, p->Dv);
        }
    }
    free(o.out);
    free(o.state);
    free(o.k_ring);
    free(o.v_ring);
    return st;
}

static void ref_ratt_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    const attn_rattention_problem *p = problem;
    (void)be;
    snprintf(buf, n, p->decode     ? "ref:rattention_ring_f64"
                     : p->backward ? "ref:rattention_naive_backward_f64"
                                   : "ref:rattention_naive_f64");
}

const attn_op_impl attn_ref_rattention_impl = {
    .supported = NULL,
    .run = ref_ratt_run,
    .impl_name = ref_ratt_impl_name,
};
