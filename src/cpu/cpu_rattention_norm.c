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

/* Columns [c0, c0 + cols) of the fold and the read for rows fq[0 .. nr) of the read: each
 * state row is updated (fk non-NULL) and read while it is in registers, and the nr x cols
 * accumulators stay in registers while the state's column block streams by. nr and cols are
 * constants after inlining (at most 4 x 32 floats, 16 x 8-lane registers for 3 or 4 rows). */
static inline __attribute__((always_inline)) void
fold_read_block(const float *fk, const float *restrict v, const float *fq, const int nr,
                const int cols, float *restrict st, int64_t ld, int64_t df, int64_t c0,
                int64_t dv, float *restrict o)
{
    float acc[4][32] = {{0}};
    for (int64_t f = 0; f < df; f++) {
        float *restrict row = st + f * ld + c0;
        if (fk)
            for (int c = 0; c < cols; c++)
                row[c] += fk[f] * v[c0 + c];
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < cols; c++)
                acc[r][c] += fq[r * df + f] * row[c];
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < cols; c++)
            o[r * dv + c0 + c] = acc[r][c];
}

/* The column blocks of one group of nr <= 4 read rows (cols per block); returns the first
 * column left for the tail. */
static inline __attribute__((always_inline)) int64_t
fold_read_rows(const float *fk, const float *v, const float *fq, const int nr, const int cols,
               float *st, int64_t ld, int64_t df, int64_t dv, float *o)
{
    int64_t c0 = 0;
    for (; c0 + cols <= dv; c0 += cols)
        fold_read_block(fk, v, fq, nr, cols, st, ld, df, c0, dv, o);
    return c0;
}

/* One group of nr rows with nr a constant in each branch (no FMAs on absent rows; narrower
 * blocks for 3 and 4 rows so that the accumulators and values stay in registers). */
ATTN_CPU_HOT
static int64_t fold_read_group(const float *fk, const float *v, const float *fq, int64_t nr,
                               float *st, int64_t ld, int64_t df, int64_t dv, float *o)
{
    switch (nr) {
    case 1: return fold_read_rows(fk, v, fq, 1, 32, st, ld, df, dv, o);
    case 2: return fold_read_rows(fk, v, fq, 2, 32, st, ld, df, dv, o);
    case 3: return fold_read_rows(fk, v, fq, 3, 16, st, ld, df, dv, o);
    case 4: return fold_read_rows(fk, v, fq, 4, 16, st, ld, df, dv, o);
    default: return fold_read_rows(fk, v, fq, 0, 32, st, ld, df, dv, o); /* the fold alone */
    }
}

/* The columns from c0 that the blocks leave, column by column. */
static void fold_read_tail(const float *fk, const float *v, const float *fq, int64_t nr,
                           float *st, int64_t ld, int64_t df, int64_t c0, int64_t dv, float *o)
{
    for (int64_t f = 0; fk && f < df; f++)
        for (int64_t c = c0; c < dv; c++)
            st[f * ld + c] += fk[f] * v[c];
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = c0; c < dv; c++) {
            float acc = 0.0f;
            for (int64_t f = 0; f < df; f++)
                acc += fq[r * df + f] * st[f * ld + c];
            o[r * dv + c] = acc;
        }
}

/* Query rows in fours (each state block read once for four rows; the fold on the first four's
 * pass). */
void attn_cpu_ratt_fold_read(const float *fk, const float *v, const float *fq, int64_t nq,
                             float *st, int64_t ld, int64_t df, int64_t dv, float *o)
{
    for (int64_t r0 = 0; r0 < nq || (r0 == 0 && fk); r0 += 4, fk = NULL) {
        const int64_t nr = nq - r0 < 4 ? nq - r0 : 4;
        const int64_t c0 = fold_read_group(fk, v, fq + r0 * df, nr, st, ld, df, dv, o + r0 * dv);
        fold_read_tail(fk, v, fq + r0 * df, nr, st, ld, df, c0, dv, o + r0 * dv);
    }
}
