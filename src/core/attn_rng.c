/* attn_rng.c - counter-based generator (see attn_rng.h). */
#include "attn_rng.h"

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t attn_rng_bits(uint64_t seed, uint64_t stream, uint64_t index)
{
    /* Two rounds: the key (seed, stream) is mixed first so neighbouring streams decorrelate. */
    uint64_t key = mix64(seed * 0x9e3779b97f4a7c15ull + mix64(stream + 0x632be59bd9b4e019ull));
    return mix64(key + (index + 1) * 0x9e3779b97f4a7c15ull);
}

double attn_rng_unit(uint64_t seed, uint64_t stream, uint64_t index)
{
    return (double)(attn_rng_bits(seed, stream, index) >> 11) * 0x1p-53;
}

double attn_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index, double lo, double hi)
{
    return lo + (hi - lo) * attn_rng_unit(seed, stream, index);
}
