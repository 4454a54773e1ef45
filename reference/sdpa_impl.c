/* sdpa_impl.c - SDPA on the "ref" backend: the naive f64 definition of sdpa.c (forward) and
 * sdpa_backward.c (gradients), their results rounded once into the caller's output dtypes
 * (and the LSE into f32). */
#include "attn_backend_impl.h"
#include "attn_half.h"
#include "sdpa_ref.h"

#include <stdlib.h>
#include <stdio.h>

/* Round the f64 results once into out (its dtype and strides) and lse (f32). */
static void ref_store(const attn_sdpa_problem *p, const double *out, const double *lse)
{
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t h = 0; h < p->Hq; h++) {
                const double *o = out + ((b * p->Sq + i) * p->Hq + h) * p->Dv;
                for (int64_t d = 0; d < p->Dv; d++)
                    attn_store_f64(p->out.ptr, p->out.dtype, attn_at(&p->out, b, i, h, d), o[d]);
                if (lse)
                    attn_store_f64(p->lse.ptr, ATTN_F32, attn_at(&p->lse, b, i, h, 0),
                                   lse[(b * p->Hq + h) * p->Sq + i]);
            }
}

/* Round the f64 gradient g [n][D] (dense, in the order of the operand's dims) once into o. */
static void store_dense(const attn_operand *o, const double *g)
{
    const int64_t *sh = o->t->shape;
    int64_t x = 0;
    for (int64_t a = 0; a < sh[0]; a++)
        for (int64_t b = 0; b < sh[1]; b++)
            for (int64_t c = 0; c < sh[2]; c++)
                for (int64_t d = 0; d < sh[3]; d++)
                    attn_store_f64(o->ptr, o->dtype, attn_at(o, a, b, c, d), g[x++]);
}

/* The backward: the naive f64 chain rule of sdpa_backward.c, rounded once into the gradients. */
static attn_status ref_backward_run(const attn_sdpa_problem *p)
{
    const int64_t *m = p->dmask_add.t ? p->dmask_add.t->shape : NULL;
    attn_ref_sdpa_grads g = {
        .dq = attn_ref_alloc(p->B * p->Sq * p->Hq, p->Dk),
        .dk = attn_ref_alloc(p->B * p->Skv * p->Hkv, p->Dk),
        .dv = attn_ref_alloc(p->B * p->Skv * p->Hkv, p->Dv),
        .dmask = m ? attn_ref_alloc(m[0] * m[1] * m[2], m[3]) : NULL,
    };
    attn_status st;
    if (!g.dq || !g.dk || !g.dv || (m && !g.dmask))
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate the f64 gradients");
    else
        st = attn_ref_sdpa_backward(p, ATTN_REF_F64, &g);
    if (st == ATTN_OK) {
        store_dense(&p->dq, g.dq);
        store_dense(&p->dk, g.dk);
        store_dense(&p->dv, g.dv);
        if (m)
            store_dense(&p->dmask_add, g.dmask);
    }
    free(g.dq);
    free(g.dk);
    free(g.dv);
    free(g.dmask);
    return st;
}

/* key_score: the f64 definition, rounded once into f32. */
static attn_status ref_key_score_run(const attn_sdpa_problem *p)
{
    double *ks = attn_ref_alloc(p->B * p->Skv, p->Hkv);
    attn_status st = ks ? attn_ref_sdpa_key_score(p, ATTN_REF_F64, NULL, ks)
                        : attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate key_score");
    for (int64_t b = 0; st == ATTN_OK && b < p->B; b++)
        for (int64_t j = 0; j < p->Skv; j++)
            for (int64_t g = 0; g < p->Hkv; g++)
                attn_store_f64(p->key_score.ptr, ATTN_F32, attn_at(&p->key_score, b, j, g, 0),
                               ks[(b * p->Skv + j) * p->Hkv + g]);
    free(ks);
    return st;
}

static attn_status ref_sdpa_run(attn_backend *be, const void *problem)
{
    const attn_sdpa_problem *p = problem;
    (void)be;
    if (p->backward)
        return ref_backward_run(p);
    /* out's element count fits int64 (validation), the lse rows are fewer */
    const int64_t rows = p->B * p->Sq * p->Hq;
    double *out = attn_ref_alloc(rows, p->Dv);
    double *lse = p->lse.t != NULL ? attn_ref_alloc(rows, 1) : NULL;
    attn_status st;
    if (out == NULL || (p->lse.t != NULL && lse == NULL))
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate %.3g bytes for results",
                       8.0 * (double)rows * ((double)p->Dv + 1.0));
    else
        st = attn_ref_sdpa(p, ATTN_REF_F64, out, lse, NULL);
    if (st == ATTN_OK && p->key_score.t != NULL)
        st = ref_key_score_run(p);
    if (st == ATTN_OK)
        ref_store(p, out, lse);
    free(out);
    free(lse);
    return st;
}

static void ref_sdpa_impl_name(attn_backend *be, const void *p, char *buf, size_t n)
{
    (void)be;
    snprintf(buf, n, ((const attn_sdpa_problem *)p)->backward ? "ref:naive_backward_f64"
                                                               : "ref:naive_f64");
}

const attn_op_impl attn_ref_sdpa_impl = {
    .supported = NULL,
    .run = ref_sdpa_run,
    .impl_name = ref_sdpa_impl_name,
};
