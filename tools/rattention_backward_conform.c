/* rattention_backward_conform.c - the backward cases of the RATTENTION conformance driver: the
 * gradient tensors (dout and d_state_out in; dq, dk, dv, both gains' and the initial state's
 * gradients out), the call of attn_rattention_backward, and the gold of every gradient from the
 * f64 chain rule of reference/rattention_backward.c, its magnitudes times the forward's window
 * logit factor 1 + A_i as the condition scales. The reference has no float working-precision
 * mode, so gate 4 is off here. docs/conformance.md, "Linear attention and RATTENTION
 * backward". */
#include "rattention_conform.h"

#include "attn_fill.h"
#include "rattention_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FILL_DSTATE ((attn_fill_id)12) /* d_state_out's stream (the forward's use 6, 10, 11) */

enum { G_DQ, G_DK, G_DV, G_DGS, G_DGR, G_DS, G_N };
static const char *const grad_names[G_N] = {"dq", "dk", "dv", "dgamma_swa", "dgamma_rla",
                                            "d_state_in"};

int attn_rattention_backward_make(const attn_rattention_case *c, size_t gin, attn_conf_data *d)
{
    const int64_t df = 2 * c->dk;
    const size_t go = ATTN_CONF_GUARD_BYTES;
    attn_conf_buf *dout = attn_conf_add(d, "dout", 0), *dso = attn_conf_add(d, "d_state_out", 0);
    attn_conf_buf *dq = attn_conf_add(d, "dq", 1), *dk = attn_conf_add(d, "dk", 1);
    attn_conf_buf *dv = attn_conf_add(d, "dv", 1), *dgs = attn_conf_add(d, "dgamma_swa", 1);
    attn_conf_buf *dgr = attn_conf_add(d, "dgamma_rla", 1);
    attn_conf_buf *dsi = attn_conf_add(d, "d_state_in", 1);
    int rc = attn_conf_buf_dense(dout, c->dt_out, c->b, c->s, c->hq, c->dv, c->bhsd, gin);
    if (c->state & ATTN_LINEAR_STATE_OUT)
        rc |= attn_conf_buf_dense(dso, ATTN_F32, c->b, c->hkv, df, c->dv, 0, gin);
    rc |= attn_conf_buf_dense(dq, c->dt_q, c->b, c->s, c->hq, c->dk, c->bhsd, go);
    rc |= attn_conf_buf_dense(dk, c->dt_kv, c->b, c->s, c->hkv, c->dk, c->bhsd, go);
    rc |= attn_conf_buf_dense(dv, c->dt_kv, c->b, c->s, c->hkv, c->dv, c->bhsd, go);
    rc |= attn_conf_buf_dense(dgs, ATTN_F32, 1, 1, c->hq, c->dv, 0, go);
    rc |= attn_conf_buf_dense(dgr, ATTN_F32, 1, 1, c->hq, c->dv, 0, go);
    if (c->state & ATTN_LINEAR_STATE_IN)
        rc |= attn_conf_buf_dense(dsi, ATTN_F32, c->b, c->hkv, df, c->dv, 0, go);
    return rc;
}

void attn_rattention_backward_fill(uint64_t seed, attn_conf_data *d)
{
    /* d_state_out in [-1, 1] */
    attn_fill_dout(attn_conf_host_view(d, "dout"), seed);
    const attn_tensor *t = attn_conf_host_view(d, "d_state_out");
    const int64_t n = t ? t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3] : 0;
    for (int64_t i = 0; i < n; i++)
        ((float *)t->data)[i] = (float)attn_fill_value(ATTN_FILL_UNIFORM, seed, FILL_DSTATE, i);
}

typedef const attn_tensor *(*view_fn)(const attn_conf_data *, const char *);

static attn_rattention_grads grads_of(const attn_conf_data *d, view_fn view)
{
    return (attn_rattention_grads){.dq = view(d, "dq"), .dk = view(d, "dk"), .dv = view(d, "dv"),
                                   .dgamma_swa = view(d, "dgamma_swa"),
                                   .dgamma_rla = view(d, "dgamma_rla"),
                                   .d_state_in = view(d, "d_state_in"),
                                   .d_state_out = view(d, "d_state_out")};
}

static attn_rattention_io io_of(const attn_conf_data *d, view_fn view)
{
    return (attn_rattention_io){view(d, "gamma_swa"), view(d, "gamma_rla"),
                                view(d, "state_in"), NULL};
}

attn_status attn_rattention_backward_call(attn_backend *be, const attn_rattention_case *c,
                                          const attn_conf_data *d, attn_conf_call what,
                                          char *impl, size_t n)
{
    const attn_rattention_desc desc = attn_rattention_case_desc(c);
    const attn_rattention_grads g = grads_of(d, attn_conf_run_view);
    const attn_rattention_io io = io_of(d, attn_conf_run_view);
    const attn_tensor *q = attn_conf_run_view(d, "q"), *k = attn_conf_run_view(d, "k");
    const attn_tensor *v = attn_conf_run_view(d, "v"), *dout = attn_conf_run_view(d, "dout");
    if (what == ATTN_CONF_IMPL)
        return attn_rattention_backward_impl_name(be, &desc, q, k, v, &io, dout, &g, impl, n);
    return attn_rattention_backward(be, &desc, q, k, v, &io, dout, &g);
}

/* ---- condition scales ----------------------------------------------------------------------- */

static void scale_row(double *cond, int64_t n, double f)
{
    for (int64_t x = 0; x < n; x++)
        cond[x] *= f;
}

/* Magnitudes into conditions: dq by its row's factor f, dk, dv and d_state_in by the largest
 * of their (batch, KV head)'s rows, a gain's gradient by the largest of its head's rows (head:
 * Hq doubles of scratch). */
static void scale_conditions(const attn_rattention_problem *p, const double *f, double *head,
                             attn_conf_gold *const *g)
{
    for (int64_t h = 0; h < p->Hq; h++)
        head[h] = 1.0;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t kv = 0; kv < p->Hkv; kv++) {
            double fg = 1.0;
            for (int64_t h = kv * p->group; h < (kv + 1) * p->group; h++)
                for (int64_t i = 0; i < p->S; i++) {
                    const int64_t r = (b * p->S + i) * p->Hq + h;
                    scale_row(g[G_DQ]->cond + r * p->Dk, p->Dk, f[r]);
                    fg = fmax(fg, f[r]);
                    head[h] = fmax(head[h], f[r]);
                }
            for (int64_t j = 0; j < p->S; j++) {
                const int64_t r = (b * p->S + j) * p->Hkv + kv;
                scale_row(g[G_DK]->cond + r * p->Dk, p->Dk, fg);
                scale_row(g[G_DV]->cond + r * p->Dv, p->Dv, fg);
            }
            if (g[G_DS])
                scale_row(g[G_DS]->cond + (b * p->Hkv + kv) * p->Df * p->Dv, p->Df * p->Dv, fg);
        }
    for (int64_t h = 0; h < p->Hq; h++)
        for (int t = G_DGS; t <= G_DGR; t++)
            scale_row(g[t]->cond + h * p->Dv, p->Dv, head[h]);
}

/* ---- gold ----------------------------------------------------------------------------------- */

/* Policy of each gradient: its dtype's rounding, its longest sum; gate 4 off (no float
 * reference: lowp is the gold itself); an all-zero gain gradient (its branch absent or 0 on
 * every row) must be exactly 0 and is not judged by the trust gate. */
static void set_policy(const attn_rattention_case *c, const attn_rattention_problem *p, int t,
                       int all_zero, attn_conf_gold *g)
{
    const double rows = (double)(p->group * p->S);
    const double n_dq = (double)(p->Dk + p->Df + p->Dv + p->S + 1);
    const double n_acc[G_N] = {n_dq, n_dq + rows, n_dq + rows, (double)(p->Dv + p->B * p->S),
                               (double)(p->Dv + p->B * p->S), (double)p->Dv + rows + 1.0};
    const attn_dtype dt[G_N] = {c->dt_q, c->dt_kv, c->dt_kv, ATTN_F32, ATTN_F32, ATTN_F32};
    if (t == G_DS)
        attn_policy_setup_state(&g->policy);
    else
        attn_policy_setup(&g->policy, dt[t], 0);
    g->policy.n_acc = n_acc[t];
    g->policy.calib_factor = 0.0;
    memcpy(g->lowp, g->gold, sizeof(double) * (size_t)g->n);
    if (all_zero) {
        memset(g->must_zero, 1, (size_t)g->n);
        g->policy.no_trust = 1;
    }
}

static int compute_gold(const attn_rattention_problem *p, attn_conf_gold *const *g)
{
#define ARR(t, f) (g[t] ? g[t]->f : NULL)
    const attn_rattention_ref_grads ref = {
        ARR(G_DQ, gold), ARR(G_DK, gold), ARR(G_DV, gold), ARR(G_DGS, gold), ARR(G_DGR, gold),
        ARR(G_DS, gold), ARR(G_DQ, cond), ARR(G_DK, cond), ARR(G_DV, cond), ARR(G_DGS, cond),
        ARR(G_DGR, cond), ARR(G_DS, cond)};
#undef ARR
    const int64_t rows = p->B * p->S * p->Hq;
    double *f = malloc(sizeof(double) * (size_t)(rows + p->Hq));
    int rc = !f || attn_ref_rattention_backward(p, &ref) != ATTN_OK;
    if (!rc) { /* the row factors: the window's logit factor 1 + A_i, or 1 without a window */
        for (int64_t r = 0; r < rows; r++)
            f[r] = 1.0;
        if (p->swa)
            attn_rattention_conf_logit_factors(p, f);
        scale_conditions(p, f, f + rows, g);
    }
    free(f);
    return rc ? 2 : 0;
}

int attn_rattention_backward_gold(const attn_rattention_case *c, const attn_conf_data *d,
                                  attn_conf_gold *g, int *ng)
{
    const attn_rattention_desc desc = attn_rattention_case_desc(c);
    const attn_rattention_grads grads = grads_of(d, attn_conf_host_view);
    const attn_rattention_io io = io_of(d, attn_conf_host_view);
    attn_rattention_problem p;
    if (attn_rattention_validate_backward(&desc, attn_conf_host_view(d, "q"),
                                          attn_conf_host_view(d, "k"),
                                          attn_conf_host_view(d, "v"), &io,
                                          attn_conf_host_view(d, "dout"), &grads,
                                          &p) != ATTN_OK)
        return 1;
    const int64_t n[G_N] = {p.B * p.S * p.Hq * p.Dk, p.B * p.S * p.Hkv * p.Dk,
                            p.B * p.S * p.Hkv * p.Dv, p.Hq * p.Dv, p.Hq * p.Dv,
                            p.B * p.Hkv * p.Df * p.Dv};
    /* a branch that is 0 on every row: no window, or no key leaves it and no S0 */
    const int zero[G_N] = {0, 0, 0, !p.swa, p.swa && p.window + 1 >= p.S && !p.state_in.t, 0};
    attn_conf_gold *at[G_N] = {NULL};
    int nt = 0, rc = 0;
    for (int t = 0; t < G_N; t++) {
        if (t == G_DS && !p.d_state_in.t)
            continue;
        g[nt] = (attn_conf_gold){.name = grad_names[t], .rank = 4, .order = {0, 1, 2, 3}};
        rc |= attn_conf_gold_alloc(&g[nt], n[t], 1);
        at[t] = &g[nt++];
    }
    *ng = nt;
    if (!rc)
        rc = compute_gold(&p, at);
    for (int t = 0; !rc && t < G_N; t++)
        if (at[t])
            set_policy(c, &p, t, zero[t], at[t]);
    return rc ? 2 : 0;
}
