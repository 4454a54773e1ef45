/* common.cl - helpers shared by the attn kernels: storage dtype access (f32; f16 through
 * vload_half/vstore_half so no cl_khr_fp16 is needed; bf16 through ushort bit shifts),
 * horizontal vector reductions, the band (causal/window) bounds of a query row, and the
 * defaults of the -D options several kernel files share.
 * Embedded ahead of every kernel file; a standalone compile reaches it by #include. */
#ifndef ATTN_COMMON_CL
#define ATTN_COMMON_CL

/* Storage dtype codes: the values of attn_dtype (include/attn/attn_core.h), which the host
 * passes from the enum itself (-DATTN_DT_F32=... on every build); these defaults only serve
 * standalone compiles. The access macros below are named by code (ATTN_LOAD_1 reads f16),
 * hence the check that the codes are the ones they were written for. */
#ifndef ATTN_DT_F32
#define ATTN_DT_F32 0
#endif
#ifndef ATTN_DT_F16
#define ATTN_DT_F16 1
#endif
#ifndef ATTN_DT_BF16
#define ATTN_DT_BF16 2
#endif
#if ATTN_DT_F32 != 0 || ATTN_DT_F16 != 1 || ATTN_DT_BF16 != 2
#error "attn_dtype values changed: renumber the ATTN_*_<code> access macros in common.cl"
#endif

/* Defaults of the -D options several kernel files share (the host passes every one a
 * program uses); each file adds its own. They make every file compile standalone. */
#ifndef DK
#define DK 64                   /* query/key head dim */
#endif
#ifndef DV
#define DV 64                   /* value head dim */
#endif
#ifndef DT_Q
#define DT_Q ATTN_DT_F32
#endif
#ifndef DT_K
#define DT_K ATTN_DT_F32
#endif
#ifndef DT_V
#define DT_V ATTN_DT_F32
#endif
#ifndef DT_O
#define DT_O ATTN_DT_F32        /* the output */
#endif
#ifndef DT_DO
#define DT_DO ATTN_DT_F32       /* the output's gradient (backward kernels) */
#endif
#ifndef DT_DQ
#define DT_DQ ATTN_DT_F32
#endif
#ifndef DT_DK
#define DT_DK ATTN_DT_F32
#endif
#ifndef DT_DV
#define DT_DV ATTN_DT_F32
#endif
#ifndef DT_M
#define DT_M ATTN_DT_F32        /* additive mask (softmax kernels) */
#endif
#ifndef HAS_BAND
#define HAS_BAND 1              /* causal or window bounds present */
#endif
#ifndef HAS_MASK_ADD
#define HAS_MASK_ADD 0
#endif
#ifndef HAS_MASK_BOOL
#define HAS_MASK_BOOL 0
#endif
#ifndef HAS_SOFTCAP
#define HAS_SOFTCAP 0
#endif
#ifndef HAS_STATE_IN
#define HAS_STATE_IN 0          /* linear state given (linear, rattention) */
#endif
#ifndef HAS_STATE_OUT
#define HAS_STATE_OUT 0         /* linear state asked for */
#endif
#ifndef HAS_SWA
#define HAS_SWA 1               /* rattention: w >= 0, the window's branch exists */
#endif
#ifndef HAS_GS
#define HAS_GS 0                /* rattention: gamma_swa given (else 1) */
#endif
#ifndef HAS_GR
#define HAS_GR 0                /* rattention: gamma_rla given (else 1) */
#endif

#define ATTN_CAT_(a, b) a##b
#define ATTN_CAT(a, b) ATTN_CAT_(a, b)

/* Pointer types and element access per dtype code: ATTN_LOAD_<dt>(p, i) reads element i as
 * float, ATTN_STORE_<dt>(p, i, x) writes it rounded to nearest even. */
#define ATTN_CPTR_0 global const float *
#define ATTN_CPTR_1 global const half *
#define ATTN_CPTR_2 global const ushort *
#define ATTN_PTR_0 global float *
#define ATTN_PTR_1 global half *
#define ATTN_PTR_2 global ushort *
#define ATTN_LOAD_0(p, i) ((p)[i])
#define ATTN_LOAD_1(p, i) vload_half((size_t)(i), (p))
#define ATTN_LOAD_2(p, i) attn_bf16_load((p), (i))
#define ATTN_STORE_0(p, i, x) ((p)[i] = (x))
#define ATTN_STORE_1(p, i, x) vstore_half_rte((x), (size_t)(i), (p))
#define ATTN_STORE_2(p, i, x) attn_bf16_store((p), (i), (x))

/* 16 consecutive elements as a float16 (contiguous rows). */
#define ATTN_VLOAD16_0(p, i) vload16(0, (p) + (i))
#define ATTN_VLOAD16_1(p, i) vload_half16(0, (p) + (i))
#define ATTN_VLOAD16_2(p, i) as_float16(convert_uint16(vload16(0, (p) + (i))) << 16)

/* Typed access for a tensor whose dtype code is the macro `dt` (e.g. DT_Q). */
#define ATTN_CPTR(dt) ATTN_CAT(ATTN_CPTR_, dt)
#define ATTN_PTR(dt) ATTN_CAT(ATTN_PTR_, dt)
#define ATTN_LOAD(dt, p, i) ATTN_CAT(ATTN_LOAD_, dt)(p, i)
#define ATTN_STORE(dt, p, i, x) ATTN_CAT(ATTN_STORE_, dt)(p, i, x)
#define ATTN_VLOAD16(dt, p, i) ATTN_CAT(ATTN_VLOAD16_, dt)(p, i)

float attn_bf16_load(global const ushort *p, long i)
{
    return as_float((uint)p[i] << 16);
}

void attn_bf16_store(global ushort *p, long i, float x)
{
    uint u = as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a quiet NaN with its sign */
        p[i] = (ushort)((u >> 16) | 0x40u);
    else
        p[i] = (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Horizontal max/sum in a fixed order (pairwise halves), so results are deterministic. */
float attn_hmax2(float2 v) { return fmax(v.s0, v.s1); }
float attn_hmax4(float4 v) { return attn_hmax2(fmax(v.lo, v.hi)); }
float attn_hmax8(float8 v) { return attn_hmax4(fmax(v.lo, v.hi)); }
float attn_hmax16(float16 v) { return attn_hmax8(fmax(v.lo, v.hi)); }
float attn_hsum2(float2 v) { return v.s0 + v.s1; }
float attn_hsum4(float4 v) { return attn_hsum2(v.lo + v.hi); }
float attn_hsum8(float8 v) { return attn_hsum4(v.lo + v.hi); }
float attn_hsum16(float16 v) { return attn_hsum8(v.lo + v.hi); }

/* The one kernel copy of attn_band_range() (src/core/attn_band.h), the band rule of the fast
 * code paths: keys [*lo, *hi) a query at aligned position pos may see; window_left /
 * window_right -1 = unlimited; *lo >= *hi means none (then *hi == *lo). tests/check_opencl.c
 * runs it on the device against the C copy. */
void attn_band_range(long pos, long window_left, long window_right, long skv, long *lo,
                     long *hi)
{
    long l = 0, h = skv;
    if (window_left >= 0 && pos - window_left > l)
        l = pos - window_left;
    if (window_right >= 0 && pos + window_right + 1 < h)
        h = pos + window_right + 1;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

#endif /* ATTN_COMMON_CL */
