/* transnormer_case.h - TransNormer conformance cases: one problem description (shape, mode and
 * its options, dtypes, layout, fill), its canonical name that parses back into the same case,
 * and the feature groups the summary table counts. The driver (transnormer_conform.c) runs
 * them; docs/ops/transnormer.md gives the grammar. */
#ifndef ATTN_TRANSNORMER_CASE_H_
#define ATTN_TRANSNORMER_CASE_H_

#include "attn/attn.h"
#include "attn_fill.h"
#include "linear_case.h"

#include <stddef.h>
#include <stdint.h>

typedef struct attn_transnormer_case {
    int64_t b, s, hq, hkv, dk, dv;
    attn_transnormer_mode mode;
    int causal;
    attn_transnormer_feature feature;
    int64_t block;                  /* DiagAttention (64 by default) */
    attn_transnormer_scores scores;
    attn_transnormer_pad pad;
    attn_transnormer_norm norm;
    double eps;                     /* 0: 1e-8 */
    double scale;                   /* 0: 1/sqrt(dk) */
    attn_dtype dt_q, dt_kv, dt_out;
    int bhsd;                       /* contiguous [B, H, S, D] views instead of [B, S, H, D] */
    attn_fill_mode fill;
    attn_linear_special special;    /* non-finite inputs planted after the fill */
} attn_transnormer_case;

/* Defaults: b1 s1 hq1 hkv1 dk dv 64, NormAttention, 1 + elu, not causal, block 64, softmax,
 * padded keys masked, norm auto, f32, bshd, uniform fill. */
void attn_transnormer_case_default(attn_transnormer_case *c);
/* Canonical name, e.g. "transnormer b1 s100 hq4 hkv2 dk32 dv32 mode=diag block=64
 * scores=relu causal dt=f32:f32:f32 layout=bshd". Returns its length. */
int attn_transnormer_case_format(const attn_transnormer_case *c, char *buf, size_t size);
/* One token of a name; 0, or -1 with a message in err (syntax and ranges only). */
int attn_transnormer_case_token(char *tok, attn_transnormer_case *c, char *err, size_t errsize);

typedef enum attn_tn_feature {
    ATTN_TN_FEAT_NORM, ATTN_TN_FEAT_DIAG, ATTN_TN_FEAT_CAUSAL, ATTN_TN_FEAT_ELU,
    ATTN_TN_FEAT_RELU_MAP, ATTN_TN_FEAT_IDENTITY, ATTN_TN_FEAT_RELU_SCORES,
    ATTN_TN_FEAT_PARTIAL, ATTN_TN_FEAT_ONE_BLOCK, ATTN_TN_FEAT_PAD_ZERO, ATTN_TN_FEAT_NORM_SET,
    ATTN_TN_FEAT_GQA, ATTN_TN_FEAT_DK_DV, ATTN_TN_FEAT_F16, ATTN_TN_FEAT_BF16, ATTN_TN_FEAT_BHSD,
    ATTN_TN_FEAT_STRESS, ATTN_TN_FEAT_BATCH, ATTN_TN_FEAT_LONG, ATTN_TN_FEAT_NONFINITE,
    ATTN_TN_FEAT_COUNT
} attn_tn_feature;

extern const char *const attn_transnormer_feature_names[ATTN_TN_FEAT_COUNT];
unsigned attn_transnormer_case_features(const attn_transnormer_case *c);

/* The descriptor of a case. */
attn_transnormer_desc attn_transnormer_case_desc(const attn_transnormer_case *c);
/* Reference flops of a case (2 * rows * seen keys * (dk + dv)): a cost estimate. */
double attn_transnormer_case_cost(const attn_transnormer_case *c);

#endif /* ATTN_TRANSNORMER_CASE_H_ */
