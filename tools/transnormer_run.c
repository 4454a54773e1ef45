/* transnormer_run.c - `attn run --variant transnormer`: NormAttention or DiagAttention on .npy
 * files (q, k, v) with the descriptor options named like the library's fields (--mode,
 * --feature, --block, --scores, --pad, --norm, --scale, --eps, --causal), on any backend; the
 * f64 ground truth with --backend ref --out-dtype f64. */
#include "attn_args.h"
#include "attn_run.h"
#include "transnormer_ref.h"
#include "transnormer_tool.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char attn_transnormer_run_help[] =
    "usage: attn run --variant transnormer --q Q.npy --k K.npy --v V.npy --out O.npy [options]\n"
    "TransNormer: NormAttention out = SRMS(phi(q) (phi(k)^T v)), or DiagAttention (softmax or\n"
    "ReLU attention inside blocks of the sequence)\n"
    "  --q, --k, --v FILE query [B,S,Hq,Dk], key [B,S,Hkv,Dk], value [B,S,Hkv,Dv]\n";

const char attn_args_transnormer_help[] =
    "  --mode norm|diag   NormAttention (default) or DiagAttention\n"
    "  --causal           query i sees keys j <= i only\n"
    "  --feature F        NormAttention's phi: 1+elu (default), elu, relu, identity\n"
    "  --block N          DiagAttention's block size (default 64)\n"
    "  --scores S         DiagAttention's scores: softmax (default) or relu\n"
    "  --scale X          DiagAttention's logit scale, nonzero (default 1/sqrt(Dk))\n"
    "  --pad masked|zero  keys of a partial last block: none (default) or zero-padded keys in\n"
    "                     the softmax denominator (the authors' code)\n"
    "  --norm auto|srms|none  SimpleRMSNorm over all heads of a token (auto: on for norm mode\n"
    "                     and relu scores)\n"
    "  --eps X            SimpleRMSNorm's eps, > 0 (default 1e-8)\n";

/* Enum options: name, its choices, and the field they set. */
static int set_choice(const char *opt, const char *val, attn_transnormer_desc *d)
{
    static const struct {
        const char *opt;
        const char *const names[6];
        size_t off;
    } t[] = {
        {"--mode", {"norm", "diag", NULL}, offsetof(attn_transnormer_desc, mode)},
        {"--feature", {"1+elu", "elu", "relu", "identity", "elu+1", NULL},
         offsetof(attn_transnormer_desc, feature)},
        {"--scores", {"softmax", "relu", NULL}, offsetof(attn_transnormer_desc, scores)},
        {"--pad", {"masked", "zero", NULL}, offsetof(attn_transnormer_desc, pad)},
        {"--norm", {"auto", "srms", "none", NULL}, offsetof(attn_transnormer_desc, norm)},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        int v;
        if (strcmp(opt, t[k].opt) != 0)
            continue;
        if (attn_parse_choice(opt, val, t[k].names, &v))
            return -1;
        *(int *)((char *)d + t[k].off) = v == 4 ? 0 : v; /* elu+1 is 1+elu */
        return 0;
    }
    return -1;
}

static int set_number(const char *opt, const char *val, attn_transnormer_desc *d)
{
    if (strcmp(opt, "--block") == 0)
        return attn_parse_i64(opt, val, 1, (int64_t)1 << 40, &d->block);
    return attn_parse_f32_nonzero(opt, val, opt[2] == 'e' ? FLT_MIN : -FLT_MAX,
                                  opt[2] == 'e' ? &d->eps : &d->scale);
}

int attn_args_transnormer(int argc, char **argv, int *i, attn_transnormer_desc *d)
{
    static const char *const choices[] = {"--mode", "--feature", "--scores", "--pad", "--norm"};
    static const char *const numbers[] = {"--block", "--scale", "--eps"};
    const char *val;
    int r = attn_arg_flag(argv, *i, "--causal");
    if (r) {
        d->causal = r > 0;
        return r;
    }
    for (size_t k = 0; k < 5; k++)
        if ((r = attn_arg_value(argc, argv, i, choices[k], &val)) != 0)
            return r < 0 || set_choice(choices[k], val, d) ? -1 : 1;
    for (size_t k = 0; k < 3; k++)
        if ((r = attn_arg_value(argc, argv, i, numbers[k], &val)) != 0)
            return r < 0 || set_number(numbers[k], val, d) ? -1 : 1;
    return 0;
}

/* ---- the run -------------------------------------------------------------------------------- */

typedef struct tn_run {
    attn_run_opts o;
    attn_transnormer_desc d;
    attn_run_array in[3]; /* q, k, v */
    int64_t dims[4];      /* out [B, S, Hq, Dv] */
    void *out;
    double *out64, *tmp64;
    attn_backend *be;
} tn_run;

static int tn_parse(int argc, char **argv, tn_run *r)
{
    static const char *const files[3] = {"--q", "--k", "--v"};
    for (int k = 0; k < 3; k++)
        r->in[k].opt = files[k];
    for (int i = 1; i < argc; i++) {
        int c = attn_run_common_arg(argc, argv, &i, &r->o);
        c = c ? c : attn_args_transnormer(argc, argv, &i, &r->d);
        c = c ? c : attn_run_file_arg(argc, argv, &i, r->in, 3);
        if (c <= 0)
            return c < 0 ? -1 : attn_run_unknown("transnormer", argv[i]);
    }
    return attn_run_check_inputs(r->in, &r->o);
}

/* Inputs as views; out in q's layout (an f32 view only validated in f64 mode). */
static int tn_prepare(tn_run *r, attn_tensor *out)
{
    if (attn_run_load_qkv(r->in, &r->o))
        return -1;
    return attn_run_alloc_out(&r->o, &r->in[0].t, &r->in[2].t, r->dims, &r->out, out);
}

static int tn_compute(tn_run *r, const attn_tensor *out)
{
    const attn_tensor *q = &r->in[0].t, *k = &r->in[1].t, *v = &r->in[2].t;
    attn_status s;
    if (r->o.out_dtype != ATTN_RUN_OUT_F64) {
        s = attn_backend_open(r->o.backend, r->o.options, &r->be);
        if (s == ATTN_OK)
            s = attn_transnormer_forward(r->be, &r->d, q, k, v, out);
        return s == ATTN_OK ? 0 : attn_run_lib_error(s);
    }
    attn_transnormer_problem p;
    if ((s = attn_transnormer_validate(&r->d, q, k, v, out, &p)) != ATTN_OK)
        return attn_run_lib_error(s);
    const size_t n = attn_run_bytes(r->dims, 4, sizeof(double));
    r->out64 = malloc(n ? n : 1);
    r->tmp64 = malloc(n ? n : 1);
    if (!r->out64 || !r->tmp64) {
        fprintf(stderr, "attn run: out of memory\n");
        return 1;
    }
    if ((s = attn_ref_transnormer(&p, ATTN_REF_F64, r->tmp64, NULL, NULL)) != ATTN_OK)
        return attn_run_lib_error(s);
    attn_run_f64_to_layout(r->tmp64, r->dims, r->o.layout, r->out64);
    return 0;
}

static int tn_save(const tn_run *r)
{
    const int rank3 = r->in[0].a.ndim == 3, f64 = r->o.out_dtype == ATTN_RUN_OUT_F64;
    return attn_run_save_out(&r->o, r->dims, rank3, f64 ? (void *)r->out64 : r->out);
}

int attn_transnormer_cmd_run(int argc, char **argv)
{
    tn_run r;
    memset(&r, 0, sizeof r);
    r.o.backend = "ref";
    r.d = attn_transnormer_desc_default();
    attn_tensor out;
    int rc = 2;
    if (tn_parse(argc, argv, &r) == 0 && tn_prepare(&r, &out) == 0) {
        rc = tn_compute(&r, &out);
        if (rc == 0 && tn_save(&r))
            rc = 2;
    }
    for (int k = 0; k < 3; k++)
        attn_npy_free(&r.in[k].a);
    free(r.out);
    free(r.out64);
    free(r.tmp64);
    attn_backend_close(r.be);
    return rc;
}
