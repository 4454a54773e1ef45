/* rattention_run.c - `attn run --variant rattention`: RATTENTION's forward on .npy files (q, k,
 * v, optional gammas and initial state) with the descriptor options named like the library's
 * fields (--window, --feature, --rope, --rope-theta, --offset, --scale, --eps), on any backend;
 * with --dout also the backward (the gradients of q, k, v, both gains and the initial state,
 * written through attn_run.c's gradient files); the f64 ground truth with --backend ref
 * --out-dtype f64. */
#include "attn_args.h"
#include "attn_run.h"
#include "linear_tool.h"
#include "rattention_ref.h"
#include "rattention_tool.h"
#include "rope_tool.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char attn_args_rattention_help[] =
    "  --window N         past tokens the sliding-window branch sees besides the current one,\n"
    "                     >= -1 (-1: no SWA branch; default 512; HF's sliding_window W is W-1)\n"
    "  --feature F        the residual branch's map: softmax-pair (default) or relu-pair\n"
    "  --rope half|interleaved  SWA's RoPE pairs (default interleaved, axlearn)\n"
    "  --rope-theta X     RoPE base > 0 (default 500000)\n"
    "  --offset N         position of row 0, |N| <= 2^40 (default 0)\n"
    "  --scale X          SWA logit scale, nonzero (default 1/sqrt(Dk))\n"
    "  --eps X            GroupRMSNorm's eps > 0 (default 1e-8)\n";

/* The pair maps under both spellings (the case names write softmax_pair). */
static const char *const feature_names[] = {"softmax-pair", "relu-pair", "softmax_pair",
                                            "relu_pair", NULL};

/* --rope, --rope-theta and --offset as the RoPE op reads them (rope_run.c); every feature
 * rotates, so --rot-dim is refused. 1 consumed, 0 none of them, -1 error. */
static int rope_arg(int argc, char **argv, int *i, attn_rattention_desc *d)
{
    attn_rope_desc r = attn_rope_desc_default();
    r.layout = d->rope;
    r.theta = d->rope_theta;
    r.offset = d->offset;
    const int c = attn_args_rope(argc, argv, i, &r);
    if (c <= 0)
        return c;
    if (r.rot_dim != 0) {
        fprintf(stderr, "attn: --rot-dim: RATTENTION rotates all Dk features\n");
        return -1;
    }
    d->rope = r.layout;
    d->rope_theta = r.theta;
    d->offset = r.offset;
    return 1;
}

int attn_args_rattention(int argc, char **argv, int *i, attn_rattention_desc *d)
{
    const char *val;
    int r, f;
    if ((r = attn_arg_value(argc, argv, i, "--window", &val)) != 0)
        return r < 0 || attn_parse_i64("--window", val, -1, INT64_MAX, &d->window) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--feature", &val)) != 0) {
        if (r < 0 || attn_parse_choice("--feature", val, feature_names, &f))
            return -1;
        d->feature = f % 2 ? ATTN_LINEAR_RELU_PAIR : ATTN_LINEAR_SOFTMAX_PAIR;
        return 1;
    }
    if ((r = attn_arg_value(argc, argv, i, "--scale", &val)) != 0)
        return r < 0 || attn_parse_f32_nonzero("--scale", val, -FLT_MAX, &d->scale) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--eps", &val)) != 0)
        return r < 0 || attn_parse_f32_nonzero("--eps", val, FLT_MIN, &d->eps) ? -1 : 1;
    return rope_arg(argc, argv, i, d);
}

/* ---- the run -------------------------------------------------------------------------------- */

enum { IN_Q, IN_K, IN_V, IN_GAMMA_SWA, IN_GAMMA_RLA, IN_STATE, IN_DOUT, IN_DSTATE, IN_N };

/* The gradients --dout writes: dq, dk, dv like q, k, v; the gains'; the initial state's. */
enum { GRAD_Q, GRAD_K, GRAD_V, GRAD_GSWA, GRAD_GRLA, GRAD_STATE, GRAD_N };

typedef struct ratt_run {
    attn_run_opts o;
    attn_rattention_desc d;
    attn_run_array in[IN_N];
    const char *state_out;
    int64_t dims[4], sdims[4]; /* out [B, S, Hq, Dv]; state [B, Hkv, 2 Dk, Dv] */
    void *out;
    float *state;
    double *out64, *state64, *tmp64;
    attn_run_grad grad[GRAD_N];
    attn_backend *be;
} ratt_run;

const char attn_rattention_run_help[] =
    "usage: attn run --variant rattention --q Q.npy --k K.npy --v V.npy --out O.npy [options]\n"
    "RATTENTION: out = GroupRMSNorm(SWA) + GroupRMSNorm(RLA): softmax attention of RoPE(q) over\n"
    "the current and --window past RoPE(k), plus phi(q) (S0 + sum phi(k)^T v over the keys the\n"
    "window has left behind), raw q and k (docs/ops/rattention.md)\n"
    "  --q, --k, --v FILE query [B,S,Hq,Dk], key [B,S,Hkv,Dk], value [B,S,Hkv,Dv]\n"
    "  --gamma-swa FILE   the SWA norm's scale [Hq,Dv] (f32; default 1)\n"
    "  --gamma-rla FILE   the RLA norm's scale [Hq,Dv] (f32; default 1)\n"
    "  --state-in FILE    initial state S0 [B,Hkv,2Dk,Dv] (f32)\n"
    "  --state-out FILE   write the state the next token continues from [B,Hkv,2Dk,Dv] (f32;\n"
    "                     f64 with --out-dtype f64)\n"
    "backward (after the forward, on the same backend):\n"
    "  --dout FILE        the output's gradient, out's shape; needs --dq, --dk, --dv\n"
    "  --dq, --dk, --dv FILE  write the gradients of q, k, v (their files' shapes; f32, f64\n"
    "                     with --out-dtype f64)\n"
    "  --dgamma-swa FILE, --dgamma-rla FILE  write the gains' gradients [Hq,Dv] (or the gain\n"
    "                     file's shape), summed over batch and rows; a gain not given is 1\n"
    "  --d-state-in FILE  write S0's gradient [B,Hkv,2Dk,Dv] (needs --state-in)\n"
    "  --d-state-out FILE the final state's gradient [B,Hkv,2Dk,Dv] (f32; default 0)\n";

static const char *const grad_opts[GRAD_N] = {"--dq", "--dk", "--dv", "--dgamma-swa",
                                              "--dgamma-rla", "--d-state-in"};

/* The backward's options complete and consistent. */
static int check_backward(const ratt_run *r)
{
    if (attn_run_grad_check(r->in[IN_DOUT].path, r->grad, grad_opts, GRAD_N,
                            r->in[IN_DSTATE].path != NULL))
        return -1;
    if (r->grad[GRAD_STATE].path && !r->in[IN_STATE].path)
        return attn_run_error("--d-state-in needs --state-in FILE");
    return 0;
}

static int ratt_parse(int argc, char **argv, ratt_run *r)
{
    static const char *const file_opts[IN_N] = {"--q",         "--k",         "--v",
                                                "--gamma-swa", "--gamma-rla", "--state-in",
                                                "--dout",      "--d-state-out"};
    for (int k = 0; k < IN_N; k++)
        r->in[k].opt = file_opts[k];
    for (int i = 1; i < argc; i++) {
        int c = attn_run_common_arg(argc, argv, &i, &r->o);
        c = c ? c : attn_args_rattention(argc, argv, &i, &r->d);
        c = c ? c : attn_arg_value(argc, argv, &i, "--state-out", &r->state_out);
        c = c ? c : attn_run_file_arg(argc, argv, &i, r->in, IN_N);
        c = c ? c : attn_run_grad_arg(argc, argv, &i, r->grad, grad_opts, GRAD_N);
        if (c <= 0)
            return c < 0 ? -1 : attn_run_unknown("rattention", argv[i]);
    }
    return check_backward(r) ? -1 : attn_run_check_inputs(r->in, &r->o);
}

/* q, k, v in the chosen layout; gammas [Hq,Dv] as [1,1,Hq,Dv]; the state as is. */
static int ratt_load(ratt_run *r)
{
    if (attn_run_load_qkv(r->in, &r->o))
        return -1;
    for (int k = IN_GAMMA_SWA; k <= IN_GAMMA_RLA; k++)
        if (r->in[k].path && attn_run_load_float(&r->in[k], 1, 4, attn_run_perm_bshd, 0))
            return -1;
    static const int states[] = {IN_STATE, IN_DSTATE}; /* [B,Hkv,2Dk,Dv] as is */
    for (int x = 0; x < 2; x++)
        if (r->in[states[x]].path &&
            attn_run_load_float(&r->in[states[x]], 4, 4, attn_run_perm_bshd, 0))
            return -1;
    const int *perm = r->o.layout == ATTN_RUN_BHSD ? attn_run_perm_bhsd : attn_run_perm_bshd;
    if (r->in[IN_DOUT].path && attn_run_load_float(&r->in[IN_DOUT], 3, 4, perm, r->o.bf16))
        return -1;
    return 0;
}

static int ratt_alloc(ratt_run *r, attn_tensor *out, attn_tensor *so)
{
    const attn_tensor *q = &r->in[IN_Q].t, *k = &r->in[IN_K].t, *v = &r->in[IN_V].t;
    int64_t *s = r->sdims;
    if (attn_run_alloc_out(&r->o, q, v, r->dims, &r->out, out))
        return -1;
    s[0] = q->shape[0];
    s[1] = k->shape[2];
    s[2] = 2 * q->shape[3];
    s[3] = v->shape[3];
    const size_t sb = attn_run_bytes(s, 4, 4);
    if (!sb)
        return attn_run_error("output size overflows");
    r->state = r->state_out ? calloc(1, sb) : NULL;
    if (r->state_out && !r->state)
        return attn_run_error("out of memory");
    *so = attn_tensor_bshd(r->state, ATTN_F32, s[0], s[1], s[2], s[3]);
    if (!r->in[IN_DOUT].path)
        return 0;
    const int f64 = r->o.out_dtype == ATTN_RUN_OUT_F64;
    const int64_t gs[4] = {1, 1, q->shape[2], v->shape[3]};
    const int64_t *shape[GRAD_N] = {q->shape, k->shape, v->shape, gs, gs, s};
    for (int g = 0; g < GRAD_N; g++)
        if ((g <= GRAD_V || r->grad[g].path) &&
            attn_run_grad_alloc(&r->grad[g], shape[g], g <= GRAD_V ? r->o.layout : 0,
                                ATTN_F32, f64))
            return -1;
    return 0;
}

static attn_rattention_io io_of(const ratt_run *r, const attn_tensor *so)
{
    const attn_run_array *in = r->in;
    attn_rattention_io io = {in[IN_GAMMA_SWA].path ? &in[IN_GAMMA_SWA].t : NULL,
                             in[IN_GAMMA_RLA].path ? &in[IN_GAMMA_RLA].t : NULL,
                             in[IN_STATE].path ? &in[IN_STATE].t : NULL, r->state ? so : NULL};
    return io;
}

static attn_rattention_grads grads_of(const ratt_run *r)
{
    const attn_run_grad *g = r->grad;
    return (attn_rattention_grads){
        .dq = &g[GRAD_Q].t, .dk = &g[GRAD_K].t, .dv = &g[GRAD_V].t,
        .dgamma_swa = g[GRAD_GSWA].buf ? &g[GRAD_GSWA].t : NULL,
        .dgamma_rla = g[GRAD_GRLA].buf ? &g[GRAD_GRLA].t : NULL,
        .d_state_in = g[GRAD_STATE].buf ? &g[GRAD_STATE].t : NULL,
        .d_state_out = r->in[IN_DSTATE].path ? &r->in[IN_DSTATE].t : NULL};
}

/* The f64 gradients from the reference's chain rule (rattention_backward.c); it needs both
 * gains' arrays, so an ungiven one goes to scratch. */
static attn_status backward_f64(ratt_run *r, const attn_rattention_io *io)
{
    const attn_rattention_grads g = grads_of(r);
    attn_rattention_problem p;
    attn_status s = attn_rattention_validate_backward(&r->d, &r->in[IN_Q].t, &r->in[IN_K].t,
                                                      &r->in[IN_V].t, io, &r->in[IN_DOUT].t,
                                                      &g, &p);
    if (s != ATTN_OK)
        return s;
    const attn_run_grad *x = r->grad;
    double *gs = x[GRAD_GSWA].f64 ? NULL : attn_ref_alloc(p.Hq, p.Dv);
    double *gr = x[GRAD_GRLA].f64 ? NULL : attn_ref_alloc(p.Hq, p.Dv);
    const attn_rattention_ref_grads ref = {
        x[GRAD_Q].f64, x[GRAD_K].f64, x[GRAD_V].f64, gs ? gs : x[GRAD_GSWA].f64,
        gr ? gr : x[GRAD_GRLA].f64, x[GRAD_STATE].f64, NULL, NULL, NULL, NULL, NULL, NULL};
    s = ref.dgamma_swa && ref.dgamma_rla ? attn_ref_rattention_backward(&p, &ref)
                                         : ATTN_ERR_OUT_OF_MEMORY;
    free(gs);
    free(gr);
    return s;
}

static int ratt_compute(ratt_run *r, const attn_tensor *out, const attn_tensor *so)
{
    const attn_rattention_io io = io_of(r, so);
    attn_rattention_io bio = io; /* the backward takes no final state */
    bio.state_out = NULL;
    const attn_tensor *q = &r->in[IN_Q].t, *k = &r->in[IN_K].t, *v = &r->in[IN_V].t;
    const int bwd = r->in[IN_DOUT].path != NULL;
    attn_status s;
    if (r->o.out_dtype != ATTN_RUN_OUT_F64) {
        s = attn_backend_open(r->o.backend, r->o.options, &r->be);
        if (s == ATTN_OK)
            s = attn_rattention_forward(r->be, &r->d, q, k, v, out, &io);
        if (s == ATTN_OK && bwd) {
            const attn_rattention_grads g = grads_of(r);
            s = attn_rattention_backward(r->be, &r->d, q, k, v, &bio, &r->in[IN_DOUT].t, &g);
        }
        return s == ATTN_OK ? 0 : attn_run_lib_error(s);
    }
    attn_rattention_problem p;
    if ((s = attn_rattention_validate(&r->d, q, k, v, out, &io, &p)) != ATTN_OK)
        return attn_run_lib_error(s);
    r->tmp64 = attn_ref_alloc(p.B * p.S * p.Hq, p.Dv);
    r->out64 = attn_ref_alloc(p.B * p.S * p.Hq, p.Dv);
    r->state64 = attn_ref_alloc(p.B * p.Hkv * p.Df, p.Dv);
    attn_rattention_ref_out o = {.out = r->tmp64, .state = r->state64};
    s = r->tmp64 && r->out64 && r->state64 ? attn_ref_rattention(&p, ATTN_REF_F64, &o)
                                           : ATTN_ERR_OUT_OF_MEMORY;
    if (s == ATTN_OK && bwd)
        s = backward_f64(r, &bio);
    if (s != ATTN_OK)
        return attn_run_lib_error(s);
    attn_run_f64_to_layout(r->tmp64, r->dims, r->o.layout, r->out64);
    return 0;
}

static int ratt_save(const ratt_run *r)
{
    const int rank3 = r->in[IN_Q].a.ndim == 3, f64 = r->o.out_dtype == ATTN_RUN_OUT_F64;
    if (attn_run_save_out(&r->o, r->dims, rank3, f64 ? (void *)r->out64 : r->out))
        return -1;
    if (r->state_out && attn_run_save(r->state_out, f64 ? ATTN_NPY_F64 : ATTN_NPY_F32, 4,
                                      r->sdims, f64 ? (void *)r->state64 : r->state))
        return -1;
    /* dq, dk, dv with their inputs' file dims; a gain's with its file's, else [Hq, Dv] */
    const int64_t hd[2] = {r->grad[GRAD_Q].t.shape[2], r->grad[GRAD_V].t.shape[3]};
    const attn_run_array *like[GRAD_N] = {&r->in[IN_Q], &r->in[IN_K], &r->in[IN_V],
                                          &r->in[IN_GAMMA_SWA], &r->in[IN_GAMMA_RLA],
                                          &r->in[IN_STATE]};
    for (int g = 0; g < GRAD_N; g++) {
        const int given = like[g]->path != NULL;
        if (r->grad[g].path &&
            attn_run_grad_save(&r->grad[g], ATTN_NPY_F32, given ? like[g]->a.ndim : 2,
                               given ? like[g]->a.shape : hd, f64))
            return -1;
    }
    return 0;
}

static void ratt_free(ratt_run *r)
{
    for (int k = 0; k < IN_N; k++)
        attn_npy_free(&r->in[k].a);
    void *bufs[] = {r->out, r->state, r->out64, r->state64, r->tmp64};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        free(bufs[k]);
    for (int g = 0; g < GRAD_N; g++)
        attn_run_grad_free(&r->grad[g]);
    attn_backend_close(r->be);
}

int attn_rattention_cmd_run(int argc, char **argv)
{
    ratt_run r;
    memset(&r, 0, sizeof r);
    r.o.backend = "ref";
    r.d = attn_rattention_desc_default();
    attn_tensor out, so;
    int rc = 2;
    if (ratt_parse(argc, argv, &r) == 0 && ratt_load(&r) == 0 && ratt_alloc(&r, &out, &so) == 0) {
        rc = ratt_compute(&r, &out, &so);
        if (rc == 0 && ratt_save(&r))
            rc = 2;
    }
    ratt_free(&r);
    return rc;
}
