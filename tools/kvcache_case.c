/* kvcache_case.c - conformance cases of the attention over cache slots: defaults, canonical
 * name (format and the tokens of the grammar), feature groups, cost and descriptor.
 * docs/ops/kvcache.md gives the grammar. */
#include "kvcache_case.h"

#include "attn_cases.h"

#include <stddef.h>
#include <string.h>

#define KV_MAX_HOLES 90     /* percent */
#define KV_LONG_SLOTS 4096

static const char *const pos_names[] = {"stored", "original", "cache", NULL};
static const char *const pairs_names[] = {"half", "interleaved", NULL};
static const char *const order_names[] = {"shuffled", "sorted", NULL};
static const char *const layout_names[] = {"bshd", "bhsd", NULL};
static const char *const dtype_names[] = {"f32", "f16", "bf16", NULL};

const char *const attn_kvcache_feature_names[ATTN_KV_FEAT_COUNT] = {
    "gqa", "mqa", "holes", "shuffled", "stored", "original", "cache", "interleaved", "partial",
    "causal", "lag", "softcap", "f16", "bf16", "bhsd", "key_score", "batch2", "dk!=dv", "long"};

void attn_kvcache_case_default(attn_kvcache_case *c)
{
    memset(c, 0, sizeof *c);
    c->b = c->sq = c->hq = c->hkv = 1;
    c->dk = c->dv = 64;
    c->nslot = 16;
    c->pos = ATTN_KV_POS_STORED;
    c->pairs = ATTN_ROPE_HALF;
    c->theta = 10000.0;
    c->dt_q = c->dt_kv = c->dt_out = ATTN_F32;
}

int64_t attn_kvcache_case_holes(const attn_kvcache_case *c)
{
    return c->nslot * c->holes / 100;
}

int64_t attn_kvcache_case_span(const attn_kvcache_case *c)
{
    return c->span ? c->span : 2 * c->nslot + c->sq + c->lag;
}

int attn_kvcache_case_check(const attn_kvcache_case *c, char *err, size_t errsize)
{
    const int64_t live = c->nslot - attn_kvcache_case_holes(c), span = attn_kvcache_case_span(c);
    if (span < live || span < c->sq + c->lag)
        return attn_perr(err, errsize,
                         "span=%lld must hold the %lld live slots and sq + lag = %lld queries",
                         (long long)span, (long long)live, (long long)(c->sq + c->lag));
    return 0;
}

attn_kvcache_attn_desc attn_kvcache_case_desc(const attn_kvcache_case *c)
{
    attn_kvcache_attn_desc d = attn_kvcache_attn_desc_default();
    d.scale = (float)c->scale;
    d.softcap = (float)c->cap;
    d.positions = c->pos;
    d.rope.layout = c->pairs;
    d.rope.theta = c->theta;
    d.rope.rot_dim = c->rot;
    return d;
}

double attn_kvcache_case_cost(const attn_kvcache_case *c)
{
    const double rows = (double)c->b * (double)c->sq * (double)c->hq;
    const double rot = c->pos == ATTN_KV_POS_STORED
                           ? 0.0
                           : 6.0 * (double)c->b * (double)c->nslot * (double)c->hkv * c->dk;
    return 2.0 * rows * (double)c->nslot * (double)(c->dk + c->dv) + rot;
}

unsigned attn_kvcache_case_features(const attn_kvcache_case *c)
{
    const int rope = c->pos != ATTN_KV_POS_STORED;
    const int on[ATTN_KV_FEAT_COUNT] = {
        [ATTN_KV_FEAT_GQA] = c->hq > c->hkv && c->hkv > 1,
        [ATTN_KV_FEAT_MQA] = c->hq > 1 && c->hkv == 1,
        [ATTN_KV_FEAT_HOLES] = attn_kvcache_case_holes(c) > 0,
        [ATTN_KV_FEAT_SHUFFLED] = !c->sorted,
        [ATTN_KV_FEAT_STORED] = c->pos == ATTN_KV_POS_STORED,
        [ATTN_KV_FEAT_ORIGINAL] = c->pos == ATTN_KV_POS_ORIGINAL,
        [ATTN_KV_FEAT_CACHE] = c->pos == ATTN_KV_POS_CACHE,
        [ATTN_KV_FEAT_INTERLEAVED] = rope && c->pairs == ATTN_ROPE_INTERLEAVED,
        [ATTN_KV_FEAT_PARTIAL] = rope && c->rot != 0 && c->rot != c->dk,
        [ATTN_KV_FEAT_CAUSAL] = c->sq > 1,
        [ATTN_KV_FEAT_LAG] = c->lag > 0,
        [ATTN_KV_FEAT_SOFTCAP] = c->cap > 0,
        [ATTN_KV_FEAT_F16] = c->dt_q == ATTN_F16 || c->dt_kv == ATTN_F16 || c->dt_out == ATTN_F16,
        [ATTN_KV_FEAT_BF16] =
            c->dt_q == ATTN_BF16 || c->dt_kv == ATTN_BF16 || c->dt_out == ATTN_BF16,
        [ATTN_KV_FEAT_BHSD] = c->bhsd,
        [ATTN_KV_FEAT_KEY_SCORE] = c->key_score,
        [ATTN_KV_FEAT_BATCH] = c->b > 1,
        [ATTN_KV_FEAT_DK_DV] = c->dk != c->dv,
        [ATTN_KV_FEAT_LONG] = c->nslot >= KV_LONG_SLOTS,
    };
    unsigned m = 0;
    for (int f = 0; f < ATTN_KV_FEAT_COUNT; f++)
        m |= (unsigned)(on[f] != 0) << f;
    return m;
}

/* ---- canonical name ------------------------------------------------------------------------- */

int attn_kvcache_case_format(const attn_kvcache_case *c, char *buf, size_t size)
{
    attn_sbuf s = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    attn_sb_add(&s, "kvcache b%lld sq%lld hq%lld hkv%lld dk%lld dv%lld nslot%lld",
                (long long)c->b, (long long)c->sq, (long long)c->hq, (long long)c->hkv,
                (long long)c->dk, (long long)c->dv, (long long)c->nslot);
    if (c->holes)
        attn_sb_add(&s, " holes=%lld", (long long)c->holes);
    if (c->span)
        attn_sb_add(&s, " span=%lld", (long long)c->span);
    if (c->lag)
        attn_sb_add(&s, " lag=%lld", (long long)c->lag);
    attn_sb_add(&s, " order=%s pos=%s", order_names[c->sorted], pos_names[c->pos]);
    if (c->pos != ATTN_KV_POS_STORED) {
        attn_sb_add(&s, " pairs=%s", pairs_names[c->pairs]);
        if (c->rot)
            attn_sb_add(&s, " rot=%lld", (long long)c->rot);
        if (c->theta != 10000.0)
            attn_sb_add(&s, " theta=%.17g", c->theta);
    }
    if (c->cap > 0)
        attn_sb_add(&s, " cap=%.9g", c->cap);
    if (c->scale != 0)
        attn_sb_add(&s, " scale=%.9g", c->scale);
    attn_sb_add(&s, " dt=%s:%s:%s layout=%s", dtype_names[c->dt_q], dtype_names[c->dt_kv],
                dtype_names[c->dt_out], layout_names[c->bhsd]);
    if (c->key_score)
        attn_sb_add(&s, " ks");
    return (int)s.len;
}

/* ---- parsing -------------------------------------------------------------------------------- */

/* Size tokens ("nslot40"); d64 sets dk = dv = 64. */
static int parse_size(const char *tok, attn_kvcache_case *c)
{
#define K1(p, f) {p, offsetof(attn_kvcache_case, f), offsetof(attn_kvcache_case, f)}
    static const attn_tok_size_key keys[] = {
        K1("nslot", nslot), K1("sq", sq), K1("hkv", hkv), K1("hq", hq), K1("dk", dk),
        K1("dv", dv), K1("b", b),
        {"d", offsetof(attn_kvcache_case, dk), offsetof(attn_kvcache_case, dv)}};
#undef K1
    return attn_tok_size(tok, keys, sizeof keys / sizeof keys[0], c);
}

/* A choice into an int field: 1, or -1. */
static int choose(const char *v, const char *const *names, int *field)
{
    const int k = attn_tok_choice(v, names);
    if (k < 0)
        return -1;
    *field = k;
    return 1;
}

/* key=value: 1 consumed, 0 unknown key, -1 bad value. */
static int parse_keyval(const char *key, const char *v, attn_kvcache_case *c)
{
    int k = 0;
    if (strcmp(key, "pos") == 0) {
        if (choose(v, pos_names, &k) < 0)
            return -1;
        c->pos = (attn_kv_positions)k;
        return 1;
    }
    if (strcmp(key, "pairs") == 0) {
        if (choose(v, pairs_names, &k) < 0)
            return -1;
        c->pairs = (attn_rope_layout)k;
        return 1;
    }
    if (strcmp(key, "order") == 0)
        return choose(v, order_names, &c->sorted);
    if (strcmp(key, "layout") == 0)
        return choose(v, layout_names, &c->bhsd);
    if (strcmp(key, "dt") == 0)
        return attn_tok_dtypes_qkv(v, dtype_names, &c->dt_q, &c->dt_kv, &c->dt_out) ? -1 : 1;
    if (strcmp(key, "holes") == 0)
        return attn_tok_int(v, 0, KV_MAX_HOLES, &c->holes) ? -1 : 1;
    if (strcmp(key, "span") == 0)
        return attn_tok_int(v, 0, (int64_t)1 << 40, &c->span) ? -1 : 1;
    if (strcmp(key, "lag") == 0)
        return attn_tok_int(v, 0, (int64_t)1 << 40, &c->lag) ? -1 : 1;
    if (strcmp(key, "rot") == 0)
        return attn_tok_int(v, 0, (int64_t)1 << 40, &c->rot) ? -1 : 1;
    if (strcmp(key, "theta") == 0)
        return attn_tok_real(v, 1e-30, 1e30, &c->theta) ? -1 : 1;
    if (strcmp(key, "cap") == 0)
        return attn_tok_factor(v, 0, &c->cap) ? -1 : 1;
    if (strcmp(key, "scale") == 0)
        return attn_tok_factor(v, -1e30, &c->scale) ? -1 : 1;
    return 0;
}

int attn_kvcache_case_token(char *tok, attn_kvcache_case *c, char *err, size_t errsize)
{
    if (strcmp(tok, "ks") == 0) {
        c->key_score = 1;
        return 0;
    }
    char *val = attn_tok_split(tok);
    return attn_tok_verdict(val ? parse_keyval(tok, val, c) : parse_size(tok, c), tok, val, err,
                            errsize);
}
