/* attn_explain_random.c - the random baseline: each row's tokens get a random permutation of
 * 1 .. (its token count), padding 0; a Fisher-Yates shuffle on the counter-based generator. */
#include "attn_explain_impl.h"

#include "attn_rng.h"

/* Row b draws from stream RANDOM_STREAM + b, step t (swap partner of slot t) at index t: a
 * row's permutation depends on the seed, its place in the batch and its token count only. */
#define RANDOM_STREAM (0x52414e44ull << 32) /* "RAND" */

/* Shuffles 1 .. T into the row's first T slots (64-bit draws reduced modulo t + 1: a bias
 * below 2^-40 for any sequence length), then moves slot t to the t-th token position from the
 * last down: that position is at or after t, so no slot is overwritten before it is read. */
static void random_row(const attn_model_input *in, int64_t b, uint64_t seed, float *row)
{
    const int64_t S = in->seq;
    int64_t T = 0;
    for (int64_t s = 0; s < S; s++)
        T += attn_explain_is_token(in, b, s);
    for (int64_t t = 0; t < T; t++)
        row[t] = (float)(t + 1);
    for (int64_t t = T - 1; t > 0; t--) {
        const int64_t r = (int64_t)(attn_rng_bits(seed, RANDOM_STREAM + (uint64_t)b,
                                                  (uint64_t)t) % (uint64_t)(t + 1));
        const float v = row[t];
        row[t] = row[r];
        row[r] = v;
    }
    for (int64_t s = S - 1, t = T - 1; s >= 0; s--)
        row[s] = attn_explain_is_token(in, b, s) ? row[t--] : 0.0f;
}

void attn_explain_random(const attn_model_input *in, uint64_t seed, float *scores)
{
    for (int64_t b = 0; b < in->batch; b++)
        random_row(in, b, seed, scores + b * in->seq);
}
