/* test_files.h - files for the suites that drive the `attn` command on them: a temporary
 * directory per test (Check fixture functions), paths and files in it, raw .npy images. */
#ifndef ATTN_TEST_FILES_H_
#define ATTN_TEST_FILES_H_

#include <stddef.h>

/* Check fixture: make / remove (with its files) the test's directory. */
void test_tmp_setup(void);
void test_tmp_teardown(void);
/* Path of a file in the directory; a small ring of buffers so several can be live at once. */
char *tpath(const char *name);
/* Write n bytes to path (fails the test on error). */
void write_file(const char *path, const void *b, size_t n);
/* A raw .npy image: magic, version major.0, header length (2 or 4 bytes), header text, data.
 * malloc'd, its length in *len. */
unsigned char *make_npy(int major, const char *hdr, const void *data, size_t nbytes,
                        size_t *len);
#endif /* ATTN_TEST_FILES_H_ */
