/* rattention_conform.c - the conformance driver of RATTENTION (attn_conform.h): the tensors of
 * a case (q, k, v, the gammas and S0; out and state_out, or for a decode case out, the cache's
 * state and its two rings), their fills, the call through the public API (one forward, or a
 * fresh cache advanced by a prefill and steps), and the gold of every output from the f64
 * reference with condition scales carried through both GroupRMSNorms, the float reference as
 * the working-precision result, and the policy set-up (docs/conformance.md, "RATTENTION").
 * A backward case's tensors and gold are rattention_backward_conform.c's. Cases:
 * rattention_case.c; built-in lists: tests/cases/rattention.cases and
 * rattention_backward.cases. */
#include "attn_conform.h"

#include "attn_half.h"
#include "attn_tool_ops.h"
#include "rattention_case.h"
#include "rattention_conform.h"
#include "rattention_ref.h"
#include "rattention_tool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILL_STATE ((attn_fill_id)6) /* RNG streams of S0 and the gammas */
#define FILL_GAMMA_SWA ((attn_fill_id)10)
#define FILL_GAMMA_RLA ((attn_fill_id)11)
#define STATE_FILL_SCALE 0.25 /* S0 as from some hundred earlier tokens of a paired map */

_Static_assert(sizeof(attn_rattention_case) <= ATTN_CASE_DATA_MAX,
               "attn_case holds attn_rattention_case");

static int is_decode(const attn_rattention_case *c)
{
    return c->decode >= 0;
}

/* Ring slots of a decode case (0 when w = -1: no ring). */
static int64_t slots_of(const attn_rattention_case *c)
{
    return is_decode(c) && c->window >= 0 ? c->window + 1 : 0;
}

/* ---- tensors -------------------------------------------------------------------------------- */

static int ratt_make(const void *cv, size_t gin, attn_conf_data *d)
{
    const attn_rattention_case *c = cv;
    const int64_t df = 2 * c->dk, slots = slots_of(c);
    attn_conf_buf *q = attn_conf_add(d, "q", 0), *k = attn_conf_add(d, "k", 0);
    attn_conf_buf *v = attn_conf_add(d, "v", 0), *gs = attn_conf_add(d, "gamma_swa", 0);
    attn_conf_buf *gr = attn_conf_add(d, "gamma_rla", 0), *si = attn_conf_add(d, "state_in", 0);
    int rc = attn_conf_buf_dense(q, c->dt_q, c->b, c->s, c->hq, c->dk, c->bhsd, gin);
    rc |= attn_conf_buf_dense(k, c->dt_kv, c->b, c->s, c->hkv, c->dk, c->bhsd, gin);
    rc |= attn_conf_buf_dense(v, c->dt_kv, c->b, c->s, c->hkv, c->dv, c->bhsd, gin);
    if (c->gamma) {
        rc |= attn_conf_buf_dense(gs, ATTN_F32, 1, 1, c->hq, c->dv, 0, gin);
        rc |= attn_conf_buf_dense(gr, ATTN_F32, 1, 1, c->hq, c->dv, 0, gin);
    }
    if (c->state & ATTN_LINEAR_STATE_IN)
        rc |= attn_conf_buf_dense(si, ATTN_F32, c->b, c->hkv, df, c->dv, 0, gin);
    if (c->backward) /* the gradients in place of out and the final state */
        return rc | attn_rattention_backward_make(c, gin, d);
    attn_conf_buf *o = attn_conf_add(d, "out", 1);
    attn_conf_buf *so = attn_conf_add(d, is_decode(c) ? "state" : "state_out", 1);
    attn_conf_buf *kr = attn_conf_add(d, "k_ring", 1), *vr = attn_conf_add(d, "v_ring", 1);
    rc |= attn_conf_buf_dense(o, c->dt_out, c->b, c->s, c->hq, c->dv, c->bhsd,
                              ATTN_CONF_GUARD_BYTES);
    if (is_decode(c) || (c->state & ATTN_LINEAR_STATE_OUT))
        rc |= attn_conf_buf_dense(so, ATTN_F32, c->b, c->hkv, df, c->dv, 0,
                                  ATTN_CONF_GUARD_BYTES);
    if (slots) {
        rc |= attn_conf_buf_dense(kr, c->dt_kv, c->b, slots, c->hkv, c->dk, 0,
                                  ATTN_CONF_GUARD_BYTES);
        rc |= attn_conf_buf_dense(vr, c->dt_kv, c->b, slots, c->hkv, c->dv, 0,
                                  ATTN_CONF_GUARD_BYTES);
    }
    return rc;
}

/* A dense f32 view, element i (row-major) = base + spread * uniform(stream id). */
static void fill_f32(const attn_tensor *t, uint64_t seed, attn_fill_id id, double base,
                     double spread)
{
    if (!t)
        return;
    const int64_t n = t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3];
    for (int64_t i = 0; i < n; i++)
        ((float *)t->data)[i] =
            (float)(base + spread * attn_fill_value(ATTN_FILL_UNIFORM, seed, id, i));
}

static void ratt_fill(const void *cv, uint64_t seed, attn_conf_data *d)
{
    const attn_rattention_case *c = cv;
    attn_fill_tensor(attn_conf_host_view(d, "q"), c->fill, seed, ATTN_FILL_Q);
    attn_fill_tensor(attn_conf_host_view(d, "k"), c->fill, seed, ATTN_FILL_K);
    attn_fill_tensor(attn_conf_host_view(d, "v"), c->fill, seed, ATTN_FILL_V);
    /* learned scales around 1, S0 of either sign */
    fill_f32(attn_conf_host_view(d, "gamma_swa"), seed, FILL_GAMMA_SWA, 1.0, 0.75);
    fill_f32(attn_conf_host_view(d, "gamma_rla"), seed, FILL_GAMMA_RLA, 1.0, 0.75);
    fill_f32(attn_conf_host_view(d, "state_in"), seed, FILL_STATE, 0.0, STATE_FILL_SCALE);
    attn_linear_plant(c->special, attn_conf_host_view(d, "k"), attn_conf_host_view(d, "v"));
    if (c->backward)
        attn_rattention_backward_fill(seed, d);
}

static double ratt_elems(const void *cv)
{
    const attn_rattention_case *c = cv;
    const double dmax = (double)(c->dk > c->dv ? c->dk : c->dv), b = (double)c->b;
    const double hkv = (double)c->hkv;
    return b * ((double)c->s * (double)(c->hq + 2 * c->hkv) * dmax +
                hkv * 2.0 * (double)c->dk * (double)c->dv +
                (double)slots_of(c) * hkv * (double)(c->dk + c->dv));
}

/* ---- the call ------------------------------------------------------------------------------- */

static attn_rattention_io io_of(const attn_conf_data *d, int decode,
                                const attn_tensor *(*view)(const attn_conf_data *, const char *))
{
    attn_rattention_io io = {view(d, "gamma_swa"), view(d, "gamma_rla"), NULL, NULL};
    if (!decode) {
        io.state_in = view(d, "state_in");
        io.state_out = view(d, "state_out");
    }
    return io;
}

/* Rows [s0, s0 + n) of dim 1 of a run view (host memory or a backend buffer). */
static attn_tensor rows_of(const attn_tensor *t, int64_t s0, int64_t n)
{
    attn_tensor r = *t;
    const size_t off = (size_t)(s0 * t->stride[1]) * attn_dtype_size(t->dtype);
    if (r.buffer)
        r.offset += off;
    else
        r.data = (char *)r.data + off;
    r.shape[1] = n;
    return r;
}

/* Write the dense contents of a run view: from src (host bytes), or every element x. */
static attn_status view_write(const attn_tensor *t, const void *src, double x)
{
    const size_t es = attn_dtype_size(t->dtype);
    const int64_t n = t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3];
    unsigned char *img = src ? NULL : malloc((size_t)n * es);
    if (!src && !img)
        return ATTN_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; img && i < n; i++)
        attn_store_f64(img, t->dtype, i, x);
    const void *from = src ? src : img;
    attn_status s = ATTN_OK;
    if (t->buffer)
        s = attn_buffer_write(t->buffer, t->offset, from, (size_t)n * es);
    else
        memcpy(t->data, from, (size_t)n * es);
    free(img);
    return s;
}

/* A fresh cache: the state holds S0 (or zeros); every ring slot holds NaN, so a step that
 * reads a slot of a token it has not seen yet shows in out (gate 1). */
static attn_status cache_reset(const attn_conf_data *d)
{
    const attn_tensor *s0 = attn_conf_host_view(d, "state_in");
    attn_status s = view_write(attn_conf_run_view(d, "state"), s0 ? s0->data : NULL, 0.0);
    const attn_tensor *kr = attn_conf_run_view(d, "k_ring"), *vr = attn_conf_run_view(d, "v_ring");
    if (s == ATTN_OK && kr)
        s = view_write(kr, NULL, NAN);
    if (s == ATTN_OK && vr)
        s = view_write(vr, NULL, NAN);
    return s;
}

/* Tokens of the decode call starting at token s0. */
static int64_t call_len(const attn_rattention_case *c, int64_t s0)
{
    const int64_t n = s0 == 0 && c->decode > 0 ? c->decode : c->step;
    return n < c->s - s0 ? n : c->s - s0;
}

/* One decode call of tokens [s0, s0 + n) on the cache (the implementation name instead when
 * impl is not NULL). */
static attn_status decode_call(attn_backend *be, const attn_rattention_desc *desc,
                               const attn_conf_data *d, attn_rattention_cache *cache, int64_t s0,
                               int64_t n, char *impl, size_t size)
{
    const attn_rattention_io io = io_of(d, 1, attn_conf_run_view);
    const attn_tensor q = rows_of(attn_conf_run_view(d, "q"), s0, n);
    const attn_tensor k = rows_of(attn_conf_run_view(d, "k"), s0, n);
    const attn_tensor v = rows_of(attn_conf_run_view(d, "v"), s0, n);
    const attn_tensor o = rows_of(attn_conf_run_view(d, "out"), s0, n);
    if (impl)
        return attn_rattention_decode_impl_name(be, desc, cache, &q, &k, &v, &o, &io, impl,
                                                size);
    return attn_rattention_decode(be, desc, cache, &q, &k, &v, &o, &io);
}

/* The implementation names of the first decode call and of the next one (joined by '+' when
 * they differ). */
static attn_status decode_impl(attn_backend *be, const attn_rattention_case *c,
                               const attn_rattention_desc *desc, const attn_conf_data *d,
                               attn_rattention_cache *cache, char *impl, size_t size)
{
    const int64_t n0 = call_len(c, 0);
    attn_status s = decode_call(be, desc, d, cache, 0, n0, impl, size);
    if (s != ATTN_OK || n0 >= c->s)
        return s;
    char next[128];
    cache->pos = n0;
    s = decode_call(be, desc, d, cache, n0, call_len(c, n0), next, sizeof next);
    const size_t len = strlen(impl);
    if (s == ATTN_OK && strcmp(impl, next) != 0 && len + 1 < size)
        snprintf(impl + len, size - len, "+%s", next);
    return s;
}

static attn_status ratt_decode(attn_backend *be, const attn_rattention_case *c,
                               const attn_conf_data *d, attn_conf_call what, char *impl,
                               size_t size)
{
    const attn_rattention_desc desc = attn_rattention_case_desc(c);
    attn_rattention_cache cache = {attn_conf_run_view(d, "k_ring"),
                                   attn_conf_run_view(d, "v_ring"),
                                   attn_conf_run_view(d, "state"), 0};
    if (what == ATTN_CONF_IMPL)
        return decode_impl(be, c, &desc, d, &cache, impl, size);
    attn_status s = cache_reset(d);
    for (int64_t s0 = 0, n; s == ATTN_OK && s0 < c->s; s0 += n) {
        n = call_len(c, s0);
        s = decode_call(be, &desc, d, &cache, s0, n, NULL, 0);
    }
    return s;
}

static attn_status ratt_call(attn_backend *be, const void *cv, const attn_conf_data *d,
                             attn_conf_call what, char *impl, size_t n)
{
    const attn_rattention_case *c = cv;
    if (c->backward)
        return attn_rattention_backward_call(be, c, d, what, impl, n);
    if (is_decode(c))
        return ratt_decode(be, c, d, what, impl, n);
    const attn_rattention_desc desc = attn_rattention_case_desc(c);
    const attn_rattention_io io = io_of(d, 0, attn_conf_run_view);
    const attn_tensor *q = attn_conf_run_view(d, "q"), *k = attn_conf_run_view(d, "k");
    const attn_tensor *v = attn_conf_run_view(d, "v"), *o = attn_conf_run_view(d, "out");
    if (what == ATTN_CONF_IMPL)
        return attn_rattention_impl_name(be, &desc, q, k, v, o, &io, impl, n);
    return attn_rattention_forward(be, &desc, q, k, v, o, &io);
}

/* ---- condition scales ----------------------------------------------------------------------- */

/* The SWA output's condition sum_j p_j |v_j| times (1 + A), A = |scale| |q_i|_2 max_j |k_j|_2
 * (1 + |pos| 2^-28): the logits' float error (rotation included; RoPE keeps norms) moves the
 * output by up to ~2 |ds| absmag, as for softmax attention (gate 2), and an angle error of
 * |pos| 2^-52 and the opencl kernel's float angle are covered as in the RoPE policy. NaN key
 * rows are left out of the maximum (their rows' gold is NaN). f gets 1 + A of every row. */
void attn_rattention_conf_logit_factors(const attn_rattention_problem *p, double *f)
{
    const double pos = fmax(fabs((double)p->offset), fabs((double)(p->offset + p->S)));
    const double ang = 1.0 + pos * 0x1p-28;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++) {
            double kmax = 0.0;
            for (int64_t j = 0; j < p->S; j++)
                kmax = fmax(kmax, attn_conf_row_norm(&p->k, b, j, g, p->Dk));
            for (int64_t i = 0; i < p->S; i++)
                for (int64_t h = g * p->group; h < (g + 1) * p->group; h++) {
                    const double qn = attn_conf_row_norm(&p->q, b, i, h, p->Dk);
                    f[(b * p->S + i) * p->Hq + h] = 1.0 + fabs(p->scale) * qn * kmax * ang;
                }
        }
}

static int swa_logit_factor(const attn_rattention_problem *p, double *swa_cond)
{
    double *f = malloc(sizeof(double) * (size_t)(p->B * p->S * p->Hq));
    if (!f)
        return -1;
    attn_rattention_conf_logit_factors(p, f);
    for (int64_t r = 0; r < p->B * p->S * p->Hq; r++)
        for (int64_t d = 0; d < p->Dv; d++)
            swa_cond[r * p->Dv + d] *= f[r];
    free(f);
    return 0;
}

/* The condition of one head's GroupRMSNorm output y_c = g_c x_c / s, s = sqrt(ms + eps),
 * ms = mean x^2, given the condition a of its input x (|dx_c| <= u a_c), added into cond:
 * dy_c = (g_c / s) (dx_c - x_c (x . dx) / (n s^2)) and |x . dx| <= u n sqrt(ms) rms(a)
 * (Cauchy-Schwarz), plus the norm's own rounding, relative to |y_c| (docs/conformance.md). */
static void norm_cond_add(const double *x, const double *a, const float *gamma, int64_t n,
                          double eps, double *cond)
{
    double xx = 0.0, aa = 0.0;
    for (int64_t c = 0; c < n; c++) {
        xx += x[c] * x[c];
        aa += a[c] * a[c];
    }
    const double ms = xx / (double)n, den = ms + eps, s = sqrt(den);
    const double lin = sqrt(ms) * sqrt(aa / (double)n) / den;
    for (int64_t c = 0; c < n; c++) {
        const double g = gamma ? fabs((double)gamma[c]) : 1.0;
        cond[c] += g * (a[c] + fabs(x[c]) * (1.0 + lin)) / s;
    }
}

/* The branches' results and conditions of the reference. */
typedef struct branches {
    double *swa, *rla, *swa_cond, *rla_cond;
} branches;

/* cond of out: each present branch's condition carried through its norm, summed. */
static int out_cond(const attn_rattention_problem *p, branches *br, double *cond)
{
    float *gbuf = malloc(sizeof(float) * (size_t)p->Dv);
    if (!gbuf || (p->swa && swa_logit_factor(p, br->swa_cond))) {
        free(gbuf);
        return -1;
    }
    for (int64_t r = 0; r < p->B * p->S * p->Hq; r++) {
        const int64_t h = r % p->Hq, at = r * p->Dv;
        memset(cond + at, 0, sizeof(double) * (size_t)p->Dv);
        if (p->swa)
            norm_cond_add(br->swa + at, br->swa_cond + at,
                          attn_ref_rattention_gamma(&p->gamma_swa, h, p->Dv, gbuf), p->Dv,
                          p->eps, cond + at);
        norm_cond_add(br->rla + at, br->rla_cond + at,
                      attn_ref_rattention_gamma(&p->gamma_rla, h, p->Dv, gbuf), p->Dv, p->eps,
                      cond + at);
    }
    free(gbuf);
    return 0;
}

/* ---- gold ----------------------------------------------------------------------------------- */

/* The state gated as its own tensor (docs/conformance.md, "Linear attention"). When no token
 * has left the window and there is no S0 it is exactly 0: every element must be 0, and the
 * trust gate (mostly-zero gold) is off. */
static void state_policy(const attn_rattention_problem *p, attn_conf_gold *g)
{
    attn_policy_setup_state(&g->policy);
    g->policy.n_acc = (double)(p->S + 1);
    const int folds = !p->swa || p->S > p->window + 1;
    if (folds || p->state_in.t)
        return;
    memset(g->must_zero, 1, (size_t)g->n);
    g->policy.no_trust = 1;
}

/* The rings after a decode of all S tokens: slot s holds the last token t < S with
 * t = s mod slots (k and v as stored: the rings store k's dtype), NaN where no token came. */
static void ring_gold(const attn_rattention_problem *p, const attn_operand *src, int64_t D,
                      attn_conf_gold *g)
{
    const int64_t slots = p->window + 1;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t s = 0; s < slots; s++)
            for (int64_t h = 0; h < p->Hkv; h++)
                for (int64_t d = 0; d < D; d++) {
                    const int64_t i = ((b * slots + s) * p->Hkv + h) * D + d;
                    const int64_t t = s < p->S ? s + (p->S - 1 - s) / slots * slots : -1;
                    g->gold[i] = t < 0 ? NAN : attn_load_f64(src->ptr, src->dtype,
                                                             attn_at(src, b, t, h, d));
                    g->lowp[i] = g->gold[i];
                    g->cond[i] = fabs(g->gold[i]);
                }
    attn_policy_setup(&g->policy, src->dtype, 0);
    g->policy.n_acc = 1.0;
}

/* The forward problem of a case on the host views: a forward case's own, and for a decode case
 * the forward over the same tokens from S0 whose state_out is the cache's final state. */
static attn_status case_problem(const attn_rattention_case *c, const attn_conf_data *d,
                                attn_rattention_problem *p)
{
    const attn_rattention_desc desc = attn_rattention_case_desc(c);
    attn_rattention_io io = io_of(d, 0, attn_conf_host_view);
    if (is_decode(c))
        io.state_out = attn_conf_host_view(d, "state");
    return attn_rattention_validate(&desc, attn_conf_host_view(d, "q"),
                                    attn_conf_host_view(d, "k"), attn_conf_host_view(d, "v"),
                                    attn_conf_host_view(d, "out"), &io, p);
}

/* Name, rank and arrays of the outputs: out, the state, the rings. */
static int gold_outputs(const attn_rattention_case *c, const attn_rattention_problem *p,
                        attn_conf_gold *g, int *ng)
{
    int n = 1, rc = 0;
    g[0] = (attn_conf_gold){.name = "out", .rank = 4, .order = {0, 1, 2, 3}};
    rc |= attn_conf_gold_alloc(&g[0], p->B * p->S * p->Hq * p->Dv, 0);
    if (p->state_out.t) {
        g[n] = (attn_conf_gold){.name = is_decode(c) ? "state" : "state_out", .rank = 4,
                                .order = {0, 1, 2, 3}};
        rc |= attn_conf_gold_alloc(&g[n++], p->B * p->Hkv * p->Df * p->Dv, 1);
    }
    if (slots_of(c)) {
        const int64_t ring = p->B * slots_of(c) * p->Hkv;
        g[n] = (attn_conf_gold){.name = "k_ring", .rank = 4, .order = {0, 1, 2, 3}};
        rc |= attn_conf_gold_alloc(&g[n++], ring * p->Dk, 0);
        g[n] = (attn_conf_gold){.name = "v_ring", .rank = 4, .order = {0, 1, 2, 3}};
        rc |= attn_conf_gold_alloc(&g[n++], ring * p->Dv, 0);
    }
    *ng = n;
    return rc;
}

/* Gold, conditions and lowp of every output of the validated problem. */
static int compute_gold(const attn_rattention_case *c, const attn_rattention_problem *p,
                        attn_conf_gold *g)
{
    const int64_t n = p->B * p->S * p->Hq * p->Dv;
    attn_conf_gold *st = p->state_out.t ? &g[1] : NULL;
    branches br = {attn_ref_alloc(n, 1), attn_ref_alloc(n, 1), attn_ref_alloc(n, 1),
                   attn_ref_alloc(n, 1)};
    int rc = !br.swa || !br.rla || !br.swa_cond || !br.rla_cond;
    attn_rattention_ref_out gold = {g[0].gold, br.swa, br.rla, br.swa_cond, br.rla_cond,
                                    st ? st->gold : NULL, st ? st->cond : NULL, NULL, NULL};
    attn_rattention_ref_out lowp = {.out = g[0].lowp, .state = st ? st->lowp : NULL};
    if (!rc)
        rc = attn_ref_rattention(p, ATTN_REF_F64, &gold) != ATTN_OK ||
             attn_ref_rattention(p, ATTN_REF_F32, &lowp) != ATTN_OK ||
             out_cond(p, &br, g[0].cond) != 0;
    free(br.swa);
    free(br.rla);
    free(br.swa_cond);
    free(br.rla_cond);
    if (rc)
        return 2;
    attn_conf_round_lowp(&g[0], c->dt_out);
    /* the longest sums: the state's features and every key a row or state sees, then the
     * norm's sum of squares over Dv */
    attn_policy_setup(&g[0].policy, c->dt_out, 0);
    g[0].policy.n_acc = (double)(p->Df + p->S + 1 + p->Dv);
    if (st)
        state_policy(p, st);
    if (slots_of(c)) {
        attn_conf_gold *kr = &g[st ? 2 : 1];
        ring_gold(p, &p->k, p->Dk, kr);
        ring_gold(p, &p->v, p->Dv, kr + 1);
    }
    return 0;
}

static int ratt_gold(const void *cv, const attn_conf_data *d, attn_conf_gold *g, int *ng)
{
    const attn_rattention_case *c = cv;
    if (c->backward)
        return attn_rattention_backward_gold(c, d, g, ng);
    attn_rattention_problem p;
    if (case_problem(c, d, &p) != ATTN_OK)
        return 1;
    if (gold_outputs(c, &p, g, ng))
        return 2;
    return compute_gold(c, &p, g);
}

/* ---- the driver ----------------------------------------------------------------------------- */

static void case_default(void *c)
{
    attn_rattention_case_default(c);
}

static int case_token(char *tok, void *c, char *err, size_t errsize)
{
    return attn_rattention_case_token(tok, c, err, errsize);
}

static int case_check(const void *c, char *err, size_t errsize)
{
    return attn_rattention_case_check(c, err, errsize);
}

static int case_format(const void *c, char *buf, size_t size)
{
    return attn_rattention_case_format(c, buf, size);
}

static unsigned features(const void *c)
{
    return attn_rattention_case_features(c);
}

static double cost(const void *c)
{
    return attn_rattention_case_cost(c);
}

static const attn_conform_driver attn_rattention_driver = {
    .stem = "rattention",
    .case_default = case_default,
    .case_token = case_token,
    .case_check = case_check,
    .case_format = case_format,
    .features = features,
    .feature_names = attn_rattention_feature_names,
    .n_features = ATTN_RATT_FEAT_COUNT,
    .elems = ratt_elems,
    .cost = cost,
    .make = ratt_make,
    .fill = ratt_fill,
    .call = ratt_call,
    .gold = ratt_gold,
};

const attn_tool_op attn_rattention_tool = {
    .stem = "rattention",
    .summary = "RATTENTION: sliding-window softmax + residual linear attention",
    .conform = &attn_rattention_driver,
    .run = attn_rattention_cmd_run,
    .run_help = attn_rattention_run_help,
    .run_opts_help = attn_args_rattention_help,
#ifdef ATTN_HAVE_CPU
    .bench = attn_rattention_cmd_bench,
#endif
    .show = attn_rattention_cmd_show,
};
