/* attn_policy.h - the conformance policy: gates that decide PASSED / FAILED / MISTRUSTED for
 * one output tensor compared with the f64 ground truth (docs/conformance.md justifies every
 * constant). Used by `attn conform` and `attn compare`. */
#ifndef ATTN_POLICY_H_
#define ATTN_POLICY_H_

#include "attn/attn.h"

#include <stdint.h>

typedef enum attn_verdict { ATTN_PASSED = 0, ATTN_FAILED, ATTN_MISTRUSTED, ATTN_SKIPPED } attn_verdict;

typedef struct attn_policy_in {
    int64_t n;                /* elements compared */
    const double *gold;       /* ground truth (f64 reference) */
    const double *got;        /* backend output, widened to double */
    const double *absmag;     /* per-element condition scale (sum_j p_j |v_j|), or NULL */
    const double *lowp;       /* naive result in the backend's working precision, or NULL */
    const uint8_t *must_zero; /* 1 where the element belongs to a fully masked row, or NULL */
    double n_acc;             /* accumulation length (Dk + attended keys) */
    double u_c;               /* unit roundoff of the computation class (2^-24 for f32) */
    double u_out;             /* unit roundoff of the output dtype */
    double nmse_max;          /* global NMSE gate */
    double calib_factor;      /* F of the calibration gate: 4 for outputs, 16 for LSE */
    /* Added by the conformance tool (zero keeps the documented defaults): */
    double tiny;              /* absolute floor of tau; 0 = derived from u_out (see .c) */
    int no_trust;             /* 1 skips the trust gate (LSE is trusted through its output) */
} attn_policy_in;

typedef struct attn_policy_out {
    attn_verdict verdict;
    char reason[200];         /* first failing gate, readable; "" when PASSED */
    double max_abs, nmse, margin, lowp_ratio, zero_frac;
    int64_t worst;            /* index of the element with the largest margin */
    /* Added: */
    int gate;                 /* gate that decided: 0 none, 1 invariants, 2 bound, 3 NMSE,
                                 4 calibration, 5 trust, 6 rounding */
    double lowp_err;          /* max |lowp - gold| (0 without lowp) */
    double calib_floor;       /* floor of the calibration limit: max of
                                 u_c cond + 2 u_out |gold| + tiny */
    int64_t n_bad;            /* elements that broke the deciding gate (gates 1, 2 and 6) */
    /* Gate 6, the output rounding of f16/bf16 results (round_checked 0 for other dtypes): */
    int round_checked;
    double round_margin;      /* max |d| / (ulp(|gold| + e)/2 + e), e the f32 term of gate 2 */
    int64_t round_bad;        /* elements beyond that bound ... */
    int64_t round_toward_zero;/* ... of which |got| < |gold| */
} attn_policy_out;

const char *attn_verdict_name(attn_verdict v);

/* Unit roundoff of a storage dtype (2^-24, 2^-11, 2^-8). */
double attn_dtype_roundoff(attn_dtype t);
/* The documented defaults for a backend whose computation class is f32 (u_c = 2^-24): u_out
 * as given, the NMSE limit 1e-9 + (2 u_out)^2, F = 4 (outputs) or 16 (lse, trust gate off).
 * n, gold, got, absmag, lowp, must_zero and n_acc are left for the caller. */
void attn_policy_setup_u(attn_policy_in *in, double u_out, int is_lse);
/* The same with u_out of the output dtype (the LSE is always f32). */
void attn_policy_setup(attn_policy_in *in, attn_dtype out_dtype, int is_lse);
/* A state tensor (linear attention's final state S and running sum z, f32): gated as an output
 * of its own with u_out = 2^-24, the NMSE limit of the f32 class, F = 16 (PyTorch's states
 * class) and the trust gate on (docs/conformance.md, "Linear attention"). */
void attn_policy_setup_state(attn_policy_in *in);
void attn_policy_check(const attn_policy_in *in, attn_policy_out *out);

#endif /* ATTN_POLICY_H_ */
