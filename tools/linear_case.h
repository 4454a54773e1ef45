/* linear_case.h - linear attention conformance cases: one problem description (sizes, feature
 * map, normaliser, causality, scale, decay, state tensors, dtypes, layout), its canonical name
 * that parses back into the same case, and the feature groups of the summary table. The driver
 * (linear_conform.c) runs them; docs/ops/linear.md gives the grammar. */
#ifndef ATTN_LINEAR_CASE_H_
#define ATTN_LINEAR_CASE_H_

#include "attn/attn.h"

#include <stddef.h>
#include <stdint.h>

/* Which state tensors a case passes (z_in / z_out come with them when it normalises). */
enum { ATTN_LINEAR_STATE_IN = 1, ATTN_LINEAR_STATE_OUT = 2 };

/* Non-finite inputs planted after the fill (special=; also TransNormer's cases): NaN and Inf
 * in the V rows of every 13th key (seen by later rows, hidden from earlier ones of the same
 * chunk), or a NaN in one k element (key S/2 of the last batch, KV head 0). */
typedef enum attn_linear_special {
    ATTN_LSPECIAL_NONE, ATTN_LSPECIAL_V_NONFINITE, ATTN_LSPECIAL_K_NAN
} attn_linear_special;
extern const char *const attn_linear_special_names[];
/* Plant `special` into the host views k and v ([B, S, H, D], any strides and dtype). */
void attn_linear_plant(attn_linear_special special, const attn_tensor *k, const attn_tensor *v);

typedef struct attn_linear_case {
    int64_t b, s, hq, hkv, dk, dv;
    attn_linear_feature feature;
    int normalize, causal;
    double eps, scale;
    attn_linear_decay decay;
    double decay_base;      /* decay=X: lambda_g = 1 - (1 - X) / (g + 1) */
    int state;              /* ATTN_LINEAR_STATE_* bits */
    attn_dtype dt_q, dt_kv, dt_out;
    int bhsd;               /* q, k, v, out head-major */
    attn_linear_special special;
    int backward;           /* run attn_linear_backward and check the gradients instead; state
                             * bits: IN also checks d_state_in (d_z_in), OUT gives d_state_out
                             * (d_z_out) */
} attn_linear_case;

/* Defaults: b1 s1 hq1 hkv1 dk dv 64, elu1, normalised (eps 1e-6), causal, scale 1, no decay,
 * no state, f32, bshd. */
void attn_linear_case_default(attn_linear_case *c);
int attn_linear_case_format(const attn_linear_case *c, char *buf, size_t size);
int attn_linear_case_token(char *tok, attn_linear_case *c, char *err, size_t errsize);
/* After all tokens: a backward case plants no special values. */
int attn_linear_case_check(const attn_linear_case *c, char *err, size_t errsize);

/* The descriptor of a case; decay_values (room for hkv floats) is filled for decay=X. */
attn_linear_desc attn_linear_case_desc(const attn_linear_case *c, float *decay_values);

typedef enum attn_linear_feat {
    ATTN_LFEAT_IDENTITY, ATTN_LFEAT_ELU, ATTN_LFEAT_ELU1, ATTN_LFEAT_RELU, ATTN_LFEAT_SILU,
    ATTN_LFEAT_SOFTMAX_PAIR, ATTN_LFEAT_RELU_PAIR, ATTN_LFEAT_NO_NORM, ATTN_LFEAT_NON_CAUSAL,
    ATTN_LFEAT_DECAY_SLOPES, ATTN_LFEAT_DECAY_GIVEN, ATTN_LFEAT_STATE_IN, ATTN_LFEAT_STATE_OUT,
    ATTN_LFEAT_GQA, ATTN_LFEAT_DK_DV, ATTN_LFEAT_F16, ATTN_LFEAT_BF16, ATTN_LFEAT_BHSD,
    ATTN_LFEAT_BATCH, ATTN_LFEAT_SCALE, ATTN_LFEAT_LONG, ATTN_LFEAT_NONFINITE,
    ATTN_LFEAT_BACKWARD, ATTN_LFEAT_COUNT
} attn_linear_feat;

extern const char *const attn_linear_feature_names[ATTN_LFEAT_COUNT];
unsigned attn_linear_case_features(const attn_linear_case *c);
/* Reference flops of the chunked f64 gold, or of the quadratic backward's (a cost estimate). */
double attn_linear_case_cost(const attn_linear_case *c);

#endif /* ATTN_LINEAR_CASE_H_ */
