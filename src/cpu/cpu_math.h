/* cpu_math.h - branch-free float helpers for the CPU backend's hot loops: an accurate expf
 * (<= 2 ulp on normal results, exact 0 for -inf and deep underflow, NaN kept) that GCC
 * vectorises, and the multiversioning attribute used by the loops that call it. */
#ifndef ATTN_CPU_MATH_H_
#define ATTN_CPU_MATH_H_

#include "attn_half.h"

#include <stdint.h>
#include <string.h>

/* Hot loops get an x86-64-v3 (AVX2+FMA+F16C) clone next to the baseline one on x86-64 GCC,
 * picked at load time by ifunc. Not "arch=haswell": that clone is chosen by CPU model, so
 * AMD Zen CPUs would get the baseline. Other compilers and architectures build the plain
 * function. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && \
    defined(__linux__)
#define ATTN_CPU_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ATTN_CPU_HOT
#endif


/* exp(x): x = n*ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2), exp(r) by the Cephes
 * form 1 + r + r^2*P(r) (P of degree 5), then 2^n applied as two factors 2^(n/2) so that
 * results down to the subnormal range are scaled exactly and rounded once. Outside [-104, 89]
 * the result is 0 (below half the smallest subnormal) or +inf. n is
 * rounded with the 1.5*2^23 shifter (round to nearest even, no float->int conversion, which
 * would be undefined for NaN and blocks vectorisation under -ftrapping-math). No branches, so
 * loops over arrays vectorise. Measured over all floats: max error 0.99 ulp. */
static inline float attn_cpu_expf(float x)
{
    const float shifter = 0x1.8p23f;
    float t = x * 1.44269504088896341f + shifter;
    float n = t - shifter;
    float r = x - n * 0.693359375f;  /* ln2 high part: 9 significant bits, n*hi exact */
    r = r - n * -2.12194440e-4f;      /* ln2 low part */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t ni = (int32_t)(attn_f32_bits(t) - attn_f32_bits(shifter)); /* n, exactly */
    int32_t n1 = ni >> 1, n2 = ni - n1;
    float s1 = attn_bits_f32((uint32_t)(n1 + 127) << 23);
    float s2 = attn_bits_f32((uint32_t)(n2 + 127) << 23);
    float y = p * s1 * s2;
    /* Out of range: 0 below -104 (incl. -inf), +inf above 89; selected with bit masks because
     * GCC turns ternaries into branches here, which blocks vectorisation. NaN passes through
     * the arithmetic untouched by either mask. */
    uint32_t lo = -(uint32_t)(x < -104.0f), hi = -(uint32_t)(x > 89.0f);
    return attn_bits_f32((attn_f32_bits(y) & ~(lo | hi)) | (hi & 0x7f800000u));
}

/* IEEE binary16 -> float, branch-free (the bit form of attn_f16_to_f32 in attn_half.c):
 * exponent+mantissa shifted into a float and scaled by 2^112 is exact for normals and
 * subnormals; Inf/NaN get the all-ones exponent through a mask. */
static inline float attn_cpu_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, em = h & 0x7fffu;
    uint32_t bits = attn_f32_bits(attn_bits_f32(em << 13) * 0x1p112f);
    uint32_t special = -(uint32_t)(em >= 0x7c00u);
    bits = (bits & ~special) | ((0x7f800000u | (em << 13)) & special);
    return attn_bits_f32(bits | sign);
}

static inline float attn_cpu_bf16_to_f32(uint16_t h)
{
    return attn_bits_f32((uint32_t)h << 16);
}

/* float -> f16 bits, rounded to nearest even, as attn_f32_to_f16 (NaN: 0x7e00 with its sign),
 * branch-free so that loops over it vectorise: normal results by integer rounding at bit 13
 * (a carry out of the mantissa rounds up into the next binade or infinity), subnormal ones by
 * the FPU's own rounding when adding 0.5f (whose ulp is the f16 subnormal quantum 2^-24). */
static inline uint16_t attn_cpu_f32_to_f16(float f)
{
    const uint32_t x = attn_f32_bits(f), sign = (x >> 16) & 0x8000u, u = x & 0x7fffffffu;
    const uint32_t norm = (u + 0xc8000fffu + ((u >> 13) & 1u)) >> 13; /* rebias by -112 */
    const uint32_t sub = attn_f32_bits(attn_bits_f32(u) + 0.5f) - 0x3f000000u;
    const uint32_t is_sub = -(uint32_t)(u < 0x38800000u);  /* below 2^-14 */
    const uint32_t is_big = -(uint32_t)(u >= 0x47800000u); /* 2^16 and up, Inf, NaN */
    const uint32_t is_nan = -(uint32_t)(u > 0x7f800000u);
    const uint32_t big = (0x7c00u & ~is_nan) | (0x7e00u & is_nan);
    return (uint16_t)((norm & ~(is_sub | is_big)) | (sub & is_sub) | (big & is_big) | sign);
}

/* float -> bf16 bits, rounded to nearest even, as attn_f32_to_bf16 (NaN: quiet, sign kept),
 * branch-free. */
static inline uint16_t attn_cpu_f32_to_bf16(float f)
{
    const uint32_t u = attn_f32_bits(f);
    const uint32_t nan = -(uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, q = (u >> 16) | 0x40u;
    return (uint16_t)((r & ~nan) | (q & nan));
}

#endif /* ATTN_CPU_MATH_H_ */
