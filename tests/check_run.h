/* check_run.h - the end of every Check suite's main(): run the suite (verbosity from
 * CK_VERBOSITY, normal by default), free it, and turn the failure count into the exit status. */
#ifndef ATTN_CHECK_RUN_H_
#define ATTN_CHECK_RUN_H_

#include <check.h>
#include <stdlib.h>

static inline int attn_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* ATTN_CHECK_RUN_H_ */
