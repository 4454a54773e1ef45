/* attn_transfer_train.c - one training step of the transfer model: zero_grad, forward,
 * backward, the global-norm clip and the model room's AdamW update (torch.optim.AdamW) over
 * the transfer parameters. Deterministic: no step depends on timing or thread count. */
#include "attn_transfer_impl.h"

#include <stdlib.h>

#include "attn_backend_impl.h"
#include "attn_model_adamw.h"
#include "attn_view.h" /* ATTN_TRY */

/* The Adam moments, zero, on the first step. */
static attn_status moments(attn_transfer *t)
{
    if (t->adam_m)
        return ATTN_OK;
    t->adam_m = calloc((size_t)t->numel, sizeof(float));
    t->adam_v = calloc((size_t)t->numel, sizeof(float));
    if (t->adam_m && t->adam_v)
        return ATTN_OK;
    free(t->adam_m);
    free(t->adam_v);
    t->adam_m = t->adam_v = NULL;
    return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "attn_transfer_train_step: out of memory for the "
                     "Adam moments");
}

attn_status attn_transfer_train_step(attn_transfer *t, const attn_transfer_batch *batch,
                                     const attn_model_adamw *opt, double *loss,
                                     double *grad_norm)
{
    if (!t || !batch || !opt)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_transfer_train_step: NULL %s",
                         !t ? "model" : !batch ? "batch" : "optimiser");
    ATTN_TRY(attn_model_adamw_check(opt));
    ATTN_TRY(moments(t));
    ATTN_TRY(attn_transfer_forward(t, batch, NULL));
    attn_transfer_zero_grad(t);
    ATTN_TRY(attn_transfer_backward(t));
    const double norm = attn_model_grad_norm(t->grad, t->numel);
    const double scale = opt->clip_norm > 0 && norm > opt->clip_norm
                             ? opt->clip_norm / (norm + 1e-6) : 1.0;
    attn_model_adamw_apply(t->param, t->ntensor, t->value, t->adam_m, t->adam_v,
                           ++t->adam_step, opt, scale);
    if (loss)
        *loss = t->tape.loss;
    if (grad_norm)
        *grad_norm = norm;
    return attn_ok();
}
