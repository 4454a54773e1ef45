/* linear_impl.c - linear attention on the "ref" backend: the quadratic f64 definition of
 * linear.c (forward) and its chain rule, linear_backward.c (gradients), their results rounded
 * once into the caller's dtypes (and f32 for the states). */
#include "attn_backend_impl.h"
#include "attn_half.h"
#include "linear_ref.h"

#include <stdio.h>
#include <stdlib.h>

/* Round an f64 array [d0][d1][d2][d3] (row-major) once into the operand's dtype and strides. */
static void store4(const attn_operand *o, const int64_t n[4], const double *x)
{
    for (int64_t a = 0; a < n[0]; a++)
        for (int64_t b = 0; b < n[1]; b++)
            for (int64_t c = 0; c < n[2]; c++)
                for (int64_t d = 0; d < n[3]; d++)
                    attn_store_f64(o->ptr, o->dtype, attn_at(o, a, b, c, d),
                                   x[((a * n[1] + b) * n[2] + c) * n[3] + d]);
}

/* The backward: the f64 chain rule of linear_backward.c, rounded once into the gradients. */
static attn_status ref_backward_run(const attn_linear_problem *p)
{
    const int64_t rows_kv = p->B * p->S * p->Hkv, heads = p->B * p->Hkv;
    attn_linear_ref_grads g = {
        .dq = attn_ref_alloc(p->B * p->S * p->Hq, p->Dk),
        .dk = attn_ref_alloc(rows_kv, p->Dk),
        .dv = attn_ref_alloc(rows_kv, p->Dv),
        .d_state_in = p->d_state_in.t ? attn_ref_alloc(heads * p->Df, p->Dv) : NULL,
        .d_z_in = p->d_z_in.t ? attn_ref_alloc(heads, p->Df) : NULL,
    };
    attn_status st;
    if (!g.dq || !g.dk || !g.dv || (p->d_state_in.t && !g.d_state_in) ||
        (p->d_z_in.t && !g.d_z_in))
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate the f64 gradients");
    else
        st = attn_ref_linear_backward(p, ATTN_REF_F64, &g);
    if (st == ATTN_OK) {
        const int64_t nq[4] = {p->B, p->S, p->Hq, p->Dk}, nk[4] = {p->B, p->S, p->Hkv, p->Dk};
        const int64_t nv[4] = {p->B, p->S, p->Hkv, p->Dv};
        const int64_t ns[4] = {p->B, p->Hkv, p->Df, p->Dv}, nz[4] = {p->B, p->Hkv, p->Df, 1};
        store4(&p->dq, nq, g.dq);
        store4(&p->dk, nk, g.dk);
        store4(&p->dv, nv, g.dv);
        if (g.d_state_in)
            store4(&p->d_state_in, ns, g.d_state_in);
        if (g.d_z_in)
            store4(&p->d_z_in, nz, g.d_z_in);
    }
    free(g.dq);
    free(g.dk);
    free(g.dv);
    free(g.d_state_in);
    free(g.d_z_in);
    return st;
}

static attn_status ref_linear_run(attn_backend *be, const void *problem)
{
    const attn_linear_problem *p = problem;
    (void)be;
    if (p->backward)
        return ref_backward_run(p);
    attn_linear_ref_out o = {attn_ref_alloc(p->B * p->S * p->Hq, p->Dv),
                             attn_ref_alloc(p->B * p->Hkv * p->Df, p->Dv),
                             attn_ref_alloc(p->B * p->Hkv, p->Df), NULL, NULL, NULL};
    attn_status st;
    if (!o.out || !o.state || !o.z)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate linear attention results");
    else
        st = attn_ref_linear(p, &o);
    if (st == ATTN_OK) {
        const int64_t no[4] = {p->B, p->S, p->Hq, p->Dv};
        const int64_t ns[4] = {p->B, p->Hkv, p->Df, p->Dv}, nz[4] = {p->B, p->Hkv, p->Df, 1};
        store4(&p->out, no, o.out);
        if (p->state_out.t)
            store4(&p->state_out, ns, o.state);
        if (p->z_out.t)
            store4(&p->z_out, nz, o.z);
    }
    free(o.out);
    free(o.state);
    free(o.z);
    return st;
}

static void ref_linear_impl_name(attn_backend *be, const void *p, char *buf, size_t n)
{
    (void)be;
    snprintf(buf, n, ((const attn_linear_problem *)p)->backward ? "ref:linear_quadratic_backward_f64"
                                                                 : "ref:linear_quadratic_f64");
}

const attn_op_impl attn_ref_linear_impl = {
    .supported = NULL,
    .run = ref_linear_run,
    .impl_name = ref_linear_impl_name,
};
