/* transnormer_conform.c - the conformance driver of TransNormer (attn_conform.h): the tensors
 * of a case (q, k, v, out in BSHD or BHSD views), their fills, the call through the public API,
 * and the gold of out from the f64 reference with its condition scale (docs/conformance.md,
 * "TransNormer"). Cases: transnormer_case.c; built-in list: tests/cases/transnormer.cases. */
#include "attn_conform.h"

#include "attn_half.h"
#include "attn_tool_ops.h"
#include "transnormer_case.h"
#include "transnormer_ref.h"
#include "transnormer_tool.h"

#include <math.h>
#include <stdlib.h>

_Static_assert(sizeof(attn_transnormer_case) <= ATTN_CASE_DATA_MAX,
               "attn_case holds attn_transnormer_case");

static int tn_make(const void *cv, size_t gin, attn_conf_data *d)
{
    const attn_transnormer_case *c = cv;
    attn_conf_buf *q = attn_conf_add(d, "q", 0), *k = attn_conf_add(d, "k", 0);
    attn_conf_buf *v = attn_conf_add(d, "v", 0), *o = attn_conf_add(d, "out", 1);
    int rc = attn_conf_buf_dense(q, c->dt_q, c->b, c->s, c->hq, c->dk, c->bhsd, gin);
    rc |= attn_conf_buf_dense(k, c->dt_kv, c->b, c->s, c->hkv, c->dk, c->bhsd, gin);
    rc |= attn_conf_buf_dense(v, c->dt_kv, c->b, c->s, c->hkv, c->dv, c->bhsd, gin);
    rc |= attn_conf_buf_dense(o, c->dt_out, c->b, c->s, c->hq, c->dv, c->bhsd,
                              ATTN_CONF_GUARD_BYTES);
    return rc;
}

static void tn_fill(const void *cv, uint64_t seed, attn_conf_data *d)
{
    const attn_transnormer_case *c = cv;
    attn_fill_tensor(attn_conf_host_view(d, "q"), c->fill, seed, ATTN_FILL_Q);
    attn_fill_tensor(attn_conf_host_view(d, "k"), c->fill, seed, ATTN_FILL_K);
    attn_fill_tensor(attn_conf_host_view(d, "v"), c->fill, seed, ATTN_FILL_V);
    attn_linear_plant(c->special, attn_conf_host_view(d, "k"), attn_conf_host_view(d, "v"));
}

static double tn_elems(const void *cv)
{
    const attn_transnormer_case *c = cv;
    const double d = (double)(c->dk > c->dv ? c->dk : c->dv);
    return (double)c->b * (double)c->s * (double)(c->hq + 2 * c->hkv) * d;
}

static attn_status tn_call(attn_backend *be, const void *cv, const attn_conf_data *d,
                           attn_conf_call what, char *impl, size_t n)
{
    const attn_transnormer_desc desc = attn_transnormer_case_desc(cv);
    const attn_tensor *q = attn_conf_run_view(d, "q"), *k = attn_conf_run_view(d, "k");
    const attn_tensor *v = attn_conf_run_view(d, "v"), *o = attn_conf_run_view(d, "out");
    if (what == ATTN_CONF_IMPL)
        return attn_transnormer_impl_name(be, &desc, q, k, v, o, impl, n);
    return attn_transnormer_forward(be, &desc, q, k, v, o);
}

/* ---- gold ----------------------------------------------------------------------------------- */

/* Softmax DiagAttention: the condition sum_j p_j |v_j| times (1 + A), A = |scale| |q_i|_2
 * max_j |k_j|_2 bounding the logits (their float error ~u sqrt(Dk) A moves the output by up to
 * ~2 |ds| absmag), exactly as for softmax attention (docs/conformance.md, gate 2). */
static void softmax_logit_factor(const attn_transnormer_problem *p, double *absmag)
{
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++) {
            double kmax = 0.0;
            for (int64_t j = 0; j < p->S; j++)
                kmax = fmax(kmax, attn_conf_row_norm(&p->k, b, j, g, p->Dk));
            for (int64_t i = 0; i < p->S; i++)
                for (int64_t h = g * p->group; h < (g + 1) * p->group; h++) {
                    const double qn = attn_conf_row_norm(&p->q, b, i, h, p->Dk);
                    const double f = 1.0 + fabs(p->scale) * qn * kmax;
                    double *a = absmag + ((b * p->S + i) * p->Hq + h) * p->Dv;
                    for (int64_t d = 0; d < p->Dv; d++)
                        a[d] *= f;
                }
        }
}

/* Longest accumulation: the dot product, the most keys a row sees, and the norm's sum of
 * squares over the token's Hq * Dv values. */
static double acc_length(const attn_transnormer_problem *p)
{
    int64_t w = 0, lo, hi;
    for (int64_t i = 0; i < p->S; i++) {
        attn_transnormer_keys(p, i, &lo, &hi);
        w = hi - lo > w ? hi - lo : w;
    }
    return (double)(p->Dk + w + (p->srms ? p->Hq * p->Dv : 0));
}

static int tn_gold(const void *cv, const attn_conf_data *d, attn_conf_gold *g, int *ng)
{
    const attn_transnormer_case *c = cv;
    const attn_transnormer_desc desc = attn_transnormer_case_desc(c);
    attn_transnormer_problem p;
    if (attn_transnormer_validate(&desc, attn_conf_host_view(d, "q"), attn_conf_host_view(d, "k"),
                                  attn_conf_host_view(d, "v"), attn_conf_host_view(d, "out"),
                                  &p) != ATTN_OK)
        return 1;
    const int64_t n = p.B * p.S * p.Hq * p.Dv;
    attn_conf_gold *go = &g[0];
    *go = (attn_conf_gold){.name = "out", .rank = 4, .order = {0, 1, 2, 3}};
    double *pre = attn_ref_alloc(n, 1), *absmag = attn_ref_alloc(n, 1);
    int rc = !pre || !absmag || attn_conf_gold_alloc(go, n, 0);
    if (!rc)
        rc = attn_ref_transnormer(&p, ATTN_REF_F64, go->gold, pre, absmag) != ATTN_OK ||
             attn_ref_transnormer(&p, ATTN_REF_F32, go->lowp, NULL, NULL) != ATTN_OK;
    if (!rc) {
        if (p.mode == ATTN_TRANSNORMER_MODE_DIAG && p.scores == ATTN_TRANSNORMER_SCORES_SOFTMAX)
            softmax_logit_factor(&p, absmag);
        attn_ref_transnormer_cond(&p, pre, absmag, go->gold, go->cond);
        for (int64_t e = 0; e < n; e++) { /* as a naive kernel would store it */
            unsigned char tmp[4];
            attn_store_f64(tmp, c->dt_out, 0, go->lowp[e]);
            go->lowp[e] = attn_load_f64(tmp, c->dt_out, 0);
        }
    }
    free(pre);
    free(absmag);
    if (rc)
        return 2;
    attn_policy_setup(&go->policy, c->dt_out, 0);
    go->policy.n_acc = acc_length(&p);
    *ng = 1;
    return 0;
}

/* ---- the driver ----------------------------------------------------------------------------- */

static void case_default(void *c)
{
    attn_transnormer_case_default(c);
}

static int case_token(char *tok, void *c, char *err, size_t errsize)
{
    return attn_transnormer_case_token(tok, c, err, errsize);
}

static int case_format(const void *c, char *buf, size_t size)
{
    return attn_transnormer_case_format(c, buf, size);
}

static unsigned features(const void *c)
{
    return attn_transnormer_case_features(c);
}

static double cost(const void *c)
{
    return attn_transnormer_case_cost(c);
}

static const attn_conform_driver attn_transnormer_driver = {
    .stem = "transnormer",
    .case_default = case_default,
    .case_token = case_token,
    .case_check = NULL,
    .case_format = case_format,
    .features = features,
    .feature_names = attn_transnormer_feature_names,
    .n_features = ATTN_TN_FEAT_COUNT,
    .elems = tn_elems,
    .cost = cost,
    .make = tn_make,
    .fill = tn_fill,
    .call = tn_call,
    .gold = tn_gold,
};

const attn_tool_op attn_transnormer_tool = {
    .stem = "transnormer",
    .summary = "TransNormer: NormAttention (linear, no denominator, SRMSNorm) and "
               "DiagAttention (block-diagonal softmax or ReLU)",
    .conform = &attn_transnormer_driver,
    .run = attn_transnormer_cmd_run,
    .run_help = attn_transnormer_run_help,
    .run_opts_help = attn_args_transnormer_help,
#ifdef ATTN_HAVE_CPU
    .bench = attn_transnormer_cmd_bench,
#endif
};
