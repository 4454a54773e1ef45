/* check_sdpa_backends.c - every backend of this build (ref, cpu, opencl) on the same SDPA case
 * families through the one shared fixture (sdpa_fixture.h): a sampled grid over every axis,
 * windows, masks and dtypes, tile edges, decode shapes with odd head dims, non-finite inputs
 * behind seen and hidden keys (docs/semantics.md); host memory, and
 * device memory (attn_buffer with guard zones) on the backends that have it. Under sanitizers
 * (ATTN_TEST_QUICK=1) every fourth case runs. A backend this build or machine lacks is skipped
 * with its reason. */
#include "sdpa_fixture.h"

#include "check_run.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/* Backend, memory mode: each family runs on each of these. */
static const struct {
    const char *backend;
    int device_mem;
    int thin; /* every thin-th case: the other modes reach the same kernels */
} runs[] = {{"ref", 0, 3}, {"cpu", 0, 1}, {"cpu", 1, 3}, {"opencl", 1, 3}, {"opencl", 0, 6}};
enum { N_RUNS = sizeof runs / sizeof runs[0] };

static int available(int r)
{
    attn_backend *be = NULL;
    if (attn_backend_open(runs[r].backend, NULL, &be) != ATTN_OK) {
        fprintf(stderr, "skipping backend %s: %s\n", runs[r].backend, attn_last_error());
        return 0;
    }
    attn_backend_close(be);
    return 1;
}

static int stride(void)
{
    return getenv("ATTN_TEST_QUICK") ? 4 : 1;
}

/* Run cases k = 0, step, 2 step, ... of a family on run r. The ref backend (its storage path:
 * the values are the reference's own) and the second memory mode of a backend thin out; on
 * opencl each new kernel specialisation is a compile, so it takes every third case (the
 * conformance list and check_opencl cover it beside these). */
static void family(int r, int count, attn_sdpa_case (*make)(int))
{
    if (!available(r))
        return;
    const sdpa_fx x = {.backend = runs[r].backend, .device_mem = runs[r].device_mem};
    for (int k = r % runs[r].thin; k < count; k += stride() * runs[r].thin) {
        const attn_sdpa_case c = make(k);
        sdpa_fx_expect_pass(&x, &c);
    }
}

/* The families, each run on each backend / memory mode. */
static const struct {
    int (*count)(void);
    attn_sdpa_case (*make)(int);
} families[] = {{sdpa_fx_grid_count, sdpa_fx_grid},     {sdpa_fx_windows_count, sdpa_fx_windows},
                {sdpa_fx_masks_count, sdpa_fx_masks},   {sdpa_fx_edges_count, sdpa_fx_edges},
                {sdpa_fx_decode_count, sdpa_fx_decode},
                {sdpa_fx_special_count, sdpa_fx_special}};
enum { N_FAMILIES = sizeof families / sizeof families[0] };

/* _i = family * N_RUNS + run */
START_TEST(family_on_backend)
{
    family(_i % N_RUNS, families[_i / N_RUNS].count(), families[_i / N_RUNS].make);
}
END_TEST

static Suite *backends_suite(void)
{
    Suite *s = suite_create("sdpa_backends");
    TCase *tc = tcase_create("families");
    tcase_set_timeout(tc, 1200);
    tcase_add_loop_test(tc, family_on_backend, 0, N_FAMILIES * N_RUNS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(backends_suite());
}
