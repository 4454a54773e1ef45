/* fuzz_safetensors.c - the model's file readers on arbitrary bytes: attn_st_parse (the input as
 * a whole safetensors file) and attn_model_config_parse (the same bytes as config.json).
 * Asserts, besides no crash, UB or leak: a rejection is ATTN_ERR_FORMAT with a message and leaves
 * the file empty; an accepted file is self-consistent: the data section is the bytes after the
 * header, every tensor has a name found by attn_st_find, at most 8 non-negative dims whose
 * product is numel, a byte range inside the data section of exactly numel x its dtype's width,
 * no two names equal, no two non-empty ranges sharing a byte, and attn_st_to_f32 converts the
 * floating dtypes and refuses the others. A config is accepted only if it passes
 * attn_model_config_check; a rejected one is left untouched. */
#include "attn/attn.h"
#include "attn_model_safetensors.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Width in bits of every dtype name the format defines (independently of the reader's table). */
static unsigned dtype_bits(const char *name)
{
    static const struct {
        const char *name;
        unsigned bits;
    } w[] = {{"F64", 64}, {"I64", 64}, {"U64", 64}, {"C64", 64}, {"F32", 32}, {"I32", 32},
             {"U32", 32}, {"F16", 16}, {"BF16", 16}, {"I16", 16}, {"U16", 16}, {"I8", 8},
             {"U8", 8},   {"BOOL", 8}, {"F8_E4M3", 8}, {"F8_E5M2", 8}, {"F8_E8M0", 8},
             {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"F4", 4}};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (strcmp(name, w[i].name) == 0)
            return w[i].bits;
    return 0;
}

static void check_tensor(const attn_st_file *f, const attn_st_tensor *t)
{
    FUZZ_CHECK(t->name != NULL, "tensor without a name");
    FUZZ_CHECK(attn_st_find(f, t->name) != NULL &&
                   strcmp(attn_st_find(f, t->name)->name, t->name) == 0,
               "attn_st_find misses '%s'", t->name);
    FUZZ_CHECK(t->ndim >= 0 && t->ndim <= ATTN_ST_MAX_DIMS, "ndim %d", t->ndim);
    int64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        FUZZ_CHECK(t->shape[d] >= 0, "dim %d = %lld", d, (long long)t->shape[d]);
        FUZZ_CHECK(!__builtin_mul_overflow(numel, t->shape[d], &numel), "numel overflows");
    }
    FUZZ_CHECK(numel == t->numel, "numel %lld, shape product %lld", (long long)t->numel,
               (long long)numel);
    FUZZ_CHECK(t->begin <= t->end && t->end <= f->data_len, "range [%llu, %llu] of %llu",
               (unsigned long long)t->begin, (unsigned long long)t->end,
               (unsigned long long)f->data_len);
    unsigned bits = dtype_bits(t->dtype_name);
    FUZZ_CHECK(bits > 0, "dtype '%s'", t->dtype_name);
    FUZZ_CHECK((unsigned __int128)t->numel * bits == (unsigned __int128)(t->end - t->begin) * 8,
               "%s x %lld in %llu bytes", t->dtype_name, (long long)t->numel,
               (unsigned long long)(t->end - t->begin));

    /* numel <= data_len here, so the conversion's output is small */
    float *out = malloc(sizeof(float) * (size_t)(t->numel + 1));
    FUZZ_CHECK(out != NULL, "out of memory");
    int floating = t->dtype == ATTN_ST_F32 || t->dtype == ATTN_ST_F16 ||
                   t->dtype == ATTN_ST_BF16 || t->dtype == ATTN_ST_F64;
    attn_status st = attn_st_to_f32(f, t, out);
    FUZZ_CHECK(st == (floating ? ATTN_OK : ATTN_ERR_UNSUPPORTED), "to_f32 of %s: %s",
               t->dtype_name, attn_status_name(st));
    free(out);
}

/* Names distinct, non-empty ranges disjoint (inputs are small: pairwise is fine). */
static void check_pairs(const attn_st_file *f)
{
    for (size_t i = 0; i < f->n; i++)
        for (size_t j = i + 1; j < f->n; j++) {
            const attn_st_tensor *a = &f->t[i], *b = &f->t[j];
            FUZZ_CHECK(strcmp(a->name, b->name) != 0, "name '%s' twice", a->name);
            FUZZ_CHECK(a->begin == a->end || b->begin == b->end || a->end <= b->begin ||
                           b->end <= a->begin,
                       "'%s' and '%s' overlap", a->name, b->name);
        }
}

static void fuzz_safetensors(const uint8_t *data, size_t size)
{
    attn_st_file f;
    memset(&f, 0x5a, sizeof f);
    attn_status st = attn_st_parse(data, size, &f);
    if (st != ATTN_OK) {
        FUZZ_CHECK(st == ATTN_ERR_FORMAT && attn_last_error()[0] != '\0', "rejected with %s '%s'",
                   attn_status_name(st), attn_last_error());
        FUZZ_CHECK(f.n == 0 && f.t == NULL && f.data == NULL && f.mem == NULL,
                   "rejected file not left empty");
        return;
    }
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--)
        hlen = hlen << 8 | data[k];
    FUZZ_CHECK(size >= 8 && hlen <= size - 8 && f.data == data + 8 + hlen &&
                   f.data_len == size - 8 - hlen,
               "data section");
    for (size_t i = 0; i < f.n; i++)
        check_tensor(&f, &f.t[i]);
    check_pairs(&f);
    attn_st_close(&f);
}

static void fuzz_config(const uint8_t *data, size_t size)
{
    attn_model_config c, poison;
    memset(&poison, 0x5a, sizeof poison);
    c = poison;
    attn_status st = attn_model_config_parse((const char *)data, size, &c);
    if (st != ATTN_OK) {
        FUZZ_CHECK(st == ATTN_ERR_FORMAT || st == ATTN_ERR_UNSUPPORTED ||
                       st == ATTN_ERR_INVALID_ARGUMENT || st == ATTN_ERR_OVERFLOW,
                   "config rejected with %s", attn_status_name(st));
        FUZZ_CHECK(attn_last_error()[0] != '\0', "config rejected without a message");
        FUZZ_CHECK(memcmp(&c, &poison, sizeof c) == 0, "rejected config written");
        return;
    }
    FUZZ_CHECK(attn_model_config_check(&c) == ATTN_OK, "accepted config fails its check: %s",
               attn_last_error());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_safetensors(data, size);
    fuzz_config(data, size);
    return 0;
}
