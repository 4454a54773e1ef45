/* rope_fixture.c - the shared RoPE test fixture (rope_fixture.h): cases run through the
 * conformance harness on any backend, and the case families every backend must pass. */
#include "rope_fixture.h"

#include "attn_rng.h"
#include "attn_tool_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX_SEED 4242u

const char *const rope_fx_backends[ROPE_FX_N_BACKENDS] = {"ref", "cpu", "opencl"};

attn_backend *rope_fx_open(const char *name)
{
    attn_backend *be = NULL;
    if (attn_backend_open(name, NULL, &be) == ATTN_OK)
        return be;
    fprintf(stderr, "skipping backend %s: %s\n", name, attn_last_error());
    return NULL;
}

attn_rope_case rope_fx_parse(const char *name)
{
    attn_case ac;
    char err[200];
    ck_assert_msg(attn_case_parse(name, &ac, err, sizeof err) == 0, "%s: %s", name, err);
    ck_assert_msg(ac.op == attn_tool_op_find("rope")->conform, "%s: not a rope case", name);
    attn_rope_case c;
    memcpy(&c, attn_case_cdata(&ac), sizeof c);
    return c;
}

void rope_fx_expect_pass(attn_backend *be, int device_mem, const attn_rope_case *c)
{
    attn_case ac = {.op = attn_tool_op_find("rope")->conform};
    memcpy(attn_case_data(&ac), c, sizeof *c);
    const attn_conform_opts o = {.seed = FX_SEED, .device_mem = device_mem, .repeat = 1};
    attn_result r;
    attn_conform_case(be, &ac, &o, NULL, NULL, &r);
    ck_assert_msg(r.status == ATTN_PASSED, "%s [%s, %s memory]: %s: %s | %s",
                  attn_verdict_name(r.status), attn_backend_name(be),
                  device_mem ? "device" : "host", r.name, r.reason, r.repro);
}

/* Draw k-th value of axis `salt` among n choices (fixed seed: the same cases every run). */
static int64_t pick(int k, int salt, int64_t n)
{
    return (int64_t)(attn_rng_bits(FX_SEED, 200 + (uint64_t)salt, (uint64_t)k) % (uint64_t)n);
}

int rope_fx_grid_count(void)
{
    return 96;
}

/* Every axis drawn independently: sizes, both layouts, partial rotation, theta, offsets,
 * position tensors, dtypes of x and out, and the four views. */
attn_rope_case rope_fx_grid(int k)
{
    static const int64_t seqs[] = {1, 2, 7, 17, 64, 130}, heads[] = {1, 2, 3, 8};
    static const int64_t dims[] = {2, 6, 20, 32, 64, 80, 128, 130};
    static const int64_t offsets[] = {0, 0, 1, 4095, 100000, -3};
    static const double thetas[] = {10000.0, 10000.0, 500000.0, 1e6, 50.0};
    static const attn_dtype dts[] = {ATTN_F32, ATTN_F32, ATTN_F16, ATTN_BF16};
    attn_rope_case c;
    attn_rope_case_default(&c);
    c.b = 1 + pick(k, 0, 3);
    c.s = seqs[pick(k, 1, 6)];
    c.h = heads[pick(k, 2, 4)];
    c.d = dims[pick(k, 3, 8)];
    c.pairs = pick(k, 4, 2) ? ATTN_ROPE_INTERLEAVED : ATTN_ROPE_HALF;
    if (pick(k, 5, 3) == 0) /* an even part of d, sometimes all of it spelled out */
        c.rot = 2 + 2 * pick(k, 6, c.d / 2);
    c.theta = thetas[pick(k, 7, 5)];
    c.offset = offsets[pick(k, 8, 6)];
    c.pos = (attn_rope_pos)pick(k, 9, 5);
    c.pmax = pick(k, 10, 2) ? 4096 : 3000000;
    c.dt_x = dts[pick(k, 11, 4)];
    c.dt_out = dts[pick(k, 12, 4)];
    c.view = (attn_rope_view)pick(k, 13, 4);
    if (attn_rope_case_elems(&c) < 16) /* the trust gate wants 10 elements or more */
        c.s = 17;
    return c;
}

int rope_fx_far_count(void)
{
    return 12;
}

/* Far positions, where an angle computed in f32 is off by more than the tolerance: offsets
 * 1e4 .. 1e9 and position tensors up to 2^31 - 1, both layouts, f32 and bf16 outputs. */
attn_rope_case rope_fx_far(int k)
{
    static const int64_t offsets[] = {10000, 100000, 1000000, 1000000000};
    attn_rope_case c;
    attn_rope_case_default(&c);
    c.b = 2;
    c.s = 9;
    c.h = 3;
    c.d = 64;
    c.pairs = k % 2 ? ATTN_ROPE_INTERLEAVED : ATTN_ROPE_HALF;
    c.offset = offsets[k % 4];
    if (k >= 8) { /* the same through position tensors */
        c.offset = 0;
        c.pos = k % 2 ? ATTN_ROPE_POS_I64 : ATTN_ROPE_POS_I32;
        c.pmax = k % 4 < 2 ? 1000000 : (int64_t)1 << 31;
    }
    c.dt_out = k % 3 == 2 ? ATTN_BF16 : ATTN_F32;
    return c;
}
