/* handover.c — leaving leadership: a graceful handover (operator, SIGTERM, or this member
 * giving up) stops the workload first and sends the transfer only once nothing runs here, with
 * "stopped" only when the stop completed (docs/guarantees.md, "The lease timeline"); a
 * witness hands leadership away at once. */
#include "workload_int.h"

void workload_handover_arm(sidecar_workload_t *w, uint64_t target)
{
    if (!w->handover_due || w->handover_term != w->st.term || target != 0)
        w->handover_target = target;
    w->handover = true;
    w->handover_due = true;
    w->handover_term = w->st.term;
}

/* The transfer itself: "stopped" only when the stop completed; otherwise the successor waits
 * out our lease as after a crash (raft_transfer). */
static int transfer(sidecar_workload_t *w)
{
    /* The transfer leaves only once nothing runs here: the successor may start at once. */
    ELECTD_CHECK(w->state == SIDECAR_WORKLOAD_STANDBY && w->hook == NULL && w->shim == NULL);
    uint64_t target = w->handover_target ? w->handover_target : workload_gave_up_choose(w);
    int rv = sidecar_node_transfer(w->node, target, w->stop_clean ? RAFT_FLAG_STOPPED : 0);
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
    return rv;
}

void workload_handover_send(sidecar_workload_t *w)
{
    int rv = RAFT_ENOTLEADER;
    w->handover_due = false;
    if (w->st.role == RAFT_LEADER && w->st.term == w->handover_term)
        rv = transfer(w);
    if (w->handover_cb != NULL) {
        sidecar_workload_handover_cb cb = w->handover_cb;
        w->handover_cb = NULL;
        cb(w->handover_ud, rv);
    }
}

int sidecar_workload_handover(sidecar_workload_t *w, uint64_t target,
                              sidecar_workload_handover_cb cb, void *ud)
{
    if (w->st.role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (w->handover_due && w->handover_cb != NULL)
        return RAFT_ETRANSFERRING;
    workload_handover_arm(w, target);
    w->handover_cb = cb;
    w->handover_ud = ud;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "graceful handover: stopping the workload first");
    workload_evaluate(w);
    return 0;
}

/* A witness votes and stores the log but never leads for long: it tries once per
 * retry_ms. */
void workload_witness_step(sidecar_workload_t *w, uint64_t retry_ms)
{
    ELECTD_CHECK(w->state == SIDECAR_WORKLOAD_STANDBY && w->hook == NULL && w->shim == NULL);
    if (w->st.role != RAFT_LEADER || workload_now_ms() - w->witness_try_ms < retry_ms)
        return;
    w->witness_try_ms = workload_now_ms();
    /* It never runs anything, and a predecessor still inside its lease makes the core drop
     * the "stopped" (raft_transfer). */
    int rv = sidecar_node_transfer(w->node, workload_gave_up_choose(w), RAFT_FLAG_STOPPED);
    if (rv == 0)
        SIDECAR_LOG(SIDECAR_LOG_INFO, "witness handing leadership away");
}
