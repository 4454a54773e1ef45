/* check_linear_backward_run.c - `attn run --variant linear --dout` driven in-process on .npy
 * files: every backend's gradient files (q, k, v and the initial state's, with the final
 * state's gradients given) bit-equal to attn_linear_backward called directly, the f64 ground
 * truth (--backend ref --out-dtype f64) equal to the reference's chain rule in head-major
 * files, and the usage errors (nothing written). */
#include "attn_npy.h"
#include "attn_linear_problem.h"
#include "linear_ref.h"
#include "check_run_files.h"

#include "check_run.h"

#include <unistd.h>

/* B 2, S 11, Hq 4, Hkv 2, Dk 8 (elu+1: Df 8), Dv 6; bshd f32 arrays. */
enum { B = 2, S = 11, HQ = 4, HKV = 2, DK = 8, DV = 6, DF = 8 };
enum { NQ = B * S * HQ * DK, NK = B * S * HKV * DK, NV = B * S * HKV * DV, NO = B * S * HQ * DV,
       NS = B * HKV * DF * DV, NZ = B * HKV * DF };

typedef struct lin_files {
    float *q, *k, *v, *dout, *s0, *z0, *ds, *dz;
} lin_files;

static const int64_t qs[4] = {B, S, HQ, DK}, ks[4] = {B, S, HKV, DK}, vs[4] = {B, S, HKV, DV},
                     os[4] = {B, S, HQ, DV}, ss[4] = {B, HKV, DF, DV}, zs[3] = {B, HKV, DF};

/* The gradient files, in the order of the buffers w. */
static const rf_file grad_files[5] = {{"dq.npy", 4, qs, NQ},
                                      {"dk.npy", 4, ks, NK},
                                      {"dv.npy", 4, vs, NV},
                                      {"ds0.npy", 4, ss, NS},
                                      {"dz0.npy", 3, zs, NZ}};

/* The inputs on the exact grid, saved as q, k, v, do, s0, z0 (positive), ds, dz .npy. */
static lin_files make_files(void)
{
    uint64_t st = 99;
    lin_files f = {rf_grid(&st, NQ, 1), rf_grid(&st, NK, 1), rf_grid(&st, NV, 1),
                   rf_grid(&st, NO, 1), rf_grid(&st, NS, 4), rf_grid(&st, NZ, 4),
                   rf_grid(&st, NS, 1), rf_grid(&st, NZ, 1)};
    for (int i = 0; i < NZ; i++)
        f.z0[i] = f.z0[i] < 0 ? -f.z0[i] : f.z0[i];
    rf_save("q.npy", 4, qs, f.q);
    rf_save("k.npy", 4, ks, f.k);
    rf_save("v.npy", 4, vs, f.v);
    rf_save("do.npy", 4, os, f.dout);
    rf_save("s0.npy", 4, ss, f.s0);
    rf_save("z0.npy", 3, zs, f.z0);
    rf_save("ds.npy", 4, ss, f.ds);
    rf_save("dz.npy", 3, zs, f.dz);
    return f;
}

static void free_files(lin_files *f)
{
    float *all[] = {f->q, f->k, f->v, f->dout, f->s0, f->z0, f->ds, f->dz};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static attn_linear_desc desc_of(float *decay)
{
    attn_linear_desc d = attn_linear_desc_default(); /* elu+1, normalised, causal */
    decay[0] = 0.75f;
    decay[1] = 0.5f;
    d.decay = ATTN_LINEAR_DECAY_GIVEN;
    d.decay_values = decay;
    return d;
}

/* The views of the files' arrays and of the gradient buffers w (dq, dk, dv, ds0, dz0). */
typedef struct views {
    attn_tensor q, k, v, dout, s0, z0, ds, dz, gq, gk, gv, gs, gz;
} views;

static views views_of(const lin_files *f, float *const *w)
{
    return (views){attn_tensor_bshd(f->q, ATTN_F32, B, S, HQ, DK),
                   attn_tensor_bshd(f->k, ATTN_F32, B, S, HKV, DK),
                   attn_tensor_bshd(f->v, ATTN_F32, B, S, HKV, DV),
                   attn_tensor_bshd(f->dout, ATTN_F32, B, S, HQ, DV),
                   attn_tensor_bshd(f->s0, ATTN_F32, B, HKV, DF, DV),
                   attn_tensor_bshd(f->z0, ATTN_F32, B, HKV, DF, 1),
                   attn_tensor_bshd(f->ds, ATTN_F32, B, HKV, DF, DV),
                   attn_tensor_bshd(f->dz, ATTN_F32, B, HKV, DF, 1),
                   attn_tensor_bshd(w[0], ATTN_F32, B, S, HQ, DK),
                   attn_tensor_bshd(w[1], ATTN_F32, B, S, HKV, DK),
                   attn_tensor_bshd(w[2], ATTN_F32, B, S, HKV, DV),
                   attn_tensor_bshd(w[3], ATTN_F32, B, HKV, DF, DV),
                   attn_tensor_bshd(w[4], ATTN_F32, B, HKV, DF, 1)};
}

/* attn run --dout on every backend == attn_linear_backward called directly (GQA, decay,
 * normaliser, S0 and z0 with their gradients, the final state's gradients given). A backend
 * without the backward is skipped. */
START_TEST(run_backward_matches_direct)
{
    lin_files f = make_files();
    float decay[2];
    const attn_linear_desc d = desc_of(decay);
    float *w[5] = {malloc(4 * NQ), malloc(4 * NK), malloc(4 * NV), malloc(4 * NS), malloc(4 * NZ)};
    ck_assert(w[0] && w[1] && w[2] && w[3] && w[4]);
    for (const char *const *b = attn_backend_list(); *b; b++) {
        if (!rf_backend_opens(*b))
            continue;
        const int rc = RF_RUN("--variant", "linear", "--backend", (char *)*b, "--q",
                               tpath("q.npy"), "--k", tpath("k.npy"), "--v", tpath("v.npy"),
                               "--decay", "0.75,0.5", "--state-in", tpath("s0.npy"), "--z-in",
                               tpath("z0.npy"), "--out", tpath("o.npy"), "--dout",
                               tpath("do.npy"), "--d-state-out", tpath("ds.npy"), "--d-z-out",
                               tpath("dz.npy"), "--dq", tpath("dq.npy"), "--dk", tpath("dk.npy"),
                               "--dv", tpath("dv.npy"), "--d-state-in", tpath("ds0.npy"),
                               "--d-z-in", tpath("dz0.npy"));
        if (!rf_ran_backward(*b, rc))
            continue;
        const views x = views_of(&f, w);
        const attn_linear_state st = {&x.s0, &x.z0, NULL, NULL};
        const attn_linear_grads g = {.dq = &x.gq, .dk = &x.gk, .dv = &x.gv, .d_state_in = &x.gs,
                                     .d_z_in = &x.gz, .d_state_out = &x.ds, .d_z_out = &x.dz};
        attn_backend *be;
        ck_assert_int_eq(attn_backend_open(*b, NULL, &be), ATTN_OK);
        ck_assert_msg(attn_linear_backward(be, &d, &x.q, &x.k, &x.v, &st, &x.dout, &g) ==
                          ATTN_OK,
                      "%s", attn_last_error());
        attn_backend_close(be);
        rf_assert_files_f32(grad_files, 5, w);
    }
    for (int i = 0; i < 5; i++)
        free(w[i]);
    free_files(&f);
}
END_TEST

/* [B, S, H, D] floats -> [B, H, S, D], saved */
static void save_bhsd(const char *name, const float *x, const int64_t *shape)
{
    float *y = rf_to_bhsd(x, sizeof(float), shape[0], shape[1], shape[2], shape[3]);
    const int64_t hs[4] = {shape[0], shape[2], shape[1], shape[3]};
    rf_save(name, 4, hs, y);
    free(y);
}

/* --backend ref --out-dtype f64 in head-major files: the reference's f64 gradients exactly. */
START_TEST(run_backward_f64_ground_truth)
{
    lin_files f = make_files();
    save_bhsd("qh.npy", f.q, qs);
    save_bhsd("kh.npy", f.k, ks);
    save_bhsd("vh.npy", f.v, vs);
    save_bhsd("doh.npy", f.dout, os);
    ck_assert_int_eq(RF_RUN("--variant", "linear", "--layout", "bhsd", "--out-dtype", "f64",
                             "--q", tpath("qh.npy"), "--k", tpath("kh.npy"), "--v",
                             tpath("vh.npy"), "--decay", "0.75,0.5", "--state-in",
                             tpath("s0.npy"), "--z-in", tpath("z0.npy"), "--out", tpath("o.npy"),
                             "--dout", tpath("doh.npy"), "--d-state-out", tpath("ds.npy"),
                             "--dq", tpath("dq.npy"), "--dk", tpath("dk.npy"), "--dv",
                             tpath("dv.npy"), "--d-state-in", tpath("ds0.npy"), "--d-z-in",
                             tpath("dz0.npy")),
                     0);
    float decay[2];
    const attn_linear_desc d = desc_of(decay);
    static float bq[NQ], bk[NK], bv[NV], bs[NS], bz[NZ]; /* views for the validation */
    float *const w[5] = {bq, bk, bv, bs, bz};
    const views x = views_of(&f, w);
    const attn_linear_state st = {&x.s0, &x.z0, NULL, NULL};
    const attn_linear_grads g = {.dq = &x.gq, .dk = &x.gk, .dv = &x.gv, .d_state_in = &x.gs,
                                 .d_z_in = &x.gz, .d_state_out = &x.ds};
    attn_linear_problem p;
    ck_assert_int_eq(attn_linear_validate_backward(&d, &x.q, &x.k, &x.v, &st, &x.dout, &g, &p),
                     ATTN_OK);
    static double wq[NQ], wk[NK], wv[NV], wsd[NS], wz[NZ];
    const attn_linear_ref_grads want = {wq, wk, wv, wsd, wz, NULL, NULL, NULL, NULL, NULL};
    ck_assert_int_eq(attn_ref_linear_backward(&p, ATTN_REF_F64, &want), ATTN_OK);
    attn_linear_problem_release(&p);
    const int64_t *shp[3] = {qs, ks, vs};
    const double *wt[3] = {wq, wk, wv};
    static const char *const names[3] = {"dq.npy", "dk.npy", "dv.npy"};
    for (int t = 0; t < 3; t++) {
        const int64_t *sh = shp[t], hs[4] = {sh[0], sh[2], sh[1], sh[3]};
        double *x = rf_to_bhsd(wt[t], sizeof(double), sh[0], sh[1], sh[2], sh[3]);
        rf_assert_file_f64(names[t], 4, hs, x, sh[0] * sh[1] * sh[2] * sh[3]);
        free(x);
    }
    double *const states[2] = {wsd, wz};
    rf_assert_files_f64(grad_files + 3, 2, states);
    free_files(&f);
}
END_TEST

START_TEST(run_backward_errors)
{
    lin_files f = make_files();
    const int64_t bad[4] = {B, S, HQ, DV + 1};
    float *x = calloc(B * S * HQ * (DV + 1), sizeof(float));
    ck_assert(x);
    rf_save("do7.npy", 4, bad, x);
    char *q = tpath("q.npy"), *k = tpath("k.npy"), *v = tpath("v.npy"), *o = tpath("o.npy");
    char *dq = tpath("dq.npy"), *dk = tpath("dk.npy"), *dv = tpath("dv.npy");
    char *d = tpath("do.npy");
    /* gradients without --dout, --dout without every gradient, a state's gradient without
     * the state */
    ck_assert_int_eq(RF_RUN("--variant", "linear", "--q", q, "--k", k, "--v", v, "--out", o,
                             "--dq", dq, "--dk", dk, "--dv", dv), 2);
    ck_assert_int_eq(RF_RUN("--variant", "linear", "--q", q, "--k", k, "--v", v, "--out", o,
                             "--d-state-out", tpath("ds.npy")), 2);
    ck_assert_int_eq(RF_RUN("--variant", "linear", "--q", q, "--k", k, "--v", v, "--out", o,
                             "--dout", d, "--dq", dq, "--dk", dk), 2);
    ck_assert_int_eq(RF_RUN("--variant", "linear", "--q", q, "--k", k, "--v", v, "--out", o,
                             "--dout", d, "--dq", dq, "--dk", dk, "--dv", dv, "--d-state-in",
                             tpath("ds0.npy")), 2);
    ck_assert_int_eq(RF_RUN("--variant", "linear", "--q", q, "--k", k, "--v", v, "--out", o,
                             "--state-in", tpath("s0.npy"), "--z-in", tpath("z0.npy"), "--dout",
                             d, "--dq", dq, "--dk", dk, "--dv", dv, "--d-z-in",
                             tpath("dz0.npy")),
                     0); /* the control: a valid call */
    ck_assert_int_eq(unlink(o), 0);
    ck_assert_int_eq(unlink(dq), 0);
    /* d_z_out without the normaliser, dout of another shape: the library's messages */
    ck_assert_int_eq(RF_RUN("--variant", "linear", "--q", q, "--k", k, "--v", v, "--out", o,
                             "--normalize", "0", "--dout", d, "--dq", dq, "--dk", dk, "--dv",
                             dv, "--d-z-out", tpath("dz.npy")), 2);
    ck_assert_int_eq(RF_RUN("--variant", "linear", "--q", q, "--k", k, "--v", v, "--out", o,
                             "--dout", tpath("do7.npy"), "--dq", dq, "--dk", dk, "--dv", dv), 2);
    ck_assert(access(o, F_OK) != 0);
    ck_assert(access(dq, F_OK) != 0);
    free(x);
    free_files(&f);
}
END_TEST

static Suite *run_suite(void)
{
    return rf_backward_suite("linear_backward_run", run_backward_matches_direct,
                             run_backward_f64_ground_truth, run_backward_errors);
}

int main(void)
{
    return attn_check_run(run_suite());
}
