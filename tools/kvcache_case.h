/* kvcache_case.h - conformance cases of the attention over cache slots
 * (attn_kvcache_attention): one problem (shape, slots and their holes, slot order, positions
 * mode, RoPE, dtypes, key_score), its canonical name that parses back into the same case, and
 * the feature groups the summary table counts. The driver (kvcache_conform.c) runs them. */
#ifndef ATTN_KVCACHE_CASE_H_
#define ATTN_KVCACHE_CASE_H_

#include "attn/attn.h"

#include <stddef.h>
#include <stdint.h>

typedef struct attn_kvcache_case {
    int64_t b, sq, hq, hkv, dk, dv, nslot;
    int64_t holes;        /* percent of the slots of each KV head left empty (0 .. 90) */
    int64_t span;         /* positions drawn from 0 .. span-1 (0: 2 nslot + sq) */
    int64_t lag;          /* queries sit at span - sq - lag + i: the newest lag positions are
                           * in every query's future */
    int sorted;           /* live slots in the order of their positions (else shuffled) */
    attn_kv_positions pos;
    attn_rope_layout pairs;
    int64_t rot;          /* 0: all of dk */
    double theta;
    double scale, cap;    /* 0: 1/sqrt(dk), none */
    attn_dtype dt_q, dt_kv, dt_out;
    int bhsd;             /* k and v head-major [B, Hkv, Nslot, D] (a per-head cache) */
    int key_score;        /* also compute and check key_score */
} attn_kvcache_case;

/* Defaults: b1 sq1 hq1 hkv1 d64 nslot16, no holes, span 0 (2 nslot + sq), lag 0, shuffled,
 * pos=stored, half pairs, theta 10000, f32, bshd, no key_score. */
void attn_kvcache_case_default(attn_kvcache_case *c);
/* Canonical name, e.g. "kvcache b1 sq4 hq8 hkv2 dk64 dv64 nslot40 holes=25 pos=cache
 * pairs=interleaved dt=f16:f16:f32 ks". Returns its length. */
int attn_kvcache_case_format(const attn_kvcache_case *c, char *buf, size_t size);
/* One token of a name (the leading "kvcache" is the harness's): 0, or -1 with a message. */
int attn_kvcache_case_token(char *tok, attn_kvcache_case *c, char *err, size_t errsize);
/* After all tokens: the span must hold the live slots and the queries. 0, or -1. */
int attn_kvcache_case_check(const attn_kvcache_case *c, char *err, size_t errsize);

/* Empty slots of each KV head, live ones, and the span of positions. */
int64_t attn_kvcache_case_holes(const attn_kvcache_case *c);
int64_t attn_kvcache_case_span(const attn_kvcache_case *c);

typedef enum attn_kvcache_feature {
    ATTN_KV_FEAT_GQA, ATTN_KV_FEAT_MQA, ATTN_KV_FEAT_HOLES, ATTN_KV_FEAT_SHUFFLED,
    ATTN_KV_FEAT_STORED, ATTN_KV_FEAT_ORIGINAL, ATTN_KV_FEAT_CACHE, ATTN_KV_FEAT_INTERLEAVED,
    ATTN_KV_FEAT_PARTIAL, ATTN_KV_FEAT_CAUSAL, ATTN_KV_FEAT_LAG, ATTN_KV_FEAT_SOFTCAP,
    ATTN_KV_FEAT_F16, ATTN_KV_FEAT_BF16, ATTN_KV_FEAT_BHSD, ATTN_KV_FEAT_KEY_SCORE,
    ATTN_KV_FEAT_BATCH, ATTN_KV_FEAT_DK_DV, ATTN_KV_FEAT_LONG, ATTN_KV_FEAT_COUNT
} attn_kvcache_feature;

extern const char *const attn_kvcache_feature_names[ATTN_KV_FEAT_COUNT];
unsigned attn_kvcache_case_features(const attn_kvcache_case *c);

/* The descriptor of a case. */
attn_kvcache_attn_desc attn_kvcache_case_desc(const attn_kvcache_case *c);
/* Reference flops: 2 B Sq Hq Nslot (dk + dv), plus the rotations. */
double attn_kvcache_case_cost(const attn_kvcache_case *c);

#endif /* ATTN_KVCACHE_CASE_H_ */
