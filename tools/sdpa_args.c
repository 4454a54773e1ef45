/* sdpa_args.c - the SDPA descriptor options of `attn run` and `attn bench` (--scale, --causal,
 * --align, --window-left, --window-right, --softcap). */
#include "attn_args.h"
#include "sdpa_tool.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const char attn_args_sdpa_help[] =
    "  --scale X          logit scale, nonzero, stored as f32 (default 1/sqrt(Dk))\n"
    "  --causal           causal mask (same as --window-right 0)\n"
    "  --align tl|br      alignment of causal/window bounds when Sq != Skv: top-left\n"
    "                     (PyTorch is_causal) or bottom-right (FlashAttention 2, default)\n"
    "  --window-left N    past keys visible besides the current one (-1 unlimited)\n"
    "  --window-right N   future keys visible (-1 unlimited)\n"
    "  --softcap X        logit soft-cap X*tanh(s/X), stored as f32 (0 = none)\n";

/* Each option: name, and how to store its value (NULL parser = a flag). */
typedef int (*sdpa_setter)(const char *opt, const char *val, attn_sdpa_desc *d);

static int set_scale(const char *opt, const char *val, attn_sdpa_desc *d)
{
    double x;
    if (attn_parse_f64(opt, val, -FLT_MAX, FLT_MAX, &x))
        return -1;
    /* The descriptor's 0 means "1/sqrt(Dk)": a 0 given here (or one that becomes 0 in f32)
     * would silently mean that too. */
    if ((float)x == 0.0f) {
        fprintf(stderr, "attn: %s: %s is 0 in f32; leave the option out for 1/sqrt(Dk)\n", opt,
                val);
        return -1;
    }
    d->scale = (float)x;
    return 0;
}

static int set_softcap(const char *opt, const char *val, attn_sdpa_desc *d)
{
    double x;
    if (attn_parse_f64(opt, val, 0.0, FLT_MAX, &x))
        return -1;
    d->softcap = (float)x;
    return 0;
}

static int set_window(const char *opt, const char *val, int64_t *w)
{
    return attn_parse_i64(opt, val, -1, INT64_MAX / 4, w);
}

static int set_wl(const char *opt, const char *val, attn_sdpa_desc *d)
{
    return set_window(opt, val, &d->window_left);
}

static int set_wr(const char *opt, const char *val, attn_sdpa_desc *d)
{
    return set_window(opt, val, &d->window_right);
}

static int set_align(const char *opt, const char *val, attn_sdpa_desc *d)
{
    static const char *const names[] = {"tl", "br", "top-left", "bottom-right", NULL};
    int k;
    if (attn_parse_choice(opt, val, names, &k))
        return -1;
    d->align = k % 2 ? ATTN_ALIGN_BOTTOM_RIGHT : ATTN_ALIGN_TOP_LEFT;
    return 0;
}

static const struct {
    const char *name;
    sdpa_setter set;
} sdpa_opts[] = {
    {"--scale", set_scale},         {"--softcap", set_softcap},   {"--window-left", set_wl},
    {"--window-right", set_wr},     {"--align", set_align},
};

int attn_args_sdpa(int argc, char **argv, int *i, attn_sdpa_desc *d)
{
    int r = attn_arg_flag(argv, *i, "--causal");
    if (r) {
        if (r > 0)
            d->causal = 1;
        return r;
    }
    for (size_t k = 0; k < sizeof sdpa_opts / sizeof sdpa_opts[0]; k++) {
        const char *val;
        r = attn_arg_value(argc, argv, i, sdpa_opts[k].name, &val);
        if (r < 0)
            return -1;
        if (r > 0)
            return sdpa_opts[k].set(sdpa_opts[k].name, val, d) ? -1 : 1;
    }
    return 0;
}
