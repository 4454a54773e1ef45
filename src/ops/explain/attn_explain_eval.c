/* attn_explain_eval.c - the evaluation of one method's scores without a crowd (docs/explain.md):
 * the simulated readers (the model itself, and optionally the bag-of-words reader) shown the
 * top-k tokens of each text with every hidden token replaced by the filler, as in the study;
 * precision/recall against planted rationales; the faithfulness figures (comprehensiveness,
 * sufficiency, AOPC, log-odds, deletion and insertion curves). Every masked text is a "set"
 * (one selection applied to the B rows); all sets run through the model in batches of
 * max_batch sequences and each figure is read off their class probabilities (softmax in double
 * of the model's logits). Also the study's weighted accuracy over k. */
#include "attn_explain_bow_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_model_saliency.h"

/* Probabilities are clamped to this before the log of the log-odds, so a class the masked text
 * drives to probability 0 (in f32 logits) gives a large finite figure rather than -inf. */
#define EVAL_P_FLOOR 1e-12
#define EVAL_DEFAULT_BATCH 128

attn_explain_eval_options attn_explain_eval_options_default(void)
{
    /* No id is a filler in every vocabulary: filler_id -1 means "not given" and is refused. */
    return (attn_explain_eval_options){
        .filler_id = -1, .n_k = 5, .k = {0.05, 0.1, 0.2, 0.3, 0.4}, .k_as_fraction = 1,
        .n_bins = 5, .bins = {0.01, 0.05, 0.1, 0.2, 0.5}, .aopc_steps = 10,
        .log_odds_fraction = 0.2, .curve_points = 11, .max_batch = EVAL_DEFAULT_BATCH};
}

/* ---- checks --------------------------------------------------------------------------------- */
#define EVAL_FN "attn_explain_evaluate"

/* n values in (0, 1] (fractions) or whole counts >= 1; n in [1, ATTN_EXPLAIN_MAX_K]. */
static attn_status check_list(const char *field, int64_t n, const double *v, int as_fraction)
{
    if (n < 1 || n > ATTN_EXPLAIN_MAX_K)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, EVAL_FN ": opt.n_%s = %lld must be in "
                         "[1, %d]", field, (long long)n, ATTN_EXPLAIN_MAX_K);
    for (int64_t i = 0; i < n; i++) {
        const int ok = as_fraction ? v[i] > 0.0 && v[i] <= 1.0
                                   : v[i] >= 1.0 && isfinite(v[i]) && v[i] == floor(v[i]);
        if (!ok)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, EVAL_FN ": opt.%s[%lld] = %g must be %s",
                             field, (long long)i, v[i],
                             as_fraction ? "a fraction in (0, 1]" : "a whole count >= 1");
    }
    return ATTN_OK;
}

static attn_status check_options(const attn_model_config *c, const attn_explain_eval_options *o)
{
    attn_status st = ATTN_DESC_RESERVED(o, "attn_explain_eval_options_default");
    if (st != ATTN_OK)
        return st;
    if (o->filler_id == -1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         EVAL_FN ": opt.filler_id is required: the id of the token that "
                         "replaces a hidden one (\".\" in the study); the defaults leave it -1");
    if (o->filler_id < 0 || o->filler_id >= c->vocab_size)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, EVAL_FN ": opt.filler_id = %d is outside "
                         "the vocabulary [0, %lld)", (int)o->filler_id, (long long)c->vocab_size);
    if (o->k_as_fraction != 0 && o->k_as_fraction != 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, EVAL_FN ": opt.k_as_fraction = %d must be "
                         "0 or 1", o->k_as_fraction);
    st = check_list("k", o->n_k, o->k, o->k_as_fraction);
    if (st == ATTN_OK)
        st = check_list("bins", o->n_bins, o->bins, 1);
    if (st != ATTN_OK)
        return st;
    if (o->aopc_steps < 0 || !(o->log_odds_fraction > 0.0 && o->log_odds_fraction <= 1.0) ||
        o->curve_points < 2 || o->curve_points > ATTN_EXPLAIN_MAX_CURVE || o->max_batch < 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         EVAL_FN ": opt.aopc_steps %lld, log_odds_fraction %g, curve_points "
                         "%lld, max_batch %lld: need aopc_steps >= 0, a fraction in (0, 1], "
                         "curve_points in [2, %d], max_batch >= 0 (0: %d)",
                         (long long)o->aopc_steps, o->log_odds_fraction,
                         (long long)o->curve_points, (long long)o->max_batch,
                         ATTN_EXPLAIN_MAX_CURVE, EVAL_DEFAULT_BATCH);
    return ATTN_OK;
}

/* A [B, S] 0/1 array that may be 1 only where `within` is (NULL: anywhere). */
static attn_status check_flags(const char *what, const uint8_t *v, const uint8_t *within,
                               const char *within_name, int64_t B, int64_t S)
{
    for (int64_t i = 0; i < B * S; i++) {
        if (v[i] > 1)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, EVAL_FN ": %s %d at [%lld, %lld] is not "
                             "0 or 1", what, (int)v[i], (long long)(i / S), (long long)(i % S));
        if (v[i] && within && !within[i])
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, EVAL_FN ": %s at [%lld, %lld] is 1 on "
                             "a position that is %s", what, (long long)(i / S),
                             (long long)(i % S), within_name);
    }
    return ATTN_OK;
}

/* The reader must know the model's classes, the filler and every id of the texts. */
static attn_status check_bow(const attn_explain_bow *r, const attn_model_config *c,
                             const attn_model_input *in, int32_t filler)
{
    if (r->num_labels != c->num_labels)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, EVAL_FN ": the bag-of-words reader has %lld "
                         "classes, the model %lld", (long long)r->num_labels,
                         (long long)c->num_labels);
    int32_t top = filler;
    for (int64_t i = 0; i < in->batch * in->seq; i++)
        if ((!in->attention_mask || in->attention_mask[i]) && in->ids[i] > top)
            top = in->ids[i];
    if (top >= r->vocab)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, EVAL_FN ": id %d (texts or filler) is "
                         "outside the bag-of-words reader's vocabulary [0, %lld)", (int)top,
                         (long long)r->vocab);
    return ATTN_OK;
}

static attn_status check_batch(attn_model *m, const attn_model_input *in,
                               const int32_t *labels, const uint8_t *eligible,
                               const float *scores, const attn_explain_eval_options *o)
{
    const attn_model_config *c = attn_model_get_config(m);
    if (!in->ids || in->embeddings)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         EVAL_FN ": the input must give token ids (and no embeddings): hidden "
                         "tokens are replaced by the filler's id");
    attn_status st = attn_model_input_check(m, in);
    if (st != ATTN_OK)
        return st;
    const int64_t B = in->batch, S = in->seq;
    for (int64_t b = 0; b < B; b++)
        if (labels[b] < 0 || labels[b] >= c->num_labels)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, EVAL_FN ": label %d of row %lld is "
                             "outside [0, %lld)", (int)labels[b], (long long)b,
                             (long long)c->num_labels);
    st = check_flags("eligible", eligible, in->attention_mask, "padding", B, S);
    if (st == ATTN_OK && o->rationale)
        st = check_flags("rationale", o->rationale, eligible, "not eligible", B, S);
    if (st == ATTN_OK && o->bow)
        st = check_bow(o->bow, c, in, o->filler_id);
    if (st != ATTN_OK)
        return st;
    for (int64_t i = 0; i < B * S; i++)
        if (eligible[i] && isnan(scores[i]))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, EVAL_FN ": score at [%lld, %lld] is NaN",
                             (long long)(i / S), (long long)(i % S));
    return ATTN_OK;
}

static attn_status check_all(attn_model *m, const attn_model_input *in, const int32_t *labels,
                             const uint8_t *eligible, const float *scores,
                             const attn_explain_eval_options *o, const attn_explain_eval *out)
{
    if (!m || !in || !labels || !eligible || !scores || !o || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, EVAL_FN ": NULL %s",
                         !m ? "model" : !in ? "input" : !labels ? "labels" : !eligible ?
                         "eligible" : !scores ? "scores" : !o ? "options" : "out");
    attn_status st = check_options(attn_model_get_config(m), o);
    return st == ATTN_OK ? check_batch(m, in, labels, eligible, scores, o) : st;
}

/* ---- the sets of masked texts --------------------------------------------------------------- */
/* One selection applied to every row: the top k (a count or a fraction) either shown alone
 * (the rest of the eligible tokens hidden) or removed. */
typedef struct eval_set {
    double k;
    int as_fraction, show;
} eval_set;

/* Where each figure's sets start. Set 0 is the full text. AOPC's k = 1..aopc_n removed follow
 * (k beyond the longest row's eligible count repeat the last of them, so they are not run). */
typedef struct eval_plan {
    int64_t n, reader, comp, suff, aopc, aopc_n, log_odds, deletion, insertion;
    eval_set *sets;
} eval_plan;

static int64_t max_eligible(const uint8_t *eligible, int64_t B, int64_t S)
{
    int64_t best = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t n = 0;
        for (int64_t s = 0; s < S; s++)
            n += eligible[b * S + s];
        best = n > best ? n : best;
    }
    return best;
}

static attn_status plan_make(const attn_explain_eval_options *o, int64_t max_elig,
                             eval_plan *p)
{
    const int64_t P = o->curve_points;
    p->aopc_n = o->aopc_steps < max_elig ? o->aopc_steps : max_elig;
    p->reader = 1;
    p->comp = p->reader + o->n_k;
    p->suff = p->comp + o->n_bins;
    p->aopc = p->suff + o->n_bins;
    p->log_odds = p->aopc + p->aopc_n;
    p->deletion = p->log_odds + 1;
    p->insertion = p->deletion + P;
    p->n = p->insertion + P;
    p->sets = malloc((size_t)p->n * sizeof *p->sets);
    if (!p->sets)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, EVAL_FN ": %lld masked sets", (long long)p->n);
    eval_set *s = p->sets;
    s[0] = (eval_set){0.0, 0, 0};
    for (int64_t i = 0; i < o->n_k; i++)
        s[p->reader + i] = (eval_set){o->k[i], o->k_as_fraction, 1};
    for (int64_t i = 0; i < o->n_bins; i++) {
        s[p->comp + i] = (eval_set){o->bins[i], 1, 0};
        s[p->suff + i] = (eval_set){o->bins[i], 1, 1};
    }
    for (int64_t j = 0; j < p->aopc_n; j++)
        s[p->aopc + j] = (eval_set){(double)(j + 1), 0, 0};
    s[p->log_odds] = (eval_set){o->log_odds_fraction, 1, 0};
    for (int64_t i = 0; i < P; i++) {
        const double t = (double)i / (double)(P - 1);
        s[p->deletion + i] = (eval_set){t, 1, 0};
        s[p->insertion + i] = (eval_set){t, 1, 1};
    }
    return ATTN_OK;
}

/* Row b's ids with its hidden tokens replaced by the filler: with `show` the eligible tokens
 * not kept, else the kept ones. Special tokens, punctuation and padding stay. Returns the
 * number hidden. */
static int64_t mask_row(const int32_t *ids, const uint8_t *eligible, const uint8_t *keep,
                        int show, int32_t filler, int64_t S, int32_t *out)
{
    int64_t hidden = 0;
    for (int64_t s = 0; s < S; s++) {
        const int hide = eligible[s] && (show ? !keep[s] : keep[s]);
        out[s] = hide ? filler : ids[s];
        hidden += hide;
    }
    return hidden;
}

/* ---- running the model on the masked texts -------------------------------------------------- */
/* Masked rows are gathered into batches of `cap` sequences; each batch's class probabilities
 * land in probs [n_sets * B, C] at the rows named by dest. */
typedef struct eval_runner {
    attn_model *m;
    const attn_model_input *in;
    int64_t B, S, C, cap, n;
    int32_t *ids, *types;
    uint8_t *mask;
    float *logits;
    int64_t *dest;
    double *probs;
} eval_runner;

static void runner_free(eval_runner *r)
{
    free(r->ids);
    free(r->types);
    free(r->mask);
    free(r->logits);
    free(r->dest);
    free(r->probs);
}

static attn_status runner_init(eval_runner *r, attn_model *m, const attn_model_input *in,
                               int64_t n_sets, int64_t max_batch)
{
    const int64_t B = in->batch, S = in->seq, C = attn_model_get_config(m)->num_labels;
    const int64_t total = n_sets * B, want = max_batch ? max_batch : EVAL_DEFAULT_BATCH;
    const int64_t cap = want < total ? want : total;
    *r = (eval_runner){.m = m, .in = in, .B = B, .S = S, .C = C, .cap = cap};
    if ((uint64_t)cap > SIZE_MAX / sizeof(int32_t) / (uint64_t)S ||
        (uint64_t)total > SIZE_MAX / sizeof(double) / (uint64_t)C)
        return attn_fail(ATTN_ERR_OVERFLOW, EVAL_FN ": %lld masked texts overflow",
                         (long long)total);
    r->ids = malloc((size_t)(cap * S) * sizeof *r->ids);
    r->types = in->token_types ? malloc((size_t)(cap * S) * sizeof *r->types) : NULL;
    r->mask = in->attention_mask ? malloc((size_t)(cap * S)) : NULL;
    r->logits = malloc((size_t)(cap * C) * sizeof *r->logits);
    r->dest = malloc((size_t)cap * sizeof *r->dest);
    r->probs = malloc((size_t)(total * C) * sizeof *r->probs);
    if (!r->ids || (in->token_types && !r->types) || (in->attention_mask && !r->mask) ||
        !r->logits || !r->dest || !r->probs) {
        runner_free(r);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, EVAL_FN ": buffers of %lld masked texts",
                         (long long)total);
    }
    return ATTN_OK;
}

/* Runs the sequences held; softmax in double into their rows of probs. */
static attn_status runner_flush(eval_runner *r)
{
    if (r->n == 0)
        return ATTN_OK;
    const attn_model_input in = {.batch = r->n, .seq = r->S, .ids = r->ids,
                                 .attention_mask = r->mask, .token_types = r->types};
    const attn_model_outputs out = {.logits = r->logits};
    const attn_status st = attn_model_forward(r->m, &in, &out);
    if (st != ATTN_OK)
        return st;
    for (int64_t i = 0; i < r->n; i++) {
        const float *z = r->logits + i * r->C;
        double *p = r->probs + r->dest[i] * r->C, mx = z[0], sum = 0.0;
        for (int64_t c = 1; c < r->C; c++)
            mx = z[c] > mx ? z[c] : mx;
        for (int64_t c = 0; c < r->C; c++)
            sum += (p[c] = exp((double)z[c] - mx));
        for (int64_t c = 0; c < r->C; c++)
            p[c] /= sum;
    }
    r->n = 0;
    return ATTN_OK;
}

/* Queues row b of set v (ids: the masked row). A row with nothing hidden is the full text:
 * its probabilities are set 0's (already run), not recomputed. */
static attn_status runner_add(eval_runner *r, int64_t v, int64_t b, const int32_t *ids,
                              int64_t hidden)
{
    const int64_t S = r->S, row = v * r->B + b;
    if (v > 0 && hidden == 0) {
        memcpy(r->probs + row * r->C, r->probs + b * r->C, (size_t)r->C * sizeof *r->probs);
        return ATTN_OK;
    }
    memcpy(r->ids + r->n * S, ids, (size_t)S * sizeof *ids);
    if (r->mask)
        memcpy(r->mask + r->n * S, r->in->attention_mask + b * S, (size_t)S);
    if (r->types)
        memcpy(r->types + r->n * S, r->in->token_types + b * S, (size_t)S * sizeof *r->types);
    r->dest[r->n++] = row;
    return r->n == r->cap ? runner_flush(r) : ATTN_OK;
}

/* ---- the figures ---------------------------------------------------------------------------- */
static int64_t argmax(const double *p, int64_t C)
{
    int64_t best = 0;
    for (int64_t c = 1; c < C; c++)
        if (p[c] > p[best])
            best = c;
    return best;
}

/* What the sets of the readers give besides the model's probabilities: the bag-of-words
 * reader's accuracy and the planted tokens found, per reader k. */
typedef struct eval_work {
    const attn_model_input *in;
    const int32_t *labels;
    const uint8_t *eligible;
    const float *scores;
    const attn_explain_eval_options *o;
    uint8_t *keep;   /* [B, S] */
    int32_t *shown;  /* [B, S] */
    float *bow_p;    /* [B, C] when a bag-of-words reader is given */
} eval_work;

/* Precision and recall of the kept tokens against the planted ones, means over the rows where
 * each is defined (a row keeps at least one token / has a planted one). */
static void planted_figures(const eval_work *w, double *precision, double *recall)
{
    const int64_t B = w->in->batch, S = w->in->seq;
    double sp = 0.0, sr = 0.0;
    int64_t np = 0, nr = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t kept = 0, hit = 0, planted = 0;
        for (int64_t s = b * S; s < (b + 1) * S; s++) {
            kept += w->keep[s];
            planted += w->o->rationale[s];
            hit += w->keep[s] && w->o->rationale[s];
        }
        if (kept > 0)
            sp += (double)hit / (double)kept, np++;
        if (planted > 0)
            sr += (double)hit / (double)planted, nr++;
    }
    *precision = np ? sp / (double)np : 0.0;
    *recall = nr ? sr / (double)nr : 0.0;
}

static attn_status bow_accuracy(const eval_work *w, double *acc)
{
    const attn_explain_bow *r = w->o->bow;
    const int64_t B = w->in->batch, C = r->num_labels;
    const attn_status st = attn_explain_bow_predict(r, B, w->in->seq, w->shown,
                                                    w->in->attention_mask, w->bow_p);
    if (st != ATTN_OK)
        return st;
    int64_t right = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++)
            if (w->bow_p[b * C + c] > w->bow_p[b * C + best])
                best = c;
        right += best == w->labels[b];
    }
    *acc = (double)right / (double)B;
    return ATTN_OK;
}

/* Masks every row for set v and queues it; the reader sets also feed the bag-of-words reader
 * and the planted figures. */
static attn_status run_set(eval_runner *r, const eval_plan *p, int64_t v, const eval_work *w,
                           attn_explain_eval *e)
{
    const int64_t B = w->in->batch, S = w->in->seq;
    const eval_set *set = &p->sets[v];
    attn_status st = attn_explain_top_k(B, S, w->scores, w->eligible, set->k, set->as_fraction,
                                        w->keep);
    for (int64_t b = 0; b < B && st == ATTN_OK; b++) {
        const int64_t hidden = mask_row(w->in->ids + b * S, w->eligible + b * S,
                                        w->keep + b * S, set->show, w->o->filler_id, S,
                                        w->shown + b * S);
        st = runner_add(r, v, b, w->shown + b * S, hidden);
    }
    const int64_t i = v - p->reader;
    if (st != ATTN_OK || i < 0 || i >= w->o->n_k)
        return st;
    if (w->o->rationale)
        planted_figures(w, &e->precision[i], &e->recall[i]);
    return w->o->bow ? bow_accuracy(w, &e->bow_acc[i]) : ATTN_OK;
}

/* The model's figures from the probabilities of every set: p(y^) with y^ the class predicted
 * on the full text. */
static void model_figures(const eval_runner *r, const eval_plan *p, const eval_work *w,
                          attn_explain_eval *e)
{
    const int64_t B = r->B, C = r->C, P = w->o->curve_points, K = w->o->aopc_steps;
    const double *pr = r->probs;
    for (int64_t b = 0; b < B; b++) {
        const int64_t y = argmax(pr + b * C, C);
#define PY(v) pr[((v) * B + b) * C + y]
        const double p0 = PY(0);
        for (int64_t i = 0; i < w->o->n_k; i++)
            e->model_acc[i] += argmax(pr + ((p->reader + i) * B + b) * C, C) == w->labels[b];
        for (int64_t i = 0; i < w->o->n_bins; i++) {
            e->comprehensiveness += p0 - PY(p->comp + i);
            e->sufficiency += p0 - PY(p->suff + i);
        }
        /* k = 0 adds 0; k past aopc_n removes as much as k = aopc_n. */
        double drop = 0.0;
        for (int64_t j = 0; j < p->aopc_n; j++)
            drop += p0 - PY(p->aopc + j);
        if (p->aopc_n > 0)
            drop += (double)(K - p->aopc_n) * (p0 - PY(p->aopc + p->aopc_n - 1));
        e->aopc += drop / (double)(K + 1);
        e->log_odds += log(fmax(PY(p->log_odds), EVAL_P_FLOOR) / fmax(p0, EVAL_P_FLOOR));
        for (int64_t i = 0; i < P; i++) {
            e->deletion[i] += PY(p->deletion + i);
            e->insertion[i] += PY(p->insertion + i);
        }
#undef PY
    }
    for (int64_t i = 0; i < w->o->n_k; i++)
        e->model_acc[i] /= (double)B;
    e->comprehensiveness /= (double)(B * w->o->n_bins);
    e->sufficiency /= (double)(B * w->o->n_bins);
    e->aopc /= (double)B;
    e->log_odds /= (double)B;
    for (int64_t i = 0; i < P; i++) {
        e->deletion[i] /= (double)B;
        e->insertion[i] /= (double)B;
    }
}

/* Trapezoid area under y [P] over t = 0, 1/(P-1), ..., 1. */
static double trapezoid(const double *y, int64_t P)
{
    double a = 0.0;
    for (int64_t i = 0; i + 1 < P; i++)
        a += 0.5 * (y[i] + y[i + 1]);
    return a / (double)(P - 1);
}

static attn_status run_all(eval_runner *r, const eval_plan *p, const eval_work *w,
                           attn_explain_eval *e)
{
    attn_status st = run_set(r, p, 0, w, e);
    if (st == ATTN_OK)
        st = runner_flush(r); /* the full text first: the unmasked rows of other sets reuse it */
    for (int64_t v = 1; v < p->n && st == ATTN_OK; v++)
        st = run_set(r, p, v, w, e);
    if (st == ATTN_OK)
        st = runner_flush(r);
    if (st != ATTN_OK)
        return st;
    model_figures(r, p, w, e);
    e->deletion_auc = trapezoid(e->deletion, w->o->curve_points);
    e->insertion_auc = trapezoid(e->insertion, w->o->curve_points);
    return ATTN_OK;
}

attn_status attn_explain_evaluate(attn_model *m, const attn_model_input *in,
                                  const int32_t *labels, const uint8_t *eligible,
                                  const float *scores, const attn_explain_eval_options *opt,
                                  attn_explain_eval *out)
{
    attn_status st = check_all(m, in, labels, eligible, scores, opt, out);
    if (st != ATTN_OK)
        return st;
    const int64_t B = in->batch, S = in->seq, C = attn_model_get_config(m)->num_labels;
    eval_plan plan = {0};
    eval_runner run = {0};
    eval_work w = {.in = in, .labels = labels, .eligible = eligible, .scores = scores, .o = opt};
    st = plan_make(opt, max_eligible(eligible, B, S), &plan);
    if (st == ATTN_OK)
        st = runner_init(&run, m, in, plan.n, opt->max_batch);
    if (st == ATTN_OK) {
        w.keep = malloc((size_t)(B * S));
        w.shown = malloc((size_t)(B * S) * sizeof *w.shown);
        w.bow_p = opt->bow ? malloc((size_t)(B * C) * sizeof *w.bow_p) : NULL;
        if (!w.keep || !w.shown || (opt->bow && !w.bow_p))
            st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, EVAL_FN ": masks of %lld x %lld",
                           (long long)B, (long long)S);
    }
    attn_explain_eval e;
    memset(&e, 0, sizeof e);
    if (st == ATTN_OK)
        st = run_all(&run, &plan, &w, &e);
    free(w.keep);
    free(w.shown);
    free(w.bow_p);
    runner_free(&run);
    free(plan.sets);
    if (st != ATTN_OK)
        return st;
    *out = e;
    return attn_ok();
}

/* ---- the study's weighted accuracy ---------------------------------------------------------- */
attn_status attn_explain_weighted_accuracy(int64_t n_methods, int64_t n_k, const double *acc,
                                           double *weights, double *avg)
{
    const char *fn = "attn_explain_weighted_accuracy";
    if (!acc || !weights || !avg)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: NULL %s", fn,
                         !acc ? "acc" : !weights ? "weights" : "avg");
    if (n_methods < 1 || n_k < 1 || n_methods > INT64_MAX / n_k ||
        (uint64_t)n_k > SIZE_MAX / sizeof(double))
        return attn_fail(ATTN_ERR_SHAPE, "%s: %lld methods x %lld k values: need both >= 1 "
                         "(and a product that fits)", fn, (long long)n_methods, (long long)n_k);
    for (int64_t i = 0; i < n_methods * n_k; i++)
        if (!(acc[i] >= 0.0 && acc[i] <= 1.0))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: acc[%lld][%lld] = %g is not an "
                             "accuracy in [0, 1]", fn, (long long)(i / n_k),
                             (long long)(i % n_k), acc[i]);
    double *w = malloc((size_t)n_k * sizeof *w), total = 0.0;
    if (!w)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "%s: %lld weights", fn, (long long)n_k);
    for (int64_t k = 0; k < n_k; k++) {
        double mean = 0.0;
        for (int64_t j = 0; j < n_methods; j++)
            mean += acc[j * n_k + k];
        total += (w[k] = 1.0 - mean / (double)n_methods);
    }
    /* Every method perfect at every k: no k is harder than another. */
    for (int64_t k = 0; k < n_k; k++)
        weights[k] = total > 0.0 ? w[k] / total : 1.0 / (double)n_k;
    for (int64_t j = 0; j < n_methods; j++) {
        double a = 0.0;
        for (int64_t k = 0; k < n_k; k++)
            a += weights[k] * acc[j * n_k + k];
        avg[j] = a;
    }
    free(w);
    return attn_ok();
}
