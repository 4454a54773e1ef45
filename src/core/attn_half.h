/* attn_half.h - conversions between the storage dtypes (f32, f16, bf16, u8, i32, i64) and float/double,
 * plus typed element load/store used by the reference and the host backends. Round to nearest
 * even everywhere; NaN stays NaN, infinities are kept. */
#ifndef ATTN_HALF_H_
#define ATTN_HALF_H_

#include "attn/attn.h"
#include <stdint.h>
#include <string.h>

/* Bit casts between float and its IEEE encoding (memcpy: no aliasing UB, free at -O1+). */
static inline uint32_t attn_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float attn_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float attn_f16_to_f32(uint16_t h);
uint16_t attn_f32_to_f16(float f);
uint16_t attn_f64_to_f16(double d); /* rounded once, directly from double */
float attn_bf16_to_f32(uint16_t h);
uint16_t attn_f32_to_bf16(float f);
uint16_t attn_f64_to_bf16(double d); /* rounded once, directly from double */

/* Element idx (in elements) of an array of dtype t, exactly as a double. */
double attn_load_f64(const void *base, attn_dtype t, int64_t idx);
/* Store x rounded once to dtype t. */
void attn_store_f64(void *base, attn_dtype t, int64_t idx, double x);

/* Convert n elements of dtype t to float (used on hot paths; vectorisable). */
void attn_convert_to_f32(const void *src, attn_dtype t, int64_t n, float *dst);
/* Same with a source element stride. */
void attn_convert_to_f32_strided(const void *src, attn_dtype t, int64_t n, int64_t stride,
                                 float *dst);
/* Convert n floats to dtype t (round to nearest even). */
void attn_convert_from_f32(const float *src, int64_t n, attn_dtype t, void *dst);

#endif /* ATTN_HALF_H_ */
