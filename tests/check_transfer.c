/* check_transfer.c - the attention-guided transfer model (attn_transfer) on every backend of
 * the build (ref, cpu, opencl; one the build or machine lacks is skipped with its reason):
 *
 * - the forward (target and source probabilities, attention weights, loss and its parts)
 *   against an f64 reference written here from the header's equations (the softmax taken
 *   directly, not through sdpa), in every mode, score (dot, mlp, cosine with a fixed or learned
 *   temperature), query, activation and include_target, with and without the penalty on w_t;
 * - every entry of every parameter's gradient against the central difference of the f64
 *   reference's loss (f32 results checked in double), in the same options;
 * - the attention weights are probabilities (each row sums to 1); UNIFORM equals a TARGET_ONLY
 *   model whose classifier is the plain average of the source classifiers; TARGET_ONLY ignores
 *   the source classifiers; per example and per attribute give Nt and 1 rows of weights;
 * - predict agrees with the forward and leaves its activations alone; a second backward
 *   without zero_grad doubles every gradient; a batch without source examples has no source
 *   term and the same target probabilities;
 * - a source_only batch leaves the target BCE out of the loss and of the gradient (w_t gets
 *   only the penalty's), and still reports it;
 * - train_step lowers the loss on a planted problem, and two runs from one seed agree bit for
 *   bit. */
#include "check_run.h"
#include "model_fixture.h" /* the backends */
#include "transfer_fixture.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_rng.h"

enum { F = TRANSFER_FX_F, M = TRANSFER_FX_M, K = TRANSFER_FX_K, H = TRANSFER_FX_H,
       NT = TRANSFER_FX_NT, NS = TRANSFER_FX_NS, SEED = 17 };

/* The forward in f32 against f64: a few dozen products per value; 1e-5 of the magnitude. */
#define FWD_TOL 1e-5
/* Gradients against f64 central differences with step FD_STEP (truncation ~h^2, below 1e-9):
 * |g - fd| <= GRAD_REL |fd| + GRAD_ALL max |fd|. A correct f32 backward sits within 3e-7 of the
 * largest entry (measured on ref, cpu and opencl over every case); a dropped term, factor or
 * sign is off by a share of the tensor's entries (dropping sdpa's dk, dq or dmask_add, or the
 * activation's derivative, fails). */
#define GRAD_REL 1e-3
#define GRAD_ALL 2e-5
#define FD_STEP 1e-5

/* ---- the options every check runs over ------------------------------------------------------ */
typedef struct option_case {
    attn_transfer_mode mode;
    attn_transfer_score score;
    attn_transfer_query query;
    attn_transfer_act act;
    int include_target;
    int learn_temperature; /* cosine score */
    double target_decay;
} option_case;

static const option_case cases[] = {
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_ATTRIBUTE,
     ATTN_TRANSFER_ACT_RELU, 1, 0, 0.0},
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_ATTRIBUTE,
     ATTN_TRANSFER_ACT_TANH, 0, 0, 0.0},
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_EXAMPLE,
     ATTN_TRANSFER_ACT_TANH, 1, 0, 0.0},
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_EXAMPLE,
     ATTN_TRANSFER_ACT_NONE, 0, 0, 0.0},
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_MLP, ATTN_TRANSFER_QUERY_ATTRIBUTE,
     ATTN_TRANSFER_ACT_TANH, 1, 0, 0.0},
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_MLP, ATTN_TRANSFER_QUERY_ATTRIBUTE,
     ATTN_TRANSFER_ACT_NONE, 0, 0, 0.0},
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_MLP, ATTN_TRANSFER_QUERY_EXAMPLE,
     ATTN_TRANSFER_ACT_RELU, 1, 0, 0.0},
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_MLP, ATTN_TRANSFER_QUERY_EXAMPLE,
     ATTN_TRANSFER_ACT_TANH, 0, 0, 0.0},
    {ATTN_TRANSFER_UNIFORM, ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_ATTRIBUTE,
     ATTN_TRANSFER_ACT_TANH, 1, 0, 0.0},
    {ATTN_TRANSFER_UNIFORM, ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_ATTRIBUTE,
     ATTN_TRANSFER_ACT_RELU, 0, 0, 0.0},
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_COSINE, ATTN_TRANSFER_QUERY_ATTRIBUTE,
     ATTN_TRANSFER_ACT_RELU, 1, 0, 0.3},
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_COSINE, ATTN_TRANSFER_QUERY_ATTRIBUTE,
     ATTN_TRANSFER_ACT_TANH, 0, 1, 0.0},
    {ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_COSINE, ATTN_TRANSFER_QUERY_EXAMPLE,
     ATTN_TRANSFER_ACT_TANH, 1, 1, 0.7},
    {ATTN_TRANSFER_UNIFORM, ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_ATTRIBUTE,
     ATTN_TRANSFER_ACT_NONE, 1, 0, 0.5},
    {ATTN_TRANSFER_TARGET_ONLY, ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_ATTRIBUTE,
     ATTN_TRANSFER_ACT_TANH, 1, 0, 0.0},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static attn_transfer_config case_config(int c)
{
    const option_case *o = &cases[c];
    attn_transfer_config cfg = transfer_fx_config(o->mode, o->score, o->query, o->act,
                                                  o->include_target);
    cfg.learn_temperature = (uint32_t)o->learn_temperature;
    cfg.temperature = 2.0; /* away from the default, so that the field is read */
    cfg.target_decay = o->target_decay;
    return cfg;
}

static void case_name(int c, char *buf, size_t n)
{
    const attn_transfer_config cfg = case_config(c);
    attn_transfer_config_describe(&cfg, buf, n);
}

/* ---- the f64 reference ----------------------------------------------------------------------- */
/* The parameters in double, one arena in the model's parameter order (perturbed for the
 * central differences); pointers by name. */
typedef struct ref_params {
    double *arena;
    int64_t numel;
    const double *Wc, *bc, *Ws, *bs, *wt, *bt, *Wa, *Wq, *bq, *v, *rho;
} ref_params;

static const double *ref_find(const ref_params *rp, attn_transfer *t, const char *name)
{
    int64_t off = 0;
    for (int64_t i = 0; i < attn_transfer_param_count(t); i++) {
        attn_transfer_param p;
        ck_assert_int_eq(attn_transfer_param_get(t, i, &p), ATTN_OK);
        if (!strcmp(p.name, name))
            return rp->arena + off;
        off += p.numel;
    }
    return NULL;
}

static ref_params ref_params_of(attn_transfer *t)
{
    ref_params rp = {0};
    for (int64_t i = 0; i < attn_transfer_param_count(t); i++) {
        attn_transfer_param p;
        ck_assert_int_eq(attn_transfer_param_get(t, i, &p), ATTN_OK);
        rp.numel += p.numel;
    }
    rp.arena = malloc((size_t)rp.numel * sizeof(double));
    ck_assert_ptr_nonnull(rp.arena);
    int64_t off = 0;
    for (int64_t i = 0; i < attn_transfer_param_count(t); i++) {
        attn_transfer_param p;
        attn_transfer_param_get(t, i, &p);
        for (int64_t j = 0; j < p.numel; j++)
            rp.arena[off + j] = p.value[j];
        off += p.numel;
    }
    rp.Wc = ref_find(&rp, t, "embed.weight");
    rp.bc = ref_find(&rp, t, "embed.bias");
    rp.Ws = ref_find(&rp, t, "source.weight");
    rp.bs = ref_find(&rp, t, "source.bias");
    rp.wt = ref_find(&rp, t, "target.weight");
    rp.bt = ref_find(&rp, t, "target.bias");
    rp.Wa = ref_find(&rp, t, "attention.key.weight");
    rp.Wq = ref_find(&rp, t, "attention.query.weight");
    rp.bq = ref_find(&rp, t, "attention.query.bias");
    rp.v = ref_find(&rp, t, "attention.score.weight");
    rp.rho = ref_find(&rp, t, "attention.log_temperature");
    return rp;
}

typedef struct ref_out {
    double pt[NT], ps[NS * K], alpha[NT * K], loss, loss_t, loss_s;
} ref_out;

static double act(attn_transfer_act a, double u)
{
    return a == ATTN_TRANSFER_ACT_RELU ? (u > 0 ? u : 0) : a == ATTN_TRANSFER_ACT_TANH ? tanh(u)
                                                                                        : u;
}

static void ref_embed(const attn_transfer_config *c, const ref_params *rp, const float *x,
                      double *e)
{
    for (int j = 0; j < M; j++) {
        double u = rp->bc[j];
        for (int f = 0; f < F; f++)
            u += rp->Wc[j * F + f] * x[f];
        e[j] = act(c->act, u);
    }
}

static double dot(const double *a, const double *b, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static double bce(double p, int y)
{
    return -(y ? log(p) : log(1.0 - p));
}

/* The attention weights of the query q over the source classifiers. */
static void ref_alpha(const attn_transfer_config *c, const ref_params *rp, const double *q,
                      double *alpha)
{
    double s[K], mx = -INFINITY, sum = 0.0;
    for (int i = 0; i < K; i++) {
        if (c->score == ATTN_TRANSFER_SCORE_DOT) {
            s[i] = dot(q, rp->Ws + i * M, M) / sqrt((double)M);
        } else if (c->score == ATTN_TRANSFER_SCORE_COSINE) {
            const double tau = rp->rho ? exp(rp->rho[0]) : c->temperature;
            const double *w = rp->Ws + i * M;
            s[i] = tau * dot(q, w, M) / sqrt((dot(q, q, M) + 1e-12) * (dot(w, w, M) + 1e-12));
        } else {
            s[i] = 0.0;
            for (int j = 0; j < H; j++)
                s[i] += rp->v[j] * tanh(dot(rp->Wa + j * M, rp->Ws + i * M, M) +
                                        dot(rp->Wq + j * M, q, M) + rp->bq[j]);
        }
        mx = fmax(mx, s[i]);
    }
    for (int i = 0; i < K; i++)
        sum += exp(s[i] - mx);
    for (int i = 0; i < K; i++)
        alpha[i] = exp(s[i] - mx) / sum;
}

static void ref_forward(const attn_transfer_config *c, const ref_params *rp,
                        const transfer_fx_batch *b, ref_out *o)
{
    double e[M], a[K];
    o->loss_s = 0.0;
    for (int n = 0; n < NS; n++) {
        ref_embed(c, rp, b->xs + n * F, e);
        for (int i = 0; i < K; i++) {
            o->ps[n * K + i] = sigmoid(dot(e, rp->Ws + i * M, M) + rp->bs[i]);
            o->loss_s += bce(o->ps[n * K + i], b->ys[n * K + i]) / (NS * K);
        }
    }
    o->loss_t = 0.0;
    const int per_example = c->mode == ATTN_TRANSFER_ATTENTION &&
                            c->query == ATTN_TRANSFER_QUERY_EXAMPLE;
    for (int n = 0; n < NT; n++) {
        ref_embed(c, rp, b->xt + n * F, e);
        for (int i = 0; i < K; i++)
            a[i] = c->mode == ATTN_TRANSFER_UNIFORM ? 1.0 / K : 0.0;
        if (c->mode == ATTN_TRANSFER_ATTENTION)
            ref_alpha(c, rp, per_example ? e : rp->wt, a);
        const int add = c->mode == ATTN_TRANSFER_TARGET_ONLY || c->include_target;
        double z = add ? dot(e, rp->wt, M) + rp->bt[0] : 0.0;
        for (int i = 0; i < K; i++)
            z += a[i] * (dot(e, rp->Ws + i * M, M) + rp->bs[i]);
        o->pt[n] = sigmoid(z);
        o->loss_t += bce(o->pt[n], b->yt[n]) / NT;
        if (per_example || n == 0)
            memcpy(o->alpha + n * K, a, sizeof a);
    }
    o->loss = o->loss_t + c->source_weight * o->loss_s + 0.5 * c->target_decay * dot(rp->wt,
                                                                                 rp->wt, M);
}

/* ---- comparisons and set-up ---------------------------------------------------------------- */
static void expect_close(const char *what, const float *got, const double *want, int64_t n,
                         double tol)
{
    double scale = 1e-30;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol * scale, "%s[%lld]: %.9g, reference %.9g",
                      what, (long long)i, (double)got[i], want[i]);
}

/* Parameters redrawn at scales where every path matters (the attention is far from uniform,
 * the embeddings are not saturated). */
static void randomize(attn_transfer *t, uint64_t seed)
{
    for (int64_t i = 0; i < attn_transfer_param_count(t); i++) {
        attn_transfer_param p;
        ck_assert_int_eq(attn_transfer_param_get(t, i, &p), ATTN_OK);
        for (int64_t j = 0; j < p.numel; j++)
            p.value[j] = (float)attn_rng_uniform(seed, 100 + (uint64_t)i, (uint64_t)j, -0.9, 0.9);
    }
}

/* The model of case c on backend b (NULL backend: skipped). */
static attn_transfer *case_model(attn_backend *be, int c)
{
    const attn_transfer_config cfg = case_config(c);
    attn_transfer *t = transfer_fx_model(be, &cfg, SEED);
    randomize(t, SEED + (uint64_t)c);
    return t;
}

/* ---- forward and gradients ----------------------------------------------------------------- */
static void forward_vs_reference_case(attn_backend *be, int bi, int c)
{
    char name[256];
    case_name(c, name, sizeof name);
    attn_transfer *t = case_model(be, c);
    transfer_fx_batch b;
    transfer_fx_batch_fill(&b, SEED);
    const int64_t R = attn_transfer_alpha_rows(t, NT);
    float pt[NT], ps[NS * K], alpha[NT * K];
    double loss, parts[2];
    const attn_transfer_outputs o = {.prob = pt, .alpha = alpha, .source_prob = ps,
                                     .loss = &loss, .loss_parts = parts};
    ck_assert_msg(attn_transfer_forward(t, &b.b, &o) == ATTN_OK, "%s: %s", name,
                  attn_last_error());
    ref_params rp = ref_params_of(t);
    ref_out r;
    ref_forward(attn_transfer_get_config(t), &rp, &b, &r);
    expect_close("prob", pt, r.pt, NT, FWD_TOL);
    expect_close("source_prob", ps, r.ps, NS * K, FWD_TOL);
    if (cases[c].mode == ATTN_TRANSFER_TARGET_ONLY)
        for (int i = 0; i < K; i++)
            ck_assert(alpha[i] == 0.0f);
    else
        expect_close("alpha", alpha, r.alpha, R * K, FWD_TOL);
    ck_assert_msg(fabs(loss - r.loss) <= FWD_TOL * r.loss && fabs(parts[0] - r.loss_t) <=
                  FWD_TOL * r.loss_t && fabs(parts[1] - r.loss_s) <= FWD_TOL * r.loss_s,
                  "%s: loss %.9g (%.9g, %.9g), reference %.9g (%.9g, %.9g)", name, loss,
                  parts[0], parts[1], r.loss, r.loss_t, r.loss_s);
    free(rp.arena);
    attn_transfer_free(t);
}

START_TEST(forward_vs_reference)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    for (int c = 0; c < N_CASES; c++)
        forward_vs_reference_case(be, _i, c);
    attn_backend_close(be);
}
END_TEST

static void grads_vs_central_differences_case(attn_backend *be, int bi, int c)
{
    char name[256];
    case_name(c, name, sizeof name);
    attn_transfer *t = case_model(be, c);
    const attn_transfer_config *cfg = attn_transfer_get_config(t);
    transfer_fx_batch b;
    transfer_fx_batch_fill(&b, SEED);
    attn_transfer_zero_grad(t);
    ck_assert_msg(attn_transfer_forward(t, &b.b, NULL) == ATTN_OK, "%s", attn_last_error());
    ck_assert_msg(attn_transfer_backward(t) == ATTN_OK, "%s", attn_last_error());
    ref_params rp = ref_params_of(t);
    double *fd = malloc((size_t)rp.numel * sizeof(double));
    ck_assert_ptr_nonnull(fd);
    double all = 0.0;
    for (int64_t k = 0; k < rp.numel; k++) {
        const double x0 = rp.arena[k];
        ref_out r;
        rp.arena[k] = x0 + FD_STEP;
        ref_forward(cfg, &rp, &b, &r);
        const double lp = r.loss;
        rp.arena[k] = x0 - FD_STEP;
        ref_forward(cfg, &rp, &b, &r);
        rp.arena[k] = x0;
        fd[k] = (lp - r.loss) / (2.0 * FD_STEP);
        all = fmax(all, fabs(fd[k]));
    }
    ck_assert(all > 1e-3);
    int64_t off = 0;
    for (int64_t i = 0; i < attn_transfer_param_count(t); i++) {
        attn_transfer_param p;
        ck_assert_int_eq(attn_transfer_param_get(t, i, &p), ATTN_OK);
        for (int64_t j = 0; j < p.numel; j++) {
            const double want = fd[off + j];
            ck_assert_msg(fabs(p.grad[j] - want) <= GRAD_REL * fabs(want) + GRAD_ALL * all,
                          "%s on %s: %s[%lld] = %.9g, central difference %.9g (largest %.3g)",
                          name, model_fx_backends[bi], p.name, (long long)j, (double)p.grad[j],
                          want, all);
        }
        off += p.numel;
    }
    free(fd);
    free(rp.arena);
    attn_transfer_free(t);
}

START_TEST(grads_vs_central_differences)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    for (int c = 0; c < N_CASES; c++)
        grads_vs_central_differences_case(be, _i, c);
    attn_backend_close(be);
}
END_TEST

/* A second backward without zero_grad doubles every gradient. */
START_TEST(grads_accumulate)
{
    attn_backend *be = model_fx_open("ref");
    ck_assert_ptr_nonnull(be);
    attn_transfer *t = case_model(be, 6);
    transfer_fx_batch b;
    transfer_fx_batch_fill(&b, SEED);
    attn_transfer_zero_grad(t);
    ck_assert_int_eq(attn_transfer_forward(t, &b.b, NULL), ATTN_OK);
    ck_assert_int_eq(attn_transfer_backward(t), ATTN_OK);
    attn_transfer_param p;
    ck_assert_int_eq(attn_transfer_param_find(t, "attention.query.weight", &p), ATTN_OK);
    float once[M * H];
    memcpy(once, p.grad, sizeof once);
    ck_assert_int_eq(attn_transfer_backward(t), ATTN_OK);
    for (int j = 0; j < M * H; j++)
        ck_assert_msg(fabsf(p.grad[j] - 2.0f * once[j]) <= 1e-6f * fabsf(once[j]) + 1e-12f,
                      "entry %d: %g after two, %g after one", j, p.grad[j], once[j]);
    attn_transfer_free(t);
    attn_backend_close(be);
}
END_TEST

/* ---- the options' meaning ------------------------------------------------------------------ */
/* Each row of attention weights is a probability vector; the rows are Nt per example, 1 per
 * attribute, and nothing past them is written. */
static void alpha_rows_sum_to_one_case(attn_backend *be, int bi, int c)
{
    if (cases[c].mode != ATTN_TRANSFER_ATTENTION)
        return;
    attn_transfer *t = case_model(be, c);
    transfer_fx_batch b;
    transfer_fx_batch_fill(&b, SEED);
    const int64_t R = attn_transfer_alpha_rows(t, NT);
    ck_assert_int_eq(R, cases[c].query == ATTN_TRANSFER_QUERY_EXAMPLE ? NT : 1);
    float alpha[(NT + 1) * K], palpha[(NT + 1) * K], prob[NT];
    for (int i = 0; i < (NT + 1) * K; i++)
        alpha[i] = palpha[i] = -7.0f;
    ck_assert_int_eq(attn_transfer_forward(t, &b.b, &(attn_transfer_outputs){.alpha = alpha}),
                     ATTN_OK);
    ck_assert_int_eq(attn_transfer_predict(t, NT, b.xt, prob, palpha), ATTN_OK);
    for (int64_t r = 0; r < R; r++) {
        double s = 0.0;
        for (int i = 0; i < K; i++) {
            ck_assert(alpha[r * K + i] > 0.0f && alpha[r * K + i] < 1.0f);
            s += alpha[r * K + i];
        }
        ck_assert_msg(fabs(s - 1.0) < 1e-6, "row %lld sums to %.9g", (long long)r, s);
    }
    for (int i = (int)(R * K); i < (NT + 1) * K; i++)
        ck_assert(alpha[i] == -7.0f && palpha[i] == -7.0f);
    ck_assert(!memcmp(alpha, palpha, (size_t)(R * K) * sizeof(float)));
    attn_transfer_free(t);
}

START_TEST(alpha_rows_sum_to_one)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    for (int c = 0; c < N_CASES; c++)
        alpha_rows_sum_to_one_case(be, _i, c);
    attn_backend_close(be);
}
END_TEST

/* UNIFORM equals a TARGET_ONLY model whose classifier is the plain average of the sources'
 * (plus w_t, b_t with include_target). */
START_TEST(uniform_is_the_plain_average)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i / 2]);
    if (!be)
        return;
    const int inc = _i % 2;
    const attn_transfer_config cu = transfer_fx_config(ATTN_TRANSFER_UNIFORM,
        ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_ATTRIBUTE, ATTN_TRANSFER_ACT_TANH, inc);
    const attn_transfer_config co = transfer_fx_config(ATTN_TRANSFER_TARGET_ONLY,
        ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_ATTRIBUTE, ATTN_TRANSFER_ACT_TANH, inc);
    attn_transfer *u = transfer_fx_model(be, &cu, SEED), *o = transfer_fx_model(be, &co, SEED);
    randomize(u, SEED);
    attn_transfer_param p, q;
    for (int64_t i = 0; i < attn_transfer_param_count(u); i++) {
        ck_assert_int_eq(attn_transfer_param_get(u, i, &p), ATTN_OK);
        ck_assert_int_eq(attn_transfer_param_get(o, i, &q), ATTN_OK);
        memcpy(q.value, p.value, (size_t)p.numel * sizeof(float));
    }
    attn_transfer_param ws, bs, wt, bt;
    ck_assert_int_eq(attn_transfer_param_find(o, "source.weight", &ws), ATTN_OK);
    ck_assert_int_eq(attn_transfer_param_find(o, "source.bias", &bs), ATTN_OK);
    ck_assert_int_eq(attn_transfer_param_find(o, "target.weight", &wt), ATTN_OK);
    ck_assert_int_eq(attn_transfer_param_find(o, "target.bias", &bt), ATTN_OK);
    for (int j = 0; j <= M; j++) {
        double s = 0.0;
        for (int i = 0; i < K; i++)
            s += j < M ? ws.value[i * M + j] : bs.value[i];
        float *dst = j < M ? &wt.value[j] : bt.value;
        *dst = (float)(s / K + (inc ? *dst : 0.0f));
    }
    transfer_fx_batch b;
    transfer_fx_batch_fill(&b, SEED);
    float pu[NT], po[NT], au[K];
    ck_assert_int_eq(attn_transfer_predict(u, NT, b.xt, pu, au), ATTN_OK);
    ck_assert_int_eq(attn_transfer_predict(o, NT, b.xt, po, NULL), ATTN_OK);
    for (int n = 0; n < NT; n++)
        ck_assert_msg(fabsf(pu[n] - po[n]) <= 1e-6f, "example %d: uniform %.9g, average %.9g", n,
                      pu[n], po[n]);
    for (int i = 0; i < K; i++)
        ck_assert(au[i] == 1.0f / K);
    attn_transfer_free(u);
    attn_transfer_free(o);
    attn_backend_close(be);
}
END_TEST

/* TARGET_ONLY: new source classifiers change the source probabilities, not the target's. */
START_TEST(target_only_ignores_the_sources)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    attn_transfer *t = case_model(be, N_CASES - 1);
    ck_assert_int_eq(attn_transfer_get_config(t)->mode, ATTN_TRANSFER_TARGET_ONLY);
    transfer_fx_batch b;
    transfer_fx_batch_fill(&b, SEED);
    float p0[NT], p1[NT], s0[NS * K], s1[NS * K], a[K];
    ck_assert_int_eq(attn_transfer_forward(t, &b.b, &(attn_transfer_outputs){
                         .prob = p0, .source_prob = s0, .alpha = a}), ATTN_OK);
    attn_transfer_param ws, bs;
    ck_assert_int_eq(attn_transfer_param_find(t, "source.weight", &ws), ATTN_OK);
    ck_assert_int_eq(attn_transfer_param_find(t, "source.bias", &bs), ATTN_OK);
    for (int i = 0; i < K * M; i++)
        ws.value[i] = -2.0f * ws.value[i] + 0.5f;
    bs.value[0] += 3.0f;
    ck_assert_int_eq(attn_transfer_forward(t, &b.b, &(attn_transfer_outputs){
                         .prob = p1, .source_prob = s1}), ATTN_OK);
    ck_assert(!memcmp(p0, p1, sizeof p0));
    ck_assert(memcmp(s0, s1, sizeof s0));
    for (int i = 0; i < K; i++)
        ck_assert(a[i] == 0.0f);
    attn_transfer_free(t);
    attn_backend_close(be);
}
END_TEST

/* predict gives the forward's probabilities and leaves the forward's activations: the
 * backward after it is the backward of the forward. */
START_TEST(predict_leaves_the_forward)
{
    attn_backend *be = model_fx_open("ref");
    ck_assert_ptr_nonnull(be);
    attn_transfer *t = case_model(be, 2);
    transfer_fx_batch b, other;
    transfer_fx_batch_fill(&b, SEED);
    transfer_fx_batch_fill(&other, SEED + 1);
    float pf[NT], pp[NT], pq[3];
    ck_assert_int_eq(attn_transfer_forward(t, &b.b, &(attn_transfer_outputs){.prob = pf}),
                     ATTN_OK);
    attn_transfer_zero_grad(t);
    ck_assert_int_eq(attn_transfer_backward(t), ATTN_OK);
    attn_transfer_param p;
    ck_assert_int_eq(attn_transfer_param_find(t, "embed.weight", &p), ATTN_OK);
    float g0[M * F];
    memcpy(g0, p.grad, sizeof g0);
    ck_assert_int_eq(attn_transfer_predict(t, NT, b.xt, pp, NULL), ATTN_OK);
    ck_assert(!memcmp(pf, pp, sizeof pf));
    ck_assert_int_eq(attn_transfer_predict(t, 3, other.xt, pq, NULL), ATTN_OK);
    attn_transfer_zero_grad(t);
    ck_assert_int_eq(attn_transfer_backward(t), ATTN_OK);
    ck_assert(!memcmp(g0, p.grad, sizeof g0));
    attn_transfer_free(t);
    attn_backend_close(be);
}
END_TEST

/* No source examples: the target probabilities are those of the full batch, the source term
 * is 0, and the backward runs (the source classifiers still get the attention's gradient). */
START_TEST(no_source_examples)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    attn_transfer *t = case_model(be, 6);
    transfer_fx_batch b;
    transfer_fx_batch_fill(&b, SEED);
    float p0[NT], p1[NT];
    double l0, l1, parts[2];
    ck_assert_int_eq(attn_transfer_forward(t, &b.b, &(attn_transfer_outputs){.prob = p0,
                                                                             .loss = &l0}),
                     ATTN_OK);
    attn_transfer_batch only = b.b;
    only.n_source = 0;
    only.x_source = NULL;
    only.y_source = NULL;
    ck_assert_int_eq(attn_transfer_forward(t, &only, &(attn_transfer_outputs){
                         .prob = p1, .loss = &l1, .loss_parts = parts}), ATTN_OK);
    ck_assert(!memcmp(p0, p1, sizeof p0));
    ck_assert(parts[1] == 0.0 && l1 == parts[0] && l1 < l0);
    attn_transfer_zero_grad(t);
    ck_assert_int_eq(attn_transfer_backward(t), ATTN_OK);
    attn_transfer_param p;
    ck_assert_int_eq(attn_transfer_param_find(t, "source.weight", &p), ATTN_OK);
    double g = 0.0;
    for (int64_t j = 0; j < p.numel; j++)
        g += fabs(p.grad[j]);
    ck_assert(g > 0.0 && isfinite(g));
    attn_transfer_free(t);
    attn_backend_close(be);
}
END_TEST

/* ---- training ------------------------------------------------------------------------------- */
enum { PNT = 24, PNS = 48, STEPS = 40 };
/* The cases trained: each score and query, each mode (training is the slowest check). */
static const int trained[] = {0, 3, 6, 9, 11, 14};

/* Planted: source attribute i is x . u_i > 0 for random directions u_i; the target attribute is
 * sources 0 and 1 together (x . (u_0 + u_1) > 0), which the sources' classifiers carry. */
typedef struct planted {
    float xt[PNT * F], xs[PNS * F];
    uint8_t yt[PNT], ys[PNS * K];
    attn_transfer_batch b;
} planted;

static void planted_fill(planted *p)
{
    double u[K][F];
    for (int i = 0; i < K; i++)
        for (int f = 0; f < F; f++)
            u[i][f] = attn_rng_uniform(SEED, 50 + (uint64_t)i, (uint64_t)f, -1.0, 1.0);
    for (int n = 0; n < PNS + PNT; n++) {
        float *x = n < PNS ? p->xs + n * F : p->xt + (n - PNS) * F;
        double s[K] = {0};
        for (int f = 0; f < F; f++) {
            x[f] = (float)attn_rng_uniform(SEED, 60, (uint64_t)(n * F + f), -1.0, 1.0);
            for (int i = 0; i < K; i++)
                s[i] += u[i][f] * x[f];
        }
        if (n < PNS)
            for (int i = 0; i < K; i++)
                p->ys[n * K + i] = s[i] > 0;
        else
            p->yt[n - PNS] = s[0] + s[1] > 0;
    }
    p->b = (attn_transfer_batch){.n_source = PNS, .n_target = PNT, .x_source = p->xs,
                                 .y_source = p->ys, .x_target = p->xt, .y_target = p->yt};
}

/* STEPS AdamW steps; the losses into loss[], the final parameters into t. */
static void train(attn_transfer *t, const planted *p, double *loss)
{
    attn_model_adamw opt = attn_model_adamw_default();
    opt.lr = 2e-2;
    for (int s = 0; s < STEPS; s++)
        ck_assert_msg(attn_transfer_train_step(t, &p->b, &opt, &loss[s], NULL) == ATTN_OK,
                      "step %d: %s", s, attn_last_error());
}

static void training_learns_deterministically_case(attn_backend *be, int bi, int c)
{
    char name[256];
    case_name(c, name, sizeof name);
    const attn_transfer_config cfg = case_config(c);
    planted p;
    planted_fill(&p);
    attn_transfer *a = transfer_fx_model(be, &cfg, SEED), *b = transfer_fx_model(be, &cfg, SEED);
    double la[STEPS], lb[STEPS];
    train(a, &p, la);
    train(b, &p, lb);
    ck_assert_msg(la[STEPS - 1] < 0.6 * la[0], "%s on %s: loss %.4f -> %.4f", name,
                  model_fx_backends[bi], la[0], la[STEPS - 1]);
    ck_assert(!memcmp(la, lb, sizeof la));
    for (int64_t i = 0; i < attn_transfer_param_count(a); i++) {
        attn_transfer_param pa, pb;
        attn_transfer_param_get(a, i, &pa);
        attn_transfer_param_get(b, i, &pb);
        ck_assert_msg(!memcmp(pa.value, pb.value, (size_t)pa.numel * sizeof(float)),
                      "%s: %s differs between two runs", name, pa.name);
    }
    attn_transfer_free(a);
    attn_transfer_free(b);
}

START_TEST(training_learns_deterministically)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    for (size_t c = 0; c < sizeof trained / sizeof trained[0]; c++)
        training_learns_deterministically_case(be, _i, trained[c]);
    attn_backend_close(be);
}
END_TEST

/* detach: with the target loss alone (no source examples) the source classifiers get no
 * gradient (heads, shared) and the embedding none (shared); every other gradient is the one
 * without detach, bit for bit. Loop: score dot/mlp/cosine x query attribute/example x mode
 * attention/uniform. */
START_TEST(detach_stops_the_target_gradient)
{
    attn_backend *be = model_fx_open("ref");
    ck_assert_ptr_nonnull(be);
    const attn_transfer_config base = transfer_fx_config(
        (_i / 6) & 1 ? ATTN_TRANSFER_UNIFORM : ATTN_TRANSFER_ATTENTION,
        (attn_transfer_score)(_i % 3),
        (_i / 3) & 1 ? ATTN_TRANSFER_QUERY_EXAMPLE : ATTN_TRANSFER_QUERY_ATTRIBUTE,
        ATTN_TRANSFER_ACT_TANH, 1);
    transfer_fx_batch b;
    transfer_fx_batch_fill(&b, SEED);
    b.b.n_source = 0;
    attn_transfer *t[3];
    for (int d = 0; d < 3; d++) {
        attn_transfer_config c = base;
        c.detach = (attn_transfer_detach)d;
        t[d] = transfer_fx_model(be, &c, SEED);
        attn_transfer_zero_grad(t[d]);
        ck_assert_int_eq(attn_transfer_forward(t[d], &b.b, NULL), ATTN_OK);
        ck_assert_int_eq(attn_transfer_backward(t[d]), ATTN_OK);
    }
    for (int64_t i = 0; i < attn_transfer_param_count(t[0]); i++) {
        attn_transfer_param p[3];
        for (int d = 0; d < 3; d++)
            ck_assert_int_eq(attn_transfer_param_get(t[d], i, &p[d]), ATTN_OK);
        const int source = !strncmp(p[0].name, "source.", 7);
        const int emb = !strncmp(p[0].name, "embed.", 6);
        double any = 0;
        for (int64_t j = 0; j < p[0].numel; j++) {
            any += fabs(p[0].grad[j]);
            for (int d = 1; d < 3; d++) {
                const int stopped = source || (emb && d == 2);
                ck_assert_msg(stopped ? p[d].grad[j] == 0.0f : p[d].grad[j] == p[0].grad[j],
                              "case %d detach %d %s[%lld]: %g, without detach %g", _i, d,
                              p[0].name, (long long)j, p[d].grad[j], p[0].grad[j]);
            }
        }
        if (source || emb)
            ck_assert_msg(any > 0, "case %d: %s has no gradient without detach", _i, p[0].name);
    }
    for (int d = 0; d < 3; d++)
        attn_transfer_free(t[d]);
    attn_backend_close(be);
}
END_TEST

/* source_only: the loss is the source term and the penalty; the target BCE is still reported;
 * the gradient is that of a model whose target labels cannot be fitted better: w_t gets only
 * the penalty's target_decay w_t, b_t and the attention's parameters none. Loop: the cases. */
START_TEST(source_only_leaves_the_target_out)
{
    attn_backend *be = model_fx_open("ref");
    ck_assert_ptr_nonnull(be);
    attn_transfer *t = case_model(be, _i);
    const attn_transfer_config *cfg = attn_transfer_get_config(t);
    transfer_fx_batch b;
    transfer_fx_batch_fill(&b, SEED);
    double full, l, parts[2], full_parts[2];
    ck_assert_int_eq(attn_transfer_forward(t, &b.b, &(attn_transfer_outputs){
                         .loss = &full, .loss_parts = full_parts}), ATTN_OK);
    b.b.source_only = 1;
    ck_assert_int_eq(attn_transfer_forward(t, &b.b, &(attn_transfer_outputs){
                         .loss = &l, .loss_parts = parts}), ATTN_OK);
    ck_assert(parts[0] == full_parts[0] && parts[1] == full_parts[1]);
    ck_assert_msg(fabs(l - (full - parts[0])) <= 1e-12 * full, "%g against %g", l,
                  full - parts[0]);
    attn_transfer_zero_grad(t);
    ck_assert_int_eq(attn_transfer_backward(t), ATTN_OK);
    for (int64_t i = 0; i < attn_transfer_param_count(t); i++) {
        attn_transfer_param p;
        attn_transfer_param_get(t, i, &p);
        const int wt = !strcmp(p.name, "target.weight");
        if (strncmp(p.name, "target.", 7) && strncmp(p.name, "attention.", 10))
            continue;
        for (int64_t j = 0; j < p.numel; j++) {
            const float want = wt ? (float)(cfg->target_decay * p.value[j]) : 0.0f;
            ck_assert_msg(p.grad[j] == want, "case %d %s[%lld]: %g, expected %g", _i, p.name,
                          (long long)j, p.grad[j], want);
        }
    }
    attn_transfer_free(t);
    attn_backend_close(be);
}
END_TEST

/* ---- configuration text ---------------------------------------------------------------------- */
START_TEST(config_set_and_describe)
{
    attn_transfer_config c = attn_transfer_config_default();
    ck_assert_int_eq(attn_transfer_config_check(&c), ATTN_OK);
    const char *kv[][2] = {{"features", "7"},        {"embed", "3"},
                           {"sources", "2"},         {"attn_hidden", "9"},
                           {"act", "tanh"},          {"mode", "target-only"},
                           {"score", "mlp"},         {"query", "example"},
                           {"include_target", "0"},  {"source_weight", "0.25"},
                           {"detach", "heads"},      {"learn_temperature", "1"},
                           {"temperature", "2.5"},   {"target_decay", "0.125"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_msg(attn_transfer_config_set(&c, kv[i][0], kv[i][1]) == ATTN_OK, "%s: %s",
                      kv[i][0], attn_last_error());
    char buf[256];
    ck_assert_int_eq(attn_transfer_config_describe(&c, buf, sizeof buf), ATTN_OK);
    ck_assert_str_eq(buf, "features=7 embed=3 sources=2 attn_hidden=9 act=tanh mode=target-only "
                          "score=mlp query=example include_target=0 source_weight=0.25 "
                          "detach=heads learn_temperature=1 temperature=2.5 target_decay=0.125");
    ck_assert_int_eq(attn_transfer_config_set(&c, "score", "cosine"), ATTN_OK);
    ck_assert_int_eq(c.score, ATTN_TRANSFER_SCORE_COSINE);
    ck_assert_int_eq(attn_transfer_config_check(&c), ATTN_OK);
}
END_TEST

static Suite *transfer_suite(void)
{
    Suite *s = suite_create("transfer");
    TCase *tc = tcase_create("transfer");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, forward_vs_reference, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, grads_vs_central_differences, 0, MODEL_FX_N_BACKENDS);
    tcase_add_test(tc, grads_accumulate);
    tcase_add_loop_test(tc, alpha_rows_sum_to_one, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, uniform_is_the_plain_average, 0, 2 * MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, target_only_ignores_the_sources, 0, MODEL_FX_N_BACKENDS);
    tcase_add_test(tc, predict_leaves_the_forward);
    tcase_add_loop_test(tc, no_source_examples, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, training_learns_deterministically, 0, MODEL_FX_N_BACKENDS);
    tcase_add_test(tc, config_set_and_describe);
    tcase_add_loop_test(tc, detach_stops_the_target_gradient, 0, 12);
    tcase_add_loop_test(tc, source_only_leaves_the_target_out, 0, N_CASES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(transfer_suite());
}
