/* cpu_sdpa_decode_avx512.c - the decode kernels of cpu_sdpa_decode_simd.h on 16-lane AVX-512
 * vectors (AVX-512F CPUs with F16C). Half the instructions of the AVX2 kernels per row; on
 * CPUs with two 512-bit FMA units also twice the arithmetic rate. */
#include "cpu_sdpa.h"
#include "cpu_math.h"

#if ATTN_CPU_HAVE_AVX2_KERNELS

#include "cpu_simd_avx512.h"
#include "cpu_sdpa_decode_simd.h"

#endif /* ATTN_CPU_HAVE_AVX2_KERNELS */
