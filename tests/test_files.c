/* test_files.c - temporary directories, files and raw .npy images of tests (test_files.h). */
#include "test_files.h"

#include <check.h>
#include <dirent.h>
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

void test_tmp_teardown(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char p[384];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(tmpdir);
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
