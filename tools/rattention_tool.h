/* rattention_tool.h - the `attn` command's RATTENTION pieces besides conformance:
 * `attn run --variant rattention` with its descriptor options (rattention_run.c),
 * `attn bench --op rattention` (rattention_bench.c) and `attn show --variant rattention`
 * (rattention_show.c). */
#ifndef ATTN_RATTENTION_TOOL_H_
#define ATTN_RATTENTION_TOOL_H_

#include "attn/attn.h"

/* If argv[*i] is a RATTENTION descriptor option, parse it into *d (advancing *i past its
 * value): 1 consumed, 0 not one of them, -1 error (printed). */
int attn_args_rattention(int argc, char **argv, int *i, attn_rattention_desc *d);
extern const char attn_args_rattention_help[];

int attn_rattention_cmd_run(int argc, char **argv);
extern const char attn_rattention_run_help[];
int attn_rattention_cmd_bench(int argc, char **argv);
/* The keys each query's branches see, as text or SVG. */
int attn_rattention_cmd_show(int argc, char **argv);

#endif /* ATTN_RATTENTION_TOOL_H_ */
