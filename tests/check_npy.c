/* check_npy.c - .npy I/O (round trips, header edge cases, every malformation class, a mutation
 * fuzz loop) and the strict option parsers of the `attn` command. */
#include "attn/attn.h"
#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_half.h"
#include "attn_npy.h"
#include "test_files.h"

#include "check_run.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- raw .npy images ------------------------------------------------------------------------ */

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
    {1, "{'descr':'<i2','fortran_order':False,'shape':(1,)}", 2, "unsupported descr"},
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
    ck_assert(attn_npy_load(tpath(""), &a, err) < 0); /* the directory itself */
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

static Suite *npy_suite(void)
{
    Suite *s = suite_create("npy");
    TCase *t = tcase_create("format");
    tcase_add_checked_fixture(t, test_tmp_setup, test_tmp_teardown);
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
    suite_add_tcase(s, a);
    return s;
}

int main(void)
{
    return attn_check_run(npy_suite());
}
