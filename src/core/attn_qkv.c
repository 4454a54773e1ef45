/* attn_qkv.c - the shape rules of q, k, v and out (attn_qkv.h). */
#include "attn_qkv.h"

#include "attn_backend_impl.h"

static attn_status dim_is(const attn_tensor *t, const char *name, int i, int64_t want,
                          const char *what)
{
    return attn_view_expect_dim(t, name, attn_dims_bshd, i, want, what);
}

const char *const attn_qkv_names[4] = {"q", "k", "v", "out"};

/* Batch or Sq of q and out may be 0 (nothing to compute). */
#define ZERO_BATCH_SEQ 3u

attn_status attn_qkv_check(const attn_tensor *const t[4], unsigned kv_zero_ok,
                           const char *self_seq, attn_span s[4])
{
    for (int i = 0; i < 4; i++)
        ATTN_TRY(attn_view_check(t[i], attn_qkv_names[i], ATTN_DTYPES_FLOAT, attn_dims_bshd,
                                 i == 1 || i == 2 ? kv_zero_ok : ZERO_BATCH_SEQ, &s[i]));
    const attn_tensor *q = t[0], *k = t[1], *v = t[2], *out = t[3];
    const int64_t B = q->shape[0], Sq = q->shape[1], Hq = q->shape[2], Dk = q->shape[3];
    const int64_t Skv = k->shape[1], Hkv = k->shape[2];
    ATTN_TRY(dim_is(k, "k", 0, B, "batch of q"));
    if (self_seq)
        ATTN_TRY(dim_is(k, "k", 1, Sq, self_seq));
    ATTN_TRY(dim_is(k, "k", 3, Dk, "Dk of q"));
    ATTN_TRY(dim_is(v, "v", 0, B, "batch of q"));
    ATTN_TRY(dim_is(v, "v", 1, Skv, self_seq ? "seq of q" : "Skv of k"));
    ATTN_TRY(dim_is(v, "v", 2, Hkv, "Hkv of k"));
    ATTN_TRY(dim_is(out, "out", 0, B, "batch of q"));
    ATTN_TRY(dim_is(out, "out", 1, Sq, self_seq ? "seq of q" : "Sq of q"));
    ATTN_TRY(dim_is(out, "out", 2, Hq, "Hq of q"));
    ATTN_TRY(dim_is(out, "out", 3, v->shape[3], "Dv of v"));
    if (Hq % Hkv != 0)
        return attn_fail(ATTN_ERR_HEADS, "Hq = %lld is not a multiple of Hkv = %lld",
                         (long long)Hq, (long long)Hkv);
    return ATTN_OK;
}

attn_status attn_qkv_check_self(const attn_tensor *const *t, const int at[4], attn_span *s)
{
    const attn_tensor *const qkv[4] = {t[at[0]], t[at[1]], t[at[2]], t[at[3]]};
    attn_span s_qkv[4];
    ATTN_TRY(attn_qkv_check(qkv, ZERO_BATCH_SEQ, "seq of q: queries and keys are the same tokens",
                            s_qkv));
    for (int i = 0; i < 4; i++)
        s[at[i]] = s_qkv[i];
    return ATTN_OK;
}

attn_status attn_qkv_check_dout(const attn_tensor *dout, const attn_tensor *q,
                                const attn_tensor *v)
{
    if (!dout || !q || !v)
        return ATTN_OK; /* the op's own checks name the missing one */
    static const char *const what[4] = {"batch of q", "seq of q", "Hq of q", "Dv of v"};
    const int64_t want[4] = {q->shape[0], q->shape[1], q->shape[2], v->shape[3]};
    for (int i = 0; i < 4; i++)
        ATTN_TRY(attn_view_expect_dim(dout, "dout", attn_dims_bshd, i, want[i], what[i]));
    return ATTN_OK;
}
