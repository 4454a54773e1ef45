/* check_explain_attention.c - the attention-based saliency methods through attn_explain, on
 * every backend of the build (one the build or the machine lacks is skipped), on the tiny
 * model and padded batch of model_fixture.h:
 *
 * - all_attention / last_attention equal the column sums, over the sequence's query rows, of
 *   the model's `attentions` output and of the f64 reference's; each row's scores sum to
 *   L H n (H n for the last layer) over its n tokens, since every row of A sums to 1;
 * - rollout is non-negative, sums to 1 over a row's tokens and equals row [CLS] of the full
 *   matrix product Ahat^(L) ... Ahat^(1) taken here in double from the `attentions` output
 *   (and from the reference's);
 * - flow, for 1, 2 and 3 layers, equals a max flow computed here (Edmonds-Karp on the dense
 *   residual graph) and lies between the widest path's bottleneck and min(1, the capacity out
 *   of the source); with 1 layer it is Ahat[CLS, j] (a single edge), with 2 it is
 *   sum_i min(Ahat1[i, j], Ahat2[CLS, i]) (edge-disjoint two-edge paths);
 * - padding positions score exactly 0 for every method, a row of padding only scores 0
 *   everywhere, and a row explained alone scores as it does in the batch;
 * - with position 0 ([CLS]) masked, every score is finite and rollout keeps 2^-L on it. */
#include "attn/attn.h"
#include "check_run.h"
#include "explain_fixture.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SEED = 11, B = MODEL_FX_B, S = MODEL_FX_S, MAX_L = 3 };
enum { MAX_NODES = (MAX_L + 1) * S };

/* The model's maps against sums taken here from them: only f32 rounding of the scores (and
 * key_score's own summation order) differs. */
#define SELF_TOL 1e-5
/* Against the f64 reference's maps: the forward's bound (check_model_grad.c's FWD_TOL). */
#define REF_TOL 1e-4

static const attn_explain_method methods[] = {ATTN_EXPLAIN_ALL_ATTENTION,
                                              ATTN_EXPLAIN_LAST_ATTENTION, ATTN_EXPLAIN_ROLLOUT,
                                              ATTN_EXPLAIN_FLOW};
enum { N_METHODS = sizeof methods / sizeof methods[0] };

/* The fixture's model with `layers` layers. */
static attn_model *model_of(attn_backend *be, int64_t layers)
{
    attn_model_config cfg = model_fx_config();
    cfg.num_layers = layers;
    attn_model *m = NULL;
    ck_assert_msg(attn_model_create(be, &cfg, SEED, &m) == ATTN_OK, "%s", attn_last_error());
    model_fx_randomize(m, SEED);
    return m;
}

/* The model's attention maps [L, B, H, S, S] of `in`, as doubles. */
static double *model_maps(attn_model *m, const attn_model_input *in)
{
    const attn_model_config *cfg = attn_model_get_config(m);
    attn_model_outputs o = model_fx_outputs_new(cfg, B, S);
    ck_assert_msg(attn_model_forward(m, in, &o) == ATTN_OK, "%s", attn_last_error());
    const int64_t n = model_fx_sizes_of(cfg, B, S).attentions;
    double *a = malloc((size_t)n * sizeof(double));
    ck_assert_ptr_nonnull(a);
    for (int64_t i = 0; i < n; i++)
        a[i] = o.attentions[i];
    model_fx_outputs_free(&o);
    return a;
}

/* The f64 reference's maps of `in` (caller frees). */
static double *ref_maps(attn_model *m, const attn_model_input *in)
{
    const attn_model_config *cfg = attn_model_get_config(m);
    attn_ref_model_out r = model_fx_ref_new(cfg, B, S);
    model_fx_ref_forward(m, in, &r);
    double *a = r.attentions;
    r.attentions = NULL;
    model_fx_ref_free(&r);
    return a;
}

static int is_token(const attn_model_input *in, int64_t b, int64_t s)
{
    return !in->attention_mask || in->attention_mask[b * S + s];
}

static int64_t tokens_of(const attn_model_input *in, int64_t b)
{
    int64_t n = 0;
    for (int64_t s = 0; s < S; s++)
        n += is_token(in, b, s);
    return n;
}

/* A[l, b, h, i, j] of maps of a batch of B x S on H heads. */
static double map(const double *A, int64_t H, int64_t l, int64_t b, int64_t h, int64_t i,
                  int64_t j)
{
    return A[(((l * B + b) * H + h) * S + i) * S + j];
}

static void expect_zero_padding(const attn_model_input *in, const float *s, const char *what)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < S; j++)
            ck_assert_msg(is_token(in, b, j) || s[b * S + j] == 0.0f,
                          "%s: padding [%lld, %lld] scores %g", what, (long long)b,
                          (long long)j, (double)s[b * S + j]);
}

/* ---- attention received --------------------------------------------------------------------- */

/* sum over layers l0 .. L, heads and the row's token query rows of A[l, b, h, i, j]. */
static void received(const attn_model_input *in, const double *A, int64_t L, int64_t H,
                     int64_t l0, double *want)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < S; j++) {
            double s = 0.0;
            for (int64_t l = l0; l < L && is_token(in, b, j); l++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t i = 0; i < S; i++)
                        s += is_token(in, b, i) ? map(A, H, l, b, h, i, j) : 0.0;
            want[b * S + j] = s;
        }
}

static void expect_received(const attn_model_input *in, const float *got, const double *A,
                            int64_t L, int64_t H, int64_t l0, double tol, const char *what)
{
    double want[B * S];
    received(in, A, L, H, l0, want);
    model_fx_expect_close(got, want, B * S, tol, what);
}

START_TEST(attention_received)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    const char *name = model_fx_backends[_i];
    attn_model *m = model_of(be, 2);
    const int64_t L = 2, H = attn_model_get_config(m)->num_heads;
    model_fx_batch fb;
    model_fx_batch_fill(&fb, SEED);
    float *all = explain_fx_run(m, &fb.in, NULL, ATTN_EXPLAIN_ALL_ATTENTION, NULL);
    float *last = explain_fx_run(m, &fb.in, NULL, ATTN_EXPLAIN_LAST_ATTENTION, NULL);
    double *A = model_maps(m, &fb.in), *R = ref_maps(m, &fb.in);
    char what[96];
    snprintf(what, sizeof what, "%s: all_attention vs the model's maps", name);
    expect_received(&fb.in, all, A, L, H, 0, SELF_TOL, what);
    snprintf(what, sizeof what, "%s: last_attention vs the model's maps", name);
    expect_received(&fb.in, last, A, L, H, L - 1, SELF_TOL, what);
    snprintf(what, sizeof what, "%s: all_attention vs the reference's maps", name);
    expect_received(&fb.in, all, R, L, H, 0, REF_TOL, what);
    snprintf(what, sizeof what, "%s: last_attention vs the reference's maps", name);
    expect_received(&fb.in, last, R, L, H, L - 1, REF_TOL, what);
    for (int64_t b = 0; b < B; b++) {
        double sa = 0.0, sl = 0.0;
        for (int64_t j = 0; j < S; j++) {
            sa += all[b * S + j];
            sl += last[b * S + j];
        }
        const double n = (double)tokens_of(&fb.in, b);
        ck_assert_msg(fabs(sa - L * H * n) <= SELF_TOL * L * H * n && fabs(sl - H * n) <=
                      SELF_TOL * H * n, "%s: row %lld sums to %.9g (all) and %.9g (last), not "
                      "%g and %g", name, (long long)b, sa, sl, L * H * n, H * n);
    }
    expect_zero_padding(&fb.in, all, "all_attention");
    expect_zero_padding(&fb.in, last, "last_attention");
    free(all);
    free(last);
    free(A);
    free(R);
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

/* ---- Ahat and rollout ----------------------------------------------------------------------- */

/* Row b's token positions into pos; returns their count. */
static int64_t token_positions(const attn_model_input *in, int64_t b, int64_t *pos)
{
    int64_t n = 0;
    for (int64_t s = 0; s < S; s++)
        if (is_token(in, b, s))
            pos[n++] = s;
    return n;
}

/* Ahat^(l+1) [n, n] of row b on its tokens: 0.5 mean_h A + 0.5 I, rows re-normalised. */
static void ahat_of(const double *A, int64_t H, int64_t l, int64_t b, const int64_t *pos,
                    int64_t n, double *out)
{
    for (int64_t i = 0; i < n; i++) {
        double sum = 0.0;
        for (int64_t k = 0; k < n; k++) {
            double a = 0.0;
            for (int64_t h = 0; h < H; h++)
                a += map(A, H, l, b, h, pos[i], pos[k]);
            out[i * n + k] = 0.5 * a / (double)H + 0.5 * (i == k);
            sum += out[i * n + k];
        }
        for (int64_t k = 0; k < n; k++)
            out[i * n + k] /= sum;
    }
}

/* Rollout scores [B, S] from maps: R = Ahat^(L) ... Ahat^(1) as full n x n products. */
static void rollout_of(const attn_model_input *in, const double *A, int64_t L, int64_t H,
                       double *want)
{
    for (int64_t b = 0; b < B; b++) {
        int64_t pos[S];
        const int64_t n = token_positions(in, b, pos);
        double R[S * S], Ah[S * S], P[S * S];
        ahat_of(A, H, 0, b, pos, n, R);
        for (int64_t l = 1; l < L; l++) {
            ahat_of(A, H, l, b, pos, n, Ah);
            for (int64_t i = 0; i < n; i++)
                for (int64_t k = 0; k < n; k++) {
                    double s = 0.0;
                    for (int64_t t = 0; t < n; t++)
                        s += Ah[i * n + t] * R[t * n + k];
                    P[i * n + k] = s;
                }
            memcpy(R, P, sizeof P);
        }
        for (int64_t j = 0; j < S; j++)
            want[b * S + j] = 0.0;
        for (int64_t k = 0; k < n; k++)
            want[b * S + pos[k]] = R[k]; /* row 0: [CLS] */
    }
}

START_TEST(rollout)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    const char *name = model_fx_backends[_i];
    model_fx_batch fb;
    model_fx_batch_fill(&fb, SEED);
    for (int64_t L = 1; L <= MAX_L; L++) {
        attn_model *m = model_of(be, L);
        const int64_t H = attn_model_get_config(m)->num_heads;
        float *got = explain_fx_run(m, &fb.in, NULL, ATTN_EXPLAIN_ROLLOUT, NULL);
        double *A = model_maps(m, &fb.in), *R = ref_maps(m, &fb.in), want[B * S];
        char what[96];
        snprintf(what, sizeof what, "%s, %lld layers: rollout vs the model's maps", name,
                 (long long)L);
        rollout_of(&fb.in, A, L, H, want);
        model_fx_expect_close(got, want, B * S, SELF_TOL, what);
        snprintf(what, sizeof what, "%s, %lld layers: rollout vs the reference's maps", name,
                 (long long)L);
        rollout_of(&fb.in, R, L, H, want);
        model_fx_expect_close(got, want, B * S, REF_TOL, what);
        for (int64_t b = 0; b < B; b++) {
            double sum = 0.0;
            for (int64_t j = 0; j < S; j++) {
                ck_assert_msg(got[b * S + j] >= 0.0f, "%s: rollout [%lld, %lld] = %g < 0", name,
                              (long long)b, (long long)j, (double)got[b * S + j]);
                sum += got[b * S + j];
            }
            ck_assert_msg(fabs(sum - 1.0) <= SELF_TOL, "%s, %lld layers: row %lld of rollout "
                          "sums to %.9g", name, (long long)L, (long long)b, sum);
        }
        expect_zero_padding(&fb.in, got, "rollout");
        free(got);
        free(A);
        free(R);
        attn_model_free(m);
    }
    attn_backend_close(be);
}
END_TEST

/* ---- flow ----------------------------------------------------------------------------------- */

/* Max flow from node s to node t of a dense capacity matrix [V, V] (consumed as the residual
 * graph) by Edmonds-Karp: shortest augmenting paths until none has residual capacity. */
static double max_flow(double *cap, int64_t V, int64_t s, int64_t t)
{
    double total = 0.0;
    for (;;) {
        int64_t prev[MAX_NODES], queue[MAX_NODES], head = 0, tail = 0;
        for (int64_t v = 0; v < V; v++)
            prev[v] = -1;
        prev[s] = s;
        queue[tail++] = s;
        while (head < tail && prev[t] < 0) {
            const int64_t u = queue[head++];
            for (int64_t v = 0; v < V; v++)
                if (prev[v] < 0 && cap[u * V + v] > 1e-15) {
                    prev[v] = u;
                    queue[tail++] = v;
                }
        }
        if (prev[t] < 0)
            return total;
        double push = INFINITY;
        for (int64_t v = t; v != s; v = prev[v])
            push = fmin(push, cap[prev[v] * V + v]);
        for (int64_t v = t; v != s; v = prev[v]) {
            cap[prev[v] * V + v] -= push;
            cap[v * V + prev[v]] += push;
        }
        total += push;
    }
}

/* The flow graph of one row: ahat [L, n, n]; node (l, k) is l n + k. */
typedef struct flow_row {
    int64_t L, n;
    double ahat[MAX_L * S * S];
} flow_row;

static double flow_exact(const flow_row *f, int64_t j)
{
    const int64_t n = f->n, V = (f->L + 1) * n;
    static double cap[MAX_NODES * MAX_NODES];
    memset(cap, 0, (size_t)(V * V) * sizeof(double));
    for (int64_t l = 1; l <= f->L; l++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < n; k++)
                cap[((l - 1) * n + k) * V + l * n + i] = f->ahat[((l - 1) * n + i) * n + k];
    return max_flow(cap, V, j, f->L * n);
}

/* The largest bottleneck of a path (0, j) -> (L, 0): a flow the max flow is at least. */
static double widest_path(const flow_row *f, int64_t j)
{
    const int64_t n = f->n;
    double w[S], next[S];
    for (int64_t k = 0; k < n; k++)
        w[k] = k == j ? INFINITY : 0.0;
    for (int64_t l = 0; l < f->L; l++) {
        for (int64_t i = 0; i < n; i++) {
            next[i] = 0.0;
            for (int64_t k = 0; k < n; k++)
                next[i] = fmax(next[i], fmin(w[k], f->ahat[(l * n + i) * n + k]));
        }
        memcpy(w, next, sizeof w);
    }
    return w[0];
}

/* Checks row b of the flow scores against the row's graph f (pos: its token positions). */
static void expect_flow_row(const flow_row *f, const int64_t *pos, int64_t b, const float *got,
                            const char *name)
{
    const int64_t n = f->n, L = f->L;
    for (int64_t j = 0; j < n; j++) {
        const double g = got[b * S + pos[j]], exact = flow_exact(f, j);
        double source_cap = 0.0;
        for (int64_t i = 0; i < n; i++)
            source_cap += f->ahat[i * n + j];
        const double hi = fmin(1.0, source_cap), lo = widest_path(f, j);
        ck_assert_msg(fabs(g - exact) <= SELF_TOL && g >= lo - SELF_TOL && g <= hi + SELF_TOL,
                      "%s, %lld layers: flow [%lld, %lld] = %.9g; max flow here %.9g, bounds "
                      "[%.9g, %.9g]", name, (long long)L, (long long)b, (long long)pos[j], g,
                      exact, lo, hi);
        double closed = 0.0; /* the one- and two-layer forms */
        for (int64_t i = 0; L == 2 && i < n; i++)
            closed += fmin(f->ahat[i * n + j], f->ahat[(n + 0) * n + i]);
        if (L == 1)
            closed = f->ahat[j];
        ck_assert_msg(L > 2 || fabs(g - closed) <= SELF_TOL,
                      "%s, %lld layers: flow [%lld, %lld] = %.9g, closed form %.9g", name,
                      (long long)L, (long long)b, (long long)pos[j], g, closed);
    }
}

START_TEST(flow)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    const char *name = model_fx_backends[_i];
    model_fx_batch fb;
    model_fx_batch_fill(&fb, SEED);
    static flow_row f;
    for (int64_t L = 1; L <= MAX_L; L++) {
        attn_model *m = model_of(be, L);
        const int64_t H = attn_model_get_config(m)->num_heads;
        float *got = explain_fx_run(m, &fb.in, NULL, ATTN_EXPLAIN_FLOW, NULL);
        double *A = model_maps(m, &fb.in);
        for (int64_t b = 0; b < B; b++) {
            int64_t pos[S];
            f.L = L;
            f.n = token_positions(&fb.in, b, pos);
            for (int64_t l = 0; l < L; l++)
                ahat_of(A, H, l, b, pos, f.n, f.ahat + l * f.n * f.n);
            expect_flow_row(&f, pos, b, got, name);
        }
        expect_zero_padding(&fb.in, got, "flow");
        free(got);
        free(A);
        attn_model_free(m);
    }
    attn_backend_close(be);
}
END_TEST

/* ---- padding and batching ------------------------------------------------------------------- */

/* Row b of `in` as a batch of one. */
static attn_model_input row_alone(const attn_model_input *in, int64_t b)
{
    attn_model_input r = *in;
    r.batch = 1;
    r.ids += b * S;
    r.attention_mask += b * S;
    r.token_types += b * S;
    return r;
}

/* max |got - want| over n scores, relative to max |want| (1 when every want is 0). */
static double rel_diff(const float *got, const float *want, int64_t n)
{
    double d = 0.0, mag = 0.0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)got[i] - want[i]));
        mag = fmax(mag, fabs((double)want[i]));
    }
    return d / (mag > 0.0 ? mag : 1.0);
}

START_TEST(padding_and_rows_alone)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    const char *name = model_fx_backends[_i];
    attn_model *m = model_of(be, 2);
    model_fx_batch fb;
    model_fx_batch_fill(&fb, SEED);
    for (int k = 0; k < N_METHODS; k++) {
        const char *mn = attn_explain_method_name(methods[k]);
        float *all = explain_fx_run(m, &fb.in, NULL, methods[k], NULL);
        expect_zero_padding(&fb.in, all, mn);
        for (int64_t b = 0; b < B; b++) {
            const attn_model_input r = row_alone(&fb.in, b);
            float *one = explain_fx_run(m, &r, NULL, methods[k], NULL);
            const double e = rel_diff(one, all + b * S, S);
            ck_assert_msg(e <= SELF_TOL, "%s: %s of row %lld alone differs from the batch's "
                          "by %.3g", name, mn, (long long)b, e);
            free(one);
        }
        /* Row 1 all padding: nothing to score there, row 0 unchanged. */
        model_fx_batch pb;
        model_fx_batch_fill(&pb, SEED);
        memset(pb.mask + S, 0, S);
        float *pad = explain_fx_run(m, &pb.in, NULL, methods[k], NULL);
        for (int64_t j = 0; j < S; j++)
            ck_assert_msg(pad[S + j] == 0.0f, "%s: %s of a row of padding only scores %g at "
                          "%lld", name, mn, (double)pad[S + j], (long long)j);
        ck_assert_msg(rel_diff(pad, all, S) <= SELF_TOL, "%s: %s: row 0 changed with row 1 "
                      "all padding", name, mn);
        free(pad);
        free(all);
    }
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

/* Position 0 masked in row 0: the pooler still reads it, so it stays a node of rollout and
 * flow (attn_explain_impl.h) but scores 0. Nothing attends to it as a key, and the identity
 * half of each Ahat keeps 2^-L of row [CLS]'s rollout on it, so the tokens share 1 - 2^-L. */
START_TEST(masked_cls)
{
    attn_backend *be = model_fx_open(model_fx_backends[_i]);
    if (!be)
        return;
    const char *name = model_fx_backends[_i];
    attn_model *m = model_of(be, 2);
    model_fx_batch fb;
    model_fx_batch_fill(&fb, SEED);
    fb.mask[0] = 0;
    for (int k = 0; k < N_METHODS; k++) {
        const char *mn = attn_explain_method_name(methods[k]);
        float *got = explain_fx_run(m, &fb.in, NULL, methods[k], NULL);
        expect_zero_padding(&fb.in, got, mn);
        double sum = 0.0;
        for (int64_t j = 0; j < S; j++) {
            ck_assert_msg(isfinite(got[j]) && got[j] >= 0.0f, "%s: %s [0, %lld] = %g", name,
                          mn, (long long)j, (double)got[j]);
            sum += got[j];
        }
        ck_assert_msg(methods[k] != ATTN_EXPLAIN_ROLLOUT || fabs(sum - 0.75) <= SELF_TOL,
                      "%s: rollout of a row with [CLS] masked sums to %.9g, not 1 - 2^-2", name,
                      sum);
        free(got);
    }
    attn_model_free(m);
    attn_backend_close(be);
}
END_TEST

static Suite *explain_attention_suite(void)
{
    Suite *s = suite_create("explain_attention");
    TCase *tc = tcase_create("methods");
    tcase_add_loop_test(tc, attention_received, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, rollout, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, flow, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, padding_and_rows_alone, 0, MODEL_FX_N_BACKENDS);
    tcase_add_loop_test(tc, masked_cls, 0, MODEL_FX_N_BACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return attn_check_run(explain_attention_suite());
}
