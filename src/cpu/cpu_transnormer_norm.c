/* cpu_transnormer_norm.c - NormAttention on the CPU, y_i = sum_j (phi(q_i).phi(k_j)) v_j, in
 * the chunked form with BLIS products, three parallel passes over chunks of C tokens:
 *   1. per (batch, KV head, chunk): the chunk's state  S_c = phi(K_c)^T V_c        (Dk x Dv)
 *   2. per (batch, KV head): causal: exclusive prefix sums over chunks (S_c = sum_{c' < c});
 *      not causal: the total, left in chunk 0's slot
 *   3. per (batch, query head, chunk): Y_c = phi(Q_c) S_c, plus when causal the intra-chunk
 *      part tril(phi(Q_c) phi(K_c)^T) V_c
 * States are f32, one per KV head shared by its query heads (GQA). */
#include "cpu_transnormer.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct norm_scratch {
    float *q, *k, *v, *s; /* C x Dk, C x Dk, C x Dv, C x C */
} norm_scratch;

/* Thread scratch; 0, or -1 when any allocation failed (the caller frees what it got). */
static int scratch_alloc(const attn_transnormer_problem *p, int64_t c, norm_scratch *w)
{
    w->q = attn_cpu_tn_alloc(c, p->Dk, 1);
    w->k = attn_cpu_tn_alloc(c, p->Dk, 1);
    w->v = attn_cpu_tn_alloc(c, p->Dv, 1);
    w->s = attn_cpu_tn_alloc(c, c, 1);
    return w->q && w->k && w->v && w->s ? 0 : -1;
}

static void scratch_free(norm_scratch *w)
{
    free(w->q);
    free(w->k);
    free(w->v);
    free(w->s);
}

/* phi(K_c) and V_c of chunk [r0, r0 + n) of KV head g. */
static void load_kv(const attn_transnormer_problem *p, int64_t b, int64_t g, int64_t r0,
                    int64_t n, norm_scratch *w)
{
    attn_cpu_tn_load_phi(p, &p->k, b, g, r0, n, w->k);
    attn_cpu_plane_to_f32(&p->v, b, g, r0, n, p->Dv, w->v);
}

/* Pass 1: S_c = phi(K_c)^T V_c. */
static void chunk_state(const attn_transnormer_problem *p, int64_t chunk, int64_t item,
                        float *states, norm_scratch *w)
{
    const int64_t nc = (p->S + chunk - 1) / chunk, c = item % nc, bg = item / nc;
    const int64_t r0 = c * chunk, n = p->S - r0 < chunk ? p->S - r0 : chunk;
    load_kv(p, bg / p->Hkv, bg % p->Hkv, r0, n, w);
    const attn_cpu_mat kt = {w->k, 1, p->Dk}, v = {w->v, p->Dv, 1};
    attn_cpu_sgemm(p->Dk, p->Dv, n, 1.0f, kt, v, 0.0f, states + item * p->Dk * p->Dv, p->Dv);
}

/* Pass 2 for one state element of one (batch, KV head): prefix or total over the chunks. */
static void scan_element(const attn_transnormer_problem *p, int64_t nc, float *st)
{
    const int64_t e = p->Dk * p->Dv;
    float run = 0.0f;
    for (int64_t c = 0; c < nc; c++) {
        const float x = st[c * e];
        if (p->causal)
            st[c * e] = run;
        run += x;
    }
    if (!p->causal)
        st[0] = run;
}

/* Pass 3: the chunk's rows of y for query head h. */
static void chunk_output(const attn_transnormer_problem *p, int64_t chunk, int64_t item,
                         const float *states, float *y, norm_scratch *w)
{
    const int64_t nc = (p->S + chunk - 1) / chunk, c = item % nc, bh = item / nc;
    const int64_t b = bh / p->Hq, h = bh % p->Hq, g = h / p->group;
    const int64_t r0 = c * chunk, n = p->S - r0 < chunk ? p->S - r0 : chunk;
    const int64_t ldy = p->Hq * p->Dv;
    float *yc = y + (b * p->S + r0) * ldy + h * p->Dv;
    const float *st = states + ((b * p->Hkv + g) * nc + (p->causal ? c : 0)) * p->Dk * p->Dv;
    attn_cpu_tn_load_phi(p, &p->q, b, h, r0, n, w->q);
    const attn_cpu_mat q = {w->q, p->Dk, 1}, s = {st, p->Dv, 1};
    attn_cpu_sgemm(n, p->Dv, p->Dk, 1.0f, q, s, 0.0f, yc, ldy);
    if (!p->causal)
        return;
    load_kv(p, b, g, r0, n, w);
    const attn_cpu_mat kt = {w->k, 1, p->Dk}, v = {w->v, p->Dv, 1}, pm = {w->s, n, 1};
    attn_cpu_sgemm(n, n, p->Dk, 1.0f, q, kt, 0.0f, w->s, n);
    for (int64_t r = 0; r < n; r++) /* keys after the query are not seen */
        memset(w->s + r * n + r + 1, 0, sizeof(float) * (size_t)(n - r - 1));
    attn_cpu_sgemm(n, p->Dv, n, 1.0f, pm, v, 1.0f, yc, ldy);
}

attn_status attn_cpu_transnormer_norm(const attn_transnormer_problem *p, int threads,
                                      int64_t chunk, float *y)
{
    const int64_t nc = (p->S + chunk - 1) / chunk, e = p->Dk * p->Dv;
    const int64_t n_state = p->B * p->Hkv * nc, n_out = p->B * p->Hq * nc;
    float *states = attn_cpu_tn_alloc(n_state, p->Dk, p->Dv);
    int oom = 0;
    if (!states)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: out of memory (transnormer states)");
#pragma omp parallel num_threads(threads) reduction(| : oom)
    {
        norm_scratch w;
        const int bad = scratch_alloc(p, chunk, &w) != 0;
        oom = bad;
        /* every thread passes every barrier, so a failed one only skips the work */
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < n_state; it++)
            if (!bad)
                chunk_state(p, chunk, it, states, &w);
#pragma omp for schedule(static)
        for (int64_t it = 0; it < p->B * p->Hkv * e; it++)
            if (!bad)
                scan_element(p, nc, states + it / e * nc * e + it % e);
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < n_out; it++)
            if (!bad)
                chunk_output(p, chunk, it, states, y, &w);
        scratch_free(&w);
    }
    free(states);
    return oom ? attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: out of memory (transnormer scratch)")
               : ATTN_OK;
}
