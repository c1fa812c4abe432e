/* shim.c — the exec shim and lease watchdog (see shim.h). Plain POSIX, no libuv: it must
 * keep working when everything else has gone wrong. */
#include "shim.h"

#include "common.h"
#include "lease.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t parent_died;
static volatile sig_atomic_t child_exited;

static void on_signal(int sig)
{
    if (sig == SIGCHLD)
        child_exited = 1;
    else
        parent_died = 1;
}

void sidecar_shim_msg(uint8_t *buf, char cmd, uint64_t value)
{
    buf[0] = (uint8_t)cmd;
    memcpy(buf + 1, &value, sizeof(value));
}

static void say(const char *what)
{
    /* One line on stderr, which electd shares: the shim has no logger of its own. */
    char line[256];
    int n = snprintf(line, sizeof(line), "electd-shim[%d]: %s\n", (int)getpid(), what);
    if (n > 0)
        (void)!write(2, line, (size_t)n);
}

int sidecar_shim_main(int argc, char **argv)
{
    /* argv: electd __shim FD STOP_MS PARENT DATA_DIR -- CMD ARGS... */
    if (argc < 8 || strcmp(argv[6], "--") != 0) {
        say("usage: electd __shim FD STOP_MS PARENT DATA_DIR -- CMD ARGS... (internal)");
        return 2;
    }
    pid_t parent = (pid_t)atoi(argv[4]);
    int fd = atoi(argv[2]);
    uint64_t stop_ns = (uint64_t)strtoull(argv[3], NULL, 10) * 1000000ull;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Told when electd dies, however it dies. */
    prctl(PR_SET_PDEATHSIG, SIGHUP);
    /* electd may have died before the request above: then we were already reparented (to
     * init or to a subreaper), and no signal will come. */
    if (getppid() != parent)
        parent_died = 1;

    workload_watchdog_t wd;
    workload_watchdog_init(&wd, fd >= 0, stop_ns);
    if (fd < 0) {
        /* A hook: no lease to watch, but still its own group, tied to electd's life. */
        goto spawn;
    }
    uint8_t first[SIDECAR_SHIM_MSG];
    size_t got = 0;
    /* The workload starts only under a lease: wait (bounded) for the first deadline. */
    uint64_t wait_until = sidecar_clock_boot_ns() + 5000000000ull;
    while (got < sizeof(first) && !parent_died && sidecar_clock_boot_ns() < wait_until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            ssize_t n = read(fd, first + got, sizeof(first) - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    }
    if (got < sizeof(first) || first[0] != 'D') {
        say("no lease deadline from electd; not starting the workload");
        return 3;
    }
    uint64_t deadline;
    memcpy(&deadline, first + 1, sizeof(deadline));
    workload_watchdog_renew(&wd, deadline);
    if (sidecar_clock_boot_ns() >= wd.deadline_ns) {
        say("lease already expired; not starting the workload");
        return 3;
    }

spawn:;
    pid_t child = fork();
    if (child < 0) {
        say("fork failed");
        return 3;
    }
    if (child == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* if the shim itself is killed */
        if (fd >= 0)
            close(fd);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[7], argv + 7);
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot execute %s: %s", argv[7], strerror(errno));
        say(msg);
        _exit(SIDECAR_SHIM_EXEC_FAILED);
    }
    setpgid(child, child); /* both sides, so there is no race with the first kill() */

    bool pipe_open = fd >= 0;
    uint8_t buf[SIDECAR_SHIM_MSG];
    size_t have = 0;
    int status = 0;
    for (;;) {
        int w = waitpid(child, &status, WNOHANG);
        if (w == child)
            break;
        uint64_t now = sidecar_clock_boot_ns();
        bool stop = parent_died || (wd.watch && !pipe_open);
        if (workload_watchdog_term_due(&wd, stop, now)) {
            say(stop ? "electd is gone: stopping the workload"
                     : "lease about to expire unrenewed: stopping the workload");
            kill(-child, SIGTERM);
            workload_watchdog_termed(&wd, now);
        }
        if (now >= workload_watchdog_kill_ns(&wd)) {
            say(now >= wd.deadline_ns ? "lease expired: killing the workload"
                                      : "stop timeout: killing the workload");
            kill(-child, SIGKILL);
            waitpid(child, &status, 0);
            break;
        }
        /* At most 100 ms: also notices SIGCHLD / parent death promptly. */
        int timeout_ms = workload_watchdog_wait_ms(&wd, now, 100);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = pipe_open ? poll(&p, 1, timeout_ms) : poll(NULL, 0, timeout_ms);
        if (pr > 0 && pipe_open) {
            ssize_t n = read(fd, buf + have, sizeof(buf) - have);
            if (n <= 0) {
                pipe_open = false;
                continue;
            }
            have += (size_t)n;
            if (have < sizeof(buf))
                continue;
            have = 0;
            uint64_t v;
            memcpy(&v, buf + 1, sizeof(v));
            if (buf[0] == 'D') {
                workload_watchdog_renew(&wd, v);
            } else if (buf[0] == 'T' && !wd.termed) {
                kill(-child, SIGTERM);
                workload_watchdog_termed(&wd, sidecar_clock_boot_ns());
            }
        }
    }
    /* The main process is gone; nothing else of its group may outlive it. */
    kill(-child, SIGKILL);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 3;
}
