/* attn_view.c - op-neutral checks of tensor views (attn_view.h): bounds, dtypes, strides,
 * overlaps and expected dims, shared by the validation of every op. */
#include "attn_view.h"

#include "attn_backend_impl.h"

#include <string.h>

attn_dim_names attn_dims_bshd = {"batch", "seq", "heads", "dim"};
attn_dim_names attn_dims_mask = {"batch", "query", "head", "key"};

int attn_view_empty(const attn_tensor *t)
{
    return t->shape[0] == 0 || t->shape[1] == 0 || t->shape[2] == 0 || t->shape[3] == 0;
}

/* Byte span of a view relative to its base; fails on overflow. */
static attn_status view_span(const attn_tensor *t, const char *name, attn_span *s)
{
    int64_t max_off = 0, count = 1;
    if (attn_view_empty(t)) {
        s->elems_max = -1;
        s->bytes = t->offset; /* touches nothing */
        return ATTN_OK;
    }
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
    return (unsigned)t <= ATTN_I64 && (allowed_mask >> (unsigned)t) & 1u;
}

attn_status attn_view_check(const attn_tensor *t, const char *name, unsigned dtypes,
                            attn_dim_names dims, unsigned zero_ok, attn_span *s)
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
        if (t->shape[i] < 0 || (t->shape[i] == 0 && !(zero_ok >> i & 1u)))
            return attn_fail(ATTN_ERR_SHAPE, "%s: shape[%d] (%s) = %lld must be %s", name, i,
                             dims[i], (long long)t->shape[i],
                             zero_ok >> i & 1u ? "0 or more" : "positive");
        if (t->stride[i] < 0)
            return attn_fail(ATTN_ERR_STRIDE, "%s: stride[%d] (%s) = %lld is negative", name, i,
                             dims[i], (long long)t->stride[i]);
    }
    ATTN_TRY(view_span(t, name, s));
    /* A host view must be addressable: data + offset + extent may not wrap (computing the
     * element pointer would overflow, and overlap checks would compare wrapped ranges). */
    if (t->data && s->bytes > UINTPTR_MAX - (uintptr_t)t->data)
        return attn_fail(ATTN_ERR_OVERFLOW,
                         "%s: data + offset + extent (%zu bytes) wraps around the address space",
                         name, s->bytes);
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
attn_status attn_view_check_distinct(const attn_tensor *t, const char *name)
{
    int idx[4], n = 0;
    if (attn_view_empty(t))
        return ATTN_OK; /* no element to share memory */
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

attn_status attn_view_expect_dim(const attn_tensor *t, const char *name, attn_dim_names dims,
                                 int i, int64_t want, const char *what)
{
    if (t->shape[i] != want)
        return attn_fail(ATTN_ERR_SHAPE, "%s: shape[%d] (%s) = %lld, expected %lld (%s)", name, i,
                         dims[i], (long long)t->shape[i], (long long)want, what);
    return ATTN_OK;
}

attn_status attn_view_check_state(const attn_tensor *t, const char *name, int64_t B,
                                  int64_t Hkv, int64_t Df, const char *df_what, int64_t cols,
                                  const char *cols_what, attn_span *s)
{
    static attn_dim_names dims = {"batch", "kv_head", "feature", "value"};
    ATTN_TRY(attn_view_check(t, name, ATTN_DTYPES_F32, dims, 1u /* batch may be 0 */, s));
    ATTN_TRY(attn_view_expect_dim(t, name, dims, 0, B, "batch of q"));
    ATTN_TRY(attn_view_expect_dim(t, name, dims, 1, Hkv, "Hkv of k: one state per KV head"));
    ATTN_TRY(attn_view_expect_dim(t, name, dims, 2, Df, df_what));
    return attn_view_expect_dim(t, name, dims, 3, cols, cols_what);
}

attn_status attn_view_expect_dim_or_1(const attn_tensor *t, const char *name,
                                      attn_dim_names dims, int i, int64_t want,
                                      const char *what)
{
    if (t->shape[i] == 1)
        return ATTN_OK;
    if (t->shape[i] != want)
        return attn_fail(ATTN_ERR_SHAPE, "%s: shape[%d] (%s) = %lld, expected %lld (%s) or 1",
                         name, i, dims[i], (long long)t->shape[i], (long long)want, what);
    return ATTN_OK;
}

/* Two views of the same dtype, shape and strides, b shifted by delta elements from a, are
 * disjoint when some stride P has every larger stride a multiple of it and the smaller dims
 * fill less than P (each element's offset mod P lies in [0, E)), and the shift keeps those
 * windows apart: q, k and v interleaved in one [tokens, 3d] projection are the usual case. */
static int interleaved_disjoint(const attn_tensor *a, const attn_tensor *b, int64_t delta_bytes)
{
    const int64_t es = (int64_t)attn_dtype_size(a->dtype);
    if (a->dtype != b->dtype || es == 0 || delta_bytes % es != 0)
        return 0;
    for (int i = 0; i < 4; i++)
        if (a->shape[i] != b->shape[i] || (a->shape[i] > 1 && a->stride[i] != b->stride[i]))
            return 0;
    const int64_t delta = delta_bytes / es;
    for (int p = 0; p < 4; p++) {
        const int64_t P = a->stride[p];
        if (a->shape[p] < 2 || P < 1)
            continue;
        int64_t E = 1;
        int ok = 1;
        for (int i = 0; i < 4 && ok; i++) {
            if (i == p || a->shape[i] < 2)
                continue;
            if (a->stride[i] < P)
                E += (a->shape[i] - 1) * a->stride[i];
            else
                ok = a->stride[i] % P == 0;
        }
        const int64_t r = ((delta % P) + P) % P;
        if (ok && E <= P && r >= E && r + E <= P)
            return 1;
    }
    return 0;
}

int attn_view_overlaps(const attn_tensor *a, const attn_span *sa, const attn_tensor *b,
                       const attn_span *sb)
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
    if (!(a_lo < b_hi && b_lo < a_hi))
        return 0;
    return !interleaved_disjoint(a, b, (int64_t)(b_lo - a_lo));
}

void attn_operand_fill(attn_operand *o, const attn_tensor *t)
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

attn_status attn_view_check_outputs(const attn_tensor *const *t, const attn_span *s,
                                    const char *const *names, int n_in, int n)
{
    for (int o = n_in; o < n; o++) {
        if (!t[o])
            continue;
        ATTN_TRY(attn_view_check_distinct(t[o], names[o]));
        for (int i = 0; i < o; i++)
            if (t[i] && attn_view_overlaps(t[o], &s[o], t[i], &s[i]))
                return attn_fail(ATTN_ERR_ALIAS, "%s overlaps %s %s", names[o],
                                 i < n_in ? "input" : "output", names[i]);
    }
    return ATTN_OK;
}
