/* ocl_backend.c - the "opencl" backend: option parsing, context/queue setup on the selected
 * device, device-resident buffers (buf->impl is a cl_mem), and the public queries of
 * attn_opencl.h about an open backend. */
/* clCreateCommandQueue, for platforms of OpenCL 1.x (create_context). */
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include "ocl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cl_options {
    char device[32];
    char kernels[512];
    char cache[512];
    int tune[5];   /* br, bc, vw, wg, local; -1 = table default */
    int chunk;     /* chunk length of the chunked linear forms; 0 = each op's default */
} cl_options;

static const char *const tune_keys[5] = {"br", "bc", "vw", "wg", "local"};

static attn_status parse_int(const char *key, const char *val, int *out)
{
    int is_flag = strcmp(key, "local") == 0;
    char *end;
    long x = strtol(val, &end, 10);
    if (end == val || *end || x < (is_flag ? 0 : 1) || x > (is_flag ? 1 : 1 << 20))
        return attn_fail(ATTN_ERR_BACKEND, "opencl: option %s=%s: expected %s", key, val,
                         is_flag ? "0 or 1" : "a positive integer");
    *out = (int)x;
    return ATTN_OK;
}

static attn_status set_option(cl_options *o, const char *key, const char *val)
{
    if (strcmp(key, "device") == 0)
        snprintf(o->device, sizeof o->device, "%s", val);
    else if (strcmp(key, "kernels") == 0)
        snprintf(o->kernels, sizeof o->kernels, "%s", val);
    else if (strcmp(key, "cache") == 0)
        snprintf(o->cache, sizeof o->cache, "%s", val);
    else if (strcmp(key, "chunk") == 0)
        return parse_int(key, val, &o->chunk);
    else {
        for (int i = 0; i < 5; i++)
            if (strcmp(key, tune_keys[i]) == 0)
                return parse_int(key, val, &o->tune[i]);
        return attn_fail(ATTN_ERR_BACKEND,
                         "opencl: unknown option '%s' (device, kernels, cache, br, bc, vw, wg, "
                         "local, chunk)",
                         key);
    }
    return ATTN_OK;
}

static void env_default(char *dst, size_t n, const char *env)
{
    const char *v = getenv(env);
    if (!dst[0] && v && *v)
        snprintf(dst, n, "%s", v);
}

/* "key=value,key=value" over the environment defaults. */
static attn_status parse_options(const char *options, cl_options *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < 5; i++)
        o->tune[i] = -1;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", options ? options : "");
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return attn_fail(ATTN_ERR_BACKEND, "opencl: option '%s' is not key=value", tok);
        *eq = '\0';
        attn_status st = set_option(o, tok, eq + 1);
        if (st != ATTN_OK)
            return st;
    }
    env_default(o->device, sizeof o->device, "ATTN_OPENCL_DEVICE");
    env_default(o->kernels, sizeof o->kernels, "ATTN_CL_KERNEL_DIR");
    env_default(o->cache, sizeof o->cache, "ATTN_CL_CACHE_DIR");
    return ATTN_OK;
}

static void resolve_cache_dir(const char *opt, char *dir, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (strcmp(opt, "off") == 0)
        dir[0] = '\0';
    else if (opt[0])
        snprintf(dir, n, "%s", opt);
    else if (xdg && *xdg)
        snprintf(dir, n, "%s/attn", xdg);
    else if (home && *home)
        snprintf(dir, n, "%s/.cache/attn", home);
    else
        dir[0] = '\0';
}

static void cl_close(attn_backend *be)
{
    attn_cl_backend *cb = be->impl;
    if (!cb)
        return;
    attn_cl_programs_free(cb);
    if (cb->queue)
        clReleaseCommandQueue(cb->queue);
    if (cb->ctx)
        clReleaseContext(cb->ctx);
    pthread_mutex_destroy(&cb->lock);
    free(cb);
    be->impl = NULL;
}

/* Major version of "OpenCL <major>.<minor> <vendor text>" (1 if unreadable). */
static int platform_major(const char *version)
{
    int major = 1, minor = 0;
    if (sscanf(version, "OpenCL %d.%d", &major, &minor) != 2)
        major = 1;
    return major;
}

static attn_status create_context(attn_cl_backend *cb)
{
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)cb->platform,
                                     0};
    cb->ctx = clCreateContext(props, 1, &cb->device, NULL, NULL, &err);
    ATTN_CL_TRY(err, "clCreateContext");
    /* clCreateCommandQueueWithProperties is OpenCL 2.0: a 1.2 platform's dispatch table may
     * not have it (the ICD loader then calls nothing sane), so 1.x platforms get the 1.2 call. */
    if (platform_major(cb->info.platform_version) >= 2) {
        cb->queue = clCreateCommandQueueWithProperties(cb->ctx, cb->device, NULL, &err);
        ATTN_CL_TRY(err, "clCreateCommandQueueWithProperties");
    } else {
        cb->queue = clCreateCommandQueue(cb->ctx, cb->device, 0, &err);
        ATTN_CL_TRY(err, "clCreateCommandQueue");
    }
    return ATTN_OK;
}

static attn_status setup(attn_backend *be, attn_cl_backend *cb, const cl_options *o)
{
    int pi, di;
    attn_status st = attn_cl_select_device(o->device, &cb->platform, &cb->device, &pi, &di);
    if (st != ATTN_OK || (st = attn_cl_device_info(cb->platform, cb->device, pi, di,
                                                   &cb->info)) != ATTN_OK)
        return st;
    const char *entry = "";
    cb->tune = attn_cl_tune_for(&cb->info, &entry);
    int *t[5] = {&cb->tune.br, &cb->tune.bc, &cb->tune.vw, &cb->tune.wg, &cb->tune.local};
    for (int i = 0; i < 5; i++)
        if (o->tune[i] >= 0) {
            *t[i] = o->tune[i];
            cb->tune_set[i] = 1;
        }
    cb->chunk = o->chunk;
    snprintf(cb->kernel_dir, sizeof cb->kernel_dir, "%s", o->kernels);
    resolve_cache_dir(o->cache, cb->cache_dir, sizeof cb->cache_dir);
    snprintf(cb->stats.cache_dir, sizeof cb->stats.cache_dir, "%s", cb->cache_dir);
    if ((st = create_context(cb)) != ATTN_OK)
        return st;
    snprintf(be->describe, sizeof be->describe,
             "opencl: %.64s (%.40s, driver %.24s), %u CUs; tuning %s br%d bc%d vw%d wg%d%s; "
             "kernels %.40s",
             cb->info.name, cb->info.platform_name, cb->info.driver_version,
             cb->info.compute_units, entry, cb->tune.br, cb->tune.bc, cb->tune.vw, cb->tune.wg,
             cb->tune.local ? " local" : "",
             cb->kernel_dir[0] ? cb->kernel_dir : "embedded");
    return ATTN_OK;
}

static attn_status cl_open(attn_backend *be, const char *options)
{
    cl_options o;
    attn_status st = parse_options(options, &o);
    if (st != ATTN_OK)
        return st;
    attn_cl_backend *cb = calloc(1, sizeof *cb);
    if (!cb)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "opencl: out of memory");
    if (pthread_mutex_init(&cb->lock, NULL) != 0) {
        free(cb);
        return attn_fail(ATTN_ERR_BACKEND, "opencl: cannot create the backend's mutex");
    }
    be->impl = cb;
    if ((st = setup(be, cb, &o)) != ATTN_OK) {
        cl_close(be);
        return st;
    }
    return ATTN_OK;
}

/* ---- buffers ---- */

static attn_status cl_buffer_alloc(attn_backend *be, attn_buffer *buf)
{
    attn_cl_backend *cb = be->impl;
    cl_int err;
    cl_mem m = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE, buf->size, NULL, &err);
    ATTN_CL_TRY(err, "clCreateBuffer");
    buf->impl = m;
    return ATTN_OK;
}

static void cl_buffer_free(attn_buffer *buf)
{
    if (buf->impl)
        clReleaseMemObject((cl_mem)buf->impl);
}

static attn_status cl_buffer_write(attn_buffer *buf, size_t off, const void *src, size_t n)
{
    attn_cl_backend *cb = buf->be->impl;
    if (n)
        ATTN_CL_TRY(clEnqueueWriteBuffer(cb->queue, (cl_mem)buf->impl, CL_TRUE, off, n, src, 0,
                                         NULL, NULL),
                    "clEnqueueWriteBuffer");
    return ATTN_OK;
}

static attn_status cl_buffer_read(const attn_buffer *buf, size_t off, void *dst, size_t n)
{
    attn_cl_backend *cb = buf->be->impl;
    if (n)
        ATTN_CL_TRY(clEnqueueReadBuffer(cb->queue, (cl_mem)buf->impl, CL_TRUE, off, n, dst, 0,
                                        NULL, NULL),
                    "clEnqueueReadBuffer");
    return ATTN_OK;
}

const attn_backend_ops attn_opencl_ops = {
    .name = "opencl",
    .id = ATTN_BACKEND_OPENCL,
    .host_only = 0,
    .open = cl_open,
    .close = cl_close,
    .buffer_alloc = cl_buffer_alloc,
    .buffer_free = cl_buffer_free,
    .buffer_write = cl_buffer_write,
    .buffer_read = cl_buffer_read,
};

/* ---- public queries ---- */

static attn_status cl_backend_of(const attn_backend *be, attn_cl_backend **cb)
{
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "opencl: backend is NULL");
    if (be->ops != &attn_opencl_ops)
        return attn_fail(ATTN_ERR_BACKEND, "backend '%s' is not the opencl backend",
                         be->ops->name);
    *cb = be->impl;
    return ATTN_OK;
}

attn_status attn_opencl_backend_device(const attn_backend *be, attn_opencl_device_info *out)
{
    attn_cl_backend *cb = NULL;
    attn_status st = cl_backend_of(be, &cb);
    if (st != ATTN_OK)
        return st;
    if (!out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_opencl_backend_device: out is NULL");
    *out = cb->info;
    return attn_ok();
}

attn_status attn_opencl_backend_stats(const attn_backend *be, attn_opencl_stats *out)
{
    attn_cl_backend *cb = NULL;
    attn_status st = cl_backend_of(be, &cb);
    if (st != ATTN_OK)
        return st;
    if (!out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_opencl_backend_stats: out is NULL");
    pthread_mutex_lock(&cb->lock);
    *out = cb->stats;
    pthread_mutex_unlock(&cb->lock);
    return attn_ok();
}

void attn_cl_note_kernel(attn_cl_backend *cb, const char *name)
{
    pthread_mutex_lock(&cb->lock);
    snprintf(cb->stats.last_kernel, sizeof cb->stats.last_kernel, "%s", name);
    pthread_mutex_unlock(&cb->lock);
}
