/* attn_explain_quadrature.c - n-point Gauss-Legendre nodes and weights on [-1, 1], the rule
 * captum's IntegratedGradients uses by default (numpy's leggauss, mapped to [0, 1] by the
 * caller). Newton's method on the three-term Legendre recurrence, in double. */
#include "attn_explain_impl.h"

#include <math.h>

#include "attn_backend_impl.h"

/* P_n(x) and P_n'(x) by (k + 1) P_{k+1} = (2k + 1) x P_k - k P_{k-1}. Only called at interior
 * points (|x| < 1), where the derivative formula is finite. */
static void legendre(int64_t n, double x, double *p, double *dp)
{
    double p0 = 1.0, p1 = x;
    for (int64_t k = 1; k < n; k++) {
        const double p2 = ((double)(2 * k + 1) * x * p1 - (double)k * p0) / (double)(k + 1);
        p0 = p1;
        p1 = p2;
    }
    *p = p1;
    *dp = (double)n * (x * p1 - p0) / (x * x - 1.0);
}

/* The k-th largest root (k = 0 .. n/2) from Tricomi's estimate; Newton converges
 * quadratically from it, and the step that falls below 1e-15 is the last needed (the next
 * would change the root by about its square). */
static double root(int64_t n, int64_t k)
{
    const double pi = 3.14159265358979323846, nd = (double)n;
    double x = (1.0 - (nd - 1.0) / (8.0 * nd * nd * nd)) *
               cos(pi * (4.0 * (double)k + 3.0) / (4.0 * nd + 2.0));
    for (int it = 0; it < 100; it++) {
        double p, dp;
        legendre(n, x, &p, &dp);
        const double dx = p / dp;
        x -= dx;
        if (fabs(dx) <= 1e-15)
            break;
    }
    return x;
}

attn_status attn_explain_gauss_legendre(int64_t n, double *x, double *w)
{
    if (!x || !w)
        return attn_fail(ATTN_ERR_NULL_POINTER, "Gauss-Legendre: x and w must not be NULL");
    if (n < 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "Gauss-Legendre: %lld nodes (at least 1)", (long long)n);
    /* The roots are symmetric about 0: compute the upper half and mirror it, so the rule
     * integrates odd functions to exactly 0 and lists the nodes ascending, as numpy does. */
    for (int64_t k = 0; k < (n + 1) / 2; k++) {
        const double r = (n % 2 && k == n / 2) ? 0.0 : root(n, k);
        double p, dp;
        legendre(n, r, &p, &dp);
        const double wk = 2.0 / ((1.0 - r * r) * dp * dp);
        x[n - 1 - k] = r;
        x[k] = -r;
        w[n - 1 - k] = w[k] = wk;
    }
    /* numpy rescales the weights to sum to exactly 2 (a change of a few ulps). */
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += w[i];
    for (int64_t i = 0; i < n; i++)
        w[i] *= 2.0 / sum;
    return attn_ok();
}
