/* cmd_bench.c - `attn bench [--op OP] ...`: hands the command to the op's benchmark
 * (tools/<op>_bench.c); without --op, the first op of the list that has one (sdpa). */
#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_tool_ops.h"
#ifdef ATTN_HAVE_CPU
#include "explain_bench.h" /* nor is saliency: `attn bench --op explain` (cpu builds) */
#include "model_bench.h" /* the model is not an op: `attn bench --op model` (cpu builds) */
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* argv without its --op option; the op's stem in *stem (NULL if absent). -1 on a usage error. */
static int strip_op(int argc, char **argv, char **out, int *n, const char **stem)
{
    *stem = NULL;
    *n = 0;
    for (int i = 0; i < argc; i++) {
        const char *val;
        int r = i ? attn_arg_value(argc, argv, &i, "--op", &val) : 0;
        if (r < 0)
            return -1;
        if (r > 0)
            *stem = val;
        else
            out[(*n)++] = argv[i];
    }
    out[*n] = NULL;
    return 0;
}

static void list_ops(FILE *f)
{
    fprintf(f, "ops with a benchmark:");
    for (int k = 0; k < attn_tool_n_ops; k++)
        if (attn_tool_ops[k]->bench)
            fprintf(f, " %s", attn_tool_ops[k]->stem);
#ifdef ATTN_HAVE_CPU
    fprintf(f, " model explain");
#endif
    fputc('\n', f);
}

typedef int (*bench_fn)(int argc, char **argv);

/* The benchmark of --op: the op's, or the model's or saliency's (rooms that are not ops). */
static bench_fn find_bench(const char *stem, const attn_tool_op *op)
{
#ifdef ATTN_HAVE_CPU
    if (stem && strcmp(stem, "model") == 0)
        return attn_model_cmd_bench;
    if (stem && strcmp(stem, "explain") == 0)
        return attn_explain_cmd_bench;
#else
    (void)stem;
#endif
    return op ? op->bench : NULL;
}

int attn_cmd_bench(int argc, char **argv)
{
    char **args = calloc((size_t)argc + 1, sizeof *args);
    const char *stem;
    int n, rc = 2;
    if (!args || strip_op(argc, argv, args, &n, &stem)) {
        free(args);
        return 2;
    }
    const attn_tool_op *op = NULL;
    for (int k = 0; !stem && !op && k < attn_tool_n_ops; k++)
        op = attn_tool_ops[k]->bench ? attn_tool_ops[k] : NULL;
    if (stem)
        op = attn_tool_op_find(stem);
    const bench_fn fn = find_bench(stem, op);
    if (fn) {
        rc = fn(n, args);
    } else {
        if (stem)
            fprintf(stderr, "attn bench: no benchmark for op '%s'\n", stem);
        else
            fprintf(stderr, "attn bench: this build has no benchmark (they need the cpu "
                            "backend: BLIS sgemm is their same-run yardstick)\n");
        list_ops(stderr);
    }
    free(args);
    return rc;
}
