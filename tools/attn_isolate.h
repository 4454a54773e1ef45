/* attn_isolate.h - run a function in a forked child process and take back its fixed-size
 * result, so that a crash, an abort or a hang there fails one unit of work instead of the whole
 * command (`attn conform --isolate`). POSIX only. */
#ifndef ATTN_ISOLATE_H_
#define ATTN_ISOLATE_H_

#include <stddef.h>

/* Runs in the child: fills out[0, size) and returns 0, or returns nonzero for "no result". */
typedef int (*attn_isolate_fn)(void *ctx, void *out, size_t size);

/* Fork, call fn(ctx, buf, size) in the child and copy buf back into out. timeout_s > 0 kills
 * the child (SIGKILL) after that many seconds. Returns 0 with out filled, or -1 with `why`
 * saying what happened: "crashed: signal 11 (Segmentation fault)", "timed out after 5 s",
 * "exited with status 1 without a result", or why the child could not be started. The caller
 * must not hold threads or device contexts that a child cannot inherit (the child of a process
 * that has used OpenCL must not touch it): open backends in fn. */
int attn_isolate_run(attn_isolate_fn fn, void *ctx, void *out, size_t size, double timeout_s,
                     char *why, size_t why_size);

#endif /* ATTN_ISOLATE_H_ */
