/* cpu_rattention_impl.c - RATTENTION on the "cpu" backend: the scratch bound, dispatch between
 * the forward (cpu_rattention_fwd.c), the backward (cpu_rattention_backward.c) and the decode
 * step (cpu_rattention_decode.c), the residual branch's chunk (option chunk=, else
 * ATTN_CPU_RATT_CHUNK; the backward's ATTN_CPU_LINEAR_BWD_CHUNK) and the implementation
 * names. */
#include "cpu_rattention.h"

#include "cpu_linear.h"

#include <stdio.h>

static int64_t chunk_of(const attn_cpu_state *s)
{
    return s->chunk > 0 ? s->chunk : ATTN_CPU_RATT_CHUNK;
}

static int64_t bwd_chunk_of(const attn_cpu_state *s)
{
    return s->chunk > 0 ? s->chunk : ATTN_CPU_LINEAR_BWD_CHUNK;
}

/* Floats of scratch a call may take at most (in double: sizes are refused long before it
 * loses precision): the forward's f32 copies of q, k and both branches plus the linear
 * kernel's per-thread chunk (the backward recomputes the forward, then adds its own); the
 * decode step's table and per-thread slots and state. */
static double scratch_floats(const attn_rattention_problem *p, const attn_cpu_state *s)
{
    const double rows = (double)p->B * (double)p->S, th = (double)s->threads;
    const double d = (double)(p->Dk + p->Dv), df = (double)p->Df;
    if (p->decode)
        return 2.0 * (double)p->slots * (double)p->Dk +
               th * (((double)p->slots + 1.0) * d + df * (double)p->Dv +
                     (double)p->group * (d + df + (double)p->slots + 2.0) + df + 4.0 * d);
    const double c = (double)chunk_of(s), g = (double)p->group;
    return rows * ((double)p->Hq * (d + (double)p->Dv) + (double)p->Hkv * (double)p->Dk) +
           th * ((g * c + c + df) * (df + d + c + 2.0) + 512.0 * 1024.0);
}

static attn_status cpu_ratt_supported(attn_backend *be, const void *problem)
{
    const attn_rattention_problem *p = problem;
    const attn_cpu_state *s = be->impl;
    const double bwd = p->backward ? attn_cpu_rattention_backward_floats(p, s, bwd_chunk_of(s))
                                   : 0.0;
    if (bwd < 0.0 || scratch_floats(p, s) + bwd > 0x1p56)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                         "cpu: the rattention%s scratch (B %lld, S %lld, Hq %lld, Dk %lld, "
                         "Dv %lld, window %lld) exceeds any memory",
                         p->backward ? " backward's" : "", (long long)p->B,
                         (long long)p->S, (long long)p->Hq, (long long)p->Dk, (long long)p->Dv,
                         (long long)p->window);
    return ATTN_OK;
}

static attn_status cpu_ratt_run(attn_backend *be, const void *problem)
{
    const attn_rattention_problem *p = problem;
    const attn_cpu_state *s = be->impl;
    const attn_status st =
        p->backward ? attn_cpu_rattention_backward(p, s, chunk_of(s), bwd_chunk_of(s))
        : p->decode ? attn_cpu_rattention_decode(p, s)
                    : attn_cpu_rattention_forward(p, s, chunk_of(s));
    return st == ATTN_OK ? attn_ok() : st;
}

/* "cpu:rattention_chunk64" (forward: the residual branch's chunk), "cpu:rattention_ring"
 * (decode step), "cpu:rattention_bwd_chunk128" (backward: the residual branch's backward
 * chunk; the window's runs on SDPA's backward tiles). */
static void cpu_ratt_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    const attn_rattention_problem *p = problem;
    if (p->backward)
        snprintf(buf, n, "cpu:rattention_bwd_chunk%lld", (long long)bwd_chunk_of(be->impl));
    else if (p->decode)
        snprintf(buf, n, "cpu:rattention_ring");
    else
        snprintf(buf, n, "cpu:rattention_chunk%lld", (long long)chunk_of(be->impl));
}

const attn_op_impl attn_cpu_rattention_impl = {
    .supported = cpu_ratt_supported,
    .run = cpu_ratt_run,
    .impl_name = cpu_ratt_impl_name,
};
