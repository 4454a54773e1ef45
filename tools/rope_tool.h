/* rope_tool.h - the `attn` command's RoPE pieces besides conformance: descriptor options and
 * `attn run --variant rope` (rope_run.c), `attn bench --op rope` (rope_bench.c). */
#ifndef ATTN_ROPE_TOOL_H_
#define ATTN_ROPE_TOOL_H_

#include "attn/attn.h"

/* If argv[*i] is a RoPE descriptor option (--rope, --rope-theta, --rot-dim, --offset), parse
 * it into *d (advancing *i past its value): 1 consumed, 0 not one of them, -1 error (printed).
 * Other ops that rotate (rattention) take the same options. */
int attn_args_rope(int argc, char **argv, int *i, attn_rope_desc *d);
extern const char attn_args_rope_help[];

/* `attn run --variant rope ...` and its help (files and options). */
int attn_rope_cmd_run(int argc, char **argv);
extern const char attn_rope_run_help[];
/* `attn bench --op rope ...`. */
int attn_rope_cmd_bench(int argc, char **argv);

#endif /* ATTN_ROPE_TOOL_H_ */
