/* linear_backward_conform.c - the backward cases of the linear attention conformance driver:
 * the gradient tensors (dout and the final state's gradients in; dq, dk, dv and the initial
 * state's gradients out), the call of attn_linear_backward, and the gold of every gradient from
 * the f64 chain rule of reference/linear_backward.c with its magnitudes as the condition
 * scales and the same code in float working precision as the calibration yardstick.
 * docs/conformance.md, "Linear attention and RATTENTION backward", states the constants. */
#include "linear_conform.h"

#include "attn_fill.h"
#include "attn_half.h"
#include "linear_ref.h"

#include <math.h>
#include <stdlib.h>

/* Gate 4's F for dq, dk, dv: the chunked backward regroups the sums of the quadratic chain rule
 * (states across chunks, BLIS's FMA order), as the forward does (F 4 for out) but through two
 * products more; the state gradients take attn_policy_setup_state's 16. */
#define CALIB_GRAD 8.0

enum { G_DQ, G_DK, G_DV, G_DS, G_DZ, G_N };
static const char *const grad_names[G_N] = {"dq", "dk", "dv", "d_state_in", "d_z_in"};

int attn_linear_backward_make(const attn_linear_case *c, size_t gin, attn_conf_data *d)
{
    const size_t go = ATTN_CONF_GUARD_BYTES;
    attn_conf_buf *dout = attn_conf_add(d, "dout", 0);
    attn_conf_buf *dso = attn_conf_add(d, "d_state_out", 0), *dzo = attn_conf_add(d, "d_z_out", 0);
    attn_conf_buf *dq = attn_conf_add(d, "dq", 1), *dk = attn_conf_add(d, "dk", 1);
    attn_conf_buf *dv = attn_conf_add(d, "dv", 1), *dsi = attn_conf_add(d, "d_state_in", 1);
    attn_conf_buf *dzi = attn_conf_add(d, "d_z_in", 1);
    int rc = attn_conf_buf_dense(dout, c->dt_out, c->b, c->s, c->hq, c->dv, c->bhsd, gin);
    rc |= attn_linear_conf_state_bufs(c, ATTN_LINEAR_STATE_OUT, dso, dzo, gin);
    rc |= attn_linear_conf_qkv_bufs(c, dq, dk, dv, go);
    return rc | attn_linear_conf_state_bufs(c, ATTN_LINEAR_STATE_IN, dsi, dzi, go);
}

/* A dense f32 gradient view, uniform in [-1, 1] from stream id. */
static void fill_dense(const attn_tensor *t, uint64_t seed, attn_fill_id id)
{
    if (!t)
        return;
    const int64_t n = t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3];
    for (int64_t i = 0; i < n; i++)
        ((float *)t->data)[i] = (float)attn_fill_value(ATTN_FILL_UNIFORM, seed, id, i);
}

void attn_linear_backward_fill(uint64_t seed, attn_conf_data *d)
{
    attn_fill_dout(attn_conf_host_view(d, "dout"), seed);
    fill_dense(attn_conf_host_view(d, "d_state_out"), seed, ATTN_LINEAR_FILL_DSTATE);
    fill_dense(attn_conf_host_view(d, "d_z_out"), seed, ATTN_LINEAR_FILL_DZ);
}

static attn_linear_grads grads_of(const attn_conf_data *d,
                                  const attn_tensor *(*view)(const attn_conf_data *,
                                                             const char *))
{
    return (attn_linear_grads){.dq = view(d, "dq"), .dk = view(d, "dk"), .dv = view(d, "dv"),
                               .d_state_in = view(d, "d_state_in"),
                               .d_z_in = view(d, "d_z_in"),
                               .d_state_out = view(d, "d_state_out"),
                               .d_z_out = view(d, "d_z_out")};
}

static attn_linear_state state_of(const attn_conf_data *d,
                                  const attn_tensor *(*view)(const attn_conf_data *,
                                                             const char *))
{
    return (attn_linear_state){view(d, "state_in"), view(d, "z_in"), NULL, NULL};
}

attn_status attn_linear_backward_call(attn_backend *be, const attn_linear_desc *desc,
                                      const attn_conf_data *d, attn_conf_call what, char *impl,
                                      size_t n)
{
    const attn_linear_grads g = grads_of(d, attn_conf_run_view);
    const attn_linear_state st = state_of(d, attn_conf_run_view);
    const attn_tensor *q = attn_conf_run_view(d, "q"), *k = attn_conf_run_view(d, "k");
    const attn_tensor *v = attn_conf_run_view(d, "v"), *dout = attn_conf_run_view(d, "dout");
    if (what == ATTN_CONF_IMPL)
        return attn_linear_backward_impl_name(be, desc, q, k, v, &st, dout, &g, impl, n);
    return attn_linear_backward(be, desc, q, k, v, &st, dout, &g);
}

/* Gold with magnitudes (f64) and lowp (float) of the nt gradients present. */
static int run_reference(const attn_linear_problem *p, attn_conf_gold *g, const int *at)
{
#define ARR(t, f) (at[t] >= 0 ? g[at[t]].f : NULL)
    const attn_linear_ref_grads gold = {ARR(G_DQ, gold), ARR(G_DK, gold), ARR(G_DV, gold),
                                        ARR(G_DS, gold), ARR(G_DZ, gold), ARR(G_DQ, cond),
                                        ARR(G_DK, cond), ARR(G_DV, cond), ARR(G_DS, cond),
                                        ARR(G_DZ, cond)};
    const attn_linear_ref_grads low = {ARR(G_DQ, lowp), ARR(G_DK, lowp), ARR(G_DV, lowp),
                                       ARR(G_DS, lowp), ARR(G_DZ, lowp), NULL, NULL, NULL,
                                       NULL, NULL};
#undef ARR
    return attn_ref_linear_backward(p, ATTN_REF_F64, &gold) != ATTN_OK ||
                   attn_ref_linear_backward(p, ATTN_REF_F32, &low) != ATTN_OK
               ? 2
               : 0;
}

/* Policy of each gradient: its dtype's rounding, its longest sum, gate 4's F. */
static void set_policy(const attn_linear_case *c, const attn_linear_problem *p, int t,
                       attn_conf_gold *g)
{
    /* dq sums the features and values of every key its row sees; dk, dv every row of their
     * KV head's group; the initial state's gradients every row of the group */
    const double rows = (double)(p->group * p->S);
    const double n_acc[G_N] = {(double)(p->Df + p->Dv + p->S + 1),
                               (double)(p->Df + p->Dv) + rows + 1.0,
                               (double)(p->Df + p->Dv) + rows + 1.0, (double)p->Dv + rows + 1.0,
                               (double)p->Dv + rows + 1.0};
    const attn_dtype dt[G_N] = {c->dt_q, c->dt_kv, c->dt_kv, ATTN_F32, ATTN_F32};
    attn_conf_round_lowp(g, dt[t]);
    if (t >= G_DS) {
        attn_policy_setup_state(&g->policy);
    } else {
        attn_policy_setup(&g->policy, dt[t], 0);
        g->policy.calib_factor = CALIB_GRAD;
    }
    g->policy.n_acc = n_acc[t];
}

int attn_linear_backward_gold(const attn_linear_case *c, const attn_linear_desc *desc,
                              const attn_conf_data *d, attn_conf_gold *g, int *ng)
{
    const attn_linear_grads grads = grads_of(d, attn_conf_host_view);
    const attn_linear_state st = state_of(d, attn_conf_host_view);
    attn_linear_problem p;
    if (attn_linear_validate_backward(desc, attn_conf_host_view(d, "q"),
                                      attn_conf_host_view(d, "k"), attn_conf_host_view(d, "v"),
                                      &st, attn_conf_host_view(d, "dout"), &grads,
                                      &p) != ATTN_OK)
        return 1;
    const int64_t nst = p.B * p.Hkv * p.Df;
    const int64_t n[G_N] = {p.B * p.S * p.Hq * p.Dk, p.B * p.S * p.Hkv * p.Dk,
                            p.B * p.S * p.Hkv * p.Dv, nst * p.Dv, nst};
    const int present[G_N] = {1, 1, 1, p.d_state_in.t != NULL, p.d_z_in.t != NULL};
    int at[G_N], nt = 0, rc = 0;
    for (int t = 0; t < G_N; t++) {
        at[t] = present[t] ? nt : -1;
        if (!present[t])
            continue;
        g[nt] = (attn_conf_gold){.name = grad_names[t], .rank = t == G_DZ ? 3 : 4,
                                 .order = {0, 1, 2, 3}};
        rc |= attn_conf_gold_alloc(&g[nt++], n[t], 0);
    }
    *ng = nt;
    if (!rc)
        rc = run_reference(&p, g, at);
    for (int t = 0; !rc && t < G_N; t++)
        if (at[t] >= 0)
            set_policy(c, &p, t, &g[at[t]]);
    attn_linear_problem_release(&p);
    return rc ? 2 : 0;
}
