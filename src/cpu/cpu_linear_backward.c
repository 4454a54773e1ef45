/* cpu_linear_backward.c - the chunked backward of linear attention on the cpu backend
 * (Lightning Attention / fla style, BLIS products). The normaliser is a value column of ones
 * (W = Dv + 1 columns: V~ = [V, 1], the state S~ = [S, z]), so that with dN~ = [dO / den,
 * -(dO . out) / den] per row (dN~ = dO without it) the gradients are those of the plain
 * product N~_i = F_i S~_i, F = scale phi(q). Per work item (batch, KV head), chunks of C
 * positions, G query heads stacked (G*L rows), M[r][c] = lambda^(r-c) (c <= r) else 0:
 *
 *   forward sweep (S~ carried as the forward does):
 *     O~ = diag(lambda^(r+1)) F S~ + ((F K^T) .* M) V~    -> den, dN~ (den, dden kept per row)
 *     dF = ((dN~ V~^T) .* M) K + diag(lambda^(r+1)) dN~ S~^T        -> dq = scale J^T dF
 *   reverse sweep, D = dL/dS~ after the chunk (from d_state_out, d_z_out):
 *     dV~ = ((F K^T) .* M)^T dN~ + diag(lambda^(L-1-c)) K D
 *     dK  = ((dN~ V~^T) .* M)^T F + diag(lambda^(L-1-c)) V~ D^T    -> dk = J^T dK
 *     D   = lambda^L D + (diag(lambda^(r+1)) F)^T dN~;   after chunk 0, D = dL/dS~0
 *
 * Non-causal: the whole state first, then dF = dN~ S~^T and D = dS~_T + F^T dN~ over every
 * row, then dV~ = K D and dK = V~ D^T. Position p holds key p - shift (none before the shift);
 * keys past T - 1 - shift are never seen (zero gradients). Each item owns its rows of dq, dk,
 * dv and its state gradients, and every product runs on one thread: the same bits for any
 * thread count. */
#include "cpu_linear.h"

#include "attn_half.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Scratch of one thread (floats), R = G*C rows: raw and featured queries qraw [R x Dk], f
 * [R x Df]; raw, featured and decayed keys [C x Dk], [C x Df] x2; V~ [C x W]; O~ (or a
 * scaled copy) and dN~ [R x W]; scores and their gradients [R x C] x2; dF [R x Df]; dK
 * [C x Df], dV~ [C x W]; S~ and D [Df x W]; a fix-up copy [C x max(W, Df)]; a row [2 Df];
 * decay powers [C + 2]; den and dden of every row of the item [G*S] x2; the transposed
 * products' fix-up copy [R x max(W, Df)]. */
typedef struct lb_ws {
    float *qraw, *f, *kraw, *k, *kd, *v, *o, *dn, *a, *dp, *df, *dk, *dv, *s, *d, *fix, *row,
        *pw, *den, *dden, *tfix;
} lb_ws;

typedef struct lb_item {
    int64_t b, g, C, W;
    double log_lambda;
} lb_item;

/* a += x * y with overflow tracking. */
static int mac(int64_t *a, int64_t x, int64_t y)
{
    int64_t t;
    return __builtin_mul_overflow(x, y, &t) || __builtin_add_overflow(*a, t, a);
}

int attn_cpu_linear_backward_floats(const attn_linear_problem *p, int64_t chunk, int64_t *n)
{
    const int64_t C = chunk < p->S ? chunk : (p->S > 0 ? p->S : 1);
    const int64_t W = p->Dv + (p->normalize ? 1 : 0), wide = W > p->Df ? W : p->Df;
    int64_t R, v = 2 * p->Df + C + 2;
    if (__builtin_mul_overflow(p->group, C, &R))
        return 0;
    const int64_t sizes[][2] = {{R, p->Dk}, {R, p->Df},  {C, p->Dk}, {C, 2 * p->Df}, {C, W},
                                {R, 2 * W}, {R, 2 * C},  {R, p->Df}, {C, p->Df},     {C, W},
                                {2 * p->Df, W}, {C, wide}, {2 * p->group, p->S}, {R, wide}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (mac(&v, sizes[i][0], sizes[i][1]))
            return 0;
    *n = v;
    return 1;
}

static void ws_carve(const attn_linear_problem *p, int64_t C, float *m, lb_ws *w)
{
    const int64_t W = p->Dv + (p->normalize ? 1 : 0), wide = W > p->Df ? W : p->Df;
    const int64_t R = p->group * C;
    float **parts[] = {&w->qraw, &w->f, &w->kraw, &w->k,  &w->kd, &w->v,   &w->o,
                       &w->dn,   &w->a, &w->dp,   &w->df, &w->dk, &w->dv,  &w->s,
                       &w->d,    &w->fix, &w->row, &w->pw, &w->den, &w->dden, &w->tfix};
    const int64_t n[] = {R * p->Dk, R * p->Df, C * p->Dk, C * p->Df, C * p->Df, C * W,
                         R * W,     R * W,     R * C,     R * C,     R * p->Df, C * p->Df,
                         C * W,     p->Df * W, p->Df * W, C * wide,  2 * p->Df, C + 2,
                         p->group * p->S, p->group * p->S, R * wide};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
        *parts[i] = m;
        m += n[i];
    }
}

/* ---- loads and stores ----------------------------------------------------------------------- */

/* Raw keys, K = phi(k) and V~ of positions [c0, c0+L); rows before the shift are zero. */
static void load_keys(const attn_linear_problem *p, const lb_item *it, int64_t c0, int64_t L,
                      lb_ws *w)
{
    const int64_t j0 = c0 - p->shift, skip = j0 < 0 ? (-j0 < L ? -j0 : L) : 0, n = L - skip;
    memset(w->kraw, 0, sizeof(float) * (size_t)(skip * p->Dk));
    memset(w->k, 0, sizeof(float) * (size_t)(skip * p->Df));
    memset(w->v, 0, sizeof(float) * (size_t)(skip * it->W));
    if (n <= 0)
        return;
    attn_cpu_plane_to_f32(&p->k, it->b, it->g, j0 + skip, n, p->Dk, w->kraw + skip * p->Dk);
    for (int64_t r = skip; r < L; r++)
        attn_cpu_linear_phi(p->feature, w->kraw + r * p->Dk, p->Dk, w->k + r * p->Df);
    if (it->W == p->Dv) {
        attn_cpu_plane_to_f32(&p->v, it->b, it->g, j0 + skip, n, p->Dv, w->v + skip * it->W);
        return;
    }
    attn_cpu_plane_to_f32(&p->v, it->b, it->g, j0 + skip, n, p->Dv, w->fix);
    for (int64_t r = 0; r < n; r++) {
        float *vr = w->v + (skip + r) * it->W;
        memcpy(vr, w->fix + r * p->Dv, sizeof(float) * (size_t)p->Dv);
        vr[p->Dv] = 1.0f;
    }
}

/* Raw queries and F = scale * phi(q) of positions [c0, c0+L), every head of the group (row
 * hl*L + r). */
static void load_queries(const attn_linear_problem *p, const lb_item *it, int64_t c0,
                         int64_t L, lb_ws *w)
{
    const float scale = (float)p->scale;
    for (int64_t hl = 0; hl < p->group; hl++)
        attn_cpu_plane_to_f32(&p->q, it->b, it->g * p->group + hl, c0, L, p->Dk,
                              w->qraw + hl * L * p->Dk);
    for (int64_t x = 0; x < p->group * L; x++) {
        float *fr = w->f + x * p->Df;
        attn_cpu_linear_phi(p->feature, w->qraw + x * p->Dk, p->Dk, fr);
        if (scale != 1.0f)
            for (int64_t d = 0; d < p->Df; d++)
                fr[d] *= scale;
    }
}

/* dO of positions [c0, c0+L) into dN~ (row stride W), through tmp (R x Dv) with the
 * normaliser's extra column. */
static void load_dout(const attn_linear_problem *p, const lb_item *it, int64_t c0, int64_t L,
                      float *tmp, float *dn)
{
    float *dst = it->W == p->Dv ? dn : tmp;
    for (int64_t hl = 0; hl < p->group; hl++)
        attn_cpu_plane_to_f32(&p->dout, it->b, it->g * p->group + hl, c0, L, p->Dv,
                              dst + hl * L * p->Dv);
    for (int64_t x = 0; dst == tmp && x < p->group * L; x++)
        memcpy(dn + x * it->W, tmp + x * p->Dv, sizeof(float) * (size_t)p->Dv);
}

/* n floats into element [i0, i1, i2, 0..n) of o (f32/f16/bf16, any stride). */
static void store_row(const attn_operand *o, int64_t i0, int64_t i1, int64_t i2,
                      const float *src, int64_t n)
{
    char *dst = (char *)attn_cpu_elem(o, i0, i1, i2, 0);
    if (o->stride[3] == 1 || n == 1) {
        attn_cpu_row_from_f32(src, n, o->dtype, dst);
        return;
    }
    const int64_t step = o->stride[3] * (int64_t)attn_dtype_size(o->dtype);
    for (int64_t c = 0; c < n; c++)
        attn_convert_from_f32(src + c, 1, o->dtype, dst + c * step);
}

/* The state S~ (or its gradient D from d_state_out / d_z_out) of the item, zero when absent. */
static void state_load(const attn_linear_problem *p, const lb_item *it, const attn_operand *s,
                       const attn_operand *z, float *dst)
{
    for (int64_t d = 0; d < p->Df; d++) {
        for (int64_t c = 0; c < p->Dv; c++)
            dst[d * it->W + c] =
                s->t ? *(const float *)attn_cpu_elem(s, it->b, it->g, d, c) : 0.0f;
        if (it->W > p->Dv)
            dst[d * it->W + p->Dv] =
                z->t ? *(const float *)attn_cpu_elem(z, it->b, it->g, d, 0) : 0.0f;
    }
}

static void state_store(const attn_linear_problem *p, const lb_item *it, const float *d)
{
    for (int64_t x = 0; x < p->Df; x++) {
        if (p->d_state_in.t)
            store_row(&p->d_state_in, it->b, it->g, x, d + x * it->W, p->Dv);
        if (p->d_z_in.t)
            *(float *)attn_cpu_elem(&p->d_z_in, it->b, it->g, x, 0) = d[x * it->W + p->Dv];
    }
}

/* dq rows (from dF, scale J^T) of positions [c0, c0+L). */
static void store_dq(const attn_linear_problem *p, const lb_item *it, int64_t c0, int64_t L,
                     lb_ws *w)
{
    const float scale = (float)p->scale;
    float *dx = w->row, *tmp = w->row + p->Df;
    for (int64_t x = 0; x < p->group * L; x++) {
        float *dfr = w->df + x * p->Df;
        if (scale != 1.0f)
            for (int64_t d = 0; d < p->Df; d++)
                dfr[d] *= scale;
        attn_cpu_linear_phi_vjp(p->feature, w->qraw + x * p->Dk, p->Dk, dfr, tmp, dx);
        store_row(&p->dq, it->b, c0 + x % L, it->g * p->group + x / L, dx, p->Dk);
    }
}

/* dk (J^T dK) and dv rows of the keys at positions [c0, c0+L) (none before the shift). */
static void store_dkv(const attn_linear_problem *p, const lb_item *it, int64_t c0, int64_t L,
                      lb_ws *w)
{
    float *dx = w->row, *tmp = w->row + p->Df;
    for (int64_t r = c0 < p->shift ? p->shift - c0 : 0; r < L; r++) {
        attn_cpu_linear_phi_vjp(p->feature, w->kraw + r * p->Dk, p->Dk, w->dk + r * p->Df, tmp,
                                dx);
        store_row(&p->dk, it->b, c0 + r - p->shift, it->g, dx, p->Dk);
        store_row(&p->dv, it->b, c0 + r - p->shift, it->g, w->dv + r * it->W, p->Dv);
    }
}

/* Keys T - shift .. T - 1 see no query: zero gradients. */
static void zero_unseen_keys(const attn_linear_problem *p, const lb_item *it, lb_ws *w)
{
    const int64_t wide = p->Dk > p->Dv ? p->Dk : p->Dv;
    memset(w->fix, 0, sizeof(float) * (size_t)wide);
    for (int64_t j = p->S - p->shift > 0 ? p->S - p->shift : 0; j < p->S; j++) {
        store_row(&p->dk, it->b, j, it->g, w->fix, p->Dk);
        store_row(&p->dv, it->b, j, it->g, w->fix, p->Dv);
    }
}

/* ---- the normaliser ------------------------------------------------------------------------- */

/* From O~ (in o) and dO (in dn): dN~ in place of dO; den and dden of the rows kept at row0
 * (rows of head hl at hl*S + position). */
static void normalise_rows(const attn_linear_problem *p, const lb_item *it, int64_t c0,
                           int64_t L, lb_ws *w)
{
    const float eps = (float)p->eps;
    for (int64_t x = 0; x < p->group * L; x++) {
        const float *o = w->o + x * it->W;
        float *dn = w->dn + x * it->W;
        const float den = o[p->Dv] + eps;
        float dot = 0.0f;
        for (int64_t c = 0; c < p->Dv; c++) {
            dot += dn[c] * (o[c] / den);
            dn[c] = dn[c] / den;
        }
        dn[p->Dv] = -dot / den;
        const int64_t at = x / L * p->S + c0 + x % L;
        w->den[at] = den;
        w->dden[at] = dn[p->Dv];
    }
}

/* dN~ of positions [c0, c0+L) again from dO and the kept den, dden. */
static void reload_dn(const attn_linear_problem *p, const lb_item *it, int64_t c0, int64_t L,
                      lb_ws *w)
{
    load_dout(p, it, c0, L, w->o, w->dn);
    if (it->W == p->Dv)
        return;
    for (int64_t x = 0; x < p->group * L; x++) {
        float *dn = w->dn + x * it->W;
        const int64_t at = x / L * p->S + c0 + x % L;
        for (int64_t c = 0; c < p->Dv; c++)
            dn[c] = dn[c] / w->den[at];
        dn[p->Dv] = w->dden[at];
    }
}

/* ---- products ------------------------------------------------------------------------------- */

static int decays(const lb_item *it)
{
    return it->log_lambda != 0.0;
}

/* pw[n] = lambda^n, n = 0..C+1 (exp per power, never repeated products). */
static void decay_powers(const lb_item *it, float *pw)
{
    for (int64_t n = 0; n <= it->C + 1; n++)
        pw[n] = (float)exp((double)n * it->log_lambda);
}

/* m [rows x L] .* M (rows of head blocks of L). */
static void apply_mask(const lb_item *it, int64_t rows, int64_t L, const float *pw, float *m)
{
    for (int64_t x = 0; x < rows; x++) {
        const int64_t r = x % L;
        float *mr = m + x * L;
        if (decays(it))
            for (int64_t c = 0; c <= r; c++)
                mr[c] *= pw[r - c];
        for (int64_t c = r + 1; c < L; c++)
            mr[c] = 0.0f;
    }
}

/* dst rows = src rows times lambda^(x % L + off) (off 1: queries; keys use L-1-r). */
static void scale_rows(int64_t rows, int64_t cols, int64_t L, const float *pw, int keys,
                       const float *src, int64_t lds, float *dst)
{
    for (int64_t x = 0; x < rows; x++) {
        const float f = keys ? pw[L - 1 - x] : pw[x % L + 1];
        for (int64_t c = 0; c < cols; c++)
            dst[x * cols + c] = src[x * lds + c] * f;
    }
}

/* A = (F K^T) .* M and dP = (dN~ V~^T) .* M of the chunk. */
static void scores(const attn_linear_problem *p, const lb_item *it, int64_t L, lb_ws *w)
{
    const int64_t rows = p->group * L;
    attn_cpu_sgemm(rows, L, p->Df, 1.0f, (attn_cpu_mat){w->f, p->Df, 1},
                   (attn_cpu_mat){w->k, 1, p->Df}, 0.0f, w->a, L);
    apply_mask(it, rows, L, w->pw, w->a);
    attn_cpu_sgemm(rows, L, it->W, 1.0f, (attn_cpu_mat){w->dn, it->W, 1},
                   (attn_cpu_mat){w->v, 1, it->W}, 0.0f, w->dp, L);
    apply_mask(it, rows, L, w->pw, w->dp);
}

/* O~ = diag(lambda^(r+1)) F S~ + A V~ (A computed here), then dN~ and the kept den, dden. */
static void chunk_output(const attn_linear_problem *p, const lb_item *it, int64_t c0,
                         int64_t L, lb_ws *w)
{
    const int64_t rows = p->group * L;
    attn_cpu_sgemm(rows, it->W, p->Df, 1.0f, (attn_cpu_mat){w->f, p->Df, 1},
                   (attn_cpu_mat){w->s, it->W, 1}, 0.0f, w->o, it->W);
    if (p->causal && decays(it))
        for (int64_t x = 0; x < rows; x++)
            for (int64_t c = 0; c < it->W; c++)
                w->o[x * it->W + c] *= w->pw[x % L + 1];
    if (p->causal) {
        attn_cpu_sgemm(rows, L, p->Df, 1.0f, (attn_cpu_mat){w->f, p->Df, 1},
                       (attn_cpu_mat){w->k, 1, p->Df}, 0.0f, w->a, L);
        apply_mask(it, rows, L, w->pw, w->a);
        const attn_cpu_tril t = {rows, it->W, L, L, 0};
        attn_cpu_tril_pv(&t, w->a, L, w->v, it->W, 1.0f, w->o, it->W, w->fix);
    }
    if (it->W > p->Dv)
        normalise_rows(p, it, c0, L, w);
}

/* dF = dP K + diag(lambda^(r+1)) dN~ S~^T (causal), dN~ S~^T (non-causal). */
static void query_grad(const attn_linear_problem *p, const lb_item *it, int64_t L, lb_ws *w)
{
    const int64_t rows = p->group * L;
    const float *dn = w->dn;
    float beta = 0.0f;
    if (p->causal) {
        attn_cpu_sgemm(rows, L, it->W, 1.0f, (attn_cpu_mat){w->dn, it->W, 1},
                       (attn_cpu_mat){w->v, 1, it->W}, 0.0f, w->dp, L);
        apply_mask(it, rows, L, w->pw, w->dp);
        const attn_cpu_tril t = {rows, p->Df, L, L, 0};
        attn_cpu_tril_pv(&t, w->dp, L, w->k, p->Df, 0.0f, w->df, p->Df, w->fix);
        beta = 1.0f;
        if (decays(it)) {
            scale_rows(rows, it->W, L, w->pw, 0, w->dn, it->W, w->o);
            dn = w->o;
        }
    }
    attn_cpu_sgemm(rows, p->Df, it->W, 1.0f, (attn_cpu_mat){dn, it->W, 1},
                   (attn_cpu_mat){w->s, 1, it->W}, beta, w->df, p->Df);
}

/* S~ = lambda^L S~ + (diag(lambda^(L-1-c)) K)^T V~ (causal), S~ + K^T V~ (non-causal). */
static void update_state(const attn_linear_problem *p, const lb_item *it, int64_t L, lb_ws *w)
{
    const float *k = w->k;
    float beta = 1.0f;
    if (p->causal && decays(it)) {
        scale_rows(L, p->Df, L, w->pw, 1, w->k, p->Df, w->kd);
        k = w->kd;
        beta = (float)exp((double)L * it->log_lambda);
    }
    attn_cpu_sgemm(p->Df, it->W, L, 1.0f, (attn_cpu_mat){k, 1, p->Df},
                   (attn_cpu_mat){w->v, it->W, 1}, beta, w->s, it->W);
}

/* dV~ = A^T dN~ + Kd D and dK = dP^T F + diag(lambda^(L-1-c)) V~ D^T (causal: A, dP of the
 * chunk), or K D and V~ D^T (non-causal). Only dV's first Dv columns are needed. */
static void key_grads(const attn_linear_problem *p, const lb_item *it, int64_t L, lb_ws *w)
{
    const int64_t rows = p->group * L, W = it->W;
    const float *kd = w->k, *vd = w->v;
    float beta = 0.0f;
    if (p->causal) {
        /* masked transposed products: a non-finite query row reaches only its keys */
        const attn_cpu_tril tv = {rows, p->Dv, L, L, 0}, tk = {rows, p->Df, L, L, 0};
        attn_cpu_tril_tpv(&tv, w->a, L, w->dn, W, 0.0f, w->dv, W, w->tfix);
        attn_cpu_tril_tpv(&tk, w->dp, L, w->f, p->Df, 0.0f, w->dk, p->Df, w->tfix);
        beta = 1.0f;
        if (decays(it)) {
            scale_rows(L, p->Df, L, w->pw, 1, w->k, p->Df, w->kd);
            scale_rows(L, W, L, w->pw, 1, w->v, W, w->fix);
            kd = w->kd;
            vd = w->fix;
        }
    }
    attn_cpu_sgemm(L, p->Dv, p->Df, 1.0f, (attn_cpu_mat){kd, p->Df, 1},
                   (attn_cpu_mat){w->d, W, 1}, beta, w->dv, W);
    attn_cpu_sgemm(L, p->Df, W, 1.0f, (attn_cpu_mat){vd, W, 1}, (attn_cpu_mat){w->d, 1, W},
                   beta, w->dk, p->Df);
}

/* D = lambda^L D + (diag(lambda^(r+1)) F)^T dN~ (causal), D + F^T dN~ (non-causal). */
static void state_grad(const attn_linear_problem *p, const lb_item *it, int64_t L, lb_ws *w)
{
    const int64_t rows = p->group * L;
    const float *f = w->f;
    float beta = 1.0f;
    if (p->causal && decays(it)) {
        scale_rows(rows, p->Df, L, w->pw, 0, w->f, p->Df, w->df);
        f = w->df;
        beta = (float)exp((double)L * it->log_lambda);
    }
    attn_cpu_sgemm(p->Df, it->W, rows, 1.0f, (attn_cpu_mat){f, 1, p->Df},
                   (attn_cpu_mat){w->dn, it->W, 1}, beta, w->d, it->W);
}

/* ---- one item ------------------------------------------------------------------------------- */

static int64_t chunk_len(const attn_linear_problem *p, const lb_item *it, int64_t c0)
{
    return p->S - c0 < it->C ? p->S - c0 : it->C;
}

/* Causal: queries read the state of the chunks before theirs, so the forward sweep does dq
 * and the reverse sweep dk, dv and D. */
static void run_causal(const attn_linear_problem *p, const lb_item *it, lb_ws *w)
{
    for (int64_t c0 = 0; c0 < p->S; c0 += it->C) {
        const int64_t L = chunk_len(p, it, c0);
        load_keys(p, it, c0, L, w);
        load_queries(p, it, c0, L, w);
        load_dout(p, it, c0, L, w->o, w->dn);
        chunk_output(p, it, c0, L, w);
        query_grad(p, it, L, w);
        store_dq(p, it, c0, L, w);
        update_state(p, it, L, w);
    }
    const int64_t last = p->S > 0 ? (p->S - 1) / it->C * it->C : 0;
    for (int64_t c0 = last; c0 >= 0 && p->S > 0; c0 -= it->C) {
        const int64_t L = chunk_len(p, it, c0);
        load_keys(p, it, c0, L, w);
        load_queries(p, it, c0, L, w);
        reload_dn(p, it, c0, L, w);
        scores(p, it, L, w);
        key_grads(p, it, L, w);
        state_grad(p, it, L, w);
        store_dkv(p, it, c0, L, w);
    }
}

/* Non-causal: every query reads the whole state. */
static void run_full(const attn_linear_problem *p, const lb_item *it, lb_ws *w)
{
    for (int64_t c0 = 0; c0 < p->S; c0 += it->C) {
        const int64_t L = chunk_len(p, it, c0);
        load_keys(p, it, c0, L, w);
        update_state(p, it, L, w);
    }
    for (int64_t c0 = 0; c0 < p->S; c0 += it->C) {
        const int64_t L = chunk_len(p, it, c0);
        load_queries(p, it, c0, L, w);
        load_dout(p, it, c0, L, w->o, w->dn);
        chunk_output(p, it, c0, L, w);
        query_grad(p, it, L, w);
        store_dq(p, it, c0, L, w);
        state_grad(p, it, L, w);
    }
    for (int64_t c0 = 0; c0 < p->S; c0 += it->C) {
        const int64_t L = chunk_len(p, it, c0);
        load_keys(p, it, c0, L, w);
        key_grads(p, it, L, w);
        store_dkv(p, it, c0, L, w);
    }
}

static void run_item(const attn_linear_problem *p, const lb_item *it, lb_ws *w)
{
    decay_powers(it, w->pw);
    state_load(p, it, &p->state_in, &p->z_in, w->s);
    state_load(p, it, &p->d_state_out, &p->d_z_out, w->d);
    if (p->causal)
        run_causal(p, it, w);
    else
        run_full(p, it, w);
    zero_unseen_keys(p, it, w);
    state_store(p, it, w->d);
}

attn_status attn_cpu_linear_backward(const attn_linear_problem *p, int threads, int64_t chunk)
{
    const int64_t items = p->B * p->Hkv, C = chunk < p->S ? chunk : (p->S > 0 ? p->S : 1);
    int64_t per = 0;
    const int nt = items < threads ? (int)items : threads;
    float *ws = NULL;
    if (attn_cpu_linear_backward_floats(p, C, &per) && per < ((int64_t)1 << 58) / (nt + 1))
        ws = malloc(sizeof(float) * (size_t)per * (size_t)(nt > 0 ? nt : 1));
    if (!ws)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %.3g bytes of linear "
                         "attention backward scratch", 4.0 * (double)per * nt);
#pragma omp parallel for num_threads(nt > 0 ? nt : 1) schedule(dynamic, 1)
    for (int64_t x = 0; x < items; x++) {
        const lb_item it = {x / p->Hkv, x % p->Hkv, C, p->Dv + (p->normalize ? 1 : 0),
                            p->log_decay ? p->log_decay[x % p->Hkv] : 0.0};
        lb_ws w;
        ws_carve(p, C, ws + (int64_t)omp_get_thread_num() * per, &w);
        run_item(p, &it, &w);
    }
    free(ws);
    return ATTN_OK;
}
