/* attn_desc.h - op-neutral checks of descriptor fields every op's validation shares: reserved
 * words that must be zero, 0/1 flags, enum ranges, a softmax's scale and soft-cap. Messages name the field as "desc.<field>". */
#ifndef ATTN_DESC_H_
#define ATTN_DESC_H_

#include "attn/attn_core.h"

#include <stddef.h>
#include <stdint.h>

/* reserved[0..n) all zero; the message names the op's `defaults` function to start from. */
attn_status attn_desc_reserved(const uint64_t *reserved, size_t n, const char *defaults);
/* The reserved array of a descriptor d, with the name of its _default() function. */
#define ATTN_DESC_RESERVED(d, defaults)                                                          \
    attn_desc_reserved((d)->reserved, sizeof (d)->reserved / sizeof (d)->reserved[0], defaults)
/* A flag field: 0 or 1. */
attn_status attn_desc_flag(const char *field, int value);
/* An enum field: 0 .. last (`type` names the enum type in the message). */
attn_status attn_desc_enum(const char *field, int value, int last, const char *type);

/* A softmax op's logit scale (finite; 0 selects the default) and soft-cap (0 = none, else a
 * finite positive cap). */
attn_status attn_desc_scale_softcap(float scale, float softcap);

#endif /* ATTN_DESC_H_ */
