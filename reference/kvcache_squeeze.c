/* kvcache_squeeze.c - the brute-force optimal 3-means of L values (every split of the sorted
 * values into three runs, SSE computed directly from each run's mean): obviously correct, O(L^3),
 * the ground truth of the dynamic program in attn_kvcache_kmeans.c. */
#include "kvcache_policy_ref.h"

#include <math.h>
#include <stdlib.h>

static double run_sse(const double *v, int64_t a, int64_t b)
{
    double mean = 0, sse = 0;
    for (int64_t i = a; i < b; i++)
        mean += v[i];
    mean /= (double)(b - a);
    for (int64_t i = a; i < b; i++)
        sse += (v[i] - mean) * (v[i] - mean);
    return sse;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void attn_ref_kmeans3_brute(const double *x, int64_t L, int *cls, double *centres, double *sse)
{
    double *v = malloc((size_t)L * sizeof *v);
    if (!v)
        return;
    for (int64_t l = 0; l < L; l++)
        v[l] = x[l];
    qsort(v, (size_t)L, sizeof *v, cmp_double);
    /* runs [0, i), [i, j), [j, L); a split may not fall between equal values */
    int64_t bi = 0, bj = 0;
    double best = INFINITY;
    for (int64_t i = 1; i < L; i++)
        for (int64_t j = i + 1; j < L; j++) {
            if (v[i - 1] == v[i] || v[j - 1] == v[j])
                continue;
            const double e = run_sse(v, 0, i) + run_sse(v, i, j) + run_sse(v, j, L);
            if (e < best) {
                best = e;
                bi = i;
                bj = j;
            }
        }
    const int64_t lo[3] = {0, bi, bj}, hi[3] = {bi, bj, L};
    for (int c = 0; c < 3; c++) {
        double sum = 0;
        for (int64_t i = lo[c]; i < hi[c]; i++)
            sum += v[i];
        centres[c] = sum / (double)(hi[c] - lo[c]);
    }
    /* a value's class is the run holding it (equal values share a run) */
    for (int64_t l = 0; l < L; l++)
        cls[l] = x[l] < v[bi] ? 1 : x[l] < v[bj] ? 2 : 3;
    *sse = best;
    free(v);
}
