/* explain_inputs.c - the input files of `attn explain`: the files an `attn data` directory
 * (--data) holds, the token ids with their mask, types, labels, rationale and classes, LIME's
 * replayed masks and the bag-of-words reader's texts, each shape checked against the ids. */
#include "explain_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "explain"

void attn_explain_tool_data_files(attn_explain_tool_opts *o)
{
    static const int opt[] = {ATTN_EXPLAIN_F_IDS,          ATTN_EXPLAIN_F_MASK,
                              ATTN_EXPLAIN_F_LABELS,       ATTN_EXPLAIN_F_RATIONALE,
                              ATTN_EXPLAIN_F_READER_IDS,   ATTN_EXPLAIN_F_READER_LABELS,
                              ATTN_EXPLAIN_F_READER_MASK};
    static const char *const name[] = {"test_ids.npy",  "test_mask.npy",    "test_labels.npy",
                                       "test_rationale.npy", "train_ids.npy", "train_labels.npy",
                                       "train_mask.npy"};
    for (int k = 0; k < 7; k++) {
        char *p = o->data_paths[opt[k]];
        if (o->f[opt[k]] || snprintf(p, sizeof o->data_paths[0], "%s/%s",
                                     o->f[ATTN_EXPLAIN_F_DATA],
                                     name[k]) >= (int)sizeof o->data_paths[0])
            continue;
        /* test_ids.npy is the texts: its absence is the load's error message */
        if (k == 0 || access(p, F_OK) == 0)
            o->f[opt[k]] = p;
    }
}

void attn_explain_tool_inputs_free(attn_explain_tool_inputs *in)
{
    attn_model_tool_array *const a[] = {&in->ids,     &in->mask,  &in->types,
                                        &in->labels,  &in->rationale, &in->targets,
                                        &in->r_ids,   &in->r_mask, &in->r_labels};
    for (size_t k = 0; k < sizeof a / sizeof a[0]; k++)
        attn_model_tool_array_free(a[k]);
    free(in->lime);
    in->lime = NULL;
}

/* LIME's masks: uint8 or bool, [N, n, S, d] or, for one text, [n, S, d]; d is checked against
 * the model later. 0, or -1 (printed). */
static int load_lime(const char *path, attn_explain_tool_inputs *in)
{
    attn_npy a;
    char err[ATTN_NPY_ERRLEN], shape[128];
    if (attn_npy_load(path, &a, err)) {
        fprintf(stderr, "attn explain: %s\n", err);
        return -1;
    }
    const int lead = a.ndim == 3 ? 0 : 1;
    const int ok_rank = a.ndim == 4 || (a.ndim == 3 && in->n_file == 1);
    attn_npy_shape_str(a.ndim, a.shape, shape, sizeof shape);
    if (a.dtype != ATTN_NPY_U8 && a.dtype != ATTN_NPY_BOOL)
        fprintf(stderr, "attn explain: %s: dtype %s, expected uint8 or bool\n", path,
                attn_npy_dtype_name(a.dtype));
    else if (!ok_rank || (lead && a.shape[0] != in->n_file) || a.shape[lead + 1] != in->s ||
             a.shape[lead] < 2)
        fprintf(stderr, "attn explain: --lime-samples has shape %s, expected [%lld, n, %lld, d] "
                "(n >= 2)%s\n", shape, (long long)in->n_file, (long long)in->s,
                in->n_file == 1 ? " or [n, S, d]" : "");
    else if (!(in->lime = malloc((size_t)a.count)))
        fprintf(stderr, "attn explain: --lime-samples: out of memory\n");
    if (!in->lime) {
        attn_npy_free(&a);
        return -1;
    }
    for (int64_t i = 0; i < a.count; i++)
        in->lime[i] = ((const uint8_t *)a.data)[attn_npy_offset(&a, i)];
    in->lime_shape[0] = in->n_file;
    for (int d = 0; d < 3; d++)
        in->lime_shape[d + 1] = a.shape[lead + d];
    attn_npy_free(&a);
    return 0;
}

/* The bag-of-words reader's texts. 0, or -1 (printed). */
static int load_reader(const attn_explain_tool_opts *o, attn_explain_tool_inputs *in)
{
    if (attn_model_tool_read_i32(CMD, o->f[ATTN_EXPLAIN_F_READER_IDS], 2, 2, &in->r_ids))
        return -1;
    const attn_model_tool_array rows = {.ndim = 1, .shape = {in->r_ids.shape[0]}};
    if (attn_model_tool_read_i32(CMD, o->f[ATTN_EXPLAIN_F_READER_LABELS], 1, 1, &in->r_labels) ||
        attn_model_tool_same_shape(CMD, &rows, "one per row of --reader-ids", &in->r_labels,
                                   "--reader-labels"))
        return -1;
    const char *mask = o->f[ATTN_EXPLAIN_F_READER_MASK];
    return mask && (attn_model_tool_read_u8(CMD, mask, 2, 2, &in->r_mask) ||
                    attn_model_tool_same_shape(CMD, &in->r_ids, "--reader-ids", &in->r_mask,
                                               "--reader-mask"))
               ? -1
               : 0;
}

/* A file of IDS's shape (i32 or u8). 0, or -1 (printed). */
static int load_like_ids(const char *path, const char *opt, int bytes,
                         const attn_explain_tool_inputs *in, attn_model_tool_array *a)
{
    if (!path)
        return 0;
    const int r = bytes ? attn_model_tool_read_u8(CMD, path, 1, 2, a)
                        : attn_model_tool_read_i32(CMD, path, 1, 2, a);
    return r || attn_model_tool_same_shape(CMD, &in->ids, "--ids", a, opt) ? -1 : 0;
}

/* A file of one value per text. 0, or -1 (printed). */
static int load_per_row(const char *path, const char *opt, const attn_explain_tool_inputs *in,
                        attn_model_tool_array *a)
{
    const attn_model_tool_array rows = {.ndim = 1, .shape = {in->n_file}};
    if (!path)
        return 0;
    return attn_model_tool_read_i32(CMD, path, 1, 1, a) ||
                   attn_model_tool_same_shape(CMD, &rows, "one per row of --ids", a, opt)
               ? -1
               : 0;
}

int attn_explain_tool_inputs_load(const attn_explain_tool_opts *o, attn_explain_tool_inputs *in)
{
    memset(in, 0, sizeof *in);
    if (attn_model_tool_read_i32(CMD, o->f[ATTN_EXPLAIN_F_IDS], 1, 2, &in->ids))
        return -1;
    in->n_file = in->ids.ndim == 2 ? in->ids.shape[0] : 1;
    in->s = in->ids.shape[in->ids.ndim - 1];
    in->n = o->n >= 0 && o->n < in->n_file ? o->n : in->n_file;
    if (in->n < 1 || in->s < 1) {
        fprintf(stderr, "attn explain: %s: no tokens\n", o->f[ATTN_EXPLAIN_F_IDS]);
        return -1;
    }
    if (load_like_ids(o->f[ATTN_EXPLAIN_F_MASK], "--mask", 1, in, &in->mask) ||
        load_like_ids(o->f[ATTN_EXPLAIN_F_TYPES], "--types", 0, in, &in->types) ||
        load_per_row(o->f[ATTN_EXPLAIN_F_TARGETS], "--targets", in, &in->targets) ||
        (o->f[ATTN_EXPLAIN_F_LIME] && load_lime(o->f[ATTN_EXPLAIN_F_LIME], in)))
        return -1;
    if (!o->all)
        return 0;
    if (load_per_row(o->f[ATTN_EXPLAIN_F_LABELS], "--labels", in, &in->labels) ||
        load_like_ids(o->f[ATTN_EXPLAIN_F_RATIONALE], "--rationale", 1, in, &in->rationale))
        return -1;
    return o->f[ATTN_EXPLAIN_F_READER_IDS] ? load_reader(o, in) : 0;
}
