/* explain_summary.c - what `attn explain` reports: on stdout the one-line summary and the
 * evaluated run's tables (the readers' accuracies by k, planted precision and recall,
 * faithfulness, the ranking beside the saliency study's); in the --out directory every
 * method's scores, eval.json (every figure) and report.html (explain_html.c). */
#include "explain_html.h"
#include "explain_tool.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define CMD "explain"

/* ---- stdout ---------------------------------------------------------------------------------- */

/* "5%" or "4" for reader k j. */
static void k_label(const attn_explain_eval_options *eo, int64_t j, char *buf, size_t n)
{
    if (eo->k_as_fraction)
        snprintf(buf, n, "%g%%", 100 * eo->k[j]);
    else
        snprintf(buf, n, "%g", eo->k[j]);
}

/* One table of a figure per k: rows the methods, then the weighted average when avg. */
static void print_k_table(const attn_explain_tool_run *r, const char *title, size_t field,
                          const double *w, const double *avg)
{
    char lab[32];
    printf("\n%s\n%-22s", title, "method");
    for (int64_t j = 0; j < r->eo.n_k; j++) {
        k_label(&r->eo, j, lab, sizeof lab);
        printf(" %7s", lab);
    }
    printf(avg ? "  weighted\n" : "\n");
    for (int k = 0; k < r->n_methods; k++) {
        const double *v = (const double *)((const char *)&r->eval[k] + field);
        printf("%-22s", attn_explain_method_name(r->methods[k]));
        for (int64_t j = 0; j < r->eo.n_k; j++)
            printf(" %7.3f", v[j]);
        if (avg)
            printf("  %8.3f", avg[k]);
        printf("\n");
    }
    if (w) {
        printf("%-22s", "weight of k");
        for (int64_t j = 0; j < r->eo.n_k; j++)
            printf(" %7.3f", w[j]);
        printf("\n");
    }
}

static void print_faithfulness(const attn_explain_tool_run *r)
{
    printf("\nfaithfulness (p of the class predicted on the full text)\n");
    printf("%-22s %8s %8s %8s %8s %8s %8s %8s\n", "method", "comp", "suff", "aopc", "log-odds",
           "del-auc", "ins-auc", "seconds");
    for (int k = 0; k < r->n_methods; k++) {
        const attn_explain_eval *e = &r->eval[k];
        printf("%-22s %8.4f %8.4f %8.4f %8.4f %8.4f %8.4f %8.3f\n",
               attn_explain_method_name(r->methods[k]), e->comprehensiveness, e->sufficiency,
               e->aopc, e->log_odds, e->deletion_auc, e->insertion_auc, r->seconds[k]);
    }
}

/* "    0.812 (1)": a figure and its rank ("-" for none), 13 columns. */
static void print_rank_cell(int rank, double v)
{
    if (rank > 0)
        printf(" %8.3f (%d)", v, rank);
    else
        printf(" %8.3f (-)", v);
}

/* The ranking by the model reader, each method's ranks among the study's eight beside the
 * study's human accuracy and rank. */
static void print_ranking(const attn_explain_tool_run *r)
{
    attn_explain_ranking rk;
    attn_explain_tool_ranking(r->n_methods, r->methods, r->model_avg, r->bow ? r->bow_avg : NULL,
                              &rk);
    printf("\nranking by the weighted accuracy of the model reader%s (rank among the study's "
           "methods)\nbeside the study's human accuracy (Lu et al. 2024: unweighted mean over k "
           "of the released crowd data)\n", r->bow ? " and of the bag-of-words reader" : "");
    printf("%-22s %12s %12s %12s %12s\n", "method", "model", r->bow ? "bag-of-words" : "",
           "human IMDB", "human AGNEWS");
    for (int i = 0; i < r->n_methods; i++) {
        const int k = rk.order[i];
        const attn_explain_human *h = attn_explain_human_of(r->methods[k]);
        printf("%-22s", attn_explain_method_name(r->methods[k]));
        print_rank_cell(rk.model[k], r->model_avg[k]);
        if (r->bow)
            print_rank_cell(rk.bow[k], r->bow_avg[k]);
        else
            printf(" %12s", "");
        if (h) {
            print_rank_cell(rk.imdb[k], h->imdb);
            print_rank_cell(rk.agnews[k], h->agnews);
        } else {
            printf("   (not in the study)");
        }
        printf("\n");
    }
    printf("Spearman's rho with the human ranking: model reader %.3f (IMDB), %.3f (AGNEWS)",
           rk.rho_model_imdb, rk.rho_model_agnews);
    if (r->bow)
        printf("; bag-of-words reader %.3f (IMDB), %.3f (AGNEWS)", rk.rho_bow_imdb,
               rk.rho_bow_agnews);
    printf("\n");
}

void attn_explain_tool_print_report(const attn_explain_tool_run *r)
{
    print_k_table(r, "model reader: accuracy with the top k eligible tokens shown",
                  offsetof(attn_explain_eval, model_acc), r->model_w, r->model_avg);
    if (r->bow)
        print_k_table(r, "bag-of-words reader: accuracy with the top k eligible tokens shown",
                      offsetof(attn_explain_eval, bow_acc), r->bow_w, r->bow_avg);
    if (r->eo.rationale) {
        print_k_table(r, "planted precision of the top k", offsetof(attn_explain_eval, precision),
                      NULL, NULL);
        print_k_table(r, "planted recall of the top k", offsetof(attn_explain_eval, recall),
                      NULL, NULL);
    }
    print_faithfulness(r);
    print_ranking(r);
}

void attn_explain_tool_print_summary(const attn_explain_tool_opts *o,
                                     const attn_explain_tool_run *r, attn_backend *be,
                                     double seconds)
{
    printf("attn explain: ");
    attn_model_tool_print_sizes(stdout, r->m);
    printf("; %lld texts x S %lld; %s; backend %s; %.3f s\n", (long long)r->x.batch,
           (long long)r->x.seq,
           o->all ? (r->labels_predicted ? "labels: the model's predictions" : "gold labels")
                  : attn_explain_method_name(o->method),
           attn_backend_describe(be), seconds);
}

/* ---- files ----------------------------------------------------------------------------------- */

static cJSON *json_doubles(const double *v, int64_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* One method's figures. */
static cJSON *json_method(const attn_explain_tool_run *r, int k)
{
    const attn_explain_eval *e = &r->eval[k];
    const int64_t nk = r->eo.n_k, np = r->eo.curve_points;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "model_acc", json_doubles(e->model_acc, nk));
    cJSON_AddNumberToObject(j, "model_weighted", r->model_avg[k]);
    if (r->bow) {
        cJSON_AddItemToObject(j, "bow_acc", json_doubles(e->bow_acc, nk));
        cJSON_AddNumberToObject(j, "bow_weighted", r->bow_avg[k]);
    }
    if (r->eo.rationale) {
        cJSON_AddItemToObject(j, "precision", json_doubles(e->precision, nk));
        cJSON_AddItemToObject(j, "recall", json_doubles(e->recall, nk));
    }
    static const char *const names[] = {"comprehensiveness", "sufficiency", "aopc", "log_odds",
                                        "deletion_auc", "insertion_auc", "seconds"};
    const double v[] = {e->comprehensiveness, e->sufficiency, e->aopc, e->log_odds,
                        e->deletion_auc, e->insertion_auc, r->seconds[k]};
    for (int i = 0; i < 7; i++)
        cJSON_AddNumberToObject(j, names[i], v[i]);
    cJSON_AddItemToObject(j, "deletion", json_doubles(e->deletion, np));
    cJSON_AddItemToObject(j, "insertion", json_doubles(e->insertion, np));
    return j;
}

/* The method names in the order of their weighted accuracy (best first, stable). */
static cJSON *json_ranking(const attn_explain_tool_run *r, const double *avg)
{
    int order[ATTN_EXPLAIN_METHOD_COUNT];
    attn_explain_tool_order(r->n_methods, avg, order);
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < r->n_methods; k++)
        cJSON_AddItemToArray(a, cJSON_CreateString(attn_explain_method_name(r->methods[order[k]])));
    return a;
}

static cJSON *json_human(void)
{
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "source", "Lu et al. 2024, the released crowd data: unweighted "
                            "mean of Correct over 100 texts x 5 k");
    for (int i = 0; i < ATTN_EXPLAIN_N_HUMAN; i++) {
        const attn_explain_human *u = &attn_explain_human_acc[i];
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "study_name", u->study_name);
        cJSON_AddNumberToObject(m, "imdb", u->imdb);
        cJSON_AddNumberToObject(m, "agnews", u->agnews);
        cJSON_AddItemToObject(h, attn_explain_method_name(u->method), m);
    }
    return h;
}

static cJSON *json_eval(const attn_explain_tool_run *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "texts", (double)r->x.batch);
    cJSON_AddNumberToObject(j, "seq", (double)r->x.seq);
    cJSON_AddStringToObject(j, "labels", r->labels_predicted ? "predicted" : "gold");
    cJSON_AddItemToObject(j, "k", json_doubles(r->eo.k, r->eo.n_k));
    cJSON_AddBoolToObject(j, "k_as_fraction", r->eo.k_as_fraction);
    cJSON_AddItemToObject(j, "bins", json_doubles(r->eo.bins, r->eo.n_bins));
    cJSON_AddNumberToObject(j, "aopc_steps", (double)r->eo.aopc_steps);
    cJSON_AddNumberToObject(j, "log_odds_fraction", r->eo.log_odds_fraction);
    cJSON_AddNumberToObject(j, "curve_points", (double)r->eo.curve_points);
    cJSON_AddNumberToObject(j, "filler_id", r->eo.filler_id);
    cJSON_AddItemToObject(j, "model_weights", json_doubles(r->model_w, r->eo.n_k));
    if (r->bow)
        cJSON_AddItemToObject(j, "bow_weights", json_doubles(r->bow_w, r->eo.n_k));
    cJSON *m = cJSON_CreateObject();
    for (int k = 0; k < r->n_methods; k++)
        cJSON_AddItemToObject(m, attn_explain_method_name(r->methods[k]), json_method(r, k));
    cJSON_AddItemToObject(j, "methods", m);
    cJSON *rank = cJSON_CreateObject();
    cJSON_AddItemToObject(rank, "model", json_ranking(r, r->model_avg));
    if (r->bow)
        cJSON_AddItemToObject(rank, "bow", json_ranking(r, r->bow_avg));
    cJSON_AddItemToObject(j, "ranking", rank);
    cJSON_AddItemToObject(j, "human", json_human());
    return j;
}

static int write_json(const char *path, const attn_explain_tool_run *r)
{
    cJSON *j = json_eval(r);
    char *text = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    FILE *f = text ? fopen(path, "w") : NULL;
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "attn explain: cannot write %s\n", path);
    free(text);
    return ok ? 0 : -1;
}

static int write_report(const attn_explain_tool_opts *o, const attn_explain_tool_run *r,
                        const char *path)
{
    const attn_model_config *c = attn_model_get_config(r->m);
    const attn_explain_report rep = {
        .model_dir = o->f[ATTN_EXPLAIN_F_MODEL], .B = r->x.batch, .S = r->x.seq,
        .n_show = o->show < r->x.batch ? o->show : r->x.batch, .ids = r->x.ids,
        .mask = r->x.attention_mask, .eligible = r->eligible, .rationale = r->eo.rationale,
        .labels = r->labels, .labels_predicted = r->labels_predicted, .pred = r->pred,
        .targets = r->targets ? r->targets : r->pred, .vocab = r->vocab.n ? r->vocab.tokens : NULL,
        .n_vocab = r->vocab.n < c->vocab_size ? r->vocab.n : c->vocab_size,
        .n_methods = r->n_methods, .methods = r->methods,
        .scores = (const float *const *)r->scores, .eval = r->eval, .eval_opt = &r->eo,
        .have_bow = r->bow != NULL, .model_weights = r->model_w, .model_avg = r->model_avg,
        .bow_weights = r->bow_w, .bow_avg = r->bow_avg};
    return attn_explain_html_write(CMD, path, &rep);
}

int attn_explain_tool_write_all(const attn_explain_tool_opts *o, const attn_explain_tool_run *r)
{
    const char *dir = o->f[ATTN_EXPLAIN_F_OUT];
    const int64_t shape[2] = {r->x.batch, r->x.seq};
    char path[4096], name[64];
    if (attn_model_tool_mkdirs(CMD, dir))
        return -1;
    for (int k = 0; k < r->n_methods; k++) {
        snprintf(name, sizeof name, "%s.npy", attn_explain_method_name(r->methods[k]));
        if (attn_model_tool_path(CMD, dir, name, path, sizeof path) ||
            attn_model_tool_save(CMD, path, ATTN_NPY_F32, 2, shape, r->scores[k]))
            return -1;
    }
    if (attn_model_tool_path(CMD, dir, "eval.json", path, sizeof path) || write_json(path, r))
        return -1;
    return attn_model_tool_path(CMD, dir, "report.html", path, sizeof path) ||
                   write_report(o, r, path)
               ? -1
               : 0;
}
