/* attn_npy.c - .npy reader and writer. The header is a Python dict literal; it is parsed by a
 * small strict scanner (any key order, whitespace, trailing commas, 1-tuples, empty shape) that
 * never reads past the header bytes, and every size is checked before it is used, so hostile
 * files end in an error message instead of a crash. */
#include "attn_npy.h"

#include "attn_half.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static int fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, ATTN_NPY_ERRLEN, fmt, ap);
    va_end(ap);
    return -1;
}

static int host_is_little(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ---- dtypes --------------------------------------------------------------------------------- */

typedef struct npy_type_info {
    attn_npy_dtype t;
    char kind;
    size_t size;
    const char *name;
} npy_type_info;

static const npy_type_info npy_types[] = {
    {ATTN_NPY_F32, 'f', 4, "f32"},      {ATTN_NPY_F16, 'f', 2, "f16"},
    {ATTN_NPY_F64, 'f', 8, "f64"},      {ATTN_NPY_U16, 'u', 2, "u16 (bf16)"},
    {ATTN_NPY_U8, 'u', 1, "u8"},        {ATTN_NPY_BOOL, 'b', 1, "bool"},
    {ATTN_NPY_I32, 'i', 4, "i32"},      {ATTN_NPY_I64, 'i', 8, "i64"},
};
#define NPY_NTYPES (sizeof npy_types / sizeof npy_types[0])

const char *attn_npy_dtype_name(attn_npy_dtype t)
{
    for (size_t i = 0; i < NPY_NTYPES; i++)
        if (npy_types[i].t == t)
            return npy_types[i].name;
    return "?";
}

size_t attn_npy_dtype_size(attn_npy_dtype t)
{
    for (size_t i = 0; i < NPY_NTYPES; i++)
        if (npy_types[i].t == t)
            return npy_types[i].size;
    return 0;
}

/* descr '<f4' etc.: byte order, kind letter, item size. *swap is set when the file's byte order
 * differs from the host's. '|' (not applicable) is only valid for one-byte types. */
/* Item size of a descr "<f4" shaped string (order char, kind letter, 1-2 digits); 0 if not. */
static size_t descr_size(const char *s, size_t n)
{
    if (n < 3 || n > 4 || s[0] == '\0' || !strchr("<>|=", s[0]))
        return 0;
    size_t size = 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        size = size * 10 + (size_t)(s[i] - '0');
    }
    return size;
}

static int parse_descr(const char *s, size_t n, attn_npy_dtype *t, int *swap, char *err)
{
    size_t size = descr_size(s, n);
    for (size_t i = 0; i < NPY_NTYPES && size; i++) {
        if (npy_types[i].kind != s[1] || npy_types[i].size != size)
            continue;
        if (size > 1 && s[0] == '|')
            return fail(err, "descr '%.*s': multi-byte type without a byte order", (int)n, s);
        *t = npy_types[i].t;
        *swap = size > 1 && ((s[0] == '>' && host_is_little()) ||
                             (s[0] == '<' && !host_is_little()));
        return 0;
    }
    return fail(err, "unsupported descr '%.*s' (supported: '<f4', '<f2', '<f8', '<u2' for bf16, "
                     "'|u1', '|b1', '<i4', '<i8', and big-endian '>' forms)",
                (int)(n > 16 ? 16 : n), s);
}

/* ---- header scanner ------------------------------------------------------------------------- */

typedef struct scan {
    const char *s;
    size_t n, i;
    char *err;
} scan;

static void skip_ws(scan *c)
{
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\r' ||
                           c->s[c->i] == '\n'))
        c->i++;
}

/* Consume character ch (after whitespace); 1 if it was there. */
static int eat(scan *c, char ch)
{
    skip_ws(c);
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return 1;
    }
    return 0;
}

static int scan_fail(scan *c, const char *what)
{
    if (c->i >= c->n)
        return fail(c->err, "bad header: %s, found end of header", what);
    char ch = c->s[c->i];
    if (ch >= 0x20 && ch < 0x7f)
        return fail(c->err, "bad header: %s at offset %zu, found '%c'", what, c->i, ch);
    return fail(c->err, "bad header: %s at offset %zu, found byte 0x%02x", what, c->i,
                (unsigned)(unsigned char)ch);
}

/* A quoted string without escapes ('...' or "..."): start and length. */
static int scan_string(scan *c, const char **str, size_t *len)
{
    skip_ws(c);
    if (c->i >= c->n || (c->s[c->i] != '\'' && c->s[c->i] != '"'))
        return scan_fail(c, "expected a quoted string");
    char q = c->s[c->i++];
    size_t start = c->i;
    while (c->i < c->n && c->s[c->i] != q) {
        if (c->s[c->i] == '\\' || c->s[c->i] == '\n')
            return scan_fail(c, "unsupported character in string");
        c->i++;
    }
    if (c->i >= c->n)
        return scan_fail(c, "unterminated string");
    *str = c->s + start;
    *len = c->i - start;
    c->i++;
    return 0;
}

static int scan_word(scan *c, const char *w)
{
    size_t n = strlen(w);
    if (c->n - c->i >= n && memcmp(c->s + c->i, w, n) == 0) {
        c->i += n;
        return 1;
    }
    return 0;
}

static int scan_bool(scan *c, int *v)
{
    skip_ws(c);
    if (scan_word(c, "True"))
        *v = 1;
    else if (scan_word(c, "False"))
        *v = 0;
    else
        return scan_fail(c, "fortran_order must be True or False");
    return 0;
}

/* A non-negative decimal integer (Python 2 headers may append 'L'). */
static int scan_dim(scan *c, int64_t *v)
{
    skip_ws(c);
    if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9')
        return scan_fail(c, "expected a non-negative integer dimension");
    int64_t x = 0;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
        if (x > (INT64_MAX - 9) / 10)
            return fail(c->err, "bad header: dimension too large");
        x = x * 10 + (c->s[c->i++] - '0');
    }
    if (c->i < c->n && c->s[c->i] == 'L')
        c->i++;
    *v = x;
    return 0;
}

/* "()", "(5,)", "(2, 3)", "(2, 3,)". "(5)" is the integer 5 in Python, not a tuple. */
static int scan_shape(scan *c, int *ndim, int64_t *shape)
{
    if (!eat(c, '('))
        return scan_fail(c, "shape must be a tuple");
    int n = 0, comma = 0;
    while (!eat(c, ')')) {
        if (n > 0 && !comma)
            return scan_fail(c, "expected ',' or ')' in shape");
        if (n == ATTN_NPY_MAXDIM)
            return fail(c->err, "bad header: more than %d dimensions", ATTN_NPY_MAXDIM);
        if (scan_dim(c, &shape[n++]))
            return -1;
        comma = eat(c, ',');
    }
    if (n == 1 && !comma)
        return fail(c->err, "bad header: shape (%lld) is not a tuple (a 1-tuple is written "
                            "(%lld,))", (long long)shape[0], (long long)shape[0]);
    *ndim = n;
    return 0;
}

typedef struct npy_header {
    attn_npy_dtype dtype;
    int swap, fortran, ndim;
    int64_t shape[ATTN_NPY_MAXDIM];
} npy_header;

/* One "key: value" item; *seen collects the keys found (bits 1, 2, 4). */
static int scan_item(scan *c, npy_header *h, unsigned *seen)
{
    const char *key, *val;
    size_t klen, vlen;
    if (scan_string(c, &key, &klen))
        return -1;
    if (!eat(c, ':'))
        return scan_fail(c, "expected ':' after a key");
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    unsigned k = 0;
    while (k < 3 && !(strlen(keys[k]) == klen && memcmp(keys[k], key, klen) == 0))
        k++;
    if (k == 3)
        return fail(c->err, "bad header: unknown key '%.*s' (expected descr, fortran_order, "
                            "shape)", (int)(klen > 32 ? 32 : klen), key);
    if (*seen & (1u << k))
        return fail(c->err, "bad header: duplicate key '%s'", keys[k]);
    *seen |= 1u << k;
    if (k == 0) {
        skip_ws(c);
        if (c->i < c->n && (c->s[c->i] == '[' || c->s[c->i] == '{'))
            return fail(c->err, "unsupported descr: structured dtypes are not supported");
        if (scan_string(c, &val, &vlen))
            return -1;
        return parse_descr(val, vlen, &h->dtype, &h->swap, c->err);
    }
    if (k == 1)
        return scan_bool(c, &h->fortran);
    return scan_shape(c, &h->ndim, h->shape);
}

/* The whole dict, then only whitespace. */
static int scan_header(const char *s, size_t n, npy_header *h, char *err)
{
    scan c = {s, n, 0, err};
    unsigned seen = 0;
    if (!eat(&c, '{'))
        return scan_fail(&c, "header is not a dict: expected '{'");
    if (!eat(&c, '}')) {
        for (;;) {
            if (scan_item(&c, h, &seen))
                return -1;
            if (eat(&c, '}'))
                break;
            if (!eat(&c, ','))
                return scan_fail(&c, "expected ',' or '}'");
            if (eat(&c, '}')) /* trailing comma */
                break;
        }
    }
    skip_ws(&c);
    if (c.i != c.n)
        return scan_fail(&c, "unexpected text after the header dict");
    if (seen != 7)
        return fail(err, "bad header: missing key '%s'",
                    !(seen & 1) ? "descr" : !(seen & 2) ? "fortran_order" : "shape");
    return 0;
}

/* ---- decoding ------------------------------------------------------------------------------- */

static uint32_t le_u32(const unsigned char *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Magic, version, header; *data_off is where the data starts. */
static int parse_preamble(const unsigned char *b, size_t len, npy_header *h, size_t *data_off,
                          char *err)
{
    if (len < 10 || memcmp(b, npy_magic, 6) != 0)
        return fail(err, "not a .npy file (bad magic)");
    int major = b[6], minor = b[7];
    if (minor != 0 || major < 1 || major > 3)
        return fail(err, "unsupported .npy format version %d.%d (1.0, 2.0, 3.0 supported)",
                    major, minor);
    size_t pre = major == 1 ? 10 : 12;
    if (len < pre)
        return fail(err, "truncated header length field");
    size_t hlen = le_u32(b + 8, major == 1 ? 2 : 4);
    if (hlen > len - pre)
        return fail(err, "header length %zu runs past the end of the file (%zu bytes)", hlen,
                    len);
    *data_off = pre + hlen;
    return scan_header((const char *)b + pre, hlen, h, err);
}

/* Count of elements and data bytes. As in NumPy, the product of the nonzero dims (times the item
 * size) must fit whatever the order of the dims, and a zero dim makes the array empty; so no
 * partial product of the shape (a stride) overflows either. */
static int shape_size(const npy_header *h, int64_t *count, size_t *bytes, char *err)
{
    int64_t n = 1;
    int empty = 0;
    for (int d = 0; d < h->ndim; d++) {
        if (h->shape[d] == 0)
            empty = 1;
        else if (__builtin_mul_overflow(n, h->shape[d], &n))
            return fail(err, "shape product overflows");
    }
    size_t b;
    if ((uint64_t)n > SIZE_MAX || __builtin_mul_overflow((size_t)n, attn_npy_dtype_size(h->dtype),
                                                         &b))
        return fail(err, "array size overflows");
    *count = empty ? 0 : n;
    *bytes = empty ? 0 : b;
    return 0;
}

static void byteswap(void *data, int64_t count, size_t size)
{
    unsigned char *p = data;
    for (int64_t i = 0; i < count; i++, p += size)
        for (size_t j = 0; j < size / 2; j++) {
            unsigned char t = p[j];
            p[j] = p[size - 1 - j];
            p[size - 1 - j] = t;
        }
}

/* Element strides of the memory order, from the fastest dim on: partial products of the shape
 * (no overflow, see shape_size). */
static void set_strides(attn_npy *a)
{
    int64_t s = 1;
    for (int k = 0; k < a->ndim; k++) {
        int d = a->fortran_order ? k : a->ndim - 1 - k;
        a->stride[d] = s;
        s *= a->shape[d];
    }
}

/* Decode buf (malloc'd, len bytes). With own != 0 the buffer is taken over (data moved to its
 * front, so a big file is never held twice) and freed on error; else the data is copied. */
static int decode(unsigned char *buf, size_t len, int own, attn_npy *a, char *err)
{
    npy_header h;
    memset(&h, 0, sizeof h);
    memset(a, 0, sizeof *a);
    size_t off = 0, bytes = 0;
    int64_t count = 0;
    if (parse_preamble(buf, len, &h, &off, err) || shape_size(&h, &count, &bytes, err))
        goto fail;
    if (len - off < bytes) {
        fail(err, "truncated data: shape needs %zu bytes, file has %zu", bytes, len - off);
        goto fail;
    }
    if (len - off > bytes) {
        fail(err, "trailing garbage: %zu bytes after the data", len - off - bytes);
        goto fail;
    }
    void *data;
    if (own) {
        memmove(buf, buf + off, bytes);
        data = bytes ? realloc(buf, bytes) : buf;
        if (!data)
            data = buf;
    } else {
        data = malloc(bytes ? bytes : 1);
        if (!data) {
            fail(err, "out of memory (%zu bytes)", bytes);
            goto fail;
        }
        memcpy(data, buf + off, bytes);
    }
    if (h.swap)
        byteswap(data, count, attn_npy_dtype_size(h.dtype));
    a->dtype = h.dtype;
    a->ndim = h.ndim;
    memcpy(a->shape, h.shape, sizeof h.shape);
    a->fortran_order = h.fortran;
    a->count = count;
    a->data = data;
    set_strides(a);
    return 0;
fail:
    if (own)
        free(buf);
    return -1;
}

int attn_npy_parse(const void *buf, size_t len, attn_npy *a, char *err)
{
    return decode((unsigned char *)buf, len, 0, a, err);
}

int attn_npy_parse_owned(void *buf, size_t len, attn_npy *a, char *err)
{
    return decode(buf, len, 1, a, err);
}

/* Whole file into memory; works for pipes too (no size query). */
static int read_all(FILE *f, unsigned char **out, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *nb = cap <= SIZE_MAX / 2 ? realloc(b, cap * 2) : NULL;
        if (!nb) {
            free(b);
            b = NULL;
            errno = ENOMEM;
            break;
        }
        b = nb;
        cap *= 2;
    }
    if (!b || ferror(f)) {
        free(b);
        return -1;
    }
    *out = b;
    *len = n;
    return 0;
}

int attn_npy_load(const char *path, attn_npy *a, char *err)
{
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, "%s: %s", path, strerror(errno));
    unsigned char *buf;
    size_t len;
    int rc = read_all(f, &buf, &len);
    int saved = errno;
    fclose(f);
    if (rc)
        return fail(err, "%s: read error: %s", path, strerror(saved));
    char msg[ATTN_NPY_ERRLEN];
    if (attn_npy_parse_owned(buf, len, a, msg))
        return fail(err, "%s: %s", path, msg);
    return 0;
}

void attn_npy_free(attn_npy *a)
{
    if (a) {
        free(a->data);
        a->data = NULL;
    }
}

/* ---- writing -------------------------------------------------------------------------------- */

void attn_npy_shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < n)
        snprintf(buf + k, n - k, ndim == 1 ? ",)" : ")");
}

static const char *descr_of(attn_npy_dtype t)
{
    static const char *const le[] = {"<f4", "<f2", "<f8", "<u2", "|u1", "|b1", "<i4", "<i8"};
    static const char *const be[] = {">f4", ">f2", ">f8", ">u2", "|u1", "|b1", ">i4", ">i8"};
    return host_is_little() ? le[t] : be[t];
}

int attn_npy_save(const char *path, attn_npy_dtype t, int ndim, const int64_t *shape,
                  const void *data, char *err)
{
    if ((unsigned)t > ATTN_NPY_I64 || ndim < 0 || ndim > ATTN_NPY_MAXDIM)
        return fail(err, "%s: bad dtype or rank to write", path);
    npy_header h = {.dtype = t, .ndim = ndim};
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return fail(err, "%s: negative dimension", path);
        h.shape[d] = shape[d];
    }
    int64_t count = 0;
    size_t bytes = 0;
    if (shape_size(&h, &count, &bytes, err))
        return -1;
    char shp[ATTN_NPY_MAXDIM * 22 + 4], hdr[ATTN_NPY_MAXDIM * 22 + 128];
    attn_npy_shape_str(ndim, shape, shp, sizeof shp);
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr_of(t), shp);
    /* pad with spaces so that magic + length + header is a multiple of 64, ending in '\n' */
    size_t total = ((size_t)n + 10 + 1 + 63) / 64 * 64;
    size_t hlen = total - 10;
    memset(hdr + n, ' ', hlen - (size_t)n - 1);
    hdr[hlen - 1] = '\n';
    unsigned char pre[10];
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail(err, "%s: %s", path, strerror(errno));
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, hlen, f) == hlen &&
             (bytes == 0 || fwrite(data, 1, bytes, f) == bytes);
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        remove(path);
        return fail(err, "%s: write error: %s", path, strerror(saved));
    }
    return 0;
}

/* ---- element access and conversion ---------------------------------------------------------- */

int64_t attn_npy_offset(const attn_npy *a, int64_t i)
{
    if (!a->fortran_order)
        return i;
    int64_t off = 0;
    for (int d = a->ndim - 1; d >= 0; d--) {
        if (a->shape[d] == 0)
            return 0;
        off += (i % a->shape[d]) * a->stride[d];
        i /= a->shape[d];
    }
    return off;
}

double attn_npy_get(const attn_npy *a, int64_t off, int bf16)
{
    const unsigned char *p = (const unsigned char *)a->data + (size_t)off * attn_npy_dtype_size(a->dtype);
    uint16_t h;
    float f;
    double d;
    switch (a->dtype) {
    case ATTN_NPY_F32: memcpy(&f, p, 4); return f;
    case ATTN_NPY_F64: memcpy(&d, p, 8); return d;
    case ATTN_NPY_F16: memcpy(&h, p, 2); return attn_load_f64(&h, ATTN_F16, 0);
    case ATTN_NPY_U16: memcpy(&h, p, 2); return bf16 ? attn_load_f64(&h, ATTN_BF16, 0) : h;
    case ATTN_NPY_U8:
    case ATTN_NPY_BOOL: return *p;
    case ATTN_NPY_I32: { int32_t i; memcpy(&i, p, 4); return i; }
    case ATTN_NPY_I64: { int64_t i; memcpy(&i, p, 8); return (double)i; }
    }
    return 0.0;
}

void attn_npy_to_f64(const attn_npy *a, int bf16, double *dst)
{
    for (int64_t i = 0; i < a->count; i++)
        dst[i] = attn_npy_get(a, attn_npy_offset(a, i), bf16);
}

/* f64 -> f32 in place: element i's float lands in bytes [4i, 4i+4), which only overlap doubles
 * already read. */
static int64_t f64_to_f32_inplace(attn_npy *a)
{
    unsigned char *p = a->data;
    int64_t inexact = 0;
    for (int64_t i = 0; i < a->count; i++) {
        double d;
        memcpy(&d, p + 8 * i, 8);
        float f = (float)d;
        inexact += (double)f != d && d == d;
        memcpy(p + 4 * i, &f, 4);
    }
    if (a->count > 0) {
        void *shrunk = realloc(a->data, (size_t)a->count * 4);
        if (shrunk)
            a->data = shrunk;
    }
    a->dtype = ATTN_NPY_F32;
    return inexact;
}

int attn_npy_as_float_tensor(attn_npy *a, int bf16, attn_dtype *t, int64_t *inexact, char *err)
{
    *inexact = 0;
    switch (a->dtype) {
    case ATTN_NPY_F32: *t = ATTN_F32; return 0;
    case ATTN_NPY_F16: *t = ATTN_F16; return 0;
    case ATTN_NPY_F64:
        *inexact = f64_to_f32_inplace(a);
        *t = ATTN_F32;
        return 0;
    case ATTN_NPY_U16:
        if (!bf16)
            return fail(err, "uint16 data: pass --bf16 to read it as bfloat16");
        *t = ATTN_BF16;
        return 0;
    default:
        return fail(err, "%s data where floating point (f32, f16, f64, bf16) is needed",
                    attn_npy_dtype_name(a->dtype));
    }
}
