/* linear_case.c - linear attention conformance cases: defaults, descriptor, canonical name
 * (format and the tokens of the grammar), feature groups and cost. docs/ops/linear.md gives
 * the grammar. */
#include "linear_case.h"

#include "attn_cases.h"
#include "attn_half.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_EPS 1e-6

static const char *const map_names[] = {"identity", "elu", "elu1", "relu", "silu",
                                        "softmax_pair", "relu_pair", NULL};
static const char *const dtype_names[] = {"f32", "f16", "bf16", NULL};
static const char *const state_names[] = {"none", "in", "out", "inout", NULL};
const char *const attn_linear_special_names[] = {"none", "v_nonfinite", "k_nan", NULL};

/* Special values go into every 13th key. */
#define PLANT_PERIOD 13

void attn_linear_plant(attn_linear_special special, const attn_tensor *k, const attn_tensor *v)
{
    if (special == ATTN_LSPECIAL_K_NAN) {
        attn_store_f64(k->data, k->dtype,
                       (k->shape[0] - 1) * k->stride[0] + k->shape[1] / 2 * k->stride[1] +
                           (k->shape[3] > 1) * k->stride[3],
                       NAN);
        return;
    }
    for (int64_t b = 0; special == ATTN_LSPECIAL_V_NONFINITE && b < v->shape[0]; b++)
        for (int64_t g = 0; g < v->shape[2]; g++)
            for (int64_t j = 0; j < v->shape[1]; j++) {
                const int64_t r = j % PLANT_PERIOD, dv = v->shape[3];
                const int64_t at = b * v->stride[0] + j * v->stride[1] + g * v->stride[2];
                if (r == 5)
                    attn_store_f64(v->data, v->dtype, at + j % dv * v->stride[3], NAN);
                if (r == 6)
                    attn_store_f64(v->data, v->dtype, at + (j + 1) % dv * v->stride[3],
                                   INFINITY);
            }
}

void attn_linear_case_default(attn_linear_case *c)
{
    memset(c, 0, sizeof *c);
    c->b = c->s = c->hq = c->hkv = 1;
    c->dk = c->dv = 64;
    c->feature = ATTN_LINEAR_ELU1;
    c->normalize = c->causal = 1;
    c->eps = (double)(float)DEFAULT_EPS;
    c->scale = 1.0;
    c->dt_q = c->dt_kv = c->dt_out = ATTN_F32;
}

attn_linear_desc attn_linear_case_desc(const attn_linear_case *c, float *decay_values)
{
    attn_linear_desc d = attn_linear_desc_default();
    d.feature = c->feature;
    d.normalize = c->normalize;
    d.eps = (float)c->eps;
    d.causal = c->causal;
    d.scale = (float)c->scale;
    d.decay = c->decay;
    if (c->decay == ATTN_LINEAR_DECAY_GIVEN) {
        for (int64_t g = 0; g < c->hkv; g++)
            decay_values[g] = (float)(1.0 - (1.0 - c->decay_base) / (double)(g + 1));
        d.decay_values = decay_values;
    }
    return d;
}

static int64_t features_of(const attn_linear_case *c)
{
    return c->feature == ATTN_LINEAR_SOFTMAX_PAIR || c->feature == ATTN_LINEAR_RELU_PAIR
               ? 2 * c->dk
               : c->dk;
}

/* Chunked gold and magnitudes (chunk 64): per position and query head, the state read and
 * 64 keys; per position and KV head, the update; twice. */
double attn_linear_case_cost(const attn_linear_case *c)
{
    if (c->backward) /* the quadratic chain rule twice (f64 with magnitudes, then float) */
        return 6.0 * (double)c->b * (double)c->hq * (double)c->s * (double)c->s *
               (double)(features_of(c) + c->dv);
    const double df = (double)features_of(c), w = (double)c->dv + 1.0;
    const double per = (double)c->hq * (df * w + 32.0 * (df + w)) + (double)c->hkv * df * w;
    return 4.0 * (double)c->b * (double)c->s * per;
}

const char *const attn_linear_feature_names[ATTN_LFEAT_COUNT] = {
    "identity", "elu", "elu1", "relu", "silu", "softmax-pair", "relu-pair", "no-norm",
    "non-causal", "decay", "decay-given", "state-in", "state-out", "gqa", "dk!=dv", "f16",
    "bf16", "bhsd", "batch2", "scale", "long", "nonfinite", "backward"};

unsigned attn_linear_case_features(const attn_linear_case *c)
{
    unsigned m = 1u << (ATTN_LFEAT_IDENTITY + (int)c->feature);
    const struct { int on; attn_linear_feat f; } t[] = {
        {!c->normalize, ATTN_LFEAT_NO_NORM},
        {!c->causal, ATTN_LFEAT_NON_CAUSAL},
        {c->decay == ATTN_LINEAR_DECAY_SLOPES, ATTN_LFEAT_DECAY_SLOPES},
        {c->decay == ATTN_LINEAR_DECAY_GIVEN, ATTN_LFEAT_DECAY_GIVEN},
        {(c->state & ATTN_LINEAR_STATE_IN) != 0, ATTN_LFEAT_STATE_IN},
        {(c->state & ATTN_LINEAR_STATE_OUT) != 0, ATTN_LFEAT_STATE_OUT},
        {c->hq != c->hkv, ATTN_LFEAT_GQA},
        {c->dk != c->dv, ATTN_LFEAT_DK_DV},
        {c->dt_q == ATTN_F16 || c->dt_kv == ATTN_F16 || c->dt_out == ATTN_F16, ATTN_LFEAT_F16},
        {c->dt_q == ATTN_BF16 || c->dt_kv == ATTN_BF16 || c->dt_out == ATTN_BF16,
         ATTN_LFEAT_BF16},
        {c->bhsd, ATTN_LFEAT_BHSD},
        {c->b > 1, ATTN_LFEAT_BATCH},
        {c->scale != 1.0, ATTN_LFEAT_SCALE},
        {c->s >= 2048, ATTN_LFEAT_LONG},
        {c->special != ATTN_LSPECIAL_NONE, ATTN_LFEAT_NONFINITE},
        {c->backward, ATTN_LFEAT_BACKWARD},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].on)
            m |= 1u << t[i].f;
    return m;
}

int attn_linear_case_format(const attn_linear_case *c, char *buf, size_t size)
{
    attn_sbuf s = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    attn_sb_add(&s, "linear b%lld s%lld hq%lld hkv%lld dk%lld dv%lld feature=%s norm=%d causal=%d",
                (long long)c->b, (long long)c->s, (long long)c->hq, (long long)c->hkv,
                (long long)c->dk, (long long)c->dv, map_names[c->feature], c->normalize,
                c->causal);
    if (c->eps != (double)(float)DEFAULT_EPS)
        attn_sb_add(&s, " eps=%.9g", c->eps);
    if (c->scale != 1.0)
        attn_sb_add(&s, " scale=%.9g", c->scale);
    if (c->decay == ATTN_LINEAR_DECAY_SLOPES)
        attn_sb_add(&s, " decay=slopes");
    else if (c->decay == ATTN_LINEAR_DECAY_GIVEN)
        attn_sb_add(&s, " decay=%.9g", c->decay_base);
    if (c->state)
        attn_sb_add(&s, " state=%s", state_names[c->state]);
    attn_sb_add(&s, " dt=%s:%s:%s layout=%s", dtype_names[c->dt_q], dtype_names[c->dt_kv],
                dtype_names[c->dt_out], c->bhsd ? "bhsd" : "bshd");
    if (c->special != ATTN_LSPECIAL_NONE)
        attn_sb_add(&s, " special=%s", attn_linear_special_names[c->special]);
    if (c->backward)
        attn_sb_add(&s, " backward");
    return (int)s.len;
}

/* Size tokens ("hkv2"); d64 sets dk = dv = 64. */
static int parse_size(const char *tok, attn_linear_case *c)
{
#define K2(p, f, g) {p, offsetof(attn_linear_case, f), offsetof(attn_linear_case, g)}
    static const attn_tok_size_key keys[] = {
        K2("hkv", hkv, hkv), K2("hq", hq, hq), K2("dk", dk, dk), K2("dv", dv, dv),
        K2("b", b, b),       K2("s", s, s),    K2("d", dk, dv)};
#undef K2
    return attn_tok_size(tok, keys, sizeof keys / sizeof keys[0], c);
}

/* A real in [lo, hi] kept as the float the descriptor holds, so %.9g round-trips it. */
/* A real rounded to float, within [lo, hi] as floats: the bounds are compared after the
 * rounding, so a canonical name (which prints the float) always parses back. */
static int parse_float(const char *val, double lo, double hi, double *out)
{
    double v;
    if (attn_tok_real(val, -DBL_MAX, DBL_MAX, &v))
        return -1;
    float f = (float)v;
    if (!(f >= (float)lo && f <= (float)hi))
        return -1;
    *out = (double)f;
    return 0;
}

static int parse_flag(const char *val, int *out)
{
    if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0)
        return -1;
    *out = val[0] == '1';
    return 0;
}

/* key=value tokens: 1 consumed, 0 unknown key, -1 bad value. */
static int parse_keyval(const char *key, const char *val, attn_linear_case *c)
{
    int v;
    if (strcmp(key, "feature") == 0) {
        if ((v = attn_tok_choice(val, map_names)) < 0)
            return -1;
        c->feature = (attn_linear_feature)v;
        return 1;
    }
    if (strcmp(key, "norm") == 0)
        return parse_flag(val, &c->normalize) ? -1 : 1;
    if (strcmp(key, "causal") == 0)
        return parse_flag(val, &c->causal) ? -1 : 1;
    if (strcmp(key, "eps") == 0)
        return parse_float(val, 0.0, 1e30, &c->eps) ? -1 : 1;
    if (strcmp(key, "scale") == 0)
        return parse_float(val, -1e30, 1e30, &c->scale) || c->scale == 0 ? -1 : 1;
    if (strcmp(key, "decay") == 0) {
        if (strcmp(val, "slopes") == 0) {
            c->decay = ATTN_LINEAR_DECAY_SLOPES;
            return 1;
        }
        if (parse_float(val, 1e-30, 1.0, &c->decay_base))
            return -1;
        c->decay = ATTN_LINEAR_DECAY_GIVEN;
        return 1;
    }
    if (strcmp(key, "state") == 0) {
        if ((v = attn_tok_choice(val, state_names)) < 0)
            return -1;
        c->state = v;
        return 1;
    }
    if (strcmp(key, "dt") == 0)
        return attn_tok_dtypes_qkv(val, dtype_names, &c->dt_q, &c->dt_kv, &c->dt_out) ? -1 : 1;
    if (strcmp(key, "special") == 0) {
        if ((v = attn_tok_choice(val, attn_linear_special_names)) < 0)
            return -1;
        c->special = (attn_linear_special)v;
        return 1;
    }
    if (strcmp(key, "layout") == 0) {
        static const char *const layouts[] = {"bshd", "bhsd", NULL};
        if ((v = attn_tok_choice(val, layouts)) < 0)
            return -1;
        c->bhsd = v;
        return 1;
    }
    return 0;
}

int attn_linear_case_token(char *tok, attn_linear_case *c, char *err, size_t errsize)
{
    if (strcmp(tok, "backward") == 0) {
        c->backward = 1;
        return 0;
    }
    char *val = attn_tok_split(tok);
    return attn_tok_verdict(val ? parse_keyval(tok, val, c) : parse_size(tok, c), tok, val, err,
                            errsize);
}

int attn_linear_case_check(const attn_linear_case *c, char *err, size_t errsize)
{
    if (c->backward && c->special != ATTN_LSPECIAL_NONE)
        return attn_perr(err, errsize, "special inputs are forward cases (no backward)");
    return 0;
}
