/* explain_tool.h - what the files of `attn explain` share: its options (explain_tool.c), its
 * input files (explain_inputs.c), the token rules (explain_tokens.c), the computation: model,
 * predictions, scores, evaluation (explain_compute.c), the saliency study's human accuracy and
 * the ranking set beside it (explain_ranking.c), what the HTML report is handed (explain_html.c),
 * and stdout and the output files (explain_summary.c). Functions returning -1 or an exit code
 * print their error as "attn explain: ..." to stderr. */
#ifndef ATTN_EXPLAIN_TOOL_H_
#define ATTN_EXPLAIN_TOOL_H_

#include "attn/attn.h"
#include "model_tool.h"

#include <stdint.h>

/* ---- the options (explain_tool.c) ------------------------------------------------------------ */

#define ATTN_EXPLAIN_TOOL_MAX_SPECIAL 64

/* The file options, in the order of their names. */
enum {
    ATTN_EXPLAIN_F_MODEL, ATTN_EXPLAIN_F_IDS, ATTN_EXPLAIN_F_MASK, ATTN_EXPLAIN_F_TYPES,
    ATTN_EXPLAIN_F_DATA, ATTN_EXPLAIN_F_LABELS, ATTN_EXPLAIN_F_RATIONALE, ATTN_EXPLAIN_F_TARGETS,
    ATTN_EXPLAIN_F_READER_IDS, ATTN_EXPLAIN_F_READER_LABELS, ATTN_EXPLAIN_F_READER_MASK,
    ATTN_EXPLAIN_F_LIME, ATTN_EXPLAIN_F_OUT, ATTN_EXPLAIN_F_BACKEND, ATTN_EXPLAIN_F_DEVICE,
    ATTN_EXPLAIN_F_OPTIONS, ATTN_EXPLAIN_F_COUNT
};

typedef struct attn_explain_tool_opts {
    const char *f[ATTN_EXPLAIN_F_COUNT];
    char data_paths[ATTN_EXPLAIN_F_COUNT][4096]; /* the files --data names */
    int all;                                     /* no --method: every method, evaluated */
    attn_explain_method method;
    int64_t n, target, filler, show; /* n, target, filler -1: not given */
    int lime_n_set, k_set;
    int n_special;
    int32_t special[ATTN_EXPLAIN_TOOL_MAX_SPECIAL];
    attn_explain_options xo;
    attn_explain_eval_options eo;
} attn_explain_tool_opts;

/* ---- the inputs (explain_inputs.c) ----------------------------------------------------------- */

typedef struct attn_explain_tool_inputs {
    attn_model_tool_array ids, mask, types, labels, rationale, targets, r_ids, r_mask, r_labels;
    uint8_t *lime;         /* [n_file, lime_n, S, d] dense, or NULL */
    int64_t lime_shape[4]; /* [rows, n, S, d] */
    int64_t n_file, n, s;  /* rows in the files, rows explained, row length */
} attn_explain_tool_inputs;

/* The files of --data that exist, for the file options not given. */
void attn_explain_tool_data_files(attn_explain_tool_opts *o);
/* The files of the options, shapes checked against the ids. 0, or -1 (printed); free with
 * attn_explain_tool_inputs_free either way. */
int attn_explain_tool_inputs_load(const attn_explain_tool_opts *o, attn_explain_tool_inputs *in);
void attn_explain_tool_inputs_free(attn_explain_tool_inputs *in);

/* ---- the tokens (explain_tokens.c) ----------------------------------------------------------- */

/* DIR/vocab.txt: the token strings by id (the line number). */
typedef struct attn_explain_tool_vocab {
    char *text;          /* the file, lines cut at '\n' */
    const char **tokens; /* [n] into text */
    int64_t n;
} attn_explain_tool_vocab;

/* The token rules of the run: excluded[vocab] marks the ids never ranked (vocab.txt's special
 * and punctuation tokens, --special), positional the no-vocab.txt rule (first and last token of
 * each row), filler the id that replaces a hidden token. */
typedef struct attn_explain_tool_tokens {
    uint8_t *excluded;
    int positional;
    int32_t filler;
    int32_t *ignore; /* the bag-of-words reader's ignored ids: the excluded ones and the filler */
    int64_t n_ignore;
} attn_explain_tool_tokens;

/* DIR/vocab.txt when present. 0 (v->n 0 without the file), or -1 (printed). */
int attn_explain_tool_vocab_read(const char *dir, attn_explain_tool_vocab *v);
void attn_explain_tool_vocab_free(attn_explain_tool_vocab *v);
/* The rules from vocab.txt (v->n 0: none), --special and --filler. 0, or -1 (printed); free
 * with attn_explain_tool_tokens_free either way. */
int attn_explain_tool_tokens_make(const attn_explain_tool_opts *o,
                                  const attn_explain_tool_vocab *v, const attn_model_config *c,
                                  attn_explain_tool_tokens *t);
void attn_explain_tool_tokens_free(attn_explain_tool_tokens *t);
/* eligible [B, S] of the texts under the rules (V the vocabulary size). */
void attn_explain_tool_eligible(const attn_explain_tool_tokens *t, const attn_model_input *x,
                                int64_t V, uint8_t *eligible);

/* ---- the computation (explain_compute.c) ----------------------------------------------------- */

/* Everything computed; zeroed before the first call, freed by attn_explain_tool_run_free. */
typedef struct attn_explain_tool_run {
    attn_model *m;
    attn_model_input x;
    attn_explain_tool_vocab vocab;
    attn_explain_tool_tokens tokens;
    attn_explain_bow *bow;
    uint8_t *eligible;
    int32_t *pred, *labels, *targets; /* [B]; labels and targets point at a file or pred */
    int labels_predicted;
    int n_methods;
    attn_explain_method methods[ATTN_EXPLAIN_METHOD_COUNT];
    float *scores[ATTN_EXPLAIN_METHOD_COUNT];
    double seconds[ATTN_EXPLAIN_METHOD_COUNT];
    attn_explain_eval eval[ATTN_EXPLAIN_METHOD_COUNT];
    attn_explain_eval_options eo;
    double model_w[ATTN_EXPLAIN_MAX_K], model_avg[ATTN_EXPLAIN_METHOD_COUNT];
    double bow_w[ATTN_EXPLAIN_MAX_K], bow_avg[ATTN_EXPLAIN_METHOD_COUNT];
    int32_t *target_fill; /* --target C for every row */
} attn_explain_tool_run;

/* Each returns 0, or the exit code (printed): 2 bad inputs, 1 a valid run failed. */
/* Model, tokens, eligibility and classes. */
int attn_explain_tool_run_prepare(const attn_explain_tool_opts *o, attn_backend *be,
                                  const attn_explain_tool_inputs *in, attn_explain_tool_run *r);
/* Every method's scores (one with --method). */
int attn_explain_tool_run_methods(const attn_explain_tool_opts *o,
                                  const attn_explain_tool_inputs *in, attn_explain_tool_run *r);
/* The bag-of-words reader, then every method's figures and the readers' weighted accuracies. */
int attn_explain_tool_run_evaluation(const attn_explain_tool_opts *o,
                                     const attn_explain_tool_inputs *in,
                                     attn_explain_tool_run *r);
void attn_explain_tool_run_free(attn_explain_tool_run *r);

/* ---- the study's human accuracy and the ranking (explain_ranking.c) -------------------------- */

/* The study's human accuracy of one of its methods (Lu et al. 2024, the released crowd data:
 * the unweighted mean of `Correct` over 100 texts x 5 k per data set). */
typedef struct attn_explain_human {
    attn_explain_method method;
    const char *study_name; /* the method's name in the study's CSVs */
    double imdb, agnews;
} attn_explain_human;

#define ATTN_EXPLAIN_N_HUMAN 8
extern const attn_explain_human attn_explain_human_acc[ATTN_EXPLAIN_N_HUMAN];
/* The study's row of a method, NULL for one the study did not run (rollout, flow). */
const attn_explain_human *attn_explain_human_of(attn_explain_method m);

/* The methods ranked by the readers' weighted accuracies, beside the study's human ranking. */
typedef struct attn_explain_ranking {
    int order[ATTN_EXPLAIN_METHOD_COUNT]; /* indices by the model reader, best first (stable) */
    /* ranks among the study's methods present (1 best; ties share the better rank), 0 for a
     * method the study did not run: by the model reader, the bag-of-words reader (0 without
     * one), the study's human accuracy on IMDB and on AG News */
    int model[ATTN_EXPLAIN_METHOD_COUNT], bow[ATTN_EXPLAIN_METHOD_COUNT];
    int imdb[ATTN_EXPLAIN_METHOD_COUNT], agnews[ATTN_EXPLAIN_METHOD_COUNT];
    /* Spearman's rho between the readers' and the human ranks (NaN when undefined) */
    double rho_model_imdb, rho_model_agnews, rho_bow_imdb, rho_bow_agnews;
} attn_explain_ranking;

/* The indices 0..n-1 ordered by value, largest first, ties in index order. */
void attn_explain_tool_order(int n, const double *value, int *order);
/* The ranking of n methods (at most ATTN_EXPLAIN_METHOD_COUNT) from the model reader's
 * weighted accuracies and, when not NULL, the bag-of-words reader's. */
void attn_explain_tool_ranking(int n, const attn_explain_method *methods, const double *model_avg,
                               const double *bow_avg, attn_explain_ranking *out);

/* ---- what the HTML report is handed (explain_html.c) ----------------------------------------- */

/* Everything the report shows. Arrays are [B, S] row-major unless said otherwise. */
typedef struct attn_explain_report {
    const char *model_dir;
    int64_t B, S;
    int64_t n_show;                /* texts drawn: the first n_show */
    const int32_t *ids;
    const uint8_t *mask;           /* NULL: every position a token */
    const uint8_t *eligible;
    const uint8_t *rationale;      /* NULL without one */
    const int32_t *labels;         /* [B] */
    int labels_predicted;          /* 1: the labels are the model's own predictions */
    const int32_t *pred;           /* [B] the model's class on the full text */
    const int32_t *targets;        /* [B] the class each method explains */
    const char *const *vocab;      /* token strings by id, NULL without vocab.txt */
    int64_t n_vocab;
    int n_methods;
    const attn_explain_method *methods; /* [n_methods] */
    const float *const *scores;    /* [n_methods] of [B, S] */
    const attn_explain_eval *eval; /* [n_methods] */
    const attn_explain_eval_options *eval_opt;
    int have_bow;
    const double *model_weights, *model_avg; /* [n_k], [n_methods] */
    const double *bow_weights, *bow_avg;     /* the same for the bag-of-words reader */
} attn_explain_report;

/* ---- stdout and the files (explain_summary.c) ------------------------------------------------ */

/* The one-line summary: sizes, texts, labels or method, backend and seconds. */
void attn_explain_tool_print_summary(const attn_explain_tool_opts *o,
                                     const attn_explain_tool_run *r, attn_backend *be,
                                     double seconds);
/* The evaluated run's tables: the readers' accuracies by k, planted precision and recall,
 * faithfulness and the ranking beside the study's. */
void attn_explain_tool_print_report(const attn_explain_tool_run *r);
/* Every method's scores, eval.json and report.html into the --out directory. 0, or -1
 * (printed). */
int attn_explain_tool_write_all(const attn_explain_tool_opts *o, const attn_explain_tool_run *r);

#endif /* ATTN_EXPLAIN_TOOL_H_ */
