/* attn_transfer_config.c - the transfer model's configuration: defaults, the range check,
 * setting a field from its command-line spelling and describing a configuration as text. */
#include "attn_transfer_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"
#include "attn_model_saliency.h" /* attn_model_reserved_zero */

/* The spellings of the enums, indexed by value. */
static const char *const act_names[] = {"none", "relu", "tanh", NULL};
static const char *const mode_names[] = {"attention", "uniform", "target-only", NULL};
static const char *const score_names[] = {"dot", "mlp", "cosine", NULL};
static const char *const query_names[] = {"attribute", "example", NULL};
static const char *const detach_names[] = {"none", "heads", "shared", NULL};

attn_transfer_config attn_transfer_config_default(void)
{
    return (attn_transfer_config){.features = 32, .embed = 16, .sources = 8, .attn_hidden = 16,
                                  .act = ATTN_TRANSFER_ACT_RELU,
                                  .mode = ATTN_TRANSFER_ATTENTION,
                                  .score = ATTN_TRANSFER_SCORE_DOT,
                                  .query = ATTN_TRANSFER_QUERY_ATTRIBUTE,
                                  .include_target = 1, .source_weight = 1.0,
                                  .detach = ATTN_TRANSFER_DETACH_DEFAULT,
                                  .temperature = ATTN_TRANSFER_TEMPERATURE_DEFAULT};
}

static attn_status check_size(const char *name, int64_t v)
{
    /* 2^24 per size keeps every product of two or three sizes far inside int64_t and size_t. */
    if (v < 1 || v > (1 << 24))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "transfer config: %s = %lld must be in [1, 16777216]", name,
                         (long long)v);
    return ATTN_OK;
}

static attn_status check_enum(const char *name, int v, const char *const *names)
{
    int n = 0;
    while (names[n])
        n++;
    if (v < 0 || v >= n)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "transfer config: %s = %d is not one of "
                         "0..%d", name, v, n - 1);
    return ATTN_OK;
}

/* A finite real >= 0 (> 0 where positive is set). */
static attn_status check_real(const char *name, double v, int positive)
{
    if (!(isfinite(v) && (positive ? v > 0 : v >= 0)))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "transfer config: %s = %g must be finite "
                         "and %s", name, v, positive ? "> 0 with the cosine score" : ">= 0");
    return ATTN_OK;
}

attn_status attn_transfer_config_check(const attn_transfer_config *c)
{
    if (!c)
        return attn_fail(ATTN_ERR_NULL_POINTER, "transfer config: NULL");
    if (!attn_model_reserved_zero(c->reserved, 1))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "transfer config: reserved fields must be zero");
    ATTN_TRY(check_size("features", c->features));
    ATTN_TRY(check_size("embed", c->embed));
    ATTN_TRY(check_size("sources", c->sources));
    ATTN_TRY(check_size("attn_hidden", c->attn_hidden));
    ATTN_TRY(check_enum("act", (int)c->act, act_names));
    ATTN_TRY(check_enum("mode", (int)c->mode, mode_names));
    ATTN_TRY(check_enum("score", (int)c->score, score_names));
    ATTN_TRY(check_enum("query", (int)c->query, query_names));
    ATTN_TRY(check_enum("detach", (int)c->detach, detach_names));
    if (c->include_target != 0 && c->include_target != 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "transfer config: include_target = %d must be 0 or 1",
                         c->include_target);
    if (c->learn_temperature > 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "transfer config: learn_temperature = %u must be 0 or 1",
                         (unsigned)c->learn_temperature);
    ATTN_TRY(check_real("source_weight", c->source_weight, 0));
    ATTN_TRY(check_real("target_decay", c->target_decay, 0));
    ATTN_TRY(check_real("temperature", c->temperature, c->score == ATTN_TRANSFER_SCORE_COSINE));
    if (c->temperature > ATTN_TRANSFER_TEMPERATURE_MAX) /* keeps exp(logit) finite in f32 */
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "transfer config: temperature = %g must be "
                         "<= %g", c->temperature, (double)ATTN_TRANSFER_TEMPERATURE_MAX);
    /* The largest tensors: W_c [m, F], W_s [K, m], W_a and W_q [h, m]. */
    const int64_t big = c->embed * (c->features + c->sources + 2 * c->attn_hidden + 4);
    if (big > ((int64_t)1 << 31))
        return attn_fail(ATTN_ERR_OVERFLOW,
                         "transfer config: %lld parameters are more than this model holds "
                         "(2^31)", (long long)big);
    return ATTN_OK;
}

static int parse_i64(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    const long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return 0;
    *v = x;
    return 1;
}

static int parse_real(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && !*end;
}

static int parse_enum(const char *s, const char *const *names, int *v)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i])) {
            *v = i;
            return 1;
        }
    return 0;
}

attn_status attn_transfer_config_set(attn_transfer_config *c, const char *key,
                                     const char *value)
{
    if (!c || !key || !value)
        return attn_fail(ATTN_ERR_NULL_POINTER, "transfer config: NULL %s",
                         !c ? "config" : !key ? "key" : "value");
    attn_transfer_config n = *c;
    int e = 0, ok;
    if (!strcmp(key, "features"))
        ok = parse_i64(value, &n.features);
    else if (!strcmp(key, "embed"))
        ok = parse_i64(value, &n.embed);
    else if (!strcmp(key, "sources"))
        ok = parse_i64(value, &n.sources);
    else if (!strcmp(key, "attn_hidden"))
        ok = parse_i64(value, &n.attn_hidden);
    else if (!strcmp(key, "act"))
        ok = parse_enum(value, act_names, &e), n.act = (attn_transfer_act)e;
    else if (!strcmp(key, "mode"))
        ok = parse_enum(value, mode_names, &e), n.mode = (attn_transfer_mode)e;
    else if (!strcmp(key, "score"))
        ok = parse_enum(value, score_names, &e), n.score = (attn_transfer_score)e;
    else if (!strcmp(key, "query"))
        ok = parse_enum(value, query_names, &e), n.query = (attn_transfer_query)e;
    else if (!strcmp(key, "detach"))
        ok = parse_enum(value, detach_names, &e), n.detach = (attn_transfer_detach)e;
    else if (!strcmp(key, "include_target")) {
        ok = (!strcmp(value, "0") || !strcmp(value, "1"));
        n.include_target = value[0] == '1';
    } else if (!strcmp(key, "learn_temperature")) {
        ok = (!strcmp(value, "0") || !strcmp(value, "1"));
        n.learn_temperature = value[0] == '1';
    } else if (!strcmp(key, "source_weight"))
        ok = parse_real(value, &n.source_weight);
    else if (!strcmp(key, "temperature"))
        ok = parse_real(value, &n.temperature);
    else if (!strcmp(key, "target_decay"))
        ok = parse_real(value, &n.target_decay);
    else
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "transfer config: unknown key \"%s\" (features, embed, sources, "
                         "attn_hidden, act, mode, score, query, include_target, source_weight, "
                         "detach, learn_temperature, temperature, target_decay)",
                         key);
    if (!ok)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "transfer config: %s = \"%s\" does not parse", key, value);
    *c = n;
    return attn_ok();
}

/* The name of an enum value, "?" outside the table. */
static const char *enum_name(const char *const *names, int v)
{
    for (int i = 0; names[i]; i++)
        if (i == v)
            return names[i];
    return "?";
}

attn_status attn_transfer_config_describe(const attn_transfer_config *c, char *buf, size_t n)
{
    if (!c || !buf)
        return attn_fail(ATTN_ERR_NULL_POINTER, "transfer config describe: NULL %s",
                         !c ? "config" : "buffer");
    if (n == 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "transfer config describe: empty buffer");
    snprintf(buf, n,
             "features=%lld embed=%lld sources=%lld attn_hidden=%lld act=%s mode=%s score=%s "
             "query=%s include_target=%d source_weight=%g detach=%s learn_temperature=%u "
             "temperature=%g target_decay=%g",
             (long long)c->features, (long long)c->embed, (long long)c->sources,
             (long long)c->attn_hidden, enum_name(act_names, (int)c->act),
             enum_name(mode_names, (int)c->mode), enum_name(score_names, (int)c->score),
             enum_name(query_names, (int)c->query), c->include_target, c->source_weight,
             enum_name(detach_names, (int)c->detach), (unsigned)c->learn_temperature,
             c->temperature, c->target_decay);
    return attn_ok();
}
