/* rattention_fixture.h - the one RATTENTION test fixture, shared by the reference, bad-input
 * and backend suites: a problem's tensors (any dtypes, contiguous or strided views, optional
 * gammas and states) filled from a seed, their dense f64 copies, the f64 reference of the
 * forward and of the decode step (attn_ref_rattention*, rattention_ref.h), a decode cache
 * (ring and state) with its handoff from a forward's state_out, and the comparison every suite
 * uses. docs/ops/rattention.md. */
#ifndef ATTN_RATTENTION_FIXTURE_H_
#define ATTN_RATTENTION_FIXTURE_H_

#include "attn/attn.h"
#include "rattention_ref.h"

#include <stdint.h>

/* What to build: sizes, storage dtypes, views and optional tensors. */
typedef struct ratt_fx_spec {
    int64_t B, S, Hq, Hkv, Dk, Dv;
    attn_dtype dt_q, dt_kv, dt_out; /* q; k and v; out */
    int strided;                    /* 1: q, k, v, out as padded BHSD (non-contiguous) views */
    int gammas;                     /* 1: gamma_swa and gamma_rla in [0.5, 1.5) */
    int state_in, state_out;        /* 1: the tensor is given (state_in in [-0.5, 0.5)) */
    int dyadic;                     /* 1: inputs multiples of 1/8 in [-1, 1] (sums exact in f32) */
    uint64_t seed;
} ratt_fx_spec;

/* Whether the backend opens here (else its reason goes to stderr: the caller skips it). */
int ratt_fx_available(const char *backend);

/* The spec every suite starts from: B 1, S 13, Hq 4, Hkv 2, Dk 8, Dv 6, f32, contiguous,
 * nothing optional, seed 11. */
ratt_fx_spec ratt_fx_spec_default(void);
/* The default spec with these sizes. */
ratt_fx_spec ratt_fx_spec_sized(int64_t B, int64_t S, int64_t Hq, int64_t Hkv, int64_t Dk,
                                int64_t Dv);

/* The default descriptor with this window, feature map, RoPE layout (theta 10000) and
 * position offset: a test case's settings. */
attn_rattention_desc ratt_fx_desc(int64_t window, attn_linear_feature feature,
                                  attn_rope_layout rope, int64_t offset);

typedef struct ratt_fx {
    ratt_fx_spec sp;
    attn_tensor q, k, v, out, gamma_swa, gamma_rla, state_in, state_out;
    attn_rattention_io io; /* the optional tensors the spec asks for */
    void *mem[8];
} ratt_fx;

/* Allocate and fill (out and state_out zero). Fails the test when memory runs out. */
void ratt_fx_make(ratt_fx *f, const ratt_fx_spec *sp);
void ratt_fx_free(ratt_fx *f);

/* Rows [s0, s0 + n) of dim 1 of a host view (a view of the same memory). */
attn_tensor ratt_fx_rows(const attn_tensor *t, int64_t s0, int64_t n);
/* Dense f64 copy [s0][s1][s2][s3] of a host view (malloc'd). */
double *ratt_fx_load(const attn_tensor *t);
/* Elements of a view. */
int64_t ratt_fx_numel(const attn_tensor *t);
/* max |got - want| / max |want| (the absolute difference when want is all 0). */
double ratt_fx_max_rel(const double *got, const double *want, int64_t n);

/* The reference's results (out, swa, rla [B][S][Hq][Dv]; state [B][Hkv][2Dk][Dv]). */
typedef struct ratt_fx_ref {
    double *out, *swa, *rla, *state;
} ratt_fx_ref;
void ratt_fx_ref_free(ratt_fx_ref *r);

/* The forward's definition on f's tensors under d (validated; fails the test otherwise). */
ratt_fx_ref ratt_fx_forward_ref(const ratt_fx *f, const attn_rattention_desc *d,
                                attn_ref_precision prec);

/* A decode cache for f's sizes: rings of window + 1 slots in ring_dt (none when w = -1), the
 * state f32 (a copy of f's state_in when given, else 0), pos 0. */
typedef struct ratt_fx_cache {
    attn_tensor k_ring, v_ring, state;
    attn_rattention_cache c;
    void *mem[3];
} ratt_fx_cache;
void ratt_fx_cache_make(ratt_fx_cache *c, const ratt_fx *f, int64_t window, attn_dtype ring_dt);
void ratt_fx_cache_free(ratt_fx_cache *c);
/* The handoff from a forward over f's first T tokens: the ring holds tokens
 * max(0, T - w - 1) .. T - 1 of f's k and v in their slots, pos = T, the state from `state`
 * (f32 [B][Hkv][2Dk][Dv], e.g. that forward's state_out). */
void ratt_fx_cache_fill(ratt_fx_cache *c, const ratt_fx *f, int64_t window, int64_t T,
                        const attn_tensor *state);

/* The reference decode step on f's rows [s0, s0 + n) (validated): its f64 out rows go into
 * out_all ([B][S][Hq][Dv], rows s0 .. s0 + n - 1); then the ref backend's decode call advances
 * the cache (ring in its dtype, state rounded to f32, pos += n; f's out rows rounded). */
void ratt_fx_decode_ref(const ratt_fx *f, const attn_rattention_desc *d, ratt_fx_cache *c,
                        int64_t s0, int64_t n, double *out_all);
/* Lengths of the calls that split S tokens (returns their number, at most S): `kind` 0 one
 * call, 1 a prefill of 5 then single steps, 2 single steps, 3 chunks of 1 .. 6 drawn from a
 * fixed seed. */
int ratt_fx_split(int kind, int64_t S, int64_t *len);
/* The same rows through the public decode call on `be`, into f's out rows. */
attn_status ratt_fx_decode(attn_backend *be, const attn_rattention_desc *d, ratt_fx_cache *c,
                           const ratt_fx *f, int64_t s0, int64_t n);

#endif /* ATTN_RATTENTION_FIXTURE_H_ */
