/* check_model_tools.c - `attn data`, `attn infer` and `attn train` driven in-process on files in
 * a temporary directory: the planted data set is reproducible from its seed and its rationale
 * marks exactly the planted tokens of the label's set; bad options and inputs exit non-zero
 * with a message; infer gives what attn_model_forward / attn_model_backward give called
 * directly (bit for bit in one batch, to rounding over several); training is deterministic
 * and learns the planted task. */
#include "attn/attn.h"
#include "attn_cmds.h"
#include "attn_npy.h"
#include "model_planted.h"
#include "test_files.h"

#include "check_run.h"
#include "check_run_files.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA(...) rf_call(attn_cmd_data, "data", __VA_ARGS__, (char *)NULL)
#define INFER(...) rf_call(attn_cmd_infer, "infer", __VA_ARGS__, (char *)NULL)
#define TRAIN(...) rf_call(attn_cmd_train, "train", __VA_ARGS__, (char *)NULL)

#ifdef ATTN_HAVE_CPU
#define BACKEND "cpu"
#else
#define BACKEND "ref"
#endif

static const char *const split_files[] = {"train_ids.npy",  "train_labels.npy",
                                          "train_mask.npy", "train_rationale.npy",
                                          "test_ids.npy",   "test_labels.npy",
                                          "test_mask.npy",  "test_rationale.npy"};

/* ---- attn data ------------------------------------------------------------------------------- */

#define SMALL_DATA "--n-train", "300", "--n-test", "100", "--seq", "24", "--min-seq", "8", \
                   "--vocab", "60", "--planted", "3", "--signals", "2"

START_TEST(data_is_reproducible)
{
    ck_assert_int_eq(DATA("--out", tpath("a"), SMALL_DATA, "--seed", "5"), 0);
    ck_assert_int_eq(DATA("--task", "planted", "--out", tpath("b"), SMALL_DATA, "--seed", "5"), 0);
    ck_assert_int_eq(DATA("--out", tpath("c"), SMALL_DATA, "--seed", "6"), 0);
    for (int f = 0; f < 8; f++)
        ck_assert_msg(test_same_file(tsub(tpath("a"), split_files[f]),
                                     tsub(tpath("b"), split_files[f])),
                      "%s differs under the same seed", split_files[f]);
    ck_assert(
        !test_same_file(tsub(tpath("a"), "train_ids.npy"), tsub(tpath("c"), "train_ids.npy")));
    ck_assert(
        !test_same_file(tsub(tpath("a"), "train_ids.npy"), tsub(tpath("a"), "test_ids.npy")));
    /* An example depends on its index only: fewer examples are a prefix. */
    ck_assert_int_eq(DATA("--out", tpath("d/e/f"), SMALL_DATA, "--seed", "5", "--n-train", "100"),
                     0);
    attn_npy x, y;
    char err[ATTN_NPY_ERRLEN];
    ck_assert(attn_npy_load(tsub(tpath("a"), "train_ids.npy"), &x, err) == 0);
    ck_assert(attn_npy_load(tsub(tpath("d/e/f"), "train_ids.npy"), &y, err) == 0);
    ck_assert_int_eq(y.shape[0], 100);
    ck_assert(memcmp(x.data, y.data, 4 * (size_t)y.count) == 0);
    attn_npy_free(&x);
    attn_npy_free(&y);
}
END_TEST

/* Loads dir/name, checks its dtype and rank-2 or rank-1 shape; returns its data (a owns it). */
static void *load_split(const char *dir, const char *name, attn_npy_dtype t, int64_t n,
                        int64_t s, attn_npy *a)
{
    const int64_t shape[2] = {n, s};
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_load(tsub(dir, name), a, err) == 0, "%s", err);
    ck_assert_int_eq(a->dtype, t);
    ck_assert_int_eq(a->ndim, s ? 2 : 1);
    for (int d = 0; d < a->ndim; d++)
        ck_assert_int_eq(a->shape[d], shape[d]);
    return a->data;
}

/* One example's row against the task's definition; returns its length. */
static int64_t check_row(const int32_t *ids, int32_t y, const uint8_t *r, const uint8_t *m,
                         int64_t S, int64_t k, int64_t sig, int64_t vocab)
{
    int64_t L = 0, planted = 0;
    while (L < S && m[L])
        L++;
    ck_assert_int_ge(L, k + 2);
    ck_assert(y == 0 || y == 1);
    ck_assert_int_eq(ids[0], ATTN_MODEL_CLS_ID);
    ck_assert_int_eq(ids[L - 1], ATTN_MODEL_SEP_ID);
    ck_assert(!r[0] && !r[L - 1]);
    for (int64_t s = L; s < S; s++)
        ck_assert(ids[s] == ATTN_MODEL_PAD_ID && !m[s] && !r[s]);
    for (int64_t s = 1; s < L - 1; s++) {
        const int64_t signal = ids[s] - ATTN_MODEL_FIRST_SIGNAL;
        if (r[s]) {
            planted++;
            ck_assert_msg(signal >= y * sig && signal < (y + 1) * sig,
                          "id %d at a planted position, label %d", ids[s], y);
        } else {
            ck_assert_msg(signal >= 2 * sig && ids[s] < vocab, "id %d at a distractor position",
                          ids[s]);
        }
    }
    ck_assert_int_eq(planted, k);
    return L;
}

START_TEST(data_rationale_marks_the_planted_tokens)
{
    ck_assert_int_eq(DATA("--out", tpath("p"), SMALL_DATA, "--n-train", "500"), 0);
    attn_npy a[4];
    const int32_t *ids = load_split(tpath("p"), "train_ids.npy", ATTN_NPY_I32, 500, 24, &a[0]);
    const int32_t *y = load_split(tpath("p"), "train_labels.npy", ATTN_NPY_I32, 500, 0, &a[1]);
    const uint8_t *r = load_split(tpath("p"), "train_rationale.npy", ATTN_NPY_U8, 500, 24, &a[2]);
    const uint8_t *m = load_split(tpath("p"), "train_mask.npy", ATTN_NPY_U8, 500, 24, &a[3]);
    int64_t shortest = 24, longest = 0, ones = 0;
    for (int64_t i = 0; i < 500; i++) {
        const int64_t L = check_row(ids + i * 24, y[i], r + i * 24, m + i * 24, 24, 3, 2, 60);
        shortest = L < shortest ? L : shortest;
        longest = L > longest ? L : longest;
        ones += y[i];
    }
    ck_assert_int_eq(shortest, 8);
    ck_assert_int_eq(longest, 24);
    ck_assert(ones > 200 && ones < 300);
    for (int f = 0; f < 4; f++)
        attn_npy_free(&a[f]);
    /* Without --min-seq every example is full length. */
    ck_assert_int_eq(DATA("--out", tpath("q"), "--n-train", "50", "--n-test", "0"), 0);
    m = load_split(tpath("q"), "train_mask.npy", ATTN_NPY_U8, 50, 32, &a[0]);
    for (int64_t i = 0; i < 50 * 32; i++)
        ck_assert(m[i] == 1);
    attn_npy_free(&a[0]);
    load_split(tpath("q"), "test_ids.npy", ATTN_NPY_I32, 0, 32, &a[0]);
    attn_npy_free(&a[0]);
}
END_TEST

START_TEST(data_bad_options)
{
    TEST_EXPECT_FAIL("--out DIR is required", DATA("--seq", "16"));
    TEST_EXPECT_FAIL("unknown value", DATA("--out", tpath("x"), "--task", "parity"));
    TEST_EXPECT_FAIL("--min-seq", DATA("--out", tpath("x"), "--min-seq", "40"));
    TEST_EXPECT_FAIL("--min-seq", DATA("--out", tpath("x"), "--planted", "5", "--min-seq", "6"));
    TEST_EXPECT_FAIL("--planted", DATA("--out", tpath("x"), "--planted", "31"));
    TEST_EXPECT_FAIL("--vocab", DATA("--out", tpath("x"), "--vocab", "11"));
    TEST_EXPECT_FAIL("--n-train", DATA("--out", tpath("x"), "--n-train", "0"));
    TEST_EXPECT_FAIL("not an integer", DATA("--out", tpath("x"), "--seq", "3x"));
    TEST_EXPECT_FAIL("unknown option", DATA("--out", tpath("x"), "--frobnicate"));
    write_file(tpath("file"), "x", 1);
    TEST_EXPECT_FAIL("cannot create directory", DATA("--out", tsub(tpath("file"), "y")));
    ck_assert_int_eq(DATA("--help"), 0);
}
END_TEST

/* ---- attn infer ------------------------------------------------------------------------------ */

enum { N = 5, S = 7, V = 50 };

static attn_model_config small_config(void)
{
    attn_model_config c = attn_model_config_default();
    c.vocab_size = V;
    c.hidden_size = 16;
    c.num_layers = 2;
    c.num_heads = 2;
    c.intermediate_size = 32;
    c.max_positions = 16;
    c.num_labels = 3;
    return c;
}

/* The inputs of the infer tests: ids, mask (the last rows padded), types; and their files. */
typedef struct infer_fixture {
    attn_backend *be;
    attn_model *m;
    int32_t ids[N * S], types[N * S], labels[N];
    uint8_t mask[N * S];
} infer_fixture;

static void fixture_make(infer_fixture *f)
{
    const attn_model_config c = small_config();
    ck_assert_int_eq(attn_backend_open(BACKEND, NULL, &f->be), ATTN_OK);
    ck_assert_msg(attn_model_create(f->be, &c, 11, &f->m) == ATTN_OK, "%s", attn_last_error());
    ck_assert_int_eq(mkdir(tpath("model"), 0700), 0);
    ck_assert_msg(attn_model_save(f->m, tpath("model")) == ATTN_OK, "%s", attn_last_error());
    int64_t ids64[N * S];
    for (int i = 0; i < N * S; i++) {
        const int row = i / S, col = i % S;
        f->ids[i] = (int32_t)((i * 37 + 11) % V);
        ids64[i] = f->ids[i];
        f->types[i] = (i / 3) % 2;
        f->mask[i] = col < S - row / 2; /* rows 2.. end in padding */
    }
    for (int i = 0; i < N; i++)
        f->labels[i] = i % 3;
    const int64_t shape[2] = {N, S};
    char err[ATTN_NPY_ERRLEN];
    ck_assert(attn_npy_save(tpath("ids.npy"), ATTN_NPY_I64, 2, shape, ids64, err) == 0);
    ck_assert(attn_npy_save(tpath("ids1.npy"), ATTN_NPY_I32, 1, &shape[1], f->ids, err) == 0);
    ck_assert(attn_npy_save(tpath("types.npy"), ATTN_NPY_I32, 2, shape, f->types, err) == 0);
    ck_assert(attn_npy_save(tpath("mask.npy"), ATTN_NPY_U8, 2, shape, f->mask, err) == 0);
    ck_assert(attn_npy_save(tpath("labels.npy"), ATTN_NPY_I32, 1, shape, f->labels, err) == 0);
}

static void fixture_free(infer_fixture *f)
{
    attn_model_free(f->m);
    attn_backend_close(f->be);
}

/* The file holds want[0 .. n) to |d| <= tol (max |want| + 1); tol 0: bit for bit. */
static void assert_file_near(const char *name, int ndim, const int64_t *shape, const float *want,
                             int64_t n, double tol)
{
    attn_npy a;
    const float *got = rf_load(name, ATTN_NPY_F32, ndim, shape, &a);
    if (tol == 0) {
        rf_assert_same_f32(got, want, n, name);
    } else {
        double top = 0;
        for (int64_t i = 0; i < n; i++)
            top = fmax(top, fabs(want[i]));
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(fabs(got[i] - want[i]) <= tol * (top + 1), "%s[%lld]: %.9g vs %.9g",
                          name, (long long)i, got[i], want[i]);
    }
    attn_npy_free(&a);
}

/* The forward called directly on all N rows: every output. */
typedef struct direct_out {
    float logits[N * 3], attn[2 * N * 2 * S * S], ks[2 * N * S * 2], hidden[3 * N * S * 16],
        resid[2 * N * S * 16], pooled[N * 16], grad[N * S * 16];
} direct_out;

static void direct_forward(infer_fixture *f, direct_out *o)
{
    const attn_model_input in = {.batch = N, .seq = S, .ids = f->ids, .attention_mask = f->mask,
                                 .token_types = f->types};
    const attn_model_outputs out = {.logits = o->logits, .attentions = o->attn,
                                    .key_score = o->ks, .hidden = o->hidden,
                                    .attn_residual = o->resid, .pooled = o->pooled};
    ck_assert_msg(attn_model_forward(f->m, &in, &out) == ATTN_OK, "%s", attn_last_error());
}

/* infer with every output, --batch b, against the direct forward (tol 0: exactly). */
static void check_outputs(infer_fixture *f, const char *batch, double tol)
{
    direct_out o;
    direct_forward(f, &o);
    ck_assert_msg(INFER("--model", tpath("model"), "--ids", tpath("ids.npy"), "--mask",
                        tpath("mask.npy"), "--types", tpath("types.npy"), "--out",
                        tpath("logits.npy"), "--attentions", tpath("attn.npy"), "--key-score",
                        tpath("ks.npy"), "--hidden", tpath("hidden.npy"), "--attn-residual",
                        tpath("resid.npy"), "--pooled", tpath("pooled.npy"), "--batch", batch,
                        "--backend", BACKEND) == 0,
                  "%s", attn_last_error());
    const int64_t logits[] = {N, 3}, attn[] = {2, N, 2, S, S}, ks[] = {2, N, S, 2},
                  hidden[] = {3, N, S, 16}, resid[] = {2, N, S, 16}, pooled[] = {N, 16};
    assert_file_near("logits.npy", 2, logits, o.logits, N * 3, tol);
    assert_file_near("attn.npy", 5, attn, o.attn, 2 * N * 2 * S * S, tol);
    assert_file_near("ks.npy", 4, ks, o.ks, 2 * N * S * 2, tol);
    assert_file_near("hidden.npy", 4, hidden, o.hidden, 3 * N * S * 16, tol);
    assert_file_near("resid.npy", 4, resid, o.resid, 2 * N * S * 16, tol);
    assert_file_near("pooled.npy", 2, pooled, o.pooled, N * 16, tol);
}

START_TEST(infer_matches_forward)
{
    infer_fixture f;
    fixture_make(&f);
    check_outputs(&f, "5", 0);
    check_outputs(&f, "64", 0);
    check_outputs(&f, "2", 1e-5); /* scattered over three batches */
    /* One sequence as a 1-D file: N = 1. */
    float want[3];
    const attn_model_input in = {.batch = 1, .seq = S, .ids = f.ids};
    const attn_model_outputs out = {.logits = want};
    ck_assert_int_eq(attn_model_forward(f.m, &in, &out), ATTN_OK);
    ck_assert_int_eq(INFER("--model", tpath("model"), "--ids", tpath("ids1.npy"), "--out",
                           tpath("one.npy"), "--backend", BACKEND), 0);
    const int64_t shape[] = {1, 3};
    assert_file_near("one.npy", 2, shape, want, 3, 0);
    fixture_free(&f);
}
END_TEST

/* The direct backward of dlogits after a forward on all rows: d_embeddings into o->grad. */
static void direct_grad(infer_fixture *f, const float *dlogits, direct_out *o)
{
    direct_forward(f, o);
    ck_assert_msg(attn_model_backward(f->m, dlogits, o->grad) == ATTN_OK, "%s",
                  attn_last_error());
}

static int infer_grad(const char *batch, const char *how, const char *value)
{
    return INFER("--model", tpath("model"), "--ids", tpath("ids.npy"), "--mask",
                 tpath("mask.npy"), "--types", tpath("types.npy"), "--out", tpath("logits.npy"),
                 "--grad-embed", tpath("grad.npy"), how, value, "--batch", batch, "--backend",
                 BACKEND);
}

START_TEST(infer_grad_matches_backward)
{
    infer_fixture f;
    fixture_make(&f);
    direct_out o;
    const int64_t shape[] = {N, S, 16};
    /* Logit 2 of every row. */
    float dl[N * 3] = {0};
    for (int i = 0; i < N; i++)
        dl[i * 3 + 2] = 1;
    direct_grad(&f, dl, &o);
    ck_assert_int_eq(infer_grad("5", "--grad-logit", "2"), 0);
    assert_file_near("grad.npy", 3, shape, o.grad, N * S * 16, 0);
    ck_assert_int_eq(infer_grad("2", "--grad-logit", "2"), 0);
    assert_file_near("grad.npy", 3, shape, o.grad, N * S * 16, 1e-5);
    /* The mean cross-entropy over the N rows. */
    double loss;
    direct_forward(&f, &o);
    ck_assert_int_eq(attn_model_loss(f.m, f.labels, &loss, dl), ATTN_OK);
    direct_grad(&f, dl, &o);
    ck_assert_int_eq(infer_grad("5", "--labels", tpath("labels.npy")), 0);
    assert_file_near("grad.npy", 3, shape, o.grad, N * S * 16, 0);
    ck_assert_int_eq(infer_grad("3", "--labels", tpath("labels.npy")), 0);
    assert_file_near("grad.npy", 3, shape, o.grad, N * S * 16, 1e-5);
    fixture_free(&f);
}
END_TEST

START_TEST(infer_bad_options)
{
    infer_fixture f;
    fixture_make(&f);
    /* Own copies: tpath's ring of buffers turns over within a test this long. */
    char model[256], ids[256], out[256];
    snprintf(model, sizeof model, "%s", tpath("model"));
    snprintf(ids, sizeof ids, "%s", tpath("ids.npy"));
    snprintf(out, sizeof out, "%s", tpath("o.npy"));
    TEST_EXPECT_FAIL("--model DIR is required", INFER("--ids", ids, "--out", out));
    TEST_EXPECT_FAIL("--out FILE is required", INFER("--model", model, "--ids", ids));
    TEST_EXPECT_FAIL("go with --grad-embed",
                     INFER("--model", model, "--ids", ids, "--out", out, "--grad-logit", "0"));
    TEST_EXPECT_FAIL("exactly one", INFER("--model", model, "--ids", ids, "--out", out,
                                          "--grad-embed", tpath("g.npy"), "--grad-logit", "0",
                                          "--labels", ids));
    TEST_EXPECT_FAIL("exactly one", INFER("--model", model, "--ids", ids, "--out", out,
                                          "--grad-embed", tpath("g.npy")));
    TEST_EXPECT_FAIL("the model has 3 labels",
                     INFER("--model", model, "--ids", ids, "--out", out, "--grad-embed",
                           tpath("g.npy"), "--grad-logit", "3"));
    const float x[S] = {0};
    const uint8_t m1[S] = {1};
    const int64_t s1 = S;
    char err[ATTN_NPY_ERRLEN];
    ck_assert(attn_npy_save(tpath("f.npy"), ATTN_NPY_F32, 1, &s1, x, err) == 0);
    ck_assert(attn_npy_save(tpath("m1.npy"), ATTN_NPY_U8, 1, &s1, m1, err) == 0);
    TEST_EXPECT_FAIL("expected int32 or int64",
                     INFER("--model", model, "--ids", tpath("f.npy"), "--out", out));
    TEST_EXPECT_FAIL("expected uint8 or bool",
                     INFER("--model", model, "--ids", ids, "--out", out, "--mask", ids));
    TEST_EXPECT_FAIL("has shape", INFER("--model", model, "--ids", ids, "--out", out, "--mask",
                                        tpath("m1.npy")));
    TEST_EXPECT_FAIL("has shape", INFER("--model", model, "--ids", tpath("ids1.npy"), "--out", out,
                                        "--grad-embed", tpath("g.npy"), "--labels",
                                        tpath("labels.npy")));
    TEST_EXPECT_FAIL("--batch",
                     INFER("--model", model, "--ids", ids, "--out", out, "--batch", "0"));
    TEST_EXPECT_FAIL("--device is an opencl option",
                     INFER("--model", model, "--ids", ids, "--out", out, "--backend", "ref",
                           "--device", "0:0"));
    TEST_EXPECT_FAIL("nonesuch",
                     INFER("--model", model, "--ids", ids, "--out", out, "--backend", "nonesuch"));
    TEST_EXPECT_FAIL("unknown option", INFER("--model", model, "--ids", ids, "--out", out, "--x"));
    TEST_EXPECT_FAIL("no-such", INFER("--model", tpath("no-such"), "--ids", ids, "--out", out));
    TEST_EXPECT_FAIL("no-such",
                     INFER("--model", model, "--ids", tpath("no-such.npy"), "--out", out));
    /* An id outside the vocabulary: the library's message, and no output file. */
    int32_t big[S] = {V};
    ck_assert(attn_npy_save(tpath("big.npy"), ATTN_NPY_I32, 1, &s1, big, err) == 0);
    TEST_EXPECT_FAIL("forward", INFER("--model", model, "--ids", tpath("big.npy"), "--out", out));
    ck_assert(access(out, F_OK) != 0);
    ck_assert_int_eq(INFER("--help"), 0);
    fixture_free(&f);
}
END_TEST

/* ---- attn train ------------------------------------------------------------------------------ */

#define TINY_MODEL "--layers", "1", "--heads", "2", "--hidden", "16", "--intermediate", "32"

START_TEST(train_is_deterministic)
{
    ck_assert_int_eq(DATA("--out", tpath("d"), "--n-train", "80", "--n-test", "20", "--seq", "12",
                          "--min-seq", "6", "--vocab", "30"), 0);
    for (int r = 0; r < 2; r++)
        ck_assert_msg(TRAIN("--data", tpath("d"), "--out", tpath(r ? "m2" : "m1"), TINY_MODEL,
                            "--epochs", "2", "--batch", "16", "--seed", "3", "--backend",
                            BACKEND) == 0,
                      "%s", attn_last_error());
    ck_assert(test_same_file(tsub(tpath("m1"), "model.safetensors"),
                        tsub(tpath("m2"), "model.safetensors")));
    ck_assert(test_same_file(tsub(tpath("m1"), "config.json"), tsub(tpath("m2"), "config.json")));
    ck_assert_int_eq(TRAIN("--data", tpath("d"), "--out", tpath("m3"), TINY_MODEL, "--epochs",
                           "1", "--seed", "4", "--backend", BACKEND), 0);
    ck_assert(!test_same_file(tsub(tpath("m1"), "model.safetensors"),
                         tsub(tpath("m3"), "model.safetensors")));
    /* Continue from a checkpoint: its sizes. */
    ck_assert_int_eq(TRAIN("--data", tpath("d"), "--out", tpath("m4/x"), "--init", tpath("m1"),
                           "--epochs", "1", "--lr", "1e-4", "--warmup", "0", "--backend",
                           BACKEND), 0);
    attn_model_config c;
    ck_assert_int_eq(attn_model_config_read(tsub(tpath("m4/x"), "config.json"), &c), ATTN_OK);
    ck_assert_int_eq(c.hidden_size, 16);
    ck_assert_int_eq(c.vocab_size, 30);
    ck_assert_int_eq(c.num_labels, 2);
}
END_TEST

START_TEST(train_bad_options)
{
    ck_assert_int_eq(DATA("--out", tpath("d"), "--n-train", "40", "--n-test", "0", "--seq", "12",
                          "--vocab", "30"), 0);
    char d[256], out[256];
    snprintf(d, sizeof d, "%s", tpath("d"));
    snprintf(out, sizeof out, "%s", tpath("m"));
    TEST_EXPECT_FAIL("--data DIR is required", TRAIN("--out", out));
    TEST_EXPECT_FAIL("--out DIR is required", TRAIN("--data", d));
    TEST_EXPECT_FAIL("--init takes",
                     TRAIN("--data", d, "--out", out, "--init", d, "--layers", "2"));
    TEST_EXPECT_FAIL("--warmup", TRAIN("--data", d, "--out", out, "--warmup", "1.5"));
    TEST_EXPECT_FAIL("--lr", TRAIN("--data", d, "--out", out, "--lr", "0"));
    TEST_EXPECT_FAIL("train_ids.npy", TRAIN("--data", tpath("none"), "--out", out));
    TEST_EXPECT_FAIL("outside the vocabulary",
                     TRAIN("--data", d, "--out", out, TINY_MODEL, "--vocab", "20"));
    TEST_EXPECT_FAIL("longer than the positions",
                     TRAIN("--data", d, "--out", out, TINY_MODEL, "--max-positions", "8"));
    TEST_EXPECT_FAIL("--device is an opencl option",
                     TRAIN("--data", d, "--out", out, "--backend", "ref", "--device", "0:0"));
    TEST_EXPECT_FAIL("heads", TRAIN("--data", d, "--out", out, "--hidden", "18", "--heads", "4"));
    TEST_EXPECT_FAIL("config.json", TRAIN("--data", d, "--out", out, "--init", tpath("none")));
    TEST_EXPECT_FAIL("unknown option", TRAIN("--data", d, "--out", out, "--x"));
    ck_assert_int_eq(TRAIN("--help"), 0);
}
END_TEST

/* The fraction of rows whose logits' argmax is the label. */
static double file_accuracy(const char *logits, const char *labels)
{
    attn_npy a, b;
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_load(logits, &a, err) == 0, "%s", err);
    ck_assert_msg(attn_npy_load(labels, &b, err) == 0, "%s", err);
    ck_assert_int_eq(a.shape[0], b.shape[0]);
    const float *z = a.data;
    const int32_t *y = b.data;
    const int64_t n = a.shape[0], C = a.shape[1];
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++)
            best = z[i * C + c] > z[i * C + best] ? c : best;
        right += best == y[i];
    }
    attn_npy_free(&a);
    attn_npy_free(&b);
    return (double)right / (double)n;
}

/* The small model (2 layers, 4 heads, d 64) learns the planted task on sequences of 32. */
START_TEST(train_learns_the_planted_task)
{
    char d[256], m[256];
    snprintf(d, sizeof d, "%s", tpath("d"));
    snprintf(m, sizeof m, "%s", tpath("m"));
    ck_assert_int_eq(DATA("--out", d, "--n-train", "1000", "--n-test", "400", "--seq", "32",
                          "--min-seq", "16", "--vocab", "200", "--seed", "7"), 0);
    ck_assert_msg(TRAIN("--data", d, "--out", m, "--layers", "2", "--heads", "4", "--hidden",
                        "64", "--epochs", "2", "--batch", "32", "--lr", "2e-3", "--seed", "1",
                        "--backend", BACKEND) == 0,
                  "%s", attn_last_error());
    ck_assert_int_eq(INFER("--model", m, "--ids", tsub(d, "test_ids.npy"), "--mask",
                           tsub(d, "test_mask.npy"), "--out", tpath("logits.npy"), "--backend",
                           BACKEND), 0);
    const double acc = file_accuracy(tpath("logits.npy"), tsub(d, "test_labels.npy"));
    ck_assert_msg(acc >= 0.95, "test accuracy %.4f", acc);
}
END_TEST

static Suite *model_tools_suite(void)
{
    Suite *s = suite_create("model_tools");
    TCase *t = tcase_create("data");
    tcase_add_checked_fixture(t, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(t, data_is_reproducible);
    tcase_add_test(t, data_rationale_marks_the_planted_tokens);
    tcase_add_test(t, data_bad_options);
    suite_add_tcase(s, t);
    t = tcase_create("infer");
    tcase_add_checked_fixture(t, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(t, infer_matches_forward);
    tcase_add_test(t, infer_grad_matches_backward);
    tcase_add_test(t, infer_bad_options);
    suite_add_tcase(s, t);
    t = tcase_create("train");
    tcase_add_checked_fixture(t, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(t, train_is_deterministic);
    tcase_add_test(t, train_bad_options);
    tcase_add_test(t, train_learns_the_planted_task);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return attn_check_run(model_tools_suite());
}
