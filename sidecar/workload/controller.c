/* controller.c — the workload controller: its life cycle (start, stop, close), the state
 * machine standby → (starting →) primary → stopping → standby, and the evaluation that runs
 * at every change of the node's state and at the lease's stop point. The mode's own steps live
 * in supervise.c, hooks.c and handover.c (witness); the timeline's rules in lease.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workload_int.h"

#define ROLE_KEY                                                                                   \
    "workload_role" /* node-local: the role last handed to the workload; a named                   \
                       election's is ROLE_KEY "/" its name */
#define EVAL_MS 100 /* periodic re-evaluation */
/* A named election's controller is told every change by its owner (sidecar/named/) and wakes
 * by itself at its stop point and the end of a backoff: its periodic look can be rare. */
#define NAMED_EVAL_MS 5000

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

void workload_set_state(sidecar_workload_t *w, sidecar_workload_state_t s)
{
    if (w->state == s)
        return;
    /* Only a mode that runs something leaves standby, and only hooks have a "starting". */
    ELECTD_CHECK(s == SIDECAR_WORKLOAD_STANDBY || w->mode == MODE_SUPERVISE ||
                 w->mode == MODE_HOOKS);
    ELECTD_CHECK(s != SIDECAR_WORKLOAD_STARTING || w->mode == MODE_HOOKS);
    SIDECAR_LOG(SIDECAR_LOG_INFO, "workload state",
                SIDECAR_LOG_STR("from", sidecar_workload_state_name(w->state)),
                SIDECAR_LOG_STR("to", sidecar_workload_state_name(s)));
    w->state = s;
    w->info.state = s;
    w->info.started_ms = s == SIDECAR_WORKLOAD_PRIMARY ? workload_now_ms() : 0;
}

void workload_persist_role(sidecar_workload_t *w, const char *role)
{
    store_t *st = sidecar_node_store(w->node);
    char now[32];
    size_t len = 0;
    if (store_local_get(st, w->role_key, now, sizeof(now), &len) == 0 && len == strlen(role) &&
        memcmp(now, role, len) == 0)
        return; /* already durable (sidecar_workload_persist_primary) */
    /* "primary" must be durable before the workload may run; "standby" need not be: lost in
     * a crash, it leaves "primary", and the restart runs on-stop once more (recover_role).
     * Not waiting for the disk there keeps hundreds of stops at once (a failover, a
     * shutdown) from holding the loop for an fsync each. */
    bool durable = strcmp(role, "primary") == 0;
    int rv = durable ? store_local_set(st, w->role_key, role, strlen(role))
                     : store_local_set_relaxed(st, w->role_key, role, strlen(role));
    if (rv != 0)
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "cannot record the workload's role",
                    SIDECAR_LOG_STR("role", role), SIDECAR_LOG_STR("error", store_strerror(rv)));
}

/* ---- the evaluation ---------------------------------------------------------------------- */

static bool want_primary(const sidecar_workload_t *w, uint64_t now_ns)
{
    if (w->maint_hold)
        return false;
    workload_lease_holds_t h = {.shutting_down = w->shutting_down,
                                .recovering = w->recovering,
                                .handover = w->handover,
                                .handover_term = w->handover_term,
                                .gave_up_term = w->gave_up_term,
                                .backoff_until_ms = w->backoff_until_ms};
    return workload_lease_want_primary(&w->st, &h, workload_stop_ns(w), now_ns);
}

static void timer_cb(uv_timer_t *t)
{
    workload_evaluate(t->data);
}

/* Wakes up exactly when the lease crosses the stop point, or periodically. Without a workload
 * there is nothing to look at: every change reaches it through the node's callbacks. */
static void schedule(sidecar_workload_t *w)
{
    if (!w->timer_open || (w->mode == MODE_NONE && !workload_priority_busy(w)))
        return;
    uint64_t delay =
        workload_lease_wake_ms(&w->st, w->state == SIDECAR_WORKLOAD_PRIMARY, workload_stop_ns(w),
                               w->backoff_until_ms, sidecar_clock_boot_ns(), w->eval_ms);
    uv_timer_start(&w->timer, timer_cb, delay, 0);
}

/* Once nothing runs here: the armed handover leaves, and a shutdown is complete. */
static void finish_when_idle(sidecar_workload_t *w)
{
    bool idle = w->state == SIDECAR_WORKLOAD_STANDBY && w->hook == NULL && w->shim == NULL;
    /* Leadership lost meanwhile: nothing to transfer, but whoever asked hears of it. */
    bool lost = w->st.role != RAFT_LEADER || w->st.term != w->handover_term;
    if (w->handover_due && (idle || lost))
        workload_handover_send(w);
    if (!idle) {
        w->ran = true;
        return;
    }
    if (w->ran && w->owner_cb != NULL) {
        w->ran = false;
        w->owner_cb(w->owner_ud, w, SIDECAR_WORKLOAD_STOPPED);
    }
    if (w->shutting_down && w->stop_cb != NULL) {
        void (*cb)(void *) = w->stop_cb;
        w->stop_cb = NULL;
        cb(w->stop_ud);
    }
}

/* A workload held back by maintenance (restarts.c) may start again once maintenance is off,
 * or in a new term (a new tenure is a start, not a restart). */
static void maintenance_release(sidecar_workload_t *w)
{
    if (!w->maint_hold)
        return;
    bool same = w->st.role == RAFT_LEADER && w->st.term == w->maint_hold_term;
    if (same && sidecar_maintenance_on(w->node))
        return;
    w->maint_hold = w->info.maintenance_hold = false;
    SIDECAR_LOG(SIDECAR_LOG_INFO,
                same ? "maintenance is off: the workload that exited may start again"
                     : "the workload held back by maintenance belongs to an earlier term",
                SIDECAR_LOG_STR("election", w->election ? w->election : "default"));
}

void workload_evaluate(sidecar_workload_t *w)
{
    if (w->close_cb != NULL)
        return;
    maintenance_release(w);
    workload_priority_step(w);
    uint64_t now_ns = sidecar_clock_boot_ns();
    switch (w->mode) {
    case MODE_WITNESS:
        workload_witness_step(w, EVAL_MS);
        break;
    case MODE_SUPERVISE:
        workload_supervise_step(w, want_primary(w, now_ns), now_ns);
        break;
    case MODE_HOOKS:
        workload_hooks_step(w, want_primary(w, now_ns), now_ns);
        break;
    case MODE_NONE:
        break;
    }
    finish_when_idle(w);
    schedule(w);
}

static void changed_cb(void *ud, const sidecar_node_state_t *st)
{
    sidecar_workload_t *w = ud;
    if (st->term != w->st.term && w->handover && st->term != w->handover_term)
        w->handover = false;
    w->st = *st;
    workload_evaluate(w);
}

/* Records that change the priority table, or may end a maintenance hold, are looked at once
 * they apply. */
static void applied_cb(void *ud, const raft_entry_t *e, const store_result_t *res)
{
    (void)res;
    sidecar_workload_t *w = ud;
    workload_priority_applied(w, e);
    if ((w->prio != NULL && w->prio->dirty) || w->maint_hold)
        workload_evaluate(w);
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static enum workload_mode mode_of(const sidecar_config_t *cfg)
{
    if (cfg->witness)
        return MODE_WITNESS;
    if (cfg->exec.argc > 0)
        return MODE_SUPERVISE;
    if (cfg->on_start.argc || cfg->on_stop.argc || cfg->on_change.argc)
        return MODE_HOOKS;
    return MODE_NONE;
}

/* The fixed arguments of every shim's command line (shim.h). The executable and the data
 * directory are the same for every controller of the process: found once, shared. */
static int shim_args_init(sidecar_workload_t *w, char *errbuf, size_t errlen)
{
    static char exe[PATH_MAX], data_dir[PATH_MAX];
    const sidecar_config_t *cfg = w->cfg;
    if (data_dir[0] == '\0' && realpath(cfg->data_dir, data_dir) == NULL)
        snprintf(data_dir, sizeof(data_dir), "%s", cfg->data_dir);
    w->data_dir = data_dir;
    snprintf(w->parent_pid, sizeof(w->parent_pid), "%d", (int)getpid());
    snprintf(w->stop_ms, sizeof(w->stop_ms), "%u", cfg->stop_timeout_ms);
    size_t len = sizeof(exe);
    if (exe[0] == '\0' && uv_exepath(exe, &len) != 0) {
        exe[0] = '\0';
        snprintf(errbuf, errlen, "cannot find electd's own executable for the shim");
        return -1;
    }
    w->exe = exe;
    return 0;
}

/* electd stopped last time while its workload was primary: with hooks, on-stop runs before
 * anything else (at-least-once stop); a supervised workload was taken down by its shim. */
static void recover_role(sidecar_workload_t *w)
{
    char role[32];
    size_t rl = 0;
    if (store_local_get(sidecar_node_store(w->node), w->role_key, role, sizeof(role) - 1, &rl) != 0)
        return;
    role[rl] = '\0';
    if (strcmp(role, "primary") != 0)
        return;
    SIDECAR_LOG(SIDECAR_LOG_WARN, "electd stopped last time while its workload was primary",
                SIDECAR_LOG_STR("mode", w->info.mode),
                SIDECAR_LOG_STR("election", w->election ? w->election : "default"));
    if (w->mode == MODE_HOOKS && w->cfg->on_stop.argc > 0)
        w->recovering = true;
    else
        workload_persist_role(w, "standby");
}

/* What both kinds of controller share; the caller finishes with its source of state. */
static sidecar_workload_t *controller_new(uv_loop_t *loop, const sidecar_config_t *cfg,
                                          const char *election, sidecar_node_t *node, char *errbuf,
                                          size_t errlen)
{
    static const char *names[] = {"none", "supervise", "hooks", "witness"};
    sidecar_workload_t *w = calloc(1, sizeof(*w));
    bool ok = w != NULL && (election != NULL ? (w->election = strdup(election)) != NULL
                                             : (w->prio = calloc(1, sizeof(*w->prio))) != NULL);
    if (!ok) {
        if (w != NULL)
            free(w->prio);
        free(w);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    snprintf(w->role_key, sizeof(w->role_key), "%s%s%s", ROLE_KEY, election ? "/" : "",
             election ? election : "");
    w->eval_ms = election ? NAMED_EVAL_MS : EVAL_MS;
    w->loop = loop;
    w->cfg = cfg;
    w->node = node;
    w->ctl_fd = -1;
    w->info.last_exit = -1;
    w->stop_clean = true;
    w->mode = mode_of(cfg);
    w->info.mode = names[w->mode];
    if (shim_args_init(w, errbuf, errlen) != 0) {
        free(w->election);
        free(w->prio);
        free(w);
        return NULL;
    }
    recover_role(w);
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->timer_open = true;
    return w;
}

int sidecar_workload_open(sidecar_workload_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                          sidecar_node_t *node, char *errbuf, size_t errlen)
{
    sidecar_workload_t *w = controller_new(loop, cfg, NULL, node, errbuf, errlen);
    if (w == NULL)
        return -1;
    /* Shims of a previous run (of any election) are gone before anything starts. */
    workload_procscan_wait(w->data_dir, cfg->stop_timeout_ms);
    sidecar_node_state(node, &w->st);
    w->prio->dirty = true;
    w->obs = (sidecar_node_observer_t){.changed_cb = changed_cb, .applied_cb = applied_cb, .ud = w};
    sidecar_node_observe(node, &w->obs);
    *out = w;
    workload_evaluate(w);
    return 0;
}

int sidecar_workload_open_election(sidecar_workload_t **out, uv_loop_t *loop,
                                   const sidecar_config_t *cfg, const char *election,
                                   sidecar_node_t *node, sidecar_workload_owner_cb owner_cb,
                                   void *ud, char *errbuf, size_t errlen)
{
    sidecar_workload_t *w = controller_new(loop, cfg, election, node, errbuf, errlen);
    if (w == NULL)
        return -1;
    w->owner_cb = owner_cb;
    w->owner_ud = ud;
    w->st.store_ok = true; /* standby until told otherwise: role follower, no deadline */
    *out = w;
    workload_evaluate(w);
    return 0;
}

/* A named election's tenure, as the node state the lease timeline reads: holding is leading
 * in the epoch = term = the election's token, with the tenure's deadline as the lease. */
void sidecar_workload_set_tenure(sidecar_workload_t *w, const sidecar_workload_tenure_t *t)
{
    ELECTD_CHECK(w->election != NULL);
    bool holds = t->holds && t->token != 0;
    w->st.role = holds ? RAFT_LEADER : RAFT_FOLLOWER;
    w->st.term = t->token;
    w->st.epoch = holds ? t->token : 0;
    w->st.leader = t->holder;
    w->st.lease_deadline_ns = holds ? t->deadline_ns : 0;
    workload_evaluate(w);
}

int sidecar_workload_persist_primary(sidecar_workload_t *const *ws, size_t n)
{
    if (n == 0)
        return 0;
    const char **keys = malloc(n * sizeof(*keys));
    if (keys == NULL)
        return STORE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        keys[i] = ws[i]->role_key;
    int rv = store_local_set_many(sidecar_node_store(ws[0]->node), keys, n, "primary", 7);
    free(keys);
    return rv;
}

bool sidecar_workload_idle(const sidecar_workload_t *w, bool *clean)
{
    *clean = w->stop_clean;
    return w->state == SIDECAR_WORKLOAD_STANDBY && w->hook == NULL && w->shim == NULL &&
           !w->recovering;
}

void sidecar_workload_info(const sidecar_workload_t *w, sidecar_workload_info_t *out)
{
    *out = w->info;
}

void sidecar_workload_stop(sidecar_workload_t *w, void (*cb)(void *ud), void *ud)
{
    w->shutting_down = true;
    w->stop_cb = cb;
    w->stop_ud = ud;
    workload_evaluate(w);
}

void workload_close_done(sidecar_workload_t *w)
{
    if (w->close_cb == NULL || w->open_children > 0 || w->timer_open)
        return;
    void (*cb)(void *) = w->close_cb;
    void *ud = w->close_ud;
    free(w->crashes_ms);
    free(w->election);
    free(w->prio);
    free(w);
    cb(ud);
}

static void timer_closed_cb(uv_handle_t *h)
{
    sidecar_workload_t *w = h->data;
    w->timer_open = false;
    workload_close_done(w);
}

void sidecar_workload_close(sidecar_workload_t *w, void (*cb)(void *ud), void *ud)
{
    if (w->election == NULL)
        sidecar_node_unobserve(w->node, &w->obs);
    w->close_cb = cb;
    w->close_ud = ud;
    workload_supervise_close(w);
    if (w->hook != NULL)
        workload_proc_kill(&w->hook->proc, SIGTERM);
    uv_close((uv_handle_t *)&w->timer, timer_closed_cb);
}

bool sidecar_workload_token_check(const sidecar_workload_t *w, const char *token, size_t len)
{
    /* A stopped workload's token is void. */
    return w->state != SIDECAR_WORKLOAD_STANDBY && workload_cred_check(&w->cred, token, len);
}
