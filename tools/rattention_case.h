/* rattention_case.h - RATTENTION conformance cases: one problem description (sizes, window,
 * feature map, RoPE, scalars, gammas, state, forward or decode split, dtypes, layout, fill),
 * its canonical name that parses back into the same case, and the feature groups of the
 * summary table. The driver (rattention_conform.c) runs them; docs/conformance.md,
 * "RATTENTION", gives the grammar. */
#ifndef ATTN_RATTENTION_CASE_H_
#define ATTN_RATTENTION_CASE_H_

#include "attn/attn.h"
#include "attn_fill.h"
#include "linear_case.h"

#include <stddef.h>
#include <stdint.h>

typedef struct attn_rattention_case {
    int64_t b, s, hq, hkv, dk, dv;
    int64_t window;                 /* w >= -1 */
    int64_t offset;                 /* position of row 0 */
    int64_t decode;                 /* -1: one forward call; else tokens of the prefill decode
                                     * call (0: none), then calls of `step` tokens to the end */
    int64_t step;                   /* decode: tokens per call after the prefill (1) */
    double theta;                   /* RoPE base (500000) */
    double scale, eps;              /* 0: the defaults 1/sqrt(dk), 1e-8 */
    attn_linear_feature feature;    /* ATTN_LINEAR_SOFTMAX_PAIR or ATTN_LINEAR_RELU_PAIR */
    attn_rope_layout rope;
    int gamma;                      /* gamma_swa and gamma_rla given */
    int state;                      /* ATTN_LINEAR_STATE_* bits (decode: IN only; the cache's
                                     * state is always checked) */
    attn_dtype dt_q, dt_kv, dt_out; /* the rings of a decode case store dt_kv */
    int bhsd;                       /* q, k, v, out head-major */
    attn_fill_mode fill;
    attn_linear_special special;    /* non-finite k or v planted after the fill */
    int backward;                   /* run attn_rattention_backward and check the gradients
                                     * instead; state bits: IN also checks d_state_in, OUT
                                     * gives d_state_out */
} attn_rattention_case;

/* Defaults: b1 s1 hq1 hkv1 dk dv 64, w 512, softmax_pair, interleaved RoPE with theta 500000,
 * offset 0, default scale and eps, no gammas, no state, forward, f32, bshd, uniform fill. */
void attn_rattention_case_default(attn_rattention_case *c);
/* Canonical name, e.g. "rattention b1 s100 hq4 hkv2 dk64 dv64 w=16 feature=softmax_pair
 * rope=interleaved gamma state=inout dt=f32:f32:f32 layout=bshd". Returns its length. */
int attn_rattention_case_format(const attn_rattention_case *c, char *buf, size_t size);
/* One token of a name; 0, or -1 with a message in err (syntax and ranges only). */
int attn_rattention_case_token(char *tok, attn_rattention_case *c, char *err, size_t errsize);
/* After all tokens: the decode split fits the sequence, decode cases name no state_out, a
 * backward case is a forward one without special values. */
int attn_rattention_case_check(const attn_rattention_case *c, char *err, size_t errsize);

typedef enum attn_ratt_feature {
    ATTN_RATT_FEAT_NO_SWA, ATTN_RATT_FEAT_W0, ATTN_RATT_FEAT_W_GE_S, ATTN_RATT_FEAT_RELU_PAIR,
    ATTN_RATT_FEAT_HALF_ROPE, ATTN_RATT_FEAT_THETA, ATTN_RATT_FEAT_OFFSET, ATTN_RATT_FEAT_SCALE,
    ATTN_RATT_FEAT_EPS, ATTN_RATT_FEAT_GAMMA, ATTN_RATT_FEAT_STATE_IN, ATTN_RATT_FEAT_STATE_OUT,
    ATTN_RATT_FEAT_GQA, ATTN_RATT_FEAT_DK_DV, ATTN_RATT_FEAT_F16, ATTN_RATT_FEAT_BF16,
    ATTN_RATT_FEAT_BHSD, ATTN_RATT_FEAT_STRESS, ATTN_RATT_FEAT_BATCH, ATTN_RATT_FEAT_RAGGED,
    ATTN_RATT_FEAT_DECODE, ATTN_RATT_FEAT_PREFILL, ATTN_RATT_FEAT_DECODE_CHUNK,
    ATTN_RATT_FEAT_LONG, ATTN_RATT_FEAT_NONFINITE, ATTN_RATT_FEAT_BACKWARD,
    ATTN_RATT_FEAT_COUNT
} attn_ratt_feature;

extern const char *const attn_rattention_feature_names[ATTN_RATT_FEAT_COUNT];
unsigned attn_rattention_case_features(const attn_rattention_case *c);

/* The descriptor of a case. */
attn_rattention_desc attn_rattention_case_desc(const attn_rattention_case *c);
/* Reference flops of one pass (window keys, state reads and folds; about 8 passes for a
 * backward case): a cost estimate. */
double attn_rattention_case_cost(const attn_rattention_case *c);

#endif /* ATTN_RATTENTION_CASE_H_ */
