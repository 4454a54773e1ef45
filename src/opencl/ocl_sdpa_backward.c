/* ocl_sdpa_backward.c - the SDPA backward on the OpenCL backend: its launch plan (tiles and
 * -D specialisation, shared by the capability check, the implementation name and the call),
 * and the launches of cl/sdpa_flash_bwd.cl: D = rowsum(dO * O), K and V packed to f32 tiles
 * (with a byte per key flagging an Inf/NaN in its K), dK/dV per key block, dQ per query block (and dS for the additive mask's gradient), then the
 * mask gradient's fixed-order sum over its broadcast dims. Every gradient element has one
 * writer: no atomics, the same bits on every run. Operand binding and launches are the
 * forward's (ocl_sdpa.h). */
#include "ocl_sdpa.h"

#include <stdio.h>
#include <string.h>

#define BWD_MAX_PRIVATE 262144 /* bytes of private tiles per work-item we accept */
#define BWD_ROWS 16            /* default query rows per dQ work-item, keys per dK/dV one */

typedef struct bwd_plan {
    int br, bc, vw, wg;      /* dQ rows, dK/dV keys per work-item; vector width; group size */
    int64_t nblocks, ntiles; /* dQ work-items per (b, h), dK/dV ones per (b, hkv) */
    int64_t skp;             /* Skv rounded up to bc: the packed K/V rows */
    int dmask;               /* the additive mask's gradient is asked for */
    char options[640];
    char name[200];
} bwd_plan;

static int64_t round_up(int64_t x, int64_t m)
{
    return attn_cl_ceil_div(x, m) * m;
}

/* Private bytes of a dK/dV work-item (the dK^T, dV^T tiles, a block of Q and dO rows) and of
 * a dQ one (Q, dO, dQ rows, the tile's G and the band, lse and D per row). */
static int64_t dkdv_bytes(const attn_sdpa_problem *p, int bc)
{
    return 4 * ((int64_t)(bc + 4) * (p->Dk + p->Dv) + 8 * (int64_t)bc);
}

static int64_t dq_bytes(const attn_sdpa_problem *p, int br, int bc, int vw)
{
    int64_t dkp = round_up(p->Dk, vw);
    return 4 * ((int64_t)br * (p->Dk + p->Dv + dkp + bc + 12) + 8 * (int64_t)bc);
}

static int is_vec_width(int x)
{
    return x == 2 || x == 4 || x == 8 || x == 16;
}

/* Tiles: the device's tuning (br, bc, vw and wg when the options set them), rows and keys
 * per work-item halved until the private tiles fit. */
static attn_status plan_tiles(const attn_cl_backend *cb, const attn_sdpa_problem *p,
                              bwd_plan *pl)
{
    pl->br = cb->tune_set[0] ? cb->tune.br : BWD_ROWS;
    pl->bc = cb->tune_set[1] ? cb->tune.bc : BWD_ROWS;
    pl->vw = cb->tune.vw;
    pl->wg = cb->tune.wg;
    if (!is_vec_width(pl->bc) || !is_vec_width(pl->vw))
        return attn_fail(ATTN_ERR_UNSUPPORTED,
                         "opencl: bc = %d, vw = %d: each must be 2, 4, 8 or 16", pl->bc, pl->vw);
    if ((size_t)pl->wg > cb->info.max_work_group_size)
        return attn_fail(ATTN_ERR_UNSUPPORTED,
                         "opencl: work-group size %d exceeds the device maximum %zu", pl->wg,
                         cb->info.max_work_group_size);
    while (pl->bc > 2 && (dkdv_bytes(p, pl->bc) > BWD_MAX_PRIVATE ||
                          dq_bytes(p, 1, pl->bc, pl->vw) > BWD_MAX_PRIVATE))
        pl->bc /= 2;
    while (pl->br > 1 && dq_bytes(p, pl->br, pl->bc, pl->vw) > BWD_MAX_PRIVATE)
        pl->br /= 2;
    if (dq_bytes(p, pl->br, pl->bc, pl->vw) > BWD_MAX_PRIVATE ||
        dkdv_bytes(p, pl->bc) > BWD_MAX_PRIVATE)
        return attn_fail(ATTN_ERR_UNSUPPORTED,
                         "opencl: backward with Dk = %lld, Dv = %lld needs more than %d bytes "
                         "of private tiles per work-item",
                         (long long)p->Dk, (long long)p->Dv, BWD_MAX_PRIVATE);
    pl->nblocks = attn_cl_ceil_div(p->Sq, pl->br);
    pl->ntiles = attn_cl_ceil_div(p->Skv, pl->bc);
    pl->skp = pl->ntiles * pl->bc;
    return ATTN_OK;
}

/* The mask gradient goes through an f32 dS scratch of every logit [B][Sq][Hq][Skv]. */
static attn_status plan_dmask(const attn_cl_backend *cb, const attn_sdpa_problem *p,
                              bwd_plan *pl)
{
    pl->dmask = p->dmask_add.t != NULL;
    if (!pl->dmask)
        return ATTN_OK;
    double bytes = 4.0 * (double)p->B * (double)p->Sq * (double)p->Hq * (double)p->Skv;
    if (bytes > (double)cb->info.global_mem_bytes / 4)
        return attn_fail(ATTN_ERR_UNSUPPORTED,
                         "opencl: grads.dmask_add needs a %.3g-byte scratch of every logit's "
                         "gradient, more than a quarter of the device memory",
                         bytes);
    return ATTN_OK;
}

static void plan_options(const attn_sdpa_problem *p, bwd_plan *pl)
{
    int band = p->window_left >= 0 || p->window_right >= 0;
    int ma = p->mask_add.t != NULL, mb = p->mask_bool.t != NULL, cap = p->softcap > 0;
    int dtm = ma ? (int)p->mask_add.dtype : ATTN_F32;
    snprintf(pl->options, sizeof pl->options,
             "-DDK=%lld -DDV=%lld -DBR=%d -DBC=%d -DVW=%d -DDT_Q=%d -DDT_K=%d -DDT_V=%d "
             "-DDT_O=%d -DDT_DO=%d -DDT_DQ=%d -DDT_DK=%d -DDT_DV=%d -DDT_M=%d -DHAS_BAND=%d "
             "-DHAS_MASK_ADD=%d -DHAS_MASK_BOOL=%d -DHAS_SOFTCAP=%d -DHAS_DMASK=%d",
             (long long)p->Dk, (long long)p->Dv, pl->br, pl->bc, pl->vw, (int)p->q.dtype,
             (int)p->k.dtype, (int)p->v.dtype, (int)p->out.dtype, (int)p->dout.dtype,
             (int)p->dq.dtype, (int)p->dk.dtype, (int)p->dv.dtype, dtm, band, ma, mb, cap,
             pl->dmask);
    snprintf(pl->name, sizeof pl->name,
             "flash_bwd[dk%lld,dv%lld,br%d,bc%d,vw%d,wg%d,%s/%s/%s/%s->%s/%s/%s%s%s%s%s%s]",
             (long long)p->Dk, (long long)p->Dv, pl->br, pl->bc, pl->vw, pl->wg,
             attn_dtype_name(p->q.dtype), attn_dtype_name(p->k.dtype),
             attn_dtype_name(p->v.dtype), attn_dtype_name(p->dout.dtype),
             attn_dtype_name(p->dq.dtype), attn_dtype_name(p->dk.dtype),
             attn_dtype_name(p->dv.dtype), band ? ",band" : "", ma ? ",madd" : "",
             mb ? ",mbool" : "", cap ? ",cap" : "", pl->dmask ? ",dmask" : "");
}

static attn_status make_plan(const attn_cl_backend *cb, const attn_sdpa_problem *p,
                             bwd_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    attn_status st = plan_tiles(cb, p, pl);
    if (st == ATTN_OK)
        st = plan_dmask(cb, p, pl);
    if (st == ATTN_OK)
        plan_options(p, pl);
    return st;
}

attn_status attn_cl_sdpa_backward_supported(attn_cl_backend *cb, const attn_sdpa_problem *p)
{
    bwd_plan pl;
    return make_plan(cb, p, &pl);
}

void attn_cl_sdpa_backward_impl_name(attn_cl_backend *cb, const attn_sdpa_problem *p, char *buf,
                                     size_t n)
{
    bwd_plan pl;
    if (make_plan(cb, p, &pl) == ATTN_OK)
        snprintf(buf, n, "opencl:%s", pl.name);
    else
        snprintf(buf, n, "opencl:unsupported");
}

/* ---- the call ---- */

enum { IN_Q, IN_K, IN_V, IN_MADD, IN_MBOOL, IN_OUT, IN_LSE, IN_DOUT, IN_N };
enum { G_DQ, G_DK, G_DV, G_DMASK, G_N };

/* Operands of one backward call: inputs, gradients, the D rows and the dS scratch. */
typedef struct bwd_bind {
    attn_cl_operand in[IN_N], grad[G_N], d, ds, kp, vp, kr, kbad;
} bwd_bind;

static attn_status bind_all(attn_cl_backend *cb, const attn_sdpa_problem *p, const bwd_plan *pl,
                            bwd_bind *bd)
{
    const attn_operand *ins[IN_N] = {&p->q,         &p->k,   &p->v,   &p->mask_add,
                                     &p->mask_bool, &p->out, &p->lse, &p->dout};
    const attn_operand *grads[G_N] = {&p->dq, &p->dk, &p->dv, &p->dmask_add};
    attn_status st = ATTN_OK;
    for (int i = 0; i < IN_N && st == ATTN_OK; i++)
        st = attn_cl_bind_input(cb, ins[i], &bd->in[i]);
    for (int i = 0; i < G_N && st == ATTN_OK; i++)
        st = attn_cl_bind_output(cb, grads[i], &bd->grad[i]);
    size_t rows = (size_t)(p->B * p->Sq * p->Hq);
    if (st == ATTN_OK)
        st = attn_cl_scratch(cb, rows * sizeof(float), &bd->d);
    if (st == ATTN_OK && pl->dmask)
        st = attn_cl_scratch(cb, rows * (size_t)p->Skv * sizeof(float), &bd->ds);
    size_t keys = (size_t)(p->B * p->Hkv * pl->skp);
    if (st == ATTN_OK)
        st = attn_cl_scratch(cb, keys * (size_t)p->Dk * sizeof(float), &bd->kp);
    if (st == ATTN_OK)
        st = attn_cl_scratch(cb, keys * (size_t)p->Dv * sizeof(float), &bd->vp);
    if (st == ATTN_OK)
        st = attn_cl_scratch(cb, keys * (size_t)round_up(p->Dk, pl->vw) * sizeof(float),
                             &bd->kr);
    if (st == ATTN_OK)
        st = attn_cl_scratch(cb, keys, &bd->kbad);
    return st;
}

static attn_status kernel(attn_cl_chain *ch, const bwd_plan *pl, const char *name,
                          attn_cl_args *a)
{
    memset(a, 0, sizeof *a);
    return attn_cl_create_kernel(ch->cb, "sdpa_flash_bwd.cl", name, pl->options, &a->k);
}

static attn_status launch_dot(attn_cl_chain *ch, const attn_sdpa_problem *p, const bwd_plan *pl,
                              const bwd_bind *bd)
{
    attn_cl_args a;
    ATTN_TRY(kernel(ch, pl, "attn_bwd_dot", &a));
    attn_cl_arg_operand(&a, &bd->in[IN_OUT]);
    attn_cl_arg_operand(&a, &bd->in[IN_DOUT]);
    attn_cl_arg(&a, sizeof(cl_mem), &bd->d.mem);
    attn_cl_arg_long(&a, p->B);
    attn_cl_arg_long(&a, p->Sq);
    attn_cl_arg_long(&a, p->Hq);
    return attn_cl_launch(ch, &a, "attn_bwd_dot", p->B * p->Sq * p->Hq, 1, pl->wg);
}

static attn_status launch_pack(attn_cl_chain *ch, const attn_sdpa_problem *p,
                               const bwd_plan *pl, const bwd_bind *bd)
{
    attn_cl_args a;
    ATTN_TRY(kernel(ch, pl, "attn_bwd_pack", &a));
    attn_cl_arg_operand(&a, &bd->in[IN_K]);
    attn_cl_arg_operand(&a, &bd->in[IN_V]);
    const cl_mem *packed[4] = {&bd->kp.mem, &bd->vp.mem, &bd->kr.mem, &bd->kbad.mem};
    for (int i = 0; i < 4; i++)
        attn_cl_arg(&a, sizeof(cl_mem), packed[i]);
    int64_t dims[] = {p->B, p->Skv, p->Hkv, pl->skp};
    for (int i = 0; i < 4; i++)
        attn_cl_arg_long(&a, dims[i]);
    return attn_cl_launch(ch, &a, "attn_bwd_pack", p->B * p->Hkv * pl->skp, 1, pl->wg);
}

/* The arguments attn_bwd_dkdv and attn_bwd_dq share, up to the masks. */
static void common_args(attn_cl_args *a, const bwd_plan *pl, const bwd_bind *bd)
{
    attn_cl_arg_operand(a, &bd->in[IN_Q]);
    const cl_mem *packed[4] = {&bd->kp.mem, &bd->vp.mem, &bd->kr.mem, &bd->kbad.mem};
    for (int i = 0; i < 4; i++)
        attn_cl_arg(a, sizeof(cl_mem), packed[i]);
    attn_cl_arg_long(a, pl->skp);
    attn_cl_arg_operand(a, &bd->in[IN_DOUT]);
    attn_cl_arg_operand(a, &bd->in[IN_LSE]);
    attn_cl_arg(a, sizeof(cl_mem), &bd->d.mem);
    attn_cl_arg_operand(a, &bd->in[IN_MADD]);
    attn_cl_arg_operand(a, &bd->in[IN_MBOOL]);
}

/* The scalars after the dims: scale, soft-cap, alignment, window, work-items per head. */
static void band_args(attn_cl_args *a, const attn_sdpa_problem *p, int64_t per_head)
{
    attn_cl_arg_float(a, p->scale);
    attn_cl_arg_float(a, p->softcap);
    int64_t rest[] = {p->q_offset, p->window_left, p->window_right, per_head};
    for (int i = 0; i < 4; i++)
        attn_cl_arg_long(a, rest[i]);
}

static attn_status launch_dkdv(attn_cl_chain *ch, const attn_sdpa_problem *p,
                               const bwd_plan *pl, const bwd_bind *bd)
{
    attn_cl_args a;
    ATTN_TRY(kernel(ch, pl, "attn_bwd_dkdv", &a));
    common_args(&a, pl, bd);
    attn_cl_arg_operand(&a, &bd->grad[G_DK]);
    attn_cl_arg_operand(&a, &bd->grad[G_DV]);
    int64_t dims[] = {p->B, p->Sq, p->Skv, p->Hkv, p->group};
    for (int i = 0; i < 5; i++)
        attn_cl_arg_long(&a, dims[i]);
    band_args(&a, p, pl->ntiles);
    return attn_cl_launch(ch, &a, "attn_bwd_dkdv", pl->ntiles * p->B * p->Hkv, 1, pl->wg);
}

static attn_status launch_dq(attn_cl_chain *ch, const attn_sdpa_problem *p, const bwd_plan *pl,
                             const bwd_bind *bd)
{
    attn_cl_args a;
    ATTN_TRY(kernel(ch, pl, "attn_bwd_dq", &a));
    common_args(&a, pl, bd);
    attn_cl_arg_operand(&a, &bd->grad[G_DQ]);
    attn_cl_arg(&a, sizeof(cl_mem), &bd->ds.mem);
    int64_t dims[] = {p->B, p->Sq, p->Skv, p->Hq, p->group};
    for (int i = 0; i < 5; i++)
        attn_cl_arg_long(&a, dims[i]);
    band_args(&a, p, pl->nblocks);
    return attn_cl_launch(ch, &a, "attn_bwd_dq", pl->nblocks * p->B * p->Hq, 1, pl->wg);
}

/* dS starts at zero: attn_bwd_dq writes the visible logits only. */
static attn_status zero_ds(attn_cl_chain *ch, const attn_sdpa_problem *p, const bwd_bind *bd)
{
    const cl_float zero = 0.0f;
    const cl_event *wait;
    cl_uint nwait = attn_cl_chain_wait(ch, &wait);
    cl_event ev = NULL;
    size_t bytes = (size_t)(p->B * p->Sq * p->Hq * p->Skv) * sizeof(float);
    ATTN_CL_TRY(clEnqueueFillBuffer(ch->cb->queue, bd->ds.mem, &zero, sizeof zero, 0, bytes,
                                    nwait, wait, &ev),
                "clEnqueueFillBuffer (dS scratch)");
    attn_cl_chain_push(ch, ev);
    return ATTN_OK;
}

static attn_status launch_dmask(attn_cl_chain *ch, const attn_sdpa_problem *p,
                                const bwd_plan *pl, const bwd_bind *bd)
{
    const int64_t *sh = p->mask_add.t->shape;
    attn_cl_args a;
    ATTN_TRY(kernel(ch, pl, "attn_bwd_dmask", &a));
    attn_cl_arg(&a, sizeof(cl_mem), &bd->ds.mem);
    attn_cl_arg(&a, sizeof(cl_mem), &bd->grad[G_DMASK].mem);
    attn_cl_arg(&a, sizeof bd->grad[G_DMASK].off, &bd->grad[G_DMASK].off);
    attn_cl_arg(&a, sizeof bd->grad[G_DMASK].st, &bd->grad[G_DMASK].st);
    cl_long4 msh = {{sh[0], sh[1], sh[2], p->Skv}};
    attn_cl_arg(&a, sizeof msh, &msh);
    int64_t dims[] = {p->B, p->Sq, p->Hq, p->Skv};
    for (int i = 0; i < 4; i++)
        attn_cl_arg_long(&a, dims[i]);
    return attn_cl_launch(ch, &a, "attn_bwd_dmask", sh[0] * sh[1] * sh[2] * p->Skv, 1, pl->wg);
}

/* The kernels of a call, each skipped when it has nothing to write (Sq = 0 still zeroes dK and
 * dV; Skv = 0 still zeroes dQ). */
static attn_status launch_all(attn_cl_chain *ch, const attn_sdpa_problem *p, const bwd_plan *pl,
                              const bwd_bind *bd)
{
    int64_t rows = p->B * p->Sq * p->Hq, keys = p->B * p->Skv * p->Hkv;
    if (rows > 0)
        ATTN_TRY(launch_dot(ch, p, pl, bd));
    if (keys > 0)
        ATTN_TRY(launch_pack(ch, p, pl, bd));
    if (keys > 0)
        ATTN_TRY(launch_dkdv(ch, p, pl, bd));
    if (rows > 0 && pl->dmask && p->Skv > 0)
        ATTN_TRY(zero_ds(ch, p, bd));
    if (rows > 0)
        ATTN_TRY(launch_dq(ch, p, pl, bd));
    if (pl->dmask && keys > 0 && bd->grad[G_DMASK].mem)
        ATTN_TRY(launch_dmask(ch, p, pl, bd));
    return ATTN_OK;
}

attn_status attn_cl_sdpa_backward_run(attn_cl_backend *cb, const attn_sdpa_problem *p)
{
    bwd_plan pl;
    ATTN_TRY(make_plan(cb, p, &pl));
    bwd_bind bd;
    memset(&bd, 0, sizeof bd);
    attn_cl_chain ch = {cb, NULL};
    attn_status st = bind_all(cb, p, &pl, &bd);
    if (st == ATTN_OK)
        st = launch_all(&ch, p, &pl, &bd);
    attn_cl_operand *outs[G_N] = {&bd.grad[G_DQ], &bd.grad[G_DK], &bd.grad[G_DV],
                                  &bd.grad[G_DMASK]};
    const attn_operand *ops[G_N] = {&p->dq, &p->dk, &p->dv, &p->dmask_add};
    if (st == ATTN_OK)
        st = attn_cl_finish(&ch, outs, ops, G_N);
    attn_cl_chain_wait_all(&ch); /* after a failure: nothing may still use the temporaries */
    if (st == ATTN_OK)
        attn_cl_note_kernel(cb, pl.name);
    for (int i = 0; i < IN_N; i++)
        attn_cl_release(&bd.in[i]);
    for (int i = 0; i < G_N; i++)
        attn_cl_release(&bd.grad[i]);
    attn_cl_operand *scratch[] = {&bd.d, &bd.ds, &bd.kp, &bd.vp, &bd.kr, &bd.kbad};
    for (size_t i = 0; i < sizeof scratch / sizeof scratch[0]; i++)
        attn_cl_release(scratch[i]);
    return st;
}
