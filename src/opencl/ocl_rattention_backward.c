/* ocl_rattention_backward.c - the RATTENTION backward on the OpenCL backend
 * (docs/ops/rattention.md, "Backward"). It recomputes the forward's branches before their
 * norms: RoPE of q and k into f32 scratch (the rope implementation) and the window's flash
 * forward with its lse (the sdpa implementation) give a; the forward's own residual-branch
 * kernels (cl/rattention_attn.cl: prep, state, rows) give b. Then cl/rattention_norm_bwd.cl
 * takes both norms back (da, db, and the gains' gradients summed in a fixed order), the sdpa
 * backward takes da through the window
 * on the rotated q and k, the linear backward takes db through the residual branch as a
 * linear attention problem (shift w + 1, paired map, no normaliser, scale 1, state_in,
 * d_state_out; into d_state_in), and the sum kernels rotate the window's dq and dk back and add
 * the residual branch's, stored once in the gradients' dtypes. Every sibling runs as a
 * sub-problem on device views of this call's memory (ocl_rattention.h): host gradients are
 * device images read back only after every command succeeded; this file's kernels are built
 * before anything runs, so once a sibling has written a gradient (d_state_in) only enqueueing
 * can still fail. No atomics anywhere: the same bits on every run. */
#include "attn_linear_problem.h"
#include "ocl_rattention.h"

#include <stdio.h>
#include <string.h>

#define RB_WG 16 /* work-items per group of this file's launches, as the forward's (fewer when
                  * the device allows fewer) */

/* The siblings' problems: RoPE and the window's forward (sub, with lse), the window's
 * backward, the residual branch's backward; the -D options of this file's kernels and of the
 * residual branch's forward kernels. */
typedef struct rb_plan {
    attn_cl_ratt_sub sub;
    attn_sdpa_problem swa_bwd;
    attn_linear_problem rla_bwd;
    int wg;
    char options[400], rla_options[480];
    char name[1400];
} rb_plan;

/* The operands the siblings see: the call's and f32 scratch (a, its lse, da, db; the
 * window's gradients on the rotated vectors tq, tk, tv; the residual branch's lq, lk, lv). */
typedef struct rb_ops {
    attn_cl_ratt_ops w;
    attn_operand lse, da, db, tq, tk, tv, lq, lk, lv;
    attn_operand state_in, d_state_out, d_state_in;
} rb_ops;

static void sub_problems(const attn_rattention_problem *p, const rb_ops *o, rb_plan *pl)
{
    attn_cl_ratt_sub_problems(p, &o->w, &pl->sub);
    pl->sub.swa.lse = o->lse;
    attn_sdpa_problem *s = &pl->swa_bwd;
    *s = pl->sub.swa;
    s->backward = 1;
    s->dout = o->da;
    s->dq = o->tq;
    s->dk = o->tk;
    s->dv = o->tv;
    attn_linear_problem *rb = &pl->rla_bwd;
    attn_rattention_rla_problem(p, rb);
    rb->q = o->w.q;
    rb->k = o->w.k;
    rb->v = o->w.v;
    rb->state_in = o->state_in;
    rb->backward = 1;
    rb->dout = o->db;
    rb->d_state_out = o->d_state_out;
    rb->dq = o->lq;
    rb->dk = o->lk;
    rb->dv = o->lv;
    rb->d_state_in = o->d_state_in;
}

static void planning_ops(const attn_rattention_problem *p, rb_ops *o)
{
    attn_cl_ratt_planning_ops(p, &o->w);
    const attn_operand qk = o->w.rq, kk = o->w.rk, qv = o->w.swa;
    const attn_operand kv = attn_cl_ratt_compact_f32(p->S, p->Hkv, p->Dv);
    o->lse = attn_cl_ratt_compact_f32(p->S, p->Hq, 1);
    o->da = o->db = qv;
    o->tq = o->lq = qk;
    o->tk = o->lk = kk;
    o->tv = o->lv = kv;
    o->state_in = p->state_in;
    o->d_state_out = p->d_state_out;
    o->d_state_in = p->d_state_in;
}

/* The -D options of this file's kernels and the implementation's name. */
static void plan_strings(attn_backend *be, const attn_rattention_problem *p, rb_plan *pl)
{
    char swa[256] = "", swab[256] = "", rlab[320];
    if (p->swa) {
        attn_cl_ratt_sub_name(&attn_opencl_sdpa_impl, be, &pl->sub.swa, swa, sizeof swa);
        attn_cl_ratt_sub_name(&attn_opencl_sdpa_impl, be, &pl->swa_bwd, swab, sizeof swab);
    }
    attn_cl_ratt_sub_name(&attn_opencl_linear_impl, be, &pl->rla_bwd, rlab, sizeof rlab);
    const int gs = p->gamma_swa.t != NULL, gr = p->gamma_rla.t != NULL;
    snprintf(pl->options, sizeof pl->options,
             "-DDK=%lld -DDV=%lld -DINTERLEAVED=%d -DHAS_SWA=%d -DHAS_GS=%d -DHAS_GR=%d "
             "-DHAS_DGS=%d -DHAS_DGR=%d -DDT_DO=%d -DDT_DQ=%d -DDT_DK=%d -DDT_DV=%d",
             (long long)p->Dk, (long long)p->Dv, p->rope == ATTN_ROPE_INTERLEAVED, p->swa, gs,
             gr, p->dgamma_swa.t != NULL, p->dgamma_rla.t != NULL, (int)p->dout.dtype,
             (int)p->dq.dtype, (int)p->dk.dtype, (int)p->dv.dtype);
    char window[560] = "";
    if (p->swa)
        snprintf(window, sizeof window, "rope+%s+%s+", swa, swab);
    snprintf(pl->name, sizeof pl->name,
             "rattention_bwd[%srla_chunk+%s+norm_bwd[dk%lld,dv%lld,%s,%s->%s/%s/%s%s%s]]", window,
             rlab, (long long)p->Dk, (long long)p->Dv, attn_cl_ratt_map_name(p->feature),
             attn_dtype_name(p->dout.dtype), attn_dtype_name(p->dq.dtype),
             attn_dtype_name(p->dk.dtype), attn_dtype_name(p->dv.dtype), gs ? ",gamma_swa" : "",
             gr ? ",gamma_rla" : "");
}

/* The one planning function: supported, impl_name and run all call it (run again with the
 * call's device views). */
static attn_status make_plan(attn_backend *be, const attn_rattention_problem *p,
                             const rb_ops *o, rb_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    if (p->Dk > ATTN_CL_RATT_MAX_DK)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: the rattention backward supports Dk up "
                         "to %d (got %lld)", ATTN_CL_RATT_MAX_DK, (long long)p->Dk);
    sub_problems(p, o, pl);
    if (p->swa) {
        ATTN_TRY(attn_opencl_sdpa_impl.supported(be, &pl->sub.swa));
        ATTN_TRY(attn_opencl_sdpa_impl.supported(be, &pl->swa_bwd));
    }
    ATTN_TRY(attn_opencl_linear_impl.supported(be, &pl->rla_bwd));
    plan_strings(be, p, pl);
    attn_cl_ratt_forward_options(p, pl->rla_options, sizeof pl->rla_options);
    const size_t maxwg = ((const attn_cl_backend *)be->impl)->info.max_work_group_size;
    pl->wg = maxwg < RB_WG ? (int)maxwg : RB_WG;
    return ATTN_OK;
}

attn_status attn_cl_rattention_backward_supported(attn_backend *be,
                                                  const attn_rattention_problem *p)
{
    rb_ops o;
    planning_ops(p, &o);
    rb_plan pl;
    return make_plan(be, p, &o, &pl);
}

void attn_cl_rattention_backward_impl_name(attn_backend *be, const attn_rattention_problem *p,
                                           char *buf, size_t n)
{
    rb_ops o;
    planning_ops(p, &o);
    rb_plan pl;
    if (make_plan(be, p, &o, &pl) == ATTN_OK)
        snprintf(buf, n, "opencl:%s", pl.name);
    else
        snprintf(buf, n, "opencl:unsupported");
}

/* ---- the call ---- */

/* The call's inputs, its gradients (M_DQ .. M_DSI, read back together), then scratch. */
enum { M_Q, M_K, M_V, M_GS, M_GR, M_SIN, M_DOUT, M_DSO, M_DQ, M_DK, M_DV, M_DGS, M_DGR, M_DSI,
       M_RQ, M_RK, M_A, M_LSE, M_B, M_DA, M_DB, M_RN, M_TQ, M_TK, M_TV, M_LQ, M_LK, M_LV,
       M_FQ, M_FK, M_VV, M_SX, M_TURNS, M_N };

static attn_status bind_all(attn_backend *be, const attn_rattention_problem *p,
                            attn_cl_ratt_mem m[M_N])
{
    const attn_operand *user[M_RQ] = {&p->q,     &p->k,  &p->v,  &p->gamma_swa,
                                      &p->gamma_rla, &p->state_in, &p->dout,
                                      &p->d_state_out, &p->dq, &p->dk, &p->dv,
                                      &p->dgamma_swa, &p->dgamma_rla, &p->d_state_in};
    for (int i = 0; i < M_RQ; i++)
        ATTN_TRY(attn_cl_ratt_bind(be, user[i], i >= M_DQ, &m[i]));
    const int64_t B = p->B, S = p->S, Hq = p->Hq, Hkv = p->Hkv, Dk = p->Dk, Dv = p->Dv;
    const int64_t shapes[M_FQ - M_RQ][4] = {
        {B, S, Hq, Dk}, {B, S, Hkv, Dk}, {B, S, Hq, Dv}, {B, S, Hq, 1},   {B, S, Hq, Dv},
        {B, S, Hq, Dv}, {B, S, Hq, Dv},  {B, S, Hq, 2},  {B, S, Hq, Dk},  {B, S, Hkv, Dk},
        {B, S, Hkv, Dv}, {B, S, Hq, Dk}, {B, S, Hkv, Dk}, {B, S, Hkv, Dv}};
    for (int i = M_RQ; i < M_FQ; i++) {
        const int window_only = i <= M_LSE || i == M_DA || (i >= M_TQ && i <= M_TV);
        if (window_only && !p->swa)
            continue;
        const int64_t *sh = shapes[i - M_RQ];
        ATTN_TRY(attn_cl_ratt_scratch(be, (size_t)(sh[0] * sh[1] * sh[2] * sh[3]), sh, &m[i]));
    }
    ATTN_TRY(attn_cl_ratt_rla_scratch(be, p, &m[M_FQ]));
    return p->swa ? attn_cl_ratt_turns(be, p, &m[M_TURNS]) : ATTN_OK;
}

static rb_ops device_ops(const attn_cl_ratt_mem m[M_N])
{
    rb_ops o;
    o.w = (attn_cl_ratt_ops){m[M_Q].op, m[M_K].op, m[M_V].op, m[M_RQ].op, m[M_RK].op, m[M_A].op};
    o.lse = m[M_LSE].op;
    o.da = m[M_DA].op;
    o.db = m[M_DB].op;
    o.tq = m[M_TQ].op;
    o.tk = m[M_TK].op;
    o.tv = m[M_TV].op;
    o.lq = m[M_LQ].op;
    o.lk = m[M_LK].op;
    o.lv = m[M_LV].op;
    o.state_in = m[M_SIN].op;
    o.d_state_out = m[M_DSO].op;
    o.d_state_in = m[M_DSI].op;
    return o;
}

enum { K_PREP, K_STATE, K_ROWS, K_NORM, K_DGAMMA, K_DQ, K_DK, K_DV, K_N };

/* The norms backward and the gains' gradients. */
static void norm_args(const attn_rattention_problem *p, attn_cl_ratt_mem m[M_N],
                      attn_cl_ratt_args a[K_N])
{
    attn_cl_ratt_args *n = &a[K_NORM], *g = &a[K_DGAMMA];
    attn_cl_ratt_put_mem(n, &m[M_A], 0);
    attn_cl_ratt_put_mem(n, &m[M_B], 0);
    attn_cl_ratt_put_mem(n, &m[M_DOUT], 1);
    attn_cl_ratt_put_mem(n, &m[M_GS], 1);
    attn_cl_ratt_put_mem(n, &m[M_GR], 1);
    attn_cl_ratt_put_mem(n, &m[M_DA], 0);
    attn_cl_ratt_put_mem(n, &m[M_DB], 0);
    attn_cl_ratt_put_mem(n, &m[M_RN], 0);
    attn_cl_ratt_put_longs(n, 3, (const int64_t[]){p->S, p->Hq, p->B * p->S * p->Hq});
    attn_cl_ratt_put_float(n, p->eps);
    attn_cl_ratt_put_mem(g, &m[M_A], 0);
    attn_cl_ratt_put_mem(g, &m[M_B], 0);
    attn_cl_ratt_put_mem(g, &m[M_DOUT], 1);
    attn_cl_ratt_put_mem(g, &m[M_RN], 0);
    attn_cl_ratt_put_mem(g, &m[M_DGS], 1);
    attn_cl_ratt_put_mem(g, &m[M_DGR], 1);
    attn_cl_ratt_put_longs(g, 3, (const int64_t[]){p->B, p->S, p->Hq});
}

/* The sums into dq, dk (rotated back) and dv; items[] gets each launch's work-items. */
static void sum_args(const attn_rattention_problem *p, attn_cl_ratt_mem m[M_N],
                     attn_cl_ratt_args a[K_N], int64_t items[K_N])
{
    const int64_t rq = p->B * p->S * p->Hq, rk = p->B * p->S * p->Hkv;
    const int kinds[2][4] = {{K_DQ, M_TQ, M_LQ, M_DQ}, {K_DK, M_TK, M_LK, M_DK}};
    for (int x = 0; x < 2; x++) {
        attn_cl_ratt_args *s = &a[kinds[x][0]];
        attn_cl_ratt_put_mem(s, &m[kinds[x][1]], 0);
        attn_cl_ratt_put_mem(s, &m[kinds[x][2]], 0);
        attn_cl_ratt_put_mem(s, &m[M_TURNS], 0);
        attn_cl_ratt_put_mem(s, &m[kinds[x][3]], 1);
        items[kinds[x][0]] = (x == 0 ? rq : rk) * (p->Dk / 2);
        attn_cl_ratt_put_longs(s, 4, (const int64_t[]){p->offset, p->S, x == 0 ? p->Hq : p->Hkv,
                                                       items[kinds[x][0]]});
    }
    attn_cl_ratt_args *v = &a[K_DV];
    attn_cl_ratt_put_mem(v, &m[M_TV], 0);
    attn_cl_ratt_put_mem(v, &m[M_LV], 0);
    attn_cl_ratt_put_mem(v, &m[M_DV], 1);
    items[K_DV] = rk * p->Dv;
    attn_cl_ratt_put_longs(v, 3, (const int64_t[]){p->S, p->Hkv, items[K_DV]});
}

/* The chain's commands done before a sibling runs on what they wrote. */
static attn_status settle(attn_cl_ratt_chain *ch)
{
    if (ch->last)
        ATTN_CL_TRY(clWaitForEvents(1, &ch->last), "clWaitForEvents (rattention backward)");
    return ATTN_OK;
}

/* The branches recomputed, the norms back, both branches back, the sums. Each sibling's run
 * waits for its own commands. */
static attn_status launch(attn_backend *be, const attn_rattention_problem *p, rb_plan *pl,
                          attn_cl_ratt_mem m[M_N], attn_cl_ratt_args a[K_N],
                          attn_cl_ratt_chain *ch)
{
    static const char *const names[K_N] = {"attn_ratt_rla_prep", "attn_ratt_rla_state",
                                           "attn_ratt_rla_rows", "attn_ratt_norm_bwd",
                                           "attn_ratt_dgamma",   "attn_ratt_dq_sum",
                                           "attn_ratt_dk_sum",   "attn_ratt_dv_sum"};
    ATTN_TRY(bind_all(be, p, m));
    for (int i = 0; i < K_N; i++)
        ATTN_TRY(attn_cl_create_kernel(ch->cb, i < K_NORM ? "rattention_attn.cl"
                                                          : "rattention_norm_bwd.cl",
                                       names[i], i < K_NORM ? pl->rla_options : pl->options,
                                       &a[i].k));
    const rb_ops o = device_ops(m);
    sub_problems(p, &o, pl);
    const int rows = p->B * p->S > 0;
    if (p->swa && rows) {
        ATTN_TRY(attn_opencl_rope_impl.run(be, &pl->sub.rq));
        ATTN_TRY(attn_opencl_rope_impl.run(be, &pl->sub.rk));
        ATTN_TRY(attn_opencl_sdpa_impl.run(be, &pl->sub.swa));
    }
    const attn_cl_ratt_mem none = {0};
    const attn_cl_ratt_mem *const io[5] = {&m[M_Q], &m[M_K], &m[M_V], &m[M_SIN], &none};
    int64_t items[K_N];
    attn_cl_ratt_rla_args(p, io, &m[M_FQ], &m[M_B], a, items);
    for (int i = K_PREP; i <= K_ROWS; i++)
        ATTN_TRY(attn_cl_ratt_enqueue(ch, &a[i], items[i], pl->wg));
    norm_args(p, m, a);
    ATTN_TRY(attn_cl_ratt_enqueue(ch, &a[K_NORM], p->B * p->S * p->Hq, pl->wg));
    ATTN_TRY(attn_cl_ratt_enqueue(ch, &a[K_DGAMMA], 2 * p->Hq * p->Dv, pl->wg));
    ATTN_TRY(settle(ch));
    if (p->swa && rows)
        ATTN_TRY(attn_opencl_sdpa_impl.run(be, &pl->swa_bwd));
    if (p->B > 0)
        ATTN_TRY(attn_opencl_linear_impl.run(be, &pl->rla_bwd));
    sum_args(p, m, a, items);
    for (int i = K_DQ; i < K_N; i++)
        ATTN_TRY(attn_cl_ratt_enqueue(ch, &a[i], items[i], pl->wg));
    return attn_cl_ratt_finish(ch, &m[M_DQ], M_RQ - M_DQ);
}

attn_status attn_cl_rattention_backward_run(attn_backend *be, const attn_rattention_problem *p)
{
    rb_ops po;
    planning_ops(p, &po);
    rb_plan pl;
    ATTN_TRY(make_plan(be, p, &po, &pl));
    attn_cl_ratt_mem m[M_N];
    memset(m, 0, sizeof m);
    attn_cl_ratt_args a[K_N];
    memset(a, 0, sizeof a);
    attn_cl_ratt_chain ch = {be->impl, NULL};
    attn_status st = attn_cl_ratt_chain_end(a, K_N, &ch, launch(be, p, &pl, m, a, &ch));
    if (st != ATTN_OK) /* nothing may still use the temporaries below */
        clFinish(ch.cb->queue);
    attn_cl_ratt_release_all(m, M_N);
    if (st == ATTN_OK)
        attn_cl_note_kernel(be->impl, pl.name);
    return st;
}
