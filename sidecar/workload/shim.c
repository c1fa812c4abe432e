/* shim.c — the exec shim and lease watchdog (see shim.h). Plain POSIX, no libuv: it must
 * keep working when everything else has gone wrong. */
#include "shim.h"

#include "common.h"
#include "lease.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

static bool json_mode; /* --log-json: the shim's lines are JSON (shim.h) */

static void say_at(sidecar_log_level_t level, const char *what)
{
    if (json_mode) {
        SIDECAR_LOG(level, what, SIDECAR_LOG_INT("pid", getpid()));
        return;
    }
    /* One line on stderr, which electd shares, as the shim has always written it. */
    char line[256];
    int n = snprintf(line, sizeof(line), "electd-shim[%d]: %s\n", (int)getpid(), what);
    if (n > 0)
        (void)!write(2, line, (size_t)n);
}

static void say(const char *what)
{
    say_at(SIDECAR_LOG_WARN, what);
}

static void say_info(const char *what)
{
    say_at(SIDECAR_LOG_INFO, what);
}

#define FIRST_DEADLINE_WAIT_NS 5000000000ull /* for electd's first deadline */
#define POLL_MAX_MS            100  /* notices SIGCHLD and electd's death at least this often */
#define SHIM_FAILED            3    /* the workload was not run, or its end is unknown */
#define OUTPUT_DRAIN_MS        1000 /* ms the output may take to end after the workload */
#define GROUP_GONE_WAIT_MS     5000 /* the workload's group must be gone by then for a notice */

typedef struct shim {
    int fd;       /* control pipe from electd; -1 for a hook */
    pid_t parent; /* electd */
    pid_t child;  /* the workload's main process, leader of its group */
    bool pipe_open;
    uint8_t buf[SIDECAR_SHIM_MSG]; /* a command being read */
    size_t have;
    workload_watchdog_t wd;
    const char *node;     /* --log-json NODE, else NULL */
    const char *data_dir; /* where electd keeps the notice kit */
    uint64_t term;        /* 'E': the term of the lease the deadlines belong to; 0: none */
    bool notice;          /* electd died while the lease held: released-lease notice due */
    char **cmd;           /* the workload's argv */
    shim_output_t out;
} shim_t;

/* argv: electd __shim FD STOP_MS PARENT DATA_DIR [--log-json NODE] -- CMD ARGS... */
static bool parse_args(int argc, char **argv, shim_t *s)
{
    int dash = 6;
    if (argc > 8 && strcmp(argv[6], SIDECAR_SHIM_LOG_JSON) == 0) {
        s->node = argv[7];
        dash = 8;
    }
    if (argc < dash + 2 || strcmp(argv[dash], "--") != 0) {
        say("usage: electd __shim FD STOP_MS PARENT DATA_DIR [--log-json NODE] -- CMD ARGS... "
            "(internal)");
        return false;
    }
    s->cmd = argv + dash + 1;
    s->parent = (pid_t)atoi(argv[4]);
    s->data_dir = argv[5];
    s->fd = atoi(argv[2]);
    s->pipe_open = s->fd >= 0;
    workload_watchdog_init(&s->wd, s->fd >= 0, (uint64_t)strtoull(argv[3], NULL, 10) * 1000000ull);
    return true;
}

/* The mask the shim waits under: the signals on_signal handles are blocked everywhere else,
 * so that one that comes between a look at the flags and the wait is not lost until the
 * wait's timeout (the workload's exit on SIGTERM seen 100 ms late made a process-crash
 * failover take ~120 ms instead of ~20 ms, about one time in fifty). */
static sigset_t wait_mask;

/* poll() that returns at once for a handled signal that came before it, as well as during. */
static int wait_poll(struct pollfd *p, nfds_t n, int timeout_ms)
{
    struct timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000L};
    return ppoll(p, n, timeout_ms < 0 ? NULL : &ts, &wait_mask);
}

/* SIGCHLD, and electd's death however it dies, set the flags on_signal sets. */
static void signals_install(pid_t parent)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    static const int handled[] = {SIGCHLD, SIGHUP, SIGTERM};
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
        sigaddset(&set, handled[i]);
    sigprocmask(SIG_BLOCK, &set, &wait_mask);
    for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++) {
        sigdelset(&wait_mask, handled[i]);
        sigaction(handled[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGHUP);
    /* electd may have died before the request above: then we were already reparented (to
     * init or to a subreaper), and no signal will come. */
    if (getppid() != parent)
        parent_died = 1;
}

/* The workload starts only under a lease: waits (bounded) for electd's first deadline. True
 * when one came and has not passed yet. */
static bool first_deadline(shim_t *s)
{
    uint8_t first[SIDECAR_SHIM_MSG];
    size_t got = 0;
    uint64_t wait_until = sidecar_clock_boot_ns() + FIRST_DEADLINE_WAIT_NS;
    while (got < sizeof(first) && !parent_died && sidecar_clock_boot_ns() < wait_until) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (wait_poll(&p, 1, POLL_MAX_MS) > 0) {
            ssize_t n = read(s->fd, first + got, sizeof(first) - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    }
    if (got < sizeof(first) || first[0] != 'D') {
        say("no lease deadline from electd; not starting the workload");
        return false;
    }
    uint64_t deadline;
    memcpy(&deadline, first + 1, sizeof(deadline));
    workload_watchdog_renew(&s->wd, deadline);
    if (sidecar_clock_boot_ns() >= s->wd.deadline_ns) {
        say("lease already expired; not starting the workload");
        return false;
    }
    return true;
}

/* glibc keeps signals 32 .. SIGRTMIN-1 for itself, and posix_spawn (launch.c) starts the shim
 * with them ignored; an ignored signal stays ignored across exec. The workload gets them at
 * their default, as a process started by fork would: by the raw call (glibc refuses these
 * signals). A zeroed kernel sigaction is SIG_DFL, no flags, empty mask on every layout. */
static void reserved_signals_default(void)
{
    unsigned long ksa[8] = {0};
    for (int sig = 32; sig < SIGRTMIN; sig++)
        (void)syscall(SYS_rt_sigaction, sig, ksa, NULL, _NSIG / 8);
}

/* The workload's start shares the shim's memory until its exec (CLONE_VM|CLONE_VFORK, as
 * posix_spawn does): nothing of the shim is copied or faulted in again, which on a
 * virtualised host is most of the cost of a fork. The shim waits meanwhile. The child writes
 * no memory of the shim's but `exec_errno` (and errno, the shim's own thread's: unread). */
#define CHILD_STACK_BYTES (64 << 10)

struct start {
    shim_t *s;
    char **cmd;
    int exec_errno; /* the child's exec failed with this */
};

/* In the child: its own process group, killed with the shim, the signal state of a fresh
 * process, its output into the shim's pipes (JSON mode), then the workload itself. The
 * shim's blocked signals stay blocked until the dispositions are back to default, so no
 * handler of the shim's runs here. */
static int exec_workload(void *arg)
{
    struct start *st = arg;
    shim_t *s = st->s;
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* if the shim itself is killed */
    if (s->fd >= 0)
        close(s->fd);
    if (s->node != NULL)
        shim_output_child(&s->out);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    reserved_signals_default();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(st->cmd[0], st->cmd);
    st->exec_errno = errno != 0 ? errno : ENOEXEC;
    _exit(SIDECAR_SHIM_EXEC_FAILED);
}

static bool spawn(shim_t *s, char **cmd)
{
    static char stack[CHILD_STACK_BYTES] __attribute__((aligned(64)));
    struct start st = {.s = s, .cmd = cmd};
    s->child = clone(exec_workload, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &st);
    if (s->child < 0) {
        say("fork failed");
        return false;
    }
    /* The child is back here only after its exec or its exit: its group is set. */
    if (st.exec_errno != 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot execute %s: %s", cmd[0], strerror(st.exec_errno));
        say(msg);
    }
    shim_output_parent(&s->out);
    return true;
}

/* One command from electd, once all its bytes are in: 'D' renews the deadline, 'E' names the
 * term of the lease it belongs to, 'T' stops. */
static void command(shim_t *s)
{
    uint64_t v;
    memcpy(&v, s->buf + 1, sizeof(v));
    if (s->buf[0] == 'D') {
        workload_watchdog_renew(&s->wd, v);
    } else if (s->buf[0] == 'E') {
        s->term = v;
    } else if (s->buf[0] == 'T' && !s->wd.termed) {
        kill(-s->child, SIGTERM);
        workload_watchdog_termed(&s->wd, sidecar_clock_boot_ns());
    }
}

/* Polls the workload's output (JSON mode) and, when open, the control pipe; handles the
 * output that is ready. True when the control pipe has bytes to read. */
static bool wait_ready(shim_t *s, int timeout_ms)
{
    struct pollfd p[1 + SHIM_STREAMS];
    nfds_t n = 0;
    if (s->pipe_open)
        p[n++] = (struct pollfd){.fd = s->fd, .events = POLLIN};
    size_t first_out = n;
    if (s->node != NULL)
        n += shim_output_pollfds(&s->out, p + first_out);
    if (wait_poll(p, n, timeout_ms) <= 0)
        return false;
    if (s->node != NULL)
        shim_output_step(&s->out, p + first_out);
    return s->pipe_open && p[0].revents != 0;
}

/* Sleeps until the next point of the timeline or a command from electd, and reads it. */
static void wait_and_read(shim_t *s, uint64_t now)
{
    int timeout_ms = workload_watchdog_wait_ms(&s->wd, now, POLL_MAX_MS);
    if (!wait_ready(s, timeout_ms))
        return;
    ssize_t n = read(s->fd, s->buf + s->have, sizeof(s->buf) - s->have);
    if (n <= 0) {
        s->pipe_open = false;
        return;
    }
    s->have += (size_t)n;
    if (s->have < sizeof(s->buf))
        return;
    s->have = 0;
    command(s);
}

/* The watchdog's rules at now: SIGTERM when electd is gone or the lease is down to the stop
 * timeout; SIGKILL at the kill point. True once the workload was killed and reaped. */
static bool enforce(shim_t *s, uint64_t now, int *status)
{
    bool gone = parent_died || (s->wd.watch && !s->pipe_open);
    if (workload_watchdog_term_due(&s->wd, gone, now)) {
        say(gone ? "electd is gone: stopping the workload"
                 : "lease about to expire unrenewed: stopping the workload");
        /* Only electd's death, seen before anything else stopped the workload and while its
         * lease held, releases the lease: a frozen electd, an expiring lease or electd's own
         * 'T' never do (docs/guarantees.md, "Released lease on process death"). */
        s->notice = gone && now < s->wd.deadline_ns;
        kill(-s->child, SIGTERM);
        workload_watchdog_termed(&s->wd, now);
    }
    if (now < workload_watchdog_kill_ns(&s->wd))
        return false;
    say(now >= s->wd.deadline_ns ? "lease expired: killing the workload"
                                 : "stop timeout: killing the workload");
    kill(-s->child, SIGKILL);
    waitpid(s->child, status, 0);
    return true;
}

/* Stays the workload's parent until its main process has exited; returns its wait status. */
static int watch(shim_t *s)
{
    int status = 0;
    for (;;) {
        if (waitpid(s->child, &status, WNOHANG) == s->child)
            break;
        uint64_t now = sidecar_clock_boot_ns();
        if (enforce(s, now, &status))
            break;
        wait_and_read(s, now);
    }
    /* The main process is gone; nothing else of its group may outlive it. */
    kill(-s->child, SIGKILL);
    return status;
}

/* After the workload's main process was reaped: true once no process of its group is left,
 * zombies included (kill(-pgid, 0) finds a process until it is reaped), within
 * GROUP_GONE_WAIT_MS. Anything that joined the group late gets SIGKILL too. */
static bool group_gone(pid_t pgid)
{
    uint64_t until = sidecar_clock_boot_ns() + GROUP_GONE_WAIT_MS * 1000000ull;
    for (;;) {
        if (kill(-pgid, 0) != 0 && errno == ESRCH)
            return true;
        if (sidecar_clock_boot_ns() >= until)
            return false;
        kill(-pgid, SIGKILL);
        (void)poll(NULL, 0, 1);
    }
}

/* electd died while the workload ran under its lease, and the workload is dead: once its
 * whole group is confirmed gone, tells the other members that the lease of s->term is
 * released, so that one of them may lead without waiting for it. Never while any process of
 * the group may still run. */
static void release_lease(shim_t *s)
{
    if (!s->notice || s->term == 0)
        return;
    char line[160];
    if (!group_gone(s->child)) {
        snprintf(line, sizeof(line),
                 "the workload's process group is not gone after %d ms: no released-lease "
                 "notice (the lease of term %llu runs out instead)",
                 GROUP_GONE_WAIT_MS, (unsigned long long)s->term);
        say(line);
        return;
    }
    snprintf(line, sizeof(line),
             "the workload's process group is gone: announcing the released lease of term %llu",
             (unsigned long long)s->term);
    say_info(line);
    char kit[4096 + sizeof(SIDECAR_NOTICE_KIT)];
    snprintf(kit, sizeof(kit), "%s/%s", s->data_dir, SIDECAR_NOTICE_KIT);
    (void)sidecar_notice_send(kit, s->term, SIDECAR_NOTICE_MS, say_info);
}

/* JSON mode, after the workload: its last output (a line without newline too) is written
 * once its pipes close, bounded by OUTPUT_DRAIN_MS (a process it left outside its group may
 * hold them open). */
static void drain_output(shim_t *s)
{
    if (s->node == NULL)
        return;
    s->pipe_open = false; /* electd's commands are moot now */
    uint64_t until = sidecar_clock_boot_ns() + OUTPUT_DRAIN_MS * 1000000ull;
    while (!shim_output_done(&s->out) && sidecar_clock_boot_ns() < until)
        (void)wait_ready(s, POLL_MAX_MS);
    shim_output_close(&s->out);
}

int sidecar_shim_main(int argc, char **argv)
{
    shim_t s = {0};
    if (!parse_args(argc, argv, &s))
        return 2;
    signals_install(s.parent);
    if (s.node != NULL) {
        json_mode = true;
        sidecar_log_init(SIDECAR_LOG_INFO, SIDECAR_LOG_JSON, 2, s.node);
        sidecar_log_set_source("shim");
        if (shim_output_open(&s.out) != 0) {
            say_at(SIDECAR_LOG_ERROR, "cannot make the output pipes; not starting the workload");
            return SHIM_FAILED;
        }
    }
    /* A hook has no lease to watch, but still its own group, tied to electd's life. */
    if (s.wd.watch && !first_deadline(&s))
        return SHIM_FAILED;
    if (!spawn(&s, s.cmd))
        return SHIM_FAILED;
    int status = watch(&s);
    release_lease(&s);
    drain_output(&s);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return SHIM_FAILED;
}
