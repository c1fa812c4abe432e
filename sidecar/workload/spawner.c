/* spawner.c — shims started by cloning a small resident process instead of executing electd
 * for each one (launch.h says why).
 *
 * The spawner is electd's own binary, executed once per daemon, at its first shim:
 * `electd __spawner PARENT DATA_DIR PAD`. It waits on a socket for requests, and for each
 * clones itself with CLONE_PARENT, so that the new process is electd's child exactly as a
 * posix_spawn'ed one (electd waits for it on a pidfd, signals it, reaps it; the shim's
 * PR_SET_PDEATHSIG and its parent check name electd). The clone puts the request's fds in
 * place, sets the request's environment, and runs the shim's main function: what the exec of
 * `electd __shim ...` would have run, without the exec, dynamic linking and start-up of a
 * 4 MB binary (about half of the cost of starting a hook on a virtualised host).
 *
 * A clone's command line is the spawner's memory; PAD (spaces) makes room in it for the
 * shim's own command line, written there by the clone, so that /proc/PID/cmdline reads as a
 * shim's always has (procscan.c finds a previous run's shims by it).
 *
 * Requests, one SOCK_SEQPACKET message each, in native byte order (both ends are this
 * binary on this machine):
 *
 *   u32 magic        SPAWNER_MAGIC
 *   u32 n_args       arguments (the shim's argv; argv[1] is SIDECAR_SHIM_ARG)
 *   u32 n_env        environment entries
 *   u32 n_fds        the child's fds 0 .. n_fds-1 (at most WORKLOAD_SPAWN_FDS)
 *   u32 passed       bit i: fd i is passed (SCM_RIGHTS, in order); otherwise /dev/null
 *   then n_args + n_env NUL-terminated strings
 *
 * The reply is an i32: the child's pid, or a negative errno (then no child runs).
 *
 * Failure is never silent and never fatal: when the spawner cannot be started, is gone,
 * or does not answer within SPAWNER_REPLY_MS, electd logs it once, stops it, and executes
 * its shims as before. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "launch.h"
#include "shim.h"

#define SPAWNER_MAGIC    0x31505345u  /* "ESP1" */
#define SPAWNER_MSG_MAX  (160u << 10) /* request bytes; a larger one is executed as before */
#define SPAWNER_REPLY_MS 2000         /* electd waits this long for the child's pid */
#define SPAWNER_SOCK_FD  3            /* the spawner's end of the socket */
#define SPAWNER_PAD      512          /* title bytes beyond a shim's fixed fields */
#define SPAWNER_ARGS_MAX 4096         /* arguments + environment entries of one request */
#define FD_HIGH          64           /* fds are moved above this before going in place */
#define SPAWNER_TRIM_MS  5000         /* quiet this long, the spawner hands its code pages back */

struct req_hdr {
    uint32_t magic, n_args, n_env, n_fds, passed;
};

/* ---- electd's side ----------------------------------------------------------------------- */

static struct {
    pid_t pid;   /* the spawner, once started */
    int sock;    /* electd's end */
    bool broken; /* failed once: shims are executed from then on */
} sp = {.pid = -1, .sock = -1};

/* Gives up on the spawner for the rest of this run (logged once). */
static void spawner_lost(const char *why)
{
    SIDECAR_LOG(SIDECAR_LOG_WARN, "workload spawner failed; shims are executed from now on",
                SIDECAR_LOG_STR("reason", why), SIDECAR_LOG_INT("pid", sp.pid));
    if (sp.pid > 0) {
        kill(sp.pid, SIGKILL);
        (void)waitpid(sp.pid, NULL, 0);
    }
    if (sp.sock >= 0)
        close(sp.sock);
    sp.pid = -1;
    sp.sock = -1;
    sp.broken = true;
}

/* Executes the spawner for the shim command line args (its data directory is args[5]). */
static int spawner_start(char **args)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    char parent[24];
    snprintf(parent, sizeof(parent), "%d", (int)getpid());
    size_t room = strlen(args[0]) + strlen(args[5]) + SPAWNER_PAD;
    char *pad = malloc(room + 1);
    int rv = -ENOMEM;
    if (pad != NULL) {
        memset(pad, ' ', room);
        pad[room] = '\0';
        char *sargs[] = {args[0], SIDECAR_SPAWNER_ARG, parent, args[5], pad, NULL};
        char *env[] = {NULL};
        workload_spawn_t o = {
            .file = args[0], .args = sargs, .env = env, .fds = {-1, -1, 2, sv[1]}, .n_fds = 4};
        rv = workload_exec(&sp.pid, &o);
        free(pad);
    }
    close(sv[1]);
    if (rv != 0) {
        close(sv[0]);
        return rv;
    }
    sp.sock = sv[0];
    return 0;
}

/* The request for o into buf (SPAWNER_MSG_MAX): its length, or 0 when it does not fit. */
static size_t request_build(const workload_spawn_t *o, char *buf, uint32_t *passed)
{
    struct req_hdr h = {.magic = SPAWNER_MAGIC, .n_fds = (uint32_t)o->n_fds};
    size_t at = sizeof(h);
    char **lists[2] = {o->args, o->env};
    uint32_t *counts[2] = {&h.n_args, &h.n_env};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; lists[l][i] != NULL; i++) {
            size_t len = strlen(lists[l][i]) + 1;
            if (at + len > SPAWNER_MSG_MAX || h.n_args + h.n_env >= SPAWNER_ARGS_MAX)
                return 0;
            memcpy(buf + at, lists[l][i], len);
            at += len;
            (*counts[l])++;
        }
    for (int i = 0; i < o->n_fds; i++)
        if (o->fds[i] >= 0)
            h.passed |= 1u << i;
    *passed = h.passed;
    memcpy(buf, &h, sizeof(h));
    return at;
}

/* Sends the request with its fds; 0 or a negative errno. */
static int request_send(const workload_spawn_t *o, const char *buf, size_t len)
{
    int fds[WORKLOAD_SPAWN_FDS], n = 0;
    for (int i = 0; i < o->n_fds; i++)
        if (o->fds[i] >= 0)
            fds[n++] = o->fds[i];
    union {
        struct cmsghdr c;
        char space[CMSG_SPACE(sizeof(fds))];
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > 0) {
        m.msg_control = u.space;
        m.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    return sendmsg(sp.sock, &m, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

int workload_spawner_spawn(const workload_spawn_t *o, pid_t *pid)
{
    size_t n_args = 0;
    while (o->args[n_args] != NULL)
        n_args++;
    if (sp.broken || n_args < 6 || strcmp(o->args[1], SIDECAR_SHIM_ARG) != 0 ||
        o->n_fds > WORKLOAD_SPAWN_FDS)
        return WORKLOAD_SPAWNER_NONE;
    if (sp.pid < 0) {
        int rv = spawner_start(o->args);
        if (rv != 0) {
            SIDECAR_LOG(SIDECAR_LOG_WARN, "cannot start the workload spawner; shims are executed",
                        SIDECAR_LOG_STR("error", strerror(-rv)));
            sp.broken = true;
            return WORKLOAD_SPAWNER_NONE;
        }
    }
    char *buf = malloc(SPAWNER_MSG_MAX);
    uint32_t passed = 0;
    size_t len = buf != NULL ? request_build(o, buf, &passed) : 0;
    int rv = len > 0 ? request_send(o, buf, len) : WORKLOAD_SPAWNER_NONE;
    free(buf);
    if (rv == WORKLOAD_SPAWNER_NONE || rv == -EMSGSIZE)
        return WORKLOAD_SPAWNER_NONE; /* too large for a message: executed as before */
    if (rv != 0) {
        spawner_lost(strerror(-rv)); /* nothing reached it: executed as before */
        return WORKLOAD_SPAWNER_NONE;
    }
    /* From here a child may run: on any failure no second one is started (its fds are the
     * caller's; a shim that gets no lease deadline starts nothing, docs/guarantees.md). */
    struct pollfd p = {.fd = sp.sock, .events = POLLIN};
    int32_t reply = 0;
    int pr;
    do
        pr = poll(&p, 1, SPAWNER_REPLY_MS);
    while (pr < 0 && errno == EINTR);
    ssize_t got = pr > 0 ? recv(sp.sock, &reply, sizeof(reply), 0) : -1;
    if (got != (ssize_t)sizeof(reply)) {
        spawner_lost(pr == 0 ? "no answer" : got == 0 ? "it exited" : "bad answer");
        return -EIO;
    }
    if (reply <= 0)
        return reply < 0 ? reply : -EIO;
    *pid = reply;
    return 0;
}

/* ---- the spawner ------------------------------------------------------------------------- */

struct req {
    uint32_t n_args, n_fds, passed;
    char **args, **env;
    int fds[WORKLOAD_SPAWN_FDS]; /* the received fds, in the order of `passed` */
};

static char *title;      /* the spawner's command line: argv[0] .. the end of PAD */
static size_t title_len; /* its bytes */

/* Reads one request; 1 with r filled (r->args and r->env point into buf), 0 for a request
 * that is not valid (its fds closed), -1 when electd is gone. */
static int request_recv(char *buf, struct req *r)
{
    int fds[WORKLOAD_SPAWN_FDS];
    union {
        struct cmsghdr c;
        char space[CMSG_SPACE(sizeof(fds))];
    } u;
    struct iovec iov = {.iov_base = buf, .iov_len = SPAWNER_MSG_MAX};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.space,
                       .msg_controllen = sizeof(u.space)};
    ssize_t n;
    do
        n = recvmsg(SPAWNER_SOCK_FD, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    size_t n_rx = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (n_rx < WORKLOAD_SPAWN_FDS)
                    r->fds[n_rx++] = fd;
                else
                    close(fd);
            }
    struct req_hdr h;
    bool ok = (size_t)n >= sizeof(h) && !(m.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
    if (ok) {
        memcpy(&h, buf, sizeof(h));
        ok = h.magic == SPAWNER_MAGIC && h.n_fds <= WORKLOAD_SPAWN_FDS && h.n_args >= 6 &&
             h.n_args + h.n_env <= SPAWNER_ARGS_MAX && h.passed < (1u << h.n_fds) &&
             (size_t)__builtin_popcount(h.passed) == n_rx;
    }
    /* Every string NUL-terminated inside the message. */
    size_t at = sizeof(h), want = ok ? h.n_args + h.n_env : 0, k = 0;
    char **v = ok ? calloc(want + 2, sizeof(char *)) : NULL;
    for (; v != NULL && k < want && at < (size_t)n; k++) {
        char *end = memchr(buf + at, '\0', (size_t)n - at);
        if (end == NULL)
            break;
        v[k + (k >= h.n_args)] = buf + at; /* a NULL between the two lists */
        at = (size_t)(end - buf) + 1;
    }
    if (v == NULL || k != want || strcmp(v[1], SIDECAR_SHIM_ARG) != 0) {
        free(v);
        for (size_t i = 0; i < n_rx; i++)
            close(r->fds[i]);
        return 0;
    }
    r->n_args = h.n_args;
    r->n_fds = h.n_fds;
    r->passed = h.passed;
    r->args = v;
    r->env = v + h.n_args + 1;
    return 1;
}

/* The clone's command line: the shim's, NUL-separated, cut to the room the spawner has. */
static void title_set(char **args)
{
    size_t at = 0;
    for (size_t i = 0; args[i] != NULL && at + 1 < title_len; i++) {
        size_t len = strlen(args[i]);
        if (len > title_len - 1 - at)
            len = title_len - 1 - at;
        memcpy(title + at, args[i], len);
        at += len;
        title[at++] = '\0';
    }
    memset(title + at, 0, title_len - at);
}

/* In the clone: the request's fds as 0 .. n_fds-1 and no other. */
static void fds_in_place(const struct req *r)
{
    int tmp[WORKLOAD_SPAWN_FDS], k = 0;
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (uint32_t i = 0; i < r->n_fds; i++) {
        int src = (r->passed & (1u << i)) ? r->fds[k++] : null_fd;
        tmp[i] = fcntl(src, F_DUPFD_CLOEXEC, FD_HIGH);
    }
    for (uint32_t i = 0; i < r->n_fds; i++)
        if (tmp[i] < 0 || dup2(tmp[i], (int)i) < 0)
            _exit(SIDECAR_SHIM_EXEC_FAILED);
    if (syscall(SYS_close_range, r->n_fds, ~0u, 0) != 0)
        for (int fd = (int)r->n_fds; fd < FD_HIGH + WORKLOAD_SPAWN_FDS + 8; fd++)
            close(fd);
}

/* In the clone: the signal state of a fresh process (every disposition default, nothing
 * blocked), as posix_spawn gives an executed shim (launch.c). */
static void signals_fresh(void)
{
    unsigned long ksa[8] = {0}; /* a zeroed kernel sigaction: SIG_DFL, no flags, no mask */
    for (int sig = 1; sig < _NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)syscall(SYS_rt_sigaction, sig, ksa, NULL, _NSIG / 8);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

extern char **environ;

/* The clone: becomes the shim of the request. Never returns. */
static void clone_run(struct req *r)
{
    title_set(r->args);
    fds_in_place(r);
    signals_fresh();
    environ = r->env;
    int rc = sidecar_shim_main((int)r->n_args, r->args);
    fflush(NULL);
    _exit(rc);
}

int sidecar_spawner_main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: electd %s PARENT DATA_DIR PAD (internal)\n", SIDECAR_SPAWNER_ARG);
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)atoi(argv[2]))
        return 0; /* electd died before the request above */
    title = argv[0];
    title_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
    static char buf[SPAWNER_MSG_MAX];
    bool trimmed = false;
    for (;;) {
        /* Idle, the spawner's resident memory is mostly code pages run once: handed back
         * (sidecar_trim_code) after a quiet while, as the daemon does. */
        struct pollfd p = {.fd = SPAWNER_SOCK_FD, .events = POLLIN};
        if (!trimmed && poll(&p, 1, SPAWNER_TRIM_MS) == 0) {
            sidecar_trim_code();
            trimmed = true;
        }
        struct req r;
        int got = request_recv(buf, &r);
        trimmed = trimmed && got == 0;
        if (got < 0)
            return 0; /* electd closed its end: it is gone */
        int32_t reply = -EINVAL;
        if (got > 0) {
            /* CLONE_PARENT: the child is electd's, not ours (raw clone: like fork without
             * glibc's handlers, which a single-threaded process holding no lock does not
             * need). */
            long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
            if (pid == 0)
                clone_run(&r);
            reply = pid > 0 ? (int32_t)pid : -errno;
            for (uint32_t i = 0; i < (uint32_t)__builtin_popcount(r.passed); i++)
                close(r.fds[i]);
            free(r.args);
        }
        if (send(SPAWNER_SOCK_FD, &reply, sizeof(reply), MSG_NOSIGNAL) != sizeof(reply))
            return 0;
    }
}
