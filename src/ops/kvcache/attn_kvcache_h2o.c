/* attn_kvcache_h2o.c - H2O, per KV head: the `recent` most recent tokens stay; among the others
 * (the candidates) the lowest accumulated scores go until `budget` tokens remain, which keeps
 * the budget - recent heavy hitters. Equal scores evict the older token (lower position); a NaN
 * score ranks above every number (kept). */
#include "attn_kvcache_policy.h"

#include <math.h>

/* Candidate a goes before candidate b: lower score, then lower position. */
static int evicts_first(const attn_kvcache_slots *s, int64_t a, int64_t b)
{
    const double sa = s->score[a], sb = s->score[b];
    const int na = isnan(sa), nb = isnan(sb);
    if (na != nb)
        return nb;
    if (!na && sa != sb)
        return sa < sb;
    return s->pos[a] < s->pos[b];
}

static void h2o_choose(const attn_kvcache_slots *s, int64_t g, const int64_t *live_e,
                       int64_t live, unsigned char *evict, int64_t *scratch,
                       attn_kvcache_memo *memo)
{
    (void)g;
    const int64_t ncand = live - s->recent; /* >= live - budget since recent <= budget */
    /* the candidates: every position up to the ncand-th, i.e. outside the recent window */
    int64_t lo, last;
    attn_kvcache_rank_range(s, live_e, live, 0, ncand - 1, memo, scratch, &lo, &last);
    int64_t *cand = scratch, n = 0;
    for (int64_t i = 0; i < live; i++)
        if (s->pos[live_e[i]] <= last)
            cand[n++] = live_e[i];
    if (live - s->budget == 1) { /* a decode step: one victim, one scan */
        int64_t v = cand[0];
        for (int64_t i = 1; i < n; i++)
            if (evicts_first(s, cand[i], v))
                v = cand[i];
        evict[v] = 1;
        return;
    }
    attn_kvcache_sort(cand, n, cand + n, evicts_first, s);
    for (int64_t i = 0; i < live - s->budget; i++)
        evict[cand[i]] = 1;
}

const attn_kvcache_policy attn_kvcache_policy_h2o = {"h2o", h2o_choose};
