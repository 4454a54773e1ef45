/* cpu_blis_arch.c - choose the BLIS kernel set once per process, before BLIS initialises.
 * Debian's BLIS 0.9 reads BLIS_ARCH_TYPE as the numeric arch_t id (a name such as "zen3" parses
 * as 0 = skx and dies with SIGILL on CPUs without AVX-512; an out-of-range id aborts), and it
 * detects recent AMD CPUs as "generic" (about 5x slower). So: unset -> pick a kernel set from
 * CPUID; a name -> its number; an invalid id or one this CPU cannot run -> the detected choice
 * plus a warning. BLIS must also be initialised (bli_init) before bli_arch_query_id(), which
 * otherwise aborts in 0.9 whenever BLIS_ARCH_TYPE is set. */
#include "cpu_internal.h"

#include <blis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_AVX = 1, F_AVX2 = 2, F_FMA = 4, F_FMA4 = 8, F_AVX512 = 16, F_SSSE3 = 32, F_NEVER = 64 };

typedef struct arch_entry {
    const char *name;
    int id;
    unsigned need; /* CPU features the kernel set executes */
} arch_entry;

/* Only the x86-64 sub-configurations compiled into this BLIS are listed. */
static const arch_entry arch_table[] = {
#if defined(__x86_64__)
#ifdef BLIS_CONFIG_SKX
    {"skx", BLIS_ARCH_SKX, F_AVX512 | F_FMA | F_AVX2},
#endif
#ifdef BLIS_CONFIG_KNL
    {"knl", BLIS_ARCH_KNL, F_NEVER}, /* needs AVX-512PF/ER: never chosen or accepted here */
#endif
#ifdef BLIS_CONFIG_HASWELL
    {"haswell", BLIS_ARCH_HASWELL, F_AVX2 | F_FMA},
#endif
#ifdef BLIS_CONFIG_SANDYBRIDGE
    {"sandybridge", BLIS_ARCH_SANDYBRIDGE, F_AVX},
#endif
#ifdef BLIS_CONFIG_PENRYN
    {"penryn", BLIS_ARCH_PENRYN, F_SSSE3},
#endif
#ifdef BLIS_CONFIG_ZEN3
    {"zen3", BLIS_ARCH_ZEN3, F_AVX2 | F_FMA},
#endif
#ifdef BLIS_CONFIG_ZEN2
    {"zen2", BLIS_ARCH_ZEN2, F_AVX2 | F_FMA},
#endif
#ifdef BLIS_CONFIG_ZEN
    {"zen", BLIS_ARCH_ZEN, F_AVX2 | F_FMA},
#endif
#ifdef BLIS_CONFIG_EXCAVATOR
    {"excavator", BLIS_ARCH_EXCAVATOR, F_AVX2 | F_FMA | F_FMA4},
#endif
#ifdef BLIS_CONFIG_STEAMROLLER
    {"steamroller", BLIS_ARCH_STEAMROLLER, F_AVX | F_FMA | F_FMA4},
#endif
#ifdef BLIS_CONFIG_PILEDRIVER
    {"piledriver", BLIS_ARCH_PILEDRIVER, F_AVX | F_FMA | F_FMA4},
#endif
#ifdef BLIS_CONFIG_BULLDOZER
    {"bulldozer", BLIS_ARCH_BULLDOZER, F_AVX | F_FMA4},
#endif
#endif
#ifdef BLIS_CONFIG_GENERIC
    {"generic", BLIS_ARCH_GENERIC, 0},
#endif
};
#define ARCH_N ((int)(sizeof arch_table / sizeof arch_table[0]))

static unsigned cpu_features(void)
{
    unsigned f = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    f |= __builtin_cpu_supports("avx") ? F_AVX : 0;
    f |= __builtin_cpu_supports("avx2") ? F_AVX2 : 0;
    f |= __builtin_cpu_supports("fma") ? F_FMA : 0;
    f |= __builtin_cpu_supports("fma4") ? F_FMA4 : 0;
    f |= __builtin_cpu_supports("ssse3") ? F_SSSE3 : 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        f |= F_AVX512;
#endif
    return f;
}

static const arch_entry *arch_by_name(const char *name)
{
    for (int i = 0; i < ARCH_N; i++)
        if (strcmp(arch_table[i].name, name) == 0)
            return &arch_table[i];
    return NULL;
}

static const arch_entry *arch_by_id(long id)
{
    for (int i = 0; i < ARCH_N; i++)
        if (arch_table[i].id == id)
            return &arch_table[i];
    return NULL;
}

static int arch_usable(const arch_entry *a, unsigned feat)
{
    return a && !(a->need & F_NEVER) && (a->need & feat) == a->need;
}

/* The kernel set to force when the user gave none: NULL leaves BLIS's own detection. */
static const arch_entry *arch_detect(unsigned feat)
{
    const arch_entry *a = NULL;
#if defined(__x86_64__) && defined(__GNUC__)
#if defined(BLIS_CONFIG_SKX) && defined(BLIS_CONFIG_ZEN3) && defined(BLIS_CONFIG_HASWELL)
    if (feat & F_AVX512)
        a = arch_by_id(BLIS_ARCH_SKX);
    else if ((feat & (F_AVX2 | F_FMA)) == (F_AVX2 | F_FMA))
        a = arch_by_id(__builtin_cpu_is("amd") ? BLIS_ARCH_ZEN3 : BLIS_ARCH_HASWELL);
#endif
#endif
    return arch_usable(a, feat) ? a : NULL;
}

/* Parses a decimal arch id; -1 if the text is not one. */
static long parse_id(const char *s)
{
    if (!*s || strlen(s) > 6)
        return -1;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    return strtol(s, NULL, 10);
}

static char g_origin[160];
static char g_warning[200];
static char g_summary[256];

static void set_arch(const arch_entry *a)
{
    char num[16];
    snprintf(num, sizeof num, "%d", a->id);
    setenv("BLIS_ARCH_TYPE", num, 1);
}

/* Decides BLIS_ARCH_TYPE from the environment and the CPU; fills g_origin / g_warning. */
static void choose_arch(void)
{
    unsigned feat = cpu_features();
    const arch_entry *det = arch_detect(feat);
    const char *env = getenv("BLIS_ARCH_TYPE");
    if (ARCH_N == 0 || (env == NULL && det == NULL)) {
        snprintf(g_origin, sizeof g_origin, "BLIS detection");
        return;
    }
    if (env == NULL) {
        set_arch(det);
        snprintf(g_origin, sizeof g_origin, "auto-selected");
        return;
    }
    long id = parse_id(env);
    const arch_entry *req = id >= 0 ? arch_by_id(id) : arch_by_name(env);
    if (arch_usable(req, feat)) {
        set_arch(req);
        snprintf(g_origin, sizeof g_origin, "from BLIS_ARCH_TYPE=%.40s", env);
        return;
    }
    snprintf(g_warning, sizeof g_warning,
             "BLIS_ARCH_TYPE=%.40s is not a kernel set this BLIS has and this CPU runs; %s",
             env, det ? "using the detected one" : "left to BLIS detection");
    if (det) {
        set_arch(det);
        snprintf(g_origin, sizeof g_origin, "auto-selected, BLIS_ARCH_TYPE=%.40s ignored", env);
    } else {
        unsetenv("BLIS_ARCH_TYPE");
        snprintf(g_origin, sizeof g_origin, "BLIS detection, BLIS_ARCH_TYPE=%.40s ignored",
                 env);
    }
}

static void setup_once(void)
{
    choose_arch();
    bli_init(); /* before bli_arch_query_id(): see the file comment */
    arch_t id = bli_arch_query_id();
    snprintf(g_summary, sizeof g_summary, "BLIS %s kernels %s (%s)", bli_info_get_version_str(),
             bli_arch_string(id), g_origin);
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

void attn_cpu_blis_setup(const char **summary, const char **warning)
{
    pthread_once(&g_once, setup_once);
    if (summary)
        *summary = g_summary;
    if (warning)
        *warning = g_warning;
}
