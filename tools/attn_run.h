/* attn_run.h - what every op's `attn run` shares: the common options (backend, layout,
 * dtypes, output), .npy files as 4-D tensor views (no copies beyond dtype conversion), output
 * files. Each op's runner (tools/<op>_run.c) parses its own files and descriptor options. */
#ifndef ATTN_RUN_H_
#define ATTN_RUN_H_

#include "attn/attn.h"
#include "attn_npy.h"

#include <stddef.h>
#include <stdint.h>

enum { ATTN_RUN_BSHD = 0, ATTN_RUN_BHSD = 1 };
enum { ATTN_RUN_OUT_F32 = 0, ATTN_RUN_OUT_F16, ATTN_RUN_OUT_BF16, ATTN_RUN_OUT_F64 };

typedef struct attn_run_opts {
    const char *backend;
    const char *options; /* backend options, or NULL */
    int layout;
    int bf16;
    int out_dtype;
    const char *out;
} attn_run_opts;

/* Help lines of the common options. */
extern const char attn_run_common_help[];
/* 1 consumed, 0 not a common option, -1 error (printed). */
int attn_run_common_arg(int argc, char **argv, int *i, attn_run_opts *o);
/* The common options complete: --out given, --out-dtype f64 only with --backend ref (the
 * ground truth). 0, or -1 after printing why. */
int attn_run_check_out(const attn_run_opts *o);
/* An option no parser took: prints "unknown option '<arg>' (see attn run --variant <variant>
 * --help)"; returns -1. */
int attn_run_unknown(const char *variant, const char *arg);
/* Print "attn run: <message>" to stderr; returns -1. */
int attn_run_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A loaded file and the 4-D view over its data. */
typedef struct attn_run_array {
    const char *opt, *path;
    attn_npy a;
    attn_tensor t;
} attn_run_array;

/* argv[*i] names one of the n file options in[k].opt: its path into in[k].path. 1 consumed, 0
 * another option, -1 error (printed). */
int attn_run_file_arg(int argc, char **argv, int *i, attn_run_array *in, int n);
/* After the options: q, k, v (in[0..2]) given and the common options complete
 * (attn_run_check_out). 0, or -1 after printing why. */
int attn_run_check_inputs(const attn_run_array *in, const attn_run_opts *o);

/* View dims: [batch, seq, heads, dim] from file dims in BSHD or BHSD order (also masks:
 * [B|1, H|1, Sq|1, Skv] files read with the BHSD permutation). */
extern const int attn_run_perm_bshd[4];
extern const int attn_run_perm_bhsd[4];
/* Floating data of rank min..max (f64 narrowed to f32 with a warning) / a bool or u8 mask. */
int attn_run_load_float(attn_run_array *r, int min_rank, int max_rank, const int perm[4],
                        int bf16);
int attn_run_load_bool(attn_run_array *r);
/* Integer positions (int32 or int64 file [S] or [B, S]) as the view [B|1, S, 1, 1]. */
int attn_run_load_positions(attn_run_array *r);

/* Output dtypes by ATTN_RUN_OUT_*: in the file, and computed by the library. */
extern const attn_npy_dtype attn_run_out_file_dtype[];
extern const attn_dtype attn_run_out_lib_dtype[];
int attn_run_save(const char *path, attn_npy_dtype t, int ndim, const int64_t *shape,
                  const void *data);
/* Product of n sizes as a byte count of elements of `size` bytes; 0 on overflow. */
size_t attn_run_bytes(const int64_t *dims, int n, size_t size);
/* [B, S, H, D] doubles (reference layout) into dst in file layout. */
void attn_run_f64_to_layout(const double *src, const int64_t dims[4], int layout, double *dst);

/* One gradient file of `attn run --dout`: the buffer the library writes through view t (dims
 * [d0, d1, d2, d3], seq-major or head-major like q, or strides set by the caller), and with
 * --out-dtype f64 the reference's dense f64 array in the view's dim order. */
typedef struct attn_run_grad {
    const char *path;
    void *buf;
    attn_tensor t;
    double *f64;
} attn_run_grad;
/* Allocate the buffers of a gradient of dtype dt with view dims `shape` in `layout`
 * (ATTN_RUN_BSHD or ATTN_RUN_BHSD); the f64 array too when f64. 0, or -1 (printed). */
int attn_run_grad_alloc(attn_run_grad *g, const int64_t shape[4], int layout, attn_dtype dt,
                        int f64);
/* Write it with the file dims (ndim, file_shape) of its input: the buffer as file dtype t, or
 * with f64 the f64 array placed in the file's order by the view's strides. 0, or -1. */
int attn_run_grad_save(const attn_run_grad *g, attn_npy_dtype t, int ndim,
                       const int64_t *file_shape, int f64);
void attn_run_grad_free(attn_run_grad *g);
/* The gradient file options opts[0..n) into g[k].path: 1 consumed, 0 none of them. */
int attn_run_grad_arg(int argc, char **argv, int *i, attn_run_grad *g, const char *const *opts,
                      int n);
/* The gradient files need --dout FILE (path dout), which needs the first three (dq, dk, dv);
 * `extra`: another gradient option was given. 0, or -1 (printed). */
int attn_run_grad_check(const char *dout, const attn_run_grad *g, const char *const *opts, int n,
                        int extra);

/* q, k, v (in[0..2], files of rank 3 or 4) in the chosen layout. 0, or -1 (printed). */
int attn_run_load_qkv(attn_run_array *in, const attn_run_opts *o);
/* The output [B, S, Hq, Dv] (B, S, Hq of q, Dv of v) into dims, zeroed in *buf (malloc'd),
 * viewed in the chosen layout with the library dtype of --out-dtype. 0, or -1 (printed). */
int attn_run_alloc_out(const attn_run_opts *o, const attn_tensor *q, const attn_tensor *v,
                       int64_t dims[4], void **buf, attn_tensor *out);
/* The output file: dims [B, S, Hq, Dv] in the chosen layout, without B when q's file was 3-D
 * (rank3), in the file dtype of --out-dtype. 0, or -1 (printed). */
int attn_run_save_out(const attn_run_opts *o, const int64_t dims[4], int rank3,
                      const void *data);
/* A library call failed: prints "attn run: <status>: <message>" and returns the exit code, 2
 * when the inputs do not make a valid problem, 1 when a backend failed to run a valid one. */
int attn_run_lib_error(attn_status s);

#endif /* ATTN_RUN_H_ */
