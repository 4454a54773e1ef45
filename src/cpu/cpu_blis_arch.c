/* cpu_blis_arch.c - BLIS's kernel set, chosen once per process, and the environment left as
 * it was. BLIS 0.9 picks its kernel set once, when it initialises: from BLIS_ARCH_TYPE, read
 * with strtol (a name such as "zen3", or "", means 0 = skx, which dies with SIGILL on CPUs
 * without AVX-512; an id out of range or of a kernel set this BLIS lacks aborts the process),
 * else from CPUID, which calls recent AMD CPUs "generic" (about 5x slower). Its API offers no
 * other way in: libblis exports neither a setter nor the lookup of a context by arch id
 * (bli_gks_lookup_nat_cntx) nor the kernels, and bli_gemm_ex only takes such a context. So:
 *   - BLIS_ARCH_TYPE unset: pick a kernel set from CPUID, set the variable to it for BLIS's
 *     initialisation only and remove it again before returning;
 *   - set: never changed. A value BLIS runs on this CPU is used (with a warning when BLIS reads
 *     a name as a number); one that would make BLIS abort or execute instructions this CPU
 *     lacks is refused with a status, and BLIS is never called.
 * bli_init() also precedes bli_arch_query_id(), which otherwise aborts in 0.9 whenever
 * BLIS_ARCH_TYPE is set. */
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

/* The kernel set to force when the user gave none: NULL leaves BLIS's own detection. AMD
 * CPUs get zen3 also when they have AVX-512 (Zen 4 runs it on 256-bit units): on a Zen 4 EPYC
 * the attention tiles ran 15-30 % faster with zen3 than with skx at the same sgemm rate
 * (docs/cpu.md). */
static const arch_entry *arch_detect(unsigned feat)
{
    const arch_entry *a = NULL;
#if defined(__x86_64__) && defined(__GNUC__)
#if defined(BLIS_CONFIG_SKX) && defined(BLIS_CONFIG_ZEN3) && defined(BLIS_CONFIG_HASWELL)
    const int avx2 = (feat & (F_AVX2 | F_FMA)) == (F_AVX2 | F_FMA);
    if (avx2 && __builtin_cpu_is("amd"))
        a = arch_by_id(BLIS_ARCH_ZEN3);
    else if (feat & F_AVX512)
        a = arch_by_id(BLIS_ARCH_SKX);
    else if (avx2)
        a = arch_by_id(BLIS_ARCH_HASWELL);
#endif
#endif
    return arch_usable(a, feat) ? a : NULL;
}

/* Whether s is a plain decimal number, the only form BLIS reads as the user means it. */
static int is_number(const char *s)
{
    if (!*s)
        return 0;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return 0;
    return 1;
}

/* The kernel sets this BLIS has and this CPU runs, as "0 skx, 3 haswell, ...". */
static void usable_list(unsigned feat, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < ARCH_N && k < n; i++)
        if (arch_usable(&arch_table[i], feat))
            k += (size_t)snprintf(buf + k, n - k, "%s%d %s", k ? ", " : "", arch_table[i].id,
                                  arch_table[i].name);
}

static attn_status g_status = ATTN_OK;
static char g_error[400];
static char g_origin[160];
static char g_warning[200];
static char g_summary[256];

/* A user's BLIS_ARCH_TYPE, as BLIS will read it (strtol). Returns 0, with g_error, when BLIS
 * would abort on it or run kernels this CPU cannot execute. */
static int check_user_arch(const char *env, unsigned feat)
{
    long id = strtol(env, NULL, 10);
    const arch_entry *a = arch_by_id(id), *named = arch_by_name(env);
    if (!arch_usable(a, feat)) {
        char list[200];
        usable_list(feat, list, sizeof list);
        snprintf(g_error, sizeof g_error,
                 "cpu: BLIS reads BLIS_ARCH_TYPE=%.40s as kernel set %ld, %s; unset it or set "
                 "one of: %s",
                 env, id,
                 a ? "whose instructions this CPU lacks (BLIS would crash)"
                   : "which this BLIS does not have (BLIS would abort)",
                 list);
        return 0;
    }
    if (!is_number(env)) {
        char hint[64] = "";
        if (named && named != a)
            snprintf(hint, sizeof hint, "; %s is %d", named->name, named->id);
        snprintf(g_warning, sizeof g_warning,
                 "BLIS_ARCH_TYPE=%.40s is not a number: BLIS reads it as %ld (%s)%s", env, id,
                 a->name, hint);
    }
    snprintf(g_origin, sizeof g_origin, "from BLIS_ARCH_TYPE=%.40s", env);
    return 1;
}

/* Initialises BLIS and returns the kernel set it chose. With `pick` (BLIS_ARCH_TYPE unset),
 * the variable names it while BLIS reads it, then is removed: the environment ends as it was. */
static arch_t blis_start(const arch_entry *pick)
{
    char num[16] = "";
    if (pick) {
        snprintf(num, sizeof num, "%d", pick->id);
        setenv("BLIS_ARCH_TYPE", num, 0);
    }
    bli_init(); /* before bli_arch_query_id(): see the file comment */
    arch_t id = bli_arch_query_id(); /* BLIS reads the variable by now, once per process */
    const char *now = pick ? getenv("BLIS_ARCH_TYPE") : NULL;
    if (now && strcmp(now, num) == 0)
        unsetenv("BLIS_ARCH_TYPE");
    return id;
}

static void setup_once(void)
{
    unsigned feat = cpu_features();
    const char *env = getenv("BLIS_ARCH_TYPE");
    const arch_entry *pick = env || ARCH_N == 0 ? NULL : arch_detect(feat);
    if (env && !check_user_arch(env, feat)) {
        g_status = ATTN_ERR_BACKEND;
        return;
    }
    if (!env)
        snprintf(g_origin, sizeof g_origin, pick ? "auto-selected" : "BLIS detection");
    arch_t id = blis_start(pick);
    long want = pick ? pick->id : env ? strtol(env, NULL, 10) : (long)id;
    if ((long)id != want) /* the application initialised BLIS first: its choice stands */
        snprintf(g_origin, sizeof g_origin, "chosen before the backend: BLIS was initialised");
    snprintf(g_summary, sizeof g_summary, "BLIS %s kernels %s (%s)", bli_info_get_version_str(),
             bli_arch_string(id), g_origin);
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

attn_status attn_cpu_blis_setup(const char **summary, const char **warning)
{
    pthread_once(&g_once, setup_once);
    if (g_status != ATTN_OK)
        return attn_fail(g_status, "%s", g_error);
    if (summary)
        *summary = g_summary;
    if (warning)
        *warning = g_warning;
    return ATTN_OK;
}
