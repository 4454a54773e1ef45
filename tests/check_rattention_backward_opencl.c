/* check_rattention_backward_opencl.c - the RATTENTION backward on the OpenCL backend against
 * the f64 reference (attn_ref_rattention_backward) through the public call: windows -1, 0,
 * inside and past the sequence, both feature maps and RoPE layouts, position offsets, gains,
 * the initial state's gradient with and without the final state's, GQA and MQA, Dk != Dv, two
 * batches, f16/bf16 inputs, dout and gradients, strided views (the gaps of strided gradients
 * stay untouched); the same bits on a second run and with every operand in device memory; the
 * implementation's name. Skips without an OpenCL device. */
#include "check_backward.h"
#include "check_run.h"
#include "rattention_fixture.h"

#include "attn_half.h"
#include "attn_rattention_problem.h"
#include "attn_rng.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One problem: sizes, window, map, layout, optional tensors, dtypes of q, k/v, dout and the
 * gradients, strided views. */
typedef struct bcase {
    int64_t B, S, Hq, Hkv, Dk, Dv, window, offset;
    attn_linear_feature feature;
    attn_rope_layout rope;
    int gammas, state_in, d_state_out, strided;
    attn_dtype dt_q, dt_kv, dt_do, dt_grad;
} bcase;

#define F32 ATTN_F32
#define F16 ATTN_F16
#define BF16 ATTN_BF16
#define SP ATTN_LINEAR_SOFTMAX_PAIR
#define RP ATTN_LINEAR_RELU_PAIR
#define IL ATTN_ROPE_INTERLEAVED
#define HF ATTN_ROPE_HALF

static const bcase cases[] = {
    /* B  S   Hq Hkv Dk  Dv  w   off  map rope g  s0 dS str q    kv   dout grad */
    {1, 29, 4, 2, 16, 8, 3, 0, SP, IL, 1, 1, 1, 0, F32, F32, F32, F32},
    {1, 29, 4, 2, 16, 8, -1, 7, RP, HF, 1, 1, 0, 0, F32, F32, F32, F32},
    {2, 17, 2, 2, 8, 12, 0, 3, SP, HF, 0, 0, 0, 0, F32, F32, F32, F32},
    {1, 21, 3, 1, 8, 8, 25, 0, SP, IL, 1, 1, 1, 0, F32, F32, F32, F32},
    {1, 40, 4, 2, 32, 16, 7, 100, RP, IL, 1, 0, 1, 1, F32, F32, F32, F32},
    {1, 33, 8, 2, 16, 16, 5, 11, SP, HF, 1, 1, 1, 0, F16, F16, F16, F16},
    {2, 19, 4, 4, 8, 8, 2, 0, RP, HF, 1, 1, 1, 1, BF16, BF16, BF16, BF16},
    {1, 24, 2, 1, 8, 8, 4, -6, SP, IL, 0, 1, 1, 0, F16, F32, BF16, F32},
    {1, 70, 2, 2, 64, 64, 20, 0, SP, IL, 1, 1, 1, 0, F32, F32, F32, F32},
    {1, 1, 2, 1, 8, 8, 0, 0, SP, IL, 1, 1, 1, 0, F32, F32, F32, F32},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* A gradient (or dout) view of src's shape in dtype dt: dense, or every second element when
 * strided (the gaps keep 0xff bytes). */
typedef struct gv {
    void *mem;
    size_t bytes;
    attn_tensor t;
    int strided;
} gv;

static gv gv_new(const int64_t *shape, attn_dtype dt, int strided)
{
    gv g;
    g.strided = strided;
    const int64_t f = strided ? 2 : 1;
    int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
    g.bytes = (size_t)(n * f + 1) * attn_dtype_size(dt);
    g.mem = malloc(g.bytes);
    ck_assert_ptr_nonnull(g.mem);
    memset(g.mem, 0xff, g.bytes);
    g.t = attn_tensor_bshd(g.mem, dt, shape[0], shape[1], shape[2], shape[3]);
    for (int i = 0; i < 4; i++)
        g.t.stride[i] *= f;
    return g;
}

/* The gaps of a strided view still hold their 0xff bytes. */
static void gv_gaps_untouched(const gv *g, const char *name, int k)
{
    if (!g->strided)
        return;
    const size_t esz = attn_dtype_size(g->t.dtype);
    const unsigned char *b = g->mem;
    for (int64_t i = 1; i < ratt_fx_numel(&g->t) * 2; i += 2)
        for (size_t x = 0; x < esz; x++)
            ck_assert_msg(b[(size_t)i * esz + x] == 0xff, "case %d: a gap of %s written", k,
                          name);
}

/* Values in [-1, 1) from a seed into every element of a host view. */
static void fill_view(const attn_tensor *t, uint64_t seed)
{
    int64_t n = 0;
    for (int64_t a = 0; a < t->shape[0]; a++)
        for (int64_t b = 0; b < t->shape[1]; b++)
            for (int64_t c = 0; c < t->shape[2]; c++)
                for (int64_t d = 0; d < t->shape[3]; d++) {
                    const int64_t at = a * t->stride[0] + b * t->stride[1] + c * t->stride[2] +
                                       d * t->stride[3];
                    attn_store_f64(t->data, t->dtype, at,
                                   attn_rng_uniform(seed, 3, (uint64_t)n++, -1, 1));
                }
}

/* Everything of one case: the fixture's inputs, dout, the gradients and the final state's. */
typedef struct bx {
    ratt_fx f;
    attn_rattention_desc d;
    gv dout, dq, dk, dv, dgs, dgr, dsin, dsout;
    attn_rattention_grads g;
} bx;

static void bx_make(bx *x, const bcase *c)
{
    memset(x, 0, sizeof *x);
    ratt_fx_spec sp = ratt_fx_spec_sized(c->B, c->S, c->Hq, c->Hkv, c->Dk, c->Dv);
    sp.dt_q = c->dt_q;
    sp.dt_kv = c->dt_kv;
    sp.strided = c->strided;
    sp.gammas = c->gammas;
    sp.state_in = c->state_in;
    sp.seed = 300 + (uint64_t)c->S;
    ratt_fx_make(&x->f, &sp);
    x->d = ratt_fx_desc(c->window, c->feature, c->rope, c->offset);
    const int64_t so[4] = {c->B, c->S, c->Hq, c->Dv}, sq[4] = {c->B, c->S, c->Hq, c->Dk};
    const int64_t sk[4] = {c->B, c->S, c->Hkv, c->Dk}, sv[4] = {c->B, c->S, c->Hkv, c->Dv};
    const int64_t sg[4] = {1, 1, c->Hq, c->Dv}, ss[4] = {c->B, c->Hkv, 2 * c->Dk, c->Dv};
    x->dout = gv_new(so, c->dt_do, c->strided);
    fill_view(&x->dout.t, 1);
    x->dq = gv_new(sq, c->dt_grad, c->strided);
    x->dk = gv_new(sk, c->dt_grad, c->strided);
    x->dv = gv_new(sv, c->dt_grad, c->strided);
    x->dgs = gv_new(sg, F32, 0);
    x->dgr = gv_new(sg, F32, 0);
    x->dsin = gv_new(ss, F32, 0);
    x->dsout = gv_new(ss, F32, 0);
    fill_view(&x->dsout.t, 2);
    x->g = (attn_rattention_grads){.dq = &x->dq.t, .dk = &x->dk.t, .dv = &x->dv.t,
                                   .dgamma_swa = &x->dgs.t, .dgamma_rla = &x->dgr.t,
                                   .d_state_in = c->state_in ? &x->dsin.t : NULL,
                                   .d_state_out = c->d_state_out ? &x->dsout.t : NULL};
}

static void bx_free(bx *x)
{
    ratt_fx_free(&x->f);
    gv *all[] = {&x->dout, &x->dq, &x->dk, &x->dv, &x->dgs, &x->dgr, &x->dsin, &x->dsout};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]->mem);
}

static attn_status bx_run(bx *x, attn_backend *be)
{
    return attn_rattention_backward(be, &x->d, &x->f.q, &x->f.k, &x->f.v, &x->f.io,
                                    &x->dout.t, &x->g);
}

static double *dalloc(const attn_tensor *t)
{
    double *a = calloc((size_t)ratt_fx_numel(t) + 1, sizeof(double));
    ck_assert_ptr_nonnull(a);
    return a;
}

/* Tolerance of a gradient stored in dt, relative to its largest element. */
static double tol(attn_dtype dt)
{
    return dt == F32 ? 1e-5 : dt == F16 ? 1e-3 : 8e-3;
}

static void expect_close(const attn_tensor *got, const double *want, const char *name, int k)
{
    double *g = ratt_fx_load(got);
    const double rel = ratt_fx_max_rel(g, want, ratt_fx_numel(got));
    ck_assert_msg(rel <= tol(got->dtype), "case %d: d%s off by %.3g of its largest element", k,
                  name, rel);
    free(g);
}

START_TEST(test_matches_reference)
{
    if (!attn_test_have_opencl("rattention backward opencl"))
        return;
    const bcase *c = &cases[_i];
    bx x;
    bx_make(&x, c);
    attn_rattention_problem p;
    ck_assert_msg(attn_rattention_validate_backward(&x.d, &x.f.q, &x.f.k, &x.f.v, &x.f.io,
                                                    &x.dout.t, &x.g, &p) == ATTN_OK,
                  "%s", attn_last_error());
    attn_rattention_ref_grads r = {.dq = dalloc(&x.dq.t), .dk = dalloc(&x.dk.t),
                                   .dv = dalloc(&x.dv.t), .dgamma_swa = dalloc(&x.dgs.t),
                                   .dgamma_rla = dalloc(&x.dgr.t),
                                   .d_state_in = c->state_in ? dalloc(&x.dsin.t) : NULL};
    ck_assert(attn_ref_rattention_backward(&p, &r) == ATTN_OK);
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open("opencl", NULL, &be) == ATTN_OK, "%s", attn_last_error());
    ck_assert_msg(bx_run(&x, be) == ATTN_OK, "case %d: %s", _i, attn_last_error());
    expect_close(&x.dq.t, r.dq, "q", _i);
    expect_close(&x.dk.t, r.dk, "k", _i);
    expect_close(&x.dv.t, r.dv, "v", _i);
    expect_close(&x.dgs.t, r.dgamma_swa, "gamma_swa", _i);
    expect_close(&x.dgr.t, r.dgamma_rla, "gamma_rla", _i);
    if (c->state_in)
        expect_close(&x.dsin.t, r.d_state_in, "state_in", _i);
    gv_gaps_untouched(&x.dq, "dq", _i);
    gv_gaps_untouched(&x.dk, "dk", _i);
    gv_gaps_untouched(&x.dv, "dv", _i);
    /* a second run gives the same bits */
    const gv *outs[] = {&x.dq, &x.dk, &x.dv, &x.dgs, &x.dgr, &x.dsin};
    void *first[6];
    for (int i = 0; i < 6; i++) {
        first[i] = malloc(outs[i]->bytes);
        ck_assert_ptr_nonnull(first[i]);
        memcpy(first[i], outs[i]->mem, outs[i]->bytes);
    }
    ck_assert_msg(bx_run(&x, be) == ATTN_OK, "%s", attn_last_error());
    for (int i = 0; i < 6; i++) {
        ck_assert_msg(memcmp(first[i], outs[i]->mem, outs[i]->bytes) == 0,
                      "case %d: gradient %d differs on a second run", _i, i);
        free(first[i]);
    }
    attn_backend_close(be);
    double *all[] = {r.dq, r.dk, r.dv, r.dgamma_swa, r.dgamma_rla, r.d_state_in};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    bx_free(&x);
}
END_TEST

/* Bytes from element [0,0,0,0] of a host view to one past its last element. */
static size_t extent(const attn_tensor *t)
{
    int64_t last = 0;
    for (int i = 0; i < 4; i++)
        last += (t->shape[i] - 1) * t->stride[i];
    return (size_t)(last + 1) * attn_dtype_size(t->dtype);
}

/* A device copy of a host view's extent at byte offset 64 of a new buffer (fill: the bytes
 * written instead of the view's, -1 for the view's own). */
static attn_tensor on_device(attn_backend *be, const attn_tensor *h, int fill,
                             attn_buffer **buf)
{
    const size_t n = extent(h);
    ck_assert(attn_buffer_alloc(be, n + 64, buf) == ATTN_OK);
    void *src = h->data;
    if (fill >= 0) {
        src = malloc(n);
        ck_assert_ptr_nonnull(src);
        memset(src, fill, n);
    }
    ck_assert(attn_buffer_write(*buf, 64, src, n) == ATTN_OK);
    if (fill >= 0)
        free(src);
    attn_tensor t = *h;
    t.data = NULL;
    t.buffer = *buf;
    t.offset = 64;
    return t;
}

/* Every operand in device memory (strided bf16 views, gains, both states) gives the bytes of
 * host memory, the gaps of strided gradients included. */
START_TEST(test_device_buffers)
{
    if (!attn_test_have_opencl("rattention backward opencl"))
        return;
    bx x;
    bx_make(&x, &cases[6]);
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open("opencl", NULL, &be) == ATTN_OK, "%s", attn_last_error());
    ck_assert_msg(bx_run(&x, be) == ATTN_OK, "%s", attn_last_error());
    enum { NIN = 8, NG = 6 };
    const attn_tensor *in[NIN] = {&x.f.q, &x.f.k, &x.f.v, &x.f.gamma_swa, &x.f.gamma_rla,
                                  &x.f.state_in, &x.dout.t, &x.dsout.t};
    const gv *grads[NG] = {&x.dq, &x.dk, &x.dv, &x.dgs, &x.dgr, &x.dsin};
    attn_buffer *buf[NIN + NG];
    attn_tensor t[NIN + NG];
    for (int i = 0; i < NIN; i++)
        t[i] = on_device(be, in[i], -1, &buf[i]);
    for (int i = 0; i < NG; i++)
        t[NIN + i] = on_device(be, &grads[i]->t, 0xff, &buf[NIN + i]);
    const attn_rattention_io io = {&t[3], &t[4], &t[5], NULL};
    const attn_rattention_grads g = {&t[8], &t[9], &t[10], &t[11], &t[12], &t[13], &t[7], {0}};
    ck_assert_msg(attn_rattention_backward(be, &x.d, &t[0], &t[1], &t[2], &io, &t[6], &g) ==
                      ATTN_OK,
                  "%s", attn_last_error());
    for (int i = 0; i < NG; i++) {
        const size_t n = extent(&grads[i]->t);
        unsigned char *back = malloc(n);
        ck_assert_ptr_nonnull(back);
        ck_assert(attn_buffer_read(buf[NIN + i], 64, back, n) == ATTN_OK);
        ck_assert_msg(memcmp(back, grads[i]->mem, n) == 0,
                      "gradient %d in device memory differs from host memory", i);
        free(back);
    }
    for (int i = 0; i < NIN + NG; i++)
        attn_buffer_free(buf[i]);
    attn_backend_close(be);
    bx_free(&x);
}
END_TEST

/* The capability check agrees with the call, and the name says what runs. */
START_TEST(test_supported_and_name)
{
    if (!attn_test_have_opencl("rattention backward opencl"))
        return;
    bx x;
    bx_make(&x, &cases[0]);
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open("opencl", NULL, &be) == ATTN_OK, "%s", attn_last_error());
    ck_assert_msg(attn_rattention_backward_supported(be, &x.d, &x.f.q, &x.f.k, &x.f.v, &x.f.io,
                                                     &x.dout.t, &x.g) == ATTN_OK,
                  "%s", attn_last_error());
    char name[2048];
    ck_assert(attn_rattention_backward_impl_name(be, &x.d, &x.f.q, &x.f.k, &x.f.v, &x.f.io,
                                                 &x.dout.t, &x.g, name, sizeof name) == ATTN_OK);
    ck_assert_msg(strncmp(name, "opencl:rattention_bwd[rope+", 27) == 0 &&
                      strstr(name, "norm_bwd[") != NULL,
                  "%s", name);
    attn_backend_close(be);
    bx_free(&x);
}
END_TEST

static Suite *suite(void)
{
    return attn_backward_device_suite("rattention_backward_opencl", "backward", 300,
                                      test_matches_reference, N_CASES, test_device_buffers,
                                      test_supported_and_name);
}

int main(void)
{
    return attn_check_run(suite());
}
