/* check_rattention_backward_run.c - `attn run --variant rattention --dout` driven in-process on
 * .npy files: every backend's gradient files (q, k, v, both gains, S0, with d_state_out given)
 * bit-equal to attn_rattention_backward called directly, the f64 ground truth (--backend ref
 * --out-dtype f64, gains not given: their gradients still written, [Hq, Dv]) equal to the
 * reference's chain rule, and the usage errors (nothing written). */
#include "attn_npy.h"
#include "attn_rattention_problem.h"
#include "check_run_files.h"
#include "rattention_ref.h"

#include "check_run.h"

#include <unistd.h>

/* B 2, S 13, Hq 4, Hkv 2, Dk 8 (Df 16), Dv 6, window 3; bshd f32 arrays. */
enum { B = 2, S = 13, HQ = 4, HKV = 2, DK = 8, DV = 6, DF = 16 };
enum { NQ = B * S * HQ * DK, NK = B * S * HKV * DK, NV = B * S * HKV * DV, NO = B * S * HQ * DV,
       NS = B * HKV * DF * DV, NG = HQ * DV };

typedef struct ratt_files {
    float *q, *k, *v, *dout, *gs, *gr, *s0, *ds;
} ratt_files;

static const int64_t qs[4] = {B, S, HQ, DK}, ks[4] = {B, S, HKV, DK}, vs[4] = {B, S, HKV, DV},
                     os[4] = {B, S, HQ, DV}, ss[4] = {B, HKV, DF, DV}, gsh[2] = {HQ, DV};

/* The inputs on the exact grid, saved as q, k, v, do, gs, gr (around 1), s0, ds .npy. */
static ratt_files make_files(void)
{
    uint64_t st = 2024;
    ratt_files f = {rf_grid(&st, NQ, 1), rf_grid(&st, NK, 1),      rf_grid(&st, NV, 1),
                    rf_grid(&st, NO, 1), rf_grid(&st, NG, 0.5f), rf_grid(&st, NG, 0.5f),
                    rf_grid(&st, NS, 0.25f), rf_grid(&st, NS, 1)};
    for (int i = 0; i < NG; i++) {
        f.gs[i] += 1.0f;
        f.gr[i] += 1.0f;
    }
    rf_save("q.npy", 4, qs, f.q);
    rf_save("k.npy", 4, ks, f.k);
    rf_save("v.npy", 4, vs, f.v);
    rf_save("do.npy", 4, os, f.dout);
    rf_save("gs.npy", 2, gsh, f.gs);
    rf_save("gr.npy", 2, gsh, f.gr);
    rf_save("s0.npy", 4, ss, f.s0);
    rf_save("ds.npy", 4, ss, f.ds);
    return f;
}

static void free_files(ratt_files *f)
{
    float *all[] = {f->q, f->k, f->v, f->dout, f->gs, f->gr, f->s0, f->ds};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static attn_rattention_desc desc_of(void)
{
    attn_rattention_desc d = attn_rattention_desc_default();
    d.window = 3;
    d.rope = ATTN_ROPE_HALF;
    d.offset = 5;
    return d;
}

/* The views of the files' arrays and of the gradient buffers w (dq, dk, dv, dgs, dgr, ds0). */
typedef struct views {
    attn_tensor q, k, v, dout, gs, gr, s0, ds, w[6];
} views;

static views views_of(const ratt_files *f, float *const *w)
{
    views x;
    x.q = attn_tensor_bshd(f->q, ATTN_F32, B, S, HQ, DK);
    x.k = attn_tensor_bshd(f->k, ATTN_F32, B, S, HKV, DK);
    x.v = attn_tensor_bshd(f->v, ATTN_F32, B, S, HKV, DV);
    x.dout = attn_tensor_bshd(f->dout, ATTN_F32, B, S, HQ, DV);
    x.gs = attn_tensor_bshd(f->gs, ATTN_F32, 1, 1, HQ, DV);
    x.gr = attn_tensor_bshd(f->gr, ATTN_F32, 1, 1, HQ, DV);
    x.s0 = attn_tensor_bshd(f->s0, ATTN_F32, B, HKV, DF, DV);
    x.ds = attn_tensor_bshd(f->ds, ATTN_F32, B, HKV, DF, DV);
    const int64_t sh[6][4] = {{B, S, HQ, DK}, {B, S, HKV, DK}, {B, S, HKV, DV},
                              {1, 1, HQ, DV}, {1, 1, HQ, DV},  {B, HKV, DF, DV}};
    for (int t = 0; t < 6; t++)
        x.w[t] = attn_tensor_bshd(w[t], ATTN_F32, sh[t][0], sh[t][1], sh[t][2], sh[t][3]);
    return x;
}

static attn_rattention_grads grads_of(const views *x)
{
    return (attn_rattention_grads){.dq = &x->w[0], .dk = &x->w[1], .dv = &x->w[2],
                                   .dgamma_swa = &x->w[3], .dgamma_rla = &x->w[4],
                                   .d_state_in = &x->w[5], .d_state_out = &x->ds};
}

/* The gradient files, in the order of the buffers w. */
static const rf_file grad_files[6] = {{"dq.npy", 4, qs, NQ},   {"dk.npy", 4, ks, NK},
                                      {"dv.npy", 4, vs, NV},   {"dgs.npy", 2, gsh, NG},
                                      {"dgr.npy", 2, gsh, NG}, {"ds0.npy", 4, ss, NS}};

/* attn run --dout on every backend == attn_rattention_backward called directly (GQA, half
 * RoPE at an offset, gains, S0, d_state_out). A backend without the backward is skipped. */
START_TEST(run_backward_matches_direct)
{
    ratt_files f = make_files();
    const attn_rattention_desc d = desc_of();
    float *w[6];
    for (int t = 0; t < 6; t++)
        ck_assert((w[t] = malloc(sizeof(float) * (size_t)grad_files[t].n)) != NULL);
    for (const char *const *b = attn_backend_list(); *b; b++) {
        if (!rf_backend_opens(*b))
            continue;
        const int rc = RF_RUN(
            "--variant", "rattention", "--backend", (char *)*b, "--window", "3", "--rope", "half",
            "--offset", "5", "--q", tpath("q.npy"), "--k", tpath("k.npy"), "--v", tpath("v.npy"),
            "--gamma-swa", tpath("gs.npy"), "--gamma-rla", tpath("gr.npy"), "--state-in",
            tpath("s0.npy"), "--out", tpath("o.npy"), "--dout", tpath("do.npy"),
            "--d-state-out", tpath("ds.npy"), "--dq", tpath("dq.npy"), "--dk", tpath("dk.npy"),
            "--dv", tpath("dv.npy"), "--dgamma-swa", tpath("dgs.npy"), "--dgamma-rla",
            tpath("dgr.npy"), "--d-state-in", tpath("ds0.npy"));
        if (!rf_ran_backward(*b, rc))
            continue;
        const views x = views_of(&f, w);
        const attn_rattention_io io = {&x.gs, &x.gr, &x.s0, NULL};
        const attn_rattention_grads g = grads_of(&x);
        attn_backend *be;
        ck_assert_int_eq(attn_backend_open(*b, NULL, &be), ATTN_OK);
        ck_assert_msg(attn_rattention_backward(be, &d, &x.q, &x.k, &x.v, &io, &x.dout, &g) ==
                          ATTN_OK,
                      "%s", attn_last_error());
        attn_backend_close(be);
        rf_assert_files_f32(grad_files, 6, w);
    }
    for (int t = 0; t < 6; t++)
        free(w[t]);
    free_files(&f);
}
END_TEST

/* --backend ref --out-dtype f64, gains not given (1) and S0: the reference's f64 gradients
 * exactly, the gains' as [Hq, Dv]. */
START_TEST(run_backward_f64_ground_truth)
{
    ratt_files f = make_files();
    ck_assert_int_eq(RF_RUN("--variant", "rattention", "--out-dtype", "f64", "--window", "3",
                             "--rope", "half", "--offset", "5", "--q", tpath("q.npy"), "--k",
                             tpath("k.npy"), "--v", tpath("v.npy"), "--state-in",
                             tpath("s0.npy"), "--out", tpath("o.npy"), "--dout", tpath("do.npy"),
                             "--dq", tpath("dq.npy"), "--dk", tpath("dk.npy"), "--dv",
                             tpath("dv.npy"), "--dgamma-swa", tpath("dgs.npy"), "--dgamma-rla",
                             tpath("dgr.npy"), "--d-state-in", tpath("ds0.npy")),
                     0);
    float *w[6];
    for (int t = 0; t < 6; t++)
        ck_assert((w[t] = malloc(sizeof(float) * (size_t)grad_files[t].n)) != NULL);
    const views x = views_of(&f, w);
    const attn_rattention_desc d = desc_of();
    const attn_rattention_io io = {NULL, NULL, &x.s0, NULL};
    attn_rattention_grads g = grads_of(&x);
    g.d_state_out = NULL;
    attn_rattention_problem p;
    ck_assert_int_eq(attn_rattention_validate_backward(&d, &x.q, &x.k, &x.v, &io, &x.dout, &g, &p),
                     ATTN_OK);
    double *r[6];
    for (int t = 0; t < 6; t++)
        ck_assert((r[t] = malloc(sizeof(double) * (size_t)grad_files[t].n)) != NULL);
    const attn_rattention_ref_grads want = {r[0], r[1], r[2], r[3], r[4], r[5],
                                            NULL, NULL, NULL, NULL, NULL, NULL};
    ck_assert_int_eq(attn_ref_rattention_backward(&p, &want), ATTN_OK);
    rf_assert_files_f64(grad_files, 6, r);
    for (int t = 0; t < 6; t++) {
        free(w[t]);
        free(r[t]);
    }
    free_files(&f);
}
END_TEST

START_TEST(run_backward_errors)
{
    ratt_files f = make_files();
    char *q = tpath("q.npy"), *k = tpath("k.npy"), *v = tpath("v.npy"), *o = tpath("o.npy");
    char *dq = tpath("dq.npy"), *dk = tpath("dk.npy"), *dv = tpath("dv.npy");
    char *d = tpath("do.npy");
    /* gradients without --dout, --dout without every gradient, S0's gradient without S0 */
    ck_assert_int_eq(RF_RUN("--variant", "rattention", "--q", q, "--k", k, "--v", v, "--out",
                             o, "--dgamma-swa", tpath("dgs.npy")), 2);
    ck_assert_int_eq(RF_RUN("--variant", "rattention", "--q", q, "--k", k, "--v", v, "--out",
                             o, "--dout", d, "--dq", dq, "--dv", dv), 2);
    ck_assert_int_eq(RF_RUN("--variant", "rattention", "--q", q, "--k", k, "--v", v, "--out",
                             o, "--dout", d, "--dq", dq, "--dk", dk, "--dv", dv,
                             "--d-state-in", tpath("ds0.npy")), 2);
    /* dout of another shape (q as dout): the library's message */
    ck_assert_int_eq(RF_RUN("--variant", "rattention", "--q", q, "--k", k, "--v", v, "--out",
                             o, "--dout", q, "--dq", dq, "--dk", dk, "--dv", dv), 2);
    ck_assert(access(o, F_OK) != 0);
    ck_assert(access(dq, F_OK) != 0);
    free_files(&f);
}
END_TEST

static Suite *run_suite(void)
{
    return rf_backward_suite("rattention_backward_run", run_backward_matches_direct,
                             run_backward_f64_ground_truth, run_backward_errors);
}

int main(void)
{
    return attn_check_run(run_suite());
}
