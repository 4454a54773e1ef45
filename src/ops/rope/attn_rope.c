/* attn_rope.c - the public RoPE calls (attn_rope.h): the default descriptor, forward, the
 * capability check and the implementation name. Each validates once into an attn_rope_problem
 * and hands it to the core's dispatch with its named operands; the table below says which
 * backend implements RoPE with what. */
#include "attn_backend_impl.h"
#include "attn_rope_problem.h"

const attn_op_impl *const attn_rope_impls[ATTN_BACKEND_COUNT] = {
    [ATTN_BACKEND_REF] = &attn_ref_rope_impl,
#ifdef ATTN_HAVE_CPU
    [ATTN_BACKEND_CPU] = &attn_cpu_rope_impl,
#endif
#ifdef ATTN_HAVE_OPENCL
    [ATTN_BACKEND_OPENCL] = &attn_opencl_rope_impl,
#endif
};

attn_rope_desc attn_rope_desc_default(void)
{
    attn_rope_desc d = {
        .layout = ATTN_ROPE_HALF,
        .theta = 10000.0,
        .rot_dim = 0,
        .offset = 0,
        .positions = NULL,
        .reserved = {0},
    };
    return d;
}

static attn_status rope_call(attn_backend *be, const attn_rope_desc *d, const attn_tensor *x,
                             const attn_tensor *out, attn_dispatch what, char *buf, size_t n)
{
    attn_rope_problem p;
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rope: backend is NULL");
    ATTN_TRY(attn_rope_validate(d, x, out, &p));
    attn_op_call c = {.op = ATTN_OP_ROPE, .problem = &p, .empty = p.B == 0 || p.S == 0};
    attn_op_call_add(&c, "x", &p.x);
    attn_op_call_add(&c, "out", &p.out);
    attn_op_call_add(&c, "positions", &p.pos);
    return attn_op_dispatch(be, &c, what, buf, n);
}

attn_status attn_rope_forward(attn_backend *be, const attn_rope_desc *d, const attn_tensor *x,
                              const attn_tensor *out)
{
    return rope_call(be, d, x, out, ATTN_DISPATCH_RUN, NULL, 0);
}

attn_status attn_rope_supported(attn_backend *be, const attn_rope_desc *d, const attn_tensor *x,
                                const attn_tensor *out)
{
    return rope_call(be, d, x, out, ATTN_DISPATCH_SUPPORTED, NULL, 0);
}

attn_status attn_rope_impl_name(attn_backend *be, const attn_rope_desc *d, const attn_tensor *x,
                                const attn_tensor *out, char *buf, size_t n)
{
    if (!buf || n == 0)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rope_impl_name: buf is NULL or empty");
    return rope_call(be, d, x, out, ATTN_DISPATCH_IMPL_NAME, buf, n);
}
