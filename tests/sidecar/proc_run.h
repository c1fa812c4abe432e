/* proc_run.h — what the tests of launch.c and spawner.c share: one child started with
 * workload_proc_spawn, its exit as the loop reports it, and its handle closed. */
#ifndef ELECTD_TESTS_PROC_RUN_H
#define ELECTD_TESTS_PROC_RUN_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* Asks done(arg) every millisecond, for up to ms milliseconds, until it answers true; its
 * last answer. */
static inline bool poll_until(bool (*done)(void *), void *arg, int ms)
{
    for (int i = 0;; i++) {
        if (done(arg))
            return true;
        if (i >= ms)
            return false;
        usleep(1000);
    }
}

/* pid is a zombie: exited, not reaped, its files closed. */
static inline bool run_is_zombie(void *pid)
{
    char path[64], st[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", *(int *)pid);
    FILE *f = fopen(path, "r");
    bool zombie = f != NULL && fgets(st, sizeof(st), f) != NULL && strstr(st, ") Z ") != NULL;
    if (f)
        fclose(f);
    return zombie;
}

/* Waits (up to 2 s) until pid is a zombie. */
static inline bool run_wait_zombie(int pid)
{
    return poll_until(run_is_zombie, &pid, 2000);
}

#endif
