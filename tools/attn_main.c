/* attn_main.c - the `attn` command: dispatches to one subcommand per file (tools/cmd_*.c). */
#include "attn/attn.h"
#include "attn_cmds.h"

#include <stdio.h>
#include <string.h>

static int cmd_backends(int argc, char **argv);

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"conform", attn_cmd_conform, "run the conformance suite against the reference"},
    {"run", attn_cmd_run, "compute a variant on .npy files"},
    {"compare", attn_cmd_compare, "apply the conformance metrics to two .npy files"},
    {"bench", attn_cmd_bench, "GFLOP/s and GB/s beside same-run BLIS sgemm and memcpy"},
    {"show", attn_cmd_show, "draw which keys each query of an op sees (text or SVG)"},
    {"schedule", attn_cmd_schedule, "local-global layer schedule and its KV-cache bytes"},
    {"decode", attn_cmd_decode, "multi-layer decode with KV-cache eviction: memory and deviation"},
    {"data", attn_cmd_data, "write a synthetic data set (the planted task, the transfer task)"},
    {"train", attn_cmd_train, "train a BERT sequence classifier on a data set"},
    {"infer", attn_cmd_infer, "run a BERT classifier: logits, attention maps, gradients"},
    {"explain", attn_cmd_explain, "token saliency of a BERT classifier, evaluated (HTML report)"},
    {"transfer", attn_cmd_transfer, "attention-guided attribute transfer: weights, accuracy"},
    {"backends", cmd_backends, "list backends and what each one runs on"},
    {"devices", attn_cmd_devices, "list OpenCL platforms and devices with their capabilities"},
};

static int usage(FILE *f)
{
    fprintf(f, "usage: attn <command> [options]   (attn <command> --help for details)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    return f == stderr ? 2 : 0;
}

static int cmd_backends(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int rc = 0;
    for (const char *const *n = attn_backend_list(); *n; n++) {
        attn_backend *be = NULL;
        if (attn_backend_open(*n, NULL, &be) == ATTN_OK) {
            printf("%-8s %s\n", *n, attn_backend_describe(be));
            attn_backend_close(be);
        } else {
            printf("%-8s unavailable: %s\n", *n, attn_last_error());
            rc = 1;
        }
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0)
        return usage(stdout);
    if (strcmp(argv[1], "--version") == 0) {
        printf("attn %s (library %s)\n", ATTN_VERSION_STRING, attn_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "attn: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
