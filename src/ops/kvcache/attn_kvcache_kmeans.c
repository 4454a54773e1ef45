/* attn_kvcache_kmeans.c - the exact optimal 1-D k-means (attn_kvcache_kmeans1d) that
 * SqueezeAttention's layer clustering uses: dynamic programming over the sorted values,
 * O(k L^2) time and O(k L) memory. Clusters are contiguous runs of the sorted values that never
 * split equal values; among equally good split points the lower index wins. */
#include "attn_backend_impl.h"

#include <math.h>
#include <stdlib.h>

/* A value and its index, sorted by value, then index (deterministic). */
typedef struct kv_item {
    double v;
    int64_t i;
} kv_item;

static int by_value(const void *pa, const void *pb)
{
    const kv_item *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v < b->v ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* Within-cluster sum of squares of sorted values [j, i) from prefix sums of the values
 * shifted by their mean (small sums: little cancellation). */
static double run_sse(const double *s1, const double *s2, int64_t j, int64_t i)
{
    const double a = s1[i] - s1[j], c = s2[i] - s2[j] - a * a / (double)(i - j);
    return c > 0 ? c : 0;
}

static attn_status kmeans_check(const double *x, int64_t L, int k, const int *cls)
{
    if (!x || !cls)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_kmeans1d: %s is NULL",
                         x ? "cls" : "x");
    if (L < 1)
        return attn_fail(ATTN_ERR_SHAPE, "attn_kvcache_kmeans1d: L = %lld values, need >= 1",
                         (long long)L);
    if (k < 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "attn_kvcache_kmeans1d: k = %d, need >= 1",
                         k);
    for (int64_t l = 0; l < L; l++)
        if (!isfinite(x[l]))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "attn_kvcache_kmeans1d: x[%lld] = %g is not finite", (long long)l,
                             x[l]);
    return ATTN_OK;
}

/* The DP over sorted values v[0..L): best[i] = least SSE of v[0..i) in m clusters, arg[m][i]
 * its last split. A split point j must fall between distinct values (v[j-1] < v[j]). */
static void kmeans_dp(const double *v, const double *s1, const double *s2, int64_t L, int k,
                      double *best, double *next, int64_t *arg)
{
    for (int64_t i = 0; i <= L; i++)
        best[i] = i > 0 && (i == L || v[i - 1] < v[i]) ? run_sse(s1, s2, 0, i) : INFINITY;
    for (int m = 2; m <= k; m++) {
        int64_t *a = arg + (size_t)m * (size_t)(L + 1);
        for (int64_t i = 0; i <= L; i++) {
            next[i] = INFINITY;
            a[i] = -1;
            if (i < m || (i < L && !(v[i - 1] < v[i])))
                continue;
            for (int64_t j = m - 1; j < i; j++) {
                if (best[j] == INFINITY)
                    continue;
                const double c = best[j] + run_sse(s1, s2, j, i);
                if (c < next[i]) {
                    next[i] = c;
                    a[i] = j;
                }
            }
        }
        for (int64_t i = 0; i <= L; i++)
            best[i] = next[i];
    }
}

attn_status attn_kvcache_kmeans1d(const double *x, int64_t L, int k, int *cls, double *centres)
{
    ATTN_TRY(kmeans_check(x, L, k, cls));
    size_t nbytes;
    if (__builtin_mul_overflow((size_t)k + 1, (size_t)L + 1, &nbytes) ||
        __builtin_mul_overflow(nbytes, sizeof(int64_t), &nbytes))
        return attn_fail(ATTN_ERR_OVERFLOW, "attn_kvcache_kmeans1d: k x L overflows");
    kv_item *it = malloc((size_t)L * sizeof *it);
    int64_t *idx = malloc((size_t)L * sizeof *idx), *arg = malloc(nbytes);
    double *v = malloc((size_t)L * sizeof *v), *pre = malloc(4 * ((size_t)L + 1) * sizeof *pre);
    attn_status st = ATTN_OK;
    if (!it || !idx || !arg || !v || !pre) {
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_kvcache_kmeans1d: out of memory");
        goto done;
    }
    for (int64_t l = 0; l < L; l++)
        it[l] = (kv_item){x[l], l};
    qsort(it, (size_t)L, sizeof *it, by_value);
    int64_t distinct = 0;
    double mean = 0;
    for (int64_t l = 0; l < L; l++) {
        v[l] = it[l].v;
        idx[l] = it[l].i;
        distinct += l == 0 || v[l - 1] < v[l];
        mean += v[l] / (double)L;
    }
    if (k > distinct) {
        st = attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                       "attn_kvcache_kmeans1d: k = %d exceeds the %lld distinct values", k,
                       (long long)distinct);
        goto done;
    }
    double *s1 = pre, *s2 = pre + L + 1, *best = pre + 2 * (L + 1), *next = pre + 3 * (L + 1);
    s1[0] = s2[0] = 0;
    for (int64_t l = 0; l < L; l++) {
        s1[l + 1] = s1[l] + (v[l] - mean);
        s2[l + 1] = s2[l] + (v[l] - mean) * (v[l] - mean);
    }
    kmeans_dp(v, s1, s2, L, k, best, next, arg);
    /* Walk the splits back from the end: cluster m holds sorted values [j, i). */
    for (int64_t m = k, i = L; m >= 1; m--) {
        const int64_t j = m > 1 ? arg[(size_t)m * (size_t)(L + 1) + (size_t)i] : 0;
        double sum = 0;
        for (int64_t t = j; t < i; t++) {
            cls[idx[t]] = (int)m;
            sum += v[t];
        }
        if (centres)
            centres[m - 1] = sum / (double)(i - j);
        i = j;
    }
    attn_ok();
done:
    free(it);
    free(idx);
    free(arg);
    free(v);
    free(pre);
    return st;
}
