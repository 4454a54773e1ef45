/* attn_view.h - op-neutral checks of user tensor views and their normalised form (attn_operand)
 * that every op's validation builds on: pointer/dtype/shape/stride/bounds checks, overlap of
 * outputs with inputs and each other, self-overlap of outputs, expected dims, element offsets,
 * the state tensor of the recurrent ops. */
#ifndef ATTN_VIEW_H_
#define ATTN_VIEW_H_

#include "attn/attn_core.h"

#include <stdint.h>

/* One operand after validation: host address resolved (NULL for device-only tensors, which
 * keep their buffer + byte offset), strides of size-1 (broadcast) dims forced to 0. */
typedef struct attn_operand {
    const attn_tensor *t; /* the user's view (NULL when the operand is absent) */
    void *ptr;            /* host address of element [0,0,0,0] when host-accessible */
    attn_dtype dtype;
    int64_t stride[4];    /* element strides; 0 on size-1 dims */
} attn_operand;

/* Element offset of [i0, i1, i2, i3] in an operand. */
static inline int64_t attn_at(const attn_operand *o, int64_t i0, int64_t i1, int64_t i2,
                              int64_t i3)
{
    return i0 * o->stride[0] + i1 * o->stride[1] + i2 * o->stride[2] + i3 * o->stride[3];
}

/* Byte extent of a checked view: offset + bytes up to its last element. */
typedef struct attn_span {
    int64_t elems_max;
    size_t bytes;
} attn_span;

/* Bit set of allowed dtypes. */
#define ATTN_DTYPES_FLOAT ((1u << ATTN_F32) | (1u << ATTN_F16) | (1u << ATTN_BF16))
#define ATTN_DTYPES_F32 (1u << ATTN_F32)
#define ATTN_DTYPES_U8 (1u << ATTN_U8)
#define ATTN_DTYPES_INT ((1u << ATTN_I32) | (1u << ATTN_I64))

/* Names of the four dims in messages, e.g. {"batch", "seq", "heads", "dim"}. */
typedef const char *const attn_dim_names[4];
extern attn_dim_names attn_dims_bshd;
extern attn_dim_names attn_dims_mask; /* {"batch", "query", "head", "key"} */

/* Pointer, dtype, shape (> 0, or >= 0 on the dims of the bit set zero_ok), stride (>= 0),
 * size, buffer-bound and alignment checks of one view; fills *s (a view with a zero dim
 * touches no byte). `dims` names the axes in messages. */
attn_status attn_view_check(const attn_tensor *t, const char *name, unsigned dtypes,
                            attn_dim_names dims, unsigned zero_ok, attn_span *s);
/* Whether a view has no element (a zero dim). */
int attn_view_empty(const attn_tensor *t);
/* Fails with ATTN_ERR_STRIDE when two elements of an output view share memory. */
attn_status attn_view_check_distinct(const attn_tensor *t, const char *name);
/* shape[i] must be `want` (what: where the number comes from, for the message). */
attn_status attn_view_expect_dim(const attn_tensor *t, const char *name, attn_dim_names dims,
                                 int i, int64_t want, const char *what);
/* shape[i] must be `want` or 1 (broadcast). */
attn_status attn_view_expect_dim_or_1(const attn_tensor *t, const char *name,
                                      attn_dim_names dims, int i, int64_t want,
                                      const char *what);
/* A recurrent op's running state: f32 [B, Hkv, Df, cols] (axes named batch, kv_head, feature,
 * value; batch may be 0). df_what / cols_what say where Df and cols come from, for messages. */
attn_status attn_view_check_state(const attn_tensor *t, const char *name, int64_t B,
                                  int64_t Hkv, int64_t Df, const char *df_what, int64_t cols,
                                  const char *cols_what, attn_span *s);
/* Whether two checked views touch common bytes of the same memory. */
int attn_view_overlaps(const attn_tensor *a, const attn_span *sa, const attn_tensor *b,
                       const attn_span *sb);
/* Outputs t[n_in..n) each distinct in itself (attn_view_check_distinct) and overlapping no
 * input t[0..n_in) and no earlier output; NULL entries (absent operands) are skipped. names[]
 * name them in messages. */
attn_status attn_view_check_outputs(const attn_tensor *const *t, const attn_span *s,
                                    const char *const *names, int n_in, int n);
/* The operand of a checked view (t may be NULL: an absent operand, all zero). */
void attn_operand_fill(attn_operand *o, const attn_tensor *t);

/* Return from the enclosing function when a check fails. */
#define ATTN_TRY(x)                                                                              \
    do {                                                                                         \
        attn_status st_ = (x);                                                                   \
        if (st_ != ATTN_OK)                                                                      \
            return st_;                                                                          \
    } while (0)

#endif /* ATTN_VIEW_H_ */
