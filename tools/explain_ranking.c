/* explain_ranking.c - the saliency study's human accuracy of its eight methods (Lu et al. 2024)
 * and the ranking of `attn explain`'s methods by the readers' weighted accuracies beside it:
 * ranks among the study's methods and Spearman's rho with the human ranks. */
#include "explain_tool.h"

#include <math.h>
#include <string.h>

const attn_explain_human attn_explain_human_acc[ATTN_EXPLAIN_N_HUMAN] = {
    {ATTN_EXPLAIN_INTEGRATED_GRADIENTS, "Integrated_Gradient", 0.818, 0.812},
    {ATTN_EXPLAIN_VANILLA_GRADIENT, "Vanilla_Gradient", 0.788, 0.726},
    {ATTN_EXPLAIN_ALL_ATTENTION, "All_Attention", 0.784, 0.764},
    {ATTN_EXPLAIN_LAST_ATTENTION, "Last_Attention", 0.672, 0.730},
    {ATTN_EXPLAIN_DEEPLIFT, "DeepLIFT", 0.536, 0.680},
    {ATTN_EXPLAIN_INPUT_X_GRADIENT, "InputXGrad", 0.520, 0.714},
    {ATTN_EXPLAIN_RANDOM, "Random", 0.434, 0.646},
    {ATTN_EXPLAIN_LIME, "LIME", 0.394, 0.640},
};

const attn_explain_human *attn_explain_human_of(attn_explain_method m)
{
    for (int i = 0; i < ATTN_EXPLAIN_N_HUMAN; i++)
        if (attn_explain_human_acc[i].method == m)
            return &attn_explain_human_acc[i];
    return NULL;
}

/* rank[i]: 1 + the number of the study's methods whose value beats value[i]; 0 for a method
 * the study did not run. */
static void study_ranks(int n, const double *value, const attn_explain_method *methods,
                        int *rank)
{
    for (int i = 0; i < n; i++) {
        rank[i] = attn_explain_human_of(methods[i]) ? 1 : 0;
        for (int j = 0; rank[i] && j < n; j++)
            rank[i] += attn_explain_human_of(methods[j]) && value[j] > value[i];
    }
}

/* Spearman's rho of two rankings over the methods that have both ranks: Pearson's correlation
 * of the ranks (exact with ties); NaN for fewer than 2 or a constant ranking. */
static double spearman(int n, const int *rank_a, const int *rank_b)
{
    double sa = 0, sb = 0, m = 0, ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++)
        if (rank_a[i] > 0 && rank_b[i] > 0) {
            sa += rank_a[i];
            sb += rank_b[i];
            m++;
        }
    for (int i = 0; m >= 2 && i < n; i++)
        if (rank_a[i] > 0 && rank_b[i] > 0) {
            const double a = rank_a[i] - sa / m, b = rank_b[i] - sb / m;
            ab += a * b;
            aa += a * a;
            bb += b * b;
        }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : NAN;
}

void attn_explain_tool_order(int n, const double *value, int *order)
{
    for (int k = 0; k < n; k++)
        order[k] = k;
    for (int a = 1; a < n; a++) /* insertion sort: stable, n <= 10 */
        for (int b = a; b > 0 && value[order[b]] > value[order[b - 1]]; b--) {
            const int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
}

void attn_explain_tool_ranking(int n, const attn_explain_method *methods, const double *model_avg,
                               const double *bow_avg, attn_explain_ranking *out)
{
    double imdb[ATTN_EXPLAIN_METHOD_COUNT], ag[ATTN_EXPLAIN_METHOD_COUNT];
    memset(out, 0, sizeof *out);
    for (int k = 0; k < n; k++) {
        const attn_explain_human *h = attn_explain_human_of(methods[k]);
        imdb[k] = h ? h->imdb : 0;
        ag[k] = h ? h->agnews : 0;
    }
    attn_explain_tool_order(n, model_avg, out->order);
    study_ranks(n, model_avg, methods, out->model);
    study_ranks(n, imdb, methods, out->imdb);
    study_ranks(n, ag, methods, out->agnews);
    out->rho_model_imdb = spearman(n, out->model, out->imdb);
    out->rho_model_agnews = spearman(n, out->model, out->agnews);
    out->rho_bow_imdb = out->rho_bow_agnews = NAN;
    if (bow_avg) {
        study_ranks(n, bow_avg, methods, out->bow);
        out->rho_bow_imdb = spearman(n, out->bow, out->imdb);
        out->rho_bow_agnews = spearman(n, out->bow, out->agnews);
    }
}
