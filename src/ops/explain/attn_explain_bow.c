/* attn_explain_bow.c - the bag-of-words reader of the simulated study: multinomial logistic
 * regression on the token counts of a text, trained full-batch with AdamW. A text's feature of
 * id v is log(1 + count of v), so a word repeated ten times weighs about twice one seen once
 * rather than ten times (and a long text does not swamp its logits); padding and the ignored
 * ids (special tokens, the filler of hidden tokens) are not counted, so a text reduced to them
 * is answered by the biases alone. Weights start at U(-1e-3, 1e-3) from the counter-based
 * generator under the seed, biases at 0; everything runs in double on one thread, so a
 * training is a pure function of its inputs. */
#include "attn_explain_bow_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_rng.h"

/* AdamW's constants (torch.optim.AdamW's defaults). */
#define BOW_BETA1 0.9
#define BOW_BETA2 0.999
#define BOW_EPS 1e-8

attn_explain_bow_options attn_explain_bow_options_default(void)
{
    return (attn_explain_bow_options){.epochs = 200, .lr = 0.05, .l2 = 1e-4, .seed = 1};
}

/* ---- checks --------------------------------------------------------------------------------- */
/* N texts of S ids: sizes, mask 0/1, ids of the tokens (mask 1) in [0, vocab); the ids at
 * padding are never read. */
static attn_status check_texts(const char *fn, int64_t vocab, int64_t N, int64_t S,
                               const int32_t *ids, const uint8_t *mask)
{
    if (!ids)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: NULL ids", fn);
    if (N < 1 || S < 1)
        return attn_fail(ATTN_ERR_SHAPE, "%s: N %lld x S %lld must be positive", fn,
                         (long long)N, (long long)S);
    if (N > INT64_MAX / S || (uint64_t)(N * S) > SIZE_MAX / sizeof(double))
        return attn_fail(ATTN_ERR_OVERFLOW, "%s: N %lld x S %lld overflows", fn, (long long)N,
                         (long long)S);
    for (int64_t i = 0; i < N * S; i++) {
        if (mask && mask[i] > 1)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "%s: mask %d at [%lld, %lld] is not 0 or 1", fn, (int)mask[i],
                             (long long)(i / S), (long long)(i % S));
        if ((!mask || mask[i]) && (ids[i] < 0 || ids[i] >= vocab))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "%s: id %d at [%lld, %lld] is outside the vocabulary [0, %lld)", fn,
                             (int)ids[i], (long long)(i / S), (long long)(i % S),
                             (long long)vocab);
    }
    return ATTN_OK;
}

static attn_status check_options(int64_t vocab, const attn_explain_bow_options *o)
{
    const char *fn = "attn_explain_bow_train";
    attn_status st = ATTN_DESC_RESERVED(o, "attn_explain_bow_options_default");
    if (st != ATTN_OK)
        return st;
    if (o->epochs < 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: epochs = %lld must be >= 1", fn,
                         (long long)o->epochs);
    if (!(o->lr > 0.0 && isfinite(o->lr)) || !(o->l2 >= 0.0 && isfinite(o->l2)))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "%s: lr %g, l2 %g: need a finite lr > 0 and l2 >= 0", fn, o->lr, o->l2);
    if (o->n_ignore < 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: n_ignore = %lld is negative", fn,
                         (long long)o->n_ignore);
    if (o->n_ignore > 0 && !o->ignore)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: NULL ignore with n_ignore = %lld", fn,
                         (long long)o->n_ignore);
    for (int64_t i = 0; i < o->n_ignore; i++)
        if (o->ignore[i] < 0 || o->ignore[i] >= vocab)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "%s: ignore[%lld] = %d is outside the vocabulary [0, %lld)", fn,
                             (long long)i, (int)o->ignore[i], (long long)vocab);
    return ATTN_OK;
}

static attn_status check_train(int64_t vocab, int64_t C, int64_t N, int64_t S,
                               const int32_t *ids, const uint8_t *mask, const int32_t *labels,
                               const attn_explain_bow_options *opt, attn_explain_bow **out)
{
    const char *fn = "attn_explain_bow_train";
    if (!labels || !opt || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: NULL %s", fn,
                         !labels ? "labels" : !opt ? "options" : "out");
    if (vocab < 1 || C < 2)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "%s: vocab %lld and num_labels %lld: need vocab >= 1 and >= 2 classes",
                         fn, (long long)vocab, (long long)C);
    if (vocab >= INT64_MAX / C || (uint64_t)(vocab * C + C) > SIZE_MAX / (4 * sizeof(double)))
        return attn_fail(ATTN_ERR_OVERFLOW, "%s: vocab %lld x num_labels %lld overflows", fn,
                         (long long)vocab, (long long)C);
    attn_status st = check_texts(fn, vocab, N, S, ids, mask);
    if (st == ATTN_OK)
        st = check_options(vocab, opt);
    if (st != ATTN_OK)
        return st;
    for (int64_t i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= C)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: label %d of text %lld is outside "
                             "[0, %lld)", fn, (int)labels[i], (long long)i, (long long)C);
    return ATTN_OK;
}

/* ---- features ------------------------------------------------------------------------------- */
/* The sparse features of N texts: text i holds (id[j], x[j]) for j in [start[i], start[i+1]). */
typedef struct bow_features {
    int64_t *start;
    int32_t *id;
    double *x;
} bow_features;

static void features_free(bow_features *f)
{
    free(f->start);
    free(f->id);
    free(f->x);
    *f = (bow_features){0};
}

static attn_status features_of(const attn_explain_bow *r, int64_t N, int64_t S,
                               const int32_t *ids, const uint8_t *mask, bow_features *f)
{
    int64_t *count = calloc((size_t)r->vocab, sizeof *count);
    f->start = malloc((size_t)(N + 1) * sizeof *f->start);
    f->id = malloc((size_t)(N * S) * sizeof *f->id);
    f->x = malloc((size_t)(N * S) * sizeof *f->x);
    if (!count || !f->start || !f->id || !f->x) {
        free(count);
        features_free(f);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "bag-of-words reader: features of %lld texts",
                         (long long)N);
    }
    int64_t nnz = 0;
    for (int64_t i = 0; i < N; i++) {
        f->start[i] = nnz;
        for (int64_t s = 0; s < S; s++) {
            const int64_t t = i * S + s;
            if ((mask && !mask[t]) || r->ignore[ids[t]])
                continue;
            if (count[ids[t]]++ == 0)
                f->id[nnz++] = ids[t]; /* first occurrence: a new feature of text i */
        }
        for (int64_t j = f->start[i]; j < nnz; j++) {
            f->x[j] = log1p((double)count[f->id[j]]);
            count[f->id[j]] = 0;
        }
    }
    f->start[N] = nnz;
    free(count);
    return ATTN_OK;
}

/* Class probabilities p [C] of text i (softmax of bias + W^T x, in double). */
static void text_probs(const attn_explain_bow *r, const bow_features *f, int64_t i, double *p)
{
    const int64_t C = r->num_labels;
    for (int64_t c = 0; c < C; c++)
        p[c] = r->bias[c];
    for (int64_t j = f->start[i]; j < f->start[i + 1]; j++) {
        const double *w = r->w + (int64_t)f->id[j] * C;
        for (int64_t c = 0; c < C; c++)
            p[c] += f->x[j] * w[c];
    }
    double mx = p[0], sum = 0.0;
    for (int64_t c = 1; c < C; c++)
        mx = p[c] > mx ? p[c] : mx;
    for (int64_t c = 0; c < C; c++)
        sum += (p[c] = exp(p[c] - mx));
    for (int64_t c = 0; c < C; c++)
        p[c] /= sum;
}

/* ---- training ------------------------------------------------------------------------------- */
/* The gradient of the mean cross-entropy with respect to (W, bias), into g [vocab C + C]. */
static void gradient(const attn_explain_bow *r, const bow_features *f, int64_t N,
                     const int32_t *labels, double *p, double *g)
{
    const int64_t C = r->num_labels, nw = r->vocab * C;
    memset(g, 0, (size_t)(nw + C) * sizeof *g);
    for (int64_t i = 0; i < N; i++) {
        text_probs(r, f, i, p);
        p[labels[i]] -= 1.0;
        for (int64_t c = 0; c < C; c++)
            g[nw + c] += p[c] / (double)N;
        for (int64_t j = f->start[i]; j < f->start[i + 1]; j++) {
            double *gw = g + (int64_t)f->id[j] * C;
            for (int64_t c = 0; c < C; c++)
                gw[c] += f->x[j] * p[c] / (double)N;
        }
    }
}

/* One AdamW step t (from 1) on the n parameters; decay on the first n_decay (the weights, not
 * the biases), decoupled from the gradient as in torch.optim.AdamW. */
static void adamw_step(double *param, const double *g, double *m1, double *m2, int64_t n,
                       int64_t n_decay, int64_t t, const attn_explain_bow_options *o)
{
    const double c1 = 1.0 - pow(BOW_BETA1, (double)t), c2 = 1.0 - pow(BOW_BETA2, (double)t);
    for (int64_t i = 0; i < n; i++) {
        if (i < n_decay)
            param[i] -= o->lr * o->l2 * param[i];
        m1[i] = BOW_BETA1 * m1[i] + (1.0 - BOW_BETA1) * g[i];
        m2[i] = BOW_BETA2 * m2[i] + (1.0 - BOW_BETA2) * g[i] * g[i];
        param[i] -= o->lr * (m1[i] / c1) / (sqrt(m2[i] / c2) + BOW_EPS);
    }
}

static attn_explain_bow *bow_new(int64_t vocab, int64_t C, const attn_explain_bow_options *o)
{
    attn_explain_bow *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->vocab = vocab;
    r->num_labels = C;
    r->w = malloc((size_t)(vocab * C + C) * sizeof *r->w);
    r->ignore = calloc((size_t)vocab, 1);
    if (!r->w || !r->ignore) {
        attn_explain_bow_free(r);
        return NULL;
    }
    r->bias = r->w + vocab * C;
    for (int64_t i = 0; i < vocab * C; i++)
        r->w[i] = attn_rng_uniform(o->seed, 0, (uint64_t)i, -1e-3, 1e-3);
    for (int64_t c = 0; c < C; c++)
        r->bias[c] = 0.0;
    for (int64_t i = 0; i < o->n_ignore; i++)
        r->ignore[o->ignore[i]] = 1;
    return r;
}

static attn_status fit(attn_explain_bow *r, const bow_features *f, int64_t N,
                       const int32_t *labels, const attn_explain_bow_options *o)
{
    const int64_t C = r->num_labels, nw = r->vocab * C, n = nw + C;
    double *g = malloc((size_t)n * sizeof *g), *m1 = calloc((size_t)n, sizeof *m1),
           *m2 = calloc((size_t)n, sizeof *m2), *p = malloc((size_t)C * sizeof *p);
    const int ok = g && m1 && m2 && p;
    for (int64_t t = 1; ok && t <= o->epochs; t++) {
        gradient(r, f, N, labels, p, g);
        adamw_step(r->w, g, m1, m2, n, nw, t, o);
    }
    free(g);
    free(m1);
    free(m2);
    free(p);
    return ok ? ATTN_OK
              : attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_explain_bow_train: optimiser state of "
                          "%lld parameters", (long long)n);
}

attn_status attn_explain_bow_train(int64_t vocab, int64_t num_labels, int64_t N, int64_t S,
                                   const int32_t *ids, const uint8_t *mask,
                                   const int32_t *labels, const attn_explain_bow_options *opt,
                                   attn_explain_bow **out)
{
    attn_status st = check_train(vocab, num_labels, N, S, ids, mask, labels, opt, out);
    if (st != ATTN_OK)
        return st;
    attn_explain_bow *r = bow_new(vocab, num_labels, opt);
    if (!r)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_explain_bow_train: a reader of %lld ids x "
                         "%lld classes", (long long)vocab, (long long)num_labels);
    bow_features f = {0};
    st = features_of(r, N, S, ids, mask, &f);
    if (st == ATTN_OK)
        st = fit(r, &f, N, labels, opt);
    features_free(&f);
    if (st != ATTN_OK) {
        attn_explain_bow_free(r);
        return st;
    }
    *out = r;
    return attn_ok();
}

/* ---- prediction ----------------------------------------------------------------------------- */
attn_status attn_explain_bow_predict(const attn_explain_bow *r, int64_t N, int64_t S,
                                     const int32_t *ids, const uint8_t *mask, float *probs)
{
    const char *fn = "attn_explain_bow_predict";
    if (!r || !probs)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: NULL %s", fn, !r ? "reader" : "probs");
    attn_status st = check_texts(fn, r->vocab, N, S, ids, mask);
    if (st != ATTN_OK)
        return st;
    if ((uint64_t)N > SIZE_MAX / sizeof(float) / (uint64_t)r->num_labels)
        return attn_fail(ATTN_ERR_OVERFLOW, "%s: N %lld x %lld classes overflows", fn,
                         (long long)N, (long long)r->num_labels);
    bow_features f = {0};
    double *p = malloc((size_t)r->num_labels * sizeof *p);
    st = p ? features_of(r, N, S, ids, mask, &f)
           : attn_fail(ATTN_ERR_OUT_OF_MEMORY, "%s: %lld classes", fn, (long long)r->num_labels);
    for (int64_t i = 0; st == ATTN_OK && i < N; i++) {
        text_probs(r, &f, i, p);
        for (int64_t c = 0; c < r->num_labels; c++)
            probs[i * r->num_labels + c] = (float)p[c];
    }
    features_free(&f);
    free(p);
    return st == ATTN_OK ? attn_ok() : st;
}

void attn_explain_bow_free(attn_explain_bow *r)
{
    if (!r)
        return;
    free(r->w);
    free(r->ignore);
    free(r);
}
