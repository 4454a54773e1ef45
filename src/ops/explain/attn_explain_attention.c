/* attn_explain_attention.c - the attention-based scores: attention received (All_Attention,
 * Last_Attention: the sum over layers, heads and the sequence's query rows of A[l, h, i, j])
 * and attention rollout (Abnar & Zuidema 2020: row [CLS] of Ahat^(L) ... Ahat^(1)); and the
 * per-row Ahat matrices that rollout and flow (attn_explain_flow.c) share. The model runs a
 * few rows per call so that the attention maps [L, rows, H, S, S] stay within a bound. */
#include "attn_explain_impl.h"

#include <stdlib.h>
#include <string.h>

#include "attn_backend_impl.h"

/* Bytes of attention maps one model call may write (at least one row is always run). */
#define MAPS_BUDGET ((int64_t)64 << 20)

/* One model call's outputs over up to `rows` rows of the batch. */
typedef struct maps {
    int64_t rows, L, H, S, C;
    float *logits; /* [rows, C]: required by the forward, unused */
    float *att;    /* [L, rows, H, S, S] */
    float *ks;     /* [L, rows, S, H], or NULL */
    double *acc;   /* [S]: one row's sums */
} maps;

static void maps_free(maps *mp)
{
    free(mp->logits);
    free(mp->att);
    free(mp->ks);
    free(mp->acc);
    memset(mp, 0, sizeof *mp);
}

static attn_status maps_new(const attn_model *m, const attn_model_input *in, int want_ks,
                            maps *mp)
{
    const attn_model_config *c = attn_model_get_config(m);
    memset(mp, 0, sizeof *mp);
    mp->L = c->num_layers;
    mp->H = c->num_heads;
    mp->S = in->seq;
    mp->C = c->num_labels;
    const int64_t per_row = mp->L * mp->H * mp->S * mp->S * (int64_t)sizeof(float);
    mp->rows = MAPS_BUDGET / per_row;
    mp->rows = mp->rows < 1 ? 1 : mp->rows > in->batch ? in->batch : mp->rows;
    mp->logits = malloc((size_t)(mp->rows * mp->C) * sizeof(float));
    mp->att = malloc((size_t)(mp->rows * per_row));
    mp->acc = malloc((size_t)mp->S * sizeof(double));
    if (want_ks)
        mp->ks = malloc((size_t)(mp->L * mp->rows * mp->S * mp->H) * sizeof(float));
    if (mp->logits && mp->att && mp->acc && (mp->ks || !want_ks))
        return ATTN_OK;
    maps_free(mp);
    return attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                     "explain: out of memory for the attention maps of a sequence of %lld",
                     (long long)in->seq);
}

/* Rows b0 .. b0 + n of `in` as a batch of their own (they share its arrays). */
static attn_model_input rows_view(const attn_model *m, const attn_model_input *in, int64_t b0,
                                  int64_t n)
{
    const int64_t S = in->seq, d = attn_model_get_config(m)->hidden_size;
    attn_model_input v = {.batch = n, .seq = S};
    v.ids = in->ids ? in->ids + b0 * S : NULL;
    v.attention_mask = in->attention_mask ? in->attention_mask + b0 * S : NULL;
    v.token_types = in->token_types ? in->token_types + b0 * S : NULL;
    v.embeddings = in->embeddings ? in->embeddings + b0 * S * d : NULL;
    return v;
}

/* The forward of rows b0 .. b0 + n (n <= mp->rows) into mp: key_score when mp has room for
 * it, the maps when want_att. */
static attn_status maps_run(attn_model *m, const attn_model_input *in, int64_t b0, int64_t n,
                            int want_att, maps *mp)
{
    const attn_model_input v = rows_view(m, in, b0, n);
    const attn_model_outputs o = {.logits = mp->logits, .attentions = want_att ? mp->att : NULL,
                                  .key_score = mp->ks};
    return attn_model_forward(m, &v, &o);
}

/* A[l, r, h, i, j] of the n rows of the last maps_run. */
static const float *map_at(const maps *mp, int64_t n, int64_t l, int64_t r, int64_t h)
{
    return mp->att + (((l * n + r) * mp->H + h) * mp->S) * mp->S;
}

static int row_padded(const attn_model_input *in, int64_t b)
{
    for (int64_t s = 0; s < in->seq; s++)
        if (!attn_explain_is_token(in, b, s))
            return 1;
    return 0;
}

/* ---- attention received --------------------------------------------------------------------- */

/* Scores of row r (row b of the batch) of the last maps_run over n rows: key_score sums every
 * query row, padded ones too, so a padded row sums the maps over its token rows instead. */
static void received_row(const attn_model_input *in, maps *mp, int64_t n, int64_t r, int64_t b,
                         int64_t l0, float *scores)
{
    const int64_t S = mp->S, H = mp->H;
    const int padded = row_padded(in, b);
    double *acc = mp->acc;
    for (int64_t j = 0; j < S; j++)
        acc[j] = 0.0;
    for (int64_t l = l0; l < mp->L; l++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t j = 0; j < S && !padded; j++)
                acc[j] += mp->ks[((l * n + r) * S + j) * H + h];
            for (int64_t i = 0; i < S && padded; i++) {
                const float *row = map_at(mp, n, l, r, h) + i * S;
                for (int64_t j = 0; j < S && attn_explain_is_token(in, b, i); j++)
                    acc[j] += row[j];
            }
        }
    for (int64_t j = 0; j < S; j++)
        scores[b * S + j] = attn_explain_is_token(in, b, j) ? (float)acc[j] : 0.0f;
}

attn_status attn_explain_attention(attn_model *m, const attn_model_input *in, int last_only,
                                   float *scores)
{
    maps mp;
    attn_status st = maps_new(m, in, 1, &mp);
    for (int64_t b0 = 0; st == ATTN_OK && b0 < in->batch; b0 += mp.rows) {
        const int64_t n = in->batch - b0 < mp.rows ? in->batch - b0 : mp.rows;
        int any_padded = 0;
        for (int64_t r = 0; r < n; r++)
            any_padded |= row_padded(in, b0 + r);
        st = maps_run(m, in, b0, n, any_padded, &mp);
        for (int64_t r = 0; st == ATTN_OK && r < n; r++)
            received_row(in, &mp, n, r, b0 + r, last_only ? mp.L - 1 : 0, scores);
    }
    maps_free(&mp);
    return st;
}

/* ---- Ahat, per row -------------------------------------------------------------------------- */

/* Row b's nodes (attn_explain_impl.h) into pos; returns their count. */
static int64_t row_nodes(const attn_model_input *in, int64_t b, int64_t *pos)
{
    int64_t n = 0;
    for (int64_t s = 0; s < in->seq; s++)
        if (s == 0 || attn_explain_is_token(in, b, s))
            pos[n++] = s;
    return n;
}

/* ahat [L, n, n] of row r of the last maps_run over `rows` rows. */
static void row_ahat(const maps *mp, int64_t rows, int64_t r, const int64_t *pos, int64_t n,
                     double *ahat)
{
    const int64_t S = mp->S, H = mp->H;
    for (int64_t l = 0; l < mp->L; l++)
        for (int64_t i = 0; i < n; i++) {
            double *row = ahat + (l * n + i) * n, sum = 0.0;
            for (int64_t k = 0; k < n; k++)
                row[k] = 0.0;
            for (int64_t h = 0; h < H; h++) {
                const float *a = map_at(mp, rows, l, r, h) + pos[i] * S;
                for (int64_t k = 0; k < n; k++)
                    row[k] += a[pos[k]];
            }
            for (int64_t k = 0; k < n; k++) {
                row[k] = 0.5 * row[k] / (double)H + (i == k ? 0.5 : 0.0);
                sum += row[k];
            }
            /* The maps' rows sum to 1 only up to f32 rounding (0 where no key is visible);
             * the identity half keeps sum >= 0.5. */
            for (int64_t k = 0; k < n; k++)
                row[k] /= sum;
        }
}

attn_status attn_explain_each_ahat(attn_model *m, const attn_model_input *in,
                                   attn_explain_ahat_fn fn, void *ctx)
{
    const int64_t S = in->seq, L = attn_model_get_config(m)->num_layers;
    maps mp;
    attn_status st = maps_new(m, in, 0, &mp);
    if (st != ATTN_OK)
        return st;
    int64_t *pos = malloc((size_t)S * sizeof(int64_t));
    double *ahat = malloc((size_t)(L * S * S) * sizeof(double));
    if (!pos || !ahat)
        st = attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                       "explain: out of memory for %lld layers of %lld x %lld", (long long)L,
                       (long long)S, (long long)S);
    for (int64_t b0 = 0; st == ATTN_OK && b0 < in->batch; b0 += mp.rows) {
        const int64_t n = in->batch - b0 < mp.rows ? in->batch - b0 : mp.rows;
        st = maps_run(m, in, b0, n, 1, &mp);
        for (int64_t r = 0; st == ATTN_OK && r < n; r++) {
            const int64_t nn = row_nodes(in, b0 + r, pos);
            row_ahat(&mp, n, r, pos, nn, ahat);
            st = fn(ctx, b0 + r, pos, nn, ahat);
        }
    }
    free(pos);
    free(ahat);
    maps_free(&mp);
    return st;
}

/* ---- rollout -------------------------------------------------------------------------------- */

typedef struct rollout_ctx {
    const attn_model_input *in;
    int64_t L;
    float *scores;
    double *r, *next; /* [S] each */
} rollout_ctx;

/* Row [CLS] of Ahat^(L) ... Ahat^(1) as a vector times the matrices from the left: L n^2
 * instead of the (L - 1) n^3 of the full product. */
static attn_status rollout_row(void *ctx, int64_t b, const int64_t *pos, int64_t n,
                               const double *ahat)
{
    rollout_ctx *c = ctx;
    const int64_t S = c->in->seq;
    double *r = c->r, *next = c->next;
    for (int64_t k = 0; k < n; k++)
        r[k] = k == 0;
    for (int64_t l = c->L - 1; l >= 0; l--) {
        for (int64_t k = 0; k < n; k++)
            next[k] = 0.0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < n; k++)
                next[k] += r[i] * ahat[(l * n + i) * n + k];
        double *t = r;
        r = next;
        next = t;
    }
    for (int64_t s = 0; s < S; s++)
        c->scores[b * S + s] = 0.0f;
    for (int64_t k = 0; k < n; k++)
        if (attn_explain_is_token(c->in, b, pos[k]))
            c->scores[b * S + pos[k]] = (float)r[k];
    return ATTN_OK;
}

attn_status attn_explain_rollout(attn_model *m, const attn_model_input *in, float *scores)
{
    rollout_ctx c = {.in = in, .L = attn_model_get_config(m)->num_layers, .scores = scores};
    c.r = malloc((size_t)in->seq * sizeof(double));
    c.next = malloc((size_t)in->seq * sizeof(double));
    const attn_status st =
        c.r && c.next ? attn_explain_each_ahat(m, in, rollout_row, &c)
                      : attn_fail(ATTN_ERR_OUT_OF_MEMORY, "explain: out of memory (rollout)");
    free(c.r);
    free(c.next);
    return st;
}
