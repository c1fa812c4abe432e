/* spawner.c — shims and hooks started by cloning a small resident process instead of
 * executing electd for each (launch.h says why).
 *
 * The spawner is electd's own binary, executed once per daemon, at its first child:
 * `electd __spawner PARENT DATA_DIR PAD`. It waits on a socket for requests:
 *
 *  - a shim: it clones itself with CLONE_PARENT, so that the new process is electd's child
 *    exactly as a posix_spawn'ed one (electd waits for it on a pidfd, signals it, reaps it;
 *    the shim's PR_SET_PDEATHSIG and its parent check name electd). The clone puts the
 *    request's fds in place, sets the request's environment, and runs the shim's main
 *    function: what the exec of `electd __shim ...` would have run, without the exec,
 *    dynamic linking and start-up of a 4 MB binary. A clone's command line is the
 *    spawner's memory; PAD (spaces) makes room in it for the shim's own command line,
 *    written there by the clone, so that /proc/PID/cmdline reads as a shim's always has
 *    (procscan.c finds a previous run's shims by it).
 *  - a hook: no shim at all. The hook is started directly, as electd's child
 *    (CLONE_PARENT), sharing the spawner's memory until its exec (CLONE_VM|CLONE_VFORK),
 *    in a process group of its own; the spawner is the guard the shim was: a stop it is
 *    asked for ('K' with SIGTERM) is SIGTERM to the group and SIGKILL after the stop
 *    timeout, and when electd dies (its end of the socket closes) every hook group still
 *    running is stopped the same way before the spawner exits; procscan.c waits for such a
 *    spawner as for a shim. electd kills what is left of the group when the hook's main
 *    process exits, before it reaps it (so that the group id is still the hook's), and
 *    tells the spawner ('E'). Starting a hook so costs one clone and one exec instead of
 *    two clones and one exec of electd besides: about half.
 *
 * Messages from electd, one SOCK_SEQPACKET message each, in native byte order (both ends
 * are this binary on this machine):
 *
 *   u32 magic        SPAWNER_MAGIC
 *   u32 kind         'S' a shim, 'H' a hook, 'K' signal a hook's group, 'E' a hook ended
 *   u32 n_args       arguments (S: the shim's argv, argv[1] is SIDECAR_SHIM_ARG; H: the hook's)
 *   u32 n_env        environment entries (S, H)
 *   u32 n_fds        the child's fds 0 .. n_fds-1 (S, H; at most WORKLOAD_SPAWN_FDS)
 *   u32 passed       bit i: fd i is passed (SCM_RIGHTS, in order); otherwise /dev/null
 *   u32 pid          K, E: the hook (its process group)
 *   u32 value        H: the stop timeout in ms; K: the signal
 *   then n_args + n_env NUL-terminated strings
 *
 * S and H are answered with an i32: the child's pid, or a negative errno (then no child
 * runs). K and E are not answered. The spawner acts on K and E only for a hook it started.
 *
 * Failure is never silent and never fatal: when the spawner cannot be started, is gone,
 * or does not answer within SPAWNER_REPLY_MS, electd logs it once, stops it, and executes
 * shims (hooks under them) as before. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "launch.h"
#include "shim.h"

#define SPAWNER_MAGIC    0x32505345u  /* "ESP2" */
#define SPAWNER_MSG_MAX  (160u << 10) /* request bytes; a larger one is executed as before */
#define SPAWNER_REPLY_MS 2000         /* electd waits this long for the child's pid */
#define SPAWNER_SOCK_FD  3            /* the spawner's end of the socket */
#define SPAWNER_PAD      512          /* title bytes beyond a shim's fixed fields */
#define SPAWNER_ARGS_MAX 4096         /* arguments + environment entries of one request */
#define SPAWNER_TRIM_MS  5000         /* quiet this long, the spawner hands its code pages back */
#define GUARDED_MAX      65536        /* hook groups guarded at once; more run under shims */
#define GROUP_GONE_MS    5000         /* after electd's death: wait beyond the stop timeouts */
#define HOOK_STACK_BYTES (64 << 10)   /* the hook's stack until its exec */
#define FD_HIGH          64           /* fds are moved above this before going in place */

struct msg_hdr {
    uint32_t magic, kind, n_args, n_env, n_fds, passed, pid, value;
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

/* The message for o into buf (SPAWNER_MSG_MAX): its length, or 0 when it does not fit. */
static size_t request_build(const workload_spawn_t *o, char *buf)
{
    bool hook = o->hook_cmd != NULL;
    struct msg_hdr h = {.magic = SPAWNER_MAGIC,
                        .kind = hook ? 'H' : 'S',
                        .n_fds = (uint32_t)o->n_fds,
                        .value = hook ? o->stop_ms : 0};
    size_t at = sizeof(h);
    char **lists[2] = {hook ? o->hook_cmd : o->args, o->env};
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
    memcpy(buf, &h, sizeof(h));
    return at;
}

/* Sends a message with o's fds (o NULL: none); 0 or a negative errno. */
static int msg_send(const workload_spawn_t *o, const void *buf, size_t len, int flags)
{
    int fds[WORKLOAD_SPAWN_FDS], n = 0;
    for (int i = 0; o != NULL && i < o->n_fds; i++)
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
    return sendmsg(sp.sock, &m, MSG_NOSIGNAL | flags) == (ssize_t)len ? 0 : -errno;
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
    size_t len = buf != NULL ? request_build(o, buf) : 0;
    int rv = len > 0 ? msg_send(o, buf, len, 0) : WORKLOAD_SPAWNER_NONE;
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
    if (reply == -ENOSPC && o->hook_cmd != NULL)
        return WORKLOAD_SPAWNER_NONE; /* guarding as many hooks as it may: under a shim */
    if (reply <= 0)
        return reply < 0 ? reply : -EIO;
    *pid = reply;
    return 0;
}

/* K or E for a hook the spawner started. */
static int hook_msg(uint32_t kind, pid_t pid, uint32_t value)
{
    if (sp.sock < 0)
        return WORKLOAD_SPAWNER_NONE;
    struct msg_hdr h = {.magic = SPAWNER_MAGIC, .kind = kind, .pid = (uint32_t)pid, .value = value};
    /* Never blocks the loop: the spawner reads at once, and a full socket means it is stuck. */
    return msg_send(NULL, &h, sizeof(h), MSG_DONTWAIT) == 0 ? 0 : WORKLOAD_SPAWNER_NONE;
}

int workload_spawner_signal(pid_t pid, int sig)
{
    return hook_msg('K', pid, (uint32_t)sig);
}

void workload_spawner_ended(pid_t pid)
{
    (void)hook_msg('E', pid, 0);
}

/* ---- the spawner ------------------------------------------------------------------------- */

struct req {
    struct msg_hdr h;
    char **args, **env;
    int fds[WORKLOAD_SPAWN_FDS]; /* the received fds, in the order of `passed` */
};

static char *title;      /* the spawner's command line: argv[0] .. the end of PAD */
static size_t title_len; /* its bytes */

/* The hooks this spawner started and guards, until electd says they ended. */
struct guarded {
    pid_t pgid;
    uint32_t stop_ms;
    uint64_t kill_at_ns; /* SIGKILL due (a stop was asked for); 0: none */
};
static struct guarded *guards;
static size_t n_guards, cap_guards;

static struct guarded *guard_find(pid_t pgid)
{
    for (size_t i = 0; i < n_guards; i++)
        if (guards[i].pgid == pgid)
            return &guards[i];
    return NULL;
}

static void guard_drop(struct guarded *g)
{
    *g = guards[--n_guards];
}

/* Reads one message; 1 with r filled (r->args and r->env point into buf), 0 for a message
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
    struct msg_hdr *h = &r->h;
    bool ok = (size_t)n >= sizeof(*h) && !(m.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
    if (ok) {
        memcpy(h, buf, sizeof(*h));
        bool child = h->kind == 'S' || h->kind == 'H';
        ok = h->magic == SPAWNER_MAGIC && h->n_fds <= WORKLOAD_SPAWN_FDS &&
             h->n_args + h->n_env <= SPAWNER_ARGS_MAX && h->passed < (1u << h->n_fds) &&
             (size_t)__builtin_popcount(h->passed) == n_rx &&
             (child ? h->n_args >= (h->kind == 'S' ? 6 : 1)
                    : (h->kind == 'K' || h->kind == 'E') && h->n_args + h->n_env == 0);
    }
    /* Every string NUL-terminated inside the message. */
    size_t at = sizeof(*h), want = ok ? h->n_args + h->n_env : 0, k = 0;
    char **v = ok ? calloc(want + 2, sizeof(char *)) : NULL;
    for (; v != NULL && k < want && at < (size_t)n; k++) {
        char *end = memchr(buf + at, '\0', (size_t)n - at);
        if (end == NULL)
            break;
        v[k + (k >= h->n_args)] = buf + at; /* a NULL between the two lists */
        at = (size_t)(end - buf) + 1;
    }
    if (v == NULL || k != want || (h->kind == 'S' && strcmp(v[1], SIDECAR_SHIM_ARG) != 0)) {
        free(v);
        for (size_t i = 0; i < n_rx; i++)
            close(r->fds[i]);
        return 0;
    }
    r->args = v;
    r->env = v + h->n_args + 1;
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

/* In the child: the request's fds as 0 .. n_fds-1 and no other. Syscalls only (a hook's
 * child shares the spawner's memory). */
static void fds_in_place(const struct req *r)
{
    int tmp[WORKLOAD_SPAWN_FDS], k = 0;
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (uint32_t i = 0; i < r->h.n_fds; i++) {
        int src = (r->h.passed & (1u << i)) ? r->fds[k++] : null_fd;
        tmp[i] = fcntl(src, F_DUPFD_CLOEXEC, FD_HIGH);
    }
    for (uint32_t i = 0; i < r->h.n_fds; i++)
        if (tmp[i] < 0 || dup2(tmp[i], (int)i) < 0)
            _exit(SIDECAR_SHIM_EXEC_FAILED);
    if (syscall(SYS_close_range, r->h.n_fds, ~0u, 0) != 0)
        for (int fd = (int)r->h.n_fds; fd < FD_HIGH + WORKLOAD_SPAWN_FDS + 8; fd++)
            close(fd);
}

/* In the child: the signal state of a fresh process (every disposition default, nothing
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

/* A shim's clone: becomes the shim of the request. Never returns. */
static void shim_run(struct req *r)
{
    title_set(r->args);
    fds_in_place(r);
    signals_fresh();
    environ = r->env;
    int rc = sidecar_shim_main((int)r->h.n_args, r->args);
    fflush(NULL);
    _exit(rc);
}

/* A hook's child, in the spawner's memory until its exec: its own group, then the hook. */
static int hook_run(void *arg)
{
    struct req *r = arg;
    setpgid(0, 0);
    fds_in_place(r);
    signals_fresh();
    execvp(r->args[0], r->args); /* environ is the request's (set by the spawner) */
    int err = errno != 0 ? errno : ENOEXEC;
    /* As the shim said it: on the hook's stderr, which electd logs as the hook's output. */
    char line[512];
    int n = snprintf(line, sizeof(line), "electd-shim[%d]: cannot execute %s: %s\n",
                     (int)syscall(SYS_getpid), r->args[0], strerror(err));
    if (n > 0)
        (void)!write(2, line, (size_t)(n < (int)sizeof(line) ? n : (int)sizeof(line) - 1));
    _exit(SIDECAR_SHIM_EXEC_FAILED);
}

/* S or H: the child's pid, or a negative errno. */
static int32_t child_start(struct req *r)
{
    if (r->h.kind == 'S') {
        /* CLONE_PARENT: the child is electd's, not ours (raw clone: like fork without
         * glibc's handlers, which a single-threaded process holding no lock does not
         * need). */
        long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
        if (pid == 0)
            shim_run(r);
        return pid > 0 ? (int32_t)pid : -errno;
    }
    if (n_guards == GUARDED_MAX)
        return -ENOSPC;
    if (n_guards == cap_guards) {
        size_t cap = cap_guards ? 2 * cap_guards : 64;
        struct guarded *g = realloc(guards, cap * sizeof(*g));
        if (g == NULL)
            return -ENOSPC;
        guards = g;
        cap_guards = cap;
    }
    static char stack[HOOK_STACK_BYTES] __attribute__((aligned(64)));
    environ = r->env;
    int pid =
        clone(hook_run, stack + sizeof(stack), CLONE_PARENT | CLONE_VM | CLONE_VFORK | SIGCHLD, r);
    environ = NULL;
    if (pid < 0)
        return -errno;
    guards[n_guards++] = (struct guarded){.pgid = pid, .stop_ms = r->h.value};
    return pid;
}

/* K: the signal to the hook's group; a SIGTERM is followed by SIGKILL after its stop
 * timeout (the shim's rule). */
static void guard_signal(struct guarded *g, int sig, uint64_t now_ns)
{
    kill(-g->pgid, sig);
    if (sig == SIGTERM && g->kill_at_ns == 0)
        g->kill_at_ns = now_ns + (uint64_t)g->stop_ms * 1000000ull;
}

/* SIGKILL to the groups whose stop timeout ran out; ms until the next one is due, or -1. */
static int guards_enforce(uint64_t now_ns)
{
    uint64_t next = 0;
    for (size_t i = 0; i < n_guards; i++) {
        struct guarded *g = &guards[i];
        if (g->kill_at_ns != 0 && now_ns >= g->kill_at_ns) {
            kill(-g->pgid, SIGKILL);
            g->kill_at_ns = 0;
        } else if (g->kill_at_ns != 0 && (next == 0 || g->kill_at_ns < next)) {
            next = g->kill_at_ns;
        }
    }
    return next == 0 ? -1 : (int)((next - now_ns) / 1000000ull + 1);
}

/* Marks alive[i] when pid is a live (not zombie) process of guard i's group. */
static bool mark_alive(long pid, void *arg)
{
    bool *alive = arg;
    char path[64], st[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, st, sizeof(st) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return true;
    st[n] = '\0';
    const char *p = strrchr(st, ')');
    char state;
    int ppid, pgrp;
    if (p == NULL || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 || state == 'Z')
        return true;
    for (size_t i = 0; i < n_guards; i++)
        alive[i] = alive[i] || guards[i].pgid == pgrp;
    return true;
}

/* Drops the guards whose group has no live process left. A group whose only members are
 * zombies counts as gone: after electd's death its hooks' main processes are reaped by
 * whoever adopted them, maybe late, and a zombie runs nothing. One scan of /proc; a scan that
 * cannot be made drops nothing. */
static void guards_drop_gone(void)
{
    bool *alive = calloc(n_guards ? n_guards : 1, sizeof(bool));
    bool scanned = alive != NULL && shim_proc_each(mark_alive, alive);
    for (size_t i = n_guards; scanned && i-- > 0;)
        if (!alive[i])
            guard_drop(&guards[i]);
    free(alive);
}

/* electd is gone: every hook group still running is stopped as its shim would have stopped
 * it (SIGTERM, SIGKILL after the stop timeout), and the spawner waits until they are gone
 * (bounded), so that a restarted electd, which waits for this process, starts nothing
 * before. */
static int guards_stop_all(void)
{
    const uint64_t gone_ns = GROUP_GONE_MS * 1000000ull;
    uint64_t now = sidecar_clock_boot_ns(), until = now + gone_ns;
    for (size_t i = 0; i < n_guards; i++) {
        guard_signal(&guards[i], SIGTERM, now);
        if (guards[i].kill_at_ns + gone_ns > until)
            until = guards[i].kill_at_ns + gone_ns;
    }
    while (n_guards > 0 && (now = sidecar_clock_boot_ns()) < until) {
        guards_enforce(now);
        guards_drop_gone();
        if (n_guards > 0)
            (void)poll(NULL, 0, 10);
    }
    return 0;
}

int sidecar_spawner_main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: electd %s PARENT DATA_DIR PAD (internal)\n", SIDECAR_SPAWNER_ARG);
        return 2;
    }
    /* What is meant for electd's whole group or unit (Ctrl-C, systemd's SIGTERM to the
     * cgroup) is electd's to act on: the spawner stays until electd is gone, then stops the
     * hooks still running. Its children start with every signal at its default. */
    static const int ignored[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        signal(ignored[i], SIG_IGN);
    if (getppid() != (pid_t)atoi(argv[2]))
        return 0; /* electd died before it could ask anything */
    title = argv[0];
    title_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
    static char buf[SPAWNER_MSG_MAX];
    bool trimmed = false;
    for (;;) {
        /* Idle, the spawner's resident memory is mostly code pages run once: handed back
         * (sidecar_trim_code) after a quiet while, as the daemon does. */
        int due_ms = guards_enforce(sidecar_clock_boot_ns());
        int wait_ms = due_ms >= 0 ? due_ms : trimmed ? -1 : SPAWNER_TRIM_MS;
        struct pollfd p = {.fd = SPAWNER_SOCK_FD, .events = POLLIN};
        int pr = poll(&p, 1, wait_ms);
        if (pr == 0 && due_ms < 0) {
            sidecar_trim_code();
            trimmed = true;
        }
        if (pr <= 0)
            continue;
        struct req r = {0};
        int got = request_recv(buf, &r);
        if (got < 0)
            return guards_stop_all(); /* electd closed its end: it is gone */
        trimmed = trimmed && got == 0;
        int32_t reply = -EINVAL;
        if (got > 0 && (r.h.kind == 'K' || r.h.kind == 'E')) {
            struct guarded *g = guard_find((pid_t)r.h.pid);
            if (g != NULL && r.h.kind == 'K' && r.h.value > 0 && r.h.value < _NSIG)
                guard_signal(g, (int)r.h.value, sidecar_clock_boot_ns());
            else if (g != NULL && r.h.kind == 'E')
                guard_drop(g);
            free(r.args);
            continue; /* not answered */
        }
        if (got > 0) {
            reply = child_start(&r);
            for (int i = 0; i < __builtin_popcount(r.h.passed); i++)
                close(r.fds[i]);
            free(r.args);
        }
        if (send(SPAWNER_SOCK_FD, &reply, sizeof(reply), MSG_NOSIGNAL) != sizeof(reply))
            return guards_stop_all();
    }
}
