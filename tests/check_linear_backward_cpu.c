/* check_linear_backward_cpu.c - the cpu backend's chunked linear attention backward
 * (src/cpu/cpu_linear_backward.c) against the f64 chain rule (attn_ref_linear_backward) through
 * the public call: every feature map, causal or not, each decay, GQA/MQA, the normaliser,
 * initial and final state gradients, lengths around the chunk (chunk +- 1, several chunks, with
 * chunk=4 and the default), f16/bf16 inputs and gradients, strided views, a shifted problem
 * (rattention's residual branch, through the kernel), and the same bits for 1, 2 and 3 threads.
 *
 * Tolerance: |cpu - f64| <= 4 eps32 * mag * (8 + S + Df), mag the reference's magnitude of
 * the element (its sum over |terms|), plus half an ulp of the stored value for f16/bf16
 * gradients. Float sums of n terms err by up to about n eps * mag; the chunked form sums over
 * the (up to S) keys a row sees and the Df (Dv, W) terms of each product, and 8 covers the
 * few roundings of the normaliser and the feature map's Jacobian. Measured on this grid the
 * error stays below 0.25 of eps32 * mag * (8 + S + Df) except one silu element with the
 * normaliser and decay at 2.5, where the reference's own float mode (ATTN_REF_F32) errs by
 * 2.6 too (the magnitudes do not see that cancellation): 4 keeps room over both. */
#include "check_run.h"
#include "cpu/cpu_linear.h"
#include "linear_backward_fixture.h"
#include "linear_ref.h"

#include "attn_half.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20261208u
#define TOL 4.0 /* see the header comment */

/* A case: the fixture's shape, the chunk (0: the backend's default), dtypes of the inputs and
 * the gradients, the layout of q, k, v, dout and dq, dk, dv (0 dense BSHD, 1 BHSD, 2 every
 * other element of a BSHD row), and a shift (through the kernel, not the public call). */
typedef struct lbc {
    lbw_shape s;
    int64_t chunk;
    attn_dtype in, grad;
    int layout;
    int64_t shift;
} lbc;

#define E1 ATTN_LINEAR_ELU1
#define SM ATTN_LINEAR_SOFTMAX_PAIR
#define NONE ATTN_LINEAR_DECAY_NONE
#define SLOPES ATTN_LINEAR_DECAY_SLOPES
#define GIVEN ATTN_LINEAR_DECAY_GIVEN
#define F32 ATTN_F32

static const lbc cases[] = {
    /* B S Hq Hkv Dk Dv feature norm causal decay s_in s_out; chunk in grad layout shift */
    {{2, 9, 4, 2, 3, 4, E1, 1, 1, NONE, 1, 1}, 4, F32, F32, 0, 0},
    {{1, 3, 2, 2, 3, 2, E1, 1, 1, SLOPES, 1, 1}, 4, F32, F32, 0, 0},
    {{1, 4, 2, 1, 3, 5, SM, 0, 1, SLOPES, 1, 1}, 4, F32, F32, 0, 0},
    {{1, 5, 3, 1, 2, 3, ATTN_LINEAR_RELU_PAIR, 0, 1, GIVEN, 1, 1}, 4, F32, F32, 0, 0},
    {{1, 13, 2, 2, 4, 3, ATTN_LINEAR_SILU, 1, 1, GIVEN, 1, 1}, 4, F32, F32, 0, 0},
    {{1, 12, 4, 1, 3, 2, ATTN_LINEAR_ELU, 0, 1, NONE, 0, 0}, 4, F32, F32, 0, 0},
    {{1, 7, 2, 2, 3, 2, ATTN_LINEAR_IDENTITY, 1, 0, NONE, 1, 1}, 4, F32, F32, 0, 0},
    {{2, 11, 2, 1, 3, 4, ATTN_LINEAR_RELU, 0, 0, NONE, 1, 1}, 4, F32, F32, 0, 0},
    {{1, 9, 2, 2, 3, 3, SM, 1, 0, NONE, 1, 0}, 4, F32, F32, 0, 0},
    {{1, 63, 2, 1, 8, 8, E1, 1, 1, SLOPES, 1, 1}, 0, F32, F32, 0, 0},
    {{1, 65, 2, 2, 8, 6, SM, 0, 1, GIVEN, 1, 1}, 0, F32, F32, 0, 0},
    {{1, 200, 4, 2, 6, 8, E1, 1, 1, NONE, 1, 1}, 0, F32, F32, 0, 0},
    {{1, 10, 2, 1, 3, 4, E1, 1, 1, SLOPES, 1, 1}, 4, ATTN_F16, ATTN_F16, 1, 0},
    {{1, 10, 2, 2, 3, 4, SM, 0, 1, NONE, 1, 1}, 4, ATTN_BF16, ATTN_BF16, 2, 0},
    {{1, 9, 2, 1, 4, 3, ATTN_LINEAR_SILU, 1, 0, NONE, 1, 1}, 4, ATTN_F16, F32, 2, 0},
    {{1, 9, 4, 2, 3, 4, E1, 1, 1, SLOPES, 1, 1}, 4, F32, ATTN_BF16, 1, 0},
    {{1, 11, 2, 1, 3, 4, SM, 0, 1, SLOPES, 1, 1}, 4, F32, F32, 0, 2},
    {{1, 10, 2, 2, 3, 2, E1, 1, 1, GIVEN, 1, 1}, 4, F32, F32, 0, 5},
    {{1, 6, 2, 1, 3, 2, E1, 1, 1, NONE, 1, 1}, 4, F32, F32, 0, 8},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- views of the fixture's tensors in other dtypes and layouts ----------------------------- */

typedef struct view {
    attn_tensor t;
    void *mem;
    size_t bytes;
} view;

/* Element [i0, i1, i2, i3] of a host view. */
static int64_t at(const attn_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return i0 * t->stride[0] + i1 * t->stride[1] + i2 * t->stride[2] + i3 * t->stride[3];
}

/* A copy of the dense BSHD tensor src (f32 values) as dtype dt in the given layout. */
static view view_of(const attn_tensor *src, attn_dtype dt, int layout)
{
    const int64_t *n = src->shape;
    view v = {{0}, NULL, 0};
    const int64_t count = n[0] * n[1] * n[2] * n[3] * (layout == 2 ? 2 : 1);
    v.bytes = (size_t)count * attn_dtype_size(dt);
    v.mem = calloc((size_t)(count > 0 ? count : 1), 4);
    ck_assert(v.mem != NULL);
    v.t = layout == 1 ? attn_tensor_bhsd(v.mem, dt, n[0], n[1], n[2], n[3])
                      : attn_tensor_bshd(v.mem, dt, n[0], n[1], n[2], n[3] * (layout ? 2 : 1));
    if (layout == 2) {
        v.t.shape[3] = n[3];
        v.t.stride[3] = 2;
    }
    for (int64_t a = 0; a < n[0]; a++)
        for (int64_t b = 0; b < n[1]; b++)
            for (int64_t c = 0; c < n[2]; c++)
                for (int64_t d = 0; d < n[3]; d++)
                    attn_store_f64(v.mem, dt, at(&v.t, a, b, c, d),
                                   attn_load_f64(src->data, ATTN_F32, at(src, a, b, c, d)));
    return v;
}

/* A run of one case: the fixture with its views swapped in, the validated problem. */
typedef struct run {
    lbw x;
    view vw[7];
    attn_linear_problem p;
} run;

static void run_init(run *r, const lbc *c, uint64_t seed)
{
    lbw_init(&r->x, &c->s, seed);
    if (c->s.feature == ATTN_LINEAR_IDENTITY)
        r->x.desc.eps = 4.0f; /* a positive z0 and eps keep the denominator away from 0 */
    attn_tensor *t[7] = {&r->x.tq, &r->x.tk, &r->x.tv, &r->x.tdout,
                         &r->x.tdq, &r->x.tdk, &r->x.tdv};
    for (int i = 0; i < 7; i++) {
        r->vw[i] = view_of(t[i], i < 4 ? c->in : c->grad, c->layout);
        *t[i] = r->vw[i].t;
    }
    lbw_problem(&r->x, &r->p);
    r->p.shift = c->shift;
}

static void run_free(run *r)
{
    attn_linear_problem_release(&r->p);
    for (int i = 0; i < 7; i++)
        free(r->vw[i].mem);
    lbw_free(&r->x);
}

/* The cpu gradients: through the public call, or the kernel itself for a shifted problem. */
static void run_cpu(run *r, const lbc *c, int threads)
{
    if (c->shift) {
        ck_assert(attn_cpu_linear_backward(&r->p, threads,
                                           c->chunk ? c->chunk : ATTN_CPU_LINEAR_BWD_CHUNK) ==
                  ATTN_OK);
        return;
    }
    char opt[64];
    snprintf(opt, sizeof opt, "threads=%d,chunk=%lld", threads,
             (long long)(c->chunk ? c->chunk : ATTN_CPU_LINEAR_BWD_CHUNK));
    attn_backend *be = NULL;
    ck_assert(attn_backend_open("cpu", opt, &be) == ATTN_OK);
    lbw *x = &r->x;
    ck_assert_msg(attn_linear_backward(be, &x->desc, &x->tq, &x->tk, &x->tv, &x->st, &x->tdout,
                                       &x->grads) == ATTN_OK,
                  "%s", attn_last_error());
    attn_backend_close(be);
}

/* ---- comparison ----------------------------------------------------------------------------- */

static double *dalloc(int64_t n)
{
    double *a = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    ck_assert(a != NULL);
    return a;
}

/* Half an ulp of a value stored as dt (relative), and the smallest step there. */
static double store_error(attn_dtype dt, double v)
{
    return dt == ATTN_BF16  ? 0x1p-8 * fabs(v) + 0x1p-134
           : dt == ATTN_F16 ? 0x1p-11 * fabs(v) + 0x1p-25
                            : 0.0;
}

/* Every element of tensor t (its shape; BSHD or state layout in want/mag) against the
 * reference; returns the largest |err| / (eps32 * mag * len). */
static double expect_close(const lbc *c, const attn_tensor *t, const double *want,
                           const double *mag, double len, const char *name, int k)
{
    const int64_t *n = t->shape;
    double worst = 0.0;
    int64_t i = 0;
    for (int64_t a = 0; a < n[0]; a++)
        for (int64_t b = 0; b < n[1]; b++)
            for (int64_t h = 0; h < n[2]; h++)
                for (int64_t d = 0; d < n[3]; d++, i++) {
                    const double got = attn_load_f64(t->data, t->dtype, at(t, a, b, h, d));
                    const double unit = FLT_EPSILON * mag[i] * len + 1e-300;
                    const double err = fabs(got - want[i]);
                    const double tol = TOL * unit + store_error(t->dtype, want[i]);
                    ck_assert_msg(err <= tol, "case %d (shift %lld) d%s[%lld]: cpu %.9g, f64 "
                                  "%.9g, magnitude %.3g", k, (long long)c->shift, name,
                                  (long long)i, got, want[i], mag[i]);
                    if (err / unit > worst)
                        worst = err / unit;
                }
    return worst;
}

typedef struct want {
    attn_linear_ref_grads g;
} want;

static want want_of(run *r)
{
    const lbw *x = &r->x;
    want w = {{0}};
    double **v[] = {&w.g.dq, &w.g.dk, &w.g.dv, &w.g.d_state_in, &w.g.d_z_in,
                    &w.g.dq_mag, &w.g.dk_mag, &w.g.dv_mag, &w.g.d_state_in_mag,
                    &w.g.d_z_in_mag};
    const char *names[] = {"q", "k", "v", "state", "z"};
    for (int i = 0; i < 10; i++)
        if (i % 5 < 3 || (i % 5 == 3 && x->s0) || (i % 5 == 4 && x->st.z_in))
            *v[i] = dalloc(lbw_n(x, names[i % 5]));
    ck_assert(attn_ref_linear_backward(&r->p, ATTN_REF_F64, &w.g) == ATTN_OK);
    return w;
}

static void want_free(want *w)
{
    double *all[] = {w->g.dq,     w->g.dk,     w->g.dv,     w->g.d_state_in,     w->g.d_z_in,
                     w->g.dq_mag, w->g.dk_mag, w->g.dv_mag, w->g.d_state_in_mag, w->g.d_z_in_mag};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

START_TEST(test_matches_reference)
{
    const lbc *c = &cases[_i];
    run r;
    run_init(&r, c, SEED + (uint64_t)_i);
    want w = want_of(&r);
    run_cpu(&r, c, 2);
    const lbw *x = &r.x;
    const double len = 8.0 + (double)c->s.S + (double)x->Df;
    double worst = 0.0, e;
    e = expect_close(c, &x->tdq, w.g.dq, w.g.dq_mag, len, "q", _i);
    worst = e > worst ? e : worst;
    e = expect_close(c, &x->tdk, w.g.dk, w.g.dk_mag, len, "k", _i);
    worst = e > worst ? e : worst;
    e = expect_close(c, &x->tdv, w.g.dv, w.g.dv_mag, len, "v", _i);
    worst = e > worst ? e : worst;
    if (x->s0) {
        e = expect_close(c, &x->tds0, w.g.d_state_in, w.g.d_state_in_mag, len, "state_in", _i);
        worst = e > worst ? e : worst;
    }
    if (x->st.z_in) {
        e = expect_close(c, &x->tdz0, w.g.d_z_in, w.g.d_z_in_mag, len, "z_in", _i);
        worst = e > worst ? e : worst;
    }
    if (getenv("ATTN_CHECK_VERBOSE"))
        printf("case %d: largest error %.4f of eps32 * magnitude * (8 + S + Df)\n", _i, worst);
    want_free(&w);
    run_free(&r);
}
END_TEST

/* The gradients' bytes of a run. */
static unsigned char *grad_bytes(const run *r, size_t *n)
{
    const lbw *x = &r->x;
    const size_t ns = x->ds0 ? (size_t)lbw_n(x, "state") * 4 : 0;
    const size_t nz = x->st.z_in ? (size_t)lbw_n(x, "z") * 4 : 0;
    *n = r->vw[4].bytes + r->vw[5].bytes + r->vw[6].bytes + ns + nz;
    unsigned char *b = malloc(*n), *o = b;
    ck_assert(b != NULL);
    for (int i = 4; i < 7; i++) {
        memcpy(o, r->vw[i].mem, r->vw[i].bytes);
        o += r->vw[i].bytes;
    }
    if (ns)
        memcpy(o, x->ds0, ns);
    if (nz)
        memcpy(o + ns, x->dz0, nz);
    return b;
}

/* The same bits on 1, 2 and 3 threads (items own their gradients; GQA sums in a fixed order). */
START_TEST(test_threads_same_bits)
{
    static const lbc det[] = {
        {{2, 70, 4, 2, 8, 6, E1, 1, 1, SLOPES, 1, 1}, 16, F32, F32, 0, 0},
        {{3, 33, 2, 1, 5, 4, SM, 0, 0, NONE, 1, 1}, 8, F32, ATTN_BF16, 1, 0},
        {{1, 40, 3, 3, 4, 4, ATTN_LINEAR_SILU, 1, 1, GIVEN, 1, 1}, 8, F32, F32, 0, 3},
    };
    const lbc *c = &det[_i];
    unsigned char *first = NULL;
    size_t n0 = 0;
    for (int threads = 1; threads <= 3; threads++) {
        run r;
        run_init(&r, c, SEED + 100 + (uint64_t)_i);
        run_cpu(&r, c, threads);
        size_t n;
        unsigned char *b = grad_bytes(&r, &n);
        if (!first) {
            first = b;
            n0 = n;
        } else {
            ck_assert(n == n0);
            ck_assert_msg(memcmp(first, b, n) == 0, "det case %d: threads=%d differs from 1",
                          _i, threads);
            free(b);
        }
        run_free(&r);
    }
    free(first);
}
END_TEST

/* The implementation's name and the chunk option. */
START_TEST(test_impl_name)
{
    const lbc *c = &cases[0];
    run r;
    run_init(&r, c, SEED);
    attn_backend *be = NULL;
    ck_assert(attn_backend_open("cpu", "chunk=32", &be) == ATTN_OK);
    char name[64];
    const lbw *x = &r.x;
    ck_assert(attn_linear_backward_impl_name(be, &x->desc, &x->tq, &x->tk, &x->tv, &x->st,
                                             &x->tdout, &x->grads, name, sizeof name) == ATTN_OK);
    ck_assert_str_eq(name, "cpu:linear_bwd_chunk32_blis");
    attn_backend_close(be);
    run_free(&r);
}
END_TEST

/* A query row holding a NaN (row 2, inside the first chunk of 4) spoils only what that row
 * sees: keys 3 and later keep finite gradients (equal to the reference's), for every map and
 * with the normaliser; the reference and the cpu agree on which elements are NaN. */
START_TEST(test_nonfinite_query_stays_in_its_keys)
{
    static const lbc c = {{1, 10, 2, 1, 3, 4, E1, 1, 1, NONE, 0, 0}, 4, F32, F32, 0, 0};
    lbc cc = c;
    cc.s.feature = (attn_linear_feature)_i;
    cc.s.normalize = _i == ATTN_LINEAR_ELU1;
    run r;
    run_init(&r, &cc, 31);
    ((float *)r.x.tq.data)[(2 * 2 + 0) * 3 + 1] = NAN; /* row 2 of head 0 */
    want w = want_of(&r);
    run_cpu(&r, &cc, 2);
    const float *dk = r.x.tdk.data, *dv = r.x.tdv.data;
    for (int64_t j = 0; j < 10; j++) {
        for (int64_t d = 0; d < 3; d++) {
            const double ref = w.g.dk[j * 3 + d];
            ck_assert_msg(isnan(ref) == isnan(dk[j * 3 + d]), "map %d dk[%lld][%lld]: %g vs %g",
                          _i, (long long)j, (long long)d, (double)dk[j * 3 + d], ref);
            if (j >= 3)
                ck_assert(isfinite(dk[j * 3 + d]));
        }
        for (int64_t d = 0; d < 4; d++) {
            ck_assert(isnan(w.g.dv[j * 4 + d]) == isnan(dv[j * 4 + d]));
            if (j >= 3)
                ck_assert(isfinite(dv[j * 4 + d]));
        }
    }
    want_free(&w);
    run_free(&r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("linear_backward_cpu");
    TCase *tc = tcase_create("backward");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_matches_reference, 0, N_CASES);
    tcase_add_loop_test(tc, test_threads_same_bits, 0, 3);
    tcase_add_test(tc, test_impl_name);
    tcase_add_loop_test(tc, test_nonfinite_query_stays_in_its_keys, 0,
                        ATTN_LINEAR_RELU_PAIR + 1);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(suite());
}
