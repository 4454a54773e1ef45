/* attn_report.h - results of conformance cases: running one case against a backend (in
 * cmd_conform.c), the per-case report line with its repro command, the summary table with the
 * closing "N passed, N failed, N skipped" line, and the JSON results file (cJSON). */
#ifndef ATTN_REPORT_H_
#define ATTN_REPORT_H_

#include "attn/attn.h"
#include "attn_cases.h"
#include "attn_policy.h"

#include <stdint.h>
#include <stdio.h>

typedef struct attn_result {
    char name[ATTN_CASE_NAME_MAX];
    char repro[ATTN_CASE_NAME_MAX + 128];
    attn_verdict status;
    char reason[320];       /* why it did not pass ("" when PASSED) */
    char worst[200];        /* the worst element, "out[b,s,h,d] gold=.. got=.. tau=.." */
    unsigned features;      /* attn_case_features() */
    double ms;              /* backend forward time */
    int compared;           /* the gates ran (not for skipped, invalid or erroring cases) */
    int has_lse;
    attn_policy_out out, lse; /* the gates' figures for each checked tensor */
    int64_t unwritten;      /* output elements still holding the poison pattern */
    int64_t stray_bytes;    /* bytes changed outside the output views (guards and gaps) */
} attn_result;

/* Called after the backend's forward call and before checking, on the output views: lets a
 * test corrupt a result on purpose to prove the suite catches it. NULL in normal runs. */
typedef void (*attn_conform_tamper)(const attn_tensor *out, const attn_tensor *lse, void *ctx);

/* Run one case (implemented in cmd_conform.c): fill inputs from seed, compute the f64 gold and
 * the f32 naive result with the reference, poison and guard the outputs, run the backend, and
 * apply the policy to out and lse. Always fills *r; returns r->status. */
attn_verdict attn_conform_case(attn_backend *be, const attn_case *c, uint64_t seed,
                               attn_conform_tamper tamper, void *ctx, attn_result *r);

/* The command that reruns one case. */
void attn_report_repro(char *buf, size_t size, const char *backend, uint64_t seed,
                       const char *name);
/* Header: backend and its description, seed, number of cases, policy constants. */
void attn_report_header(FILE *f, const char *backend, const char *describe, uint64_t seed,
                        size_t ncases);
/* One line per case (status, name, figures, time, reason, repro); verbose adds the worst
 * element and the per-tensor figures. */
void attn_report_line(FILE *f, const attn_result *r, int verbose);
/* Counts per status and per feature group, then the last line. MISTRUSTED counts as failed
 * there. Returns the number of failed + mistrusted cases. */
size_t attn_report_summary(FILE *f, const attn_result *rs, size_t n);
/* Write everything as JSON. Returns 0, or -1 with a message in err. */
int attn_report_json(const char *path, const char *backend, const char *describe, uint64_t seed,
                     const attn_result *rs, size_t n, char *err, size_t errsize);

#endif /* ATTN_REPORT_H_ */
