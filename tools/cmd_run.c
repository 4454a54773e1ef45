/* cmd_run.c - `attn run`: compute a variant on NumPy .npy files, so tensors dumped from any
 * framework or kernel can be checked against the ground truth. Variants are a table; each one
 * parses its own files with the shared options (backend, layout, dtypes, output). File arrays
 * become library tensor views through strides only (no copies beyond dtype conversion). */
#include "attn/attn.h"
#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_npy.h"
#include "ref_sdpa.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options shared by every variant -------------------------------------------------------- */

enum { LAYOUT_BSHD = 0, LAYOUT_BHSD = 1 };
enum { OUT_F32 = 0, OUT_F16, OUT_BF16, OUT_F64 };

typedef struct run_opts {
    const char *backend;
    int layout;
    int bf16;
    int out_dtype;
    const char *out;
} run_opts;

static const char run_common_help[] =
    "  --out FILE         output .npy (same layout as q)\n"
    "  --backend B        ref (f64 ground truth, default) or cpu\n"
    "  --layout L         bshd ([B,S,H,D], default) or bhsd ([B,H,S,D], PyTorch); 3-D files\n"
    "                     omit B\n"
    "  --bf16             read '<u2' (uint16) arrays as bfloat16 bit patterns\n"
    "  --out-dtype T      f32 (default), f16, bf16 (written as uint16) or f64 (ref only: the\n"
    "                     f64 ground truth without rounding)\n";

/* 1 consumed, 0 not a common option, -1 error (printed). */
static int run_common_arg(int argc, char **argv, int *i, run_opts *o)
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
    if ((r = attn_arg_value(argc, argv, i, "--out", &o->out)) != 0)
        return r;
    if ((r = attn_arg_value(argc, argv, i, "--layout", &val)) != 0)
        return r < 0 ? r : attn_parse_choice("--layout", val, layouts, &o->layout) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--out-dtype", &val)) != 0)
        return r < 0 ? r : attn_parse_choice("--out-dtype", val, dtypes, &o->out_dtype) ? -1 : 1;
    return 0;
}

/* ---- files as tensor views ------------------------------------------------------------------ */

/* A loaded file and the 4-D view over its data. */
typedef struct run_array {
    const char *opt, *path;
    attn_npy a;
    attn_tensor t;
} run_array;

static int run_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attn run: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* Pad the file's dims on the left with size-1 dims (NumPy broadcasting) to 4, then view them
 * as [batch, seq, heads, dim] taking file dim perm[k] for view dim k. */
static void view_dims(const attn_npy *a, const int perm[4], attn_tensor *t)
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

static const int perm_bshd[4] = {0, 1, 2, 3};
static const int perm_bhsd[4] = {0, 2, 1, 3}; /* also masks: [B|1, H|1, Sq|1, Skv] */

static int load_array(run_array *r, int min_rank, int max_rank, char *err)
{
    if (attn_npy_load(r->path, &r->a, err))
        return run_error("%s", err);
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
static int load_float(run_array *r, int min_rank, int max_rank, const int perm[4], int bf16)
{
    char err[ATTN_NPY_ERRLEN];
    int64_t inexact;
    if (load_array(r, min_rank, max_rank, err))
        return -1;
    if (attn_npy_as_float_tensor(&r->a, bf16, &r->t.dtype, &inexact, err))
        return run_error("%s %s: %s%s", r->opt, r->path, err,
                         r->a.dtype == ATTN_NPY_BOOL ? " (boolean masks go with --bool-mask)" : "");
    if (inexact)
        fprintf(stderr, "attn run: warning: %s: %lld of %lld f64 values are not exactly "
                        "representable in f32 (rounded to nearest)\n",
                r->path, (long long)inexact, (long long)r->a.count);
    view_dims(&r->a, perm, &r->t);
    return 0;
}

static int load_bool(run_array *r)
{
    char err[ATTN_NPY_ERRLEN];
    if (load_array(r, 1, 4, err))
        return -1;
    if (r->a.dtype != ATTN_NPY_BOOL && r->a.dtype != ATTN_NPY_U8)
        return run_error("%s: boolean mask must be bool or uint8, not %s", r->path,
                         attn_npy_dtype_name(r->a.dtype));
    r->t.dtype = ATTN_U8;
    view_dims(&r->a, perm_bhsd, &r->t);
    return 0;
}

/* ---- output --------------------------------------------------------------------------------- */

static const attn_npy_dtype out_file_dtype[] = {ATTN_NPY_F32, ATTN_NPY_F16, ATTN_NPY_U16,
                                                ATTN_NPY_F64};
static const attn_dtype out_lib_dtype[] = {ATTN_F32, ATTN_F16, ATTN_BF16, ATTN_F32};

static int save(const char *path, attn_npy_dtype t, int ndim, const int64_t *shape,
                const void *data)
{
    char err[ATTN_NPY_ERRLEN];
    if (attn_npy_save(path, t, ndim, shape, data, err))
        return run_error("%s", err);
    return 0;
}

/* Product of n sizes as a byte count of elements of `size` bytes; 0 on overflow. */
static size_t checked_bytes(const int64_t *dims, int n, size_t size)
{
    size_t b = size;
    for (int k = 0; k < n; k++)
        if (dims[k] < 0 || __builtin_mul_overflow(b, (size_t)dims[k], &b))
            return 0;
    return b ? b : 1; /* zero-size problems still get a buffer; the library rejects them */
}

/* [B, Sq, Hq, Dv] double (reference layout) into dst in file layout. */
static void f64_to_layout(const double *src, const int64_t dims[4], int layout, double *dst)
{
    int64_t B = dims[0], S = dims[1], H = dims[2], D = dims[3];
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t h = 0; h < H; h++) {
                int64_t to = layout == LAYOUT_BSHD ? ((b * S + s) * H + h) * D
                                                   : ((b * H + h) * S + s) * D;
                memcpy(dst + to, src + ((b * S + s) * H + h) * D, (size_t)D * sizeof *dst);
            }
}

/* ---- sdpa ----------------------------------------------------------------------------------- */

enum { SDPA_Q, SDPA_K, SDPA_V, SDPA_MASK, SDPA_BMASK, SDPA_N };

typedef struct sdpa_run {
    run_opts o;
    attn_sdpa_desc d;
    run_array in[SDPA_N];
    const char *lse_path;
    int64_t dims[4]; /* output [B, Sq, Hq, Dv] */
    void *out, *lse;
    double *out64, *lse64, *tmp64;
    attn_backend *be;
} sdpa_run;

static const char sdpa_help[] =
    "usage: attn run --variant sdpa --q Q.npy --k K.npy --v V.npy --out O.npy [options]\n"
    "softmax attention: out = softmax(scale * q k^T [+ mask]) v\n"
    "  --q, --k, --v FILE query [B,Sq,Hq,Dk], key [B,Skv,Hkv,Dk], value [B,Skv,Hkv,Dv]\n"
    "  --mask FILE        additive mask [Sq,Skv] or [B|1,Hq|1,Sq|1,Skv] (PyTorch attn_mask)\n"
    "  --bool-mask FILE   boolean mask, same shapes, true/nonzero = visible\n"
    "  --lse FILE         also write the log-sum-exp [B,Hq,Sq] (f32; f64 with --out-dtype f64)\n";

static int sdpa_parse(int argc, char **argv, sdpa_run *r)
{
    static const char *const file_opts[SDPA_N] = {"--q", "--k", "--v", "--mask", "--bool-mask"};
    for (int k = 0; k < SDPA_N; k++)
        r->in[k].opt = file_opts[k];
    for (int i = 1; i < argc; i++) {
        int c = run_common_arg(argc, argv, &i, &r->o);
        if (c == 0)
            c = attn_args_sdpa(argc, argv, &i, &r->d);
        if (c == 0)
            c = attn_arg_value(argc, argv, &i, "--lse", &r->lse_path);
        for (int k = 0; k < SDPA_N && c == 0; k++)
            c = attn_arg_value(argc, argv, &i, file_opts[k], &r->in[k].path);
        if (c < 0)
            return -1;
        if (c == 0)
            return run_error("unknown option '%s' (see attn run --variant sdpa --help)", argv[i]);
    }
    for (int k = 0; k <= SDPA_V; k++)
        if (!r->in[k].path)
            return run_error("%s FILE is required", file_opts[k]);
    if (!r->o.out)
        return run_error("--out FILE is required");
    if (r->o.out_dtype == OUT_F64 && strcmp(r->o.backend, "ref") != 0)
        return run_error("--out-dtype f64 is the ground truth of --backend ref, not %s",
                         r->o.backend);
    return 0;
}

static int sdpa_load(sdpa_run *r)
{
    const int *perm = r->o.layout == LAYOUT_BHSD ? perm_bhsd : perm_bshd;
    for (int k = 0; k <= SDPA_V; k++)
        if (load_float(&r->in[k], 3, 4, perm, r->o.bf16))
            return -1;
    if (r->in[SDPA_MASK].path) {
        if (load_float(&r->in[SDPA_MASK], 1, 4, perm_bhsd, r->o.bf16))
            return -1;
        r->d.mask_add = &r->in[SDPA_MASK].t;
    }
    if (r->in[SDPA_BMASK].path) {
        if (load_bool(&r->in[SDPA_BMASK]))
            return -1;
        r->d.mask_bool = &r->in[SDPA_BMASK].t;
    }
    return 0;
}

/* Output and LSE buffers and their views: out in q's layout, LSE as [B, Hq, Sq]. With
 * --out-dtype f64 these f32 views only take part in validation; the reference fills f64 ones. */
static int sdpa_alloc(sdpa_run *r, attn_tensor *out, attn_tensor *lse)
{
    const attn_tensor *q = &r->in[SDPA_Q].t;
    int64_t *d = r->dims;
    for (int k = 0; k < 3; k++)
        d[k] = q->shape[k];
    d[3] = r->in[SDPA_V].t.shape[3];
    attn_dtype t = out_lib_dtype[r->o.out_dtype];
    size_t ob = checked_bytes(d, 4, attn_dtype_size(t)), lb = checked_bytes(d, 3, 4);
    if (!ob || !lb)
        return run_error("output size overflows");
    r->out = calloc(1, ob);
    r->lse = r->lse_path ? calloc(1, lb) : NULL;
    if (!r->out || (r->lse_path && !r->lse))
        return run_error("out of memory");
    *out = r->o.layout == LAYOUT_BHSD ? attn_tensor_bhsd(r->out, t, d[0], d[1], d[2], d[3])
                                      : attn_tensor_bshd(r->out, t, d[0], d[1], d[2], d[3]);
    *lse = (attn_tensor){.data = r->lse, .dtype = ATTN_F32, .shape = {d[0], d[1], d[2], 1},
                         .stride = {d[1] * d[2], 1, d[1], 1}};
    return 0;
}

/* 2: the inputs do not make a valid problem; 1: the backend failed to run a valid one. */
static int lib_error(attn_status s)
{
    fprintf(stderr, "attn run: %s: %s\n", attn_status_name(s), attn_last_error());
    if (s == ATTN_ERR_SHAPE)
        fprintf(stderr, "attn run: (library views are [batch, seq, heads, dim], masks [batch, "
                        "query, head, key]; see --help for how file dims map to them)\n");
    return s == ATTN_ERR_UNSUPPORTED || s == ATTN_ERR_OUT_OF_MEMORY || s == ATTN_ERR_DEVICE ||
                   s == ATTN_ERR_INTERNAL
               ? 1
               : 2;
}

/* The f64 ground truth straight from the reference, without rounding to a storage dtype. */
static int sdpa_compute_f64(sdpa_run *r, const attn_tensor *out, const attn_tensor *lse)
{
    attn_sdpa_problem p;
    attn_status s = attn_sdpa_validate(&r->d, &r->in[SDPA_Q].t, &r->in[SDPA_K].t,
                                       &r->in[SDPA_V].t, out, r->lse ? lse : NULL, &p);
    if (s != ATTN_OK)
        return lib_error(s);
    size_t n = checked_bytes(r->dims, 4, sizeof(double)), nl = checked_bytes(r->dims, 3, 8);
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
    f64_to_layout(r->tmp64, r->dims, r->o.layout, r->out64);
    return 0;
}

static int sdpa_compute(sdpa_run *r, const attn_tensor *out, const attn_tensor *lse)
{
    attn_status s = attn_backend_open(r->o.backend, NULL, &r->be);
    if (s == ATTN_OK)
        s = attn_sdpa_forward(r->be, &r->d, &r->in[SDPA_Q].t, &r->in[SDPA_K].t,
                              &r->in[SDPA_V].t, out, r->lse ? lse : NULL);
    return s == ATTN_OK ? 0 : lib_error(s);
}

/* Out in q's layout and rank; LSE [B, Hq, Sq] (B dropped when q was 3-D). */
static int sdpa_save(const sdpa_run *r)
{
    const int64_t *d = r->dims;
    int rank3 = r->in[SDPA_Q].a.ndim == 3;
    int64_t oshape[4] = {d[0], d[1], d[2], d[3]}, lshape[3] = {d[0], d[2], d[1]};
    if (r->o.layout == LAYOUT_BHSD) {
        oshape[1] = d[2];
        oshape[2] = d[1];
    }
    int f64 = r->o.out_dtype == OUT_F64;
    if (save(r->o.out, out_file_dtype[r->o.out_dtype], 4 - rank3, oshape + rank3,
             f64 ? (void *)r->out64 : r->out))
        return -1;
    if (r->lse_path && save(r->lse_path, f64 ? ATTN_NPY_F64 : ATTN_NPY_F32, 3 - rank3,
                            lshape + rank3, f64 ? (void *)r->lse64 : r->lse))
        return -1;
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
    attn_backend_close(r->be);
}

static int run_sdpa(int argc, char **argv)
{
    sdpa_run r;
    memset(&r, 0, sizeof r);
    r.o.backend = "ref";
    r.d = attn_sdpa_desc_default();
    attn_tensor out, lse;
    int rc = 2;
    if (sdpa_parse(argc, argv, &r) == 0 && sdpa_load(&r) == 0 && sdpa_alloc(&r, &out, &lse) == 0) {
        rc = r.o.out_dtype == OUT_F64 ? sdpa_compute_f64(&r, &out, &lse)
                                      : sdpa_compute(&r, &out, &lse);
        if (rc == 0 && sdpa_save(&r))
            rc = 2;
    }
    sdpa_free(&r);
    return rc;
}

/* ---- variant dispatch ----------------------------------------------------------------------- */

typedef struct run_variant {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    const char *help;      /* files and options of the variant */
    const char *desc_help; /* its descriptor options (attn_args.h) */
} run_variant;

static const run_variant run_variants[] = {
    {"sdpa", "softmax attention (scaled dot-product, flash attention semantics)", run_sdpa,
     sdpa_help, attn_args_sdpa_help},
};
#define RUN_NVARIANTS (sizeof run_variants / sizeof run_variants[0])

static void list_variants(FILE *f)
{
    fprintf(f, "variants:\n");
    for (size_t k = 0; k < RUN_NVARIANTS; k++)
        fprintf(f, "  %-10s %s\n", run_variants[k].name, run_variants[k].summary);
}

static int run_usage(FILE *f, const run_variant *v)
{
    if (v)
        fprintf(f, "%s%s%s", v->help, v->desc_help, run_common_help);
    else {
        fprintf(f, "usage: attn run --variant NAME [options]   (attn run --variant NAME --help)\n");
        list_variants(f);
    }
    return f == stderr ? 2 : 0;
}

int attn_cmd_run(int argc, char **argv)
{
    const char *name = NULL;
    int help = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            help = 1;
        else if (attn_arg_value(argc, argv, &i, "--variant", &name) < 0)
            return 2;
    }
    if (!name)
        return help ? run_usage(stdout, NULL) : (fprintf(stderr, "attn run: --variant is "
                                                                 "required\n"),
                                                 run_usage(stderr, NULL));
    for (size_t k = 0; k < RUN_NVARIANTS; k++)
        if (strcmp(name, run_variants[k].name) == 0)
            return help ? run_usage(stdout, &run_variants[k])
                        : run_variants[k].run(argc, argv);
    fprintf(stderr, "attn run: unknown variant '%s'\n", name);
    list_variants(stderr);
    return 2;
}
