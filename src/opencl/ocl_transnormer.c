/* ocl_transnormer.c - TransNormer on the OpenCL backend: the plan (kernel specialisations,
 * shared by supported, impl_name and run), operand binding (device buffers in place, host
 * views uploaded, a host output gathered in a compact buffer and scattered back), and the
 * launches: NormAttention's chunk states, scan and rows or DiagAttention's rows
 * (cl/transnormer_attn.cl), then the SimpleRMSNorm store (cl/transnormer_srms.cl). */
#include "attn_transnormer_problem.h"
#include "ocl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TN_CHUNK 64
#define TN_WG 64
/* Head dims held in private arrays by one work-item. */
#define TN_MAX_DK 512

typedef struct tn_plan {
    char attn_options[256], srms_options[96], name[160];
    int64_t nc; /* NormAttention chunks */
} tn_plan;

static attn_status make_plan(const attn_transnormer_problem *p, tn_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    if (p->Dk > TN_MAX_DK || p->Dv > TN_MAX_DK)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: transnormer head dims above %d (Dk %lld, "
                         "Dv %lld)", TN_MAX_DK, (long long)p->Dk, (long long)p->Dv);
    const int norm = p->mode == ATTN_TRANSNORMER_MODE_NORM;
    pl->nc = (p->S + TN_CHUNK - 1) / TN_CHUNK;
    snprintf(pl->attn_options, sizeof pl->attn_options,
             "-DDK=%lld -DDV=%lld -DDT_Q=%d -DDT_K=%d -DDT_V=%d -DCAUSAL=%d -DFEATURE=%d "
             "-DRELU=%d -DPAD_ZERO=%d", (long long)p->Dk, (long long)p->Dv, (int)p->q.dtype,
             (int)p->k.dtype, (int)p->v.dtype, p->causal, (int)p->feature,
             p->scores == ATTN_TRANSNORMER_SCORES_RELU, p->pad_zero);
    snprintf(pl->srms_options, sizeof pl->srms_options, "-DDT_O=%d -DSRMS=%d",
             (int)p->out.dtype, p->srms);
    snprintf(pl->name, sizeof pl->name, "transnormer_%s[dk%lld,dv%lld,%s/%s/%s->%s%s%s]",
             norm ? "norm_chunk64" : p->scores == ATTN_TRANSNORMER_SCORES_RELU ? "diag_relu"
                                                                              : "diag_softmax",
             (long long)p->Dk, (long long)p->Dv, attn_dtype_name(p->q.dtype),
             attn_dtype_name(p->k.dtype), attn_dtype_name(p->v.dtype),
             attn_dtype_name(p->out.dtype), p->causal ? ",causal" : "", p->srms ? ",srms" : "");
    return ATTN_OK;
}

static attn_status cl_tn_supported(attn_backend *be, const void *p)
{
    tn_plan pl;
    (void)be;
    return make_plan(p, &pl);
}

static void cl_tn_impl_name(attn_backend *be, const void *p, char *buf, size_t n)
{
    tn_plan pl;
    (void)be;
    if (make_plan(p, &pl) == ATTN_OK)
        snprintf(buf, n, "opencl:%s", pl.name);
    else
        snprintf(buf, n, "opencl:unsupported");
}

/* ---- operands ---- */

typedef struct tn_mem {
    cl_mem mem;
    cl_ulong off;  /* element offset */
    cl_long4 st;   /* element strides */
    int owned;
} tn_mem;

/* A device view in place, or (host operand) a buffer over the view's extent: the host memory
 * itself on a CPU device (inputs), else a copy; a host output gets a compact buffer. */
static attn_status bind(attn_cl_backend *cb, const attn_operand *o, int output,
                        const int64_t compact[4], size_t compact_bytes, tn_mem *m)
{
    const size_t esz = attn_dtype_size(o->dtype);
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < 4; i++)
        m->st.s[i] = o->ptr && output ? compact[i] : o->stride[i];
    if (!o->ptr) {
        m->mem = (cl_mem)o->t->buffer->impl;
        m->off = o->t->offset / esz;
        return ATTN_OK;
    }
    if (output) {
        m->mem = clCreateBuffer(cb->ctx, CL_MEM_WRITE_ONLY, compact_bytes, NULL, &err);
    } else {
        int64_t extent = 1;
        for (int i = 0; i < 4; i++)
            extent += (o->t->shape[i] - 1) * o->stride[i];
        const cl_mem_flags how = strcmp(cb->info.type, "CPU") == 0 ? CL_MEM_USE_HOST_PTR
                                                                    : CL_MEM_COPY_HOST_PTR;
        m->mem = clCreateBuffer(cb->ctx, CL_MEM_READ_ONLY | how, (size_t)extent * esz, o->ptr,
                                &err);
    }
    ATTN_CL_TRY(err, "clCreateBuffer (transnormer operand)");
    m->owned = 1;
    return ATTN_OK;
}

static attn_status scratch(attn_cl_backend *cb, size_t bytes, tn_mem *m)
{
    cl_int err;
    m->mem = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE, bytes ? bytes : 4, NULL, &err);
    ATTN_CL_TRY(err, "clCreateBuffer (transnormer scratch)");
    m->owned = 1;
    return ATTN_OK;
}

/* Compact [B][S][Hq][Dv] elements back into the user's strided host view. */
static void scatter(const attn_transnormer_problem *p, const char *src)
{
    const attn_operand *o = &p->out;
    const size_t esz = attn_dtype_size(o->dtype);
    for (int64_t r = 0; r < p->B * p->S * p->Hq; r++)
        for (int64_t d = 0; d < p->Dv; d++, src += esz)
            memcpy((char *)o->ptr +
                       attn_at(o, r / (p->S * p->Hq), r / p->Hq % p->S, r % p->Hq, d) *
                           (int64_t)esz,
                   src, esz);
}

/* ---- launches ---- */

/* Kernel arguments, set in order; the first failure is kept. */
typedef struct tn_args {
    cl_kernel k;
    cl_uint n;
    cl_int err;
} tn_args;

static void put(tn_args *a, size_t size, const void *v)
{
    if (a->err == CL_SUCCESS)
        a->err = clSetKernelArg(a->k, a->n, size, v);
    a->n++;
}

static void put_mem(tn_args *a, const tn_mem *m, int with_view)
{
    put(a, sizeof(cl_mem), &m->mem);
    if (with_view) {
        put(a, sizeof m->off, &m->off);
        put(a, sizeof m->st, &m->st);
    }
}

static void put_longs(tn_args *a, int n, const int64_t *x)
{
    for (int i = 0; i < n; i++) {
        cl_long v = x[i];
        put(a, sizeof v, &v);
    }
}

/* Enqueue a's kernel over `items` work-items (the queue is in order) and release it. */
static attn_status enqueue(attn_cl_backend *cb, tn_args *a, int64_t items)
{
    const size_t local = TN_WG, global = (size_t)((items + TN_WG - 1) / TN_WG) * TN_WG;
    cl_int err = a->err;
    if (err == CL_SUCCESS && items > 0)
        err = clEnqueueNDRangeKernel(cb->queue, a->k, 1, NULL, &global, &local, 0, NULL, NULL);
    clReleaseKernel(a->k);
    ATTN_CL_TRY(err, "transnormer kernel launch");
    return ATTN_OK;
}

typedef struct tn_bind {
    tn_mem q, k, v, out, y, st;
} tn_bind;

static attn_status kernel(attn_cl_backend *cb, const char *file, const char *name,
                          const char *options, tn_args *a)
{
    *a = (tn_args){NULL, 0, CL_SUCCESS};
    return attn_cl_create_kernel(cb, file, name, options, &a->k);
}

static attn_status run_norm(attn_cl_backend *cb, const attn_transnormer_problem *p,
                            const tn_plan *pl, const tn_bind *bd)
{
    const char *f = "transnormer_attn.cl";
    const int64_t nbg = p->B * p->Hkv, e = p->Dk * p->Dv;
    tn_args a;
    ATTN_TRY(kernel(cb, f, "attn_tn_chunk_state", pl->attn_options, &a));
    put_mem(&a, &bd->k, 1);
    put_mem(&a, &bd->v, 1);
    put_mem(&a, &bd->st, 0);
    put_longs(&a, 5, (const int64_t[]){p->B, p->S, p->Hkv, TN_CHUNK, pl->nc});
    ATTN_TRY(enqueue(cb, &a, nbg * pl->nc * e));
    ATTN_TRY(kernel(cb, f, "attn_tn_scan", pl->attn_options, &a));
    put_mem(&a, &bd->st, 0);
    put_longs(&a, 2, (const int64_t[]){nbg, pl->nc});
    ATTN_TRY(enqueue(cb, &a, nbg * e));
    ATTN_TRY(kernel(cb, f, "attn_tn_norm_rows", pl->attn_options, &a));
    put_mem(&a, &bd->q, 1);
    put_mem(&a, &bd->k, 1);
    put_mem(&a, &bd->v, 1);
    put_mem(&a, &bd->st, 0);
    put_mem(&a, &bd->y, 0);
    put_longs(&a, 7, (const int64_t[]){p->B, p->S, p->Hq, p->Hkv, p->group, TN_CHUNK, pl->nc});
    return enqueue(cb, &a, p->B * p->S * p->Hq);
}

static attn_status run_diag(attn_cl_backend *cb, const attn_transnormer_problem *p,
                            const tn_plan *pl, const tn_bind *bd)
{
    tn_args a;
    ATTN_TRY(kernel(cb, "transnormer_attn.cl", "attn_tn_diag_rows", pl->attn_options, &a));
    put_mem(&a, &bd->q, 1);
    put_mem(&a, &bd->k, 1);
    put_mem(&a, &bd->v, 1);
    put_mem(&a, &bd->y, 0);
    put_longs(&a, 5, (const int64_t[]){p->B, p->S, p->Hq, p->group, p->block});
    const cl_float scale = (cl_float)p->scale;
    put(&a, sizeof scale, &scale);
    return enqueue(cb, &a, p->B * p->S * p->Hq);
}

static attn_status run_srms(attn_cl_backend *cb, const attn_transnormer_problem *p,
                            const tn_plan *pl, const tn_bind *bd)
{
    tn_args a;
    ATTN_TRY(kernel(cb, "transnormer_srms.cl", "attn_tn_srms", pl->srms_options, &a));
    put_mem(&a, &bd->y, 0);
    put_mem(&a, &bd->out, 1);
    put_longs(&a, 4, (const int64_t[]){p->B, p->S, p->Hq, p->Dv});
    const cl_float eps = (cl_float)p->eps;
    put(&a, sizeof eps, &eps);
    return enqueue(cb, &a, p->B * p->S);
}

/* Binds, launches, waits, and gathers a host output (into `host`, then the user's view). */
static attn_status run_all(attn_cl_backend *cb, const attn_transnormer_problem *p,
                           const tn_plan *pl, tn_bind *bd, void **host)
{
    const size_t rows = (size_t)(p->B * p->S * p->Hq), obytes =
        rows * (size_t)p->Dv * attn_dtype_size(p->out.dtype);
    const int64_t compact[4] = {p->S * p->Hq * p->Dv, p->Hq * p->Dv, p->Dv, 1};
    ATTN_TRY(bind(cb, &p->q, 0, NULL, 0, &bd->q));
    ATTN_TRY(bind(cb, &p->k, 0, NULL, 0, &bd->k));
    ATTN_TRY(bind(cb, &p->v, 0, NULL, 0, &bd->v));
    ATTN_TRY(bind(cb, &p->out, 1, compact, obytes, &bd->out));
    ATTN_TRY(scratch(cb, rows * (size_t)p->Dv * sizeof(float), &bd->y));
    if (p->mode == ATTN_TRANSNORMER_MODE_NORM) {
        ATTN_TRY(scratch(cb, (size_t)(p->B * p->Hkv * pl->nc * p->Dk * p->Dv) * sizeof(float),
                         &bd->st));
        ATTN_TRY(run_norm(cb, p, pl, bd));
    } else {
        ATTN_TRY(run_diag(cb, p, pl, bd));
    }
    ATTN_TRY(run_srms(cb, p, pl, bd));
    if (p->out.ptr) {
        if (!(*host = malloc(obytes)))
            return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "opencl: out of memory");
        ATTN_CL_TRY(clEnqueueReadBuffer(cb->queue, bd->out.mem, CL_TRUE, 0, obytes, *host, 0,
                                        NULL, NULL),
                    "clEnqueueReadBuffer (transnormer output)");
        scatter(p, *host);
        return ATTN_OK;
    }
    ATTN_CL_TRY(clFinish(cb->queue), "clFinish");
    return ATTN_OK;
}

static attn_status cl_tn_run(attn_backend *be, const void *problem)
{
    const attn_transnormer_problem *p = problem;
    attn_cl_backend *cb = be->impl;
    tn_plan pl;
    ATTN_TRY(make_plan(p, &pl));
    tn_bind bd;
    memset(&bd, 0, sizeof bd);
    void *host = NULL;
    attn_status st = run_all(cb, p, &pl, &bd, &host);
    if (st != ATTN_OK)
        clFinish(cb->queue); /* nothing may still use the temporaries below */
    else
        attn_cl_note_kernel(cb, pl.name);
    tn_mem *all[] = {&bd.q, &bd.k, &bd.v, &bd.out, &bd.y, &bd.st};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->owned)
            clReleaseMemObject(all[i]->mem);
    free(host);
    return st;
}

const attn_op_impl attn_opencl_transnormer_impl = {
    .supported = cl_tn_supported,
    .run = cl_tn_run,
    .impl_name = cl_tn_impl_name,
};
