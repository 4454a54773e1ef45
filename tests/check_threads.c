/* check_threads.c - one backend handle shared by several threads. For each built backend (ref,
 * cpu, opencl) a set of f32 SDPA problems (decode, prefill, causal, GQA/MQA, a window, soft-cap,
 * LSE) is computed serially, then by 4 threads at once on the same handle, each thread running
 * every problem several times in its own order: every output must be bit-identical to the
 * serial one. On opencl the threads alternate host tensors and device buffers, and a second,
 * fresh handle makes them build the kernel specialisations concurrently. */
#include "check_run.h"

#include <check.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "attn_rng.h"
#ifdef ATTN_HAVE_OPENCL
#include "attn/attn_opencl.h"
#endif

#define SEED 4242u
#define NTHREADS 4

#ifdef ATTN_HAVE_OPENCL
/* The ICD loader and LLVM inside PoCL keep process-lifetime allocations; they are not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libOpenCL\nleak:libpocl\nleak:libLLVM\nleak:libclang\nleak:libhwloc\n";
}
#endif

typedef struct tcase {
    int64_t B, Sq, Skv, Hq, Hkv, Dk, Dv;
    int causal;
    int64_t window_left;
    float softcap;
    int lse;
} tcase;

/* Each row is its own kernel specialisation on opencl (head dims, band, cap, lse, split). */
static const tcase cases[] = {
    {1, 1, 700, 8, 2, 64, 64, 1, -1, 0, 1},     /* decode, GQA (split-KV + merge on opencl) */
    {1, 70, 130, 4, 2, 32, 32, 1, -1, 0, 1},    /* prefill, causal, GQA */
    {2, 33, 33, 2, 2, 16, 16, 0, -1, 0, 0},     /* MHA, no LSE */
    {1, 64, 64, 4, 1, 48, 48, 1, 16, 0, 1},     /* MQA, sliding window */
    {1, 40, 90, 2, 1, 32, 24, 0, -1, 5.0f, 1},  /* Dk != Dv, soft-cap */
    {1, 2, 600, 4, 4, 40, 40, 1, -1, 0, 0},     /* decode, two queries */
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* Inputs (shared read-only by all threads) and the serial outputs of one case. */
typedef struct problem {
    const tcase *c;
    float *q, *k, *v, *out, *lse;
    size_t nq, nk, nv, nout, nlse; /* element counts */
} problem;

static float *filled(size_t n, uint64_t stream, double lo, double hi)
{
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)attn_rng_uniform(SEED, stream, i, lo, hi);
    return x;
}

static void problem_init(problem *p, const tcase *c, int idx)
{
    memset(p, 0, sizeof *p);
    p->c = c;
    p->nq = (size_t)(c->B * c->Sq * c->Hq * c->Dk);
    p->nk = (size_t)(c->B * c->Skv * c->Hkv * c->Dk);
    p->nv = (size_t)(c->B * c->Skv * c->Hkv * c->Dv);
    p->nout = (size_t)(c->B * c->Sq * c->Hq * c->Dv);
    p->nlse = c->lse ? (size_t)(c->B * c->Sq * c->Hq) : 0;
    p->q = filled(p->nq, 3u * (uint64_t)idx, -2, 2);
    p->k = filled(p->nk, 3u * (uint64_t)idx + 1, -2, 2);
    p->v = filled(p->nv, 3u * (uint64_t)idx + 2, -1, 1);
}

static void problem_free(problem *p)
{
    free(p->q);
    free(p->k);
    free(p->v);
    free(p->out);
    free(p->lse);
}

static attn_sdpa_desc desc_of(const tcase *c)
{
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = c->causal;
    d.window_left = c->window_left;
    d.softcap = c->softcap;
    return d;
}

/* Where one call's operands live: host memory, or device buffers created for the call. */
typedef struct operands {
    attn_tensor q, k, v, out, lse;
    attn_buffer *buf[5];
} operands;

static void host_operands(const problem *p, float *out, float *lse, operands *o)
{
    const tcase *c = p->c;
    memset(o, 0, sizeof *o);
    o->q = attn_tensor_bshd(p->q, ATTN_F32, c->B, c->Sq, c->Hq, c->Dk);
    o->k = attn_tensor_bshd(p->k, ATTN_F32, c->B, c->Skv, c->Hkv, c->Dk);
    o->v = attn_tensor_bshd(p->v, ATTN_F32, c->B, c->Skv, c->Hkv, c->Dv);
    o->out = attn_tensor_bshd(out, ATTN_F32, c->B, c->Sq, c->Hq, c->Dv);
    o->lse = attn_tensor_bshd(lse, ATTN_F32, c->B, c->Sq, c->Hq, 1);
}

/* Moves the tensors of `o` into fresh device buffers (inputs uploaded). */
static attn_status to_device(attn_backend *be, const problem *p, operands *o)
{
    attn_tensor *t[5] = {&o->q, &o->k, &o->v, &o->out, &o->lse};
    size_t n[5] = {p->nq, p->nk, p->nv, p->nout, p->nlse};
    for (int i = 0; i < 5; i++) {
        if (n[i] == 0)
            continue;
        attn_status st = attn_buffer_alloc(be, n[i] * sizeof(float), &o->buf[i]);
        if (st == ATTN_OK && i < 3)
            st = attn_buffer_write(o->buf[i], 0, t[i]->data, n[i] * sizeof(float));
        if (st != ATTN_OK)
            return st;
        t[i]->data = NULL;
        t[i]->buffer = o->buf[i];
    }
    return ATTN_OK;
}

/* One forward of problem p into out/lse (host memory), through device buffers if `device`. */
static attn_status run_once(attn_backend *be, const problem *p, int device, float *out,
                            float *lse)
{
    const tcase *c = p->c;
    attn_sdpa_desc d = desc_of(c);
    operands o;
    host_operands(p, out, lse, &o);
    attn_status st = device ? to_device(be, p, &o) : ATTN_OK;
    if (st == ATTN_OK)
        st = attn_sdpa_forward(be, &d, &o.q, &o.k, &o.v, &o.out, c->lse ? &o.lse : NULL);
    if (st == ATTN_OK && device)
        st = attn_buffer_read(o.buf[3], 0, out, p->nout * sizeof(float));
    if (st == ATTN_OK && device && c->lse)
        st = attn_buffer_read(o.buf[4], 0, lse, p->nlse * sizeof(float));
    for (int i = 0; i < 5; i++)
        attn_buffer_free(o.buf[i]);
    return st;
}

/* ---- the threads ---- */

typedef struct worker {
    pthread_t id;
    attn_backend *be;
    const problem *probs;
    int tid, iters, devices; /* devices: alternate host tensors and device buffers */
    int calls, errors, mismatches;
    char first[400]; /* the first failure, for the message */
} worker;

static void note(worker *w, const char *what, int idx, int device)
{
    if (!w->first[0])
        snprintf(w->first, sizeof w->first, "thread %d, case %d (%s): %s", w->tid, idx,
                 device ? "device buffers" : "host tensors", what);
}

static void *work(void *arg)
{
    worker *w = arg;
    size_t most = 0;
    for (int i = 0; i < NCASES; i++)
        most = w->probs[i].nout > most ? w->probs[i].nout : most;
    float *out = malloc(most * sizeof *out), *lse = malloc(most * sizeof *lse);
    for (int it = 0; it < w->iters && out && lse; it++)
        for (int n = 0; n < NCASES; n++) {
            int idx = (w->tid + n) % NCASES; /* threads start on different cases */
            const problem *p = &w->probs[idx];
            int device = w->devices && (it + w->tid + n) % 2;
            memset(out, 0xff, p->nout * sizeof *out);
            memset(lse, 0xff, p->nlse * sizeof *lse);
            w->calls++;
            if (run_once(w->be, p, device, out, lse) != ATTN_OK) {
                w->errors++;
                note(w, attn_last_error(), idx, device);
            } else if (memcmp(out, p->out, p->nout * sizeof *out) != 0 ||
                       memcmp(lse, p->lse, p->nlse * sizeof *lse) != 0) {
                w->mismatches++;
                note(w, "output differs from the serial run", idx, device);
            }
        }
    if (!out || !lse)
        snprintf(w->first, sizeof w->first, "thread %d: out of memory", w->tid);
    free(out);
    free(lse);
    return NULL;
}

static int iterations(void)
{
    return getenv("ATTN_TEST_QUICK") ? 3 : 10; /* sanitizers slow every call down */
}

/* NTHREADS threads on one handle; all outputs must equal the serial ones. */
static void run_threads(attn_backend *be, const problem *probs, int devices, const char *what)
{
    worker w[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        w[t] = (worker){.be = be, .probs = probs, .tid = t, .iters = iterations(),
                        .devices = devices};
        ck_assert_int_eq(pthread_create(&w[t].id, NULL, work, &w[t]), 0);
    }
    int calls = 0, bad = 0;
    const char *first = "";
    for (int t = 0; t < NTHREADS; t++) {
        ck_assert_int_eq(pthread_join(w[t].id, NULL), 0);
        calls += w[t].calls;
        bad += w[t].errors + w[t].mismatches;
        if (!first[0])
            first = w[t].first;
    }
    printf("%s: %s: %d calls from %d threads, %d bad\n", attn_backend_name(be), what, calls,
           NTHREADS, bad);
    ck_assert_msg(bad == 0 && !first[0], "%s, %s: %d of %d calls failed; first: %s",
                  attn_backend_name(be), what, bad, calls, first);
}

/* Serial outputs of every case on `be` (host tensors; device buffers must agree bit for bit). */
static void serial_outputs(attn_backend *be, problem *probs, int devices)
{
    for (int i = 0; i < NCASES; i++) {
        problem *p = &probs[i];
        problem_init(p, &cases[i], i);
        p->out = malloc(p->nout * sizeof(float));
        p->lse = malloc((p->nlse ? p->nlse : 1) * sizeof(float));
        ck_assert_ptr_nonnull(p->out);
        ck_assert_ptr_nonnull(p->lse);
        ck_assert_msg(run_once(be, p, 0, p->out, p->lse) == ATTN_OK, "case %d: %s", i,
                      attn_last_error());
        if (!devices)
            continue;
        float *out = malloc(p->nout * sizeof(float)), *lse = malloc(p->nout * sizeof(float));
        ck_assert_msg(run_once(be, p, 1, out, lse) == ATTN_OK, "case %d on device buffers: %s",
                      i, attn_last_error());
        ck_assert_msg(memcmp(out, p->out, p->nout * sizeof(float)) == 0 &&
                          memcmp(lse, p->lse, p->nlse * sizeof(float)) == 0,
                      "case %d: device buffers differ from host tensors", i);
        free(out);
        free(lse);
    }
}

/* The serial run, then NTHREADS threads on the same handle. */
static void check_backend(attn_backend *be, int devices)
{
    problem probs[NCASES];
    serial_outputs(be, probs, devices);
    run_threads(be, probs, devices, "warm handle");
    for (int i = 0; i < NCASES; i++)
        problem_free(&probs[i]);
}

START_TEST(test_ref)
{
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    check_backend(be, 0);
    attn_backend_close(be);
}
END_TEST

START_TEST(test_cpu)
{
#ifdef ATTN_HAVE_CPU
    attn_backend *be = NULL;
    ck_assert_msg(attn_backend_open("cpu", NULL, &be) == ATTN_OK, "%s", attn_last_error());
    check_backend(be, 0);
    attn_backend_close(be);
#else
    printf("SKIPPED test_cpu: the library was built without the cpu backend\n");
#endif
}
END_TEST

START_TEST(test_opencl)
{
#ifdef ATTN_HAVE_OPENCL
    attn_backend *be = NULL;
    if (attn_backend_open("opencl", "cache=off", &be) != ATTN_OK) {
        printf("SKIPPED test_opencl: %s\n", attn_last_error());
        return;
    }
    problem probs[NCASES];
    serial_outputs(be, probs, 1);
    attn_opencl_stats serial, warm, cold;
    ck_assert_int_eq(attn_opencl_backend_stats(be, &serial), ATTN_OK);
    run_threads(be, probs, 1, "warm handle");
    ck_assert_int_eq(attn_opencl_backend_stats(be, &warm), ATTN_OK);
    ck_assert_int_eq(warm.source_builds, serial.source_builds); /* nothing new to build */
    /* A fresh handle: the threads' first calls build the specialisations concurrently. */
    attn_backend *fresh = NULL;
    ck_assert_int_eq(attn_backend_open("opencl", "cache=off", &fresh), ATTN_OK);
    run_threads(fresh, probs, 1, "cold handle");
    ck_assert_int_eq(attn_opencl_backend_stats(fresh, &cold), ATTN_OK);
    attn_backend_close(fresh);
    /* Each specialisation built once, and not one program lookup lost from the counters. */
    ck_assert_int_eq(cold.source_builds, serial.source_builds);
    ck_assert_int_eq(cold.source_builds + cold.memory_hits, warm.memory_hits - serial.memory_hits);
    for (int i = 0; i < NCASES; i++)
        problem_free(&probs[i]);
    attn_backend_close(be);
#else
    printf("SKIPPED test_opencl: the library was built without OpenCL\n");
#endif
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("shared handle");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_ref);
    tcase_add_test(tc, test_cpu);
    tcase_add_test(tc, test_opencl);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* No OpenCL call here: PoCL starts worker threads, which a forked test would lack. */
    return attn_check_run(threads_suite());
}
