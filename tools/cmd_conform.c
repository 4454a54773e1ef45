/* cmd_conform.c - `attn conform`: selects cases (the built-in lists of every op, a case file,
 * names), opens the backend, runs each case through the harness of attn_conform.c (with
 * --isolate each case in a child process of its own), and reports (lines, summary, JSON, JUnit,
 * expectations). docs/conformance.md describes the output. */
#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_conform.h"
#include "attn_isolate.h"
#include "attn_report.h"
#ifdef ATTN_HAVE_OPENCL
#include "attn/attn_opencl.h"
#endif

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the command ---------------------------------------------------------------------------- */

typedef struct conf_opts {
    const char *backend, *cases_file, *filter, *json, *junit, *expect, *write_expect, *device;
    const char *options; /* more backend options, "key=value,..." */
    const char **names; /* --case, repeatable */
    int nnames, quick, list, verbose;
    int isolate;        /* each case (and the header's backend query) in a child process */
    int memory;         /* -1 backend default, 0 host, 1 device */
    int64_t repeat;
    int64_t timeout;    /* seconds per isolated case, 0 = none */
    uint64_t seed;
} conf_opts;

static const char usage_text[] =
    "usage: attn conform [--backend B] [--device P:D] [--options STR] [--memory device|host]\n"
    "                    [--repeat N] [--isolate [--timeout S]]\n"
    "                    [--cases FILE] [--filter STR] [--case NAME]... [--seed N] [--quick]\n"
    "                    [--json FILE] [--junit FILE] [--expect FILE] [--write-expect FILE]\n"
    "                    [--list] [-v]\n"
    "  --backend B   backend to test (default cpu, ref in a reference-only build; see\n"
    "                `attn backends`)\n"
    "  --device P:D  opencl: platform P, device D as `attn devices` lists them\n"
    "                (backend option device=P:D; env ATTN_OPENCL_DEVICE)\n"
    "  --options STR more backend options \"key=value,...\" (opencl: br=2,wg=64,local=1 for\n"
    "                a tuning row, cache=off, ...; cpu: threads=N, simd=off)\n"
    "  --memory M    device: tensors in backend buffers with 1 KiB guard zones (default for\n"
    "                opencl); host: host memory, guarded outputs (default otherwise)\n"
    "  --repeat N    run the backend N times per case; every run must be bit-identical\n"
    "  --isolate     run each case in a child process with its own backend: a crash or\n"
    "                abort fails that case (\"crashed: signal 11 ...\") and the run goes on\n"
    "  --timeout S   with --isolate: a case still running after S seconds is killed and\n"
    "                FAILED\n"
    "  --cases FILE  case names, one per line ('#' comments) instead of the built-in list\n"
    "  --filter STR  only cases whose name contains STR\n"
    "  --case NAME   run this case (any valid name, e.g. from a repro line); repeatable\n"
    "  --seed N      fill seed (default 42)\n"
    "  --quick       the quick subset: @quick cases of the built-in lists (about a third) or of\n"
    "                the --cases file\n"
    "  --json FILE   write all results as JSON\n"
    "  --junit FILE  write JUnit XML (one testcase per case)\n"
    "  --expect FILE expectations of this device: listed failures are XFAIL, a case that does\n"
    "                worse than listed is a REGRESSION, one that does better a FIX\n"
    "  --write-expect FILE  write the expectations of this run (its non-passing cases)\n"
    "  --list        print the selected case names and exit\n"
    "  -v            figures per tensor and the worst element of every case\n"
    "Exit status: 0 if no case FAILED or was MISTRUSTED (with --expect: no REGRESSION), 1\n"
    "otherwise, 2 on usage errors, 3 if the backend is not available (no OpenCL platform).\n";

/* Options that take a string value, and the field each one sets. */
static const struct {
    const char *name;
    size_t off;
} string_opts[] = {
    {"--backend", offsetof(conf_opts, backend)},   {"--cases", offsetof(conf_opts, cases_file)},
    {"--filter", offsetof(conf_opts, filter)},     {"--json", offsetof(conf_opts, json)},
    {"--junit", offsetof(conf_opts, junit)},       {"--expect", offsetof(conf_opts, expect)},
    {"--write-expect", offsetof(conf_opts, write_expect)},
    {"--device", offsetof(conf_opts, device)},     {"--options", offsetof(conf_opts, options)},
};

/* One option at argv[*i]: 1 consumed, 0 unknown, -1 error (printed). */
static int parse_one(int argc, char **argv, int *i, conf_opts *o)
{
    static const char *const memories[] = {"host", "device", NULL};
    const char *val = NULL;
    int r;
    for (size_t k = 0; k < sizeof string_opts / sizeof string_opts[0]; k++)
        if ((r = attn_arg_value(argc, argv, i, string_opts[k].name, &val)) != 0) {
            if (r > 0)
                *(const char **)((char *)o + string_opts[k].off) = val;
            return r;
        }
    if ((r = attn_arg_value(argc, argv, i, "--case", &val)) != 0)
        return r < 0 ? -1 : (o->names[o->nnames++] = val, 1);
    if ((r = attn_arg_value(argc, argv, i, "--memory", &val)) != 0)
        return r < 0 || attn_parse_choice("--memory", val, memories, &o->memory) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--repeat", &val)) != 0)
        return r < 0 || attn_parse_i64("--repeat", val, 1, 1000, &o->repeat) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--timeout", &val)) != 0)
        return r < 0 || attn_parse_i64("--timeout", val, 1, 86400, &o->timeout) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--seed", &val)) != 0) {
        int64_t s;
        if (r < 0 || attn_parse_i64("--seed", val, 0, INT64_MAX, &s))
            return -1;
        o->seed = (uint64_t)s;
        return 1;
    }
    int *flags[] = {&o->quick, &o->list, &o->isolate};
    const char *flag_names[] = {"--quick", "--list", "--isolate"};
    for (size_t k = 0; k < 3; k++)
        if ((r = attn_arg_flag(argv, *i, flag_names[k])) != 0)
            return r < 0 ? -1 : (*flags[k] = 1, 1);
    if (strcmp(argv[*i], "-v") == 0 || strcmp(argv[*i], "--verbose") == 0)
        return o->verbose = 1;
    return 0;
}

static int parse_opts(int argc, char **argv, conf_opts *o)
{
    memset(o, 0, sizeof *o);
#ifdef ATTN_HAVE_CPU
    o->backend = "cpu";
#else
    o->backend = "ref"; /* a reference-only build */
#endif
    o->seed = 42;
    o->memory = -1;
    o->repeat = 1;
    o->names = calloc((size_t)argc, sizeof *o->names);
    if (!o->names)
        return -1;
    for (int i = 1; i < argc; i++) {
        if (attn_arg_flag(argv, i, "--help") == 1 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 1;
        }
        int r = parse_one(argc, argv, &i, o);
        if (r < 0)
            return -1;
        if (r == 0) {
            fprintf(stderr, "attn: conform: unknown option '%s'\n%s", argv[i], usage_text);
            return -1;
        }
    }
    if (o->timeout && !o->isolate) {
        fprintf(stderr, "attn: conform: --timeout needs --isolate (a case in this process "
                        "cannot be stopped)\n");
        return -1;
    }
    if (o->device && strcmp(o->backend, "opencl") != 0) {
        fprintf(stderr, "attn: conform: --device is an opencl option (backend is '%s')\n",
                o->backend);
        return -1;
    }
    return 0;
}

/* The selected cases: --case names, else --cases FILE, else the built-in list; then --filter. */
static attn_case *select_cases(const conf_opts *o, size_t *n)
{
    attn_case *cs = NULL;
    char err[320];
    if (o->nnames) {
        cs = calloc((size_t)o->nnames, sizeof *cs);
        for (int i = 0; cs && i < o->nnames; i++)
            if (attn_case_parse(o->names[i], &cs[i], err, sizeof err)) {
                fprintf(stderr, "attn: conform: --case '%s': %s\n", o->names[i], err);
                free(cs);
                return NULL;
            }
        *n = (size_t)o->nnames;
    } else if (o->cases_file) {
        cs = attn_cases_read(o->cases_file, n, err, sizeof err);
        if (!cs)
            fprintf(stderr, "attn: conform: %s\n", err);
        size_t k = 0;
        for (size_t i = 0; cs && o->quick && i < *n; i++)
            if (cs[i].quick)
                cs[k++] = cs[i];
        if (cs && o->quick)
            *n = k;
    } else {
        cs = attn_cases_builtin(o->quick, n);
    }
    if (!cs || !o->filter)
        return cs;
    size_t k = 0;
    char name[ATTN_CASE_NAME_MAX];
    for (size_t i = 0; i < *n; i++) {
        attn_case_format(&cs[i], name, sizeof name);
        if (strstr(name, o->filter))
            cs[k++] = cs[i];
    }
    *n = k;
    return cs;
}

static void progress(size_t i, size_t n, const char *name)
{
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\r\033[K[%zu/%zu] %.60s", i + 1, n, name);
}

static void progress_clear(void)
{
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\r\033[K");
}

/* Open the backend. Returns 0, 2 (unknown backend or bad option such as a device index that
 * does not exist) or 3 (the backend cannot run here: no OpenCL in the build, no platform). */
static int open_backend(const conf_opts *o, attn_backend **be)
{
    char opts[320] = "";
    if (o->device)
        snprintf(opts, sizeof opts, "device=%s", o->device);
    if (o->options && strlen(opts) + strlen(o->options) + 2 > sizeof opts) {
        fprintf(stderr, "attn: conform: --options too long\n");
        return 2;
    }
    if (o->options)
        snprintf(opts + strlen(opts), sizeof opts - strlen(opts), "%s%s", opts[0] ? "," : "",
                 o->options);
#ifndef ATTN_HAVE_OPENCL
    if (strcmp(o->backend, "opencl") == 0) {
        fprintf(stderr, "attn: conform: backend 'opencl' is not available: this build has no "
                        "OpenCL support (meson found no OpenCL ICD loader)\n");
        return 3;
    }
#endif
    attn_status st = attn_backend_open(o->backend, opts[0] ? opts : NULL, be);
    if (st == ATTN_OK)
        return 0;
    if (st == ATTN_ERR_BACKEND) {
        fprintf(stderr, "attn: conform: backend '%s': %s\n", o->backend, attn_last_error());
        return 2;
    }
    fprintf(stderr, "attn: conform: backend '%s' is not available: %s\n", o->backend,
            attn_last_error());
    return 3;
}

/* The header facts of a run, self-contained so that a child process can send them. */
typedef struct conf_info {
    int rc; /* open_backend's result: the facts are valid when 0 */
    attn_report_info info;
    char describe[256], devid[400];
} conf_info;

/* Header facts: the backend's describe line, and for opencl the platform and device. */
static void gather_info(attn_backend *be, const conf_opts *o, size_t n, conf_info *ci)
{
    attn_report_info *info = &ci->info;
    char *devid = ci->devid;
    const size_t devid_size = sizeof ci->devid;
    memset(info, 0, sizeof *info);
    snprintf(ci->describe, sizeof ci->describe, "%s", attn_backend_describe(be));
    info->backend = o->backend;
    info->describe = ci->describe;
    info->seed = o->seed;
    info->ncases = n;
    info->device_mem = o->memory == 1 || (o->memory < 0 && strcmp(o->backend, "opencl") == 0);
    info->repeat = (int)o->repeat;
    snprintf(devid, devid_size, "%s", info->describe);
    info->device_id = devid;
#ifdef ATTN_HAVE_OPENCL
    attn_opencl_device_info di;
    char v[256];
    if (strcmp(o->backend, "opencl") != 0 || attn_opencl_backend_device(be, &di) != ATTN_OK)
        return;
    snprintf(v, sizeof v, "%.120s (%.120s)", di.platform_name, di.platform_version);
    attn_report_prop(info, "platform", v);
    snprintf(v, sizeof v, "%d:%d %.120s (%.80s, %s)", di.platform, di.device, di.name, di.vendor,
             di.type);
    attn_report_prop(info, "device", v);
    attn_report_prop(info, "driver", di.driver_version);
    attn_report_prop(info, "opencl", di.version);
    attn_report_prop(info, "opencl_c", di.c_version);
    snprintf(devid, devid_size, "%.120s | %.120s | driver %.120s", di.platform_name, di.name,
             di.driver_version);
#endif
}

/* Options of the repro command beyond backend, seed and case. */
static void repro_options(const conf_opts *o, char *buf, size_t n)
{
    static const char *const memories[] = {"host", "device"};
    int k = 0;
    buf[0] = '\0';
    if (o->device)
        k += snprintf(buf + k, n - (size_t)k, "--device %s ", o->device);
    if (o->options && (size_t)k < n)
        k += snprintf(buf + k, n - (size_t)k, "--options '%s' ", o->options);
    if (o->memory >= 0 && (size_t)k < n)
        k += snprintf(buf + k, n - (size_t)k, "--memory %s ", memories[o->memory]);
    if (o->repeat > 1 && (size_t)k < n)
        k += snprintf(buf + k, n - (size_t)k, "--repeat %lld ", (long long)o->repeat);
    if (k > 0 && (size_t)k <= n)
        buf[k - 1] = '\0';
}

/* Expectations entries that named no case of this run (a filtered run, or a renamed case). */
static void expect_unused(const attn_expect *x)
{
    size_t unused = 0;
    for (size_t k = 0; k < x->n; k++)
        unused += !x->e[k].used;
    if (unused)
        printf("note: %zu expectation%s name cases not in this run\n", unused,
               unused == 1 ? "" : "s");
}

/* Write the requested files; returns 0 or 1 (a file failed, message printed). */
static int write_files(const conf_opts *o, const attn_report_info *info, const attn_result *rs,
                       size_t n)
{
    char err[320];
    int rc = 0;
    if (o->json && attn_report_json(o->json, info, rs, n, err, sizeof err))
        rc = fprintf(stderr, "attn: conform: %s\n", err) > 0;
    if (o->junit && attn_report_junit(o->junit, info, rs, n, err, sizeof err))
        rc = fprintf(stderr, "attn: conform: %s\n", err) > 0;
    if (o->write_expect && attn_expect_write(o->write_expect, info, rs, n, err, sizeof err))
        rc = fprintf(stderr, "attn: conform: %s\n", err) > 0;
    return rc ? 1 : 0;
}

/* One case, where it runs: in this process on `be`, or (be NULL, --isolate) in a child that
 * opens its own backend. */
typedef struct conf_case_job {
    const conf_opts *o;
    attn_backend *be;
    const attn_case *c;
    const attn_conform_opts *co;
    attn_conform_tamper tamper;
    void *ctx;
} conf_case_job;

static int case_in_child(void *arg, void *out, size_t size)
{
    const conf_case_job *j = arg;
    attn_backend *be = NULL;
    if (size != sizeof(attn_result) || open_backend(j->o, &be) != 0)
        return 1;
    attn_conform_case(be, j->c, j->co, j->tamper, j->ctx, out);
    attn_backend_close(be);
    return 0;
}

static void run_case(const conf_case_job *j, attn_result *r)
{
    if (j->be) {
        attn_conform_case(j->be, j->c, j->co, j->tamper, j->ctx, r);
        return;
    }
    char why[200];
    if (attn_isolate_run(case_in_child, (void *)j, r, sizeof *r, (double)j->o->timeout, why,
                         sizeof why) == 0)
        return;
    /* the child left no result: the case failed, named as the harness would have named it */
    memset(r, 0, sizeof *r);
    r->op = j->c->op;
    r->expected = ATTN_PASSED;
    r->status = ATTN_FAILED;
    attn_case_format(j->c, r->name, sizeof r->name);
    attn_report_repro(r->repro, sizeof r->repro, j->o->backend, j->co->repro_opts, j->o->seed,
                      r->name);
    r->features = attn_case_features(j->c);
    snprintf(r->reason, sizeof r->reason, "isolated case %s", why);
}

static int run_cases(const conf_opts *o, attn_backend *be, const conf_info *ci, attn_expect *x,
                     const attn_case *cs, size_t n, attn_conform_tamper tamper, void *ctx)
{
    attn_result *rs = calloc(n ? n : 1, sizeof *rs);
    if (!rs) {
        fprintf(stderr, "attn: conform: out of memory\n");
        return 1;
    }
    const attn_report_info *info = &ci->info;
    char ropts[400];
    repro_options(o, ropts, sizeof ropts);
    const attn_conform_opts co = {.seed = o->seed, .device_mem = info->device_mem,
                                  .repeat = (int)o->repeat, .repro_opts = ropts};
    attn_report_header(stdout, info);
    if (o->isolate)
        printf("isolated: each case in a child process%s\n",
               o->timeout ? ", killed after --timeout" : "");
    if (x && x->device[0] && strcmp(x->device, ci->devid) != 0)
        printf("warning: expectations file %s is for device '%s', this run is on '%s'\n",
               o->expect, x->device, ci->devid);
    size_t regressions = 0;
    for (size_t i = 0; i < n; i++) {
        char name[ATTN_CASE_NAME_MAX];
        attn_case_format(&cs[i], name, sizeof name);
        progress(i, n, name);
        const conf_case_job job = {o, be, &cs[i], &co, tamper, ctx};
        run_case(&job, &rs[i]);
        if (x)
            regressions += attn_expect_apply(x, &rs[i], 1);
        progress_clear();
        attn_report_line(stdout, &rs[i], o->verbose);
        fflush(stdout);
    }
    if (x)
        expect_unused(x);
    size_t bad = attn_report_summary(stdout, rs, n, x ? o->expect : NULL);
    int rc = (x ? regressions : bad) ? 1 : 0;
    rc |= write_files(o, info, rs, n);
    if (n == 0)
        fprintf(stderr, "attn: conform: no case selected\n");
    free(rs);
    return rc;
}

typedef struct info_job {
    const conf_opts *o;
    size_t n;
} info_job;

static int info_in_child(void *arg, void *out, size_t size)
{
    const info_job *j = arg;
    conf_info *ci = out;
    attn_backend *be = NULL;
    if (size != sizeof *ci)
        return 1;
    ci->rc = open_backend(j->o, &be); /* prints why it fails */
    if (ci->rc == 0)
        gather_info(be, j->o, j->n, ci);
    attn_backend_close(be);
    return 0;
}

/* The header facts from a child process; its pointers are re-aimed at this copy. */
static int info_isolated(const conf_opts *o, size_t n, conf_info *ci)
{
    info_job j = {o, n};
    char why[200];
    if (attn_isolate_run(info_in_child, &j, ci, sizeof *ci, (double)o->timeout, why,
                         sizeof why) != 0) {
        fprintf(stderr, "attn: conform: opening backend '%s' in a child process: %s\n",
                o->backend, why);
        return 3;
    }
    ci->info.backend = o->backend;
    ci->info.describe = ci->describe;
    ci->info.device_id = ci->devid;
    return ci->rc;
}

static int run_all(const conf_opts *o, const attn_case *cs, size_t n,
                   attn_conform_tamper tamper, void *ctx)
{
    attn_expect x;
    char err[320];
    if (o->expect && attn_expect_load(o->expect, &x, err, sizeof err)) {
        fprintf(stderr, "attn: conform: %s\n", err);
        return 2;
    }
    /* With --isolate this process never opens the backend: a child that inherits a process's
     * OpenCL or OpenMP state cannot use it. */
    attn_backend *be = NULL;
    conf_info *ci = calloc(1, sizeof *ci);
    int rc = !ci ? (fprintf(stderr, "attn: conform: out of memory\n"), 1)
             : o->isolate ? info_isolated(o, n, ci)
                          : open_backend(o, &be);
    if (rc == 0 && !o->isolate)
        gather_info(be, o, n, ci);
    if (rc == 0)
        rc = run_cases(o, be, ci, o->expect ? &x : NULL, cs, n, tamper, ctx);
    attn_backend_close(be);
    free(ci);
    if (o->expect)
        attn_expect_free(&x);
    return rc;
}

int attn_cmd_conform_hooked(int argc, char **argv, attn_conform_tamper tamper, void *ctx)
{
    conf_opts o;
    int r = parse_opts(argc, argv, &o);
    if (r != 0) {
        free(o.names);
        return r > 0 ? 0 : 2;
    }
    size_t n = 0;
    attn_case *cs = select_cases(&o, &n);
    int rc;
    if (!cs) {
        rc = 2;
    } else if (o.list) {
        char name[ATTN_CASE_NAME_MAX];
        for (size_t i = 0; i < n; i++) {
            attn_case_format(&cs[i], name, sizeof name);
            printf("%s\n", name);
        }
        fprintf(stderr, "%zu cases\n", n);
        rc = 0;
    } else {
        rc = run_all(&o, cs, n, tamper, ctx);
    }
    free(cs);
    free(o.names);
    return rc;
}

int attn_cmd_conform(int argc, char **argv)
{
    return attn_cmd_conform_hooked(argc, argv, NULL, NULL);
}
