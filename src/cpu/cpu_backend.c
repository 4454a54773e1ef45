/* cpu_backend.c - the "cpu" backend: options (threads=N), the describe line (BLIS version and
 * kernel set, thread count), capability check (host operands only) and dispatch between the
 * tiled forward and the decode path. */
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

/* "key=value,key=value"; the only key is threads. */
static attn_status parse_options(const char *options, int *threads)
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
        if (!eq || strncmp(kv, "threads", (size_t)(eq - kv)) != 0 || eq - kv != 7)
            return attn_fail(ATTN_ERR_BACKEND, "cpu: unknown option \"%s\" (known: threads=N)",
                             kv);
        attn_status st = parse_threads(eq + 1, threads);
        if (st != ATTN_OK)
            return st;
    }
    return ATTN_OK;
}

static attn_status cpu_open(attn_backend *be, const char *options)
{
    int threads = omp_get_max_threads();
    attn_status st = parse_options(options, &threads);
    if (st != ATTN_OK)
        return st;
    attn_cpu_state *s = malloc(sizeof *s);
    if (!s)
        return attn_fail(ATTN_ERR_OUT_OF_MEMORY, "cpu: cannot allocate backend state");
    s->threads = threads;
    const char *summary, *warning;
    attn_cpu_blis_setup(&summary, &warning);
    snprintf(be->describe, sizeof be->describe, "cpu: %s, %d thread%s%s%s", summary, threads,
             threads == 1 ? "" : "s", *warning ? "; warning: " : "", warning);
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
                         ? attn_cpu_sdpa_decode(p, s->threads)
                         : attn_cpu_sdpa_tiled(p, s->threads, pick_br(p, s->threads), CPU_BC);
    return st == ATTN_OK ? attn_ok() : st;
}

const attn_backend_ops attn_cpu_ops = {
    .name = "cpu",
    .open = cpu_open,
    .close = cpu_close,
    .sdpa_supported = cpu_sdpa_supported,
    .sdpa_forward = cpu_sdpa_forward,
};
