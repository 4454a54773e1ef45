/* check_conform.c - the conformance tool itself: case names round-trip, the --quick list
 * passes on the ref and cpu backends (cpu with --repeat 2), deliberately corrupted results (a
 * perturbed element, an unwritten element, a write into the guard zone, a nonzero masked row,
 * a wrong LSE, a run that differs from the first) are FAILED, device-buffer mode with guard
 * zones on cpu and opencl (skipped without a platform), the command's exit status, JSON and
 * JUnit files, and expectations files (XFAIL, FIX, REGRESSION). */
#include "attn_conform.h"
#include "attn_tool_ops.h"
#include "attn_cmds.h"
#include "attn_half.h"
#include "attn_report.h"

#ifdef ATTN_HAVE_OPENCL
#include "attn/attn_opencl.h"
#endif

#include "check_run.h"

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
    ck_assert_uint_le(n, 1000);
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
    ck_assert_int_eq(attn_case_parse("sdpa lse d80 b2 sq3 skv5 hq4 hkv2 causal dt=bf16 mask_bool=- "
                                     "mask_add=hs fill=stress wl=7 cap=2.5", &c, err,
                                     sizeof err), 0);
    attn_case_format(&c, s, sizeof s);
    ck_assert_str_eq(s, "sdpa b2 sq3 skv5 hq4 hkv2 dk80 dv80 causal=br wl=7 cap=2.5 "
                        "mask_add=sh mask_bool=- dt=bf16:bf16:bf16 layout=bshd fill=stress lse");
    const char *bad[] = {"sdpa sq0", "foo", "dt=f17", "sdpa dt=f17", "sdpa dt=f16:f32",
                         "sdpa mask_add=x", "sdpa mask_add=bb", "sdpa causal=xx", "sdpa wl=-2",
                         "sdpa cap=-1", "sdpa layout=nchw", "sdpa skv12x", "", "sdpa lse=1",
                         "b1 sq1 skv1 sdpa", "sdpa sdpa",
                         /* 0 in float, subnormal (its %.9g spelling does not parse back) */
                         "sdpa scale=1e-300", "sdpa cap=0x1p-1074", "sdpa cap=1e-31",
                         "sdpa scale=-1e31"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(attn_case_parse(bad[i], &c, err, sizeof err) == -1, "accepted '%s'",
                      bad[i]);
    /* the first token names the op */
    ck_assert_int_eq(attn_case_parse("b1 sq3 sdpa", &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "starts with its op"));
}
END_TEST

/* The longest canonical name (every size 2^40, every option at its longest) fits the tool's name
 * buffers and round-trips: it was truncated before (tests/fuzz/regressions/cases/). */
START_TEST(names_longest_fits)
{
    const char *longest = "sdpa b1099511627776 sq1099511627776 skv1099511627776 hq1099511627776 "
                          "hkv1099511627776 dk1099511627776 dv1099511627776 causal=tl "
                          "wl=1099511627776 wr=1099511627776 cap=1.23456789e-29 "
                          "scale=-1.23456789e-29 mask_add=bsh mask_bool=bsh dt=bf16:bf16:bf16 "
                          "layout=cache fill=stress lse";
    attn_case c, back;
    char a[ATTN_CASE_NAME_MAX], b[ATTN_CASE_NAME_MAX], err[200];
    ck_assert_msg(attn_case_parse(longest, &c, err, sizeof err) == 0, "%s", err);
    ck_assert_int_lt(attn_case_format(&c, a, sizeof a), (int)sizeof a);
    ck_assert_str_eq(a, longest);
    ck_assert_msg(attn_case_parse(a, &back, err, sizeof err) == 0, "%s", err);
    attn_case_format(&back, b, sizeof b);
    ck_assert_str_eq(a, b);
}
END_TEST

START_TEST(quick_list_covers_features)
{
    size_t n = 0;
    attn_case *cs = attn_cases_builtin(1, &n);
    ck_assert_ptr_nonnull(cs);
    ck_assert_uint_ge(n, 30);
    ck_assert_uint_le(n, 60 * (size_t)attn_tool_n_ops);
    /* every feature of every op but "long" (the quick list stays small) */
    for (int o = 0; o < attn_tool_n_ops; o++) {
        const attn_conform_driver *op = attn_tool_ops[o]->conform;
        unsigned all = 0;
        for (size_t i = 0; i < n; i++)
            if (cs[i].op == op)
                all |= attn_case_features(&cs[i]);
        for (int f = 0; f < op->n_features; f++)
            if (strcmp(op->feature_names[f], "long") != 0)
                ck_assert_msg(all & (1u << f), "quick list of %s lacks %s", op->stem,
                              op->feature_names[f]);
    }
    free(cs);
}
END_TEST

/* ---- runs ----------------------------------------------------------------------------------- */

/* Under sanitizers (ATTN_TEST_QUICK=1) the device runs take fewer cases. */
static int test_quick(void)
{
    return getenv("ATTN_TEST_QUICK") != NULL;
}

/* Every `step`-th case of the --quick list on a backend must pass (or be skipped). */
static void run_quick(attn_backend *be, const attn_conform_opts *o, size_t step)
{
    size_t n = 0;
    attn_case *cs = attn_cases_builtin(1, &n);
    ck_assert_ptr_nonnull(cs);
    for (size_t i = 0; i < n; i += step) {
        attn_result r;
        attn_conform_case(be, &cs[i], o, NULL, NULL, &r);
        ck_assert_msg(r.status == ATTN_PASSED || r.status == ATTN_SKIPPED, "%s %s: %s",
                      attn_verdict_name(r.status), r.name, r.reason);
        ck_assert_int_eq(r.guard_bytes, 0);
        ck_assert_msg(r.status == ATTN_SKIPPED || r.impl[0], "%s: no impl name", r.name);
    }
    free(cs);
}

static void run_quick_on(const char *backend, const attn_conform_opts *o, size_t step)
{
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open(backend, NULL, &be) == ATTN_OK, "%s", attn_last_error());
    run_quick(be, o, step);
    attn_backend_close(be);
}

START_TEST(quick_passes_on_ref)
{
    const attn_conform_opts o = {.seed = 42, .device_mem = 0, .repeat = 1};
    run_quick_on("ref", &o, 1);
}
END_TEST

/* The fast backend of this build: cpu, or ref in a reference-only build. */
#ifdef ATTN_HAVE_CPU
#define FAST "cpu"
#else
#define FAST "ref"
#endif

/* Host memory, two runs each: cpu results are bit-identical run to run. */
START_TEST(quick_passes_on_cpu_repeat2)
{
    const attn_conform_opts o = {.seed = 42, .device_mem = 0, .repeat = 2};
    run_quick_on(FAST, &o, 1);
}
END_TEST

/* Device mode on cpu: tensors in attn_buffer allocations (host-backed) with guard zones. */
START_TEST(quick_device_mode_on_cpu)
{
    const attn_conform_opts o = {.seed = 42, .device_mem = 1, .repeat = 1};
    run_quick_on(FAST, &o, test_quick() ? 4 : 1);
}
END_TEST

/* Whether an OpenCL device is present; else prints why the test is skipped. */
static int have_opencl(const char *test)
{
#ifdef ATTN_HAVE_OPENCL
    int n = 0;
    if (attn_opencl_devices(NULL, 0, &n) == ATTN_OK && n > 0)
        return 1;
    printf("SKIPPED %s: %s\n", test, attn_last_error()[0] ? attn_last_error() : "no device");
#else
    printf("SKIPPED %s: the library was built without OpenCL\n", test);
#endif
    return 0;
}

/* opencl in its default mode (device buffers with guards) and --repeat 2 on the quick list
 * (every third case under sanitizers, where PoCL's compiles are slow). */
START_TEST(quick_opencl_device_repeat2)
{
    if (!have_opencl(__func__))
        return;
    const attn_conform_opts o = {.seed = 42, .device_mem = 1, .repeat = 2};
    run_quick_on("opencl", &o, test_quick() ? 3 : 1);
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
    T_LSE,       /* one LSE value off by 1e-3 */
    T_LSE_NAN    /* one LSE value NaN */
} tamper_kind;

static void tamper(const attn_tensor *const *outs, int n, void *ctx)
{
    const attn_tensor *out = outs[0], *lse = n > 1 ? outs[1] : NULL;
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
    case T_LSE_NAN: ((float *)lse->data)[2] = NAN; break;
    }
}

static attn_result run_tampered_opts(const char *backend, const char *name,
                                     attn_conform_tamper fn, void *ctx,
                                     const attn_conform_opts *o)
{
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open(backend, NULL, &be) == ATTN_OK, "%s", attn_last_error());
    attn_case c;
    char err[200];
    ck_assert_msg(attn_case_parse(name, &c, err, sizeof err) == 0, "%s", err);
    attn_result r;
    attn_conform_case(be, &c, o, fn, ctx, &r);
    attn_backend_close(be);
    return r;
}

static attn_result run_tampered(const char *name, tamper_kind k)
{
    const attn_conform_opts o = {.seed = 7, .device_mem = 0, .repeat = 1};
    return run_tampered_opts("ref", name, tamper, &k, &o);
}

#define PLAIN "sdpa b1 sq17 skv64 hq2 hkv1 dk32 dv32 dt=f32 layout=bshd lse"

START_TEST(corrupted_results_fail)
{
    attn_result r = run_tampered(PLAIN, T_PERTURB);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_int_eq(r.tensor[0].fig.gate, 2);
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
    /* a NaN LSE breaks gate 1; the line says how many elements did (the figures leave
     * non-finite ones out) */
    r = run_tampered(PLAIN, T_LSE_NAN);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_int_eq(r.tensor[1].fig.gate, 1);
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    attn_report_line(f, &r, 0);
    fclose(f);
    ck_assert_msg(strstr(line, "lse_invariants_broken=1"), "%s", line);
    free(line);
    r = run_tampered("sdpa b1 sq17 skv64 hq2 hkv2 dk32 dv32 dt=f32 layout=cache", T_PADDING);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_int_eq(r.stray_bytes, 1);
    r = run_tampered("sdpa b1 sq17 skv64 hq1 hkv1 dk32 dv32 mask_bool=s dt=f32 layout=bshd",
                     T_MASKED);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_int_eq(r.tensor[0].fig.gate, 1);
    ck_assert_ptr_nonnull(strstr(r.reason, "masked"));
}
END_TEST

/* Only the first run is tampered with: with --repeat 2 the second differs from it. */
START_TEST(nondeterminism_detected)
{
    tamper_kind k = T_ULP;
    const attn_conform_opts o = {.seed = 7, .device_mem = 0, .repeat = 2};
    attn_result r = run_tampered_opts(FAST, PLAIN, tamper, &k, &o);
    ck_assert_int_eq(r.status, ATTN_FAILED);
    ck_assert_msg(strstr(r.reason, "nondeterministic: run 2 differs at [0,0,0,0] of out"), "%s",
                  r.reason);
}
END_TEST

/* Device mode: one byte written into a guard zone of the device buffer, before or after. */
typedef struct guard_hit {
    int before;
} guard_hit;

static void tamper_device_guard(const attn_tensor *const *outs, int n, void *ctx)
{
    const attn_tensor *out = outs[0];
    (void)n;
    const guard_hit *g = ctx;
    ck_assert_ptr_nonnull(out->buffer); /* device views, not host ones */
    ck_assert_uint_eq(out->offset, 1024);
    const unsigned char x = 0x00;
    size_t at = g->before ? 1000 : attn_buffer_size(out->buffer) - 3;
    ck_assert_int_eq(attn_buffer_write(out->buffer, at, &x, 1), ATTN_OK);
}

static void guard_corruption_on(const char *backend)
{
    const attn_conform_opts o = {.seed = 7, .device_mem = 1, .repeat = 1};
    for (int before = 0; before < 2; before++) {
        guard_hit g = {before};
        attn_result r = run_tampered_opts(backend, PLAIN, tamper_device_guard, &g, &o);
        ck_assert_int_eq(r.status, ATTN_FAILED);
        ck_assert_msg(strstr(r.reason, "guard zone overwritten: 1 bytes"), "%s", r.reason);
        ck_assert_int_eq(r.guard_bytes, 1);
    }
}

START_TEST(device_guard_corruption_cpu)
{
    guard_corruption_on(FAST);
}
END_TEST

START_TEST(device_guard_corruption_opencl)
{
    if (have_opencl(__func__))
        guard_corruption_on("opencl");
}
END_TEST

/* ---- the command ---------------------------------------------------------------------------- */

static int run_cmd(int argc, const char **argv)
{
    fflush(stdout);
    return attn_cmd_conform(argc, (char **)argv);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 18];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static cJSON *read_json(const char *path)
{
    cJSON *root = cJSON_Parse(read_all(path));
    ck_assert_ptr_nonnull(root);
    return root;
}

static void temp_path(char *buf)
{
    strcpy(buf, "/tmp/attn_conform_XXXXXX");
    int fd = mkstemp(buf);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

START_TEST(command_exit_status_and_json)
{
    char json[32];
    temp_path(json);
    const char *ok[] = {"conform", "--backend", "ref", "--quick", "--filter", "mask",
                        "--json", json};
    ck_assert_int_eq(run_cmd(8, ok), 0);
    cJSON *root = read_json(json);
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
    const char *devcpu[] = {"conform", "--device", "0:0", "--list"};
    ck_assert_int_eq(run_cmd(4, devcpu), 2);
    const char *badmem[] = {"conform", "--memory", "gpu", "--list"};
    ck_assert_int_eq(run_cmd(4, badmem), 2);
    const char *badrep[] = {"conform", "--repeat", "0", "--list"};
    ck_assert_int_eq(run_cmd(4, badrep), 2);
    unlink(json);
}
END_TEST

/* With no OpenCL platform (an empty ICD vendor directory) or no OpenCL in the build, the
 * command says why and exits 3. Needs a fresh process: Check's fork mode. */
START_TEST(opencl_unavailable_exit_3)
{
    const char *fork = getenv("CK_FORK");
    if (fork && strcmp(fork, "no") == 0) {
        printf("SKIPPED %s: needs CK_FORK mode\n", __func__);
        return;
    }
    char dir[] = "/tmp/attn-no-icd-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("OCL_ICD_VENDORS", dir, 1);
    unsetenv("OCL_ICD_FILENAMES");
    const char *argv[] = {"conform", "--backend", "opencl", "--quick"};
    int rc = run_cmd(4, argv);
    rmdir(dir);
    ck_assert_int_eq(rc, 3);
}
END_TEST

/* ---- JUnit ---------------------------------------------------------------------------------- */

static size_t count_str(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* Minimal XML well-formedness: tags nest and close in order, attribute values are quoted and
 * hold no '<', every '&' starts a known entity. Returns NULL or what is wrong. */
static const char *xml_check(const char *s)
{
    char stack[16][32];
    int depth = 0, root_closed = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '&') {
            static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            int ok = 0;
            for (int k = 0; k < 5; k++)
                ok |= strncmp(p, ents[k], strlen(ents[k])) == 0;
            if (!ok)
                return "bare '&'";
            continue;
        }
        if (*p == '>')
            return "bare '>' in text";
        if (*p != '<')
            continue;
        if (p[1] == '?') {
            const char *e = strstr(p, "?>");
            if (!e)
                return "unterminated <?";
            p = e + 1;
            continue;
        }
        const int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t len = strcspn(name, " />\n");
        if (len == 0 || len >= 32)
            return "bad tag name";
        const char *q = name + len;
        for (; *q && *q != '>'; q++)
            if (*q == '"') {
                const char *e = strchr(q + 1, '"');
                if (!e || memchr(q + 1, '<', (size_t)(e - q - 1)))
                    return "bad attribute value";
                q = e;
            }
        if (!*q)
            return "unterminated tag";
        if (closing) {
            if (depth == 0 || strncmp(stack[depth - 1], name, len) != 0 ||
                stack[depth - 1][len] != '\0')
                return "mismatched closing tag";
            root_closed = --depth == 0;
        } else if (q[-1] != '/') {
            if (depth == 16 || root_closed)
                return "too deep or a second root";
            memcpy(stack[depth], name, len);
            stack[depth++][len] = '\0';
        }
        p = q;
    }
    return depth == 0 && root_closed ? NULL : "unclosed element";
}

#define CASE_PASS "sdpa b1 sq3 skv5 hq1 hkv1 d32"
#define CASE_INVALID "sdpa b1 sq3 skv5 hq3 hkv2 dk32 dv32"  /* Hq not a multiple of Hkv */
#define CASE_TINY "sdpa b1 sq1 skv4 hq1 hkv1 dk8 dv8"       /* 8 < 10 elements: MISTRUSTED */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Canonical name of a case. */
static void canon(const char *name, char *buf)
{
    attn_case c;
    char err[200];
    ck_assert_int_eq(attn_case_parse(name, &c, err, sizeof err), 0);
    attn_case_format(&c, buf, ATTN_CASE_NAME_MAX);
}

/* One expectation {"<name>": "<verdict>"} in an expectations file. */
static void write_expect(const char *path, const char *name, const char *verdict)
{
    char c[ATTN_CASE_NAME_MAX], text[600];
    canon(name, c);
    snprintf(text, sizeof text, "{\"device\": \"test\", \"expect\": {\"%s\": \"%s\"}}", c,
             verdict);
    write_file(path, text);
}

/* Outcome field of the JSON case named `name` ("" when absent). */
static const char *outcome_of(cJSON *root, const char *name)
{
    char c[ATTN_CASE_NAME_MAX];
    canon(name, c);
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "cases"))
        if (strcmp(cJSON_GetObjectItem(it, "case")->valuestring, c) == 0) {
            cJSON *o = cJSON_GetObjectItem(it, "outcome");
            return o ? o->valuestring : "";
        }
    ck_abort_msg("case %s not in the JSON file", name);
    return NULL;
}

/* A pass, a listed failure (XFAIL: JUnit skipped) and an unlisted MISTRUSTED case whose reason
 * holds '<' (REGRESSION: JUnit failure). */
START_TEST(junit_well_formed)
{
    char junit[32], expect[32];
    temp_path(junit);
    temp_path(expect);
    write_expect(expect, CASE_INVALID, "FAILED");
    const char *argv[] = {"conform", "--backend", "ref", "--case", CASE_PASS, "--case",
                          CASE_INVALID, "--case", CASE_TINY, "--expect", expect, "--junit",
                          junit};
    ck_assert_int_eq(run_cmd(13, argv), 1);
    const char *x = read_all(junit);
    const char *bad = xml_check(x);
    ck_assert_msg(bad == NULL, "%s in:\n%s", bad, x);
    ck_assert_uint_eq(count_str(x, "<testsuite "), 1);
    ck_assert_ptr_nonnull(strstr(x, "tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""));
    ck_assert_uint_eq(count_str(x, "<testcase "), 3);
    ck_assert_uint_eq(count_str(x, "</testcase>"), 3);
    ck_assert_uint_eq(count_str(x, "<failure "), 1);
    ck_assert_uint_eq(count_str(x, "<skipped "), 1);
    ck_assert_uint_eq(count_str(x, "<system-out>repro: attn conform"), 3);
    ck_assert_ptr_nonnull(strstr(x, "(&lt; 10)"));          /* the MISTRUSTED reason */
    ck_assert_ptr_nonnull(strstr(x, "--case &apos;sdpa b1")); /* the repro's quotes */
    ck_assert_ptr_nonnull(strstr(x, "impl: ref:"));
    ck_assert_ptr_nonnull(strstr(x, "classname=\"attn.conform.ref."));
    unlink(junit);
    unlink(expect);
}
END_TEST

/* ---- expectations files --------------------------------------------------------------------- */

static int run_expect(const char *expect, const char *json, const char *c1, const char *c2,
                      attn_conform_tamper fn, void *ctx)
{
    const char *argv[] = {"conform", "--backend", "ref", "--expect", expect, "--json", json,
                          "--case", c1, "--case", c2};
    fflush(stdout);
    return attn_cmd_conform_hooked(c2 ? 11 : 9, (char **)argv, fn, ctx);
}

START_TEST(expect_xfail_fix_regression)
{
    char expect[32], json[32];
    temp_path(expect);
    temp_path(json);
    /* a known failure: XFAIL, exit 0 */
    write_expect(expect, CASE_INVALID, "FAILED");
    ck_assert_int_eq(run_expect(expect, json, CASE_PASS, CASE_INVALID, NULL, NULL), 0);
    cJSON *root = read_json(json);
    ck_assert_str_eq(outcome_of(root, CASE_INVALID), "XFAIL");
    ck_assert_str_eq(outcome_of(root, CASE_PASS), "");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "summary"), "xfail")->valueint,
                     1);
    cJSON_Delete(root);
    /* expected to fail, passes: FIX, exit 0 */
    write_expect(expect, CASE_PASS, "FAILED");
    ck_assert_int_eq(run_expect(expect, json, CASE_PASS, NULL, NULL, NULL), 0);
    root = read_json(json);
    ck_assert_str_eq(outcome_of(root, CASE_PASS), "FIX");
    cJSON_Delete(root);
    /* expected to pass (unlisted), fails through the corruption hook: REGRESSION, exit 1 */
    tamper_kind k = T_PERTURB;
    ck_assert_int_eq(run_expect(expect, json, PLAIN, NULL, tamper, &k), 1);
    root = read_json(json);
    ck_assert_str_eq(outcome_of(root, PLAIN), "REGRESSION");
    cJSON_Delete(root);
    /* expected to be skipped, fails: REGRESSION too */
    write_expect(expect, CASE_INVALID, "SKIPPED");
    ck_assert_int_eq(run_expect(expect, json, CASE_INVALID, NULL, NULL, NULL), 1);
    /* malformed files are usage errors */
    write_file(expect, "{\"expect\": {\"sdpa b1\": \"BROKEN\"}}");
    ck_assert_int_eq(run_expect(expect, json, CASE_PASS, NULL, NULL, NULL), 2);
    write_file(expect, "[1, 2");
    ck_assert_int_eq(run_expect(expect, json, CASE_PASS, NULL, NULL, NULL), 2);
    unlink(expect);
    unlink(json);
}
END_TEST

/* --write-expect records the run's failures; the same run against it is clean. */
START_TEST(expect_write_round_trip)
{
    char expect[32], json[32];
    temp_path(expect);
    temp_path(json);
    const char *argv[] = {"conform", "--backend", "ref", "--case", CASE_PASS, "--case",
                          CASE_INVALID, "--write-expect", expect};
    ck_assert_int_eq(run_cmd(9, argv), 1);
    attn_expect x;
    char err[320], c[ATTN_CASE_NAME_MAX];
    ck_assert_msg(attn_expect_load(expect, &x, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(x.n, 1);
    canon(CASE_INVALID, c);
    ck_assert_str_eq(x.e[0].name, c);
    ck_assert_int_eq(x.e[0].verdict, ATTN_FAILED);
    ck_assert_ptr_nonnull(strstr(x.device, "ref"));
    attn_expect_free(&x);
    ck_assert_int_eq(run_expect(expect, json, CASE_PASS, CASE_INVALID, NULL, NULL), 0);
    unlink(expect);
    unlink(json);
}
END_TEST

/* ---- --isolate ------------------------------------------------------------------------------ */

/* Runs in the isolated child: the case with Sq 17 aborts, the one with Sq 3 hangs. */
static void tamper_crash_or_hang(const attn_tensor *const *outs, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    if (outs[0]->shape[1] == 17)
        abort();
    if (outs[0]->shape[1] == 3)
        sleep(60);
}

static cJSON *case_json(cJSON *root, const char *name)
{
    char c[ATTN_CASE_NAME_MAX];
    canon(name, c);
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "cases"))
        if (strcmp(cJSON_GetObjectItem(it, "case")->valuestring, c) == 0)
            return it;
    ck_abort_msg("case %s not in the JSON file", name);
    return NULL;
}

/* One case aborts and one hangs: each fails alone, named, with its repro line, and the case
 * after them still runs and passes. Without --isolate, --timeout is a usage error. */
START_TEST(isolate_contains_crash_and_hang)
{
    char json[32];
    temp_path(json);
    const char *after = "sdpa b1 sq5 skv9 hq2 hkv1 d16";
    const char *argv[] = {"conform", "--backend", "ref", "--isolate", "--timeout", "2",
                          "--json", json, "--case", PLAIN, "--case", CASE_PASS, "--case", after};
    fflush(stdout);
    ck_assert_int_eq(attn_cmd_conform_hooked(14, (char **)argv, tamper_crash_or_hang, NULL), 1);
    cJSON *root = read_json(json);
    cJSON *crash = case_json(root, PLAIN), *hang = case_json(root, CASE_PASS);
    const char *why = cJSON_GetObjectItem(crash, "reason")->valuestring;
    ck_assert_str_eq(cJSON_GetObjectItem(crash, "status")->valuestring, "FAILED");
    ck_assert_msg(strstr(why, "crashed: signal 6") != NULL, "%s", why);
    ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(crash, "repro")->valuestring,
                                 "attn conform --backend ref --seed 42 --case 'sdpa b1 sq17"));
    why = cJSON_GetObjectItem(hang, "reason")->valuestring;
    ck_assert_str_eq(cJSON_GetObjectItem(hang, "status")->valuestring, "FAILED");
    ck_assert_msg(strstr(why, "timed out after 2 s") != NULL, "%s", why);
    ck_assert_str_eq(cJSON_GetObjectItem(case_json(root, after), "status")->valuestring,
                     "PASSED");
    cJSON_Delete(root);
    unlink(json);
    const char *no_isolate[] = {"conform", "--backend", "ref", "--timeout", "2"};
    ck_assert_int_eq(run_cmd(5, no_isolate), 2);
}
END_TEST

/* The isolated run of a backend gives the same verdicts and figures as the in-process run. The
 * isolated one goes first: a child forked from a process whose OpenMP runtime has started
 * threads hangs in its first parallel region, which is why `attn conform --isolate` never opens
 * the backend in the parent. */
START_TEST(isolate_matches_in_process)
{
    char a[32], b[32];
    temp_path(a);
    temp_path(b);
    const char *plain[] = {"conform", "--backend", FAST, "--quick", "--json", a};
    const char *iso[] = {"conform", "--backend", FAST, "--quick", "--json", b, "--isolate"};
    ck_assert_int_eq(run_cmd(7, iso), 0);
    ck_assert_int_eq(run_cmd(6, plain), 0);
    cJSON *ra = read_json(a), *rb = read_json(b);
    cJSON *ca = cJSON_GetObjectItem(ra, "cases"), *cb = cJSON_GetObjectItem(rb, "cases");
    ck_assert_int_eq(cJSON_GetArraySize(ca), cJSON_GetArraySize(cb));
    for (int i = 0; i < cJSON_GetArraySize(ca); i++) {
        cJSON *x = cJSON_GetArrayItem(ca, i), *y = cJSON_GetArrayItem(cb, i);
        ck_assert_str_eq(cJSON_GetObjectItem(x, "case")->valuestring,
                         cJSON_GetObjectItem(y, "case")->valuestring);
        ck_assert_str_eq(cJSON_GetObjectItem(x, "status")->valuestring,
                         cJSON_GetObjectItem(y, "status")->valuestring);
        ck_assert(cJSON_GetObjectItem(x, "max_abs")->valuedouble ==
                  cJSON_GetObjectItem(y, "max_abs")->valuedouble);
    }
    cJSON_Delete(ra);
    cJSON_Delete(rb);
    unlink(a);
    unlink(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conform");
    TCase *names = tcase_create("names");
    tcase_add_test(names, names_round_trip);
    tcase_add_test(names, names_parse_forms);
    tcase_add_test(names, names_longest_fits);
    tcase_add_test(names, quick_list_covers_features);
    suite_add_tcase(s, names);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 600);
    tcase_add_test(runs, quick_passes_on_ref);
    tcase_add_test(runs, quick_passes_on_cpu_repeat2);
    tcase_add_test(runs, quick_device_mode_on_cpu);
    tcase_add_test(runs, corrupted_results_fail);
    tcase_add_test(runs, nondeterminism_detected);
    tcase_add_test(runs, device_guard_corruption_cpu);
    suite_add_tcase(s, runs);
    TCase *cl = tcase_create("opencl");
    tcase_set_timeout(cl, 600);
    tcase_add_test(cl, quick_opencl_device_repeat2);
    tcase_add_test(cl, device_guard_corruption_opencl);
    tcase_add_test(cl, opencl_unavailable_exit_3);
    suite_add_tcase(s, cl);
    TCase *cmd = tcase_create("command");
    tcase_set_timeout(cmd, 600);
    tcase_add_test(cmd, command_exit_status_and_json);
    tcase_add_test(cmd, junit_well_formed);
    tcase_add_test(cmd, expect_xfail_fix_regression);
    tcase_add_test(cmd, expect_write_round_trip);
    tcase_add_test(cmd, isolate_contains_crash_and_hang);
    tcase_add_test(cmd, isolate_matches_in_process);
    suite_add_tcase(s, cmd);
    return attn_check_run(s);
}
