/* attn_rattention_backward.c - the public RATTENTION backward calls (attn_rattention.h):
 * gradients, their capability check and the implementation name. Each validates once into an
 * attn_rattention_problem with its backward flag set and hands it to the op's table. */
#include "attn_backend_impl.h"
#include "attn_rattention_problem.h"

static attn_status backward_call(attn_backend *be, const attn_rattention_desc *d,
                                 const attn_tensor *q, const attn_tensor *k,
                                 const attn_tensor *v, const attn_rattention_io *io,
                                 const attn_tensor *dout, const attn_rattention_grads *g,
                                 attn_dispatch what, char *buf, size_t n)
{
    attn_rattention_problem p;
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rattention_backward: backend is NULL");
    ATTN_TRY(attn_rattention_validate_backward(d, q, k, v, io, dout, g, &p));
    return attn_rattention_dispatch(be, &p, what, buf, n);
}

attn_status attn_rattention_backward(attn_backend *be, const attn_rattention_desc *d,
                                     const attn_tensor *q, const attn_tensor *k,
                                     const attn_tensor *v, const attn_rattention_io *io,
                                     const attn_tensor *dout, const attn_rattention_grads *g)
{
    return backward_call(be, d, q, k, v, io, dout, g, ATTN_DISPATCH_RUN, NULL, 0);
}

attn_status attn_rattention_backward_supported(attn_backend *be, const attn_rattention_desc *d,
                                               const attn_tensor *q, const attn_tensor *k,
                                               const attn_tensor *v,
                                               const attn_rattention_io *io,
                                               const attn_tensor *dout,
                                               const attn_rattention_grads *g)
{
    return backward_call(be, d, q, k, v, io, dout, g, ATTN_DISPATCH_SUPPORTED, NULL, 0);
}

attn_status attn_rattention_backward_impl_name(attn_backend *be, const attn_rattention_desc *d,
                                               const attn_tensor *q, const attn_tensor *k,
                                               const attn_tensor *v,
                                               const attn_rattention_io *io,
                                               const attn_tensor *dout,
                                               const attn_rattention_grads *g, char *buf,
                                               size_t n)
{
    if (!buf || n == 0)
        return attn_fail(ATTN_ERR_NULL_POINTER,
                         "attn_rattention_backward_impl_name: buf is NULL or empty");
    return backward_call(be, d, q, k, v, io, dout, g, ATTN_DISPATCH_IMPL_NAME, buf, n);
}
