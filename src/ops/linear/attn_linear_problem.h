/* attn_linear_problem.h - the validated, normalised form of a linear attention call that every
 * backend receives (reference, cpu, opencl), the validation that builds it, and each backend's
 * implementation (the op's table, attn_linear.c). Built once by attn_linear_validate(); backends
 * never re-check user input. Other ops build it directly with a nonzero shift (rattention's
 * residual branch: query i sees keys j <= i - shift). */
#ifndef ATTN_LINEAR_PROBLEM_H_
#define ATTN_LINEAR_PROBLEM_H_

#include "attn/attn_linear.h"
#include "attn_op.h"
#include "attn_view.h"

#include <stdint.h>

typedef struct attn_linear_problem {
    int64_t B, S, Hq, Hkv, Dk, Dv;
    int64_t Df;            /* features of phi: Dk, or 2 Dk for the paired maps */
    int64_t group;         /* Hq / Hkv */
    attn_linear_feature feature;
    int normalize;
    double eps;
    int causal;
    double scale;
    int64_t shift;         /* causal only: query i sees keys j <= i - shift (0: plain causal) */
    /* log(lambda_g) per KV head, Hkv values (malloc'd by attn_linear_validate, freed by
     * attn_linear_problem_release); NULL means no decay (lambda = 1). */
    double *log_decay;
    attn_operand q, k, v, out, state_in, z_in, state_out, z_out; /* t == NULL if absent */
    /* The backward call (attn_linear_backward): out, state_out and z_out absent; dout and the
     * final state's gradients in, the gradients out (t == NULL if absent). Zero otherwise. */
    int backward;
    attn_operand dout, d_state_out, d_z_out, dq, dk, dv, d_state_in, d_z_in;
} attn_linear_problem;

/* Features of phi for a map and a head dim. */
static inline int64_t attn_linear_features(attn_linear_feature f, int64_t dk)
{
    return f == ATTN_LINEAR_SOFTMAX_PAIR || f == ATTN_LINEAR_RELU_PAIR ? 2 * dk : dk;
}

/* Lightning Attention's slopes s_g (ALiBi's rule, also for Hkv not a power of two) as
 * log(lambda_g) = -s_g, g < hkv. */
void attn_linear_slopes(int64_t hkv, double *log_decay);

/* Checks everything (pointers, feature, scalars, decay values, dtypes, shapes, strides, state
 * tensors, aliasing, buffer bounds) and fills *p (with shift 0). Writes nothing else; on
 * success release the problem with attn_linear_problem_release. */
attn_status attn_linear_validate(const attn_linear_desc *d, const attn_tensor *q,
                                 const attn_tensor *k, const attn_tensor *v,
                                 const attn_tensor *out, const attn_linear_state *st,
                                 attn_linear_problem *p);
void attn_linear_problem_release(attn_linear_problem *p);

/* attn_linear_validate for the backward call (attn_linear_backward): the forward's checks with
 * dout in out's place, then the gradients; sets p->backward. Release as the forward's. */
attn_status attn_linear_validate_backward(const attn_linear_desc *d, const attn_tensor *q,
                                          const attn_tensor *k, const attn_tensor *v,
                                          const attn_linear_state *st, const attn_tensor *dout,
                                          const attn_linear_grads *g, attn_linear_problem *p);
/* A state tensor f32 [B, Hkv, Df, cols] (cols 1: a running sum z), named in messages. */
attn_status attn_linear_check_state(const attn_tensor *t, const char *name, int64_t B,
                                    int64_t Hkv, int64_t Df, int64_t cols, attn_span *s);
/* Hand a validated problem (forward or backward) to the core's dispatch with its operands
 * named; releases nothing. */
attn_status attn_linear_dispatch(attn_backend *be, const attn_linear_problem *p,
                                 attn_dispatch what, char *buf, size_t n);

/* The linear attention implementation of each backend (reference/linear_impl.c,
 * src/cpu/cpu_linear_impl.c, src/opencl/ocl_linear.c). */
extern const attn_op_impl attn_ref_linear_impl;
extern const attn_op_impl attn_cpu_linear_impl;
extern const attn_op_impl attn_opencl_linear_impl;

#endif /* ATTN_LINEAR_PROBLEM_H_ */
