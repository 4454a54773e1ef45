/* rope.c - the ground truth: rotary position embedding written as its definition (RoFormer,
 * Su et al. 2021, eq. 34), one row at a time in plain loops. For row (b, s) at position
 * pos = offset + (positions ? positions[b, s] : s), every head h and pair i < rot/2:
 *
 *   ang   = pos * theta^(-2i / rot)              (f64)
 *   (a, c) = (i, i + rot/2)   half-split  |  (2i, 2i + 1)   interleaved
 *   out[a] = x[a] cos(ang) - x[c] sin(ang)
 *   out[c] = x[c] cos(ang) + x[a] sin(ang)
 *   out[d] = x[d]                                for d >= rot
 *
 * The f64 angle of a position up to 2^40 is within |ang| 2^-52 of the exact one. See
 * docs/ops/rope.md. */
#include "rope_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"

#include <math.h>
#include <stdlib.h>

double attn_ref_rope_freq(double theta, int64_t rot, int64_t i)
{
    return pow(theta, -(double)(2 * i) / (double)rot);
}

void attn_ref_rope_pair(attn_rope_layout layout, int64_t rot, int64_t i, int64_t *a, int64_t *c)
{
    *a = layout == ATTN_ROPE_INTERLEAVED ? 2 * i : i;
    *c = layout == ATTN_ROPE_INTERLEAVED ? 2 * i + 1 : i + rot / 2;
}

double attn_ref_rope_pos(const attn_rope_problem *p, int64_t b, int64_t s)
{
    double at = (double)s;
    if (p->pos.t)
        at = attn_load_f64(p->pos.ptr, p->pos.dtype, attn_at(&p->pos, b, s, 0, 0));
    return (double)p->offset + at;
}

/* Float rounding of an intermediate in lowp mode (a double holds every float, and rounding a
 * float*float or float-float computed in double gives the float result exactly). */
static double rnd(int lowp, double v)
{
    return lowp ? (double)(float)v : v;
}

/* One row in the working precision (x and y may be the same array). */
static void rope_row(attn_rope_layout layout, double theta, int64_t rot, int64_t D, double pos,
                     int lowp, const double *x, double *y)
{
    for (int64_t i = 0; i < rot / 2; i++) {
        const double ang = pos * attn_ref_rope_freq(theta, rot, i);
        const double cs = rnd(lowp, cos(ang)), sn = rnd(lowp, sin(ang));
        int64_t a, c;
        attn_ref_rope_pair(layout, rot, i, &a, &c);
        const double xa = x[a], xc = x[c];
        y[a] = rnd(lowp, rnd(lowp, xa * cs) - rnd(lowp, xc * sn));
        y[c] = rnd(lowp, rnd(lowp, xc * cs) + rnd(lowp, xa * sn));
    }
    for (int64_t d = rot; d < D; d++)
        y[d] = x[d];
}

void attn_ref_rope_row(attn_rope_layout layout, double theta, int64_t rot, int64_t D, double pos,
                       const double *x, double *y)
{
    rope_row(layout, theta, rot, D, pos, 0, x, y);
}

attn_status attn_ref_rope(const attn_rope_problem *p, int lowp, double *out)
{
    const int64_t rows = p->B * p->S * p->H;
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t r = 0; r < rows; r++) {
        const int64_t h = r % p->H, s = r / p->H % p->S, b = r / (p->H * p->S);
        double *y = out + r * p->D;
        for (int64_t d = 0; d < p->D; d++) /* inputs are read exactly (f16/bf16 widened) */
            y[d] = attn_load_f64(p->x.ptr, p->x.dtype, attn_at(&p->x, b, s, h, d));
        rope_row(p->layout, p->theta, p->rot, p->D, attn_ref_rope_pos(p, b, s), lowp, y, y);
    }
    return ATTN_OK;
}
