/* cpu_linear_feature.c - the feature maps phi of linear attention in float for the cpu backend
 * (the same definitions as reference/linear_feature.c; IEEE expf/expm1f, no approximations). */
#include "cpu_linear.h"

#include "cpu_math.h"

#include <math.h>

static inline float relu(float x)
{
    return x > 0 || isnan(x) ? x : 0.0f;
}

/* softmax of sign * x over dk values, max-subtracted (a NaN makes the row NaN). */
static void softmax_half(const float *x, int64_t dk, float sign, float *y)
{
    float m = -INFINITY, l = 0.0f;
    for (int64_t d = 0; d < dk; d++)
        m = isnan(x[d]) || sign * x[d] > m ? sign * x[d] : m;
    for (int64_t d = 0; d < dk; d++) {
        y[d] = expf(sign * x[d] - m);
        l += y[d];
    }
    for (int64_t d = 0; d < dk; d++)
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
        for (int64_t d = 0; d < dk; d++)
            y[d] = x[d] > 0 ? x[d] + 1.0f : expf(x[d]);
        break;
    case ATTN_LINEAR_RELU:
        for (int64_t d = 0; d < dk; d++)
            y[d] = relu(x[d]);
        break;
    case ATTN_LINEAR_SILU:
        for (int64_t d = 0; d < dk; d++)
            y[d] = x[d] / (1.0f + expf(-x[d]));
        break;
    default:
        for (int64_t d = 0; d < dk; d++)
            y[d] = x[d];
        break;
    }
}
