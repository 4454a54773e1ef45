/* attn_half.c - f16 / bf16 <-> f32 / f64 conversions (round to nearest even) and typed element
 * access. The bit-twiddling forms are branch-free so compilers vectorise the bulk converters. */
#include "attn_half.h"

#include <math.h>

/* Exponent+mantissa shifted into a float and rescaled by 2^112 gives normals and subnormals
 * exactly (no denormal flushing is ever enabled by this library); Inf/NaN get the f32 all-ones
 * exponent. */
float attn_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;
    float mag = attn_bits_f32(em << 13) * 0x1p112f;
    uint32_t bits = attn_f32_bits(mag);
    if (em >= 0x7c00u)
        bits = 0x7f800000u | (em << 13);
    return attn_bits_f32(bits | sign);
}

float attn_bf16_to_f32(uint16_t h)
{
    return attn_bits_f32((uint32_t)h << 16);
}

uint16_t attn_f32_to_bf16(float f)
{
    uint32_t u = attn_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN, sign kept */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Generic round-to-nearest-even of a finite double to a binary format with `mbits` explicit
 * mantissa bits and exponent range [emin, emax] (normal numbers); returns the rounded value. */
static double round_format(double x, int mbits, int emin, int emax)
{
    double ax = fabs(x);
    if (ax == 0.0 || isnan(x) || isinf(x))
        return x;
    int e;
    frexp(ax, &e); /* ax = f * 2^e, f in [0.5, 1): unbiased exponent e - 1 */
    int exp = e - 1;
    if (exp < emin)
        exp = emin; /* subnormal: fixed quantum */
    double quantum = ldexp(1.0, exp - mbits);
    double r = nearbyint(ax / quantum) * quantum; /* default rounding mode: nearest even */
    if (r >= ldexp(2.0 - ldexp(1.0, -mbits), emax) + quantum / 2)
        r = INFINITY;
    else if (r > ldexp(2.0 - ldexp(1.0, -mbits), emax))
        r = INFINITY;
    return copysign(r, x);
}

uint16_t attn_f32_to_f16(float f)
{
    return attn_f64_to_f16((double)f); /* a float is exact in double: one rounding */
}

uint16_t attn_f64_to_f16(double d)
{
    uint16_t sign = signbit(d) ? 0x8000u : 0;
    if (isnan(d))
        return 0x7e00u | sign;
    double r = fabs(round_format(d, 10, -14, 15));
    if (isinf(r))
        return sign | 0x7c00u;
    if (r == 0.0)
        return sign;
    int e;
    double f = frexp(r, &e); /* r = f * 2^e */
    int exp = e - 1;
    if (exp < -14) /* subnormal: r = m * 2^-24 */
        return sign | (uint16_t)ldexp(r, 24);
    uint16_t mant = (uint16_t)(ldexp(f * 2.0 - 1.0, 10));
    return sign | (uint16_t)((exp + 15) << 10) | mant;
}

uint16_t attn_f64_to_bf16(double d)
{
    if (isnan(d))
        return signbit(d) ? 0xffc0u : 0x7fc0u;
    double r = round_format(d, 7, -126, 127);
    return (uint16_t)(attn_f32_bits((float)r) >> 16); /* r is exactly representable */
}

double attn_load_f64(const void *base, attn_dtype t, int64_t idx)
{
    switch (t) {
    case ATTN_F32: return ((const float *)base)[idx];
    case ATTN_F16: return attn_f16_to_f32(((const uint16_t *)base)[idx]);
    case ATTN_BF16: return attn_bf16_to_f32(((const uint16_t *)base)[idx]);
    case ATTN_U8: return ((const uint8_t *)base)[idx];
    case ATTN_I32: return ((const int32_t *)base)[idx];
    case ATTN_I64: return (double)((const int64_t *)base)[idx]; /* exact below 2^53 */
    }
    return NAN;
}

void attn_store_f64(void *base, attn_dtype t, int64_t idx, double x)
{
    switch (t) {
    case ATTN_F32: ((float *)base)[idx] = (float)x; break;
    case ATTN_F16: ((uint16_t *)base)[idx] = attn_f64_to_f16(x); break;
    case ATTN_BF16: ((uint16_t *)base)[idx] = attn_f64_to_bf16(x); break;
    case ATTN_U8: ((uint8_t *)base)[idx] = x != 0.0; break;
    case ATTN_I32: ((int32_t *)base)[idx] = (int32_t)llrint(x); break; /* caller keeps x in range */
    case ATTN_I64: ((int64_t *)base)[idx] = (int64_t)llrint(x); break;
    }
}

void attn_convert_to_f32_strided(const void *src, attn_dtype t, int64_t n, int64_t stride,
                                 float *dst)
{
    if (t == ATTN_F32) {
        const float *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = s[i * stride];
    } else if (t == ATTN_F16) {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = attn_f16_to_f32(s[i * stride]);
    } else if (t == ATTN_BF16) {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = attn_bf16_to_f32(s[i * stride]);
    } else {
        const uint8_t *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = s[i * stride];
    }
}

void attn_convert_to_f32(const void *src, attn_dtype t, int64_t n, float *dst)
{
    if (t == ATTN_F32)
        memcpy(dst, src, (size_t)n * sizeof(float));
    else
        attn_convert_to_f32_strided(src, t, n, 1, dst);
}

void attn_convert_from_f32(const float *src, int64_t n, attn_dtype t, void *dst)
{
    for (int64_t i = 0; i < n; i++) {
        if (t == ATTN_F32)
            ((float *)dst)[i] = src[i];
        else if (t == ATTN_F16)
            ((uint16_t *)dst)[i] = attn_f32_to_f16(src[i]);
        else if (t == ATTN_BF16)
            ((uint16_t *)dst)[i] = attn_f32_to_bf16(src[i]);
        else
            ((uint8_t *)dst)[i] = src[i] != 0.0f;
    }
}
