/* ocl_device.c - OpenCL platform/device enumeration, device info for `attn devices`, and the
 * device selection rule (device=P:D, else ATTN_OPENCL_DEVICE, else first GPU, else first). */
#include "ocl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTN_CL_MAX_PLATFORMS 16
#define ATTN_CL_MAX_DEVICES 64

static const char no_platform_msg[] =
    "no OpenCL platform found (is an ICD such as pocl-opencl-icd installed?)";

static attn_status get_platforms(cl_platform_id *ids, cl_uint *n)
{
    cl_int err = clGetPlatformIDs(ATTN_CL_MAX_PLATFORMS, ids, n);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (err == CL_SUCCESS && *n == 0))
        return attn_fail(ATTN_ERR_UNSUPPORTED, "%s", no_platform_msg);
    ATTN_CL_TRY(err, "clGetPlatformIDs");
    if (*n > ATTN_CL_MAX_PLATFORMS)
        *n = ATTN_CL_MAX_PLATFORMS;
    return ATTN_OK;
}

/* Devices of one platform; a platform without devices yields 0, not an error. */
static attn_status get_devices(cl_platform_id plat, cl_device_id *ids, cl_uint *n)
{
    cl_int err = clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, ATTN_CL_MAX_DEVICES, ids, n);
    if (err == CL_DEVICE_NOT_FOUND) {
        *n = 0;
        return ATTN_OK;
    }
    ATTN_CL_TRY(err, "clGetDeviceIDs");
    if (*n > ATTN_CL_MAX_DEVICES)
        *n = ATTN_CL_MAX_DEVICES;
    return ATTN_OK;
}

static void dev_str(cl_device_id d, cl_device_info what, char *buf, size_t n)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(d, what, n, buf, NULL) != CL_SUCCESS)
        snprintf(buf, n, "?");
    buf[n - 1] = '\0';
}

/* Fixed-size device info value (cl_uint, cl_ulong, size_t ...); 0 when unavailable. */
static void dev_val(cl_device_id d, cl_device_info what, void *out, size_t size)
{
    memset(out, 0, size);
    (void)clGetDeviceInfo(d, what, size, out, NULL);
}

static int has_extension(cl_device_id d, const char *ext)
{
    size_t n = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return 0;
    char *s = malloc(n + 1);
    if (!s)
        return 0;
    int found = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, n, s, NULL) == CL_SUCCESS) {
        s[n] = '\0';
        size_t len = strlen(ext);
        for (const char *p = strstr(s, ext); p && !found; p = strstr(p + 1, ext))
            found = (p == s || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0');
    }
    free(s);
    return found;
}

static const char *type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (t & CL_DEVICE_TYPE_CPU)
        return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return "ACCELERATOR";
    return "OTHER";
}

attn_status attn_cl_device_info(cl_platform_id plat, cl_device_id dev, int pi, int di,
                                attn_opencl_device_info *o)
{
    memset(o, 0, sizeof *o);
    o->platform = pi;
    o->device = di;
    if (clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof o->platform_name, o->platform_name,
                          NULL) != CL_SUCCESS ||
        clGetPlatformInfo(plat, CL_PLATFORM_VERSION, sizeof o->platform_version,
                          o->platform_version, NULL) != CL_SUCCESS)
        snprintf(o->platform_name, sizeof o->platform_name, "?");
    o->platform_name[sizeof o->platform_name - 1] = '\0';
    o->platform_version[sizeof o->platform_version - 1] = '\0';
    dev_str(dev, CL_DEVICE_NAME, o->name, sizeof o->name);
    dev_str(dev, CL_DEVICE_VENDOR, o->vendor, sizeof o->vendor);
    dev_str(dev, CL_DEVICE_VERSION, o->version, sizeof o->version);
    dev_str(dev, CL_DEVICE_OPENCL_C_VERSION, o->c_version, sizeof o->c_version);
    dev_str(dev, CL_DRIVER_VERSION, o->driver_version, sizeof o->driver_version);
    cl_device_type t;
    dev_val(dev, CL_DEVICE_TYPE, &t, sizeof t);
    snprintf(o->type, sizeof o->type, "%s", type_name(t));
    cl_uint cu, align;
    cl_ulong lmem, gmem, fp64cfg;
    dev_val(dev, CL_DEVICE_MAX_COMPUTE_UNITS, &cu, sizeof cu);
    dev_val(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, &o->max_work_group_size,
            sizeof o->max_work_group_size);
    dev_val(dev, CL_DEVICE_LOCAL_MEM_SIZE, &lmem, sizeof lmem);
    dev_val(dev, CL_DEVICE_GLOBAL_MEM_SIZE, &gmem, sizeof gmem);
    dev_val(dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, &align, sizeof align);
    dev_val(dev, CL_DEVICE_DOUBLE_FP_CONFIG, &fp64cfg, sizeof fp64cfg);
    o->compute_units = cu;
    o->local_mem_bytes = lmem;
    o->global_mem_bytes = gmem;
    o->mem_base_addr_align = align;
    o->fp16 = has_extension(dev, "cl_khr_fp16");
    o->fp64 = fp64cfg != 0 || has_extension(dev, "cl_khr_fp64");
    cl_uint max_sg = 0;
    dev_val(dev, CL_DEVICE_MAX_NUM_SUB_GROUPS, &max_sg, sizeof max_sg);
    o->subgroups = max_sg > 0 || has_extension(dev, "cl_khr_subgroups") ||
                   has_extension(dev, "cl_intel_subgroups");
    return ATTN_OK;
}

attn_status attn_opencl_devices(attn_opencl_device_info *out, int capacity, int *count)
{
    if (!count || (capacity > 0 && !out))
        return attn_fail(ATTN_ERR_NULL_POINTER, "attn_opencl_devices: %s is NULL",
                         count ? "out" : "count");
    *count = 0;
    cl_platform_id plats[ATTN_CL_MAX_PLATFORMS];
    cl_uint np = 0;
    attn_status st = get_platforms(plats, &np);
    if (st != ATTN_OK)
        return st;
    for (cl_uint p = 0; p < np; p++) {
        cl_device_id devs[ATTN_CL_MAX_DEVICES];
        cl_uint nd = 0;
        if ((st = get_devices(plats[p], devs, &nd)) != ATTN_OK)
            return st;
        for (cl_uint d = 0; d < nd; d++, (*count)++)
            if (*count < capacity)
                attn_cl_device_info(plats[p], devs[d], (int)p, (int)d, &out[*count]);
    }
    return attn_ok();
}

/* "P:D" -> indices; anything else is malformed. */
static attn_status parse_spec(const char *spec, int *pi, int *di)
{
    char *end;
    long p = strtol(spec, &end, 10);
    if (end == spec || *end != ':' || p < 0 || p > 1000)
        goto bad;
    const char *ds = end + 1;
    long d = strtol(ds, &end, 10);
    if (end == ds || *end != '\0' || d < 0 || d > 1000)
        goto bad;
    *pi = (int)p;
    *di = (int)d;
    return ATTN_OK;
bad:
    return attn_fail(ATTN_ERR_BACKEND,
                     "opencl: malformed device '%s' (expected P:D, e.g. 0:0; see `attn devices`)",
                     spec);
}

/* The first GPU, else the first device of any platform. */
static attn_status pick_default(const cl_platform_id *plats, cl_uint np, int *pi, int *di)
{
    int first_p = -1, first_d = -1;
    for (cl_uint p = 0; p < np; p++) {
        cl_device_id devs[ATTN_CL_MAX_DEVICES];
        cl_uint nd = 0;
        attn_status st = get_devices(plats[p], devs, &nd);
        if (st != ATTN_OK)
            return st;
        for (cl_uint d = 0; d < nd; d++) {
            cl_device_type t = 0;
            dev_val(devs[d], CL_DEVICE_TYPE, &t, sizeof t);
            if (t & CL_DEVICE_TYPE_GPU) {
                *pi = (int)p;
                *di = (int)d;
                return ATTN_OK;
            }
            if (first_p < 0) {
                first_p = (int)p;
                first_d = (int)d;
            }
        }
    }
    if (first_p < 0)
        return attn_fail(ATTN_ERR_UNSUPPORTED, "opencl: the OpenCL platforms have no device");
    *pi = first_p;
    *di = first_d;
    return ATTN_OK;
}

attn_status attn_cl_select_device(const char *spec, cl_platform_id *plat, cl_device_id *dev,
                                  int *pi, int *di)
{
    cl_platform_id plats[ATTN_CL_MAX_PLATFORMS];
    cl_uint np = 0;
    attn_status st = get_platforms(plats, &np);
    if (st != ATTN_OK)
        return st;
    if (spec && *spec)
        st = parse_spec(spec, pi, di);
    else
        st = pick_default(plats, np, pi, di);
    if (st != ATTN_OK)
        return st;
    cl_device_id devs[ATTN_CL_MAX_DEVICES];
    cl_uint nd = 0;
    spec = spec && *spec ? spec : "(default)";
    if ((cl_uint)*pi >= np)
        return attn_fail(ATTN_ERR_BACKEND, "opencl: device %s: no platform %d (%u present)",
                         spec, *pi, np);
    if ((st = get_devices(plats[*pi], devs, &nd)) != ATTN_OK)
        return st;
    if ((cl_uint)*di >= nd)
        return attn_fail(ATTN_ERR_BACKEND,
                         "opencl: device %s: platform %d has no device %d (%u present)", spec,
                         *pi, *di, nd);
    *plat = plats[*pi];
    *dev = devs[*di];
    return ATTN_OK;
}
