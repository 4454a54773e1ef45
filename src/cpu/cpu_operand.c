/* cpu_operand.c - reading the user's strided host operands: handing f32 planes to BLIS without
 * copies when their strides allow it, and converting the rest (f16, bf16, odd strides) to
 * contiguous f32 rows. */
#include "cpu_internal.h"

#include "attn_half.h"
#include "cpu_math.h"

#include <string.h>

/* Rows read ahead of the one being converted (see attn_cpu_plane_to_f32). */
#define PREFETCH_ROWS 32

const void *attn_cpu_elem(const attn_operand *o, int64_t i0, int64_t i1, int64_t i2,
                          int64_t i3)
{
    return (const char *)o->ptr + attn_at(o, i0, i1, i2, i3) * (int64_t)attn_dtype_size(o->dtype);
}

int attn_cpu_plane_mat(const attn_operand *o, int64_t rows, int64_t cols, int64_t b, int64_t h,
                       int64_t r0, attn_cpu_mat *m)
{
    if (o->dtype != ATTN_F32)
        return 0;
    /* Strides of size-1 dimensions are meaningless (maybe 0); give BLIS benign ones. */
    int64_t rs = rows > 1 ? o->stride[1] : cols;
    int64_t cs = cols > 1 ? o->stride[3] : 1;
    int row_major = cs == 1 && rs >= cols;
    int col_major = rs == 1 && cs >= rows && rows > 1;
    if (!row_major && !col_major)
        return 0;
    m->p = attn_cpu_elem(o, b, r0, h, 0);
    m->rs = rs;
    m->cs = cs;
    return 1;
}

/* n contiguous elements of dtype t to float; vectorised per dtype. */
ATTN_CPU_HOT
static void row_to_f32(const void *src, attn_dtype t, int64_t n, float *dst)
{
    if (t == ATTN_F16) {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = attn_cpu_f16_to_f32(s[i]);
    } else if (t == ATTN_BF16) {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = attn_cpu_bf16_to_f32(s[i]);
    } else if (t == ATTN_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
    } else {
        attn_convert_to_f32(src, t, n, dst);
    }
}

static void prefetch_row(const attn_operand *o, const void *row, int64_t cols)
{
    int64_t bytes = cols * (int64_t)attn_dtype_size(o->dtype);
    for (int64_t at = 0; at < bytes; at += 64)
        __builtin_prefetch((const char *)row + at, 0, 3);
}

/* Rows of one head usually sit a whole KV-head stride apart (often one per 4 KiB page, where
 * the hardware prefetchers stop), so rows a little ahead are prefetched by hand. */
void attn_cpu_plane_to_f32(const attn_operand *o, int64_t b, int64_t h, int64_t r0, int64_t n,
                           int64_t cols, float *dst)
{
    int unit = o->stride[3] == 1 || cols == 1;
    int64_t rows = o->t->shape[1]; /* prefetch may run past this call's rows, not the plane */
    for (int64_t r = 0; r < n; r++) {
        const void *row = attn_cpu_elem(o, b, r0 + r, h, 0);
        if (unit && r0 + r + PREFETCH_ROWS < rows)
            prefetch_row(o, attn_cpu_elem(o, b, r0 + r + PREFETCH_ROWS, h, 0), cols);
        if (unit)
            row_to_f32(row, o->dtype, cols, dst + r * cols);
        else
            attn_convert_to_f32_strided(row, o->dtype, cols, o->stride[3], dst + r * cols);
    }
}
