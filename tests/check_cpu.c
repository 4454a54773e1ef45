/* check_cpu.c - the cpu backend against the f64 reference (attn_ref_sdpa) on a grid of shapes,
 * layouts, dtypes, masks, windows and soft-caps, through both of its paths (tiled forward and
 * decode), plus thread-count independence, its options / describe line, and the BLIS kernel
 * choice leaving the process environment unchanged.
 *
 * Element bound (f32 accumulation against the f64 ground truth):
 *   |got - gold| <= 8 * 2^-24 * sqrt(Dk + Skv) * absmag + 2 * u_out * |gold| + tiny_out
 * absmag = sum_j p_j |v_j| (reference) scales the accumulation error of the logits (length Dk)
 * and of the weighted sum (length Skv) with a sqrt(n) growth factor and a safety factor 8;
 * u_out is the unit roundoff of the output dtype (2^-24 f32, 2^-11 f16, 2^-8 bf16: the one
 * rounding of the result, doubled for the rounding of an inexact f32 value); tiny_out is
 * half the smallest subnormal of the output dtype (1e-30 for f32). Rows with no visible key
 * must be exactly 0 with LSE exactly -inf. LSE: |got - gold| <= 8 * 2^-24 * sqrt(Dk + Skv) *
 * (1 + |gold|). Inputs are rounded to their storage dtype before both sides read them. */
#include <check.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blis.h>

#include "attn/attn.h"
#include "attn_backend_impl.h"
#include "attn_half.h"
#include "attn_rng.h"
#include "ref_sdpa.h"

#define SEED 777u

enum layout { L_BSHD, L_BHSD, L_CACHE };
enum mask { M_NONE, M_ADD, M_BOOL, M_ADD_BCAST, M_BOTH, M_ADD_F16 };

typedef struct ccase {
    int64_t B, Sq, Skv, Hq, Hkv, Dk, Dv;
    int causal;
    attn_align align;
    int64_t wl, wr;
    float softcap;
    attn_dtype dq, dkv, dout;
    enum layout layout;
    enum mask mask;
    int lse;
    const char *opts;
} ccase;

static ccase base_case(int64_t Sq, int64_t Skv, int64_t D)
{
    return (ccase){.B = 1, .Sq = Sq, .Skv = Skv, .Hq = 2, .Hkv = 1, .Dk = D, .Dv = D,
                   .align = ATTN_ALIGN_BOTTOM_RIGHT, .wl = -1, .wr = -1, .dq = ATTN_F32,
                   .dkv = ATTN_F32, .dout = ATTN_F32, .lse = 1};
}

/* A host tensor with its own allocation; `view` may point inside it (KV cache). */
typedef struct buf {
    void *mem;
    attn_tensor view;
} buf;

static buf buf_new(attn_dtype t, int64_t b, int64_t s, int64_t h, int64_t d, enum layout l)
{
    buf r;
    size_t es = attn_dtype_size(t);
    if (l == L_CACHE) { /* [b, 2s + 3, h + 2, d] cache; the view: first s rows, heads 1.. */
        int64_t S = 2 * s + 3, H = h + 2;
        r.mem = calloc((size_t)(b * S * H * d), es);
        r.view = attn_tensor_bshd(r.mem, t, b, s, h, d);
        r.view.data = (char *)r.mem + (size_t)d * es;
        r.view.stride[0] = S * H * d;
        r.view.stride[1] = H * d;
        r.view.stride[2] = d;
    } else {
        r.mem = calloc((size_t)(b * s * h * d), es);
        r.view = l == L_BHSD ? attn_tensor_bhsd(r.mem, t, b, s, h, d)
                             : attn_tensor_bshd(r.mem, t, b, s, h, d);
    }
    ck_assert_ptr_nonnull(r.mem);
    return r;
}

static int64_t elem(const attn_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return i0 * t->stride[0] + i1 * t->stride[1] + i2 * t->stride[2] + i3 * t->stride[3];
}

/* Fills every element of the view from the generator (stream id), uniform in [lo, hi]. */
static void buf_fill(buf *b, uint64_t id, double lo, double hi)
{
    const attn_tensor *t = &b->view;
    int64_t n = 0;
    for (int64_t i0 = 0; i0 < t->shape[0]; i0++)
        for (int64_t i1 = 0; i1 < t->shape[1]; i1++)
            for (int64_t i2 = 0; i2 < t->shape[2]; i2++)
                for (int64_t i3 = 0; i3 < t->shape[3]; i3++)
                    attn_store_f64(t->data, t->dtype, elem(t, i0, i1, i2, i3),
                                   attn_rng_uniform(SEED, id, (uint64_t)n++, lo, hi));
}

/* Masks: mask row i is fully hidden when i % 5 == 2 (only for per-query masks), otherwise
 * about 20% of keys are hidden (-inf or 0). */
static void fill_mask(buf *m, int is_bool)
{
    const attn_tensor *t = &m->view;
    int64_t n = 0;
    for (int64_t b = 0; b < t->shape[0]; b++)
        for (int64_t i = 0; i < t->shape[1]; i++)
            for (int64_t h = 0; h < t->shape[2]; h++)
                for (int64_t j = 0; j < t->shape[3]; j++) {
                    double u = attn_rng_unit(SEED, 9, (uint64_t)n++);
                    int hide = u < 0.2 || (t->shape[1] > 1 && i % 5 == 2);
                    double x = is_bool ? !hide : hide ? -INFINITY : -4.0 * u;
                    attn_store_f64(t->data, t->dtype, elem(t, b, i, h, j), x);
                }
}

static double unit_roundoff(attn_dtype t)
{
    return t == ATTN_F16 ? 0x1p-11 : t == ATTN_BF16 ? 0x1p-8 : 0x1p-24;
}

static double tiny(attn_dtype t)
{
    return t == ATTN_F16 ? 0x1p-25 : t == ATTN_BF16 ? 0x1p-134 : 1e-30;
}

typedef struct run {
    buf q, k, v, o, madd, mbool;
    float *lse;
    attn_tensor tlse;
    attn_sdpa_desc d;
} run;

static void run_init(run *r, const ccase *c)
{
    memset(r, 0, sizeof *r);
    r->q = buf_new(c->dq, c->B, c->Sq, c->Hq, c->Dk, c->layout == L_BHSD ? L_BHSD : L_BSHD);
    r->k = buf_new(c->dkv, c->B, c->Skv, c->Hkv, c->Dk, c->layout);
    r->v = buf_new(c->dkv, c->B, c->Skv, c->Hkv, c->Dv, c->layout);
    r->o = buf_new(c->dout, c->B, c->Sq, c->Hq, c->Dv, c->layout == L_BHSD ? L_BHSD : L_BSHD);
    buf_fill(&r->q, 1, -2, 2);
    buf_fill(&r->k, 2, -2, 2);
    buf_fill(&r->v, 3, -1, 1);
    r->d = attn_sdpa_desc_default();
    r->d.causal = c->causal;
    r->d.align = c->align;
    r->d.window_left = c->wl;
    r->d.window_right = c->wr;
    r->d.softcap = c->softcap;
    if (c->mask == M_ADD || c->mask == M_BOTH || c->mask == M_ADD_F16) {
        r->madd = buf_new(c->mask == M_ADD_F16 ? ATTN_F16 : ATTN_F32, c->B, c->Sq, c->Hq,
                          c->Skv, L_BSHD);
        fill_mask(&r->madd, 0);
        r->d.mask_add = &r->madd.view;
    }
    if (c->mask == M_ADD_BCAST) { /* [1, Sq, 1, Skv]: broadcast over batch and heads */
        r->madd = buf_new(ATTN_F32, 1, c->Sq, 1, c->Skv, L_BSHD);
        fill_mask(&r->madd, 0);
        r->d.mask_add = &r->madd.view;
    }
    if (c->mask == M_BOOL || c->mask == M_BOTH) { /* [B, Sq, 1, Skv] */
        r->mbool = buf_new(ATTN_U8, c->B, c->Sq, 1, c->Skv, L_BSHD);
        fill_mask(&r->mbool, 1);
        r->d.mask_bool = &r->mbool.view;
    }
    if (c->lse) {
        r->lse = malloc(sizeof(float) * (size_t)(c->B * c->Hq * c->Sq));
        ck_assert_ptr_nonnull(r->lse);
        r->tlse = (attn_tensor){.data = r->lse, .dtype = ATTN_F32,
                                .shape = {c->B, c->Sq, c->Hq, 1},
                                .stride = {c->Hq * c->Sq, 1, c->Sq, 1}};
    }
}

static void run_free(run *r)
{
    free(r->q.mem);
    free(r->k.mem);
    free(r->v.mem);
    free(r->o.mem);
    free(r->madd.mem);
    free(r->mbool.mem);
    free(r->lse);
}

static void run_cpu(run *r, const ccase *c)
{
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("cpu", c->opts, &be), ATTN_OK);
    attn_status st = attn_sdpa_forward(be, &r->d, &r->q.view, &r->k.view, &r->v.view,
                                       &r->o.view, c->lse ? &r->tlse : NULL);
    ck_assert_msg(st == ATTN_OK, "forward: %s %s", attn_status_name(st), attn_last_error());
    attn_backend_close(be);
}

static const char *case_str(const ccase *c)
{
    static char s[400];
    snprintf(s, sizeof s,
             "B%lld Sq%lld Skv%lld Hq%lld Hkv%lld Dk%lld Dv%lld causal%d align%d wl%lld wr%lld "
             "cap%g q:%s kv:%s out:%s layout%d mask%d opts=%s",
             (long long)c->B, (long long)c->Sq, (long long)c->Skv, (long long)c->Hq,
             (long long)c->Hkv, (long long)c->Dk, (long long)c->Dv, c->causal, (int)c->align,
             (long long)c->wl, (long long)c->wr, c->softcap, attn_dtype_name(c->dq),
             attn_dtype_name(c->dkv), attn_dtype_name(c->dout), (int)c->layout, (int)c->mask,
             c->opts ? c->opts : "");
    return s;
}

/* Runs the cpu backend on case c and checks every output element and LSE against the f64
 * reference under the bounds stated at the top of this file. */
static void check_case(const ccase *c)
{
    run r;
    run_init(&r, c);
    run_cpu(&r, c);
    attn_sdpa_problem p;
    ck_assert_int_eq(attn_sdpa_validate(&r.d, &r.q.view, &r.k.view, &r.v.view, &r.o.view,
                                        c->lse ? &r.tlse : NULL, &p),
                     ATTN_OK);
    size_t n_out = (size_t)(c->B * c->Sq * c->Hq * c->Dv), n_lse = (size_t)(c->B * c->Hq * c->Sq);
    double *gold = malloc(sizeof(double) * n_out), *mag = malloc(sizeof(double) * n_out);
    double *glse = malloc(sizeof(double) * n_lse);
    ck_assert(gold && mag && glse);
    ck_assert_int_eq(attn_ref_sdpa(&p, ATTN_REF_F64, gold, glse, mag), ATTN_OK);
    double grow = 8 * 0x1p-24 * sqrt((double)(c->Dk + c->Skv));
    double uo = unit_roundoff(c->dout), t0 = tiny(c->dout);
    const attn_tensor *to = &r.o.view;
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t i = 0; i < c->Sq; i++)
            for (int64_t h = 0; h < c->Hq; h++) {
                size_t row = (size_t)(((b * c->Sq + i) * c->Hq + h) * c->Dv);
                double gl = glse[(b * c->Hq + h) * c->Sq + i];
                for (int64_t e = 0; e < c->Dv; e++) {
                    double g = gold[row + (size_t)e];
                    double got = attn_load_f64(to->data, to->dtype, elem(to, b, i, h, e));
                    double bound = grow * mag[row + (size_t)e] + 2 * uo * fabs(g) + t0;
                    if (gl == -INFINITY)
                        bound = 0; /* fully masked row: exactly 0 */
                    ck_assert_msg(fabs(got - g) <= bound,
                                  "%s: out[%lld,%lld,%lld,%lld] = %.9g, gold %.9g, bound %.3g",
                                  case_str(c), (long long)b, (long long)i, (long long)h,
                                  (long long)e, got, g, bound);
                }
                if (!c->lse)
                    continue;
                double got = r.lse[(b * c->Hq + h) * c->Sq + i];
                if (gl == -INFINITY)
                    ck_assert_msg(got == -INFINITY, "%s: lse row %lld,%lld,%lld = %g, want -inf",
                                  case_str(c), (long long)b, (long long)i, (long long)h, got);
                else
                    ck_assert_msg(fabs(got - gl) <= grow * (1 + fabs(gl)),
                                  "%s: lse[%lld,%lld,%lld] = %.9g, gold %.9g", case_str(c),
                                  (long long)b, (long long)i, (long long)h, got, gl);
            }
    free(gold);
    free(mag);
    free(glse);
    run_free(&r);
}

/* ---- the grid ------------------------------------------------------------------------------ */

static const int64_t seqs[] = {1, 3, 17, 64, 113, 300};
static const int64_t dims[] = {32, 64, 80, 128};
static const int64_t windows[] = {0, 16, 127, -1};

static int64_t pick(uint64_t n, uint64_t salt, int64_t count)
{
    return (int64_t)(attn_rng_bits(SEED, 100 + salt, n) % (uint64_t)count);
}

/* Case n of the sampled grid: every dimension drawn independently (fixed seed), so 140 cases
 * cover all values of each axis many times over without the full product's cost. */
static ccase grid_case(uint64_t n)
{
    static const int64_t hq[] = {1, 4, 8}, hkv[] = {1, 2};
    static const attn_dtype dts[] = {ATTN_F32, ATTN_F32, ATTN_F16, ATTN_BF16};
    ccase c = base_case(seqs[pick(n, 0, 6)], seqs[pick(n, 1, 6)], dims[pick(n, 2, 4)]);
    c.B = 1 + pick(n, 3, 2);
    c.Hkv = hkv[pick(n, 4, 2)];
    c.Hq = hq[pick(n, 5, 3)];
    if (c.Hq % c.Hkv)
        c.Hq *= c.Hkv;
    if (pick(n, 6, 3) == 0)
        c.Dv = dims[pick(n, 7, 4)]; /* Dk != Dv */
    c.causal = pick(n, 8, 2);
    c.align = pick(n, 9, 2) ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
    c.wl = windows[pick(n, 10, 4)];
    if (!c.causal && pick(n, 11, 3) == 0)
        c.wr = windows[pick(n, 12, 3)];
    c.softcap = pick(n, 13, 4) == 0 ? 5.0f : 0.0f;
    c.dq = dts[pick(n, 14, 4)];
    c.dkv = dts[pick(n, 15, 4)];
    c.dout = dts[pick(n, 16, 4)];
    c.layout = (enum layout)pick(n, 17, 3);
    c.mask = (enum mask)pick(n, 18, 6);
    c.lse = pick(n, 19, 4) != 0;
    return c;
}

START_TEST(test_grid)
{
    for (int n = 0; n < 20; n++) {
        ccase c = grid_case((uint64_t)(_i * 20 + n));
        check_case(&c);
    }
}
END_TEST

/* Every window, both alignments, causal and right windows, on a square and a ragged shape. */
START_TEST(test_windows)
{
    static const int64_t shapes[][2] = {{113, 300}, {300, 113}, {64, 64}};
    for (int s = 0; s < 3; s++)
        for (int w = 0; w < 4; w++)
            for (int a = 0; a < 2; a++) {
                ccase c = base_case(shapes[s][0], shapes[s][1], 32);
                c.wl = windows[w];
                c.align = a ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
                c.causal = 1;
                check_case(&c);
                c.causal = 0;
                c.wr = windows[(w + 1) % 4];
                check_case(&c);
            }
}
END_TEST

/* Every mask kind (incl. fully masked rows), soft-cap, f16/bf16 in and out. */
START_TEST(test_masks_dtypes)
{
    static const attn_dtype dts[] = {ATTN_F32, ATTN_F16, ATTN_BF16};
    for (int m = 0; m < 6; m++)
        for (int t = 0; t < 3; t++) {
            ccase c = base_case(17, 113, 64);
            c.Hq = 4;
            c.Hkv = 2;
            c.B = 2;
            c.mask = (enum mask)m;
            c.dq = c.dkv = c.dout = dts[t];
            c.softcap = t == 1 ? 3.0f : 0.0f;
            check_case(&c);
            c.Sq = 3; /* decode path */
            check_case(&c);
        }
}
END_TEST

/* Key and query counts at tile sizes +- 1 (tiles are up to 256 x 512, query rows halved for
 * small problems; decode tiles are 256 keys). */
START_TEST(test_tile_edges)
{
    static const int64_t sk[] = {255, 256, 257, 511, 512, 513};
    static const int64_t sq[] = {5, 127, 129, 257};
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 4; b++) {
            ccase c = base_case(sq[b], sk[a], 32);
            c.causal = (a + b) % 2;
            check_case(&c);
        }
}
END_TEST

/* Decode path: Sq 1..4 over long KV with GQA, f16 KV, KV-cache views, windows. */
START_TEST(test_decode)
{
    static const int64_t sk[] = {1, 7, 1000, 5000};
    for (int64_t sq = 1; sq <= 4; sq++)
        for (int a = 0; a < 4; a++) {
            ccase c = base_case(sq, sk[a], 128);
            c.Hq = 8;
            c.Hkv = 2;
            c.dkv = (sq + a) % 2 ? ATTN_F16 : ATTN_F32;
            c.layout = a % 2 ? L_CACHE : L_BSHD;
            c.causal = sq % 2;
            c.wl = a == 2 ? 127 : -1;
            c.mask = sq == 3 ? M_ADD_BCAST : M_NONE;
            check_case(&c);
        }
}
END_TEST

/* The decode kernels, SIMD (AVX2 where the CPU has it) and portable (simd=off): Sq 1..4, GQA
 * groups 1, 4, 8, Dk != Dv, dims that are not multiples of 8, f32/f16/bf16 KV, KV-cache
 * views, windows, masks and soft-cap; Skv 1500 spans two key chunks and partial tiles. */
static ccase decode_kernel_case(int n, const char *opts)
{
    static const int64_t dk[] = {128, 20, 72, 36}, dv[] = {128, 20, 40, 100};
    static const int64_t groups[] = {1, 4, 8};
    static const attn_dtype dts[] = {ATTN_F32, ATTN_F16, ATTN_BF16};
    ccase c = base_case(1 + n % 4, n % 2 ? 1500 : 300, dk[(n / 2) % 4]);
    c.Dv = dv[(n / 2) % 4];
    c.Hkv = 2;
    c.Hq = 2 * groups[n % 3];
    c.dkv = dts[(n / 3) % 3];
    c.dq = dts[(n / 5) % 3];
    c.layout = (n / 4) % 2 ? L_CACHE : L_BSHD;
    switch (n % 5) {
    case 1: c.causal = 1; c.wl = 100; break;
    case 2: c.mask = M_BOOL; break;
    case 3: c.mask = M_ADD; c.wr = 5; break;
    case 4: c.mask = M_BOTH; c.softcap = 4.0f; break;
    default: break;
    }
    c.opts = opts;
    return c;
}

START_TEST(test_decode_kernels)
{
    for (int n = 0; n < 24; n++) {
        ccase c = decode_kernel_case(n, _i ? "simd=off" : NULL);
        check_case(&c);
    }
}
END_TEST

/* Which decode kernels run: simd=off always names the portable ones; the default names the
 * AVX2 ones exactly when the describe line says this CPU has them. */
START_TEST(test_decode_impl_name)
{
    ccase c = base_case(1, 500, 64);
    run r;
    run_init(&r, &c);
    for (int off = 0; off < 2; off++) {
        attn_backend *be = NULL;
        ck_assert_int_eq(attn_backend_open("cpu", off ? "simd=off" : "simd=on", &be), ATTN_OK);
        char name[64];
        ck_assert_int_eq(attn_sdpa_impl_name(be, &r.d, &r.q.view, &r.k.view, &r.v.view,
                                             &r.o.view, NULL, name, sizeof name),
                         ATTN_OK);
        int avx2 = strstr(attn_backend_describe(be), "decode kernels avx2") != NULL;
        ck_assert_msg(strcmp(name, avx2 ? "cpu:decode_splitkv_avx2" : "cpu:decode_splitkv_c") ==
                          0 && (!off || !avx2),
                      "%s / %s", name, attn_backend_describe(be));
        attn_backend_close(be);
    }
    c.Sq = 100;
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("cpu", NULL, &be), ATTN_OK);
    run r2;
    run_init(&r2, &c);
    char name[64];
    ck_assert_int_eq(attn_sdpa_impl_name(be, &r2.d, &r2.q.view, &r2.k.view, &r2.v.view,
                                         &r2.o.view, NULL, name, sizeof name),
                     ATTN_OK);
    ck_assert_msg(strncmp(name, "cpu:flash_blis_br", 17) == 0, "%s", name);
    attn_backend_close(be);
    run_free(&r2);
    run_free(&r);
}
END_TEST

/* Decode: Inf/NaN in V rows that the boolean mask hides must not reach the output, with the
 * SIMD kernels (which check hidden keys per tile) and the portable ones. */
START_TEST(test_decode_hidden_nonfinite_v)
{
    ccase c = base_case(2, 300, 32);
    c.mask = M_BOOL;
    c.opts = _i ? "simd=off" : NULL;
    run r;
    run_init(&r, &c);
    uint8_t *m = r.mbool.mem;
    float *v = r.v.mem;
    /* Key 150 (NaN at d 5) is visible to query 1 only; key 151 (Inf at d 6) to none. */
    m[150] = m[151] = m[c.Skv + 151] = 0;
    m[c.Skv + 150] = 1;
    v[150 * 32 + 5] = NAN;
    v[151 * 32 + 6] = INFINITY;
    run_cpu(&r, &c);
    const float *o = r.o.mem;
    for (int64_t e = 0; e < c.Sq * c.Hq * c.Dv; e++) {
        int nan_expected = e / (c.Hq * c.Dv) == 1 && e % c.Dv == 5;
        ck_assert_msg(nan_expected ? isnan(o[e]) : isfinite(o[e]), "element %lld: %g",
                      (long long)e, o[e]);
    }
    run_free(&r);
}
END_TEST

static void expect_same_threads(ccase c)
{
    run r1, r2;
    c.opts = "threads=1";
    run_init(&r1, &c);
    run_cpu(&r1, &c);
    c.opts = "threads=2";
    run_init(&r2, &c);
    run_cpu(&r2, &c);
    size_t n = (size_t)(c.B * c.Sq * c.Hq * c.Dv) * attn_dtype_size(c.dout);
    ck_assert_msg(memcmp(r1.o.mem, r2.o.mem, n) == 0, "%s: threads=1 and 2 differ",
                  case_str(&c));
    ck_assert(memcmp(r1.lse, r2.lse, sizeof(float) * (size_t)(c.B * c.Hq * c.Sq)) == 0);
    run_free(&r1);
    run_free(&r2);
}

/* Each work item is computed by one thread with a fixed order of operations, so the tiled
 * path gives bitwise-identical results for thread counts with the same tile sizes (this shape
 * has 8 work items of 256 rows, enough to keep Br at 256 for 1 and 2 threads); the decode
 * path splits the KV range by thread count, so there the bound is checked for each count. */
START_TEST(test_threads)
{
    ccase c = base_case(300, 300, 64);
    c.causal = 1;
    c.Hq = 4;
    expect_same_threads(c);
    c.dkv = ATTN_F16;
    expect_same_threads(c);
    ccase d = base_case(2, 3000, 64);
    d.Hq = 8;
    d.Hkv = 2;
    for (int t = 0; t < 3; t++) {
        d.opts = t == 0 ? "threads=1" : t == 1 ? "threads=2" : "threads=3";
        check_case(&d);
    }
}
END_TEST

START_TEST(test_options_describe)
{
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("cpu", "threads=0", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("cpu", "threads=x", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("cpu", "colour=red", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("cpu", "simd=maybe", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("cpu", "threads", &be), ATTN_ERR_BACKEND);
    ck_assert_int_eq(attn_backend_open("cpu", "threads=3", &be), ATTN_OK);
    const char *d = attn_backend_describe(be);
    ck_assert_msg(strstr(d, "BLIS") && strstr(d, "kernels") && strstr(d, "3 threads"),
                  "describe: %s", d);
    attn_backend_close(be);
}
END_TEST

/* ---- the process environment ---- */

extern char **environ;

/* A copy of the whole environment. */
static char **env_snapshot(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **copy = calloc(n + 1, sizeof *copy);
    ck_assert_ptr_nonnull(copy);
    for (size_t i = 0; i < n; i++)
        ck_assert_ptr_nonnull(copy[i] = strdup(environ[i]));
    return copy;
}

static void env_expect(char **before, const char *when)
{
    size_t i = 0;
    for (; before[i] && environ[i]; i++)
        ck_assert_msg(strcmp(before[i], environ[i]) == 0, "%s: '%s' became '%s'", when,
                      before[i], environ[i]);
    ck_assert_msg(!before[i] && !environ[i], "%s: the environment %s '%s'", when,
                  before[i] ? "lost" : "gained", before[i] ? before[i] : environ[i]);
}

static void env_free(char **env)
{
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

/* Opens the cpu backend (BLIS_ARCH_TYPE = value, NULL: unset) and runs a small call: the
 * environment must be exactly as before. BLIS is set up once per process, so each case needs
 * a fresh one (Check's fork mode); returns 0 without it. */
static int open_with_arch(const char *test, const char *value, attn_backend **be,
                          attn_status *st)
{
    const char *fork = getenv("CK_FORK");
    if (fork && strcmp(fork, "no") == 0) {
        printf("SKIPPED %s: needs CK_FORK mode\n", test);
        return 0;
    }
    if (value)
        setenv("BLIS_ARCH_TYPE", value, 1);
    else
        unsetenv("BLIS_ARCH_TYPE");
    char **before = env_snapshot();
    *be = NULL;
    *st = attn_backend_open("cpu", NULL, be);
    env_expect(before, "after opening the cpu backend");
    if (*st == ATTN_OK) {
        ccase c = base_case(70, 130, 32); /* the tiled path: BLIS runs */
        check_case(&c);
        env_expect(before, "after a call");
    }
    const char *now = getenv("BLIS_ARCH_TYPE");
    if (value)
        ck_assert_str_eq(now, value);
    else
        ck_assert_ptr_null(now);
    env_free(before);
    return 1;
}

START_TEST(test_env_unset)
{
    attn_backend *be;
    attn_status st;
    if (!open_with_arch(__func__, NULL, &be, &st))
        return;
    ck_assert_msg(st == ATTN_OK, "%s", attn_last_error());
    const char *d = attn_backend_describe(be);
    ck_assert_msg(strstr(d, "(auto-selected)") || strstr(d, "(BLIS detection)"), "%s", d);
    attn_backend_close(be);
}
END_TEST

/* A user's numeric choice is used as is: generic runs on every CPU and is never auto-selected. */
START_TEST(test_env_numeric)
{
    char num[16];
    snprintf(num, sizeof num, "%d", (int)BLIS_ARCH_GENERIC);
    attn_backend *be;
    attn_status st;
    if (!open_with_arch(__func__, num, &be, &st))
        return;
    ck_assert_msg(st == ATTN_OK, "%s", attn_last_error());
    char want[64];
    snprintf(want, sizeof want, "kernels generic (from BLIS_ARCH_TYPE=%s)", num);
    ck_assert_msg(strstr(attn_backend_describe(be), want), "%s", attn_backend_describe(be));
    attn_backend_close(be);
}
END_TEST

/* An id BLIS would abort on: a status with the reason, the process lives on, nothing changed. */
START_TEST(test_env_invalid)
{
    attn_backend *be;
    attn_status st;
    if (!open_with_arch(__func__, "99", &be, &st))
        return;
    ck_assert_int_eq(st, ATTN_ERR_BACKEND);
    ck_assert_ptr_null(be);
    ck_assert_msg(strstr(attn_last_error(), "BLIS_ARCH_TYPE=99") &&
                      strstr(attn_last_error(), "would abort"),
                  "%s", attn_last_error());
    ck_assert_int_eq(attn_backend_open("cpu", NULL, &be), ATTN_ERR_BACKEND); /* every time */
}
END_TEST

/* A name: BLIS reads it as 0 (skx). A warning where this CPU runs skx, else a refusal. */
START_TEST(test_env_name)
{
    attn_backend *be;
    attn_status st;
    if (!open_with_arch(__func__, "zen3", &be, &st))
        return;
    if (st == ATTN_OK) {
        const char *d = attn_backend_describe(be);
        ck_assert_msg(strstr(d, "kernels skx") && strstr(d, "warning: BLIS_ARCH_TYPE=zen3 is "
                                                            "not a number"),
                      "%s", d);
        attn_backend_close(be);
    } else {
        ck_assert_int_eq(st, ATTN_ERR_BACKEND);
        ck_assert_msg(strstr(attn_last_error(), "this CPU lacks"), "%s", attn_last_error());
    }
}
END_TEST

/* A NaN logit (NaN in a visible key) makes the row NaN and its LSE NaN. */
START_TEST(test_nan_logit)
{
    for (int64_t sq = 2; sq <= 200; sq += 198) {
        ccase c = base_case(sq, 300, 32);
        c.causal = 1;
        c.align = ATTN_ALIGN_TOP_LEFT;
        run r;
        run_init(&r, &c);
        ((float *)r.k.mem)[1 * 32 + 3] = NAN; /* key 1: visible from row 1 on */
        run_cpu(&r, &c);
        const float *o = r.o.mem;
        for (int64_t i = 0; i < sq; i++)
            for (int64_t e = 0; e < c.Hq * c.Dv; e++)
                ck_assert_msg(i >= 1 ? isnan(o[i * c.Hq * c.Dv + e]) : isfinite(o[e]),
                              "Sq %lld row %lld", (long long)sq, (long long)i);
        ck_assert(isfinite(r.lse[0]) && isnan(r.lse[1]));
        run_free(&r);
    }
}
END_TEST

/* Non-finite values in V behind keys a row cannot see (inside a partly visible tile) must not
 * leak into that row (0 * inf would be NaN). */
START_TEST(test_hidden_nonfinite_v)
{
    for (int64_t sq = 2; sq <= 200; sq += 198) {
        ccase c = base_case(sq, 300, 32);
        c.causal = 1;
        c.align = ATTN_ALIGN_TOP_LEFT;
        run r;
        run_init(&r, &c);
        float *v = r.v.mem;
        v[150 * 32 + 5] = NAN;
        v[151 * 32 + 6] = INFINITY;
        run_cpu(&r, &c);
        const float *o = r.o.mem;
        for (int64_t i = 0; i < sq; i++)
            for (int64_t e = 0; e < c.Hq * c.Dv; e++) {
                float x = o[i * c.Hq * c.Dv + e];
                int d = (int)(e % c.Dv);
                int bad = (i >= 150 && d == 5) || (i >= 151 && d == 6);
                ck_assert_msg(bad ? !isfinite(x) : isfinite(x), "Sq %lld row %lld d %d: %g",
                              (long long)sq, (long long)i, d, x);
            }
        run_free(&r);
    }
}
END_TEST

static Suite *cpu_suite(void)
{
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("vs_reference");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_grid, 0, 7);
    tcase_add_test(tc, test_windows);
    tcase_add_test(tc, test_masks_dtypes);
    tcase_add_test(tc, test_tile_edges);
    tcase_add_test(tc, test_decode);
    tcase_add_loop_test(tc, test_decode_kernels, 0, 2);
    tcase_add_test(tc, test_decode_impl_name);
    tcase_add_loop_test(tc, test_decode_hidden_nonfinite_v, 0, 2);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_options_describe);
    tcase_add_test(tc, test_env_unset);
    tcase_add_test(tc, test_env_numeric);
    tcase_add_test(tc, test_env_invalid);
    tcase_add_test(tc, test_env_name);
    tcase_add_test(tc, test_nan_logit);
    tcase_add_test(tc, test_hidden_nonfinite_v);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cpu_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
