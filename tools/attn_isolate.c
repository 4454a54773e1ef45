/* attn_isolate.c - attn_isolate_run: fork, run, read the result back through a pipe, reap the
 * child and name how it ended. */
#define _POSIX_C_SOURCE 200809L
#include "attn_isolate.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The child: compute into a private buffer, write it whole, leave without running atexit
 * handlers or flushing stdio buffers inherited from the parent. */
static void child(int fd, attn_isolate_fn fn, void *ctx, size_t size)
{
    unsigned char *buf = calloc(size ? size : 1, 1);
    if (!buf || fn(ctx, buf, size) != 0)
        _exit(3);
    fflush(stdout);
    fflush(stderr);
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, buf + done, size - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(4);
        done += (size_t)w;
    }
    _exit(0);
}

/* Read up to size bytes until EOF or the deadline (0: none). Returns the bytes read; *late is
 * set when the deadline passed first. */
static size_t read_all(int fd, unsigned char *out, size_t size, double deadline, int *late)
{
    size_t got = 0;
    unsigned char sink[4096];
    *late = 0;
    for (;;) {
        int ms = -1;
        if (deadline > 0) {
            double left = deadline - mono_s();
            if (left <= 0) {
                *late = 1;
                return got;
            }
            ms = (int)(left * 1000.0) + 1;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int k = poll(&p, 1, ms);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            *late = k == 0;
            return got;
        }
        /* bytes beyond size (a child that writes too much) are read and dropped */
        ssize_t r = got < size ? read(fd, out + got, size - got) : read(fd, sink, sizeof sink);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return got;
        if (got < size)
            got += (size_t)r;
    }
}

static void describe_end(int status, char *why, size_t n)
{
    if (WIFSIGNALED(status))
        snprintf(why, n, "crashed: signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status))
        snprintf(why, n, "exited with status %d without a result", WEXITSTATUS(status));
    else
        snprintf(why, n, "ended without a result");
}

int attn_isolate_run(attn_isolate_fn fn, void *ctx, void *out, size_t size, double timeout_s,
                     char *why, size_t why_size)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(why, why_size, "cannot create a pipe: %s", strerror(errno));
        return -1;
    }
    fflush(stdout); /* or the child's exit could repeat buffered output */
    fflush(stderr);
    const double deadline = timeout_s > 0 ? mono_s() + timeout_s : 0;
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_size, "cannot fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child(fds[1], fn, ctx, size);
    }
    close(fds[1]);
    int late;
    size_t got = read_all(fds[0], out, size, deadline, &late);
    close(fds[0]);
    if (late)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (late) {
        snprintf(why, why_size, "timed out after %g s (killed)", timeout_s);
        return -1;
    }
    if (got == size && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    describe_end(status, why, why_size);
    return -1;
}
