/* model_planted.c - the planted task's generator (model_planted.h). Each example owns one
 * random stream and each of its draws a fixed counter slot, so an example does not depend on
 * the others, on n, or on the order in which they are generated. */
#include "model_planted.h"

#include "attn_rng.h"

#include <stdio.h>
#include <string.h>

/* Counter slots of one example's stream. */
#define SLOT_LABEL 0u
#define SLOT_LENGTH 1u
#define SLOT_POSITION ((uint64_t)1 << 20)   /* + j: the j-th pick of the shuffle */
#define SLOT_SIGNAL ((uint64_t)2 << 20)     /* + j: the id planted at the j-th pick */
#define SLOT_DISTRACTOR ((uint64_t)1 << 40) /* + position */
/* A split's streams start at split << 40: no example of one split shares a stream with one of
 * the other. */
#define SPLIT_SHIFT 40
#define MAX_ROWS ((int64_t)1 << SPLIT_SHIFT)
#define MAX_SEQ ((int64_t)1 << 20)

int64_t attn_model_planted_first_distractor(const attn_model_planted *p)
{
    return ATTN_MODEL_FIRST_SIGNAL + 2 * p->signals;
}

int attn_model_planted_check(const attn_model_planted *p, char *err, size_t n)
{
    if (p->n < 0 || p->n >= MAX_ROWS)
        snprintf(err, n, "the number of examples must be in [0, 2^40)");
    else if (p->seq < 3 || p->seq > MAX_SEQ)
        snprintf(err, n, "--seq %lld: must be in [3, %lld]", (long long)p->seq,
                 (long long)MAX_SEQ);
    else if (p->planted < 1 || p->planted > p->seq - 2)
        snprintf(err, n, "--planted %lld: must be in [1, seq - 2 = %lld]", (long long)p->planted,
                 (long long)(p->seq - 2));
    else if (p->min_seq < p->planted + 2 || p->min_seq > p->seq)
        snprintf(err, n, "--min-seq %lld: must be in [planted + 2 = %lld, seq = %lld] ([CLS], "
                 "the planted tokens, [SEP])", (long long)p->min_seq,
                 (long long)(p->planted + 2), (long long)p->seq);
    else if (p->signals < 1 || p->signals > ((int64_t)1 << 24))
        snprintf(err, n, "--signals %lld: must be in [1, 2^24]", (long long)p->signals);
    else if (p->vocab <= attn_model_planted_first_distractor(p) || p->vocab > INT32_MAX)
        snprintf(err, n, "--vocab %lld: must exceed 3 special/signal ids + 2 x %lld signal ids "
                 "(at least one distractor) and fit int32", (long long)p->vocab,
                 (long long)p->signals);
    else
        return 0;
    return -1;
}

/* Uniform integer in [0, m) at a slot. */
static int64_t draw(const attn_model_planted *p, uint64_t stream, uint64_t slot, int64_t m)
{
    const int64_t r = (int64_t)(attn_rng_unit(p->seed, stream, slot) * (double)m);
    return r < m ? r : m - 1; /* unit * m can round up to m */
}

/* Example i into its rows: ids, rationale and mask of length seq. */
static void one_example(const attn_model_planted *p, int64_t i, int32_t *ids, int32_t *label,
                        uint8_t *rationale, uint8_t *mask)
{
    const uint64_t stream = (p->split << SPLIT_SHIFT) + (uint64_t)i;
    const int64_t S = p->seq, first_d = attn_model_planted_first_distractor(p);
    const int64_t y = draw(p, stream, SLOT_LABEL, 2);
    const int64_t L = p->min_seq + draw(p, stream, SLOT_LENGTH, S - p->min_seq + 1);
    *label = (int32_t)y;
    memset(rationale, 0, (size_t)S);
    for (int64_t s = 0; s < S; s++)
        mask[s] = s < L;
    /* The content positions 1 .. L-2 in ids[1 .. L-1) as scratch: the first k entries of a
     * partial Fisher-Yates shuffle are k distinct positions, uniformly. */
    for (int64_t s = 1; s < L - 1; s++)
        ids[s] = (int32_t)s;
    for (int64_t j = 0; j < p->planted; j++) {
        const int64_t r = 1 + j + draw(p, stream, SLOT_POSITION + (uint64_t)j, L - 2 - j);
        const int32_t t = ids[1 + j];
        ids[1 + j] = ids[r];
        ids[r] = t;
        rationale[ids[1 + j]] = 1;
    }
    for (int64_t s = 1; s < L - 1; s++)
        if (!rationale[s])
            ids[s] = (int32_t)(first_d + draw(p, stream, SLOT_DISTRACTOR + (uint64_t)s,
                                              p->vocab - first_d));
    for (int64_t j = 0, s = 1; s < L - 1; s++)
        if (rationale[s])
            ids[s] = (int32_t)(ATTN_MODEL_FIRST_SIGNAL + y * p->signals +
                               draw(p, stream, SLOT_SIGNAL + (uint64_t)j++, p->signals));
    ids[0] = ATTN_MODEL_CLS_ID;
    ids[L - 1] = ATTN_MODEL_SEP_ID;
    for (int64_t s = L; s < S; s++)
        ids[s] = ATTN_MODEL_PAD_ID;
}

void attn_model_planted_generate(const attn_model_planted *p, int32_t *ids, int32_t *labels,
                                 uint8_t *rationale, uint8_t *mask)
{
    for (int64_t i = 0; i < p->n; i++) {
        const size_t row = (size_t)(i * p->seq);
        one_example(p, i, ids + row, labels + i, rationale + row, mask + row);
    }
}
