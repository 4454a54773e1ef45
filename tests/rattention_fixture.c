/* rattention_fixture.c - the shared RATTENTION test fixture (rattention_fixture.h): tensors and
 * their fills, dense copies, the f64 reference of both calls, the decode cache and its handoff
 * from a forward. */
#include "rattention_fixture.h"

#include "attn_fill.h"
#include "attn_half.h"
#include "attn_rng.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PAD = 3 }; /* elements after each row of a strided view */

int ratt_fx_available(const char *backend)
{
    attn_backend *be = NULL;
    const attn_status st = attn_backend_open(backend, NULL, &be);
    if (st != ATTN_OK)
        fprintf(stderr, "skipping backend %s: %s\n", backend, attn_last_error());
    attn_backend_close(be);
    return st == ATTN_OK;
}

ratt_fx_spec ratt_fx_spec_default(void)
{
    ratt_fx_spec s = {.B = 1, .S = 13, .Hq = 4, .Hkv = 2, .Dk = 8, .Dv = 6, .dt_q = ATTN_F32,
                      .dt_kv = ATTN_F32, .dt_out = ATTN_F32, .seed = 11};
    return s;
}

ratt_fx_spec ratt_fx_spec_sized(int64_t B, int64_t S, int64_t Hq, int64_t Hkv, int64_t Dk,
                                int64_t Dv)
{
    ratt_fx_spec s = ratt_fx_spec_default();
    s.B = B;
    s.S = S;
    s.Hq = Hq;
    s.Hkv = Hkv;
    s.Dk = Dk;
    s.Dv = Dv;
    return s;
}

attn_rattention_desc ratt_fx_desc(int64_t window, attn_linear_feature feature,
                                  attn_rope_layout rope, int64_t offset)
{
    attn_rattention_desc d = attn_rattention_desc_default();
    d.window = window;
    d.feature = feature;
    d.rope = rope;
    d.rope_theta = 10000.0;
    d.offset = offset;
    return d;
}

int64_t ratt_fx_numel(const attn_tensor *t)
{
    return t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3];
}

/* A [b, s, h, d] view over fresh zeroed memory: contiguous BSHD, or padded BHSD. */
static attn_tensor new_view(void **mem, attn_dtype dt, int strided, int64_t b, int64_t s,
                            int64_t h, int64_t d)
{
    const int64_t row = strided ? d + PAD : d;
    *mem = calloc((size_t)(b * s * h * row + 1), attn_dtype_size(dt));
    ck_assert_ptr_nonnull(*mem);
    attn_tensor t = attn_tensor_bshd(*mem, dt, b, s, h, d);
    if (strided) {
        t.stride[0] = h * s * row;
        t.stride[1] = row;
        t.stride[2] = s * row;
        t.stride[3] = 1;
    }
    return t;
}

/* Every element of t from fn(seed, stream, logical index), rounded once to t's dtype. */
static void fill_with(const attn_tensor *t, uint64_t seed, uint64_t stream, double lo, double hi,
                      int dyadic)
{
    int64_t idx = 0;
    for (int64_t a = 0; a < t->shape[0]; a++)
        for (int64_t b = 0; b < t->shape[1]; b++)
            for (int64_t c = 0; c < t->shape[2]; c++)
                for (int64_t d = 0; d < t->shape[3]; d++, idx++) {
                    double x = attn_rng_uniform(seed, stream, (uint64_t)idx, lo, hi);
                    if (dyadic)
                        x = round(x * 8.0) / 8.0;
                    attn_store_f64(t->data, t->dtype, a * t->stride[0] + b * t->stride[1] +
                                   c * t->stride[2] + d * t->stride[3], x);
                }
}

void ratt_fx_make(ratt_fx *f, const ratt_fx_spec *sp)
{
    memset(f, 0, sizeof *f);
    f->sp = *sp;
    const int64_t B = sp->B, S = sp->S, Df = 2 * sp->Dk;
    f->q = new_view(&f->mem[0], sp->dt_q, sp->strided, B, S, sp->Hq, sp->Dk);
    f->k = new_view(&f->mem[1], sp->dt_kv, sp->strided, B, S, sp->Hkv, sp->Dk);
    f->v = new_view(&f->mem[2], sp->dt_kv, sp->strided, B, S, sp->Hkv, sp->Dv);
    f->out = new_view(&f->mem[3], sp->dt_out, sp->strided, B, S, sp->Hq, sp->Dv);
    f->gamma_swa = new_view(&f->mem[4], ATTN_F32, 0, 1, 1, sp->Hq, sp->Dv);
    f->gamma_rla = new_view(&f->mem[5], ATTN_F32, 0, 1, 1, sp->Hq, sp->Dv);
    f->state_in = new_view(&f->mem[6], ATTN_F32, 0, B, sp->Hkv, Df, sp->Dv);
    f->state_out = new_view(&f->mem[7], ATTN_F32, 0, B, sp->Hkv, Df, sp->Dv);
    if (sp->dyadic) {
        fill_with(&f->q, sp->seed, ATTN_FILL_Q, -1, 1, 1);
        fill_with(&f->k, sp->seed, ATTN_FILL_K, -1, 1, 1);
        fill_with(&f->v, sp->seed, ATTN_FILL_V, -1, 1, 1);
    } else {
        attn_fill_tensor(&f->q, ATTN_FILL_UNIFORM, sp->seed, ATTN_FILL_Q);
        attn_fill_tensor(&f->k, ATTN_FILL_UNIFORM, sp->seed, ATTN_FILL_K);
        attn_fill_tensor(&f->v, ATTN_FILL_UNIFORM, sp->seed, ATTN_FILL_V);
    }
    fill_with(&f->gamma_swa, sp->seed, 20, 0.5, 1.5, 0);
    fill_with(&f->gamma_rla, sp->seed, 21, 0.5, 1.5, 0);
    fill_with(&f->state_in, sp->seed, 22, -0.5, 0.5, sp->dyadic);
    f->io.gamma_swa = sp->gammas ? &f->gamma_swa : NULL;
    f->io.gamma_rla = sp->gammas ? &f->gamma_rla : NULL;
    f->io.state_in = sp->state_in ? &f->state_in : NULL;
    f->io.state_out = sp->state_out ? &f->state_out : NULL;
}

void ratt_fx_free(ratt_fx *f)
{
    for (int i = 0; i < 8; i++)
        free(f->mem[i]);
    memset(f, 0, sizeof *f);
}

attn_tensor ratt_fx_rows(const attn_tensor *t, int64_t s0, int64_t n)
{
    attn_tensor r = *t;
    r.data = (char *)t->data + (size_t)(s0 * t->stride[1]) * attn_dtype_size(t->dtype);
    r.shape[1] = n;
    return r;
}

double *ratt_fx_load(const attn_tensor *t)
{
    double *x = malloc(sizeof(double) * (size_t)(ratt_fx_numel(t) + 1));
    ck_assert_ptr_nonnull(x);
    int64_t i = 0;
    for (int64_t a = 0; a < t->shape[0]; a++)
        for (int64_t b = 0; b < t->shape[1]; b++)
            for (int64_t c = 0; c < t->shape[2]; c++)
                for (int64_t d = 0; d < t->shape[3]; d++)
                    x[i++] = attn_load_f64(t->data, t->dtype, a * t->stride[0] +
                                           b * t->stride[1] + c * t->stride[2] +
                                           d * t->stride[3]);
    return x;
}

double ratt_fx_max_rel(const double *got, const double *want, int64_t n)
{
    double d = 0.0, m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs(got[i] - want[i]);
        d = isnan(e) ? INFINITY : fmax(d, e);
        m = fmax(m, fabs(want[i]));
    }
    return m > 0.0 ? d / m : d;
}

void ratt_fx_ref_free(ratt_fx_ref *r)
{
    free(r->out);
    free(r->swa);
    free(r->rla);
    free(r->state);
    memset(r, 0, sizeof *r);
}

static ratt_fx_ref ref_alloc(int64_t rows, int64_t states)
{
    ratt_fx_ref r = {calloc((size_t)rows + 1, sizeof(double)),
                     calloc((size_t)rows + 1, sizeof(double)),
                     calloc((size_t)rows + 1, sizeof(double)),
                     calloc((size_t)states + 1, sizeof(double))};
    ck_assert(r.out && r.swa && r.rla && r.state);
    return r;
}

ratt_fx_ref ratt_fx_forward_ref(const ratt_fx *f, const attn_rattention_desc *d,
                                attn_ref_precision prec)
{
    attn_rattention_problem p;
    const attn_status st = attn_rattention_validate(d, &f->q, &f->k, &f->v, &f->out, &f->io, &p);
    ck_assert_msg(st == ATTN_OK, "%s", attn_last_error());
    ratt_fx_ref r = ref_alloc(ratt_fx_numel(&f->out), ratt_fx_numel(&f->state_out));
    attn_rattention_ref_out o = {.out = r.out, .swa = r.swa, .rla = r.rla, .state = r.state};
    ck_assert_int_eq(attn_ref_rattention(&p, prec, &o), ATTN_OK);
    return r;
}

void ratt_fx_cache_make(ratt_fx_cache *c, const ratt_fx *f, int64_t window, attn_dtype ring_dt)
{
    memset(c, 0, sizeof *c);
    const ratt_fx_spec *sp = &f->sp;
    c->state = new_view(&c->mem[2], ATTN_F32, 0, sp->B, sp->Hkv, 2 * sp->Dk, sp->Dv);
    if (sp->state_in)
        memcpy(c->mem[2], f->mem[6], sizeof(float) * (size_t)ratt_fx_numel(&c->state));
    c->c.state = &c->state;
    if (window >= 0) {
        c->k_ring = new_view(&c->mem[0], ring_dt, 0, sp->B, window + 1, sp->Hkv, sp->Dk);
        c->v_ring = new_view(&c->mem[1], ring_dt, 0, sp->B, window + 1, sp->Hkv, sp->Dv);
        c->c.k_ring = &c->k_ring;
        c->c.v_ring = &c->v_ring;
    }
}

void ratt_fx_cache_free(ratt_fx_cache *c)
{
    for (int i = 0; i < 3; i++)
        free(c->mem[i]);
    memset(c, 0, sizeof *c);
}

/* Element [a, b, c, d] of src into dst (host views, each its own dtype). */
static void copy_elem(const attn_tensor *dst, const attn_tensor *src, int64_t a, int64_t b,
                      int64_t sb, int64_t c, int64_t d)
{
    attn_store_f64(dst->data, dst->dtype,
                   a * dst->stride[0] + b * dst->stride[1] + c * dst->stride[2] +
                       d * dst->stride[3],
                   attn_load_f64(src->data, src->dtype, a * src->stride[0] + sb * src->stride[1] +
                                 c * src->stride[2] + d * src->stride[3]));
}

void ratt_fx_cache_fill(ratt_fx_cache *c, const ratt_fx *f, int64_t window, int64_t T,
                        const attn_tensor *state)
{
    const ratt_fx_spec *sp = &f->sp;
    for (int64_t a = 0; a < sp->B; a++)
        for (int64_t g = 0; g < sp->Hkv; g++)
            for (int64_t x = 0; x < 2 * sp->Dk; x++)
                for (int64_t e = 0; e < sp->Dv; e++)
                    copy_elem(&c->state, state, a, g, g, x, e);
    for (int64_t t = window >= 0 && T > window ? T - window - 1 : 0; window >= 0 && t < T; t++)
        for (int64_t a = 0; a < sp->B; a++)
            for (int64_t g = 0; g < sp->Hkv; g++) {
                for (int64_t x = 0; x < sp->Dk; x++)
                    copy_elem(&c->k_ring, &f->k, a, t % (window + 1), t, g, x);
                for (int64_t e = 0; e < sp->Dv; e++)
                    copy_elem(&c->v_ring, &f->v, a, t % (window + 1), t, g, e);
            }
    c->c.pos = T;
}

void ratt_fx_decode_ref(const ratt_fx *f, const attn_rattention_desc *d, ratt_fx_cache *c,
                        int64_t s0, int64_t n, double *out_all)
{
    const ratt_fx_spec *sp = &f->sp;
    const attn_tensor q = ratt_fx_rows(&f->q, s0, n), k = ratt_fx_rows(&f->k, s0, n);
    const attn_tensor v = ratt_fx_rows(&f->v, s0, n), out = ratt_fx_rows(&f->out, s0, n);
    const attn_rattention_io io = {f->io.gamma_swa, f->io.gamma_rla, NULL, NULL};
    attn_rattention_problem p;
    const attn_status st = attn_rattention_validate_decode(d, &c->c, &q, &k, &v, &out, &io, &p);
    ck_assert_msg(st == ATTN_OK, "%s", attn_last_error());
    ratt_fx_ref r = ref_alloc(sp->B * n * sp->Hq * sp->Dv, ratt_fx_numel(&c->state));
    attn_rattention_ref_out o = {.out = r.out, .state = r.state};
    ck_assert_int_eq(attn_ref_rattention_decode(&p, ATTN_REF_F64, &o), ATTN_OK);
    const int64_t row = sp->Hq * sp->Dv;
    for (int64_t b = 0; b < sp->B; b++)
        memcpy(out_all + (b * sp->S + s0) * row, r.out + b * n * row,
               sizeof(double) * (size_t)(n * row));
    ratt_fx_ref_free(&r);
    /* the cache advanced as a backend stores it: the ref backend's own step (the same f64
     * definition, rounded once into the ring and the f32 state; pos += n) */
    attn_backend *be = NULL;
    ck_assert_int_eq(attn_backend_open("ref", NULL, &be), ATTN_OK);
    ck_assert_msg(ratt_fx_decode(be, d, c, f, s0, n) == ATTN_OK, "%s", attn_last_error());
    attn_backend_close(be);
}

int ratt_fx_split(int kind, int64_t S, int64_t *len)
{
    int n = 0;
    for (int64_t s = 0; s < S; n++) {
        const int64_t l = kind == 0 ? S : kind == 1 ? (s == 0 ? 5 : 1) : kind == 2 ? 1
                        : 1 + (int64_t)(attn_rng_bits(7, 40, (uint64_t)n) % 6);
        len[n] = l < S - s ? l : S - s;
        s += len[n];
    }
    return n;
}

attn_status ratt_fx_decode(attn_backend *be, const attn_rattention_desc *d, ratt_fx_cache *c,
                           const ratt_fx *f, int64_t s0, int64_t n)
{
    const attn_tensor q = ratt_fx_rows(&f->q, s0, n), k = ratt_fx_rows(&f->k, s0, n);
    const attn_tensor v = ratt_fx_rows(&f->v, s0, n), out = ratt_fx_rows(&f->out, s0, n);
    const attn_rattention_io io = {f->io.gamma_swa, f->io.gamma_rla, NULL, NULL};
    return attn_rattention_decode(be, d, &c->c, &q, &k, &v, &out, &io);
}
