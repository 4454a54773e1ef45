/* transnormer_impl.c - TransNormer on the "ref" backend: the naive f64 definition of
 * transnormer.c, its result rounded once into the caller's output dtype and strides. */
#include "attn_backend_impl.h"
#include "attn_half.h"
#include "transnormer_ref.h"

#include <stdio.h>
#include <stdlib.h>

static attn_status ref_tn_run(attn_backend *be, const void *problem)
{
    const attn_transnormer_problem *p = problem;
    (void)be;
    const int64_t rows = p->B * p->S * p->Hq; /* out's element count fits int64 */
    double *out = attn_ref_alloc(rows, p->Dv);
    if (!out)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate %.3g bytes for results",
                         8.0 * (double)rows * (double)p->Dv);
    attn_status st = attn_ref_transnormer(p, ATTN_REF_F64, out, NULL, NULL);
    for (int64_t r = 0; st == ATTN_OK && r < rows; r++) {
        const int64_t b = r / (p->S * p->Hq), i = r / p->Hq % p->S, h = r % p->Hq;
        for (int64_t d = 0; d < p->Dv; d++)
            attn_store_f64(p->out.ptr, p->out.dtype, attn_at(&p->out, b, i, h, d),
                           out[r * p->Dv + d]);
    }
    free(out);
    return st;
}

static void ref_tn_impl_name(attn_backend *be, const void *p, char *buf, size_t n)
{
    (void)be;
    (void)p;
    snprintf(buf, n, "ref:transnormer_naive_f64");
}

const attn_op_impl attn_ref_transnormer_impl = {
    .supported = NULL,
    .run = ref_tn_run,
    .impl_name = ref_tn_impl_name,
};
