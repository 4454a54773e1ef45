/* attn_kvcache_policy.c - what the eviction policies share: the table from attn_kv_policy to
 * its policy, a stable sort of slot entries, the live slots of a KV head in position order
 * (slots need not be in position order once freed slots are refilled), order statistics of
 * positions without a sort, and marking a position range as victims. */
#include "attn_kvcache_policy.h"

#include <string.h>

const attn_kvcache_policy *attn_kvcache_policy_of(attn_kv_policy p)
{
    static const attn_kvcache_policy *const table[] = {
        [ATTN_KV_FULL] = &attn_kvcache_policy_full,
        [ATTN_KV_SLIDING] = &attn_kvcache_policy_sliding,
        [ATTN_KV_STREAMING] = &attn_kvcache_policy_streaming,
        [ATTN_KV_H2O] = &attn_kvcache_policy_h2o,
    };
    return table[p];
}

void attn_kvcache_sort(int64_t *a, int64_t n, int64_t *tmp, attn_kvcache_before_fn before,
                       const attn_kvcache_slots *s)
{
    /* bottom-up: merge runs of w into tmp, copy back */
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            const int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = before(s, a[j], a[i]) ? a[j++] : a[i++];
            while (i < mid)
                tmp[k++] = a[i++];
            while (j < hi)
                tmp[k++] = a[j++];
        }
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
}

/* Positions are distinct within a head, so this order is total. */
static int by_pos(const attn_kvcache_slots *s, int64_t a, int64_t b)
{
    return s->pos[a] < s->pos[b];
}

int64_t attn_kvcache_live_order(const attn_kvcache_slots *s, int64_t g, int64_t *order,
                                int64_t *tmp)
{
    int64_t n = 0, sorted = 1;
    for (int64_t j = 0; j < s->nslot; j++) {
        const int64_t e = j * s->hkv + g;
        if (s->pos[e] < 0)
            continue;
        if (n && s->pos[e] < s->pos[order[n - 1]])
            sorted = 0;
        order[n++] = e;
    }
    if (!sorted)
        attn_kvcache_sort(order, n, tmp, by_pos, s);
    return n;
}

int64_t attn_kvcache_live_entries(const attn_kvcache_slots *s, int64_t g, int64_t *live_e)
{
    int64_t n = 0;
    for (int64_t j = 0; j < s->nslot; j++)
        if (s->pos[j * s->hkv + g] >= 0)
            live_e[n++] = j * s->hkv + g;
    return n;
}

int64_t attn_kvcache_nth_pos(const attn_kvcache_slots *s, const int64_t *e, int64_t n, int64_t k,
                             int64_t *scratch)
{
    int64_t *a = scratch, lo = 0, hi = n - 1;
    for (int64_t i = 0; i < n; i++)
        a[i] = s->pos[e[i]];
    while (lo < hi) {
        /* Hoare partition around the median of three; a[lo..hi] holds the k-th */
        const int64_t x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
        const int64_t piv = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < piv)
                i++;
            while (a[j] > piv)
                j--;
            if (i <= j) {
                const int64_t t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

void attn_kvcache_evict_pos_range(const attn_kvcache_slots *s, const int64_t *e, int64_t n,
                                  int64_t lo, int64_t hi, unsigned char *evict)
{
    for (int64_t i = 0; i < n; i++)
        if (s->pos[e[i]] >= lo && s->pos[e[i]] <= hi)
            evict[e[i]] = 1;
}

int64_t attn_kvcache_count_pos_range(const attn_kvcache_slots *s, const int64_t *e, int64_t n,
                                     int64_t lo, int64_t hi)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        c += s->pos[e[i]] >= lo && s->pos[e[i]] <= hi;
    return c;
}

/* The positions of ranks [rlo, rhi]; rlo 0 means everything below too. */
static void ranks_to_range(const attn_kvcache_slots *s, const int64_t *e, int64_t n, int64_t rlo,
                           int64_t rhi, int64_t *scratch, int64_t *lo, int64_t *hi)
{
    *lo = rlo == 0 ? INT64_MIN : attn_kvcache_nth_pos(s, e, n, rlo, scratch);
    *hi = attn_kvcache_nth_pos(s, e, n, rhi, scratch);
}

void attn_kvcache_rank_range(const attn_kvcache_slots *s, const int64_t *e, int64_t n,
                             int64_t rlo, int64_t rhi, attn_kvcache_memo *memo,
                             int64_t *scratch, int64_t *lo, int64_t *hi)
{
    if (memo->set &&
        attn_kvcache_count_pos_range(s, e, n, memo->lo, memo->hi) == rhi - rlo + 1) {
        /* the same ranks hold the same positions here only if the positions below agree too */
        if (rlo == 0 || attn_kvcache_count_pos_range(s, e, n, INT64_MIN, memo->lo - 1) == rlo) {
            *lo = memo->lo;
            *hi = memo->hi;
            return;
        }
    }
    ranks_to_range(s, e, n, rlo, rhi, scratch, lo, hi);
    *memo = (attn_kvcache_memo){1, *lo, *hi};
}
