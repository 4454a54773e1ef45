/* cpu_internal.h - op-neutral declarations of the CPU backend (src/cpu): backend state, BLIS
 * set-up, the f32 matrix views handed to BLIS, operand access, CPU features, the memo of
 * constant tables. Each op adds its
 * own header (cpu_sdpa.h, ...). */
#ifndef ATTN_CPU_INTERNAL_H_
#define ATTN_CPU_INTERNAL_H_

#include "attn_backend_impl.h"
#include "attn_view.h"
#include "cpu_bench.h"

#include <stdint.h>

/* The SDPA path (option path=auto|decode|tiled|sgemm; auto decides per problem): tiled runs
 * the tiles on BLIS's micro-kernel where the problem allows, sgemm always on sgemm calls. */
typedef enum attn_cpu_path {
    ATTN_CPU_PATH_AUTO,
    ATTN_CPU_PATH_DECODE,
    ATTN_CPU_PATH_TILED,
    ATTN_CPU_PATH_SGEMM
} attn_cpu_path;

/* ---- memo of constant tables (cpu_memo.c) ---------------------------------------------- */
#define ATTN_CPU_MEMO_KEY_MAX 64 /* bytes of a key */
typedef struct attn_cpu_memo attn_cpu_memo;
/* What a call holds of the memo until it releases it. */
typedef struct attn_cpu_memo_hold {
    void *entry; /* the shared entry, or NULL */
    void *own;   /* a private table (no entry free, or too large), or NULL */
} attn_cpu_memo_hold;
attn_cpu_memo *attn_cpu_memo_new(void);
void attn_cpu_memo_free(attn_cpu_memo *m);
/* The table of `bytes` bytes for key (key_len <= ATTN_CPU_MEMO_KEY_MAX bytes that determine its
 * contents): the one built earlier on this backend, else one built now by build(buf, ctx), kept
 * for later calls where an entry is free. Read-only for the caller until
 * attn_cpu_memo_release(m, held). NULL when memory runs out. m NULL: a private table. */
const void *attn_cpu_memo_get(attn_cpu_memo *m, const void *key, size_t key_len, size_t bytes,
                              void (*build)(void *buf, const void *ctx), const void *ctx,
                              attn_cpu_memo_hold *held);
void attn_cpu_memo_release(attn_cpu_memo *m, attn_cpu_memo_hold *held);

typedef struct attn_cpu_state {
    int threads;
    int simd; /* the widest SIMD kernels allowed (attn_cpu_simd; option simd=on|off|avx2|avx512) */
    attn_cpu_path path;
    int64_t chunk; /* chunk length of the chunked linear forms (option chunk=N); 0 = each op's default */
    attn_cpu_memo *memo; /* constant tables kept between calls */
} attn_cpu_state;

/* ---- BLIS (cpu_blis_arch.c, cpu_blis.c) -------------------------------------------------- */
/* Chooses BLIS's kernel set and initialises BLIS, once per process, leaving the environment
 * as it was (cpu_blis_arch.c). Gives the one-line summary "BLIS 0.9.0 kernels zen3
 * (auto-selected)" and a warning line about the user's BLIS_ARCH_TYPE (else ""). Fails with
 * ATTN_ERR_BACKEND, and BLIS is never called, when the user's BLIS_ARCH_TYPE would make BLIS
 * abort or crash. */
attn_status attn_cpu_blis_setup(const char **summary, const char **warning);

/* A read-only f32 matrix: element (r, c) at p[r*rs + c*cs]. */
typedef struct attn_cpu_mat {
    const float *p;
    int64_t rs, cs;
} attn_cpu_mat;

/* C[m x n] (row-major, ldc) = alpha * A[m x k] * B[k x n] + beta * C on ONE thread. */
void attn_cpu_sgemm(int64_t m, int64_t n, int64_t k, float alpha, attn_cpu_mat a,
                    attn_cpu_mat b, float beta, float *c, int64_t ldc);
/* BLIS's native sgemm micro-kernel (cpu_ukr.c), for products on operands packed once. The
 * two operands are called by role: the "q side" (lq lanes per panel: query rows) and the
 * "k side" (lk lanes per panel: keys, or value dims). A product of one q panel and one k
 * panel over k steps writes the lk x lq block C with element (kidx, qidx) at kidx*lq + qidx,
 * on any kernel: row-preferring kernels (rows = 1) take the k side as A. */
typedef struct attn_cpu_ukr {
    void (*fn)(void);
    void *cntx;
    int64_t mr, nr, lq, lk;
    int rows;
} attn_cpu_ukr;
/* The micro-kernel of the kernel set BLIS runs with: 1, or 0 when BLIS gives none. */
int attn_cpu_ukr_get(attn_cpu_ukr *u);
/* C = alpha * (q panel x k panel over k steps) + beta * C, in the layout above; both panels
 * hold k steps of lq (lk) values, full (zero-padded) panels. */
void attn_cpu_ukr_panel(const attn_cpu_ukr *u, int64_t k, float alpha, const float *qside,
                        const float *kside, float beta, float *c);
/* Rows converted per step by the packers (their tmp holds this many rows of cols floats). */
#define ATTN_CPU_PACK_ROWS 64
/* Packs rows [r0, r0+n) of plane (b, h) (cols values each) "across": panels of `lanes`
 * rows, element (r, c) of a panel at c*lanes + r, the last panel zero-padded; panel t starts
 * at dst + t*lanes*cols. (Q rows, or K rows for the scores.) lanes <= ATTN_CPU_PACK_ROWS. */
void attn_cpu_pack_across(const attn_operand *o, int64_t b, int64_t h, int64_t r0, int64_t n,
                          int64_t cols, int64_t lanes, float *dst, float *tmp);
/* The transposition of pack_across: x[r * ld + c] (r < np) into panel[c * lanes + r], lanes
 * np..lanes-1 zero (f32 rows already in memory). */
void attn_cpu_transpose_rows(const float *x, int64_t ld, int64_t np, int64_t cols,
                             int64_t lanes, float *panel);
#if defined(__GNUC__) && defined(__x86_64__)
/* The transposition of pack_across on AVX-512F (cpu_pack_avx512.c): x[r * ld + c] (r < np)
 * into panel[c * lanes + r], lanes np..lanes-1 zero. */
void attn_cpu_transpose_avx512(const float *x, int64_t ld, int64_t np, int64_t cols,
                               int64_t lanes, float *panel);
#endif
/* Keys [j0, j0 + n) of V packed "along" (n_panels panels of `lanes` dims, ld_panel floats
 * apart): bad[j] = 1 where key j0 + j holds Inf/NaN, and that key's values are zeroed in the
 * pack (the products add every term; the callers add such keys' terms exactly). */
void attn_cpu_zero_nonfinite_keys(float *v, int64_t ld_panel, int64_t n_panels, int64_t lanes,
                                  int64_t j0, int64_t n, uint8_t *bad);
/* Packs the same rows "along": panels of `lanes` columns, element (r, c) of column panel t at
 * dst[t*ld_panel + r*lanes + c - t*lanes], columns past cols zero. (V rows for P V.) */
void attn_cpu_pack_along(const attn_operand *o, int64_t b, int64_t h, int64_t r0, int64_t n,
                         int64_t cols, int64_t lanes, int64_t ld_panel, float *dst, float *tmp);
/* attn_cpu_sgemm_threads (BLIS-threaded, for `attn bench`) is declared in cpu_bench.h. */

/* ---- operand access (cpu_operand.c) ------------------------------------------------------ */
/* Rows [r0, ...) of the [seq, dim] plane (b, h) of operand o (rows x cols in all) as a matrix
 * BLIS can read as is: returns 1 and fills *m when the operand is f32 with a unit stride on
 * one side and non-overlapping lines, else 0 (the caller converts with plane_to_f32). */
int attn_cpu_plane_mat(const attn_operand *o, int64_t rows, int64_t cols, int64_t b, int64_t h,
                       int64_t r0, attn_cpu_mat *m);
/* Rows [r0, r0+n) of the plane (b, h) as f32 into dst (n x cols, contiguous). */
void attn_cpu_plane_to_f32(const attn_operand *o, int64_t b, int64_t h, int64_t r0, int64_t n,
                           int64_t cols, float *dst);
/* Rows [r0, r0+n) of every head 0..nh-1 of batch b as f32: dst[(h*n + r)*cols + c]. Reads
 * key-major (all heads of a key, then the next key): sequential memory in BSHD layouts. */
/* n floats into n contiguous elements of dtype t (f16/bf16 rounded to nearest even, the
 * library's rounding, vectorised). */
void attn_cpu_row_from_f32(const float *src, int64_t n, attn_dtype t, void *dst);
void attn_cpu_heads_to_f32(const attn_operand *o, int64_t b, int64_t r0, int64_t n, int64_t nh,
                           int64_t cols, float *dst);
/* Address of element [i0, i1, i2, i3] of a host operand. */
const void *attn_cpu_elem(const attn_operand *o, int64_t i0, int64_t i1, int64_t i2,
                          int64_t i3);

/* SIMD kernel sets, narrowest first; the CPU and the option simd= each allow up to one. */
typedef enum attn_cpu_simd {
    ATTN_CPU_SIMD_OFF,    /* portable C */
    ATTN_CPU_SIMD_AVX2,   /* AVX2+FMA+F16C */
    ATTN_CPU_SIMD_AVX512  /* AVX-512F+AVX2+FMA+F16C */
} attn_cpu_simd;

/* The widest kernel set this build and CPU can run (detected at run time). */
attn_cpu_simd attn_cpu_simd_level(void);
/* The kernel set to use when the option allows up to `allowed`: the narrower of the two. */
attn_cpu_simd attn_cpu_simd_use(int allowed);
/* "avx512", "avx2" or "portable". */
const char *attn_cpu_simd_name(attn_cpu_simd level);
/* Whether this build and CPU can run AVX2+FMA+F16C kernels (chosen at run time). */
int attn_cpu_simd_available(void);

#endif /* ATTN_CPU_INTERNAL_H_ */
