/* rope_impl.c - RoPE on the "ref" backend: the f64 definition of rope.c into a scratch array,
 * then rounded once into the caller's output dtype and strides (so in place works too). */
#include "attn_backend_impl.h"
#include "attn_half.h"
#include "rope_ref.h"

#include <stdio.h>
#include <stdlib.h>

static attn_status ref_rope_run(attn_backend *be, const void *problem)
{
    const attn_rope_problem *p = problem;
    (void)be;
    size_t n; /* out's element count fits int64 (validation); bytes may not fit size_t */
    double *y = NULL;
    if (!__builtin_mul_overflow((size_t)(p->B * p->S * p->H), (size_t)p->D, &n) &&
        !__builtin_mul_overflow(n, sizeof(double), &n))
        y = malloc(n);
    if (!y)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "ref: cannot allocate the rope results (%lld x "
                         "%lld doubles)", (long long)(p->B * p->S * p->H), (long long)p->D);
    attn_status st = attn_ref_rope(p, 0, y);
    const double *v = y;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t s = 0; s < p->S; s++)
            for (int64_t h = 0; h < p->H; h++)
                for (int64_t d = 0; d < p->D; d++)
                    attn_store_f64(p->out.ptr, p->out.dtype, attn_at(&p->out, b, s, h, d), *v++);
    free(y);
    return st;
}

static void ref_rope_impl_name(attn_backend *be, const void *p, char *buf, size_t n)
{
    (void)be;
    (void)p;
    snprintf(buf, n, "ref:rope_f64");
}

const attn_op_impl attn_ref_rope_impl = {
    .supported = NULL,
    .run = ref_rope_run,
    .impl_name = ref_rope_impl_name,
};
