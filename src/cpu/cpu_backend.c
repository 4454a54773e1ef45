/* cpu_backend.c - the "cpu" backend: options (threads=N, simd=on|off), the describe line
 * (BLIS version and kernel set, thread count, decode kernels), capability check (host operands
 * only), the implementation name, and dispatch between the tiled forward and the decode path. */
#include "cpu_internal.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tile sizes of the tiled forward (query rows x key columns), tuned with `attn bench` (B1 H8
 * S2048, D64/D128): 256 x 512 was best among 64..256 x 128..512. Fewer query rows per tile
 * when that leaves too few work items to keep the threads busy. */
#define CPU_BR 256
#define CPU_BC 512
#define CPU_MIN_ITEMS_PER_THREAD 4

static int64_t pick_br(const attn_sdpa_problem *p, int threads)
{
    int64_t br = CPU_BR;
    while (br > 32 && p->B * p->Hq * ((p->Sq + br - 1) / br) < CPU_MIN_ITEMS_PER_THREAD * threads)
        br /= 2;
    return br;
}

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

static attn_status parse_simd(const char *val, int *simd)
{
    if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0)
        return attn_fail(ATTN_ERR_BACKEND, "cpu: simd must be on or off (got \"%s\")", val);
    *simd = strcmp(val, "on") == 0;
    return ATTN_OK;
}

/* "key=value,key=value": threads=N, simd=on|off (off forces the portable decode kernels). */
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
        else
            return attn_fail(ATTN_ERR_BACKEND, "cpu: unknown option \"%s\" (known: threads=N, "
                                               "simd=on|off)", kv);
        if (st != ATTN_OK)
            return st;
    }
    return ATTN_OK;
}

static attn_status cpu_open(attn_backend *be, const char *options)
{
    attn_cpu_state opt = {.threads = omp_get_max_threads(), .simd = 1};
    attn_status st = parse_options(options, &opt);
    if (st != ATTN_OK)
        return st;
    attn_cpu_state *s = malloc(sizeof *s);
    if (!s)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate backend state");
    *s = opt;
    const char *summary, *warning;
    attn_cpu_blis_setup(&summary, &warning);
    snprintf(be->describe, sizeof be->describe, "cpu: %s, %d thread%s, decode kernels %s%s%s",
             summary, s->threads, s->threads == 1 ? "" : "s",
             s->simd && attn_cpu_decode_simd_available() ? "avx2" : "portable",
             *warning ? "; warning: " : "", warning);
    be->impl = s;
    return attn_ok();
}

static void cpu_close(attn_backend *be)
{
    free(be->impl);
    be->impl = NULL;
}

static attn_status cpu_sdpa_supported(attn_backend *be, const attn_sdpa_problem *p)
{
    static const char *const names[] = {"q", "k", "v", "out", "lse", "mask_add", "mask_bool"};
    const attn_operand *ops[] = {&p->q, &p->k, &p->v, &p->out, &p->lse, &p->mask_add,
                                 &p->mask_bool};
    (void)be;
    for (size_t n = 0; n < sizeof ops / sizeof ops[0]; n++)
        if (ops[n]->t != NULL && ops[n]->ptr == NULL)
            return attn_fail(ATTN_ERR_UNSUPPORTED,
                             "cpu: operand %s is not host-accessible (device-only buffer)",
                             names[n]);
    return attn_ok();
}

static attn_status cpu_sdpa_forward(attn_backend *be, const attn_sdpa_problem *p)
{
    const attn_cpu_state *s = be->impl;
    attn_status st = p->Sq <= ATTN_CPU_DECODE_MAX_SQ
                         ? attn_cpu_sdpa_decode(p, s->threads, s->simd)
                         : attn_cpu_sdpa_tiled(p, s->threads, pick_br(p, s->threads), CPU_BC);
    return st == ATTN_OK ? attn_ok() : st;
}

/* "cpu:decode_splitkv_avx2" / "cpu:decode_splitkv_c" / "cpu:flash_blis_br256_bc512". */
static void cpu_sdpa_impl_name(attn_backend *be, const attn_sdpa_problem *p, char *buf,
                               size_t n)
{
    const attn_cpu_state *s = be->impl;
    if (p->Sq <= ATTN_CPU_DECODE_MAX_SQ)
        snprintf(buf, n, "cpu:decode_splitkv_%s",
                 attn_cpu_decode_uses_simd(p, s->simd) ? "avx2" : "c");
    else
        snprintf(buf, n, "cpu:flash_blis_br%lld_bc%d", (long long)pick_br(p, s->threads),
                 CPU_BC);
}

const attn_backend_ops attn_cpu_ops = {
    .name = "cpu",
    .open = cpu_open,
    .close = cpu_close,
    .sdpa_supported = cpu_sdpa_supported,
    .sdpa_forward = cpu_sdpa_forward,
    .sdpa_impl_name = cpu_sdpa_impl_name,
};
