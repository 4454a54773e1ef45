/* attn_transnormer_validate.c - validation of a TransNormer call and its normalisation into an
 * attn_transnormer_problem (the core's view checks, attn_view.h). The only place the op's user
 * input is checked. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_qkv.h"
#include "attn_transnormer_problem.h"

#include <math.h>
#include <string.h>

/* Batch or sequence may be 0 (nothing to compute); every other size must be positive. */
#define ZERO_BATCH_SEQ 3u
/* Blocks beyond this are refused: block arithmetic stays far from int64 overflow. */
#define BLOCK_MAX ((int64_t)1 << 40)

static attn_status check_desc(const attn_transnormer_desc *d)
{
    ATTN_TRY(ATTN_DESC_RESERVED(d, "attn_transnormer_desc_default"));
    ATTN_TRY(attn_desc_enum("mode", (int)d->mode, ATTN_TRANSNORMER_MODE_DIAG,
                            "attn_transnormer_mode"));
    ATTN_TRY(attn_desc_flag("causal", d->causal));
    ATTN_TRY(attn_desc_enum("feature", (int)d->feature, ATTN_TRANSNORMER_FEATURE_IDENTITY,
                            "attn_transnormer_feature"));
    ATTN_TRY(attn_desc_enum("scores", (int)d->scores, ATTN_TRANSNORMER_SCORES_RELU,
                            "attn_transnormer_scores"));
    ATTN_TRY(attn_desc_enum("pad", (int)d->pad, ATTN_TRANSNORMER_PAD_ZERO,
                            "attn_transnormer_pad"));
    ATTN_TRY(attn_desc_enum("norm", (int)d->norm, ATTN_TRANSNORMER_NORM_NONE,
                            "attn_transnormer_norm"));
    if (d->block < 0 || d->block > BLOCK_MAX)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "desc.block = %lld: use 0 (64) or a block of 1 to 2^40 tokens",
                         (long long)d->block);
    if (!isfinite(d->scale))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.scale = %g must be finite",
                         (double)d->scale);
    if (!(d->eps >= 0.0f) || isinf(d->eps))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "desc.eps = %g must be 0 (1e-8) or finite and positive",
                         (double)d->eps);
    return ATTN_OK;
}

/* The norm the authors pair with each mode (docs/ops/transnormer.md). */
static int norm_on(const attn_transnormer_desc *d)
{
    if (d->norm != ATTN_TRANSNORMER_NORM_AUTO)
        return d->norm == ATTN_TRANSNORMER_NORM_SRMS;
    return d->mode == ATTN_TRANSNORMER_MODE_NORM || d->scores == ATTN_TRANSNORMER_SCORES_RELU;
}

attn_status attn_transnormer_validate(const attn_transnormer_desc *d, const attn_tensor *q,
                                      const attn_tensor *k, const attn_tensor *v,
                                      const attn_tensor *out, attn_transnormer_problem *p)
{
    if (!d || !q || !k || !v || !out || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_transnormer: %s is NULL",
                         !d ? "desc" : !q ? "q" : !k ? "k" : !v ? "v" : !out ? "out" : "problem");
    ATTN_TRY(check_desc(d));
    const attn_tensor *const t[4] = {q, k, v, out};
    attn_span s[4];
    ATTN_TRY(attn_qkv_check(t, ZERO_BATCH_SEQ, "seq of q (self-attention)", s));
    ATTN_TRY(attn_view_check_outputs(t, s, attn_qkv_names, 3, 4));

    memset(p, 0, sizeof *p);
    ATTN_QKV_SIZES(p, q, k, v);
    p->S = q->shape[1];
    p->mode = d->mode;
    p->causal = d->causal;
    p->feature = d->feature;
    p->scores = d->scores;
    p->block = d->block ? d->block : ATTN_TRANSNORMER_BLOCK_DEFAULT;
    p->scale = d->scale != 0.0f ? (double)d->scale : 1.0 / sqrt((double)p->Dk);
    /* Padded keys sit after every real query of the block: causal hides them, and ReLU
     * scores give them weight relu(0) = 0, so only non-causal softmax sees them. */
    p->pad_zero = d->pad == ATTN_TRANSNORMER_PAD_ZERO && d->mode == ATTN_TRANSNORMER_MODE_DIAG &&
                  !d->causal && d->scores == ATTN_TRANSNORMER_SCORES_SOFTMAX;
    p->srms = norm_on(d);
    p->eps = d->eps != 0.0f ? (double)d->eps : ATTN_TRANSNORMER_EPS_DEFAULT;
    attn_operand_fill(&p->q, q);
    attn_operand_fill(&p->k, k);
    attn_operand_fill(&p->v, v);
    attn_operand_fill(&p->out, out);
    return ATTN_OK;
}
