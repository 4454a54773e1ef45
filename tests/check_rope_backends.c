/* check_rope_backends.c - every backend of this build (ref, cpu, opencl) on the same RoPE case
 * families through the shared fixture (rope_fixture.h): a sampled grid over every axis and far
 * positions, in host memory and in the backend's buffers (guard zones); in place (out = x)
 * equals out of place bit for bit, on host views and device buffers, for every dtype. Under
 * sanitizers (ATTN_TEST_QUICK=1) every fourth case runs.
 * A backend this build or machine lacks is skipped with its reason. */
#include "check_run.h"
#include "rope_fixture.h"

#include "attn_half.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int step(void)
{
    return getenv("ATTN_TEST_QUICK") ? 4 : 1;
}

/* _i = backend * 4 + family * 2 + memory mode */
START_TEST(family_on_backend)
{
    attn_backend *be = rope_fx_open(rope_fx_backends[_i / 4]);
    if (!be)
        return;
    const int far = _i / 2 % 2, device_mem = _i % 2;
    const int n = far ? rope_fx_far_count() : rope_fx_grid_count();
    /* device memory takes every other case: the same kernels, another binding path */
    for (int k = device_mem; k < n; k += step() * (1 + device_mem)) {
        const attn_rope_case c = far ? rope_fx_far(k) : rope_fx_grid(k);
        rope_fx_expect_pass(be, device_mem, &c);
    }
    attn_backend_close(be);
}
END_TEST

enum { B = 2, S = 5, H = 3, D = 10 };

/* x in host memory or in a buffer of be; out = x (in place) or a separate tensor. */
static void run_rope(attn_backend *be, int device, int in_place, attn_dtype dt,
                     const attn_rope_desc *d, const void *xin, void *result)
{
    const size_t bytes = (size_t)(B * S * H * D) * attn_dtype_size(dt);
    void *x = malloc(bytes), *o = malloc(bytes);
    memcpy(x, xin, bytes);
    attn_tensor tx = attn_tensor_bhsd(x, dt, B, S, H, D), to = tx;
    to.data = in_place ? x : o;
    attn_buffer *bx = NULL, *bo = NULL;
    if (device) {
        ck_assert_int_eq(attn_buffer_alloc(be, bytes, &bx), ATTN_OK);
        ck_assert_int_eq(attn_buffer_write(bx, 0, x, bytes), ATTN_OK);
        tx.data = NULL;
        tx.buffer = bx;
        to = tx;
        if (!in_place) {
            ck_assert_int_eq(attn_buffer_alloc(be, bytes, &bo), ATTN_OK);
            to.buffer = bo;
        }
    }
    char name[128];
    ck_assert_int_eq(attn_rope_impl_name(be, d, &tx, &to, name, sizeof name), ATTN_OK);
    ck_assert_msg(attn_rope_forward(be, d, &tx, &to) == ATTN_OK, "%s: %s", name,
                  attn_last_error());
    if (device)
        ck_assert_int_eq(attn_buffer_read(in_place ? bx : bo, 0, result, bytes), ATTN_OK);
    else
        memcpy(result, in_place ? x : o, bytes);
    attn_buffer_free(bx);
    attn_buffer_free(bo);
    free(x);
    free(o);
}

/* In place gives the very bits of out of place, on every backend, dtype and memory. */
START_TEST(in_place_equals_out_of_place)
{
    attn_backend *be = rope_fx_open(rope_fx_backends[_i]);
    if (!be)
        return;
    static const attn_dtype dts[] = {ATTN_F32, ATTN_F16, ATTN_BF16};
    uint16_t xin[B * S * H * D * 2], a[B * S * H * D * 2], b[B * S * H * D * 2];
    for (int t = 0; t < 3; t++)
        for (int device = 0; device < 2; device++) {
            for (int e = 0; e < B * S * H * D; e++)
                attn_store_f64(xin, dts[t], e, (double)((e * 37) % 23) / 11.0 - 1.0);
            attn_rope_desc d = attn_rope_desc_default();
            d.layout = device ? ATTN_ROPE_INTERLEAVED : ATTN_ROPE_HALF;
            d.rot_dim = 6;
            d.offset = 100000;
            run_rope(be, device, 0, dts[t], &d, xin, a);
            run_rope(be, device, 1, dts[t], &d, xin, b);
            ck_assert_msg(memcmp(a, b, (size_t)(B * S * H * D) * attn_dtype_size(dts[t])) == 0,
                          "%s %s device=%d: in place differs", rope_fx_backends[_i],
                          attn_dtype_name(dts[t]), device);
        }
    attn_backend_close(be);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rope_backends");
    TCase *tc = tcase_create("families");
    tcase_set_timeout(tc, 1200);
    tcase_add_loop_test(tc, family_on_backend, 0, 4 * ROPE_FX_N_BACKENDS);
    tcase_add_loop_test(tc, in_place_equals_out_of_place, 0, ROPE_FX_N_BACKENDS);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
