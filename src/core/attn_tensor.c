/* attn_tensor.c - dtype facts and constructors of contiguous tensor views. */
#include "attn/attn.h"

const char *attn_dtype_name(attn_dtype t)
{
    switch (t) {
    case ATTN_F32: return "f32";
    case ATTN_F16: return "f16";
    case ATTN_BF16: return "bf16";
    case ATTN_U8: return "u8";
    case ATTN_I32: return "i32";
    case ATTN_I64: return "i64";
    }
    return "unknown";
}

size_t attn_dtype_size(attn_dtype t)
{
    switch (t) {
    case ATTN_F32: return 4;
    case ATTN_F16:
    case ATTN_BF16: return 2;
    case ATTN_U8: return 1;
    case ATTN_I32: return 4;
    case ATTN_I64: return 8;
    }
    return 0;
}

static attn_tensor make(void *data, attn_dtype t, const int64_t shape[4], int64_t s0, int64_t s1,
                        int64_t s2, int64_t s3)
{
    attn_tensor v = {.data = data, .buffer = NULL, .offset = 0, .dtype = t};
    for (int i = 0; i < 4; i++)
        v.shape[i] = shape[i];
    v.stride[0] = s0;
    v.stride[1] = s1;
    v.stride[2] = s2;
    v.stride[3] = s3;
    return v;
}

attn_tensor attn_tensor_bshd(void *data, attn_dtype t, int64_t b, int64_t s, int64_t h, int64_t d)
{
    const int64_t shape[4] = {b, s, h, d};
    return make(data, t, shape, s * h * d, h * d, d, 1);
}

attn_tensor attn_tensor_bhsd(void *data, attn_dtype t, int64_t b, int64_t s, int64_t h, int64_t d)
{
    const int64_t shape[4] = {b, s, h, d};
    return make(data, t, shape, h * s * d, d, s * d, 1);
}
