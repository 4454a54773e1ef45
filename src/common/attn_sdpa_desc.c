/* attn_sdpa_desc.c - the default SDPA descriptor. */
#include "attn/attn.h"

attn_sdpa_desc attn_sdpa_desc_default(void)
{
    attn_sdpa_desc d = {
        .scale = 0.0f, /* 1/sqrt(Dk) */
        .causal = 0,
        .align = ATTN_ALIGN_BOTTOM_RIGHT,
        .window_left = -1,
        .window_right = -1,
        .softcap = 0.0f,
        .mask_add = NULL,
        .mask_bool = NULL,
    };
    return d;
}
