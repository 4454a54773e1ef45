/* ocl_linear.c - linear attention on the OpenCL backend: the plan (chunk length, value-column
 * block, work-group size, local memory, -D specialisation) that the capability check, the
 * implementation name and the forward call share; operand binding (device buffers in place,
 * host views copied to a device image of their extent and, for outputs, read back whole, so
 * the bytes between a strided view's elements come back as they were), shared with the
 * backward (ocl_linear.h); and the launch of cl/linear_chunk.cl. A backward problem goes to
 * ocl_linear_backward.c. */
#include "ocl_linear.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIN_CHUNK 32       /* default chunk length (option chunk=) */
#define LIN_VB 64          /* widest value-column block of a work-group */
#define LIN_MIN_VB 8
#define LIN_WG 64          /* work-items per group (fewer when the device allows fewer) */
#define LIN_MAX_DK 256     /* private phi rows are sized by Dk */

typedef struct lin_plan {
    int chunk, vb, wg;
    int64_t nvb;
    size_t local[3]; /* bytes of the state, phi(k) and value tiles */
    char options[512];
    char name[200];
} lin_plan;

static size_t tile_bytes(const attn_linear_problem *p, int chunk, int vb, size_t local[3])
{
    const size_t wb = (size_t)vb + (size_t)p->normalize;
    local[0] = 4 * (size_t)p->Df * wb;
    local[1] = 4 * (size_t)chunk * (size_t)p->Df;
    local[2] = 4 * (size_t)chunk * wb;
    return local[0] + local[1] + local[2];
}

/* The widest block and chunk whose tiles fit the device's local memory; narrower blocks while
 * that leaves compute units idle. */
static attn_status plan_tiles(const attn_cl_backend *cb, const attn_linear_problem *p,
                              lin_plan *pl)
{
    if (p->Dk > LIN_MAX_DK)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: linear attention supports Dk up to %d "
                         "(got %lld)", LIN_MAX_DK, (long long)p->Dk);
    pl->chunk = cb->chunk > 0 ? cb->chunk : LIN_CHUNK;
    pl->vb = p->Dv < LIN_VB ? (int)p->Dv : LIN_VB;
    const int64_t cus = cb->info.compute_units ? cb->info.compute_units : 1;
    while (pl->vb > LIN_MIN_VB && p->B * p->Hkv * ((p->Dv + pl->vb - 1) / pl->vb) < cus)
        pl->vb /= 2;
    while (tile_bytes(p, pl->chunk, pl->vb, pl->local) > cb->info.local_mem_bytes) {
        if (pl->vb > LIN_MIN_VB)
            pl->vb /= 2;
        else if (pl->chunk > 8 && cb->chunk <= 0)
            pl->chunk /= 2;
        else
            return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: the linear attention tiles (Df "
                             "%lld, chunk %d) need %zu bytes of local memory, the device has "
                             "%llu", (long long)p->Df, pl->chunk,
                             tile_bytes(p, pl->chunk, pl->vb, pl->local),
                             (unsigned long long)cb->info.local_mem_bytes);
    }
    pl->nvb = (p->Dv + pl->vb - 1) / pl->vb;
    pl->wg = cb->info.max_work_group_size < LIN_WG ? (int)cb->info.max_work_group_size : LIN_WG;
    return ATTN_OK;
}

static void plan_options(const attn_linear_problem *p, lin_plan *pl)
{
    static const char *const maps[] = {"identity", "elu", "elu1", "relu", "silu",
                                        "softmax_pair", "relu_pair"};
    const int decay = p->log_decay != NULL, sin = p->state_in.t != NULL;
    const int sout = p->state_out.t != NULL;
    snprintf(pl->options, sizeof pl->options,
             "-DDK=%lld -DDV=%lld -DFEATURE=%d -DCHUNK=%d -DVB=%d -DNORMALIZE=%d -DCAUSAL=%d "
             "-DHAS_DECAY=%d -DHAS_STATE_IN=%d -DHAS_STATE_OUT=%d -DDT_Q=%d -DDT_K=%d -DDT_V=%d "
             "-DDT_O=%d",
             (long long)p->Dk, (long long)p->Dv, (int)p->feature, pl->chunk, pl->vb, p->normalize,
             p->causal, decay, sin, sout, (int)p->q.dtype, (int)p->k.dtype, (int)p->v.dtype,
             (int)p->out.dtype);
    snprintf(pl->name, sizeof pl->name,
             "linear_chunk[dk%lld,dv%lld,%s,chunk%d,vb%d,wg%d,%s/%s/%s->%s%s%s%s%s%s]",
             (long long)p->Dk, (long long)p->Dv, maps[p->feature], pl->chunk, pl->vb, pl->wg,
             attn_dtype_name(p->q.dtype), attn_dtype_name(p->k.dtype),
             attn_dtype_name(p->v.dtype), attn_dtype_name(p->out.dtype),
             p->normalize ? ",norm" : "", p->causal ? ",causal" : "", decay ? ",decay" : "",
             sin ? ",state_in" : "", sout ? ",state_out" : "");
}

static attn_status make_plan(const attn_cl_backend *cb, const attn_linear_problem *p,
                             lin_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    ATTN_TRY(plan_tiles(cb, p, pl));
    plan_options(p, pl);
    return ATTN_OK;
}

static attn_status cl_linear_supported(attn_backend *be, const void *p)
{
    if (((const attn_linear_problem *)p)->backward)
        return attn_cl_linear_backward_supported(be->impl, p);
    lin_plan pl;
    return make_plan(be->impl, p, &pl);
}

static void cl_linear_impl_name(attn_backend *be, const void *p, char *buf, size_t n)
{
    if (((const attn_linear_problem *)p)->backward) {
        attn_cl_linear_backward_impl_name(be->impl, p, buf, n);
        return;
    }
    lin_plan pl;
    if (make_plan(be->impl, p, &pl) == ATTN_OK)
        snprintf(buf, n, "opencl:%s", pl.name);
    else
        snprintf(buf, n, "opencl:unsupported");
}

/* ---- operands ---- */

/* Bytes from element [0,0,0,0] to one past the last element of a non-empty view. */
static size_t view_bytes(const attn_operand *o)
{
    int64_t last = 0;
    for (int i = 0; i < 4; i++)
        last += (o->t->shape[i] - 1) * o->stride[i];
    return (size_t)(last + 1) * attn_dtype_size(o->dtype);
}

attn_status attn_cl_linear_bind(attn_cl_backend *cb, const attn_operand *o, int output,
                                attn_cl_lin_mem *m)
{
    memset(m, 0, sizeof *m);
    if (!o->t || attn_view_empty(o->t))
        return ATTN_OK;
    for (int i = 0; i < 4; i++)
        m->st.s[i] = o->stride[i];
    if (!o->ptr) {
        m->mem = (cl_mem)o->t->buffer->impl;
        m->off = o->t->offset / attn_dtype_size(o->dtype);
        return ATTN_OK;
    }
    cl_int err;
    m->bytes = view_bytes(o);
    m->mem = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, m->bytes, o->ptr,
                            &err);
    ATTN_CL_TRY(err, "clCreateBuffer (linear attention operand)");
    m->owned = 1;
    m->host_back = output ? o->ptr : NULL;
    return ATTN_OK;
}

attn_status attn_cl_linear_bind_all(attn_cl_backend *cb, const attn_operand *const *ops, int n,
                                    unsigned outputs, attn_cl_lin_mem *m)
{
    attn_status st = ATTN_OK;
    for (int i = 0; i < n && st == ATTN_OK; i++)
        st = attn_cl_linear_bind(cb, ops[i], (outputs >> i) & 1u, &m[i]);
    return st;
}

cl_int attn_cl_linear_read_back(attn_cl_backend *cb, const attn_cl_lin_mem *m, int n,
                                cl_uint nwait, const cl_event *wait, cl_event *ev,
                                cl_uint *nev)
{
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < n && err == CL_SUCCESS; i++)
        if (m[i].host_back) {
            err = clEnqueueReadBuffer(cb->queue, m[i].mem, CL_FALSE, 0, m[i].bytes,
                                      m[i].host_back, nwait, nwait ? wait : NULL, &ev[*nev]);
            *nev += err == CL_SUCCESS;
        }
    return err;
}

attn_status attn_cl_linear_finish(attn_cl_backend *cb, attn_cl_lin_mem *m, int n,
                                  attn_status st, const char *name)
{
    for (int i = 0; i < n; i++)
        if (m[i].owned)
            clReleaseMemObject(m[i].mem);
    if (st == ATTN_OK)
        attn_cl_note_kernel(cb, name);
    return st;
}

attn_status attn_cl_linear_bind_decay(attn_cl_backend *cb, const attn_linear_problem *p,
                                      attn_cl_lin_mem *m)
{
    memset(m, 0, sizeof *m);
    if (!p->log_decay)
        return ATTN_OK;
    float *ld = malloc(sizeof(float) * (size_t)p->Hkv);
    if (!ld)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "opencl: out of memory");
    for (int64_t g = 0; g < p->Hkv; g++)
        ld[g] = (float)p->log_decay[g];
    cl_int err;
    m->mem = clCreateBuffer(cb->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                            sizeof(float) * (size_t)p->Hkv, ld, &err);
    free(ld);
    ATTN_CL_TRY(err, "clCreateBuffer (decay)");
    m->owned = 1;
    return ATTN_OK;
}

/* ---- the launch ---- */

enum { M_Q, M_K, M_V, M_OUT, M_SIN, M_ZIN, M_SOUT, M_ZOUT, M_DECAY, M_N };

static cl_int set_args(cl_kernel k, const attn_linear_problem *p, const lin_plan *pl,
                       const attn_cl_lin_mem m[M_N])
{
    cl_int err = CL_SUCCESS;
    cl_uint a = 0;
    for (int i = M_Q; i <= M_ZOUT; i++) {
        err |= clSetKernelArg(k, a++, sizeof(cl_mem), &m[i].mem);
        err |= clSetKernelArg(k, a++, sizeof(cl_ulong), &m[i].off);
        err |= clSetKernelArg(k, a++, sizeof(cl_long4), &m[i].st);
    }
    err |= clSetKernelArg(k, a++, sizeof(cl_mem), &m[M_DECAY].mem);
    const cl_long dims[] = {p->S, p->Hkv, p->group, p->shift, pl->nvb};
    for (int i = 0; i < 5; i++)
        err |= clSetKernelArg(k, a++, sizeof(cl_long), &dims[i]);
    const cl_float scale = (cl_float)p->scale, eps = (cl_float)p->eps;
    err |= clSetKernelArg(k, a++, sizeof scale, &scale);
    err |= clSetKernelArg(k, a++, sizeof eps, &eps);
    for (int i = 0; i < 3; i++)
        err |= clSetKernelArg(k, a++, pl->local[i], NULL);
    return err;
}

/* Kernel, then the host outputs' images read back, all waited for. */
static attn_status launch(attn_cl_backend *cb, const attn_linear_problem *p, const lin_plan *pl,
                          attn_cl_lin_mem m[M_N])
{
    cl_kernel k;
    ATTN_TRY(attn_cl_create_kernel(cb, "linear_chunk.cl", "attn_linear_chunk", pl->options, &k));
    cl_int err = set_args(k, p, pl, m);
    cl_event ev[M_N];
    cl_uint nev = 0;
    size_t local = (size_t)pl->wg, global = local * (size_t)(p->B * p->Hkv * pl->nvb);
    if (err == CL_SUCCESS)
        err = clEnqueueNDRangeKernel(cb->queue, k, 1, NULL, &global, &local, 0, NULL, &ev[nev++]);
    clReleaseKernel(k);
    ATTN_CL_TRY(err, "clEnqueueNDRangeKernel (attn_linear_chunk)");
    err = attn_cl_linear_read_back(cb, m + M_OUT, M_ZOUT - M_OUT + 1, 1, &ev[0], ev, &nev);
    cl_int werr = clWaitForEvents(nev, ev);
    for (cl_uint i = 0; i < nev; i++)
        clReleaseEvent(ev[i]);
    ATTN_CL_TRY(err, "clEnqueueReadBuffer (linear attention output)");
    ATTN_CL_TRY(werr, "clWaitForEvents (linear attention)");
    return ATTN_OK;
}

static attn_status cl_linear_run(attn_backend *be, const void *problem)
{
    const attn_linear_problem *p = problem;
    attn_cl_backend *cb = be->impl;
    if (p->backward)
        return attn_cl_linear_backward_run(cb, p);
    lin_plan pl;
    ATTN_TRY(make_plan(cb, p, &pl));
    const attn_operand *ops[M_DECAY] = {&p->q, &p->k, &p->v, &p->out, &p->state_in, &p->z_in,
                                        &p->state_out, &p->z_out};
    attn_cl_lin_mem m[M_N];
    memset(m, 0, sizeof m);
    const unsigned outs = 1u << M_OUT | 1u << M_SOUT | 1u << M_ZOUT;
    attn_status st = attn_cl_linear_bind_all(cb, ops, M_DECAY, outs, m);
    if (st == ATTN_OK)
        st = attn_cl_linear_bind_decay(cb, p, &m[M_DECAY]);
    if (st == ATTN_OK)
        st = launch(cb, p, &pl, m);
    return attn_cl_linear_finish(cb, m, M_N, st, pl.name);
}

const attn_op_impl attn_opencl_linear_impl = {
    .supported = cl_linear_supported,
    .run = cl_linear_run,
    .impl_name = cl_linear_impl_name,
};
