/* attn_kvcache_attention.c - the public calls of the attention over cache slots
 * (attn_kvcache.h): the default descriptor, the attention, its capability check and its
 * implementation name. Each validates once into an attn_kvcache_problem and hands it to the
 * core's dispatch with its named operands; the table below says which backend implements the
 * op with what. */
#include "attn_backend_impl.h"
#include "attn_kvcache_problem.h"

const attn_op_impl *const attn_kvcache_impls[ATTN_BACKEND_COUNT] = {
    [ATTN_BACKEND_REF] = &attn_ref_kvcache_impl,
#ifdef ATTN_HAVE_CPU
    [ATTN_BACKEND_CPU] = &attn_cpu_kvcache_impl,
#endif
#ifdef ATTN_HAVE_OPENCL
    [ATTN_BACKEND_OPENCL] = &attn_opencl_kvcache_impl,
#endif
};

attn_kvcache_attn_desc attn_kvcache_attn_desc_default(void)
{
    attn_kvcache_attn_desc d = {
        .scale = 0.0f, /* 1/sqrt(Dk) */
        .softcap = 0.0f,
        .positions = ATTN_KV_POS_STORED,
        .rope = attn_rope_desc_default(),
        .reserved = {0},
    };
    return d;
}

/* Validate, then dispatch with every operand named as in messages. key_score has a row per
 * slot: a call with no query still zeroes it. */
static attn_status kvcache_call(attn_backend *be, const attn_kvcache_attn_desc *d,
                                const attn_tensor *q, const attn_tensor *q_pos,
                                const attn_tensor *k, const attn_tensor *v,
                                const attn_tensor *slot_pos, const attn_tensor *out,
                                const attn_tensor *key_score, attn_dispatch what, char *buf,
                                size_t n)
{
    attn_kvcache_problem p;
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_attention: backend is NULL");
    ATTN_TRY(attn_kvcache_attn_validate(d, q, q_pos, k, v, slot_pos, out, key_score, &p));
    attn_op_call c = {.op = ATTN_OP_KVCACHE, .problem = &p,
                      .empty = p.B == 0 || (p.Sq == 0 && !p.key_score.t)};
    const attn_operand *const ops[] = {&p.q, &p.q_pos, &p.k, &p.v, &p.slot_pos, &p.out,
                                       &p.key_score};
    static const char *const names[] = {"q", "q_pos", "k", "v", "slot_pos", "out", "key_score"};
    _Static_assert(sizeof names / sizeof names[0] <= ATTN_CALL_MAX_OPERANDS, "operands");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        attn_op_call_add(&c, names[i], ops[i]);
    return attn_op_dispatch(be, &c, what, buf, n);
}

attn_status attn_kvcache_attention(attn_backend *be, const attn_kvcache_attn_desc *desc,
                                   const attn_tensor *q, const attn_tensor *q_pos,
                                   const attn_tensor *k, const attn_tensor *v,
                                   const attn_tensor *slot_pos, const attn_tensor *out,
                                   const attn_tensor *key_score)
{
    return kvcache_call(be, desc, q, q_pos, k, v, slot_pos, out, key_score, ATTN_DISPATCH_RUN,
                        NULL, 0);
}

attn_status attn_kvcache_attention_supported(attn_backend *be,
                                             const attn_kvcache_attn_desc *desc,
                                             const attn_tensor *q, const attn_tensor *q_pos,
                                             const attn_tensor *k, const attn_tensor *v,
                                             const attn_tensor *slot_pos, const attn_tensor *out,
                                             const attn_tensor *key_score)
{
    return kvcache_call(be, desc, q, q_pos, k, v, slot_pos, out, key_score,
                        ATTN_DISPATCH_SUPPORTED, NULL, 0);
}

attn_status attn_kvcache_attention_impl_name(attn_backend *be,
                                             const attn_kvcache_attn_desc *desc,
                                             const attn_tensor *q, const attn_tensor *q_pos,
                                             const attn_tensor *k, const attn_tensor *v,
                                             const attn_tensor *slot_pos, const attn_tensor *out,
                                             const attn_tensor *key_score, char *buf, size_t n)
{
    if (!buf || n == 0)
        return attn_fail(ATTN_ERR_NULL_POINTER,
                         "attn_kvcache_attention_impl_name: buf is NULL or empty");
    return kvcache_call(be, desc, q, q_pos, k, v, slot_pos, out, key_score,
                        ATTN_DISPATCH_IMPL_NAME, buf, n);
}
