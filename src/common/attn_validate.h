/* attn_validate.h - the one validation path of every variant's public call: user tensors and
 * descriptor in, a normalised problem (attn_problem.h) or a specific error out. */
#ifndef ATTN_VALIDATE_H_
#define ATTN_VALIDATE_H_

#include "attn_problem.h"

/* Checks everything (pointers, dtypes, shapes, strides, sizes, heads, windows, scale, masks,
 * aliasing, buffer bounds) and fills *p. Host operands get p->X.ptr; device-only buffers leave
 * ptr NULL. Writes nothing else. */
attn_status attn_sdpa_validate(const attn_sdpa_desc *d, const attn_tensor *q,
                               const attn_tensor *k, const attn_tensor *v,
                               const attn_tensor *out, const attn_tensor *lse,
                               attn_sdpa_problem *p);

#endif /* ATTN_VALIDATE_H_ */
