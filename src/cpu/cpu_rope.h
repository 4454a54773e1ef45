/* cpu_rope.h - RoPE on the CPU backend: the whole op (cpu_rope.c, OpenMP over rows) and the
 * row helpers other ops build on (rattention rotates its SWA queries and keys with them):
 * frequencies once per call, a cos/sin table per position, then any number of rows. */
#ifndef ATTN_CPU_ROPE_H_
#define ATTN_CPU_ROPE_H_

#include "attn_rope_problem.h"
#include "cpu_internal.h"

/* freq[i] = theta^(-2i / rot) for i < rot/2, in f64 (the reference's expression). */
void attn_cpu_rope_freqs(double theta, int64_t rot, double *freq);
/* cs[i], sn[i] = cos, sin of the f64 angle pos * freq[i], rounded once to float: the angle
 * is exact to |angle| 2^-52 at any position up to 2^40, so large positions lose nothing. */
void attn_cpu_rope_table(const double *freq, int64_t npairs, double pos, float *cs, float *sn);
/* y = RoPE(x) of one row of D floats with that table (rot features rotated, the rest
 * copied); y may be x. f32 arithmetic in the reference's order, no FMA contraction. */
void attn_cpu_rope_apply(attn_rope_layout layout, int64_t rot, int64_t D, const float *cs,
                         const float *sn, const float *x, float *y);

/* The op: rows (b, s) split over `threads` threads; ATTN_ERR_OUT_OF_MEMORY without scratch. */
attn_status attn_cpu_rope(const attn_rope_problem *p, int threads);

#endif /* ATTN_CPU_ROPE_H_ */
