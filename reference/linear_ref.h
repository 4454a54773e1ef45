/* linear_ref.h - the ground-truth entry points of kernel linear attention (plain loops, no
 * BLIS): the quadratic masked form (the definition, with the condition scales the conformance
 * policy needs), the recurrent form (also in float working precision) and the chunked form
 * (Lightning Attention's intra/inter-chunk algorithm), and the feature maps every form (and
 * rattention's reference) shares. The documented internal interface of the conformance
 * driver (tools/linear_conform.c); docs/ops/linear.md. */
#ifndef ATTN_LINEAR_REF_H_
#define ATTN_LINEAR_REF_H_

#include "attn_linear_problem.h"
#include "ref_alloc.h"
#include "ref_precision.h"

/* Results of a reference form, in f64, row-major; any pointer but out may be NULL.
 * out [B][S][Hq][Dv]; state [B][Hkv][Df][Dv]; z [B][Hkv][Df]. The *_cond arrays (same layouts,
 * quadratic form only) hold each element's condition scale: the same sums with every term
 * replaced by its magnitude (docs/conformance.md, "Linear attention"). */
typedef struct attn_linear_ref_out {
    double *out, *state, *z;
    double *out_cond, *state_cond, *z_cond;
} attn_linear_ref_out;

/* The definition: every (query, visible key) pair weighed as a product of phi rows, f64.
 * Fills the conditions when asked. ATTN_ERR_OUT_OF_MEMORY if scratch cannot be allocated. */
attn_status attn_ref_linear(const attn_linear_problem *p, attn_linear_ref_out *o);
/* The recurrent (RNN) form: one state update and one read per token. F32 rounds every
 * intermediate to float (expf, ...): the naive float implementation the calibration gate
 * compares a backend with. Conditions are not filled. */
attn_status attn_ref_linear_recurrent(const attn_linear_problem *p, attn_ref_precision prec,
                                      attn_linear_ref_out *o);
/* The chunked form with chunks of `chunk` positions: masked products inside a chunk, the state
 * across chunks, decay powers per position (f64). Conditions are not filled. */
attn_status attn_ref_linear_chunked(const attn_linear_problem *p, int64_t chunk,
                                    attn_linear_ref_out *o);

/* The gradients of the backward, in f64, row-major; dq, dk, dv required, the rest may be NULL.
 * dq [B][S][Hq][Dk], dk [B][S][Hkv][Dk], dv [B][S][Hkv][Dv], d_state_in [B][Hkv][Df][Dv],
 * d_z_in [B][Hkv][Df]; the *_mag arrays (same layouts) the condition scale of each element. */
typedef struct attn_linear_ref_grads {
    double *dq, *dk, *dv, *d_state_in, *d_z_in;
    double *dq_mag, *dk_mag, *dv_mag, *d_state_in_mag, *d_z_in_mag;
} attn_linear_ref_grads;

/* The chain rule through the quadratic definition (linear_backward.c) for a validated backward
 * problem (p->backward): dout, d_state_out and d_z_out in, the gradients out. */
attn_status attn_ref_linear_backward(const attn_linear_problem *p, attn_ref_precision prec,
                                     const attn_linear_ref_grads *g);

/* ---- shared by the forms (linear_feature.c) ---- */

/* y[0..Df) = phi(x[0..dk)) in working precision prec. */
void attn_ref_linear_phi(attn_linear_feature f, attn_ref_precision prec, const double *x,
                         int64_t dk, double *y);
/* dx[0..dk) = J_phi(x)^T dy (dy: Df values), the feature map's vector-Jacobian product; with
 * mag, the same sums over the terms' magnitudes (the condition scale of dx). tmp holds dk
 * doubles. relu's slope at 0 is 0, elu's 1 (PyTorch's conventions). */
void attn_ref_linear_phi_vjp(attn_linear_feature f, attn_ref_precision prec, const double *x,
                             int64_t dk, const double *dy, int mag, double *tmp, double *dx);
/* phi of row [b, s, h, :] of operand o (q or k) into y (Df values); tmp holds dk doubles. */
void attn_ref_linear_phi_row(const attn_linear_problem *p, const attn_operand *o, int64_t b,
                             int64_t s, int64_t h, attn_ref_precision prec, double *tmp,
                             double *y);
/* lambda_g^n (1 without decay), as exp(n log lambda_g). */
double attn_ref_linear_decay_pow(const attn_linear_problem *p, int64_t g, double n);
/* Element [b, g, d, c] of state_in (or z_in with cols = 1), 0 when absent. */
double attn_ref_linear_state_in(const attn_operand *o, int64_t b, int64_t g, int64_t d,
                                int64_t c);
/* The value rows of one (batch, KV head) as f64: v[S][Dv]. */
void attn_ref_linear_load_v(const attn_linear_problem *p, int64_t b, int64_t g, double *v);

#endif /* ATTN_LINEAR_REF_H_ */
