/* test_launch.c — children started with posix_spawn and watched on a pidfd (launch.c), as the
 * hooks and the exec shim are: the exit status or signal comes back through the loop, the
 * child's fds are the ones asked for (/dev/null for -1), it starts with no signal ignored or
 * blocked even when electd ignores or blocks some, a kill reaches it, and a spawn that
 * cannot happen opens nothing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proc_run.h"

extern char **environ;

static int start(uv_loop_t *loop, struct run *r, char **args, int out_fd)
{
    memset(r, 0, sizeof(*r));
    r->p.data = r;
    workload_spawn_t o = {.file = args[0],
                          .args = args,
                          .env = environ,
                          .fds = {-1, out_fd, out_fd},
                          .n_fds = 3,
                          .exit_cb = run_exit_cb};
    return workload_proc_spawn(loop, &r->p, &o);
}

/* Reads what the child wrote into the pipe (its write end closed here first). */
static void read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
}

Test(launch, exit_status_and_output_come_back)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    char *args[] = {"/bin/sh", "-c", "echo out; echo err >&2; readlink /proc/self/fd/0; exit 7",
                    NULL};
    struct run r;
    cr_assert_eq(start(&loop, &r, args, fds[1]), 0);
    close(fds[1]);
    cr_assert_gt(r.p.pid, 0);
    run_finish(&loop, &r);
    cr_assert_eq(r.status, 7);
    cr_assert_eq(r.sig, 0);
    char buf[256];
    read_all(fds[0], buf, sizeof(buf));
    close(fds[0]);
    cr_assert_str_eq(buf, "out\nerr\n/dev/null\n");
    uv_loop_close(&loop);
}

Test(launch, the_child_starts_with_no_signal_ignored_or_blocked)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* electd ignores some signals and libuv blocks some around its own work: none of it
     * may reach a workload (a workload that ignores SIGTERM would not stop). */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_term, old_pipe;
    sigaction(SIGTERM, &ign, &old_term);
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    char *args[] = {"/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status", NULL};
    struct run r;
    int rv = start(&loop, &r, args, fds[1]);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    cr_assert_eq(rv, 0);
    close(fds[1]);
    run_finish(&loop, &r);
    cr_assert_eq(r.status, 0);
    char buf[256];
    read_all(fds[0], buf, sizeof(buf));
    close(fds[0]);
    /* glibc's posix_spawn leaves its own reserved signals (32 .. SIGRTMIN-1) ignored when
     * electd has handlers for them; the shim resets those before the workload
     * (test_workload). Every other signal is at its default. */
    unsigned long long blk = 1, ignored = 1, reserved = 0;
    for (int sig = 32; sig < SIGRTMIN; sig++)
        reserved |= 1ull << (sig - 1);
    cr_assert_eq(sscanf(buf, "SigBlk:\t%llx\nSigIgn:\t%llx", &blk, &ignored), 2, "%s", buf);
    cr_assert_eq(blk, 0, "%s", buf);
    cr_assert_eq(ignored & ~reserved, 0, "%s", buf);
    uv_loop_close(&loop);
}

Test(launch, a_kill_reaches_the_child_and_its_signal_comes_back)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *args[] = {"/bin/sleep", "30", NULL};
    struct run r;
    cr_assert_eq(start(&loop, &r, args, -1), 0);
    cr_assert_eq(workload_proc_kill(&r.p, SIGTERM), 0);
    run_finish(&loop, &r);
    cr_assert_eq(r.sig, SIGTERM);
    uv_loop_close(&loop);
}

Test(launch, a_child_that_exits_before_the_loop_runs_is_still_seen)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *args[] = {"/bin/true", NULL};
    struct run r;
    cr_assert_eq(start(&loop, &r, args, -1), 0);
    /* The child is a zombie (nobody else reaps it) before the loop runs at all. */
    cr_assert(run_wait_zombie(r.p.pid), "the child did not exit");
    run_finish(&loop, &r);
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.sig, 0);
    uv_loop_close(&loop);
}

Test(launch, a_spawn_that_cannot_happen_opens_nothing)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *args[] = {"/nonexistent/electd-hook", NULL};
    struct run r;
    cr_assert_eq(start(&loop, &r, args, -1), -ENOENT);
    cr_assert(!r.p.open);
    cr_assert_eq(uv_run(&loop, UV_RUN_NOWAIT), 0, "a handle was left open");
    cr_assert_eq(uv_loop_close(&loop), 0);
}
