/* cpu_linear.c - the chunked forward of linear attention on the cpu backend (the algorithm of
 * reference/linear_chunked.c with BLIS products): per work item (batch, KV head, block of
 * value columns) an f32 state S [Df x W] is carried across chunks of C positions; for each
 * chunk, with Q = scale * phi(q) of every query head of the group (G*L rows), K = phi(k) and
 * V the values of the block (plus a column of ones carrying the normaliser's z):
 *
 *   O  = diag(lambda^(r+1)) Q S                        inter-chunk (the state)
 *   A  = (Q K^T) .* M,  M[r][c] = lambda^(r-c) (c <= r), 0 above the diagonal
 *   O += A V                                           intra-chunk
 *   S  = lambda^L S + (diag(lambda^(L-1-c)) K)^T V     state update
 *
 * Decay powers are exp(n log lambda) per position (never repeated products). Position p
 * holds key p - shift (rattention's residual branch), none before the shift. Non-causal: the
 * state over every key first, then O = Q S. OpenMP over the work items, one BLIS thread each. */
#include "cpu_linear.h"

#include "cpu_math.h"

#include "attn_half.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* A value-column block has at least this many columns. */
#define MIN_BLOCK_COLS 32

/* Scratch of one thread (floats): q features Q [G*C x Df], keys K and decayed keys Kd
 * [C x Df], values V and their copy for the masked product [C x W], scores A [G*C x C], rows
 * O [G*C x W], state S [Df x W], one converted row set [max(G, 1) * C x max(Dk, Dv)], decay
 * powers [C + 2]. */
typedef struct lin_ws {
    float *q, *k, *kd, *v, *vfix, *a, *o, *s, *raw, *pw;
    const float *vp; /* the chunk's values: v, or the operand itself (f32, no normaliser) */
    int64_t ldv;
    float *op;       /* the chunk's output rows: o, or out itself (f32, no normaliser, G = 1) */
    int64_t ldo;
} lin_ws;

typedef struct lin_item {
    int64_t b, g, c_lo, cols, W; /* W = cols (+ 1 with the normaliser) */
    double log_lambda;
} lin_item;

int64_t attn_cpu_linear_col_blocks(const attn_linear_problem *p, int threads)
{
    const int64_t groups = p->B * p->Hkv;
    int64_t n = 1;
    while (groups * n < threads && p->Dv / (n * 2) >= MIN_BLOCK_COLS)
        n *= 2;
    return n;
}

static int64_t ws_floats(const attn_linear_problem *p, int64_t C, int64_t W)
{
    const int64_t rows = p->group * C, wide = p->Dk > p->Dv ? p->Dk : p->Dv;
    return rows * p->Df + 2 * C * p->Df + 2 * C * W + rows * C + rows * W + p->Df * W + rows * wide +
           C + 2;
}

static void ws_carve(const attn_linear_problem *p, int64_t C, int64_t W, float *base, lin_ws *w)
{
    const int64_t rows = p->group * C, wide = p->Dk > p->Dv ? p->Dk : p->Dv;
    w->q = base;
    w->k = w->q + rows * p->Df;
    w->kd = w->k + C * p->Df;
    w->v = w->kd + C * p->Df;
    w->vfix = w->v + C * W;
    w->a = w->vfix + C * W;
    w->o = w->a + rows * C;
    w->s = w->o + rows * W;
    w->raw = w->s + p->Df * W;
    w->pw = w->raw + rows * wide;
}

/* pw[n] = lambda^n, n = 0..C+1. */
static void decay_powers(const lin_item *it, int64_t C, float *pw)
{
    for (int64_t n = 0; n <= C + 1; n++)
        pw[n] = (float)exp((double)n * it->log_lambda);
}

/* The state block from state_in / z_in (zero when absent). */
static void state_load(const attn_linear_problem *p, const lin_item *it, float *s)
{
    for (int64_t d = 0; d < p->Df; d++) {
        for (int64_t c = 0; c < it->cols; c++)
            s[d * it->W + c] = p->state_in.t ? *(const float *)attn_cpu_elem(
                                                   &p->state_in, it->b, it->g, d, it->c_lo + c)
                                             : 0.0f;
        if (p->normalize)
            s[d * it->W + it->cols] =
                p->z_in.t ? *(const float *)attn_cpu_elem(&p->z_in, it->b, it->g, d, 0) : 0.0f;
    }
}

static void state_store(const attn_linear_problem *p, const lin_item *it, const float *s)
{
    for (int64_t d = 0; p->state_out.t && d < p->Df; d++) {
        for (int64_t c = 0; c < it->cols; c++)
            *(float *)attn_cpu_elem(&p->state_out, it->b, it->g, d, it->c_lo + c) =
                s[d * it->W + c];
        if (p->z_out.t && it->c_lo == 0)
            *(float *)attn_cpu_elem(&p->z_out, it->b, it->g, d, 0) = s[d * it->W + it->cols];
    }
}

attn_cpu_mat attn_cpu_linear_rows(const attn_operand *o, int64_t b, int64_t h, int64_t r0,
                                  int64_t n, int64_t cols, float *buf)
{
    attn_cpu_mat m;
    if (attn_cpu_plane_mat(o, n, cols, b, h, r0, &m) && m.cs == 1)
        return m;
    attn_cpu_plane_to_f32(o, b, h, r0, n, cols, buf);
    return (attn_cpu_mat){buf, cols, 1};
}

/* Rows read in place ahead of use: rows of one head sit a head stride apart, often one per
 * page, where the hardware prefetchers stop. */
#define PREFETCH_AHEAD 16

/* dst row r (Df floats apart) = phi(row r of m), n rows. */
static void phi_rows(const attn_linear_problem *p, attn_cpu_mat m, int64_t n, float *dst)
{
    const int64_t bytes = p->Dk * (int64_t)sizeof(float);
    for (int64_t r = 0; r < n; r++) {
        if (r + PREFETCH_AHEAD < n)
            for (int64_t at = 0; at < bytes; at += 64)
                __builtin_prefetch((const char *)(m.p + (r + PREFETCH_AHEAD) * m.rs) + at, 0, 3);
        attn_cpu_linear_phi(p->feature, m.p + r * m.rs, p->Dk, dst + r * p->Df);
    }
}

/* K = phi(k) and V (block columns, ones) of positions [c0, c0+L); rows before the shift are
 * zero (no key there). Without the normaliser, f32 values are read in place. */
static void load_keys(const attn_linear_problem *p, const lin_item *it, int64_t c0, int64_t L,
                      lin_ws *w)
{
    const int64_t j0 = c0 - p->shift, skip = j0 < 0 ? (-j0 < L ? -j0 : L) : 0, n = L - skip;
    memset(w->k, 0, sizeof(float) * (size_t)(skip * p->Df));
    memset(w->v, 0, sizeof(float) * (size_t)(skip * it->W));
    w->vp = w->v;
    w->ldv = it->W;
    if (n <= 0)
        return;
    const attn_cpu_mat km = attn_cpu_linear_rows(&p->k, it->b, it->g, j0 + skip, n, p->Dk,
                                                 w->raw);
    phi_rows(p, km, n, w->k + skip * p->Df);
    const attn_cpu_mat vm = attn_cpu_linear_rows(&p->v, it->b, it->g, j0 + skip, n, p->Dv,
                                                 w->raw);
    if (!p->normalize && skip == 0 && vm.p != w->raw) {
        w->vp = vm.p + it->c_lo;
        w->ldv = vm.rs;
        return;
    }
    for (int64_t r = 0; r < n; r++) {
        float *vr = w->v + (skip + r) * it->W;
        memcpy(vr, vm.p + r * vm.rs + it->c_lo, sizeof(float) * (size_t)it->cols);
        if (p->normalize)
            vr[it->cols] = 1.0f;
    }
}

/* Q = scale * phi(q) of positions [c0, c0+L) for every head of the group: row hl*L + r. */
static void load_queries(const attn_linear_problem *p, const lin_item *it, int64_t c0,
                         int64_t L, lin_ws *w)
{
    const float scale = (float)p->scale;
    for (int64_t hl = 0; hl < p->group; hl++) {
        const attn_cpu_mat qm = attn_cpu_linear_rows(&p->q, it->b, it->g * p->group + hl, c0,
                                                     L, p->Dk, w->raw);
        phi_rows(p, qm, L, w->q + hl * L * p->Df);
        for (int64_t r = 0; r < L; r++) {
            float *qr = w->q + (hl * L + r) * p->Df;
            if (scale != 1.0f)
                for (int64_t d = 0; d < p->Df; d++)
                    qr[d] *= scale;
        }
    }
}

/* O = diag(lambda^(r+1)) Q S (causal) or Q S. */
static void read_state(const attn_linear_problem *p, const lin_item *it, int64_t L, lin_ws *w)
{
    const int64_t rows = p->group * L;
    attn_cpu_mat qm = {w->q, p->Df, 1}, sm = {w->s, it->W, 1};
    attn_cpu_sgemm(rows, it->W, p->Df, 1.0f, qm, sm, 0.0f, w->op, w->ldo);
    if (!p->causal || it->log_lambda == 0.0)
        return;
    for (int64_t x = 0; x < rows; x++) {
        const float f = w->pw[x % L + 1];
        for (int64_t c = 0; c < it->W; c++)
            w->op[x * w->ldo + c] *= f;
    }
}

/* A = (Q K^T) .* M, then O += A V (hidden keys' non-finite values kept out). */
ATTN_CPU_HOT
static void intra_chunk(const attn_linear_problem *p, const lin_item *it, int64_t L, lin_ws *w)
{
    const int64_t rows = p->group * L;
    attn_cpu_mat qm = {w->q, p->Df, 1}, kt = {w->k, 1, p->Df};
    attn_cpu_sgemm(rows, L, p->Df, 1.0f, qm, kt, 0.0f, w->a, L);
    for (int64_t x = 0; x < rows; x++) {
        const int64_t r = x % L;
        float *ar = w->a + x * L;
        if (it->log_lambda != 0.0)
            for (int64_t c = 0; c <= r; c++)
                ar[c] *= w->pw[r - c];
        for (int64_t c = r + 1; c < L; c++)
            ar[c] = 0.0f;
    }
    const attn_cpu_tril t = {rows, it->W, L, L, 0};
    attn_cpu_tril_pv(&t, w->a, L, w->vp, w->ldv, 1.0f, w->op, w->ldo, w->vfix);
}

/* S = lambda^L S + (diag(lambda^(L-1-c)) K)^T V. */
static void update_state(const attn_linear_problem *p, const lin_item *it, int64_t L, lin_ws *w)
{
    const float *k = w->k;
    float beta = 1.0f;
    if (p->causal && it->log_lambda != 0.0) {
        for (int64_t c = 0; c < L; c++)
            for (int64_t d = 0; d < p->Df; d++)
                w->kd[c * p->Df + d] = w->k[c * p->Df + d] * w->pw[L - 1 - c];
        k = w->kd;
        beta = (float)exp((double)L * it->log_lambda);
    }
    attn_cpu_mat kt = {k, 1, p->Df}, vm = {w->vp, w->ldv, 1};
    attn_cpu_sgemm(p->Df, it->W, L, 1.0f, kt, vm, beta, w->s, it->W);
}

/* Where the chunk's output rows go: straight into out when nothing is left to do to them (f32,
 * unit-stride rows, no normaliser, one query head per KV head), else into o. */
static void target_rows(const attn_linear_problem *p, const lin_item *it, int64_t c0, int64_t L,
                        lin_ws *w)
{
    const attn_operand *o = &p->out;
    w->op = w->o;
    w->ldo = it->W;
    if (p->normalize || p->group != 1 || o->dtype != ATTN_F32 ||
        (o->stride[3] != 1 && it->cols > 1) || (L > 1 && o->stride[1] < it->cols))
        return;
    w->op = (float *)attn_cpu_elem(o, it->b, c0, it->g, it->c_lo);
    w->ldo = L > 1 ? o->stride[1] : it->W;
}

/* Rows of O into out[b, c0 + r, h, c_lo ...]: divided by the z column with the normaliser
 * (nothing to do when they went to out directly). */
static void store_rows(const attn_linear_problem *p, const lin_item *it, int64_t c0, int64_t L,
                       lin_ws *w)
{
    const attn_operand *o = &p->out;
    if (w->op != w->o)
        return;
    const float eps = (float)p->eps;
    for (int64_t x = 0; x < p->group * L; x++) {
        float *row = w->o + x * it->W;
        if (p->normalize) {
            const float den = row[it->cols] + eps;
            for (int64_t c = 0; c < it->cols; c++)
                row[c] = row[c] / den;
        }
        void *dst = (void *)attn_cpu_elem(o, it->b, c0 + x % L, it->g * p->group + x / L,
                                          it->c_lo);
        if (o->stride[3] == 1 || it->cols == 1)
            attn_cpu_row_from_f32(row, it->cols, o->dtype, dst);
        else
            for (int64_t c = 0; c < it->cols; c++)
                attn_convert_from_f32(row + c, 1, o->dtype,
                                      (char *)dst + c * o->stride[3] *
                                                        (int64_t)attn_dtype_size(o->dtype));
    }
}

static void run_item(const attn_linear_problem *p, int64_t C, const lin_item *it, lin_ws *w)
{
    decay_powers(it, C, w->pw);
    state_load(p, it, w->s);
    for (int64_t c0 = 0; c0 < p->S; c0 += C) {
        const int64_t L = p->S - c0 < C ? p->S - c0 : C;
        load_keys(p, it, c0, L, w);
        if (p->causal) {
            target_rows(p, it, c0, L, w);
            load_queries(p, it, c0, L, w);
            read_state(p, it, L, w);
            intra_chunk(p, it, L, w);
            store_rows(p, it, c0, L, w);
        }
        update_state(p, it, L, w);
    }
    for (int64_t c0 = 0; !p->causal && c0 < p->S; c0 += C) {
        const int64_t L = p->S - c0 < C ? p->S - c0 : C;
        target_rows(p, it, c0, L, w);
        load_queries(p, it, c0, L, w);
        read_state(p, it, L, w);
        store_rows(p, it, c0, L, w);
    }
    state_store(p, it, w->s);
}

static lin_item item_of(const attn_linear_problem *p, int64_t nvb, int64_t x)
{
    lin_item it;
    const int64_t blk = x % nvb, per = (p->Dv + nvb - 1) / nvb;
    it.b = x / nvb / p->Hkv;
    it.g = x / nvb % p->Hkv;
    it.c_lo = blk * per;
    it.cols = p->Dv - it.c_lo < per ? p->Dv - it.c_lo : per;
    it.W = it.cols + (p->normalize ? 1 : 0);
    it.log_lambda = p->log_decay ? p->log_decay[it.g] : 0.0;
    return it;
}

attn_status attn_cpu_linear_chunked(const attn_linear_problem *p, int threads, int64_t chunk)
{
    const int64_t nvb = attn_cpu_linear_col_blocks(p, threads);
    const int64_t items = p->B * p->Hkv * nvb, C = chunk < p->S ? chunk : (p->S > 0 ? p->S : 1);
    const int64_t per = ws_floats(p, C, (p->Dv + nvb - 1) / nvb + 1);
    const int nt = items < threads ? (int)items : threads;
    float *ws = malloc(sizeof(float) * (size_t)per * (size_t)(nt > 0 ? nt : 1));
    if (!ws)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %.3g bytes of linear "
                         "attention scratch", 4.0 * (double)per * nt);
#pragma omp parallel for num_threads(nt > 0 ? nt : 1) schedule(dynamic, 1)
    for (int64_t x = 0; x < items; x++) {
        const lin_item it = item_of(p, nvb, x);
        lin_ws w;
        ws_carve(p, C, it.W, ws + (int64_t)omp_get_thread_num() * per, &w);
        run_item(p, C, &it, &w);
    }
    free(ws);
    return ATTN_OK;
}
