/* attn_embedded.h - text files compiled into the binary by tools/embed_text.py (the OpenCL
 * kernels of cl/, the conformance case lists of tests/cases/). */
#ifndef ATTN_EMBEDDED_H_
#define ATTN_EMBEDDED_H_

typedef struct attn_embedded_file {
    const char *name; /* base name, "sdpa_flash_fwd.cl" */
    const char *text; /* NUL-terminated contents */
} attn_embedded_file;

#endif /* ATTN_EMBEDDED_H_ */
