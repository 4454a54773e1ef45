/* ocl_rattention.c - RATTENTION on the OpenCL backend.
 * Forward: RoPE of q and k into f32 device scratch (the rope implementation,
 * cl/rope_apply.cl), the sliding-window branch through the flash forward kernel (causal,
 * window_left = w; the sdpa implementation), both run as sub-problems of those siblings whose
 * operands are device views of this call's memory; the residual branch (keys j <= i - w - 1,
 * paired map, no normaliser, state in/out) through cl/rattention_attn.cl's chunked kernels
 * (prep, state, rows); then its attn_ratt_norm (both GroupRMSNorms, summed, stored
 * in out's dtype). Decode: attn_ratt_decode, one work-group per (batch, KV head) over the
 * call's tokens. One planning function per form serves supported, impl_name and run. Host
 * operands are copied to a device image of their extent (outputs read back whole after every
 * kernel succeeded, so on error nothing reaches the user's memory); device buffers are used in
 * place, and this file's kernels are built before anything runs (the siblings write only
 * scratch), so once a kernel has written an output only enqueueing can still fail. The pieces
 * both directions share are declared in ocl_rattention.h; a backward problem goes to
 * ocl_rattention_backward.c. */
#include "ocl_rattention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATT_WG 64      /* decode work-group (fewer when the device allows fewer) */
#define RATT_ITEMS_WG 16 /* forward kernels: independent work-items per group */
#define RATT_CHUNK 64   /* residual branch: keys per chunk (CHUNK of the kernels) */
#define RATT_BR 8       /* residual branch: rows per work-item (BR) */

/* The residual branch's chunking: nk keys enter (key j at row j + shift), in nc chunks; row
 * blocks kb0 .. kb0 + nb - 1 (attn_ratt_rla_rows). */
typedef struct ratt_rla {
    int64_t nk, nc, pad, kb0, nb;
} ratt_rla;

typedef struct ratt_plan {
    attn_cl_ratt_sub sub;
    int wg;
    char options[480];
    char name[640];
} ratt_plan;

static void rope_sub(const attn_rattention_problem *p, int64_t H, const attn_operand *x,
                     const attn_operand *out, attn_rope_problem *r)
{
    memset(r, 0, sizeof *r);
    r->B = p->B;
    r->S = p->S;
    r->H = H;
    r->D = p->Dk;
    r->rot = p->Dk;
    r->npairs = p->Dk / 2;
    r->layout = p->rope;
    r->theta = p->theta;
    r->offset = p->offset;
    r->x = *x;
    r->out = *out;
}

void attn_cl_ratt_sub_problems(const attn_rattention_problem *p, const attn_cl_ratt_ops *o,
                               attn_cl_ratt_sub *s)
{
    rope_sub(p, p->Hq, &o->q, &o->rq, &s->rq);
    rope_sub(p, p->Hkv, &o->k, &o->rk, &s->rk);
    attn_sdpa_problem *w = &s->swa;
    memset(w, 0, sizeof *w);
    w->B = p->B;
    w->Sq = w->Skv = p->S;
    w->Hq = p->Hq;
    w->Hkv = p->Hkv;
    w->Dk = p->Dk;
    w->Dv = p->Dv;
    w->group = p->group;
    w->scale = p->scale;
    w->causal = 1;
    w->window_left = p->window >= p->S - 1 ? -1 : p->window; /* as attn_sdpa_validate */
    w->window_right = 0;
    w->q = o->rq;
    w->k = o->rk;
    w->v = o->v;
    w->out = o->swa;
}

/* Rows i have newest key e = i - shift in [-shift, S - shift); blocks of BR over e + pad. */
static void plan_rla(const attn_rattention_problem *p, ratt_rla *r)
{
    r->nk = p->S > p->shift ? p->S - p->shift : 0;
    r->nc = attn_cl_ratt_ceil_div(r->nk, RATT_CHUNK);
    r->pad = attn_cl_ratt_ceil_div(p->shift, RATT_CHUNK) * RATT_CHUNK;
    r->kb0 = (r->pad - p->shift) / RATT_BR;
    r->nb = attn_cl_ratt_ceil_div(r->pad + p->S - p->shift, RATT_BR) - r->kb0;
}

/* A compact f32 [B, S, H, D] operand without memory (t == NULL), for planning. */
attn_operand attn_cl_ratt_compact_f32(int64_t S, int64_t H, int64_t D)
{
    attn_operand o;
    memset(&o, 0, sizeof o);
    o.dtype = ATTN_F32;
    o.stride[0] = S * H * D;
    o.stride[1] = H * D;
    o.stride[2] = D;
    o.stride[3] = 1;
    return o;
}

void attn_cl_ratt_planning_ops(const attn_rattention_problem *p, attn_cl_ratt_ops *o)
{
    o->q = p->q;
    o->k = p->k;
    o->v = p->v;
    o->rq = attn_cl_ratt_compact_f32(p->S, p->Hq, p->Dk);
    o->rk = attn_cl_ratt_compact_f32(p->S, p->Hkv, p->Dk);
    o->swa = attn_cl_ratt_compact_f32(p->S, p->Hq, p->Dv);
}

const char *attn_cl_ratt_map_name(attn_linear_feature f)
{
    return f == ATTN_LINEAR_SOFTMAX_PAIR ? "softmax_pair" : "relu_pair";
}

/* A sibling's implementation name without its "opencl:" prefix. */
void attn_cl_ratt_sub_name(const attn_op_impl *impl, attn_backend *be, const void *problem,
                     char *buf, size_t n)
{
    char full[256];
    impl->impl_name(be, problem, full, sizeof full);
    const char *colon = strchr(full, ':');
    snprintf(buf, n, "%s", colon ? colon + 1 : full);
}

void attn_cl_ratt_forward_options(const attn_rattention_problem *p, char *buf, size_t n)
{
    snprintf(buf, n,
             "-DDK=%lld -DDV=%lld -DFEATURE=%d -DHAS_SWA=%d -DHAS_GS=%d -DHAS_GR=%d -DDT_Q=%d "
             "-DDT_K=%d -DDT_V=%d -DDT_O=%d -DHAS_STATE_IN=%d -DHAS_STATE_OUT=%d -DCHUNK=%d "
             "-DBR=%d", (long long)p->Dk, (long long)p->Dv, (int)p->feature, p->swa,
             p->gamma_swa.t != NULL, p->gamma_rla.t != NULL, (int)p->q.dtype, (int)p->k.dtype,
             (int)p->v.dtype, (int)p->out.dtype, p->state_in.t != NULL, p->state_out.t != NULL,
             RATT_CHUNK, RATT_BR);
}

static attn_status plan_forward(attn_backend *be, const attn_rattention_problem *p,
                                ratt_plan *pl)
{
    if (p->Dk > ATTN_CL_RATT_MAX_DK)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: rattention supports Dk up to %d (got "
                         "%lld)", ATTN_CL_RATT_MAX_DK, (long long)p->Dk);
    attn_cl_ratt_ops o;
    attn_cl_ratt_planning_ops(p, &o);
    attn_cl_ratt_sub_problems(p, &o, &pl->sub);
    char swa[256] = "";
    if (p->swa) {
        ATTN_TRY(attn_opencl_sdpa_impl.supported(be, &pl->sub.swa));
        attn_cl_ratt_sub_name(&attn_opencl_sdpa_impl, be, &pl->sub.swa, swa, sizeof swa);
    }
    const int gs = p->gamma_swa.t != NULL, gr = p->gamma_rla.t != NULL;
    const int sin = p->state_in.t != NULL, sout = p->state_out.t != NULL;
    attn_cl_ratt_forward_options(p, pl->options, sizeof pl->options);
    snprintf(pl->name, sizeof pl->name,
             "rattention[%s%s%srla_chunk%d[dk%lld,dv%lld,%s,br%d,%s/%s/%s%s%s]+norm[->%s%s%s]]",
             p->swa ? "rope+" : "", swa, p->swa ? "+" : "", RATT_CHUNK, (long long)p->Dk,
             (long long)p->Dv, attn_cl_ratt_map_name(p->feature), RATT_BR,
             attn_dtype_name(p->q.dtype), attn_dtype_name(p->k.dtype), attn_dtype_name(p->v.dtype),
             sin ? ",state_in" : "", sout ? ",state_out" : "", attn_dtype_name(p->out.dtype),
             gs ? ",gamma_swa" : "", gr ? ",gamma_rla" : "");
    const size_t maxwg = ((const attn_cl_backend *)be->impl)->info.max_work_group_size;
    pl->wg = maxwg < RATT_ITEMS_WG ? (int)maxwg : RATT_ITEMS_WG;
    return ATTN_OK;
}

static attn_status plan_decode(const attn_cl_backend *cb, const attn_rattention_problem *p,
                               ratt_plan *pl)
{
    if (p->Dk > ATTN_CL_RATT_MAX_DK)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: rattention decode supports Dk up to %d "
                         "(got %lld)", ATTN_CL_RATT_MAX_DK, (long long)p->Dk);
    pl->wg = cb->info.max_work_group_size < RATT_WG ? (int)cb->info.max_work_group_size
                                                    : RATT_WG;
    const int gs = p->gamma_swa.t != NULL, gr = p->gamma_rla.t != NULL;
    const attn_dtype kr = p->swa ? p->k_ring.dtype : ATTN_F32;
    const attn_dtype vr = p->swa ? p->v_ring.dtype : ATTN_F32;
    snprintf(pl->options, sizeof pl->options,
             "-DDK=%lld -DDV=%lld -DFEATURE=%d -DINTERLEAVED=%d -DHAS_SWA=%d -DHAS_GS=%d "
             "-DHAS_GR=%d -DDT_Q=%d -DDT_K=%d -DDT_V=%d -DDT_O=%d -DDT_KR=%d -DDT_VR=%d",
             (long long)p->Dk, (long long)p->Dv, (int)p->feature,
             p->rope == ATTN_ROPE_INTERLEAVED, p->swa, gs, gr, (int)p->q.dtype,
             (int)p->k.dtype, (int)p->v.dtype, (int)p->out.dtype, (int)kr, (int)vr);
    char ring[32] = "";
    if (p->swa)
        snprintf(ring, sizeof ring, ",ring=%s/%s", attn_dtype_name(kr), attn_dtype_name(vr));
    snprintf(pl->name, sizeof pl->name,
             "rattention_ring[dk%lld,dv%lld,%s,%s,wg%d,%s/%s/%s->%s%s%s%s]", (long long)p->Dk,
             (long long)p->Dv, attn_cl_ratt_map_name(p->feature),
             p->rope == ATTN_ROPE_INTERLEAVED ? "interleaved" : "half", pl->wg,
             attn_dtype_name(p->q.dtype), attn_dtype_name(p->k.dtype),
             attn_dtype_name(p->v.dtype), attn_dtype_name(p->out.dtype), ring,
             gs ? ",gamma_swa" : "", gr ? ",gamma_rla" : "");
    return ATTN_OK;
}

/* The one planning function: supported, impl_name and run all call it. */
static attn_status make_plan(attn_backend *be, const attn_rattention_problem *p, ratt_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    return p->decode ? plan_decode(be->impl, p, pl) : plan_forward(be, p, pl);
}

static attn_status ratt_supported(attn_backend *be, const void *problem)
{
    if (((const attn_rattention_problem *)problem)->backward)
        return attn_cl_rattention_backward_supported(be, problem);
    ratt_plan pl;
    return make_plan(be, problem, &pl);
}

static void ratt_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    if (((const attn_rattention_problem *)problem)->backward) {
        attn_cl_rattention_backward_impl_name(be, problem, buf, n);
        return;
    }
    ratt_plan pl;
    if (make_plan(be, problem, &pl) == ATTN_OK)
        snprintf(buf, n, "opencl:%s", pl.name);
    else
        snprintf(buf, n, "opencl:unsupported");
}

/* ---- operands ---- */

static void device_view(attn_backend *be, attn_cl_ratt_mem *m, const attn_tensor *src,
                        const attn_operand *o)
{
    m->buf.be = be;
    m->buf.size = m->dev.bytes;
    m->buf.impl = m->dev.mem;
    m->t = *src;
    m->t.data = NULL;
    m->t.buffer = &m->buf;
    m->t.offset = 0;
    m->op = *o;
    m->op.t = &m->t;
    m->op.ptr = NULL;
}

attn_status attn_cl_ratt_bind(attn_backend *be, const attn_operand *o, int output,
                              attn_cl_ratt_mem *m)
{
    attn_cl_backend *cb = be->impl;
    memset(m, 0, sizeof *m);
    m->op = *o;
    if (!o->t || attn_view_empty(o->t))
        return ATTN_OK;
    const size_t esz = attn_dtype_size(o->dtype);
    int64_t last = 0;
    for (int i = 0; i < 4; i++) {
        m->dev.st.s[i] = o->stride[i];
        last += (o->t->shape[i] - 1) * o->stride[i];
    }
    if (!o->ptr) {
        m->dev.mem = (cl_mem)o->t->buffer->impl;
        m->dev.off = o->t->offset / esz;
        return ATTN_OK;
    }
    /* A CPU device reads a host input in place; other images are copies. */
    const cl_mem_flags how = !output && strcmp(cb->info.type, "CPU") == 0
                                 ? CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR
                                 : CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR;
    cl_int err;
    m->dev.bytes = (size_t)(last + 1) * esz;
    m->dev.mem = clCreateBuffer(cb->ctx, how, m->dev.bytes, o->ptr, &err);
    ATTN_CL_TRY(err, "clCreateBuffer (rattention operand)");
    m->dev.owned = 1;
    m->dev.host_back = output ? o->ptr : NULL;
    device_view(be, m, o->t, o);
    return ATTN_OK;
}

/* f32 scratch of n floats; shaped [B, S, H, D] compact when shape is given. */
attn_status attn_cl_ratt_scratch(attn_backend *be, size_t n, const int64_t *shape,
                                 attn_cl_ratt_mem *m)
{
    attn_cl_backend *cb = be->impl;
    memset(m, 0, sizeof *m);
    cl_int err;
    m->dev.bytes = (n ? n : 1) * sizeof(float);
    m->dev.mem = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE, m->dev.bytes, NULL, &err);
    ATTN_CL_TRY(err, "clCreateBuffer (rattention scratch)");
    m->dev.owned = 1;
    if (!shape)
        return ATTN_OK;
    attn_tensor t = attn_tensor_bshd(NULL, ATTN_F32, shape[0], shape[1], shape[2], shape[3]);
    attn_operand o = attn_cl_ratt_compact_f32(shape[1], shape[2], shape[3]);
    device_view(be, m, &t, &o);
    return ATTN_OK;
}

void attn_cl_ratt_release_all(attn_cl_ratt_mem *m, int n)
{
    for (int i = 0; i < n; i++)
        if (m[i].dev.owned)
            clReleaseMemObject(m[i].dev.mem);
}

/* ---- launches ---- */

void attn_cl_ratt_put(attn_cl_ratt_args *a, size_t size, const void *v)
{
    if (a->err == CL_SUCCESS)
        a->err = clSetKernelArg(a->k, a->n, size, v);
    a->n++;
}

void attn_cl_ratt_put_mem(attn_cl_ratt_args *a, const attn_cl_ratt_mem *m, int with_view)
{
    attn_cl_ratt_put(a, sizeof(cl_mem), &m->dev.mem);
    if (with_view) {
        attn_cl_ratt_put(a, sizeof m->dev.off, &m->dev.off);
        attn_cl_ratt_put(a, sizeof m->dev.st, &m->dev.st);
    }
}

void attn_cl_ratt_put_longs(attn_cl_ratt_args *a, int n, const int64_t *x)
{
    for (int i = 0; i < n; i++) {
        cl_long v = x[i];
        attn_cl_ratt_put(a, sizeof v, &v);
    }
}

void attn_cl_ratt_put_float(attn_cl_ratt_args *a, double x)
{
    cl_float v = (cl_float)x;
    attn_cl_ratt_put(a, sizeof v, &v);
}

static void chain_push(attn_cl_ratt_chain *ch, cl_event ev)
{
    if (ch->last)
        clReleaseEvent(ch->last);
    ch->last = ev;
}

/* Enqueues a's kernel (then releases it) on `items` work-items in groups of wg, after the
 * chain's last command; nothing when items is 0. */
attn_status attn_cl_ratt_enqueue(attn_cl_ratt_chain *ch, attn_cl_ratt_args *a, int64_t items,
                                 int wg)
{
    const size_t local = (size_t)wg, global = local * (size_t)attn_cl_ratt_ceil_div(items, wg);
    cl_event ev = NULL;
    cl_int err = a->err;
    if (err == CL_SUCCESS && items > 0)
        err = clEnqueueNDRangeKernel(ch->cb->queue, a->k, 1, NULL, &global, &local,
                                     ch->last ? 1 : 0, ch->last ? &ch->last : NULL, &ev);
    clReleaseKernel(a->k);
    a->k = NULL;
    ATTN_CL_TRY(err, "clEnqueueNDRangeKernel (rattention)");
    if (ev)
        chain_push(ch, ev);
    return ATTN_OK;
}

/* Reads every host image of outs back into the user's memory after the chain, then waits for
 * all of it. */
attn_status attn_cl_ratt_finish(attn_cl_ratt_chain *ch, attn_cl_ratt_mem *outs, int nouts)
{
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < nouts && err == CL_SUCCESS; i++) {
        if (!outs[i].dev.host_back)
            continue;
        cl_event ev = NULL;
        err = clEnqueueReadBuffer(ch->cb->queue, outs[i].dev.mem, CL_FALSE, 0, outs[i].dev.bytes,
                                  outs[i].dev.host_back, ch->last ? 1 : 0,
                                  ch->last ? &ch->last : NULL, &ev);
        if (err == CL_SUCCESS)
            chain_push(ch, ev);
    }
    ATTN_CL_TRY(err, "clEnqueueReadBuffer (rattention output)");
    if (ch->last)
        ATTN_CL_TRY(clWaitForEvents(1, &ch->last), "clWaitForEvents (rattention)");
    return ATTN_OK;
}

/* ---- forward ---- */

enum { F_Q, F_K, F_V, F_GS, F_GR, F_SIN, F_OUT, F_SOUT, F_RQ, F_RK, F_SWA, F_RLA, F_FQ, F_FK,
       F_VV, F_SX, F_N };

static attn_status forward_bind(attn_backend *be, const attn_rattention_problem *p,
                                attn_cl_ratt_mem m[F_N])
{
    const attn_operand *user[F_RQ] = {&p->q, &p->k, &p->v, &p->gamma_swa, &p->gamma_rla,
                                      &p->state_in, &p->out, &p->state_out};
    for (int i = 0; i < F_RQ; i++)
        ATTN_TRY(attn_cl_ratt_bind(be, user[i], i >= F_OUT, &m[i]));
    const int64_t rq[4] = {p->B, p->S, p->Hq, p->Dk}, rk[4] = {p->B, p->S, p->Hkv, p->Dk};
    const int64_t ro[4] = {p->B, p->S, p->Hq, p->Dv};
    const size_t nq = (size_t)(p->B * p->S * p->Hq), nk = (size_t)(p->B * p->S * p->Hkv);
    if (p->swa) {
        ATTN_TRY(attn_cl_ratt_scratch(be, nq * (size_t)p->Dk, rq, &m[F_RQ]));
        ATTN_TRY(attn_cl_ratt_scratch(be, nk * (size_t)p->Dk, rk, &m[F_RK]));
        ATTN_TRY(attn_cl_ratt_scratch(be, nq * (size_t)p->Dv, ro, &m[F_SWA]));
    }
    ATTN_TRY(attn_cl_ratt_scratch(be, nq * (size_t)p->Dv, NULL, &m[F_RLA]));
    return attn_cl_ratt_rla_scratch(be, p, &m[F_FQ]);
}

attn_status attn_cl_ratt_rla_scratch(attn_backend *be, const attn_rattention_problem *p,
                                     attn_cl_ratt_mem m[4])
{
    ratt_rla r;
    plan_rla(p, &r);
    const size_t nq = (size_t)(p->B * p->S * p->Hq), nk = (size_t)(p->B * p->S * p->Hkv);
    const size_t dvp = (size_t)attn_cl_ratt_ceil_div(p->Dv, 8) * 8, df = (size_t)p->Df;
    ATTN_TRY(attn_cl_ratt_scratch(be, nq * df, NULL, &m[0]));
    ATTN_TRY(attn_cl_ratt_scratch(be, nk * df, NULL, &m[1]));
    ATTN_TRY(attn_cl_ratt_scratch(be, nk * dvp, NULL, &m[2]));
    return attn_cl_ratt_scratch(be, (size_t)(p->B * p->Hkv * (r.nc + 1)) * df * dvp, NULL,
                                &m[3]);
}

enum { K_PREP, K_STATE, K_ROWS, K_NORM, K_N };

void attn_cl_ratt_rla_args(const attn_rattention_problem *p,
                           const attn_cl_ratt_mem *const io[5], const attn_cl_ratt_mem sx[4],
                           const attn_cl_ratt_mem *rla, attn_cl_ratt_args a[3], int64_t items[3])
{
    enum { Q, K, V, SIN, SOUT };
    enum { FQ, FK, VV, SX };
    enum { PREP, STATE, ROWS };
    ratt_rla r;
    plan_rla(p, &r);
    for (int i = Q; i <= V; i++)
        attn_cl_ratt_put_mem(&a[PREP], io[i], 1);
    for (int i = FQ; i <= VV; i++)
        attn_cl_ratt_put_mem(&a[PREP], &sx[i], 0);
    items[PREP] = p->B * p->S * (p->Hq + p->Hkv);
    attn_cl_ratt_put_longs(&a[PREP], 4, (const int64_t[]){p->S, p->Hq, p->Hkv, items[PREP]});
    const int64_t rf = p->Df % 8 == 0 ? 8 : 4; /* RF of the kernel */
    for (int i = FK; i <= SX; i++)
        attn_cl_ratt_put_mem(&a[STATE], &sx[i], 0);
    attn_cl_ratt_put_mem(&a[STATE], io[SIN], 1);
    attn_cl_ratt_put_mem(&a[STATE], io[SOUT], 1);
    items[STATE] = p->B * p->Hkv * (p->Df / rf);
    attn_cl_ratt_put_longs(&a[STATE], 5,
                           (const int64_t[]){p->S, p->Hkv, r.nk, r.nc, items[STATE]});
    for (int i = FQ; i <= SX; i++)
        attn_cl_ratt_put_mem(&a[ROWS], &sx[i], 0);
    attn_cl_ratt_put_mem(&a[ROWS], rla, 0);
    items[ROWS] = p->S > 0 ? p->B * p->Hq * r.nb : 0; /* no row: phi(q) has no element */
    attn_cl_ratt_put_longs(&a[ROWS], 10,
                           (const int64_t[]){p->S, p->Hq, p->Hkv, p->group, p->shift, r.nc, r.kb0,
                                             r.nb, r.pad, items[ROWS]});
}

static void forward_args(const attn_rattention_problem *p, attn_cl_ratt_mem m[F_N],
                         attn_cl_ratt_args a[K_N], int64_t items[K_N])
{
    const attn_cl_ratt_mem *const io[5] = {&m[F_Q], &m[F_K], &m[F_V], &m[F_SIN], &m[F_SOUT]};
    attn_cl_ratt_rla_args(p, io, &m[F_FQ], &m[F_RLA], &a[K_PREP], &items[K_PREP]);
    attn_cl_ratt_put_mem(&a[K_NORM], &m[p->swa ? F_SWA : F_RLA], 0);
    attn_cl_ratt_put_mem(&a[K_NORM], &m[F_RLA], 0);
    attn_cl_ratt_put_mem(&a[K_NORM], &m[F_GS], 1);
    attn_cl_ratt_put_mem(&a[K_NORM], &m[F_GR], 1);
    attn_cl_ratt_put_mem(&a[K_NORM], &m[F_OUT], 1);
    items[K_NORM] = p->B * p->S * p->Hq;
    attn_cl_ratt_put_longs(&a[K_NORM], 3, (const int64_t[]){p->S, p->Hq, items[K_NORM]});
    attn_cl_ratt_put_float(&a[K_NORM], p->eps);
}

static attn_status forward_launch(attn_backend *be, const attn_rattention_problem *p,
                                  ratt_plan *pl, attn_cl_ratt_mem m[F_N], attn_cl_ratt_args a[K_N],
                                  attn_cl_ratt_chain *ch)
{
    static const char *const names[K_N] = {"attn_ratt_rla_prep", "attn_ratt_rla_state",
                                           "attn_ratt_rla_rows", "attn_ratt_norm"};
    ATTN_TRY(forward_bind(be, p, m));
    for (int i = 0; i < K_N; i++)
        ATTN_TRY(attn_cl_create_kernel(ch->cb, "rattention_attn.cl", names[i], pl->options,
                                       &a[i].k));
    const attn_cl_ratt_ops o = {m[F_Q].op,  m[F_K].op,  m[F_V].op,
                                m[F_RQ].op, m[F_RK].op, m[F_SWA].op};
    attn_cl_ratt_sub_problems(p, &o, &pl->sub);
    if (p->swa && p->S > 0) { /* each sub-run waits for its own commands */
        ATTN_TRY(attn_opencl_rope_impl.run(be, &pl->sub.rq));
        ATTN_TRY(attn_opencl_rope_impl.run(be, &pl->sub.rk));
        ATTN_TRY(attn_opencl_sdpa_impl.run(be, &pl->sub.swa));
    }
    int64_t items[K_N];
    forward_args(p, m, a, items);
    for (int i = 0; i < K_N; i++)
        ATTN_TRY(attn_cl_ratt_enqueue(ch, &a[i], items[i], pl->wg));
    return attn_cl_ratt_finish(ch, &m[F_OUT], 2);
}

/* The end of a chain of launches: its kernels released, its last event waited for. */
attn_status attn_cl_ratt_chain_end(attn_cl_ratt_args *a, int n, attn_cl_ratt_chain *ch,
                                   attn_status st)
{
    for (int i = 0; i < n; i++)
        if (a[i].k)
            clReleaseKernel(a[i].k);
    if (ch->last) {
        clWaitForEvents(1, &ch->last);
        clReleaseEvent(ch->last);
    }
    return st;
}

static attn_status forward_run(attn_backend *be, const attn_rattention_problem *p,
                               ratt_plan *pl, attn_cl_ratt_mem m[F_N])
{
    attn_cl_ratt_args a[K_N];
    memset(a, 0, sizeof a);
    attn_cl_ratt_chain ch = {be->impl, NULL};
    return attn_cl_ratt_chain_end(a, K_N, &ch, forward_launch(be, p, pl, m, a, &ch));
}

/* ---- decode ---- */

enum { D_Q, D_K, D_V, D_GS, D_GR, D_OUT, D_KR, D_VR, D_ST, D_TURNS, D_CS, D_SCR, D_KROT, D_N };

/* Slots the call's tokens see: min(w + 1, pos + T) (0 without a ring). */
static int64_t seen_slots(const attn_rattention_problem *p)
{
    return p->slots < p->pos + p->S ? p->slots : p->pos + p->S;
}

/* The oldest token the call's windows reach (its angle table starts there). */
static int64_t oldest_token(const attn_rattention_problem *p)
{
    return p->pos - p->slots + 1 > 0 ? p->pos - p->slots + 1 : 0;
}

attn_status attn_cl_ratt_turns(attn_backend *be, const attn_rattention_problem *p,
                               attn_cl_ratt_mem *m)
{
    attn_cl_backend *cb = be->impl;
    memset(m, 0, sizeof *m);
    const size_t n = (size_t)p->Dk / 2;
    cl_ulong *turns = malloc(n * sizeof *turns);
    if (!turns)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "opencl: out of memory (rope frequencies)");
    attn_cl_rope_turns(p->theta, p->Dk, (int64_t)n, turns);
    cl_int err;
    m->dev.mem = clCreateBuffer(cb->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                            n * sizeof *turns, turns, &err);
    free(turns);
    ATTN_CL_TRY(err, "clCreateBuffer (rope frequencies)");
    m->dev.owned = 1;
    return ATTN_OK;
}

static attn_status decode_bind(attn_backend *be, const attn_rattention_problem *p,
                               attn_cl_ratt_mem m[D_N])
{
    const attn_operand *user[D_TURNS] = {&p->q, &p->k, &p->v, &p->gamma_swa, &p->gamma_rla,
                                         &p->out, &p->k_ring, &p->v_ring, &p->state};
    for (int i = 0; i < D_TURNS; i++)
        ATTN_TRY(attn_cl_ratt_bind(be, user[i], i >= D_OUT, &m[i]));
    const int64_t ns = seen_slots(p), groups = p->B * p->Hkv;
    if (p->swa) { /* (cos, sin) of every pair at every position the call rotates */
        ATTN_TRY(attn_cl_ratt_turns(be, p, &m[D_TURNS]));
        const int64_t rows = p->pos + p->S - oldest_token(p);
        ATTN_TRY(attn_cl_ratt_scratch(be, (size_t)(rows * p->Dk), NULL, &m[D_CS]));
    }
    const int64_t region = p->Df + p->group * (p->Df + p->Dk + ns + 2 * p->Dv + 3);
    ATTN_TRY(attn_cl_ratt_scratch(be, (size_t)(groups * region), NULL, &m[D_SCR]));
    return attn_cl_ratt_scratch(be, (size_t)(groups * ns * p->Dk), NULL, &m[D_KROT]);
}

enum { KD_ANGLES, KD_DECODE, KD_N };

static attn_status decode_launch(attn_backend *be, const attn_rattention_problem *p,
                                 const ratt_plan *pl, attn_cl_ratt_mem m[D_N],
                                 attn_cl_ratt_args a[KD_N], attn_cl_ratt_chain *ch)
{
    ATTN_TRY(decode_bind(be, p, m));
    if (p->swa)
        ATTN_TRY(attn_cl_create_kernel(ch->cb, "rattention_attn.cl", "attn_ratt_angles",
                                       pl->options, &a[KD_ANGLES].k));
    ATTN_TRY(attn_cl_create_kernel(ch->cb, "rattention_attn.cl", "attn_ratt_decode",
                                   pl->options, &a[KD_DECODE].k));
    const int64_t j0 = oldest_token(p), rows = p->pos + p->S - j0;
    if (p->swa) {
        attn_cl_ratt_put_mem(&a[KD_ANGLES], &m[D_TURNS], 0);
        attn_cl_ratt_put_mem(&a[KD_ANGLES], &m[D_CS], 0);
        attn_cl_ratt_put_longs(&a[KD_ANGLES], 2, (const int64_t[]){p->offset - p->pos + j0, rows});
        ATTN_TRY(attn_cl_ratt_enqueue(ch, &a[KD_ANGLES], rows * (p->Dk / 2), RATT_ITEMS_WG < pl->wg
                                                                    ? RATT_ITEMS_WG
                                                                    : pl->wg));
    }
    attn_cl_ratt_args *d = &a[KD_DECODE];
    for (int i = D_Q; i <= D_VR; i++)
        if (i != D_GS && i != D_GR)
            attn_cl_ratt_put_mem(d, &m[i], 1);
    attn_cl_ratt_put_mem(d, &m[D_ST], 1);
    attn_cl_ratt_put_mem(d, &m[D_GS], 1);
    attn_cl_ratt_put_mem(d, &m[D_GR], 1);
    attn_cl_ratt_put_mem(d, &m[D_CS], 0);
    attn_cl_ratt_put_mem(d, &m[D_SCR], 0);
    attn_cl_ratt_put_mem(d, &m[D_KROT], 0);
    attn_cl_ratt_put_longs(
        d, 7, (const int64_t[]){p->S, p->Hkv, p->group, p->pos, p->slots, seen_slots(p), j0});
    attn_cl_ratt_put_float(d, p->scale);
    attn_cl_ratt_put_float(d, p->eps);
    ATTN_TRY(attn_cl_ratt_enqueue(ch, d, p->B * p->Hkv * pl->wg, pl->wg));
    return attn_cl_ratt_finish(ch, &m[D_OUT], 4);
}

static attn_status decode_run(attn_backend *be, const attn_rattention_problem *p,
                              const ratt_plan *pl, attn_cl_ratt_mem m[D_N])
{
    attn_cl_ratt_args a[KD_N];
    memset(a, 0, sizeof a);
    attn_cl_ratt_chain ch = {be->impl, NULL};
    return attn_cl_ratt_chain_end(a, KD_N, &ch, decode_launch(be, p, pl, m, a, &ch));
}

static attn_status ratt_run(attn_backend *be, const void *problem)
{
    const attn_rattention_problem *p = problem;
    if (p->backward)
        return attn_cl_rattention_backward_run(be, p);
    ratt_plan pl;
    ATTN_TRY(make_plan(be, p, &pl));
    attn_cl_ratt_mem m[(int)F_N > (int)D_N ? (int)F_N : (int)D_N];
    memset(m, 0, sizeof m);
    attn_status st = p->decode ? decode_run(be, p, &pl, m) : forward_run(be, p, &pl, m);
    if (st != ATTN_OK) /* nothing may still use the temporaries below */
        clFinish(((attn_cl_backend *)be->impl)->queue);
    attn_cl_ratt_release_all(m, (int)(sizeof m / sizeof m[0]));
    if (st == ATTN_OK)
        attn_cl_note_kernel(be->impl, pl.name);
    return st;
}

const attn_op_impl attn_opencl_rattention_impl = {
    .supported = ratt_supported,
    .run = ratt_run,
    .impl_name = ratt_impl_name,
};
