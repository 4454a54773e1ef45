/* linear_backward_fixture.h - a small linear attention backward problem for the tests: f32
 * host tensors (q, k, v, dout, the initial state and the final state's gradients filled from
 * the counter-based generator on a 2^-12 grid, q and k kept at least 1/32 away from the
 * feature maps' kinks at 0, so that finite-difference steps of 2^-8 are exact and smooth), the
 * gradients, and the validated problem the reference entry points take. */
#ifndef ATTN_LINEAR_BACKWARD_FIXTURE_H_
#define ATTN_LINEAR_BACKWARD_FIXTURE_H_

#include "attn/attn.h"
#include "attn_linear_problem.h"

#include <stdint.h>

typedef struct lbw_shape {
    int64_t B, S, Hq, Hkv, Dk, Dv;
    attn_linear_feature feature;
    int normalize, causal;
    attn_linear_decay decay;
    int state_in;  /* initial state (and z with the normaliser) with its gradients */
    int state_out; /* gradients of the final state arrive */
} lbw_shape;

typedef struct lbw {
    lbw_shape s;
    int64_t Df;
    attn_linear_desc desc;
    float decay_values[8];
    float *q, *k, *v, *dout, *dq, *dk, *dv, *s0, *z0, *ds0, *dz0, *dsT, *dzT;
    attn_tensor tq, tk, tv, tdout, tdq, tdk, tdv, ts0, tz0, tds0, tdz0, tdsT, tdzT;
    attn_linear_state st;
    attn_linear_grads grads;
} lbw;

void lbw_init(lbw *x, const lbw_shape *s, uint64_t seed);
void lbw_free(lbw *x);
/* Elements of each tensor by name ("q", "k", "v", "out", "state", "z"). */
int64_t lbw_n(const lbw *x, const char *name);
/* Validate the backward into *p (release it with attn_linear_problem_release). */
void lbw_problem(lbw *x, attn_linear_problem *p);

#endif /* ATTN_LINEAR_BACKWARD_FIXTURE_H_ */
