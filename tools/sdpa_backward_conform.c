/* sdpa_backward_conform.c - the gold of SDPA's backward conformance cases: dq, dk, dv (and the
 * additive mask's gradient) from the naive f64 chain rule of reference/sdpa_backward.c, each
 * with its condition scale (the reference's magnitudes times the logit factor of the rows it
 * sums) and the same code in float working precision for the calibration gate.
 * docs/conformance.md, "The backward", derives the bounds and states the constants. */
#include "sdpa_conform.h"

#include "attn_half.h"
#include "attn_sdpa_problem.h"
#include "sdpa_ref.h"

#include <math.h>
#include <stdlib.h>

/* Gate 4's factors F: dv is a P-weighted sum like out, but its P comes from the stored LSE
 * (exp(s - lse)) where naive code divides by the sum; dq, dk and dmask go through dS = P (dP - D),
 * whose cancellation a different summation order (D from out, tiles) moves more. */
#define CALIB_DV 8.0
#define CALIB_DS 16.0
#define POLICY_C 8.0 /* gate 2's c (tools/attn_policy.c) */

enum { G_DQ, G_DK, G_DV, G_DMASK, G_N };

/* The logit factor of a row, 1 + A + |lse| (a row with no visible key has no gradient). */
static double row_factor(const attn_sdpa_problem *p, const attn_sdpa_fwd_gold *fw, int64_t b,
                         int64_t i, int64_t h)
{
    const double lse = fw->lse[(b * p->Hq + h) * p->Sq + i];
    return 1.0 + fw->logit_bound[(b * p->Sq + i) * p->Hq + h] + (isfinite(lse) ? fabs(lse) : 0.0);
}

/* Scale the magnitudes into conditions: dq by its row's factor, dk and dv by the largest factor
 * of the rows of their (batch, KV head), dmask by the largest of all rows, each plus kappa[t]
 * (the stored out's rounding, see attn_sdpa_backward_gold). Marks the dq rows of rows with no
 * visible key (exactly 0). */
static void scale_conditions(const attn_sdpa_problem *p, const attn_sdpa_fwd_gold *fw,
                             const double *kappa, attn_conf_gold *g, int nt)
{
    double all = 1.0;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t kv = 0; kv < p->Hkv; kv++) {
            double head = 1.0;
            for (int64_t h = kv * p->group; h < (kv + 1) * p->group; h++)
                for (int64_t i = 0; i < p->Sq; i++) {
                    const double f = row_factor(p, fw, b, i, h);
                    const int64_t r = ((b * p->Sq + i) * p->Hq + h) * p->Dk;
                    const int hidden = fw->lse[(b * p->Hq + h) * p->Sq + i] == -INFINITY;
                    for (int64_t d = r; d < r + p->Dk; d++) {
                        g[G_DQ].cond[d] *= f + kappa[G_DQ];
                        g[G_DQ].must_zero[d] = (uint8_t)hidden;
                    }
                    head = fmax(head, f);
                }
            for (int64_t j = 0; j < p->Skv; j++) {
                const int64_t r = (b * p->Skv + j) * p->Hkv + kv;
                for (int64_t d = r * p->Dk; d < (r + 1) * p->Dk; d++)
                    g[G_DK].cond[d] *= head + kappa[G_DK];
                for (int64_t d = r * p->Dv; d < (r + 1) * p->Dv; d++)
                    g[G_DV].cond[d] *= head + kappa[G_DV];
            }
            all = fmax(all, head);
        }
    for (int64_t x = 0; nt > G_DMASK && x < g[G_DMASK].n; x++)
        g[G_DMASK].cond[x] *= all + kappa[G_DMASK];
}

/* Gold, lowp and conditions of every gradient from the reference in f64 and in float. */
static int run_reference(const attn_sdpa_problem *p, attn_conf_gold *g, int nt)
{
    const attn_ref_sdpa_grads gold = {
        g[G_DQ].gold, g[G_DK].gold, g[G_DV].gold, nt > G_DMASK ? g[G_DMASK].gold : NULL,
        g[G_DQ].cond, g[G_DK].cond, g[G_DV].cond, nt > G_DMASK ? g[G_DMASK].cond : NULL};
    const attn_ref_sdpa_grads low = {g[G_DQ].lowp, g[G_DK].lowp, g[G_DV].lowp,
                                     nt > G_DMASK ? g[G_DMASK].lowp : NULL, NULL, NULL, NULL,
                                     NULL};
    if (attn_ref_sdpa_backward(p, ATTN_REF_F64, &gold) != ATTN_OK ||
        attn_ref_sdpa_backward(p, ATTN_REF_F32, &low) != ATTN_OK)
        return 2;
    return 0;
}

int attn_sdpa_backward_gold(const attn_sdpa_case *c, const attn_sdpa_desc *host,
                            const attn_conf_data *d, const attn_sdpa_fwd_gold *fw,
                            attn_conf_gold *g, int *ng)
{
    static const char *const names[G_N] = {"dq", "dk", "dv", "dmask_add"};
    const attn_sdpa_grads grads = {.dq = attn_conf_host_view(d, "dq"),
                                   .dk = attn_conf_host_view(d, "dk"),
                                   .dv = attn_conf_host_view(d, "dv"),
                                   .dmask_add = attn_conf_host_view(d, "dmask_add")};
    attn_sdpa_problem p;
    if (attn_sdpa_validate_backward(host, attn_conf_host_view(d, "q"),
                                    attn_conf_host_view(d, "k"), attn_conf_host_view(d, "v"),
                                    attn_conf_host_view(d, "out"), attn_conf_host_view(d, "lse"),
                                    attn_conf_host_view(d, "dout"), &grads, &p) != ATTN_OK)
        return 1;
    const int nt = c->dmask ? G_N : G_DMASK;
    const int64_t *ms = c->dmask ? grads.dmask_add->shape : NULL;
    const int64_t mask_rows = ms ? ms[0] * ms[1] * ms[2] : 1;
    const int64_t n[G_N] = {p.B * p.Sq * p.Hq * p.Dk, p.B * p.Skv * p.Hkv * p.Dk,
                            p.B * p.Skv * p.Hkv * p.Dv, mask_rows * (ms ? ms[3] : 0)};
    const attn_dtype dt[G_N] = {c->dt_q, c->dt_kv, c->dt_kv, ATTN_F32};
    /* dq sums over the keys of its row (after the logits' Dk and dP's Dv); dk and dv over the
     * rows of their KV head's group; dmask over the rows its broadcast dims fold together */
    const double rows_kv = (double)(p.group * p.Sq);
    const double n_acc[G_N] = {fw->n_acc + (double)p.Dv, fw->n_acc + (double)p.Dv + rows_kv,
                               fw->n_acc + (double)p.Dv + rows_kv,
                               fw->n_acc + (double)p.Dv +
                                   (double)(p.B * p.Sq * p.Hq) / (double)mask_rows *
                                       (double)(ms && ms[3] == 1 ? p.Skv : 1)};
    for (int t = 0; t < nt; t++) {
        g[t] = (attn_conf_gold){.name = names[t], .rank = 4, .order = {0, 1, 2, 3}};
        if (attn_conf_gold_alloc(&g[t], n[t], t == G_DQ))
            return 2;
    }
    if (run_reference(&p, g, nt))
        return 2;
    /* A fast backward takes D_i = dO_i . o_i from the stored out, rounded to its dtype (u_o):
     * D moves by up to u_o sum |dO| |o| <= u_o sum_j P_j |dO| |v_j|, which is part of dS's
     * magnitude, so the gradients through dS move by up to u_o times their magnitude. In
     * gate 2's units (c u_c sqrt(n_acc) cond) that is kappa = 2 u_o / (c u_c sqrt(n_acc)) added
     * to the logit factor (2: the f32 D's own error beside the rounding). dv does not use D. */
    const double u_o = attn_dtype_roundoff(c->dt_out), u_c = 0x1p-24;
    double kappa[G_N];
    for (int t = 0; t < G_N; t++)
        kappa[t] = t == G_DV ? 0.0 : 2.0 * u_o / (POLICY_C * u_c * sqrt(n_acc[t]));
    scale_conditions(&p, fw, kappa, g, nt);
    for (int t = 0; t < nt; t++) {
        attn_conf_round_lowp(&g[t], dt[t]);
        attn_policy_setup(&g[t].policy, dt[t], 0);
        g[t].policy.n_acc = n_acc[t];
        g[t].policy.calib_factor = t == G_DV ? CALIB_DV : CALIB_DS;
        if (t != G_DV && u_o > u_c) {
            /* Naive code never reads out, so with a half out its float run is no yardstick
             * for the gradients through D: gate 4 is off for them, and the NMSE limit is the
             * half out's, (2 u_o)^2, as for out itself. */
            g[t].policy.calib_factor = 0.0;
            g[t].policy.nmse_max = fmax(g[t].policy.nmse_max, 1e-9 + 4.0 * u_o * u_o);
        }
    }
    *ng = nt;
    return 0;
}
