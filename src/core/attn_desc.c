/* attn_desc.c - op-neutral descriptor field checks (attn_desc.h). */
#include "attn_desc.h"

#include <math.h>

#include "attn_backend_impl.h"

attn_status attn_desc_reserved(const uint64_t *reserved, size_t n, const char *defaults)
{
    for (size_t i = 0; i < n; i++)
        if (reserved[i] != 0)
            return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                             "desc.reserved[%zu] is not zero: start from %s()", i, defaults);
    return ATTN_OK;
}

attn_status attn_desc_flag(const char *field, int value)
{
    if (value != 0 && value != 1)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.%s = %d must be 0 or 1", field, value);
    return ATTN_OK;
}

attn_status attn_desc_enum(const char *field, int value, int last, const char *type)
{
    if (value < 0 || value > last)
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.%s = %d is not an %s", field, value,
                         type);
    return ATTN_OK;
}

attn_status attn_desc_scale_softcap(float scale, float softcap)
{
    if (!isfinite(scale))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT, "desc.scale = %g must be finite",
                         (double)scale);
    if (!(softcap >= 0.0f) || isinf(softcap))
        return attn_fail(ATTN_ERR_INVALID_ARGUMENT,
                         "desc.softcap = %g must be 0 (none) or a finite positive cap",
                         (double)softcap);
    return ATTN_OK;
}
