/* attn_cases.c - conformance cases: canonical names (format and parse), the built-in list,
 * case files, feature groups, and the per-case policy parameters. See docs/conformance.md. */
#include "attn_cases.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- defaults, descriptor, cost ------------------------------------------------------------- */

void attn_case_default(attn_case *c)
{
    memset(c, 0, sizeof *c);
    c->b = c->sq = c->skv = c->hq = c->hkv = 1;
    c->dk = c->dv = 64;
    c->align = ATTN_ALIGN_BOTTOM_RIGHT;
    c->wl = c->wr = -1;
    c->mask_add = c->mask_bool = ATTN_MASK_NONE;
    c->dt_q = c->dt_kv = c->dt_out = ATTN_F32;
    c->layout = ATTN_LAYOUT_BSHD;
    c->fill = ATTN_FILL_UNIFORM;
}

attn_sdpa_desc attn_case_desc(const attn_case *c)
{
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.scale = (float)c->scale;
    d.causal = c->causal;
    d.align = c->align;
    d.window_left = c->wl;
    d.window_right = c->wr;
    d.softcap = (float)c->cap;
    return d;
}

/* Keys of row i that the causal/window band leaves visible (masks aside). */
static int64_t band_width(const attn_case *c, int64_t i)
{
    int64_t pos = i + (c->align == ATTN_ALIGN_BOTTOM_RIGHT ? c->skv - c->sq : 0);
    int64_t lo = 0, hi = c->skv;
    int64_t wr = c->causal ? 0 : c->wr;
    if (c->wl >= 0 && pos - c->wl > lo)
        lo = pos - c->wl;
    if (wr >= 0 && pos + wr + 1 < hi)
        hi = pos + wr + 1;
    return hi > lo ? hi - lo : 0;
}

double attn_case_cost(const attn_case *c)
{
    double keys = 0;
    for (int64_t i = 0; i < c->sq; i++)
        keys += (double)band_width(c, i);
    return 2.0 * (double)(c->b * c->hq) * keys * (double)(c->dk + c->dv);
}

/* ---- features ------------------------------------------------------------------------------- */

static const char *const feature_names[ATTN_FEAT_COUNT] = {
    "causal-tl", "causal-br", "window", "mask-add", "mask-bool", "mask-bcast", "softcap", "gqa",
    "dk!=dv", "f16", "bf16", "lse", "bhsd", "kv-cache", "stress", "batch2", "decode", "long"};

const char *attn_feature_name(attn_feature f)
{
    return f < ATTN_FEAT_COUNT ? feature_names[f] : "?";
}

static int has_dtype(const attn_case *c, attn_dtype t)
{
    return c->dt_q == t || c->dt_kv == t || c->dt_out == t;
}

unsigned attn_case_features(const attn_case *c)
{
    const int full = ATTN_MDIM_B | ATTN_MDIM_S | ATTN_MDIM_H;
    const struct { int on; attn_feature f; } t[] = {
        {c->causal && c->align == ATTN_ALIGN_TOP_LEFT, ATTN_FEAT_CAUSAL_TL},
        {c->causal && c->align == ATTN_ALIGN_BOTTOM_RIGHT, ATTN_FEAT_CAUSAL_BR},
        {c->wl >= 0 || (!c->causal && c->wr >= 0), ATTN_FEAT_WINDOW},
        {c->mask_add != ATTN_MASK_NONE, ATTN_FEAT_MASK_ADD},
        {c->mask_bool != ATTN_MASK_NONE, ATTN_FEAT_MASK_BOOL},
        {(c->mask_add != ATTN_MASK_NONE && c->mask_add != full) ||
             (c->mask_bool != ATTN_MASK_NONE && c->mask_bool != full), ATTN_FEAT_BROADCAST},
        {c->cap > 0, ATTN_FEAT_SOFTCAP},
        {c->hq != c->hkv, ATTN_FEAT_GQA},
        {c->dk != c->dv, ATTN_FEAT_DK_DV},
        {has_dtype(c, ATTN_F16), ATTN_FEAT_F16},
        {has_dtype(c, ATTN_BF16), ATTN_FEAT_BF16},
        {c->lse, ATTN_FEAT_LSE},
        {c->layout == ATTN_LAYOUT_BHSD, ATTN_FEAT_BHSD},
        {c->layout == ATTN_LAYOUT_CACHE, ATTN_FEAT_CACHE},
        {c->fill == ATTN_FILL_STRESS, ATTN_FEAT_STRESS},
        {c->b > 1, ATTN_FEAT_BATCH},
        {c->sq <= 3 && c->skv >= 64, ATTN_FEAT_DECODE},
        {c->sq >= 2048 || c->skv >= 2048, ATTN_FEAT_LONG},
    };
    unsigned m = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].on)
            m |= 1u << t[i].f;
    return m;
}

/* ---- canonical name ------------------------------------------------------------------------- */

static const char *const layout_names[] = {"bshd", "bhsd", "cache", NULL};
static const char *const dtype_names[] = {"f32", "f16", "bf16", NULL};

/* Appends to a bounded buffer; remembers the full length like snprintf. */
typedef struct sbuf {
    char *p;
    size_t size, len;
} sbuf;

static void sb_add(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = s->len < s->size ? s->size - s->len : 0;
    int k = vsnprintf(room ? s->p + s->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        s->len += (size_t)k;
}

static void mask_dims(sbuf *s, const char *key, int m)
{
    if (m == ATTN_MASK_NONE)
        return;
    sb_add(s, " %s=%s%s%s%s", key, m & ATTN_MDIM_B ? "b" : "", m & ATTN_MDIM_S ? "s" : "",
           m & ATTN_MDIM_H ? "h" : "", m == 0 ? "-" : "");
}

int attn_case_format(const attn_case *c, char *buf, size_t size)
{
    sbuf s = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    sb_add(&s, "sdpa b%lld sq%lld skv%lld hq%lld hkv%lld dk%lld dv%lld", (long long)c->b,
           (long long)c->sq, (long long)c->skv, (long long)c->hq, (long long)c->hkv,
           (long long)c->dk, (long long)c->dv);
    const char *al = c->align == ATTN_ALIGN_TOP_LEFT ? "tl" : "br";
    if (c->causal)
        sb_add(&s, " causal=%s", al);
    else if ((c->wl >= 0 || c->wr >= 0) && c->align == ATTN_ALIGN_TOP_LEFT)
        sb_add(&s, " align=tl"); /* bottom-right is the default */
    if (c->wl >= 0)
        sb_add(&s, " wl=%lld", (long long)c->wl);
    if (c->wr >= 0)
        sb_add(&s, " wr=%lld", (long long)c->wr);
    if (c->cap > 0)
        sb_add(&s, " cap=%.9g", c->cap);
    if (c->scale != 0)
        sb_add(&s, " scale=%.9g", c->scale);
    mask_dims(&s, "mask_add", c->mask_add);
    mask_dims(&s, "mask_bool", c->mask_bool);
    sb_add(&s, " dt=%s:%s:%s", dtype_names[c->dt_q], dtype_names[c->dt_kv],
           dtype_names[c->dt_out]);
    sb_add(&s, " layout=%s", layout_names[c->layout]);
    if (c->fill == ATTN_FILL_STRESS)
        sb_add(&s, " fill=stress");
    if (c->lse)
        sb_add(&s, " lse");
    return (int)s.len;
}

/* ---- parsing -------------------------------------------------------------------------------- */

static int perr(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && n)
        vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Whole-string integer in [lo, hi]. */
static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!isdigit((unsigned char)*s) && *s != '-')
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_real(const char *s, double lo, double hi, double *out)
{
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int choice(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int parse_mask(const char *s, int *m)
{
    *m = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    for (; *s; s++) {
        int bit = *s == 'b' ? ATTN_MDIM_B : *s == 's' ? ATTN_MDIM_S : *s == 'h' ? ATTN_MDIM_H : 0;
        if (!bit || (*m & bit))
            return -1;
        *m |= bit;
    }
    return *m ? 0 : -1;
}

/* dt=q:kv:out, or one dtype for all three. */
static int parse_dtypes(const char *s, attn_case *c)
{
    char tmp[64];
    if (strlen(s) >= sizeof tmp)
        return -1;
    strcpy(tmp, s);
    attn_dtype *dst[3] = {&c->dt_q, &c->dt_kv, &c->dt_out};
    int k = 0;
    for (char *save = NULL, *t = strtok_r(tmp, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
        int v = choice(t, dtype_names);
        if (v < 0 || k == 3)
            return -1;
        *dst[k++] = (attn_dtype)v;
    }
    if (k == 1)
        c->dt_kv = c->dt_out = c->dt_q;
    return k == 1 || k == 3 ? 0 : -1;
}

/* Size tokens: a name prefix followed by digits ("skv512"); longest prefixes first. */
static int parse_size(const char *tok, attn_case *c, int *dseen)
{
    static const struct { const char *p; size_t off; } keys[] = {
        {"skv", offsetof(attn_case, skv)}, {"sq", offsetof(attn_case, sq)},
        {"hkv", offsetof(attn_case, hkv)}, {"hq", offsetof(attn_case, hq)},
        {"dk", offsetof(attn_case, dk)},   {"dv", offsetof(attn_case, dv)},
        {"b", offsetof(attn_case, b)},     {"d", 0}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t n = strlen(keys[i].p);
        if (strncmp(tok, keys[i].p, n) != 0 || !isdigit((unsigned char)tok[n]))
            continue;
        int64_t v;
        if (parse_int(tok + n, 1, (int64_t)1 << 40, &v))
            return -1;
        if (strcmp(keys[i].p, "d") == 0) { /* d64: dk = dv = 64 */
            c->dk = c->dv = v;
            *dseen = 1;
        } else {
            *(int64_t *)((char *)c + keys[i].off) = v;
        }
        return 1;
    }
    return 0;
}

/* key=value tokens; returns 1 when consumed, 0 unknown key, -1 bad value. */
static int parse_keyval(const char *key, const char *val, attn_case *c)
{
    int v;
    if (strcmp(key, "causal") == 0 || strcmp(key, "align") == 0) {
        v = strcmp(val, "tl") == 0 ? 0 : strcmp(val, "br") == 0 ? 1 : -1;
        if (v < 0)
            return -1;
        c->align = v ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
        c->causal |= key[0] == 'c';
        return 1;
    }
    if (strcmp(key, "wl") == 0 || strcmp(key, "wr") == 0)
        return parse_int(val, -1, (int64_t)1 << 40, key[1] == 'l' ? &c->wl : &c->wr) ? -1 : 1;
    if (strcmp(key, "cap") == 0)
        return parse_real(val, 0, 1e30, &c->cap) ? -1 : 1;
    if (strcmp(key, "scale") == 0)
        return parse_real(val, -1e30, 1e30, &c->scale) ? -1 : 1;
    if (strcmp(key, "mask_add") == 0)
        return parse_mask(val, &c->mask_add) ? -1 : 1;
    if (strcmp(key, "mask_bool") == 0)
        return parse_mask(val, &c->mask_bool) ? -1 : 1;
    if (strcmp(key, "dt") == 0)
        return parse_dtypes(val, c) ? -1 : 1;
    if (strcmp(key, "layout") == 0) {
        if ((v = choice(val, layout_names)) < 0)
            return -1;
        c->layout = (attn_layout)v;
        return 1;
    }
    if (strcmp(key, "fill") == 0) {
        static const char *const fills[] = {"uniform", "stress", NULL};
        if ((v = choice(val, fills)) < 0)
            return -1;
        c->fill = (attn_fill_mode)v;
        return 1;
    }
    return 0;
}

static int parse_token(char *tok, attn_case *c, int *dseen, char *err, size_t errsize)
{
    if (strcmp(tok, "sdpa") == 0)
        return 0;
    if (strcmp(tok, "lse") == 0) {
        c->lse = 1;
        return 0;
    }
    if (strcmp(tok, "causal") == 0) { /* bare flag: bottom-right */
        c->causal = 1;
        return 0;
    }
    char *eq = strchr(tok, '=');
    if (eq) {
        *eq = '\0';
        int r = parse_keyval(tok, eq + 1, c);
        if (r == 1)
            return 0;
        return perr(err, errsize, r == 0 ? "unknown key '%s'" : "bad value '%s' for '%s'",
                    r == 0 ? tok : eq + 1, tok);
    }
    int r = parse_size(tok, c, dseen);
    if (r == 1)
        return 0;
    return perr(err, errsize, r == 0 ? "unknown token '%s'" : "bad size '%s'", tok);
}

int attn_case_parse(const char *name, attn_case *c, char *err, size_t errsize)
{
    attn_case_default(c);
    char buf[1024];
    if (strlen(name) >= sizeof buf)
        return perr(err, errsize, "case name too long");
    strcpy(buf, name);
    int dseen = 0, ntok = 0;
    for (char *save = NULL, *t = strtok_r(buf, " \t\r\n", &save); t;
         t = strtok_r(NULL, " \t\r\n", &save), ntok++)
        if (parse_token(t, c, &dseen, err, errsize))
            return -1;
    if (!ntok)
        return perr(err, errsize, "empty case name");
    return 0;
}

/* ---- case files ----------------------------------------------------------------------------- */

typedef struct vec {
    attn_case *v;
    size_t n, cap;
    int oom;
} vec;

static void vec_push(vec *a, const attn_case *c)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        attn_case *nv = realloc(a->v, cap * sizeof *nv);
        if (!nv) {
            a->oom = 1;
            return;
        }
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = *c;
}

attn_case *attn_cases_read(const char *path, size_t *n, char *err, size_t errsize)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perr(err, errsize, "%s: %s", path, strerror(errno));
        return NULL;
    }
    vec a = {0};
    char line[1024], msg[200];
    int lineno = 0, bad = 0;
    while (!bad && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        attn_case c;
        if (attn_case_parse(line, &c, msg, sizeof msg)) {
            perr(err, errsize, "%s:%d: %s", path, lineno, msg);
            bad = 1;
        } else {
            vec_push(&a, &c);
        }
    }
    fclose(f);
    if (a.oom && !bad)
        perr(err, errsize, "%s: out of memory", path);
    if (bad || a.oom) {
        free(a.v);
        return NULL;
    }
    *n = a.n;
    return a.v ? a.v : calloc(1, sizeof(attn_case));
}

/* ---- the built-in list ---------------------------------------------------------------------- */

#define QUICK_MAX_COST 4e6 /* reference flops of a --quick case */

typedef struct builder {
    vec a;
    int quick;     /* build the --quick subset */
    unsigned seen; /* cheap cases added so far: every second becomes a quick case */
} builder;

static void add(builder *bd, const attn_case *c)
{
    int cheap = attn_case_cost(c) <= QUICK_MAX_COST;
    int pick = cheap && bd->seen++ % 2 == 0;
    if (!bd->quick || pick)
        vec_push(&bd->a, c);
}

static const int64_t dims[] = {32, 64, 80, 128, 256};
static const int64_t heads[][2] = {{1, 1}, {4, 1}, {8, 1}, {8, 2}, {4, 4}, {2, 2}};
static const int64_t seqs[] = {1, 3, 17, 64, 113, 512};

/* A plain case whose head dim, heads, batch and lse rotate with k; big shapes get fewer heads
 * and smaller dims so the reference stays within the time budget. */
static attn_case base(int64_t sq, int64_t skv, unsigned k)
{
    attn_case c;
    attn_case_default(&c);
    c.sq = sq;
    c.skv = skv;
    c.dk = c.dv = dims[k % 5];
    c.hq = heads[k % 6][0];
    c.hkv = heads[k % 6][1];
    c.b = k % 4 == 3 ? 2 : 1;
    c.lse = k % 3 == 0;
    while (attn_case_cost(&c) > 3e9 && c.hq > 1) {
        c.hq /= 2;
        c.hkv = c.hkv > 1 ? c.hkv / 2 : 1;
    }
    while (attn_case_cost(&c) > 3e9 && c.dk > 32)
        c.dk = c.dv = c.dk / 2;
    return c;
}

static void group_shapes(builder *bd)
{
    unsigned k = 0;
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < 6; j++, k++) {
            attn_case c = base(seqs[i], seqs[j], k);
            add(bd, &c);
        }
}

static void group_long(builder *bd)
{
    static const char *const names[] = {
        "sdpa b1 sq1 skv2048 hq8 hkv2 dk128 dv128 dt=f32:f16:f32 layout=bshd lse",
        "sdpa b2 sq1 skv2048 hq8 hkv1 dk64 dv64 causal=br dt=f32:bf16:f32 layout=cache",
        "sdpa b1 sq3 skv2048 hq4 hkv1 dk64 dv64 causal=br dt=f32:f32:f32 layout=bshd",
        "sdpa b1 sq17 skv2048 hq4 hkv4 dk80 dv80 causal=br wl=127 dt=f32:f32:f32 layout=bhsd lse",
        "sdpa b1 sq64 skv2048 hq2 hkv1 dk64 dv64 mask_bool=s dt=f32:f32:f32 layout=bshd",
        "sdpa b1 sq512 skv2048 hq1 hkv1 dk32 dv32 causal=br mask_add=s dt=f32:f32:f32 "
        "layout=bshd",
        "sdpa b1 sq2048 skv2048 hq1 hkv1 dk64 dv64 causal=tl dt=f32:f32:f32 layout=bshd lse",
        "sdpa b1 sq2048 skv2048 hq2 hkv1 dk128 dv128 causal=br wl=127 dt=f16:f16:f16 "
        "layout=bshd",
        "sdpa b1 sq2048 skv2048 hq2 hkv2 dk64 dv64 wl=16 wr=16 mask_bool=bsh dt=f32:f32:f32 "
        "layout=bshd lse",
        "sdpa b1 sq2048 skv2048 hq8 hkv2 dk128 dv128 dt=f32:f32:f32 layout=bshd",
        "sdpa b1 sq2048 skv2048 hq8 hkv1 dk64 dv64 causal=br dt=bf16:bf16:bf16 layout=bhsd",
        "sdpa b2 sq2048 skv113 hq2 hkv1 dk80 dv80 causal=tl cap=30 dt=f32:f32:f32 layout=bshd",
        "sdpa b1 sq113 skv2048 hq4 hkv2 dk256 dv256 causal=br mask_add=bsh dt=f32:f16:f32 "
        "layout=cache fill=stress lse",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        attn_case c;
        if (attn_case_parse(names[i], &c, NULL, 0) == 0)
            add(bd, &c);
    }
}

static void group_causal(builder *bd)
{
    static const int64_t shapes[][2] = {{17, 64}, {64, 17}, {113, 512}, {3, 17}, {1, 113},
                                        {64, 64}, {113, 113}, {512, 512}, {17, 113}, {512, 113}};
    unsigned k = 7;
    for (size_t i = 0; i < 10; i++)
        for (int al = 0; al < 2; al++, k++) {
            attn_case c = base(shapes[i][0], shapes[i][1], k);
            c.causal = 1;
            c.align = al ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
            add(bd, &c);
        }
}

/* Windows {0, 16, 127, >= Skv} in four forms: causal (both alignments), two-sided, left-only. */
static void group_window(builder *bd)
{
    static const int64_t shapes[][2] = {{113, 113}, {64, 512}, {512, 512}, {17, 64}, {113, 512}};
    unsigned k = 3;
    for (int w = 0; w < 4; w++)
        for (int form = 0; form < 4; form++, k++) {
            const int64_t *s = shapes[k % 5];
            attn_case c = base(s[0], s[1], k);
            int64_t win = w == 0 ? 0 : w == 1 ? 16 : w == 2 ? 127 : c.skv + (k % 2);
            c.wl = win;
            c.causal = form < 2;
            c.align = form == 1 || form == 3 ? ATTN_ALIGN_TOP_LEFT : ATTN_ALIGN_BOTTOM_RIGHT;
            if (form == 2)
                c.wr = win;
            add(bd, &c);
        }
    attn_case c = base(64, 113, 5); /* right-only windows */
    c.wr = 16;
    add(bd, &c);
    c = base(113, 64, 8);
    c.wr = 0;
    c.align = ATTN_ALIGN_TOP_LEFT;
    add(bd, &c);
}

/* Additive, boolean and both masks over the broadcast shapes; some causal, some batch 2. */
static void group_mask(builder *bd)
{
    static const int bcast[] = {ATTN_MDIM_B | ATTN_MDIM_S | ATTN_MDIM_H, ATTN_MDIM_S, 0,
                                ATTN_MDIM_B | ATTN_MDIM_H, ATTN_MDIM_H, ATTN_MDIM_S | ATTN_MDIM_H,
                                ATTN_MDIM_B | ATTN_MDIM_S};
    static const int64_t shapes[][2] = {{17, 64}, {64, 113}, {113, 512}, {3, 17},
                                        {64, 64}, {1, 512},  {17, 17}};
    unsigned k = 1;
    for (int m = 0; m < 7; m++)
        for (int kind = 0; kind < 3; kind++, k++) {
            const int64_t *s = shapes[k % 7];
            attn_case c = base(s[0], s[1], k);
            if (kind != 1)
                c.mask_add = bcast[m];
            if (kind != 0)
                c.mask_bool = bcast[(m + kind) % 7];
            c.b = k % 2 ? 2 : 1;
            c.causal = k % 3 == 0;
            c.dt_q = k % 5 == 2 ? ATTN_F16 : ATTN_F32;
            add(bd, &c);
        }
}

static void group_softcap(builder *bd)
{
    static const double caps[] = {50, 30, 5, 1};
    static const int64_t shapes[][2] = {{64, 64}, {113, 512}, {17, 113}, {1, 512}};
    unsigned k = 2;
    for (int i = 0; i < 4; i++)
        for (int stress = 0; stress < 2; stress++, k++) {
            attn_case c = base(shapes[(i + stress) % 4][0], shapes[(i + stress) % 4][1], k);
            c.cap = caps[i];
            c.fill = stress ? ATTN_FILL_STRESS : ATTN_FILL_UNIFORM;
            c.causal = k % 2;
            add(bd, &c);
        }
}

static void group_dtype(builder *bd)
{
    static const attn_dtype combos[][3] = {
        {ATTN_F16, ATTN_F16, ATTN_F16},   {ATTN_BF16, ATTN_BF16, ATTN_BF16},
        {ATTN_F16, ATTN_F16, ATTN_F32},   {ATTN_BF16, ATTN_BF16, ATTN_F32},
        {ATTN_F32, ATTN_F16, ATTN_F32},   {ATTN_F32, ATTN_BF16, ATTN_F32},
        {ATTN_F32, ATTN_F32, ATTN_F16},   {ATTN_F32, ATTN_F32, ATTN_BF16},
        {ATTN_F16, ATTN_BF16, ATTN_F32},  {ATTN_BF16, ATTN_F16, ATTN_BF16}};
    static const int64_t shapes[][2] = {{17, 64}, {113, 113}, {1, 512}, {64, 512}, {3, 17}};
    unsigned k = 4;
    for (int i = 0; i < 10; i++)
        for (int rep = 0; rep < 2; rep++, k++) {
            const int64_t *s = shapes[k % 5];
            attn_case c = base(s[0], s[1], k);
            c.dt_q = combos[i][0];
            c.dt_kv = combos[i][1];
            c.dt_out = combos[i][2];
            c.causal = rep;
            c.lse = k % 2;
            add(bd, &c);
        }
}

static void group_dkdv(builder *bd)
{
    static const int64_t dd[][2] = {{64, 128}, {128, 64}, {32, 80}, {256, 128}, {80, 32},
                                    {128, 256}};
    static const int64_t shapes[][2] = {{17, 113}, {64, 64}, {113, 17}, {3, 512}};
    for (unsigned k = 0; k < 6; k++) {
        attn_case c = base(shapes[k % 4][0], shapes[k % 4][1], k + 1);
        c.dk = dd[k][0];
        c.dv = dd[k][1];
        c.causal = k % 2;
        c.lse = 1;
        add(bd, &c);
    }
}

/* bhsd and KV-cache views, combined with the features whose indexing they stress. */
static void group_layout(builder *bd)
{
    static const int64_t shapes[][2] = {{17, 113}, {64, 64}, {113, 512}, {1, 113}, {3, 64},
                                        {64, 17}};
    unsigned k = 0;
    for (int lay = 1; lay <= 2; lay++)
        for (int v = 0; v < 6; v++, k++) {
            attn_case c = base(shapes[v][0], shapes[v][1], k + 2);
            c.layout = (attn_layout)lay;
            c.hq = v % 2 ? 8 : 4;
            c.hkv = v % 3 ? 2 : 1;
            c.causal = v == 1 || v == 4;
            c.mask_add = v == 2 ? ATTN_MDIM_S | ATTN_MDIM_H : ATTN_MASK_NONE;
            c.mask_bool = v == 5 ? ATTN_MDIM_B | ATTN_MDIM_S : ATTN_MASK_NONE;
            c.wl = v == 3 ? 16 : -1;
            c.dt_kv = v == 4 ? ATTN_F16 : ATTN_F32;
            c.dt_out = v == 0 ? ATTN_BF16 : ATTN_F32;
            c.lse = v % 2 == 0;
            c.b = lay == 2 ? 2 : 1;
            add(bd, &c);
        }
}

static void group_stress(builder *bd)
{
    static const int64_t shapes[][2] = {{64, 64}, {113, 512}, {17, 113}, {1, 512}};
    for (unsigned k = 0; k < 8; k++) {
        attn_case c = base(shapes[k % 4][0], shapes[k % 4][1], k + 5);
        c.fill = ATTN_FILL_STRESS;
        c.causal = k % 2;
        c.align = k % 4 < 2 ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
        c.mask_add = k == 2 ? ATTN_MDIM_S : ATTN_MASK_NONE;
        c.mask_bool = k == 5 ? ATTN_MDIM_B | ATTN_MDIM_S | ATTN_MDIM_H : ATTN_MASK_NONE;
        c.dt_q = k == 3 ? ATTN_F16 : k == 6 ? ATTN_BF16 : ATTN_F32;
        c.wl = k == 4 ? 16 : -1;
        c.lse = 1;
        add(bd, &c);
    }
}

/* Corner cases: one key (out = v exactly), explicit scales, MQA decode. */
static void group_corner(builder *bd)
{
    static const char *const names[] = {
        "sdpa b2 sq1 skv1 hq4 hkv1 dk64 dv64 dt=f32:f32:f32 layout=bshd lse",
        "sdpa b1 sq17 skv1 hq2 hkv2 dk32 dv32 dt=f16:f16:f16 layout=bshd",
        "sdpa b1 sq64 skv113 hq4 hkv2 dk64 dv64 scale=0.5 dt=f32:f32:f32 layout=bshd lse",
        "sdpa b1 sq17 skv64 hq1 hkv1 dk128 dv128 scale=-0.25 causal=tl dt=f32:f32:f32 "
        "layout=bshd",
        "sdpa b1 sq1 skv512 hq8 hkv1 dk128 dv128 dt=f16:f16:f16 layout=cache lse",
        "sdpa b2 sq3 skv113 hq8 hkv8 dk256 dv256 causal=br dt=bf16:bf16:f32 layout=bhsd",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        attn_case c;
        if (attn_case_parse(names[i], &c, NULL, 0) == 0)
            add(bd, &c);
    }
}

attn_case *attn_cases_builtin(int quick, size_t *n)
{
    builder bd = {.quick = quick};
    group_shapes(&bd);
    group_causal(&bd);
    group_window(&bd);
    group_mask(&bd);
    group_softcap(&bd);
    group_dtype(&bd);
    group_dkdv(&bd);
    group_layout(&bd);
    group_stress(&bd);
    group_corner(&bd);
    group_long(&bd);
    if (bd.a.oom) {
        free(bd.a.v);
        return NULL;
    }
    *n = bd.a.n;
    return bd.a.v;
}
