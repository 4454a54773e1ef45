/* check_cpu.c - the cpu backend itself, whatever the op: its options and describe line, and the
 * choice of BLIS's kernel set, which must leave the process environment exactly as it was
 * (BLIS_ARCH_TYPE unset, numeric, a name, an id BLIS would abort on). One small call through
 * the shared SDPA fixture makes BLIS run. The vectorised stores and the packers' AVX-512
 * transposition against their definitions. The memo of constant tables (sharing, replacement,
 * private tables, many threads). */
#include "sdpa_fixture.h"

#include <blis.h>
#include "check_run.h"
#include "attn_half.h"
#include "cpu/cpu_internal.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_options_describe)
{
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("cpu", "threads=0", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("cpu", "threads=x", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("cpu", "colour=red", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("cpu", "simd=avx1024", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("cpu", "threads", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("cpu", "threads=3", &be), ATTN_OK);
    const char *d = attn_backend_describe(be);
    ck_assert_msg(strstr(d, "BLIS") && strstr(d, "kernels") && strstr(d, "3 threads"),
                  "describe: %s", d);
    attn_backend_close(be);
}
END_TEST

/* ---- the process environment ---- */

extern char **environ;

/* A copy of the whole environment. */
static char **env_snapshot(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **copy = calloc(n + 1, sizeof *copy);
    ck_assert_ptr_nonnull(copy);
    for (size_t i = 0; i < n; i++)
        ck_assert_ptr_nonnull(copy[i] = strdup(environ[i]));
    return copy;
}

static void env_expect(char **before, const char *when)
{
    size_t i = 0;
    for (; before[i] && environ[i]; i++)
        ck_assert_msg(strcmp(before[i], environ[i]) == 0, "%s: '%s' became '%s'", when,
                      before[i], environ[i]);
    ck_assert_msg(!before[i] && !environ[i], "%s: the environment %s '%s'", when,
                  before[i] ? "lost" : "gained", before[i] ? before[i] : environ[i]);
}

static void env_free(char **env)
{
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

/* Opens the cpu backend (BLIS_ARCH_TYPE = value, NULL: unset) and runs a small call: the
 * environment must be exactly as before. BLIS is set up once per process, so each case needs
 * a fresh one (Check's fork mode); returns 0 without it. */
static int open_with_arch(const char *test, const char *value, attn_backend **be,
                          attn_status *st)
{
    const char *fork = getenv("CK_FORK");
    if (fork && strcmp(fork, "no") == 0) {
        printf("SKIPPED %s: needs CK_FORK mode\n", test);
        return 0;
    }
    if (value)
        setenv("BLIS_ARCH_TYPE", value, 1);
    else
        unsetenv("BLIS_ARCH_TYPE");
    char **before = env_snapshot();
    *be = NULL;
    *st = attn_backend_open("cpu", NULL, be);
    env_expect(before, "after opening the cpu backend");
    if (*st == ATTN_OK) {
        attn_sdpa_case c = sdpa_fx_case(70, 130, 32); /* the tiled path: BLIS runs */
        const sdpa_fx x = {.backend = "cpu"};
        sdpa_fx_expect_pass(&x, &c);
        env_expect(before, "after a call");
    }
    const char *now = getenv("BLIS_ARCH_TYPE");
    if (value)
        ck_assert_str_eq(now, value);
    else
        ck_assert_ptr_null(now);
    env_free(before);
    return 1;
}

START_TEST(test_env_unset)
{
    attn_backend *be;
    attn_status st;
    if (!open_with_arch(__func__, NULL, &be, &st))
        return;
    ck_assert_msg(st == ATTN_OK, "%s", attn_last_error());
    const char *d = attn_backend_describe(be);
    ck_assert_msg(strstr(d, "(auto-selected)") || strstr(d, "(BLIS detection)"), "%s", d);
    attn_backend_close(be);
}
END_TEST

/* A user's numeric choice is used as is: generic runs on every CPU and is never auto-selected. */
START_TEST(test_env_numeric)
{
    char num[16];
    snprintf(num, sizeof num, "%d", (int)BLIS_ARCH_GENERIC);
    attn_backend *be;
    attn_status st;
    if (!open_with_arch(__func__, num, &be, &st))
        return;
    ck_assert_msg(st == ATTN_OK, "%s", attn_last_error());
    char want[64];
    snprintf(want, sizeof want, "kernels generic (from BLIS_ARCH_TYPE=%s)", num);
    ck_assert_msg(strstr(attn_backend_describe(be), want), "%s", attn_backend_describe(be));
    attn_backend_close(be);
}
END_TEST

/* An id BLIS would abort on: a status with the reason, the process lives on, nothing changed. */
START_TEST(test_env_invalid)
{
    attn_backend *be;
    attn_status st;
    if (!open_with_arch(__func__, "99", &be, &st))
        return;
    ck_assert_int_eq(st, ATTN_ERR_BACKEND);
    ck_assert_ptr_null(be);
    ck_assert_msg(strstr(attn_last_error(), "BLIS_ARCH_TYPE=99") &&
                      strstr(attn_last_error(), "would abort"),
                  "%s", attn_last_error());
    ck_assert_int_eq(attn_backend_open("cpu", NULL, &be), ATTN_ERR_BACKEND); /* every time */
}
END_TEST

/* A name: BLIS reads it as 0 (skx). A warning where this CPU runs skx, else a refusal. */
START_TEST(test_env_name)
{
    attn_backend *be;
    attn_status st;
    if (!open_with_arch(__func__, "zen3", &be, &st))
        return;
    if (st == ATTN_OK) {
        const char *d = attn_backend_describe(be);
        ck_assert_msg(strstr(d, "kernels skx") && strstr(d, "warning: BLIS_ARCH_TYPE=zen3 is "
                                                            "not a number"),
                      "%s", d);
        attn_backend_close(be);
    } else {
        ck_assert_int_eq(st, ATTN_ERR_BACKEND);
        ck_assert_msg(strstr(attn_last_error(), "this CPU lacks"), "%s", attn_last_error());
    }
}
END_TEST

/* The cpu backend's vectorised f16/bf16 stores round exactly as the library's reference
 * conversions (attn_f32_to_f16 / attn_f32_to_bf16): every 65521st bit pattern (all exponents,
 * signs and a spread of mantissas) plus the edges (zeros, the subnormal and normal limits,
 * the ties into infinity, Inf, NaN). */
START_TEST(test_store_rounding)
{
    enum { N = 65600 + 16 };
    static float x[N];
    static uint16_t h[N], b[N];
    static const uint32_t edge[] = {0x00000000u, 0x80000000u, 0x33000000u, 0x33000001u,
                                    0x387fc000u, 0x387fe000u, 0x38800000u, 0x477fefffu,
                                    0x477ff000u, 0x477fffffu, 0x47800000u, 0x7f800000u,
                                    0xff800000u, 0x7fc00001u, 0xffa00000u, 0x3f800001u};
    int64_t n = 0;
    for (uint64_t u = 0; u <= 0xffffffffu; u += 65521u)
        x[n++] = attn_bits_f32((uint32_t)u);
    for (size_t k = 0; k < sizeof edge / sizeof edge[0]; k++)
        x[n++] = attn_bits_f32(edge[k]);
    attn_cpu_row_from_f32(x, n, ATTN_F16, h);
    attn_cpu_row_from_f32(x, n, ATTN_BF16, b);
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(h[i] == attn_f32_to_f16(x[i]), "f16 of 0x%08x: 0x%04x, want 0x%04x",
                      attn_f32_bits(x[i]), h[i], attn_f32_to_f16(x[i]));
        ck_assert_msg(b[i] == attn_f32_to_bf16(x[i]), "bf16 of 0x%08x: 0x%04x, want 0x%04x",
                      attn_f32_bits(x[i]), b[i], attn_f32_to_bf16(x[i]));
    }
}
END_TEST

/* The AVX-512 transposition of the packers against the portable loop's definition, for the
 * micro-kernels' lane counts and others, every row count up to the lanes (zero padding) and
 * column counts around the 16-column blocks. */
/* ---- the memo of constant tables ----------------------------------------------------------- */

typedef struct memo_src {
    int value, *builds;
} memo_src;

static void memo_build(void *buf, const void *ctx)
{
    const memo_src *src = ctx;
    ((int *)buf)[0] = src->value;
    ((int *)buf)[1] = -src->value;
    (*src->builds)++;
}

/* The table of key k (an int), built from value. */
static const int *memo_get(attn_cpu_memo *m, int k, int value, int *builds, attn_cpu_memo_hold *h)
{
    const memo_src src = {value, builds};
    const int *t = attn_cpu_memo_get(m, &k, sizeof k, 2 * sizeof(int), memo_build, &src, h);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* Built once per key and shared; an entry in use is never replaced (a key that finds every
 * entry held gets a private table); the least recently used free entry goes first; a key too
 * long for an entry, or no memo, gets a private table. ASan checks that nothing leaks. */
START_TEST(test_memo)
{
    attn_cpu_memo *m = attn_cpu_memo_new();
    ck_assert_ptr_nonnull(m);
    int builds = 0;
    attn_cpu_memo_hold h[6];
    const int *a = memo_get(m, 1, 10, &builds, &h[0]);
    const int *b = memo_get(m, 1, 99, &builds, &h[1]); /* a hit: value 99 is never used */
    ck_assert_ptr_eq(a, b);
    ck_assert_int_eq(a[0], 10);
    ck_assert_int_eq(builds, 1);
    for (int k = 2; k <= 4; k++) /* four entries held: keys 1..4 */
        ck_assert_int_eq(memo_get(m, k, 10 * k, &builds, &h[k])[1], -10 * k);
    const int *p = memo_get(m, 5, 50, &builds, &h[5]); /* none free: a private table */
    ck_assert_ptr_nonnull(h[5].own);
    ck_assert_ptr_null(h[5].entry);
    ck_assert_int_eq(p[0], 50);
    ck_assert_int_eq(builds, 5);
    for (int k = 0; k < 6; k++)
        attn_cpu_memo_release(m, &h[k]);
    /* all free now; key 2 is the least recently used: key 6 replaces it, 1 stays */
    attn_cpu_memo_release(m, (memo_get(m, 3, 0, &builds, &h[0]), &h[0]));
    attn_cpu_memo_release(m, (memo_get(m, 4, 0, &builds, &h[0]), &h[0]));
    attn_cpu_memo_release(m, (memo_get(m, 1, 0, &builds, &h[0]), &h[0]));
    ck_assert_int_eq(builds, 5);
    attn_cpu_memo_release(m, (memo_get(m, 6, 60, &builds, &h[0]), &h[0]));
    ck_assert_int_eq(builds, 6);
    ck_assert_int_eq(memo_get(m, 1, 0, &builds, &h[0])[0], 10);
    attn_cpu_memo_release(m, &h[0]);
    ck_assert_int_eq(builds, 6);
    ck_assert_int_eq(memo_get(m, 2, 20, &builds, &h[0])[0], 20); /* rebuilt */
    attn_cpu_memo_release(m, &h[0]);
    ck_assert_int_eq(builds, 7);
    unsigned char longkey[ATTN_CPU_MEMO_KEY_MAX + 1] = {0};
    const memo_src src = {7, &builds};
    const int *t = attn_cpu_memo_get(m, longkey, sizeof longkey, 8, memo_build, &src, &h[0]);
    ck_assert(t && h[0].own && t[0] == 7);
    attn_cpu_memo_release(m, &h[0]);
    t = attn_cpu_memo_get(NULL, longkey, 4, 8, memo_build, &src, &h[0]);
    ck_assert(t && h[0].own && t[0] == 7);
    attn_cpu_memo_release(NULL, &h[0]);
    /* many threads on few keys: every table read is the one its key was built with */
    int bad = 0;
#pragma omp parallel for num_threads(4) reduction(+ : bad)
    for (int i = 0; i < 4000; i++) {
        int n = 0;
        attn_cpu_memo_hold hh;
        const int k = 1000 + i % 7; /* keys the test has not used before */
        const memo_src s = {100 + k, &n};
        const int *x = attn_cpu_memo_get(m, &k, sizeof k, 2 * sizeof(int), memo_build, &s, &hh);
        bad += !x || x[0] != 100 + k || x[1] != -100 - k;
        attn_cpu_memo_release(m, &hh);
    }
    ck_assert_int_eq(bad, 0);
    attn_cpu_memo_free(m);
}
END_TEST

START_TEST(test_transpose_avx512)
{
#if defined(__GNUC__) && defined(__x86_64__)
    if (attn_cpu_simd_level() < ATTN_CPU_SIMD_AVX512) {
        printf("test_transpose_avx512: skipped, the CPU has no AVX-512F\n");
        return;
    }
    enum { LD = 150, ROWS = 48 };
    static float x[ROWS * LD], panel[150 * 48 + 16];
    for (int i = 0; i < ROWS * LD; i++)
        x[i] = (float)i + 0.25f;
    static const int64_t lanes[] = {6, 12, 16, 32, 48}, cols[] = {1, 15, 16, 17, 64, 128, 130};
    for (size_t a = 0; a < sizeof lanes / sizeof lanes[0]; a++)
        for (size_t b = 0; b < sizeof cols / sizeof cols[0]; b++)
            for (int64_t np = 0; np <= lanes[a]; np++) {
                const int64_t nl = lanes[a], nc = cols[b];
                for (int64_t i = 0; i < nl * nc + 16; i++)
                    panel[i] = -1.0f;
                attn_cpu_transpose_avx512(x, LD, np, nc, nl, panel);
                for (int64_t c = 0; c < nc; c++)
                    for (int64_t r = 0; r < nl; r++) {
                        float want = r < np ? x[r * LD + c] : 0.0f;
                        ck_assert_msg(panel[c * nl + r] == want,
                                      "lanes %lld cols %lld rows %lld: (%lld, %lld) = %g",
                                      (long long)nl, (long long)nc, (long long)np,
                                      (long long)r, (long long)c, panel[c * nl + r]);
                    }
                for (int64_t i = nl * nc; i < nl * nc + 16; i++)
                    ck_assert_msg(panel[i] == -1.0f, "written past the panel");
            }
#endif
}
END_TEST

static Suite *cpu_suite(void)
{
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("backend");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_options_describe);
    tcase_add_test(tc, test_env_unset);
    tcase_add_test(tc, test_env_numeric);
    tcase_add_test(tc, test_env_invalid);
    tcase_add_test(tc, test_env_name);
    tcase_add_test(tc, test_store_rounding);
    tcase_add_test(tc, test_transpose_avx512);
    tcase_add_test(tc, test_memo);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(cpu_suite());
}
