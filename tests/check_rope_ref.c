/* check_rope_ref.c - the RoPE reference (reference/rope.c) against what rotations must do:
 * a closed form, pair norms kept, position 0 the identity, the relative property (the dot
 * product of a rotated query and key depends only on their distance), the two layouts one
 * permutation apart, partial rotation copying the rest, position tensors equal to offsets, the
 * float working-precision mode against a plain float loop, 16-bit outputs rounded once, and a
 * naive f32 angle failing the conformance policy at far positions (the policy can fail). */
#include "attn/attn.h"
#include "attn_half.h"
#include "attn_policy.h"
#include "rope_ref.h"

#include "check_run.h"
#include "rope_fixture.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { S = 6, H = 2, D = 16 };

/* A validated problem on host arrays: x f64 values stored as f32. */
typedef struct fx {
    float x[S * H * D], out[S * H * D];
    int64_t pos[S];
    attn_tensor tx, to, tp;
    attn_rope_desc d;
    attn_rope_problem p;
} fx;

static void fx_init(fx *f, attn_rope_layout layout, int64_t rot, int64_t offset)
{
    memset(f, 0, sizeof *f);
    for (int e = 0; e < S * H * D; e++)
        f->x[e] = (float)sin(0.37 * e + 1.0);
    f->tx = attn_tensor_bshd(f->x, ATTN_F32, 1, S, H, D);
    f->to = attn_tensor_bshd(f->out, ATTN_F32, 1, S, H, D);
    f->tp = attn_tensor_bshd(f->pos, ATTN_I64, 1, S, 1, 1);
    f->d = attn_rope_desc_default();
    f->d.layout = layout;
    f->d.rot_dim = rot;
    f->d.offset = offset;
}

static void fx_run(fx *f, int lowp, double *y)
{
    ck_assert_int_eq(attn_rope_validate(&f->d, &f->tx, &f->to, &f->p), ATTN_OK);
    ck_assert_int_eq(attn_ref_rope(&f->p, lowp, y), ATTN_OK);
}

/* D = 2, x = (1, 0): the output is (cos p, sin p), to the last bit of cos and sin. */
START_TEST(closed_form)
{
    double x[2] = {1.0, 0.0}, y[2];
    for (double p = 0; p < 5e6; p = p * 7 + 1) {
        attn_ref_rope_row(ATTN_ROPE_HALF, 10000.0, 2, 2, p, x, y);
        ck_assert(y[0] == cos(p) && y[1] == sin(p));
    }
    /* pair i turns at theta^(-2i/rot): with theta 100, rot 4, pair 1 turns 1/10 as fast */
    double x4[4] = {0, 1, 0, 1}, y4[4];
    attn_ref_rope_row(ATTN_ROPE_INTERLEAVED, 100.0, 4, 4, 30.0, x4, y4);
    ck_assert_double_eq_tol(y4[2], -sin(3.0), 1e-15);
    ck_assert_double_eq_tol(y4[3], cos(3.0), 1e-15);
}
END_TEST

/* |(out_a, out_c)| = |(x_a, x_c)| for every pair, both layouts, near and far positions. */
START_TEST(pair_norms_kept)
{
    static double y[S * H * D];
    fx *f = malloc(sizeof *f);
    fx_init(f, _i % 2 ? ATTN_ROPE_INTERLEAVED : ATTN_ROPE_HALF, 12, _i / 2 ? 1000000 : 0);
    fx_run(f, 0, y);
    for (int64_t r = 0; r < S * H; r++)
        for (int64_t i = 0; i < 6; i++) {
            int64_t a, c;
            attn_ref_rope_pair(f->d.layout, 12, i, &a, &c);
            const double n0 = hypot(f->x[r * D + a], f->x[r * D + c]);
            ck_assert_double_eq_tol(hypot(y[r * D + a], y[r * D + c]), n0, 4e-16 * (1 + n0));
        }
    free(f);
}
END_TEST

/* Position 0 rotates by angle 0 exactly: the row comes back unchanged, bit for bit. */
START_TEST(position_zero_is_identity)
{
    static double y[S * H * D];
    fx *f = malloc(sizeof *f);
    fx_init(f, ATTN_ROPE_INTERLEAVED, 0, 0);
    fx_run(f, 0, y);
    for (int e = 0; e < H * D; e++) /* row s = 0 */
        ck_assert(y[e] == (double)f->x[e]);
    ck_assert(y[H * D + 2] != (double)f->x[H * D + 2]); /* s = 1 is rotated */
    free(f);
}
END_TEST

static double dot(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* <RoPE(q, m), RoPE(k, n)> depends on m - n only (RoFormer eq. 16), for both layouts and
 * partial rotation, from positions 0 to 1e6. */
START_TEST(relative_property)
{
    double q[D], k[D], qr[D], kr[D];
    for (int i = 0; i < D; i++) {
        q[i] = cos(1.3 * i);
        k[i] = sin(0.7 * i + 0.2);
    }
    const attn_rope_layout l = _i % 2 ? ATTN_ROPE_INTERLEAVED : ATTN_ROPE_HALF;
    const int64_t rot = _i / 2 ? 10 : D;
    for (int dist = -3; dist <= 5; dist += 4) {
        double first = 0;
        for (int t = 0; t < 4; t++) {
            const double m = t == 0 ? 10 : t == 1 ? 777 : t == 2 ? 123456 : 1000000;
            attn_ref_rope_row(l, 10000.0, rot, D, m, q, qr);
            attn_ref_rope_row(l, 10000.0, rot, D, m - dist, k, kr);
            const double v = dot(qr, kr, D);
            if (t == 0)
                first = v;
            ck_assert_double_eq_tol(v, first, 1e-8); /* f64 angles at 1e6: ~1e-10 each */
        }
        ck_assert(fabs(first - dot(q, k, D)) > 1e-3); /* and it is not the plain product */
    }
}
END_TEST

/* Half-split and interleaved are one permutation apart: with P taking feature i to 2i and
 * i + rot/2 to 2i + 1, half(x) = P^-1 interleaved(P x), exactly. */
START_TEST(layouts_are_a_permutation)
{
    const int64_t rot = 12;
    double x[D], px[D], y_half[D], y_il[D];
    for (int i = 0; i < D; i++)
        x[i] = cos(2.1 * i + 0.3);
    memcpy(px, x, sizeof px);
    for (int64_t i = 0; i < rot / 2; i++) {
        px[2 * i] = x[i];
        px[2 * i + 1] = x[i + rot / 2];
    }
    attn_ref_rope_row(ATTN_ROPE_HALF, 500000.0, rot, D, 4321.0, x, y_half);
    attn_ref_rope_row(ATTN_ROPE_INTERLEAVED, 500000.0, rot, D, 4321.0, px, y_il);
    for (int64_t i = 0; i < rot / 2; i++) {
        ck_assert(y_half[i] == y_il[2 * i]);
        ck_assert(y_half[i + rot / 2] == y_il[2 * i + 1]);
    }
    for (int i = rot; i < D; i++) /* partial rotation: the rest is copied */
        ck_assert(y_half[i] == x[i] && y_il[i] == x[i]);
}
END_TEST

/* positions[s] = s + 7 equals offset 7; positions[s] = 4 - s rotates row s by 4 - s. */
START_TEST(positions_equal_offsets)
{
    static double a[S * H * D], b[S * H * D];
    fx *f = malloc(sizeof *f);
    fx_init(f, ATTN_ROPE_HALF, 0, 7);
    fx_run(f, 0, a);
    f->d.offset = 0;
    for (int s = 0; s < S; s++)
        f->pos[s] = s + 7;
    f->d.positions = &f->tp;
    fx_run(f, 0, b);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    for (int s = 0; s < S; s++)
        f->pos[s] = 4 - s; /* negative positions rotate backwards */
    fx_run(f, 0, b);
    double y[D], x[D];
    for (int dd = 0; dd < D; dd++)
        x[dd] = f->x[(S - 1) * H * D + dd];
    attn_ref_rope_row(ATTN_ROPE_HALF, 10000.0, D, D, -1.0, x, y);
    ck_assert(memcmp(y, b + (S - 1) * H * D, sizeof y) == 0);
    free(f);
}
END_TEST

/* The lowp mode is a plain float loop (cos/sin of the f64 angle rounded to float), bit for
 * bit; it differs from f64 by float rounding only. */
START_TEST(lowp_is_a_float_loop)
{
    static double y32[S * H * D], y64[S * H * D];
    fx *f = malloc(sizeof *f);
    fx_init(f, ATTN_ROPE_INTERLEAVED, 0, 100000);
    fx_run(f, 1, y32);
    fx_run(f, 0, y64);
    int differ = 0;
    for (int s = 0; s < S; s++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < D / 2; i++) {
                const double ang = (100000.0 + s) * pow(10000.0, -(double)(2 * i) / D);
                const float cs = (float)cos(ang), sn = (float)sin(ang);
                const float *x = f->x + (s * H + h) * D;
                const float p = x[2 * i] * cs, q = x[2 * i + 1] * sn;
                const float u = x[2 * i + 1] * cs, v = x[2 * i] * sn;
                const int e = (s * H + h) * D + 2 * i;
                ck_assert(y32[e] == (double)(p - q) && y32[e + 1] == (double)(u + v));
                ck_assert_double_le(fabs(y32[e] - y64[e]), 3e-7);
                differ += y32[e] != y64[e];
            }
    ck_assert_int_gt(differ, 0);
    free(f);
}
END_TEST

/* f16/bf16 outputs of the ref backend are the f64 result rounded once. */
START_TEST(half_outputs_rounded_once)
{
    static double y[S * H * D];
    uint16_t o16[S * H * D];
    attn_backend *be;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    fx *f = malloc(sizeof *f);
    fx_init(f, ATTN_ROPE_HALF, 0, 3);
    fx_run(f, 0, y);
    for (attn_dtype t = ATTN_F16; t <= ATTN_BF16; t++) {
        attn_tensor o = attn_tensor_bshd(o16, t, 1, S, H, D);
        ck_assert_int_eq(attn_rope_forward(be, &f->d, &f->tx, &o), ATTN_OK);
        for (int e = 0; e < S * H * D; e++) {
            uint16_t want;
            attn_store_f64(&want, t, 0, y[e]);
            ck_assert_uint_eq(o16[e], want);
        }
    }
    attn_backend_close(be);
    free(f);
}
END_TEST

/* The policy tells an accurate implementation from one computing the angle in f32 (pos and
 * freq as floats, their float product): at position 1e5 the latter is off by ~1e-3 and fails
 * gate 2 for f32 outputs, while the lowp result passes. */
START_TEST(f32_angle_fails_the_policy)
{
    static double y[S * H * D], lowp[S * H * D], naive[S * H * D], cond[S * H * D];
    fx *f = malloc(sizeof *f);
    fx_init(f, ATTN_ROPE_HALF, 0, 100000);
    fx_run(f, 0, y);
    fx_run(f, 1, lowp);
    for (int s = 0; s < S; s++)
        for (int h = 0; h < H; h++) {
            const float *x = f->x + (s * H + h) * D;
            double *o = naive + (s * H + h) * D, *c = cond + (s * H + h) * D;
            for (int i = 0; i < D / 2; i++) {
                const float ang = (float)(100000 + s) * powf(10000.0f, -(float)(2 * i) / D);
                o[i] = x[i] * cosf(ang) - x[i + D / 2] * sinf(ang);
                o[i + D / 2] = x[i + D / 2] * cosf(ang) + x[i] * sinf(ang);
                c[i] = c[i + D / 2] = fabsf(x[i]) + fabsf(x[i + D / 2]);
            }
        }
    attn_policy_in in;
    memset(&in, 0, sizeof in);
    attn_policy_setup(&in, ATTN_F32, 0);
    in.n = S * H * D;
    in.gold = y;
    in.absmag = cond;
    in.n_acc = 4;
    attn_policy_out out;
    in.got = lowp;
    attn_policy_check(&in, &out);
    ck_assert_msg(out.verdict == ATTN_PASSED, "%s", out.reason);
    in.got = naive;
    attn_policy_check(&in, &out);
    ck_assert_int_eq(out.verdict, ATTN_FAILED);
    ck_assert_int_eq(out.gate, 2);
    free(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rope_ref");
    TCase *tc = tcase_create("invariants");
    tcase_add_test(tc, closed_form);
    tcase_add_loop_test(tc, pair_norms_kept, 0, 4);
    tcase_add_test(tc, position_zero_is_identity);
    tcase_add_loop_test(tc, relative_property, 0, 4);
    tcase_add_test(tc, layouts_are_a_permutation);
    tcase_add_test(tc, positions_equal_offsets);
    tcase_add_test(tc, lowp_is_a_float_loop);
    tcase_add_test(tc, half_outputs_rounded_once);
    tcase_add_test(tc, f32_angle_fails_the_policy);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
