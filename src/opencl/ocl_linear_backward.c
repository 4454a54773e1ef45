/* ocl_linear_backward.c - the linear attention backward on the OpenCL backend: the plan (chunk
 * length, work-group size, local memory of both kernels, -D specialisation) that the
 * capability check, the implementation name and the call share, and the two launches of
 * cl/linear_chunk_bwd.cl (built after cl/linear_chunk.cl, whose feature maps and tiles it
 * reuses): the forward sweep for dq, which leaves each row's u = [dnum | dden] in an f32
 * scratch, then the reverse sweep for dk, dv and the initial state's gradients. One work-group
 * per (batch, KV head) in both, so every sum runs in a fixed order (no atomics). */
#include "ocl_linear.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LB_CHUNK 32   /* default chunk length (option chunk=) */
#define LB_WG 64      /* work-items per group (fewer when the device allows fewer) */
#define LB_MAX_DK 256 /* private phi rows are sized by Dk */
#define LB_FILES "linear_chunk.cl+linear_chunk_bwd.cl"

typedef struct lb_plan {
    int chunk, wg;
    size_t lq[3];  /* bytes of the dq sweep's state, phi(k) and value tiles */
    size_t lkv[3]; /* bytes of the reverse sweep's state, f and u tiles */
    char options[700];
    char name[300];
} lb_plan;

/* Local memory of both kernels at a chunk length; the larger of the two. */
static size_t tile_bytes(const attn_linear_problem *p, int chunk, lb_plan *pl)
{
    const size_t wb = (size_t)(p->Dv + p->normalize), df = (size_t)p->Df;
    const size_t rows = (size_t)chunk * (size_t)p->group;
    pl->lq[0] = pl->lkv[0] = 4 * df * wb;
    pl->lq[1] = 4 * (size_t)chunk * df;
    pl->lq[2] = 4 * (size_t)chunk * wb;
    pl->lkv[1] = 4 * rows * df;
    pl->lkv[2] = 4 * rows * wb;
    const size_t q = pl->lq[0] + pl->lq[1] + pl->lq[2], kv = pl->lkv[0] + pl->lkv[1] + pl->lkv[2];
    return q > kv ? q : kv;
}

/* The longest chunk (the option's, else the default halved) whose tiles fit local memory; the
 * rows' u scratch within a quarter of the device memory. */
static attn_status plan_tiles(const attn_cl_backend *cb, const attn_linear_problem *p,
                              lb_plan *pl)
{
    if (p->Dk > LB_MAX_DK)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: the linear attention backward supports "
                         "Dk up to %d (got %lld)", LB_MAX_DK, (long long)p->Dk);
    pl->chunk = cb->chunk > 0 ? cb->chunk : LB_CHUNK;
    while (tile_bytes(p, pl->chunk, pl) > cb->info.local_mem_bytes) {
        if (pl->chunk > 1 && cb->chunk <= 0)
            pl->chunk /= 2;
        else
            return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: the linear attention backward's "
                             "tiles (Df %lld, Dv %lld, %lld heads per KV head, chunk %d) need "
                             "%zu bytes of local memory, the device has %llu",
                             (long long)p->Df, (long long)p->Dv, (long long)p->group, pl->chunk,
                             tile_bytes(p, pl->chunk, pl),
                             (unsigned long long)cb->info.local_mem_bytes);
    }
    pl->wg = cb->info.max_work_group_size < LB_WG ? (int)cb->info.max_work_group_size : LB_WG;
    const double scratch = 4.0 * (double)(p->B * p->Hq * p->S) * (double)(p->Dv + p->normalize);
    if (scratch > (double)cb->info.global_mem_bytes / 4)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: the linear attention backward's scratch "
                         "(%.3g bytes) exceeds a quarter of the device memory", scratch);
    return ATTN_OK;
}

static void plan_options(const attn_linear_problem *p, lb_plan *pl)
{
    static const char *const maps[] = {"identity", "elu", "elu1", "relu", "silu",
                                        "softmax_pair", "relu_pair"};
    const int decay = p->log_decay != NULL, sin = p->state_in.t != NULL;
    const int dso = p->d_state_out.t != NULL, dzo = p->d_z_out.t != NULL;
    const int dsi = p->d_state_in.t != NULL, dzi = p->d_z_in.t != NULL;
    snprintf(pl->options, sizeof pl->options,
             "-DDK=%lld -DDV=%lld -DVB=%lld -DFEATURE=%d -DCHUNK=%d -DNORMALIZE=%d -DCAUSAL=%d "
             "-DHAS_DECAY=%d -DHAS_STATE_IN=%d -DHAS_DSTATE_OUT=%d -DHAS_DZ_OUT=%d "
             "-DHAS_DSTATE_IN=%d -DHAS_DZ_IN=%d -DDT_Q=%d -DDT_K=%d -DDT_V=%d -DDT_DO=%d "
             "-DDT_DQ=%d -DDT_DK=%d -DDT_DV=%d",
             (long long)p->Dk, (long long)p->Dv, (long long)p->Dv, (int)p->feature, pl->chunk,
             p->normalize, p->causal, decay, sin, dso, dzo, dsi, dzi, (int)p->q.dtype,
             (int)p->k.dtype, (int)p->v.dtype, (int)p->dout.dtype, (int)p->dq.dtype,
             (int)p->dk.dtype, (int)p->dv.dtype);
    snprintf(pl->name, sizeof pl->name,
             "linear_chunk_bwd[dk%lld,dv%lld,%s,chunk%d,wg%d,%s/%s/%s/%s->%s/%s/%s%s%s%s%s%s%s]",
             (long long)p->Dk, (long long)p->Dv, maps[p->feature], pl->chunk, pl->wg,
             attn_dtype_name(p->q.dtype), attn_dtype_name(p->k.dtype),
             attn_dtype_name(p->v.dtype), attn_dtype_name(p->dout.dtype),
             attn_dtype_name(p->dq.dtype), attn_dtype_name(p->dk.dtype),
             attn_dtype_name(p->dv.dtype), p->normalize ? ",norm" : "",
             p->causal ? ",causal" : "", decay ? ",decay" : "", sin ? ",state_in" : "",
             dso || dzo ? ",d_state_out" : "", dsi || dzi ? ",d_state_in" : "");
}

static attn_status make_plan(const attn_cl_backend *cb, const attn_linear_problem *p,
                             lb_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    ATTN_TRY(plan_tiles(cb, p, pl));
    plan_options(p, pl);
    return ATTN_OK;
}

attn_status attn_cl_linear_backward_supported(const attn_cl_backend *cb,
                                              const attn_linear_problem *p)
{
    lb_plan pl;
    return make_plan(cb, p, &pl);
}

void attn_cl_linear_backward_impl_name(const attn_cl_backend *cb, const attn_linear_problem *p,
                                       char *buf, size_t n)
{
    lb_plan pl;
    if (make_plan(cb, p, &pl) == ATTN_OK)
        snprintf(buf, n, "opencl:%s", pl.name);
    else
        snprintf(buf, n, "opencl:unsupported");
}

/* ---- the launches ---- */

/* The operands: inputs, then the outputs (M_DQ on), then the scratch u and the decay. */
enum { M_Q, M_K, M_V, M_DO, M_SIN, M_ZIN, M_DSO, M_DZO, M_DQ, M_DK, M_DV, M_DSI, M_DZI, M_U,
       M_DECAY, M_N };

typedef struct lb_args {
    cl_kernel k;
    cl_uint i;
    cl_int err;
} lb_args;

static void arg(lb_args *a, size_t size, const void *v)
{
    a->err |= clSetKernelArg(a->k, a->i++, size, v);
}

static void arg_mem(lb_args *a, const attn_cl_lin_mem *m, int strided)
{
    arg(a, sizeof(cl_mem), &m->mem);
    if (strided) {
        arg(a, sizeof(cl_ulong), &m->off);
        arg(a, sizeof(cl_long4), &m->st);
    }
}

/* S, Hkv, G, shift, scale (and eps for the dq sweep). */
static void arg_dims(lb_args *a, const attn_linear_problem *p, int eps)
{
    const cl_long dims[] = {p->S, p->Hkv, p->group, p->shift};
    for (int i = 0; i < 4; i++)
        arg(a, sizeof(cl_long), &dims[i]);
    const cl_float scale = (cl_float)p->scale, e = (cl_float)p->eps;
    arg(a, sizeof scale, &scale);
    if (eps)
        arg(a, sizeof e, &e);
}

static cl_int set_q_args(cl_kernel k, const attn_linear_problem *p, const lb_plan *pl,
                         const attn_cl_lin_mem m[M_N])
{
    lb_args a = {k, 0, CL_SUCCESS};
    const int strided[] = {M_Q, M_K, M_V, M_DO, M_SIN, M_ZIN, M_DQ};
    for (size_t i = 0; i < sizeof strided / sizeof strided[0]; i++)
        arg_mem(&a, &m[strided[i]], 1);
    arg_mem(&a, &m[M_U], 0);
    arg_mem(&a, &m[M_DECAY], 0);
    arg_dims(&a, p, 1);
    for (int i = 0; i < 3; i++)
        arg(&a, pl->lq[i], NULL);
    return a.err;
}

static cl_int set_kv_args(cl_kernel k, const attn_linear_problem *p, const lb_plan *pl,
                          const attn_cl_lin_mem m[M_N])
{
    lb_args a = {k, 0, CL_SUCCESS};
    for (int i = M_Q; i <= M_V; i++)
        arg_mem(&a, &m[i], 1);
    arg_mem(&a, &m[M_U], 0);
    const int strided[] = {M_DSO, M_DZO, M_DK, M_DV, M_DSI, M_DZI};
    for (size_t i = 0; i < sizeof strided / sizeof strided[0]; i++)
        arg_mem(&a, &m[strided[i]], 1);
    arg_mem(&a, &m[M_DECAY], 0);
    arg_dims(&a, p, 0);
    for (int i = 0; i < 3; i++)
        arg(&a, pl->lkv[i], NULL);
    return a.err;
}

/* Both kernels (created first, so a build failure writes nothing), the dq sweep then the
 * reverse sweep, then the host outputs' images read back, all waited for. */
static attn_status launch(attn_cl_backend *cb, const attn_linear_problem *p, const lb_plan *pl,
                          attn_cl_lin_mem m[M_N])
{
    cl_kernel kq, kkv;
    ATTN_TRY(attn_cl_create_kernel(cb, LB_FILES, "attn_linear_bwd_q", pl->options, &kq));
    attn_status st = attn_cl_create_kernel(cb, LB_FILES, "attn_linear_bwd_kv", pl->options, &kkv);
    if (st != ATTN_OK) {
        clReleaseKernel(kq);
        return st;
    }
    cl_int err = set_q_args(kq, p, pl, m) | set_kv_args(kkv, p, pl, m);
    cl_event ev[M_N + 2];
    cl_uint nev = 0;
    const size_t local = (size_t)pl->wg, global = local * (size_t)(p->B * p->Hkv);
    if (err == CL_SUCCESS && global > 0) {
        err = clEnqueueNDRangeKernel(cb->queue, kq, 1, NULL, &global, &local, 0, NULL,
                                     &ev[nev]);
        nev += err == CL_SUCCESS;
        if (err == CL_SUCCESS) {
            err = clEnqueueNDRangeKernel(cb->queue, kkv, 1, NULL, &global, &local, 1,
                                         &ev[nev - 1], &ev[nev]);
            nev += err == CL_SUCCESS;
        }
    }
    clReleaseKernel(kq);
    clReleaseKernel(kkv);
    const cl_uint kernels = nev;
    if (err == CL_SUCCESS)
        err = attn_cl_linear_read_back(cb, m + M_DQ, M_DZI - M_DQ + 1, kernels ? 1 : 0,
                                       kernels ? &ev[kernels - 1] : NULL, ev, &nev);
    cl_int werr = nev ? clWaitForEvents(nev, ev) : CL_SUCCESS;
    for (cl_uint i = 0; i < nev; i++)
        clReleaseEvent(ev[i]);
    ATTN_CL_TRY(err, "clEnqueueNDRangeKernel / clEnqueueReadBuffer (linear attention backward)");
    ATTN_CL_TRY(werr, "clWaitForEvents (linear attention backward)");
    return ATTN_OK;
}

/* The f32 rows u = [dnum | dden] the dq sweep leaves for the reverse sweep: [B][Hq][S][W]. */
static attn_status bind_scratch(attn_cl_backend *cb, const attn_linear_problem *p,
                                attn_cl_lin_mem *m)
{
    memset(m, 0, sizeof *m);
    const int64_t n = p->B * p->Hq * p->S * (p->Dv + p->normalize);
    cl_int err;
    m->mem = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE, sizeof(float) * (size_t)(n > 0 ? n : 1),
                            NULL, &err);
    ATTN_CL_TRY(err, "clCreateBuffer (linear attention backward scratch)");
    m->owned = 1;
    return ATTN_OK;
}

attn_status attn_cl_linear_backward_run(attn_cl_backend *cb, const attn_linear_problem *p)
{
    lb_plan pl;
    ATTN_TRY(make_plan(cb, p, &pl));
    const attn_operand *ops[M_U] = {&p->q,     &p->k,  &p->v,  &p->dout,       &p->state_in,
                                    &p->z_in,  &p->d_state_out, &p->d_z_out,   &p->dq,
                                    &p->dk,    &p->dv, &p->d_state_in,         &p->d_z_in};
    attn_cl_lin_mem m[M_N];
    memset(m, 0, sizeof m);
    const unsigned outs = (1u << M_U) - (1u << M_DQ); /* dq .. d_z_in */
    attn_status st = attn_cl_linear_bind_all(cb, ops, M_U, outs, m);
    if (st == ATTN_OK)
        st = bind_scratch(cb, p, &m[M_U]);
    if (st == ATTN_OK)
        st = attn_cl_linear_bind_decay(cb, p, &m[M_DECAY]);
    if (st == ATTN_OK)
        st = launch(cb, p, &pl, m);
    return attn_cl_linear_finish(cb, m, M_N, st, pl.name);
}
