/* ref_backend.c - the "ref" backend: the naive f64 definitions of reference/ behind the
 * common backend interface, so the ground truth is reachable through the public API. Host
 * memory only; each op's implementation is in reference/<op>_impl.c. */
#include "attn_backend_impl.h"

#include <stdio.h>
#include <stdlib.h>

static attn_status ref_open(attn_backend *be, const char *options)
{
    if (options != NULL && options[0] != '\0')
        return attn_fail(ATTN_ERR_BACKEND, "ref: takes no options (got \"%s\")", options);
    be->impl = NULL;
    snprintf(be->describe, sizeof be->describe,
             "ref: naive SDPA definition, f64 accumulation (reference/sdpa.c)");
    return attn_ok();
}

static void ref_close(attn_backend *be)
{
    (void)be;
}

const attn_backend_ops attn_ref_ops = {
    .name = "ref",
    .id = ATTN_BACKEND_REF,
    .host_only = 1,
    .open = ref_open,
    .close = ref_close,
};
