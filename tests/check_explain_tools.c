/* check_explain_tools.c - `attn explain` driven in-process on a tiny model saved to a temporary
 * directory: each --method writes exactly the scores attn_explain gives called directly (the
 * predicted class, --target, --n, replayed LIME masks); without --method every file is written,
 * eval.json holds every method's figures (the library's own for a method checked directly),
 * report.html the tables, the curves and the escaped token texts; bad input exits 2 with a
 * message and writes nothing. */
#include "attn/attn.h"
#include "attn_cmds.h"
#include "attn_npy.h"
#include "test_files.h"

#include "check_run.h"
#include "check_run_files.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPLAIN(...) rf_call(attn_cmd_explain, "explain", __VA_ARGS__, (char *)NULL)

#ifdef ATTN_HAVE_CPU
#define BACKEND "cpu"
#else
#define BACKEND "ref"
#endif

enum { N = 5, S = 7, V = 50, D = 16, C = 3, LIME_N = 4 };
#define FAST "--ig-steps", "4", "--lime-n", "4", "--backend", BACKEND

/* ---- a command on bad input ------------------------------------------------------------------ */

/* The call exits 2, says `want` on stderr and writes no `out`. */
#define EXPECT_BAD(want, out, call)                                                              \
    do {                                                                                         \
        TEST_EXPECT_EXIT2(want, call);                                                           \
        ck_assert_msg(access(out, F_OK) != 0, "%s written on bad input", out);                   \
    } while (0)

/* ---- the fixture: a tiny model and its inputs ------------------------------------------------ */

typedef struct fixture {
    attn_backend *be;
    attn_model *m;
    int32_t ids[N * S], types[N * S], labels[N];
    uint8_t mask[N * S], rationale[N * S];
    uint8_t lime[N * LIME_N * S * D];
    char model[256], ids_f[256], mask_f[256], types_f[256];
} fixture;

static attn_model_config tiny_config(void)
{
    attn_model_config c = attn_model_config_default();
    c.vocab_size = V;
    c.hidden_size = D;
    c.num_layers = 2;
    c.num_heads = 2;
    c.intermediate_size = 32;
    c.max_positions = 16;
    c.num_labels = C;
    return c;
}

static void save_i32(const char *name, int ndim, const int64_t *shape, const int32_t *x)
{
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_save(tpath(name), ATTN_NPY_I32, ndim, shape, x, err) == 0, "%s", err);
}

static void save_u8(const char *name, int ndim, const int64_t *shape, const uint8_t *x)
{
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_save(tpath(name), ATTN_NPY_U8, ndim, shape, x, err) == 0, "%s", err);
}

/* The model saved to tpath("model"); ids, mask (rows 2.. end in padding), types, labels, a
 * rationale and LIME masks saved beside it. */
static void fixture_make(fixture *f)
{
    const attn_model_config c = tiny_config();
    ck_assert_int_eq(attn_backend_open(BACKEND, NULL, &f->be), ATTN_OK);
    ck_assert_msg(attn_model_create(f->be, &c, 11, &f->m) == ATTN_OK, "%s", attn_last_error());
    ck_assert_int_eq(mkdir(tpath("model"), 0700), 0);
    ck_assert_msg(attn_model_save(f->m, tpath("model")) == ATTN_OK, "%s", attn_last_error());
    for (int i = 0; i < N * S; i++) {
        const int row = i / S, col = i % S;
        f->ids[i] = (int32_t)(1 + (i * 37 + 11) % (V - 1));
        f->types[i] = (i / 3) % 2;
        f->mask[i] = col < S - row / 2;
        f->rationale[i] = col % 3 == 1 && col + 1 < S - row / 2; /* eligible tokens only */
    }
    for (int i = 0; i < N; i++)
        f->labels[i] = i % C;
    for (int i = 0; i < N * LIME_N * S * D; i++)
        f->lime[i] = (uint8_t)((i * 2654435761u >> 7) & 1);
    const int64_t shape[4] = {N, S}, lime_shape[4] = {N, LIME_N, S, D};
    save_i32("ids.npy", 2, shape, f->ids);
    save_i32("types.npy", 2, shape, f->types);
    save_i32("labels.npy", 1, shape, f->labels);
    save_u8("mask.npy", 2, shape, f->mask);
    save_u8("rationale.npy", 2, shape, f->rationale);
    save_u8("lime.npy", 4, lime_shape, f->lime);
    /* own copies: tpath's ring of buffers turns over within a test */
    snprintf(f->model, sizeof f->model, "%s", tpath("model"));
    snprintf(f->ids_f, sizeof f->ids_f, "%s", tpath("ids.npy"));
    snprintf(f->mask_f, sizeof f->mask_f, "%s", tpath("mask.npy"));
    snprintf(f->types_f, sizeof f->types_f, "%s", tpath("types.npy"));
}

static void fixture_free(fixture *f)
{
    attn_model_free(f->m);
    attn_backend_close(f->be);
}

/* The first n rows of the fixture's texts. */
static attn_model_input input_of(const fixture *f, int64_t n)
{
    return (attn_model_input){.batch = n, .seq = S, .ids = f->ids, .attention_mask = f->mask,
                              .token_types = f->types};
}

/* attn_explain called directly with the command's options (FAST): scores [n, S], malloc'd. */
static float *direct(fixture *f, attn_explain_method m, int64_t n, const int32_t *targets,
                     const uint8_t *lime)
{
    attn_explain_options o = attn_explain_options_default();
    o.method = m;
    o.ig_steps = 4;
    o.lime_samples = LIME_N;
    o.lime_masks = lime;
    const attn_model_input in = input_of(f, n);
    float *s = malloc(sizeof(float) * (size_t)(n * S));
    ck_assert(s);
    ck_assert_msg(attn_explain(f->m, &in, targets, &o, s) == ATTN_OK, "%s: %s",
                  attn_explain_method_name(m), attn_last_error());
    return s;
}

/* The f32 file `path` of shape [n, S] holds want bit for bit. */
static void assert_scores(const char *path, const float *want, int64_t n, const char *what)
{
    attn_npy a;
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_load(path, &a, err) == 0, "%s", err);
    ck_assert_int_eq(a.dtype, ATTN_NPY_F32);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_int_eq(a.shape[0], n);
    ck_assert_int_eq(a.shape[1], S);
    rf_assert_same_f32(a.data, want, n * S, what);
    attn_npy_free(&a);
}

/* ---- one method ------------------------------------------------------------------------------ */

START_TEST(method_scores_match_the_library)
{
    fixture f;
    fixture_make(&f);
    char out[256];
    snprintf(out, sizeof out, "%s", tpath("s.npy"));
    for (int k = 0; k < ATTN_EXPLAIN_METHOD_COUNT; k++) {
        const char *name = attn_explain_method_name((attn_explain_method)k);
        ck_assert_msg(EXPLAIN("--model", f.model, "--ids", f.ids_f, "--mask", f.mask_f,
                              "--types", f.types_f, "--method", name, "--out", out, FAST) == 0,
                      "%s: %s", name, attn_last_error());
        float *want = direct(&f, (attn_explain_method)k, N, NULL, NULL);
        assert_scores(out, want, N, name);
        free(want);
    }
    fixture_free(&f);
}
END_TEST

START_TEST(method_options_reach_the_library)
{
    fixture f;
    fixture_make(&f);
    char out[256], lime[256];
    snprintf(out, sizeof out, "%s", tpath("s.npy"));
    snprintf(lime, sizeof lime, "%s", tpath("lime.npy"));
    /* --target 2 on the first 3 texts */
    const int32_t twos[N] = {2, 2, 2, 2, 2};
    ck_assert_int_eq(EXPLAIN("--model", f.model, "--ids", f.ids_f, "--mask", f.mask_f, "--types",
                             f.types_f, "--method", "input_x_gradient", "--target", "2", "--n",
                             "3", "--out", out, FAST), 0);
    float *want = direct(&f, ATTN_EXPLAIN_INPUT_X_GRADIENT, 3, twos, NULL);
    assert_scores(out, want, 3, "--target 2 --n 3");
    free(want);
    /* --targets from a file */
    save_i32("targets.npy", 1, (const int64_t[]){N}, f.labels);
    ck_assert_int_eq(EXPLAIN("--model", f.model, "--ids", f.ids_f, "--mask", f.mask_f, "--types",
                             f.types_f, "--method", "integrated_gradients", "--targets",
                             tpath("targets.npy"), "--out", out, FAST), 0);
    want = direct(&f, ATTN_EXPLAIN_INTEGRATED_GRADIENTS, N, f.labels, NULL);
    assert_scores(out, want, N, "--targets");
    free(want);
    /* LIME's masks replayed */
    ck_assert_int_eq(EXPLAIN("--model", f.model, "--ids", f.ids_f, "--mask", f.mask_f, "--types",
                             f.types_f, "--method", "lime", "--lime-samples", lime, "--out", out,
                             "--backend", BACKEND), 0);
    want = direct(&f, ATTN_EXPLAIN_LIME, N, NULL, f.lime);
    assert_scores(out, want, N, "--lime-samples");
    free(want);
    fixture_free(&f);
}
END_TEST

/* ---- every method ---------------------------------------------------------------------------- */

/* eval.json: every method with every figure, the k list, weights, the ranking. */
static cJSON *check_eval_json(const char *dir, int bow, int rationale)
{
    cJSON *j = test_read_json(tsub(dir, "eval.json"));
    const cJSON *k = cJSON_GetObjectItem(j, "k"), *ms = cJSON_GetObjectItem(j, "methods");
    ck_assert(cJSON_IsArray(k) && cJSON_GetArraySize(k) == 5);
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(j, "model_weights")));
    ck_assert(!bow == !cJSON_GetObjectItem(j, "bow_weights"));
    const cJSON *rank = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "ranking"), "model");
    ck_assert(cJSON_IsArray(rank) && cJSON_GetArraySize(rank) == ATTN_EXPLAIN_METHOD_COUNT);
    static const char *const figures[] = {"model_acc", "model_weighted", "comprehensiveness",
                                          "sufficiency", "aopc", "log_odds", "deletion",
                                          "insertion", "deletion_auc", "insertion_auc"};
    for (int m = 0; m < ATTN_EXPLAIN_METHOD_COUNT; m++) {
        const char *name = attn_explain_method_name((attn_explain_method)m);
        const cJSON *e = cJSON_GetObjectItem(ms, name);
        ck_assert_msg(e != NULL, "eval.json lacks %s", name);
        for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++)
            ck_assert_msg(cJSON_GetObjectItem(e, figures[i]), "%s lacks %s", name, figures[i]);
        ck_assert(!bow == !cJSON_GetObjectItem(e, "bow_acc"));
        ck_assert(!rationale == !cJSON_GetObjectItem(e, "precision"));
        ck_assert(!rationale == !cJSON_GetObjectItem(e, "recall"));
    }
    return j;
}

/* eval.json's figures of vanilla_gradient are attn_explain_evaluate's on its scores file, with
 * the eligible tokens and filler of a model without vocab.txt. */
static void check_one_eval(fixture *f, const char *dir, const cJSON *j)
{
    uint8_t eligible[N * S];
    for (int b = 0; b < N; b++) {
        int last = 0;
        for (int s = 0; s < S; s++)
            last = f->mask[b * S + s] ? s : last;
        for (int s = 0; s < S; s++)
            eligible[b * S + s] = f->mask[b * S + s] && s != 0 && s != last;
    }
    attn_npy a;
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_load(tsub(dir, "vanilla_gradient.npy"), &a, err) == 0, "%s", err);
    attn_explain_eval_options eo = attn_explain_eval_options_default();
    eo.filler_id = (int32_t)tiny_config().pad_token_id;
    eo.max_batch = 128;
    eo.rationale = f->rationale;
    attn_explain_eval e;
    const attn_model_input in = input_of(f, N);
    ck_assert_msg(attn_explain_evaluate(f->m, &in, f->labels, eligible, a.data, &eo, &e) ==
                      ATTN_OK, "%s", attn_last_error());
    attn_npy_free(&a);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "methods"), "vanilla_gradient");
    ck_assert_double_eq_tol(cJSON_GetObjectItem(v, "aopc")->valuedouble, e.aopc, 1e-12);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(v, "comprehensiveness")->valuedouble,
                            e.comprehensiveness, 1e-12);
    const cJSON *acc = cJSON_GetObjectItem(v, "model_acc"), *prec;
    prec = cJSON_GetObjectItem(v, "precision");
    for (int k = 0; k < 5; k++) {
        ck_assert_double_eq_tol(cJSON_GetArrayItem(acc, k)->valuedouble, e.model_acc[k], 1e-12);
        ck_assert_double_eq_tol(cJSON_GetArrayItem(prec, k)->valuedouble, e.precision[k], 1e-12);
    }
}

START_TEST(all_methods_write_every_file)
{
    fixture f;
    fixture_make(&f);
    char dir[256];
    snprintf(dir, sizeof dir, "%s", tpath("out/all"));
    ck_assert_msg(EXPLAIN("--model", f.model, "--ids", f.ids_f, "--mask", f.mask_f, "--types",
                          f.types_f, "--labels", tpath("labels.npy"), "--rationale",
                          tpath("rationale.npy"), "--reader-ids", f.ids_f, "--reader-labels",
                          tpath("labels.npy"), "--reader-mask", f.mask_f, "--out", dir, FAST) == 0,
                  "%s", attn_last_error());
    for (int m = 0; m < ATTN_EXPLAIN_METHOD_COUNT; m++) {
        char name[64];
        snprintf(name, sizeof name, "%s.npy", attn_explain_method_name((attn_explain_method)m));
        float *want = direct(&f, (attn_explain_method)m, N, NULL, NULL);
        assert_scores(tsub(dir, name), want, N, name);
        free(want);
    }
    cJSON *j = check_eval_json(dir, 1, 1);
    check_one_eval(&f, dir, j);
    cJSON_Delete(j);
    char *html = (char *)test_slurp(tsub(dir, "report.html"), NULL);
    static const char *const want[] = {"<!DOCTYPE html>", "<svg", "<polyline", "<table",
                                       "Model reader", "Bag-of-words reader", "Faithfulness",
                                       "Planted precision", "Planted recall", "Deletion curves",
                                       "Insertion curves", "human, IMDB", "0.818", "#3",
                                       "integrated_gradients", "flow"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(html, want[i]) != NULL, "report.html lacks %s", want[i]);
    ck_assert(strstr(html, "<script") == NULL && strstr(html, "http://www.w3.org/2000/svg"));
    free(html);
    fixture_free(&f);
}
END_TEST

/* Without labels the model's predictions stand in, said on stderr and in the report; the
 * tokens of vocab.txt are shown escaped. */
START_TEST(all_methods_without_labels_and_with_a_vocabulary)
{
    fixture f;
    fixture_make(&f);
    FILE *v = fopen(tsub(f.model, "vocab.txt"), "w");
    ck_assert(v);
    static const char *const tokens[] = {"[PAD]", "[CLS]", "[SEP]", ".", ",", "<b>&"};
    for (int i = 0; i < V; i++)
        fprintf(v, "%s\n", i < 6 ? tokens[i] : i % 2 ? "word" : "wo\"rd");
    fclose(v);
    char dir[256];
    snprintf(dir, sizeof dir, "%s", tpath("out"));
    test_capture_begin();
    const int rc = EXPLAIN("--model", f.model, "--ids", f.ids_f, "--mask", f.mask_f, "--k-count",
                           "1,2,3,4,5", "--out", dir, FAST);
    const char *text = test_capture_end();
    ck_assert_msg(rc == 0, "%s", text);
    ck_assert_msg(strstr(text, "the model's own predictions") != NULL, "%s", text);
    cJSON *j = check_eval_json(dir, 0, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "labels")->valuestring, "predicted");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "k_as_fraction")));
    ck_assert_int_eq(cJSON_GetObjectItem(j, "filler_id")->valueint, 3);
    cJSON_Delete(j);
    char *html = (char *)test_slurp(tsub(dir, "report.html"), NULL);
    ck_assert(strstr(html, "No labels were given") != NULL);
    ck_assert(strstr(html, "&lt;b&gt;&amp;") != NULL && strstr(html, "<b>&") == NULL);
    ck_assert(strstr(html, "wo&quot;rd") != NULL);
    free(html);
    fixture_free(&f);
}
END_TEST

/* ---- bad input ------------------------------------------------------------------------------- */

START_TEST(bad_input_exits_2)
{
    fixture f;
    fixture_make(&f);
    char out[256], dir[256], ids1[256];
    snprintf(out, sizeof out, "%s", tpath("bad.npy"));
    snprintf(dir, sizeof dir, "%s", tpath("bad"));
    const int64_t s1 = S, n1 = 2, d_bad[4] = {N, LIME_N, S, D + 1};
    save_i32("ids1.npy", 1, &s1, f.ids);
    save_i32("labels2.npy", 1, &n1, f.labels);
    save_u8("lime_bad.npy", 4, d_bad, f.lime);
    snprintf(ids1, sizeof ids1, "%s", tpath("ids1.npy"));
    const int32_t big[N] = {0, 1, 7, 0, 0};
    save_i32("big.npy", 1, (const int64_t[]){N}, big);
#define ARGS "--model", f.model, "--ids", f.ids_f, "--mask", f.mask_f
    EXPECT_BAD("unknown saliency method", out, EXPLAIN(ARGS, "--method", "saliency", "--out", out));
    EXPECT_BAD("the model has 3 labels", out,
               EXPLAIN(ARGS, "--method", "random", "--target", "3", "--out", out));
    EXPECT_BAD("target class 7", out,
               EXPLAIN(ARGS, "--method", "random", "--targets", tpath("big.npy"), "--out", out));
    EXPECT_BAD("--k", dir, EXPLAIN(ARGS, "--k", "0", "--out", dir));
    EXPECT_BAD("--k", dir, EXPLAIN(ARGS, "--k", "5,150", "--out", dir));
    EXPECT_BAD("--k-count", dir, EXPLAIN(ARGS, "--k-count", "0", "--out", dir));
    EXPECT_BAD("one of --k and --k-count", dir,
               EXPLAIN(ARGS, "--k", "5", "--k-count", "1", "--out", dir));
    EXPECT_BAD("has shape", out,
               EXPLAIN("--model", f.model, "--ids", ids1, "--mask", f.mask_f, "--method",
                       "random", "--out", out));
    EXPECT_BAD("has shape", dir, EXPLAIN(ARGS, "--labels", tpath("labels2.npy"), "--out", dir));
    EXPECT_BAD("hidden size", out, EXPLAIN(ARGS, "--method", "lime", "--lime-samples",
                                           tpath("lime_bad.npy"), "--out", out));
    EXPECT_BAD("--lime-samples", out,
               EXPLAIN("--model", f.model, "--ids", ids1, "--method", "lime", "--lime-samples",
                       tpath("lime.npy"), "--out", out));
    EXPECT_BAD("needs both", dir, EXPLAIN(ARGS, "--reader-ids", f.ids_f, "--out", dir));
    EXPECT_BAD("give one of --ids", dir, EXPLAIN(ARGS, "--data", f.model, "--out", dir));
    EXPECT_BAD("--model DIR is required", dir, EXPLAIN("--ids", f.ids_f, "--out", dir));
    EXPECT_BAD("--out", dir, EXPLAIN(ARGS));
    EXPECT_BAD("unknown option", dir, EXPLAIN(ARGS, "--out", dir, "--frobnicate"));
    EXPECT_BAD("test_ids.npy", dir, EXPLAIN("--model", f.model, "--data", dir, "--out", dir));
    /* an id outside the vocabulary: the library's message */
    int32_t ids[N * S];
    memcpy(ids, f.ids, sizeof ids);
    ids[3] = V;
    save_i32("ids_big.npy", 2, (const int64_t[]){N, S}, ids);
    EXPECT_BAD("vocab", out, EXPLAIN("--model", f.model, "--ids", tpath("ids_big.npy"),
                                     "--method", "random", "--out", out));
    /* vocab.txt without "." needs --filler */
    FILE *v = fopen(tsub(f.model, "vocab.txt"), "w");
    ck_assert(v);
    for (int i = 0; i < V; i++)
        fprintf(v, "w%d\n", i);
    fclose(v);
    EXPECT_BAD("--filler", dir, EXPLAIN(ARGS, "--out", dir));
#undef ARGS
    ck_assert_int_eq(EXPLAIN("--help"), 0);
    fixture_free(&f);
}
END_TEST

static Suite *explain_tools_suite(void)
{
    Suite *s = suite_create("explain_tools");
    TCase *t = tcase_create("explain");
    tcase_add_checked_fixture(t, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(t, method_scores_match_the_library);
    tcase_add_test(t, method_options_reach_the_library);
    tcase_add_test(t, all_methods_write_every_file);
    tcase_add_test(t, all_methods_without_labels_and_with_a_vocabulary);
    tcase_add_test(t, bad_input_exits_2);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return attn_check_run(explain_tools_suite());
}
