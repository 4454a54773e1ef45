/* attn_fill.c - the conformance fills (see attn_fill.h and docs/conformance.md). */
#include "attn_fill.h"

#include "attn_half.h"
#include "attn_rng.h"

#include <math.h>

#define MASK_BLOCK_Q 4      /* -inf blocks of the additive mask: 4 queries x 16 keys */
#define MASK_BLOCK_K 16
#define MASK_BLOCK_P 0.2    /* fraction of -inf blocks (ggml's FA mask covers ~20%) */
#define MASK_BOOL_P 0.2     /* fraction of keys a boolean mask hides */
#define MASK_ADD_LO (-4.0)  /* finite additive values: a bias that reshapes, never dominates */

double attn_fill_value(attn_fill_mode mode, uint64_t seed, attn_fill_id id, int64_t idx)
{
    double x = attn_rng_uniform(seed, (uint64_t)id, (uint64_t)idx, -1.0, 1.0);
    if (mode == ATTN_FILL_STRESS && id == ATTN_FILL_Q)
        x *= ATTN_FILL_STRESS_Q;
    return x;
}

/* Call fn(t, element offset, logical index, i0..i3) for every element of a view. */
typedef void (*fill_fn)(const attn_tensor *t, int64_t off, int64_t idx, const int64_t ix[4],
                        uint64_t seed, int arg);

static void fill_each(const attn_tensor *t, fill_fn fn, uint64_t seed, int arg)
{
    int64_t ix[4];
    for (ix[0] = 0; ix[0] < t->shape[0]; ix[0]++)
        for (ix[1] = 0; ix[1] < t->shape[1]; ix[1]++)
            for (ix[2] = 0; ix[2] < t->shape[2]; ix[2]++)
                for (ix[3] = 0; ix[3] < t->shape[3]; ix[3]++) {
                    int64_t off = ix[0] * t->stride[0] + ix[1] * t->stride[1] +
                                  ix[2] * t->stride[2] + ix[3] * t->stride[3];
                    int64_t idx = attn_fill_index(t->shape, ix[0], ix[1], ix[2], ix[3]);
                    fn(t, off, idx, ix, seed, arg);
                }
}

static void put_value(const attn_tensor *t, int64_t off, int64_t idx, const int64_t ix[4],
                      uint64_t seed, int arg)
{
    (void)ix;
    attn_fill_mode mode = (attn_fill_mode)(arg >> 8);
    attn_fill_id id = (attn_fill_id)(arg & 0xff);
    attn_store_f64(t->data, t->dtype, off, attn_fill_value(mode, seed, id, idx));
}

void attn_fill_tensor(const attn_tensor *t, attn_fill_mode mode, uint64_t seed, attn_fill_id id)
{
    fill_each(t, put_value, seed, ((int)mode << 8) | (int)id);
}

void attn_fill_dout(const attn_tensor *t, uint64_t seed)
{
    attn_fill_tensor(t, ATTN_FILL_UNIFORM, seed ^ 0x9e3779b97f4a7c15u, ATTN_FILL_V);
}

/* Block ids are keyed by (batch, query block, head, key block) in a second stream. */
static int mask_block_hidden(const attn_tensor *t, const int64_t ix[4], uint64_t seed)
{
    const int64_t nbk = (t->shape[3] + MASK_BLOCK_K - 1) / MASK_BLOCK_K;
    const int64_t nbq = (t->shape[1] + MASK_BLOCK_Q - 1) / MASK_BLOCK_Q;
    const int64_t blk =
        ((ix[0] * nbq + ix[1] / MASK_BLOCK_Q) * t->shape[2] + ix[2]) * nbk + ix[3] / MASK_BLOCK_K;
    return attn_rng_unit(seed, ATTN_FILL_MASK_ADD + 16, (uint64_t)blk) < MASK_BLOCK_P;
}

static void put_mask_add(const attn_tensor *t, int64_t off, int64_t idx, const int64_t ix[4],
                         uint64_t seed, int arg)
{
    (void)arg;
    double x = attn_rng_uniform(seed, ATTN_FILL_MASK_ADD, (uint64_t)idx, MASK_ADD_LO, 0.0);
    if ((t->shape[1] > 1 && attn_fill_row_hidden(ix[1])) || mask_block_hidden(t, ix, seed))
        x = -INFINITY;
    attn_store_f64(t->data, t->dtype, off, x);
}

static void put_mask_bool(const attn_tensor *t, int64_t off, int64_t idx, const int64_t ix[4],
                          uint64_t seed, int arg)
{
    (void)arg;
    int visible = attn_rng_unit(seed, ATTN_FILL_MASK_BOOL, (uint64_t)idx) >= MASK_BOOL_P;
    if (t->shape[1] > 1 && attn_fill_row_hidden(ix[1]))
        visible = 0;
    ((uint8_t *)t->data)[off] = (uint8_t)visible;
}

void attn_fill_mask_add(const attn_tensor *t, uint64_t seed)
{
    fill_each(t, put_mask_add, seed, 0);
}

void attn_fill_mask_bool(const attn_tensor *t, uint64_t seed)
{
    fill_each(t, put_mask_bool, seed, 0);
}
