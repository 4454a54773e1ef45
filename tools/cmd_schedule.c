/* cmd_schedule.c - `attn schedule`: prints which layers of a local-global schedule are local and
 * the KV-cache bytes each layer needs, against an all-global model of the same shape. */
#include "attn/attn.h"
#include "attn_cmds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sched_opts {
    const char *preset;
    int layers;
    int64_t seq, hkv, dk, dv, window;
    attn_dtype dtype;
} sched_opts;

static int parse_i64(const char *opt, const char *s, int64_t lo, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s ? s : "", &end, 10);
    if (!s || !*s || *end || errno || v < lo) {
        fprintf(stderr, "attn schedule: %s needs an integer >= %lld, got '%s'\n", opt,
                (long long)lo, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int parse(int argc, char **argv, sched_opts *o)
{
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t v = 0;
        int rc = 0;
        if (strcmp(a, "--help") == 0) {
            printf("usage: attn schedule [--preset gemma2|gemma3|rattention|mistral|global]\n"
                   "         [--layers N] [--seq N] [--hkv N] [--dk N] [--dv N] [--window W]\n"
                   "         [--dtype f32|f16|bf16]\n"
                   "  --window overrides the preset's window_left (keys besides the current).\n");
            return 1;
        } else if (strcmp(a, "--preset") == 0 && val) {
            o->preset = val;
        } else if (strcmp(a, "--dtype") == 0 && val) {
            if (strcmp(val, "f32") == 0) o->dtype = ATTN_F32;
            else if (strcmp(val, "f16") == 0) o->dtype = ATTN_F16;
            else if (strcmp(val, "bf16") == 0) o->dtype = ATTN_BF16;
            else { fprintf(stderr, "attn schedule: unknown dtype '%s'\n", val); return -1; }
        } else if (strcmp(a, "--layers") == 0) {
            rc = parse_i64(a, val, 1, &v);
            o->layers = v > 100000 ? 100000 : (int)v;
        } else if (strcmp(a, "--seq") == 0) {
            rc = parse_i64(a, val, 0, &o->seq);
        } else if (strcmp(a, "--hkv") == 0) {
            rc = parse_i64(a, val, 1, &o->hkv);
        } else if (strcmp(a, "--dk") == 0) {
            rc = parse_i64(a, val, 1, &o->dk);
        } else if (strcmp(a, "--dv") == 0) {
            rc = parse_i64(a, val, 1, &o->dv);
        } else if (strcmp(a, "--window") == 0) {
            rc = parse_i64(a, val, 0, &o->window);
        } else {
            fprintf(stderr, "attn schedule: unknown or incomplete option '%s'\n", a);
            return -1;
        }
        if (rc)
            return -1;
    }
    return 0;
}

int attn_cmd_schedule(int argc, char **argv)
{
    sched_opts o = {"gemma3", 12, 8192, 8, 128, 128, -1, ATTN_F16};
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 2 : 0;
    attn_schedule s, global;
    if (attn_schedule_preset(o.preset, &s) != ATTN_OK ||
        attn_schedule_preset("global", &global) != ATTN_OK) {
        fprintf(stderr, "attn schedule: %s\n", attn_last_error());
        return 2;
    }
    if (o.window >= 0)
        s.window_left = o.window;
    printf("schedule %s: %d local : %d global, window_left %lld, %d layers, seq %lld, "
           "Hkv %lld, Dk %lld, Dv %lld, %s\n",
           o.preset, s.n_local, s.n_global, (long long)s.window_left, o.layers,
           (long long)o.seq, (long long)o.hkv, (long long)o.dk, (long long)o.dv,
           attn_dtype_name(o.dtype));
    int64_t total = 0, total_global = 0;
    for (int l = 0; l < o.layers; l++) {
        int local;
        int64_t b, bg;
        if (attn_schedule_is_local(&s, l, &local) != ATTN_OK ||
            attn_schedule_kv_bytes(&s, l, o.seq, o.hkv, o.dk, o.dv, o.dtype, &b) != ATTN_OK ||
            attn_schedule_kv_bytes(&global, l, o.seq, o.hkv, o.dk, o.dv, o.dtype, &bg) !=
                ATTN_OK) {
            fprintf(stderr, "attn schedule: %s\n", attn_last_error());
            return 2;
        }
        printf("layer %3d  %-6s  %14lld bytes\n", l, local ? "local" : "global", (long long)b);
        total += b;
        total_global += bg;
    }
    printf("total %lld bytes; all-global %lld bytes; saving %.2f%%\n", (long long)total,
           (long long)total_global,
           total_global ? 100.0 * (1.0 - (double)total / (double)total_global) : 0.0);
    return 0;
}
