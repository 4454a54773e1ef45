/* attn_run.c - the shared part of `attn run` (attn_run.h): common options, .npy files as
 * tensor views through strides only (no copies beyond dtype conversion), output files, the
 * exit code of a failed library call. */
#include "attn_args.h"
#include "attn_run.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options shared by every variant -------------------------------------------------------- */

const char attn_run_common_help[] =
    "  --out FILE         output .npy (same layout as q)\n"
    "  --backend B        ref (f64 ground truth, default), cpu or opencl (`attn backends`)\n"
    "  --options STR      backend options \"key=value,...\" (opencl: device=P:D, ...)\n"
    "  --layout L         bshd ([B,S,H,D], default) or bhsd ([B,H,S,D], PyTorch); 3-D files\n"
    "                     omit B\n"
    "  --bf16             read '<u2' (uint16) arrays as bfloat16 bit patterns\n"
    "  --out-dtype T      f32 (default), f16, bf16 (written as uint16) or f64 (ref only: the\n"
    "                     f64 ground truth without rounding)\n";

/* 1 consumed, 0 not a common option, -1 error (printed). */
int attn_run_common_arg(int argc, char **argv, int *i, attn_run_opts *o)
{
    static const char *const layouts[] = {"bshd", "bhsd", NULL};
    static const char *const dtypes[] = {"f32", "f16", "bf16", "f64", NULL};
    const char *val;
    int r;
    if ((r = attn_arg_flag(argv, *i, "--bf16")) != 0) {
        o->bf16 = r > 0;
        return r;
    }
    if ((r = attn_arg_value(argc, argv, i, "--variant", &val)) != 0)
        return r; /* already dispatched on */
    if ((r = attn_arg_value(argc, argv, i, "--backend", &o->backend)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--options", &o->options)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--out", &o->out)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--layout", &val)) != 0)
        return r < 0 ? r : attn_parse_choice("--layout", val, layouts, &o->layout) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--out-dtype", &val)) != 0)
        return r < 0 ? r : attn_parse_choice("--out-dtype", val, dtypes, &o->out_dtype) ? -1 : 1;
    return 0;
}

/* ---- files as tensor views ------------------------------------------------------------------ */

int attn_run_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attn run: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

int attn_run_check_out(const attn_run_opts *o)
{
    if (!o->out)
        return attn_run_error("--out FILE is required");
    if (o->out_dtype == ATTN_RUN_OUT_F64 && strcmp(o->backend, "ref") != 0)
        return attn_run_error("--out-dtype f64 is the ground truth of --backend ref, not %s",
                              o->backend);
    return 0;
}

/* Pad the file's dims on the left with size-1 dims (NumPy broadcasting) to 4, then view them
 * as [batch, seq, heads, dim] taking file dim perm[k] for view dim k. */
static void attn_run_view_dims(const attn_npy *a, const int perm[4], attn_tensor *t)
{
    int64_t shape[4], stride[4];
    int pad = 4 - a->ndim;
    for (int d = 0; d < 4; d++) {
        shape[d] = d < pad ? 1 : a->shape[d - pad];
        stride[d] = d < pad ? 0 : a->stride[d - pad];
    }
    for (int k = 0; k < 4; k++) {
        t->shape[k] = shape[perm[k]];
        t->stride[k] = t->shape[k] == 1 ? 0 : stride[perm[k]];
    }
    t->data = a->data;
}

const int attn_run_perm_bshd[4] = {0, 1, 2, 3};
const int attn_run_perm_bhsd[4] = {0, 2, 1, 3}; /* also masks: [B|1, H|1, Sq|1, Skv] */

static int attn_run_load_array(attn_run_array *r, int min_rank, int max_rank, char *err)
{
    if (attn_npy_load(r->path, &r->a, err))
        return attn_run_error("%s", err);
    if (r->a.ndim < min_rank || r->a.ndim > max_rank) {
        char shp[64];
        attn_npy_shape_str(r->a.ndim, r->a.shape, shp, sizeof shp);
        fprintf(stderr, "attn run: %s %s: expected a %d-D %s %d-D array, got shape %s\n", r->opt,
                r->path, min_rank, max_rank - min_rank > 1 ? "to" : "or", max_rank, shp);
        return -1;
    }
    return 0;
}

/* q, k, v or an additive mask: floating data (f64 narrowed to f32 with a warning). */
int attn_run_load_float(attn_run_array *r, int min_rank, int max_rank, const int perm[4], int bf16)
{
    char err[ATTN_NPY_ERRLEN];
    int64_t inexact;
    if (attn_run_load_array(r, min_rank, max_rank, err))
        return -1;
    if (attn_npy_as_float_tensor(&r->a, bf16, &r->t.dtype, &inexact, err))
        return attn_run_error("%s %s: %s%s", r->opt, r->path, err,
                         r->a.dtype == ATTN_NPY_BOOL ? " (boolean masks go with --bool-mask)" : "");
    if (inexact)
        fprintf(stderr, "attn run: warning: %s: %lld of %lld f64 values are not exactly "
                        "representable in f32 (rounded to nearest)\n",
                r->path, (long long)inexact, (long long)r->a.count);
    attn_run_view_dims(&r->a, perm, &r->t);
    return 0;
}

int attn_run_load_bool(attn_run_array *r)
{
    char err[ATTN_NPY_ERRLEN];
    if (attn_run_load_array(r, 1, 4, err))
        return -1;
    if (r->a.dtype != ATTN_NPY_BOOL && r->a.dtype != ATTN_NPY_U8)
        return attn_run_error("%s: boolean mask must be bool or uint8, not %s", r->path,
                         attn_npy_dtype_name(r->a.dtype));
    r->t.dtype = ATTN_U8;
    attn_run_view_dims(&r->a, attn_run_perm_bhsd, &r->t);
    return 0;
}

/* File [S] or [B, S], padded on the left to [1, 1, B|1, S], viewed as [B|1, S, 1, 1]. */
static const int perm_positions[4] = {2, 3, 0, 1};

int attn_run_load_positions(attn_run_array *r)
{
    char err[ATTN_NPY_ERRLEN];
    if (attn_run_load_array(r, 1, 2, err))
        return -1;
    if (r->a.dtype != ATTN_NPY_I32 && r->a.dtype != ATTN_NPY_I64)
        return attn_run_error("%s %s: positions must be int32 or int64, not %s", r->opt, r->path,
                              attn_npy_dtype_name(r->a.dtype));
    r->t.dtype = r->a.dtype == ATTN_NPY_I32 ? ATTN_I32 : ATTN_I64;
    attn_run_view_dims(&r->a, perm_positions, &r->t);
    return 0;
}

/* ---- output --------------------------------------------------------------------------------- */

const attn_npy_dtype attn_run_out_file_dtype[] = {ATTN_NPY_F32, ATTN_NPY_F16, ATTN_NPY_U16,
                                                ATTN_NPY_F64};
const attn_dtype attn_run_out_lib_dtype[] = {ATTN_F32, ATTN_F16, ATTN_BF16, ATTN_F32};

int attn_run_save(const char *path, attn_npy_dtype t, int ndim, const int64_t *shape,
                const void *data)
{
    char err[ATTN_NPY_ERRLEN];
    if (attn_npy_save(path, t, ndim, shape, data, err))
        return attn_run_error("%s", err);
    return 0;
}

/* Product of n sizes as a byte count of elements of `size` bytes; 0 on overflow. */
size_t attn_run_bytes(const int64_t *dims, int n, size_t size)
{
    size_t b = size;
    for (int k = 0; k < n; k++)
        if (dims[k] < 0 || __builtin_mul_overflow(b, (size_t)dims[k], &b))
            return 0;
    return b ? b : 1; /* zero-size problems still get a buffer; the library rejects them */
}

/* [B, Sq, Hq, Dv] double (reference layout) into dst in file layout. */
void attn_run_f64_to_layout(const double *src, const int64_t dims[4], int layout, double *dst)
{
    int64_t B = dims[0], S = dims[1], H = dims[2], D = dims[3];
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t h = 0; h < H; h++) {
                int64_t to = layout == ATTN_RUN_BSHD ? ((b * S + s) * H + h) * D
                                                   : ((b * H + h) * S + s) * D;
                memcpy(dst + to, src + ((b * S + s) * H + h) * D, (size_t)D * sizeof *dst);
            }
}

/* ---- gradient files ------------------------------------------------------------------------ */

int attn_run_grad_alloc(attn_run_grad *g, const int64_t shape[4], int layout, attn_dtype dt,
                        int f64)
{
    const size_t b = attn_run_bytes(shape, 4, attn_dtype_size(dt));
    const size_t b64 = attn_run_bytes(shape, 4, sizeof(double));
    if (!b || !b64)
        return attn_run_error("gradient size overflows");
    g->buf = calloc(1, b);
    g->f64 = f64 ? malloc(b64) : NULL;
    if (!g->buf || (f64 && !g->f64))
        return attn_run_error("out of memory");
    const int64_t *d = shape;
    g->t = layout == ATTN_RUN_BHSD ? attn_tensor_bhsd(g->buf, dt, d[0], d[1], d[2], d[3])
                                   : attn_tensor_bshd(g->buf, dt, d[0], d[1], d[2], d[3]);
    return 0;
}

int attn_run_grad_save(const attn_run_grad *g, attn_npy_dtype t, int ndim,
                       const int64_t *file_shape, int f64)
{
    if (!f64)
        return attn_run_save(g->path, t, ndim, file_shape, g->buf);
    const int64_t *n = g->t.shape, *st = g->t.stride;
    double *dst = malloc(attn_run_bytes(n, 4, sizeof(double)));
    if (!dst)
        return attn_run_error("out of memory");
    int64_t x = 0; /* the view's strides give each element's place in the file */
    for (int64_t a = 0; a < n[0]; a++)
        for (int64_t b = 0; b < n[1]; b++)
            for (int64_t c = 0; c < n[2]; c++)
                for (int64_t d = 0; d < n[3]; d++)
                    dst[a * st[0] + b * st[1] + c * st[2] + d * st[3]] = g->f64[x++];
    const int rc = attn_run_save(g->path, ATTN_NPY_F64, ndim, file_shape, dst);
    free(dst);
    return rc;
}

void attn_run_grad_free(attn_run_grad *g)
{
    free(g->buf);
    free(g->f64);
    g->buf = NULL;
    g->f64 = NULL;
}

int attn_run_grad_arg(int argc, char **argv, int *i, attn_run_grad *g, const char *const *opts,
                      int n)
{
    int c = 0;
    for (int k = 0; k < n && !c; k++)
        c = attn_arg_value(argc, argv, i, opts[k], &g[k].path);
    return c;
}

int attn_run_grad_check(const char *dout, const attn_run_grad *g, const char *const *opts, int n,
                        int extra)
{
    int any = extra;
    for (int k = 0; k < n; k++)
        any |= g[k].path != NULL;
    if (!dout)
        return any ? attn_run_error("the gradient options need --dout FILE") : 0;
    for (int k = 0; k < 3; k++)
        if (!g[k].path)
            return attn_run_error("--dout needs %s FILE (and the other gradients)", opts[k]);
    return 0;
}

/* ---- the input files, the output and the exit code every variant shares ---------------------- */

int attn_run_file_arg(int argc, char **argv, int *i, attn_run_array *in, int n)
{
    int c = 0;
    for (int k = 0; k < n && !c; k++)
        c = attn_arg_value(argc, argv, i, in[k].opt, &in[k].path);
    return c;
}

int attn_run_check_inputs(const attn_run_array *in, const attn_run_opts *o)
{
    for (int k = 0; k < 3; k++)
        if (!in[k].path)
            return attn_run_error("%s FILE is required", in[k].opt);
    return attn_run_check_out(o);
}

int attn_run_unknown(const char *variant, const char *arg)
{
    return attn_run_error("unknown option '%s' (see attn run --variant %s --help)", arg,
                          variant);
}

int attn_run_load_qkv(attn_run_array *in, const attn_run_opts *o)
{
    const int *perm = o->layout == ATTN_RUN_BHSD ? attn_run_perm_bhsd : attn_run_perm_bshd;
    for (int k = 0; k < 3; k++)
        if (attn_run_load_float(&in[k], 3, 4, perm, o->bf16))
            return -1;
    return 0;
}

int attn_run_alloc_out(const attn_run_opts *o, const attn_tensor *q, const attn_tensor *v,
                       int64_t dims[4], void **buf, attn_tensor *out)
{
    int64_t *d = dims;
    for (int x = 0; x < 3; x++)
        d[x] = q->shape[x];
    d[3] = v->shape[3];
    const attn_dtype t = attn_run_out_lib_dtype[o->out_dtype];
    const size_t bytes = attn_run_bytes(d, 4, attn_dtype_size(t));
    if (!bytes)
        return attn_run_error("output size overflows");
    if (!(*buf = calloc(1, bytes)))
        return attn_run_error("out of memory");
    *out = o->layout == ATTN_RUN_BHSD ? attn_tensor_bhsd(*buf, t, d[0], d[1], d[2], d[3])
                                      : attn_tensor_bshd(*buf, t, d[0], d[1], d[2], d[3]);
    return 0;
}

int attn_run_save_out(const attn_run_opts *o, const int64_t dims[4], int rank3,
                      const void *data)
{
    int64_t shape[4] = {dims[0], dims[1], dims[2], dims[3]};
    if (o->layout == ATTN_RUN_BHSD) {
        shape[1] = dims[2];
        shape[2] = dims[1];
    }
    return attn_run_save(o->out, attn_run_out_file_dtype[o->out_dtype], 4 - rank3,
                         shape + rank3, data);
}

int attn_run_lib_error(attn_status s)
{
    fprintf(stderr, "attn run: %s: %s\n", attn_status_name(s), attn_last_error());
    return s == ATTN_ERR_UNSUPPORTED || s == ATTN_ERR_OUT_OF_MEMORY || s == ATTN_ERR_DEVICE ||
                   s == ATTN_ERR_INTERNAL
               ? 1
               : 2;
}
