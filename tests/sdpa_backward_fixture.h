/* sdpa_backward_fixture.h - a small SDPA backward problem for the tests: f32 host tensors (q, k,
 * v, dout and the optional masks filled from the counter-based generator on a 2^-12 grid, so
 * that finite-difference steps of 2^-8 and 2^-9 are exact in f32), the forward's out and lse,
 * the gradients, and the validated problem that the reference entry points take. */
#ifndef ATTN_SDPA_BACKWARD_FIXTURE_H_
#define ATTN_SDPA_BACKWARD_FIXTURE_H_

#include "attn/attn.h"
#include "attn_sdpa_problem.h"

#include <stdint.h>

typedef struct sbw_shape {
    int64_t B, Sq, Skv, Hq, Hkv, Dk, Dv;
    int64_t madd[4];  /* shape of mask_add ([0] = 0: none) */
    int64_t mbool[4]; /* shape of mask_bool ([0] = 0: none) */
} sbw_shape;

typedef struct sbw {
    sbw_shape s;
    attn_sdpa_desc desc;
    float *q, *k, *v, *out, *lse, *dout, *dq, *dk, *dv, *madd, *dmask;
    unsigned char *mbool;
    attn_tensor tq, tk, tv, tout, tlse, tdout, tdq, tdk, tdv, tmadd, tmbool, tdmask;
    attn_sdpa_grads grads;
} sbw;

/* Allocate and fill (seed) a problem of shape s; desc starts at attn_sdpa_desc_default() with
 * the masks attached. mask_bool hides about one key in five; mask_add is uniform in [-1, 1]. */
void sbw_init(sbw *x, const sbw_shape *s, uint64_t seed);
void sbw_free(sbw *x);
/* Element counts of each tensor. */
int64_t sbw_n(const sbw *x, const char *name);
/* Run the forward on `be` (filling out and lse) then validate the backward into *p. */
void sbw_problem(sbw *x, attn_backend *be, attn_sdpa_problem *p);

#endif /* ATTN_SDPA_BACKWARD_FIXTURE_H_ */
