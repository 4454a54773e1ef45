/* fuzz_npy.c - the .npy reader (tools/attn_npy.c) on arbitrary bytes, through both entry points:
 * attn_npy_parse (copies the data) and attn_npy_parse_owned (takes the buffer over, as the file
 * reader does). Asserts, besides no crash, UB or leak: both agree; a rejection leaves the array
 * empty with a message; an accepted array is self-consistent: a known dtype, 0 <= ndim <= 64,
 * count = product of the shape, the strides of its order, every element's offset inside the data
 * (each exactly once), the data = the bytes after the header (as stored or byte-swapped), and
 * the element readers and conversions run over all of it. */
#include "attn_npy.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_WALK = 1 << 14 }; /* elements walked one by one (bigger arrays: the first ones) */

/* Where the data starts according to the preamble (the parser accepted it, so it is there). */
static size_t data_offset(const uint8_t *b)
{
    size_t hlen = b[6] == 1 ? (size_t)b[8] | (size_t)b[9] << 8
                            : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
                                  (size_t)b[11] << 24;
    return (b[6] == 1 ? 10 : 12) + hlen;
}

/* Data bytes equal the file's, either as stored or with each element's bytes reversed. */
static int same_data(const uint8_t *file, const uint8_t *data, size_t bytes, size_t esz)
{
    if (memcmp(file, data, bytes) == 0)
        return 1;
    for (size_t i = 0; i < bytes; i++)
        if (data[i] != file[i - i % esz + (esz - 1 - i % esz)])
            return 0;
    return 1;
}

static void check_shape(const attn_npy *a)
{
    FUZZ_CHECK(a->ndim >= 0 && a->ndim <= ATTN_NPY_MAXDIM, "ndim %d", a->ndim);
    int64_t nonzero = 1, count = 1; /* NumPy's rule: the nonzero dims' product fits */
    for (int d = 0; d < a->ndim; d++) {
        FUZZ_CHECK(a->shape[d] >= 0, "shape[%d] = %lld", d, (long long)a->shape[d]);
        FUZZ_CHECK(!__builtin_mul_overflow(nonzero, a->shape[d] ? a->shape[d] : 1, &nonzero),
                   "accepted a shape whose nonzero dims overflow");
        count *= a->shape[d];
    }
    FUZZ_CHECK(a->count == count, "count %lld, shape product %lld", (long long)a->count,
               (long long)count);
    /* Strides of C (last dim fastest) or Fortran (first dim fastest) order. */
    int64_t s = 1;
    for (int k = 0; k < a->ndim; k++) {
        int d = a->fortran_order ? k : a->ndim - 1 - k;
        FUZZ_CHECK(a->stride[d] == s, "stride[%d] = %lld, want %lld", d,
                   (long long)a->stride[d], (long long)s);
        s *= a->shape[d]; /* a partial product: at most `nonzero` or 0 */
    }
}

/* attn_npy_offset maps the C-order indices onto the storage offsets one to one. */
static void check_offsets(const attn_npy *a)
{
    int64_t n = a->count < MAX_WALK ? a->count : MAX_WALK;
    uint8_t *seen = n == a->count && n > 0 ? calloc((size_t)n, 1) : NULL;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = attn_npy_offset(a, i);
        FUZZ_CHECK(off >= 0 && off < a->count, "element %lld at offset %lld of %lld",
                   (long long)i, (long long)off, (long long)a->count);
        if (seen) {
            FUZZ_CHECK(!seen[off], "offset %lld used twice", (long long)off);
            seen[off] = 1;
        }
    }
    free(seen);
}

static void check_readers(attn_npy *a)
{
    if (a->count > 0 && a->count <= MAX_WALK) {
        double *v = malloc(sizeof(double) * (size_t)a->count);
        FUZZ_CHECK(v != NULL, "out of memory");
        attn_npy_to_f64(a, 0, v);
        attn_npy_to_f64(a, 1, v);
        free(v);
    }
    char shp[ATTN_NPY_MAXDIM * 22 + 4], small[8];
    attn_npy_shape_str(a->ndim, a->shape, shp, sizeof shp);
    attn_npy_shape_str(a->ndim, a->shape, small, sizeof small);
    FUZZ_CHECK(strlen(shp) < sizeof shp && strncmp(shp, small, strlen(small)) == 0,
               "shape text '%s' / '%s'", shp, small);
    /* In place as a float tensor (f64 shrinks to f32): same count, readable afterwards. */
    attn_dtype t;
    int64_t inexact, count = a->count;
    char err[ATTN_NPY_ERRLEN];
    if (attn_npy_as_float_tensor(a, 1, &t, &inexact, err) == 0) {
        FUZZ_CHECK(a->count == count && inexact >= 0 && inexact <= count, "conversion");
        if (count > 0)
            (void)attn_npy_get(a, attn_npy_offset(a, count - 1), 1);
    } else {
        FUZZ_CHECK(err[0] != '\0', "conversion refused without a message");
    }
}

static void check_accepted(attn_npy *a, const uint8_t *buf, size_t len)
{
    size_t esz = attn_npy_dtype_size(a->dtype);
    FUZZ_CHECK(esz > 0, "unknown dtype %d", (int)a->dtype);
    FUZZ_CHECK(a->data != NULL, "accepted without data");
    check_shape(a);
    size_t off = data_offset(buf);
    FUZZ_CHECK(off <= len && len - off == (size_t)a->count * esz,
               "data bytes %zu after offset %zu, count %lld x %zu", len - off, off,
               (long long)a->count, esz);
    FUZZ_CHECK(same_data(buf + off, a->data, len - off, esz), "data differs from the file");
    check_offsets(a);
}

static void check_same(const attn_npy *a, const attn_npy *b)
{
    FUZZ_CHECK(a->dtype == b->dtype && a->ndim == b->ndim && a->count == b->count &&
                   a->fortran_order == b->fortran_order,
               "the two entry points disagree");
    FUZZ_CHECK(memcmp(a->shape, b->shape, sizeof a->shape) == 0 &&
                   memcmp(a->stride, b->stride, sizeof a->stride) == 0 &&
                   memcmp(a->data, b->data, (size_t)a->count * attn_npy_dtype_size(a->dtype)) == 0,
               "the two entry points disagree on shape, strides or data");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    attn_npy a, b;
    char err[ATTN_NPY_ERRLEN] = "", err2[ATTN_NPY_ERRLEN] = "";
    int rc = attn_npy_parse(data, size, &a, err);
    uint8_t *own = malloc(size ? size : 1);
    FUZZ_CHECK(own != NULL, "out of memory");
    memcpy(own, data, size);
    int rc2 = attn_npy_parse_owned(own, size, &b, err2); /* own is b.data or freed now */
    FUZZ_CHECK(rc == rc2 && (rc == 0 || rc == -1), "parse %d, parse_owned %d", rc, rc2);
    if (rc != 0) {
        FUZZ_CHECK(err[0] != '\0' && strcmp(err, err2) == 0, "messages '%s' / '%s'", err, err2);
        FUZZ_CHECK(a.data == NULL && b.data == NULL, "rejected array holds data");
        return 0;
    }
    check_accepted(&a, data, size);
    check_same(&a, &b);
    check_readers(&a);
    attn_npy_free(&a);
    attn_npy_free(&b);
    return 0;
}
