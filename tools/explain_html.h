/* explain_html.h - the self-contained HTML report of `attn explain` (explain_html.c): the
 * shown texts coloured by each method's scores, the evaluation tables, the deletion and
 * insertion curves as inline SVG and the comparison with the study's human ranking. */
#ifndef ATTN_EXPLAIN_HTML_H_
#define ATTN_EXPLAIN_HTML_H_

#include "explain_tool.h"

/* Writes the report to path. 0, or -1 after printing "attn <cmd>: ..." to stderr. */
int attn_explain_html_write(const char *cmd, const char *path, const attn_explain_report *r);

#endif /* ATTN_EXPLAIN_HTML_H_ */
