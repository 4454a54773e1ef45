/* check_rope_badinput.c - the bad-input table of RoPE: every malformed call returns its
 * specific status and a message and leaves out untouched, on every backend, and supported()
 * agrees; zero batch or seq is an empty problem; in place is accepted only as the very same
 * view. */
#include "attn/attn.h"

#include "check_badinput.h"
#include "check_run.h"
#include "rope_fixture.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, S = 5, H = 3, D = 8 };
#define SENTINEL 0xA5

typedef struct setup {
    attn_backend *be, *other;
    attn_rope_desc d;
    attn_tensor x, out, pos;
    const attn_tensor *px, *pout;
    float xd[B * S * H * D], outd[B * S * H * D + 16];
    int32_t posd[B * S];
    attn_buffer *buf, *foreign;
} setup;

/* The valid call on a backend each table row breaks one thing of (fields are reset, the
 * backend is opened again). */
static void make_valid(setup *s, const char *backend)
{
    memset(s, 0, sizeof *s);
    ck_assert_int_eq(attn_backend_open(backend, NULL, &s->be), ATTN_OK);
    for (int i = 0; i < B * S * H * D; i++)
        s->xd[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < B * S; i++)
        s->posd[i] = 3 * i;
    memset(s->outd, SENTINEL, sizeof s->outd);
    s->d = attn_rope_desc_default();
    s->x = attn_tensor_bshd(s->xd, ATTN_F32, B, S, H, D);
    s->out = attn_tensor_bshd(s->outd, ATTN_F32, B, S, H, D);
    s->pos = attn_tensor_bshd(s->posd, ATTN_I32, B, S, 1, 1);
    s->px = &s->x;
    s->pout = &s->out;
}

/* A valid setup on the backend, or NULL (skipped, with the reason) when it is missing. */
static setup *new_setup(const char *backend)
{
    attn_backend *probe = rope_fx_open(backend);
    if (!probe)
        return NULL;
    attn_backend_close(probe);
    setup *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    make_valid(s, backend);
    return s;
}

/* Everything a setup (or a row's mutation) opened or allocated. */
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
    return attn_rope_forward(s->be, &s->d, s->px, s->pout);
}

static attn_status name_of(setup *s, char *buf, size_t n)
{
    return attn_rope_impl_name(s->be, &s->d, s->px, s->pout, buf, n);
}

/* ---- the table: one mutation per row ---- */
static void m_null_backend(setup *s) { attn_backend_close(s->be); s->be = NULL; }
static void m_null_x(setup *s) { s->px = NULL; }
static void m_null_out(setup *s) { s->pout = NULL; }
static void m_no_data(setup *s) { s->x.data = NULL; }
static void m_u8_x(setup *s) { s->x.dtype = ATTN_U8; }
static void m_i32_out(setup *s) { s->out.dtype = ATTN_I32; }
static void m_bad_enum_x(setup *s) { s->x.dtype = (attn_dtype)99; }
static void m_pos_f32(setup *s) { s->pos.dtype = ATTN_F32; s->d.positions = &s->pos; }
static void m_pos_u8(setup *s) { s->pos.dtype = ATTN_U8; s->d.positions = &s->pos; }
static void m_pos_seq(setup *s) { s->pos.shape[1] = S - 1; s->d.positions = &s->pos; }
static void m_pos_batch(setup *s) { s->pos.shape[0] = 3; s->d.positions = &s->pos; }
static void m_pos_heads(setup *s)
{
    s->pos.shape[2] = 2;
    s->pos.stride[2] = 1;
    s->d.positions = &s->pos;
}
static void m_pos_no_data(setup *s) { s->pos.data = NULL; s->d.positions = &s->pos; }
static void m_zero_heads(setup *s) { s->x.shape[2] = s->out.shape[2] = 0; }
static void m_zero_dim(setup *s) { s->x.shape[3] = s->out.shape[3] = 0; }
static void m_negative_seq(setup *s) { s->x.shape[1] = -1; }
static void m_out_shape(setup *s) { s->out.shape[2] = H - 1; }
static void m_out_dim(setup *s) { s->out.shape[3] = D + 2; }
static void m_odd_dim(setup *s) { s->x.shape[3] = s->out.shape[3] = 7; }
static void m_rot_odd(setup *s) { s->d.rot_dim = 3; }
static void m_rot_big(setup *s) { s->d.rot_dim = D + 2; }
static void m_rot_negative(setup *s) { s->d.rot_dim = -2; }
static void m_theta_zero(setup *s) { s->d.theta = 0.0; }
static void m_theta_negative(setup *s) { s->d.theta = -10000.0; }
static void m_theta_nan(setup *s) { s->d.theta = NAN; }
static void m_theta_inf(setup *s) { s->d.theta = INFINITY; }
static void m_layout_bad(setup *s) { s->d.layout = (attn_rope_layout)5; }
static void m_offset_huge(setup *s) { s->d.offset = ((int64_t)1 << 40) + 1; }
static void m_reserved(setup *s) { s->d.reserved[3] = 1; }
static void m_neg_stride(setup *s) { s->x.stride[2] = -D; }
static void m_out_self_overlap(setup *s) { s->out.stride[1] = 0; }
static void m_huge_shape(setup *s) { s->x.shape[1] = s->out.shape[1] = (int64_t)1 << 62; }
static void m_out_overlaps_x(setup *s) { s->out.data = s->xd + 4; }
static void m_in_place_other_dtype(setup *s)
{
    s->out.data = s->xd;
    s->out.dtype = ATTN_F16;
}
static void m_in_place_other_strides(setup *s)
{
    s->out = attn_tensor_bhsd(s->xd, ATTN_F32, B, S, H, D);
}
static void m_out_overlaps_pos(setup *s)
{
    s->d.positions = &s->pos;
    s->pos.data = s->outd + 8;
}
/* View t moved into a fresh buffer of `owner` of `bytes` bytes. */
static void into_buffer(attn_backend *owner, attn_tensor *t, size_t bytes, attn_buffer **slot)
{
    ck_assert_int_eq(attn_buffer_alloc(owner, bytes, slot), ATTN_OK);
    t->data = NULL;
    t->buffer = *slot;
}
static void m_buffer_small(setup *s) { into_buffer(s->be, &s->x, 64, &s->buf); }
/* positions in a buffer of another handle (a ref call then runs on a fresh ref handle) */
static void m_buffer_foreign(setup *s)
{
    ck_assert_int_eq(attn_backend_open("ref", NULL, &s->other), ATTN_OK);
    into_buffer(s->other, &s->pos, sizeof s->posd, &s->foreign);
    s->d.positions = &s->pos;
    if (strcmp(attn_backend_name(s->be), "ref") == 0) {
        attn_backend_close(s->be);
        ck_assert_int_eq(attn_backend_open("ref", NULL, &s->be), ATTN_OK);
    }
}
static void m_misaligned(setup *s) { s->x.data = (char *)s->xd + 2; }
static void m_pos_misaligned(setup *s) { s->pos.offset = 2; s->d.positions = &s->pos; }

typedef ATTN_BAD_ROW(setup) bad_case;

static const bad_case table[] = {
    {"backend NULL", m_null_backend, ATTN_ERR_NULL_POINTER},
    {"x NULL", m_null_x, ATTN_ERR_NULL_POINTER},
    {"out NULL", m_null_out, ATTN_ERR_NULL_POINTER},
    {"x without data or buffer", m_no_data, ATTN_ERR_NULL_POINTER},
    {"x dtype u8", m_u8_x, ATTN_ERR_DTYPE},
    {"out dtype i32", m_i32_out, ATTN_ERR_DTYPE},
    {"x dtype not an enum", m_bad_enum_x, ATTN_ERR_DTYPE},
    {"positions f32", m_pos_f32, ATTN_ERR_DTYPE},
    {"positions u8", m_pos_u8, ATTN_ERR_DTYPE},
    {"positions seq != S", m_pos_seq, ATTN_ERR_SHAPE},
    {"positions batch neither 1 nor B", m_pos_batch, ATTN_ERR_SHAPE},
    {"positions with 2 heads", m_pos_heads, ATTN_ERR_SHAPE},
    {"positions without data", m_pos_no_data, ATTN_ERR_NULL_POINTER},
    {"H = 0", m_zero_heads, ATTN_ERR_SHAPE},
    {"D = 0", m_zero_dim, ATTN_ERR_SHAPE},
    {"negative S", m_negative_seq, ATTN_ERR_SHAPE},
    {"out heads != x heads", m_out_shape, ATTN_ERR_SHAPE},
    {"out dim != x dim", m_out_dim, ATTN_ERR_SHAPE},
    {"odd D, full rotation", m_odd_dim, ATTN_ERR_SHAPE},
    {"rot_dim odd", m_rot_odd, ATTN_ERR_SHAPE},
    {"rot_dim > D", m_rot_big, ATTN_ERR_SHAPE},
    {"rot_dim negative", m_rot_negative, ATTN_ERR_SHAPE},
    {"theta 0", m_theta_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"theta negative", m_theta_negative, ATTN_ERR_INVALID_ARGUMENT},
    {"theta NaN", m_theta_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"theta Inf", m_theta_inf, ATTN_ERR_INVALID_ARGUMENT},
    {"layout not an enum", m_layout_bad, ATTN_ERR_INVALID_ARGUMENT},
    {"offset beyond 2^40", m_offset_huge, ATTN_ERR_INVALID_ARGUMENT},
    {"reserved not zero", m_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"negative stride", m_neg_stride, ATTN_ERR_STRIDE},
    {"out rows overlap (stride 0)", m_out_self_overlap, ATTN_ERR_STRIDE},
    {"shape product overflows", m_huge_shape, ATTN_ERR_OVERFLOW},
    {"out overlaps x, shifted", m_out_overlaps_x, ATTN_ERR_ALIAS},
    {"in place with another dtype", m_in_place_other_dtype, ATTN_ERR_ALIAS},
    {"in place with other strides", m_in_place_other_strides, ATTN_ERR_ALIAS},
    {"out overlaps positions", m_out_overlaps_pos, ATTN_ERR_ALIAS},
    {"buffer smaller than view", m_buffer_small, ATTN_ERR_BUFFER},
    {"positions buffer of another backend", m_buffer_foreign, ATTN_ERR_BUFFER},
    {"misaligned x", m_misaligned, ATTN_ERR_INVALID_ARGUMENT},
    {"misaligned positions offset", m_pos_misaligned, ATTN_ERR_INVALID_ARGUMENT},
};
enum { N_CASES = sizeof table / sizeof table[0] };

static void assert_out_untouched(const setup *s, const char *what)
{
    attn_bad_untouched(s->outd, sizeof s->outd, SENTINEL, what, "out");
}

/* _i = backend * N_CASES + row: status, a message, out untouched, supported() agreeing. */
START_TEST(bad_input_row)
{
    const bad_case *row = &table[_i % N_CASES];
    setup *s = new_setup(rope_fx_backends[_i / N_CASES]);
    if (!s)
        return;
    row->mutate(s);
    attn_bad_expect(call(s), row->want, row->name, rope_fx_backends[_i / N_CASES]);
    assert_out_untouched(s, row->name);
    ck_assert(!s->be || attn_rope_supported(s->be, &s->d, s->px, s->pout) == row->want);
    free_setup(s);
}
END_TEST

/* The unmutated setup runs (with positions, and in place) and writes every element. */
START_TEST(valid_calls_run)
{
    setup *s = new_setup(rope_fx_backends[_i]);
    if (!s)
        return;
    s->d.positions = &s->pos;
    ck_assert(call(s) == ATTN_OK && attn_last_error()[0] == '\0');
    for (int e = 0; e < B * S * H * D; e++)
        ck_assert(isfinite(s->outd[e]));
    s->out.data = s->xd; /* in place: the very same view */
    ck_assert_msg(call(s) == ATTN_OK, "%s", attn_last_error());
    char name[96];
    ck_assert(name_of(s, name, sizeof name) == ATTN_OK && strstr(name, rope_fx_backends[_i]));
    free_setup(s);
}
END_TEST

/* A zero batch or seq is an empty problem: ATTN_OK, nothing written, "<backend>:empty". */
START_TEST(zero_size_is_empty)
{
    for (int dim = 0; dim < 2; dim++) {
        setup *s = new_setup(rope_fx_backends[_i]);
        if (!s)
            return;
        s->x.shape[dim] = s->out.shape[dim] = s->pos.shape[dim] = 0;
        s->d.positions = &s->pos;
        char name[64];
        ck_assert_msg(call(s) == ATTN_OK && name_of(s, name, sizeof name) == ATTN_OK,
                      "dim %d: %s", dim, attn_last_error());
        ck_assert_str_eq(strchr(name, ':'), ":empty");
        assert_out_untouched(s, "empty");
        free_setup(s);
    }
}
END_TEST

/* Messages name the user's axis and field. */
START_TEST(messages_name_the_axis)
{
    setup *s = new_setup("ref");
    m_pos_seq(s);
    ck_assert_int_eq(call(s), ATTN_ERR_SHAPE);
    ck_assert_msg(strstr(attn_last_error(), "positions: shape[1] (seq)"), "%s",
                  attn_last_error());
    free_setup(s);
    s = new_setup("ref");
    m_rot_big(s);
    call(s);
    ck_assert_msg(strstr(attn_last_error(), "desc.rot_dim = 10"), "%s", attn_last_error());
    free_setup(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rope_badinput");
    TCase *tc = tcase_create("table");
    tcase_add_loop_test(tc, bad_input_row, 0, N_CASES * ROPE_FX_N_BACKENDS);
    tcase_add_loop_test(tc, valid_calls_run, 0, ROPE_FX_N_BACKENDS);
    tcase_add_loop_test(tc, zero_size_is_empty, 0, ROPE_FX_N_BACKENDS);
    tcase_add_test(tc, messages_name_the_axis);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
