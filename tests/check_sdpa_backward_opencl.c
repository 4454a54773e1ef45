/* check_sdpa_backward_opencl.c - the SDPA backward on the OpenCL backend against the f64
 * reference (attn_ref_sdpa_backward): GQA/MQA, Dk != Dv, causal both alignments, windows, both
 * masks with every broadcast of the additive one and its gradient, soft-cap, rows with no
 * visible key, no query rows, f32/f16/bf16 inputs and gradients, strided views (gaps between
 * elements stay untouched), and the same bits on a second run; Inf/NaN planted in hidden keys'
 * K and V and in q/dO of rows with hidden keys or none visible give the reference's NaNs and
 * nothing more. Skips without an OpenCL device. */
#include "check_backward.h"
#include "check_run.h"
#include "sdpa_backward_fixture.h"
#include "sdpa_ref.h"


#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20261208u

/* ---- cases ---- */

typedef struct bcase {
    sbw_shape s;
    int causal, top_left;
    int64_t wl, wr;
    float softcap, scale;
    attn_dtype in[4]; /* q, k, v, dout (and out: dout's dtype; mask_add: q's) */
    attn_dtype grad;  /* dq, dk, dv */
    int layout_in, layout_grad;
} bcase;

#define F32S {ATTN_F32, ATTN_F32, ATTN_F32, ATTN_F32}

/* Shapes: B Sq Skv Hq Hkv Dk Dv, mask_add's shape, mask_bool's shape. */
static const bcase cases[] = {
    /* GQA, Dk != Dv, bottom-right causal with Sq < Skv */
    {{2, 5, 7, 4, 2, 3, 4, {0}, {0}}, 1, 0, -1, -1, 0, 0, F32S, ATTN_F32, 0, 0},
    /* window both sides, soft-cap, scale; mask_add broadcast over heads, mask_bool over Sq */
    {{1, 6, 6, 2, 1, 4, 2, {1, 6, 1, 6}, {1, 1, 2, 6}}, 0, 0, 2, 1, 1.5f, 0.7f, F32S, ATTN_F32,
     0, 0},
    /* bottom-right causal with Sq > Skv: two rows see no key; a full mask_add */
    {{1, 6, 4, 3, 1, 2, 3, {1, 6, 3, 4}, {0}}, 1, 0, -1, -1, 0, 0, F32S, ATTN_F32, 0, 0},
    /* several tiles both ways, top-left causal with a left window, soft-cap, both masks */
    {{1, 37, 53, 4, 2, 8, 5, {1, 37, 1, 53}, {1, 37, 4, 53}}, 1, 1, 9, -1, 4.0f, 0, F32S,
     ATTN_F32, 0, 0},
    /* MHA, not causal, mask_add broadcast over Sq and heads, two batches */
    {{2, 33, 40, 4, 4, 16, 16, {2, 1, 1, 40}, {0}}, 0, 0, -1, -1, 0, 0, F32S, ATTN_F32, 0, 0},
    /* MQA with head dim 64, top-left causal; a mask_add broadcast over everything but keys */
    {{1, 40, 40, 8, 1, 64, 64, {1, 1, 1, 40}, {0}}, 1, 1, -1, -1, 0, 0, F32S, ATTN_F32, 0, 0},
    /* a right window only, not causal */
    {{1, 19, 23, 2, 2, 8, 8, {0}, {0}}, 0, 0, -1, 3, 0, 0, F32S, ATTN_F32, 0, 0},
    /* no query rows: dk and dv are zeroed */
    {{1, 0, 5, 2, 1, 4, 4, {0}, {0}}, 0, 0, -1, -1, 0, 0, F32S, ATTN_F32, 0, 0},
    /* half precision inputs and gradients, strided views */
    {{2, 5, 7, 4, 2, 3, 4, {0}, {0}}, 1, 0, -1, -1, 0, 0,
     {ATTN_F16, ATTN_F16, ATTN_F16, ATTN_F16}, ATTN_F16, ATTN_VT_BHSD_PAD, ATTN_VT_STEP2},
    {{1, 37, 53, 4, 2, 8, 5, {1, 37, 1, 53}, {1, 37, 4, 53}}, 1, 1, 9, -1, 4.0f, 0,
     {ATTN_BF16, ATTN_BF16, ATTN_BF16, ATTN_BF16}, ATTN_BF16, ATTN_VT_STEP2, ATTN_VT_BHSD_PAD},
    /* mixed dtypes */
    {{1, 17, 29, 4, 2, 12, 20, {1, 17, 4, 29}, {0}}, 1, 0, -1, -1, 2.0f, 0,
     {ATTN_F16, ATTN_BF16, ATTN_F32, ATTN_BF16}, ATTN_BF16, ATTN_VT_DENSE, ATTN_VT_STEP2},
    {{1, 17, 29, 4, 2, 12, 20, {0}, {1, 1, 1, 29}}, 0, 0, 4, 4, 0, 0,
     {ATTN_F32, ATTN_F16, ATTN_BF16, ATTN_F32}, ATTN_F16, ATTN_VT_BHSD_PAD, ATTN_VT_DENSE},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- Inf/NaN where the gradients must not see them (as check_sdpa_backward_cpu plants them),
 * and in rows whose visible keys then carry them as the reference does ---- */

enum { P_Q = 1, P_K, P_V, P_DOUT };

typedef struct pcase {
    bcase c;
    int64_t hide_row;    /* mask_bool: this query row sees no key (-1: none) */
    int64_t hide_key[2]; /* mask_bool: these keys are hidden from every row (-1: none) */
    struct {
        int t; /* P_Q, P_K, P_V, P_DOUT (0: end) */
        int64_t b, s, h, d;
        float x;
    } at[8];
} pcase;

static const pcase pcases[] = {
    /* mask_bool: row 3 sees nothing (Inf in q, NaN in dO), keys 11 and 29 nothing (NaN/Inf in
     * K and V); row 7 of head 1 sees some keys and its dO holds a NaN */
    {{{1, 21, 40, 4, 2, 8, 6, {0}, {1, 21, 1, 40}}, 0, 0, -1, -1, 0, 0, F32S, ATTN_F32, 0, 0},
     3,
     {11, 29},
     {{P_K, 0, 11, 0, 2, NAN},
      {P_K, 0, 29, 1, 0, -INFINITY},
      {P_V, 0, 29, 1, 1, INFINITY},
      {P_V, 0, 11, 0, 0, NAN},
      {P_Q, 0, 3, 1, 4, INFINITY},
      {P_DOUT, 0, 3, 2, 0, NAN},
      {P_DOUT, 0, 7, 1, 3, NAN}}},
    /* bottom-right causal with a left window and a soft-cap, f16 inputs: rows 0..11 see no key
     * (Inf/NaN in q and dO), rows 20 and 25 see a window (NaN in dO) */
    {{{1, 30, 18, 2, 1, 8, 8, {0}, {0}}, 1, 0, 5, -1, 2.0f, 0,
      {ATTN_F16, ATTN_F16, ATTN_F16, ATTN_F16}, ATTN_F32, 0, 0},
     -1,
     {-1, -1},
     {{P_Q, 0, 2, 0, 1, NAN},
      {P_DOUT, 0, 2, 1, 0, INFINITY},
      {P_Q, 0, 11, 1, 7, -INFINITY},
      {P_DOUT, 0, 20, 0, 3, NAN},
      {P_DOUT, 0, 25, 1, 5, NAN}}},
    /* top-left causal, mask_bool hides keys 5 and 20 from every row (NaN/Inf in K and V inside
     * the rows' spans); NaN in dO of rows 30 and 33, whose later keys are hidden */
    {{{1, 37, 53, 4, 2, 8, 5, {0}, {1, 37, 4, 53}}, 1, 1, -1, -1, 0, 0, F32S, ATTN_F32, 0, 0},
     -1,
     {5, 20},
     {{P_K, 0, 5, 0, 3, NAN},
      {P_K, 0, 20, 1, 0, INFINITY},
      {P_V, 0, 20, 1, 2, NAN},
      {P_V, 0, 5, 0, 4, -INFINITY},
      {P_DOUT, 0, 30, 3, 1, NAN},
      {P_DOUT, 0, 33, 0, 4, NAN}}},
};
#define NPCASES ((int)(sizeof pcases / sizeof pcases[0]))

/* Plant pc's values into x's dense f32 inputs and its hidden rows and keys into mask_bool. */
static void plant(sbw *x, const pcase *pc)
{
    const sbw_shape *s = &x->s;
    for (int e = 0; e < 8 && pc->at[e].t; e++) {
        const int t = pc->at[e].t;
        const int64_t H = t == P_K || t == P_V ? s->Hkv : s->Hq;
        const int64_t S = t == P_K || t == P_V ? s->Skv : s->Sq;
        const int64_t D = t == P_V || t == P_DOUT ? s->Dv : s->Dk;
        float *a = t == P_Q ? x->q : t == P_K ? x->k : t == P_V ? x->v : x->dout;
        a[((pc->at[e].b * S + pc->at[e].s) * H + pc->at[e].h) * D + pc->at[e].d] = pc->at[e].x;
    }
    const int64_t *m = s->mbool;
    for (int64_t e = 0; m[0] && e < m[0] * m[1] * m[2] * m[3]; e++) {
        const int64_t j = e % m[3], i = e / (m[2] * m[3]) % m[1];
        if (i == pc->hide_row || j == pc->hide_key[0] || j == pc->hide_key[1])
            x->mbool[e] = 0;
    }
}

/* The operands of one run: inputs in the case's dtypes and layouts, the forward's out and lse
 * (ref backend), gradients (twice, for the determinism check). */
typedef struct brun {
    sbw x;
    attn_sdpa_desc desc;
    attn_vt q, k, v, dout, out, madd, g[2][4]; /* g: dq dk dv dmask */
    attn_tensor *lse;
    attn_sdpa_grads grads[2];
} brun;

static const int64_t *shape_of(const sbw_shape *s, int which, int64_t sh[4])
{
    const int64_t all[6][4] = {{s->B, s->Sq, s->Hq, s->Dk},  {s->B, s->Skv, s->Hkv, s->Dk},
                               {s->B, s->Skv, s->Hkv, s->Dv}, {s->B, s->Sq, s->Hq, s->Dv},
                               {s->B, s->Sq, s->Hq, s->Dv},  {0}};
    memcpy(sh, which < 5 ? all[which] : s->madd, 4 * sizeof(int64_t));
    return sh;
}

/* The case's tensors (pc: values planted, or NULL), with out and lse from the ref backend's
 * forward. */
static void brun_init(brun *r, const bcase *c, const pcase *pc)
{
    attn_backend *ref = NULL;
    ck_assert(attn_backend_open("ref", NULL, &ref) == ATTN_OK);
    memset(r, 0, sizeof *r);
    sbw_init(&r->x, &c->s, SEED + (uint64_t)c->s.Sq * 131u + (uint64_t)c->s.Dk);
    if (pc)
        plant(&r->x, pc);
    r->desc = r->x.desc;
    r->desc.causal = c->causal;
    r->desc.align = c->top_left ? ATTN_ALIGN_TOP_LEFT : ATTN_ALIGN_BOTTOM_RIGHT;
    r->desc.window_left = c->wl;
    r->desc.window_right = c->wr;
    r->desc.softcap = c->softcap;
    r->desc.scale = c->scale;
    int64_t sh[4];
    const float *src[5] = {r->x.q, r->x.k, r->x.v, r->x.dout, NULL};
    attn_vt *dst[5] = {&r->q, &r->k, &r->v, &r->dout, &r->out};
    for (int i = 0; i < 5; i++)
        *dst[i] = attn_vt_new(src[i], shape_of(&c->s, i, sh), c->in[i < 4 ? i : 3], c->layout_in);
    if (c->s.madd[0]) {
        r->madd = attn_vt_new(r->x.madd, c->s.madd, c->in[0], ATTN_VT_DENSE);
        r->desc.mask_add = &r->madd.t;
    }
    r->lse = &r->x.tlse;
    attn_status st = attn_sdpa_forward(ref, &r->desc, &r->q.t, &r->k.t, &r->v.t, &r->out.t,
                                       r->lse);
    ck_assert_msg(st == ATTN_OK, "forward: %s", attn_last_error());
    attn_backend_close(ref);
    for (int n = 0; n < 2; n++) {
        for (int i = 0; i < 3; i++)
            r->g[n][i] = attn_vt_new(NULL, shape_of(&c->s, i, sh), c->grad, c->layout_grad);
        if (c->s.madd[0])
            r->g[n][3] = attn_vt_new(NULL, c->s.madd, ATTN_F32, c->layout_grad);
        r->grads[n] = (attn_sdpa_grads){.dq = &r->g[n][0].t, .dk = &r->g[n][1].t,
                                        .dv = &r->g[n][2].t,
                                        .dmask_add = c->s.madd[0] ? &r->g[n][3].t : NULL};
    }
}

static void brun_free(brun *r)
{
    attn_vt *all[] = {&r->q, &r->k, &r->v, &r->dout, &r->out, &r->madd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]->data);
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 4; i++)
            free(r->g[n][i].data);
    sbw_free(&r->x);
}

/* Case c (pc: values planted, or NULL), numbered k in the messages. */
static void check_case(attn_backend *cl, const bcase *c, const pcase *pc, int k)
{
    brun r;
    brun_init(&r, c, pc);
    for (int n = 0; n < 2; n++) {
        attn_status st = attn_sdpa_backward(cl, &r.desc, &r.q.t, &r.k.t, &r.v.t, &r.out.t, r.lse,
                                            &r.dout.t, &r.grads[n]);
        ck_assert_msg(st == ATTN_OK, "case %d: backward: %s", k, attn_last_error());
    }
    attn_sdpa_problem p;
    ck_assert(attn_sdpa_validate_backward(&r.desc, &r.q.t, &r.k.t, &r.v.t, &r.out.t, r.lse,
                                          &r.dout.t, &r.grads[0], &p) == ATTN_OK);
    const char *names[4] = {"dq", "dk", "dv", "dmask"};
    const char *sizes[4] = {"dq", "dk", "dv", "madd"};
    double *g[4], *m[4];
    for (int i = 0; i < 4; i++) {
        g[i] = attn_test_dalloc(sbw_n(&r.x, sizes[i]));
        m[i] = attn_test_dalloc(sbw_n(&r.x, sizes[i]));
    }
    attn_ref_sdpa_grads rg = {g[0], g[1], g[2], c->s.madd[0] ? g[3] : NULL,
                              m[0], m[1], m[2], c->s.madd[0] ? m[3] : NULL};
    ck_assert(attn_ref_sdpa_backward(&p, ATTN_REF_F64, &rg) == ATTN_OK);
    /* f32 working precision; the forward's out is rounded to dout's dtype, and
     * D = rowsum(dO * O) carries that error. */
    const attn_close_rule rule = {.tol = 4e-6 + 4 * attn_grad_ulp(c->in[3]), .nonfinite = 1};
    for (int i = 0; i < (c->s.madd[0] ? 4 : 3); i++) {
        int64_t sh[4];
        attn_vt_expect_close(&r.g[0][i], shape_of(&c->s, i < 3 ? i : 5, sh), g[i], m[i], rule,
                             names[i], k);
        attn_vt_expect_same_bits(&r.g[0][i], &r.g[1][i], names[i], k);
    }
    for (int i = 0; i < 4; i++) {
        free(g[i]);
        free(m[i]);
    }
    brun_free(&r);
}

START_TEST(test_against_reference)
{
    attn_backend *cl = attn_test_opencl_or_skip(__func__);
    if (!cl)
        return;
    check_case(cl, &cases[_i], NULL, _i);
    attn_backend_close(cl);
}
END_TEST

START_TEST(test_planted_nonfinite)
{
    attn_backend *cl = attn_test_opencl_or_skip(__func__);
    if (!cl)
        return;
    check_case(cl, &pcases[_i].c, &pcases[_i], 100 + _i);
    attn_backend_close(cl);
}
END_TEST

/* Every operand in device memory gives the same bits as host memory (strided bf16 views,
 * both masks and the mask gradient). */
START_TEST(test_device_buffers)
{
    attn_backend *cl = attn_test_opencl_or_skip(__func__);
    if (!cl)
        return;
    brun r;
    brun_init(&r, &cases[9], NULL);
    enum { NIN = 8 };
    const attn_vt *hin[NIN] = {&r.q, &r.k, &r.v, &r.out, &r.dout, &r.madd};
    attn_buffer *bin[NIN + 4] = {NULL};
    attn_tensor din[NIN], dg[4];
    for (int i = 0; i < 6; i++)
        din[i] = attn_test_on_device(cl, &hin[i]->t, hin[i]->bytes, &bin[i]);
    din[6] = attn_test_on_device(cl, r.lse, (size_t)sbw_n(&r.x, "lse") * sizeof(float), &bin[6]);
    din[7] = attn_test_on_device(cl, &r.x.tmbool, (size_t)sbw_n(&r.x, "mbool"), &bin[7]);
    for (int i = 0; i < 4; i++)
        dg[i] = attn_test_on_device(cl, &r.g[1][i].t, r.g[1][i].bytes, &bin[NIN + i]);
    attn_sdpa_desc d = r.desc;
    d.mask_add = &din[5];
    d.mask_bool = &din[7];
    attn_sdpa_grads g = {.dq = &dg[0], .dk = &dg[1], .dv = &dg[2], .dmask_add = &dg[3]};
    ck_assert_msg(attn_sdpa_backward(cl, &r.desc, &r.q.t, &r.k.t, &r.v.t, &r.out.t, r.lse,
                                     &r.dout.t, &r.grads[0]) == ATTN_OK,
                  "%s", attn_last_error());
    ck_assert_msg(attn_sdpa_backward(cl, &d, &din[0], &din[1], &din[2], &din[3], &din[6],
                                     &din[4], &g) == ATTN_OK,
                  "%s", attn_last_error());
    attn_test_expect_device_grads(bin, NIN, r.g[0], r.g[1], 4);
    brun_free(&r);
    attn_backend_close(cl);
}
END_TEST

/* The capability check and the name agree with the call. */
START_TEST(test_supported_and_name)
{
    attn_backend *cl = attn_test_opencl_or_skip(__func__);
    if (!cl)
        return;
    brun r;
    brun_init(&r, &cases[3], NULL);
    ck_assert_int_eq(attn_sdpa_backward_supported(cl, &r.desc, &r.q.t, &r.k.t, &r.v.t,
                                                  &r.out.t, r.lse, &r.dout.t, &r.grads[0]),
                     ATTN_OK);
    char name[256];
    ck_assert_int_eq(attn_sdpa_backward_impl_name(cl, &r.desc, &r.q.t, &r.k.t, &r.v.t,
                                                  &r.out.t, r.lse, &r.dout.t, &r.grads[0], name,
                                                  sizeof name),
                     ATTN_OK);
    ck_assert_msg(strncmp(name, "opencl:flash_bwd[", 17) == 0 && strstr(name, ",dmask"), "%s",
                  name);
    brun_free(&r);
    attn_backend_close(cl);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = attn_backward_device_suite("sdpa_backward_opencl", "opencl", 600,
                                          test_against_reference, NCASES, test_device_buffers,
                                          test_supported_and_name);
    /* its own case, so that CK_RUN_CASE=nonfinite runs it alone (e.g. under Oclgrind) */
    TCase *nf = tcase_create("nonfinite");
    tcase_set_timeout(nf, 600);
    tcase_add_loop_test(nf, test_planted_nonfinite, 0, NPCASES);
    suite_add_tcase(s, nf);
    return s;
}

int main(void)
{
    return attn_check_run(suite());
}
