/* attn_schedule.c - local-global layer schedules (which layers use a sliding window) and the
 * KV-cache bytes each layer implies. Presets follow the published models; see
 * docs/semantics.md (converting window conventions). */
#include "attn/attn_schedule.h"
#include "attn_backend_impl.h"

#include <string.h>

typedef struct preset {
    const char *name;
    attn_schedule s;
} preset;

static const preset presets[] = {
    /* Gemma 2: (local, global) repeated, layer 0 local, sliding_window 4096 -> left 4095. */
    {"gemma2", {.n_local = 1, .n_global = 1, .local_first = 1, .window_left = 4095,
              .rla_state_dk_mult = 0}},
    /* Gemma 3: 5 local then 1 global (layer i global iff i % 6 == 5), window 1024. */
    {"gemma3", {.n_local = 5, .n_global = 1, .local_first = 1, .window_left = 1023,
              .rla_state_dk_mult = 0}},
    /* RATTENTION: [local, local, local, global], axlearn w = 512 keys besides the current one,
     * each local layer keeps an f32 linear-attention state of 2Dk x Dv per KV head. */
    {"rattention", {.n_local = 3, .n_global = 1, .local_first = 1, .window_left = 512,
                  .rla_state_dk_mult = 2}},
    /* Mistral 7B v0.1: every layer sliding window W = 4096 (flash-attn left = W - 1). */
    {"mistral", {.n_local = 1, .n_global = 0, .local_first = 1, .window_left = 4095,
               .rla_state_dk_mult = 0}},
    {"global", {.n_local = 0, .n_global = 1, .local_first = 1, .window_left = -1,
              .rla_state_dk_mult = 0}},
};

attn_status attn_schedule_preset(const char *name, attn_schedule *out)
{
    if (!name || !out)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_schedule_preset: %s is NULL",
                         name ? "out" : "name");
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) {
            *out = presets[i].s;
            return attn_ok();
        }
    return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                     "unknown schedule '%s' (gemma2, gemma3, rattention, mistral, global)", name);
}

static attn_status check_schedule(const attn_schedule *s, int layer)
{
    if (!s)
        return attn_fail(ATTN_ERR_NULL_POINTER, "schedule is NULL");
    if (s->n_local < 0 || s->n_global < 0 || s->n_local + s->n_global == 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "schedule: n_local = %d, n_global = %d (need >= 0 and a positive sum)",
                         s->n_local, s->n_global);
    if (s->n_local > 0 && s->window_left < 0)
        return attn_fail(ATTN_ERR_WINDOW, "schedule: local layers need window_left >= 0");
    for (size_t i = 0; i < sizeof s->reserved / sizeof s->reserved[0]; i++)
        if (s->reserved[i] != 0)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "schedule: reserved[%zu] is not zero", i);
    if (s->rla_state_dk_mult < 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "schedule: rla_state_dk_mult < 0");
    if (layer < 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "schedule: layer %d is negative", layer);
    return ATTN_OK;
}

static int is_local(const attn_schedule *s, int layer)
{
    int period = s->n_local + s->n_global;
    int pos = layer % period;
    return s->local_first ? pos < s->n_local : pos >= s->n_global;
}

attn_status attn_schedule_is_local(const attn_schedule *s, int layer, int *local)
{
    attn_status st = check_schedule(s, layer);
    if (st != ATTN_OK)
        return st;
    if (!local)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_schedule_is_local: out is NULL");
    *local = is_local(s, layer);
    return attn_ok();
}

attn_status attn_schedule_kv_bytes(const attn_schedule *s, int layer, int64_t seq, int64_t hkv,
                                   int64_t dk, int64_t dv, attn_dtype kv_dtype, int64_t *bytes)
{
    attn_status st = check_schedule(s, layer);
    if (st != ATTN_OK)
        return st;
    if (!bytes)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_schedule_kv_bytes: out is NULL");
    if (seq < 0 || hkv <= 0 || dk <= 0 || dv <= 0)
        return attn_fail(ATTN_ERR_SHAPE, "attn_schedule_kv_bytes: seq >= 0, hkv, dk, dv > 0");
    size_t esz = attn_dtype_size(kv_dtype);
    if (esz == 0 || kv_dtype == ATTN_U8)
        return attn_fail(ATTN_ERR_DTYPE, "attn_schedule_kv_bytes: KV dtype must be f32/f16/bf16");
    int local = is_local(s, layer);
    int64_t tokens = seq;
    if (local && s->window_left + 1 < seq)
        tokens = s->window_left + 1;
    int64_t row, cache, state = 0, total;
    if (__builtin_mul_overflow(hkv, dk + dv, &row) ||
        __builtin_mul_overflow(row, (int64_t)esz, &row) ||
        __builtin_mul_overflow(row, tokens, &cache))
        return attn_fail(ATTN_ERR_OVERFLOW, "attn_schedule_kv_bytes: size overflows int64");
    if (local && s->rla_state_dk_mult > 0 &&
        (__builtin_mul_overflow(hkv, s->rla_state_dk_mult, &state) ||
         __builtin_mul_overflow(state, dk, &state) || __builtin_mul_overflow(state, dv, &state) ||
         __builtin_mul_overflow(state, (int64_t)sizeof(float), &state)))
        return attn_fail(ATTN_ERR_OVERFLOW, "attn_schedule_kv_bytes: state size overflows");
    if (__builtin_add_overflow(cache, state, &total))
        return attn_fail(ATTN_ERR_OVERFLOW, "attn_schedule_kv_bytes: size overflows int64");
    *bytes = total;
    return attn_ok();
}
