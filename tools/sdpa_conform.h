/* sdpa_conform.h - the pieces of the SDPA conformance driver (sdpa_conform.c) that its
 * backward part (sdpa_backward_conform.c) shares: the case's descriptor and the forward gold
 * the gradients' condition scales are built from. */
#ifndef ATTN_SDPA_CONFORM_H_
#define ATTN_SDPA_CONFORM_H_

#include "attn_conform.h"
#include "sdpa_case.h"

/* The case's descriptor with the masks of view(d, name) attached (host or run views). */
attn_sdpa_desc attn_sdpa_conf_desc(const attn_sdpa_case *c, const attn_conf_data *d,
                                   const attn_tensor *(*view)(const attn_conf_data *,
                                                              const char *));

/* What the forward's gold hands to the backward's: the logit bound A of each row
 * [B][Sq][Hq] (|scale| |q_i| max |k_j| + max |mask_add|), the gold LSE [B][Hq][Sq] and the
 * forward's accumulation length (Dk + widest band). */
typedef struct attn_sdpa_fwd_gold {
    const double *logit_bound;
    const double *lse;
    double n_acc;
} attn_sdpa_fwd_gold;

/* The gold of a backward case's gradients into g[0 .. *ng): dq, dk, dv (and dmask_add) from
 * the f64 reference, their condition scales, the float-precision reference (lowp) and the
 * policy (docs/conformance.md, "The backward"). Returns 0, 1 (invalid case: message in
 * attn_last_error()) or 2 (the reference failed or memory ran out). */
int attn_sdpa_backward_gold(const attn_sdpa_case *c, const attn_sdpa_desc *host,
                            const attn_conf_data *d, const attn_sdpa_fwd_gold *fw,
                            attn_conf_gold *g, int *ng);

#endif /* ATTN_SDPA_CONFORM_H_ */
