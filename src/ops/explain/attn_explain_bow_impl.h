/* attn_explain_bow_impl.h - the bag-of-words reader's state, private to the explain room: the
 * evaluation (attn_explain_eval.c) checks a reader's vocabulary and classes against the model
 * and the texts before it runs anything. */
#ifndef ATTN_EXPLAIN_BOW_IMPL_H_
#define ATTN_EXPLAIN_BOW_IMPL_H_

#include "attn/attn_explain.h"

struct attn_explain_bow {
    int64_t vocab, num_labels;
    double *w;       /* [vocab, num_labels]: the weight of each id's feature for each class */
    double *bias;    /* [num_labels] */
    uint8_t *ignore; /* [vocab]: 1 for the ids not counted */
};

#endif /* ATTN_EXPLAIN_BOW_IMPL_H_ */
