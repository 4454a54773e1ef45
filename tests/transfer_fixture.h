/* transfer_fixture.h - what the transfer model's suites share: the tiny sizes, a configuration
 * of each option, a seeded batch of source and target examples, and the model created on a
 * backend (the backends are model_fixture.h's). */
#ifndef ATTN_TRANSFER_FIXTURE_H_
#define ATTN_TRANSFER_FIXTURE_H_

#include "attn/attn.h"

#include <stdint.h>

/* F features, m embedding, K sources, h attention hidden; NT target and NS source examples. */
enum { TRANSFER_FX_F = 6, TRANSFER_FX_M = 5, TRANSFER_FX_K = 4, TRANSFER_FX_H = 3,
       TRANSFER_FX_NT = 5, TRANSFER_FX_NS = 6 };

/* The fixture's sizes with the given options (source_weight 0.7, to see its factor). */
attn_transfer_config transfer_fx_config(attn_transfer_mode mode, attn_transfer_score score,
                                        attn_transfer_query query, attn_transfer_act act,
                                        int include_target);

/* Features uniform in [-1.5, 1.5), labels fair coins, under seed. */
typedef struct transfer_fx_batch {
    float xt[TRANSFER_FX_NT * TRANSFER_FX_F], xs[TRANSFER_FX_NS * TRANSFER_FX_F];
    uint8_t yt[TRANSFER_FX_NT], ys[TRANSFER_FX_NS * TRANSFER_FX_K];
    attn_transfer_batch b; /* points into this struct: fill it in place, never copy it */
} transfer_fx_batch;
void transfer_fx_batch_fill(transfer_fx_batch *b, uint64_t seed);

/* attn_transfer_create on be under seed; fails the test on error. */
attn_transfer *transfer_fx_model(attn_backend *be, const attn_transfer_config *cfg,
                                 uint64_t seed);

#endif /* ATTN_TRANSFER_FIXTURE_H_ */
