/* linear_conform.h - what the linear attention conformance driver (linear_conform.c) shares
 * with its backward part (linear_backward_conform.c): the backward case's tensors, fills, call
 * and gold. */
#ifndef ATTN_LINEAR_CONFORM_H_
#define ATTN_LINEAR_CONFORM_H_

#include "attn_conform.h"
#include "linear_case.h"

/* Stream of the fills of d_state_out and d_z_out (the forward's state_in and z_in use 6, 7). */
#define ATTN_LINEAR_FILL_DSTATE ((attn_fill_id)8)
#define ATTN_LINEAR_FILL_DZ ((attn_fill_id)9)

/* Dense buffers shaped like q, k, v (q's and k's dtypes, the case's layout). 0 or -1. */
int attn_linear_conf_qkv_bufs(const attn_linear_case *c, attn_conf_buf *q, attn_conf_buf *k,
                              attn_conf_buf *v, size_t guard);
/* Dense f32 buffers of the state [B, Hkv, Df, Dv] and z [B, Hkv, Df, 1] where the case has the
 * state at `bit` (z only with the normaliser). 0 or -1. */
int attn_linear_conf_state_bufs(const attn_linear_case *c, int bit, attn_conf_buf *s,
                                attn_conf_buf *z, size_t guard);

/* The backward case's tensors after q, k, v, state_in, z_in: dout (out's dtype), d_state_out
 * and d_z_out (state=out|inout) as inputs, then dq, dk, dv (q's and k's dtypes), d_state_in and
 * d_z_in (state=in|inout) as outputs. 0 or -1 (out of memory). */
int attn_linear_backward_make(const attn_linear_case *c, size_t guard_in, attn_conf_data *d);
/* Fill dout and the final state's gradients (the inputs are the forward's). */
void attn_linear_backward_fill(uint64_t seed, attn_conf_data *d);
/* attn_linear_backward (or its implementation name) on the run views of d. */
attn_status attn_linear_backward_call(attn_backend *be, const attn_linear_desc *desc,
                                      const attn_conf_data *d, attn_conf_call what, char *impl,
                                      size_t n);
/* The gold of every gradient into g[0 .. *ng) (docs/conformance.md, "Linear attention and
 * RATTENTION backward"). Returns 0, 1 (invalid case) or 2 (reference failed, out of memory). */
int attn_linear_backward_gold(const attn_linear_case *c, const attn_linear_desc *desc,
                              const attn_conf_data *d, attn_conf_gold *g, int *ng);

#endif /* ATTN_LINEAR_CONFORM_H_ */
