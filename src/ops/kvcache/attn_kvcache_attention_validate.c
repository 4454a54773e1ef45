/* attn_kvcache_attention_validate.c - validation of an attention over cache slots
 * (attn_kvcache_attention) and its normalisation into an attn_kvcache_problem (view checks
 * from the core's attn_view.c and attn_qkv.c). The only place the call's user input is
 * checked: every backend trusts its result. */
#include "attn_backend_impl.h"
#include "attn_desc.h"
#include "attn_kvcache_problem.h"
#include "attn_qkv.h"

#include <math.h>
#include <string.h>

/* q, out and q_pos may have a zero batch or Sq; k, v and slot_pos a zero batch only (a call
 * attends over at least one slot). */
#define ZERO_BATCH 1u
#define ZERO_BATCH_SEQ 3u

#define I64_ONLY (1u << ATTN_I64)

/* The rope fields: a valid layout and theta always (the defaults are); offset and positions
 * belong to the op (0 and NULL); rot_dim against Dk only when keys are rotated. */
static attn_status check_rope(const attn_rope_desc *r)
{
    ATTN_TRY(ATTN_DESC_RESERVED(r, "attn_rope_desc_default (desc.rope)"));
    ATTN_TRY(attn_desc_enum("rope.layout", (int)r->layout, ATTN_ROPE_INTERLEAVED,
                            "attn_rope_layout"));
    if (!isfinite(r->theta) || !(r->theta > 0.0))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.rope.theta = %g must be finite and > 0",
                         r->theta);
    if (r->offset != 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "desc.rope.offset = %lld must be 0: positions come from q_pos and "
                         "slot_pos", (long long)r->offset);
    if (r->positions)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "desc.rope.positions must be NULL: positions come from q_pos and "
                         "slot_pos");
    return ATTN_OK;
}

static attn_status check_desc(const attn_kvcache_attn_desc *d)
{
    ATTN_TRY(ATTN_DESC_RESERVED(d, "attn_kvcache_attn_desc_default"));
    ATTN_TRY(attn_desc_scale_softcap(d->scale, d->softcap));
    ATTN_TRY(attn_desc_enum("positions", (int)d->positions, ATTN_KV_POS_CACHE,
                            "attn_kv_positions"));
    return check_rope(&d->rope);
}

/* rot_dim 0 means Dk; else an even count of features 2 .. Dk. */
static attn_status resolve_rot(const attn_rope_desc *r, int64_t Dk, int64_t *rot)
{
    *rot = r->rot_dim == 0 ? Dk : r->rot_dim;
    if (r->rot_dim == 0 && Dk % 2)
        return attn_fail(ATTN_ERR_SHAPE,
                         "q: Dk = %lld is odd: rotating every feature needs an even head dim "
                         "(or set desc.rope.rot_dim)", (long long)Dk);
    if (*rot < 2 || *rot > Dk || *rot % 2)
        return attn_fail(ATTN_ERR_SHAPE, "desc.rope.rot_dim = %lld must be even and in 2 .. Dk = "
                         "%lld", (long long)r->rot_dim, (long long)Dk);
    return ATTN_OK;
}

/* A position tensor: i64 in host memory of shape [B, S, H, 1] (what[] names the source of
 * each size in messages). */
static attn_status check_pos_view(const attn_tensor *t, const char *name, unsigned zero_ok,
                                  const int64_t want[3], const char *const what[3],
                                  attn_span *s)
{
    ATTN_TRY(attn_view_check(t, name, I64_ONLY, attn_dims_bshd, zero_ok, s));
    for (int i = 0; i < 3; i++)
        ATTN_TRY(attn_view_expect_dim(t, name, attn_dims_bshd, i, want[i], what[i]));
    ATTN_TRY(attn_view_expect_dim(t, name, attn_dims_bshd, 3, 1, "one position"));
    attn_operand o;
    attn_operand_fill(&o, t);
    if (!o.ptr)
        return attn_fail(ATTN_ERR_BUFFER,
                         "%s must be host memory (data, or a buffer of a host backend): "
                         "positions are small metadata read on the host", name);
    return ATTN_OK;
}

/* Every q_pos in 0 .. 2^40, every slot_pos -1 (empty) or in 0 .. 2^40. */
static attn_status check_pos_values(const attn_kvcache_problem *p)
{
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++) {
            const int64_t x = attn_kv_qpos(p, b, i);
            if (x < 0 || x > ATTN_KV_POS_MAX)
                return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                                 "q_pos[%lld, %lld] = %lld must be in 0 .. 2^40", (long long)b,
                                 (long long)i, (long long)x);
        }
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t j = 0; j < p->Nslot; j++)
            for (int64_t g = 0; g < p->Hkv; g++) {
                const int64_t x = attn_kv_slot_pos(p, b, j, g);
                if (x < -1 || x > ATTN_KV_POS_MAX)
                    return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                                     "slot_pos[%lld, %lld, %lld] = %lld must be -1 (empty) or "
                                     "in 0 .. 2^40", (long long)b, (long long)j, (long long)g,
                                     (long long)x);
            }
    return ATTN_OK;
}

/* key_score: f32 [B, Nslot, Hkv, 1], one value per slot of each KV head. */
static attn_status check_key_score(const attn_tensor *ks, const attn_tensor *k, attn_span *s)
{
    ATTN_TRY(attn_view_check(ks, "key_score", ATTN_DTYPES_F32, attn_dims_bshd, ZERO_BATCH, s));
    static const char *const what[4] = {"batch of k", "Nslot of k", "Hkv of k",
                                        "one value per slot"};
    for (int i = 0; i < 4; i++)
        ATTN_TRY(attn_view_expect_dim(ks, "key_score", attn_dims_bshd, i,
                                      i < 3 ? k->shape[i] : 1, what[i]));
    return ATTN_OK;
}

attn_status attn_kvcache_attn_validate(const attn_kvcache_attn_desc *d, const attn_tensor *q,
                                       const attn_tensor *q_pos, const attn_tensor *k,
                                       const attn_tensor *v, const attn_tensor *slot_pos,
                                       const attn_tensor *out, const attn_tensor *key_score,
                                       attn_kvcache_problem *p)
{
    if (!d || !q || !q_pos || !k || !v || !slot_pos || !out || !p)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_kvcache_attention: %s is NULL",
                         !d ? "desc" : !q ? "q" : !q_pos ? "q_pos" : !k ? "k" : !v ? "v"
                         : !slot_pos ? "slot_pos" : !out ? "out" : "problem");
    ATTN_TRY(check_desc(d));
    /* Inputs q, q_pos, k, v, slot_pos, then the outputs out and key_score. */
    const attn_tensor *const t[7] = {q, q_pos, k, v, slot_pos, out, key_score};
    static const char *const names[7] = {"q", "q_pos", "k", "v", "slot_pos", "out",
                                         "key_score"};
    attn_span s[7], s_qkv[4];
    ATTN_TRY(attn_qkv_check((const attn_tensor *const[4]){q, k, v, out}, ZERO_BATCH, NULL,
                            s_qkv));
    s[0] = s_qkv[0];
    s[2] = s_qkv[1];
    s[3] = s_qkv[2];
    s[5] = s_qkv[3];
    ATTN_TRY(check_pos_view(q_pos, "q_pos", ZERO_BATCH_SEQ,
                            (const int64_t[3]){q->shape[0], q->shape[1], 1},
                            (const char *const[3]){"batch of q", "Sq of q", "one per query"},
                            &s[1]));
    ATTN_TRY(check_pos_view(slot_pos, "slot_pos", ZERO_BATCH,
                            (const int64_t[3]){k->shape[0], k->shape[1], k->shape[2]},
                            (const char *const[3]){"batch of k", "Nslot of k", "Hkv of k"},
                            &s[4]));
    if (key_score)
        ATTN_TRY(check_key_score(key_score, k, &s[6]));
    int64_t rot = 0;
    if (d->positions != ATTN_KV_POS_STORED)
        ATTN_TRY(resolve_rot(&d->rope, q->shape[3], &rot));
    /* Outputs may not share memory with inputs or with each other. */
    ATTN_TRY(attn_view_check_outputs(t, s, names, 5, 7));

    attn_kvcache_problem r;
    memset(&r, 0, sizeof r);
    ATTN_QKV_SIZES(&r, q, k, v);
    r.Sq = q->shape[1];
    r.Nslot = k->shape[1];
    r.scale = d->scale != 0.0f ? (double)d->scale : 1.0 / sqrt((double)r.Dk);
    r.softcap = d->softcap;
    r.positions = d->positions;
    r.rope_layout = d->rope.layout;
    r.rope_theta = d->rope.theta;
    r.rot = rot;
    attn_operand_fill(&r.q, q);
    attn_operand_fill(&r.q_pos, q_pos);
    attn_operand_fill(&r.k, k);
    attn_operand_fill(&r.v, v);
    attn_operand_fill(&r.slot_pos, slot_pos);
    attn_operand_fill(&r.out, out);
    attn_operand_fill(&r.key_score, key_score);
    ATTN_TRY(check_pos_values(&r));
    *p = r;
    return ATTN_OK;
}
