/* cpu_linear_impl.c - linear attention on the "cpu" backend, forward and backward: the chunk
 * length (option chunk=, else each direction's default), the scratch bound, and the name of
 * the implementation a call runs. */
#include "cpu_linear.h"

#include <stdio.h>

static int64_t chunk_of(const attn_cpu_state *s)
{
    return s->chunk > 0 ? s->chunk : ATTN_CPU_LINEAR_CHUNK;
}

static int64_t bwd_chunk_of(const attn_cpu_state *s)
{
    return s->chunk > 0 ? s->chunk : ATTN_CPU_LINEAR_BWD_CHUNK;
}

/* The scratch is a few floats per (row, feature), (row, chunk position) and (feature, value)
 * per thread: bound it with checked arithmetic before the kernel sizes it. */
static attn_status cpu_linear_supported(attn_backend *be, const void *problem)
{
    const attn_linear_problem *p = problem;
    const attn_cpu_state *s = be->impl;
    if (p->backward) {
        int64_t n;
        if (!attn_cpu_linear_backward_floats(p, bwd_chunk_of(s), &n) ||
            __builtin_mul_overflow(n, (int64_t)s->threads, &n) || n > (int64_t)1 << 58)
            return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                             "cpu: the linear attention backward's scratch (Hq/Hkv %lld, S %lld, "
                             "Dk %lld, Dv %lld) exceeds any memory", (long long)p->group,
                             (long long)p->S, (long long)p->Dk, (long long)p->Dv);
        return ATTN_OK;
    }
    const int64_t C = chunk_of(s);
    int64_t rows, n, t;
    int bad = __builtin_mul_overflow(p->group, C, &rows) ||
              __builtin_add_overflow(p->Df, p->Dv + p->Dk + C + 2, &t) ||
              __builtin_mul_overflow(rows + C + p->Df, t, &n) ||
              __builtin_mul_overflow(n, (int64_t)s->threads, &n);
    if (bad || n > (int64_t)1 << 58)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                         "cpu: the linear attention scratch (Hq/Hkv %lld, Dk %lld, Dv %lld, "
                         "chunk %lld) exceeds any memory", (long long)p->group, (long long)p->Dk,
                         (long long)p->Dv, (long long)C);
    return ATTN_OK;
}

static attn_status cpu_linear_run(attn_backend *be, const void *problem)
{
    const attn_cpu_state *s = be->impl;
    const attn_linear_problem *p = problem;
    attn_status st = p->backward ? attn_cpu_linear_backward(p, s->threads, bwd_chunk_of(s))
                                 : attn_cpu_linear_chunked(p, s->threads, chunk_of(s));
    return st == ATTN_OK ? attn_ok() : st;
}

/* "cpu:linear_chunk128_blis" (+ "_cols4" when value columns are split across items);
 * the backward "cpu:linear_bwd_chunk128_blis". */
static void cpu_linear_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    const attn_cpu_state *s = be->impl;
    if (((const attn_linear_problem *)problem)->backward) {
        snprintf(buf, n, "cpu:linear_bwd_chunk%lld_blis", (long long)bwd_chunk_of(s));
        return;
    }
    const int64_t nvb = attn_cpu_linear_col_blocks(problem, s->threads);
    char cols[32] = "";
    if (nvb > 1)
        snprintf(cols, sizeof cols, "_cols%lld", (long long)nvb);
    snprintf(buf, n, "cpu:linear_chunk%lld_blis%s", (long long)chunk_of(s), cols);
}

const attn_op_impl attn_cpu_linear_impl = {
    .supported = cpu_linear_supported,
    .run = cpu_linear_run,
    .impl_name = cpu_linear_impl_name,
};
