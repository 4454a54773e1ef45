/* transnormer_tool.h - the `attn` command's TransNormer pieces besides conformance:
 * `attn run --variant transnormer` with its descriptor options (transnormer_run.c) and
 * `attn bench --op transnormer` (transnormer_bench.c). */
#ifndef ATTN_TRANSNORMER_TOOL_H_
#define ATTN_TRANSNORMER_TOOL_H_

#include "attn/attn.h"

/* If argv[*i] is a TransNormer descriptor option, parse it into *d (advancing *i past its
 * value): 1 consumed, 0 not one of them, -1 error (printed). */
int attn_args_transnormer(int argc, char **argv, int *i, attn_transnormer_desc *d);
extern const char attn_args_transnormer_help[];

int attn_transnormer_cmd_run(int argc, char **argv);
extern const char attn_transnormer_run_help[];
int attn_transnormer_cmd_bench(int argc, char **argv);

#endif /* ATTN_TRANSNORMER_TOOL_H_ */
