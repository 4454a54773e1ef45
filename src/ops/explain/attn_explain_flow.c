/* attn_explain_flow.c - attention flow (Abnar & Zuidema 2020): on the layered graph of a
 * sequence, node (l, k) for l = 0 .. L and each of its nodes k (attn_explain_each_ahat), the
 * edge (l - 1, k) -> (l, i) has capacity Ahat^(l)[i, k]; the score of token j is the value of
 * the maximum flow from (0, j) to (L, [CLS]), by igraph's push-relabel solver. The graph is
 * built once per sequence and solved once per token, only the source's capacities changing. */
#include "attn_explain_impl.h"

#include <igraph.h>
#include <stdlib.h>

#include "attn_backend_impl.h"

typedef struct flow_ctx {
    const attn_model_input *in;
    int64_t L;
    float *scores;
    igraph_integer_t *edges; /* (from, to) pairs */
    igraph_real_t *cap;      /* the edges' capacities; the first n leave the source */
} flow_ctx;

/* The graph solved, equivalent to the layered one for the flow out of (0, j): nodes (0, k)
 * other than j have no way in and the nodes (L, i) other than [CLS] no way out, so they are
 * left out, halving the edges at L = 4. Node 0 is the source (0, j), node 1 + (l - 1) n + i is
 * (l, i) for 0 < l < L, and the last node is (L, [CLS]). The source's n edges come first: their
 * capacities Ahat^(1)[i, j] are set for each j (source_caps). Returns the edge count. */
static int64_t graph_edges(flow_ctx *c, int64_t n, const double *ahat)
{
    const int64_t L = c->L, sink = 1 + (L - 1) * n;
    int64_t e = 0;
    for (int64_t i = 0; i < (L == 1 ? 1 : n); i++, e++) {
        c->edges[2 * e] = 0;
        c->edges[2 * e + 1] = L == 1 ? sink : 1 + i;
    }
    for (int64_t l = 2; l <= L; l++)
        for (int64_t i = 0; i < (l == L ? 1 : n); i++)
            for (int64_t k = 0; k < n; k++, e++) {
                c->edges[2 * e] = 1 + (l - 2) * n + k;
                c->edges[2 * e + 1] = l == L ? sink : 1 + (l - 1) * n + i;
                c->cap[e] = ahat[((l - 1) * n + i) * n + k];
            }
    return e;
}

/* The source's capacities for input node j: Ahat^(1)[i, j] into (1, i), or into [CLS]. */
static void source_caps(flow_ctx *c, int64_t n, const double *ahat, int64_t j)
{
    for (int64_t i = 0; i < (c->L == 1 ? 1 : n); i++)
        c->cap[i] = ahat[i * n + j];
}

/* Flows from every token's input node into row b's scores; igraph's error code on failure. */
static igraph_error_t solve_row(flow_ctx *c, int64_t b, const int64_t *pos, int64_t n,
                                const double *ahat)
{
    const int64_t S = c->in->seq, E = graph_edges(c, n, ahat), V = 2 + (c->L - 1) * n;
    igraph_vector_int_t ev;
    igraph_vector_t capv;
    igraph_t g;
    igraph_error_t err = igraph_create(&g, igraph_vector_int_view(&ev, c->edges, 2 * E), V, 1);
    if (err != IGRAPH_SUCCESS)
        return err;
    igraph_vector_view(&capv, c->cap, E);
    for (int64_t s = 0; s < S; s++)
        c->scores[b * S + s] = 0.0f;
    for (int64_t k = 0; k < n && err == IGRAPH_SUCCESS; k++) {
        if (!attn_explain_is_token(c->in, b, pos[k]))
            continue; /* a masked [CLS]: a node of the graph, not scored */
        source_caps(c, n, ahat, k);
        igraph_real_t v = 0.0;
        err = igraph_maxflow_value(&g, &v, 0, V - 1, &capv, NULL);
        c->scores[b * S + pos[k]] = (float)v;
    }
    igraph_destroy(&g);
    return err;
}

static attn_status flow_row(void *ctx, int64_t b, const int64_t *pos, int64_t n,
                            const double *ahat)
{
    flow_ctx *c = ctx;
    /* igraph's default handler aborts the process; this one returns the code to us. */
    igraph_error_handler_t *old = igraph_set_error_handler(igraph_error_handler_ignore);
    igraph_warning_handler_t *old_warn = igraph_set_warning_handler(igraph_warning_handler_ignore);
    const igraph_error_t err = solve_row(c, b, pos, n, ahat);
    igraph_set_warning_handler(old_warn);
    igraph_set_error_handler(old);
    if (err == IGRAPH_SUCCESS)
        return ATTN_OK;
    return attn_fail(err == IGRAPH_ENOMEM ? ATTN_ERR_OUT_OF_MEMORY : ATTN_ERR_INTERNAL,
                     "explain: attention flow of sequence %lld (%lld nodes): igraph: %s",
                     (long long)b, (long long)(2 + (c->L - 1) * n), igraph_strerror(err));
}

attn_status attn_explain_flow(attn_model *m, const attn_model_input *in, float *scores)
{
    const int64_t L = attn_model_get_config(m)->num_layers, S = in->seq;
    flow_ctx c = {.in = in, .L = L, .scores = scores};
    const int64_t E = L * S * S + S; /* at most; graph_edges */
    c.edges = malloc((size_t)(2 * E) * sizeof(igraph_integer_t));
    c.cap = malloc((size_t)E * sizeof(igraph_real_t));
    const attn_status st =
        c.edges && c.cap
            ? attn_explain_each_ahat(m, in, flow_row, &c)
            : attn_fail(ATTN_ERR_OUT_OF_MEMORY,
                        "explain: out of memory for the flow graph of %lld layers of %lld",
                        (long long)L, (long long)S);
    free(c.edges);
    free(c.cap);
    return st;
}
