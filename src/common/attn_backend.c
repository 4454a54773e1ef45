/* attn_backend.c - backend registry, backend-owned buffers, and the public SDPA entry points
 * (validate once, then the backend's capability check, then its implementation). */
#include "attn_backend_impl.h"
#include "attn_validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_backend_ops *const registry[] = {
    &attn_ref_ops, &attn_cpu_ops,
#ifdef ATTN_HAVE_OPENCL
    &attn_opencl_ops,
#endif
};
static const char *const registry_names[] = {
    "ref", "cpu",
#ifdef ATTN_HAVE_OPENCL
    "opencl",
#endif
    NULL};

const char *const *attn_backend_list(void)
{
    return registry_names;
}

attn_status attn_backend_open(const char *name, const char *options, attn_backend **out)
{
    if (!name || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_backend_open: %s is NULL",
                         name ? "out" : "name");
    const attn_backend_ops *ops = NULL;
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i]->name, name) == 0)
            ops = registry[i];
    if (!ops)
        return attn_fail(ATTN_ERR_BACKEND, "unknown backend '%s' (available: ref, cpu%s)", name,
#ifdef ATTN_HAVE_OPENCL
                         ", opencl"
#else
                         ""
#endif
        );
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

/* ---- SDPA entry points ---- */

static attn_status check_owner(const attn_backend *be, const attn_tensor *t, const char *name)
{
    if (t && t->buffer && t->buffer->be != be)
        return attn_fail(ATTN_ERR_BUFFER, "%s: buffer belongs to backend '%s', not '%s'", name,
                         t->buffer->be->ops->name, be->ops->name);
    return ATTN_OK;
}

static attn_status prepare(attn_backend *be, const attn_sdpa_desc *d, const attn_tensor *q,
                           const attn_tensor *k, const attn_tensor *v, const attn_tensor *out,
                           const attn_tensor *lse, attn_sdpa_problem *p)
{
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_sdpa: backend is NULL");
    attn_status st = attn_sdpa_validate(d, q, k, v, out, lse, p);
    if (st != ATTN_OK)
        return st;
    const attn_tensor *all[] = {q, k, v, out, lse, d->mask_add, d->mask_bool};
    const char *names[] = {"q", "k", "v", "out", "lse", "mask_add", "mask_bool"};
    for (int i = 0; i < 7; i++)
        if ((st = check_owner(be, all[i], names[i])) != ATTN_OK)
            return st;
    if (be->ops->sdpa_supported && (st = be->ops->sdpa_supported(be, p)) != ATTN_OK)
        return st;
    return ATTN_OK;
}

attn_status attn_sdpa_supported(attn_backend *be, const attn_sdpa_desc *d, const attn_tensor *q,
                                const attn_tensor *k, const attn_tensor *v,
                                const attn_tensor *out, const attn_tensor *lse)
{
    attn_sdpa_problem p;
    attn_status st = prepare(be, d, q, k, v, out, lse, &p);
    return st == ATTN_OK ? attn_ok() : st;
}

attn_status attn_sdpa_forward(attn_backend *be, const attn_sdpa_desc *d, const attn_tensor *q,
                              const attn_tensor *k, const attn_tensor *v, const attn_tensor *out,
                              const attn_tensor *lse)
{
    attn_sdpa_problem p;
    attn_status st = prepare(be, d, q, k, v, out, lse, &p);
    if (st != ATTN_OK)
        return st;
    st = be->ops->sdpa_forward(be, &p);
    return st == ATTN_OK ? attn_ok() : st;
}

attn_status attn_sdpa_impl_name(attn_backend *be, const attn_sdpa_desc *d, const attn_tensor *q,
                                const attn_tensor *k, const attn_tensor *v,
                                const attn_tensor *out, const attn_tensor *lse, char *buf,
                                size_t n)
{
    if (!buf || n == 0)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_sdpa_impl_name: buf is NULL or empty");
    attn_sdpa_problem p;
    attn_status st = prepare(be, d, q, k, v, out, lse, &p);
    if (st != ATTN_OK)
        return st;
    if (be->ops->sdpa_impl_name)
        be->ops->sdpa_impl_name(be, &p, buf, n);
    else
        snprintf(buf, n, "%s", be->ops->name);
    return attn_ok();
}
