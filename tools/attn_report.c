/* attn_report.c - printing conformance results: case lines, repro commands, the summary table
 * and the JSON results file (format in docs/conformance.md). */
#include "attn_report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void attn_report_repro(char *buf, size_t size, const char *backend, uint64_t seed,
                       const char *name)
{
    snprintf(buf, size, "attn conform --backend %s --seed %llu --case '%s'", backend,
             (unsigned long long)seed, name);
}

void attn_report_header(FILE *f, const char *backend, const char *describe, uint64_t seed,
                        size_t ncases)
{
    fprintf(f, "attn conform: backend %s (%s)\n", backend, describe);
    fprintf(f, "seed %llu, %zu cases, gold = reference f64, lowp = reference naive f32\n",
            (unsigned long long)seed, ncases);
    fprintf(f, "policy: invariants (NaN/Inf both ways, masked rows exactly 0, lse -inf, "
               "no unwritten or stray writes);\n"
               "        |d| <= 8 u_c sqrt(n_acc) cond + 2 u_out |gold| + tiny, u_c = 2^-24;"
               " NMSE <= 1e-9 + (2 u_out)^2;\n"
               "        max|d| <= max(floor, F max|lowp - gold|), F = 4 out, 16 lse;"
               " MISTRUSTED if > 90%% zeros or < 10 elements\n");
}

static void fmt_fig(char *buf, size_t n, const attn_result *r)
{
    int k = snprintf(buf, n, "maxabs=%.2e nmse=%.2e margin=%.3f lowp=%.2f", r->out.max_abs,
                     r->out.nmse, r->out.margin, r->out.lowp_ratio);
    if (r->has_lse && k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, " lse_margin=%.3f lse_lowp=%.2f", r->lse.margin,
                 r->lse.lowp_ratio);
}

void attn_report_line(FILE *f, const attn_result *r, int verbose)
{
    char fig[160] = "not compared";
    if (r->compared)
        fmt_fig(fig, sizeof fig, r);
    fprintf(f, "%-10s %s | %s | %.1f ms |%s%s%s repro: %s\n", attn_verdict_name(r->status),
            r->name, fig, r->ms, r->reason[0] ? " " : "", r->reason, r->reason[0] ? " |" : "",
            r->repro);
    if (verbose && r->compared) {
        fprintf(f,
                "    out: nmse=%.3e sqrt=%.3e margin=%.4f lowp_err=%.3e floor=%.3e zeros=%.1f%%\n",
                r->out.nmse, sqrt(r->out.nmse), r->out.margin, r->out.lowp_err,
                r->out.calib_floor, 100.0 * r->out.zero_frac);
        if (r->has_lse)
            fprintf(f, "    lse: nmse=%.3e margin=%.4f maxabs=%.3e lowp_err=%.3e\n", r->lse.nmse,
                    r->lse.margin, r->lse.max_abs, r->lse.lowp_err);
        if (r->worst[0])
            fprintf(f, "    worst %s\n", r->worst);
    }
}

/* ---- summary -------------------------------------------------------------------------------- */

typedef struct counts {
    size_t total, passed, failed, mistrusted, skipped;
} counts;

static void count(counts *c, attn_verdict v)
{
    c->total++;
    c->passed += v == ATTN_PASSED;
    c->failed += v == ATTN_FAILED;
    c->mistrusted += v == ATTN_MISTRUSTED;
    c->skipped += v == ATTN_SKIPPED;
}

static void row(FILE *f, const char *name, const counts *c)
{
    fprintf(f, "%-12s %6zu %7zu %7zu %11zu %8zu\n", name, c->total, c->passed, c->failed,
            c->mistrusted, c->skipped);
}

size_t attn_report_summary(FILE *f, const attn_result *rs, size_t n)
{
    counts all = {0}, feat[ATTN_FEAT_COUNT] = {{0}};
    for (size_t i = 0; i < n; i++) {
        count(&all, rs[i].status);
        for (int k = 0; k < ATTN_FEAT_COUNT; k++)
            if (rs[i].features & (1u << k))
                count(&feat[k], rs[i].status);
    }
    fprintf(f, "\n%-12s %6s %7s %7s %11s %8s\n", "feature", "cases", "passed", "failed",
            "mistrusted", "skipped");
    row(f, "all", &all);
    for (int k = 0; k < ATTN_FEAT_COUNT; k++)
        if (feat[k].total)
            row(f, attn_feature_name((attn_feature)k), &feat[k]);
    const size_t bad = all.failed + all.mistrusted;
    fprintf(f, "%zu passed, %zu failed, %zu skipped\n", all.passed, bad, all.skipped);
    return bad;
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
    return t;
}

static cJSON *case_json(const attn_result *r)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "case", r->name);
    cJSON_AddStringToObject(c, "status", attn_verdict_name(r->status));
    cJSON_AddStringToObject(c, "reason", r->reason);
    cJSON_AddNumberToObject(c, "time_ms", r->ms);
    if (r->compared) {
        cJSON_AddNumberToObject(c, "max_abs", r->out.max_abs);
        cJSON_AddNumberToObject(c, "nmse", r->out.nmse);
        cJSON_AddNumberToObject(c, "margin", r->out.margin);
        cJSON_AddNumberToObject(c, "lowp_ratio", r->out.lowp_ratio);
        cJSON_AddNumberToObject(c, "unwritten", (double)r->unwritten);
        cJSON_AddNumberToObject(c, "stray_bytes", (double)r->stray_bytes);
        cJSON_AddStringToObject(c, "worst", r->worst);
        cJSON_AddItemToObject(c, "out", tensor_json(&r->out));
        if (r->has_lse)
            cJSON_AddItemToObject(c, "lse", tensor_json(&r->lse));
    }
    cJSON *feats = cJSON_CreateArray();
    for (int k = 0; k < ATTN_FEAT_COUNT; k++)
        if (r->features & (1u << k))
            cJSON_AddItemToArray(feats, cJSON_CreateString(attn_feature_name((attn_feature)k)));
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

int attn_report_json(const char *path, const char *backend, const char *describe, uint64_t seed,
                     const attn_result *rs, size_t n, char *err, size_t errsize)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "attn conform");
    cJSON_AddStringToObject(root, "backend", backend);
    cJSON_AddStringToObject(root, "describe", describe);
    cJSON_AddNumberToObject(root, "seed", (double)seed);
    cJSON_AddItemToObject(root, "policy", policy_json());
    cJSON *cases = cJSON_CreateArray();
    counts all = {0};
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(cases, case_json(&rs[i]));
        count(&all, rs[i].status);
    }
    cJSON_AddItemToObject(root, "cases", cases);
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddNumberToObject(sum, "passed", (double)all.passed);
    cJSON_AddNumberToObject(sum, "failed", (double)all.failed);
    cJSON_AddNumberToObject(sum, "mistrusted", (double)all.mistrusted);
    cJSON_AddNumberToObject(sum, "skipped", (double)all.skipped);
    cJSON_AddItemToObject(root, "summary", sum);

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    int rc = -1;
    FILE *f = text ? fopen(path, "w") : NULL;
    if (!text)
        snprintf(err, errsize, "%s: out of memory while formatting JSON", path);
    else if (!f)
        snprintf(err, errsize, "%s: cannot open for writing", path);
    else if (fputs(text, f) < 0 || fputc('\n', f) == EOF)
        snprintf(err, errsize, "%s: write failed", path);
    else
        rc = 0;
    if (f && fclose(f) != 0 && rc == 0) {
        snprintf(err, errsize, "%s: write failed", path);
        rc = -1;
    }
    cJSON_free(text);
    return rc;
}
