/* attn_model_config.c - the BERT configuration: defaults, checks (sizes, divisibility, no
 * overflow of any parameter size), and Hugging Face's config.json read and written with cJSON. */
#include "attn/attn_model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"

/* Integers travel as JSON numbers (doubles): above 2^53 they are not exact. */
#define CFG_MAX_INT 9007199254740992.0
/* A config.json is a few hundred bytes; a label table of a million classes still fits. */
#define CFG_MAX_FILE (64u << 20)

attn_model_config attn_model_config_default(void)
{
    attn_model_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 30522;
    c.hidden_size = 64;
    c.num_layers = 2;
    c.num_heads = 4;
    c.intermediate_size = 256;
    c.max_positions = 512;
    c.type_vocab_size = 2;
    c.num_labels = 2;
    c.pad_token_id = 0;
    c.layer_norm_eps = 1e-12;
    c.initializer_range = 0.02;
    return c;
}

/* The integer fields by their config.json keys (num_labels is handled with id2label). */
static const struct {
    const char *key;
    size_t off;
} int_fields[] = {
    {"vocab_size", offsetof(attn_model_config, vocab_size)},
    {"hidden_size", offsetof(attn_model_config, hidden_size)},
    {"num_hidden_layers", offsetof(attn_model_config, num_layers)},
    {"num_attention_heads", offsetof(attn_model_config, num_heads)},
    {"intermediate_size", offsetof(attn_model_config, intermediate_size)},
    {"max_position_embeddings", offsetof(attn_model_config, max_positions)},
    {"type_vocab_size", offsetof(attn_model_config, type_vocab_size)},
    {"num_labels", offsetof(attn_model_config, num_labels)},
    {"pad_token_id", offsetof(attn_model_config, pad_token_id)},
};

static int64_t *int_field(attn_model_config *c, size_t row)
{
    return (int64_t *)((char *)c + int_fields[row].off);
}

/* ---- checks ---------------------------------------------------------------------------------- */

/* acc += a * b in int64, 0 on overflow. */
static int mul_add(int64_t *acc, int64_t a, int64_t b)
{
    int64_t p;
    return !__builtin_mul_overflow(a, b, &p) && !__builtin_add_overflow(*acc, p, acc);
}

/* Every parameter's element count, their total and its bytes fit int64 and size_t. */
static attn_status check_sizes(const attn_model_config *c)
{
    int64_t d = c->hidden_size, I = c->intermediate_size, layer = 0, total = 0, bytes;
    /* a layer: q, k, v, o [d, d] and their biases; two LayerNorms (2 [d] each); the MLP's
     * [I, d], [I], [d, I], [d] */
    int ok = mul_add(&layer, 4 * d, d) && mul_add(&layer, 9, d) && mul_add(&layer, 2 * I, d) &&
             mul_add(&layer, 1, I);
    ok = ok && mul_add(&total, c->vocab_size + c->max_positions + c->type_vocab_size + 2, d) &&
         mul_add(&total, c->num_layers, layer) && mul_add(&total, d + 1, d) &&
         mul_add(&total, c->num_labels, d + 1);
    if (!ok || __builtin_mul_overflow(total, (int64_t)sizeof(float), &bytes) ||
        (uint64_t)bytes > SIZE_MAX)
        return attn_fail(ATTN_ERR_OVERFLOW, "model config: the parameter count of vocab_size "
                         "%lld, hidden_size %lld, %lld layers, intermediate_size %lld overflows",
                         (long long)c->vocab_size, (long long)d, (long long)c->num_layers,
                         (long long)I);
    return ATTN_OK;
}

attn_status attn_model_config_check(const attn_model_config *cfg)
{
    if (!cfg)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_config_check: NULL config");
    for (size_t i = 0; i < sizeof int_fields / sizeof int_fields[0]; i++) {
        int64_t v = *int_field((attn_model_config *)cfg, i);
        int pad = int_fields[i].off == offsetof(attn_model_config, pad_token_id);
        if (v < (pad ? 0 : 1))
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "model config: %s = %lld, must be %s",
                             int_fields[i].key, (long long)v, pad ? ">= 0" : "positive");
        if ((double)v > CFG_MAX_INT)
            return attn_fail(ATTN_ERR_OVERFLOW, "model config: %s = %lld exceeds 2^53",
                             int_fields[i].key, (long long)v);
    }
    if (cfg->pad_token_id >= cfg->vocab_size)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "model config: pad_token_id %lld is not "
                         "below vocab_size %lld", (long long)cfg->pad_token_id,
                         (long long)cfg->vocab_size);
    if (cfg->hidden_size % cfg->num_heads != 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "model config: hidden_size %lld is not a "
                         "multiple of num_attention_heads %lld", (long long)cfg->hidden_size,
                         (long long)cfg->num_heads);
    if (!(cfg->layer_norm_eps > 0) || !isfinite(cfg->layer_norm_eps))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "model config: layer_norm_eps = %g, must be "
                         "positive and finite", cfg->layer_norm_eps);
    if (!(cfg->initializer_range >= 0) || !isfinite(cfg->initializer_range))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "model config: initializer_range = %g, must "
                         "be >= 0 and finite", cfg->initializer_range);
    for (int i = 0; i < 4; i++)
        if (cfg->reserved[i])
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "model config: reserved[%d] is not zero",
                             i);
    return check_sizes(cfg);
}

/* ---- parsing --------------------------------------------------------------------------------- */

/* An integral JSON number, exact in a double (range checks are attn_model_config_check's). */
static attn_status get_int(const cJSON *j, int64_t *v)
{
    double x = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!(fabs(x) <= CFG_MAX_INT) || x != floor(x))
        return attn_fail(ATTN_ERR_FORMAT, "config.json: \"%s\" is not an integer within 2^53",
                         j->string);
    *v = (int64_t)x;
    return ATTN_OK;
}

static attn_status get_real(const cJSON *j, double *v)
{
    if (!cJSON_IsNumber(j))
        return attn_fail(ATTN_ERR_FORMAT, "config.json: \"%s\" is not a number", j->string);
    *v = j->valuedouble;
    return ATTN_OK;
}

/* The string keys attn depends on: a wrong type is malformed, another value unsupported. */
static attn_status check_string(const cJSON *j, const char *want, const char *why)
{
    if (!cJSON_IsString(j))
        return attn_fail(ATTN_ERR_FORMAT, "config.json: \"%s\" is not a string", j->string);
    if (strcmp(j->valuestring, want) != 0)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "config.json: %s \"%.64s\" is not supported (%s)",
                         j->string, j->valuestring, why);
    return ATTN_OK;
}

/* id2label: an object of label strings; its size is the number of classes. */
static attn_status count_labels(const cJSON *j, int64_t *n)
{
    if (!cJSON_IsObject(j))
        return attn_fail(ATTN_ERR_FORMAT, "config.json: \"id2label\" is not an object");
    *n = 0;
    for (const cJSON *k = j->child; k; k = k->next, (*n)++)
        if (!cJSON_IsString(k))
            return attn_fail(ATTN_ERR_FORMAT, "config.json: \"id2label\" entry \"%.32s\" is not "
                             "a string", k->string);
    return ATTN_OK;
}

/* One top-level key into c (the keys attn does not use are ignored, as transformers keeps them
 * as attributes). *labels is id2label's size, or -1 while none was seen. */
static attn_status parse_key(const cJSON *j, attn_model_config *c, int64_t *labels)
{
    const char *k = j->string;
    for (size_t i = 0; i < sizeof int_fields / sizeof int_fields[0]; i++)
        if (strcmp(k, int_fields[i].key) == 0) {
            /* transformers allows a null pad_token_id (no padding token): keep the default */
            if (cJSON_IsNull(j) && strcmp(k, "pad_token_id") == 0)
                return ATTN_OK;
            return get_int(j, int_field(c, i));
        }
    if (strcmp(k, "layer_norm_eps") == 0)
        return get_real(j, &c->layer_norm_eps);
    if (strcmp(k, "initializer_range") == 0)
        return get_real(j, &c->initializer_range);
    if (strcmp(k, "hidden_act") == 0)
        return check_string(j, "gelu", "attn implements \"gelu\", the exact erf GELU");
    if (strcmp(k, "position_embedding_type") == 0)
        return check_string(j, "absolute", "attn implements \"absolute\" position embeddings");
    if (strcmp(k, "model_type") == 0)
        return check_string(j, "bert", "attn implements \"bert\"");
    if (strcmp(k, "id2label") == 0) {
        if (cJSON_IsNull(j)) {
            *labels = -1;
            return ATTN_OK;
        }
        return count_labels(j, labels);
    }
    return ATTN_OK;
}

static attn_status parse_root(const cJSON *root, attn_model_config *c)
{
    if (!cJSON_IsObject(root))
        return attn_fail(ATTN_ERR_FORMAT, "config.json: not a JSON object");
    int64_t labels = -1;
    /* In document order, so that a repeated key's last value wins (Python's json does so). */
    for (const cJSON *j = root->child; j; j = j->next) {
        attn_status st = parse_key(j, c, &labels);
        if (st != ATTN_OK)
            return st;
    }
    /* transformers derives num_labels from id2label when both are given */
    if (labels >= 0)
        c->num_labels = labels;
    return ATTN_OK;
}

attn_status attn_model_config_parse(const char *json, size_t n, attn_model_config *cfg)
{
    if (!json || !cfg)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_config_parse: NULL %s",
                         json ? "cfg" : "json");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, n, &end, 0);
    if (!root)
        return attn_fail(ATTN_ERR_FORMAT, "config.json: not valid JSON (at byte %zu of %zu)",
                         end ? (size_t)(end - json) : (size_t)0, n);
    size_t at = (size_t)(end - json);
    while (at < n && json[at] && strchr(" \t\n\r", json[at]))
        at++;
    /* Keys a config.json leaves out take transformers' BertConfig defaults (BERT-base). */
    attn_model_config c = attn_model_config_default();
    c.hidden_size = 768;
    c.num_layers = 12;
    c.num_heads = 12;
    c.intermediate_size = 3072;
    attn_status st = at < n ? attn_fail(ATTN_ERR_FORMAT, "config.json: bytes after the JSON "
                                        "object (at byte %zu)", at)
                            : parse_root(root, &c);
    cJSON_Delete(root);
    if (st == ATTN_OK)
        st = attn_model_config_check(&c);
    if (st == ATTN_OK)
        *cfg = c;
    return st;
}

/* ---- files ----------------------------------------------------------------------------------- */

/* The whole file into a heap buffer (*len bytes). */
static attn_status slurp(const char *path, char **text, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return attn_fail(ATTN_ERR_IO, "config.json: cannot open '%s': %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int err = buf ? 0 : ENOMEM;
    while (!err) {
        if (n == cap) {
            char *grown = cap <= CFG_MAX_FILE ? realloc(buf, cap * 2) : NULL;
            if (!grown) {
                err = cap <= CFG_MAX_FILE ? ENOMEM : EFBIG;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0 && ferror(fp))
            err = EIO;
        else if (got == 0)
            break;
    }
    fclose(fp);
    if (err) {
        free(buf);
        return attn_fail(err == ENOMEM ? ATTN_ERR_OUT_OF_MEMORY : ATTN_ERR_IO,
                         "config.json: cannot read '%s': %s", path, strerror(err));
    }
    *text = buf;
    *len = n;
    return ATTN_OK;
}

attn_status attn_model_config_read(const char *path, attn_model_config *cfg)
{
    if (!path || !cfg)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_config_read: NULL %s",
                         path ? "cfg" : "path");
    char *text = NULL;
    size_t n = 0;
    attn_status st = slurp(path, &text, &n);
    if (st != ATTN_OK)
        return st;
    st = attn_model_config_parse(text, n, cfg);
    free(text);
    if (st != ATTN_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", attn_last_error());
        return attn_fail(st, "%s (in '%s')", msg, path);
    }
    return ATTN_OK;
}

/* ---- writing --------------------------------------------------------------------------------- */

/* id2label {"0": "LABEL_0", ...} or label2id {"LABEL_0": 0, ...}: transformers' default names. */
static int add_labels(cJSON *root, int64_t n, int inverse)
{
    cJSON *map = cJSON_AddObjectToObject(root, inverse ? "label2id" : "id2label");
    char id[24], label[32];
    for (int64_t i = 0; i < n && map; i++) {
        snprintf(id, sizeof id, "%lld", (long long)i);
        snprintf(label, sizeof label, "LABEL_%lld", (long long)i);
        if (!(inverse ? cJSON_AddNumberToObject(map, label, (double)i)
                      : cJSON_AddStringToObject(map, id, label)))
            return 0;
    }
    return map != NULL;
}

/* A double in the fewest digits that read back to exactly it (cJSON's own printing settles for
 * 15 digits when they come within an epsilon). */
static int add_real(cJSON *root, const char *key, double v)
{
    char text[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    for (char *p = text; *p; p++) /* a locale's decimal comma: JSON has a point */
        if (*p == ',')
            *p = '.';
    return cJSON_AddRawToObject(root, key, text) != NULL;
}

/* The document transformers' save_pretrained writes for BertForSequenceClassification (keys in
 * its sorted order). Integers are below 2^53 (checked), so exact as JSON numbers. */
static cJSON *config_json(const attn_model_config *c)
{
    cJSON *root = cJSON_CreateObject(), *arch = cJSON_AddArrayToObject(root, "architectures");
    int ok = arch &&
             cJSON_AddItemToArray(arch, cJSON_CreateString("BertForSequenceClassification"));
    ok = ok && cJSON_AddNumberToObject(root, "attention_probs_dropout_prob", 0.1) &&
         cJSON_AddNullToObject(root, "classifier_dropout") &&
         cJSON_AddStringToObject(root, "hidden_act", "gelu") &&
         cJSON_AddNumberToObject(root, "hidden_dropout_prob", 0.1) &&
         cJSON_AddNumberToObject(root, "hidden_size", (double)c->hidden_size) &&
         add_labels(root, c->num_labels, 0) &&
         add_real(root, "initializer_range", c->initializer_range) &&
         cJSON_AddNumberToObject(root, "intermediate_size", (double)c->intermediate_size) &&
         add_labels(root, c->num_labels, 1) &&
         add_real(root, "layer_norm_eps", c->layer_norm_eps) &&
         cJSON_AddNumberToObject(root, "max_position_embeddings", (double)c->max_positions) &&
         cJSON_AddStringToObject(root, "model_type", "bert") &&
         cJSON_AddNumberToObject(root, "num_attention_heads", (double)c->num_heads) &&
         cJSON_AddNumberToObject(root, "num_hidden_layers", (double)c->num_layers) &&
         cJSON_AddNumberToObject(root, "pad_token_id", (double)c->pad_token_id) &&
         cJSON_AddStringToObject(root, "position_embedding_type", "absolute") &&
         cJSON_AddStringToObject(root, "problem_type", "single_label_classification") &&
         cJSON_AddStringToObject(root, "torch_dtype", "float32") &&
         cJSON_AddNumberToObject(root, "type_vocab_size", (double)c->type_vocab_size) &&
         cJSON_AddTrueToObject(root, "use_cache") &&
         cJSON_AddNumberToObject(root, "vocab_size", (double)c->vocab_size);
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

attn_status attn_model_config_write(const attn_model_config *cfg, const char *path)
{
    if (!path)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_config_write: NULL path");
    attn_status st = attn_model_config_check(cfg);
    if (st != ATTN_OK)
        return st;
    cJSON *root = config_json(cfg);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "config.json: out of memory");
    errno = 0;
    FILE *fp = fopen(path, "w");
    int err = fp ? 0 : errno;
    if (fp && (fputs(text, fp) == EOF || fputc('\n', fp) == EOF))
        err = errno ? errno : EIO;
    if (fp && fclose(fp) != 0 && !err)
        err = errno ? errno : EIO;
    free(text);
    if (err)
        return attn_fail(ATTN_ERR_IO, "config.json: cannot write '%s': %s", path, strerror(err));
    return attn_ok();
}
