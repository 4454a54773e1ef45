/* sdpa_fixture.c - the shared SDPA test fixture (sdpa_fixture.h): cases run through the
 * conformance harness on any backend, and the case families every backend must pass. */
#include "sdpa_fixture.h"

#include "attn_half.h"
#include "attn_rng.h"
#include "attn_tool_ops.h"

#include <check.h>
#include <string.h>

#define FX_SEED 777u

attn_sdpa_case sdpa_fx_case(int64_t sq, int64_t skv, int64_t d)
{
    attn_sdpa_case c;
    attn_sdpa_case_default(&c);
    c.sq = sq;
    c.skv = skv;
    c.dk = c.dv = d;
    c.hq = 2;
    c.hkv = 1;
    c.lse = 1;
    return c;
}

attn_sdpa_case sdpa_fx_parse(const char *name)
{
    attn_case ac;
    char err[200];
    ck_assert_msg(attn_case_parse(name, &ac, err, sizeof err) == 0, "%s: %s", name, err);
    ck_assert_msg(ac.op == attn_tool_op_find("sdpa")->conform, "%s: not an sdpa case", name);
    attn_sdpa_case c;
    memcpy(&c, attn_case_cdata(&ac), sizeof c);
    return c;
}

attn_result sdpa_fx_run_on(attn_backend *be, const sdpa_fx *x, const attn_sdpa_case *c)
{
    attn_case ac;
    memset(&ac, 0, sizeof ac);
    ac.op = attn_tool_op_find("sdpa")->conform;
    memcpy(attn_case_data(&ac), c, sizeof *c);
    attn_result r;
    const attn_conform_opts o = {.seed = x->seed ? x->seed : FX_SEED,
                                 .device_mem = x->device_mem,
                                 .repeat = 1,
                                 .inputs = x->inputs,
                                 .inputs_ctx = x->inputs_ctx};
    attn_conform_case(be, &ac, &o, x->outputs, x->outputs_ctx, &r);
    return r;
}

attn_result sdpa_fx_run(const sdpa_fx *x, const attn_sdpa_case *c)
{
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open(x->backend, x->options, &be) == ATTN_OK, "%s: %s",
                  x->backend, attn_last_error());
    attn_result r = sdpa_fx_run_on(be, x, c);
    attn_backend_close(be);
    return r;
}

void sdpa_fx_assert_pass(const sdpa_fx *x, const attn_result *r)
{
    /* MISTRUSTED (the trust gate: mostly masked rows) passed every other gate: a degenerate
     * shape is still a valid check of the exact zeros */
    ck_assert_msg(r->status == ATTN_PASSED || r->status == ATTN_MISTRUSTED,
                  "%s [%s%s%s, %s memory]: %s: %s | %s", attn_verdict_name(r->status),
                  x->backend, x->options ? " " : "", x->options ? x->options : "",
                  x->device_mem ? "device" : "host", r->name, r->reason, r->repro);
}

void sdpa_fx_expect_pass(const sdpa_fx *x, const attn_sdpa_case *c)
{
    const attn_result r = sdpa_fx_run(x, c);
    sdpa_fx_assert_pass(x, &r);
}

void sdpa_fx_set(attn_conf_data *d, const char *name, int64_t i0, int64_t i1, int64_t i2,
                 int64_t i3, double x)
{
    const attn_tensor *t = attn_conf_host_view(d, name);
    ck_assert_msg(t != NULL, "no tensor %s", name);
    const int64_t at = i0 * t->stride[0] + i1 * t->stride[1] + i2 * t->stride[2] +
                       i3 * t->stride[3];
    if (t->dtype == ATTN_U8)
        ((uint8_t *)t->data)[at] = x != 0;
    else
        attn_store_f64(t->data, t->dtype, at, x);
}

/* ---- families ------------------------------------------------------------------------------- */

static const int64_t seqs[] = {1, 3, 17, 64, 113, 300};
static const int64_t dims[] = {32, 64, 80, 128};
static const int64_t windows[] = {0, 16, 127, -1};
static const int mask_kinds[] = {ATTN_MASK_NONE, ATTN_MDIM_B | ATTN_MDIM_S | ATTN_MDIM_H,
                                 ATTN_MDIM_S, ATTN_MDIM_H, 0, ATTN_MDIM_B | ATTN_MDIM_S};

static int64_t pick(uint64_t n, uint64_t salt, int64_t count)
{
    return (int64_t)(attn_rng_bits(FX_SEED, 100 + salt, n) % (uint64_t)count);
}

int sdpa_fx_grid_count(void)
{
    return 140;
}

/* Every dimension drawn independently (fixed seed): 140 cases cover all values of each axis
 * many times over without the full product's cost. */
attn_sdpa_case sdpa_fx_grid(int k)
{
    static const int64_t hq[] = {1, 4, 8}, hkv[] = {1, 2};
    static const attn_dtype dts[] = {ATTN_F32, ATTN_F32, ATTN_F16, ATTN_BF16};
    const uint64_t n = (uint64_t)k;
    attn_sdpa_case c = sdpa_fx_case(seqs[pick(n, 0, 6)], seqs[pick(n, 1, 6)], dims[pick(n, 2, 4)]);
    c.b = 1 + pick(n, 3, 2);
    c.hkv = hkv[pick(n, 4, 2)];
    c.hq = hq[pick(n, 5, 3)];
    if (c.hq % c.hkv)
        c.hq *= c.hkv;
    if (pick(n, 6, 3) == 0)
        c.dv = dims[pick(n, 7, 4)]; /* Dk != Dv */
    c.causal = (int)pick(n, 8, 2);
    c.align = pick(n, 9, 2) ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
    c.wl = windows[pick(n, 10, 4)];
    if (!c.causal && pick(n, 11, 3) == 0)
        c.wr = windows[pick(n, 12, 3)];
    c.cap = pick(n, 13, 4) == 0 ? 5.0 : 0.0;
    c.dt_q = dts[pick(n, 14, 4)];
    c.dt_kv = dts[pick(n, 15, 4)];
    c.dt_out = dts[pick(n, 16, 4)];
    c.layout = (attn_layout)pick(n, 17, 3);
    c.mask_add = pick(n, 18, 3) == 0 ? mask_kinds[1 + pick(n, 20, 5)] : ATTN_MASK_NONE;
    c.mask_bool = pick(n, 21, 3) == 0 ? mask_kinds[1 + pick(n, 22, 5)] : ATTN_MASK_NONE;
    c.lse = pick(n, 19, 4) != 0;
    return c;
}

int sdpa_fx_windows_count(void)
{
    return 3 * 4 * 2 * 2;
}

/* Every window, both alignments, causal and two-sided, on a square and two ragged shapes. */
attn_sdpa_case sdpa_fx_windows(int k)
{
    static const int64_t shapes[][2] = {{113, 300}, {300, 113}, {64, 64}};
    const int form = k % 2, a = k / 2 % 2, w = k / 4 % 4, s = k / 16;
    attn_sdpa_case c = sdpa_fx_case(shapes[s][0], shapes[s][1], 32);
    c.wl = windows[w];
    c.align = a ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
    c.causal = form == 0;
    if (form)
        c.wr = windows[(w + 1) % 4];
    return c;
}

int sdpa_fx_masks_count(void)
{
    return 6 * 3 * 2;
}

/* Every mask broadcast (and both masks together, fully hidden rows included), soft-cap,
 * f16 and bf16 in and out; prefill and decode shapes. */
attn_sdpa_case sdpa_fx_masks(int k)
{
    static const attn_dtype dts[] = {ATTN_F32, ATTN_F16, ATTN_BF16};
    const int m = k / 6, t = k / 2 % 3, decode = k % 2;
    attn_sdpa_case c = sdpa_fx_case(decode ? 3 : 17, 113, 64);
    c.hq = 4;
    c.hkv = 2;
    c.b = 2;
    c.mask_add = m % 2 ? mask_kinds[m] : ATTN_MASK_NONE;
    c.mask_bool = m % 2 ? ATTN_MASK_NONE : mask_kinds[(m + 2) % 6];
    if (m == 5)
        c.mask_add = ATTN_MDIM_S;
    c.dt_q = c.dt_kv = c.dt_out = dts[t];
    c.cap = t == 1 ? 3.0 : 0.0;
    return c;
}

int sdpa_fx_edges_count(void)
{
    return 6 * 4;
}

/* Key and query counts at tile sizes +- 1 (cpu tiles up to 256 x 512, decode chunks of 256
 * keys, opencl tiles of 16..64). */
attn_sdpa_case sdpa_fx_edges(int k)
{
    static const int64_t sk[] = {255, 256, 257, 511, 512, 513};
    static const int64_t sq[] = {5, 127, 129, 257};
    const int a = k / 4, b = k % 4;
    attn_sdpa_case c = sdpa_fx_case(sq[b], sk[a], 32);
    c.causal = (a + b) % 2;
    return c;
}

int sdpa_fx_decode_count(void)
{
    return 24;
}

/* Decode shapes: Sq 1..4 over 300 or 1500 keys (two key chunks and partial tiles), GQA groups
 * 1, 4, 8, Dk != Dv, head dims that are not multiples of 8 or 16, f32/f16/bf16 KV, KV-cache
 * views, windows, masks and soft-cap. */
attn_sdpa_case sdpa_fx_decode(int n)
{
    static const int64_t dk[] = {128, 20, 72, 36}, dv[] = {128, 20, 40, 100};
    static const int64_t groups[] = {1, 4, 8};
    static const attn_dtype dts[] = {ATTN_F32, ATTN_F16, ATTN_BF16};
    attn_sdpa_case c = sdpa_fx_case(1 + n % 4, n % 2 ? 1500 : 300, dk[(n / 2) % 4]);
    c.dv = dv[(n / 2) % 4];
    c.hkv = 2;
    c.hq = 2 * groups[n % 3];
    c.dt_kv = dts[(n / 3) % 3];
    c.dt_q = dts[(n / 5) % 3];
    c.layout = (n / 4) % 2 ? ATTN_LAYOUT_CACHE : ATTN_LAYOUT_BSHD;
    switch (n % 5) {
    case 1: c.causal = 1; c.wl = 100; break;
    case 2: c.mask_bool = ATTN_MDIM_B | ATTN_MDIM_S | ATTN_MDIM_H; break;
    case 3: c.mask_add = ATTN_MDIM_B | ATTN_MDIM_S | ATTN_MDIM_H; c.wr = 5; break;
    case 4:
        c.mask_add = c.mask_bool = ATTN_MDIM_B | ATTN_MDIM_S | ATTN_MDIM_H;
        c.cap = 4.0;
        break;
    default: break;
    }
    return c;
}

int sdpa_fx_special_count(void)
{
    return 3 * 8;
}

/* Non-finite inputs (attn_sdpa_case.special) behind every way a key is hidden or seen: the
 * causal band (prefill tiles partly visible), a window, boolean and -inf additive masks, a
 * visible key whose probability underflows; prefill and decode, KV-cache views, f16 V. */
attn_sdpa_case sdpa_fx_special(int k)
{
    static const int specials[] = {ATTN_SPECIAL_V_NONFINITE, ATTN_SPECIAL_V_UNDERFLOW,
                                   ATTN_SPECIAL_QK_NAN};
    const int shape = k % 8;
    attn_sdpa_case c = sdpa_fx_case(shape % 2 ? 2 : 70, shape < 4 ? 200 : 700, 40);
    c.special = specials[k / 8];
    c.hq = 4;
    c.hkv = 2;
    c.causal = shape % 4 < 2;
    c.wl = shape == 2 ? 60 : -1;
    c.align = shape == 1 ? ATTN_ALIGN_TOP_LEFT : ATTN_ALIGN_BOTTOM_RIGHT;
    c.mask_add = ATTN_MDIM_B | ATTN_MDIM_S | ATTN_MDIM_H;
    c.mask_bool = shape % 3 == 0 ? ATTN_MDIM_S : ATTN_MASK_NONE;
    c.layout = shape >= 6 ? ATTN_LAYOUT_CACHE : ATTN_LAYOUT_BSHD;
    c.dt_kv = shape == 5 ? ATTN_F16 : ATTN_F32;
    return c;
}
