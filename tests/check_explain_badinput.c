/* check_explain_badinput.c - attn_explain on bad input: every row of the table returns its
 * status with a message and leaves the scores as they were (sentinel bytes); the names parse
 * both ways; and a run leaves the model's parameter gradients as they were (the saliency
 * backward computes the gradient of e only). */
#include "attn/attn.h"
#include "check_badinput.h"
#include "check_run.h"
#include "explain_fixture.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { B = MODEL_FX_B, S = MODEL_FX_S, D = 16, SEED = 11, NLIME = 4 };
#define SENTINEL 0x5A

/* A valid call (LIME with given masks, so the mask rows have something to break). */
typedef struct setup {
    attn_model *m;
    model_fx_batch b;
    attn_model_input in;
    attn_explain_options o;
    int32_t targets[B];
    uint8_t masks[B * NLIME * S * D];
    float emb[B * S * D];
    int null_model, null_in, null_opt, null_scores;
} setup;

static void m_target_high(setup *s) { s->targets[1] = 3; /* 3 labels */ }
static void m_target_neg(setup *s) { s->targets[0] = -1; }
static void m_method(setup *s) { s->o.method = ATTN_EXPLAIN_METHOD_COUNT; }
static void m_ig_zero(setup *s) { s->o.method = ATTN_EXPLAIN_INTEGRATED_GRADIENTS, s->o.ig_steps = 0; }
static void m_lime_one(setup *s) { s->o.lime_samples = 1; }
static void m_width(setup *s) { s->o.lime_kernel_width = NAN; }
static void m_batch(setup *s) { s->o.max_batch = -2; }
static void m_reserved(setup *s) { s->o.reserved[2] = 1; }
static void m_mask_two(setup *s) { s->masks[B * NLIME * S * D - 1] = 2; }
static void m_embeddings(setup *s) { s->in.embeddings = s->emb; }
static void m_no_ids(setup *s) { s->in.ids = NULL; }
static void m_id_high(setup *s) { s->b.ids[3] = 23; }
static void m_seq_long(setup *s) { s->in.seq = 13; }
static void m_null_model(setup *s) { s->null_model = 1; }
static void m_null_in(setup *s) { s->null_in = 1; }
static void m_null_opt(setup *s) { s->null_opt = 1; }
static void m_null_scores(setup *s) { s->null_scores = 1; }

static const ATTN_BAD_ROW(setup) rows[] = {
    {"target class = num_labels", m_target_high, ATTN_ERR_INVALID_ARGUMENT},
    {"negative target class", m_target_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"method outside the enum", m_method, ATTN_ERR_INVALID_ARGUMENT},
    {"0 integration steps", m_ig_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"1 LIME sample", m_lime_one, ATTN_ERR_INVALID_ARGUMENT},
    {"NaN kernel width", m_width, ATTN_ERR_INVALID_ARGUMENT},
    {"negative max batch", m_batch, ATTN_ERR_INVALID_ARGUMENT},
    {"options reserved nonzero", m_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"LIME mask value 2", m_mask_two, ATTN_ERR_INVALID_ARGUMENT},
    {"embeddings instead of ids", m_embeddings, ATTN_ERR_INVALID_ARGUMENT},
    {"no ids", m_no_ids, ATTN_ERR_INVALID_ARGUMENT},
    {"id = vocab", m_id_high, ATTN_ERR_INVALID_ARGUMENT},
    {"sequence longer than max positions", m_seq_long, ATTN_ERR_SHAPE},
    {"NULL model", m_null_model, ATTN_ERR_NULL_POINTER},
    {"NULL input", m_null_in, ATTN_ERR_NULL_POINTER},
    {"NULL options", m_null_opt, ATTN_ERR_NULL_POINTER},
    {"NULL scores", m_null_scores, ATTN_ERR_NULL_POINTER},
};
enum { N_ROWS = sizeof rows / sizeof rows[0] };

START_TEST(explain_rows)
{
    attn_backend *be = model_fx_open("ref");
    ck_assert_ptr_nonnull(be);
    setup *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    s->m = model_fx_model(be, SEED);
    model_fx_batch_fill(&s->b, SEED);
    s->in = s->b.in;
    s->o = attn_explain_options_default();
    s->o.method = ATTN_EXPLAIN_LIME;
    s->o.lime_samples = NLIME;
    s->o.lime_masks = s->masks;
    for (size_t i = 0; i < sizeof s->masks; i++)
        s->masks[i] = (uint8_t)(i % 3 == 0);
    s->targets[0] = 0, s->targets[1] = 2;
    float scores[B * S];
    memset(scores, SENTINEL, sizeof scores);
    /* The unmutated call succeeds: each row fails for its own reason. */
    ck_assert_int_eq(attn_explain(s->m, &s->in, s->targets, &s->o, scores), ATTN_OK);
    memset(scores, SENTINEL, sizeof scores);
    rows[_i].mutate(s);
    const attn_status st =
        attn_explain(s->null_model ? NULL : s->m, s->null_in ? NULL : &s->in, s->targets,
                     s->null_opt ? NULL : &s->o, s->null_scores ? NULL : scores);
    attn_bad_expect(st, rows[_i].want, rows[_i].name, "ref");
    attn_bad_untouched(scores, sizeof scores, SENTINEL, rows[_i].name, "scores");
    attn_model_free(s->m);
    free(s);
    attn_backend_close(be);
}
END_TEST

START_TEST(names)
{
    for (int i = 0; i < ATTN_EXPLAIN_METHOD_COUNT; i++) {
        attn_explain_method m = ATTN_EXPLAIN_METHOD_COUNT;
        ck_assert_int_eq(attn_explain_method_parse(attn_explain_method_name(i), &m), ATTN_OK);
        ck_assert_int_eq(m, i);
    }
    attn_explain_method m = ATTN_EXPLAIN_RANDOM;
    ck_assert_int_eq(attn_explain_method_parse("saliency", &m), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(attn_last_error(), "integrated_gradients") != NULL, "%s",
                  attn_last_error());
    ck_assert_int_eq(m, ATTN_EXPLAIN_RANDOM);
    ck_assert_int_eq(attn_explain_method_parse(NULL, &m), ATTN_ERR_NULL_POINTER);
    ck_assert_str_eq(attn_explain_method_name(ATTN_EXPLAIN_METHOD_COUNT), "?");
}
END_TEST

/* Every method leaves the parameter gradients of a training step in progress untouched. */
START_TEST(gradients_untouched)
{
    attn_backend *be = model_fx_open("ref");
    ck_assert_ptr_nonnull(be);
    attn_model *m = model_fx_model(be, SEED);
    model_fx_batch b;
    model_fx_batch_fill(&b, SEED);
    float logits[B * 3], dl[B * 3] = {0.5f, -1.0f, 0.25f, 1.0f, 0.0f, -0.5f};
    ck_assert_int_eq(attn_model_forward(m, &b.in, &(attn_model_outputs){.logits = logits}),
                     ATTN_OK);
    ck_assert_int_eq(attn_model_backward(m, dl, NULL), ATTN_OK);
    attn_model_param p;
    ck_assert_int_eq(attn_model_param_find(m, "bert.encoder.layer.0.attention.self.query.weight",
                                           &p), ATTN_OK);
    float *before = malloc((size_t)p.numel * sizeof(float));
    memcpy(before, p.grad, (size_t)p.numel * sizeof(float));
    attn_explain_options o = attn_explain_options_default();
    o.ig_steps = 4, o.lime_samples = 6;
    for (int k = 0; k < ATTN_EXPLAIN_METHOD_COUNT; k++)
        free(explain_fx_run(m, &b.in, b.labels, (attn_explain_method)k, &o));
    ck_assert_msg(memcmp(before, p.grad, (size_t)p.numel * sizeof(float)) == 0,
                  "a saliency method changed a parameter gradient");
    free(before);
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("explain_badinput");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, explain_rows, 0, N_ROWS);
    tcase_add_test(tc, names);
    tcase_add_test(tc, gradients_untouched);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return attn_check_run(suite()); }
