/* check_linear_backward_opencl.c - the linear attention backward on the OpenCL backend against
 * the f64 reference (attn_ref_linear_backward): every feature map, causal or not, decay none /
 * slopes / given, GQA and MQA, the normaliser or not, the initial state's gradients and the
 * final state's, shifted problems (rattention's residual branch, through the op table), one
 * row, chunks shorter than the sequence, f32/f16/bf16 inputs and gradients, strided views
 * (gaps between elements stay untouched, every element is written), the same bits on a second
 * run, and device buffers giving the bits of host memory. Skips without an OpenCL device. */
#include "check_backward.h"
#include "check_run.h"
#include "linear_backward_fixture.h"
#include "linear_ref.h"

#include "attn_backend_impl.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20261209u

/* ---- cases ---- */

typedef struct lcase {
    lbw_shape s;
    attn_dtype in[4]; /* q, k, v, dout */
    attn_dtype grad;  /* dq, dk, dv */
    int layout_in, layout_grad;
    int64_t shift; /* nonzero: run through the op table with this shift */
    int chunk;     /* backend option chunk= (0: the default) */
} lcase;

#define F32S {ATTN_F32, ATTN_F32, ATTN_F32, ATTN_F32}
#define NONE ATTN_LINEAR_DECAY_NONE
#define SLOPES ATTN_LINEAR_DECAY_SLOPES
#define GIVEN ATTN_LINEAR_DECAY_GIVEN

static const lcase cases[] = {
    /* B S Hq Hkv Dk Dv feature normalize causal decay state_in state_out */
    {{2, 37, 4, 2, 5, 6, ATTN_LINEAR_ELU1, 1, 1, NONE, 1, 1}, F32S, ATTN_F32, 0, 0, 0, 0},
    {{1, 45, 2, 2, 4, 3, ATTN_LINEAR_SOFTMAX_PAIR, 0, 1, SLOPES, 1, 1}, F32S, ATTN_F32, 0, 0, 0,
     0},
    {{1, 33, 3, 1, 4, 5, ATTN_LINEAR_RELU_PAIR, 0, 0, NONE, 1, 1}, F32S, ATTN_F32, 0, 0, 0, 0},
    {{1, 40, 2, 2, 3, 4, ATTN_LINEAR_SILU, 0, 1, GIVEN, 1, 1}, F32S, ATTN_F32, 0, 0, 3, 0},
    {{1, 30, 4, 1, 6, 4, ATTN_LINEAR_ELU, 0, 1, NONE, 0, 0}, F32S, ATTN_F32, 0, 0, 0, 0},
    {{2, 21, 2, 2, 3, 4, ATTN_LINEAR_IDENTITY, 1, 0, NONE, 1, 0}, F32S, ATTN_F32, 0, 0, 0, 0},
    {{1, 50, 2, 1, 4, 3, ATTN_LINEAR_RELU, 0, 1, NONE, 0, 1}, F32S, ATTN_F32, 0, 0, 0, 8},
    {{1, 26, 2, 2, 4, 4, ATTN_LINEAR_ELU1, 1, 1, NONE, 1, 1}, F32S, ATTN_F32, 0, 0, 5, 8},
    {{1, 1, 2, 1, 3, 3, ATTN_LINEAR_ELU1, 1, 1, SLOPES, 1, 1}, F32S, ATTN_F32, 0, 0, 0, 0},
    {{1, 70, 4, 2, 64, 64, ATTN_LINEAR_ELU1, 1, 1, NONE, 0, 0}, F32S, ATTN_F32, 0, 0, 0, 0},
    {{1, 29, 2, 2, 5, 3, ATTN_LINEAR_SOFTMAX_PAIR, 1, 0, NONE, 1, 1}, F32S, ATTN_F32, 0, 0, 0, 0},
    /* half precision inputs and gradients, strided views */
    {{1, 35, 4, 2, 8, 8, ATTN_LINEAR_ELU1, 1, 1, SLOPES, 1, 1},
     {ATTN_F16, ATTN_F16, ATTN_F16, ATTN_F16}, ATTN_BF16, ATTN_VT_BHSD_PAD, ATTN_VT_STEP2, 0, 0},
    {{2, 19, 2, 1, 4, 6, ATTN_LINEAR_SOFTMAX_PAIR, 1, 1, GIVEN, 1, 1},
     {ATTN_BF16, ATTN_BF16, ATTN_BF16, ATTN_BF16}, ATTN_F16, ATTN_VT_STEP2, ATTN_VT_BHSD_PAD, 1, 0},
    {{1, 23, 3, 3, 5, 7, ATTN_LINEAR_RELU_PAIR, 0, 1, NONE, 0, 1},
     {ATTN_F16, ATTN_BF16, ATTN_F32, ATTN_BF16}, ATTN_F16, ATTN_VT_DENSE, ATTN_VT_STEP2, 0, 0},
    {{1, 17, 2, 1, 4, 4, ATTN_LINEAR_SILU, 0, 0, NONE, 1, 0},
     {ATTN_F32, ATTN_F16, ATTN_BF16, ATTN_F32}, ATTN_BF16, ATTN_VT_BHSD_PAD, ATTN_VT_DENSE, 0, 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* The operands of one case: inputs in its dtypes and layouts, gradients twice (the
 * determinism check), the initial state's gradients twice (NaN-filled f32 in the gradients'
 * layout). */
typedef struct lrun {
    lbw x;
    attn_vt in[4], g[2][5]; /* g: dq dk dv d_state_in d_z_in */
    attn_linear_grads grads[2];
} lrun;

static const int64_t *shape_of(const lbw *x, int which, int64_t sh[4])
{
    const lbw_shape *s = &x->s;
    const int64_t all[6][4] = {{s->B, s->S, s->Hq, s->Dk},   {s->B, s->S, s->Hkv, s->Dk},
                               {s->B, s->S, s->Hkv, s->Dv},  {s->B, s->S, s->Hq, s->Dv},
                               {s->B, s->Hkv, x->Df, s->Dv}, {s->B, s->Hkv, x->Df, 1}};
    memcpy(sh, all[which], 4 * sizeof(int64_t));
    return sh;
}

static void lrun_init(lrun *r, const lcase *c, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    lbw_init(&r->x, &c->s, seed);
    if (c->s.feature == ATTN_LINEAR_IDENTITY)
        r->x.desc.eps = 4.0f; /* with a positive z0, keeps the denominator away from 0 */
    int64_t sh[4];
    const float *src[4] = {r->x.q, r->x.k, r->x.v, r->x.dout};
    for (int i = 0; i < 4; i++)
        r->in[i] = attn_vt_new(src[i], shape_of(&r->x, i == 3 ? 3 : i, sh), c->in[i], c->layout_in);
    for (int n = 0; n < 2; n++) {
        for (int i = 0; i < 3; i++)
            r->g[n][i] = attn_vt_new(NULL, shape_of(&r->x, i, sh), c->grad, c->layout_grad);
        for (int i = 3; i < 5; i++)
            r->g[n][i] = attn_vt_new(NULL, shape_of(&r->x, i + 1, sh), ATTN_F32, c->layout_grad);
        r->grads[n] = r->x.grads;
        r->grads[n].dq = &r->g[n][0].t;
        r->grads[n].dk = &r->g[n][1].t;
        r->grads[n].dv = &r->g[n][2].t;
        if (r->x.grads.d_state_in)
            r->grads[n].d_state_in = &r->g[n][3].t;
        if (r->x.grads.d_z_in)
            r->grads[n].d_z_in = &r->g[n][4].t;
    }
}

static void lrun_free(lrun *r)
{
    for (int i = 0; i < 4; i++)
        free(r->in[i].data);
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 5; i++)
            free(r->g[n][i].data);
    lbw_free(&r->x);
}

static void validate(lrun *r, int n, attn_linear_problem *p)
{
    const attn_status st =
        attn_linear_validate_backward(&r->x.desc, &r->in[0].t, &r->in[1].t, &r->in[2].t,
                                      &r->x.st, &r->in[3].t, &r->grads[n], p);
    ck_assert_msg(st == ATTN_OK, "validate: %s", attn_last_error());
}

/* Gradients into run n's tensors: the public call, or the op table with a shift. */
static void run_backward(attn_backend *cl, lrun *r, int n, int64_t shift, int k)
{
    attn_status st;
    if (!shift) {
        st = attn_linear_backward(cl, &r->x.desc, &r->in[0].t, &r->in[1].t, &r->in[2].t,
                                  &r->x.st, &r->in[3].t, &r->grads[n]);
    } else {
        attn_linear_problem p;
        validate(r, n, &p);
        p.shift = shift;
        st = attn_opencl_linear_impl.supported(cl, &p);
        if (st == ATTN_OK)
            st = attn_opencl_linear_impl.run(cl, &p);
        attn_linear_problem_release(&p);
    }
    ck_assert_msg(st == ATTN_OK, "case %d: backward: %s", k, attn_last_error());
}

static void check_case(int k)
{
    const lcase *c = &cases[k];
    attn_backend *cl = attn_test_open_opencl(c->chunk);
    lrun r;
    lrun_init(&r, c, SEED + (uint64_t)k);
    for (int n = 0; n < 2; n++)
        run_backward(cl, &r, n, c->shift, k);
    attn_linear_problem p;
    validate(&r, 0, &p);
    p.shift = c->shift;
    const char *names[5] = {"dq", "dk", "dv", "d_state_in", "d_z_in"};
    const char *sizes[5] = {"q", "k", "v", "state", "z"};
    double *g[5], *m[5];
    for (int i = 0; i < 5; i++) {
        g[i] = attn_test_dalloc(lbw_n(&r.x, sizes[i]));
        m[i] = attn_test_dalloc(lbw_n(&r.x, sizes[i]));
    }
    const int has[5] = {1, 1, 1, r.grads[0].d_state_in != NULL, r.grads[0].d_z_in != NULL};
    attn_linear_ref_grads rg = {g[0], g[1], g[2], has[3] ? g[3] : NULL, has[4] ? g[4] : NULL,
                                m[0], m[1], m[2], has[3] ? m[3] : NULL, has[4] ? m[4] : NULL};
    ck_assert(attn_ref_linear_backward(&p, ATTN_REF_F64, &rg) == ATTN_OK);
    attn_linear_problem_release(&p);
    /* f32 working precision over sums as long as the sequence; never NaN */
    const attn_close_rule rule = {.tol = 1e-5, .floor = 1e-30, .nonfinite = 0};
    for (int i = 0; i < 5; i++) {
        if (!has[i])
            continue;
        int64_t sh[4];
        attn_vt_expect_close(&r.g[0][i], shape_of(&r.x, i < 3 ? i : i + 1, sh), g[i], m[i], rule,
                             names[i], k);
        attn_vt_expect_same_bits(&r.g[0][i], &r.g[1][i], names[i], k);
    }
    for (int i = 0; i < 5; i++) {
        free(g[i]);
        free(m[i]);
    }
    lrun_free(&r);
    attn_backend_close(cl);
}

START_TEST(test_against_reference)
{
    if (!attn_test_have_opencl(__func__))
        return;
    check_case(_i);
}
END_TEST

/* Every operand in device memory gives the bits of host memory (strided half views, the
 * states both ways). */
START_TEST(test_device_buffers)
{
    attn_backend *cl = attn_test_opencl_or_skip(__func__);
    if (!cl)
        return;
    lrun r;
    lrun_init(&r, &cases[11], SEED + 11u);
    run_backward(cl, &r, 0, 0, 11);
    /* inputs q k v dout, the states in and the final state's gradients, then the gradients */
    enum { NIN = 8 };
    attn_vt hin[NIN] = {r.in[0], r.in[1], r.in[2], r.in[3]};
    const attn_tensor *st[4] = {r.x.st.state_in, r.x.st.z_in, r.x.grads.d_state_out,
                                r.x.grads.d_z_out};
    for (int i = 0; i < 4; i++) {
        hin[4 + i].t = *st[i];
        hin[4 + i].data = st[i]->data;
        hin[4 + i].bytes = (size_t)(st[i]->shape[0] * st[i]->shape[1] * st[i]->shape[2] *
                                    st[i]->shape[3]) * sizeof(float);
    }
    attn_buffer *buf[NIN + 5] = {NULL};
    attn_tensor din[NIN], dg[5];
    for (int i = 0; i < NIN; i++)
        din[i] = attn_test_on_device(cl, &hin[i].t, hin[i].bytes, &buf[i]);
    for (int i = 0; i < 5; i++)
        dg[i] = attn_test_on_device(cl, &r.g[1][i].t, r.g[1][i].bytes, &buf[NIN + i]);
    attn_linear_state s = {.state_in = &din[4], .z_in = &din[5]};
    attn_linear_grads g = {.dq = &dg[0], .dk = &dg[1], .dv = &dg[2], .d_state_in = &dg[3],
                           .d_z_in = &dg[4], .d_state_out = &din[6], .d_z_out = &din[7]};
    ck_assert_msg(attn_linear_backward(cl, &r.x.desc, &din[0], &din[1], &din[2], &s, &din[3],
                                       &g) == ATTN_OK,
                  "%s", attn_last_error());
    attn_test_expect_device_grads(buf, NIN, r.g[0], r.g[1], 5);
    lrun_free(&r);
    attn_backend_close(cl);
}
END_TEST

/* The capability check and the name agree with the call. */
START_TEST(test_supported_and_name)
{
    attn_backend *cl = attn_test_opencl_or_skip(__func__);
    if (!cl)
        return;
    lrun r;
    lrun_init(&r, &cases[0], SEED);
    const attn_tensor *q = &r.in[0].t, *k = &r.in[1].t, *v = &r.in[2].t, *dout = &r.in[3].t;
    ck_assert_int_eq(attn_linear_backward_supported(cl, &r.x.desc, q, k, v, &r.x.st, dout,
                                                    &r.grads[0]),
                     ATTN_OK);
    char name[320];
    ck_assert_int_eq(attn_linear_backward_impl_name(cl, &r.x.desc, q, k, v, &r.x.st, dout,
                                                    &r.grads[0], name, sizeof name),
                     ATTN_OK);
    ck_assert_msg(strncmp(name, "opencl:linear_chunk_bwd[", 24) == 0 && strstr(name, ",norm") &&
                      strstr(name, ",d_state_in"),
                  "%s", name);
    lrun_free(&r);
    attn_backend_close(cl);
}
END_TEST

static Suite *suite(void)
{
    return attn_backward_device_suite("linear_backward_opencl", "opencl", 600,
                                      test_against_reference, NCASES, test_device_buffers,
                                      test_supported_and_name);
}

int main(void)
{
    return attn_check_run(suite());
}
