/* cpu_backend.c - the "cpu" backend: options (threads=N, simd=on|off|avx2|avx512,
 * path=auto|decode|tiled|sgemm, chunk=N) and the describe line (BLIS version and kernel set,
 * thread count, decode kernels). Host memory only; each op's
 * implementation is in src/cpu/cpu_<op>_impl.c. */
#include "cpu_internal.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static attn_status parse_threads(const char *val, int *threads)
{
    char *end;
    long n = strtol(val, &end, 10);
    if (end == val || *end != '\0' || n < 1 || n > 1024)
        return attn_fail(ATTN_ERR_BACKEND, "cpu: threads must be an integer in [1, 1024] (got "
                                           "\"%s\")", val);
    *threads = (int)n;
    return ATTN_OK;
}

/* simd=on (the widest the CPU has), off (portable C), avx2 or avx512 (at most that set: to
 * test or time each kernel set on one machine). */
static attn_status parse_simd(const char *val, int *simd)
{
    static const struct {
        const char *name;
        attn_cpu_simd level;
    } sets[] = {{"on", ATTN_CPU_SIMD_AVX512},
                {"off", ATTN_CPU_SIMD_OFF},
                {"avx2", ATTN_CPU_SIMD_AVX2},
                {"avx512", ATTN_CPU_SIMD_AVX512}};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (strcmp(val, sets[i].name) == 0) {
            *simd = (int)sets[i].level;
            return ATTN_OK;
        }
    return attn_fail(ATTN_ERR_BACKEND, "cpu: simd must be on, off, avx2 or avx512 (got \"%s\")",
                     val);
}

/* chunk=N: the chunk length of the chunked linear-attention forms. */
static attn_status parse_chunk(const char *val, int64_t *chunk)
{
    char *end;
    long n = strtol(val, &end, 10);
    if (end == val || *end != '\0' || n < 1 || n > 4096)
        return attn_fail(ATTN_ERR_BACKEND, "cpu: chunk must be an integer in [1, 4096] (got "
                                           "\"%s\")", val);
    *chunk = n;
    return ATTN_OK;
}

static attn_status parse_path(const char *val, attn_cpu_path *path)
{
    static const char *const names[] = {"auto", "decode", "tiled", "sgemm"};
    for (int k = 0; k < 4; k++)
        if (strcmp(val, names[k]) == 0) {
            *path = (attn_cpu_path)k;
            return ATTN_OK;
        }
    return attn_fail(ATTN_ERR_BACKEND, "cpu: path must be auto, decode, tiled or sgemm (got \"%s\")",
                     val);
}

/* "key=value,key=value": threads=N, simd=on|off|avx2|avx512 (the widest
 * SIMD kernel set allowed; off forces the portable decode kernels),
 * path=auto|decode|tiled|sgemm (forces one SDPA path, for tests and benchmarks), chunk=N (the chunk
 * length of linear attention). */
static attn_status parse_options(const char *options, attn_cpu_state *s)
{
    char buf[256];
    if (!options || !*options)
        return ATTN_OK;
    if (strlen(options) >= sizeof buf)
        return attn_fail(ATTN_ERR_BACKEND, "cpu: options string too long");
    strcpy(buf, options);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = '\0';
        attn_status st;
        if (eq && strcmp(kv, "threads") == 0)
            st = parse_threads(eq + 1, &s->threads);
        else if (eq && strcmp(kv, "simd") == 0)
            st = parse_simd(eq + 1, &s->simd);
        else if (eq && strcmp(kv, "path") == 0)
            st = parse_path(eq + 1, &s->path);
        else if (eq && strcmp(kv, "chunk") == 0)
            st = parse_chunk(eq + 1, &s->chunk);
        else
            return attn_fail(ATTN_ERR_BACKEND,
                             "cpu: unknown option \"%s\" (known: threads=N, simd=on|off|avx2|"
                             "avx512, path=auto|decode|tiled|sgemm, chunk=N)",
                             kv);
        if (st != ATTN_OK)
            return st;
    }
    return ATTN_OK;
}

static attn_status cpu_open(attn_backend *be, const char *options)
{
    attn_cpu_state opt = {.threads = omp_get_max_threads(), .simd = ATTN_CPU_SIMD_AVX512};
    attn_status st = parse_options(options, &opt);
    const char *summary, *warning;
    if (st == ATTN_OK)
        st = attn_cpu_blis_setup(&summary, &warning);
    if (st != ATTN_OK)
        return st;
    attn_cpu_state *s = malloc(sizeof *s);
    opt.memo = s ? attn_cpu_memo_new() : NULL;
    if (!opt.memo) {
        free(s);
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate backend state");
    }
    *s = opt;
    snprintf(be->describe, sizeof be->describe, "cpu: %s, %d thread%s, decode kernels %s%s%s",
             summary, s->threads, s->threads == 1 ? "" : "s",
             attn_cpu_simd_name(attn_cpu_simd_use(s->simd)),
             *warning ? "; warning: " : "", warning);
    be->impl = s;
    return attn_ok();
}

static void cpu_close(attn_backend *be)
{
    if (be->impl)
        attn_cpu_memo_free(((attn_cpu_state *)be->impl)->memo);
    free(be->impl);
    be->impl = NULL;
}

const attn_backend_ops attn_cpu_ops = {
    .name = "cpu",
    .id = ATTN_BACKEND_CPU,
    .host_only = 1,
    .open = cpu_open,
    .close = cpu_close,
};
