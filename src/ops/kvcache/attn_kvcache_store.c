/* attn_kvcache_store.c - the storage of a KV cache (attn_kvcache_store.h): allocation in the
 * backend's memory, growth that keeps the contents, row reads and writes (plain memcpy when the
 * backend's buffers are host memory), and the strided views of the slots in use. */
#include "attn_kvcache_store.h"

#include "attn_backend_impl.h"

#include <stdlib.h>
#include <string.h>

size_t attn_kvcache_row_bytes(const attn_kvcache_shape *sh, int which)
{
    return (size_t)(which ? sh->dv : sh->dk) * attn_dtype_size(sh->dtype);
}

void attn_kvcache_store_free(attn_kvcache_store *s)
{
    attn_buffer_free(s->k);
    attn_buffer_free(s->v);
    free(s->pos);
    free(s->score);
    free(s->order);
    free(s->scratch);
    free(s->evict);
    free(s->ks);
    memset(s, 0, sizeof *s);
}

/* Bytes of cap slots of K or V; 0 on overflow. */
static size_t store_bytes(const attn_kvcache_shape *sh, int which, int64_t cap)
{
    size_t n;
    if (__builtin_mul_overflow((size_t)cap, (size_t)sh->hkv, &n) ||
        __builtin_mul_overflow(n, attn_kvcache_row_bytes(sh, which), &n))
        return 0;
    return n;
}

attn_status attn_kvcache_store_alloc(attn_backend *be, const attn_kvcache_shape *sh, int64_t cap,
                                     attn_kvcache_store *s)
{
    memset(s, 0, sizeof *s);
    const size_t kb = store_bytes(sh, 0, cap), vb = store_bytes(sh, 1, cap);
    size_t ne;
    if (cap < 1 || !kb || !vb || __builtin_mul_overflow((size_t)cap, (size_t)sh->hkv, &ne) ||
        ne > SIZE_MAX / sizeof(double))
        return attn_fail(ATTN_ERR_OVERFLOW, "KV cache: %lld slots x %lld KV heads overflow size_t",
                         (long long)cap, (long long)sh->hkv);
    attn_status st = attn_buffer_alloc(be, kb, &s->k);
    if (st == ATTN_OK)
        st = attn_buffer_alloc(be, vb, &s->v);
    if (st != ATTN_OK) {
        attn_kvcache_store_free(s);
        return st;
    }
    s->cap = cap;
    s->pos = malloc(ne * sizeof *s->pos);
    s->score = calloc(ne, sizeof *s->score);
    s->evict = calloc(ne, 1);
    s->order = malloc((size_t)cap * sizeof *s->order);
    s->scratch = malloc(2 * (size_t)cap * sizeof *s->scratch);
    s->ks = malloc(ne * sizeof *s->ks);
    if (!s->pos || !s->score || !s->evict || !s->order || !s->scratch || !s->ks) {
        attn_kvcache_store_free(s);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "KV cache: out of memory for %lld slots",
                         (long long)cap);
    }
    for (size_t e = 0; e < ne; e++)
        s->pos[e] = -1;
    return ATTN_OK;
}

attn_status attn_kvcache_store_write(attn_kvcache_store *s, int which, size_t off,
                                     const void *src, size_t bytes)
{
    attn_buffer *b = which ? s->v : s->k;
    if (b->host) {
        memcpy((char *)b->host + off, src, bytes);
        return ATTN_OK;
    }
    return attn_buffer_write(b, off, src, bytes);
}

attn_status attn_kvcache_store_read(const attn_kvcache_store *s, int which, size_t off,
                                    void *dst, size_t bytes)
{
    const attn_buffer *b = which ? s->v : s->k;
    if (b->host) {
        memcpy(dst, (const char *)b->host + off, bytes);
        return ATTN_OK;
    }
    return attn_buffer_read(b, off, dst, bytes);
}

/* Copy the first `bytes` of K or V from one store to another (through the host when the
 * memory is the device's). */
static attn_status copy_prefix(const attn_kvcache_store *from, attn_kvcache_store *to, int which,
                               size_t bytes)
{
    const attn_buffer *b = which ? from->v : from->k;
    if (!bytes)
        return ATTN_OK;
    if (b->host)
        return attn_kvcache_store_write(to, which, 0, b->host, bytes);
    void *tmp = malloc(bytes);
    if (!tmp)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "KV cache: out of memory growing the storage");
    attn_status st = attn_kvcache_store_read(from, which, 0, tmp, bytes);
    if (st == ATTN_OK)
        st = attn_kvcache_store_write(to, which, 0, tmp, bytes);
    free(tmp);
    return st;
}

attn_status attn_kvcache_store_grow(attn_backend *be, const attn_kvcache_shape *sh,
                                    attn_kvcache_store *s, int64_t nslot, int64_t need)
{
    if (need <= s->cap)
        return ATTN_OK;
    int64_t cap = s->cap > INT64_MAX / 2 ? INT64_MAX : 2 * s->cap;
    attn_kvcache_store n;
    ATTN_TRY(attn_kvcache_store_alloc(be, sh, cap > need ? cap : need, &n));
    attn_status st = copy_prefix(s, &n, 0, (size_t)nslot * attn_kvcache_row_bytes(sh, 0) *
                                               (size_t)sh->hkv);
    if (st == ATTN_OK)
        st = copy_prefix(s, &n, 1, (size_t)nslot * attn_kvcache_row_bytes(sh, 1) *
                                       (size_t)sh->hkv);
    if (st != ATTN_OK) {
        attn_kvcache_store_free(&n);
        return st;
    }
    const size_t ne = (size_t)nslot * (size_t)sh->hkv;
    memcpy(n.pos, s->pos, ne * sizeof *n.pos);
    memcpy(n.score, s->score, ne * sizeof *n.score);
    attn_kvcache_store_free(s);
    *s = n;
    return ATTN_OK;
}

attn_tensor attn_kvcache_store_view(const attn_kvcache_store *s, const attn_kvcache_shape *sh,
                                    int which, int64_t nslot, int host_data)
{
    attn_buffer *b = which ? s->v : s->k;
    const int64_t d = which ? sh->dv : sh->dk;
    attn_tensor t = {
        .dtype = sh->dtype,
        .shape = {1, nslot, sh->hkv, d},
        .stride = {s->cap * sh->hkv * d, sh->hkv * d, d, 1},
    };
    if (host_data && b->host)
        t.data = b->host;
    else
        t.buffer = b;
    return t;
}
