/* transnormer_case.c - TransNormer conformance cases: defaults, descriptor, cost, feature
 * groups and the canonical name (format and the tokens of the grammar). */
#include "transnormer_case.h"

#include "attn_cases.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

void attn_transnormer_case_default(attn_transnormer_case *c)
{
    memset(c, 0, sizeof *c);
    c->b = c->s = c->hq = c->hkv = 1;
    c->dk = c->dv = 64;
    c->block = 64;
    c->dt_q = c->dt_kv = c->dt_out = ATTN_F32;
    c->fill = ATTN_FILL_UNIFORM;
}

attn_transnormer_desc attn_transnormer_case_desc(const attn_transnormer_case *c)
{
    attn_transnormer_desc d = attn_transnormer_desc_default();
    d.mode = c->mode;
    d.causal = c->causal;
    d.feature = c->feature;
    d.block = c->block;
    d.scores = c->scores;
    d.pad = c->pad;
    d.norm = c->norm;
    d.eps = (float)c->eps;
    d.scale = (float)c->scale;
    return d;
}

double attn_transnormer_case_cost(const attn_transnormer_case *c)
{
    double keys = 0; /* summed over the queries of one head */
    for (int64_t i = 0; i < c->s; i++) {
        int64_t lo = 0, hi = c->s;
        if (c->mode == ATTN_TRANSNORMER_MODE_DIAG) {
            lo = i - i % c->block;
            hi = c->s - lo > c->block ? lo + c->block : c->s;
        }
        keys += (double)((c->causal ? i + 1 : hi) - lo);
    }
    return 2.0 * (double)(c->b * c->hq) * keys * (double)(c->dk + c->dv);
}

const char *const attn_transnormer_feature_names[ATTN_TN_FEAT_COUNT] = {
    "norm", "diag", "causal", "elu", "relu-map", "identity", "relu-scores", "partial-block",
    "one-block", "pad-zero", "norm-set", "gqa", "dk!=dv", "f16", "bf16", "bhsd", "stress",
    "batch2", "long", "nonfinite"};

static int has_dtype(const attn_transnormer_case *c, attn_dtype t)
{
    return c->dt_q == t || c->dt_kv == t || c->dt_out == t;
}

unsigned attn_transnormer_case_features(const attn_transnormer_case *c)
{
    const int norm = c->mode == ATTN_TRANSNORMER_MODE_NORM, diag = !norm;
    const struct { int on; attn_tn_feature f; } t[] = {
        {norm, ATTN_TN_FEAT_NORM},
        {diag, ATTN_TN_FEAT_DIAG},
        {c->causal, ATTN_TN_FEAT_CAUSAL},
        {norm && c->feature == ATTN_TRANSNORMER_FEATURE_ELU, ATTN_TN_FEAT_ELU},
        {norm && c->feature == ATTN_TRANSNORMER_FEATURE_RELU, ATTN_TN_FEAT_RELU_MAP},
        {norm && c->feature == ATTN_TRANSNORMER_FEATURE_IDENTITY, ATTN_TN_FEAT_IDENTITY},
        {diag && c->scores == ATTN_TRANSNORMER_SCORES_RELU, ATTN_TN_FEAT_RELU_SCORES},
        {diag && c->block < c->s && c->s % c->block != 0, ATTN_TN_FEAT_PARTIAL},
        {diag && c->block >= c->s, ATTN_TN_FEAT_ONE_BLOCK},
        {diag && c->pad == ATTN_TRANSNORMER_PAD_ZERO, ATTN_TN_FEAT_PAD_ZERO},
        {c->norm != ATTN_TRANSNORMER_NORM_AUTO, ATTN_TN_FEAT_NORM_SET},
        {c->hq != c->hkv, ATTN_TN_FEAT_GQA},
        {c->dk != c->dv, ATTN_TN_FEAT_DK_DV},
        {has_dtype(c, ATTN_F16), ATTN_TN_FEAT_F16},
        {has_dtype(c, ATTN_BF16), ATTN_TN_FEAT_BF16},
        {c->bhsd, ATTN_TN_FEAT_BHSD},
        {c->fill == ATTN_FILL_STRESS, ATTN_TN_FEAT_STRESS},
        {c->b > 1, ATTN_TN_FEAT_BATCH},
        {c->s >= 2048, ATTN_TN_FEAT_LONG},
        {c->special != ATTN_LSPECIAL_NONE, ATTN_TN_FEAT_NONFINITE},
    };
    unsigned m = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].on)
            m |= 1u << t[i].f;
    return m;
}

/* ---- canonical name ------------------------------------------------------------------------- */

static const char *const mode_names[] = {"norm", "diag", NULL};
static const char *const feature_names[] = {"1+elu", "elu", "relu", "identity", NULL};
static const char *const scores_names[] = {"softmax", "relu", NULL};
static const char *const pad_names[] = {"masked", "zero", NULL};
static const char *const norm_names[] = {"auto", "srms", "none", NULL};
static const char *const dtype_names[] = {"f32", "f16", "bf16", NULL};

int attn_transnormer_case_format(const attn_transnormer_case *c, char *buf, size_t size)
{
    attn_sbuf s = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    attn_sb_add(&s, "transnormer b%lld s%lld hq%lld hkv%lld dk%lld dv%lld mode=%s",
                (long long)c->b, (long long)c->s, (long long)c->hq, (long long)c->hkv,
                (long long)c->dk, (long long)c->dv, mode_names[c->mode]);
    if (c->mode == ATTN_TRANSNORMER_MODE_NORM)
        attn_sb_add(&s, " feature=%s", feature_names[c->feature]);
    else
        attn_sb_add(&s, " block=%lld scores=%s", (long long)c->block, scores_names[c->scores]);
    if (c->causal)
        attn_sb_add(&s, " causal");
    if (c->mode == ATTN_TRANSNORMER_MODE_DIAG && c->pad != ATTN_TRANSNORMER_PAD_MASKED)
        attn_sb_add(&s, " pad=%s", pad_names[c->pad]);
    if (c->mode == ATTN_TRANSNORMER_MODE_DIAG && c->scale != 0)
        attn_sb_add(&s, " scale=%.9g", c->scale);
    if (c->norm != ATTN_TRANSNORMER_NORM_AUTO)
        attn_sb_add(&s, " norm=%s", norm_names[c->norm]);
    if (c->eps != 0)
        attn_sb_add(&s, " eps=%.9g", c->eps);
    attn_sb_add(&s, " dt=%s:%s:%s layout=%s", dtype_names[c->dt_q], dtype_names[c->dt_kv],
                dtype_names[c->dt_out], c->bhsd ? "bhsd" : "bshd");
    if (c->fill == ATTN_FILL_STRESS)
        attn_sb_add(&s, " fill=stress");
    if (c->special != ATTN_LSPECIAL_NONE)
        attn_sb_add(&s, " special=%s", attn_linear_special_names[c->special]);
    return (int)s.len;
}

/* ---- parsing -------------------------------------------------------------------------------- */

/* Size tokens ("hkv2"); h and d set both head counts or both head dims. */
static int parse_size(const char *tok, attn_transnormer_case *c)
{
#define K2(p, f, g) {p, offsetof(attn_transnormer_case, f), offsetof(attn_transnormer_case, g)}
    static const attn_tok_size_key keys[] = {
        K2("hkv", hkv, hkv), K2("hq", hq, hq), K2("h", hq, hkv), K2("dk", dk, dk),
        K2("dv", dv, dv),    K2("d", dk, dv),  K2("b", b, b),    K2("s", s, s)};
#undef K2
    return attn_tok_size(tok, keys, sizeof keys / sizeof keys[0], c);
}

static int choice(const char *val, const char *const *names, int *out)
{
    int v = attn_tok_choice(val, names);
    if (v < 0)
        return -1;
    *out = v;
    return 1;
}

/* key=value tokens; 1 consumed, 0 unknown key, -1 bad value. */
static int parse_keyval(const char *key, const char *val, attn_transnormer_case *c)
{
    int v = 0, r = 0;
    if (strcmp(key, "mode") == 0 && (r = choice(val, mode_names, &v)) == 1)
        c->mode = (attn_transnormer_mode)v;
    else if (strcmp(key, "feature") == 0 && (r = choice(val, feature_names, &v)) == 1)
        c->feature = (attn_transnormer_feature)v;
    else if (strcmp(key, "scores") == 0 && (r = choice(val, scores_names, &v)) == 1)
        c->scores = (attn_transnormer_scores)v;
    else if (strcmp(key, "pad") == 0 && (r = choice(val, pad_names, &v)) == 1)
        c->pad = (attn_transnormer_pad)v;
    else if (strcmp(key, "norm") == 0 && (r = choice(val, norm_names, &v)) == 1)
        c->norm = (attn_transnormer_norm)v;
    else if (strcmp(key, "layout") == 0 && (r = choice(val, (const char *const[]){"bshd", "bhsd", NULL}, &v)) == 1)
        c->bhsd = v;
    else if (strcmp(key, "fill") == 0 &&
             (r = choice(val, (const char *const[]){"uniform", "stress", NULL}, &v)) == 1)
        c->fill = (attn_fill_mode)v;
    else if (strcmp(key, "special") == 0 &&
             (r = choice(val, attn_linear_special_names, &v)) == 1)
        c->special = (attn_linear_special)v;
    else if (strcmp(key, "block") == 0)
        r = attn_tok_int(val, 1, (int64_t)1 << 40, &c->block) ? -1 : 1;
    else if (strcmp(key, "eps") == 0)
        r = attn_tok_factor(val, 0, &c->eps) ? -1 : 1;
    else if (strcmp(key, "scale") == 0)
        r = attn_tok_factor(val, -1e30, &c->scale) ? -1 : 1;
    else if (strcmp(key, "dt") == 0)
        r = attn_tok_dtypes_qkv(val, dtype_names, &c->dt_q, &c->dt_kv, &c->dt_out) ? -1 : 1;
    return r;
}

int attn_transnormer_case_token(char *tok, attn_transnormer_case *c, char *err, size_t errsize)
{
    if (strcmp(tok, "causal") == 0) {
        c->causal = 1;
        return 0;
    }
    char *val = attn_tok_split(tok);
    return attn_tok_verdict(val ? parse_keyval(tok, val, c) : parse_size(tok, c), tok, val, err,
                            errsize);
}
