/* attn_kvcache_squeeze.c - SqueezeAttention's per-layer budgets: a layer's importance (the
 * mean cosine similarity of its hidden states before and after the attention block), the 3-means
 * of the L similarities, and the budget rule that gives the least important cluster the
 * fraction p and every other layer what keeps the total at L b_init base. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_half.h"
#include "attn_view.h"

#include <math.h>
#include <stdlib.h>

attn_kvcache_squeeze_desc attn_kvcache_squeeze_desc_default(void)
{
    attn_kvcache_squeeze_desc d = {
        .b_init = 0.2,
        .p = 0.1,
        .base = 0, /* must be set */
        .min_budget = 1,
        .max_budget = INT64_MAX,
        .round_bf16 = 0,
        .reserved = {0},
    };
    return d;
}

/* x and y: host views of the same shape [B, P, H, d]. */
static attn_status similarity_check(const attn_tensor *x, const attn_tensor *y, const double *s,
                                    attn_operand *ox, attn_operand *oy)
{
    static const char *const fn = "attn_kvcache_squeeze_similarity";
    if (!x || !y || !s)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: %s is NULL", fn, !x ? "x" : !y ? "y" : "s");
    attn_span sx, sy;
    ATTN_TRY(attn_view_check(x, "x", ATTN_DTYPES_FLOAT, attn_dims_bshd, 0, &sx));
    ATTN_TRY(attn_view_check(y, "y", ATTN_DTYPES_FLOAT, attn_dims_bshd, 0, &sy));
    if (!x->data || !y->data)
        return attn_fail(ATTN_ERR_BUFFER, "%s: %s must be host memory (data, not a buffer)", fn,
                         !x->data ? "x" : "y");
    for (int i = 0; i < 4; i++)
        ATTN_TRY(attn_view_expect_dim(y, "y", attn_dims_bshd, i, x->shape[i], "the shape of x"));
    attn_operand_fill(ox, x);
    attn_operand_fill(oy, y);
    return ATTN_OK;
}

attn_status attn_kvcache_squeeze_similarity(const attn_tensor *x, const attn_tensor *y,
                                            double *s)
{
    attn_operand ox, oy;
    ATTN_TRY(similarity_check(x, y, s, &ox, &oy));
    const int64_t B = x->shape[0], P = x->shape[1], H = x->shape[2], D = x->shape[3];
    for (int64_t b = 0; b < B; b++) {
        double sum = 0;
        for (int64_t t = 0; t < P; t++) {
            double xy = 0, xx = 0, yy = 0;
            for (int64_t h = 0; h < H; h++)
                for (int64_t d = 0; d < D; d++) {
                    const double a = attn_load_f64(ox.ptr, ox.dtype, attn_at(&ox, b, t, h, d));
                    const double c = attn_load_f64(oy.ptr, oy.dtype, attn_at(&oy, b, t, h, d));
                    xy += a * c;
                    xx += a * a;
                    yy += c * c;
                }
            /* torch.nn.functional.cosine_similarity's eps on the product of the norms */
            sum += xy / fmax(sqrt(xx) * sqrt(yy), 1e-8);
        }
        s[b] = sum / (double)P;
    }
    return attn_ok();
}

static attn_status budgets_check(const attn_kvcache_squeeze_desc *d, const double *s, int64_t L,
                                 const int64_t *budget)
{
    static const char *const fn = "attn_kvcache_squeeze_budgets";
    if (!d || !s || !budget)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: %s is NULL", fn,
                         !d ? "desc" : !s ? "s" : "budget");
    ATTN_TRY(ATTN_DESC_RESERVED(d, "attn_kvcache_squeeze_desc_default"));
    ATTN_TRY(attn_desc_flag("desc.round_bf16", d->round_bf16));
    if (L < 1)
        return attn_fail(ATTN_ERR_SHAPE, "%s: L = %lld layers, need >= 1", fn, (long long)L);
    if (!(d->b_init > 0) || !isfinite(d->b_init))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: desc.b_init = %g must be finite and > 0",
                         fn, d->b_init);
    if (!(d->p > 0 && d->p <= d->b_init))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "%s: desc.p = %g must satisfy 0 < p <= b_init (%g)", fn, d->p, d->b_init);
    if (d->base < 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: desc.base = %lld must be >= 1", fn,
                         (long long)d->base);
    if (d->min_budget < 1 || d->max_budget < d->min_budget)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "%s: desc.min_budget = %lld, max_budget = %lld: need 1 <= min <= max", fn,
                         (long long)d->min_budget, (long long)d->max_budget);
    for (int64_t l = 0; l < L; l++)
        if (!isfinite(s[l]))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: s[%lld] = %g is not finite", fn,
                             (long long)l, s[l]);
    return ATTN_OK;
}

/* (int64)(ratio * base) (truncation toward zero, as the authors' int()), clamped. */
static int64_t budget_of(const attn_kvcache_squeeze_desc *d, double ratio)
{
    const double b = trunc(ratio * (double)d->base);
    if (b >= (double)d->max_budget)
        return d->max_budget;
    return b <= (double)d->min_budget ? d->min_budget : (int64_t)b;
}

/* Whether the values hold at least 3 distinct ones (else 3-means is undefined). */
static int three_distinct(const double *v, int64_t L)
{
    int64_t n = 0;
    double seen[2];
    for (int64_t l = 0; l < L && n < 3; l++) {
        int fresh = 1;
        for (int64_t i = 0; i < n; i++)
            fresh &= v[l] != seen[i];
        if (fresh && n < 2)
            seen[n] = v[l];
        n += fresh;
    }
    return n >= 3;
}

attn_status attn_kvcache_squeeze_budgets(const attn_kvcache_squeeze_desc *d, const double *s,
                                         int64_t L, int64_t *budget, int *cls)
{
    ATTN_TRY(budgets_check(d, s, L, budget));
    double *v = malloc((size_t)L * sizeof *v);
    int *c = malloc((size_t)L * sizeof *c);
    if (!v || !c) {
        free(v);
        free(c);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_kvcache_squeeze_budgets: out of memory");
    }
    for (int64_t l = 0; l < L; l++)
        v[l] = d->round_bf16 ? (double)attn_bf16_to_f32(attn_f64_to_bf16(s[l])) : s[l];
    attn_status st = ATTN_OK;
    int64_t n3 = 0;
    if (three_distinct(v, L)) {
        st = attn_kvcache_kmeans1d(v, L, 3, c, NULL);
        for (int64_t l = 0; l < L && st == ATTN_OK; l++)
            n3 += c[l] == 3;
    }
    if (st == ATTN_OK) {
        /* n3 == 0: fewer than 3 distinct similarities, every layer gets b_init (class 1) */
        const double a = n3 ? ((double)L * d->b_init - (double)n3 * d->p) / (double)(L - n3)
                            : d->b_init;
        for (int64_t l = 0; l < L; l++) {
            const int k = n3 ? c[l] : 1;
            budget[l] = budget_of(d, k == 3 ? d->p : a);
            if (cls)
                cls[l] = k;
        }
        attn_ok();
    }
    free(v);
    free(c);
    return st;
}
