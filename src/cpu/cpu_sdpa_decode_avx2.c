/* cpu_sdpa_decode_avx2.c - the decode kernels of cpu_sdpa_decode_simd.h on 8-lane AVX2 vectors
 * (AVX2+FMA+F16C CPUs). On other architectures or compilers they are absent and the portable
 * path is used. */
#include "cpu_sdpa.h"
#include "cpu_math.h"

#if ATTN_CPU_HAVE_AVX2_KERNELS

#include "cpu_simd_avx2.h"
#include "cpu_sdpa_decode_simd.h"

#endif /* ATTN_CPU_HAVE_AVX2_KERNELS */
