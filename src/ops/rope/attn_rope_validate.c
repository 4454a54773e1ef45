/* attn_rope_validate.c - validation of a RoPE call and its normalisation into an
 * attn_rope_problem (view checks from the core's attn_view.c). The only place RoPE user input
 * is checked: every backend trusts its result. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_rope_problem.h"

#include <math.h>
#include <string.h>

#define ROPE_MAX_OFFSET ((int64_t)1 << 40)
/* batch and seq may be 0 (an empty problem); heads and dim must be positive */
#define ZERO_BATCH_SEQ 3u

static attn_status check_desc(const attn_rope_desc *d)
{
    ATTN_TRY(ATTN_DESC_RESERVED(d, "attn_rope_desc_default"));
    if (d->layout != ATTN_ROPE_HALF && d->layout != ATTN_ROPE_INTERLEAVED)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.layout = %d is not an attn_rope_layout",
                         (int)d->layout);
    if (!isfinite(d->theta) || !(d->theta > 0.0))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.theta = %g must be finite and > 0",
                         d->theta);
    if (d->offset > ROPE_MAX_OFFSET || d->offset < -ROPE_MAX_OFFSET)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.offset = %lld: |offset| must be <= 2^40",
                         (long long)d->offset);
    return ATTN_OK;
}

/* rot_dim 0 means D; else an even count of features 2 .. D. */
static attn_status resolve_rot(const attn_rope_desc *d, int64_t D, int64_t *rot)
{
    *rot = d->rot_dim == 0 ? D : d->rot_dim;
    if (d->rot_dim == 0 && D % 2)
        return attn_fail(ATTN_ERR_SHAPE,
                         "x: shape[3] (dim) = %lld is odd: rotating every feature needs an even "
                         "head dim (or set desc.rot_dim)", (long long)D);
    if (*rot < 2 || *rot > D || *rot % 2)
        return attn_fail(ATTN_ERR_SHAPE, "desc.rot_dim = %lld must be even and in 2 .. D = %lld",
                         (long long)d->rot_dim, (long long)D);
    return ATTN_OK;
}

/* positions: i32/i64 [B or 1, S, 1, 1]. */
static attn_status check_positions(const attn_tensor *t, const attn_tensor *x, attn_span *s)
{
    ATTN_TRY(attn_view_check(t, "positions", ATTN_DTYPES_INT, attn_dims_bshd, ZERO_BATCH_SEQ, s));
    ATTN_TRY(attn_view_expect_dim_or_1(t, "positions", attn_dims_bshd, 0, x->shape[0],
                                       "batch of x"));
    ATTN_TRY(attn_view_expect_dim(t, "positions", attn_dims_bshd, 1, x->shape[1], "seq of x"));
    ATTN_TRY(attn_view_expect_dim(t, "positions", attn_dims_bshd, 2, 1, "one per row"));
    return attn_view_expect_dim(t, "positions", attn_dims_bshd, 3, 1, "one per row");
}

/* The same view of the same bytes: data or buffer, offset, dtype, and every stride that
 * moves (the shapes are already equal). */
static int same_view(const attn_tensor *a, const attn_tensor *b)
{
    if (a->data != b->data || a->buffer != b->buffer || a->offset != b->offset ||
        a->dtype != b->dtype)
        return 0;
    for (int i = 0; i < 4; i++)
        if (a->shape[i] > 1 && a->stride[i] != b->stride[i])
            return 0;
    return 1;
}

attn_status attn_rope_validate(const attn_rope_desc *d, const attn_tensor *x,
                               const attn_tensor *out, attn_rope_problem *p)
{
    if (!d || !x || !out || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_rope: %s is NULL",
                         !d ? "desc" : !x ? "x" : !out ? "out" : "problem");
    ATTN_TRY(check_desc(d));
    attn_span sx, so, sp;
    ATTN_TRY(attn_view_check(x, "x", ATTN_DTYPES_FLOAT, attn_dims_bshd, ZERO_BATCH_SEQ, &sx));
    ATTN_TRY(attn_view_check(out, "out", ATTN_DTYPES_FLOAT, attn_dims_bshd, ZERO_BATCH_SEQ, &so));
    for (int i = 0; i < 4; i++)
        ATTN_TRY(attn_view_expect_dim(out, "out", attn_dims_bshd, i, x->shape[i], "that of x"));
    int64_t rot;
    ATTN_TRY(resolve_rot(d, x->shape[3], &rot));
    if (d->positions)
        ATTN_TRY(check_positions(d->positions, x, &sp));
    ATTN_TRY(attn_view_check_distinct(out, "out"));
    const int in_place = same_view(x, out);
    if (!in_place && attn_view_overlaps(out, &so, x, &sx))
        return attn_fail(ATTN_ERR_ALIAS,
                         "out overlaps x without being the same view (in place needs the same "
                         "memory, offset, dtype and strides)");
    if (d->positions && attn_view_overlaps(out, &so, d->positions, &sp))
        return attn_fail(ATTN_ERR_ALIAS, "out overlaps input positions");

    memset(p, 0, sizeof *p);
    p->B = x->shape[0];
    p->S = x->shape[1];
    p->H = x->shape[2];
    p->D = x->shape[3];
    p->rot = rot;
    p->npairs = rot / 2;
    p->layout = d->layout;
    p->theta = d->theta;
    p->offset = d->offset;
    p->in_place = in_place;
    attn_operand_fill(&p->x, x);
    attn_operand_fill(&p->out, out);
    attn_operand_fill(&p->pos, d->positions);
    return ATTN_OK;
}
