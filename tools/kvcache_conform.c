/* kvcache_conform.c - the conformance driver of the attention over cache slots
 * (attn_conform.h): the tensors of a case (q, q_pos, k, v, slot_pos, out, key_score), their
 * fills (slot positions drawn from the seed: a random subset of 0 .. span-1 per KV head, in
 * shuffled or sorted slots, with empty slots holding NaN to prove they are never read), the
 * call through the public API, and the gold of out and key_score from the f64 reference
 * (reference/kvcache.c) with their condition numbers. Cases: kvcache_case.c; built-in list:
 * tests/cases/kvcache.cases. */
#include "attn_conform.h"

#include "attn_half.h"
#include "attn_kvcache_problem.h"
#include "attn_rng.h"
#include "attn_tool_ops.h"
#include "kvcache_case.h"
#include "kvcache_ref.h"
#include "kvcache_tool.h"
#include "attn_fill.h"
#include "ref_alloc.h"

#include <math.h>
#include <stdlib.h>

_Static_assert(sizeof(attn_kvcache_case) <= ATTN_CASE_DATA_MAX,
               "attn_case holds attn_kvcache_case");

/* RNG streams of the slot layout (the tensors' fills use their own ids). */
#define KV_STREAM_HOLES 48
#define KV_STREAM_POS 49
#define KV_STREAM_SHUFFLE 50
/* Counters of one (batch, KV head) draw apart by this much. */
#define KV_DRAW_STRIDE ((uint64_t)1 << 42)
/* The rotation's error budget on top of the dot products (a rotated q and k are each about
 * 4 roundings away from the exact ones). */
#define KV_ROPE_ACC 8.0

/* ---- tensors -------------------------------------------------------------------------------- */

static int kv_make(const void *cv, size_t gin, attn_conf_data *d)
{
    const attn_kvcache_case *c = cv;
    const size_t gout = ATTN_CONF_GUARD_BYTES;
    attn_conf_buf *q = attn_conf_add(d, "q", 0), *qp = attn_conf_add(d, "q_pos", 0);
    attn_conf_buf *k = attn_conf_add(d, "k", 0), *v = attn_conf_add(d, "v", 0);
    attn_conf_buf *sp = attn_conf_add(d, "slot_pos", 0), *o = attn_conf_add(d, "out", 1);
    attn_conf_buf *ks = attn_conf_add(d, "key_score", 1);
    int rc = attn_conf_buf_dense(q, c->dt_q, c->b, c->sq, c->hq, c->dk, 0, gin);
    rc |= attn_conf_buf_dense(qp, ATTN_I64, c->b, c->sq, 1, 1, 0, gin);
    rc |= attn_conf_buf_dense(k, c->dt_kv, c->b, c->nslot, c->hkv, c->dk, c->bhsd, gin);
    rc |= attn_conf_buf_dense(v, c->dt_kv, c->b, c->nslot, c->hkv, c->dv, c->bhsd, gin);
    rc |= attn_conf_buf_dense(sp, ATTN_I64, c->b, c->nslot, c->hkv, 1, 0, gin);
    rc |= attn_conf_buf_dense(o, c->dt_out, c->b, c->sq, c->hq, c->dv, 0, gout);
    if (c->key_score)
        rc |= attn_conf_buf_dense(ks, ATTN_F32, c->b, c->nslot, c->hkv, 1, c->bhsd, gout);
    return rc;
}

static int kv_check(const void *cv, char *err, size_t errsize)
{
    return attn_kvcache_case_check(cv, err, errsize);
}

/* Selection sampling (Knuth's algorithm S): whether item t of n (from the first) is among the
 * `want` chosen of them when `got` were chosen before it. */
static int draw(uint64_t seed, uint64_t stream, uint64_t at, int64_t t, int64_t n, int64_t want,
                int64_t got)
{
    return attn_rng_unit(seed, stream, at) * (double)(n - t) < (double)(want - got);
}

static int64_t *slot_at(const attn_tensor *sp, int64_t b, int64_t j, int64_t g)
{
    return (int64_t *)sp->data + b * sp->stride[0] + j * sp->stride[1] + g * sp->stride[2];
}

/* The slots of KV head g of batch b: `holes` empty slots drawn among nslot; the live ones get,
 * in slot order, the newest min(live, sq + lag) positions (the queries' own tokens and the
 * lag after them) after a draw of the others from the older positions; then, unless sorted,
 * the slots are shuffled (Fisher-Yates). */
static void fill_slots(const attn_kvcache_case *c, uint64_t seed, const attn_tensor *sp,
                       int64_t b, int64_t g)
{
    const int64_t n = c->nslot, holes = attn_kvcache_case_holes(c), live = n - holes;
    const int64_t span = attn_kvcache_case_span(c);
    const int64_t newest = live < c->sq + c->lag ? live : c->sq + c->lag;
    const int64_t older = span - newest; /* positions 0 .. older-1 to draw live - newest from */
    const uint64_t base = (uint64_t)(b * c->hkv + g) * KV_DRAW_STRIDE;
    int64_t got_holes = 0, got_pos = 0, t = 0;
    for (int64_t j = 0; j < n; j++) {
        if (draw(seed, KV_STREAM_HOLES, base + (uint64_t)j, j, n, holes, got_holes)) {
            got_holes++;
            *slot_at(sp, b, j, g) = -1;
            continue;
        }
        if (got_pos < live - newest) { /* the next drawn older position */
            while (!draw(seed, KV_STREAM_POS, base + (uint64_t)t, t, older, live - newest,
                         got_pos))
                t++;
            *slot_at(sp, b, j, g) = t++;
        } else {
            *slot_at(sp, b, j, g) = older + got_pos - (live - newest);
        }
        got_pos++;
    }
    for (int64_t j = n - 1; !c->sorted && j > 0; j--) {
        const int64_t r = (int64_t)(attn_rng_bits(seed, KV_STREAM_SHUFFLE, base + (uint64_t)j) %
                                    (uint64_t)(j + 1));
        const int64_t x = *slot_at(sp, b, j, g);
        *slot_at(sp, b, j, g) = *slot_at(sp, b, r, g);
        *slot_at(sp, b, r, g) = x;
    }
}

/* NaN in every element of the k and v rows of empty slots: never read, never seen. */
static void poison_empty(const attn_kvcache_case *c, const attn_conf_data *d)
{
    const attn_tensor *sp = attn_conf_host_view(d, "slot_pos");
    const attn_tensor *kv[2] = {attn_conf_host_view(d, "k"), attn_conf_host_view(d, "v")};
    for (int64_t b = 0; b < c->b; b++)
        for (int64_t j = 0; j < c->nslot; j++)
            for (int64_t g = 0; g < c->hkv; g++) {
                if (*slot_at(sp, b, j, g) >= 0)
                    continue;
                for (int x = 0; x < 2; x++)
                    for (int64_t e = 0; e < kv[x]->shape[3]; e++)
                        attn_store_f64(kv[x]->data, kv[x]->dtype,
                                       b * kv[x]->stride[0] + j * kv[x]->stride[1] +
                                           g * kv[x]->stride[2] + e * kv[x]->stride[3],
                                       NAN);
            }
}

/* q, k, v uniform (the q, k, v streams); queries at span - sq - lag + i; the slots drawn. */
static void kv_fill(const void *cv, uint64_t seed, attn_conf_data *d)
{
    const attn_kvcache_case *c = cv;
    attn_fill_tensor(attn_conf_host_view(d, "q"), ATTN_FILL_UNIFORM, seed, ATTN_FILL_Q);
    attn_fill_tensor(attn_conf_host_view(d, "k"), ATTN_FILL_UNIFORM, seed, ATTN_FILL_K);
    attn_fill_tensor(attn_conf_host_view(d, "v"), ATTN_FILL_UNIFORM, seed, ATTN_FILL_V);
    const attn_tensor *qp = attn_conf_host_view(d, "q_pos");
    const int64_t q0 = attn_kvcache_case_span(c) - c->sq - c->lag;
    for (int64_t b = 0; b < c->b; b++)
        for (int64_t i = 0; i < c->sq; i++)
            ((int64_t *)qp->data)[b * qp->stride[0] + i * qp->stride[1]] = q0 + i;
    const attn_tensor *sp = attn_conf_host_view(d, "slot_pos");
    for (int64_t b = 0; b < c->b; b++)
        for (int64_t g = 0; g < c->hkv; g++)
            fill_slots(c, seed, sp, b, g);
    poison_empty(c, d);
}

/* Elements of the largest tensors, in double so absurd sizes cannot overflow. */
static double kv_elems(const void *cv)
{
    const attn_kvcache_case *c = cv;
    const double d = (double)(c->dk > c->dv ? c->dk : c->dv);
    return (double)c->b * ((double)c->sq * (double)c->hq * d +
                           (double)c->nslot * (double)c->hkv * (d + 1.0)) +
           (double)attn_kvcache_case_span(c) / 8.0; /* the slot draw walks the span */
}

/* ---- the call ------------------------------------------------------------------------------- */

/* The positions are host metadata: the backend always gets their host views (in device mode
 * too, where the other operands are the backend's buffers). */
static attn_status kv_call(attn_backend *be, const void *cv, const attn_conf_data *d,
                           attn_conf_call what, char *impl, size_t n)
{
    const attn_kvcache_attn_desc desc = attn_kvcache_case_desc(cv);
    const attn_tensor *q = attn_conf_run_view(d, "q"), *k = attn_conf_run_view(d, "k");
    const attn_tensor *v = attn_conf_run_view(d, "v"), *o = attn_conf_run_view(d, "out");
    const attn_tensor *qp = attn_conf_host_view(d, "q_pos");
    const attn_tensor *sp = attn_conf_host_view(d, "slot_pos");
    const attn_tensor *ks = attn_conf_run_view(d, "key_score");
    if (what == ATTN_CONF_IMPL)
        return attn_kvcache_attention_impl_name(be, &desc, q, qp, k, v, sp, o, ks, impl, n);
    return attn_kvcache_attention(be, &desc, q, qp, k, v, sp, o, ks);
}

/* ---- gold ----------------------------------------------------------------------------------- */

/* Most slots any query sees: the accumulation length of its softmax and P V. */
static double seen_max(const attn_kvcache_problem *p)
{
    int64_t w = 0;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t g = 0; g < p->Hkv; g++) {
                int64_t n = 0;
                for (int64_t j = 0; j < p->Nslot; j++) {
                    const int64_t x = attn_kv_slot_pos(p, b, j, g);
                    n += x >= 0 && x <= attn_kv_qpos(p, b, i);
                }
                w = n > w ? n : w;
            }
    return (double)w;
}

static double acc_length(const attn_kvcache_problem *p)
{
    return (double)p->Dk + seen_max(p) + (p->positions != ATTN_KV_POS_STORED ? KV_ROPE_ACC : 0);
}

/* out [B][Sq][Hq][Dv]: gold, lowp (rounded to out's dtype as naive code stores it), the
 * condition absmag (1 + A) with A the row's logit bound (a logit error ~u sqrt(Dk) A moves
 * each output by up to ~2 |ds| absmag, as for sdpa: docs/conformance.md), and must_zero on the
 * rows that see no slot. lse and the logit bounds go to row[] and lse[]. */
static int out_gold(const attn_kvcache_problem *p, attn_dtype out_dt, attn_conf_gold *go,
                    double *row, double *lse)
{
    const attn_ref_kvcache_out f64 = {.out = go->gold, .absmag = go->cond, .lse = lse,
                                      .logit_bound = row};
    const attn_ref_kvcache_out f32 = {.out = go->lowp};
    if (attn_ref_kvcache(p, ATTN_REF_F64, &f64) != ATTN_OK ||
        attn_ref_kvcache(p, ATTN_REF_F32, &f32) != ATTN_OK)
        return 2;
    const int64_t nr = p->B * p->Sq * p->Hq;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t e = r * p->Dv; e < (r + 1) * p->Dv; e++) {
            unsigned char tmp[4];
            attn_store_f64(tmp, out_dt, 0, go->lowp[e]);
            go->lowp[e] = attn_load_f64(tmp, out_dt, 0);
            go->cond[e] *= 1.0 + row[r];
            go->must_zero[e] = (uint8_t)(lse[r] == -INFINITY);
        }
    attn_policy_setup(&go->policy, out_dt, 0);
    go->policy.n_acc = acc_length(p);
    return 0;
}

/* key_score [B][Nslot][Hkv]: gold, lowp (float sums), the condition sum over rows of
 * p_rj (1 + A_r), and must_zero where no row gives the slot any probability (empty slots
 * among them). As sdpa's key_score (sdpa_conform.c). */
static int key_score_gold(const attn_kvcache_problem *p, const double *row, attn_conf_gold *gk)
{
    const int64_t nr = p->B * p->Sq * p->Hq;
    *gk = (attn_conf_gold){.name = "key_score", .rank = 3, .order = {0, 1, 2, 3}};
    double *w = malloc(sizeof(double) * (size_t)(nr ? nr : 1));
    double *tmp = attn_ref_alloc(nr, p->Dv);
    int rc = !w || !tmp || attn_conf_gold_alloc(gk, p->B * p->Nslot * p->Hkv, 1);
    for (int64_t r = 0; !rc && r < nr; r++)
        w[r] = 1.0 + row[r];
    const attn_ref_kvcache_out f64 = {.out = tmp, .key_score = gk->gold};
    const attn_ref_kvcache_out f32 = {.out = tmp, .key_score = gk->lowp};
    const attn_ref_kvcache_out cond = {.out = tmp, .key_score = gk->cond, .row_weight = w};
    if (!rc && (attn_ref_kvcache(p, ATTN_REF_F64, &f64) != ATTN_OK ||
                attn_ref_kvcache(p, ATTN_REF_F32, &f32) != ATTN_OK ||
                attn_ref_kvcache(p, ATTN_REF_F64, &cond) != ATTN_OK))
        rc = 2;
    free(w);
    free(tmp);
    if (rc)
        return rc;
    for (int64_t e = 0; e < gk->n; e++)
        gk->must_zero[e] = (uint8_t)(gk->gold[e] == 0.0);
    attn_policy_setup(&gk->policy, ATTN_F32, 0);
    gk->policy.n_acc = acc_length(p) + (double)(p->group * p->Sq);
    gk->policy.calib_factor = 8; /* P^T 1, as sdpa's key_score */
    return 0;
}

static int kv_gold(const void *cv, const attn_conf_data *d, attn_conf_gold *g, int *ng)
{
    const attn_kvcache_case *c = cv;
    const attn_kvcache_attn_desc desc = attn_kvcache_case_desc(c);
    attn_kvcache_problem p;
    if (attn_kvcache_attn_validate(
            &desc, attn_conf_host_view(d, "q"), attn_conf_host_view(d, "q_pos"),
            attn_conf_host_view(d, "k"), attn_conf_host_view(d, "v"),
            attn_conf_host_view(d, "slot_pos"), attn_conf_host_view(d, "out"),
            attn_conf_host_view(d, "key_score"), &p) != ATTN_OK)
        return 1;
    const int64_t nr = p.B * p.Sq * p.Hq;
    attn_conf_gold *go = &g[0];
    *go = (attn_conf_gold){.name = "out", .rank = 4, .order = {0, 1, 2, 3}};
    double *row = attn_ref_alloc(nr, 1), *lse = attn_ref_alloc(nr, 1);
    int rc = !row || !lse || attn_conf_gold_alloc(go, nr * p.Dv, 1);
    if (!rc)
        rc = out_gold(&p, c->dt_out, go, row, lse);
    *ng = 1;
    if (!rc && c->key_score) {
        rc = key_score_gold(&p, row, &g[1]);
        *ng = 2;
    }
    free(row);
    free(lse);
    return rc;
}

/* ---- the driver ----------------------------------------------------------------------------- */

static void case_default(void *c)
{
    attn_kvcache_case_default(c);
}

static int case_token(char *tok, void *c, char *err, size_t errsize)
{
    return attn_kvcache_case_token(tok, c, err, errsize);
}

static int case_format(const void *c, char *buf, size_t size)
{
    return attn_kvcache_case_format(c, buf, size);
}

static unsigned features(const void *c)
{
    return attn_kvcache_case_features(c);
}

static double cost(const void *c)
{
    return attn_kvcache_case_cost(c);
}

static const attn_conform_driver attn_kvcache_driver = {
    .stem = "kvcache",
    .case_default = case_default,
    .case_token = case_token,
    .case_check = kv_check,
    .case_format = case_format,
    .features = features,
    .feature_names = attn_kvcache_feature_names,
    .n_features = ATTN_KV_FEAT_COUNT,
    .elems = kv_elems,
    .cost = cost,
    .make = kv_make,
    .fill = kv_fill,
    .call = kv_call,
    .gold = kv_gold,
};

/* ---- the op in the `attn` command ------------------------------------------------------------ */

#ifdef ATTN_HAVE_CPU
#include "kvcache_bench.h" /* attn bench --op kvcache: cpu builds only (tools/kvcache_bench.c) */
#endif

const attn_tool_op attn_kvcache_tool = {
    .stem = "kvcache",
    .summary = "attention over KV-cache slots (holes, any slot order, RoPE at original or "
               "in-cache positions, key_score)",
    .conform = &attn_kvcache_driver,
    .run = attn_kvcache_cmd_run,
    .run_help = attn_kvcache_run_help,
    .run_opts_help = attn_args_kvcache_help,
#ifdef ATTN_HAVE_CPU
    .bench = attn_kvcache_cmd_bench,
#endif
};
