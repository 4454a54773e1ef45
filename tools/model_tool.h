/* model_tool.h - what the model room's commands (`attn data`, `attn infer`, `attn train`) and
 * `attn transfer` share: integer, mask and float .npy files as dense host arrays, output files,
 * `mkdir -p`, the backend from --backend / --device / --options, and the exit code of a failed
 * library call.
 * Every function prints its error as "attn <cmd>: ..." to stderr. */
#ifndef ATTN_MODEL_TOOL_H_
#define ATTN_MODEL_TOOL_H_

#include "attn/attn.h"
#include "attn_npy.h"

#include <stdint.h>
#include <stdio.h>

/* A dense integer or byte array read from a file: ndim (1 or 2) dims, C order. */
typedef struct attn_model_tool_array {
    int ndim;
    int64_t shape[2];
    int64_t count;
    void *data; /* int32_t, uint8_t or float, owned */
} attn_model_tool_array;

/* An int32 or int64 file of rank ndim_lo..ndim_hi (at most 2) as int32 (int64 values must fit).
 * 0, or -1 (printed; *a left empty). */
int attn_model_tool_read_i32(const char *cmd, const char *path, int ndim_lo, int ndim_hi,
                             attn_model_tool_array *a);
/* A uint8 or bool file of rank ndim_lo..ndim_hi as bytes. 0, or -1 (printed). */
int attn_model_tool_read_u8(const char *cmd, const char *path, int ndim_lo, int ndim_hi,
                            attn_model_tool_array *a);
/* A float32 or float64 file of rank ndim_lo..ndim_hi (at most 2) as float; every value must be
 * finite in float32. 0, or -1 (printed). */
int attn_model_tool_read_f32(const char *cmd, const char *path, int ndim_lo, int ndim_hi,
                             attn_model_tool_array *a);
/* b has a's shape; else prints "<what_b> has shape X, <what_a> Y" and returns -1. */
int attn_model_tool_same_shape(const char *cmd, const attn_model_tool_array *a,
                               const char *what_a, const attn_model_tool_array *b,
                               const char *what_b);
void attn_model_tool_array_free(attn_model_tool_array *a);

/* Writes a .npy file. 0, or -1 (printed). */
int attn_model_tool_save(const char *cmd, const char *path, attn_npy_dtype t, int ndim,
                         const int64_t *shape, const void *data);
/* dir/name into buf (n bytes). 0, or -1 (printed) when it does not fit. */
int attn_model_tool_path(const char *cmd, const char *dir, const char *name, char *buf,
                         size_t n);
/* The whole file as a NUL-terminated string (malloc'd), or NULL (printed). */
char *attn_model_tool_read_text(const char *cmd, const char *path);
/* Writes text as the whole file. 0, or -1 (printed). */
int attn_model_tool_write_text(const char *cmd, const char *path, const char *text);
/* Creates dir and its missing parents (mkdir -p). 0, or -1 (printed). */
int attn_model_tool_mkdirs(const char *cmd, const char *dir);

/* One option of a command at argv[*i]: 1 taken (*i past its value), 0 not one of the
 * command's, -1 a bad value (printed). */
typedef int (*attn_model_tool_opt)(int argc, char **argv, int *i, void *opts);
/* Runs `one` over argv[1..]: --help prints usage (a format taking the backend help lines) and
 * gives 1; an unknown option is printed and gives -1; else 0. */
int attn_model_tool_parse(const char *cmd, int argc, char **argv, const char *usage,
                          attn_model_tool_opt one, void *opts);

/* The backend a command opens without --backend: cpu where built, else ref. */
const char *attn_model_tool_default_backend(void);

/* Help lines of --backend, --device and --options. */
extern const char attn_model_tool_backend_help[];
/* Opens the backend; device "P:D" becomes the backend option device=P:D. 0, or 2 (printed). */
int attn_model_tool_backend(const char *cmd, const char *name, const char *device,
                            const char *options, attn_backend **be);
/* A library call failed: prints "attn <cmd>: <what>: <status>: <message>" and returns the exit
 * code, 2 when the inputs were invalid (bad files, arguments), 1 when a valid run failed. */
int attn_model_tool_lib_error(const char *cmd, const char *what, attn_status st);
/* "2 layers, 4 heads, d 64, MLP 256, vocab 1000, 2 labels (176706 parameters)" to f. */
void attn_model_tool_print_sizes(FILE *f, attn_model *m);
/* Seconds on a monotonic clock. */
double attn_model_tool_now(void);

#endif /* ATTN_MODEL_TOOL_H_ */
