/* cpu_rattention_fwd.c - RATTENTION's forward on the cpu backend, branch by branch over f32
 * scratch, out written last (so an allocation failure leaves every output untouched):
 *   1. RoPE: q and k rotated at their positions into f32 [B, S, H, Dk] (one cos/sin table per
 *      position, shared by every batch and head; cpu_rope.h's rows, the reference's rounding);
 *   2. SWA: the rotated q and k with the caller's v as a causal SDPA problem with window_left
 *      w, run by the SDPA kernels (packed micro-kernel tiles that skip keys outside the band);
 *   3. RLA: attn_rattention_rla_problem() (shift w + 1, the paired map, state_in/state_out) on
 *      linear attention's chunked kernel, its out pointed at f32 scratch, the rows past the
 *      shift as a plain causal problem over the keys they see;
 *   4. per (token, head) the two GroupRMSNorms summed and rounded once into out.
 * w = -1 skips 1 and 2. Steps 1 to 3 are shared with the backward (cpu_rattention_backward.c),
 * which recomputes the branches from the inputs. */
#include "cpu_rattention.h"

#include "cpu_linear.h"
#include "cpu_rope.h"
#include "cpu_sdpa.h"

#include "attn_half.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* The f32 scratch of a call: rotated q and k (SWA only), each branch's output (the residual
 * one in the rotated q's room when it fits: q is dead once the window branch has run; fresh
 * pages cost a fault each), per thread an output row and two gamma rows for the norms. */
typedef struct fwd_bufs {
    float *qr, *kr, *swa, *rla, *nrm;
    attn_tensor tq, tk, tswa;
} fwd_bufs;

static void bufs_free(fwd_bufs *w)
{
    free(w->qr);
    free(w->kr);
    free(w->swa);
    if (w->rla != w->qr)
        free(w->rla);
    free(w->nrm);
}

static int bufs_alloc(const attn_rattention_problem *p, int threads, fwd_bufs *w)
{
    const int64_t rows = p->B * p->S;
    w->qr = p->swa ? attn_cpu_ratt_alloc(rows * p->Hq, p->Dk) : NULL;
    w->kr = p->swa ? attn_cpu_ratt_alloc(rows * p->Hkv, p->Dk) : NULL;
    w->swa = p->swa ? attn_cpu_ratt_alloc(rows * p->Hq, p->Dv) : NULL;
    w->rla = p->swa && p->Dk >= p->Dv ? w->qr : attn_cpu_ratt_alloc(rows * p->Hq, p->Dv);
    w->nrm = attn_cpu_ratt_alloc(3 * p->Dv, threads);
    w->tq = attn_tensor_bshd(w->qr, ATTN_F32, p->B, p->S, p->Hq, p->Dk);
    w->tk = attn_tensor_bshd(w->kr, ATTN_F32, p->B, p->S, p->Hkv, p->Dk);
    w->tswa = attn_tensor_bshd(w->swa, ATTN_F32, p->B, p->S, p->Hq, p->Dv);
    return w->rla && w->nrm && (!p->swa || (w->qr && w->kr && w->swa));
}

/* Every head of operand o at (b, i) rotated with the table into dst (rows of Dk). */
static void rotate_heads(const attn_rattention_problem *p, const attn_operand *o, int64_t nh,
                         int64_t b, int64_t i, const float *cs, const float *sn, float *row,
                         float *dst)
{
    const int direct = o->dtype == ATTN_F32 && o->stride[3] == 1;
    for (int64_t h = 0; h < nh; h++) {
        const float *x = attn_cpu_elem(o, b, i, h, 0);
        if (!direct) {
            attn_convert_to_f32_strided(x, o->dtype, p->Dk, o->stride[3], row);
            x = row;
        }
        attn_cpu_rope_apply(p->rope, p->Dk, p->Dk, cs, sn, x,
                            dst + ((b * p->S + i) * nh + h) * p->Dk);
    }
}

/* Step 1: q and k rotated into the scratch, positions split over the threads. */
attn_status attn_cpu_ratt_rotate(const attn_rattention_problem *p, int threads, float *qr,
                                 float *kr)
{
    const int64_t np = p->Dk / 2, per = 2 * np + p->Dk;
    double *freq = malloc(sizeof(double) * (size_t)(np > 0 ? np : 1));
    float *mem = attn_cpu_ratt_alloc(per, threads);
    if (!freq || !mem) {
        free(freq);
        free(mem);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate the rattention RoPE "
                         "scratch (Dk %lld)", (long long)p->Dk);
    }
    attn_cpu_rope_freqs(p->theta, p->Dk, freq);
#pragma omp parallel num_threads(threads)
    {
        float *cs = mem + per * omp_get_thread_num(), *sn = cs + np, *row = sn + np;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < p->S; i++) {
            attn_cpu_rope_table(freq, np, (double)(p->offset + i), cs, sn);
            for (int64_t b = 0; b < p->B; b++) {
                rotate_heads(p, &p->q, p->Hq, b, i, cs, sn, row, qr);
                rotate_heads(p, &p->k, p->Hkv, b, i, cs, sn, row, kr);
            }
        }
    }
    free(freq);
    free(mem);
    return ATTN_OK;
}

/* The window's SDPA problem without operands: causal, window_left w (-1 once it hides no
 * key), p's v. */
void attn_cpu_ratt_swa_problem(const attn_rattention_problem *p, attn_sdpa_problem *sp)
{
    *sp = (attn_sdpa_problem){
        .B = p->B, .Sq = p->S, .Skv = p->S, .Hq = p->Hq, .Hkv = p->Hkv, .Dk = p->Dk,
        .Dv = p->Dv, .group = p->group, .scale = p->scale, .softcap = 0.0, .causal = 1,
        .q_offset = 0, .window_left = p->window < p->S - 1 ? p->window : -1, .window_right = 0,
        .v = p->v,
    };
}

/* Step 2: the window branch as SDPA over the rotated scratch. Always on the tiles (path=
 * still picks which): the decode path splits short sequences' keys by the thread count, which
 * would make the bits depend on it. */
attn_status attn_cpu_ratt_swa(const attn_rattention_problem *p, const attn_cpu_state *s,
                              const attn_tensor *tq, const attn_tensor *tk,
                              const attn_tensor *tout, const attn_tensor *tlse)
{
    attn_cpu_state tiles = *s;
    if (tiles.path == ATTN_CPU_PATH_AUTO || tiles.path == ATTN_CPU_PATH_DECODE)
        tiles.path = ATTN_CPU_PATH_TILED;
    attn_sdpa_problem sp;
    attn_cpu_ratt_swa_problem(p, &sp);
    attn_operand_fill(&sp.q, tq);
    attn_operand_fill(&sp.k, tk);
    attn_operand_fill(&sp.out, tout);
    if (tlse)
        attn_operand_fill(&sp.lse, tlse);
    return attn_cpu_sdpa_dispatch(&sp, &tiles);
}

attn_operand attn_cpu_ratt_rows(const attn_operand *o, int64_t r0, int64_t n, attn_tensor *t)
{
    attn_operand r = *o;
    *t = *o->t;
    t->shape[1] = n;
    r.t = t;
    r.ptr = (char *)o->ptr + (size_t)(r0 * o->stride[1]) * attn_dtype_size(o->dtype);
    return r;
}

/* Step 3: the residual branch on the chunked linear kernel (writes state_out). Row i sees keys
 * j <= i - shift: rows [shift, S) are a plain causal problem over keys [0, S - shift) (run as
 * such, the rows before the shift would multiply zero keys chunk after chunk); rows before the
 * shift read S0 alone (a problem whose keys all lie past its rows), zero without S0. */
attn_status attn_cpu_ratt_rla(const attn_rattention_problem *p, int threads, int64_t chunk,
                              float *rla)
{
    attn_linear_problem lp;
    attn_rattention_rla_problem(p, &lp);
    attn_tensor trla = attn_tensor_bshd(rla, ATTN_F32, p->B, p->S, p->Hq, p->Dv);
    attn_operand_fill(&lp.out, &trla);
    const int64_t sh = lp.shift, n = p->S - sh;
    if (sh == 0 || n <= 0)
        return attn_cpu_linear_chunked(&lp, threads, chunk);
    attn_tensor t[8];
    attn_linear_problem head = lp, tail = lp;
    head.S = sh;
    head.shift = sh + 1;
    head.state_out = (attn_operand){0};
    head.q = attn_cpu_ratt_rows(&lp.q, 0, sh, &t[0]);
    head.k = attn_cpu_ratt_rows(&lp.k, 0, sh, &t[1]);
    head.v = attn_cpu_ratt_rows(&lp.v, 0, sh, &t[2]);
    head.out = attn_cpu_ratt_rows(&lp.out, 0, sh, &t[3]);
    tail.S = n;
    tail.shift = 0;
    tail.q = attn_cpu_ratt_rows(&lp.q, sh, n, &t[4]);
    tail.k = attn_cpu_ratt_rows(&lp.k, 0, n, &t[5]);
    tail.v = attn_cpu_ratt_rows(&lp.v, 0, n, &t[6]);
    tail.out = attn_cpu_ratt_rows(&lp.out, sh, n, &t[7]);
    attn_status st = ATTN_OK;
    if (lp.state_in.t)
        st = attn_cpu_linear_chunked(&head, threads, chunk);
    else
        for (int64_t b = 0; b < p->B; b++)
            memset(rla + b * p->S * p->Hq * p->Dv, 0,
                   sizeof(float) * (size_t)(sh * p->Hq * p->Dv));
    return st == ATTN_OK ? attn_cpu_linear_chunked(&tail, threads, chunk) : st;
}

/* Step 4: norms, sum and the store into out (straight into f32 rows of unit stride), rows
 * (b, i) split over the threads. */
static void norm_store(const attn_rattention_problem *p, int threads, const fwd_bufs *w)
{
    const int64_t per = 3 * p->Dv;
    const int direct = p->out.dtype == ATTN_F32 && (p->out.stride[3] == 1 || p->Dv == 1);
#pragma omp parallel num_threads(threads)
    {
        float *row = w->nrm + per * omp_get_thread_num(), *gs = row + p->Dv, *gr = gs + p->Dv;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < p->B * p->S; r++)
            for (int64_t h = 0; h < p->Hq; h++) {
                const int64_t at = (r * p->Hq + h) * p->Dv, b = r / p->S, i = r % p->S;
                float *y = direct ? (float *)attn_cpu_elem(&p->out, b, i, h, 0) : row;
                attn_cpu_ratt_norm_sum(p->swa ? w->swa + at : NULL,
                                       attn_cpu_ratt_gamma(&p->gamma_swa, h, p->Dv, gs),
                                       w->rla + at,
                                       attn_cpu_ratt_gamma(&p->gamma_rla, h, p->Dv, gr), p->Dv,
                                       p->eps, y);
                if (!direct)
                    attn_cpu_store_row(&p->out, b, i, h, y, p->Dv);
            }
    }
}

attn_status attn_cpu_rattention_forward(const attn_rattention_problem *p,
                                        const attn_cpu_state *s, int64_t chunk)
{
    fwd_bufs w;
    attn_status st = ATTN_OK;
    if (!bufs_alloc(p, s->threads, &w))
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate the rattention scratch "
                       "(B %lld, S %lld, Hq %lld, D %lld/%lld)", (long long)p->B,
                       (long long)p->S, (long long)p->Hq, (long long)p->Dk, (long long)p->Dv);
    const int window = p->swa && p->B * p->S > 0;
    if (st == ATTN_OK && window)
        st = attn_cpu_ratt_rotate(p, s->threads, w.qr, w.kr);
    if (st == ATTN_OK && window)
        st = attn_cpu_ratt_swa(p, s, &w.tq, &w.tk, &w.tswa, NULL);
    /* the last step that can fail: it writes state_out */
    if (st == ATTN_OK)
        st = attn_cpu_ratt_rla(p, s->threads, chunk, w.rla);
    if (st == ATTN_OK)
        norm_store(p, s->threads, &w);
    bufs_free(&w);
    return st;
}
