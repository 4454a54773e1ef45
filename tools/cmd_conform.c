/* cmd_conform.c - `attn conform`: runs conformance cases on a backend and compares each with
 * the f64 reference under the policy of attn_policy.c. Per case: fill the inputs from the
 * seed, poison every allocation with a NaN pattern (so unwritten outputs and reads outside the
 * views show), surround the tensors with guard zones (outputs always; in device mode every
 * tensor lives in an attn_buffer of the backend with guards at both ends), compute gold, absmag
 * and the naive f32 result with the reference, run the backend through the public API (N times
 * with --repeat, each run bit-identical), then check the guards and apply the gates to out and
 * lse. docs/conformance.md describes the output. */
#include "attn_args.h"
#include "attn_cases.h"
#include "attn_cmds.h"
#include "attn_half.h"
#include "attn_report.h"
#include "attn_validate.h"
#ifdef ATTN_HAVE_OPENCL
#include "attn/attn_opencl.h"
#endif
#include "ref_sdpa.h"

#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GUARD_BYTES 1024 /* before and after each output allocation (ggml/CLBlast canaries) */
#define CACHE_LEAD 3     /* kv-cache layout: the view starts at cache position 3 ... */
#define CACHE_TRAIL 4    /* ... and the cache holds 4 more positions after it */
#define OUT_PAD 5        /* kv-cache layout: output rows padded by 5 elements */
#define CASE_MAX_ELEMS 4e9 /* refuse cases whose tensors (plus a full mask) exceed this */

/* ---- buffers with poison and guards --------------------------------------------------------- */

typedef struct conf_buf {
    unsigned char *mem; /* host image of the allocation, NULL when the operand is absent */
    size_t bytes;
    size_t guard;       /* guard zone bytes at each end */
    size_t view_off;    /* byte offset of element [0,0,0,0] */
    attn_tensor t;      /* host view into mem (what the reference reads) */
    attn_buffer *dev;   /* device mode: the backend's allocation holding the same image */
    attn_tensor run;    /* the view the backend gets: t, or the device view (buffer + offset) */
} conf_buf;

/* Signalling-NaN patterns (quiet bit clear), distinct from anything a conversion produces. */
static void poison_bytes(attn_dtype t, unsigned char pat[4])
{
    static const unsigned char f32[4] = {0xa5, 0xa5, 0xa5, 0x7f}; /* 0x7fa5a5a5 */
    static const unsigned char f16[2] = {0x5a, 0x7d};             /* 0x7d5a */
    static const unsigned char bf16[2] = {0xa5, 0x7f};            /* 0x7fa5 */
    const unsigned char *src = t == ATTN_F32 ? f32 : t == ATTN_F16 ? f16 : bf16;
    memcpy(pat, t == ATTN_U8 ? (const unsigned char *)"\xa5" : src, attn_dtype_size(t));
}

/* Fill the whole host image (guards, gaps and view) with the poison pattern. */
static void buf_poison(conf_buf *b)
{
    const size_t es = attn_dtype_size(b->t.dtype);
    unsigned char pat[4];
    poison_bytes(b->t.dtype, pat);
    for (size_t i = 0; i < b->bytes; i++)
        b->mem[i] = pat[i % es];
}

/* Allocate `total` elements (+ guards) holding a view of shape/stride that starts `lead`
 * elements in, everything poisoned. Returns 0 or -1 (out of memory). */
static int buf_make(conf_buf *b, attn_dtype dt, const int64_t shape[4], const int64_t stride[4],
                    int64_t lead, int64_t total, size_t guard)
{
    const size_t es = attn_dtype_size(dt);
    b->bytes = 2 * guard + (size_t)total * es;
    b->mem = malloc(b->bytes);
    if (!b->mem)
        return -1;
    b->guard = guard;
    b->view_off = guard + (size_t)lead * es;
    memset(&b->t, 0, sizeof b->t);
    b->t.data = b->mem + b->view_off;
    b->t.dtype = dt;
    memcpy(b->t.shape, shape, sizeof b->t.shape);
    memcpy(b->t.stride, stride, sizeof b->t.stride);
    b->run = b->t;
    buf_poison(b);
    return 0;
}

/* A contiguous view: seq-major [B,S,H,D] or head-major [B,H,S,D]. */
static int buf_dense(conf_buf *b, attn_dtype dt, int64_t B, int64_t S, int64_t H, int64_t D,
                     int head_major, size_t guard)
{
    const int64_t shape[4] = {B, S, H, D};
    int64_t st[4] = {S * H * D, H * D, D, 1};
    if (head_major) {
        st[1] = D;
        st[2] = S * D;
    }
    return buf_make(b, dt, shape, st, 0, B * S * H * D, guard);
}

/* K or V inside a [B, H, cap, D] cache, cap = S + lead + trail positions. */
static int buf_cache(conf_buf *b, attn_dtype dt, int64_t B, int64_t S, int64_t H, int64_t D,
                     size_t guard)
{
    const int64_t cap = S + CACHE_LEAD + CACHE_TRAIL;
    const int64_t shape[4] = {B, S, H, D};
    const int64_t st[4] = {H * cap * D, D, cap * D, 1};
    return buf_make(b, dt, shape, st, CACHE_LEAD * D, B * H * cap * D, guard);
}

/* Output rows padded: the backend must not touch the padding. */
static int buf_padded(conf_buf *b, attn_dtype dt, int64_t B, int64_t S, int64_t H, int64_t D)
{
    const int64_t P = D + OUT_PAD;
    const int64_t shape[4] = {B, S, H, D};
    const int64_t st[4] = {S * H * P, H * P, P, 1};
    return buf_make(b, dt, shape, st, 0, B * S * H * P, GUARD_BYTES);
}

/* A mask [B|1, Sq|1, Hq|1, Skv], contiguous. */
static int buf_mask(conf_buf *b, attn_dtype dt, const attn_case *c, int dims, size_t guard)
{
    return buf_dense(b, dt, dims & ATTN_MDIM_B ? c->b : 1, dims & ATTN_MDIM_S ? c->sq : 1,
                     dims & ATTN_MDIM_H ? c->hq : 1, c->skv, 0, guard);
}

/* Byte offset in the image of element idx of the view (row-major over its shape). */
static size_t buf_elem_off(const conf_buf *b, int64_t idx)
{
    const attn_tensor *t = &b->t;
    int64_t off = 0;
    for (int d = 3; d >= 0; d--) {
        off += idx % t->shape[d] * t->stride[d];
        idx /= t->shape[d];
    }
    return b->view_off + (size_t)off * attn_dtype_size(t->dtype);
}

static int64_t buf_numel(const conf_buf *b)
{
    return b->t.shape[0] * b->t.shape[1] * b->t.shape[2] * b->t.shape[3];
}

/* ---- the operands of a case ----------------------------------------------------------------- */

enum { OP_Q, OP_K, OP_V, OP_MADD, OP_MBOOL, OP_OUT, OP_LSE, OP_COUNT, OP_FIRST_OUT = OP_OUT };
static const char *const op_names[OP_COUNT] = {"q", "k", "v", "mask_add", "mask_bool", "out",
                                               "lse"};

typedef struct conf_data {
    conf_buf op[OP_COUNT];
} conf_data;

static void data_free(conf_data *d)
{
    for (int i = 0; i < OP_COUNT; i++) {
        free(d->op[i].mem);
        attn_buffer_free(d->op[i].dev);
    }
    memset(d, 0, sizeof *d);
}

/* Allocate every operand; inputs get guard zones of `gin` bytes, outputs always have them. */
static int data_make(const attn_case *c, size_t gin, conf_data *d)
{
    memset(d, 0, sizeof *d);
    conf_buf *o = d->op;
    const int hm = c->layout == ATTN_LAYOUT_BHSD;
    int rc = buf_dense(&o[OP_Q], c->dt_q, c->b, c->sq, c->hq, c->dk, hm, gin);
    if (c->layout == ATTN_LAYOUT_CACHE) {
        rc |= buf_cache(&o[OP_K], c->dt_kv, c->b, c->skv, c->hkv, c->dk, gin);
        rc |= buf_cache(&o[OP_V], c->dt_kv, c->b, c->skv, c->hkv, c->dv, gin);
        rc |= buf_padded(&o[OP_OUT], c->dt_out, c->b, c->sq, c->hq, c->dv);
    } else {
        rc |= buf_dense(&o[OP_K], c->dt_kv, c->b, c->skv, c->hkv, c->dk, hm, gin);
        rc |= buf_dense(&o[OP_V], c->dt_kv, c->b, c->skv, c->hkv, c->dv, hm, gin);
        rc |= buf_dense(&o[OP_OUT], c->dt_out, c->b, c->sq, c->hq, c->dv, hm, GUARD_BYTES);
    }
    if (c->lse) /* [B, Sq, Hq, 1] stored as contiguous [B, Hq, Sq] */
        rc |= buf_dense(&o[OP_LSE], ATTN_F32, c->b, c->sq, c->hq, 1, 1, GUARD_BYTES);
    if (c->mask_add != ATTN_MASK_NONE)
        rc |= buf_mask(&o[OP_MADD], c->dt_q, c, c->mask_add, gin);
    if (c->mask_bool != ATTN_MASK_NONE)
        rc |= buf_mask(&o[OP_MBOOL], ATTN_U8, c, c->mask_bool, gin);
    if (rc)
        data_free(d);
    return rc;
}

static void data_fill(const attn_case *c, uint64_t seed, conf_data *d)
{
    attn_fill_tensor(&d->op[OP_Q].t, c->fill, seed, ATTN_FILL_Q);
    attn_fill_tensor(&d->op[OP_K].t, c->fill, seed, ATTN_FILL_K);
    attn_fill_tensor(&d->op[OP_V].t, c->fill, seed, ATTN_FILL_V);
    if (d->op[OP_MADD].mem)
        attn_fill_mask_add(&d->op[OP_MADD].t, seed);
    if (d->op[OP_MBOOL].mem)
        attn_fill_mask_bool(&d->op[OP_MBOOL].t, seed);
}

/* The view the backend gets (NULL for an absent operand). */
static const attn_tensor *run_view(const conf_data *d, int i)
{
    return d->op[i].mem ? &d->op[i].run : NULL;
}

/* ---- device mode ---------------------------------------------------------------------------- */

/* Device mode: give every operand an attn_buffer of the backend holding its whole image
 * (guards included) and point the backend's view at offset view_off inside it. */
static attn_status data_upload(attn_backend *be, conf_data *d)
{
    for (int i = 0; i < OP_COUNT; i++) {
        conf_buf *b = &d->op[i];
        if (!b->mem)
            continue;
        attn_status st = attn_buffer_alloc(be, b->bytes, &b->dev);
        if (st == ATTN_OK)
            st = attn_buffer_write(b->dev, 0, b->mem, b->bytes);
        if (st != ATTN_OK)
            return st;
        b->run = b->t;
        b->run.data = NULL;
        b->run.buffer = b->dev;
        b->run.offset = b->view_off;
    }
    return ATTN_OK;
}

/* Poison the outputs again before a repeated run (host image, and the device copy). */
static attn_status outputs_repoison(conf_data *d)
{
    for (int i = OP_FIRST_OUT; i < OP_COUNT; i++) {
        conf_buf *b = &d->op[i];
        if (!b->mem)
            continue;
        buf_poison(b);
        if (b->dev) {
            attn_status st = attn_buffer_write(b->dev, 0, b->mem, b->bytes);
            if (st != ATTN_OK)
                return st;
        }
    }
    return ATTN_OK;
}

/* Device mode: read the outputs' whole images back into the host images. */
static attn_status outputs_download(conf_data *d)
{
    for (int i = OP_FIRST_OUT; i < OP_COUNT; i++) {
        conf_buf *b = &d->op[i];
        if (b->dev) {
            attn_status st = attn_buffer_read(b->dev, 0, b->mem, b->bytes);
            if (st != ATTN_OK)
                return st;
        }
    }
    return ATTN_OK;
}

/* Is byte i of b's image inside a guard zone? */
static int in_guard(const conf_buf *b, size_t i)
{
    return i < b->guard || i >= b->bytes - b->guard;
}

/* Device mode: an input allocation must come back exactly as uploaded. Counts changed bytes
 * in the guard zones and elsewhere (the view and its gaps). Returns -1 if reading fails. */
static int input_changes(const conf_buf *b, int64_t *guard, int64_t *inside)
{
    unsigned char *now = malloc(b->bytes);
    if (!now || attn_buffer_read(b->dev, 0, now, b->bytes) != ATTN_OK) {
        free(now);
        return -1;
    }
    for (size_t i = 0; i < b->bytes; i++)
        if (now[i] != b->mem[i])
            ++*(in_guard(b, i) ? guard : inside);
    free(now);
    return 0;
}

/* Count output elements still holding the poison, and bytes outside the view that changed, in
 * the guard zones and in the gaps (padding) of the view. Returns -1 when the byte map cannot
 * be allocated. */
static int check_writes(const conf_buf *b, int64_t *unwritten, int64_t *first, int64_t *guard,
                        int64_t *gap)
{
    const size_t es = attn_dtype_size(b->t.dtype);
    unsigned char pat[4];
    poison_bytes(b->t.dtype, pat);
    unsigned char *mine = calloc(b->bytes, 1);
    if (!mine)
        return -1;
    const int64_t n = buf_numel(b);
    for (int64_t idx = 0; idx < n; idx++) {
        const size_t off = buf_elem_off(b, idx);
        memset(mine + off, 1, es);
        if (memcmp(b->mem + off, pat, es) == 0 && (*unwritten)++ == 0)
            *first = idx;
    }
    for (size_t i = 0; i < b->bytes; i++)
        if (!mine[i] && b->mem[i] != pat[i % es])
            ++*(in_guard(b, i) ? guard : gap);
    free(mine);
    return 0;
}

/* ---- gold, conditions and the gates --------------------------------------------------------- */

typedef struct conf_arrays {
    double *gold, *lowp, *absmag, *got;   /* [B][Sq][Hq][Dv] */
    double *glse, *llse, *gotlse, *clse;  /* [B][Hq][Sq] */
    double *row;                          /* logit bound per row, [B][Sq][Hq] */
    uint8_t *zero;                        /* [B][Sq][Hq][Dv] */
} conf_arrays;

static void arrays_free(conf_arrays *a)
{
    double *all[] = {a->gold, a->lowp, a->absmag, a->got, a->glse, a->llse, a->gotlse, a->clse,
                     a->row};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    free(a->zero);
}

static int arrays_make(const attn_sdpa_problem *p, conf_arrays *a)
{
    const size_t no = (size_t)(p->B * p->Sq * p->Hq * p->Dv), nr = (size_t)(p->B * p->Sq * p->Hq);
    double **outs[] = {&a->gold, &a->lowp, &a->absmag, &a->got};
    double **rows[] = {&a->glse, &a->llse, &a->gotlse, &a->clse, &a->row};
    int bad = 0;
    for (size_t i = 0; i < 4; i++)
        bad |= !(*outs[i] = calloc(no, sizeof(double)));
    for (size_t i = 0; i < 5; i++)
        bad |= !(*rows[i] = calloc(nr, sizeof(double)));
    bad |= !(a->zero = calloc(no, 1));
    return bad ? -1 : 0;
}

/* ||x[b, s, h, :]||_2 over the first n elements of an operand's last dim. */
static double vec_norm(const attn_operand *o, int64_t b, int64_t s, int64_t h, int64_t n)
{
    double s2 = 0.0;
    for (int64_t d = 0; d < n; d++) {
        double x = attn_load_f64(o->ptr, o->dtype, attn_at(o, b, s, h, d));
        s2 += x * x;
    }
    return sqrt(s2);
}

/* Largest finite |mask_add| (0 without a mask). */
static double mask_abs_max(const attn_operand *m, int64_t skv)
{
    double mx = 0.0;
    if (!m->t)
        return 0.0;
    for (int64_t b = 0; b < m->t->shape[0]; b++)
        for (int64_t s = 0; s < m->t->shape[1]; s++)
            for (int64_t h = 0; h < m->t->shape[2]; h++)
                for (int64_t j = 0; j < skv; j++) {
                    double x = fabs(attn_load_f64(m->ptr, m->dtype, attn_at(m, b, s, h, j)));
                    if (isfinite(x) && x > mx)
                        mx = x;
                }
    return mx;
}

/* Bound on the logit magnitude of each row, A = |scale| |q_i|_2 max_j |k_j|_2 + max|mask_add|
 * (Cauchy-Schwarz): a float kernel's logit error is ~u sqrt(Dk) A, and it moves each output by
 * up to ~2 |ds| absmag, so the output's condition is absmag (1 + A); see docs/conformance.md. */
static void logit_bounds(const attn_sdpa_problem *p, double *row)
{
    const double mmax = mask_abs_max(&p->mask_add, p->Skv);
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t g = 0; g < p->Hkv; g++) {
            double kmax = 0.0;
            for (int64_t j = 0; j < p->Skv; j++)
                kmax = fmax(kmax, vec_norm(&p->k, b, j, g, p->Dk));
            for (int64_t i = 0; i < p->Sq; i++)
                for (int64_t h = g * p->group; h < (g + 1) * p->group; h++)
                    row[(b * p->Sq + i) * p->Hq + h] =
                        fabs(p->scale) * vec_norm(&p->q, b, i, h, p->Dk) * kmax + mmax;
        }
}

/* Longest accumulation: Dk for the dot products plus the widest band of attended keys. */
static double acc_length(const attn_sdpa_problem *p)
{
    int64_t w = 0, lo, hi;
    for (int64_t i = 0; i < p->Sq; i++) {
        attn_band(p, i, &lo, &hi);
        if (hi - lo > w)
            w = hi - lo;
    }
    return (double)(p->Dk + w);
}

/* Gold, lowp (rounded to the output dtype, as a naive kernel would store it), conditions and
 * the fully-masked-row map. */
static attn_status compute_gold(const attn_sdpa_problem *p, attn_dtype out_dt, conf_arrays *a)
{
    attn_status st = attn_ref_sdpa(p, ATTN_REF_F64, a->gold, a->glse, a->absmag);
    if (st == ATTN_OK)
        st = attn_ref_sdpa(p, ATTN_REF_F32, a->lowp, a->llse, NULL);
    if (st != ATTN_OK)
        return st;
    logit_bounds(p, a->row);
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t h = 0; h < p->Hq; h++) {
                const int64_t r = (b * p->Sq + i) * p->Hq + h, l = (b * p->Hq + h) * p->Sq + i;
                const int masked = a->glse[l] == -INFINITY;
                a->clse[l] = 1.0 + fabs(a->glse[l]) + a->row[r];
                for (int64_t d = r * p->Dv; d < (r + 1) * p->Dv; d++) {
                    unsigned char tmp[4];
                    attn_store_f64(tmp, out_dt, 0, a->lowp[d]);
                    a->lowp[d] = attn_load_f64(tmp, out_dt, 0);
                    a->absmag[d] *= 1.0 + a->row[r];
                    a->zero[d] = (uint8_t)masked;
                }
            }
    return ATTN_OK;
}

/* Read the backend's outputs into the reference's index order. */
static void read_got(const attn_sdpa_problem *p, const conf_data *d, conf_arrays *a)
{
    const attn_tensor *o = &d->op[OP_OUT].t;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t h = 0; h < p->Hq; h++) {
                for (int64_t x = 0; x < p->Dv; x++)
                    a->got[((b * p->Sq + i) * p->Hq + h) * p->Dv + x] = attn_load_f64(
                        o->data, o->dtype,
                        b * o->stride[0] + i * o->stride[1] + h * o->stride[2] + x * o->stride[3]);
                if (d->op[OP_LSE].mem) {
                    const attn_tensor *l = &d->op[OP_LSE].t;
                    a->gotlse[(b * p->Hq + h) * p->Sq + i] = attn_load_f64(
                        l->data, ATTN_F32, b * l->stride[0] + i * l->stride[1] + h * l->stride[2]);
                }
            }
}

static void describe_worst(const attn_sdpa_problem *p, const conf_arrays *a, attn_result *r)
{
    /* the tensor that decided: lse only when out passed and lse did not */
    const attn_policy_out *po =
        r->has_lse && r->out.verdict == ATTN_PASSED && r->lse.verdict != ATTN_PASSED ? &r->lse
                                                                                      : &r->out;
    int64_t w = po->worst;
    if (w < 0)
        return;
    if (po == &r->out) {
        int64_t x = w % p->Dv, h = w / p->Dv % p->Hq, i = w / (p->Dv * p->Hq) % p->Sq;
        int64_t b = w / (p->Dv * p->Hq * p->Sq);
        snprintf(r->worst, sizeof r->worst,
                 "out[%lld,%lld,%lld,%lld] gold=%.9g got=%.9g cond=%.3g", (long long)b,
                 (long long)i, (long long)h, (long long)x, a->gold[w], a->got[w], a->absmag[w]);
    } else {
        int64_t i = w % p->Sq, h = w / p->Sq % p->Hq, b = w / (p->Sq * p->Hq);
        snprintf(r->worst, sizeof r->worst, "lse[%lld,%lld,%lld] gold=%.9g got=%.9g cond=%.3g",
                 (long long)b, (long long)i, (long long)h, a->glse[w], a->gotlse[w], a->clse[w]);
    }
}

static void apply_policy(const attn_sdpa_problem *p, const attn_case *c, const conf_arrays *a,
                         attn_result *r)
{
    attn_policy_in in = {0};
    attn_policy_setup(&in, c->dt_out, 0);
    in.n = p->B * p->Sq * p->Hq * p->Dv;
    in.gold = a->gold;
    in.got = a->got;
    in.absmag = a->absmag;
    in.lowp = a->lowp;
    in.must_zero = a->zero;
    in.n_acc = acc_length(p);
    attn_policy_check(&in, &r->out);
    if (c->lse) {
        attn_policy_in li = in;
        attn_policy_setup(&li, ATTN_F32, 1);
        li.n = p->B * p->Hq * p->Sq;
        li.gold = a->glse;
        li.got = a->gotlse;
        li.absmag = a->clse;
        li.lowp = a->llse;
        li.must_zero = NULL;
        attn_policy_check(&li, &r->lse);
        r->has_lse = 1;
    }
}

/* ---- one case ------------------------------------------------------------------------------- */

static int sev(attn_verdict v)
{
    return v == ATTN_FAILED ? 3 : v == ATTN_MISTRUSTED ? 2 : v == ATTN_SKIPPED ? 1 : 0;
}

/* Raise r's status to v (keeping the first reason of the worst status). */
static void verdict(attn_result *r, attn_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verdict(attn_result *r, attn_verdict v, const char *fmt, ...)
{
    if (sev(v) <= sev(r->status))
        return;
    r->status = v;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Poison left in the outputs, bytes changed in their guard zones and in gaps of their views. */
static void check_guards(conf_data *d, attn_result *r)
{
    int64_t un[2] = {0, 0}, first[2] = {-1, -1}, guard = 0, gap = 0;
    for (int k = 0; k < 2; k++) {
        const conf_buf *b = &d->op[OP_OUT + k];
        if (b->mem && check_writes(b, &un[k], &first[k], &guard, &gap)) {
            verdict(r, ATTN_FAILED, "out of memory while checking guards");
            return;
        }
    }
    for (int k = 0; k < 2; k++)
        if (un[k])
            verdict(r, ATTN_FAILED, "%s: %lld elements unwritten (first at index %lld)",
                    op_names[OP_OUT + k], (long long)un[k], (long long)first[k]);
    if (guard)
        verdict(r, ATTN_FAILED, "guard zone overwritten: %lld bytes around the outputs",
                (long long)guard);
    if (gap)
        verdict(r, ATTN_FAILED, "%lld bytes written outside the output views (row gaps)",
                (long long)gap);
    r->unwritten += un[0] + un[1];
    r->guard_bytes += guard;
    r->stray_bytes += guard + gap;
}

/* Device mode: every input allocation, guards included, must be unchanged. */
static void check_inputs(const conf_data *d, attn_result *r)
{
    for (int i = 0; i < OP_FIRST_OUT; i++) {
        int64_t guard = 0, inside = 0;
        if (!d->op[i].dev)
            continue;
        if (input_changes(&d->op[i], &guard, &inside)) {
            verdict(r, ATTN_FAILED, "cannot read back input %s: %s", op_names[i],
                    attn_last_error());
            continue;
        }
        if (guard)
            verdict(r, ATTN_FAILED, "guard zone overwritten: %lld bytes around input %s",
                    (long long)guard, op_names[i]);
        if (inside)
            verdict(r, ATTN_FAILED, "input %s modified: %lld bytes", op_names[i],
                    (long long)inside);
        r->guard_bytes += guard;
        r->stray_bytes += guard + inside;
    }
}

/* ---- determinism ---------------------------------------------------------------------------- */

/* The output images of the first run; later runs must match them bit for bit. */
typedef struct conf_snap {
    unsigned char *img[2]; /* out, lse */
} conf_snap;

static void snap_free(conf_snap *s)
{
    free(s->img[0]);
    free(s->img[1]);
}

static int snap_take(const conf_data *d, conf_snap *s)
{
    for (int k = 0; k < 2; k++) {
        const conf_buf *b = &d->op[OP_OUT + k];
        if (b->mem && !(s->img[k] = malloc(b->bytes)))
            return -1;
        if (b->mem)
            memcpy(s->img[k], b->mem, b->bytes);
    }
    return 0;
}

/* The first output element whose bits differ from the snapshot, as "[b,i,h,d] of out" in
 * where. Returns 1 if one differs. */
static int snap_diff(const conf_data *d, const conf_snap *s, char *where, size_t n)
{
    for (int k = 0; k < 2; k++) {
        const conf_buf *b = &d->op[OP_OUT + k];
        const size_t es = b->mem ? attn_dtype_size(b->t.dtype) : 0;
        for (int64_t idx = 0; b->mem && idx < buf_numel(b); idx++) {
            const size_t off = buf_elem_off(b, idx);
            if (memcmp(b->mem + off, s->img[k] + off, es) == 0)
                continue;
            const int64_t *sh = b->t.shape;
            snprintf(where, n, "[%lld,%lld,%lld,%lld] of %s",
                     (long long)(idx / (sh[1] * sh[2] * sh[3])),
                     (long long)(idx / (sh[2] * sh[3]) % sh[1]), (long long)(idx / sh[3] % sh[2]),
                     (long long)(idx % sh[3]), op_names[OP_OUT + k]);
            return 1;
        }
    }
    return 0;
}

/* ---- running the backend -------------------------------------------------------------------- */

/* The implementation name the backend reports for the call. */
static void impl_name(attn_backend *be, const attn_sdpa_desc *desc, const conf_data *d,
                      attn_result *r)
{
    if (attn_sdpa_impl_name(be, desc, run_view(d, OP_Q), run_view(d, OP_K), run_view(d, OP_V),
                            run_view(d, OP_OUT), run_view(d, OP_LSE), r->impl,
                            sizeof r->impl) != ATTN_OK)
        r->impl[0] = '\0';
}

/* Run k (0-based) of the backend on d's views: outputs re-poisoned after the first run; the
 * first is timed and offered to tamper; device outputs are read back into the host images. */
static attn_status run_once(attn_backend *be, const attn_sdpa_desc *desc, conf_data *d, int k,
                            attn_conform_tamper tamper, void *ctx, attn_result *r)
{
    attn_status st = k ? outputs_repoison(d) : ATTN_OK;
    if (st != ATTN_OK) {
        verdict(r, ATTN_FAILED, "re-poisoning the outputs: %s: %s", attn_status_name(st),
                attn_last_error());
        return st;
    }
    const double t0 = now_ms();
    st = attn_sdpa_forward(be, desc, run_view(d, OP_Q), run_view(d, OP_K), run_view(d, OP_V),
                           run_view(d, OP_OUT), run_view(d, OP_LSE));
    if (st != ATTN_OK) {
        verdict(r, ATTN_FAILED, "forward returned %s: %s (run %d)", attn_status_name(st),
                attn_last_error(), k + 1);
        return st;
    }
    if (k == 0) {
        r->ms = now_ms() - t0;
        if (tamper)
            tamper(&d->op[OP_OUT].run, run_view(d, OP_LSE), ctx);
    }
    if ((st = outputs_download(d)) != ATTN_OK)
        verdict(r, ATTN_FAILED, "reading back the outputs: %s: %s", attn_status_name(st),
                attn_last_error());
    return st;
}

/* Apply the gates to the first run's outputs. */
static void judge_outputs(const attn_sdpa_problem *p, const attn_case *c, const conf_data *d,
                          conf_arrays *a, attn_result *r)
{
    read_got(p, d, a);
    apply_policy(p, c, a, r);
    r->compared = 1;
    if (r->out.verdict != ATTN_PASSED)
        verdict(r, r->out.verdict, "out: %s", r->out.reason);
    if (r->has_lse && r->lse.verdict != ATTN_PASSED)
        verdict(r, r->lse.verdict, "lse: %s", r->lse.reason);
    describe_worst(p, a, r);
}

/* Run the backend o->repeat times: check guards every run, the gates on the first, and bit
 * equality of every later run with the first. */
static void run_repeated(attn_backend *be, const attn_sdpa_desc *desc, const attn_case *c,
                         const attn_conform_opts *o, const attn_sdpa_problem *p, conf_data *d,
                         conf_arrays *a, attn_conform_tamper tamper, void *ctx, attn_result *r)
{
    conf_snap snap = {{NULL, NULL}};
    char where[96];
    const int runs = o->repeat > 1 ? o->repeat : 1;
    for (int k = 0; k < runs; k++) {
        if (run_once(be, desc, d, k, tamper, ctx, r) != ATTN_OK)
            break;
        check_guards(d, r);
        if (k == 0) {
            judge_outputs(p, c, d, a, r);
            if (runs > 1 && snap_take(d, &snap)) {
                verdict(r, ATTN_FAILED, "out of memory keeping the first run's outputs");
                break;
            }
        } else if (snap_diff(d, &snap, where, sizeof where)) {
            verdict(r, ATTN_FAILED, "nondeterministic: run %d differs at %s", k + 1, where);
            break;
        }
    }
    snap_free(&snap);
}

/* Validate (on the host views, which the reference reads), compute gold, run the backend on
 * its views, check. d holds filled inputs (uploaded in device mode). */
static void run_checked(attn_backend *be, const attn_case *c, const attn_conform_opts *o,
                        conf_data *d, attn_conform_tamper tamper, void *ctx, attn_result *r)
{
    attn_sdpa_desc host = attn_case_desc(c);
    host.mask_add = d->op[OP_MADD].mem ? &d->op[OP_MADD].t : NULL;
    host.mask_bool = d->op[OP_MBOOL].mem ? &d->op[OP_MBOOL].t : NULL;
    attn_sdpa_problem p;
    attn_status st = attn_sdpa_validate(&host, &d->op[OP_Q].t, &d->op[OP_K].t, &d->op[OP_V].t,
                                        &d->op[OP_OUT].t,
                                        d->op[OP_LSE].mem ? &d->op[OP_LSE].t : NULL, &p);
    if (st != ATTN_OK) {
        verdict(r, ATTN_FAILED, "invalid case: %s: %s", attn_status_name(st), attn_last_error());
        return;
    }
    attn_sdpa_desc desc = host;
    desc.mask_add = run_view(d, OP_MADD);
    desc.mask_bool = run_view(d, OP_MBOOL);
    st = attn_sdpa_supported(be, &desc, run_view(d, OP_Q), run_view(d, OP_K), run_view(d, OP_V),
                             run_view(d, OP_OUT), run_view(d, OP_LSE));
    if (st == ATTN_ERR_UNSUPPORTED) {
        verdict(r, ATTN_SKIPPED, "unsupported: %s", attn_last_error());
        return;
    }
    impl_name(be, &desc, d, r);
    conf_arrays a = {0};
    if (arrays_make(&p, &a) || compute_gold(&p, c->dt_out, &a) != ATTN_OK)
        verdict(r, ATTN_FAILED, "reference failed: %s", attn_last_error());
    else
        run_repeated(be, &desc, c, o, &p, d, &a, tamper, ctx, r);
    arrays_free(&a);
    check_inputs(d, r);
}

/* Elements of the largest tensors, in double so absurd sizes cannot overflow. */
static double case_elems(const attn_case *c)
{
    const double d = (double)(c->dk > c->dv ? c->dk : c->dv) + OUT_PAD;
    return (double)c->b * ((double)c->sq * (double)c->hq * (d + (double)c->skv) +
                           ((double)c->skv + CACHE_LEAD + CACHE_TRAIL) * (double)c->hkv * d);
}

attn_verdict attn_conform_case(attn_backend *be, const attn_case *c, const attn_conform_opts *o,
                               attn_conform_tamper tamper, void *ctx, attn_result *r)
{
    memset(r, 0, sizeof *r);
    r->status = ATTN_PASSED;
    r->expected = ATTN_PASSED;
    attn_case_format(c, r->name, sizeof r->name);
    attn_report_repro(r->repro, sizeof r->repro, attn_backend_name(be), o->repro_opts, o->seed,
                      r->name);
    r->features = attn_case_features(c);
    conf_data d;
    if (case_elems(c) > CASE_MAX_ELEMS) {
        verdict(r, ATTN_FAILED, "case too large for the conformance tool (%.3g elements)",
                case_elems(c));
        return r->status;
    }
    if (data_make(c, o->device_mem ? GUARD_BYTES : 0, &d)) {
        verdict(r, ATTN_FAILED, "out of memory allocating the case's tensors");
        return r->status;
    }
    data_fill(c, o->seed, &d);
    attn_status st = o->device_mem ? data_upload(be, &d) : ATTN_OK;
    if (st != ATTN_OK)
        verdict(r, ATTN_FAILED, "device buffers: %s: %s", attn_status_name(st),
                attn_last_error());
    else
        run_checked(be, c, o, &d, tamper, ctx, r);
    data_free(&d);
    return r->status;
}

/* ---- the command ---------------------------------------------------------------------------- */

typedef struct conf_opts {
    const char *backend, *cases_file, *filter, *json, *junit, *expect, *write_expect, *device;
    const char **names; /* --case, repeatable */
    int nnames, quick, list, verbose;
    int memory;         /* -1 backend default, 0 host, 1 device */
    int64_t repeat;
    uint64_t seed;
} conf_opts;

static const char usage_text[] =
    "usage: attn conform [--backend B] [--device P:D] [--memory device|host] [--repeat N]\n"
    "                    [--cases FILE] [--filter STR] [--case NAME]... [--seed N] [--quick]\n"
    "                    [--json FILE] [--junit FILE] [--expect FILE] [--write-expect FILE]\n"
    "                    [--list] [-v]\n"
    "  --backend B   backend to test (default cpu; see `attn backends`)\n"
    "  --device P:D  opencl: platform P, device D as `attn devices` lists them\n"
    "                (backend option device=P:D; env ATTN_OPENCL_DEVICE)\n"
    "  --memory M    device: tensors in backend buffers with 1 KiB guard zones (default for\n"
    "                opencl); host: host memory, guarded outputs (default otherwise)\n"
    "  --repeat N    run the backend N times per case; every run must be bit-identical\n"
    "  --cases FILE  case names, one per line ('#' comments) instead of the built-in list\n"
    "  --filter STR  only cases whose name contains STR\n"
    "  --case NAME   run this case (any valid name, e.g. from a repro line); repeatable\n"
    "  --seed N      fill seed (default 42)\n"
    "  --quick       the small built-in subset (about 40 cases)\n"
    "  --json FILE   write all results as JSON\n"
    "  --junit FILE  write JUnit XML (one testcase per case)\n"
    "  --expect FILE expectations of this device: listed failures are XFAIL, a case that does\n"
    "                worse than listed is a REGRESSION, one that does better a FIX\n"
    "  --write-expect FILE  write the expectations of this run (its non-passing cases)\n"
    "  --list        print the selected case names and exit\n"
    "  -v            figures per tensor and the worst element of every case\n"
    "Exit status: 0 if no case FAILED or was MISTRUSTED (with --expect: no REGRESSION), 1\n"
    "otherwise, 2 on usage errors, 3 if the backend is not available (no OpenCL platform).\n";

/* Options that take a string value, and the field each one sets. */
static const struct {
    const char *name;
    size_t off;
} string_opts[] = {
    {"--backend", offsetof(conf_opts, backend)},   {"--cases", offsetof(conf_opts, cases_file)},
    {"--filter", offsetof(conf_opts, filter)},     {"--json", offsetof(conf_opts, json)},
    {"--junit", offsetof(conf_opts, junit)},       {"--expect", offsetof(conf_opts, expect)},
    {"--write-expect", offsetof(conf_opts, write_expect)},
    {"--device", offsetof(conf_opts, device)},
};

/* One option at argv[*i]: 1 consumed, 0 unknown, -1 error (printed). */
static int parse_one(int argc, char **argv, int *i, conf_opts *o)
{
    static const char *const memories[] = {"host", "device", NULL};
    const char *val = NULL;
    int r;
    for (size_t k = 0; k < sizeof string_opts / sizeof string_opts[0]; k++)
        if ((r = attn_arg_value(argc, argv, i, string_opts[k].name, &val)) != 0) {
            if (r > 0)
                *(const char **)((char *)o + string_opts[k].off) = val;
            return r;
        }
    if ((r = attn_arg_value(argc, argv, i, "--case", &val)) != 0)
        return r < 0 ? -1 : (o->names[o->nnames++] = val, 1);
    if ((r = attn_arg_value(argc, argv, i, "--memory", &val)) != 0)
        return r < 0 || attn_parse_choice("--memory", val, memories, &o->memory) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--repeat", &val)) != 0)
        return r < 0 || attn_parse_i64("--repeat", val, 1, 1000, &o->repeat) ? -1 : 1;
    if ((r = attn_arg_value(argc, argv, i, "--seed", &val)) != 0) {
        int64_t s;
        if (r < 0 || attn_parse_i64("--seed", val, 0, INT64_MAX, &s))
            return -1;
        o->seed = (uint64_t)s;
        return 1;
    }
    int *flags[] = {&o->quick, &o->list};
    const char *flag_names[] = {"--quick", "--list"};
    for (size_t k = 0; k < 2; k++)
        if ((r = attn_arg_flag(argv, *i, flag_names[k])) != 0)
            return r < 0 ? -1 : (*flags[k] = 1, 1);
    if (strcmp(argv[*i], "-v") == 0 || strcmp(argv[*i], "--verbose") == 0)
        return o->verbose = 1;
    return 0;
}

static int parse_opts(int argc, char **argv, conf_opts *o)
{
    memset(o, 0, sizeof *o);
    o->backend = "cpu";
    o->seed = 42;
    o->memory = -1;
    o->repeat = 1;
    o->names = calloc((size_t)argc, sizeof *o->names);
    if (!o->names)
        return -1;
    for (int i = 1; i < argc; i++) {
        if (attn_arg_flag(argv, i, "--help") == 1 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 1;
        }
        int r = parse_one(argc, argv, &i, o);
        if (r < 0)
            return -1;
        if (r == 0) {
            fprintf(stderr, "attn: conform: unknown option '%s'\n%s", argv[i], usage_text);
            return -1;
        }
    }
    if (o->device && strcmp(o->backend, "opencl") != 0) {
        fprintf(stderr, "attn: conform: --device is an opencl option (backend is '%s')\n",
                o->backend);
        return -1;
    }
    return 0;
}

/* The selected cases: --case names, else --cases FILE, else the built-in list; then --filter. */
static attn_case *select_cases(const conf_opts *o, size_t *n)
{
    attn_case *cs = NULL;
    char err[320];
    if (o->nnames) {
        cs = calloc((size_t)o->nnames, sizeof *cs);
        for (int i = 0; cs && i < o->nnames; i++)
            if (attn_case_parse(o->names[i], &cs[i], err, sizeof err)) {
                fprintf(stderr, "attn: conform: --case '%s': %s\n", o->names[i], err);
                free(cs);
                return NULL;
            }
        *n = (size_t)o->nnames;
    } else if (o->cases_file) {
        cs = attn_cases_read(o->cases_file, n, err, sizeof err);
        if (!cs)
            fprintf(stderr, "attn: conform: %s\n", err);
    } else {
        cs = attn_cases_builtin(o->quick, n);
    }
    if (!cs || !o->filter)
        return cs;
    size_t k = 0;
    char name[ATTN_CASE_NAME_MAX];
    for (size_t i = 0; i < *n; i++) {
        attn_case_format(&cs[i], name, sizeof name);
        if (strstr(name, o->filter))
            cs[k++] = cs[i];
    }
    *n = k;
    return cs;
}

static void progress(size_t i, size_t n, const char *name)
{
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\r\033[K[%zu/%zu] %.60s", i + 1, n, name);
}

static void progress_clear(void)
{
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\r\033[K");
}

/* Open the backend. Returns 0, 2 (unknown backend or bad option such as a device index that
 * does not exist) or 3 (the backend cannot run here: no OpenCL in the build, no platform). */
static int open_backend(const conf_opts *o, attn_backend **be)
{
    char opts[160] = "";
    if (o->device)
        snprintf(opts, sizeof opts, "device=%s", o->device);
#ifndef ATTN_HAVE_OPENCL
    if (strcmp(o->backend, "opencl") == 0) {
        fprintf(stderr, "attn: conform: backend 'opencl' is not available: this build has no "
                        "OpenCL support (meson found no OpenCL ICD loader)\n");
        return 3;
    }
#endif
    attn_status st = attn_backend_open(o->backend, opts[0] ? opts : NULL, be);
    if (st == ATTN_OK)
        return 0;
    if (st == ATTN_ERR_BACKEND) {
        fprintf(stderr, "attn: conform: backend '%s': %s\n", o->backend, attn_last_error());
        return 2;
    }
    fprintf(stderr, "attn: conform: backend '%s' is not available: %s\n", o->backend,
            attn_last_error());
    return 3;
}

/* Header facts: the backend's describe line, and for opencl the platform and device. */
static void gather_info(attn_backend *be, const conf_opts *o, size_t n, attn_report_info *info,
                        char *devid, size_t devid_size)
{
    memset(info, 0, sizeof *info);
    info->backend = o->backend;
    info->describe = attn_backend_describe(be);
    info->seed = o->seed;
    info->ncases = n;
    info->device_mem = o->memory == 1 || (o->memory < 0 && strcmp(o->backend, "opencl") == 0);
    info->repeat = (int)o->repeat;
    snprintf(devid, devid_size, "%s", info->describe);
    info->device_id = devid;
#ifdef ATTN_HAVE_OPENCL
    attn_opencl_device_info di;
    char v[256];
    if (strcmp(o->backend, "opencl") != 0 || attn_opencl_backend_device(be, &di) != ATTN_OK)
        return;
    snprintf(v, sizeof v, "%.120s (%.120s)", di.platform_name, di.platform_version);
    attn_report_prop(info, "platform", v);
    snprintf(v, sizeof v, "%d:%d %.120s (%.80s, %s)", di.platform, di.device, di.name, di.vendor,
             di.type);
    attn_report_prop(info, "device", v);
    attn_report_prop(info, "driver", di.driver_version);
    attn_report_prop(info, "opencl", di.version);
    attn_report_prop(info, "opencl_c", di.c_version);
    snprintf(devid, devid_size, "%.120s | %.120s | driver %.120s", di.platform_name, di.name,
             di.driver_version);
#endif
}

/* Options of the repro command beyond backend, seed and case. */
static void repro_options(const conf_opts *o, char *buf, size_t n)
{
    static const char *const memories[] = {"host", "device"};
    int k = 0;
    buf[0] = '\0';
    if (o->device)
        k += snprintf(buf + k, n - (size_t)k, "--device %s ", o->device);
    if (o->memory >= 0 && (size_t)k < n)
        k += snprintf(buf + k, n - (size_t)k, "--memory %s ", memories[o->memory]);
    if (o->repeat > 1 && (size_t)k < n)
        k += snprintf(buf + k, n - (size_t)k, "--repeat %lld ", (long long)o->repeat);
    if (k > 0 && (size_t)k <= n)
        buf[k - 1] = '\0';
}

/* Expectations entries that named no case of this run (a filtered run, or a renamed case). */
static void expect_unused(const attn_expect *x)
{
    size_t unused = 0;
    for (size_t k = 0; k < x->n; k++)
        unused += !x->e[k].used;
    if (unused)
        printf("note: %zu expectation%s name cases not in this run\n", unused,
               unused == 1 ? "" : "s");
}

/* Write the requested files; returns 0 or 1 (a file failed, message printed). */
static int write_files(const conf_opts *o, const attn_report_info *info, const attn_result *rs,
                       size_t n)
{
    char err[320];
    int rc = 0;
    if (o->json && attn_report_json(o->json, info, rs, n, err, sizeof err))
        rc = fprintf(stderr, "attn: conform: %s\n", err) > 0;
    if (o->junit && attn_report_junit(o->junit, info, rs, n, err, sizeof err))
        rc = fprintf(stderr, "attn: conform: %s\n", err) > 0;
    if (o->write_expect && attn_expect_write(o->write_expect, info, rs, n, err, sizeof err))
        rc = fprintf(stderr, "attn: conform: %s\n", err) > 0;
    return rc ? 1 : 0;
}

static int run_cases(const conf_opts *o, attn_backend *be, attn_expect *x, const attn_case *cs,
                     size_t n, attn_conform_tamper tamper, void *ctx)
{
    attn_result *rs = calloc(n ? n : 1, sizeof *rs);
    if (!rs) {
        fprintf(stderr, "attn: conform: out of memory\n");
        return 1;
    }
    attn_report_info info;
    char devid[400], ropts[160];
    gather_info(be, o, n, &info, devid, sizeof devid);
    repro_options(o, ropts, sizeof ropts);
    const attn_conform_opts co = {o->seed, info.device_mem, (int)o->repeat, ropts};
    attn_report_header(stdout, &info);
    if (x && x->device[0] && strcmp(x->device, devid) != 0)
        printf("warning: expectations file %s is for device '%s', this run is on '%s'\n",
               o->expect, x->device, devid);
    size_t regressions = 0;
    for (size_t i = 0; i < n; i++) {
        char name[ATTN_CASE_NAME_MAX];
        attn_case_format(&cs[i], name, sizeof name);
        progress(i, n, name);
        attn_conform_case(be, &cs[i], &co, tamper, ctx, &rs[i]);
        if (x)
            regressions += attn_expect_apply(x, &rs[i], 1);
        progress_clear();
        attn_report_line(stdout, &rs[i], o->verbose);
        fflush(stdout);
    }
    if (x)
        expect_unused(x);
    size_t bad = attn_report_summary(stdout, rs, n, x ? o->expect : NULL);
    int rc = (x ? regressions : bad) ? 1 : 0;
    rc |= write_files(o, &info, rs, n);
    if (n == 0)
        fprintf(stderr, "attn: conform: no case selected\n");
    free(rs);
    return rc;
}

static int run_all(const conf_opts *o, const attn_case *cs, size_t n,
                   attn_conform_tamper tamper, void *ctx)
{
    attn_expect x;
    char err[320];
    if (o->expect && attn_expect_load(o->expect, &x, err, sizeof err)) {
        fprintf(stderr, "attn: conform: %s\n", err);
        return 2;
    }
    attn_backend *be = NULL;
    int rc = open_backend(o, &be);
    if (rc == 0)
        rc = run_cases(o, be, o->expect ? &x : NULL, cs, n, tamper, ctx);
    attn_backend_close(be);
    if (o->expect)
        attn_expect_free(&x);
    return rc;
}

int attn_cmd_conform_hooked(int argc, char **argv, attn_conform_tamper tamper, void *ctx)
{
    conf_opts o;
    int r = parse_opts(argc, argv, &o);
    if (r != 0) {
        free(o.names);
        return r > 0 ? 0 : 2;
    }
    size_t n = 0;
    attn_case *cs = select_cases(&o, &n);
    int rc;
    if (!cs) {
        rc = 2;
    } else if (o.list) {
        char name[ATTN_CASE_NAME_MAX];
        for (size_t i = 0; i < n; i++) {
            attn_case_format(&cs[i], name, sizeof name);
            printf("%s\n", name);
        }
        fprintf(stderr, "%zu cases\n", n);
        rc = 0;
    } else {
        rc = run_all(&o, cs, n, tamper, ctx);
    }
    free(cs);
    free(o.names);
    return rc;
}

int attn_cmd_conform(int argc, char **argv)
{
    return attn_cmd_conform_hooked(argc, argv, NULL, NULL);
}
