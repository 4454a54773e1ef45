/* cpu_rattention_norm.c - the pieces of RATTENTION the forward and the decode step share on the
 * cpu backend: scratch sizing, gamma rows, the two GroupRMSNorms summed into the output row,
 * and the residual branch's state fold and read (the decode step's per-token products, written
 * as row updates over the Dv contiguous values so that they vectorise). */
#include "cpu_rattention.h"

#include "cpu_math.h"

#include <math.h>
#include <stdlib.h>

float *attn_cpu_ratt_alloc(int64_t n1, int64_t n2)
{
    size_t n;
    if (n1 < 0 || n2 < 0 || __builtin_mul_overflow((size_t)n1, (size_t)n2, &n) ||
        __builtin_mul_overflow(n, sizeof(float), &n))
        return NULL;
    return malloc(n ? n : sizeof(float));
}

const float *attn_cpu_ratt_gamma(const attn_operand *g, int64_t h, int64_t dv, float *buf)
{
    if (!g->t)
        return NULL;
    attn_convert_to_f32_strided(attn_cpu_elem(g, 0, 0, h, 0), g->dtype, dv, g->stride[3], buf);
    return buf;
}

/* 1 / sqrt(mean(x^2) + eps), the sum of squares in double with independent lanes. */
ATTN_CPU_HOT
static float inv_rms(const float *x, int64_t n, double eps)
{
    double acc[8] = {0};
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)x[c + k] * x[c + k];
    double ss = 0.0;
    for (; c < n; c++)
        ss += (double)x[c] * x[c];
    for (int k = 0; k < 8; k++)
        ss += acc[k];
    return (float)(1.0 / sqrt(ss / (double)n + eps));
}

/* y[c] (+)= x[c] * r * g[c] */
ATTN_CPU_HOT
static void scaled(const float *x, float r, const float *g, int64_t n, int add, float *y)
{
    for (int64_t c = 0; c < n; c++) {
        const float t = x[c] * r * (g ? g[c] : 1.0f);
        y[c] = add ? y[c] + t : t;
    }
}

void attn_cpu_ratt_norm_sum(const float *swa, const float *gs, const float *rla,
                            const float *gr, int64_t n, double eps, float *y)
{
    if (swa)
        scaled(swa, inv_rms(swa, n, eps), gs, n, 0, y);
    scaled(rla, inv_rms(rla, n, eps), gr, n, swa != NULL, y);
}

ATTN_CPU_HOT
void attn_cpu_ratt_fold(const float *fk, const float *restrict v, int64_t df, int64_t dv,
                        float *restrict st, int64_t ld)
{
    for (int64_t f = 0; f < df; f++) {
        const float a = fk[f];
        float *restrict row = st + f * ld;
        for (int64_t c = 0; c < dv; c++)
            row[c] += a * v[c];
    }
}

/* o[r][c0 .. c0 + 32) for rows r0 .. r0 + nr (nr <= 4) of the read: 4 x 32 accumulators that
 * stay in registers while the state's column block streams by. */
#define READ_COLS 32
ATTN_CPU_HOT
static void read_block(const float *fq, int64_t nr, const float *restrict st, int64_t ld,
                       int64_t df, int64_t c0, int64_t dv, float *restrict o)
{
    float acc[4][READ_COLS] = {{0}};
    for (int64_t f = 0; f < df; f++) {
        const float *row = st + f * ld + c0;
        for (int r = 0; r < 4; r++) {
            const float a = r < nr ? fq[r * df + f] : 0.0f;
            for (int c = 0; c < READ_COLS; c++)
                acc[r][c] += a * row[c];
        }
    }
    for (int64_t r = 0; r < nr; r++)
        for (int c = 0; c < READ_COLS; c++)
            o[r * dv + c0 + c] = acc[r][c];
}

/* Query rows in fours (each state block read once for four rows), columns in blocks of
 * READ_COLS, the last partial block column by column. */
void attn_cpu_ratt_read(const float *fq, int64_t nq, const float *restrict st, int64_t ld,
                        int64_t df, int64_t dv, float *restrict o)
{
    for (int64_t r0 = 0; r0 < nq; r0 += 4) {
        const int64_t nr = nq - r0 < 4 ? nq - r0 : 4;
        int64_t c0 = 0;
        for (; c0 + READ_COLS <= dv; c0 += READ_COLS)
            read_block(fq + r0 * df, nr, st, ld, df, c0, dv, o + r0 * dv);
        for (int64_t r = r0; r < r0 + nr; r++)
            for (int64_t c = c0; c < dv; c++) {
                float acc = 0.0f;
                for (int64_t f = 0; f < df; f++)
                    acc += fq[r * df + f] * st[f * ld + c];
                o[r * dv + c] = acc;
            }
    }
}
