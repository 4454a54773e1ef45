/* attn_npy.h - reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0) for the
 * `attn` tool: typed n-d arrays in native byte order with element strides, plus the conversions
 * `attn run` and `attn compare` need (to double, to the library's storage dtypes). */
#ifndef ATTN_NPY_H_
#define ATTN_NPY_H_

#include "attn/attn.h"

#include <stddef.h>
#include <stdint.h>

#define ATTN_NPY_MAXDIM 64  /* NumPy 2 limit (32 before); more is rejected */
#define ATTN_NPY_ERRLEN 320 /* size of the error buffers below */

/* Element types a file may hold. U16 is how bfloat16 is stored (NumPy has no bf16). */
typedef enum attn_npy_dtype {
    ATTN_NPY_F32 = 0, /* '<f4' */
    ATTN_NPY_F16,     /* '<f2' */
    ATTN_NPY_F64,     /* '<f8' */
    ATTN_NPY_U16,     /* '<u2' (bf16 bit patterns when the user says so) */
    ATTN_NPY_U8,      /* '|u1' */
    ATTN_NPY_BOOL,    /* '|b1' */
    ATTN_NPY_I32,     /* '<i4' (positions) */
    ATTN_NPY_I64      /* '<i8' */
} attn_npy_dtype;

typedef struct attn_npy {
    attn_npy_dtype dtype;
    int ndim;                         /* 0 for a scalar */
    int64_t shape[ATTN_NPY_MAXDIM];
    int64_t stride[ATTN_NPY_MAXDIM];  /* element strides: C order, or reversed for Fortran order */
    int fortran_order;
    int64_t count;                    /* product of the shape (1 for a scalar) */
    void *data;                       /* count elements, native byte order; owned (malloc) */
} attn_npy;

/* Name ("f32", "bf16/u16", ...) and element size of a file dtype. */
const char *attn_npy_dtype_name(attn_npy_dtype t);
size_t attn_npy_dtype_size(attn_npy_dtype t);

/* Parse a whole .npy image held in memory. On success *a owns a fresh copy of the data (byte
 * swapped to native order); returns 0. On any malformation returns -1, leaves *a empty and puts
 * a readable message in err (ATTN_NPY_ERRLEN bytes). Never reads outside buf[0, len). */
int attn_npy_parse(const void *buf, size_t len, attn_npy *a, char *err);
/* The same, taking over buf (malloc'd, len bytes): on success the data is moved to its front and
 * it becomes a->data (so a big file is never held twice); on error it is freed. */
int attn_npy_parse_owned(void *buf, size_t len, attn_npy *a, char *err);
/* Read a .npy file (through attn_npy_parse_owned); messages prefixed with the path. */
int attn_npy_load(const char *path, attn_npy *a, char *err);
/* Write data (count elements of dtype t, C order, native = little-endian) as a version 1.0 file
 * with a 64-byte aligned header. Returns 0, or -1 with a message. */
int attn_npy_save(const char *path, attn_npy_dtype t, int ndim, const int64_t *shape,
                  const void *data, char *err);
void attn_npy_free(attn_npy *a);

/* Element offset (in elements) of the element with C-order linear index i. */
int64_t attn_npy_offset(const attn_npy *a, int64_t i);
/* Element at storage offset off, exactly as a double; bf16 selects how U16 is read (else as an
 * integer). */
double attn_npy_get(const attn_npy *a, int64_t off, int bf16);
/* All elements widened to double in C order into dst[count]. */
void attn_npy_to_f64(const attn_npy *a, int bf16, double *dst);
/* Writes "(2, 3, 4)" (NumPy's spelling) into buf. */
void attn_npy_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

/* Make a floating array usable as a library tensor of dtype *t: f32/f16 as is, U16 as bf16 when
 * bf16 != 0, f64 converted in place to f32 (storage order and strides kept). *inexact counts
 * f64 values that f32 cannot hold exactly. Returns -1 with a message for other dtypes. */
int attn_npy_as_float_tensor(attn_npy *a, int bf16, attn_dtype *t, int64_t *inexact, char *err);

#endif /* ATTN_NPY_H_ */
