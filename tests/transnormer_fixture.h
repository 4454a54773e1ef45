/* transnormer_fixture.h - the one TransNormer test fixture, shared by every backend's suite: a
 * problem described as a conformance case (tools/transnormer_case.h), built, filled and judged
 * by the conformance harness (poisoned and guarded tensors, host or device memory, the f64
 * reference, the policy of docs/conformance.md), and the case family every backend must pass. */
#ifndef ATTN_TRANSNORMER_FIXTURE_H_
#define ATTN_TRANSNORMER_FIXTURE_H_

#include "attn_conform.h"
#include "transnormer_case.h"

/* A case from its conformance name ("transnormer b1 s17 ..."); fails the test on a bad name. */
attn_transnormer_case tn_fx_parse(const char *name);
/* Run a case on an open backend (seed 777) and return the harness's result. */
attn_result tn_fx_run_on(attn_backend *be, int device_mem, const attn_transnormer_case *c);
/* Open the backend, run the case, fail the test unless it PASSED (message: case, reason,
 * repro). */
void tn_fx_expect_pass(const char *backend, int device_mem, const attn_transnormer_case *c);

/* The family every backend runs (check_transnormer_backends.c): a grid over mode, causal,
 * feature map / scores, block sizes (dividing S or not, >= S), GQA, Dk != Dv, dtypes, layouts. */
int tn_fx_grid_count(void);
attn_transnormer_case tn_fx_grid(int k);

#endif /* ATTN_TRANSNORMER_FIXTURE_H_ */
