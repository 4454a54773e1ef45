/* attn_core.h - the op-neutral part of the public C API: export macro, version, status codes
 * and messages, dtypes, strided tensor views, backends and backend-owned buffers. Each op has
 * its own header (attn_sdpa.h, ...); attn.h includes them all.
 * Every function returns an attn_status or a plain value; the library never aborts or exits. */
#ifndef ATTN_CORE_H_
#define ATTN_CORE_H_

#include <stddef.h>
#include <stdint.h>

#include "attn/attn_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ATTN_API marks the exported functions. Only the library's own build defines
 * ATTN_BUILDING_LIBRARY (it compiles with hidden visibility and exports these); a user of the
 * shared library on Windows gets dllimport, elsewhere nothing. ATTN_STATIC: linking the static
 * library on Windows. */
#if defined(_WIN32) || defined(__CYGWIN__)
#if defined(ATTN_BUILDING_LIBRARY)
#define ATTN_API __declspec(dllexport)
#elif defined(ATTN_STATIC)
#define ATTN_API
#else
#define ATTN_API __declspec(dllimport)
#endif
#elif defined(ATTN_BUILDING_LIBRARY) && defined(__GNUC__)
#define ATTN_API __attribute__((visibility("default")))
#else
#define ATTN_API
#endif

/* ---- version ----------------------------------------------------------------------------- */
/* The library's version, "MAJOR.MINOR.PATCH", as built (compare with ATTN_VERSION_STRING of
 * the headers a program was compiled with). */
ATTN_API const char *attn_version(void);
/* ATTN_VERSION_NUMBER of the library as built. */
ATTN_API int attn_version_number(void);

/* ---- status ------------------------------------------------------------------------------ */
typedef enum attn_status {
    ATTN_OK = 0,
    ATTN_ERR_NULL_POINTER = -1000, /* a required pointer argument is NULL */
    ATTN_ERR_INVALID_ARGUMENT,     /* a scalar argument is out of its domain (scale, cap, enum) */
    ATTN_ERR_SHAPE,                /* shapes disagree or a size is not positive */
    ATTN_ERR_DTYPE,                /* dtype not allowed for this tensor */
    ATTN_ERR_STRIDE,               /* negative stride, or an output whose elements overlap */
    ATTN_ERR_OVERFLOW,             /* a size or offset overflows 64-bit / size_t arithmetic */
    ATTN_ERR_HEADS,                /* Hq is not a multiple of Hkv */
    ATTN_ERR_WINDOW,               /* window_left / window_right out of range or inconsistent */
    ATTN_ERR_ALIAS,                /* an output overlaps an input or another output */
    ATTN_ERR_BACKEND = -2000,      /* unknown backend name or bad backend options */
    ATTN_ERR_UNSUPPORTED,          /* valid problem this backend / device cannot run */
    ATTN_ERR_BUFFER,               /* buffer of another backend, or access out of its bounds */
    ATTN_ERR_OUT_OF_MEMORY,
    ATTN_ERR_DEVICE,               /* the device or its runtime failed (message has details) */
    ATTN_ERR_INTERNAL,
    ATTN_ERR_IO = -3000,           /* a file could not be opened, read or written */
    ATTN_ERR_FORMAT                /* a file's content is malformed (safetensors, JSON) */
} attn_status;

/* Short constant name of a status ("ATTN_ERR_SHAPE"). Never NULL. */
ATTN_API const char *attn_status_name(attn_status s);
/* Readable message of the last failing call on this thread ("" after success). */
ATTN_API const char *attn_last_error(void);

/* ---- tensors ----------------------------------------------------------------------------- */
typedef enum attn_dtype {
    ATTN_F32 = 0,
    ATTN_F16 = 1,  /* IEEE binary16 */
    ATTN_BF16 = 2, /* bfloat16 */
    ATTN_U8 = 3,   /* boolean masks only: nonzero = visible */
    ATTN_I32 = 4,  /* integer positions (rope) */
    ATTN_I64 = 5
} attn_dtype;

ATTN_API const char *attn_dtype_name(attn_dtype t);
ATTN_API size_t attn_dtype_size(attn_dtype t); /* 0 for an unknown dtype */

typedef struct attn_buffer attn_buffer; /* backend-owned memory (device-resident for opencl) */

/* A 4-D view [batch, seq, heads, dim] with element strides. Exactly one of `data` (host memory)
 * or `buffer` (backend memory) is set; `offset` is a byte offset added to either. Host data must
 * be aligned to its element size. Views into a larger allocation (a KV
 * cache, a BHSD tensor) are expressed with strides; nothing is copied. Strides must be >= 0; a
 * stride may be 0 only on a dimension of size 1, or on a broadcast input. */
typedef struct attn_tensor {
    void *data;
    attn_buffer *buffer;
    size_t offset;
    attn_dtype dtype;
    int64_t shape[4];
    int64_t stride[4];
} attn_tensor;

/* Contiguous [B, S, H, D] (BSHD) and [B, H, S, D] (BHSD) host views, shape still [B, S, H, D]. */
ATTN_API attn_tensor attn_tensor_bshd(void *data, attn_dtype t, int64_t b, int64_t s, int64_t h,
                                      int64_t d);
ATTN_API attn_tensor attn_tensor_bhsd(void *data, attn_dtype t, int64_t b, int64_t s, int64_t h,
                                      int64_t d);

/* ---- backends and buffers ---------------------------------------------------------------- */
typedef struct attn_backend attn_backend;

/* name: "ref" (double-precision ground truth), "cpu" (fast), "opencl". options: NULL or
 * "key=value,key=value" (cpu: threads=N; see docs/backends.md). A backend handle may be used
 * by several threads at once: concurrent calls give the same results as serial ones. */
ATTN_API attn_status attn_backend_open(const char *name, const char *options, attn_backend **out);
ATTN_API void attn_backend_close(attn_backend *be);
ATTN_API const char *attn_backend_name(const attn_backend *be);
/* One line describing the implementation (e.g. "cpu: BLIS 0.9.0 kernels zen3, 2 threads"). */
ATTN_API const char *attn_backend_describe(const attn_backend *be);
/* Names of the built-in backends, NULL-terminated. */
ATTN_API const char *const *attn_backend_list(void);

ATTN_API attn_status attn_buffer_alloc(attn_backend *be, size_t bytes, attn_buffer **out);
ATTN_API void attn_buffer_free(attn_buffer *buf);
ATTN_API size_t attn_buffer_size(const attn_buffer *buf);
ATTN_API attn_status attn_buffer_write(attn_buffer *buf, size_t offset, const void *src,
                                       size_t bytes);
ATTN_API attn_status attn_buffer_read(const attn_buffer *buf, size_t offset, void *dst,
                                      size_t bytes);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_CORE_H_ */
