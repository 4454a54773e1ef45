/* rattention_conform.h - what the RATTENTION conformance driver (rattention_conform.c) shares
 * with its backward part (rattention_backward_conform.c): the backward case's tensors, fills,
 * call and gold, and the SWA logit factor both parts' condition scales use. */
#ifndef ATTN_RATTENTION_CONFORM_H_
#define ATTN_RATTENTION_CONFORM_H_

#include "attn_conform.h"
#include "attn_rattention_problem.h"
#include "rattention_case.h"

/* 1 + A_i of every row [B][S][Hq], A_i = |scale| |q_i|_2 max_j |k_j|_2 (1 + |pos| 2^-28): the
 * factor by which the window's logit error can move what its softmax weighs
 * (docs/conformance.md, "RATTENTION"). */
void attn_rattention_conf_logit_factors(const attn_rattention_problem *p, double *f);

/* The backward case's tensors after the forward's inputs (q, k, v, gammas, state_in): dout
 * (out's dtype) and d_state_out (state=out|inout) as inputs, then dq, dk, dv (q's and k's
 * dtypes), dgamma_swa, dgamma_rla and d_state_in (state=in|inout) as outputs. 0 or -1. */
int attn_rattention_backward_make(const attn_rattention_case *c, size_t guard_in,
                                  attn_conf_data *d);
/* Fill dout and d_state_out. */
void attn_rattention_backward_fill(uint64_t seed, attn_conf_data *d);
/* attn_rattention_backward (or its implementation name) on the run views of d. */
attn_status attn_rattention_backward_call(attn_backend *be, const attn_rattention_case *c,
                                          const attn_conf_data *d, attn_conf_call what,
                                          char *impl, size_t n);
/* The gold of every gradient into g[0 .. *ng) (docs/conformance.md, "Linear attention and
 * RATTENTION backward"). Returns 0, 1 (invalid case) or 2 (reference failed, out of memory). */
int attn_rattention_backward_gold(const attn_rattention_case *c, const attn_conf_data *d,
                                  attn_conf_gold *g, int *ng);

#endif /* ATTN_RATTENTION_CONFORM_H_ */
