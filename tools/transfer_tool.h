/* transfer_tool.h - what the transfer room's commands share: the six .npy files of a data set
 * (`attn data --task transfer` writes them, `attn transfer` reads them), one model trained and
 * measured, the statistics over seeds and the bar chart of the attention weights. Every
 * function prints its error as "attn <cmd>: ..." to stderr. */
#ifndef ATTN_TRANSFER_TOOL_H_
#define ATTN_TRANSFER_TOOL_H_

#include "attn/attn.h"
#include "model_tool.h"

#include <stdint.h>

/* The files of a data set in a directory, in this order. */
enum {
    ATTN_TRANSFER_TOOL_SOURCE_X = 0, /* float32 [Ns, F] */
    ATTN_TRANSFER_TOOL_SOURCE_Y,     /* uint8 [Ns, K] in {0, 1} */
    ATTN_TRANSFER_TOOL_TARGET_X,     /* float32 [Nt, F]: the labelled target examples */
    ATTN_TRANSFER_TOOL_TARGET_Y,     /* uint8 [Nt] */
    ATTN_TRANSFER_TOOL_TEST_X,       /* float32 [Ne, F]: target examples to measure on */
    ATTN_TRANSFER_TOOL_TEST_Y,       /* uint8 [Ne] */
    ATTN_TRANSFER_TOOL_FILES
};
/* "source_x.npy", ... in the order above; and the planted mixture's file, "planted.json". */
extern const char *const attn_transfer_tool_file_names[ATTN_TRANSFER_TOOL_FILES];
extern const char attn_transfer_tool_planted_name[];

/* A data set in memory, its shapes checked against one another. */
typedef struct attn_transfer_tool_set {
    attn_model_tool_array a[ATTN_TRANSFER_TOOL_FILES];
    int64_t ns, nt, ne, F, K;
} attn_transfer_tool_set;

/* j printed (indented, with a final newline) as the whole file. 0, or -1 (printed). */
struct cJSON;
int attn_transfer_tool_write_json(const char *cmd, const char *path, const struct cJSON *j);

/* `attn data --task transfer` (model_data.c hands over the whole command line). */
int attn_transfer_tool_data(int argc, char **argv);

/* Training settings of one model. */
typedef struct attn_transfer_tool_train {
    int64_t source_epochs; /* passes on the source data alone (source_only batches) first */
    int64_t epochs, batch;
    double lr, weight_decay, clip;
} attn_transfer_tool_train;

/* What one trained model scores on the test set. */
typedef struct attn_transfer_tool_score {
    double accuracy; /* of p_t > 0.5 against test_y */
} attn_transfer_tool_score;

/* A model of cfg created under seed, trained on s, measured on s's test set: its score and,
 * where alpha is not NULL, its attention weights on the test set averaged over the rows ([K]).
 * 0, or the exit code (printed): 2 the library refused the inputs, 1 it failed on valid ones. */
int attn_transfer_tool_fit(const char *cmd, attn_backend *be, const attn_transfer_config *cfg,
                           const attn_transfer_tool_train *tr, const attn_transfer_tool_set *s,
                           uint64_t seed, attn_transfer_tool_score *score, double *alpha);

/* The 0.975 quantile of Student's t with df >= 1 degrees of freedom (a two-sided 95% interval). */
double attn_transfer_tool_t975(int64_t df);
/* Mean and sample standard deviation of v[0 .. n), and the half-width of the 95% t interval of
 * the mean (NAN when n < 2). */
void attn_transfer_tool_mean_ci(const double *v, int64_t n, double *mean, double *sd,
                                double *half);

/* The bar chart of the weights: mean[k] with a +-sd[k] whisker for each of K sources, the
 * uniform level 1/K dashed; planted (NULL: none known) gives each source's share of the planted
 * mixture, > 0 for the planted ones, which are drawn highlighted with their share marked.
 * 0, or -1 (printed). */
int attn_transfer_tool_svg(const char *cmd, const char *path, int64_t K, const double *mean,
                           const double *sd, const double *planted, const char *title);

#endif /* ATTN_TRANSFER_TOOL_H_ */
