/* attn_sdpa.c - the public SDPA calls (attn_sdpa.h): the default descriptor, forward, the
 * capability check and the implementation name. Each validates once into an attn_sdpa_problem
 * and hands it to the core's dispatch with its named operands; the table below says which
 * backend implements SDPA with what. */
#include "attn_backend_impl.h"
#include "attn_sdpa_problem.h"

#include <stdio.h>

const attn_op_impl *const attn_sdpa_impls[ATTN_BACKEND_COUNT] = {
    [ATTN_BACKEND_REF] = &attn_ref_sdpa_impl,
#ifdef ATTN_HAVE_CPU
    [ATTN_BACKEND_CPU] = &attn_cpu_sdpa_impl,
#endif
#ifdef ATTN_HAVE_OPENCL
    [ATTN_BACKEND_OPENCL] = &attn_opencl_sdpa_impl,
#endif
};

attn_sdpa_desc attn_sdpa_desc_default(void)
{
    attn_sdpa_desc d = {
        .scale = 0.0f, /* 1/sqrt(Dk) */
        .causal = 0,
        .align = ATTN_ALIGN_BOTTOM_RIGHT,
        .window_left = -1,
        .window_right = -1,
        .softcap = 0.0f,
        .mask_add = NULL,
        .mask_bool = NULL,
        .reserved = {0},
    };
    return d;
}

attn_status attn_sdpa_dispatch(attn_backend *be, const attn_sdpa_problem *p, attn_dispatch what,
                               char *buf, size_t n)
{
    attn_op_call c = {.op = ATTN_OP_SDPA, .problem = p, .empty = p->B == 0 || p->Sq == 0};
    const attn_operand *const ops[] = {&p->q,        &p->k,         &p->v,    &p->out,
                                       &p->lse,      &p->mask_add,  &p->mask_bool,
                                       &p->dout,     &p->dq,        &p->dk,   &p->dv,
                                       &p->dmask_add, &p->key_score};
    static const char *const names[] = {"q",    "k",  "v",  "out", "lse", "mask_add", "mask_bool",
                                        "dout", "dq", "dk", "dv",  "dmask_add", "key_score"};
    _Static_assert(sizeof names / sizeof names[0] <= ATTN_CALL_MAX_OPERANDS, "operands");
    /* The backward's dk and dv and the forward's key_score have a row per key: a call with no
     * query still zeroes them. */
    if (p->backward || p->key_score.t)
        c.empty = p->B == 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        attn_op_call_add(&c, names[i], ops[i]);
    return attn_op_dispatch(be, &c, what, buf, n);
}

/* Validate, then dispatch with every operand named as in messages. */
static attn_status sdpa_call(attn_backend *be, const attn_sdpa_desc *d, const attn_tensor *q,
                             const attn_tensor *k, const attn_tensor *v,
                             const attn_sdpa_outputs *o, attn_dispatch what, char *buf, size_t n)
{
    attn_sdpa_problem p;
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_sdpa: backend is NULL");
    ATTN_TRY(attn_sdpa_validate_ex(d, q, k, v, o, &p));
    return attn_sdpa_dispatch(be, &p, what, buf, n);
}

attn_status attn_sdpa_forward(attn_backend *be, const attn_sdpa_desc *d, const attn_tensor *q,
                              const attn_tensor *k, const attn_tensor *v, const attn_tensor *out,
                              const attn_tensor *lse)
{
    const attn_sdpa_outputs o = {.out = out, .lse = lse};
    return sdpa_call(be, d, q, k, v, &o, ATTN_DISPATCH_RUN, NULL, 0);
}

attn_status attn_sdpa_supported(attn_backend *be, const attn_sdpa_desc *d, const attn_tensor *q,
                                const attn_tensor *k, const attn_tensor *v,
                                const attn_tensor *out, const attn_tensor *lse)
{
    const attn_sdpa_outputs o = {.out = out, .lse = lse};
    return sdpa_call(be, d, q, k, v, &o, ATTN_DISPATCH_SUPPORTED, NULL, 0);
}

attn_status attn_sdpa_impl_name(attn_backend *be, const attn_sdpa_desc *d, const attn_tensor *q,
                                const attn_tensor *k, const attn_tensor *v,
                                const attn_tensor *out, const attn_tensor *lse, char *buf,
                                size_t n)
{
    const attn_sdpa_outputs o = {.out = out, .lse = lse};
    return attn_sdpa_impl_name_ex(be, d, q, k, v, &o, buf, n);
}

attn_status attn_sdpa_forward_ex(attn_backend *be, const attn_sdpa_desc *d, const attn_tensor *q,
                                 const attn_tensor *k, const attn_tensor *v,
                                 const attn_sdpa_outputs *o)
{
    return sdpa_call(be, d, q, k, v, o, ATTN_DISPATCH_RUN, NULL, 0);
}

attn_status attn_sdpa_supported_ex(attn_backend *be, const attn_sdpa_desc *d,
                                   const attn_tensor *q, const attn_tensor *k,
                                   const attn_tensor *v, const attn_sdpa_outputs *o)
{
    return sdpa_call(be, d, q, k, v, o, ATTN_DISPATCH_SUPPORTED, NULL, 0);
}

attn_status attn_sdpa_impl_name_ex(attn_backend *be, const attn_sdpa_desc *d,
                                   const attn_tensor *q, const attn_tensor *k,
                                   const attn_tensor *v, const attn_sdpa_outputs *o, char *buf,
                                   size_t n)
{
    if (!buf || n == 0)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_sdpa_impl_name: buf is NULL or empty");
    return sdpa_call(be, d, q, k, v, o, ATTN_DISPATCH_IMPL_NAME, buf, n);
}
