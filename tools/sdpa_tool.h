/* sdpa_tool.h - the `attn` command's SDPA pieces besides conformance: descriptor options
 * (sdpa_args.c), `attn run --variant sdpa` (sdpa_run.c) and `attn bench` (sdpa_bench.c). */
#ifndef ATTN_SDPA_TOOL_H_
#define ATTN_SDPA_TOOL_H_

#include "attn/attn.h"

/* If argv[*i] is an SDPA descriptor option, parse it into *d (advancing *i past its value):
 * returns 1 when consumed, 0 when argv[*i] is not one of them, -1 on error (printed). */
int attn_args_sdpa(int argc, char **argv, int *i, attn_sdpa_desc *d);
/* Help text of the SDPA descriptor options (one option per line, indented). */
extern const char attn_args_sdpa_help[];

/* `attn run --variant sdpa ...` and its help (files and options). */
int attn_sdpa_cmd_run(int argc, char **argv);
extern const char attn_sdpa_run_help[];
/* `attn bench ...` of SDPA. */
int attn_sdpa_cmd_bench(int argc, char **argv);

#endif /* ATTN_SDPA_TOOL_H_ */
