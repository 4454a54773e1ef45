/* attn_rattention.c - the public RATTENTION calls (attn_rattention.h): the default descriptor,
 * forward, the decode step, their capability checks and the implementation name. Each
 * validates once into an attn_rattention_problem and hands it to the core's dispatch with its
 * named operands; the table below says which backend implements the op with what. */
#include "attn_backend_impl.h"
#include "attn_rattention_problem.h"

const attn_op_impl *const attn_rattention_impls[ATTN_BACKEND_COUNT] = {
    [ATTN_BACKEND_REF] = &attn_ref_rattention_impl,
#ifdef ATTN_HAVE_CPU
    [ATTN_BACKEND_CPU] = &attn_cpu_rattention_impl,
#endif
#ifdef ATTN_HAVE_OPENCL
    [ATTN_BACKEND_OPENCL] = &attn_opencl_rattention_impl,
#endif
};

attn_rattention_desc attn_rattention_desc_default(void)
{
    attn_rattention_desc d = {
        .window = ATTN_RATTENTION_WINDOW_DEFAULT,
        .feature = ATTN_LINEAR_SOFTMAX_PAIR,
        .rope = ATTN_ROPE_INTERLEAVED,
        .rope_theta = ATTN_RATTENTION_THETA_DEFAULT,
        .offset = 0,
        .scale = 0.0f,
        .eps = 0.0f,
        .reserved = {0},
    };
    return d;
}

attn_status attn_rattention_dispatch(attn_backend *be, const attn_rattention_problem *p,
                                     attn_dispatch what, char *buf, size_t n)
{
    /* No row and no state to hand on: nothing to run (a forward of zero rows still writes
     * state_out = state_in, a backward of zero rows d_state_in = d_state_out and zero
     * gains' gradients). */
    const int empty = p->B == 0 || (p->S == 0 && !p->state_out.t && !p->backward);
    attn_op_call c = {.op = ATTN_OP_RATTENTION, .problem = p, .empty = empty};
    const attn_operand *ops[] = {&p->q,          &p->k,          &p->v,
                                 &p->gamma_swa,  &p->gamma_rla,  &p->state_in,
                                 &p->out,        &p->state_out,  &p->k_ring,
                                 &p->v_ring,     &p->state,      &p->dout,
                                 &p->d_state_out, &p->dq,        &p->dk,
                                 &p->dv,         &p->dgamma_swa, &p->dgamma_rla,
                                 &p->d_state_in};
    static const char *const names[] = {"q",         "k",          "v",
                                        "gamma_swa", "gamma_rla",  "state_in",
                                        "out",       "state_out",  "cache.k_ring",
                                        "cache.v_ring", "cache.state", "dout",
                                        "d_state_out", "dq",       "dk",
                                        "dv",        "dgamma_swa", "dgamma_rla",
                                        "d_state_in"};
    _Static_assert(sizeof names / sizeof names[0] <= ATTN_CALL_MAX_OPERANDS, "operands fit");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        attn_op_call_add(&c, names[i], ops[i]);
    return attn_op_dispatch(be, &c, what, buf, n);
}

static attn_status forward_call(attn_backend *be, const attn_rattention_desc *d,
                                const attn_tensor *q, const attn_tensor *k, const attn_tensor *v,
                                const attn_tensor *out, const attn_rattention_io *io,
                                attn_dispatch what, char *buf, size_t n)
{
    attn_rattention_problem p;
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rattention: backend is NULL");
    ATTN_TRY(attn_rattention_validate(d, q, k, v, out, io, &p));
    return attn_rattention_dispatch(be, &p, what, buf, n);
}

attn_status attn_rattention_forward(attn_backend *be, const attn_rattention_desc *d,
                                    const attn_tensor *q, const attn_tensor *k,
                                    const attn_tensor *v, const attn_tensor *out,
                                    const attn_rattention_io *io)
{
    return forward_call(be, d, q, k, v, out, io, ATTN_DISPATCH_RUN, NULL, 0);
}

attn_status attn_rattention_supported(attn_backend *be, const attn_rattention_desc *d,
                                      const attn_tensor *q, const attn_tensor *k,
                                      const attn_tensor *v, const attn_tensor *out,
                                      const attn_rattention_io *io)
{
    return forward_call(be, d, q, k, v, out, io, ATTN_DISPATCH_SUPPORTED, NULL, 0);
}

attn_status attn_rattention_impl_name(attn_backend *be, const attn_rattention_desc *d,
                                      const attn_tensor *q, const attn_tensor *k,
                                      const attn_tensor *v, const attn_tensor *out,
                                      const attn_rattention_io *io, char *buf, size_t n)
{
    if (!buf || n == 0)
        return attn_fail(ATTN_ERR_NULL_POINTER,
                         "attn_rattention_impl_name: buf is NULL or empty");
    return forward_call(be, d, q, k, v, out, io, ATTN_DISPATCH_IMPL_NAME, buf, n);
}

static attn_status decode_call(attn_backend *be, const attn_rattention_desc *d,
                               const attn_rattention_cache *cache, const attn_tensor *q,
                               const attn_tensor *k, const attn_tensor *v,
                               const attn_tensor *out, const attn_rattention_io *io,
                               attn_dispatch what, char *buf, size_t n)
{
    attn_rattention_problem p;
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rattention_decode: backend is NULL");
    ATTN_TRY(attn_rattention_validate_decode(d, cache, q, k, v, out, io, &p));
    return attn_rattention_dispatch(be, &p, what, buf, n);
}

attn_status attn_rattention_decode(attn_backend *be, const attn_rattention_desc *d,
                                   attn_rattention_cache *cache, const attn_tensor *q,
                                   const attn_tensor *k, const attn_tensor *v,
                                   const attn_tensor *out, const attn_rattention_io *io)
{
    ATTN_TRY(decode_call(be, d, cache, q, k, v, out, io, ATTN_DISPATCH_RUN, NULL, 0));
    cache->pos += q->shape[1];
    return ATTN_OK;
}

attn_status attn_rattention_decode_supported(attn_backend *be, const attn_rattention_desc *d,
                                             const attn_rattention_cache *cache,
                                             const attn_tensor *q, const attn_tensor *k,
                                             const attn_tensor *v, const attn_tensor *out,
                                             const attn_rattention_io *io)
{
    return decode_call(be, d, cache, q, k, v, out, io, ATTN_DISPATCH_SUPPORTED, NULL, 0);
}

attn_status attn_rattention_decode_impl_name(attn_backend *be, const attn_rattention_desc *d,
                                             const attn_rattention_cache *cache,
                                             const attn_tensor *q, const attn_tensor *k,
                                             const attn_tensor *v, const attn_tensor *out,
                                             const attn_rattention_io *io, char *buf, size_t n)
{
    if (!buf || n == 0)
        return attn_fail(ATTN_ERR_NULL_POINTER,
                         "attn_rattention_decode_impl_name: buf is NULL or empty");
    return decode_call(be, d, cache, q, k, v, out, io, ATTN_DISPATCH_IMPL_NAME, buf, n);
}
