/* attn_validate_sdpa.c - validation of an SDPA call and its normalisation into an
 * attn_sdpa_problem. The only place user input is checked: every backend trusts its result. */
#include "attn_backend_impl.h"
#include "attn_validate.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static const char *const dim_names[4] = {"batch", "seq", "heads", "dim"};

/* Byte span [lo, hi) a view touches, relative to its base; fails on overflow. */
typedef struct span { int64_t elems_max; size_t bytes; } span;

static attn_status view_span(const attn_tensor *t, const char *name, span *s)
{
    int64_t max_off = 0, count = 1;
    for (int i = 0; i < 4; i++) {
        int64_t term;
        if (__builtin_mul_overflow(t->shape[i] - 1, t->stride[i], &term) ||
            __builtin_add_overflow(max_off, term, &max_off) ||
            __builtin_mul_overflow(count, t->shape[i], &count))
            return attn_fail(ATTN_ERR_OVERFLOW, "%s: shape x strides overflow 64-bit offsets",
                             name);
    }
    size_t esz = attn_dtype_size(t->dtype), bytes;
    if (__builtin_mul_overflow((size_t)max_off + 1, esz, &bytes) ||
        __builtin_add_overflow(bytes, t->offset, &bytes) || (uint64_t)max_off + 1 > SIZE_MAX / 2)
        return attn_fail(ATTN_ERR_OVERFLOW, "%s: byte extent overflows size_t", name);
    s->elems_max = max_off;
    s->bytes = bytes; /* offset + extent */
    return ATTN_OK;
}

static int dtype_in(attn_dtype t, unsigned allowed_mask)
{
    return (unsigned)t <= ATTN_U8 && (allowed_mask >> (unsigned)t) & 1u;
}
#define FLOATS ((1u << ATTN_F32) | (1u << ATTN_F16) | (1u << ATTN_BF16))

/* Pointer, dtype, shape, stride, size and bounds checks of one view. */
static attn_status check_view(const attn_tensor *t, const char *name, unsigned dtypes, span *s)
{
    if (!t->data && !t->buffer)
        return attn_fail(ATTN_ERR_NULL_POINTER, "%s: data and buffer are both NULL", name);
    if (t->data && t->buffer)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: set either data or buffer, not both",
                         name);
    if (!dtype_in(t->dtype, dtypes))
        return attn_fail(ATTN_ERR_DTYPE, "%s: dtype %s (%d) is not allowed here", name,
                         attn_dtype_name(t->dtype), (int)t->dtype);
    for (int i = 0; i < 4; i++) {
        if (t->shape[i] <= 0)
            return attn_fail(ATTN_ERR_SHAPE, "%s: shape[%d] (%s) = %lld must be positive", name, i,
                             dim_names[i], (long long)t->shape[i]);
        if (t->stride[i] < 0)
            return attn_fail(ATTN_ERR_STRIDE, "%s: stride[%d] (%s) = %lld is negative", name, i,
                             dim_names[i], (long long)t->stride[i]);
    }
    attn_status st = view_span(t, name, s);
    if (st != ATTN_OK)
        return st;
    if (t->buffer && s->bytes > t->buffer->size)
        return attn_fail(ATTN_ERR_BUFFER, "%s: view needs %zu bytes, buffer holds %zu", name,
                         s->bytes, t->buffer->size);
    size_t esz = attn_dtype_size(t->dtype);
    uintptr_t base = t->data ? (uintptr_t)t->data + t->offset : t->offset;
    if (base % esz)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "%s: address/offset not aligned to %zu bytes",
                         name, esz);
    return ATTN_OK;
}

/* Sufficient condition for distinct elements: sorted by stride, each stride exceeds the span
 * of the dimensions before it. */
static attn_status check_no_self_overlap(const attn_tensor *t, const char *name)
{
    int idx[4], n = 0;
    for (int i = 0; i < 4; i++)
        if (t->shape[i] > 1)
            idx[n++] = i;
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && t->stride[idx[b]] < t->stride[idx[b - 1]]; b--) {
            int tmp = idx[b];
            idx[b] = idx[b - 1];
            idx[b - 1] = tmp;
        }
    int64_t reach = 0; /* largest offset reachable by the dims so far */
    for (int a = 0; a < n; a++) {
        int64_t st = t->stride[idx[a]];
        if (st <= reach)
            return attn_fail(ATTN_ERR_STRIDE,
                             "%s: strides make output elements overlap (stride[%d] = %lld)", name,
                             idx[a], (long long)st);
        reach += (t->shape[idx[a]] - 1) * st;
    }
    return ATTN_OK;
}

static attn_status expect_dim(const attn_tensor *t, const char *name, int i, int64_t want,
                              const char *what)
{
    if (t->shape[i] != want)
        return attn_fail(ATTN_ERR_SHAPE, "%s: shape[%d] (%s) = %lld, expected %lld (%s)", name, i,
                         dim_names[i], (long long)t->shape[i], (long long)want, what);
    return ATTN_OK;
}

static attn_status expect_dim_or_1(const attn_tensor *t, const char *name, int i, int64_t want,
                                   const char *what)
{
    if (t->shape[i] == 1)
        return ATTN_OK;
    if (t->shape[i] != want)
        return attn_fail(ATTN_ERR_SHAPE, "%s: shape[%d] = %lld, expected %lld (%s) or 1", name, i,
                         (long long)t->shape[i], (long long)want, what);
    return ATTN_OK;
}

/* Two touched byte ranges on the same memory intersect. */
static int overlaps(const attn_tensor *a, const span *sa, const attn_tensor *b, const span *sb)
{
    uintptr_t a0, b0;
    if (a->data && b->data) {
        a0 = (uintptr_t)a->data;
        b0 = (uintptr_t)b->data;
    } else if (a->buffer && a->buffer == b->buffer) {
        a0 = b0 = 0;
    } else {
        return 0;
    }
    uintptr_t a_lo = a0 + a->offset, a_hi = a0 + sa->bytes;
    uintptr_t b_lo = b0 + b->offset, b_hi = b0 + sb->bytes;
    return a_lo < b_hi && b_lo < a_hi;
}

static void fill_operand(attn_operand *o, const attn_tensor *t)
{
    memset(o, 0, sizeof *o);
    if (!t)
        return;
    o->t = t;
    o->dtype = t->dtype;
    if (t->data)
        o->ptr = (char *)t->data + t->offset;
    else if (t->buffer->host)
        o->ptr = (char *)t->buffer->host + t->offset;
    for (int i = 0; i < 4; i++)
        o->stride[i] = t->shape[i] == 1 ? 0 : t->stride[i];
}

static attn_status check_desc(const attn_sdpa_desc *d)
{
    if (d->causal != 0 && d->causal != 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.causal = %d must be 0 or 1", d->causal);
    if (d->align != ATTN_ALIGN_TOP_LEFT && d->align != ATTN_ALIGN_BOTTOM_RIGHT)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.align = %d is not an attn_align",
                         (int)d->align);
    if (!isfinite(d->scale))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.scale = %g must be finite",
                         (double)d->scale);
    if (!(d->softcap >= 0.0f) || isinf(d->softcap))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "desc.softcap = %g must be 0 (none) or a finite positive cap",
                         (double)d->softcap);
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

#define TRY(x)                                                                                   \
    do {                                                                                         \
        attn_status st_ = (x);                                                                   \
        if (st_ != ATTN_OK)                                                                      \
            return st_;                                                                          \
    } while (0)

static attn_status check_shapes(const attn_tensor *q, const attn_tensor *k, const attn_tensor *v,
                                const attn_tensor *out, const attn_tensor *lse)
{
    int64_t B = q->shape[0], Sq = q->shape[1], Hq = q->shape[2], Dk = q->shape[3];
    int64_t Skv = k->shape[1], Hkv = k->shape[2], Dv = v->shape[3];
    TRY(expect_dim(k, "k", 0, B, "batch of q"));
    TRY(expect_dim(k, "k", 3, Dk, "Dk of q"));
    TRY(expect_dim(v, "v", 0, B, "batch of q"));
    TRY(expect_dim(v, "v", 1, Skv, "Skv of k"));
    TRY(expect_dim(v, "v", 2, Hkv, "Hkv of k"));
    TRY(expect_dim(out, "out", 0, B, "batch of q"));
    TRY(expect_dim(out, "out", 1, Sq, "Sq of q"));
    TRY(expect_dim(out, "out", 2, Hq, "Hq of q"));
    TRY(expect_dim(out, "out", 3, Dv, "Dv of v"));
    if (Hq % Hkv != 0)
        return attn_fail(ATTN_ERR_HEADS, "Hq = %lld is not a multiple of Hkv = %lld",
                         (long long)Hq, (long long)Hkv);
    if (lse) {
        TRY(expect_dim(lse, "lse", 0, B, "batch of q"));
        TRY(expect_dim(lse, "lse", 1, Sq, "Sq of q"));
        TRY(expect_dim(lse, "lse", 2, Hq, "Hq of q"));
        TRY(expect_dim(lse, "lse", 3, 1, "one value per row"));
    }
    return ATTN_OK;
}

static attn_status check_mask(const attn_tensor *m, const char *name, const attn_tensor *q,
                              int64_t Skv)
{
    TRY(expect_dim_or_1(m, name, 0, q->shape[0], "batch"));
    TRY(expect_dim_or_1(m, name, 1, q->shape[1], "Sq"));
    TRY(expect_dim_or_1(m, name, 2, q->shape[2], "Hq"));
    return expect_dim(m, name, 3, Skv, "Skv");
}

attn_status attn_sdpa_validate(const attn_sdpa_desc *d, const attn_tensor *q,
                               const attn_tensor *k, const attn_tensor *v,
                               const attn_tensor *out, const attn_tensor *lse,
                               attn_sdpa_problem *p)
{
    const attn_tensor *in[] = {q, k, v};
    const char *const in_names[] = {"q", "k", "v"};
    if (!d || !q || !k || !v || !out || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_sdpa: %s is NULL",
                         !d ? "desc" : !q ? "q" : !k ? "k" : !v ? "v" : !out ? "out" : "problem");
    TRY(check_desc(d));
    span s_in[5], s_out, s_lse;
    for (int i = 0; i < 3; i++)
        TRY(check_view(in[i], in_names[i], FLOATS, &s_in[i]));
    TRY(check_view(out, "out", FLOATS, &s_out));
    if (lse)
        TRY(check_view(lse, "lse", 1u << ATTN_F32, &s_lse));
    if (d->mask_add)
        TRY(check_view(d->mask_add, "mask_add", FLOATS, &s_in[3]));
    if (d->mask_bool)
        TRY(check_view(d->mask_bool, "mask_bool", 1u << ATTN_U8, &s_in[4]));
    TRY(check_shapes(q, k, v, out, lse));
    if (d->mask_add)
        TRY(check_mask(d->mask_add, "mask_add", q, k->shape[1]));
    if (d->mask_bool)
        TRY(check_mask(d->mask_bool, "mask_bool", q, k->shape[1]));
    TRY(check_no_self_overlap(out, "out"));
    if (lse)
        TRY(check_no_self_overlap(lse, "lse"));

    /* Outputs may not share memory with inputs or with each other. */
    const attn_tensor *ins[] = {q, k, v, d->mask_add, d->mask_bool};
    const char *const ins_names[] = {"q", "k", "v", "mask_add", "mask_bool"};
    for (int i = 0; i < 5; i++) {
        if (!ins[i])
            continue;
        if (overlaps(out, &s_out, ins[i], &s_in[i]))
            return attn_fail(ATTN_ERR_ALIAS, "out overlaps input %s", ins_names[i]);
        if (lse && overlaps(lse, &s_lse, ins[i], &s_in[i]))
            return attn_fail(ATTN_ERR_ALIAS, "lse overlaps input %s", ins_names[i]);
    }
    if (lse && overlaps(out, &s_out, lse, &s_lse))
        return attn_fail(ATTN_ERR_ALIAS, "out and lse overlap");

    memset(p, 0, sizeof *p);
    p->B = q->shape[0];
    p->Sq = q->shape[1];
    p->Hq = q->shape[2];
    p->Dk = q->shape[3];
    p->Skv = k->shape[1];
    p->Hkv = k->shape[2];
    p->Dv = v->shape[3];
    p->group = p->Hq / p->Hkv;
    p->scale = d->scale != 0.0f ? (double)d->scale : 1.0 / sqrt((double)p->Dk);
    p->softcap = d->softcap;
    p->causal = d->causal;
    p->q_offset = d->align == ATTN_ALIGN_BOTTOM_RIGHT ? p->Skv - p->Sq : 0;
    p->window_left = d->window_left;
    p->window_right = d->causal ? 0 : d->window_right;
    fill_operand(&p->q, q);
    fill_operand(&p->k, k);
    fill_operand(&p->v, v);
    fill_operand(&p->out, out);
    fill_operand(&p->lse, lse);
    fill_operand(&p->mask_add, d->mask_add);
    fill_operand(&p->mask_bool, d->mask_bool);
    return ATTN_OK;
}
