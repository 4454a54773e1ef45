/* cmd_devices.c - `attn devices`: every OpenCL platform and device with what matters to the
 * kernels (versions, compute units, work-group and local memory limits, fp16/fp64, subgroups)
 * and the device=P:D index that selects it. */
#include "attn_cmds.h"

#include <stdio.h>
#include <string.h>

#ifdef ATTN_HAVE_OPENCL
#include "attn/attn_opencl.h"

#include <stdlib.h>

static void print_device(const attn_opencl_device_info *d)
{
    printf("%d:%d  %s  [%s]\n", d->platform, d->device, d->name, d->type);
    printf("     platform       %s (%s)\n", d->platform_name, d->platform_version);
    printf("     vendor         %s\n", d->vendor);
    printf("     version        %s; %s\n", d->version, d->c_version);
    printf("     driver         %s\n", d->driver_version);
    printf("     compute units  %u\n", d->compute_units);
    printf("     max work-group %zu\n", d->max_work_group_size);
    printf("     local memory   %llu KiB\n", (unsigned long long)(d->local_mem_bytes / 1024));
    printf("     global memory  %llu MiB\n",
           (unsigned long long)(d->global_mem_bytes / (1024 * 1024)));
    printf("     fp16 %s, fp64 %s, subgroups %s\n", d->fp16 ? "yes" : "no",
           d->fp64 ? "yes" : "no", d->subgroups ? "yes" : "no");
}

int attn_cmd_devices(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: attn devices\n\nLists OpenCL platforms and devices; select one "
                   "with --device P:D (backend option device=P:D, env ATTN_OPENCL_DEVICE).\n");
            return 0;
        }
        fprintf(stderr, "attn devices: unknown option '%s'\n", argv[i]);
        return 2;
    }
    int n = 0;
    attn_status st = attn_opencl_devices(NULL, 0, &n);
    if (st != ATTN_OK) {
        fprintf(stderr, "attn devices: %s\n", attn_last_error());
        return 1;
    }
    attn_opencl_device_info *list = calloc(n > 0 ? (size_t)n : 1, sizeof *list);
    if (!list || attn_opencl_devices(list, n, &n) != ATTN_OK) {
        fprintf(stderr, "attn devices: %s\n", list ? attn_last_error() : "out of memory");
        free(list);
        return 1;
    }
    if (n == 0)
        printf("no OpenCL device found (the platforms list none)\n");
    for (int i = 0; i < n; i++)
        print_device(&list[i]);
    free(list);
    return n > 0 ? 0 : 1;
}

#else

int attn_cmd_devices(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "attn devices: built without OpenCL (install ocl-icd-opencl-dev and "
                    "opencl-headers, then reconfigure with -Dopencl=enabled)\n");
    return 1;
}

#endif
