/* kvcache_fixture.h - the one test fixture of the attention over cache slots, shared by every
 * backend's suite: a problem described as a conformance case (tools/kvcache_case.h), built,
 * filled and judged by the conformance harness (poisoned and guarded tensors, host or device
 * memory, the f64 reference, the policy of docs/conformance.md), and the families every
 * backend must pass. */
#ifndef ATTN_KVCACHE_FIXTURE_H_
#define ATTN_KVCACHE_FIXTURE_H_

#include "attn_conform.h"
#include "kvcache_case.h"

#include <check.h>

/* Every backend the suites run on; one this build or machine lacks is skipped. */
#define KV_FX_N_BACKENDS 3
extern const char *const kv_fx_backends[KV_FX_N_BACKENDS];
/* The backend opened, or NULL after printing why it is skipped. */
attn_backend *kv_fx_open(const char *name);

/* A case from its conformance name ("kvcache b1 sq1 ..."); fails the test on a bad name. */
attn_kvcache_case kv_fx_parse(const char *name);
/* Run a case on an open backend (tensors in its buffers when device_mem) and fail the test
 * unless it PASSED; the message names the case, the reason and the repro command. Returns the
 * result (r.impl: the implementation that ran). */
attn_result kv_fx_expect_pass(attn_backend *be, int device_mem, const attn_kvcache_case *c);

/* The families every backend runs (check_kvcache_backends.c), case k of n: */
int kv_fx_grid_count(void);
attn_kvcache_case kv_fx_grid(int k);   /* sampled grid over every axis of the case grammar */
int kv_fx_decode_count(void);
attn_kvcache_case kv_fx_decode(int k); /* steady decode steps: every slot live and seen */

#endif /* ATTN_KVCACHE_FIXTURE_H_ */
