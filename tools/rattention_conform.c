/* rattention_conform.c - RATTENTION's entry in the attn command (placeholder until its
 * conformance driver lands). */
#include "attn_tool_ops.h"

const attn_tool_op attn_rattention_tool = {
    .stem = "rattention",
    .summary = "RATTENTION: sliding-window softmax + residual linear attention",
};
