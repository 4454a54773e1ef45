/* cpu_rope.c - RoPE on the CPU backend: per row (b, s) one cos/sin table (f64 angle rounded
 * to float, reused while consecutive rows share a position), then every head of the row
 * rotated in f32 by a vectorisable loop, straight from and into f32 unit-stride views and
 * through a converted row otherwise. Rows are ordered position-major so that batches at the
 * same position (offset mode, broadcast positions) reuse the table. */
#include "cpu_rope.h"

#include "attn_half.h"
#include "cpu_math.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

void attn_cpu_rope_freqs(double theta, int64_t rot, double *freq)
{
    for (int64_t i = 0; i < rot / 2; i++)
        freq[i] = pow(theta, -(double)(2 * i) / (double)rot);
}

void attn_cpu_rope_table(const double *freq, int64_t npairs, double pos, float *cs, float *sn)
{
    for (int64_t i = 0; i < npairs; i++) {
        const double ang = pos * freq[i];
        cs[i] = (float)cos(ang);
        sn[i] = (float)sin(ang);
    }
}

ATTN_CPU_HOT
void attn_cpu_rope_apply(attn_rope_layout layout, int64_t rot, int64_t D, const float *cs,
                         const float *sn, const float *x, float *y)
{
    const int64_t n = rot / 2;
    if (layout == ATTN_ROPE_INTERLEAVED) {
        for (int64_t i = 0; i < n; i++) {
            const float a = x[2 * i], c = x[2 * i + 1];
            y[2 * i] = a * cs[i] - c * sn[i];
            y[2 * i + 1] = c * cs[i] + a * sn[i];
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            const float a = x[i], c = x[i + n];
            y[i] = a * cs[i] - c * sn[i];
            y[i + n] = c * cs[i] + a * sn[i];
        }
    }
    if (y != x)
        for (int64_t d = rot; d < D; d++)
            y[d] = x[d];
}

/* Per-thread rows: the table and, for views that are not f32 with unit stride, the row in
 * and out as floats. */
typedef struct rope_scratch {
    float *cs, *sn, *xin, *yout;
    double pos; /* position of the table (NAN before the first row) */
} rope_scratch;

static int direct_f32(const attn_operand *o)
{
    return o->dtype == ATTN_F32 && o->stride[3] <= 1;
}

/* Rotate every head of row (b, s). */
static void rope_row(const attn_rope_problem *p, const double *freq, int64_t b, int64_t s,
                     rope_scratch *w)
{
    const double pos =
        (double)p->offset +
        (p->pos.t ? attn_load_f64(p->pos.ptr, p->pos.dtype, attn_at(&p->pos, b, s, 0, 0))
                  : (double)s);
    if (!(pos == w->pos)) {
        attn_cpu_rope_table(freq, p->npairs, pos, w->cs, w->sn);
        w->pos = pos;
    }
    for (int64_t h = 0; h < p->H; h++) {
        const void *src = attn_cpu_elem(&p->x, b, s, h, 0);
        void *dst = (void *)attn_cpu_elem(&p->out, b, s, h, 0);
        const float *x = src;
        float *y = direct_f32(&p->out) ? dst : w->yout;
        if (!direct_f32(&p->x)) {
            attn_convert_to_f32_strided(src, p->x.dtype, p->D, p->x.stride[3], w->xin);
            x = w->xin;
        }
        attn_cpu_rope_apply(p->layout, p->rot, p->D, w->cs, w->sn, x, y);
        if (y == w->yout && p->out.stride[3] <= 1)
            attn_cpu_row_from_f32(y, p->D, p->out.dtype, dst);
        else if (y == w->yout)
            for (int64_t d = 0; d < p->D; d++)
                attn_store_f64(dst, p->out.dtype, d * p->out.stride[3], y[d]);
    }
}

attn_status attn_cpu_rope(const attn_rope_problem *p, int threads)
{
    const int64_t per = 2 * p->npairs + 2 * p->D; /* floats per thread */
    double *freq = malloc((size_t)p->npairs * sizeof(double));
    float *mem = malloc((size_t)(per * threads) * sizeof(float));
    if (!freq || !mem) {
        free(freq);
        free(mem);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate rope scratch (D %lld)",
                         (long long)p->D);
    }
    attn_cpu_rope_freqs(p->theta, p->rot, freq);
    const int64_t rows = p->B * p->S;
#pragma omp parallel num_threads(threads)
    {
        float *m = mem + per * omp_get_thread_num();
        rope_scratch w = {m, m + p->npairs, m + 2 * p->npairs, m + 2 * p->npairs + p->D, NAN};
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) /* position-major: r = s * B + b */
            rope_row(p, freq, r % p->B, r / p->B, &w);
    }
    free(freq);
    free(mem);
    return ATTN_OK;
}
