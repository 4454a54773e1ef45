/* attn_opencl.h - OpenCL-specific public API of the attn library: the platforms and devices
 * present (what `attn devices` prints), the device and program-cache state of an open
 * "opencl" backend, and CL error names. Available when the library is built with OpenCL
 * (ATTN_HAVE_OPENCL); needs no OpenCL header.
 *
 * Backend options of attn_backend_open("opencl", options, &be), comma separated:
 *   device=P:D    platform P, device D (as `attn devices` numbers them); env ATTN_OPENCL_DEVICE;
 *                 default: the first GPU, else the first device
 *   kernels=DIR   load the cl/ kernel files from DIR instead of the embedded copies;
 *                 env ATTN_CL_KERNEL_DIR
 *   cache=DIR|off program binary cache; env ATTN_CL_CACHE_DIR; default $XDG_CACHE_HOME/attn
 *                 or ~/.cache/attn
 *   br=N bc=N vw=N wg=N   kernel tile overrides (rows per work-item, keys per tile, Dv vector
 *                 width, work-group size); default from the per-device table (docs/opencl.md) */
#ifndef ATTN_ATTN_OPENCL_H_
#define ATTN_ATTN_OPENCL_H_

#include "attn/attn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_opencl_device_info {
    int platform, device;        /* indices as used by device=P:D */
    char platform_name[128];
    char platform_version[128];  /* "OpenCL 3.0 PoCL 3.1 ..." */
    char name[128];
    char vendor[128];
    char version[128];           /* CL_DEVICE_VERSION */
    char c_version[64];          /* CL_DEVICE_OPENCL_C_VERSION */
    char driver_version[128];
    char type[16];               /* "GPU", "CPU", "ACCELERATOR", "OTHER" */
    unsigned compute_units;
    size_t max_work_group_size;
    uint64_t local_mem_bytes;
    uint64_t global_mem_bytes;
    unsigned mem_base_addr_align; /* bits */
    int fp16;                    /* cl_khr_fp16 (not needed: f16 storage uses vload_half) */
    int fp64;
    int subgroups;               /* cl_khr_subgroups / cl_intel_subgroups or CL 2.1+ */
} attn_opencl_device_info;

/* Every device of every platform, in device=P:D order. Fills at most `capacity` entries of
 * `out` (may be NULL when capacity is 0) and sets *count to the number present. No platform:
 * ATTN_ERR_UNSUPPORTED with the message "no OpenCL platform found (...)". */
ATTN_API attn_status attn_opencl_devices(attn_opencl_device_info *out, int capacity, int *count);

/* The device an open "opencl" backend runs on (ATTN_ERR_BACKEND for another backend). */
ATTN_API attn_status attn_opencl_backend_device(const attn_backend *be,
                                                attn_opencl_device_info *out);

/* Program build and cache counters of an open "opencl" backend since it was opened. */
typedef struct attn_opencl_stats {
    long source_builds;  /* programs compiled from source */
    long disk_hits;      /* programs loaded from the binary cache */
    long disk_stores;    /* binaries written to the cache */
    long memory_hits;    /* launches that reused an already built program */
    char cache_dir[512]; /* "" when the disk cache is off */
    char last_kernel[256]; /* specialisation name of the last launch (as in conformance lines) */
} attn_opencl_stats;

ATTN_API attn_status attn_opencl_backend_stats(const attn_backend *be, attn_opencl_stats *out);

/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"); "CL_UNKNOWN_ERROR" if unknown. */
ATTN_API const char *attn_opencl_error_name(int cl_error);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_ATTN_OPENCL_H_ */
