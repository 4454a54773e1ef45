/* cpu_sdpa_decode_ukr.c - the decode path's products for wide GQA groups on BLIS's micro-kernel.
 * A decode item holds all G = group * Sq query rows of a KV head over a key chunk; with G of a
 * panel or more (speculative decoding, chunked prefill, wide groups), the register-blocked
 * dot-product kernels of cpu_sdpa_decode_simd.h reach about half the sgemm rate, and the tiles
 * (one query head per item) read K/V once per head. Here the item's G rows are stacked into
 * query panels (lq lanes) once, each key tile of the chunk is packed once (converted from
 * f16/bf16 on the way) and every panel runs the packed forward's step on it: scores on the
 * micro-kernel, the band masked per lane (lanes are rows of different heads and positions),
 * the online-softmax step of the panel, O += P V. The item leaves the decode path's partial
 * (m, l, o per row) for its log-sum-exp merge. Problems with masks or a soft-cap keep the
 * row-step kernels. */
#include "cpu_sdpa.h"

#include "attn_band.h"

#include <math.h>
#include <string.h>

/* Keys per tile: K and V of a tile (D128: 256 KiB together) stay in a core's L2 while every
 * panel of the item runs over them. */
#define UKR_TILE 256

typedef struct du_layout {
    int64_t lq, lk, n_panels, dv_pad, kb; /* kb: UKR_TILE rounded up to lk */
} du_layout;

static int64_t r16(int64_t n)
{
    return (n + 15) / 16 * 16;
}

static du_layout layout_of(const attn_sdpa_problem *p, const attn_cpu_ukr *u, int64_t G)
{
    du_layout y = {.lq = u->lq, .lk = u->lk};
    y.n_panels = (G + y.lq - 1) / y.lq;
    y.dv_pad = (p->Dv + y.lk - 1) / y.lk * y.lk;
    y.kb = (UKR_TILE + y.lk - 1) / y.lk * y.lk;
    return y;
}

typedef struct du_scratch {
    float *q, *k, *v, *s, *o, *m, *l, *alpha, *bad, *row, *tmp; /* bad: kb bytes */
} du_scratch;

/* Floats of each buffer, in du_scratch order (each rounded to 16, so each starts on a line). */
static void sizes(const attn_sdpa_problem *p, const du_layout *y, int64_t n[11])
{
    const int64_t lanes = y->n_panels * y->lq, dmax = p->Dk > p->Dv ? p->Dk : p->Dv;
    n[0] = lanes * p->Dk;
    n[1] = y->kb * p->Dk;
    n[2] = y->dv_pad * y->kb;
    n[3] = (y->kb + y->lk) * y->lq;
    n[4] = lanes * y->dv_pad;
    n[5] = n[6] = lanes;
    n[7] = y->lq;
    n[8] = (y->kb + 3) / 4;
    n[9] = p->Dv;
    n[10] = ATTN_CPU_PACK_ROWS * dmax;
}

int64_t attn_cpu_dec_ukr_floats(const attn_sdpa_problem *p, const attn_cpu_ukr *u, int64_t G)
{
    const du_layout y = layout_of(p, u, G);
    int64_t n[11], total = 16; /* room to align the base */
    sizes(p, &y, n);
    for (int k = 0; k < 11; k++)
        total += r16(n[k]);
    return total;
}

static du_scratch scratch_at(const attn_sdpa_problem *p, const du_layout *y, float *base)
{
    float *at = (float *)(((uintptr_t)base + 63) & ~(uintptr_t)63);
    float **bufs[11];
    du_scratch w;
    bufs[0] = &w.q, bufs[1] = &w.k, bufs[2] = &w.v, bufs[3] = &w.s, bufs[4] = &w.o;
    bufs[5] = &w.m, bufs[6] = &w.l, bufs[7] = &w.alpha, bufs[8] = &w.bad, bufs[9] = &w.row;
    bufs[10] = &w.tmp;
    int64_t n[11];
    sizes(p, y, n);
    for (int k = 0; k < 11; k++) {
        *bufs[k] = at;
        at += r16(n[k]);
    }
    return w;
}

int attn_cpu_dec_ukr_fits(const attn_sdpa_problem *p, const attn_cpu_ukr *u, int64_t G)
{
    return u->fn && u->lq % 16 == 0 && u->lq <= ATTN_CPU_PACK_ROWS &&
           u->lk <= ATTN_CPU_PACK_ROWS && G >= ATTN_CPU_DECODE_UKR_ROWS && !p->mask_add.t &&
           !p->mask_bool.t && !(p->softcap > 0) && !p->key_score.t;
}

/* Query position of row r (rows are the group's heads, Sq rows each, stacked). */
static int64_t row_pos(const attn_sdpa_problem *p, int64_t r)
{
    return r % p->Sq;
}

/* Keys [j0, j0 + nc) of the tile that lane q's row cannot see get -inf. Lanes past G are
 * padding (zero queries, finite scores, never stored). Returns whether some lane sees a key. */
static int mask_lanes(const attn_sdpa_problem *p, const du_layout *y, float *s, int64_t r0,
                      int64_t G, int64_t j0, int64_t nc)
{
    int seen = 0;
    for (int64_t q = 0; q < y->lq && r0 + q < G; q++) {
        int64_t lo, hi;
        attn_band(p, row_pos(p, r0 + q), &lo, &hi);
        lo = lo - j0 < 0 ? 0 : lo - j0 > nc ? nc : lo - j0;
        hi = hi - j0 < lo ? lo : hi - j0 > nc ? nc : hi - j0;
        seen |= hi > lo;
        for (int64_t j = 0; j < lo; j++)
            s[j * y->lq + q] = -INFINITY;
        for (int64_t j = hi; j < nc; j++)
            s[j * y->lq + q] = -INFINITY;
    }
    return seen;
}

/* Packs keys [j0, j0 + nc) of KV head hk: K in lk-key panels, V in lk-dim panels (kb keys
 * each); V rows holding Inf/NaN are flagged in w->bad and zeroed in the pack. */
static void pack_tile(const attn_sdpa_problem *p, const du_layout *y, du_scratch *w, int64_t b,
                      int64_t hk, int64_t j0, int64_t nc)
{
    attn_cpu_pack_across(&p->k, b, hk, j0, nc, p->Dk, y->lk, w->k, w->tmp);
    attn_cpu_pack_along(&p->v, b, hk, j0, nc, p->Dv, y->lk, y->kb * y->lk, w->v, w->tmp);
    attn_cpu_zero_nonfinite_keys(w->v, y->kb * y->lk, y->dv_pad / y->lk, y->lk, 0, nc,
                                 (uint8_t *)w->bad);
}

/* Query panel t over the packed tile of keys [j0, j0 + nc). */
static void panel_step(const attn_sdpa_problem *p, const attn_cpu_ukr *u,
                       const attn_cpu_panel_fns *f, const du_layout *y, du_scratch *w,
                       int64_t G, int64_t t, int64_t b, int64_t hk, int64_t j0, int64_t nc)
{
    const int64_t lq = y->lq, lk = y->lk;
    const float *qp = w->q + t * lq * p->Dk;
    float *o = w->o + t * lq * y->dv_pad, *m = w->m + t * lq, *l = w->l + t * lq;
    for (int64_t kb = 0; kb < nc; kb += lk)
        attn_cpu_ukr_panel(u, p->Dk, (float)p->scale, qp, w->k + kb * p->Dk, 0.0f, w->s + kb * lq);
    if (!mask_lanes(p, y, w->s, t * lq, G, j0, nc))
        return; /* no row of the panel sees a key of the tile: its state is unchanged */
    f->softmax(w->s, nc, lq, m, l, w->alpha);
    const attn_cpu_panel_v v = {w->v, y->kb * lk, b, hk, j0, (const uint8_t *)w->bad};
    attn_cpu_panel_pv(p, u, f, &v, nc, w->s, w->alpha, w->row, o);
}

void attn_cpu_dec_ukr_run(const attn_sdpa_problem *p, const attn_cpu_ukr *u,
                          const attn_cpu_panel_fns *f, float *scratch, const float *q,
                          int64_t G, int64_t b, int64_t hk, int64_t j_begin, int64_t j_end,
                          float *part)
{
    const du_layout y = layout_of(p, u, G);
    du_scratch w = scratch_at(p, &y, scratch);
    const int64_t lanes = y.n_panels * y.lq;
    for (int64_t t = 0; t < y.n_panels; t++) {
        const int64_t np = G - t * y.lq < y.lq ? G - t * y.lq : y.lq;
        attn_cpu_transpose_rows(q + t * y.lq * p->Dk, p->Dk, np, p->Dk, y.lq,
                                w.q + t * y.lq * p->Dk);
    }
    for (int64_t r = 0; r < lanes; r++) {
        w.m[r] = -INFINITY;
        w.l[r] = 0.0f;
    }
    memset(w.o, 0, (size_t)(lanes * y.dv_pad) * sizeof(float));
    for (int64_t j0 = j_begin; j0 < j_end; j0 += y.kb) {
        const int64_t nc = j_end - j0 < y.kb ? j_end - j0 : y.kb;
        pack_tile(p, &y, &w, b, hk, j0, nc);
        for (int64_t t = 0; t < y.n_panels; t++)
            panel_step(p, u, f, &y, &w, G, t, b, hk, j0, nc);
    }
    /* The decode path's partial: m[G], l[G], then G rows of o (Dv each). */
    for (int64_t r = 0; r < G; r++) {
        part[r] = w.m[r];
        part[G + r] = w.l[r];
    }
    for (int64_t t = 0; t < y.n_panels; t++) {
        const int64_t rows = G - t * y.lq < y.lq ? G - t * y.lq : y.lq;
        attn_cpu_transpose_rows(w.o + t * y.lq * y.dv_pad, y.lq, p->Dv, rows, p->Dv,
                                part + 2 * G + t * y.lq * p->Dv);
    }
}
