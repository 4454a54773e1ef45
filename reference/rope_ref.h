/* rope_ref.h - the ground truth of rotary position embedding (reference/rope.c) and its
 * internal interface: the whole op for the conformance driver and the `ref` backend, and the
 * one-vector helper other ops' references call (rattention's SWA branch rotates q and k with
 * it). */
#ifndef ATTN_ROPE_REF_H_
#define ATTN_ROPE_REF_H_

#include "attn_rope_problem.h"

/* theta^(-2i / rot): the angle per position of pair i, in f64. */
double attn_ref_rope_freq(double theta, int64_t rot, int64_t i);
/* The features (a, c) that pair i rotates: (i, i + rot/2) half-split, (2i, 2i+1) interleaved. */
void attn_ref_rope_pair(attn_rope_layout layout, int64_t rot, int64_t i, int64_t *a, int64_t *c);
/* Position of row (b, s) of a validated problem with host-accessible positions:
 * offset + positions[b, s] (or offset + s), as a double. */
double attn_ref_rope_pos(const attn_rope_problem *p, int64_t b, int64_t s);

/* One vector of D features at position pos, in f64: y = RoPE(x) (y may be x). The helper
 * other references build on (a query or key row of one head). */
void attn_ref_rope_row(attn_rope_layout layout, double theta, int64_t rot, int64_t D, double pos,
                       const double *x, double *y);

/* The op on a validated problem with host-accessible operands into out, double
 * [B][S][H][D]. lowp = 0: the definition in f64. lowp = 1: naive float code (the "same
 * working precision" of the conformance policy): cos and sin of the f64 angle rounded to
 * float, x read as float, each product and sum rounded to float. */
attn_status attn_ref_rope(const attn_rope_problem *p, int lowp, double *out);

#endif /* ATTN_ROPE_REF_H_ */
