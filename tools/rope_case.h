/* rope_case.h - RoPE conformance cases: one problem (shape, pairs, rotary dim, theta, offset,
 * positions, dtypes, views), its canonical name that parses back into the same case, and the
 * feature groups the summary table counts. The driver (rope_conform.c) runs them. */
#ifndef ATTN_ROPE_CASE_H_
#define ATTN_ROPE_CASE_H_

#include "attn/attn.h"

#include <stddef.h>
#include <stdint.h>

/* How x and out sit in memory. */
typedef enum attn_rope_view {
    ATTN_ROPE_VIEW_BSHD = 0,   /* both contiguous [B, S, H, D] */
    ATTN_ROPE_VIEW_BHSD = 1,   /* both contiguous [B, H, S, D] */
    ATTN_ROPE_VIEW_FUSED = 2,  /* x: the k heads of a packed [B, S, 3H, D] qkv; out rows padded */
    ATTN_ROPE_VIEW_DSTRIDE = 3 /* x: every second element of its rows; out: every third */
} attn_rope_view;

/* Where positions come from. */
typedef enum attn_rope_pos {
    ATTN_ROPE_POS_NONE = 0, /* position s */
    ATTN_ROPE_POS_I32,      /* an i32 tensor [B, S, 1, 1] */
    ATTN_ROPE_POS_I64,      /* an i64 tensor [B, S, 1, 1] */
    ATTN_ROPE_POS_I32B,     /* an i32 tensor [1, S, 1, 1] broadcast over the batch */
    ATTN_ROPE_POS_I64B
} attn_rope_pos;

typedef struct attn_rope_case {
    int64_t b, s, h, d;
    int64_t rot;              /* 0: all of d */
    attn_rope_layout pairs;
    double theta;
    int64_t offset;
    attn_rope_pos pos;
    int64_t pmax;             /* position values drawn uniformly from [0, pmax) */
    attn_dtype dt_x, dt_out;
    attn_rope_view view;
} attn_rope_case;

/* Defaults: b1 s1 h1 d64, half pairs, all of d rotated, theta 10000, offset 0, positions s,
 * pmax 4096, f32, bshd. */
void attn_rope_case_default(attn_rope_case *c);
/* Canonical name, e.g. "rope b2 s17 h4 d64 pairs=interleaved rot=32 offset=100000 pos=i64
 * dt=bf16:f32 view=fused". Returns its length. */
int attn_rope_case_format(const attn_rope_case *c, char *buf, size_t size);
/* One token of a name (the leading "rope" is the harness's): 0, or -1 with a message. Checks
 * syntax and ranges; attn_rope_validate judges the problem. */
int attn_rope_case_token(char *tok, attn_rope_case *c, char *err, size_t errsize);

/* Feature groups of the summary table. */
typedef enum attn_rope_feature {
    ATTN_ROPE_FEAT_HALF, ATTN_ROPE_FEAT_INTERLEAVED, ATTN_ROPE_FEAT_PARTIAL,
    ATTN_ROPE_FEAT_THETA, ATTN_ROPE_FEAT_OFFSET, ATTN_ROPE_FEAT_FAR, ATTN_ROPE_FEAT_POS_I32,
    ATTN_ROPE_FEAT_POS_I64, ATTN_ROPE_FEAT_POS_BCAST, ATTN_ROPE_FEAT_F16, ATTN_ROPE_FEAT_BF16,
    ATTN_ROPE_FEAT_BHSD, ATTN_ROPE_FEAT_FUSED, ATTN_ROPE_FEAT_DSTRIDE, ATTN_ROPE_FEAT_BATCH,
    ATTN_ROPE_FEAT_ODD, ATTN_ROPE_FEAT_LONG, ATTN_ROPE_FEAT_COUNT
} attn_rope_feature;

extern const char *const attn_rope_feature_names[ATTN_ROPE_FEAT_COUNT];
unsigned attn_rope_case_features(const attn_rope_case *c);

/* The descriptor of a case (positions not attached). */
attn_rope_desc attn_rope_case_desc(const attn_rope_case *c);
/* Elements of x (the cost measure of the op). */
double attn_rope_case_elems(const attn_rope_case *c);

#endif /* ATTN_ROPE_CASE_H_ */
