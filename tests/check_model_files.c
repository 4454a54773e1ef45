/* check_model_files.c - the model's file formats: safetensors written and read back bit for
 * bit, F16/BF16/F64 conversion at unaligned offsets, every malformed header rejected with
 * ATTN_ERR_FORMAT and a message naming the tensor (the file left empty), I/O errors; config.json
 * of a real BERT checkpoint, defaults for absent keys, wrong types, unsupported settings, the
 * configuration checks, and a write -> read round trip. */
#include "attn/attn.h"
#include "attn_half.h"
#include "attn_model_safetensors.h"
#include "test_files.h"

#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- safetensors images ---------------------------------------------------------------------- */

/* An image: 8-byte little-endian header length, the header text, then ndata bytes of data
 * (copied from data, or a ramp when data is NULL). Exactly sized, so ASan sees any overread. */
static unsigned char *st_image(const char *header, const void *data, size_t ndata, size_t *len)
{
    size_t hl = strlen(header);
    *len = 8 + hl + ndata;
    unsigned char *b = malloc(*len);
    ck_assert(b);
    for (int k = 0; k < 8; k++)
        b[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < ndata; i++)
        b[8 + hl + i] = data ? ((const unsigned char *)data)[i] : (unsigned char)i;
    return b;
}

static int file_is_empty(const attn_st_file *f)
{
    return f->n == 0 && f->t == NULL && f->data == NULL && f->data_len == 0 && f->mem == NULL;
}

static int mentions(const char *what)
{
    return strstr(attn_last_error(), what) != NULL;
}

START_TEST(st_write_read_roundtrip)
{
    /* specials: NaN with a payload, -0, infinities, a subnormal, the extremes */
    float a[12], b[5], s[1] = {-3.25f}, *e = NULL;
    for (int i = 0; i < 12; i++)
        a[i] = (float)i * 0.37f - 1.0f;
    a[0] = attn_bits_f32(0x7fc12345u);
    a[1] = -0.0f;
    a[2] = INFINITY;
    a[3] = -INFINITY;
    a[4] = 1e-45f;
    a[5] = 3.4028235e38f;
    for (int i = 0; i < 5; i++)
        b[i] = 1.0f / (float)(i + 1);
    const char *names[] = {"bert.embeddings.word_embeddings.weight", "classifier.bias", "scalar",
                           "empty"};
    const float *data[] = {a, b, s, e};
    const int ndim[] = {2, 1, 0, 2};
    const int64_t shape[][2] = {{3, 4}, {5, 0}, {0, 0}, {0, 3}};
    const char *path = tpath("model.safetensors");
    ck_assert_int_eq(attn_st_write_f32(path, 4, names, data, ndim, shape), ATTN_OK);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_msg(access(tmp, F_OK) != 0, "temporary file left behind");

    attn_st_file f;
    ck_assert_int_eq(attn_st_read(path, &f), ATTN_OK);
    ck_assert_uint_eq(f.n, 4);
    /* the header: padded to 8 bytes, the metadata, the data right after it */
    uint64_t hl = 0;
    const unsigned char *m = f.mem;
    for (int k = 7; k >= 0; k--)
        hl = hl << 8 | m[k];
    ck_assert_uint_eq(hl % 8, 0);
    ck_assert_ptr_eq(f.data, m + 8 + hl);
    ck_assert_uint_eq(f.data_len, (12 + 5 + 1) * 4);
    char *hdr = strndup((const char *)m + 8, (size_t)hl);
    ck_assert(strstr(hdr, "\"__metadata__\":{\"format\":\"pt\"}"));
    free(hdr);
    uint64_t off = 0;
    for (int i = 0; i < 4; i++) {
        const attn_st_tensor *t = attn_st_find(&f, names[i]);
        ck_assert_ptr_eq(t, &f.t[i]); /* in the given order */
        ck_assert_int_eq(t->dtype, ATTN_ST_F32);
        ck_assert_str_eq(t->dtype_name, "F32");
        ck_assert_int_eq(t->ndim, ndim[i]);
        int64_t numel = 1;
        for (int d = 0; d < ndim[i]; d++) {
            ck_assert_int_eq(t->shape[d], shape[i][d]);
            numel *= shape[i][d];
        }
        ck_assert_int_eq(t->numel, numel);
        ck_assert_uint_eq(t->begin, off);
        ck_assert_uint_eq(t->end, off + 4 * (uint64_t)numel);
        off = t->end;
        float got[12];
        memset(got, 0x5a, sizeof got);
        ck_assert_int_eq(attn_st_to_f32(&f, t, got), ATTN_OK);
        if (numel)
            ck_assert_msg(memcmp(got, data[i], (size_t)numel * 4) == 0, "%s differs", names[i]);
    }
    ck_assert_ptr_null(attn_st_find(&f, "missing"));
    attn_st_close(&f);
    ck_assert(file_is_empty(&f));
}
END_TEST

START_TEST(st_convert_dtypes)
{
    /* a U8 byte first so every floating tensor starts at an odd offset */
    unsigned char d[1 + 8 + 6 + 24 + 8 + 1];
    size_t p = 0;
    d[p++] = 7;
    const uint16_t h[4] = {0x3c00, 0xc000, 0x7c00, 0x0001};     /* 1, -2, inf, 2^-24 */
    const uint16_t bf[3] = {0x3f80, 0xc0a0, 0xff80};            /* 1, -5, -inf */
    const double f64[3] = {0.1, 1e300, -0.0};
    for (int i = 0; i < 4; i++, p += 2)
        d[p] = (unsigned char)h[i], d[p + 1] = (unsigned char)(h[i] >> 8);
    for (int i = 0; i < 3; i++, p += 2)
        d[p] = (unsigned char)bf[i], d[p + 1] = (unsigned char)(bf[i] >> 8);
    for (int i = 0; i < 3; i++, p += 8) {
        uint64_t u;
        memcpy(&u, &f64[i], 8);
        for (int k = 0; k < 8; k++)
            d[p + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    memcpy(d + p, "\x01\x00\x00\x00\xff\xff\xff\xff", 8); /* I32 1, -1 */
    p += 8;
    d[p++] = 0x38; /* F8_E4M3 1.0 */
    const char *hdr =
        "{\"__metadata__\":{\"format\":\"pt\",\"x\":\"y\"},"
        "\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[1,9]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[9,15]},"
        "\"f\":{\"dtype\":\"F64\",\"shape\":[3,1],\"data_offsets\":[15,39]},"
        "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[39,47]},"
        "\"q\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[47,48]},"
        "\"z\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[48,48]}}";
    size_t len;
    unsigned char *img = st_image(hdr, d, p, &len);
    attn_st_file f;
    ck_assert_msg(attn_st_parse(img, len, &f) == ATTN_OK, "%s", attn_last_error());
    ck_assert_uint_eq(f.n, 7);
    float out[4];
    ck_assert_int_eq(attn_st_to_f32(&f, attn_st_find(&f, "h"), out), ATTN_OK);
    ck_assert(out[0] == 1.0f && out[1] == -2.0f && isinf(out[2]) && out[2] > 0 &&
              out[3] == ldexpf(1.0f, -24));
    ck_assert_int_eq(attn_st_to_f32(&f, attn_st_find(&f, "b"), out), ATTN_OK);
    ck_assert(out[0] == 1.0f && out[1] == -5.0f && isinf(out[2]) && out[2] < 0);
    ck_assert_int_eq(attn_st_to_f32(&f, attn_st_find(&f, "f"), out), ATTN_OK);
    ck_assert(out[0] == 0.1f && isinf(out[1]) && out[2] == 0.0f && signbit(out[2]));
    const attn_st_tensor *q = attn_st_find(&f, "q");
    ck_assert_int_eq(q->dtype, ATTN_ST_OTHER);
    ck_assert_str_eq(q->dtype_name, "F8_E4M3");
    ck_assert_int_eq(attn_st_find(&f, "z")->dtype, ATTN_ST_BOOL);
    static const struct {
        const char *name, *dtype;
    } refused[] = {{"i", "I32"}, {"q", "F8_E4M3"}, {"u", "U8"}, {"z", "BOOL"}};
    for (int k = 0; k < 4; k++) {
        memset(out, 0x5a, sizeof out);
        ck_assert_int_eq(attn_st_to_f32(&f, attn_st_find(&f, refused[k].name), out),
                         ATTN_ERR_UNSUPPORTED);
        ck_assert_msg(mentions(refused[k].dtype) && mentions("'"), "%s", attn_last_error());
        for (int i = 0; i < 4; i++)
            ck_assert_uint_eq(attn_f32_bits(out[i]), 0x5a5a5a5au);
    }
    attn_st_close(&f);
    free(img);
}
END_TEST

/* Empty files, empty tensors anywhere (they hold no byte), holes between ranges, padding. */
START_TEST(st_valid_edge_cases)
{
    static const char *const ok[] = {
        "{}",
        "{\"__metadata__\":{}}   \n",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
        "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}",
        "{\"b\":{\"dtype\":\"F16\",\"shape\":[1,1,1,1,1,1,1,2],\"data_offsets\":[12,16],\"x\":1}}",
        "{\"c\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[0,2]}}",
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        size_t len;
        unsigned char *img = st_image(ok[k], NULL, 16, &len);
        attn_st_file f;
        ck_assert_msg(attn_st_parse(img, len, &f) == ATTN_OK, "%s: %s", ok[k], attn_last_error());
        ck_assert_uint_eq(f.data_len, 16);
        attn_st_close(&f);
        free(img);
    }
}
END_TEST

/* ---- malformed images ------------------------------------------------------------------------ */

typedef struct bad_header {
    const char *what;
    const char *header;  /* JSON text */
    size_t ndata;        /* data bytes after it */
    const char *mention; /* in the message: the tensor's name or the problem */
} bad_header;

#define E(name, dtype, shape, offs) "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape \
                                    ",\"data_offsets\":" offs "}"

static const bad_header bad_headers[] = {
    {"non-object JSON", "[1,2]", 0, "not a JSON object"},
    {"string JSON", "\"weights\"", 0, "not a JSON object"},
    {"invalid JSON", "{\"w\":", 0, "not valid JSON"},
    {"bytes after the JSON", "{} x", 0, "after"},
    {"control byte", "{\"w\x01\":1}", 0, "control byte"},
    {"entry not an object", "{\"w\":[0]}", 0, "'w'"},
    {"missing dtype", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'w'"},
    {"missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "'w'"},
    {"missing offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "'w'"},
    {"dtype twice", "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],"
                    "\"data_offsets\":[0,8]}}", 8, "'w'"},
    {"dtype not a string", "{" E("w", "F32", "[2]", "[0,8]") ",\"v\":{\"dtype\":1,"
                           "\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "'v'"},
    {"unknown dtype", "{" E("w", "F12", "[2]", "[0,8]") "}", 8, "'w'"},
    {"lower-case dtype", "{" E("w", "f32", "[2]", "[0,8]") "}", 8, "'w'"},
    {"shape not an array", "{" E("w", "F32", "2", "[0,8]") "}", 8, "'w'"},
    {"negative dim", "{" E("w", "F32", "[-2]", "[0,8]") "}", 8, "'w'"},
    {"fractional dim", "{" E("w", "F32", "[1.5]", "[0,6]") "}", 8, "'w'"},
    {"dim beyond 2^53", "{" E("w", "U8", "[9007199254740994]", "[0,8]") "}", 8, "'w'"},
    {"dim a string", "{" E("w", "F32", "[\"2\"]", "[0,8]") "}", 8, "'w'"},
    {"more than 8 dims", "{" E("w", "F32", "[1,1,1,1,1,1,1,1,2]", "[0,8]") "}", 8, "'w'"},
    {"element count overflows", "{" E("w", "U8", "[4294967296,4294967296,4294967296]",
                                      "[0,8]") "}", 8, "'w'"},
    {"byte size overflows", "{" E("w", "F64", "[4503599627370496,1024]", "[0,8]") "}", 8, "'w'"},
    {"zero dim after an overflow", "{" E("w", "U8", "[4294967296,4294967296,0]", "[0,0]") "}",
     0, "'w'"},
    {"size mismatch", "{" E("w", "F32", "[3]", "[0,8]") "}", 8, "'w'"},
    {"sub-byte size not whole bytes", "{" E("w", "F4", "[3]", "[0,1]") "}", 8, "'w'"},
    {"offsets not a pair", "{" E("w", "F32", "[2]", "[0]") "}", 8, "'w'"},
    {"offsets a triple", "{" E("w", "F32", "[2]", "[0,8,8]") "}", 8, "'w'"},
    {"offsets negative", "{" E("w", "F32", "[0]", "[-4,-4]") "}", 8, "'w'"},
    {"offsets fractional", "{" E("w", "U8", "[1]", "[0.5,1.5]") "}", 8, "'w'"},
    {"begin after end", "{" E("w", "F32", "[2]", "[8,0]") "}", 8, "'w'"},
    {"range past the end", "{" E("w", "F32", "[4]", "[0,16]") "}", 8, "'w'"},
    {"range far past the end", "{" E("w", "U8", "[8]", "[9007199254740984,9007199254740992]")
     "}", 8, "'w'"},
    {"overlapping ranges", "{" E("a", "F32", "[2]", "[0,8]") "," E("b", "F32", "[2]", "[4,12]")
     "}", 12, "'b'"},
    {"same range twice", "{" E("a", "F32", "[2]", "[0,8]") "," E("b", "U8", "[8]", "[0,8]") "}",
     8, "overlaps"},
    {"duplicate name", "{" E("w", "F32", "[1]", "[0,4]") "," E("w", "F32", "[1]", "[4,8]") "}", 8,
     "'w'"},
    {"metadata not an object", "{\"__metadata__\":[1]}", 0, "__metadata__"},
    {"metadata value not a string", "{\"__metadata__\":{\"format\":1}}", 0, "format"},
    {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__"},
};

START_TEST(st_malformed_headers)
{
    const bad_header *b = &bad_headers[_i];
    size_t len;
    unsigned char *img = st_image(b->header, NULL, b->ndata, &len);
    attn_st_file f;
    memset(&f, 0x5a, sizeof f);
    attn_status st = attn_st_parse(img, len, &f);
    ck_assert_msg(st == ATTN_ERR_FORMAT && mentions(b->mention), "%s: %s '%s', want a format "
                  "error mentioning %s", b->what, attn_status_name(st), attn_last_error(),
                  b->mention);
    ck_assert_msg(file_is_empty(&f), "%s: file not left empty", b->what);
    free(img);
}
END_TEST

/* The preamble: too short for the length, a length past the end or beyond 100 MB. */
START_TEST(st_malformed_preambles)
{
    unsigned char img[24] = "\x10\0\0\0\0\0\0\0{}              ";
    attn_st_file f;
    for (size_t n = 0; n < 8; n++) {
        ck_assert_int_eq(attn_st_parse(img, n, &f), ATTN_ERR_FORMAT);
        ck_assert(mentions("too short") && file_is_empty(&f));
    }
    ck_assert_int_eq(attn_st_parse(img, 23, &f), ATTN_ERR_FORMAT); /* 16-byte header, 15 left */
    ck_assert(mentions("past the end"));
    ck_assert_int_eq(attn_st_parse(img, 24, &f), ATTN_OK);
    attn_st_close(&f);
    memcpy(img, "\x01\xe1\xf5\x05\0\0\0\0", 8); /* 100000001 */
    ck_assert_int_eq(attn_st_parse(img, 24, &f), ATTN_ERR_FORMAT);
    ck_assert(mentions("exceeds"));
    memset(img, 0xff, 8);
    ck_assert_int_eq(attn_st_parse(img, 24, &f), ATTN_ERR_FORMAT);
    ck_assert_int_eq(attn_st_parse(NULL, 8, &f), ATTN_ERR_NULL_POINTER);
}
END_TEST

/* Files: missing, a directory, truncated on disk (the message names the file too). */
START_TEST(st_read_errors)
{
    attn_st_file f;
    const char *missing = tpath("missing.safetensors");
    ck_assert_int_eq(attn_st_read(missing, &f), ATTN_ERR_IO);
    ck_assert(mentions(missing) && mentions("No such file") && file_is_empty(&f));
    ck_assert_int_eq(attn_st_read(tpath(""), &f), ATTN_ERR_IO);
    ck_assert(mentions("not a regular file"));
    const char *empty = tpath("empty.safetensors");
    write_file(empty, "", 0);
    ck_assert_int_eq(attn_st_read(empty, &f), ATTN_ERR_FORMAT);
    size_t len;
    unsigned char *img = st_image("{" E("w", "F32", "[4]", "[0,16]") "}", NULL, 16, &len);
    const char *cut = tpath("cut.safetensors");
    write_file(cut, img, len - 1);
    ck_assert_int_eq(attn_st_read(cut, &f), ATTN_ERR_FORMAT);
    ck_assert_msg(mentions("'w'") && mentions(cut), "%s", attn_last_error());
    ck_assert(file_is_empty(&f));
    free(img);
}
END_TEST

START_TEST(st_write_errors)
{
    float x[2] = {1, 2};
    const float *data[] = {x, x};
    const int ndim[] = {1, 1}, bad_ndim[] = {1, 3};
    const int64_t shape[][2] = {{2, 0}, {2, 0}}, neg[][2] = {{2, 0}, {-1, 0}};
    const char *dup[] = {"a", "a"}, *meta[] = {"a", "__metadata__"}, *ok[] = {"a", "b"};
    const char *path = tpath("w.safetensors");
    ck_assert_int_eq(attn_st_write_f32(path, 2, dup, data, ndim, shape),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert(mentions("'a'"));
    ck_assert_int_eq(attn_st_write_f32(path, 2, meta, data, ndim, shape),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_st_write_f32(path, 2, ok, data, bad_ndim, shape),
                     ATTN_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(attn_st_write_f32(path, 2, ok, data, ndim, neg), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert(mentions("'b'"));
    ck_assert_msg(access(path, F_OK) != 0, "a refused write left a file");
    const char *nodir = tpath("no/such/dir/w.safetensors");
    ck_assert_int_eq(attn_st_write_f32(nodir, 2, ok, data, ndim, shape), ATTN_ERR_IO);
    ck_assert(mentions(nodir));
    /* an empty file is valid */
    ck_assert_int_eq(attn_st_write_f32(path, 0, NULL, NULL, NULL, NULL), ATTN_OK);
    attn_st_file f;
    ck_assert_int_eq(attn_st_read(path, &f), ATTN_OK);
    ck_assert_uint_eq(f.n, 0);
    attn_st_close(&f);
}
END_TEST

/* ---- config.json ----------------------------------------------------------------------------- */

/* bert-base-uncased's config.json as published. */
static const char bert_base[] =
    "{\n"
    "  \"architectures\": [\n"
    "    \"BertForMaskedLM\"\n"
    "  ],\n"
    "  \"attention_probs_dropout_prob\": 0.1,\n"
    "  \"gradient_checkpointing\": false,\n"
    "  \"hidden_act\": \"gelu\",\n"
    "  \"hidden_dropout_prob\": 0.1,\n"
    "  \"hidden_size\": 768,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 3072,\n"
    "  \"layer_norm_eps\": 1e-12,\n"
    "  \"max_position_embeddings\": 512,\n"
    "  \"model_type\": \"bert\",\n"
    "  \"num_attention_heads\": 12,\n"
    "  \"num_hidden_layers\": 12,\n"
    "  \"pad_token_id\": 0,\n"
    "  \"position_embedding_type\": \"absolute\",\n"
    "  \"transformers_version\": \"4.6.0.dev0\",\n"
    "  \"type_vocab_size\": 2,\n"
    "  \"use_cache\": true,\n"
    "  \"vocab_size\": 30522\n"
    "}\n";

static attn_status parse(const char *text, attn_model_config *c)
{
    return attn_model_config_parse(text, strlen(text), c);
}

START_TEST(config_bert_base)
{
    attn_model_config c;
    ck_assert_msg(parse(bert_base, &c) == ATTN_OK, "%s", attn_last_error());
    ck_assert_int_eq(c.vocab_size, 30522);
    ck_assert_int_eq(c.hidden_size, 768);
    ck_assert_int_eq(c.num_layers, 12);
    ck_assert_int_eq(c.num_heads, 12);
    ck_assert_int_eq(c.intermediate_size, 3072);
    ck_assert_int_eq(c.max_positions, 512);
    ck_assert_int_eq(c.type_vocab_size, 2);
    ck_assert_int_eq(c.num_labels, 2);
    ck_assert_int_eq(c.pad_token_id, 0);
    ck_assert(c.layer_norm_eps == 1e-12 && c.initializer_range == 0.02);
    /* not NUL-terminated: only n bytes are read */
    size_t n = strlen(bert_base);
    char *copy = malloc(n);
    memcpy(copy, bert_base, n);
    ck_assert_int_eq(attn_model_config_parse(copy, n, &c), ATTN_OK);
    ck_assert_int_eq(attn_model_config_parse(copy, n - 3, &c), ATTN_ERR_FORMAT);
    free(copy);
}
END_TEST

START_TEST(config_defaults_and_labels)
{
    attn_model_config def = attn_model_config_default(), c;
    ck_assert_int_eq(attn_model_config_check(&def), ATTN_OK);
    ck_assert(def.vocab_size == 30522 && def.hidden_size == 64 && def.num_layers == 2 &&
              def.num_heads == 4 && def.intermediate_size == 256 && def.max_positions == 512 &&
              def.type_vocab_size == 2 && def.num_labels == 2 && def.pad_token_id == 0 &&
              def.layer_norm_eps == 1e-12 && def.initializer_range == 0.02);
    /* absent keys: transformers' BertConfig defaults (BERT-base sizes) */
    attn_model_config base = def;
    base.hidden_size = 768;
    base.num_layers = 12;
    base.num_heads = 12;
    base.intermediate_size = 3072;
    ck_assert_int_eq(parse("{}", &c), ATTN_OK);
    ck_assert(memcmp(&c, &base, sizeof c) == 0);
    ck_assert_int_eq(parse("{\"hidden_size\": 128, \"num_attention_heads\": 4, "
                           "\"layer_norm_eps\": 1e-5}", &c), ATTN_OK);
    ck_assert(c.hidden_size == 128 && c.layer_norm_eps == 1e-5 && c.num_heads == 4 &&
              c.num_layers == 12 && c.vocab_size == 30522);
    ck_assert_int_eq(parse("{\"num_labels\": 5}", &c), ATTN_OK);
    ck_assert_int_eq(c.num_labels, 5);
    /* id2label decides, as in transformers */
    ck_assert_int_eq(parse("{\"num_labels\": 5, \"id2label\": {\"0\": \"neg\", \"1\": \"neu\", "
                           "\"2\": \"pos\"}}", &c), ATTN_OK);
    ck_assert_int_eq(c.num_labels, 3);
    ck_assert_int_eq(parse("{\"id2label\": {\"0\": \"a\"}, \"num_labels\": 4}", &c), ATTN_OK);
    ck_assert_int_eq(c.num_labels, 1);
    ck_assert_int_eq(parse("{\"id2label\": null, \"num_labels\": 4, \"pad_token_id\": null}", &c),
                     ATTN_OK);
    ck_assert(c.num_labels == 4 && c.pad_token_id == 0);
    /* a repeated key: the last value, as Python's json reads it */
    ck_assert_int_eq(parse("{\"hidden_size\": 32, \"hidden_size\": 96}", &c), ATTN_OK);
    ck_assert_int_eq(c.hidden_size, 96);
}
END_TEST

typedef struct bad_config {
    const char *text;
    attn_status want;
    const char *mention;
} bad_config;

static const bad_config bad_configs[] = {
    {"", ATTN_ERR_FORMAT, "JSON"},
    {"{\"hidden_size\": 64", ATTN_ERR_FORMAT, "JSON"},
    {"[]", ATTN_ERR_FORMAT, "object"},
    {"{} {}", ATTN_ERR_FORMAT, "after"},
    {"{\"hidden_size\": \"768\"}", ATTN_ERR_FORMAT, "hidden_size"},
    {"{\"hidden_size\": 7.5}", ATTN_ERR_FORMAT, "hidden_size"},
    {"{\"vocab_size\": 1e300}", ATTN_ERR_FORMAT, "vocab_size"},
    {"{\"num_hidden_layers\": true}", ATTN_ERR_FORMAT, "num_hidden_layers"},
    {"{\"num_labels\": null}", ATTN_ERR_FORMAT, "num_labels"},
    {"{\"layer_norm_eps\": \"1e-12\"}", ATTN_ERR_FORMAT, "layer_norm_eps"},
    {"{\"initializer_range\": [0.02]}", ATTN_ERR_FORMAT, "initializer_range"},
    {"{\"hidden_act\": 1}", ATTN_ERR_FORMAT, "hidden_act"},
    {"{\"model_type\": null}", ATTN_ERR_FORMAT, "model_type"},
    {"{\"id2label\": [\"a\", \"b\"]}", ATTN_ERR_FORMAT, "id2label"},
    {"{\"id2label\": {\"0\": 1}}", ATTN_ERR_FORMAT, "id2label"},
    {"{\"hidden_act\": \"relu\"}", ATTN_ERR_UNSUPPORTED, "relu"},
    {"{\"hidden_act\": \"gelu_new\"}", ATTN_ERR_UNSUPPORTED, "gelu_new"},
    {"{\"position_embedding_type\": \"relative_key\"}", ATTN_ERR_UNSUPPORTED, "relative_key"},
    {"{\"model_type\": \"roberta\"}", ATTN_ERR_UNSUPPORTED, "roberta"},
    {"{\"hidden_size\": 65}", ATTN_ERR_INVALID_ARGUMENT, "hidden_size"},
    {"{\"num_hidden_layers\": 0}", ATTN_ERR_INVALID_ARGUMENT, "num_hidden_layers"},
    {"{\"num_attention_heads\": -4}", ATTN_ERR_INVALID_ARGUMENT, "num_attention_heads"},
    {"{\"id2label\": {}}", ATTN_ERR_INVALID_ARGUMENT, "num_labels"},
    {"{\"pad_token_id\": 30522}", ATTN_ERR_INVALID_ARGUMENT, "pad_token_id"},
    {"{\"pad_token_id\": -1}", ATTN_ERR_INVALID_ARGUMENT, "pad_token_id"},
    {"{\"layer_norm_eps\": 0}", ATTN_ERR_INVALID_ARGUMENT, "layer_norm_eps"},
    {"{\"layer_norm_eps\": 1e400}", ATTN_ERR_INVALID_ARGUMENT, "layer_norm_eps"},
    {"{\"initializer_range\": -0.02}", ATTN_ERR_INVALID_ARGUMENT, "initializer_range"},
    {"{\"vocab_size\": 4503599627370496, \"hidden_size\": 4096, \"num_attention_heads\": 4}", ATTN_ERR_OVERFLOW, "overflows"},
    {"{\"intermediate_size\": 4503599627370496, \"hidden_size\": 1024, \"num_attention_heads\": 1}",
     ATTN_ERR_OVERFLOW, "overflows"},
};

START_TEST(config_malformed)
{
    const bad_config *b = &bad_configs[_i];
    attn_model_config c;
    memset(&c, 0x5a, sizeof c);
    attn_status st = parse(b->text, &c);
    ck_assert_msg(st == b->want && mentions(b->mention), "%s: %s '%s', want %s mentioning %s",
                  b->text, attn_status_name(st), attn_last_error(), attn_status_name(b->want),
                  b->mention);
    const unsigned char *p = (const unsigned char *)&c;
    for (size_t i = 0; i < sizeof c; i++)
        ck_assert_msg(p[i] == 0x5a, "%s: config written on error", b->text);
}
END_TEST

START_TEST(config_check)
{
    attn_model_config c = attn_model_config_default();
    c.hidden_size = 65;
    ck_assert_int_eq(attn_model_config_check(&c), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert(mentions("hidden_size") && mentions("num_attention_heads"));
    c = attn_model_config_default();
    c.layer_norm_eps = NAN;
    ck_assert_int_eq(attn_model_config_check(&c), ATTN_ERR_INVALID_ARGUMENT);
    c = attn_model_config_default();
    c.initializer_range = INFINITY;
    ck_assert_int_eq(attn_model_config_check(&c), ATTN_ERR_INVALID_ARGUMENT);
    c = attn_model_config_default();
    c.reserved[3] = 1;
    ck_assert_int_eq(attn_model_config_check(&c), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert(mentions("reserved"));
    c = attn_model_config_default();
    c.max_positions = INT64_MAX;
    ck_assert_int_eq(attn_model_config_check(&c), ATTN_ERR_OVERFLOW);
    c = attn_model_config_default();
    c.num_layers = (int64_t)1 << 50;
    ck_assert_int_eq(attn_model_config_check(&c), ATTN_ERR_OVERFLOW);
    ck_assert_int_eq(attn_model_config_check(NULL), ATTN_ERR_NULL_POINTER);
}
END_TEST

START_TEST(config_roundtrip)
{
    attn_model_config a = attn_model_config_default(), b;
    const char *path = tpath("config.json");
    ck_assert_int_eq(attn_model_config_write(&a, path), ATTN_OK);
    memset(&b, 0x5a, sizeof b);
    ck_assert_int_eq(attn_model_config_read(path, &b), ATTN_OK);
    ck_assert(memcmp(&a, &b, sizeof a) == 0);
    /* the text transformers reads: the class, the labels, eps spelled as written */
    FILE *fp = fopen(path, "r");
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    static const char *const want[] = {
        "\"BertForSequenceClassification\"", "\"model_type\":\t\"bert\"", "1e-12", "0.02",
        "\"hidden_act\":\t\"gelu\"", "\"LABEL_1\":\t1", "\"1\":\t\"LABEL_1\"",
        "\"classifier_dropout\":\tnull", "\"use_cache\":\ttrue", "\"torch_dtype\":\t\"float32\"",
        "\"problem_type\":\t\"single_label_classification\"", "\"hidden_dropout_prob\":\t0.1"};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        ck_assert_msg(strstr(text, want[k]), "config.json lacks %s:\n%s", want[k], text);
    /* other values, doubles that need 17 digits */
    a.vocab_size = 1000;
    a.hidden_size = 96;
    a.num_layers = 3;
    a.num_heads = 6;
    a.intermediate_size = 384;
    a.max_positions = 128;
    a.type_vocab_size = 1;
    a.num_labels = 7;
    a.pad_token_id = 999;
    a.layer_norm_eps = 1.0 / 3e5;
    a.initializer_range = 0.1 + 0.2;
    ck_assert_int_eq(attn_model_config_write(&a, path), ATTN_OK);
    ck_assert_int_eq(attn_model_config_read(path, &b), ATTN_OK);
    ck_assert(memcmp(&a, &b, sizeof a) == 0);
    /* a configuration that fails the checks is not written */
    a.num_heads = 5;
    ck_assert_int_eq(attn_model_config_write(&a, tpath("bad.json")), ATTN_ERR_INVALID_ARGUMENT);
    ck_assert(access(tpath("bad.json"), F_OK) != 0);
}
END_TEST

START_TEST(config_file_errors)
{
    attn_model_config c = attn_model_config_default();
    const char *missing = tpath("missing.json");
    ck_assert_int_eq(attn_model_config_read(missing, &c), ATTN_ERR_IO);
    ck_assert(mentions(missing));
    const char *relu = tpath("relu.json");
    write_file(relu, "{\"hidden_act\": \"relu\"}", 22);
    ck_assert_int_eq(attn_model_config_read(relu, &c), ATTN_ERR_UNSUPPORTED);
    ck_assert(mentions(relu) && mentions("relu"));
    const char *nodir = tpath("no/such/config.json");
    ck_assert_int_eq(attn_model_config_write(&c, nodir), ATTN_ERR_IO);
    ck_assert(mentions(nodir));
}
END_TEST

static Suite *model_files_suite(void)
{
    Suite *s = suite_create("model_files");
    TCase *t = tcase_create("safetensors");
    tcase_add_checked_fixture(t, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(t, st_write_read_roundtrip);
    tcase_add_test(t, st_convert_dtypes);
    tcase_add_test(t, st_valid_edge_cases);
    tcase_add_loop_test(t, st_malformed_headers, 0,
                        (int)(sizeof bad_headers / sizeof bad_headers[0]));
    tcase_add_test(t, st_malformed_preambles);
    tcase_add_test(t, st_read_errors);
    tcase_add_test(t, st_write_errors);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("config");
    tcase_add_checked_fixture(c, test_tmp_setup, test_tmp_teardown);
    tcase_add_test(c, config_bert_base);
    tcase_add_test(c, config_defaults_and_labels);
    tcase_add_loop_test(c, config_malformed, 0, (int)(sizeof bad_configs / sizeof bad_configs[0]));
    tcase_add_test(c, config_check);
    tcase_add_test(c, config_roundtrip);
    tcase_add_test(c, config_file_errors);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    return attn_check_run(model_files_suite());
}
