/* sdpa_conform.c - the conformance driver of softmax attention (attn_conform.h): the tensors
 * of a case (q, k, v, masks, out, lse, key_score in BSHD, BHSD or KV-cache views; for a
 * backward case also dout and the gradients), their fills, the call through the public API, and
 * the gold of out, lse and key_score from the f64 reference with their condition numbers
 * (docs/conformance.md derives them; the gradients' gold is sdpa_backward_conform.c's).
 * Cases: sdpa_case.c; built-in lists: tests/cases/sdpa.cases and sdpa_backward.cases. */
#include "attn_conform.h"

#include "attn_half.h"
#include "attn_sdpa_problem.h"
#include "sdpa_ref.h"
#include "sdpa_case.h"
#include "sdpa_conform.h"
#include "sdpa_tool.h"
#include "attn_cases.h"
#include "attn_tool_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LEAD 3     /* kv-cache layout: the view starts at cache position 3 ... */
#define CACHE_TRAIL 4    /* ... and the cache holds 4 more positions after it */
#define OUT_PAD 5        /* kv-cache layout: output rows padded by 5 elements */

_Static_assert(sizeof(attn_sdpa_case) <= ATTN_CASE_DATA_MAX, "attn_case holds attn_sdpa_case");

/* ---- tensors -------------------------------------------------------------------------------- */

/* K or V inside a [B, H, cap, D] cache, cap = S + lead + trail positions. */
static int buf_cache(attn_conf_buf *b, attn_dtype dt, int64_t B, int64_t S, int64_t H, int64_t D,
                     size_t guard)
{
    const int64_t cap = S + CACHE_LEAD + CACHE_TRAIL;
    const int64_t shape[4] = {B, S, H, D};
    const int64_t st[4] = {H * cap * D, D, cap * D, 1};
    return attn_conf_buf_make(b, dt, shape, st, CACHE_LEAD * D, B * H * cap * D, guard);
}

/* Output rows padded: the backend must not touch the padding. */
static int buf_padded(attn_conf_buf *b, attn_dtype dt, int64_t B, int64_t S, int64_t H, int64_t D)
{
    const int64_t P = D + OUT_PAD;
    const int64_t shape[4] = {B, S, H, D};
    const int64_t st[4] = {S * H * P, H * P, P, 1};
    return attn_conf_buf_make(b, dt, shape, st, 0, B * S * H * P, ATTN_CONF_GUARD_BYTES);
}

/* A mask [B|1, Sq|1, Hq|1, Skv|1], contiguous. */
static int buf_mask(attn_conf_buf *b, attn_dtype dt, const attn_sdpa_case *c, int dims,
                    size_t guard)
{
    return attn_conf_buf_dense(b, dt, dims & ATTN_MDIM_B ? c->b : 1,
                               dims & ATTN_MDIM_S ? c->sq : 1, dims & ATTN_MDIM_H ? c->hq : 1,
                               dims & ATTN_MDIM_K1 ? 1 : c->skv, 0, guard);
}

/* The gradient tensors of a backward case: dq like q (padded rows in the kv-cache layout), dk
 * and dv like k and v (cache views there), dmask_add like the additive mask (f32). */
static int make_grads(const attn_sdpa_case *c, attn_conf_data *d)
{
    const int hm = c->layout == ATTN_LAYOUT_BHSD;
    const size_t g = ATTN_CONF_GUARD_BYTES;
    attn_conf_buf *dq = attn_conf_add(d, "dq", 1), *dk = attn_conf_add(d, "dk", 1);
    attn_conf_buf *dv = attn_conf_add(d, "dv", 1), *dm = attn_conf_add(d, "dmask_add", 1);
    int rc;
    if (c->layout == ATTN_LAYOUT_CACHE) {
        rc = buf_padded(dq, c->dt_q, c->b, c->sq, c->hq, c->dk);
        rc |= buf_cache(dk, c->dt_kv, c->b, c->skv, c->hkv, c->dk, g);
        rc |= buf_cache(dv, c->dt_kv, c->b, c->skv, c->hkv, c->dv, g);
    } else {
        rc = attn_conf_buf_dense(dq, c->dt_q, c->b, c->sq, c->hq, c->dk, hm, g);
        rc |= attn_conf_buf_dense(dk, c->dt_kv, c->b, c->skv, c->hkv, c->dk, hm, g);
        rc |= attn_conf_buf_dense(dv, c->dt_kv, c->b, c->skv, c->hkv, c->dv, hm, g);
    }
    if (c->dmask)
        rc |= buf_mask(dm, ATTN_F32, c, c->mask_add, g);
    return rc;
}

/* key_score [B, Skv, Hkv, 1] f32 in the case's layout: contiguous, head-major for bhsd, one
 * element per padded row for the kv-cache layout (its gaps are checked like out's). */
static int buf_key_score(attn_conf_buf *b, const attn_sdpa_case *c)
{
    if (c->layout == ATTN_LAYOUT_CACHE)
        return buf_padded(b, ATTN_F32, c->b, c->skv, c->hkv, 1);
    return attn_conf_buf_dense(b, ATTN_F32, c->b, c->skv, c->hkv, 1,
                               c->layout == ATTN_LAYOUT_BHSD, ATTN_CONF_GUARD_BYTES);
}

/* Allocate every tensor (inputs, then out, lse and key_score, then a backward case's
 * gradients); inputs get guard zones of `gin` bytes, outputs always have them. */
static int sdpa_make(const void *cv, size_t gin, attn_conf_data *d)
{
    const attn_sdpa_case *c = cv;
    const int hm = c->layout == ATTN_LAYOUT_BHSD;
    attn_conf_buf *q = attn_conf_add(d, "q", 0), *k = attn_conf_add(d, "k", 0);
    attn_conf_buf *v = attn_conf_add(d, "v", 0), *ma = attn_conf_add(d, "mask_add", 0);
    attn_conf_buf *mb = attn_conf_add(d, "mask_bool", 0), *o = attn_conf_add(d, "out", 1);
    attn_conf_buf *l = attn_conf_add(d, "lse", 1), *dout = attn_conf_add(d, "dout", 0);
    attn_conf_buf *ks = attn_conf_add(d, "key_score", 1);
    int rc = attn_conf_buf_dense(q, c->dt_q, c->b, c->sq, c->hq, c->dk, hm, gin);
    if (c->layout == ATTN_LAYOUT_CACHE) {
        rc |= buf_cache(k, c->dt_kv, c->b, c->skv, c->hkv, c->dk, gin);
        rc |= buf_cache(v, c->dt_kv, c->b, c->skv, c->hkv, c->dv, gin);
        rc |= buf_padded(o, c->dt_out, c->b, c->sq, c->hq, c->dv);
    } else {
        rc |= attn_conf_buf_dense(k, c->dt_kv, c->b, c->skv, c->hkv, c->dk, hm, gin);
        rc |= attn_conf_buf_dense(v, c->dt_kv, c->b, c->skv, c->hkv, c->dv, hm, gin);
        rc |= attn_conf_buf_dense(o, c->dt_out, c->b, c->sq, c->hq, c->dv, hm,
                                  ATTN_CONF_GUARD_BYTES);
    }
    if (c->lse || c->backward) /* [B, Sq, Hq, 1] stored as contiguous [B, Hq, Sq] */
        rc |= attn_conf_buf_dense(l, ATTN_F32, c->b, c->sq, c->hq, 1, 1, ATTN_CONF_GUARD_BYTES);
    if (c->key_score)
        rc |= buf_key_score(ks, c);
    if (c->mask_add != ATTN_MASK_NONE)
        rc |= buf_mask(ma, c->dt_q, c, c->mask_add, gin);
    if (c->mask_bool != ATTN_MASK_NONE)
        rc |= buf_mask(mb, ATTN_U8, c, c->mask_bool, gin);
    if (c->backward) { /* dout: out's dtype and shape, dense */
        rc |= attn_conf_buf_dense(dout, c->dt_out, c->b, c->sq, c->hq, c->dv, hm, gin);
        rc |= make_grads(c, d);
    }
    return rc;
}

/* Special inputs go into every 13th key. */
#define PLANT_PERIOD 13

/* Special inputs (attn_sdpa_case.special), planted after the fill on the host views: both the
 * reference and the backend read them. */
static void plant_v_nonfinite(const attn_sdpa_case *c, attn_conf_data *d)
{
    const attn_tensor *v = attn_conf_host_view(d, "v");
    for (int64_t b = 0; b < c->b; b++)
        for (int64_t g = 0; g < c->hkv; g++)
            for (int64_t j = 0; j < c->skv; j++) {
                const int64_t r = j % PLANT_PERIOD, at = b * v->stride[0] + j * v->stride[1] +
                                                         g * v->stride[2];
                if (r == 5)
                    attn_store_f64(v->data, v->dtype, at + j % c->dv * v->stride[3], NAN);
                if (r == 6)
                    attn_store_f64(v->data, v->dtype, at + (j + 1) % c->dv * v->stride[3],
                                   INFINITY);
            }
}

/* Keys j % 13 == 5 get an additive -1e4 where the mask is finite (visible, but p underflows to
 * 0 even in f64) and NaN in their V rows: 0 * NaN must reach the rows that see them. */
static void plant_v_underflow(const attn_sdpa_case *c, attn_conf_data *d)
{
    const attn_tensor *m = attn_conf_host_view(d, "mask_add");
    for (int64_t i0 = 0; i0 < m->shape[0]; i0++)
        for (int64_t i1 = 0; i1 < m->shape[1]; i1++)
            for (int64_t i2 = 0; i2 < m->shape[2]; i2++)
                for (int64_t j = 5; j < c->skv; j += PLANT_PERIOD) {
                    const int64_t at = i0 * m->stride[0] + i1 * m->stride[1] +
                                       i2 * m->stride[2] + j * m->stride[3];
                    if (isfinite(attn_load_f64(m->data, m->dtype, at)))
                        attn_store_f64(m->data, m->dtype, at, -1e4);
                }
    const attn_tensor *v = attn_conf_host_view(d, "v");
    for (int64_t b = 0; b < c->b; b++)
        for (int64_t g = 0; g < c->hkv; g++)
            for (int64_t j = 5; j < c->skv; j += PLANT_PERIOD)
                attn_store_f64(v->data, v->dtype,
                               b * v->stride[0] + j * v->stride[1] + g * v->stride[2] +
                                   j % c->dv * v->stride[3],
                               NAN);
}

/* NaN in q[0, 0, 0, 0] (that row) and in k[B-1, Skv/2, 0, 1] (every row that sees the key). */
static void plant_qk_nan(const attn_sdpa_case *c, attn_conf_data *d)
{
    const attn_tensor *q = attn_conf_host_view(d, "q"), *k = attn_conf_host_view(d, "k");
    attn_store_f64(q->data, q->dtype, 0, NAN);
    attn_store_f64(k->data, k->dtype,
                   (c->b - 1) * k->stride[0] + c->skv / 2 * k->stride[1] +
                       (c->dk > 1) * k->stride[3],
                   NAN);
}

static int sdpa_check(const void *cv, char *err, size_t errsize)
{
    const attn_sdpa_case *c = cv;
    if (c->special == ATTN_SPECIAL_V_UNDERFLOW && c->mask_add == ATTN_MASK_NONE)
        return attn_perr(err, errsize, "special=v_underflow needs mask_add");
    if (c->backward && c->special != ATTN_SPECIAL_NONE)
        return attn_perr(err, errsize, "special inputs are forward cases (no backward)");
    if (c->dmask && (!c->backward || c->mask_add == ATTN_MASK_NONE))
        return attn_perr(err, errsize, "dmask_add needs backward and mask_add");
    if (c->key_score && c->backward)
        return attn_perr(err, errsize, "ks is a forward output (no backward)");
    return 0;
}

static void sdpa_fill(const void *cv, uint64_t seed, attn_conf_data *d)
{
    const attn_sdpa_case *c = cv;
    attn_fill_tensor(attn_conf_host_view(d, "q"), c->fill, seed, ATTN_FILL_Q);
    attn_fill_tensor(attn_conf_host_view(d, "k"), c->fill, seed, ATTN_FILL_K);
    attn_fill_tensor(attn_conf_host_view(d, "v"), c->fill, seed, ATTN_FILL_V);
    if (attn_conf_host_view(d, "mask_add"))
        attn_fill_mask_add(attn_conf_host_view(d, "mask_add"), seed);
    if (attn_conf_host_view(d, "mask_bool"))
        attn_fill_mask_bool(attn_conf_host_view(d, "mask_bool"), seed);
    if (c->special == ATTN_SPECIAL_V_NONFINITE)
        plant_v_nonfinite(c, d);
    else if (c->special == ATTN_SPECIAL_V_UNDERFLOW)
        plant_v_underflow(c, d);
    else if (c->special == ATTN_SPECIAL_QK_NAN)
        plant_qk_nan(c, d);
    if (c->backward)
        attn_fill_dout(attn_conf_host_view(d, "dout"), seed);
}

/* Elements of the largest tensors, in double so absurd sizes cannot overflow. */
static double sdpa_elems(const void *cv)
{
    const attn_sdpa_case *c = cv;
    const double d = (double)(c->dk > c->dv ? c->dk : c->dv) + OUT_PAD;
    return (double)c->b * ((double)c->sq * (double)c->hq * (d + (double)c->skv) +
                           ((double)c->skv + CACHE_LEAD + CACHE_TRAIL) * (double)c->hkv * d);
}

/* ---- the call ------------------------------------------------------------------------------- */

/* The descriptor with the masks of views(d, name) attached. */
attn_sdpa_desc attn_sdpa_conf_desc(const attn_sdpa_case *c, const attn_conf_data *d,
                                   const attn_tensor *(*view)(const attn_conf_data *,
                                                              const char *))
{
    attn_sdpa_desc desc = attn_sdpa_case_desc(c);
    desc.mask_add = view(d, "mask_add");
    desc.mask_bool = view(d, "mask_bool");
    return desc;
}

/* The forward: attn_sdpa_forward, or attn_sdpa_forward_ex when the case asks for key_score
 * (the other cases keep the plain call covered). A backend that does not compute key_score
 * refuses it in its capability check: the case is skipped. */
static attn_status sdpa_call(attn_backend *be, const void *cv, const attn_conf_data *d,
                             attn_conf_call what, char *impl, size_t n)
{
    const attn_sdpa_case *c = cv;
    const attn_sdpa_desc desc = attn_sdpa_conf_desc(c, d, attn_conf_run_view);
    const attn_tensor *q = attn_conf_run_view(d, "q"), *k = attn_conf_run_view(d, "k");
    const attn_tensor *v = attn_conf_run_view(d, "v"), *o = attn_conf_run_view(d, "out");
    const attn_tensor *l = attn_conf_run_view(d, "lse");
    if (c->key_score) {
        const attn_sdpa_outputs outs = {.out = o, .lse = l,
                                        .key_score = attn_conf_run_view(d, "key_score")};
        if (what == ATTN_CONF_IMPL)
            return attn_sdpa_impl_name_ex(be, &desc, q, k, v, &outs, impl, n);
        return attn_sdpa_forward_ex(be, &desc, q, k, v, &outs);
    }
    if (what == ATTN_CONF_IMPL)
        return attn_sdpa_impl_name(be, &desc, q, k, v, o, l, impl, n);
    return attn_sdpa_forward(be, &desc, q, k, v, o, l);
}

/* A backward case: the forward, then the backward from the backend's own out and lse, as a
 * user calls them. Its implementation name is "FORWARD + BACKWARD"; a backend without the
 * backward (ATTN_ERR_UNSUPPORTED from its capability check) skips the case. */
static attn_status sdpa_call_backward(attn_backend *be, const void *cv, const attn_conf_data *d,
                                      attn_conf_call what, char *impl, size_t n)
{
    const attn_sdpa_desc desc = attn_sdpa_conf_desc(cv, d, attn_conf_run_view);
    const attn_tensor *q = attn_conf_run_view(d, "q"), *k = attn_conf_run_view(d, "k");
    const attn_tensor *v = attn_conf_run_view(d, "v"), *o = attn_conf_run_view(d, "out");
    const attn_tensor *l = attn_conf_run_view(d, "lse"), *dout = attn_conf_run_view(d, "dout");
    const attn_sdpa_grads g = {.dq = attn_conf_run_view(d, "dq"),
                               .dk = attn_conf_run_view(d, "dk"),
                               .dv = attn_conf_run_view(d, "dv"),
                               .dmask_add = attn_conf_run_view(d, "dmask_add")};
    if (what == ATTN_CONF_IMPL) {
        char fwd[128], bwd[128];
        attn_status st = attn_sdpa_impl_name(be, &desc, q, k, v, o, l, fwd, sizeof fwd);
        if (st == ATTN_OK)
            st = attn_sdpa_backward_impl_name(be, &desc, q, k, v, o, l, dout, &g, bwd,
                                              sizeof bwd);
        if (st == ATTN_OK)
            snprintf(impl, n, "%s + %s", fwd, bwd);
        return st;
    }
    attn_status st = attn_sdpa_forward(be, &desc, q, k, v, o, l);
    return st == ATTN_OK ? attn_sdpa_backward(be, &desc, q, k, v, o, l, dout, &g) : st;
}

static attn_status sdpa_call_any(attn_backend *be, const void *cv, const attn_conf_data *d,
                                 attn_conf_call what, char *impl, size_t n)
{
    const attn_sdpa_case *c = cv;
    return (c->backward ? sdpa_call_backward : sdpa_call)(be, cv, d, what, impl, n);
}

/* ---- gold ----------------------------------------------------------------------------------- */

/* ||x[b, s, h, :]||_2 over the first n elements of an operand's last dim. */
static double vec_norm(const attn_operand *o, int64_t b, int64_t s, int64_t h, int64_t n)
{
    double s2 = 0.0;
    for (int64_t d = 0; d < n; d++) {
        double x = attn_load_f64(o->ptr, o->dtype, attn_at(o, b, s, h, d));
        s2 += x * x;
    }
    return sqrt(s2);
}

/* Largest finite |mask_add| (0 without a mask). */
static double mask_abs_max(const attn_operand *m, int64_t skv)
{
    double mx = 0.0;
    if (!m->t)
        return 0.0;
    for (int64_t b = 0; b < m->t->shape[0]; b++)
        for (int64_t s = 0; s < m->t->shape[1]; s++)
            for (int64_t h = 0; h < m->t->shape[2]; h++)
                for (int64_t j = 0; j < skv; j++) {
                    double x = fabs(attn_load_f64(m->ptr, m->dtype, attn_at(m, b, s, h, j)));
                    if (isfinite(x) && x > mx)
                        mx = x;
                }
    return mx;
}

/* Bound on the logit magnitude of each row, A = |scale| |q_i|_2 max_j |k_j|_2 + max|mask_add|
 * (Cauchy-Schwarz): a float kernel's logit error is ~u sqrt(Dk) A, and it moves each output by
 * up to ~2 |ds| absmag, so the output's condition is absmag (1 + A); see docs/conformance.md. */
static void logit_bounds(const attn_sdpa_problem *p, double *row)
{
    const double mmax = mask_abs_max(&p->mask_add, p->Skv);
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++) {
            double kmax = 0.0;
            for (int64_t j = 0; j < p->Skv; j++)
                kmax = fmax(kmax, vec_norm(&p->k, b, j, g, p->Dk));
            for (int64_t i = 0; i < p->Sq; i++)
                for (int64_t h = g * p->group; h < (g + 1) * p->group; h++)
                    row[(b * p->Sq + i) * p->Hq + h] =
                        fabs(p->scale) * vec_norm(&p->q, b, i, h, p->Dk) * kmax + mmax;
        }
}

/* Longest accumulation: Dk for the dot products plus the widest band of attended keys. */
static double acc_length(const attn_sdpa_problem *p)
{
    int64_t w = 0, lo, hi;
    for (int64_t i = 0; i < p->Sq; i++) {
        attn_band(p, i, &lo, &hi);
        if (hi - lo > w)
            w = hi - lo;
    }
    return (double)(p->Dk + w);
}

/* Gold, lowp (rounded to the output dtype, as a naive kernel would store it), conditions and
 * the fully-masked-row map of out [B][Sq][Hq][Dv]; of lse [B][Hq][Sq] (order b, h, s). */
static attn_status compute_gold(const attn_sdpa_problem *p, attn_dtype out_dt, attn_conf_gold *go,
                                attn_conf_gold *gl, double *row)
{
    attn_status st = attn_ref_sdpa(p, ATTN_REF_F64, go->gold, gl->gold, go->cond);
    if (st == ATTN_OK)
        st = attn_ref_sdpa(p, ATTN_REF_F32, go->lowp, gl->lowp, NULL);
    if (st != ATTN_OK)
        return st;
    logit_bounds(p, row);
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t h = 0; h < p->Hq; h++) {
                const int64_t r = (b * p->Sq + i) * p->Hq + h, l = (b * p->Hq + h) * p->Sq + i;
                const int masked = gl->gold[l] == -INFINITY;
                gl->cond[l] = 1.0 + fabs(gl->gold[l]) + row[r];
                for (int64_t d = r * p->Dv; d < (r + 1) * p->Dv; d++) {
                    unsigned char tmp[4];
                    attn_store_f64(tmp, out_dt, 0, go->lowp[d]);
                    go->lowp[d] = attn_load_f64(tmp, out_dt, 0);
                    go->cond[d] *= 1.0 + row[r];
                    go->must_zero[d] = (uint8_t)masked;
                }
            }
    return ATTN_OK;
}

/* key_score [B][Skv][Hkv]: gold (f64), lowp (the same sums in float working precision, which
 * are f32 values already), the condition of each element, sum over its rows of
 * p_ij (1 + 2 A_i + |lse_i|), and must_zero where no row gives the key any probability. A_i is
 * the row's logit bound of out's condition: a logit error ~u sqrt(Dk) A_i moves p_ij by
 * ~2 p_ij |ds|; fast kernels take p = exp(s - lse) from the final f32 LSE, so a recomputed
 * logit's error meets the LSE's (A_i once more, and |lse_i| of its rounding) without the
 * cancellation naive code enjoys (the backward's row factor). n_acc: the logits' Dk, the
 * widest row sum, and the group * Sq rows summed into each key. docs/conformance.md derives
 * them. lse is the gold LSE [B][Hq][Sq]. */
static int key_score_gold(const attn_sdpa_problem *p, const double *row, const double *lse,
                          attn_conf_gold *gk)
{
    const int64_t nr = p->B * p->Sq * p->Hq;
    *gk = (attn_conf_gold){.name = "key_score", .rank = 3, .order = {0, 1, 2, 3}};
    double *w = malloc(sizeof(double) * (size_t)(nr ? nr : 1));
    if (!w || attn_conf_gold_alloc(gk, p->B * p->Skv * p->Hkv, 1)) {
        free(w);
        return 1;
    }
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t h = 0; h < p->Hq; h++) {
                const int64_t r = (b * p->Sq + i) * p->Hq + h;
                const double l = lse[(b * p->Hq + h) * p->Sq + i];
                w[r] = 1.0 + 2.0 * row[r] + (isfinite(l) ? fabs(l) : 0.0);
            }
    attn_status st = attn_ref_sdpa_key_score(p, ATTN_REF_F64, NULL, gk->gold);
    if (st == ATTN_OK)
        st = attn_ref_sdpa_key_score(p, ATTN_REF_F32, NULL, gk->lowp);
    if (st == ATTN_OK)
        st = attn_ref_sdpa_key_score(p, ATTN_REF_F64, w, gk->cond);
    free(w);
    if (st != ATTN_OK)
        return 2;
    for (int64_t e = 0; e < gk->n; e++)
        gk->must_zero[e] = (uint8_t)(gk->gold[e] == 0.0);
    attn_policy_setup(&gk->policy, ATTN_F32, 0);
    gk->policy.n_acc = acc_length(p) + (double)(p->group * p->Sq);
    gk->policy.calib_factor = 8; /* P^T 1: the class of the backward's dv = P^T dO */
    return 0;
}

static int sdpa_gold(const void *cv, const attn_conf_data *d, attn_conf_gold *g, int *ng)
{
    const attn_sdpa_case *c = cv;
    const attn_sdpa_desc host = attn_sdpa_conf_desc(c, d, attn_conf_host_view);
    const attn_sdpa_outputs outs = {.out = attn_conf_host_view(d, "out"),
                                    .lse = attn_conf_host_view(d, "lse"),
                                    .key_score = attn_conf_host_view(d, "key_score")};
    attn_sdpa_problem p;
    if (attn_sdpa_validate_ex(&host, attn_conf_host_view(d, "q"), attn_conf_host_view(d, "k"),
                              attn_conf_host_view(d, "v"), &outs, &p) != ATTN_OK)
        return 1;
    const int64_t nr = p.B * p.Sq * p.Hq;
    attn_conf_gold *go = &g[0], *gl = &g[1];
    *go = (attn_conf_gold){.name = "out", .rank = 4, .order = {0, 1, 2, 3}};
    *gl = (attn_conf_gold){.name = "lse", .rank = 3, .order = {0, 2, 1, 3}};
    /* lse's gold is computed even when the case checks no lse: it marks the masked rows */
    double *row = malloc(sizeof(double) * (size_t)nr);
    int rc = !row || attn_conf_gold_alloc(go, nr * p.Dv, 1) || attn_conf_gold_alloc(gl, nr, 0);
    if (!rc && compute_gold(&p, c->dt_out, go, gl, row) != ATTN_OK)
        rc = 2;
    if (!rc) {
        attn_policy_setup(&go->policy, c->dt_out, 0);
        go->policy.n_acc = acc_length(&p);
        gl->policy = go->policy;
        attn_policy_setup(&gl->policy, ATTN_F32, 1);
        *ng = c->lse || c->backward ? 2 : 1;
    }
    /* key_score follows the checked ones; an unchecked lse moves past them (the harness
     * frees every entry) */
    const double *lse_gold = gl->gold;
    if (!rc && c->key_score && (rc = key_score_gold(&p, row, lse_gold, &g[2])) == 0) {
        if (*ng == 1) {
            const attn_conf_gold t = g[1];
            g[1] = g[2];
            g[2] = t;
        }
        (*ng)++;
    }
    /* the gradients follow out and lse (the backward reads the backend's own) */
    if (!rc && c->backward) {
        const attn_sdpa_fwd_gold fw = {row, lse_gold, acc_length(&p)};
        int nb = 0;
        rc = attn_sdpa_backward_gold(c, &host, d, &fw, g + *ng, &nb);
        *ng += nb;
    }
    free(row);
    return rc;
}

/* ---- the driver ----------------------------------------------------------------------------- */

static void case_default(void *c)
{
    attn_sdpa_case_default(c);
}

static int case_token(char *tok, void *c, char *err, size_t errsize)
{
    return attn_sdpa_case_token(tok, c, err, errsize);
}

static int case_format(const void *c, char *buf, size_t size)
{
    return attn_sdpa_case_format(c, buf, size);
}

static unsigned features(const void *c)
{
    return attn_sdpa_case_features(c);
}

static double cost(const void *c)
{
    return attn_sdpa_case_cost(c);
}

static const attn_conform_driver attn_sdpa_driver = {
    .stem = "sdpa",
    .case_default = case_default,
    .case_token = case_token,
    .case_check = sdpa_check,
    .case_format = case_format,
    .features = features,
    .feature_names = attn_sdpa_feature_names,
    .n_features = ATTN_FEAT_COUNT,
    .elems = sdpa_elems,
    .cost = cost,
    .make = sdpa_make,
    .fill = sdpa_fill,
    .call = sdpa_call_any,
    .gold = sdpa_gold,
};

/* ---- the op in the `attn` command ------------------------------------------------------------ */

const attn_tool_op attn_sdpa_tool = {
    .stem = "sdpa",
    .summary = "softmax attention (scaled dot-product, flash attention semantics)",
    .conform = &attn_sdpa_driver,
    .run = attn_sdpa_cmd_run,
    .run_help = attn_sdpa_run_help,
    .run_opts_help = attn_args_sdpa_help,
#ifdef ATTN_HAVE_CPU
    .bench = attn_sdpa_cmd_bench,
#endif
};
