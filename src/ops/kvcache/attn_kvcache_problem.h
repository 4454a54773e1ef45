/* attn_kvcache_problem.h - the validated, normalised form of an attention over cache slots
 * (attn_kvcache_attention) that every backend receives, the validation that builds it, the
 * composite the fast backends share (attn_kvcache_compose.c) and each backend's
 * implementation (the op's table, attn_kvcache_attention.c). Built once by
 * attn_kvcache_attn_validate(); backends never re-check user input. */
#ifndef ATTN_KVCACHE_PROBLEM_H_
#define ATTN_KVCACHE_PROBLEM_H_

#include "attn/attn_kvcache.h"
#include "attn_op.h"
#include "attn_view.h"

#include <stdint.h>

typedef struct attn_kvcache_problem {
    int64_t B, Sq, Nslot, Hq, Hkv, Dk, Dv;
    int64_t group;                /* Hq / Hkv */
    double scale;                 /* resolved (1/sqrt(Dk) when the desc says 0) */
    double softcap;               /* 0 = none */
    attn_kv_positions positions;  /* how q and k are rotated before the dot products */
    attn_rope_layout rope_layout; /* the rotation when positions != ATTN_KV_POS_STORED */
    double rope_theta;
    int64_t rot;                  /* rotated features (even, 2 .. Dk); 0 when STORED */
    /* q_pos i64 [B, Sq, 1, 1] (>= 0) and slot_pos i64 [B, Nslot, Hkv, 1] (>= -1) are host
     * memory (ptr is set); key_score: t == NULL when absent. */
    attn_operand q, q_pos, k, v, slot_pos, out, key_score;
} attn_kvcache_problem;

/* Largest position a q_pos or slot_pos may hold (RoPE's angles are specified up to 2^40). */
#define ATTN_KV_POS_MAX ((int64_t)1 << 40)

/* Position of query i of batch b and of slot j of KV head g (-1: empty slot). */
static inline int64_t attn_kv_qpos(const attn_kvcache_problem *p, int64_t b, int64_t i)
{
    return ((const int64_t *)p->q_pos.ptr)[attn_at(&p->q_pos, b, i, 0, 0)];
}

static inline int64_t attn_kv_slot_pos(const attn_kvcache_problem *p, int64_t b, int64_t j,
                                       int64_t g)
{
    return ((const int64_t *)p->slot_pos.ptr)[attn_at(&p->slot_pos, b, j, g, 0)];
}

/* Checks everything (pointers, descriptor and its rope fields, dtypes, shapes, strides,
 * sizes, heads, host memory and values of the positions, aliasing, buffer bounds) and fills
 * *p. Host operands get p->X.ptr; device-only buffers leave ptr NULL. Writes nothing else.
 * The conformance tool calls it once per case to hand the problem to the reference
 * (reference/kvcache_ref.h). */
attn_status attn_kvcache_attn_validate(const attn_kvcache_attn_desc *d, const attn_tensor *q,
                                       const attn_tensor *q_pos, const attn_tensor *k,
                                       const attn_tensor *v, const attn_tensor *slot_pos,
                                       const attn_tensor *out, const attn_tensor *key_score,
                                       attn_kvcache_problem *p);

/* The composite of the fast backends (attn_kvcache_compose.c), in the form of an
 * attn_op_impl's members (`problem` is an attn_kvcache_problem): q and k rotated into scratch
 * by the backend's own RoPE, a boolean mask only where some slot is hidden from some query,
 * and the backend's own SDPA (with key_score) over the slots. Names start with the backend's
 * name: "cpu:kvcache[rope_cache+mask+cpu:...]". */
attn_status attn_kvcache_compose_supported(attn_backend *be, const void *problem);
attn_status attn_kvcache_compose_run(attn_backend *be, const void *problem);
void attn_kvcache_compose_impl_name(attn_backend *be, const void *problem, char *buf, size_t n);

/* The attention of each backend (reference/kvcache_impl.c, src/cpu/cpu_kvcache_impl.c,
 * src/opencl/ocl_kvcache.c); `problem` is an attn_kvcache_problem. */
extern const attn_op_impl attn_ref_kvcache_impl;
extern const attn_op_impl attn_cpu_kvcache_impl;
extern const attn_op_impl attn_opencl_kvcache_impl;

#endif /* ATTN_KVCACHE_PROBLEM_H_ */
