/* check_rope_cpu.c - the cpu backend's RoPE: its row helpers (the interface other ops use)
 * and the whole op give exactly the reference's float working-precision result (cos/sin of
 * the f64 angle rounded to float, float products in the same order), also far out and in
 * place; one thread and two give the same bits. */
#include "attn/attn.h"
#include "cpu/cpu_rope.h"
#include "rope_ref.h"

#include "check_run.h"
#include "rope_fixture.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, S = 33, H = 3, D = 40 };

/* The row helpers at far positions equal attn_ref_rope's lowp mode bit for bit. */
START_TEST(row_helpers_equal_lowp)
{
    static float x[B * S * H * D], y[D];
    static double lowp[B * S * H * D];
    for (int e = 0; e < B * S * H * D; e++)
        x[e] = (float)cos(0.91 * e);
    const int64_t rot = _i / 2 ? 24 : D;
    attn_rope_desc d = attn_rope_desc_default();
    d.layout = _i % 2 ? ATTN_ROPE_INTERLEAVED : ATTN_ROPE_HALF;
    d.rot_dim = rot;
    d.offset = 1000000;
    d.theta = 500000;
    attn_tensor tx = attn_tensor_bshd(x, ATTN_F32, B, S, H, D);
    attn_rope_problem p;
    ck_assert_int_eq(attn_rope_validate(&d, &tx, &tx, &p), ATTN_OK);
    ck_assert_int_eq(attn_ref_rope(&p, 1, lowp), ATTN_OK);
    double freq[D / 2];
    float cs[D / 2], sn[D / 2];
    attn_cpu_rope_freqs(d.theta, rot, freq);
    for (int64_t r = 0; r < B * S * H; r++) {
        attn_cpu_rope_table(freq, rot / 2, 1000000.0 + (double)(r / H % S), cs, sn);
        attn_cpu_rope_apply(d.layout, rot, D, cs, sn, x + r * D, y);
        for (int k = 0; k < D; k++)
            ck_assert_msg((double)y[k] == lowp[r * D + k], "row %lld elem %d: %.9g vs %.9g",
                          (long long)r, k, (double)y[k], lowp[r * D + k]);
    }
}
END_TEST

/* The op on one and two threads, out of place and in place, equals lowp bit for bit. */
START_TEST(op_equals_lowp_on_any_thread_count)
{
    static float x[B * S * H * D], o[B * S * H * D], xi[B * S * H * D];
    static double lowp[B * S * H * D];
    int32_t pos[B * S];
    for (int e = 0; e < B * S * H * D; e++)
        x[e] = (float)sin(0.37 * e);
    for (int i = 0; i < B * S; i++)
        pos[i] = 99991 * i % 2000003;
    attn_rope_desc d = attn_rope_desc_default();
    d.layout = ATTN_ROPE_INTERLEAVED;
    attn_tensor tp = attn_tensor_bshd(pos, ATTN_I32, B, S, 1, 1);
    d.positions = &tp;
    attn_tensor tx = attn_tensor_bhsd(x, ATTN_F32, B, S, H, D);
    attn_tensor to = attn_tensor_bhsd(o, ATTN_F32, B, S, H, D);
    attn_rope_problem p;
    ck_assert_int_eq(attn_rope_validate(&d, &tx, &to, &p), ATTN_OK);
    ck_assert_int_eq(attn_ref_rope(&p, 1, lowp), ATTN_OK);
    const char *opts[] = {"threads=1", "threads=2"};
    for (int t = 0; t < 2; t++) {
        attn_backend *be;
        ck_assert_int_eq(attn_backend_open("cpu", opts[t], &be), ATTN_OK);
        memcpy(xi, x, sizeof x);
        attn_tensor ti = attn_tensor_bhsd(xi, ATTN_F32, B, S, H, D);
        ck_assert_int_eq(attn_rope_forward(be, &d, &tx, &to), ATTN_OK);
        ck_assert_int_eq(attn_rope_forward(be, &d, &ti, &ti), ATTN_OK);
        for (int64_t b = 0; b < B; b++)
            for (int64_t s = 0; s < S; s++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t k = 0; k < D; k++) {
                        const int64_t at = ((b * H + h) * S + s) * D + k;
                        const double want = lowp[((b * S + s) * H + h) * D + k];
                        ck_assert((double)o[at] == want && (double)xi[at] == want);
                    }
        attn_backend_close(be);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rope_cpu");
    TCase *tc = tcase_create("cpu");
    tcase_add_loop_test(tc, row_helpers_equal_lowp, 0, 4);
    tcase_add_test(tc, op_equals_lowp_on_any_thread_count);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
