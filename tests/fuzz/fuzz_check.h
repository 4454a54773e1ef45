/* fuzz_check.h - the assertion of the fuzz harnesses: prints what broke and aborts, so that
 * libFuzzer saves the input as a crash. Independent of NDEBUG (fuzz builds may be release). */
#ifndef ATTN_FUZZ_CHECK_H_
#define ATTN_FUZZ_CHECK_H_

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                                   \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);             \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fputc('\n', stderr);                                                                 \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

#endif /* ATTN_FUZZ_CHECK_H_ */
