/* attn_policy.c - the conformance gates of attn_policy.h: hard invariants, the per-element
 * condition-scaled bound, global NMSE, the rounding of half-precision outputs, calibration
 * against naive code in the backend's working precision, and trust. Every gate is evaluated; the worst verdict decides and the first gate
 * with that verdict gives the reason. docs/conformance.md derives every constant. */
#include "attn_policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define POLICY_C 8.0            /* oneDNN benchdnn's forward coefficient */
#define POLICY_ZERO_TRUST 0.9   /* benchdnn's forward zero-trust fraction */
#define POLICY_MIN_N 10         /* benchdnn: fewer elements than this are not trusted */

const char *attn_verdict_name(attn_verdict v)
{
    switch (v) {
    case ATTN_PASSED: return "PASSED";
    case ATTN_FAILED: return "FAILED";
    case ATTN_MISTRUSTED: return "MISTRUSTED";
    case ATTN_SKIPPED: return "SKIPPED";
    }
    return "UNKNOWN";
}

double attn_dtype_roundoff(attn_dtype t)
{
    return t == ATTN_F16 ? 0x1p-11 : t == ATTN_BF16 ? 0x1p-8 : 0x1p-24;
}

void attn_policy_setup_u(attn_policy_in *in, double u_out, int is_lse)
{
    in->u_c = 0x1p-24;
    in->u_out = u_out;
    in->nmse_max = 1e-9 + 4.0 * u_out * u_out;
    in->calib_factor = is_lse ? 16.0 : 4.0;
    in->tiny = 0;
    in->no_trust = is_lse;
}

void attn_policy_setup(attn_policy_in *in, attn_dtype out_dtype, int is_lse)
{
    attn_policy_setup_u(in, attn_dtype_roundoff(is_lse ? ATTN_F32 : out_dtype), is_lse);
}

void attn_policy_setup_state(attn_policy_in *in)
{
    attn_policy_setup_u(in, 0x1p-24, 0);
    in->calib_factor = 16.0;
}

/* PASSED < MISTRUSTED < FAILED: a definite error outranks a result that proves nothing. */
static int severity(attn_verdict v)
{
    return v == ATTN_FAILED ? 2 : v == ATTN_MISTRUSTED ? 1 : 0;
}

/* Record gate `gate`'s verdict if it is worse than what earlier gates found. */
static void decide(attn_policy_out *o, attn_verdict v, int gate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void decide(attn_policy_out *o, attn_verdict v, int gate, const char *fmt, ...)
{
    if (severity(v) <= severity(o->verdict))
        return;
    o->verdict = v;
    o->gate = gate;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->reason, sizeof o->reason, fmt, ap);
    va_end(ap);
}

/* Absolute floor of tau: output rounding near underflow is absolute, not relative. f16 (the
 * only output dtype with u = 2^-11) has subnormal spacing 2^-24; f32 and bf16 lose less than
 * 2^-126 there. */
static double tiny_of(const attn_policy_in *in)
{
    if (in->tiny > 0)
        return in->tiny;
    return in->u_out == 0x1p-11 ? 0x1p-24 : 0x1p-126;
}

/* k * u_c * cond + 2 * u_out * |gold| + tiny: tau_i with k = c * sqrt(n_acc); with k = 1 the
 * calibration floor (one unit roundoff of the condition plus the output rounding). */
static double tau_at(const attn_policy_in *in, double k, double cond, double gold)
{
    return k * in->u_c * cond + 2.0 * in->u_out * fabs(gold) + tiny_of(in);
}

/* Gate 1: what must hold exactly. Returns the number of violations; the first is described. */
static int64_t gate_invariants(const attn_policy_in *in, attn_policy_out *o)
{
    int64_t bad = 0, first = -1;
    char msg[160] = "";
    for (int64_t i = 0; i < in->n; i++) {
        const double g = in->gold[i], x = in->got[i];
        const char *what = NULL;
        if (isnan(g) && !isnan(x))
            what = "finite value where gold is NaN";
        else if (!isnan(g) && isnan(x))
            what = "NaN (or unwritten) where gold is not";
        else if ((isinf(g) || isinf(x)) && x != g)
            what = "Inf mismatch";
        else if (in->must_zero && in->must_zero[i] && x != 0.0)
            what = "fully masked row not exactly 0";
        if (!what)
            continue;
        if (bad++ == 0) {
            first = i;
            snprintf(msg, sizeof msg, "%s at [%lld]: got %.9g gold %.9g", what, (long long)i, x,
                     g);
        }
    }
    if (bad) {
        o->worst = first;
        decide(o, ATTN_FAILED, 1, "%s (%lld elements)", msg, (long long)bad);
        o->n_bad = bad;
    }
    return bad;
}

/* c sqrt(n_acc): the k of tau for the computation's error. */
static double k_of(const attn_policy_in *in)
{
    return POLICY_C * sqrt(in->n_acc > 1 ? in->n_acc : 1);
}

/* max|gold| over the finite elements: the norm-wise condition when no absmag is given. */
static double gold_max(const attn_policy_in *in)
{
    double gmax = 0.0;
    for (int64_t i = 0; i < in->n; i++)
        if (isfinite(in->gold[i]) && fabs(in->gold[i]) > gmax)
            gmax = fabs(in->gold[i]);
    return gmax;
}

/* cond_i is absmag_i, or max|gold| when no absmag is given (a norm-wise bound: absmag_i <=
 * max|v| and |gold| <= absmag). */
static double cond_at(const attn_policy_in *in, int64_t i, double gmax)
{
    return in->absmag ? in->absmag[i] : gmax;
}

/* Gates 2 and 3 share one pass over the finite pairs: margin, max abs error, NMSE, and the
 * calibration figures. */
static void gate_bound_nmse(const attn_policy_in *in, attn_policy_out *o, int64_t first_bad,
                            double gmax)
{
    const double k = k_of(in);
    double num = 0.0, den = 0.0;
    int64_t over = 0, worst = -1;
    for (int64_t i = 0; i < in->n; i++) {
        const double g = in->gold[i], x = in->got[i];
        if (!isfinite(g) || !isfinite(x))
            continue;
        const double d = fabs(x - g);
        const double cond = cond_at(in, i, gmax);
        const double m = d / tau_at(in, k, cond, g);
        const double floor1 = tau_at(in, 1.0, cond, g);
        if (floor1 > o->calib_floor)
            o->calib_floor = floor1;
        if (d > o->max_abs)
            o->max_abs = d;
        if (worst < 0 || m > o->margin) {
            o->margin = m;
            worst = i;
        }
        over += m > 1.0;
        num += d * d;
        den += g * g;
        if (in->lowp && isfinite(in->lowp[i]) && fabs(in->lowp[i] - g) > o->lowp_err)
            o->lowp_err = fabs(in->lowp[i] - g);
    }
    o->nmse = den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
    if (first_bad < 0 && worst >= 0)
        o->worst = worst;
    if (over) {
        decide(o, ATTN_FAILED, 2,
               "%lld elements exceed the bound; worst [%lld]: got %.9g gold %.9g margin %.3g",
               (long long)over, (long long)worst, in->got[worst], in->gold[worst], o->margin);
        if (o->gate == 2)
            o->n_bad = over;
    }
    if (o->nmse > in->nmse_max)
        decide(o, ATTN_FAILED, 3, "NMSE %.3g > %.3g", o->nmse, in->nmse_max);
}

/* Spacing of the output format at magnitude x: 2^(E - p + 1) in binade E, the subnormal
 * spacing 2^(emin - p + 1) below 2^emin. p = 11, emin = -14 (f16); p = 8, emin = -126 (bf16). */
static double ulp_at(double x, int p, int emin)
{
    if (x < ldexp(1.0, emin))
        return ldexp(1.0, emin - p + 1);
    int e;
    frexp(x, &e); /* x = m 2^e, m in [0.5, 1): binade e - 1 */
    return ldexp(1.0, e - p);
}

/* Gate 6: a half-precision output is the f32 result y rounded to nearest, so
 * |got - gold| <= ulp(|gold| + e) / 2 + e with e = c u_c sqrt(n_acc) cond_i >= |y - gold|
 * (docs/conformance.md derives it). A store that truncates or rounds in one direction leaves up
 * to a whole ulp and fails wherever e is small against the ulp. */
static void gate_rounding(const attn_policy_in *in, attn_policy_out *o, double gmax)
{
    int p, emin;
    if (in->u_out == 0x1p-11)
        p = 11, emin = -14;
    else if (in->u_out == 0x1p-8)
        p = 8, emin = -126;
    else
        return;
    o->round_checked = 1;
    const double k = k_of(in);
    int64_t worst = -1;
    for (int64_t i = 0; i < in->n; i++) {
        const double g = in->gold[i], x = in->got[i];
        if (!isfinite(g) || !isfinite(x))
            continue;
        const double e = k * in->u_c * cond_at(in, i, gmax);
        const double m = fabs(x - g) / (0.5 * ulp_at(fabs(g) + e, p, emin) + e);
        if (worst < 0 || m > o->round_margin) {
            o->round_margin = m;
            worst = i;
        }
        if (m > 1.0) {
            o->round_bad++;
            o->round_toward_zero += fabs(x) < fabs(g);
        }
    }
    if (o->round_bad) {
        decide(o, ATTN_FAILED, 6,
               "%lld elements (%lld toward zero) farther than half an output ulp plus the f32 "
               "term; worst [%lld]: got %.9g gold %.9g margin %.3g",
               (long long)o->round_bad, (long long)o->round_toward_zero, (long long)worst,
               in->got[worst], in->gold[worst], o->round_margin);
        if (o->gate == 6) {
            o->n_bad = o->round_bad;
            o->worst = worst;
        }
    }
}

/* Gate 4: max|got - gold| <= max(floor, F * max|lowp - gold|), i.e. lowp_ratio <= F where
 * lowp_ratio = max_abs / max(lowp_err, floor / F). */
static void gate_calibration(const attn_policy_in *in, attn_policy_out *o)
{
    if (!in->lowp || in->calib_factor <= 0)
        return;
    const double f = in->calib_factor;
    const double ref = fmax(o->lowp_err, o->calib_floor / f);
    o->lowp_ratio = ref > 0 ? o->max_abs / ref : (o->max_abs > 0 ? INFINITY : 0.0);
    if (o->lowp_ratio > f)
        decide(o, ATTN_FAILED, 4,
               "max error %.3g is %.3g x the naive working-precision error %.3g (limit %g x)",
               o->max_abs, o->lowp_ratio, o->lowp_err, f);
}

/* Gate 5: a comparison against mostly-zero gold, or a handful of elements, proves nothing. */
static void gate_trust(const attn_policy_in *in, attn_policy_out *o)
{
    int64_t zeros = 0;
    for (int64_t i = 0; i < in->n; i++)
        zeros += in->gold[i] == 0.0;
    o->zero_frac = in->n > 0 ? (double)zeros / (double)in->n : 1.0;
    if (in->no_trust)
        return;
    if (in->n < POLICY_MIN_N)
        decide(o, ATTN_MISTRUSTED, 5, "only %lld elements compared (< %d)", (long long)in->n,
               POLICY_MIN_N);
    else if (o->zero_frac > POLICY_ZERO_TRUST)
        decide(o, ATTN_MISTRUSTED, 5, "%.1f%% of gold elements are exactly 0 (> %.0f%%)",
               100.0 * o->zero_frac, 100.0 * POLICY_ZERO_TRUST);
}

void attn_policy_check(const attn_policy_in *in, attn_policy_out *out)
{
    memset(out, 0, sizeof *out);
    out->verdict = ATTN_PASSED;
    out->worst = -1;
    const double gmax = gold_max(in);
    int64_t bad = gate_invariants(in, out);
    gate_bound_nmse(in, out, bad ? out->worst : -1, gmax);
    gate_rounding(in, out, gmax);
    gate_calibration(in, out);
    gate_trust(in, out);
}
