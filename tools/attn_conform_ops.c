/* attn_conform_ops.c - the conformance drivers of all ops, from the core's op list
 * (src/core/attn_ops.def): each op provides attn_<stem>_driver in tools/<stem>_conform.c. */
#include "attn_conform.h"

#define ATTN_OP(stem, STEM) extern const attn_conform_driver attn_##stem##_driver;
#include "attn_ops.def"
#undef ATTN_OP

const attn_conform_driver *const attn_conform_drivers[] = {
#define ATTN_OP(stem, STEM) &attn_##stem##_driver,
#include "attn_ops.def"
#undef ATTN_OP
};

const int attn_conform_n_drivers =
    (int)(sizeof attn_conform_drivers / sizeof attn_conform_drivers[0]);
