/* cmd_conform.c - `attn conform`: runs conformance cases on a backend and compares each with
 * the f64 reference under the policy of attn_policy.c. Per case: fill the inputs from the
 * seed, poison every allocation with a NaN pattern (so unwritten outputs and reads outside the
 * views show), surround the outputs with guard zones, compute gold, absmag and the naive f32
 * result with the reference, run the backend through the public API, then check the guards and
 * apply the gates to out and lse. docs/conformance.md describes the output. */
#include "attn_args.h"
#include "attn_cases.h"
#include "attn_cmds.h"
#include "attn_half.h"
#include "attn_report.h"
#include "attn_validate.h"
#include "ref_sdpa.h"

#include <math.h>
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

/* ---- host buffers with poison and guards ---------------------------------------------------- */

typedef struct conf_buf {
    unsigned char *mem; /* the allocation, NULL when the operand is absent */
    size_t bytes;
    size_t view_off;    /* byte offset of element [0,0,0,0] */
    attn_tensor t;
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
    unsigned char pat[4];
    poison_bytes(dt, pat);
    for (size_t i = 0; i < b->bytes; i++)
        b->mem[i] = pat[i % es];
    b->view_off = guard + (size_t)lead * es;
    memset(&b->t, 0, sizeof b->t);
    b->t.data = b->mem + b->view_off;
    b->t.dtype = dt;
    memcpy(b->t.shape, shape, sizeof b->t.shape);
    memcpy(b->t.stride, stride, sizeof b->t.stride);
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
static int buf_cache(conf_buf *b, attn_dtype dt, int64_t B, int64_t S, int64_t H, int64_t D)
{
    const int64_t cap = S + CACHE_LEAD + CACHE_TRAIL;
    const int64_t shape[4] = {B, S, H, D};
    const int64_t st[4] = {H * cap * D, D, cap * D, 1};
    return buf_make(b, dt, shape, st, CACHE_LEAD * D, B * H * cap * D, 0);
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
static int buf_mask(conf_buf *b, attn_dtype dt, const attn_case *c, int dims)
{
    return buf_dense(b, dt, dims & ATTN_MDIM_B ? c->b : 1, dims & ATTN_MDIM_S ? c->sq : 1,
                     dims & ATTN_MDIM_H ? c->hq : 1, c->skv, 0, 0);
}

typedef struct conf_data {
    conf_buf q, k, v, madd, mbool, out, lse;
} conf_data;

static void data_free(conf_data *d)
{
    conf_buf *all[] = {&d->q, &d->k, &d->v, &d->madd, &d->mbool, &d->out, &d->lse};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]->mem);
    memset(d, 0, sizeof *d);
}

static int data_make(const attn_case *c, conf_data *d)
{
    memset(d, 0, sizeof *d);
    const int hm = c->layout == ATTN_LAYOUT_BHSD;
    int rc = buf_dense(&d->q, c->dt_q, c->b, c->sq, c->hq, c->dk, hm, 0);
    if (c->layout == ATTN_LAYOUT_CACHE) {
        rc |= buf_cache(&d->k, c->dt_kv, c->b, c->skv, c->hkv, c->dk);
        rc |= buf_cache(&d->v, c->dt_kv, c->b, c->skv, c->hkv, c->dv);
        rc |= buf_padded(&d->out, c->dt_out, c->b, c->sq, c->hq, c->dv);
    } else {
        rc |= buf_dense(&d->k, c->dt_kv, c->b, c->skv, c->hkv, c->dk, hm, 0);
        rc |= buf_dense(&d->v, c->dt_kv, c->b, c->skv, c->hkv, c->dv, hm, 0);
        rc |= buf_dense(&d->out, c->dt_out, c->b, c->sq, c->hq, c->dv, hm, GUARD_BYTES);
    }
    if (c->lse) /* [B, Sq, Hq, 1] stored as contiguous [B, Hq, Sq] */
        rc |= buf_dense(&d->lse, ATTN_F32, c->b, c->sq, c->hq, 1, 1, GUARD_BYTES);
    if (c->mask_add != ATTN_MASK_NONE)
        rc |= buf_mask(&d->madd, c->dt_q, c, c->mask_add);
    if (c->mask_bool != ATTN_MASK_NONE)
        rc |= buf_mask(&d->mbool, ATTN_U8, c, c->mask_bool);
    if (rc)
        data_free(d);
    return rc;
}

static void data_fill(const attn_case *c, uint64_t seed, conf_data *d)
{
    attn_fill_tensor(&d->q.t, c->fill, seed, ATTN_FILL_Q);
    attn_fill_tensor(&d->k.t, c->fill, seed, ATTN_FILL_K);
    attn_fill_tensor(&d->v.t, c->fill, seed, ATTN_FILL_V);
    if (d->madd.mem)
        attn_fill_mask_add(&d->madd.t, seed);
    if (d->mbool.mem)
        attn_fill_mask_bool(&d->mbool.t, seed);
}

/* Count output elements still holding the poison, and bytes outside the view (guards, padding)
 * that changed. Returns -1 when the byte map cannot be allocated. */
static int check_writes(const conf_buf *b, int64_t *unwritten, int64_t *first, int64_t *stray)
{
    const size_t es = attn_dtype_size(b->t.dtype);
    unsigned char pat[4];
    poison_bytes(b->t.dtype, pat);
    unsigned char *mine = calloc(b->bytes, 1);
    if (!mine)
        return -1;
    const attn_tensor *t = &b->t;
    int64_t idx = 0;
    for (int64_t i0 = 0; i0 < t->shape[0]; i0++)
        for (int64_t i1 = 0; i1 < t->shape[1]; i1++)
            for (int64_t i2 = 0; i2 < t->shape[2]; i2++)
                for (int64_t i3 = 0; i3 < t->shape[3]; i3++, idx++) {
                    size_t off = b->view_off + es * (size_t)(i0 * t->stride[0] +
                                 i1 * t->stride[1] + i2 * t->stride[2] + i3 * t->stride[3]);
                    memset(mine + off, 1, es);
                    if (memcmp(b->mem + off, pat, es) == 0 && (*unwritten)++ == 0)
                        *first = idx;
                }
    for (size_t i = 0; i < b->bytes; i++)
        *stray += !mine[i] && b->mem[i] != pat[i % es];
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
    const attn_tensor *o = &d->out.t;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t i = 0; i < p->Sq; i++)
            for (int64_t h = 0; h < p->Hq; h++) {
                for (int64_t x = 0; x < p->Dv; x++)
                    a->got[((b * p->Sq + i) * p->Hq + h) * p->Dv + x] = attn_load_f64(
                        o->data, o->dtype,
                        b * o->stride[0] + i * o->stride[1] + h * o->stride[2] + x * o->stride[3]);
                if (d->lse.mem) {
                    const attn_tensor *l = &d->lse.t;
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

static void check_guards(conf_data *d, attn_result *r)
{
    int64_t first = -1, lfirst = -1, lun = 0;
    if (check_writes(&d->out, &r->unwritten, &first, &r->stray_bytes) ||
        (d->lse.mem && check_writes(&d->lse, &lun, &lfirst, &r->stray_bytes))) {
        verdict(r, ATTN_FAILED, "out of memory while checking guards");
        return;
    }
    if (r->unwritten)
        verdict(r, ATTN_FAILED, "out: %lld elements unwritten (first at index %lld)",
                (long long)r->unwritten, (long long)first);
    if (lun)
        verdict(r, ATTN_FAILED, "lse: %lld elements unwritten (first at index %lld)",
                (long long)lun, (long long)lfirst);
    r->unwritten += lun;
    if (r->stray_bytes)
        verdict(r, ATTN_FAILED, "%lld bytes written outside the output views",
                (long long)r->stray_bytes);
}

/* Validate, compute gold, run the backend, check. d holds filled inputs. */
static void run_checked(attn_backend *be, const attn_case *c, conf_data *d,
                        attn_conform_tamper tamper, void *ctx, attn_result *r)
{
    attn_sdpa_desc desc = attn_case_desc(c);
    desc.mask_add = d->madd.mem ? &d->madd.t : NULL;
    desc.mask_bool = d->mbool.mem ? &d->mbool.t : NULL;
    const attn_tensor *lse = d->lse.mem ? &d->lse.t : NULL;
    attn_sdpa_problem p;
    attn_status st = attn_sdpa_validate(&desc, &d->q.t, &d->k.t, &d->v.t, &d->out.t, lse, &p);
    if (st != ATTN_OK) {
        verdict(r, ATTN_FAILED, "invalid case: %s: %s", attn_status_name(st), attn_last_error());
        return;
    }
    st = attn_sdpa_supported(be, &desc, &d->q.t, &d->k.t, &d->v.t, &d->out.t, lse);
    if (st == ATTN_ERR_UNSUPPORTED) {
        verdict(r, ATTN_SKIPPED, "unsupported: %s", attn_last_error());
        return;
    }
    conf_arrays a = {0};
    if (arrays_make(&p, &a) || compute_gold(&p, c->dt_out, &a) != ATTN_OK) {
        verdict(r, ATTN_FAILED, "reference failed: %s", attn_last_error());
        arrays_free(&a);
        return;
    }
    double t0 = now_ms();
    st = attn_sdpa_forward(be, &desc, &d->q.t, &d->k.t, &d->v.t, &d->out.t, lse);
    r->ms = now_ms() - t0;
    if (st != ATTN_OK) {
        verdict(r, ATTN_FAILED, "forward returned %s: %s", attn_status_name(st),
                attn_last_error());
    } else {
        if (tamper)
            tamper(&d->out.t, lse, ctx);
        check_guards(d, r);
        read_got(&p, d, &a);
        apply_policy(&p, c, &a, r);
        r->compared = 1;
        if (r->out.verdict != ATTN_PASSED)
            verdict(r, r->out.verdict, "out: %s", r->out.reason);
        if (r->has_lse && r->lse.verdict != ATTN_PASSED)
            verdict(r, r->lse.verdict, "lse: %s", r->lse.reason);
        describe_worst(&p, &a, r);
    }
    arrays_free(&a);
}

/* Elements of the largest tensors, in double so absurd sizes cannot overflow. */
static double case_elems(const attn_case *c)
{
    const double d = (double)(c->dk > c->dv ? c->dk : c->dv) + OUT_PAD;
    return (double)c->b * ((double)c->sq * (double)c->hq * (d + (double)c->skv) +
                           ((double)c->skv + CACHE_LEAD + CACHE_TRAIL) * (double)c->hkv * d);
}

attn_verdict attn_conform_case(attn_backend *be, const attn_case *c, uint64_t seed,
                               attn_conform_tamper tamper, void *ctx, attn_result *r)
{
    memset(r, 0, sizeof *r);
    r->status = ATTN_PASSED;
    attn_case_format(c, r->name, sizeof r->name);
    attn_report_repro(r->repro, sizeof r->repro, attn_backend_name(be), seed, r->name);
    r->features = attn_case_features(c);
    conf_data d;
    if (case_elems(c) > CASE_MAX_ELEMS) {
        verdict(r, ATTN_FAILED, "case too large for the conformance tool (%.3g elements)",
                case_elems(c));
        return r->status;
    }
    if (data_make(c, &d)) {
        verdict(r, ATTN_FAILED, "out of memory allocating the case's tensors");
        return r->status;
    }
    data_fill(c, seed, &d);
    run_checked(be, c, &d, tamper, ctx, r);
    data_free(&d);
    return r->status;
}

/* ---- the command ---------------------------------------------------------------------------- */

typedef struct conf_opts {
    const char *backend, *cases_file, *filter, *json;
    const char **names; /* --case, repeatable */
    int nnames, quick, list, verbose;
    uint64_t seed;
} conf_opts;

static const char usage_text[] =
    "usage: attn conform [--backend B] [--cases FILE] [--filter STR] [--case NAME]...\n"
    "                    [--seed N] [--json FILE] [--quick] [--list] [-v]\n"
    "  --backend B   backend to test (default cpu; see `attn backends`)\n"
    "  --cases FILE  case names, one per line ('#' comments) instead of the built-in list\n"
    "  --filter STR  only cases whose name contains STR\n"
    "  --case NAME   run this case (any valid name, e.g. from a repro line); repeatable\n"
    "  --seed N      fill seed (default 42)\n"
    "  --json FILE   write all results as JSON\n"
    "  --quick       the small built-in subset (about 40 cases)\n"
    "  --list        print the selected case names and exit\n"
    "  -v            figures per tensor and the worst element of every case\n"
    "Exit status: 0 if no case FAILED or was MISTRUSTED, 1 otherwise, 2 on usage errors.\n";

static int parse_opts(int argc, char **argv, conf_opts *o)
{
    memset(o, 0, sizeof *o);
    o->backend = "cpu";
    o->seed = 42;
    o->names = calloc((size_t)argc, sizeof *o->names);
    if (!o->names)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        int r;
        if (attn_arg_flag(argv, i, "--help") == 1 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 1;
        }
        if ((r = attn_arg_value(argc, argv, &i, "--backend", &val)) != 0) {
            if (r < 0)
                return -1;
            o->backend = val;
        } else if ((r = attn_arg_value(argc, argv, &i, "--cases", &val)) != 0) {
            if (r < 0)
                return -1;
            o->cases_file = val;
        } else if ((r = attn_arg_value(argc, argv, &i, "--filter", &val)) != 0) {
            if (r < 0)
                return -1;
            o->filter = val;
        } else if ((r = attn_arg_value(argc, argv, &i, "--case", &val)) != 0) {
            if (r < 0)
                return -1;
            o->names[o->nnames++] = val;
        } else if ((r = attn_arg_value(argc, argv, &i, "--json", &val)) != 0) {
            if (r < 0)
                return -1;
            o->json = val;
        } else if ((r = attn_arg_value(argc, argv, &i, "--seed", &val)) != 0) {
            int64_t s;
            if (r < 0 || attn_parse_i64("--seed", val, 0, INT64_MAX, &s))
                return -1;
            o->seed = (uint64_t)s;
        } else if ((r = attn_arg_flag(argv, i, "--quick")) != 0) {
            if (r < 0)
                return -1;
            o->quick = 1;
        } else if ((r = attn_arg_flag(argv, i, "--list")) != 0) {
            if (r < 0)
                return -1;
            o->list = 1;
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            o->verbose = 1;
        } else {
            fprintf(stderr, "attn: conform: unknown option '%s'\n%s", argv[i], usage_text);
            return -1;
        }
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

static int run_all(const conf_opts *o, const attn_case *cs, size_t n)
{
    attn_backend *be = NULL;
    if (attn_backend_open(o->backend, NULL, &be) != ATTN_OK) {
        fprintf(stderr, "attn: conform: backend '%s': %s\n", o->backend, attn_last_error());
        return 2;
    }
    attn_result *rs = calloc(n ? n : 1, sizeof *rs);
    if (!rs) {
        attn_backend_close(be);
        fprintf(stderr, "attn: conform: out of memory\n");
        return 1;
    }
    attn_report_header(stdout, o->backend, attn_backend_describe(be), o->seed, n);
    for (size_t i = 0; i < n; i++) {
        char name[ATTN_CASE_NAME_MAX];
        attn_case_format(&cs[i], name, sizeof name);
        progress(i, n, name);
        attn_conform_case(be, &cs[i], o->seed, NULL, NULL, &rs[i]);
        progress_clear();
        attn_report_line(stdout, &rs[i], o->verbose);
        fflush(stdout);
    }
    size_t bad = attn_report_summary(stdout, rs, n);
    int rc = bad ? 1 : 0;
    char err[320];
    if (o->json && attn_report_json(o->json, o->backend, attn_backend_describe(be), o->seed, rs,
                                    n, err, sizeof err)) {
        fprintf(stderr, "attn: conform: %s\n", err);
        rc = 1;
    }
    if (n == 0)
        fprintf(stderr, "attn: conform: no case selected\n");
    free(rs);
    attn_backend_close(be);
    return rc;
}

int attn_cmd_conform(int argc, char **argv)
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
        rc = run_all(&o, cs, n);
    }
    free(cs);
    free(o.names);
    return rc;
}
