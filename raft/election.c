/* election.c — roles and how a node gets to be leader: randomized timeouts, PreVote,
 * votes, leader stickiness, the no-vote-after-restart rule, and leadership transfer. */
#include "raft_int.h"

/* Raft §5.2: randomized election timeouts in [E, E + jitter) make split votes rare. */
void raft_reset_randomized_timeout(raft_t *r)
{
    uint32_t e = r->cfg.election_ticks;
    uint32_t jitter = r->cfg.election_jitter_ticks ? r->cfg.election_jitter_ticks : e;
    r->randomized_timeout = e + (uint32_t)(raft_prng_next(r) % jitter);
}

uint8_t raft_priority(const raft_t *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->n_prios; i++)
        if (r->prios[i].id == id)
            return r->prios[i].priority;
    return RAFT_PRIORITY_DEFAULT;
}

int raft_set_priority(raft_t *r, uint64_t id, uint8_t priority)
{
    for (uint32_t i = 0; i < r->n_prios; i++)
        if (r->prios[i].id == id) {
            r->prios[i].priority = priority;
            return 0;
        }
    if (r->n_prios == RAFT_MAX_MEMBERS)
        return RAFT_EBUSY;
    r->prios[r->n_prios].id = id;
    r->prios[r->n_prios++].priority = priority;
    return 0;
}

/* Whether member a stands for election before member b: by priority, the highest first,
 * then by id. */
static bool stands_before(const raft_t *r, uint64_t a, uint64_t b)
{
    uint8_t pa = raft_priority(r, a), pb = raft_priority(r, b);
    return pa > pb || (pa == pb && a < b);
}

/* Our place among the voters other than `leader` (0 = the first to stand). */
static uint32_t rank_after(const raft_t *r, uint64_t leader)
{
    uint32_t rank = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        const raft_member_t *m = &r->conf.members[i];
        if (m->voter && m->id != leader && m->id != r->id && stands_before(r, m->id, r->id))
            rank++;
    }
    return rank;
}

/* config.election_stagger_ticks: the timeout of a follower that has just heard `leader`. The
 * 2 ticks cover a voter that heard the leader's last message a tick later than we did (it
 * refuses votes until E after its own contact). */
void raft_follow_timeout(raft_t *r, uint64_t leader)
{
    uint32_t stagger = r->cfg.election_stagger_ticks;
    if (stagger == 0)
        return;
    r->randomized_timeout = r->cfg.election_ticks + 2 + rank_after(r, leader) * stagger;
}

static void reset_term(raft_t *r, uint64_t term)
{
    ELECTD_CHECK(term >= r->term); /* Raft §5.1: a node's term only grows */
    if (r->term != term) {
        r->term = term;
        r->vote = 0;
    }
    r->leader = 0;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    raft_reset_randomized_timeout(r);
    r->n_granted = 0;
    r->n_rejected = 0;
    r->lease_until = 0;
    r->lease_after = 0;
    r->lease_disabled = false;
    r->transfer_target = 0;
    r->transfer_elapsed = 0;
    r->transfer_sent = false;
    r->need_round = false;
    r->transfer_stopped = false;
    r->quorum_round_tick = 0;
    r->released_at = 0;
}

void raft_note_contact(raft_t *r, uint64_t leader)
{
    r->leader_contact = r->now;
    r->contact_seen = true;
    r->contact_leader = leader;
    r->contact_term = r->term;
}

static bool contains(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* Asks every voter that has not answered this campaign yet for its (pre)vote in `term`. */
static void request_votes(raft_t *r, uint64_t term)
{
    bool pre = r->role == RAFT_PRECANDIDATE;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        const raft_member_t *m = &r->conf.members[i];
        if (!m->voter || m->id == r->id || contains(r->granted, r->n_granted, m->id) ||
            contains(r->rejected, r->n_rejected, m->id))
            continue;
        raft_msg_t *msg = raft_msg_new(r, pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, m->id);
        if (msg == NULL)
            return;
        msg->term = term;
        msg->index = raft_log_last_index(&r->log);
        msg->log_term = raft_log_last_term(&r->log);
        if (r->campaign_transfer)
            msg->flags |= RAFT_FLAG_TRANSFER | (r->campaign_stopped ? RAFT_FLAG_STOPPED : 0);
    }
}

static void tick_election(raft_t *r)
{
    if (r->released_at != 0 && r->now >= r->released_at && r->role == RAFT_FOLLOWER) {
        r->released_at = 0;
        if (raft_may_campaign(r))
            raft_timeout_now(r, true);
        return;
    }
    r->election_elapsed++;
    /* A voter refusing by lease drops a PreVote without an answer; one that heard the leader
     * later than we did (up to a round later while rounds go in turn, raft_set_rotation)
     * refuses a little longer: ask again at every tick for a heartbeat interval, not only
     * after another election timeout. PreVotes change nothing; a voter grants the first one
     * that comes after its refusal ends. */
    if (raft_prevote_retrying(r, r->election_elapsed))
        request_votes(r, r->term + 1);
    if (r->election_elapsed >= r->randomized_timeout) {
        r->election_elapsed = 0;
        /* A follower that heard a leader stands in rank (raft_follow_timeout); a campaign
         * after a failed one does not. */
        bool ranked = r->role == RAFT_FOLLOWER && r->contact_seen && r->cfg.election_stagger_ticks;
        if (raft_may_campaign(r)) {
            raft_campaign_start(r, true, false);
            r->ranked_campaign = ranked;
        }
    }
}

void raft_become_follower(raft_t *r, uint64_t term, uint64_t leader)
{
    bool was_leader = r->role == RAFT_LEADER;
    if (was_leader) {
        raft_fail_pending_reads(r);
        raft_progress_close_all(r);
        /* A deposed leader keeps refusing votes for a minimum election timeout, as if it
         * had just heard from itself: its workload may still be stopping. */
        raft_note_contact(r, r->id);
    }
    r->campaign_transfer = false;
    r->campaign_stopped = false;
    reset_term(r, term);
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->step_fn = raft_step_follower;
    r->tick_fn = tick_election;
}

static void become_precandidate(raft_t *r)
{
    /* PreVote (dissertation §9.6): neither the term nor the vote changes, so a node that
     * cannot win does not disrupt the cluster when it rejoins. */
    r->role = RAFT_PRECANDIDATE;
    r->leader = 0;
    r->ranked_campaign = false; /* tick_election says when it is */
    r->n_granted = 0;
    r->n_rejected = 0;
    r->step_fn = raft_step_candidate;
    r->tick_fn = tick_election;
}

static void become_candidate(raft_t *r)
{
    reset_term(r, r->term + 1);
    r->vote = r->id;
    r->role = RAFT_CANDIDATE;
    r->step_fn = raft_step_candidate;
    r->tick_fn = tick_election;
}

/* ---- sessions: how long the previous leader's own session can last -------------------
 * A leader renews its own session for S from the start of the newest round a quorum echoed
 * (replication.c). A granted vote says when its voter last heard a leader, which and in which
 * term (log_term 0: it cannot tell, e.g. restarted since). Let T be the highest term among the
 * granted votes of the quorum that elects us, M its leader and C the latest of the contacts,
 * mapped onto our clock as an upper bound. Every session M holds ends within S of its own
 * ticks after C:
 *  - a renewal by M as leader starts at a round a quorum echoed; that quorum and ours share a
 *    voter, who heard M then, and whose last contact is later: so the round started before C;
 *  - M led in no term above T with a quorum echoing a round (that quorum would share a voter
 *    with ours reporting a term above T), and no other leader in a term above T echoed M's
 *    stamps (echoes need a lease, so a quorum echoing a round, likewise);
 *  - a leader of a term below T echoed stamps M sent as a follower before it stood for T, so
 *    before it led in T, so before the contact of a voter that heard M lead in T, so before C.
 * So the new leader counts M's expiry from C instead of from its own office, which saves what
 * its election took; any other member's is still counted from office (an echo of its stamp
 * may have come as late as the end of some leader's lease). docs/guarantees.md says it in
 * words. */

/* Ticks of ours that `ticks` ticks of another node's clock last at least (drift and tick
 * quantisation on both sides taken against us). */
static uint64_t ticks_at_least(const raft_config_t *cfg, uint64_t ticks)
{
    uint64_t d = cfg->max_drift_ppm;
    if (ticks < 2 || d >= 1000000)
        return 0;
    uint64_t x = (ticks - 1) * (1000000 - d) / (1000000 + d);
    return x > 0 ? x - 1 : 0;
}

static void vote_contact_start(raft_t *r)
{
    r->vote_contact_unknown = !r->contact_seen;
    r->vote_contact = r->leader_contact;
    r->vote_contact_term = r->contact_term;
    r->vote_contact_leader = r->contact_leader;
}

static void vote_contact_add(raft_t *r, const raft_msg_t *m)
{
    if (m->log_term == 0) {
        r->vote_contact_unknown = true;
        return;
    }
    uint64_t ago = ticks_at_least(&r->cfg, m->hint);
    uint64_t at = r->now > ago ? r->now - ago : 0;
    if (at > r->vote_contact)
        r->vote_contact = at;
    if (m->log_term > r->vote_contact_term) {
        r->vote_contact_term = m->log_term;
        r->vote_contact_leader = m->index;
    }
}

/* Called as this node takes office, after the progress rows were made (each member's
 * session expiry then counts from now). */
static void session_from_votes(raft_t *r)
{
    if (r->cfg.session_ticks == 0 || r->vote_contact_unknown || r->vote_contact_term == 0 ||
        r->vote_contact_leader == r->id)
        return;
    struct progress *pr = raft_progress_find(r, r->vote_contact_leader);
    if (pr != NULL && r->vote_contact < pr->session_heard)
        pr->session_heard = r->vote_contact;
}

void raft_become_leader(raft_t *r)
{
    assert(r->role == RAFT_CANDIDATE);
    /* Raft §5.2: a leader holds the votes of a majority of the voters of its term. */
    ELECTD_CHECK(r->n_granted >= raft_quorum_of(&r->conf));
    uint64_t term = r->term;
    bool stopped = r->campaign_stopped, transfer = r->campaign_transfer;
    reset_term(r, term);
    r->role = RAFT_LEADER;
    r->leader = r->id;
    r->transfer_stopped = stopped;
    /* Elected by votes that ignored stickiness, from a leader whose workload may still run
     * until its lease ends: wait that lease out as after a crash (voters refuse anyone for E
     * after hearing a leader; we heard ours just now). */
    if (transfer && !stopped)
        r->lease_after = r->now + r->cfg.election_ticks;
    r->campaign_transfer = false;
    r->campaign_stopped = false;
    r->step_fn = raft_step_leader;
    r->tick_fn = raft_tick_leader;
    raft_note_contact(r, r->id);
    raft_progress_reset_all(r);
    session_from_votes(r);
    /* Any uncommitted CONF entry of a previous leader is in our log; treat it as pending
     * until it commits. */
    r->pending_conf_index = raft_log_last_index(&r->log);

    /* Raft §5.4.2/§8: a leader commits entries of earlier terms only by committing one of
     * its own; the term-start entry also records who won the term (the fencing epoch). */
    raft_term_start_t ts = {.leader = r->id, .stamp = r->stamp};
    uint8_t buf[RAFT_TERM_START_SIZE];
    raft_term_start_encode(&ts, buf);
    raft_entry_t e = {.term = r->term,
                      .index = raft_log_last_index(&r->log) + 1,
                      .type = RAFT_ENTRY_NOOP,
                      .len = sizeof(buf)};
    e.data = raft_entry_data_new(buf, sizeof(buf));
    if (e.data == NULL || raft_log_append(&r->log, &e) != 0) {
        /* Out of memory: without its term-start entry this leader could never commit, so
         * do not lead at all. */
        raft_entry_data_unref(e.data);
        raft_become_follower(r, r->term, 0);
        return;
    }
    raft_entry_data_unref(e.data);
    r->term_start = e.index;
    r->need_flush = true;
    /* A fresh round for the term-start append: its acknowledgements establish the lease
     * within one round trip instead of at the first heartbeat. */
    raft_start_round(r);
}

bool raft_may_campaign(const raft_t *r)
{
    /* Learners, removed members and nodes that have not yet learned a configuration
     * (joining) never stand for election. */
    return raft_conf_is_voter(&r->conf, r->id);
}

void raft_campaign_start(raft_t *r, bool pre, bool transfer)
{
    if (pre)
        become_precandidate(r);
    else
        become_candidate(r);
    r->campaign_transfer = transfer;
    if (!transfer)
        r->campaign_stopped = false;
    uint64_t term = pre ? r->term + 1 : r->term;
    if (!pre)
        vote_contact_start(r);
    /* Our own vote counts; it is persisted (hs.vote) before any request leaves. */
    r->granted[r->n_granted++] = r->id;
    if (r->n_granted >= raft_quorum_of(&r->conf)) {
        if (pre)
            raft_campaign_start(r, false, false);
        else
            raft_become_leader(r);
        return;
    }
    request_votes(r, term);
}

/* Leader stickiness and lease protection (DESIGN.md, "leader lease"): a node refuses to
 * help elect anyone while it is the leader, or within a minimum election timeout of hearing
 * from one — including right after it (re)started, when it cannot know whom it heard. That
 * is what lets a leader trust its lease. A campaign caused by the leader's own TIMEOUT_NOW
 * is exempt: that leader gave its lease up before sending it. */
bool raft_vote_refused_by_lease(const raft_t *r, const raft_msg_t *m)
{
    if (m->flags & RAFT_FLAG_TRANSFER)
        return false;
    bool sticky = !MUTATED(r, RAFT_MUT_NO_STICKINESS);
    if (sticky && r->role == RAFT_LEADER)
        return true;
    if (r->now < r->cfg.election_ticks && !MUTATED(r, RAFT_MUT_VOTE_AFTER_RESTART))
        return true;
    return sticky && r->contact_seen && r->now - r->leader_contact < r->cfg.election_ticks;
}

/* Raft §5.4.1: grant only to a candidate whose log is at least as up-to-date as ours. */
static bool log_up_to_date(const raft_t *r, uint64_t index, uint64_t term)
{
    if (MUTATED(r, RAFT_MUT_VOTE_ANY_LOG))
        return true;
    uint64_t last_term = raft_log_last_term(&r->log);
    return term > last_term || (term == last_term && index >= raft_log_last_index(&r->log));
}

/* A VOTE or PREVOTE whose term is >= ours (raft_step handled higher terms already). */
int raft_step_vote_request(raft_t *r, const raft_msg_t *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool can_vote =
        r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
    /* Two followers that stand at the same moment would each grant the other's PreVote, then
     * split the vote. Rounds in turn can make them: the one second in rank may have heard the
     * leader a round, its stagger, before the first. So while a pre-candidate that stood in
     * rank after losing its leader asks again (tick_election), it grants no PreVote to a
     * member that stands after it and holds the same log; that member is asked for its own. Once
     * per leader lost: a campaign after a failed one refuses nobody, so two that cannot both win
     * never hold each other off for good. */
    if (pre && r->ranked_campaign && raft_prevote_retrying(r, r->election_elapsed) &&
        stands_before(r, r->id, m->from) && m->log_term == raft_log_last_term(&r->log) &&
        m->index == raft_log_last_index(&r->log))
        can_vote = false;
    raft_msg_t *resp = NULL;
    if (can_vote && log_up_to_date(r, m->index, m->log_term) && !raft_vote_refused_by_lease(r, m)) {
        resp = raft_msg_new(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
        if (resp == NULL)
            return RAFT_ENOMEM;
        resp->term = m->term;
        if (!pre) {
            /* Raft §5.2: at most one vote per term. */
            ELECTD_CHECK(r->vote == 0 || r->vote == m->from);
            r->vote = m->from;
            r->election_elapsed = 0;
            /* Sessions: whom we heard last as leader, in which term, how long ago. */
            if (r->contact_seen) {
                resp->log_term = r->contact_term;
                resp->index = r->contact_leader;
                resp->hint = r->now - r->leader_contact;
            }
        }
    } else {
        resp = raft_msg_new(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
        if (resp == NULL)
            return RAFT_ENOMEM;
        resp->term = r->term;
        resp->flags |= RAFT_FLAG_REJECT;
    }
    return 0;
}

/* Counts a (pre)vote response and acts on the outcome. */
static int count_vote(raft_t *r, const raft_msg_t *m)
{
    bool pre = r->role == RAFT_PRECANDIDATE;
    if ((pre && m->type != RAFT_MSG_PREVOTE_RESP) || (!pre && m->type != RAFT_MSG_VOTE_RESP))
        return 0;
    if (!raft_conf_is_voter(&r->conf, m->from) || contains(r->granted, r->n_granted, m->from) ||
        contains(r->rejected, r->n_rejected, m->from))
        return 0;
    if (m->flags & RAFT_FLAG_REJECT) {
        r->rejected[r->n_rejected++] = m->from;
    } else {
        r->granted[r->n_granted++] = m->from;
        if (!pre)
            vote_contact_add(r, m);
    }

    uint32_t q = raft_quorum_of(&r->conf);
    if (r->n_granted >= q) {
        if (pre)
            raft_campaign_start(r, false, false);
        else
            raft_become_leader(r);
    } else if (r->n_rejected >= q) {
        raft_become_follower(r, r->term, 0);
    }
    return 0;
}

int raft_step_candidate(raft_t *r, const raft_msg_t *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        /* A leader exists in our term (or, for a pre-candidate, in the term we are in). */
        raft_become_follower(r, m->term, m->from);
        return r->step_fn(r, m);
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        return count_vote(r, m);
    case RAFT_MSG_TIMEOUT_NOW:
    default:
        r->dropped++;
        return 0;
    }
}

/* Our leader handed over (TIMEOUT_NOW), or its shim said its lease is released: a transfer
 * campaign, voters ignoring stickiness; stopped: the leader's workload is gone. */
void raft_timeout_now(raft_t *r, bool stopped)
{
    r->campaign_stopped = stopped;
    raft_campaign_start(r, false, true);
}

/* RELEASED (raft.h): leader X's electd died on a host that lives, and X's shim killed the
 * workload's whole process group and saw it gone before it sent this: X's lease of this term
 * protects nothing any more. Taken only from our leader of our term (the transport proved the
 * sender is X); anything else — another term, another leader, a node that is not a plain
 * follower — is ignored. Then as if X had sent TIMEOUT_NOW with "stopped": a transfer campaign
 * (voters that have not heard of the notice still grant it) whose leader starts its workload
 * without waiting for X's lease. "Stopped" vouches for X's predecessors too: X's workload ran
 * under a lease of this term, which X held only once every earlier lease was over. All of X's
 * followers get the notice: the first by id stands at once, each next one a stagger later if
 * no leader has appeared (the earlier ones may be down, or have shorter logs). */
int raft_step_released(raft_t *r, const raft_msg_t *m)
{
    if (m->term != r->term || r->role != RAFT_FOLLOWER || m->from != r->leader ||
        !raft_may_campaign(r)) {
        r->dropped++;
        return 0;
    }
    uint32_t stagger =
        r->cfg.election_stagger_ticks ? r->cfg.election_stagger_ticks : r->cfg.heartbeat_ticks;
    uint32_t rank = rank_after(r, m->from);
    if (rank == 0) {
        raft_timeout_now(r, true);
        return 0;
    }
    if (r->released_at == 0)
        r->released_at = r->now + (uint64_t)rank * (stagger ? stagger : 1);
    return 0;
}

void raft_send_timeout_now(raft_t *r, uint64_t to)
{
    raft_msg_t *m = raft_msg_new(r, RAFT_MSG_TIMEOUT_NOW, to);
    if (m == NULL)
        return;
    m->flags = r->transfer_flags & RAFT_FLAG_STOPPED;
    r->transfer_sent = true;
    /* From here on a new leader may be elected at any moment with votes that ignore
     * stickiness: this leader must never again believe it holds a lease in this term. */
    r->lease_disabled = true;
    r->lease_until = 0;
}

int raft_transfer(raft_t *r, uint64_t target, uint8_t flags)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transfer_target != 0)
        return RAFT_ETRANSFERRING;
    struct progress *pr = NULL;
    if (target == 0) {
        for (uint32_t i = 0; i < r->n_prs; i++) {
            struct progress *p = &r->prs[i];
            if (p->id != r->id && p->voter &&
                (pr == NULL || p->match > pr->match || (p->match == pr->match && p->id < pr->id)))
                pr = p;
        }
        if (pr == NULL)
            return RAFT_EINVAL;
    } else {
        if (target == r->id)
            return RAFT_EINVAL;
        pr = raft_progress_find(r, target);
        if (pr == NULL)
            return RAFT_EUNKNOWN_MEMBER;
        if (!pr->voter)
            return RAFT_EINVAL;
    }
    r->transfer_target = pr->id;
    r->transfer_elapsed = 0;
    r->transfer_flags = flags & RAFT_FLAG_STOPPED;
    /* "Stopped" also vouches for every predecessor: not while one's lease may still hold. */
    if (r->now < r->lease_after)
        r->transfer_flags = 0;
    /* Dissertation §3.10: stop accepting proposals, bring the target up to date, then tell
     * it to campaign at once. The lease is given up now, not when TIMEOUT_NOW leaves: the
     * caller has stopped (or is stopping) the workload. */
    r->lease_disabled = true;
    r->lease_until = 0;
    if (pr->match == raft_log_last_index(&r->log))
        raft_send_timeout_now(r, pr->id);
    else
        raft_send_append(r, pr, false);
    return 0;
}

int raft_campaign(raft_t *r)
{
    if (!raft_may_campaign(r))
        return RAFT_EINVAL;
    if (r->role == RAFT_LEADER)
        return 0;
    /* Campaigning while a leader's lease may hold would let us vote for ourselves inside
     * it: the same rule as for anyone else's vote. */
    raft_msg_t self = {.type = RAFT_MSG_VOTE};
    if (raft_vote_refused_by_lease(r, &self))
        return RAFT_EBUSY;
    raft_campaign_start(r, true, false);
    return 0;
}
