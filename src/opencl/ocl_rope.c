/* ocl_rope.c - RoPE on the OpenCL backend: the specialisation of cl/rope_apply.cl (dtypes,
 * pair layout, position dtype) that the capability check, the name and the run share; the
 * per-pair frequencies as 64-bit fixed-point turns; operands (device buffers in place, host
 * views staged: inputs copied over their extent, the output written compact and then placed
 * into the user's strides); one 2-D launch. */
#include "attn_rope_problem.h"
#include "ocl_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rope_plan {
    char options[160];
    char name[96];
} rope_plan;

static void make_plan(const attn_rope_problem *p, rope_plan *pl)
{
    const int pos_dt = p->pos.t ? (int)p->pos.dtype : 0;
    snprintf(pl->options, sizeof pl->options, "-DDT_X=%d -DDT_O=%d -DINTERLEAVED=%d -DPOS_DT=%d",
             (int)p->x.dtype, (int)p->out.dtype, p->layout == ATTN_ROPE_INTERLEAVED, pos_dt);
    snprintf(pl->name, sizeof pl->name, "rope[%s,%s->%s%s%s]",
             p->layout == ATTN_ROPE_INTERLEAVED ? "interleaved" : "half",
             attn_dtype_name(p->x.dtype), attn_dtype_name(p->out.dtype),
             pos_dt ? ",pos=" : "", pos_dt ? attn_dtype_name(p->pos.dtype) : "");
}

/* The 2-D range must fit size_t, and rows must fit a long of the kernel. */
static attn_status cl_rope_supported(attn_backend *be, const void *problem)
{
    const attn_rope_problem *p = problem;
    (void)be;
    if ((uint64_t)(p->B * p->S) > (uint64_t)SIZE_MAX / 2 || (uint64_t)p->D > SIZE_MAX / 2)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: rope range exceeds size_t");
    return ATTN_OK;
}

static void cl_rope_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    rope_plan pl;
    (void)be;
    make_plan(problem, &pl);
    snprintf(buf, n, "opencl:%s", pl.name);
}

/* turns[i] = theta^(-2i/rot) / (2 pi) as a fraction of 2^64 (long double: 64-bit mantissa on
 * x86, more elsewhere), so that pos * turns[i] modulo 2^64 is the angle's fractional turn. */
void attn_cl_rope_turns(double theta, int64_t rot, int64_t npairs, cl_ulong *turns)
{
    const long double two_pi = 6.283185307179586476925286766559005768L;
    for (int64_t i = 0; i < npairs; i++) {
        long double f = powl((long double)theta, -(long double)(2 * i) / (long double)rot);
        long double t = fmodl(f / two_pi, 1.0L); /* whole turns per position do not matter */
        long double v = floorl(ldexpl(t, 64) + 0.5L);
        turns[i] = v >= 0x1p64L ? 0 : (cl_ulong)v;
    }
}

/* One operand as the kernel sees it: memory, element offset, element strides. */
typedef struct rope_arg {
    cl_mem mem;
    cl_ulong off;
    cl_long4 st;
    int temp;    /* mem belongs to this call */
} rope_arg;

typedef struct rope_call {
    attn_cl_backend *cb;
    rope_arg x, out, pos, turns;
    void *host_out; /* compact output read back here when out is a host view */
    size_t out_bytes;
} rope_call;

static attn_status temp_buffer(rope_call *c, rope_arg *a, cl_mem_flags flags, size_t bytes,
                               void *src)
{
    cl_int err;
    a->mem = clCreateBuffer(c->cb->ctx, flags | (src ? CL_MEM_COPY_HOST_PTR : 0), bytes, src,
                            &err);
    ATTN_CL_TRY(err, "clCreateBuffer (rope)");
    a->temp = 1;
    return ATTN_OK;
}

/* An input: a device view as is, a host view copied over its byte extent. */
static attn_status stage_input(rope_call *c, const attn_operand *o, rope_arg *a)
{
    if (!o->t)
        return ATTN_OK;
    const size_t es = attn_dtype_size(o->dtype);
    int64_t last = 0;
    for (int i = 0; i < 4; i++) {
        a->st.s[i] = o->stride[i];
        last += (o->t->shape[i] - 1) * o->stride[i];
    }
    if (!o->ptr) {
        a->mem = (cl_mem)o->t->buffer->impl;
        a->off = o->t->offset / es;
        return ATTN_OK;
    }
    return temp_buffer(c, a, CL_MEM_READ_ONLY, (size_t)(last + 1) * es, o->ptr);
}

/* The output: a device view as is (also when it is x itself); a host view gets a compact
 * [B][S][H][D] buffer. */
static attn_status stage_output(rope_call *c, const attn_rope_problem *p)
{
    const attn_operand *o = &p->out;
    if (!o->ptr) {
        for (int i = 0; i < 4; i++)
            c->out.st.s[i] = o->stride[i];
        c->out.mem = (cl_mem)o->t->buffer->impl;
        c->out.off = o->t->offset / attn_dtype_size(o->dtype);
        return ATTN_OK;
    }
    const int64_t dense[4] = {p->S * p->H * p->D, p->H * p->D, p->D, 1};
    for (int i = 0; i < 4; i++)
        c->out.st.s[i] = dense[i];
    c->out_bytes = (size_t)(p->B * p->S * p->H * p->D) * attn_dtype_size(o->dtype);
    if (!(c->host_out = malloc(c->out_bytes)))
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "opencl: out of memory (rope output)");
    return temp_buffer(c, &c->out, CL_MEM_WRITE_ONLY, c->out_bytes, NULL);
}

/* Compact rows into the user's view, row by row (the view's gaps are never written). */
static void place_output(const attn_rope_problem *p, const char *src)
{
    const size_t es = attn_dtype_size(p->out.dtype), row = (size_t)p->D * es;
    for (int64_t r = 0; r < p->B * p->S * p->H; r++, src += row) {
        const int64_t h = r % p->H, s = r / p->H % p->S, b = r / (p->H * p->S);
        char *dst = (char *)p->out.ptr + attn_at(&p->out, b, s, h, 0) * (int64_t)es;
        if (p->out.stride[3] == 1)
            memcpy(dst, src, row);
        else
            for (int64_t d = 0; d < p->D; d++)
                memcpy(dst + d * p->out.stride[3] * (int64_t)es, src + (size_t)d * es, es);
    }
}

static attn_status set_args(cl_kernel k, const rope_call *c, const attn_rope_problem *p)
{
    const rope_arg *ops[3] = {&c->x, &c->out, &c->pos};
    const cl_long sizes[5] = {p->S, p->H, p->D, p->rot, p->B * p->S};
    const cl_long offset = p->offset;
    cl_uint n = 0;
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < 3; i++) {
        err |= clSetKernelArg(k, n++, sizeof(cl_mem), &ops[i]->mem);
        err |= clSetKernelArg(k, n++, sizeof(cl_ulong), &ops[i]->off);
        err |= clSetKernelArg(k, n++, sizeof(cl_long4), &ops[i]->st);
    }
    err |= clSetKernelArg(k, n++, sizeof(cl_mem), &c->turns.mem);
    err |= clSetKernelArg(k, n++, sizeof(cl_long), &offset);
    for (int i = 0; i < 5; i++)
        err |= clSetKernelArg(k, n++, sizeof(cl_long), &sizes[i]);
    ATTN_CL_TRY(err, "clSetKernelArg (attn_rope)");
    return ATTN_OK;
}

/* Launch on (D - rot/2 slots) x (B S rows), then wait for this call's own commands. */
static attn_status launch(rope_call *c, const attn_rope_problem *p, const rope_plan *pl)
{
    cl_kernel k;
    ATTN_TRY(attn_cl_create_kernel(c->cb, "rope_apply.cl", "attn_rope", pl->options, &k));
    attn_status st = set_args(k, c, p);
    const size_t global[2] = {(size_t)(p->D - p->npairs), (size_t)(p->B * p->S)};
    cl_event ev = NULL;
    cl_int err = st == ATTN_OK ? clEnqueueNDRangeKernel(c->cb->queue, k, 2, NULL, global, NULL,
                                                        0, NULL, &ev)
                               : CL_SUCCESS;
    clReleaseKernel(k);
    ATTN_TRY(st);
    ATTN_CL_TRY(err, "clEnqueueNDRangeKernel (attn_rope)");
    if (c->host_out)
        err = clEnqueueReadBuffer(c->cb->queue, c->out.mem, CL_TRUE, 0, c->out_bytes,
                                  c->host_out, 1, &ev, NULL);
    else
        err = clWaitForEvents(1, &ev);
    clReleaseEvent(ev);
    ATTN_CL_TRY(err, "waiting for attn_rope");
    return ATTN_OK;
}

static attn_status run_call(rope_call *c, const attn_rope_problem *p, const rope_plan *pl)
{
    cl_ulong *turns = malloc((size_t)p->npairs * sizeof(cl_ulong));
    if (!turns)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "opencl: out of memory (rope frequencies)");
    attn_cl_rope_turns(p->theta, p->rot, p->npairs, turns);
    attn_status st = temp_buffer(c, &c->turns, CL_MEM_READ_ONLY,
                                 (size_t)p->npairs * sizeof(cl_ulong), turns);
    free(turns);
    ATTN_TRY(st);
    ATTN_TRY(stage_input(c, &p->x, &c->x));
    ATTN_TRY(stage_input(c, &p->pos, &c->pos));
    ATTN_TRY(stage_output(c, p));
    ATTN_TRY(launch(c, p, pl));
    if (c->host_out)
        place_output(p, c->host_out);
    return ATTN_OK;
}

static attn_status cl_rope_run(attn_backend *be, const void *problem)
{
    const attn_rope_problem *p = problem;
    rope_plan pl;
    make_plan(p, &pl);
    rope_call c;
    memset(&c, 0, sizeof c);
    c.cb = be->impl;
    attn_status st = run_call(&c, p, &pl);
    rope_arg *all[] = {&c.x, &c.out, &c.pos, &c.turns};
    for (int i = 0; i < 4; i++)
        if (all[i]->temp)
            clReleaseMemObject(all[i]->mem);
    free(c.host_out);
    if (st == ATTN_OK)
        attn_cl_note_kernel(c.cb, pl.name);
    return st;
}

const attn_op_impl attn_opencl_rope_impl = {
    .supported = cl_rope_supported,
    .run = cl_rope_run,
    .impl_name = cl_rope_impl_name,
};
