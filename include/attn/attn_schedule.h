/* attn_schedule.h - local-global layer schedules (which layers use a sliding window) and the
 * KV-cache bytes per layer they imply. Part of attn.h. */
#ifndef ATTN_SCHEDULE_H_
#define ATTN_SCHEDULE_H_

#include "attn/attn_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- local-global layer schedule --------------------------------------------------------- */
/* A period of n_local local (sliding-window) layers followed by n_global global ones, repeated
 * and truncated to the model depth. local_first=0 puts the global layers first. */
typedef struct attn_schedule {
    int n_local;
    int n_global;
    int local_first;
    int64_t window_left;     /* of the local layers (Gemma/HF sliding_window W -> W - 1) */
    int64_t rla_state_dk_mult; /* RATTENTION: local layers keep an f32 state of
                                  (mult*Dk) x Dv per KV head; 0 for none */
    int64_t reserved[4];     /* room for later fields; must be zero */
} attn_schedule;

/* Presets: "gemma2" (1:1, W 4096), "gemma3" (5:1, W 1024), "rattention" (3:1, w 512, RLA
 * state 2Dk x Dv), "global" (all global), "mistral" (all local, W 4096). */
ATTN_API attn_status attn_schedule_preset(const char *name, attn_schedule *out);
/* *is_local = 1 if layer (0-based) is a local layer. */
ATTN_API attn_status attn_schedule_is_local(const attn_schedule *s, int layer, int *is_local);
/* KV-cache bytes of one layer for a context of seq tokens: tokens kept (all for global layers,
 * min(seq, window_left + 1) for local) * Hkv * (Dk + Dv) * dtype size, plus the RLA state. */
ATTN_API attn_status attn_schedule_kv_bytes(const attn_schedule *s, int layer, int64_t seq,
                                            int64_t hkv, int64_t dk, int64_t dv,
                                            attn_dtype kv_dtype, int64_t *bytes);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_SCHEDULE_H_ */
