/* kvcache_ref.h - the ground truth of the attention over cache slots (reference/kvcache.c)
 * and its internal interface: the whole op for the conformance driver and the `ref` backend,
 * with the condition scales the conformance policy needs. */
#ifndef ATTN_KVCACHE_REF_H_
#define ATTN_KVCACHE_REF_H_

#include "attn_kvcache_problem.h"
#include "ref_precision.h"

/* What attn_ref_kvcache fills, as doubles in dense row-major layouts; every pointer but out
 * may be NULL. A "row" is (b, i, h), numbered (b Sq + i) Hq + h. */
typedef struct attn_ref_kvcache_out {
    double *out;               /* [B][Sq][Hq][Dv]: 0 for a query that sees no slot */
    double *absmag;            /* [B][Sq][Hq][Dv]: sum_j p_j |v_j|, each output's scale */
    double *lse;               /* [B][Sq][Hq]: natural log; -inf where no slot is seen */
    double *key_score;         /* [B][Nslot][Hkv]: sum over rows of w_row p_row,j */
    const double *row_weight;  /* [B][Sq][Hq] weights w of key_score, NULL: 1 */
    double *logit_bound;       /* [B][Sq][Hq]: |scale| |q_rot| max |k_rot| over seen slots */
} attn_ref_kvcache_out;

/* The definition on a validated problem with host-accessible operands. ATTN_REF_F64 works in
 * double; ATTN_REF_F32 runs the same code with every intermediate rounded to float (the
 * rotated q and k rounded to float once, as a backend that rotates into f32 scratch). */
attn_status attn_ref_kvcache(const attn_kvcache_problem *p, attn_ref_precision prec,
                             const attn_ref_kvcache_out *o);

/* The position slot j of KV head g (batch b) is rotated at, and that of query i, under the
 * problem's positions mode (ORIGINAL: the stored position; CACHE: the number of live slots of
 * the head whose position is below it). Live slots only. */
int64_t attn_ref_kvcache_slot_rot_pos(const attn_kvcache_problem *p, int64_t b, int64_t j,
                                      int64_t g);
int64_t attn_ref_kvcache_query_rot_pos(const attn_kvcache_problem *p, int64_t b, int64_t i,
                                       int64_t g);

#endif /* ATTN_KVCACHE_REF_H_ */
