/* attn_model_adamw.h - the optimiser step of attn_model_train_step on any set of parameters
 * (the transfer room's too): the settings check, the global gradient norm and one AdamW update
 * as torch.optim.AdamW computes it. */
#ifndef ATTN_MODEL_ADAMW_H_
#define ATTN_MODEL_ADAMW_H_

#include "attn/attn_model.h"

/* ATTN_ERR_INVALID_ARGUMENT naming the settings unless every one is in range. */
attn_status attn_model_adamw_check(const attn_model_adamw *o);
/* The L2 norm of n gradient values, summed in order (deterministic). */
double attn_model_grad_norm(const float *grad, int64_t n);
/* One AdamW update (step counts from 1) of the ntensor parameters p, whose values lie in one
 * arena starting at `base`; the moments adam_m, adam_v share the arena's layout. Gradients are
 * scaled by gscale first (the clip); decay applies where p->decay. */
void attn_model_adamw_apply(const attn_model_param *p, int64_t ntensor, const float *base,
                            float *adam_m, float *adam_v, int64_t step,
                            const attn_model_adamw *o, double gscale);

#endif /* ATTN_MODEL_ADAMW_H_ */
