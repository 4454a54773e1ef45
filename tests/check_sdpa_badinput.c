/* check_sdpa_badinput.c - the bad-input table: every malformed SDPA call returns its specific status
 * and a message, and leaves out/lse/key_score untouched, on every backend; zero-size problems
 * (batch or Sq 0) are empty and succeed, except that key_score is still written (zeros). */
#include "attn/attn.h"

#include "check_badinput.h"
#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, SQ = 5, SKV = 7, HQ = 4, HKV = 2, DK = 8, DV = 6 };
#define SENTINEL 0xA5

/* A valid call; each table row breaks one thing. The key_score rows go through
 * attn_sdpa_forward_ex (pks set, or the outputs struct itself broken); the others through
 * attn_sdpa_forward. */
typedef struct setup {
    attn_backend *be;
    attn_sdpa_desc d;
    attn_tensor q, k, v, out, lse, madd, mbool, ks;
    const attn_tensor *pq, *pk, *pv, *pout, *plse, *pks;
    int ex;                  /* call attn_sdpa_forward_ex */
    int null_outs;           /* ... with a NULL outputs struct */
    uint64_t outs_reserved;  /* ... with this in outputs.reserved[0] */
    float qd[B * SQ * HQ * DK], kd[B * SKV * HKV * DK], vd[B * SKV * HKV * DV];
    float outd[B * SQ * HQ * DV + 64], lsed[B * HQ * SQ], ksd[B * SKV * HKV];
    float maddd[SQ * SKV];
    uint8_t mboold[SQ * SKV];
    attn_buffer *buf, *foreign;
    attn_backend *other;
} setup;

static void make_valid(setup *s, const char *backend)
{
    memset(s, 0, sizeof *s);
    ck_assert_int_eq(attn_backend_open(backend, NULL, &s->be), ATTN_OK);
    for (size_t i = 0; i < sizeof s->qd / sizeof s->qd[0]; i++)
        s->qd[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    for (size_t i = 0; i < sizeof s->kd / sizeof s->kd[0]; i++)
        s->kd[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
    for (size_t i = 0; i < sizeof s->vd / sizeof s->vd[0]; i++)
        s->vd[i] = (float)((i * 3) % 17) / 17.0f - 0.5f;
    for (size_t i = 0; i < SQ * SKV; i++) {
        s->maddd[i] = -(float)(i % 3);
        s->mboold[i] = (i % 4) != 0;
    }
    memset(s->outd, SENTINEL, sizeof s->outd);
    memset(s->lsed, SENTINEL, sizeof s->lsed);
    memset(s->ksd, SENTINEL, sizeof s->ksd);
    s->d = attn_sdpa_desc_default();
    s->q = attn_tensor_bshd(s->qd, ATTN_F32, B, SQ, HQ, DK);
    s->k = attn_tensor_bshd(s->kd, ATTN_F32, B, SKV, HKV, DK);
    s->v = attn_tensor_bshd(s->vd, ATTN_F32, B, SKV, HKV, DV);
    s->out = attn_tensor_bshd(s->outd, ATTN_F32, B, SQ, HQ, DV);
    s->lse = attn_tensor_bhsd(s->lsed, ATTN_F32, B, SQ, HQ, 1);
    s->ks = attn_tensor_bshd(s->ksd, ATTN_F32, B, SKV, HKV, 1);
    s->madd = attn_tensor_bshd(s->maddd, ATTN_F32, 1, SQ, 1, SKV);
    s->mbool = attn_tensor_bshd(s->mboold, ATTN_U8, 1, SQ, 1, SKV);
    s->pq = &s->q;
    s->pk = &s->k;
    s->pv = &s->v;
    s->pout = &s->out;
    s->plse = &s->lse;
}

static void teardown_setup(setup *s)
{
    attn_buffer_free(s->buf);
    attn_buffer_free(s->foreign);
    attn_backend_close(s->other);
    attn_backend_close(s->be);
}

static attn_sdpa_outputs outputs_of(const setup *s)
{
    return (attn_sdpa_outputs){
        .out = s->pout, .lse = s->plse, .key_score = s->pks, .reserved = {s->outs_reserved}};
}

static attn_status call(setup *s)
{
    const attn_sdpa_outputs o = outputs_of(s);
    if (s->ex)
        return attn_sdpa_forward_ex(s->be, &s->d, s->pq, s->pk, s->pv, s->null_outs ? NULL : &o);
    return attn_sdpa_forward(s->be, &s->d, s->pq, s->pk, s->pv, s->pout, s->plse);
}

/* supported() of the same call. */
static attn_status supported(setup *s)
{
    const attn_sdpa_outputs o = outputs_of(s);
    if (s->ex)
        return attn_sdpa_supported_ex(s->be, &s->d, s->pq, s->pk, s->pv,
                                      s->null_outs ? NULL : &o);
    return attn_sdpa_supported(s->be, &s->d, s->pq, s->pk, s->pv, s->pout, s->plse);
}

/* Ask for key_score (attn_sdpa_forward_ex). */
static void with_key_score(setup *s)
{
    s->ex = 1;
    s->pks = &s->ks;
}

/* ---- the table: one mutation per row ---- */
static void m_null_backend(setup *s) { attn_backend_close(s->be); s->be = NULL; }
static void m_null_q(setup *s) { s->pq = NULL; }
static void m_null_out(setup *s) { s->pout = NULL; }
static void m_no_data(setup *s) { s->k.data = NULL; }
static void m_data_and_buffer(setup *s)
{
    ck_assert_int_eq(attn_buffer_alloc(s->be, 4096, &s->buf), ATTN_OK);
    s->v.buffer = s->buf;
}
static void m_u8_q(setup *s) { s->q.dtype = ATTN_U8; }
static void m_bad_enum_out(setup *s) { s->out.dtype = (attn_dtype)77; }
static void m_f16_lse(setup *s) { s->lse.dtype = ATTN_F16; }
static void m_zero_seq(setup *s) { s->q.shape[1] = 0; }
static void m_zero_skv(setup *s) { s->k.shape[1] = s->v.shape[1] = 0; }
static void m_zero_dk(setup *s) { s->q.shape[3] = s->k.shape[3] = 0; }
static void m_zero_heads(setup *s) { s->q.shape[2] = s->out.shape[2] = s->lse.shape[2] = 0; }
static void m_negative_dim(setup *s) { s->k.shape[3] = -4; }
static void m_dk_mismatch(setup *s) { s->k.shape[3] = DK - 2; }
static void m_v_seq_mismatch(setup *s) { s->v.shape[1] = SKV - 1; }
static void m_out_dv_mismatch(setup *s) { s->out.shape[3] = DV + 1; }
static void m_batch_mismatch(setup *s) { s->v.shape[0] = 1; }
static void m_heads(setup *s) { s->q.shape[2] = 3; s->out.shape[2] = 3; s->lse.shape[2] = 3; }
static void m_neg_stride(setup *s) { s->q.stride[1] = -1; }
static void m_out_overlap(setup *s) { s->out.stride[1] = 0; }
static void m_lse_overlap(setup *s) { s->lse.stride[2] = 1; }
static void m_huge_shape(setup *s)
{
    s->k.shape[1] = s->v.shape[1] = (int64_t)1 << 40;
    s->k.shape[2] = s->v.shape[2] = (int64_t)1 << 30;
}
static void m_huge_stride(setup *s) { s->v.stride[0] = INT64_MAX / 2; }
static void m_window_neg(setup *s) { s->d.window_left = -2; }
static void m_window_right_causal(setup *s) { s->d.causal = 1; s->d.window_right = 3; }
static void m_scale_nan(setup *s) { s->d.scale = NAN; }
static void m_scale_inf(setup *s) { s->d.scale = INFINITY; }
static void m_softcap_neg(setup *s) { s->d.softcap = -1.0f; }
static void m_causal_2(setup *s) { s->d.causal = 2; }
static void m_align_bad(setup *s) { s->d.align = (attn_align)7; }
static void m_mask_skv(setup *s) { s->madd.shape[3] = SKV + 1; s->d.mask_add = &s->madd; }
static void m_mask_batch(setup *s) { s->madd.shape[0] = 3; s->d.mask_add = &s->madd; }
static void m_mask_bool_f32(setup *s) { s->mbool.dtype = ATTN_F32; s->d.mask_bool = &s->mbool; }
static void m_mask_add_u8(setup *s) { s->d.mask_add = &s->mbool; }
static void m_out_aliases_q(setup *s) { s->out.data = s->qd; }
static void m_lse_aliases_out(setup *s) { s->lse.data = s->outd; }
static void m_out_aliases_mask(setup *s)
{
    s->d.mask_add = &s->madd;
    s->madd.data = s->outd + 8;
}
static void m_lse_shape(setup *s) { s->lse.shape[3] = 2; }
static void m_buffer_small(setup *s)
{
    ck_assert_int_eq(attn_buffer_alloc(s->be, 64, &s->buf), ATTN_OK);
    s->k.data = NULL;
    s->k.buffer = s->buf;
}
static void m_buffer_foreign(setup *s)
{
    ck_assert_int_eq(attn_backend_open("ref", NULL, &s->other), ATTN_OK);
    ck_assert_int_eq(attn_buffer_alloc(s->other, sizeof s->kd, &s->foreign), ATTN_OK);
    s->k.data = NULL;
    s->k.buffer = s->foreign;
    if (strcmp(attn_backend_name(s->be), "ref") == 0) { /* another handle: foreign too */
        attn_backend *tmp = s->be;
        ck_assert_int_eq(attn_backend_open("ref", NULL, &s->be), ATTN_OK);
        attn_backend_close(tmp);
    }
}
static void m_misaligned(setup *s) { s->q.data = (char *)s->qd + 2; }
/* data + offset + extent fits size_t but wraps the address space (accepted before). */
static void m_offset_wraps(setup *s) { s->q.offset = SIZE_MAX - 4095; }
static void m_offset_misaligned(setup *s) { s->v.offset = 3; }
static void m_ks_f16(setup *s) { with_key_score(s); s->ks.dtype = ATTN_F16; }
static void m_ks_batch(setup *s) { with_key_score(s); s->ks.shape[0] = 1; }
static void m_ks_skv(setup *s) { with_key_score(s); s->ks.shape[1] = SKV - 1; }
static void m_ks_heads(setup *s) { with_key_score(s); s->ks.shape[2] = 1; }
static void m_ks_last(setup *s) { with_key_score(s); s->ks.shape[3] = 2; }
static void m_ks_overlap(setup *s) { with_key_score(s); s->ks.stride[1] = 0; }
static void m_ks_aliases_out(setup *s) { with_key_score(s); s->ks.data = s->outd; }
static void m_ks_aliases_k(setup *s) { with_key_score(s); s->ks.data = s->kd; }
static void m_ks_no_data(setup *s) { with_key_score(s); s->ks.data = NULL; }
static void m_outs_reserved(setup *s) { with_key_score(s); s->outs_reserved = 1; }
static void m_outs_null(setup *s) { s->ex = 1; s->null_outs = 1; }

typedef ATTN_BAD_ROW(setup) bad_case;

static const bad_case table[] = {
    {"backend NULL", m_null_backend, ATTN_ERR_NULL_POINTER},
    {"q NULL", m_null_q, ATTN_ERR_NULL_POINTER},
    {"out NULL", m_null_out, ATTN_ERR_NULL_POINTER},
    {"k without data or buffer", m_no_data, ATTN_ERR_NULL_POINTER},
    {"v with data and buffer", m_data_and_buffer, ATTN_ERR_INVALID_ARGUMENT},
    {"q dtype u8", m_u8_q, ATTN_ERR_DTYPE},
    {"out dtype not an enum", m_bad_enum_out, ATTN_ERR_DTYPE},
    {"lse dtype f16", m_f16_lse, ATTN_ERR_DTYPE},
    {"Sq = 0 in q but not in out", m_zero_seq, ATTN_ERR_SHAPE},
    {"Skv = 0 (no keys)", m_zero_skv, ATTN_ERR_SHAPE},
    {"Dk = 0", m_zero_dk, ATTN_ERR_SHAPE},
    {"Hq = 0", m_zero_heads, ATTN_ERR_SHAPE},
    {"negative Dk", m_negative_dim, ATTN_ERR_SHAPE},
    {"Dk of k != Dk of q", m_dk_mismatch, ATTN_ERR_SHAPE},
    {"Skv of v != Skv of k", m_v_seq_mismatch, ATTN_ERR_SHAPE},
    {"out Dv != v Dv", m_out_dv_mismatch, ATTN_ERR_SHAPE},
    {"batch mismatch", m_batch_mismatch, ATTN_ERR_SHAPE},
    {"Hq not a multiple of Hkv", m_heads, ATTN_ERR_HEADS},
    {"negative stride", m_neg_stride, ATTN_ERR_STRIDE},
    {"out rows overlap (stride 0)", m_out_overlap, ATTN_ERR_STRIDE},
    {"lse elements overlap", m_lse_overlap, ATTN_ERR_STRIDE},
    {"shape product overflows", m_huge_shape, ATTN_ERR_OVERFLOW},
    {"stride overflows", m_huge_stride, ATTN_ERR_OVERFLOW},
    {"window_left = -2", m_window_neg, ATTN_ERR_WINDOW},
    {"causal with window_right 3", m_window_right_causal, ATTN_ERR_WINDOW},
    {"scale NaN", m_scale_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"scale Inf", m_scale_inf, ATTN_ERR_INVALID_ARGUMENT},
    {"softcap negative", m_softcap_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"causal = 2", m_causal_2, ATTN_ERR_INVALID_ARGUMENT},
    {"align not an enum", m_align_bad, ATTN_ERR_INVALID_ARGUMENT},
    {"mask Skv mismatch", m_mask_skv, ATTN_ERR_SHAPE},
    {"mask batch neither 1 nor B", m_mask_batch, ATTN_ERR_SHAPE},
    {"bool mask dtype f32", m_mask_bool_f32, ATTN_ERR_DTYPE},
    {"additive mask dtype u8", m_mask_add_u8, ATTN_ERR_DTYPE},
    {"out aliases q", m_out_aliases_q, ATTN_ERR_ALIAS},
    {"lse aliases out", m_lse_aliases_out, ATTN_ERR_ALIAS},
    {"out overlaps the mask", m_out_aliases_mask, ATTN_ERR_ALIAS},
    {"lse last dim 2", m_lse_shape, ATTN_ERR_SHAPE},
    {"buffer smaller than view", m_buffer_small, ATTN_ERR_BUFFER},
    {"buffer of another backend", m_buffer_foreign, ATTN_ERR_BUFFER},
    {"misaligned data pointer", m_misaligned, ATTN_ERR_INVALID_ARGUMENT},
    {"misaligned byte offset", m_offset_misaligned, ATTN_ERR_INVALID_ARGUMENT},
    {"host view wraps the address space", m_offset_wraps, ATTN_ERR_OVERFLOW},
    {"key_score dtype f16", m_ks_f16, ATTN_ERR_DTYPE},
    {"key_score batch 1 != B", m_ks_batch, ATTN_ERR_SHAPE},
    {"key_score Skv != Skv of k", m_ks_skv, ATTN_ERR_SHAPE},
    {"key_score heads != Hkv", m_ks_heads, ATTN_ERR_SHAPE},
    {"key_score last dim 2", m_ks_last, ATTN_ERR_SHAPE},
    {"key_score elements overlap", m_ks_overlap, ATTN_ERR_STRIDE},
    {"key_score aliases out", m_ks_aliases_out, ATTN_ERR_ALIAS},
    {"key_score aliases k", m_ks_aliases_k, ATTN_ERR_ALIAS},
    {"key_score without data or buffer", m_ks_no_data, ATTN_ERR_NULL_POINTER},
    {"outputs.reserved nonzero", m_outs_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"outputs struct NULL", m_outs_null, ATTN_ERR_NULL_POINTER},
};
enum { N_CASES = sizeof table / sizeof table[0] };

/* Every backend of this build (attn_backend_list), ref, cpu, opencl. */
enum { N_BACKENDS = 3 };
static const char *const backends[N_BACKENDS] = {"ref", "cpu", "opencl"};

static void run_row(int i, const char *backend)
{
    setup *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    make_valid(s, backend);
    table[i].mutate(s);
    attn_bad_expect(call(s), table[i].want, table[i].name, backend);
    attn_bad_untouched(s->outd, sizeof s->outd, SENTINEL, table[i].name, "out");
    attn_bad_untouched(s->lsed, sizeof s->lsed, SENTINEL, table[i].name, "lse");
    attn_bad_untouched(s->ksd, sizeof s->ksd, SENTINEL, table[i].name, "key_score");
    /* supported() runs the same checks and must agree. */
    if (s->be)
        ck_assert_int_eq(supported(s), table[i].want);
    teardown_setup(s);
    free(s);
}

START_TEST(bad_input_row)
{
    if (attn_bad_available(backends[_i / N_CASES]))
        run_row(_i % N_CASES, backends[_i / N_CASES]);
}
END_TEST

/* The unmutated setup runs and writes every output element: the table tests real rejections. */
START_TEST(valid_call_runs)
{
    if (!attn_bad_available(backends[_i]))
        return;
    setup *s = malloc(sizeof *s);
    make_valid(s, backends[_i]);
    s->d.mask_add = &s->madd;
    s->d.mask_bool = &s->mbool;
    ck_assert_int_eq(call(s), ATTN_OK);
    ck_assert_str_eq(attn_last_error(), "");
    for (int e = 0; e < B * SQ * HQ * DV; e++)
        ck_assert(isfinite(s->outd[e]));
    teardown_setup(s);
    free(s);
}
END_TEST

/* A zero batch or a zero Sq is an empty problem (PyTorch returns empty tensors): ATTN_OK,
 * nothing read or written, the implementation named "<backend>:empty". Strides of the empty
 * dims do not matter. */
START_TEST(zero_size_is_empty)
{
    if (!attn_bad_available(backends[_i]))
        return;
    for (int dim = 0; dim < 2; dim++) {
        setup *s = malloc(sizeof *s);
        make_valid(s, backends[_i]);
        attn_tensor *ts[] = {&s->q, &s->out, &s->lse, &s->madd, &s->mbool};
        for (int t = 0; t < 5; t++)
            if (dim == 1 || t < 3)
                ts[t]->shape[dim] = 0;
        if (dim == 0)
            s->k.shape[0] = s->v.shape[0] = 0;
        s->d.mask_add = &s->madd;
        s->d.mask_bool = &s->mbool;
        ck_assert_msg(call(s) == ATTN_OK, "%s dim %d: %s", backends[_i], dim, attn_last_error());
        char name[64];
        ck_assert_int_eq(attn_sdpa_impl_name(s->be, &s->d, s->pq, s->pk, s->pv, s->pout, s->plse,
                                             name, sizeof name),
                         ATTN_OK);
        ck_assert_str_eq(strchr(name, ':'), ":empty");
        for (size_t b = 0; b < sizeof s->outd; b++)
            ck_assert(((unsigned char *)s->outd)[b] == SENTINEL);
        teardown_setup(s);
        free(s);
    }
}
END_TEST

/* key_score on the valid call: every element written, and each (batch, KV head) sums to the
 * rows of its group (every row sees a key; each row's probabilities sum to 1). With Sq = 0 the
 * call is not empty: key_score is all zeros. A backend that does not compute key_score yet
 * answers ATTN_ERR_UNSUPPORTED and writes nothing. */
START_TEST(key_score_valid_and_no_query)
{
    if (!attn_bad_available(backends[_i]))
        return;
    for (int sq0 = 0; sq0 < 2; sq0++) {
        setup *s = malloc(sizeof *s);
        ck_assert_ptr_nonnull(s);
        make_valid(s, backends[_i]);
        with_key_score(s);
        if (sq0)
            s->q.shape[1] = s->out.shape[1] = s->lse.shape[1] = 0;
        const attn_status st = call(s);
        attn_bad_valid(st, backends[_i]);
        if (st == ATTN_OK) {
            attn_bad_written(s->ksd, B * SKV * HKV, SENTINEL, backends[_i], "key_score");
            for (int b = 0; b < B; b++)
                for (int g = 0; g < HKV; g++) {
                    double sum = 0;
                    for (int j = 0; j < SKV; j++)
                        sum += s->ksd[(b * SKV + j) * HKV + g];
                    ck_assert_msg(fabs(sum - (sq0 ? 0 : SQ * HQ / HKV)) <= 1e-5 * SQ * HQ,
                                  "%s sq0=%d: key_score[%d, :, %d] sums to %g", backends[_i],
                                  sq0, b, g, sum);
                }
        } else {
            attn_bad_untouched(s->ksd, sizeof s->ksd, SENTINEL, backends[_i], "key_score");
            attn_bad_untouched(s->outd, sizeof s->outd, SENTINEL, backends[_i], "out");
        }
        teardown_setup(s);
        free(s);
    }
}
END_TEST

/* Mask messages name the mask's own axes; a mask may broadcast along keys ([.., .., .., 1]). */
START_TEST(mask_axes_and_key_broadcast)
{
    setup *s = malloc(sizeof *s);
    make_valid(s, "ref");
    s->d.mask_add = &s->madd;
    s->madd.shape[3] = SKV + 1;
    ck_assert_int_eq(call(s), ATTN_ERR_SHAPE);
    ck_assert_msg(strstr(attn_last_error(), "mask_add: shape[3] (key)"), "%s", attn_last_error());
    s->madd.shape[3] = 1; /* one column for every key */
    ck_assert_int_eq(call(s), ATTN_OK);
    s->madd.shape[1] = 2;
    ck_assert_int_eq(call(s), ATTN_ERR_SHAPE);
    ck_assert_msg(strstr(attn_last_error(), "shape[1] (query)"), "%s", attn_last_error());
    teardown_setup(s);
    free(s);
}
END_TEST

/* Windows that hide no key, up to INT64_MAX, give exactly the unlimited result on every backend
 * (a position plus such a window overflowed before); one key less than that hides a key. */
START_TEST(huge_windows_are_unlimited)
{
    if (!attn_bad_available(backends[_i]))
        return;
    setup *s = malloc(sizeof *s), *w = malloc(sizeof *w);
    ck_assert(s && w);
    make_valid(s, backends[_i]);
    make_valid(w, backends[_i]);
    w->d.window_left = INT64_MAX;
    w->d.window_right = INT64_MAX - 1;
    ck_assert_int_eq(call(s), ATTN_OK);
    ck_assert_msg(call(w) == ATTN_OK, "%s", attn_last_error());
    ck_assert(memcmp(s->outd, w->outd, sizeof s->outd) == 0);
    ck_assert(memcmp(s->lsed, w->lsed, sizeof s->lsed) == 0);
    w->d.window_left = SKV - 2; /* the last query (position SKV - 1) no longer sees key 0 */
    w->d.window_right = -1;
    ck_assert_int_eq(call(w), ATTN_OK);
    ck_assert(memcmp(s->outd, w->outd, sizeof s->outd) != 0);
    teardown_setup(s);
    teardown_setup(w);
    free(s);
    free(w);
}
END_TEST

/* Broadcast (stride 0) inputs may describe more elements than any memory holds: every backend
 * reports it (ATTN_ERR_OUT_OF_MEMORY, or ATTN_ERR_UNSUPPORTED where the head dim exceeds its
 * kernels) instead of sizing scratch with a count that wrapped around (the reference allocated
 * and wrote past such a size, the cpu backend computed one). */
START_TEST(broadcast_beyond_memory)
{
    attn_backend *be;
    if (!attn_bad_available(backends[_i]))
        return;
    ck_assert_int_eq(attn_backend_open(backends[_i], NULL, &be), ATTN_OK);
    float one = 1.0f, out[1] = {0};
    const int64_t D = (int64_t)1 << 60; /* 4 keys x D doubles overflow size_t; strides all 0 */
    attn_tensor q = {.data = &one, .dtype = ATTN_F32, .shape = {1, 1, 1, D}};
    attn_tensor k = {.data = &one, .dtype = ATTN_F32, .shape = {1, 4, 1, D}};
    attn_tensor v = {.data = &one, .dtype = ATTN_F32, .shape = {1, 4, 1, 1}};
    attn_tensor o = attn_tensor_bshd(out, ATTN_F32, 1, 1, 1, 1);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    const attn_status st = attn_sdpa_forward(be, &d, &q, &k, &v, &o, NULL);
    ck_assert_msg(st == ATTN_ERR_OUT_OF_MEMORY || st == ATTN_ERR_UNSUPPORTED, "%s: %s: %s",
                  backends[_i], attn_status_name(st), attn_last_error());
    ck_assert(out[0] == 0.0f);
    attn_backend_close(be);
}
END_TEST

START_TEST(backend_errors)
{
    attn_backend *be = (attn_backend *)0x1;
    ck_assert_int_eq(attn_backend_open("nosuch", NULL, &be), ATTN_ERR_BACKEND);
    ck_assert_ptr_eq(be, (attn_backend *)0x1);
    ck_assert_ptr_nonnull(strstr(attn_last_error(), "nosuch"));
    ck_assert_int_eq(attn_backend_open(NULL, NULL, &be), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_backend_open("ref", "threads=2", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    attn_buffer *buf = NULL;
    char host[32] = {0};
    ck_assert_int_eq(attn_buffer_alloc(be, 0, &buf), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_buffer_alloc(be, 16, &buf), ATTN_OK);
    ck_assert_int_eq(attn_buffer_write(buf, 8, host, 16), ATTN_ERR_BUFFER);
    ck_assert_int_eq(attn_buffer_write(buf, SIZE_MAX, host, 2), ATTN_ERR_BUFFER);
    ck_assert_int_eq(attn_buffer_read(buf, 0, NULL, 4), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_buffer_write(buf, 0, "0123456789abcdef", 16), ATTN_OK);
    ck_assert_int_eq(attn_buffer_read(buf, 4, host, 4), ATTN_OK);
    ck_assert_int_eq(memcmp(host, "4567", 4), 0);
    attn_buffer_free(buf);
    attn_backend_close(be);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = tcase_create("table");
    tcase_add_loop_test(tc, bad_input_row, 0, N_CASES * N_BACKENDS);
    tcase_add_loop_test(tc, valid_call_runs, 0, N_BACKENDS);
    tcase_add_loop_test(tc, zero_size_is_empty, 0, N_BACKENDS);
    tcase_add_loop_test(tc, key_score_valid_and_no_query, 0, N_BACKENDS);
    tcase_add_test(tc, mask_axes_and_key_broadcast);
    tcase_add_loop_test(tc, huge_windows_are_unlimited, 0, N_BACKENDS);
    tcase_add_loop_test(tc, broadcast_beyond_memory, 0, N_BACKENDS);
    tcase_add_test(tc, backend_errors);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
