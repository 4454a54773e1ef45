/* attn_report.h - reporting conformance results (attn_result of attn_conform.h): the per-case
 * report line with its repro command, the summary table with the closing "N passed, N failed,
 * N skipped" line, the JSON results file (cJSON), the JUnit XML file, and per-device
 * expectations files (known failures tracked as XFAIL, REGRESSION, FIX). */
#ifndef ATTN_REPORT_H_
#define ATTN_REPORT_H_

#include "attn/attn.h"
#include "attn_conform.h"
#include "attn_policy.h"

#include <stdint.h>
#include <stdio.h>

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
