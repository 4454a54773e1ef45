/* attn_transnormer.h - TransNormer's two attentions (Qin et al., "The Devil in Linear
 * Transformer", EMNLP 2022): NormAttention (linear attention without denominator or scaling,
 * followed by SimpleRMSNorm over all heads of a token) and DiagAttention (softmax or ReLU
 * attention inside non-overlapping blocks of the sequence). Descriptor, forward call,
 * capability check and implementation name. Part of attn.h; docs/ops/transnormer.md. */
#ifndef ATTN_TRANSNORMER_H_
#define ATTN_TRANSNORMER_H_

#include "attn/attn_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum attn_transnormer_mode {
    ATTN_TRANSNORMER_MODE_NORM = 0, /* NormAttention: o_i = sum_j (phi(q_i).phi(k_j)) v_j */
    ATTN_TRANSNORMER_MODE_DIAG = 1  /* DiagAttention: attention inside blocks of `block` tokens */
} attn_transnormer_mode;

/* Feature map phi of NormAttention, applied to q and k (never to v). */
typedef enum attn_transnormer_feature {
    ATTN_TRANSNORMER_FEATURE_1_ELU = 0,   /* 1 + elu(x) (the authors' TransNormer T2) */
    ATTN_TRANSNORMER_FEATURE_ELU = 1,     /* elu(x) = x > 0 ? x : exp(x) - 1 (T1) */
    ATTN_TRANSNORMER_FEATURE_RELU = 2,    /* max(x, 0) */
    ATTN_TRANSNORMER_FEATURE_IDENTITY = 3 /* x */
} attn_transnormer_feature;

/* Scores of DiagAttention, from the logits s = scale * q.k of the keys a query sees. */
typedef enum attn_transnormer_scores {
    ATTN_TRANSNORMER_SCORES_SOFTMAX = 0, /* softmax over the block's visible keys (T2) */
    ATTN_TRANSNORMER_SCORES_RELU = 1     /* relu(s), no row normalisation (T1) */
} attn_transnormer_scores;

/* SimpleRMSNorm of the output, over the Hq * Dv values of a token:
 * out = y / (||y||_2 / sqrt(Hq * Dv) + eps). */
typedef enum attn_transnormer_norm {
    ATTN_TRANSNORMER_NORM_AUTO = 0, /* the authors' pairing: on for NormAttention and ReLU
                                       DiagAttention, off for softmax DiagAttention */
    ATTN_TRANSNORMER_NORM_SRMS = 1, /* always */
    ATTN_TRANSNORMER_NORM_NONE = 2  /* never */
} attn_transnormer_norm;

/* Keys of a partial last block (S not a multiple of block) in DiagAttention. */
typedef enum attn_transnormer_pad {
    ATTN_TRANSNORMER_PAD_MASKED = 0, /* the block just ends: no padded key takes part */
    ATTN_TRANSNORMER_PAD_ZERO = 1    /* as the authors' code: zero-padded keys (logit 0, v 0)
                                        enter the softmax denominator; only non-causal softmax
                                        scores differ from MASKED */
} attn_transnormer_pad;

typedef struct attn_transnormer_desc {
    attn_transnormer_mode mode;
    int causal;                       /* 0 or 1: key j visible to query i only if j <= i */
    attn_transnormer_feature feature; /* NormAttention's phi */
    int64_t block;                    /* DiagAttention's block size; 0 selects 64 */
    attn_transnormer_scores scores;   /* DiagAttention */
    float scale;                      /* DiagAttention's logit scale; 0 selects 1/sqrt(Dk) */
    attn_transnormer_pad pad;         /* DiagAttention, partial last block */
    attn_transnormer_norm norm;
    float eps;                        /* SRMSNorm's eps (outside the root); 0 selects 1e-8 */
    /* Room for later fields (docs/api.md, "Growable descriptors"): must be zero. */
    uint64_t reserved[6];
} attn_transnormer_desc;

/* Always start from this (or zero every field): NormAttention, not causal, 1 + elu, block 64,
 * softmax scores, scale 1/sqrt(Dk), padded keys masked, norm as the authors pair it, eps 1e-8. */
ATTN_API attn_transnormer_desc attn_transnormer_desc_default(void);

/* q [B, S, Hq, Dk], k [B, S, Hkv, Dk], v [B, S, Hkv, Dv], out [B, S, Hq, Dv] (f32, f16 or
 * bf16 each). Hq must be a multiple of Hkv (query head h uses KV head h / (Hq/Hkv)). On any
 * error nothing is written to out. */
ATTN_API attn_status attn_transnormer_forward(attn_backend *be, const attn_transnormer_desc *desc,
                                              const attn_tensor *q, const attn_tensor *k,
                                              const attn_tensor *v, const attn_tensor *out);
/* Same checks as attn_transnormer_forward, runs nothing: ATTN_OK iff forward would run. */
ATTN_API attn_status attn_transnormer_supported(attn_backend *be,
                                                const attn_transnormer_desc *desc,
                                                const attn_tensor *q, const attn_tensor *k,
                                                const attn_tensor *v, const attn_tensor *out);
/* Name of the implementation forward would run (e.g. "cpu:transnormer_norm_chunk128"),
 * written to buf (n bytes, NUL-terminated, truncated if needed). */
ATTN_API attn_status attn_transnormer_impl_name(attn_backend *be,
                                                const attn_transnormer_desc *desc,
                                                const attn_tensor *q, const attn_tensor *k,
                                                const attn_tensor *v, const attn_tensor *out,
                                                char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_TRANSNORMER_H_ */
