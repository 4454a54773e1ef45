/* attn_backend_impl.h - the interface a backend implements (ref, cpu, opencl) and the
 * library-internal error reporting every layer uses. */
#ifndef ATTN_BACKEND_IMPL_H_
#define ATTN_BACKEND_IMPL_H_

#include "attn/attn.h"
#include "attn_problem.h"

typedef struct attn_backend_ops {
    const char *name;
    /* Set be->impl / be->describe; options already split by the caller are passed raw. */
    attn_status (*open)(attn_backend *be, const char *options);
    void (*close)(attn_backend *be);
    /* Capability check on a validated problem: ATTN_OK or ATTN_ERR_UNSUPPORTED with a message.
     * forward calls the same function first, so the two never disagree. NULL = all supported. */
    attn_status (*sdpa_supported)(attn_backend *be, const attn_sdpa_problem *p);
    attn_status (*sdpa_forward)(attn_backend *be, const attn_sdpa_problem *p);
    /* Name of the implementation (kernel specialisation) forward would run for p, e.g.
     * "cpu:flash_blis_br64_bc256"; written to buf (NUL-terminated). NULL = backend name. */
    void (*sdpa_impl_name)(attn_backend *be, const attn_sdpa_problem *p, char *buf, size_t n);
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
extern const attn_backend_ops attn_cpu_ops;
#ifdef ATTN_HAVE_OPENCL
extern const attn_backend_ops attn_opencl_ops;
#endif

#endif /* ATTN_BACKEND_IMPL_H_ */
