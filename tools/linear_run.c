/* linear_run.c - `attn run --variant linear`: kernel linear attention on .npy files (q, k, v,
 * an optional initial state) with options named like the descriptor's fields, on any backend;
 * with --dout also the backward (the gradients of q, k, v and the initial state); the f64
 * ground truth with --backend ref --out-dtype f64. The chunk length is a backend option
 * (--options chunk=N on cpu and opencl). */
#include "attn_args.h"
#include "attn_run.h"
#include "linear_ref.h"
#include "linear_tool.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DECAY_VALUES 1024

const char attn_args_linear_help[] =
    "  --feature F        identity, elu, elu1 (default, elu+1), relu, silu, softmax_pair,\n"
    "                     relu_pair (the pairs give 2*Dk features)\n"
    "  --normalize 0|1    divide by phi(q).z + eps (default 1)\n"
    "  --eps X            the normaliser's eps (default 1e-6)\n"
    "  --causal 0|1       causal (default 1) or every query sees every key\n"
    "  --scale X          multiplies phi(q) (default 1)\n"
    "  --decay D          none (default), slopes (Lightning Attention's per-head slopes) or a\n"
    "                     comma list of Hkv values in (0, 1]\n";

static const char *const feature_names[] = {"identity", "elu", "elu1", "relu", "silu",
                                            "softmax_pair", "relu_pair", NULL};

/* --decay none|slopes|x,y,... */
static int set_decay(const char *val, attn_linear_desc *d, float *values, int room, int *n)
{
    d->decay = ATTN_LINEAR_DECAY_NONE;
    d->decay_values = NULL;
    if (strcmp(val, "none") == 0)
        return 0;
    if (strcmp(val, "slopes") == 0) {
        d->decay = ATTN_LINEAR_DECAY_SLOPES;
        return 0;
    }
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", val);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        double x;
        if (*n == room || attn_parse_f64("--decay", t, FLT_MIN, 1.0, &x))
            return -1;
        values[(*n)++] = (float)x;
    }
    d->decay = ATTN_LINEAR_DECAY_GIVEN;
    d->decay_values = values;
    return 0;
}

int attn_args_linear(int argc, char **argv, int *i, attn_linear_desc *d, float *decay_values,
                     int room, int *n_decay)
{
    const char *val;
    int r, f;
    double x;
    if ((r = attn_arg_value(argc, argv, i, "--feature", &val)) != 0) {
        if (r < 0 || attn_parse_choice("--feature", val, feature_names, &f))
            return -1;
        d->feature = (attn_linear_feature)f;
        return 1;
    }
    const char *const flags[] = {"--normalize", "--causal"};
    int *const flag_dst[] = {&d->normalize, &d->causal};
    for (int k = 0; k < 2; k++)
        if ((r = attn_arg_value(argc, argv, i, flags[k], &val)) != 0) {
            int64_t b;
            if (r < 0 || attn_parse_i64(flags[k], val, 0, 1, &b))
                return -1;
            *flag_dst[k] = (int)b;
            return 1;
        }
    if ((r = attn_arg_value(argc, argv, i, "--eps", &val)) != 0) {
        if (r < 0 || attn_parse_f64("--eps", val, 0.0, FLT_MAX, &x))
            return -1;
        d->eps = (float)x;
        return 1;
    }
    if ((r = attn_arg_value(argc, argv, i, "--scale", &val)) != 0) {
        if (r < 0 || attn_parse_f64("--scale", val, -FLT_MAX, FLT_MAX, &x))
            return -1;
        d->scale = (float)x;
        return 1;
    }
    if ((r = attn_arg_value(argc, argv, i, "--decay", &val)) != 0)
        return r < 0 || set_decay(val, d, decay_values, room, n_decay) ? -1 : 1;
    return 0;
}

/* ---- the run -------------------------------------------------------------------------------- */

enum { IN_Q, IN_K, IN_V, IN_STATE, IN_Z, IN_DOUT, IN_DSTATE, IN_DZ, IN_N };

/* The gradients --dout writes: dq, dk, dv like q, k, v; d_state_in, d_z_in like the state. */
enum { GRAD_Q, GRAD_K, GRAD_V, GRAD_STATE, GRAD_Z, GRAD_N };

typedef struct linear_run {
    attn_run_opts o;
    attn_linear_desc d;
    float decay[MAX_DECAY_VALUES];
    int n_decay;
    attn_run_array in[IN_N];
    const char *state_out, *z_out;
    int64_t dims[4], sdims[4]; /* out [B, S, Hq, Dv]; state [B, Hkv, Df, Dv] */
    void *out;
    float *state, *z;
    double *out64, *state64, *z64, *tmp64;
    attn_run_grad grad[GRAD_N];
    attn_backend *be;
} linear_run;

const char attn_linear_run_help[] =
    "usage: attn run --variant linear --q Q.npy --k K.npy --v V.npy --out O.npy [options]\n"
    "kernel linear attention: out_i = phi(q_i) S_i [/ (phi(q_i).z_i + eps)], S the running\n"
    "sum of phi(k_j)^T v_j (docs/ops/linear.md); chunk length: --options chunk=N (cpu, opencl)\n"
    "  --q, --k, --v FILE query [B,S,Hq,Dk], key [B,S,Hkv,Dk], value [B,S,Hkv,Dv]\n"
    "  --state-in FILE    initial state [B,Hkv,Df,Dv] (f32)\n"
    "  --z-in FILE        initial normaliser sum [B,Hkv,Df] (f32; with --normalize 1)\n"
    "  --state-out FILE   write the final state [B,Hkv,Df,Dv] (f32; f64 with --out-dtype f64)\n"
    "  --z-out FILE       write the final normaliser sum [B,Hkv,Df]\n"
    "backward (after the forward, on the same backend):\n"
    "  --dout FILE        the output's gradient, out's shape; needs --dq, --dk, --dv\n"
    "  --dq, --dk, --dv FILE  write the gradients of q, k, v (their files' shapes; f32, f64\n"
    "                     with --out-dtype f64)\n"
    "  --d-state-in FILE  write the initial state's gradient (needs --state-in)\n"
    "  --d-z-in FILE      write the initial normaliser sum's gradient (needs --z-in)\n"
    "  --d-state-out FILE the final state's gradient [B,Hkv,Df,Dv] (f32; default 0)\n"
    "  --d-z-out FILE     the final normaliser sum's gradient [B,Hkv,Df] (default 0)\n";

static const char *const grad_opts[GRAD_N] = {"--dq", "--dk", "--dv", "--d-state-in",
                                              "--d-z-in"};

/* The backward's options complete and consistent. */
static int check_backward(const linear_run *r)
{
    const int extra = r->in[IN_DSTATE].path || r->in[IN_DZ].path;
    if (attn_run_grad_check(r->in[IN_DOUT].path, r->grad, grad_opts, GRAD_N, extra))
        return -1;
    if (r->grad[GRAD_STATE].path && !r->in[IN_STATE].path)
        return attn_run_error("--d-state-in needs --state-in FILE");
    if (r->grad[GRAD_Z].path && !r->in[IN_Z].path)
        return attn_run_error("--d-z-in needs --z-in FILE");
    return 0;
}

static int linear_parse(int argc, char **argv, linear_run *r)
{
    static const char *const file_opts[IN_N] = {"--q",    "--k",           "--v",
                                                "--state-in", "--z-in",   "--dout",
                                                "--d-state-out", "--d-z-out"};
    for (int k = 0; k < IN_N; k++)
        r->in[k].opt = file_opts[k];
    for (int i = 1; i < argc; i++) {
        int c = attn_run_common_arg(argc, argv, &i, &r->o);
        c = c ? c : attn_args_linear(argc, argv, &i, &r->d, r->decay, MAX_DECAY_VALUES,
                                     &r->n_decay);
        c = c ? c : attn_arg_value(argc, argv, &i, "--state-out", &r->state_out);
        c = c ? c : attn_arg_value(argc, argv, &i, "--z-out", &r->z_out);
        c = c ? c : attn_run_file_arg(argc, argv, &i, r->in, IN_N);
        c = c ? c : attn_run_grad_arg(argc, argv, &i, r->grad, grad_opts, GRAD_N);
        if (c <= 0)
            return c < 0 ? -1 : attn_run_unknown("linear", argv[i]);
    }
    return check_backward(r) ? -1 : attn_run_check_inputs(r->in, &r->o);
}

/* q, k, v in the chosen layout; the state [B,Hkv,Df,Dv] as is; z [B,Hkv,Df] as [B,Hkv,Df,1]. */
static int linear_load(linear_run *r)
{
    static const int perm_z[4] = {1, 2, 3, 0};
    if (attn_run_load_qkv(r->in, &r->o))
        return -1;
    if (r->in[IN_STATE].path && attn_run_load_float(&r->in[IN_STATE], 4, 4, attn_run_perm_bshd, 0))
        return -1;
    if (r->in[IN_Z].path && attn_run_load_float(&r->in[IN_Z], 3, 3, perm_z, 0))
        return -1;
    const int *perm = r->o.layout == ATTN_RUN_BHSD ? attn_run_perm_bhsd : attn_run_perm_bshd;
    if (r->in[IN_DOUT].path && attn_run_load_float(&r->in[IN_DOUT], 3, 4, perm, r->o.bf16))
        return -1;
    if (r->in[IN_DSTATE].path &&
        attn_run_load_float(&r->in[IN_DSTATE], 4, 4, attn_run_perm_bshd, 0))
        return -1;
    if (r->in[IN_DZ].path && attn_run_load_float(&r->in[IN_DZ], 3, 3, perm_z, 0))
        return -1;
    return 0;
}

static int linear_alloc(linear_run *r, attn_tensor *out, attn_tensor *so, attn_tensor *zo)
{
    const attn_tensor *q = &r->in[IN_Q].t, *k = &r->in[IN_K].t, *v = &r->in[IN_V].t;
    int64_t *s = r->sdims;
    if (attn_run_alloc_out(&r->o, q, v, r->dims, &r->out, out))
        return -1;
    s[0] = q->shape[0];
    s[1] = k->shape[2];
    s[2] = attn_linear_features(r->d.feature, q->shape[3]);
    s[3] = v->shape[3];
    const size_t sb = attn_run_bytes(s, 4, 4), zb = attn_run_bytes(s, 3, 4);
    if (!sb || !zb)
        return attn_run_error("output size overflows");
    r->state = r->state_out ? calloc(1, sb) : NULL;
    r->z = r->z_out ? calloc(1, zb) : NULL;
    if ((r->state_out && !r->state) || (r->z_out && !r->z))
        return attn_run_error("out of memory");
    *so = attn_tensor_bshd(r->state, ATTN_F32, s[0], s[1], s[2], s[3]);
    *zo = attn_tensor_bshd(r->z, ATTN_F32, s[0], s[1], s[2], 1);
    if (!r->in[IN_DOUT].path)
        return 0;
    const int f64 = r->o.out_dtype == ATTN_RUN_OUT_F64;
    const int64_t zs[4] = {s[0], s[1], s[2], 1};
    const int64_t *shape[GRAD_N] = {q->shape, k->shape, v->shape, s, zs};
    for (int g = 0; g < GRAD_N; g++)
        if ((g <= GRAD_V || r->grad[g].path) &&
            attn_run_grad_alloc(&r->grad[g], shape[g], g <= GRAD_V ? r->o.layout : 0,
                                ATTN_F32, f64))
            return -1;
    return 0;
}

static attn_linear_state state_views(const linear_run *r, const attn_tensor *so,
                                     const attn_tensor *zo)
{
    attn_linear_state st = {r->in[IN_STATE].path ? &r->in[IN_STATE].t : NULL,
                            r->in[IN_Z].path ? &r->in[IN_Z].t : NULL, r->state ? so : NULL,
                            r->z ? zo : NULL};
    return st;
}

/* The backward's tensors: the forward's inputs, dout and the final state's gradients in. */
static attn_linear_grads grads_of(const linear_run *r)
{
    const attn_run_grad *g = r->grad;
    return (attn_linear_grads){
        .dq = &g[GRAD_Q].t, .dk = &g[GRAD_K].t, .dv = &g[GRAD_V].t,
        .d_state_in = g[GRAD_STATE].buf ? &g[GRAD_STATE].t : NULL,
        .d_z_in = g[GRAD_Z].buf ? &g[GRAD_Z].t : NULL,
        .d_state_out = r->in[IN_DSTATE].path ? &r->in[IN_DSTATE].t : NULL,
        .d_z_out = r->in[IN_DZ].path ? &r->in[IN_DZ].t : NULL};
}

/* The f64 gradients from the reference's chain rule (linear_backward.c). */
static attn_status backward_f64(linear_run *r)
{
    const attn_linear_state st = state_views(r, NULL, NULL);
    const attn_linear_grads g = grads_of(r);
    attn_linear_problem p;
    attn_status s = attn_linear_validate_backward(&r->d, &r->in[IN_Q].t, &r->in[IN_K].t,
                                                  &r->in[IN_V].t, &st, &r->in[IN_DOUT].t, &g,
                                                  &p);
    if (s != ATTN_OK)
        return s;
    const attn_run_grad *x = r->grad;
    const attn_linear_ref_grads ref = {x[GRAD_Q].f64, x[GRAD_K].f64, x[GRAD_V].f64,
                                       x[GRAD_STATE].f64, x[GRAD_Z].f64, NULL, NULL, NULL,
                                       NULL, NULL};
    s = attn_ref_linear_backward(&p, ATTN_REF_F64, &ref);
    attn_linear_problem_release(&p);
    return s;
}

static int linear_compute(linear_run *r, const attn_tensor *out, const attn_tensor *so,
                          const attn_tensor *zo)
{
    const attn_linear_state st = state_views(r, so, zo);
    const int bwd = r->in[IN_DOUT].path != NULL;
    if (r->o.out_dtype != ATTN_RUN_OUT_F64) {
        attn_status s = attn_backend_open(r->o.backend, r->o.options, &r->be);
        if (s == ATTN_OK)
            s = attn_linear_forward(r->be, &r->d, &r->in[IN_Q].t, &r->in[IN_K].t,
                                    &r->in[IN_V].t, out, &st);
        if (s == ATTN_OK && bwd) { /* the backward takes no final state */
            const attn_linear_state bst = state_views(r, NULL, NULL);
            const attn_linear_grads g = grads_of(r);
            s = attn_linear_backward(r->be, &r->d, &r->in[IN_Q].t, &r->in[IN_K].t,
                                     &r->in[IN_V].t, &bst, &r->in[IN_DOUT].t, &g);
        }
        return s == ATTN_OK ? 0 : attn_run_lib_error(s);
    }
    attn_linear_problem p;
    attn_status s = attn_linear_validate(&r->d, &r->in[IN_Q].t, &r->in[IN_K].t, &r->in[IN_V].t,
                                         out, &st, &p);
    if (s != ATTN_OK)
        return attn_run_lib_error(s);
    r->tmp64 = attn_ref_alloc(p.B * p.S * p.Hq, p.Dv);
    r->out64 = attn_ref_alloc(p.B * p.S * p.Hq, p.Dv);
    r->state64 = attn_ref_alloc(p.B * p.Hkv * p.Df, p.Dv);
    r->z64 = attn_ref_alloc(p.B * p.Hkv, p.Df);
    attn_linear_ref_out o = {r->tmp64, r->state64, r->z64, NULL, NULL, NULL};
    s = r->tmp64 && r->out64 && r->state64 && r->z64 ? attn_ref_linear(&p, &o)
                                                     : ATTN_ERR_OUT_OF_MEMORY;
    attn_linear_problem_release(&p);
    if (s == ATTN_OK && bwd)
        s = backward_f64(r);
    if (s != ATTN_OK)
        return attn_run_lib_error(s);
    attn_run_f64_to_layout(r->tmp64, r->dims, r->o.layout, r->out64);
    return 0;
}

static int linear_save(const linear_run *r)
{
    const int rank3 = r->in[IN_Q].a.ndim == 3, f64 = r->o.out_dtype == ATTN_RUN_OUT_F64;
    const attn_npy_dtype st = f64 ? ATTN_NPY_F64 : ATTN_NPY_F32;
    if (attn_run_save_out(&r->o, r->dims, rank3, f64 ? (void *)r->out64 : r->out))
        return -1;
    if (r->state_out && attn_run_save(r->state_out, st, 4, r->sdims,
                                      f64 ? (void *)r->state64 : r->state))
        return -1;
    if (r->z_out && attn_run_save(r->z_out, st, 3, r->sdims, f64 ? (void *)r->z64 : r->z))
        return -1;
    /* dq, dk, dv with their inputs' file dims; the state gradients as the state files */
    const attn_run_array *like[GRAD_N] = {&r->in[IN_Q], &r->in[IN_K], &r->in[IN_V],
                                          &r->in[IN_STATE], &r->in[IN_Z]};
    for (int g = 0; g < GRAD_N; g++)
        if (r->grad[g].path &&
            attn_run_grad_save(&r->grad[g], ATTN_NPY_F32, like[g]->a.ndim, like[g]->a.shape,
                               f64))
            return -1;
    return 0;
}

static void linear_free(linear_run *r)
{
    for (int k = 0; k < IN_N; k++)
        attn_npy_free(&r->in[k].a);
    void *bufs[] = {r->out, r->state, r->z, r->out64, r->state64, r->z64, r->tmp64};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        free(bufs[k]);
    for (int g = 0; g < GRAD_N; g++)
        attn_run_grad_free(&r->grad[g]);
    attn_backend_close(r->be);
}

int attn_linear_cmd_run(int argc, char **argv)
{
    linear_run r;
    memset(&r, 0, sizeof r);
    r.o.backend = "ref";
    r.d = attn_linear_desc_default();
    attn_tensor out, so, zo;
    int rc = 2;
    if (linear_parse(argc, argv, &r) == 0 && linear_load(&r) == 0 &&
        linear_alloc(&r, &out, &so, &zo) == 0) {
        rc = linear_compute(&r, &out, &so, &zo);
        if (rc == 0 && linear_save(&r))
            rc = 2;
    }
    linear_free(&r);
    return rc;
}
