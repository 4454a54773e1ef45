/* ocl_rattention.h - what the RATTENTION forward (ocl_rattention.c) and backward
 * (ocl_rattention_backward.c) host code share: the window branch as sub-problems of the rope
 * and sdpa implementations, operands on the device (a host view copied to a device image of
 * its extent and, for an output, read back whole at the end; device views of both for the
 * sub-problems), f32 scratch, kernel arguments and the call's chain of commands. Defined in
 * ocl_rattention.c. */
#ifndef ATTN_OCL_RATTENTION_H_
#define ATTN_OCL_RATTENTION_H_

#include "attn_rattention_problem.h"
#include "attn_rope_problem.h"
#include "attn_sdpa_problem.h"
#include "ocl_internal.h"
#include "ocl_linear.h"

#define ATTN_CL_RATT_MAX_DK 256 /* one row's Dk features in a private array (phi, decode) */

static inline int64_t attn_cl_ratt_ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* ---- the window branch ---- */

/* The sliding-window branch of a call as problems of the sibling implementations. */
typedef struct attn_cl_ratt_sub {
    attn_rope_problem rq, rk;
    attn_sdpa_problem swa;
} attn_cl_ratt_sub;

/* The operands the branch reads and writes: the call's (or their device views) and scratch. */
typedef struct attn_cl_ratt_ops {
    attn_operand q, k, v;     /* the call's */
    attn_operand rq, rk, swa; /* f32 scratch [B, S, H, D] */
} attn_cl_ratt_ops;

/* RoPE of q and k into rq and rk, then the window's flash attention (causal, window_left w)
 * of rq, rk, v into swa (no lse: the caller sets one). */
void attn_cl_ratt_sub_problems(const attn_rattention_problem *p, const attn_cl_ratt_ops *o,
                               attn_cl_ratt_sub *s);
/* A compact f32 [B, S, H, D] operand without memory (t == NULL), for planning. */
attn_operand attn_cl_ratt_compact_f32(int64_t S, int64_t H, int64_t D);
/* The call's operands with planning scratch for the window branch. */
void attn_cl_ratt_planning_ops(const attn_rattention_problem *p, attn_cl_ratt_ops *o);
/* A sibling's implementation name without its "opencl:" prefix. */
void attn_cl_ratt_sub_name(const attn_op_impl *impl, attn_backend *be, const void *problem,
                           char *buf, size_t n);
const char *attn_cl_ratt_map_name(attn_linear_feature f);

/* ---- the residual branch (cl/rattention_attn.cl) ---- */

/* The -D options of cl/rattention_attn.cl for p's forward (a backward problem: out f32, no
 * state_out), into buf. */
void attn_cl_ratt_forward_options(const attn_rattention_problem *p, char *buf, size_t n);

/* ---- operands ---- */

/* An operand on the device: memory, element offset and strides as linear attention's (dev),
 * and a device view of it (buf, t, op) for the sub-problems. A host view gets an image of its
 * extent; an output's (or an in-place operand's) image goes back to dev.host_back at the end. */
typedef struct attn_cl_ratt_mem {
    attn_cl_lin_mem dev;
    attn_buffer buf;
    attn_tensor t;
    attn_operand op;
} attn_cl_ratt_mem;

attn_status attn_cl_ratt_bind(attn_backend *be, const attn_operand *o, int output,
                              attn_cl_ratt_mem *m);
/* f32 scratch of n floats; shaped [B, S, H, D] compact (with a device view) when shape is
 * given. */
attn_status attn_cl_ratt_scratch(attn_backend *be, size_t n, const int64_t *shape,
                                 attn_cl_ratt_mem *m);
void attn_cl_ratt_release_all(attn_cl_ratt_mem *m, int n);
/* The residual branch's f32 scratch: phi(q), phi(k), the padded values and the state saved
 * before every chunk (m[0..3], in the order attn_cl_ratt_rla_args takes them). */
attn_status attn_cl_ratt_rla_scratch(attn_backend *be, const attn_rattention_problem *p,
                                     attn_cl_ratt_mem m[4]);
/* RoPE's pair frequencies of p as 64-bit fixed-point turns (attn_cl_rope_turns), Dk / 2
 * ulongs on the device. */
attn_status attn_cl_ratt_turns(attn_backend *be, const attn_rattention_problem *p,
                               attn_cl_ratt_mem *m);

/* ---- launches ---- */


/* Kernel arguments set in order; the first failure is kept for the launch to report. */
typedef struct attn_cl_ratt_args {
    cl_kernel k;
    cl_uint n;
    cl_int err;
} attn_cl_ratt_args;

void attn_cl_ratt_put(attn_cl_ratt_args *a, size_t size, const void *v);
/* The memory, and with_view its element offset and strides. */
void attn_cl_ratt_put_mem(attn_cl_ratt_args *a, const attn_cl_ratt_mem *m, int with_view);
void attn_cl_ratt_put_longs(attn_cl_ratt_args *a, int n, const int64_t *x);
void attn_cl_ratt_put_float(attn_cl_ratt_args *a, double x);

/* The commands of one call on the shared queue, each waiting for the one before; the call
 * waits for its own last command only. */
typedef struct attn_cl_ratt_chain {
    attn_cl_backend *cb;
    cl_event last;
} attn_cl_ratt_chain;

/* Enqueues a's kernel (then releases it) on `items` work-items in groups of wg, after the
 * chain's last command; nothing when items is 0. */
attn_status attn_cl_ratt_enqueue(attn_cl_ratt_chain *ch, attn_cl_ratt_args *a, int64_t items,
                                 int wg);
/* Reads every host image of outs back into the user's memory after the chain, then waits for
 * all of it. */
attn_status attn_cl_ratt_finish(attn_cl_ratt_chain *ch, attn_cl_ratt_mem *outs, int nouts);
/* The end of a chain of launches: its kernels released, its last event waited for. */
attn_status attn_cl_ratt_chain_end(attn_cl_ratt_args *a, int n, attn_cl_ratt_chain *ch,
                                   attn_status st);

/* The arguments of the residual branch's kernels attn_ratt_rla_prep, _state and _rows
 * (a[0..2]) and their work-items: io q, k, v, state_in, state_out (absent ones too), the
 * scratch of attn_cl_ratt_rla_scratch, the branch's result rla (compact f32 [B][S][Hq][Dv]). */
void attn_cl_ratt_rla_args(const attn_rattention_problem *p,
                           const attn_cl_ratt_mem *const io[5], const attn_cl_ratt_mem sx[4],
                           const attn_cl_ratt_mem *rla, attn_cl_ratt_args a[3], int64_t items[3]);

/* The backward (ocl_rattention_backward.c): the op table's entries for p->backward. */
attn_status attn_cl_rattention_backward_supported(attn_backend *be,
                                                  const attn_rattention_problem *p);
void attn_cl_rattention_backward_impl_name(attn_backend *be, const attn_rattention_problem *p,
                                           char *buf, size_t n);
attn_status attn_cl_rattention_backward_run(attn_backend *be, const attn_rattention_problem *p);

#endif /* ATTN_OCL_RATTENTION_H_ */
