/* check_rattention_backends.c - every backend of this build (ref, cpu, opencl) on RATTENTION
 * against the f64 reference (rattention_fixture.h): the forward over a grid (odd S, GQA 8/2,
 * w in {-1, 0, 3, S + 2}, both feature maps, both RoPE layouts, gammas, states in and out,
 * f16/bf16 storage, strided views), and the decode step (prefill then single steps, random
 * splits, and a forward prefill handed over to decode). A backend this build or machine lacks
 * is skipped; a case a backend answers ATTN_ERR_UNSUPPORTED for is skipped with a note (a
 * backend that does not implement the op yet).
 *
 * Tolerances, max |got - gold| / max |gold| over each tensor: out 1e-4 in f32 (f32 arithmetic
 * over a few dozen terms, then GroupRMSNorm, which divides by the branch's RMS), 2e-3 in f16
 * and 1.6e-2 in bf16 (the rounding of the stored result, 2^-11 and 2^-8 of an element at most
 * the row's largest, plus the f32 part); states 2e-5 (f32 sums of products). */
#include "rattention_fixture.h"

#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const backends[] = {"ref", "cpu", "opencl"};
enum { N_BACKENDS = 3 };

static double out_tol(attn_dtype t)
{
    return t == ATTN_BF16 ? 1.6e-2 : t == ATTN_F16 ? 2e-3 : 1e-4;
}

#define STATE_TOL 2e-5

/* Whether the call ran; ATTN_ERR_UNSUPPORTED is a skip with a note, anything else fails. */
static int ran(attn_status st, const char *what, const char *backend, int case_no)
{
    if (st == ATTN_ERR_UNSUPPORTED) {
        fprintf(stderr, "note: %s case %d skipped on %s: %s\n", what, case_no, backend,
                attn_last_error());
        return 0;
    }
    ck_assert_msg(st == ATTN_OK, "%s case %d on %s: %s: %s", what, case_no, backend,
                  attn_status_name(st), attn_last_error());
    return 1;
}

static void expect_tensor(const attn_tensor *t, const double *gold, double tol,
                          const char *what, const char *backend, int case_no)
{
    double *got = ratt_fx_load(t);
    const double e = ratt_fx_max_rel(got, gold, ratt_fx_numel(t));
    free(got);
    ck_assert_msg(e <= tol, "%s case %d on %s: relative difference %g > %g", what, case_no,
                  backend, e, tol);
}

/* ---- the forward grid ------------------------------------------------------------------------ */

enum { GRID_N = 64 };

/* Case k: w (k % 4), map (k / 4 % 2), RoPE layout (k / 8 % 2), and one of four storage and
 * option sets (k / 16). */
static void grid_case(int k, ratt_fx_spec *sp, attn_rattention_desc *d)
{
    static const attn_dtype dts[4][3] = {{ATTN_F32, ATTN_F32, ATTN_F32},
                                         {ATTN_F16, ATTN_F16, ATTN_F32},
                                         {ATTN_BF16, ATTN_F32, ATTN_F16},
                                         {ATTN_F32, ATTN_F32, ATTN_BF16}};
    const int set = k / 16;
    *sp = ratt_fx_spec_sized(2, 29, 8, 2, 16, 12);
    sp->dt_q = dts[set][0];
    sp->dt_kv = dts[set][1];
    sp->dt_out = dts[set][2];
    sp->strided = set % 2;
    sp->gammas = set != 1;
    sp->state_in = set != 1;
    sp->state_out = set != 2;
    sp->seed = 100 + (uint64_t)k;
    *d = attn_rattention_desc_default();
    d->window = (int64_t[]){-1, 0, 3, 31}[k % 4];
    d->feature = k / 4 % 2 ? ATTN_LINEAR_RELU_PAIR : ATTN_LINEAR_SOFTMAX_PAIR;
    d->rope = k / 8 % 2 ? ATTN_ROPE_HALF : ATTN_ROPE_INTERLEAVED;
    d->offset = set == 3 ? 100 : 0;
    d->rope_theta = set >= 2 ? 10000.0 : 500000.0;
    d->scale = set == 2 ? 0.3f : 0.0f;
}

/* _i = grid case * 3 + backend */
START_TEST(forward_grid)
{
    const char *backend = backends[_i % N_BACKENDS];
    const int k = _i / N_BACKENDS;
    if (!ratt_fx_available(backend))
        return;
    ratt_fx_spec sp;
    attn_rattention_desc d;
    grid_case(k, &sp, &d);
    ratt_fx f;
    ratt_fx_make(&f, &sp);
    ratt_fx_ref gold = ratt_fx_forward_ref(&f, &d, ATTN_REF_F64);
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open(backend, NULL, &be), ATTN_OK);
    if (ran(attn_rattention_forward(be, &d, &f.q, &f.k, &f.v, &f.out, &f.io), "forward",
            backend, k)) {
        expect_tensor(&f.out, gold.out, out_tol(sp.dt_out), "forward out", backend, k);
        if (sp.state_out)
            expect_tensor(&f.state_out, gold.state, STATE_TOL, "forward state_out", backend,
                          k);
    }
    attn_backend_close(be);
    ratt_fx_ref_free(&gold);
    ratt_fx_free(&f);
}
END_TEST

/* ---- decode -------------------------------------------------------------------------------- */

/* _i = ((map * 4 + window) * 2 + ring dtype) * 3 + backend. Decode over every split against
 * the forward's gold rows and state; then a forward prefill of 11 tokens on the backend (with
 * state_out) handed over to its decode. */
START_TEST(decode_on_backend)
{
    static const int64_t windows[] = {-1, 0, 3, 27};
    const char *backend = backends[_i % N_BACKENDS];
    const int k = _i / N_BACKENDS;
    if (!ratt_fx_available(backend))
        return;
    ratt_fx_spec sp = ratt_fx_spec_sized(2, 25, 8, 2, 16, 8);
    sp.gammas = 1;
    sp.state_in = 1;
    sp.state_out = 1;
    sp.dt_kv = k % 2 ? ATTN_F16 : ATTN_F32;
    sp.seed = 300 + (uint64_t)k;
    attn_rattention_desc d = attn_rattention_desc_default();
    d.window = windows[k / 2 % 4];
    d.feature = k / 8 ? ATTN_LINEAR_RELU_PAIR : ATTN_LINEAR_SOFTMAX_PAIR;
    d.offset = 5;
    ratt_fx f;
    ratt_fx_make(&f, &sp);
    ratt_fx_ref gold = ratt_fx_forward_ref(&f, &d, ATTN_REF_F64);
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open(backend, NULL, &be), ATTN_OK);
    int64_t len[32];
    int skipped = 0;
    for (int kind = 1; kind <= 3 && !skipped; kind += 2) { /* prefill + steps, random */
        ratt_fx_cache c;
        ratt_fx_cache_make(&c, &f, d.window, sp.dt_kv); /* state: state_in */
        const int calls = ratt_fx_split(kind, sp.S, len);
        for (int64_t i = 0, s = 0; i < calls && !skipped; s += len[i++])
            skipped = !ran(ratt_fx_decode(be, &d, &c, &f, s, len[i]), "decode", backend, k);
        if (!skipped) {
            ck_assert_int_eq(c.c.pos, sp.S);
            expect_tensor(&f.out, gold.out, out_tol(sp.dt_out), kind == 3 ? "decode random splits"
                          : "decode prefill + steps", backend, k);
            expect_tensor(&c.state, gold.state, STATE_TOL, "decode cache state", backend, k);
        }
        ratt_fx_cache_free(&c);
    }
    /* forward prefill of T tokens with state_out, then decode of the rest */
    const int64_t T = 11;
    const attn_tensor q = ratt_fx_rows(&f.q, 0, T), kk = ratt_fx_rows(&f.k, 0, T);
    const attn_tensor v = ratt_fx_rows(&f.v, 0, T), o = ratt_fx_rows(&f.out, 0, T);
    if (!skipped && ran(attn_rattention_forward(be, &d, &q, &kk, &v, &o, &f.io), "prefill",
                        backend, k)) {
        ratt_fx_cache c;
        ratt_fx_cache_make(&c, &f, d.window, sp.dt_kv);
        ratt_fx_cache_fill(&c, &f, d.window, T, &f.state_out);
        for (int64_t s = T; s < sp.S && !skipped; s += 3)
            skipped = !ran(ratt_fx_decode(be, &d, &c, &f, s, s + 3 <= sp.S ? 3 : sp.S - s),
                           "decode after prefill", backend, k);
        if (!skipped)
            expect_tensor(&f.out, gold.out, out_tol(sp.dt_out), "forward prefill + decode",
                          backend, k);
        ratt_fx_cache_free(&c);
    }
    attn_backend_close(be);
    ratt_fx_ref_free(&gold);
    ratt_fx_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rattention_backends");
    TCase *tc = tcase_create("backends");
    tcase_set_timeout(tc, 1200);
    tcase_add_loop_test(tc, forward_grid, 0, GRID_N * N_BACKENDS);
    tcase_add_loop_test(tc, decode_on_backend, 0, 16 * N_BACKENDS);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
