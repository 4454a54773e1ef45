/* attn_status.c - status names and the per-thread "last error" message. */
#include "attn_backend_impl.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_msg[512];

const char *attn_status_name(attn_status s)
{
    switch (s) {
    case ATTN_OK: return "ATTN_OK";
    case ATTN_ERR_NULL_POINTER: return "ATTN_ERR_NULL_POINTER";
    case ATTN_ERR_INVALID_ARGUMENT: return "ATTN_ERR_INVALID_ARGUMENT";
    case ATTN_ERR_SHAPE: return "ATTN_ERR_SHAPE";
    case ATTN_ERR_DTYPE: return "ATTN_ERR_DTYPE";
    case ATTN_ERR_STRIDE: return "ATTN_ERR_STRIDE";
    case ATTN_ERR_OVERFLOW: return "ATTN_ERR_OVERFLOW";
    case ATTN_ERR_HEADS: return "ATTN_ERR_HEADS";
    case ATTN_ERR_WINDOW: return "ATTN_ERR_WINDOW";
    case ATTN_ERR_ALIAS: return "ATTN_ERR_ALIAS";
    case ATTN_ERR_BACKEND: return "ATTN_ERR_BACKEND";
    case ATTN_ERR_UNSUPPORTED: return "ATTN_ERR_UNSUPPORTED";
    case ATTN_ERR_BUFFER: return "ATTN_ERR_BUFFER";
    case ATTN_ERR_OUT_OF_MEMORY: return "ATTN_ERR_OUT_OF_MEMORY";
    case ATTN_ERR_DEVICE: return "ATTN_ERR_DEVICE";
    case ATTN_ERR_INTERNAL: return "ATTN_ERR_INTERNAL";
    case ATTN_ERR_IO: return "ATTN_ERR_IO";
    case ATTN_ERR_FORMAT: return "ATTN_ERR_FORMAT";
    }
    return "ATTN_ERR_UNKNOWN";
}

const char *attn_last_error(void)
{
    return last_msg;
}

attn_status attn_fail(attn_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    return s;
}

attn_status attn_ok(void)
{
    last_msg[0] = '\0';
    return ATTN_OK;
}
