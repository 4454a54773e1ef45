/* cpu_transnormer_impl.c - TransNormer on the "cpu" backend: where y lives (out itself when it
 * is f32), dispatch to NormAttention (cpu_transnormer_norm.c) or DiagAttention
 * (cpu_transnormer_diag.c), the SimpleRMSNorm over all heads of a token fused into the store
 * of out, and the name of the implementation a call runs. */
#include "cpu_transnormer.h"

#include "cpu_math.h"

#include "attn_half.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

float *attn_cpu_tn_alloc(int64_t n1, int64_t n2, int64_t n3)
{
    size_t n;
    if (n1 < 0 || n2 < 0 || n3 < 0 || __builtin_mul_overflow((size_t)n1, (size_t)n2, &n) ||
        __builtin_mul_overflow(n, (size_t)n3, &n) || __builtin_mul_overflow(n, sizeof(float), &n))
        return NULL;
    return malloc(n ? n : 1);
}

/* One head row of token (b, i) from f32 into out, rounded once to out's dtype. */
static void store_row(const attn_operand *o, int64_t b, int64_t i, int64_t h, const float *src,
                      int64_t n)
{
    if (o->stride[3] == 1 || n == 1) {
        attn_cpu_row_from_f32(src, n, o->dtype, (void *)attn_cpu_elem(o, b, i, h, 0));
        return;
    }
    for (int64_t d = 0; d < n; d++)
        attn_store_f64(o->ptr, o->dtype, attn_at(o, b, i, h, d), (double)src[d]);
}

/* Sum of squares of n floats in double, with independent lanes so that it vectorises. */
ATTN_CPU_HOT
static double sum_squares(const float *x, int64_t n)
{
    double acc[8] = {0};
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)x[c + k] * x[c + k];
    double s = 0.0;
    for (; c < n; c++)
        s += (double)x[c] * x[c];
    for (int k = 0; k < 8; k++)
        s += acc[k];
    return s;
}

ATTN_CPU_HOT
static void divide_row(float *x, int64_t n, float den)
{
    for (int64_t c = 0; c < n; c++)
        x[c] /= den;
}

/* out = y / (||y||_2 / sqrt(N) + eps) per token over its N = Hq * Dv values (or y as is). The
 * sum of squares is kept in double: one more rounding would be all a float sum saves. When y
 * is out itself, the division is the store. */
static void srms_store(const attn_transnormer_problem *p, int threads, const attn_cpu_tn_y *y)
{
    const int64_t tokens = p->B * p->S;
    const int in_place = y->p == p->out.ptr;
    if (in_place && !p->srms)
        return;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < tokens; t++) {
        const int64_t b = t / p->S, i = t % p->S;
        if (p->srms) {
            double ss = 0.0;
            for (int64_t h = 0; h < p->Hq; h++)
                ss += sum_squares(attn_cpu_tn_row(y, b, i, h), p->Dv);
            const float den = (float)sqrt(ss / (double)(p->Hq * p->Dv)) + (float)p->eps;
            for (int64_t h = 0; h < p->Hq; h++)
                divide_row(attn_cpu_tn_row(y, b, i, h), p->Dv, den);
        }
        for (int64_t h = 0; !in_place && h < p->Hq; h++)
            store_row(&p->out, b, i, h, attn_cpu_tn_row(y, b, i, h), p->Dv);
    }
}

/* y in out (f32 with unit-stride rows), else in scratch (NULL when that cannot be had). */
static float *y_of(const attn_transnormer_problem *p, attn_cpu_tn_y *y)
{
    const attn_operand *o = &p->out;
    if (o->dtype == ATTN_F32 && (o->stride[3] == 1 || p->Dv == 1)) {
        *y = (attn_cpu_tn_y){o->ptr, o->stride[0], o->stride[1], o->stride[2]};
        return o->ptr;
    }
    *y = (attn_cpu_tn_y){attn_cpu_tn_alloc(p->B * p->S, p->Hq, p->Dv), p->S * p->Hq * p->Dv,
                         p->Hq * p->Dv, p->Dv};
    return y->p;
}

static attn_status cpu_tn_run(attn_backend *be, const void *problem)
{
    const attn_transnormer_problem *p = problem;
    const int threads = ((const attn_cpu_state *)be->impl)->threads;
    attn_cpu_tn_y y;
    if (!y_of(p, &y))
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: out of memory (transnormer output)");
    attn_status st = p->mode == ATTN_TRANSNORMER_MODE_NORM
                         ? attn_cpu_transnormer_norm(p, threads, ATTN_CPU_TN_CHUNK, &y)
                         : attn_cpu_transnormer_diag(p, threads, ATTN_CPU_TN_ROWS, &y);
    if (st == ATTN_OK)
        srms_store(p, threads, &y);
    if (y.p != p->out.ptr)
        free(y.p);
    return st == ATTN_OK ? attn_ok() : st;
}

/* Scratch sizes are products of the problem's sizes: refuse those no memory could hold before
 * anything multiplies them unchecked. */
static attn_status cpu_tn_supported(attn_backend *be, const void *problem)
{
    const attn_transnormer_problem *p = problem;
    (void)be;
    const double d = (double)(p->Dk + p->Dv), blk = (double)ATTN_CPU_TN_CHUNK + ATTN_CPU_TN_ROWS;
    const double chunks = (double)(p->S / ATTN_CPU_TN_CHUNK + 1);
    const double need = (double)p->B * (double)p->Hkv * chunks * (double)p->Dk * (double)p->Dv +
                        (double)p->B * (double)p->S * (double)p->Hq * (double)p->Dv +
                        blk * (d + (double)(p->S < p->block ? p->S : p->block));
    if (need > 0x1p58)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                         "cpu: the problem's scratch (S %lld, Dk %lld, Dv %lld) exceeds any "
                         "memory", (long long)p->S, (long long)p->Dk, (long long)p->Dv);
    return ATTN_OK;
}

/* "cpu:transnormer_norm_chunk128_srms", "cpu:transnormer_diag_softmax_rows64". */
static void cpu_tn_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    const attn_transnormer_problem *p = problem;
    (void)be;
    if (p->mode == ATTN_TRANSNORMER_MODE_NORM)
        snprintf(buf, n, "cpu:transnormer_norm_chunk%d%s", ATTN_CPU_TN_CHUNK,
                 p->srms ? "_srms" : "");
    else
        snprintf(buf, n, "cpu:transnormer_diag_%s_rows%d%s",
                 p->scores == ATTN_TRANSNORMER_SCORES_RELU ? "relu" : "softmax",
                 ATTN_CPU_TN_ROWS, p->srms ? "_srms" : "");
}

const attn_op_impl attn_cpu_transnormer_impl = {
    .supported = cpu_tn_supported,
    .run = cpu_tn_run,
    .impl_name = cpu_tn_impl_name,
};
