/* kvcache_decode.h - `attn decode`: a multi-layer decode loop over per-layer query/key/value
 * streams (synthetic, or .npy files dumped from a model) through the library's KV caches, one
 * evicting cache per layer beside a full one; the memory each keeps and how far its attention
 * output strays from the full cache's. The streams, the loop and the report are separate so
 * that the tests and the benchmark drive the loop without the command line. */
#ifndef ATTN_KVCACHE_DECODE_H_
#define ATTN_KVCACHE_DECODE_H_

#include "attn/attn.h"

#include <stddef.h>
#include <stdint.h>

/* ---- streams ----------------------------------------------------------------------------- */

/* The tokens of L layers: per layer l, q[l] [1, T, Hq, Dk], k[l] [1, T, Hkv, Dk], v[l]
 * [1, T, Hkv, Dv] (T = prompt + new), and for SqueezeAttention the layer's input hidden state
 * x[l] and its state after the attention residual y[l], [1, P, 1, D] (data NULL when absent).
 * Host views; any float dtype and strides. */
typedef struct attn_kvcache_streams {
    int layers;
    int64_t prompt, new_tokens, hq, hkv, dk, dv, hidden;
    attn_tensor *q, *k, *v, *x, *y;
    void *owned; /* what the views point into (private) */
} attn_kvcache_streams;

/* The synthetic streams' shape and seed. */
typedef struct attn_kvcache_synth {
    int layers;
    int64_t hq, hkv, dk, dv, prompt, new_tokens;
    uint64_t seed;
} attn_kvcache_synth;

/* Seeded streams whose attention is peaked as real models' is: a sink (token 0) and a few
 * heavy tokens per KV head draw most of it, plus a recency bump, with a sharpness that varies
 * from layer to layer; hidden states whose attention residual is larger in the first layers
 * and the last one (the layers SqueezeAttention keeps). 0, or -1 (printed). */
int attn_kvcache_streams_synth(const attn_kvcache_synth *c, attn_kvcache_streams *s);
/* The files DIR/q_<l>.npy [T, Hq, Dk], k_<l>.npy [T, Hkv, Dk], v_<l>.npy [T, Hkv, Dv] for
 * l = 0, 1, ... while q_<l>.npy exists, and x_<l>.npy, y_<l>.npy [P, D] when present (all
 * layers or none). prompt: P (0: the rows of x_0.npy); new_tokens: decode steps (0: T - P).
 * bf16: read '<u2' arrays as bfloat16. 0, or -1 (printed). */
int attn_kvcache_streams_load(const char *dir, int64_t prompt, int64_t new_tokens, int bf16,
                              attn_kvcache_streams *s);
void attn_kvcache_streams_free(attn_kvcache_streams *s);

/* ---- the loop ---------------------------------------------------------------------------- */

/* One configuration of the loop. */
typedef struct attn_kvcache_run_cfg {
    attn_kv_policy policy;
    int64_t budget;       /* tokens, >= 1 (uniform; the SqueezeAttention b_init is budget / P) */
    int64_t sinks, recent;
    double squeeze;       /* SqueezeAttention's class-3 fraction p of the prompt; 0 = off */
    int squeeze_bf16;     /* round the similarities to bf16 before clustering */
    attn_dtype kv_dtype;
    attn_kvcache_attn_desc attn;
} attn_kvcache_run_cfg;

/* The full cache's outputs of every decode step of every layer, and its time. */
typedef struct attn_kvcache_ref {
    float *out;      /* [L][N][Hq][Dv] */
    double seconds;  /* decode steps of all layers */
} attn_kvcache_ref;

/* One layer's figures. */
typedef struct attn_kvcache_layer {
    int64_t budget;
    int cls;         /* SqueezeAttention class 1..3, 0 without */
    double sim;      /* the layer's similarity (NaN without SqueezeAttention) */
    size_t live_bytes, alloc_bytes, full_bytes;
    double max_abs;  /* max |out - out_full| over the decode steps */
    double mean_cos; /* mean over steps and query heads of cos(out, out_full) */
    double seconds;  /* its decode steps */
} attn_kvcache_layer;

typedef struct attn_kvcache_result {
    attn_kvcache_layer *layer; /* [L] */
    size_t live_bytes, alloc_bytes, full_bytes;
    double max_abs, mean_cos, seconds;
} attn_kvcache_result;

/* The full cache on every layer: prefill, then the decode steps, their outputs kept. */
attn_status attn_kvcache_decode_reference(attn_backend *be, const attn_kvcache_streams *s,
                                          const attn_kvcache_run_cfg *cfg, attn_kvcache_ref *r);
/* The configuration on every layer (prefill: append, attend, evict; each step: append,
 * attend, evict), measured against the reference. r->layer is allocated here. */
attn_status attn_kvcache_decode_run(attn_backend *be, const attn_kvcache_streams *s,
                                    const attn_kvcache_run_cfg *cfg, const attn_kvcache_ref *ref,
                                    attn_kvcache_result *r);
void attn_kvcache_ref_free(attn_kvcache_ref *r);
void attn_kvcache_result_free(attn_kvcache_result *r);

/* ---- the report -------------------------------------------------------------------------- */

/* One row of the sweep: a policy (with or without SqueezeAttention) at a budget. */
typedef struct attn_kvcache_sweep_row {
    attn_kv_policy policy;
    int squeeze;
    int pct;            /* budget, % of the prompt */
    double mem;         /* live bytes / full bytes */
    double max_abs, mean_cos, tokens_per_s;
} attn_kvcache_sweep_row;

/* The SVG plot of 1 - mean cosine (log) against memory (% of the full cache), one line per
 * policy. 0, or -1 (printed). */
int attn_kvcache_sweep_svg(const char *path, const attn_kvcache_sweep_row *rows, int n,
                           const char *title);

#endif /* ATTN_KVCACHE_DECODE_H_ */
