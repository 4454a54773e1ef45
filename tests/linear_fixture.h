/* linear_fixture.h - the one linear attention test fixture, shared by every backend's suite: a
 * problem named as a conformance case (tools/linear_case.h), built, filled and judged by the
 * conformance harness (poisoned, guarded tensors in host or device memory, the f64 reference,
 * the policy of docs/conformance.md); the case families every backend must pass; and the
 * split-and-resume check (state out, then state in, against one call). */
#ifndef ATTN_LINEAR_FIXTURE_H_
#define ATTN_LINEAR_FIXTURE_H_

#include "attn_conform.h"
#include "linear_case.h"

#include <stddef.h>

/* Where a fixture case runs: backend, its options (NULL: none), memory mode. */
typedef struct linear_fx {
    const char *backend, *options;
    int device_mem;
} linear_fx;

/* Whether the backend opens here (else its reason goes to stderr: the caller skips it). */
int linear_fx_available(const char *backend);
/* The case of a conformance name; fails the test on a bad name. */
attn_linear_case linear_fx_parse(const char *name);
/* Run a case through the harness on x's backend (opened for the call). */
attn_result linear_fx_run(const linear_fx *x, const attn_linear_case *c);
/* Run a named case and fail the test unless it PASSED (message: reason and repro). */
void linear_fx_expect_pass(const linear_fx *x, const char *name);

/* The sampled family every backend runs: case k (0 <= k < linear_fx_family_count()) as a
 * name into buf. */
int linear_fx_family_count(void);
const char *linear_fx_family(int k, char *buf, size_t n);

/* Split-and-resume of the case's problem (its sizes and options; f32 storage) at position
 * `split`: the first part with state_out (and z_out), the second with them as state_in, against
 * one call over the whole sequence. Returns the largest difference of out and the final state
 * relative to their largest magnitudes; fails the test if a call fails. */
double linear_fx_split_resume(const linear_fx *x, const attn_linear_case *c, int64_t split);

#endif /* ATTN_LINEAR_FIXTURE_H_ */
