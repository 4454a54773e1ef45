/* kvcache_bench.h - `attn bench --op kvcache` (kvcache_bench.c, cpu builds only): decode steps
 * of one layer's KV cache under each eviction policy against the full cache. */
#ifndef ATTN_KVCACHE_BENCH_H_
#define ATTN_KVCACHE_BENCH_H_

int attn_kvcache_cmd_bench(int argc, char **argv);

#endif /* ATTN_KVCACHE_BENCH_H_ */
