/* sdpa_key_score.c - the ground truth of the forward's key_score output: the attention
 * probability each key receives, summed over the query rows and the query heads of its KV
 * head, written as its definition (one row at a time, the row's softmax recomputed in full):
 *
 *   P[b, h, i, j] = exp(s_ij - m_i) / l_i           (sdpa.c's logits, max and sum of row i)
 *   key_score[b, j, g] = sum_{h in group g} sum_i w_{b,i,h} P[b, h, i, j]
 *
 * with w = 1 for the output itself; the conformance policy passes other row weights to get a
 * condition scale of each element. */
#include "sdpa_ref.h"

#include "attn_backend_impl.h"

#include <math.h>
#include <stdlib.h>

/* Add w * P[row] over the keys of one row to acc [Skv] (stride Hkv). A row with no visible
 * key adds nothing; a NaN logit makes the row's every visible key NaN. */
static void add_row(const attn_sdpa_problem *p, attn_ref_precision prec, const double *s,
                    double w, double *acc)
{
    double m = -INFINITY;
    for (int64_t j = 0; j < p->Skv; j++)
        m = isnan(s[j]) || isnan(m) ? NAN : fmax(m, s[j]);
    if (m == -INFINITY)
        return;
    double l = 0.0;
    for (int64_t j = 0; j < p->Skv; j++)
        if (s[j] != -INFINITY)
            l = rnd(prec, l + r_exp(prec, rnd(prec, s[j] - m)));
    for (int64_t j = 0; j < p->Skv; j++)
        if (s[j] != -INFINITY) {
            const double pj = rnd(prec, r_exp(prec, rnd(prec, s[j] - m)) / l);
            acc[j * p->Hkv] = rnd(prec, acc[j * p->Hkv] + rnd(prec, w * pj));
        }
}

attn_status attn_ref_sdpa_key_score(const attn_sdpa_problem *p, attn_ref_precision prec,
                                    const double *row_weight, double *ks)
{
    attn_ref_kv kv = {attn_ref_alloc(p->Skv, p->Dk), attn_ref_alloc(p->Skv, p->Dv)};
    double *q = attn_ref_alloc(p->Dk, 1), *s = attn_ref_alloc(p->Skv, 1);
    attn_status st = attn_ok();
    if (!kv.kt || !kv.v || !q || !s)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate key_score scratch");
    for (int64_t b = 0; st == ATTN_OK && b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++) {
            double *acc = ks + b * p->Skv * p->Hkv + g;
            for (int64_t j = 0; j < p->Skv; j++)
                acc[j * p->Hkv] = 0.0;
            attn_ref_sdpa_load_kv(p, b, g, &kv);
            for (int64_t h = g * p->group; h < (g + 1) * p->group; h++)
                for (int64_t i = 0; i < p->Sq; i++) {
                    attn_ref_sdpa_logits(p, prec, b, i, h, &kv, q, s, NULL);
                    add_row(p, prec, s,
                            row_weight ? row_weight[(b * p->Sq + i) * p->Hq + h] : 1.0, acc);
                }
        }
    free(kv.kt);
    free(kv.v);
    free(q);
    free(s);
    return st;
}
