/* check_kvcache_attention_badinput.c - the bad-input table of the attention over cache slots
 * (attn_kvcache_attention): every malformed call returns its specific status and a message
 * and leaves out and key_score untouched, on every backend, and supported() agrees; a zero
 * batch, or no query without key_score, is an empty problem; the positions must be host
 * memory; rot_dim is ignored while keys are attended as stored. */
#include "attn/attn.h"

#include "check_badinput.h"
#include "check_run.h"
#include "kvcache_fixture.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, SQ = 3, HQ = 4, HKV = 2, D = 8, NS = 6 };
#define SENTINEL 0xA5

typedef struct setup {
    attn_backend *be, *other;
    attn_kvcache_attn_desc d;
    attn_tensor q, qp, k, v, sp, out, ks;
    const attn_tensor *pd_q, *pd_qp, *pd_k, *pd_v, *pd_sp, *pd_out, *pd_ks;
    const attn_kvcache_attn_desc *pdesc;
    float qd[B * SQ * HQ * D], kd[B * NS * HKV * D], vd[B * NS * HKV * D];
    float outd[B * SQ * HQ * D + 16], ksd[B * NS * HKV + 16];
    int64_t qpd[B * SQ], spd[B * NS * HKV];
    attn_buffer *buf, *foreign;
} setup;

/* The valid call: every slot live at positions 0 .. NS-1 but one empty slot per KV head;
 * queries at 3, 4, 5. */
static void make_valid(setup *s, const char *backend)
{
    memset(s, 0, sizeof *s);
    ck_assert_int_eq(attn_backend_open(backend, NULL, &s->be), ATTN_OK);
    for (int i = 0; i < B * SQ * HQ * D; i++)
        s->qd[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < B * NS * HKV * D; i++) {
        s->kd[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
        s->vd[i] = (float)((i * 3) % 7) / 7.0f - 0.5f;
    }
    for (int i = 0; i < B * SQ; i++)
        s->qpd[i] = 3 + i % SQ;
    for (int i = 0; i < B * NS * HKV; i++)
        s->spd[i] = i / HKV % NS == 1 + i % HKV ? -1 : i / HKV % NS;
    memset(s->outd, SENTINEL, sizeof s->outd);
    memset(s->ksd, SENTINEL, sizeof s->ksd);
    s->d = attn_kvcache_attn_desc_default();
    s->q = attn_tensor_bshd(s->qd, ATTN_F32, B, SQ, HQ, D);
    s->qp = attn_tensor_bshd(s->qpd, ATTN_I64, B, SQ, 1, 1);
    s->k = attn_tensor_bshd(s->kd, ATTN_F32, B, NS, HKV, D);
    s->v = attn_tensor_bshd(s->vd, ATTN_F32, B, NS, HKV, D);
    s->sp = attn_tensor_bshd(s->spd, ATTN_I64, B, NS, HKV, 1);
    s->out = attn_tensor_bshd(s->outd, ATTN_F32, B, SQ, HQ, D);
    s->ks = attn_tensor_bshd(s->ksd, ATTN_F32, B, NS, HKV, 1);
    s->pdesc = &s->d;
    s->pd_q = &s->q;
    s->pd_qp = &s->qp;
    s->pd_k = &s->k;
    s->pd_v = &s->v;
    s->pd_sp = &s->sp;
    s->pd_out = &s->out;
    s->pd_ks = &s->ks;
}

/* A valid setup on the backend, or NULL (skipped, with the reason) when it is missing. */
static setup *new_setup(const char *backend)
{
    attn_backend *probe = kv_fx_open(backend);
    if (!probe)
        return NULL;
    attn_backend_close(probe);
    setup *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    make_valid(s, backend);
    return s;
}

static void free_setup(setup *s)
{
    attn_buffer_free(s->buf);
    attn_buffer_free(s->foreign);
    attn_backend_close(s->other);
    attn_backend_close(s->be);
    free(s);
}

static attn_status call(setup *s)
{
    return attn_kvcache_attention(s->be, s->pdesc, s->pd_q, s->pd_qp, s->pd_k, s->pd_v,
                                  s->pd_sp, s->pd_out, s->pd_ks);
}

static attn_status supported(setup *s)
{
    return attn_kvcache_attention_supported(s->be, s->pdesc, s->pd_q, s->pd_qp, s->pd_k,
                                            s->pd_v, s->pd_sp, s->pd_out, s->pd_ks);
}

static attn_status name_of(setup *s, char *buf, size_t n)
{
    return attn_kvcache_attention_impl_name(s->be, s->pdesc, s->pd_q, s->pd_qp, s->pd_k,
                                            s->pd_v, s->pd_sp, s->pd_out, s->pd_ks, buf, n);
}

/* ---- the table: one mutation per row ---- */
static void m_null_backend(setup *s) { attn_backend_close(s->be); s->be = NULL; }
static void m_null_desc(setup *s) { s->pdesc = NULL; }
static void m_null_q(setup *s) { s->pd_q = NULL; }
static void m_null_qp(setup *s) { s->pd_qp = NULL; }
static void m_null_k(setup *s) { s->pd_k = NULL; }
static void m_null_v(setup *s) { s->pd_v = NULL; }
static void m_null_sp(setup *s) { s->pd_sp = NULL; }
static void m_null_out(setup *s) { s->pd_out = NULL; }
static void m_no_data(setup *s) { s->k.data = NULL; }
static void m_sp_no_data(setup *s) { s->sp.data = NULL; }
static void m_u8_q(setup *s) { s->q.dtype = ATTN_U8; }
static void m_i32_out(setup *s) { s->out.dtype = ATTN_I32; }
static void m_f16_ks(setup *s) { s->ks.dtype = ATTN_F16; }
static void m_qp_i32(setup *s) { s->qp.dtype = ATTN_I32; }
static void m_sp_f32(setup *s) { s->sp.dtype = ATTN_F32; }
static void m_qp_seq(setup *s) { s->qp.shape[1] = SQ - 1; }
static void m_qp_batch(setup *s) { s->qp.shape[0] = 1; }
static void m_qp_wide(setup *s) { s->qp.shape[3] = 2; s->qp.stride[3] = 1; }
static void m_sp_slots(setup *s) { s->sp.shape[1] = NS - 1; }
static void m_sp_heads(setup *s) { s->sp.shape[2] = 1; }
static void m_k_dim(setup *s) { s->k.shape[3] = D - 2; }
static void m_v_slots(setup *s) { s->v.shape[1] = NS - 1; }
static void m_out_heads(setup *s) { s->out.shape[2] = HQ - 1; }
static void m_heads_ratio(setup *s) { s->q.shape[2] = s->out.shape[2] = 3; }
static void m_zero_slots(setup *s) { s->k.shape[1] = s->v.shape[1] = s->sp.shape[1] = 0; }
static void m_ks_shape(setup *s) { s->ks.shape[1] = NS + 1; }
static void m_qp_negative(setup *s) { s->qpd[4] = -1; }
static void m_qp_far(setup *s) { s->qpd[1] = ((int64_t)1 << 40) + 1; }
static void m_sp_below_empty(setup *s) { s->spd[5] = -2; }
static void m_positions_enum(setup *s) { s->d.positions = (attn_kv_positions)7; }
static void m_scale_nan(setup *s) { s->d.scale = NAN; }
static void m_softcap_negative(setup *s) { s->d.softcap = -1.0f; }
static void m_softcap_inf(setup *s) { s->d.softcap = INFINITY; }
static void m_reserved(setup *s) { s->d.reserved[2] = 1; }
static void m_rope_reserved(setup *s) { s->d.rope.reserved[0] = 1; }
static void m_rope_offset(setup *s) { s->d.rope.offset = 5; }
static void m_rope_positions(setup *s) { s->d.rope.positions = &s->qp; }
static void m_rope_theta(setup *s) { s->d.rope.theta = 0.0; }
static void m_rope_layout(setup *s) { s->d.rope.layout = (attn_rope_layout)9; }
static void m_rot_odd(setup *s)
{
    s->d.positions = ATTN_KV_POS_ORIGINAL;
    s->d.rope.rot_dim = 3;
}
static void m_rot_big(setup *s)
{
    s->d.positions = ATTN_KV_POS_CACHE;
    s->d.rope.rot_dim = D + 2;
}
static void m_odd_dim(setup *s)
{
    s->d.positions = ATTN_KV_POS_ORIGINAL;
    s->q.shape[3] = s->k.shape[3] = 7;
}
static void m_neg_stride(setup *s) { s->v.stride[2] = -D; }
static void m_out_self_overlap(setup *s) { s->out.stride[1] = 0; }
static void m_ks_self_overlap(setup *s) { s->ks.stride[1] = 0; }
static void m_huge_shape(setup *s) { s->q.shape[1] = s->out.shape[1] = (int64_t)1 << 62; }
static void m_out_overlaps_q(setup *s) { s->out.data = s->qd + 4; }
static void m_out_overlaps_qp(setup *s) { s->qp.data = s->outd + 2; }
static void m_ks_overlaps_sp(setup *s) { s->sp.data = s->ksd; s->sp.dtype = ATTN_I64; }
static void m_ks_overlaps_out(setup *s) { s->ks.data = s->outd + 4; }
static void into_buffer(attn_backend *owner, attn_tensor *t, size_t bytes, attn_buffer **slot)
{
    ck_assert_int_eq(attn_buffer_alloc(owner, bytes, slot), ATTN_OK);
    t->data = NULL;
    t->buffer = *slot;
}
static void m_buffer_small(setup *s) { into_buffer(s->be, &s->k, 64, &s->buf); }
/* v in a buffer of another handle (a ref call then runs on a fresh ref handle) */
static void m_buffer_foreign(setup *s)
{
    ck_assert_int_eq(attn_backend_open("ref", NULL, &s->other), ATTN_OK);
    into_buffer(s->other, &s->v, sizeof s->vd, &s->foreign);
    if (strcmp(attn_backend_name(s->be), "ref") == 0) {
        attn_backend_close(s->be);
        ck_assert_int_eq(attn_backend_open("ref", NULL, &s->be), ATTN_OK);
    }
}
static void m_misaligned(setup *s) { s->q.data = (char *)s->qd + 2; }
static void m_sp_misaligned(setup *s) { s->sp.offset = 4; }

typedef ATTN_BAD_ROW(setup) bad_case;

static const bad_case table[] = {
    {"backend NULL", m_null_backend, ATTN_ERR_NULL_POINTER},
    {"desc NULL", m_null_desc, ATTN_ERR_NULL_POINTER},
    {"q NULL", m_null_q, ATTN_ERR_NULL_POINTER},
    {"q_pos NULL", m_null_qp, ATTN_ERR_NULL_POINTER},
    {"k NULL", m_null_k, ATTN_ERR_NULL_POINTER},
    {"v NULL", m_null_v, ATTN_ERR_NULL_POINTER},
    {"slot_pos NULL", m_null_sp, ATTN_ERR_NULL_POINTER},
    {"out NULL", m_null_out, ATTN_ERR_NULL_POINTER},
    {"k without data or buffer", m_no_data, ATTN_ERR_NULL_POINTER},
    {"slot_pos without data or buffer", m_sp_no_data, ATTN_ERR_NULL_POINTER},
    {"q dtype u8", m_u8_q, ATTN_ERR_DTYPE},
    {"out dtype i32", m_i32_out, ATTN_ERR_DTYPE},
    {"key_score dtype f16", m_f16_ks, ATTN_ERR_DTYPE},
    {"q_pos i32", m_qp_i32, ATTN_ERR_DTYPE},
    {"slot_pos f32", m_sp_f32, ATTN_ERR_DTYPE},
    {"q_pos seq != Sq", m_qp_seq, ATTN_ERR_SHAPE},
    {"q_pos batch != B", m_qp_batch, ATTN_ERR_SHAPE},
    {"q_pos two per query", m_qp_wide, ATTN_ERR_SHAPE},
    {"slot_pos slots != Nslot", m_sp_slots, ATTN_ERR_SHAPE},
    {"slot_pos heads != Hkv", m_sp_heads, ATTN_ERR_SHAPE},
    {"k dim != Dk", m_k_dim, ATTN_ERR_SHAPE},
    {"v slots != Nslot", m_v_slots, ATTN_ERR_SHAPE},
    {"out heads != Hq", m_out_heads, ATTN_ERR_SHAPE},
    {"Hq not a multiple of Hkv", m_heads_ratio, ATTN_ERR_HEADS},
    {"Nslot = 0", m_zero_slots, ATTN_ERR_SHAPE},
    {"key_score slots != Nslot", m_ks_shape, ATTN_ERR_SHAPE},
    {"q_pos negative", m_qp_negative, ATTN_ERR_INVALID_ARGUMENT},
    {"q_pos beyond 2^40", m_qp_far, ATTN_ERR_INVALID_ARGUMENT},
    {"slot_pos below -1", m_sp_below_empty, ATTN_ERR_INVALID_ARGUMENT},
    {"positions not an enum", m_positions_enum, ATTN_ERR_INVALID_ARGUMENT},
    {"scale NaN", m_scale_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"softcap negative", m_softcap_negative, ATTN_ERR_INVALID_ARGUMENT},
    {"softcap Inf", m_softcap_inf, ATTN_ERR_INVALID_ARGUMENT},
    {"reserved not zero", m_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"rope.reserved not zero", m_rope_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"rope.offset not 0", m_rope_offset, ATTN_ERR_INVALID_ARGUMENT},
    {"rope.positions set", m_rope_positions, ATTN_ERR_INVALID_ARGUMENT},
    {"rope.theta 0", m_rope_theta, ATTN_ERR_INVALID_ARGUMENT},
    {"rope.layout not an enum", m_rope_layout, ATTN_ERR_INVALID_ARGUMENT},
    {"rot_dim odd", m_rot_odd, ATTN_ERR_SHAPE},
    {"rot_dim > Dk", m_rot_big, ATTN_ERR_SHAPE},
    {"odd Dk, full rotation", m_odd_dim, ATTN_ERR_SHAPE},
    {"negative stride", m_neg_stride, ATTN_ERR_STRIDE},
    {"out rows overlap (stride 0)", m_out_self_overlap, ATTN_ERR_STRIDE},
    {"key_score rows overlap (stride 0)", m_ks_self_overlap, ATTN_ERR_STRIDE},
    {"shape product overflows", m_huge_shape, ATTN_ERR_OVERFLOW},
    {"out overlaps q", m_out_overlaps_q, ATTN_ERR_ALIAS},
    {"out overlaps q_pos", m_out_overlaps_qp, ATTN_ERR_ALIAS},
    {"key_score overlaps slot_pos", m_ks_overlaps_sp, ATTN_ERR_ALIAS},
    {"key_score overlaps out", m_ks_overlaps_out, ATTN_ERR_ALIAS},
    {"buffer smaller than view", m_buffer_small, ATTN_ERR_BUFFER},
    {"v buffer of another backend", m_buffer_foreign, ATTN_ERR_BUFFER},
    {"misaligned q", m_misaligned, ATTN_ERR_INVALID_ARGUMENT},
    {"misaligned slot_pos offset", m_sp_misaligned, ATTN_ERR_INVALID_ARGUMENT},
};
enum { N_CASES = sizeof table / sizeof table[0] };

static void assert_untouched(const setup *s, const char *what)
{
    attn_bad_untouched(s->outd, sizeof s->outd, SENTINEL, what, "out");
    attn_bad_untouched(s->ksd, sizeof s->ksd, SENTINEL, what, "key_score");
}

/* _i = backend * N_CASES + row: status, a message, outputs untouched, supported() agreeing. */
START_TEST(bad_input_row)
{
    const bad_case *row = &table[_i % N_CASES];
    setup *s = new_setup(kv_fx_backends[_i / N_CASES]);
    if (!s)
        return;
    row->mutate(s);
    attn_bad_expect(call(s), row->want, row->name, kv_fx_backends[_i / N_CASES]);
    assert_untouched(s, row->name);
    ck_assert(!s->be || supported(s) == row->want);
    free_setup(s);
}
END_TEST

/* The unmutated setup runs in every positions mode, writes every element of out and
 * key_score, and names its implementation; rot_dim is ignored while keys are stored. */
START_TEST(valid_calls_run)
{
    for (int mode = 0; mode < 3; mode++) {
        setup *s = new_setup(kv_fx_backends[_i]);
        if (!s)
            return;
        s->d.positions = (attn_kv_positions)mode;
        s->d.rope.rot_dim = mode == ATTN_KV_POS_STORED ? 3 : 4;
        ck_assert_msg(call(s) == ATTN_OK && attn_last_error()[0] == '\0', "%s mode %d: %s",
                      kv_fx_backends[_i], mode, attn_last_error());
        attn_bad_written(s->outd, B * SQ * HQ * D, SENTINEL, kv_fx_backends[_i], "out");
        attn_bad_written(s->ksd, B * NS * HKV, SENTINEL, kv_fx_backends[_i], "key_score");
        for (int e = 0; e < B * SQ * HQ * D; e++)
            ck_assert(isfinite(s->outd[e]));
        char name[256];
        ck_assert(name_of(s, name, sizeof name) == ATTN_OK && strstr(name, kv_fx_backends[_i]));
        free_setup(s);
    }
}
END_TEST

/* A zero batch, or no query without key_score: ATTN_OK, nothing written, "<backend>:empty". */
START_TEST(zero_size_is_empty)
{
    for (int dim = 0; dim < 2; dim++) {
        setup *s = new_setup(kv_fx_backends[_i]);
        if (!s)
            return;
        s->q.shape[dim] = s->out.shape[dim] = s->qp.shape[dim] = 0;
        if (dim == 0)
            s->k.shape[0] = s->v.shape[0] = s->sp.shape[0] = s->ks.shape[0] = 0;
        else
            s->pd_ks = NULL;
        char name[64];
        ck_assert_msg(call(s) == ATTN_OK && name_of(s, name, sizeof name) == ATTN_OK,
                      "dim %d: %s", dim, attn_last_error());
        ck_assert_str_eq(strchr(name, ':'), ":empty");
        assert_untouched(s, "empty");
        free_setup(s);
    }
}
END_TEST

/* Positions in a backend buffer without host memory (opencl) are refused by name. */
START_TEST(positions_must_be_host_memory)
{
    setup *s = new_setup("opencl");
    if (!s)
        return;
    into_buffer(s->be, &s->sp, sizeof s->spd, &s->buf);
    ck_assert_int_eq(call(s), ATTN_ERR_BUFFER);
    ck_assert_msg(strstr(attn_last_error(), "slot_pos must be host memory"), "%s",
                  attn_last_error());
    assert_untouched(s, "device slot_pos");
    free_setup(s);
}
END_TEST

/* Messages name the user's axis and field. */
START_TEST(messages_name_the_axis)
{
    setup *s = new_setup("ref");
    m_sp_heads(s);
    ck_assert_int_eq(call(s), ATTN_ERR_SHAPE);
    ck_assert_msg(strstr(attn_last_error(), "slot_pos: shape[2] (heads)"), "%s",
                  attn_last_error());
    free_setup(s);
    s = new_setup("ref");
    m_qp_negative(s);
    call(s);
    ck_assert_msg(strstr(attn_last_error(), "q_pos[1, 1] = -1"), "%s", attn_last_error());
    free_setup(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kvcache_attention_badinput");
    TCase *tc = tcase_create("table");
    tcase_add_loop_test(tc, bad_input_row, 0, N_CASES * KV_FX_N_BACKENDS);
    tcase_add_loop_test(tc, valid_calls_run, 0, KV_FX_N_BACKENDS);
    tcase_add_loop_test(tc, zero_size_is_empty, 0, KV_FX_N_BACKENDS);
    tcase_add_test(tc, positions_must_be_host_memory);
    tcase_add_test(tc, messages_name_the_axis);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
