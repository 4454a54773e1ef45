/* cmd_compare.c - `attn compare GOT.npy REF.npy`: the conformance policy (attn_policy.h) applied
 * to two .npy files, e.g. a kernel's output against `attn run --backend ref` output, with the
 * policy's defaults (attn_policy_setup_u). Without the reference's per-element condition scale
 * or a same-precision naive result, the policy falls back on its element and NMSE gates with a
 * norm-wise condition max|ref| (1 + A), A a bound on the logit magnitudes (from --q/--k or
 * --logit-bound; docs/tool.md). Exit 0 PASSED, 1 anything else, 2 usage or file errors. */
#include "attn_args.h"
#include "attn_cmds.h"
#include "attn_npy.h"
#include "attn_policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct compare_opts {
    const char *path[2]; /* got, ref */
    const char *q, *k, *mask; /* attention inputs, for the logit bound A */
    double scale;        /* 0: 1/sqrt(Dk) */
    double logit_bound;  /* A given directly (-1: not given) */
    int64_t n_acc;       /* 0: the last dimension */
    int cls;             /* 0 f32, 1 f16 computation class */
    int64_t worst;
    int bf16;
} compare_opts;

static const char compare_help[] =
    "usage: attn compare GOT.npy REF.npy [options]\n"
    "applies the conformance policy to GOT (e.g. a kernel's output) against REF (the ground\n"
    "truth, e.g. from attn run --backend ref --out-dtype f64); shapes must be equal\n"
    "  --n-acc N      accumulation length of each element (default: the last dimension;\n"
    "                 for attention outputs Dk + attended keys is exact)\n"
    "  --class C      computation class f32 (default) or f16 (half-precision accumulation)\n"
    "  --worst K      list the K elements with the largest error (default 5)\n"
    "  --bf16         read '<u2' (uint16) arrays as bfloat16\n"
    "  --q Q.npy --k K.npy [--scale X] [--mask M.npy]\n"
    "                 attention inputs: bound the logit magnitudes by\n"
    "                 A = |scale| max|q_i| max|k_j| + max|mask| (rows along the last dim;\n"
    "                 scale default 1/sqrt(Dk)); each element's condition becomes\n"
    "                 max|REF| (1 + A), as attn conform derives it (large logits amplify\n"
    "                 float rounding of the logits)\n"
    "  --logit-bound A  the same with A given (default 0: small logits)\n"
    "exit status: 0 PASSED, 1 FAILED or MISTRUSTED, 2 usage or file error\n";

static int compare_parse(int argc, char **argv, compare_opts *o)
{
    static const char *const classes[] = {"f32", "f16", NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int r;
        if ((r = attn_arg_flag(argv, i, "--bf16")) != 0) {
            if (r < 0)
                return -1;
            o->bf16 = 1;
        } else if ((r = attn_arg_value(argc, argv, &i, "--n-acc", &val)) != 0) {
            if (r < 0 || attn_parse_i64("--n-acc", val, 1, INT64_C(1) << 50, &o->n_acc))
                return -1;
        } else if ((r = attn_arg_value(argc, argv, &i, "--class", &val)) != 0) {
            if (r < 0 || attn_parse_choice("--class", val, classes, &o->cls))
                return -1;
        } else if ((r = attn_arg_value(argc, argv, &i, "--q", &o->q)) != 0 ||
                   (r = attn_arg_value(argc, argv, &i, "--k", &o->k)) != 0 ||
                   (r = attn_arg_value(argc, argv, &i, "--mask", &o->mask)) != 0) {
            if (r < 0)
                return -1;
        } else if ((r = attn_arg_value(argc, argv, &i, "--scale", &val)) != 0) {
            if (r < 0 || attn_parse_f64("--scale", val, -1e30, 1e30, &o->scale))
                return -1;
        } else if ((r = attn_arg_value(argc, argv, &i, "--logit-bound", &val)) != 0) {
            if (r < 0 || attn_parse_f64("--logit-bound", val, 0, 1e300, &o->logit_bound))
                return -1;
        } else if ((r = attn_arg_value(argc, argv, &i, "--worst", &val)) != 0) {
            if (r < 0 || attn_parse_i64("--worst", val, 0, 1000, &o->worst))
                return -1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "attn compare: unknown option '%s'\n%s", argv[i], compare_help);
            return -1;
        } else if (npos < 2) {
            o->path[npos++] = argv[i];
        } else {
            fprintf(stderr, "attn compare: unexpected argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (npos != 2) {
        fprintf(stderr, "attn compare: need two files, GOT and REF\n%s", compare_help);
        return -1;
    }
    if (!o->q != !o->k || (o->mask && !o->q) || (o->q && o->logit_bound >= 0)) {
        fprintf(stderr, "attn compare: --q and --k go together (with optional --scale and "
                        "--mask), or --logit-bound alone\n");
        return -1;
    }
    return 0;
}

/* Unit roundoff of a file's dtype (its output rounding). */
static double unit_roundoff(const attn_npy *a)
{
    switch (a->dtype) {
    case ATTN_NPY_F64: return 0x1p-53;
    case ATTN_NPY_F16: return 0x1p-11;
    case ATTN_NPY_U16: return 0x1p-8;
    default: return 0x1p-24;
    }
}

/* Load one file as doubles in C order. */
static int load_f64(const char *path, int bf16, attn_npy *a, double **v)
{
    char err[ATTN_NPY_ERRLEN];
    if (attn_npy_load(path, a, err)) {
        fprintf(stderr, "attn compare: %s\n", err);
        return -1;
    }
    if (a->dtype == ATTN_NPY_U8 || a->dtype == ATTN_NPY_BOOL || (a->dtype == ATTN_NPY_U16 && !bf16)) {
        fprintf(stderr, "attn compare: %s: %s data is not floating point%s\n", path,
                attn_npy_dtype_name(a->dtype), a->dtype == ATTN_NPY_U16 ? " (pass --bf16)" : "");
        return -1;
    }
    *v = malloc((size_t)(a->count ? a->count : 1) * sizeof **v);
    if (!*v) {
        fprintf(stderr, "attn compare: %s: out of memory\n", path);
        return -1;
    }
    attn_npy_to_f64(a, bf16, *v);
    return 0;
}

static int same_shape(const attn_npy *a, const attn_npy *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

/* Largest 2-norm of the rows (last dimension) of a file, or largest finite |x| (rows of one
 * element); *dim gets the row length. */
static int max_row_norm(const char *path, int bf16, int finite_abs, double *out, int64_t *dim)
{
    attn_npy a;
    double *v = NULL;
    memset(&a, 0, sizeof a);
    if (load_f64(path, bf16, &a, &v)) {
        attn_npy_free(&a);
        return -1;
    }
    const int64_t d = finite_abs || a.ndim == 0 ? 1 : a.shape[a.ndim - 1];
    double mx = 0.0;
    for (int64_t r = 0; d > 0 && r < a.count / d; r++) {
        double s2 = 0.0;
        for (int64_t e = 0; e < d; e++)
            s2 += v[r * d + e] * v[r * d + e];
        if (!finite_abs || isfinite(s2))
            mx = fmax(mx, sqrt(s2));
    }
    *out = mx;
    *dim = d;
    attn_npy_free(&a);
    free(v);
    return 0;
}

/* A = |scale| max_i |q_i| max_j |k_j| + max|mask| (Cauchy-Schwarz), or --logit-bound. */
static int logit_bound(const compare_opts *o, double *a)
{
    double qn, kn, mn = 0.0;
    int64_t dq, dk, dm;
    *a = o->logit_bound > 0 ? o->logit_bound : 0.0;
    if (!o->q)
        return 0;
    if (max_row_norm(o->q, o->bf16, 0, &qn, &dq) || max_row_norm(o->k, o->bf16, 0, &kn, &dk) ||
        (o->mask && max_row_norm(o->mask, o->bf16, 1, &mn, &dm)))
        return -1;
    if (dq != dk) {
        fprintf(stderr, "attn compare: --q rows have %lld elements, --k rows %lld\n",
                (long long)dq, (long long)dk);
        return -1;
    }
    const double scale = o->scale != 0.0 ? o->scale : 1.0 / sqrt((double)dq);
    *a = fabs(scale) * qn * kn + mn;
    return 0;
}

/* The norm-wise condition of every element: max|ref| (1 + A). */
static double *norm_condition(const double *ref, int64_t n, double a)
{
    double *c = malloc((size_t)(n ? n : 1) * sizeof *c), mx = 0.0;
    for (int64_t i = 0; c && i < n; i++)
        if (isfinite(ref[i]))
            mx = fmax(mx, fabs(ref[i]));
    for (int64_t i = 0; c && i < n; i++)
        c[i] = mx * (1.0 + a);
    return c;
}

/* Error used to rank elements: NaN or infinity disagreement ranks first. */
static double elem_error(double got, double ref)
{
    if (isnan(got) || isnan(ref))
        return isnan(got) && isnan(ref) ? 0.0 : INFINITY;
    if (got == ref)
        return 0.0; /* also equal infinities */
    return fabs(got - ref);
}

/* Indices of the k largest errors, largest first (insertion into a short sorted list). */
static int64_t worst_elements(const double *got, const double *ref, int64_t n, int64_t k,
                              int64_t *idx)
{
    int64_t m = 0;
    for (int64_t i = 0; i < n && k > 0; i++) {
        double e = elem_error(got[i], ref[i]);
        if (m == k && e <= elem_error(got[idx[m - 1]], ref[idx[m - 1]]))
            continue;
        int64_t j = m < k ? m++ : m - 1;
        while (j > 0 && elem_error(got[idx[j - 1]], ref[idx[j - 1]]) < e) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return m;
}

static void index_str(const attn_npy *a, int64_t i, char *buf, size_t n)
{
    int64_t sub[ATTN_NPY_MAXDIM];
    for (int d = a->ndim - 1; d >= 0; d--) {
        sub[d] = a->shape[d] ? i % a->shape[d] : 0;
        i = a->shape[d] ? i / a->shape[d] : 0;
    }
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < a->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ",%lld" : "%lld", (long long)sub[d]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

static void report(const compare_opts *o, const attn_npy *a, const attn_policy_in *in,
                   const attn_policy_out *out)
{
    char ix[ATTN_NPY_MAXDIM * 22 + 4];
    printf("verdict: %s%s%s\n", attn_verdict_name(out->verdict), out->reason[0] ? ": " : "",
           out->reason);
    printf("elements: %lld  n_acc: %g  u_c: %.3g  u_out: %.3g\n", (long long)in->n, in->n_acc,
           in->u_c, in->u_out);
    printf("max abs error: %.6g\nNMSE: %.6g  sqrt(NMSE): %.6g  (gate %.3g)\nmargin: %.6g\n",
           out->max_abs, out->nmse, sqrt(out->nmse), in->nmse_max, out->margin);
    if (out->round_checked)
        printf("rounding margin: %.6g  (%lld elements beyond half an ulp + the f32 term, "
               "%lld toward zero)\n",
               out->round_margin, (long long)out->round_bad, (long long)out->round_toward_zero);
    if (out->worst >= 0 && out->worst < in->n) {
        index_str(a, out->worst, ix, sizeof ix);
        printf("largest margin at %s\n", ix);
    }
    int64_t *idx = o->worst ? malloc((size_t)o->worst * sizeof *idx) : NULL;
    if (!idx)
        return;
    int64_t m = worst_elements(in->got, in->gold, in->n, o->worst, idx);
    while (m > 0 && elem_error(in->got[idx[m - 1]], in->gold[idx[m - 1]]) == 0.0)
        m--; /* list only elements that differ */
    if (m == 0 && in->n > 0)
        printf("all elements are equal\n");
    if (m)
        printf("worst %lld elements:\n  %-20s %16s %16s %12s\n", (long long)m, "index", "got",
               "ref", "abs error");
    for (int64_t j = 0; j < m; j++) {
        int64_t i = idx[j];
        index_str(a, i, ix, sizeof ix);
        printf("  %-20s %16.9g %16.9g %12.4g\n", ix, in->got[i], in->gold[i],
               elem_error(in->got[i], in->gold[i]));
    }
    free(idx);
}

static int compare_files(const compare_opts *o, attn_npy f[2], double *v[2])
{
    for (int k = 0; k < 2; k++)
        if (load_f64(o->path[k], o->bf16, &f[k], &v[k]))
            return 2;
    if (!same_shape(&f[0], &f[1])) {
        char s0[ATTN_NPY_MAXDIM * 22 + 4], s1[sizeof s0];
        attn_npy_shape_str(f[0].ndim, f[0].shape, s0, sizeof s0);
        attn_npy_shape_str(f[1].ndim, f[1].shape, s1, sizeof s1);
        fprintf(stderr, "attn compare: shape mismatch: %s is %s, %s is %s\n", o->path[0], s0,
                o->path[1], s1);
        return 2;
    }
    /* The policy's own defaults (docs/conformance.md, gate 3): NMSE <= 1e-9 + (2 u_out)^2 for
     * the f32 class, u_out from GOT's dtype. Only the explicit half-accumulation class
     * (--class f16, u_c = 2^-11) is outside that derivation and takes ggml's 5e-4. */
    double a;
    if (logit_bound(o, &a))
        return 2;
    double *cond = norm_condition(v[1], f[0].count, a);
    if (!cond) {
        fprintf(stderr, "attn compare: out of memory\n");
        return 2;
    }
    attn_policy_in in = {.n = f[0].count, .gold = v[1], .got = v[0], .absmag = cond};
    attn_policy_setup_u(&in, unit_roundoff(&f[0]), 0);
    in.n_acc = (double)(o->n_acc ? o->n_acc : f[0].ndim ? f[0].shape[f[0].ndim - 1] : 1);
    if (o->cls) {
        in.u_c = 0x1p-11;
        in.nmse_max = 5e-4;
    }
    attn_policy_out out;
    memset(&out, 0, sizeof out);
    attn_policy_check(&in, &out);
    printf("logit bound A: %.6g (condition max|ref| (1 + A))\n", a);
    report(o, &f[0], &in, &out);
    if (out.verdict != ATTN_PASSED && out.gate == 2 && !o->q && o->logit_bound < 0)
        printf("hint: large logits amplify float rounding; give the attention inputs "
               "(--q, --k, --scale) or --logit-bound so the bound accounts for them\n");
    free(cond);
    return out.verdict == ATTN_PASSED ? 0 : 1;
}

int attn_cmd_compare(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(compare_help, stdout);
            return 0;
        }
    compare_opts o = {.worst = 5, .logit_bound = -1};
    if (compare_parse(argc, argv, &o))
        return 2;
    attn_npy f[2];
    double *v[2] = {NULL, NULL};
    memset(f, 0, sizeof f);
    int rc = compare_files(&o, f, v);
    for (int k = 0; k < 2; k++) {
        attn_npy_free(&f[k]);
        free(v[k]);
    }
    fflush(stdout);
    return rc;
}
