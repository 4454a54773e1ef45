/* check_common.c - the common layer: dtype conversions, the counter-based RNG, status names,
 * tensor constructors and the local-global layer schedule. */
#include "attn/attn.h"
#include "attn_half.h"
#include "attn_rng.h"

#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(f16_roundtrip_exhaustive)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = attn_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            ck_assert((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu));
            continue;
        }
        ck_assert_uint_eq(attn_f32_to_f16(f), h);
        ck_assert_uint_eq(attn_f64_to_f16((double)f), h);
        ck_assert_double_eq(attn_load_f64(&h, ATTN_F16, 0) , (double)f);
    }
}
END_TEST

START_TEST(f16_rounding)
{
    ck_assert_float_eq(attn_f16_to_f32(0x3c00), 1.0f);
    ck_assert_float_eq(attn_f16_to_f32(0x0001), 0x1p-24f);  /* smallest subnormal */
    ck_assert_float_eq(attn_f16_to_f32(0x7bff), 65504.0f);  /* largest finite */
    ck_assert(isinf(attn_f16_to_f32(0x7c00)));
    /* ties to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 */
    ck_assert_uint_eq(attn_f64_to_f16(1.0 + 0x1p-11), 0x3c00);
    ck_assert_uint_eq(attn_f64_to_f16(1.0 + 3 * 0x1p-11), 0x3c02);
    ck_assert_uint_eq(attn_f64_to_f16(1.0 + 0x1p-11 + 0x1p-40), 0x3c01); /* just above half */
    ck_assert_uint_eq(attn_f64_to_f16(65519.0), 0x7bff);
    ck_assert_uint_eq(attn_f64_to_f16(65520.0), 0x7c00); /* rounds to 2^16: overflow */
    ck_assert_uint_eq(attn_f64_to_f16(-1e9), 0xfc00);
    ck_assert_uint_eq(attn_f64_to_f16(0x1p-25), 0x0000);        /* tie to even (0) */
    ck_assert_uint_eq(attn_f64_to_f16(0x1p-25 * 3), 0x0002);    /* 1.5 quanta -> 2 */
    ck_assert_uint_eq(attn_f64_to_f16(-0.0), 0x8000);
    ck_assert((attn_f64_to_f16(NAN) & 0x7fffu) > 0x7c00u);
}
END_TEST

START_TEST(bf16_rounding)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = attn_bf16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        ck_assert_uint_eq(attn_f32_to_bf16(f), h);
        ck_assert_uint_eq(attn_f64_to_bf16((double)f), h);
    }
    ck_assert_uint_eq(attn_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);  /* tie to even */
    ck_assert_uint_eq(attn_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    /* double rounding would go wrong here: exactly representable in neither f32 nor bf16 */
    ck_assert_uint_eq(attn_f64_to_bf16(1.0 + 0x1p-8 + 0x1p-30), 0x3f81);
    ck_assert(isnan(attn_bf16_to_f32(attn_f32_to_bf16(NAN))));
    ck_assert_uint_eq(attn_f64_to_bf16(1e39), 0x7f80);
}
END_TEST

START_TEST(bulk_conversion)
{
    uint16_t h[300];
    float f[300], back[300];
    for (int i = 0; i < 300; i++)
        h[i] = (uint16_t)(i * 211);
    attn_convert_to_f32(h, ATTN_F16, 300, f);
    for (int i = 0; i < 300; i++)
        if (!isnan(f[i]))
            ck_assert_float_eq(f[i], attn_f16_to_f32(h[i]));
    float src[4] = {1.0f, -2.5f, 0.1f, 1e6f};
    uint16_t dst[4];
    attn_convert_from_f32(src, 4, ATTN_BF16, dst);
    attn_convert_to_f32(dst, ATTN_BF16, 4, back);
    ck_assert_float_eq(back[0], 1.0f);
    ck_assert_float_eq(back[1], -2.5f);
    ck_assert(fabsf(back[2] - 0.1f) < 0.1f * 0x1p-8f);
    attn_convert_to_f32_strided(src, ATTN_F32, 2, 2, back);
    ck_assert_float_eq(back[1], 0.1f);
}
END_TEST

START_TEST(rng_counter_based)
{
    /* pure function of (seed, stream, index) */
    ck_assert_uint_eq(attn_rng_bits(42, 3, 1000), attn_rng_bits(42, 3, 1000));
    ck_assert_uint_ne(attn_rng_bits(42, 3, 1000), attn_rng_bits(42, 4, 1000));
    ck_assert_uint_ne(attn_rng_bits(42, 3, 1000), attn_rng_bits(43, 3, 1000));
    double sum = 0, sum2 = 0;
    int n = 100000, hist[10] = {0};
    for (int i = 0; i < n; i++) {
        double u = attn_rng_unit(7, 1, (uint64_t)i);
        ck_assert(u >= 0.0 && u < 1.0);
        sum += u;
        sum2 += u * u;
        hist[(int)(u * 10)]++;
    }
    ck_assert(fabs(sum / n - 0.5) < 0.005);
    ck_assert(fabs(sum2 / n - 1.0 / 3.0) < 0.005);
    for (int b = 0; b < 10; b++)
        ck_assert(abs(hist[b] - n / 10) < 500);
    double r = attn_rng_uniform(1, 2, 3, -4.0, -2.0);
    ck_assert(r >= -4.0 && r < -2.0);
}
END_TEST

START_TEST(status_and_tensors)
{
    const char *seen[64];
    int n = 0;
    for (int s = -2100; s <= 0; s++) {
        const char *name = attn_status_name((attn_status)s);
        if (strcmp(name, "ATTN_ERR_UNKNOWN") == 0)
            continue;
        for (int j = 0; j < n; j++)
            ck_assert_str_ne(seen[j], name);
        seen[n++] = name;
    }
    ck_assert_int_ge(n, 15);
    ck_assert_uint_eq(attn_dtype_size(ATTN_BF16), 2);
    ck_assert_uint_eq(attn_dtype_size((attn_dtype)9), 0);
    attn_tensor t = attn_tensor_bhsd(NULL, ATTN_F16, 2, 5, 3, 4);
    ck_assert_int_eq(t.stride[0], 60);
    ck_assert_int_eq(t.stride[1], 4);
    ck_assert_int_eq(t.stride[2], 20);
    ck_assert_int_eq(t.stride[3], 1);
    t = attn_tensor_bshd(NULL, ATTN_F16, 2, 5, 3, 4);
    ck_assert_int_eq(t.stride[1], 12);
    ck_assert_int_eq(t.stride[2], 4);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    ck_assert_int_eq(d.window_left, -1);
    ck_assert_int_eq(d.align, ATTN_ALIGN_BOTTOM_RIGHT);
}
END_TEST

/* q, k and v interleaved in one [tokens, 3d] buffer (a fused projection) are disjoint views:
 * the backward accepts them as outputs and writes what it writes to separate buffers; views
 * whose windows overlap inside the row are still refused. */
START_TEST(interleaved_views_disjoint)
{
    enum { B = 2, S = 5, H = 2, D = 4, ROW = 3 * H * D, N = B * S * H * D };
    float q[N], k[N], v[N], out[N], lse[B * S * H], dout[N];
    float sep[3][N], fused[B * S * ROW + ROW]; /* a spare row for the wrapping view */
    for (int i = 0; i < N; i++) {
        q[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
        k[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
        v[i] = (float)((i * 3) % 17) / 17.0f - 0.5f;
        dout[i] = (float)((i * 2) % 7) / 7.0f - 0.5f;
    }
    attn_backend *be;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    attn_tensor tq = attn_tensor_bshd(q, ATTN_F32, B, S, H, D);
    attn_tensor tk = attn_tensor_bshd(k, ATTN_F32, B, S, H, D);
    attn_tensor tv = attn_tensor_bshd(v, ATTN_F32, B, S, H, D);
    attn_tensor to = attn_tensor_bshd(out, ATTN_F32, B, S, H, D);
    attn_tensor tl = attn_tensor_bshd(lse, ATTN_F32, B, S, H, 1);
    attn_tensor tg = attn_tensor_bshd(dout, ATTN_F32, B, S, H, D);
    ck_assert_int_eq(attn_sdpa_forward(be, &d, &tq, &tk, &tv, &to, &tl), ATTN_OK);
    attn_tensor g[3], f[3];
    for (int j = 0; j < 3; j++) {
        g[j] = attn_tensor_bshd(sep[j], ATTN_F32, B, S, H, D);
        f[j] = (attn_tensor){.data = fused + j * H * D, .dtype = ATTN_F32,
                             .shape = {B, S, H, D}, .stride = {S * ROW, ROW, D, 1}};
    }
    attn_sdpa_grads gs = {.dq = &g[0], .dk = &g[1], .dv = &g[2]};
    attn_sdpa_grads gf = {.dq = &f[0], .dk = &f[1], .dv = &f[2]};
    ck_assert_int_eq(attn_sdpa_backward(be, &d, &tq, &tk, &tv, &to, &tl, &tg, &gs), ATTN_OK);
    ck_assert_int_eq(attn_sdpa_backward(be, &d, &tq, &tk, &tv, &to, &tl, &tg, &gf), ATTN_OK);
    for (int t = 0; t < B * S; t++)
        for (int j = 0; j < 3; j++)
            ck_assert_mem_eq(fused + t * ROW + j * H * D, sep[j] + t * H * D,
                             H * D * sizeof(float));
    /* dk shifted by half a head into dq's window: overlapping elements. */
    f[1].data = fused + H * D / 2;
    ck_assert_int_eq(attn_sdpa_backward(be, &d, &tq, &tk, &tv, &to, &tl, &tg, &gf),
                     ATTN_ERR_ALIAS);
    /* dk shifted so its window wraps into the next row's dq: still overlapping. */
    f[1].data = fused + 2 * H * D + H * D / 2;
    ck_assert_int_eq(attn_sdpa_backward(be, &d, &tq, &tk, &tv, &to, &tl, &tg, &gf),
                     ATTN_ERR_ALIAS);
    attn_backend_close(be);
}
END_TEST

START_TEST(schedule_patterns)
{
    attn_schedule s;
    int local;
    ck_assert_int_eq(attn_schedule_preset("gemma2", &s), ATTN_OK);
    for (int l = 0; l < 8; l++) { /* HF: is_sliding = not bool(layer_idx % 2) */
        ck_assert_int_eq(attn_schedule_is_local(&s, l, &local), ATTN_OK);
        ck_assert_int_eq(local, l % 2 == 0);
    }
    ck_assert_int_eq(attn_schedule_preset("gemma3", &s), ATTN_OK);
    for (int l = 0; l < 26; l++) { /* layer i global iff i % 6 == 5 */
        ck_assert_int_eq(attn_schedule_is_local(&s, l, &local), ATTN_OK);
        ck_assert_int_eq(local, l % 6 != 5);
    }
    ck_assert_int_eq(attn_schedule_preset("rattention", &s), ATTN_OK);
    for (int l = 0; l < 12; l++) { /* [local, local, local, global] */
        ck_assert_int_eq(attn_schedule_is_local(&s, l, &local), ATTN_OK);
        ck_assert_int_eq(local, l % 4 != 3);
    }
    ck_assert_int_eq(attn_schedule_preset("nosuch", &s), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_schedule_is_local(NULL, 0, &local), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_schedule_is_local(&s, -1, &local), ATTN_ERR_INVALID_ARGUMENT);
    attn_schedule bad = {0, 0, 1, 0, 0, {0}};
    ck_assert_int_eq(attn_schedule_is_local(&bad, 0, &local), ATTN_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(schedule_kv_bytes)
{
    /* The RATTENTION paper's check (rattention.md section 4): a 40-layer model with 10 global
     * and 30 local layers, 1K window at 4K context, saves 56.25% of the KV cache. */
    attn_schedule s = {3, 1, 1, 1023, 0, {0}};
    int64_t total = 0, global = 0, b;
    for (int l = 0; l < 40; l++) {
        ck_assert_int_eq(attn_schedule_kv_bytes(&s, l, 4096, 8, 128, 128, ATTN_F16, &b), ATTN_OK);
        total += b;
        global += 4096LL * 8 * 256 * 2;
    }
    ck_assert_double_eq_tol(1.0 - (double)total / (double)global, 0.5625, 1e-12);
    /* short context: the window holds every token, no saving */
    ck_assert_int_eq(attn_schedule_kv_bytes(&s, 0, 100, 8, 128, 128, ATTN_F16, &b), ATTN_OK);
    ck_assert_int_eq(b, 100LL * 8 * 256 * 2);
    /* RATTENTION local layer: window w + 1 tokens plus an f32 2Dk x Dv state per KV head */
    ck_assert_int_eq(attn_schedule_preset("rattention", &s), ATTN_OK);
    ck_assert_int_eq(attn_schedule_kv_bytes(&s, 0, 4096, 2, 64, 64, ATTN_BF16, &b), ATTN_OK);
    ck_assert_int_eq(b, 513LL * 2 * 128 * 2 + 2LL * 128 * 64 * 4);
    ck_assert_int_eq(attn_schedule_kv_bytes(&s, 3, 4096, 2, 64, 64, ATTN_BF16, &b), ATTN_OK);
    ck_assert_int_eq(b, 4096LL * 2 * 128 * 2);
    ck_assert_int_eq(attn_schedule_kv_bytes(&s, 3, INT64_MAX / 4, 2, 64, 64, ATTN_F32, &b),
                     ATTN_ERR_OVERFLOW);
    ck_assert_int_eq(attn_schedule_kv_bytes(&s, 3, 10, 2, 64, 64, ATTN_U8, &b), ATTN_ERR_DTYPE);
    ck_assert_int_eq(attn_schedule_kv_bytes(&s, 3, 10, 0, 64, 64, ATTN_F32, &b), ATTN_ERR_SHAPE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("common");
    tcase_add_test(tc, f16_roundtrip_exhaustive);
    tcase_add_test(tc, f16_rounding);
    tcase_add_test(tc, bf16_rounding);
    tcase_add_test(tc, bulk_conversion);
    tcase_add_test(tc, rng_counter_based);
    tcase_add_test(tc, status_and_tensors);
    tcase_add_test(tc, schedule_patterns);
    tcase_add_test(tc, schedule_kv_bytes);
    tcase_add_test(tc, interleaved_views_disjoint);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
