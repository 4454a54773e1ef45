/* kvcache_run.c - `attn run --variant kvcache`: the attention over cache slots on .npy files
 * (q, its positions, the slots' k, v and positions) on any backend, optionally with the slots'
 * key_score; the f64 ground truth with --backend ref --out-dtype f64. */
#include "attn_args.h"
#include "attn_run.h"
#include "kvcache_ref.h"
#include "kvcache_tool.h"
#include "ref_alloc.h"
#include "rope_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KV_Q, KV_K, KV_V, KV_QPOS, KV_SLOTPOS, KV_N };

typedef struct kv_run {
    attn_run_opts o;
    attn_kvcache_attn_desc d;
    attn_run_array in[KV_N];
    const char *ks_path;
    int64_t dims[4];   /* output [B, Sq, Hq, Dv] */
    void *out;
    float *ks;         /* key_score [B, Nslot, Hkv] */
    double *out64, *tmp64, *ks64;
    attn_backend *be;
} kv_run;

const char attn_kvcache_run_help[] =
    "usage: attn run --variant kvcache --q Q.npy --q-pos QP.npy --k K.npy --v V.npy\n"
    "                --slot-pos SP.npy --out O.npy [options]\n"
    "attention of queries over the slots of a KV cache: query i sees the live slots\n"
    "(slot_pos >= 0) of its KV head whose position is <= q_pos[i]\n"
    "  --q FILE           queries [B,Sq,Hq,Dk]\n"
    "  --q-pos FILE       int64 query positions [B,Sq] or [Sq]\n"
    "  --k, --v FILE      the slots: [B,Nslot,Hkv,Dk], [B,Nslot,Hkv,Dv]\n"
    "  --slot-pos FILE    int64 position of each slot [B,Nslot,Hkv] or [Nslot,Hkv], -1 = empty\n"
    "  --key-score FILE   also write the attention each slot receives [B,Nslot,Hkv] (f32;\n"
    "                     f64 with --out-dtype f64)\n";

const char attn_args_kvcache_help[] =
    "  --scale X          logit scale (default 1/sqrt(Dk))\n"
    "  --softcap X        soft-cap of the logits (default none)\n"
    "  --positions stored|original|cache  keys as stored (default), or rotated at their\n"
    "                     original or in-cache positions (with the --rope options below)\n"
    "  --rope half|interleaved, --rope-theta X, --rot-dim N  the rotation\n";

static int kv_desc_arg(int argc, char **argv, int *i, attn_kvcache_attn_desc *d)
{
    static const char *const modes[] = {"stored", "original", "cache", NULL};
    const char *v;
    int r, k;
    if ((r = attn_arg_value(argc, argv, i, "--scale", &v)) != 0)
        return r < 0 || attn_parse_f32_nonzero("--scale", v, 0, &d->scale) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--softcap", &v)) != 0)
        return r < 0 || attn_parse_f32_nonzero("--softcap", v, 0, &d->softcap) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--positions", &v)) != 0) {
        if (r < 0 || attn_parse_choice("--positions", v, modes, &k))
            return -1;
        d->positions = (attn_kv_positions)k;
        return 1;
    }
    if (strcmp(argv[*i], "--offset") == 0) /* the rope option another op takes */
        return attn_run_error("--offset: positions come from --q-pos and --slot-pos");
    return attn_args_rope(argc, argv, i, &d->rope);
}

static int kv_parse(int argc, char **argv, kv_run *r)
{
    static const char *const opts[KV_N] = {"--q", "--k", "--v", "--q-pos", "--slot-pos"};
    for (int k = 0; k < KV_N; k++)
        r->in[k].opt = opts[k];
    for (int i = 1; i < argc; i++) {
        int c = attn_run_common_arg(argc, argv, &i, &r->o);
        if (c == 0)
            c = attn_run_file_arg(argc, argv, &i, r->in, KV_N);
        if (c == 0)
            c = attn_arg_value(argc, argv, &i, "--key-score", &r->ks_path);
        if (c == 0)
            c = kv_desc_arg(argc, argv, &i, &r->d);
        if (c < 0)
            return -1;
        if (c == 0)
            return attn_run_unknown("kvcache", argv[i]);
    }
    for (int k = KV_QPOS; k < KV_N; k++)
        if (!r->in[k].path)
            return attn_run_error("%s FILE is required", r->in[k].opt);
    return attn_run_check_inputs(r->in, &r->o);
}

/* slot_pos: an int64 file [B, Nslot, Hkv] or [Nslot, Hkv] viewed as [B|1, Nslot, Hkv, 1]. */
static int load_slot_pos(attn_run_array *r)
{
    char err[ATTN_NPY_ERRLEN];
    if (attn_npy_load(r->path, &r->a, err))
        return attn_run_error("%s", err);
    if (r->a.dtype != ATTN_NPY_I64 || r->a.ndim < 2 || r->a.ndim > 3)
        return attn_run_error("%s %s: expected an int64 [B,Nslot,Hkv] or [Nslot,Hkv] array",
                              r->opt, r->path);
    const int pad = 3 - r->a.ndim;
    r->t.data = r->a.data;
    r->t.dtype = ATTN_I64;
    for (int k = 0; k < 3; k++) {
        r->t.shape[k] = k < pad ? 1 : r->a.shape[k - pad];
        r->t.stride[k] = k < pad || r->t.shape[k] == 1 ? 0 : r->a.stride[k - pad];
    }
    r->t.shape[3] = 1;
    r->t.stride[3] = 0;
    return 0;
}

static int kv_load(kv_run *r, attn_tensor *out, attn_tensor *ks)
{
    if (attn_run_load_qkv(r->in, &r->o) || attn_run_load_positions(&r->in[KV_QPOS]) ||
        load_slot_pos(&r->in[KV_SLOTPOS]))
        return -1;
    if (attn_run_alloc_out(&r->o, &r->in[KV_Q].t, &r->in[KV_V].t, r->dims, &r->out, out))
        return -1;
    if (!r->ks_path)
        return 0;
    const int64_t *k = r->in[KV_K].t.shape;
    const size_t n = attn_run_bytes(k, 3, sizeof(float));
    if (!n || !(r->ks = calloc(1, n)))
        return attn_run_error("cannot allocate key_score");
    *ks = attn_tensor_bshd(r->ks, ATTN_F32, k[0], k[1], k[2], 1);
    return 0;
}

/* The f64 definition straight from the reference (out in the file's layout): 0, or the exit
 * code (printed). */
static int kv_f64(kv_run *r, const attn_tensor *out, const attn_tensor *ks)
{
    attn_kvcache_problem p;
    attn_status s = attn_kvcache_attn_validate(&r->d, &r->in[KV_Q].t, &r->in[KV_QPOS].t,
                                               &r->in[KV_K].t, &r->in[KV_V].t,
                                               &r->in[KV_SLOTPOS].t, out, ks, &p);
    if (s != ATTN_OK)
        return attn_run_lib_error(s);
    const int64_t rows = p.B * p.Sq * p.Hq;
    r->tmp64 = attn_ref_alloc(rows, p.Dv);
    r->out64 = attn_ref_alloc(rows, p.Dv);
    r->ks64 = ks ? attn_ref_alloc(p.B * p.Nslot, p.Hkv) : NULL;
    if (!r->tmp64 || !r->out64 || (ks && !r->ks64)) {
        attn_run_error("cannot allocate the f64 results");
        return 1;
    }
    const attn_ref_kvcache_out o = {.out = r->tmp64, .key_score = r->ks64};
    if ((s = attn_ref_kvcache(&p, ATTN_REF_F64, &o)) != ATTN_OK)
        return attn_run_lib_error(s);
    attn_run_f64_to_layout(r->tmp64, r->dims, r->o.layout, r->out64);
    return 0;
}

/* The library's attention on the chosen backend: 0, or the exit code (printed). */
static int kv_backend(kv_run *r, const attn_tensor *out, const attn_tensor *ks)
{
    attn_status s = attn_backend_open(r->o.backend, r->o.options, &r->be);
    if (s == ATTN_OK)
        s = attn_kvcache_attention(r->be, &r->d, &r->in[KV_Q].t, &r->in[KV_QPOS].t,
                                   &r->in[KV_K].t, &r->in[KV_V].t, &r->in[KV_SLOTPOS].t, out,
                                   ks);
    return s == ATTN_OK ? 0 : attn_run_lib_error(s);
}

static int kv_save(const kv_run *r)
{
    const int f64 = r->o.out_dtype == ATTN_RUN_OUT_F64;
    if (attn_run_save_out(&r->o, r->dims, r->in[KV_Q].a.ndim == 3,
                          f64 ? (void *)r->out64 : r->out))
        return -1;
    if (!r->ks_path)
        return 0;
    return attn_run_save(r->ks_path, f64 ? ATTN_NPY_F64 : ATTN_NPY_F32, 3, r->in[KV_K].t.shape,
                         f64 ? (void *)r->ks64 : (void *)r->ks);
}

int attn_kvcache_cmd_run(int argc, char **argv)
{
    kv_run r;
    memset(&r, 0, sizeof r);
    r.o.backend = "ref";
    r.d = attn_kvcache_attn_desc_default();
    attn_tensor out, ks;
    int rc = 2;
    if (kv_parse(argc, argv, &r) == 0 && kv_load(&r, &out, &ks) == 0) {
        const attn_tensor *ksv = r.ks_path ? &ks : NULL;
        rc = r.o.out_dtype == ATTN_RUN_OUT_F64 ? kv_f64(&r, &out, ksv)
                                               : kv_backend(&r, &out, ksv);
        if (rc == 0 && kv_save(&r))
            rc = 2;
    }
    for (int k = 0; k < KV_N; k++)
        attn_npy_free(&r.in[k].a);
    free(r.out);
    free(r.ks);
    free(r.out64);
    free(r.tmp64);
    free(r.ks64);
    attn_backend_close(r.be);
    return rc;
}
