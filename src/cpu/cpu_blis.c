/* cpu_blis.c - the ways the CPU backend calls BLIS sgemm: single-threaded inside its own
 * OpenMP work items (a per-call runtime object pinned to one thread, so BLIS never
 * oversubscribes the cores), BLIS-threaded for the bench's same-run reference rate, and any
 * strides on a given thread count for the model's dense layers (cpu_bench.h).
 * The tile products are small enough for BLIS's "sup" (unpacked) path; we ask it to pack B
 * (K^T or V, read with a large row stride from BSHD tensors): measured 1.5-2x faster on the
 * forward than unpacked sup, and faster than disabling sup (packing both). */
#include "cpu_bench.h"
#include "cpu_internal.h"

#include <blis.h>

static void sgemm_rntm(rntm_t *rntm, int64_t m, int64_t n, int64_t k, float alpha,
                       attn_cpu_mat a, attn_cpu_mat b, float beta, float *c, int64_t ldc)
{
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &alpha,
                 (float *)a.p, (inc_t)a.rs, (inc_t)a.cs, (float *)b.p, (inc_t)b.rs,
                 (inc_t)b.cs, &beta, c, (inc_t)ldc, 1, NULL, rntm);
}

void attn_cpu_sgemm(int64_t m, int64_t n, int64_t k, float alpha, attn_cpu_mat a,
                    attn_cpu_mat b, float beta, float *c, int64_t ldc)
{
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(1, &rntm);
    bli_rntm_set_pack_b(1, &rntm);
    sgemm_rntm(&rntm, m, n, k, alpha, a, b, beta, c, ldc);
}

int attn_cpu_blis_usable(void)
{
    const char *summary, *warning;
    return attn_cpu_blis_setup(&summary, &warning) == ATTN_OK;
}

attn_status attn_cpu_sgemm_general(int nt, int64_t m, int64_t n, int64_t k, float alpha,
                                   const float *a, int64_t rsa, int64_t csa, const float *b,
                                   int64_t rsb, int64_t csb, float beta, float *c, int64_t rsc)
{
    attn_status st = attn_cpu_blis_setup(NULL, NULL);
    if (st != ATTN_OK)
        return st;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nt, &rntm);
    attn_cpu_mat am = {a, rsa, csa}, bm = {b, rsb, csb};
    sgemm_rntm(&rntm, m, n, k, alpha, am, bm, beta, c, rsc);
    return ATTN_OK;
}

void attn_cpu_sgemm_threads(int nt, int64_t m, int64_t n, int64_t k, const float *a,
                            const float *b, float *c)
{
    if (attn_cpu_blis_setup(NULL, NULL) != ATTN_OK)
        return; /* BLIS unusable (the cpu backend's open says why) */
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nt, &rntm);
    attn_cpu_mat am = {a, k, 1}, bm = {b, n, 1};
    sgemm_rntm(&rntm, m, n, k, 1.0f, am, bm, 0.0f, c, n);
}
