/* transnormer_fixture.c - the shared TransNormer test fixture (transnormer_fixture.h). */
#include "transnormer_fixture.h"

#include "attn_tool_ops.h"

#include <check.h>
#include <string.h>

attn_transnormer_case tn_fx_parse(const char *name)
{
    attn_case ac;
    char err[200];
    ck_assert_msg(attn_case_parse(name, &ac, err, sizeof err) == 0, "%s: %s", name, err);
    ck_assert_msg(ac.op == attn_tool_op_find("transnormer")->conform, "%s: not a transnormer case",
                  name);
    attn_transnormer_case c;
    memcpy(&c, attn_case_cdata(&ac), sizeof c);
    return c;
}

attn_result tn_fx_run_on(attn_backend *be, int device_mem, const attn_transnormer_case *c)
{
    attn_case ac;
    memset(&ac, 0, sizeof ac);
    ac.op = attn_tool_op_find("transnormer")->conform;
    memcpy(attn_case_data(&ac), c, sizeof *c);
    const attn_conform_opts o = {.seed = 777, .device_mem = device_mem, .repeat = 1};
    attn_result r;
    attn_conform_case(be, &ac, &o, NULL, NULL, &r);
    return r;
}

void tn_fx_expect_pass(const char *backend, int device_mem, const attn_transnormer_case *c)
{
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open(backend, NULL, &be) == ATTN_OK, "%s: %s", backend,
                  attn_last_error());
    const attn_result r = tn_fx_run_on(be, device_mem, c);
    attn_backend_close(be);
    ck_assert_msg(r.status == ATTN_PASSED, "%s [%s, %s memory]: %s: %s | %s",
                  attn_verdict_name(r.status), backend, device_mem ? "device" : "host", r.name,
                  r.reason, r.repro);
}

/* The grid: 2 modes x 2 causal x 4 maps or 2 score kinds x 2 pad settings, each with a shape,
 * block, heads, dims, dtypes and layout taken in turn from short lists. */
enum { GRID_N = 2 * 2 * 4 };

int tn_fx_grid_count(void)
{
    return GRID_N;
}

attn_transnormer_case tn_fx_grid(int k)
{
    static const int64_t seqs[] = {1, 7, 63, 64, 65, 129, 200, 31};
    static const int64_t blocks[] = {16, 64, 7, 256};
    static const int64_t heads[][2] = {{2, 2}, {4, 1}, {3, 3}, {6, 2}};
    static const int64_t dims[][2] = {{32, 32}, {64, 16}, {20, 36}, {128, 64}};
    static const attn_dtype dts[][3] = {{ATTN_F32, ATTN_F32, ATTN_F32},
                                        {ATTN_F16, ATTN_F16, ATTN_F32},
                                        {ATTN_BF16, ATTN_F32, ATTN_BF16},
                                        {ATTN_F32, ATTN_F32, ATTN_F16}};
    attn_transnormer_case c;
    attn_transnormer_case_default(&c);
    c.mode = k / 16 ? ATTN_TRANSNORMER_MODE_DIAG : ATTN_TRANSNORMER_MODE_NORM;
    c.causal = k / 8 % 2;
    c.feature = (attn_transnormer_feature)(k % 4);
    c.scores = (attn_transnormer_scores)(k % 2);
    c.pad = (attn_transnormer_pad)(k / 2 % 2);
    c.s = seqs[k % 8] + 4 * (k / 8);
    c.block = blocks[(k / 3) % 4];
    c.hq = heads[k % 4][0];
    c.hkv = heads[k % 4][1];
    c.dk = dims[(k / 4) % 4][0];
    c.dv = dims[(k / 4) % 4][1];
    c.b = 1 + k % 3 / 2;
    c.dt_q = dts[(k / 5) % 4][0];
    c.dt_kv = dts[(k / 5) % 4][1];
    c.dt_out = dts[(k / 5) % 4][2];
    c.bhsd = k % 5 == 2;
    return c;
}
