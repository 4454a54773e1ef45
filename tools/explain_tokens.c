/* explain_tokens.c - the tokens of `attn explain`: the model's vocab.txt, the rules of which
 * tokens are eligible to be ranked (vocab.txt's special and punctuation tokens, --special, or
 * without vocab.txt the first and last token of each row), and the filler id that replaces a
 * hidden token. */
#include "explain_tool.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "explain"

void attn_explain_tool_vocab_free(attn_explain_tool_vocab *v)
{
    free(v->text);
    free(v->tokens);
    memset(v, 0, sizeof *v);
}

/* One token per line, the line number its id. */
int attn_explain_tool_vocab_read(const char *dir, attn_explain_tool_vocab *v)
{
    char path[4096];
    memset(v, 0, sizeof *v);
    if (attn_model_tool_path(CMD, dir, "vocab.txt", path, sizeof path))
        return -1;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (v->text = malloc((size_t)len + 1)) && fread(v->text, 1, (size_t)len, f) == (size_t)len) {
        int64_t lines = 1;
        for (long i = 0; i < len; i++)
            lines += v->text[i] == '\n';
        v->tokens = malloc(sizeof *v->tokens * (size_t)lines);
    }
    fclose(f);
    if (!v->tokens) {
        fprintf(stderr, "attn explain: cannot read %s\n", path);
        attn_explain_tool_vocab_free(v);
        return -1;
    }
    v->text[len] = '\0';
    for (char *p = v->text; *p || p == v->text;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        const size_t k = strlen(p);
        if (k && p[k - 1] == '\r')
            p[k - 1] = '\0';
        v->tokens[v->n++] = p;
        if (!nl || !nl[1])
            break;
        p = nl + 1;
    }
    return 0;
}

/* A token that is punctuation only: ASCII punctuation, and (UTF-8) Latin-1 punctuation
 * U+00A1..U+00BF, general punctuation U+2010..U+205E, CJK punctuation U+3000..U+303F. */
static int is_punctuation(const char *t)
{
    const unsigned char *p = (const unsigned char *)t;
    if (!*p)
        return 0;
    while (*p) {
        uint32_t c = *p;
        int len = 1;
        if (c >= 0xC0 && c < 0xE0 && (p[1] & 0xC0) == 0x80) {
            c = (c & 0x1F) << 6 | (p[1] & 0x3F);
            len = 2;
        } else if (c >= 0xE0 && c < 0xF0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
            c = (c & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
            len = 3;
        }
        const int punct = (c < 0x80 && ispunct((int)c)) || (c >= 0xA1 && c <= 0xBF) ||
                          (c >= 0x2010 && c <= 0x205E) || (c >= 0x3000 && c <= 0x303F);
        if (!punct)
            return 0;
        p += len;
    }
    return 1;
}

static int is_special_token(const char *t)
{
    static const char *const special[] = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"};
    for (int k = 0; k < 5; k++)
        if (strcmp(t, special[k]) == 0)
            return 1;
    return 0;
}

void attn_explain_tool_tokens_free(attn_explain_tool_tokens *t)
{
    free(t->excluded);
    free(t->ignore);
    memset(t, 0, sizeof *t);
}

/* The filler: --filler, else "." of vocab.txt, else the config's pad id. 0, or -1 (printed). */
static int pick_filler(const attn_explain_tool_opts *o, const attn_explain_tool_vocab *v,
                       const attn_model_config *c, int32_t *filler)
{
    int64_t id = o->filler >= 0 ? o->filler : v->n ? -1 : c->pad_token_id;
    for (int64_t i = 0; id < 0 && i < v->n && i < c->vocab_size; i++)
        if (strcmp(v->tokens[i], ".") == 0)
            id = i;
    if (id < 0 || id >= c->vocab_size) {
        if (id < 0)
            fprintf(stderr, "attn explain: vocab.txt has no \".\" for the filler: give "
                    "--filler ID\n");
        else
            fprintf(stderr, "attn explain: filler id %lld is outside the vocabulary (%lld)\n",
                    (long long)id, (long long)c->vocab_size);
        return -1;
    }
    *filler = (int32_t)id;
    return 0;
}

int attn_explain_tool_tokens_make(const attn_explain_tool_opts *o,
                                  const attn_explain_tool_vocab *v, const attn_model_config *c,
                                  attn_explain_tool_tokens *t)
{
    const int64_t V = c->vocab_size;
    memset(t, 0, sizeof *t);
    t->positional = v->n == 0;
    if (pick_filler(o, v, c, &t->filler))
        return -1;
    t->excluded = calloc((size_t)V, 1);
    t->ignore = malloc(sizeof(int32_t) * (size_t)(V + 1));
    if (!t->excluded || !t->ignore) {
        fprintf(stderr, "attn explain: out of memory\n");
        return -1;
    }
    for (int64_t i = 0; i < v->n && i < V; i++)
        t->excluded[i] = is_special_token(v->tokens[i]) || is_punctuation(v->tokens[i]);
    for (int k = 0; k < o->n_special; k++)
        if (o->special[k] < V)
            t->excluded[o->special[k]] = 1;
    for (int64_t i = 0; i < V; i++)
        if (t->excluded[i] || i == t->filler)
            t->ignore[t->n_ignore++] = (int32_t)i;
    return 0;
}

void attn_explain_tool_eligible(const attn_explain_tool_tokens *t, const attn_model_input *x,
                                int64_t V, uint8_t *eligible)
{
    const int64_t S = x->seq;
    for (int64_t b = 0; b < x->batch; b++) {
        const uint8_t *mrow = x->attention_mask ? x->attention_mask + b * S : NULL;
        int64_t first = -1, last = -1;
        for (int64_t s = 0; s < S; s++)
            if (!mrow || mrow[s]) {
                first = first < 0 ? s : first;
                last = s;
            }
        for (int64_t s = 0; s < S; s++) {
            const int32_t id = x->ids[b * S + s];
            const int token = !mrow || mrow[s];
            const int positional = t->positional && (s == first || s == last);
            eligible[b * S + s] = (uint8_t)(token && !positional && id >= 0 && id < V &&
                                            !t->excluded[id]);
        }
    }
}
