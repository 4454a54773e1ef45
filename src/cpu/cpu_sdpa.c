/* cpu_sdpa.c - FlashAttention-2 style forward of the CPU backend. Work items are (batch, query
 * head, query tile); OpenMP hands them out dynamically (causal and window bands make them
 * uneven; the heaviest, last tiles go first). Each item walks only the key tiles its band
 * reaches: S = scale * Q_i K_j^T and O += P V_j are single-threaded BLIS calls, the softmax
 * step between them runs on the rows of S in place (cpu_sdpa_softmax.c). Key tiles that a band edge
 * crosses (the causal diagonal, a window start) go in sub-blocks of rows, each over only the
 * keys its rows can see. f32 operands with usable
 * strides go to BLIS as they are; anything else (f16, bf16, odd strides) is converted to f32:
 * K and V per (batch, KV head) group into shared scratch before the items that read them, Q
 * per tile into the thread's scratch. */
#include "cpu_sdpa.h"

#include "attn_half.h"
#include "cpu_math.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

/* K/V of a group are converted in chunks of groups of at most this many bytes (>= 1 group). */
#define KV_CHUNK_BYTES ((int64_t)64 << 20)
#define CONVERT_ROWS 64
#define SUB_ROWS 64 /* query rows per sub-block on tiles the band edges cross */

typedef struct fwd_ctx {
    const attn_sdpa_problem *p;
    int64_t br, bc, n_qt;
    int k_conv, v_conv;   /* K / V go through f32 scratch */
    float *kv;            /* scratch of the current chunk: per group Skv*Dk then Skv*Dv */
    uint8_t *vbad;        /* per group of the chunk, Skv flags: V row holds Inf/NaN */
    int64_t g0;           /* first group of the current chunk */
} fwd_ctx;

typedef struct fwd_scratch {
    float *s, *o, *q, *madd, *m, *l, *vfix;
} fwd_scratch;

static int64_t group_floats(const attn_sdpa_problem *p, const fwd_ctx *c)
{
    return (c->k_conv ? p->Skv * p->Dk : 0) + (c->v_conv ? p->Skv * p->Dv : 0);
}

static int64_t scratch_floats(const attn_sdpa_problem *p, int64_t br, int64_t bc)
{
    return br * bc + br * p->Dv + br * p->Dk + bc + 2 * br + bc * p->Dv;
}

static fwd_scratch scratch_at(float *base, const attn_sdpa_problem *p, int64_t br, int64_t bc)
{
    fwd_scratch s;
    s.s = base;
    s.o = s.s + br * bc;
    s.q = s.o + br * p->Dv;
    s.madd = s.q + br * p->Dk;
    s.m = s.madd + bc;
    s.l = s.m + br;
    s.vfix = s.l + br;
    return s;
}

/* f32 views of K and V of group g (batch * Hkv + kv head). */
static void group_kv(const fwd_ctx *c, int64_t g, attn_cpu_mat *k, attn_cpu_mat *v)
{
    const attn_sdpa_problem *p = c->p;
    int64_t b = g / p->Hkv, hk = g % p->Hkv;
    float *base = c->kv + (g - c->g0) * group_floats(p, c);
    if (c->k_conv) {
        *k = (attn_cpu_mat){base, p->Dk, 1};
        base += p->Skv * p->Dk;
    } else {
        attn_cpu_plane_mat(&p->k, p->Skv, p->Dk, b, hk, 0, k);
    }
    if (c->v_conv)
        *v = (attn_cpu_mat){base, p->Dv, 1};
    else
        attn_cpu_plane_mat(&p->v, p->Skv, p->Dv, b, hk, 0, v);
}

/* Converts rows [r0, r0+n) of K and/or V of group g into the chunk scratch. */
static void convert_rows(const fwd_ctx *c, int64_t g, int64_t r0, int64_t n)
{
    const attn_sdpa_problem *p = c->p;
    int64_t b = g / p->Hkv, hk = g % p->Hkv;
    float *base = c->kv + (g - c->g0) * group_floats(p, c);
    if (c->k_conv) {
        attn_cpu_plane_to_f32(&p->k, b, hk, r0, n, p->Dk, base + r0 * p->Dk);
        base += p->Skv * p->Dk;
    }
    if (c->v_conv)
        attn_cpu_plane_to_f32(&p->v, b, hk, r0, n, p->Dv, base + r0 * p->Dv);
}

static attn_cpu_mat rows_from(attn_cpu_mat m, int64_t r0)
{
    m.p += r0 * m.rs;
    return m;
}

/* Whether row j of v (n values) is all finite: the largest exponent field among them is below
 * the Inf/NaN one (an integer max, which vectorises). */
ATTN_CPU_HOT
static int row_finite(attn_cpu_mat v, int64_t j, int64_t n)
{
    const float *x = v.p + j * v.rs;
    uint32_t top = 0;
    if (v.cs == 1)
        for (int64_t d = 0; d < n; d++) {
            uint32_t e = attn_f32_bits(x[d]) & 0x7f800000u;
            top = e > top ? e : top;
        }
    else
        for (int64_t d = 0; d < n; d++) {
            uint32_t e = attn_f32_bits(x[d * v.cs]) & 0x7f800000u;
            top = e > top ? e : top;
        }
    return top != 0x7f800000u;
}

/* O += P V for keys [j0, j0 + nc). A key a row cannot see has p = -0, and 0 * Inf or 0 * NaN
 * in the product would leak non-finite V values into that row; so when the V tile holds any,
 * the product runs on a copy with those rows zeroed (vfix: nc x Dv floats), and their p * v
 * terms are added separately for the rows that see the key (p = +0 included: a visible key's
 * NaN propagates, as in the reference). */
void attn_cpu_pv(const attn_sdpa_problem *p, const float *pt, int64_t ldp, int64_t nr,
                 attn_cpu_mat vt, int64_t nc, const uint8_t *vbad, float *o, float *vfix)
{
    attn_cpu_mat pm = {pt, ldp, 1};
    int64_t bad = 0;
    for (int64_t j = 0; j < nc; j++)
        bad += vbad ? vbad[j] : !row_finite(vt, j, p->Dv);
    if (bad == 0) {
        attn_cpu_sgemm(nr, p->Dv, nc, 1.0f, pm, vt, 1.0f, o, p->Dv);
        return;
    }
    for (int64_t j = 0; j < nc; j++)
        for (int64_t d = 0; d < p->Dv; d++)
            vfix[j * p->Dv + d] = row_finite(vt, j, p->Dv) ? vt.p[j * vt.rs + d * vt.cs] : 0;
    attn_cpu_sgemm(nr, p->Dv, nc, 1.0f, pm, (attn_cpu_mat){vfix, p->Dv, 1}, 1.0f, o, p->Dv);
    for (int64_t j = 0; j < nc; j++)
        if (!row_finite(vt, j, p->Dv))
            for (int64_t r = 0; r < nr; r++)
                if (!attn_cpu_p_hidden(pt[r * ldp + j]))
                    for (int64_t d = 0; d < p->Dv; d++)
                        o[r * p->Dv + d] += pt[r * ldp + j] * vt.p[j * vt.rs + d * vt.cs];
}

void attn_cpu_row_logits(const attn_sdpa_problem *p, float *srow, float *madd_scratch,
                         int64_t b, int64_t i, int64_t h, int64_t j0, int64_t nc)
{
    const float *madd = NULL;
    const uint8_t *mbool = NULL;
    if (p->mask_add.t) {
        attn_convert_to_f32_strided(attn_cpu_elem(&p->mask_add, b, i, h, j0), p->mask_add.dtype,
                                    nc, p->mask_add.stride[3], madd_scratch);
        madd = madd_scratch;
    }
    if (p->mask_bool.t)
        mbool = attn_cpu_elem(&p->mask_bool, b, i, h, j0);
    int64_t lo, hi;
    attn_band(p, i, &lo, &hi);
    attn_cpu_logits_row(srow, nc, (float)p->softcap, madd, mbool, p->mask_bool.stride[3], j0,
                        lo, hi);
}

void attn_cpu_row_step(const attn_sdpa_problem *p, float *srow, float *madd_scratch,
                       float *orow, float *m, float *l, int64_t b, int64_t i, int64_t h,
                       int64_t j0, int64_t nc)
{
    attn_cpu_row_logits(p, srow, madd_scratch, b, i, h, j0, nc);
    float alpha = attn_cpu_softmax_row(srow, nc, m, l);
    if (alpha != 1.0f)
        attn_cpu_scale_row(orow, p->Dv, alpha);
}

static void finish_rows(const attn_sdpa_problem *p, fwd_scratch *w, int64_t b, int64_t h,
                        int64_t i0, int64_t nr)
{
    for (int64_t r = 0; r < nr; r++) {
        float *orow = w->o + r * p->Dv, lse;
        attn_cpu_finish_row(orow, p->Dv, w->m[r], w->l[r], &lse);
        attn_cpu_store_row(&p->out, b, i0 + r, h, orow, p->Dv);
        if (p->lse.t)
            *(float *)attn_cpu_elem(&p->lse, b, i0 + r, h, 0) = lse;
    }
}

/* Operands of one work item: query rows [i0, i0 + nr) of head h in group g (batch b). */
typedef struct fwd_item {
    int64_t g, h, b, i0, nr;
    attn_cpu_mat q, k, v;
} fwd_item;

/* Rows [r0, r0 + nr) of the item against keys [j0, j0 + nc): S = scale * Q K^T, the row
 * steps, O += P V. */
static void block_step(const fwd_ctx *c, fwd_scratch *w, const fwd_item *it, int64_t r0,
                       int64_t nr, int64_t j0, int64_t nc)
{
    const attn_sdpa_problem *p = c->p;
    float *s = w->s + r0 * c->bc, *o = w->o + r0 * p->Dv;
    /* K_j^T: element (d, j) of the transposed view sits at K(j, d). */
    attn_cpu_mat kt = {it->k.p + j0 * it->k.rs, it->k.cs, it->k.rs};
    attn_cpu_sgemm(nr, nc, p->Dk, (float)p->scale, rows_from(it->q, r0), kt, 0.0f, s, c->bc);
    for (int64_t r = 0; r < nr; r++)
        attn_cpu_row_step(p, s + r * c->bc, w->madd, o + r * p->Dv, &w->m[r0 + r],
                          &w->l[r0 + r], it->b, it->i0 + r0 + r, it->h, j0, nc);
    attn_cpu_pv(p, s, c->bc, nr, rows_from(it->v, j0), nc,
                c->vbad + (it->g - c->g0) * p->Skv + j0, o, w->vfix);
}

/* Key tile [j0, j0 + nc) for the whole item. Where the band edges cross the tile (causal
 * diagonal, window start), the rows go in sub-blocks of SUB_ROWS, each over only the keys its
 * rows can see, so the masked part of the tile is mostly never computed. */
static void tile_step(const fwd_ctx *c, fwd_scratch *w, const fwd_item *it, int64_t j0,
                      int64_t nc)
{
    const attn_sdpa_problem *p = c->p;
    int64_t lo_last, hi_first, unused;
    attn_band(p, it->i0 + it->nr - 1, &lo_last, &unused);
    attn_band(p, it->i0, &unused, &hi_first);
    if (lo_last <= j0 && hi_first >= j0 + nc) {
        block_step(c, w, it, 0, it->nr, j0, nc);
        return;
    }
    for (int64_t r0 = 0; r0 < it->nr; r0 += SUB_ROWS) {
        int64_t nr = it->nr - r0 < SUB_ROWS ? it->nr - r0 : SUB_ROWS, lo, hi;
        attn_band(p, it->i0 + r0, &lo, &unused);
        attn_band(p, it->i0 + r0 + nr - 1, &unused, &hi);
        lo = lo > j0 ? lo : j0;
        hi = hi < j0 + nc ? hi : j0 + nc;
        if (hi > lo) /* else no row of the block sees a key here: its state is unchanged */
            block_step(c, w, it, r0, nr, lo, hi - lo);
    }
}

/* One work item: query rows [i0, i0 + nr) of head h in group g. */
static void run_item(const fwd_ctx *c, fwd_scratch *w, int64_t g, int64_t h, int64_t i0,
                     int64_t nr)
{
    const attn_sdpa_problem *p = c->p;
    fwd_item it = {.g = g, .h = h, .b = g / p->Hkv, .i0 = i0, .nr = nr};
    group_kv(c, g, &it.k, &it.v);
    if (!attn_cpu_plane_mat(&p->q, p->Sq, p->Dk, it.b, h, i0, &it.q)) {
        attn_cpu_plane_to_f32(&p->q, it.b, h, i0, nr, p->Dk, w->q);
        it.q = (attn_cpu_mat){w->q, p->Dk, 1};
    }
    for (int64_t r = 0; r < nr; r++) {
        w->m[r] = -INFINITY;
        w->l[r] = 0.0f;
    }
    for (int64_t e = 0; e < nr * p->Dv; e++)
        w->o[e] = 0.0f;
    /* Bands are monotone in i: the union over the tile's rows is within [lo(i0), hi(last));
     * an empty band may sit beyond Skv (lo = hi > Skv). */
    int64_t jlo, jhi, unused;
    attn_band(p, i0, &jlo, &unused);
    attn_band(p, i0 + nr - 1, &unused, &jhi);
    jhi = jhi < p->Skv ? jhi : p->Skv;
    for (int64_t j0 = jlo; j0 < jhi; j0 += c->bc)
        tile_step(c, w, &it, j0, jhi - j0 < c->bc ? jhi - j0 : c->bc);
    finish_rows(p, w, it.b, h, i0, nr);
}

/* Work items of the groups [g0, g1): the last query tiles (the longest under causal
 * masks) first. */
static void run_items(const fwd_ctx *c, fwd_scratch *w, int64_t g0, int64_t g1)
{
    const attn_sdpa_problem *p = c->p;
    int64_t per_group = p->group * c->n_qt, n = (g1 - g0) * per_group;
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < n; it++) {
        int64_t g = g0 + it / per_group, rem = it % per_group;
        int64_t h = (g % p->Hkv) * p->group + rem / c->n_qt;
        int64_t qt = c->n_qt - 1 - rem % c->n_qt;
        int64_t i0 = qt * c->br;
        run_item(c, w, g, h, i0, p->Sq - i0 < c->br ? p->Sq - i0 : c->br);
    }
}

/* Converts K/V of the chunk's groups where needed and flags the V rows holding Inf/NaN (once
 * per call rather than once per query tile). */
static void prepare_chunk(const fwd_ctx *c, int64_t g0, int64_t g1)
{
    const attn_sdpa_problem *p = c->p;
    int64_t per = (p->Skv + CONVERT_ROWS - 1) / CONVERT_ROWS, n = (g1 - g0) * per;
#pragma omp for schedule(static)
    for (int64_t it = 0; it < n; it++) {
        int64_t g = g0 + it / per, r0 = it % per * CONVERT_ROWS, rows = p->Skv - r0;
        rows = rows < CONVERT_ROWS ? rows : CONVERT_ROWS;
        convert_rows(c, g, r0, rows);
        attn_cpu_mat km, vm;
        group_kv(c, g, &km, &vm);
        for (int64_t j = r0; j < r0 + rows; j++)
            c->vbad[(g - g0) * p->Skv + j] = !row_finite(vm, j, p->Dv);
    }
}

attn_status attn_cpu_sdpa_tiled(const attn_sdpa_problem *p, int threads, int64_t br,
                                int64_t bc)
{
    fwd_ctx c = {.p = p, .br = br, .bc = bc, .n_qt = (p->Sq + br - 1) / br};
    attn_cpu_mat probe;
    c.k_conv = !attn_cpu_plane_mat(&p->k, p->Skv, p->Dk, 0, 0, 0, &probe);
    c.v_conv = !attn_cpu_plane_mat(&p->v, p->Skv, p->Dv, 0, 0, 0, &probe);
    int64_t n_groups = p->B * p->Hkv, gf = group_floats(p, &c);
    int64_t chunk = n_groups;
    if (gf > 0) {
        chunk = KV_CHUNK_BYTES / (gf * (int64_t)sizeof(float));
        chunk = chunk < 1 ? 1 : chunk > n_groups ? n_groups : chunk;
    }
    int64_t per_thread = scratch_floats(p, br, bc);
    size_t total = (size_t)(per_thread * threads + gf * chunk);
    size_t flags = (size_t)(chunk * p->Skv);
    float *mem = malloc(total * sizeof(float) + flags);
    if (!mem)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes of scratch",
                         total * sizeof(float) + flags);
    c.kv = mem + per_thread * threads;
    c.vbad = (uint8_t *)(mem + total);
#pragma omp parallel num_threads(threads)
    {
        fwd_scratch w = scratch_at(mem + per_thread * omp_get_thread_num(), p, br, bc);
        for (int64_t g0 = 0; g0 < n_groups; g0 += chunk) {
            int64_t g1 = g0 + chunk < n_groups ? g0 + chunk : n_groups;
#pragma omp single
            c.g0 = g0;
            prepare_chunk(&c, g0, g1);
            run_items(&c, &w, g0, g1);
        }
    }
    free(mem);
    return ATTN_OK;
}
