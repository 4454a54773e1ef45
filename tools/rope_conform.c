/* rope_conform.c - the conformance driver of RoPE (attn_conform.h): the tensors of a case (x
 * and out in BSHD, BHSD, a slice of packed qkv, or element-strided views; optional i32/i64
 * positions), their fills, the call through the public API, and the gold of out from the f64
 * reference with its condition numbers (docs/conformance.md, "RoPE"). Cases: rope_case.c;
 * built-in list: tests/cases/rope.cases. */
#include "attn_conform.h"

#include "attn_cases.h"
#include "attn_fill.h"
#include "attn_half.h"
#include "attn_rng.h"
#include "attn_tool_ops.h"
#include "rope_case.h"
#include "rope_ref.h"
#include "rope_tool.h"

#include <math.h>
#include <stdlib.h>

#define ROPE_STREAM_POS 16 /* RNG stream of the positions */
#define ROPE_OUT_PAD 5     /* fused view: output rows padded by 5 elements */
/* The angle term of the condition: an implementation computing the angle in f64 is off by
 * about |angle| 2^-52; this allows |angle| 2^-48 (docs/conformance.md, "RoPE"). */
#define ROPE_ANGLE_COND 0x1p-28
#define ROPE_N_ACC 4.0     /* the rotation's error budget in units of 8 u_c cond: 16 u_c */

_Static_assert(sizeof(attn_rope_case) <= ATTN_CASE_DATA_MAX, "attn_case holds attn_rope_case");

/* ---- tensors -------------------------------------------------------------------------------- */

/* x or out as the case's view puts it: element step `step` along dim, rows of `row` elements
 * per head, heads `heads` rows apart, the view starting `lead` elements in. */
static int buf_view(attn_conf_buf *b, attn_dtype dt, const attn_rope_case *c, int64_t step,
                    int64_t row, int64_t heads, int64_t lead, size_t guard)
{
    const int64_t shape[4] = {c->b, c->s, c->h, c->d};
    const int64_t st[4] = {c->s * heads * row, heads * row, row, step};
    return attn_conf_buf_make(b, dt, shape, st, lead, c->b * c->s * heads * row, guard);
}

static int rope_make(const void *cv, size_t gin, attn_conf_data *d)
{
    const attn_rope_case *c = cv;
    attn_conf_buf *x = attn_conf_add(d, "x", 0), *pos = attn_conf_add(d, "positions", 0);
    attn_conf_buf *o = attn_conf_add(d, "out", 1);
    const size_t gout = ATTN_CONF_GUARD_BYTES;
    int rc;
    switch (c->view) {
    case ATTN_ROPE_VIEW_BHSD:
        rc = attn_conf_buf_dense(x, c->dt_x, c->b, c->s, c->h, c->d, 1, gin) |
             attn_conf_buf_dense(o, c->dt_out, c->b, c->s, c->h, c->d, 1, gout);
        break;
    case ATTN_ROPE_VIEW_FUSED: /* x = the k heads [H, 2H) of [B, S, 3H, D] */
        rc = buf_view(x, c->dt_x, c, 1, c->d, 3 * c->h, c->h * c->d, gin) |
             buf_view(o, c->dt_out, c, 1, c->d + ROPE_OUT_PAD, c->h, 0, gout);
        break;
    case ATTN_ROPE_VIEW_DSTRIDE:
        rc = buf_view(x, c->dt_x, c, 2, 2 * c->d, c->h, 0, gin) |
             buf_view(o, c->dt_out, c, 3, 3 * c->d, c->h, 0, gout);
        break;
    default:
        rc = attn_conf_buf_dense(x, c->dt_x, c->b, c->s, c->h, c->d, 0, gin) |
             attn_conf_buf_dense(o, c->dt_out, c->b, c->s, c->h, c->d, 0, gout);
    }
    if (c->pos != ATTN_ROPE_POS_NONE) {
        const int bcast = c->pos == ATTN_ROPE_POS_I32B || c->pos == ATTN_ROPE_POS_I64B;
        const int i64 = c->pos == ATTN_ROPE_POS_I64 || c->pos == ATTN_ROPE_POS_I64B;
        rc |= attn_conf_buf_dense(pos, i64 ? ATTN_I64 : ATTN_I32, bcast ? 1 : c->b, c->s, 1, 1, 0,
                                  gin);
    }
    return rc;
}

static int rope_check(const void *cv, char *err, size_t errsize)
{
    const attn_rope_case *c = cv;
    const int i32 = c->pos == ATTN_ROPE_POS_I32 || c->pos == ATTN_ROPE_POS_I32B;
    if (i32 && c->pmax > ((int64_t)1 << 31))
        return attn_perr(err, errsize, "pmax=%lld does not fit i32 positions",
                         (long long)c->pmax);
    return 0;
}

/* x uniform in [-1, 1] (the q stream); positions uniform integers in [0, pmax). */
static void rope_fill(const void *cv, uint64_t seed, attn_conf_data *d)
{
    const attn_rope_case *c = cv;
    attn_fill_tensor(attn_conf_host_view(d, "x"), ATTN_FILL_UNIFORM, seed, ATTN_FILL_Q);
    const attn_tensor *p = attn_conf_host_view(d, "positions");
    for (int64_t b = 0; p && b < p->shape[0]; b++)
        for (int64_t s = 0; s < p->shape[1]; s++) {
            const uint64_t v = attn_rng_bits(seed, ROPE_STREAM_POS, (uint64_t)(b * c->s + s));
            attn_store_f64(p->data, p->dtype, b * p->stride[0] + s * p->stride[1],
                           (double)(v % (uint64_t)c->pmax));
        }
}

static double rope_elems(const void *cv)
{
    return 3.0 * attn_rope_case_elems(cv) + (double)((const attn_rope_case *)cv)->s;
}

static double rope_cost(const void *cv)
{
    return 6.0 * attn_rope_case_elems(cv); /* 4 products and 2 sums per pair, per element */
}

/* ---- the call ------------------------------------------------------------------------------- */

static attn_status rope_call(attn_backend *be, const void *cv, const attn_conf_data *d,
                             attn_conf_call what, char *impl, size_t n)
{
    attn_rope_desc desc = attn_rope_case_desc(cv);
    desc.positions = attn_conf_run_view(d, "positions");
    const attn_tensor *x = attn_conf_run_view(d, "x"), *o = attn_conf_run_view(d, "out");
    if (what == ATTN_CONF_IMPL)
        return attn_rope_impl_name(be, &desc, x, o, impl, n);
    return attn_rope_forward(be, &desc, x, o);
}

/* ---- gold ----------------------------------------------------------------------------------- */

/* Condition of each element: a rotated one is off by about u (|x_a| + |x_c|) per unit of
 * error in its cos, sin, angle or products; the angle of a far position adds |angle| 2^-52
 * in f64 implementations (the ROPE_ANGLE_COND term). A copied one is |x|. */
static void rope_conditions(const attn_rope_problem *p, double *cond)
{
    for (int64_t r = 0; r < p->B * p->S * p->H; r++) {
        const int64_t h = r % p->H, s = r / p->H % p->S, b = r / (p->H * p->S);
        const double pos = attn_ref_rope_pos(p, b, s);
        double *cr = cond + r * p->D;
        for (int64_t d = 0; d < p->D; d++)
            cr[d] = fabs(attn_load_f64(p->x.ptr, p->x.dtype, attn_at(&p->x, b, s, h, d)));
        for (int64_t i = 0; i < p->npairs; i++) {
            int64_t a, c;
            attn_ref_rope_pair(p->layout, p->rot, i, &a, &c);
            const double ang = fabs(pos * attn_ref_rope_freq(p->theta, p->rot, i));
            cr[a] = cr[c] = (cr[a] + cr[c]) * (1.0 + ang * ROPE_ANGLE_COND);
        }
    }
}

static int rope_gold(const void *cv, const attn_conf_data *d, attn_conf_gold *g, int *ng)
{
    const attn_rope_case *c = cv;
    attn_rope_desc desc = attn_rope_case_desc(c);
    desc.positions = attn_conf_host_view(d, "positions");
    attn_rope_problem p;
    if (attn_rope_validate(&desc, attn_conf_host_view(d, "x"), attn_conf_host_view(d, "out"),
                           &p) != ATTN_OK)
        return 1;
    attn_conf_gold *go = &g[0];
    *go = (attn_conf_gold){.name = "out", .rank = 4, .order = {0, 1, 2, 3}};
    if (attn_conf_gold_alloc(go, p.B * p.S * p.H * p.D, 0) ||
        attn_ref_rope(&p, 0, go->gold) != ATTN_OK || attn_ref_rope(&p, 1, go->lowp) != ATTN_OK)
        return 2;
    for (int64_t e = 0; e < go->n; e++) { /* naive float code stores into out's dtype */
        unsigned char tmp[4];
        attn_store_f64(tmp, c->dt_out, 0, go->lowp[e]);
        go->lowp[e] = attn_load_f64(tmp, c->dt_out, 0);
    }
    rope_conditions(&p, go->cond);
    attn_policy_setup(&go->policy, c->dt_out, 0);
    go->policy.n_acc = ROPE_N_ACC;
    *ng = 1;
    return 0;
}

/* ---- the driver ----------------------------------------------------------------------------- */

static void case_default(void *c)
{
    attn_rope_case_default(c);
}

static int case_token(char *tok, void *c, char *err, size_t errsize)
{
    return attn_rope_case_token(tok, c, err, errsize);
}

static int case_format(const void *c, char *buf, size_t size)
{
    return attn_rope_case_format(c, buf, size);
}

static unsigned features(const void *c)
{
    return attn_rope_case_features(c);
}

static const attn_conform_driver attn_rope_driver = {
    .stem = "rope",
    .case_default = case_default,
    .case_token = case_token,
    .case_check = rope_check,
    .case_format = case_format,
    .features = features,
    .feature_names = attn_rope_feature_names,
    .n_features = ATTN_ROPE_FEAT_COUNT,
    .elems = rope_elems,
    .cost = rope_cost,
    .make = rope_make,
    .fill = rope_fill,
    .call = rope_call,
    .gold = rope_gold,
};

/* ---- the op in the `attn` command ------------------------------------------------------------ */

const attn_tool_op attn_rope_tool = {
    .stem = "rope",
    .summary = "rotary position embedding (half-split or interleaved pairs, partial rotation)",
    .conform = &attn_rope_driver,
    .run = attn_rope_cmd_run,
    .run_help = attn_rope_run_help,
    .run_opts_help = attn_args_rope_help,
    .bench = attn_rope_cmd_bench,
};
