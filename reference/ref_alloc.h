/* ref_alloc.h - scratch room of the references, sized by 64-bit element counts. */
#ifndef ATTN_REF_ALLOC_H_
#define ATTN_REF_ALLOC_H_

#include <stdint.h>
#include <stdlib.h>

/* malloc'd room for n1 x n2 doubles, or NULL when the byte count does not fit size_t: sizes of
 * broadcast (stride 0) inputs are bounded only by 64-bit element counts, not by memory. */
static inline double *attn_ref_alloc(int64_t n1, int64_t n2)
{
    size_t n;
    if (n1 < 0 || n2 < 0 || __builtin_mul_overflow((size_t)n1, (size_t)n2, &n) ||
        __builtin_mul_overflow(n, sizeof(double), &n))
        return NULL;
    return malloc(n ? n : 1);
}

#endif /* ATTN_REF_ALLOC_H_ */
