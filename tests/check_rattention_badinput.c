/* check_rattention_badinput.c - the bad-input table of RATTENTION: every malformed forward or
 * decode call returns its specific status and a message, and writes nothing (out and
 * state_out keep their poison; the cache's ring, state and pos are unchanged), on every
 * backend of the build (validation runs before dispatch, so the statuses are the same on all
 * of them); the capability checks answer the same. The valid calls run (or, on a backend that
 * does not implement the op yet, answer ATTN_ERR_UNSUPPORTED, still writing nothing); an empty
 * batch writes nothing. */
#include "rattention_fixture.h"

#include "check_badinput.h"
#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, S = 5, HQ = 4, HKV = 2, DK = 4, DV = 3, DF = 2 * DK, W = 2, SLOTS = W + 1 };
#define SENTINEL 0xA5
#define BIG ((int64_t)1 << 40)

static const char *const backends[] = {"ref", "cpu", "opencl"};

/* A valid forward (gammas, state in and out) and a valid decode (ring of W + 1 slots, state,
 * pos 3); each table row breaks one thing. */
typedef struct setup {
    attn_backend *be;
    attn_rattention_desc d;
    attn_tensor q, k, v, out, gs, gr, si, so, kr, vr, st;
    attn_rattention_io io;
    attn_rattention_cache cache;
    const attn_tensor *pq, *pk, *pv, *pout;
    const attn_rattention_desc *pd;
    attn_rattention_cache *pcache;
    float qd[B * S * HQ * DK], kd[B * S * HKV * DK], vd[B * S * HKV * DV];
    float outd[B * S * HQ * DV], gsd[HQ * DV], grd[HQ * DV], sid[B * HKV * DF * DV];
    float sod[B * HKV * DF * DV], krd[B * SLOTS * HKV * DK], vrd[B * SLOTS * HKV * DV];
    float std_[B * HKV * DF * DV];
} setup;

static void pattern(float *x, size_t n, unsigned mul, unsigned mod)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i * mul % mod) / (float)mod - 0.5f;
}

/* The outputs hold the sentinel; the cache holds a pattern. */
static void poison(setup *s)
{
    memset(s->outd, SENTINEL, sizeof s->outd);
    memset(s->sod, SENTINEL, sizeof s->sod);
    pattern(s->krd, sizeof s->krd / 4, 3, 7);
    pattern(s->vrd, sizeof s->vrd / 4, 5, 9);
    pattern(s->std_, sizeof s->std_ / 4, 7, 19);
    s->cache.pos = 3;
}

static int make_valid(setup *s, const char *backend)
{
    memset(s, 0, sizeof *s);
    if (!ratt_fx_available(backend) || attn_backend_open(backend, NULL, &s->be) != ATTN_OK)
        return 0;
    pattern(s->qd, sizeof s->qd / 4, 7, 11);
    pattern(s->kd, sizeof s->kd / 4, 5, 13);
    pattern(s->vd, sizeof s->vd / 4, 3, 17);
    pattern(s->gsd, sizeof s->gsd / 4, 1, 5);
    pattern(s->grd, sizeof s->grd / 4, 2, 5);
    pattern(s->sid, sizeof s->sid / 4, 11, 23);
    poison(s);
    s->d = attn_rattention_desc_default();
    s->d.window = W;
    s->q = attn_tensor_bshd(s->qd, ATTN_F32, B, S, HQ, DK);
    s->k = attn_tensor_bshd(s->kd, ATTN_F32, B, S, HKV, DK);
    s->v = attn_tensor_bshd(s->vd, ATTN_F32, B, S, HKV, DV);
    s->out = attn_tensor_bshd(s->outd, ATTN_F32, B, S, HQ, DV);
    s->gs = attn_tensor_bshd(s->gsd, ATTN_F32, 1, 1, HQ, DV);
    s->gr = attn_tensor_bshd(s->grd, ATTN_F32, 1, 1, HQ, DV);
    s->si = attn_tensor_bshd(s->sid, ATTN_F32, B, HKV, DF, DV);
    s->so = attn_tensor_bshd(s->sod, ATTN_F32, B, HKV, DF, DV);
    s->kr = attn_tensor_bshd(s->krd, ATTN_F32, B, SLOTS, HKV, DK);
    s->vr = attn_tensor_bshd(s->vrd, ATTN_F32, B, SLOTS, HKV, DV);
    s->st = attn_tensor_bshd(s->std_, ATTN_F32, B, HKV, DF, DV);
    s->io = (attn_rattention_io){&s->gs, &s->gr, &s->si, &s->so};
    s->cache = (attn_rattention_cache){&s->kr, &s->vr, &s->st, 3};
    s->pq = &s->q;
    s->pk = &s->k;
    s->pv = &s->v;
    s->pout = &s->out;
    s->pd = &s->d;
    s->pcache = &s->cache;
    return 1;
}

static attn_status forward(setup *s, int supported)
{
    return supported ? attn_rattention_supported(s->be, s->pd, s->pq, s->pk, s->pv, s->pout,
                                                 &s->io)
                     : attn_rattention_forward(s->be, s->pd, s->pq, s->pk, s->pv, s->pout,
                                               &s->io);
}

/* Decode: io carries the gammas only (rows may add a state). */
static attn_status decode(setup *s, int supported)
{
    return supported ? attn_rattention_decode_supported(s->be, s->pd, s->pcache, s->pq, s->pk,
                                                        s->pv, s->pout, &s->io)
                     : attn_rattention_decode(s->be, s->pd, s->pcache, s->pq, s->pk, s->pv,
                                              s->pout, &s->io);
}

static void prepare_decode(setup *s)
{
    s->io.state_in = s->io.state_out = NULL;
}

/* Nothing written: outputs still poisoned, the cache as poison() left it. */
static void check_untouched(const setup *s, int64_t pos, const char *name, const char *backend)
{
    setup ref;
    memset(&ref, 0, sizeof ref);
    poison(&ref);
    char what[120];
    snprintf(what, sizeof what, "%s on %s", name, backend);
    attn_bad_untouched(s->outd, sizeof s->outd, SENTINEL, what, "out");
    attn_bad_untouched(s->sod, sizeof s->sod, SENTINEL, what, "state_out");
    ck_assert_msg(memcmp(s->krd, ref.krd, sizeof s->krd) == 0, "%s: k_ring written", what);
    ck_assert_msg(memcmp(s->vrd, ref.vrd, sizeof s->vrd) == 0, "%s: v_ring written", what);
    ck_assert_msg(memcmp(s->std_, ref.std_, sizeof s->std_) == 0, "%s: cache.state written",
                  what);
    ck_assert_msg(s->cache.pos == pos, "%s: cache.pos changed to %lld", what,
                  (long long)s->cache.pos);
}

/* Some byte of an output is not the sentinel any more. */
static int written(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != SENTINEL)
            return 1;
    return 0;
}

/* ---- the forward's rows ---------------------------------------------------------------- */

static void m_null_backend(setup *s) { attn_backend_close(s->be); s->be = NULL; }
static void m_null_desc(setup *s) { s->pd = NULL; }
static void m_null_q(setup *s) { s->pq = NULL; }
static void m_null_k(setup *s) { s->pk = NULL; }
static void m_null_v(setup *s) { s->pv = NULL; }
static void m_null_out(setup *s) { s->pout = NULL; }
static void m_reserved(setup *s) { s->d.reserved[5] = 1; }
static void m_window_m2(setup *s) { s->d.window = -2; }
static void m_feature_relu(setup *s) { s->d.feature = ATTN_LINEAR_RELU; }
static void m_feature_enum(setup *s) { s->d.feature = (attn_linear_feature)99; }
static void m_rope_enum(setup *s) { s->d.rope = (attn_rope_layout)2; }
static void m_rope_neg(setup *s) { s->d.rope = (attn_rope_layout)-1; }
static void m_theta_zero(setup *s) { s->d.rope_theta = 0.0; }
static void m_theta_neg(setup *s) { s->d.rope_theta = -10.0; }
static void m_theta_nan(setup *s) { s->d.rope_theta = NAN; }
static void m_theta_inf(setup *s) { s->d.rope_theta = INFINITY; }
static void m_offset_big(setup *s) { s->d.offset = BIG + 1; }
static void m_offset_neg(setup *s) { s->d.offset = -BIG - 1; }
static void m_scale_nan(setup *s) { s->d.scale = NAN; }
static void m_scale_inf(setup *s) { s->d.scale = -INFINITY; }
static void m_eps_nan(setup *s) { s->d.eps = NAN; }
static void m_eps_inf(setup *s) { s->d.eps = INFINITY; }
static void m_eps_neg(setup *s) { s->d.eps = -1e-6f; }
static void m_odd_dk(setup *s) { s->q.shape[3] = s->k.shape[3] = DK - 1; }
static void m_k_seq(setup *s) { s->k.shape[1] = S - 1; }
static void m_v_heads(setup *s) { s->v.shape[2] = 1; }
static void m_heads(setup *s) { s->q.shape[2] = s->out.shape[2] = 3; }
static void m_out_dv(setup *s) { s->out.shape[3] = DV - 1; }
static void m_u8_q(setup *s) { s->q.dtype = ATTN_U8; }
static void m_neg_stride(setup *s) { s->v.stride[1] = -1; }
static void m_huge_stride(setup *s) { s->k.stride[0] = INT64_MAX / 2; }
static void m_gamma_dv(setup *s) { s->gs.shape[3] = DV + 1; }
static void m_gamma_heads(setup *s) { s->gr.shape[2] = HKV; }
static void m_gamma_batch(setup *s) { s->gs.shape[0] = 2; }
static void m_gamma_seq(setup *s) { s->gr.shape[1] = S; }
static void m_gamma_f16(setup *s) { s->gs.dtype = ATTN_F16; }
static void m_state_df(setup *s) { s->si.shape[2] = DK; }
static void m_state_heads(setup *s) { s->so.shape[1] = HQ; }
static void m_state_batch(setup *s) { s->si.shape[0] = 1; }
static void m_state_dv(setup *s) { s->so.shape[3] = DV + 1; }
static void m_state_bf16(setup *s) { s->si.dtype = ATTN_BF16; }
static void m_state_out_f16(setup *s) { s->so.dtype = ATTN_F16; }
static void m_out_self_overlap(setup *s) { s->out.stride[1] = 0; }
static void m_out_aliases_q(setup *s) { s->out.data = s->qd; }
static void m_out_aliases_gamma(setup *s) { s->out.data = s->gsd; }
static void m_state_out_aliases_in(setup *s) { s->so.data = s->sid; }
static void m_state_out_aliases_out(setup *s) { s->so.data = s->outd; }
static void m_state_out_aliases_v(setup *s) { s->so.data = s->vd; }

typedef ATTN_BAD_ROW(setup) row;

static const row fwd_table[] = {
    {"null backend", m_null_backend, ATTN_ERR_NULL_POINTER},
    {"null desc", m_null_desc, ATTN_ERR_NULL_POINTER},
    {"null q", m_null_q, ATTN_ERR_NULL_POINTER},
    {"null k", m_null_k, ATTN_ERR_NULL_POINTER},
    {"null v", m_null_v, ATTN_ERR_NULL_POINTER},
    {"null out", m_null_out, ATTN_ERR_NULL_POINTER},
    {"reserved", m_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"window -2", m_window_m2, ATTN_ERR_INVALID_ARGUMENT},
    {"feature not paired", m_feature_relu, ATTN_ERR_INVALID_ARGUMENT},
    {"feature enum", m_feature_enum, ATTN_ERR_INVALID_ARGUMENT},
    {"rope enum 2", m_rope_enum, ATTN_ERR_INVALID_ARGUMENT},
    {"rope enum -1", m_rope_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"theta 0", m_theta_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"theta negative", m_theta_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"theta NaN", m_theta_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"theta inf", m_theta_inf, ATTN_ERR_INVALID_ARGUMENT},
    {"offset 2^40 + 1", m_offset_big, ATTN_ERR_INVALID_ARGUMENT},
    {"offset -2^40 - 1", m_offset_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"scale NaN", m_scale_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"scale -inf", m_scale_inf, ATTN_ERR_INVALID_ARGUMENT},
    {"eps NaN", m_eps_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"eps inf", m_eps_inf, ATTN_ERR_INVALID_ARGUMENT},
    {"eps negative", m_eps_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"odd Dk", m_odd_dk, ATTN_ERR_SHAPE},
    {"k seq", m_k_seq, ATTN_ERR_SHAPE},
    {"v heads", m_v_heads, ATTN_ERR_SHAPE},
    {"Hq not a multiple of Hkv", m_heads, ATTN_ERR_HEADS},
    {"out Dv", m_out_dv, ATTN_ERR_SHAPE},
    {"u8 q", m_u8_q, ATTN_ERR_DTYPE},
    {"negative stride", m_neg_stride, ATTN_ERR_STRIDE},
    {"huge stride", m_huge_stride, ATTN_ERR_OVERFLOW},
    {"gamma Dv", m_gamma_dv, ATTN_ERR_SHAPE},
    {"gamma heads", m_gamma_heads, ATTN_ERR_SHAPE},
    {"gamma batch", m_gamma_batch, ATTN_ERR_SHAPE},
    {"gamma seq", m_gamma_seq, ATTN_ERR_SHAPE},
    {"gamma f16", m_gamma_f16, ATTN_ERR_DTYPE},
    {"state Dk features", m_state_df, ATTN_ERR_SHAPE},
    {"state per query head", m_state_heads, ATTN_ERR_SHAPE},
    {"state batch", m_state_batch, ATTN_ERR_SHAPE},
    {"state Dv", m_state_dv, ATTN_ERR_SHAPE},
    {"state_in bf16", m_state_bf16, ATTN_ERR_DTYPE},
    {"state_out f16", m_state_out_f16, ATTN_ERR_DTYPE},
    {"out overlaps itself", m_out_self_overlap, ATTN_ERR_STRIDE},
    {"out aliases q", m_out_aliases_q, ATTN_ERR_ALIAS},
    {"out aliases gamma_swa", m_out_aliases_gamma, ATTN_ERR_ALIAS},
    {"state_out aliases state_in", m_state_out_aliases_in, ATTN_ERR_ALIAS},
    {"state_out aliases out", m_state_out_aliases_out, ATTN_ERR_ALIAS},
    {"state_out aliases v", m_state_out_aliases_v, ATTN_ERR_ALIAS},
};
enum { N_FWD = sizeof fwd_table / sizeof fwd_table[0] };

/* ---- the decode step's rows (on top of prepare_decode) ------------------------------------ */

static void d_null_cache(setup *s) { s->pcache = NULL; }
static void d_null_state(setup *s) { s->cache.state = NULL; }
static void d_null_k_ring(setup *s) { s->cache.k_ring = NULL; }
static void d_null_v_ring(setup *s) { s->cache.v_ring = NULL; }
static void d_state_in(setup *s) { s->io.state_in = &s->si; }
static void d_state_out(setup *s) { s->io.state_out = &s->so; }
static void d_ring_without_window(setup *s) { s->d.window = -1; }
static void d_v_ring_without_window(setup *s) { s->d.window = -1; s->cache.k_ring = NULL; }
static void d_window_huge(setup *s) { s->d.window = BIG; }
static void d_pos_neg(setup *s) { s->cache.pos = -1; }
static void d_pos_big(setup *s) { s->cache.pos = BIG + 1; }
static void d_pos_end(setup *s) { s->cache.pos = BIG - 2; }
static void d_offset_pos(setup *s) { s->d.offset = BIG; }
static void d_ring_slots(setup *s) { s->kr.shape[1] = W; }
static void d_ring_dk(setup *s) { s->kr.shape[3] = DK + 2; }
static void d_ring_dv(setup *s) { s->vr.shape[3] = DK; }
static void d_ring_heads(setup *s) { s->vr.shape[2] = HQ; }
static void d_ring_batch(setup *s) { s->kr.shape[0] = 1; }
static void d_ring_u8(setup *s) { s->kr.dtype = ATTN_U8; }
static void d_state_f16(setup *s) { s->st.dtype = ATTN_F16; }
static void d_state_df(setup *s) { s->st.shape[2] = DK; }
static void d_null_q(setup *s) { s->pq = NULL; }
static void d_bad_theta(setup *s) { s->d.rope_theta = -1.0; }
static void d_rings_alias(setup *s) { s->vr.data = s->krd; }
static void d_ring_aliases_k(setup *s) { s->kr.data = s->kd; }
static void d_state_aliases_out(setup *s) { s->st.data = s->outd; }
static void d_out_aliases_ring(setup *s) { s->out.data = s->vrd; }
static void d_ring_self_overlap(setup *s) { s->kr.stride[1] = 0; }

static const row dec_table[] = {
    {"decode: null backend", m_null_backend, ATTN_ERR_NULL_POINTER},
    {"decode: null desc", m_null_desc, ATTN_ERR_NULL_POINTER},
    {"decode: null q", d_null_q, ATTN_ERR_NULL_POINTER},
    {"decode: null cache", d_null_cache, ATTN_ERR_NULL_POINTER},
    {"decode: null cache.state", d_null_state, ATTN_ERR_NULL_POINTER},
    {"decode: null k_ring with w >= 0", d_null_k_ring, ATTN_ERR_NULL_POINTER},
    {"decode: null v_ring with w >= 0", d_null_v_ring, ATTN_ERR_NULL_POINTER},
    {"decode: io.state_in", d_state_in, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: io.state_out", d_state_out, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: rings with w = -1", d_ring_without_window, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: v_ring with w = -1", d_v_ring_without_window, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: window 2^40", d_window_huge, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: reserved", m_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: theta negative", d_bad_theta, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: pos -1", d_pos_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: pos 2^40 + 1", d_pos_big, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: pos + T beyond 2^40", d_pos_end, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: offset + pos beyond 2^40", d_offset_pos, ATTN_ERR_INVALID_ARGUMENT},
    {"decode: ring slots", d_ring_slots, ATTN_ERR_SHAPE},
    {"decode: k_ring Dk", d_ring_dk, ATTN_ERR_SHAPE},
    {"decode: v_ring Dv", d_ring_dv, ATTN_ERR_SHAPE},
    {"decode: v_ring heads", d_ring_heads, ATTN_ERR_SHAPE},
    {"decode: k_ring batch", d_ring_batch, ATTN_ERR_SHAPE},
    {"decode: k_ring u8", d_ring_u8, ATTN_ERR_DTYPE},
    {"decode: state f16", d_state_f16, ATTN_ERR_DTYPE},
    {"decode: state Dk features", d_state_df, ATTN_ERR_SHAPE},
    {"decode: odd Dk", m_odd_dk, ATTN_ERR_SHAPE},
    {"decode: gamma heads", m_gamma_heads, ATTN_ERR_SHAPE},
    {"decode: k_ring aliases v_ring", d_rings_alias, ATTN_ERR_ALIAS},
    {"decode: k_ring aliases k", d_ring_aliases_k, ATTN_ERR_ALIAS},
    {"decode: state aliases out", d_state_aliases_out, ATTN_ERR_ALIAS},
    {"decode: out aliases v_ring", d_out_aliases_ring, ATTN_ERR_ALIAS},
    {"decode: k_ring overlaps itself", d_ring_self_overlap, ATTN_ERR_STRIDE},
};
enum { N_DEC = sizeof dec_table / sizeof dec_table[0] };

/* One row on one backend: the call and its capability check. */
static void run_row(const row *r, int is_decode, const char *backend)
{
    setup s;
    if (!make_valid(&s, backend))
        return;
    if (is_decode)
        prepare_decode(&s);
    r->mutate(&s);
    const int64_t pos = s.cache.pos;
    attn_status (*call)(setup *, int) = is_decode ? decode : forward;
    attn_bad_expect(call(&s, 0), r->want, r->name, backend);
    check_untouched(&s, pos, r->name, backend);
    attn_bad_expect(call(&s, 1), r->want, r->name, backend);
    attn_backend_close(s.be);
}

/* _i = row * 3 + backend */
START_TEST(bad_forward)
{
    run_row(&fwd_table[_i / 3], 0, backends[_i % 3]);
}
END_TEST

START_TEST(bad_decode)
{
    run_row(&dec_table[_i / 3], 1, backends[_i % 3]);
}
END_TEST

/* A valid call either runs (writing out, state_out; the cache and pos for decode) or, where
 * the backend does not implement the op yet, answers ATTN_ERR_UNSUPPORTED writing nothing. */
static void expect_valid(setup *s, attn_status st, const char *what, const char *backend)
{
    if (st == ATTN_ERR_UNSUPPORTED) {
        fprintf(stderr, "note: %s on %s: %s\n", what, backend, attn_last_error());
        check_untouched(s, 3, what, backend);
        return;
    }
    ck_assert_msg(st == ATTN_OK, "%s on %s: %s", what, backend, attn_last_error());
}

START_TEST(valid_and_empty)
{
    const char *backend = backends[_i];
    setup s;
    if (!make_valid(&s, backend))
        return;
    attn_status st = forward(&s, 0);
    expect_valid(&s, st, "valid forward", backend);
    if (st == ATTN_OK) {
        ck_assert(written(s.outd, sizeof s.outd) && written(s.sod, sizeof s.sod));
        ck_assert_int_eq(s.cache.pos, 3);
    }
    poison(&s);
    prepare_decode(&s);
    st = decode(&s, 0);
    expect_valid(&s, st, "valid decode", backend);
    if (st == ATTN_OK) {
        ck_assert(written(s.outd, sizeof s.outd));
        ck_assert_int_eq(s.cache.pos, 3 + S);
    }
    /* batch 0: nothing to compute, nothing written, pos still advances by T */
    attn_backend_close(s.be);
    ck_assert(make_valid(&s, backend));
    s.q.shape[0] = s.k.shape[0] = s.v.shape[0] = s.out.shape[0] = 0;
    s.si.shape[0] = s.so.shape[0] = s.kr.shape[0] = s.vr.shape[0] = s.st.shape[0] = 0;
    ck_assert_msg(forward(&s, 0) == ATTN_OK, "%s", attn_last_error());
    prepare_decode(&s);
    ck_assert_msg(decode(&s, 0) == ATTN_OK, "%s", attn_last_error());
    ck_assert_int_eq(s.cache.pos, 3 + S);
    s.cache.pos = 3;
    check_untouched(&s, 3, "batch 0", backend);
    attn_backend_close(s.be);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rattention_badinput");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, bad_forward, 0, N_FWD * 3);
    tcase_add_loop_test(tc, bad_decode, 0, N_DEC * 3);
    tcase_add_loop_test(tc, valid_and_empty, 0, 3);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
