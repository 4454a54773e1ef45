/* transfer_train.c - one model of `attn transfer`: created under a seed, trained with AdamW on
 * mini-batches (a slice of the shuffled source examples with a slice of the shuffled labelled
 * target examples, which are few and so cycle; optionally first on the sources alone), then
 * measured on the test set: accuracy and the
 * attention weights averaged over their rows. */
#include "attn_rng.h"
#include "transfer_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shuffles' random streams (epoch e: + 2e for the sources, + 2e + 1 for the target), far
 * from those of the model's initialisation. */
#define SHUFFLE_STREAM ((uint64_t)0x5452414e53 << 24)

/* The batch buffers and the two permutations of one training run. */
typedef struct fit_buffers {
    int64_t bs, bt; /* rows per step: source, target */
    float *sx, *tx;
    uint8_t *sy, *ty;
    int64_t *ps, *pt;
} fit_buffers;

static void buffers_free(fit_buffers *b)
{
    free(b->sx);
    free(b->tx);
    free(b->sy);
    free(b->ty);
    free(b->ps);
    free(b->pt);
}

static int buffers_make(const attn_transfer_tool_set *s, int64_t batch, fit_buffers *b)
{
    memset(b, 0, sizeof *b);
    b->bs = batch < s->ns ? batch : s->ns;
    b->bt = batch < s->nt ? batch : s->nt;
    b->sx = malloc(sizeof *b->sx * (size_t)(b->bs * s->F));
    b->tx = malloc(sizeof *b->tx * (size_t)(b->bt * s->F));
    b->sy = malloc((size_t)(b->bs * s->K));
    b->ty = malloc((size_t)b->bt);
    b->ps = malloc(sizeof *b->ps * (size_t)s->ns);
    b->pt = malloc(sizeof *b->pt * (size_t)s->nt);
    if (b->sx && b->tx && b->sy && b->ty && b->ps && b->pt)
        return 0;
    buffers_free(b);
    return -1;
}

/* A uniform permutation of 0 .. n-1 into p (Fisher-Yates from one stream). */
static void shuffle(int64_t *p, int64_t n, uint64_t seed, uint64_t stream)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(attn_rng_unit(seed, stream, (uint64_t)i) * (double)(i + 1));
        j = j > i ? i : j;
        const int64_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

/* Rows perm[(first + r) mod n], r < rows, of x (width F) and y (width w) into bx and by. */
static void gather(const float *x, const uint8_t *y, int64_t F, int64_t w, const int64_t *perm,
                   int64_t n, int64_t first, int64_t rows, float *bx, uint8_t *by)
{
    for (int64_t r = 0; r < rows; r++) {
        const int64_t i = perm[(first + r) % n];
        memcpy(bx + r * F, x + i * F, sizeof *bx * (size_t)F);
        memcpy(by + r * w, y + i * w, (size_t)w);
    }
}

/* The training loop: source_epochs passes over the source examples with the target term left
 * out (the source classifiers are trained first, as "available" classifiers), then epochs
 * passes with it. ATTN_OK or the failing status. */
static attn_status train(attn_transfer *t, const attn_transfer_tool_train *tr,
                         const attn_transfer_tool_set *s, uint64_t seed, fit_buffers *b)
{
    const attn_model_tool_array *a = s->a;
    attn_model_adamw opt = attn_model_adamw_default();
    opt.lr = tr->lr;
    opt.weight_decay = tr->weight_decay;
    opt.clip_norm = tr->clip;
    const int64_t steps = (s->ns + b->bs - 1) / b->bs;
    for (int64_t e = 0; e < tr->source_epochs + tr->epochs; e++) {
        shuffle(b->ps, s->ns, seed, SHUFFLE_STREAM + 2 * (uint64_t)e);
        shuffle(b->pt, s->nt, seed, SHUFFLE_STREAM + 2 * (uint64_t)e + 1);
        for (int64_t j = 0; j < steps; j++) {
            /* The last step of an epoch takes the sources that are left. */
            const int64_t ns = j * b->bs + b->bs <= s->ns ? b->bs : s->ns - j * b->bs;
            gather(a[ATTN_TRANSFER_TOOL_SOURCE_X].data, a[ATTN_TRANSFER_TOOL_SOURCE_Y].data, s->F,
                   s->K, b->ps, s->ns, j * b->bs, ns, b->sx, b->sy);
            gather(a[ATTN_TRANSFER_TOOL_TARGET_X].data, a[ATTN_TRANSFER_TOOL_TARGET_Y].data, s->F,
                   1, b->pt, s->nt, (e * steps + j) * b->bt, b->bt, b->tx, b->ty);
            const attn_transfer_batch batch = {.n_source = ns, .n_target = b->bt,
                                               .x_source = b->sx, .y_source = b->sy,
                                               .x_target = b->tx, .y_target = b->ty,
                                               .source_only = e < tr->source_epochs};
            const attn_status st = attn_transfer_train_step(t, &batch, &opt, NULL, NULL);
            if (st != ATTN_OK)
                return st;
        }
    }
    return ATTN_OK;
}

/* Accuracy on the test set and, where alpha is not NULL, the weights' mean over their rows.
 * 0, or the exit code (printed). */
static int measure(const char *cmd, attn_transfer *t, const attn_transfer_tool_set *s,
                   attn_transfer_tool_score *score, double *alpha)
{
    const int64_t n = s->ne, K = s->K, rows = attn_transfer_alpha_rows(t, n);
    float *prob = malloc(sizeof *prob * (size_t)n);
    float *al = alpha ? malloc(sizeof *al * (size_t)(rows * K)) : NULL;
    if (!prob || (alpha && !al)) {
        free(prob);
        free(al);
        fprintf(stderr, "attn %s: out of memory measuring %lld test examples\n", cmd,
                (long long)n);
        return 1;
    }
    const attn_status st =
        attn_transfer_predict(t, n, s->a[ATTN_TRANSFER_TOOL_TEST_X].data, prob, al);
    if (st == ATTN_OK) {
        const uint8_t *y = s->a[ATTN_TRANSFER_TOOL_TEST_Y].data;
        int64_t right = 0;
        for (int64_t i = 0; i < n; i++)
            right += (prob[i] > 0.5f) == (y[i] != 0);
        score->accuracy = (double)right / (double)n;
        for (int64_t k = 0; alpha && k < K; k++) {
            double sum = 0;
            for (int64_t r = 0; r < rows; r++)
                sum += al[r * K + k];
            alpha[k] = sum / (double)rows;
        }
    }
    free(prob);
    free(al);
    return st == ATTN_OK ? 0 : attn_model_tool_lib_error(cmd, "predict", st);
}

int attn_transfer_tool_fit(const char *cmd, attn_backend *be, const attn_transfer_config *cfg,
                           const attn_transfer_tool_train *tr, const attn_transfer_tool_set *s,
                           uint64_t seed, attn_transfer_tool_score *score, double *alpha)
{
    attn_transfer *t = NULL;
    fit_buffers b;
    const attn_status st = attn_transfer_create(be, cfg, seed, &t);
    if (st != ATTN_OK)
        return attn_model_tool_lib_error(cmd, "create", st);
    if (buffers_make(s, tr->batch, &b)) {
        attn_transfer_free(t);
        fprintf(stderr, "attn %s: out of memory\n", cmd);
        return 1;
    }
    const attn_status ts = train(t, tr, s, seed, &b);
    const int rc = ts != ATTN_OK ? attn_model_tool_lib_error(cmd, "train", ts)
                                 : measure(cmd, t, s, score, alpha);
    buffers_free(&b);
    attn_transfer_free(t);
    return rc;
}
