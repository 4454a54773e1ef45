/* check_linear_backward_badinput.c - every malformed linear attention backward call (missing
 * operands, state tensors without their partner, shapes and dtypes of the gradients, aliasing,
 * reserved words) returns its specific status with a message and leaves every gradient
 * untouched, on every backend of this build; a valid call runs or says ATTN_ERR_UNSUPPORTED,
 * writing nothing then either. */
#include "check_badinput.h"
#include "check_run.h"
#include "linear_backward_fixture.h"

#include <check.h>
#include <string.h>

#define POISON 0x5a

typedef struct setup {
    lbw x;
    attn_backend *be;
    const attn_tensor *dout;
    attn_linear_state st;
    attn_linear_grads grads;
    const attn_linear_grads *g;
} setup;

/* GQA 4/2, elu+1 with the normaliser, initial state in, final state's gradients in. */
static const lbw_shape shape = {1, 6, 4, 2, 3, 4, ATTN_LINEAR_ELU1, 1, 1,
                                ATTN_LINEAR_DECAY_NONE, 1, 1};

/* The gradients and their element counts. */
static float **grad_ptr(setup *s, int i, int64_t *n)
{
    static const char *const names[] = {"q", "k", "v", "state", "z"};
    float **p[] = {&s->x.dq, &s->x.dk, &s->x.dv, &s->x.ds0, &s->x.dz0};
    *n = lbw_n(&s->x, names[i]);
    return p[i];
}

static void make_valid(setup *s, const char *backend)
{
    memset(s, 0, sizeof *s);
    lbw_init(&s->x, &shape, 41);
    ck_assert_int_eq(attn_backend_open(backend, NULL, &s->be), ATTN_OK);
    s->dout = &s->x.tdout;
    s->st = s->x.st;
    s->grads = s->x.grads;
    s->g = &s->grads;
    for (int i = 0; i < 5; i++) {
        int64_t n;
        float **p = grad_ptr(s, i, &n);
        memset(*p, POISON, sizeof(float) * (size_t)n);
    }
}

static attn_status call(setup *s)
{
    return attn_linear_backward(s->be, &s->x.desc, &s->x.tq, &s->x.tk, &s->x.tv, &s->st,
                                s->dout, s->g);
}

static void untouched(setup *s, const char *name)
{
    static const char *const what[] = {"dq", "dk", "dv", "d_state_in", "d_z_in"};
    for (int i = 0; i < 5; i++) {
        int64_t n;
        float **p = grad_ptr(s, i, &n);
        attn_bad_untouched(*p, sizeof(float) * (size_t)n, POISON, name, what[i]);
    }
}

/* clang-format off */
static void m_null_backend(setup *s) { attn_backend_close(s->be); s->be = NULL; }
static void m_null_grads(setup *s) { s->g = NULL; }
static void m_null_dq(setup *s) { s->grads.dq = NULL; }
static void m_null_dout(setup *s) { s->dout = NULL; }
static void m_state_out(setup *s) { s->st.state_out = &s->x.tdsT; s->st.z_out = &s->x.tdzT; }
static void m_dstate_without_state(setup *s) { s->st.state_in = NULL; s->st.z_in = NULL; s->grads.d_z_in = NULL; }
static void m_dz_without_z(setup *s) { s->st.z_in = NULL; }
static void m_dz_out_unnormalised(setup *s) { s->x.desc.normalize = 0; s->st.z_in = NULL; s->grads.d_z_in = NULL; }
static void m_dq_shape(setup *s) { s->x.tdq.shape[3] = shape.Dk - 1; }
static void m_dk_heads(setup *s) { s->x.tdk.shape[2] = 1; }
static void m_dv_dtype(setup *s) { s->x.tdv.dtype = ATTN_U8; }
static void m_dstate_out_shape(setup *s) { s->x.tdsT.shape[2] = 1; }
static void m_dstate_in_dtype(setup *s) { s->x.tds0.dtype = ATTN_F16; }
static void m_dout_shape(setup *s) { s->x.tdout.shape[1] = shape.S - 1; }
static void m_dq_is_q(setup *s) { s->x.tdq.data = s->x.q; }
static void m_dk_is_dv(setup *s) { s->x.tdk.data = s->x.dv; }
static void m_dstate_is_state(setup *s) { s->x.tds0.data = s->x.s0; }
static void m_reserved(setup *s) { s->grads.reserved[0] = 7; }
static void m_bad_scale(setup *s) { s->x.desc.scale = 0.0f; }
/* clang-format on */

typedef ATTN_BAD_ROW(setup) row;
static const row table[] = {
    {"backend NULL", m_null_backend, ATTN_ERR_NULL_POINTER},
    {"grads NULL", m_null_grads, ATTN_ERR_NULL_POINTER},
    {"grads.dq NULL", m_null_dq, ATTN_ERR_NULL_POINTER},
    {"dout NULL", m_null_dout, ATTN_ERR_NULL_POINTER},
    {"state_out given", m_state_out, ATTN_ERR_INVALID_ARGUMENT},
    {"d_state_in without state_in", m_dstate_without_state, ATTN_ERR_INVALID_ARGUMENT},
    {"d_z_in without z_in", m_dz_without_z, ATTN_ERR_INVALID_ARGUMENT},
    {"d_z_out without the normaliser", m_dz_out_unnormalised, ATTN_ERR_INVALID_ARGUMENT},
    {"dq not q's shape", m_dq_shape, ATTN_ERR_SHAPE},
    {"dk not k's heads", m_dk_heads, ATTN_ERR_SHAPE},
    {"dv dtype u8", m_dv_dtype, ATTN_ERR_DTYPE},
    {"d_state_out not the state's shape", m_dstate_out_shape, ATTN_ERR_SHAPE},
    {"d_state_in dtype f16", m_dstate_in_dtype, ATTN_ERR_DTYPE},
    {"dout not out's shape", m_dout_shape, ATTN_ERR_SHAPE},
    {"dq aliases q", m_dq_is_q, ATTN_ERR_ALIAS},
    {"dk overlaps dv", m_dk_is_dv, ATTN_ERR_ALIAS},
    {"d_state_in aliases state_in", m_dstate_is_state, ATTN_ERR_ALIAS},
    {"grads.reserved nonzero", m_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"desc.scale 0", m_bad_scale, ATTN_ERR_INVALID_ARGUMENT},
};
#define N_ROWS ((int)(sizeof table / sizeof table[0]))

START_TEST(bad_input_row)
{
    const char *backend = attn_bad_backend(_i / N_ROWS);
    const row *r = &table[_i % N_ROWS];
    if (!attn_bad_available(backend))
        return;
    setup s;
    make_valid(&s, backend);
    r->mutate(&s);
    attn_bad_expect(call(&s), r->want, r->name, backend);
    attn_bad_expect(attn_linear_backward_supported(s.be, &s.x.desc, &s.x.tq, &s.x.tk, &s.x.tv,
                                                   &s.st, s.dout, s.g),
                    r->want, r->name, backend);
    untouched(&s, r->name);
    attn_backend_close(s.be);
    lbw_free(&s.x);
}
END_TEST

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
    ck_assert_int_eq(attn_linear_backward_impl_name(s.be, &s.x.desc, &s.x.tq, &s.x.tk, &s.x.tv,
                                                    &s.st, s.dout, s.g, name, sizeof name),
                     st);
    if (st == ATTN_OK) {
        static const char *const what[] = {"dq", "dk", "dv", "d_state_in", "d_z_in"};
        for (int i = 0; i < 5; i++) {
            int64_t n;
            float **p = grad_ptr(&s, i, &n);
            attn_bad_written(*p, n, POISON, backend, what[i]);
        }
    } else {
        untouched(&s, "unsupported call");
    }
    attn_backend_close(s.be);
    lbw_free(&s.x);
}
END_TEST

static Suite *suite(void)
{
    return attn_bad_suite("linear_backward_badinput", bad_input_row, N_ROWS, valid_call);
}

int main(void)
{
    return attn_check_run(suite());
}
