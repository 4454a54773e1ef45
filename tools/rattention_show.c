/* rattention_show.c - `attn show --variant rattention`: which keys each query's two branches
 * see (SWA with RoPE: the current key and w past ones; RLA: S0 and every key the window has
 * left behind), as text or as an SVG figure (docs/ops/rattention.md). The ranges come from the
 * library: a small forward is validated and its problem's SWA bounds and RLA shift are drawn. */
#include "attn_args.h"
#include "rattention_tool.h"

#include "attn_rattention_problem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEQ 256
#define CELL 20                 /* px per key and per query */
#define LEFT 40                 /* row labels */
#define TOP 58                  /* title and key labels */
#define GAP 6                   /* between the S0 column and the keys */
#define LEGEND 22               /* px per legend line */

typedef enum seen { SEEN_NONE, SEEN_SWA, SEEN_RLA } seen;

static const char *const fill_of[] = {"#eeeeee", "#4c72b0", "#dd8452"};
static const char text_of[] = {'.', 'S', 'r'};

static const char attn_rattention_show_help[] =
    "usage: attn show --variant rattention [--seq N] [--window W] [--svg FILE]\n"
    "which keys each query of RATTENTION's branches sees: S = SWA (RoPE, softmax over the\n"
    "current key and W past ones), r = RLA (S0 and the keys the window has left behind)\n"
    "  --seq N            queries and keys, 1..256 (default 16)\n"
    "  --window W         the SWA window w >= -1 (default 4)\n"
    "  --svg FILE         write an SVG figure instead of text\n";

/* The problem of a forward of n tokens under window w (B 1, one head, Dk 2, Dv 1). */
static int ask_op(int64_t n, int64_t w, attn_rattention_problem *p)
{
    float *mem = calloc((size_t)(6 * n), sizeof(float));
    if (!mem)
        return -1;
    attn_rattention_desc d = attn_rattention_desc_default();
    d.window = w;
    const attn_tensor q = attn_tensor_bshd(mem, ATTN_F32, 1, n, 1, 2);
    const attn_tensor k = attn_tensor_bshd(mem + 2 * n, ATTN_F32, 1, n, 1, 2);
    const attn_tensor v = attn_tensor_bshd(mem + 4 * n, ATTN_F32, 1, n, 1, 1);
    const attn_tensor o = attn_tensor_bshd(mem + 5 * n, ATTN_F32, 1, n, 1, 1);
    const attn_status s = attn_rattention_validate(&d, &q, &k, &v, &o, NULL, p);
    free(mem);
    if (s != ATTN_OK)
        fprintf(stderr, "attn show: %s\n", attn_last_error());
    return s == ATTN_OK ? 0 : -1;
}

/* What query i sees of key j. */
static seen key_of(const attn_rattention_problem *p, int64_t i, int64_t j)
{
    int64_t lo, hi;
    attn_rattention_swa_keys(p, i, &lo, &hi);
    if (j >= lo && j < hi)
        return SEEN_SWA;
    return j <= i - p->shift ? SEEN_RLA : SEEN_NONE;
}

static void show_text(const attn_rattention_problem *p, FILE *f)
{
    fprintf(f, "RATTENTION, S = %lld, w = %lld: S = SWA (RoPE), r = RLA, . = not seen\n",
            (long long)p->S, (long long)p->window);
    fprintf(f, "query  S0 keys 0..%lld\n", (long long)p->S - 1);
    for (int64_t i = 0; i < p->S; i++) {
        fprintf(f, "%5lld  r  ", (long long)i);
        for (int64_t j = 0; j < p->S; j++)
            fputc(text_of[key_of(p, i, j)], f);
        fputc('\n', f);
    }
}

static void svg_cell(FILE *f, double x, double y, seen s)
{
    fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%d\" height=\"%d\" fill=\"%s\" "
               "stroke=\"#ffffff\"/>\n", x, y, CELL, CELL, fill_of[s]);
}

static void svg_legend(FILE *f, double y, seen s, const char *text)
{
    svg_cell(f, LEFT, y, s);
    fprintf(f, "<text x=\"%d\" y=\"%g\">%s</text>\n", LEFT + CELL + 8, y + 14, text);
}

static void show_svg(const attn_rattention_problem *p, FILE *f)
{
    const int64_t n = p->S;
    const double keys_x = LEFT + CELL + GAP, grid_w = keys_x + (double)(n * CELL) + 10;
    const double width = grid_w > 640 ? grid_w : 640, legend_y = TOP + (double)(n * CELL) + 16;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n",
            width, legend_y + 3 * LEGEND + 8);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"18\" font-size=\"14\">RATTENTION: the keys each query sees "
               "(S = %lld, w = %lld)</text>\n", LEFT, (long long)n, (long long)p->window);
    fprintf(f, "<text x=\"4\" y=\"%d\">q \\ k</text>\n", TOP - 6);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">S0</text>\n", LEFT + CELL / 2,
            TOP - 6);
    for (int64_t j = 0; j < n; j++)
        fprintf(f, "<text x=\"%g\" y=\"%d\" text-anchor=\"middle\">%lld</text>\n",
                keys_x + (double)(j * CELL) + CELL / 2.0, TOP - 6, (long long)j);
    for (int64_t i = 0; i < n; i++) {
        const double y = TOP + (double)(i * CELL);
        fprintf(f, "<text x=\"%d\" y=\"%g\" text-anchor=\"end\">%lld</text>\n", LEFT - 6, y + 14,
                (long long)i);
        svg_cell(f, LEFT, y, SEEN_RLA); /* S0 reaches every row's RLA state */
        for (int64_t j = 0; j < n; j++)
            svg_cell(f, keys_x + (double)(j * CELL), y, key_of(p, i, j));
    }
    svg_legend(f, legend_y, SEEN_SWA, "SWA: softmax of scale RoPE(q_i).RoPE(k_j) over the "
                                      "current key and w past ones");
    svg_legend(f, legend_y + LEGEND, SEEN_RLA, "RLA: phi(q_i) (S0 + sum phi(k_j)^T v_j) over "
                                               "the keys the window has left behind (raw q, k)");
    svg_legend(f, legend_y + 2 * LEGEND, SEEN_NONE, "not seen (future keys)");
    fprintf(f, "</svg>\n");
}

int attn_rattention_cmd_show(int argc, char **argv)
{
    int64_t n = 16, w = 4;
    const char *svg = NULL, *val;
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(attn_rattention_show_help, stdout);
            return 0;
        }
        if ((r = attn_arg_value(argc, argv, &i, "--variant", &val)) == 0 &&
            (r = attn_arg_value(argc, argv, &i, "--svg", &svg)) == 0) {
            if ((r = attn_arg_value(argc, argv, &i, "--seq", &val)) > 0)
                r = attn_parse_i64("--seq", val, 1, MAX_SEQ, &n) ? -1 : 1;
            else if (r == 0 && (r = attn_arg_value(argc, argv, &i, "--window", &val)) > 0)
                r = attn_parse_i64("--window", val, -1, INT64_MAX - 1, &w) ? -1 : 1;
        }
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "attn show: unknown option '%s'\n%s", argv[i],
                        attn_rattention_show_help);
            return 2;
        }
    }
    attn_rattention_problem p;
    if (ask_op(n, w, &p))
        return 2;
    FILE *f = svg ? fopen(svg, "w") : stdout;
    if (!f) {
        fprintf(stderr, "attn show: cannot write %s\n", svg);
        return 1;
    }
    if (svg)
        show_svg(&p, f);
    else
        show_text(&p, f);
    return svg && fclose(f) != 0 ? 1 : 0;
}
