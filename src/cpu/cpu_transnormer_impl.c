/* cpu_transnormer_impl.c - TransNormer on the "cpu" backend: dispatch to NormAttention
 * (cpu_transnormer_norm.c) or DiagAttention (cpu_transnormer_diag.c), the feature maps, the
 * SimpleRMSNorm over all heads of a token fused into the store of out, and the name of the
 * implementation a call runs. */
#include "cpu_transnormer.h"

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

/* phi of NormAttention; NaN is kept by every map (x > 0 is false for NaN, expm1f(NaN) = NaN,
 * and relu returns x itself unless x <= 0). */
static void phi_row(attn_transnormer_feature f, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        if (f == ATTN_TRANSNORMER_FEATURE_1_ELU)
            x[i] = v > 0.0f ? 1.0f + v : 1.0f + expm1f(v);
        else if (f == ATTN_TRANSNORMER_FEATURE_ELU)
            x[i] = v > 0.0f ? v : expm1f(v);
        else if (f == ATTN_TRANSNORMER_FEATURE_RELU)
            x[i] = v <= 0.0f ? 0.0f : v;
    }
}

void attn_cpu_tn_load_phi(const attn_transnormer_problem *p, const attn_operand *o, int64_t b,
                          int64_t h, int64_t r0, int64_t n, float *dst)
{
    attn_cpu_plane_to_f32(o, b, h, r0, n, p->Dk, dst);
    if (p->feature != ATTN_TRANSNORMER_FEATURE_IDENTITY)
        phi_row(p->feature, dst, n * p->Dk);
}

/* One head row of token (b, i) from f32 into out, rounded once to out's dtype. */
static void store_row(const attn_operand *o, int64_t b, int64_t i, int64_t h, const float *src,
                      int64_t n)
{
    if (o->stride[3] == 1 || n == 1) {
        attn_convert_from_f32(src, n, o->dtype, (void *)attn_cpu_elem(o, b, i, h, 0));
        return;
    }
    for (int64_t d = 0; d < n; d++)
        attn_store_f64(o->ptr, o->dtype, attn_at(o, b, i, h, d), (double)src[d]);
}

/* out = y / (||y||_2 / sqrt(N) + eps) per token over its N = Hq * Dv values (or y as is). The
 * sum of squares is kept in double: one more rounding would be all a float sum saves. */
static void srms_store(const attn_transnormer_problem *p, int threads, float *y)
{
    const int64_t n = p->Hq * p->Dv, tokens = p->B * p->S;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < tokens; t++) {
        float *row = y + t * n;
        if (p->srms) {
            double ss = 0.0;
            for (int64_t c = 0; c < n; c++)
                ss += (double)row[c] * row[c];
            const float den = (float)sqrt(ss / (double)n) + (float)p->eps;
            for (int64_t c = 0; c < n; c++)
                row[c] /= den;
        }
        for (int64_t h = 0; h < p->Hq; h++)
            store_row(&p->out, t / p->S, t % p->S, h, row + h * p->Dv, p->Dv);
    }
}

static attn_status cpu_tn_run(attn_backend *be, const void *problem)
{
    const attn_transnormer_problem *p = problem;
    const int threads = ((const attn_cpu_state *)be->impl)->threads;
    float *y = attn_cpu_tn_alloc(p->B * p->S, p->Hq, p->Dv);
    if (!y)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: out of memory (transnormer output)");
    attn_status st = p->mode == ATTN_TRANSNORMER_MODE_NORM
                         ? attn_cpu_transnormer_norm(p, threads, ATTN_CPU_TN_CHUNK, y)
                         : attn_cpu_transnormer_diag(p, threads, ATTN_CPU_TN_ROWS, y);
    if (st == ATTN_OK)
        srms_store(p, threads, y);
    free(y);
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
