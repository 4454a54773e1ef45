/* attn_report.h - results of conformance cases: running one case against a backend (in
 * cmd_conform.c), the per-case report line with its repro command, the summary table with the
 * closing "N passed, N failed, N skipped" line, the JSON results file (cJSON), the JUnit XML
 * file, and per-device expectations files (known failures tracked as XFAIL, REGRESSION, FIX). */
#ifndef ATTN_REPORT_H_
#define ATTN_REPORT_H_

#include "attn/attn.h"
#include "attn_cases.h"
#include "attn_policy.h"

#include <stdint.h>
#include <stdio.h>

/* How a result compares with an expectations file (ATTN_OUTCOME_NONE without one). */
typedef enum attn_outcome {
    ATTN_OUTCOME_NONE = 0,   /* as expected (or no expectations file) */
    ATTN_OUTCOME_XFAIL,      /* expected to fail and failed: tracked, not counted */
    ATTN_OUTCOME_FIX,        /* expected to fail or be skipped, and passed */
    ATTN_OUTCOME_REGRESSION  /* worse than expected: fails the run */
} attn_outcome;

typedef struct attn_result {
    char name[ATTN_CASE_NAME_MAX];
    char repro[ATTN_CASE_NAME_MAX + 256];
    char impl[256];         /* attn_sdpa_impl_name() of the call ("" if it was not reached) */
    attn_verdict status;
    char reason[320];       /* why it did not pass ("" when PASSED) */
    char worst[200];        /* the worst element, "out[b,s,h,d] gold=.. got=.. tau=.." */
    unsigned features;      /* attn_case_features() */
    double ms;              /* backend forward time (first run) */
    int compared;           /* the gates ran (not for skipped, invalid or erroring cases) */
    int has_lse;
    attn_policy_out out, lse; /* the gates' figures for each checked tensor */
    int64_t unwritten;      /* output elements still holding the poison pattern */
    int64_t stray_bytes;    /* bytes changed outside the output views (guards and gaps) */
    int64_t guard_bytes;    /* of those (and of inputs), bytes changed in guard zones */
    attn_verdict expected;  /* from the expectations file (PASSED when not listed) */
    attn_outcome outcome;
} attn_result;

/* How each case is run. */
typedef struct attn_conform_opts {
    uint64_t seed;
    int device_mem;         /* tensors in attn_buffer allocations with 1 KiB guard zones */
    int repeat;             /* backend runs on the same inputs, all bit-identical (>= 1) */
    const char *repro_opts; /* options added to the repro command ("--device 0:0"), or NULL */
} attn_conform_opts;

/* Called after the backend's (first) forward call and before checking, on the views the
 * backend wrote: host views, or in device mode the device views (buffer + offset; corrupt
 * them with attn_buffer_write). Lets a test corrupt a result on purpose to prove the suite
 * catches it. NULL in normal runs. */
typedef void (*attn_conform_tamper)(const attn_tensor *out, const attn_tensor *lse, void *ctx);

/* Run one case (implemented in cmd_conform.c): fill inputs from the seed, compute the f64 gold
 * and the f32 naive result with the reference, poison and guard the tensors, run the backend
 * (o->repeat times), and apply the policy to out and lse. Always fills *r; returns r->status. */
attn_verdict attn_conform_case(attn_backend *be, const attn_case *c, const attn_conform_opts *o,
                               attn_conform_tamper tamper, void *ctx, attn_result *r);

/* `attn conform` with a tamper hook applied to every case (tests; NULL = the command). */
int attn_cmd_conform_hooked(int argc, char **argv, attn_conform_tamper tamper, void *ctx);

/* Everything the header, JSON and JUnit files say about the run. */
#define ATTN_REPORT_PROPS 12
typedef struct attn_report_info {
    const char *backend, *describe;
    uint64_t seed;
    size_t ncases;
    int device_mem, repeat;
    const char *device_id;  /* identifies the device in expectations files */
    int nprops;             /* platform, device, driver, OpenCL versions (opencl) */
    struct {
        char key[32];
        char value[256];
    } props[ATTN_REPORT_PROPS];
} attn_report_info;

/* Add a key/value to info's properties (ignored when full). */
void attn_report_prop(attn_report_info *info, const char *key, const char *value);

/* The command that reruns one case. */
void attn_report_repro(char *buf, size_t size, const char *backend, const char *opts,
                       uint64_t seed, const char *name);
/* Header: backend and its description, memory mode, device properties, seed, number of cases,
 * policy constants. */
void attn_report_header(FILE *f, const attn_report_info *info);
/* One line per case (status or outcome, name, figures, time, impl, reason, repro); verbose adds
 * the worst element and the per-tensor figures. */
void attn_report_line(FILE *f, const attn_result *r, int verbose);
/* Counts per status and per feature group, the implementations used, the expectations line
 * (when `expect` is set), then the last line. MISTRUSTED counts as failed there. Returns the
 * number of failed + mistrusted cases. */
size_t attn_report_summary(FILE *f, const attn_result *rs, size_t n, const char *expect);
/* Write everything as JSON / as JUnit XML. Return 0, or -1 with a message in err. */
int attn_report_json(const char *path, const attn_report_info *info, const attn_result *rs,
                     size_t n, char *err, size_t errsize);
int attn_report_junit(const char *path, const attn_report_info *info, const attn_result *rs,
                      size_t n, char *err, size_t errsize);

/* ---- expectations files ---- */

typedef struct attn_expect_entry {
    char *name;             /* canonical case name */
    attn_verdict verdict;   /* FAILED, MISTRUSTED or SKIPPED */
    int used;               /* matched a case of this run */
} attn_expect_entry;

typedef struct attn_expect {
    char device[256];       /* "device" of the file ("" if absent) */
    attn_expect_entry *e;
    size_t n;
} attn_expect;

/* Read {"device": "...", "expect": {"<case name>": "FAILED" | "MISTRUSTED" | "SKIPPED"}}.
 * Names are canonicalised. Returns 0, or -1 with a message in err. */
int attn_expect_load(const char *path, attn_expect *x, char *err, size_t errsize);
void attn_expect_free(attn_expect *x);
/* Set expected and outcome of every result. Returns the number of REGRESSIONs. */
size_t attn_expect_apply(attn_expect *x, attn_result *rs, size_t n);
/* Write an expectations file listing every case of this run that did not pass. */
int attn_expect_write(const char *path, const attn_report_info *info, const attn_result *rs,
                      size_t n, char *err, size_t errsize);

#endif /* ATTN_REPORT_H_ */
