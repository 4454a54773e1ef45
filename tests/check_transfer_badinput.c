/* check_transfer_badinput.c - the transfer model's public calls on bad input: every row of the
 * forward's table returns its status with a message and writes nothing (the outputs keep their
 * sentinel bytes) and leaves nothing to differentiate; predict, backward, train_step, the
 * parameter lookups and the configuration calls refuse likewise, naming the field. */
#include "attn/attn.h"
#include "check_badinput.h"
#include "check_run.h"
#include "model_fixture.h"
#include "transfer_fixture.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { F = TRANSFER_FX_F, K = TRANSFER_FX_K, NT = TRANSFER_FX_NT, NS = TRANSFER_FX_NS,
       SEED = 9 };
#define SENTINEL 0x5A

/* A valid forward on a model with every tensor (attention, mlp score, per example); each row
 * breaks one thing. */
typedef struct setup {
    attn_transfer *t;
    transfer_fx_batch fx;
    attn_transfer_batch b;
    attn_transfer_outputs o;
    float prob[NT], alpha[NT * K], sprob[NS * K];
    double loss, parts[2];
    int null_model, null_batch;
} setup;

static void m_null_model(setup *s) { s->null_model = 1; }
static void m_null_batch(setup *s) { s->null_batch = 1; }
static void m_batch_reserved(setup *s) { s->b.reserved[2] = 1; }
static void m_outs_reserved(setup *s) { s->o.reserved[0] = 3; }
static void m_source_only_two(setup *s) { s->b.source_only = 2; }
static void m_nt_zero(setup *s) { s->b.n_target = 0; }
static void m_nt_neg(setup *s) { s->b.n_target = -2; }
static void m_ns_neg(setup *s) { s->b.n_source = -1; }
static void m_nt_huge(setup *s) { s->b.n_target = INT64_MAX / 2; }
static void m_ns_huge(setup *s) { s->b.n_source = INT64_MAX; }
static void m_no_xt(setup *s) { s->b.x_target = NULL; }
static void m_no_yt(setup *s) { s->b.y_target = NULL; }
static void m_no_xs(setup *s) { s->b.x_source = NULL; }
static void m_no_ys(setup *s) { s->b.y_source = NULL; }
static void m_xt_nan(setup *s) { s->fx.xt[NT * F - 1] = NAN; }
static void m_xs_inf(setup *s) { s->fx.xs[7] = -INFINITY; }
static void m_yt_two(setup *s) { s->fx.yt[3] = 2; }
static void m_ys_255(setup *s) { s->fx.ys[NS * K - 1] = 255; }

static const struct {
    ATTN_BAD_ROW(setup); /* the row every table holds */
    const char *mentions; /* a word the message must hold */
} rows[] = {
    {{"NULL model", m_null_model, ATTN_ERR_NULL_POINTER}, "model"},
    {{"NULL batch", m_null_batch, ATTN_ERR_NULL_POINTER}, "batch"},
    {{"batch reserved nonzero", m_batch_reserved, ATTN_ERR_INVALID_ARGUMENT}, "reserved"},
    {{"outputs reserved nonzero", m_outs_reserved, ATTN_ERR_INVALID_ARGUMENT}, "reserved"},
    {{"source_only not 0 or 1", m_source_only_two, ATTN_ERR_INVALID_ARGUMENT}, "source_only"},
    {{"no target examples", m_nt_zero, ATTN_ERR_SHAPE}, "n_target"},
    {{"negative target count", m_nt_neg, ATTN_ERR_SHAPE}, "n_target"},
    {{"negative source count", m_ns_neg, ATTN_ERR_SHAPE}, "n_source"},
    {{"target count overflows", m_nt_huge, ATTN_ERR_OVERFLOW}, "n_target"},
    {{"source count overflows", m_ns_huge, ATTN_ERR_OVERFLOW}, "n_source"},
    {{"no target features", m_no_xt, ATTN_ERR_NULL_POINTER}, "x_target"},
    {{"no target labels", m_no_yt, ATTN_ERR_NULL_POINTER}, "y_target"},
    {{"no source features", m_no_xs, ATTN_ERR_NULL_POINTER}, "x_source"},
    {{"no source labels", m_no_ys, ATTN_ERR_NULL_POINTER}, "y_source"},
    {{"NaN target feature", m_xt_nan, ATTN_ERR_INVALID_ARGUMENT}, "x_target[4, 5]"},
    {{"infinite source feature", m_xs_inf, ATTN_ERR_INVALID_ARGUMENT}, "x_source[1, 1]"},
    {{"target label 2", m_yt_two, ATTN_ERR_INVALID_ARGUMENT}, "y_target[3]"},
    {{"source label 255", m_ys_255, ATTN_ERR_INVALID_ARGUMENT}, "y_source[5, 3]"},
};
enum { N_ROWS = sizeof rows / sizeof rows[0] };

static attn_transfer_config full_config(void)
{
    return transfer_fx_config(ATTN_TRANSFER_ATTENTION, ATTN_TRANSFER_SCORE_MLP,
                              ATTN_TRANSFER_QUERY_EXAMPLE, ATTN_TRANSFER_ACT_RELU, 1);
}

static attn_backend *open_ref(void)
{
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    return be;
}

/* A model of full_config on be. */
static attn_transfer *full_model(attn_backend *be)
{
    const attn_transfer_config cfg = full_config();
    return transfer_fx_model(be, &cfg, SEED);
}

START_TEST(forward_rows)
{
    attn_backend *be = open_ref();
    setup s = {0};
    s.t = full_model(be);
    transfer_fx_batch_fill(&s.fx, SEED);
    s.b = s.fx.b;
    memset(s.prob, SENTINEL, sizeof s.prob);
    memset(s.alpha, SENTINEL, sizeof s.alpha);
    memset(s.sprob, SENTINEL, sizeof s.sprob);
    memset(&s.loss, SENTINEL, sizeof s.loss);
    memset(s.parts, SENTINEL, sizeof s.parts);
    s.o = (attn_transfer_outputs){.prob = s.prob, .alpha = s.alpha, .source_prob = s.sprob,
                                  .loss = &s.loss, .loss_parts = s.parts};
    rows[_i].mutate(&s);
    const attn_status st = attn_transfer_forward(s.null_model ? NULL : s.t,
                                                 s.null_batch ? NULL : &s.b, &s.o);
    attn_bad_expect(st, rows[_i].want, rows[_i].name, "ref");
    ck_assert_msg(strstr(attn_last_error(), rows[_i].mentions) != NULL,
                  "%s: message '%s' does not name %s", rows[_i].name, attn_last_error(),
                  rows[_i].mentions);
    attn_bad_untouched(s.prob, sizeof s.prob, SENTINEL, rows[_i].name, "prob");
    attn_bad_untouched(s.alpha, sizeof s.alpha, SENTINEL, rows[_i].name, "alpha");
    attn_bad_untouched(s.sprob, sizeof s.sprob, SENTINEL, rows[_i].name, "source_prob");
    attn_bad_untouched(&s.loss, sizeof s.loss, SENTINEL, rows[_i].name, "loss");
    attn_bad_untouched(s.parts, sizeof s.parts, SENTINEL, rows[_i].name, "loss_parts");
    /* A failed forward leaves nothing to differentiate. */
    ck_assert_int_eq(attn_transfer_backward(s.t), ATTN_ERR_INVALID_ARGUMENT);
    attn_transfer_free(s.t);
    attn_backend_close(be);
}
END_TEST

/* The same batch through predict: bad count, NULLs, non-finite features; nothing written. */
START_TEST(predict_rows)
{
    attn_backend *be = open_ref();
    attn_transfer *t = full_model(be);
    transfer_fx_batch fx;
    transfer_fx_batch_fill(&fx, SEED);
    float prob[NT], alpha[NT * K];
    memset(prob, SENTINEL, sizeof prob);
    memset(alpha, SENTINEL, sizeof alpha);
    ck_assert_int_eq(attn_transfer_predict(NULL, NT, fx.xt, prob, alpha), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_predict(t, NT, NULL, prob, alpha), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_predict(t, NT, fx.xt, NULL, alpha), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_predict(t, 0, fx.xt, prob, alpha), ATTN_ERR_SHAPE);
    ck_assert_int_eq(attn_transfer_predict(t, INT64_MAX, fx.xt, prob, alpha), ATTN_ERR_OVERFLOW);
    fx.xt[2] = NAN;
    ck_assert_int_eq(attn_transfer_predict(t, NT, fx.xt, prob, alpha),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(attn_last_error(), "x[0, 2]") != NULL);
    attn_bad_untouched(prob, sizeof prob, SENTINEL, "predict", "prob");
    attn_bad_untouched(alpha, sizeof alpha, SENTINEL, "predict", "alpha");
    attn_transfer_free(t);
    attn_backend_close(be);
}
END_TEST

/* backward without a forward, AdamW settings and bad batches through train_step (the
 * parameters stay as they were), parameter lookups. */
START_TEST(other_calls)
{
    attn_backend *be = open_ref();
    attn_transfer *t = full_model(be);
    ck_assert_int_eq(attn_transfer_backward(NULL), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_backward(t), ATTN_ERR_INVALID_ARGUMENT);
    transfer_fx_batch fx;
    transfer_fx_batch_fill(&fx, SEED);
    attn_transfer_param p;
    ck_assert_int_eq(attn_transfer_param_find(t, "attention.score.weight", &p), ATTN_OK);
    float before[TRANSFER_FX_H];
    memcpy(before, p.value, sizeof before);
    attn_model_adamw bad[MODEL_FX_N_BAD_ADAMW];
    model_fx_bad_adamw(bad);
    double loss = -1.0, norm = -1.0;
    for (int i = 0; i < MODEL_FX_N_BAD_ADAMW; i++)
        ck_assert_msg(attn_transfer_train_step(t, &fx.b, &bad[i], &loss, &norm) ==
                          ATTN_ERR_INVALID_ARGUMENT, "adamw row %d", i);
    const attn_model_adamw opt = attn_model_adamw_default();
    ck_assert_int_eq(attn_transfer_train_step(t, &fx.b, NULL, &loss, &norm),
                     ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_train_step(NULL, &fx.b, &opt, &loss, &norm),
                     ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_train_step(t, NULL, &opt, &loss, &norm),
                     ATTN_ERR_NULL_POINTER);
    fx.ys[0] = 7;
    ck_assert_int_eq(attn_transfer_train_step(t, &fx.b, &opt, &loss, &norm),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert(loss == -1.0 && norm == -1.0 && !memcmp(before, p.value, sizeof before));
    ck_assert_int_eq(attn_transfer_param_get(t, attn_transfer_param_count(t), &p),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_transfer_param_get(t, -1, &p), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_transfer_param_get(t, 0, NULL), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_param_find(t, "target.nothing", &p),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_transfer_param_find(t, NULL, &p), ATTN_ERR_NULL_POINTER);
    /* the dot score has no attention parameters */
    const attn_transfer_config dot = transfer_fx_config(ATTN_TRANSFER_ATTENTION,
        ATTN_TRANSFER_SCORE_DOT, ATTN_TRANSFER_QUERY_ATTRIBUTE, ATTN_TRANSFER_ACT_RELU, 1);
    attn_transfer *d = transfer_fx_model(be, &dot, SEED);
    ck_assert_int_eq(attn_transfer_param_count(d), 6);
    ck_assert_int_eq(attn_transfer_param_find(d, "attention.key.weight", &p),
                     ATTN_ERR_INVALID_ARGUMENT);
    attn_transfer_free(d);
    attn_transfer_free(t);
    attn_backend_close(be);
}
END_TEST

/* Configurations: the check names the field; create refuses without writing out. */
START_TEST(config_rows)
{
    attn_backend *be = open_ref();
    enum { NC = 21 };
    attn_transfer_config c[NC];
    for (int i = 0; i < NC; i++)
        c[i] = full_config();
    c[0].features = 0;
    c[1].embed = -1;
    c[2].sources = 0; /* no sources */
    c[3].attn_hidden = 0;
    c[4].act = (attn_transfer_act)3;
    c[5].mode = (attn_transfer_mode)7;
    c[6].score = (attn_transfer_score)-1;
    c[7].query = (attn_transfer_query)2;
    c[8].include_target = 2;
    c[9].source_weight = -1.0;
    c[10].source_weight = NAN;
    c[11].reserved[0] = 1;
    c[12].embed = 1 << 20; /* with features 6: 2^20 x 20 parameters, too many */
    c[12].features = 1 << 11;
    c[13].detach = (attn_transfer_detach)3;
    c[14].learn_temperature = 2;
    c[15].score = ATTN_TRANSFER_SCORE_COSINE; /* tau must be positive with the cosine score */
    c[15].temperature = 0.0;
    c[16].temperature = -1.0;
    c[17].temperature = INFINITY;
    c[18].temperature = 1e3; /* exp(logit) would overflow f32 */
    c[19].target_decay = -0.5;
    c[20].target_decay = NAN;
    const char *field[NC] = {"features", "embed", "sources", "attn_hidden", "act", "mode",
                             "score", "query", "include_target", "source_weight",
                             "source_weight", "reserved", "parameters", "detach",
                             "learn_temperature", "temperature", "temperature", "temperature",
                             "temperature", "target_decay", "target_decay"};
    for (int i = 0; i < NC; i++) {
        attn_transfer *t = (attn_transfer *)(uintptr_t)1;
        const attn_status st = attn_transfer_create(be, &c[i], 1, &t);
        ck_assert_msg(st != ATTN_OK && t == (attn_transfer *)(uintptr_t)1, "config row %d", i);
        ck_assert_msg(strstr(attn_last_error(), field[i]) != NULL, "config row %d: '%s'", i,
                      attn_last_error());
        ck_assert_int_ne(attn_transfer_config_check(&c[i]), ATTN_OK);
    }
    attn_transfer *t = NULL;
    ck_assert_int_eq(attn_transfer_create(NULL, &c[0], 1, &t), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_create(be, NULL, 1, &t), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_create(be, &c[0], 1, NULL), ATTN_ERR_NULL_POINTER);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(attn_transfer_config_check(NULL), ATTN_ERR_NULL_POINTER);
    attn_backend_close(be);
}
END_TEST

/* config_set: an unknown key or a value that does not parse leaves the configuration as it
 * was; describe refuses a NULL or empty buffer. */
START_TEST(config_text_rows)
{
    const char *bad[][2] = {{"width", "3"},          {"features", "abc"}, {"embed", "4x"},
                            {"act", "gelu"},         {"mode", "Uniform"}, {"score", ""},
                            {"query", "image"},      {"include_target", "yes"},
                            {"source_weight", "1e"}, {"sources", "99999999999999999999"},
                            {"score", "cos"},        {"learn_temperature", "2"},
                            {"temperature", "hot"},  {"target_decay", "0.1x"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        attn_transfer_config c = attn_transfer_config_default(), was = c;
        ck_assert_msg(attn_transfer_config_set(&c, bad[i][0], bad[i][1]) ==
                          ATTN_ERR_INVALID_ARGUMENT, "%s=%s", bad[i][0], bad[i][1]);
        ck_assert_msg(strstr(attn_last_error(), bad[i][0]) != NULL, "'%s'", attn_last_error());
        ck_assert(!memcmp(&c, &was, sizeof c));
    }
    attn_transfer_config c = attn_transfer_config_default();
    ck_assert_int_eq(attn_transfer_config_set(NULL, "embed", "3"), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_config_set(&c, NULL, "3"), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_config_set(&c, "embed", NULL), ATTN_ERR_NULL_POINTER);
    char buf[8];
    memset(buf, SENTINEL, sizeof buf);
    ck_assert_int_eq(attn_transfer_config_describe(&c, NULL, 8), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_config_describe(NULL, buf, 8), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transfer_config_describe(&c, buf, 0), ATTN_ERR_INVALID_ARGUMENT);
    attn_bad_untouched(buf, sizeof buf, SENTINEL, "describe", "buffer");
}
END_TEST

static Suite *transfer_badinput_suite(void)
{
    Suite *s = suite_create("transfer_badinput");
    TCase *tc = tcase_create("calls");
    tcase_add_loop_test(tc, forward_rows, 0, N_ROWS);
    tcase_add_test(tc, predict_rows);
    tcase_add_test(tc, other_calls);
    tcase_add_test(tc, config_rows);
    tcase_add_test(tc, config_text_rows);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(transfer_badinput_suite());
}
