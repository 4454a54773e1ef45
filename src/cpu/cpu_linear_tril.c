/* cpu_linear_tril.c - the masked (lower-triangular) product O += A V of the chunked and block
 * forms (linear attention's intra-chunk part, TransNormer's NormAttention chunks and causal
 * DiagAttention tiles) without leaking hidden keys: A holds exact zeros where a row cannot see
 * a key, but 0 * Inf and 0 * NaN in a BLIS product would still carry that key's non-finite V
 * values into the row. V is checked once per call (an integer OR over exponent fields, which
 * vectorises); only when some row is non-finite does the product run on a copy with those
 * rows zeroed, their terms then added for the rows that see them. */
#include "cpu_linear.h"

#include "cpu_math.h"

#include <string.h>

/* Whether row r of v (n values, contiguous) holds Inf or NaN: some exponent field all ones. */
ATTN_CPU_HOT
static int row_nonfinite(const float *r, int64_t n)
{
    uint32_t hit = 0;
    for (int64_t d = 0; d < n; d++)
        hit |= (attn_f32_bits(r[d]) & 0x7f800000u) == 0x7f800000u;
    return hit != 0;
}

void attn_cpu_tril_pv(const attn_cpu_tril *t, const float *a, int64_t lda, const float *v,
                      int64_t ldv, float beta, float *o, int64_t ldo, float *vfix)
{
    int64_t bad = 0;
    for (int64_t c = 0; c < t->keys && bad == 0; c++)
        bad = row_nonfinite(v + c * ldv, t->cols);
    const attn_cpu_mat am = {a, lda, 1};
    if (bad == 0) {
        attn_cpu_sgemm(t->rows, t->cols, t->keys, 1.0f, am, (attn_cpu_mat){v, ldv, 1}, beta, o,
                       ldo);
        return;
    }
    for (int64_t c = 0; c < t->keys; c++) {
        float *dst = vfix + c * t->cols;
        if (row_nonfinite(v + c * ldv, t->cols))
            memset(dst, 0, sizeof(float) * (size_t)t->cols);
        else
            memcpy(dst, v + c * ldv, sizeof(float) * (size_t)t->cols);
    }
    attn_cpu_sgemm(t->rows, t->cols, t->keys, 1.0f, am, (attn_cpu_mat){vfix, t->cols, 1}, beta,
                   o, ldo);
    for (int64_t c = 0; c < t->keys; c++) {
        if (!row_nonfinite(v + c * ldv, t->cols))
            continue;
        for (int64_t x = 0; x < t->rows; x++) {
            if (c > x % t->period + t->diag) /* hidden from row x */
                continue;
            const float w = a[x * lda + c];
            for (int64_t d = 0; d < t->cols; d++)
                o[x * ldo + d] += w * v[c * ldv + d];
        }
    }
}

void attn_cpu_tril_tpv(const attn_cpu_tril *t, const float *a, int64_t lda, const float *v,
                       int64_t ldv, float beta, float *o, int64_t ldo, float *vfix)
{
    int64_t bad = 0;
    for (int64_t x = 0; x < t->rows && bad == 0; x++)
        bad = row_nonfinite(v + x * ldv, t->cols);
    const attn_cpu_mat at = {a, 1, lda}; /* A^T: keys x rows */
    if (bad == 0) {
        attn_cpu_sgemm(t->keys, t->cols, t->rows, 1.0f, at, (attn_cpu_mat){v, ldv, 1}, beta, o,
                       ldo);
        return;
    }
    for (int64_t x = 0; x < t->rows; x++) {
        float *dst = vfix + x * t->cols;
        if (row_nonfinite(v + x * ldv, t->cols))
            memset(dst, 0, sizeof(float) * (size_t)t->cols);
        else
            memcpy(dst, v + x * ldv, sizeof(float) * (size_t)t->cols);
    }
    attn_cpu_sgemm(t->keys, t->cols, t->rows, 1.0f, at, (attn_cpu_mat){vfix, t->cols, 1}, beta,
                   o, ldo);
    for (int64_t x = 0; x < t->rows; x++) {
        if (!row_nonfinite(v + x * ldv, t->cols))
            continue;
        const int64_t last = x % t->period + t->diag; /* the last key row x sees */
        for (int64_t c = 0; c < t->keys && c <= last; c++) {
            const float w = a[x * lda + c];
            for (int64_t d = 0; d < t->cols; d++)
                o[c * ldo + d] += w * v[x * ldv + d];
        }
    }
}
