/* linear_tool.h - the `attn` command's linear attention pieces besides conformance:
 * `attn run --variant linear` (linear_run.c, with the gradient files RATTENTION's run shares)
 * and `attn bench --op linear` (linear_bench.c). */
#ifndef ATTN_LINEAR_TOOL_H_
#define ATTN_LINEAR_TOOL_H_

#include "attn/attn.h"

#include <stdint.h>

/* If argv[*i] is a linear attention descriptor option (--feature, --normalize, --eps,
 * --causal, --scale, --decay), parse it into *d; decay values given as a list go to
 * decay_values (room for `room` floats, their count in *n_decay). 1 consumed, 0 not one, -1
 * error (printed). */
int attn_args_linear(int argc, char **argv, int *i, attn_linear_desc *d, float *decay_values,
                     int room, int *n_decay);
extern const char attn_args_linear_help[];

int attn_linear_cmd_run(int argc, char **argv);

extern const char attn_linear_run_help[];
int attn_linear_cmd_bench(int argc, char **argv);

#endif /* ATTN_LINEAR_TOOL_H_ */
