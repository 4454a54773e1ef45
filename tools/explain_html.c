/* explain_html.c - the report of `attn explain` as one self-contained HTML file (no script, no
 * network): every shown text once per method with its tokens coloured by score, a legend, the
 * evaluation tables, the deletion and insertion curves as inline SVG and the comparison of the
 * readers' ranking with the study's human ranking. */
#include "explain_html.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* One colour per method (matplotlib's tab10), in the curves and their legend. */
static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_PALETTE (int)(sizeof palette / sizeof palette[0])

static const char style[] =
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\n"
    "h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}\n"
    "h3{font-size:15px;margin:18px 0 6px}\n"
    "table{border-collapse:collapse;margin:8px 0}\n"
    "th,td{padding:3px 8px;border:1px solid #ddd;text-align:right}\n"
    "th:first-child,td:first-child{text-align:left}\n"
    "td.best{font-weight:bold;background:#eef6ee}\n"
    "table.tokens td{text-align:left;border:none;border-bottom:1px solid #eee;line-height:1.9}\n"
    "table.tokens th{text-align:left;border:none;font-weight:normal;color:#555;"
    "white-space:nowrap;vertical-align:top;padding-top:6px}\n"
    ".t{padding:1px 3px;margin:0 1px;border-radius:3px;white-space:nowrap}\n"
    ".x{color:#999}\n"
    ".p{border-bottom:2px solid #000}\n"
    ".bar{display:inline-block;width:160px;height:12px;vertical-align:middle;"
    "border:1px solid #aaa}\n"
    ".note{background:#fff4d6;border:1px solid #e0c060;padding:6px 10px}\n"
    ".small{color:#555;font-size:12px}\n";

/* ---- text ------------------------------------------------------------------------------------ */

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
}

/* A token's text: vocab.txt's string, else "#id". */
static void put_token(FILE *f, const attn_explain_report *r, int32_t id)
{
    if (r->vocab && id >= 0 && id < r->n_vocab)
        put_escaped(f, r->vocab[id]);
    else
        fprintf(f, "#%d", (int)id);
}

/* "5%" or "4": reader k j. */
static void put_k(FILE *f, const attn_explain_eval_options *eo, int64_t j)
{
    if (eo->k_as_fraction)
        fprintf(f, "%g%%", 100 * eo->k[j]);
    else
        fprintf(f, "%g", eo->k[j]);
}

/* ---- the coloured texts ---------------------------------------------------------------------- */

/* A method that scores with a sign (input x gradient, integrated gradients, DeepLIFT, LIME, or
 * any whose shown texts have an eligible token below 0) gets the diverging scale. */
static int is_signed(const attn_explain_report *r, attn_explain_method m, const float *s)
{
    if (m == ATTN_EXPLAIN_INPUT_X_GRADIENT || m == ATTN_EXPLAIN_INTEGRATED_GRADIENTS ||
        m == ATTN_EXPLAIN_DEEPLIFT || m == ATTN_EXPLAIN_LIME)
        return 1;
    for (int64_t i = 0; i < r->n_show * r->S; i++)
        if (r->eligible[i] && s[i] < 0)
            return 1;
    return 0;
}

/* The largest |score| among the eligible tokens of row b (0 when none or all 0). */
static double row_scale(const attn_explain_report *r, const float *s, int64_t b)
{
    double top = 0;
    for (int64_t j = b * r->S; j < (b + 1) * r->S; j++)
        if (r->eligible[j] && isfinite(s[j]))
            top = fmax(top, fabs(s[j]));
    return top;
}

/* The background of a score normalised to [-1, 1]: red above 0 and blue below on a signed
 * method's diverging scale, orange on a non-negative method's. */
static void put_colour(FILE *f, double v, int signed_scale)
{
    const double a = fmin(1.0, fabs(v));
    const char *rgb = !signed_scale ? "230,120,0" : v >= 0 ? "214,39,40" : "31,119,180";
    fprintf(f, "background:rgba(%s,%.2f)", rgb, a);
}

static void put_text_row(FILE *f, const attn_explain_report *r, int64_t b, const float *s,
                         int signed_scale)
{
    const double top = row_scale(r, s, b);
    for (int64_t j = b * r->S; j < (b + 1) * r->S; j++) {
        if (r->mask && !r->mask[j])
            continue;
        const char *planted = r->rationale && r->rationale[j] ? " p" : "";
        if (!r->eligible[j]) {
            fprintf(f, "<span class=\"t x%s\">", planted);
        } else {
            fprintf(f, "<span class=\"t%s\" title=\"%.4g\" style=\"", planted, (double)s[j]);
            put_colour(f, top > 0 ? s[j] / top : 0, signed_scale);
            fputs("\">", f);
        }
        put_token(f, r, r->ids[j]);
        fputs("</span> ", f);
    }
}

static void put_legend(FILE *f, const attn_explain_report *r)
{
    fputs("<p>Each row is one method's scores of the text, normalised per text and method by the "
          "largest |score| among the eligible tokens. Hover a token for its score.</p>\n<p>"
          "<span class=\"bar\" style=\"background:linear-gradient(to right,rgb(31,119,180),"
          "#fff,rgb(214,39,40))\"></span> a signed method (the class's evidence red, against it "
          "blue) &nbsp; <span class=\"bar\" style=\"background:linear-gradient(to right,#fff,"
          "rgb(230,120,0))\"></span> a non-negative method<br>", f);
    fputs("<span class=\"t x\">grey</span> not ranked (special tokens, punctuation, the first "
          "and last token without vocab.txt)", f);
    if (r->rationale)
        fputs(" &nbsp; <span class=\"t p\">underlined</span> planted (the rationale)", f);
    fputs("</p>\n", f);
}

static void put_texts(FILE *f, const attn_explain_report *r)
{
    int signed_scale[ATTN_EXPLAIN_METHOD_COUNT];
    for (int k = 0; k < r->n_methods; k++)
        signed_scale[k] = is_signed(r, r->methods[k], r->scores[k]);
    fprintf(f, "<h2>Texts (the first %lld of %lld)</h2>\n", (long long)r->n_show,
            (long long)r->B);
    put_legend(f, r);
    for (int64_t b = 0; b < r->n_show; b++) {
        fprintf(f, "<h3>Text %lld: label %d%s, predicted %d, class explained %d</h3>\n"
                "<table class=\"tokens\">\n", (long long)b, (int)r->labels[b],
                r->labels_predicted ? " (the model's)" : "", (int)r->pred[b], (int)r->targets[b]);
        for (int k = 0; k < r->n_methods; k++) {
            fprintf(f, "<tr><th>%s</th><td>", attn_explain_method_name(r->methods[k]));
            put_text_row(f, r, b, r->scores[k], signed_scale[k]);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
}

/* ---- tables ---------------------------------------------------------------------------------- */

/* The opening of a table: the method column, then the n headers. */
static void put_head(FILE *f, int n, const char *const *head)
{
    fputs("<table>\n<tr><th>method</th>", f);
    for (int i = 0; i < n; i++)
        fprintf(f, "<th>%s</th>", head[i]);
    fputs("</tr>\n", f);
}

/* v as shown, 3 decimals (no "-0.000"). */
static double shown(double v)
{
    const double r = round(v * 1000) / 1000;
    return r == 0 ? 0 : r;
}

/* A cell, bold when it is the column's best as shown (higher_better: the largest, else the
 * smallest; ties all bold). */
static void put_cell(FILE *f, double v, const double *col, int n, int higher_better)
{
    int best = 1;
    for (int i = 0; i < n; i++)
        best &= higher_better ? shown(col[i]) <= shown(v) : shown(col[i]) >= shown(v);
    fprintf(f, "<td%s>%.3f</td>", best && n > 1 ? " class=\"best\"" : "", shown(v));
}

/* A figure per k (the eval field at `field`): a row per method, then the weighted average and
 * the weights of k when avg. */
static void put_k_table(FILE *f, const attn_explain_report *r, const char *title, size_t field,
                        const double *weights, const double *avg)
{
    const attn_explain_eval_options *eo = r->eval_opt;
    double col[ATTN_EXPLAIN_METHOD_COUNT];
    fprintf(f, "<h3>%s</h3>\n<table>\n<tr><th>method</th>", title);
    for (int64_t j = 0; j < eo->n_k; j++) {
        fputs("<th>k ", f);
        put_k(f, eo, j);
        fputs("</th>", f);
    }
    fputs(avg ? "<th>weighted</th></tr>\n" : "</tr>\n", f);
    for (int k = 0; k < r->n_methods; k++) {
        fprintf(f, "<tr><td>%s</td>", attn_explain_method_name(r->methods[k]));
        for (int64_t j = 0; j < eo->n_k; j++) {
            for (int i = 0; i < r->n_methods; i++)
                col[i] = ((const double *)((const char *)&r->eval[i] + field))[j];
            put_cell(f, col[k], col, r->n_methods, 1);
        }
        if (avg)
            put_cell(f, avg[k], avg, r->n_methods, 1);
        fputs("</tr>\n", f);
    }
    if (weights) {
        fputs("<tr><td><i>weight of k</i></td>", f);
        for (int64_t j = 0; j < eo->n_k; j++)
            fprintf(f, "<td>%.3f</td>", weights[j]);
        fputs("<td></td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void put_faithfulness(FILE *f, const attn_explain_report *r)
{
    static const char *const head[] = {"comprehensiveness &uarr;", "sufficiency &darr;",
                                       "AOPC &uarr;", "log-odds &darr;", "deletion AUC &darr;",
                                       "insertion AUC &uarr;"};
    static const size_t field[] = {
        offsetof(attn_explain_eval, comprehensiveness), offsetof(attn_explain_eval, sufficiency),
        offsetof(attn_explain_eval, aopc), offsetof(attn_explain_eval, log_odds),
        offsetof(attn_explain_eval, deletion_auc), offsetof(attn_explain_eval, insertion_auc)};
    static const int higher[] = {1, 0, 1, 0, 0, 1};
    double col[6][ATTN_EXPLAIN_METHOD_COUNT];
    for (int c = 0; c < 6; c++)
        for (int k = 0; k < r->n_methods; k++)
            col[c][k] = *(const double *)((const char *)&r->eval[k] + field[c]);
    fputs("<h3>Faithfulness</h3>\n<p class=\"small\">p is the model's probability of the class "
          "it predicts on the full text; &uarr; higher is better, &darr; lower.</p>\n", f);
    put_head(f, 6, head);
    for (int k = 0; k < r->n_methods; k++) {
        fprintf(f, "<tr><td>%s</td>", attn_explain_method_name(r->methods[k]));
        for (int c = 0; c < 6; c++)
            put_cell(f, col[c][k], col[c], r->n_methods, higher[c]);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* A figure and its rank among the study's methods ("-" for none). */
static void put_ranked(FILE *f, double v, int rank)
{
    if (rank > 0)
        fprintf(f, "<td>%.3f (%d)</td>", v, rank);
    else
        fprintf(f, "<td>%.3f (&ndash;)</td>", v);
}

static void put_human(FILE *f, const attn_explain_report *r)
{
    attn_explain_ranking rk;
    attn_explain_tool_ranking(r->n_methods, r->methods, r->model_avg,
                              r->have_bow ? r->bow_avg : NULL, &rk);
    static const char *const head[] = {"model reader", "bag-of-words reader", "human, IMDB",
                                       "human, AG News"};
    fputs("<h2>The readers' ranking beside the study's human ranking</h2>\n<p>Weighted accuracy "
          "of each simulated reader (rank among the study's methods in brackets), beside the "
          "study's human accuracy: Lu et al. 2024, \"Evaluating Saliency Explanations in NLP by "
          "Crowdsourcing\", the unweighted mean over k of <code>Correct</code> in the released "
          "crowd data (100 texts &times; 5 k per data set). Rollout and flow were not in the "
          "study.</p>\n", f);
    put_head(f, r->have_bow ? 4 : 3, r->have_bow ? head : (const char *const[]){head[0], head[2],
                                                                                head[3]});
    for (int i = 0; i < r->n_methods; i++) {
        const int k = rk.order[i];
        const attn_explain_human *h = attn_explain_human_of(r->methods[k]);
        fprintf(f, "<tr><td>%s</td>", attn_explain_method_name(r->methods[k]));
        put_ranked(f, r->model_avg[k], rk.model[k]);
        if (r->have_bow)
            put_ranked(f, r->bow_avg[k], rk.bow[k]);
        if (h) {
            fprintf(f, "<td>%.3f (%d)</td><td>%.3f (%d)</td>", h->imdb, rk.imdb[k], h->agnews,
                    rk.agnews[k]);
        } else {
            fputs("<td>&ndash;</td><td>&ndash;</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fprintf(f, "</table>\n<p>Spearman's &rho; with the human ranking: model reader %.3f (IMDB), "
            "%.3f (AG News)", rk.rho_model_imdb, rk.rho_model_agnews);
    if (r->have_bow)
        fprintf(f, "; bag-of-words reader %.3f (IMDB), %.3f (AG News)", rk.rho_bow_imdb,
                rk.rho_bow_agnews);
    fputs(".</p>\n", f);
}

/* ---- curves ---------------------------------------------------------------------------------- */

enum { SVG_W = 640, SVG_H = 330, PLOT_X = 60, PLOT_Y = 20, PLOT_W = 380, PLOT_H = 250 };

static double svg_x(double t) { return PLOT_X + t * PLOT_W; }
static double svg_y(double p) { return PLOT_Y + (1 - fmin(1, fmax(0, p))) * PLOT_H; }

static void put_axes(FILE *f, const char *xlabel)
{
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#444\"/>\n", PLOT_X, PLOT_Y, PLOT_W, PLOT_H);
    for (int i = 0; i <= 4; i++) {
        const double v = i / 4.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%g%%</text>\n",
                svg_x(v), PLOT_Y, svg_x(v), PLOT_Y + PLOT_H, svg_x(v), PLOT_Y + PLOT_H + 14,
                100 * v);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.2f</text>\n",
                PLOT_X, svg_y(v), PLOT_X + PLOT_W, svg_y(v), PLOT_X - 5, svg_y(v) + 4, v);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n",
            svg_x(0.5), PLOT_Y + PLOT_H + 32, xlabel);
    fprintf(f, "<text transform=\"translate(16 %.1f) rotate(-90)\" font-size=\"12\" "
            "text-anchor=\"middle\">p(predicted class)</text>\n", svg_y(0.5));
}

/* One curve per method (deletion or insertion), axes and legend. */
static void put_curves(FILE *f, const attn_explain_report *r, int insertion)
{
    const int64_t np = r->eval_opt->curve_points;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s curves\">\n", SVG_W, SVG_H,
            SVG_W, SVG_H, insertion ? "insertion" : "deletion");
    put_axes(f, insertion ? "top eligible tokens shown (the rest the filler)"
                          : "top eligible tokens removed (replaced by the filler)");
    for (int k = 0; k < r->n_methods; k++) {
        const double *c = insertion ? r->eval[k].insertion : r->eval[k].deletion;
        const char *colour = palette[k % N_PALETTE];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colour);
        for (int64_t i = 0; i < np; i++)
            fprintf(f, "%.1f,%.1f ", svg_x((double)i / (double)(np - 1)), svg_y(c[i]));
        const double ly = PLOT_Y + 10 + 20 * k;
        fprintf(f, "\"/>\n<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"3\"/><text x=\"%d\" y=\"%.1f\" font-size=\"12\">%s</text>\n",
                PLOT_X + PLOT_W + 14, ly, PLOT_X + PLOT_W + 38, ly, colour,
                PLOT_X + PLOT_W + 44, ly + 4, attn_explain_method_name(r->methods[k]));
    }
    fputs("</svg>\n", f);
}

/* ---- the document ---------------------------------------------------------------------------- */

static void put_header(FILE *f, const attn_explain_report *r)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<title>attn explain: token saliency</title>\n<style>\n", f);
    fputs(style, f);
    fputs("</style>\n</head>\n<body>\n<h1>Token saliency of ", f);
    put_escaped(f, r->model_dir);
    fprintf(f, "</h1>\n<p>%lld texts of %lld positions, %d methods; the readers are shown the "
            "top k eligible tokens of each text, every other eligible token replaced by the "
            "filler.</p>\n", (long long)r->B, (long long)r->S, r->n_methods);
    if (r->labels_predicted)
        fputs("<p class=\"note\">No labels were given: the model's own predictions on the full "
              "texts are the labels, so the readers' accuracy is their agreement with the "
              "model.</p>\n", f);
}

static void put_evaluation(FILE *f, const attn_explain_report *r)
{
    fputs("<h2>Evaluation</h2>\n<p class=\"small\">The weighted accuracy weighs each k by its "
          "difficulty (1 - the mean accuracy of all methods at k), as the study does.</p>\n", f);
    put_k_table(f, r, "Model reader: accuracy with the top k shown",
                offsetof(attn_explain_eval, model_acc), r->model_weights, r->model_avg);
    if (r->have_bow)
        put_k_table(f, r, "Bag-of-words reader: accuracy with the top k shown",
                    offsetof(attn_explain_eval, bow_acc), r->bow_weights, r->bow_avg);
    if (r->rationale) {
        put_k_table(f, r, "Planted precision of the top k", offsetof(attn_explain_eval, precision),
                    NULL, NULL);
        put_k_table(f, r, "Planted recall of the top k", offsetof(attn_explain_eval, recall),
                    NULL, NULL);
    }
    put_faithfulness(f, r);
    fputs("<h3>Deletion curves</h3>\n", f);
    put_curves(f, r, 0);
    fputs("<h3>Insertion curves</h3>\n", f);
    put_curves(f, r, 1);
}

int attn_explain_html_write(const char *cmd, const char *path, const attn_explain_report *r)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "attn %s: cannot write %s\n", cmd, path);
        return -1;
    }
    put_header(f, r);
    put_human(f, r);
    put_evaluation(f, r);
    put_texts(f, r);
    fputs("</body>\n</html>\n", f);
    const int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "attn %s: cannot write %s\n", cmd, path);
        return -1;
    }
    return 0;
}
