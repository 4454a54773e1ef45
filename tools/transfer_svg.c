/* transfer_svg.c - the chart of `attn transfer --svg FILE`: one bar per source classifier, its
 * mean learned attention weight with a +-sd whisker, the planted sources highlighted with their
 * planted share as a marker, the uniform weight 1/K dashed. A self-contained SVG written with
 * fprintf. */
#include "transfer_tool.h"

#include <math.h>
#include <stdio.h>

#define H 360.0
#define LEFT 70.0
#define RIGHT 190.0
#define TOP 40.0
#define BOTTOM 50.0
#define BAR_STEP 36.0
#define PLOT_MIN 320.0 /* the plot's width at least */

static const char plain_color[] = "#9aa5b1", planted_color[] = "#e07b00", mark_color[] = "#222";

/* The y axis' top: the largest value drawn, rounded up to a tenth (at least 0.1). */
static double y_top(int64_t K, const double *mean, const double *sd, const double *planted)
{
    double top = 1.0 / (double)K;
    for (int64_t k = 0; k < K; k++) {
        const double hi = mean[k] + (isnan(sd[k]) ? 0 : sd[k]);
        top = hi > top ? hi : top;
        top = planted && planted[k] > top ? planted[k] : top;
    }
    top = ceil(top * 10 - 1e-9) / 10;
    return top < 0.1 ? 0.1 : top > 1 ? 1 : top;
}

static double py(double v, double top)
{
    const double f = v < 0 ? 0 : v > top ? 1 : v / top;
    return H - BOTTOM - (H - TOP - BOTTOM) * f;
}

static void axes(FILE *f, double w, double top, const char *title)
{
    fprintf(f, "<rect width=\"%g\" height=\"%g\" fill=\"white\"/>\n", w, H);
    fprintf(f, "<text x=\"%g\" y=\"24\" font-size=\"14\" text-anchor=\"middle\">%s</text>\n",
            (LEFT + w - RIGHT) / 2, title);
    for (int i = 0; i <= 10; i++) {
        const double v = top * i / 10, y = py(v, top);
        if (i % 2 == 0 || top <= 0.5)
            fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"11\" text-anchor=\"end\">%.2f</text>\n",
                    LEFT - 6, y + 4, v);
        fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#eee\"/>\n", LEFT, y,
                w - RIGHT, y);
    }
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", LEFT,
            H - BOTTOM, w - RIGHT, H - BOTTOM);
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", LEFT, TOP,
            LEFT, H - BOTTOM);
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"12\" text-anchor=\"middle\">source "
            "attribute classifier</text>\n", (LEFT + w - RIGHT) / 2, H - 12);
    fprintf(f, "<text x=\"18\" y=\"%g\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 18 %g)\">attention weight</text>\n", (TOP + H - BOTTOM) / 2,
            (TOP + H - BOTTOM) / 2);
}

/* Bar k: the mean, the whisker, the planted marker, the label. */
static void bar(FILE *f, int64_t k, double x, double top, double mean, double sd,
                double planted)
{
    const double bw = BAR_STEP * 0.6, y = py(mean, top);
    fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n",
            x - bw / 2, y, bw, H - BOTTOM - y, planted > 0 ? planted_color : plain_color);
    if (!isnan(sd) && sd > 0)
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\"/>\n", x,
                py(mean - sd, top), x, py(mean + sd, top), mark_color);
    if (planted > 0) {
        const double yp = py(planted, top);
        fprintf(f, "<path d=\"M%.2f %.2f l6 -6 l6 6 l-6 6 z\" fill=\"white\" stroke=\"%s\"/>\n",
                x - 6, yp, mark_color);
    }
    fprintf(f, "<text x=\"%.2f\" y=\"%g\" font-size=\"11\" text-anchor=\"middle\">%lld</text>\n",
            x, H - BOTTOM + 15, (long long)k);
}

static void legend(FILE *f, double w, int has_planted)
{
    const double x = w - RIGHT + 16;
    fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x, TOP,
            has_planted ? planted_color : plain_color);
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"11\">%s</text>\n", x + 18, TOP + 10,
            has_planted ? "planted source" : "mean weight, +-sd");
    if (has_planted) {
        fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x,
                TOP + 20, plain_color);
        fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"11\">other source</text>\n", x + 18,
                TOP + 30);
        fprintf(f, "<path d=\"M%g %g l6 -6 l6 6 l-6 6 z\" fill=\"white\" stroke=\"%s\"/>\n", x,
                TOP + 46, mark_color);
        fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"11\">planted share</text>\n", x + 18,
                TOP + 50);
    }
    const double yl = TOP + (has_planted ? 66 : 26);
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
            "stroke-dasharray=\"4 3\"/>\n", x, yl, x + 12, yl, mark_color);
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"11\">uniform 1/K</text>\n", x + 18, yl + 4);
}

int attn_transfer_tool_svg(const char *cmd, const char *path, int64_t K, const double *mean,
                           const double *sd, const double *planted, const char *title)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "attn %s: cannot write %s\n", cmd, path);
        return -1;
    }
    const double plot = BAR_STEP * (double)K > PLOT_MIN ? BAR_STEP * (double)K : PLOT_MIN;
    const double w = LEFT + plot + RIGHT, top = y_top(K, mean, sd, planted);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
            "viewBox=\"0 0 %g %g\" font-family=\"sans-serif\">\n", w, H, w, H);
    axes(f, w, top, title);
    const double step = plot / (double)K;
    for (int64_t k = 0; k < K; k++)
        bar(f, k, LEFT + step * ((double)k + 0.5), top, mean[k], sd[k], planted ? planted[k] : 0);
    const double yu = py(1.0 / (double)K, top);
    fprintf(f, "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"%s\" "
            "stroke-dasharray=\"4 3\"/>\n", LEFT, yu, LEFT + plot, yu, mark_color);
    legend(f, w, planted != NULL);
    fprintf(f, "</svg>\n");
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "attn %s: cannot write %s\n", cmd, path);
        return -1;
    }
    return 0;
}
