/* model_planted.h - the planted task of `attn data`: BERT-shaped token sequences whose label is
 * decided by a few "signal" tokens planted at random positions among random distractors, so
 * that the tokens a classifier must look at (the rationale) are known exactly. Every value is a
 * pure function of (seed, split, example, slot) through the counter-based generator. */
#ifndef ATTN_MODEL_PLANTED_H_
#define ATTN_MODEL_PLANTED_H_

#include <stddef.h>
#include <stdint.h>

/* BERT-like special ids; the signal ids follow them, then the distractors up to the vocab. */
enum {
    ATTN_MODEL_PAD_ID = 0,      /* [PAD]: after the [SEP] of a shorter example, mask 0 */
    ATTN_MODEL_CLS_ID = 1,      /* [CLS]: position 0 */
    ATTN_MODEL_SEP_ID = 2,      /* [SEP]: the example's last position */
    ATTN_MODEL_FIRST_SIGNAL = 3 /* label c's: FIRST_SIGNAL + c * signals + [0, signals) */
};

/* One split of the task. */
typedef struct attn_model_planted {
    int64_t n;        /* examples */
    int64_t seq;      /* S: the row length (longest example) */
    int64_t min_seq;  /* shortest example, [planted + 2, seq] */
    int64_t vocab;    /* ids in [0, vocab): at least FIRST_SIGNAL + 2 signals + 1 */
    int64_t planted;  /* k: signal tokens planted per example */
    int64_t signals;  /* signal ids per label */
    uint64_t seed;
    uint64_t split;   /* 0 train, 1 test: disjoint random streams */
} attn_model_planted;

/* The first distractor id (distractors are [this, vocab)). */
int64_t attn_model_planted_first_distractor(const attn_model_planted *p);
/* 0 when the sizes make a task; else -1 and the reason in err (n bytes), naming the option. */
int attn_model_planted_check(const attn_model_planted *p, char *err, size_t n);
/* Fills ids [n, seq] (int32), labels [n] (0 or 1), rationale [n, seq] (1 at the planted
 * positions) and mask [n, seq] (1 up to the example's [SEP], 0 on padding). Example i: label
 * from one draw; its length L uniform in [min_seq, seq]; [CLS] at 0, [SEP] at L - 1, [PAD]
 * after; k distinct positions in [1, L - 2] (a partial Fisher-Yates shuffle) each get a signal
 * id of the label's set drawn uniformly; every other position in [1, L - 2] a distractor drawn
 * uniformly. The check must have passed. */
void attn_model_planted_generate(const attn_model_planted *p, int32_t *ids, int32_t *labels,
                                 uint8_t *rationale, uint8_t *mask);

#endif /* ATTN_MODEL_PLANTED_H_ */
