/* attn_rng.h - counter-based random numbers: the value at (seed, stream, index) is a pure
 * function of the three, so fills are identical for any thread count or device and any single
 * element of a failing case can be regenerated. */
#ifndef ATTN_RNG_H_
#define ATTN_RNG_H_

#include <stdint.h>

/* 64 random bits for counter `index` of `stream` under `seed` (SplitMix64 finaliser applied
 * to a Weyl sequence keyed by seed and stream). */
uint64_t attn_rng_bits(uint64_t seed, uint64_t stream, uint64_t index);
/* Uniform double in [0, 1) with 53 random bits. */
double attn_rng_unit(uint64_t seed, uint64_t stream, uint64_t index);
/* Uniform in [lo, hi). */
double attn_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index, double lo, double hi);

#endif /* ATTN_RNG_H_ */
