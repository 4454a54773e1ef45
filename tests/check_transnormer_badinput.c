/* check_transnormer_badinput.c - the bad-input table of attn_transnormer_forward on every
 * backend of the build: each malformed call gets its specific status and a message, and the
 * output keeps every byte it had (forward, supported and impl_name alike). */
#include "attn/attn.h"

#include "check_badinput.h"
#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 1, S = 9, HQ = 4, HKV = 2, D = 8, N_OUT = B * S * HQ * D };

typedef struct call {
    attn_transnormer_desc d;
    attn_tensor q, k, v, o;
    const attn_transnormer_desc *dp;
    const attn_tensor *qp, *kp, *vp, *op;
} call;

static float qb[N_OUT], kb[B * S * HKV * D], vb[B * S * HKV * D], ob[N_OUT + 64];

/* A valid call (its pointers point into *c). */
static void good(call *cp)
{
    call c;
    c.d = attn_transnormer_desc_default();
    c.q = attn_tensor_bshd(qb, ATTN_F32, B, S, HQ, D);
    c.k = attn_tensor_bshd(kb, ATTN_F32, B, S, HKV, D);
    c.v = attn_tensor_bshd(vb, ATTN_F32, B, S, HKV, D);
    c.o = attn_tensor_bshd(ob, ATTN_F32, B, S, HQ, D);
    c.dp = &c.d;
    c.qp = &c.q;
    c.kp = &c.k;
    c.vp = &c.v;
    *cp = c;
    cp->dp = &cp->d;
    cp->qp = &cp->q;
    cp->kp = &cp->k;
    cp->vp = &cp->v;
    cp->op = &cp->o;
}

/* Each row breaks one thing of a good call. */
static void bad_null_desc(call *c) { c->dp = NULL; }
static void bad_null_q(call *c) { c->qp = NULL; }
static void bad_null_out(call *c) { c->op = NULL; }
static void bad_null_data(call *c) { c->k.data = NULL; }
static void bad_mode(call *c) { c->d.mode = (attn_transnormer_mode)7; }
static void bad_causal(call *c) { c->d.causal = 2; }
static void bad_feature(call *c) { c->d.feature = (attn_transnormer_feature)9; }
static void bad_scores(call *c) { c->d.scores = (attn_transnormer_scores)-1; }
static void bad_pad(call *c) { c->d.pad = (attn_transnormer_pad)3; }
static void bad_norm(call *c) { c->d.norm = (attn_transnormer_norm)5; }
static void bad_block(call *c) { c->d.block = -3; }
static void bad_block_huge(call *c) { c->d.block = (int64_t)1 << 50; }
static void bad_scale(call *c) { c->d.scale = NAN; }
static void bad_eps_neg(call *c) { c->d.eps = -1e-6f; }
static void bad_eps_inf(call *c) { c->d.eps = INFINITY; }
static void bad_reserved(call *c) { c->d.reserved[2] = 1; }
static void bad_seq(call *c) { c->k.shape[1] = S - 1; }
static void bad_dk(call *c) { c->k.shape[3] = D / 2; }
static void bad_heads(call *c) { c->k.shape[2] = 3; c->v.shape[2] = 3; }
static void bad_vheads(call *c) { c->v.shape[2] = 1; }
static void bad_out_dv(call *c) { c->o.shape[3] = D + 1; }
static void bad_dtype(call *c) { c->q.dtype = ATTN_U8; }
static void bad_neg_stride(call *c) { c->v.stride[1] = -1; }
static void bad_zero_dim(call *c) { c->q.shape[2] = 0; }
static void bad_overlap_self(call *c) { c->o.stride[2] = 1; }
static void bad_alias(call *c) { c->o.data = qb; }

static const ATTN_BAD_ROW(call) table[] = {
    {"null desc", bad_null_desc, ATTN_ERR_NULL_POINTER},
    {"null q", bad_null_q, ATTN_ERR_NULL_POINTER},
    {"null out", bad_null_out, ATTN_ERR_NULL_POINTER},
    {"null k data", bad_null_data, ATTN_ERR_NULL_POINTER},
    {"mode", bad_mode, ATTN_ERR_INVALID_ARGUMENT},
    {"causal", bad_causal, ATTN_ERR_INVALID_ARGUMENT},
    {"feature", bad_feature, ATTN_ERR_INVALID_ARGUMENT},
    {"scores", bad_scores, ATTN_ERR_INVALID_ARGUMENT},
    {"pad", bad_pad, ATTN_ERR_INVALID_ARGUMENT},
    {"norm", bad_norm, ATTN_ERR_INVALID_ARGUMENT},
    {"negative block", bad_block, ATTN_ERR_INVALID_ARGUMENT},
    {"huge block", bad_block_huge, ATTN_ERR_INVALID_ARGUMENT},
    {"NaN scale", bad_scale, ATTN_ERR_INVALID_ARGUMENT},
    {"negative eps", bad_eps_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"infinite eps", bad_eps_inf, ATTN_ERR_INVALID_ARGUMENT},
    {"reserved", bad_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"k seq != q seq", bad_seq, ATTN_ERR_SHAPE},
    {"k Dk", bad_dk, ATTN_ERR_SHAPE},
    {"Hq % Hkv", bad_heads, ATTN_ERR_HEADS},
    {"v heads", bad_vheads, ATTN_ERR_SHAPE},
    {"out Dv", bad_out_dv, ATTN_ERR_SHAPE},
    {"u8 q", bad_dtype, ATTN_ERR_DTYPE},
    {"negative stride", bad_neg_stride, ATTN_ERR_STRIDE},
    {"zero heads", bad_zero_dim, ATTN_ERR_SHAPE},
    {"out overlaps itself", bad_overlap_self, ATTN_ERR_STRIDE},
    {"out aliases q", bad_alias, ATTN_ERR_ALIAS},
};
enum { N_TABLE = sizeof table / sizeof table[0] };

static const char *const backends[] = {"ref", "cpu", "opencl"};

/* _i = row * 3 + backend */
START_TEST(bad_input_row)
{
    const int row = _i / 3;
    attn_backend *be = NULL;
    if (attn_backend_open(backends[_i % 3], NULL, &be) != ATTN_OK) {
        fprintf(stderr, "skipping backend %s: %s\n", backends[_i % 3], attn_last_error());
        return;
    }
    for (int what = 0; what < 3; what++) {
        call c;
        good(&c);
        table[row].mutate(&c);
        memset(ob, 0x5a, sizeof ob);
        memset(qb, 0, sizeof qb);
        char name[64] = "";
        attn_status st = what == 0   ? attn_transnormer_forward(be, c.dp, c.qp, c.kp, c.vp, c.op)
                         : what == 1 ? attn_transnormer_supported(be, c.dp, c.qp, c.kp, c.vp, c.op)
                                     : attn_transnormer_impl_name(be, c.dp, c.qp, c.kp, c.vp,
                                                                  c.op, name, sizeof name);
        attn_bad_expect(st, table[row].want, table[row].name, backends[_i % 3]);
        attn_bad_untouched(ob, sizeof ob, 0x5a, table[row].name, "out");
        attn_bad_untouched(qb, sizeof qb, 0, table[row].name, "q"); /* out aliases q: q stays */
    }
    /* the good call itself runs and writes every output element */
    call c;
    good(&c);
    memset(ob, 0x5a, sizeof ob);
    ck_assert_int_eq(attn_transnormer_forward(be, c.dp, c.qp, c.kp, c.vp, c.op), ATTN_OK);
    for (int e = 0; e < N_OUT; e++)
        ck_assert(isfinite(ob[e]));
    attn_backend_close(be);
}
END_TEST

START_TEST(null_backend)
{
    call c;
    good(&c);
    ck_assert_int_eq(attn_transnormer_forward(NULL, c.dp, c.qp, c.kp, c.vp, c.op),
                     ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_transnormer_impl_name(NULL, c.dp, c.qp, c.kp, c.vp, c.op, NULL, 0),
                     ATTN_ERR_NULL_POINTER);
}
END_TEST

int main(void)
{
    for (int i = 0; i < (int)(sizeof qb / sizeof qb[0]); i++)
        kb[i % (B * S * HKV * D)] = vb[i % (B * S * HKV * D)] = (float)(i % 7) * 0.1f - 0.3f;
    Suite *s = suite_create("transnormer_badinput");
    TCase *tc = tcase_create("table");
    tcase_add_loop_test(tc, bad_input_row, 0, N_TABLE * 3);
    tcase_add_test(tc, null_backend);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
