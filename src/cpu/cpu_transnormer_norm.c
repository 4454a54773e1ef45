/* cpu_transnormer_norm.c - NormAttention on the CPU, y_i = sum_j (phi(q_i).phi(k_j)) v_j, is
 * linear attention without normaliser, decay or scale (docs/ops/linear.md): the problem is
 * restated as a linear attention one whose output is y and handed to the chunked kernel of
 * cpu_linear.c (causal: intra-chunk masked products and a state carried across chunks, one
 * product for every query head of a KV group; not causal: one state over all keys, then
 * Y = phi(Q) S). TransNormer's maps are linear attention's: 1 + elu(x) is elu1 (exp(x) for
 * x <= 0), elu, relu and identity the same. */
#include "cpu_transnormer.h"

#include "cpu_linear.h"

static attn_linear_feature feature_of(attn_transnormer_feature f)
{
    switch (f) {
    case ATTN_TRANSNORMER_FEATURE_1_ELU:
        return ATTN_LINEAR_ELU1;
    case ATTN_TRANSNORMER_FEATURE_ELU:
        return ATTN_LINEAR_ELU;
    case ATTN_TRANSNORMER_FEATURE_RELU:
        return ATTN_LINEAR_RELU;
    default:
        return ATTN_LINEAR_IDENTITY;
    }
}

attn_status attn_cpu_transnormer_norm(const attn_transnormer_problem *p, int threads,
                                      int64_t chunk, const attn_cpu_tn_y *y)
{
    attn_linear_problem lp = {
        .B = p->B, .S = p->S, .Hq = p->Hq, .Hkv = p->Hkv, .Dk = p->Dk, .Dv = p->Dv,
        .Df = p->Dk, .group = p->group, .feature = feature_of(p->feature), .normalize = 0,
        .eps = 0.0, .causal = p->causal, .scale = 1.0, .shift = 0, .log_decay = NULL,
        .q = p->q, .k = p->k, .v = p->v,
        .out = {p->out.t, y->p, ATTN_F32, {y->sb, y->ss, y->sh, 1}},
    };
    return attn_cpu_linear_chunked(&lp, threads, chunk);
}
