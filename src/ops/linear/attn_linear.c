/* attn_linear.c - the public linear attention calls (attn_linear.h): the default descriptor,
 * forward, the capability check and the implementation name. Each validates once into an
 * attn_linear_problem and hands it to the core's dispatch with its named operands; the table
 * below says which backend implements the op with what. */
#include "attn_backend_impl.h"
#include "attn_linear_problem.h"

#include <stdio.h>

const attn_op_impl *const attn_linear_impls[ATTN_BACKEND_COUNT] = {
    [ATTN_BACKEND_REF] = &attn_ref_linear_impl,
#ifdef ATTN_HAVE_CPU
    [ATTN_BACKEND_CPU] = &attn_cpu_linear_impl,
#endif
#ifdef ATTN_HAVE_OPENCL
    [ATTN_BACKEND_OPENCL] = &attn_opencl_linear_impl,
#endif
};

attn_linear_desc attn_linear_desc_default(void)
{
    attn_linear_desc d = {
        .feature = ATTN_LINEAR_ELU1,
        .normalize = 1,
        .eps = 1e-6f,
        .causal = 1,
        .scale = 1.0f,
        .decay = ATTN_LINEAR_DECAY_NONE,
        .decay_values = NULL,
        .reserved = {0},
    };
    return d;
}

attn_status attn_linear_dispatch(attn_backend *be, const attn_linear_problem *p,
                                 attn_dispatch what, char *buf, size_t n)
{
    attn_op_call c = {.op = ATTN_OP_LINEAR, .problem = p, .empty = p->B == 0};
    const attn_operand *ops[] = {&p->q,    &p->k,           &p->v,       &p->state_in,
                                 &p->z_in, &p->out,         &p->state_out, &p->z_out,
                                 &p->dout, &p->d_state_out, &p->d_z_out, &p->dq,
                                 &p->dk,   &p->dv,          &p->d_state_in, &p->d_z_in};
    static const char *const names[] = {"q",    "k",           "v",       "state_in",
                                        "z_in", "out",         "state_out", "z_out",
                                        "dout", "d_state_out", "d_z_out", "dq",
                                        "dk",   "dv",          "d_state_in", "d_z_in"};
    _Static_assert(sizeof names / sizeof names[0] <= ATTN_CALL_MAX_OPERANDS, "operands fit");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        attn_op_call_add(&c, names[i], ops[i]);
    return attn_op_dispatch(be, &c, what, buf, n);
}

/* Validate, then dispatch with every operand named as in messages. */
static attn_status linear_call(attn_backend *be, const attn_linear_desc *d, const attn_tensor *q,
                               const attn_tensor *k, const attn_tensor *v, const attn_tensor *out,
                               const attn_linear_state *st, attn_dispatch what, char *buf,
                               size_t n)
{
    attn_linear_problem p;
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_linear: backend is NULL");
    ATTN_TRY(attn_linear_validate(d, q, k, v, out, st, &p));
    attn_status s = attn_linear_dispatch(be, &p, what, buf, n);
    attn_linear_problem_release(&p);
    return s;
}

attn_status attn_linear_forward(attn_backend *be, const attn_linear_desc *d, const attn_tensor *q,
                                const attn_tensor *k, const attn_tensor *v,
                                const attn_tensor *out, const attn_linear_state *st)
{
    return linear_call(be, d, q, k, v, out, st, ATTN_DISPATCH_RUN, NULL, 0);
}

attn_status attn_linear_supported(attn_backend *be, const attn_linear_desc *d,
                                  const attn_tensor *q, const attn_tensor *k,
                                  const attn_tensor *v, const attn_tensor *out,
                                  const attn_linear_state *st)
{
    return linear_call(be, d, q, k, v, out, st, ATTN_DISPATCH_SUPPORTED, NULL, 0);
}

attn_status attn_linear_impl_name(attn_backend *be, const attn_linear_desc *d,
                                  const attn_tensor *q, const attn_tensor *k,
                                  const attn_tensor *v, const attn_tensor *out,
                                  const attn_linear_state *st, char *buf, size_t n)
{
    if (!buf || n == 0)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_linear_impl_name: buf is NULL or empty");
    return linear_call(be, d, q, k, v, out, st, ATTN_DISPATCH_IMPL_NAME, buf, n);
}
