/* cpu_rope_impl.c - RoPE on the "cpu" backend: the scratch bound checked before any run, the
 * call into cpu_rope.c, and the name of the implementation. */
#include "cpu_rope.h"

#include <stdio.h>

#define ROPE_MAX_ROW ((int64_t)1 << 40) /* features per row the scratch may hold */

/* Scratch is a few rows of D floats per thread: a broadcast (stride-0) view may describe a D
 * no memory holds, which is reported rather than sized. */
static attn_status cpu_rope_supported(attn_backend *be, const void *problem)
{
    const attn_rope_problem *p = problem;
    (void)be;
    if (p->D > ROPE_MAX_ROW)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                         "cpu: rope rows of D = %lld features exceed any scratch memory",
                         (long long)p->D);
    return ATTN_OK;
}

static attn_status cpu_rope_run(attn_backend *be, const void *problem)
{
    const attn_cpu_state *s = be->impl;
    attn_status st = attn_cpu_rope(problem, s->threads);
    return st == ATTN_OK ? attn_ok() : st;
}

/* "cpu:rope_half_f32->bf16". */
static void cpu_rope_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    const attn_rope_problem *p = problem;
    (void)be;
    snprintf(buf, n, "cpu:rope_%s_%s->%s%s",
             p->layout == ATTN_ROPE_INTERLEAVED ? "interleaved" : "half",
             attn_dtype_name(p->x.dtype), attn_dtype_name(p->out.dtype),
             p->in_place ? ",in_place" : "");
}

const attn_op_impl attn_cpu_rope_impl = {
    .supported = cpu_rope_supported,
    .run = cpu_rope_run,
    .impl_name = cpu_rope_impl_name,
};
