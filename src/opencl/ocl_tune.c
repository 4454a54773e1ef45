/* ocl_tune.c - per-device kernel defaults (rows per work-item, keys per tile, Dv vector width,
 * work-group size). Looked up vendor + device name first, then vendor alone, then by device
 * type; docs/opencl.md explains the figures and how to add a device. */
#include "ocl_internal.h"

#include <string.h>

typedef struct tune_entry {
    const char *vendor; /* substring of CL_DEVICE_VENDOR or the platform name; NULL = any */
    const char *device; /* substring of CL_DEVICE_NAME; NULL = any device of the vendor */
    const char *type;   /* "GPU"/"CPU"; NULL = any */
    const char *label;  /* named in the backend description */
    attn_cl_tune tune;
} tune_entry;

/* Most specific first. CPU runtimes (PoCL, Intel CPU) vectorise each work-item's loops: a big
 * private register tile (16 rows), tiny work-groups, no local memory. GPUs want many light
 * work-items: few rows each, so private arrays stay in registers, work-groups of a
 * warp/wavefront or more sharing K/V tiles through local memory. */
static const tune_entry table[] = {
    {"Portable Computing Language", "pthread", "CPU", "pocl-cpu", {16, 16, 16, 1, 0}},
    {"NVIDIA", NULL, "GPU", "nvidia-gpu", {2, 16, 8, 64, 1}},
    {"Advanced Micro Devices", NULL, "GPU", "amd-gpu", {2, 16, 8, 64, 1}},
    {"AMD", NULL, "GPU", "amd-gpu", {2, 16, 8, 64, 1}},
    {"Intel", NULL, "GPU", "intel-gpu", {2, 8, 8, 32, 1}},
    {NULL, NULL, "CPU", "any-cpu", {16, 16, 16, 1, 0}},
    {NULL, NULL, "GPU", "any-gpu", {2, 16, 8, 64, 1}},
    {NULL, NULL, NULL, "any", {4, 8, 8, 16, 1}},
};

static int matches(const char *needle, const char *a, const char *b)
{
    return !needle || strstr(a, needle) || (b && strstr(b, needle));
}

attn_cl_tune attn_cl_tune_for(const attn_opencl_device_info *dev, const char **entry)
{
    size_t n = sizeof table / sizeof table[0];
    for (size_t i = 0; i < n; i++) {
        const tune_entry *e = &table[i];
        if (matches(e->vendor, dev->vendor, dev->platform_name) &&
            matches(e->device, dev->name, NULL) && matches(e->type, dev->type, NULL)) {
            if (entry)
                *entry = e->label;
            return e->tune;
        }
    }
    if (entry)
        *entry = table[n - 1].label;
    return table[n - 1].tune; /* unreachable: the last entry matches everything */
}
