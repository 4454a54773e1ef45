/* cpu_rattention_decode.c - RATTENTION's decode step on the cpu backend: work items (batch, KV
 * head) in parallel, each walking the new tokens one by one as reference/rattention_decode.c
 * does: fold the evicted slot (or, w = -1, the token itself) into the f32 state, write (k, v)
 * into the ring in its dtype, attend over the window's slots, read phi(q) S, norms, store. The
 * state (f32 with unit-stride rows) and, for the SIMD kernels, the ring's values are used in
 * place: nothing can fail once the items run.
 *
 * RoPE at attention time without a cos/sin per key: RoPE is a rotation by position, so
 * <R(a) q, R(b) k> = <q, R(b - a) k>: the query stays as it is and each key of the window is
 * rotated by minus its distance d = t - j in [0, w]. The rotations come from one table (rows d,
 * shared by all items, attn_cpu_ratt_rot's layout) built by an f64 recurrence (exact cos/sin
 * every TABLE_BLOCK rows, relative error ~1e-15) instead of a cos/sin per key; it depends only
 * on theta, Dk, the layout and w, so the backend's memo keeps it from step to step. The SIMD
 * score kernels rotate each key in registers as they read it from the ring
 * (cpu_rattention_decode_simd.h); the portable path rotates the keys block by block (KEY_BLOCK
 * keys) into a small buffer right before their scores. Either way the ring's keys are read once
 * per step. The evicted token is folded into the state in the same pass over the state that
 * reads phi(q) S. The window of token t is slots [0, min(t + 1, w + 1)) in slot order (softmax
 * does not depend on the keys' order); slot c holds token t - ((t - c) mod (w + 1)). */
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

#define TABLE_BLOCK 1024 /* table rows per exact cos/sin (the recurrence runs in between) */
#define KEY_BLOCK 64   /* keys rotated per block (64 x Dk floats: L1-L2) */
#define PREFETCH_AHEAD 8 /* ring rows requested ahead of their rotation */

/* The call's rotation table: row d holds cos(d f_i) and -sin(d f_i), i < Dk/2 (the RoPE
 * table of position -d) in attn_cpu_ratt_rot's layout. */
typedef struct dec_table {
    const float *tab;
    int64_t np, rows;
    int half;
} dec_table;

/* Per-thread scratch (floats): a block of rotated keys, the slots' values in f32 (portable
 * kernels), the state (when not used in place), and rows for the group's queries, features,
 * scores and both branches. */
typedef struct dec_ws {
    float *kb, *vf, *st, *kraw, *vrow, *vold, *q, *fq, *fk, *sc, *swa, *rla, *y, *gs, *gr;
    float *m, *l;      /* the group's softmax maxima and sums */
    float *state;      /* the state in use: the cache's own rows (f32, unit stride), else st */
    int64_t ld_state;  /* its row stride */
    attn_cpu_rows vr;  /* the window's V rows: the ring in place (SIMD kernels), else vf */
} dec_ws;

/* The kernels of the window's products: the SIMD decode kernels where the CPU and the option
 * allow, else the portable loops. */
typedef void (*dec_rqk_fn)(const float *q, int64_t nq, const attn_cpu_rows *k, int64_t nk,
                           int64_t d, float scale, float *s, int64_t lds,
                           const attn_cpu_rows *v, int64_t dv, const attn_cpu_ratt_rot *rot);
typedef struct dec_kern {
    attn_cpu_dec_qk_fn qk;
    attn_cpu_dec_pv_fn pv;
    dec_rqk_fn rqk; /* scores with the keys rotated in registers */
} dec_kern;

/* Whether the cache's state is used in place (f32 rows of unit stride that do not overlap). */
static int state_in_place(const attn_rattention_problem *p)
{
    const attn_operand *o = &p->state;
    return (o->stride[3] == 1 || p->Dv == 1) && (p->Df == 1 || o->stride[2] >= p->Dv);
}

/* Whether the window's values are read from the ring in place (the SIMD kernels read any
 * dtype; rows of unit stride). */
static int values_in_place(const attn_rattention_problem *p, const dec_kern *kn)
{
    return p->slots && kn->pv && (p->v_ring.stride[3] == 1 || p->Dv == 1);
}

/* Per-thread scratch floats; the state and the slots' f32 values only where needed (fresh
 * pages cost a fault each, every step). */
static int64_t ws_floats(const attn_rattention_problem *p, const dec_kern *kn)
{
    const int64_t n = p->slots > 0 ? p->slots : 1, G = p->group;
    return KEY_BLOCK * p->Dk + (values_in_place(p, kn) ? 0 : n * p->Dv) +
           (state_in_place(p) ? 0 : p->Df * p->Dv) + p->Dk + 2 * p->Dv +
           G * (p->Dk + p->Df + n + 2 * p->Dv + 2) + p->Df + 3 * p->Dv;
}

static void ws_carve(const attn_rattention_problem *p, const dec_kern *kn, float *m, dec_ws *w)
{
    const int64_t n = p->slots > 0 ? p->slots : 1, G = p->group;
    w->kb = m;
    w->vf = w->kb + KEY_BLOCK * p->Dk;
    w->st = w->vf + (values_in_place(p, kn) ? 0 : n * p->Dv);
    w->kraw = w->st + (state_in_place(p) ? 0 : p->Df * p->Dv);
    w->vrow = w->kraw + p->Dk;
    w->vold = w->vrow + p->Dv;
    w->q = w->vold + p->Dv;
    w->fq = w->q + G * p->Dk;
    w->sc = w->fq + G * p->Df;
    w->swa = w->sc + G * n;
    w->rla = w->swa + G * p->Dv;
    w->fk = w->rla + G * p->Dv;
    w->y = w->fk + p->Df;
    w->gs = w->y + p->Dv;
    w->gr = w->gs + p->Dv;
    w->m = w->gr + p->Dv;
    w->l = w->m + G;
}

/* The table: exact cos/sin every TABLE_BLOCK rows, rotation by one step in f64 in between (the
 * pairs in the inner loop, so that it vectorises). */
typedef struct table_src {
    const attn_rattention_problem *p;
    double *scratch; /* 5 np doubles: the frequencies and the recurrence's rows */
    const dec_table *t;
} table_src;

ATTN_CPU_HOT
static void table_build(void *buf, const void *ctx)
{
    const table_src *src = ctx;
    const dec_table *t = src->t;
    const int64_t np = t->np;
    double *freq = src->scratch, *c = freq + np, *s = c + np, *c1 = s + np, *s1 = c1 + np;
    attn_cpu_rope_freqs(src->p->theta, src->p->Dk, freq);
    for (int64_t i = 0; i < np; i++) {
        c1[i] = cos(freq[i]);
        s1[i] = sin(freq[i]);
    }
    for (int64_t d = 0; d < t->rows; d++) {
        if (d % TABLE_BLOCK == 0)
            for (int64_t i = 0; i < np; i++) {
                c[i] = cos((double)d * freq[i]);
                s[i] = sin((double)d * freq[i]);
            }
        float *row = (float *)buf + d * 2 * np;
        if (t->half)
            for (int64_t i = 0; i < np; i++) {
                row[i] = (float)c[i];
                row[np + i] = (float)-s[i];
            }
        else
            for (int64_t i = 0; i < np; i++) {
                row[2 * i] = (float)c[i];
                row[2 * i + 1] = (float)-s[i];
            }
        for (int64_t i = 0; i < np; i++) {
            const double cn = c[i] * c1[i] - s[i] * s1[i];
            s[i] = s[i] * c1[i] + c[i] * s1[i];
            c[i] = cn;
        }
    }
}

/* The call's table from the backend's memo (built on the first call with these parameters:
 * theta, Dk, layout, ring slots), or NULL when memory runs out. scratch: 5 np doubles. */
static const float *table_get(const attn_rattention_problem *p, const attn_cpu_state *s,
                              const dec_table *t, double *scratch, attn_cpu_memo_hold *held)
{
    unsigned char key[56] = "rattention decode rope"; /* the kind of table, then its values */
    const int64_t dims[3] = {p->Dk, t->half, t->rows};
    memcpy(key + 24, &p->theta, sizeof p->theta);
    memcpy(key + 32, dims, sizeof dims);
    const table_src src = {p, scratch, t};
    const size_t bytes = sizeof(float) * (size_t)(2 * t->rows * t->np);
    return attn_cpu_memo_get(s->memo, key, sizeof key, bytes, table_build, &src, held);
}

/* y = x rotated by -d (Dk floats; the portable path). */
static void rotate_back(const attn_rattention_problem *p, const dec_table *t, int64_t d,
                        const float *x, float *y)
{
    /* pair i: its two elements, and its cos and -sin in the row, at i*ia and i*ia + ic */
    const int64_t np = t->np, ia = t->half ? 1 : 2, ic = t->half ? np : 1;
    const float *row = t->tab + d * 2 * np;
    for (int64_t i = 0; i < np; i++) {
        const float cs = row[i * ia], sn = row[i * ia + ic];
        const float a = x[i * ia], c = x[i * ia + ic];
        y[i * ia] = a * cs - c * sn;
        y[i * ia + ic] = c * cs + a * sn;
    }
    for (int64_t e = 2 * np; e < p->Dk; e++)
        y[e] = x[e];
}

/* Whether the rows of an operand (n values) are contiguous f32 that can be read in place. */
static int f32_rows(const attn_operand *o, int64_t n)
{
    return o->dtype == ATTN_F32 && (o->stride[3] == 1 || n == 1);
}

/* Row (i0, i1, i2) of an operand (n values) as f32. */
static void load_row(const attn_operand *o, int64_t i0, int64_t i1, int64_t i2, int64_t n,
                     float *dst)
{
    const void *src = attn_cpu_elem(o, i0, i1, i2, 0);
    if (o->stride[3] == 1 || n == 1)
        attn_convert_to_f32(src, o->dtype, n, dst);
    else
        attn_convert_to_f32_strided(src, o->dtype, n, o->stride[3], dst);
}

static dec_kern kernels_of(const attn_cpu_state *s)
{
    dec_kern k = {NULL, NULL, NULL};
#if ATTN_CPU_HAVE_AVX2_KERNELS
    const attn_cpu_simd level = attn_cpu_simd_use(s->simd);
    if (level == ATTN_CPU_SIMD_AVX512) {
        k.qk = attn_cpu_dec_qk_avx512;
        k.pv = attn_cpu_dec_pv_avx512;
        k.rqk = attn_cpu_ratt_dec_qk_avx512;
    } else if (level == ATTN_CPU_SIMD_AVX2) {
        k.qk = attn_cpu_dec_qk_avx2;
        k.pv = attn_cpu_dec_pv_avx2;
        k.rqk = attn_cpu_ratt_dec_qk_avx2;
    }
#else
    (void)s;
#endif
    return k;
}

/* V rows [j0, ...) of a row set. */
static attn_cpu_rows rows_from(const attn_cpu_rows *r, int64_t j0)
{
    attn_cpu_rows x = *r;
    x.p = (const char *)r->p + (size_t)(j0 * r->ld) * attn_dtype_size(r->dtype);
    return x;
}

/* Scores of the group's G queries against slots [j0, j0 + nb) of token tok's window, each key
 * rotated by its distance (tok - slot) mod slots: in registers by the SIMD kernel where the
 * ring's key rows are contiguous, else into the L1-sized block kb first. */
static void score_block(const attn_rattention_problem *p, const dec_kern *kn,
                        const dec_table *t, dec_ws *w, int64_t b, int64_t g, int64_t tok,
                        int64_t j0, int64_t nb)
{
    float *sc = w->sc + j0;
    const attn_cpu_rows vr = rows_from(&w->vr, j0);
    if (kn->rqk && (p->k_ring.stride[3] == 1 || p->Dk == 1)) {
        const attn_operand *o = &p->k_ring;
        const attn_cpu_rows kr = {attn_cpu_elem(o, b, j0, g, 0), o->dtype, o->stride[1]};
        const attn_cpu_ratt_rot rot = {t->tab, t->np, t->half, (tok - j0) % p->slots, p->slots};
        kn->rqk(w->q, p->group, &kr, nb, p->Dk, (float)p->scale, sc, p->slots, &vr, p->Dv, &rot);
        return;
    }
    const int in_place = f32_rows(&p->k_ring, p->Dk);
    const int64_t size = (int64_t)attn_dtype_size(p->k_ring.dtype), bytes = p->Dk * size;
    const int64_t step = p->k_ring.stride[1] * size; /* slots sit a KV-head stride apart */
    const char *row0 = attn_cpu_elem(&p->k_ring, b, 0, g, 0);
    for (int64_t j = 0; j < nb; j++) {
        const int64_t slot = j0 + j;
        const float *k = (const float *)(row0 + slot * step);
        if (slot + PREFETCH_AHEAD < p->slots)
            for (int64_t at = 0; at < bytes; at += 64)
                __builtin_prefetch(row0 + (slot + PREFETCH_AHEAD) * step + at, 0, 3);
        if (!in_place) {
            load_row(&p->k_ring, b, slot, g, p->Dk, w->kraw);
            k = w->kraw;
        }
        rotate_back(p, t, (tok - slot) % p->slots, k, w->kb + j * p->Dk);
    }
    if (kn->qk) {
        const attn_cpu_rows kr = {w->kb, ATTN_F32, p->Dk};
        kn->qk(w->q, p->group, &kr, nb, p->Dk, (float)p->scale, sc, p->slots, &vr, p->Dv);
    } else {
        attn_cpu_qk_block(w->q, p->group, w->kb, nb, p->Dk, (float)p->scale, sc, p->slots);
    }
}

/* SWA of the group's G queries (position tok, the rotations' reference) over slots [0, n):
 * swa (G x Dv). */
static void window(const attn_rattention_problem *p, const dec_kern *kn, const dec_table *t,
                   dec_ws *w, int64_t b, int64_t g, int64_t tok, int64_t n)
{
    const int64_t G = p->group, ld = p->slots;
    for (int64_t j0 = 0; j0 < n; j0 += KEY_BLOCK)
        score_block(p, kn, t, w, b, g, tok, j0, n - j0 < KEY_BLOCK ? n - j0 : KEY_BLOCK);
    for (int64_t r = 0; r < G; r++) {
        w->m[r] = -INFINITY;
        w->l[r] = 0.0f;
        attn_cpu_softmax_row(w->sc + r * ld, n, &w->m[r], &w->l[r]);
    }
    for (int64_t x = 0; x < G * p->Dv; x++)
        w->swa[x] = 0.0f;
    if (kn->pv)
        kn->pv(w->sc, ld, G, &w->vr, n, p->Dv, w->swa);
    else
        attn_cpu_pv_block(w->sc, ld, G, w->vf, n, p->Dv, w->swa);
    for (int64_t r = 0; r < G; r++) {
        float lse;
        attn_cpu_finish_row(w->swa + r * p->Dv, p->Dv, w->m[r], w->l[r], &lse);
    }
}

/* The token leaving the window at token t (call row s): its features into fk and its values
 * into vold, read before the ring's slot is overwritten; whether there is one (the fold itself
 * comes with the state's read). */
static int evicted(const attn_rattention_problem *p, dec_ws *w, int64_t b, int64_t g,
                   int64_t s, int64_t t)
{
    if (p->slots == 0) {
        load_row(&p->k, b, s, g, p->Dk, w->kraw);
        load_row(&p->v, b, s, g, p->Dv, w->vold);
    } else if (t >= p->slots) {
        load_row(&p->k_ring, b, t % p->slots, g, p->Dk, w->kraw);
        load_row(&p->v_ring, b, t % p->slots, g, p->Dv, w->vold);
    } else {
        return 0;
    }
    attn_cpu_linear_phi(p->feature, w->kraw, p->Dk, w->fk);
    return 1;
}

/* Token s of the call (t = pos + s) for every query head of KV head g. */
static void token(const attn_rattention_problem *p, const dec_kern *kn, const dec_table *t,
                  dec_ws *w, int64_t b, int64_t g, int64_t s)
{
    const int64_t tok = p->pos + s, G = p->group;
    const int fold = evicted(p, w, b, g, s, tok);
    if (p->slots) {
        const int64_t slot = tok % p->slots;
        load_row(&p->k, b, s, g, p->Dk, w->kraw);
        load_row(&p->v, b, s, g, p->Dv, w->vrow);
        attn_cpu_store_row(&p->k_ring, b, slot, g, w->kraw, p->Dk);
        attn_cpu_store_row(&p->v_ring, b, slot, g, w->vrow, p->Dv);
        if (w->vr.p == w->vf) /* the values as the ring holds them */
            load_row(&p->v_ring, b, slot, g, p->Dv, w->vf + slot * p->Dv);
    }
    for (int64_t r = 0; r < G; r++) {
        load_row(&p->q, b, s, g * G + r, p->Dk, w->q + r * p->Dk);
        attn_cpu_linear_phi(p->feature, w->q + r * p->Dk, p->Dk, w->fq + r * p->Df);
    }
    if (p->swa)
        window(p, kn, t, w, b, g, tok, tok + 1 < p->slots ? tok + 1 : p->slots);
    attn_cpu_ratt_fold_read(fold ? w->fk : NULL, w->vold, w->fq, G, w->state, w->ld_state, p->Df,
                            p->Dv, w->rla);
    for (int64_t r = 0; r < G; r++) {
        const int64_t h = g * G + r;
        attn_cpu_ratt_norm_sum(p->swa ? w->swa + r * p->Dv : NULL,
                               attn_cpu_ratt_gamma(&p->gamma_swa, h, p->Dv, w->gs),
                               w->rla + r * p->Dv,
                               attn_cpu_ratt_gamma(&p->gamma_rla, h, p->Dv, w->gr), p->Dv,
                               p->eps, w->y);
        attn_cpu_store_row(&p->out, b, s, h, w->y, p->Dv);
    }
}

/* Where the item reads its state and its window's values: in place where the layout allows
 * (nothing can fail once the items run, so the cache may be updated as they go). */
static void item_views(const attn_rattention_problem *p, const dec_kern *kn, dec_ws *w,
                       int64_t b, int64_t g)
{
    const attn_operand *so = &p->state, *vo = &p->v_ring;
    const int in_place = state_in_place(p);
    w->state = in_place ? (float *)attn_cpu_elem(so, b, g, 0, 0) : w->st;
    w->ld_state = in_place ? so->stride[2] : p->Dv;
    w->vr = (attn_cpu_rows){w->vf, ATTN_F32, p->Dv};
    if (values_in_place(p, kn))
        w->vr = (attn_cpu_rows){attn_cpu_elem(vo, b, 0, g, 0), vo->dtype, vo->stride[1]};
}

/* Work item (b, g): the ring's tokens in, every new token, the state back. */
static void item(const attn_rattention_problem *p, const dec_kern *kn, const dec_table *t,
                 dec_ws *w, int64_t b, int64_t g)
{
    item_views(p, kn, w, b, g);
    for (int64_t f = 0; w->state == w->st && f < p->Df; f++)
        load_row(&p->state, b, g, f, p->Dv, w->st + f * p->Dv);
    /* the portable kernels read the values as f32: the slots of every token seen so far */
    const int64_t seen = p->pos < p->slots ? p->pos : p->slots;
    for (int64_t slot = 0; w->vr.p == w->vf && slot < seen; slot++)
        load_row(&p->v_ring, b, slot, g, p->Dv, w->vf + slot * p->Dv);
    for (int64_t s = 0; s < p->S; s++)
        token(p, kn, t, w, b, g, s);
    for (int64_t f = 0; w->state == w->st && f < p->Df; f++)
        attn_cpu_store_row(&p->state, b, g, f, w->st + f * p->Dv, p->Dv);
}

attn_status attn_cpu_rattention_decode(const attn_rattention_problem *p,
                                       const attn_cpu_state *s)
{
    const dec_kern kn = kernels_of(s);
    const int64_t items = p->B * p->Hkv, per = ws_floats(p, &kn), np = p->Dk / 2;
    const int nt = items < s->threads ? (int)(items > 0 ? items : 1) : s->threads;
    /* distances up to w: the whole ring, so that the table is the same on every step */
    dec_table t = {NULL, np, p->swa ? p->slots : 0, p->rope == ATTN_ROPE_HALF};
    /* one block (a size that stays in the heap from step to step): the table builder's
     * frequencies and rows (doubles, used when the memo has no table yet), the threads'
     * scratch */
    const int64_t doubles = 5 * np;
    double *block = (double *)attn_cpu_ratt_alloc(2 * doubles + per * nt, 1);
    attn_cpu_memo_hold held = {NULL, NULL};
    if (block && p->S > 0 && t.rows > 0)
        t.tab = table_get(p, s, &t, block, &held);
    if (!block || (p->S > 0 && t.rows > 0 && !t.tab)) {
        free(block);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate the rattention decode "
                         "scratch (ring of %lld slots, %lld tokens)", (long long)p->slots,
                         (long long)p->S);
    }
    float *ws = (float *)(block + doubles);
    /* static: each item stays on its thread from step to step, with its ring and state in
     * that core's caches */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t x = 0; x < (p->S > 0 ? items : 0); x++) {
        dec_ws w;
        ws_carve(p, &kn, ws + per * omp_get_thread_num(), &w);
        item(p, &kn, &t, &w, x / p->Hkv, x % p->Hkv);
    }
    attn_cpu_memo_release(s->memo, &held);
    free(block);
    return ATTN_OK;
}
