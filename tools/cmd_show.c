/* cmd_show.c - `attn show --variant OP [options]`: a figure of which keys each query of an op
 * sees, as text or as SVG (for the docs), drawn by the op itself (attn_tool_op.show) so that the
 * figure follows the library's own key ranges. */
#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_tool_ops.h"

#include <stdio.h>
#include <string.h>

static int show_usage(FILE *f)
{
    fprintf(f, "usage: attn show --variant NAME [options]   (attn show --variant NAME --help)\n"
               "variants:\n");
    for (int k = 0; k < attn_tool_n_ops; k++)
        if (attn_tool_ops[k]->show)
            fprintf(f, "  %-10s %s\n", attn_tool_ops[k]->stem, attn_tool_ops[k]->summary);
    return f == stderr ? 2 : 0;
}

int attn_cmd_show(int argc, char **argv)
{
    const char *name = NULL;
    int help = 0;
    for (int i = 1; i < argc && !name; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            help = 1;
        else if (attn_arg_value(argc, argv, &i, "--variant", &name) < 0)
            return 2;
    }
    if (!name) {
        if (!help)
            fprintf(stderr, "attn show: --variant is required\n");
        return show_usage(help ? stdout : stderr);
    }
    const attn_tool_op *op = attn_tool_op_find(name);
    if (op && op->show)
        return op->show(argc, argv);
    fprintf(stderr, "attn show: no figure for variant '%s'\n", name);
    return show_usage(stderr);
}
