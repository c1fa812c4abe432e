/* workload.c — the workload controller: the lease timeline, the supervised workload (through
 * the exec shim), hooks (serialized, coalesced, bounded), crash backoff, witness behaviour,
 * at-least-once stop and graceful handover. */
#include "workload.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "credential.h"
#include "lease.h"
#include "shim.h"

#define ROLE_KEY         "workload_role" /* node-local: the role last handed to the workload */
#define EVAL_MS          100             /* periodic re-evaluation */
#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   10000
#define HOOK_LOG_MAX     (64u << 10) /* bytes of one hook run's output copied to the log */
#define HOOK_LINE_MAX    1024
#define MAX_CRASHES_KEPT 64
#define ENV_EXTRA        12 /* ELECTD_* variables build_env adds (8 today), with room */
/* Replicated record of a member that gave up: KV key SIDECAR_WORKLOAD_GAVE_UP_PREFIX + its name,
 * value
 * {"reason":..,"status":..,"at_ms":<wall ms>,"count":<give-ups in a row>}. A record counts
 * for GAVE_UP_DECAY_WINDOWS restart windows; while every other voter has one, the member that
 * gives up keeps leadership and backs off (GAVE_UP_BACKOFF_*, doubling with its count). */
#define GAVE_UP_DECAY_WINDOWS  2 /* workload.h says "two" */
#define GAVE_UP_BACKOFF_MIN_MS 1000
#define GAVE_UP_BACKOFF_MAX_MS 300000
#define GAVE_UP_VALUE_MAX      256

extern char **environ;

enum mode { MODE_NONE, MODE_SUPERVISE, MODE_HOOKS, MODE_WITNESS };

struct child;

struct sidecar_workload {
    workload_cred_t cred; /* ELECTD_WORKLOAD_TOKEN (credential.c) */
    uv_loop_t *loop;
    const sidecar_config_t *cfg;
    sidecar_node_t *node;
    int mode;
    sidecar_node_observer_t obs;
    sidecar_node_state_t st;
    uv_timer_t timer;
    bool timer_open;
    sidecar_workload_state_t state;
    char exe[PATH_MAX];
    char data_dir[PATH_MAX]; /* canonical --data-dir, named in every shim's command line */
    char parent_pid[24];
    char stop_ms[24];

    /* supervise */
    struct child *shim;
    int ctl_fd;
    uint64_t sent_deadline_ns;

    /* hooks */
    struct child *hook;
    bool handed_primary; /* on-start ran (or was attempted) and on-stop has not yet run */
    bool stop_clean;     /* the last stop completed (on-stop exited 0, or the shim exited):
                            only then may a handover say "stopped" */
    const char *told;    /* role last given to on-change; NULL = none yet */
    bool recovering;     /* at-least-once stop after a restart as primary */

    /* restarts */
    uint64_t crashes_ms[MAX_CRASHES_KEPT];
    size_t n_crashes;
    uint64_t backoff_until_ms;
    uint64_t gave_up_term;
    const char *failure; /* what failed last ("exit", "on-start", ...) */

    /* handover (operator, SIGTERM, or giving up) and shutdown: the workload stops first, the
     * transfer leaves once nothing runs here any more */
    bool handover;     /* do not run the workload in handover_term */
    bool handover_due; /* the transfer is still to be sent */
    uint64_t handover_term;
    uint64_t handover_target; /* 0: the most suitable member */
    sidecar_workload_handover_cb handover_cb;
    void *handover_ud;
    bool shutting_down;
    void (*stop_cb)(void *);
    void *stop_ud;
    uint64_t witness_try_ms;

    int open_children;
    void (*close_cb)(void *);
    void *close_ud;

    sidecar_workload_info_t info;
};

/* A spawned process: the shim, or a hook with its output captured. */
struct child {
    uv_process_t proc;
    uv_pipe_t out[2];
    uv_timer_t timeout;
    sidecar_workload_t *w;
    int handles;
    bool is_hook;
    const char *name; /* hook name: "on-start", ... */
    int64_t status;   /* exit status (128+sig) once exited */
    bool exited;
    bool timed_out;
    uint64_t started_ns;
    char line[2][HOOK_LINE_MAX];
    size_t line_len[2];
    size_t logged;
};

const char *sidecar_workload_state_name(sidecar_workload_state_t s)
{
    switch (s) {
    case SIDECAR_WORKLOAD_STANDBY:
        return "standby";
    case SIDECAR_WORKLOAD_STARTING:
        return "starting";
    case SIDECAR_WORKLOAD_PRIMARY:
        return "primary";
    case SIDECAR_WORKLOAD_STOPPING:
        return "stopping";
    }
    return "unknown";
}

static void evaluate(sidecar_workload_t *w);

static uint64_t now_ms(void)
{
    return sidecar_clock_boot_ns() / 1000000;
}

static void set_state(sidecar_workload_t *w, sidecar_workload_state_t s)
{
    if (w->state == s)
        return;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "workload state",
                SIDECAR_LOG_STR("from", sidecar_workload_state_name(w->state)),
                SIDECAR_LOG_STR("to", sidecar_workload_state_name(s)));
    w->state = s;
    w->info.state = s;
    w->info.started_ms = s == SIDECAR_WORKLOAD_PRIMARY ? now_ms() : 0;
}

static void persist_role(sidecar_workload_t *w, const char *role)
{
    store_t *st = sidecar_node_store(w->node);
    int rv = store_local_set(st, ROLE_KEY, role, strlen(role));
    if (rv != 0)
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "cannot record the workload's role",
                    SIDECAR_LOG_STR("role", role), SIDECAR_LOG_STR("error", store_strerror(rv)));
}

/* Shims left by a previous run of electd on this data directory: their command line names
 * it (shim.h). Bounded: at most 65,536 /proc entries are looked at. */
static int count_old_shims(const sidecar_workload_t *w)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    int found = 0;
    struct dirent *e;
    for (int seen = 0; seen < 65536 && (e = readdir(d)) != NULL; seen++) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == getpid())
            continue;
        char path[64], cmd[4096];
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
        fclose(f);
        cmd[n] = '\0';
        /* NUL-separated argv: electd __shim FD STOP_MS PARENT DATA_DIR -- ... */
        const char *a[6];
        size_t k = 0;
        for (const char *p = cmd; k < 6 && p < cmd + n; p += strlen(p) + 1)
            a[k++] = p;
        if (k == 6 && strcmp(a[1], SIDECAR_SHIM_ARG) == 0 && strcmp(a[5], w->data_dir) == 0 &&
            atoi(a[4]) != getpid())
            found++;
    }
    closedir(d);
    return found;
}

/* After a crash of electd, the shims of its last run are still stopping what they ran (they
 * learn that electd died). Nothing new may start before they are gone: hooks never overlap,
 * even across a restart. Bounded by the time a shim itself allows (stop timeout) plus a
 * margin. */
static void wait_for_old_shims(sidecar_workload_t *w)
{
    uint64_t deadline = now_ms() + w->cfg->stop_timeout_ms + 2000;
    bool waited = false;
    int n;
    while ((n = count_old_shims(w)) > 0 && now_ms() < deadline) {
        if (!waited)
            SIDECAR_LOG(SIDECAR_LOG_INFO, "waiting for the previous run's shims to finish",
                        SIDECAR_LOG_INT("shims", n));
        waited = true;
        usleep(10000);
    }
}

/* argv for the shim running cmd (+ an optional last argument); fd_arg "-1" for a hook.
 * Borrows everything; the caller frees the array only. */
static char **shim_argv(sidecar_workload_t *w, const char *fd_arg, const sidecar_argv_t *cmd,
                        const char *last)
{
    char **args = calloc(cmd->argc + 9, sizeof(char *));
    if (args == NULL)
        return NULL;
    size_t a = 0;
    args[a++] = w->exe;
    args[a++] = SIDECAR_SHIM_ARG;
    args[a++] = (char *)fd_arg;
    args[a++] = w->stop_ms;
    args[a++] = w->parent_pid;
    args[a++] = w->data_dir;
    args[a++] = "--";
    for (size_t i = 0; i < cmd->argc; i++)
        args[a++] = cmd->argv[i];
    if (last != NULL)
        args[a++] = (char *)last;
    args[a] = NULL;
    return args;
}

/* ---- environment ------------------------------------------------------------------------ */

/* The leader's name for ELECTD_LEADER_ID; "" when no leader or one not yet in our
 * configuration. */
static void member_name(sidecar_workload_t *w, uint64_t id, char *buf, size_t len)
{
    const char *peer;
    if (id == 0 || sidecar_member_split(sidecar_node_member_addr(w->node, id), buf, len, &peer))
        snprintf(buf, len, "%s", "");
}

/* environ without ELECTD_* plus ours. Returned array and strings are malloc'd. */
static char **build_env(sidecar_workload_t *w, const char *role)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + ENV_EXTRA + 1, sizeof(char *));
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "ELECTD_", 7) != 0)
            env[k++] = strdup(environ[i]);
    char leader[64], http[300], buf[512];
    member_name(w, w->st.leader, leader, sizeof(leader));
    sidecar_config_addr_format(&w->cfg->advertise_http, http, sizeof(http));
    const char *names[] = {"ELECTD_ROLE", "ELECTD_NODE_ID", "ELECTD_LEADER_ID", "ELECTD_HTTP"};
    const char *vals[] = {role, w->cfg->name, leader, http};
    for (size_t i = 0; i < 4; i++) {
        snprintf(buf, sizeof(buf), "%s=%s", names[i], vals[i]);
        env[k++] = strdup(buf);
    }
    snprintf(buf, sizeof(buf), "ELECTD_TERM=%" PRIu64, w->st.term);
    env[k++] = strdup(buf);
    snprintf(buf, sizeof(buf), "ELECTD_FENCING_TOKEN=%" PRIu64, w->st.epoch);
    env[k++] = strdup(buf);
    snprintf(buf, sizeof(buf), "ELECTD_LEASE_MS=%u", sidecar_config_lease_ms(w->cfg));
    env[k++] = strdup(buf);
    /* The workload's API credential (credential.c): fresh at each start, so a previous run's
     * stops working; hooks meanwhile get the current one, and none once the workload stopped. */
    const char *wt = NULL;
    if (strcmp(role, "primary") == 0 && w->state != SIDECAR_WORKLOAD_PRIMARY)
        wt = workload_cred_rotate(&w->cred);
    else if (w->state != SIDECAR_WORKLOAD_STANDBY)
        wt = workload_cred_current(&w->cred);
    if (wt != NULL) {
        snprintf(buf, sizeof(buf), "ELECTD_WORKLOAD_TOKEN=%s", wt);
        env[k++] = strdup(buf);
    }
    env[k] = NULL;
    return env;
}

static void free_strv(char **v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

/* ---- children ------------------------------------------------------------------------------ */

static void child_handle_closed(uv_handle_t *h)
{
    struct child *c = h->data;
    if (--c->handles > 0)
        return;
    sidecar_workload_t *w = c->w;
    free(c);
    w->open_children--;
    if (w->close_cb != NULL && w->open_children == 0 && !w->timer_open) {
        void (*cb)(void *) = w->close_cb;
        void *ud = w->close_ud;
        free(w);
        cb(ud);
    }
}

static void child_close(struct child *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->proc))
        uv_close((uv_handle_t *)&c->proc, child_handle_closed);
    if (c->is_hook) {
        for (int i = 0; i < 2; i++)
            if (!uv_is_closing((uv_handle_t *)&c->out[i]))
                uv_close((uv_handle_t *)&c->out[i], child_handle_closed);
        if (!uv_is_closing((uv_handle_t *)&c->timeout))
            uv_close((uv_handle_t *)&c->timeout, child_handle_closed);
    }
}

static int64_t exit_code(int64_t status, int sig)
{
    return sig ? 128 + sig : status;
}

/* ---- members that gave up (replicated) ------------------------------------------------------ */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The recent records (decayed ones are left out), at most cap. Values written by another
 * version or by hand are skipped, never trusted blindly. */
static size_t gave_up_load(sidecar_workload_t *w, sidecar_workload_gave_up_t *out, size_t cap)
{
    store_kv_t *items = NULL;
    size_t n = 0, k = 0;
    if (store_kv_list(sidecar_node_store(w->node), SIDECAR_WORKLOAD_GAVE_UP_PREFIX,
                      strlen(SIDECAR_WORKLOAD_GAVE_UP_PREFIX), NULL, 0, RAFT_MAX_MEMBERS, &items,
                      &n, NULL) != 0)
        return 0;
    uint64_t now = wall_ms(), decay = GAVE_UP_DECAY_WINDOWS * (uint64_t)w->cfg->restart_window_ms;
    for (size_t i = 0; i < n && k < cap; i++) {
        cJSON *o = cJSON_ParseWithLength((const char *)items[i].value, items[i].value_len);
        const cJSON *reason = cJSON_GetObjectItem(o, "reason");
        double at = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "at_ms"));
        double count = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "count"));
        double status = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "status"));
        const char *name = items[i].key + strlen(SIDECAR_WORKLOAD_GAVE_UP_PREFIX);
        if (cJSON_IsString(reason) && at >= 0 && at <= (double)now && now - (uint64_t)at < decay &&
            count >= 1 && strlen(name) < sizeof(out->member)) {
            sidecar_workload_gave_up_t *g = &out[k++];
            snprintf(g->member, sizeof(g->member), "%s", name);
            snprintf(g->reason, sizeof(g->reason), "%s", reason->valuestring);
            g->status = status >= 0 && status < 1000 ? (int)status : -1;
            g->ago_ms = now - (uint64_t)at;
            g->count = (uint64_t)count;
        }
        cJSON_Delete(o);
    }
    store_kv_list_free(items, n);
    return k;
}

static const sidecar_workload_gave_up_t *gave_up_find(const sidecar_workload_gave_up_t *g, size_t n,
                                                      const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(g[i].member, name) == 0)
            return &g[i];
    return NULL;
}

/* The most suitable voter to hand over to: not this node, no recent record of giving up, the
 * most up-to-date log, then the lowest id. 0 when every other voter gave up recently. */
static uint64_t gave_up_choose(sidecar_workload_t *w)
{
    sidecar_workload_gave_up_t g[RAFT_MAX_MEMBERS];
    size_t ng = gave_up_load(w, g, RAFT_MAX_MEMBERS);
    raft_progress_t pr[RAFT_MAX_MEMBERS];
    size_t np = raft_progress(sidecar_node_raft(w->node), pr, RAFT_MAX_MEMBERS);
    const raft_progress_t *best = NULL;
    for (size_t i = 0; i < np; i++) {
        char name[64];
        sidecar_node_member_name(w->node, pr[i].id, name, sizeof(name));
        if (pr[i].id == sidecar_node_id(w->node) || !pr[i].voter || gave_up_find(g, ng, name))
            continue;
        if (best == NULL || pr[i].match > best->match ||
            (pr[i].match == best->match && pr[i].id < best->id))
            best = &pr[i];
    }
    return best ? best->id : 0;
}

/* Replicates that this member gave up (the next leader must know it too); returns how many
 * times in a row it has. */
static uint64_t gave_up_publish(sidecar_workload_t *w, const char *what)
{
    sidecar_workload_gave_up_t g[RAFT_MAX_MEMBERS];
    size_t ng = gave_up_load(w, g, RAFT_MAX_MEMBERS);
    const sidecar_workload_gave_up_t *mine = gave_up_find(g, ng, w->cfg->name);
    uint64_t count = mine ? mine->count + 1 : 1;
    char key[128], value[GAVE_UP_VALUE_MAX];
    uint8_t cmd[STORE_CMD_HEADER + sizeof(key) + sizeof(value)];
    int kl = snprintf(key, sizeof(key), "%s%s", SIDECAR_WORKLOAD_GAVE_UP_PREFIX, w->cfg->name);
    int vl =
        snprintf(value, sizeof(value),
                 "{\"reason\":\"%s\",\"status\":%d,\"at_ms\":%" PRIu64 ",\"count\":%" PRIu64 "}",
                 what, w->info.last_exit, wall_ms(), count);
    size_t len = 0;
    uint64_t index;
    int rv = store_cmd_encode_put(key, (size_t)kl, value, (size_t)vl, NULL, cmd, sizeof(cmd), &len);
    if (rv == 0)
        rv = sidecar_node_propose(w->node, cmd, len, &index);
    if (rv != 0)
        SIDECAR_LOG(SIDECAR_LOG_WARN, "cannot record that this member gave up",
                    SIDECAR_LOG_INT("error", rv));
    w->info.gave_up++;
    return count;
}

size_t sidecar_workload_gave_up(sidecar_workload_t *w, sidecar_workload_gave_up_t *out, size_t cap)
{
    return gave_up_load(w, out, cap);
}

/* ---- crash accounting ----------------------------------------------------------------------- */

/* Asks for a transfer once the workload has stopped here (maybe_finish_handover_or_stop). A
 * pending one keeps its target unless this one names a member. */
static void handover_arm(sidecar_workload_t *w, uint64_t target)
{
    if (!w->handover_due || w->handover_term != w->st.term || target != 0)
        w->handover_target = target;
    w->handover = true;
    w->handover_due = true;
    w->handover_term = w->st.term;
}

/* Too many failures here: hand over to a member that has not failed recently, once the
 * workload has stopped; when every other one has, keep leadership and back off instead of
 * bouncing, doubling the pause with each give-up in a row. */
static void give_up(sidecar_workload_t *w, const char *what)
{
    uint64_t count = gave_up_publish(w, what);
    if (gave_up_choose(w) != 0) {
        w->gave_up_term = w->st.term;
        /* Not at once: the successor may start as soon as the transfer says "stopped", so it
         * leaves only when on-stop (or the workload's exit) has completed. */
        handover_arm(w, 0);
        return;
    }
    uint64_t backoff = GAVE_UP_BACKOFF_MIN_MS << (count - 1 < 16 ? count - 1 : 16);
    if (backoff > GAVE_UP_BACKOFF_MAX_MS)
        backoff = GAVE_UP_BACKOFF_MAX_MS;
    w->backoff_until_ms = now_ms() + backoff;
    SIDECAR_LOG(SIDECAR_LOG_ERROR, "every member failed to run the workload recently: backing off",
                SIDECAR_LOG_UINT("backoff_ms", backoff), SIDECAR_LOG_UINT("in_a_row", count));
}

static void record_failure(sidecar_workload_t *w, const char *what)
{
    uint64_t now = now_ms();
    w->info.restarts++;
    size_t kept = 0;
    for (size_t i = 0; i < w->n_crashes; i++)
        if (now - w->crashes_ms[i] < w->cfg->restart_window_ms)
            w->crashes_ms[kept++] = w->crashes_ms[i];
    w->n_crashes = kept;
    if (w->n_crashes < MAX_CRASHES_KEPT)
        w->crashes_ms[w->n_crashes++] = now;
    if (w->n_crashes > w->cfg->max_restarts) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "workload keeps failing: handing leadership to another node",
                    SIDECAR_LOG_STR("what", what), SIDECAR_LOG_UINT("failures", w->n_crashes),
                    SIDECAR_LOG_UINT("window_ms", w->cfg->restart_window_ms));
        w->n_crashes = 0;
        if (w->st.role == RAFT_LEADER)
            give_up(w, what);
        return;
    }
    uint64_t backoff = BACKOFF_MIN_MS << (w->n_crashes - 1 < 16 ? w->n_crashes - 1 : 16);
    if (backoff > BACKOFF_MAX_MS)
        backoff = BACKOFF_MAX_MS;
    w->backoff_until_ms = now + backoff;
    SIDECAR_LOG(SIDECAR_LOG_WARN, "workload failed; restarting after a backoff",
                SIDECAR_LOG_STR("what", what), SIDECAR_LOG_UINT("backoff_ms", backoff),
                SIDECAR_LOG_UINT("failures", w->n_crashes));
}

/* ---- supervise mode -------------------------------------------------------------------------- */

static void send_ctl(sidecar_workload_t *w, char cmd, uint64_t v)
{
    if (w->ctl_fd < 0)
        return;
    uint8_t msg[SIDECAR_SHIM_MSG];
    sidecar_shim_msg(msg, cmd, v);
    /* 9 bytes into an empty-ish pipe: atomic; if the shim is gone, EPIPE is harmless. */
    (void)!write(w->ctl_fd, msg, sizeof(msg));
}

static void shim_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct child *c = p->data;
    sidecar_workload_t *w = c->w;
    int64_t code = exit_code(status, sig);
    w->info.last_exit = (int)code;
    w->info.pid = 0;
    w->shim = NULL;
    w->stop_clean = true; /* the shim kills the workload's whole group before it exits */
    if (w->ctl_fd >= 0) {
        close(w->ctl_fd);
        w->ctl_fd = -1;
    }
    child_close(c);
    if (w->close_cb != NULL)
        return;
    bool expected = w->state == SIDECAR_WORKLOAD_STOPPING;
    SIDECAR_LOG(expected ? SIDECAR_LOG_INFO : SIDECAR_LOG_WARN,
                expected ? "workload stopped" : "workload exited on its own",
                SIDECAR_LOG_INT("status", code));
    set_state(w, SIDECAR_WORKLOAD_STANDBY);
    persist_role(w, "standby");
    if (!expected)
        record_failure(w, "exit");
    evaluate(w);
}

static void shim_start(sidecar_workload_t *w)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        record_failure(w, "pipe");
        return;
    }
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    struct child *c = calloc(1, sizeof(*c));
    char **env = build_env(w, "primary");
    char **args = shim_argv(w, "3", &w->cfg->exec, NULL);
    if (c == NULL || env == NULL || args == NULL) {
        free(c);
        free_strv(env);
        free(args);
        close(fds[0]);
        close(fds[1]);
        record_failure(w, "out of memory");
        return;
    }
    uv_stdio_container_t stdio[4] = {
        {.flags = UV_INHERIT_FD, .data.fd = 0},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
        {.flags = UV_INHERIT_FD, .data.fd = fds[0]},
    };
    uv_process_options_t opts = {.exit_cb = shim_exit_cb,
                                 .file = w->exe,
                                 .args = args,
                                 .env = env,
                                 .stdio_count = 4,
                                 .stdio = stdio};
    c->w = w;
    c->proc.data = c;
    c->handles = 1;
    /* Recorded before the workload can exist: a crash from here on means on-stop must run. */
    persist_role(w, "primary");
    int rv = uv_spawn(w->loop, &c->proc, &opts);
    close(fds[0]);
    free_strv(env);
    free(args);
    if (rv != 0) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "cannot start the workload shim",
                    SIDECAR_LOG_STR("error", uv_strerror(rv)));
        close(fds[1]);
        uv_close((uv_handle_t *)&c->proc, child_handle_closed);
        w->open_children++;
        persist_role(w, "standby");
        record_failure(w, "spawn");
        return;
    }
    w->open_children++;
    w->shim = c;
    w->info.starts++;
    w->ctl_fd = fds[1];
    w->sent_deadline_ns = w->st.lease_deadline_ns;
    send_ctl(w, 'D', w->sent_deadline_ns);
    w->info.pid = c->proc.pid;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "workload started", SIDECAR_LOG_INT("pid", c->proc.pid),
                SIDECAR_LOG_UINT("fencing_token", w->st.epoch));
    set_state(w, SIDECAR_WORKLOAD_PRIMARY);
}

/* ---- hook mode ------------------------------------------------------------------------------- */

static void hook_flush_line(struct child *c, int i, bool partial)
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
    struct child *c = s->data;
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
        if (c->line_len[i] + 1 >= HOOK_LINE_MAX)
            hook_flush_line(c, i, true);
        c->line[i][c->line_len[i]++] = ch;
    }
}

static void hook_finished(sidecar_workload_t *w, struct child *c);

static void hook_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct child *c = p->data;
    c->exited = true;
    c->status = exit_code(status, sig);
    if (c->w->close_cb != NULL) {
        c->w->hook = NULL;
        child_close(c);
        return;
    }
    hook_finished(c->w, c);
}

static void hook_timeout_cb(uv_timer_t *t)
{
    struct child *c = t->data;
    c->timed_out = true;
    SIDECAR_LOG(SIDECAR_LOG_ERROR, "hook timed out: killing it", SIDECAR_LOG_STR("hook", c->name),
                SIDECAR_LOG_UINT("timeout_ms", c->w->cfg->hook_timeout_ms));
    /* The shim stops the hook's whole process group (SIGTERM, SIGKILL after stop-timeout). */
    uv_process_kill(&c->proc, SIGTERM);
}

/* Runs one hook; its end comes back through hook_finished. */
static bool hook_run(sidecar_workload_t *w, const char *name, const sidecar_argv_t *cmd,
                     const char *role, const char *arg)
{
    struct child *c = calloc(1, sizeof(*c));
    char **env = build_env(w, role);
    /* Through the shim: own process group, killed with electd, whole tree stopped. */
    char **args = shim_argv(w, "-1", cmd, arg);
    if (c == NULL || env == NULL || args == NULL) {
        free(c);
        free_strv(env);
        free(args);
        return false;
    }
    c->w = w;
    c->is_hook = true;
    c->name = name;
    uv_pipe_init(w->loop, &c->out[0], 0);
    uv_pipe_init(w->loop, &c->out[1], 0);
    uv_timer_init(w->loop, &c->timeout);
    c->proc.data = c->out[0].data = c->out[1].data = c->timeout.data = c;
    c->handles = 4;
    w->open_children++;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out[0]},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out[1]},
    };
    uv_process_options_t opts = {.exit_cb = hook_exit_cb,
                                 .file = args[0],
                                 .args = args,
                                 .env = env,
                                 .stdio_count = 3,
                                 .stdio = stdio};
    w->info.hooks_run++;
    int rv = uv_spawn(w->loop, &c->proc, &opts);
    free_strv(env);
    free(args);
    if (rv != 0) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "cannot run hook", SIDECAR_LOG_STR("hook", name),
                    SIDECAR_LOG_STR("error", uv_strerror(rv)));
        c->exited = true;
        c->status = 127;
        child_close(c);
        w->info.hooks_failed++;
        return false;
    }
    SIDECAR_LOG(SIDECAR_LOG_INFO, "hook started", SIDECAR_LOG_STR("hook", name),
                SIDECAR_LOG_INT("pid", c->proc.pid), SIDECAR_LOG_STR("role", role));
    uv_read_start((uv_stream_t *)&c->out[0], hook_alloc_cb, hook_read_cb);
    uv_read_start((uv_stream_t *)&c->out[1], hook_alloc_cb, hook_read_cb);
    uv_timer_start(&c->timeout, hook_timeout_cb, w->cfg->hook_timeout_ms, 0);
    w->hook = c;
    c->started_ns = uv_hrtime();
    if (strcmp(name, "on-start") == 0)
        w->info.starts++;
    w->info.pid = c->proc.pid;
    return true;
}

static void hook_finished(sidecar_workload_t *w, struct child *c)
{
    bool ok = c->exited && c->status == 0 && !c->timed_out;
    hook_flush_line(c, 0, true);
    hook_flush_line(c, 1, true);
    SIDECAR_LOG(ok ? SIDECAR_LOG_INFO : SIDECAR_LOG_ERROR, "hook finished",
                SIDECAR_LOG_STR("hook", c->name), SIDECAR_LOG_INT("status", c->status),
                SIDECAR_LOG_BOOL("timed_out", c->timed_out));
    if (!ok)
        w->info.hooks_failed++;
    sidecar_hist_observe(&w->info.hook_seconds, (double)(uv_hrtime() - c->started_ns) / 1e9);
    w->info.last_exit = (int)c->status;
    w->info.pid = 0;
    const char *name = c->name;
    w->hook = NULL;
    child_close(c);
    if (strcmp(name, "on-start") == 0) {
        if (ok) {
            set_state(w, SIDECAR_WORKLOAD_PRIMARY);
        } else {
            /* Counts like a crashing workload; on-stop cleans up what it may have begun. */
            set_state(w, SIDECAR_WORKLOAD_PRIMARY);
            record_failure(w, "on-start");
        }
    } else if (strcmp(name, "on-stop") == 0) {
        /* A failed or timed-out on-stop may have left the workload running: the successor
         * must then wait out our lease (no "stopped" flag). */
        w->stop_clean = ok;
        w->handed_primary = false;
        w->recovering = false;
        persist_role(w, "standby");
        set_state(w, SIDECAR_WORKLOAD_STANDBY);
    }
    evaluate(w);
}

static bool hook_set(const sidecar_argv_t *a)
{
    return a->argc > 0;
}

/* One step towards the wanted state; never two hooks at once. Transitions that happened
 * while a hook ran are coalesced: only the state wanted now counts. */
static void hooks_step(sidecar_workload_t *w, bool want)
{
    const sidecar_config_t *cfg = w->cfg;
    if (w->hook != NULL)
        return;
    if (w->recovering) {
        /* At-least-once stop: we died as primary last time. */
        w->handed_primary = true;
    }
    if (want && !w->handed_primary) {
        w->handed_primary = true;
        w->stop_clean = false;
        persist_role(w, "primary");
        if (hook_set(&cfg->on_start)) {
            set_state(w, SIDECAR_WORKLOAD_STARTING);
            if (hook_run(w, "on-start", &cfg->on_start, "primary", NULL))
                return;
            record_failure(w, "on-start");
        }
        set_state(w, SIDECAR_WORKLOAD_PRIMARY);
    } else if (!want && w->handed_primary) {
        set_state(w, SIDECAR_WORKLOAD_STOPPING);
        if (hook_set(&cfg->on_stop) && hook_run(w, "on-stop", &cfg->on_stop, "standby", NULL))
            return;
        /* Without an on-stop hook there is nothing electd could stop; one that cannot be run
         * stopped nothing. */
        w->stop_clean = !hook_set(&cfg->on_stop);
        w->handed_primary = false;
        w->recovering = false;
        persist_role(w, "standby");
        set_state(w, SIDECAR_WORKLOAD_STANDBY);
    }
    const char *role = w->handed_primary ? "primary" : "standby";
    if (hook_set(&cfg->on_change) && (w->told == NULL || strcmp(w->told, role) != 0)) {
        w->told = role;
        hook_run(w, "on-change", &cfg->on_change, role, role);
    }
}

/* ---- the lease timeline ---------------------------------------------------------------------- */

static uint64_t stop_ns(const sidecar_workload_t *w)
{
    return (uint64_t)w->cfg->stop_timeout_ms * 1000000ull;
}

static bool want_primary(sidecar_workload_t *w)
{
    workload_lease_holds_t h = {.shutting_down = w->shutting_down,
                                .recovering = w->recovering,
                                .handover = w->handover,
                                .handover_term = w->handover_term,
                                .gave_up_term = w->gave_up_term,
                                .backoff_until_ms = w->backoff_until_ms};
    return workload_lease_want_primary(&w->st, &h, stop_ns(w), sidecar_clock_boot_ns());
}

static void timer_cb(uv_timer_t *t)
{
    evaluate(t->data);
}

/* Wakes up exactly when the lease crosses the stop point, or periodically. */
static void schedule(sidecar_workload_t *w)
{
    if (!w->timer_open)
        return;
    uint64_t delay =
        workload_lease_wake_ms(&w->st, w->state == SIDECAR_WORKLOAD_PRIMARY, stop_ns(w),
                               w->backoff_until_ms, sidecar_clock_boot_ns(), EVAL_MS);
    uv_timer_start(&w->timer, timer_cb, delay, 0);
}

/* The transfer of a handover: "stopped" only when the stop completed; otherwise the successor
 * waits out our lease as after a crash (raft_transfer). cb(ud, rv) for whoever asked. */
static void handover_send(sidecar_workload_t *w)
{
    int rv = RAFT_ENOTLEADER;
    w->handover_due = false;
    if (w->st.role == RAFT_LEADER && w->st.term == w->handover_term) {
        uint64_t target = w->handover_target ? w->handover_target : gave_up_choose(w);
        rv = sidecar_node_transfer(w->node, target, w->stop_clean ? RAFT_FLAG_STOPPED : 0);
        char name[64] = "the most up-to-date member";
        if (target != 0)
            sidecar_node_member_name(w->node, target, name, sizeof(name));
        SIDECAR_LOG(rv == 0 ? SIDECAR_LOG_INFO : SIDECAR_LOG_WARN,
                    rv == 0 ? "workload stopped: handing leadership over"
                            : "workload stopped but leadership cannot be handed over",
                    SIDECAR_LOG_BOOL("stopped", w->stop_clean), SIDECAR_LOG_STR("to", name),
                    SIDECAR_LOG_STR("error", rv == RAFT_EINVAL ? "no other voter to hand over to"
                                             : rv              ? raft_strerror(rv)
                                                               : ""));
    }
    if (w->handover_cb != NULL) {
        sidecar_workload_handover_cb cb = w->handover_cb;
        w->handover_cb = NULL;
        cb(w->handover_ud, rv);
    }
}

static void maybe_finish_handover_or_stop(sidecar_workload_t *w)
{
    bool idle = w->state == SIDECAR_WORKLOAD_STANDBY && w->hook == NULL && w->shim == NULL;
    /* Leadership lost meanwhile: nothing to transfer, but whoever asked hears of it. */
    bool lost = w->st.role != RAFT_LEADER || w->st.term != w->handover_term;
    if (w->handover_due && (idle || lost))
        handover_send(w);
    if (!idle)
        return;
    if (w->shutting_down && w->stop_cb != NULL) {
        void (*cb)(void *) = w->stop_cb;
        w->stop_cb = NULL;
        cb(w->stop_ud);
    }
}

static void evaluate(sidecar_workload_t *w)
{
    if (w->close_cb != NULL)
        return;
    if (w->mode == MODE_WITNESS) {
        /* A witness votes and stores the log but never leads for long. */
        if (w->st.role == RAFT_LEADER && now_ms() - w->witness_try_ms >= EVAL_MS) {
            w->witness_try_ms = now_ms();
            /* It never runs anything, and a predecessor still inside its lease makes the core
             * drop the "stopped" (raft_transfer). */
            int rv = sidecar_node_transfer(w->node, gave_up_choose(w), RAFT_FLAG_STOPPED);
            if (rv == 0)
                SIDECAR_LOG(SIDECAR_LOG_INFO, "witness handing leadership away");
        }
    } else if (w->mode == MODE_SUPERVISE) {
        bool want = want_primary(w);
        if (w->state == SIDECAR_WORKLOAD_STANDBY && want && w->shim == NULL) {
            shim_start(w);
        } else if (w->state == SIDECAR_WORKLOAD_PRIMARY && !want) {
            SIDECAR_LOG(
                SIDECAR_LOG_INFO, "stopping the workload",
                SIDECAR_LOG_STR("role", raft_role_name(w->st.role)),
                SIDECAR_LOG_BOOL("lease", w->st.lease_deadline_ns > sidecar_clock_boot_ns()));
            set_state(w, SIDECAR_WORKLOAD_STOPPING);
            send_ctl(w, 'T', 0);
        } else if (w->state == SIDECAR_WORKLOAD_PRIMARY &&
                   workload_lease_renewal_ns(&w->st, w->sent_deadline_ns) != 0) {
            w->sent_deadline_ns = workload_lease_renewal_ns(&w->st, w->sent_deadline_ns);
            send_ctl(w, 'D', w->sent_deadline_ns);
        }
    } else if (w->mode == MODE_HOOKS) {
        hooks_step(w, want_primary(w));
    }
    maybe_finish_handover_or_stop(w);
    schedule(w);
}

static void changed_cb(void *ud, const sidecar_node_state_t *st)
{
    sidecar_workload_t *w = ud;
    if (st->term != w->st.term && w->handover && st->term != w->handover_term)
        w->handover = false;
    w->st = *st;
    evaluate(w);
}

/* ---- life cycle --------------------------------------------------------------------------------
 */

int sidecar_workload_start(sidecar_workload_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                           sidecar_node_t *node, char *errbuf, size_t errlen)
{
    sidecar_workload_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -1;
    w->loop = loop;
    w->cfg = cfg;
    w->node = node;
    w->ctl_fd = -1;
    w->info.last_exit = -1;
    w->stop_clean = true;
    if (cfg->witness)
        w->mode = MODE_WITNESS;
    else if (cfg->exec.argc > 0)
        w->mode = MODE_SUPERVISE;
    else if (cfg->on_start.argc || cfg->on_stop.argc || cfg->on_change.argc)
        w->mode = MODE_HOOKS;
    static const char *names[] = {"none", "supervise", "hooks", "witness"};
    w->info.mode = names[w->mode];
    if (realpath(cfg->data_dir, w->data_dir) == NULL)
        snprintf(w->data_dir, sizeof(w->data_dir), "%s", cfg->data_dir);
    snprintf(w->parent_pid, sizeof(w->parent_pid), "%d", (int)getpid());
    snprintf(w->stop_ms, sizeof(w->stop_ms), "%u", cfg->stop_timeout_ms);
    size_t len = sizeof(w->exe);
    if (uv_exepath(w->exe, &len) != 0) {
        snprintf(errbuf, errlen, "cannot find electd's own executable for the shim");
        free(w);
        return -1;
    }
    char role[32];
    size_t rl = 0;
    if (store_local_get(sidecar_node_store(node), ROLE_KEY, role, sizeof(role) - 1, &rl) == 0) {
        role[rl] = '\0';
        if (strcmp(role, "primary") == 0) {
            SIDECAR_LOG(SIDECAR_LOG_WARN, "electd stopped last time while its workload was primary",
                        SIDECAR_LOG_STR("mode", w->info.mode));
            if (w->mode == MODE_HOOKS && hook_set(&cfg->on_stop))
                w->recovering = true; /* on-stop runs before anything else */
            else
                persist_role(w, "standby"); /* supervised: the shim took it down with us */
        }
    }
    wait_for_old_shims(w);
    sidecar_node_state(node, &w->st);
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->timer_open = true;
    w->obs = (sidecar_node_observer_t){.changed_cb = changed_cb, .ud = w};
    sidecar_node_observe(node, &w->obs);
    *out = w;
    evaluate(w);
    return 0;
}

void sidecar_workload_info(const sidecar_workload_t *w, sidecar_workload_info_t *out)
{
    *out = w->info;
}

int sidecar_workload_handover(sidecar_workload_t *w, uint64_t target,
                              sidecar_workload_handover_cb cb, void *ud)
{
    if (w->st.role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (w->handover_due && w->handover_cb != NULL)
        return RAFT_ETRANSFERRING;
    handover_arm(w, target);
    w->handover_cb = cb;
    w->handover_ud = ud;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "graceful handover: stopping the workload first");
    evaluate(w);
    return 0;
}

void sidecar_workload_stop(sidecar_workload_t *w, void (*cb)(void *ud), void *ud)
{
    w->shutting_down = true;
    w->stop_cb = cb;
    w->stop_ud = ud;
    evaluate(w);
}

static void timer_closed_cb(uv_handle_t *h)
{
    sidecar_workload_t *w = h->data;
    w->timer_open = false;
    if (w->open_children == 0) {
        void (*cb)(void *) = w->close_cb;
        void *ud = w->close_ud;
        free(w);
        cb(ud);
    }
}

void sidecar_workload_close(sidecar_workload_t *w, void (*cb)(void *ud), void *ud)
{
    sidecar_node_unobserve(w->node, &w->obs);
    w->close_cb = cb;
    w->close_ud = ud;
    if (w->shim != NULL)
        send_ctl(w, 'T', 0); /* should not happen after _stop; be safe */
    if (w->ctl_fd >= 0) {
        close(w->ctl_fd);
        w->ctl_fd = -1;
    }
    if (w->hook != NULL)
        uv_process_kill(&w->hook->proc, SIGTERM);
    uv_close((uv_handle_t *)&w->timer, timer_closed_cb);
}

bool sidecar_workload_token_check(const sidecar_workload_t *w, const char *token, size_t len)
{
    /* A stopped workload's token is void. */
    return w->state != SIDECAR_WORKLOAD_STANDBY && workload_cred_check(&w->cred, token, len);
}
