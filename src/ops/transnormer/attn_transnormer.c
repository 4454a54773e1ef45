/* attn_transnormer.c - the public TransNormer calls (attn_transnormer.h): the default
 * descriptor, forward, the capability check and the implementation name, each validated once
 * and handed to the core's dispatch; the table of which backend implements the op. */
#include "attn_backend_impl.h"
#include "attn_transnormer_problem.h"

const attn_op_impl *const attn_transnormer_impls[ATTN_BACKEND_COUNT] = {
    [ATTN_BACKEND_REF] = &attn_ref_transnormer_impl,
#ifdef ATTN_HAVE_CPU
    [ATTN_BACKEND_CPU] = &attn_cpu_transnormer_impl,
#endif
#ifdef ATTN_HAVE_OPENCL
    [ATTN_BACKEND_OPENCL] = &attn_opencl_transnormer_impl,
#endif
};

attn_transnormer_desc attn_transnormer_desc_default(void)
{
    attn_transnormer_desc d = {
        .mode = ATTN_TRANSNORMER_MODE_NORM,
        .causal = 0,
        .feature = ATTN_TRANSNORMER_FEATURE_1_ELU,
        .block = 0, /* 64 */
        .scores = ATTN_TRANSNORMER_SCORES_SOFTMAX,
        .scale = 0.0f, /* 1/sqrt(Dk) */
        .pad = ATTN_TRANSNORMER_PAD_MASKED,
        .norm = ATTN_TRANSNORMER_NORM_AUTO,
        .eps = 0.0f, /* 1e-8 */
        .reserved = {0},
    };
    return d;
}

static attn_status tn_call(attn_backend *be, const attn_transnormer_desc *d,
                           const attn_tensor *q, const attn_tensor *k, const attn_tensor *v,
                           const attn_tensor *out, attn_dispatch what, char *buf, size_t n)
{
    attn_transnormer_problem p;
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_transnormer: backend is NULL");
    ATTN_TRY(attn_transnormer_validate(d, q, k, v, out, &p));
    attn_op_call c = {.op = ATTN_OP_TRANSNORMER, .problem = &p, .empty = p.B == 0 || p.S == 0};
    attn_op_call_add(&c, "q", &p.q);
    attn_op_call_add(&c, "k", &p.k);
    attn_op_call_add(&c, "v", &p.v);
    attn_op_call_add(&c, "out", &p.out);
    return attn_op_dispatch(be, &c, what, buf, n);
}

attn_status attn_transnormer_forward(attn_backend *be, const attn_transnormer_desc *d,
                                     const attn_tensor *q, const attn_tensor *k,
                                     const attn_tensor *v, const attn_tensor *out)
{
    return tn_call(be, d, q, k, v, out, ATTN_DISPATCH_RUN, NULL, 0);
}

attn_status attn_transnormer_supported(attn_backend *be, const attn_transnormer_desc *d,
                                       const attn_tensor *q, const attn_tensor *k,
                                       const attn_tensor *v, const attn_tensor *out)
{
    return tn_call(be, d, q, k, v, out, ATTN_DISPATCH_SUPPORTED, NULL, 0);
}

attn_status attn_transnormer_impl_name(attn_backend *be, const attn_transnormer_desc *d,
                                       const attn_tensor *q, const attn_tensor *k,
                                       const attn_tensor *v, const attn_tensor *out, char *buf,
                                       size_t n)
{
    if (!buf || n == 0)
        return attn_fail(ATTN_ERR_NULL_POINTER,
                         "attn_transnormer_impl_name: buf is NULL or empty");
    return tn_call(be, d, q, k, v, out, ATTN_DISPATCH_IMPL_NAME, buf, n);
}
