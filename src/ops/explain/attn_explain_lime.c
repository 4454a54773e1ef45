/* attn_explain_lime.c - LIME as captum's Lime computes it with the saliency study's settings
 * (SkLearnLinearRegression, exponential kernel on the euclidean distance, zero baseline, every
 * scalar e_jk its own feature): per sequence, n masks z in {0,1}^(S d), the logit of the
 * target class at z * e for each, weights pi = exp(-||e - z e||^2 / (2 width^2)) and sklearn's
 * weighted linear regression with an unpenalised intercept, solved as a minimum-norm
 * least-squares problem by LAPACK's gelsd in double; a token's score is the sum of its d
 * coefficients. */
#include "attn_explain_impl.h"

#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_model_saliency.h"
#include "attn_rng.h"

/* The draws: mask bit (i, j, k) of sequence b is bit (f mod 64) of
 * attn_rng_bits(seed, LIME_STREAM + b, (i << 32) + f / 64) with f = j d + k. The
 * stream names the sequence's place in the batch and the index does not involve S, so a
 * sequence's masks are the same whatever the other sequences and the padding of the batch. */
#define LIME_STREAM (0x4c494d45ull << 32) /* "LIME" */

/* gelsd's cut-off: singular values below LIME_RCOND sigma_1 count as 0. The centred, weighted
 * matrix has rank at most n - 1 (its rows, times sqrt(pi_i), sum to 0), so its n-th singular
 * value is 0 exactly and comes out of the SVD at rounding level, about n eps sigma_1 (1e-14);
 * it must be cut, or the solution picks up a huge component along its noise direction. The
 * other n - 1 are those of a centred 0/1 matrix with far more columns than rows, near
 * sqrt(F) / 2 each (above 1e-3 sigma_1 even with F close to n), scaled by sqrt(pi_i), so
 * 1e-10 sits many orders of magnitude from both. (sklearn's own cut-off, 1e-6 on a float32
 * solve, sits at the float32 rounding level instead, which is why captum's result is not
 * reproducible on every draw: algos.md C.2b.) */
#define LIME_RCOND 1e-10

/* The token positions of row b: pos[0 .. T). */
static int64_t token_positions(const attn_model_input *in, int64_t b, int64_t *pos)
{
    int64_t T = 0;
    for (int64_t s = 0; s < in->seq; s++)
        if (attn_explain_is_token(in, b, s))
            pos[T++] = s;
    return T;
}

/* z [n, T d] (row-major, features t d + k over the row's tokens) of sequence b: the given
 * masks' token columns, or Bernoulli(0.5) draws. */
static void lime_masks(const attn_model_input *in, int64_t b, int64_t d, const int64_t *pos,
                       int64_t T, const attn_explain_options *opt, uint8_t *z)
{
    const int64_t n = opt->lime_samples, S = in->seq, F = T * d;
    for (int64_t i = 0; i < n; i++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t k = 0; k < d; k++) {
                const uint64_t f = (uint64_t)(pos[t] * d + k);
                uint8_t bit;
                if (opt->lime_masks)
                    bit = opt->lime_masks[((b * n + i) * S) * d + (int64_t)f];
                else
                    bit = (uint8_t)((attn_rng_bits(opt->seed, LIME_STREAM + (uint64_t)b,
                                                   ((uint64_t)i << 32) + f / 64) >>
                                     (f % 64)) & 1u);
                z[i * F + t * d + k] = bit;
            }
}

/* y [n]: the target class logit of each perturbed input e' = z e (padding positions keep e;
 * the mask hides them), run as batches of `chunk` copies of row b. */
static attn_status lime_outputs(attn_model *m, const attn_model_input *in, int64_t b,
                                int32_t target, const float *e, const int64_t *pos, int64_t T,
                                const uint8_t *z, int64_t n, int64_t chunk, double *y)
{
    const attn_model_config *c = attn_model_get_config(m);
    const int64_t d = c->hidden_size, C = c->num_labels, S = in->seq, F = T * d;
    const int64_t per = n < chunk ? n : chunk;
    attn_explain_rows rows;
    attn_status st = attn_explain_rows_of(in, b, per, &rows);
    if (st != ATTN_OK)
        return st;
    float *ep = malloc((size_t)(per * S * d) * sizeof(float));
    float *lg = malloc((size_t)(per * C) * sizeof(float));
    if (!ep || !lg)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "explain: LIME: out of memory (%lld inputs)",
                       (long long)per);
    for (int64_t i0 = 0; st == ATTN_OK && i0 < n; i0 += per) {
        const int64_t cnt = n - i0 < per ? n - i0 : per;
        for (int64_t r = 0; r < cnt; r++) {
            float *er = ep + r * S * d;
            const uint8_t *zr = z + (i0 + r) * F;
            memcpy(er, e, (size_t)(S * d) * sizeof(float));
            for (int64_t t = 0; t < T; t++)
                for (int64_t k = 0; k < d; k++)
                    if (!zr[t * d + k])
                        er[pos[t] * d + k] = 0.0f; /* the zero baseline */
        }
        rows.in.batch = cnt;
        rows.in.embeddings = ep;
        const attn_model_outputs o = {.logits = lg};
        st = attn_model_forward(m, &rows.in, &o);
        for (int64_t r = 0; st == ATTN_OK && r < cnt; r++)
            y[i0 + r] = lg[r * C + target];
    }
    free(ep);
    free(lg);
    attn_explain_rows_free(&rows);
    return st;
}

/* pi [n]: the kernel exp(-||e - e'||^2 / (2 width^2)), ||e - e'||^2 the sum of e^2 over the
 * masked-out features. Divided by the largest weight (a common factor leaves the weighted fit
 * unchanged) so that a narrow kernel cannot underflow every weight to 0. */
static void lime_weights(const float *e, const int64_t *pos, int64_t T, int64_t d,
                         const uint8_t *z, int64_t n, double width, double *pi)
{
    const int64_t F = T * d;
    double lo = INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double dist = 0.0;
        for (int64_t t = 0; t < T; t++)
            for (int64_t k = 0; k < d; k++) {
                const double v = e[pos[t] * d + k];
                dist += z[i * F + t * d + k] ? 0.0 : v * v;
            }
        pi[i] = dist;
        lo = dist < lo ? dist : lo;
    }
    for (int64_t i = 0; i < n; i++)
        pi[i] = exp(-(pi[i] - lo) / (2.0 * width * width));
}

/* beta [F] of sklearn's LinearRegression(fit_intercept=True) with sample weights pi: Z and y
 * centred by their pi-weighted means, rows scaled by sqrt(pi), then the minimum-norm
 * least-squares solution (gelsd, SVD). The intercept, ybar - zbar . beta, is not needed. */
static attn_status lime_fit(const uint8_t *z, const double *y, const double *pi, int64_t n,
                            int64_t F, double *beta)
{
    if (n > INT_MAX || F > INT_MAX)
        return attn_fail(ATTN_ERR_OVERFLOW, "explain: LIME: %lld samples of %lld features "
                         "exceed LAPACK's int sizes", (long long)n, (long long)F);
    const int64_t ldb = n > F ? n : F;
    double *a = malloc((size_t)n * (size_t)F * sizeof(double)); /* column-major [n, F] */
    /* rhs [max(n, F)]: LAPACKE checks all of it for NaN, the rows past n included */
    double *rhs = calloc((size_t)ldb, sizeof(double));
    double *sv = malloc((size_t)(n < F ? n : F) * sizeof(double));
    attn_status st = ATTN_OK;
    if (!a || !rhs || !sv) {
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "explain: LIME: out of memory (%lld x %lld "
                       "least squares)", (long long)n, (long long)F);
        goto done;
    }
    double wsum = 0.0, ybar = 0.0;
    for (int64_t i = 0; i < n; i++) {
        wsum += pi[i];
        ybar += pi[i] * y[i];
    }
    ybar /= wsum;
    for (int64_t f = 0; f < F; f++) {
        double zbar = 0.0;
        for (int64_t i = 0; i < n; i++)
            zbar += pi[i] * z[i * F + f];
        zbar /= wsum;
        for (int64_t i = 0; i < n; i++)
            a[f * n + i] = sqrt(pi[i]) * (z[i * F + f] - zbar);
    }
    for (int64_t i = 0; i < n; i++)
        rhs[i] = sqrt(pi[i]) * (y[i] - ybar);
    lapack_int rank = 0;
    const lapack_int info = LAPACKE_dgelsd(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)F, 1, a,
                                           (lapack_int)n, rhs, (lapack_int)ldb, sv, LIME_RCOND,
                                           &rank);
    if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "explain: LIME: out of memory in LAPACK's gelsd "
                       "(%lld x %lld)", (long long)n, (long long)F);
    else if (info < 0)
        st = attn_fail(ATTN_ERR_INVALID_ARGUMENT, "explain: LIME: LAPACK's gelsd rejected "
                       "argument %d (a NaN or infinite logit or embedding)", (int)-info);
    else if (info > 0)
        st = attn_fail(ATTN_ERR_INTERNAL, "explain: LIME: LAPACK's gelsd SVD did not converge "
                       "(%d off-diagonal elements)", (int)info);
    else
        memcpy(beta, rhs, (size_t)F * sizeof(double));
done:
    free(a);
    free(rhs);
    free(sv);
    return st;
}

/* Scores [S] of sequence b (0 at padding) from its embeddings e [S, d]. */
static attn_status lime_row(attn_model *m, const attn_model_input *in, int64_t b,
                            int32_t target, const float *e, const attn_explain_options *opt,
                            float *scores)
{
    const int64_t d = attn_model_get_config(m)->hidden_size, n = opt->lime_samples;
    int64_t *pos = malloc((size_t)in->seq * sizeof(int64_t));
    if (!pos)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "explain: LIME: out of memory");
    const int64_t T = token_positions(in, b, pos), F = T * d;
    memset(scores, 0, (size_t)in->seq * sizeof(float));
    uint8_t *z = malloc((size_t)(n * F) + 1); /* + 1: a row without tokens has F = 0 */
    double *y = malloc((size_t)n * sizeof(double)), *pi = malloc((size_t)n * sizeof(double));
    double *beta = malloc((size_t)(F + 1) * sizeof(double));
    attn_status st = ATTN_OK;
    if (!z || !y || !pi || !beta)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "explain: LIME: out of memory (%lld masks of "
                       "%lld features)", (long long)n, (long long)F);
    if (st == ATTN_OK && T > 0) {
        lime_masks(in, b, d, pos, T, opt, z);
        st = lime_outputs(m, in, b, target, e, pos, T, z, n, attn_explain_chunk(opt), y);
        if (st == ATTN_OK) {
            lime_weights(e, pos, T, d, z, n, opt->lime_kernel_width, pi);
            st = lime_fit(z, y, pi, n, F, beta);
        }
        for (int64_t t = 0; st == ATTN_OK && t < T; t++) {
            double s = 0.0;
            for (int64_t k = 0; k < d; k++)
                s += beta[t * d + k];
            scores[pos[t]] = (float)s;
        }
    }
    free(pos);
    free(z);
    free(y);
    free(pi);
    free(beta);
    return st;
}

attn_status attn_explain_lime(attn_model *m, const attn_model_input *in, const int32_t *targets,
                              const attn_explain_options *opt, float *scores)
{
    const attn_model_config *c = attn_model_get_config(m);
    const int64_t B = in->batch, S = in->seq, d = c->hidden_size;
    float *lg = malloc((size_t)(B * c->num_labels) * sizeof(float));
    float *e = malloc((size_t)(B * S * d) * sizeof(float));
    attn_status st = ATTN_OK;
    if (!lg || !e)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "explain: LIME: out of memory");
    if (st == ATTN_OK) { /* e of every sequence, kept: the perturbed forwards replace the model's */
        const attn_model_outputs o = {.logits = lg};
        st = attn_model_forward(m, in, &o);
    }
    if (st == ATTN_OK)
        memcpy(e, attn_model_last_embeddings(m), (size_t)(B * S * d) * sizeof(float));
    for (int64_t b = 0; st == ATTN_OK && b < B; b++)
        st = lime_row(m, in, b, targets[b], e + b * S * d, opt, scores + b * S);
    free(lg);
    free(e);
    return st;
}
