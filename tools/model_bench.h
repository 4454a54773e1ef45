/* model_bench.h - `attn bench --op model` (model_bench.c, cpu builds only): a training step's
 * forward and backward of the BERT classifier, tokens/s and GFLOP/s beside same-run sgemm. */
#ifndef ATTN_MODEL_BENCH_H_
#define ATTN_MODEL_BENCH_H_

int attn_model_cmd_bench(int argc, char **argv);

#endif /* ATTN_MODEL_BENCH_H_ */
