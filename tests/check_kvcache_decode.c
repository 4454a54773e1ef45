/* check_kvcache_decode.c - `attn decode` driven in-process on tiny configurations: it runs for
 * every policy and RoPE mode, a budget that holds the prompt and every new token (or the
 * prompt, with one new token) deviates by exactly nothing from the full cache, a small budget
 * saves memory and deviates, .npy streams give what the same synthetic streams give, the sweep
 * writes its SVG, and bad options or inputs exit 2 with a message. */
#include "attn/attn.h"
#include "attn_cmds.h"
#include "attn_npy.h"
#include "kvcache_decode.h"
#include "test_files.h"

#include "check_run.h"
#include "check_run_files.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECODE(...) rf_call(attn_cmd_decode, "decode", __VA_ARGS__, (char *)NULL)
#define TINY "--layers", "3", "--hq", "4", "--hkv", "2", "--d", "16", "--prompt", "40", \
             "--new", "6", "--backend", "ref"

static const attn_kvcache_synth tiny = {3, 4, 2, 16, 16, 40, 6, 7};

static attn_kvcache_run_cfg cfg_of(attn_kv_policy p, int64_t budget)
{
    attn_kvcache_run_cfg c = {0};
    c.policy = p;
    c.budget = budget;
    c.sinks = 4;
    c.recent = -1;
    c.kv_dtype = ATTN_F16;
    c.attn = attn_kvcache_attn_desc_default();
    return c;
}

/* The configuration on the synthetic streams s against their full cache. */
static void run_cfg(attn_backend *be, const attn_kvcache_streams *s,
                    const attn_kvcache_run_cfg *c, attn_kvcache_result *r)
{
    attn_kvcache_ref ref;
    ck_assert_msg(attn_kvcache_decode_reference(be, s, c, &ref) == ATTN_OK, "%s",
                  attn_last_error());
    ck_assert_msg(attn_kvcache_decode_run(be, s, c, &ref, r) == ATTN_OK, "%s", attn_last_error());
    attn_kvcache_ref_free(&ref);
}

START_TEST(decode_runs_every_policy_and_mode)
{
    static const char *const policies[] = {"full", "sliding", "streaming", "h2o"};
    static const char *const modes[] = {"stored", "original", "cache"};
    for (int p = 0; p < 4; p++)
        for (int m = 0; m < 3; m++)
            ck_assert_msg(DECODE(TINY, "--policy", policies[p], "--positions", modes[m],
                                 "--budget", "30%") == 0,
                          "%s %s: %s", policies[p], modes[m], attn_last_error());
    ck_assert_int_eq(DECODE(TINY, "--policy", "h2o", "--budget", "12", "--recent", "4",
                            "--squeeze", "10%", "--squeeze-bf16", "--kv-dtype", "bf16"), 0);
    ck_assert_int_eq(DECODE(TINY, "--policy", "streaming", "--sinks", "2", "--budget", "9",
                            "--rope", "interleaved", "--rope-theta", "500", "--rot-dim", "8",
                            "--positions", "cache"), 0);
    ck_assert_int_eq(DECODE("--help"), 0);
}
END_TEST

/* Nothing evicted that a step could see: exactly the full cache's outputs. */
START_TEST(decode_budget_holding_everything_is_exact)
{
    attn_kvcache_streams s;
    attn_backend *be;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    for (int one = 0; one < 2; one++) {
        attn_kvcache_synth c = tiny;
        c.new_tokens = one ? 1 : tiny.new_tokens;
        ck_assert_int_eq(attn_kvcache_streams_synth(&c, &s), 0);
        const int64_t budget = one ? c.prompt : c.prompt + c.new_tokens;
        for (int p = ATTN_KV_FULL; p <= ATTN_KV_H2O; p++)
            for (int m = 0; m < 3; m++) {
                attn_kvcache_run_cfg cfg = cfg_of((attn_kv_policy)p, budget);
                cfg.attn.positions = (attn_kv_positions)m;
                attn_kvcache_result r;
                run_cfg(be, &s, &cfg, &r);
                ck_assert_msg(r.max_abs == 0, "policy %d mode %d budget %lld: max |dev| %g", p,
                              m, (long long)budget, r.max_abs);
                ck_assert_msg(fabs(r.mean_cos - 1) < 1e-12, "policy %d: cos %.17g", p,
                              r.mean_cos);
                attn_kvcache_result_free(&r);
            }
        attn_kvcache_streams_free(&s);
    }
    attn_backend_close(be);
}
END_TEST

/* A fifth of the prompt: less memory, some deviation, and H2O (which keeps the heavy tokens
 * the synthetic streams attend to) closer to the full cache than the sliding window. */
START_TEST(decode_small_budget_saves_and_deviates)
{
    attn_kvcache_streams s;
    attn_backend *be;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    ck_assert_int_eq(attn_kvcache_streams_synth(&tiny, &s), 0);
    double cos[4] = {0};
    for (int p = ATTN_KV_SLIDING; p <= ATTN_KV_H2O; p++) {
        attn_kvcache_run_cfg cfg = cfg_of((attn_kv_policy)p, 10);
        attn_kvcache_result r;
        run_cfg(be, &s, &cfg, &r);
        ck_assert(r.live_bytes < r.full_bytes);
        ck_assert(r.live_bytes <= r.alloc_bytes);
        ck_assert(r.max_abs > 0 && r.mean_cos < 1);
        for (int l = 0; l < s.layers; l++)
            ck_assert_int_eq(r.layer[l].budget, 10);
        cos[p] = r.mean_cos;
        attn_kvcache_result_free(&r);
    }
    ck_assert_msg(cos[ATTN_KV_H2O] > cos[ATTN_KV_SLIDING], "h2o %g sliding %g",
                  cos[ATTN_KV_H2O], cos[ATTN_KV_SLIDING]);
    attn_kvcache_streams_free(&s);
    attn_backend_close(be);
}
END_TEST

/* A layer's view [1, S, H, D] (contiguous f32) as the file [S, H, D] (or [S, D] if hidden). */
static void save_view(const char *name, int l, const attn_tensor *t, int hidden)
{
    char file[32];
    snprintf(file, sizeof file, "%s_%d.npy", name, l);
    const int64_t shape3[3] = {t->shape[1], t->shape[2], t->shape[3]};
    const int64_t shape2[2] = {t->shape[1], t->shape[3]};
    rf_save(file, hidden ? 2 : 3, hidden ? shape2 : shape3, t->data);
}

/* The same streams from files: the same figures (SqueezeAttention budgets included). */
START_TEST(decode_streams_from_files)
{
    attn_kvcache_streams s, f;
    attn_backend *be;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    ck_assert_int_eq(attn_kvcache_streams_synth(&tiny, &s), 0);
    for (int l = 0; l < s.layers; l++) {
        save_view("q", l, &s.q[l], 0);
        save_view("k", l, &s.k[l], 0);
        save_view("v", l, &s.v[l], 0);
        save_view("x", l, &s.x[l], 1);
        save_view("y", l, &s.y[l], 1);
    }
    ck_assert_int_eq(attn_kvcache_streams_load(tpath("."), 0, 0, 0, &f), 0);
    ck_assert_int_eq(f.layers, s.layers);
    ck_assert_int_eq(f.prompt, s.prompt);
    ck_assert_int_eq(f.new_tokens, s.new_tokens);
    attn_kvcache_run_cfg cfg = cfg_of(ATTN_KV_H2O, 12);
    cfg.squeeze = 0.1;
    attn_kvcache_result a, b;
    run_cfg(be, &s, &cfg, &a);
    run_cfg(be, &f, &cfg, &b);
    for (int l = 0; l < s.layers; l++) {
        ck_assert_int_eq(a.layer[l].budget, b.layer[l].budget);
        ck_assert(a.layer[l].max_abs == b.layer[l].max_abs);
    }
    attn_kvcache_result_free(&a);
    attn_kvcache_result_free(&b);
    ck_assert_int_eq(DECODE("--streams", tpath("."), "--backend", "ref", "--policy", "sliding",
                            "--budget", "25%", "--squeeze", "0.1", "--new", "3"), 0);
    ck_assert_int_eq(DECODE("--streams", tpath("."), "--backend", "ref", "--prompt", "39"), 2);
    ck_assert_int_eq(DECODE("--streams", tpath("."), "--backend", "ref", "--new", "7"), 2);
    attn_kvcache_streams_free(&f);
    attn_kvcache_streams_free(&s);
    attn_backend_close(be);
}
END_TEST

START_TEST(decode_sweep_writes_svg)
{
    ck_assert_int_eq(DECODE(TINY, "--sweep", "--squeeze", "5%", "--svg", tpath("plot.svg")), 0);
    FILE *f = fopen(tpath("plot.svg"), "r");
    ck_assert(f);
    char head[5] = "";
    ck_assert_int_eq(fread(head, 1, 4, f), 4);
    fclose(f);
    ck_assert_str_eq(head, "<svg");
}
END_TEST

START_TEST(decode_errors_exit_2)
{
    ck_assert_int_eq(DECODE(TINY, "--policy", "lru"), 2);
    ck_assert_int_eq(DECODE(TINY, "--budget", "0"), 2);
    ck_assert_int_eq(DECODE(TINY, "--budget", "x%"), 2);
    ck_assert_int_eq(DECODE(TINY, "--squeeze", "150%"), 2);
    ck_assert_int_eq(DECODE(TINY, "--svg", tpath("x.svg")), 2);
    ck_assert_int_eq(DECODE(TINY, "--hkv", "3"), 2);
    ck_assert_int_eq(DECODE(TINY, "--policy", "streaming", "--budget", "4"), 2);
    ck_assert_int_eq(DECODE(TINY, "--policy", "full", "--squeeze", "0.1"), 2);
    ck_assert_int_eq(DECODE(TINY, "--positions", "cache", "--rot-dim", "17"), 2);
    ck_assert_int_eq(DECODE(TINY, "--frobnicate"), 2);
    ck_assert_int_eq(DECODE("--streams", tpath("none"), "--backend", "ref"), 2);
    ck_assert_int_eq(DECODE(TINY, "--backend", "nonesuch"), 2);
}
END_TEST

static Suite *decode_suite(void)
{
    Suite *s = suite_create("kvcache_decode");
    TCase *t = tcase_create("decode");
    tcase_add_checked_fixture(t, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(t, decode_runs_every_policy_and_mode);
    tcase_add_test(t, decode_budget_holding_everything_is_exact);
    tcase_add_test(t, decode_small_budget_saves_and_deviates);
    tcase_add_test(t, decode_streams_from_files);
    tcase_add_test(t, decode_sweep_writes_svg);
    tcase_add_test(t, decode_errors_exit_2);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return attn_check_run(decode_suite());
}
