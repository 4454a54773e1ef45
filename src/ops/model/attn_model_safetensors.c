/* attn_model_safetensors.c - the safetensors file format (attn_model_safetensors.h): strict
 * validation of a header held in memory, reading a file (mapped, or copied to the heap), the
 * conversion of floating tensors to f32, and writing f32 tensors. */
#include "attn_model_safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn_backend_impl.h"
#include "attn_half.h"

/* The reference implementation's bound: a header past it is hostile, not a model. */
#define ST_MAX_HEADER 100000000u
/* Dims and offsets travel as JSON numbers (doubles): integers above 2^53 are not exact. */
#define ST_MAX_EXACT 9007199254740992.0
/* Tensor names in messages: enough to recognise, short enough for the message buffer. */
#define NAME_FMT "'%.160s'"

/* ---- dtypes ---------------------------------------------------------------------------------- */

/* Every dtype the format defines, with its width in bits (the sub-byte float formats pack). */
static const struct {
    const char *name;
    attn_st_dtype dtype;
    unsigned bits;
} st_dtypes[] = {
    {"F32", ATTN_ST_F32, 32},        {"F16", ATTN_ST_F16, 16},
    {"BF16", ATTN_ST_BF16, 16},      {"F64", ATTN_ST_F64, 64},
    {"I64", ATTN_ST_I64, 64},        {"I32", ATTN_ST_I32, 32},
    {"I16", ATTN_ST_I16, 16},        {"I8", ATTN_ST_I8, 8},
    {"U8", ATTN_ST_U8, 8},           {"BOOL", ATTN_ST_BOOL, 8},
    {"U16", ATTN_ST_OTHER, 16},      {"U32", ATTN_ST_OTHER, 32},
    {"U64", ATTN_ST_OTHER, 64},      {"C64", ATTN_ST_OTHER, 64},
    {"F8_E4M3", ATTN_ST_OTHER, 8},   {"F8_E5M2", ATTN_ST_OTHER, 8},
    {"F8_E8M0", ATTN_ST_OTHER, 8},   {"F6_E2M3", ATTN_ST_OTHER, 6},
    {"F6_E3M2", ATTN_ST_OTHER, 6},   {"F4", ATTN_ST_OTHER, 4},
};

/* The table row of a dtype name, or -1. */
static int dtype_row(const char *name)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(name, st_dtypes[i].name) == 0)
            return (int)i;
    return -1;
}

/* ---- header validation ----------------------------------------------------------------------- */

static void free_tensors(attn_st_tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].name);
    free(t);
}

/* A JSON number that is a non-negative integer exact in a double, into *v. */
static int exact_uint(const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber(j))
        return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_EXACT) || d != floor(d))
        return 0;
    *v = (uint64_t)d;
    return 1;
}

/* The entry's "dtype", "shape" and "data_offsets", each exactly once (other keys are ignored:
 * the format may grow). */
static attn_status entry_fields(const cJSON *e, const char *name, const cJSON **dtype,
                                const cJSON **shape, const cJSON **offsets)
{
    if (!cJSON_IsObject(e))
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT " is not an object",
                         name);
    *dtype = *shape = *offsets = NULL;
    for (const cJSON *k = e->child; k; k = k->next) {
        const cJSON **slot = strcmp(k->string, "dtype") == 0          ? dtype
                             : strcmp(k->string, "shape") == 0        ? shape
                             : strcmp(k->string, "data_offsets") == 0 ? offsets
                                                                      : NULL;
        if (slot && *slot)
            return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                             ": key \"%s\" given twice", name, k->string);
        if (slot)
            *slot = k;
    }
    const char *missing = !*dtype    ? "dtype"
                          : !*shape  ? "shape"
                          : !*offsets ? "data_offsets"
                                      : NULL;
    if (missing)
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT " has no \"%s\"", name,
                         missing);
    return ATTN_OK;
}

static attn_status parse_dtype(const cJSON *j, attn_st_tensor *t, unsigned *bits)
{
    if (!cJSON_IsString(j))
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                         ": \"dtype\" is not a string", t->name);
    int row = dtype_row(j->valuestring);
    if (row < 0)
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                         ": unknown dtype \"%.32s\"", t->name, j->valuestring);
    t->dtype = st_dtypes[row].dtype;
    *bits = st_dtypes[row].bits;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", st_dtypes[row].name);
    return ATTN_OK;
}

/* Shape: at most ATTN_ST_MAX_DIMS non-negative exact integers whose running product (numel)
 * fits int64. */
static attn_status parse_shape(const cJSON *j, attn_st_tensor *t)
{
    if (!cJSON_IsArray(j))
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                         ": \"shape\" is not an array", t->name);
    int64_t numel = 1;
    int nd = 0;
    for (const cJSON *d = j->child; d; d = d->next, nd++) {
        uint64_t v;
        if (nd == ATTN_ST_MAX_DIMS)
            return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                             ": more than %d dims", t->name, ATTN_ST_MAX_DIMS);
        if (!exact_uint(d, &v))
            return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                             ": dim %d is not a non-negative integer below 2^53", t->name, nd);
        t->shape[nd] = (int64_t)v;
        if (__builtin_mul_overflow(numel, t->shape[nd], &numel))
            return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                             ": the element count of its shape overflows", t->name);
    }
    t->ndim = nd;
    t->numel = numel;
    return ATTN_OK;
}

/* data_offsets [begin, end] inside the data section, end - begin = numel x the dtype's bytes. */
static attn_status parse_offsets(const cJSON *j, attn_st_tensor *t, unsigned bits,
                                 uint64_t data_len)
{
    const cJSON *b = cJSON_IsArray(j) ? j->child : NULL, *e = b ? b->next : NULL;
    if (!e || e->next || !exact_uint(b, &t->begin) || !exact_uint(e, &t->end))
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                         ": \"data_offsets\" is not [begin, end] of non-negative integers",
                         t->name);
    if (t->begin > t->end || t->end > data_len)
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                         ": data_offsets [%llu, %llu] outside the data section of %llu bytes",
                         t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                         (unsigned long long)data_len);
    uint64_t nbits;
    if (__builtin_mul_overflow((uint64_t)t->numel, (uint64_t)bits, &nbits))
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                         ": the byte size of its shape overflows", t->name);
    if (nbits % 8 != 0 || nbits / 8 != t->end - t->begin)
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                         ": %s shape of %lld elements does not fill its %llu bytes", t->name,
                         t->dtype_name, (long long)t->numel,
                         (unsigned long long)(t->end - t->begin));
    return ATTN_OK;
}

static attn_status parse_tensor(const cJSON *e, uint64_t data_len, attn_st_tensor *t)
{
    const cJSON *dtype, *shape, *offsets;
    unsigned bits = 0;
    attn_status st = entry_fields(e, t->name, &dtype, &shape, &offsets);
    if (st == ATTN_OK)
        st = parse_dtype(dtype, t, &bits);
    if (st == ATTN_OK)
        st = parse_shape(shape, t);
    if (st == ATTN_OK)
        st = parse_offsets(offsets, t, bits, data_len);
    return st;
}

static attn_status check_metadata(const cJSON *m)
{
    if (!cJSON_IsObject(m))
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: \"__metadata__\" is not an object");
    for (const cJSON *k = m->child; k; k = k->next)
        if (!cJSON_IsString(k))
            return attn_fail(ATTN_ERR_FORMAT, "safetensors: \"__metadata__\" value of "
                             "\"%.64s\" is not a string", k->string);
    return ATTN_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether two of the n names are equal (1, the name in *dup), 0 if none, -1 out of memory. */
static int find_duplicate(const char *const *names, size_t n, const char **dup)
{
    if (n < 2)
        return 0;
    const char **s = malloc(n * sizeof *s);
    if (!s)
        return -1;
    memcpy(s, names, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_names);
    int found = 0;
    for (size_t i = 1; i < n && !found; i++)
        if (strcmp(s[i - 1], s[i]) == 0) {
            *dup = s[i];
            found = 1;
        }
    free(s);
    return found;
}

static attn_status check_unique(const attn_st_tensor *t, size_t n)
{
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    for (size_t i = 0; i < n; i++)
        names[i] = t[i].name;
    const char *dup = NULL;
    int rc = find_duplicate(names, n, &dup);
    attn_status st = rc < 0  ? attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory")
                     : rc > 0 ? attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT
                                          " given twice", dup)
                              : ATTN_OK;
    free(names);
    return st;
}

typedef struct st_range {
    uint64_t begin, end;
    size_t i;
} st_range;

static int cmp_ranges(const void *a, const void *b)
{
    const st_range *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* No byte belongs to two tensors: the non-empty ranges sorted by start, each ending before
 * the next starts (an empty range holds no byte, wherever it points). */
static attn_status check_overlaps(const attn_st_tensor *t, size_t n)
{
    st_range *r = malloc((n ? n : 1) * sizeof *r);
    if (!r)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].begin < t[i].end)
            r[m++] = (st_range){t[i].begin, t[i].end, i};
    qsort(r, m, sizeof *r, cmp_ranges);
    attn_status st = ATTN_OK;
    for (size_t k = 1; k < m && st == ATTN_OK; k++)
        if (r[k - 1].end > r[k].begin)
            st = attn_fail(ATTN_ERR_FORMAT, "safetensors: tensor " NAME_FMT " [%llu, %llu] "
                           "overlaps tensor " NAME_FMT " [%llu, %llu]", t[r[k].i].name,
                           (unsigned long long)r[k].begin, (unsigned long long)r[k].end,
                           t[r[k - 1].i].name, (unsigned long long)r[k - 1].begin,
                           (unsigned long long)r[k - 1].end);
    free(r);
    return st;
}

/* JSON allows no raw control bytes (whitespace aside); cJSON would skip them as blanks. */
static attn_status check_header_bytes(const unsigned char *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h[i] < 0x20 && h[i] != '\t' && h[i] != '\n' && h[i] != '\r')
            return attn_fail(ATTN_ERR_FORMAT, "safetensors: control byte 0x%02x at header "
                             "offset %zu", h[i], i);
    return ATTN_OK;
}

/* The header's JSON text h[0..n) as a cJSON object, nothing but whitespace after it. */
static attn_status parse_json(const unsigned char *h, size_t n, cJSON **root)
{
    attn_status st = check_header_bytes(h, n);
    if (st != ATTN_OK)
        return st;
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts((const char *)h, n, &end, 0);
    if (!*root)
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: the header is not valid JSON (at byte "
                         "%zu of %zu)", end ? (size_t)(end - (const char *)h) : (size_t)0, n);
    size_t at = (size_t)(end - (const char *)h);
    while (at < n && h[at] && strchr(" \t\n\r", h[at]))
        at++;
    if (at < n || !cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return attn_fail(ATTN_ERR_FORMAT, at < n ? "safetensors: bytes after the header's JSON"
                                                 : "safetensors: the header is not a JSON object");
    }
    return ATTN_OK;
}

/* The tensors of a header object (every entry but "__metadata__"), each validated. */
static attn_status parse_entries(const cJSON *root, uint64_t data_len, attn_st_tensor **out,
                                 size_t *nout)
{
    size_t n = 0, meta = 0;
    for (const cJSON *e = root->child; e; e = e->next)
        n += strcmp(e->string, "__metadata__") != 0;
    attn_st_tensor *t = calloc(n ? n : 1, sizeof *t);
    if (!t)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory for %zu tensors", n);
    attn_status st = ATTN_OK;
    size_t i = 0;
    for (const cJSON *e = root->child; e && st == ATTN_OK; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            st = meta++ ? attn_fail(ATTN_ERR_FORMAT, "safetensors: \"__metadata__\" given twice")
                        : check_metadata(e);
            continue;
        }
        t[i].name = strdup(e->string);
        if (!t[i].name) {
            st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
            break;
        }
        st = parse_tensor(e, data_len, &t[i++]);
    }
    if (st == ATTN_OK)
        st = check_unique(t, n);
    if (st == ATTN_OK)
        st = check_overlaps(t, n);
    if (st != ATTN_OK) {
        free_tensors(t, i);
        return st;
    }
    *out = t;
    *nout = n;
    return ATTN_OK;
}

static uint64_t load_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int b = bytes - 1; b >= 0; b--)
        v = v << 8 | p[b];
    return v;
}

attn_status attn_st_parse(const unsigned char *buf, size_t len, attn_st_file *f)
{
    if (!f || (!buf && len))
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_st_parse: NULL %s", f ? "buf" : "f");
    memset(f, 0, sizeof *f);
    if (len < 8)
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: %zu bytes, too short for the 8-byte "
                         "header length", len);
    uint64_t hlen = load_le(buf, 8);
    if (hlen > ST_MAX_HEADER)
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: header length %llu exceeds %u bytes",
                         (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > len - 8)
        return attn_fail(ATTN_ERR_FORMAT, "safetensors: header length %llu runs past the end "
                         "of the %zu-byte file", (unsigned long long)hlen, len);
    cJSON *root = NULL;
    attn_status st = parse_json(buf + 8, (size_t)hlen, &root);
    attn_st_tensor *t = NULL;
    size_t n = 0;
    uint64_t data_len = len - 8 - hlen;
    if (st == ATTN_OK)
        st = parse_entries(root, data_len, &t, &n);
    cJSON_Delete(root);
    if (st != ATTN_OK)
        return st;
    f->n = n;
    f->t = t;
    f->data = buf + 8 + hlen;
    f->data_len = data_len;
    return attn_ok();
}

/* ---- files ----------------------------------------------------------------------------------- */

/* The whole file in memory: mapped read-only, or (where mapping fails) read into the heap. */
static attn_status load_file(const char *path, void **mem, size_t *len, int *mapped)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return attn_fail(ATTN_ERR_IO, "safetensors: cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    const char *why = fstat(fd, &sb) != 0            ? strerror(errno)
                      : !S_ISREG(sb.st_mode)         ? "not a regular file"
                      : (uintmax_t)sb.st_size > SIZE_MAX ? "too large for this machine"
                                                      : NULL;
    if (why) {
        close(fd);
        return attn_fail(ATTN_ERR_IO, "safetensors: cannot read '%s': %s", path, why);
    }
    *len = (size_t)sb.st_size;
    *mapped = 0;
    *mem = *len ? mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (*mem != MAP_FAILED) {
        *mapped = 1;
        close(fd);
        return ATTN_OK;
    }
    unsigned char *p = malloc(*len ? *len : 1);
    size_t got = 0;
    int err = 0;
    while (p && got < *len && !err) {
        ssize_t r = read(fd, p + got, *len - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0)
            break;
        else if (errno != EINTR)
            err = errno;
    }
    close(fd);
    if (!p)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory for '%s' (%zu "
                         "bytes)", path, *len);
    if (got < *len) {
        free(p);
        return attn_fail(ATTN_ERR_IO, "safetensors: cannot read '%s': %s", path,
                         err ? strerror(err) : "the file shrank while reading");
    }
    *mem = p;
    return ATTN_OK;
}

attn_status attn_st_read(const char *path, attn_st_file *f)
{
    if (!path || !f)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_st_read: NULL %s", f ? "path" : "f");
    memset(f, 0, sizeof *f);
    void *mem = NULL;
    size_t len = 0;
    int mapped = 0;
    attn_status st = load_file(path, &mem, &len, &mapped);
    if (st != ATTN_OK)
        return st;
    st = attn_st_parse(mem, len, f);
    if (st != ATTN_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", attn_last_error());
        if (mapped)
            munmap(mem, len);
        else
            free(mem);
        return attn_fail(st, "%s (in '%s')", msg, path);
    }
    f->mem = mem;
    f->mem_len = len;
    f->mapped = mapped;
    return ATTN_OK;
}

void attn_st_close(attn_st_file *f)
{
    if (!f)
        return;
    if (f->mapped)
        munmap(f->mem, f->mem_len);
    else
        free(f->mem);
    free_tensors(f->t, f->n);
    memset(f, 0, sizeof *f);
}

const attn_st_tensor *attn_st_find(const attn_st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    return NULL;
}

/* ---- conversion ------------------------------------------------------------------------------ */

attn_status attn_st_to_f32(const attn_st_file *f, const attn_st_tensor *t, float *dst)
{
    if (!f || !t || (!dst && t->numel > 0))
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_st_to_f32: NULL %s",
                         !f ? "file" : !t ? "tensor" : "dst");
    int size = t->dtype == ATTN_ST_F32 ? 4 : t->dtype == ATTN_ST_F64 ? 8
               : t->dtype == ATTN_ST_F16 || t->dtype == ATTN_ST_BF16 ? 2 : 0;
    if (!size)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "safetensors: tensor " NAME_FMT " has dtype %s, "
                         "not a floating type attn reads (F32, F16, BF16, F64)", t->name,
                         t->dtype_name);
    if (t->numel < 0 || t->begin > t->end || t->end > f->data_len ||
        t->end - t->begin != (uint64_t)t->numel * (uint64_t)size)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "safetensors: tensor " NAME_FMT " does not "
                         "describe a range of this file", t->name);
    /* Byte by byte: the data may sit at any alignment and the file is little-endian. */
    const unsigned char *p = f->data + t->begin;
    for (int64_t i = 0; i < t->numel; i++, p += size) {
        uint64_t v = load_le(p, size);
        switch (t->dtype) {
        case ATTN_ST_F32: dst[i] = attn_bits_f32((uint32_t)v); break;
        case ATTN_ST_F16: dst[i] = attn_f16_to_f32((uint16_t)v); break;
        case ATTN_ST_BF16: dst[i] = attn_bf16_to_f32((uint16_t)v); break;
        default: {
            double d;
            memcpy(&d, &v, 8);
            dst[i] = (float)d;
        }
        }
    }
    return attn_ok();
}

/* ---- writing --------------------------------------------------------------------------------- */

/* Adds item under key; on failure deletes item too (so the caller never owns it afterwards). */
static int add_item(cJSON *obj, const char *key, cJSON *item)
{
    if (item && cJSON_AddItemToObject(obj, key, item))
        return 1;
    cJSON_Delete(item);
    return 0;
}

static cJSON *number_array(const uint64_t *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]))) {
            cJSON_Delete(a);
            a = NULL;
        }
    return a;
}

/* The header entry of tensor `name`: F32, its shape, the range [begin, end). */
static int add_entry(cJSON *root, const char *name, const uint64_t *dims, int ndim,
                     uint64_t begin, uint64_t end)
{
    uint64_t range[2] = {begin, end};
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddStringToObject(e, "dtype", "F32") ||
        !add_item(e, "shape", number_array(dims, ndim)) ||
        !add_item(e, "data_offsets", number_array(range, 2))) {
        cJSON_Delete(e);
        return 0;
    }
    return add_item(root, name, e);
}

/* Checks tensor i's arguments; its shape in dims, its byte size in *bytes. Every number the
 * header holds stays below 2^53 so that it is exact in JSON. */
static attn_status check_entry(size_t i, const char *const *names, const float *const *data,
                               const int *ndim, const int64_t (*shape)[2], uint64_t *dims,
                               uint64_t *bytes)
{
    if (!names[i])
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_st_write_f32: names[%zu] is NULL", i);
    if (strcmp(names[i], "__metadata__") == 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "safetensors: \"__metadata__\" is not a "
                         "tensor name");
    if (ndim[i] < 0 || ndim[i] > 2)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "safetensors: tensor " NAME_FMT ": ndim %d "
                         "not in 0..2", names[i], ndim[i]);
    uint64_t numel = 1;
    for (int d = 0; d < ndim[i]; d++) {
        if (shape[i][d] < 0 || (uint64_t)shape[i][d] > (uint64_t)ST_MAX_EXACT)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "safetensors: tensor " NAME_FMT
                             ": dim %d = %lld out of range", names[i], d, (long long)shape[i][d]);
        dims[d] = (uint64_t)shape[i][d];
        if (__builtin_mul_overflow(numel, dims[d], &numel) || numel > (uint64_t)ST_MAX_EXACT / 4)
            return attn_fail(ATTN_ERR_OVERFLOW, "safetensors: tensor " NAME_FMT " has more "
                             "than 2^51 elements", names[i]);
    }
    if (numel > 0 && !data[i])
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_st_write_f32: data of tensor " NAME_FMT
                         " is NULL", names[i]);
    *bytes = numel * 4;
    return ATTN_OK;
}

/* The header object: "__metadata__" first, then the tensors in the given order, packed from
 * offset 0; *total is the data section's size. */
static attn_status build_header(size_t n, const char *const *names, const float *const *data,
                                const int *ndim, const int64_t (*shape)[2], cJSON *root,
                                uint64_t *total)
{
    cJSON *meta = cJSON_CreateObject();
    if (!meta || !cJSON_AddStringToObject(meta, "format", "pt") ||
        !add_item(root, "__metadata__", meta)) {
        cJSON_Delete(meta);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    }
    uint64_t off = 0, dims[2] = {0, 0}, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        attn_status st = check_entry(i, names, data, ndim, shape, dims, &bytes);
        if (st != ATTN_OK)
            return st;
        if (off + bytes > (uint64_t)ST_MAX_EXACT)
            return attn_fail(ATTN_ERR_OVERFLOW, "safetensors: more than 2^53 bytes of data at "
                             "tensor " NAME_FMT, names[i]);
        if (!add_entry(root, names[i], dims, ndim[i], off, off + bytes))
            return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
        off += bytes;
    }
    const char *dup = NULL;
    int rc = find_duplicate(names, n, &dup);
    if (rc != 0)
        return rc < 0 ? attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory")
                      : attn_fail(ATTN_ERR_INVALID_ARGUMENT, "safetensors: tensor " NAME_FMT
                                  " given twice", dup);
    *total = off;
    return ATTN_OK;
}

/* The header text padded with spaces to a multiple of 8 bytes (the data then starts aligned). */
static attn_status header_text(size_t n, const char *const *names, const float *const *data,
                               const int *ndim, const int64_t (*shape)[2], char **text,
                               size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    uint64_t total;
    attn_status st = root ? build_header(n, names, data, ndim, shape, root, &total)
                          : attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    char *json = st == ATTN_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (st != ATTN_OK)
        return st;
    size_t hl = json ? strlen(json) : 0, padded = (hl + 7) & ~(size_t)7;
    *text = json ? malloc(padded) : NULL;
    if (*text) {
        memcpy(*text, json, hl);
        memset(*text + hl, ' ', padded - hl);
    }
    free(json);
    if (!*text)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    *len = padded;
    return ATTN_OK;
}

/* Writes bytes, the floats little-endian (through a small staging buffer). 0 or errno. */
static int write_all(FILE *fp, const char *text, size_t hl, size_t n, const float *const *data,
                     const int *ndim, const int64_t (*shape)[2])
{
    unsigned char b[4096];
    for (int k = 0; k < 8; k++)
        b[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    if (fwrite(b, 1, 8, fp) != 8 || fwrite(text, 1, hl, fp) != hl)
        return errno ? errno : EIO;
    for (size_t i = 0; i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < ndim[i]; d++)
            numel *= (uint64_t)shape[i][d];
        for (uint64_t e = 0; e < numel;) {
            size_t m = 0;
            for (; m < sizeof b && e < numel; e++, m += 4) {
                uint32_t u = attn_f32_bits(data[i][e]);
                for (int k = 0; k < 4; k++)
                    b[m + (size_t)k] = (unsigned char)(u >> (8 * k));
            }
            if (fwrite(b, 1, m, fp) != m)
                return errno ? errno : EIO;
        }
    }
    return 0;
}

attn_status attn_st_write_f32(const char *path, size_t n, const char *const *names,
                              const float *const *data, const int *ndim,
                              const int64_t (*shape)[2])
{
    if (!path || (n && (!names || !data || !ndim || !shape)))
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_st_write_f32: NULL %s",
                         !path ? "path" : "tensor array");
    char *text = NULL;
    size_t hl = 0;
    attn_status st = header_text(n, names, data, ndim, shape, &text, &hl);
    if (st != ATTN_OK)
        return st;
    /* Into path.tmp, renamed over path once complete: no half-written file under the name. */
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) {
        free(text);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    errno = 0;
    FILE *fp = fopen(tmp, "wb");
    int err = fp ? write_all(fp, text, hl, n, data, ndim, shape) : errno;
    if (fp && fclose(fp) != 0 && !err)
        err = errno ? errno : EIO;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err && fp)
        remove(tmp);
    st = err ? attn_fail(ATTN_ERR_IO, "safetensors: cannot write '%s': %s", path, strerror(err))
             : attn_ok();
    free(tmp);
    free(text);
    return st;
}
