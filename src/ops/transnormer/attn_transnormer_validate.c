/* attn_transnormer_validate.c - validation of a TransNormer call and its normalisation into an
 * attn_transnormer_problem (the core's view checks, attn_view.h). The only place the op's user
 * input is checked. */
#include "attn_backend_impl.h"
#include "attn_transnormer_problem.h"

#include <math.h>
#include <string.h>

/* Batch or sequence may be 0 (nothing to compute); every other size must be positive. */
#define ZERO_BATCH_SEQ 3u
/* Blocks beyond this are refused: block arithmetic stays far from int64 overflow. */
#define BLOCK_MAX ((int64_t)1 << 40)

static attn_status bad(const char *what, int value, const char *allowed)
{
    return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.%s = %d is not %s", what, value, allowed);
}

static attn_status check_desc(const attn_transnormer_desc *d)
{
    for (size_t i = 0; i < sizeof d->reserved / sizeof d->reserved[0]; i++)
        if (d->reserved[i] != 0)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "desc.reserved[%zu] is not zero: start from "
                             "attn_transnormer_desc_default()", i);
    if ((unsigned)d->mode > ATTN_TRANSNORMER_MODE_DIAG)
        return bad("mode", (int)d->mode, "an attn_transnormer_mode");
    if (d->causal != 0 && d->causal != 1)
        return bad("causal", d->causal, "0 or 1");
    if ((unsigned)d->feature > ATTN_TRANSNORMER_FEATURE_IDENTITY)
        return bad("feature", (int)d->feature, "an attn_transnormer_feature");
    if ((unsigned)d->scores > ATTN_TRANSNORMER_SCORES_RELU)
        return bad("scores", (int)d->scores, "an attn_transnormer_scores");
    if ((unsigned)d->pad > ATTN_TRANSNORMER_PAD_ZERO)
        return bad("pad", (int)d->pad, "an attn_transnormer_pad");
    if ((unsigned)d->norm > ATTN_TRANSNORMER_NORM_NONE)
        return bad("norm", (int)d->norm, "an attn_transnormer_norm");
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

static attn_status dim_is(const attn_tensor *t, const char *name, int i, int64_t want,
                          const char *what)
{
    return attn_view_expect_dim(t, name, attn_dims_bshd, i, want, what);
}

static attn_status check_shapes(const attn_tensor *q, const attn_tensor *k, const attn_tensor *v,
                                const attn_tensor *out)
{
    const int64_t B = q->shape[0], S = q->shape[1], Hq = q->shape[2], Dk = q->shape[3];
    const int64_t Hkv = k->shape[2];
    ATTN_TRY(dim_is(k, "k", 0, B, "batch of q"));
    ATTN_TRY(dim_is(k, "k", 1, S, "seq of q (self-attention)"));
    ATTN_TRY(dim_is(k, "k", 3, Dk, "Dk of q"));
    ATTN_TRY(dim_is(v, "v", 0, B, "batch of q"));
    ATTN_TRY(dim_is(v, "v", 1, S, "seq of q"));
    ATTN_TRY(dim_is(v, "v", 2, Hkv, "Hkv of k"));
    ATTN_TRY(dim_is(out, "out", 0, B, "batch of q"));
    ATTN_TRY(dim_is(out, "out", 1, S, "seq of q"));
    ATTN_TRY(dim_is(out, "out", 2, Hq, "Hq of q"));
    ATTN_TRY(dim_is(out, "out", 3, v->shape[3], "Dv of v"));
    if (Hq % Hkv != 0)
        return attn_fail(ATTN_ERR_HEADS, "Hq = %lld is not a multiple of Hkv = %lld",
                         (long long)Hq, (long long)Hkv);
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
    const attn_tensor *in[] = {q, k, v};
    const char *const names[] = {"q", "k", "v"};
    if (!d || !q || !k || !v || !out || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_transnormer: %s is NULL",
                         !d ? "desc" : !q ? "q" : !k ? "k" : !v ? "v" : !out ? "out" : "problem");
    ATTN_TRY(check_desc(d));
    attn_span s_in[3], s_out;
    for (int i = 0; i < 3; i++)
        ATTN_TRY(attn_view_check(in[i], names[i], ATTN_DTYPES_FLOAT, attn_dims_bshd,
                                 ZERO_BATCH_SEQ, &s_in[i]));
    ATTN_TRY(attn_view_check(out, "out", ATTN_DTYPES_FLOAT, attn_dims_bshd, ZERO_BATCH_SEQ,
                             &s_out));
    ATTN_TRY(check_shapes(q, k, v, out));
    ATTN_TRY(attn_view_check_distinct(out, "out"));
    for (int i = 0; i < 3; i++)
        if (attn_view_overlaps(out, &s_out, in[i], &s_in[i]))
            return attn_fail(ATTN_ERR_ALIAS, "out overlaps input %s", names[i]);

    memset(p, 0, sizeof *p);
    p->B = q->shape[0];
    p->S = q->shape[1];
    p->Hq = q->shape[2];
    p->Dk = q->shape[3];
    p->Hkv = k->shape[2];
    p->Dv = v->shape[3];
    p->group = p->Hq / p->Hkv;
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
