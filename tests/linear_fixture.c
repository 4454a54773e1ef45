/* linear_fixture.c - the shared linear attention test fixture (linear_fixture.h): cases through
 * the conformance harness on any backend, the sampled family, and split-and-resume. */
#include "linear_fixture.h"

#include "attn_fill.h"
#include "attn_linear_problem.h"
#include "attn_rng.h"
#include "attn_tool_ops.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX_SEED 4242u

int linear_fx_available(const char *backend)
{
    attn_backend *be = NULL;
    const attn_status st = attn_backend_open(backend, NULL, &be);
    if (st != ATTN_OK)
        fprintf(stderr, "skipping backend %s: %s\n", backend, attn_last_error());
    else
        attn_backend_close(be);
    return st == ATTN_OK;
}

attn_linear_case linear_fx_parse(const char *name)
{
    attn_case ac;
    char err[200];
    ck_assert_msg(attn_case_parse(name, &ac, err, sizeof err) == 0, "%s: %s", name, err);
    ck_assert_msg(ac.op == attn_tool_op_find("linear")->conform, "%s: not a linear case", name);
    attn_linear_case c;
    memcpy(&c, attn_case_cdata(&ac), sizeof c);
    return c;
}

attn_result linear_fx_run(const linear_fx *x, const attn_linear_case *c)
{
    attn_backend *be = NULL;
    attn_case ac;
    attn_result r;
    ck_assert_msg(attn_backend_open(x->backend, x->options, &be) == ATTN_OK, "%s: %s",
                  x->backend, attn_last_error());
    memset(&ac, 0, sizeof ac);
    ac.op = attn_tool_op_find("linear")->conform;
    memcpy(attn_case_data(&ac), c, sizeof *c);
    const attn_conform_opts o = {.seed = FX_SEED, .device_mem = x->device_mem, .repeat = 1};
    attn_conform_case(be, &ac, &o, NULL, NULL, &r);
    attn_backend_close(be);
    return r;
}

void linear_fx_expect_pass(const linear_fx *x, const char *name)
{
    const attn_linear_case c = linear_fx_parse(name);
    const attn_result r = linear_fx_run(x, &c);
    /* MISTRUSTED comes from the trust gate alone (a handful of elements): every gate that
     * judges values passed */
    ck_assert_msg(r.status == ATTN_PASSED || r.status == ATTN_MISTRUSTED,
                  "%s [%s %s, %s memory]: %s: %s | %s",
                  attn_verdict_name(r.status), x->backend, x->options ? x->options : "",
                  x->device_mem ? "device" : "host", r.name, r.reason, r.repro);
}

/* ---- the family ----------------------------------------------------------------------------- */

int linear_fx_family_count(void)
{
    return 60;
}

static int64_t draw(int k, int axis, int64_t count)
{
    return (int64_t)(attn_rng_bits(FX_SEED, 200 + (uint64_t)axis, (uint64_t)k) %
                     (uint64_t)count);
}

/* Every axis drawn independently: maps, normaliser, causality, decay, state, GQA, dtypes,
 * layout, lengths around the chunks, head dims. */
const char *linear_fx_family(int k, char *buf, size_t n)
{
    static const char *const maps[] = {"identity", "elu", "elu1", "relu", "silu",
                                       "softmax_pair", "relu_pair"};
    static const int64_t seqs[] = {1, 5, 31, 33, 70, 129, 200};
    static const int64_t dims[] = {8, 16, 24, 32};
    static const char *const heads[] = {"hq1 hkv1", "hq2 hkv1", "hq4 hkv2", "hq3 hkv3"};
    static const char *const decays[] = {"", "", " decay=slopes", " decay=0.95"};
    static const char *const states[] = {"", " state=in", " state=out", " state=inout"};
    static const char *const dts[] = {"f32", "f32", "f16", "bf16", "f32:bf16:f16"};
    const int causal = draw(k, 3, 4) != 0, map = (int)draw(k, 0, 7);
    /* the normaliser on the positive maps only: a signed denominator near 0 makes the
     * conditions, not the kernels, decide */
    const int norm = (map == 2 || map == 5) && draw(k, 2, 2);
    snprintf(buf, n, "linear b%lld s%lld %s dk%lld dv%lld feature=%s norm=%d causal=%d%s%s "
             "dt=%s layout=%s%s",
             (long long)(1 + draw(k, 8, 2)), (long long)seqs[draw(k, 1, 7)],
             heads[draw(k, 4, 4)], (long long)dims[draw(k, 5, 4)],
             (long long)dims[draw(k, 6, 4)], maps[map], norm, causal,
             causal ? decays[draw(k, 7, 4)] : "", states[draw(k, 9, 4)], dts[draw(k, 10, 5)],
             draw(k, 11, 3) ? "bshd" : "bhsd", draw(k, 12, 4) ? "" : " scale=0.5");
    return buf;
}

/* ---- split and resume ----------------------------------------------------------------------- */

/* One call's tensors: q, k, v, out over positions [s0, s0+len) of the full arrays. */
typedef struct part {
    attn_tensor q, k, v, out;
} part;

static part part_of(const attn_linear_case *c, float *q, float *k, float *v, float *o,
                    int64_t s0, int64_t len)
{
    part p;
    const int64_t S = c->s;
    p.q = attn_tensor_bshd(q + s0 * c->hq * c->dk, ATTN_F32, c->b, len, c->hq, c->dk);
    p.k = attn_tensor_bshd(k + s0 * c->hkv * c->dk, ATTN_F32, c->b, len, c->hkv, c->dk);
    p.v = attn_tensor_bshd(v + s0 * c->hkv * c->dv, ATTN_F32, c->b, len, c->hkv, c->dv);
    p.out = attn_tensor_bshd(o + s0 * c->hq * c->dv, ATTN_F32, c->b, len, c->hq, c->dv);
    /* batch stride of the whole sequence */
    p.q.stride[0] = S * c->hq * c->dk;
    p.k.stride[0] = S * c->hkv * c->dk;
    p.v.stride[0] = S * c->hkv * c->dv;
    p.out.stride[0] = S * c->hq * c->dv;
    return p;
}

static double max_rel(const float *a, const float *b, int64_t n)
{
    double d = 0.0, m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - (double)b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? d / m : d;
}

static void call_ok(attn_backend *be, const attn_linear_desc *d, const part *p,
                    const attn_linear_state *st)
{
    attn_status s = attn_linear_forward(be, d, &p->q, &p->k, &p->v, &p->out, st);
    ck_assert_msg(s == ATTN_OK, "%s: %s", attn_status_name(s), attn_last_error());
}

double linear_fx_split_resume(const linear_fx *x, const attn_linear_case *c, int64_t split)
{
    const int64_t df = attn_linear_features(c->feature, c->dk);
    const int64_t nq = c->b * c->s * c->hq, nk = c->b * c->s * c->hkv;
    const int64_t ns = c->b * c->hkv * df * c->dv, nz = c->b * c->hkv * df;
    float *q = malloc(sizeof(float) * (size_t)(nq * c->dk)), *k = malloc(sizeof(float) *
                                                                          (size_t)(nk * c->dk));
    float *v = malloc(sizeof(float) * (size_t)(nk * c->dv));
    float *o1 = malloc(sizeof(float) * (size_t)(nq * c->dv));
    float *o2 = malloc(sizeof(float) * (size_t)(nq * c->dv));
    float *st = calloc((size_t)(4 * ns + 4 * nz), sizeof(float)), decay[64];
    ck_assert(q && k && v && o1 && o2 && st && c->hkv <= 64);
    attn_tensor tq = attn_tensor_bshd(q, ATTN_F32, c->b, c->s, c->hq, c->dk);
    attn_tensor tk = attn_tensor_bshd(k, ATTN_F32, c->b, c->s, c->hkv, c->dk);
    attn_tensor tv = attn_tensor_bshd(v, ATTN_F32, c->b, c->s, c->hkv, c->dv);
    attn_fill_tensor(&tq, ATTN_FILL_UNIFORM, FX_SEED, ATTN_FILL_Q);
    attn_fill_tensor(&tk, ATTN_FILL_UNIFORM, FX_SEED, ATTN_FILL_K);
    attn_fill_tensor(&tv, ATTN_FILL_UNIFORM, FX_SEED, ATTN_FILL_V);
    /* states: full-call S and z, first-part S and z, second-part S and z */
    attn_tensor s_full = attn_tensor_bshd(st, ATTN_F32, c->b, c->hkv, df, c->dv);
    attn_tensor s_mid = attn_tensor_bshd(st + ns, ATTN_F32, c->b, c->hkv, df, c->dv);
    attn_tensor s_end = attn_tensor_bshd(st + 2 * ns, ATTN_F32, c->b, c->hkv, df, c->dv);
    attn_tensor z_full = attn_tensor_bshd(st + 4 * ns, ATTN_F32, c->b, c->hkv, df, 1);
    attn_tensor z_mid = attn_tensor_bshd(st + 4 * ns + nz, ATTN_F32, c->b, c->hkv, df, 1);
    attn_tensor z_end = attn_tensor_bshd(st + 4 * ns + 2 * nz, ATTN_F32, c->b, c->hkv, df, 1);
    const int z = c->normalize;
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open(x->backend, x->options, &be) == ATTN_OK, "%s",
                  attn_last_error());
    const attn_linear_desc d = attn_linear_case_desc(c, decay);
    const part whole = part_of(c, q, k, v, o1, 0, c->s);
    const part a = part_of(c, q, k, v, o2, 0, split), b = part_of(c, q, k, v, o2, split,
                                                                   c->s - split);
    const attn_linear_state st_whole = {NULL, NULL, &s_full, z ? &z_full : NULL};
    const attn_linear_state st_a = {NULL, NULL, &s_mid, z ? &z_mid : NULL};
    const attn_linear_state st_b = {&s_mid, z ? &z_mid : NULL, &s_end, z ? &z_end : NULL};
    call_ok(be, &d, &whole, &st_whole);
    call_ok(be, &d, &a, &st_a);
    call_ok(be, &d, &b, &st_b);
    attn_backend_close(be);
    double err = fmax(max_rel(o2, o1, nq * c->dv), max_rel(st + 2 * ns, st, ns));
    if (z)
        err = fmax(err, max_rel(st + 4 * ns + 2 * nz, st + 4 * ns, nz));
    free(q);
    free(k);
    free(v);
    free(o1);
    free(o2);
    free(st);
    return err;
}
