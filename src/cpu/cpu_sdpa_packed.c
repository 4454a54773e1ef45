/* cpu_sdpa_packed.c - the FlashAttention-2 forward of the CPU backend on BLIS's micro-kernel.
 * K and V of a KV group are packed once (converted from f16/bf16 on the way) into the panel
 * layouts the micro-kernel reads, and reused by every query tile and head of the group; BLIS's
 * sgemm would repack them, and the probabilities, on every tile product. A work item is
 * (batch, query head, query tile); it packs its Q rows once, then takes the tile's query
 * panels (lq rows, the kernel's lane count) one at a time: scores for the keys that panel's
 * rows can see (so band edges cost a panel, not a tile), the online-softmax step on the panel
 * in place, and O += P V on the panel's accumulator, all in the layout the kernel writes. */
#include "cpu_sdpa.h"

#include "attn_band.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* K/V are packed in chunks of groups of at most this many bytes (>= 1 group): small enough
 * that the allocator recycles the buffer from call to call (larger ones are mapped fresh, and
 * the kernel zeroes every page again). */
#define PK_CHUNK_BYTES ((int64_t)8 << 20)
/* A tile whose keys' packed K and V take at most this many bytes (they stay in a core's L2)
 * runs panel by panel, each panel over its own band; wider tiles run key chunk by key chunk,
 * every panel of the tile over one chunk before the next chunk is read. */
#define PK_NEAR_BYTES ((int64_t)512 << 10)

typedef struct pk_ctx {
    const attn_sdpa_problem *p;
    const attn_cpu_ukr *u;
    attn_cpu_panel_fns fns;
    int64_t br, bc, n_qt, lq, lk;
    int64_t k_floats, dv_pad; /* packed K of a group; V dims rounded up to lk */
    int64_t tmp_floats;       /* conversion rows of a packer */
    float *kv;                /* packed K then V of each group of the chunk */
    uint8_t *vbad;            /* per group of the chunk, Skv flags: V row holds Inf/NaN */
    int64_t g0;
} pk_ctx;

typedef struct pk_scratch {
    float *q, *s, *o, *m, *l, *alpha, *row, *tmp;
} pk_scratch;

/* Sizes in floats rounded up to 16, so every buffer starts on a 64-byte line: the q side of
 * a product (Q panels, P panels) is read with aligned vector loads by the kernels. */
static int64_t r16(int64_t n)
{
    return (n + 15) / 16 * 16;
}

static int64_t group_floats(const pk_ctx *c)
{
    return r16(c->k_floats) + r16(c->dv_pad * c->p->Skv);
}

static int64_t scratch_floats(const pk_ctx *c)
{
    const attn_sdpa_problem *p = c->p;
    return r16(c->br * p->Dk) + r16((c->bc + c->lk) * c->lq) + r16(c->br * c->dv_pad) +
           3 * r16(c->br) + r16(c->lq * p->Dv) + r16(c->tmp_floats);
}

static pk_scratch scratch_at(const pk_ctx *c, float *base)
{
    pk_scratch w;
    w.q = base;
    w.s = w.q + r16(c->br * c->p->Dk);
    w.o = w.s + r16((c->bc + c->lk) * c->lq);
    w.m = w.o + r16(c->br * c->dv_pad);
    w.l = w.m + r16(c->br);
    w.alpha = w.l + r16(c->br);
    w.row = w.alpha + r16(c->br);
    w.tmp = w.row + r16(c->lq * c->p->Dv);
    return w;
}

static float *group_k(const pk_ctx *c, int64_t g)
{
    return c->kv + (g - c->g0) * group_floats(c);
}

static float *group_v(const pk_ctx *c, int64_t g)
{
    return group_k(c, g) + r16(c->k_floats);
}

/* Packs keys [r0, r0 + n) of group g (r0 a multiple of lk) and flags their V rows holding
 * Inf/NaN; those rows are zeroed in the pack (their terms are added exactly, see
 * attn_cpu_panel_pv). */
static void pack_rows(const pk_ctx *c, float *tmp, int64_t g, int64_t r0, int64_t n)
{
    const attn_sdpa_problem *p = c->p;
    int64_t b = g / p->Hkv, hk = g % p->Hkv, ld = p->Skv * c->lk;
    attn_cpu_pack_across(&p->k, b, hk, r0, n, p->Dk, c->lk, group_k(c, g) + r0 * p->Dk, tmp);
    float *v = group_v(c, g);
    attn_cpu_pack_along(&p->v, b, hk, r0, n, p->Dv, c->lk, ld, v + r0 * c->lk, tmp);
    attn_cpu_zero_nonfinite_keys(v, ld, c->dv_pad / c->lk, c->lk, r0, n,
                                 c->vbad + (g - c->g0) * p->Skv + r0);
}

static void pack_chunk(const pk_ctx *c, float *tmp, int64_t g0, int64_t g1)
{
    const int64_t step = (ATTN_CPU_PACK_ROWS / c->lk) * c->lk, skv = c->p->Skv;
    int64_t per = (skv + step - 1) / step, n = (g1 - g0) * per;
#pragma omp for schedule(static)
    for (int64_t it = 0; it < n; it++) {
        int64_t g = g0 + it / per, r0 = it % per * step;
        pack_rows(c, tmp, g, r0, skv - r0 < step ? skv - r0 : step);
    }
}

/* Rows [i0, i0 + nr) of head h, group g, batch b. */
typedef struct pk_item {
    int64_t g, h, b, i0, nr;
} pk_item;

void attn_cpu_mask_panel(const attn_sdpa_problem *p, float *s, int64_t lq, int64_t i,
                         int64_t rows, int64_t k0, int64_t nk)
{
    for (int64_t q = 0; q < rows; q++) {
        int64_t lo, hi;
        attn_band(p, i + q, &lo, &hi);
        lo = lo - k0 < 0 ? 0 : lo - k0 > nk ? nk : lo - k0;
        hi = hi - k0 < lo ? lo : hi - k0 > nk ? nk : hi - k0;
        for (int64_t j = 0; j < lo; j++)
            s[j * lq + q] = -INFINITY;
        for (int64_t j = hi; j < nk; j++)
            s[j * lq + q] = -INFINITY;
    }
}

/* The bands of the first and last row of query panel t of the item (rows i0 + t*lq ...). */
typedef struct pk_band {
    int64_t i, rows, lo_first, hi_first, lo_last, hi_last;
} pk_band;

static pk_band panel_band(const pk_ctx *c, const pk_item *it, int64_t t)
{
    pk_band b = {.i = it->i0 + t * c->lq};
    b.rows = it->nr - t * c->lq < c->lq ? it->nr - t * c->lq : c->lq;
    attn_band(c->p, b.i, &b.lo_first, &b.hi_first);
    attn_band(c->p, b.i + b.rows - 1, &b.lo_last, &b.hi_last);
    return b;
}

/* Query panel t of the item against keys [j0, j0 + nc): only the keys its rows can see, from
 * a multiple of lk (K is packed in lk-key panels). */
static void panel_step(const pk_ctx *c, pk_scratch *w, const pk_item *it, int64_t t, int64_t j0,
                       int64_t nc)
{
    const attn_sdpa_problem *p = c->p;
    const int64_t lq = c->lq, lk = c->lk;
    const pk_band b = panel_band(c, it, t);
    int64_t k0 = b.lo_first > j0 ? b.lo_first - b.lo_first % lk : j0;
    int64_t k1 = b.hi_last < j0 + nc ? b.hi_last : j0 + nc;
    if (k1 <= k0 || k1 <= b.lo_first)
        return; /* no row of the panel sees a key here: its state is unchanged */
    const int64_t nk = k1 - k0;
    const float *kp = group_k(c, it->g), *vp = group_v(c, it->g);
    float *qp = w->q + t * lq * p->Dk, *o = w->o + t * lq * c->dv_pad;
    float *m = w->m + t * lq, *l = w->l + t * lq;
    for (int64_t kb = 0; kb < nk; kb += lk)
        attn_cpu_ukr_panel(c->u, p->Dk, (float)p->scale, qp, kp + (k0 + kb) * p->Dk, 0.0f,
                           w->s + kb * lq);
    if (b.lo_last > k0 || b.hi_first < k1)
        attn_cpu_mask_panel(p, w->s, lq, b.i, b.rows, k0, nk);
    c->fns.softmax(w->s, nk, lq, m, l, w->alpha);
    const attn_cpu_panel_v v = {vp + k0 * lk, p->Skv * lk, it->b, it->g % p->Hkv, k0,
                                c->vbad + (it->g - c->g0) * p->Skv + k0};
    attn_cpu_panel_pv(p, c->u, &c->fns, &v, nk, w->s, w->alpha, w->row, o);
}

static void finish_item(const pk_ctx *c, pk_scratch *w, const pk_item *it)
{
    const attn_sdpa_problem *p = c->p;
    for (int64_t r0 = 0; r0 < it->nr; r0 += c->lq) {
        /* The panel's lanes into rows: each lane vector is read once (reading a row across
         * the lanes would touch a cache line per value). */
        const float *o = w->o + r0 * c->dv_pad;
        const int64_t rows = it->nr - r0 < c->lq ? it->nr - r0 : c->lq;
        attn_cpu_transpose_rows(o, c->lq, p->Dv, rows, p->Dv, w->row);
        for (int64_t q = 0; q < rows; q++) {
            float lse, *row = w->row + q * p->Dv;
            attn_cpu_finish_row(row, p->Dv, w->m[r0 + q], w->l[r0 + q], &lse);
            attn_cpu_store_row(&p->out, it->b, it->i0 + r0 + q, it->h, row, p->Dv);
            if (p->lse.t)
                *(float *)attn_cpu_elem(&p->lse, it->b, it->i0 + r0 + q, it->h, 0) = lse;
        }
    }
}

/* Keys [lo, hi) (lo a multiple of lk) in the fewest steps of at most bc keys, of equal length
 * (multiples of lk): a step of a few keys would cost a full step's fixed work. */
static int64_t piece(const pk_ctx *c, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return c->bc;
    int64_t n = (hi - lo + c->bc - 1) / c->bc, len = (hi - lo + n - 1) / n;
    return (len + c->lk - 1) / c->lk * c->lk;
}

static void run_item(const pk_ctx *c, pk_scratch *w, const pk_item *it)
{
    const attn_sdpa_problem *p = c->p;
    const int64_t n_panels = (it->nr + c->lq - 1) / c->lq;
    attn_cpu_pack_across(&p->q, it->b, it->h, it->i0, it->nr, p->Dk, c->lq, w->q, w->tmp);
    for (int64_t r = 0; r < n_panels * c->lq; r++) {
        w->m[r] = -INFINITY;
        w->l[r] = 0.0f;
    }
    memset(w->o, 0, (size_t)(n_panels * c->lq * c->dv_pad) * sizeof(float));
    /* Bands are monotone in i: the union over the tile's rows is within [lo(i0), hi(last)). */
    int64_t jlo, jhi, unused;
    attn_band(p, it->i0, &jlo, &unused);
    attn_band(p, it->i0 + it->nr - 1, &unused, &jhi);
    jhi = jhi < p->Skv ? jhi : p->Skv;
    jlo -= jlo % c->lk;
    if ((jhi - jlo) * (p->Dk + c->dv_pad) * (int64_t)sizeof(float) <= PK_NEAR_BYTES) {
        for (int64_t t = 0; t < n_panels; t++) {
            const pk_band b = panel_band(c, it, t);
            int64_t lo = b.lo_first - b.lo_first % c->lk, hi = b.hi_last < jhi ? b.hi_last : jhi;
            for (int64_t j0 = lo, step = piece(c, lo, hi); j0 < hi; j0 += step)
                panel_step(c, w, it, t, j0, hi - j0 < step ? hi - j0 : step);
        }
    } else {
        for (int64_t j0 = jlo, step = piece(c, jlo, jhi); j0 < jhi; j0 += step)
            for (int64_t t = 0; t < n_panels; t++)
                panel_step(c, w, it, t, j0, jhi - j0 < step ? jhi - j0 : step);
    }
    finish_item(c, w, it);
}

/* Work items of the groups [g0, g1): the last query tiles (the longest under causal
 * masks) first. */
static void run_items(const pk_ctx *c, pk_scratch *w, int64_t g0, int64_t g1)
{
    const attn_sdpa_problem *p = c->p;
    int64_t per_group = p->group * c->n_qt, n = (g1 - g0) * per_group;
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < n; k++) {
        int64_t g = g0 + k / per_group, rem = k % per_group;
        pk_item it = {.g = g, .b = g / p->Hkv, .h = (g % p->Hkv) * p->group + rem / c->n_qt};
        it.i0 = (c->n_qt - 1 - rem % c->n_qt) * c->br;
        it.nr = p->Sq - it.i0 < c->br ? p->Sq - it.i0 : c->br;
        run_item(c, w, &it);
    }
}

int attn_cpu_sdpa_packed_fits(const attn_sdpa_problem *p, const attn_cpu_ukr *u)
{
    return u->fn && u->lq % 16 == 0 && u->lq <= ATTN_CPU_PACK_ROWS &&
           u->lk <= ATTN_CPU_PACK_ROWS && !p->mask_add.t && !p->mask_bool.t && !(p->softcap > 0);
}

attn_status attn_cpu_sdpa_packed(const attn_sdpa_problem *p, const attn_cpu_ukr *u,
                                 int threads, int simd, int64_t br, int64_t bc)
{
    pk_ctx c = {.p = p, .u = u, .lq = u->lq, .lk = u->lk,
                .fns = attn_cpu_panel_fns_for(simd)};
    c.br = (br + c.lq - 1) / c.lq * c.lq;
    c.bc = bc / c.lk * c.lk;
    c.n_qt = (p->Sq + c.br - 1) / c.br;
    c.k_floats = (p->Skv + c.lk - 1) / c.lk * c.lk * p->Dk;
    c.dv_pad = (p->Dv + c.lk - 1) / c.lk * c.lk;
    c.tmp_floats = ATTN_CPU_PACK_ROWS * (p->Dk > p->Dv ? p->Dk : p->Dv);
    int64_t n_groups = p->B * p->Hkv, gf = group_floats(&c);
    int64_t chunk = gf > 0 ? PK_CHUNK_BYTES / (gf * (int64_t)sizeof(float)) : n_groups;
    chunk = chunk < 1 ? 1 : chunk > n_groups ? n_groups : chunk;
    int64_t per_thread = scratch_floats(&c);
    size_t total = (size_t)(per_thread * threads + gf * chunk);
    size_t bytes = total * sizeof(float) + (size_t)(chunk * p->Skv);
    float *mem = aligned_alloc(64, (bytes + 64) / 64 * 64);
    if (!mem)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes of scratch",
                         bytes);
    c.kv = mem + per_thread * threads;
    c.vbad = (uint8_t *)(mem + total);
#pragma omp parallel num_threads(threads)
    {
        pk_scratch w = scratch_at(&c, mem + per_thread * omp_get_thread_num());
        for (int64_t g0 = 0; g0 < n_groups; g0 += chunk) {
            int64_t g1 = g0 + chunk < n_groups ? g0 + chunk : n_groups;
#pragma omp single
            c.g0 = g0;
            pack_chunk(&c, w.tmp, g0, g1);
            run_items(&c, &w, g0, g1);
        }
    }
    free(mem);
    return ATTN_OK;
}
