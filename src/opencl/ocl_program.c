/* ocl_program.c - kernel sources (embedded at build time, or read from a directory for kernel
 * development), lazy per-specialisation builds, and the program cache: in memory per backend,
 * and on disk as device binaries keyed by XXH3 of source, options, device, driver, platform.
 * The in-memory list and the counters change under the backend's lock, held across a build so
 * that threads asking for the same specialisation build it once. */
#include "ocl_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

struct attn_cl_program {
    uint64_t key;
    cl_program program;
    attn_cl_program *next;
};

/* ---- sources ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* One kernel file as a malloc'ed string, from kernel_dir or the embedded copies. */
static attn_status source_of(const attn_cl_backend *cb, const char *file, char **out)
{
    size_t len = 0;
    if (cb->kernel_dir[0]) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", cb->kernel_dir, file);
        if (!(*out = read_file(path, &len)))
            return attn_fail(ATTN_ERR_BACKEND, "opencl: cannot read kernel file %s: %s", path,
                             strerror(errno));
        return ATTN_OK;
    }
    for (int i = 0; i < attn_cl_embedded_count; i++)
        if (strcmp(attn_cl_embedded[i].name, file) == 0) {
            if (!(*out = strdup(attn_cl_embedded[i].text)))
                return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "opencl: out of memory");
            return ATTN_OK;
        }
    return attn_fail(ATTN_ERR_INTERNAL, "opencl: no embedded kernel file %s", file);
}

/* common.cl followed by `file`, the text every program is built from; `file` may list several
 * files joined by '+' (a kernel file building on another's functions, e.g.
 * "linear_chunk.cl+linear_chunk_bwd.cl"), appended in that order. */
static attn_status program_source(const attn_cl_backend *cb, const char *file, char **out)
{
    char *text = NULL;
    attn_status st = source_of(cb, "common.cl", &text);
    for (const char *f = file; st == ATTN_OK && *f;) {
        const size_t len = strcspn(f, "+");
        char name[256], *body = NULL;
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), f);
        st = source_of(cb, name, &body);
        char *joined = st == ATTN_OK ? malloc(strlen(text) + strlen(body) + 2) : NULL;
        if (joined)
            sprintf(joined, "%s\n%s", text, body);
        else if (st == ATTN_OK)
            st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "opencl: out of memory");
        free(body);
        free(text);
        text = joined;
        f += len + (f[len] == '+');
    }
    if (st == ATTN_OK)
        *out = text;
    else
        free(text);
    return st;
}

static uint64_t program_key(const attn_cl_backend *cb, const char *src, const char *options)
{
    const char *parts[] = {src, options, cb->info.name, cb->info.driver_version,
                           cb->info.platform_version};
    XXH3_state_t *s = XXH3_createState();
    if (!s) /* no memory: a key over the source alone still never mixes devices in memory */
        return XXH3_64bits(src, strlen(src));
    XXH3_64bits_reset(s);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        XXH3_64bits_update(s, parts[i], strlen(parts[i]) + 1); /* NUL separates the parts */
    uint64_t h = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return h;
}

/* ---- disk cache (best effort: any failure just means a rebuild) ---- */

static void cache_path(const attn_cl_backend *cb, uint64_t key, char *path, size_t n)
{
    snprintf(path, n, "%s/%016llx.clbin", cb->cache_dir, (unsigned long long)key);
}

static cl_program load_cached(attn_cl_backend *cb, uint64_t key, const char *options)
{
    if (!cb->cache_dir[0])
        return NULL;
    char path[600];
    cache_path(cb, key, path, sizeof path);
    size_t len = 0;
    unsigned char *bin = (unsigned char *)read_file(path, &len);
    if (!bin)
        return NULL;
    cl_int err, bin_status;
    const unsigned char *bins[1] = {bin};
    cl_program prog = clCreateProgramWithBinary(cb->ctx, 1, &cb->device, &len, bins,
                                                &bin_status, &err);
    free(bin);
    if (err != CL_SUCCESS || bin_status != CL_SUCCESS)
        return NULL;
    if (clBuildProgram(prog, 1, &cb->device, options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(prog);
        return NULL;
    }
    return prog;
}

static int mkdir_p(const char *dir)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void store_cached(attn_cl_backend *cb, uint64_t key, cl_program prog)
{
    size_t len = 0;
    if (!cb->cache_dir[0] || mkdir_p(cb->cache_dir) != 0 ||
        clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS ||
        len == 0)
        return;
    unsigned char *bin = malloc(len);
    unsigned char *bins[1] = {bin};
    char path[600], tmp[640];
    cache_path(cb, key, path, sizeof path);
    /* A name of this store alone: other processes (pid) and other handles of this one. */
    static atomic_ulong stores;
    snprintf(tmp, sizeof tmp, "%s.%ld.%lu.tmp", path, (long)getpid(),
             (unsigned long)atomic_fetch_add(&stores, 1));
    if (bin && clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) ==
                   CL_SUCCESS) {
        FILE *f = fopen(tmp, "wb");
        int ok = f && fwrite(bin, 1, len, f) == len;
        if (f && fclose(f) != 0)
            ok = 0;
        /* rename() is atomic: concurrent processes see a whole binary or none. */
        if (ok && rename(tmp, path) == 0)
            cb->stats.disk_stores++;
        else
            remove(tmp);
    }
    free(bin);
}

/* ---- builds ---- */

static attn_status build_failed(attn_cl_backend *cb, cl_program prog, cl_int err,
                                const char *file, const char *options)
{
    char log[300] = "";
    size_t n = 0;
    if (clGetProgramBuildInfo(prog, cb->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, &n) !=
        CL_SUCCESS) {
        /* Log longer than the buffer: fetch it whole and keep its head. */
        char *full = n ? malloc(n + 1) : NULL;
        if (full && clGetProgramBuildInfo(prog, cb->device, CL_PROGRAM_BUILD_LOG, n, full,
                                          NULL) == CL_SUCCESS)
            snprintf(log, sizeof log, "%s", full);
        free(full);
    }
    log[sizeof log - 1] = '\0';
    clReleaseProgram(prog);
    /* The log first: attn_last_error() keeps 511 characters and the options are long. */
    return attn_fail(ATTN_ERR_DEVICE, "opencl: building %s failed: %s (%d); log: %s; options '%s'",
                     file, attn_opencl_error_name(err), (int)err, log, options);
}

static attn_status build_from_source(attn_cl_backend *cb, const char *file, const char *src,
                                     const char *options, cl_program *out)
{
    cl_int err;
    cl_program prog = clCreateProgramWithSource(cb->ctx, 1, &src, NULL, &err);
    ATTN_CL_TRY(err, "clCreateProgramWithSource");
    err = clBuildProgram(prog, 1, &cb->device, options, NULL, NULL);
    if (err != CL_SUCCESS)
        return build_failed(cb, prog, err, file, options);
    cb->stats.source_builds++;
    *out = prog;
    return ATTN_OK;
}

static attn_cl_program *find_program(attn_cl_backend *cb, uint64_t key)
{
    for (attn_cl_program *p = cb->programs; p; p = p->next)
        if (p->key == key)
            return p;
    return NULL;
}

/* The program for `key` (source `src`): memory, else disk cache, else a build from source.
 * Called with the lock held. */
static attn_status find_or_build(attn_cl_backend *cb, const char *file, const char *src,
                                 uint64_t key, const char *options, cl_program *out)
{
    attn_cl_program *p = find_program(cb, key);
    if (p) {
        cb->stats.memory_hits++;
        *out = p->program;
        return ATTN_OK;
    }
    cl_program prog = load_cached(cb, key, options);
    attn_status st = ATTN_OK;
    if (prog) {
        cb->stats.disk_hits++;
    } else {
        st = build_from_source(cb, file, src, options, &prog);
        if (st == ATTN_OK)
            store_cached(cb, key, prog);
    }
    if (st != ATTN_OK)
        return st;
    if (!(p = calloc(1, sizeof *p))) {
        clReleaseProgram(prog);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "opencl: out of memory");
    }
    p->key = key;
    p->program = prog;
    p->next = cb->programs;
    cb->programs = p;
    *out = prog;
    return ATTN_OK;
}

/* Every build's options: OpenCL C 1.2 with strict math (never -cl-fast-relaxed-math or
 * -cl-mad-enable: conformance compares against an f64 reference); -w, which only silences
 * diagnostics some compilers print to stderr (PoCL: float16 ABI notes), the build log keeps
 * errors; common.cl's storage dtype codes, taken from attn_dtype itself so the kernels never
 * hold a copy of them (common.cl's own values are defaults for standalone compiles); then the
 * op's specialisation. */
static void build_options(const char *op_options, char *buf, size_t n)
{
    snprintf(buf, n, "-cl-std=CL1.2 -w -DATTN_DT_F32=%d -DATTN_DT_F16=%d -DATTN_DT_BF16=%d %s",
             (int)ATTN_F32, (int)ATTN_F16, (int)ATTN_BF16, op_options);
}

/* The program of (file, op_options); it lives until the backend closes. */
static attn_status get_program(attn_cl_backend *cb, const char *file, const char *op_options,
                               cl_program *out)
{
    char options[1024];
    build_options(op_options, options, sizeof options);
    char *src = NULL;
    attn_status st = program_source(cb, file, &src);
    if (st != ATTN_OK)
        return st;
    uint64_t key = program_key(cb, src, options);
    pthread_mutex_lock(&cb->lock);
    st = find_or_build(cb, file, src, key, options, out);
    pthread_mutex_unlock(&cb->lock);
    free(src);
    return st;
}

attn_status attn_cl_create_kernel(attn_cl_backend *cb, const char *file, const char *kernel,
                                  const char *options, cl_kernel *out)
{
    cl_program prog = NULL;
    attn_status st = get_program(cb, file, options, &prog);
    if (st != ATTN_OK)
        return st;
    cl_int err;
    *out = clCreateKernel(prog, kernel, &err);
    ATTN_CL_TRY(err, "clCreateKernel");
    return ATTN_OK;
}

void attn_cl_programs_free(attn_cl_backend *cb)
{
    while (cb->programs) {
        attn_cl_program *p = cb->programs;
        cb->programs = p->next;
        clReleaseProgram(p->program);
        free(p);
    }
}
