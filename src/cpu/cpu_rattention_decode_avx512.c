/* cpu_rattention_decode_avx512.c - the scores of RATTENTION's decode step with RoPE in registers
 * (cpu_rattention_decode_simd.h) on 16-lane AVX-512 vectors (AVX-512F CPUs with F16C). Absent on
 * other architectures or compilers, where the portable path is used. */
#include "cpu_rattention.h"
#include "cpu_math.h"

#if ATTN_CPU_HAVE_AVX2_KERNELS

#include "cpu_simd_avx512.h"
#include "cpu_rattention_decode_simd.h"

#endif /* ATTN_CPU_HAVE_AVX2_KERNELS */
