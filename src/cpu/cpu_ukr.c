/* cpu_ukr.c - BLIS's native sgemm micro-kernel called directly on operands packed once and
 * reused (BLIS's own sgemm repacks both operands on every call, which costs as much as the
 * arithmetic when one dimension is a head dim of 64), and the packing of plane rows into the
 * panel layouts it reads. BLIS documents the micro-kernel interface (KernelsHowTo): an
 * MR x k panel of A stored column by column (MR values per step of k), a k x NR panel of B
 * stored row by row, and C written with any strides. */
#include "cpu_internal.h"
#include "cpu_math.h"

#include <blis.h>
#include <string.h>

int attn_cpu_ukr_get(attn_cpu_ukr *u)
{
    memset(u, 0, sizeof *u);
    if (attn_cpu_blis_setup(NULL, NULL) != ATTN_OK)
        return 0;
    cntx_t *cntx = bli_gks_query_cntx();
    if (!cntx)
        return 0;
    u->fn = (void (*)(void))bli_cntx_get_l3_nat_ukr_dt(BLIS_FLOAT, BLIS_GEMM_UKR, cntx);
    u->mr = (int64_t)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_MR, cntx);
    u->nr = (int64_t)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_NR, cntx);
    u->rows = bli_cntx_l3_nat_ukr_prefers_rows_dt(BLIS_FLOAT, BLIS_GEMM_UKR, cntx);
    u->cntx = cntx;
    /* Row-preferring kernels compute the transposed products, so that C is always written
     * the way the kernel stores it fastest (see attn_cpu_ukr_panel). */
    u->lq = u->rows ? u->nr : u->mr;
    u->lk = u->rows ? u->mr : u->nr;
    return u->fn != NULL && u->mr > 0 && u->nr > 0;
}

void attn_cpu_ukr_panel(const attn_cpu_ukr *u, int64_t k, float alpha, const float *qside,
                        const float *kside, float beta, float *c)
{
    auxinfo_t aux;
    memset(&aux, 0, sizeof aux);
    bli_auxinfo_set_next_a((void *)(u->rows ? kside : qside), &aux);
    bli_auxinfo_set_next_b((void *)(u->rows ? qside : kside), &aux);
    sgemm_ukr_ft fn = (sgemm_ukr_ft)u->fn;
    if (u->rows) /* C^T = kside^T-panel * qside-panel, row-stored: (kidx, qidx) at kidx*lq + qidx */
        fn((dim_t)u->mr, (dim_t)u->nr, (dim_t)k, &alpha, (float *)kside, (float *)qside, &beta,
           c, (inc_t)u->lq, 1, &aux, (cntx_t *)u->cntx);
    else /* C = qside-panel * kside-panel, column-stored: the same layout */
        fn((dim_t)u->mr, (dim_t)u->nr, (dim_t)k, &alpha, (float *)qside, (float *)kside, &beta,
           c, 1, (inc_t)u->lq, &aux, (cntx_t *)u->cntx);
}

/* Rows [r0, r0+n) of plane (b, h) as f32, n <= ATTN_CPU_PACK_ROWS: in place when the operand is
 * f32 with unit column stride, else converted into tmp (n x cols). Returns the row pointer and
 * sets *ld. */
static const float *rows_f32(const attn_operand *o, int64_t b, int64_t h, int64_t r0, int64_t n,
                             int64_t cols, float *tmp, int64_t *ld)
{
    attn_cpu_mat m;
    if (attn_cpu_plane_mat(o, r0 + n, cols, b, h, r0, &m) && m.cs == 1) {
        *ld = m.rs;
        return m.p;
    }
    attn_cpu_plane_to_f32(o, b, h, r0, n, cols, tmp);
    *ld = cols;
    return tmp;
}

void attn_cpu_transpose_rows(const float *x, int64_t ld, int64_t np, int64_t cols,
                             int64_t lanes, float *panel)
{
#if defined(__GNUC__) && defined(__x86_64__)
    if (attn_cpu_simd_level() >= ATTN_CPU_SIMD_AVX512) {
        attn_cpu_transpose_avx512(x, ld, np, cols, lanes, panel);
        return;
    }
#endif
    for (int64_t c = 0; c < cols; c++) {
        for (int64_t r = 0; r < np; r++)
            panel[c * lanes + r] = x[r * ld + c];
        for (int64_t r = np; r < lanes; r++)
            panel[c * lanes + r] = 0.0f;
    }
}

void attn_cpu_pack_across(const attn_operand *o, int64_t b, int64_t h, int64_t r0, int64_t n,
                          int64_t cols, int64_t lanes, float *dst, float *tmp)
{
    for (int64_t p0 = 0; p0 < n; p0 += lanes) {
        int64_t np = n - p0 < lanes ? n - p0 : lanes, ld;
        const float *x = rows_f32(o, b, h, r0 + p0, np, cols, tmp, &ld);
        attn_cpu_transpose_rows(x, ld, np, cols, lanes, dst + p0 * cols);
    }
}

void attn_cpu_pack_along(const attn_operand *o, int64_t b, int64_t h, int64_t r0, int64_t n,
                         int64_t cols, int64_t lanes, int64_t ld_panel, float *dst, float *tmp)
{
    for (int64_t i0 = 0; i0 < n; i0 += ATTN_CPU_PACK_ROWS) {
        int64_t ni = n - i0 < ATTN_CPU_PACK_ROWS ? n - i0 : ATTN_CPU_PACK_ROWS, ld;
        const float *x = rows_f32(o, b, h, r0 + i0, ni, cols, tmp, &ld);
        for (int64_t c0 = 0; c0 < cols; c0 += lanes) {
            int64_t nc = cols - c0 < lanes ? cols - c0 : lanes;
            float *panel = dst + (c0 / lanes) * ld_panel + i0 * lanes;
            for (int64_t r = 0; r < ni; r++) /* pieces of a few floats: no memcpy calls */
                for (int64_t c = 0; c < lanes; c++)
                    panel[r * lanes + c] = c < nc ? x[r * ld + c0 + c] : 0.0f;
        }
    }
}

ATTN_CPU_HOT
void attn_cpu_zero_nonfinite_keys(float *v, int64_t ld_panel, int64_t n_panels, int64_t lanes,
                                  int64_t j0, int64_t n, uint8_t *bad)
{
    for (int64_t j = 0; j < n; j++)
        bad[j] = 0;
    for (int64_t t = 0; t < n_panels; t++) {
        const float *x = v + t * ld_panel + j0 * lanes;
        for (int64_t j = 0; j < n; j++) {
            uint32_t hit = 0;
            for (int64_t e = 0; e < lanes; e++)
                hit |= (attn_f32_bits(x[j * lanes + e]) & 0x7f800000u) == 0x7f800000u;
            bad[j] |= (uint8_t)hit;
        }
    }
    for (int64_t j = 0; j < n; j++)
        if (bad[j])
            for (int64_t t = 0; t < n_panels; t++)
                memset(v + t * ld_panel + (j0 + j) * lanes, 0, (size_t)lanes * sizeof(float));
}
