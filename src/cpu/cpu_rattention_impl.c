/* cpu_rattention_impl.c - RATTENTION on the cpu backend (placeholder until its kernels land: every
 * call answers ATTN_ERR_UNSUPPORTED). */
#include "attn_backend_impl.h"
#include "attn_rattention_problem.h"

static attn_status ratt_supported(attn_backend *be, const void *problem)
{
    (void)be;
    (void)problem;
    return attn_fail(ATTN_ERR_UNSUPPORTED, "cpu: rattention is not implemented yet");
}

static attn_status ratt_run(attn_backend *be, const void *problem)
{
    return ratt_supported(be, problem);
}

const attn_op_impl attn_cpu_rattention_impl = {
    .supported = ratt_supported,
    .run = ratt_run,
    .impl_name = NULL,
};
