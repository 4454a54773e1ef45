/* attn_sdpa_problem.h - the validated, normalised form of an SDPA call that every backend
 * receives (reference, cpu, opencl), the validation that builds it, the helpers backends share
 * to read it, and each backend's SDPA implementation (the op's table, attn_sdpa.c). Built once
 * by attn_sdpa_validate(); backends never re-check user input. */
#ifndef ATTN_SDPA_PROBLEM_H_
#define ATTN_SDPA_PROBLEM_H_

#include "attn/attn_sdpa.h"
#include "attn_band.h"
#include "attn_op.h"
#include "attn_view.h"

#include <stdint.h>

typedef struct attn_sdpa_problem {
    int64_t B, Sq, Skv, Hq, Hkv, Dk, Dv;
    int64_t group;        /* Hq / Hkv */
    double scale;         /* resolved (1/sqrt(Dk) when the desc says 0) */
    double softcap;       /* 0 = none */
    int causal;
    int64_t q_offset;     /* aligned position of query i is i + q_offset (0 or Skv - Sq) */
    int64_t window_left;  /* -1 unlimited (also a window that hides no key of the problem) */
    int64_t window_right; /* -1 unlimited (the same); 0 when causal */
    attn_operand q, k, v, out, lse, mask_add, mask_bool; /* lse/masks: t == NULL if absent */
    /* key_score [B, Skv, Hkv, 1] f32 (attn_sdpa_forward_ex): t == NULL if absent; a backend
     * writes every element (0 where no query sees the key). */
    attn_operand key_score;
    /* The backward call (attn_sdpa_backward): out and lse become inputs beside dout, and the
     * gradients are the outputs (dmask_add: t == NULL if absent). Zero for the forward. */
    int backward;
    attn_operand dout, dq, dk, dv, dmask_add;
} attn_sdpa_problem;

/* Key range [*lo, *hi) that the causal/window band allows for query row i (masks aside);
 * *lo >= *hi means no key is visible. Shared by the fast backends for tile skipping. */
static inline void attn_band(const attn_sdpa_problem *p, int64_t i, int64_t *lo, int64_t *hi)
{
    attn_band_range(i + p->q_offset, p->window_left, p->window_right, p->Skv, lo, hi);
}

/* Checks everything (pointers, dtypes, shapes, strides, sizes, heads, windows, scale, masks,
 * aliasing, buffer bounds) and fills *p. Host operands get p->X.ptr; device-only buffers leave
 * ptr NULL. Writes nothing else. The conformance tool calls it once per case to hand the
 * problem to the reference (reference/sdpa_ref.h). */
attn_status attn_sdpa_validate(const attn_sdpa_desc *d, const attn_tensor *q,
                               const attn_tensor *k, const attn_tensor *v,
                               const attn_tensor *out, const attn_tensor *lse,
                               attn_sdpa_problem *p);

/* attn_sdpa_validate with every output of attn_sdpa_forward_ex (key_score besides). */
attn_status attn_sdpa_validate_ex(const attn_sdpa_desc *d, const attn_tensor *q,
                                  const attn_tensor *k, const attn_tensor *v,
                                  const attn_sdpa_outputs *o, attn_sdpa_problem *p);

/* attn_sdpa_validate for the backward call (attn_sdpa_backward): lse is required, dout has
 * out's shape, the gradients the shapes of q, k, v (and dmask_add that of the additive mask);
 * the gradients overlap no input and each other. Sets p->backward. */
attn_status attn_sdpa_validate_backward(const attn_sdpa_desc *d, const attn_tensor *q,
                                        const attn_tensor *k, const attn_tensor *v,
                                        const attn_tensor *out, const attn_tensor *lse,
                                        const attn_tensor *dout, const attn_sdpa_grads *g,
                                        attn_sdpa_problem *p);

/* Hand a validated problem (forward or backward) to the core's dispatch with its operands
 * named as in messages. */
attn_status attn_sdpa_dispatch(attn_backend *be, const attn_sdpa_problem *p, attn_dispatch what,
                               char *buf, size_t n);

/* The SDPA implementation of each backend (reference/sdpa_impl.c, src/cpu/cpu_sdpa_impl.c,
 * src/opencl/ocl_sdpa.c); `problem` is an attn_sdpa_problem. */
extern const attn_op_impl attn_ref_sdpa_impl;
extern const attn_op_impl attn_cpu_sdpa_impl;
extern const attn_op_impl attn_opencl_sdpa_impl;

#endif /* ATTN_SDPA_PROBLEM_H_ */
