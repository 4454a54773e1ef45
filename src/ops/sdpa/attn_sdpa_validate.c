/* attn_sdpa_validate.c - validation of an SDPA call and its normalisation into an
 * attn_sdpa_problem (view checks from the core's attn_view.c). The only place SDPA user input
 * is checked: every backend trusts its result. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_qkv.h"
#include "attn_sdpa_problem.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Masks name their axes [batch, query, head, key]. */
static attn_status mask_dim_is_or_1(const attn_tensor *t, const char *name, int i,
                                    int64_t want, const char *what)
{
    return attn_view_expect_dim_or_1(t, name, attn_dims_mask, i, want, what);
}

/* Zero-size problems: batch or Sq may be 0 (empty outputs, nothing computed); every other
 * size must be positive. */
#define ZERO_BATCH 1u
#define ZERO_BATCH_SEQ 3u

static attn_status check_desc(const attn_sdpa_desc *d)
{
    ATTN_TRY(ATTN_DESC_RESERVED(d, "attn_sdpa_desc_default"));
    ATTN_TRY(attn_desc_flag("causal", d->causal));
    if (d->align != ATTN_ALIGN_TOP_LEFT && d->align != ATTN_ALIGN_BOTTOM_RIGHT)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.align = %d is not an attn_align",
                         (int)d->align);
    ATTN_TRY(attn_desc_scale_softcap(d->scale, d->softcap));
    if (d->window_left < -1 || d->window_right < -1)
        return attn_fail(ATTN_ERR_WINDOW,
                         "window_left = %lld, window_right = %lld: use >= 0, or -1 for unlimited",
                         (long long)d->window_left, (long long)d->window_right);
    if (d->causal && d->window_right > 0)
        return attn_fail(ATTN_ERR_WINDOW,
                         "window_right = %lld contradicts causal (use -1 or 0 with causal)",
                         (long long)d->window_right);
    return ATTN_OK;
}

/* lse: [B, Sq, Hq, 1], one value per row. */
static attn_status check_lse(const attn_tensor *lse, const attn_tensor *q)
{
    for (int i = 0; i < 4; i++)
        ATTN_TRY(attn_view_expect_dim(lse, "lse", attn_dims_bshd, i, i < 3 ? q->shape[i] : 1,
                                      (const char *const[]){"batch of q", "Sq of q", "Hq of q",
                                                            "one value per row"}[i]));
    return ATTN_OK;
}

static attn_status check_mask(const attn_tensor *m, const char *name, const attn_tensor *q,
                              int64_t Skv)
{
    ATTN_TRY(mask_dim_is_or_1(m, name, 0, q->shape[0], "batch of q"));
    ATTN_TRY(mask_dim_is_or_1(m, name, 1, q->shape[1], "Sq"));
    ATTN_TRY(mask_dim_is_or_1(m, name, 2, q->shape[2], "Hq"));
    return mask_dim_is_or_1(m, name, 3, Skv, "Skv");
}

/* A window that hides no key of this problem is the unlimited one (-1): backends then take their
 * unbanded paths, and none adds a window near INT64_MAX to a position. The left window hides
 * nothing when even the last query (aligned position q_offset + Sq - 1) sees key 0, the right
 * one when even the first query (q_offset) sees key Skv - 1. Causal keeps window_right 0. */
static void normalise_windows(attn_sdpa_problem *p)
{
    if (p->window_left >= p->q_offset + p->Sq - 1)
        p->window_left = -1;
    if (!p->causal && p->window_right >= p->Skv - 1 - p->q_offset)
        p->window_right = -1;
}

/* key_score: [B, Skv, Hkv, 1], one value per (batch, key, KV head). */
static attn_status check_key_score(const attn_tensor *ks, const attn_tensor *k)
{
    for (int i = 0; i < 4; i++)
        ATTN_TRY(attn_view_expect_dim(ks, "key_score", attn_dims_bshd, i,
                                      i < 3 ? k->shape[i] : 1,
                                      (const char *const[]){"batch of k", "Skv of k",
                                                            "Hkv of k", "one value per key"}[i]));
    return ATTN_OK;
}

attn_status attn_sdpa_validate_ex(const attn_sdpa_desc *d, const attn_tensor *q,
                                  const attn_tensor *k, const attn_tensor *v,
                                  const attn_sdpa_outputs *o, attn_sdpa_problem *p)
{
    if (!o)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_sdpa: outputs is NULL");
    if (!d || !q || !k || !v || !o->out || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_sdpa: %s is NULL",
                         !d ? "desc" : !q ? "q" : !k ? "k" : !v ? "v" : !o->out ? "out"
                                                                             : "problem");
    ATTN_TRY(check_desc(d));
    for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++)
        if (o->reserved[i] != 0)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "outputs.reserved[%zu] is not zero (zero-initialise "
                             "attn_sdpa_outputs)", i);
    const attn_tensor *out = o->out, *lse = o->lse, *ks = o->key_score;
    /* Inputs q, k, v, the masks, then the outputs out, lse and key_score. */
    const attn_tensor *const t[8] = {q, k, v, d->mask_add, d->mask_bool, out, lse, ks};
    static const char *const names[8] = {"q",         "k",   "v",   "mask_add",
                                         "mask_bool", "out", "lse", "key_score"};
    attn_span s[8], s_qkv[4];
    ATTN_TRY(attn_qkv_check((const attn_tensor *const[4]){q, k, v, out}, ZERO_BATCH, NULL,
                            s_qkv));
    s[0] = s_qkv[0];
    s[1] = s_qkv[1];
    s[2] = s_qkv[2];
    s[5] = s_qkv[3];
    if (lse)
        ATTN_TRY(attn_view_check(lse, "lse", ATTN_DTYPES_F32, attn_dims_bshd, ZERO_BATCH_SEQ,
                                 &s[6]));
    if (ks)
        ATTN_TRY(attn_view_check(ks, "key_score", ATTN_DTYPES_F32, attn_dims_bshd, ZERO_BATCH,
                                 &s[7]));
    if (d->mask_add)
        ATTN_TRY(attn_view_check(d->mask_add, "mask_add", ATTN_DTYPES_FLOAT, attn_dims_mask,
                                 ZERO_BATCH_SEQ, &s[3]));
    if (d->mask_bool)
        ATTN_TRY(attn_view_check(d->mask_bool, "mask_bool", ATTN_DTYPES_U8, attn_dims_mask,
                                 ZERO_BATCH_SEQ, &s[4]));
    if (lse)
        ATTN_TRY(check_lse(lse, q));
    if (ks)
        ATTN_TRY(check_key_score(ks, k));
    if (d->mask_add)
        ATTN_TRY(check_mask(d->mask_add, "mask_add", q, k->shape[1]));
    if (d->mask_bool)
        ATTN_TRY(check_mask(d->mask_bool, "mask_bool", q, k->shape[1]));
    /* Outputs may not share memory with inputs or with each other. */
    ATTN_TRY(attn_view_check_outputs(t, s, names, 5, 8));

    memset(p, 0, sizeof *p);
    ATTN_QKV_SIZES(p, q, k, v);
    p->Sq = q->shape[1];
    p->Skv = k->shape[1];
    p->scale = d->scale != 0.0f ? (double)d->scale : 1.0 / sqrt((double)p->Dk);
    p->softcap = d->softcap;
    p->causal = d->causal;
    p->q_offset = d->align == ATTN_ALIGN_BOTTOM_RIGHT ? p->Skv - p->Sq : 0;
    p->window_left = d->window_left;
    p->window_right = d->causal ? 0 : d->window_right;
    normalise_windows(p);
    attn_operand_fill(&p->q, q);
    attn_operand_fill(&p->k, k);
    attn_operand_fill(&p->v, v);
    attn_operand_fill(&p->out, out);
    attn_operand_fill(&p->lse, lse);
    attn_operand_fill(&p->key_score, ks);
    attn_operand_fill(&p->mask_add, d->mask_add);
    attn_operand_fill(&p->mask_bool, d->mask_bool);
    return ATTN_OK;
}

attn_status attn_sdpa_validate(const attn_sdpa_desc *d, const attn_tensor *q,
                               const attn_tensor *k, const attn_tensor *v,
                               const attn_tensor *out, const attn_tensor *lse,
                               attn_sdpa_problem *p)
{
    const attn_sdpa_outputs o = {.out = out, .lse = lse};
    return attn_sdpa_validate_ex(d, q, k, v, &o, p);
}
