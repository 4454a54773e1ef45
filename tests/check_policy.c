/* check_policy.c - unit tests of each conformance gate (tools/attn_policy.c) on synthetic
 * arrays: invariants both ways, the per-element bound, NMSE, calibration, trust, and the
 * rounding of f16/bf16 outputs passing exactly as the policy claims, and `attn compare` using
 * the same defaults (f16 output: NMSE limit (2 u_out)^2; 5e-4 only for --class f16). */
#include "attn_cases.h"
#include "attn_cmds.h"
#include "attn_half.h"
#include "attn_npy.h"
#include "attn_policy.h"

#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 200

typedef struct fixture {
    double gold[N], got[N], absmag[N], lowp[N];
    uint8_t zero[N];
    attn_policy_in in;
    attn_policy_out out;
} fixture;

/* Gold in [-1, 1] with a condition scale >= |gold| (as softmax attention guarantees), a
 * lowp result off by 2 ulp of float, got = gold, f32 output, n_acc = 64 + 512. */
static void setup_fx(fixture *f, attn_dtype out_dt)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < N; i++) {
        f->gold[i] = sin(0.37 * i + 0.1);
        f->absmag[i] = fabs(f->gold[i]) + 0.25;
        f->lowp[i] = f->gold[i] + 2.0 * 0x1p-24 * f->absmag[i];
        f->got[i] = f->gold[i];
    }
    attn_policy_setup(&f->in, out_dt, 0);
    f->in.n = N;
    f->in.gold = f->gold;
    f->in.got = f->got;
    f->in.absmag = f->absmag;
    f->in.lowp = f->lowp;
    f->in.n_acc = 64 + 512;
}

static void check(fixture *f)
{
    attn_policy_check(&f->in, &f->out);
}

START_TEST(exact_passes)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_PASSED);
    ck_assert_str_eq(f.out.reason, "");
    ck_assert(f.out.margin == 0 && f.out.max_abs == 0 && f.out.nmse == 0);
}
END_TEST

START_TEST(one_ulp_passes)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    for (int i = 0; i < N; i++)
        f.got[i] = nextafterf((float)f.gold[i], INFINITY);
    check(&f);
    ck_assert_msg(f.out.verdict == ATTN_PASSED, "%s", f.out.reason);
    ck_assert(f.out.margin > 0 && f.out.margin < 0.1);
}
END_TEST

START_TEST(error_1e3_fails)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    f.got[17] += 1e-3;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_FAILED);
    ck_assert_int_eq(f.out.gate, 2);
    ck_assert_int_eq(f.out.worst, 17);
    ck_assert(f.out.margin > 1);
    ck_assert(fabs(f.out.max_abs - 1e-3) < 1e-12);
}
END_TEST

START_TEST(nan_where_gold_finite_fails)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    f.got[5] = NAN;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_FAILED);
    ck_assert_int_eq(f.out.gate, 1);
    ck_assert_int_eq(f.out.worst, 5);
    ck_assert_ptr_nonnull(strstr(f.out.reason, "NaN"));
}
END_TEST

START_TEST(finite_where_gold_nan_fails)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    f.gold[9] = NAN;
    f.got[9] = 0.5;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_FAILED);
    ck_assert_int_eq(f.out.gate, 1);
    ck_assert_int_eq(f.out.worst, 9);
}
END_TEST

START_TEST(nan_on_both_sides_passes)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    f.gold[9] = f.got[9] = f.lowp[9] = NAN;
    check(&f);
    ck_assert_msg(f.out.verdict == ATTN_PASSED, "%s", f.out.reason);
}
END_TEST

START_TEST(inf_mismatch_fails)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    f.gold[3] = INFINITY;
    f.got[3] = -INFINITY;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_FAILED);
    ck_assert_int_eq(f.out.gate, 1);
    setup_fx(&f, ATTN_F32);
    f.gold[3] = 1.0;
    f.got[3] = INFINITY; /* Inf where gold is finite */
    check(&f);
    ck_assert_int_eq(f.out.gate, 1);
    setup_fx(&f, ATTN_F32);
    f.gold[3] = f.got[3] = -INFINITY; /* the same Inf passes */
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_PASSED);
}
END_TEST

/* Elements of fully masked rows must be exactly 0: even a denormal is an error. */
START_TEST(masked_row_nonzero_fails)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    for (int i = 10; i < 20; i++) {
        f.gold[i] = f.got[i] = f.lowp[i] = f.absmag[i] = 0.0;
        f.zero[i] = 1;
    }
    f.in.must_zero = f.zero;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_PASSED);
    f.got[12] = 1e-40;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_FAILED);
    ck_assert_int_eq(f.out.gate, 1);
    ck_assert_int_eq(f.out.worst, 12);
    f.got[12] = -0.0; /* negative zero is zero */
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_PASSED);
}
END_TEST

START_TEST(all_zero_gold_mistrusted)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    for (int i = 0; i < N; i++)
        f.gold[i] = f.got[i] = f.lowp[i] = 0.0;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_MISTRUSTED);
    ck_assert_int_eq(f.out.gate, 5);
    ck_assert(f.out.zero_frac == 1.0);
    /* 90% zeros exactly is still trusted (the limit is "more than 90%") */
    setup_fx(&f, ATTN_F32);
    for (int i = 0; i < N * 9 / 10; i++)
        f.gold[i] = f.got[i] = f.lowp[i] = 0.0;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_PASSED);
}
END_TEST

START_TEST(few_elements_mistrusted)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    f.in.n = 9;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_MISTRUSTED);
    f.in.no_trust = 1; /* LSE: trusted through its output tensor */
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_PASSED);
}
END_TEST

/* A kernel inside the absolute bound but 10x worse than naive float code fails calibration;
 * 2x worse passes. */
START_TEST(calibration_catches_10x)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    f.in.n_acc = 128 + 4096; /* tau ~ 8 * 65 u * absmag: room for 10x the lowp error */
    for (int i = 0; i < N; i++)
        f.got[i] = f.gold[i] + 10.0 * (f.lowp[i] - f.gold[i]);
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_FAILED);
    ck_assert_int_eq(f.out.gate, 4);
    ck_assert(f.out.margin < 1);
    ck_assert(f.out.lowp_ratio > 9 && f.out.lowp_ratio < 11);
    for (int i = 0; i < N; i++)
        f.got[i] = f.gold[i] + 2.0 * (f.lowp[i] - f.gold[i]);
    check(&f);
    ck_assert_msg(f.out.verdict == ATTN_PASSED, "%s", f.out.reason);
}
END_TEST

/* Calibration never asks for better than one unit of the bound: an exact lowp does not turn a
 * 1-ulp result into a failure. */
START_TEST(calibration_floor)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    memcpy(f.lowp, f.gold, sizeof f.lowp);
    for (int i = 0; i < N; i++)
        f.got[i] = nextafterf((float)f.gold[i], INFINITY);
    check(&f);
    ck_assert_msg(f.out.verdict == ATTN_PASSED, "%s", f.out.reason);
}
END_TEST

/* Errors each within a (deliberately huge) per-element bound but globally too large. */
START_TEST(nmse_gate)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    for (int i = 0; i < N; i++) {
        f.absmag[i] = 1e6;
        f.got[i] = f.gold[i] * (1 + 1e-4);
    }
    f.in.lowp = NULL;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_FAILED);
    ck_assert_int_eq(f.out.gate, 3);
    ck_assert(fabs(f.out.nmse - 1e-8) < 1e-10);
}
END_TEST

/* Round-to-nearest storage of the exact result in f16/bf16 passes every gate, with the lowp
 * result stored the same way. */
static void rounding_passes(attn_dtype dt)
{
    fixture f;
    setup_fx(&f, dt);
    for (int i = 0; i < N; i++) {
        uint16_t h = dt == ATTN_F16 ? attn_f64_to_f16(f.gold[i]) : attn_f64_to_bf16(f.gold[i]);
        f.got[i] = dt == ATTN_F16 ? attn_f16_to_f32(h) : attn_bf16_to_f32(h);
        h = dt == ATTN_F16 ? attn_f64_to_f16(f.lowp[i]) : attn_f64_to_bf16(f.lowp[i]);
        f.lowp[i] = dt == ATTN_F16 ? attn_f16_to_f32(h) : attn_bf16_to_f32(h);
    }
    check(&f);
    ck_assert_msg(f.out.verdict == ATTN_PASSED, "%s", f.out.reason);
    ck_assert(f.out.margin <= 0.5 + 1e-9);
    ck_assert(f.out.round_checked && f.out.round_margin <= 1.0 && f.out.round_bad == 0);
    /* two ulp of the output dtype off is an error */
    f.got[7] = f.gold[7] * (1 + 4 * attn_dtype_roundoff(dt)) + 0.01;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_FAILED);
}

START_TEST(f16_rounding_passes)
{
    rounding_passes(ATTN_F16);
}
END_TEST

START_TEST(bf16_rounding_passes)
{
    rounding_passes(ATTN_BF16);
}
END_TEST

/* A store that truncates (rounds toward zero) stays within gate 2's 2 u_out |gold| but not
 * within half an ulp: gate 6 fails it and counts every offender as toward zero. */
static void truncation_fails(attn_dtype dt)
{
    fixture f;
    setup_fx(&f, dt);
    const int p = dt == ATTN_F16 ? 11 : 8;
    for (int i = 0; i < N; i++) {
        int e;
        frexp(fabs(f.gold[i]), &e);
        const double q = ldexp(1.0, e - p); /* the output spacing at gold (all normal here) */
        f.got[i] = trunc(f.gold[i] / q) * q;
        f.lowp[i] = f.got[i];
    }
    check(&f);
    ck_assert_msg(f.out.margin <= 1.0, "gate 2 alone must not see it (margin %g)", f.out.margin);
    ck_assert_int_eq(f.out.verdict, ATTN_FAILED);
    ck_assert_int_eq(f.out.gate, 6);
    ck_assert(f.out.round_bad > N / 4 && f.out.round_toward_zero == f.out.round_bad);
    ck_assert(f.out.round_margin > 1.5);
    ck_assert_msg(strstr(f.out.reason, "toward zero") != NULL, "%s", f.out.reason);
}

START_TEST(f16_truncation_fails)
{
    truncation_fails(ATTN_F16);
}
END_TEST

START_TEST(bf16_truncation_fails)
{
    truncation_fails(ATTN_BF16);
}
END_TEST

/* Gold just below 2 whose f32 result lies above 2 rounds into the upper binade (spacing 2^-9 in
 * f16): that is correct rounding, more than half an ulp of gold away, and gate 6 allows it
 * because it takes the ulp at |gold| + e. */
START_TEST(rounding_across_a_power_of_two)
{
    fixture f;
    setup_fx(&f, ATTN_F16);
    for (int i = 0; i < N; i++) {
        f.got[i] = attn_f16_to_f32(attn_f64_to_f16(f.gold[i]));
        f.lowp[i] = f.got[i];
    }
    const double k = 8.0 * sqrt(f.in.n_acc), e = 0x1p-10 + 0x1p-13;
    f.gold[3] = 2.0 - 0x1p-14;
    f.absmag[3] = e / (k * 0x1p-24);         /* the f32 term of this element is e */
    const double y = f.gold[3] + e;           /* an f32 result within e of gold, above 2 + 2^-10 */
    f.got[3] = attn_f16_to_f32(attn_f64_to_f16(y));
    f.lowp[3] = f.got[3];
    ck_assert(f.got[3] == 2.0 + 0x1p-9);
    check(&f);
    ck_assert_msg(f.out.verdict == ATTN_PASSED, "%s", f.out.reason);
    ck_assert(f.out.round_margin <= 1.0);
    /* with ulp(gold) = 2^-10 instead the bound would be 2^-11 + e < |got - gold| */
    ck_assert(fabs(f.got[3] - f.gold[3]) > 0x1p-11 + e);
}
END_TEST

/* f16 subnormals are spaced 2^-24: half of that is the bound for tiny results; f32 outputs are
 * not checked by gate 6. */
START_TEST(rounding_subnormal_and_f32)
{
    fixture f;
    setup_fx(&f, ATTN_F16);
    for (int i = 0; i < N; i++) {
        f.gold[i] = (i + 0.3) * 0x1p-24;
        f.absmag[i] = fabs(f.gold[i]); /* e = 192 * 2^-24 * |gold| is far below 2^-25 */
        f.got[i] = attn_f16_to_f32(attn_f64_to_f16(f.gold[i]));
        f.lowp[i] = f.got[i];
    }
    check(&f);
    ck_assert_msg(f.out.round_bad == 0, "%s", f.out.reason);
    f.gold[5] = 5.7 * 0x1p-24;
    f.got[5] = 5 * 0x1p-24; /* truncated */
    f.got[6] = 7 * 0x1p-24; /* gold 6.3 * 2^-24 rounded up */
    check(&f);
    ck_assert(f.out.round_bad == 2 && f.out.round_toward_zero == 1);
    setup_fx(&f, ATTN_F32);
    check(&f);
    ck_assert(!f.out.round_checked);
}
END_TEST

/* The worst verdict decides: FAILED outranks MISTRUSTED, and the first failing gate speaks. */
START_TEST(worst_decides)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    f.in.n = 5;
    f.got[2] = NAN;
    f.got[3] += 1.0;
    check(&f);
    ck_assert_int_eq(f.out.verdict, ATTN_FAILED);
    ck_assert_int_eq(f.out.gate, 1);
}
END_TEST

/* Without absmag the bound falls back to max|gold| (norm-wise), used by `attn compare`. */
START_TEST(no_absmag_normwise)
{
    fixture f;
    setup_fx(&f, ATTN_F32);
    f.in.absmag = NULL;
    f.gold[0] = 1e-9; /* a near-zero element from cancellation */
    f.got[0] = 1e-9 + 1e-7;
    f.lowp[0] = f.got[0];
    check(&f);
    ck_assert_msg(f.out.verdict == ATTN_PASSED, "%s", f.out.reason);
}
END_TEST

START_TEST(verdict_names)
{
    ck_assert_str_eq(attn_verdict_name(ATTN_PASSED), "PASSED");
    ck_assert_str_eq(attn_verdict_name(ATTN_FAILED), "FAILED");
    ck_assert_str_eq(attn_verdict_name(ATTN_MISTRUSTED), "MISTRUSTED");
    ck_assert_str_eq(attn_verdict_name(ATTN_SKIPPED), "SKIPPED");
}
END_TEST

START_TEST(setup_defaults)
{
    attn_policy_in in;
    attn_policy_setup(&in, ATTN_F16, 0);
    ck_assert(in.u_c == 0x1p-24 && in.u_out == 0x1p-11 && in.calib_factor == 4.0);
    ck_assert(fabs(in.nmse_max - (1e-9 + 0x1p-20)) < 1e-18);
    attn_policy_setup(&in, ATTN_BF16, 1); /* the LSE is f32 whatever the output */
    ck_assert(in.u_out == 0x1p-24 && in.calib_factor == 16.0 && in.no_trust == 1);
    ck_assert(in.nmse_max == 1e-9 + 4.0 * 0x1p-48);
}
END_TEST

/* An f16 GOT uniformly 0.3 % off: inside the element bound (a huge --n-acc), NMSE 9e-6. The
 * policy's f16-output limit (9.5e-7) fails it; only the half-accumulation class (5e-4) passes. */
START_TEST(compare_uses_policy_defaults)
{
    enum { M = 1000 };
    static double ref[M];
    static uint16_t got[M];
    for (int i = 0; i < M; i++) {
        ref[i] = 0.5 + 0.4 * sin(0.1 * i);
        got[i] = attn_f64_to_f16(ref[i] * (1 + 3e-3));
    }
    char g[] = "/tmp/attn_cmp_got_XXXXXX", r[] = "/tmp/attn_cmp_ref_XXXXXX", err[ATTN_NPY_ERRLEN];
    close(mkstemp(g));
    close(mkstemp(r));
    const int64_t shape[1] = {M};
    ck_assert_int_eq(attn_npy_save(g, ATTN_NPY_F16, 1, shape, got, err), 0);
    ck_assert_int_eq(attn_npy_save(r, ATTN_NPY_F64, 1, shape, ref, err), 0);
    char *def[] = {"compare", g, r, "--n-acc", "100000000", NULL};
    char *half[] = {"compare", g, r, "--n-acc", "100000000", "--class", "f16", NULL};
    fflush(stdout);
    ck_assert_int_eq(attn_cmd_compare(5, def), 1);
    ck_assert_int_eq(attn_cmd_compare(7, half), 0);
    unlink(g);
    unlink(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("gates");
    const TTest *tests[] = {
        exact_passes, one_ulp_passes, error_1e3_fails, nan_where_gold_finite_fails,
        finite_where_gold_nan_fails, nan_on_both_sides_passes, inf_mismatch_fails,
        masked_row_nonzero_fails, all_zero_gold_mistrusted, few_elements_mistrusted,
        calibration_catches_10x, calibration_floor, nmse_gate, f16_rounding_passes,
        bf16_rounding_passes, f16_truncation_fails, bf16_truncation_fails,
        rounding_across_a_power_of_two, rounding_subnormal_and_f32, worst_decides, no_absmag_normwise, verdict_names, setup_defaults,
        compare_uses_policy_defaults};
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
