/* attn_kvcache_store.h - the storage of a KV cache: K and V in the backend's memory, layout
 * [capacity, Hkv, D] each (slot-major, so the slots in use are one strided view), and per
 * (slot, KV head) entry its original position (-1 free) and accumulated score, plus the scratch
 * eviction needs (allocated with the storage so that eviction cannot fail). */
#ifndef ATTN_KVCACHE_STORE_H_
#define ATTN_KVCACHE_STORE_H_

#include "attn/attn.h"

#include <stddef.h>
#include <stdint.h>

typedef struct attn_kvcache_store {
    attn_buffer *k, *v;
    int64_t cap;           /* slots allocated */
    int64_t *pos;          /* [cap * hkv]: entry j * hkv + g; -1 = free */
    double *score;         /* [cap * hkv] */
    int64_t *order;        /* [cap]: a head's live entries (eviction, compaction) */
    int64_t *scratch;      /* [2 cap]: the policies' and the sort's room */
    unsigned char *evict;  /* [cap * hkv] */
    float *ks;             /* [cap * hkv]: an attention's key_score (H2O), reused every step */
} attn_kvcache_store;

/* The sizes a store is made of: Hkv, Dk, Dv and the storage dtype. */
typedef struct attn_kvcache_shape {
    int64_t hkv, dk, dv;
    attn_dtype dtype;
} attn_kvcache_shape;

/* Bytes of one (slot, KV head) row of K (which = 0) or V (which = 1). */
size_t attn_kvcache_row_bytes(const attn_kvcache_shape *sh, int which);

/* A store of `cap` free slots; on error nothing is allocated. */
attn_status attn_kvcache_store_alloc(attn_backend *be, const attn_kvcache_shape *sh, int64_t cap,
                                     attn_kvcache_store *s);
void attn_kvcache_store_free(attn_kvcache_store *s);

/* Grow s to at least `need` slots (doubling), keeping slots [0, nslot); on error s is as it
 * was. */
attn_status attn_kvcache_store_grow(attn_backend *be, const attn_kvcache_shape *sh,
                                    attn_kvcache_store *s, int64_t nslot, int64_t need);

/* Write / read `bytes` at byte offset `off` of K (which = 0) or V (which = 1): memcpy on host
 * backends, the backend's buffer calls elsewhere. */
attn_status attn_kvcache_store_write(attn_kvcache_store *s, int which, size_t off,
                                     const void *src, size_t bytes);
attn_status attn_kvcache_store_read(const attn_kvcache_store *s, int which, size_t off,
                                    void *dst, size_t bytes);

/* The view [1, nslot, Hkv, D] of K or V over slots [0, nslot): the buffer itself, or its host
 * data when host_data and the backend keeps host memory. */
attn_tensor attn_kvcache_store_view(const attn_kvcache_store *s, const attn_kvcache_shape *sh,
                                    int which, int64_t nslot, int host_data);

#endif /* ATTN_KVCACHE_STORE_H_ */
