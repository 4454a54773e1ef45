/* transfer_planted.c - the transfer benchmark's generator (transfer_planted.h). The truth comes
 * from one parameter stream; each example owns a stream of its split and each of its draws a
 * fixed counter slot, so an example depends on neither n nor the other examples. */
#include "transfer_planted.h"

#include "attn_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A split's streams start at split << 40; the truth's stream follows the three splits. */
#define SPLIT_SHIFT 40
#define TRUTH_STREAM ((uint64_t)3 << SPLIT_SHIFT)
/* Slots of the truth's stream (a Gaussian takes two consecutive slots). */
#define SLOT_MEAN ((uint64_t)0)
#define SLOT_DIR ((uint64_t)1 << 40)
#define SLOT_PICK ((uint64_t)2 << 40)
#define SLOT_WEIGHT ((uint64_t)3 << 40)
/* Slots of an example's stream. */
#define SLOT_DOMAIN ((uint64_t)0)
#define SLOT_X ((uint64_t)1 << 20)    /* + 2 f: feature f's noise */
#define SLOT_FLIP ((uint64_t)1 << 40) /* + k: label k's flip */

#define MAX_FEATURES ((int64_t)1 << 16)
#define MAX_SOURCES ((int64_t)1 << 12)
#define MAX_DOMAINS ((int64_t)1 << 8)

int attn_transfer_planted_check(const attn_transfer_planted *p, char *err, size_t n)
{
    if (p->features < 1 || p->features > MAX_FEATURES)
        snprintf(err, n, "--features %lld: must be in [1, %lld]", (long long)p->features,
                 (long long)MAX_FEATURES);
    else if (p->domains < 1 || p->domains > MAX_DOMAINS)
        snprintf(err, n, "--domains %lld: must be in [1, %lld]", (long long)p->domains,
                 (long long)MAX_DOMAINS);
    else if (p->sources < 1 || p->sources > MAX_SOURCES)
        snprintf(err, n, "--sources %lld: must be in [1, %lld]", (long long)p->sources,
                 (long long)MAX_SOURCES);
    else if (p->related < 1 || p->related > p->sources)
        snprintf(err, n, "--related %lld: must be in [1, sources = %lld]", (long long)p->related,
                 (long long)p->sources);
    else if (!(p->own >= 0 && p->own < 1))
        snprintf(err, n, "--own %g: must be in [0, 1)", p->own);
    else if (!(p->separation >= 0 && p->separation <= 1e6))
        snprintf(err, n, "--separation %g: must be in [0, 1e6]", p->separation);
    else if (!(p->noise >= 0 && p->noise < 0.5))
        snprintf(err, n, "--noise %g: must be in [0, 0.5)", p->noise);
    else
        return 0;
    return -1;
}

/* A standard normal from two slots (Box-Muller; 1 - u keeps the logarithm finite). */
static double gauss(uint64_t seed, uint64_t stream, uint64_t slot)
{
    const double u = attn_rng_unit(seed, stream, slot), v = attn_rng_unit(seed, stream, slot + 1);
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

/* Uniform integer in [0, m) at a slot. */
static int64_t draw(uint64_t seed, uint64_t stream, uint64_t slot, int64_t m)
{
    const int64_t r = (int64_t)(attn_rng_unit(seed, stream, slot) * (double)m);
    return r < m ? r : m - 1; /* unit * m can round up to m */
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Which R of the K sources the target mixes (a partial Fisher-Yates shuffle, then sorted), and
 * their weights: uniform in [0.5, 1.5), scaled to sum to 1 - own. */
static void pick_related(const attn_transfer_planted *p, attn_transfer_truth *t, int64_t *perm)
{
    for (int64_t k = 0; k < t->K; k++)
        perm[k] = k;
    for (int64_t j = 0; j < t->R; j++) {
        const int64_t r = j + draw(p->seed, TRUTH_STREAM, SLOT_PICK + (uint64_t)j, t->K - j);
        const int64_t s = perm[j];
        perm[j] = perm[r];
        perm[r] = s;
    }
    for (int64_t k = 0, j = 0; k < t->K; k++) /* the picked ones in increasing order */
        for (int64_t i = 0; i < t->R; i++)
            if (perm[i] == k)
                t->related[j++] = k;
    double sum = 0;
    for (int64_t j = 0; j < t->R; j++)
        sum += t->weight[j] =
            0.5 + attn_rng_unit(p->seed, TRUTH_STREAM, SLOT_WEIGHT + (uint64_t)j);
    for (int64_t j = 0; j < t->R; j++)
        t->weight[j] *= (1 - p->own) / sum;
}

/* Unit directions; the sources centred on the mean of their domains' means, the target (whose
 * own bias carries the whole offset) on domain 0's, so that every attribute is about half
 * positive where it is observed. */
static void directions(const attn_transfer_planted *p, attn_transfer_truth *t, double *centre)
{
    const int64_t F = t->F, first = t->D > 1 ? 1 : 0;
    for (int64_t k = 0; k <= t->K; k++) {
        double *a = t->dir + k * F;
        for (int64_t f = 0; f < F; f++)
            a[f] = gauss(p->seed, TRUTH_STREAM, SLOT_DIR + 2 * (uint64_t)(k * F + f));
        const double norm = sqrt(dot(a, a, F));
        for (int64_t f = 0; f < F; f++)
            a[f] = norm > 0 ? a[f] / norm : (f == 0);
    }
    memset(centre, 0, sizeof *centre * (size_t)F);
    for (int64_t d = first; d < t->D; d++)
        for (int64_t f = 0; f < F; f++)
            centre[f] += t->mean[d * F + f] / (double)(t->D - first);
    for (int64_t k = 0; k < t->K; k++)
        t->bias[k] = -dot(t->dir + k * F, centre, F);
    double z0 = t->own * dot(t->dir + t->K * F, t->mean, F);
    for (int64_t j = 0; j < t->R; j++)
        z0 += t->weight[j] * (dot(t->dir + t->related[j] * F, t->mean, F) + t->bias[t->related[j]]);
    t->bias[t->K] = -z0;
}

int attn_transfer_truth_make(const attn_transfer_planted *p, attn_transfer_truth *t)
{
    memset(t, 0, sizeof *t);
    t->F = p->features;
    t->D = p->domains;
    t->K = p->sources;
    t->R = p->related;
    t->own = p->own;
    const size_t F = (size_t)t->F, K = (size_t)t->K;
    t->related = malloc(sizeof *t->related * (size_t)t->R);
    t->weight = malloc(sizeof *t->weight * (size_t)t->R);
    t->mean = malloc(sizeof *t->mean * (size_t)t->D * F);
    t->dir = malloc(sizeof *t->dir * (K + 1) * F);
    t->bias = malloc(sizeof *t->bias * (K + 1));
    int64_t *perm = malloc(sizeof *perm * K);
    double *centre = malloc(sizeof *centre * F);
    const int ok = t->related && t->weight && t->mean && t->dir && t->bias && perm && centre;
    if (ok) {
        const double scale = p->separation / sqrt((double)F);
        for (int64_t i = 0; i < t->D * t->F; i++)
            t->mean[i] = scale * gauss(p->seed, TRUTH_STREAM, SLOT_MEAN + 2 * (uint64_t)i);
        pick_related(p, t, perm);
        directions(p, t, centre);
    }
    free(perm);
    free(centre);
    if (!ok)
        attn_transfer_truth_free(t);
    return ok ? 0 : -1;
}

void attn_transfer_truth_free(attn_transfer_truth *t)
{
    free(t->related);
    free(t->weight);
    free(t->mean);
    free(t->dir);
    free(t->bias);
    memset(t, 0, sizeof *t);
}

/* Attribute k's score a_k . x + b_k (k = K: the target's own part, without its bias). */
static double score(const attn_transfer_truth *t, int64_t k, const double *x)
{
    return dot(t->dir + k * t->F, x, t->F) + (k < t->K ? t->bias[k] : 0);
}

/* The label, flipped with probability noise by the slot's draw. */
static uint8_t label(const attn_transfer_planted *p, uint64_t stream, uint64_t k, double z)
{
    const int flip = attn_rng_unit(p->seed, stream, SLOT_FLIP + k) < p->noise;
    return (uint8_t)((z > 0) != flip);
}

/* Example i of the split into x (F values) and y (K labels, or 1); xd: F doubles of scratch. */
static void one_example(const attn_transfer_planted *p, const attn_transfer_truth *t,
                        attn_transfer_split split, int64_t i, float *x, uint8_t *y, double *xd)
{
    const uint64_t stream = ((uint64_t)split << SPLIT_SHIFT) + (uint64_t)i;
    const int64_t F = t->F;
    const int64_t d = split != ATTN_TRANSFER_SPLIT_SOURCE || t->D == 1
                          ? 0
                          : 1 + draw(p->seed, stream, SLOT_DOMAIN, t->D - 1);
    for (int64_t f = 0; f < F; f++) {
        xd[f] = t->mean[d * F + f] + gauss(p->seed, stream, SLOT_X + 2 * (uint64_t)f);
        x[f] = (float)xd[f];
    }
    if (split == ATTN_TRANSFER_SPLIT_SOURCE) {
        for (int64_t k = 0; k < t->K; k++)
            y[k] = label(p, stream, (uint64_t)k, score(t, k, xd));
        return;
    }
    double z = t->own * score(t, t->K, xd) + t->bias[t->K];
    for (int64_t j = 0; j < t->R; j++)
        z += t->weight[j] * score(t, t->related[j], xd);
    y[0] = label(p, stream, 0, z);
}

int attn_transfer_planted_generate(const attn_transfer_planted *p, const attn_transfer_truth *t,
                                   attn_transfer_split split, int64_t n, float *x, uint8_t *y)
{
    double *xd = malloc(sizeof *xd * (size_t)t->F);
    if (!xd)
        return -1;
    const int64_t ny = split == ATTN_TRANSFER_SPLIT_SOURCE ? t->K : 1;
    for (int64_t i = 0; i < n; i++)
        one_example(p, t, split, i, x + i * t->F, y + i * ny, xd);
    free(xd);
    return 0;
}
