/* hooks.c — hook mode (--on-start, --on-stop, --on-change): each hook runs under the shim
 * (own process group, stopped with electd), never two at once; transitions that happen while
 * one runs are coalesced; each run is bounded by --hook-timeout and its output is copied to
 * the log line by line, HOOK_LOG_MAX bytes at most (docs/guarantees.md, "Hooks"). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workload_int.h"

#define HOOK_LOG_MAX (64u << 10) /* bytes of one hook run's output copied to the log */

static void hook_flush_line(struct workload_child *c, int i, bool partial)
{
    if (c->line_len[i] == 0)
        return;
    if (c->logged < HOOK_LOG_MAX) {
        c->line[i][c->line_len[i]] = '\0';
        SIDECAR_LOG(SIDECAR_LOG_INFO, "hook output", SIDECAR_LOG_STR("hook", c->name),
                    SIDECAR_LOG_STR("stream", i == 0 ? "stdout" : "stderr"),
                    SIDECAR_LOG_STR("line", c->line[i]), SIDECAR_LOG_BOOL("partial", partial));
        c->logged += c->line_len[i];
        if (c->logged >= HOOK_LOG_MAX)
            SIDECAR_LOG(SIDECAR_LOG_WARN, "hook output limit reached; the rest is dropped",
                        SIDECAR_LOG_STR("hook", c->name));
    }
    c->line_len[i] = 0;
}

static void hook_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[4096];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void hook_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct workload_child *c = s->data;
    int i = s == (uv_stream_t *)&c->out[0] ? 0 : 1;
    if (n < 0) {
        hook_flush_line(c, i, true);
        uv_read_stop(s);
        return;
    }
    for (ssize_t k = 0; k < n; k++) {
        char ch = buf->base[k];
        if (ch == '\n') {
            hook_flush_line(c, i, false);
            continue;
        }
        if (c->line[i] == NULL && (c->line[i] = malloc(HOOK_LINE_MAX)) == NULL)
            return; /* out of memory: the output is not logged */
        if (c->line_len[i] + 1 >= HOOK_LINE_MAX)
            hook_flush_line(c, i, true);
        c->line[i][c->line_len[i]++] = ch;
    }
}

/* The end of on-start or on-stop: the state the hook's result leads to. */
static void hook_outcome(sidecar_workload_t *w, const char *name, bool ok)
{
    if (strcmp(name, "on-start") == 0) {
        /* A failure counts like a crashing workload; on-stop cleans up what it may have
         * begun. */
        workload_set_state(w, SIDECAR_WORKLOAD_PRIMARY);
        if (!ok)
            workload_failure_record(w, "on-start");
    } else if (strcmp(name, "on-stop") == 0) {
        /* A failed or timed-out on-stop may have left the workload running: the successor
         * must then wait out our lease (no "stopped" flag). */
        w->stop_clean = ok;
        w->handed_primary = false;
        w->recovering = false;
        workload_persist_role(w, "standby");
        workload_set_state(w, SIDECAR_WORKLOAD_STANDBY);
    }
}

/* What the hook wrote just before it exited may still be in its pipes: the loop can see the
 * exit first, and the pipes close after this. Read it now; its writers are gone (its group
 * was killed), so the pipes end at once, and the reads are bounded in any case. */
static void hook_drain(struct workload_child *c)
{
    char buf[4096];
    for (int i = 0; i < 2; i++) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->out[i], &fd) != 0)
            continue;
        for (size_t k = 0; k <= HOOK_LOG_MAX / sizeof(buf); k++) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n <= 0)
                break;
            uv_buf_t b = uv_buf_init(buf, (unsigned)n);
            hook_read_cb((uv_stream_t *)&c->out[i], n, &b);
        }
    }
}

static void hook_finished(sidecar_workload_t *w, struct workload_child *c)
{
    bool ok = c->exited && c->status == 0 && !c->timed_out;
    hook_drain(c);
    hook_flush_line(c, 0, true);
    hook_flush_line(c, 1, true);
    SIDECAR_LOG(ok ? SIDECAR_LOG_INFO : SIDECAR_LOG_ERROR, "hook finished",
                SIDECAR_LOG_STR("hook", c->name), SIDECAR_LOG_INT("status", c->status),
                SIDECAR_LOG_BOOL("timed_out", c->timed_out));
    if (!ok)
        w->info.hooks_failed++;
    sidecar_hist_observe(&w->info.hook_seconds, (double)(uv_hrtime() - c->started_ns) / 1e9);
    if (w->mode == MODE_HOOKS) { /* in supervise mode these describe the workload itself */
        w->info.last_exit = (int)c->status;
        w->info.pid = 0;
    }
    const char *name = c->name;
    w->hook = NULL;
    workload_child_close(c);
    hook_outcome(w, name, ok);
    workload_evaluate(w);
}

static void hook_exit_cb(workload_proc_t *p, int64_t status, int sig)
{
    struct workload_child *c = p->data;
    c->exited = true;
    c->status = workload_exit_code(status, sig);
    if (c->w->close_cb != NULL) {
        c->w->hook = NULL;
        workload_child_close(c);
        return;
    }
    hook_finished(c->w, c);
}

static void hook_timeout_cb(uv_timer_t *t)
{
    struct workload_child *c = t->data;
    c->timed_out = true;
    SIDECAR_LOG(SIDECAR_LOG_ERROR, "hook timed out: killing it", SIDECAR_LOG_STR("hook", c->name),
                SIDECAR_LOG_UINT("timeout_ms", c->w->cfg->hook_timeout_ms));
    /* The hook's whole process group stops (SIGTERM, SIGKILL after stop-timeout): by its
     * shim, or by the spawner that guards it (launch.h). */
    workload_proc_kill(&c->proc, SIGTERM);
}

/* Spawns the hook of c (by the spawner, guarded by it, or under its shim), its stdout and
 * stderr into c's pipes. 0 or a UV_E* code; c's handles are open (and closed by
 * workload_child_close) either way. */
static int hook_spawn(sidecar_workload_t *w, struct workload_child *c, char **args, char **hook_cmd,
                      char **env)
{
    uv_pipe_init(w->loop, &c->out[0], 0);
    uv_pipe_init(w->loop, &c->out[1], 0);
    uv_timer_init(w->loop, &c->timeout);
    c->proc.data = c->out[0].data = c->out[1].data = c->timeout.data = c;
    c->handles = 3;
    w->open_children++;
    w->info.hooks_run++;
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    int rv = pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ? -errno : 0;
    if (rv == 0)
        rv = uv_pipe_open(&c->out[0], out[0]);
    if (rv == 0) {
        out[0] = -1; /* the handle's now */
        rv = uv_pipe_open(&c->out[1], err[0]);
    }
    if (rv == 0) {
        err[0] = -1;
        workload_spawn_t o = {.file = args[0],
                              .args = args,
                              .env = env,
                              .fds = {-1, out[1], err[1]},
                              .n_fds = 3,
                              .exit_cb = hook_exit_cb,
                              .hook_cmd = hook_cmd,
                              .stop_ms = w->cfg->stop_timeout_ms};
        if ((rv = workload_proc_spawn(w->loop, &c->proc, &o)) == 0)
            c->handles++;
    }
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    return rv;
}

/* The hook of c runs: its output is read, its time bounded. */
static void hook_started(sidecar_workload_t *w, struct workload_child *c, const char *role)
{
    SIDECAR_LOG(SIDECAR_LOG_INFO, "hook started", SIDECAR_LOG_STR("hook", c->name),
                SIDECAR_LOG_INT("pid", c->proc.pid), SIDECAR_LOG_STR("hook_role", role));
    uv_read_start((uv_stream_t *)&c->out[0], hook_alloc_cb, hook_read_cb);
    uv_read_start((uv_stream_t *)&c->out[1], hook_alloc_cb, hook_read_cb);
    /* From now: the loop's clock may be stale (a start-up that waited for a previous run's
     * shims, a busy round), and the timeout is the hook's own. */
    uv_update_time(w->loop);
    uv_timer_start(&c->timeout, hook_timeout_cb, w->cfg->hook_timeout_ms, 0);
    w->hook = c;
    c->started_ns = uv_hrtime();
    if (strcmp(c->name, "on-start") == 0)
        w->info.starts++;
    if (w->mode == MODE_HOOKS)
        w->info.pid = c->proc.pid;
}

/* Runs one hook; its end comes back through hook_finished. False when it could not be
 * started (counted as a failed hook when it could not be spawned). */
static bool hook_run(sidecar_workload_t *w, const char *name, const sidecar_argv_t *cmd,
                     const char *role, const char *arg)
{
    ELECTD_CHECK(w->hook == NULL); /* hooks never overlap */
    struct workload_child *c = calloc(1, sizeof(*c));
    char **env = workload_child_env(w, role);
    /* Through the shim: own process group, killed with electd, whole tree stopped. */
    size_t cmd_at = 0;
    char **args = workload_child_argv(w, "-1", cmd, arg, &cmd_at);
    if (c == NULL || env == NULL || args == NULL) {
        free(c);
        workload_strv_free(env);
        free(args);
        return false;
    }
    c->w = w;
    c->is_hook = true;
    c->name = name;
    int rv = hook_spawn(w, c, args, args + cmd_at, env);
    workload_strv_free(env);
    free(args);
    if (rv != 0) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "cannot run hook", SIDECAR_LOG_STR("hook", name),
                    SIDECAR_LOG_STR("error", uv_strerror(rv)));
        c->exited = true;
        c->status = 127;
        workload_child_close(c);
        w->info.hooks_failed++;
        return false;
    }
    hook_started(w, c, role);
    return true;
}

static bool hook_set(const sidecar_argv_t *a)
{
    return a->argc > 0;
}

/* Hands the primary role to the workload: on-start, when there is one. True while it runs. */
static bool hooks_start(sidecar_workload_t *w, uint64_t now_ns)
{
    const sidecar_config_t *cfg = w->cfg;
    workload_check_may_start(w, now_ns);
    w->handed_primary = true;
    w->stop_clean = false;
    workload_persist_role(w, "primary");
    if (hook_set(&cfg->on_start)) {
        workload_set_state(w, SIDECAR_WORKLOAD_STARTING);
        if (hook_run(w, "on-start", &cfg->on_start, "primary", NULL))
            return true;
        workload_failure_record(w, "on-start");
    }
    workload_set_state(w, SIDECAR_WORKLOAD_PRIMARY);
    return false;
}

/* Takes the primary role back: on-stop, when there is one. True while it runs. */
static bool hooks_stop(sidecar_workload_t *w)
{
    const sidecar_config_t *cfg = w->cfg;
    workload_set_state(w, SIDECAR_WORKLOAD_STOPPING);
    if (hook_set(&cfg->on_stop) && hook_run(w, "on-stop", &cfg->on_stop, "standby", NULL))
        return true;
    /* Without an on-stop hook there is nothing electd could stop; one that cannot be run
     * stopped nothing. */
    w->stop_clean = !hook_set(&cfg->on_stop);
    w->handed_primary = false;
    w->recovering = false;
    workload_persist_role(w, "standby");
    workload_set_state(w, SIDECAR_WORKLOAD_STANDBY);
    return false;
}

/* One step towards the wanted state; never two hooks at once. Transitions that happened
 * while a hook ran are coalesced: only the state wanted now counts. */
void workload_hooks_step(sidecar_workload_t *w, bool want, uint64_t now_ns)
{
    if (w->hook != NULL)
        return;
    if (w->recovering) {
        /* At-least-once stop: we died as primary last time. */
        w->handed_primary = true;
    }
    if (want && !w->handed_primary) {
        if (hooks_start(w, now_ns))
            return;
    } else if (!want && w->handed_primary) {
        if (hooks_stop(w))
            return;
    }
    workload_on_change_step(w, w->handed_primary ? "primary" : "standby");
}

void workload_on_change_step(sidecar_workload_t *w, const char *role)
{
    /* Every change of this member's role or of the leader (docs/configuration.md), coalesced
     * like the other hooks: a change that happens while a hook runs is told once the hook is
     * done, with the state of that moment. */
    if (w->hook != NULL || !hook_set(&w->cfg->on_change))
        return;
    if (w->told != NULL && strcmp(w->told, role) == 0 && w->told_leader == w->st.leader)
        return;
    w->told = role;
    w->told_leader = w->st.leader;
    hook_run(w, "on-change", &w->cfg->on_change, role, role);
}
