/* node_batch.c — the driver's batch loop: ticks from the boot-time clock and peers' messages
 * step the core; each ready batch is persisted (one store transaction, fsync), then sent, then
 * applied, then advanced (etcd's order); what the rest of the daemon sees is published to the
 * observers. A batch that cannot be persisted or applied is retried, and nothing leaves the
 * node meanwhile. */
#include <string.h>

#include "check.h"
#include "common.h"
#include "node_int.h"
#include "vec.h"

#define STORE_RETRY_LOG_NS 1000000000ull /* log a failing store at most once a second */
#define STORE_RETRY_NS     100000000ull  /* retry a batch that failed at most every 100 ms */

void node_store_failed(sidecar_node_t *n, const char *what, int rv)
{
    uint64_t now = uv_hrtime();
    if (n->store_fail_logged_ns == 0 || now - n->store_fail_logged_ns >= STORE_RETRY_LOG_NS) {
        SIDECAR_LOG(SIDECAR_LOG_ERROR, "storage failed; will retry", SIDECAR_LOG_STR("op", what),
                    SIDECAR_LOG_STR("error", store_strerror(rv)),
                    SIDECAR_LOG_STR("detail", store_errmsg(n->store)));
        n->store_fail_logged_ns = now;
    }
}

/* ---- soft state --------------------------------------------------------------------------- */

static void notify_changed(sidecar_node_t *n)
{
    for (sidecar_node_observer_t *o = n->observers; o; o = o->next)
        if (o->changed_cb)
            o->changed_cb(o->ud, &n->state);
}

static void log_leadership(const sidecar_node_state_t *old, const sidecar_node_state_t *s,
                           sidecar_node_t *n)
{
    if (old->role == s->role && old->leader == s->leader && old->term == s->term)
        return;
    char leader[64];
    sidecar_node_member_name(n, s->leader, leader, sizeof(leader));
    if (old->role != s->role)
        SIDECAR_LOG(SIDECAR_LOG_INFO, s->role == RAFT_LEADER ? "became leader" : "role changed",
                    SIDECAR_LOG_STR("from", raft_role_name(old->role)),
                    SIDECAR_LOG_STR("to", raft_role_name(s->role)),
                    SIDECAR_LOG_STR("leader", leader));
    else if (old->leader != s->leader)
        SIDECAR_LOG(SIDECAR_LOG_INFO, "leader changed", SIDECAR_LOG_STR("leader", leader));
}

/* Publishes the node as the rest of the daemon sees it. While a batch is failing the store is
 * not ok and no lease is claimed, whatever the core believes: a leader that cannot persist
 * must not run the workload. */
static void publish(sidecar_node_t *n, raft_role_t role, uint64_t leader, uint64_t term,
                    uint64_t lease_until_tick, bool transfer_stopped)
{
    sidecar_node_state_t *s = &n->state;
    sidecar_node_state_t old = *s;
    s->role = role;
    s->term = term;
    s->leader = leader;
    s->lease_deadline_ns = role == RAFT_LEADER && lease_until_tick > 0 && !n->batch_failing
                               ? sidecar_node_tick_ns(n, lease_until_tick)
                               : 0;
    s->transfer_stopped = transfer_stopped;
    s->commit = raft_commit_index(n->raft);
    s->applied = store_applied_index(n->store);
    s->store_ok = !n->batch_failing;
    /* What observers rely on: terms and the applied index only move forward (a stale batch
     * is never published over the core's newer state), and nothing is committed beyond the
     * log. */
    ELECTD_CHECK(s->term >= old.term);
    ELECTD_CHECK(s->applied >= old.applied);
    ELECTD_CHECK(s->commit <= raft_last_index(n->raft));
    log_leadership(&old, s, n);
    if (memcmp(&old, s, sizeof(old)) != 0)
        notify_changed(n);
}

static void update_state(sidecar_node_t *n, const raft_ready_t *rd)
{
    publish(n, rd->role, rd->leader, rd->term, rd->lease_until_tick, rd->transfer_stopped);
}

/* What the core believes now: while a batch is stuck the core keeps stepping and ticking, so
 * the batch's own soft state grows stale (a leader is deposed by the healthy members). */
static void publish_live(sidecar_node_t *n, bool transfer_stopped)
{
    const raft_t *r = n->raft;
    publish(n, raft_role(r), raft_leader(r), raft_term(r), raft_lease_until(r), transfer_stopped);
}

/* Persisting or applying the batch failed (disk full, I/O error); it is retried every
 * STORE_RETRY_NS. Nothing of it or after it leaves this node meanwhile: no vote grant, no
 * append acknowledgement, no vote request, no heartbeat. So the member can neither help elect
 * anyone nor win an election before its vote is durable, and a leader falls silent: the
 * healthy members elect another within an election timeout (their stickiness outlasts its
 * lease). The workload stops at once (no lease is published) and the API refuses what
 * needs the store (store_ok is false). */
static void batch_failed(sidecar_node_t *n, const char *what, int rv)
{
    uint64_t now = uv_hrtime();
    node_store_failed(n, what, rv);
    if (!n->batch_failing) {
        n->batch_failing = true;
        n->failing_since_ns = now;
    }
    n->retry_at_ns = now + STORE_RETRY_NS;
    publish_live(n, false);
}

/* The batch that was failing went through: publish the core's present state rather than the
 * batch's (taken when it first failed) so that nobody sees the term or the role go back. */
static void batch_recovered(sidecar_node_t *n, const raft_ready_t *rd)
{
    n->batch_failing = false;
    n->store_fail_logged_ns = 0;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "storage works again",
                SIDECAR_LOG_UINT("failed_ms", (uv_hrtime() - n->failing_since_ns) / 1000000));
    bool same = rd->role == raft_role(n->raft) && rd->term == raft_term(n->raft);
    publish_live(n, same && rd->transfer_stopped);
}

/* ---- time --------------------------------------------------------------------------------- */

/* Delivers every tick the boot-time clock has passed: the core must never believe less time
 * has passed than has, and it counts every tick (leases and sessions are measured in them).
 * False when none was due. */
static bool deliver_ticks(sidecar_node_t *n)
{
    uint64_t target = (sidecar_clock_boot_ns() - n->start_ns) / n->tick_ns;
    if (raft_now(n->raft) >= target)
        return false;
    while (raft_now(n->raft) < target)
        raft_tick(n->raft);
    return true;
}

void node_clock(sidecar_node_t *n)
{
    /* Inside the batch loop the core was brought up to date when the loop began. */
    if (!n->in_process && deliver_ticks(n) && raft_has_ready(n->raft))
        node_schedule(n);
}

/* The ticker wakes the loop only when the core has something to do at a tick
 * (raft_tick_due: a heartbeat, an election timeout...), or when a failed batch is to be
 * retried; the ticks in between are delivered by node_clock, in full, before anything else
 * reaches the core. An idle follower then wakes for its leader's heartbeats alone. */
static void arm_ticker(sidecar_node_t *n)
{
    if (n->closing)
        return;
    uint64_t due_ns = sidecar_node_tick_ns(n, raft_tick_due(n->raft));
    uint64_t now_ns = sidecar_clock_boot_ns();
    uint64_t delay_ns = due_ns > now_ns ? due_ns - now_ns : 0;
    uint64_t hr_ns = uv_hrtime();
    if (n->batch_failing) {
        uint64_t retry_ns = n->retry_at_ns > hr_ns ? n->retry_at_ns - hr_ns : 0;
        delay_ns = retry_ns < delay_ns ? retry_ns : delay_ns;
    }
    /* libuv fires a timer once its loop time, whole ms of uv_hrtime() taken when the loop turn
     * began, reaches uv_now() + delay: counted from uv_now(), and rounded up, so that it
     * never fires before the tick (it would only have to be armed again). Never 0 ms: a 0 ms
     * timer armed from its own callback keeps libuv (1.44) in its timer loop. */
    uint64_t at_ms = (hr_ns + delay_ns + 999999) / 1000000;
    uint64_t loop_ms = uv_now(n->loop);
    uint64_t delay_ms = at_ms > loop_ms ? at_ms - loop_ms : 1;
    uv_timer_start(&n->ticker, node_tick_cb, delay_ms, 0);
}

/* ---- one batch ---------------------------------------------------------------------------- */

/* Messages a leader may send before its batch is durable: they carry its log and commit
 * index, never a promise (a vote, an acknowledgement) that needs the disk behind it. */
static bool leader_early(const raft_msg_t *m)
{
    return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT;
}

/* Sends one message of the batch out. Persisted before sent: a vote, an acknowledgement or a
 * term leaves only once the batch that records it is on disk; only a leader's appends and
 * heartbeats may go first (leader_early). */
static void msg_send(sidecar_node_t *n, const raft_msg_t *m)
{
    ELECTD_CHECK(n->batch_out);
    ELECTD_CHECK(n->persisted || (n->rd.role == RAFT_LEADER && leader_early(m)));
    sidecar_transport_send(n->transport, m);
}

static bool batch_take(sidecar_node_t *n)
{
    if (!raft_has_ready(n->raft) || raft_ready_get(n->raft, &n->rd) != 0)
        return false;
    n->batch_out = true;
    n->persisted = false;
    n->sent_early = false;
    return true;
}

/* Raft dissertation §10.2.1: a leader may replicate while it writes its own copy; the core
 * counts that copy towards commit only once this batch is advanced. */
static void batch_send_early(sidecar_node_t *n, const raft_ready_t *rd)
{
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (leader_early(&rd->msgs[i]))
            msg_send(n, &rd->msgs[i]);
    n->sent_early = true;
}

/* Persists the batch, then sends the rest of its messages. False when the store failed:
 * nothing leaves this node until the batch is durable. */
static bool batch_persist(sidecar_node_t *n, const raft_ready_t *rd)
{
    int rv = store_save_ready(n->store, rd);
    if (rv != 0) {
        batch_failed(n, "persist", rv);
        return false;
    }
    n->persisted = true;
    if (rd->chunk != NULL && rd->chunk->last)
        SIDECAR_LOG(SIDECAR_LOG_INFO, "snapshot installed",
                    SIDECAR_LOG_UINT("index", rd->chunk->meta.index),
                    SIDECAR_LOG_UINT("bytes", rd->chunk->meta.size));
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (!(n->sent_early && leader_early(&rd->msgs[i])))
            msg_send(n, &rd->msgs[i]);
    return true;
}

/* Applies the committed entries to the store and tells the observers what each did. */
static int batch_apply(sidecar_node_t *n, const raft_ready_t *rd)
{
    if (rd->n_committed == 0)
        return 0;
    if (BASE_VEC_RESERVE(n->results, n->cap_results, rd->n_committed, 16) != 0)
        return STORE_ENOMEM;
    int rv = store_apply(n->store, rd->committed, rd->n_committed, n->results);
    if (rv != 0)
        return rv;
    for (size_t i = 0; i < rd->n_committed; i++) {
        const store_result_t *res = &n->results[i];
        if (res->status == STORE_APPLIED_SKIPPED)
            continue;
        if (res->type == RAFT_ENTRY_NOOP && res->status == STORE_APPLIED_OK &&
            res->epoch > n->state.epoch)
            n->state.epoch = res->epoch;
        for (sidecar_node_observer_t *o = n->observers; o; o = o->next)
            if (o->applied_cb)
                o->applied_cb(o->ud, &rd->committed[i], res);
    }
    return 0;
}

/* Applies the batch, answers its reads, publishes and advances the core. False when applying
 * failed (the batch is retried). */
static bool batch_finish(sidecar_node_t *n, const raft_ready_t *rd)
{
    int rv = batch_apply(n, rd);
    if (rv != 0) {
        batch_failed(n, "apply", rv);
        return false;
    }
    for (size_t i = 0; i < rd->n_reads; i++)
        for (sidecar_node_observer_t *o = n->observers; o; o = o->next)
            if (o->read_cb)
                o->read_cb(o->ud, rd->reads[i].ctx, rd->reads[i].index);
    if (n->batch_failing)
        batch_recovered(n, rd);
    else
        update_state(n, rd);
    raft_advance(n->raft);
    n->batch_out = false;
    node_peers_sync(n);
    node_compact(n);
    node_learner_promote(n);
    return true;
}

/* A quiet leader (raft_quiet) whose members sent it nothing but echoes for an election
 * timeout holds their connections until its next tick: the echoes of a round are then read
 * with the next round, one wake-up a round instead of one per member. Anything else that
 * reaches the core (a request, a proposal) makes it not quiet, and the batch it causes reads
 * again; a member's other message waits at most one heartbeat interval (two while rounds go
 * in turn: a drain reads only the members sent the last round, echo_due). A round not echoed by
 * every member when the next one starts ends the hold at once. While it holds, the core sends
 * its rounds in turn (raft_set_rotation): in a group of three each round goes to one of the
 * two followers, so the leader writes to one member a round and each follower wakes every
 * other round.
 *
 * Holding only delays messages, which Raft allows: the lease counts from when a round was
 * sent, so an echo read late extends it as far as one read at once. What the delay costs is
 * how far ahead the leader knows its lease: down to lease - 2 heartbeat intervals just before
 * a drain. hold_allowed permits holding only while that stays above the stop
 * timeout, by two ticks, so that a quiet primary's workload is never stopped for an echo that
 * waits to be read: the drain comes first (docs/architecture.md, "A quiet leader"). Not with
 * named elections: a member's stamp read late counts as heard late, which would move a dead
 * member's elections up to an interval later. */
static bool hold_allowed(const sidecar_config_t *cfg)
{
    /* The lease it knows of just before a drain, lease - 2 heartbeat intervals, outlives the
     * stop timeout by two ticks (880 - 300 > 500 + 20 ms at the defaults). From the settings
     * of now: a reload may change the stop timeout and the named elections. */
    return cfg->elections.n == 0 &&
           (uint64_t)sidecar_config_lease_ms(cfg) >
               2ull * cfg->heartbeat_interval_ms + cfg->stop_timeout_ms + 2ull * cfg->tick_ms;
}

static void hold_update(sidecar_node_t *n)
{
    bool hold = hold_allowed(n->cfg) && !n->closing && !n->batch_out && !n->batch_failing &&
                raft_quiet(n->raft) &&
                uv_hrtime() - n->stirred_ns >= (uint64_t)n->cfg->election_timeout_ms * 1000000u;
    if (hold == n->holding)
        return;
    n->holding = hold;
    sidecar_transport_hold_reads(n->transport, hold);
    raft_set_rotation(n->raft, hold);
}

void node_process(sidecar_node_t *n)
{
    if (n->in_process || n->closing)
        return;
    /* This run takes everything ready: a run scheduled before it has nothing left to do. */
    uv_check_stop(&n->check);
    uv_idle_stop(&n->idle);
    deliver_ticks(n);
    n->in_process = true;
    for (int guard = 0; guard < 1000; guard++) {
        if (!n->batch_out && !batch_take(n))
            break;
        const raft_ready_t *rd = &n->rd;
        if (n->batch_failing && uv_hrtime() < n->retry_at_ns) {
            publish_live(n, false);
            break;
        }
        if (!n->persisted && !n->sent_early && rd->role == RAFT_LEADER)
            batch_send_early(n, rd);
        if (!n->persisted && !batch_persist(n, rd))
            break;
        if (!batch_finish(n, rd))
            break;
    }
    n->in_process = false;
    arm_ticker(n);
    hold_update(n);
}

/* ---- what drives it ----------------------------------------------------------------------- */

static void check_cb(uv_check_t *h)
{
    sidecar_node_t *n = h->data;
    uv_check_stop(h);
    uv_idle_stop(&n->idle);
    node_process(n);
}

static void idle_cb(uv_idle_t *h)
{
    (void)h;
}

void node_schedule(sidecar_node_t *n)
{
    if (n->closing)
        return;
    uv_check_start(&n->check, check_cb);
    /* Scheduled from outside the loop's poll phase (a timer's callback), the check phase would
     * come only after the next poll, which may sleep until the next heartbeat: an active idle
     * handle makes that poll return at once. */
    uv_idle_start(&n->idle, idle_cb);
}

/* Whether member id's connection may hold an echo of the round sent last: not when the round
 * went to the other follower (rounds in turn); that member's echo of the round before was read
 * with it. */
static bool echo_due(void *ud, uint64_t id)
{
    sidecar_node_t *n = ud;
    return raft_round_sent_to(n->raft, id);
}

void node_tick_cb(uv_timer_t *h)
{
    sidecar_node_t *n = h->data;
    if (n->holding) {
        n->quiet_rounds++;
        /* the echoes of the last round, first */
        sidecar_transport_drain(n->transport, echo_due, n);
    }
    node_process(n); /* which delivers the ticks due first (node_clock) and re-arms the timer */
}

uint64_t sidecar_node_released_notices(const sidecar_node_t *n)
{
    return n->released_notices;
}

uint64_t sidecar_node_quiet_rounds(const sidecar_node_t *n)
{
    return n->quiet_rounds;
}

uint64_t sidecar_node_rounds_in_turn(const sidecar_node_t *n)
{
    return raft_rounds_in_turn(n->raft);
}

void node_recv_cb(void *ud, const raft_msg_t *m)
{
    sidecar_node_t *n = ud;
    node_clock(n);
    if (m->type != RAFT_MSG_HEARTBEAT_RESP)
        n->stirred_ns = uv_hrtime();
    if (m->type == RAFT_MSG_RELEASED) {
        /* A dead leader's shim: the core takes it only from the leader it follows, in the term
         * it knows (docs/guarantees.md, "Released lease on process death"). */
        SIDECAR_LOG(SIDECAR_LOG_INFO, "released-lease notice received",
                    SIDECAR_LOG_ID("from", m->from), SIDECAR_LOG_UINT("notice_term", m->term),
                    SIDECAR_LOG_ID("leader", raft_leader(n->raft)));
        n->released_notices++;
    }
    raft_step(n->raft, m);
    node_schedule(n);
}
