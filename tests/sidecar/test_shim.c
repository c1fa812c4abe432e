/* test_shim.c — the exec shim's lease watchdog keeps time on CLOCK_BOOTTIME: a deadline passes
 * when boot time reaches it, even if the monotonic clock (which stops while the host is
 * suspended) has not.
 *
 * How a test tells the two clocks apart without suspending the machine: a Linux time
 * namespace (CLONE_NEWTIME, in an unprivileged user namespace) gives the processes inside it
 * their own offsets for CLOCK_MONOTONIC and CLOCK_BOOTTIME. The shim runs inside one whose
 * boot-time clock is SKIP_S seconds ahead and whose monotonic clock is not moved — exactly
 * what a host sees after a suspend of SKIP_S seconds. The deadline is computed outside, on
 * the boot-time clock, as electd does. A shim on the boot-time clock sees the lease nearly
 * used up and stops the workload within a fraction of a second; a shim on the monotonic
 * clock believes SKIP_S more seconds remain and lets it run. No fake clock is injected: the
 * shim reads the real kernel clocks. Where the kernel refuses time namespaces the test is
 * skipped, saying so.
 *
 * And the released-lease notice: a shim whose electd dies (its pipe closes) while the lease
 * holds dials the members of the kit; one whose electd asked it to stop first ('T') does not. */
#include <criterion/criterion.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define SKIP_S        3            /* the simulated suspend */
#define LEASE_LEFT_NS 500000000ull /* lease left after the suspend (boot time) */
#define STOP_MS       "200"

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Child side: enter a user + time namespace whose boot-time clock is SKIP_S ahead, then run
 * the shim in a grandchild (only children enter a new time namespace). Exit codes: the
 * shim's, or 200 when the namespace cannot be made. */
static int run_in_suspended_ns(int fd)
{
    if (unshare(CLONE_NEWUSER | CLONE_NEWTIME) != 0)
        return 200;
    int of = open("/proc/self/timens_offsets", O_WRONLY);
    char offs[64];
    int n = snprintf(offs, sizeof(offs), "boottime %d 0\n", SKIP_S);
    if (of < 0 || write(of, offs, (size_t)n) != n)
        return 200;
    close(of);
    pid_t shim = fork();
    if (shim < 0)
        return 200;
    if (shim == 0) {
        char fd_arg[16], parent[16];
        snprintf(fd_arg, sizeof(fd_arg), "%d", fd);
        snprintf(parent, sizeof(parent), "%d", (int)getppid());
        char *argv[] = {"electd", SIDECAR_SHIM_ARG, fd_arg, STOP_MS, parent, "/nonexistent",
                        "--",     "sleep",          "30",   NULL};
        _exit(sidecar_shim_main(9, argv));
    }
    close(fd);
    int status;
    if (waitpid(shim, &status, 0) != shim)
        return 201;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 202;
}

Test(shim, the_watchdog_fires_by_the_boot_time_deadline_when_monotonic_time_lags)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        close(fds[1]);
        _exit(run_in_suspended_ns(fds[0]));
    }
    close(fds[0]);
    /* The deadline as electd computes it: boot time outside the namespace. Inside, boot time
     * is SKIP_S ahead, so LEASE_LEFT_NS of the lease remain there. */
    uint64_t start = clock_ns(CLOCK_BOOTTIME);
    uint8_t msg[SIDECAR_SHIM_MSG];
    sidecar_shim_msg(msg, 'D', start + SKIP_S * 1000000000ull + LEASE_LEFT_NS);
    cr_assert_eq(write(fds[1], msg, sizeof(msg)), (ssize_t)sizeof(msg));

    /* Bounded: the monotonic reading would let the workload run SKIP_S + 0.5 s. */
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < 400 && (r = waitpid(child, &status, WNOHANG)) == 0; i++)
        usleep(10000);
    uint64_t took_ms = (clock_ns(CLOCK_BOOTTIME) - start) / 1000000;
    if (r == 0) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
    }
    close(fds[1]);
    cr_assert_eq(r, child, "the shim still ran after 4 s");
    cr_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) == 200)
        cr_skip("no time namespaces here (unshare(CLONE_NEWUSER|CLONE_NEWTIME) refused)");
    /* The workload was stopped (SIGTERM at deadline - STOP_MS, 128 + 15). */
    cr_assert_eq(WEXITSTATUS(status), 128 + SIGTERM, "shim exit status %d", WEXITSTATUS(status));
    cr_assert_lt(took_ms, 1500,
                 "the watchdog stopped the workload after %llu ms: it keeps time on a clock "
                 "that did not count the suspend (the boot-time deadline was %llu ms away)",
                 (unsigned long long)took_ms, (unsigned long long)(LEASE_LEFT_NS / 1000000));
}

/* ---- the released-lease notice: only electd's death, never its own stop ------------------- */

/* A listener on 127.0.0.1 (the "member" the kit names); its port in *port. */
static int listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 4) == 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Runs a shim over `sleep 30` with a kit naming one member at port, sends it a deadline and
 * the term, then `extra` (0: nothing) and closes the pipe as a dying electd would. True when
 * the member was dialled before the shim exited. */
static bool notice_dialled(char extra)
{
    char dir[] = "/tmp/electd-shim-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    uint16_t port;
    int lfd = listener(&port);
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, SIDECAR_NOTICE_KIT);
    FILE *kit = fopen(path, "w");
    cr_assert_not_null(kit);
    fprintf(kit,
            "electd-notice-kit 1\nfrom 1\ncluster 7\ninstance "
            "000102030405060708090a0b0c0d0e0f\ntoken \nhello a  \npeer 2 %u 127.0.0.1 b\n",
            (unsigned)port);
    fclose(kit);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t shim = fork();
    cr_assert_geq(shim, 0);
    if (shim == 0) {
        close(fds[1]);
        char fd_arg[16], parent[16];
        snprintf(fd_arg, sizeof(fd_arg), "%d", fds[0]);
        snprintf(parent, sizeof(parent), "%d", (int)getppid());
        char *argv[] = {"electd", SIDECAR_SHIM_ARG, fd_arg, STOP_MS, parent, dir,
                        "--",     "sleep",          "30",   NULL};
        _exit(sidecar_shim_main(9, argv));
    }
    close(fds[0]);
    uint8_t msg[SIDECAR_SHIM_MSG];
    sidecar_shim_msg(msg, 'D', clock_ns(CLOCK_BOOTTIME) + 10000000000ull);
    cr_assert_eq(write(fds[1], msg, sizeof(msg)), (ssize_t)sizeof(msg));
    sidecar_shim_msg(msg, 'E', 5);
    cr_assert_eq(write(fds[1], msg, sizeof(msg)), (ssize_t)sizeof(msg));
    usleep(100000); /* the workload runs: what follows is not its first deadline */
    if (extra != 0) {
        sidecar_shim_msg(msg, extra, 0);
        cr_assert_eq(write(fds[1], msg, sizeof(msg)), (ssize_t)sizeof(msg));
    }
    close(fds[1]);
    /* Until the shim exits (bounded), watch the listener. */
    bool dialled = false;
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < 400 && (r = waitpid(shim, &status, WNOHANG)) == 0; i++) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 10) > 0) {
            dialled = true;
            close(accept(lfd, NULL, NULL)); /* no CHALLENGE: the shim gives up on it */
        }
    }
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    dialled = dialled || poll(&p, 1, 0) > 0;
    if (r == 0) {
        kill(shim, SIGKILL);
        waitpid(shim, &status, 0);
    }
    cr_assert_eq(r, shim, "the shim still ran after 4 s");
    close(lfd);
    unlink(path);
    rmdir(dir);
    return dialled;
}

Test(shim, electd_dying_under_the_lease_sends_the_released_lease_notice)
{
    cr_assert(notice_dialled(0), "the shim did not dial the member");
}

Test(shim, electd_dying_after_it_asked_for_a_stop_sends_no_notice)
{
    cr_assert_not(notice_dialled('T'), "a notice after electd's own stop");
}
