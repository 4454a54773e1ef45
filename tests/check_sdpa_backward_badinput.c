/* check_sdpa_backward_badinput.c - every malformed SDPA backward call (missing operands, wrong
 * shapes and dtypes of dout and the gradients, a mask gradient without a mask, aliasing,
 * reserved words) returns its specific status with a message and leaves every gradient
 * untouched, on every backend of this build; a valid call on each backend runs or says
 * ATTN_ERR_UNSUPPORTED, and writes nothing then either. */
#include "check_badinput.h"
#include "check_run.h"
#include "sdpa_backward_fixture.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#define POISON 0x5a

/* A valid backward call on one backend (GQA 4/2, causal, broadcast mask with its gradient),
 * whose operands the rows break. */
typedef struct setup {
    sbw x;
    attn_backend *be;
    const attn_tensor *lse, *dout;
    const attn_sdpa_grads *g;
    attn_sdpa_grads grads;
} setup;

static const sbw_shape shape = {1, 5, 7, 4, 2, 3, 4, {1, 5, 1, 7}, {0}};

static void make_valid(setup *s, const char *backend)
{
    memset(s, 0, sizeof *s);
    sbw_init(&s->x, &shape, 99);
    s->x.desc.causal = 1;
    ck_assert_int_eq(attn_backend_open(backend, NULL, &s->be), ATTN_OK);
    ck_assert_int_eq(attn_sdpa_forward(s->be, &s->x.desc, &s->x.tq, &s->x.tk, &s->x.tv,
                                       &s->x.tout, &s->x.tlse),
                     ATTN_OK);
    s->lse = &s->x.tlse;
    s->dout = &s->x.tdout;
    s->grads = s->x.grads;
    s->g = &s->grads;
    memset(s->x.dq, POISON, sizeof(float) * (size_t)sbw_n(&s->x, "dq"));
    memset(s->x.dk, POISON, sizeof(float) * (size_t)sbw_n(&s->x, "dk"));
    memset(s->x.dv, POISON, sizeof(float) * (size_t)sbw_n(&s->x, "dv"));
    memset(s->x.dmask, POISON, sizeof(float) * (size_t)sbw_n(&s->x, "madd"));
}

static attn_status call(setup *s)
{
    return attn_sdpa_backward(s->be, &s->x.desc, &s->x.tq, &s->x.tk, &s->x.tv, &s->x.tout,
                              s->lse, s->dout, s->g);
}

static void untouched(const setup *s, const char *name)
{
    attn_bad_untouched(s->x.dq, sizeof(float) * (size_t)sbw_n(&s->x, "dq"), POISON, name, "dq");
    attn_bad_untouched(s->x.dk, sizeof(float) * (size_t)sbw_n(&s->x, "dk"), POISON, name, "dk");
    attn_bad_untouched(s->x.dv, sizeof(float) * (size_t)sbw_n(&s->x, "dv"), POISON, name, "dv");
    attn_bad_untouched(s->x.dmask, sizeof(float) * (size_t)sbw_n(&s->x, "madd"), POISON, name,
                       "dmask_add");
}

static void teardown(setup *s)
{
    attn_backend_close(s->be);
    sbw_free(&s->x);
}

/* clang-format off */
static void m_null_backend(setup *s) { attn_backend_close(s->be); s->be = NULL; }
static void m_null_grads(setup *s) { s->g = NULL; }
static void m_null_dq(setup *s) { s->grads.dq = NULL; }
static void m_null_dk(setup *s) { s->grads.dk = NULL; }
static void m_null_dv(setup *s) { s->grads.dv = NULL; }
static void m_null_lse(setup *s) { s->lse = NULL; }
static void m_null_dout(setup *s) { s->dout = NULL; }
static void m_dout_shape(setup *s) { s->x.tdout.shape[3] = shape.Dv - 1; }
static void m_dq_shape(setup *s) { s->x.tdq.shape[3] = shape.Dk - 1; }
static void m_dk_heads(setup *s) { s->x.tdk.shape[2] = 1; }
static void m_dv_seq(setup *s) { s->x.tdv.shape[1] = shape.Skv - 1; }
static void m_dq_dtype(setup *s) { s->x.tdq.dtype = ATTN_U8; }
static void m_dout_dtype(setup *s) { s->x.tdout.dtype = ATTN_I32; }
static void m_dmask_dtype(setup *s) { s->x.tdmask.dtype = ATTN_F16; }
static void m_dmask_shape(setup *s) { s->x.tdmask.shape[1] = 1; }
static void m_dmask_no_mask(setup *s) { s->x.desc.mask_add = NULL; }
static void m_dq_is_q(setup *s) { s->x.tdq.data = s->x.q; }
static void m_dk_is_dv(setup *s) { s->x.tdk.data = s->x.dv; }
static void m_dv_is_dout(setup *s) { s->x.tdv.data = s->x.dout; }
static void m_dq_self_overlap(setup *s) { s->x.tdq.stride[1] = 0; }
static void m_reserved(setup *s) { s->grads.reserved[2] = 1; }
static void m_bad_window(setup *s) { s->x.desc.window_left = -2; }
/* clang-format on */

typedef ATTN_BAD_ROW(setup) row;
static const row table[] = {
    {"backend NULL", m_null_backend, ATTN_ERR_NULL_POINTER},
    {"grads NULL", m_null_grads, ATTN_ERR_NULL_POINTER},
    {"grads.dq NULL", m_null_dq, ATTN_ERR_NULL_POINTER},
    {"grads.dk NULL", m_null_dk, ATTN_ERR_NULL_POINTER},
    {"grads.dv NULL", m_null_dv, ATTN_ERR_NULL_POINTER},
    {"lse NULL", m_null_lse, ATTN_ERR_NULL_POINTER},
    {"dout NULL", m_null_dout, ATTN_ERR_NULL_POINTER},
    {"dout not out's shape", m_dout_shape, ATTN_ERR_SHAPE},
    {"dq not q's shape", m_dq_shape, ATTN_ERR_SHAPE},
    {"dk not k's heads", m_dk_heads, ATTN_ERR_SHAPE},
    {"dv not v's tokens", m_dv_seq, ATTN_ERR_SHAPE},
    {"dq dtype u8", m_dq_dtype, ATTN_ERR_DTYPE},
    {"dout dtype i32", m_dout_dtype, ATTN_ERR_DTYPE},
    {"dmask_add dtype f16", m_dmask_dtype, ATTN_ERR_DTYPE},
    {"dmask_add not the mask's shape", m_dmask_shape, ATTN_ERR_SHAPE},
    {"dmask_add without mask_add", m_dmask_no_mask, ATTN_ERR_INVALID_ARGUMENT},
    {"dq aliases q", m_dq_is_q, ATTN_ERR_ALIAS},
    {"dk overlaps dv", m_dk_is_dv, ATTN_ERR_ALIAS},
    {"dv aliases dout", m_dv_is_dout, ATTN_ERR_ALIAS},
    {"dq elements overlap", m_dq_self_overlap, ATTN_ERR_STRIDE},
    {"grads.reserved nonzero", m_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"window_left -2", m_bad_window, ATTN_ERR_WINDOW},
};
#define N_ROWS ((int)(sizeof table / sizeof table[0]))

START_TEST(bad_input_row)
{
    const char *backend = attn_bad_backend(_i / N_ROWS);
    if (!attn_bad_available(backend))
        return;
    setup s;
    make_valid(&s, backend);
    table[_i % N_ROWS].mutate(&s);
    attn_bad_expect(call(&s), table[_i % N_ROWS].want, table[_i % N_ROWS].name, backend);
    /* _supported and _impl_name run the same checks */
    attn_bad_expect(attn_sdpa_backward_supported(s.be, &s.x.desc, &s.x.tq, &s.x.tk, &s.x.tv,
                                                 &s.x.tout, s.lse, s.dout, s.g),
                    table[_i % N_ROWS].want, table[_i % N_ROWS].name, backend);
    untouched(&s, table[_i % N_ROWS].name);
    teardown(&s);
}
END_TEST

/* The valid call runs (the gradients get written) or is unsupported (nothing written). */
START_TEST(valid_call)
{
    const char *backend = attn_bad_backend(_i);
    if (!attn_bad_available(backend))
        return;
    setup s;
    make_valid(&s, backend);
    const attn_status st = call(&s);
    attn_bad_valid(st, backend);
    char name[256];
    ck_assert_int_eq(attn_sdpa_backward_impl_name(s.be, &s.x.desc, &s.x.tq, &s.x.tk, &s.x.tv,
                                                  &s.x.tout, s.lse, s.dout, s.g, name,
                                                  sizeof name),
                     st);
    if (st == ATTN_OK) {
        const float *g[] = {s.x.dq, s.x.dk, s.x.dv, s.x.dmask};
        const char *names[] = {"dq", "dk", "dv", "madd"};
        for (int t = 0; t < 4; t++)
            attn_bad_written(g[t], sbw_n(&s.x, names[t]), POISON, backend, names[t]);
    } else {
        untouched(&s, "unsupported call");
    }
    teardown(&s);
}
END_TEST

static Suite *suite(void)
{
    return attn_bad_suite("sdpa_backward_badinput", bad_input_row, N_ROWS, valid_call);
}

int main(void)
{
    return attn_check_run(suite());
}
