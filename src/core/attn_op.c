/* attn_op.c - the op-neutral half of every public op call (attn_op.h): after an op has
 * validated its arguments into a problem, check buffer ownership and the backend's host-only
 * rule on every operand, find the op's implementation on this backend, ask its capability
 * check, then run it or name it. */
#include "attn_op.h"

#include "attn_backend_impl.h"

#include <stdio.h>

static const char *const op_stems[ATTN_OP_COUNT] = {
#define ATTN_OP(stem, STEM) #stem,
#include "attn_ops.def"
#undef ATTN_OP
};

/* Each op's implementation table, by op id. */
static const attn_op_impl *const *const op_impls[ATTN_OP_COUNT] = {
#define ATTN_OP(stem, STEM) attn_##stem##_impls,
#include "attn_ops.def"
#undef ATTN_OP
};

const char *attn_op_stem(attn_op_id op)
{
    return (unsigned)op < ATTN_OP_COUNT ? op_stems[op] : "?";
}

void attn_op_call_add(attn_op_call *c, const char *name, const attn_operand *o)
{
    if (c->n < ATTN_CALL_MAX_OPERANDS) {
        c->name[c->n] = name;
        c->operand[c->n++] = o;
    }
}

static attn_status check_operands(const attn_backend *be, const attn_op_call *c)
{
    for (int i = 0; i < c->n; i++) {
        const attn_tensor *t = c->operand[i]->t;
        if (t && t->buffer && t->buffer->be != be)
            return attn_fail(ATTN_ERR_BUFFER,
                             "%s: buffer was allocated on another backend handle ('%s'), not on "
                             "this call's ('%s')", c->name[i], t->buffer->be->ops->name,
                             be->ops->name);
    }
    if (!be->ops->host_only)
        return ATTN_OK;
    for (int i = 0; i < c->n; i++)
        if (c->operand[i]->t && !c->operand[i]->ptr)
            return attn_fail(ATTN_ERR_UNSUPPORTED,
                             "%s: operand %s is not host-accessible (device-only buffer)",
                             be->ops->name, c->name[i]);
    return ATTN_OK;
}

attn_status attn_op_dispatch(attn_backend *be, const attn_op_call *c, attn_dispatch what,
                             char *buf, size_t n)
{
    if (!be)
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_%s: backend is NULL", attn_op_stem(c->op));
    ATTN_TRY(check_operands(be, c));
    const attn_op_impl *impl = op_impls[c->op][be->ops->id];
    if (!impl || !impl->run)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "backend '%s' does not implement op '%s'",
                         be->ops->name, attn_op_stem(c->op));
    if (c->empty) {
        if (what == ATTN_DISPATCH_IMPL_NAME)
            snprintf(buf, n, "%s:empty", be->ops->name);
        return attn_ok();
    }
    if (impl->supported)
        ATTN_TRY(impl->supported(be, c->problem));
    attn_status st = ATTN_OK;
    if (what == ATTN_DISPATCH_RUN)
        st = impl->run(be, c->problem);
    else if (what == ATTN_DISPATCH_IMPL_NAME && impl->impl_name)
        impl->impl_name(be, c->problem, buf, n);
    else if (what == ATTN_DISPATCH_IMPL_NAME)
        snprintf(buf, n, "%s", be->ops->name);
    return st == ATTN_OK ? attn_ok() : st;
}
