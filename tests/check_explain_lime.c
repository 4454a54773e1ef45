/* check_explain_lime.c - LIME and the random baseline of attn_explain on every backend of the
 * build (model_fx_backends), on the tiny model of model_fixture.h:
 *
 * - with given masks, LIME's scores equal those of an independent f64 fit computed here in
 *   another way: beta = A^T (A A^T)^+ r with A, r the weighted, centred masks and logits (the
 *   logits from explain_fx_logits on the masked embeddings) and the pseudo-inverse from a
 *   symmetric eigendecomposition (dsyev) instead of gelsd's SVD; that fit interpolates the n
 *   samples (beta0 + z_i . beta = y_i) when the row has at least n - 1 features;
 * - then the kernel width changes nothing (the weights have no effect on an interpolant), and
 *   with more samples than a row's features the fit is the weighted least-squares one, which
 *   the width does change;
 * - drawn masks: one seed gives the same scores twice, and the same scores as the masks of the
 *   documented rule given back; another seed gives other scores; a row's scores do not depend
 *   on the other rows or on the batch's padded length; padding scores 0;
 * - random: each row a permutation of 1 .. (token count) over its tokens (a mask with holes
 *   included), padding 0, the same for a seed, another for another seed, independent of the
 *   rest of the batch. */
#include "check_run.h"
#include "explain_fixture.h"

#include "attn_explain_impl.h"
#include "attn_rng.h"

#include <check.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* B3 x S9: the second batch; S9 is also the longest row of both. */
/* B3 x S9: the second batch; S9 is also the longest row of both. */
enum { SEED = 5, N = 40, B3 = 3, S9 = 9 };

/* LIME against the f64 fit: both run the same f32 forwards (in batches of different sizes) and
 * solve well-conditioned problems (the kept singular values of a centred 0/1 matrix are all
 * within a small factor of each other), so they agree to about the f32 rounding of the
 * scores: measured at most 4e-8 of the row's largest score on every backend. Leaving out
 * gelsd's cut-off of the zero singular value alone moves the scores by 2-8 %. */
#define FIT_TOL 1e-5

static attn_backend *open_backend(int i)
{
    return model_fx_open(model_fx_backends[i]);
}

/* ---- a second batch: the fixture's two rows padded to S9, and a row with a hole ----------- */

typedef struct batch3 {
    int32_t ids[B3 * S9];
    uint8_t mask[B3 * S9];
    int32_t types[B3 * S9];
    attn_model_input in;
} batch3;

static void batch3_fill(batch3 *t, const model_fx_batch *f)
{
    static const uint8_t hole[S9] = {1, 1, 0, 1, 1, 0, 1, 0, 0};
    memset(t, 0, sizeof *t);
    for (int b = 0; b < MODEL_FX_B; b++)
        for (int s = 0; s < MODEL_FX_S; s++) {
            t->ids[b * S9 + s] = f->ids[b * MODEL_FX_S + s];
            t->mask[b * S9 + s] = f->mask[b * MODEL_FX_S + s];
            t->types[b * S9 + s] = f->types[b * MODEL_FX_S + s];
        }
    for (int s = 0; s < S9; s++) {
        t->mask[2 * S9 + s] = hole[s];
        t->ids[2 * S9 + s] = hole[s] ? 1 + (int32_t)((7 * s + 3) % 22) : 0;
    }
    t->in = (attn_model_input){.batch = B3, .seq = S9, .ids = t->ids, .attention_mask = t->mask,
                               .token_types = t->types};
}

/* ---- the masks ----------------------------------------------------------------------------- */

/* [B, n, S, d] masks from a generator unrelated to LIME's (the given-masks tests). */
static uint8_t *other_masks(const attn_model_input *in, int64_t n, int64_t d, uint64_t seed)
{
    const int64_t len = in->batch * n * in->seq * d;
    uint8_t *z = malloc((size_t)len);
    ck_assert_ptr_nonnull(z);
    for (int64_t i = 0; i < len; i++)
        z[i] = attn_rng_unit(seed, 77, (uint64_t)i) < 0.5;
    return z;
}

/* The masks LIME draws under seed, by its documented rule (attn_explain_lime.c): bit f mod 64
 * of attn_rng_bits(seed, ("LIME" << 32) + b, (i << 32) + f / 64), f = j d + k. */
static uint8_t *drawn_masks(const attn_model_input *in, int64_t n, int64_t d, uint64_t seed)
{
    const int64_t S = in->seq;
    uint8_t *z = malloc((size_t)(in->batch * n * S * d));
    ck_assert_ptr_nonnull(z);
    for (int64_t b = 0; b < in->batch; b++)
        for (int64_t i = 0; i < n; i++)
            for (uint64_t f = 0; f < (uint64_t)(S * d); f++)
                z[(b * n + i) * S * d + (int64_t)f] =
                    (attn_rng_bits(seed, (0x4c494d45ull << 32) + (uint64_t)b,
                                   ((uint64_t)i << 32) + f / 64) >> (f % 64)) & 1u;
    return z;
}

/* ---- the f64 fit ----------------------------------------------------------------------------- */

/* The token scores [S] of row b by the pseudo-inverse of the Gram matrix, and the largest
 * residual |beta0 + z_i . beta - y_i| relative to max |y_i| in *resid; *wspread gets
 * max pi / min pi. */
static void fit_row(attn_model *m, const attn_model_input *in, const float *e, int64_t b,
                    int32_t target, const uint8_t *masks, int64_t n, double width, double *s,
                    double *resid, double *wspread)
{
    const attn_model_config *c = attn_model_get_config(m);
    const int64_t S = in->seq, d = c->hidden_size, C = c->num_labels;
    /* the features: token positions of row b only */
    int64_t pos[S9], T = 0;
    for (int64_t j = 0; j < S; j++)
        if (attn_explain_is_token(in, b, j))
            pos[T++] = j;
    const int64_t F = T * d;
    double *z = malloc((size_t)(n * F) * sizeof(double)), *y = malloc((size_t)n * sizeof(double));
    double *w = malloc((size_t)n * sizeof(double)), *g = malloc((size_t)(n * n) * sizeof(double));
    double *lam = malloc((size_t)n * sizeof(double)), *u = calloc((size_t)n, sizeof(double));
    double *beta = calloc((size_t)F, sizeof(double)), *zbar = calloc((size_t)F, sizeof(double));
    float *ep = malloc((size_t)(n * S * d) * sizeof(float));
    uint8_t *mk = malloc((size_t)(n * S));
    int32_t *ty = malloc((size_t)(n * S) * sizeof(int32_t));
    ck_assert(z && y && w && g && lam && u && beta && zbar && ep && mk && ty);

    /* the n masked inputs, their logits and kernel weights */
    for (int64_t i = 0; i < n; i++) {
        double dist = 0.0;
        memcpy(ep + i * S * d, e + b * S * d, (size_t)(S * d) * sizeof(float));
        memcpy(mk + i * S, in->attention_mask + b * S, (size_t)S);
        memcpy(ty + i * S, in->token_types + b * S, (size_t)S * sizeof(int32_t));
        for (int64_t t = 0; t < T; t++)
            for (int64_t k = 0; k < d; k++) {
                const int keep = masks[((b * n + i) * S + pos[t]) * d + k];
                const double v = e[(b * S + pos[t]) * d + k];
                z[i * F + t * d + k] = keep;
                if (!keep) {
                    ep[(i * S + pos[t]) * d + k] = 0.0f;
                    dist += v * v;
                }
            }
        w[i] = exp(-dist / (2.0 * width * width));
    }
    const attn_model_input pin = {.batch = n, .seq = S, .attention_mask = mk, .token_types = ty,
                                  .embeddings = ep};
    float *lg = explain_fx_logits(m, &pin);
    double wsum = 0.0, ybar = 0.0, ymax = 0.0, wmin = INFINITY, wmax = 0.0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = lg[i * C + target];
        wsum += w[i];
        ybar += w[i] * y[i];
        ymax = fmax(ymax, fabs(y[i]));
        wmin = fmin(wmin, w[i]);
        wmax = fmax(wmax, w[i]);
    }
    ybar /= wsum;
    *wspread = wmax / wmin;

    /* A = sqrt(W) (Z - zbar) in z, r = sqrt(W) (y - ybar) in y */
    for (int64_t f = 0; f < F; f++) {
        for (int64_t i = 0; i < n; i++)
            zbar[f] += w[i] * z[i * F + f];
        zbar[f] /= wsum;
        for (int64_t i = 0; i < n; i++)
            z[i * F + f] = sqrt(w[i]) * (z[i * F + f] - zbar[f]);
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = sqrt(w[i]) * (y[i] - ybar);

    /* G = A A^T = V diag(lam) V^T; u = G^+ r dropping eigenvalues below 1e-10 of the largest
     * (the exact zero ones come out near 1e-15); beta = A^T u */
    for (int64_t i = 0; i < n; i++)
        for (int64_t l = 0; l < n; l++) {
            double acc = 0.0;
            for (int64_t f = 0; f < F; f++)
                acc += z[i * F + f] * z[l * F + f];
            g[i * n + l] = acc;
        }
    ck_assert_int_eq(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)n, g, (lapack_int)n,
                                   lam), 0);
    for (int64_t q = 0; q < n; q++) {
        if (lam[q] <= 1e-10 * lam[n - 1])
            continue;
        double vr = 0.0; /* column q of g is eigenvector q */
        for (int64_t i = 0; i < n; i++)
            vr += g[i * n + q] * y[i];
        for (int64_t i = 0; i < n; i++)
            u[i] += g[i * n + q] * vr / lam[q];
    }
    for (int64_t f = 0; f < F; f++)
        for (int64_t i = 0; i < n; i++)
            beta[f] += z[i * F + f] * u[i];

    /* the fitted model on the samples: beta0 + z_i . beta against y_i */
    double beta0 = ybar, worst = 0.0;
    for (int64_t f = 0; f < F; f++)
        beta0 -= zbar[f] * beta[f];
    for (int64_t i = 0; i < n; i++) {
        double p = beta0;
        for (int64_t t = 0; t < T; t++)
            for (int64_t k = 0; k < d; k++)
                p += masks[((b * n + i) * S + pos[t]) * d + k] * beta[t * d + k];
        worst = fmax(worst, fabs(p - lg[i * C + target]));
    }
    *resid = worst / ymax;

    for (int64_t j = 0; j < S; j++)
        s[j] = 0.0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t k = 0; k < d; k++)
            s[pos[t]] += beta[t * d + k];
    free(lg);
    free(z);
    free(y);
    free(w);
    free(g);
    free(lam);
    free(u);
    free(beta);
    free(zbar);
    free(ep);
    free(mk);
    free(ty);
}

static attn_explain_options lime_options(const uint8_t *masks, int64_t n, double width)
{
    attn_explain_options o = attn_explain_options_default();
    o.method = ATTN_EXPLAIN_LIME;
    o.lime_samples = n;
    o.lime_kernel_width = width;
    o.lime_masks = masks;
    o.max_batch = 16; /* captum's perturbations_per_eval: chunks of 16, 16, 8 */
    return o;
}

/* max |a - b| over a row / max |b| (max |a - b| when b is all 0). */
static double row_err(const float *a, const double *ref, int64_t S)
{
    double diff = 0.0, mag = 0.0;
    for (int64_t j = 0; j < S; j++) {
        diff = fmax(diff, fabs(a[j] - ref[j]));
        mag = fmax(mag, fabs(ref[j]));
    }
    return mag > 0.0 ? diff / mag : diff;
}

/* LIME with masks given on `in` against fit_row, row by row; returns the scores. When
 * `interpolates`, every row has at least n - 1 features and the fit must pass through the n
 * samples. */
static float *expect_fit(attn_model *m, const attn_model_input *in, const int32_t *targets,
                         const uint8_t *masks, int64_t n, double width, int interpolates,
                         const char *what)
{
    const attn_explain_options o = lime_options(masks, n, width);
    float *s = explain_fx_run(m, in, targets, ATTN_EXPLAIN_LIME, &o);
    float *e = explain_fx_embeddings(m, in);
    double ref[S9];
    for (int64_t b = 0; b < in->batch; b++) {
        double resid, spread;
        fit_row(m, in, e, b, targets[b], masks, n, width, ref, &resid, &spread);
        const double err = row_err(s + b * in->seq, ref, in->seq);
        ck_assert_msg(err <= FIT_TOL, "%s, row %lld: LIME vs the f64 fit: %.3g", what,
                      (long long)b, err);
        if (interpolates)
            ck_assert_msg(resid <= 1e-9, "%s, row %lld: the fit misses a sample by %.3g", what,
                          (long long)b, resid);
        for (int64_t j = 0; j < in->seq; j++)
            if (!attn_explain_is_token(in, b, j))
                ck_assert(s[b * in->seq + j] == 0.0f);
    }
    free(e);
    return s;
}

/* ---- LIME with given masks ----------------------------------------------------------------- */

START_TEST(given_masks_equal_the_fit)
{
    attn_backend *be = open_backend(_i);
    if (!be)
        return;
    attn_model *m = model_fx_model(be, SEED);
    model_fx_batch f;
    model_fx_batch_fill(&f, SEED);
    batch3 t;
    batch3_fill(&t, &f);
    const int32_t targets[B3] = {0, 2, 1};
    const int64_t d = attn_model_get_config(m)->hidden_size;
    uint8_t *z = other_masks(&t.in, N, d, 9);
    /* 7, 4 and 5 tokens of d 16: 112, 64 and 80 features, more than the 40 samples */
    float *wide = expect_fit(m, &t.in, targets, z, N, 1000.0, 1, "width 1000");
    /* a narrow kernel: the weights now spread (checked in the fit), the interpolant stays */
    float *narrow = expect_fit(m, &t.in, targets, z, N, 2.0, 1, "width 2");
    double ref[S9], resid, spread;
    float *e = explain_fx_embeddings(m, &t.in);
    fit_row(m, &t.in, e, 0, targets[0], z, N, 2.0, ref, &resid, &spread);
    ck_assert_msg(spread > 10.0, "width 2 leaves the weights within a factor %.3g", spread);
    for (int64_t b = 0; b < B3; b++) {
        double w[S9];
        for (int j = 0; j < S9; j++)
            w[j] = wide[b * S9 + j];
        ck_assert_msg(row_err(narrow + b * S9, w, S9) <= FIT_TOL,
                      "row %lld: the kernel width changed an interpolating fit", (long long)b);
    }
    free(e);
    free(wide);
    free(narrow);
    free(z);
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

/* 80 samples: row 1 (64 features and the intercept) is a least-squares fit, where the weights
 * count; rows 0 (112) and 2 (80 and the intercept) still interpolate. */
START_TEST(overdetermined_rows_are_weighted_fits)
{
    enum { N2 = 80 };
    attn_backend *be = open_backend(_i);
    if (!be)
        return;
    attn_model *m = model_fx_model(be, SEED);
    model_fx_batch f;
    model_fx_batch_fill(&f, SEED);
    batch3 t;
    batch3_fill(&t, &f);
    const int32_t targets[B3] = {1, 0, 2};
    const int64_t d = attn_model_get_config(m)->hidden_size;
    uint8_t *z = other_masks(&t.in, N2, d, 10);
    float *wide = expect_fit(m, &t.in, targets, z, N2, 1000.0, 0, "80 samples, width 1000");
    float *narrow = expect_fit(m, &t.in, targets, z, N2, 2.0, 0, "80 samples, width 2");
    double w[S9];
    for (int j = 0; j < S9; j++)
        w[j] = wide[S9 + j];
    ck_assert_msg(row_err(narrow + S9, w, S9) > 1e-3,
                  "the kernel width does not change a least-squares fit");
    free(wide);
    free(narrow);
    free(z);
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

/* ---- LIME with drawn masks ----------------------------------------------------------------- */

START_TEST(drawn_masks_are_reproducible)
{
    attn_backend *be = open_backend(_i);
    if (!be)
        return;
    attn_model *m = model_fx_model(be, SEED);
    model_fx_batch f;
    model_fx_batch_fill(&f, SEED);
    batch3 t;
    batch3_fill(&t, &f);
    const int32_t targets[B3] = {2, 1, 0};
    const int64_t d = attn_model_get_config(m)->hidden_size, S = MODEL_FX_S;
    attn_explain_options o = lime_options(NULL, N, 1000.0);
    o.seed = 3;
    float *s1 = explain_fx_run(m, &f.in, targets, ATTN_EXPLAIN_LIME, &o);
    float *s2 = explain_fx_run(m, &f.in, targets, ATTN_EXPLAIN_LIME, &o);
    uint8_t *z = drawn_masks(&f.in, N, d, o.seed);
    const attn_explain_options given = lime_options(z, N, 1000.0);
    float *s3 = explain_fx_run(m, &f.in, targets, ATTN_EXPLAIN_LIME, &given);
    ck_assert(memcmp(s1, s2, sizeof(float) * MODEL_FX_B * S) == 0);
    ck_assert_msg(memcmp(s1, s3, sizeof(float) * MODEL_FX_B * S) == 0,
                  "the drawn masks are not those of the documented rule");
    /* the rows again, padded to S9 beside a third row */
    o.seed = 3;
    float *s4 = explain_fx_run(m, &t.in, targets, ATTN_EXPLAIN_LIME, &o);
    for (int64_t b = 0; b < MODEL_FX_B; b++) {
        double ref[S9] = {0};
        for (int64_t j = 0; j < S; j++)
            ref[j] = s1[b * S + j];
        ck_assert_msg(row_err(s4 + b * S9, ref, S9) <= FIT_TOL,
                      "row %lld's draws depend on the batch", (long long)b);
    }
    o.seed = 4;
    float *s5 = explain_fx_run(m, &f.in, targets, ATTN_EXPLAIN_LIME, &o);
    double ref[MODEL_FX_S];
    for (int64_t j = 0; j < S; j++)
        ref[j] = s1[j];
    ck_assert_msg(row_err(s5, ref, S) > 1e-2, "seeds 3 and 4 give the same scores");
    free(s1);
    free(s2);
    free(s3);
    free(s4);
    free(s5);
    free(z);
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

/* ---- random ---------------------------------------------------------------------------------- */

/* Each row's tokens hold 1 .. T once each, padding 0. */
static void expect_permutation(const attn_model_input *in, const float *s)
{
    for (int64_t b = 0; b < in->batch; b++) {
        int64_t T = 0;
        int seen[S9 + 1] = {0};
        for (int64_t j = 0; j < in->seq; j++)
            T += attn_explain_is_token(in, b, j);
        for (int64_t j = 0; j < in->seq; j++) {
            const float v = s[b * in->seq + j];
            if (!attn_explain_is_token(in, b, j)) {
                ck_assert(v == 0.0f);
                continue;
            }
            ck_assert_msg(v >= 1.0f && v <= (float)T && v == floorf(v) && !seen[(int)v],
                          "row %lld position %lld: %g is not a fresh value of 1..%lld",
                          (long long)b, (long long)j, v, (long long)T);
            seen[(int)v] = 1;
        }
    }
}

START_TEST(random_is_a_permutation_per_row)
{
    attn_backend *be = open_backend(_i);
    if (!be)
        return;
    attn_model *m = model_fx_model(be, SEED);
    model_fx_batch f;
    model_fx_batch_fill(&f, SEED);
    batch3 t;
    batch3_fill(&t, &f);
    attn_explain_options o = attn_explain_options_default();
    int differs = 0;
    float *first = NULL;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        o.seed = seed;
        float *a = explain_fx_run(m, &t.in, NULL, ATTN_EXPLAIN_RANDOM, &o);
        float *again = explain_fx_run(m, &t.in, NULL, ATTN_EXPLAIN_RANDOM, &o);
        float *two = explain_fx_run(m, &f.in, NULL, ATTN_EXPLAIN_RANDOM, &o);
        expect_permutation(&t.in, a);
        expect_permutation(&f.in, two);
        ck_assert(memcmp(a, again, sizeof(float) * B3 * S9) == 0);
        for (int b = 0; b < MODEL_FX_B; b++) /* the same rows in another batch */
            ck_assert(memcmp(a + b * S9, two + b * MODEL_FX_S, sizeof(float) * MODEL_FX_S) == 0);
        if (!first)
            first = a;
        else {
            differs += memcmp(first, a, sizeof(float) * B3 * S9) != 0;
            free(a);
        }
        free(again);
        free(two);
    }
    ck_assert_msg(differs == 3, "only %d of seeds 2..4 give other permutations than seed 1",
                  differs);
    free(first);
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

static Suite *explain_lime_suite(void)
{
    Suite *s = suite_create("explain_lime");
    TCase *tc = tcase_create("explain_lime");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, given_masks_equal_the_fit, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, overdetermined_rows_are_weighted_fits, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, drawn_masks_are_reproducible, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, random_is_a_permutation_per_row, 0, MODEL_FX_N_BACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(explain_lime_suite());
}
