/* attn_tool_ops.h - what the `attn` command knows of each op, from the core's op list
 * (src/core/attn_ops.def): its conformance driver, its `attn run` variant, its `attn bench` and
 * its `attn show` figure.
 * Each op defines attn_<stem>_tool (in tools/<stem>_conform.c). */
#ifndef ATTN_TOOL_OPS_H_
#define ATTN_TOOL_OPS_H_

#include "attn_conform.h"

typedef struct attn_tool_op {
    const char *stem;
    const char *summary;                  /* one line for listings */
    const attn_conform_driver *conform;
    int (*run)(int argc, char **argv);    /* attn run --variant <stem> ... */
    const char *run_help;                 /* its files and options */
    const char *run_opts_help;            /* its descriptor options */
    int (*bench)(int argc, char **argv);  /* attn bench --op <stem> ...; NULL: none */
    int (*show)(int argc, char **argv);   /* attn show --variant <stem> ...; NULL: none */
} attn_tool_op;

/* All ops, in op-list order. */
extern const attn_tool_op *const attn_tool_ops[];
extern const int attn_tool_n_ops;
/* The op of a stem, or NULL. */
const attn_tool_op *attn_tool_op_find(const char *stem);

#endif /* ATTN_TOOL_OPS_H_ */
