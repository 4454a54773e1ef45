/* cpu_rattention_backward.c - RATTENTION's backward on the cpu backend, composed from the
 * forward's steps and the backward kernels of the two ops it is made of, over f32 scratch:
 *   1. recompute (cpu_rattention_fwd.c's steps): q and k rotated (q~, k~), the window branch
 *      a = SDPA(q~, k~, v) with its lse, the residual branch b;
 *   2. both GroupRMSNorms' backward per (token, head): da, and db in b's room; the gains'
 *      gradients summed over fixed blocks of rows, then the blocks in order;
 *   3. the window: SDPA's backward (cpu_sdpa_backward.c) on q~, k~, v, out a, lse, dout da ->
 *      dq~, dk~, dv_swa;
 *   4. the residual branch: linear attention's backward (cpu_linear_backward.c) on the
 *      forward's sub-problem (shift w + 1, paired map, no normaliser, scale 1, state_in) with
 *      dout db and d_state_out -> dq, dk, dv into scratch and d_state_in in place (the last
 *      step that can fail, so a failed call writes nothing); without state_in only its rows
 *      past the shift, as the forward does;
 *   5. per position dq = RoPE(dq~, -pos) + dq_rla (a rotation's transpose rotates by minus its
 *      angle), dk likewise, dv = dv_swa + dv_rla, each rounded once into its tensor; the gains.
 * Every step splits its work by the shape alone, so the bits do not depend on the thread
 * count. w = -1 skips the window's steps (its gain's gradient is 0). */
#include "cpu_rattention.h"

#include "cpu_linear.h"
#include "cpu_math.h"
#include "cpu_rope.h"
#include "cpu_sdpa.h"

#include "attn_half.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Rows (b, i) per item of the norms' backward (all heads of each row, in memory order): a
 * constant, so that the gains' partial sums are the same whatever the thread count. */
#define NORM_ROWS 256

/* The scratch of a call. qr and kr hold q~ and k~, then the residual branch's dq and dk (the
 * window's backward has read them by then). gains: both gains [2][Hq][Dv] (1 where absent);
 * dg: their gradients' partials [block of NORM_ROWS rows][Hq][2][Dv]. Per thread: a dout row
 * (step 2), a cos/sin table and a row (step 5). */
typedef struct bwd_bufs {
    int window;                 /* the window's steps run */
    int64_t nblk, per;          /* blocks of NORM_ROWS rows, floats per thread */
    float *qr, *kr, *a, *da, *lse, *dqs, *dks, *dvs, *rb, *dvr, *thr, *gains;
    double *dg, *freq;
    attn_tensor tq, tk, ta, tda, tlse, tdqs, tdks, tdvs, trb, tdvr;
} bwd_bufs;

static void bufs_free(bwd_bufs *w)
{
    float *f[] = {w->qr, w->kr, w->a, w->da, w->lse, w->dqs, w->dks, w->dvs, w->rb, w->dvr,
                  w->thr, w->gains};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        free(f[i]);
    free(w->dg);
    free(w->freq);
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Floats per thread: a dout row, or a cos/sin table and a row. */
static int64_t per_thread(const attn_rattention_problem *p)
{
    return 2 * (p->Dk / 2) + max64(p->Dk, p->Dv);
}

static int bufs_alloc(const attn_rattention_problem *p, int threads, bwd_bufs *w)
{
    memset(w, 0, sizeof *w);
    const int64_t rows = p->B * p->S, nq = rows * p->Hq, nk = rows * p->Hkv;
    w->window = p->swa && rows > 0;
    w->nblk = (rows + NORM_ROWS - 1) / NORM_ROWS;
    w->per = per_thread(p);
    w->qr = attn_cpu_ratt_alloc(nq, p->Dk);
    w->kr = attn_cpu_ratt_alloc(nk, p->Dk);
    w->rb = attn_cpu_ratt_alloc(nq, p->Dv);
    w->dvr = attn_cpu_ratt_alloc(nk, p->Dv);
    w->thr = attn_cpu_ratt_alloc(w->per, threads);
    w->gains = attn_cpu_ratt_alloc(2 * p->Hq, p->Dv);
    /* 2 Hq Dv doubles per block as 4 Hq Dv floats (malloc's memory suits any type) */
    w->dg = (double *)attn_cpu_ratt_alloc(w->nblk * p->Hq, 4 * p->Dv);
    w->freq = malloc(sizeof(double) * (size_t)(p->Dk / 2 > 0 ? p->Dk / 2 : 1));
    int ok = w->qr && w->kr && w->rb && w->dvr && w->thr && w->gains && w->dg && w->freq;
    if (w->window) {
        w->a = attn_cpu_ratt_alloc(nq, p->Dv);
        w->da = attn_cpu_ratt_alloc(nq, p->Dv);
        w->lse = attn_cpu_ratt_alloc(nq, 1);
        w->dqs = attn_cpu_ratt_alloc(nq, p->Dk);
        w->dks = attn_cpu_ratt_alloc(nk, p->Dk);
        w->dvs = attn_cpu_ratt_alloc(nk, p->Dv);
        ok = ok && w->a && w->da && w->lse && w->dqs && w->dks && w->dvs;
    }
    w->tq = attn_tensor_bshd(w->qr, ATTN_F32, p->B, p->S, p->Hq, p->Dk);
    w->tk = attn_tensor_bshd(w->kr, ATTN_F32, p->B, p->S, p->Hkv, p->Dk);
    w->ta = attn_tensor_bshd(w->a, ATTN_F32, p->B, p->S, p->Hq, p->Dv);
    w->tda = attn_tensor_bshd(w->da, ATTN_F32, p->B, p->S, p->Hq, p->Dv);
    w->tlse = attn_tensor_bshd(w->lse, ATTN_F32, p->B, p->S, p->Hq, 1);
    w->tdqs = attn_tensor_bshd(w->dqs, ATTN_F32, p->B, p->S, p->Hq, p->Dk);
    w->tdks = attn_tensor_bshd(w->dks, ATTN_F32, p->B, p->S, p->Hkv, p->Dk);
    w->tdvs = attn_tensor_bshd(w->dvs, ATTN_F32, p->B, p->S, p->Hkv, p->Dv);
    w->trb = attn_tensor_bshd(w->rb, ATTN_F32, p->B, p->S, p->Hq, p->Dv);
    w->tdvr = attn_tensor_bshd(w->dvr, ATTN_F32, p->B, p->S, p->Hkv, p->Dv);
    return ok;
}

/* GroupRMSNorm's vector-Jacobian product over n values of one (token, head), y = x r g with
 * r = 1/sqrt(mean(x^2) + eps): dx = r g dy - x r^3 (sum g dy x) / n, dg += dy x r. Sums in
 * double with independent lanes (as the forward's), the per-element terms in double, dx
 * rounded once; dx may be x. */
ATTN_CPU_HOT
static void norm_vjp(const float *x, const float *g, const float *dy, int64_t n, double eps,
                     float *dx, double *dg)
{
    double ss[8] = {0}, dot[8] = {0};
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int k = 0; k < 8; k++) {
            const double xc = x[c + k];
            ss[k] += xc * xc;
            dot[k] += (double)g[c + k] * dy[c + k] * xc;
        }
    for (; c < n; c++) {
        ss[0] += (double)x[c] * x[c];
        dot[0] += (double)g[c] * dy[c] * x[c];
    }
    for (int k = 1; k < 8; k++) {
        ss[0] += ss[k];
        dot[0] += dot[k];
    }
    const double r = 1.0 / sqrt(ss[0] / (double)n + eps), m = r * r * r * dot[0] / (double)n;
    for (c = 0; c < n; c++) {
        const double xc = x[c];
        dg[c] += (double)dy[c] * xc * r;
        dx[c] = (float)(r * g[c] * dy[c] - xc * m);
    }
}

/* Gain row of head h into buf (1 where the gain is absent). */
static void gain_row(const attn_operand *o, int64_t h, int64_t dv, float *buf)
{
    if (!attn_cpu_ratt_gamma(o, h, dv, buf))
        for (int64_t c = 0; c < dv; c++)
            buf[c] = 1.0f;
}

/* Step 2: items of NORM_ROWS rows (b, i), every head of a row in turn (memory order), each
 * item with its own partial gains' gradients. */
static void norms_backward(const attn_rattention_problem *p, int threads, bwd_bufs *w)
{
    const int64_t rows = p->B * p->S, dv = p->Dv;
    for (int64_t h = 0; h < p->Hq; h++) {
        gain_row(&p->gamma_swa, h, dv, w->gains + h * dv);
        gain_row(&p->gamma_rla, h, dv, w->gains + (p->Hq + h) * dv);
    }
#pragma omp parallel num_threads(threads)
    {
        float *dy = w->thr + w->per * omp_get_thread_num();
#pragma omp for schedule(static)
        for (int64_t it = 0; it < w->nblk; it++) {
            const int64_t r0 = it * NORM_ROWS, r1 = r0 + NORM_ROWS < rows ? r0 + NORM_ROWS : rows;
            double *dg = w->dg + it * 2 * p->Hq * dv;
            memset(dg, 0, sizeof(double) * (size_t)(2 * p->Hq * dv));
            for (int64_t r = r0; r < r1; r++)
                for (int64_t h = 0; h < p->Hq; h++) {
                    const int64_t at = (r * p->Hq + h) * dv;
                    const float *g = w->gains + h * dv;
                    attn_convert_to_f32_strided(attn_cpu_elem(&p->dout, r / p->S, r % p->S, h,
                                                              0),
                                                p->dout.dtype, dv, p->dout.stride[3], dy);
                    if (w->window)
                        norm_vjp(w->a + at, g, dy, dv, p->eps, w->da + at, dg + 2 * h * dv);
                    norm_vjp(w->rb + at, g + p->Hq * dv, dy, dv, p->eps, w->rb + at,
                             dg + (2 * h + 1) * dv);
                }
        }
    }
}

/* The window's backward problem over the scratch (dmask_add absent). */
static void swa_backward_problem(const attn_rattention_problem *p, const bwd_bufs *w,
                                 attn_sdpa_problem *sp)
{
    attn_cpu_ratt_swa_problem(p, sp);
    sp->backward = 1;
    attn_operand_fill(&sp->q, &w->tq);
    attn_operand_fill(&sp->k, &w->tk);
    attn_operand_fill(&sp->out, &w->ta);
    attn_operand_fill(&sp->lse, &w->tlse);
    attn_operand_fill(&sp->dout, &w->tda);
    attn_operand_fill(&sp->dq, &w->tdqs);
    attn_operand_fill(&sp->dk, &w->tdks);
    attn_operand_fill(&sp->dv, &w->tdvs);
}

/* The residual branch's backward problem: the forward's sub-problem with dout db, its q, k, v
 * gradients into the scratch, the states' gradients those of p. */
static void rla_backward_problem(const attn_rattention_problem *p, const bwd_bufs *w,
                                 attn_linear_problem *lp)
{
    attn_rattention_rla_problem(p, lp);
    lp->backward = 1;
    attn_operand_fill(&lp->dout, &w->trb);
    attn_operand_fill(&lp->dq, &w->tq);
    attn_operand_fill(&lp->dk, &w->tk);
    attn_operand_fill(&lp->dv, &w->tdvr);
    lp->d_state_out = p->d_state_out;
    lp->d_state_in = p->d_state_in;
}

/* Step 4. Without S0 the rows before the shift read nothing (b = 0, no gradient flows from
 * them) and the keys past S - 1 - shift are never read: the rows past the shift run as a plain
 * causal problem over the keys they see (as the forward's residual branch does), the rest of
 * the gradients is zero. With S0 the whole shifted problem runs. */
static attn_status rla_backward(const attn_rattention_problem *p, int threads, int64_t chunk,
                                bwd_bufs *w)
{
    attn_linear_problem lp;
    rla_backward_problem(p, w, &lp);
    const int64_t sh = lp.shift, n = p->S - sh;
    if (lp.state_in.t || sh == 0 || n <= 0)
        return attn_cpu_linear_backward(&lp, threads, chunk);
    attn_tensor t[7];
    attn_linear_problem tail = lp;
    tail.S = n;
    tail.shift = 0;
    tail.q = attn_cpu_ratt_rows(&lp.q, sh, n, &t[0]);
    tail.k = attn_cpu_ratt_rows(&lp.k, 0, n, &t[1]);
    tail.v = attn_cpu_ratt_rows(&lp.v, 0, n, &t[2]);
    tail.dout = attn_cpu_ratt_rows(&lp.dout, sh, n, &t[3]);
    tail.dq = attn_cpu_ratt_rows(&lp.dq, sh, n, &t[4]);
    tail.dk = attn_cpu_ratt_rows(&lp.dk, 0, n, &t[5]);
    tail.dv = attn_cpu_ratt_rows(&lp.dv, 0, n, &t[6]);
    const attn_status st = attn_cpu_linear_backward(&tail, threads, chunk);
    if (st != ATTN_OK)
        return st;
    for (int64_t b = 0; b < p->B; b++) {
        memset(w->qr + b * p->S * p->Hq * p->Dk, 0, sizeof(float) * (size_t)(sh * p->Hq * p->Dk));
        memset(w->kr + (b * p->S + n) * p->Hkv * p->Dk, 0,
               sizeof(float) * (size_t)(sh * p->Hkv * p->Dk));
        memset(w->dvr + (b * p->S + n) * p->Hkv * p->Dv, 0,
               sizeof(float) * (size_t)(sh * p->Hkv * p->Dv));
    }
    return ATTN_OK;
}

/* Every head of gradient o at (b, i): the window's part (rotated back with the table when
 * `rot`, absent when win is NULL) plus the residual branch's, rounded once into o. */
static void finish_heads(const attn_rattention_problem *p, const attn_operand *o, int64_t nh,
                         int64_t d, int64_t b, int64_t i, const float *win, int rot,
                         const float *res, const float *cs, const float *sn, float *row)
{
    for (int64_t h = 0; h < nh; h++) {
        const int64_t at = ((b * p->S + i) * nh + h) * d;
        if (!win) {
            attn_cpu_store_row(o, b, i, h, res + at, d);
            continue;
        }
        if (rot)
            attn_cpu_rope_apply(p->rope, d, d, cs, sn, win + at, row);
        else
            memcpy(row, win + at, sizeof(float) * (size_t)d);
        for (int64_t c = 0; c < d; c++)
            row[c] += res[at + c];
        attn_cpu_store_row(o, b, i, h, row, d);
    }
}

/* Step 5: dq, dk, dv, positions split over the threads (one table per position). */
static void store_grads(const attn_rattention_problem *p, int threads, bwd_bufs *w)
{
    const int64_t np = p->Dk / 2;
    if (w->window)
        attn_cpu_rope_freqs(p->theta, p->Dk, w->freq);
#pragma omp parallel num_threads(threads)
    {
        float *cs = w->thr + w->per * omp_get_thread_num(), *sn = cs + np, *row = sn + np;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < p->S; i++) {
            if (w->window)
                attn_cpu_rope_table(w->freq, np, -(double)(p->offset + i), cs, sn);
            for (int64_t b = 0; b < p->B; b++) {
                finish_heads(p, &p->dq, p->Hq, p->Dk, b, i, w->dqs, 1, w->qr, cs, sn, row);
                finish_heads(p, &p->dk, p->Hkv, p->Dk, b, i, w->dks, 1, w->kr, cs, sn, row);
                finish_heads(p, &p->dv, p->Hkv, p->Dv, b, i, w->dvs, 0, w->dvr, cs, sn, row);
            }
        }
    }
}

/* The gains' gradients: per head the blocks' partials in block order (the second of each
 * head's two rows when `second`). */
static void store_gain(const attn_rattention_problem *p, const attn_operand *o, int second,
                       const bwd_bufs *w)
{
    if (!o->t)
        return;
    for (int64_t h = 0; h < p->Hq; h++) {
        for (int64_t c = 0; c < p->Dv; c++) {
            double acc = 0.0;
            for (int64_t x = 0; x < w->nblk; x++)
                acc += w->dg[((x * p->Hq + h) * 2 + second) * p->Dv + c];
            w->thr[c] = (float)acc;
        }
        attn_cpu_store_row(o, 0, 0, h, w->thr, p->Dv);
    }
}

double attn_cpu_rattention_backward_floats(const attn_rattention_problem *p,
                                           const attn_cpu_state *s, int64_t bwd_chunk)
{
    const double rows = (double)p->B * (double)p->S, th = (double)s->threads;
    const double own =
        rows * ((double)p->Hq * (2.0 * (double)p->Dk + 3.0 * (double)p->Dv + 1.0) +
                (double)p->Hkv * 2.0 * (double)(p->Dk + p->Dv)) +
        (double)p->Hq * (rows / NORM_ROWS + 3.0) * 4.0 * (double)p->Dv +
        th * (double)per_thread(p) + (double)p->Dk;
    attn_linear_problem lp;
    attn_rattention_rla_problem(p, &lp);
    lp.backward = 1;
    int64_t nl;
    if (!attn_cpu_linear_backward_floats(&lp, bwd_chunk, &nl))
        return -1.0;
    double n = own + (double)nl * th;
    if (p->swa) {
        attn_sdpa_problem sp;
        attn_cpu_ratt_swa_problem(p, &sp);
        sp.backward = 1;
        const int64_t ns = attn_cpu_sdpa_backward_scratch(&sp, s->threads);
        if (ns < 0)
            return -1.0;
        n += (double)ns;
    }
    return n;
}

attn_status attn_cpu_rattention_backward(const attn_rattention_problem *p,
                                         const attn_cpu_state *s, int64_t fwd_chunk,
                                         int64_t bwd_chunk)
{
    bwd_bufs w;
    attn_status st = ATTN_OK;
    if (!bufs_alloc(p, s->threads, &w))
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate the rattention backward's "
                       "scratch (B %lld, S %lld, Hq %lld, D %lld/%lld)", (long long)p->B,
                       (long long)p->S, (long long)p->Hq, (long long)p->Dk, (long long)p->Dv);
    if (st == ATTN_OK && w.window)
        st = attn_cpu_ratt_rotate(p, s->threads, w.qr, w.kr);
    if (st == ATTN_OK && w.window)
        st = attn_cpu_ratt_swa(p, s, &w.tq, &w.tk, &w.ta, &w.tlse);
    if (st == ATTN_OK)
        st = attn_cpu_ratt_rla(p, s->threads, fwd_chunk, w.rb);
    if (st == ATTN_OK)
        norms_backward(p, s->threads, &w);
    if (st == ATTN_OK && w.window) {
        attn_sdpa_problem sp;
        swa_backward_problem(p, &w, &sp);
        st = attn_cpu_sdpa_backward(&sp, s->threads);
    }
    if (st == ATTN_OK) /* the last step that can fail: it writes d_state_in */
        st = rla_backward(p, s->threads, bwd_chunk, &w);
    if (st == ATTN_OK) {
        store_grads(p, s->threads, &w);
        store_gain(p, &p->dgamma_swa, 0, &w);
        store_gain(p, &p->dgamma_rla, 1, &w);
    }
    bufs_free(&w);
    return st;
}
