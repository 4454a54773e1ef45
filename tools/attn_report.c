/* attn_report.c - printing conformance results: case lines, repro commands, the summary table,
 * the JSON results file, the JUnit XML file and expectations files (formats in
 * docs/conformance.md). */
#include "attn_report.h"

#include "attn_tool_ops.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void attn_report_prop(attn_report_info *info, const char *key, const char *value)
{
    if (info->nprops >= ATTN_REPORT_PROPS)
        return;
    snprintf(info->props[info->nprops].key, sizeof info->props[0].key, "%s", key);
    snprintf(info->props[info->nprops].value, sizeof info->props[0].value, "%s", value);
    info->nprops++;
}

void attn_report_repro(char *buf, size_t size, const char *backend, const char *opts,
                       uint64_t seed, const char *name)
{
    snprintf(buf, size, "attn conform --backend %s%s%s --seed %llu --case '%s'", backend,
             opts && opts[0] ? " " : "", opts ? opts : "", (unsigned long long)seed, name);
}

static const char *memory_name(const attn_report_info *info)
{
    return info->device_mem ? "device" : "host";
}

void attn_report_header(FILE *f, const attn_report_info *info)
{
    fprintf(f, "attn conform: backend %s (%s)\n", info->backend, info->describe);
    for (int i = 0; i < info->nprops; i++)
        fprintf(f, "  %-16s %s\n", info->props[i].key, info->props[i].value);
    fprintf(f, "memory %s (%s), %d run%s per case%s\n", memory_name(info),
            info->device_mem ? "attn_buffer per tensor, 1 KiB guard zones" : "host, guarded outputs",
            info->repeat, info->repeat > 1 ? "s" : "", info->repeat > 1 ? ", bit-identical" : "");
    fprintf(f, "seed %llu, %zu cases, gold = reference f64, lowp = reference naive f32\n",
            (unsigned long long)info->seed, info->ncases);
    fprintf(f, "policy: invariants (NaN/Inf both ways, masked rows exactly 0, lse -inf, "
               "no unwritten or stray writes);\n"
               "        |d| <= 8 u_c sqrt(n_acc) cond + 2 u_out |gold| + tiny, u_c = 2^-24;"
               " NMSE <= 1e-9 + (2 u_out)^2;\n"
               "        f16/bf16 out: |d| <= ulp(|gold| + e)/2 + e, e = 8 u_c sqrt(n_acc) cond"
               " (round);\n"
               "        max|d| <= max(floor, F max|lowp - gold|), F = 4 out, 16 lse;"
               " MISTRUSTED if > 90%% zeros or < 10 elements\n");
}


static void fmt_fig(char *buf, size_t n, const attn_result *r)
{
    if (!r->compared) {
        snprintf(buf, n, "not compared");
        return;
    }
    const attn_policy_out *o = &r->tensor[0].fig;
    int k = snprintf(buf, n, "maxabs=%.2e nmse=%.2e margin=%.3f lowp=%.2f", o->max_abs, o->nmse,
                     o->margin, o->lowp_ratio);
    if (o->round_checked && k > 0 && (size_t)k < n) /* f16/bf16 outputs: gate 6 */
        k += snprintf(buf + k, n - (size_t)k, " round=%.3f", o->round_margin);
    for (int t = 1; t < r->ntensors && k > 0 && (size_t)k < n; t++) /* the other outputs */
        k += snprintf(buf + k, n - (size_t)k, " %s_margin=%.3f %s_lowp=%.2f", r->tensor[t].name,
                      r->tensor[t].fig.margin, r->tensor[t].name, r->tensor[t].fig.lowp_ratio);
    /* Gate 1 leaves non-finite elements out of the figures above: say how many broke it. */
    for (int t = 0; t < r->ntensors && k > 0 && (size_t)k < n; t++)
        if (r->tensor[t].fig.gate == 1)
            k += snprintf(buf + k, n - (size_t)k, " %s_invariants_broken=%lld",
                          r->tensor[t].name, (long long)r->tensor[t].fig.n_bad);
}

static const char *outcome_name(attn_outcome o)
{
    static const char *const names[] = {"", "XFAIL", "FIX", "REGRESSION"};
    return names[o];
}

/* The status column: the outcome against the expectations file when there is one. */
static const char *label(const attn_result *r)
{
    return r->outcome != ATTN_OUTCOME_NONE ? outcome_name(r->outcome)
                                           : attn_verdict_name(r->status);
}

void attn_report_line(FILE *f, const attn_result *r, int verbose)
{
    char fig[256], expect[48] = "";
    fmt_fig(fig, sizeof fig, r);
    if (r->outcome != ATTN_OUTCOME_NONE)
        snprintf(expect, sizeof expect, " %s, expected %s |", attn_verdict_name(r->status),
                 attn_verdict_name(r->expected));
    fprintf(f, "%-10s %s |%s %s | %.1f ms | %s |%s%s%s repro: %s\n", label(r), r->name, expect,
            fig, r->ms, r->impl[0] ? r->impl : "-", r->reason[0] ? " " : "", r->reason,
            r->reason[0] ? " |" : "", r->repro);
    if (verbose && r->compared) {
        const attn_policy_out *o = &r->tensor[0].fig;
        fprintf(f,
                "    %s: nmse=%.3e sqrt=%.3e margin=%.4f lowp_err=%.3e floor=%.3e zeros=%.1f%%\n",
                r->tensor[0].name, o->nmse, sqrt(o->nmse), o->margin, o->lowp_err,
                o->calib_floor, 100.0 * o->zero_frac);
        for (int t = 1; t < r->ntensors; t++)
            fprintf(f, "    %s: nmse=%.3e margin=%.4f maxabs=%.3e lowp_err=%.3e\n",
                    r->tensor[t].name, r->tensor[t].fig.nmse, r->tensor[t].fig.margin,
                    r->tensor[t].fig.max_abs, r->tensor[t].fig.lowp_err);
        if (r->worst[0])
            fprintf(f, "    worst %s\n", r->worst);
    }
}

/* ---- summary -------------------------------------------------------------------------------- */

typedef struct counts {
    size_t total, passed, failed, mistrusted, skipped;
    size_t outcome[4]; /* per attn_outcome */
} counts;

static void count(counts *c, const attn_result *r)
{
    c->total++;
    c->passed += r->status == ATTN_PASSED;
    c->failed += r->status == ATTN_FAILED;
    c->mistrusted += r->status == ATTN_MISTRUSTED;
    c->skipped += r->status == ATTN_SKIPPED;
    c->outcome[r->outcome]++;
}

static counts count_all(const attn_result *rs, size_t n)
{
    counts all = {0};
    for (size_t i = 0; i < n; i++)
        count(&all, &rs[i]);
    return all;
}

static void row(FILE *f, const char *name, const counts *c)
{
    fprintf(f, "%-12s %6zu %7zu %7zu %11zu %8zu\n", name, c->total, c->passed, c->failed,
            c->mistrusted, c->skipped);
}

/* Distinct implementation names of a run, in order of first use, with their case counts. */
typedef struct impl_list {
    const char **name;
    size_t *cases, n;
} impl_list;

static int impls_collect(const attn_result *rs, size_t n, impl_list *l)
{
    l->n = 0;
    l->name = calloc(n ? n : 1, sizeof *l->name);
    l->cases = calloc(n ? n : 1, sizeof *l->cases);
    if (!l->name || !l->cases) {
        free(l->name);
        free(l->cases);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!rs[i].impl[0])
            continue;
        size_t k = 0;
        while (k < l->n && strcmp(l->name[k], rs[i].impl) != 0)
            k++;
        if (k == l->n)
            l->name[l->n++] = rs[i].impl;
        l->cases[k]++;
    }
    return 0;
}

static void impls_free(impl_list *l)
{
    free(l->name);
    free(l->cases);
}

/* The feature rows of one op's cases (its feature names, in its order). */
static void feature_rows(FILE *f, const attn_conform_driver *op, const attn_result *rs, size_t n)
{
    for (int k = 0; k < op->n_features; k++) {
        counts c = {0};
        for (size_t i = 0; i < n; i++)
            if (rs[i].op == op && rs[i].features & (1u << k))
                count(&c, &rs[i]);
        if (c.total)
            row(f, op->feature_names[k], &c);
    }
}

size_t attn_report_summary(FILE *f, const attn_result *rs, size_t n, const char *expect)
{
    counts all = count_all(rs, n);
    impl_list l;
    if (impls_collect(rs, n, &l) == 0) {
        fprintf(f, "\nimplementations used (%zu):\n", l.n);
        for (size_t k = 0; k < l.n; k++)
            fprintf(f, "  %5zu cases  %s\n", l.cases[k], l.name[k]);
        impls_free(&l);
    }
    fprintf(f, "\n%-12s %6s %7s %7s %11s %8s\n", "feature", "cases", "passed", "failed",
            "mistrusted", "skipped");
    row(f, "all", &all);
    for (int d = 0; d < attn_tool_n_ops; d++)
        feature_rows(f, attn_tool_ops[d]->conform, rs, n);
    if (expect)
        fprintf(f, "expectations %s: %zu xfail, %zu fix, %zu regression\n", expect,
                all.outcome[ATTN_OUTCOME_XFAIL], all.outcome[ATTN_OUTCOME_FIX],
                all.outcome[ATTN_OUTCOME_REGRESSION]);
    const size_t bad = all.failed + all.mistrusted;
    fprintf(f, "%zu passed, %zu failed, %zu skipped\n", all.passed, bad, all.skipped);
    return bad;
}

/* ---- files ---------------------------------------------------------------------------------- */

/* Write text (NULL = formatting ran out of memory) to path. */
static int write_text(const char *path, const char *text, char *err, size_t errsize)
{
    int rc = -1;
    FILE *f = text ? fopen(path, "w") : NULL;
    if (!text)
        snprintf(err, errsize, "%s: out of memory while formatting", path);
    else if (!f)
        snprintf(err, errsize, "%s: cannot open for writing", path);
    else if (fputs(text, f) < 0)
        snprintf(err, errsize, "%s: write failed", path);
    else
        rc = 0;
    if (f && fclose(f) != 0 && rc == 0) {
        snprintf(err, errsize, "%s: write failed", path);
        rc = -1;
    }
    return rc;
}

/* Print a cJSON tree to path (with a final newline) and free it. */
static int write_json(const char *path, cJSON *root, char *err, size_t errsize)
{
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char *line = text ? malloc(strlen(text) + 2) : NULL;
    if (line)
        sprintf(line, "%s\n", text);
    int rc = write_text(path, line, err, errsize);
    free(line);
    cJSON_free(text);
    return rc;
}

/* ---- JSON ----------------------------------------------------------------------------------- */

static cJSON *tensor_json(const attn_policy_out *o)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "verdict", attn_verdict_name(o->verdict));
    cJSON_AddNumberToObject(t, "gate", o->gate);
    cJSON_AddStringToObject(t, "reason", o->reason);
    cJSON_AddNumberToObject(t, "max_abs", o->max_abs);
    cJSON_AddNumberToObject(t, "nmse", o->nmse);
    cJSON_AddNumberToObject(t, "margin", o->margin);
    cJSON_AddNumberToObject(t, "lowp_ratio", o->lowp_ratio);
    cJSON_AddNumberToObject(t, "lowp_err", o->lowp_err);
    cJSON_AddNumberToObject(t, "calib_floor", o->calib_floor);
    cJSON_AddNumberToObject(t, "zero_frac", o->zero_frac);
    cJSON_AddNumberToObject(t, "worst", (double)o->worst);
    if (o->round_checked) {
        cJSON_AddNumberToObject(t, "round_margin", o->round_margin);
        cJSON_AddNumberToObject(t, "round_bad", (double)o->round_bad);
        cJSON_AddNumberToObject(t, "round_toward_zero", (double)o->round_toward_zero);
    }
    return t;
}

static cJSON *case_json(const attn_result *r)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "case", r->name);
    cJSON_AddStringToObject(c, "status", attn_verdict_name(r->status));
    if (r->outcome != ATTN_OUTCOME_NONE) {
        cJSON_AddStringToObject(c, "outcome", outcome_name(r->outcome));
        cJSON_AddStringToObject(c, "expected", attn_verdict_name(r->expected));
    }
    cJSON_AddStringToObject(c, "reason", r->reason);
    cJSON_AddStringToObject(c, "impl", r->impl);
    cJSON_AddNumberToObject(c, "time_ms", r->ms);
    cJSON_AddNumberToObject(c, "guard_bytes", (double)r->guard_bytes);
    if (r->compared) {
        const attn_policy_out *o = &r->tensor[0].fig;
        cJSON_AddNumberToObject(c, "max_abs", o->max_abs);
        cJSON_AddNumberToObject(c, "nmse", o->nmse);
        cJSON_AddNumberToObject(c, "margin", o->margin);
        cJSON_AddNumberToObject(c, "lowp_ratio", o->lowp_ratio);
        cJSON_AddNumberToObject(c, "unwritten", (double)r->unwritten);
        cJSON_AddNumberToObject(c, "stray_bytes", (double)r->stray_bytes);
        cJSON_AddStringToObject(c, "worst", r->worst);
        for (int t = 0; t < r->ntensors; t++)
            cJSON_AddItemToObject(c, r->tensor[t].name, tensor_json(&r->tensor[t].fig));
    }
    cJSON *feats = cJSON_CreateArray();
    for (int k = 0; r->op && k < r->op->n_features; k++)
        if (r->features & (1u << k))
            cJSON_AddItemToArray(feats, cJSON_CreateString(r->op->feature_names[k]));
    cJSON_AddItemToObject(c, "features", feats);
    cJSON_AddStringToObject(c, "repro", r->repro);
    return c;
}

static cJSON *policy_json(void)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "c", 8);
    cJSON_AddNumberToObject(p, "u_c", 0x1p-24);
    cJSON_AddNumberToObject(p, "nmse_f32_class", 1e-9);
    cJSON_AddNumberToObject(p, "calib_factor_out", 4);
    cJSON_AddNumberToObject(p, "calib_factor_lse", 16);
    cJSON_AddNumberToObject(p, "zero_trust", 0.9);
    cJSON_AddNumberToObject(p, "min_elements", 10);
    return p;
}

static cJSON *impls_json(const attn_result *rs, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    impl_list l;
    if (impls_collect(rs, n, &l) != 0)
        return a;
    for (size_t k = 0; k < l.n; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", l.name[k]);
        cJSON_AddNumberToObject(o, "cases", (double)l.cases[k]);
        cJSON_AddItemToArray(a, o);
    }
    impls_free(&l);
    return a;
}

int attn_report_json(const char *path, const attn_report_info *info, const attn_result *rs,
                     size_t n, char *err, size_t errsize)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "attn conform");
    cJSON_AddStringToObject(root, "backend", info->backend);
    cJSON_AddStringToObject(root, "describe", info->describe);
    cJSON *dev = cJSON_CreateObject();
    for (int i = 0; i < info->nprops; i++)
        cJSON_AddStringToObject(dev, info->props[i].key, info->props[i].value);
    cJSON_AddItemToObject(root, "device", dev);
    cJSON_AddStringToObject(root, "memory", memory_name(info));
    cJSON_AddNumberToObject(root, "repeat", info->repeat);
    cJSON_AddNumberToObject(root, "seed", (double)info->seed);
    cJSON_AddItemToObject(root, "policy", policy_json());
    cJSON_AddItemToObject(root, "implementations", impls_json(rs, n));
    cJSON *cases = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(cases, case_json(&rs[i]));
    cJSON_AddItemToObject(root, "cases", cases);
    const counts all = count_all(rs, n);
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddNumberToObject(sum, "passed", (double)all.passed);
    cJSON_AddNumberToObject(sum, "failed", (double)all.failed);
    cJSON_AddNumberToObject(sum, "mistrusted", (double)all.mistrusted);
    cJSON_AddNumberToObject(sum, "skipped", (double)all.skipped);
    cJSON_AddNumberToObject(sum, "xfail", (double)all.outcome[ATTN_OUTCOME_XFAIL]);
    cJSON_AddNumberToObject(sum, "fix", (double)all.outcome[ATTN_OUTCOME_FIX]);
    cJSON_AddNumberToObject(sum, "regression", (double)all.outcome[ATTN_OUTCOME_REGRESSION]);
    cJSON_AddItemToObject(root, "summary", sum);
    return write_json(path, root, err, errsize);
}

/* ---- JUnit XML ------------------------------------------------------------------------------ */

/* A growing string; oom set once an allocation fails (later appends are dropped). */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_raw(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_raw(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0)
        sb_raw(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* Text escaped for XML attribute values and character data: the five markup characters become
 * entities; control characters XML 1.0 forbids become '?'. */
static void sb_xml(sbuf *b, const char *s)
{
    for (; *s; s++) {
        const unsigned char ch = (unsigned char)*s;
        const char *ent = ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;"
                        : ch == '"' ? "&quot;" : ch == '\'' ? "&apos;" : NULL;
        if (ent)
            sb_raw(b, ent, strlen(ent));
        else if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r')
            sb_str(b, "?");
        else
            sb_raw(b, s, 1);
    }
}

/* JUnit's notion of the case: failed, skipped (also expected failures) or passed. */
static int junit_failed(const attn_result *r)
{
    if (r->outcome == ATTN_OUTCOME_REGRESSION)
        return 1;
    return r->outcome != ATTN_OUTCOME_XFAIL &&
           (r->status == ATTN_FAILED || r->status == ATTN_MISTRUSTED);
}

static int junit_skipped(const attn_result *r)
{
    return !junit_failed(r) && (r->status == ATTN_SKIPPED || r->outcome == ATTN_OUTCOME_XFAIL);
}

static void junit_case(sbuf *b, const attn_report_info *info, const attn_result *r)
{
    const char *group = "plain";
    for (int k = 0; r->op && k < r->op->n_features; k++)
        if (r->features & (1u << k)) {
            group = r->op->feature_names[k];
            break;
        }
    char fig[256], msg[640];
    fmt_fig(fig, sizeof fig, r);
    snprintf(msg, sizeof msg, "%s%s%s | %s", r->outcome ? outcome_name(r->outcome) : "",
             r->outcome ? ": " : "", r->reason[0] ? r->reason : attn_verdict_name(r->status),
             fig);
    sb_str(b, "    <testcase name=\"");
    sb_xml(b, r->name);
    sb_printf(b, "\" classname=\"attn.conform.");
    sb_xml(b, info->backend);
    sb_str(b, ".");
    sb_xml(b, group);
    sb_printf(b, "\" time=\"%.6f\">\n", r->ms / 1e3);
    const int failed = junit_failed(r);
    if (failed || junit_skipped(r)) {
        sb_str(b, failed ? "      <failure type=\"" : "      <skipped type=\"");
        sb_xml(b, label(r));
        sb_str(b, "\" message=\"");
        sb_xml(b, msg);
        sb_str(b, failed ? "\">" : "\"/>\n");
    }
    if (failed) { /* body: the worst element, for the figures behind the message */
        sb_xml(b, r->worst[0] ? r->worst : msg);
        sb_str(b, "</failure>\n");
    }
    sb_str(b, "      <system-out>repro: ");
    sb_xml(b, r->repro);
    sb_str(b, "\nimpl: ");
    sb_xml(b, r->impl[0] ? r->impl : "-");
    sb_printf(b, "\nexpected: %s</system-out>\n    </testcase>\n",
              attn_verdict_name(r->expected));
}

static void junit_prop(sbuf *b, const char *key, const char *value)
{
    sb_str(b, "      <property name=\"");
    sb_xml(b, key);
    sb_str(b, "\" value=\"");
    sb_xml(b, value);
    sb_str(b, "\"/>\n");
}

static void junit_props(sbuf *b, const attn_report_info *info, const attn_result *rs, size_t n)
{
    char num[32];
    sb_str(b, "    <properties>\n");
    junit_prop(b, "backend", info->backend);
    junit_prop(b, "describe", info->describe);
    for (int i = 0; i < info->nprops; i++)
        junit_prop(b, info->props[i].key, info->props[i].value);
    junit_prop(b, "memory", memory_name(info));
    snprintf(num, sizeof num, "%d", info->repeat);
    junit_prop(b, "repeat", num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)info->seed);
    junit_prop(b, "seed", num);
    impl_list l;
    if (impls_collect(rs, n, &l) == 0) {
        for (size_t k = 0; k < l.n; k++)
            junit_prop(b, "implementation", l.name[k]);
        impls_free(&l);
    }
    sb_str(b, "    </properties>\n");
}

int attn_report_junit(const char *path, const attn_report_info *info, const attn_result *rs,
                      size_t n, char *err, size_t errsize)
{
    size_t failures = 0, skipped = 0;
    double secs = 0;
    for (size_t i = 0; i < n; i++) {
        failures += (size_t)junit_failed(&rs[i]);
        skipped += (size_t)junit_skipped(&rs[i]);
        secs += rs[i].ms / 1e3;
    }
    sbuf b = {0};
    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"%zu\" "
                  "failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"%.6f\">\n",
              n, failures, skipped, secs);
    sb_str(&b, "  <testsuite name=\"attn conform ");
    sb_xml(&b, info->backend);
    sb_printf(&b, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"%.6f\">\n",
              n, failures, skipped, secs);
    junit_props(&b, info, rs, n);
    for (size_t i = 0; i < n; i++)
        junit_case(&b, info, &rs[i]);
    sb_str(&b, "  </testsuite>\n</testsuites>\n");
    int rc = write_text(path, b.oom ? NULL : b.s, err, errsize);
    free(b.s);
    return rc;
}

/* ---- expectations files --------------------------------------------------------------------- */

static int fails(attn_verdict v)
{
    return v == ATTN_FAILED || v == ATTN_MISTRUSTED;
}

/* Outcome of `got` where `expect` was recorded (PASSED for cases the file does not list). */
static attn_outcome judge(attn_verdict expect, attn_verdict got)
{
    if (fails(expect))
        return fails(got) ? ATTN_OUTCOME_XFAIL : got == ATTN_PASSED ? ATTN_OUTCOME_FIX
                                                                    : ATTN_OUTCOME_NONE;
    if (expect == ATTN_SKIPPED)
        return fails(got) ? ATTN_OUTCOME_REGRESSION : got == ATTN_PASSED ? ATTN_OUTCOME_FIX
                                                                         : ATTN_OUTCOME_NONE;
    /* expected to pass: a failure, and also a newly skipped case (lost coverage), regress */
    return got == ATTN_PASSED ? ATTN_OUTCOME_NONE : ATTN_OUTCOME_REGRESSION;
}

static int parse_verdict(const char *s, attn_verdict *v)
{
    const attn_verdict all[] = {ATTN_FAILED, ATTN_MISTRUSTED, ATTN_SKIPPED};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, attn_verdict_name(all[i])) == 0) {
            *v = all[i];
            return 0;
        }
    return -1;
}

/* Read a whole file (NUL-terminated). */
static char *slurp(const char *path, char *err, size_t errsize)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsize, "%s: cannot open", path);
        return NULL;
    }
    char *text = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)len + 1)) != NULL) {
        if (fread(text, 1, (size_t)len, f) == (size_t)len) {
            text[len] = '\0';
        } else {
            free(text);
            text = NULL;
        }
    }
    fclose(f);
    if (!text)
        snprintf(err, errsize, "%s: cannot read", path);
    return text;
}

/* Fill x from the parsed file; -1 with a message on a malformed entry. */
static int expect_entries(const char *path, const cJSON *map, attn_expect *x, char *err,
                          size_t errsize)
{
    x->e = calloc((size_t)cJSON_GetArraySize(map) + 1, sizeof *x->e);
    if (!x->e) {
        snprintf(err, errsize, "%s: out of memory", path);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, map)
    {
        attn_case c;
        char name[ATTN_CASE_NAME_MAX], perr[200];
        attn_expect_entry *e = &x->e[x->n];
        if (!cJSON_IsString(it) || parse_verdict(it->valuestring, &e->verdict)) {
            snprintf(err, errsize, "%s: \"%.200s\": expected \"FAILED\", \"MISTRUSTED\" or "
                     "\"SKIPPED\"", path, it->string);
            return -1;
        }
        if (attn_case_parse(it->string, &c, perr, sizeof perr)) {
            snprintf(err, errsize, "%s: \"%.200s\": %s", path, it->string, perr);
            return -1;
        }
        attn_case_format(&c, name, sizeof name);
        if (!(e->name = strdup(name))) {
            snprintf(err, errsize, "%s: out of memory", path);
            return -1;
        }
        x->n++;
    }
    return 0;
}

int attn_expect_load(const char *path, attn_expect *x, char *err, size_t errsize)
{
    memset(x, 0, sizeof *x);
    char *text = slurp(path, err, errsize);
    if (!text)
        return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "expect");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(root, "device");
    int rc = -1;
    if (!root)
        snprintf(err, errsize, "%s: not valid JSON", path);
    else if (!cJSON_IsObject(map))
        snprintf(err, errsize, "%s: needs an object \"expect\": {\"<case name>\": \"FAILED\"}",
                 path);
    else
        rc = expect_entries(path, map, x, err, errsize);
    if (rc == 0 && cJSON_IsString(dev))
        snprintf(x->device, sizeof x->device, "%s", dev->valuestring);
    cJSON_Delete(root);
    if (rc)
        attn_expect_free(x);
    return rc;
}

void attn_expect_free(attn_expect *x)
{
    for (size_t i = 0; x->e && i < x->n; i++)
        free(x->e[i].name);
    free(x->e);
    memset(x, 0, sizeof *x);
}

size_t attn_expect_apply(attn_expect *x, attn_result *rs, size_t n)
{
    size_t regressions = 0;
    for (size_t i = 0; i < n; i++) {
        rs[i].expected = ATTN_PASSED;
        for (size_t k = 0; k < x->n; k++)
            if (strcmp(x->e[k].name, rs[i].name) == 0) {
                rs[i].expected = x->e[k].verdict;
                x->e[k].used = 1;
            }
        rs[i].outcome = judge(rs[i].expected, rs[i].status);
        regressions += rs[i].outcome == ATTN_OUTCOME_REGRESSION;
    }
    return regressions;
}

int attn_expect_write(const char *path, const attn_report_info *info, const attn_result *rs,
                      size_t n, char *err, size_t errsize)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "device", info->device_id);
    cJSON_AddStringToObject(root, "backend", info->backend);
    cJSON_AddStringToObject(root, "describe", info->describe);
    cJSON_AddNumberToObject(root, "seed", (double)info->seed);
    cJSON *map = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++)
        if (rs[i].status != ATTN_PASSED && !cJSON_HasObjectItem(map, rs[i].name))
            cJSON_AddStringToObject(map, rs[i].name, attn_verdict_name(rs[i].status));
    cJSON_AddItemToObject(root, "expect", map);
    return write_json(path, root, err, errsize);
}
