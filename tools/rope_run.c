/* rope_run.c - `attn run --variant rope`: rotary position embedding of one .npy tensor (with
 * optional .npy positions) on any backend, and the RoPE descriptor options (--rope,
 * --rope-theta, --rot-dim, --offset) that other ops' runners share; the f64 ground truth with
 * --backend ref --out-dtype f64. */
#include "attn_args.h"
#include "attn_run.h"
#include "rope_ref.h"
#include "rope_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char attn_args_rope_help[] =
    "  --rope half|interleaved  pairs (i, i+rot/2) as GPT-NeoX / HF (default) or (2i, 2i+1)\n"
    "                     as GPT-J / Meta Llama / axlearn\n"
    "  --rope-theta X     frequency base theta > 0 (default 10000)\n"
    "  --rot-dim N        rotate the first N features (even), copy the rest (default: all)\n"
    "  --offset N         added to every position, |N| <= 2^40 (default 0)\n";

int attn_args_rope(int argc, char **argv, int *i, attn_rope_desc *d)
{
    static const char *const layouts[] = {"half", "interleaved", NULL};
    const char *v;
    int r, k;
    if ((r = attn_arg_value(argc, argv, i, "--rope", &v)) != 0) {
        if (r < 0 || attn_parse_choice("--rope", v, layouts, &k))
            return -1;
        d->layout = k ? ATTN_ROPE_INTERLEAVED : ATTN_ROPE_HALF;
        return 1;
    }
    if ((r = attn_arg_value(argc, argv, i, "--rope-theta", &v)) != 0)
        return r < 0 || attn_parse_f64("--rope-theta", v, 1e-300, 1e300, &d->theta) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--rot-dim", &v)) != 0)
        return r < 0 || attn_parse_i64("--rot-dim", v, 0, INT64_MAX, &d->rot_dim) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--offset", &v)) != 0)
        return r < 0 || attn_parse_i64("--offset", v, -((int64_t)1 << 40), (int64_t)1 << 40,
                                       &d->offset) ? -1 : 1;
    return 0;
}

const char attn_rope_run_help[] =
    "usage: attn run --variant rope --x X.npy --out O.npy [--positions P.npy] [options]\n"
    "rotary position embedding: pair i of row (b, s) rotated by pos * theta^(-2i/rot_dim),\n"
    "pos = offset + positions[b, s] (or offset + s)\n"
    "  --x FILE           input [B,S,H,D] (or [S,H,D]; --layout bhsd: [B,H,S,D])\n"
    "  --positions FILE   int32 or int64 positions [B,S] or [S] (default: the index s)\n";

typedef struct rope_run {
    attn_run_opts o;
    attn_rope_desc d;
    attn_run_array x, pos;
    int64_t dims[4];
    void *out;
    double *y64, *out64;
    attn_backend *be;
} rope_run;

static int rope_parse(int argc, char **argv, rope_run *r)
{
    r->x.opt = "--x";
    r->pos.opt = "--positions";
    for (int i = 1; i < argc; i++) {
        int c = attn_run_common_arg(argc, argv, &i, &r->o);
        if (c == 0)
            c = attn_args_rope(argc, argv, &i, &r->d);
        if (c == 0)
            c = attn_arg_value(argc, argv, &i, "--x", &r->x.path);
        if (c == 0)
            c = attn_arg_value(argc, argv, &i, "--positions", &r->pos.path);
        if (c < 0)
            return -1;
        if (c == 0)
            return attn_run_error("unknown option '%s' (see attn run --variant rope --help)",
                                  argv[i]);
    }
    if (!r->x.path)
        return attn_run_error("--x FILE is required");
    return attn_run_check_out(&r->o);
}

static int rope_load(rope_run *r, attn_tensor *out)
{
    const int *perm = r->o.layout == ATTN_RUN_BHSD ? attn_run_perm_bhsd : attn_run_perm_bshd;
    if (attn_run_load_float(&r->x, 3, 4, perm, r->o.bf16))
        return -1;
    if (r->pos.path) {
        if (attn_run_load_positions(&r->pos))
            return -1;
        r->d.positions = &r->pos.t;
    }
    const attn_dtype t = attn_run_out_lib_dtype[r->o.out_dtype];
    int64_t *d = r->dims;
    memcpy(d, r->x.t.shape, sizeof r->dims);
    size_t bytes = attn_run_bytes(d, 4, attn_dtype_size(t));
    if (!bytes || !(r->out = calloc(1, bytes)))
        return attn_run_error("cannot allocate the output");
    *out = r->o.layout == ATTN_RUN_BHSD ? attn_tensor_bhsd(r->out, t, d[0], d[1], d[2], d[3])
                                        : attn_tensor_bshd(r->out, t, d[0], d[1], d[2], d[3]);
    return 0;
}

/* 2: not a valid problem; 1: the backend could not run a valid one. */
static int rope_status(attn_status s)
{
    if (s == ATTN_OK)
        return 0;
    fprintf(stderr, "attn run: %s: %s\n", attn_status_name(s), attn_last_error());
    return s == ATTN_ERR_UNSUPPORTED || s == ATTN_ERR_OUT_OF_MEMORY || s == ATTN_ERR_DEVICE ? 1
                                                                                            : 2;
}

/* The f64 definition straight from the reference, in the file's layout. */
static int rope_f64(rope_run *r, const attn_tensor *out)
{
    attn_rope_problem p;
    attn_status s = attn_rope_validate(&r->d, &r->x.t, out, &p);
    if (s != ATTN_OK)
        return rope_status(s);
    const size_t n = attn_run_bytes(r->dims, 4, sizeof(double));
    r->y64 = malloc(n);
    r->out64 = malloc(n);
    if (!r->y64 || !r->out64) {
        attn_run_error("out of memory");
        return 1;
    }
    attn_ref_rope(&p, 0, r->y64);
    attn_run_f64_to_layout(r->y64, r->dims, r->o.layout, r->out64);
    return 0;
}

static int rope_save(const rope_run *r)
{
    const int64_t *d = r->dims;
    const int drop = r->x.a.ndim == 3;
    int64_t shape[4] = {d[0], d[1], d[2], d[3]};
    if (r->o.layout == ATTN_RUN_BHSD) {
        shape[1] = d[2];
        shape[2] = d[1];
    }
    const int f64 = r->o.out_dtype == ATTN_RUN_OUT_F64;
    return attn_run_save(r->o.out, attn_run_out_file_dtype[r->o.out_dtype], 4 - drop,
                         shape + drop, f64 ? (void *)r->out64 : r->out);
}

int attn_rope_cmd_run(int argc, char **argv)
{
    rope_run r;
    memset(&r, 0, sizeof r);
    r.o.backend = "ref";
    r.d = attn_rope_desc_default();
    attn_tensor out;
    int rc = 2;
    if (rope_parse(argc, argv, &r) == 0 && rope_load(&r, &out) == 0) {
        if (r.o.out_dtype == ATTN_RUN_OUT_F64)
            rc = rope_f64(&r, &out);
        else if ((rc = rope_status(attn_backend_open(r.o.backend, r.o.options, &r.be))) == 0)
            rc = rope_status(attn_rope_forward(r.be, &r.d, &r.x.t, &out));
        if (rc == 0 && rope_save(&r))
            rc = 2;
    }
    attn_npy_free(&r.x.a);
    attn_npy_free(&r.pos.a);
    free(r.out);
    free(r.y64);
    free(r.out64);
    attn_backend_close(r.be);
    return rc;
}
