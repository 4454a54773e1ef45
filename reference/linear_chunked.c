/* linear_chunked.c - kernel linear attention in its chunked form (Lightning Attention-2's
 * intra/inter-chunk algorithm, algos.md A.8), f64, written as loops: positions are cut into
 * chunks of C; inside a chunk every query takes the keys of the chunk it sees through a masked
 * product weighed by lambda^(distance), and the keys of all earlier chunks through the state
 * carried across chunks, decayed by lambda^(r+1) for in-chunk row r:
 *
 *   out_r   = lambda^(r+1) f_r S + sum_{c <= r} lambda^(r-c) (f_r . phi(k_c)) v_c
 *   S_next  = lambda^L S + sum_c lambda^(L-1-c) phi(k_c)^T v_c        (L = chunk length)
 *
 * Positions hold shifted keys (position p holds key p - shift, nothing before shift), so the
 * same loops serve rattention's residual branch. The normaliser is one more value column of
 * ones (its state column is z). Run on the magnitudes of every operand, the same loops give
 * the condition scales (all weights are positive). The fast backends implement this form;
 * the tests hold it equal to linear.c. docs/ops/linear.md. */
#include "linear_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One (batch, KV head): phi(k) [S][Df], values with the ones column [S][W] (W = Dv + 1), the
 * state [Df][W] (in, then out), the unnormalised rows [G][S][W]; mag: all magnitudes. */
typedef struct chunk_group {
    int64_t b, g, W;
    int mag;
    double *k, *v, *state, *rows, *f;
} chunk_group;

static void load_group(const attn_linear_problem *p, chunk_group *cg)
{
    double *tmp = cg->f + p->Df; /* f has room for Df + Dk */
    for (int64_t j = 0; j < p->S; j++) {
        double *kj = cg->k + j * p->Df;
        attn_ref_linear_phi_row(p, &p->k, cg->b, j, cg->g, ATTN_REF_F64, tmp, kj);
        for (int64_t c = 0; c < p->Dv; c++)
            cg->v[j * cg->W + c] =
                attn_load_f64(p->v.ptr, p->v.dtype, attn_at(&p->v, cg->b, j, cg->g, c));
        cg->v[j * cg->W + p->Dv] = 1.0;
    }
    for (int64_t d = 0; d < p->Df; d++) {
        for (int64_t c = 0; c < p->Dv; c++)
            cg->state[d * cg->W + c] = attn_ref_linear_state_in(&p->state_in, cg->b, cg->g, d, c);
        cg->state[d * cg->W + p->Dv] = attn_ref_linear_state_in(&p->z_in, cg->b, cg->g, d, 0);
    }
    if (!cg->mag)
        return;
    for (int64_t i = 0; i < p->S * p->Df; i++)
        cg->k[i] = fabs(cg->k[i]);
    for (int64_t i = 0; i < p->S * cg->W; i++)
        cg->v[i] = fabs(cg->v[i]);
    for (int64_t i = 0; i < p->Df * cg->W; i++)
        cg->state[i] = fabs(cg->state[i]);
}

/* f = scale * phi(q[b, i, h]) (or its magnitudes). */
static void query_features(const attn_linear_problem *p, const chunk_group *cg, int64_t i,
                           int64_t h, double *f)
{
    attn_ref_linear_phi_row(p, &p->q, cg->b, i, h, ATTN_REF_F64, f + p->Df, f);
    for (int64_t d = 0; d < p->Df; d++)
        f[d] = cg->mag ? fabs(p->scale * f[d]) : p->scale * f[d];
}

/* row += w * f S */
static void add_state_read(const attn_linear_problem *p, const chunk_group *cg, const double *f,
                           double w, double *row)
{
    for (int64_t d = 0; d < p->Df; d++)
        for (int64_t c = 0; c < cg->W; c++)
            row[c] += w * f[d] * cg->state[d * cg->W + c];
}

/* Row r of the chunk starting at position c0 (query position c0 + r, head h). */
static void chunk_row(const attn_linear_problem *p, chunk_group *cg, int64_t c0, int64_t r,
                      int64_t h)
{
    const int64_t i = c0 + r, hl = h - cg->g * p->group;
    double *row = cg->rows + (hl * p->S + i) * cg->W, *f = cg->f;
    query_features(p, cg, i, h, f);
    memset(row, 0, sizeof(double) * (size_t)cg->W);
    add_state_read(p, cg, f, attn_ref_linear_decay_pow(p, cg->g, (double)(r + 1)), row);
    for (int64_t c = 0; c <= r; c++) {
        const int64_t j = c0 + c - p->shift; /* the key at position c0 + c */
        if (j < 0)
            continue;
        double s = 0.0;
        for (int64_t d = 0; d < p->Df; d++)
            s += f[d] * cg->k[j * p->Df + d];
        s *= attn_ref_linear_decay_pow(p, cg->g, (double)(r - c));
        for (int64_t x = 0; x < cg->W; x++)
            row[x] += s * cg->v[j * cg->W + x];
    }
}

/* S = lambda^L S + sum over the chunk's keys of lambda^(L-1-c) phi(k)^T v. */
static void chunk_update(const attn_linear_problem *p, chunk_group *cg, int64_t c0, int64_t len)
{
    const double wl = attn_ref_linear_decay_pow(p, cg->g, (double)len);
    for (int64_t e = 0; e < p->Df * cg->W; e++)
        cg->state[e] *= wl;
    for (int64_t c = 0; c < len; c++) {
        const int64_t j = c0 + c - p->shift;
        if (j < 0)
            continue;
        const double w = attn_ref_linear_decay_pow(p, cg->g, (double)(len - 1 - c));
        for (int64_t d = 0; d < p->Df; d++)
            for (int64_t x = 0; x < cg->W; x++)
                cg->state[d * cg->W + x] += w * cg->k[j * p->Df + d] * cg->v[j * cg->W + x];
    }
}

/* The whole (b, g): causal chunks in order; non-causal: the full state first, then reads. */
static void run_group(const attn_linear_problem *p, int64_t chunk, chunk_group *cg)
{
    load_group(p, cg);
    for (int64_t c0 = 0; c0 < p->S; c0 += chunk) {
        const int64_t len = p->S - c0 < chunk ? p->S - c0 : chunk;
        if (p->causal)
            for (int64_t h = cg->g * p->group; h < (cg->g + 1) * p->group; h++)
                for (int64_t r = 0; r < len; r++)
                    chunk_row(p, cg, c0, r, h);
        chunk_update(p, cg, c0, len);
    }
    if (p->causal)
        return;
    for (int64_t h = cg->g * p->group; h < (cg->g + 1) * p->group; h++)
        for (int64_t i = 0; i < p->S; i++) {
            double *row = cg->rows + ((h - cg->g * p->group) * p->S + i) * cg->W;
            query_features(p, cg, i, h, cg->f);
            memset(row, 0, sizeof(double) * (size_t)cg->W);
            add_state_read(p, cg, cg->f, 1.0, row);
        }
}

/* Rows, state and z of one group into the f64 results (plain values, or with num = the
 * magnitude rows and val the value group, conditions); NULL destinations are skipped. */
static void store_group(const attn_linear_problem *p, const chunk_group *cg, const double *num,
                        const chunk_group *val, double *out, double *state, double *z)
{
    for (int64_t hl = 0; out && hl < p->group; hl++)
        for (int64_t i = 0; i < p->S; i++) {
            const double *r = cg->rows + (hl * p->S + i) * cg->W;
            const double *rv = val ? val->rows + (hl * p->S + i) * cg->W : r;
            const double den = rv[p->Dv] + p->eps;
            double *o = out + ((cg->b * p->S + i) * p->Hq + cg->g * p->group + hl) * p->Dv;
            for (int64_t c = 0; c < p->Dv; c++) {
                const double x = p->normalize ? rv[c] / den : rv[c];
                /* conditions: (|num| + |out| |den|) / |den + eps| with the normaliser */
                o[c] = !num ? x : p->normalize ? (r[c] + fabs(x) * r[p->Dv]) / fabs(den) : r[c];
            }
        }
    for (int64_t d = 0; d < p->Df; d++) {
        const int64_t at = (cg->b * p->Hkv + cg->g) * p->Df + d;
        if (state)
            memcpy(state + at * p->Dv, cg->state + d * cg->W, sizeof(double) * (size_t)p->Dv);
        if (z)
            z[at] = cg->state[d * cg->W + p->Dv];
    }
}

static attn_status group_alloc(const attn_linear_problem *p, int mag, chunk_group *cg)
{
    cg->W = p->Dv + 1;
    cg->mag = mag;
    cg->k = attn_ref_alloc(p->S, p->Df);
    cg->v = attn_ref_alloc(p->S, cg->W);
    cg->state = attn_ref_alloc(p->Df, cg->W);
    cg->rows = attn_ref_alloc(p->group * p->S, cg->W);
    cg->f = attn_ref_alloc(p->Df + p->Dk, 1);
    if (!cg->k || !cg->v || !cg->state || !cg->rows || !cg->f)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate chunked scratch");
    return ATTN_OK;
}

static void group_free(chunk_group *cg)
{
    free(cg->k);
    free(cg->v);
    free(cg->state);
    free(cg->rows);
    free(cg->f);
}

attn_status attn_ref_linear_chunked(const attn_linear_problem *p, int64_t chunk,
                                    attn_linear_ref_out *o)
{
    const int conds = o->out_cond || o->state_cond || o->z_cond;
    chunk_group val = {0}, mag = {0};
    attn_status st = group_alloc(p, 0, &val);
    if (st == ATTN_OK && conds)
        st = group_alloc(p, 1, &mag);
    if (chunk < 1)
        chunk = 1;
    for (int64_t b = 0; st == ATTN_OK && b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++) {
            val.b = mag.b = b;
            val.g = mag.g = g;
            run_group(p, chunk, &val);
            store_group(p, &val, NULL, NULL, o->out, o->state, o->z);
            if (!conds)
                continue;
            run_group(p, chunk, &mag);
            store_group(p, &mag, mag.rows, &val, o->out_cond, o->state_cond, o->z_cond);
        }
    group_free(&val);
    group_free(&mag);
    return st == ATTN_OK ? attn_ok() : st;
}
