/* check_npy.c - .npy I/O (round trips, header edge cases, every malformation class, a mutation
 * fuzz loop), the strict option parsers, and `attn run` / `attn compare` driven in-process on
 * files in a temporary directory, checked against attn_sdpa_forward called directly. */
#include "attn/attn.h"
#include "attn_args.h"
#include "sdpa_tool.h"
#include "attn_cmds.h"
#include "attn_half.h"
#include "attn_npy.h"
#include "ref_sdpa.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- temporary directory (one per test, removed afterwards) --------------------------------- */

static char tmpdir[64];

static void tmp_setup(void)
{
    strcpy(tmpdir, "/tmp/attn_npy_XXXXXX");
    ck_assert(mkdtemp(tmpdir) != NULL);
}

static void tmp_teardown(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char p[384];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(tmpdir);
}

/* Path of a file in the temp dir; a small ring of buffers so several can be live at once. */
static char *tpath(const char *name)
{
    static char ring[16][256];
    static int k;
    char *p = ring[k++ % 16];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

/* ---- raw .npy images ------------------------------------------------------------------------ */

/* magic, version major.0, header length (2 or 4 bytes), header text, then data. */
static unsigned char *make_npy(int major, const char *hdr, const void *data, size_t nbytes,
                               size_t *len)
{
    size_t hl = strlen(hdr), pre = major == 1 ? 10 : 12;
    *len = pre + hl + nbytes;
    unsigned char *b = malloc(*len ? *len : 1);
    ck_assert(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + pre, hdr, hl);
    if (nbytes)
        memcpy(b + pre + hl, data, nbytes);
    return b;
}

/* Parse an image through an exactly-sized heap copy (so ASan sees any overread). */
static int parse_exact(const unsigned char *img, size_t len, attn_npy *a, char *err)
{
    unsigned char *copy = malloc(len ? len : 1);
    ck_assert(copy);
    memcpy(copy, img, len);
    int rc = attn_npy_parse(copy, len, a, err);
    free(copy);
    return rc;
}

static int parse_hdr(int major, const char *hdr, const void *data, size_t nbytes, attn_npy *a,
                     char *err)
{
    size_t len;
    unsigned char *img = make_npy(major, hdr, data, nbytes, &len);
    int rc = parse_exact(img, len, a, err);
    free(img);
    return rc;
}

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- round trips ---------------------------------------------------------------------------- */

START_TEST(roundtrip_all_dtypes_and_shapes)
{
    static const attn_npy_dtype types[] = {ATTN_NPY_F32, ATTN_NPY_F16, ATTN_NPY_F64,
                                           ATTN_NPY_U16, ATTN_NPY_U8, ATTN_NPY_BOOL};
    static const struct { int ndim; int64_t shape[5]; } shapes[] = {
        {0, {0}}, {1, {5}}, {2, {2, 3}}, {4, {1, 2, 3, 4}}, {2, {0, 3}}, {5, {2, 1, 3, 1, 2}},
    };
    unsigned char data[8 * 48];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 37 + 11) % 2 ? (unsigned char)(i * 37 + 11) : 1;
    for (size_t t = 0; t < 6; t++)
        for (size_t s = 0; s < 6; s++) {
            char err[ATTN_NPY_ERRLEN], *p = tpath("rt.npy");
            size_t sz = attn_npy_dtype_size(types[t]);
            ck_assert_int_eq(attn_npy_save(p, types[t], shapes[s].ndim, shapes[s].shape, data,
                                           err), 0);
            attn_npy a;
            ck_assert_msg(attn_npy_load(p, &a, err) == 0, "%s", err);
            int64_t count = 1;
            for (int d = 0; d < shapes[s].ndim; d++)
                count *= shapes[s].shape[d];
            ck_assert_int_eq(a.dtype, types[t]);
            ck_assert_int_eq(a.ndim, shapes[s].ndim);
            ck_assert_int_eq(a.count, count);
            ck_assert_int_eq(a.fortran_order, 0);
            for (int d = 0; d < a.ndim; d++)
                ck_assert_int_eq(a.shape[d], shapes[s].shape[d]);
            ck_assert(memcmp(a.data, data, (size_t)count * sz) == 0);
            attn_npy_free(&a);
            /* the header is 64-byte aligned, version 1.0 */
            FILE *f = fopen(p, "rb");
            unsigned char pre[10];
            ck_assert_uint_eq(fread(pre, 1, 10, f), 10);
            fclose(f);
            ck_assert_int_eq(pre[6], 1);
            ck_assert_int_eq((10 + pre[8] + 256 * pre[9]) % 64, 0);
        }
}
END_TEST

START_TEST(written_header_text)
{
    char err[ATTN_NPY_ERRLEN], *p = tpath("h.npy");
    int64_t shape[1] = {7};
    float x[7] = {0};
    ck_assert_int_eq(attn_npy_save(p, ATTN_NPY_F32, 1, shape, x, err), 0);
    char buf[129] = {0};
    FILE *f = fopen(p, "rb");
    ck_assert_uint_eq(fread(buf, 1, 128, f), 128); /* 10 + 58 + padding: two 64-byte lines */
    fclose(f);
    ck_assert_msg(strstr(buf + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }"),
                  "header: %s", buf + 10);
    ck_assert_int_eq(buf[127], '\n');
}
END_TEST

/* ---- header parsing edge cases -------------------------------------------------------------- */

START_TEST(header_edge_cases)
{
    char err[ATTN_NPY_ERRLEN];
    attn_npy a;
    float x[6] = {1, 2, 3, 4, 5, 6};
    /* any key order, whitespace, double quotes, no trailing comma */
    ck_assert_msg(parse_hdr(1, " { \"shape\" :(2,3) ,'fortran_order':False,\t'descr':'<f4'}  \n",
                            x, 24, &a, err) == 0, "%s", err);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_int_eq(a.shape[1], 3);
    attn_npy_free(&a);
    /* 1-tuple, trailing commas, Python 2 long suffix, versions 2.0 and 3.0 */
    ck_assert_msg(parse_hdr(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6L,),}\n", x,
                            24, &a, err) == 0, "%s", err);
    ck_assert_int_eq(a.ndim, 1);
    ck_assert_int_eq(a.shape[0], 6);
    attn_npy_free(&a);
    ck_assert(parse_hdr(3, "{'descr':'<f4','fortran_order':False,'shape':( 2 , 3 , ),}", x, 24,
                        &a, err) == 0);
    attn_npy_free(&a);
    /* empty shape: a scalar */
    ck_assert(parse_hdr(1, "{'descr':'<f4','fortran_order':False,'shape':()}", x, 4, &a, err) ==
              0);
    ck_assert_int_eq(a.ndim, 0);
    ck_assert_int_eq(a.count, 1);
    ck_assert_float_eq(*(float *)a.data, 1.0f);
    attn_npy_free(&a);
    /* zero-size array with no data */
    ck_assert(parse_hdr(1, "{'descr':'<f8','fortran_order':False,'shape':(0, 4)}", x, 0, &a,
                        err) == 0);
    ck_assert_int_eq(a.count, 0);
    attn_npy_free(&a);
    /* empty dict is a dict, but keys are missing */
    ck_assert(parse_hdr(1, "{}", NULL, 0, &a, err) < 0);
    ck_assert_msg(strstr(err, "missing key"), "%s", err);
}
END_TEST

START_TEST(header_fortran_order)
{
    char err[ATTN_NPY_ERRLEN];
    attn_npy a;
    /* 2x3 array [[0,1,2],[3,4,5]] stored column-major */
    float col[6] = {0, 3, 1, 4, 2, 5};
    ck_assert(parse_hdr(1, "{'descr':'<f4','fortran_order':True,'shape':(2,3)}", col, 24, &a,
                        err) == 0);
    ck_assert_int_eq(a.fortran_order, 1);
    ck_assert_int_eq(a.stride[0], 1);
    ck_assert_int_eq(a.stride[1], 2);
    double v[6];
    attn_npy_to_f64(&a, 0, v);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(v[i], i);
    attn_npy_free(&a);
}
END_TEST

/* Empty arrays are judged as NumPy does, whatever the order of the dims: the nonzero dims'
 * product must fit (an empty array whose other dims overflow was accepted when the zero came
 * first, and computing its strides overflowed; tests/fuzz/regressions/npy/). */
START_TEST(empty_array_huge_dims)
{
    static const char *const huge[] = {
        "{'descr':'|u1','fortran_order':False,'shape':(0,1099511627776,1099511627776,16777216)}",
        "{'descr':'|u1','fortran_order':True,'shape':(16777216,1099511627776,1099511627776,0)}"};
    char err[ATTN_NPY_ERRLEN];
    attn_npy a;
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(parse_hdr(1, huge[k], NULL, 0, &a, err), -1);
        ck_assert_msg(strstr(err, "overflows"), "%s", err);
        ck_assert_ptr_null(a.data);
    }
    ck_assert_msg(parse_hdr(1, "{'descr':'|u1','fortran_order':True,'shape':(0,1099511627776,"
                               "1048576)}", NULL, 0, &a, err) == 0, "%s", err);
    ck_assert_int_eq(a.count, 0);
    ck_assert_int_eq(a.stride[0], 1);
    ck_assert_int_eq(a.stride[1], 0);
    ck_assert_int_eq(a.stride[2], 0);
    attn_npy_free(&a);
}
END_TEST

/* attn_npy_parse_owned, the file reader's path, takes the buffer over: it becomes the data on
 * success and is freed on error (LeakSanitizer checks that under the sanitizer build). */
START_TEST(parse_owned)
{
    size_t len;
    float x[2] = {1.5f, -2.0f};
    char err[ATTN_NPY_ERRLEN];
    attn_npy a;
    unsigned char *img = make_npy(2, "{'descr':'<f4','fortran_order':False,'shape':(2,)}", x, 8,
                                  &len);
    ck_assert_msg(attn_npy_parse_owned(img, len, &a, err) == 0, "%s", err);
    ck_assert_int_eq(a.count, 2);
    ck_assert(memcmp(a.data, x, sizeof x) == 0);
    attn_npy_free(&a);
    img = make_npy(2, "{'descr':'<f4','fortran_order':False,'shape':(3,)}", x, 8, &len);
    ck_assert(attn_npy_parse_owned(img, len, &a, err) < 0 && strstr(err, "truncated data"));
    ck_assert_ptr_null(a.data);
}
END_TEST

START_TEST(header_byte_orders)
{
    char err[ATTN_NPY_ERRLEN];
    attn_npy a;
    unsigned char be4[8] = {0x3f, 0x80, 0, 0, 0xc0, 0x00, 0, 0}; /* 1.0f, -2.0f big-endian */
    ck_assert(parse_hdr(1, "{'descr':'>f4','fortran_order':False,'shape':(2,)}", be4, 8, &a,
                        err) == 0);
    ck_assert_float_eq(((float *)a.data)[0], 1.0f);
    ck_assert_float_eq(((float *)a.data)[1], -2.0f);
    attn_npy_free(&a);
    unsigned char be8[8] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0}; /* 1.5 */
    ck_assert(parse_hdr(1, "{'descr':'>f8','fortran_order':False,'shape':()}", be8, 8, &a,
                        err) == 0);
    ck_assert_double_eq(*(double *)a.data, 1.5);
    attn_npy_free(&a);
    unsigned char be2[2] = {0x3c, 0x00}; /* f16 1.0 */
    ck_assert(parse_hdr(1, "{'descr':'>f2','fortran_order':False,'shape':(1,)}", be2, 2, &a,
                        err) == 0);
    ck_assert_double_eq(attn_npy_get(&a, 0, 0), 1.0);
    attn_npy_free(&a);
    unsigned char b[3] = {0, 1, 2};
    static const char *const one_byte[] = {"|b1", "|u1", "<u1", ">b1"};
    for (int k = 0; k < 4; k++) {
        char h[96];
        snprintf(h, sizeof h, "{'descr':'%s','fortran_order':False,'shape':(3,)}", one_byte[k]);
        ck_assert_msg(parse_hdr(1, h, b, 3, &a, err) == 0, "%s: %s", one_byte[k], err);
        ck_assert_int_eq(a.dtype, k == 0 || k == 3 ? ATTN_NPY_BOOL : ATTN_NPY_U8);
        attn_npy_free(&a);
    }
    /* bf16 as uint16: read as integer unless asked */
    uint16_t u = 0x3fc0; /* bf16 1.5 */
    ck_assert(parse_hdr(1, "{'descr':'<u2','fortran_order':False,'shape':()}", &u, 2, &a, err) ==
              0);
    ck_assert_double_eq(attn_npy_get(&a, 0, 1), 1.5);
    ck_assert_double_eq(attn_npy_get(&a, 0, 0), 0x3fc0);
    attn_npy_free(&a);
}
END_TEST

/* ---- malformed files ------------------------------------------------------------------------ */

typedef struct bad_header {
    int major;
    const char *hdr;
    size_t nbytes; /* data bytes appended */
    const char *expect; /* substring of the message */
} bad_header;

static const bad_header bad_headers[] = {
    {1, "[1, 2]", 0, "not a dict"},
    {1, "", 0, "not a dict"},
    {1, "{'descr':'<f4','fortran_order':False}", 0, "missing key 'shape'"},
    {1, "{'descr':'<f4','shape':(1,)}", 4, "missing key 'fortran_order'"},
    {1, "{'descr':'<f4','descr':'<f4','fortran_order':False,'shape':(1,)}", 4, "duplicate"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(1,),'extra':1}", 4, "unknown key"},
    {1, "{'descr':'<i4','fortran_order':False,'shape':(1,)}", 4, "unsupported descr"},
    {1, "{'descr':'<c8','fortran_order':False,'shape':(1,)}", 8, "unsupported descr"},
    {1, "{'descr':'<fx4','fortran_order':False,'shape':(1,)}", 4, "unsupported descr"},
    {1, "{'descr':'','fortran_order':False,'shape':(1,)}", 4, "unsupported descr"},
    {1, "{'descr':'f4','fortran_order':False,'shape':(1,)}", 4, "unsupported descr"},
    {1, "{'descr':'<f16','fortran_order':False,'shape':(1,)}", 16, "unsupported descr"},
    {1, "{'descr':'|f4','fortran_order':False,'shape':(1,)}", 4, "byte order"},
    {1, "{'descr':[('a','<f4')],'fortran_order':False,'shape':(1,)}", 4, "structured"},
    {1, "{'descr':'<f4','fortran_order':false,'shape':(1,)}", 4, "True or False"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(5)}", 20, "not a tuple"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':[5]}", 20, "tuple"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(-1,)}", 4, "non-negative"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(2 3)}", 24, "expected ','"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(99999999999999999999,)}", 4, "too large"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(4294967296,4294967296,4294967296)}", 4,
     "overflow"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(1,)} x", 4, "after the header"},
    {1, "{'descr':'<f4' 'fortran_order':False,'shape':(1,)}", 4, "expected ','"},
    {1, "{'descr:'<f4','fortran_order':False,'shape':(1,)}", 4, "expected ':'"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(1,)", 4, "expected ','"},
    {1, "{'descr':'<f4\n','fortran_order':False,'shape':(1,)}", 4, "string"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(1,)}", 0, "truncated data"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(2,)}", 7, "truncated data"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(1,)}", 5, "trailing garbage"},
    {2, "{'descr':'<f8','fortran_order':False,'shape':(1,)}", 16, "trailing garbage"},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
        "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1)}",
     4, "more than 64"},
};

START_TEST(malformed_headers)
{
    static const unsigned char zeros[32];
    const bad_header *b = &bad_headers[_i];
    char err[ATTN_NPY_ERRLEN] = "";
    attn_npy a;
    ck_assert_msg(parse_hdr(b->major, b->hdr, zeros, b->nbytes, &a, err) < 0, "accepted: %s",
                  b->hdr);
    ck_assert_msg(strstr(err, b->expect), "'%s': message '%s' lacks '%s'", b->hdr, err,
                  b->expect);
    ck_assert_ptr_null(a.data);
}
END_TEST

START_TEST(malformed_preambles)
{
    char err[ATTN_NPY_ERRLEN];
    attn_npy a;
    size_t len;
    unsigned char *img = make_npy(1, "{'descr':'<f4','fortran_order':False,'shape':()}", "abcd",
                                  4, &len);
    /* bad magic */
    img[1] = 'X';
    ck_assert(parse_exact(img, len, &a, err) < 0 && strstr(err, "magic"));
    img[1] = 'N';
    /* unsupported version */
    img[6] = 4;
    ck_assert(parse_exact(img, len, &a, err) < 0 && strstr(err, "version 4.0"));
    img[6] = 1;
    img[7] = 1;
    ck_assert(parse_exact(img, len, &a, err) < 0 && strstr(err, "version"));
    img[7] = 0;
    /* header length beyond the file */
    img[8] = 0xff;
    img[9] = 0x7f;
    ck_assert(parse_exact(img, len, &a, err) < 0 && strstr(err, "header length"));
    /* every truncation of a valid file fails cleanly */
    img[8] = (unsigned char)(len - 14);
    img[9] = 0;
    ck_assert(parse_exact(img, len, &a, err) == 0);
    attn_npy_free(&a);
    for (size_t n = 0; n < len; n++)
        ck_assert_msg(parse_exact(img, n, &a, err) < 0, "truncated to %zu accepted", n);
    free(img);
}
END_TEST

START_TEST(load_errors)
{
    char err[ATTN_NPY_ERRLEN];
    attn_npy a;
    ck_assert(attn_npy_load(tpath("missing.npy"), &a, err) < 0);
    ck_assert_msg(strstr(err, "missing.npy") && strstr(err, "No such file"), "%s", err);
    ck_assert(attn_npy_load(tmpdir, &a, err) < 0); /* a directory */
    write_file(tpath("empty.npy"), "", 0);
    ck_assert(attn_npy_load(tpath("empty.npy"), &a, err) < 0);
    ck_assert_msg(strstr(err, "empty.npy: not a .npy file"), "%s", err);
    write_file(tpath("text.npy"), "hello, world\n", 13);
    ck_assert(attn_npy_load(tpath("text.npy"), &a, err) < 0);
    ck_assert(attn_npy_save(tpath("nodir/x.npy"), ATTN_NPY_F32, 0, NULL, "abcd", err) < 0);
    ck_assert_msg(strstr(err, "nodir"), "%s", err);
}
END_TEST

/* Mutations of a valid image (byte changes, truncation, insertion): parse must never crash or
 * read out of bounds, and anything accepted must be self-consistent. */
START_TEST(fuzz_mutated_headers)
{
    size_t len;
    float x[6] = {1, 2, 3, 4, 5, 6};
    unsigned char *seed = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
                                      "      \n", x, 24, &len);
    static const char alphabet[] = "{}()[],:' \"0123456789LTrueFalse<>|=fubdescr_shape\n\t\x93";
    int iters = getenv("ATTN_TEST_QUICK") ? 4000 : 40000;
    uint64_t s = 0x9e3779b97f4a7c15u;
    unsigned char *buf = malloc(len + 8);
    ck_assert(buf);
    int accepted = 0;
    for (int it = 0; it < iters; it++) {
        memcpy(buf, seed, len);
        size_t n = len;
        int muts = 1 + (int)(s % 4);
        for (int m = 0; m < muts; m++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            size_t pos = (size_t)(s >> 33) % n;
            switch ((s >> 20) % 4) {
            case 0: buf[pos] = alphabet[(s >> 40) % (sizeof alphabet - 1)]; break;
            case 1: buf[pos] = (unsigned char)(s >> 45); break;
            case 2: n = pos + 1; break;
            case 3:
                if (n < len + 8) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = alphabet[(s >> 40) % (sizeof alphabet - 1)];
                    n++;
                }
                break;
            }
        }
        char err[ATTN_NPY_ERRLEN];
        attn_npy a;
        if (parse_exact(buf, n, &a, err) == 0) {
            accepted++;
            int64_t c = 1;
            for (int d = 0; d < a.ndim; d++)
                c *= a.shape[d];
            ck_assert_int_eq(c, a.count);
            ck_assert_uint_le((uint64_t)c * attn_npy_dtype_size(a.dtype), n);
            attn_npy_free(&a);
        } else {
            ck_assert(err[0] != '\0');
        }
    }
    ck_assert_int_gt(accepted, 0); /* e.g. whitespace-only mutations of the padding */
    free(buf);
    free(seed);
}
END_TEST

/* ---- option parsing ------------------------------------------------------------------------- */

START_TEST(strict_numbers)
{
    double x;
    int64_t n;
    ck_assert_int_eq(attn_parse_f64("--x", "0.125", -1, 1, &x), 0);
    ck_assert_double_eq(x, 0.125);
    ck_assert_int_eq(attn_parse_f64("--x", "-1e-3", -1, 1, &x), 0);
    static const char *const bad_f[] = {"", " 1", "1x", "1.0 ", "nan", "inf", "1e999", "2",
                                        "--1", "0x", NULL};
    for (int k = 0; bad_f[k]; k++)
        ck_assert_msg(attn_parse_f64("--x", bad_f[k], -1, 1, &x) < 0, "accepted '%s'", bad_f[k]);
    ck_assert_int_eq(attn_parse_i64("--n", "-1", -1, 100, &n), 0);
    ck_assert_int_eq(n, -1);
    static const char *const bad_i[] = {"", "1.5", "0x10", "12abc", " 3", "101", "-2",
                                        "99999999999999999999", NULL};
    for (int k = 0; bad_i[k]; k++)
        ck_assert_msg(attn_parse_i64("--n", bad_i[k], -1, 100, &n) < 0, "accepted '%s'",
                      bad_i[k]);
}
END_TEST

START_TEST(sdpa_options)
{
    char *argv[] = {"x", "--scale", "0.5", "--causal", "--align=tl", "--window-left", "7",
                    "--window-right=-1", "--softcap", "30", "--other", "--window-left"};
    int argc = (int)(sizeof argv / sizeof argv[0]);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    int i = 1;
    ck_assert_int_eq(attn_args_sdpa(argc, argv, &i, &d), 1); /* --scale 0.5 */
    ck_assert_int_eq(i, 2);
    for (i = 3; i < 10; i++)
        ck_assert_int_eq(attn_args_sdpa(argc, argv, &i, &d), 1);
    ck_assert_float_eq(d.scale, 0.5f);
    ck_assert_int_eq(d.causal, 1);
    ck_assert_int_eq(d.align, ATTN_ALIGN_TOP_LEFT);
    ck_assert_int_eq(d.window_left, 7);
    ck_assert_int_eq(d.window_right, -1);
    ck_assert_float_eq(d.softcap, 30.0f);
    ck_assert_int_eq(attn_args_sdpa(argc, argv, &i, &d), 0); /* --other */
    i = argc - 1;
    ck_assert_int_eq(attn_args_sdpa(argc, argv, &i, &d), -1); /* missing value */
    char *bad[] = {"x", "--align", "middle", "--causal=1", "--softcap", "-1"};
    for (i = 1; i < 6; i++)
        ck_assert_int_eq(attn_args_sdpa(6, bad, &i, &d), -1);
    /* a scale that is 0 in f32 would silently mean 1/sqrt(Dk): an error at the CLI */
    const char *zero[] = {"0", "-0", "1e-50", "1e-40"}; /* 1e-40 is a subnormal f32 */
    for (int z = 0; z < 4; z++) {
        char *args[] = {"x", "--scale", (char *)zero[z]};
        i = 1;
        ck_assert_msg(attn_args_sdpa(3, args, &i, &d) == (z == 3 ? 1 : -1), "%s", zero[z]);
    }
}
END_TEST

/* ---- attn run / attn compare ---------------------------------------------------------------- */

static int call(int (*cmd)(int, char **), ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, cmd);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        ck_assert_int_lt(argc, 63);
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    return cmd(argc, argv);
}
#define RUN(...) call(attn_cmd_run, "run", __VA_ARGS__, (char *)NULL)
#define COMPARE(...) call(attn_cmd_compare, "compare", __VA_ARGS__, (char *)NULL)

static uint64_t rng_state = 12345;

/* Uniform in [-1, 1) on a 2^-6 grid: exact in every storage dtype (bf16 has 8 bits). */
static float urand(void)
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return (float)((int)(rng_state >> 57) - 64) / 64.0f;
}

typedef struct problem {
    int64_t B, Sq, Skv, Hq, Hkv, Dk, Dv;
    float *q, *k, *v, *mask; /* bshd f32, mask [Sq, Skv] */
    uint8_t *bmask;          /* [Sq, Skv] */
} problem;

static void problem_init(problem *p, int64_t B, int64_t Sq, int64_t Skv, int64_t Hq, int64_t Hkv,
                         int64_t Dk, int64_t Dv)
{
    *p = (problem){B, Sq, Skv, Hq, Hkv, Dk, Dv, NULL, NULL, NULL, NULL, NULL};
    p->q = malloc(sizeof(float) * (size_t)(B * Sq * Hq * Dk));
    p->k = malloc(sizeof(float) * (size_t)(B * Skv * Hkv * Dk));
    p->v = malloc(sizeof(float) * (size_t)(B * Skv * Hkv * Dv));
    p->mask = malloc(sizeof(float) * (size_t)(Sq * Skv));
    p->bmask = malloc((size_t)(Sq * Skv));
    ck_assert(p->q && p->k && p->v && p->mask && p->bmask);
    for (int64_t i = 0; i < B * Sq * Hq * Dk; i++)
        p->q[i] = urand();
    for (int64_t i = 0; i < B * Skv * Hkv * Dk; i++)
        p->k[i] = urand();
    for (int64_t i = 0; i < B * Skv * Hkv * Dv; i++)
        p->v[i] = urand();
    for (int64_t i = 0; i < Sq * Skv; i++) {
        p->mask[i] = urand() < -0.8f ? -INFINITY : urand();
        p->bmask[i] = urand() > -0.7f;
    }
}

static void problem_free(problem *p)
{
    free(p->q);
    free(p->k);
    free(p->v);
    free(p->mask);
    free(p->bmask);
}

/* [B, S, H, D] f32 -> [B, H, S, D] */
static float *to_bhsd(const float *x, int64_t B, int64_t S, int64_t H, int64_t D)
{
    float *y = malloc(sizeof(float) * (size_t)(B * S * H * D));
    ck_assert(y);
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t h = 0; h < H; h++)
                memcpy(y + ((b * H + h) * S + s) * D, x + ((b * S + s) * H + h) * D,
                       sizeof(float) * (size_t)D);
    return y;
}

static void save_f32(const char *name, int ndim, const int64_t *shape, const float *x)
{
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_save(tpath(name), ATTN_NPY_F32, ndim, shape, x, err) == 0, "%s", err);
}

/* q/k/v files as bshd (4-D, or 3-D when B is 1 and rank3), bhsd when bhsd. */
static void save_qkv(const problem *p, int bhsd, int rank3)
{
    const float *src[3] = {p->q, p->k, p->v};
    const int64_t S[3] = {p->Sq, p->Skv, p->Skv}, H[3] = {p->Hq, p->Hkv, p->Hkv},
                  D[3] = {p->Dk, p->Dk, p->Dv};
    static const char *const names[3] = {"q.npy", "k.npy", "v.npy"};
    for (int t = 0; t < 3; t++) {
        float *x = bhsd ? to_bhsd(src[t], p->B, S[t], H[t], D[t]) : NULL;
        int64_t shape[4] = {p->B, bhsd ? H[t] : S[t], bhsd ? S[t] : H[t], D[t]};
        save_f32(names[t], 4 - rank3, shape + rank3, x ? x : src[t]);
        free(x);
    }
}

/* attn_sdpa_forward on the problem directly: out bshd f32 [B,Sq,Hq,Dv], lse [B,Hq,Sq]. */
static void direct_forward(const char *backend, const problem *p, attn_sdpa_desc d, int mask,
                           int bmask, float *out, float *lse)
{
    attn_tensor q = attn_tensor_bshd(p->q, ATTN_F32, p->B, p->Sq, p->Hq, p->Dk);
    attn_tensor k = attn_tensor_bshd(p->k, ATTN_F32, p->B, p->Skv, p->Hkv, p->Dk);
    attn_tensor v = attn_tensor_bshd(p->v, ATTN_F32, p->B, p->Skv, p->Hkv, p->Dv);
    attn_tensor o = attn_tensor_bshd(out, ATTN_F32, p->B, p->Sq, p->Hq, p->Dv);
    attn_tensor l = {.data = lse, .dtype = ATTN_F32, .shape = {p->B, p->Sq, p->Hq, 1},
                     .stride = {p->Hq * p->Sq, 1, p->Sq, 1}};
    attn_tensor m = {.data = p->mask, .dtype = ATTN_F32, .shape = {1, p->Sq, 1, p->Skv},
                     .stride = {0, p->Skv, 0, 1}};
    attn_tensor bm = m;
    bm.data = p->bmask;
    bm.dtype = ATTN_U8;
    d.mask_add = mask ? &m : NULL;
    d.mask_bool = bmask ? &bm : NULL;
    attn_backend *be;
    ck_assert_int_eq(attn_backend_open(backend, NULL, &be), ATTN_OK);
    attn_status s = attn_sdpa_forward(be, &d, &q, &k, &v, &o, lse ? &l : NULL);
    ck_assert_msg(s == ATTN_OK, "forward: %s", attn_last_error());
    attn_backend_close(be);
}

/* Load a file and check dtype and shape; returns its data (caller frees a). */
static void *load_checked(const char *name, attn_npy_dtype t, int ndim, const int64_t *shape,
                          attn_npy *a)
{
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_load(tpath(name), a, err) == 0, "%s", err);
    ck_assert_int_eq(a->dtype, t);
    ck_assert_int_eq(a->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_int_eq(a->shape[d], shape[d]);
    return a->data;
}

static void assert_same_f32(const float *a, const float *b, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], 4) == 0, "%s[%lld]: %.9g vs %.9g", what,
                      (long long)i, a[i], b[i]);
}

/* attn run on files == attn_sdpa_forward called directly, on every backend, with desc
 * options, masks and LSE. */
static void run_matches_direct(const char *backend, int use_mask, int use_bmask)
{
    problem p;
    problem_init(&p, 2, 9, 13, 4, 2, 16, 8);
    save_qkv(&p, 0, 0);
    int64_t mshape[2] = {p.Sq, p.Skv};
    save_f32("m.npy", 2, mshape, p.mask);
    char err[ATTN_NPY_ERRLEN];
    ck_assert(attn_npy_save(tpath("b.npy"), ATTN_NPY_BOOL, 2, mshape, p.bmask, err) == 0);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.scale = 0.3f;
    d.causal = 1;
    d.align = ATTN_ALIGN_TOP_LEFT;
    d.window_left = 5;
    d.softcap = 2.5f;
    char *margs[4] = {"--align", "tl", "--align", "tl"}; /* repeats when unmasked */
    if (use_mask)
        margs[0] = "--mask", margs[1] = tpath("m.npy");
    if (use_bmask)
        margs[2] = "--bool-mask", margs[3] = tpath("b.npy");
    int rc = RUN("--variant", "sdpa", "--backend", (char *)backend, "--q", tpath("q.npy"), "--k",
                 tpath("k.npy"), "--v", tpath("v.npy"), "--out", tpath("o.npy"), "--lse",
                 tpath("l.npy"), "--scale", "0.3", "--causal", "--align", "tl", "--window-left", "5", "--softcap",
                 "2.5", margs[0], margs[1], margs[2], margs[3]);
    ck_assert_int_eq(rc, 0);
    size_t no = (size_t)(p.B * p.Sq * p.Hq * p.Dv), nl = (size_t)(p.B * p.Hq * p.Sq);
    float *out = malloc(4 * no), *lse = malloc(4 * nl);
    direct_forward(backend, &p, d, use_mask, use_bmask, out, lse);
    attn_npy fo, fl;
    int64_t oshape[4] = {p.B, p.Sq, p.Hq, p.Dv}, lshape[3] = {p.B, p.Hq, p.Sq};
    assert_same_f32(load_checked("o.npy", ATTN_NPY_F32, 4, oshape, &fo), out, (int64_t)no, "out");
    assert_same_f32(load_checked("l.npy", ATTN_NPY_F32, 3, lshape, &fl), lse, (int64_t)nl, "lse");
    attn_npy_free(&fo);
    attn_npy_free(&fl);
    free(out);
    free(lse);
    problem_free(&p);
}

START_TEST(run_matches_forward_all_backends)
{
    for (const char *const *b = attn_backend_list(); *b; b++) {
        attn_backend *be;
        if (attn_backend_open(*b, NULL, &be) != ATTN_OK)
            continue; /* e.g. opencl without a device */
        attn_backend_close(be);
        run_matches_direct(*b, 0, 0);
        run_matches_direct(*b, 1, 0);
        run_matches_direct(*b, 1, 1);
    }
}
END_TEST

/* Same problem through bhsd files, 3-D files, f64/f16/bf16 inputs and a 4-D mask. */
START_TEST(run_layouts_and_dtypes)
{
    problem p;
    problem_init(&p, 1, 7, 11, 4, 1, 8, 12);
    int64_t oshape[4] = {p.B, p.Sq, p.Hq, p.Dv}, mshape[4] = {1, 1, p.Sq, p.Skv};
    size_t no = (size_t)(p.B * p.Sq * p.Hq * p.Dv);
    save_f32("m.npy", 4, mshape, p.mask);
    float *want = malloc(4 * no);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    direct_forward("ref", &p, d, 1, 0, want, NULL);
    attn_npy f;
    /* bshd, 4-D mask [1,1,Sq,Skv] */
    save_qkv(&p, 0, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"),
                         "--v", tpath("v.npy"), "--mask", tpath("m.npy"), "--out",
                         tpath("o.npy")), 0);
    assert_same_f32(load_checked("o.npy", ATTN_NPY_F32, 4, oshape, &f), want, (int64_t)no,
                    "bshd");
    attn_npy_free(&f);
    /* bhsd files give a bhsd output equal to the transposed bshd one */
    save_qkv(&p, 1, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--q", tpath("q.npy"), "--k",
                         tpath("k.npy"), "--v", tpath("v.npy"), "--mask", tpath("m.npy"),
                         "--out", tpath("o.npy")), 0);
    int64_t bshape[4] = {p.B, p.Hq, p.Sq, p.Dv};
    float *want_t = to_bhsd(want, p.B, p.Sq, p.Hq, p.Dv);
    assert_same_f32(load_checked("o.npy", ATTN_NPY_F32, 4, bshape, &f), want_t, (int64_t)no,
                    "bhsd");
    attn_npy_free(&f);
    free(want_t);
    /* 3-D bshd files (B = 1 omitted) give a 3-D output */
    save_qkv(&p, 0, 1);
    ck_assert_int_eq(RUN("--variant=sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"), "--v",
                         tpath("v.npy"), "--mask", tpath("m.npy"), "--out", tpath("o.npy")), 0);
    assert_same_f32(load_checked("o.npy", ATTN_NPY_F32, 3, oshape + 1, &f), want, (int64_t)no,
                    "3-D");
    attn_npy_free(&f);
    /* the same values as f64, f16 and bf16 (--bf16) files: all exact, same result */
    static const attn_npy_dtype fts[3] = {ATTN_NPY_F64, ATTN_NPY_F16, ATTN_NPY_U16};
    const float *src[3] = {p.q, p.k, p.v};
    const int64_t n[3] = {p.Sq * p.Hq * p.Dk, p.Skv * p.Hkv * p.Dk, p.Skv * p.Hkv * p.Dv};
    const int64_t shp[3][4] = {{1, p.Sq, p.Hq, p.Dk}, {1, p.Skv, p.Hkv, p.Dk},
                               {1, p.Skv, p.Hkv, p.Dv}};
    static const char *const names[3] = {"q.npy", "k.npy", "v.npy"};
    for (int t = 0; t < 3; t++) {
        for (int x = 0; x < 3; x++) {
            double *buf = malloc(8 * (size_t)n[x]);
            for (int64_t i = 0; i < n[x]; i++) {
                if (fts[t] == ATTN_NPY_F64)
                    buf[i] = src[x][i];
                else
                    ((uint16_t *)buf)[i] = fts[t] == ATTN_NPY_F16 ? attn_f32_to_f16(src[x][i])
                                                                  : attn_f32_to_bf16(src[x][i]);
            }
            char err[ATTN_NPY_ERRLEN];
            ck_assert(attn_npy_save(tpath(names[x]), fts[t], 4, shp[x], buf, err) == 0);
            free(buf);
        }
        ck_assert_int_eq(RUN("--variant", "sdpa", "--bf16", "--q", tpath("q.npy"), "--k",
                             tpath("k.npy"), "--v", tpath("v.npy"), "--mask", tpath("m.npy"),
                             "--out", tpath("o.npy")), 0);
        assert_same_f32(load_checked("o.npy", ATTN_NPY_F32, 4, oshape, &f), want, (int64_t)no,
                        attn_npy_dtype_name(fts[t]));
        attn_npy_free(&f);
    }
    /* uint16 without --bf16 is refused */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"),
                         "--v", tpath("v.npy"), "--out", tpath("o.npy")), 2);
    free(want);
    problem_free(&p);
}
END_TEST

/* --out-dtype f64 writes the reference's f64 result itself; f16 output is its rounding. */
START_TEST(run_f64_ground_truth)
{
    problem p;
    problem_init(&p, 1, 5, 6, 2, 2, 8, 8);
    save_qkv(&p, 1, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--out-dtype", "f64", "--q",
                         tpath("q.npy"), "--k", tpath("k.npy"), "--v", tpath("v.npy"), "--out",
                         tpath("o.npy"), "--lse", tpath("l.npy")), 0);
    attn_tensor q = attn_tensor_bshd(p.q, ATTN_F32, p.B, p.Sq, p.Hq, p.Dk);
    attn_tensor k = attn_tensor_bshd(p.k, ATTN_F32, p.B, p.Skv, p.Hkv, p.Dk);
    attn_tensor v = attn_tensor_bshd(p.v, ATTN_F32, p.B, p.Skv, p.Hkv, p.Dv);
    float dummy[80], dl[10];
    attn_tensor o = attn_tensor_bshd(dummy, ATTN_F32, p.B, p.Sq, p.Hq, p.Dv);
    attn_tensor l = {.data = dl, .dtype = ATTN_F32, .shape = {1, p.Sq, p.Hq, 1},
                     .stride = {p.Hq * p.Sq, 1, p.Sq, 1}};
    attn_sdpa_desc d = attn_sdpa_desc_default();
    attn_sdpa_problem pr;
    ck_assert_int_eq(attn_sdpa_validate(&d, &q, &k, &v, &o, &l, &pr), ATTN_OK);
    double want[80], wl[10];
    ck_assert_int_eq(attn_ref_sdpa(&pr, ATTN_REF_F64, want, wl, NULL), ATTN_OK);
    attn_npy f, fl;
    int64_t oshape[4] = {1, p.Hq, p.Sq, p.Dv}, lshape[3] = {1, p.Hq, p.Sq};
    const double *got = load_checked("o.npy", ATTN_NPY_F64, 4, oshape, &f);
    for (int64_t s = 0; s < p.Sq; s++)
        for (int64_t h = 0; h < p.Hq; h++)
            for (int64_t e = 0; e < p.Dv; e++)
                ck_assert_double_eq(got[(h * p.Sq + s) * p.Dv + e], want[(s * p.Hq + h) * p.Dv + e]);
    const double *gl = load_checked("l.npy", ATTN_NPY_F64, 3, lshape, &fl);
    for (int i = 0; i < 10; i++)
        ck_assert_double_eq(gl[i], wl[i]);
    attn_npy_free(&f);
    attn_npy_free(&fl);
    /* f16 output: each element is the f64 result rounded once (ref rounds from double) */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--out-dtype", "f16", "--q",
                         tpath("q.npy"), "--k", tpath("k.npy"), "--v", tpath("v.npy"), "--out",
                         tpath("o16.npy")), 0);
    const uint16_t *h16 = load_checked("o16.npy", ATTN_NPY_F16, 4, oshape, &f);
    for (int64_t s = 0; s < p.Sq; s++)
        for (int64_t h = 0; h < p.Hq; h++)
            for (int64_t e = 0; e < p.Dv; e++)
                ck_assert_uint_eq(h16[(h * p.Sq + s) * p.Dv + e],
                                  attn_f64_to_f16(want[(s * p.Hq + h) * p.Dv + e]));
    attn_npy_free(&f);
    problem_free(&p);
}
END_TEST

/* A Fortran-order q (column-major, as numpy.asfortranarray saves it) is read through strides. */
START_TEST(run_fortran_order_input)
{
    problem p;
    problem_init(&p, 1, 4, 6, 2, 2, 4, 4);
    save_qkv(&p, 0, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"),
                         "--v", tpath("v.npy"), "--out", tpath("c.npy")), 0);
    float col[32]; /* q [1,4,2,4] column-major */
    for (int s = 0; s < 4; s++)
        for (int h = 0; h < 2; h++)
            for (int e = 0; e < 4; e++)
                col[s + 4 * h + 8 * e] = p.q[(s * 2 + h) * 4 + e];
    size_t len;
    unsigned char *img = make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 4, "
                                     "2, 4), }", col, sizeof col, &len);
    write_file(tpath("q.npy"), img, len);
    free(img);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"),
                         "--v", tpath("v.npy"), "--out", tpath("f.npy")), 0);
    attn_npy a, b;
    int64_t shape[4] = {1, 4, 2, 4};
    assert_same_f32(load_checked("f.npy", ATTN_NPY_F32, 4, shape, &a),
                    load_checked("c.npy", ATTN_NPY_F32, 4, shape, &b), 32, "fortran");
    attn_npy_free(&a);
    attn_npy_free(&b);
    problem_free(&p);
}
END_TEST

START_TEST(run_errors)
{
    problem p;
    problem_init(&p, 1, 3, 4, 2, 2, 4, 4);
    save_qkv(&p, 0, 0);
    char *q = tpath("q.npy"), *k = tpath("k.npy"), *v = tpath("v.npy"), *o = tpath("o.npy");
    ck_assert_int_eq(RUN("--q", q), 2);                                 /* no variant */
    ck_assert_int_eq(RUN("--variant", "nope", "--q", q), 2);            /* unknown variant */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--k", k, "--v", v, "--out", o), 2); /* no q */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v), 2); /* no out */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--scale", "1x"), 2);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--bogus"), 2);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--backend", "cpu", "--out-dtype", "f64"), 2);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--backend", "nosuch"), 2);
    /* k with another head dim: the library's shape message */
    int64_t kshape[4] = {1, 4, 2, 5};
    float kk[40] = {0};
    save_f32("k5.npy", 4, kshape, kk);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", tpath("k5.npy"), "--v", v,
                         "--out", o), 2);
    /* a 2-D q and a malformed q */
    save_f32("q2.npy", 2, kshape, kk);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q2.npy"), "--k", k, "--v", v,
                         "--out", o), 2);
    write_file(tpath("bad.npy"), "\x93NUMPY\x01\x00\x05\x00{'des", 15);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("bad.npy"), "--k", k, "--v", v,
                         "--out", o), 2);
    /* a float file as a boolean mask */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--bool-mask", q), 2);
    ck_assert(access(o, F_OK) != 0); /* nothing written on error */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--help"), 0);
    problem_free(&p);
}
END_TEST

START_TEST(compare_exit_codes)
{
    problem p;
    problem_init(&p, 1, 16, 16, 2, 2, 16, 16);
    save_qkv(&p, 0, 0);
    char *q = tpath("q.npy"), *k = tpath("k.npy"), *v = tpath("v.npy");
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out",
                         tpath("gold.npy"), "--out-dtype", "f64"), 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out",
                         tpath("o32.npy")), 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out",
                         tpath("o16.npy"), "--out-dtype", "f16"), 0);
    ck_assert_int_eq(COMPARE(tpath("o32.npy"), tpath("o32.npy")), 0);
    ck_assert_int_eq(COMPARE(tpath("o32.npy"), tpath("gold.npy"), "--n-acc", "32"), 0);
    ck_assert_int_eq(COMPARE(tpath("o16.npy"), tpath("gold.npy"), "--worst", "3"), 0);
    /* a perturbed element fails */
    attn_npy a;
    char err[ATTN_NPY_ERRLEN];
    ck_assert(attn_npy_load(tpath("o32.npy"), &a, err) == 0);
    ((float *)a.data)[77] += 1e-3f;
    ck_assert(attn_npy_save(tpath("bad.npy"), a.dtype, a.ndim, a.shape, a.data, err) == 0);
    ck_assert_int_eq(COMPARE(tpath("bad.npy"), tpath("gold.npy")), 1);
    ((float *)a.data)[77] = NAN;
    ck_assert(attn_npy_save(tpath("nan.npy"), a.dtype, a.ndim, a.shape, a.data, err) == 0);
    ck_assert_int_eq(COMPARE(tpath("nan.npy"), tpath("gold.npy")), 1);
    /* all zeros against all zeros proves nothing: not a pass */
    memset(a.data, 0, (size_t)a.count * 4);
    ck_assert(attn_npy_save(tpath("z.npy"), a.dtype, a.ndim, a.shape, a.data, err) == 0);
    ck_assert_int_eq(COMPARE(tpath("z.npy"), tpath("z.npy")), 1);
    /* shape mismatch, missing file, usage */
    int64_t shape[4] = {1, 16, 2, 15};
    ck_assert(attn_npy_save(tpath("s.npy"), a.dtype, 4, shape, a.data, err) == 0);
    ck_assert_int_eq(COMPARE(tpath("s.npy"), tpath("gold.npy")), 2);
    ck_assert_int_eq(COMPARE(tpath("none.npy"), tpath("gold.npy")), 2);
    ck_assert_int_eq(COMPARE(tpath("o32.npy")), 2);
    ck_assert_int_eq(COMPARE(tpath("o32.npy"), tpath("gold.npy"), "--worst", "-1"), 2);
    attn_npy_free(&a);
    problem_free(&p);
}
END_TEST

/* Large logits (|s| ~ 400): an f32 kernel's correct result fails the norm-wise bound unless the
 * logit magnitude A enters the condition (max|ref| (1 + A)), from --q/--k or --logit-bound. */
START_TEST(compare_large_logits)
{
#ifdef ATTN_HAVE_CPU
    problem p;
    problem_init(&p, 2, 32, 94, 1, 1, 256, 256);
    /* uniform values with full mantissas (coarse ones would add up exactly), q scaled by 3 */
    for (int64_t i = 0; i < p.B * p.Sq * p.Hq * p.Dk; i++)
        p.q[i] = 3.0f * (urand() + (urand() + 1.0f) / 64.0f);
    for (int64_t i = 0; i < p.B * p.Skv * p.Hkv * p.Dk; i++)
        p.k[i] = urand() + (urand() + 1.0f) / 64.0f;
    save_qkv(&p, 0, 0);
    char *q = tpath("q.npy"), *k = tpath("k.npy"), *v = tpath("v.npy");
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--scale", "1.3688",
                         "--out", tpath("gold.npy"), "--out-dtype", "f64"), 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--scale", "1.3688",
                         "--backend", "cpu", "--out", tpath("cpu.npy")), 0);
    ck_assert_int_eq(COMPARE(tpath("cpu.npy"), tpath("gold.npy")), 1); /* A = 0 */
    ck_assert_int_eq(COMPARE(tpath("cpu.npy"), tpath("gold.npy"), "--q", q, "--k", k,
                             "--scale", "1.3688"), 0);
    ck_assert_int_eq(COMPARE(tpath("cpu.npy"), tpath("gold.npy"), "--logit-bound", "400"), 0);
    ck_assert_int_eq(COMPARE(tpath("cpu.npy"), tpath("gold.npy"), "--q", q), 2);
    ck_assert_int_eq(COMPARE(tpath("cpu.npy"), tpath("gold.npy"), "--q", q, "--k", k,
                             "--logit-bound", "3"), 2);
    problem_free(&p);
#else
    fprintf(stderr, "compare_large_logits: skipped (no cpu backend in this build)\n");
#endif
}
END_TEST

static Suite *npy_suite(void)
{
    Suite *s = suite_create("npy");
    TCase *t = tcase_create("format");
    tcase_add_checked_fixture(t, tmp_setup, tmp_teardown);
    tcase_add_test(t, roundtrip_all_dtypes_and_shapes);
    tcase_add_test(t, written_header_text);
    tcase_add_test(t, header_edge_cases);
    tcase_add_test(t, header_fortran_order);
    tcase_add_test(t, empty_array_huge_dims);
    tcase_add_test(t, parse_owned);
    tcase_add_test(t, header_byte_orders);
    tcase_add_loop_test(t, malformed_headers, 0,
                        (int)(sizeof bad_headers / sizeof bad_headers[0]));
    tcase_add_test(t, malformed_preambles);
    tcase_add_test(t, load_errors);
    tcase_add_test(t, fuzz_mutated_headers);
    suite_add_tcase(s, t);
    TCase *a = tcase_create("args");
    tcase_add_test(a, strict_numbers);
    tcase_add_test(a, sdpa_options);
    suite_add_tcase(s, a);
    TCase *r = tcase_create("run");
    tcase_add_checked_fixture(r, tmp_setup, tmp_teardown);
    tcase_add_test(r, run_matches_forward_all_backends);
    tcase_add_test(r, run_layouts_and_dtypes);
    tcase_add_test(r, run_f64_ground_truth);
    tcase_add_test(r, run_fortran_order_input);
    tcase_add_test(r, run_errors);
    tcase_add_test(r, compare_exit_codes);
    tcase_add_test(r, compare_large_logits);
    suite_add_tcase(s, r);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(npy_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
