/* attn_linear_backward.c - the public linear attention backward calls (attn_linear.h):
 * gradients, their capability check and the implementation name. Each validates once into an
 * attn_linear_problem with its backward flag set and hands it to the op's table like the
 * forward. */
#include "attn_backend_impl.h"
#include "attn_linear_problem.h"

static attn_status backward_call(attn_backend *be, const attn_linear_desc *d,
                                 const attn_tensor *q, const attn_tensor *k,
                                 const attn_tensor *v, const attn_linear_state *st,
                                 const attn_tensor *dout, const attn_linear_grads *g,
                                 attn_dispatch what, char *buf, size_t n)
{
    attn_linear_problem p;
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_linear_backward: backend is NULL");
    ATTN_TRY(attn_linear_validate_backward(d, q, k, v, st, dout, g, &p));
    const attn_status s = attn_linear_dispatch(be, &p, what, buf, n);
    attn_linear_problem_release(&p);
    return s;
}

attn_status attn_linear_backward(attn_backend *be, const attn_linear_desc *d,
                                 const attn_tensor *q, const attn_tensor *k,
                                 const attn_tensor *v, const attn_linear_state *st,
                                 const attn_tensor *dout, const attn_linear_grads *g)
{
    return backward_call(be, d, q, k, v, st, dout, g, ATTN_DISPATCH_RUN, NULL, 0);
}

attn_status attn_linear_backward_supported(attn_backend *be, const attn_linear_desc *d,
                                           const attn_tensor *q, const attn_tensor *k,
                                           const attn_tensor *v, const attn_linear_state *st,
                                           const attn_tensor *dout, const attn_linear_grads *g)
{
    return backward_call(be, d, q, k, v, st, dout, g, ATTN_DISPATCH_SUPPORTED, NULL, 0);
}

attn_status attn_linear_backward_impl_name(attn_backend *be, const attn_linear_desc *d,
                                           const attn_tensor *q, const attn_tensor *k,
                                           const attn_tensor *v, const attn_linear_state *st,
                                           const attn_tensor *dout, const attn_linear_grads *g,
                                           char *buf, size_t n)
{
    if (!buf || n == 0)
        return attn_fail(ATTN_ERR_NULL_POINTER,
                         "attn_linear_backward_impl_name: buf is NULL or empty");
    return backward_call(be, d, q, k, v, st, dout, g, ATTN_DISPATCH_IMPL_NAME, buf, n);
}
