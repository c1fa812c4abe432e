/* raft.c — the node's life cycle, the one entry point for messages (term rules and input
 * validation), the ready batch, and the read-only queries. */
#include "raft_int.h"

/* splitmix64: small, seedable, and good enough for timeout jitter. */
uint64_t raft_prng_next(raft_t *r)
{
    uint64_t z = (r->prng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t raft_lease_ticks(const raft_config_t *cfg)
{
    uint64_t d = cfg->max_drift_ppm;
    if (d >= 1000000)
        return 0;
    uint64_t e = cfg->election_ticks;
    uint64_t lease = e * (1000000 - d) / (1000000 + d);
    return lease > 2 ? (uint32_t)(lease - 2) : 0;
}

uint32_t raft_session_expire_ticks(const raft_config_t *cfg)
{
    uint64_t d = cfg->max_drift_ppm, s = cfg->session_ticks;
    if (s == 0 || d >= 1000000)
        return 0;
    uint64_t x = (s * (1000000 + d) + (1000000 - d) - 1) / (1000000 - d); /* ceil */
    return x + 2 > UINT32_MAX ? UINT32_MAX : (uint32_t)(x + 2);
}

/* splitmix64: a nonce from the seed without drawing from the timeout PRNG (replays of
 * recorded simulator seeds keep their timeouts). Never 0. */
static uint64_t session_nonce_of(const raft_config_t *cfg)
{
    uint64_t z = cfg->seed ^ (cfg->id * 0xbf58476d1ce4e5b9ull) ^ 0x5e55105e55105e55ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z ? z : 1;
}

raft_msg_t *raft_msg_new(raft_t *r, uint8_t type, uint64_t to)
{
    if (BASE_VEC_RESERVE(r->msgs, r->cap_msgs, r->n_msgs + 1, 16) != 0)
        return NULL;
    raft_msg_t *m = &r->msgs[r->n_msgs++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

/* Messages the core built own their payloads (see replication.c). */
void raft_msg_free_payload(raft_msg_t *m)
{
    raft_entries_free(m->entries, m->n_entries);
    free((void *)m->data);
    free(m->conf);
}

static void msgs_free(raft_msg_t *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        raft_msg_free_payload(&msgs[i]);
    free(msgs);
}

static int validate_config(const raft_config_t *c)
{
    if (c->id == 0 || c->election_ticks < 2 || c->heartbeat_ticks == 0 ||
        c->heartbeat_ticks >= c->election_ticks || c->max_drift_ppm >= 500000)
        return RAFT_EINVAL;
    return 0;
}

int raft_open(const raft_config_t *cfg, const raft_boot_t *boot, const raft_storage_t *storage,
              raft_t **out)
{
    int rv = validate_config(cfg);
    if (rv != 0)
        return rv;
    raft_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return RAFT_ENOMEM;
    r->cfg = *cfg;
    if (r->cfg.max_inflight == 0)
        r->cfg.max_inflight = 64;
    if (r->cfg.max_msg_bytes == 0)
        r->cfg.max_msg_bytes = 256 * 1024;
    if (r->cfg.snapshot_chunk_bytes == 0)
        r->cfg.snapshot_chunk_bytes = 256 * 1024;
    if (storage != NULL)
        r->storage = *storage;
    r->id = cfg->id;
    r->lease_ticks = raft_lease_ticks(cfg);
    r->session_expire_ticks = raft_session_expire_ticks(cfg);
    r->session_nonce = session_nonce_of(cfg);
    r->prng = cfg->seed ^ (cfg->id * 0x9e3779b97f4a7c15ull);

    const raft_snapshot_meta_t *snap = &boot->snap;
    raft_log_open(&r->log, snap->index, snap->term);
    r->snap = *snap;
    for (size_t i = 0; i < boot->n_entries; i++) {
        raft_entry_t e = boot->entries[i];
        if (e.index != snap->index + 1 + i || e.type > RAFT_ENTRY_CONF || e.term == 0 ||
            e.len > RAFT_ENTRY_MAX || (e.len && e.data == NULL) ||
            e.term < raft_log_last_term(&r->log)) {
            rv = RAFT_EINVAL;
            goto fail;
        }
        e.data = e.len ? raft_entry_data_new(boot->entries[i].data, e.len) : NULL;
        if (e.len && e.data == NULL) {
            rv = RAFT_ENOMEM;
            goto fail;
        }
        rv = raft_log_append(&r->log, &e);
        raft_entry_data_unref(e.data);
        if (rv != 0)
            goto fail;
    }
    r->log.unstable = raft_log_last_index(&r->log) + 1;

    const raft_hard_state_t *hs = &boot->hs;
    uint64_t commit = hs->commit < snap->index ? snap->index : hs->commit;
    if (commit > raft_log_last_index(&r->log) || hs->term < raft_log_last_term(&r->log)) {
        rv = RAFT_EINVAL;
        goto fail;
    }
    r->term = hs->term;
    r->vote = hs->vote;

    bool fresh = snap->index == 0 && boot->n_entries == 0;
    if (snap->index > 0) {
        r->conf = snap->conf;
    } else if (fresh && boot->conf.n > 0) {
        if (raft_conf_find(&boot->conf, r->id) == NULL || boot->conf.n > RAFT_MAX_MEMBERS) {
            rv = RAFT_EINVAL;
            goto fail;
        }
        r->conf = boot->conf;
    } else {
        r->conf = boot->conf;
    }
    r->conf_index = snap->index;
    r->role = RAFT_FOLLOWER;
    raft_commit_to(r, commit); /* replays the configuration changes in the committed log */
    r->applied = boot->applied > snap->index ? boot->applied : snap->index;
    if (r->applied > r->commit)
        r->applied = r->commit;

    raft_become_follower(r, r->term, 0);
    r->last_hs = (raft_hard_state_t){.term = r->term, .vote = r->vote, .commit = r->commit};
    r->last_role = r->role;
    r->last_term = r->term;
    *out = r;
    return 0;
fail:
    raft_log_close(&r->log);
    free(r);
    return rv;
}

void raft_close(raft_t *r)
{
    if (r == NULL)
        return;
    msgs_free(r->msgs, r->n_msgs);
    msgs_free(r->out_msgs, r->out_n_msgs);
    raft_entries_free(r->out_entries, r->out_n_entries);
    raft_entries_free(r->out_committed, r->out_n_committed);
    free(r->out_reads);
    free(r->done_reads);
    free(r->reads);
    free(r->chunk_buf);
    raft_progress_close_all(r);
    raft_log_close(&r->log);
    free(r);
}

int raft_tick(raft_t *r)
{
    r->now++;
    r->tick_fn(r);
    return 0;
}

/* The tick at which a counter that raft_tick() advances by one reaches limit. */
static uint64_t due_at(const raft_t *r, uint64_t elapsed, uint64_t limit)
{
    return r->now + (elapsed < limit ? limit - elapsed : 1);
}

/* Mirrors the tick functions: tick_election (election.c) acts when election_elapsed reaches
 * randomized_timeout, a follower at released_at (a released lease's stagger) and a
 * pre-candidate at every tick of its PreVote's retries;
 * raft_tick_leader (replication.c) at a heartbeat (CheckQuorum too), when a transfer or a
 * snapshot chunk times out. Its other work at every tick (the leader's own
 * session) depends on the time alone and is redone exactly by the skipped ticks. Earlier than
 * needed only costs a wake-up; later would delay the core, which the simulator checks
 * (sim.c, do_tick). */
uint64_t raft_tick_due(const raft_t *r)
{
    if (r->role != RAFT_LEADER) {
        uint64_t due = due_at(r, r->election_elapsed, r->randomized_timeout);
        if (r->released_at != 0 && r->role == RAFT_FOLLOWER) {
            uint64_t at = r->released_at > r->now ? r->released_at : r->now + 1;
            due = at < due ? at : due;
        }
        if (raft_prevote_retrying(r, r->election_elapsed + 1))
            due = r->now + 1;
        return due;
    }
    uint64_t due = due_at(r, r->heartbeat_elapsed, r->cfg.heartbeat_ticks), at;
    if (r->transfer_target != 0) {
        at = due_at(r, r->transfer_elapsed, r->cfg.election_ticks);
        due = at < due ? at : due;
    }
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].state == PR_SNAPSHOT) {
            at = due_at(r, r->prs[i].snap_elapsed, r->cfg.election_ticks);
            due = at < due ? at : due;
        }
    return due;
}

/* Untrusted input: the codec checked the frame; this checks that the message makes sense
 * as Raft (a peer may be buggy, or not a peer at all). */
static bool msg_valid(const raft_t *r, const raft_msg_t *m)
{
    if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX || m->from == 0 || m->from == r->id ||
        m->term == 0 || (m->flags & ~RAFT_FLAGS_ALL))
        return false;
    if (m->type == RAFT_MSG_PROPOSE)
        return m->n_entries == 1 && m->entries != NULL && m->index == 0 &&
               m->entries[0].index == 1 && m->entries[0].type == RAFT_ENTRY_NORMAL &&
               m->entries[0].len <= RAFT_ENTRY_MAX &&
               (m->entries[0].len == 0 || m->entries[0].data);
    if (m->n_entries > 0 &&
        (m->type != RAFT_MSG_APPEND || m->entries == NULL || m->n_entries > RAFT_MSG_ENTRIES_MAX))
        return false;
    uint64_t prev_term = m->log_term;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry_t *e = &m->entries[i];
        if (e->index != m->index + 1 + i || e->term > m->term || e->term < prev_term ||
            e->term == 0 || e->type > RAFT_ENTRY_CONF || e->len > RAFT_ENTRY_MAX ||
            (e->len && e->data == NULL))
            return false;
        prev_term = e->term;
    }
    if (m->type == RAFT_MSG_SNAPSHOT &&
        (m->index == 0 || m->conf == NULL || m->conf->n == 0 || m->conf->n > RAFT_MAX_MEMBERS ||
         (m->len && m->data == NULL)))
        return false;
    return true;
}

int raft_step(raft_t *r, const raft_msg_t *m)
{
    if (m == NULL || m->to != r->id)
        return RAFT_EINVAL;
    if (!msg_valid(r, m)) {
        r->dropped++;
        return 0;
    }
    if (m->type == RAFT_MSG_RELEASED)
        return raft_step_released(r, m); /* about the current term only: no term rules */
    bool request = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
    bool from_leader =
        m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_SNAPSHOT;

    if (m->term > r->term) {
        if (request && raft_vote_refused_by_lease(r, m)) {
            /* Do not even adopt the term: a live leader must not be deposed by a node
             * that merely lost touch with it (dissertation §4.2.3). */
            r->dropped++;
            return 0;
        }
        if (m->type == RAFT_MSG_PREVOTE ||
            (m->type == RAFT_MSG_PREVOTE_RESP && !(m->flags & RAFT_FLAG_REJECT))) {
            /* A pre-vote is about a term nobody has entered yet. */
        } else {
            raft_become_follower(r, m->term, from_leader ? m->from : 0);
        }
    } else if (m->term < r->term) {
        if (from_leader) {
            /* A deposed leader that cannot hear the new one: tell it the term (etcd). */
            raft_msg_t *resp = raft_msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
            if (resp == NULL)
                return RAFT_ENOMEM;
            resp->flags |= RAFT_FLAG_REJECT;
        } else if (m->type == RAFT_MSG_PREVOTE) {
            raft_msg_t *resp = raft_msg_new(r, RAFT_MSG_PREVOTE_RESP, m->from);
            if (resp == NULL)
                return RAFT_ENOMEM;
            resp->flags |= RAFT_FLAG_REJECT;
        } else {
            r->dropped++;
        }
        return 0;
    }
    if (request)
        return raft_step_vote_request(r, m);
    return r->step_fn(r, m);
}

void raft_set_stamp(raft_t *r, uint64_t stamp)
{
    r->stamp = stamp;
}

/* Work the core postpones to batch it: one append per follower for all proposals since the
 * last batch, one heartbeat round for all reads since the last batch. */
static void flush(raft_t *r)
{
    if (r->role != RAFT_LEADER) {
        r->need_flush = r->need_round = false;
        return;
    }
    if (r->need_flush) {
        r->need_flush = false;
        raft_bcast_append(r);
    }
    if (r->need_round) {
        r->need_round = false;
        raft_bcast_heartbeat(r);
    }
}

static bool soft_changed(const raft_t *r)
{
    return r->role != r->last_role || r->leader != r->last_leader || r->term != r->last_term ||
           r->lease_until != r->last_lease || r->transfer_stopped != r->last_transfer_stopped;
}

static bool hs_changed(const raft_t *r)
{
    return r->term != r->last_hs.term || r->vote != r->last_hs.vote ||
           r->commit != r->last_hs.commit;
}

bool raft_has_ready(const raft_t *r)
{
    if (r->ready_out)
        return false;
    uint64_t last = raft_log_last_index(&r->log);
    uint64_t apply_hi = r->commit < last ? r->commit : last;
    return r->need_flush || r->need_round || r->n_msgs > 0 || hs_changed(r) ||
           r->log.unstable <= last || apply_hi > r->applied || r->chunk_pending ||
           r->n_done_reads > 0 || soft_changed(r);
}

int raft_ready_get(raft_t *r, raft_ready_t *rd)
{
    if (r->ready_out)
        return RAFT_EBUSY;
    flush(r);
    memset(rd, 0, sizeof(*rd));

    /* Allocate first, so that running out of memory changes nothing. */
    uint64_t last = raft_log_last_index(&r->log);
    raft_entry_t *ents = NULL, *committed = NULL;
    size_t n_ents = 0, n_committed = 0;
    if (r->log.unstable <= last &&
        raft_log_slice(&r->log, r->log.unstable, last, SIZE_MAX, &ents, &n_ents) != 0)
        return RAFT_ENOMEM;
    /* Apply only what is durable here by the end of this batch's persist step. */
    uint64_t stable = n_ents > 0 ? ents[n_ents - 1].index : r->log.unstable - 1;
    uint64_t apply_hi = r->commit < stable ? r->commit : stable;
    if (apply_hi > r->applied && raft_log_slice(&r->log, r->applied + 1, apply_hi, SIZE_MAX,
                                                &committed, &n_committed) != 0) {
        raft_entries_free(ents, n_ents);
        return RAFT_ENOMEM;
    }

    rd->hs = (raft_hard_state_t){.term = r->term, .vote = r->vote, .commit = r->commit};
    rd->hs_changed = hs_changed(r);
    r->last_hs = rd->hs;

    if (r->chunk_pending) {
        rd->chunk = &r->chunk;
        r->chunk_pending = false;
        r->out_chunk = true;
    }

    rd->entries = r->out_entries = ents;
    rd->n_entries = r->out_n_entries = n_ents;
    if (n_ents > 0)
        r->log.unstable = ents[n_ents - 1].index + 1;

    rd->msgs = r->out_msgs = r->msgs;
    rd->n_msgs = r->out_n_msgs = r->n_msgs;
    r->msgs = NULL;
    r->n_msgs = r->cap_msgs = 0;

    rd->committed = r->out_committed = committed;
    rd->n_committed = r->out_n_committed = n_committed;
    if (n_committed > 0)
        r->applied = committed[n_committed - 1].index;
    ELECTD_CHECK(r->applied <= r->commit);

    rd->reads = r->out_reads = r->done_reads;
    rd->n_reads = r->out_n_reads = r->n_done_reads;
    r->done_reads = NULL;
    r->n_done_reads = r->cap_done_reads = 0;

    rd->soft_changed = soft_changed(r);
    rd->role = r->last_role = r->role;
    rd->leader = r->last_leader = r->leader;
    rd->term = r->last_term = r->term;
    rd->lease_until_tick = r->last_lease = r->lease_until;
    rd->transfer_stopped = r->last_transfer_stopped = r->transfer_stopped;
    r->ready_out = true;
    return 0;
}

void raft_advance(raft_t *r)
{
    if (!r->ready_out)
        return;
    raft_entries_free(r->out_entries, r->out_n_entries);
    raft_entries_free(r->out_committed, r->out_n_committed);
    msgs_free(r->out_msgs, r->out_n_msgs);
    free(r->out_reads);
    r->out_entries = r->out_committed = NULL;
    r->out_msgs = NULL;
    r->out_reads = NULL;
    r->out_n_entries = r->out_n_committed = r->out_n_msgs = r->out_n_reads = 0;
    if (r->out_chunk) {
        free(r->chunk_buf);
        r->chunk_buf = NULL;
        r->out_chunk = false;
    }
    r->ready_out = false;
    if (r->role == RAFT_LEADER) {
        /* The leader's own copy counts towards commit only once it is durable. */
        struct progress *self = raft_progress_find(r, r->id);
        uint64_t stable = r->log.unstable - 1;
        if (self != NULL && stable > self->match) {
            ELECTD_CHECK(stable <= raft_log_last_index(&r->log));
            self->match = stable;
            if (raft_maybe_commit(r))
                raft_bcast_append(r);
        }
    }
}

int raft_compact(raft_t *r, uint64_t index, uint64_t size, uint64_t keep)
{
    if (index > r->applied || index < r->snap.index || index == 0)
        return RAFT_EINVAL;
    uint64_t term = 0;
    if (raft_log_term(&r->log, index, &term) != 0)
        return RAFT_EINVAL;
    const raft_conf_t *conf;
    if (index >= r->conf_index)
        conf = &r->conf;
    else
        return RAFT_EBUSY; /* a configuration change committed after index: retry later */
    r->snap.index = index;
    r->snap.term = term;
    r->snap.size = size;
    r->snap.conf = *conf;
    uint64_t cut = index > keep ? index - keep : 0;
    if (cut > r->log.prev_index)
        raft_log_compact(&r->log, cut);
    return 0;
}

/* ---- queries ------------------------------------------------------------------------- */

uint64_t raft_id(const raft_t *r)
{
    return r->id;
}
raft_role_t raft_role(const raft_t *r)
{
    return r->role;
}
uint64_t raft_term(const raft_t *r)
{
    return r->term;
}
uint64_t raft_leader(const raft_t *r)
{
    return r->leader;
}
uint64_t raft_commit_index(const raft_t *r)
{
    return r->commit;
}
uint64_t raft_applied_index(const raft_t *r)
{
    return r->applied;
}
uint64_t raft_last_index(const raft_t *r)
{
    return raft_log_last_index(&r->log);
}
uint64_t raft_first_index(const raft_t *r)
{
    return r->log.offset;
}
uint64_t raft_now(const raft_t *r)
{
    return r->now;
}
uint64_t raft_lease_until(const raft_t *r)
{
    return r->role == RAFT_LEADER ? r->lease_until : 0;
}
uint64_t raft_dropped(const raft_t *r)
{
    return r->dropped;
}
bool raft_lease_valid(const raft_t *r)
{
    return r->role == RAFT_LEADER && r->now < r->lease_until;
}

bool raft_quiet(const raft_t *r)
{
    uint64_t last = raft_log_last_index(&r->log);
    if (r->role != RAFT_LEADER || r->transfer_target != 0 || r->n_reads != 0 || r->need_round ||
        r->need_flush || r->commit != last || r->round < 2)
        return false;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        const struct progress *pr = &r->prs[i];
        if (pr->id != r->id && (pr->state != PR_REPLICATE || pr->match != last ||
                                pr->in_count != 0 || pr->acked_round < raft_round_due(r, pr)))
            return false;
    }
    return true;
}

void raft_set_rotation(raft_t *r, bool on)
{
    r->rotate = on;
}

uint64_t raft_rounds_in_turn(const raft_t *r)
{
    return r->rounds_in_turn;
}

bool raft_round_sent_to(const raft_t *r, uint64_t id)
{
    const struct progress *pr = r->role == RAFT_LEADER ? raft_progress_find((raft_t *)r, id) : NULL;
    return pr == NULL || pr->sent_round == r->round;
}

uint64_t raft_session_until(const raft_t *r)
{
    return r->session_until;
}

uint64_t raft_session_index(const raft_t *r)
{
    return r->session_index;
}

uint64_t raft_session_expires(const raft_t *r, uint64_t id)
{
    if (r->cfg.session_ticks == 0 || r->role != RAFT_LEADER)
        return 0;
    const struct progress *pr = raft_progress_find((raft_t *)r, id);
    if (pr == NULL)
        return 0;
    uint64_t expire = r->session_expire_ticks;
    if (MUTATED(r, RAFT_MUT_SESSION_NO_DRIFT))
        expire = r->cfg.session_ticks;
    return pr->session_heard + expire;
}

bool raft_session_expired(const raft_t *r, uint64_t id)
{
    if (!raft_lease_valid(r))
        return false;
    uint64_t at = raft_session_expires(r, id);
    return at != 0 && r->now >= at;
}
const raft_conf_t *raft_conf(const raft_t *r)
{
    return &r->conf;
}
const raft_snapshot_meta_t *raft_snapshot(const raft_t *r)
{
    return &r->snap;
}
int raft_entry_term(const raft_t *r, uint64_t index, uint64_t *term)
{
    return raft_log_term(&r->log, index, term);
}
const raft_entry_t *raft_entry_at(const raft_t *r, uint64_t index)
{
    return raft_log_get(&r->log, index);
}

size_t raft_progress(const raft_t *r, raft_progress_t *out, size_t cap)
{
    if (r->role != RAFT_LEADER)
        return 0;
    size_t n = 0;
    for (uint32_t i = 0; i < r->n_prs && n < cap; i++) {
        const struct progress *pr = &r->prs[i];
        out[n++] =
            (raft_progress_t){.id = pr->id,
                              .match = pr->match,
                              .next = pr->next,
                              .last_contact_tick = pr->id == r->id ? r->now : pr->last_contact,
                              .voter = pr->voter,
                              .state = (uint8_t)pr->state};
    }
    return n;
}
