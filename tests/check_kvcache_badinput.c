/* check_kvcache_badinput.c - the bad-input table of the KV cache and SqueezeAttention's calls:
 * every malformed call (a zero budget, p out of range, a budget not above the sinks, a recent
 * window past the budget, positions not increasing, wrong shapes and dtypes, NULLs, reserved
 * words set, a failing step) returns its specific status with a message and leaves the cache
 * (info, positions, scores, storage) and every output untouched, on every backend. */
#include "attn/attn.h"

#include "check_badinput.h"
#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { HKV = 2, HQ = 4, DK = 8, DV = 6, N = 3, L = 6 };
#define SENTINEL 0xA5

typedef enum call {
    CREATE, APPEND, ATTEND, STEP, ADD_SCORES, SET_BUDGET, GET_POS, GET_SCORES, INFO,
    SQ_BUDGETS, KMEANS, SIMILARITY
} call;

/* A valid set-up: an H2O cache (budget 4, recent 2) holding 3 tokens at positions 0..2, and
 * valid arguments for every call; each row breaks one thing of the call it names. */
typedef struct setup {
    call what;
    attn_backend *be;
    attn_kvcache *c;
    attn_kvcache_desc d;
    attn_kvcache **pout;
    attn_tensor k, v, q, out, score, pos;
    const attn_tensor *pk, *pv, *pq, *po, *ps;
    int64_t pos0, budget, recent;
    float kd[N * HKV * DK], vd[N * HKV * DV], qd[HQ * DK], outd[HQ * DV], sd[N * HKV];
    int64_t posd[N * HKV];
    attn_kvcache_squeeze_desc sq;
    double s[L], *ps_in;
    int64_t bud[L], nl;
    int kk, cls[L];
    attn_buffer *buf;
} setup;

static void make_valid(setup *s, const char *backend)
{
    memset(s, 0, sizeof *s);
    ck_assert_int_eq(attn_backend_open(backend, NULL, &s->be), ATTN_OK);
    s->d = attn_kvcache_desc_default();
    s->d.kv_heads = HKV;
    s->d.head_dim_k = DK;
    s->d.head_dim_v = DV;
    s->d.policy = ATTN_KV_H2O;
    s->d.budget = 4;
    s->d.recent = 2;
    ck_assert_int_eq(attn_kvcache_create(s->be, &s->d, &s->c), ATTN_OK);
    for (int e = 0; e < N * HKV * DK; e++)
        s->kd[e] = (float)(e % 7) / 7.0f;
    for (int e = 0; e < N * HKV * DV; e++)
        s->vd[e] = (float)(e % 5) / 5.0f;
    for (int e = 0; e < HQ * DK; e++)
        s->qd[e] = (float)(e % 3) / 3.0f;
    s->k = attn_tensor_bshd(s->kd, ATTN_F32, 1, N, HKV, DK);
    s->v = attn_tensor_bshd(s->vd, ATTN_F32, 1, N, HKV, DV);
    ck_assert_int_eq(attn_kvcache_append(s->c, &s->k, &s->v, 0), ATTN_OK);
    /* the calls' arguments: one new token at position 3, a query, scores of the 3 slots */
    s->k.shape[1] = s->v.shape[1] = 1;
    s->q = attn_tensor_bshd(s->qd, ATTN_F32, 1, 1, HQ, DK);
    s->out = attn_tensor_bshd(s->outd, ATTN_F32, 1, 1, HQ, DV);
    s->score = attn_tensor_bshd(s->sd, ATTN_F32, 1, N, HKV, 1);
    s->pos = attn_tensor_bshd(s->posd, ATTN_I64, 1, N, HKV, 1);
    for (int e = 0; e < N * HKV; e++)
        s->sd[e] = 0.25f * (float)e;
    memset(s->outd, SENTINEL, sizeof s->outd);
    memset(s->posd, SENTINEL, sizeof s->posd);
    s->pk = &s->k;
    s->pv = &s->v;
    s->pq = &s->q;
    s->po = &s->out;
    s->ps = &s->score;
    s->pos0 = 3;
    s->budget = 4;
    s->recent = 2;
    s->pout = &s->c; /* replaced by a fresh pointer in the call */
    /* SqueezeAttention */
    s->sq = attn_kvcache_squeeze_desc_default();
    s->sq.base = 1000;
    static const double sim[L] = {0.5, 0.9, 0.91, 0.7, 0.92, 0.6};
    memcpy(s->s, sim, sizeof sim);
    s->ps_in = s->s;
    s->nl = L;
    s->kk = 3;
    memset(s->bud, SENTINEL, sizeof s->bud);
    memset(s->cls, SENTINEL, sizeof s->cls);
}

static attn_status run_call(setup *s)
{
    attn_kvcache *fresh = NULL;
    attn_status st;
    switch (s->what) {
    case CREATE:
        st = attn_kvcache_create(s->be, &s->d, s->pout ? &fresh : NULL);
        attn_kvcache_destroy(fresh);
        return st;
    case APPEND:
        return attn_kvcache_append(s->c, s->pk, s->pv, s->pos0);
    case ATTEND:
        return attn_kvcache_attend(s->c, s->pq, s->pos0, s->po);
    case STEP:
        return attn_kvcache_step(s->c, s->pq, s->pk, s->pv, s->pos0, s->po);
    case ADD_SCORES:
        return attn_kvcache_add_scores(s->c, s->ps);
    case SET_BUDGET:
        return attn_kvcache_set_budget(s->c, s->budget, s->recent);
    case GET_POS:
        return attn_kvcache_get_positions(s->c, s->ps);
    case GET_SCORES:
        return attn_kvcache_get_scores(s->c, s->ps);
    case INFO:
        return attn_kvcache_get_info(s->c, NULL);
    case SQ_BUDGETS:
        return attn_kvcache_squeeze_budgets(&s->sq, s->ps_in, s->nl, s->bud, s->cls);
    case KMEANS:
        return attn_kvcache_kmeans1d(s->ps_in, s->nl, s->kk, s->cls, NULL);
    case SIMILARITY:
        return attn_kvcache_squeeze_similarity(s->pk, s->pv, s->ps_in);
    }
    return ATTN_ERR_INTERNAL;
}

/* What a cache shows: info, positions, scores, and the K and V rows of its slots. */
typedef struct snapshot {
    attn_kvcache_info in;
    int64_t pos[16 * HKV];
    float score[16 * HKV];
    unsigned char k[16 * HKV * DK * 4], v[16 * HKV * DV * 4];
} snapshot;

static void read_rows(const attn_tensor *t, unsigned char *dst)
{
    const size_t n = (size_t)(t->shape[1] * t->shape[2] * t->shape[3]) * 4;
    if (t->data)
        memcpy(dst, t->data, n);
    else
        ck_assert_int_eq(attn_buffer_read(t->buffer, 0, dst, n), ATTN_OK);
}

static void snap(const attn_kvcache *c, snapshot *x)
{
    memset(x, 0, sizeof *x);
    ck_assert_int_eq(attn_kvcache_get_info(c, &x->in), ATTN_OK);
    ck_assert(x->in.slots <= 16);
    attn_tensor tp = attn_tensor_bshd(x->pos, ATTN_I64, 1, x->in.slots, HKV, 1);
    attn_tensor ts = attn_tensor_bshd(x->score, ATTN_F32, 1, x->in.slots, HKV, 1);
    ck_assert_int_eq(attn_kvcache_get_positions(c, &tp), ATTN_OK);
    ck_assert_int_eq(attn_kvcache_get_scores(c, &ts), ATTN_OK);
    attn_tensor k, v;
    ck_assert_int_eq(attn_kvcache_get_views(c, &k, &v), ATTN_OK);
    read_rows(&k, x->k);
    read_rows(&v, x->v);
}

/* ---- the rows ---------------------------------------------------------------------------- */

static void create_budget0(setup *s)
{
    s->what = CREATE;
    s->d.policy = ATTN_KV_SLIDING;
    s->d.budget = 0;
}
static void create_stream_sinks(setup *s)
{
    s->what = CREATE;
    s->d.policy = ATTN_KV_STREAMING;
    s->d.budget = 4;
    s->d.sinks = 4;
}
static void create_recent_big(setup *s) { s->what = CREATE; s->d.recent = 5; }
static void create_recent_neg(setup *s) { s->what = CREATE; s->d.recent = -2; }
static void create_sinks_neg(setup *s) { s->what = CREATE; s->d.sinks = -1; }
static void create_heads0(setup *s) { s->what = CREATE; s->d.kv_heads = 0; }
static void create_dim0(setup *s) { s->what = CREATE; s->d.head_dim_v = 0; }
static void create_dtype(setup *s) { s->what = CREATE; s->d.dtype = ATTN_I32; }
static void create_policy(setup *s) { s->what = CREATE; s->d.policy = (attn_kv_policy)4; }
static void create_positions(setup *s)
{
    s->what = CREATE;
    s->d.attn.positions = (attn_kv_positions)3;
}
static void create_reserved(setup *s) { s->what = CREATE; s->d.reserved[7] = 1; }
static void create_attn_reserved(setup *s) { s->what = CREATE; s->d.attn.reserved[0] = 1; }
static void create_slots_neg(setup *s) { s->what = CREATE; s->d.initial_slots = -1; }
static void create_out_null(setup *s) { s->what = CREATE; s->pout = NULL; }
static void append_pos_same(setup *s) { s->what = APPEND; s->pos0 = 2; }
static void append_pos_neg(setup *s) { s->what = APPEND; s->pos0 = -1; }
static void append_pos_overflow(setup *s) { s->what = APPEND; s->pos0 = INT64_MAX; }
static void append_k_null(setup *s) { s->what = APPEND; s->pk = NULL; }
static void append_v_null(setup *s) { s->what = APPEND; s->pv = NULL; }
static void append_k_heads(setup *s) { s->what = APPEND; s->k.shape[2] = 1; }
static void append_k_dim(setup *s) { s->what = APPEND; s->k.shape[3] = DK - 1; }
static void append_v_dim(setup *s) { s->what = APPEND; s->v.shape[3] = DK; }
static void append_v_len(setup *s) { s->what = APPEND; s->k.shape[1] = 2; }
static void append_batch(setup *s) { s->what = APPEND; s->k.shape[0] = s->v.shape[0] = 2; }
static void append_k_dtype(setup *s) { s->what = APPEND; s->k.dtype = ATTN_I32; }
static void append_k_buffer(setup *s)
{
    s->what = APPEND;
    ck_assert_int_eq(attn_buffer_alloc(s->be, sizeof s->kd, &s->buf), ATTN_OK);
    s->k.data = NULL;
    s->k.buffer = s->buf;
}
static void attend_q_null(setup *s) { s->what = ATTEND; s->pq = NULL; }
static void attend_qpos_neg(setup *s) { s->what = ATTEND; s->pos0 = -1; }
static void attend_q_dim(setup *s) { s->what = ATTEND; s->q.shape[3] = DK - 1; }
static void attend_out_heads(setup *s) { s->what = ATTEND; s->out.shape[2] = HQ - 1; }
static void step_k_dim(setup *s) { s->what = STEP; s->k.shape[3] = DK + 1; }
static void step_pos_same(setup *s) { s->what = STEP; s->pos0 = 1; }
/* the append succeeds, the attention refuses q: the step takes the append back */
static void step_q_dim(setup *s) { s->what = STEP; s->q.shape[3] = DK - 1; }
static void step_out_dtype(setup *s) { s->what = STEP; s->out.dtype = ATTN_I64; }
static void scores_slots(setup *s) { s->what = ADD_SCORES; s->score.shape[1] = N + 1; }
static void scores_dtype(setup *s) { s->what = ADD_SCORES; s->score.dtype = ATTN_F16; }
static void scores_nan(setup *s) { s->what = ADD_SCORES; s->sd[3] = NAN; }
static void scores_null(setup *s) { s->what = ADD_SCORES; s->ps = NULL; }
static void budget_zero(setup *s) { s->what = SET_BUDGET; s->budget = 0; }
static void budget_recent(setup *s) { s->what = SET_BUDGET; s->budget = 3; s->recent = 4; }
static void getpos_dtype(setup *s) { s->what = GET_POS; s->pos.dtype = ATTN_I32; s->ps = &s->pos; }
static void getpos_slots(setup *s) { s->what = GET_POS; s->pos.shape[1] = N - 1; s->ps = &s->pos; }
static void getscores_overlap(setup *s) { s->what = GET_SCORES; s->score.stride[1] = 0; }
static void info_null(setup *s) { s->what = INFO; }
static void sq_p_zero(setup *s) { s->what = SQ_BUDGETS; s->sq.p = 0; }
static void sq_p_big(setup *s) { s->what = SQ_BUDGETS; s->sq.p = 0.3; }
static void sq_p_nan(setup *s) { s->what = SQ_BUDGETS; s->sq.p = NAN; }
static void sq_binit(setup *s) { s->what = SQ_BUDGETS; s->sq.b_init = 0; s->sq.p = 0; }
static void sq_base(setup *s) { s->what = SQ_BUDGETS; s->sq.base = 0; }
static void sq_min(setup *s) { s->what = SQ_BUDGETS; s->sq.min_budget = 0; }
static void sq_max(setup *s) { s->what = SQ_BUDGETS; s->sq.max_budget = 0; }
static void sq_layers(setup *s) { s->what = SQ_BUDGETS; s->nl = 0; }
static void sq_s_nan(setup *s) { s->what = SQ_BUDGETS; s->s[2] = NAN; }
static void sq_s_null(setup *s) { s->what = SQ_BUDGETS; s->ps_in = NULL; }
static void sq_reserved(setup *s) { s->what = SQ_BUDGETS; s->sq.reserved[3] = 9; }
static void sq_round(setup *s) { s->what = SQ_BUDGETS; s->sq.round_bf16 = 2; }
static void km_k_big(setup *s) { s->what = KMEANS; s->kk = 7; }
static void km_k_zero(setup *s) { s->what = KMEANS; s->kk = 0; }
static void km_len(setup *s) { s->what = KMEANS; s->nl = 0; }
static void km_nan(setup *s) { s->what = KMEANS; s->s[0] = INFINITY; }
static void km_null(setup *s) { s->what = KMEANS; s->ps_in = NULL; }
static void sim_shape(setup *s) { s->what = SIMILARITY; s->v.shape[3] = DK; s->v.shape[2] = 1; }
static void sim_null(setup *s) { s->what = SIMILARITY; s->ps_in = NULL; }
static void sim_buffer(setup *s)
{
    append_k_buffer(s); /* x in a buffer, y on the host */
    s->what = SIMILARITY;
    s->v = s->k;
    s->v.buffer = NULL;
    s->v.data = s->kd;
}

typedef ATTN_BAD_ROW(setup) bad_row;
static const bad_row rows[] = {
    {"create: sliding budget 0", create_budget0, ATTN_ERR_INVALID_ARGUMENT},
    {"create: StreamingLLM budget = sinks", create_stream_sinks, ATTN_ERR_INVALID_ARGUMENT},
    {"create: H2O recent > budget", create_recent_big, ATTN_ERR_INVALID_ARGUMENT},
    {"create: H2O recent -2", create_recent_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"create: sinks -1", create_sinks_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"create: kv_heads 0", create_heads0, ATTN_ERR_SHAPE},
    {"create: head_dim_v 0", create_dim0, ATTN_ERR_SHAPE},
    {"create: dtype i32", create_dtype, ATTN_ERR_DTYPE},
    {"create: policy 4", create_policy, ATTN_ERR_INVALID_ARGUMENT},
    {"create: positions 3", create_positions, ATTN_ERR_INVALID_ARGUMENT},
    {"create: reserved", create_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"create: attn.reserved", create_attn_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"create: initial_slots -1", create_slots_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"create: out NULL", create_out_null, ATTN_ERR_NULL_POINTER},
    {"append: position not increasing", append_pos_same, ATTN_ERR_INVALID_ARGUMENT},
    {"append: position -1", append_pos_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"append: pos0 + n overflows", append_pos_overflow, ATTN_ERR_INVALID_ARGUMENT},
    {"append: k NULL", append_k_null, ATTN_ERR_NULL_POINTER},
    {"append: v NULL", append_v_null, ATTN_ERR_NULL_POINTER},
    {"append: k heads", append_k_heads, ATTN_ERR_SHAPE},
    {"append: k dim", append_k_dim, ATTN_ERR_SHAPE},
    {"append: v dim", append_v_dim, ATTN_ERR_SHAPE},
    {"append: v tokens != k tokens", append_v_len, ATTN_ERR_SHAPE},
    {"append: batch 2", append_batch, ATTN_ERR_SHAPE},
    {"append: k dtype i32", append_k_dtype, ATTN_ERR_DTYPE},
    {"append: k in a buffer", append_k_buffer, ATTN_ERR_BUFFER},
    {"attend: q NULL", attend_q_null, ATTN_ERR_NULL_POINTER},
    {"attend: qpos0 -1", attend_qpos_neg, ATTN_ERR_INVALID_ARGUMENT},
    {"attend: q dim", attend_q_dim, ATTN_ERR_SHAPE},
    {"attend: out heads", attend_out_heads, ATTN_ERR_SHAPE},
    {"step: k dim", step_k_dim, ATTN_ERR_SHAPE},
    {"step: position not increasing", step_pos_same, ATTN_ERR_INVALID_ARGUMENT},
    {"step: q dim (append taken back)", step_q_dim, ATTN_ERR_SHAPE},
    {"step: out dtype (append taken back)", step_out_dtype, ATTN_ERR_DTYPE},
    {"add_scores: slots", scores_slots, ATTN_ERR_SHAPE},
    {"add_scores: dtype f16", scores_dtype, ATTN_ERR_DTYPE},
    {"add_scores: NaN", scores_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"add_scores: NULL", scores_null, ATTN_ERR_NULL_POINTER},
    {"set_budget: 0", budget_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"set_budget: recent > budget", budget_recent, ATTN_ERR_INVALID_ARGUMENT},
    {"get_positions: dtype i32", getpos_dtype, ATTN_ERR_DTYPE},
    {"get_positions: slots", getpos_slots, ATTN_ERR_SHAPE},
    {"get_scores: overlapping rows", getscores_overlap, ATTN_ERR_STRIDE},
    {"get_info: NULL", info_null, ATTN_ERR_NULL_POINTER},
    {"squeeze: p 0", sq_p_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"squeeze: p > b_init", sq_p_big, ATTN_ERR_INVALID_ARGUMENT},
    {"squeeze: p NaN", sq_p_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"squeeze: b_init 0", sq_binit, ATTN_ERR_INVALID_ARGUMENT},
    {"squeeze: base 0", sq_base, ATTN_ERR_INVALID_ARGUMENT},
    {"squeeze: min_budget 0", sq_min, ATTN_ERR_INVALID_ARGUMENT},
    {"squeeze: max_budget < min_budget", sq_max, ATTN_ERR_INVALID_ARGUMENT},
    {"squeeze: L 0", sq_layers, ATTN_ERR_SHAPE},
    {"squeeze: s NaN", sq_s_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"squeeze: s NULL", sq_s_null, ATTN_ERR_NULL_POINTER},
    {"squeeze: reserved", sq_reserved, ATTN_ERR_INVALID_ARGUMENT},
    {"squeeze: round_bf16 2", sq_round, ATTN_ERR_INVALID_ARGUMENT},
    {"kmeans: k > distinct values", km_k_big, ATTN_ERR_INVALID_ARGUMENT},
    {"kmeans: k 0", km_k_zero, ATTN_ERR_INVALID_ARGUMENT},
    {"kmeans: L 0", km_len, ATTN_ERR_SHAPE},
    {"kmeans: x infinite", km_nan, ATTN_ERR_INVALID_ARGUMENT},
    {"kmeans: x NULL", km_null, ATTN_ERR_NULL_POINTER},
    {"similarity: shapes differ", sim_shape, ATTN_ERR_SHAPE},
    {"similarity: s NULL", sim_null, ATTN_ERR_NULL_POINTER},
    {"similarity: x in a buffer", sim_buffer, ATTN_ERR_BUFFER},
};
enum { N_ROWS = sizeof rows / sizeof rows[0] };

static void teardown(setup *s)
{
    attn_kvcache_destroy(s->c);
    attn_buffer_free(s->buf);
    attn_backend_close(s->be);
}

START_TEST(bad_row_fails)
{
    const bad_row *r = &rows[_i % N_ROWS];
    const char *backend = attn_bad_backend(_i / N_ROWS);
    if (!attn_bad_available(backend))
        return;
    setup *s = malloc(sizeof *s);
    snapshot *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    make_valid(s, backend);
    snap(s->c, before);
    r->mutate(s);
    attn_bad_expect(run_call(s), r->want, r->name, backend);
    snap(s->c, after);
    ck_assert_msg(memcmp(before, after, sizeof *before) == 0, "%s on %s: the cache changed",
                  r->name, backend);
    attn_bad_untouched(s->outd, sizeof s->outd, SENTINEL, r->name, "out");
    attn_bad_untouched(s->bud, sizeof s->bud, SENTINEL, r->name, "budget");
    attn_bad_untouched(s->cls, sizeof s->cls, SENTINEL, r->name, "cls");
    if (s->what == GET_POS)
        attn_bad_untouched(s->posd, sizeof s->posd, SENTINEL, r->name, "pos");
    teardown(s);
    free(s);
    free(before);
    free(after);
}
END_TEST

/* Each call of the valid set-up succeeds (so each row's failure is its own); a NULL cache is
 * fine for destroy. */
START_TEST(valid_calls_pass)
{
    const char *backend = attn_bad_backend(_i);
    if (!attn_bad_available(backend))
        return;
    setup *s = malloc(sizeof *s);
    for (call w = CREATE; w <= SIMILARITY; w++) {
        if (w == INFO)
            continue;
        make_valid(s, backend);
        s->what = w;
        if (w == GET_POS)
            s->ps = &s->pos;
        if (w == SIMILARITY) {
            s->v = s->k;
            s->ps_in = s->s;
        }
        ck_assert_msg(run_call(s) == ATTN_OK, "call %d on %s: %s", (int)w, backend,
                      attn_last_error());
        if (w == ATTEND || w == STEP)
            attn_bad_written(s->outd, HQ * DV, SENTINEL, backend, "out");
        teardown(s);
    }
    attn_kvcache_destroy(NULL);
    free(s);
}
END_TEST

int main(void)
{
    return attn_check_run(attn_bad_suite("kvcache_badinput", bad_row_fails, N_ROWS,
                                         valid_calls_pass));
}
