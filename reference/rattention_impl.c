/* rattention_impl.c - RATTENTION on the "ref" backend: the f64 definitions of rattention.c
 * (forward) and rattention_decode.c (decode step), each result rounded once into the caller's
 * dtype and strides: out, state_out, and for a decode step the cache's ring and state. */
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

static attn_status ref_ratt_run(attn_backend *be, const void *problem)
{
    const attn_rattention_problem *p = problem;
    (void)be;
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
    snprintf(buf, n, p->decode ? "ref:rattention_ring_f64" : "ref:rattention_naive_f64");
}

const attn_op_impl attn_ref_rattention_impl = {
    .supported = NULL,
    .run = ref_ratt_run,
    .impl_name = ref_ratt_impl_name,
};
