/* rattention_case.c - RATTENTION conformance cases: defaults, descriptor, cost, feature groups
 * and the canonical name (format and the tokens of the grammar). docs/conformance.md,
 * "RATTENTION", gives the grammar. */
#include "rattention_case.h"

#include "attn_cases.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIZE ((int64_t)1 << 40)

static const char *const map_names[] = {"softmax_pair", "relu_pair", NULL};
static const attn_linear_feature map_values[] = {ATTN_LINEAR_SOFTMAX_PAIR, ATTN_LINEAR_RELU_PAIR};
static const char *const rope_names[] = {"half", "interleaved", NULL};
static const char *const state_names[] = {"none", "in", "out", "inout", NULL};
static const char *const dtype_names[] = {"f32", "f16", "bf16", NULL};

void attn_rattention_case_default(attn_rattention_case *c)
{
    const attn_rattention_desc d = attn_rattention_desc_default();
    memset(c, 0, sizeof *c);
    c->b = c->s = c->hq = c->hkv = 1;
    c->dk = c->dv = 64;
    c->window = d.window;
    c->offset = d.offset;
    c->decode = -1;
    c->step = 1;
    c->theta = d.rope_theta;
    c->feature = d.feature;
    c->rope = d.rope;
    c->dt_q = c->dt_kv = c->dt_out = ATTN_F32;
    c->fill = ATTN_FILL_UNIFORM;
}

attn_rattention_desc attn_rattention_case_desc(const attn_rattention_case *c)
{
    attn_rattention_desc d = attn_rattention_desc_default();
    d.window = c->window;
    d.feature = c->feature;
    d.rope = c->rope;
    d.rope_theta = c->theta;
    d.offset = c->offset;
    d.scale = (float)c->scale;
    d.eps = (float)c->eps;
    return d;
}

/* Per row and query head: the window's logits and weighted sum, the state read; per row and
 * KV head: the fold. */
double attn_rattention_case_cost(const attn_rattention_case *c)
{
    const double df = 2.0 * (double)c->dk, dv = (double)c->dv, s = (double)c->s;
    const double keys = c->window < 0 ? 0.0 : (double)(c->window + 1 < c->s ? c->window + 1 : c->s);
    const double per_row = (double)c->hq * (keys * (double)(c->dk + c->dv) + df * dv) +
                           (double)c->hkv * df * dv;
    /* backward: the f64 chain rule with its magnitudes, the forward's branches */
    return 2.0 * (double)c->b * s * per_row * (c->backward ? 8.0 : 1.0);
}

const char *const attn_rattention_feature_names[ATTN_RATT_FEAT_COUNT] = {
    "no-swa", "w0",      "w>=s",   "relu-pair", "half-rope", "theta",  "offset",
    "scale",  "eps",     "gamma",  "state-in",  "state-out", "gqa",    "dk!=dv",
    "f16",    "bf16",    "bhsd",   "stress",    "batch2",    "ragged", "decode",
    "prefill", "decode-chunk", "long", "nonfinite", "backward"};

static int has_dtype(const attn_rattention_case *c, attn_dtype t)
{
    return c->dt_q == t || c->dt_kv == t || c->dt_out == t;
}

unsigned attn_rattention_case_features(const attn_rattention_case *c)
{
    const attn_rattention_desc d = attn_rattention_desc_default();
    const int dec = c->decode >= 0;
    const struct { int on; attn_ratt_feature f; } t[] = {
        {c->window < 0, ATTN_RATT_FEAT_NO_SWA},
        {c->window == 0, ATTN_RATT_FEAT_W0},
        {c->window >= c->s, ATTN_RATT_FEAT_W_GE_S},
        {c->feature == ATTN_LINEAR_RELU_PAIR, ATTN_RATT_FEAT_RELU_PAIR},
        {c->rope == ATTN_ROPE_HALF, ATTN_RATT_FEAT_HALF_ROPE},
        {c->theta != d.rope_theta, ATTN_RATT_FEAT_THETA},
        {c->offset != 0, ATTN_RATT_FEAT_OFFSET},
        {c->scale != 0, ATTN_RATT_FEAT_SCALE},
        {c->eps != 0, ATTN_RATT_FEAT_EPS},
        {c->gamma, ATTN_RATT_FEAT_GAMMA},
        {(c->state & ATTN_LINEAR_STATE_IN) != 0, ATTN_RATT_FEAT_STATE_IN},
        {(c->state & ATTN_LINEAR_STATE_OUT) != 0 || dec, ATTN_RATT_FEAT_STATE_OUT},
        {c->hq != c->hkv, ATTN_RATT_FEAT_GQA},
        {c->dk != c->dv, ATTN_RATT_FEAT_DK_DV},
        {has_dtype(c, ATTN_F16), ATTN_RATT_FEAT_F16},
        {has_dtype(c, ATTN_BF16), ATTN_RATT_FEAT_BF16},
        {c->bhsd, ATTN_RATT_FEAT_BHSD},
        {c->fill == ATTN_FILL_STRESS, ATTN_RATT_FEAT_STRESS},
        {c->b > 1, ATTN_RATT_FEAT_BATCH},
        {c->s % 32 != 0, ATTN_RATT_FEAT_RAGGED},
        {dec, ATTN_RATT_FEAT_DECODE},
        {dec && c->decode > 0, ATTN_RATT_FEAT_PREFILL},
        {dec && c->step > 1, ATTN_RATT_FEAT_DECODE_CHUNK},
        {c->s >= 2048, ATTN_RATT_FEAT_LONG},
        {c->special != ATTN_LSPECIAL_NONE, ATTN_RATT_FEAT_NONFINITE},
        {c->backward, ATTN_RATT_FEAT_BACKWARD},
    };
    unsigned m = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].on)
            m |= 1u << t[i].f;
    return m;
}

/* ---- canonical name ------------------------------------------------------------------------- */

static int map_index(attn_linear_feature f)
{
    return f == ATTN_LINEAR_RELU_PAIR;
}

int attn_rattention_case_format(const attn_rattention_case *c, char *buf, size_t size)
{
    attn_sbuf s = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    attn_sb_add(&s, "rattention b%lld s%lld hq%lld hkv%lld dk%lld dv%lld w=%lld feature=%s rope=%s",
                (long long)c->b, (long long)c->s, (long long)c->hq, (long long)c->hkv,
                (long long)c->dk, (long long)c->dv, (long long)c->window,
                map_names[map_index(c->feature)], rope_names[c->rope]);
    if (c->theta != attn_rattention_desc_default().rope_theta)
        attn_sb_add(&s, " theta=%.9g", c->theta);
    if (c->offset != 0)
        attn_sb_add(&s, " offset=%lld", (long long)c->offset);
    if (c->scale != 0)
        attn_sb_add(&s, " scale=%.9g", c->scale);
    if (c->eps != 0)
        attn_sb_add(&s, " eps=%.9g", c->eps);
    if (c->gamma)
        attn_sb_add(&s, " gamma");
    if (c->state)
        attn_sb_add(&s, " state=%s", state_names[c->state]);
    if (c->decode >= 0)
        attn_sb_add(&s, " decode=%lld", (long long)c->decode);
    if (c->step != 1)
        attn_sb_add(&s, " step=%lld", (long long)c->step);
    attn_sb_add(&s, " dt=%s:%s:%s layout=%s", dtype_names[c->dt_q], dtype_names[c->dt_kv],
                dtype_names[c->dt_out], c->bhsd ? "bhsd" : "bshd");
    if (c->fill == ATTN_FILL_STRESS)
        attn_sb_add(&s, " fill=stress");
    if (c->special != ATTN_LSPECIAL_NONE)
        attn_sb_add(&s, " special=%s", attn_linear_special_names[c->special]);
    if (c->backward)
        attn_sb_add(&s, " backward");
    return (int)s.len;
}

/* ---- parsing -------------------------------------------------------------------------------- */

/* Size tokens ("hkv2"); h and d set both head counts or both head dims. */
static int parse_size(const char *tok, attn_rattention_case *c)
{
#define K2(p, f, g) {p, offsetof(attn_rattention_case, f), offsetof(attn_rattention_case, g)}
    static const attn_tok_size_key keys[] = {
        K2("hkv", hkv, hkv), K2("hq", hq, hq), K2("h", hq, hkv), K2("dk", dk, dk),
        K2("dv", dv, dv),    K2("d", dk, dv),  K2("b", b, b),    K2("s", s, s)};
#undef K2
    return attn_tok_size(tok, keys, sizeof keys / sizeof keys[0], c);
}

/* theta > 0, kept as the double its %.9g spelling reads back as (the canonical form). */
static int parse_theta(const char *val, double *out)
{
    double v;
    char buf[40];
    if (attn_tok_real(val, 1e-30, 1e30, &v))
        return -1;
    snprintf(buf, sizeof buf, "%.9g", v);
    *out = strtod(buf, NULL);
    return 0;
}

static int choice(const char *val, const char *const *names, int *out)
{
    const int v = attn_tok_choice(val, names);
    if (v < 0)
        return -1;
    *out = v;
    return 1;
}

static int parse_int(const char *val, int64_t lo, int64_t hi, int64_t *out)
{
    return attn_tok_int(val, lo, hi, out) ? -1 : 1;
}

/* key=value tokens: 1 consumed, 0 unknown key, -1 bad value. */
static int parse_keyval(const char *key, const char *val, attn_rattention_case *c)
{
    int v = 0, r = 0;
    if (strcmp(key, "w") == 0)
        r = parse_int(val, -1, MAX_SIZE, &c->window);
    else if (strcmp(key, "offset") == 0)
        r = parse_int(val, -MAX_SIZE, MAX_SIZE, &c->offset);
    else if (strcmp(key, "decode") == 0)
        r = parse_int(val, 0, MAX_SIZE, &c->decode);
    else if (strcmp(key, "step") == 0)
        r = parse_int(val, 1, MAX_SIZE, &c->step);
    else if (strcmp(key, "theta") == 0)
        r = parse_theta(val, &c->theta) ? -1 : 1;
    else if (strcmp(key, "scale") == 0)
        r = attn_tok_factor(val, -1e30, &c->scale) ? -1 : 1;
    else if (strcmp(key, "eps") == 0)
        r = attn_tok_factor(val, 0.0, &c->eps) ? -1 : 1;
    else if (strcmp(key, "feature") == 0 && (r = choice(val, map_names, &v)) == 1)
        c->feature = map_values[v];
    else if (strcmp(key, "rope") == 0 && (r = choice(val, rope_names, &v)) == 1)
        c->rope = v ? ATTN_ROPE_INTERLEAVED : ATTN_ROPE_HALF;
    else if (strcmp(key, "state") == 0 && (r = choice(val, state_names, &v)) == 1)
        c->state = v;
    else if (strcmp(key, "layout") == 0 &&
             (r = choice(val, (const char *const[]){"bshd", "bhsd", NULL}, &v)) == 1)
        c->bhsd = v;
    else if (strcmp(key, "fill") == 0 &&
             (r = choice(val, (const char *const[]){"uniform", "stress", NULL}, &v)) == 1)
        c->fill = (attn_fill_mode)v;
    else if (strcmp(key, "special") == 0 &&
             (r = choice(val, attn_linear_special_names, &v)) == 1)
        c->special = (attn_linear_special)v;
    else if (strcmp(key, "dt") == 0)
        r = attn_tok_dtypes_qkv(val, dtype_names, &c->dt_q, &c->dt_kv, &c->dt_out) ? -1 : 1;
    return r;
}

int attn_rattention_case_token(char *tok, attn_rattention_case *c, char *err, size_t errsize)
{
    int *const flag = strcmp(tok, "gamma") == 0      ? &c->gamma
                      : strcmp(tok, "backward") == 0 ? &c->backward
                                                     : NULL;
    if (flag) {
        *flag = 1;
        return 0;
    }
    char *val = attn_tok_split(tok);
    return attn_tok_verdict(val ? parse_keyval(tok, val, c) : parse_size(tok, c), tok, val, err,
                            errsize);
}

int attn_rattention_case_check(const attn_rattention_case *c, char *err, size_t errsize)
{
    if (c->decode < 0 && c->step != 1)
        return attn_perr(err, errsize, "step=%lld needs decode=N", (long long)c->step);
    if (c->decode > c->s)
        return attn_perr(err, errsize, "decode=%lld: the prefill is longer than s%lld",
                         (long long)c->decode, (long long)c->s);
    if (c->decode >= 0 && (c->state & ATTN_LINEAR_STATE_OUT))
        return attn_perr(err, errsize, "decode cases check the cache's state; state=%s names "
                         "a forward's state_out", state_names[c->state]);
    if (c->backward && (c->decode >= 0 || c->special != ATTN_LSPECIAL_NONE))
        return attn_perr(err, errsize, "backward cases are forward cases without special "
                         "inputs (no decode=, no special=)");
    return 0;
}
