/* attn_version.c - the library's version as built (attn_version.h is generated from the
 * project version in meson.build). */
#include "attn/attn_core.h"

const char *attn_version(void)
{
    return ATTN_VERSION_STRING;
}

int attn_version_number(void)
{
    return ATTN_VERSION_NUMBER;
}
