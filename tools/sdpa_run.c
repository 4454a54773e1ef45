/* sdpa_run.c - `attn run --variant sdpa`: softmax attention on .npy files (q, k, v, masks)
 * with the descriptor options of sdpa_args.c, on any backend; with --key-score also the
 * attention each key receives (attn_sdpa_forward_ex); with --dout also the backward
 * (the gradients of q, k, v and the additive mask, from the backend's own out and lse); the
 * f64 ground truth with --backend ref --out-dtype f64. */
#include "attn_args.h"
#include "attn_run.h"
#include "sdpa_ref.h"
#include "sdpa_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- sdpa ----------------------------------------------------------------------------------- */

enum { SDPA_Q, SDPA_K, SDPA_V, SDPA_MASK, SDPA_BMASK, SDPA_DOUT, SDPA_N };

/* The gradients of the backward: dq, dk, dv like q, k, v; dmask_add like the additive mask. */
enum { GRAD_Q, GRAD_K, GRAD_V, GRAD_MASK, GRAD_N };

typedef struct sdpa_run {
    attn_run_opts o;
    attn_sdpa_desc d;
    attn_run_array in[SDPA_N];
    const char *lse_path, *ks_path;
    int64_t dims[4];    /* output [B, Sq, Hq, Dv] */
    int64_t ks_dims[4]; /* key_score [B, Skv, Hkv, 1] */
    void *out, *lse;
    float *ks;
    double *out64, *lse64, *tmp64, *ks64;
    attn_backend *be;
    /* backward (--dout): the gradient files and their dtype (ATTN_RUN_OUT_*) */
    int grad_dtype;
    attn_run_grad grad[GRAD_N];
} sdpa_run;

const char attn_sdpa_run_help[] =
    "usage: attn run --variant sdpa --q Q.npy --k K.npy --v V.npy --out O.npy [options]\n"
    "softmax attention: out = softmax(scale * q k^T [+ mask]) v\n"
    "  --q, --k, --v FILE query [B,Sq,Hq,Dk], key [B,Skv,Hkv,Dk], value [B,Skv,Hkv,Dv]\n"
    "  --mask FILE        additive mask [Sq,Skv] or [B|1,Hq|1,Sq|1,Skv] (PyTorch attn_mask)\n"
    "  --bool-mask FILE   boolean mask, same shapes, true/nonzero = visible\n"
    "  --lse FILE         also write the log-sum-exp [B,Hq,Sq] (f32; f64 with --out-dtype f64)\n"
    "  --key-score FILE   also write key_score [B,Skv,Hkv] ([B,Hkv,Skv] with --layout bhsd; f32,\n"
    "                     f64 with --out-dtype f64): the probability each key receives, summed\n"
    "                     over the queries and the query heads of its KV head\n"
    "backward (gradients of out, from the backend's own out and lse):\n"
    "  --dout FILE        the output's gradient, out's shape; needs --dq, --dk, --dv\n"
    "  --dq, --dk, --dv FILE  write the gradients of q, k, v (their files' shapes)\n"
    "  --dmask-add FILE   also write the additive mask's gradient (--mask's shape, summed\n"
    "                     over its broadcast dims; always f32, f64 with --out-dtype f64)\n"
    "  --grad-dtype T     f32 (default), f16 or bf16 (written as uint16) for dq, dk, dv;\n"
    "                     f64 with --out-dtype f64\n";

static const char *const grad_opts[GRAD_N] = {"--dq", "--dk", "--dv", "--dmask-add"};

/* --grad-dtype: 1 consumed, 0 another option, -1 error (printed). */
static int grad_dtype_arg(int argc, char **argv, int *i, int *dt)
{
    static const char *const names[] = {"f32", "f16", "bf16", NULL};
    const char *val;
    const int c = attn_arg_value(argc, argv, i, "--grad-dtype", &val);
    return c > 0 && attn_parse_choice("--grad-dtype", val, names, dt) ? -1 : c;
}

/* The backward's options complete and consistent. */
static int check_backward(const sdpa_run *r)
{
    if (attn_run_grad_check(r->in[SDPA_DOUT].path, r->grad, grad_opts, GRAD_N, 0))
        return -1;
    if (r->grad[GRAD_MASK].path && !r->in[SDPA_MASK].path)
        return attn_run_error("--dmask-add needs --mask FILE");
    return 0;
}

static int sdpa_parse(int argc, char **argv, sdpa_run *r)
{
    static const char *const file_opts[SDPA_N] = {"--q", "--k", "--v", "--mask", "--bool-mask",
                                                  "--dout"};
    for (int k = 0; k < SDPA_N; k++)
        r->in[k].opt = file_opts[k];
    for (int i = 1; i < argc; i++) {
        int c = attn_run_common_arg(argc, argv, &i, &r->o);
        if (c == 0)
            c = attn_args_sdpa(argc, argv, &i, &r->d);
        if (c == 0)
            c = attn_arg_value(argc, argv, &i, "--lse", &r->lse_path);
        if (c == 0)
            c = attn_arg_value(argc, argv, &i, "--key-score", &r->ks_path);
        if (c == 0)
            c = grad_dtype_arg(argc, argv, &i, &r->grad_dtype);
        for (int k = 0; k < SDPA_N && c == 0; k++)
            c = attn_arg_value(argc, argv, &i, file_opts[k], &r->in[k].path);
        c = c ? c : attn_run_grad_arg(argc, argv, &i, r->grad, grad_opts, GRAD_N);
        if (c < 0)
            return -1;
        if (c == 0)
            return attn_run_error("unknown option '%s' (see attn run --variant sdpa --help)", argv[i]);
    }
    for (int k = 0; k <= SDPA_V; k++)
        if (!r->in[k].path)
            return attn_run_error("%s FILE is required", file_opts[k]);
    if (check_backward(r))
        return -1;
    return attn_run_check_out(&r->o);
}

static int sdpa_load(sdpa_run *r)
{
    const int *perm = r->o.layout == ATTN_RUN_BHSD ? attn_run_perm_bhsd : attn_run_perm_bshd;
    for (int k = 0; k <= SDPA_V; k++)
        if (attn_run_load_float(&r->in[k], 3, 4, perm, r->o.bf16))
            return -1;
    if (r->in[SDPA_MASK].path) {
        if (attn_run_load_float(&r->in[SDPA_MASK], 1, 4, attn_run_perm_bhsd, r->o.bf16))
            return -1;
        r->d.mask_add = &r->in[SDPA_MASK].t;
    }
    if (r->in[SDPA_BMASK].path) {
        if (attn_run_load_bool(&r->in[SDPA_BMASK]))
            return -1;
        r->d.mask_bool = &r->in[SDPA_BMASK].t;
    }
    if (r->in[SDPA_DOUT].path && attn_run_load_float(&r->in[SDPA_DOUT], 3, 4, perm, r->o.bf16))
        return -1;
    return 0;
}

/* Output and LSE buffers and their views: out in q's layout, LSE as [B, Hq, Sq]. With
 * --out-dtype f64 these f32 views only take part in validation; the reference fills f64 ones. */
/* key_score [B, Skv, Hkv, 1] f32, its buffer in the file's order: [B, Skv, Hkv] or, with
 * --layout bhsd, [B, Hkv, Skv]. */
static int ks_alloc(sdpa_run *r, attn_tensor *ks)
{
    const attn_tensor *k = &r->in[SDPA_K].t;
    int64_t *d = r->ks_dims;
    for (int x = 0; x < 3; x++)
        d[x] = k->shape[x];
    d[3] = 1;
    const size_t n = attn_run_bytes(d, 4, sizeof(float));
    if (!n || !(r->ks = calloc(1, n)))
        return attn_run_error(n ? "out of memory" : "key_score size overflows");
    *ks = r->o.layout == ATTN_RUN_BHSD ? attn_tensor_bhsd(r->ks, ATTN_F32, d[0], d[1], d[2], 1)
                                       : attn_tensor_bshd(r->ks, ATTN_F32, d[0], d[1], d[2], 1);
    return 0;
}

static int sdpa_alloc(sdpa_run *r, attn_tensor *out, attn_tensor *lse)
{
    const attn_tensor *q = &r->in[SDPA_Q].t;
    int64_t *d = r->dims;
    for (int k = 0; k < 3; k++)
        d[k] = q->shape[k];
    d[3] = r->in[SDPA_V].t.shape[3];
    attn_dtype t = attn_run_out_lib_dtype[r->o.out_dtype];
    size_t ob = attn_run_bytes(d, 4, attn_dtype_size(t)), lb = attn_run_bytes(d, 3, 4);
    if (!ob || !lb)
        return attn_run_error("output size overflows");
    r->out = calloc(1, ob);
    const int want_lse = r->lse_path || r->in[SDPA_DOUT].path; /* the backward reads it */
    r->lse = want_lse ? calloc(1, lb) : NULL;
    if (!r->out || (want_lse && !r->lse))
        return attn_run_error("out of memory");
    *out = r->o.layout == ATTN_RUN_BHSD ? attn_tensor_bhsd(r->out, t, d[0], d[1], d[2], d[3])
                                      : attn_tensor_bshd(r->out, t, d[0], d[1], d[2], d[3]);
    *lse = (attn_tensor){.data = r->lse, .dtype = ATTN_F32, .shape = {d[0], d[1], d[2], 1},
                         .stride = {d[1] * d[2], 1, d[1], 1}};
    return 0;
}

/* Gradient buffers and views: dq, dk, dv in the layout of q, k, v with the --grad-dtype (f32
 * with --out-dtype f64: then they only take part in validation); dmask_add f32 with the mask
 * view's shape and strides, so its bytes are in the mask file's order. */
static int grad_alloc(sdpa_run *r)
{
    static const int like[GRAD_N] = {SDPA_Q, SDPA_K, SDPA_V, SDPA_MASK};
    const int f64 = r->o.out_dtype == ATTN_RUN_OUT_F64;
    for (int g = 0; g < GRAD_N; g++) {
        if (!r->grad[g].path)
            continue;
        const attn_tensor *x = &r->in[like[g]].t;
        const attn_dtype dt = g == GRAD_MASK ? ATTN_F32 : attn_run_out_lib_dtype[r->grad_dtype];
        if (attn_run_grad_alloc(&r->grad[g], x->shape, r->o.layout, dt, f64))
            return -1;
        if (g == GRAD_MASK)
            memcpy(r->grad[g].t.stride, x->stride, sizeof x->stride);
    }
    return 0;
}

static attn_sdpa_grads grads_of(const sdpa_run *r)
{
    return (attn_sdpa_grads){.dq = &r->grad[GRAD_Q].t, .dk = &r->grad[GRAD_K].t,
                             .dv = &r->grad[GRAD_V].t,
                             .dmask_add = r->grad[GRAD_MASK].buf ? &r->grad[GRAD_MASK].t : NULL};
}

/* The shared exit code (attn_run_lib_error), with a hint on shape errors. */
static int lib_error(attn_status s)
{
    const int rc = attn_run_lib_error(s);
    if (s == ATTN_ERR_SHAPE)
        fprintf(stderr, "attn run: (library views are [batch, seq, heads, dim], masks [batch, "
                        "query, head, key]; see --help for how file dims map to them)\n");
    return rc;
}

/* The f64 gradients from the reference's chain rule (sdpa_backward.c), dense in the f64 arrays
 * of the gradient files. */
static int sdpa_backward_f64(sdpa_run *r, const attn_tensor *out, const attn_tensor *lse)
{
    const attn_sdpa_grads grads = grads_of(r);
    attn_sdpa_problem p;
    attn_status s = attn_sdpa_validate_backward(&r->d, &r->in[SDPA_Q].t, &r->in[SDPA_K].t,
                                                &r->in[SDPA_V].t, out, lse,
                                                &r->in[SDPA_DOUT].t, &grads, &p);
    if (s != ATTN_OK)
        return lib_error(s);
    const attn_run_grad *x = r->grad;
    const attn_ref_sdpa_grads ref = {x[GRAD_Q].f64, x[GRAD_K].f64, x[GRAD_V].f64,
                                     x[GRAD_MASK].f64, NULL, NULL, NULL, NULL};
    s = attn_ref_sdpa_backward(&p, ATTN_REF_F64, &ref);
    if (s == ATTN_ERR_OUT_OF_MEMORY) {
        attn_run_error("out of memory");
        return 2;
    }
    return s == ATTN_OK ? 0 : lib_error(s);
}

/* The outputs of the forward call: out, and lse and key_score when asked for. */
static attn_sdpa_outputs outputs_of(const sdpa_run *r, const attn_tensor *out,
                                    const attn_tensor *lse, const attn_tensor *ks)
{
    return (attn_sdpa_outputs){
        .out = out, .lse = r->lse ? lse : NULL, .key_score = r->ks ? ks : NULL};
}

/* The reference's f64 key_score, in the file's order (ks_alloc). */
static int sdpa_key_score_f64(sdpa_run *r, const attn_sdpa_problem *p)
{
    const size_t n = attn_run_bytes(r->ks_dims, 4, sizeof(double));
    double *tmp = malloc(n);
    r->ks64 = malloc(n);
    attn_status s = tmp && r->ks64 ? attn_ref_sdpa_key_score(p, ATTN_REF_F64, NULL, tmp)
                                   : ATTN_ERR_OUT_OF_MEMORY;
    if (s == ATTN_OK)
        attn_run_f64_to_layout(tmp, r->ks_dims, r->o.layout, r->ks64);
    free(tmp);
    if (s == ATTN_ERR_OUT_OF_MEMORY) {
        attn_run_error("out of memory");
        return 1;
    }
    return s == ATTN_OK ? 0 : lib_error(s);
}

/* The f64 ground truth straight from the reference, without rounding to a storage dtype. */
static int sdpa_compute_f64(sdpa_run *r, const attn_tensor *out, const attn_tensor *lse,
                            const attn_tensor *ks)
{
    attn_sdpa_problem p;
    const attn_sdpa_outputs outs = outputs_of(r, out, lse, ks);
    attn_status s = attn_sdpa_validate_ex(&r->d, &r->in[SDPA_Q].t, &r->in[SDPA_K].t,
                                          &r->in[SDPA_V].t, &outs, &p);
    if (s != ATTN_OK)
        return lib_error(s);
    size_t n = attn_run_bytes(r->dims, 4, sizeof(double)), nl = attn_run_bytes(r->dims, 3, 8);
    r->out64 = malloc(n);
    r->tmp64 = malloc(n);
    r->lse64 = r->lse ? malloc(nl) : NULL;
    if (!r->out64 || !r->tmp64 || (r->lse && !r->lse64)) {
        fprintf(stderr, "attn run: out of memory\n");
        return 1;
    }
    s = attn_ref_sdpa(&p, ATTN_REF_F64, r->tmp64, r->lse64, NULL);
    if (s != ATTN_OK)
        return lib_error(s);
    attn_run_f64_to_layout(r->tmp64, r->dims, r->o.layout, r->out64);
    const int rc = r->ks ? sdpa_key_score_f64(r, &p) : 0;
    return rc == 0 && r->in[SDPA_DOUT].path ? sdpa_backward_f64(r, out, lse) : rc;
}

static int sdpa_compute(sdpa_run *r, const attn_tensor *out, const attn_tensor *lse,
                        const attn_tensor *ks)
{
    const attn_sdpa_outputs outs = outputs_of(r, out, lse, ks);
    attn_status s = attn_backend_open(r->o.backend, r->o.options, &r->be);
    if (s == ATTN_OK)
        s = attn_sdpa_forward_ex(r->be, &r->d, &r->in[SDPA_Q].t, &r->in[SDPA_K].t,
                                 &r->in[SDPA_V].t, &outs);
    if (s == ATTN_OK && r->in[SDPA_DOUT].path) { /* from the backend's own out and lse */
        const attn_sdpa_grads g = grads_of(r);
        s = attn_sdpa_backward(r->be, &r->d, &r->in[SDPA_Q].t, &r->in[SDPA_K].t,
                               &r->in[SDPA_V].t, out, lse, &r->in[SDPA_DOUT].t, &g);
    }
    return s == ATTN_OK ? 0 : lib_error(s);
}

/* Out in q's layout and rank; LSE [B, Hq, Sq]; key_score [B, Skv, Hkv] or [B, Hkv, Skv] (B
 * dropped when q was 3-D). */
static int sdpa_save(const sdpa_run *r)
{
    const int64_t *d = r->dims;
    int rank3 = r->in[SDPA_Q].a.ndim == 3;
    int64_t oshape[4] = {d[0], d[1], d[2], d[3]}, lshape[3] = {d[0], d[2], d[1]};
    if (r->o.layout == ATTN_RUN_BHSD) {
        oshape[1] = d[2];
        oshape[2] = d[1];
    }
    int f64 = r->o.out_dtype == ATTN_RUN_OUT_F64;
    if (attn_run_save(r->o.out, attn_run_out_file_dtype[r->o.out_dtype], 4 - rank3, oshape + rank3,
             f64 ? (void *)r->out64 : r->out))
        return -1;
    if (r->lse_path && attn_run_save(r->lse_path, f64 ? ATTN_NPY_F64 : ATTN_NPY_F32, 3 - rank3,
                            lshape + rank3, f64 ? (void *)r->lse64 : r->lse))
        return -1;
    const int bhsd = r->o.layout == ATTN_RUN_BHSD;
    const int64_t *kd = r->ks_dims;
    const int64_t kshape[3] = {kd[0], bhsd ? kd[2] : kd[1], bhsd ? kd[1] : kd[2]};
    if (r->ks_path && attn_run_save(r->ks_path, f64 ? ATTN_NPY_F64 : ATTN_NPY_F32, 3 - rank3,
                                    kshape + rank3, f64 ? (void *)r->ks64 : r->ks))
        return -1;
    /* each gradient has the shape of its input's file (the same layout) */
    static const int like[GRAD_N] = {SDPA_Q, SDPA_K, SDPA_V, SDPA_MASK};
    for (int g = 0; g < GRAD_N; g++) {
        const attn_npy *a = &r->in[like[g]].a;
        const attn_npy_dtype t = f64               ? ATTN_NPY_F64
                                 : g == GRAD_MASK ? ATTN_NPY_F32
                                                  : attn_run_out_file_dtype[r->grad_dtype];
        if (r->grad[g].path && attn_run_grad_save(&r->grad[g], t, a->ndim, a->shape, f64))
            return -1;
    }
    return 0;
}

static void sdpa_free(sdpa_run *r)
{
    for (int k = 0; k < SDPA_N; k++)
        attn_npy_free(&r->in[k].a);
    free(r->out);
    free(r->lse);
    free(r->out64);
    free(r->lse64);
    free(r->tmp64);
    free(r->ks);
    free(r->ks64);
    for (int g = 0; g < GRAD_N; g++)
        attn_run_grad_free(&r->grad[g]);
    attn_backend_close(r->be);
}

int attn_sdpa_cmd_run(int argc, char **argv)
{
    sdpa_run r;
    memset(&r, 0, sizeof r);
    r.o.backend = "ref";
    r.d = attn_sdpa_desc_default();
    attn_tensor out, lse, ks;
    int rc = 2;
    if (sdpa_parse(argc, argv, &r) == 0 && sdpa_load(&r) == 0 && sdpa_alloc(&r, &out, &lse) == 0 &&
        (!r.ks_path || ks_alloc(&r, &ks) == 0) && grad_alloc(&r) == 0) {
        rc = r.o.out_dtype == ATTN_RUN_OUT_F64 ? sdpa_compute_f64(&r, &out, &lse, &ks)
                                      : sdpa_compute(&r, &out, &lse, &ks);
        if (rc == 0 && sdpa_save(&r))
            rc = 2;
    }
    sdpa_free(&r);
    return rc;
}
