/* cpu_linear_feature_vjp.c - the feature maps' vector-Jacobian products in float for the cpu
 * backend's linear attention backward (the definitions of reference/linear_feature.c's
 * attn_ref_linear_phi_vjp: relu's slope at 0 is 0, elu's 1). */
#include "cpu_linear.h"

#include "cpu_math.h"

#include <math.h>

/* dx += sign * p * (dy - p . dy), p = softmax(sign x) already in p. */
static void softmax_half_vjp(const float *p, const float *dy, int64_t dk, float sign, float *dx)
{
    float pd = 0.0f;
    for (int64_t d = 0; d < dk; d++)
        pd += p[d] * dy[d];
    for (int64_t d = 0; d < dk; d++)
        dx[d] += sign * (p[d] * (dy[d] - pd));
}

/* d phi_d / d x_d of the elementwise maps. */
static inline float slope(attn_linear_feature f, float x)
{
    switch (f) {
    case ATTN_LINEAR_ELU:
    case ATTN_LINEAR_ELU1:
        return x > 0 ? 1.0f : attn_cpu_expf(x);
    case ATTN_LINEAR_RELU:
        return x > 0 ? 1.0f : 0.0f;
    case ATTN_LINEAR_SILU: { /* s (1 + x (1 - s)), s = sigmoid(x) */
        const float s = 1.0f / (1.0f + attn_cpu_expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    default:
        return 1.0f;
    }
}

ATTN_CPU_HOT
void attn_cpu_linear_phi_vjp(attn_linear_feature f, const float *x, int64_t dk,
                             const float *dy, float *tmp, float *dx)
{
    switch (f) {
    case ATTN_LINEAR_SOFTMAX_PAIR:
        attn_cpu_linear_phi(f, x, dk, tmp);
        for (int64_t d = 0; d < dk; d++)
            dx[d] = 0.0f;
        softmax_half_vjp(tmp, dy, dk, 1.0f, dx);
        softmax_half_vjp(tmp + dk, dy + dk, dk, -1.0f, dx);
        return;
    case ATTN_LINEAR_RELU_PAIR: /* relu(x) then relu(-x): slopes 1 / -1 by sign */
        for (int64_t d = 0; d < dk; d++)
            dx[d] = x[d] > 0 ? dy[d] : x[d] < 0 ? -dy[dk + d] : 0.0f;
        return;
    default:
        for (int64_t d = 0; d < dk; d++)
            dx[d] = slope(f, x[d]) * dy[d];
        return;
    }
}
