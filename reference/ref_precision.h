/* ref_precision.h - the working precision every reference shares: the attn_ref_precision mode
 * and the arithmetic that follows it. F64 is the ground truth; F32 runs the very same code with
 * every intermediate rounded to float (and the float library functions), which makes it behave
 * like a naive float implementation: the "same working precision" code the conformance policy
 * calibrates a backend against. */
#ifndef ATTN_REF_PRECISION_H_
#define ATTN_REF_PRECISION_H_

#include <math.h>

typedef enum attn_ref_precision { ATTN_REF_F64 = 0, ATTN_REF_F32 = 1 } attn_ref_precision;

/* Round an intermediate to the working precision: identity for F64, to float for F32 (a
 * double holds every float and rounding float+float or float*float through double gives the
 * float result, so this reproduces float arithmetic exactly). */
static inline double rnd(attn_ref_precision prec, double x)
{
    return prec == ATTN_REF_F32 ? (double)(float)x : x;
}

/* The transcendental functions of the working precision (the float library functions in F32,
 * as a float implementation would call them). */
static inline double r_exp(attn_ref_precision prec, double x)
{
    return prec == ATTN_REF_F32 ? (double)expf((float)x) : exp(x);
}

static inline double r_expm1(attn_ref_precision prec, double x)
{
    return prec == ATTN_REF_F32 ? (double)expm1f((float)x) : expm1(x);
}

static inline double r_tanh(attn_ref_precision prec, double x)
{
    return prec == ATTN_REF_F32 ? (double)tanhf((float)x) : tanh(x);
}

static inline double r_log(attn_ref_precision prec, double x)
{
    return prec == ATTN_REF_F32 ? (double)logf((float)x) : log(x);
}

/* max(x, 0) that keeps a NaN (PyTorch's relu; fmax would turn it into 0). */
static inline double relu(double x)
{
    return x > 0.0 || isnan(x) ? x : 0.0;
}

#endif /* ATTN_REF_PRECISION_H_ */
