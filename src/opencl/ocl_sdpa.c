/* ocl_sdpa.c - SDPA on the OpenCL backend: the launch plan (specialisation, tiles, decode
 * split) that both the capability check and the forward call derive from the same rules,
 * operand binding (device buffers in place; host tensors uploaded, outputs gathered into a
 * compact buffer and scattered back) and launches, shared with the backward (ocl_sdpa.h), and
 * the launches of cl/sdpa_flash_fwd.cl and cl/sdpa_decode.cl, then, for the key_score output,
 * of cl/sdpa_key_score.cl from the final LSE (a scratch one when the call asked for none). A
 * backward problem goes to ocl_sdpa_backward.c. */
#include "ocl_sdpa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTN_CL_MAX_D 512         /* private tiles are sized by Dk/Dv */
#define ATTN_CL_MAX_SPLIT 64      /* MAX_SPLIT of cl/sdpa_decode.cl */
#define ATTN_CL_MAX_PRIVATE 262144 /* bytes of private tiles per work-item we accept */
#define ATTN_CL_SPLIT_MIN_KEYS 256 /* a decode split covers at least this many keys */

typedef struct sdpa_plan {
    attn_cl_tune t;
    int split;                   /* split-KV decode path (flash SPLIT=1 + lse merge) */
    int pack;                    /* K/V packed to f32 tiles first (attn_pack_kv) */
    int kv_vec;                  /* unpacked K/V rows read with 16-wide vector loads */
    int local;                   /* packed tiles staged in local memory per work-group */
    int64_t nblocks, nsplit, split_len, items, skp;
    char options[512];           /* flash kernel build options */
    char merge_options[256];
    int ks;                      /* key_score asked for: attn_sdpa_key_score after the forward */
    int64_t ks_tiles;            /* its work-items per (b, KV head): BC keys each */
    char ks_options[384];
    char name[256];              /* specialisation name reported in stats.last_kernel */
} sdpa_plan;

/* The key_score kernel builds on the backward's helpers (cl/sdpa_key_score.cl). */
#define KS_FILE "sdpa_flash_bwd.cl+sdpa_key_score.cl"

static int is_vec_width(int x)
{
    return x == 2 || x == 4 || x == 8 || x == 16;
}

static int pow2_at_least(int64_t x)
{
    int p = 1;
    while (p < x && p < 64)
        p *= 2;
    return p;
}

/* Tiles: the device defaults (or overrides) checked against the kernel's and the device's
 * limits; a small problem gets fewer rows per work-item unless br was set explicitly. */
static attn_status plan_tiles(const attn_cl_backend *cb, const attn_sdpa_problem *p,
                              sdpa_plan *pl)
{
    pl->t = cb->tune;
    int rows = pow2_at_least(p->Sq * p->group);
    if (!cb->tune_set[0] && rows < pl->t.br)
        pl->t.br = rows;
    if (p->Dk > ATTN_CL_MAX_D || p->Dv > ATTN_CL_MAX_D)
        return attn_fail(ATTN_ERR_UNSUPPORTED,
                         "opencl: Dk = %lld, Dv = %lld: the kernels support head dims up to %d",
                         (long long)p->Dk, (long long)p->Dv, ATTN_CL_MAX_D);
    if (!is_vec_width(pl->t.bc) || !is_vec_width(pl->t.vw))
        return attn_fail(ATTN_ERR_UNSUPPORTED,
                         "opencl: bc = %d, vw = %d: each must be 2, 4, 8 or 16", pl->t.bc,
                         pl->t.vw);
    if ((size_t)pl->t.wg > cb->info.max_work_group_size)
        return attn_fail(ATTN_ERR_UNSUPPORTED,
                         "opencl: work-group size %d exceeds the device maximum %zu", pl->t.wg,
                         cb->info.max_work_group_size);
    int64_t dvp = attn_cl_ceil_div(p->Dv, pl->t.vw) * pl->t.vw;
    int64_t priv = 4 * ((int64_t)pl->t.br * (p->Dk + dvp + pl->t.bc + 2) +
                        (int64_t)pl->t.bc * (p->Dk + dvp));
    if (priv > ATTN_CL_MAX_PRIVATE)
        return attn_fail(ATTN_ERR_UNSUPPORTED,
                         "opencl: br = %d, bc = %d need %lld bytes of private tiles per "
                         "work-item (limit %d)",
                         pl->t.br, pl->t.bc, (long long)priv, ATTN_CL_MAX_PRIVATE);
    return ATTN_OK;
}

/* Decode (few queries, long KV): split the keys so every compute unit has work. */
static void plan_split(const attn_cl_backend *cb, const attn_sdpa_problem *p, sdpa_plan *pl)
{
    pl->nblocks = attn_cl_ceil_div(p->Sq * p->group, pl->t.br);
    int64_t items = pl->nblocks * p->B * p->Hkv;
    /* Enough work-items for every compute unit several times over (at least 128 each, which
     * CPU runtimes need to balance; GPUs need a few work-groups each). */
    int64_t cus = cb->info.compute_units ? cb->info.compute_units : 1;
    int64_t target = cus * (pl->t.wg * 4 > 128 ? pl->t.wg * 4 : 128);
    pl->nsplit = 1;
    pl->split_len = p->Skv;
    if (items > 0 && p->Sq <= 4 && p->Skv >= 2 * ATTN_CL_SPLIT_MIN_KEYS && items < target) {
        int64_t n = attn_cl_ceil_div(target, items);
        if (n > p->Skv / ATTN_CL_SPLIT_MIN_KEYS)
            n = p->Skv / ATTN_CL_SPLIT_MIN_KEYS;
        if (n > ATTN_CL_MAX_SPLIT)
            n = ATTN_CL_MAX_SPLIT;
        if (n >= 2) {
            pl->split_len = attn_cl_ceil_div(attn_cl_ceil_div(p->Skv, n), pl->t.bc) * pl->t.bc;
            pl->nsplit = attn_cl_ceil_div(p->Skv, pl->split_len);
        }
    }
    pl->split = pl->nsplit > 1;
    pl->items = items * pl->nsplit;
}

/* How the forward kernel reads K/V: packed (then maybe through local memory) or gathered. */
static void plan_kv_path(const attn_cl_backend *cb, const attn_sdpa_problem *p, sdpa_plan *pl)
{
    /* Packing pays when each K/V tile is reused by several row blocks; a decode reads K/V
     * once, so it gathers them directly. */
    pl->pack = !pl->split && pl->nblocks > 1;
    pl->skp = attn_cl_ceil_div(p->Skv, pl->t.bc) * pl->t.bc;
    pl->kv_vec = !pl->pack && p->k.stride[3] == 1 && p->v.stride[3] == 1 && p->Dk % 16 == 0 &&
                 p->Dv % 16 == 0;
    int64_t dvp = attn_cl_ceil_div(p->Dv, pl->t.vw) * pl->t.vw;
    uint64_t local_bytes = 4 * (uint64_t)pl->t.bc * (uint64_t)(p->Dk + dvp);
    pl->local = pl->pack && pl->t.local && local_bytes <= cb->info.local_mem_bytes;
}

/* The -D specialisation of the kernels (the program cache adds the common options: strict
 * math, the dtype codes); dtypes are attn_dtype values, which the codes are. */
static void plan_options(const attn_sdpa_problem *p, sdpa_plan *pl)
{
    int band = p->window_left >= 0 || p->window_right >= 0;
    int ma = p->mask_add.t != NULL, mb = p->mask_bool.t != NULL, cap = p->softcap > 0;
    /* key_score reads the final LSE: the forward writes one even when the call asked for none */
    int lse = p->lse.t != NULL || pl->split || pl->ks;
    int dto = pl->split ? ATTN_F32 : (int)p->out.dtype;
    int dtm = ma ? (int)p->mask_add.dtype : ATTN_F32;
    snprintf(pl->options, sizeof pl->options,
             "-DDK=%lld -DDV=%lld -DBR=%d -DBC=%d -DVW=%d -DDT_Q=%d -DDT_K=%d "
             "-DDT_V=%d -DDT_O=%d -DDT_M=%d -DHAS_BAND=%d -DHAS_MASK_ADD=%d -DHAS_MASK_BOOL=%d "
             "-DHAS_SOFTCAP=%d -DHAS_LSE=%d -DSPLIT=%d -DPACK=%d -DKV_VEC=%d -DLOCAL_KV=%d",
             (long long)p->Dk, (long long)p->Dv, pl->t.br, pl->t.bc, pl->t.vw, (int)p->q.dtype,
             (int)p->k.dtype, (int)p->v.dtype, dto, dtm, band, ma, mb, cap, lse, pl->split,
             pl->pack, pl->kv_vec, pl->local);
    snprintf(pl->merge_options, sizeof pl->merge_options,
             "-DDV=%lld -DDT_O=%d -DHAS_LSE=%d -DMAX_SPLIT=%d", (long long)p->Dv,
             (int)p->out.dtype, p->lse.t != NULL || pl->ks, ATTN_CL_MAX_SPLIT);
    char split[48] = "", ks[32] = "";
    if (pl->split)
        snprintf(split, sizeof split, "+lse_merge[x%lld]", (long long)pl->nsplit);
    if (pl->ks)
        snprintf(ks, sizeof ks, "+key_score[bc%d]", pl->t.bc);
    snprintf(pl->name, sizeof pl->name,
             "flash_fwd[dk%lld,dv%lld,br%d,bc%d,vw%d,wg%d,%s/%s/%s->%s%s%s%s%s%s%s]%s%s",
             (long long)p->Dk, (long long)p->Dv, pl->t.br, pl->t.bc, pl->t.vw, pl->t.wg,
             attn_dtype_name(p->q.dtype), attn_dtype_name(p->k.dtype),
             attn_dtype_name(p->v.dtype), attn_dtype_name(p->out.dtype), band ? ",band" : "",
             ma ? ",madd" : "", mb ? ",mbool" : "", cap ? ",cap" : "", lse ? ",lse" : "",
             pl->local ? ",pack,local" : pl->pack ? ",pack" : pl->kv_vec ? ",vec" : "", split,
             ks);
    /* key_score: the tile width of the forward; the backward file's other options keep their
     * defaults (its other kernels are not launched from this program). */
    snprintf(pl->ks_options, sizeof pl->ks_options,
             "-DDK=%lld -DBC=%d -DDT_Q=%d -DDT_K=%d -DDT_M=%d -DHAS_BAND=%d -DHAS_MASK_ADD=%d "
             "-DHAS_MASK_BOOL=%d -DHAS_SOFTCAP=%d",
             (long long)p->Dk, pl->t.bc, (int)p->q.dtype, (int)p->k.dtype, dtm, band, ma, mb,
             cap);
}

/* The one planning function: sdpa_supported and sdpa_forward both call it. */
static attn_status make_plan(const attn_cl_backend *cb, const attn_sdpa_problem *p,
                             sdpa_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    attn_status st = plan_tiles(cb, p, pl);
    if (st != ATTN_OK)
        return st;
    pl->ks = p->key_score.t != NULL;
    pl->ks_tiles = attn_cl_ceil_div(p->Skv, pl->t.bc);
    plan_split(cb, p, pl);
    plan_kv_path(cb, p, pl);
    plan_options(p, pl);
    return ATTN_OK;
}

static attn_status cl_sdpa_supported(attn_backend *be, const void *p)
{
    if (((const attn_sdpa_problem *)p)->backward)
        return attn_cl_sdpa_backward_supported(be->impl, p);
    sdpa_plan pl;
    return make_plan(be->impl, p, &pl);
}

static void cl_sdpa_impl_name(attn_backend *be, const void *p, char *buf, size_t n)
{
    if (((const attn_sdpa_problem *)p)->backward) {
        attn_cl_sdpa_backward_impl_name(be->impl, p, buf, n);
        return;
    }
    sdpa_plan pl;
    if (make_plan(be->impl, p, &pl) == ATTN_OK)
        snprintf(buf, n, "opencl:%s", pl.name);
    else
        snprintf(buf, n, "opencl:unsupported");
}

/* ---- operands (ocl_sdpa.h) ---- */

static int64_t extent(const attn_operand *o)
{
    int64_t e = 1;
    for (int i = 0; i < 4; i++)
        e += (o->t->shape[i] - 1) * o->stride[i];
    return e;
}

/* A view with no element (a backward with Sq = 0 reads no query row): no buffer. */
static int empty_view(const attn_operand *o)
{
    return o->t->shape[0] * o->t->shape[1] * o->t->shape[2] * o->t->shape[3] == 0;
}

void attn_cl_set_strides(attn_cl_operand *c, const int64_t st[4])
{
    for (int i = 0; i < 4; i++)
        c->st.s[i] = st[i];
}

attn_status attn_cl_bind_input(attn_cl_backend *cb, const attn_operand *o, attn_cl_operand *c)
{
    memset(c, 0, sizeof *c);
    if (!o->t || empty_view(o))
        return ATTN_OK;
    size_t esz = attn_dtype_size(o->dtype);
    attn_cl_set_strides(c, o->stride);
    if (!o->ptr) {
        c->mem = (cl_mem)o->t->buffer->impl;
        c->off = o->t->offset / esz;
        return ATTN_OK;
    }
    /* A CPU device reads host memory in place; others get a copy. */
    cl_mem_flags how = strcmp(cb->info.type, "CPU") == 0 ? CL_MEM_USE_HOST_PTR
                                                          : CL_MEM_COPY_HOST_PTR;
    cl_int err;
    c->mem = clCreateBuffer(cb->ctx, CL_MEM_READ_ONLY | how, (size_t)extent(o) * esz, o->ptr,
                            &err);
    ATTN_CL_TRY(err, "clCreateBuffer (input upload)");
    c->owned = 1;
    return ATTN_OK;
}

/* The compact buffer is [s0][s1][s2][s3] of the view's shape: the kernel never writes
 * between the view's elements, and neither does the scatter. `flags`: CL_MEM_WRITE_ONLY, or
 * CL_MEM_READ_WRITE for an output a later kernel of the call reads. */
static attn_status bind_output(attn_cl_backend *cb, const attn_operand *o, cl_mem_flags flags,
                               attn_cl_operand *c)
{
    memset(c, 0, sizeof *c);
    if (!o->t)
        return ATTN_OK;
    size_t esz = attn_dtype_size(o->dtype);
    if (!o->ptr) {
        attn_cl_set_strides(c, o->stride);
        c->mem = (cl_mem)o->t->buffer->impl;
        c->off = o->t->offset / esz;
        return ATTN_OK;
    }
    const int64_t *sh = o->t->shape;
    int64_t st[4] = {sh[1] * sh[2] * sh[3], sh[2] * sh[3], sh[3], 1};
    attn_cl_set_strides(c, st);
    c->bytes = (size_t)(sh[0] * sh[1] * sh[2] * sh[3]) * esz;
    if (c->bytes == 0)
        return ATTN_OK;
    cl_int err;
    c->mem = clCreateBuffer(cb->ctx, flags, c->bytes, NULL, &err);
    ATTN_CL_TRY(err, "clCreateBuffer (output)");
    c->owned = 1;
    if (!(c->gather = malloc(c->bytes)))
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "opencl: out of memory");
    return ATTN_OK;
}

attn_status attn_cl_bind_output(attn_cl_backend *cb, const attn_operand *o, attn_cl_operand *c)
{
    return bind_output(cb, o, CL_MEM_WRITE_ONLY, c);
}

void attn_cl_release(attn_cl_operand *c)
{
    if (c->owned && c->mem)
        clReleaseMemObject(c->mem);
    free(c->gather);
    memset(c, 0, sizeof *c);
}

/* Compact [s0][s1][s2][s3] rows -> the user's strided host view. */
static void scatter(const attn_operand *o, const void *src)
{
    size_t esz = attn_dtype_size(o->dtype);
    const int64_t *sh = o->t->shape, n = sh[3];
    const char *s = src;
    for (int64_t b = 0; b < sh[0]; b++)
        for (int64_t i = 0; i < sh[1]; i++)
            for (int64_t h = 0; h < sh[2]; h++) {
                char *row = (char *)o->ptr + attn_at(o, b, i, h, 0) * (int64_t)esz;
                if (o->stride[3] == 1 || n == 1) {
                    memcpy(row, s, (size_t)n * esz);
                } else {
                    for (int64_t d = 0; d < n; d++)
                        memcpy(row + d * o->stride[3] * (int64_t)esz, s + d * (int64_t)esz,
                               esz);
                }
                s += n * (int64_t)esz;
            }
}

attn_status attn_cl_scratch(attn_cl_backend *cb, size_t bytes, attn_cl_operand *c)
{
    cl_int err;
    c->mem = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE, bytes ? bytes : sizeof(float), NULL,
                            &err);
    ATTN_CL_TRY(err, "clCreateBuffer (scratch)");
    c->owned = 1;
    return ATTN_OK;
}

/* ---- launches (ocl_sdpa.h) ---- */

cl_uint attn_cl_chain_wait(const attn_cl_chain *ch, const cl_event **list)
{
    *list = ch->last ? &ch->last : NULL;
    return ch->last ? 1 : 0;
}

void attn_cl_chain_push(attn_cl_chain *ch, cl_event ev)
{
    if (ch->last)
        clReleaseEvent(ch->last);
    ch->last = ev;
}

cl_int attn_cl_chain_wait_all(attn_cl_chain *ch)
{
    cl_int err = ch->last ? clWaitForEvents(1, &ch->last) : CL_SUCCESS;
    if (ch->last)
        clReleaseEvent(ch->last);
    ch->last = NULL;
    return err;
}

attn_status attn_cl_finish(attn_cl_chain *ch, attn_cl_operand *const *outs,
                           const attn_operand *const *ops, int n)
{
    for (int i = 0; i < n; i++) {
        if (!outs[i]->gather)
            continue;
        const cl_event *wait;
        cl_uint nwait = attn_cl_chain_wait(ch, &wait);
        cl_event ev = NULL;
        ATTN_CL_TRY(clEnqueueReadBuffer(ch->cb->queue, outs[i]->mem, CL_FALSE, 0,
                                        outs[i]->bytes, outs[i]->gather, nwait, wait, &ev),
                    "clEnqueueReadBuffer (output)");
        attn_cl_chain_push(ch, ev);
    }
    ATTN_CL_TRY(attn_cl_chain_wait_all(ch), "clWaitForEvents");
    for (int i = 0; i < n; i++)
        if (outs[i]->gather)
            scatter(ops[i], outs[i]->gather);
    return ATTN_OK;
}

void attn_cl_arg(attn_cl_args *a, size_t size, const void *v)
{
    if (a->err == CL_SUCCESS)
        a->err = clSetKernelArg(a->k, a->i, size, v);
    a->i++;
}

void attn_cl_arg_long(attn_cl_args *a, int64_t x)
{
    cl_long v = x;
    attn_cl_arg(a, sizeof v, &v);
}

void attn_cl_arg_float(attn_cl_args *a, double x)
{
    cl_float v = (cl_float)x;
    attn_cl_arg(a, sizeof v, &v);
}

void attn_cl_arg_operand(attn_cl_args *a, const attn_cl_operand *c)
{
    attn_cl_arg(a, sizeof(cl_mem), &c->mem);
    attn_cl_arg(a, sizeof c->off, &c->off);
    attn_cl_arg(a, sizeof c->st, &c->st);
}

attn_status attn_cl_launch(attn_cl_chain *ch, attn_cl_args *a, const char *name,
                           int64_t items0, int64_t items1, int wg)
{
    char what[96];
    size_t local[2] = {(size_t)wg, 1};
    size_t global[2] = {(size_t)attn_cl_ceil_div(items0, wg) * local[0], (size_t)items1};
    const cl_event *wait;
    cl_uint nwait = attn_cl_chain_wait(ch, &wait);
    cl_event ev = NULL;
    cl_int err = a->err;
    snprintf(what, sizeof what, "clSetKernelArg (%s)", name);
    if (err == CL_SUCCESS) {
        err = clEnqueueNDRangeKernel(ch->cb->queue, a->k, items1 > 1 ? 2 : 1, NULL, global,
                                     local, nwait, wait, &ev);
        snprintf(what, sizeof what, "clEnqueueNDRangeKernel (%s)", name);
    }
    clReleaseKernel(a->k);
    ATTN_CL_TRY(err, what);
    attn_cl_chain_push(ch, ev);
    return ATTN_OK;
}

/* Operands of one forward call: q k v mask_add mask_bool, out lse key_score, split scratch. */
typedef struct sdpa_bind {
    attn_cl_operand in[5], out, lse, ks, part_o, part_lse, kp, vp;
} sdpa_bind;

static attn_status launch_pack(attn_cl_chain *ch, const attn_sdpa_problem *p, const sdpa_plan *pl,
                               const sdpa_bind *bd)
{
    attn_cl_args a = {NULL, 0, CL_SUCCESS};
    attn_status st = attn_cl_create_kernel(ch->cb, "sdpa_flash_fwd.cl", "attn_pack_kv",
                                           pl->options, &a.k);
    if (st != ATTN_OK)
        return st;
    attn_cl_arg_operand(&a, &bd->in[1]);
    attn_cl_arg_operand(&a, &bd->in[2]);
    attn_cl_arg(&a, sizeof(cl_mem), &bd->kp.mem);
    attn_cl_arg(&a, sizeof(cl_mem), &bd->vp.mem);
    attn_cl_arg_long(&a, p->B);
    attn_cl_arg_long(&a, p->Skv);
    attn_cl_arg_long(&a, p->Hkv);
    attn_cl_arg_long(&a, pl->skp);
    /* One key per work-item: groups of 16 amortise per-group launch cost on CPU runtimes. */
    size_t maxwg = ch->cb->info.max_work_group_size;
    return attn_cl_launch(ch, &a, "attn_pack_kv", p->B * p->Hkv * pl->skp, 1,
                  maxwg < 16 ? (int)maxwg : 16);
}

static attn_status launch_flash(attn_cl_chain *ch, const attn_sdpa_problem *p, const sdpa_plan *pl,
                                const sdpa_bind *bd)
{
    attn_cl_args a = {NULL, 0, CL_SUCCESS};
    attn_status st = attn_cl_create_kernel(ch->cb, "sdpa_flash_fwd.cl", "attn_flash_fwd",
                                           pl->options, &a.k);
    if (st != ATTN_OK)
        return st;
    const attn_cl_operand *o = pl->split ? &bd->part_o : &bd->out;
    const attn_cl_operand *l = pl->split ? &bd->part_lse : &bd->lse;
    int64_t nrows = p->B * p->Sq * p->Hq;
    attn_cl_arg_operand(&a, &bd->in[0]);
    attn_cl_arg_operand(&a, &bd->in[1]);
    attn_cl_arg_operand(&a, &bd->in[2]);
    attn_cl_arg(&a, sizeof(cl_mem), &bd->kp.mem);
    attn_cl_arg(&a, sizeof(cl_mem), &bd->vp.mem);
    attn_cl_arg_long(&a, pl->skp);
    attn_cl_arg_operand(&a, o);
    attn_cl_arg_long(&a, pl->split ? nrows * p->Dv : 0);
    attn_cl_arg_operand(&a, l);
    attn_cl_arg_long(&a, pl->split ? nrows : 0);
    attn_cl_arg_operand(&a, &bd->in[3]);
    attn_cl_arg_operand(&a, &bd->in[4]);
    int64_t dims[] = {p->B, p->Sq, p->Skv, p->Hkv, p->group};
    for (int i = 0; i < 5; i++)
        attn_cl_arg_long(&a, dims[i]);
    attn_cl_arg_float(&a, p->scale);
    attn_cl_arg_float(&a, p->softcap);
    int64_t rest[] = {p->q_offset, p->window_left, p->window_right, pl->nblocks, pl->nsplit,
                      pl->split_len};
    for (int i = 0; i < 6; i++)
        attn_cl_arg_long(&a, rest[i]);
    if (pl->local) /* (row block, bh x split) so a work-group shares its K/V head */
        return attn_cl_launch(ch, &a, "attn_flash_fwd", pl->nblocks, p->B * p->Hkv * pl->nsplit,
                      pl->t.wg);
    return attn_cl_launch(ch, &a, "attn_flash_fwd", pl->items, 1, pl->t.wg);
}

static attn_status launch_merge(attn_cl_chain *ch, const attn_sdpa_problem *p, const sdpa_plan *pl,
                                const sdpa_bind *bd)
{
    attn_cl_args a = {NULL, 0, CL_SUCCESS};
    attn_status st = attn_cl_create_kernel(ch->cb, "sdpa_decode.cl", "attn_lse_merge",
                                           pl->merge_options, &a.k);
    if (st != ATTN_OK)
        return st;
    attn_cl_arg(&a, sizeof(cl_mem), &bd->part_o.mem);
    attn_cl_arg(&a, sizeof(cl_mem), &bd->part_lse.mem);
    attn_cl_arg_long(&a, pl->nsplit);
    attn_cl_arg_long(&a, p->B);
    attn_cl_arg_long(&a, p->Sq);
    attn_cl_arg_long(&a, p->Hq);
    attn_cl_arg_operand(&a, &bd->out);
    attn_cl_arg_operand(&a, &bd->lse);
    return attn_cl_launch(ch, &a, "attn_lse_merge", p->B * p->Sq * p->Hq, 1, pl->t.wg);
}

/* key_score from the final LSE; `a` holds the kernel, created before the forward ran so that
 * a failed build leaves every output unwritten. */
static attn_status launch_key_score(attn_cl_chain *ch, const attn_sdpa_problem *p,
                                    const sdpa_plan *pl, const sdpa_bind *bd, attn_cl_args *a)
{
    attn_cl_arg_operand(a, &bd->in[0]);
    attn_cl_arg_operand(a, &bd->in[1]);
    attn_cl_arg_operand(a, &bd->lse);
    attn_cl_arg_operand(a, &bd->in[3]);
    attn_cl_arg_operand(a, &bd->in[4]);
    attn_cl_arg_operand(a, &bd->ks);
    int64_t dims[] = {p->B, p->Sq, p->Skv, p->Hkv, p->group};
    for (int i = 0; i < 5; i++)
        attn_cl_arg_long(a, dims[i]);
    attn_cl_arg_float(a, p->scale);
    attn_cl_arg_float(a, p->softcap);
    int64_t rest[] = {p->q_offset, p->window_left, p->window_right, pl->ks_tiles};
    for (int i = 0; i < 4; i++)
        attn_cl_arg_long(a, rest[i]);
    return attn_cl_launch(ch, a, "attn_sdpa_key_score", pl->ks_tiles * p->B * p->Hkv, 1,
                          pl->t.wg);
}

static attn_status bind_all(attn_cl_backend *cb, const attn_sdpa_problem *p,
                            const sdpa_plan *pl, sdpa_bind *bd)
{
    const attn_operand *ins[5] = {&p->q, &p->k, &p->v, &p->mask_add, &p->mask_bool};
    attn_status st = ATTN_OK;
    for (int i = 0; i < 5 && st == ATTN_OK; i++)
        st = attn_cl_bind_input(cb, ins[i], &bd->in[i]);
    if (st == ATTN_OK)
        st = attn_cl_bind_output(cb, &p->out, &bd->out);
    if (st == ATTN_OK) /* the key_score kernel reads the LSE back */
        st = bind_output(cb, &p->lse, pl->ks ? CL_MEM_READ_WRITE : CL_MEM_WRITE_ONLY, &bd->lse);
    if (st == ATTN_OK)
        st = attn_cl_bind_output(cb, &p->key_score, &bd->ks);
    if (st == ATTN_OK && pl->ks && !p->lse.t) { /* the LSE key_score reads: [B][Sq][Hq] */
        st = attn_cl_scratch(cb, (size_t)(p->B * p->Sq * p->Hq) * sizeof(float), &bd->lse);
        int64_t sl[4] = {p->Sq * p->Hq, p->Hq, 1, 0};
        attn_cl_set_strides(&bd->lse, sl);
    }
    if (st == ATTN_OK && pl->split) {
        size_t rows = (size_t)(pl->nsplit * p->B * p->Sq * p->Hq);
        st = attn_cl_scratch(cb, rows * (size_t)p->Dv * sizeof(float), &bd->part_o);
        if (st == ATTN_OK)
            st = attn_cl_scratch(cb, rows * sizeof(float), &bd->part_lse);
        int64_t so[4] = {p->Sq * p->Hq * p->Dv, p->Hq * p->Dv, p->Dv, 1};
        int64_t sl[4] = {p->Sq * p->Hq, p->Hq, 1, 0};
        attn_cl_set_strides(&bd->part_o, so);
        attn_cl_set_strides(&bd->part_lse, sl);
    }
    if (st == ATTN_OK && pl->pack) {
        size_t n = (size_t)(p->B * p->Hkv * pl->skp);
        int64_t dvp = attn_cl_ceil_div(p->Dv, pl->t.vw) * pl->t.vw;
        st = attn_cl_scratch(cb, n * (size_t)p->Dk * sizeof(float), &bd->kp);
        if (st == ATTN_OK)
            st = attn_cl_scratch(cb, n * (size_t)dvp * sizeof(float), &bd->vp);
    }
    return st;
}

static attn_status cl_sdpa_run(attn_backend *be, const void *problem)
{
    const attn_sdpa_problem *p = problem;
    attn_cl_backend *cb = be->impl;
    if (p->backward)
        return attn_cl_sdpa_backward_run(cb, p);
    sdpa_plan pl;
    attn_status st = make_plan(cb, p, &pl);
    if (st != ATTN_OK)
        return st;
    sdpa_bind bd;
    memset(&bd, 0, sizeof bd);
    attn_cl_chain ch = {cb, NULL};
    st = bind_all(cb, p, &pl, &bd);
    /* A call with no query (key_score asked for) runs the key_score kernel alone; one with
     * no key writes no key_score element. */
    int rows = p->B * p->Sq * p->Hq > 0, ks = pl.ks && p->B * p->Skv * p->Hkv > 0;
    attn_cl_args ksa = {NULL, 0, CL_SUCCESS};
    if (st == ATTN_OK && ks)
        st = attn_cl_create_kernel(cb, KS_FILE, "attn_sdpa_key_score", pl.ks_options, &ksa.k);
    if (st == ATTN_OK && rows && pl.pack)
        st = launch_pack(&ch, p, &pl, &bd);
    if (st == ATTN_OK && rows)
        st = launch_flash(&ch, p, &pl, &bd);
    if (st == ATTN_OK && rows && pl.split)
        st = launch_merge(&ch, p, &pl, &bd);
    if (st == ATTN_OK && ks) {
        st = launch_key_score(&ch, p, &pl, &bd, &ksa);
        ksa.k = NULL; /* released by the launch */
    }
    if (ksa.k)
        clReleaseKernel(ksa.k);
    attn_cl_operand *outs[3] = {&bd.out, &bd.lse, &bd.ks};
    const attn_operand *ops[3] = {&p->out, &p->lse, &p->key_score};
    if (st == ATTN_OK)
        st = attn_cl_finish(&ch, outs, ops, 3);
    attn_cl_chain_wait_all(&ch); /* after a failure: nothing may still use the temporaries below */
    if (st == ATTN_OK)
        attn_cl_note_kernel(cb, pl.name);
    attn_cl_operand *all[] = {&bd.in[0], &bd.in[1], &bd.in[2],  &bd.in[3],    &bd.in[4], &bd.out,
                              &bd.lse,   &bd.ks,    &bd.part_o, &bd.part_lse, &bd.kp,    &bd.vp};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        attn_cl_release(all[i]);
    return st;
}

const attn_op_impl attn_opencl_sdpa_impl = {
    .supported = cl_sdpa_supported,
    .run = cl_sdpa_run,
    .impl_name = cl_sdpa_impl_name,
};
