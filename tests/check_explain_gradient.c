/* check_explain_gradient.c - the gradient-based saliency methods (vanilla gradient, input x
 * gradient, integrated gradients, DeepLIFT) on every backend of the build (ref, cpu, opencl;
 * one the build or the machine lacks is skipped), on the tiny model and padded batch of
 * model_fixture.h, and the Gauss-Legendre rule behind integrated gradients:
 *
 * - the n-point rule integrates every monomial of degree < 2n exactly and misses x^2n by the
 *   squared norm of the monic Legendre polynomial; its weights sum to 2;
 * - vanilla and input x gradient against central differences of the target-class logit of the
 *   f64 reference forward with respect to each element of e;
 * - integrated gradients' completeness (sum_j s_j = f_c(e) - f_c(0)) within a derived bound,
 *   and with one step, the gradient at e/2 times e;
 * - DeepLIFT against an independent f64 computation: the multiplier from the pooler
 *   pre-activations of the reference forwards of e and of the zero baseline, chained with
 *   central differences of those pre-activations; it differs from input x gradient; a pooler
 *   unit with z = z0 exactly (a zero weight row) takes the derivative, not 0/0;
 * - every method scores a batch as it scores each row alone, whatever the chunk size, and 0
 *   at padding; no target classes means the predicted ones. */
#include "check_run.h"
#include "explain_fixture.h"

#include "attn_explain_impl.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SEED = 17, B = MODEL_FX_B, S = MODEL_FX_S };

/* The classes explained: a different one per row. */
static const int32_t TARGETS[B] = {1, 2};

/* Central differences on the f64 reference: the step (about 1e-3, taken exactly as the f32
 * difference of the perturbed values) leaves a truncation error h^2/6 |f'''| near 1e-8 of the
 * derivatives on this model and no rounding error to speak of (the reference is f64). */
#define FD_STEP 1e-3

/* Scores from f32 gradients against f64 finite differences, relative to each row's largest
 * expected score: the model's f32 backward is within about 1e-6 of the largest gradient entry
 * (check_model_grad), the differences within about 1e-8 of the derivative, and a token's score
 * sums d = 16 entries; measured at most 6e-7 on every backend. 1e-5 leaves a factor 15; a
 * wrong method is off by far more (DeepLIFT with tanh' instead of the rescale quotient: 0.2;
 * the vanilla gradient without abs: 1.2; a missing threshold: NaN). */
#define SCORE_TOL 1e-5

/* Two runs of the same f32 computation on differently sized batches: the dense layers and the
 * attention may round differently per batch size (BLIS blocking), nothing else differs
 * (measured: bit for bit equal here; one-step IG against the test's own gradient: 4e-8). */
#define SAME_TOL 1e-5

static const attn_explain_method METHODS[] = {
    ATTN_EXPLAIN_VANILLA_GRADIENT, ATTN_EXPLAIN_INPUT_X_GRADIENT,
    ATTN_EXPLAIN_INTEGRATED_GRADIENTS, ATTN_EXPLAIN_DEEPLIFT};
enum { N_METHODS = sizeof METHODS / sizeof METHODS[0] };

/* ---- shared pieces ------------------------------------------------------------------------- */

static double *dnew(int64_t n)
{
    double *p = calloc((size_t)n, sizeof(double));
    ck_assert_ptr_nonnull(p);
    return p;
}

static float *fnew(int64_t n)
{
    float *p = calloc((size_t)n, sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

static int64_t dim(const attn_model *m)
{
    return attn_model_get_config(m)->hidden_size;
}

/* The batch given as embeddings e [B, S, d] (its mask kept). */
static attn_model_input given(const model_fx_batch *b, const float *e)
{
    attn_model_input in = b->in;
    in.ids = NULL;
    in.embeddings = e;
    return in;
}

/* Logits [B, C] and the pooler pre-activation z = Wp h_CLS + bp [B, d] of the f64 reference
 * forward of embeddings e. */
static void ref_head(const attn_model *m, const model_fx_batch *b, const float *e,
                     double *logits, double *z)
{
    const attn_model_config *c = attn_model_get_config(m);
    const int64_t d = c->hidden_size, L = c->num_layers;
    double *hidden = dnew((L + 1) * B * S * d);
    const attn_model_input in = given(b, e);
    const attn_ref_model_out o = {.logits = logits, .hidden = hidden};
    model_fx_ref_forward(m, &in, &o);
    const attn_model_weights *w = attn_model_values(m);
    for (int64_t r = 0; r < B; r++) {
        const double *cls = hidden + ((L * B + r) * S) * d; /* last layer, position 0 */
        for (int64_t i = 0; i < d; i++) {
            double acc = w->pool_b[i];
            for (int64_t k = 0; k < d; k++)
                acc += (double)w->pool_w[i * d + k] * cls[k];
            z[r * d + i] = acc;
        }
    }
    free(hidden);
}

/* Central differences of the reference with respect to each element e_rjk (both rows
 * perturbed at once: a row's outputs depend on its own embeddings only). */
typedef struct fd_jac {
    double *dlogit; /* [B, S, d]: d f_c / d e_rjk for row r's class */
    double *dz;     /* [B, S, d, d]: d z_ri / d e_rjk, i last */
} fd_jac;

static fd_jac fd_jacobians(const attn_model *m, const model_fx_batch *b, const float *e,
                           const int32_t *targets)
{
    const int64_t d = dim(m), C = attn_model_get_config(m)->num_labels;
    fd_jac J = {.dlogit = dnew(B * S * d), .dz = dnew(B * S * d * d)};
    float *ep = fnew(B * S * d), *em = fnew(B * S * d);
    memcpy(ep, e, (size_t)(B * S * d) * sizeof(float));
    memcpy(em, e, (size_t)(B * S * d) * sizeof(float));
    double lp[B * 8], lm[B * 8], *zp = dnew(B * d), *zm = dnew(B * d);
    ck_assert_int_le(C, 8);
    for (int64_t j = 0; j < S; j++)
        for (int64_t k = 0; k < d; k++) {
            for (int64_t r = 0; r < B; r++) {
                const int64_t at = (r * S + j) * d + k;
                ep[at] = (float)(e[at] + FD_STEP);
                em[at] = (float)(e[at] - FD_STEP);
            }
            ref_head(m, b, ep, lp, zp);
            ref_head(m, b, em, lm, zm);
            for (int64_t r = 0; r < B; r++) {
                const int64_t at = (r * S + j) * d + k;
                /* The step as stored, read back after the calls: GCC 12 at -O3 was seen
                 * to compute it from the unrounded doubles when taken next to the stores. */
                const double step = (double)ep[at] - (double)em[at];
                ep[at] = em[at] = e[at];
                J.dlogit[at] = (lp[r * C + targets[r]] - lm[r * C + targets[r]]) / step;
                for (int64_t i = 0; i < d; i++)
                    J.dz[at * d + i] = (zp[r * d + i] - zm[r * d + i]) / step;
            }
        }
    free(ep);
    free(em);
    free(zp);
    free(zm);
    return J;
}

static void fd_free(fd_jac *J)
{
    free(J->dlogit);
    free(J->dz);
}

/* Each row's token scores against want within tol of the row's largest |want|, and exactly 0
 * at padding. */
static void expect_scores(const model_fx_batch *b, const float *got, const double *want,
                          double tol, const char *backend, const char *what)
{
    for (int64_t r = 0; r < B; r++) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s, %s, row %lld", backend, what, (long long)r);
        model_fx_expect_close(got + r * S, want + r * S, S, tol, msg);
        for (int64_t s = 0; s < S; s++)
            if (!b->mask[r * S + s])
                ck_assert_msg(got[r * S + s] == 0.0f, "%s: padding position %lld scores %g", msg,
                              (long long)s, (double)got[r * S + s]);
    }
}

/* The 100-node rule on [0, 1] as integrated gradients uses it: alpha and float32 step sizes. */
static void ig_rule(int64_t n, double *alpha, double *step)
{
    ck_assert_int_eq(attn_explain_gauss_legendre(n, alpha, step), ATTN_OK);
    for (int64_t i = 0; i < n; i++) {
        alpha[i] = 0.5 * (1.0 + alpha[i]);
        step[i] = (float)(0.5 * step[i]);
    }
}

/* ---- Gauss-Legendre ------------------------------------------------------------------------ */

/* With Q the n-point rule and I the integral over [-1, 1]: Q(x^k) = I(x^k) = 2 / (k + 1) (k
 * even, 0 odd) for every k < 2n, and I(x^2n) - Q(x^2n) = ||pi_n||^2 = 2^(2n+1) (n!)^4 /
 * ((2n+1) ((2n)!)^2), the squared norm of the monic Legendre polynomial (x^2n - pi_n^2 has
 * degree < 2n, and pi_n vanishes at the nodes). Rounding: x^k is formed by k products and Q
 * sums n terms, so Q carries up to about (k + n) ulps of I(|x|^k) = 2 / (k + 1); the check
 * allows 1e-15 (k + n) of it, 5 ulps per operation (measured: at most 1e-13 at n = 1000, k
 * near 2n, a tenth of the bound). A node or a weight off by 1e-12 fails. */
START_TEST(gauss_legendre_exact)
{
    static const int64_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 100, 101, 1000};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        const int64_t n = sizes[t];
        double *x = dnew(n), *w = dnew(n), *q = dnew(2 * n + 1);
        ck_assert_int_eq(attn_explain_gauss_legendre(n, x, w), ATTN_OK);
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            ck_assert_msg(x[i] > -1.0 && x[i] < 1.0 && w[i] > 0.0, "n %lld: node %lld",
                          (long long)n, (long long)i);
            if (i > 0)
                ck_assert_msg(x[i] > x[i - 1], "n %lld: nodes not ascending", (long long)n);
            double p = w[i];
            for (int64_t k = 0; k <= 2 * n; k++, p *= x[i])
                q[k] += p;
            sum += w[i];
        }
        ck_assert_msg(fabs(sum - 2.0) <= 1e-14, "n %lld: weights sum to 2 + %.3g", (long long)n,
                      sum - 2.0);
        for (int64_t k = 0; k < 2 * n; k++) {
            const double exact = k % 2 ? 0.0 : 2.0 / (double)(k + 1);
            ck_assert_msg(fabs(q[k] - exact) <= 1e-15 * (double)(k + n) * 2.0 / (double)(k + 1),
                          "n %lld: Q(x^%lld) = %.17g, exact %.17g", (long long)n, (long long)k,
                          q[k], exact);
        }
        if (n <= 12) { /* norm >= 1.8e-7: far above Q's rounding, checked to 1e-13 of I */
            double norm = 2.0 / (double)(2 * n + 1); /* = 2/(2n+1) prod k^2/(2k-1)^2 */
            for (int64_t k = 1; k <= n; k++)
                norm *= (double)(k * k) / (double)((2 * k - 1) * (2 * k - 1));
            const double missed = 2.0 / (double)(2 * n + 1) - q[2 * n];
            ck_assert_msg(fabs(missed - norm) <= 1e-13 * 2.0 / (double)(2 * n + 1),
                          "n %lld: x^%lld missed by %.17g, not %.17g", (long long)n,
                          (long long)(2 * n), missed, norm);
        }
        free(x);
        free(w);
        free(q);
    }
    double x[1], w[1];
    ck_assert_int_eq(attn_explain_gauss_legendre(0, x, w), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_explain_gauss_legendre(3, NULL, w), ATTN_ERR_NULL_POINTER);
    ck_assert_str_ne(attn_last_error(), "");
}
END_TEST

/* ---- vanilla gradient, input x gradient, DeepLIFT against finite differences ---------------- */

/* DeepLIFT's scores computed independently in f64: by the chain rule through the pooler,
 * d f_c / d e_rjk = sum_i Wc[c, i] tanh'(z_ri) d z_ri / d e_rjk, and DeepLIFT puts the rescale
 * quotient (tanh z - tanh z0) / (z - z0) in place of tanh' (the derivative where |z - z0| <
 * 1e-10). z and z0 come from the reference forwards of e and of the zero embeddings; with
 * rescale 0 the same sum is input x gradient by another route. */
static void chain_scores(const attn_model *m, const model_fx_batch *b, const float *e,
                         const fd_jac *J, int rescale, double *want)
{
    const int64_t d = dim(m);
    double lg[B * 8], *z = dnew(B * d), *z0 = dnew(B * d), *u = dnew(B * d);
    float *zeros = fnew(B * S * d);
    ref_head(m, b, e, lg, z);
    ref_head(m, b, zeros, lg, z0);
    const float *Wc = attn_model_values(m)->cls_w;
    for (int64_t r = 0; r < B; r++)
        for (int64_t i = 0; i < d; i++) {
            const double a = z[r * d + i], a0 = z0[r * d + i];
            const double slope = rescale && fabs(a - a0) >= 1e-10
                                     ? (tanh(a) - tanh(a0)) / (a - a0)
                                     : 1.0 - tanh(a) * tanh(a);
            u[r * d + i] = Wc[TARGETS[r] * d + i] * slope;
        }
    for (int64_t r = 0; r < B; r++)
        for (int64_t j = 0; j < S; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < d; k++) {
                const int64_t at = (r * S + j) * d + k;
                double g = 0.0;
                for (int64_t i = 0; i < d; i++)
                    g += u[r * d + i] * J->dz[at * d + i];
                s += (double)e[at] * g;
            }
            want[r * S + j] = b->mask[r * S + j] ? s : 0.0;
        }
    free(z);
    free(z0);
    free(u);
    free(zeros);
}

/* s_j = sum_k |d f / d e_jk| (vanilla) or sum_k e_jk d f / d e_jk from the differences. */
static void direct_scores(const attn_model *m, const model_fx_batch *b, const float *e,
                          const fd_jac *J, int times_input, double *want)
{
    const int64_t d = dim(m);
    for (int64_t r = 0; r < B; r++)
        for (int64_t j = 0; j < S; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < d; k++) {
                const int64_t at = (r * S + j) * d + k;
                s += times_input ? (double)e[at] * J->dlogit[at] : fabs(J->dlogit[at]);
            }
            want[r * S + j] = b->mask[r * S + j] ? s : 0.0;
        }
}

/* The model of the suite, with pooler unit 3 cut off when zero_row: its weight row zero, so
 * z = z0 = its bias exactly in both of DeepLIFT's forwards, where the method must take the
 * derivative (captum's 1e-10 threshold); the quotient would be 0/0 and every score NaN. */
static attn_model *variant_model(attn_backend *be, int zero_row)
{
    attn_model *m = model_fx_model(be, SEED);
    attn_model_param p;
    ck_assert_int_eq(attn_model_param_find(m, "bert.pooler.dense.weight", &p), ATTN_OK);
    for (int64_t k = 0; zero_row && k < p.shape[1]; k++)
        p.value[3 * p.shape[1] + k] = 0.0f;
    return m;
}

/* Every method with a closed form in the derivatives, against the differences J (taken at
 * the reference's e; a backend's e is the same to an ulp or so, far below the bounds). */
static void expect_fd_scores(attn_model *m, const model_fx_batch *b, const fd_jac *J,
                             const char *backend, const char *what)
{
    float *e = explain_fx_embeddings(m, &b->in);
    double want[B * S], chained[B * S];
    char msg[128];
    float *vg = explain_fx_run(m, &b->in, TARGETS, ATTN_EXPLAIN_VANILLA_GRADIENT, NULL);
    float *ixg = explain_fx_run(m, &b->in, TARGETS, ATTN_EXPLAIN_INPUT_X_GRADIENT, NULL);
    float *dl = explain_fx_run(m, &b->in, TARGETS, ATTN_EXPLAIN_DEEPLIFT, NULL);

    direct_scores(m, b, e, J, 0, want);
    snprintf(msg, sizeof msg, "%s: vanilla gradient", what);
    expect_scores(b, vg, want, SCORE_TOL, backend, msg);
    direct_scores(m, b, e, J, 1, want);
    chain_scores(m, b, e, J, 0, chained);
    snprintf(msg, sizeof msg, "%s: input x gradient", what);
    expect_scores(b, ixg, want, SCORE_TOL, backend, msg);
    snprintf(msg, sizeof msg, "%s: input x gradient by the chain rule", what);
    expect_scores(b, ixg, chained, SCORE_TOL, backend, msg);
    chain_scores(m, b, e, J, 1, chained);
    snprintf(msg, sizeof msg, "%s: deeplift", what);
    expect_scores(b, dl, chained, SCORE_TOL, backend, msg);

    /* The rescale rule matters: DeepLIFT is not input x gradient on this model (measured:
     * they differ by 0.14 to 0.21 of the largest score). */
    double diff = 0.0, mag = 0.0;
    for (int64_t i = 0; i < B * S; i++) {
        diff = fmax(diff, fabs((double)dl[i] - ixg[i]));
        mag = fmax(mag, fabs((double)ixg[i]));
    }
    ck_assert_msg(diff > 0.05 * mag, "%s, %s: deeplift equals input x gradient (%.3g of %.3g)",
                  backend, what, diff, mag);
    free(vg);
    free(ixg);
    free(dl);
    free(e);
}

/* The differences depend on the parameters only, not on the backend: taken once per model
 * (the reference's f64 forwards dominate the suite's time), then every backend is checked. */
START_TEST(gradients_vs_finite_differences)
{
    static const char *const what[2] = {"drawn model", "a pooler unit with z = z0"};
    model_fx_batch b;
    model_fx_batch_fill(&b, SEED);
    for (int zero_row = 0; zero_row < 2; zero_row++) {
        attn_backend *ref = model_fx_open("ref");
        ck_assert_ptr_nonnull(ref);
        attn_model *m = variant_model(ref, zero_row);
        float *e = explain_fx_embeddings(m, &b.in);
        fd_jac J = fd_jacobians(m, &b, e, TARGETS);
        free(e);
        attn_model_free(m);
        attn_backend_close(ref);
        for (int i = 0; i < MODEL_FX_N_BACKENDS; i++) {
            attn_backend *be = model_fx_open(model_fx_backends[i]);
            if (!be)
                continue;
            m = variant_model(be, zero_row);
            expect_fd_scores(m, &b, &J, model_fx_backends[i], what[zero_row]);
            attn_model_free(m);
            attn_backend_close(be);
        }
        fd_free(&J);
    }
}
END_TEST

/* ---- integrated gradients ------------------------------------------------------------------ */

/* Completeness: with phi(a) = f_c(a e), f_c(e) - f_c(0) = int_0^1 phi'(a) da and phi'(a_m) =
 * sum_jk e_jk g_jk(a_m e), so sum_j s_j = sum_m w~_m phi'~(a_m) differs from it by
 * - the quadrature error of the 100-node rule: phi is analytic near [0, 1], the error decays
 *   like rho^-200: below 1e-15, negligible;
 * - the float32 step sizes w~_m = w_m (1 + d_m), |d_m| <= 2^-24: |sum_m (w~_m - w_m) phi'(a_m)|
 *   <= 2^-24 sum_m w_m |phi'(a_m)| (when phi' is near constant, this is |sum w~_m - 1| |phi'|);
 *   the float32 nodes shift each a_m by 2^-24 a_m, a change of the same order;
 * - the f32 gradients: within about 1e-6 of each step's largest entry (check_model_grad), and
 *   the f32 sum over the 100 steps adds at most 100 * 2^-24 = 6e-6 of the sum of magnitudes;
 * - the f64 reference logits: negligible.
 * With G = sum_m w_m max_jk |g_jk(a_m e)| and A = G sum_jk |e_jk| (tokens only), the terms
 * add up to at most 7e-6 A (2^-24 sum_m w_m |phi'| <= 6e-8 A); the check allows 1e-5 A.
 * Measured on every backend: below 5e-9 A. Integrated gradients with 2 steps misses by 5e-3 A
 * and more, and fails the same bound; step sizes W_m instead of W_m / 2 miss by 1e-2 A. */
#define IG_COMPLETE_TOL 1e-5

/* A of one row r: the gradients at the 100 scaled inputs, as one batch of copies of row r. */
static double ig_scale(attn_model *m, const model_fx_batch *b, const float *e, int64_t r)
{
    enum { N = 100 };
    const int64_t d = dim(m), C = attn_model_get_config(m)->num_labels, Sd = S * d;
    double alpha[N], step[N];
    ig_rule(N, alpha, step);
    float *x = fnew(N * Sd), *g = fnew(N * Sd), *lg = fnew(N * C), *dl = fnew(N * C);
    uint8_t mask[N * S];
    for (int64_t i = 0; i < N; i++) {
        memcpy(mask + i * S, b->mask + r * S, S);
        for (int64_t k = 0; k < Sd; k++)
            x[i * Sd + k] = (float)alpha[i] * e[r * Sd + k];
        dl[i * C + TARGETS[r]] = 1.0f;
    }
    const attn_model_input in = {.batch = N, .seq = S, .attention_mask = mask, .embeddings = x};
    const attn_model_outputs o = {.logits = lg};
    ck_assert_int_eq(attn_model_forward(m, &in, &o), ATTN_OK);
    ck_assert_int_eq(attn_model_backward(m, dl, g), ATTN_OK);
    double G = 0.0, mass = 0.0;
    for (int64_t i = 0; i < N; i++) {
        double top = 0.0;
        for (int64_t k = 0; k < Sd; k++)
            top = fmax(top, fabs((double)g[i * Sd + k]));
        G += step[i] * top;
    }
    for (int64_t j = 0; j < S; j++)
        for (int64_t k = 0; b->mask[r * S + j] && k < d; k++)
            mass += fabs((double)e[r * Sd + j * d + k]);
    free(x);
    free(g);
    free(lg);
    free(dl);
    return G * mass;
}

START_TEST(ig_completeness)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    const char *name = model_fx_backends[_i];
    attn_model *m = model_fx_model(be, SEED);
    model_fx_batch b;
    model_fx_batch_fill(&b, SEED);
    const int64_t d = dim(m), C = attn_model_get_config(m)->num_labels;
    float *e = explain_fx_embeddings(m, &b.in), *zeros = fnew(B * S * d);
    double lg_e[B * 8], lg_0[B * 8], *z = dnew(B * d);
    ref_head(m, &b, e, lg_e, z);
    ref_head(m, &b, zeros, lg_0, z);
    float *ig = explain_fx_run(m, &b.in, TARGETS, ATTN_EXPLAIN_INTEGRATED_GRADIENTS, NULL);
    attn_explain_options two = attn_explain_options_default();
    two.ig_steps = 2;
    float *ig2 = explain_fx_run(m, &b.in, TARGETS, ATTN_EXPLAIN_INTEGRATED_GRADIENTS, &two);
    for (int64_t r = 0; r < B; r++) {
        double sum = 0.0, sum2 = 0.0;
        for (int64_t j = 0; j < S; j++) {
            sum += ig[r * S + j];
            sum2 += ig2[r * S + j];
        }
        const double delta = lg_e[r * C + TARGETS[r]] - lg_0[r * C + TARGETS[r]];
        const double A = ig_scale(m, &b, e, r);
        ck_assert_msg(fabs(sum - delta) <= IG_COMPLETE_TOL * A,
                      "%s, row %lld: sum of scores %.9g, f(e) - f(0) = %.9g (bound %.3g)", name,
                      (long long)r, sum, delta, IG_COMPLETE_TOL * A);
        ck_assert_msg(fabs(sum2 - delta) > IG_COMPLETE_TOL * A,
                      "%s, row %lld: 2 steps within the bound (%.3g)", name, (long long)r,
                      fabs(sum2 - delta) / A);
    }
    free(ig);
    free(ig2);
    free(e);
    free(zeros);
    free(z);
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

/* The 1-node rule is alpha 1/2, weight 1: the scores are the gradient at e/2 times e. */
START_TEST(ig_one_step)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    attn_model *m = model_fx_model(be, SEED);
    model_fx_batch b;
    model_fx_batch_fill(&b, SEED);
    const int64_t d = dim(m), C = attn_model_get_config(m)->num_labels;
    float *e = explain_fx_embeddings(m, &b.in), *half = fnew(B * S * d), *g = fnew(B * S * d);
    for (int64_t k = 0; k < B * S * d; k++)
        half[k] = 0.5f * e[k];
    float lg[B * 8], dl[B * 8] = {0};
    for (int64_t r = 0; r < B; r++)
        dl[r * C + TARGETS[r]] = 1.0f;
    const attn_model_input in = given(&b, half);
    const attn_model_outputs o = {.logits = lg};
    ck_assert_int_eq(attn_model_forward(m, &in, &o), ATTN_OK);
    ck_assert_int_eq(attn_model_backward(m, dl, g), ATTN_OK);
    double want[B * S];
    for (int64_t j = 0; j < B * S; j++) {
        want[j] = 0.0;
        for (int64_t k = 0; b.mask[j] && k < d; k++)
            want[j] += (double)e[j * d + k] * g[j * d + k];
    }
    attn_explain_options opt = attn_explain_options_default();
    opt.ig_steps = 1;
    float *ig = explain_fx_run(m, &b.in, TARGETS, ATTN_EXPLAIN_INTEGRATED_GRADIENTS, &opt);
    expect_scores(&b, ig, want, SAME_TOL, model_fx_backends[_i], "one-step IG");
    free(ig);
    free(e);
    free(half);
    free(g);
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

/* ---- batches, chunks and classes ----------------------------------------------------------- */

static void expect_same(const float *got, const float *want, int64_t n, const char *what)
{
    double *w = dnew(n);
    for (int64_t i = 0; i < n; i++)
        w[i] = want[i];
    model_fx_expect_close(got, w, n, SAME_TOL, what);
    free(w);
}

/* A batch scores as its rows alone; IG and DeepLIFT score the same whatever the sequences per
 * model call (30 does not divide IG's 100 steps; 1 splits DeepLIFT's batch). */
START_TEST(batch_equals_rows)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    const char *name = model_fx_backends[_i];
    attn_model *m = model_fx_model(be, SEED);
    model_fx_batch b;
    model_fx_batch_fill(&b, SEED);
    for (int t = 0; t < N_METHODS; t++) {
        const char *method = attn_explain_method_name(METHODS[t]);
        char what[128];
        float *all = explain_fx_run(m, &b.in, TARGETS, METHODS[t], NULL);
        for (int64_t r = 0; r < B; r++) {
            attn_model_input one = b.in;
            one.batch = 1;
            one.ids += r * S;
            one.attention_mask += r * S;
            one.token_types += r * S;
            float *alone = explain_fx_run(m, &one, TARGETS + r, METHODS[t], NULL);
            snprintf(what, sizeof what, "%s, %s: row %lld alone", name, method, (long long)r);
            expect_same(alone, all + r * S, S, what);
            for (int64_t s = 0; s < S; s++)
                ck_assert_msg(b.mask[r * S + s] || all[r * S + s] == 0.0f,
                              "%s, %s: padding scores %g", name, method,
                              (double)all[r * S + s]);
            free(alone);
        }
        attn_explain_options opt = attn_explain_options_default();
        opt.max_batch = METHODS[t] == ATTN_EXPLAIN_INTEGRATED_GRADIENTS ? 30 : 1;
        float *chunked = explain_fx_run(m, &b.in, TARGETS, METHODS[t], &opt);
        snprintf(what, sizeof what, "%s, %s: max_batch %lld", name, method,
                 (long long)opt.max_batch);
        expect_same(chunked, all, B * S, what);
        free(chunked);
        free(all);
    }
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

/* Without classes, each row's is the model's argmax: the same scores, bit for bit, as giving
 * them (the same computation runs); another class gives other scores. */
START_TEST(null_targets_are_predicted)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    attn_model *m = model_fx_model(be, SEED);
    model_fx_batch b;
    model_fx_batch_fill(&b, SEED);
    const int64_t C = attn_model_get_config(m)->num_labels;
    float *lg = explain_fx_logits(m, &b.in);
    int32_t pred[B], next[B];
    for (int64_t r = 0; r < B; r++) {
        pred[r] = 0;
        for (int64_t c = 1; c < C; c++)
            if (lg[r * C + c] > lg[r * C + pred[r]])
                pred[r] = (int32_t)c;
        next[r] = (int32_t)((pred[r] + 1) % C);
    }
    for (int t = 0; t < N_METHODS; t++) {
        float *none = explain_fx_run(m, &b.in, NULL, METHODS[t], NULL);
        float *given_cls = explain_fx_run(m, &b.in, pred, METHODS[t], NULL);
        float *other = explain_fx_run(m, &b.in, next, METHODS[t], NULL);
        ck_assert_msg(memcmp(none, given_cls, sizeof(float) * B * S) == 0,
                      "%s, %s: NULL classes differ from the predicted ones",
                      model_fx_backends[_i], attn_explain_method_name(METHODS[t]));
        ck_assert_msg(memcmp(none, other, sizeof(float) * B * S) != 0,
                      "%s, %s: the class makes no difference", model_fx_backends[_i],
                      attn_explain_method_name(METHODS[t]));
        free(none);
        free(given_cls);
        free(other);
    }
    free(lg);
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

static Suite *explain_gradient_suite(void)
{
    Suite *s = suite_create("explain_gradient");
    TCase *tc = tcase_create("explain_gradient");
    tcase_set_timeout(tc, 1200);
    tcase_add_test(tc, gauss_legendre_exact);
    tcase_add_test(tc, gradients_vs_finite_differences);
    tcase_add_loop_test(tc, ig_completeness, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, ig_one_step, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, batch_equals_rows, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, null_targets_are_predicted, 0, MODEL_FX_N_BACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(explain_gradient_suite());
}
