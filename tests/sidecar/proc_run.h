/* proc_run.h — what the tests of launch.c and spawner.c share: one child started with
 * workload_proc_spawn, its exit as the loop reports it, and its handle closed. */
#ifndef ELECTD_TESTS_PROC_RUN_H
#define ELECTD_TESTS_PROC_RUN_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "launch.h"
#include "loop_poll.h"

struct run {
    workload_proc_t p;
    bool exited, closed;
    int64_t status;
    int sig;
};

static inline void run_exit_cb(workload_proc_t *p, int64_t status, int sig)
{
    struct run *r = p->data;
    r->exited = true;
    r->status = status;
    r->sig = sig;
}

static inline void run_closed_cb(uv_handle_t *h)
{
    struct run *r = h->data;
    r->closed = true;
}

/* Waits (bounded) for the child's exit through the loop, then closes its handle. */
static inline void run_finish(uv_loop_t *loop, struct run *r)
{
    LOOP_RUN_UNTIL(loop, r->exited, 10);
    cr_assert(r->exited, "the child's exit never came back through the loop");
    workload_proc_close(&r->p, run_closed_cb);
    LOOP_RUN_UNTIL(loop, r->closed, 5);
    cr_assert(r->closed);
}

#endif
