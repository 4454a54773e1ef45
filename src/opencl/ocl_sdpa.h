/* ocl_sdpa.h - what the SDPA forward (ocl_sdpa.c) and backward (ocl_sdpa_backward.c) host
 * code share: operand binding (device buffers in place; host inputs uploaded, host outputs
 * written to a compact buffer and scattered back), the call's chain of commands on the shared
 * queue, kernel arguments and launches. Defined in ocl_sdpa.c. */
#ifndef ATTN_OCL_SDPA_H_
#define ATTN_OCL_SDPA_H_

#include "attn_sdpa_problem.h"
#include "ocl_internal.h"

static inline int64_t attn_cl_ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* ---- operands ---- */

typedef struct attn_cl_operand {
    cl_mem mem;       /* NULL when absent */
    cl_ulong off;     /* element offset */
    cl_long4 st;      /* element strides */
    int owned;        /* mem is a temporary of this call */
    void *gather;     /* host output: compact copy read back here, then scattered */
    size_t bytes;
} attn_cl_operand;

void attn_cl_set_strides(attn_cl_operand *c, const int64_t st[4]);
/* Inputs: a device buffer in place, or the host view's extent uploaded (absent: zeroed). */
attn_status attn_cl_bind_input(attn_cl_backend *cb, const attn_operand *o, attn_cl_operand *c);
/* Outputs: a device buffer in place, or a compact buffer of the view's own shape for a host
 * view (the kernels must write every element of it; an empty view gets no buffer). */
attn_status attn_cl_bind_output(attn_cl_backend *cb, const attn_operand *o, attn_cl_operand *c);
/* A temporary device buffer of `bytes` (at least one float, so an empty one is a buffer). */
attn_status attn_cl_scratch(attn_cl_backend *cb, size_t bytes, attn_cl_operand *c);
void attn_cl_release(attn_cl_operand *c);

/* ---- launches ---- */

/* The commands of one call on the shared queue: each waits for the call's previous one, and
 * the call waits for its last one only, never for what other threads enqueued meanwhile. */
typedef struct attn_cl_chain {
    attn_cl_backend *cb;
    cl_event last; /* NULL before the first command */
} attn_cl_chain;

cl_uint attn_cl_chain_wait(const attn_cl_chain *ch, const cl_event **list);
void attn_cl_chain_push(attn_cl_chain *ch, cl_event ev);
/* Blocks until the call's commands are done (all of them: each depends on the one before). */
cl_int attn_cl_chain_wait_all(attn_cl_chain *ch);
/* Reads the compact host outputs outs[0..n) back after the call's commands, waits for them,
 * then scatters each into the user's view ops[i]. */
attn_status attn_cl_finish(attn_cl_chain *ch, attn_cl_operand *const *outs,
                           const attn_operand *const *ops, int n);

/* Kernel arguments, set in order; the first failure is kept for the launch to report. */
typedef struct attn_cl_args {
    cl_kernel k;
    cl_uint i;
    cl_int err;
} attn_cl_args;

void attn_cl_arg(attn_cl_args *a, size_t size, const void *v);
void attn_cl_arg_long(attn_cl_args *a, int64_t x);
void attn_cl_arg_float(attn_cl_args *a, double x);
void attn_cl_arg_operand(attn_cl_args *a, const attn_cl_operand *c); /* mem, offset, strides */
/* Enqueues a's kernel (its arguments set) on items0 x items1 work-items (items1 = 1: a 1-D
 * launch) in groups of wg along dim 0, then releases the kernel: this call's own object. */
attn_status attn_cl_launch(attn_cl_chain *ch, attn_cl_args *a, const char *name,
                           int64_t items0, int64_t items1, int wg);

/* The SDPA backward (ocl_sdpa_backward.c): the op table's entries for p->backward. */
attn_status attn_cl_sdpa_backward_supported(attn_cl_backend *cb, const attn_sdpa_problem *p);
void attn_cl_sdpa_backward_impl_name(attn_cl_backend *cb, const attn_sdpa_problem *p, char *buf,
                                     size_t n);
attn_status attn_cl_sdpa_backward_run(attn_cl_backend *cb, const attn_sdpa_problem *p);

#endif /* ATTN_OCL_SDPA_H_ */
