/* replication.c — the leader's side (appends, heartbeat rounds, snapshots in chunks,
 * commit, lease, ReadIndex) and the follower's side (accepting appends and snapshots). */
#include "raft_int.h"

/* ---- leader: rounds, leases, reads ----------------------------------------------------- */

void raft_start_round(raft_t *r)
{
    r->round++;
    r->round_tick[r->round % ROUND_RING] = r->now;
}

/* pr was sent a message that carries the current round (its echo acknowledges the round). */
void raft_note_round_sent(const raft_t *r, struct progress *pr)
{
    if (pr->sent_round == r->round)
        return;
    pr->sent_before = pr->sent_round;
    pr->sent_round = r->round;
}

/* The round pr should have echoed by now: the last one it was sent before the current round
 * (the round before the current one while every round goes to all). */
uint64_t raft_round_due(const raft_t *r, const struct progress *pr)
{
    return pr->sent_round == r->round ? pr->sent_before : pr->sent_round;
}

/* The newest heartbeat round that a quorum of voters has echoed (this leader counts as
 * having echoed every round it started), or 0. */
static uint64_t quorum_round(const raft_t *r)
{
    uint64_t acked[RAFT_MAX_MEMBERS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        const struct progress *pr = &r->prs[i];
        if (pr->voter)
            acked[n++] = pr->id == r->id ? r->round : pr->acked_round;
    }
    uint32_t q = raft_quorum_of(&r->conf);
    if (n < q)
        return 0;
    return raft_quorum_value(acked, n, q);
}

/* DESIGN.md "leader lease": a quorum echoed round qr, so each of them heard from us after
 * round_tick[qr]; none of them votes for anyone else for E of its ticks after that. With
 * clock rates within max_drift of real time, our lease of floor(E(1-d)/(1+d)) - 2 ticks from
 * round_tick[qr] ends before any of them could vote. */
void raft_update_lease_and_reads(raft_t *r)
{
    if (r->role != RAFT_LEADER)
        return;
    uint64_t qr = quorum_round(r);
    if (qr == 0)
        return;
    if (r->round - qr < ROUND_RING && r->round_tick[qr % ROUND_RING] > r->quorum_round_tick)
        r->quorum_round_tick = r->round_tick[qr % ROUND_RING];
    if (!r->lease_disabled && r->round - qr < ROUND_RING &&
        r->round_tick[qr % ROUND_RING] >= r->lease_after) {
        uint64_t lease = r->lease_ticks;
        if (MUTATED(r, RAFT_MUT_LONG_LEASE))
            lease = r->cfg.election_ticks;
        uint64_t until = r->round_tick[qr % ROUND_RING] + lease;
        if (until > r->lease_until)
            r->lease_until = until;
    }
    /* Raft §6.4 ReadIndex: a read registered before round qr started is linearizable at
     * the commit index recorded with it, once a quorum confirmed we still lead. */
    size_t kept = 0;
    for (size_t i = 0; i < r->n_reads; i++) {
        struct pending_read *pr = &r->reads[i];
        if (pr->round <= qr) {
            if (BASE_VEC_RESERVE(r->done_reads, r->cap_done_reads, r->n_done_reads + 1, 16) != 0) {
                r->reads[kept++] = *pr; /* try again at the next round */
                continue;
            }
            r->done_reads[r->n_done_reads++] = (raft_read_t){.ctx = pr->ctx, .index = pr->index};
        } else {
            r->reads[kept++] = *pr;
        }
    }
    r->n_reads = kept;
}

void raft_fail_pending_reads(raft_t *r)
{
    for (size_t i = 0; i < r->n_reads; i++)
        r->reads[i].index = 0, r->reads[i].round = 0;
    /* round 0 <= any quorum round: reuse the completion path with index 0 = failed. */
    size_t n = r->n_reads;
    for (size_t i = 0; i < n; i++) {
        if (BASE_VEC_RESERVE(r->done_reads, r->cap_done_reads, r->n_done_reads + 1, 16) != 0)
            break; /* the caller's read times out instead */
        r->done_reads[r->n_done_reads++] = (raft_read_t){.ctx = r->reads[i].ctx, .index = 0};
    }
    r->n_reads = 0;
}

int raft_read_index(raft_t *r, uint64_t ctx)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    /* Until an entry of its own term commits, a new leader does not know the commit index
     * of its predecessor (Raft §6.4 step 1). */
    if (raft_log_term_or0(&r->log, r->commit) != r->term)
        return RAFT_ENOQUORUM;
    if (BASE_VEC_RESERVE(r->reads, r->cap_reads, r->n_reads + 1, 16) != 0)
        return RAFT_ENOMEM;
    r->reads[r->n_reads++] =
        (struct pending_read){.ctx = ctx, .index = r->commit, .round = r->round + 1};
    r->need_round = true;
    return 0;
}

/* ---- leader: sending ------------------------------------------------------------------- */

static void inflight_free_to(struct progress *pr, uint64_t index, uint32_t cap)
{
    while (pr->in_count > 0 && pr->inflight[pr->in_head] <= index) {
        pr->in_head = (pr->in_head + 1) % cap;
        pr->in_count--;
    }
}

static void inflight_reset(struct progress *pr)
{
    pr->in_head = 0;
    pr->in_count = 0;
}

static void send_snapshot_chunk(raft_t *r, struct progress *pr)
{
    pr->snap_elapsed = 0;
    if (r->snap.index == 0)
        return;
    if (pr->snap_index != r->snap.index) {
        pr->snap_index = r->snap.index;
        pr->snap_offset = 0;
    }
    uint64_t size = r->snap.size;
    if (pr->snap_offset > size)
        pr->snap_offset = 0;
    uint64_t want = size - pr->snap_offset;
    if (want > r->cfg.snapshot_chunk_bytes)
        want = r->cfg.snapshot_chunk_bytes;
    uint8_t *buf = malloc(want ? want : 1);
    raft_conf_t *conf = malloc(sizeof(*conf));
    if (buf == NULL || conf == NULL)
        goto fail;
    size_t n = 0;
    if (want > 0) {
        if (r->storage.snapshot_read == NULL ||
            r->storage.snapshot_read(r->storage.ctx, r->snap.index, pr->snap_offset, buf, want,
                                     &n) != 0 ||
            n == 0 || n > want)
            goto fail; /* retried after an election timeout (raft_tick_leader) */
    }
    *conf = r->snap.conf;
    raft_msg_t *m = raft_msg_new(r, RAFT_MSG_SNAPSHOT, pr->id);
    if (m == NULL)
        goto fail;
    m->index = r->snap.index;
    m->log_term = r->snap.term;
    m->hint = pr->snap_offset;
    m->snap_size = size;
    m->data = buf;
    m->len = (uint32_t)n;
    m->conf = conf;
    m->ctx = r->round;
    raft_note_round_sent(r, pr);
    if (pr->snap_offset + n == size)
        m->flags |= RAFT_FLAG_LAST;
    return;
fail:
    free(buf);
    free(conf);
}

static void start_snapshot(raft_t *r, struct progress *pr)
{
    pr->state = PR_SNAPSHOT;
    pr->snap_index = r->snap.index;
    pr->snap_offset = 0;
    inflight_reset(pr);
    send_snapshot_chunk(r, pr);
}

/* Sends pr what it is missing from next on, if its state allows. allow_empty: send even
 * with no entries (to probe, or to carry a new commit index). */
void raft_send_append(raft_t *r, struct progress *pr, bool allow_empty)
{
    if (pr->id == r->id || pr->state == PR_SNAPSHOT)
        return;
    if (pr->state == PR_PROBE && pr->probe_sent)
        return;
    if (pr->state == PR_REPLICATE && pr->in_count >= r->cfg.max_inflight)
        return;
    uint64_t prev = pr->next - 1;
    uint64_t prev_term = 0;
    if (raft_log_term(&r->log, prev, &prev_term) != 0) {
        start_snapshot(r, pr); /* compacted away: only a snapshot can catch it up */
        return;
    }
    uint64_t last = raft_log_last_index(&r->log);
    raft_entry_t *ents = NULL;
    size_t n = 0;
    if (pr->next <= last &&
        raft_log_slice(&r->log, pr->next, last, r->cfg.max_msg_bytes, &ents, &n) != 0)
        return;
    if (n == 0 && !allow_empty && pr->state == PR_REPLICATE)
        return;
    raft_msg_t *m = raft_msg_new(r, RAFT_MSG_APPEND, pr->id);
    if (m == NULL) {
        raft_entries_free(ents, n);
        return;
    }
    m->index = prev;
    m->log_term = prev_term;
    m->commit = r->commit;
    m->ctx = r->round;
    raft_note_round_sent(r, pr);
    m->entries = ents;
    m->n_entries = (uint32_t)n;
    if (pr->state == PR_PROBE) {
        pr->probe_sent = true;
    } else if (n > 0) {
        uint64_t sent_last = ents[n - 1].index;
        pr->next = sent_last + 1;
        uint32_t cap = r->cfg.max_inflight;
        pr->inflight[(pr->in_head + pr->in_count) % cap] = sent_last;
        pr->in_count++;
    }
}

void raft_bcast_append(raft_t *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        raft_send_append(r, &r->prs[i], true);
}

/* Sessions: a leader renews sessions (its own and, by its echoes, its members') only with a
 * valid lease and once it has committed an entry of its own term: its commit index then
 * covers everything any earlier leader committed, and a renewal carries it. */
static bool session_renewing(const raft_t *r)
{
    if (r->cfg.session_ticks == 0 || !raft_lease_valid(r))
        return false;
    if (MUTATED(r, RAFT_MUT_SESSION_STALE))
        return true;
    uint64_t term = 0;
    return raft_log_term(&r->log, r->commit, &term) == 0 && term == r->term;
}

/* Sessions: may this heartbeat renew member pr? The heartbeat carries the commit index the
 * member holds (min(match, commit)), which the member must have applied before it acts on its
 * session; so that index must cover every committed command that may have moved the member's
 * elections away from it. Those of earlier terms precede our term-start entry; those of our
 * term were proposed with raft_session_hold(). Hence: renew it only while it holds the
 * term-start entry and each index it was held at, committed. A member that merely lacks the
 * newest entries (slightly slower than the others under steady writes) is renewed, with the
 * commit index it holds. */
static bool session_echo_ok(const raft_t *r, const struct progress *pr)
{
    if (!session_renewing(r))
        return false;
    if (MUTATED(r, RAFT_MUT_SESSION_STALE))
        return true;
    uint64_t need = pr->session_hold > r->term_start ? pr->session_hold : r->term_start;
    return pr->match >= need && r->commit >= need;
}

/* Sessions: while renewing, a leader hears itself at every tick, and its own session runs
 * for S from the start of the newest round a quorum echoed — not from now. Each of that
 * quorum heard us after that start, and a later leader learns from its voters (one of them is
 * in that quorum) when they last heard a leader: it can then bound our session's end without
 * the lease's length added (raft_session_contact in election.c). */
static void session_renew_self(raft_t *r)
{
    if (!session_renewing(r))
        return;
    struct progress *self = raft_progress_find(r, r->id);
    /* A leader that has not yet renewed itself in its term (no entry of it committed) can find
     * its own session over and move its elections away, holding itself at that move as any
     * member: no renewal of its own before the move is committed, or its own workloads would
     * run on into the successor's (simulator seed 271533901941400). */
    if (self != NULL && self->session_hold > r->commit && !MUTATED(r, RAFT_MUT_SESSION_NO_HOLD))
        return;
    if (self != NULL && !MUTATED(r, RAFT_MUT_SESSION_SELF_UNHEARD))
        self->session_heard = r->now;
    uint64_t from = r->quorum_round_tick;
    if (MUTATED(r, RAFT_MUT_SESSION_SELF_NOW))
        from = r->now;
    if (from + r->cfg.session_ticks > r->session_until)
        r->session_until = from + r->cfg.session_ticks;
    if (r->commit > r->session_index)
        r->session_index = r->commit;
}

/* Sessions: a member's stamp heard while our lease is valid. */
static bool heartbeat_to(raft_t *r, struct progress *pr);

static void session_heard(raft_t *r, struct progress *pr, const raft_msg_t *m)
{
    if (r->cfg.session_ticks == 0 || m->hint == 0)
        return;
    if (!raft_lease_valid(r))
        return;
    bool first = pr->session_stamp == 0;
    pr->session_heard = r->now;
    pr->session_stamp = m->hint;
    pr->session_nonce = m->log_term;
    /* The first stamp heard in this term is echoed at once, not at the next heartbeat: after
     * a leader change the members' sessions are renewed as early as they can be. */
    if (first && session_echo_ok(r, pr))
        heartbeat_to(r, pr);
}

/* One heartbeat of the current round to pr. False when out of memory. */
static bool heartbeat_to(raft_t *r, struct progress *pr)
{
    raft_msg_t *m = raft_msg_new(r, RAFT_MSG_HEARTBEAT, pr->id);
    if (m == NULL)
        return false;
    /* Never tell a follower to commit past what it is known to hold (etcd). */
    m->commit = pr->match < r->commit ? pr->match : r->commit;
    m->ctx = r->round;
    raft_note_round_sent(r, pr);
    if (session_echo_ok(r, pr)) {
        m->hint = pr->session_stamp; /* sessions: "I heard you, with a valid lease" */
        m->log_term = pr->session_nonce;
    }
    return true;
}

/* raft_set_rotation: may the round about to start go to one of the two followers of a group
 * of three voters? While quiet, every follower echoed the last round it was sent; each with
 * us is a quorum. Not in larger groups: there the followers' last contacts a round apart
 * could let two of them stand at the same moment and split the vote (tick_election). */
static bool rotation_ok(const raft_t *r)
{
    if (!r->rotate || !raft_quiet(r))
        return false;
    uint32_t followers = 0;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        if (!r->prs[i].voter)
            return false;
        followers += r->prs[i].id != r->id;
    }
    return followers == 2 && raft_quorum_of(&r->conf) == 2;
}

void raft_bcast_heartbeat(raft_t *r)
{
    bool rotate = rotation_ok(r);
    raft_start_round(r);
    r->rounds_in_turn += rotate;
    uint32_t j = 0;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (pr->id == r->id)
            continue;
        /* In turn: the followers at even places one round, those at odd places the next. */
        if (rotate && (j++ + r->round) % 2 != 0)
            continue;
        if (!heartbeat_to(r, pr))
            return;
    }
    raft_update_lease_and_reads(r);
    session_renew_self(r);
}

/* ---- leader: commit ---------------------------------------------------------------------- */

void raft_commit_to(raft_t *r, uint64_t index)
{
    if (index <= r->commit)
        return;
    /* Raft §5.3: nothing beyond the log's end can be known committed. */
    ELECTD_CHECK(index <= raft_log_last_index(&r->log));
    uint64_t old = r->commit;
    r->commit = index;
    raft_conf_apply_committed(r, old, index);
}

/* Raft §5.3/§5.4.2: the highest index a quorum of voters holds is committed, but only by
 * counting when that entry is of the current term. */
bool raft_maybe_commit(raft_t *r)
{
    uint64_t match[RAFT_MAX_MEMBERS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].voter)
            match[n++] = r->prs[i].match;
    uint32_t q = raft_quorum_of(&r->conf);
    if (n < q)
        return false;
    uint64_t idx = raft_quorum_value(match, n, q);
    if (idx <= r->commit)
        return false;
    if (raft_log_term_or0(&r->log, idx) != r->term && !MUTATED(r, RAFT_MUT_COMMIT_OLD_TERM))
        return false;
    raft_commit_to(r, idx);
    return true;
}

/* ---- leader: receiving ------------------------------------------------------------------- */

static void maybe_send_timeout_now(raft_t *r, struct progress *pr)
{
    if (r->transfer_target == pr->id && !r->transfer_sent &&
        pr->match == raft_log_last_index(&r->log))
        raft_send_timeout_now(r, pr->id);
}

/* Dissertation §3.5 fast back-off: the follower said which term conflicts at index and
 * where that term starts in its log; skip the whole term in one round trip. */
static uint64_t next_after_reject(const raft_t *r, const raft_msg_t *m)
{
    uint64_t hint = m->hint, hint_term = m->log_term;
    if (hint_term == 0)
        return hint;
    uint64_t j = m->index < raft_log_last_index(&r->log) ? m->index : raft_log_last_index(&r->log);
    for (; j >= r->log.offset && j > 0; j--) {
        uint64_t t = raft_log_term_or0(&r->log, j);
        if (t == hint_term)
            return j + 1;
        if (t < hint_term)
            break;
    }
    return hint;
}

/* The follower holds less than it once acknowledged — said in a reply to a message sent
 * after that acknowledgement (a later round), so not a reordered old reply: its data
 * directory was wiped (or restored from an old backup). Raft assumes acknowledged entries are
 * durable; the best this leader can do is stop assuming it and catch the node up again, by snapshot
 * if need be. Commit never moves back. */
static void forget_lost_entries(struct progress *pr, uint64_t last)
{
    pr->match = last;
    pr->next = last + 1;
    pr->state = PR_PROBE;
    pr->probe_sent = false;
    inflight_reset(pr);
}

static int on_append_resp(raft_t *r, struct progress *pr, const raft_msg_t *m)
{
    if (m->flags & RAFT_FLAG_REJECT) {
        if (pr->state == PR_REPLICATE && m->index <= pr->match)
            return 0; /* stale */
        if (pr->state == PR_PROBE && m->index != pr->next - 1)
            return 0; /* answers an older probe */
        if (pr->state == PR_SNAPSHOT)
            return 0;
        if (m->log_term == 0 && m->hint <= pr->match && m->ctx > pr->match_round)
            forget_lost_entries(pr, m->hint - 1);
        uint64_t next = next_after_reject(r, m);
        if (next > m->index)
            next = m->index; /* always move back at least one */
        if (next < pr->match + 1)
            next = pr->match + 1;
        pr->next = next;
        pr->state = PR_PROBE;
        pr->probe_sent = false;
        inflight_reset(pr);
        raft_send_append(r, pr, true);
        return 0;
    }
    if (m->index > raft_log_last_index(&r->log))
        return 0; /* acknowledges entries we never had: not from our term's log */
    inflight_free_to(pr, m->index, r->cfg.max_inflight);
    if (m->index > pr->match) {
        pr->match = m->index;
        ELECTD_CHECK(pr->match <= raft_log_last_index(&r->log));
        pr->match_round = m->ctx;
        if (pr->next <= pr->match)
            pr->next = pr->match + 1;
        uint64_t id = pr->id;
        bool renewing = session_renewing(r);
        if (raft_maybe_commit(r)) {
            /* A committed configuration change may have rebuilt the progress table, or
             * removed this leader altogether: pr is not to be trusted any more. */
            if (r->role != RAFT_LEADER || (pr = raft_progress_find(r, id)) == NULL)
                return 0;
            raft_bcast_append(r);
            /* Sessions: renewals may start now (the term-start entry committed); a heartbeat
             * at once collects the members' stamps for the next one to echo, so a leader
             * change costs the members' sessions as little time as it can. */
            if (!renewing && session_renewing(r))
                raft_bcast_heartbeat(r);
        }
    }
    if (pr->state == PR_PROBE && m->index + 1 >= pr->next) {
        pr->state = PR_REPLICATE;
        pr->next = m->index + 1;
        pr->probe_sent = false;
        inflight_reset(pr);
    }
    maybe_send_timeout_now(r, pr);
    /* Keep the pipeline full: send until the window closes or nothing is left. */
    for (uint32_t i = 0; i < r->cfg.max_inflight && pr->next <= raft_log_last_index(&r->log); i++) {
        uint64_t before = pr->next;
        raft_send_append(r, pr, false);
        if (pr->next == before)
            break;
    }
    return 0;
}

static int on_snapshot_resp(raft_t *r, struct progress *pr, const raft_msg_t *m)
{
    if (pr->state != PR_SNAPSHOT || m->index != pr->snap_index)
        return 0;
    if (m->flags & RAFT_FLAG_REJECT) {
        pr->snap_offset = m->hint <= r->snap.size ? m->hint : 0;
        send_snapshot_chunk(r, pr);
        return 0;
    }
    if (m->hint >= r->snap.size) {
        /* Installed (or it already had everything up to there). */
        if (pr->snap_index > pr->match) {
            pr->match = pr->snap_index;
            pr->match_round = m->ctx;
        }
        pr->next = pr->match + 1;
        pr->state = PR_PROBE;
        pr->probe_sent = false;
        raft_send_append(r, pr, true);
        return 0;
    }
    if (m->hint > pr->snap_offset) {
        pr->snap_offset = m->hint;
        send_snapshot_chunk(r, pr);
    }
    return 0;
}

int raft_step_leader(raft_t *r, const raft_msg_t *m)
{
    struct progress *pr = raft_progress_find(r, m->from);
    if (pr == NULL) {
        r->dropped++;
        return 0;
    }
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_SNAPSHOT_RESP:
        break;
    case RAFT_MSG_PROPOSE: {
        /* A member's forwarded command: appended like our own (refused while transferring;
         * the member retries). */
        const raft_entry_t *e = &m->entries[0];
        int rv = raft_propose(r, e->data, e->len, NULL);
        if (rv != 0 && rv != RAFT_ETRANSFERRING && rv != RAFT_ETOOBIG)
            return rv;
        return 0;
    }
    default:
        r->dropped++; /* a second leader in our term cannot exist; stale or forged */
        return 0;
    }
    pr->recent_active = true;
    pr->last_contact = r->now;
    if (m->ctx > pr->acked_round && m->ctx <= r->round) {
        pr->acked_round = m->ctx;
        raft_update_lease_and_reads(r);
    }
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP:
        return on_append_resp(r, pr, m);
    case RAFT_MSG_HEARTBEAT_RESP:
        session_heard(r, pr, m);
        if (m->index < pr->match && pr->state != PR_SNAPSHOT && m->ctx > pr->match_round)
            forget_lost_entries(pr, m->index);
        pr->probe_sent = false;
        /* Appends may have been lost with the window full: let one more through, so the
         * follower's reject to the gap it sees sends us back to probing (etcd). */
        if (pr->state == PR_REPLICATE && pr->in_count >= r->cfg.max_inflight) {
            pr->in_head = (pr->in_head + 1) % r->cfg.max_inflight;
            pr->in_count--;
        }
        if (pr->match < raft_log_last_index(&r->log))
            raft_send_append(r, pr, true);
        maybe_send_timeout_now(r, pr);
        return 0;
    default:
        return on_snapshot_resp(r, pr, m);
    }
}

void raft_tick_leader(raft_t *r)
{
    r->election_elapsed++;
    r->heartbeat_elapsed++;
    if (r->transfer_target != 0 && ++r->transfer_elapsed >= r->cfg.election_ticks) {
        /* The target did not take over in time. This leader gave its lease up for the rest
         * of the term, so it steps down and lets an ordinary election run. */
        raft_become_follower(r, r->term, 0);
        return;
    }
    if (r->election_elapsed >= r->cfg.election_ticks &&
        r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->election_elapsed = 0;
        /* CheckQuorum: a leader that has not heard from a quorum for an election timeout
         * steps down rather than keep a cluster that has moved on waiting for it. Checked at
         * the first heartbeat due after that timeout (at most a heartbeat interval later), so
         * that an idle leader wakes for its rounds alone. */
        uint32_t active = 0;
        for (uint32_t i = 0; i < r->n_prs; i++) {
            struct progress *pr = &r->prs[i];
            if (pr->voter && (pr->id == r->id || pr->recent_active))
                active++;
            if (pr->id != r->id)
                pr->recent_active = false;
        }
        if (active < raft_quorum_of(&r->conf)) {
            raft_become_follower(r, r->term, 0);
            return;
        }
    }
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (pr->state == PR_SNAPSHOT && ++pr->snap_elapsed >= r->cfg.election_ticks)
            send_snapshot_chunk(r, pr); /* lost chunk or reply, or a read error: retry */
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        raft_bcast_heartbeat(r);
    }
    session_renew_self(r);
}

int raft_forward(raft_t *r, const void *data, size_t len, uint64_t *index, bool *forwarded)
{
    *forwarded = false;
    if (index != NULL)
        *index = 0;
    if (r->role == RAFT_LEADER)
        return raft_propose(r, data, len, index);
    if (r->leader == 0 || r->leader == r->id)
        return RAFT_ENOTLEADER;
    if (len > RAFT_ENTRY_MAX)
        return RAFT_ETOOBIG;
    if (len > 0 && data == NULL)
        return RAFT_EINVAL;
    raft_entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return RAFT_ENOMEM;
    *e = (raft_entry_t){
        .term = r->term, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = (uint32_t)len};
    e->data = len ? raft_entry_data_new(data, (uint32_t)len) : NULL;
    raft_msg_t *m = len && e->data == NULL ? NULL : raft_msg_new(r, RAFT_MSG_PROPOSE, r->leader);
    if (m == NULL) {
        raft_entries_free(e, 1);
        return RAFT_ENOMEM;
    }
    m->entries = e;
    m->n_entries = 1;
    *forwarded = true;
    return 0;
}

void raft_session_hold(raft_t *r, uint64_t id, uint64_t index)
{
    if (r->role != RAFT_LEADER || MUTATED(r, RAFT_MUT_SESSION_NO_HOLD))
        return;
    struct progress *pr = raft_progress_find(r, id);
    if (pr != NULL && index > pr->session_hold)
        pr->session_hold = index;
}

int raft_propose(raft_t *r, const void *data, size_t len, uint64_t *index)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transfer_target != 0)
        return RAFT_ETRANSFERRING;
    if (len > RAFT_ENTRY_MAX)
        return RAFT_ETOOBIG;
    if (len > 0 && data == NULL)
        return RAFT_EINVAL;
    raft_entry_t e = {.term = r->term,
                      .index = raft_log_last_index(&r->log) + 1,
                      .type = RAFT_ENTRY_NORMAL,
                      .len = (uint32_t)len};
    e.data = len ? raft_entry_data_new(data, (uint32_t)len) : NULL;
    if (len && e.data == NULL)
        return RAFT_ENOMEM;
    int rv = raft_log_append(&r->log, &e);
    raft_entry_data_unref(e.data);
    if (rv != 0)
        return rv;
    r->need_flush = true; /* batched: one append per follower per ready batch */
    if (index != NULL)
        *index = e.index;
    return 0;
}

/* ---- follower -------------------------------------------------------------------------- */

static raft_msg_t *reply(raft_t *r, const raft_msg_t *m, uint8_t type)
{
    raft_msg_t *resp = raft_msg_new(r, type, m->from);
    if (resp != NULL)
        resp->ctx = m->ctx;
    return resp;
}

static int handle_append(raft_t *r, const raft_msg_t *m)
{
    struct raft_log *l = &r->log;
    if (m->index < r->commit) {
        /* Everything up to commit is already ours and matches the leader's. */
        raft_msg_t *resp = reply(r, m, RAFT_MSG_APPEND_RESP);
        if (resp == NULL)
            return RAFT_ENOMEM;
        resp->index = r->commit;
        return 0;
    }
    uint64_t t = 0;
    if (raft_log_term(l, m->index, &t) != 0 || t != m->log_term) {
        /* Raft §5.3 consistency check failed: say where our log could match. */
        uint64_t hint, hint_term = 0;
        uint64_t last = raft_log_last_index(l);
        if (m->index > last) {
            hint = last + 1;
        } else {
            hint_term = t;
            hint = m->index;
            while (hint - 1 > l->prev_index && raft_log_term_or0(l, hint - 1) == hint_term)
                hint--;
            if (hint <= r->commit)
                hint = r->commit + 1;
        }
        raft_msg_t *resp = reply(r, m, RAFT_MSG_APPEND_RESP);
        if (resp == NULL)
            return RAFT_ENOMEM;
        resp->flags |= RAFT_FLAG_REJECT;
        resp->index = m->index;
        resp->hint = hint;
        resp->log_term = hint_term;
        return 0;
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry_t *e = &m->entries[i];
        if (e->index <= raft_log_last_index(l)) {
            if (raft_log_term_or0(l, e->index) == e->term)
                continue; /* already have it (a duplicate or reordered append) */
            if (e->index <= r->commit) {
                /* Would rewrite a committed entry: only a broken or forged leader asks
                 * that. Refuse the whole message. */
                r->dropped++;
                return 0;
            }
            raft_log_truncate(l, e->index);
        }
        raft_entry_t copy = *e;
        copy.data = e->len ? raft_entry_data_new(e->data, e->len) : NULL;
        if (e->len && copy.data == NULL)
            return RAFT_ENOMEM;
        int rv = raft_log_append(l, &copy);
        raft_entry_data_unref(copy.data);
        if (rv != 0)
            return rv;
    }
    uint64_t last_new = m->index + m->n_entries;
    raft_commit_to(r, m->commit < last_new ? m->commit : last_new);
    raft_msg_t *resp = reply(r, m, RAFT_MSG_APPEND_RESP);
    if (resp == NULL)
        return RAFT_ENOMEM;
    resp->index = last_new;
    return 0;
}

static int handle_heartbeat(raft_t *r, const raft_msg_t *m)
{
    uint64_t last = raft_log_last_index(&r->log);
    raft_commit_to(r, m->commit < last ? m->commit : last);
    raft_msg_t *resp = reply(r, m, RAFT_MSG_HEARTBEAT_RESP);
    if (resp == NULL)
        return RAFT_ENOMEM;
    resp->index = last; /* lets the leader notice a follower that lost its log */
    if (r->cfg.session_ticks != 0) {
        /* Sessions: our stamp out; the leader's echo of an earlier one renews us. */
        resp->hint = r->now + 1;
        resp->log_term = r->session_nonce;
        uint64_t stamp = m->hint;
        /* Only with everything the leader had committed: the renewal stands for it. */
        bool caught_up = r->commit >= m->commit || MUTATED(r, RAFT_MUT_SESSION_STALE);
        if (stamp != 0 && m->log_term == r->session_nonce && stamp - 1 <= r->now && caught_up &&
            stamp - 1 + r->cfg.session_ticks > r->session_until) {
            r->session_until = stamp - 1 + r->cfg.session_ticks;
            if (m->commit > r->session_index)
                r->session_index = m->commit;
        }
    }
    return 0;
}

static bool meta_matches(const raft_snapshot_meta_t *a, const raft_msg_t *m)
{
    return a->index == m->index && a->term == m->log_term && a->size == m->snap_size;
}

static int handle_snapshot(raft_t *r, const raft_msg_t *m)
{
    raft_msg_t *resp = reply(r, m, RAFT_MSG_SNAPSHOT_RESP);
    if (resp == NULL)
        return RAFT_ENOMEM;
    resp->index = m->index;
    if (m->index <= r->commit) {
        resp->hint = m->snap_size; /* we already hold all of it */
        return 0;
    }
    if (m->index <= raft_log_last_index(&r->log) &&
        raft_log_term_or0(&r->log, m->index) == m->log_term) {
        /* Raft Figure 13, rule 6: our log already holds the snapshot's last entry, so it
         * holds everything before it too; keep what follows (we may have acknowledged it). */
        raft_commit_to(r, m->index);
        resp->hint = m->snap_size;
        return 0;
    }
    uint64_t offset = m->hint;
    bool last = offset + m->len == m->snap_size;
    bool ok = m->conf != NULL && m->conf->n > 0 && offset <= m->snap_size &&
              m->len <= m->snap_size - offset && last == !!(m->flags & RAFT_FLAG_LAST);
    if (ok && offset == 0 && !r->chunk_pending && !r->out_chunk) {
        r->recv_active = true;
        r->recv_meta.index = m->index;
        r->recv_meta.term = m->log_term;
        r->recv_meta.size = m->snap_size;
        r->recv_meta.conf = *m->conf;
        r->recv_offset = 0;
    }
    if (!ok || !r->recv_active || !meta_matches(&r->recv_meta, m) || offset != r->recv_offset ||
        r->chunk_pending || r->out_chunk) {
        resp->flags |= RAFT_FLAG_REJECT;
        resp->hint = r->recv_active && meta_matches(&r->recv_meta, m) ? r->recv_offset : 0;
        return 0;
    }
    uint8_t *buf = malloc(m->len ? m->len : 1);
    if (buf == NULL) {
        resp->flags |= RAFT_FLAG_REJECT;
        resp->hint = r->recv_offset;
        return 0;
    }
    if (m->len)
        memcpy(buf, m->data, m->len);
    r->chunk_buf = buf;
    r->chunk.meta = r->recv_meta;
    r->chunk.offset = offset;
    r->chunk.data = buf;
    r->chunk.len = m->len;
    r->chunk.last = last;
    r->chunk_pending = true;
    r->recv_offset += m->len;
    resp->hint = r->recv_offset;
    if (last) {
        /* Install in the core now; the driver installs durably before anything of this
         * batch leaves (the reply included). */
        const raft_snapshot_meta_t *meta = &r->recv_meta;
        raft_log_reset(&r->log, meta->index, meta->term);
        r->commit = meta->index;
        if (r->applied < meta->index)
            r->applied = meta->index;
        r->conf = meta->conf;
        r->conf_index = meta->index;
        r->snap = *meta;
        r->recv_active = false;
    }
    return 0;
}

int raft_step_follower(raft_t *r, const raft_msg_t *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        r->election_elapsed = 0;
        raft_follow_timeout(r, m->from);
        r->leader = m->from;
        raft_note_contact(r, m->from);
        if (m->type == RAFT_MSG_APPEND)
            return handle_append(r, m);
        if (m->type == RAFT_MSG_HEARTBEAT)
            return handle_heartbeat(r, m);
        return handle_snapshot(r, m);
    case RAFT_MSG_TIMEOUT_NOW:
        /* Only our leader, in our term, may hand leadership over (§3.10). */
        if (m->from != r->leader || !raft_may_campaign(r)) {
            r->dropped++;
            return 0;
        }
        raft_timeout_now(r, (m->flags & RAFT_FLAG_STOPPED) != 0);
        return 0;
    default:
        r->dropped++; /* responses to a role we no longer have */
        return 0;
    }
}
