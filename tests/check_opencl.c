/* check_opencl.c - the OpenCL backend: device listing, CL error names, option and capability
 * errors, the program cache (build, memory hit, disk hit across backends), build failures
 * carrying the log, common.cl on the device (its band rule against the C one, its dtype codes
 * against attn_dtype), and, through the shared SDPA fixture, results against the f64
 * reference on a grid of shapes, options,
 * dtypes and layouts (host tensors and device buffers), plus bit-identical reruns. Tests that
 * need a device print why and pass when no OpenCL platform is present. */
#include "check_run.h"

#include <check.h>

#include <stdio.h>

#ifndef ATTN_HAVE_OPENCL
int main(void)
{
    printf("SKIPPED: the library was built without OpenCL\n");
    return 77; /* meson: skipped */
}
#else

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/attn.h"
#include "attn/attn_opencl.h"
#include "attn_band.h"
#include "opencl/ocl_internal.h"
#include "sdpa_fixture.h"

#define SEED 777u

/* The ICD loader and LLVM inside PoCL keep process-lifetime allocations; they are not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libOpenCL\nleak:libpocl\nleak:libLLVM\nleak:libclang\nleak:libhwloc\n";
}

/* ---- availability ---- */

static char no_device_reason[512];

/* 1 if an OpenCL device exists; else prints the reason once per test and returns 0. */
static int have_device(const char *test)
{
    int n = 0;
    if (attn_opencl_devices(NULL, 0, &n) == ATTN_OK && n > 0)
        return 1;
    snprintf(no_device_reason, sizeof no_device_reason, "%s",
             n == 0 && attn_last_error()[0] == '\0' ? "no OpenCL device" : attn_last_error());
    printf("SKIPPED %s: %s\n", test, no_device_reason);
    return 0;
}

#define NEED_DEVICE()                                                                            \
    do {                                                                                         \
        if (!have_device(__func__))                                                              \
            return;                                                                              \
    } while (0)

static attn_backend *open_cl(const char *options)
{
    attn_backend *be = NULL;
    attn_status st = attn_backend_open("opencl", options, &be);
    ck_assert_msg(st == ATTN_OK, "open opencl (%s): %s", options ? options : "",
                  attn_last_error());
    return be;
}

/* ---- no platform ---- */

/* With an empty ICD vendor directory the loader finds no platform; the backend must say so.
 * Needs a fresh process (the loader reads the variable once), i.e. Check's fork mode. */
START_TEST(test_no_platform)
{
    const char *fork = getenv("CK_FORK");
    if (fork && strcmp(fork, "no") == 0) {
        printf("SKIPPED test_no_platform: needs CK_FORK mode\n");
        return;
    }
    char dir[] = "/tmp/attn-no-icd-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("OCL_ICD_VENDORS", dir, 1);
    unsetenv("OCL_ICD_FILENAMES");
    attn_backend *be = NULL;
    attn_status st = attn_backend_open("opencl", NULL, &be);
    rmdir(dir);
    ck_assert_msg(st == ATTN_ERR_UNSUPPORTED, "got %s: %s", attn_status_name(st),
                  attn_last_error());
    ck_assert_ptr_null(be);
    ck_assert_str_eq(attn_last_error(),
                     "no OpenCL platform found (is an ICD such as pocl-opencl-icd installed?)");
    int n = -1;
    ck_assert_int_eq(attn_opencl_devices(NULL, 0, &n), ATTN_ERR_UNSUPPORTED);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* ---- error names ---- */

START_TEST(test_error_names)
{
    ck_assert_str_eq(attn_opencl_error_name(-5), "CL_OUT_OF_RESOURCES");
    ck_assert_str_eq(attn_opencl_error_name(-11), "CL_BUILD_PROGRAM_FAILURE");
    ck_assert_str_eq(attn_opencl_error_name(-54), "CL_INVALID_WORK_GROUP_SIZE");
    ck_assert_str_eq(attn_opencl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    ck_assert_str_eq(attn_opencl_error_name(0), "CL_SUCCESS");
    ck_assert_str_eq(attn_opencl_error_name(12345), "CL_UNKNOWN_ERROR");
    /* Every core code has a distinct name. */
    for (int c = -72; c <= 0; c++) {
        if (c < -19 && c > -30)
            continue; /* the gap between the runtime and the invalid-argument codes */
        const char *n = attn_opencl_error_name(c);
        ck_assert_msg(strcmp(n, "CL_UNKNOWN_ERROR") != 0, "code %d has no name", c);
        for (int d = c + 1; d <= 0; d++)
            if (!(d < -19 && d > -30))
                ck_assert_str_ne(n, attn_opencl_error_name(d));
    }
    /* ATTN_CL_TRY turns a failure into a status with the name in the message. */
    ck_assert_int_eq(attn_cl_fail(CL_OUT_OF_RESOURCES, "clFoo"), ATTN_ERR_DEVICE);
    ck_assert_ptr_nonnull(strstr(attn_last_error(), "clFoo failed: CL_OUT_OF_RESOURCES (-5)"));
    ck_assert_int_eq(attn_cl_fail(CL_OUT_OF_HOST_MEMORY, "x"), ATTN_ERR_OUT_OF_MEMORY);
}
END_TEST

/* ---- devices ---- */

START_TEST(test_devices)
{
    NEED_DEVICE();
    int n = 0;
    ck_assert_int_eq(attn_opencl_devices(NULL, 0, &n), ATTN_OK);
    ck_assert_int_ge(n, 1);
    attn_opencl_device_info *list = calloc((size_t)n, sizeof *list);
    ck_assert_int_eq(attn_opencl_devices(list, n, &n), ATTN_OK);
    for (int i = 0; i < n; i++) {
        ck_assert(strlen(list[i].name) > 0 && strlen(list[i].driver_version) > 0);
        ck_assert(strncmp(list[i].version, "OpenCL ", 7) == 0);
        ck_assert_uint_gt(list[i].compute_units, 0);
        ck_assert_uint_gt(list[i].max_work_group_size, 0);
        ck_assert_uint_gt(list[i].local_mem_bytes, 0);
        printf("device %d:%d %s (%s), %u CUs, wg %zu, fp16 %d fp64 %d subgroups %d\n",
               list[i].platform, list[i].device, list[i].name, list[i].type,
               list[i].compute_units, list[i].max_work_group_size, list[i].fp16, list[i].fp64,
               list[i].subgroups);
    }
    /* The backend opened on 0:0 reports that device. */
    attn_backend *be = open_cl("device=0:0,cache=off");
    attn_opencl_device_info info;
    ck_assert_int_eq(attn_opencl_backend_device(be, &info), ATTN_OK);
    ck_assert_str_eq(info.name, list[0].name);
    ck_assert_ptr_nonnull(strstr(attn_backend_describe(be), list[0].name));
    attn_backend_close(be);
    free(list);
}
END_TEST

/* ---- bad options and unsupported cases ---- */

static void expect_open_fails(const char *options, attn_status want, const char *needle)
{
    attn_backend *be = NULL;
    attn_status st = attn_backend_open("opencl", options, &be);
    ck_assert_msg(st == want, "options '%s': got %s (%s), want %s", options,
                  attn_status_name(st), attn_last_error(), attn_status_name(want));
    ck_assert_ptr_null(be);
    ck_assert_msg(strstr(attn_last_error(), needle), "options '%s': message '%s' lacks '%s'",
                  options, attn_last_error(), needle);
}

START_TEST(test_bad_options)
{
    NEED_DEVICE();
    expect_open_fails("device=9:9", ATTN_ERR_BACKEND, "no platform 9");
    expect_open_fails("device=0:9", ATTN_ERR_BACKEND, "has no device 9");
    expect_open_fails("device=x", ATTN_ERR_BACKEND, "malformed device 'x'");
    expect_open_fails("device=0:", ATTN_ERR_BACKEND, "malformed");
    expect_open_fails("device=-1:0", ATTN_ERR_BACKEND, "malformed");
    expect_open_fails("bogus=1", ATTN_ERR_BACKEND, "unknown option 'bogus'");
    expect_open_fails("br=0", ATTN_ERR_BACKEND, "br=0");
    expect_open_fails("wg=abc", ATTN_ERR_BACKEND, "wg=abc");
    expect_open_fails("local=2", ATTN_ERR_BACKEND, "expected 0 or 1");
    expect_open_fails("device", ATTN_ERR_BACKEND, "not key=value");
    /* The environment variable is read when the option is absent. */
    setenv("ATTN_OPENCL_DEVICE", "7:0", 1);
    expect_open_fails(NULL, ATTN_ERR_BACKEND, "no platform 7");
    unsetenv("ATTN_OPENCL_DEVICE");
    /* The OpenCL queries refuse other backends. */
    attn_backend *ref = NULL;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &ref), ATTN_OK);
    attn_opencl_stats stats;
    ck_assert_int_eq(attn_opencl_backend_stats(ref, &stats), ATTN_ERR_BACKEND);
    attn_backend_close(ref);
}
END_TEST

/* A small f32 problem whose output must stay untouched when the backend refuses it. */
static void expect_unsupported(const char *options, int64_t D, const char *needle)
{
    attn_backend *be = open_cl(options);
    int64_t n = 2 * 4 * D;
    float *x = calloc((size_t)n, sizeof(float)), *o = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        o[i] = 42.0f;
    attn_tensor q = attn_tensor_bshd(x, ATTN_F32, 1, 2, 4, D);
    attn_tensor out = attn_tensor_bshd(o, ATTN_F32, 1, 2, 4, D);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    ck_assert_int_eq(attn_sdpa_supported(be, &d, &q, &q, &q, &out, NULL), ATTN_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(attn_last_error(), needle), "'%s' lacks '%s'", attn_last_error(),
                  needle);
    ck_assert_int_eq(attn_sdpa_forward(be, &d, &q, &q, &q, &out, NULL), ATTN_ERR_UNSUPPORTED);
    for (int64_t i = 0; i < n; i++)
        ck_assert(o[i] == 42.0f);
    attn_backend_close(be);
    free(x);
    free(o);
}

START_TEST(test_unsupported)
{
    NEED_DEVICE();
    expect_unsupported("cache=off,wg=100000", 16, "work-group size 100000 exceeds");
    expect_unsupported("cache=off,bc=3", 16, "bc = 3");
    expect_unsupported("cache=off", 1000, "head dims up to");
    expect_unsupported("cache=off,br=64,bc=16", 512, "private tiles");
    /* A dtype no tensor may have is refused before the backend sees it. */
    attn_backend *be = open_cl("cache=off");
    float x[4 * 16] = {0}, o[4 * 16];
    uint8_t xb[4 * 16] = {0};
    attn_tensor q = attn_tensor_bshd(xb, ATTN_U8, 1, 2, 2, 16);
    attn_tensor k = attn_tensor_bshd(x, ATTN_F32, 1, 2, 2, 16);
    attn_tensor out = attn_tensor_bshd(o, ATTN_F32, 1, 2, 2, 16);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    ck_assert_int_eq(attn_sdpa_supported(be, &d, &q, &k, &k, &out, NULL), ATTN_ERR_DTYPE);
    ck_assert_int_eq(attn_sdpa_forward(be, &d, &q, &k, &k, &out, NULL), ATTN_ERR_DTYPE);
    attn_backend_close(be);
}
END_TEST

/* ---- the program cache ---- */

static void run_small(attn_backend *be)
{
    float q[2 * 3 * 8], o[2 * 3 * 8];
    for (int i = 0; i < 48; i++)
        q[i] = (float)(i % 7) * 0.25f;
    attn_tensor tq = attn_tensor_bshd(q, ATTN_F32, 1, 3, 2, 8);
    attn_tensor to = attn_tensor_bshd(o, ATTN_F32, 1, 3, 2, 8);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    ck_assert_msg(attn_sdpa_forward(be, &d, &tq, &tq, &tq, &to, NULL) == ATTN_OK, "%s",
                  attn_last_error());
}

static void remove_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_cache)
{
    NEED_DEVICE();
    char dir[] = "/tmp/attn-cl-cache-XXXXXX", opts[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(opts, sizeof opts, "cache=%s/sub", dir); /* created on first store */
    attn_opencl_stats s;

    attn_backend *be = open_cl(opts);
    run_small(be);
    ck_assert_int_eq(attn_opencl_backend_stats(be, &s), ATTN_OK);
    ck_assert_int_ge(s.source_builds, 1);
    ck_assert_int_eq(s.disk_hits, 0);
    ck_assert_int_eq(s.disk_stores, s.source_builds);
    long built = s.source_builds, mem = s.memory_hits;
    run_small(be); /* same specialisation: nothing is built or loaded again */
    ck_assert_int_eq(attn_opencl_backend_stats(be, &s), ATTN_OK);
    ck_assert_int_eq(s.source_builds, built);
    ck_assert_int_gt(s.memory_hits, mem);
    ck_assert_ptr_nonnull(strstr(s.last_kernel, "flash_fwd["));
    attn_backend_close(be);

    be = open_cl(opts); /* a second backend compiles nothing: binaries come from disk */
    run_small(be);
    ck_assert_int_eq(attn_opencl_backend_stats(be, &s), ATTN_OK);
    ck_assert_int_eq(s.source_builds, 0);
    ck_assert_int_eq(s.disk_hits, built);
    attn_backend_close(be);

    be = open_cl("cache=off");
    run_small(be);
    ck_assert_int_eq(attn_opencl_backend_stats(be, &s), ATTN_OK);
    ck_assert_int_ge(s.source_builds, 1);
    ck_assert_int_eq(s.disk_stores, 0);
    ck_assert_str_eq(s.cache_dir, "");
    attn_backend_close(be);
    remove_dir(dir);
}
END_TEST

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static const char *embedded(const char *name)
{
    for (int i = 0; i < attn_cl_embedded_count; i++)
        if (strcmp(attn_cl_embedded[i].name, name) == 0)
            return attn_cl_embedded[i].text;
    ck_abort_msg("no embedded %s", name);
    return NULL;
}

/* kernels=DIR loads the files from DIR; a broken kernel fails with its build log. */
START_TEST(test_kernel_dir)
{
    NEED_DEVICE();
    char dir[] = "/tmp/attn-cl-kernels-XXXXXX", opts[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(opts, sizeof opts, "cache=off,kernels=%s", dir);
    write_text(dir, "common.cl", embedded("common.cl"));
    write_text(dir, "sdpa_flash_fwd.cl", embedded("sdpa_flash_fwd.cl"));
    write_text(dir, "sdpa_decode.cl", embedded("sdpa_decode.cl"));
    attn_backend *be = open_cl(opts);
    ck_assert_ptr_nonnull(strstr(attn_backend_describe(be), dir));
    run_small(be);
    write_text(dir, "sdpa_flash_fwd.cl", "kernel void attn_flash_fwd(global float *x) { oops; }\n");
    float q[2 * 3 * 8] = {0}, o[2 * 3 * 8];
    attn_tensor tq = attn_tensor_bshd(q, ATTN_F32, 1, 3, 2, 8);
    attn_tensor to = attn_tensor_bshd(o, ATTN_F32, 1, 3, 2, 8);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.window_left = 1; /* another specialisation, so the broken file is compiled */
    ck_assert_int_eq(attn_sdpa_forward(be, &d, &tq, &tq, &tq, &to, NULL), ATTN_ERR_DEVICE);
    const char *msg = attn_last_error();
    ck_assert_msg(strstr(msg, "CL_BUILD_PROGRAM_FAILURE") && strstr(msg, "log:") &&
                      strstr(msg, "oops"),
                  "message without build log: %s", msg);
    attn_backend_close(be);
    remove_dir(dir);
}
END_TEST

/* ---- common.cl on the device: the band rule, the dtype codes ---- */

/* Calls cl/common.cl's attn_band_range once per (pos, window_left, window_right, skv). */
static const char band_kernel[] =
    "kernel void attn_test_band(global const long *in, global long *out, long n)\n"
    "{\n"
    "    long i = get_global_id(0);\n"
    "    if (i >= n)\n"
    "        return;\n"
    "    long lo, hi;\n"
    "    attn_band_range(in[4 * i], in[4 * i + 1], in[4 * i + 2], in[4 * i + 3], &lo, &hi);\n"
    "    out[2 * i] = lo;\n"
    "    out[2 * i + 1] = hi;\n"
    "}\n";

/* Reports the storage dtype codes the program was compiled with. */
static const char codes_kernel[] =
    "kernel void attn_test_codes(global const long *in, global long *out, long n)\n"
    "{\n"
    "    out[0] = ATTN_DT_F32;\n"
    "    out[1] = ATTN_DT_F16;\n"
    "    out[2] = ATTN_DT_BF16;\n"
    "}\n";

/* Kernel `name` of the embedded common.cl (the text every program starts with) followed by
 * `src`, built with plain OpenCL calls on the backend's device and no -D option, as a
 * standalone compile of the kernel files would be. */
static cl_kernel build_test_kernel(attn_cl_backend *cb, const char *src, const char *name)
{
    const char *text[2] = {embedded("common.cl"), src};
    cl_int err;
    cl_program prog = clCreateProgramWithSource(cb->ctx, 2, text, NULL, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    err = clBuildProgram(prog, 1, &cb->device, "-cl-std=CL1.2 -w", NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[2000] = "";
        clGetProgramBuildInfo(prog, cb->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        ck_abort_msg("%s: %s; log: %s", name, attn_opencl_error_name(err), log);
    }
    cl_kernel k = clCreateKernel(prog, name, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    clReleaseProgram(prog); /* the kernel keeps it */
    return k;
}

/* Runs k(in, out, n) on n work-items (nin longs in, nout longs out), then releases k. */
static void run_test_kernel(attn_cl_backend *cb, cl_kernel k, const cl_long *in, size_t nin,
                            cl_long *out, size_t nout, cl_long n)
{
    cl_int err;
    cl_mem min = clCreateBuffer(cb->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                nin * sizeof(cl_long), (void *)in, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    cl_mem mout = clCreateBuffer(cb->ctx, CL_MEM_WRITE_ONLY, nout * sizeof(cl_long), NULL, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(k, 0, sizeof min, &min), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(k, 1, sizeof mout, &mout), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(k, 2, sizeof n, &n), CL_SUCCESS);
    size_t global = (size_t)n;
    ck_assert_int_eq(clEnqueueNDRangeKernel(cb->queue, k, 1, NULL, &global, NULL, 0, NULL, NULL),
                     CL_SUCCESS);
    ck_assert_int_eq(clEnqueueReadBuffer(cb->queue, mout, CL_TRUE, 0, nout * sizeof(cl_long),
                                         out, 0, NULL, NULL),
                     CL_SUCCESS);
    clReleaseMemObject(min);
    clReleaseMemObject(mout);
    clReleaseKernel(k);
}

/* cl/common.cl's attn_band_range agrees with the C copy (src/core/attn_band.h) on unlimited
 * (-1) and zero windows, windows wider than Skv, positions before 0 and beyond Skv. */
START_TEST(test_band_mirror)
{
    NEED_DEVICE();
    const int64_t pos[] = {-40, -3, -1, 0, 1, 2, 15, 16, 17, 63, 64, 65, 699, 700, 701, 5000};
    const int64_t win[] = {-1, 0, 1, 2, 15, 16, 17, 64, 700, 100000};
    const int64_t skv[] = {1, 2, 3, 16, 17, 64, 700};
    size_t n = 0, cap = sizeof pos / sizeof pos[0] * (sizeof win / sizeof win[0]) *
                        (sizeof win / sizeof win[0]) * (sizeof skv / sizeof skv[0]);
    cl_long *in = malloc(cap * 4 * sizeof *in), *out = malloc(cap * 2 * sizeof *out);
    ck_assert(in && out);
    for (size_t a = 0; a < sizeof pos / sizeof pos[0]; a++)
        for (size_t b = 0; b < sizeof win / sizeof win[0]; b++)
            for (size_t c = 0; c < sizeof win / sizeof win[0]; c++)
                for (size_t d = 0; d < sizeof skv / sizeof skv[0]; d++, n++) {
                    cl_long row[4] = {pos[a], win[b], win[c], skv[d]};
                    memcpy(in + 4 * n, row, sizeof row);
                }
    attn_backend *be = open_cl("cache=off");
    attn_cl_backend *cb = be->impl;
    run_test_kernel(cb, build_test_kernel(cb, band_kernel, "attn_test_band"), in, 4 * n, out,
                    2 * n, (cl_long)n);
    attn_backend_close(be);
    for (size_t i = 0; i < n; i++) {
        int64_t lo, hi;
        attn_band_range(in[4 * i], in[4 * i + 1], in[4 * i + 2], in[4 * i + 3], &lo, &hi);
        ck_assert_msg(out[2 * i] == lo && out[2 * i + 1] == hi,
                      "pos %lld wl %lld wr %lld skv %lld: device [%lld, %lld), host [%lld, %lld)",
                      (long long)in[4 * i], (long long)in[4 * i + 1], (long long)in[4 * i + 2],
                      (long long)in[4 * i + 3], (long long)out[2 * i],
                      (long long)out[2 * i + 1], (long long)lo, (long long)hi);
    }
    printf("band rule: %zu (pos, wl, wr, skv) agree on the device\n", n);
    free(in);
    free(out);
}
END_TEST

static void expect_codes(const cl_long *got, const char *how)
{
    ck_assert_msg(got[0] == ATTN_F32 && got[1] == ATTN_F16 && got[2] == ATTN_BF16,
                  "%s: ATTN_DT_F32/F16/BF16 = %lld/%lld/%lld, attn_dtype has %d/%d/%d", how,
                  (long long)got[0], (long long)got[1], (long long)got[2], ATTN_F32, ATTN_F16,
                  ATTN_BF16);
}

/* The kernels' storage dtype codes come from attn_dtype: the backend's builds define them (a
 * common.cl without defaults still compiles), and common.cl's standalone defaults agree. */
START_TEST(test_dtype_codes)
{
    NEED_DEVICE();
    char dir[] = "/tmp/attn-cl-codes-XXXXXX", opts[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_text(dir, "common.cl", "/* no dtype codes: the build options must define them */\n");
    write_text(dir, "codes.cl", codes_kernel);
    snprintf(opts, sizeof opts, "cache=off,kernels=%s", dir);
    attn_backend *be = open_cl(opts);
    attn_cl_backend *cb = be->impl;
    cl_kernel k;
    ck_assert_msg(attn_cl_create_kernel(cb, "codes.cl", "attn_test_codes", "", &k) == ATTN_OK,
                  "%s", attn_last_error());
    cl_long in = 0, got[3] = {-1, -1, -1};
    run_test_kernel(cb, k, &in, 1, got, 3, 1);
    expect_codes(got, "backend build");
    run_test_kernel(cb, build_test_kernel(cb, codes_kernel, "attn_test_codes"), &in, 1, got, 3,
                    1);
    expect_codes(got, "common.cl defaults");
    attn_backend_close(be);
    remove_dir(dir);
}
END_TEST

/* ---- against the reference, through the shared SDPA fixture ---- */

/* Shapes and options beside the conformance list: ragged tiles, GQA/MQA, Dk != Dv, empty rows,
 * windows, masks with broadcast, soft-cap, every dtype, layouts, device buffers (flag 1), the
 * decode split (Sq <= 4, Skv >= 512). The last row is the largest. */
static const struct {
    const char *name;
    int device_mem;
} grid[] = {
    {"sdpa b1 sq17 skv17 hq1 hkv1 dk32 dv32 dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b2 sq64 skv64 hq4 hkv2 dk64 dv64 causal=br dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b1 sq113 skv113 hq8 hkv1 dk80 dv80 causal=tl dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b2 sq3 skv113 hq4 hkv4 dk64 dv64 causal=br dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b1 sq17 skv3 hq2 hkv1 dk32 dv32 causal=br dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b2 sq64 skv64 hq4 hkv4 dk64 dv40 wl=16 wr=16 dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b1 sq64 skv64 hq4 hkv2 dk32 dv32 causal=br wl=0 dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b1 sq113 skv113 hq4 hkv2 dk64 dv64 causal=tl wl=127 cap=5 dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b2 sq17 skv64 hq4 hkv2 dk32 dv32 mask_add=sh dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b2 sq17 skv64 hq4 hkv2 dk32 dv32 mask_bool=bs dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b1 sq64 skv113 hq4 hkv1 dk64 dv64 causal=br wl=16 cap=30 mask_add=sh mask_bool=bs dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b2 sq64 skv64 hq4 hkv2 dk64 dv64 causal=br dt=f16:f16:f16 layout=bhsd lse", 0},
    {"sdpa b1 sq17 skv113 hq4 hkv2 dk64 dv64 causal=br dt=bf16:bf16:bf16 layout=cache lse", 0},
    {"sdpa b1 sq17 skv64 hq4 hkv2 dk32 dv32 mask_add=sh dt=f16:bf16:f32 layout=bshd", 0},
    {"sdpa b2 sq64 skv64 hq4 hkv2 dk64 dv64 causal=br dt=f32:f32:f32 layout=cache lse", 1},
    {"sdpa b1 sq17 skv113 hq4 hkv2 dk64 dv64 wl=16 wr=0 mask_bool=bs dt=f16:f16:f16 layout=bhsd lse", 1},
    {"sdpa b1 sq64 skv64 hq2 hkv1 dk256 dv256 causal=br dt=f32:f32:f32 layout=bshd lse", 0},
    {"sdpa b1 sq1 skv2048 hq8 hkv2 dk128 dv128 causal=br dt=f32:f16:f16 layout=cache lse", 0},
    {"sdpa b1 sq4 skv1024 hq4 hkv1 dk64 dv64 causal=br wl=127 mask_bool=bs dt=bf16:bf16:bf16 layout=bshd lse", 0},
    {"sdpa b2 sq1 skv600 hq4 hkv4 dk32 dv32 dt=f32:f32:f32 layout=bshd lse", 1},
    {"sdpa b1 sq2 skv700 hq4 hkv2 dk40 dv24 cap=2 mask_add=sh dt=f16:f16:bf16 layout=bhsd lse", 0},
    {"sdpa b1 sq512 skv512 hq4 hkv2 dk64 dv64 causal=br dt=f32:f32:f32 layout=bshd lse", 0},
};
enum { N_GRID = sizeof grid / sizeof grid[0] };

static int grid_size(void)
{
    return getenv("ATTN_TEST_QUICK") ? N_GRID - 1 : N_GRID; /* sanitizers: not the largest */
}

/* Each grid case passes the conformance gates, and the implementation name is the kernel the
 * call launched. */
START_TEST(test_vs_reference)
{
    NEED_DEVICE();
    attn_backend *be = open_cl(NULL);
    for (int i = 0; i < grid_size(); i++) {
        const sdpa_fx x = {.backend = "opencl", .device_mem = grid[i].device_mem};
        const attn_sdpa_case c = sdpa_fx_parse(grid[i].name);
        const attn_result r = sdpa_fx_run_on(be, &x, &c);
        sdpa_fx_assert_pass(&x, &r);
        attn_opencl_stats s;
        attn_opencl_backend_stats(be, &s);
        printf("case %2d ok  %s\n", i, s.last_kernel);
        ck_assert_str_eq(r.impl + strlen("opencl:"), s.last_kernel);
    }
    attn_backend_close(be);
}
END_TEST

/* The GPU-style configuration (small row blocks, work-groups sharing K/V tiles through local
 * memory) on a subset of the grid: every feature, both dtypes paths, device buffers. */
START_TEST(test_local_tiles)
{
    NEED_DEVICE();
    const sdpa_fx x = {.backend = "opencl", .options = "local=1,wg=8,br=2,bc=8,vw=8"};
    const int subset[] = {1, 2, 5, 8, 10, 12, 14};
    for (size_t n = 0; n < sizeof subset / sizeof subset[0]; n++) {
        const attn_sdpa_case c = sdpa_fx_parse(grid[subset[n]].name);
        const attn_result r = sdpa_fx_run(&x, &c);
        sdpa_fx_assert_pass(&x, &r);
        printf("local case %2d ok  %s\n", subset[n], r.impl);
        ck_assert_ptr_nonnull(strstr(r.impl, ",local"));
    }
}
END_TEST

/* NaN in a query row and in a key: exactly the rows that read them are NaN (gate 1 checks
 * both directions against the reference). */
START_TEST(test_nan_propagates)
{
    NEED_DEVICE();
    const sdpa_fx x = {.backend = "opencl"};
    const attn_sdpa_case c =
        sdpa_fx_parse("sdpa b1 sq17 skv33 hq2 hkv1 d32 causal=br special=qk_nan lse");
    sdpa_fx_expect_pass(&x, &c);
}
END_TEST

typedef struct out_copy {
    unsigned char bytes[1 << 16];
    size_t n;
} out_copy;

/* Keep the bytes of the output view (contiguous BSHD), host or device. */
static void keep_out(const attn_tensor *const *outs, int n, void *ctx)
{
    out_copy *c = ctx;
    const attn_tensor *o = outs[0];
    (void)n;
    c->n = (size_t)(o->shape[0] * o->stride[0]) * attn_dtype_size(o->dtype);
    ck_assert_uint_le(c->n, sizeof c->bytes);
    if (o->buffer)
        ck_assert_int_eq(attn_buffer_read(o->buffer, o->offset, c->bytes, c->n), ATTN_OK);
    else
        memcpy(c->bytes, o->data, c->n);
}

/* Two runs, and host vs device operands, give bit-identical outputs. */
START_TEST(test_deterministic)
{
    NEED_DEVICE();
    static out_copy first, now;
    const attn_sdpa_case c =
        sdpa_fx_parse("sdpa b1 sq64 skv113 hq4 hkv2 d64 causal=br mask_add=sh dt=f32 lse");
    for (int rep = 0; rep < 3; rep++) {
        const sdpa_fx x = {.backend = "opencl", .device_mem = rep == 2, .outputs = keep_out,
                           .outputs_ctx = rep ? &now : &first};
        sdpa_fx_expect_pass(&x, &c);
        if (rep)
            ck_assert_msg(now.n == first.n && memcmp(first.bytes, now.bytes, now.n) == 0,
                          "run %d differs", rep);
    }
}
END_TEST

static Suite *opencl_suite(void)
{
    Suite *s = suite_create("opencl");
    TCase *rt = tcase_create("runtime");
    tcase_add_test(rt, test_error_names);
    tcase_add_test(rt, test_no_platform);
    tcase_add_test(rt, test_devices);
    tcase_add_test(rt, test_bad_options);
    tcase_add_test(rt, test_unsupported);
    tcase_add_test(rt, test_cache);
    tcase_add_test(rt, test_kernel_dir);
    tcase_add_test(rt, test_band_mirror);
    tcase_add_test(rt, test_dtype_codes);
    suite_add_tcase(s, rt);
    tcase_set_timeout(rt, 300); /* kernel builds on a cold cache take a few seconds each */
    TCase *num = tcase_create("numerics");
    tcase_set_timeout(num, 600);
    tcase_add_test(num, test_vs_reference);
    tcase_add_test(num, test_local_tiles);
    tcase_add_test(num, test_nan_propagates);
    tcase_add_test(num, test_deterministic);
    suite_add_tcase(s, num);
    return s;
}

int main(void)
{
    /* No OpenCL call here: PoCL starts worker threads, which a forked test would lack. */
    return attn_check_run(opencl_suite());
}

#endif /* ATTN_HAVE_OPENCL */
