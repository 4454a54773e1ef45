/* attn_conform.h - the op-neutral conformance harness and the interface each op's driver
 * implements (benchdnn-style: case struct, parse/format, fill, gold, run). The harness owns
 * what every op shares: tensors in poisoned allocations with guard zones (host or device
 * memory), the backend runs (repeated, bit-identical), the write checks, and the policy gates
 * applied to every named output tensor. A driver (tools/<op>_conform.c) knows its op's tensors,
 * inputs and reference. docs/adding-an-op.md walks through writing one. */
#ifndef ATTN_CONFORM_H_
#define ATTN_CONFORM_H_

#include "attn/attn.h"
#include "attn_policy.h"

#include <stddef.h>
#include <stdint.h>

#define ATTN_CONF_MAX_TENSORS 16 /* inputs and outputs of one case */
#define ATTN_CONF_MAX_OUTPUTS 8  /* outputs checked by the gates */
#define ATTN_CONF_GUARD_BYTES 1024 /* before and after each guarded allocation */

/* ---- tensors of a case ---------------------------------------------------------------------- */

/* One allocation holding one view: a host image (guards, gaps and view), poisoned, and in
 * device mode the backend's copy of it. */
typedef struct attn_conf_buf {
    unsigned char *mem; /* host image, NULL when the operand is absent */
    size_t bytes;
    size_t guard;       /* guard zone bytes at each end */
    size_t view_off;    /* byte offset of element [0,0,0,0] */
    attn_tensor t;      /* host view into mem (what the reference reads) */
    attn_buffer *dev;   /* device mode: the backend's allocation holding the same image */
    attn_tensor run;    /* the view the backend gets: t, or the device view (buffer + offset) */
} attn_conf_buf;

typedef struct attn_conf_tensor {
    const char *name;   /* "q", "out", ... as in messages */
    int output;         /* written by the backend (checked for unwritten and stray writes) */
    attn_conf_buf b;
} attn_conf_tensor;

/* The tensors of one case, inputs first (the driver decides the order and keeps it). */
typedef struct attn_conf_data {
    int n;
    attn_conf_tensor t[ATTN_CONF_MAX_TENSORS];
} attn_conf_data;

/* Allocate `total` elements (+ `guard` bytes at each end) holding a view of shape/stride that
 * starts `lead` elements in, everything poisoned. Returns 0 or -1 (out of memory). */
int attn_conf_buf_make(attn_conf_buf *b, attn_dtype dt, const int64_t shape[4],
                       const int64_t stride[4], int64_t lead, int64_t total, size_t guard);
/* A contiguous view: seq-major [B,S,H,D] or head-major [B,H,S,D]. */
int attn_conf_buf_dense(attn_conf_buf *b, attn_dtype dt, int64_t B, int64_t S, int64_t H,
                        int64_t D, int head_major, size_t guard);
/* Add a named tensor slot (absent until its buffer is made); returns its buffer. */
attn_conf_buf *attn_conf_add(attn_conf_data *d, const char *name, int output);
/* The view the backend gets for the named slot, NULL when absent (or no such slot). */
const attn_tensor *attn_conf_run_view(const attn_conf_data *d, const char *name);
/* The host view of the named slot (what the reference reads), NULL when absent. */
const attn_tensor *attn_conf_host_view(const attn_conf_data *d, const char *name);

/* ---- gold of one output --------------------------------------------------------------------- */

/* Everything the gates need for one output tensor. The arrays (n elements) list the tensor's
 * elements row-major over its dims taken in `order` (order {0, 2, 1, 3} lists [b][h][s][d]). */
typedef struct attn_conf_gold {
    const char *name;   /* the output tensor's slot name */
    int rank;           /* dims shown in messages ("lse[b,i,h]": 3) */
    int order[4];
    int64_t n;
    double *gold;       /* f64 reference */
    double *lowp;       /* naive result in the backend's working precision, stored dtype */
    double *cond;       /* per-element condition scale (attn_policy_in.absmag) */
    double *got;        /* filled by the harness */
    uint8_t *must_zero; /* or NULL */
    attn_policy_in policy; /* set-up (u_out, F, ...) and n_acc; arrays filled by the harness */
} attn_conf_gold;

/* Allocate the arrays of g for n elements (must_zero too when zero_map). 0 or -1. */
int attn_conf_gold_alloc(attn_conf_gold *g, int64_t n, int zero_map);
/* Round each lowp element to dtype t, as naive code would store it. */
void attn_conf_round_lowp(attn_conf_gold *g, attn_dtype t);

struct attn_operand;
/* ||x[b, s, h, :n]||_2 of an operand (in f64), for the logit bounds of the condition scales. */
double attn_conf_row_norm(const struct attn_operand *o, int64_t b, int64_t s, int64_t h,
                          int64_t n);

/* ---- cases ---------------------------------------------------------------------------------- */

struct attn_conform_driver;

#define ATTN_CASE_DATA_MAX 256
/* Room for the longest canonical name of any op and its NUL: sdpa's is 276 characters (every
 * size 2^40, every option at its longest; check_conform.c formats it). */
#define ATTN_CASE_NAME_MAX 384

/* A case of any op: its driver and the driver's case struct. */
typedef struct attn_case {
    const struct attn_conform_driver *op;
    int quick;          /* tagged @quick in its case list */
    union {
        long double align_;
        unsigned char data[ATTN_CASE_DATA_MAX];
    } u;
} attn_case;

/* How the harness asks a driver to call its op through the public API. */
typedef enum attn_conf_call {
    ATTN_CONF_IMPL, /* the implementation name (runs the capability check) */
    ATTN_CONF_RUN   /* the op itself */
} attn_conf_call;

typedef struct attn_conform_driver {
    const char *stem;   /* the op's stem: first token of its case names */
    /* Case names: defaults, one token of the name (0 ok, -1 error in err), canonical name
     * (returns its length), feature bits and their names. */
    void (*case_default)(void *c);
    int (*case_token)(char *tok, void *c, char *err, size_t errsize);
    int (*case_check)(const void *c, char *err, size_t errsize); /* after all tokens; or NULL */
    int (*case_format)(const void *c, char *buf, size_t size);
    unsigned (*features)(const void *c);
    const char *const *feature_names;
    int n_features;
    /* Elements of the largest tensors (the harness refuses absurd cases), reference flops. */
    double (*elems)(const void *c);
    double (*cost)(const void *c);
    /* Allocate every tensor of the case (inputs with guards of `guard_in` bytes, outputs with
     * ATTN_CONF_GUARD_BYTES), inputs first; fill the inputs from the seed. */
    int (*make)(const void *c, size_t guard_in, attn_conf_data *d);
    void (*fill)(const void *c, uint64_t seed, attn_conf_data *d);
    /* Call the op on backend be with the run views of d. */
    attn_status (*call)(attn_backend *be, const void *c, const attn_conf_data *d,
                        attn_conf_call what, char *impl, size_t n);
    /* Validate the case on the host views and compute the gold of every output with the
     * reference: fills g[0..*ng). Returns 0, 1 (invalid case: message in attn_last_error())
     * or 2 (the reference failed). */
    int (*gold)(const void *c, const attn_conf_data *d, attn_conf_gold *g, int *ng);
} attn_conform_driver;

/* Canonical name / parse (the first token names the op: "sdpa b1 sq17 ..."). parse returns 0,
 * or -1 with a message in err; it checks syntax and ranges, the op's validation judges the
 * problem. */
int attn_case_format(const attn_case *c, char *buf, size_t size);
int attn_case_parse(const char *name, attn_case *c, char *err, size_t errsize);
unsigned attn_case_features(const attn_case *c);
double attn_case_cost(const attn_case *c);
/* The driver's case struct. */
static inline void *attn_case_data(attn_case *c)
{
    return c->u.data;
}
static inline const void *attn_case_cdata(const attn_case *c)
{
    return c->u.data;
}

/* The built-in list of every op (the embedded tests/cases/<op>.cases files; quick: only the
 * @quick lines). Returns a malloc'd array and its length, or NULL on failure. */
attn_case *attn_cases_builtin(int quick, size_t *n);
/* Read a case file: one name per line, optionally tagged "@quick ", '#' comments, blank
 * lines ignored. Returns a malloc'd array (possibly empty), or NULL with "file:line: ..." in
 * err. attn_cases_parse_text does the same for text in memory (`what` names it). */
attn_case *attn_cases_read(const char *path, size_t *n, char *err, size_t errsize);
attn_case *attn_cases_parse_text(const char *text, const char *what, size_t *n, char *err,
                                 size_t errsize);

/* ---- results -------------------------------------------------------------------------------- */

/* How a result compares with an expectations file (ATTN_OUTCOME_NONE without one). */
typedef enum attn_outcome {
    ATTN_OUTCOME_NONE = 0,   /* as expected (or no expectations file) */
    ATTN_OUTCOME_XFAIL,      /* expected to fail and failed: tracked, not counted */
    ATTN_OUTCOME_FIX,        /* expected to fail or be skipped, and passed */
    ATTN_OUTCOME_REGRESSION  /* worse than expected: fails the run */
} attn_outcome;

/* The gates' figures for one output tensor. */
typedef struct attn_result_tensor {
    char name[16];
    attn_policy_out fig;
} attn_result_tensor;

typedef struct attn_result {
    const attn_conform_driver *op;
    char name[ATTN_CASE_NAME_MAX];
    char repro[ATTN_CASE_NAME_MAX + 256];
    char impl[256];         /* the implementation name of the call ("" if not reached) */
    attn_verdict status;
    char reason[320];       /* why it did not pass ("" when PASSED) */
    char worst[200];        /* the worst element, "out[b,s,h,d] gold=.. got=.. cond=.." */
    unsigned features;      /* the driver's feature bits */
    double ms;              /* backend time (first run) */
    int compared;           /* the gates ran (not for skipped, invalid or erroring cases) */
    int ntensors;           /* checked outputs, in the driver's order */
    attn_result_tensor tensor[ATTN_CONF_MAX_OUTPUTS];
    int64_t unwritten;      /* output elements still holding the poison pattern */
    int64_t stray_bytes;    /* bytes changed outside the output views (guards and gaps) */
    int64_t guard_bytes;    /* of those (and of inputs), bytes changed in guard zones */
    attn_verdict expected;  /* from the expectations file (PASSED when not listed) */
    attn_outcome outcome;
} attn_result;

/* How each case is run. */
typedef struct attn_conform_opts {
    uint64_t seed;
    int device_mem;         /* tensors in attn_buffer allocations with 1 KiB guard zones */
    int repeat;             /* backend runs on the same inputs, all bit-identical (>= 1) */
    const char *repro_opts; /* options added to the repro command ("--device 0:0"), or NULL */
    /* Called after the fill and before anything reads the inputs (NULL in normal runs): lets
     * a test plant special values (NaN, Inf, a hidden key) that the reference and the backend
     * then both see. */
    void (*inputs)(attn_conf_data *d, void *ctx);
    void *inputs_ctx;
} attn_conform_opts;

/* Called after the backend's (first) call and before checking, with the views the backend
 * wrote (the outputs, in the driver's order; NULL for an absent one): host views, or in device
 * mode the device views (buffer + offset; corrupt them with attn_buffer_write). Lets a test
 * corrupt a result on purpose to prove the suite catches it. NULL in normal runs. */
typedef void (*attn_conform_tamper)(const attn_tensor *const *outputs, int n, void *ctx);

/* Run one case: fill the inputs from the seed, poison and guard the tensors, compute the gold
 * with the reference, run the backend through the public API (o->repeat times, each run
 * bit-identical), check the writes, and apply the policy to every output. Always fills *r;
 * returns r->status. */
attn_verdict attn_conform_case(attn_backend *be, const attn_case *c, const attn_conform_opts *o,
                               attn_conform_tamper tamper, void *ctx, attn_result *r);

/* `attn conform` with a tamper hook applied to every case (tests; NULL = the command). */
int attn_cmd_conform_hooked(int argc, char **argv, attn_conform_tamper tamper, void *ctx);

#endif /* ATTN_CONFORM_H_ */
