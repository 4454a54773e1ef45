/* attn_conform.c - the op-neutral conformance harness (attn_conform.h). Per case: the op's
 * driver allocates its tensors through the helpers here (every allocation poisoned with a NaN
 * pattern, so unwritten outputs and reads outside the views show; outputs always inside guard
 * zones; in device mode every tensor lives in an attn_buffer of the backend with guards at both
 * ends) and fills the inputs from the seed; the driver computes the gold of every output with
 * the reference; the harness runs the backend (N times with --repeat, each run bit-identical),
 * checks the guards, and applies the gates to each output. docs/conformance.md describes it. */
#include "attn_conform.h"

#include "attn_half.h"
#include "attn_report.h"
#include "attn_view.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ATTN_CASE_MAX_ELEMS 4e9 /* refuse cases whose tensors exceed this */

/* ---- buffers with poison and guards --------------------------------------------------------- */

/* Signalling-NaN patterns (quiet bit clear), distinct from anything a conversion produces;
 * integer dtypes (u8 masks, i32/i64 positions) get 0xa5 bytes. */
static void poison_bytes(attn_dtype t, unsigned char pat[8])
{
    static const unsigned char f32[4] = {0xa5, 0xa5, 0xa5, 0x7f}; /* 0x7fa5a5a5 */
    static const unsigned char f16[2] = {0x5a, 0x7d};             /* 0x7d5a */
    static const unsigned char bf16[2] = {0xa5, 0x7f};            /* 0x7fa5 */
    const unsigned char *src = t == ATTN_F32 ? f32 : t == ATTN_F16 ? f16 : bf16;
    if (t == ATTN_U8 || t == ATTN_I32 || t == ATTN_I64)
        memset(pat, 0xa5, attn_dtype_size(t));
    else
        memcpy(pat, src, attn_dtype_size(t));
}

/* Fill the whole host image (guards, gaps and view) with the poison pattern. */
static void buf_poison(attn_conf_buf *b)
{
    const size_t es = attn_dtype_size(b->t.dtype);
    unsigned char pat[8];
    poison_bytes(b->t.dtype, pat);
    for (size_t i = 0; i < b->bytes; i++)
        b->mem[i] = pat[i % es];
}

int attn_conf_buf_make(attn_conf_buf *b, attn_dtype dt, const int64_t shape[4],
                       const int64_t stride[4], int64_t lead, int64_t total, size_t guard)
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

int attn_conf_buf_dense(attn_conf_buf *b, attn_dtype dt, int64_t B, int64_t S, int64_t H,
                        int64_t D, int head_major, size_t guard)
{
    const int64_t shape[4] = {B, S, H, D};
    int64_t st[4] = {S * H * D, H * D, D, 1};
    if (head_major) {
        st[1] = D;
        st[2] = S * D;
    }
    return attn_conf_buf_make(b, dt, shape, st, 0, B * S * H * D, guard);
}

/* Byte offset in the image of element idx of the view (row-major over its shape). */
static size_t buf_elem_off(const attn_conf_buf *b, int64_t idx)
{
    const attn_tensor *t = &b->t;
    int64_t off = 0;
    for (int d = 3; d >= 0; d--) {
        off += idx % t->shape[d] * t->stride[d];
        idx /= t->shape[d];
    }
    return b->view_off + (size_t)off * attn_dtype_size(t->dtype);
}

static int64_t buf_numel(const attn_conf_buf *b)
{
    return b->t.shape[0] * b->t.shape[1] * b->t.shape[2] * b->t.shape[3];
}

/* ---- the tensors of a case ------------------------------------------------------------------ */

attn_conf_buf *attn_conf_add(attn_conf_data *d, const char *name, int output)
{
    if (d->n >= ATTN_CONF_MAX_TENSORS)
        return NULL;
    attn_conf_tensor *t = &d->t[d->n++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->output = output;
    return &t->b;
}

static const attn_conf_tensor *find(const attn_conf_data *d, const char *name)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->t[i].name, name) == 0)
            return d->t[i].b.mem ? &d->t[i] : NULL;
    return NULL;
}

const attn_tensor *attn_conf_run_view(const attn_conf_data *d, const char *name)
{
    const attn_conf_tensor *t = find(d, name);
    return t ? &t->b.run : NULL;
}

const attn_tensor *attn_conf_host_view(const attn_conf_data *d, const char *name)
{
    const attn_conf_tensor *t = find(d, name);
    return t ? &t->b.t : NULL;
}

static void data_free(attn_conf_data *d)
{
    for (int i = 0; i < d->n; i++) {
        free(d->t[i].b.mem);
        attn_buffer_free(d->t[i].b.dev);
    }
    memset(d, 0, sizeof *d);
}

int attn_conf_gold_alloc(attn_conf_gold *g, int64_t n, int zero_map)
{
    g->n = n;
    g->gold = calloc((size_t)n, sizeof(double));
    g->lowp = calloc((size_t)n, sizeof(double));
    g->cond = calloc((size_t)n, sizeof(double));
    g->got = calloc((size_t)n, sizeof(double));
    g->must_zero = zero_map ? calloc((size_t)n, 1) : NULL;
    return g->gold && g->lowp && g->cond && g->got && (!zero_map || g->must_zero) ? 0 : -1;
}

void attn_conf_round_lowp(attn_conf_gold *g, attn_dtype t)
{
    for (int64_t i = 0; i < g->n; i++) {
        unsigned char tmp[4];
        attn_store_f64(tmp, t, 0, g->lowp[i]);
        g->lowp[i] = attn_load_f64(tmp, t, 0);
    }
}

double attn_conf_row_norm(const attn_operand *o, int64_t b, int64_t s, int64_t h, int64_t n)
{
    double s2 = 0.0;
    for (int64_t d = 0; d < n; d++) {
        const double x = attn_load_f64(o->ptr, o->dtype, attn_at(o, b, s, h, d));
        s2 += x * x;
    }
    return sqrt(s2);
}

static void gold_free(attn_conf_gold *g, int ng)
{
    for (int i = 0; i < ng; i++) {
        free(g[i].gold);
        free(g[i].lowp);
        free(g[i].cond);
        free(g[i].got);
        free(g[i].must_zero);
    }
}

/* ---- device mode ---------------------------------------------------------------------------- */

/* Device mode: give every operand an attn_buffer of the backend holding its whole image
 * (guards included) and point the backend's view at offset view_off inside it. */
static attn_status data_upload(attn_backend *be, attn_conf_data *d)
{
    for (int i = 0; i < d->n; i++) {
        attn_conf_buf *b = &d->t[i].b;
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
static attn_status outputs_repoison(attn_conf_data *d)
{
    for (int i = 0; i < d->n; i++) {
        attn_conf_buf *b = &d->t[i].b;
        if (!b->mem || !d->t[i].output)
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
static attn_status outputs_download(attn_conf_data *d)
{
    for (int i = 0; i < d->n; i++) {
        attn_conf_buf *b = &d->t[i].b;
        if (b->dev && d->t[i].output) {
            attn_status st = attn_buffer_read(b->dev, 0, b->mem, b->bytes);
            if (st != ATTN_OK)
                return st;
        }
    }
    return ATTN_OK;
}

/* Is byte i of b's image inside a guard zone? */
static int in_guard(const attn_conf_buf *b, size_t i)
{
    return i < b->guard || i >= b->bytes - b->guard;
}

/* Device mode: an input allocation must come back exactly as uploaded. Counts changed bytes
 * in the guard zones and elsewhere (the view and its gaps). Returns -1 if reading fails. */
static int input_changes(const attn_conf_buf *b, int64_t *guard, int64_t *inside)
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
static int check_writes(const attn_conf_buf *b, int64_t *unwritten, int64_t *first, int64_t *guard,
                        int64_t *gap)
{
    const size_t es = attn_dtype_size(b->t.dtype);
    unsigned char pat[8];
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


/* ---- gates ---------------------------------------------------------------------------------- */

/* Tensor index [4] of element k of a gold array (row-major over the dims in g->order). */
static void gold_index(const attn_conf_gold *g, const attn_tensor *t, int64_t k, int64_t idx[4])
{
    for (int a = 3; a >= 0; a--) {
        const int dim = g->order[a];
        idx[dim] = k % t->shape[dim];
        k /= t->shape[dim];
    }
}

/* Read the backend's output into g->got, in the gold's element order. */
static void read_got(const attn_conf_data *d, attn_conf_gold *g)
{
    const attn_tensor *t = attn_conf_host_view(d, g->name);
    int64_t idx[4];
    for (int64_t k = 0; k < g->n; k++) {
        gold_index(g, t, k, idx);
        g->got[k] = attn_load_f64(t->data, t->dtype,
                                  idx[0] * t->stride[0] + idx[1] * t->stride[1] +
                                      idx[2] * t->stride[2] + idx[3] * t->stride[3]);
    }
}

/* The worst element of the tensor that decided: the first that did not pass, else the first. */
static void describe_worst(const attn_conf_data *d, const attn_conf_gold *g, int ng,
                           attn_result *r)
{
    int k = 0;
    for (int i = 0; i < ng; i++)
        if (r->tensor[i].fig.verdict != ATTN_PASSED) {
            k = i;
            break;
        }
    const int64_t w = r->tensor[k].fig.worst;
    if (w < 0)
        return;
    int64_t idx[4];
    gold_index(&g[k], attn_conf_host_view(d, g[k].name), w, idx);
    char at[96] = "";
    for (int a = 0; a < g[k].rank; a++)
        snprintf(at + strlen(at), sizeof at - strlen(at), "%s%lld", a ? "," : "",
                 (long long)idx[a]);
    snprintf(r->worst, sizeof r->worst, "%s[%s] gold=%.9g got=%.9g cond=%.3g", g[k].name, at,
             g[k].gold[w], g[k].got[w], g[k].cond[w]);
}

static void apply_policy(attn_conf_gold *g, int ng, attn_result *r)
{
    r->ntensors = ng;
    for (int i = 0; i < ng; i++) {
        attn_policy_in in = g[i].policy;
        in.n = g[i].n;
        in.gold = g[i].gold;
        in.got = g[i].got;
        in.absmag = g[i].cond;
        in.lowp = g[i].lowp;
        in.must_zero = g[i].must_zero;
        snprintf(r->tensor[i].name, sizeof r->tensor[i].name, "%s", g[i].name);
        attn_policy_check(&in, &r->tensor[i].fig);
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
static void check_guards(const attn_conf_data *d, attn_result *r)
{
    int64_t un[ATTN_CONF_MAX_TENSORS] = {0}, first[ATTN_CONF_MAX_TENSORS], guard = 0, gap = 0;
    for (int k = 0; k < d->n; k++) {
        const attn_conf_buf *b = &d->t[k].b;
        first[k] = -1;
        if (d->t[k].output && b->mem && check_writes(b, &un[k], &first[k], &guard, &gap)) {
            verdict(r, ATTN_FAILED, "out of memory while checking guards");
            return;
        }
    }
    for (int k = 0; k < d->n; k++) {
        if (un[k])
            verdict(r, ATTN_FAILED, "%s: %lld elements unwritten (first at index %lld)",
                    d->t[k].name, (long long)un[k], (long long)first[k]);
        r->unwritten += un[k];
    }
    if (guard)
        verdict(r, ATTN_FAILED, "guard zone overwritten: %lld bytes around the outputs",
                (long long)guard);
    if (gap)
        verdict(r, ATTN_FAILED, "%lld bytes written outside the output views (row gaps)",
                (long long)gap);
    r->guard_bytes += guard;
    r->stray_bytes += guard + gap;
}

/* Device mode: every input allocation, guards included, must be unchanged. */
static void check_inputs(const attn_conf_data *d, attn_result *r)
{
    for (int i = 0; i < d->n; i++) {
        int64_t guard = 0, inside = 0;
        if (d->t[i].output || !d->t[i].b.dev)
            continue;
        if (input_changes(&d->t[i].b, &guard, &inside)) {
            verdict(r, ATTN_FAILED, "cannot read back input %s: %s", d->t[i].name,
                    attn_last_error());
            continue;
        }
        if (guard)
            verdict(r, ATTN_FAILED, "guard zone overwritten: %lld bytes around input %s",
                    (long long)guard, d->t[i].name);
        if (inside)
            verdict(r, ATTN_FAILED, "input %s modified: %lld bytes", d->t[i].name,
                    (long long)inside);
        r->guard_bytes += guard;
        r->stray_bytes += guard + inside;
    }
}

/* ---- determinism ---------------------------------------------------------------------------- */

/* The output images of the first run; later runs must match them bit for bit. */
typedef struct conf_snap {
    unsigned char *img[ATTN_CONF_MAX_TENSORS];
} conf_snap;

static void snap_free(conf_snap *s)
{
    for (int k = 0; k < ATTN_CONF_MAX_TENSORS; k++)
        free(s->img[k]);
}

static int snap_take(const attn_conf_data *d, conf_snap *s)
{
    for (int k = 0; k < d->n; k++) {
        const attn_conf_buf *b = &d->t[k].b;
        if (!d->t[k].output || !b->mem)
            continue;
        if (!(s->img[k] = malloc(b->bytes)))
            return -1;
        memcpy(s->img[k], b->mem, b->bytes);
    }
    return 0;
}

/* The first output element whose bits differ from the snapshot, as "[b,i,h,d] of out" in
 * where. Returns 1 if one differs. */
static int snap_diff(const attn_conf_data *d, const conf_snap *s, char *where, size_t n)
{
    for (int k = 0; k < d->n; k++) {
        const attn_conf_buf *b = &d->t[k].b;
        if (!d->t[k].output || !b->mem)
            continue;
        const size_t es = attn_dtype_size(b->t.dtype);
        for (int64_t idx = 0; idx < buf_numel(b); idx++) {
            const size_t off = buf_elem_off(b, idx);
            if (memcmp(b->mem + off, s->img[k] + off, es) == 0)
                continue;
            const int64_t *sh = b->t.shape;
            snprintf(where, n, "[%lld,%lld,%lld,%lld] of %s",
                     (long long)(idx / (sh[1] * sh[2] * sh[3])),
                     (long long)(idx / (sh[2] * sh[3]) % sh[1]), (long long)(idx / sh[3] % sh[2]),
                     (long long)(idx % sh[3]), d->t[k].name);
            return 1;
        }
    }
    return 0;
}

/* ---- running the backend -------------------------------------------------------------------- */

/* The outputs' run views, in order, for the tamper hook. */
static int output_views(const attn_conf_data *d, const attn_conf_gold *g, int ng,
                        const attn_tensor **v)
{
    for (int i = 0; i < ng; i++)
        v[i] = attn_conf_run_view(d, g[i].name);
    return ng;
}

typedef struct conf_run {
    attn_backend *be;
    const attn_case *c;
    const attn_conform_opts *o;
    attn_conf_data *d;
    attn_conf_gold *g;
    int ng;
    attn_conform_tamper tamper;
    void *ctx;
} conf_run;

/* Run k (0-based) of the backend: outputs re-poisoned after the first run; the first is timed
 * and offered to tamper; device outputs are read back into the host images. */
static attn_status run_once(const conf_run *x, int k, attn_result *r)
{
    attn_status st = k ? outputs_repoison(x->d) : ATTN_OK;
    if (st != ATTN_OK) {
        verdict(r, ATTN_FAILED, "re-poisoning the outputs: %s: %s", attn_status_name(st),
                attn_last_error());
        return st;
    }
    const double t0 = now_ms();
    st = x->c->op->call(x->be, attn_case_cdata(x->c), x->d, ATTN_CONF_RUN, NULL, 0);
    if (st != ATTN_OK) {
        verdict(r, ATTN_FAILED, "forward returned %s: %s (run %d)", attn_status_name(st),
                attn_last_error(), k + 1);
        return st;
    }
    if (k == 0) {
        r->ms = now_ms() - t0;
        if (x->tamper) {
            const attn_tensor *v[ATTN_CONF_MAX_OUTPUTS];
            x->tamper(v, output_views(x->d, x->g, x->ng, v), x->ctx);
        }
    }
    if ((st = outputs_download(x->d)) != ATTN_OK)
        verdict(r, ATTN_FAILED, "reading back the outputs: %s: %s", attn_status_name(st),
                attn_last_error());
    return st;
}

/* Apply the gates to the first run's outputs. */
static void judge_outputs(const conf_run *x, attn_result *r)
{
    for (int i = 0; i < x->ng; i++)
        read_got(x->d, &x->g[i]);
    apply_policy(x->g, x->ng, r);
    r->compared = 1;
    for (int i = 0; i < x->ng; i++)
        if (r->tensor[i].fig.verdict != ATTN_PASSED)
            verdict(r, r->tensor[i].fig.verdict, "%s: %s", r->tensor[i].name,
                    r->tensor[i].fig.reason);
    describe_worst(x->d, x->g, x->ng, r);
}

/* Run the backend o->repeat times: check guards every run, the gates on the first, and bit
 * equality of every later run with the first. */
static void run_repeated(const conf_run *x, attn_result *r)
{
    conf_snap snap;
    memset(&snap, 0, sizeof snap);
    char where[96];
    const int runs = x->o->repeat > 1 ? x->o->repeat : 1;
    for (int k = 0; k < runs; k++) {
        if (run_once(x, k, r) != ATTN_OK)
            break;
        check_guards(x->d, r);
        if (k == 0) {
            judge_outputs(x, r);
            if (runs > 1 && snap_take(x->d, &snap)) {
                verdict(r, ATTN_FAILED, "out of memory keeping the first run's outputs");
                break;
            }
        } else if (snap_diff(x->d, &snap, where, sizeof where)) {
            verdict(r, ATTN_FAILED, "nondeterministic: run %d differs at %s", k + 1, where);
            break;
        }
    }
    snap_free(&snap);
}

/* The capability check (through the implementation name), the gold, the runs, the checks.
 * d holds filled inputs (uploaded in device mode). */
static void run_checked(conf_run *x, attn_result *r)
{
    const attn_conform_driver *op = x->c->op;
    attn_status st = op->call(x->be, attn_case_cdata(x->c), x->d, ATTN_CONF_IMPL, r->impl,
                              sizeof r->impl);
    if (st == ATTN_ERR_UNSUPPORTED) {
        r->impl[0] = '\0';
        verdict(r, ATTN_SKIPPED, "unsupported: %s", attn_last_error());
        return;
    }
    if (st != ATTN_OK)
        r->impl[0] = '\0';
    attn_conf_gold g[ATTN_CONF_MAX_OUTPUTS];
    memset(g, 0, sizeof g);
    int ng = 0;
    const int gst = op->gold(attn_case_cdata(x->c), x->d, g, &ng);
    if (gst == 1) {
        verdict(r, ATTN_FAILED, "invalid case: %s", attn_last_error());
    } else if (gst != 0) {
        verdict(r, ATTN_FAILED, "reference failed: %s", attn_last_error());
    } else {
        x->g = g;
        x->ng = ng;
        run_repeated(x, r);
    }
    gold_free(g, ATTN_CONF_MAX_OUTPUTS); /* entries past ng may hold arrays too */
    check_inputs(x->d, r);
}

attn_verdict attn_conform_case(attn_backend *be, const attn_case *c, const attn_conform_opts *o,
                               attn_conform_tamper tamper, void *ctx, attn_result *r)
{
    memset(r, 0, sizeof *r);
    r->op = c->op;
    r->status = ATTN_PASSED;
    r->expected = ATTN_PASSED;
    attn_case_format(c, r->name, sizeof r->name);
    attn_report_repro(r->repro, sizeof r->repro, attn_backend_name(be), o->repro_opts, o->seed,
                      r->name);
    r->features = attn_case_features(c);
    const double elems = c->op->elems(attn_case_cdata(c));
    if (elems > ATTN_CASE_MAX_ELEMS) {
        verdict(r, ATTN_FAILED, "case too large for the conformance tool (%.3g elements)",
                elems);
        return r->status;
    }
    attn_conf_data d;
    memset(&d, 0, sizeof d);
    if (c->op->make(attn_case_cdata(c), o->device_mem ? ATTN_CONF_GUARD_BYTES : 0, &d)) {
        data_free(&d);
        verdict(r, ATTN_FAILED, "out of memory allocating the case's tensors");
        return r->status;
    }
    c->op->fill(attn_case_cdata(c), o->seed, &d);
    if (o->inputs)
        o->inputs(&d, o->inputs_ctx);
    attn_status st = o->device_mem ? data_upload(be, &d) : ATTN_OK;
    if (st != ATTN_OK) {
        verdict(r, ATTN_FAILED, "device buffers: %s: %s", attn_status_name(st),
                attn_last_error());
    } else {
        conf_run x = {be, c, o, &d, NULL, 0, tamper, ctx};
        run_checked(&x, r);
    }
    data_free(&d);
    return r->status;
}
