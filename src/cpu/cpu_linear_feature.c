/* cpu_linear_feature.c - the feature maps phi of linear attention in float for the cpu backend
 * (the same definitions as reference/linear_feature.c). exp is the backend's vectorisable
 * attn_cpu_expf (< 1 ulp, cpu_math.h), so these loops vectorise; elu keeps expm1f, whose
 * small results exp(x) - 1 would lose. */
#include "cpu_linear.h"

#include "cpu_math.h"

#include <math.h>

static inline float relu(float x)
{
    return x > 0 || isnan(x) ? x : 0.0f;
}

/* a > b ? a : b selected with bit masks (a ternary stays scalar). */
static inline float select_gt(float a, float b, float x, float y)
{
    const uint32_t m = -(uint32_t)(a > b);
    return attn_bits_f32((attn_f32_bits(x) & m) | (attn_f32_bits(y) & ~m));
}

#define LANES 8

/* softmax of sign * x over dk values, max-subtracted (a NaN makes the row NaN: the maximum
 * skips it, exp and the sum carry it). Inlined into attn_cpu_linear_phi so that its AVX2
 * clone vectorises these loops too (a separate function would stay at the baseline ISA). */
static inline __attribute__((always_inline)) void softmax_half(const float *restrict x, int64_t dk, float sign,
                                                         float *restrict y)
{
    float mx[LANES], sum[LANES], m = -INFINITY, l = 0.0f;
    for (int k = 0; k < LANES; k++)
        mx[k] = -INFINITY, sum[k] = 0.0f;
    int64_t d = 0;
    for (; d + LANES <= dk; d += LANES)
        for (int k = 0; k < LANES; k++)
            mx[k] = select_gt(sign * x[d + k], mx[k], sign * x[d + k], mx[k]);
    for (; d < dk; d++)
        m = select_gt(sign * x[d], m, sign * x[d], m);
    for (int k = 0; k < LANES; k++)
        m = select_gt(mx[k], m, mx[k], m);
    for (int64_t e = 0; e < dk; e++)
        y[e] = attn_cpu_expf(sign * x[e] - m);
    for (d = 0; d + LANES <= dk; d += LANES)
        for (int k = 0; k < LANES; k++)
            sum[k] += y[d + k];
    for (; d < dk; d++)
        l += y[d];
    for (int k = 0; k < LANES; k++)
        l += sum[k];
    for (d = 0; d < dk; d++)
        y[d] = y[d] / l;
}

ATTN_CPU_HOT
void attn_cpu_linear_phi(attn_linear_feature f, const float *x, int64_t dk, float *y)
{
    switch (f) {
    case ATTN_LINEAR_SOFTMAX_PAIR:
        softmax_half(x, dk, 1.0f, y);
        softmax_half(x, dk, -1.0f, y + dk);
        break;
    case ATTN_LINEAR_RELU_PAIR:
        for (int64_t d = 0; d < dk; d++) {
            y[d] = relu(x[d]);
            y[dk + d] = relu(-x[d]);
        }
        break;
    case ATTN_LINEAR_ELU:
        for (int64_t d = 0; d < dk; d++)
            y[d] = x[d] > 0 ? x[d] : expm1f(x[d]);
        break;
    case ATTN_LINEAR_ELU1:
        for (int64_t d = 0; d < dk; d++) /* NaN: not > 0, and exp keeps it */
            y[d] = select_gt(x[d], 0.0f, x[d] + 1.0f, attn_cpu_expf(x[d]));
        break;
    case ATTN_LINEAR_RELU:
        for (int64_t d = 0; d < dk; d++)
            y[d] = relu(x[d]);
        break;
    case ATTN_LINEAR_SILU:
        for (int64_t d = 0; d < dk; d++)
            y[d] = x[d] / (1.0f + attn_cpu_expf(-x[d]));
        break;
    default:
        for (int64_t d = 0; d < dk; d++)
            y[d] = x[d];
        break;
    }
}
