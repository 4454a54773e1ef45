/* cpu_operand.c - reading the user's strided host operands: handing f32 planes to BLIS without
 * copies when their strides allow it, and converting the rest (f16, bf16, odd strides) to
 * contiguous f32 rows. */
#include "cpu_internal.h"

#include "attn_half.h"
#include "cpu_math.h"


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

/* n contiguous elements of dtype t to float; vectorised per dtype (inlined into the loop
 * below, so each clone gets its own vector code). */
static inline void row_to_f32(const void *src, attn_dtype t, int64_t n, float *dst)
{
    if (t == ATTN_F16) {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = attn_cpu_f16_to_f32(s[i]);
    } else if (t == ATTN_BF16) {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = attn_cpu_bf16_to_f32(s[i]);
    } else {
        const float *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = s[i];
    }
}

/* n rows of cols unit-stride elements, rows `stride` bytes apart, prefetching the row `ahead`
 * rows further on while ahead > 0 (ahead counts down to the end of the plane). */
ATTN_CPU_HOT
static void rows_to_f32(const char *row, int64_t stride, attn_dtype t, int64_t n, int64_t cols,
                        int64_t ahead_rows, float *dst)
{
    int64_t bytes = cols * (int64_t)(t == ATTN_F32 ? 4 : 2);
    for (int64_t r = 0; r < n; r++, row += stride, dst += cols) {
        if (r + PREFETCH_ROWS < ahead_rows)
            for (int64_t at = 0; at < bytes; at += 64)
                __builtin_prefetch(row + PREFETCH_ROWS * stride + at, 0, 3);
        row_to_f32(row, t, cols, dst);
    }
}

/* Rows of one head usually sit a whole KV-head stride apart (often one per 4 KiB page, where
 * the hardware prefetchers stop), so rows a little ahead are prefetched by hand. */
void attn_cpu_plane_to_f32(const attn_operand *o, int64_t b, int64_t h, int64_t r0, int64_t n,
                           int64_t cols, float *dst)
{
    if ((o->stride[3] == 1 || cols == 1) && o->dtype != ATTN_U8) {
        /* rows left in the plane from r0: prefetching may run past this call's rows */
        int64_t left = o->t->shape[1] - r0;
        int64_t stride = o->stride[1] * (int64_t)attn_dtype_size(o->dtype);
        rows_to_f32(attn_cpu_elem(o, b, r0, h, 0), stride, o->dtype, n, cols, left, dst);
        return;
    }
    for (int64_t r = 0; r < n; r++)
        attn_convert_to_f32_strided(attn_cpu_elem(o, b, r0 + r, h, 0), o->dtype, cols,
                                    o->stride[3], dst + r * cols);
}

void attn_cpu_heads_to_f32(const attn_operand *o, int64_t b, int64_t r0, int64_t n, int64_t nh,
                           int64_t cols, float *dst)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t h = 0; h < nh; h++) {
            float *d = dst + (h * n + r) * cols;
            if ((o->stride[3] == 1 || cols == 1) && o->dtype != ATTN_U8)
                rows_to_f32(attn_cpu_elem(o, b, r0 + r, h, 0), 0, o->dtype, 1, cols, 0, d);
            else
                attn_convert_to_f32_strided(attn_cpu_elem(o, b, r0 + r, h, 0), o->dtype, cols,
                                            o->stride[3], d);
        }
}

ATTN_CPU_HOT
void attn_cpu_row_from_f32(const float *src, int64_t n, attn_dtype t, void *dst)
{
    if (t == ATTN_F16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = attn_cpu_f32_to_f16(src[i]);
    } else if (t == ATTN_BF16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = attn_cpu_f32_to_bf16(src[i]);
    } else {
        attn_convert_from_f32(src, n, t, dst);
    }
}

attn_cpu_simd attn_cpu_simd_level(void)
{
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
        !__builtin_cpu_supports("f16c"))
        return ATTN_CPU_SIMD_OFF;
    return __builtin_cpu_supports("avx512f") ? ATTN_CPU_SIMD_AVX512 : ATTN_CPU_SIMD_AVX2;
#else
    return ATTN_CPU_SIMD_OFF;
#endif
}

attn_cpu_simd attn_cpu_simd_use(int allowed)
{
    attn_cpu_simd have = attn_cpu_simd_level();
    return allowed < (int)have ? (attn_cpu_simd)allowed : have;
}

const char *attn_cpu_simd_name(attn_cpu_simd level)
{
    return level == ATTN_CPU_SIMD_AVX512 ? "avx512"
           : level == ATTN_CPU_SIMD_AVX2 ? "avx2"
                                         : "portable";
}

int attn_cpu_simd_available(void)
{
    return attn_cpu_simd_level() >= ATTN_CPU_SIMD_AVX2;
}
