/* linear_conform.c - the conformance driver of kernel linear attention (attn_conform.h): the
 * tensors of a case (q, k, v, state_in, z_in; out, state_out, z_out), their fills, the call
 * through the public API, and the gold of every output from the f64 chunked reference with
 * its condition scales, the float recurrent form as the working-precision result, and the
 * policy set-up (docs/conformance.md, "Linear attention"); a backward case's tensors and gold
 * are linear_backward_conform.c's. Cases: linear_case.c; built-in lists:
 * tests/cases/linear.cases and linear_backward.cases. */
#include "attn_conform.h"

#include "attn_cases.h"
#include "attn_fill.h"
#include "attn_half.h"
#include "attn_tool_ops.h"
#include "linear_case.h"
#include "linear_conform.h"
#include "linear_ref.h"
#include "linear_tool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GOLD_CHUNK 64        /* chunk length of the f64 gold (any length gives the same sums) */
#define FILL_STATE ((attn_fill_id)6) /* RNG streams of state_in and z_in */
#define FILL_Z ((attn_fill_id)7)
#define STATE_FILL_SCALE 4.0 /* a state as from a few earlier tokens */

_Static_assert(sizeof(attn_linear_case) <= ATTN_CASE_DATA_MAX, "attn_case holds the case");

static int64_t df_of(const attn_linear_case *c)
{
    return attn_linear_features(c->feature, c->dk);
}

/* ---- tensors -------------------------------------------------------------------------------- */

int attn_linear_conf_qkv_bufs(const attn_linear_case *c, attn_conf_buf *q, attn_conf_buf *k,
                              attn_conf_buf *v, size_t guard)
{
    int rc = attn_conf_buf_dense(q, c->dt_q, c->b, c->s, c->hq, c->dk, c->bhsd, guard);
    rc |= attn_conf_buf_dense(k, c->dt_kv, c->b, c->s, c->hkv, c->dk, c->bhsd, guard);
    rc |= attn_conf_buf_dense(v, c->dt_kv, c->b, c->s, c->hkv, c->dv, c->bhsd, guard);
    return rc;
}

int attn_linear_conf_state_bufs(const attn_linear_case *c, int bit, attn_conf_buf *s,
                                attn_conf_buf *z, size_t guard)
{
    const int64_t df = df_of(c);
    int rc = 0;
    if (c->state & bit)
        rc |= attn_conf_buf_dense(s, ATTN_F32, c->b, c->hkv, df, c->dv, 0, guard);
    if (c->normalize && (c->state & bit))
        rc |= attn_conf_buf_dense(z, ATTN_F32, c->b, c->hkv, df, 1, 0, guard);
    return rc;
}

static int linear_make(const void *cv, size_t gin, attn_conf_data *d)
{
    const attn_linear_case *c = cv;
    attn_conf_buf *q = attn_conf_add(d, "q", 0), *k = attn_conf_add(d, "k", 0);
    attn_conf_buf *v = attn_conf_add(d, "v", 0), *si = attn_conf_add(d, "state_in", 0);
    attn_conf_buf *zi = attn_conf_add(d, "z_in", 0);
    int rc = attn_linear_conf_qkv_bufs(c, q, k, v, gin);
    rc |= attn_linear_conf_state_bufs(c, ATTN_LINEAR_STATE_IN, si, zi, gin);
    if (c->backward) /* the gradients in place of out and the final state */
        return rc | attn_linear_backward_make(c, gin, d);
    attn_conf_buf *o = attn_conf_add(d, "out", 1);
    attn_conf_buf *so = attn_conf_add(d, "state_out", 1), *zo = attn_conf_add(d, "z_out", 1);
    rc |= attn_conf_buf_dense(o, c->dt_out, c->b, c->s, c->hq, c->dv, c->bhsd,
                              ATTN_CONF_GUARD_BYTES);
    return rc | attn_linear_conf_state_bufs(c, ATTN_LINEAR_STATE_OUT, so, zo,
                                            ATTN_CONF_GUARD_BYTES);
}

/* A dense f32 state view: element i (row-major) from stream id, times STATE_FILL_SCALE;
 * z is a sum of features, positive for the positive maps: its magnitude. */
static void fill_state(const attn_tensor *t, uint64_t seed, attn_fill_id id, int positive)
{
    if (!t)
        return;
    const int64_t n = t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3];
    for (int64_t i = 0; i < n; i++) {
        double x = STATE_FILL_SCALE * attn_fill_value(ATTN_FILL_UNIFORM, seed, id, i);
        ((float *)t->data)[i] = (float)(positive ? fabs(x) : x);
    }
}

static void linear_fill(const void *cv, uint64_t seed, attn_conf_data *d)
{
    const attn_linear_case *c = cv;
    attn_fill_tensor(attn_conf_host_view(d, "q"), ATTN_FILL_UNIFORM, seed, ATTN_FILL_Q);
    attn_fill_tensor(attn_conf_host_view(d, "k"), ATTN_FILL_UNIFORM, seed, ATTN_FILL_K);
    attn_fill_tensor(attn_conf_host_view(d, "v"), ATTN_FILL_UNIFORM, seed, ATTN_FILL_V);
    fill_state(attn_conf_host_view(d, "state_in"), seed, FILL_STATE, 0);
    fill_state(attn_conf_host_view(d, "z_in"), seed, FILL_Z, 1);
    attn_linear_plant(c->special, attn_conf_host_view(d, "k"), attn_conf_host_view(d, "v"));
    if (c->backward)
        attn_linear_backward_fill(seed, d);
}

static double linear_elems(const void *cv)
{
    const attn_linear_case *c = cv;
    const double d = (double)(c->dk > c->dv ? c->dk : c->dv);
    return (double)c->b * ((double)c->s * (double)(c->hq + c->hkv) * d +
                           (double)c->hkv * (double)df_of(c) * ((double)c->dv + 1.0));
}

/* ---- the call ------------------------------------------------------------------------------- */

static attn_linear_state state_of(const attn_conf_data *d,
                                  const attn_tensor *(*view)(const attn_conf_data *,
                                                             const char *))
{
    attn_linear_state st = {view(d, "state_in"), view(d, "z_in"), view(d, "state_out"),
                            view(d, "z_out")};
    return st;
}

static attn_status linear_call(attn_backend *be, const void *cv, const attn_conf_data *d,
                               attn_conf_call what, char *impl, size_t n)
{
    const attn_linear_case *c = cv;
    float *dv = malloc(sizeof(float) * (size_t)c->hkv);
    if (!dv)
        return ATTN_ERR_OUT_OF_MEMORY;
    const attn_linear_desc desc = attn_linear_case_desc(c, dv);
    const attn_linear_state st = state_of(d, attn_conf_run_view);
    const attn_tensor *q = attn_conf_run_view(d, "q"), *k = attn_conf_run_view(d, "k");
    const attn_tensor *v = attn_conf_run_view(d, "v"), *o = attn_conf_run_view(d, "out");
    attn_status s = c->backward ? attn_linear_backward_call(be, &desc, d, what, impl, n)
                    : what == ATTN_CONF_IMPL
                        ? attn_linear_impl_name(be, &desc, q, k, v, o, &st, impl, n)
                        : attn_linear_forward(be, &desc, q, k, v, o, &st);
    free(dv);
    return s;
}

/* ---- gold ----------------------------------------------------------------------------------- */

/* Gold, conditions and lowp of every output of the validated problem. */
static int compute_gold(const attn_linear_problem *p, const attn_linear_case *c,
                        attn_conf_gold *g, int ng)
{
    const int st = ng > 1, z = ng > 2;
    attn_linear_ref_out gold = {g[0].gold, st ? g[1].gold : NULL, z ? g[2].gold : NULL,
                                g[0].cond, st ? g[1].cond : NULL, z ? g[2].cond : NULL};
    attn_linear_ref_out lowp = {g[0].lowp, st ? g[1].lowp : NULL, z ? g[2].lowp : NULL,
                                NULL, NULL, NULL};
    if (attn_ref_linear_chunked(p, GOLD_CHUNK, &gold) != ATTN_OK ||
        attn_ref_linear_recurrent(p, ATTN_REF_F32, &lowp) != ATTN_OK)
        return 2;
    attn_conf_round_lowp(&g[0], c->dt_out);
    /* the longest sums: Df products per weight, then every key a row or state sees */
    attn_policy_setup(&g[0].policy, c->dt_out, 0);
    g[0].policy.n_acc = (double)(p->Df + p->S + 1);
    for (int i = 1; i < ng; i++) {
        attn_policy_setup_state(&g[i].policy);
        g[i].policy.n_acc = (double)(p->S + 1);
    }
    return 0;
}

static int linear_gold(const void *cv, const attn_conf_data *d, attn_conf_gold *g, int *ng)
{
    const attn_linear_case *c = cv;
    float *dv = malloc(sizeof(float) * (size_t)c->hkv);
    if (!dv)
        return 2;
    const attn_linear_desc desc = attn_linear_case_desc(c, dv);
    if (c->backward) {
        const int rc = attn_linear_backward_gold(c, &desc, d, g, ng);
        free(dv);
        return rc;
    }
    const attn_linear_state st = state_of(d, attn_conf_host_view);
    attn_linear_problem p;
    attn_status s = attn_linear_validate(&desc, attn_conf_host_view(d, "q"),
                                         attn_conf_host_view(d, "k"), attn_conf_host_view(d, "v"),
                                         attn_conf_host_view(d, "out"), &st, &p);
    free(dv);
    if (s != ATTN_OK)
        return 1;
    const int64_t ns = p.B * p.Hkv * p.Df;
    int n = 1, rc = 0;
    g[0] = (attn_conf_gold){.name = "out", .rank = 4, .order = {0, 1, 2, 3}};
    rc |= attn_conf_gold_alloc(&g[0], p.B * p.S * p.Hq * p.Dv, 0);
    if (p.state_out.t) {
        g[n] = (attn_conf_gold){.name = "state_out", .rank = 4, .order = {0, 1, 2, 3}};
        rc |= attn_conf_gold_alloc(&g[n++], ns * p.Dv, 0);
    }
    if (p.z_out.t) {
        g[n] = (attn_conf_gold){.name = "z_out", .rank = 3, .order = {0, 1, 2, 3}};
        rc |= attn_conf_gold_alloc(&g[n++], ns, 0);
    }
    *ng = n;
    rc = rc ? 2 : compute_gold(&p, c, g, n);
    attn_linear_problem_release(&p);
    return rc;
}

/* ---- the driver ----------------------------------------------------------------------------- */

static void case_default(void *c)
{
    attn_linear_case_default(c);
}

static int case_token(char *tok, void *c, char *err, size_t errsize)
{
    return attn_linear_case_token(tok, c, err, errsize);
}

static int case_check(const void *c, char *err, size_t errsize)
{
    return attn_linear_case_check(c, err, errsize);
}

static int case_format(const void *c, char *buf, size_t size)
{
    return attn_linear_case_format(c, buf, size);
}

static unsigned features(const void *c)
{
    return attn_linear_case_features(c);
}

static double cost(const void *c)
{
    return attn_linear_case_cost(c);
}

static const attn_conform_driver attn_linear_driver = {
    .stem = "linear",
    .case_default = case_default,
    .case_token = case_token,
    .case_check = case_check,
    .case_format = case_format,
    .features = features,
    .feature_names = attn_linear_feature_names,
    .n_features = ATTN_LFEAT_COUNT,
    .elems = linear_elems,
    .cost = cost,
    .make = linear_make,
    .fill = linear_fill,
    .call = linear_call,
    .gold = linear_gold,
};

const attn_tool_op attn_linear_tool = {
    .stem = "linear",
    .summary = "kernel linear attention (feature maps, normaliser, decay, recurrent state)",
    .conform = &attn_linear_driver,
    .run = attn_linear_cmd_run,
    .run_help = attn_linear_run_help,
    .run_opts_help = attn_args_linear_help,
#ifdef ATTN_HAVE_CPU
    .bench = attn_linear_cmd_bench,
#endif
};
