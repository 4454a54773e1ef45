/* cmd_run.c - `attn run --variant OP`: compute an op on NumPy .npy files, so tensors dumped
 * from any framework or kernel can be checked against the ground truth. Each op's runner
 * (tools/<op>_run.c) parses its own files with the shared options of attn_run.c. */
#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_run.h"
#include "attn_tool_ops.h"

#include <stdio.h>
#include <string.h>

static void list_variants(FILE *f)
{
    fprintf(f, "variants:\n");
    for (int k = 0; k < attn_tool_n_ops; k++)
        if (attn_tool_ops[k]->run)
            fprintf(f, "  %-10s %s\n", attn_tool_ops[k]->stem, attn_tool_ops[k]->summary);
}

static int run_usage(FILE *f, const attn_tool_op *v)
{
    if (v)
        fprintf(f, "%s%s%s", v->run_help, v->run_opts_help, attn_run_common_help);
    else {
        fprintf(f, "usage: attn run --variant NAME [options]   (attn run --variant NAME --help)\n");
        list_variants(f);
    }
    return f == stderr ? 2 : 0;
}

int attn_cmd_run(int argc, char **argv)
{
    const char *name = NULL;
    int help = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            help = 1;
        else if (attn_arg_value(argc, argv, &i, "--variant", &name) < 0)
            return 2;
    }
    if (!name)
        return help ? run_usage(stdout, NULL) : (fprintf(stderr, "attn run: --variant is "
                                                                 "required\n"),
                                                 run_usage(stderr, NULL));
    const attn_tool_op *op = attn_tool_op_find(name);
    if (op && op->run)
        return help ? run_usage(stdout, op) : op->run(argc, argv);
    fprintf(stderr, "attn run: unknown variant '%s'\n", name);
    list_variants(stderr);
    return 2;
}
