/* explain_bench.h - `attn bench --op explain` (explain_bench.c, cpu builds only): the time of
 * each saliency method on one text, and of integrated gradients and LIME against a forward and
 * backward of a batch of their size measured in the same run. */
#ifndef ATTN_EXPLAIN_BENCH_H_
#define ATTN_EXPLAIN_BENCH_H_

int attn_explain_cmd_bench(int argc, char **argv);

#endif /* ATTN_EXPLAIN_BENCH_H_ */
