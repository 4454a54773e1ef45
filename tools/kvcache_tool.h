/* kvcache_tool.h - the `attn` command's pieces of the attention over cache slots besides
 * conformance: `attn run --variant kvcache` and its descriptor options (kvcache_run.c). */
#ifndef ATTN_KVCACHE_TOOL_H_
#define ATTN_KVCACHE_TOOL_H_

#include "attn/attn.h"

/* `attn run --variant kvcache ...`, its help (files) and its descriptor options. */
int attn_kvcache_cmd_run(int argc, char **argv);
extern const char attn_kvcache_run_help[];
extern const char attn_args_kvcache_help[];

#endif /* ATTN_KVCACHE_TOOL_H_ */
