/* check_conform.c - the conformance tool itself: case names round-trip, the --quick list
 * passes on the ref and cpu backends, deliberately corrupted results (a perturbed element, an
 * unwritten element, a write into the guard zone, a nonzero masked row, a wrong LSE) are
 * FAILED, and the command's exit status and JSON file say so. */
#include "attn_cases.h"
#include "attn_cmds.h"
#include "attn_half.h"
#include "attn_report.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- names ---------------------------------------------------------------------------------- */

START_TEST(names_round_trip)
{
    size_t n = 0;
    attn_case *cs = attn_cases_builtin(0, &n);
    ck_assert_ptr_nonnull(cs);
    ck_assert_uint_ge(n, 150);
    ck_assert_uint_le(n, 300);
    for (size_t i = 0; i < n; i++) {
        char a[ATTN_CASE_NAME_MAX], b[ATTN_CASE_NAME_MAX], err[200];
        attn_case c;
        ck_assert_int_lt(attn_case_format(&cs[i], a, sizeof a), (int)sizeof a);
        ck_assert_msg(attn_case_parse(a, &c, err, sizeof err) == 0, "%s: %s", a, err);
        attn_case_format(&c, b, sizeof b);
        ck_assert_str_eq(a, b);
        for (size_t j = 0; j < i; j++) { /* no duplicates in the list */
            attn_case_format(&cs[j], b, sizeof b);
            ck_assert_msg(strcmp(a, b) != 0, "duplicate case %s", a);
        }
    }
    free(cs);
}
END_TEST

START_TEST(names_parse_forms)
{
    attn_case c;
    char s[ATTN_CASE_NAME_MAX], err[200];
    ck_assert_int_eq(attn_case_parse("lse d80 b2 sq3 skv5 hq4 hkv2 causal dt=bf16 mask_bool=- "
                                     "mask_add=hs fill=stress wl=7 cap=2.5", &c, err,
                                     sizeof err), 0);
    attn_case_format(&c, s, sizeof s);
    ck_assert_str_eq(s, "sdpa b2 sq3 skv5 hq4 hkv2 dk80 dv80 causal=br wl=7 cap=2.5 "
                        "mask_add=sh mask_bool=- dt=bf16:bf16:bf16 layout=bshd fill=stress lse");
    const char *bad[] = {"sq0", "foo", "dt=f17", "dt=f16:f32", "mask_add=x", "mask_add=bb",
                         "causal=xx", "wl=-2", "cap=-1", "layout=nchw", "skv12x", "", "lse=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(attn_case_parse(bad[i], &c, err, sizeof err) == -1, "accepted '%s'",
                      bad[i]);
}
END_TEST

START_TEST(quick_list_covers_features)
{
    size_t n = 0;
    attn_case *cs = attn_cases_builtin(1, &n);
    ck_assert_ptr_nonnull(cs);
    ck_assert_uint_ge(n, 30);
    ck_assert_uint_le(n, 60);
    unsigned all = 0;
    for (size_t i = 0; i < n; i++)
        all |= attn_case_features(&cs[i]);
    for (int f = 0; f < ATTN_FEAT_COUNT; f++)
        if (f != ATTN_FEAT_LONG)
            ck_assert_msg(all & (1u << f), "quick list lacks %s",
                          attn_feature_name((attn_feature)f));
    free(cs);
}
END_TEST

/* ---- runs ----------------------------------------------------------------------------------- */

static void run_quick(const char *backend)
{
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open(backend, NULL, &be) == ATTN_OK, "%s", attn_last_error());
    size_t n = 0;
    attn_case *cs = attn_cases_builtin(1, &n);
    ck_assert_ptr_nonnull(cs);
    for (size_t i = 0; i < n; i++) {
        attn_result r;
        attn_conform_case(be, &cs[i], 42, NULL, NULL, &r);
        ck_assert_msg(r.status == ATTN_PASSED || r.status == ATTN_SKIPPED, "%s %s: %s",
                      attn_verdict_name(r.status), r.name, r.reason);
    }
    free(cs);
    attn_backend_close(be);
}

START_TEST(quick_passes_on_ref)
{
    run_quick("ref");
}
END_TEST

START_TEST(quick_passes_on_cpu)
{
    run_quick("cpu");
}
END_TEST

/* ---- corrupted results ---------------------------------------------------------------------- */

typedef enum tamper_kind {
    T_PERTURB,   /* one element off by 1e-3 */
    T_ULP,       /* every element one f32 ulp off: must still pass */
    T_UNWRITTEN, /* one element put back to the poison pattern */
    T_GUARD,     /* one byte after the output view */
    T_PADDING,   /* one byte in the padding between rows (kv-cache layout) */
    T_MASKED,    /* an element of a fully masked row set to a tiny value */
    T_LSE        /* one LSE value off by 1e-3 */
} tamper_kind;

static void tamper(const attn_tensor *out, const attn_tensor *lse, void *ctx)
{
    const tamper_kind k = *(const tamper_kind *)ctx;
    float *o = out->data;
    const int64_t row3 = 3 * out->stride[1]; /* query row 3: fully hidden by the mask fill */
    const int64_t last = (out->shape[0] - 1) * out->stride[0] + (out->shape[1] - 1) *
                         out->stride[1] + (out->shape[2] - 1) * out->stride[2] +
                         (out->shape[3] - 1) * out->stride[3];
    switch (k) {
    case T_PERTURB: o[7] += 1e-3f; break;
    case T_ULP:
        for (int64_t i = 0; i < out->shape[3]; i++)
            o[i] = nextafterf(o[i], INFINITY);
        break;
    case T_UNWRITTEN: memcpy(&o[11], "\xa5\xa5\xa5\x7f", 4); break;
    case T_GUARD: ((unsigned char *)(o + last + 1))[2] ^= 1; break;
    case T_PADDING: ((unsigned char *)(o + out->shape[3]))[0] ^= 1; break;
    case T_MASKED: o[row3 + 1] = 1e-30f; break;
    case T_LSE: ((float *)lse->data)[2] += 1e-3f; break;
    }
}

static attn_result run_tampered(const char *name, tamper_kind k)
{
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    attn_case c;
    char err[200];
    ck_assert_msg(attn_case_parse(name, &c, err, sizeof err) == 0, "%s", err);
    attn_result r;
    attn_conform_case(be, &c, 7, tamper, &k, &r);
    attn_backend_close(be);
    return r;
}

#define PLAIN "sdpa b1 sq17 skv64 hq2 hkv1 dk32 dv32 dt=f32 layout=bshd lse"

START_TEST(corrupted_results_fail)
{
    attn_result r = run_tampered(PLAIN, T_PERTURB);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_int_eq(r.out.gate, 2);
    r = run_tampered(PLAIN, T_ULP);
    ck_assert_msg(r.status == ATTN_PASSED, "%s", r.reason);
    r = run_tampered(PLAIN, T_UNWRITTEN);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_int_eq(r.unwritten, 1);
    ck_assert_ptr_nonnull(strstr(r.reason, "unwritten"));
    r = run_tampered(PLAIN, T_GUARD);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_int_eq(r.stray_bytes, 1);
    r = run_tampered(PLAIN, T_LSE);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_ptr_nonnull(strstr(r.reason, "lse"));
    r = run_tampered("sdpa b1 sq17 skv64 hq2 hkv2 dk32 dv32 dt=f32 layout=cache", T_PADDING);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_int_eq(r.stray_bytes, 1);
    r = run_tampered("sdpa b1 sq17 skv64 hq1 hkv1 dk32 dv32 mask_bool=s dt=f32 layout=bshd",
                     T_MASKED);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_int_eq(r.out.gate, 1);
    ck_assert_ptr_nonnull(strstr(r.reason, "masked"));
}
END_TEST

/* ---- the command ---------------------------------------------------------------------------- */

static int run_cmd(int argc, const char **argv)
{
    fflush(stdout);
    return attn_cmd_conform(argc, (char **)argv);
}

START_TEST(command_exit_status_and_json)
{
    char json[] = "/tmp/attn_conform_XXXXXX";
    int fd = mkstemp(json);
    ck_assert_int_ge(fd, 0);
    close(fd);
    const char *ok[] = {"conform", "--backend", "ref", "--quick", "--filter", "mask",
                        "--json", json};
    ck_assert_int_eq(run_cmd(8, ok), 0);
    FILE *f = fopen(json, "r");
    ck_assert_ptr_nonnull(f);
    char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    cJSON *root = cJSON_Parse(buf);
    ck_assert_ptr_nonnull(root);
    cJSON *cases = cJSON_GetObjectItem(root, "cases");
    ck_assert_int_gt(cJSON_GetArraySize(cases), 0);
    cJSON *c0 = cJSON_GetArrayItem(cases, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(c0, "status")->valuestring, "PASSED");
    ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(c0, "repro")->valuestring, "--case"));
    cJSON *summary = cJSON_GetObjectItem(root, "summary");
    ck_assert_int_eq(cJSON_GetObjectItem(summary, "failed")->valueint, 0);
    cJSON_Delete(root);

    /* an invalid case (Hq not a multiple of Hkv) is FAILED: exit status 1 */
    const char *bad[] = {"conform", "--backend", "ref", "--case",
                         "sdpa b1 sq3 skv5 hq3 hkv2 d32", "--json", json};
    ck_assert_int_eq(run_cmd(7, bad), 1);
    /* usage errors: 2 */
    const char *usage[] = {"conform", "--bogus"};
    ck_assert_int_eq(run_cmd(2, usage), 2);
    const char *badname[] = {"conform", "--case", "sq1 zz9"};
    ck_assert_int_eq(run_cmd(3, badname), 2);
    const char *list[] = {"conform", "--list", "--filter", "layout=cache"};
    ck_assert_int_eq(run_cmd(4, list), 0);
    unlink(json);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conform");
    TCase *names = tcase_create("names");
    tcase_add_test(names, names_round_trip);
    tcase_add_test(names, names_parse_forms);
    tcase_add_test(names, quick_list_covers_features);
    suite_add_tcase(s, names);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 600);
    tcase_add_test(runs, quick_passes_on_ref);
    tcase_add_test(runs, quick_passes_on_cpu);
    tcase_add_test(runs, corrupted_results_fail);
    tcase_add_test(runs, command_exit_status_and_json);
    suite_add_tcase(s, runs);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
