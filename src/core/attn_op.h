/* attn_op.h - how the core dispatches one op call without knowing the op: op and backend ids
 * (from attn_ops.def / attn_backends.def), the per-op implementation a backend provides, and
 * the validated call (the op's problem plus its named operands) that every public entry point
 * hands to attn_op_dispatch(). */
#ifndef ATTN_OP_H_
#define ATTN_OP_H_

#include "attn/attn_core.h"
#include "attn_view.h"

typedef enum attn_op_id {
#define ATTN_OP(stem, STEM) ATTN_OP_##STEM,
#include "attn_ops.def"
#undef ATTN_OP
    ATTN_OP_COUNT
} attn_op_id;

typedef enum attn_backend_id {
#define ATTN_BACKEND(name, NAME) ATTN_BACKEND_##NAME,
#include "attn_backends.def"
#undef ATTN_BACKEND
    ATTN_BACKEND_COUNT
} attn_backend_id;

/* One op on one backend. `problem` is the op's validated problem struct (attn_<op>_problem).
 * supported: capability check (ATTN_OK or ATTN_ERR_UNSUPPORTED with a message); NULL = all
 * supported. run: computes the op; only called after supported said yes. impl_name: the
 * kernel specialisation run would use, e.g. "cpu:flash_blis_br256_bc512"; NULL = backend name. */
typedef struct attn_op_impl {
    attn_status (*supported)(attn_backend *be, const void *problem);
    attn_status (*run)(attn_backend *be, const void *problem);
    void (*impl_name)(attn_backend *be, const void *problem, char *buf, size_t n);
} attn_op_impl;

/* Each op's room defines its implementation table, indexed by attn_backend_id; a NULL entry
 * (backend without this op, or not built) makes every call ATTN_ERR_UNSUPPORTED. */
#define ATTN_OP(stem, STEM) extern const attn_op_impl *const attn_##stem##_impls[ATTN_BACKEND_COUNT];
#include "attn_ops.def"
#undef ATTN_OP

/* Stem of an op ("sdpa"). */
const char *attn_op_stem(attn_op_id op);

#define ATTN_CALL_MAX_OPERANDS 24

/* A validated call: its op, the op's problem, and every tensor operand by name (inputs and
 * outputs; absent optional operands have t == NULL). */
typedef struct attn_op_call {
    attn_op_id op;
    const void *problem;
    int empty;            /* outputs have no element (a zero batch, ...): nothing to run */
    int n;
    const attn_operand *operand[ATTN_CALL_MAX_OPERANDS];
    const char *name[ATTN_CALL_MAX_OPERANDS];
} attn_op_call;

/* Append an operand to a call (ignored past ATTN_CALL_MAX_OPERANDS, which a static check in
 * each op keeps from happening). */
void attn_op_call_add(attn_op_call *c, const char *name, const attn_operand *o);

typedef enum attn_dispatch {
    ATTN_DISPATCH_SUPPORTED, /* checks only */
    ATTN_DISPATCH_RUN,       /* checks, then run */
    ATTN_DISPATCH_IMPL_NAME  /* checks, then the implementation name into buf */
} attn_dispatch;

/* The common path after an op's validation: backend NULL check, buffer ownership of every
 * operand, the backend's host-only rule, the op's implementation on this backend (missing ->
 * ATTN_ERR_UNSUPPORTED), its capability check, then what `what` asks for. An empty call runs
 * nothing and is named "<backend>:empty". */
attn_status attn_op_dispatch(attn_backend *be, const attn_op_call *c, attn_dispatch what,
                             char *buf, size_t n);

#endif /* ATTN_OP_H_ */
