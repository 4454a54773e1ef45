/* check_kvcache_policy.c - the KV cache's eviction policies and SqueezeAttention's budgets
 * against fixed worked examples (squeeze.md §2.4 and §3.4, derived by hand below) and against
 * the naive simulation of reference/kvcache_policy.c, on every backend built: the H2O toy through
 * the real cache, the StreamingLLM trim, ties evicting the older token, the k-means dynamic
 * program equal to brute force, the budget total, and invariants (a budget covering the
 * sequence equals the full cache, holes equal the compacted cache, growth keeps the contents,
 * kept positions equal the simulation's step by step, memory accounting). */
#include "attn/attn.h"
#include "attn_half.h"
#include "attn_rng.h"
#include "kvcache_policy_ref.h"

#include "check_badinput.h"
#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HKV = 2, HQ = 4, DK = 8, DV = 6, MAXT = 96 };

/* ---- building blocks of the tests -------------------------------------------------------- */

typedef struct rng {
    uint64_t seed, i;
} rng;

static double rnd(rng *r, double lo, double hi)
{
    return attn_rng_uniform(r->seed, 0, r->i++, lo, hi);
}

static int64_t rnd_int(rng *r, int64_t lo, int64_t hi) /* lo .. hi inclusive */
{
    return lo + (int64_t)(attn_rng_unit(r->seed, 1, r->i++) * (double)(hi - lo + 1));
}

/* The backend of loop index i, or NULL (skipped, said on stderr) where it is not built. */
static attn_backend *backend_or_skip(int i)
{
    attn_backend *be = NULL;
    if (!attn_bad_available(attn_bad_backend(i)))
        return NULL;
    ck_assert_int_eq(attn_backend_open(attn_bad_backend(i), NULL, &be), ATTN_OK);
    return be;
}

static attn_kvcache_desc cache_desc(attn_kv_policy p, int64_t hkv, int64_t dk, int64_t dv,
                                    int64_t budget, int64_t sinks, int64_t recent)
{
    attn_kvcache_desc d = attn_kvcache_desc_default();
    d.kv_heads = hkv;
    d.head_dim_k = dk;
    d.head_dim_v = dv;
    d.policy = p;
    d.budget = budget;
    d.sinks = sinks;
    d.recent = recent;
    return d;
}

static attn_kvcache *cache_new(attn_backend *be, const attn_kvcache_desc *d)
{
    attn_kvcache *c = NULL;
    ck_assert_msg(attn_kvcache_create(be, d, &c) == ATTN_OK, "%s: create: %s",
                  attn_backend_name(be), attn_last_error());
    return c;
}

/* A cache of desc d on the backend of loop index i: 0 (skipped) where that is not built. */
typedef struct on_backend {
    attn_backend *be;
    attn_kvcache *c;
} on_backend;

static int open_on(on_backend *o, int i, const attn_kvcache_desc *d)
{
    o->be = backend_or_skip(i);
    o->c = o->be ? cache_new(o->be, d) : NULL;
    return o->be != NULL;
}

static void close_on(on_backend *o)
{
    attn_kvcache_destroy(o->c);
    attn_backend_close(o->be);
}

static attn_kvcache_info info_of(const attn_kvcache *c)
{
    attn_kvcache_info i;
    ck_assert_int_eq(attn_kvcache_get_info(c, &i), ATTN_OK);
    return i;
}

/* The kept positions of KV head g of a cache of hkv heads, ascending; returns their count. */
static int64_t kept_h(const attn_kvcache *c, int64_t hkv, int64_t g, int64_t *out)
{
    const attn_kvcache_info in = info_of(c);
    int64_t *pos = malloc((size_t)(in.slots * hkv + 1) * sizeof *pos), n = 0;
    attn_tensor t = attn_tensor_bshd(pos, ATTN_I64, 1, in.slots, hkv, 1);
    ck_assert_int_eq(attn_kvcache_get_positions(c, &t), ATTN_OK);
    for (int64_t j = 0; j < in.slots; j++)
        if (pos[j * hkv + g] >= 0)
            out[n++] = pos[j * hkv + g];
    for (int64_t a = 1; a < n; a++) /* insertion sort: slots need not be in position order */
        for (int64_t b = a; b > 0 && out[b] < out[b - 1]; b--) {
            const int64_t x = out[b];
            out[b] = out[b - 1];
            out[b - 1] = x;
        }
    free(pos);
    return n;
}

static int64_t kept(const attn_kvcache *c, int64_t g, int64_t *out)
{
    return kept_h(c, HKV, g, out);
}

/* Append n random tokens at pos0 (f32, [1, n, HKV, D]). */
static void append_rand(attn_kvcache *c, rng *r, int64_t n, int64_t pos0)
{
    float *k = malloc((size_t)(n * HKV * (DK + DV)) * sizeof *k), *v = k + n * HKV * DK;
    for (int64_t e = 0; e < n * HKV * (DK + DV); e++)
        k[e] = (float)rnd(r, -1, 1);
    attn_tensor tk = attn_tensor_bshd(k, ATTN_F32, 1, n, HKV, DK);
    attn_tensor tv = attn_tensor_bshd(v, ATTN_F32, 1, n, HKV, DV);
    ck_assert_msg(attn_kvcache_append(c, &tk, &tv, pos0) == ATTN_OK, "append: %s",
                  attn_last_error());
    free(k);
}

/* Attend n random queries at qpos0 into out [n, HQ, DV]. */
static void attend_rand(attn_kvcache *c, rng *r, int64_t n, int64_t qpos0, float *out)
{
    float *q = malloc((size_t)(n * HQ * DK) * sizeof *q);
    for (int64_t e = 0; e < n * HQ * DK; e++)
        q[e] = (float)rnd(r, -2, 2);
    attn_tensor tq = attn_tensor_bshd(q, ATTN_F32, 1, n, HQ, DK);
    attn_tensor to = attn_tensor_bshd(out, ATTN_F32, 1, n, HQ, DV);
    ck_assert_msg(attn_kvcache_attend(c, &tq, qpos0, &to) == ATTN_OK, "attend: %s",
                  attn_last_error());
    free(q);
}

/* The storage of a view [1, nslot, hkv, d] as f64 values (buffer or host data). */
static double *view_values(const attn_tensor *t)
{
    const int64_t n = t->shape[1] * t->shape[2] * t->shape[3];
    const size_t es = attn_dtype_size(t->dtype);
    const size_t bytes = ((size_t)((t->shape[1] - 1) * t->stride[1] + (t->shape[2] - 1) *
                                   t->stride[2] + t->shape[3])) * es;
    unsigned char *raw = malloc(bytes + 1);
    if (t->data)
        memcpy(raw, (const char *)t->data + t->offset, bytes);
    else
        ck_assert_int_eq(attn_buffer_read(t->buffer, t->offset, raw, bytes), ATTN_OK);
    double *x = malloc((size_t)n * sizeof *x);
    for (int64_t j = 0, e = 0; j < t->shape[1]; j++)
        for (int64_t g = 0; g < t->shape[2]; g++)
            for (int64_t i = 0; i < t->shape[3]; i++)
                x[e++] = attn_load_f64(raw, t->dtype, j * t->stride[1] + g * t->stride[2] + i);
    free(raw);
    return x;
}

/* ---- SqueezeAttention: the worked example of squeeze.md §2.4 ------------------------------ */

static const double worked_s[12] = {0.62, 0.80, 0.91, 0.93, 0.94, 0.95,
                                    0.94, 0.93, 0.92, 0.90, 0.88, 0.85};

/* Within-cluster SSE of a labelling, each run's mean taken directly. */
static double sse_of(const double *x, const int *cls, int64_t L, int k)
{
    double e = 0;
    for (int c = 1; c <= k; c++) {
        double m = 0;
        int64_t n = 0;
        for (int64_t l = 0; l < L; l++)
            if (cls[l] == c) {
                m += x[l];
                n++;
            }
        m /= (double)n;
        for (int64_t l = 0; l < L; l++)
            if (cls[l] == c)
                e += (x[l] - m) * (x[l] - m);
    }
    return e;
}

/* Sorted: 0.62 | 0.80 0.85 | 0.88 0.90 0.91 0.92 0.93 0.93 0.94 0.94 0.95.
 * Class 2: mean 0.825, SSE 2 * 0.025^2 = 0.00125. Class 3: sum 8.30, mean 0.922222, SSE
 * 0.0039556. Total 0.0052056. Lloyd's fixed point from {min, median, max} moves 0.88 into class
 * 2: {0.80, 0.85, 0.88} mean 0.843333 SSE 0.0032667, {0.90 .. 0.95} mean 0.9275 SSE 0.00195,
 * total 0.0052167: worse, so the optimum puts layer 10 (0.88) in class 3. */
START_TEST(kmeans_worked_example)
{
    int cls[12];
    double cen[3];
    static const int want[12] = {1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2};
    ck_assert_int_eq(attn_kvcache_kmeans1d(worked_s, 12, 3, cls, cen), ATTN_OK);
    for (int l = 0; l < 12; l++)
        ck_assert_int_eq(cls[l], want[l]);
    ck_assert_double_eq_tol(cen[0], 0.62, 1e-12);
    ck_assert_double_eq_tol(cen[1], 0.825, 1e-12);
    ck_assert_double_eq_tol(cen[2], 8.30 / 9, 1e-12);
    ck_assert_double_eq_tol(sse_of(worked_s, cls, 12, 3), 0.0052056, 5e-8);
    static const int lloyd[12] = {1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2};
    ck_assert_double_eq_tol(sse_of(worked_s, lloyd, 12, 3), 0.0052167, 5e-8);
    int bcls[12];
    double bcen[3], bsse;
    attn_ref_kmeans3_brute(worked_s, 12, bcls, bcen, &bsse);
    ck_assert_double_eq_tol(bsse, 0.0052056, 5e-8);
    for (int l = 0; l < 12; l++)
        ck_assert_int_eq(bcls[l], want[l]);
}
END_TEST

/* n3 = 9, a = (12 * 0.21 - 9 * 0.08) / 3 = 0.60: class 1 and 2 layers get 0.60 * 8000 = 4800,
 * class 3 gets 0.08 * 8000 = 640; sum 3 * 4800 + 9 * 640 = 20160 = 12 * 0.21 * 8000. */
START_TEST(squeeze_worked_example)
{
    attn_kvcache_squeeze_desc d = attn_kvcache_squeeze_desc_default();
    d.b_init = 0.21;
    d.p = 0.08;
    d.base = 8000;
    int64_t b[12];
    int cls[12];
    ck_assert_int_eq(attn_kvcache_squeeze_budgets(&d, worked_s, 12, b, cls), ATTN_OK);
    static const int64_t want[12] = {4800, 4800, 640, 640, 640, 640,
                                     640,  640,  640, 640, 640, 4800};
    int64_t sum = 0;
    for (int l = 0; l < 12; l++) {
        ck_assert_int_eq(b[l], want[l]);
        sum += b[l];
    }
    ck_assert_int_eq(sum, 20160);
    ck_assert_int_eq(cls[10], 3);
    /* the clamps: every budget within [700, 4000] */
    d.min_budget = 700;
    d.max_budget = 4000;
    ck_assert_int_eq(attn_kvcache_squeeze_budgets(&d, worked_s, 12, b, NULL), ATTN_OK);
    ck_assert_int_eq(b[0], 4000);
    ck_assert_int_eq(b[2], 700);
}
END_TEST

/* The DP equals brute force on 200 random inputs: spread values, values from a few levels
 * (many ties) and bf16-rounded values; through kmeans1d and through squeeze_budgets' bf16
 * option. A differing labelling must be a tie of SSE. */
START_TEST(kmeans_dp_equals_brute)
{
    rng r = {.seed = 11};
    double x[40], y[40], cen[3], bcen[3], bsse;
    int cls[40], bcls[40];
    for (int it = 0; it < 200; it++) {
        const int64_t L = rnd_int(&r, 3, 40);
        const int kind = it % 3;
        for (int64_t l = 0; l < L; l++) {
            x[l] = kind == 1 ? (double)rnd_int(&r, 0, 5) / 8 : rnd(&r, 0.5, 1.0);
            if (kind == 2)
                x[l] = (double)attn_bf16_to_f32(attn_f64_to_bf16(x[l]));
        }
        int distinct = 0;
        for (int64_t l = 0; l < L; l++) {
            int fresh = 1;
            for (int64_t m = 0; m < l; m++)
                fresh &= x[m] != x[l];
            distinct += fresh;
        }
        if (distinct < 3)
            continue;
        ck_assert_int_eq(attn_kvcache_kmeans1d(x, L, 3, cls, cen), ATTN_OK);
        attn_ref_kmeans3_brute(x, L, bcls, bcen, &bsse);
        const double e = sse_of(x, cls, L, 3);
        ck_assert_msg(e <= bsse * (1 + 1e-12) + 1e-15, "case %d: DP SSE %.17g > brute %.17g", it,
                      e, bsse);
        int same = 1;
        for (int64_t l = 0; l < L; l++)
            same &= cls[l] == bcls[l];
        ck_assert_msg(same || fabs(e - bsse) <= 1e-12 * (1 + bsse), "case %d: classes differ", it);
        ck_assert(cen[0] < cen[1] && cen[1] < cen[2]);
        if (kind == 2 || it % 5 == 0) {
            /* squeeze_budgets with rounding clusters the bf16 values (kind 0: rounded here) */
            attn_kvcache_squeeze_desc d = attn_kvcache_squeeze_desc_default();
            d.base = 1000;
            d.round_bf16 = 1;
            for (int64_t l = 0; l < L; l++)
                y[l] = (double)attn_bf16_to_f32(attn_f64_to_bf16(x[l]));
            int64_t b[40];
            ck_assert_int_eq(attn_kvcache_squeeze_budgets(&d, x, L, b, cls), ATTN_OK);
            int dy = 0;
            for (int64_t l = 0; l < L; l++) {
                int fresh = 1;
                for (int64_t m = 0; m < l; m++)
                    fresh &= y[m] != y[l];
                dy += fresh;
            }
            if (dy < 3)
                continue;
            attn_ref_kmeans3_brute(y, L, bcls, bcen, &bsse);
            ck_assert(sse_of(y, cls, L, 3) <= bsse * (1 + 1e-12) + 1e-15);
        }
    }
}
END_TEST

/* Before the clamps the budgets add up to L b_init base, short by the truncation (< L). */
START_TEST(squeeze_total_preserved)
{
    rng r = {.seed = 5};
    double s[64];
    int64_t b[64];
    int cls[64];
    for (int it = 0; it < 100; it++) {
        const int64_t L = rnd_int(&r, 3, 64);
        for (int64_t l = 0; l < L; l++)
            s[l] = rnd(&r, 0.3, 1.0);
        attn_kvcache_squeeze_desc d = attn_kvcache_squeeze_desc_default();
        d.b_init = rnd(&r, 0.05, 0.9);
        d.p = d.b_init * rnd(&r, 0.05, 1.0);
        d.base = rnd_int(&r, 1000, 40000);
        ck_assert_int_eq(attn_kvcache_squeeze_budgets(&d, s, L, b, cls), ATTN_OK);
        int64_t n3 = 0;
        for (int64_t l = 0; l < L; l++)
            n3 += cls[l] == 3;
        const double a = ((double)L * d.b_init - (double)n3 * d.p) / (double)(L - n3);
        double sum = 0;
        for (int64_t l = 0; l < L; l++) {
            ck_assert_int_eq(b[l], (int64_t)((cls[l] == 3 ? d.p : a) * (double)d.base));
            sum += (double)b[l];
        }
        const double total = (double)L * d.b_init * (double)d.base;
        ck_assert_msg(sum <= total + 1e-6 && sum > total - (double)L, "L %lld: sum %g, total %g",
                      (long long)L, sum, total);
        ck_assert(n3 >= 1 && n3 <= L - 2);
    }
}
END_TEST

/* Fewer than 3 distinct similarities (or fewer than 3 layers): uniform b_init budgets. */
START_TEST(squeeze_degenerate_uniform)
{
    attn_kvcache_squeeze_desc d = attn_kvcache_squeeze_desc_default();
    d.base = 1000; /* b_init 0.2: 200 tokens a layer */
    const double two[5] = {0.9, 0.8, 0.9, 0.8, 0.9}, one[1] = {0.5};
    int64_t b[5];
    int cls[5];
    ck_assert_int_eq(attn_kvcache_squeeze_budgets(&d, two, 5, b, cls), ATTN_OK);
    for (int l = 0; l < 5; l++)
        ck_assert(b[l] == 200 && cls[l] == 1);
    ck_assert_int_eq(attn_kvcache_squeeze_budgets(&d, one, 1, b, cls), ATTN_OK);
    ck_assert_int_eq(b[0], 200);
    /* the bf16 rounding can merge values into fewer than 3 */
    const double close[3] = {0.9, 0.9000001, 0.9000002};
    d.round_bf16 = 1;
    ck_assert_int_eq(attn_kvcache_squeeze_budgets(&d, close, 3, b, cls), ATTN_OK);
    ck_assert(b[0] == 200 && b[1] == 200 && b[2] == 200);
}
END_TEST

/* cos(x, x) = 1, cos(x, -x) = -1, orthogonal 0, a zero vector 0 (the eps); mean per batch. */
START_TEST(similarity_closed_forms)
{
    enum { B = 2, P = 2, H = 2, D = 3 };
    float x[B * P * H * D], y[B * P * H * D];
    for (int e = 0; e < B * P * H * D; e++)
        x[e] = (float)(e % 5) - 1.5f;
    for (int t = 0; t < P; t++)
        for (int i = 0; i < H * D; i++) {
            const int e0 = (0 * P + t) * H * D + i, e1 = (1 * P + t) * H * D + i;
            y[e0] = t == 0 ? x[e0] : -x[e0]; /* batch 0: mean (1 - 1) / 2 = 0 */
            y[e1] = t == 0 ? 2 * x[e1] : 0;  /* batch 1: mean (1 + 0) / 2 = 0.5 */
        }
    attn_tensor tx = attn_tensor_bshd(x, ATTN_F32, B, P, H, D);
    attn_tensor ty = attn_tensor_bshd(y, ATTN_F32, B, P, H, D);
    double s[B];
    ck_assert_int_eq(attn_kvcache_squeeze_similarity(&tx, &ty, s), ATTN_OK);
    ck_assert_double_eq_tol(s[0], 0.0, 1e-15);
    ck_assert_double_eq_tol(s[1], 0.5, 1e-15);
    /* orthogonal hidden vectors, bf16 storage */
    uint16_t a[4] = {attn_f32_to_bf16(1), 0, 0, 0}, c[4] = {0, attn_f32_to_bf16(3), 0, 0};
    attn_tensor ta = attn_tensor_bshd(a, ATTN_BF16, 1, 1, 1, 4);
    attn_tensor tc = attn_tensor_bshd(c, ATTN_BF16, 1, 1, 1, 4);
    ck_assert_int_eq(attn_kvcache_squeeze_similarity(&ta, &tc, s), ATTN_OK);
    ck_assert(s[0] == 0.0);
}
END_TEST

/* ---- the H2O toy of squeeze.md §3.4 through the real cache ------------------------------ */

/* Prefill column sums [3.1266, 0.5821, 0.9289, 0.2524, 0.1101] (added with add_scores), budget
 * hh + r = 4, recent 2: candidates are positions 0..2, the lowest (1, 0.5821) goes: keep
 * [0, 2, 3, 4], slot 1 free. Decode at position 5 (into the free slot 1) with q = e0, scale 1
 * and keys k_p = (l_p, 0, 0, 0) for l = 0.3, 1.2, 0.0, 0.4 at positions 0, 2, 3, 4 and 0.0 at 5:
 * probabilities softmax([0.3, 1.2, 0.0, 0.4, 0.0]) = [0.1653, 0.4067, 0.1225, 0.1827, 0.1225];
 * scores [3.2919, 1.3356, 0.3750, 0.2928, 0.1225]; candidates positions 0, 2, 3: 3 goes, keep
 * [0, 2, 4, 5]. */
START_TEST(h2o_toy)
{
    attn_kvcache_desc d = cache_desc(ATTN_KV_H2O, 1, 4, 4, 4, 0, 2);
    d.attn.scale = 1.0f;
    on_backend o;
    if (!open_on(&o, _i, &d))
        return;
    attn_kvcache *c = o.c;
    static const float logit[5] = {0.3f, 0.0f, 1.2f, 0.0f, 0.4f};
    float k[5 * 4] = {0}, v[5 * 4];
    for (int t = 0; t < 5; t++) {
        k[t * 4] = logit[t];
        for (int i = 0; i < 4; i++)
            v[t * 4 + i] = (float)(t + i);
    }
    attn_tensor tk = attn_tensor_bshd(k, ATTN_F32, 1, 5, 1, 4);
    attn_tensor tv = attn_tensor_bshd(v, ATTN_F32, 1, 5, 1, 4);
    ck_assert_int_eq(attn_kvcache_append(c, &tk, &tv, 0), ATTN_OK);
    float pre[5] = {3.1266f, 0.5821f, 0.9289f, 0.2524f, 0.1101f};
    attn_tensor ts = attn_tensor_bshd(pre, ATTN_F32, 1, 5, 1, 1);
    ck_assert_int_eq(attn_kvcache_add_scores(c, &ts), ATTN_OK);
    ck_assert_int_eq(attn_kvcache_evict(c), ATTN_OK);
    int64_t got[8];
    static const int64_t keep1[4] = {0, 2, 3, 4}, keep2[4] = {0, 2, 4, 5};
    ck_assert_int_eq(kept_h(c, 1, 0, got), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(got[i], keep1[i]);
    attn_kvcache_info in = info_of(c);
    ck_assert(in.live == 4 && in.slots == 5 && in.evicted == 1 && in.recent == 2);
    float q[4] = {1, 0, 0, 0}, k5[4] = {0}, v5[4] = {1, 1, 1, 1}, out[4];
    attn_tensor tq = attn_tensor_bshd(q, ATTN_F32, 1, 1, 1, 4);
    attn_tensor to = attn_tensor_bshd(out, ATTN_F32, 1, 1, 1, 4);
    tk = attn_tensor_bshd(k5, ATTN_F32, 1, 1, 1, 4);
    tv = attn_tensor_bshd(v5, ATTN_F32, 1, 1, 1, 4);
    ck_assert_msg(attn_kvcache_step(c, &tq, &tk, &tv, 5, &to) == ATTN_OK, "%s",
                  attn_last_error());
    ck_assert_int_eq(kept_h(c, 1, 0, got), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(got[i], keep2[i]);
    /* the scores by position, against the exact softmax */
    const double lg[5] = {0.3, 1.2, 0.0, 0.4, 0.0}, base[5] = {3.1266f, 0.9289f, 0.2524f,
                                                                 0.1101f, 0.0};
    double z = 0;
    for (int i = 0; i < 5; i++)
        z += exp(lg[i]);
    int64_t pos[5];
    float sc[5];
    attn_tensor tp = attn_tensor_bshd(pos, ATTN_I64, 1, 5, 1, 1);
    ts = attn_tensor_bshd(sc, ATTN_F32, 1, 5, 1, 1);
    ck_assert_int_eq(info_of(c).slots, 5);
    ck_assert_int_eq(attn_kvcache_get_positions(c, &tp), ATTN_OK);
    ck_assert_int_eq(attn_kvcache_get_scores(c, &ts), ATTN_OK);
    static const int64_t order[5] = {0, 2, 3, 4, 5};
    static const double paper[5] = {3.2919, 1.3356, 0.3750, 0.2928, 0.1225};
    for (int j = 0; j < 5; j++) {
        if (pos[j] < 0) {
            ck_assert(sc[j] == 0.0f);
            continue;
        }
        int i = 0;
        while (order[i] != pos[j])
            i++;
        ck_assert_double_eq_tol(sc[j], base[i] + exp(lg[i]) / z, 1e-5);
        ck_assert_double_eq_tol(sc[j], paper[i], 1e-4);
    }
    close_on(&o);
}
END_TEST

/* StreamingLLM, budget 6, sinks 2: 12 tokens keep [0, 1] + [8 .. 11] in every KV head; the
 * kept rows hold the appended data; the next token then pushes 8 out. */
START_TEST(streaming_trim)
{
    attn_kvcache_desc d = cache_desc(ATTN_KV_STREAMING, HKV, DK, DV, 6, 2, -1);
    on_backend o;
    if (!open_on(&o, _i, &d))
        return;
    attn_kvcache *c = o.c;
    float k[12 * HKV * DK], v[12 * HKV * DV];
    for (int e = 0; e < 12 * HKV * DK; e++)
        k[e] = (float)e;
    for (int e = 0; e < 12 * HKV * DV; e++)
        v[e] = -(float)e;
    attn_tensor tk = attn_tensor_bshd(k, ATTN_F32, 1, 12, HKV, DK);
    attn_tensor tv = attn_tensor_bshd(v, ATTN_F32, 1, 12, HKV, DV);
    ck_assert_int_eq(attn_kvcache_append(c, &tk, &tv, 0), ATTN_OK);
    ck_assert_int_eq(attn_kvcache_evict(c), ATTN_OK);
    static const int64_t want[6] = {0, 1, 8, 9, 10, 11}, want2[6] = {0, 1, 9, 10, 11, 12};
    int64_t got[16];
    for (int g = 0; g < HKV; g++) {
        ck_assert_int_eq(kept(c, g, got), 6);
        for (int i = 0; i < 6; i++)
            ck_assert_int_eq(got[i], want[i]);
    }
    attn_kvcache_info in = info_of(c);
    ck_assert(in.evicted == 6 && in.sinks == 2 && in.slots == 12);
    /* the kept rows: slot j holds position j (no refill yet) */
    attn_tensor vk, vv;
    ck_assert_int_eq(attn_kvcache_get_views(c, &vk, &vv), ATTN_OK);
    double *xk = view_values(&vk);
    for (int i = 0; i < 6; i++)
        for (int e = 0; e < HKV * DK; e++)
            ck_assert(xk[want[i] * HKV * DK + e] == k[want[i] * HKV * DK + e]);
    free(xk);
    tk = attn_tensor_bshd(k, ATTN_F32, 1, 1, HKV, DK);
    tv = attn_tensor_bshd(v, ATTN_F32, 1, 1, HKV, DV);
    ck_assert_int_eq(attn_kvcache_append(c, &tk, &tv, 12), ATTN_OK);
    ck_assert_int_eq(attn_kvcache_evict(c), ATTN_OK);
    for (int g = 0; g < HKV; g++) {
        ck_assert_int_eq(kept(c, g, got), 6);
        for (int i = 0; i < 6; i++)
            ck_assert_int_eq(got[i], want2[i]);
    }
    close_on(&o);
}
END_TEST

/* H2O, budget 3, recent 1, scores [1, 1, 1, 2, 1, 1]: the candidates are positions 0..4, the
 * three lowest go; positions 0, 1, 2, 4 tie at 1 and the older go first: keep [3, 4, 5].
 * The simulation agrees. */
START_TEST(h2o_ties_evict_older)
{
    attn_kvcache_desc d = cache_desc(ATTN_KV_H2O, HKV, DK, DV, 3, 0, 1);
    on_backend o;
    if (!open_on(&o, _i, &d))
        return;
    attn_kvcache *c = o.c;
    rng r = {.seed = 3};
    append_rand(c, &r, 6, 0);
    float s[6 * HKV];
    for (int j = 0; j < 6; j++)
        for (int g = 0; g < HKV; g++)
            s[j * HKV + g] = j == 3 ? 2.0f : 1.0f;
    attn_tensor ts = attn_tensor_bshd(s, ATTN_F32, 1, 6, HKV, 1);
    ck_assert_int_eq(attn_kvcache_add_scores(c, &ts), ATTN_OK);
    ck_assert_int_eq(attn_kvcache_evict(c), ATTN_OK);
    int64_t got[8], rp[8];
    double rs[8];
    attn_ref_kv_list h = {0, 8, rp, rs};
    for (int64_t p = 0; p < 6; p++) {
        attn_ref_kv_append(&h, p);
        attn_ref_kv_add(&h, p, p == 3 ? 2 : 1);
    }
    attn_ref_kv_evict(&h, ATTN_KV_H2O, 3, 0, 1);
    for (int g = 0; g < HKV; g++) {
        ck_assert_int_eq(kept(c, g, got), 3);
        ck_assert(got[0] == 3 && got[1] == 4 && got[2] == 5);
        ck_assert(h.n == 3 && rp[0] == 3 && rp[1] == 4 && rp[2] == 5);
    }
    close_on(&o);
}
END_TEST

/* ---- invariants on every policy and backend ---------------------------------------------- */

/* A prefill of 5 then 6 decode steps: `c` and the full cache `f` give the same outputs. */
static void run_same(attn_kvcache *c, attn_kvcache *f, uint64_t seed)
{
    float o1[5 * HQ * DV], o2[5 * HQ * DV];
    rng r1 = {.seed = seed}, r2 = {.seed = seed};
    append_rand(c, &r1, 5, 0);
    append_rand(f, &r2, 5, 0);
    attend_rand(c, &r1, 5, 0, o1);
    attend_rand(f, &r2, 5, 0, o2);
    ck_assert_int_eq(attn_kvcache_evict(c), ATTN_OK);
    ck_assert(memcmp(o1, o2, sizeof o1) == 0);
    for (int64_t p = 5; p < 11; p++) {
        append_rand(c, &r1, 1, p);
        append_rand(f, &r2, 1, p);
        attend_rand(c, &r1, 1, p, o1);
        attend_rand(f, &r2, 1, p, o2);
        ck_assert_int_eq(attn_kvcache_evict(c), ATTN_OK);
        ck_assert_msg(memcmp(o1, o2, HQ * DV * sizeof(float)) == 0, "step %lld differs",
                      (long long)p);
    }
    ck_assert_int_eq(info_of(c).evicted, 0);
}

/* A budget >= the sequence (StreamingLLM: sinks + recent >= it) evicts nothing and attends as
 * the full cache, under each positions mode. */
START_TEST(budget_covers_sequence_equals_full)
{
    attn_backend *be = backend_or_skip(_i);
    if (!be)
        return;
    static const attn_kv_policy pol[3] = {ATTN_KV_SLIDING, ATTN_KV_STREAMING, ATTN_KV_H2O};
    for (int m = 0; m <= ATTN_KV_POS_CACHE; m++)
        for (int p = 0; p < 3; p++) {
            attn_kvcache_desc d = cache_desc(pol[p], HKV, DK, DV, 11, 4, -1);
            attn_kvcache_desc df = cache_desc(ATTN_KV_FULL, HKV, DK, DV, 0, 4, -1);
            d.attn.positions = df.attn.positions = (attn_kv_positions)m;
            attn_kvcache *c = NULL, *f = NULL;
            if (attn_kvcache_create(be, &d, &c) == ATTN_ERR_UNSUPPORTED) {
                fprintf(stderr, "%s: positions mode %d unsupported\n", attn_backend_name(be), m);
                continue;
            }
            ck_assert_msg(c != NULL, "%s", attn_last_error());
            f = cache_new(be, &df);
            run_same(c, f, 100 + (uint64_t)p);
            attn_kvcache_destroy(c);
            attn_kvcache_destroy(f);
        }
    attn_backend_close(be);
}
END_TEST

/* Two H2O caches fed alike; one compacted: its slots are each head's positions in order and
 * its rows the same, and the next attention agrees with the cache that has holes (refilled
 * out of position order), under each positions mode. */
START_TEST(holes_equal_compacted)
{
    attn_backend *be = backend_or_skip(_i);
    if (!be)
        return;
    for (int m = 0; m <= ATTN_KV_POS_CACHE; m++) {
        attn_kvcache_desc d = cache_desc(ATTN_KV_H2O, HKV, DK, DV, 5, 0, 2);
        d.attn.positions = (attn_kv_positions)m;
        attn_kvcache *a = NULL, *b = NULL;
        if (attn_kvcache_create(be, &d, &a) == ATTN_ERR_UNSUPPORTED)
            continue;
        b = cache_new(be, &d);
        float o1[8 * HQ * DV], o2[8 * HQ * DV];
        rng r1 = {.seed = 9}, r2 = {.seed = 9};
        append_rand(a, &r1, 8, 0);
        append_rand(b, &r2, 8, 0);
        attend_rand(a, &r1, 8, 0, o1);
        attend_rand(b, &r2, 8, 0, o2);
        attn_kvcache_evict(a);
        attn_kvcache_evict(b);
        for (int64_t p = 8; p < 16; p++) {
            append_rand(a, &r1, 1, p);
            append_rand(b, &r2, 1, p);
            attend_rand(a, &r1, 1, p, o1);
            attend_rand(b, &r2, 1, p, o2);
            attn_kvcache_evict(a);
            attn_kvcache_evict(b);
        }
        append_rand(a, &r1, 2, 16); /* into holes */
        append_rand(b, &r2, 2, 16);
        ck_assert_int_eq(attn_kvcache_compact(b), ATTN_OK);
        attn_kvcache_info ia = info_of(a), ib = info_of(b);
        ck_assert(ib.slots == ib.live && ia.live == ib.live && ia.slots >= ia.live);
        int64_t ka[16], kb[16], pos[16 * HKV];
        attn_tensor tp = attn_tensor_bshd(pos, ATTN_I64, 1, ib.slots, HKV, 1);
        ck_assert_int_eq(attn_kvcache_get_positions(b, &tp), ATTN_OK);
        for (int g = 0; g < HKV; g++) {
            ck_assert_int_eq(kept(a, g, ka), ib.live);
            kept(b, g, kb);
            for (int64_t i = 0; i < ib.live; i++)
                ck_assert(ka[i] == kb[i] && pos[i * HKV + g] == kb[i]);
        }
        attend_rand(a, &r1, 2, 16, o1);
        attend_rand(b, &r2, 2, 16, o2);
        for (int e = 0; e < 2 * HQ * DV; e++)
            ck_assert_msg(fabsf(o1[e] - o2[e]) <= 1e-5f * (1 + fabsf(o2[e])),
                          "mode %d out[%d]: holes %g, compacted %g", m, e, (double)o1[e],
                          (double)o2[e]);
        attn_kvcache_destroy(a);
        attn_kvcache_destroy(b);
    }
    attn_backend_close(be);
}
END_TEST

/* A full cache of 2 initial slots grows over 9 tokens appended in 3 calls; the f16 storage
 * holds the (strided, BHSD) f32 inputs rounded once. */
START_TEST(growth_keeps_contents)
{
    attn_kvcache_desc d = cache_desc(ATTN_KV_FULL, HKV, DK, DV, 0, 4, -1);
    d.dtype = ATTN_F16;
    d.initial_slots = 2;
    on_backend o;
    if (!open_on(&o, _i, &d))
        return;
    attn_kvcache *c = o.c;
    float k[9 * HKV * DK], v[9 * HKV * DV];
    rng r = {.seed = 4};
    for (int e = 0; e < 9 * HKV * DK; e++)
        k[e] = (float)rnd(&r, -3, 3);
    for (int e = 0; e < 9 * HKV * DV; e++)
        v[e] = (float)rnd(&r, -3, 3);
    static const int n[3] = {1, 3, 5};
    for (int i = 0, t = 0; i < 3; t += n[i++]) {
        /* token t's rows, laid out [1, Hkv, n, D] */
        float kb[5 * HKV * DK], vb[5 * HKV * DV];
        for (int s = 0; s < n[i]; s++)
            for (int g = 0; g < HKV; g++) {
                memcpy(kb + (g * n[i] + s) * DK, k + ((t + s) * HKV + g) * DK, DK * 4);
                memcpy(vb + (g * n[i] + s) * DV, v + ((t + s) * HKV + g) * DV, DV * 4);
            }
        attn_tensor tk = attn_tensor_bhsd(kb, ATTN_F32, 1, n[i], HKV, DK);
        attn_tensor tv = attn_tensor_bhsd(vb, ATTN_F32, 1, n[i], HKV, DV);
        ck_assert_int_eq(attn_kvcache_append(c, &tk, &tv, 10 * t), ATTN_OK);
    }
    attn_kvcache_info in = info_of(c);
    ck_assert(in.live == 9 && in.slots == 9 && in.capacity >= 9);
    attn_tensor vk, vv;
    ck_assert_int_eq(attn_kvcache_get_views(c, &vk, &vv), ATTN_OK);
    ck_assert(vk.dtype == ATTN_F16 && vk.shape[1] == 9 && vk.stride[1] == HKV * DK &&
              vv.stride[2] == DV);
    double *xk = view_values(&vk), *xv = view_values(&vv);
    for (int e = 0; e < 9 * HKV * DK; e++)
        ck_assert(xk[e] == (double)attn_f16_to_f32(attn_f32_to_f16(k[e])));
    for (int e = 0; e < 9 * HKV * DV; e++)
        ck_assert(xv[e] == (double)attn_f16_to_f32(attn_f32_to_f16(v[e])));
    free(xk);
    free(xv);
    close_on(&o);
}
END_TEST

/* One random stream: each step appends 1..3 tokens (a prefill of 1..10 first), adds scores
 * (from the attention on `use_attend`, else small integers through add_scores: many ties),
 * and evicts; the kept positions of every head equal the simulation's, and the accounting
 * adds up. */
static void stream_vs_reference(attn_backend *be, attn_kv_policy pol, uint64_t seed,
                                int use_attend)
{
    rng r = {.seed = seed};
    const int64_t budget = rnd_int(&r, 2, 7), sinks = rnd_int(&r, 0, budget - 1);
    const int64_t recent_arg = rnd_int(&r, -1, budget);
    const int64_t recent = recent_arg < 0 ? budget / 2 : recent_arg;
    attn_kvcache_desc d = cache_desc(pol, HKV, DK, DV, budget, sinks, recent_arg);
    d.dtype = seed % 2 ? ATTN_BF16 : ATTN_F32;
    attn_kvcache *c = cache_new(be, &d);
    int64_t rp[HKV][MAXT], kp[MAXT];
    double rs[HKV][MAXT];
    attn_ref_kv_list h[HKV];
    for (int g = 0; g < HKV; g++)
        h[g] = (attn_ref_kv_list){0, MAXT, rp[g], rs[g]};
    float out[10 * HQ * DV], sc[MAXT * HKV];
    int64_t pos = 0, sp[MAXT * HKV];
    for (int step = 0; step < 16; step++) {
        const int64_t n = step == 0 ? rnd_int(&r, 1, 10) : rnd_int(&r, 1, 3);
        const int64_t p0 = pos + rnd_int(&r, 0, 1); /* positions may skip */
        append_rand(c, &r, n, p0);
        for (int g = 0; g < HKV; g++)
            for (int64_t t = 0; t < n; t++)
                ck_assert(attn_ref_kv_append(&h[g], p0 + t));
        pos = p0 + n;
        const attn_kvcache_info in = info_of(c);
        attn_tensor ts = attn_tensor_bshd(sc, ATTN_F32, 1, in.slots, HKV, 1);
        attn_tensor tp = attn_tensor_bshd(sp, ATTN_I64, 1, in.slots, HKV, 1);
        ck_assert_int_eq(attn_kvcache_get_positions(c, &tp), ATTN_OK);
        if (use_attend) {
            attend_rand(c, &r, n, p0, out);
        } else {
            for (int64_t e = 0; e < in.slots * HKV; e++)
                sc[e] = sp[e] < 0 ? 0.0f : (float)rnd_int(&r, 0, 2);
            ck_assert_int_eq(attn_kvcache_add_scores(c, &ts), ATTN_OK);
        }
        ck_assert_int_eq(attn_kvcache_get_scores(c, &ts), ATTN_OK);
        /* the simulation's scores: what the cache accumulated (exact integers when added,
         * the ref backend's attention otherwise) */
        for (int64_t e = 0; e < in.slots * HKV; e++)
            if (sp[e] >= 0)
                for (int64_t i = 0; i < h[e % HKV].n; i++)
                    if (h[e % HKV].pos[i] == sp[e])
                        h[e % HKV].score[i] = (double)sc[e];
        ck_assert_int_eq(attn_kvcache_evict(c), ATTN_OK);
        for (int g = 0; g < HKV; g++) {
            attn_ref_kv_evict(&h[g], pol, budget, sinks, recent);
            const int64_t nk = kept(c, g, kp);
            ck_assert_msg(nk == h[g].n, "policy %d seed %llu step %d head %d: %lld kept, want "
                          "%lld", (int)pol, (unsigned long long)seed, step, g, (long long)nk,
                          (long long)h[g].n);
            for (int64_t i = 0; i < nk; i++)
                ck_assert_msg(kp[i] == h[g].pos[i], "policy %d seed %llu step %d head %d: kept "
                              "%lld at %lld, want %lld", (int)pol, (unsigned long long)seed,
                              step, g, (long long)kp[i], (long long)i,
                              (long long)h[g].pos[i]);
        }
        /* memory accounting */
        const attn_kvcache_info a = info_of(c);
        const size_t tok = (size_t)HKV * (DK + DV) * attn_dtype_size(d.dtype);
        ck_assert_int_eq(a.live, h[0].n);
        ck_assert_int_eq(a.evicted, a.appended - a.live);
        ck_assert(a.live_bytes == tok * (size_t)a.live && a.full_bytes == tok *
                  (size_t)a.appended && a.alloc_bytes == tok * (size_t)a.capacity);
        ck_assert(a.slots >= a.live && a.slots <= a.capacity);
        ck_assert_int_eq(a.budget, budget);
        ck_assert_int_eq(a.recent, pol == ATTN_KV_H2O ? recent : 0);
        ck_assert_int_eq(a.sinks, pol == ATTN_KV_STREAMING ? sinks : 0);
    }
    attn_kvcache_destroy(c);
}

START_TEST(slots_match_reference)
{
    attn_backend *be = backend_or_skip(_i);
    if (!be)
        return;
    const int ref = strcmp(attn_backend_name(be), "ref") == 0;
    for (int pol = ATTN_KV_FULL; pol <= ATTN_KV_H2O; pol++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            stream_vs_reference(be, (attn_kv_policy)pol, 1000 * (uint64_t)pol + seed, 0);
            if (ref) /* scores from the f64 attention: no float near-ties */
                stream_vs_reference(be, (attn_kv_policy)pol, 1000 * (uint64_t)pol + seed, 1);
        }
    attn_backend_close(be);
}
END_TEST

/* set_budget takes effect at the next evict; recent -1 resolves to budget / 2. */
START_TEST(set_budget_next_evict)
{
    attn_kvcache_desc d = cache_desc(ATTN_KV_SLIDING, HKV, DK, DV, 10, 0, -1);
    on_backend o;
    if (!open_on(&o, _i, &d))
        return;
    attn_kvcache *c = o.c;
    rng r = {.seed = 8};
    append_rand(c, &r, 9, 0);
    ck_assert_int_eq(attn_kvcache_set_budget(c, 3, -1), ATTN_OK);
    ck_assert_int_eq(info_of(c).live, 9);
    ck_assert_int_eq(attn_kvcache_evict(c), ATTN_OK);
    int64_t got[16];
    ck_assert_int_eq(kept(c, 1, got), 3);
    ck_assert(got[0] == 6 && got[2] == 8);
    /* the trailing free slots are given up, the leading ones stay holes */
    ck_assert_int_eq(info_of(c).slots, 9);
    ck_assert_int_eq(attn_kvcache_compact(c), ATTN_OK);
    ck_assert_int_eq(info_of(c).slots, 3);
    close_on(&o);
}
END_TEST

/* An empty cache attends to nothing (output 0); policies other than H2O keep scores at 0. */
START_TEST(empty_cache_and_scores)
{
    attn_kvcache_desc d = cache_desc(ATTN_KV_SLIDING, HKV, DK, DV, 4, 0, -1);
    on_backend o;
    if (!open_on(&o, _i, &d))
        return;
    attn_kvcache *c = o.c;
    float out[2 * HQ * DV], sc[2 * HKV];
    rng r = {.seed = 12};
    attend_rand(c, &r, 2, 0, out);
    for (int e = 0; e < 2 * HQ * DV; e++)
        ck_assert(out[e] == 0.0f);
    append_rand(c, &r, 2, 0);
    attend_rand(c, &r, 2, 0, out);
    attn_tensor ts = attn_tensor_bshd(sc, ATTN_F32, 1, 2, HKV, 1);
    for (int e = 0; e < 2 * HKV; e++)
        sc[e] = 1.0f;
    ck_assert_int_eq(attn_kvcache_add_scores(c, &ts), ATTN_OK);
    ck_assert_int_eq(attn_kvcache_get_scores(c, &ts), ATTN_OK);
    for (int e = 0; e < 2 * HKV; e++)
        ck_assert(sc[e] == 0.0f);
    close_on(&o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kvcache_policy");
    TCase *tc = tcase_create("squeeze");
    tcase_add_test(tc, kmeans_worked_example);
    tcase_add_test(tc, squeeze_worked_example);
    tcase_add_test(tc, kmeans_dp_equals_brute);
    tcase_add_test(tc, squeeze_total_preserved);
    tcase_add_test(tc, squeeze_degenerate_uniform);
    tcase_add_test(tc, similarity_closed_forms);
    suite_add_tcase(s, tc);
    tc = tcase_create("cache");
    tcase_add_loop_test(tc, h2o_toy, 0, ATTN_BAD_N_BACKENDS);
    tcase_add_loop_test(tc, streaming_trim, 0, ATTN_BAD_N_BACKENDS);
    tcase_add_loop_test(tc, h2o_ties_evict_older, 0, ATTN_BAD_N_BACKENDS);
    tcase_add_loop_test(tc, budget_covers_sequence_equals_full, 0, ATTN_BAD_N_BACKENDS);
    tcase_add_loop_test(tc, holes_equal_compacted, 0, ATTN_BAD_N_BACKENDS);
    tcase_add_loop_test(tc, growth_keeps_contents, 0, ATTN_BAD_N_BACKENDS);
    tcase_add_loop_test(tc, slots_match_reference, 0, ATTN_BAD_N_BACKENDS);
    tcase_add_loop_test(tc, set_budget_next_evict, 0, ATTN_BAD_N_BACKENDS);
    tcase_add_loop_test(tc, empty_cache_and_scores, 0, ATTN_BAD_N_BACKENDS);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
