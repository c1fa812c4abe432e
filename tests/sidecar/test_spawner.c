/* test_spawner.c — shims cloned from the resident spawner (spawner.c), with the real electd
 * binary: the shim is this process's child (as an executed one is), its command line is a
 * shim's (procscan.c finds a previous run's shims by it), the workload gets the fds and the
 * environment asked for and a fresh signal state, a kill reaches it, and when the spawner is
 * gone shims are executed as before. Hooks, started by the spawner without a shim, keep the
 * shim's rules: own process group, the group killed when the hook's main process exits, a
 * stop is SIGTERM then SIGKILL after the stop timeout, and electd's death stops the group
 * (a restarted electd waits for that). Each test runs in its own process (Criterion's fork),
 * with its own spawner. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_run.h"
#include "shim.h"
#include "workload_int.h"

static char parent[24];

/* Starts `electd __shim -1 500 PARENT /tmp -- cmd...` (a hook's shim: no lease to watch);
 * with stop_ms > 0 as a hook, which the spawner runs itself, guarded. */
static int start_child(uv_loop_t *loop, struct run *r, char **cmd, char **env, int out_fd,
                       uint32_t stop_ms)
{
    memset(r, 0, sizeof(*r));
    r->p.data = r;
    snprintf(parent, sizeof(parent), "%d", (int)getpid());
    char *args[32] = {ELECTD_BIN, SIDECAR_SHIM_ARG, "-1", "500", parent, "/tmp", "--"};
    size_t a = 7;
    for (size_t i = 0; cmd[i] != NULL && a < 31; i++)
        args[a++] = cmd[i];
    args[a] = NULL;
    workload_spawn_t o = {.file = ELECTD_BIN,
                          .args = args,
                          .env = env,
                          .fds = {-1, out_fd, out_fd},
                          .n_fds = 3,
                          .exit_cb = run_exit_cb,
                          .hook_cmd = stop_ms > 0 ? args + 7 : NULL,
                          .stop_ms = stop_ms};
    return workload_proc_spawn(loop, &r->p, &o);
}

static int start_shim(uv_loop_t *loop, struct run *r, char **cmd, char **env, int out_fd)
{
    return start_child(loop, r, cmd, env, out_fd, 0);
}

static int start_hook(uv_loop_t *loop, struct run *r, char **cmd, char **env, int out_fd,
                      uint32_t stop_ms)
{
    return start_child(loop, r, cmd, env, out_fd, stop_ms);
}

/* /proc/PID/cmdline, NULs as '|', trailing ones dropped. */
static void cmdline_of(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (size_t i = 0; i < n; i++)
        buf[i] = buf[i] == '\0' ? '|' : buf[i];
    buf[n] = '\0';
}

static pid_t ppid_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    pid_t ppid = -1;
    while (f != NULL && fgets(line, sizeof(line), f))
        if (sscanf(line, "PPid: %d", &ppid) == 1)
            break;
    if (f)
        fclose(f);
    return ppid;
}

/* This process's child running `electd __spawner`, or -1. */
static pid_t spawner_pid(void)
{
    DIR *d = opendir("/proc");
    pid_t found = -1;
    struct dirent *e;
    while (d != NULL && found < 0 && (e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        char cmd[256];
        if (pid <= 0 || ppid_of(pid) != getpid())
            continue;
        cmdline_of(pid, cmd, sizeof(cmd));
        if (strstr(cmd, "|" SIDECAR_SPAWNER_ARG "|") != NULL)
            found = pid;
    }
    if (d)
        closedir(d);
    return found;
}

struct cmdline_want {
    pid_t pid;
    const char *want;
    char *buf;
    size_t cap;
};

static bool cmdline_holds(void *arg)
{
    struct cmdline_want *c = arg;
    cmdline_of(c->pid, c->buf, c->cap);
    return strstr(c->buf, c->want) != NULL;
}

/* Waits (up to 2 s) until pid's command line contains want. */
static bool cmdline_has(pid_t pid, const char *want, char *buf, size_t cap)
{
    struct cmdline_want c = {pid, want, buf, cap};
    return poll_until(cmdline_holds, &c, 2000);
}

static bool has_children(void *shim)
{
    char path[96], buf[64];
    pid_t pid = *(pid_t *)shim;
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    bool any = f != NULL && fgets(buf, sizeof(buf), f) != NULL && buf[0] != '\0';
    if (f)
        fclose(f);
    return any;
}

/* Waits (up to 2 s) until the shim has started its workload: from then on it handles SIGTERM
 * (before, SIGTERM kills the shim itself, whether cloned or executed). */
static bool workload_started(pid_t shim)
{
    return poll_until(has_children, &shim, 2000);
}

Test(spawner, a_cloned_shim_is_electds_child_and_reads_as_a_shim_in_proc)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *cmd[] = {"/bin/sleep", "30", NULL};
    char *env[] = {NULL};
    struct run r;
    cr_assert_eq(start_shim(&loop, &r, cmd, env, -1), 0);
    pid_t sp = spawner_pid();
    cr_assert_gt(sp, 0, "no spawner: the shim was executed, not cloned");
    cr_assert_eq(ppid_of(r.p.pid), getpid(), "the shim is not this process's child");
    char want[128], got[4096];
    snprintf(want, sizeof(want), ELECTD_BIN "|" SIDECAR_SHIM_ARG "|-1|500|%s|/tmp|--|/bin/sleep|30",
             parent);
    cr_assert(cmdline_has(r.p.pid, want, got, sizeof(got)), "cmdline %s, want %s", got, want);
    cr_assert_eq(strncmp(got, want, strlen(want)), 0, "cmdline %s", got);
    /* SIGTERM to the shim stops the workload's group; the shim exits with its status. */
    cr_assert(workload_started(r.p.pid));
    cr_assert_eq(workload_proc_kill(&r.p, SIGTERM), 0);
    run_finish(&loop, &r);
    cr_assert_eq(r.status, 128 + SIGTERM, "status %lld sig %d", (long long)r.status, r.sig);
    uv_loop_close(&loop);
}

Test(spawner, the_workload_gets_the_fds_and_environment_asked_for_and_no_signal_state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    char *cmd[] = {"/bin/sh", "-c",
                   "echo \"$ELECTD_ELECTION\"; readlink /proc/self/fd/0; ls /proc/self/fd | wc -l; "
                   "grep -E '^Sig(Blk|Ign)' /proc/self/status; exit 3",
                   NULL};
    char *env[] = {"ELECTD_ELECTION=e7", "PATH=/usr/bin:/bin", NULL};
    struct run r;
    cr_assert_eq(start_shim(&loop, &r, cmd, env, fds[1]), 0);
    close(fds[1]);
    cr_assert_gt(spawner_pid(), 0, "no spawner: the shim was executed, not cloned");
    run_finish(&loop, &r);
    cr_assert_eq(r.status, 3);
    char buf[512];
    size_t n = 0;
    ssize_t k;
    while (n + 1 < sizeof(buf) && (k = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(fds[0]);
    unsigned long long blk = 1, ign = 1;
    int n_fds = 0;
    char name[16] = "";
    cr_assert_eq(
        sscanf(buf, "%15s\n/dev/null\n%d\nSigBlk:\t%llx\nSigIgn:\t%llx", name, &n_fds, &blk, &ign),
        4, "%s", buf);
    cr_assert_str_eq(name, "e7");
    /* 0, 1, 2 and the one ls opens to list them: nothing of electd's or the spawner's. */
    cr_assert_eq(n_fds, 4, "%s", buf);
    cr_assert_eq(blk, 0, "%s", buf);
    cr_assert_eq(ign, 0, "%s", buf);
    uv_loop_close(&loop);
}

Test(spawner, when_the_spawner_is_gone_shims_are_executed_as_before)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *cmd[] = {"/bin/true", NULL};
    char *env[] = {NULL};
    struct run r;
    cr_assert_eq(start_shim(&loop, &r, cmd, env, -1), 0);
    run_finish(&loop, &r);
    cr_assert_eq(r.status, 0);
    pid_t sp = spawner_pid();
    cr_assert_gt(sp, 0);
    cr_assert_eq(kill(sp, SIGKILL), 0);
    /* A zombie (its socket closed: a process is one only after its files are), not reaped:
     * electd finds out at its next request, which then never reached it. */
    cr_assert(run_wait_zombie(sp));
    char *cmd2[] = {"/bin/sleep", "30", NULL};
    cr_assert_eq(start_shim(&loop, &r, cmd2, env, -1), 0);
    char want[128], got[4096];
    snprintf(want, sizeof(want), ELECTD_BIN "|" SIDECAR_SHIM_ARG "|-1|500|%s|/tmp|--|/bin/sleep|30",
             parent);
    cr_assert(cmdline_has(r.p.pid, want, got, sizeof(got)), "cmdline %s", got);
    cr_assert_eq(ppid_of(r.p.pid), getpid());
    cr_assert_eq(waitpid(sp, NULL, WNOHANG), -1, "the dead spawner was not reaped");
    cr_assert_eq(errno, ECHILD);
    cr_assert_eq(spawner_pid(), -1, "a spawner was started again");
    cr_assert(workload_started(r.p.pid));
    cr_assert_eq(workload_proc_kill(&r.p, SIGTERM), 0);
    run_finish(&loop, &r);
    cr_assert_eq(r.status, 128 + SIGTERM);
    uv_loop_close(&loop);
}

struct file_want {
    const char *path, *want;
};

static bool file_holds(void *arg)
{
    const struct file_want *fw = arg;
    char buf[4096] = "";
    FILE *f = fopen(fw->path, "r");
    size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return strstr(buf, fw->want) != NULL;
}

/* Reads path (for up to wait_ms) until it contains want. */
static bool file_has_within(const char *path, const char *want, int wait_ms)
{
    struct file_want fw = {path, want};
    return poll_until(file_holds, &fw, wait_ms);
}

static bool file_has(const char *path, const char *want)
{
    return file_has_within(path, want, 5000);
}

/* True while some process of group pgid is alive (not a zombie). */
static bool group_alive(pid_t pgid)
{
    DIR *d = opendir("/proc");
    bool alive = false;
    struct dirent *e;
    while (d != NULL && !alive && (e = readdir(d)) != NULL) {
        char path[300], st[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = atoi(e->d_name) > 0 ? fopen(path, "r") : NULL;
        if (f != NULL && fgets(st, sizeof(st), f) != NULL) {
            char state;
            int ppid, pgrp;
            const char *p = strrchr(st, ')');
            alive = p != NULL && sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 &&
                    pgrp == pgid && state != 'Z';
        }
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return alive;
}

static bool group_gone(void *pgid)
{
    return !group_alive(*(int *)pgid);
}

Test(spawner, a_hook_runs_without_a_shim_in_its_own_group_and_nothing_of_it_outlives_it)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char marks[64];
    snprintf(marks, sizeof(marks), "/tmp/electd-spawner-test-%d", (int)getpid());
    char script[256];
    /* A child left behind in the group, which must not outlive the hook. */
    snprintf(script, sizeof(script), "sleep 30 & echo \"bg $!\" > %s; exit 5", marks);
    char *cmd[] = {"/bin/sh", "-c", script, NULL};
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    struct run r;
    cr_assert_eq(start_hook(&loop, &r, cmd, env, -1, 500), 0);
    cr_assert(r.p.guarded, "the hook was not started by the spawner");
    cr_assert_eq(ppid_of(r.p.pid), getpid(), "the hook is not this process's child");
    cr_assert_eq(getpgid(r.p.pid), r.p.pid, "the hook is not in a group of its own");
    char got[4096];
    cmdline_of(r.p.pid, got, sizeof(got));
    cr_assert(strstr(got, SIDECAR_SHIM_ARG) == NULL, "a shim runs the hook: %s", got);
    run_finish(&loop, &r);
    cr_assert_eq(r.status, 5);
    cr_assert(file_has(marks, "bg "));
    cr_assert(poll_until(group_gone, &r.p.pid, 2000), "the hook's background child outlived it");
    unlink(marks);
    uv_loop_close(&loop);
}

Test(spawner, a_stop_is_sigterm_to_the_group_then_sigkill_after_the_stop_timeout)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char marks[64];
    snprintf(marks, sizeof(marks), "/tmp/electd-spawner-test-%d", (int)getpid());
    char script[256];
    snprintf(script, sizeof(script),
             "trap 'echo term >> %s' TERM; echo up >> %s; while :; do sleep 0.01; done", marks,
             marks);
    char *cmd[] = {"/bin/sh", "-c", script, NULL};
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    struct run r;
    cr_assert_eq(start_hook(&loop, &r, cmd, env, -1, 300), 0);
    cr_assert(r.p.guarded);
    cr_assert(file_has(marks, "up"));
    uint64_t t0 = uv_hrtime();
    cr_assert_eq(workload_proc_kill(&r.p, SIGTERM), 0);
    cr_assert(file_has(marks, "term"), "the hook's group got no SIGTERM");
    run_finish(&loop, &r);
    cr_assert_eq(r.sig, SIGKILL, "status %lld sig %d", (long long)r.status, r.sig);
    /* Not before the stop timeout (300 ms). */
    cr_assert_geq(uv_hrtime() - t0, 300000000ull);
    unlink(marks);
    uv_loop_close(&loop);
}

Test(spawner, electds_death_stops_its_hooks_and_a_restart_waits_for_that)
{
    char marks[64];
    snprintf(marks, sizeof(marks), "/tmp/electd-spawner-test-%d", (int)getpid());
    int pids[2];
    cr_assert_eq(pipe(pids), 0);
    pid_t electd = fork();
    if (electd == 0) {
        /* Plays electd: starts a hook that takes its time to stop, then dies with it. */
        uv_loop_t loop;
        uv_loop_init(&loop);
        char script[256];
        snprintf(script, sizeof(script),
                 "trap 'sleep 0.2; echo term >> %s; exit 0' TERM; echo up >> %s; "
                 "while :; do sleep 0.01; done",
                 marks, marks);
        char *cmd[] = {"/bin/sh", "-c", script, NULL};
        char *env[] = {"PATH=/usr/bin:/bin", NULL};
        struct run r;
        int rv = start_hook(&loop, &r, cmd, env, -1, 2000);
        int32_t pid = rv == 0 && r.p.guarded ? r.p.pid : -1;
        (void)!write(pids[1], &pid, sizeof(pid));
        pause();
        _exit(0);
    }
    int32_t hook = -1;
    cr_assert_eq(read(pids[0], &hook, sizeof(hook)), (ssize_t)sizeof(hook));
    cr_assert_gt(hook, 0, "no guarded hook started");
    cr_assert(file_has(marks, "up"));
    cr_assert_eq(kill(electd, SIGKILL), 0);
    cr_assert_eq(waitpid(electd, NULL, 0), electd);
    /* As a restarted electd on the same data directory does: wait for the previous run. */
    workload_procscan_wait("/tmp", 2000);
    /* Looked at once: the hook takes 0.2 s to stop, which the wait must have covered. */
    cr_assert(file_has_within(marks, "term", 0),
              "the hook's group got no SIGTERM when electd died, or the restart did not wait");
    cr_assert(!group_alive(hook), "the restart did not wait until the hook's group was gone");
    unlink(marks);
}
