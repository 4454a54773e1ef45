/* attn_cases.c - op-neutral conformance cases: a name's first token picks the op's driver,
 * which parses the rest; case files ("@quick" tags, '#' comments); the built-in lists (each
 * op's tests/cases/<op>.cases, embedded at build time); and the grammar helpers of
 * attn_cases.h. */
#include "attn_cases.h"

#include "attn_conform.h"
#include "attn_tool_ops.h"
#include "attn_embedded.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const attn_embedded_file attn_case_lists[];
extern const int attn_case_lists_count;

/* ---- helpers -------------------------------------------------------------------------------- */

void attn_sb_add(attn_sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = s->len < s->size ? s->size - s->len : 0;
    int k = vsnprintf(room ? s->p + s->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        s->len += (size_t)k;
}

int attn_perr(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && n)
        vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

int attn_tok_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!isdigit((unsigned char)*s) && *s != '-')
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int attn_tok_real(const char *s, double lo, double hi, double *out)
{
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int attn_tok_choice(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int attn_tok_factor(const char *s, double lo, double *out)
{
    double v;
    if (attn_tok_real(s, lo, 1e30, &v) || (v != 0 && fabs(v) < 1e-30))
        return -1;
    *out = v;
    return 0;
}

int attn_tok_dtypes(const char *s, const char *const *names, int max, int *out)
{
    int k = 0;
    for (const char *at = s;; k++) {
        const char *colon = strchr(at, ':');
        char tok[16];
        size_t n = colon ? (size_t)(colon - at) : strlen(at);
        if (k == max || n >= sizeof tok)
            return -1;
        memcpy(tok, at, n);
        tok[n] = '\0';
        if ((out[k] = attn_tok_choice(tok, names)) < 0)
            return -1;
        if (!colon)
            return k + 1;
        at = colon + 1;
    }
}

int attn_tok_dtypes_qkv(const char *s, const char *const *names, attn_dtype *q, attn_dtype *kv,
                        attn_dtype *out)
{
    int dt[3];
    const int k = attn_tok_dtypes(s, names, 3, dt);
    if (k != 1 && k != 3)
        return -1;
    *q = (attn_dtype)dt[0];
    *kv = (attn_dtype)dt[k == 3 ? 1 : 0];
    *out = (attn_dtype)dt[k == 3 ? 2 : 0];
    return 0;
}

int attn_tok_size(const char *tok, const attn_tok_size_key *keys, size_t n, void *c)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(keys[i].prefix);
        if (strncmp(tok, keys[i].prefix, len) != 0 || !isdigit((unsigned char)tok[len]))
            continue;
        int64_t v;
        if (attn_tok_int(tok + len, 1, (int64_t)1 << 40, &v))
            return -1;
        memcpy((char *)c + keys[i].off, &v, sizeof v);
        memcpy((char *)c + keys[i].off2, &v, sizeof v);
        return 1;
    }
    return 0;
}

char *attn_tok_split(char *tok)
{
    char *eq = strchr(tok, '=');
    if (!eq)
        return NULL;
    *eq = '\0';
    return eq + 1;
}

int attn_tok_verdict(int r, const char *tok, const char *val, char *err, size_t errsize)
{
    if (r == 1)
        return 0;
    if (val)
        return r == 0 ? attn_perr(err, errsize, "unknown key '%s'", tok)
                      : attn_perr(err, errsize, "bad value '%s' for '%s'", val, tok);
    return attn_perr(err, errsize, r == 0 ? "unknown token '%s'" : "bad size '%s'", tok);
}

/* ---- names ---------------------------------------------------------------------------------- */

static const attn_conform_driver *driver_of(const char *stem)
{
    for (int i = 0; i < attn_tool_n_ops; i++)
        if (strcmp(attn_tool_ops[i]->stem, stem) == 0)
            return attn_tool_ops[i]->conform;
    return NULL;
}

static void known_ops(char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < attn_tool_n_ops; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", i ? ", " : "",
                 attn_tool_ops[i]->stem);
}

int attn_case_parse(const char *name, attn_case *c, char *err, size_t errsize)
{
    char buf[1024], ops[128];
    memset(c, 0, sizeof *c);
    if (strlen(name) >= sizeof buf)
        return attn_perr(err, errsize, "case name too long");
    strcpy(buf, name);
    char *save = NULL, *t = strtok_r(buf, " \t\r\n", &save);
    if (!t)
        return attn_perr(err, errsize, "empty case name");
    if (!(c->op = driver_of(t))) {
        known_ops(ops, sizeof ops);
        return attn_perr(err, errsize, "a case name starts with its op; '%s' is none (%s)", t,
                         ops);
    }
    c->op->case_default(attn_case_data(c));
    while ((t = strtok_r(NULL, " \t\r\n", &save)))
        if (c->op->case_token(t, attn_case_data(c), err, errsize))
            return -1;
    return c->op->case_check ? c->op->case_check(attn_case_cdata(c), err, errsize) : 0;
}

int attn_case_format(const attn_case *c, char *buf, size_t size)
{
    return c->op->case_format(attn_case_cdata(c), buf, size);
}

unsigned attn_case_features(const attn_case *c)
{
    return c->op->features(attn_case_cdata(c));
}

double attn_case_cost(const attn_case *c)
{
    return c->op->cost(attn_case_cdata(c));
}

/* ---- lists ---------------------------------------------------------------------------------- */

typedef struct vec {
    attn_case *v;
    size_t n, cap;
    int oom;
} vec;

static void vec_push(vec *a, const attn_case *c)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        attn_case *nv = realloc(a->v, cap * sizeof *nv);
        if (!nv) {
            a->oom = 1;
            return;
        }
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = *c;
}

/* One line: comment stripped, an optional "@quick" tag, a case name. 0 (a case in *c, or
 * *empty for a blank line), or -1 with a message. */
static int parse_line(char *line, attn_case *c, int *empty, char *msg, size_t n)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    line += strspn(line, " \t\r\n");
    *empty = *line == '\0';
    if (*empty)
        return 0;
    int quick = strncmp(line, "@quick", 6) == 0 && (line[6] == ' ' || line[6] == '\t');
    if (!quick && line[0] == '@')
        return attn_perr(msg, n, "unknown tag '%.*s' (known: @quick)",
                         (int)strcspn(line, " \t\r\n"), line);
    if (attn_case_parse(quick ? line + 6 : line, c, msg, n))
        return -1;
    c->quick = quick;
    return 0;
}

/* Parse text line by line into a (appended); 0 or -1 with "what:line: ..." in err. */
static int parse_into(vec *a, const char *text, const char *what, int quick_only, char *err,
                      size_t errsize)
{
    char line[1024], msg[200];
    int lineno = 0;
    while (*text) {
        size_t len = strcspn(text, "\n");
        lineno++;
        if (len >= sizeof line)
            return attn_perr(err, errsize, "%s:%d: line too long", what, lineno);
        memcpy(line, text, len);
        line[len] = '\0';
        text += len + (text[len] == '\n');
        attn_case c;
        int empty;
        if (parse_line(line, &c, &empty, msg, sizeof msg))
            return attn_perr(err, errsize, "%s:%d: %s", what, lineno, msg);
        if (!empty && (!quick_only || c.quick))
            vec_push(a, &c);
    }
    return a->oom ? attn_perr(err, errsize, "%s: out of memory", what) : 0;
}

attn_case *attn_cases_parse_text(const char *text, const char *what, size_t *n, char *err,
                                 size_t errsize)
{
    vec a = {0};
    if (parse_into(&a, text, what, 0, err, errsize)) {
        free(a.v);
        return NULL;
    }
    *n = a.n;
    return a.v ? a.v : calloc(1, sizeof(attn_case));
}

attn_case *attn_cases_read(const char *path, size_t *n, char *err, size_t errsize)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        attn_perr(err, errsize, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = 2 * (len + got + 1);
            char *nt = realloc(text, cap);
            if (!nt)
                break;
            text = nt;
        }
        memcpy(text + len, chunk, got);
        len += got;
    }
    const int bad = ferror(f) || got > 0;
    fclose(f);
    if (bad || !text) {
        free(text);
        if (bad) {
            attn_perr(err, errsize, "%s: cannot read the file", path);
            return NULL;
        }
        *n = 0;
        return calloc(1, sizeof(attn_case));
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        free(text);
        attn_perr(err, errsize, "%s: not a text file (NUL byte)", path);
        return NULL;
    }
    attn_case *cs = attn_cases_parse_text(text, path, n, err, errsize);
    free(text);
    return cs;
}

attn_case *attn_cases_builtin(int quick, size_t *n)
{
    vec a = {0};
    char err[320];
    for (int i = 0; i < attn_case_lists_count; i++)
        if (parse_into(&a, attn_case_lists[i].text, attn_case_lists[i].name, quick, err,
                       sizeof err)) {
            fprintf(stderr, "attn: built-in case list: %s\n", err);
            free(a.v);
            return NULL;
        }
    *n = a.n;
    return a.v ? a.v : calloc(1, sizeof(attn_case));
}
