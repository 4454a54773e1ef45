/* check_linear_badinput.c - the bad-input table of linear attention: every malformed call
 * returns its specific status and a message and leaves out, state_out and z_out untouched, on
 * every backend of the build; an empty batch succeeds, and an empty sequence passes the state
 * through. */
#include "attn/attn.h"
#include "linear_fixture.h"

#include "check_badinput.h"
#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, S = 5, HQ = 4, HKV = 2, DK = 4, DV = 3, DF = DK };
#define SENTINEL 0xA5

static const char *const backends[] = {"ref", "cpu", "opencl"};

/* A valid call (normalised, causal, state in and out); each table row breaks one thing. */
typedef struct setup {
    attn_backend *be;
    attn_linear_desc d;
    attn_tensor q, k, v, out, si, zi, so, zo;
    attn_linear_state st;
    const attn_tensor *pq, *pout;
    float qd[B * S * HQ * DK], kd[B * S * HKV * DK], vd[B * S * HKV * DV];
    float outd[B * S * HQ * DV], sid[B * HKV * DF * DV], zid[B * HKV * DF];
    float sod[B * HKV * DF * DV], zod[B * HKV * DF], dec[HKV];
} setup;

/* x[i] = (i * mul % mod) / mod - 0.5 (mod 1: all 0.5, a positive z) */
static void pattern(float *x, size_t n, unsigned mul, unsigned mod)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i * mul % mod) / (float)mod - (mod > 1 ? 0.5f : -0.5f);
}

/* The outputs hold the sentinel: untouched() tells whether a call wrote any byte. */
static void poison(setup *s)
{
    memset(s->outd, SENTINEL, sizeof s->outd);
    memset(s->sod, SENTINEL, sizeof s->sod);
    memset(s->zod, SENTINEL, sizeof s->zod);
}

static int make_valid(setup *s, const char *backend)
{
    memset(s, 0, sizeof *s);
    if (!linear_fx_available(backend) || attn_backend_open(backend, NULL, &s->be) != ATTN_OK)
        return 0;
    pattern(s->qd, sizeof s->qd / 4, 7, 11);
    pattern(s->kd, sizeof s->kd / 4, 5, 13);
    pattern(s->vd, sizeof s->vd / 4, 3, 17);
    pattern(s->zid, sizeof s->zid / 4, 0, 1);
    poison(s);
    s->d = attn_linear_desc_default();
    s->q = attn_tensor_bshd(s->qd, ATTN_F32, B, S, HQ, DK);
    s->k = attn_tensor_bshd(s->kd, ATTN_F32, B, S, HKV, DK);
    s->v = attn_tensor_bshd(s->vd, ATTN_F32, B, S, HKV, DV);
    s->out = attn_tensor_bshd(s->outd, ATTN_F32, B, S, HQ, DV);
    s->si = attn_tensor_bshd(s->sid, ATTN_F32, B, HKV, DF, DV);
    s->zi = attn_tensor_bshd(s->zid, ATTN_F32, B, HKV, DF, 1);
    s->so = attn_tensor_bshd(s->sod, ATTN_F32, B, HKV, DF, DV);
    s->zo = attn_tensor_bshd(s->zod, ATTN_F32, B, HKV, DF, 1);
    s->st = (attn_linear_state){&s->si, &s->zi, &s->so, &s->zo};
    s->pq = &s->q;
    s->pout = &s->out;
    s->dec[0] = 0.5f;
    s->dec[1] = 0.9f;
    return 1;
}

static attn_status call(setup *s)
{
    return attn_linear_forward(s->be, &s->d, s->pq, &s->k, &s->v, s->pout, &s->st);
}

static int untouched(const setup *s)
{
    const unsigned char *bufs[] = {(const unsigned char *)s->outd,
                                   (const unsigned char *)s->sod,
                                   (const unsigned char *)s->zod};
    const size_t n[] = {sizeof s->outd, sizeof s->sod, sizeof s->zod};
    for (int b = 0; b < 3; b++)
        for (size_t i = 0; i < n[b]; i++)
            if (bufs[b][i] != SENTINEL)
                return 0;
    return 1;
}

static void m_null_backend(setup *s) { attn_backend_close(s->be); s->be = NULL; }
static void m_null_q(setup *s) { s->pq = NULL; }
static void m_null_out(setup *s) { s->pout = NULL; }
static void m_feature(setup *s) { s->d.feature = (attn_linear_feature)9; }
static void m_normalize_2(setup *s) { s->d.normalize = 2; }
static void m_causal_2(setup *s) { s->d.causal = -1; }
static void m_eps_neg(setup *s) { s->d.eps = -1e-3f; }
static void m_eps_nan(setup *s) { s->d.eps = NAN; }
static void m_scale_zero(setup *s) { s->d.scale = 0.0f; }
static void m_scale_inf(setup *s) { s->d.scale = INFINITY; }
static void m_decay_enum(setup *s) { s->d.decay = (attn_linear_decay)5; }
static void m_decay_noncausal(setup *s) { s->d.decay = ATTN_LINEAR_DECAY_SLOPES; s->d.causal = 0; }
static void m_decay_null(setup *s) { s->d.decay = ATTN_LINEAR_DECAY_GIVEN; }
static void m_decay_zero(setup *s) { s->d.decay = ATTN_LINEAR_DECAY_GIVEN; s->dec[1] = 0.0f; s->d.decay_values = s->dec; }
static void m_decay_above1(setup *s) { s->d.decay = ATTN_LINEAR_DECAY_GIVEN; s->dec[0] = 1.5f; s->d.decay_values = s->dec; }
static void m_decay_values_unused(setup *s) { s->d.decay_values = s->dec; }
static void m_reserved(setup *s) { s->d.reserved[2] = 1; }
static void m_no_z_in(setup *s) { s->st.z_in = NULL; }
static void m_no_z_out(setup *s) { s->st.z_out = NULL; }
static void m_z_without_norm(setup *s) { s->d.normalize = 0; }
static void m_z_without_state(setup *s) { s->st.state_in = NULL; }
static void m_k_seq(setup *s) { s->k.shape[1] = S - 1; }
static void m_v_heads(setup *s) { s->v.shape[2] = 1; }
static void m_heads(setup *s) { s->q.shape[2] = 3; s->out.shape[2] = 3; }
static void m_out_dv(setup *s) { s->out.shape[3] = DV + 1; }
static void m_dk(setup *s) { s->k.shape[3] = DK - 1; }
static void m_state_df(setup *s) { s->si.shape[2] = 2 * DK; }
static void m_state_pair_df(setup *s) { s->d.feature = ATTN_LINEAR_SOFTMAX_PAIR; }
static void m_state_heads(setup *s) { s->so.shape[1] = HQ; }
static void m_state_f16(setup *s) { s->si.dtype = ATTN_F16; }
static void m_z_cols(setup *s) { s->zo.shape[3] = 2; }
static void m_u8_q(setup *s) { s->q.dtype = ATTN_U8; }
static void m_neg_stride(setup *s) { s->v.stride[1] = -1; }
static void m_zero_dim(setup *s) { s->q.shape[3] = s->k.shape[3] = 0; }
static void m_out_self_overlap(setup *s) { s->out.stride[1] = 0; }
static void m_out_aliases_q(setup *s) { s->out.data = s->qd; }
static void m_state_out_aliases_in(setup *s) { s->so.data = s->sid; }
static void m_z_out_aliases_out(setup *s) { s->zo.data = s->outd; }
static void m_huge_stride(setup *s) { s->k.stride[0] = INT64_MAX / 2; }

static const ATTN_BAD_ROW(setup) table[] = {
    {"null backend", m_null_backend, ATTN_ERR_NULL_POINTER},
    {"null q", m_null_q, ATTN_ERR_NULL_POINTER},
    {"null out", m_null_out, ATTN_ERR_NULL_POINTER},
    {"feature enum", m_feature, ATTN_ERR_INVALID_ARGUMENT},
    {"normalize 2", m_normalize_2, ATTN_ERR_INVALID_ARGUMENT},
    {"causal -1", m_causal_2, ATTN_ERR_INVALID_ARGUMENT},
    {"eps negative", m_eps_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"eps NaN", m_eps_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"scale 0", m_scale_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"scale inf", m_scale_inf, ATTN_ERR_INVALID_ARGUMENT},
    {"decay enum", m_decay_enum, ATTN_ERR_INVALID_ARGUMENT},
    {"decay without causal", m_decay_noncausal, ATTN_ERR_INVALID_ARGUMENT},
    {"given decay without values", m_decay_null, ATTN_ERR_NULL_POINTER},
    {"decay value 0", m_decay_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"decay value 1.5", m_decay_above1, ATTN_ERR_INVALID_ARGUMENT},
    {"decay values without given decay", m_decay_values_unused, ATTN_ERR_INVALID_ARGUMENT},
    {"reserved", m_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"state_in without z_in", m_no_z_in, ATTN_ERR_NULL_POINTER},
    {"state_out without z_out", m_no_z_out, ATTN_ERR_NULL_POINTER},
    {"z without normalize", m_z_without_norm, ATTN_ERR_INVALID_ARGUMENT},
    {"z_in without state_in", m_z_without_state, ATTN_ERR_NULL_POINTER},
    {"k seq", m_k_seq, ATTN_ERR_SHAPE},
    {"v heads", m_v_heads, ATTN_ERR_SHAPE},
    {"Hq not a multiple of Hkv", m_heads, ATTN_ERR_HEADS},
    {"out Dv", m_out_dv, ATTN_ERR_SHAPE},
    {"k Dk", m_dk, ATTN_ERR_SHAPE},
    {"state Df", m_state_df, ATTN_ERR_SHAPE},
    {"state Df of a paired map", m_state_pair_df, ATTN_ERR_SHAPE},
    {"state heads", m_state_heads, ATTN_ERR_SHAPE},
    {"state f16", m_state_f16, ATTN_ERR_DTYPE},
    {"z columns", m_z_cols, ATTN_ERR_SHAPE},
    {"u8 q", m_u8_q, ATTN_ERR_DTYPE},
    {"negative stride", m_neg_stride, ATTN_ERR_STRIDE},
    {"zero head dim", m_zero_dim, ATTN_ERR_SHAPE},
    {"out overlaps itself", m_out_self_overlap, ATTN_ERR_STRIDE},
    {"out aliases q", m_out_aliases_q, ATTN_ERR_ALIAS},
    {"state_out aliases state_in", m_state_out_aliases_in, ATTN_ERR_ALIAS},
    {"z_out aliases out", m_z_out_aliases_out, ATTN_ERR_ALIAS},
    {"huge stride", m_huge_stride, ATTN_ERR_OVERFLOW},
};
enum { N_ROWS = sizeof table / sizeof table[0] };

/* _i = row * 3 + backend */
START_TEST(bad_input)
{
    setup s;
    const char *backend = backends[_i % 3];
    if (!make_valid(&s, backend))
        return;
    table[_i / 3].mutate(&s);
    attn_bad_expect(call(&s), table[_i / 3].want, table[_i / 3].name, backend);
    ck_assert_msg(untouched(&s), "%s on %s: an output was written", table[_i / 3].name, backend);
    attn_status ss = attn_linear_supported(s.be, &s.d, s.pq, &s.k, &s.v, s.pout, &s.st);
    ck_assert_int_eq(ss, table[_i / 3].want);
    attn_backend_close(s.be);
}
END_TEST

/* The valid call runs; batch 0 succeeds writing nothing; seq 0 copies the state through. */
START_TEST(valid_and_empty)
{
    setup s;
    const char *backend = backends[_i];
    if (!make_valid(&s, backend))
        return;
    ck_assert_int_eq(call(&s), ATTN_OK);
    ck_assert(!untouched(&s));
    poison(&s);
    s.q.shape[0] = s.k.shape[0] = s.v.shape[0] = s.out.shape[0] = 0;
    s.si.shape[0] = s.zi.shape[0] = s.so.shape[0] = s.zo.shape[0] = 0;
    ck_assert_int_eq(call(&s), ATTN_OK);
    ck_assert(untouched(&s));
    s.q.shape[0] = s.k.shape[0] = s.v.shape[0] = s.out.shape[0] = B;
    s.si.shape[0] = s.zi.shape[0] = s.so.shape[0] = s.zo.shape[0] = B;
    s.q.shape[1] = s.k.shape[1] = s.v.shape[1] = s.out.shape[1] = 0;
    for (size_t i = 0; i < sizeof s.sid / sizeof s.sid[0]; i++)
        s.sid[i] = (float)i;
    ck_assert_msg(call(&s) == ATTN_OK, "%s", attn_last_error());
    ck_assert(memcmp(s.sod, s.sid, sizeof s.sod) == 0);
    ck_assert(memcmp(s.zod, s.zid, sizeof s.zod) == 0);
    attn_backend_close(s.be);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("linear_badinput");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, bad_input, 0, N_ROWS * 3);
    tcase_add_loop_test(tc, valid_and_empty, 0, 3);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
