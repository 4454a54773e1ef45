/* rope_fixture.h - the one RoPE test fixture, shared by every backend's suite: a problem
 * described as a conformance case (tools/rope_case.h), built, filled and judged by the
 * conformance harness (poisoned and guarded tensors, host or device memory, the f64
 * reference, the policy of docs/conformance.md), and the families every backend must pass. */
#ifndef ATTN_ROPE_FIXTURE_H_
#define ATTN_ROPE_FIXTURE_H_

#include "attn_conform.h"
#include "rope_case.h"

#include <check.h>

/* Every backend the suites run on; one this build or machine lacks is skipped. */
#define ROPE_FX_N_BACKENDS 3
extern const char *const rope_fx_backends[ROPE_FX_N_BACKENDS];
/* The backend opened, or NULL after printing why it is skipped. */
attn_backend *rope_fx_open(const char *name);

/* A case from its conformance name ("rope b1 s17 ..."); fails the test on a bad name. */
attn_rope_case rope_fx_parse(const char *name);
/* Run a case on an open backend (tensors in its buffers when device_mem) and fail the test
 * unless it PASSED; the message names the case, the reason and the repro command. */
void rope_fx_expect_pass(attn_backend *be, int device_mem, const attn_rope_case *c);

/* The families every backend runs (check_rope_backends.c), case k of n: */
int rope_fx_grid_count(void);
attn_rope_case rope_fx_grid(int k); /* sampled grid over every axis of the case grammar */
int rope_fx_far_count(void);
attn_rope_case rope_fx_far(int k);  /* positions from 1e4 to 2^31 by offset and by tensor */

#endif /* ATTN_ROPE_FIXTURE_H_ */
