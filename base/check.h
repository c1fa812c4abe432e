/* check.h — invariant checks that stay on in release builds.
 *
 * ELECTD_CHECK(cond) is for cheap invariants whose failure means the process's state can no
 * longer be trusted (commit beyond the last index, a term going back, a message sent before
 * what it depends on was persisted). It prints the condition with file and line to stderr
 * and aborts, in every build: a crashed electd is safe (its shim kills the workload when the
 * lease is no longer renewed, and the group fails over); a corrupted one is not.
 * ELECTD_DCHECK(cond) is for checks too costly for production (loops over the log); it is
 * assert() and compiled out with NDEBUG. Neither is ever used for bad input from outside. */
#ifndef ELECTD_BASE_CHECK_H
#define ELECTD_BASE_CHECK_H

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#define ELECTD_CHECK(cond)                                                                         \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0)) {                                                        \
            fprintf(stderr, "electd: invariant violated: %s (%s:%d)\n", #cond, __FILE__,           \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define ELECTD_DCHECK(cond) assert(cond)

#endif
