/* kvcache_streams.c - the token streams of `attn decode`: seeded synthetic ones whose attention
 * is peaked as a real model's is, or .npy files dumped from a model (one file per tensor and
 * layer; docs/ops/kvcache.md, "Streams"). */
#include "kvcache_decode.h"

#include "attn_rng.h"
#include "attn_run.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LAYERS 4096
#define PATH_LEN 1024

/* What the views point into: the synthetic block, or the loaded files and their paths. */
typedef struct streams_owned {
    float *block;
    attn_run_array *files; /* 5 per layer: q, k, v, x, y */
    char (*paths)[PATH_LEN];
    int nfiles;
    attn_tensor views[]; /* 5 per layer */
} streams_owned;

static int streams_alloc(attn_kvcache_streams *s, int layers, int nfiles)
{
    streams_owned *o = calloc(1, sizeof *o + sizeof(attn_tensor) * 5 * (size_t)layers);
    if (!o)
        return -1;
    s->owned = o;
    s->layers = layers;
    s->q = o->views;
    s->k = s->q + layers;
    s->v = s->k + layers;
    s->x = s->v + layers;
    s->y = s->x + layers;
    if (nfiles) {
        o->nfiles = nfiles;
        o->files = calloc((size_t)nfiles, sizeof *o->files);
        o->paths = calloc((size_t)nfiles, sizeof *o->paths);
        if (!o->files || !o->paths)
            return -1;
    }
    return 0;
}

void attn_kvcache_streams_free(attn_kvcache_streams *s)
{
    streams_owned *o = s->owned;
    if (o) {
        for (int f = 0; o->files && f < o->nfiles; f++)
            attn_npy_free(&o->files[f].a);
        free(o->files);
        free(o->paths);
        free(o->block);
        free(o);
    }
    memset(s, 0, sizeof *s);
}

/* ---- synthetic ------------------------------------------------------------------------------ */

enum { ST_Q, ST_K, ST_V, ST_X, ST_Y, ST_DIR, ST_HEAVY, ST_LAYER, ST_NSTREAM };

/* Unit-variance noise, uniform in [-sqrt 3, sqrt 3): value i of stream `kind` of layer l. */
static double noise(uint64_t seed, int l, int kind, uint64_t i)
{
    return attn_rng_uniform(seed, (uint64_t)l * ST_NSTREAM + kind, i, -1.7320508075688772,
                            1.7320508075688772);
}

static double unit(uint64_t seed, int l, int kind, uint64_t i)
{
    return attn_rng_unit(seed, (uint64_t)l * ST_NSTREAM + kind, i);
}

/* The residual's size relative to the input: large in the first two layers and the last (low
 * similarity: important), small elsewhere; y = x + delta noise, cos(x, y) ~ 1/sqrt(1+delta^2). */
static double residual_size(const attn_kvcache_synth *c, int l)
{
    double d = 0.25 + 0.1 * unit(c->seed, l, ST_LAYER, 1u << 20);
    d += l == 0 ? 1.2 : l == 1 ? 0.6 : 0.0;
    d += l == c->layers - 1 && l > 1 ? 0.5 : 0.0;
    return d;
}

/* A layer with a small residual attends locally (the sink and the recent tokens), as many
 * middle layers of real models do; the others also to scattered heavy tokens. So the premise
 * of SqueezeAttention (the layers it squeezes need fewer tokens) holds by construction. */
static int local_layer(const attn_kvcache_synth *c, int l)
{
    return residual_size(c, l) < 0.5;
}

/* How strongly KV head g's heavy direction marks token t (0: an ordinary token): the sink
 * (token 0) strongest, then (outside local layers) ~1 token in 20, each head its own. */
static double heavy_weight(const attn_kvcache_synth *c, int l, int64_t t, int64_t g)
{
    if (t == 0)
        return 1.5;
    const uint64_t i = (uint64_t)(t * c->hkv + g);
    return !local_layer(c, l) && unit(c->seed, l, ST_HEAVY, 2 * i) < 0.05
               ? 0.5 + unit(c->seed, l, ST_HEAVY, 2 * i + 1)
               : 0.0;
}

/* What shapes one layer's attention. */
typedef struct synth_layer_shape {
    int local, nf;       /* a local layer; recency features (pairs of dims) */
    double sharp;        /* the heavy tokens' logit boost is about 6 sharp beta_h a */
    double q_noise, rho; /* the queries' noise scale; the recency features' amplitude */
    double pull;         /* the queries' pull toward the heavy direction (times sqrt(Dk) beta_h) */
    double *u;           /* [Hkv][Dk] unit directions of the heavy tokens */
} synth_layer_shape;

/* The recency bump in the logit at distance 0 is about 3 (8 in a local layer, whose queries
 * are also less noisy and pull half as hard toward the heavy direction, with the sink's key
 * twice as strong: its attention stays on the sink and the last few tokens). */
static int shape_init(const attn_kvcache_synth *c, int l, synth_layer_shape *sh)
{
    const int64_t D = c->dk;
    sh->local = local_layer(c, l);
    sh->nf = D / 2 < 32 ? (int)(D / 2) : 32;
    sh->sharp = 0.6 + 0.8 * unit(c->seed, l, ST_LAYER, 0);
    sh->q_noise = sh->local ? 0.3 : 1.0;
    sh->pull = sh->local ? 0.5 : 1.0;
    sh->rho = sh->nf ? sqrt((sh->local ? 8.0 : 3.0) * sqrt((double)D) / sh->nf) : 0;
    sh->u = malloc(sizeof(double) * (size_t)(c->hkv * D));
    if (!sh->u)
        return -1;
    for (int64_t g = 0; g < c->hkv; g++) {
        double *u = sh->u + g * D, n2 = 0;
        for (int64_t d = 0; d < D; d++) {
            u[d] = noise(c->seed, l, ST_DIR, (uint64_t)(g * D + d));
            n2 += u[d] * u[d];
        }
        for (int64_t d = 0; d < D; d++)
            u[d] /= sqrt(n2);
    }
    return 0;
}

/* The recency features both q_t and k_t carry: cos and sin of 2 pi t / period_f for Dk / 2
 * (at most 32) periods spread geometrically over [lo, 100 lo] (lo = 6 tokens, 2.5 in a local
 * layer). Their dot product sums cos(2 pi (t - s) / period_f): it peaks at nearby tokens, and
 * far away it is noise of standard deviation bump / sqrt(2 nf) in the logit, which the many
 * periods keep small. */
static double recency_period(const synth_layer_shape *sh, int f)
{
    const double lo = sh->local ? 2.5 : 6.0;
    return lo * pow(100.0, sh->nf > 1 ? (double)f / (sh->nf - 1) : 0.0);
}

/* Add token t's recency features to a row of D values. */
static void add_recency(const synth_layer_shape *sh, int64_t t, float *row)
{
    for (int f = 0; f < sh->nf; f++) {
        const double w = 2 * 3.14159265358979323846 * (double)t / recency_period(sh, f);
        row[2 * f] += (float)(sh->rho * cos(w));
        row[2 * f + 1] += (float)(sh->rho * sin(w));
    }
}

/* Token t's query of head h: noise, the head's pull sqrt(Dk) beta_h u_g toward its KV head's
 * heavy direction, the recency features. */
static void query_row(const attn_kvcache_synth *c, int l, const synth_layer_shape *sh, int64_t t,
                      int64_t h, float *row)
{
    const int64_t D = c->dk, g = h / (c->hq / c->hkv);
    const double beta = 0.6 + 0.8 * unit(c->seed, l, ST_LAYER, 1 + (uint64_t)h);
    for (int64_t d = 0; d < D; d++)
        row[d] = (float)(sh->q_noise * noise(c->seed, l, ST_Q, (uint64_t)((t * c->hq + h) * D + d)) +
                         sh->pull * sqrt((double)D) * beta * sh->u[g * D + d]);
    add_recency(sh, t, row);
}

/* Token t's key of KV head g: noise, its heavy weight along u_g, the recency features. */
static void key_row(const attn_kvcache_synth *c, int l, const synth_layer_shape *sh, int64_t t,
                    int64_t g, float *row)
{
    const int64_t D = c->dk;
    const double a = 6.0 * sh->sharp * heavy_weight(c, l, t, g) / sh->pull;
    for (int64_t d = 0; d < D; d++)
        row[d] = (float)(noise(c->seed, l, ST_K, (uint64_t)((t * c->hkv + g) * D + d)) +
                         a * sh->u[g * D + d]);
    add_recency(sh, t, row);
}

/* One layer's q, k and v (values: plain noise). 0, or -1 when out of memory. */
static int synth_layer(const attn_kvcache_synth *c, int l, float *q, float *k, float *v)
{
    const int64_t T = c->prompt + c->new_tokens;
    synth_layer_shape sh;
    if (shape_init(c, l, &sh))
        return -1;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t h = 0; h < c->hq; h++)
            query_row(c, l, &sh, t, h, q + (t * c->hq + h) * c->dk);
        for (int64_t g = 0; g < c->hkv; g++) {
            key_row(c, l, &sh, t, g, k + (t * c->hkv + g) * c->dk);
            for (int64_t d = 0; d < c->dv; d++)
                v[(t * c->hkv + g) * c->dv + d] =
                    (float)noise(c->seed, l, ST_V, (uint64_t)((t * c->hkv + g) * c->dv + d));
        }
    }
    free(sh.u);
    return 0;
}

static void synth_hidden(const attn_kvcache_synth *c, int l, int64_t hidden, float *x, float *y)
{
    const double delta = residual_size(c, l);
    for (int64_t i = 0; i < c->prompt * hidden; i++) {
        x[i] = (float)noise(c->seed, l, ST_X, (uint64_t)i);
        y[i] = (float)(x[i] + delta * noise(c->seed, l, ST_Y, (uint64_t)i));
    }
}

int attn_kvcache_streams_synth(const attn_kvcache_synth *c, attn_kvcache_streams *s)
{
    memset(s, 0, sizeof *s);
    const int64_t T = c->prompt + c->new_tokens, hidden = c->hq * c->dk;
    const size_t per = (size_t)(T * (c->hq * c->dk + c->hkv * (c->dk + c->dv)) +
                                2 * c->prompt * hidden);
    if (streams_alloc(s, c->layers, 0) ||
        !(((streams_owned *)s->owned)->block = malloc(sizeof(float) * per * (size_t)c->layers))) {
        attn_kvcache_streams_free(s);
        fprintf(stderr, "attn decode: out of memory for the synthetic streams\n");
        return -1;
    }
    float *p = ((streams_owned *)s->owned)->block;
    s->prompt = c->prompt;
    s->new_tokens = c->new_tokens;
    s->hq = c->hq;
    s->hkv = c->hkv;
    s->dk = c->dk;
    s->dv = c->dv;
    s->hidden = hidden;
    for (int l = 0; l < c->layers; l++) {
        float *q = p, *k = q + T * c->hq * c->dk, *v = k + T * c->hkv * c->dk;
        float *x = v + T * c->hkv * c->dv, *y = x + c->prompt * hidden;
        p = y + c->prompt * hidden;
        if (synth_layer(c, l, q, k, v)) {
            attn_kvcache_streams_free(s);
            fprintf(stderr, "attn decode: out of memory for the synthetic streams\n");
            return -1;
        }
        synth_hidden(c, l, hidden, x, y);
        s->q[l] = attn_tensor_bshd(q, ATTN_F32, 1, T, c->hq, c->dk);
        s->k[l] = attn_tensor_bshd(k, ATTN_F32, 1, T, c->hkv, c->dk);
        s->v[l] = attn_tensor_bshd(v, ATTN_F32, 1, T, c->hkv, c->dv);
        s->x[l] = attn_tensor_bshd(x, ATTN_F32, 1, c->prompt, 1, hidden);
        s->y[l] = attn_tensor_bshd(y, ATTN_F32, 1, c->prompt, 1, hidden);
    }
    return 0;
}

/* ---- .npy files ----------------------------------------------------------------------------- */

/* Print "attn decode: <message>", free the streams; returns -1. */
static int load_error(attn_kvcache_streams *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int load_error(attn_kvcache_streams *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attn decode: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    attn_kvcache_streams_free(s);
    return -1;
}

static int file_exists(const char *dir, const char *name, int l, char *path)
{
    snprintf(path, PATH_LEN, "%s/%s_%d.npy", dir, name, l);
    return access(path, F_OK) == 0;
}

/* One file: 3-D [T, H, D] viewed [1, T, H, D], or 2-D [P, D] viewed [1, P, 1, D]. */
static int load_one(streams_owned *o, int f, const char *dir, const char *name, int l, int bf16,
                    attn_tensor *view)
{
    attn_run_array *r = &o->files[f];
    const int hidden = name[0] == 'x' || name[0] == 'y';
    file_exists(dir, name, l, o->paths[f]);
    r->opt = name;
    r->path = o->paths[f];
    if (attn_run_load_float(r, hidden ? 2 : 3, hidden ? 2 : 3,
                            hidden ? attn_run_perm_bhsd : attn_run_perm_bshd, bf16))
        return -1;
    *view = r->t;
    return 0;
}

/* Every layer's shapes agree with layer 0's and with each other. */
static int check_shapes(attn_kvcache_streams *s, int has_hidden)
{
    const int64_t T = s->q[0].shape[1];
    for (int l = 0; l < s->layers; l++) {
        const attn_tensor *q = &s->q[l], *k = &s->k[l], *v = &s->v[l];
        if (q->shape[1] != T || k->shape[1] != T || v->shape[1] != T)
            return load_error(s, "layer %d: q, k and v of every layer need the same number "
                                 "of tokens as q_0.npy", l);
        if (q->shape[2] != s->q[0].shape[2] || k->shape[2] != s->k[0].shape[2] ||
            v->shape[2] != k->shape[2] || k->shape[3] != q->shape[3] ||
            q->shape[3] != s->q[0].shape[3] || v->shape[3] != s->v[0].shape[3])
            return load_error(s, "layer %d: head counts or dims differ (q [T, Hq, Dk], k "
                                 "[T, Hkv, Dk], v [T, Hkv, Dv], the same in every layer)", l);
        if (has_hidden && (s->x[l].shape[1] != s->x[0].shape[1] ||
                           s->y[l].shape[1] != s->x[0].shape[1] ||
                           s->x[l].shape[3] != s->x[0].shape[3] ||
                           s->y[l].shape[3] != s->x[0].shape[3]))
            return load_error(s, "layer %d: x and y must be [P, D], the same in every layer", l);
    }
    return 0;
}

/* P and N from the files and the options. */
static int resolve_lengths(attn_kvcache_streams *s, int has_hidden, int64_t prompt,
                           int64_t new_tokens)
{
    const int64_t T = s->q[0].shape[1];
    if (has_hidden && prompt && prompt != s->x[0].shape[1])
        return load_error(s, "--prompt %lld differs from the rows of x_0.npy (%lld)",
                          (long long)prompt, (long long)s->x[0].shape[1]);
    s->prompt = prompt ? prompt : has_hidden ? s->x[0].shape[1] : 0;
    if (!s->prompt)
        return load_error(s, "the prompt length: give --prompt P (there is no x_0.npy)");
    if (s->prompt >= T)
        return load_error(s, "the prompt (%lld tokens) leaves no token to decode in q_0.npy",
                          (long long)s->prompt);
    if (new_tokens > T - s->prompt)
        return load_error(s, "--new: the files hold %lld tokens after the prompt",
                          (long long)(T - s->prompt));
    s->new_tokens = new_tokens ? new_tokens : T - s->prompt;
    s->hq = s->q[0].shape[2];
    s->hkv = s->k[0].shape[2];
    s->dk = s->q[0].shape[3];
    s->dv = s->v[0].shape[3];
    s->hidden = has_hidden ? s->x[0].shape[3] : 0;
    return 0;
}

int attn_kvcache_streams_load(const char *dir, int64_t prompt, int64_t new_tokens, int bf16,
                              attn_kvcache_streams *s)
{
    memset(s, 0, sizeof *s);
    char path[PATH_LEN];
    int layers = 0;
    while (layers < MAX_LAYERS && file_exists(dir, "q", layers, path))
        layers++;
    if (!layers) {
        fprintf(stderr, "attn decode: no stream files: %s/q_0.npy not found\n", dir);
        return -1;
    }
    const int has_hidden = file_exists(dir, "x", 0, path);
    if (streams_alloc(s, layers, 5 * layers))
        return load_error(s, "out of memory");
    static const char *const names[] = {"q", "k", "v", "x", "y"};
    attn_tensor *views[] = {s->q, s->k, s->v, s->x, s->y};
    for (int l = 0; l < layers; l++) {
        if (has_hidden != file_exists(dir, "x", l, path) ||
            has_hidden != file_exists(dir, "y", l, path))
            return load_error(s, "x_<l>.npy and y_<l>.npy go with every layer or none (layer "
                                 "%d)", l);
        for (int n = 0; n < (has_hidden ? 5 : 3); n++)
            if (load_one(s->owned, 5 * l + n, dir, names[n], l, bf16, &views[n][l])) {
                attn_kvcache_streams_free(s);
                return -1;
            }
    }
    if (check_shapes(s, has_hidden))
        return -1;
    return resolve_lengths(s, has_hidden, prompt, new_tokens);
}
