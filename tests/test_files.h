/* test_files.h - files for the suites that drive the `attn` command on them: a temporary
 * directory per test (Check fixture functions), paths and files in it, raw .npy images, whole
 * files compared or parsed as JSON, and the exit status and stderr of a command. */
#ifndef ATTN_TEST_FILES_H_
#define ATTN_TEST_FILES_H_

#include <check.h>
#include <stddef.h>
#include <string.h>

struct cJSON;

/* Check fixture: make / remove (with everything in it) the test's directory. */
void test_tmp_setup(void);
void test_tmp_teardown(void);
/* Path of a file in the directory; a small ring of buffers so several can be live at once. */
char *tpath(const char *name);
/* dir/name (a ring of buffers, as tpath). */
char *tsub(const char *dir, const char *name);
/* The whole file, NUL-terminated, malloc'd; its size in *n when n is not NULL. */
unsigned char *test_slurp(const char *path, size_t *n);
/* Whether the two files hold the same bytes. */
int test_same_file(const char *a, const char *b);
/* The file parsed as JSON (fails the test when it does not parse); the caller cJSON_Deletes it. */
struct cJSON *test_read_json(const char *path);
/* Write n bytes to path (fails the test on error). */
void write_file(const char *path, const void *b, size_t n);
/* A raw .npy image: magic, version major.0, header length (2 or 4 bytes), header text, data.
 * malloc'd, its length in *len. */
unsigned char *make_npy(int major, const char *hdr, const void *data, size_t nbytes,
                        size_t *len);
/* stderr of a command run in-process: redirected into the test directory's stderr.txt, then
 * restored; test_capture_end returns what was printed (a static buffer, echoed to stderr so it
 * stays in the test log). */
void test_capture_begin(void);
const char *test_capture_end(void);

/* `call`, a command run in-process, exits with a status for which `ok` holds (rc_ names it)
 * and says `want` on stderr. A macro, so that a failure names the caller's line. */
#define TEST_EXPECT_EXIT_(ok, want, call)                                                        \
    do {                                                                                         \
        test_capture_begin();                                                                    \
        const int rc_ = (call);                                                                  \
        const char *text_ = test_capture_end();                                                  \
        ck_assert_msg((ok) && strstr(text_, want) != NULL,                                       \
                      "%s: exit %d, wanted %s and '%s' in: %s", #call, rc_, #ok, want, text_);   \
    } while (0)
/* The command fails (any non-zero status) and says `want`. */
#define TEST_EXPECT_FAIL(want, call) TEST_EXPECT_EXIT_(rc_ != 0, want, call)
/* The command exits 2 (bad input) and says `want`. */
#define TEST_EXPECT_EXIT2(want, call) TEST_EXPECT_EXIT_(rc_ == 2, want, call)

#endif /* ATTN_TEST_FILES_H_ */
