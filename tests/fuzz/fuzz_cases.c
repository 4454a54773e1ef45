/* fuzz_cases.c - conformance case names and case files (tools/attn_cases.c and each op's grammar,
 * tools/sdpa_case.c): attn_cases_parse_text on arbitrary text. Asserts, besides no crash, UB or
 * leak: a rejected text gives a "what:line: ..." message; every case read formats to a canonical
 * name that fits ATTN_CASE_NAME_MAX (the tool's name buffers) and parses back to a case with the
 * identical name and the same feature bits and size. */
#include "attn_conform.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_round_trip(const attn_case *c)
{
    char name[2 * ATTN_CASE_NAME_MAX], again[2 * ATTN_CASE_NAME_MAX], err[200];
    int len = attn_case_format(c, name, sizeof name);
    FUZZ_CHECK(len > 0 && len < ATTN_CASE_NAME_MAX && (size_t)len == strlen(name),
               "canonical name of %d characters: %s", len, name);
    attn_case back;
    FUZZ_CHECK(attn_case_parse(name, &back, err, sizeof err) == 0, "'%s' does not parse: %s",
               name, err);
    attn_case_format(&back, again, sizeof again);
    FUZZ_CHECK(strcmp(name, again) == 0, "'%s' parses back as '%s'", name, again);
    FUZZ_CHECK(attn_case_features(c) == attn_case_features(&back), "features of '%s' change",
               name);
    FUZZ_CHECK(c->op->elems(attn_case_cdata(c)) == back.op->elems(attn_case_cdata(&back)),
               "size of '%s' changes", name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1); /* a NUL ends the text, as in the file reader's check */
    FUZZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    char err[320] = "";
    size_t n = 0;
    attn_case *cs = attn_cases_parse_text(text, "fuzz", &n, err, sizeof err);
    if (!cs) {
        FUZZ_CHECK(strncmp(err, "fuzz:", 5) == 0, "message '%s'", err);
    } else {
        FUZZ_CHECK(n <= size, "%zu cases from %zu bytes", n, size);
        for (size_t i = 0; i < n; i++)
            check_round_trip(&cs[i]);
        free(cs);
    }
    free(text);
    return 0;
}
