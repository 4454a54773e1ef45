/* sdpa_case.h - SDPA conformance cases: one problem description (shape, options, dtypes,
 * layout, fill), its canonical name that parses back into the same case, and the feature
 * groups the summary table counts. The driver (sdpa_conform.c) runs them. */
#ifndef ATTN_SDPA_CASE_H_
#define ATTN_SDPA_CASE_H_

#include "attn/attn.h"
#include "attn_fill.h"

#include <stddef.h>
#include <stdint.h>

typedef enum attn_layout {
    ATTN_LAYOUT_BSHD = 0, /* contiguous [B, S, H, D] for q, k, v, out */
    ATTN_LAYOUT_BHSD = 1, /* contiguous [B, H, S, D] */
    ATTN_LAYOUT_CACHE = 2 /* k, v: views into a larger [B, Hkv, cap, D] cache; out: padded rows */
} attn_layout;

/* Mask broadcast: bits of the dims the mask really has (the others are 1 and broadcast); the
 * key dim is there unless ATTN_MDIM_K1 (one column for all keys). */
enum { ATTN_MDIM_B = 1, ATTN_MDIM_S = 2, ATTN_MDIM_H = 4, ATTN_MDIM_K1 = 8, ATTN_MASK_NONE = -1 };

typedef struct attn_sdpa_case {
    int64_t b, sq, skv, hq, hkv, dk, dv;
    int causal;             /* 0 or 1 */
    attn_align align;       /* alignment of causal and window bounds */
    int64_t wl, wr;         /* window_left / window_right, -1 unlimited */
    double cap;             /* soft-cap, 0 none */
    double scale;           /* 0: 1/sqrt(dk) */
    int mask_add, mask_bool; /* ATTN_MASK_NONE or a set of ATTN_MDIM_* bits */
    attn_dtype dt_q, dt_kv, dt_out; /* the additive mask has dt_q */
    attn_layout layout;
    attn_fill_mode fill;
    int special;            /* ATTN_SPECIAL_*: non-finite values planted after the fill */
    int lse;                /* also compute and check the log-sum-exp */
    int key_score;          /* also compute and check key_score (attn_sdpa_forward_ex) */
    int backward;           /* also run attn_sdpa_backward and check dq, dk, dv (and lse) */
    int dmask;              /* backward: also ask for and check grads.dmask_add */
} attn_sdpa_case;

/* Non-finite inputs planted after the fill (docs/conformance.md, "Special inputs"). */
enum {
    ATTN_SPECIAL_NONE = 0,
    ATTN_SPECIAL_V_NONFINITE, /* NaN / Inf in V rows of every 13th key (seen or hidden) */
    ATTN_SPECIAL_V_UNDERFLOW, /* NaN in V rows of keys with an additive -1e4: visible, p = 0 */
    ATTN_SPECIAL_QK_NAN       /* NaN in one q element and one k element */
};

/* Defaults: b1 sq1 skv1 hq1 hkv1 dk dv 64, not causal, bottom-right, no window, no cap, no
 * masks, f32 everywhere, bshd, uniform fill, no lse. */
void attn_sdpa_case_default(attn_sdpa_case *c);

/* Canonical name, e.g. "sdpa b1 sq113 skv512 hq8 hkv2 dk64 dv64 causal=br wl=16 cap=50
 * mask_add=bsh dt=f16:f16:f32 layout=bhsd fill=stress lse ks" ("ks": the key_score output),
 * with "backward" (and "dmask_add") for a gradient case. Returns its length. */
int attn_sdpa_case_format(const attn_sdpa_case *c, char *buf, size_t size);
/* One token of a name ("sq17", "causal=br", "lse", "ks"; the leading "sdpa" is the harness's).
 * Returns 0, or -1 with a message in err. Checks only syntax and ranges; attn_sdpa_validate
 * judges the problem. */
int attn_sdpa_case_token(char *tok, attn_sdpa_case *c, char *err, size_t errsize);

/* Feature groups of the summary table. */
typedef enum attn_feature {
    ATTN_FEAT_CAUSAL_TL, ATTN_FEAT_CAUSAL_BR, ATTN_FEAT_WINDOW, ATTN_FEAT_MASK_ADD,
    ATTN_FEAT_MASK_BOOL, ATTN_FEAT_BROADCAST, ATTN_FEAT_SOFTCAP, ATTN_FEAT_GQA, ATTN_FEAT_DK_DV,
    ATTN_FEAT_F16, ATTN_FEAT_BF16, ATTN_FEAT_LSE, ATTN_FEAT_BHSD, ATTN_FEAT_CACHE,
    ATTN_FEAT_STRESS, ATTN_FEAT_BATCH, ATTN_FEAT_DECODE, ATTN_FEAT_LONG, ATTN_FEAT_NONFINITE,
    ATTN_FEAT_BACKWARD, ATTN_FEAT_DMASK, ATTN_FEAT_KEY_SCORE, ATTN_FEAT_COUNT
} attn_feature;

extern const char *const attn_sdpa_feature_names[ATTN_FEAT_COUNT];
unsigned attn_sdpa_case_features(const attn_sdpa_case *c); /* bit f set for each feature f */

/* The SDPA descriptor of a case (masks not attached). */
attn_sdpa_desc attn_sdpa_case_desc(const attn_sdpa_case *c);
/* Reference flops of a case (2 * rows * attended keys * (dk + dv), 3.5 times that with the
 * backward, plus 2 * rows * attended keys * dk for key_score): a cost estimate. */
double attn_sdpa_case_cost(const attn_sdpa_case *c);

#endif /* ATTN_SDPA_CASE_H_ */
