/* sdpa.c - the ground truth: scaled dot-product attention written as its definition, one
 * query row at a time, in plain loops (no BLIS, no tiling, no helpers shared with the fast
 * backends). For query i of batch b and head h, with KV head g = h / (Hq / Hkv):
 *
 *   s_j = scale * q_i . k_j                      logit of every key j
 *   s_j = cap * tanh(s_j / cap)                  soft-cap, when cap > 0
 *   s_j = s_j + mask_add[b, i, h, j]             additive mask, when present
 *   s_j = -inf                                   when key j is not visible (band, bool mask)
 *   m   = max_j s_j,  p_j = exp(s_j - m),  l = sum_j p_j
 *   o_i = sum_j p_j v_j / l,  lse_i = m + log l,  absmag_i = sum_j p_j |v_j| / l
 *
 * ATTN_REF_F64 accumulates in double. ATTN_REF_F32 runs the very same code with every
 * intermediate rounded to float (rnd(), ref_precision.h), which makes it behave like a naive
 * float implementation; the conformance policy calibrates fast backends against it.
 * See docs/sdpa.md. */
#include "sdpa_ref.h"

#include "attn_backend_impl.h"
#include "attn_half.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- visibility ---------------------------------------------------------------------------- */

/* Whether query i (batch b, head h) may see key j. The query sits at the aligned key position
 * pos = i + q_offset (0 for top-left, Skv - Sq for bottom-right alignment). Written out here on
 * purpose instead of using attn_band(): the ground truth must not share the fast backends'
 * helpers (sdpa_flash.c uses attn_band, so the flash-vs-naive tests check it). */
static int ref_visible(const attn_sdpa_problem *p, int64_t b, int64_t i, int64_t h, int64_t j)
{
    /* Distance of key j behind the query (negative: ahead), compared with the windows as is:
     * pos - window_left or pos + window_right could overflow for windows near INT64_MAX. */
    int64_t past = i + p->q_offset - j;
    if (p->window_left >= 0 && past > p->window_left)
        return 0; /* further in the past than the left window */
    if (p->causal && past < 0)
        return 0; /* in the future (validation also sets window_right = 0) */
    if (p->window_right >= 0 && -past > p->window_right)
        return 0; /* further in the future than the right window */
    if (p->mask_bool.t != NULL &&
        attn_load_f64(p->mask_bool.ptr, ATTN_U8, attn_at(&p->mask_bool, b, i, h, j)) == 0.0)
        return 0; /* hidden by the boolean mask */
    return 1;
}

/* ---- one query row ------------------------------------------------------------------------- */

typedef attn_ref_kv ref_kv;

/* Per-thread scratch for one row: q [Dk], logits s [Skv], accumulators acc and mag [Dv];
 * dcap [Skv] (the backward's soft-cap derivatives) or NULL. */
typedef struct ref_row {
    double *q, *s, *acc, *mag, *dcap;
} ref_row;

void attn_ref_sdpa_load_kv(const attn_sdpa_problem *p, int64_t b, int64_t g, attn_ref_kv *kv)
{
    const attn_operand *k = &p->k, *v = &p->v;
    for (int64_t j = 0; j < p->Skv; j++) {
        for (int64_t d = 0; d < p->Dk; d++)
            kv->kt[d * p->Skv + j] = attn_load_f64(k->ptr, k->dtype, attn_at(k, b, j, g, d));
        for (int64_t d = 0; d < p->Dv; d++)
            kv->v[j * p->Dv + d] = attn_load_f64(v->ptr, v->dtype, attn_at(v, b, j, g, d));
    }
}

/* s_j for every key j of row (b, i, h): scale, soft-cap, additive mask; -inf where hidden. */
static inline void ref_logits(const attn_sdpa_problem *p, attn_ref_precision prec, int64_t b,
                              int64_t i, int64_t h, const ref_kv *kv, ref_row *r)
{
    const int64_t skv = p->Skv;
    for (int64_t d = 0; d < p->Dk; d++)
        r->q[d] = attn_load_f64(p->q.ptr, p->q.dtype, attn_at(&p->q, b, i, h, d));

    /* Only the span [first, last] of visible keys costs dot products. */
    int64_t first = skv, last = -1;
    for (int64_t j = 0; j < skv; j++) {
        if (ref_visible(p, b, i, h, j)) {
            first = first < j ? first : j;
            last = j;
        }
    }

    /* q . k_j over the span at once: each s_j is summed over d in order, exactly as a per-key
     * loop would, but this loop order lets the compiler vectorise across keys. */
    for (int64_t j = first; j <= last; j++)
        r->s[j] = 0.0;
    for (int64_t d = 0; d < p->Dk; d++) {
        const double qd = r->q[d];
        const double *kd = kv->kt + d * skv;
        for (int64_t j = first; j <= last; j++)
            r->s[j] = rnd(prec, r->s[j] + rnd(prec, qd * kd[j]));
    }

    /* Hidden keys get -inf whatever their dot product was (a NaN or Inf stored behind a mask
     * must not leak in); visible ones get scale, soft-cap and additive mask, in that order. */
    const double scale = rnd(prec, p->scale);
    const double cap = rnd(prec, p->softcap);
    for (int64_t j = 0; j < skv; j++) {
        if (j < first || j > last || !ref_visible(p, b, i, h, j)) {
            r->s[j] = -INFINITY;
            continue;
        }
        double s = rnd(prec, scale * r->s[j]);
        if (p->softcap > 0) {
            const double t = r_tanh(prec, rnd(prec, s / cap));
            s = rnd(prec, cap * t);
            if (r->dcap)
                r->dcap[j] = rnd(prec, 1.0 - rnd(prec, t * t)); /* d(cap tanh(x/cap))/dx */
        } else if (r->dcap) {
            r->dcap[j] = 1.0;
        }
        if (p->mask_add.t != NULL)
            s = rnd(prec, s + attn_load_f64(p->mask_add.ptr, p->mask_add.dtype,
                                            attn_at(&p->mask_add, b, i, h, j)));
        r->s[j] = s;
    }
}

void attn_ref_sdpa_logits(const attn_sdpa_problem *p, attn_ref_precision prec, int64_t b,
                          int64_t i, int64_t h, const attn_ref_kv *kv, double *q, double *s,
                          double *dcap)
{
    ref_row r = {.q = q, .s = s, .dcap = dcap};
    ref_logits(p, prec, b, i, h, kv, &r);
}

/* Softmax over the logits and the weighted sums of V for one row. A NaN logit makes m NaN and
 * so the whole row NaN. A key with s_j = -inf has p_j = 0 and is skipped (its v_j is not read,
 * so non-finite values behind hidden keys cannot leak in). A row whose every logit is -inf
 * has no visible key: output 0, lse -inf, absmag 0. */
static inline void ref_softmax_pv(const attn_sdpa_problem *p, attn_ref_precision prec,
                                  const ref_kv *kv, ref_row *r, double *out, double *lse,
                                  double *absmag)
{
    const int64_t dv = p->Dv;
    double m = -INFINITY;
    for (int64_t j = 0; j < p->Skv; j++) {
        if (isnan(r->s[j])) {
            m = NAN;
            break;
        }
        if (r->s[j] > m)
            m = r->s[j];
    }

    for (int64_t d = 0; d < dv; d++)
        r->acc[d] = r->mag[d] = 0.0;
    if (m == -INFINITY) {
        for (int64_t d = 0; d < dv; d++) {
            out[d] = 0.0;
            if (absmag)
                absmag[d] = 0.0;
        }
        if (lse)
            *lse = -INFINITY;
        return;
    }

    double l = 0.0;
    for (int64_t j = 0; j < p->Skv; j++) {
        if (r->s[j] == -INFINITY)
            continue;
        const double pj = r_exp(prec, rnd(prec, r->s[j] - m));
        const double *vj = kv->v + j * dv;
        l = rnd(prec, l + pj);
        for (int64_t d = 0; d < dv; d++)
            r->acc[d] = rnd(prec, r->acc[d] + rnd(prec, pj * vj[d]));
        if (absmag)
            for (int64_t d = 0; d < dv; d++)
                r->mag[d] = rnd(prec, r->mag[d] + rnd(prec, pj * fabs(vj[d])));
    }

    for (int64_t d = 0; d < dv; d++) {
        out[d] = rnd(prec, r->acc[d] / l);
        if (absmag)
            absmag[d] = rnd(prec, r->mag[d] / l);
    }
    if (lse)
        *lse = rnd(prec, m + r_log(prec, l));
}

/* One query row: its output, lse and absmag. */
typedef struct ref_dst {
    double *out, *lse, *absmag;
} ref_dst;

static inline void ref_query_row(const attn_sdpa_problem *p, attn_ref_precision prec, int64_t b,
                                 int64_t i, int64_t h, const ref_kv *kv, ref_row *r, ref_dst d)
{
    ref_logits(p, prec, b, i, h, kv, r);
    ref_softmax_pv(p, prec, kv, r, d.out, d.lse, d.absmag);
}

/* The same row code compiled once per precision, so the F64 path carries no rounding tests
 * in its inner loops (about 1.6x faster) while the source stays a single copy. */
static void ref_query_row_f64(const attn_sdpa_problem *p, int64_t b, int64_t i, int64_t h,
                              const ref_kv *kv, ref_row *r, ref_dst d)
{
    ref_query_row(p, ATTN_REF_F64, b, i, h, kv, r, d);
}

static void ref_query_row_f32(const attn_sdpa_problem *p, int64_t b, int64_t i, int64_t h,
                              const ref_kv *kv, ref_row *r, ref_dst d)
{
    ref_query_row(p, ATTN_REF_F32, b, i, h, kv, r, d);
}

/* ---- driver -------------------------------------------------------------------------------- */

static int ref_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int ref_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Scratch doubles of one row; INT64_MAX when that overflows (then allocation fails). */
static int64_t ref_row_doubles(const attn_sdpa_problem *p)
{
    int64_t n;
    if (__builtin_add_overflow(p->Dk, p->Skv, &n) || __builtin_add_overflow(n, p->Dv, &n) ||
        __builtin_add_overflow(n, p->Dv, &n))
        return INT64_MAX;
    return n;
}

static ref_row ref_row_at(const attn_sdpa_problem *p, double *scratch, int t)
{
    ref_row r;
    r.q = scratch + (int64_t)t * ref_row_doubles(p);
    r.s = r.q + p->Dk;
    r.acc = r.s + p->Skv;
    r.mag = r.acc + p->Dv;
    r.dcap = NULL;
    return r;
}

attn_status attn_ref_sdpa(const attn_sdpa_problem *p, attn_ref_precision prec, double *out,
                          double *lse, double *absmag)
{
    const int nthreads = ref_max_threads();
    ref_kv kv;
    kv.kt = attn_ref_alloc(p->Skv, p->Dk);
    kv.v = attn_ref_alloc(p->Skv, p->Dv);
    double *scratch = attn_ref_alloc(nthreads, ref_row_doubles(p));
    if (!kv.kt || !kv.v || !scratch) {
        free(kv.kt);
        free(kv.v);
        free(scratch);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate %.3g bytes of scratch",
                         8.0 * ((double)p->Skv * ((double)p->Dk + (double)p->Dv) +
                                nthreads * (double)ref_row_doubles(p)));
    }

    for (int64_t b = 0; b < p->B; b++) {
        for (int64_t g = 0; g < p->Hkv; g++) {
            attn_ref_sdpa_load_kv(p, b, g, &kv);
            /* every (query head of this KV head, query row) pair is independent; tiny heads
             * stay on one thread, where starting a team would cost more than the work */
            const int64_t rows = p->group * p->Sq;
#ifdef _OPENMP
            const int threaded = rows > 1 && (double)rows * (double)p->Skv *
                                                  ((double)p->Dk + (double)p->Dv) >= 65536.0;
#pragma omp parallel for schedule(dynamic, 4) num_threads(nthreads) if (threaded)
#endif
            for (int64_t x = 0; x < rows; x++) {
                const int64_t h = g * p->group + x / p->Sq;
                const int64_t i = x % p->Sq;
                const int64_t o = ((b * p->Sq + i) * p->Hq + h) * p->Dv;
                ref_row r = ref_row_at(p, scratch, ref_thread_num());
                ref_dst dst = {out + o, lse ? lse + (b * p->Hq + h) * p->Sq + i : NULL,
                               absmag ? absmag + o : NULL};
                if (prec == ATTN_REF_F32)
                    ref_query_row_f32(p, b, i, h, &kv, &r, dst);
                else
                    ref_query_row_f64(p, b, i, h, &kv, &r, dst);
            }
        }
    }
    free(kv.kt);
    free(kv.v);
    free(scratch);
    return attn_ok();
}
