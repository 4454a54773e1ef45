/* check_model_badinput.c - the model's public calls on bad input: every row of the table
 * returns its status with a message and writes nothing (the outputs keep their sentinel
 * bytes); the backward refuses to run without a forward, the loss rejects labels out of range,
 * AdamW rejects settings out of their domain, and the configuration check names the field. */
#include "attn/attn.h"
#include "check_badinput.h"
#include "check_run.h"
#include "model_fixture.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { B = MODEL_FX_B, S = MODEL_FX_S, SEED = 5 };
#define SENTINEL 0x5A

/* A valid forward (batch, outputs); each row breaks one thing. */
typedef struct setup {
    attn_model *m;
    model_fx_batch b;
    attn_model_input in;
    attn_model_outputs o;
    float logits[B * 3], pooled[B * 16];
    float emb[B * S * 16];
    int null_model, null_in, null_outs;
} setup;

static void m_seq_long(setup *s) { s->in.seq = 13; /* max positions 12 */ }
static void m_seq_zero(setup *s) { s->in.seq = 0; }
static void m_batch_neg(setup *s) { s->in.batch = -1; }
static void m_id_high(setup *s) { s->b.ids[5] = 23; }
static void m_id_neg(setup *s) { s->b.ids[0] = -1; }
static void m_type_high(setup *s) { s->b.types[2] = 2; }
static void m_mask_two(setup *s) { s->b.mask[4] = 2; }
static void m_no_ids(setup *s) { s->in.ids = NULL; }
static void m_in_reserved(setup *s) { s->in.reserved[1] = 1; }
static void m_out_reserved(setup *s) { s->o.reserved[0] = 7; }
static void m_no_logits(setup *s) { s->o.logits = NULL; }
static void m_null_model(setup *s) { s->null_model = 1; }
static void m_null_in(setup *s) { s->null_in = 1; }
static void m_null_outs(setup *s) { s->null_outs = 1; }
static void m_overflow(setup *s) { s->in.batch = INT64_MAX / 4; }

static const ATTN_BAD_ROW(setup) rows[] = {
    {"sequence longer than max positions", m_seq_long, ATTN_ERR_SHAPE},
    {"sequence of 0 tokens", m_seq_zero, ATTN_ERR_SHAPE},
    {"negative batch", m_batch_neg, ATTN_ERR_SHAPE},
    {"id = vocab", m_id_high, ATTN_ERR_INVALID_ARGUMENT},
    {"negative id", m_id_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"token type = type vocab", m_type_high, ATTN_ERR_INVALID_ARGUMENT},
    {"mask value 2", m_mask_two, ATTN_ERR_INVALID_ARGUMENT},
    {"neither ids nor embeddings", m_no_ids, ATTN_ERR_NULL_POINTER},
    {"input reserved nonzero", m_in_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"outputs reserved nonzero", m_out_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"no logits", m_no_logits, ATTN_ERR_NULL_POINTER},
    {"NULL model", m_null_model, ATTN_ERR_NULL_POINTER},
    {"NULL input", m_null_in, ATTN_ERR_NULL_POINTER},
    {"NULL outputs", m_null_outs, ATTN_ERR_NULL_POINTER},
    {"batch x seq overflows", m_overflow, ATTN_ERR_OVERFLOW},
};
enum { N_ROWS = sizeof rows / sizeof rows[0] };

START_TEST(forward_rows)
{
    attn_backend *be = model_fx_open("ref");
    ck_assert_ptr_nonnull(be);
    setup s = {0};
    s.m = model_fx_model(be, SEED);
    model_fx_batch_fill(&s.b, SEED);
    s.in = s.b.in;
    memset(s.logits, SENTINEL, sizeof s.logits);
    memset(s.pooled, SENTINEL, sizeof s.pooled);
    s.o = (attn_model_outputs){.logits = s.logits, .pooled = s.pooled};
    rows[_i].mutate(&s);
    const attn_status st = attn_model_forward(s.null_model ? NULL : s.m, s.null_in ? NULL : &s.in,
                                              s.null_outs ? NULL : &s.o);
    attn_bad_expect(st, rows[_i].want, rows[_i].name, "ref");
    attn_bad_untouched(s.logits, sizeof s.logits, SENTINEL, rows[_i].name, "logits");
    attn_bad_untouched(s.pooled, sizeof s.pooled, SENTINEL, rows[_i].name, "pooled");
    /* A failed forward leaves nothing to differentiate. */
    float dl[B * 3] = {0};
    ck_assert_int_eq(attn_model_backward(s.m, dl, NULL), ATTN_ERR_INVALID_ARGUMENT);
    attn_model_free(s.m);
    attn_backend_close(be);
}
END_TEST

/* Backward before any forward, loss labels, AdamW settings, parameter lookups. */
START_TEST(other_calls)
{
    attn_backend *be = model_fx_open("ref");
    ck_assert_ptr_nonnull(be);
    attn_model *m = model_fx_model(be, SEED);
    float dl[B * 3] = {0}, logits[B * 3];
    double loss = -1.0;
    ck_assert_int_eq(attn_model_backward(m, dl, NULL), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_model_backward(m, NULL, NULL), ATTN_ERR_NULL_POINTER);
    const int32_t labels_ok[B] = {0, 2}, labels_bad[B] = {0, 3};
    ck_assert_int_eq(attn_model_loss(m, labels_ok, &loss, NULL), ATTN_ERR_INVALID_ARGUMENT);
    model_fx_batch b;
    model_fx_batch_fill(&b, SEED);
    ck_assert_int_eq(attn_model_forward(m, &b.in, &(attn_model_outputs){.logits = logits}),
                     ATTN_OK);
    memset(dl, SENTINEL, sizeof dl);
    ck_assert_int_eq(attn_model_loss(m, labels_bad, &loss, dl), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert(loss == -1.0);
    attn_bad_untouched(dl, sizeof dl, SENTINEL, "bad labels", "dlogits");
    ck_assert_int_eq(attn_model_loss(m, labels_ok, NULL, dl), ATTN_ERR_NULL_POINTER);
    /* AdamW: each setting out of its domain; the parameters stay as they were. */
    attn_model_param p;
    ck_assert_int_eq(attn_model_param_get(m, 0, &p), ATTN_OK);
    const float before = p.value[p.numel / 2];
    attn_model_adamw bad[MODEL_FX_N_BAD_ADAMW];
    model_fx_bad_adamw(bad);
    for (int i = 0; i < MODEL_FX_N_BAD_ADAMW; i++)
        ck_assert_msg(attn_model_train_step(m, &b.in, labels_ok, &bad[i], &loss, NULL) ==
                          ATTN_ERR_INVALID_ARGUMENT, "adamw row %d", i);
    ck_assert(p.value[p.numel / 2] == before);
    ck_assert_int_eq(attn_model_param_get(m, attn_model_param_count(m), &p),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_model_param_find(m, "bert.pooler.dense.nothing", &p),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_model_param_find(m, "pooler.dense.weight", &p), ATTN_OK);
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

/* Configurations: the check names the field; create and load refuse without writing out. */
START_TEST(config_rows)
{
    attn_backend *be = model_fx_open("ref");
    ck_assert_ptr_nonnull(be);
    attn_model_config c[5];
    for (int i = 0; i < 5; i++)
        c[i] = model_fx_config();
    c[0].hidden_size = 18; /* not a multiple of 4 heads */
    c[1].num_layers = 0;
    c[2].layer_norm_eps = 0.0;
    c[3].pad_token_id = c[3].vocab_size;
    c[4].reserved[0] = 1;
    const char *field[5] = {"hidden", "layers", "eps", "pad", "reserved"};
    for (int i = 0; i < 5; i++) {
        attn_model *m = (attn_model *)(uintptr_t)1;
        const attn_status st = attn_model_create(be, &c[i], 1, &m);
        ck_assert_msg(st != ATTN_OK && m == (attn_model *)(uintptr_t)1, "config row %d", i);
        ck_assert_msg(strstr(attn_last_error(), field[i]) != NULL, "config row %d: '%s'", i,
                      attn_last_error());
    }
    attn_model *m = NULL;
    ck_assert_int_eq(attn_model_create(NULL, &c[0], 1, &m), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_model_load(be, "/nonexistent/model", 0, 1, &m), ATTN_ERR_IO);
    ck_assert_int_eq(attn_model_load(be, ".", 8u, 1, &m), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    attn_backend_close(be);
}
END_TEST

static Suite *model_badinput_suite(void)
{
    Suite *s = suite_create("model_badinput");
    TCase *tc = tcase_create("calls");
    tcase_add_loop_test(tc, forward_rows, 0, N_ROWS);
    tcase_add_test(tc, other_calls);
    tcase_add_test(tc, config_rows);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(model_badinput_suite());
}
