/* attn_backend.c - the backend registry (built-in backends by name) and backend-owned
 * buffers. Op calls go through attn_op.c. */
#include "attn_backend_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slots of backends this build leaves out stay NULL. */
static const attn_backend_ops *const registry[ATTN_BACKEND_COUNT] = {
    [ATTN_BACKEND_REF] = &attn_ref_ops,
#ifdef ATTN_HAVE_CPU
    [ATTN_BACKEND_CPU] = &attn_cpu_ops,
#endif
#ifdef ATTN_HAVE_OPENCL
    [ATTN_BACKEND_OPENCL] = &attn_opencl_ops,
#endif
};

/* The names of the built backends, registry order, listed once from the registry. */
static const char *registry_names[ATTN_BACKEND_COUNT + 1];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void list_names(void)
{
    size_t k = 0;
    for (size_t i = 0; i < ATTN_BACKEND_COUNT; i++)
        if (registry[i])
            registry_names[k++] = registry[i]->name;
    registry_names[k] = NULL;
}

const char *const *attn_backend_list(void)
{
    pthread_once(&names_once, list_names);
    return registry_names;
}

attn_status attn_backend_open(const char *name, const char *options, attn_backend **out)
{
    if (!name || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_backend_open: %s is NULL",
                         name ? "out" : "name");
    const attn_backend_ops *ops = NULL;
    for (size_t i = 0; i < ATTN_BACKEND_COUNT; i++)
        if (registry[i] && strcmp(registry[i]->name, name) == 0)
            ops = registry[i];
    if (!ops) {
        char avail[128] = "";
        const char *const *list = attn_backend_list();
        for (const char *const *n = list; *n; n++)
            snprintf(avail + strlen(avail), sizeof avail - strlen(avail), "%s%s",
                     n == list ? "" : ", ", *n);
        return attn_fail(ATTN_ERR_BACKEND, "unknown backend '%s' (available: %s)", name, avail);
    }
    attn_backend *be = calloc(1, sizeof *be);
    if (!be)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_backend_open: out of memory");
    be->ops = ops;
    strncpy(be->describe, ops->name, sizeof be->describe - 1);
    attn_status st = ops->open ? ops->open(be, options) : ATTN_OK;
    if (st != ATTN_OK) {
        free(be);
        return st; /* the backend has set the message */
    }
    *out = be;
    return attn_ok();
}

void attn_backend_close(attn_backend *be)
{
    if (!be)
        return;
    if (be->ops->close)
        be->ops->close(be);
    free(be);
}

const char *attn_backend_name(const attn_backend *be)
{
    return be ? be->ops->name : "(null)";
}

const char *attn_backend_describe(const attn_backend *be)
{
    return be ? be->describe : "(null)";
}

/* ---- buffers ---- */

attn_status attn_buffer_alloc(attn_backend *be, size_t bytes, attn_buffer **out)
{
    if (!be || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_buffer_alloc: %s is NULL",
                         be ? "out" : "backend");
    if (bytes == 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "attn_buffer_alloc: size 0");
    attn_buffer *buf = calloc(1, sizeof *buf);
    if (!buf)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_buffer_alloc: out of memory");
    buf->be = be;
    buf->size = bytes;
    attn_status st = ATTN_OK;
    if (be->ops->buffer_alloc) {
        st = be->ops->buffer_alloc(be, buf);
    } else {
        buf->host = calloc(1, bytes);
        if (!buf->host)
            st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_buffer_alloc: cannot allocate %zu bytes",
                           bytes);
    }
    if (st != ATTN_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return attn_ok();
}

void attn_buffer_free(attn_buffer *buf)
{
    if (!buf)
        return;
    if (buf->be->ops->buffer_free)
        buf->be->ops->buffer_free(buf);
    else
        free(buf->host);
    free(buf);
}

size_t attn_buffer_size(const attn_buffer *buf)
{
    return buf ? buf->size : 0;
}

static attn_status check_range(const attn_buffer *buf, const void *p, size_t off, size_t n,
                               const char *fn)
{
    if (!buf || (!p && n))
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: %s is NULL", fn, buf ? "host pointer" : "buffer");
    if (off > buf->size || n > buf->size - off)
        return attn_fail(ATTN_ERR_BUFFER, "%s: range [%zu, +%zu) exceeds buffer size %zu", fn, off,
                         n, buf->size);
    return ATTN_OK;
}

attn_status attn_buffer_write(attn_buffer *buf, size_t off, const void *src, size_t n)
{
    attn_status st = check_range(buf, src, off, n, "attn_buffer_write");
    if (st != ATTN_OK)
        return st;
    if (buf->be->ops->buffer_write)
        return buf->be->ops->buffer_write(buf, off, src, n);
    if (n)
        memcpy((char *)buf->host + off, src, n);
    return attn_ok();
}

attn_status attn_buffer_read(const attn_buffer *buf, size_t off, void *dst, size_t n)
{
    attn_status st = check_range(buf, dst, off, n, "attn_buffer_read");
    if (st != ATTN_OK)
        return st;
    if (buf->be->ops->buffer_read)
        return buf->be->ops->buffer_read(buf, off, dst, n);
    if (n)
        memcpy(dst, (const char *)buf->host + off, n);
    return attn_ok();
}
