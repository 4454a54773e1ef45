/* attn_tool_ops.c - the ops the `attn` command knows (attn_tool_ops.h), from the core's op
 * list: each op provides attn_<stem>_tool. */
#include "attn_tool_ops.h"

#include <string.h>

#define ATTN_OP(stem, STEM) extern const attn_tool_op attn_##stem##_tool;
#include "attn_ops.def"
#undef ATTN_OP

const attn_tool_op *const attn_tool_ops[] = {
#define ATTN_OP(stem, STEM) &attn_##stem##_tool,
#include "attn_ops.def"
#undef ATTN_OP
};

const int attn_tool_n_ops = (int)(sizeof attn_tool_ops / sizeof attn_tool_ops[0]);

const attn_tool_op *attn_tool_op_find(const char *stem)
{
    for (int i = 0; i < attn_tool_n_ops; i++)
        if (strcmp(attn_tool_ops[i]->stem, stem) == 0)
            return attn_tool_ops[i];
    return NULL;
}
