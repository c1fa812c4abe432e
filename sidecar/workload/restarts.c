/* restarts.c — crash accounting: a failed workload (or on-start) is restarted after a backoff
 * that doubles with each failure in --restart-window; after --max-restarts of them this
 * member gives up and hands leadership on, or, when every other voter gave up recently too,
 * keeps it and backs off longer (docs/guarantees.md, "Supervise"). */
#include <stdlib.h>

#include "workload_int.h"

#define BACKOFF_MIN_MS         100
#define BACKOFF_MAX_MS         10000
#define GAVE_UP_BACKOFF_MIN_MS 1000
#define GAVE_UP_BACKOFF_MAX_MS 300000

/* min_ms doubled for each of the n - 1 earlier times (n >= 1), at most max_ms. */
static uint64_t doubling_ms(uint64_t min_ms, uint64_t max_ms, uint64_t n)
{
    ELECTD_CHECK(n >= 1);
    uint64_t backoff = min_ms << (n - 1 < 16 ? n - 1 : 16);
    return backoff > max_ms ? max_ms : backoff;
}

/* Too many failures here: hand over to a member that has not failed recently, once the
 * workload has stopped; when every other one has, keep leadership and back off instead of
 * bouncing, doubling the pause with each give-up in a row. The log line says which. */
static void give_up(sidecar_workload_t *w, const char *what, size_t failures)
{
    if (w->election != NULL) {
        /* A named election: its owner moves it; meanwhile a long pause here. */
        w->gave_up_term = w->st.term;
        w->info.gave_up++;
        uint64_t backoff =
            doubling_ms(GAVE_UP_BACKOFF_MIN_MS, GAVE_UP_BACKOFF_MAX_MS, w->info.gave_up);
        w->backoff_until_ms = workload_now_ms() + backoff;
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "workload keeps failing: giving the election up",
                    SIDECAR_LOG_STR("election", w->election), SIDECAR_LOG_STR("what", what),
                    SIDECAR_LOG_UINT("failures", failures),
                    SIDECAR_LOG_UINT("retry_in_ms", backoff));
        if (w->owner_cb != NULL)
            w->owner_cb(w->owner_ud, w, SIDECAR_WORKLOAD_GAVE_UP);
        return;
    }
    if (w->st.role != RAFT_LEADER) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "workload keeps failing; this member no longer leads",
                    SIDECAR_LOG_STR("what", what), SIDECAR_LOG_UINT("failures", failures));
        return;
    }
    uint64_t count = workload_gave_up_publish(w, what);
    uint64_t to = workload_gave_up_choose(w);
    if (to != 0) {
        w->gave_up_term = w->st.term;
        /* Not at once: the successor may start as soon as the transfer says "stopped", so it
         * leaves only when on-stop (or the workload's exit) has completed. */
        workload_handover_arm(w, 0);
        char name[64];
        sidecar_node_member_name(w->node, w->handover_target ? w->handover_target : to, name,
                                 sizeof(name));
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "workload keeps failing: handing leadership over",
                    SIDECAR_LOG_STR("to", name), SIDECAR_LOG_STR("what", what),
                    SIDECAR_LOG_UINT("failures", failures),
                    SIDECAR_LOG_UINT("window_ms", w->cfg->restart_window_ms));
        return;
    }
    uint64_t backoff = doubling_ms(GAVE_UP_BACKOFF_MIN_MS, GAVE_UP_BACKOFF_MAX_MS, count);
    w->backoff_until_ms = workload_now_ms() + backoff;
    SIDECAR_LOG(SIDECAR_LOG_ERROR,
                "workload keeps failing and every other member gave up: keeping leadership, "
                "retrying after a pause",
                SIDECAR_LOG_UINT("retry_in_ms", backoff), SIDECAR_LOG_UINT("in_a_row", count),
                SIDECAR_LOG_STR("what", what), SIDECAR_LOG_UINT("failures", failures));
}

/* Forgets the failures older than the restart window, then counts this one (at now). */
static void remember_failure(sidecar_workload_t *w, uint64_t now)
{
    size_t kept = 0;
    for (size_t i = 0; i < w->n_crashes; i++)
        if (now - w->crashes_ms[i] < w->cfg->restart_window_ms)
            w->crashes_ms[kept++] = w->crashes_ms[i];
    w->n_crashes = kept;
    if (w->crashes_ms == NULL &&
        (w->crashes_ms = calloc(MAX_CRASHES_KEPT, sizeof(uint64_t))) == NULL)
        return; /* out of memory: this failure is not counted */
    if (w->n_crashes < MAX_CRASHES_KEPT)
        w->crashes_ms[w->n_crashes++] = now;
}

void workload_failure_record(sidecar_workload_t *w, const char *what)
{
    uint64_t now = workload_now_ms();
    w->info.restarts++;
    if (sidecar_maintenance_on(w->node)) {
        /* Not counted: a failure under maintenance must not lead to a give-up later. */
        w->maint_hold = w->info.maintenance_hold = true;
        w->maint_hold_term = w->st.term;
        SIDECAR_LOG(SIDECAR_LOG_WARN,
                    "workload failed during maintenance: not restarting it until maintenance "
                    "is off",
                    SIDECAR_LOG_STR("what", what),
                    SIDECAR_LOG_STR("election", w->election ? w->election : "default"));
        return;
    }
    remember_failure(w, now);
    if (w->n_crashes > w->cfg->max_restarts) {
        size_t failures = w->n_crashes;
        w->n_crashes = 0;
        give_up(w, what, failures);
        return;
    }
    uint64_t backoff = doubling_ms(BACKOFF_MIN_MS, BACKOFF_MAX_MS, w->n_crashes);
    w->backoff_until_ms = now + backoff;
    SIDECAR_LOG(SIDECAR_LOG_WARN, "workload failed; restarting after a backoff",
                SIDECAR_LOG_STR("what", what), SIDECAR_LOG_UINT("backoff_ms", backoff),
                SIDECAR_LOG_UINT("failures", w->n_crashes));
}
