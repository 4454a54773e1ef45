/* check_kvcache_backends.c - every backend of this build (ref, cpu, opencl) on the same case
 * families of the attention over cache slots through the shared fixture (kvcache_fixture.h):
 * a sampled grid over every axis and the steady decode step, in host memory and in the
 * backend's buffers; the steady decode step runs without a mask on the fast backends; a call
 * with no query still zeroes key_score; keys rotated at their original positions give the
 * scores of keys rotated beforehand and attended as stored. Under sanitizers
 * (ATTN_TEST_QUICK=1) every fourth case runs, and opencl runs every third grid case. A backend this build or machine lacks is skipped
 * with its reason. */
#include "check_run.h"
#include "kvcache_fixture.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int step(void)
{
    return getenv("ATTN_TEST_QUICK") ? 4 : 1;
}

/* _i = backend * 4 + family * 2 + memory mode */
START_TEST(family_on_backend)
{
    attn_backend *be = kv_fx_open(kv_fx_backends[_i / 4]);
    if (!be)
        return;
    const int decode = _i / 2 % 2, device_mem = _i % 2;
    const int n = decode ? kv_fx_decode_count() : kv_fx_grid_count();
    /* device memory takes every other case: the same kernels, another binding path; opencl
     * takes every third of the grid (each grid case compiles kernels of its own, seconds each
     * on PoCL with a cold cache; the conformance list covers the rest) */
    const int sparse = !decode && strcmp(kv_fx_backends[_i / 4], "opencl") == 0 ? 3 : 1;
    for (int k = device_mem; k < n; k += step() * (1 + device_mem) * sparse) {
        const attn_kvcache_case c = decode ? kv_fx_decode(k) : kv_fx_grid(k);
        const attn_result r = kv_fx_expect_pass(be, device_mem, &c);
        /* the steady state builds no mask: SDPA's unmasked (decode) path runs */
        ck_assert_msg(!decode || !strstr(r.impl, "mask"), "%s: %s", r.name, r.impl);
    }
    attn_backend_close(be);
}
END_TEST

enum { B = 2, HQ = 4, HKV = 2, D = 16, NS = 12, SQ = 3 };
#define POISON 0x5A

/* A small problem in host memory: q, k, v values from the element index; slot positions with
 * a hole per KV head (NaN inside) in shuffled order; queries at 9, 10, 11. */
typedef struct kv_small {
    float q[B * SQ * HQ * D], k[B * NS * HKV * D], v[B * NS * HKV * D];
    float out[B * SQ * HQ * D], ks[B * NS * HKV];
    int64_t qpos[B * SQ], spos[B * NS * HKV];
    attn_tensor tq, tk, tv, tqp, tsp, to, tks;
} kv_small;

static void small_make(kv_small *s)
{
    for (int e = 0; e < B * SQ * HQ * D; e++)
        s->q[e] = (float)((e * 29) % 31) / 15.0f - 1.0f;
    for (int e = 0; e < B * NS * HKV * D; e++) {
        s->k[e] = (float)((e * 17) % 23) / 11.0f - 1.0f;
        s->v[e] = (float)((e * 13) % 19) / 9.0f - 1.0f;
    }
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < SQ; i++)
            s->qpos[b * SQ + i] = 9 + i;
        for (int j = 0; j < NS; j++)
            for (int g = 0; g < HKV; g++) {
                const int slot = (j * 5 + g + b) % NS, hole = j == 3 + g;
                int64_t *sp = &s->spos[(b * NS + slot) * HKV + g];
                *sp = hole ? -1 : j + (j > 3 + g);
                for (int d = 0; hole && d < D; d++)
                    s->k[((b * NS + slot) * HKV + g) * D + d] = NAN;
            }
    }
    memset(s->out, POISON, sizeof s->out);
    memset(s->ks, POISON, sizeof s->ks);
    s->tq = attn_tensor_bshd(s->q, ATTN_F32, B, SQ, HQ, D);
    s->tk = attn_tensor_bshd(s->k, ATTN_F32, B, NS, HKV, D);
    s->tv = attn_tensor_bshd(s->v, ATTN_F32, B, NS, HKV, D);
    s->tqp = attn_tensor_bshd(s->qpos, ATTN_I64, B, SQ, 1, 1);
    s->tsp = attn_tensor_bshd(s->spos, ATTN_I64, B, NS, HKV, 1);
    s->to = attn_tensor_bshd(s->out, ATTN_F32, B, SQ, HQ, D);
    s->tks = attn_tensor_bshd(s->ks, ATTN_F32, B, NS, HKV, 1);
}

/* a[e] and b[e] within 1e-5 for every e < n (what and backend name them). */
static void expect_close(const float *a, const float *b, int n, const char *what,
                         const char *backend)
{
    for (int e = 0; e < n; e++)
        ck_assert_msg(fabsf(a[e] - b[e]) <= 1e-5f, "%s: %s[%d] %g vs %g", backend, what, e,
                      (double)a[e], (double)b[e]);
}

/* The attention of s with desc d on be. */
static attn_status attend(attn_backend *be, const attn_kvcache_attn_desc *d, kv_small *s,
                          const attn_tensor *ks)
{
    return attn_kvcache_attention(be, d, &s->tq, &s->tqp, &s->tk, &s->tv, &s->tsp, &s->to, ks);
}

/* No query (Sq = 0) but key_score: every slot gets 0 and out (empty) is not touched. */
START_TEST(no_query_zeroes_key_score)
{
    attn_backend *be = kv_fx_open(kv_fx_backends[_i]);
    if (!be)
        return;
    kv_small *s = malloc(sizeof *s);
    small_make(s);
    s->tq.shape[1] = s->to.shape[1] = s->tqp.shape[1] = 0;
    const attn_kvcache_attn_desc d = attn_kvcache_attn_desc_default();
    ck_assert_msg(attend(be, &d, s, &s->tks) == ATTN_OK, "%s: %s", kv_fx_backends[_i],
                  attn_last_error());
    for (int e = 0; e < B * NS * HKV; e++)
        ck_assert_msg(s->ks[e] == 0.0f, "%s: key_score[%d] = %g", kv_fx_backends[_i], e,
                      (double)s->ks[e]);
    free(s);
    attn_backend_close(be);
}
END_TEST

/* q and k rotated beforehand (attn_rope_forward at q_pos and at each slot's position, one KV
 * head at a time) and attended as stored give what ORIGINAL gives on the raw ones. */
START_TEST(original_equals_prerotated)
{
    attn_backend *be = kv_fx_open(kv_fx_backends[_i]);
    if (!be)
        return;
    kv_small *raw = malloc(sizeof *raw), *pre = malloc(sizeof *pre);
    small_make(raw);
    small_make(pre);
    attn_kvcache_attn_desc d = attn_kvcache_attn_desc_default();
    d.rope.layout = ATTN_ROPE_INTERLEAVED;
    d.rope.rot_dim = 12;
    attn_rope_desc r = d.rope;
    r.positions = &raw->tqp;
    ck_assert_int_eq(attn_rope_forward(be, &r, &raw->tq, &pre->tq), ATTN_OK);
    for (int g = 0; g < HKV; g++) { /* slot positions of head g: [B, NS, 1, 1] */
        attn_tensor kpos = raw->tsp, kx = raw->tk, ky = pre->tk;
        kpos.data = raw->spos + g;
        kx.data = raw->k + g * D;
        ky.data = pre->k + g * D;
        kpos.shape[2] = kx.shape[2] = ky.shape[2] = 1;
        r.positions = &kpos;
        ck_assert_int_eq(attn_rope_forward(be, &r, &kx, &ky), ATTN_OK);
    }
    const attn_kvcache_attn_desc stored = attn_kvcache_attn_desc_default();
    d.positions = ATTN_KV_POS_ORIGINAL;
    ck_assert_int_eq(attend(be, &d, raw, &raw->tks), ATTN_OK);
    ck_assert_int_eq(attend(be, &stored, pre, &pre->tks), ATTN_OK);
    expect_close(raw->out, pre->out, B * SQ * HQ * D, "out", kv_fx_backends[_i]);
    expect_close(raw->ks, pre->ks, B * NS * HKV, "key_score", kv_fx_backends[_i]);
    free(raw);
    free(pre);
    attn_backend_close(be);
}
END_TEST

/* A full cache in position order attended as stored is causal SDPA (bottom-right). */
START_TEST(full_sorted_cache_is_causal_sdpa)
{
    attn_backend *be = kv_fx_open(kv_fx_backends[_i]);
    if (!be)
        return;
    kv_small *s = malloc(sizeof *s);
    small_make(s);
    for (int e = 0; e < B * NS * HKV; e++)
        s->spos[e] = e / HKV % NS;
    for (int e = 0; e < B * NS * HKV * D; e++)
        s->k[e] = (float)((e * 17) % 23) / 11.0f - 1.0f;
    const attn_kvcache_attn_desc d = attn_kvcache_attn_desc_default();
    ck_assert_int_eq(attend(be, &d, s, NULL), ATTN_OK);
    float want[B * SQ * HQ * D];
    attn_tensor tw = attn_tensor_bshd(want, ATTN_F32, B, SQ, HQ, D);
    attn_sdpa_desc sd = attn_sdpa_desc_default();
    sd.causal = 1;
    ck_assert_int_eq(attn_sdpa_forward(be, &sd, &s->tq, &s->tk, &s->tv, &tw, NULL), ATTN_OK);
    expect_close(s->out, want, B * SQ * HQ * D, "out", kv_fx_backends[_i]);
    free(s);
    attn_backend_close(be);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kvcache_backends");
    TCase *tc = tcase_create("families");
    tcase_set_timeout(tc, 1200);
    tcase_add_loop_test(tc, family_on_backend, 0, 4 * KV_FX_N_BACKENDS);
    tcase_add_loop_test(tc, no_query_zeroes_key_score, 0, KV_FX_N_BACKENDS);
    tcase_add_loop_test(tc, original_equals_prerotated, 0, KV_FX_N_BACKENDS);
    tcase_add_loop_test(tc, full_sorted_cache_is_causal_sdpa, 0, KV_FX_N_BACKENDS);
    suite_add_tcase(s, tc);
    return attn_check_run(s);
}
