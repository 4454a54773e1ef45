/* kvcache_fixture.c - the shared fixture of the attention over cache slots
 * (kvcache_fixture.h): cases run through the conformance harness on any backend, and the case
 * families every backend must pass. */
#include "kvcache_fixture.h"

#include "attn_rng.h"
#include "attn_tool_ops.h"

#include <stdio.h>
#include <string.h>

#define FX_SEED 4343u

const char *const kv_fx_backends[KV_FX_N_BACKENDS] = {"ref", "cpu", "opencl"};

attn_backend *kv_fx_open(const char *name)
{
    attn_backend *be = NULL;
    if (attn_backend_open(name, NULL, &be) == ATTN_OK)
        return be;
    fprintf(stderr, "skipping backend %s: %s\n", name, attn_last_error());
    return NULL;
}

attn_kvcache_case kv_fx_parse(const char *name)
{
    attn_case ac;
    char err[200];
    ck_assert_msg(attn_case_parse(name, &ac, err, sizeof err) == 0, "%s: %s", name, err);
    ck_assert_msg(ac.op == attn_tool_op_find("kvcache")->conform, "%s: not a kvcache case",
                  name);
    attn_kvcache_case c;
    memcpy(&c, attn_case_cdata(&ac), sizeof c);
    return c;
}

attn_result kv_fx_expect_pass(attn_backend *be, int device_mem, const attn_kvcache_case *c)
{
    attn_case ac = {.op = attn_tool_op_find("kvcache")->conform};
    memcpy(attn_case_data(&ac), c, sizeof *c);
    const attn_conform_opts o = {.seed = FX_SEED, .device_mem = device_mem, .repeat = 1};
    attn_result r;
    attn_conform_case(be, &ac, &o, NULL, NULL, &r);
    ck_assert_msg(r.status == ATTN_PASSED, "%s [%s, %s memory]: %s: %s | %s",
                  attn_verdict_name(r.status), attn_backend_name(be),
                  device_mem ? "device" : "host", r.name, r.reason, r.repro);
    return r;
}

/* Draw k-th value of axis `salt` among n choices (fixed seed: the same cases every run). */
static int64_t pick(int k, int salt, int64_t n)
{
    return (int64_t)(attn_rng_bits(FX_SEED, 300 + (uint64_t)salt, (uint64_t)k) % (uint64_t)n);
}

int kv_fx_grid_count(void)
{
    return 48;
}

/* Every axis drawn independently: sizes and head groups, holes, slot order, lag, positions
 * mode, pairs, partial rotation, theta, soft-cap, dtypes, layout, key_score. Fewer live slots
 * than queries, or a lag that would leave most rows seeing nothing, are dropped, and key_score
 * needs 16 slots (the trust gate wants enough values that are not 0). */
attn_kvcache_case kv_fx_grid(int k)
{
    static const int64_t sqs[] = {1, 1, 2, 5, 16}, groups[] = {1, 2, 4}, hkvs[] = {1, 2, 3};
    static const int64_t dims[] = {16, 32, 64, 80, 128}, slots[] = {1, 7, 33, 64, 200};
    static const int64_t holes[] = {0, 0, 10, 40, 75}, lags[] = {0, 0, 0, 2, 9};
    static const double thetas[] = {10000.0, 10000.0, 500000.0};
    static const attn_dtype dts[] = {ATTN_F32, ATTN_F32, ATTN_F16, ATTN_BF16};
    attn_kvcache_case c;
    attn_kvcache_case_default(&c);
    c.b = 1 + pick(k, 0, 2);
    c.sq = sqs[pick(k, 1, 5)];
    c.hkv = hkvs[pick(k, 2, 3)];
    c.hq = c.hkv * groups[pick(k, 3, 3)];
    c.dk = dims[pick(k, 4, 5)];
    c.dv = pick(k, 5, 3) ? c.dk : dims[pick(k, 6, 5)];
    c.nslot = slots[pick(k, 7, 5)];
    c.holes = holes[pick(k, 8, 5)];
    c.lag = lags[pick(k, 9, 5)];
    if (c.nslot - attn_kvcache_case_holes(&c) < c.sq) { /* fewer live slots than queries */
        c.holes = 0;
        c.nslot = c.nslot > c.sq ? c.nslot : c.sq;
    }
    if (c.nslot - attn_kvcache_case_holes(&c) < c.sq + c.lag) /* most rows would see nothing */
        c.lag = 0;
    c.sorted = (int)pick(k, 10, 3) == 0;
    c.pos = (attn_kv_positions)pick(k, 11, 3);
    c.pairs = pick(k, 12, 2) ? ATTN_ROPE_INTERLEAVED : ATTN_ROPE_HALF;
    if (c.pos != ATTN_KV_POS_STORED && pick(k, 13, 3) == 0)
        c.rot = 2 + 2 * pick(k, 14, c.dk / 2);
    c.theta = thetas[pick(k, 15, 3)];
    c.cap = pick(k, 16, 4) == 0 ? 20.0 : 0.0;
    c.dt_q = dts[pick(k, 17, 4)];
    c.dt_kv = dts[pick(k, 18, 4)];
    c.dt_out = dts[pick(k, 19, 4)];
    c.bhsd = (int)pick(k, 20, 2);
    c.key_score = pick(k, 21, 3) != 0 && c.b * c.nslot * c.hkv >= 16;
    if (c.sq * c.hq * c.dv < 16) /* the trust gate wants 10 elements or more */
        c.hq = c.hkv * 4;
    return c;
}

int kv_fx_decode_count(void)
{
    return 12;
}

/* The steady decode step the fast backends run without a mask: one query, every slot live and
 * older than it, in sorted or shuffled slots (sometimes the same positions in every KV head),
 * each positions mode, MHA, GQA and MQA. */
attn_kvcache_case kv_fx_decode(int k)
{
    attn_kvcache_case c;
    attn_kvcache_case_default(&c);
    c.hkv = 1 + k % 3;
    c.hq = c.hkv * (1 + k % 4);
    c.dk = c.dv = k % 2 ? 64 : 128;
    c.nslot = 17 + 61 * k;
    c.sorted = k % 2;
    if (k % 4 == 1) /* positions 0 .. nslot-1 in slot order: every KV head holds the same */
        c.span = c.nslot;
    c.pos = (attn_kv_positions)(k % 3);
    c.dt_q = c.dt_kv = k % 4 == 3 ? ATTN_F16 : ATTN_F32;
    c.key_score = k % 2 == 0;
    return c;
}
