/* transfer_planted.h - the synthetic benchmark of `attn data --task transfer`: features drawn
 * from a Gaussian mixture of a few latent domains, K source attributes that are known linear
 * functions of the features, and a target attribute that is a known mixture of a few of them
 * plus its own part, so that the source classifiers an attention module should weigh are known
 * exactly. Every value is a pure function of (seed, split, example, slot) through the
 * counter-based generator. */
#ifndef ATTN_TRANSFER_PLANTED_H_
#define ATTN_TRANSFER_PLANTED_H_

#include <stddef.h>
#include <stdint.h>

/* The splits: each example of each owns one random stream. */
typedef enum attn_transfer_split {
    ATTN_TRANSFER_SPLIT_SOURCE = 0, /* source examples: features and all K source labels */
    ATTN_TRANSFER_SPLIT_TRAIN = 1,  /* the few labelled target examples */
    ATTN_TRANSFER_SPLIT_TEST = 2    /* target examples to measure on */
} attn_transfer_split;

/* The benchmark's sizes and knobs (the options of `attn data --task transfer`). */
typedef struct attn_transfer_planted {
    int64_t features;      /* F */
    int64_t domains;       /* D latent domains; the target's examples come from domain 0, the
                              sources' from domains 1 .. D-1 (all from domain 0 when D = 1) */
    int64_t sources;       /* K source attributes */
    int64_t related;       /* R sources the target mixes, [1, K] */
    double own;            /* the target's own part's weight, [0, 1) */
    double separation;     /* domain means are separation * N(0, I / F): their distance ~ sep */
    double noise;          /* each label flipped with this probability, [0, 0.5) */
    uint64_t seed;
} attn_transfer_planted;

/* What the options determine: the mixture, the attribute directions, the domain means. */
typedef struct attn_transfer_truth {
    int64_t F, D, K, R;
    int64_t *related;  /* [R]: the mixed sources, increasing */
    double *weight;    /* [R]: their weights; with own they sum to 1 */
    double own;
    double *mean;      /* [D, F]: domain means */
    double *dir;       /* [K + 1, F]: unit directions of the sources, then the target's own */
    double *bias;      /* [K + 1]: the sources' b_k, then the target's whole offset b_t */
} attn_transfer_truth;

/* 0 when the options make a benchmark; else -1 and the reason in err (n bytes), naming the
 * option. */
int attn_transfer_planted_check(const attn_transfer_planted *p, char *err, size_t n);
/* Draws the truth of checked options. 0, or -1 out of memory (t left empty). */
int attn_transfer_truth_make(const attn_transfer_planted *p, attn_transfer_truth *t);
void attn_transfer_truth_free(attn_transfer_truth *t);

/* Fills n examples of a split: x [n, F] and y, which is [n, K] for the source split (source
 * k's label: a_k . x + b_k > 0) and [n] for the target splits (sum_r w_r (a_{s_r} . x + b_{s_r})
 * + own a_t . x + b_t > 0, b_t centring it on domain 0); each label then flipped with
 * probability noise. 0, or -1 out of memory. */
int attn_transfer_planted_generate(const attn_transfer_planted *p, const attn_transfer_truth *t,
                                   attn_transfer_split split, int64_t n, float *x, uint8_t *y);

#endif /* ATTN_TRANSFER_PLANTED_H_ */
