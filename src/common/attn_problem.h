/* attn_problem.h - the validated, normalised form of an SDPA call that every backend receives
 * (reference, cpu, opencl), and the helpers backends share to read it. Built once by
 * attn_sdpa_validate(); backends never re-check user input. */
#ifndef ATTN_PROBLEM_H_
#define ATTN_PROBLEM_H_

#include "attn/attn.h"
#include <stdint.h>

/* One operand after validation: host address resolved (NULL for device-only tensors, which
 * keep their buffer + byte offset), strides of broadcast dims forced to 0. */
typedef struct attn_operand {
    const attn_tensor *t; /* the user's view (NULL when the operand is absent) */
    void *ptr;            /* host address of element [0,0,0,0] when host-accessible */
    attn_dtype dtype;
    int64_t stride[4];    /* element strides; 0 on broadcast dims (masks) */
} attn_operand;

typedef struct attn_sdpa_problem {
    int64_t B, Sq, Skv, Hq, Hkv, Dk, Dv;
    int64_t group;        /* Hq / Hkv */
    double scale;         /* resolved (1/sqrt(Dk) when the desc says 0) */
    double softcap;       /* 0 = none */
    int causal;
    int64_t q_offset;     /* aligned position of query i is i + q_offset (0 or Skv - Sq) */
    int64_t window_left;  /* -1 unlimited */
    int64_t window_right; /* -1 unlimited; 0 when causal */
    attn_operand q, k, v, out, lse, mask_add, mask_bool; /* lse/masks: t == NULL if absent */
} attn_sdpa_problem;

/* Key range [*lo, *hi) that the causal/window band allows for query row i (masks aside);
 * *lo >= *hi means no key is visible. Shared by the fast backends for tile skipping. */
static inline void attn_band(const attn_sdpa_problem *p, int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t pos = i + p->q_offset;
    int64_t l = 0, h = p->Skv;
    if (p->window_left >= 0 && pos - p->window_left > l)
        l = pos - p->window_left;
    if (p->window_right >= 0 && pos + p->window_right + 1 < h)
        h = pos + p->window_right + 1;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

/* Element offset of [i0, i1, i2, i3] in an operand. */
static inline int64_t attn_at(const attn_operand *o, int64_t i0, int64_t i1, int64_t i2,
                              int64_t i3)
{
    return i0 * o->stride[0] + i1 * o->stride[1] + i2 * o->stride[2] + i3 * o->stride[3];
}

#endif /* ATTN_PROBLEM_H_ */
