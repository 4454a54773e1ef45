/* ocl_internal.h - shared state and helpers of the OpenCL backend: the backend instance, the
 * error macro, device enumeration, the tuning table, program cache and kernel sources. */
#ifndef ATTN_OCL_INTERNAL_H_
#define ATTN_OCL_INTERNAL_H_

#include "attn/attn_opencl.h"
#include "attn_backend_impl.h"
#include "attn_embedded.h"

#include <CL/cl.h>
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

typedef struct attn_cl_backend {
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue queue;
    attn_opencl_device_info info;
    attn_cl_tune tune;       /* table defaults with option overrides applied */
    int tune_set[5];         /* which of br, bc, vw, wg, local the options set */
    char kernel_dir[512];    /* "" = embedded sources */
    char cache_dir[512];     /* "" = no disk cache */
    attn_cl_program *programs; /* built specialisations (linked list) */
    attn_opencl_stats stats;
} attn_cl_backend;

/* Kernel `kernel` from `file` (common.cl is prepended) built with `options`: from this
 * backend's memory, else the disk cache, else compiled (the message carries the build log). */
attn_status attn_cl_get_kernel(attn_cl_backend *cb, const char *file, const char *kernel,
                               const char *options, cl_kernel *out);
void attn_cl_programs_free(attn_cl_backend *cb);

#endif /* ATTN_OCL_INTERNAL_H_ */
