/* kvcache_decode_svg.c - the plot of `attn decode --sweep --svg FILE`: deviation from the full
 * cache (1 - mean cosine similarity, log scale) against the memory kept (% of the full cache),
 * one line per policy (dashed with SqueezeAttention budgets). A self-contained SVG written
 * with fprintf. */
#include "kvcache_decode.h"

#include <math.h>
#include <stdio.h>

#define W 680.0
#define H 440.0
#define LEFT 90.0
#define RIGHT 170.0
#define TOP 40.0
#define BOTTOM 50.0
#define FLOOR_DECADE (-8)

static const char *const series_color[] = {"#777777", "#1f77b4", "#ff7f0e", "#2ca02c"};
static const char *const policy_label[] = {"full", "sliding", "streaming", "h2o"};

static double deviation(const attn_kvcache_sweep_row *r)
{
    return 1.0 - r->mean_cos;
}

/* The decades the y axis spans: from the smallest positive deviation (not below 1e-8) to the
 * largest. */
static void y_range(const attn_kvcache_sweep_row *rows, int n, int *lo, int *hi)
{
    double mn = INFINITY, mx = 0;
    for (int i = 0; i < n; i++) {
        const double d = deviation(&rows[i]);
        if (d > 0 && d < mn)
            mn = d;
        if (d > mx)
            mx = d;
    }
    *lo = mn < INFINITY ? (int)floor(log10(mn)) : FLOOR_DECADE;
    *lo = *lo < FLOOR_DECADE ? FLOOR_DECADE : *lo;
    *hi = mx > 0 ? (int)ceil(log10(mx)) : 0;
    *hi = *hi <= *lo ? *lo + 1 : *hi;
}

static double px(double mem)
{
    return LEFT + (W - LEFT - RIGHT) * mem;
}

static double py(double dev, int lo, int hi)
{
    const double l = dev > 0 ? log10(dev) : lo;
    const double f = ((l < lo ? lo : l) - lo) / (hi - lo);
    return H - BOTTOM - (H - TOP - BOTTOM) * f;
}

static void axes(FILE *f, int lo, int hi, const char *title)
{
    fprintf(f, "<rect width=\"%g\" height=\"%g\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%g\" y=\"24\" font-size=\"14\" text-anchor=\"middle\">%s</text>\n",
            (LEFT + W - RIGHT) / 2, title);
    for (int pct = 0; pct <= 100; pct += 20) {
        const double x = px(pct / 100.0);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#ddd\"/>\n", x, TOP,
                x, H - BOTTOM);
        fprintf(f, "<text x=\"%.1f\" y=\"%g\" font-size=\"11\" text-anchor=\"middle\">%d%%"
                   "</text>\n", x, H - BOTTOM + 16, pct);
    }
    for (int d = lo; d <= hi; d++) {
        const double y = py(pow(10, d), lo, hi);
        fprintf(f, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT, y,
                W - RIGHT, y);
        fprintf(f, "<text x=\"%g\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">1e%d%s"
                   "</text>\n", LEFT - 6, y + 4, d, d == lo ? " or 0" : "");
    }
    fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
               "stroke=\"black\"/>\n", LEFT, TOP, W - LEFT - RIGHT, H - TOP - BOTTOM);
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"12\" text-anchor=\"middle\">KV cache kept "
               "(%% of the full cache's bytes)</text>\n", (LEFT + W - RIGHT) / 2, H - 12);
    fprintf(f, "<text x=\"16\" y=\"%g\" font-size=\"12\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 16 %g)\">1 - mean cosine vs full cache</text>\n",
            (TOP + H - BOTTOM) / 2, (TOP + H - BOTTOM) / 2);
}

/* One series: the rows of (policy, squeeze) in the order given, and its legend entry k. */
static void series(FILE *f, const attn_kvcache_sweep_row *rows, int n, attn_kv_policy p,
                   int squeeze, int lo, int hi, int k)
{
    const char *col = series_color[p], *dash = squeeze ? " stroke-dasharray=\"6 3\"" : "";
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", col, dash);
    for (int i = 0; i < n; i++)
        if (rows[i].policy == p && rows[i].squeeze == squeeze)
            fprintf(f, "%.1f,%.1f ", px(rows[i].mem), py(deviation(&rows[i]), lo, hi));
    fprintf(f, "\"/>\n");
    for (int i = 0; i < n; i++)
        if (rows[i].policy == p && rows[i].squeeze == squeeze)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s%s %d%%: "
                       "memory %.1f%%, 1 - cos %.3g, max |dev| %.3g</title></circle>\n",
                    px(rows[i].mem), py(deviation(&rows[i]), lo, hi), col, policy_label[p],
                    squeeze ? "+squeeze" : "", rows[i].pct, 100 * rows[i].mem,
                    deviation(&rows[i]), rows[i].max_abs);
    const double y = TOP + 12 + 20.0 * k;
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"2\"%s/>"
               "\n", W - RIGHT + 14, y, W - RIGHT + 40, y, col, dash);
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"12\">%s%s</text>\n", W - RIGHT + 46, y + 4,
            policy_label[p], squeeze ? " + squeeze" : "");
}

int attn_kvcache_sweep_svg(const char *path, const attn_kvcache_sweep_row *rows, int n,
                           const char *title)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "attn decode: cannot write %s\n", path);
        return -1;
    }
    int lo, hi, k = 0;
    y_range(rows, n, &lo, &hi);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
               "viewBox=\"0 0 %g %g\" font-family=\"sans-serif\">\n", W, H, W, H);
    axes(f, lo, hi, title);
    for (int sq = 0; sq < 2; sq++)
        for (int p = ATTN_KV_SLIDING; p <= ATTN_KV_H2O; p++) {
            int present = 0;
            for (int i = 0; i < n; i++)
                present |= rows[i].policy == (attn_kv_policy)p && rows[i].squeeze == sq;
            if (present)
                series(f, rows, n, (attn_kv_policy)p, sq, lo, hi, k++);
        }
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "attn decode: cannot write %s\n", path);
        return -1;
    }
    return 0;
}
