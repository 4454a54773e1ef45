/* linear_feature.c - the feature maps phi of linear attention in the reference (f64, or every
 * intermediate rounded to float), and the input access every reference form of linear
 * attention shares (phi of a q/k row, decay powers, the initial state). rattention's residual
 * branch (softmax-pair and relu-pair maps) uses the same maps. */
#include "linear_ref.h"

#include "attn_half.h"

#include <math.h>

/* softmax of sign * x over dk values into y, max-subtracted (a NaN makes the row NaN). */
static void softmax_half(attn_ref_precision prec, const double *x, int64_t dk, double sign,
                         double *y)
{
    double m = -INFINITY, l = 0.0;
    for (int64_t d = 0; d < dk; d++)
        m = isnan(x[d]) || sign * x[d] > m ? sign * x[d] : m;
    for (int64_t d = 0; d < dk; d++) {
        y[d] = r_exp(prec, rnd(prec, sign * x[d] - m));
        l = rnd(prec, l + y[d]);
    }
    for (int64_t d = 0; d < dk; d++)
        y[d] = rnd(prec, y[d] / l);
}

void attn_ref_linear_phi(attn_linear_feature f, attn_ref_precision prec, const double *x,
                         int64_t dk, double *y)
{
    switch (f) {
    case ATTN_LINEAR_SOFTMAX_PAIR:
        softmax_half(prec, x, dk, 1.0, y);
        softmax_half(prec, x, dk, -1.0, y + dk);
        return;
    case ATTN_LINEAR_RELU_PAIR:
        for (int64_t d = 0; d < dk; d++) {
            y[d] = relu(x[d]);
            y[dk + d] = relu(-x[d]);
        }
        return;
    default:
        break;
    }
    for (int64_t d = 0; d < dk; d++) {
        const double v = x[d];
        switch (f) {
        case ATTN_LINEAR_ELU:
            y[d] = v > 0 ? v : r_expm1(prec, v);
            break;
        case ATTN_LINEAR_ELU1: /* elu(x) + 1 = x + 1, or exp(x) where x <= 0 */
            y[d] = v > 0 ? rnd(prec, v + 1.0) : r_exp(prec, v);
            break;
        case ATTN_LINEAR_RELU:
            y[d] = relu(v);
            break;
        case ATTN_LINEAR_SILU:
            y[d] = rnd(prec, v / rnd(prec, 1.0 + r_exp(prec, -v)));
            break;
        default: /* identity */
            y[d] = v;
            break;
        }
    }
}

/* Jacobian-transpose product of one softmax half: p = softmax(sign x); dx += sign (p * (dy -
 * p . dy)), or with mag its magnitude sum p * (|dy| + p . |dy|). */
static void softmax_half_vjp(attn_ref_precision prec, const double *x, int64_t dk, double sign,
                             const double *dy, int mag, double *p, double *dx)
{
    softmax_half(prec, x, dk, sign, p);
    double pd = 0.0;
    for (int64_t d = 0; d < dk; d++)
        pd = rnd(prec, pd + rnd(prec, p[d] * (mag ? fabs(dy[d]) : dy[d])));
    for (int64_t d = 0; d < dk; d++)
        dx[d] = mag ? dx[d] + p[d] * (fabs(dy[d]) + pd)
                    : rnd(prec, dx[d] + rnd(prec, sign * rnd(prec, p[d] * rnd(prec, dy[d] - pd))));
}

/* d phi_d / d x_d of the elementwise maps. */
static double phi_slope(attn_linear_feature f, attn_ref_precision prec, double x)
{
    switch (f) {
    case ATTN_LINEAR_ELU:
    case ATTN_LINEAR_ELU1:
        return x > 0 ? 1.0 : r_exp(prec, x);
    case ATTN_LINEAR_RELU:
        return x > 0 ? 1.0 : 0.0;
    case ATTN_LINEAR_SILU: { /* s (1 + x (1 - s)), s = sigmoid(x) */
        const double sg = rnd(prec, 1.0 / rnd(prec, 1.0 + r_exp(prec, -x)));
        return rnd(prec, sg * rnd(prec, 1.0 + rnd(prec, x * rnd(prec, 1.0 - sg))));
    }
    default: /* identity */
        return 1.0;
    }
}

void attn_ref_linear_phi_vjp(attn_linear_feature f, attn_ref_precision prec, const double *x,
                             int64_t dk, const double *dy, int mag, double *tmp, double *dx)
{
    for (int64_t d = 0; d < dk; d++)
        dx[d] = 0.0;
    if (f == ATTN_LINEAR_SOFTMAX_PAIR) {
        softmax_half_vjp(prec, x, dk, 1.0, dy, mag, tmp, dx);
        softmax_half_vjp(prec, x, dk, -1.0, dy + dk, mag, tmp, dx);
        return;
    }
    for (int64_t d = 0; d < dk; d++) {
        if (f == ATTN_LINEAR_RELU_PAIR) { /* relu(x) then relu(-x): slopes 1 / -1 by sign */
            const double a = mag ? fabs(dy[d]) : dy[d], b = mag ? fabs(dy[dk + d]) : dy[dk + d];
            dx[d] = x[d] > 0 ? a : x[d] < 0 ? (mag ? b : -b) : 0.0;
            continue;
        }
        const double slope = phi_slope(f, prec, x[d]);
        dx[d] = mag ? fabs(slope * dy[d]) : rnd(prec, slope * dy[d]);
    }
}

void attn_ref_linear_phi_row(const attn_linear_problem *p, const attn_operand *o, int64_t b,
                             int64_t s, int64_t h, attn_ref_precision prec, double *tmp,
                             double *y)
{
    for (int64_t d = 0; d < p->Dk; d++)
        tmp[d] = attn_load_f64(o->ptr, o->dtype, attn_at(o, b, s, h, d));
    attn_ref_linear_phi(p->feature, prec, tmp, p->Dk, y);
}

double attn_ref_linear_decay_pow(const attn_linear_problem *p, int64_t g, double n)
{
    return p->log_decay ? exp(n * p->log_decay[g]) : 1.0;
}

double attn_ref_linear_state_in(const attn_operand *o, int64_t b, int64_t g, int64_t d,
                                int64_t c)
{
    return o->t ? attn_load_f64(o->ptr, ATTN_F32, attn_at(o, b, g, d, c)) : 0.0;
}

void attn_ref_linear_load_v(const attn_linear_problem *p, int64_t b, int64_t g, double *v)
{
    for (int64_t j = 0; j < p->S; j++)
        for (int64_t c = 0; c < p->Dv; c++)
            v[j * p->Dv + c] = attn_load_f64(p->v.ptr, p->v.dtype, attn_at(&p->v, b, j, g, c));
}
