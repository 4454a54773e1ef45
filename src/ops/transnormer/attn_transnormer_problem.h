/* attn_transnormer_problem.h - the validated, normalised form of a TransNormer call that every
 * backend receives (reference, cpu, opencl), the validation that builds it, the helpers every
 * layer shares to read it, and each backend's implementation (the op's table,
 * attn_transnormer.c). Backends never re-check user input. */
#ifndef ATTN_TRANSNORMER_PROBLEM_H_
#define ATTN_TRANSNORMER_PROBLEM_H_

#include "attn/attn_transnormer.h"
#include "attn_op.h"
#include "attn_view.h"

#include <stdint.h>

#define ATTN_TRANSNORMER_BLOCK_DEFAULT 64
#define ATTN_TRANSNORMER_EPS_DEFAULT 1e-8

typedef struct attn_transnormer_problem {
    int64_t B, S, Hq, Hkv, Dk, Dv;
    int64_t group;   /* Hq / Hkv */
    attn_transnormer_mode mode;
    int causal;
    attn_transnormer_feature feature;
    attn_transnormer_scores scores;
    int64_t block;   /* resolved (64 when the desc says 0); may exceed S (one block) */
    double scale;    /* resolved (1/sqrt(Dk) when the desc says 0) */
    int pad_zero;    /* zero-padded keys enter the softmax (non-causal softmax only, else 0) */
    int srms;        /* SimpleRMSNorm on (norm resolved) */
    double eps;      /* resolved (1e-8 when the desc says 0) */
    attn_operand q, k, v, out;
} attn_transnormer_problem;

/* Keys [*lo, *hi) that query i sees: its block (DiagAttention) or the whole sequence
 * (NormAttention), cut at i when causal. */
static inline void attn_transnormer_keys(const attn_transnormer_problem *p, int64_t i,
                                         int64_t *lo, int64_t *hi)
{
    int64_t l = 0, h = p->S;
    if (p->mode == ATTN_TRANSNORMER_MODE_DIAG) {
        l = i - i % p->block;
        h = p->S - l > p->block ? l + p->block : p->S;
    }
    if (p->causal)
        h = i + 1;
    *lo = l;
    *hi = h;
}

/* Zero-padded keys in query i's block that enter its softmax (pad_zero), else 0. */
static inline int64_t attn_transnormer_pad_keys(const attn_transnormer_problem *p, int64_t i)
{
    if (!p->pad_zero)
        return 0;
    int64_t l = i - i % p->block;
    return p->S - l >= p->block ? 0 : p->block - (p->S - l);
}

/* Checks everything (pointers, enums, scalars, dtypes, shapes, strides, sizes, heads,
 * aliasing, buffer bounds) and fills *p. Writes nothing else. */
attn_status attn_transnormer_validate(const attn_transnormer_desc *d, const attn_tensor *q,
                                      const attn_tensor *k, const attn_tensor *v,
                                      const attn_tensor *out, attn_transnormer_problem *p);

/* The implementation of each backend (reference/transnormer_impl.c,
 * src/cpu/cpu_transnormer_impl.c, src/opencl/ocl_transnormer.c). */
extern const attn_op_impl attn_ref_transnormer_impl;
extern const attn_op_impl attn_cpu_transnormer_impl;
extern const attn_op_impl attn_opencl_transnormer_impl;

#endif /* ATTN_TRANSNORMER_PROBLEM_H_ */
