/* launch.c — children started with posix_spawn and watched on a pidfd (launch.h says why). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void exited_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    workload_proc_t *p = (workload_proc_t *)h;
    int st = 0;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0)
        return; /* not yet (a spurious wake-up) */
    uv_poll_stop(h);
    if (p->guarded) {
        /* The hook's main process is gone; nothing else of its group may outlive it (what
         * its shim did). Before the reap, while the group id is still the hook's. */
        kill(-p->pid, SIGKILL);
        workload_spawner_ended(p->pid);
    }
    int64_t code = 0;
    int sig = 0;
    if (r == p->pid && WIFEXITED(st))
        code = WEXITSTATUS(st);
    else if (r == p->pid && WIFSIGNALED(st))
        sig = WTERMSIG(st);
    else
        code = 127; /* cannot happen: the pidfd keeps the pid ours until reaped */
    p->exit_cb(p, code, sig);
}

/* What the child starts with: fds in place, default signal dispositions, nothing blocked. */
static int child_setup(const workload_spawn_t *o, posix_spawn_file_actions_t *fa,
                       posix_spawnattr_t *at)
{
    int rv = posix_spawn_file_actions_init(fa);
    if (rv != 0)
        return rv;
    for (int i = 0; rv == 0 && i < o->n_fds; i++)
        rv = o->fds[i] >= 0 ? posix_spawn_file_actions_adddup2(fa, o->fds[i], i)
                            : posix_spawn_file_actions_addopen(fa, i, "/dev/null", O_RDWR, 0);
    if (rv == 0)
        rv = posix_spawnattr_init(at);
    if (rv != 0) {
        posix_spawn_file_actions_destroy(fa);
        return rv;
    }
    sigset_t all, none;
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(at, &all);
    posix_spawnattr_setsigmask(at, &none);
    posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    return 0;
}

int workload_exec(pid_t *pid, const workload_spawn_t *o)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int rv = child_setup(o, &fa, &at);
    if (rv != 0)
        return -rv;
    rv = posix_spawn(pid, o->file, &fa, &at, o->args, o->env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return -rv;
}

int workload_proc_spawn(uv_loop_t *loop, workload_proc_t *p, const workload_spawn_t *o)
{
    pid_t pid = -1;
    int rv = workload_spawner_spawn(o, &pid);
    bool guarded = rv == 0 && o->hook_cmd != NULL;
    if (rv == WORKLOAD_SPAWNER_NONE)
        rv = workload_exec(&pid, o);
    if (rv != 0)
        return rv;
    /* Until it is reaped the pid stays the child's, exited or not: the pidfd is its. */
    int fd = pidfd_open_(pid);
    if (fd < 0 || (rv = uv_poll_init(loop, &p->poll, fd)) != 0) {
        rv = fd < 0 ? -errno : rv;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (fd >= 0)
            close(fd);
        return rv;
    }
    p->poll.data = p->data; /* what the close callback is given */
    p->pid = pid;
    p->pidfd = fd;
    p->open = true;
    p->guarded = guarded;
    p->exit_cb = o->exit_cb;
    uv_poll_start(&p->poll, UV_READABLE, exited_cb);
    return 0;
}

int workload_proc_kill(workload_proc_t *p, int sig)
{
    /* A guarded hook: its group, as its shim would have signalled it (the spawner follows
     * a SIGTERM with SIGKILL after the stop timeout; without it, the signal alone). */
    if (p->guarded && workload_spawner_signal(p->pid, sig) != 0)
        return kill(-p->pid, sig) == 0 ? 0 : -errno;
    if (p->guarded)
        return 0;
    return syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) == 0 ? 0 : -errno;
}

void workload_proc_close(workload_proc_t *p, uv_close_cb cb)
{
    uv_close((uv_handle_t *)&p->poll, cb);
    close(p->pidfd);
    p->pidfd = -1;
    p->open = false;
}
