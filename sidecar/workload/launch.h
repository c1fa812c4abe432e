/* launch.h — private to workload/: starting a child process without fork.
 *
 * uv_spawn forks: the kernel copies electd's page tables and marks its memory copy-on-write,
 * and electd then takes a page fault for each page it writes until the child has exec'd —
 * 10–25 ms of a held loop per child on a virtualised host, seconds when hundreds of named
 * elections start or stop at once (the loop then misses heartbeats and the group loses its
 * leader). posix_spawn shares electd's memory with the child until it execs (glibc's
 * CLONE_VM|CLONE_VFORK): nothing is copied, nothing faults after. The exit is watched on a
 * pidfd (Linux 5.3), so libuv's SIGCHLD handling never sees these children.
 *
 * A shim is cheaper still when it is not executed at all: spawner.c clones it from a small
 * resident process, as electd's child all the same. Executing electd again (its exec,
 * dynamic linking and start-up) was about half of what starting a hook cost. */
#ifndef ELECTD_SIDECAR_WORKLOAD_LAUNCH_H
#define ELECTD_SIDECAR_WORKLOAD_LAUNCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define WORKLOAD_SPAWN_FDS 4 /* the child's fds 0..3 at most */

typedef struct workload_proc workload_proc_t;
typedef void (*workload_proc_exit_cb)(workload_proc_t *p, int64_t exit_status, int term_signal);

/* data is the caller's; the close callback gets &poll, whose data is the same. */
struct workload_proc {
    uv_poll_t poll; /* readable once the child has exited */
    void *data;
    int pid;
    int pidfd;
    bool open;    /* spawned, handle not yet closed */
    bool guarded; /* a hook started by the spawner without a shim: its group is ours to end */
    workload_proc_exit_cb exit_cb;
};

typedef struct workload_spawn {
    const char *file; /* absolute path: no PATH search */
    char **args;
    char **env;
    /* The child's fd i is fds[i] (duplicated into place; -1: /dev/null), for i < n_fds;
     * every other descriptor of electd is close-on-exec. */
    int fds[WORKLOAD_SPAWN_FDS];
    int n_fds;
    workload_proc_exit_cb exit_cb;
    /* A hook's shim: the hook's own command (within args, after "--") and the stop timeout.
     * Where the spawner runs, the hook is started by it directly, without the shim, and
     * guarded by it as the shim would (spawner.c); p->guarded says so. */
    char **hook_cmd;
    uint32_t stop_ms;
} workload_spawn_t;

/* posix_spawn of o->file as described above, without a handle: *pid is the child's. 0 or a
 * negative errno. */
int workload_exec(pid_t *pid, const workload_spawn_t *o);

/* spawner.c: a shim (o->args[1] is SIDECAR_SHIM_ARG) cloned from the resident spawner, as
 * electd's child with the same fds, environment and signal state as workload_exec gives it.
 * 0 with *pid; WORKLOAD_SPAWNER_NONE when it was not tried (no spawner, a request too large,
 * not a shim): then workload_exec is the way; or a negative errno: it failed, and no second
 * child may be started for o (one may run: its fds are the caller's). */
#define WORKLOAD_SPAWNER_NONE 1
int workload_spawner_spawn(const workload_spawn_t *o, pid_t *pid);

/* For a guarded hook: the spawner signals its process group (SIGTERM: SIGKILL follows after
 * the stop timeout). 0, or WORKLOAD_SPAWNER_NONE when the spawner is gone. */
int workload_spawner_signal(pid_t pid, int sig);
/* A guarded hook's main process exited (not yet reaped): the spawner forgets its group. */
void workload_spawner_ended(pid_t pid);

/* Starts the child with default signal dispositions and nothing blocked (as uv_spawn does),
 * and p's poll handle on the loop. 0, or a negative errno (then no handle was opened and no
 * child runs). */
int workload_proc_spawn(uv_loop_t *loop, workload_proc_t *p, const workload_spawn_t *o);

/* Signals the child (pidfd_send_signal: never another process that reused its pid). 0 or a
 * negative errno (-ESRCH once it has exited). */
int workload_proc_kill(workload_proc_t *p, int sig);

/* Stops watching and closes the pidfd; cb gets (uv_handle_t *)&p->poll. A child still
 * running is left to run (as uv_close of a uv_process_t does). Only while p->open. */
void workload_proc_close(workload_proc_t *p, uv_close_cb cb);

#endif
