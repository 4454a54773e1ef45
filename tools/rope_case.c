/* rope_case.c - RoPE conformance cases: defaults, canonical name (format and the tokens of
 * the grammar), feature groups, cost and descriptor. docs/ops/rope.md gives the grammar. */
#include "rope_case.h"

#include "attn_cases.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#define ROPE_DEFAULT_PMAX 4096
#define ROPE_FAR 100000          /* positions from here on are "far" (an f32 angle is off) */
#define ROPE_LONG_ELEMS (1 << 24)

static const char *const pairs_names[] = {"half", "interleaved", NULL};
static const char *const pos_names[] = {"none", "i32", "i64", "i32b", "i64b", NULL};
static const char *const view_names[] = {"bshd", "bhsd", "fused", "dstride", NULL};
static const char *const dtype_names[] = {"f32", "f16", "bf16", NULL};

const char *const attn_rope_feature_names[ATTN_ROPE_FEAT_COUNT] = {
    "half", "interleaved", "partial", "theta", "offset", "far", "pos-i32", "pos-i64",
    "pos-bcast", "f16", "bf16", "bhsd", "fused", "dstride", "batch2", "odd", "long"};

void attn_rope_case_default(attn_rope_case *c)
{
    memset(c, 0, sizeof *c);
    c->b = c->s = c->h = 1;
    c->d = 64;
    c->pairs = ATTN_ROPE_HALF;
    c->theta = 10000.0;
    c->pos = ATTN_ROPE_POS_NONE;
    c->pmax = ROPE_DEFAULT_PMAX;
    c->dt_x = c->dt_out = ATTN_F32;
    c->view = ATTN_ROPE_VIEW_BSHD;
}

attn_rope_desc attn_rope_case_desc(const attn_rope_case *c)
{
    attn_rope_desc d = attn_rope_desc_default();
    d.layout = c->pairs;
    d.theta = c->theta;
    d.rot_dim = c->rot;
    d.offset = c->offset;
    return d;
}

double attn_rope_case_elems(const attn_rope_case *c)
{
    return (double)c->b * (double)c->s * (double)c->h * (double)c->d;
}

/* The largest position of the case (offset + the largest drawn or sequence position). */
static int64_t far_end(const attn_rope_case *c)
{
    const int64_t top = c->pos == ATTN_ROPE_POS_NONE ? c->s - 1 : c->pmax - 1;
    return c->offset < 0 ? -c->offset : c->offset + top;
}

unsigned attn_rope_case_features(const attn_rope_case *c)
{
    const int odd = c->s % 2 || c->h % 2 || c->d % 8;
    const int on[ATTN_ROPE_FEAT_COUNT] = {
        [ATTN_ROPE_FEAT_HALF] = c->pairs == ATTN_ROPE_HALF,
        [ATTN_ROPE_FEAT_INTERLEAVED] = c->pairs == ATTN_ROPE_INTERLEAVED,
        [ATTN_ROPE_FEAT_PARTIAL] = c->rot != 0 && c->rot != c->d,
        [ATTN_ROPE_FEAT_THETA] = c->theta != 10000.0,
        [ATTN_ROPE_FEAT_OFFSET] = c->offset != 0,
        [ATTN_ROPE_FEAT_FAR] = far_end(c) >= ROPE_FAR,
        [ATTN_ROPE_FEAT_POS_I32] = c->pos == ATTN_ROPE_POS_I32 || c->pos == ATTN_ROPE_POS_I32B,
        [ATTN_ROPE_FEAT_POS_I64] = c->pos == ATTN_ROPE_POS_I64 || c->pos == ATTN_ROPE_POS_I64B,
        [ATTN_ROPE_FEAT_POS_BCAST] = c->pos == ATTN_ROPE_POS_I32B || c->pos == ATTN_ROPE_POS_I64B,
        [ATTN_ROPE_FEAT_F16] = c->dt_x == ATTN_F16 || c->dt_out == ATTN_F16,
        [ATTN_ROPE_FEAT_BF16] = c->dt_x == ATTN_BF16 || c->dt_out == ATTN_BF16,
        [ATTN_ROPE_FEAT_BHSD] = c->view == ATTN_ROPE_VIEW_BHSD,
        [ATTN_ROPE_FEAT_FUSED] = c->view == ATTN_ROPE_VIEW_FUSED,
        [ATTN_ROPE_FEAT_DSTRIDE] = c->view == ATTN_ROPE_VIEW_DSTRIDE,
        [ATTN_ROPE_FEAT_BATCH] = c->b > 1,
        [ATTN_ROPE_FEAT_ODD] = odd,
        [ATTN_ROPE_FEAT_LONG] = attn_rope_case_elems(c) >= ROPE_LONG_ELEMS,
    };
    unsigned m = 0;
    for (int f = 0; f < ATTN_ROPE_FEAT_COUNT; f++)
        m |= (unsigned)(on[f] != 0) << f;
    return m;
}

int attn_rope_case_format(const attn_rope_case *c, char *buf, size_t size)
{
    attn_sbuf s = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    attn_sb_add(&s, "rope b%lld s%lld h%lld d%lld pairs=%s", (long long)c->b, (long long)c->s,
                (long long)c->h, (long long)c->d, pairs_names[c->pairs]);
    if (c->rot)
        attn_sb_add(&s, " rot=%lld", (long long)c->rot);
    if (c->theta != 10000.0)
        attn_sb_add(&s, " theta=%.17g", c->theta);
    if (c->offset)
        attn_sb_add(&s, " offset=%lld", (long long)c->offset);
    if (c->pos != ATTN_ROPE_POS_NONE)
        attn_sb_add(&s, " pos=%s", pos_names[c->pos]);
    if (c->pos != ATTN_ROPE_POS_NONE && c->pmax != ROPE_DEFAULT_PMAX)
        attn_sb_add(&s, " pmax=%lld", (long long)c->pmax);
    attn_sb_add(&s, " dt=%s:%s view=%s", dtype_names[c->dt_x], dtype_names[c->dt_out],
                view_names[c->view]);
    return (int)s.len;
}

/* dt=X:OUT, or one dtype for both. */
static int parse_dt(const char *v, attn_rope_case *c)
{
    int dt[2];
    const int k = attn_tok_dtypes(v, dtype_names, 2, dt);
    if (k < 1)
        return -1;
    c->dt_x = (attn_dtype)dt[0];
    c->dt_out = (attn_dtype)dt[k - 1];
    return 0;
}

/* key=value: 1 consumed, 0 unknown key, -1 bad value. */
static int parse_keyval(const char *key, const char *v, attn_rope_case *c)
{
    int k;
    if (strcmp(key, "pairs") == 0)
        return (k = attn_tok_choice(v, pairs_names)) < 0 ? -1 : (c->pairs = k, 1);
    if (strcmp(key, "pos") == 0)
        return (k = attn_tok_choice(v, pos_names)) < 0 ? -1 : (c->pos = k, 1);
    if (strcmp(key, "view") == 0)
        return (k = attn_tok_choice(v, view_names)) < 0 ? -1 : (c->view = k, 1);
    if (strcmp(key, "dt") == 0)
        return parse_dt(v, c) ? -1 : 1;
    if (strcmp(key, "rot") == 0)
        return attn_tok_int(v, 0, (int64_t)1 << 40, &c->rot) ? -1 : 1;
    if (strcmp(key, "offset") == 0)
        return attn_tok_int(v, -((int64_t)1 << 40), (int64_t)1 << 40, &c->offset) ? -1 : 1;
    if (strcmp(key, "pmax") == 0)
        return attn_tok_int(v, 1, (int64_t)1 << 40, &c->pmax) ? -1 : 1;
    if (strcmp(key, "theta") == 0)
        return attn_tok_real(v, 1e-30, 1e30, &c->theta) ? -1 : 1;
    return 0;
}

/* Sizes: one letter and digits ("s17"). */
static int parse_size(const char *tok, attn_rope_case *c)
{
#define K1(p, f) {p, offsetof(attn_rope_case, f), offsetof(attn_rope_case, f)}
    static const attn_tok_size_key keys[] = {K1("b", b), K1("s", s), K1("h", h), K1("d", d)};
#undef K1
    return attn_tok_size(tok, keys, sizeof keys / sizeof keys[0], c);
}

int attn_rope_case_token(char *tok, attn_rope_case *c, char *err, size_t errsize)
{
    char *val = attn_tok_split(tok);
    return attn_tok_verdict(val ? parse_keyval(tok, val, c) : parse_size(tok, c), tok, val, err,
                            errsize);
}
