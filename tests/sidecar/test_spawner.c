/* test_spawner.c — shims cloned from the resident spawner (spawner.c), with the real electd
 * binary: the shim is this process's child (as an executed one is), its command line is a
 * shim's (procscan.c finds a previous run's shims by it), the workload gets the fds and the
 * environment asked for and a fresh signal state, a kill reaches it, and when the spawner is
 * gone shims are executed as before. Each test runs in its own process (Criterion's fork),
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

static char parent[24];

/* Starts `electd __shim -1 500 PARENT /tmp -- cmd...` (a hook's shim: no lease to watch). */
static int start_shim(uv_loop_t *loop, struct run *r, char **cmd, char **env, int out_fd)
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
                          .exit_cb = run_exit_cb};
    return workload_proc_spawn(loop, &r->p, &o);
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

/* Waits (bounded) until pid's command line contains want. */
static bool cmdline_has(pid_t pid, const char *want, char *buf, size_t cap)
{
    for (int i = 0; i < 2000; i++) {
        cmdline_of(pid, buf, cap);
        if (strstr(buf, want) != NULL)
            return true;
        usleep(1000);
    }
    return false;
}

/* Waits (bounded) until the shim has started its workload: from then on it handles SIGTERM
 * (before, SIGTERM kills the shim itself, whether cloned or executed). */
static bool workload_started(pid_t shim)
{
    char path[96], buf[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)shim, (int)shim);
    for (int i = 0; i < 2000; i++) {
        FILE *f = fopen(path, "r");
        bool any = f != NULL && fgets(buf, sizeof(buf), f) != NULL && buf[0] != '\0';
        if (f)
            fclose(f);
        if (any)
            return true;
        usleep(1000);
    }
    return false;
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
    /* Dead, not reaped: electd finds out at its next request. */
    char st[64];
    for (int i = 0; i < 2000 && !(cmdline_of(sp, st, sizeof(st)), st[0] == '\0'); i++)
        usleep(1000);
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
