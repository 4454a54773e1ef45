/* attn_rattention_problem.h - the validated, normalised form of a RATTENTION call (forward or
 * decode step) that every backend receives (reference, cpu, opencl), the validation that builds
 * it, the sub-problems of its branches that backends hand to the linear op's kernels, and each
 * backend's implementation (the op's table, attn_rattention.c). Backends never re-check user
 * input. */
#ifndef ATTN_RATTENTION_PROBLEM_H_
#define ATTN_RATTENTION_PROBLEM_H_

#include "attn/attn_rattention.h"
#include "attn_linear_problem.h"
#include "attn_op.h"
#include "attn_view.h"

#include <stdint.h>

#define ATTN_RATTENTION_WINDOW_DEFAULT 512
#define ATTN_RATTENTION_THETA_DEFAULT 500000.0
#define ATTN_RATTENTION_EPS_DEFAULT 1e-8

typedef struct attn_rattention_problem {
    int64_t B, S, Hq, Hkv, Dk, Dv;   /* S: rows of the call (T new tokens when decoding) */
    int64_t group;                   /* Hq / Hkv */
    int64_t Df;                      /* 2 Dk: features of the paired maps */
    int64_t window;                  /* w >= -1 as given */
    int swa;                         /* w >= 0: the SWA branch exists */
    int64_t shift;                   /* RLA: row i sees keys j <= i - shift; w + 1 (0 when
                                      * w = -1), capped at S + 1 (no key) in the forward */
    attn_linear_feature feature;     /* SOFTMAX_PAIR or RELU_PAIR */
    attn_rope_layout rope;
    double theta;
    int64_t offset;                  /* position of row 0 (decode: desc.offset + pos) */
    double scale;                    /* resolved SWA logit scale */
    double eps;                      /* resolved GroupRMSNorm eps */
    int decode;                      /* 0: forward; 1: decode step over the cache */
    int64_t pos;                     /* decode: tokens seen before the call (row s is token
                                      * pos + s) */
    int64_t slots;                   /* decode: ring slots w + 1 (0 when w = -1) */
    /* gamma_*: f32 [1, 1, Hq, Dv]; state_in/state_out (forward) and state (decode, read and
     * written): f32 [B, Hkv, Df, Dv]; k_ring/v_ring (decode, read and written):
     * [B, slots, Hkv, D]. t == NULL when absent. */
    attn_operand q, k, v, out, gamma_swa, gamma_rla, state_in, state_out, k_ring, v_ring,
        state;
    /* The backward call (attn_rattention_backward): out and state_out absent; dout and the
     * final state's gradient in, the gradients out (t == NULL if absent). Zero otherwise. */
    int backward;
    attn_operand dout, d_state_out, dq, dk, dv, dgamma_swa, dgamma_rla, d_state_in;
} attn_rattention_problem;

/* Keys [*lo, *hi) row i of the forward sees in its SWA branch (empty when w = -1). */
static inline void attn_rattention_swa_keys(const attn_rattention_problem *p, int64_t i,
                                            int64_t *lo, int64_t *hi)
{
    *hi = p->swa ? i + 1 : 0;
    *lo = p->swa && i > p->window ? i - p->window : 0;
}

/* The forward's RLA branch as a linear attention problem: causal, no decay, no normaliser,
 * scale 1, the feature map and shift of p, operands q, k, v, state_in, state_out of p; `out`
 * is left absent for the caller to point at its scratch. Only for the forward. */
void attn_rattention_rla_problem(const attn_rattention_problem *p, attn_linear_problem *lp);

/* Checks everything (pointers, descriptor, dtypes, shapes, strides, sizes, gammas, states,
 * aliasing, buffer bounds) and fills *p. Writes nothing else. */
attn_status attn_rattention_validate(const attn_rattention_desc *d, const attn_tensor *q,
                                     const attn_tensor *k, const attn_tensor *v,
                                     const attn_tensor *out, const attn_rattention_io *io,
                                     attn_rattention_problem *p);
/* The same for a decode step over `cache` (its ring and state become operands, pos copied). */
attn_status attn_rattention_validate_decode(const attn_rattention_desc *d,
                                            const attn_rattention_cache *cache,
                                            const attn_tensor *q, const attn_tensor *k,
                                            const attn_tensor *v, const attn_tensor *out,
                                            const attn_rattention_io *io,
                                            attn_rattention_problem *p);

/* The same for the backward call (dout checked where the forward checks out); sets
 * p->backward. */
attn_status attn_rattention_validate_backward(const attn_rattention_desc *d,
                                              const attn_tensor *q, const attn_tensor *k,
                                              const attn_tensor *v, const attn_rattention_io *io,
                                              const attn_tensor *dout,
                                              const attn_rattention_grads *g,
                                              attn_rattention_problem *p);
/* The op's views shared by the validations: gains f32 [1, 1, Hq, Dv] and states f32
 * [B, Hkv, 2 Dk, Dv], named in messages. */
attn_status attn_rattention_check_gamma(const attn_tensor *t, const char *name, int64_t Hq,
                                        int64_t Dv, attn_span *s);
attn_status attn_rattention_check_state(const attn_tensor *t, const char *name, int64_t B,
                                        int64_t Hkv, int64_t Df, int64_t Dv, attn_span *s);
/* Hand a validated problem (any call) to the core's dispatch with its operands named. */
attn_status attn_rattention_dispatch(attn_backend *be, const attn_rattention_problem *p,
                                     attn_dispatch what, char *buf, size_t n);

/* The implementation of each backend (reference/rattention_impl.c,
 * src/cpu/cpu_rattention_impl.c, src/opencl/ocl_rattention.c): run handles both the forward
 * and the decode step (p->decode). */
extern const attn_op_impl attn_ref_rattention_impl;
extern const attn_op_impl attn_cpu_rattention_impl;
extern const attn_op_impl attn_opencl_rattention_impl;

#endif /* ATTN_RATTENTION_PROBLEM_H_ */
