/* check_sdpa_run.c - `attn run --variant sdpa` and `attn compare` driven in-process on .npy
 * files in a temporary directory: the descriptor options, every backend against
 * attn_sdpa_forward called directly, layouts and dtypes, the f64 ground truth, Fortran-order
 * input, errors, compare's exit codes and its logit-bound condition. */
#include "attn/attn.h"
#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_half.h"
#include "attn_npy.h"
#include "sdpa_ref.h"
#include "sdpa_tool.h"
#include "test_files.h"

#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdarg.h>
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

static int call(int (*cmd)(int, char **), ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, cmd);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        ck_assert_int_lt(argc, 63);
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    return cmd(argc, argv);
}
#define RUN(...) call(attn_cmd_run, "run", __VA_ARGS__, (char *)NULL)
#define COMPARE(...) call(attn_cmd_compare, "compare", __VA_ARGS__, (char *)NULL)

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

/* [B, S, H, D] f32 -> [B, H, S, D] */
static float *to_bhsd(const float *x, int64_t B, int64_t S, int64_t H, int64_t D)
{
    float *y = malloc(sizeof(float) * (size_t)(B * S * H * D));
    ck_assert(y);
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t h = 0; h < H; h++)
                memcpy(y + ((b * H + h) * S + s) * D, x + ((b * S + s) * H + h) * D,
                       sizeof(float) * (size_t)D);
    return y;
}

static void save_f32(const char *name, int ndim, const int64_t *shape, const float *x)
{
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_save(tpath(name), ATTN_NPY_F32, ndim, shape, x, err) == 0, "%s", err);
}

/* q/k/v files as bshd (4-D, or 3-D when B is 1 and rank3), bhsd when bhsd. */
static void save_qkv(const problem *p, int bhsd, int rank3)
{
    const float *src[3] = {p->q, p->k, p->v};
    const int64_t S[3] = {p->Sq, p->Skv, p->Skv}, H[3] = {p->Hq, p->Hkv, p->Hkv},
                  D[3] = {p->Dk, p->Dk, p->Dv};
    static const char *const names[3] = {"q.npy", "k.npy", "v.npy"};
    for (int t = 0; t < 3; t++) {
        float *x = bhsd ? to_bhsd(src[t], p->B, S[t], H[t], D[t]) : NULL;
        int64_t shape[4] = {p->B, bhsd ? H[t] : S[t], bhsd ? S[t] : H[t], D[t]};
        save_f32(names[t], 4 - rank3, shape + rank3, x ? x : src[t]);
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

/* Load a file and check dtype and shape; returns its data (caller frees a). */
static void *load_checked(const char *name, attn_npy_dtype t, int ndim, const int64_t *shape,
                          attn_npy *a)
{
    char err[ATTN_NPY_ERRLEN];
    ck_assert_msg(attn_npy_load(tpath(name), a, err) == 0, "%s", err);
    ck_assert_int_eq(a->dtype, t);
    ck_assert_int_eq(a->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_int_eq(a->shape[d], shape[d]);
    return a->data;
}

static void assert_same_f32(const float *a, const float *b, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], 4) == 0, "%s[%lld]: %.9g vs %.9g", what,
                      (long long)i, a[i], b[i]);
}

/* attn run on files == attn_sdpa_forward called directly, on every backend, with desc
 * options, masks and LSE. */
static void run_matches_direct(const char *backend, int use_mask, int use_bmask)
{
    problem p;
    problem_init(&p, 2, 9, 13, 4, 2, 16, 8);
    save_qkv(&p, 0, 0);
    int64_t mshape[2] = {p.Sq, p.Skv};
    save_f32("m.npy", 2, mshape, p.mask);
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
    assert_same_f32(load_checked("o.npy", ATTN_NPY_F32, 4, oshape, &fo), out, (int64_t)no, "out");
    assert_same_f32(load_checked("l.npy", ATTN_NPY_F32, 3, lshape, &fl), lse, (int64_t)nl, "lse");
    attn_npy_free(&fo);
    attn_npy_free(&fl);
    free(out);
    free(lse);
    problem_free(&p);
}

START_TEST(run_matches_forward_all_backends)
{
    for (const char *const *b = attn_backend_list(); *b; b++) {
        attn_backend *be;
        if (attn_backend_open(*b, NULL, &be) != ATTN_OK)
            continue; /* e.g. opencl without a device */
        attn_backend_close(be);
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
    save_f32("m.npy", 4, mshape, p.mask);
    float *want = malloc(4 * no);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    direct_forward("ref", &p, d, 1, 0, want, NULL);
    attn_npy f;
    /* bshd, 4-D mask [1,1,Sq,Skv] */
    save_qkv(&p, 0, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"),
                         "--v", tpath("v.npy"), "--mask", tpath("m.npy"), "--out",
                         tpath("o.npy")), 0);
    assert_same_f32(load_checked("o.npy", ATTN_NPY_F32, 4, oshape, &f), want, (int64_t)no,
                    "bshd");
    attn_npy_free(&f);
    /* bhsd files give a bhsd output equal to the transposed bshd one */
    save_qkv(&p, 1, 0);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--q", tpath("q.npy"), "--k",
                         tpath("k.npy"), "--v", tpath("v.npy"), "--mask", tpath("m.npy"),
                         "--out", tpath("o.npy")), 0);
    int64_t bshape[4] = {p.B, p.Hq, p.Sq, p.Dv};
    float *want_t = to_bhsd(want, p.B, p.Sq, p.Hq, p.Dv);
    assert_same_f32(load_checked("o.npy", ATTN_NPY_F32, 4, bshape, &f), want_t, (int64_t)no,
                    "bhsd");
    attn_npy_free(&f);
    free(want_t);
    /* 3-D bshd files (B = 1 omitted) give a 3-D output */
    save_qkv(&p, 0, 1);
    ck_assert_int_eq(RUN("--variant=sdpa", "--q", tpath("q.npy"), "--k", tpath("k.npy"), "--v",
                         tpath("v.npy"), "--mask", tpath("m.npy"), "--out", tpath("o.npy")), 0);
    assert_same_f32(load_checked("o.npy", ATTN_NPY_F32, 3, oshape + 1, &f), want, (int64_t)no,
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
        assert_same_f32(load_checked("o.npy", ATTN_NPY_F32, 4, oshape, &f), want, (int64_t)no,
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
    const double *got = load_checked("o.npy", ATTN_NPY_F64, 4, oshape, &f);
    for (int64_t s = 0; s < p.Sq; s++)
        for (int64_t h = 0; h < p.Hq; h++)
            for (int64_t e = 0; e < p.Dv; e++)
                ck_assert_double_eq(got[(h * p.Sq + s) * p.Dv + e], want[(s * p.Hq + h) * p.Dv + e]);
    const double *gl = load_checked("l.npy", ATTN_NPY_F64, 3, lshape, &fl);
    for (int i = 0; i < 10; i++)
        ck_assert_double_eq(gl[i], wl[i]);
    attn_npy_free(&f);
    attn_npy_free(&fl);
    /* f16 output: each element is the f64 result rounded once (ref rounds from double) */
    ck_assert_int_eq(RUN("--variant", "sdpa", "--layout", "bhsd", "--out-dtype", "f16", "--q",
                         tpath("q.npy"), "--k", tpath("k.npy"), "--v", tpath("v.npy"), "--out",
                         tpath("o16.npy")), 0);
    const uint16_t *h16 = load_checked("o16.npy", ATTN_NPY_F16, 4, oshape, &f);
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
    assert_same_f32(load_checked("f.npy", ATTN_NPY_F32, 4, shape, &a),
                    load_checked("c.npy", ATTN_NPY_F32, 4, shape, &b), 32, "fortran");
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
    save_f32("k5.npy", 4, kshape, kk);
    ck_assert_int_eq(RUN("--variant", "sdpa", "--q", q, "--k", tpath("k5.npy"), "--v", v,
                         "--out", o), 2);
    /* a 2-D q and a malformed q */
    save_f32("q2.npy", 2, kshape, kk);
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
    tcase_add_test(r, compare_exit_codes);
    tcase_add_test(r, compare_large_logits);
    suite_add_tcase(s, r);
    return s;
}

int main(void)
{
    return attn_check_run(run_suite());
}
