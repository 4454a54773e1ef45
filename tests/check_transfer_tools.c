/* check_transfer_tools.c - `attn data --task transfer` and `attn transfer` driven in-process on
 * files in a temporary directory: the benchmark is reproducible from its seed, an example
 * depends on its index only, and its labels follow the planted definition; the command runs
 * on a tiny generated set, deterministically, its weights summing to 1 and its chart a
 * well-formed SVG; bad input exits 2 with a message and writes nothing. */
#include "attn/attn.h"
#include "attn_cmds.h"
#include "attn_npy.h"
#include "test_files.h"
#include "transfer_planted.h"

#include "check_run.h"
#include "check_run_files.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DATA(...) rf_call(attn_cmd_data, "data", __VA_ARGS__, (char *)NULL)
#define TRANSFER(...) rf_call(attn_cmd_transfer, "transfer", __VA_ARGS__, (char *)NULL)

#ifdef ATTN_HAVE_CPU
#define BACKEND "cpu"
#else
#define BACKEND "ref"
#endif

static const char *const set_files[] = {"source_x.npy", "source_y.npy", "target_x.npy",
                                        "target_y.npy", "test_x.npy",   "test_y.npy",
                                        "planted.json"};

/* The sizes of the tiny benchmark; K = 4 sources, F = 8 features. */
#define TINY "--task", "transfer", "--n-source", "160", "--target-train", "12", "--n-test", \
             "80", "--features", "8", "--sources", "4", "--related", "2"
/* A fast run on it. */
#define FAST "--epochs", "2", "--batch", "32", "--embed", "8", "--seeds", "2", "--backend", BACKEND

/* Loads dir/name with its dtype, rank and shape checked; a owns the data. */
static void *load(const char *dir, const char *name, attn_npy_dtype t, int ndim, int64_t n0,
                  int64_t n1, attn_npy *a)
{
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_load(tsub(dir, name), a, err) == 0, "%s", err);
    ck_assert_int_eq(a->dtype, t);
    ck_assert_int_eq(a->ndim, ndim);
    ck_assert_int_eq(a->shape[0], n0);
    if (ndim == 2)
        ck_assert_int_eq(a->shape[1], n1);
    return a->data;
}

/* ---- attn data --task transfer --------------------------------------------------------------- */

START_TEST(data_is_reproducible)
{
    ck_assert_int_eq(DATA(TINY, "--out", tpath("a"), "--seed", "5"), 0);
    ck_assert_int_eq(DATA("--out", tpath("b"), TINY, "--seed", "5"), 0);
    ck_assert_int_eq(DATA(TINY, "--out", tpath("c"), "--seed", "6"), 0);
    for (int f = 0; f < 7; f++)
        ck_assert_msg(test_same_file(tsub(tpath("a"), set_files[f]),
                                     tsub(tpath("b"), set_files[f])),
                      "%s differs under the same seed", set_files[f]);
    ck_assert(!test_same_file(tsub(tpath("a"), "source_x.npy"), tsub(tpath("c"), "source_x.npy")));
    ck_assert(!test_same_file(tsub(tpath("a"), "test_x.npy"), tsub(tpath("c"), "test_x.npy")));
    /* An example depends on its split and index only: fewer examples are a prefix. */
    ck_assert_int_eq(DATA(TINY, "--out", tpath("d/e"), "--seed", "5", "--n-test", "30"), 0);
    attn_npy x, y;
    const float *big = load(tpath("a"), "test_x.npy", ATTN_NPY_F32, 2, 80, 8, &x);
    const float *small = load(tpath("d/e"), "test_x.npy", ATTN_NPY_F32, 2, 30, 8, &y);
    ck_assert(memcmp(big, small, sizeof(float) * 30 * 8) == 0);
    attn_npy_free(&x);
    attn_npy_free(&y);
    ck_assert(test_same_file(tsub(tpath("a"), "source_y.npy"), tsub(tpath("d/e"), "source_y.npy")));
}
END_TEST

/* planted.json names R distinct sources whose weights and own sum to 1. */
static void check_planted_json(const char *path, int64_t K, int64_t R, double own, int64_t *src,
                               double *w)
{
    cJSON *j = test_read_json(path);
    const cJSON *mix = cJSON_GetObjectItemCaseSensitive(j, "planted"), *e;
    ck_assert_int_eq(cJSON_GetArraySize(mix), (int)R);
    double sum = own;
    int64_t r = 0;
    cJSON_ArrayForEach(e, mix)
    {
        src[r] = (int64_t)cJSON_GetObjectItemCaseSensitive(e, "source")->valuedouble;
        w[r] = cJSON_GetObjectItemCaseSensitive(e, "weight")->valuedouble;
        ck_assert(src[r] >= 0 && src[r] < K && (r == 0 || src[r] > src[r - 1]));
        ck_assert(w[r] > 0);
        sum += w[r++];
    }
    ck_assert_double_eq_tol(sum, 1.0, 1e-12);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(j, "own")->valuedouble, own);
    cJSON_Delete(j);
}

/* The labels follow the definition recomputed from the truth and the stored features (where
 * the f32 rounding of x cannot decide them), and each attribute is neither always 0 nor 1. */
START_TEST(data_labels_follow_the_mixture)
{
    ck_assert_int_eq(DATA(TINY, "--out", tpath("p"), "--n-source", "600", "--n-test", "400",
                          "--seed", "3"), 0);
    const attn_transfer_planted p = {.features = 8, .domains = 3, .sources = 4, .related = 2,
                                     .own = 0.25, .separation = 1, .seed = 3};
    attn_transfer_truth t;
    ck_assert_int_eq(attn_transfer_truth_make(&p, &t), 0);
    int64_t src[2];
    double w[2];
    check_planted_json(tsub(tpath("p"), "planted.json"), 4, 2, 0.25, src, w);
    for (int r = 0; r < 2; r++) {
        ck_assert_int_eq(src[r], t.related[r]);
        ck_assert_double_eq_tol(w[r], t.weight[r], 1e-12);
    }
    attn_npy a[4];
    const float *sx = load(tpath("p"), "source_x.npy", ATTN_NPY_F32, 2, 600, 8, &a[0]);
    const uint8_t *sy = load(tpath("p"), "source_y.npy", ATTN_NPY_U8, 2, 600, 4, &a[1]);
    const float *ex = load(tpath("p"), "test_x.npy", ATTN_NPY_F32, 2, 400, 8, &a[2]);
    const uint8_t *ey = load(tpath("p"), "test_y.npy", ATTN_NPY_U8, 1, 400, 0, &a[3]);
    int64_t ones[5] = {0};
    for (int64_t i = 0; i < 600; i++)
        for (int64_t k = 0; k < 4; k++) {
            double z = t.bias[k];
            for (int64_t f = 0; f < 8; f++)
                z += t.dir[k * 8 + f] * sx[i * 8 + f];
            ck_assert(fabs(z) < 1e-5 || sy[i * 4 + k] == (z > 0));
            ones[k] += sy[i * 4 + k];
        }
    for (int64_t i = 0; i < 400; i++) {
        double z = t.bias[4];
        for (int64_t f = 0; f < 8; f++) {
            double a_f = t.own * t.dir[4 * 8 + f];
            for (int r = 0; r < 2; r++)
                a_f += t.weight[r] * t.dir[t.related[r] * 8 + f];
            z += a_f * ex[i * 8 + f];
        }
        for (int r = 0; r < 2; r++)
            z += t.weight[r] * t.bias[t.related[r]];
        ck_assert(fabs(z) < 1e-5 || ey[i] == (z > 0));
        ones[4] += ey[i];
    }
    for (int k = 0; k < 5; k++)
        ck_assert_msg(ones[k] > 0 && ones[k] < (k < 4 ? 600 : 400), "attribute %d: %lld ones", k,
                      (long long)ones[k]);
    for (int f = 0; f < 4; f++)
        attn_npy_free(&a[f]);
    attn_transfer_truth_free(&t);
}
END_TEST

START_TEST(data_bad_options)
{
    TEST_EXPECT_EXIT2("--out DIR is required", DATA("--task", "transfer"));
    TEST_EXPECT_EXIT2("--related", DATA(TINY, "--out", tpath("x"), "--related", "5"));
    TEST_EXPECT_EXIT2("--own", DATA(TINY, "--out", tpath("x"), "--own", "1"));
    TEST_EXPECT_EXIT2("--noise", DATA(TINY, "--out", tpath("x"), "--noise", "0.5"));
    TEST_EXPECT_EXIT2("--sources", DATA(TINY, "--out", tpath("x"), "--sources", "0"));
    TEST_EXPECT_EXIT2("--target-train", DATA(TINY, "--out", tpath("x"), "--target-train", "0"));
    TEST_EXPECT_EXIT2("unknown option", DATA(TINY, "--out", tpath("x"), "--seq", "4"));
    ck_assert(access(tpath("x"), F_OK) != 0);
    ck_assert_int_eq(DATA("--task", "transfer", "--help"), 0);
    ck_assert_int_eq(DATA("--task=transfer", "--help"), 0);
}
END_TEST

/* ---- attn transfer --------------------------------------------------------------------------- */

/* The SVG: one root element, balanced tags, a bar per source, the planted ones highlighted. */
static void check_svg(const char *path, int K, int planted)
{
    char *s = (char *)test_slurp(path, NULL);
    ck_assert_msg(strncmp(s, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0, "%.60s", s);
    ck_assert(strstr(s, "</svg>\n") == s + strlen(s) - 7);
    int open = 0, close = 0, self = 0, bars = 0, hot = 0;
    for (const char *p = s; (p = strchr(p, '<')) != NULL; p++) {
        const char *end = strchr(p, '>');
        ck_assert(end != NULL);
        if (p[1] == '/')
            close++;
        else if (end[-1] == '/')
            self++;
        else
            open++;
        bars += strncmp(p, "<rect x=", 8) == 0 && strstr(p, "height=") < end;
        hot += strncmp(p, "<rect", 5) == 0 && strstr(p, "#e07b00") != NULL &&
               strstr(p, "#e07b00") < end;
    }
    ck_assert_int_eq(open, close);
    ck_assert_int_ge(self, K);
    ck_assert_int_ge(bars, K);
    ck_assert_int_eq(hot, planted ? planted + 1 : 0); /* the planted bars and the legend's box */
    free(s);
}

/* The JSON's weights sum to 1 and its accuracies are fractions, two per mode. */
static void check_report(const char *path, int K)
{
    cJSON *j = test_read_json(path);
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(j, "weights"), "mean"),
                *acc = cJSON_GetObjectItemCaseSensitive(j, "accuracy"), *e;
    ck_assert_int_eq(cJSON_GetArraySize(mean), K);
    double sum = 0;
    cJSON_ArrayForEach(e, mean)
    {
        ck_assert(e->valuedouble >= 0 && e->valuedouble <= 1);
        sum += e->valuedouble;
    }
    ck_assert_double_eq_tol(sum, 1.0, 1e-5);
    static const char *const modes[] = {"attention", "uniform", "target-only"};
    for (int m = 0; m < 3; m++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(acc, modes[m]);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "per_seed");
        ck_assert_int_eq(cJSON_GetArraySize(v), 2);
        cJSON_ArrayForEach(e, v)
            ck_assert(e->valuedouble >= 0 && e->valuedouble <= 1);
    }
    cJSON_Delete(j);
}

/* 1 when the file at path holds the text s. */
static int file_holds(const char *path, const char *s)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 16];
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, s) != NULL;
}

START_TEST(transfer_runs_on_the_benchmark)
{
    char d[256];
    snprintf(d, sizeof d, "%s", tpath("d"));
    ck_assert_int_eq(DATA(TINY, "--out", d, "--seed", "2"), 0);
    ck_assert_msg(TRANSFER("--data", d, FAST, "--svg", tpath("w.svg"), "--json",
                           tpath("r.json")) == 0, "%s", attn_last_error());
    check_report(tpath("r.json"), 4);
    check_svg(tpath("w.svg"), 4, 2);
    /* Deterministic: the same figures again. */
    ck_assert_int_eq(TRANSFER("--data", d, FAST, "--json", tpath("r2.json")), 0);
    ck_assert(test_same_file(tpath("r.json"), tpath("r2.json")));
    /* The other readings of the model, files named one by one, no planted.json. */
    ck_assert_int_eq(
        TRANSFER("--source-x", tsub(d, "source_x.npy"), "--source-y", tsub(d, "source_y.npy"),
                 "--target-x", tsub(d, "target_x.npy"), "--target-y", tsub(d, "target_y.npy"),
                 "--test-x", tsub(d, "test_x.npy"), "--test-y", tsub(d, "test_y.npy"), FAST,
                 "--query", "example", "--score", "mlp", "--attn-hidden", "4", "--act", "tanh",
                 "--no-target-classifier", "--source-weight", "0.5", "--json", tpath("r3.json"),
                 "--svg", tpath("w3.svg")),
        0);
    check_report(tpath("r3.json"), 4);
    check_svg(tpath("w3.svg"), 4, 0);
    /* The cosine score with a learned temperature, the fixed penalty and the source-only
     * epochs; then a later --target-prior replaces the fixed penalty. */
    ck_assert_int_eq(TRANSFER("--data", d, FAST, "--score", "cosine", "--learn-temperature",
                              "--temperature", "1.5", "--source-epochs", "1", "--detach",
                              "shared", "--target-decay", "0.25", "--json", tpath("r4.json")),
                     0);
    check_report(tpath("r4.json"), 4);
    ck_assert(file_holds(tpath("r4.json"), "score=cosine") &&
              file_holds(tpath("r4.json"), "learn_temperature=1 temperature=1.5 "
                                           "target_decay=0.25") &&
              !file_holds(tpath("r4.json"), "target_prior"));
    ck_assert_int_eq(TRANSFER("--data", d, FAST, "--target-decay", "0.25", "--target-prior", "0",
                              "--json", tpath("r5.json")), 0);
    ck_assert(file_holds(tpath("r5.json"), "target_decay=0\"") &&
              file_holds(tpath("r5.json"), "\"target_prior\":\t0"));
    ck_assert_int_eq(TRANSFER("--help"), 0);
}
END_TEST

/* d's file `name` replaced by an array of dtype t and shape [n0, n1] (n1 < 0: 1-D) filled with
 * `fill`. */
static void replace(const char *d, const char *name, attn_npy_dtype t, int64_t n0, int64_t n1,
                    int fill)
{
    const int64_t shape[2] = {n0, n1 < 0 ? 1 : n1};
    const size_t count = (size_t)(shape[0] * shape[1]), esz = t == ATTN_NPY_F32 ? 4 : 1;
    unsigned char *b = calloc(count + 1, esz);
    ck_assert(b);
    for (size_t i = 0; i < count; i++)
        if (t == ATTN_NPY_F32)
            ((float *)b)[i] = (float)fill;
        else
            b[i] = (unsigned char)fill;
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_save(tsub(d, name), t, n1 < 0 ? 1 : 2, shape, b, err) == 0, "%s", err);
    free(b);
}

/* A fresh copy of the tiny benchmark in dir (its path stays in d). */
static void fresh(char *d, const char *dir)
{
    snprintf(d, 256, "%s", tpath(dir));
    ck_assert_int_eq(DATA(TINY, "--out", d), 0);
}

START_TEST(transfer_bad_input)
{
    char d[256], svg[256];
    snprintf(svg, sizeof svg, "%s", tpath("no.svg"));
    TEST_EXPECT_EXIT2("--data DIR", TRANSFER("--epochs", "1"));
    TEST_EXPECT_EXIT2("source_x.npy", TRANSFER("--data", tpath("none")));
    fresh(d, "rows");
    replace(d, "source_y.npy", ATTN_NPY_U8, 150, 4, 0);
    TEST_EXPECT_EXIT2("has 150 rows", TRANSFER("--data", d, FAST, "--svg", svg));
    fresh(d, "features");
    replace(d, "target_x.npy", ATTN_NPY_F32, 12, 7, 0);
    TEST_EXPECT_EXIT2("has 7 features", TRANSFER("--data", d, FAST, "--svg", svg));
    fresh(d, "nosources");
    replace(d, "source_y.npy", ATTN_NPY_U8, 160, 0, 0);
    TEST_EXPECT_EXIT2("no source attributes", TRANSFER("--data", d, FAST, "--svg", svg));
    fresh(d, "noexamples");
    replace(d, "source_x.npy", ATTN_NPY_F32, 0, 8, 0);
    replace(d, "source_y.npy", ATTN_NPY_U8, 0, 4, 0);
    TEST_EXPECT_EXIT2("no source examples", TRANSFER("--data", d, FAST, "--svg", svg));
    fresh(d, "labels");
    replace(d, "target_y.npy", ATTN_NPY_U8, 12, -1, 2);
    TEST_EXPECT_EXIT2("must be 0 or 1", TRANSFER("--data", d, FAST, "--svg", svg));
    replace(d, "target_y.npy", ATTN_NPY_F32, 12, -1, 1);
    TEST_EXPECT_EXIT2("expected uint8 or bool", TRANSFER("--data", d, FAST, "--svg", svg));
    replace(d, "target_y.npy", ATTN_NPY_U8, 12, 1, 1);
    TEST_EXPECT_EXIT2("2 dimensions, expected 1", TRANSFER("--data", d, FAST, "--svg", svg));
    fresh(d, "nan");
    replace(d, "test_x.npy", ATTN_NPY_F32, 80, 8, 0);
    float nan_row[8] = {0, 0, 0, NAN};
    char err[ATTN_NPY_ERRLEN];
    ck_assert(attn_npy_save(tsub(d, "test_x.npy"), ATTN_NPY_F32, 2, (int64_t[]){1, 8}, nan_row,
                            err) == 0);
    replace(d, "test_y.npy", ATTN_NPY_U8, 1, -1, 0);
    TEST_EXPECT_EXIT2("not a finite float32", TRANSFER("--data", d, FAST, "--svg", svg));
    fresh(d, "opts");
    write_file(tsub(d, "bad.json"), "{\"planted\": [{\"source\": 9, \"weight\": 1}]}", 41);
    TEST_EXPECT_EXIT2("planted.json",
                      TRANSFER("--data", d, FAST, "--planted", tsub(d, "bad.json")));
    TEST_EXPECT_EXIT2("--act", TRANSFER("--data", d, FAST, "--act", "gelu"));
    TEST_EXPECT_EXIT2("embed", TRANSFER("--data", d, FAST, "--embed", "0"));
    TEST_EXPECT_EXIT2("--seeds", TRANSFER("--data", d, FAST, "--seeds", "0"));
    TEST_EXPECT_EXIT2("--score", TRANSFER("--data", d, FAST, "--score", "cos"));
    TEST_EXPECT_EXIT2("temperature", TRANSFER("--data", d, FAST, "--score", "cosine",
                                              "--temperature", "0"));
    TEST_EXPECT_EXIT2("temperature", TRANSFER("--data", d, FAST, "--score", "cosine",
                                              "--temperature", "100"));
    TEST_EXPECT_EXIT2("target_decay", TRANSFER("--data", d, FAST, "--target-decay", "-1"));
    TEST_EXPECT_EXIT2("--target-prior", TRANSFER("--data", d, FAST, "--target-prior", "-1"));
    TEST_EXPECT_EXIT2("--source-epochs", TRANSFER("--data", d, FAST, "--source-epochs", "-1"));
    TEST_EXPECT_EXIT2("unknown option", TRANSFER("--data", d, FAST, "--frobnicate"));
    TEST_EXPECT_EXIT2("nonesuch", TRANSFER("--data", d, "--backend", "nonesuch"));
    ck_assert(access(svg, F_OK) != 0);
}
END_TEST

static Suite *transfer_tools_suite(void)
{
    Suite *s = suite_create("transfer_tools");
    TCase *t = tcase_create("data");
    tcase_add_checked_fixture(t, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(t, data_is_reproducible);
    tcase_add_test(t, data_labels_follow_the_mixture);
    tcase_add_test(t, data_bad_options);
    suite_add_tcase(s, t);
    t = tcase_create("transfer");
    tcase_add_checked_fixture(t, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(t, transfer_runs_on_the_benchmark);
    tcase_add_test(t, transfer_bad_input);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return attn_check_run(transfer_tools_suite());
}
