/* sdpa_fixture.h - the one SDPA test fixture, shared by every backend's suite: a problem
 * described as a conformance case (tools/sdpa_case.h: shape, masks, windows, dtypes, layout),
 * built, filled and judged by the conformance harness (poisoned and guarded tensors, host or
 * device memory, the f64 reference, the policy of docs/conformance.md), and the families of
 * problems every backend must pass. */
#ifndef ATTN_SDPA_FIXTURE_H_
#define ATTN_SDPA_FIXTURE_H_

#include "attn_conform.h"
#include "sdpa_case.h"

#include <stdint.h>

/* A case with every field at its default and the given shape (B 1, Hq 2, Hkv 1, lse on). */
attn_sdpa_case sdpa_fx_case(int64_t sq, int64_t skv, int64_t d);

/* How a fixture run is done: backend options, memory, seed, and an optional input hook
 * (attn_conform_opts.inputs). */
typedef struct sdpa_fx {
    const char *backend;
    const char *options;  /* backend options, or NULL */
    int device_mem;
    uint64_t seed;        /* 0: 777 */
    void (*inputs)(attn_conf_data *d, void *ctx);
    void *inputs_ctx;
    /* Called with the outputs the backend wrote (attn_conform_tamper), to keep a copy. */
    attn_conform_tamper outputs;
    void *outputs_ctx;
} sdpa_fx;

/* Run one case on x's backend (opened for the call) and return the harness's result. */
attn_result sdpa_fx_run(const sdpa_fx *x, const attn_sdpa_case *c);
/* The same on an open backend (x->backend and x->options unused). */
attn_result sdpa_fx_run_on(attn_backend *be, const sdpa_fx *x, const attn_sdpa_case *c);
/* A case from its conformance name ("sdpa b1 sq17 ..."); fails the test on a bad name. */
attn_sdpa_case sdpa_fx_parse(const char *name);
/* Run it and fail the test unless it PASSED (the message names the case, the reason and the
 * repro command). */
void sdpa_fx_expect_pass(const sdpa_fx *x, const attn_sdpa_case *c);
/* Fail the test unless r PASSED (or was only MISTRUSTED by the trust gate). */
void sdpa_fx_assert_pass(const sdpa_fx *x, const attn_result *r);

/* Set element [i0, i1, i2, i3] of the named tensor's host view to x (rounded to its dtype;
 * u8 masks take x != 0). For input hooks. */
void sdpa_fx_set(attn_conf_data *d, const char *name, int64_t i0, int64_t i1, int64_t i2,
                 int64_t i3, double x);

/* The families every backend runs (check_sdpa_backends.c), case k of n: */
int sdpa_fx_grid_count(void);
attn_sdpa_case sdpa_fx_grid(int k);      /* sampled grid over every axis */
int sdpa_fx_windows_count(void);
attn_sdpa_case sdpa_fx_windows(int k);   /* every window, both alignments, causal and not */
int sdpa_fx_masks_count(void);
attn_sdpa_case sdpa_fx_masks(int k);     /* every mask broadcast, soft-cap, f16/bf16 */
int sdpa_fx_edges_count(void);
attn_sdpa_case sdpa_fx_edges(int k);     /* sizes at tile boundaries +- 1 */
int sdpa_fx_decode_count(void);
attn_sdpa_case sdpa_fx_decode(int k);    /* Sq 1..4 over long KV, odd head dims */
int sdpa_fx_special_count(void);
attn_sdpa_case sdpa_fx_special(int k);   /* non-finite inputs, seen and hidden keys */

#endif /* ATTN_SDPA_FIXTURE_H_ */
