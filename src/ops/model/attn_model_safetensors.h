/* attn_model_safetensors.h - the safetensors file format (an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and byte range, then the data):
 * parsing and validating a header from memory, reading a file, converting a tensor to f32,
 * writing f32 tensors. */
#ifndef ATTN_MODEL_SAFETENSORS_H_
#define ATTN_MODEL_SAFETENSORS_H_

#include <stddef.h>
#include <stdint.h>

#include "attn/attn_core.h"

#define ATTN_ST_MAX_DIMS 8

typedef enum attn_st_dtype {
    ATTN_ST_F32, ATTN_ST_F16, ATTN_ST_BF16, ATTN_ST_F64,
    ATTN_ST_I64, ATTN_ST_I32, ATTN_ST_I16, ATTN_ST_I8, ATTN_ST_U8, ATTN_ST_BOOL,
    ATTN_ST_OTHER /* a dtype the format knows that attn does not read (F8_*, U16, ...) */
} attn_st_dtype;

typedef struct attn_st_tensor {
    char *name;
    attn_st_dtype dtype;
    char dtype_name[16]; /* as written in the header, for messages */
    int ndim;
    int64_t shape[ATTN_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* byte range within the data section */
} attn_st_tensor;

typedef struct attn_st_file {
    size_t n;             /* tensors */
    attn_st_tensor *t;
    const unsigned char *data; /* the data section */
    uint64_t data_len;
    void *mem;            /* what attn_st_read owns (a mapping or a heap copy) */
    size_t mem_len;
    int mapped;
} attn_st_file;

/* Parses and validates a whole file image buf[0..len): header length within the file, JSON
 * object of tensors (and an optional "__metadata__" of strings), known dtype names, shapes of
 * non-negative dims whose byte size matches the range, ranges inside the data section that do not
 * overlap, no overflow anywhere. f->data points into buf (not owned). On error f is left empty and
 * the message (attn_last_error) names the tensor and what is wrong. */
attn_status attn_st_parse(const unsigned char *buf, size_t len, attn_st_file *f);
/* Reads (maps) path and parses it; f owns the memory until attn_st_close. */
attn_status attn_st_read(const char *path, attn_st_file *f);
void attn_st_close(attn_st_file *f);
/* The tensor named `name`, or NULL. */
const attn_st_tensor *attn_st_find(const attn_st_file *f, const char *name);
/* Converts a floating tensor (F32, F16, BF16, F64) to f32 into dst[numel];
 * ATTN_ERR_UNSUPPORTED naming the tensor and dtype otherwise. */
attn_status attn_st_to_f32(const attn_st_file *f, const attn_st_tensor *t, float *dst);
/* Writes n f32 tensors (names, row-major data, ndim, shapes) to path, header padded with spaces
 * to a multiple of 8 bytes, tensors in the given order, "__metadata__": {"format": "pt"}. */
attn_status attn_st_write_f32(const char *path, size_t n, const char *const *names,
                              const float *const *data, const int *ndim,
                              const int64_t (*shape)[2]);

#endif /* ATTN_MODEL_SAFETENSORS_H_ */
