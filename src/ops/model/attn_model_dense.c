/* attn_model_dense.c - the model's dense layers (see attn_model_dense.h). The products go to
 * BLIS, threaded over the OpenMP threads, when the build has the cpu backend; the reference-only
 * build multiplies with a plain loop. Row-wise and column-wise reductions are ordered the same
 * on every run, so training is deterministic for a given thread count. */
#include "attn_model_dense.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#include "cpu/cpu_math.h" /* header-only: expf and the clone attribute */
#ifdef ATTN_HAVE_CPU
#include "cpu/cpu_bench.h"
#endif

/* Below these sizes a loop runs on the calling thread: starting and joining a team costs more
 * than the work (on a loaded two-core machine tiny models ran up to 100 times slower with two
 * threads). Every loop computes each element the same way whatever the thread count, so the
 * results do not depend on which side of a threshold a call falls. */
#define PAR_MIN_ELEMS ((int64_t)1 << 14) /* elements touched by an elementwise or row loop */
#define PAR_MIN_FLOPS ((int64_t)1 << 18) /* multiply-adds of a product */

#ifdef ATTN_HAVE_CPU
static int threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
#endif

#ifdef ATTN_HAVE_CPU
/* C = A B + beta C split over the OpenMP threads along its longer side (rows or columns, in
 * multiples of 32 so every thread's micro-tiles stay full), one single-threaded BLIS call per
 * thread. BLIS's own threading synchronises its threads at spin barriers inside every product:
 * with other processes on the cores a step took 10 to 50 times longer; here the only barrier
 * is the parallel region's end. Each element is one thread's dot product in BLIS's k order,
 * so the result does not depend on the split. */
static void gemm_split(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa,
                       int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta,
                       float *c, int64_t ldc)
{
    const int rows = m >= n;
    const int64_t len = rows ? m : n;
#pragma omp parallel num_threads(threads()) if (m * n * k >= PAR_MIN_FLOPS)
    {
#ifdef _OPENMP
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int64_t t = 0, nt = 1;
#endif
        const int64_t blocks = (len + 31) / 32;
        const int64_t lo = blocks * t / nt * 32, hi = blocks * (t + 1) / nt * 32;
        const int64_t e = hi < len ? hi : len;
        if (lo < e) {
            if (rows)
                attn_cpu_sgemm_general(1, e - lo, n, k, 1.0f, a + lo * rsa, rsa, csa, b, rsb,
                                       csb, beta, c + lo * ldc, ldc);
            else
                attn_cpu_sgemm_general(1, m, e - lo, k, 1.0f, a, rsa, csa, b + lo * csb, rsb,
                                       csb, beta, c + lo, ldc);
        }
    }
}
#endif

/* C[m, n] = A B + beta C, any strides. */
static void gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                 const float *b, int64_t rsb, int64_t csb, float beta, float *c, int64_t ldc)
{
#ifdef ATTN_HAVE_CPU
    if (attn_cpu_blis_usable()) {
        gemm_split(m, n, k, a, rsa, csa, b, rsb, csb, beta, c, ldc);
        return;
    }
#endif
#pragma omp parallel for schedule(static) if (m * n * k >= PAR_MIN_FLOPS)
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (int64_t p = 0; p < k; p++)
                s += a[i * rsa + p * csa] * b[p * rsb + j * csb];
            c[i * ldc + j] = beta == 0.0f ? s : beta * c[i * ldc + j] + s;
        }
    }
}

/* sum_i a[i, j] into sa[j] and, when b is given, sum_i a[i, j] b[i, j] into sab[j]. Columns
 * are split into blocks, rows run in order within a block: contiguous, vectorised, and the same
 * sums on every run whatever the thread count. */
static void column_sums(int64_t N, int64_t n, const float *a, int64_t lda, const float *b,
                        float *sa, float *sab)
{
    enum { BLK = 64 };
#pragma omp parallel for schedule(static) if (N * n >= PAR_MIN_ELEMS)
    for (int64_t j0 = 0; j0 < n; j0 += BLK) {
        const int64_t w = n - j0 < BLK ? n - j0 : BLK;
        float acc[BLK] = {0}, accb[BLK] = {0};
        for (int64_t i = 0; i < N; i++) {
            const float *ai = a + i * lda + j0;
            for (int64_t j = 0; j < w; j++)
                acc[j] += ai[j];
            if (b) {
                const float *bi = b + i * n + j0;
                for (int64_t j = 0; j < w; j++)
                    accb[j] += ai[j] * bi[j];
            }
        }
        for (int64_t j = 0; j < w; j++) {
            sa[j0 + j] += acc[j];
            if (b)
                sab[j0 + j] += accb[j];
        }
    }
}

void attn_model_linear_ld(int64_t N, int64_t in, int64_t out, const float *x, int64_t ldx,
                          const float *W, const float *b, float *y, int64_t ldy)
{
#pragma omp parallel for schedule(static) if (N * out >= PAR_MIN_ELEMS)
    for (int64_t i = 0; i < N; i++)
        memcpy(y + i * ldy, b, (size_t)out * sizeof(float));
    gemm(N, out, in, x, ldx, 1, W, 1, in, 1.0f, y, ldy);
}

void attn_model_linear_dx_ld(int64_t N, int64_t in, int64_t out, const float *dy, int64_t lddy,
                             const float *W, float beta, float *dx, int64_t lddx)
{
    gemm(N, in, out, dy, lddy, 1, W, in, 1, beta, dx, lddx);
}

void attn_model_linear_dw_ld(int64_t N, int64_t in, int64_t out, const float *dy, int64_t lddy,
                             const float *x, int64_t ldx, float *dW, float *db)
{
    if (!dW)
        return; /* no parameter gradient wanted (the saliency backward) */
    gemm(out, in, N, dy, 1, lddy, x, ldx, 1, 1.0f, dW, in);
    column_sums(N, out, dy, lddy, NULL, db, NULL);
}

void attn_model_linear(int64_t N, int64_t in, int64_t out, const float *x, const float *W,
                       const float *b, float *y)
{
    attn_model_linear_ld(N, in, out, x, in, W, b, y, out);
}

void attn_model_linear_dx(int64_t N, int64_t in, int64_t out, const float *dy, const float *W,
                          float beta, float *dx)
{
    attn_model_linear_dx_ld(N, in, out, dy, out, W, beta, dx, in);
}

void attn_model_linear_dw(int64_t N, int64_t in, int64_t out, const float *dy, const float *x,
                          float *dW, float *db)
{
    attn_model_linear_dw_ld(N, in, out, dy, out, x, in, dW, db);
}

/* Row sums in f32 (as nn.LayerNorm on the CPU), vectorised: over d <= a few thousand the
 * rounding stays near 1e-6 relative, far inside the f32 policy. */
ATTN_CPU_HOT void attn_model_layernorm(int64_t N, int64_t d, const float *r, const float *w,
                                       const float *b, double eps, float *xhat, float *rstd,
                                       float *y)
{
#pragma omp parallel for schedule(static) if (N * d >= PAR_MIN_ELEMS)
    for (int64_t i = 0; i < N; i++) {
        const float *ri = r + i * d;
        float sum = 0.0f, sq = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < d; j++)
            sum += ri[j];
        const float mean = sum / (float)d;
#pragma omp simd reduction(+ : sq)
        for (int64_t j = 0; j < d; j++)
            sq += (ri[j] - mean) * (ri[j] - mean);
        const float rs = (float)(1.0 / sqrt((double)sq / (double)d + eps));
        rstd[i] = rs;
#pragma omp simd
        for (int64_t j = 0; j < d; j++) {
            const float xh = (ri[j] - mean) * rs;
            xhat[i * d + j] = xh;
            y[i * d + j] = xh * w[j] + b[j];
        }
    }
}

/* dr = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w: the LayerNorm input gradient. */
ATTN_CPU_HOT void attn_model_layernorm_bwd(int64_t N, int64_t d, const float *dy,
                                           const float *xhat, const float *rstd, const float *w,
                                           float *dw, float *db, float *dr)
{
    if (dw)
        column_sums(N, d, dy, d, xhat, db, dw);
#pragma omp parallel for schedule(static) if (N * d >= PAR_MIN_ELEMS)
    for (int64_t i = 0; i < N; i++) {
        const float *g = dy + i * d, *xh = xhat + i * d;
        float mg = 0.0f, mgx = 0.0f;
#pragma omp simd reduction(+ : mg, mgx)
        for (int64_t j = 0; j < d; j++) {
            mg += g[j] * w[j];
            mgx += g[j] * w[j] * xh[j];
        }
        mg /= (float)d;
        mgx /= (float)d;
#pragma omp simd
        for (int64_t j = 0; j < d; j++)
            dr[i * d + j] = rstd[i] * (g[j] * w[j] - mg - xh[j] * mgx);
    }
}

/* Phi(u), the standard normal CDF, as 0.5 erfc(|u| / sqrt 2) mirrored for u >= 0, with erfc
 * from the Chebyshev fit of Numerical Recipes' erfcc (fractional error < 1.2e-7 everywhere)
 * and the backend's branch-free expf, so the loops vectorise (scalar erff made GELU a tenth of
 * a training step). Measured against erfc in double: absolute error < 2.4e-7 for u >= 0;
 * relative error 6.7e-7 on [-2, 0), 2e-6 on [-4, -2), up to 2e-5 at -12 (the rounding of z^2
 * in the exponent), where 0.5 (1 + erff(u / sqrt 2)) loses all relative accuracy. */
static inline float normal_cdf(float u)
{
    const float z = fabsf(u) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    const float half_erfc = 0.5f * t * attn_cpu_expf(-z * z - 1.26551223f + t * p);
    /* u's sign bit selects the half; a bit mask, because GCC turns the ternary into a branch
     * that blocks vectorisation */
    const uint32_t neg = -(attn_f32_bits(u) >> 31);
    return attn_bits_f32((attn_f32_bits(half_erfc) & neg) |
                         (attn_f32_bits(1.0f - half_erfc) & ~neg));
}

ATTN_CPU_HOT void attn_model_gelu(int64_t n, const float *u, float *cdf, float *m)
{
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN_ELEMS)
    for (int64_t i = 0; i < n; i++) {
        cdf[i] = normal_cdf(u[i]);
        m[i] = u[i] * cdf[i];
    }
}

ATTN_CPU_HOT void attn_model_gelu_bwd(int64_t n, const float *u, const float *cdf,
                                      const float *dm, float *du)
{
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN_ELEMS)
    for (int64_t i = 0; i < n; i++) {
        const float x = u[i];
        const float pdf = 0.39894228040143268f * attn_cpu_expf(-0.5f * x * x);
        du[i] = dm[i] * (cdf[i] + x * pdf);
    }
}
