/* cpu_rattention_decode_avx2.c - the scores of RATTENTION's decode step with RoPE in registers
 * (cpu_rattention_decode_simd.h) on 8-lane AVX2 vectors (AVX2+FMA+F16C CPUs). Absent on
 * other architectures or compilers, where the portable path is used. */
#include "cpu_rattention.h"
#include "cpu_math.h"

#if ATTN_CPU_HAVE_AVX2_KERNELS

#include "cpu_simd_avx2.h"
#include "cpu_rattention_decode_simd.h"

#endif /* ATTN_CPU_HAVE_AVX2_KERNELS */
