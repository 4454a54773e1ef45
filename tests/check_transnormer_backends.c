/* check_transnormer_backends.c - every backend of this build (ref, cpu, opencl) on the same
 * TransNormer grid through the shared fixture (transnormer_fixture.h), host memory and device
 * memory where the backend has it. Under sanitizers (ATTN_TEST_QUICK=1) every third case runs.
 * A backend this build or machine lacks is skipped with its reason. */
#include "transnormer_fixture.h"

#include "check_run.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static const struct {
    const char *backend;
    int device_mem;
} runs[] = {{"ref", 0}, {"cpu", 0}, {"cpu", 1}, {"opencl", 1}, {"opencl", 0}};
enum { N_RUNS = sizeof runs / sizeof runs[0] };

START_TEST(grid_on_backend)
{
    attn_backend *be = NULL;
    if (attn_backend_open(runs[_i].backend, NULL, &be) != ATTN_OK) {
        fprintf(stderr, "skipping backend %s: %s\n", runs[_i].backend, attn_last_error());
        return;
    }
    attn_backend_close(be);
    const int step = getenv("ATTN_TEST_QUICK") ? 3 : 1;
    for (int k = 0; k < tn_fx_grid_count(); k += step) {
        const attn_transnormer_case c = tn_fx_grid(k);
        tn_fx_expect_pass(runs[_i].backend, runs[_i].device_mem, &c);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("transnormer_backends");
    TCase *tc = tcase_create("grid");
    tcase_set_timeout(tc, 1200);
    tcase_add_loop_test(tc, grid_on_backend, 0, N_RUNS);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
