/* transfer_fixture.c - the transfer suites' shared set-up (see transfer_fixture.h). */
#include "transfer_fixture.h"

#include <check.h>

#include "attn_rng.h"

attn_transfer_config transfer_fx_config(attn_transfer_mode mode, attn_transfer_score score,
                                        attn_transfer_query query, attn_transfer_act act,
                                        int include_target)
{
    attn_transfer_config c = attn_transfer_config_default();
    c.features = TRANSFER_FX_F;
    c.embed = TRANSFER_FX_M;
    c.sources = TRANSFER_FX_K;
    c.attn_hidden = TRANSFER_FX_H;
    c.mode = mode;
    c.score = score;
    c.query = query;
    c.act = act;
    c.include_target = include_target;
    c.source_weight = 0.7;
    return c;
}

void transfer_fx_batch_fill(transfer_fx_batch *b, uint64_t seed)
{
    for (int i = 0; i < TRANSFER_FX_NT * TRANSFER_FX_F; i++)
        b->xt[i] = (float)attn_rng_uniform(seed, 1, (uint64_t)i, -1.5, 1.5);
    for (int i = 0; i < TRANSFER_FX_NS * TRANSFER_FX_F; i++)
        b->xs[i] = (float)attn_rng_uniform(seed, 2, (uint64_t)i, -1.5, 1.5);
    for (int i = 0; i < TRANSFER_FX_NT; i++)
        b->yt[i] = (uint8_t)(attn_rng_bits(seed, 3, (uint64_t)i) & 1u);
    for (int i = 0; i < TRANSFER_FX_NS * TRANSFER_FX_K; i++)
        b->ys[i] = (uint8_t)(attn_rng_bits(seed, 4, (uint64_t)i) & 1u);
    b->b = (attn_transfer_batch){.n_source = TRANSFER_FX_NS, .n_target = TRANSFER_FX_NT,
                                 .x_source = b->xs, .y_source = b->ys, .x_target = b->xt,
                                 .y_target = b->yt};
}

attn_transfer *transfer_fx_model(attn_backend *be, const attn_transfer_config *cfg,
                                 uint64_t seed)
{
    attn_transfer *t = NULL;
    ck_assert_msg(attn_transfer_create(be, cfg, seed, &t) == ATTN_OK, "%s", attn_last_error());
    return t;
}
