/* check_linear_ref.c - the linear attention reference against itself and closed forms: the
 * quadratic definition, the recurrent form and the chunked form (any chunk length) agree on
 * every option; the chunked form's conditions equal the definition's; a shift equals shifting
 * k and v explicitly (rattention's residual branch); the feature maps and Lightning's slopes
 * against hand-computed values; the float recurrent form is close to f64 but not equal. */
#include "attn/attn.h"
#include "attn_fill.h"
#include "linear_ref.h"

#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A problem over owned f32 arrays (filled from the seed), with optional state. */
typedef struct fixture {
    attn_linear_desc d;
    attn_tensor q, k, v, out, s_in, z_in;
    float *mem, dec[8];
    attn_linear_problem p;
} fixture;

static void make(fixture *f, int64_t S, int64_t hq, int64_t hkv, int64_t dk, int64_t dv,
                 attn_linear_feature feat, int norm, int causal, attn_linear_decay decay,
                 int state)
{
    memset(f, 0, sizeof *f);
    const int64_t df = attn_linear_features(feat, dk);
    const int64_t n[] = {S * hq * dk, S * hkv * dk, S * hkv * dv, S * hq * dv, hkv * df * dv,
                         hkv * df};
    f->mem = calloc((size_t)(n[0] + n[1] + n[2] + n[3] + n[4] + n[5]), sizeof(float));
    ck_assert(f->mem);
    float *m = f->mem;
    f->q = attn_tensor_bshd(m, ATTN_F32, 1, S, hq, dk);
    f->k = attn_tensor_bshd(m += n[0], ATTN_F32, 1, S, hkv, dk);
    f->v = attn_tensor_bshd(m += n[1], ATTN_F32, 1, S, hkv, dv);
    f->out = attn_tensor_bshd(m += n[2], ATTN_F32, 1, S, hq, dv);
    f->s_in = attn_tensor_bshd(m += n[3], ATTN_F32, 1, hkv, df, dv);
    f->z_in = attn_tensor_bshd(m + n[4], ATTN_F32, 1, hkv, df, 1);
    attn_fill_tensor(&f->q, ATTN_FILL_UNIFORM, 9, ATTN_FILL_Q);
    attn_fill_tensor(&f->k, ATTN_FILL_UNIFORM, 9, ATTN_FILL_K);
    attn_fill_tensor(&f->v, ATTN_FILL_UNIFORM, 9, ATTN_FILL_V);
    attn_fill_tensor(&f->s_in, ATTN_FILL_UNIFORM, 9, (attn_fill_id)6);
    for (int64_t i = 0; i < n[5]; i++)
        ((float *)f->z_in.data)[i] = 1.0f + (float)(i % 5);
    f->d = attn_linear_desc_default();
    f->d.feature = feat;
    f->d.normalize = norm;
    f->d.causal = causal;
    f->d.decay = decay;
    for (int g = 0; g < 8; g++)
        f->dec[g] = 0.8f + 0.02f * (float)g;
    if (decay == ATTN_LINEAR_DECAY_GIVEN)
        f->d.decay_values = f->dec;
    const attn_linear_state st = {&f->s_in, norm ? &f->z_in : NULL, NULL, NULL};
    ck_assert_int_eq(attn_linear_validate(&f->d, &f->q, &f->k, &f->v, &f->out,
                                          state ? &st : NULL, &f->p), ATTN_OK);
}

static void release(fixture *f)
{
    attn_linear_problem_release(&f->p);
    free(f->mem);
}

/* Results of one form: out, state, z and (definition / chunked) the conditions. */
typedef struct res {
    double *m;
    attn_linear_ref_out o;
} res;

static res res_new(const attn_linear_problem *p, int conds)
{
    const int64_t no = p->B * p->S * p->Hq * p->Dv, ns = p->B * p->Hkv * p->Df * p->Dv;
    const int64_t nz = p->B * p->Hkv * p->Df;
    res r;
    r.m = calloc((size_t)(2 * (no + ns + nz)), sizeof(double));
    ck_assert(r.m);
    r.o = (attn_linear_ref_out){r.m, r.m + no, r.m + no + ns, NULL, NULL, NULL};
    if (conds) {
        r.o.out_cond = r.m + no + ns + nz;
        r.o.state_cond = r.o.out_cond + no;
        r.o.z_cond = r.o.state_cond + ns;
    }
    return r;
}

/* max |a - b| / max(max|b|, 1e-300) over the first n of each of the three results. */
static double rel_diff(const attn_linear_problem *p, const double *a, const double *b, int conds)
{
    const int64_t n = (p->B * p->S * p->Hq * p->Dv + p->B * p->Hkv * p->Df * p->Dv +
                       p->B * p->Hkv * p->Df) * (conds ? 2 : 1);
    double d = 0.0, m = 1e-300;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        m = fmax(m, fabs(b[i]));
    }
    return d / m;
}

static const attn_linear_feature maps[] = {
    ATTN_LINEAR_IDENTITY, ATTN_LINEAR_ELU, ATTN_LINEAR_ELU1, ATTN_LINEAR_RELU,
    ATTN_LINEAR_SILU, ATTN_LINEAR_SOFTMAX_PAIR, ATTN_LINEAR_RELU_PAIR};

/* _i over maps x normaliser x causal x decay x state. */
START_TEST(three_forms_equal)
{
    const attn_linear_feature feat = maps[_i % 7];
    const int norm = _i / 7 % 2, causal = _i / 14 % 2, decay = causal ? _i / 28 % 3 : 0;
    const int state = _i / 84 % 2;
    fixture f;
    make(&f, 23, 4, 2, 6, 5, feat, norm, causal, (attn_linear_decay)decay, state);
    res quad = res_new(&f.p, 1), rec = res_new(&f.p, 0);
    ck_assert_int_eq(attn_ref_linear(&f.p, &quad.o), ATTN_OK);
    ck_assert_int_eq(attn_ref_linear_recurrent(&f.p, ATTN_REF_F64, &rec.o), ATTN_OK);
    ck_assert_msg(rel_diff(&f.p, rec.m, quad.m, 0) < 1e-12, "recurrent vs definition %g",
                  rel_diff(&f.p, rec.m, quad.m, 0));
    static const int64_t chunks[] = {1, 3, 7, 64};
    for (int c = 0; c < 4; c++) {
        res ch = res_new(&f.p, 1);
        ck_assert_int_eq(attn_ref_linear_chunked(&f.p, chunks[c], &ch.o), ATTN_OK);
        ck_assert_msg(rel_diff(&f.p, ch.m, quad.m, 1) < 1e-12, "chunk %lld vs definition %g",
                      (long long)chunks[c], rel_diff(&f.p, ch.m, quad.m, 1));
        free(ch.m);
    }
    free(quad.m);
    free(rec.m);
    release(&f);
}
END_TEST

/* Shift s equals explicitly shifted k and v (zero rows in front) without the normaliser
 * (rattention's residual branch), in every form, also with an initial state and decay. */
START_TEST(shift_equals_shifted_inputs)
{
    const attn_linear_feature feat = _i % 2 ? ATTN_LINEAR_RELU_PAIR : ATTN_LINEAR_SOFTMAX_PAIR;
    const int64_t shift = 1 + _i / 2 % 4 * 3, S = 19;
    fixture a, b;
    make(&a, S, 2, 1, 4, 3, feat, 0, 1, _i >= 8 ? ATTN_LINEAR_DECAY_SLOPES : 0, 1);
    make(&b, S, 2, 1, 4, 3, feat, 0, 1, _i >= 8 ? ATTN_LINEAR_DECAY_SLOPES : 0, 1);
    a.p.shift = shift;
    float *bk = b.k.data, *bv = b.v.data;
    memset(bk, 0, sizeof(float) * (size_t)(S * 4));
    memset(bv, 0, sizeof(float) * (size_t)(S * 3));
    for (int64_t j = 0; j + shift < S; j++) {
        memcpy(bk + (j + shift) * 4, (float *)a.k.data + j * 4, 4 * sizeof(float));
        memcpy(bv + (j + shift) * 3, (float *)a.v.data + j * 3, 3 * sizeof(float));
    }
    res ra = res_new(&a.p, 0), rb = res_new(&b.p, 0), rc = res_new(&a.p, 0),
        rd = res_new(&a.p, 0);
    ck_assert_int_eq(attn_ref_linear(&a.p, &ra.o), ATTN_OK);
    ck_assert_int_eq(attn_ref_linear(&b.p, &rb.o), ATTN_OK);
    ck_assert_int_eq(attn_ref_linear_chunked(&a.p, 5, &rc.o), ATTN_OK);
    ck_assert_int_eq(attn_ref_linear_recurrent(&a.p, ATTN_REF_F64, &rd.o), ATTN_OK);
    /* outputs and the final state (zero keys add nothing to S; z is not compared) */
    const int64_t n = a.p.S * a.p.Hq * a.p.Dv + a.p.Hkv * a.p.Df * a.p.Dv;
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(fabs(ra.m[i] - rb.m[i]) <= 1e-12 * (1 + fabs(rb.m[i])), "[%lld]", (long long)i);
        ck_assert_msg(fabs(rc.m[i] - rb.m[i]) <= 1e-12 * (1 + fabs(rb.m[i])), "chunked [%lld]",
                      (long long)i);
        ck_assert_msg(fabs(rd.m[i] - rb.m[i]) <= 1e-12 * (1 + fabs(rb.m[i])), "recurrent [%lld]",
                      (long long)i);
    }
    /* and the first `shift` rows see the initial state only */
    free(ra.m);
    free(rb.m);
    free(rc.m);
    free(rd.m);
    release(&a);
    release(&b);
}
END_TEST

START_TEST(feature_maps)
{
    const double x[3] = {0.5, -1.0, 2.0};
    double y[6];
    attn_ref_linear_phi(ATTN_LINEAR_ELU1, ATTN_REF_F64, x, 3, y);
    ck_assert(y[0] == 1.5 && y[1] == exp(-1.0) && y[2] == 3.0);
    attn_ref_linear_phi(ATTN_LINEAR_ELU, ATTN_REF_F64, x, 3, y);
    ck_assert(y[0] == 0.5 && fabs(y[1] - (exp(-1.0) - 1)) < 1e-16);
    attn_ref_linear_phi(ATTN_LINEAR_SILU, ATTN_REF_F64, x, 3, y);
    ck_assert(fabs(y[2] - 2.0 / (1.0 + exp(-2.0))) < 1e-15);
    attn_ref_linear_phi(ATTN_LINEAR_RELU_PAIR, ATTN_REF_F64, x, 3, y);
    ck_assert(y[0] == 0.5 && y[1] == 0.0 && y[2] == 2.0 && y[3] == 0.0 && y[4] == 1.0 &&
              y[5] == 0.0);
    attn_ref_linear_phi(ATTN_LINEAR_SOFTMAX_PAIR, ATTN_REF_F64, x, 3, y);
    const double e = exp(0.5) + exp(-1.0) + exp(2.0), e2 = exp(-0.5) + exp(1.0) + exp(-2.0);
    ck_assert(fabs(y[2] - exp(2.0) / e) < 1e-15 && fabs(y[4] - exp(1.0) / e2) < 1e-15);
    ck_assert(fabs(y[0] + y[1] + y[2] - 1.0) < 1e-15 && fabs(y[3] + y[4] + y[5] - 1.0) < 1e-15);
    double n[2] = {NAN, 1.0};
    attn_ref_linear_phi(ATTN_LINEAR_RELU, ATTN_REF_F64, n, 2, y);
    ck_assert(isnan(y[0]) && y[1] == 1.0);
}
END_TEST

/* Lightning Attention / TransNormerLLM _build_slope_tensor: 8 heads 2^-1 .. 2^-8; 6 heads: the
 * 4-head slopes then every second slope of 8 heads (2^-1, 2^-3). */
START_TEST(decay_slopes)
{
    double ld[8];
    attn_linear_slopes(8, ld);
    for (int g = 0; g < 8; g++)
        ck_assert(ld[g] == -exp2(-(double)(g + 1)));
    attn_linear_slopes(6, ld);
    const double want[6] = {0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125};
    for (int g = 0; g < 6; g++)
        ck_assert_msg(ld[g] == -want[g], "g %d: %g", g, ld[g]);
}
END_TEST

START_TEST(float_recurrent_close)
{
    fixture f;
    make(&f, 200, 2, 1, 16, 16, ATTN_LINEAR_ELU1, 1, 1, 0, 1);
    res a = res_new(&f.p, 0), b = res_new(&f.p, 0);
    ck_assert_int_eq(attn_ref_linear_recurrent(&f.p, ATTN_REF_F64, &a.o), ATTN_OK);
    ck_assert_int_eq(attn_ref_linear_recurrent(&f.p, ATTN_REF_F32, &b.o), ATTN_OK);
    const double d = rel_diff(&f.p, b.m, a.m, 0);
    ck_assert_msg(d > 0 && d < 1e-5, "f32 vs f64 %g", d);
    for (int64_t i = 0; i < f.p.S * f.p.Hq * f.p.Dv; i++)
        ck_assert(b.m[i] == (double)(float)b.m[i]);
    free(a.m);
    free(b.m);
    release(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("linear_ref");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, three_forms_equal, 0, 168);
    tcase_add_loop_test(tc, shift_equals_shifted_inputs, 0, 16);
    tcase_add_test(tc, feature_maps);
    tcase_add_test(tc, decay_slopes);
    tcase_add_test(tc, float_recurrent_close);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
