/* attn_model_train.c - training: the mean cross-entropy of the last forward and its gradient,
 * the global-norm clip (as torch.nn.utils.clip_grad_norm_), and AdamW (as torch.optim.AdamW:
 * decoupled decay, bias-corrected moments), one deterministic step per batch. */
#include "attn_model_impl.h"

#include <math.h>
#include <stdlib.h>

#include "attn_backend_impl.h"
#include "attn_model_adamw.h"

attn_model_adamw attn_model_adamw_default(void)
{
    return (attn_model_adamw){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                              .weight_decay = 0.01, .clip_norm = 1.0};
}

attn_status attn_model_loss(const attn_model *m, const int32_t *labels, double *loss,
                            float *dlogits)
{
    if (!m || !labels || !loss)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_loss: NULL %s",
                         !m ? "model" : !labels ? "labels" : "loss");
    const attn_model_tape *t = &m->tape;
    if (t->batch == 0)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "attn_model_loss: no forward yet");
    const int64_t B = t->batch, C = m->cfg.num_labels;
    for (int64_t b = 0; b < B; b++)
        if (labels[b] < 0 || labels[b] >= C)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "attn_model_loss: label %d of row %lld is outside [0, %lld)",
                             (int)labels[b], (long long)b, (long long)C);
    double total = 0.0;
    for (int64_t b = 0; b < B; b++) {
        const float *z = t->logits + b * C;
        double mx = z[0], sum = 0.0;
        for (int64_t c = 1; c < C; c++)
            mx = z[c] > mx ? z[c] : mx;
        for (int64_t c = 0; c < C; c++)
            sum += exp(z[c] - mx);
        const double lse = mx + log(sum);
        total += lse - z[labels[b]];
        for (int64_t c = 0; dlogits && c < C; c++)
            dlogits[b * C + c] = (float)((exp(z[c] - lse) - (c == labels[b])) / (double)B);
    }
    *loss = total / (double)B;
    return attn_ok();
}

attn_status attn_model_adamw_check(const attn_model_adamw *o)
{
    if (!attn_model_reserved_zero(o->reserved, 4))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "adamw: reserved fields must be zero");
    if (!(o->lr >= 0 && isfinite(o->lr)) || !(o->beta1 >= 0 && o->beta1 < 1) ||
        !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps > 0 && isfinite(o->eps)) ||
        !(o->weight_decay >= 0 && isfinite(o->weight_decay)) ||
        !(o->clip_norm >= 0 && isfinite(o->clip_norm)))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "adamw: lr %g, betas (%g, %g), eps %g, weight decay %g, clip %g: need "
                         "lr >= 0, betas in [0, 1), eps > 0, decay >= 0, clip >= 0, all finite",
                         o->lr, o->beta1, o->beta2, o->eps, o->weight_decay, o->clip_norm);
    return ATTN_OK;
}

double attn_model_grad_norm(const float *grad, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)grad[i] * grad[i];
    return sqrt(s);
}

void attn_model_adamw_apply(const attn_model_param *p, int64_t ntensor, const float *base,
                            float *adam_m, float *adam_v, int64_t step,
                            const attn_model_adamw *o, double gscale)
{
    const double c1 = 1.0 - pow(o->beta1, (double)step);
    const double c2 = 1.0 - pow(o->beta2, (double)step);
    for (int64_t t = 0; t < ntensor; t++, p++) {
        const int64_t off = p->value - base;
        const double decay = p->decay ? o->lr * o->weight_decay : 0.0;
        float *mm = adam_m + off, *vv = adam_v + off;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < p->numel; i++) {
            const double g = gscale * p->grad[i];
            double w = p->value[i] * (1.0 - decay);
            const double m1 = o->beta1 * mm[i] + (1.0 - o->beta1) * g;
            const double v1 = o->beta2 * vv[i] + (1.0 - o->beta2) * g * g;
            w -= o->lr * (m1 / c1) / (sqrt(v1 / c2) + o->eps);
            mm[i] = (float)m1;
            vv[i] = (float)v1;
            p->value[i] = (float)w;
        }
    }
}

attn_status attn_model_train_step(attn_model *m, const attn_model_input *in,
                                  const int32_t *labels, const attn_model_adamw *opt,
                                  double *loss, double *grad_norm_out)
{
    if (!m || !in || !labels || !opt)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_model_train_step: NULL %s",
                         !m ? "model" : !in ? "input" : !labels ? "labels" : "optimiser");
    attn_status st = attn_model_adamw_check(opt);
    if (st != ATTN_OK)
        return st;
    if (!m->adam_m) {
        m->adam_m = calloc((size_t)m->numel, sizeof(float));
        m->adam_v = calloc((size_t)m->numel, sizeof(float));
        if (!m->adam_m || !m->adam_v) {
            free(m->adam_m);
            free(m->adam_v);
            m->adam_m = m->adam_v = NULL;
            return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "adamw: out of memory for the moments");
        }
    }
    const int64_t C = m->cfg.num_labels;
    float *logits = malloc((size_t)(in->batch > 0 ? in->batch : 1) * (size_t)C * sizeof(float));
    float *dlogits = malloc((size_t)(in->batch > 0 ? in->batch : 1) * (size_t)C * sizeof(float));
    double l = 0.0;
    if (!logits || !dlogits)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY, "train step: out of memory");
    if (st == ATTN_OK)
        st = attn_model_forward(m, in, &(attn_model_outputs){.logits = logits});
    if (st == ATTN_OK)
        st = attn_model_loss(m, labels, &l, dlogits);
    if (st == ATTN_OK) {
        attn_model_zero_grad(m);
        st = attn_model_backward(m, dlogits, NULL);
    }
    free(logits);
    free(dlogits);
    if (st != ATTN_OK)
        return st;
    const double norm = attn_model_grad_norm(m->grad, m->numel);
    const double scale = opt->clip_norm > 0 && norm > opt->clip_norm
                             ? opt->clip_norm / (norm + 1e-6) : 1.0;
    attn_model_adamw_apply(m->param, m->ntensor, m->value, m->adam_m, m->adam_v,
                           ++m->adam_step, opt, scale);
    if (loss)
        *loss = l;
    if (grad_norm_out)
        *grad_norm_out = norm;
    return attn_ok();
}
