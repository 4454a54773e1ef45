/* ref_backend.c - the "ref" backend: the naive f64 definition of reference/ref_sdpa.c behind
 * the common backend interface, so the ground truth is reachable through the public API.
 * Results are computed in double and rounded once into the caller's output dtype. */
#include "attn_backend_impl.h"
#include "attn_half.h"
#include "ref_sdpa.h"

#include <stdio.h>
#include <stdlib.h>

static attn_status ref_open(attn_backend *be, const char *options)
{
    if (options != NULL && options[0] != '\0')
        return attn_fail(ATTN_ERR_BACKEND, "ref: takes no options (got \"%s\")", options);
    be->impl = NULL;
    snprintf(be->describe, sizeof be->describe,
             "ref: naive SDPA definition, f64 accumulation (reference/ref_sdpa.c)");
    return attn_ok();
}

static void ref_close(attn_backend *be)
{
    (void)be;
}

/* The reference reads operands element by element on the host. */
static attn_status ref_sdpa_supported(attn_backend *be, const attn_sdpa_problem *p)
{
    static const char *const names[] = {"q", "k", "v", "out", "lse", "mask_add", "mask_bool"};
    const attn_operand *ops[] = {&p->q, &p->k, &p->v, &p->out, &p->lse, &p->mask_add,
                                 &p->mask_bool};
    for (size_t n = 0; n < sizeof ops / sizeof ops[0]; n++)
        if (ops[n]->t != NULL && ops[n]->ptr == NULL)
            return attn_fail(ATTN_ERR_UNSUPPORTED,
                             "ref: operand %s is not host-accessible (device-only buffer)",
                             names[n]);
    return attn_ok();
}

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

static attn_status ref_sdpa_forward(attn_backend *be, const attn_sdpa_problem *p)
{
    const size_t n_out = (size_t)(p->B * p->Sq * p->Hq * p->Dv);
    const size_t n_lse = (size_t)(p->B * p->Hq * p->Sq);
    double *out = malloc(sizeof(double) * n_out);
    double *lse = p->lse.t != NULL ? malloc(sizeof(double) * n_lse) : NULL;
    attn_status st;
    if (out == NULL || (p->lse.t != NULL && lse == NULL))
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate %zu bytes for results",
                       sizeof(double) * (n_out + n_lse));
    else
        st = attn_ref_sdpa(p, ATTN_REF_F64, out, lse, NULL);
    if (st == ATTN_OK)
        ref_store(p, out, lse);
    free(out);
    free(lse);
    return st;
}

static void ref_sdpa_impl_name(attn_backend *be, const attn_sdpa_problem *p, char *buf, size_t n)
{
    (void)be;
    (void)p;
    snprintf(buf, n, "ref:naive_f64");
}

const attn_backend_ops attn_ref_ops = {
    .name = "ref",
    .open = ref_open,
    .close = ref_close,
    .sdpa_supported = ref_sdpa_supported,
    .sdpa_forward = ref_sdpa_forward,
    .sdpa_impl_name = ref_sdpa_impl_name,
    .buffer_alloc = NULL,
    .buffer_free = NULL,
    .buffer_write = NULL,
    .buffer_read = NULL,
};
