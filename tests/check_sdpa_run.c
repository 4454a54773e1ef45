/* check_sdpa_run.c - `attn run --variant sdpa` and `attn compare` driven in-process on .npy
 * files in a temporary directory: the descriptor options, every backend against
 * attn_sdpa_forward called directly, layouts and dtypes, the f64 ground truth, Fortran-order
 * input, errors, compare's exit codes and its logit-bound condition; --key-score against
 * attn_sdpa_forward_ex and the reference's f64 key_score; the backward (--dout):
 * every backend against attn_sdpa_backward called directly, its f64 ground truth and its
 * errors. */
#include "attn/attn.h"
#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_half.h"
#include "attn_npy.h"
#include "sdpa_ref.h"
#include "sdpa_tool.h"
#include "test_files.h"

#include "check_run.h"
#include "check_run_files.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(sdpa_options)
{
    char *argv[] = {"x", "--scale", "0.5", "--causal", "--align=tl", "--window-left", "7",
                    "--window-right=-1", "--softcap", "30", "--other", "--window-left"};
    int argc = (int)(sizeof argv / sizeof argv[0]);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    int i = 1;
    ck_assert_int_eq(attn_args_sdpa(argc, argv, &i, &d), 1); /* --scale 0.5 */
    ck_assert_int_eq(i, 2);
    for (i = 3; i < 10; i++)
        ck_assert_int_eq(attn_args_sdpa(argc, argv, &i, &d), 1);
    ck_assert_float_eq(d.scale, 0.5f);
    ck_assert_int_eq(d.causal, 1);
    ck_assert_int_eq(d.align, ATTN_ALIGN_TOP_LEFT);
    ck_assert_int_eq(d.window_left, 7);
    ck_assert_int_eq(d.window_right, -1);
    ck_assert_float_eq(d.softcap, 30.0f);
    ck_assert_int_eq(attn_args_sdpa(argc, argv, &i, &d), 0); /* --other */
    i = argc - 1;
    ck_assert_int_eq(attn_args_sdpa(argc, argv, &i, &d), -1); /* missing value */
    char *bad[] = {"x", "--align", "middle", "--causal=1", "--softcap", "-1"};
    for (i = 1; i < 6; i++)
        ck_assert_int_eq(attn_args_sdpa(6, bad, &i, &d), -1);
    /* a scale that is 0 in f32 would silently mean 1/sqrt(Dk): an error at the CLI */
    const char *zero[] = {"0", "-0", "1e-50", "1e-40"}; /* 1e-40 is a subnormal f32 */
    for (int z = 0; z < 4; z++) {
        char *args[] = {"x", "--scale", (char *)zero[z]};
        i = 1;
        ck_assert_msg(attn_args_sdpa(3, args, &i, &d) == (z == 3 ? 1 : -1), "%s", zero[z]);
    }
}
END_TEST

/* ---- attn run / attn compare ---------------------------------------------------------------- */

#define RUN RF_RUN
#define COMPARE RF_COMPARE

static uint64_t rng_state = 12345;

/* Uniform in [-1, 1) on a 2^-6 grid: exact in every storage dtype (bf16 has 8 bits). */
static float urand(void)
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return (float)((int)(rng_state >> 57) - 64) / 64.0f;
}

typedef struct problem {
    int64_t B, Sq, Skv, Hq, Hkv, Dk, Dv;
    float *q, *k, *v, *mask; /* bshd f32, mask [Sq, Skv] */
    uint8_t *bmask;          /* [Sq, Skv] */
} problem;

static void problem_init(problem *p, int64_t B, int64_t Sq, int64_t Skv, int64_t Hq, int64_t Hkv,
                         int64_t Dk, int64_t Dv)
{
    *p = (problem){B, Sq, Skv, Hq, Hkv, Dk, Dv, NULL, NULL, NULL, NULL, NULL};
    p->q = malloc(sizeof(float) * (size_t)(B * Sq * Hq * Dk));
    p->k = malloc(sizeof(float) * (size_t)(B * Skv * Hkv * Dk));
    p->v = malloc(sizeof(float) * (size_t)(B * Skv * Hkv * Dv));
    p->mask = malloc(sizeof(float) * (size_t)(Sq * Skv));
    p->bmask = malloc((size_t)(Sq * Skv));
    ck_assert(p->q && p->k && p->v && p->mask && p->bmask);
    for (int64_t i = 0; i < B * Sq * Hq * Dk; i++)
        p->q[i] = urand();
    for (int64_t i = 0; i < B * Skv * Hkv * Dk; i++)
        p->k[i] = urand();
    for (int64_t i = 0; i < B * Skv * Hkv * Dv; i++)
        p->v[i] = urand();
    for (int64_t i = 0; i < Sq * Skv; i++) {
        p->mask[i] = urand() < -0.8f ? -INFINITY : urand();
        p->bmask[i] = urand() > -0.7f;
    }
}

static void problem_free(problem *p)
{
    free(p->q);
    free(p->k);
    free(p->v);
    free(p->mask);
    free(p->bmask);
}

/* q/k/v files as bshd (4-D, or 3-D when B is 1 and rank3), bhsd when bhsd. */
static void save_qkv(const problem *p, int bhsd, int rank3)
{
    const float *src[3] = {p->q, p->k, p->v};
    const int64_t S[3] = {p->Sq, p->Skv, p->Skv}, H[3] = {p->Hq, p->Hkv, p->Hkv},
                  D[3] = {p->Dk, p->Dk, p->Dv};
    static const char *const names[3] = {"q.npy", "k.npy", "v.npy"};
    for (int t = 0; t < 3; t++) {
        float *x = bhsd ? rf_to_bhsd(src[t], sizeof(float), p->B, S[t], H[t], D[t]) : NULL;
        int64_t shape[4] = {p->B, bhsd ? H[t] : S[t], bhsd ? S[t] : H[t], D[t]};
        rf_save(names[t], 4 - rank3, shape + rank3, x ? x : src[t]);
        free(x);
    }
}

/* attn_sdpa_forward on the problem directly: out bshd f32 [B,Sq,Hq,Dv], lse [B,Hq,Sq]. */
static void direct_forward(const char *backend, const problem *p, attn_sdpa_desc d, int mask,
                           int bmask, float *out, float *lse)
{
    attn_tensor q = attn_tensor_bshd(p->q, ATTN_F32, p->B, p->Sq, p->Hq, p->Dk);
    attn_tensor k = attn_tensor_bshd(p->k, ATTN_F32, p->B, p->Skv, p->Hkv, p->Dk);
    attn_tensor v = attn_tensor_bshd(p->v, ATTN_F32, p->B, p->Skv, p->Hkv, p->Dv);
    attn_tensor o = attn_tensor_bshd(out, ATTN_F32, p->B, p->Sq, p->Hq, p->Dv);
    attn_tensor l = {.data = lse, .dtype = ATTN_F32, .shape = {p->B, p->Sq, p->Hq, 1},
                     .stride = {p->Hq * p->Sq, 1, p->Sq, 1}};
    attn_tensor m = {.data = p->mask, .dtype = ATTN_F32, .shape = {1, p->Sq, 1, p->Skv},
                     .stride = {0, p->Skv, 0, 1}};
    attn_tensor bm = m;
    bm.data = p->bmask;
    bm.dtype = ATTN_U8;
    d.mask_add = mask ? &m : NULL;
    d.mask_bool = bmask ? &bm : NULL;
    attn_backend *be;
    ck_assert_int_eq(attn_backend_open(backend, NULL, &be), ATTN_OK);
    attn_status s = attn_sdpa_forward(be, &d, &q, &k, &v, &o, lse ? &l : NULL);
    ck_assert_msg(s == ATTN_OK, "forward: %s", attn_last_error());
    attn_backend_close(be);
}

/* attn run on files == attn_sdpa_forward called directly, on every backend, with desc
 * options, masks and LSE. */
static void run_matches_direct(const char *backend, int use_mask, int use_bmask)
{
    problem p;
    problem_init(&p, 2, 9, 13, 4, 2, 16, 8);
    save_qkv(&p, 0, 0);
    int64_t mshape[2] = {p.Sq, p.Skv};
    rf_save("m.npy", 2, mshape, p.mask);
    char err[ATTN_NPY_ERRLEN];
    ck_assert(attn_npy_save(tpath("b.npy"), ATTN_NPY_BOOL, 2, mshape, p.bmask, err) == 0);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.scale = 0.3f;
    d.causal = 1;
    d.align = ATTN_ALIGN_TOP_LEFT;
    d.window_left = 5;
    d.softcap = 2.5f;
    char *margs[4] = {"--align", "tl", "--align", "tl"}; /* repeats when unmasked */
    if (use_mask)
        margs[0] = "--mask", margs[1] = tpath("m.npy");
    if (use_bmask)
        margs[2] = "--bool-mask", margs[3] = tpath("b.npy");
    int rc = RUN("--variant", "sdpa", "--backend", (char *)backend, "--q", tpath("q.npy"), "--k",
                 tpath("k.npy"), "--v", tpath("v.npy"), "--out", tpath("o.npy"), "--lse",
                 tpath("l.npy"), "--scale", "0.3", "--causal", "--align", "tl", "--window-left", "5", "--softcap",
                 "2.5", margs[0], margs[1], margs[2], margs[3]);
    ck_assert_int_eq(rc, 0);
    size_t no = (size_t)(p.B * p.Sq * p.Hq * p.Dv), nl = (size_t)(p.B * p.Hq * p.Sq);
    float *out = malloc(4 * no), *lse = malloc(4 * nl);
    direct_forward(backend, &p, d, use_mask, use_bmask, out, lse);
    attn_npy fo, fl;
    int64_t oshape[4] = {p.B, p.Sq, p.Hq, p.Dv}, lshape[3] = {p.B, p.Hq, p.Sq};
    rf_assert_same_f32(rf_load("o.npy", ATTN_NPY_F32, 4, oshape, &fo), out, (int64_t)no, "out");
    rf_assert_same_f32(rf_load("l.npy", ATTN_NPY_F32, 3, lshape, &fl), lse, (int64_t)nl, "lse");
    attn_npy_free(&fo);
    attn_npy_free(&fl);
    free(out);
    free(lse);
    problem_free(&p);
}

START_TEST(run_matches_forward_all_backends)
{
    for (const char *const *b = attn_backend_list(); *b; b++) {
        if (!rf_backend_opens(*b))
            continue; /* e.g. opencl without a device */
        run_matches_direct(*b, 0, 0);
        run_matches_direct(*b, 1, 0);
        run_matches_direct(*b, 1, 1);
    }
}
END_TEST

/* Same problem through bhsd files, 3-D files, f64/f16/bf16 inputs and a 4-D mask. */
START_TEST(run_layouts_and_dtypes)
{
    problem p;
    problem_init(&p, 1, 7, 11, 4, 1, 8, 12);
    int64_t oshape[4] = {p.B, p.Sq, p.Hq, p.Dv}, mshape[4] = {1, 1, p.Sq, p.Skv};
    size_t no = (size_t)(p.B * p.Sq * p.Hq * p.Dv);
    rf_save("m.npy", 4, mshape, p.mask);
    float *want = malloc(4 * no);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    direct_forward("ref", &p, d, 1, 0, want, NULL);
    attn_npy f;
    /* bshd, 4-D mask [1,1,Sq,Skv] */
    save_qkv(&p, 0, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"),
                         "--v", tpath("v.npy"), "--mask", tpath("m.npy"), "--out",
                         tpath("o.npy")), 0);
    rf_assert_same_f32(rf_load("o.npy", ATTN_NPY_F32, 4, oshape, &f), want, (int64_t)no,
                       "bshd");
    attn_npy_free(&f);
    /* bhsd files give a bhsd output equal to the transposed bshd one */
    save_qkv(&p, 1, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--q", tpath("q.npy"), "--k",
                         tpath("k.npy"), "--v", tpath("v.npy"), "--mask", tpath("m.npy"),
                         "--out", tpath("o.npy")), 0);
    int64_t bshape[4] = {p.B, p.Hq, p.Sq, p.Dv};
    float *want_t = rf_to_bhsd(want, sizeof(float), p.B, p.Sq, p.Hq, p.Dv);
    rf_assert_same_f32(rf_load("o.npy", ATTN_NPY_F32, 4, bshape, &f), want_t, (int64_t)no,
                       "bhsd");
    attn_npy_free(&f);
    free(want_t);
    /* 3-D bshd files (B = 1 omitted) give a 3-D output */
    save_qkv(&p, 0, 1);
    ck_assert_int_eq(RUN("--variant=sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"), "--v",
                         tpath("v.npy"), "--mask", tpath("m.npy"), "--out", tpath("o.npy")), 0);
    rf_assert_same_f32(rf_load("o.npy", ATTN_NPY_F32, 3, oshape + 1, &f), want, (int64_t)no,
                       "3-D");
    attn_npy_free(&f);
    /* the same values as f64, f16 and bf16 (--bf16) files: all exact, same result */
    static const attn_npy_dtype fts[3] = {ATTN_NPY_F64, ATTN_NPY_F16, ATTN_NPY_U16};
    const float *src[3] = {p.q, p.k, p.v};
    const int64_t n[3] = {p.Sq * p.Hq * p.Dk, p.Skv * p.Hkv * p.Dk, p.Skv * p.Hkv * p.Dv};
    const int64_t shp[3][4] = {{1, p.Sq, p.Hq, p.Dk}, {1, p.Skv, p.Hkv, p.Dk},
                               {1, p.Skv, p.Hkv, p.Dv}};
    static const char *const names[3] = {"q.npy", "k.npy", "v.npy"};
    for (int t = 0; t < 3; t++) {
        for (int x = 0; x < 3; x++) {
            double *buf = malloc(8 * (size_t)n[x]);
            for (int64_t i = 0; i < n[x]; i++) {
                if (fts[t] == ATTN_NPY_F64)
                    buf[i] = src[x][i];
                else
                    ((uint16_t *)buf)[i] = fts[t] == ATTN_NPY_F16 ? attn_f32_to_f16(src[x][i])
                                                                  : attn_f32_to_bf16(src[x][i]);
            }
            char err[ATTN_NPY_ERRLEN];
            ck_assert(attn_npy_save(tpath(names[x]), fts[t], 4, shp[x], buf, err) == 0);
            free(buf);
        }
        ck_assert_int_eq(RUN("--variant", "sdpa", "--bf16", "--q", tpath("q.npy"), "--k",
                             tpath("k.npy"), "--v", tpath("v.npy"), "--mask", tpath("m.npy"),
                             "--out", tpath("o.npy")), 0);
        rf_assert_same_f32(rf_load("o.npy", ATTN_NPY_F32, 4, oshape, &f), want, (int64_t)no,
                           attn_npy_dtype_name(fts[t]));
        attn_npy_free(&f);
    }
    /* uint16 without --bf16 is refused */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"),
                         "--v", tpath("v.npy"), "--out", tpath("o.npy")), 2);
    free(want);
    problem_free(&p);
}
END_TEST

/* --out-dtype f64 writes the reference's f64 result itself; f16 output is its rounding. */
START_TEST(run_f64_ground_truth)
{
    problem p;
    problem_init(&p, 1, 5, 6, 2, 2, 8, 8);
    save_qkv(&p, 1, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--out-dtype", "f64", "--q",
                         tpath("q.npy"), "--k", tpath("k.npy"), "--v", tpath("v.npy"), "--out",
                         tpath("o.npy"), "--lse", tpath("l.npy")), 0);
    attn_tensor q = attn_tensor_bshd(p.q, ATTN_F32, p.B, p.Sq, p.Hq, p.Dk);
    attn_tensor k = attn_tensor_bshd(p.k, ATTN_F32, p.B, p.Skv, p.Hkv, p.Dk);
    attn_tensor v = attn_tensor_bshd(p.v, ATTN_F32, p.B, p.Skv, p.Hkv, p.Dv);
    float dummy[80], dl[10];
    attn_tensor o = attn_tensor_bshd(dummy, ATTN_F32, p.B, p.Sq, p.Hq, p.Dv);
    attn_tensor l = {.data = dl, .dtype = ATTN_F32, .shape = {1, p.Sq, p.Hq, 1},
                     .stride = {p.Hq * p.Sq, 1, p.Sq, 1}};
    attn_sdpa_desc d = attn_sdpa_desc_default();
    attn_sdpa_problem pr;
    ck_assert_int_eq(attn_sdpa_validate(&d, &q, &k, &v, &o, &l, &pr), ATTN_OK);
    double want[80], wl[10];
    ck_assert_int_eq(attn_ref_sdpa(&pr, ATTN_REF_F64, want, wl, NULL), ATTN_OK);
    attn_npy f, fl;
    int64_t oshape[4] = {1, p.Hq, p.Sq, p.Dv}, lshape[3] = {1, p.Hq, p.Sq};
    const double *got = rf_load("o.npy", ATTN_NPY_F64, 4, oshape, &f);
    for (int64_t s = 0; s < p.Sq; s++)
        for (int64_t h = 0; h < p.Hq; h++)
            for (int64_t e = 0; e < p.Dv; e++)
                ck_assert_double_eq(got[(h * p.Sq + s) * p.Dv + e], want[(s * p.Hq + h) * p.Dv + e]);
    const double *gl = rf_load("l.npy", ATTN_NPY_F64, 3, lshape, &fl);
    for (int i = 0; i < 10; i++)
        ck_assert_double_eq(gl[i], wl[i]);
    attn_npy_free(&f);
    attn_npy_free(&fl);
    /* f16 output: each element is the f64 result rounded once (ref rounds from double) */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--out-dtype", "f16", "--q",
                         tpath("q.npy"), "--k", tpath("k.npy"), "--v", tpath("v.npy"), "--out",
                         tpath("o16.npy")), 0);
    const uint16_t *h16 = rf_load("o16.npy", ATTN_NPY_F16, 4, oshape, &f);
    for (int64_t s = 0; s < p.Sq; s++)
        for (int64_t h = 0; h < p.Hq; h++)
            for (int64_t e = 0; e < p.Dv; e++)
                ck_assert_uint_eq(h16[(h * p.Sq + s) * p.Dv + e],
                                  attn_f64_to_f16(want[(s * p.Hq + h) * p.Dv + e]));
    attn_npy_free(&f);
    problem_free(&p);
}
END_TEST

/* A Fortran-order q (column-major, as numpy.asfortranarray saves it) is read through strides. */
START_TEST(run_fortran_order_input)
{
    problem p;
    problem_init(&p, 1, 4, 6, 2, 2, 4, 4);
    save_qkv(&p, 0, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"),
                         "--v", tpath("v.npy"), "--out", tpath("c.npy")), 0);
    float col[32]; /* q [1,4,2,4] column-major */
    for (int s = 0; s < 4; s++)
        for (int h = 0; h < 2; h++)
            for (int e = 0; e < 4; e++)
                col[s + 4 * h + 8 * e] = p.q[(s * 2 + h) * 4 + e];
    size_t len;
    unsigned char *img = make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 4, "
                                     "2, 4), }", col, sizeof col, &len);
    write_file(tpath("q.npy"), img, len);
    free(img);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"),
                         "--v", tpath("v.npy"), "--out", tpath("f.npy")), 0);
    attn_npy a, b;
    int64_t shape[4] = {1, 4, 2, 4};
    rf_assert_same_f32(rf_load("f.npy", ATTN_NPY_F32, 4, shape, &a),
                       rf_load("c.npy", ATTN_NPY_F32, 4, shape, &b), 32, "fortran");
    attn_npy_free(&a);
    attn_npy_free(&b);
    problem_free(&p);
}
END_TEST

START_TEST(run_errors)
{
    problem p;
    problem_init(&p, 1, 3, 4, 2, 2, 4, 4);
    save_qkv(&p, 0, 0);
    char *q = tpath("q.npy"), *k = tpath("k.npy"), *v = tpath("v.npy"), *o = tpath("o.npy");
    ck_assert_int_eq(RUN("--q", q), 2);                                 /* no variant */
    ck_assert_int_eq(RUN("--variant", "nope", "--q", q), 2);            /* unknown variant */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--k", k, "--v", v, "--out", o), 2); /* no q */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v), 2); /* no out */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--scale", "1x"), 2);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--bogus"), 2);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--backend", "cpu", "--out-dtype", "f64"), 2);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--backend", "nosuch"), 2);
    /* k with another head dim: the library's shape message */
    int64_t kshape[4] = {1, 4, 2, 5};
    float kk[40] = {0};
    rf_save("k5.npy", 4, kshape, kk);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", tpath("k5.npy"), "--v", v,
                         "--out", o), 2);
    /* a 2-D q and a malformed q */
    rf_save("q2.npy", 2, kshape, kk);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q2.npy"), "--k", k, "--v", v,
                         "--out", o), 2);
    write_file(tpath("bad.npy"), "\x93NUMPY\x01\x00\x05\x00{'des", 15);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("bad.npy"), "--k", k, "--v", v,
                         "--out", o), 2);
    /* a float file as a boolean mask */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--bool-mask", q), 2);
    ck_assert(access(o, F_OK) != 0); /* nothing written on error */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--help"), 0);
    problem_free(&p);
}
END_TEST

/* ---- key_score (--key-score) ---------------------------------------------------------------- */

/* attn_sdpa_forward_ex with key_score [B, Skv, Hkv, 1] (contiguous) on the problem directly. */
static attn_status direct_key_score(const char *backend, const problem *p,
                                    const attn_sdpa_desc *d, float *ks)
{
    attn_tensor q = attn_tensor_bshd(p->q, ATTN_F32, p->B, p->Sq, p->Hq, p->Dk);
    attn_tensor k = attn_tensor_bshd(p->k, ATTN_F32, p->B, p->Skv, p->Hkv, p->Dk);
    attn_tensor v = attn_tensor_bshd(p->v, ATTN_F32, p->B, p->Skv, p->Hkv, p->Dv);
    float *out = malloc(sizeof(float) * (size_t)(p->B * p->Sq * p->Hq * p->Dv));
    ck_assert(out);
    attn_tensor o = attn_tensor_bshd(out, ATTN_F32, p->B, p->Sq, p->Hq, p->Dv);
    attn_tensor t = attn_tensor_bshd(ks, ATTN_F32, p->B, p->Skv, p->Hkv, 1);
    const attn_sdpa_outputs outs = {.out = &o, .key_score = &t};
    attn_backend *be;
    ck_assert_int_eq(attn_backend_open(backend, NULL, &be), ATTN_OK);
    const attn_status s = attn_sdpa_forward_ex(be, d, &q, &k, &v, &outs);
    attn_backend_close(be);
    free(out);
    return s;
}

/* --key-score writes attn_sdpa_forward_ex's key_score as [B, Skv, Hkv] ([B, Hkv, Skv] with
 * --layout bhsd) on every backend that computes it (one that does not yet exits 1 and writes
 * no file), and the reference's f64 values with --out-dtype f64. */
START_TEST(run_key_score)
{
    problem p;
    problem_init(&p, 2, 6, 11, 4, 2, 8, 8);
    save_qkv(&p, 0, 0);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    const int64_t nk = p.B * p.Skv * p.Hkv, kshape[3] = {p.B, p.Skv, p.Hkv};
    const int64_t tshape[3] = {p.B, p.Hkv, p.Skv};
    float *want = malloc(sizeof(float) * (size_t)nk), *ref = malloc(sizeof(float) * (size_t)nk);
    ck_assert(want && ref);
    char *q = tpath("q.npy"), *k = tpath("k.npy"), *v = tpath("v.npy"), *o = tpath("o.npy");
    char *ks = tpath("ks.npy");
    ck_assert_int_eq(direct_key_score("ref", &p, &d, ref), ATTN_OK);
    for (const char *const *b = attn_backend_list(); *b; b++) {
        if (!rf_backend_opens(*b))
            continue;
        const attn_status st = direct_key_score(*b, &p, &d, want);
        unlink(ks);
        const int rc = RUN("--variant", "sdpa", "--backend", (char *)*b, "--q", q, "--k", k,
                           "--v", v, "--causal", "--out", o, "--key-score", ks);
        if (st == ATTN_ERR_UNSUPPORTED) { /* not implemented on this backend yet */
            ck_assert_int_eq(rc, 1);
            ck_assert(access(ks, F_OK) != 0);
            continue;
        }
        ck_assert_msg(st == ATTN_OK, "%s: %s", *b, attn_last_error());
        ck_assert_int_eq(rc, 0);
        rf_assert_file_f32("ks.npy", 3, kshape, want, nk);
    }
    /* bhsd files: the transposed key_score */
    save_qkv(&p, 1, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--q", q, "--k", k, "--v", v,
                         "--causal", "--out", o, "--key-score", ks), 0);
    float *ref_t = rf_to_bhsd(ref, sizeof(float), p.B, p.Skv, p.Hkv, 1);
    rf_assert_file_f32("ks.npy", 3, tshape, ref_t, nk);
    free(ref_t);
    /* --out-dtype f64: the reference's key_score itself */
    save_qkv(&p, 0, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--out-dtype", "f64", "--q", q, "--k", k, "--v", v,
                         "--causal", "--out", o, "--key-score", ks), 0);
    attn_tensor tq = attn_tensor_bshd(p.q, ATTN_F32, p.B, p.Sq, p.Hq, p.Dk);
    attn_tensor tk = attn_tensor_bshd(p.k, ATTN_F32, p.B, p.Skv, p.Hkv, p.Dk);
    attn_tensor tv = attn_tensor_bshd(p.v, ATTN_F32, p.B, p.Skv, p.Hkv, p.Dv);
    float dummy[2 * 6 * 4 * 8];
    attn_tensor to = attn_tensor_bshd(dummy, ATTN_F32, p.B, p.Sq, p.Hq, p.Dv);
    attn_sdpa_problem pr;
    ck_assert_int_eq(attn_sdpa_validate(&d, &tq, &tk, &tv, &to, NULL, &pr), ATTN_OK);
    double *w64 = malloc(sizeof(double) * (size_t)nk);
    ck_assert(w64);
    ck_assert_int_eq(attn_ref_sdpa_key_score(&pr, ATTN_REF_F64, NULL, w64), ATTN_OK);
    rf_assert_file_f64("ks.npy", 3, kshape, w64, nk);
    free(w64);
    free(want);
    free(ref);
    problem_free(&p);
}
END_TEST

/* ---- the backward (--dout) ------------------------------------------------------------------ */

/* dO [B, Sq, Hq, Dv] on the same grid as the inputs. */
static float *make_dout(const problem *p)
{
    const int64_t n = p->B * p->Sq * p->Hq * p->Dv;
    float *x = malloc(sizeof(float) * (size_t)n);
    ck_assert(x);
    for (int64_t i = 0; i < n; i++)
        x[i] = urand();
    return x;
}

/* The forward then the backward on the problem directly (bshd f32, the [Sq, Skv] mask): the
 * gradients into dq, dk, dv and dm (the mask's, or NULL). */
static void direct_backward(const char *backend, const problem *p, const attn_sdpa_desc *d0,
                            const float *dout, float *dq, float *dk, float *dv, float *dm)
{
    attn_tensor q = attn_tensor_bshd(p->q, ATTN_F32, p->B, p->Sq, p->Hq, p->Dk);
    attn_tensor k = attn_tensor_bshd(p->k, ATTN_F32, p->B, p->Skv, p->Hkv, p->Dk);
    attn_tensor v = attn_tensor_bshd(p->v, ATTN_F32, p->B, p->Skv, p->Hkv, p->Dv);
    const int64_t no = p->B * p->Sq * p->Hq * p->Dv, nl = p->B * p->Hq * p->Sq;
    float *out = malloc(sizeof(float) * (size_t)no), *lse = malloc(sizeof(float) * (size_t)nl);
    ck_assert(out && lse);
    attn_tensor o = attn_tensor_bshd(out, ATTN_F32, p->B, p->Sq, p->Hq, p->Dv);
    attn_tensor l = {.data = lse, .dtype = ATTN_F32, .shape = {p->B, p->Sq, p->Hq, 1},
                     .stride = {p->Hq * p->Sq, 1, p->Sq, 1}};
    attn_tensor dot = attn_tensor_bshd((void *)dout, ATTN_F32, p->B, p->Sq, p->Hq, p->Dv);
    attn_tensor gq = attn_tensor_bshd(dq, ATTN_F32, p->B, p->Sq, p->Hq, p->Dk);
    attn_tensor gk = attn_tensor_bshd(dk, ATTN_F32, p->B, p->Skv, p->Hkv, p->Dk);
    attn_tensor gv = attn_tensor_bshd(dv, ATTN_F32, p->B, p->Skv, p->Hkv, p->Dv);
    attn_tensor m = {.data = p->mask, .dtype = ATTN_F32, .shape = {1, p->Sq, 1, p->Skv},
                     .stride = {0, p->Skv, 0, 1}};
    attn_tensor gm = m;
    gm.data = dm;
    attn_sdpa_desc d = *d0;
    d.mask_add = dm ? &m : NULL;
    const attn_sdpa_grads g = {.dq = &gq, .dk = &gk, .dv = &gv, .dmask_add = dm ? &gm : NULL};
    attn_backend *be;
    ck_assert_int_eq(attn_backend_open(backend, NULL, &be), ATTN_OK);
    ck_assert_msg(attn_sdpa_forward(be, &d, &q, &k, &v, &o, &l) == ATTN_OK, "%s",
                  attn_last_error());
    ck_assert_msg(attn_sdpa_backward(be, &d, &q, &k, &v, &o, &l, &dot, &g) == ATTN_OK, "%s",
                  attn_last_error());
    attn_backend_close(be);
    free(out);
    free(lse);
}

/* attn run --dout on every backend == forward + backward called directly (GQA, causal, an
 * additive mask and its gradient, a soft-cap). A backend without the backward is skipped. */
START_TEST(run_backward_matches_direct)
{
    problem p;
    problem_init(&p, 2, 9, 13, 4, 2, 16, 8);
    save_qkv(&p, 0, 0);
    const int64_t mshape[2] = {p.Sq, p.Skv}, oshape[4] = {p.B, p.Sq, p.Hq, p.Dv};
    rf_save("m.npy", 2, mshape, p.mask);
    float *dout = make_dout(&p);
    rf_save("do.npy", 4, oshape, dout);
    const int64_t nq = p.B * p.Sq * p.Hq * p.Dk, nk = p.B * p.Skv * p.Hkv * p.Dk,
                  nv = p.B * p.Skv * p.Hkv * p.Dv, nm = p.Sq * p.Skv;
    float *dq = malloc(4 * (size_t)nq), *dk = malloc(4 * (size_t)nk), *dv = malloc(4 * (size_t)nv),
          *dm = malloc(4 * (size_t)nm);
    ck_assert(dq && dk && dv && dm);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    d.align = ATTN_ALIGN_TOP_LEFT;
    d.softcap = 2.5f;
    for (const char *const *b = attn_backend_list(); *b; b++) {
        if (!rf_backend_opens(*b))
            continue; /* e.g. opencl without a device */
        int rc = RUN("--variant", "sdpa", "--backend", (char *)*b, "--q", tpath("q.npy"), "--k",
                     tpath("k.npy"), "--v", tpath("v.npy"), "--mask", tpath("m.npy"), "--causal",
                     "--align", "tl", "--softcap", "2.5", "--out", tpath("o.npy"), "--dout",
                     tpath("do.npy"), "--dq", tpath("dq.npy"), "--dk", tpath("dk.npy"), "--dv",
                     tpath("dv.npy"), "--dmask-add", tpath("dm.npy"));
        if (!rf_ran_backward(*b, rc))
            continue;
        direct_backward(*b, &p, &d, dout, dq, dk, dv, dm);
        const int64_t qs[4] = {p.B, p.Sq, p.Hq, p.Dk}, ks[4] = {p.B, p.Skv, p.Hkv, p.Dk},
                      vs[4] = {p.B, p.Skv, p.Hkv, p.Dv};
        rf_assert_file_f32("dq.npy", 4, qs, dq, nq);
        rf_assert_file_f32("dk.npy", 4, ks, dk, nk);
        rf_assert_file_f32("dv.npy", 4, vs, dv, nv);
        rf_assert_file_f32("dm.npy", 2, mshape, dm, nm);
    }
    free(dq);
    free(dk);
    free(dv);
    free(dm);
    free(dout);
    problem_free(&p);
}
END_TEST

/* --backend ref --out-dtype f64: the reference's f64 gradients exactly, in bhsd files; with
 * f32 output and --grad-dtype bf16 each gradient is that value rounded once. */
START_TEST(run_backward_f64_ground_truth)
{
    problem p;
    problem_init(&p, 1, 5, 7, 4, 2, 8, 4);
    save_qkv(&p, 1, 0);
    float *dout = make_dout(&p), *dob = rf_to_bhsd(dout, sizeof(float), p.B, p.Sq, p.Hq, p.Dv);
    const int64_t obhsd[4] = {p.B, p.Hq, p.Sq, p.Dv};
    rf_save("do.npy", 4, obhsd, dob);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--out-dtype", "f64", "--q",
                         tpath("q.npy"), "--k", tpath("k.npy"), "--v", tpath("v.npy"), "--out",
                         tpath("o.npy"), "--dout", tpath("do.npy"), "--dq", tpath("dq.npy"),
                         "--dk", tpath("dk.npy"), "--dv", tpath("dv.npy")), 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--grad-dtype", "bf16", "--q",
                         tpath("q.npy"), "--k", tpath("k.npy"), "--v", tpath("v.npy"), "--out",
                         tpath("o32.npy"), "--dout", tpath("do.npy"), "--dq", tpath("dq16.npy"),
                         "--dk", tpath("dk16.npy"), "--dv", tpath("dv16.npy")), 0);
    /* the reference on the same problem (bshd views, dense [B][S][H][D] doubles) */
    float of[4 * 5 * 4], lf[20], gq[160], gk[112], gv[56];
    attn_tensor q = attn_tensor_bshd(p.q, ATTN_F32, 1, 5, 4, 8);
    attn_tensor k = attn_tensor_bshd(p.k, ATTN_F32, 1, 7, 2, 8);
    attn_tensor v = attn_tensor_bshd(p.v, ATTN_F32, 1, 7, 2, 4);
    attn_tensor o = attn_tensor_bshd(of, ATTN_F32, 1, 5, 4, 4);
    attn_tensor l = {.data = lf, .dtype = ATTN_F32, .shape = {1, 5, 4, 1}, .stride = {20, 1, 5, 1}};
    attn_tensor dot = attn_tensor_bshd(dout, ATTN_F32, 1, 5, 4, 4);
    attn_tensor tq = attn_tensor_bshd(gq, ATTN_F32, 1, 5, 4, 8);
    attn_tensor tk = attn_tensor_bshd(gk, ATTN_F32, 1, 7, 2, 8);
    attn_tensor tv = attn_tensor_bshd(gv, ATTN_F32, 1, 7, 2, 4);
    const attn_sdpa_grads g = {.dq = &tq, .dk = &tk, .dv = &tv};
    attn_sdpa_desc d = attn_sdpa_desc_default();
    attn_sdpa_problem pr;
    ck_assert_int_eq(attn_sdpa_validate_backward(&d, &q, &k, &v, &o, &l, &dot, &g, &pr), ATTN_OK);
    double wq[160], wk[112], wv[56];
    const attn_ref_sdpa_grads want = {wq, wk, wv, NULL, NULL, NULL, NULL, NULL};
    ck_assert_int_eq(attn_ref_sdpa_backward(&pr, ATTN_REF_F64, &want), ATTN_OK);
    static const char *const f64[3] = {"dq.npy", "dk.npy", "dv.npy"};
    static const char *const b16[3] = {"dq16.npy", "dk16.npy", "dv16.npy"};
    const double *w[3] = {wq, wk, wv};
    const int64_t S[3] = {5, 7, 7}, H[3] = {4, 2, 2}, D[3] = {8, 8, 4};
    for (int t = 0; t < 3; t++) {
        attn_npy a, b;
        const int64_t shape[4] = {1, H[t], S[t], D[t]};
        const double *got = rf_load(f64[t], ATTN_NPY_F64, 4, shape, &a);
        const uint16_t *h = rf_load(b16[t], ATTN_NPY_U16, 4, shape, &b);
        for (int64_t s = 0; s < S[t]; s++)
            for (int64_t hh = 0; hh < H[t]; hh++)
                for (int64_t e = 0; e < D[t]; e++) {
                    const double x = w[t][(s * H[t] + hh) * D[t] + e];
                    ck_assert_double_eq(got[(hh * S[t] + s) * D[t] + e], x);
                    ck_assert_uint_eq(h[(hh * S[t] + s) * D[t] + e], attn_f64_to_bf16(x));
                }
        attn_npy_free(&a);
        attn_npy_free(&b);
    }
    free(dout);
    free(dob);
    problem_free(&p);
}
END_TEST

START_TEST(run_backward_errors)
{
    problem p;
    problem_init(&p, 1, 3, 4, 2, 2, 4, 4);
    save_qkv(&p, 0, 0);
    float *dout = make_dout(&p);
    const int64_t oshape[4] = {1, 3, 2, 4}, bad[4] = {1, 3, 2, 5};
    rf_save("do.npy", 4, oshape, dout);
    float *dout5 = calloc(1 * 3 * 2 * 5, sizeof(float)); /* dout's values would be too few */
    ck_assert(dout5);
    rf_save("do5.npy", 4, bad, dout5);
    free(dout5);
    char *q = tpath("q.npy"), *k = tpath("k.npy"), *v = tpath("v.npy"), *o = tpath("o.npy");
    char *dq = tpath("dq.npy"), *dk = tpath("dk.npy"), *dv = tpath("dv.npy");
    char *d = tpath("do.npy");
    /* gradients without --dout, --dout without every gradient, --dmask-add without a mask */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o, "--dq",
                         dq, "--dk", dk, "--dv", dv), 2);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--dout", d, "--dq", dq, "--dk", dk), 2);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--dout", d, "--dq", dq, "--dk", dk, "--dv", dv, "--dmask-add",
                         tpath("dm.npy")), 2);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--dout", d, "--dq", dq, "--dk", dk, "--dv", dv, "--grad-dtype", "f8"),
                     2);
    /* dout of another shape: the library's message, nothing written */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out", o,
                         "--dout", tpath("do5.npy"), "--dq", dq, "--dk", dk, "--dv", dv), 2);
    ck_assert(access(o, F_OK) != 0);
    ck_assert(access(dq, F_OK) != 0);
    free(dout);
    problem_free(&p);
}
END_TEST

START_TEST(compare_exit_codes)
{
    problem p;
    problem_init(&p, 1, 16, 16, 2, 2, 16, 16);
    save_qkv(&p, 0, 0);
    char *q = tpath("q.npy"), *k = tpath("k.npy"), *v = tpath("v.npy");
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out",
                         tpath("gold.npy"), "--out-dtype", "f64"), 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out",
                         tpath("o32.npy")), 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--out",
                         tpath("o16.npy"), "--out-dtype", "f16"), 0);
    ck_assert_int_eq(COMPARE(tpath("o32.npy"), tpath("o32.npy")), 0);
    ck_assert_int_eq(COMPARE(tpath("o32.npy"), tpath("gold.npy"), "--n-acc", "32"), 0);
    ck_assert_int_eq(COMPARE(tpath("o16.npy"), tpath("gold.npy"), "--worst", "3"), 0);
    /* a perturbed element fails */
    attn_npy a;
    char err[ATTN_NPY_ERRLEN];
    ck_assert(attn_npy_load(tpath("o32.npy"), &a, err) == 0);
    ((float *)a.data)[77] += 1e-3f;
    ck_assert(attn_npy_save(tpath("bad.npy"), a.dtype, a.ndim, a.shape, a.data, err) == 0);
    ck_assert_int_eq(COMPARE(tpath("bad.npy"), tpath("gold.npy")), 1);
    ((float *)a.data)[77] = NAN;
    ck_assert(attn_npy_save(tpath("nan.npy"), a.dtype, a.ndim, a.shape, a.data, err) == 0);
    ck_assert_int_eq(COMPARE(tpath("nan.npy"), tpath("gold.npy")), 1);
    /* all zeros against all zeros proves nothing: not a pass */
    memset(a.data, 0, (size_t)a.count * 4);
    ck_assert(attn_npy_save(tpath("z.npy"), a.dtype, a.ndim, a.shape, a.data, err) == 0);
    ck_assert_int_eq(COMPARE(tpath("z.npy"), tpath("z.npy")), 1);
    /* shape mismatch, missing file, usage */
    int64_t shape[4] = {1, 16, 2, 15};
    ck_assert(attn_npy_save(tpath("s.npy"), a.dtype, 4, shape, a.data, err) == 0);
    ck_assert_int_eq(COMPARE(tpath("s.npy"), tpath("gold.npy")), 2);
    ck_assert_int_eq(COMPARE(tpath("none.npy"), tpath("gold.npy")), 2);
    ck_assert_int_eq(COMPARE(tpath("o32.npy")), 2);
    ck_assert_int_eq(COMPARE(tpath("o32.npy"), tpath("gold.npy"), "--worst", "-1"), 2);
    attn_npy_free(&a);
    problem_free(&p);
}
END_TEST

/* Large logits (|s| ~ 400): an f32 kernel's correct result fails the norm-wise bound unless the
 * logit magnitude A enters the condition (max|ref| (1 + A)), from --q/--k or --logit-bound. */
START_TEST(compare_large_logits)
{
#ifdef ATTN_HAVE_CPU
    problem p;
    problem_init(&p, 2, 32, 94, 1, 1, 256, 256);
    /* uniform values with full mantissas (coarse ones would add up exactly), q scaled by 3 */
    for (int64_t i = 0; i < p.B * p.Sq * p.Hq * p.Dk; i++)
        p.q[i] = 3.0f * (urand() + (urand() + 1.0f) / 64.0f);
    for (int64_t i = 0; i < p.B * p.Skv * p.Hkv * p.Dk; i++)
        p.k[i] = urand() + (urand() + 1.0f) / 64.0f;
    save_qkv(&p, 0, 0);
    char *q = tpath("q.npy"), *k = tpath("k.npy"), *v = tpath("v.npy");
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--scale", "1.3688",
                         "--out", tpath("gold.npy"), "--out-dtype", "f64"), 0);
    /* the tiled path: its BLIS tiles carry the logit error this case is about */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", k, "--v", v, "--scale", "1.3688",
                         "--backend", "cpu", "--options", "path=tiled", "--out",
                         tpath("cpu.npy")), 0);
    ck_assert_int_eq(COMPARE(tpath("cpu.npy"), tpath("gold.npy")), 1); /* A = 0 */
    ck_assert_int_eq(COMPARE(tpath("cpu.npy"), tpath("gold.npy"), "--q", q, "--k", k,
                             "--scale", "1.3688"), 0);
    ck_assert_int_eq(COMPARE(tpath("cpu.npy"), tpath("gold.npy"), "--logit-bound", "400"), 0);
    ck_assert_int_eq(COMPARE(tpath("cpu.npy"), tpath("gold.npy"), "--q", q), 2);
    ck_assert_int_eq(COMPARE(tpath("cpu.npy"), tpath("gold.npy"), "--q", q, "--k", k,
                             "--logit-bound", "3"), 2);
    problem_free(&p);
#else
    fprintf(stderr, "compare_large_logits: skipped (no cpu backend in this build)\n");
#endif
}
END_TEST

static Suite *run_suite(void)
{
    Suite *s = suite_create("sdpa_run");
    TCase *a = tcase_create("args");
    tcase_add_test(a, sdpa_options);
    suite_add_tcase(s, a);
    TCase *r = tcase_create("run");
    tcase_add_checked_fixture(r, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(r, run_matches_forward_all_backends);
    tcase_add_test(r, run_layouts_and_dtypes);
    tcase_add_test(r, run_f64_ground_truth);
    tcase_add_test(r, run_fortran_order_input);
    tcase_add_test(r, run_errors);
    tcase_add_test(r, run_key_score);
    tcase_add_test(r, compare_exit_codes);
    tcase_add_test(r, compare_large_logits);
    tcase_add_test(r, run_backward_matches_direct);
    tcase_add_test(r, run_backward_f64_ground_truth);
    tcase_add_test(r, run_backward_errors);
    suite_add_tcase(s, r);
    return s;
}

int main(void)
{
    return attn_check_run(run_suite());
}
