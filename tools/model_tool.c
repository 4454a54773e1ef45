/* model_tool.c - the shared pieces of the model room's commands (model_tool.h). */
#include "model_tool.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- input arrays ---------------------------------------------------------------------------- */

/* Loads path and checks its rank; on success a owns the file's array. */
static int load_ranked(const char *cmd, const char *path, int ndim_lo, int ndim_hi, attn_npy *a)
{
    char err[ATTN_NPY_ERRLEN];
    if (attn_npy_load(path, a, err)) {
        fprintf(stderr, "attn %s: %s\n", cmd, err);
        return -1;
    }
    if (a->ndim < ndim_lo || a->ndim > ndim_hi) {
        if (ndim_lo == ndim_hi)
            fprintf(stderr, "attn %s: %s: %d dimensions, expected %d\n", cmd, path, a->ndim,
                    ndim_lo);
        else
            fprintf(stderr, "attn %s: %s: %d dimensions, expected %d to %d\n", cmd, path,
                    a->ndim, ndim_lo, ndim_hi);
        attn_npy_free(a);
        return -1;
    }
    return 0;
}

/* The dense result of a loaded file: its shape and a fresh buffer of count elements of esz. */
static int array_from(const char *cmd, const attn_npy *f, size_t esz, attn_model_tool_array *a)
{
    memset(a, 0, sizeof *a);
    a->ndim = f->ndim;
    for (int d = 0; d < f->ndim; d++)
        a->shape[d] = f->shape[d];
    a->count = f->count;
    a->data = malloc(esz * (size_t)(f->count > 0 ? f->count : 1));
    if (!a->data) {
        fprintf(stderr, "attn %s: out of memory\n", cmd);
        return -1;
    }
    return 0;
}

int attn_model_tool_read_i32(const char *cmd, const char *path, int ndim_lo, int ndim_hi,
                             attn_model_tool_array *a)
{
    attn_npy f;
    memset(a, 0, sizeof *a);
    if (load_ranked(cmd, path, ndim_lo, ndim_hi, &f))
        return -1;
    if (f.dtype != ATTN_NPY_I32 && f.dtype != ATTN_NPY_I64) {
        fprintf(stderr, "attn %s: %s: dtype %s, expected int32 or int64\n", cmd, path,
                attn_npy_dtype_name(f.dtype));
        attn_npy_free(&f);
        return -1;
    }
    if (array_from(cmd, &f, sizeof(int32_t), a)) {
        attn_npy_free(&f);
        return -1;
    }
    int32_t *dst = a->data;
    for (int64_t i = 0; i < f.count; i++) {
        const int64_t off = attn_npy_offset(&f, i);
        const int64_t v = f.dtype == ATTN_NPY_I32 ? ((const int32_t *)f.data)[off]
                                                  : ((const int64_t *)f.data)[off];
        if (v < INT32_MIN || v > INT32_MAX) {
            fprintf(stderr, "attn %s: %s: element %lld = %lld does not fit int32\n", cmd, path,
                    (long long)i, (long long)v);
            attn_npy_free(&f);
            attn_model_tool_array_free(a);
            return -1;
        }
        dst[i] = (int32_t)v;
    }
    attn_npy_free(&f);
    return 0;
}

int attn_model_tool_read_u8(const char *cmd, const char *path, int ndim_lo, int ndim_hi,
                            attn_model_tool_array *a)
{
    attn_npy f;
    memset(a, 0, sizeof *a);
    if (load_ranked(cmd, path, ndim_lo, ndim_hi, &f))
        return -1;
    if (f.dtype != ATTN_NPY_U8 && f.dtype != ATTN_NPY_BOOL) {
        fprintf(stderr, "attn %s: %s: dtype %s, expected uint8 or bool\n", cmd, path,
                attn_npy_dtype_name(f.dtype));
        attn_npy_free(&f);
        return -1;
    }
    if (array_from(cmd, &f, 1, a)) {
        attn_npy_free(&f);
        return -1;
    }
    uint8_t *dst = a->data;
    for (int64_t i = 0; i < f.count; i++)
        dst[i] = ((const uint8_t *)f.data)[attn_npy_offset(&f, i)];
    attn_npy_free(&f);
    return 0;
}

int attn_model_tool_read_f32(const char *cmd, const char *path, int ndim_lo, int ndim_hi,
                             attn_model_tool_array *a)
{
    attn_npy f;
    memset(a, 0, sizeof *a);
    if (load_ranked(cmd, path, ndim_lo, ndim_hi, &f))
        return -1;
    if (f.dtype != ATTN_NPY_F32 && f.dtype != ATTN_NPY_F64) {
        fprintf(stderr, "attn %s: %s: dtype %s, expected float32 or float64\n", cmd, path,
                attn_npy_dtype_name(f.dtype));
        attn_npy_free(&f);
        return -1;
    }
    if (array_from(cmd, &f, sizeof(float), a)) {
        attn_npy_free(&f);
        return -1;
    }
    float *dst = a->data;
    for (int64_t i = 0; i < f.count; i++) {
        const double v = attn_npy_get(&f, attn_npy_offset(&f, i), 0);
        if (!isfinite(v) || fabs(v) > FLT_MAX) {
            fprintf(stderr, "attn %s: %s: element %lld = %g is not a finite float32\n", cmd,
                    path, (long long)i, v);
            attn_npy_free(&f);
            attn_model_tool_array_free(a);
            return -1;
        }
        dst[i] = (float)v;
    }
    attn_npy_free(&f);
    return 0;
}

int attn_model_tool_same_shape(const char *cmd, const attn_model_tool_array *a,
                               const char *what_a, const attn_model_tool_array *b,
                               const char *what_b)
{
    int same = a->ndim == b->ndim;
    for (int d = 0; same && d < a->ndim; d++)
        same = a->shape[d] == b->shape[d];
    if (same)
        return 0;
    char sa[64], sb[64];
    attn_npy_shape_str(a->ndim, a->shape, sa, sizeof sa);
    attn_npy_shape_str(b->ndim, b->shape, sb, sizeof sb);
    fprintf(stderr, "attn %s: %s has shape %s, %s %s\n", cmd, what_b, sb, what_a, sa);
    return -1;
}

void attn_model_tool_array_free(attn_model_tool_array *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- output files and directories ------------------------------------------------------------ */

int attn_model_tool_save(const char *cmd, const char *path, attn_npy_dtype t, int ndim,
                         const int64_t *shape, const void *data)
{
    char err[ATTN_NPY_ERRLEN];
    if (attn_npy_save(path, t, ndim, shape, data, err) == 0)
        return 0;
    fprintf(stderr, "attn %s: %s\n", cmd, err);
    return -1;
}

int attn_model_tool_path(const char *cmd, const char *dir, const char *name, char *buf,
                         size_t n)
{
    const int k = snprintf(buf, n, "%s/%s", dir, name);
    if (k >= 0 && (size_t)k < n)
        return 0;
    fprintf(stderr, "attn %s: path too long: %s/%s\n", cmd, dir, name);
    return -1;
}

char *attn_model_tool_read_text(const char *cmd, const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long len = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)len + 1)) && fread(text, 1, (size_t)len, f) == (size_t)len) {
        text[len] = '\0';
    } else {
        free(text);
        text = NULL;
        fprintf(stderr, "attn %s: cannot read %s%s%s\n", cmd, path, f ? "" : ": ",
                f ? "" : strerror(errno));
    }
    if (f)
        fclose(f);
    return text;
}

int attn_model_tool_write_text(const char *cmd, const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "attn %s: cannot write %s: %s\n", cmd, path, strerror(errno));
        return -1;
    }
    const int bad = fputs(text, f) < 0;
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "attn %s: cannot write %s\n", cmd, path);
        return -1;
    }
    return 0;
}

/* mkdir that accepts an existing directory. */
static int mkdir_one(const char *path)
{
    struct stat st;
    if (mkdir(path, 0777) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
    return -1;
}

int attn_model_tool_mkdirs(const char *cmd, const char *dir)
{
    char p[4096];
    const size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p) {
        fprintf(stderr, "attn %s: bad directory name '%s'\n", cmd, dir);
        return -1;
    }
    memcpy(p, dir, n + 1);
    /* Each parent in turn (cutting at every '/' after the first character), then dir. */
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        const char c = p[i];
        p[i] = '\0';
        if (mkdir_one(p)) {
            fprintf(stderr, "attn %s: cannot create directory %s: %s\n", cmd, p, strerror(errno));
            return -1;
        }
        p[i] = c;
    }
    return 0;
}

/* ---- backend and errors ---------------------------------------------------------------------- */

const char attn_model_tool_backend_help[] =
    "  --backend B        the attention's backend: cpu (default where built), ref or opencl\n"
    "  --device P:D       opencl: platform P, device D as `attn devices` lists them\n"
    "  --options STR      backend options \"key=value,...\"\n";

int attn_model_tool_backend(const char *cmd, const char *name, const char *device,
                            const char *options, attn_backend **be)
{
    char opts[512] = "";
    if (device && strcmp(name, "opencl") != 0) {
        fprintf(stderr, "attn %s: --device is an opencl option (backend is '%s')\n", cmd, name);
        return 2;
    }
    const int k = snprintf(opts, sizeof opts, "%s%s%s%s", device ? "device=" : "",
                           device ? device : "", device && options ? "," : "",
                           options ? options : "");
    if (k < 0 || (size_t)k >= sizeof opts) {
        fprintf(stderr, "attn %s: --options too long\n", cmd);
        return 2;
    }
    const attn_status st = attn_backend_open(name, opts[0] ? opts : NULL, be);
    if (st == ATTN_OK)
        return 0;
    fprintf(stderr, "attn %s: backend '%s': %s: %s\n", cmd, name, attn_status_name(st),
            attn_last_error());
    return 2;
}

int attn_model_tool_lib_error(const char *cmd, const char *what, attn_status st)
{
    fprintf(stderr, "attn %s: %s: %s: %s\n", cmd, what, attn_status_name(st), attn_last_error());
    return st == ATTN_ERR_UNSUPPORTED || st == ATTN_ERR_OUT_OF_MEMORY || st == ATTN_ERR_DEVICE ||
                   st == ATTN_ERR_INTERNAL
               ? 1
               : 2;
}

void attn_model_tool_print_sizes(FILE *f, attn_model *m)
{
    const attn_model_config *c = attn_model_get_config(m);
    int64_t numel = 0;
    attn_model_param p;
    for (int64_t i = 0; i < attn_model_param_count(m); i++)
        if (attn_model_param_get(m, i, &p) == ATTN_OK)
            numel += p.numel;
    fprintf(f, "%lld layers, %lld heads, d %lld, MLP %lld, vocab %lld, %lld labels (%lld "
            "parameters)", (long long)c->num_layers, (long long)c->num_heads,
            (long long)c->hidden_size, (long long)c->intermediate_size, (long long)c->vocab_size,
            (long long)c->num_labels, (long long)numel);
}

double attn_model_tool_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int attn_model_tool_parse(const char *cmd, int argc, char **argv, const char *usage,
                          attn_model_tool_opt one, void *opts)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf(usage, attn_model_tool_backend_help);
            return 1;
        }
        const int r = one(argc, argv, &i, opts);
        if (r == 0)
            fprintf(stderr, "attn %s: unknown option '%s' (see attn %s --help)\n", cmd, argv[i],
                    cmd);
        if (r <= 0)
            return -1;
    }
    return 0;
}

const char *attn_model_tool_default_backend(void)
{
#ifdef ATTN_HAVE_CPU
    return "cpu";
#else
    return "ref";
#endif
}
