/* check_explain_eval.c - the explain room's evaluation: top-k selection (ties, fraction
 * rounding, count capping, ineligible tokens, bad k), the bag-of-words reader (learns a
 * separable set, probabilities, ignored ids, bad input), attn_explain_evaluate against figures
 * computed here one masked text at a time with explain_fx_logits (curves, AOPC, log-odds,
 * comprehensiveness, sufficiency, readers, planted precision/recall), its bad input, and the
 * study's weighted accuracy. */
#include "attn/attn.h"
#include "check_badinput.h"
#include "check_run.h"
#include "explain_fixture.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { B = MODEL_FX_B, S = MODEL_FX_S, C = 3, V = 23, SEED = 11, FILLER = 3 };
#define SENTINEL 0x5A
#define P_TOL 1e-5 /* probabilities of the same text from batches of other sizes */

/* ---- top-k ---------------------------------------------------------------------------------- */
static void expect_keep(const uint8_t *keep, const uint8_t *want, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(keep[i] == want[i], "%s: keep[%lld] = %d, want %d", what, (long long)i,
                      keep[i], want[i]);
}

START_TEST(topk_ties_take_the_earlier_position)
{
    const float sc[6] = {3, 1, 3, 2, 3, 2};
    const uint8_t el[6] = {1, 1, 1, 1, 1, 1};
    uint8_t keep[6];
    ck_assert_int_eq(attn_explain_top_k(1, 6, sc, el, 2, 0, keep), ATTN_OK);
    expect_keep(keep, (const uint8_t[]){1, 0, 1, 0, 0, 0}, 6, "k 2");
    ck_assert_int_eq(attn_explain_top_k(1, 6, sc, el, 4, 0, keep), ATTN_OK);
    expect_keep(keep, (const uint8_t[]){1, 0, 1, 1, 1, 0}, 6, "k 4");
}
END_TEST

static int64_t kept(const uint8_t *keep, int64_t n)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        c += keep[i];
    return c;
}

START_TEST(topk_fraction_rounds_up)
{
    enum { N = 30 };
    float sc[N];
    uint8_t el[N], keep[N];
    for (int i = 0; i < N; i++)
        sc[i] = (float)((i * 7) % N), el[i] = 1;
    const struct {
        double k;
        int64_t want;
    } cases[] = {{0.1, 3}, {0.3, 9}, {0.05, 2}, {0.01, 1}, {0.5, 15}, {1.0, 30}, {0.0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(attn_explain_top_k(1, N, sc, el, cases[i].k, 1, keep), ATTN_OK);
        ck_assert_msg(kept(keep, N) == cases[i].want, "fraction %g keeps %lld, want %lld",
                      cases[i].k, (long long)kept(keep, N), (long long)cases[i].want);
    }
    /* 0.28 x 25 is 7.000000000000001 in binary: still 7 tokens. */
    for (int i = 0; i < N; i++)
        el[i] = i < 25;
    ck_assert_int_eq(attn_explain_top_k(1, N, sc, el, 0.28, 1, keep), ATTN_OK);
    ck_assert_int_eq(kept(keep, N), 7);
    for (int i = 0; i < N; i++)
        el[i] = 1;
    /* The kept ones are the highest scores. */
    ck_assert_int_eq(attn_explain_top_k(1, N, sc, el, 0.1, 1, keep), ATTN_OK);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(keep[i], sc[i] >= N - 3);
}
END_TEST

START_TEST(topk_count_is_capped_per_row)
{
    /* Row 0: 3 eligible tokens, row 1: 5; 4 of each asked. */
    const float sc[2 * 5] = {1, 2, 3, 4, 5, 5, 4, 3, 2, 1};
    const uint8_t el[2 * 5] = {1, 0, 1, 0, 1, 1, 1, 1, 1, 1};
    uint8_t keep[2 * 5];
    ck_assert_int_eq(attn_explain_top_k(2, 5, sc, el, 4, 0, keep), ATTN_OK);
    expect_keep(keep, (const uint8_t[]){1, 0, 1, 0, 1, 1, 1, 1, 1, 0}, 10, "k 4");
    ck_assert_int_eq(attn_explain_top_k(2, 5, sc, el, 1000, 0, keep), ATTN_OK);
    expect_keep(keep, el, 10, "k 1000");
    /* A fraction of a row without eligible tokens keeps nothing. */
    const uint8_t none[5] = {0};
    ck_assert_int_eq(attn_explain_top_k(1, 5, sc, none, 0.5, 1, keep), ATTN_OK);
    ck_assert_int_eq(kept(keep, 5), 0);
}
END_TEST

START_TEST(topk_never_keeps_ineligible_tokens)
{
    /* The ineligible positions have the highest scores (and one a NaN, never compared). */
    const float sc[7] = {100, 1, 50, 2, NAN, 3, 99};
    const uint8_t el[7] = {0, 1, 0, 1, 0, 1, 0};
    uint8_t keep[7];
    for (double k = 1; k <= 7; k++) {
        ck_assert_int_eq(attn_explain_top_k(1, 7, sc, el, k, 0, keep), ATTN_OK);
        for (int s = 0; s < 7; s++)
            ck_assert(!keep[s] || el[s]);
    }
    ck_assert_int_eq(attn_explain_top_k(1, 7, sc, el, 0.34, 1, keep), ATTN_OK);
    expect_keep(keep, (const uint8_t[]){0, 0, 0, 1, 0, 1, 0}, 7, "fraction 0.34 of 3");
}
END_TEST

START_TEST(topk_rejects_bad_k)
{
    const float sc[4] = {1, 2, 3, 4}, nan_sc[4] = {1, NAN, 3, 4};
    const uint8_t el[4] = {1, 1, 1, 1}, el2[4] = {1, 2, 1, 1};
    uint8_t keep[4];
    const struct {
        const char *name;
        const float *sc;
        const uint8_t *el;
        double k;
        int frac;
        int64_t B;
        attn_status want;
    } rows[] = {
        {"negative count", sc, el, -1, 0, 1, ATTN_ERR_INVALID_ARGUMENT},
        {"negative fraction", sc, el, -0.1, 1, 1, ATTN_ERR_INVALID_ARGUMENT},
        {"fraction above 1", sc, el, 1.5, 1, 1, ATTN_ERR_INVALID_ARGUMENT},
        {"NaN k", sc, el, NAN, 0, 1, ATTN_ERR_INVALID_ARGUMENT},
        {"count not whole", sc, el, 2.5, 0, 1, ATTN_ERR_INVALID_ARGUMENT},
        {"as_fraction 2", sc, el, 1, 2, 1, ATTN_ERR_INVALID_ARGUMENT},
        {"NaN score", nan_sc, el, 1, 0, 1, ATTN_ERR_INVALID_ARGUMENT},
        {"eligible 2", sc, el2, 1, 0, 1, ATTN_ERR_INVALID_ARGUMENT},
        {"B 0", sc, el, 1, 0, 0, ATTN_ERR_SHAPE},
        {"NULL scores", NULL, el, 1, 0, 1, ATTN_ERR_NULL_POINTER},
        {"NULL eligible", sc, NULL, 1, 0, 1, ATTN_ERR_NULL_POINTER},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        memset(keep, SENTINEL, sizeof keep);
        const attn_status st = attn_explain_top_k(rows[i].B, 4, rows[i].sc, rows[i].el,
                                                  rows[i].k, rows[i].frac, keep);
        attn_bad_expect(st, rows[i].want, rows[i].name, "ref");
        attn_bad_untouched(keep, sizeof keep, SENTINEL, rows[i].name, "keep");
    }
    ck_assert_int_eq(attn_explain_top_k(1, 4, sc, el, 1, 0, NULL), ATTN_ERR_NULL_POINTER);
}
END_TEST

/* ---- the bag-of-words reader ---------------------------------------------------------------- */
/* N texts of up to BS tokens over vocabulary BV: class c carries id 10 + c twice among noise
 * ids 20..29, one filler id 1 and padding (holding -5: padding ids are never read). */
enum { BN = 60, BS = 8, BV = 30, BC = 3, BFILL = 1 };
typedef struct bow_set {
    int32_t ids[BN * BS], labels[BN];
    uint8_t mask[BN * BS];
} bow_set;

static void bow_set_fill(bow_set *d)
{
    for (int i = 0; i < BN; i++) {
        const int c = i % BC, len = 4 + i % 5;
        d->labels[i] = c;
        for (int s = 0; s < BS; s++) {
            const int e = i * BS + s;
            d->mask[e] = s < len;
            d->ids[e] = s >= len ? -5 : s == 0 || s == len - 1 ? 10 + c : s == 1 ? BFILL
                                  : 20 + (i * 7 + s * 3) % 10;
        }
    }
}

static int64_t argmax_f(const float *p, int64_t n)
{
    int64_t best = 0;
    for (int64_t c = 1; c < n; c++)
        if (p[c] > p[best])
            best = c;
    return best;
}

START_TEST(bow_learns_a_separable_set)
{
    bow_set d;
    bow_set_fill(&d);
    attn_explain_bow_options o = attn_explain_bow_options_default();
    const int32_t ignore[1] = {BFILL};
    o.ignore = ignore;
    o.n_ignore = 1;
    attn_explain_bow *r = NULL, *r2 = NULL;
    ck_assert_int_eq(attn_explain_bow_train(BV, BC, BN, BS, d.ids, d.mask, d.labels, &o, &r),
                     ATTN_OK);
    ck_assert_int_eq(attn_explain_bow_train(BV, BC, BN, BS, d.ids, d.mask, d.labels, &o, &r2),
                     ATTN_OK);
    float p[BN * BC], p2[BN * BC];
    ck_assert_int_eq(attn_explain_bow_predict(r, BN, BS, d.ids, d.mask, p), ATTN_OK);
    ck_assert_int_eq(attn_explain_bow_predict(r2, BN, BS, d.ids, d.mask, p2), ATTN_OK);
    ck_assert_msg(memcmp(p, p2, sizeof p) == 0, "training is not deterministic");
    for (int i = 0; i < BN; i++) {
        double sum = 0.0;
        for (int c = 0; c < BC; c++) {
            ck_assert(p[i * BC + c] >= 0.0f && p[i * BC + c] <= 1.0f);
            sum += p[i * BC + c];
        }
        ck_assert_msg(fabs(sum - 1.0) < 1e-5, "text %d: probabilities sum to %g", i, sum);
        ck_assert_msg(argmax_f(p + i * BC, BC) == d.labels[i], "text %d misread", i);
    }
    /* The ignored id counts for nothing: a text of fillers reads as an empty one. */
    const int32_t fill[2 * 3] = {BFILL, BFILL, BFILL, 0, 0, 0};
    const uint8_t fm[2 * 3] = {1, 1, 1, 0, 0, 0};
    float pf[2 * BC];
    ck_assert_int_eq(attn_explain_bow_predict(r, 2, 3, fill, fm, pf), ATTN_OK);
    for (int c = 0; c < BC; c++)
        ck_assert_float_eq(pf[c], pf[BC + c]);
    /* Counts matter (as log(1 + count)): class 0's id thrice reads more surely than once. */
    const int32_t rep[2 * 3] = {10, 10, 10, 10, 0, 0};
    const uint8_t rm[2 * 3] = {1, 1, 1, 1, 0, 0};
    ck_assert_int_eq(attn_explain_bow_predict(r, 2, 3, rep, rm, pf), ATTN_OK);
    ck_assert_msg(pf[0] > pf[BC], "p(0 | thrice) %g, p(0 | once) %g", pf[0], pf[BC]);
    attn_explain_bow_free(r);
    attn_explain_bow_free(r2);
    attn_explain_bow_free(NULL);
}
END_TEST

START_TEST(bow_rejects_bad_input)
{
    bow_set d;
    bow_set_fill(&d);
    const int32_t bad_ignore[1] = {BV};
    attn_explain_bow *const SENT = (attn_explain_bow *)&d; /* a value that must survive */
    for (int k = 0; k < 12; k++) {
        attn_explain_bow_options o = attn_explain_bow_options_default();
        int64_t vocab = BV, nl = BC;
        attn_status want = ATTN_ERR_INVALID_ARGUMENT;
        bow_set e = d;
        const int32_t *ids = e.ids;
        switch (k) {
        case 0: vocab = 0; break;
        case 1: nl = 1; break;
        case 2: e.labels[5] = BC; break;
        case 3: e.ids[9] = BV; break; /* a token (text 1, position 1) */
        case 4: e.mask[3] = 2; break;
        case 5: o.ignore = bad_ignore, o.n_ignore = 1; break;
        case 6: o.n_ignore = 1, want = ATTN_ERR_NULL_POINTER; break;
        case 7: o.reserved[1] = 1; break;
        case 8: o.epochs = 0; break;
        case 9: o.lr = NAN; break;
        case 10: o.l2 = -1; break;
        case 11: ids = NULL, want = ATTN_ERR_NULL_POINTER; break;
        }
        attn_explain_bow *r = SENT;
        const attn_status st = attn_explain_bow_train(vocab, nl, BN, BS, ids, e.mask, e.labels,
                                                      &o, &r);
        ck_assert_msg(st == want, "train row %d: %s (%s)", k, attn_status_name(st),
                      attn_last_error());
        ck_assert_msg(r == SENT, "train row %d: out written", k);
    }
    attn_explain_bow *r = NULL;
    attn_explain_bow_options o = attn_explain_bow_options_default();
    o.epochs = 3;
    ck_assert_int_eq(attn_explain_bow_train(BV, BC, BN, BS, d.ids, d.mask, d.labels, &o, &r),
                     ATTN_OK);
    float p[BN * BC];
    memset(p, SENTINEL, sizeof p);
    d.ids[2] = -1;
    ck_assert_int_eq(attn_explain_bow_predict(r, BN, BS, d.ids, d.mask, p),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_explain_bow_predict(r, BN, BS, d.ids, NULL, p),
                     ATTN_ERR_INVALID_ARGUMENT); /* without a mask padding ids are tokens */
    ck_assert_int_eq(attn_explain_bow_predict(NULL, BN, BS, d.ids, d.mask, p),
                     ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_explain_bow_predict(r, 0, BS, d.ids, d.mask, p), ATTN_ERR_SHAPE);
    attn_bad_untouched(p, sizeof p, SENTINEL, "bad predict", "probabilities");
    attn_explain_bow_free(r);
}
END_TEST

/* ---- the evaluation ------------------------------------------------------------------------- */
/* The fixture's model and batch; eligible: every token but position 0 (a [CLS]) and, in row 0,
 * position 3 (a punctuation mark). Row 0 has 5 eligible tokens, row 1 three. */
typedef struct fx {
    attn_backend *be;
    attn_model *m;
    model_fx_batch b;
    uint8_t eligible[B * S];
} fx;

static void fx_open(fx *f)
{
    f->be = model_fx_open("ref");
    ck_assert_ptr_nonnull(f->be);
    f->m = model_fx_model(f->be, SEED);
    model_fx_batch_fill(&f->b, SEED);
    for (int i = 0; i < B * S; i++)
        f->eligible[i] = f->b.mask[i] && i % S != 0 && i != 3;
}

static void fx_close(fx *f)
{
    attn_model_free(f->m);
    attn_backend_close(f->be);
}

/* Row r of the batch as a batch of one. */
static attn_model_input row_of(const fx *f, int r)
{
    attn_model_input in = f->b.in;
    in.batch = 1;
    in.ids += r * S;
    in.attention_mask += r * S;
    in.token_types += r * S;
    return in;
}

/* Probabilities (double) of row r of the batch with these ids, run alone. */
static void probs_of(fx *f, int r, const int32_t *ids, double *p)
{
    attn_model_input in = row_of(f, r);
    in.ids = ids;
    float *lg = explain_fx_logits(f->m, &in);
    double mx = lg[0], sum = 0.0;
    for (int c = 1; c < C; c++)
        mx = lg[c] > mx ? lg[c] : mx;
    for (int c = 0; c < C; c++)
        sum += (p[c] = exp((double)lg[c] - mx));
    for (int c = 0; c < C; c++)
        p[c] /= sum;
    free(lg);
}

static int argmax_d(const double *p)
{
    int best = 0;
    for (int c = 1; c < C; c++)
        if (p[c] > p[best])
            best = c;
    return best;
}

/* Row r's eligible positions by decreasing score (distinct scores here); returns the count. */
static int rank_row(const fx *f, int r, const float *sc, int *order)
{
    int n = 0;
    for (int s = 0; s < S; s++)
        if (f->eligible[r * S + s])
            order[n++] = s;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (sc[order[j]] > sc[order[i]]) {
                const int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    return n;
}

/* Row r with its top n removed (show 0) or only its top n shown (show 1), the hidden tokens
 * replaced by the filler; the probabilities into p. */
static void masked_probs(fx *f, int r, const float *sc, int n, int show, double *p)
{
    int order[S];
    const int ne = rank_row(f, r, sc, order);
    int32_t t[S];
    memcpy(t, f->b.ids + r * S, sizeof t);
    for (int i = 0; i < ne; i++)
        if (show ? i >= n : i < n)
            t[order[i]] = FILLER;
    probs_of(f, r, t, p);
}

/* ceil(t x n) for t = i / (P - 1), at least 1 for t > 0, in integers. */
static int count_of(int i, int P, int n)
{
    const int c = (i * n + P - 2) / (P - 1);
    return i > 0 && c < 1 && n > 0 ? 1 : c;
}

static attn_explain_eval_options hand_options(void)
{
    attn_explain_eval_options o = attn_explain_eval_options_default();
    o.filler_id = FILLER;
    o.n_k = 5; /* 0.2, 0.4, ..., 1 */
    for (int i = 0; i < 5; i++)
        o.k[i] = 0.2 * (i + 1);
    o.n_bins = 2, o.bins[0] = 0.2, o.bins[1] = 0.6;
    o.aopc_steps = 6;          /* past row 0's 5 eligible tokens */
    o.log_odds_fraction = 0.4;
    o.curve_points = 5;
    o.max_batch = 3;           /* partial batches */
    return o;
}

/* Each row alone: every figure of the library equals the one computed here text by text. */
START_TEST(figures_equal_masking_by_hand)
{
    fx f;
    fx_open(&f);
    const float sc[B * S] = {9, 0.5f, -1, 7, 3, 2.5f, 4, /* row 1 */ 8, 1, 3, 2, 0, 0, 0};
    const attn_explain_eval_options o = hand_options();
    const int P = (int)o.curve_points, K = (int)o.aopc_steps;
    int changed = 0; /* masked texts read as another class than the full one */
    for (int r = 0; r < B; r++) {
        const attn_model_input in = row_of(&f, r);
        attn_explain_eval e;
        ck_assert_int_eq(attn_explain_evaluate(f.m, &in, f.b.labels + r, f.eligible + r * S,
                                               sc + r * S, &o, &e),
                         ATTN_OK);
        const float *rs = sc + r * S;
        int order[S];
        const int ne = rank_row(&f, r, rs, order);
        double p[C], q[C];
        probs_of(&f, r, f.b.ids + r * S, p);
        const int y = argmax_d(p);
        const double p0 = p[y];
        double del[ATTN_EXPLAIN_MAX_CURVE], ins[ATTN_EXPLAIN_MAX_CURVE];
        for (int i = 0; i < P; i++) {
            masked_probs(&f, r, rs, count_of(i, P, ne), 0, q);
            del[i] = q[y];
            masked_probs(&f, r, rs, count_of(i, P, ne), 1, q);
            ins[i] = q[y];
            ck_assert_msg(fabs(e.deletion[i] - del[i]) < P_TOL, "row %d deletion[%d]: %g vs %g",
                          r, i, e.deletion[i], del[i]);
            ck_assert_msg(fabs(e.insertion[i] - ins[i]) < P_TOL,
                          "row %d insertion[%d]: %g vs %g", r, i, e.insertion[i], ins[i]);
        }
        double del_auc = 0.0, ins_auc = 0.0;
        for (int i = 0; i + 1 < P; i++) {
            del_auc += (del[i] + del[i + 1]) / (2.0 * (P - 1));
            ins_auc += (ins[i] + ins[i + 1]) / (2.0 * (P - 1));
        }
        ck_assert(fabs(e.deletion_auc - del_auc) < P_TOL);
        ck_assert(fabs(e.insertion_auc - ins_auc) < P_TOL);
        /* AOPC: k = 0..K removed, k capped at the eligible count. */
        double aopc = 0.0;
        for (int k = 0; k <= K; k++) {
            masked_probs(&f, r, rs, k < ne ? k : ne, 0, q);
            aopc += (p0 - q[y]) / (K + 1);
        }
        ck_assert_msg(fabs(e.aopc - aopc) < P_TOL, "row %d aopc %g vs %g", r, e.aopc, aopc);
        /* Comprehensiveness and sufficiency over the bins (0.2, 0.6 of ne, rounded up). */
        const int bin_n[2] = {(2 * ne + 9) / 10, (6 * ne + 9) / 10};
        double comp = 0.0, suff = 0.0;
        for (int i = 0; i < 2; i++) {
            masked_probs(&f, r, rs, bin_n[i], 0, q);
            comp += (p0 - q[y]) / 2;
            masked_probs(&f, r, rs, bin_n[i], 1, q);
            suff += (p0 - q[y]) / 2;
        }
        ck_assert(fabs(e.comprehensiveness - comp) < P_TOL);
        ck_assert(fabs(e.sufficiency - suff) < P_TOL);
        /* Log-odds with the top 40 % removed. */
        masked_probs(&f, r, rs, (4 * ne + 9) / 10, 0, q);
        ck_assert(fabs(e.log_odds - log(fmax(q[y], 1e-12) / p0)) < 1e-4);
        /* The model as reader: 20, 40, ... 100 % shown. */
        for (int i = 0; i < 5; i++) {
            masked_probs(&f, r, rs, ((2 * i + 2) * ne + 9) / 10, 1, q);
            ck_assert_msg(e.model_acc[i] == (argmax_d(q) == f.b.labels[r]),
                          "row %d reader %d: %g", r, i, e.model_acc[i]);
            changed += argmax_d(q) != y;
        }
        /* Without a reader or rationale those stay 0; the reserved words too. */
        ck_assert(e.bow_acc[0] == 0 && e.precision[0] == 0 && e.recall[1] == 0);
        ck_assert(e.reserved[0] == 0 && e.reserved[3] == 0);
    }
    ck_assert_msg(changed > 0, "no shown text changes the prediction: the readers' check is blind");
    fx_close(&f);
}
END_TEST

/* On the whole batch: deletion starts and insertion ends at p(y^|x) of the full text. */
START_TEST(curves_start_and_end_at_the_full_text)
{
    fx f;
    fx_open(&f);
    float sc[B * S];
    for (int i = 0; i < B * S; i++)
        sc[i] = (float)((i * 5) % 11);
    attn_explain_eval_options o = attn_explain_eval_options_default();
    o.filler_id = FILLER;
    attn_explain_eval e;
    ck_assert_int_eq(attn_explain_evaluate(f.m, &f.b.in, f.b.labels, f.eligible, sc, &o, &e),
                     ATTN_OK);
    float *lg = explain_fx_logits(f.m, &f.b.in);
    double p0 = 0.0; /* mean over rows of the largest probability: 1 / sum_c exp(l_c - max) */
    for (int b = 0; b < B; b++) {
        double mx = lg[b * C], sum = 0.0;
        for (int c = 1; c < C; c++)
            mx = fmax(mx, lg[b * C + c]);
        for (int c = 0; c < C; c++)
            sum += exp(lg[b * C + c] - mx);
        p0 += 1.0 / sum / B;
    }
    free(lg);
    const int64_t P = o.curve_points;
    ck_assert_msg(fabs(e.deletion[0] - p0) < P_TOL, "deletion[0] %g, p %g", e.deletion[0], p0);
    ck_assert_msg(fabs(e.insertion[P - 1] - p0) < P_TOL, "insertion[end] %g, p %g",
                  e.insertion[P - 1], p0);
    /* Everything hidden is the same text both ways. */
    ck_assert(fabs(e.deletion[P - 1] - e.insertion[0]) < 1e-12);
    for (int64_t i = P; i < ATTN_EXPLAIN_MAX_CURVE; i++)
        ck_assert(e.deletion[i] == 0 && e.insertion[i] == 0);
    ck_assert(isfinite(e.comprehensiveness) && isfinite(e.sufficiency) && isfinite(e.aopc) &&
              isfinite(e.log_odds));
    fx_close(&f);
}
END_TEST

/* Scores equal to the planted rationale: precision and recall 1 at k = the planted count. */
START_TEST(planted_rationale_is_found)
{
    fx f;
    fx_open(&f);
    uint8_t rat[B * S] = {0};
    rat[2] = rat[5] = 1;         /* row 0 */
    rat[S + 1] = rat[S + 3] = 1; /* row 1 */
    float sc[B * S];
    for (int i = 0; i < B * S; i++)
        sc[i] = rat[i];
    attn_explain_eval_options o = attn_explain_eval_options_default();
    o.filler_id = FILLER;
    o.rationale = rat;
    o.k_as_fraction = 0;
    o.n_k = 3, o.k[0] = 1, o.k[1] = 2, o.k[2] = 3;
    attn_explain_eval e;
    ck_assert_int_eq(attn_explain_evaluate(f.m, &f.b.in, f.b.labels, f.eligible, sc, &o, &e),
                     ATTN_OK);
    ck_assert_double_eq_tol(e.precision[1], 1.0, 1e-15);
    ck_assert_double_eq_tol(e.recall[1], 1.0, 1e-15);
    ck_assert_double_eq_tol(e.precision[0], 1.0, 1e-15);
    ck_assert_double_eq_tol(e.recall[0], 0.5, 1e-15);
    ck_assert_double_eq_tol(e.precision[2], 2.0 / 3.0, 1e-15);
    ck_assert_double_eq_tol(e.recall[2], 1.0, 1e-15);
    /* Reversed scores find none at k = 1 (row 1's 3 eligible: the unplanted one first). */
    for (int i = 0; i < B * S; i++)
        sc[i] = -sc[i];
    ck_assert_int_eq(attn_explain_evaluate(f.m, &f.b.in, f.b.labels, f.eligible, sc, &o, &e),
                     ATTN_OK);
    ck_assert_double_eq_tol(e.precision[0], 0.0, 1e-15);
    ck_assert_double_eq_tol(e.recall[0], 0.0, 1e-15);
    /* A row without planted tokens has no recall: the mean is over row 0 alone; its
     * precision (none of its kept tokens planted) still counts. */
    rat[S + 1] = rat[S + 3] = 0;
    for (int i = 0; i < B * S; i++)
        sc[i] = rat[i];
    ck_assert_int_eq(attn_explain_evaluate(f.m, &f.b.in, f.b.labels, f.eligible, sc, &o, &e),
                     ATTN_OK);
    ck_assert_double_eq_tol(e.recall[1], 1.0, 1e-15);
    ck_assert_double_eq_tol(e.precision[1], 0.5, 1e-15);
    fx_close(&f);
}
END_TEST

/* The oracle for one removed token (each token's own drop of p(y^), found here by removing it)
 * is more comprehensive than its reverse, and its comprehensiveness is the mean largest drop. */
START_TEST(oracle_is_more_comprehensive_than_reversed)
{
    fx f;
    fx_open(&f);
    float oracle[B * S] = {0}, rev[B * S];
    double best = 0.0;
    for (int r = 0; r < B; r++) {
        double p[C], q[C];
        probs_of(&f, r, f.b.ids + r * S, p);
        const int y = argmax_d(p);
        double top = -INFINITY;
        for (int s = 0; s < S; s++) {
            if (!f.eligible[r * S + s])
                continue;
            int32_t t[S];
            memcpy(t, f.b.ids + r * S, sizeof t);
            t[s] = FILLER;
            probs_of(&f, r, t, q);
            oracle[r * S + s] = (float)(p[y] - q[y]);
            top = fmax(top, p[y] - q[y]);
        }
        best += top / B;
    }
    for (int i = 0; i < B * S; i++)
        rev[i] = -oracle[i];
    attn_explain_eval_options o = attn_explain_eval_options_default();
    o.filler_id = FILLER;
    o.n_bins = 1, o.bins[0] = 0.01; /* one token of each row */
    attn_explain_eval eo, er;
    ck_assert_int_eq(attn_explain_evaluate(f.m, &f.b.in, f.b.labels, f.eligible, oracle, &o, &eo),
                     ATTN_OK);
    ck_assert_int_eq(attn_explain_evaluate(f.m, &f.b.in, f.b.labels, f.eligible, rev, &o, &er),
                     ATTN_OK);
    ck_assert_msg(eo.comprehensiveness > er.comprehensiveness, "oracle %g, reversed %g",
                  eo.comprehensiveness, er.comprehensiveness);
    ck_assert_msg(fabs(eo.comprehensiveness - best) < P_TOL, "oracle %g, largest drops %g",
                  eo.comprehensiveness, best);
    fx_close(&f);
}
END_TEST

/* The bag-of-words reader as the second reader: its accuracy is that of its own predictions on
 * the top-k shown texts (built here). */
START_TEST(bow_reader_accuracy)
{
    fx f;
    fx_open(&f);
    attn_explain_bow_options bo = attn_explain_bow_options_default();
    const int32_t ignore[1] = {FILLER};
    bo.ignore = ignore, bo.n_ignore = 1, bo.epochs = 50;
    attn_explain_bow *r = NULL;
    ck_assert_int_eq(attn_explain_bow_train(V, C, B, S, f.b.ids, f.b.mask, f.b.labels, &bo, &r),
                     ATTN_OK);
    float sc[B * S];
    for (int i = 0; i < B * S; i++)
        sc[i] = (float)((i * 3) % 7);
    attn_explain_eval_options o = attn_explain_eval_options_default();
    o.filler_id = FILLER;
    o.bow = r;
    attn_explain_eval e;
    ck_assert_int_eq(attn_explain_evaluate(f.m, &f.b.in, f.b.labels, f.eligible, sc, &o, &e),
                     ATTN_OK);
    for (int64_t i = 0; i < o.n_k; i++) {
        uint8_t keep[B * S];
        int32_t t[B * S];
        ck_assert_int_eq(attn_explain_top_k(B, S, sc, f.eligible, o.k[i], 1, keep), ATTN_OK);
        for (int j = 0; j < B * S; j++)
            t[j] = f.eligible[j] && !keep[j] ? FILLER : f.b.ids[j];
        float p[B * C];
        ck_assert_int_eq(attn_explain_bow_predict(r, B, S, t, f.b.mask, p), ATTN_OK);
        double acc = 0.0;
        for (int b = 0; b < B; b++)
            acc += (argmax_f(p + b * C, C) == f.b.labels[b]) / (double)B;
        ck_assert_msg(e.bow_acc[i] == acc, "k %g: %g vs %g", o.k[i], e.bow_acc[i], acc);
    }
    attn_explain_bow_free(r);
    fx_close(&f);
}
END_TEST

/* A valid evaluation; each row breaks one thing. */
typedef struct setup {
    fx f;
    attn_explain_eval_options o;
    attn_model_input in;
    int32_t labels[B];
    uint8_t eligible[B * S], rat[B * S];
    float scores[B * S];
    attn_explain_bow *bow2; /* a reader of 2 classes */
    int null_model, null_in, null_labels, null_eligible, null_scores, null_opt, null_out;
} setup;

static void m_k_zero(setup *s) { s->o.k[1] = 0.0; }
static void m_k_high(setup *s) { s->o.k[0] = 1.5; }
static void m_k_nan(setup *s) { s->o.k[4] = NAN; }
static void m_nk_zero(setup *s) { s->o.n_k = 0; }
static void m_nk_high(setup *s) { s->o.n_k = ATTN_EXPLAIN_MAX_K + 1; }
static void m_count_half(setup *s) { s->o.k_as_fraction = 0, s->o.n_k = 1, s->o.k[0] = 2.5; }
static void m_count_zero(setup *s) { s->o.k_as_fraction = 0, s->o.n_k = 1, s->o.k[0] = 0; }
static void m_as_frac(setup *s) { s->o.k_as_fraction = 2; }
static void m_filler_missing(setup *s) { s->o.filler_id = -1; }
static void m_filler_high(setup *s) { s->o.filler_id = V; }
static void m_label_high(setup *s) { s->labels[1] = C; }
static void m_label_neg(setup *s) { s->labels[0] = -1; }
static void m_bin_zero(setup *s) { s->o.bins[2] = 0.0; }
static void m_nbins_high(setup *s) { s->o.n_bins = ATTN_EXPLAIN_MAX_K + 1; }
static void m_curve_one(setup *s) { s->o.curve_points = 1; }
static void m_curve_high(setup *s) { s->o.curve_points = ATTN_EXPLAIN_MAX_CURVE + 1; }
static void m_lo_zero(setup *s) { s->o.log_odds_fraction = 0.0; }
static void m_aopc_neg(setup *s) { s->o.aopc_steps = -1; }
static void m_batch_neg(setup *s) { s->o.max_batch = -1; }
static void m_reserved(setup *s) { s->o.reserved[3] = 1; }
static void m_elig_two(setup *s) { s->eligible[2] = 2; }
static void m_elig_pad(setup *s) { s->eligible[B * S - 1] = 1; /* row 1 is padded there */ }
static void m_rat_outside(setup *s) { s->rat[0] = 1; /* position 0 is not eligible */ }
static void m_rat_two(setup *s) { s->rat[1] = 2; }
static void m_score_nan(setup *s) { s->scores[1] = NAN; }
static void m_embeddings(setup *s) { s->in.embeddings = s->scores; }
static void m_no_ids(setup *s) { s->in.ids = NULL; }
static void m_id_high(setup *s) { s->f.b.ids[4] = V; }
static void m_bow_classes(setup *s) { s->o.bow = s->bow2; }
static void m_null_model(setup *s) { s->null_model = 1; }
static void m_null_in(setup *s) { s->null_in = 1; }
static void m_null_labels(setup *s) { s->null_labels = 1; }
static void m_null_eligible(setup *s) { s->null_eligible = 1; }
static void m_null_scores(setup *s) { s->null_scores = 1; }
static void m_null_opt(setup *s) { s->null_opt = 1; }
static void m_null_out(setup *s) { s->null_out = 1; }

static const ATTN_BAD_ROW(setup) rows[] = {
    {"k fraction 0", m_k_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"k fraction above 1", m_k_high, ATTN_ERR_INVALID_ARGUMENT},
    {"k NaN", m_k_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"no k", m_nk_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"too many k", m_nk_high, ATTN_ERR_INVALID_ARGUMENT},
    {"count k not whole", m_count_half, ATTN_ERR_INVALID_ARGUMENT},
    {"count k 0", m_count_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"k_as_fraction 2", m_as_frac, ATTN_ERR_INVALID_ARGUMENT},
    {"filler missing", m_filler_missing, ATTN_ERR_INVALID_ARGUMENT},
    {"filler = vocab", m_filler_high, ATTN_ERR_INVALID_ARGUMENT},
    {"label = num_labels", m_label_high, ATTN_ERR_INVALID_ARGUMENT},
    {"negative label", m_label_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"bin 0", m_bin_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"too many bins", m_nbins_high, ATTN_ERR_INVALID_ARGUMENT},
    {"1 curve point", m_curve_one, ATTN_ERR_INVALID_ARGUMENT},
    {"too many curve points", m_curve_high, ATTN_ERR_INVALID_ARGUMENT},
    {"log-odds fraction 0", m_lo_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"negative AOPC steps", m_aopc_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"negative max batch", m_batch_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"options reserved nonzero", m_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"eligible 2", m_elig_two, ATTN_ERR_INVALID_ARGUMENT},
    {"eligible padding", m_elig_pad, ATTN_ERR_INVALID_ARGUMENT},
    {"rationale outside eligible", m_rat_outside, ATTN_ERR_INVALID_ARGUMENT},
    {"rationale 2", m_rat_two, ATTN_ERR_INVALID_ARGUMENT},
    {"NaN score", m_score_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"embeddings instead of ids", m_embeddings, ATTN_ERR_INVALID_ARGUMENT},
    {"no ids", m_no_ids, ATTN_ERR_INVALID_ARGUMENT},
    {"id = vocab", m_id_high, ATTN_ERR_INVALID_ARGUMENT},
    {"reader of other classes", m_bow_classes, ATTN_ERR_INVALID_ARGUMENT},
    {"NULL model", m_null_model, ATTN_ERR_NULL_POINTER},
    {"NULL input", m_null_in, ATTN_ERR_NULL_POINTER},
    {"NULL labels", m_null_labels, ATTN_ERR_NULL_POINTER},
    {"NULL eligible", m_null_eligible, ATTN_ERR_NULL_POINTER},
    {"NULL scores", m_null_scores, ATTN_ERR_NULL_POINTER},
    {"NULL options", m_null_opt, ATTN_ERR_NULL_POINTER},
    {"NULL out", m_null_out, ATTN_ERR_NULL_POINTER},
};
enum { N_ROWS = sizeof rows / sizeof rows[0] };

START_TEST(evaluate_rejects_bad_input)
{
    setup s = {0};
    fx_open(&s.f);
    s.in = s.f.b.in;
    s.o = attn_explain_eval_options_default();
    s.o.filler_id = FILLER;
    s.o.rationale = s.rat;
    memcpy(s.labels, s.f.b.labels, sizeof s.labels);
    memcpy(s.eligible, s.f.eligible, sizeof s.eligible);
    for (int i = 0; i < B * S; i++)
        s.scores[i] = (float)i, s.rat[i] = i == 2;
    attn_explain_bow_options bo = attn_explain_bow_options_default();
    bo.epochs = 1;
    const int32_t two[B] = {0, 1};
    ck_assert_int_eq(attn_explain_bow_train(V, 2, B, S, s.f.b.ids, s.f.b.mask, two, &bo, &s.bow2),
                     ATTN_OK);
    rows[_i].mutate(&s);
    attn_explain_eval out;
    memset(&out, SENTINEL, sizeof out);
    const attn_status st = attn_explain_evaluate(
        s.null_model ? NULL : s.f.m, s.null_in ? NULL : &s.in, s.null_labels ? NULL : s.labels,
        s.null_eligible ? NULL : s.eligible, s.null_scores ? NULL : s.scores,
        s.null_opt ? NULL : &s.o, s.null_out ? NULL : &out);
    attn_bad_expect(st, rows[_i].want, rows[_i].name, "ref");
    attn_bad_untouched(&out, sizeof out, SENTINEL, rows[_i].name, "out");
    attn_explain_bow_free(s.bow2);
    fx_close(&s.f);
}
END_TEST

START_TEST(filler_is_required)
{
    const attn_explain_eval_options o = attn_explain_eval_options_default();
    ck_assert_int_eq(o.filler_id, -1);
    ck_assert_int_eq(o.n_k, 5);
    ck_assert(o.k[0] == 0.05 && o.k[4] == 0.4 && o.k_as_fraction == 1);
    ck_assert(o.n_bins == 5 && o.bins[0] == 0.01 && o.bins[4] == 0.5);
    ck_assert(o.aopc_steps == 10 && o.log_odds_fraction == 0.2 && o.curve_points == 11);
    ck_assert(!o.bow && !o.rationale && o.max_batch == 128);
    fx f;
    fx_open(&f);
    float sc[B * S] = {0};
    attn_explain_eval out;
    ck_assert_int_eq(attn_explain_evaluate(f.m, &f.b.in, f.b.labels, f.eligible, sc, &o, &out),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(attn_last_error(), "filler_id"));
    fx_close(&f);
}
END_TEST

/* ---- weighted accuracy ---------------------------------------------------------------------- */
START_TEST(weighted_accuracy_weights_by_difficulty)
{
    /* 2 methods x 3 k: mean accuracies 0.5, 0.75, 1 -> difficulties 0.5, 0.25, 0. */
    const double acc[2 * 3] = {0.25, 0.5, 1.0, 0.75, 1.0, 1.0};
    double w[3], avg[2];
    ck_assert_int_eq(attn_explain_weighted_accuracy(2, 3, acc, w, avg), ATTN_OK);
    ck_assert_double_eq_tol(w[0] + w[1] + w[2], 1.0, 1e-15);
    ck_assert_double_eq_tol(w[0], 2.0 / 3.0, 1e-15);
    ck_assert_double_eq_tol(w[1], 1.0 / 3.0, 1e-15);
    ck_assert_double_eq_tol(w[2], 0.0, 1e-15);
    ck_assert_double_eq_tol(avg[0], 2.0 / 3.0 * 0.25 + 1.0 / 3.0 * 0.5, 1e-15);
    ck_assert_double_eq_tol(avg[1], 2.0 / 3.0 * 0.75 + 1.0 / 3.0 * 1.0, 1e-15);
    /* Every method perfect: equal weights, averages 1. */
    const double perfect[3 * 4] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    double w4[4], avg3[3];
    ck_assert_int_eq(attn_explain_weighted_accuracy(3, 4, perfect, w4, avg3), ATTN_OK);
    for (int k = 0; k < 4; k++)
        ck_assert_double_eq(w4[k], 0.25);
    for (int j = 0; j < 3; j++)
        ck_assert_double_eq_tol(avg3[j], 1.0, 1e-15);
    /* Bad input writes nothing. */
    const double bad[2] = {0.5, 1.5}, nan_acc[2] = {NAN, 0.5};
    memset(w, SENTINEL, sizeof w);
    memset(avg, SENTINEL, sizeof avg);
    ck_assert_int_eq(attn_explain_weighted_accuracy(1, 2, bad, w, avg), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_explain_weighted_accuracy(1, 2, nan_acc, w, avg),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_explain_weighted_accuracy(1, 0, acc, w, avg), ATTN_ERR_SHAPE);
    ck_assert_int_eq(attn_explain_weighted_accuracy(0, 2, acc, w, avg), ATTN_ERR_SHAPE);
    ck_assert_int_eq(attn_explain_weighted_accuracy(1, 2, NULL, w, avg), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_explain_weighted_accuracy(1, 2, acc, w, NULL), ATTN_ERR_NULL_POINTER);
    attn_bad_untouched(w, sizeof w, SENTINEL, "bad accuracies", "weights");
    attn_bad_untouched(avg, sizeof avg, SENTINEL, "bad accuracies", "averages");
}
END_TEST

static Suite *explain_eval_suite(void)
{
    Suite *s = suite_create("explain_eval");
    TCase *tc = tcase_create("explain_eval");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, topk_ties_take_the_earlier_position);
    tcase_add_test(tc, topk_fraction_rounds_up);
    tcase_add_test(tc, topk_count_is_capped_per_row);
    tcase_add_test(tc, topk_never_keeps_ineligible_tokens);
    tcase_add_test(tc, topk_rejects_bad_k);
    tcase_add_test(tc, bow_learns_a_separable_set);
    tcase_add_test(tc, bow_rejects_bad_input);
    tcase_add_test(tc, figures_equal_masking_by_hand);
    tcase_add_test(tc, curves_start_and_end_at_the_full_text);
    tcase_add_test(tc, planted_rationale_is_found);
    tcase_add_test(tc, oracle_is_more_comprehensive_than_reversed);
    tcase_add_test(tc, bow_reader_accuracy);
    tcase_add_loop_test(tc, evaluate_rejects_bad_input, 0, N_ROWS);
    tcase_add_test(tc, filler_is_required);
    tcase_add_test(tc, weighted_accuracy_weights_by_difficulty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(explain_eval_suite());
}
