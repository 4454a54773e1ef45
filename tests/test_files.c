/* test_files.c - temporary directories, files, raw .npy images, file comparison and JSON, and
 * captured stderr of tests (test_files.h). */
#include "test_files.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

void test_tmp_setup(void)
{
    strcpy(tmpdir, "/tmp/attn_test_XXXXXX");
    ck_assert(mkdtemp(tmpdir) != NULL);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void test_tmp_teardown(void)
{
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); /* the commands write directories */
}

char *tpath(const char *name)
{
    static char ring[16][256];
    static int k;
    char *p = ring[k++ % 16];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

unsigned char *make_npy(int major, const char *hdr, const void *data, size_t nbytes,
                        size_t *len)
{
    size_t hl = strlen(hdr), pre = major == 1 ? 10 : 12;
    *len = pre + hl + nbytes;
    unsigned char *b = malloc(*len ? *len : 1);
    ck_assert(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + pre, hdr, hl);
    if (nbytes)
        memcpy(b + pre + hl, data, nbytes);
    return b;
}

char *tsub(const char *dir, const char *name)
{
    static char ring[8][512];
    static int k;
    char *p = ring[k++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

unsigned char *test_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    const long len = ftell(f);
    ck_assert_int_ge(len, 0);
    rewind(f);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    b[len] = '\0';
    if (n)
        *n = (size_t)len;
    return b;
}

int test_same_file(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = test_slurp(a, &na), *y = test_slurp(b, &nb);
    const int same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

struct cJSON *test_read_json(const char *path)
{
    char *text = (char *)test_slurp(path, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    ck_assert_msg(j != NULL, "%s does not parse", path);
    return j;
}

/* ---- stderr of a command --------------------------------------------------------------------- */

static int saved_stderr = -1;

void test_capture_begin(void)
{
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    const int fd = open(tpath("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert(saved_stderr >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

const char *test_capture_end(void)
{
    static char text[4096];
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    FILE *f = fopen(tpath("stderr.txt"), "rb");
    ck_assert(f);
    const size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    fputs(text, stderr);
    return text;
}
