/* fuzz_sdpa_validate.c - SDPA validation (attn_sdpa_validate) and the public
 * attn_sdpa_supported on the ref backend, on descriptors and views decoded from the input:
 * shapes (0, negative, huge),
 * strides (0, negative, overflowing), dtypes (invalid enum values too), byte offsets, NULL
 * pointers, masks and lse, placed in ONE 64 KiB host arena, ONE 64 KiB ref buffer or a buffer of
 * another ref handle, so that overlaps are real. Asserts:
 *  - the status is ATTN_OK or a known error with a message; supported() says the same (plus the
 *    buffer-ownership error for the foreign buffer); neither writes to any memory;
 *  - on ATTN_OK, with each view's byte range computed here in 128-bit arithmetic: every view is
 *    well-formed (one of data/buffer, shape > 0, stride >= 0, aligned), no range wraps around the
 *    address space or leaves its buffer, no output overlaps an input or the other output, no two
 *    elements of an output share memory, and the problem holds the views' sizes, addresses and
 *    (normalised) strides;
 *  - tiny valid problems whose views all lie in the arena or buffer run on the ref backend and
 *    change no byte outside the elements of out and lse.
 * Host views outside the arena are legal calls as far as the library can tell (it cannot know
 * the allocation); they are checked for everything but containment and never dereferenced. */
#include "attn_backend_impl.h"
#include "attn_sdpa_problem.h"
#include "fuzz_check.h"

#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { ARENA = 1 << 16, MAX_WORK = 1 << 15, MAX_ENUM = 1 << 12 };
enum { V_Q, V_K, V_V, V_OUT, V_LSE, V_MADD, V_MBOOL, NV };
static const char *const vnames[NV] = {"q", "k", "v", "out", "lse", "mask_add", "mask_bool"};

/* Where a view lives. */
typedef enum place { P_HOST, P_BUF, P_FOREIGN, P_NEITHER, P_BOTH } place;

typedef struct fuzz_env {
    attn_backend *be, *other;
    attn_buffer *buf, *foreign;   /* ARENA bytes each, of be and of other */
    uint8_t *arena;               /* ARENA bytes of host memory */
    uint8_t *pattern;             /* what arena and buffers hold between calls */
    uint8_t *snap_arena, *snap_buf;
} fuzz_env;

/* ---- decoding -------------------------------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static uint8_t rd_u8(rd *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static uint64_t rd_u64(rd *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)rd_u8(r) << (8 * i);
    return v;
}

static int64_t as_i64(uint64_t u)
{
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Mostly lo..hi; else a boundary value; else any 64-bit value. */
static int64_t rd_int(rd *r, int64_t lo, int64_t hi)
{
    static const int64_t special[] = {0, 1, -1, 2, -2, 3, 7, 64, 255, 4096, 16383, 16384, 65536,
                                      INT32_MAX, (int64_t)1 << 32, (int64_t)1 << 40,
                                      (int64_t)1 << 61, (int64_t)1 << 62, INT64_MAX / 2,
                                      INT64_MAX - 1, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    uint8_t sel = rd_u8(r);
    if (sel < 200)
        return lo + sel % (hi - lo + 1);
    if (sel < 248)
        return special[sel % (sizeof special / sizeof special[0])];
    return as_i64(rd_u64(r));
}

static float rd_float(rd *r, float usual)
{
    static const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.125f, 50.0f, 1e30f, FLT_MAX,
                                    FLT_MIN, 1e-45f, -FLT_MAX};
    uint8_t sel = rd_u8(r);
    if (sel < 160)
        return usual;
    if (sel < 240)
        return special[sel % (sizeof special / sizeof special[0])];
    uint32_t bits = (uint32_t)rd_u64(r); /* NaN and Inf among them */
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A dtype: usually `natural` or another valid one, sometimes no attn_dtype at all. */
static attn_dtype rd_dtype(rd *r, attn_dtype natural)
{
    static const int invalid[] = {4, 5, 77, -1, INT_MAX, INT_MIN};
    uint8_t sel = rd_u8(r);
    if (sel < 128)
        return natural;
    if (sel < 240)
        return (attn_dtype)(sel % 4);
    return (attn_dtype)invalid[sel % (sizeof invalid / sizeof invalid[0])];
}

static size_t rd_offset(rd *r)
{
    static const size_t special[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 63, SIZE_MAX / 2,
                                     (size_t)1 << 62, (size_t)1 << 32, ARENA, ARENA - 2,
                                     ARENA + 4};
    uint8_t sel = rd_u8(r);
    if (sel < 128)
        return 0;
    if (sel < 232)
        return 2u * rd_u8(r);
    return special[sel % (sizeof special / sizeof special[0])];
}

static int64_t mul_sat(int64_t a, int64_t b)
{
    int64_t v;
    return __builtin_mul_overflow(a, b, &v) ? INT64_MAX : v;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t v;
    return __builtin_add_overflow(a, b, &v) ? INT64_MAX : v;
}

/* Strides of a layout for shape s: 0 BSHD, 1 BHSD, 2 BSHD with padded rows, 3 dims reversed
 * (D slowest), 4 all zero (broadcast), else decoded one by one. Saturating: the harness itself
 * must stay free of UB on absurd shapes. */
static void rd_strides(rd *r, const int64_t s[4], int64_t st[4])
{
    uint8_t layout = rd_u8(r) % 6;
    int64_t pad = layout == 2 ? rd_u8(r) % 8 : 0;
    static const int order[4][4] = {{3, 2, 1, 0}, {3, 1, 2, 0}, {3, 2, 1, 0}, {0, 1, 2, 3}};
    if (layout < 4) {
        int64_t acc = 1;
        for (int k = 0; k < 4; k++) {
            int d = order[layout][k];
            st[d] = acc;
            acc = mul_sat(acc, add_sat(s[d], k == 0 ? pad : 0));
        }
    } else {
        for (int d = 0; d < 4; d++)
            st[d] = layout == 4 ? 0 : rd_int(r, 0, 64);
    }
}

typedef struct view {
    int present;
    place where;
    attn_tensor t;
} view;

/* One view of shape `s`: placement, dtype, layout, an optional perturbed dim or stride, offset. */
static void rd_view(rd *r, const fuzz_env *e, const int64_t s[4], attn_dtype natural, view *v)
{
    uint8_t kind = rd_u8(r);
    static const place places[8] = {P_HOST, P_HOST, P_HOST, P_BUF, P_BUF, P_FOREIGN, P_NEITHER,
                                    P_BOTH};
    v->present = 1;
    v->where = places[kind & 7];
    memset(&v->t, 0, sizeof v->t);
    v->t.dtype = rd_dtype(r, natural);
    memcpy(v->t.shape, s, sizeof v->t.shape);
    rd_strides(r, s, v->t.stride);
    uint8_t perturb = rd_u8(r);
    if (perturb & 0x80)
        v->t.shape[perturb & 3] = rd_int(r, 0, 9);
    if (perturb & 0x40)
        v->t.stride[(perturb >> 2) & 3] = rd_int(r, -1, 64);
    /* Host addresses 4-byte aligned unless bit 3 asks for any byte. */
    size_t base = rd_u8(r);
    base = (base | (size_t)rd_u8(r) << 8) % ARENA;
    if (!(kind & 8))
        base &= ~(size_t)3;
    size_t off = rd_offset(r);
    if (v->where == P_HOST || v->where == P_BOTH) {
        v->t.data = e->arena + base;
        v->t.offset = off;
    } else {
        v->t.offset = off > SIZE_MAX - base ? off : base + off;
    }
    if (v->where == P_BUF || v->where == P_BOTH)
        v->t.buffer = e->buf;
    if (v->where == P_FOREIGN)
        v->t.buffer = e->foreign;
}

typedef struct call {
    attn_sdpa_desc d;
    view v[NV];
    int null_arg[4]; /* q, k, v, out passed as NULL */
} call;

static void rd_desc(rd *r, attn_sdpa_desc *d)
{
    *d = attn_sdpa_desc_default();
    uint8_t f = rd_u8(r);
    d->causal = f & 1 ? (f & 2 ? (int)rd_int(r, 0, 1) : 1) : 0;
    d->align = f & 4 ? ATTN_ALIGN_TOP_LEFT : ATTN_ALIGN_BOTTOM_RIGHT;
    if (f & 8)
        d->align = (attn_align)rd_int(r, 0, 3);
    d->window_left = f & 16 ? rd_int(r, -1, 15) : -1;
    d->window_right = f & 32 ? rd_int(r, -1, 15) : -1;
    d->scale = rd_float(r, 0.0f);
    d->softcap = rd_float(r, 0.0f);
    if (f & 64)
        d->reserved[rd_u8(r) % 6] = rd_u64(r);
}

/* The problem's sizes, then every view shaped after them (masks broadcast on some dims). */
static void rd_call(rd *r, const fuzz_env *e, call *c)
{
    memset(c, 0, sizeof *c);
    rd_desc(r, &c->d);
    int64_t B = rd_int(r, 1, 3), Sq = rd_int(r, 1, 9), Skv = rd_int(r, 1, 9);
    int64_t Hkv = rd_int(r, 1, 3), group = rd_int(r, 1, 3), Dk = rd_int(r, 1, 8);
    int64_t Dv = rd_int(r, 1, 8), Hq = mul_sat(Hkv, group);
    uint8_t f = rd_u8(r);
    for (int i = 0; i < 4; i++)
        c->null_arg[i] = (f >> (4 + i) & 1) && (rd_u8(r) & 1);
    const int64_t shapes[NV][4] = {
        {B, Sq, Hq, Dk}, {B, Skv, Hkv, Dk}, {B, Skv, Hkv, Dv}, {B, Sq, Hq, Dv}, {B, Sq, Hq, 1},
        {B, Sq, Hq, Skv}, {B, Sq, Hq, Skv}};
    const attn_dtype natural[NV] = {ATTN_F32, ATTN_F32, ATTN_F32, ATTN_F32, ATTN_F32, ATTN_F32,
                                    ATTN_U8};
    for (int i = 0; i < NV; i++) {
        if (i >= V_LSE && !(f >> (i - V_LSE) & 1))
            continue;
        int64_t s[4];
        memcpy(s, shapes[i], sizeof s);
        if (i >= V_MADD) { /* broadcast: bits say which of b, s, h are 1 */
            uint8_t bc = rd_u8(r);
            for (int k = 0; k < 3; k++)
                if (bc >> k & 1)
                    s[k] = 1;
        }
        rd_view(r, e, s, natural[i], &c->v[i]);
    }
    c->d.mask_add = c->v[V_MADD].present ? &c->v[V_MADD].t : NULL;
    c->d.mask_bool = c->v[V_MBOOL].present ? &c->v[V_MBOOL].t : NULL;
}

static const attn_tensor *arg(const call *c, int i)
{
    if (!c->v[i].present || (i <= V_OUT && c->null_arg[i]))
        return NULL;
    return &c->v[i].t;
}

/* ---- the checks ------------------------------------------------------------------------------ */

typedef unsigned __int128 u128;

/* A view's bytes [lo, hi), computed here independently of attn_view.c. */
typedef struct range {
    u128 lo, hi;
    size_t esz;
    int space; /* 0 host, else the buffer's identity: 1 buf, 2 foreign */
} range;

static size_t esize(attn_dtype t)
{
    switch ((int)t) {
    case ATTN_F32: return 4;
    case ATTN_F16: case ATTN_BF16: return 2;
    case ATTN_U8: return 1;
    default: return 0;
    }
}

/* The checks every view of an accepted call must pass, then its range. Only the batch and
 * sequence dims may be 0 (an empty problem); an empty view touches no byte. */
static range view_range(const fuzz_env *e, const view *v, const char *name)
{
    const attn_tensor *t = &v->t;
    range g = {0, 0, esize(t->dtype), 0};
    FUZZ_CHECK(g.esz != 0, "%s: accepted dtype %d", name, (int)t->dtype);
    FUZZ_CHECK(!t->data != !t->buffer, "%s: accepted with data %p, buffer %p", name, t->data,
               (void *)t->buffer);
    __int128 maxoff = 0;
    int empty = 0;
    for (int i = 0; i < 4; i++) {
        FUZZ_CHECK((t->shape[i] > 0 || (t->shape[i] == 0 && i < 2)) && t->stride[i] >= 0,
                   "%s: accepted shape[%d] = %lld, stride %lld", name, i,
                   (long long)t->shape[i], (long long)t->stride[i]);
        empty |= t->shape[i] == 0;
        maxoff += (__int128)(t->shape[i] - 1) * t->stride[i];
    }
    g.lo = (t->data ? (u128)(uintptr_t)t->data : 0) + t->offset;
    g.hi = empty ? g.lo : g.lo + (u128)(maxoff + 1) * g.esz;
    FUZZ_CHECK(g.lo % g.esz == 0, "%s: accepted misaligned at %#llx", name,
               (unsigned long long)g.lo);
    if (t->data) {
        FUZZ_CHECK(g.hi <= (u128)UINTPTR_MAX + 1, "%s: accepted a range past the address space",
                   name);
    } else {
        FUZZ_CHECK(g.hi <= t->buffer->size, "%s: accepted bytes up to %llu of a %zu-byte buffer",
                   name, (unsigned long long)g.hi, t->buffer->size);
        g.space = t->buffer == e->buf ? 1 : 2;
    }
    return g;
}

static int overlap(const range *a, const range *b)
{
    return a->space == b->space && a->lo < b->hi && b->lo < a->hi;
}

static int inside_arena(const fuzz_env *e, const range *g)
{
    return g->space != 0 || (g->lo >= (uintptr_t)e->arena && g->hi <= (uintptr_t)e->arena + ARENA);
}

static int64_t n_elems(const attn_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < 4; i++)
        n = mul_sat(n, t->shape[i]);
    return n;
}

/* Calls f(ctx, element offset) for every element of a view (small views only). An empty view
 * returns at once: its other dims may be huge (an empty batch of 2^40 sequences). */
static void each_elem(const attn_tensor *t, void (*f)(void *, int64_t), void *ctx)
{
    if (n_elems(t) == 0)
        return;
    for (int64_t a = 0; a < t->shape[0]; a++)
        for (int64_t b = 0; b < t->shape[1]; b++)
            for (int64_t c = 0; c < t->shape[2]; c++)
                for (int64_t d = 0; d < t->shape[3]; d++)
                    f(ctx, a * t->stride[0] + b * t->stride[1] + c * t->stride[2] +
                               d * t->stride[3]);
}

typedef struct offsets {
    int64_t *v;
    int64_t n;
} offsets;

static void add_offset(void *ctx, int64_t off)
{
    offsets *o = ctx;
    o->v[o->n++] = off;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* No two elements of an output at the same offset (enumerated; small outputs only). */
static void check_distinct(const attn_tensor *t, const char *name)
{
    int64_t n = n_elems(t);
    if (n > MAX_ENUM || n == 0)
        return;
    offsets o = {malloc(sizeof(int64_t) * (size_t)n), 0};
    FUZZ_CHECK(o.v != NULL, "out of memory");
    each_elem(t, add_offset, &o);
    qsort(o.v, (size_t)n, sizeof *o.v, cmp_i64);
    for (int64_t i = 1; i < n; i++)
        FUZZ_CHECK(o.v[i] != o.v[i - 1], "%s: accepted with two elements at offset %lld", name,
                   (long long)o.v[i]);
    free(o.v);
}

/* Whether two views whose byte ranges overlap share a byte, by enumerating their elements: 1
 * shared, 0 disjoint (interleaved views of one buffer, which the library accepts), -1 too many
 * elements to tell. The byte starts of a's elements are sorted; each element of b is checked
 * against the last of a's starting before it ends. */
typedef struct shared_ctx {
    u128 *start; /* a's element byte starts, sorted */
    int64_t n;
    size_t esz_a, esz_b;
    u128 base_b;
    int hit;
} shared_ctx;

static int cmp_u128(const void *a, const void *b)
{
    u128 x = *(const u128 *)a, y = *(const u128 *)b;
    return (x > y) - (x < y);
}

static void probe_b(void *ctx, int64_t off)
{
    shared_ctx *c = ctx;
    const u128 lo = c->base_b + (u128)off * c->esz_b, hi = lo + c->esz_b;
    int64_t l = 0, r = c->n; /* first start >= hi */
    while (l < r) {
        const int64_t mid = l + (r - l) / 2;
        if (c->start[mid] < hi)
            l = mid + 1;
        else
            r = mid;
    }
    if (l > 0 && c->start[l - 1] + c->esz_a > lo)
        c->hit = 1;
}

static void add_start(void *ctx, int64_t off)
{
    shared_ctx *c = ctx;
    c->start[c->n++] = (u128)off; /* scaled to bytes after enumeration */
}

static int elements_shared(const attn_tensor *a, const range *ga, const attn_tensor *b,
                           const range *gb)
{
    const int64_t na = n_elems(a), nb = n_elems(b);
    if (na > MAX_ENUM || nb > MAX_ENUM)
        return -1;
    shared_ctx c = {malloc(sizeof(u128) * (size_t)(na ? na : 1)), 0, ga->esz, gb->esz, gb->lo, 0};
    FUZZ_CHECK(c.start != NULL, "out of memory");
    each_elem(a, add_start, &c);
    for (int64_t i = 0; i < c.n; i++)
        c.start[i] = ga->lo + c.start[i] * ga->esz;
    qsort(c.start, (size_t)c.n, sizeof *c.start, cmp_u128);
    each_elem(b, probe_b, &c);
    free(c.start);
    return c.hit;
}

/* Overlapping byte ranges are accepted only for views sharing no element; too large to
 * enumerate, they must at least be of the one kind the library may accept (same dtype, shape
 * and strides: interleaved). */
static int disjoint_elements(const attn_tensor *a, const range *ga, const attn_tensor *b,
                             const range *gb)
{
    const int shared = elements_shared(a, ga, b, gb);
    if (shared >= 0)
        return !shared;
    int same = a->dtype == b->dtype;
    for (int i = 0; i < 4; i++)
        same &= a->shape[i] == b->shape[i] && (a->shape[i] < 2 || a->stride[i] == b->stride[i]);
    return same;
}

static void check_operand(const attn_operand *o, const attn_tensor *t, const char *name)
{
    FUZZ_CHECK(o->t == t, "%s: problem holds another view", name);
    if (!t)
        return;
    uint8_t *host = t->data ? t->data : t->buffer->host;
    FUZZ_CHECK(o->ptr == host + t->offset && o->dtype == t->dtype, "%s: problem address/dtype",
               name);
    for (int i = 0; i < 4; i++)
        FUZZ_CHECK(o->stride[i] == (t->shape[i] == 1 ? 0 : t->stride[i]),
                   "%s: problem stride[%d]", name, i);
}

static void check_problem(const call *c, const attn_sdpa_problem *p)
{
    const attn_tensor *q = arg(c, V_Q), *k = arg(c, V_K), *v = arg(c, V_V);
    FUZZ_CHECK(p->B == q->shape[0] && p->Sq == q->shape[1] && p->Hq == q->shape[2] &&
                   p->Dk == q->shape[3] && p->Skv == k->shape[1] && p->Hkv == k->shape[2] &&
                   p->Dv == v->shape[3] && p->group * p->Hkv == p->Hq,
               "problem sizes");
    FUZZ_CHECK(p->window_left >= -1 && p->window_right >= -1 && (!p->causal || !p->window_right),
               "problem window %lld/%lld", (long long)p->window_left,
               (long long)p->window_right);
    const attn_operand *ops[NV] = {&p->q, &p->k, &p->v, &p->out, &p->lse, &p->mask_add,
                                   &p->mask_bool};
    for (int i = 0; i < NV; i++)
        check_operand(ops[i], arg(c, i), vnames[i]);
}

/* Everything an accepted call promises; returns whether all views lie in the arena/buffers. */
static int check_accepted(const fuzz_env *e, const call *c, const attn_sdpa_problem *p)
{
    range g[NV];
    int contained = 1;
    for (int i = 0; i < NV; i++) {
        if (!arg(c, i))
            continue;
        g[i] = view_range(e, &c->v[i], vnames[i]);
        contained &= inside_arena(e, &g[i]);
    }
    for (int o = V_OUT; o <= V_LSE; o++) {
        if (!arg(c, o))
            continue;
        check_distinct(arg(c, o), vnames[o]);
        for (int i = 0; i < NV; i++)
            if (i != o && arg(c, i) && (i != V_OUT || o != V_LSE))
                FUZZ_CHECK(!overlap(&g[o], &g[i]) ||
                               disjoint_elements(arg(c, o), &g[o], arg(c, i), &g[i]),
                           "accepted %s overlapping %s", vnames[o], vnames[i]);
    }
    check_problem(c, p);
    return contained;
}

static int known_status(attn_status s)
{
    return (s >= ATTN_ERR_NULL_POINTER && s <= ATTN_ERR_ALIAS) ||
           (s >= ATTN_ERR_BACKEND && s <= ATTN_ERR_INTERNAL);
}

static int uses_foreign(const call *c)
{
    for (int i = 0; i < NV; i++)
        if (arg(c, i) && c->v[i].where == P_FOREIGN)
            return 1;
    return 0;
}

/* Nothing was written: arena and both buffers still hold the pattern. */
static void check_untouched(const fuzz_env *e, const char *what)
{
    FUZZ_CHECK(memcmp(e->arena, e->pattern, ARENA) == 0 &&
                   memcmp(e->buf->host, e->pattern, ARENA) == 0 &&
                   memcmp(e->foreign->host, e->pattern, ARENA) == 0,
               "%s wrote to memory", what);
}

/* ---- running tiny accepted problems ---------------------------------------------------------- */

/* The elements of out and lse are copied from the result into the snapshot, which must then
 * equal the memory: any other difference is a stray write. */
typedef struct result_view {
    uint8_t *bytes; /* element [0,0,0,0] */
    size_t esz;
    const fuzz_env *e;
} result_view;

static void keep_elem(void *ctx, int64_t off)
{
    const result_view *w = ctx;
    const uint8_t *p = w->bytes + off * (int64_t)w->esz;
    const uint8_t *host = w->e->buf->host;
    uint8_t *snap = p >= w->e->arena && p < w->e->arena + ARENA
                        ? w->e->snap_arena + (p - w->e->arena)
                        : w->e->snap_buf + (p - host);
    memcpy(snap, p, w->esz);
}

static int64_t work(const attn_sdpa_problem *p)
{
    /* Skv = 0 still loads every query row: count it as one key */
    int64_t w = mul_sat(mul_sat(p->B, p->Hq), mul_sat(p->Sq, p->Skv > 0 ? p->Skv : 1));
    return mul_sat(w, add_sat(p->Dk, p->Dv));
}

static void fill_tiled(uint8_t *dst, const rd *r)
{
    if (r->n == 0)
        memset(dst, 0, ARENA);
    for (size_t i = 0; r->n && i < ARENA; i += r->n)
        memcpy(dst + i, r->p, ARENA - i < r->n ? ARENA - i : r->n);
}

/* Inputs from the input's tail, a forward run, then only out and lse elements may differ. */
static void run_forward(fuzz_env *e, const call *c, const attn_sdpa_problem *p, const rd *r)
{
    fill_tiled(e->arena, r);
    fill_tiled(e->buf->host, r);
    memcpy(e->snap_arena, e->arena, ARENA);
    memcpy(e->snap_buf, e->buf->host, ARENA);
    attn_status st = attn_sdpa_forward(e->be, &c->d, arg(c, V_Q), arg(c, V_K), arg(c, V_V),
                                       arg(c, V_OUT), arg(c, V_LSE));
    FUZZ_CHECK(st == ATTN_OK, "forward of a supported problem: %s (%s)", attn_status_name(st),
               attn_last_error());
    const attn_operand *outs[2] = {&p->out, &p->lse};
    for (int i = 0; i < 2; i++)
        if (outs[i]->t) {
            result_view w = {outs[i]->ptr, esize(outs[i]->dtype), e};
            each_elem(outs[i]->t, keep_elem, &w);
        }
    FUZZ_CHECK(memcmp(e->arena, e->snap_arena, ARENA) == 0 &&
                   memcmp(e->buf->host, e->snap_buf, ARENA) == 0,
               "forward wrote outside the elements of out and lse");
    memcpy(e->arena, e->pattern, ARENA);
    memcpy(e->buf->host, e->pattern, ARENA);
}

/* ---- the harness ----------------------------------------------------------------------------- */

static fuzz_env *env(void)
{
    static fuzz_env e;
    if (e.be)
        return &e;
    FUZZ_CHECK(attn_backend_open("ref", NULL, &e.be) == ATTN_OK &&
                   attn_backend_open("ref", NULL, &e.other) == ATTN_OK &&
                   attn_buffer_alloc(e.be, ARENA, &e.buf) == ATTN_OK &&
                   attn_buffer_alloc(e.other, ARENA, &e.foreign) == ATTN_OK,
               "setup: %s", attn_last_error());
    e.arena = aligned_alloc(64, ARENA);
    e.pattern = malloc(ARENA);
    e.snap_arena = malloc(ARENA);
    e.snap_buf = malloc(ARENA);
    FUZZ_CHECK(e.arena && e.pattern && e.snap_arena && e.snap_buf, "out of memory");
    for (size_t i = 0; i < ARENA; i++)
        e.pattern[i] = (uint8_t)(i * 131 + 7);
    memcpy(e.arena, e.pattern, ARENA);
    memcpy(e.buf->host, e.pattern, ARENA);
    memcpy(e.foreign->host, e.pattern, ARENA);
    return &e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_env *e = env();
    rd r = {data, size};
    call c;
    rd_call(&r, e, &c);
    attn_sdpa_problem p;
    attn_status st = attn_sdpa_validate(&c.d, arg(&c, V_Q), arg(&c, V_K), arg(&c, V_V),
                                        arg(&c, V_OUT), arg(&c, V_LSE), &p);
    FUZZ_CHECK(st == ATTN_OK || (known_status(st) && attn_last_error()[0] != '\0'),
               "status %d, message '%s'", (int)st, attn_last_error());
    attn_status sup = attn_sdpa_supported(e->be, &c.d, arg(&c, V_Q), arg(&c, V_K), arg(&c, V_V),
                                          arg(&c, V_OUT), arg(&c, V_LSE));
    attn_status want = st == ATTN_OK && uses_foreign(&c) ? ATTN_ERR_BUFFER : st;
    FUZZ_CHECK(sup == want, "validate %s, supported %s (%s)", attn_status_name(st),
               attn_status_name(sup), attn_last_error());
    FUZZ_CHECK((sup == ATTN_OK) == (attn_last_error()[0] == '\0'), "supported %s, message '%s'",
               attn_status_name(sup), attn_last_error());
    check_untouched(e, "validation");
    if (st != ATTN_OK)
        return 0;
    int contained = check_accepted(e, &c, &p);
    if (sup == ATTN_OK && contained && work(&p) <= MAX_WORK)
        run_forward(e, &c, &p, &r);
    return 0;
}
