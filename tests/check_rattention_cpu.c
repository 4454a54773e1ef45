/* check_rattention_cpu.c - what only the cpu backend's RATTENTION has, against the ref backend
 * (the f64 definition) through the public API, and its decode kernels directly: the forward's
 * branches on their kernels (RoPE scratch, SWA on the SDPA tiles, the residual branch on the
 * chunked linear kernel) over odd lengths, GQA, windows -1, 0, small and past the sequence,
 * both maps and RoPE layouts, gammas, states and half-precision inputs; every residual chunk
 * length; bit-identical results on any thread count; the decode step's ring (prefill then
 * single steps and any split give the forward's rows and state_out; a half-precision ring
 * holds exactly the reference's values; a cache in other strides gives the same results); the
 * decode step's SIMD score kernels (keys rotated in registers) against an f64 rotation and dot
 * product, over both RoPE layouts, the three ring dtypes, query and key counts past the
 * register blocks, table rows that wrap and Dk past and below the vector width; the
 * implementation names. Tolerance: f32 results within 1e-5 of the reference relative to the
 * output's largest magnitude (the norms put every row near magnitude 1; measured: below 1e-6). */
#include "attn/attn.h"
#include "attn_half.h"

#include "check_run.h"
#include "cpu/cpu_rattention.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

typedef struct rcase {
    int64_t b, s, hq, hkv, dk, dv, w;
    attn_linear_feature feature;
    attn_rope_layout rope;
    int gammas, state; /* gamma_swa/gamma_rla given; state_in and state_out given */
    attn_dtype in;     /* q, k, v (and the decode ring) */
    int64_t offset;
} rcase;

#define SP ATTN_LINEAR_SOFTMAX_PAIR
#define RP ATTN_LINEAR_RELU_PAIR
#define IL ATTN_ROPE_INTERLEAVED
#define HF ATTN_ROPE_HALF

static const rcase cases[] = {
    {1, 37, 2, 2, 16, 16, 3, SP, IL, 0, 0, ATTN_F32, 0},
    {2, 50, 8, 2, 32, 24, 0, RP, HF, 1, 1, ATTN_F32, 0},
    {1, 45, 4, 4, 64, 64, -1, SP, IL, 1, 1, ATTN_F32, 0},
    {1, 21, 2, 1, 16, 32, 25, RP, IL, 0, 1, ATTN_F32, 7},
    {1, 33, 4, 2, 32, 32, 5, SP, HF, 1, 0, ATTN_F16, 0},
    {1, 33, 4, 2, 32, 32, 5, RP, IL, 0, 1, ATTN_BF16, 3},
    {1, 300, 8, 2, 64, 64, 40, SP, IL, 1, 1, ATTN_F32, 1000},
    {2, 129, 4, 4, 128, 128, 17, SP, HF, 0, 1, ATTN_F32, 0},
    {1, 1200, 2, 1, 16, 16, 1100, RP, IL, 1, 1, ATTN_F32, 5}, /* a window past 1024 keys */
    {1, 40, 6, 2, 32, 32, 9, SP, IL, 0, 1, ATTN_F32, 0},  /* groups of 3 and 5 query heads */
    {1, 30, 5, 1, 16, 16, 4, RP, HF, 1, 0, ATTN_F32, 2},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- tensors ---------------------------------------------------------------------------- */

/* A contiguous BSHD tensor of uniform values in [lo, hi) from seed (shape[1] = s). */
static attn_tensor make(attn_dtype t, int64_t b, int64_t s, int64_t h, int64_t d,
                        uint64_t seed, double lo, double hi)
{
    const int64_t n = b * s * h * d;
    void *mem = calloc((size_t)(n > 0 ? n : 1), 4);
    ck_assert_ptr_nonnull(mem);
    uint64_t x = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (int64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        attn_store_f64(mem, t, i, lo + (hi - lo) * (double)(x >> 11) * 0x1p-53);
    }
    return attn_tensor_bshd(mem, t, b, s, h, d);
}

static int64_t numel(const attn_tensor *t)
{
    return t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3];
}

/* Every element of a contiguous tensor as f64 (malloc'd). */
static double *values(const attn_tensor *t)
{
    const int64_t n = numel(t);
    double *y = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    ck_assert_ptr_nonnull(y);
    for (int64_t i = 0; i < n; i++)
        y[i] = attn_load_f64(t->data, t->dtype, i);
    return y;
}

/* max |a - b| / max |b| over n values. */
static double rel_diff(const double *a, const double *b, int64_t n)
{
    double e = 0.0, m = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        e = fmax(e, fabs(a[i] - b[i]));
        m = fmax(m, fabs(b[i]));
    }
    return isnan(e) ? INFINITY : e / m;
}

/* out [B][S][Hq][Dv] and state [B][Hkv][2Dk][Dv] each within TOL of the wanted ones, else
 * the test fails naming `what`; frees out and state. */
static void expect_close_free(double *out, double *state, const double *want_out,
                              const double *want_state, const rcase *c, const char *what)
{
    const double e = rel_diff(out, want_out, c->b * c->s * c->hq * c->dv);
    const double es = rel_diff(state, want_state, c->b * c->hkv * 2 * c->dk * c->dv);
    ck_assert_msg(e <= TOL && es <= TOL, "%s: out %g, state %g", what, e, es);
    free(out);
    free(state);
}

/* The inputs of a case (fixed seeds: every backend and call sees the same values). */
typedef struct rio {
    attn_tensor q, k, v, gs, gr, s0;
} rio;

static rio inputs(const rcase *c)
{
    rio x;
    x.q = make(c->in, c->b, c->s, c->hq, c->dk, 1, -1.5, 1.5);
    x.k = make(c->in, c->b, c->s, c->hkv, c->dk, 2, -1.5, 1.5);
    x.v = make(c->in, c->b, c->s, c->hkv, c->dv, 3, -1.0, 1.0);
    x.gs = make(ATTN_F32, 1, 1, c->hq, c->dv, 4, 0.5, 1.5);
    x.gr = make(ATTN_F32, 1, 1, c->hq, c->dv, 5, 0.5, 1.5);
    x.s0 = make(ATTN_F32, c->b, c->hkv, 2 * c->dk, c->dv, 6, -0.5, 0.5);
    return x;
}

static void inputs_free(rio *x)
{
    free(x->q.data);
    free(x->k.data);
    free(x->v.data);
    free(x->gs.data);
    free(x->gr.data);
    free(x->s0.data);
}

static attn_rattention_desc desc_of(const rcase *c)
{
    attn_rattention_desc d = attn_rattention_desc_default();
    d.window = c->w;
    d.feature = c->feature;
    d.rope = c->rope;
    d.offset = c->offset;
    d.rope_theta = 10000.0;
    return d;
}

static attn_backend *open_be(const char *name, const char *options)
{
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open(name, options, &be) == ATTN_OK, "%s", attn_last_error());
    return be;
}

/* The forward on a backend: out (f64, malloc'd) and, with c->state, state_out into *state. */
static double *forward(const char *name, const char *options, const rcase *c, const rio *x,
                       double **state, char *impl)
{
    attn_backend *be = open_be(name, options);
    attn_tensor out = make(ATTN_F32, c->b, c->s, c->hq, c->dv, 9, 0, 0);
    attn_tensor so = make(ATTN_F32, c->b, c->hkv, 2 * c->dk, c->dv, 9, 0, 0);
    const attn_rattention_io io = {c->gammas ? &x->gs : NULL, c->gammas ? &x->gr : NULL,
                                   c->state ? &x->s0 : NULL, c->state ? &so : NULL};
    const attn_rattention_desc d = desc_of(c);
    if (impl)
        ck_assert_int_eq(attn_rattention_impl_name(be, &d, &x->q, &x->k, &x->v, &out, &io,
                                                   impl, 64), ATTN_OK);
    ck_assert_msg(attn_rattention_forward(be, &d, &x->q, &x->k, &x->v, &out, &io) == ATTN_OK,
                  "%s: %s", name, attn_last_error());
    attn_backend_close(be);
    double *y = values(&out);
    if (state)
        *state = values(&so);
    free(out.data);
    free(so.data);
    return y;
}

/* ---- forward ------------------------------------------------------------------------------ */

START_TEST(test_forward_cases)
{
    const rcase *c = &cases[_i];
    rio x = inputs(c);
    double *rs = NULL, *cs = NULL;
    double *ref = forward("ref", NULL, c, &x, &rs, NULL);
    double *cpu = forward("cpu", NULL, c, &x, &cs, NULL);
    const double e = rel_diff(cpu, ref, c->b * c->s * c->hq * c->dv);
    ck_assert_msg(e <= TOL, "case %d: out differs by %g", _i, e);
    if (c->state) {
        const double es = rel_diff(cs, rs, c->b * c->hkv * 2 * c->dk * c->dv);
        ck_assert_msg(es <= TOL, "case %d: state_out differs by %g", _i, es);
    }
    free(ref);
    free(cpu);
    free(rs);
    free(cs);
    inputs_free(&x);
}
END_TEST

/* Every chunk length of the residual branch, shorter and longer than the window and the
 * sequence, with both SDPA tile paths. */
START_TEST(test_forward_chunks)
{
    static const char *const opts[] = {"chunk=1", "chunk=16", "chunk=64", "chunk=100",
                                       "chunk=512", "path=sgemm", "path=tiled,chunk=32"};
    const rcase *c = &cases[6];
    rio x = inputs(c);
    double *rs = NULL, *ref = forward("ref", NULL, c, &x, &rs, NULL);
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        double *cs = NULL, *cpu = forward("cpu", opts[i], c, &x, &cs, NULL);
        expect_close_free(cpu, cs, ref, rs, c, opts[i]);
    }
    free(ref);
    free(rs);
    inputs_free(&x);
}
END_TEST

/* The thread count changes no bit of the forward. */
START_TEST(test_forward_threads)
{
    const rcase *c = &cases[_i];
    rio x = inputs(c);
    double *s1 = NULL, *s3 = NULL;
    double *a = forward("cpu", "threads=1", c, &x, &s1, NULL);
    double *b = forward("cpu", "threads=3", c, &x, &s3, NULL);
    const size_t n = (size_t)(c->b * c->s * c->hq * c->dv);
    ck_assert_msg(memcmp(a, b, n * sizeof(double)) == 0, "case %d: out differs", _i);
    ck_assert_msg(memcmp(s1, s3, (size_t)(c->b * c->hkv * 2 * c->dk * c->dv) *
                                      sizeof(double)) == 0, "case %d: state differs", _i);
    free(a);
    free(b);
    free(s1);
    free(s3);
    inputs_free(&x);
}
END_TEST

/* ---- decode ------------------------------------------------------------------------------- */

/* Rows [s0, s0 + n) of a full [B, S, H, D] input as a view. */
static attn_tensor rows_of(const attn_tensor *t, int64_t s0, int64_t n)
{
    attn_tensor r = *t;
    r.data = (char *)t->data + (size_t)(s0 * t->stride[1]) * attn_dtype_size(t->dtype);
    r.shape[1] = n;
    return r;
}

/* The decode cache of a case: ring (in the case's input dtype or `ring`), state S0 or zero. */
typedef struct rcache {
    attn_tensor kr, vr, st;
    attn_rattention_cache c;
} rcache;

static void cache_make(const rcase *c, const rio *x, attn_dtype ring, rcache *k)
{
    const int64_t slots = c->w + 1;
    k->kr = make(ring, c->b, slots > 0 ? slots : 1, c->hkv, c->dk, 11, 0, 0);
    k->vr = make(ring, c->b, slots > 0 ? slots : 1, c->hkv, c->dv, 12, 0, 0);
    k->st = make(ATTN_F32, c->b, c->hkv, 2 * c->dk, c->dv, 13, 0, 0);
    if (c->state)
        memcpy(k->st.data, x->s0.data, sizeof(float) * (size_t)numel(&x->s0));
    k->c = (attn_rattention_cache){slots > 0 ? &k->kr : NULL, slots > 0 ? &k->vr : NULL, &k->st,
                                   0};
}

static void cache_free(rcache *k)
{
    free(k->kr.data);
    free(k->vr.data);
    free(k->st.data);
}

/* Decode the whole sequence in calls of the given lengths (cycled) on a backend: out (f64) and
 * the final cache (state, and the rings as f64 when asked). */
static double *decode(const char *name, const char *options, const rcase *c, const rio *x,
                      attn_dtype ring, const int64_t *split, int nsplit, double **state,
                      double **kring)
{
    attn_backend *be = open_be(name, options);
    attn_tensor out = make(ATTN_F32, c->b, c->s, c->hq, c->dv, 9, 0, 0);
    rcache k;
    cache_make(c, x, ring, &k);
    const attn_rattention_io io = {c->gammas ? &x->gs : NULL, c->gammas ? &x->gr : NULL, NULL,
                                   NULL};
    const attn_rattention_desc d = desc_of(c);
    for (int64_t s0 = 0, i = 0; s0 < c->s; i++) {
        const int64_t n = split[i % nsplit] < c->s - s0 ? split[i % nsplit] : c->s - s0;
        const attn_tensor q = rows_of(&x->q, s0, n), kk = rows_of(&x->k, s0, n),
                          v = rows_of(&x->v, s0, n), o = rows_of(&out, s0, n);
        ck_assert_msg(attn_rattention_decode(be, &d, &k.c, &q, &kk, &v, &o, &io) == ATTN_OK,
                      "%s: %s", name, attn_last_error());
        s0 += n;
        ck_assert_int_eq(k.c.pos, s0);
    }
    attn_backend_close(be);
    double *y = values(&out);
    *state = values(&k.st);
    if (kring)
        *kring = values(&k.kr);
    free(out.data);
    cache_free(&k);
    return y;
}

/* Prefill of T tokens then single steps, and uneven splits: the forward's rows and
 * state_out, on the cpu backend (and the reference's decode). */
START_TEST(test_decode_splits)
{
    static const int64_t prefill[] = {23, 1}, uneven[] = {5, 1, 17, 2, 64}, ones[] = {1};
    static const struct { const int64_t *v; int n; } splits[] = {{prefill, 2}, {uneven, 5},
                                                                  {ones, 1}};
    rcase c = cases[_i];
    c.state = 1;
    rio x = inputs(&c);
    double *fs = NULL, *fwd = forward("cpu", NULL, &c, &x, &fs, NULL);
    for (int k = 0; k < 3; k++) {
        char what[64];
        double *ds = NULL;
        double *dec = decode("cpu", NULL, &c, &x, c.in, splits[k].v, splits[k].n, &ds, NULL);
        snprintf(what, sizeof what, "case %d split %d", _i, k);
        expect_close_free(dec, ds, fwd, fs, &c, what);
    }
    free(fwd);
    free(fs);
    inputs_free(&x);
}
END_TEST

/* A half-precision ring: the same ring bits and state as the reference's decode, the same
 * rows; and bit-identical results on any thread count. */
START_TEST(test_decode_ring_dtypes)
{
    static const int64_t split[] = {9, 1, 1, 30};
    const attn_dtype rings[] = {ATTN_F16, ATTN_BF16};
    const rcase *c = &cases[4];
    rio x = inputs(c);
    for (int r = 0; r < 2; r++) {
        double *rs, *rk, *cs, *ck, *ts, *tk;
        double *ref = decode("ref", NULL, c, &x, rings[r], split, 4, &rs, &rk);
        double *cpu = decode("cpu", "threads=2", c, &x, rings[r], split, 4, &cs, &ck);
        double *one = decode("cpu", "threads=1", c, &x, rings[r], split, 4, &ts, &tk);
        const int64_t no = c->b * c->s * c->hq * c->dv, ns = c->b * c->hkv * 2 * c->dk * c->dv;
        const int64_t nk = c->b * (c->w + 1) * c->hkv * c->dk;
        ck_assert_msg(rel_diff(cpu, ref, no) <= TOL, "ring %d: out %g", r, rel_diff(cpu, ref, no));
        ck_assert_msg(rel_diff(cs, rs, ns) <= TOL, "ring %d: state", r);
        ck_assert_msg(memcmp(ck, rk, sizeof(double) * (size_t)nk) == 0, "ring %d: keys", r);
        ck_assert(memcmp(one, cpu, sizeof(double) * (size_t)no) == 0);
        ck_assert(memcmp(ts, cs, sizeof(double) * (size_t)ns) == 0);
        double *all[] = {ref, rs, rk, cpu, cs, ck, one, ts, tk};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            free(all[i]);
    }
    inputs_free(&x);
}
END_TEST

/* Every case's decode (single steps after a prefill) against the reference's decode, on the
 * portable and the SIMD window kernels. */
START_TEST(test_decode_vs_ref)
{
    static const int64_t split[] = {13, 1, 1, 1, 7};
    const rcase *c = &cases[_i];
    rio x = inputs(c);
    double *rs, *ref = decode("ref", NULL, c, &x, c->in, split, 5, &rs, NULL);
    for (int k = 0; k < 2; k++) {
        char what[64];
        double *cs, *cpu = decode("cpu", k ? "simd=off" : NULL, c, &x, c->in, split, 5, &cs, NULL);
        snprintf(what, sizeof what, "case %d kernels %d", _i, k);
        expect_close_free(cpu, cs, ref, rs, c, what);
    }
    free(ref);
    free(rs);
    inputs_free(&x);
}
END_TEST

/* A cache whose state and rings have a non-unit inner stride (each stored transposed) takes
 * the copying paths (state through scratch, values converted per slot): the same bits as the
 * contiguous cache, which is used in place. */
static attn_tensor transposed(const attn_tensor *t)
{
    attn_tensor r = *t;
    const int64_t n2 = t->shape[2], n3 = t->shape[3];
    r.data = calloc((size_t)numel(t), sizeof(float));
    ck_assert_ptr_nonnull(r.data);
    r.stride[2] = 1;
    r.stride[3] = n2;
    for (int64_t a = 0; a < t->shape[0] * t->shape[1]; a++)
        for (int64_t i = 0; i < n2; i++)
            for (int64_t j = 0; j < n3; j++)
                ((float *)r.data)[a * n2 * n3 + j * n2 + i] =
                    ((const float *)t->data)[a * n2 * n3 + i * n3 + j];
    return r;
}

START_TEST(test_decode_strided_cache)
{
    const rcase *c = &cases[1];
    rio x = inputs(c);
    attn_backend *be = open_be("cpu", NULL);
    const attn_rattention_desc d = desc_of(c);
    const attn_rattention_io io = {&x.gs, &x.gr, NULL, NULL};
    rcache k, kt;
    cache_make(c, &x, ATTN_F32, &k);
    cache_make(c, &x, ATTN_F32, &kt);
    const attn_tensor tk = transposed(&kt.kr), tv = transposed(&kt.vr), ts = transposed(&kt.st);
    kt.c = (attn_rattention_cache){&tk, &tv, &ts, 0};
    attn_tensor o1 = make(ATTN_F32, c->b, c->s, c->hq, c->dv, 9, 0, 0);
    attn_tensor o2 = make(ATTN_F32, c->b, c->s, c->hq, c->dv, 9, 0, 0);
    for (int64_t s0 = 0; s0 < c->s; s0 += 7) {
        const int64_t n = c->s - s0 < 7 ? c->s - s0 : 7;
        const attn_tensor q = rows_of(&x.q, s0, n), kk = rows_of(&x.k, s0, n),
                          v = rows_of(&x.v, s0, n), a = rows_of(&o1, s0, n),
                          b = rows_of(&o2, s0, n);
        ck_assert_int_eq(attn_rattention_decode(be, &d, &k.c, &q, &kk, &v, &a, &io), ATTN_OK);
        ck_assert_msg(attn_rattention_decode(be, &d, &kt.c, &q, &kk, &v, &b, &io) == ATTN_OK,
                      "%s", attn_last_error());
    }
    ck_assert(memcmp(o1.data, o2.data, sizeof(float) * (size_t)numel(&o1)) == 0);
    const int64_t n2 = ts.shape[2], n3 = ts.shape[3];
    for (int64_t a = 0; a < ts.shape[0] * ts.shape[1]; a++)
        for (int64_t i = 0; i < n2; i++)
            for (int64_t j = 0; j < n3; j++)
                ck_assert(((const float *)ts.data)[a * n2 * n3 + j * n2 + i] ==
                          ((const float *)k.st.data)[a * n2 * n3 + i * n3 + j]);
    attn_backend_close(be);
    void *all[] = {o1.data, o2.data, tk.data, tv.data, ts.data};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    cache_free(&k);
    cache_free(&kt);
    inputs_free(&x);
}
END_TEST

/* ---- names -------------------------------------------------------------------------------- */

/* ---- the decode step's score kernels ----------------------------------------------------- */

#if ATTN_CPU_HAVE_AVX2_KERNELS
typedef void (*rope_qk_fn)(const float *q, int64_t nq, const attn_cpu_rows *k, int64_t nk,
                           int64_t d, float scale, float *s, int64_t lds,
                           const attn_cpu_rows *v, int64_t dv, const attn_cpu_ratt_rot *rot);

/* Element e of key row j (dtype t) as the kernel reads it. */
static double key_at(const void *k, attn_dtype t, int64_t j, int64_t d, int64_t e)
{
    if (t == ATTN_F32)
        return ((const float *)k)[j * d + e];
    const uint16_t h = ((const uint16_t *)k)[j * d + e];
    return t == ATTN_F16 ? attn_f16_to_f32(h) : attn_bf16_to_f32(h);
}

/* One kernel on one shape: the table (attn_cpu_ratt_rot's layout, f32 from f64 cos/sin) and
 * the expected scores from an f64 rotation of each key by minus its distance. */
static void check_rope_qk(rope_qk_fn fn, int half, attn_dtype t, int64_t d, int64_t nq,
                          int64_t nk, int64_t period, int64_t d0)
{
    const int64_t np = d / 2, ld = nk + 3;
    float *q = malloc(sizeof(float) * (size_t)(nq * d)), *s = calloc((size_t)(nq * ld), 4);
    float *tab = malloc(sizeof(float) * (size_t)(period * 2 * np));
    void *k = calloc((size_t)(nk * d), 4), *v = calloc((size_t)(nk * d), 4);
    ck_assert(q && s && tab && k && v);
    for (int64_t i = 0; i < nq * d; i++)
        q[i] = (float)((i * 37) % 23) / 11.0f - 1.0f;
    for (int64_t i = 0; i < nk * d; i++) {
        const float x = (float)((i * 53) % 31) / 15.0f - 1.0f;
        if (t == ATTN_F32)
            ((float *)k)[i] = x;
        else
            ((uint16_t *)k)[i] = t == ATTN_F16 ? attn_f32_to_f16(x) : attn_f32_to_bf16(x);
    }
    for (int64_t r = 0; r < period; r++)
        for (int64_t i = 0; i < np; i++) {
            const double a = (double)r * pow(10000.0, -2.0 * (double)i / (double)d);
            tab[r * 2 * np + (half ? i : 2 * i)] = (float)cos(a);
            tab[r * 2 * np + (half ? np + i : 2 * i + 1)] = (float)-sin(a);
        }
    const attn_cpu_rows kr = {k, t, d}, vr = {v, t, d};
    const attn_cpu_ratt_rot rot = {tab, np, half, d0, period};
    fn(q, nq, &kr, nk, d, 0.5f, s, ld, &vr, d, &rot);
    for (int64_t j = 0; j < nk; j++) {
        const int64_t dist = ((d0 - j) % period + period) % period;
        for (int64_t r = 0; r < nq; r++) {
            double want = 0.0, mag = 0.0;
            for (int64_t i = 0; i < np; i++) {
                const int64_t ia = half ? i : 2 * i, ic = half ? i + np : 2 * i + 1;
                const double cs = tab[dist * 2 * np + (half ? i : 2 * i)];
                const double sn = tab[dist * 2 * np + (half ? np + i : 2 * i + 1)];
                const double a = key_at(k, t, j, d, ia), c = key_at(k, t, j, d, ic);
                want += q[r * d + ia] * (a * cs - c * sn) + q[r * d + ic] * (c * cs + a * sn);
                mag += fabs(q[r * d + ia]) * (fabs(a) + fabs(c)) +
                       fabs(q[r * d + ic]) * (fabs(a) + fabs(c));
            }
            ck_assert_msg(fabs(s[r * ld + j] - 0.5 * want) <= 1e-6 * mag,
                          "half %d dtype %d d %lld nq %lld nk %lld key %lld row %lld: %g vs %g",
                          half, (int)t, (long long)d, (long long)nq, (long long)nk, (long long)j,
                          (long long)r, s[r * ld + j], 0.5 * want);
        }
    }
    free(q);
    free(s);
    free(tab);
    free(k);
    free(v);
}
#endif

/* _i: 0 AVX2, 1 AVX-512 (skipped, and said, where the CPU lacks it). */
START_TEST(test_rope_score_kernels)
{
#if ATTN_CPU_HAVE_AVX2_KERNELS
    const attn_cpu_simd need = _i ? ATTN_CPU_SIMD_AVX512 : ATTN_CPU_SIMD_AVX2;
    if (attn_cpu_simd_level() < need) {
        printf("test_rope_score_kernels: %s skipped, the CPU lacks it\n", _i ? "AVX-512" : "AVX2");
        return;
    }
    const rope_qk_fn fn = _i ? attn_cpu_ratt_dec_qk_avx512 : attn_cpu_ratt_dec_qk_avx2;
    static const int64_t dims[] = {2, 8, 16, 24, 34, 64, 128};
    static const attn_dtype types[] = {ATTN_F32, ATTN_F16, ATTN_BF16};
    for (int half = 0; half < 2; half++)
        for (int ti = 0; ti < 3; ti++)
            for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
                for (int64_t nq = 1; nq <= 7; nq++)
                    for (int64_t nk = 1; nk <= 41; nk += 8)
                        check_rope_qk(fn, half, types[ti], dims[di], nq, nk, 45, nk / 2);
#else
    printf("test_rope_score_kernels: skipped, no SIMD kernels in this build\n");
#endif
}
END_TEST

START_TEST(test_impl_names)
{
    const rcase *c = &cases[0];
    rio x = inputs(c);
    char impl[64];
    double *y = forward("cpu", NULL, c, &x, NULL, impl);
    ck_assert_str_eq(impl, "cpu:rattention_chunk64");
    free(y);
    y = forward("cpu", "chunk=32", c, &x, NULL, impl);
    ck_assert_str_eq(impl, "cpu:rattention_chunk32");
    free(y);
    attn_backend *be = open_be("cpu", NULL);
    rcache k;
    cache_make(c, &x, ATTN_F32, &k);
    attn_tensor out = make(ATTN_F32, c->b, c->s, c->hq, c->dv, 9, 0, 0);
    const attn_rattention_desc d = desc_of(c);
    ck_assert_int_eq(attn_rattention_decode_impl_name(be, &d, &k.c, &x.q, &x.k, &x.v, &out,
                                                      NULL, impl, sizeof impl), ATTN_OK);
    ck_assert_str_eq(impl, "cpu:rattention_ring");
    attn_backend_close(be);
    free(out.data);
    cache_free(&k);
    inputs_free(&x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rattention_cpu");
    TCase *f = tcase_create("forward");
    tcase_set_timeout(f, 600);
    tcase_add_loop_test(f, test_forward_cases, 0, N_CASES);
    tcase_add_test(f, test_forward_chunks);
    tcase_add_loop_test(f, test_forward_threads, 0, N_CASES);
    suite_add_tcase(s, f);
    TCase *d = tcase_create("decode");
    tcase_set_timeout(d, 600);
    tcase_add_loop_test(d, test_decode_splits, 0, N_CASES);
    tcase_add_test(d, test_decode_ring_dtypes);
    tcase_add_test(d, test_decode_strided_cache);
    tcase_add_loop_test(d, test_decode_vs_ref, 0, N_CASES);
    tcase_add_test(d, test_impl_names);
    tcase_add_loop_test(d, test_rope_score_kernels, 0, 2);
    suite_add_tcase(s, d);
    return attn_check_run(s);
}
