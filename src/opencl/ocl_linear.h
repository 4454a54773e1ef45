/* ocl_linear.h - what the linear attention forward (ocl_linear.c) and backward
 * (ocl_linear_backward.c) host code share: operand binding (device buffers in place; a host
 * view copied to a device image of its extent and, for an output, read back whole, so the
 * bytes between a strided view's elements come back as they were) and the decay values; the
 * backward's entries of the op table. */
#ifndef ATTN_OCL_LINEAR_H_
#define ATTN_OCL_LINEAR_H_

#include "attn_linear_problem.h"
#include "ocl_internal.h"

/* An operand on the device: its memory (NULL when absent or empty), element offset and
 * strides; a host output also keeps where its image goes back to. */
typedef struct attn_cl_lin_mem {
    cl_mem mem;
    cl_ulong off;
    cl_long4 st;
    int owned;
    void *host_back;
    size_t bytes;
} attn_cl_lin_mem;

attn_status attn_cl_linear_bind(attn_cl_backend *cb, const attn_operand *o, int output,
                                attn_cl_lin_mem *m);
/* ops[0..n) into m[0..n); operand i is an output when bit i of `outputs` is set. */
attn_status attn_cl_linear_bind_all(attn_cl_backend *cb, const attn_operand *const *ops, int n,
                                    unsigned outputs, attn_cl_lin_mem *m);
/* The images of the host outputs among m[0..n) read back after the nwait events `wait`; each
 * read's event is appended to ev (count *nev). */
cl_int attn_cl_linear_read_back(attn_cl_backend *cb, const attn_cl_lin_mem *m, int n,
                                cl_uint nwait, const cl_event *wait, cl_event *ev,
                                cl_uint *nev);
/* The end of a run: m[0..n)'s own memory released, the kernel's name noted when st is
 * ATTN_OK. Returns st. */
attn_status attn_cl_linear_finish(attn_cl_backend *cb, attn_cl_lin_mem *m, int n,
                                  attn_status st, const char *name);
/* log(lambda_g) as floats on the device (absent without decay). */
attn_status attn_cl_linear_bind_decay(attn_cl_backend *cb, const attn_linear_problem *p,
                                      attn_cl_lin_mem *m);

/* The backward (ocl_linear_backward.c): the op table's entries for p->backward. */
attn_status attn_cl_linear_backward_supported(const attn_cl_backend *cb,
                                              const attn_linear_problem *p);
void attn_cl_linear_backward_impl_name(const attn_cl_backend *cb, const attn_linear_problem *p,
                                       char *buf, size_t n);
attn_status attn_cl_linear_backward_run(attn_cl_backend *cb, const attn_linear_problem *p);

#endif /* ATTN_OCL_LINEAR_H_ */
