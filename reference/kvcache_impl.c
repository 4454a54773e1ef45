/* kvcache_impl.c - the attention over cache slots on the "ref" backend: the naive f64
 * definition of kvcache.c, rounded once into out's dtype and key_score (f32). */
#include "attn_backend_impl.h"
#include "attn_half.h"
#include "kvcache_ref.h"
#include "ref_alloc.h"

#include <stdio.h>
#include <stdlib.h>

/* Round the f64 results once into out and key_score. */
static void ref_store(const attn_kvcache_problem *p, const double *out, const double *ks)
{
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t h = 0; h < p->Hq; h++)
                for (int64_t d = 0; d < p->Dv; d++)
                    attn_store_f64(p->out.ptr, p->out.dtype, attn_at(&p->out, b, i, h, d),
                                   out[((b * p->Sq + i) * p->Hq + h) * p->Dv + d]);
    for (int64_t b = 0; ks && b < p->B; b++)
        for (int64_t j = 0; j < p->Nslot; j++)
            for (int64_t g = 0; g < p->Hkv; g++)
                attn_store_f64(p->key_score.ptr, ATTN_F32, attn_at(&p->key_score, b, j, g, 0),
                               ks[(b * p->Nslot + j) * p->Hkv + g]);
}

static attn_status ref_kvcache_run(attn_backend *be, const void *problem)
{
    const attn_kvcache_problem *p = problem;
    (void)be;
    const int have_ks = p->key_score.t != NULL;
    attn_ref_kvcache_out o = {
        .out = attn_ref_alloc(p->B * p->Sq * p->Hq, p->Dv),
        .key_score = have_ks ? attn_ref_alloc(p->B * p->Nslot, p->Hkv) : NULL,
    };
    attn_status st;
    if (!o.out || (have_ks && !o.key_score))
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate the f64 results");
    else
        st = attn_ref_kvcache(p, ATTN_REF_F64, &o);
    if (st == ATTN_OK)
        ref_store(p, o.out, o.key_score);
    free(o.out);
    free(o.key_score);
    return st;
}

static void ref_kvcache_impl_name(attn_backend *be, const void *problem, char *buf, size_t n)
{
    (void)be;
    (void)problem;
    snprintf(buf, n, "ref:kvcache_naive_f64");
}

const attn_op_impl attn_ref_kvcache_impl = {
    .supported = NULL,
    .run = ref_kvcache_run,
    .impl_name = ref_kvcache_impl_name,
};
