/* attn.h - public C API of the attn library: status codes, tensor views, backends, device
 * buffers, the softmax attention (SDPA) forward call and the local-global layer schedule.
 * Every function returns an attn_status; the library never aborts or exits. */
#ifndef ATTN_ATTN_H_
#define ATTN_ATTN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define ATTN_API __declspec(dllexport)
#else
#define ATTN_API __attribute__((visibility("default")))
#endif

/* ---- status ------------------------------------------------------------------------------ */
typedef enum attn_status {
    ATTN_OK = 0,
    ATTN_ERR_NULL_POINTER = -1000, /* a required pointer argument is NULL */
    ATTN_ERR_INVALID_ARGUMENT,     /* a scalar argument is out of its domain (scale, cap, enum) */
    ATTN_ERR_SHAPE,                /* shapes disagree or a size is not positive */
    ATTN_ERR_DTYPE,                /* dtype not allowed for this tensor */
    ATTN_ERR_STRIDE,               /* negative stride, or an output whose elements overlap */
    ATTN_ERR_OVERFLOW,             /* a size or offset overflows 64-bit / size_t arithmetic */
    ATTN_ERR_HEADS,                /* Hq is not a multiple of Hkv */
    ATTN_ERR_WINDOW,               /* window_left / window_right out of range or inconsistent */
    ATTN_ERR_ALIAS,                /* an output overlaps an input or another output */
    ATTN_ERR_BACKEND = -2000,      /* unknown backend name or bad backend options */
    ATTN_ERR_UNSUPPORTED,          /* valid problem this backend / device cannot run */
    ATTN_ERR_BUFFER,               /* buffer of another backend, or access out of its bounds */
    ATTN_ERR_OUT_OF_MEMORY,
    ATTN_ERR_DEVICE,               /* the device or its runtime failed (message has details) */
    ATTN_ERR_INTERNAL
} attn_status;

/* Short constant name of a status ("ATTN_ERR_SHAPE"). Never NULL. */
ATTN_API const char *attn_status_name(attn_status s);
/* Readable message of the last failing call on this thread ("" after success). */
ATTN_API const char *attn_last_error(void);

/* ---- tensors ----------------------------------------------------------------------------- */
typedef enum attn_dtype {
    ATTN_F32 = 0,
    ATTN_F16 = 1,  /* IEEE binary16 */
    ATTN_BF16 = 2, /* bfloat16 */
    ATTN_U8 = 3    /* boolean masks only: nonzero = visible */
} attn_dtype;

ATTN_API const char *attn_dtype_name(attn_dtype t);
ATTN_API size_t attn_dtype_size(attn_dtype t); /* 0 for an unknown dtype */

typedef struct attn_buffer attn_buffer; /* backend-owned memory (device-resident for opencl) */

/* A 4-D view [batch, seq, heads, dim] with element strides. Exactly one of `data` (host memory)
 * or `buffer` (backend memory) is set; `offset` is a byte offset added to either. Host data must
 * be aligned to its element size. Views into a larger allocation (a KV
 * cache, a BHSD tensor) are expressed with strides; nothing is copied. Strides must be >= 0; a
 * stride may be 0 only on a dimension of size 1, or on a broadcast input. */
typedef struct attn_tensor {
    void *data;
    attn_buffer *buffer;
    size_t offset;
    attn_dtype dtype;
    int64_t shape[4];
    int64_t stride[4];
} attn_tensor;

/* Contiguous [B, S, H, D] (BSHD) and [B, H, S, D] (BHSD) host views, shape still [B, S, H, D]. */
ATTN_API attn_tensor attn_tensor_bshd(void *data, attn_dtype t, int64_t b, int64_t s, int64_t h,
                                      int64_t d);
ATTN_API attn_tensor attn_tensor_bhsd(void *data, attn_dtype t, int64_t b, int64_t s, int64_t h,
                                      int64_t d);

/* ---- backends and buffers ---------------------------------------------------------------- */
typedef struct attn_backend attn_backend;

/* name: "ref" (double-precision ground truth), "cpu" (fast), later "opencl". options: NULL or
 * "key=value,key=value" (cpu: threads=N). */
ATTN_API attn_status attn_backend_open(const char *name, const char *options, attn_backend **out);
ATTN_API void attn_backend_close(attn_backend *be);
ATTN_API const char *attn_backend_name(const attn_backend *be);
/* One line describing the implementation (e.g. "cpu: BLIS 0.9.0 kernels zen3, 2 threads"). */
ATTN_API const char *attn_backend_describe(const attn_backend *be);
/* Names of the built-in backends, NULL-terminated. */
ATTN_API const char *const *attn_backend_list(void);

ATTN_API attn_status attn_buffer_alloc(attn_backend *be, size_t bytes, attn_buffer **out);
ATTN_API void attn_buffer_free(attn_buffer *buf);
ATTN_API size_t attn_buffer_size(const attn_buffer *buf);
ATTN_API attn_status attn_buffer_write(attn_buffer *buf, size_t offset, const void *src,
                                       size_t bytes);
ATTN_API attn_status attn_buffer_read(const attn_buffer *buf, size_t offset, void *dst,
                                      size_t bytes);

/* ---- softmax attention ------------------------------------------------------------------- */
typedef enum attn_align {
    ATTN_ALIGN_TOP_LEFT = 0,    /* query i sits at key position i (PyTorch is_causal) */
    ATTN_ALIGN_BOTTOM_RIGHT = 1 /* query i sits at key position i + Skv - Sq (FA2, decoding) */
} attn_align;

/* Query i (aligned position p = i, or i + Skv - Sq for bottom-right) sees key j iff
 *   (window_left < 0 or j >= p - window_left) and (right bound)
 * where the right bound is j <= p when causal, j <= p + window_right when window_right >= 0, and
 * none otherwise; the boolean mask must be nonzero there. Logit:
 *   s = scale * q.k; if softcap > 0: s = softcap * tanh(s / softcap); s += mask_add.
 * Rows with no visible key (or all logits -inf) give output 0 and LSE -inf. */
typedef struct attn_sdpa_desc {
    float scale;        /* 0 selects 1/sqrt(Dk); must be finite */
    int causal;         /* 0 or 1 */
    attn_align align;   /* alignment of causal and window bounds when Sq != Skv */
    int64_t window_left;  /* visible past keys besides the current one; -1 unlimited */
    int64_t window_right; /* visible future keys; -1 unlimited; must be -1 or 0 when causal */
    float softcap;      /* 0 = none; else > 0 */
    /* Optional masks, shape [B or 1, Sq or 1, Hq or 1, Skv] (the view's dims read as
     * [batch, query, head, key]); size-1 dims broadcast. */
    const attn_tensor *mask_add;  /* f32/f16/bf16, added to the logit (-inf hides the key) */
    const attn_tensor *mask_bool; /* u8, 0 hides the key */
} attn_sdpa_desc;

/* Defaults: scale 1/sqrt(Dk), not causal, bottom-right, unlimited window, no cap, no masks. */
ATTN_API attn_sdpa_desc attn_sdpa_desc_default(void);

/* q [B, Sq, Hq, Dk], k [B, Skv, Hkv, Dk], v [B, Skv, Hkv, Dv], out [B, Sq, Hq, Dv];
 * lse optional (NULL): f32 [B, Sq, Hq, 1], natural log; contiguous [B, H, Sq] is the tensor
 * with strides {Hq*Sq, 1, Sq, 1}. Hq must be a multiple of Hkv (query head h uses KV head
 * h / (Hq/Hkv)). On any error nothing is written to out or lse. */
ATTN_API attn_status attn_sdpa_forward(attn_backend *be, const attn_sdpa_desc *desc,
                                       const attn_tensor *q, const attn_tensor *k,
                                       const attn_tensor *v, const attn_tensor *out,
                                       const attn_tensor *lse);
/* Same checks as attn_sdpa_forward, runs nothing: ATTN_OK iff forward would run. */
ATTN_API attn_status attn_sdpa_supported(attn_backend *be, const attn_sdpa_desc *desc,
                                         const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *v, const attn_tensor *out,
                                         const attn_tensor *lse);

/* Name of the implementation (kernel specialisation) attn_sdpa_forward would run for this call,
 * e.g. "cpu:flash_blis_br64_bc256" or "opencl:flash_fwd[-DDK=64 ...]", written to buf (n bytes,
 * NUL-terminated, truncated if needed). Runs the same checks as attn_sdpa_supported. */
ATTN_API attn_status attn_sdpa_impl_name(attn_backend *be, const attn_sdpa_desc *desc,
                                         const attn_tensor *q, const attn_tensor *k,
                                         const attn_tensor *v, const attn_tensor *out,
                                         const attn_tensor *lse, char *buf, size_t n);

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
#endif /* ATTN_ATTN_H_ */
