/* cpu_memo.c - constant tables derived from a call's parameters (the decode step's RoPE
 * rotations, say), kept by a cpu backend between calls: a few entries keyed by bytes, each
 * built once under the backend's lock and handed out with a reference count, so concurrent
 * calls on one backend share them safely and an entry in use is never replaced. A key that
 * finds no free entry, or a table past MEMO_MAX_BYTES, gets a private buffer freed on release.
 * Rebuilding such a table on every call cost the RATTENTION decode step up to half its time
 * (the rows written, then read by the other thread's core). */
#include "cpu_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MEMO_SLOTS 4
#define MEMO_MAX_BYTES ((size_t)64 << 20)

typedef struct memo_entry {
    unsigned char key[ATTN_CPU_MEMO_KEY_MAX];
    size_t key_len, bytes;
    void *buf;
    int refs;
    uint64_t used; /* the memo's clock at the last hit (least recently used goes first) */
} memo_entry;

struct attn_cpu_memo {
    pthread_mutex_t lock;
    memo_entry e[MEMO_SLOTS];
    uint64_t clock;
};

attn_cpu_memo *attn_cpu_memo_new(void)
{
    attn_cpu_memo *m = calloc(1, sizeof *m);
    if (m && pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void attn_cpu_memo_free(attn_cpu_memo *m)
{
    if (!m)
        return;
    for (int i = 0; i < MEMO_SLOTS; i++)
        free(m->e[i].buf);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static memo_entry *find(attn_cpu_memo *m, const void *key, size_t key_len, size_t bytes)
{
    for (int i = 0; i < MEMO_SLOTS; i++) {
        memo_entry *e = &m->e[i];
        if (e->buf && e->key_len == key_len && e->bytes == bytes &&
            memcmp(e->key, key, key_len) == 0)
            return e;
    }
    return NULL;
}

/* The least recently used entry no call holds (empty ones first), else NULL. */
static memo_entry *victim(attn_cpu_memo *m)
{
    memo_entry *v = NULL;
    for (int i = 0; i < MEMO_SLOTS; i++) {
        memo_entry *e = &m->e[i];
        if (e->refs == 0 && (!v || !e->buf || (v->buf && e->used < v->used)))
            v = e;
    }
    return v;
}

/* A new entry for key holding buf (taken over). */
static memo_entry *install(attn_cpu_memo *m, memo_entry *e, const void *key, size_t key_len,
                           size_t bytes, void *buf)
{
    free(e->buf);
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->bytes = bytes;
    e->buf = buf;
    e->refs = 0;
    return e;
}

const void *attn_cpu_memo_get(attn_cpu_memo *m, const void *key, size_t key_len, size_t bytes,
                              void (*build)(void *buf, const void *ctx), const void *ctx,
                              attn_cpu_memo_hold *held)
{
    held->entry = NULL;
    held->own = NULL;
    if (!m || key_len > ATTN_CPU_MEMO_KEY_MAX || bytes > MEMO_MAX_BYTES) {
        held->own = malloc(bytes ? bytes : 1);
        if (held->own)
            build(held->own, ctx);
        return held->own;
    }
    pthread_mutex_lock(&m->lock);
    memo_entry *e = find(m, key, key_len, bytes);
    if (!e) {
        memo_entry *v = victim(m);
        void *buf = malloc(bytes ? bytes : 1);
        if (buf) {
            build(buf, ctx); /* under the lock: a call with the same key waits, then hits */
            if (v)
                e = install(m, v, key, key_len, bytes, buf);
            else
                held->own = buf;
        }
    }
    if (e) {
        e->refs++;
        e->used = ++m->clock;
        held->entry = e;
    }
    pthread_mutex_unlock(&m->lock);
    return e ? e->buf : held->own;
}

void attn_cpu_memo_release(attn_cpu_memo *m, attn_cpu_memo_hold *held)
{
    free(held->own);
    held->own = NULL;
    if (held->entry) {
        pthread_mutex_lock(&m->lock);
        ((memo_entry *)held->entry)->refs--;
        pthread_mutex_unlock(&m->lock);
        held->entry = NULL;
    }
}
