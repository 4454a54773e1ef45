/* check_sdpa_cpu.c - what only the cpu backend's SDPA has, through the shared fixture
 * (sdpa_fixture.h; the case families every backend runs are in check_sdpa_backends.c): the
 * decode kernels on each SIMD kernel set, which implementation runs (the path rule and the forced
 * paths), results independent of the
 * thread count, non-finite values in visible and hidden keys, the AVX-512 softmax step against
 * the portable one (the backend's own options and environment: check_cpu.c). */
#include "sdpa_fixture.h"

#include "check_run.h"
#include "cpu/cpu_sdpa.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The decode kernel sets: the widest the CPU has (AVX-512 or AVX2), at most AVX2, portable. */
static const char *const simd_sets[] = {"simd=on", "simd=avx2", "simd=off"};
#define N_SIMD_SETS 3

/* The decode family on every kernel set. */
START_TEST(test_decode_kernels)
{
    const sdpa_fx x = {.backend = "cpu", .options = simd_sets[_i]};
    for (int n = 0; n < sdpa_fx_decode_count(); n++) {
        const attn_sdpa_case c = sdpa_fx_decode(n);
        sdpa_fx_expect_pass(&x, &c);
    }
}
END_TEST

/* The kernel set this CPU should get by default (what the describe line must say). */
static const char *widest_set(void)
{
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return __builtin_cpu_supports("avx512f") ? "avx512" : "avx2";
#endif
    return "portable";
}

/* Which decode kernels run: the describe line names the set of each option (the default: the
 * widest the CPU has; simd=avx2 never AVX-512; simd=off the portable one) and the decode
 * implementation's name follows it; prefill names the tiles. */
START_TEST(test_decode_impl_name)
{
    attn_sdpa_case c = sdpa_fx_case(1, 500, 64);
    for (int i = 0; i < N_SIMD_SETS; i++) {
        const sdpa_fx x = {.backend = "cpu", .options = simd_sets[i]};
        attn_backend *be = NULL;
        ck_assert_int_eq(attn_backend_open("cpu", x.options, &be), ATTN_OK);
        char want[64], set[16] = "";
        sscanf(strstr(attn_backend_describe(be), "decode kernels ") + 15, "%15[a-z0-9]", set);
        attn_backend_close(be);
        const char *expect = i == 0   ? widest_set()
                             : i == 2 ? "portable"
                             : strcmp(widest_set(), "portable") == 0 ? "portable"
                                                                     : "avx2";
        ck_assert_str_eq(set, expect);
        snprintf(want, sizeof want, "cpu:decode_splitkv_%s",
                 strcmp(set, "portable") == 0 ? "c" : set);
        const attn_result r = sdpa_fx_run(&x, &c);
        ck_assert_str_eq(r.impl, want);
    }
    c.sq = 100;
    const sdpa_fx x = {.backend = "cpu"};
    const attn_result r = sdpa_fx_run(&x, &c);
    ck_assert_msg(strncmp(r.impl, "cpu:flash_ukr", 13) == 0, "%s", r.impl);
}
END_TEST

/* ---- non-finite inputs (the reference decides: a visible key takes part, a hidden one not) -- */

/* Decode: key 150 (NaN at d 5) is visible to query 1 only, key 151 (Inf at d 6) to none. */
static void plant_decode(attn_conf_data *d, void *ctx)
{
    const int64_t skv = *(const int64_t *)ctx;
    (void)skv;
    sdpa_fx_set(d, "mask_bool", 0, 0, 0, 150, 0);
    sdpa_fx_set(d, "mask_bool", 0, 0, 0, 151, 0);
    sdpa_fx_set(d, "mask_bool", 0, 1, 0, 150, 1);
    sdpa_fx_set(d, "mask_bool", 0, 1, 0, 151, 0);
    sdpa_fx_set(d, "v", 0, 150, 0, 5, NAN);
    sdpa_fx_set(d, "v", 0, 151, 0, 6, INFINITY);
}

START_TEST(test_decode_hidden_nonfinite_v)
{
    attn_sdpa_case c = sdpa_fx_case(2, 300, 32);
    c.mask_bool = ATTN_MDIM_B | ATTN_MDIM_S;
    const sdpa_fx x = {.backend = "cpu", .options = simd_sets[_i],
                       .inputs = plant_decode, .inputs_ctx = &c.skv};
    sdpa_fx_expect_pass(&x, &c);
}
END_TEST

/* Causal prefill (top-left): NaN in key 1 makes every row from 1 on NaN (and its LSE). */
static void plant_nan_key(attn_conf_data *d, void *ctx)
{
    (void)ctx;
    sdpa_fx_set(d, "k", 0, 1, 0, 3, NAN);
}

/* Non-finite V behind keys a row cannot see, inside a partly visible tile (0 * inf is NaN). */
static void plant_hidden_v(attn_conf_data *d, void *ctx)
{
    (void)ctx;
    sdpa_fx_set(d, "v", 0, 150, 0, 5, NAN);
    sdpa_fx_set(d, "v", 0, 151, 0, 6, INFINITY);
}

START_TEST(test_nonfinite_prefill)
{
    static const char *const paths[] = {"path=auto", "path=tiled", "path=sgemm"};
    for (int64_t sq = 2; sq <= 200; sq += 198) {
        attn_sdpa_case c = sdpa_fx_case(sq, 300, 32);
        c.causal = 1;
        c.align = ATTN_ALIGN_TOP_LEFT;
        const sdpa_fx nan_key = {.backend = "cpu", .options = paths[_i], .inputs = plant_nan_key};
        sdpa_fx_expect_pass(&nan_key, &c);
        const sdpa_fx hidden = {.backend = "cpu", .options = paths[_i], .inputs = plant_hidden_v};
        sdpa_fx_expect_pass(&hidden, &c);
        c.wl = 100; /* keys 150, 151 visible to rows 150..251 only */
        sdpa_fx_expect_pass(&hidden, &c);
    }
}
END_TEST

/* The decode path's items on the micro-kernel (group * Sq >= 64 rows): a grid of groups, key
 * counts (tiles of 256 keys and chunk edges), head dims with tails, KV dtypes, causal
 * alignments and windows (the band masked per lane: lanes are rows of different heads and
 * positions), then non-finite V rows seen by some rows and hidden from others. */
START_TEST(test_decode_ukr)
{
    static const int64_t dims[][2] = {{128, 128}, {36, 20}, {64, 100}};
    static const attn_dtype dts[] = {ATTN_F32, ATTN_F16, ATTN_BF16};
    const sdpa_fx x = {.backend = "cpu", .options = _i ? "path=decode,simd=off" : "path=decode"};
    for (int n = 0; n < 24; n++) {
        attn_sdpa_case c = sdpa_fx_case(n % 2 ? 40 : 100, n % 4 < 2 ? 300 : 1500, 64);
        c.hkv = n % 3 == 0 ? 1 : 2;
        c.hq = c.hkv * (n % 3 == 2 ? 8 : 2);
        c.dk = dims[n % 3][0];
        c.dv = dims[n % 3][1];
        c.dt_kv = dts[(n / 3) % 3];
        c.causal = n % 4 != 3;
        c.align = n % 8 < 4 ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
        c.wl = n % 5 == 1 ? 100 : -1;
        sdpa_fx_expect_pass(&x, &c);
    }
    attn_sdpa_case c = sdpa_fx_case(40, 300, 32);
    c.causal = 1; /* bottom-right: row i sees keys up to i + 260 */
    const sdpa_fx hidden = {.backend = "cpu", .options = x.options, .inputs = plant_hidden_v};
    sdpa_fx_expect_pass(&hidden, &c); /* keys 150, 151 visible to every row: NaN rows */
    c.wl = 120; /* row i sees [i + 140, i + 260]: key 150 up to row 10, key 151 up to 11 */
    sdpa_fx_expect_pass(&hidden, &c);
    c.wl = 100; /* hidden from every row: finite */
    sdpa_fx_expect_pass(&hidden, &c);
}
END_TEST

/* ---- thread counts -------------------------------------------------------------------------- */

typedef struct copy {
    unsigned char out[1 << 20], lse[1 << 14];
    size_t n_out, n_lse;
} copy;

/* Keep the bytes of out (contiguous BSHD) and lse (contiguous [B, Hq, Sq]). */
static void keep(const attn_tensor *const *outs, int n, void *ctx)
{
    copy *c = ctx;
    const attn_tensor *o = outs[0];
    c->n_out = (size_t)(o->shape[0] * o->stride[0]) * attn_dtype_size(o->dtype);
    ck_assert_uint_le(c->n_out, sizeof c->out);
    memcpy(c->out, o->data, c->n_out);
    c->n_lse = 0;
    if (n > 1 && outs[1]) {
        c->n_lse = (size_t)(outs[1]->shape[0] * outs[1]->stride[0]) * sizeof(float);
        ck_assert_uint_le(c->n_lse, sizeof c->lse);
        memcpy(c->lse, outs[1]->data, c->n_lse);
    }
}

/* Each work item is computed by one thread with a fixed order of operations, so the tiled path
 * gives bitwise-identical results for thread counts with the same tile sizes (this shape has 8
 * work items of 256 rows, enough to keep Br at 256 for 1 and 2 threads). */
static void expect_same_threads(const attn_sdpa_case *c)
{
    static copy one, two;
    const sdpa_fx x1 = {.backend = "cpu", .options = "threads=1", .outputs = keep,
                        .outputs_ctx = &one};
    const sdpa_fx x2 = {.backend = "cpu", .options = "threads=2", .outputs = keep,
                        .outputs_ctx = &two};
    sdpa_fx_expect_pass(&x1, c);
    sdpa_fx_expect_pass(&x2, c);
    ck_assert_uint_eq(one.n_out, two.n_out);
    ck_assert_msg(memcmp(one.out, two.out, one.n_out) == 0, "threads=1 and 2 differ");
    ck_assert(one.n_lse == two.n_lse && memcmp(one.lse, two.lse, one.n_lse) == 0);
}

/* The decode path splits the KV range by thread count: there each count must pass on its own. */
START_TEST(test_threads)
{
    attn_sdpa_case c = sdpa_fx_case(300, 300, 64);
    c.causal = 1;
    c.hq = 4;
    expect_same_threads(&c);
    c.dt_kv = ATTN_F16;
    expect_same_threads(&c);
    attn_sdpa_case d = sdpa_fx_case(2, 3000, 64);
    d.hq = 8;
    d.hkv = 2;
    static const char *const counts[] = {"threads=1", "threads=2", "threads=3"};
    for (int t = 0; t < 3; t++) {
        const sdpa_fx x = {.backend = "cpu", .options = counts[t]};
        sdpa_fx_expect_pass(&x, &d);
    }
}
END_TEST

/* The path rule (docs/cpu.md), on two threads: the decode path up to Sq 16 whatever the keys,
 * up to Sq 64 when the keys split into a chunk per thread, up to Sq 128 when the group's rows
 * (group * Sq) reach 64, its items run on the micro-kernel and there are 8 keys per query;
 * else the tiles on BLIS's micro-kernel; path= forces one (sgemm: the tiles on sgemm calls).
 * A mask sends the tiles to sgemm calls (their row steps). */
START_TEST(test_path_rule)
{
    static const struct {
        int64_t sq, skv, hq;
        const char *options, *want;
    } rows[] = {
        {16, 300, 2, "threads=2", "cpu:decode_splitkv_"},    /* few rows: one item still wins */
        {17, 300, 2, "threads=2", "cpu:flash_ukr"},          /* one key chunk for two threads */
        {17, 4096, 2, "threads=2", "cpu:decode_splitkv_"},   /* four chunks */
        {31, 4096, 2, "threads=2", "cpu:decode_splitkv_"},   /* 62 rows: the SIMD kernels */
        {32, 4096, 2, "threads=2", "cpu:decode_splitkv_ukr"}, /* 64 rows: the micro-kernel */
        {64, 4096, 1, "threads=2", "cpu:decode_splitkv_ukr"},
        {128, 4096, 2, "threads=2", "cpu:decode_splitkv_ukr"},
        {129, 4096, 2, "threads=2", "cpu:flash_ukr"},
        {17, 300, 2, "threads=1", "cpu:decode_splitkv_"},    /* one chunk is one per thread */
        {65, 520, 1, "threads=1", "cpu:decode_splitkv_ukr"},  /* 8 keys per query */
        {65, 519, 1, "threads=1", "cpu:flash_ukr"},           /* fewer */
        {1, 300, 2, "threads=2,path=tiled", "cpu:flash_ukr"},
        {1, 300, 2, "threads=2,path=sgemm", "cpu:flash_blis"},
        {200, 300, 2, "threads=2,path=decode", "cpu:decode"},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        attn_sdpa_case c = sdpa_fx_case(rows[k].sq, rows[k].skv, 64);
        c.hq = rows[k].hq;
        const sdpa_fx x = {.backend = "cpu", .options = rows[k].options};
        const attn_result r = sdpa_fx_run(&x, &c);
        sdpa_fx_assert_pass(&x, &r);
        ck_assert_msg(strncmp(r.impl, rows[k].want, strlen(rows[k].want)) == 0,
                      "Sq %lld Skv %lld Hq %lld %s: %s", (long long)rows[k].sq,
                      (long long)rows[k].skv, (long long)rows[k].hq, rows[k].options, r.impl);
        if (rows[k].sq * rows[k].hq < 64) /* group * Sq: fewer rows than the micro-kernel's */
            ck_assert_msg(!strstr(r.impl, "ukr") || strstr(r.impl, "flash"), "%s", r.impl);
    }
    attn_sdpa_case m = sdpa_fx_case(200, 300, 64);
    m.mask_bool = ATTN_MDIM_S;
    const sdpa_fx x = {.backend = "cpu"};
    const attn_result r = sdpa_fx_run(&x, &m);
    sdpa_fx_assert_pass(&x, &r);
    ck_assert_msg(strncmp(r.impl, "cpu:flash_blis", 14) == 0, "%s", r.impl);
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("cpu", "path=fast", &be), ATTN_ERR_BACKEND);
    ck_assert_ptr_nonnull(strstr(attn_last_error(), "auto, decode, tiled or sgemm"));
}
END_TEST

/* Each path computes every shape: the window and mask families on the decode path whatever
 * Sq, the edges family (tile boundaries) and the windows on both kinds of tiles whatever Sq,
 * the micro-kernel tiles also with the portable softmax step (simd=off). */
static void family_passes(int (*count)(void), attn_sdpa_case (*get)(int), const sdpa_fx *x)
{
    for (int n = 0; n < count(); n++) {
        const attn_sdpa_case c = get(n);
        sdpa_fx_expect_pass(x, &c);
    }
}

START_TEST(test_forced_paths)
{
    const sdpa_fx dec = {.backend = "cpu", .options = "path=decode"};
    const sdpa_fx tiles[3] = {{.backend = "cpu", .options = "path=tiled"},
                              {.backend = "cpu", .options = "path=sgemm"},
                              {.backend = "cpu", .options = "path=tiled,simd=off"}};
    family_passes(sdpa_fx_windows_count, sdpa_fx_windows, &dec);
    family_passes(sdpa_fx_masks_count, sdpa_fx_masks, &dec);
    family_passes(sdpa_fx_edges_count, sdpa_fx_edges, &dec);
    for (int t = 0; t < 3; t++) {
        family_passes(sdpa_fx_decode_count, sdpa_fx_decode, &tiles[t]);
        family_passes(sdpa_fx_edges_count, sdpa_fx_edges, &tiles[t]);
        family_passes(sdpa_fx_windows_count, sdpa_fx_windows, &tiles[t]);
    }
}
END_TEST

/* The AVX-512 online-softmax step of a score panel against the portable one, on panels with
 * hidden keys (-inf), NaN and Inf logits, lanes that see nothing yet, running maxima above and
 * below the panel's, and very negative logits (underflow to +0): the same maxima, hidden keys
 * marked -0 in both, NaN where the portable step has NaN, and the probabilities, rescale
 * factors and sums within a few ulp (both exps are within 2 ulp of exp). */
static int near_ulp(float a, float b, float ulps)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (a == b)
        return attn_f32_bits(a) == attn_f32_bits(b) || a != 0.0f;
    return fabsf(a - b) <= ulps * fabsf(b) * 0x1p-23f;
}

START_TEST(test_softmax_panel_avx512)
{
#if defined(__GNUC__) && defined(__x86_64__)
    if (attn_cpu_simd_level() < ATTN_CPU_SIMD_AVX512) {
        printf("test_softmax_panel_avx512: skipped, the CPU has no AVX-512F\n");
        return;
    }
    enum { LQ = 32, NK = 37 };
    static float s0[NK * LQ] __attribute__((aligned(64))), s1[NK * LQ] __attribute__((aligned(64)));
    float m0[LQ], m1[LQ], l0[LQ], l1[LQ], a0[LQ], a1[LQ];
    uint32_t x = 12345u;
    for (int j = 0; j < NK * LQ; j++) {
        x = x * 1664525u + 1013904223u;
        int q = j % LQ, kind = (int)(x >> 24) % 23;
        float v = ((float)(x >> 8) / 16777216.0f - 0.5f) * 40.0f;
        if (q == 3 || kind == 0)
            v = -INFINITY; /* lane 3 sees nothing */
        else if (q == 5 && kind < 6)
            v = NAN;
        else if (q == 7 && kind == 1)
            v = INFINITY;
        else if (q == 9)
            v -= 150.0f; /* exp underflows against the running max */
        s0[j] = s1[j] = v;
    }
    for (int q = 0; q < LQ; q++) {
        m0[q] = m1[q] = q % 4 == 0 ? -INFINITY : (float)(q - 16);
        l0[q] = l1[q] = q % 4 == 0 ? 0.0f : 1.5f;
    }
    m0[9] = m1[9] = 10.0f;
    attn_cpu_softmax_panel(s0, NK, LQ, m0, l0, a0);
    attn_cpu_softmax_panel_avx512(s1, NK, LQ, m1, l1, a1);
    for (int q = 0; q < LQ; q++) {
        ck_assert_msg(attn_f32_bits(m0[q]) == attn_f32_bits(m1[q]), "m of lane %d", q);
        ck_assert_msg(near_ulp(a1[q], a0[q], 4), "alpha of lane %d: %a vs %a", q, a1[q], a0[q]);
        ck_assert_msg(near_ulp(l1[q], l0[q], 16), "l of lane %d: %a vs %a", q, l1[q], l0[q]);
    }
    for (int j = 0; j < NK * LQ; j++) {
        ck_assert_msg(near_ulp(s1[j], s0[j], 4), "p %d: %a vs %a", j, s1[j], s0[j]);
        ck_assert_msg(attn_cpu_p_hidden(s1[j]) == attn_cpu_p_hidden(s0[j]), "hidden mark %d", j);
    }
#endif
}
END_TEST

/* The partial value panel's product on AVX-512 against the plain sum, for every dim count below
 * 16, one and two 16-lane query groups, key counts around the unrolled steps, accumulating onto
 * what o held; the products are exact in double and within a few ulp of the float sums. */
START_TEST(test_pv_tail_avx512)
{
#if defined(__GNUC__) && defined(__x86_64__)
    if (attn_cpu_simd_level() < ATTN_CPU_SIMD_AVX512) {
        printf("test_pv_tail_avx512: skipped, the CPU has no AVX-512F\n");
        return;
    }
    enum { LQ = 32, NK = 37, LK = 16 };
    static float s[NK * LQ] __attribute__((aligned(64))), v[NK * LK], o[LK * LQ];
    for (int j = 0; j < NK * LQ; j++)
        s[j] = (float)((j * 37) % 101) / 64.0f - 0.75f;
    for (int j = 0; j < NK * LK; j++)
        v[j] = (float)((j * 53) % 89) / 32.0f - 1.25f;
    for (int64_t lq = 16; lq <= LQ; lq += 16)
        for (int64_t nd = 1; nd < LK; nd++)
            for (int64_t nk = 0; nk <= NK; nk += 9) {
                for (int i = 0; i < LK * LQ; i++)
                    o[i] = (float)i / 8.0f;
                attn_cpu_pv_tail_avx512(s, nk, lq, v, LK, nd, o);
                for (int64_t d = 0; d < LK; d++)
                    for (int64_t q = 0; q < lq; q++) {
                        double want = (double)(d * lq + q) / 8.0, mag = fabs(want);
                        for (int64_t j = 0; d < nd && j < nk; j++) {
                            want += (double)s[j * lq + q] * v[j * LK + d];
                            mag += fabs((double)s[j * lq + q] * v[j * LK + d]);
                        }
                        ck_assert_msg(fabs(o[d * lq + q] - want) <= 1e-6 * mag,
                                      "lq %lld nd %lld nk %lld (%lld, %lld): %g vs %g",
                                      (long long)lq, (long long)nd, (long long)nk, (long long)d,
                                      (long long)q, o[d * lq + q], want);
                    }
            }
#endif
}
END_TEST

static Suite *cpu_suite(void)
{
    Suite *s = suite_create("sdpa_cpu");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_decode_kernels, 0, N_SIMD_SETS);
    tcase_add_test(tc, test_decode_impl_name);
    tcase_add_test(tc, test_path_rule);
    tcase_add_test(tc, test_forced_paths);
    tcase_add_loop_test(tc, test_decode_hidden_nonfinite_v, 0, N_SIMD_SETS);
    tcase_add_loop_test(tc, test_nonfinite_prefill, 0, 3);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_softmax_panel_avx512);
    tcase_add_test(tc, test_pv_tail_avx512);
    tcase_add_loop_test(tc, test_decode_ukr, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(cpu_suite());
}
