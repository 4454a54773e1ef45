/* attn_rope_problem.h - the validated, normalised form of a RoPE call that every backend
 * receives (reference, cpu, opencl), the validation that builds it, and each backend's RoPE
 * implementation (the op's table, attn_rope.c). Built once by attn_rope_validate(); backends
 * never re-check user input. */
#ifndef ATTN_ROPE_PROBLEM_H_
#define ATTN_ROPE_PROBLEM_H_

#include "attn/attn_rope.h"
#include "attn_op.h"
#include "attn_view.h"

#include <stdint.h>

typedef struct attn_rope_problem {
    int64_t B, S, H, D;
    int64_t rot;              /* rotated features (even, 2 .. D) */
    int64_t npairs;           /* rot / 2 */
    attn_rope_layout layout;
    double theta;
    int64_t offset;
    int in_place;             /* out is the very view x (same bytes, dtype and strides) */
    attn_operand x, out, pos; /* pos.t == NULL: positions are s; else i32/i64 [B|1, S, 1, 1] */
} attn_rope_problem;

/* Checks everything (pointers, descriptor, dtypes, shapes, strides, sizes, positions,
 * aliasing, buffer bounds) and fills *p. Host operands get p->X.ptr; device-only buffers
 * leave ptr NULL. Writes nothing else. The conformance tool calls it once per case to hand the
 * problem to the reference (reference/rope_ref.h). */
attn_status attn_rope_validate(const attn_rope_desc *d, const attn_tensor *x,
                               const attn_tensor *out, attn_rope_problem *p);

/* The RoPE implementation of each backend (reference/rope_impl.c, src/cpu/cpu_rope_impl.c,
 * src/opencl/ocl_rope.c); `problem` is an attn_rope_problem. */
extern const attn_op_impl attn_ref_rope_impl;
extern const attn_op_impl attn_cpu_rope_impl;
extern const attn_op_impl attn_opencl_rope_impl;

#endif /* ATTN_ROPE_PROBLEM_H_ */
