/* attn_explain_topk.c - the top-k selection of the simulated study: the k most salient
 * eligible tokens of each row (word pieces; never padding, special tokens or punctuation),
 * ties broken by the earlier position, k a count or a fraction of the row's eligible tokens. */
#include "attn/attn_explain.h"

#include <math.h>
#include <stdlib.h>

#include "attn_backend_impl.h"

typedef struct rank_item {
    float score;
    int64_t pos;
} rank_item;

/* Higher score first; equal scores keep their order of position. */
static int by_score(const void *pa, const void *pb)
{
    const rank_item *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

/* Tokens kept of a row with n eligible ones. A fraction is rounded up (with a small slack so
 * that 0.1 x 30, which is 3.0000000000000004 in binary, keeps 3), at least 1 for a positive
 * fraction of a non-empty row; a fraction of 0 keeps nothing. */
static int64_t keep_count(double k, int as_fraction, int64_t n)
{
    if (!as_fraction)
        return k < (double)n ? (int64_t)k : n;
    if (k == 0.0 || n == 0)
        return 0;
    const int64_t c = (int64_t)ceil(k * (double)n - 1e-9);
    return c < 1 ? 1 : c > n ? n : c;
}

static attn_status check(int64_t B, int64_t S, const float *scores, const uint8_t *eligible,
                         double k, int as_fraction, const uint8_t *keep)
{
    if (!scores || !eligible || !keep)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_explain_top_k: NULL %s",
                         !scores ? "scores" : !eligible ? "eligible" : "keep");
    if (B < 1 || S < 1)
        return attn_fail(ATTN_ERR_SHAPE, "attn_explain_top_k: B %lld x S %lld must be positive",
                         (long long)B, (long long)S);
    if (B > INT64_MAX / S || (uint64_t)(B * S) > SIZE_MAX / sizeof(rank_item))
        return attn_fail(ATTN_ERR_OVERFLOW, "attn_explain_top_k: B %lld x S %lld overflows",
                         (long long)B, (long long)S);
    if (as_fraction != 0 && as_fraction != 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "attn_explain_top_k: as_fraction = %d must be 0 or 1", as_fraction);
    if (!(k >= 0.0 && isfinite(k)) || (as_fraction && k > 1.0) || (!as_fraction && k != floor(k)))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "attn_explain_top_k: k = %g must be %s", k,
                         as_fraction ? "a fraction in [0, 1]" : "a whole count >= 0");
    for (int64_t i = 0; i < B * S; i++) {
        if (eligible[i] > 1)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "attn_explain_top_k: eligible %d at [%lld, %lld] is not 0 or 1",
                             (int)eligible[i], (long long)(i / S), (long long)(i % S));
        /* Scores of tokens that cannot be kept are never compared. */
        if (eligible[i] && isnan(scores[i]))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "attn_explain_top_k: score at [%lld, %lld] is NaN",
                             (long long)(i / S), (long long)(i % S));
    }
    return ATTN_OK;
}

attn_status attn_explain_top_k(int64_t B, int64_t S, const float *scores,
                               const uint8_t *eligible, double k, int as_fraction,
                               uint8_t *keep)
{
    attn_status st = check(B, S, scores, eligible, k, as_fraction, keep);
    if (st != ATTN_OK)
        return st;
    rank_item *row = malloc((size_t)S * sizeof *row);
    if (!row)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_explain_top_k: %lld positions",
                         (long long)S);
    for (int64_t b = 0; b < B; b++) {
        const float *sc = scores + b * S;
        const uint8_t *el = eligible + b * S;
        uint8_t *kp = keep + b * S;
        int64_t n = 0;
        for (int64_t s = 0; s < S; s++) {
            kp[s] = 0;
            if (el[s])
                row[n++] = (rank_item){sc[s], s};
        }
        qsort(row, (size_t)n, sizeof *row, by_score);
        const int64_t c = keep_count(k, as_fraction, n);
        for (int64_t i = 0; i < c; i++)
            kp[row[i].pos] = 1;
    }
    free(row);
    return attn_ok();
}
