/* ocl_internal.h - shared state and helpers of the OpenCL backend: the backend instance, the
 * error macro, device enumeration, the tuning table, program cache and kernel sources. One
 * instance serves several threads at once (see attn_cl_backend). */
#ifndef ATTN_OCL_INTERNAL_H_
#define ATTN_OCL_INTERNAL_H_

#include "attn/attn_opencl.h"
#include "attn_backend_impl.h"
#include "attn_embedded.h"

#include <CL/cl.h>
#include <pthread.h>
#include <stdint.h>

/* ---- errors ---- */

/* Evaluate a CL call; on failure record "what: CL_NAME (code)" and return ATTN_ERR_DEVICE
 * (ATTN_ERR_OUT_OF_MEMORY for allocation failures) from the enclosing function. */
#define ATTN_CL_TRY(call, what)                                                                  \
    do {                                                                                         \
        cl_int err_ = (call);                                                                    \
        if (err_ != CL_SUCCESS)                                                                  \
            return attn_cl_fail(err_, what);                                                     \
    } while (0)

attn_status attn_cl_fail(cl_int err, const char *what);

/* ---- devices ---- */

/* Resolve "P:D" (or NULL/"" for the default: first GPU, else first device). */
attn_status attn_cl_select_device(const char *spec, cl_platform_id *plat, cl_device_id *dev,
                                  int *pi, int *di);
attn_status attn_cl_device_info(cl_platform_id plat, cl_device_id dev, int pi, int di,
                                attn_opencl_device_info *out);

/* ---- tuning ---- */

typedef struct attn_cl_tune {
    int br, bc, vw, wg; /* rows per work-item, keys per tile, Dv vector width, work-group size */
    int local;          /* stage K/V tiles in local memory (work-group shared) */
} attn_cl_tune;

/* Defaults for a device: vendor + device-name match, then vendor, then device type. */
attn_cl_tune attn_cl_tune_for(const attn_opencl_device_info *dev, const char **entry);

/* ---- kernel sources and programs ---- */

typedef attn_embedded_file attn_cl_source;

extern const attn_cl_source attn_cl_embedded[];
extern const int attn_cl_embedded_count;

typedef struct attn_cl_program attn_cl_program; /* one built specialisation */

/* Shared by every thread that calls ops on the handle. Set at open and read-only afterwards,
 * except `programs` and `stats`, which only change under `lock`. The queue is in-order and
 * shared: a call orders its own commands by events and waits for its last one only. */
typedef struct attn_cl_backend {
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue queue;
    attn_opencl_device_info info;
    attn_cl_tune tune;       /* table defaults with option overrides applied */
    int tune_set[5];         /* which of br, bc, vw, wg, local the options set */
    int chunk;               /* option chunk=: chunked linear forms' chunk length (0 default) */
    char kernel_dir[512];    /* "" = embedded sources */
    char cache_dir[512];     /* "" = no disk cache */
    pthread_mutex_t lock;    /* guards programs and stats */
    attn_cl_program *programs; /* built specialisations (linked list) */
    attn_opencl_stats stats;
} attn_cl_backend;

/* A new kernel object `kernel` of the program of `file` (common.cl is prepended) built with
 * the op's `options` (its -D specialisation; the common options come first); the program comes from this backend's memory, else the disk cache, else a build
 * (the message carries the build log). The kernel is the caller's alone, since arguments set
 * on a shared one would race with other threads' launches: set its arguments, enqueue it,
 * then release it (the queue keeps what the enqueued command needs). */
attn_status attn_cl_create_kernel(attn_cl_backend *cb, const char *file, const char *kernel,
                                  const char *options, cl_kernel *out);
void attn_cl_programs_free(attn_cl_backend *cb);

/* ---- shared by the ops' host code ---- */

/* RoPE frequencies of pairs i < npairs (rot rotated features) as 64-bit fixed-point turns,
 * turns[i] = theta^(-2i/rot) / (2 pi) * 2^64 modulo 2^64: a kernel's angle of position p is
 * the fractional turn p * turns[i] (integer wrap), see cl/rope_apply.cl (ocl_rope.c). */
void attn_cl_rope_turns(double theta, int64_t rot, int64_t npairs, cl_ulong *turns);

/* Records the specialisation a call ran (stats.last_kernel), under the lock. */
void attn_cl_note_kernel(attn_cl_backend *cb, const char *name);

#endif /* ATTN_OCL_INTERNAL_H_ */
