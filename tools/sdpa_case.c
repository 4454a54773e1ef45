/* sdpa_case.c - SDPA conformance cases: the case struct's defaults, its canonical name (format
 * and the tokens of the grammar), feature groups, cost and descriptor. docs/ops/sdpa.md gives
 * the grammar. */
#include "sdpa_case.h"

#include "attn_cases.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- defaults, descriptor, cost ------------------------------------------------------------- */

void attn_sdpa_case_default(attn_sdpa_case *c)
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

attn_sdpa_desc attn_sdpa_case_desc(const attn_sdpa_case *c)
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
static int64_t band_width(const attn_sdpa_case *c, int64_t i)
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

double attn_sdpa_case_cost(const attn_sdpa_case *c)
{
    double keys = 0;
    for (int64_t i = 0; i < c->sq; i++)
        keys += (double)band_width(c, i);
    /* a backward case runs the forward, then about 2.5 times its work (five products);
     * key_score computes the logits once more */
    return 2.0 * (double)(c->b * c->hq) * keys *
           ((double)(c->dk + c->dv) * (c->backward ? 3.5 : 1.0) +
            (c->key_score ? (double)c->dk : 0.0));
}

/* ---- features ------------------------------------------------------------------------------- */

const char *const attn_sdpa_feature_names[ATTN_FEAT_COUNT] = {
    "causal-tl", "causal-br", "window", "mask-add", "mask-bool", "mask-bcast", "softcap", "gqa",
    "dk!=dv", "f16", "bf16", "lse", "bhsd", "kv-cache", "stress", "batch2", "decode", "long", "nonfinite",
    "backward", "dmask", "key-score"};

static int has_dtype(const attn_sdpa_case *c, attn_dtype t)
{
    return c->dt_q == t || c->dt_kv == t || c->dt_out == t;
}

unsigned attn_sdpa_case_features(const attn_sdpa_case *c)
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
        {c->special != ATTN_SPECIAL_NONE, ATTN_FEAT_NONFINITE},
        {c->backward, ATTN_FEAT_BACKWARD},
        {c->dmask, ATTN_FEAT_DMASK},
        {c->key_score, ATTN_FEAT_KEY_SCORE},
    };
    unsigned m = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].on)
            m |= 1u << t[i].f;
    return m;
}

/* ---- canonical name ------------------------------------------------------------------------- */

static const char *const special_names[] = {"none", "v_nonfinite", "v_underflow", "qk_nan",
                                            NULL};
static const char *const layout_names[] = {"bshd", "bhsd", "cache", NULL};
static const char *const dtype_names[] = {"f32", "f16", "bf16", NULL};

static void mask_dims(attn_sbuf *s, const char *key, int m)
{
    if (m == ATTN_MASK_NONE)
        return;
    attn_sb_add(s, " %s=%s%s%s%s%s", key, m & ATTN_MDIM_B ? "b" : "",
                m & ATTN_MDIM_S ? "s" : "", m & ATTN_MDIM_H ? "h" : "",
                (m & ~ATTN_MDIM_K1) == 0 ? "-" : "", m & ATTN_MDIM_K1 ? "1" : "");
}

int attn_sdpa_case_format(const attn_sdpa_case *c, char *buf, size_t size)
{
    attn_sbuf s = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    attn_sb_add(&s, "sdpa b%lld sq%lld skv%lld hq%lld hkv%lld dk%lld dv%lld", (long long)c->b,
           (long long)c->sq, (long long)c->skv, (long long)c->hq, (long long)c->hkv,
           (long long)c->dk, (long long)c->dv);
    const char *al = c->align == ATTN_ALIGN_TOP_LEFT ? "tl" : "br";
    if (c->causal)
        attn_sb_add(&s, " causal=%s", al);
    else if ((c->wl >= 0 || c->wr >= 0) && c->align == ATTN_ALIGN_TOP_LEFT)
        attn_sb_add(&s, " align=tl"); /* bottom-right is the default */
    if (c->wl >= 0)
        attn_sb_add(&s, " wl=%lld", (long long)c->wl);
    if (c->wr >= 0)
        attn_sb_add(&s, " wr=%lld", (long long)c->wr);
    if (c->cap > 0)
        attn_sb_add(&s, " cap=%.9g", c->cap);
    if (c->scale != 0)
        attn_sb_add(&s, " scale=%.9g", c->scale);
    mask_dims(&s, "mask_add", c->mask_add);
    mask_dims(&s, "mask_bool", c->mask_bool);
    attn_sb_add(&s, " dt=%s:%s:%s", dtype_names[c->dt_q], dtype_names[c->dt_kv],
           dtype_names[c->dt_out]);
    attn_sb_add(&s, " layout=%s", layout_names[c->layout]);
    if (c->fill == ATTN_FILL_STRESS)
        attn_sb_add(&s, " fill=stress");
    if (c->special != ATTN_SPECIAL_NONE)
        attn_sb_add(&s, " special=%s", special_names[c->special]);
    if (c->lse)
        attn_sb_add(&s, " lse");
    if (c->key_score)
        attn_sb_add(&s, " ks");
    if (c->backward)
        attn_sb_add(&s, " backward");
    if (c->dmask)
        attn_sb_add(&s, " dmask_add");
    return (int)s.len;
}

/* ---- parsing -------------------------------------------------------------------------------- */

/* Letters of the dims the mask has ("-": none of b, s, h), then "1" for a single key column. */
static int parse_mask(const char *s, int *m)
{
    size_t n = strlen(s);
    *m = 0;
    if (n > 1 && s[n - 1] == '1') {
        *m = ATTN_MDIM_K1;
        n--;
    }
    if (n == 1 && s[0] == '-')
        return 0;
    for (; n > 0; s++, n--) {
        int bit = *s == 'b' ? ATTN_MDIM_B : *s == 's' ? ATTN_MDIM_S : *s == 'h' ? ATTN_MDIM_H : 0;
        if (!bit || (*m & bit))
            return -1;
        *m |= bit;
    }
    return *m & ~ATTN_MDIM_K1 ? 0 : -1;
}

/* Size tokens ("skv512"); d64 sets dk = dv = 64. */
static int parse_size(const char *tok, attn_sdpa_case *c)
{
#define K1(p, f) {p, offsetof(attn_sdpa_case, f), offsetof(attn_sdpa_case, f)}
    static const attn_tok_size_key keys[] = {
        K1("skv", skv), K1("sq", sq), K1("hkv", hkv), K1("hq", hq), K1("dk", dk), K1("dv", dv),
        K1("b", b), {"d", offsetof(attn_sdpa_case, dk), offsetof(attn_sdpa_case, dv)}};
#undef K1
    return attn_tok_size(tok, keys, sizeof keys / sizeof keys[0], c);
}

/* key=value tokens; returns 1 when consumed, 0 unknown key, -1 bad value. */
static int parse_keyval(const char *key, const char *val, attn_sdpa_case *c)
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
        return attn_tok_int(val, -1, (int64_t)1 << 40, key[1] == 'l' ? &c->wl : &c->wr) ? -1 : 1;
    if (strcmp(key, "cap") == 0)
        return attn_tok_factor(val, 0, &c->cap) ? -1 : 1;
    if (strcmp(key, "scale") == 0)
        return attn_tok_factor(val, -1e30, &c->scale) ? -1 : 1;
    if (strcmp(key, "mask_add") == 0)
        return parse_mask(val, &c->mask_add) ? -1 : 1;
    if (strcmp(key, "mask_bool") == 0)
        return parse_mask(val, &c->mask_bool) ? -1 : 1;
    if (strcmp(key, "dt") == 0)
        return attn_tok_dtypes_qkv(val, dtype_names, &c->dt_q, &c->dt_kv, &c->dt_out) ? -1 : 1;
    if (strcmp(key, "layout") == 0) {
        if ((v = attn_tok_choice(val, layout_names)) < 0)
            return -1;
        c->layout = (attn_layout)v;
        return 1;
    }
    if (strcmp(key, "special") == 0) {
        if ((v = attn_tok_choice(val, special_names)) <= 0)
            return -1;
        c->special = v;
        return 1;
    }
    if (strcmp(key, "fill") == 0) {
        static const char *const fills[] = {"uniform", "stress", NULL};
        if ((v = attn_tok_choice(val, fills)) < 0)
            return -1;
        c->fill = (attn_fill_mode)v;
        return 1;
    }
    return 0;
}

int attn_sdpa_case_token(char *tok, attn_sdpa_case *c, char *err, size_t errsize)
{
    /* flags: the LSE, key_score, the backward, the additive mask's gradient */
    int *const flag = strcmp(tok, "lse") == 0        ? &c->lse
                      : strcmp(tok, "ks") == 0        ? &c->key_score
                      : strcmp(tok, "backward") == 0  ? &c->backward
                      : strcmp(tok, "dmask_add") == 0 ? &c->dmask
                                                      : NULL;
    if (flag) {
        *flag = 1;
        return 0;
    }
    if (strcmp(tok, "causal") == 0) { /* bare flag: bottom-right */
        c->causal = 1;
        return 0;
    }
    char *val = attn_tok_split(tok);
    return attn_tok_verdict(val ? parse_keyval(tok, val, c) : parse_size(tok, c), tok, val, err,
                            errsize);
}
