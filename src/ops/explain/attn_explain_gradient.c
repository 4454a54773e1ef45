/* attn_explain_gradient.c - the gradient-based saliency methods as captum computes them
 * (docs/explain.md): the vanilla gradient (Saliency, abs), input x gradient (InputXGradient),
 * integrated gradients (IntegratedGradients: zero baseline, Gauss-Legendre nodes, float32 step
 * sizes) and DeepLIFT (DeepLift: zero baseline, the rescale rule at the pooler's tanh, the only
 * module of BERT that captum's rule applies to). Each takes d f_c / d e, the gradient of the
 * target-class logit with respect to the embedding-layer output, through
 * attn_model_backward_saliency, and sums the per-element attribution over the embedding dims. */
#include "attn_explain_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_model_saliency.h"

/* DeepLift's eps: below this |z - z0| the rescale quotient is replaced by the derivative. */
#define EXPLAIN_DEEPLIFT_EPS 1e-10

/* The buffers of one method's model calls, for batches of up to `rows` sequences. */
typedef struct grad_work {
    int64_t rows, S, d, C;
    float *logits, *dlogits; /* [rows, C] */
    float *grad;             /* [rows, S, d]: d f_c / d e of the last backward */
} grad_work;

static float *floats(int64_t n)
{
    return malloc((size_t)n * sizeof(float));
}

static attn_status out_of_memory(const char *method)
{
    return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "%s: out of memory", method);
}

static void work_free(grad_work *w)
{
    free(w->logits);
    free(w->dlogits);
    free(w->grad);
}

static attn_status work_alloc(const attn_model *m, int64_t rows, int64_t S, const char *method,
                              grad_work *w)
{
    const attn_model_config *c = attn_model_get_config(m);
    *w = (grad_work){.rows = rows, .S = S, .d = c->hidden_size, .C = c->num_labels};
    w->logits = floats(rows * w->C);
    w->dlogits = floats(rows * w->C);
    w->grad = floats(rows * S * w->d);
    if (w->logits && w->dlogits && w->grad)
        return ATTN_OK;
    work_free(w);
    return out_of_memory(method);
}

/* The rows [b0, b0 + n) of a batch given by ids, as a batch of their own. */
static attn_model_input rows_slice(const attn_model_input *in, int64_t b0, int64_t n)
{
    attn_model_input r = *in;
    r.batch = n;
    if (in->ids)
        r.ids += b0 * in->seq;
    if (in->attention_mask)
        r.attention_mask += b0 * in->seq;
    if (in->token_types)
        r.token_types += b0 * in->seq;
    return r;
}

static attn_status forward(attn_model *m, const attn_model_input *in, grad_work *w)
{
    const attn_model_outputs o = {.logits = w->logits};
    return attn_model_forward(m, in, &o);
}

/* w->grad [n, S, d] = d f_c / d e through the last forward of n rows, row r's class at
 * cls[r * stride] (stride 0: one class for every row): dlogits is the class's one-hot row.
 * slope, when not NULL, replaces tanh' at the pooler (DeepLIFT). */
static attn_status backward_to_e(attn_model *m, int64_t n, const int32_t *cls, int64_t stride,
                                 const float *slope, grad_work *w)
{
    memset(w->dlogits, 0, (size_t)(n * w->C) * sizeof(float));
    for (int64_t r = 0; r < n; r++)
        w->dlogits[r * w->C + cls[r * stride]] = 1.0f;
    return attn_model_backward_saliency(m, w->dlogits, slope, w->grad);
}

/* Scores of the n rows from row b0 of `in` (e and g [n, S, d]): s_j = sum_k |g_jk| (times_input
 * 0) or sum_k e_jk g_jk (1), summed in double; 0 at padding. */
static void token_scores(const attn_model_input *in, int64_t b0, int64_t n, int64_t d,
                         const float *e, const float *g, int times_input, float *scores)
{
    const int64_t S = in->seq;
    for (int64_t r = 0; r < n; r++)
        for (int64_t s = 0; s < S; s++) {
            const float *er = e + (r * S + s) * d, *gr = g + (r * S + s) * d;
            double sum = 0.0;
            if (attn_explain_is_token(in, b0 + r, s))
                for (int64_t k = 0; k < d; k++)
                    sum += times_input ? (double)er[k] * gr[k] : fabs((double)gr[k]);
            scores[(b0 + r) * S + s] = (float)sum;
        }
}

/* ---- vanilla gradient and input x gradient ------------------------------------------------ */

attn_status attn_explain_gradient(attn_model *m, const attn_model_input *in,
                                  const int32_t *targets, int times_input, float *scores)
{
    grad_work w;
    attn_status st = work_alloc(m, in->batch, in->seq, "gradient", &w);
    if (st != ATTN_OK)
        return st;
    st = forward(m, in, &w);
    if (st == ATTN_OK)
        st = backward_to_e(m, in->batch, targets, 1, NULL, &w);
    if (st == ATTN_OK)
        token_scores(in, 0, in->batch, w.d, attn_model_last_embeddings(m), w.grad, times_input,
                     scores);
    work_free(&w);
    return st == ATTN_OK ? attn_ok() : st;
}

/* ---- integrated gradients ----------------------------------------------------------------- */

/* The rule on [0, 1] as captum builds it from numpy's leggauss: alpha_m = (1 + x_m) / 2 and
 * step sizes W_m / 2, which captum turns into a float32 tensor (so they sum to 1 only to within
 * float32 rounding). The scaled inputs alpha_m e are float32 products too (a Python float times
 * a float32 tensor). */
typedef struct ig_rule {
    int64_t steps;
    float *alpha, *step; /* [steps] */
} ig_rule;

static attn_status ig_rule_make(int64_t steps, ig_rule *q)
{
    double *x = malloc((size_t)steps * sizeof(double));
    double *wt = malloc((size_t)steps * sizeof(double));
    q->steps = steps;
    q->alpha = floats(steps);
    q->step = floats(steps);
    attn_status st = x && wt && q->alpha && q->step ? attn_explain_gauss_legendre(steps, x, wt)
                                                    : out_of_memory("integrated gradients");
    for (int64_t i = 0; st == ATTN_OK && i < steps; i++) {
        q->alpha[i] = (float)(0.5 * (1.0 + x[i]));
        q->step[i] = (float)(0.5 * wt[i]);
    }
    free(x);
    free(wt);
    return st;
}

static void ig_rule_free(ig_rule *q)
{
    free(q->alpha);
    free(q->step);
}

/* e [B, S, d] of the batch: forwards of up to w->rows sequences at a time. */
static attn_status ig_embeddings(attn_model *m, const attn_model_input *in, grad_work *w,
                                 float *e)
{
    const int64_t Sd = w->S * w->d;
    for (int64_t b0 = 0; b0 < in->batch; b0 += w->rows) {
        const int64_t n = in->batch - b0 < w->rows ? in->batch - b0 : w->rows;
        const attn_model_input part = rows_slice(in, b0, n);
        const attn_status st = forward(m, &part, w);
        if (st != ATTN_OK)
            return st;
        memcpy(e + b0 * Sd, attn_model_last_embeddings(m), (size_t)(n * Sd) * sizeof(float));
    }
    return ATTN_OK;
}

/* acc [S, d] = sum_m step_m d f_c / d e at alpha_m e for the sequence b (e [S, d]): the steps
 * run w->rows at a time as copies of row b given the scaled embeddings x [rows, S, d]. */
static attn_status ig_sequence(attn_model *m, const attn_model_input *in, int64_t b,
                               int32_t cls, const ig_rule *q, const float *e, grad_work *w,
                               float *x, float *acc)
{
    const int64_t Sd = w->S * w->d, per_call = q->steps < w->rows ? q->steps : w->rows;
    attn_explain_rows rows;
    attn_status st = attn_explain_rows_of(in, b, per_call, &rows);
    if (st != ATTN_OK)
        return st;
    memset(acc, 0, (size_t)Sd * sizeof(float));
    for (int64_t m0 = 0; m0 < q->steps && st == ATTN_OK; m0 += per_call) {
        const int64_t n = q->steps - m0 < per_call ? q->steps - m0 : per_call;
        for (int64_t r = 0; r < n; r++)
            for (int64_t i = 0; i < Sd; i++)
                x[r * Sd + i] = q->alpha[m0 + r] * e[i];
        rows.in.batch = n; /* the first n of the identical copies */
        rows.in.embeddings = x;
        st = forward(m, &rows.in, w);
        if (st == ATTN_OK)
            st = backward_to_e(m, n, &cls, 0, NULL, w);
        for (int64_t r = 0; st == ATTN_OK && r < n; r++)
            for (int64_t i = 0; i < Sd; i++)
                acc[i] += q->step[m0 + r] * w->grad[r * Sd + i];
    }
    attn_explain_rows_free(&rows);
    return st;
}

attn_status attn_explain_integrated_gradients(attn_model *m, const attn_model_input *in,
                                              const int32_t *targets,
                                              const attn_explain_options *opt, float *scores)
{
    /* Calls run up to `chunk` sequences: the batch's rows for e, then each one's steps. */
    const int64_t chunk = attn_explain_chunk(opt);
    const int64_t most = opt->ig_steps > in->batch ? opt->ig_steps : in->batch;
    grad_work w;
    attn_status st = work_alloc(m, chunk < most ? chunk : most, in->seq, "integrated gradients",
                                &w);
    if (st != ATTN_OK)
        return st;
    const int64_t Sd = w.S * w.d;
    ig_rule q = {0};
    float *e = floats(in->batch * Sd), *x = floats(w.rows * Sd), *acc = floats(Sd);
    st = e && x && acc ? ig_rule_make(opt->ig_steps, &q) : out_of_memory("integrated gradients");
    if (st == ATTN_OK)
        st = ig_embeddings(m, in, &w, e);
    for (int64_t b = 0; st == ATTN_OK && b < in->batch; b++) {
        st = ig_sequence(m, in, b, targets[b], &q, e + b * Sd, &w, x, acc);
        if (st == ATTN_OK)
            token_scores(in, b, 1, w.d, e + b * Sd, acc, 1, scores);
    }
    ig_rule_free(&q);
    free(e);
    free(x);
    free(acc);
    work_free(&w);
    return st == ATTN_OK ? attn_ok() : st;
}

/* ---- DeepLIFT ----------------------------------------------------------------------------- */

/* The rescale multiplier at the pooler's tanh, captum's nonlinear(): (tanh z - tanh z0) /
 * (z - z0) where |z - z0| >= eps, else the ordinary derivative 1 - tanh(z)^2. In double from
 * the f32 pre-activations, where z - z0 is exact and the quotient loses nothing to
 * cancellation. */
static void deeplift_slope(int64_t n, const float *z, const float *z0, float *slope)
{
    for (int64_t i = 0; i < n; i++) {
        const double a = z[i], a0 = z0[i], t = tanh(a);
        slope[i] = (float)(fabs(a - a0) >= EXPLAIN_DEEPLIFT_EPS ? (t - tanh(a0)) / (a - a0)
                                                                : 1.0 - t * t);
    }
}

/* Rows [b0, b0 + n): z0 from a forward of the all-zero embeddings (the baseline, with the
 * rows' mask), then z and the backward from the forward of the rows themselves. */
static attn_status deeplift_rows(attn_model *m, const attn_model_input *in, int64_t b0,
                                 int64_t n, const int32_t *targets, grad_work *w,
                                 const float *zeros, float *z0, float *z, float *scores)
{
    const attn_model_input part = rows_slice(in, b0, n);
    attn_model_input base = part;
    base.ids = NULL;
    base.embeddings = zeros;
    attn_status st = forward(m, &base, w);
    if (st != ATTN_OK)
        return st;
    attn_model_pooler_pre(m, z0);
    st = forward(m, &part, w);
    if (st != ATTN_OK)
        return st;
    attn_model_pooler_pre(m, z);
    deeplift_slope(n * w->d, z, z0, z); /* z becomes the slope */
    st = backward_to_e(m, n, targets + b0, 1, z, w);
    if (st == ATTN_OK)
        token_scores(in, b0, n, w->d, attn_model_last_embeddings(m), w->grad, 1, scores);
    return st;
}

attn_status attn_explain_deeplift(attn_model *m, const attn_model_input *in,
                                  const int32_t *targets, const attn_explain_options *opt,
                                  float *scores)
{
    const int64_t chunk = attn_explain_chunk(opt);
    grad_work w;
    attn_status st = work_alloc(m, chunk < in->batch ? chunk : in->batch, in->seq, "deeplift",
                                &w);
    if (st != ATTN_OK)
        return st;
    float *zeros = calloc((size_t)(w.rows * w.S * w.d), sizeof(float));
    float *z0 = floats(w.rows * w.d), *z = floats(w.rows * w.d);
    st = zeros && z0 && z ? ATTN_OK : out_of_memory("deeplift");
    for (int64_t b0 = 0; st == ATTN_OK && b0 < in->batch; b0 += w.rows) {
        const int64_t n = in->batch - b0 < w.rows ? in->batch - b0 : w.rows;
        st = deeplift_rows(m, in, b0, n, targets, &w, zeros, z0, z, scores);
    }
    free(zeros);
    free(z0);
    free(z);
    work_free(&w);
    return st == ATTN_OK ? attn_ok() : st;
}
