/* attn_backend_impl.h - the interface a backend implements (ref, cpu, opencl): open/close,
 * buffers and the host-only flag (its per-op implementations live in each op's table, see
 * attn_op.h), and the library-internal error reporting every layer uses. */
#ifndef ATTN_BACKEND_IMPL_H_
#define ATTN_BACKEND_IMPL_H_

#include "attn/attn_core.h"
#include "attn_op.h"

typedef struct attn_backend_ops {
    const char *name;
    attn_backend_id id;  /* its column in every op's implementation table */
    /* 1: reads and writes operands on the host only; the core answers ATTN_ERR_UNSUPPORTED
     * for device-only buffers before the op's implementation runs. */
    int host_only;
    /* Set be->impl / be->describe; options already split by the caller are passed raw. */
    attn_status (*open)(attn_backend *be, const char *options);
    void (*close)(attn_backend *be);
    /* Buffers: NULL = host memory managed by the common layer. */
    attn_status (*buffer_alloc)(attn_backend *be, attn_buffer *buf);
    void (*buffer_free)(attn_buffer *buf);
    attn_status (*buffer_write)(attn_buffer *buf, size_t off, const void *src, size_t n);
    attn_status (*buffer_read)(const attn_buffer *buf, size_t off, void *dst, size_t n);
} attn_backend_ops;

struct attn_backend {
    const attn_backend_ops *ops;
    void *impl;          /* backend private state */
    char describe[256];
};

struct attn_buffer {
    attn_backend *be;
    size_t size;
    void *host;          /* host memory for host backends, else NULL */
    void *impl;          /* backend handle (cl_mem) */
};

/* Record a message for attn_last_error() and return s (printf-style). */
attn_status attn_fail(attn_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Clear the last error and return ATTN_OK. */
attn_status attn_ok(void);

extern const attn_backend_ops attn_ref_ops;
#ifdef ATTN_HAVE_CPU
extern const attn_backend_ops attn_cpu_ops;
#endif
#ifdef ATTN_HAVE_OPENCL
extern const attn_backend_ops attn_opencl_ops;
#endif

#endif /* ATTN_BACKEND_IMPL_H_ */
