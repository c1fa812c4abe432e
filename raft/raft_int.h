/* raft_int.h — private to raft/: the node's state and the functions the core's files share.
 * Nothing here is part of the interface; raft.h is. */
#ifndef ELECTD_RAFT_INT_H
#define ELECTD_RAFT_INT_H

#include "raft.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vec.h"

#ifdef RAFT_MUTATIONS
#define MUTATED(r, m) ((r)->cfg.test_mutation == (m))
#else
#define MUTATED(r, m) 0
#endif

/* Heartbeat rounds whose send tick is remembered (for leases and ReadIndex). A round older
 * than this many rounds is never needed: its lease would have expired long ago. */
#define ROUND_RING 256

/* ---- the in-memory log (raft_log.c) -------------------------------------------------------- */

/* Entry payloads are reference counted so that a ready batch and pending messages can
 * borrow them while the log truncates or compacts underneath. */
uint8_t *raft_entry_data_new(const void *src, uint32_t len);
uint8_t *raft_entry_data_ref(uint8_t *data);
void raft_entry_data_unref(uint8_t *data);

struct raft_log {
    raft_entry_t *ents; /* ents[i] has index offset + i; owns one ref of each data */
    size_t n;
    size_t cap;
    uint64_t offset;     /* index of ents[0] */
    uint64_t prev_index; /* entry just before ents[0] (the compaction point) */
    uint64_t prev_term;
    uint64_t unstable; /* first index not yet handed to the driver to persist */
};

void raft_log_open(struct raft_log *l, uint64_t prev_index, uint64_t prev_term);
void raft_log_close(struct raft_log *l);
uint64_t raft_log_last_index(const struct raft_log *l);
uint64_t raft_log_last_term(const struct raft_log *l);
/* 0 and *term, or RAFT_ECOMPACTED / RAFT_EUNAVAILABLE. */
int raft_log_term(const struct raft_log *l, uint64_t index, uint64_t *term);
/* Term at index, or 0 when unknown: for comparisons where "unknown" must not match. */
uint64_t raft_log_term_or0(const struct raft_log *l, uint64_t index);
raft_entry_t *raft_log_get(const struct raft_log *l, uint64_t index);
/* Appends a copy (taking a new ref of data) of e; e->index must be last + 1. */
int raft_log_append(struct raft_log *l, const raft_entry_t *e);
/* Deletes index and everything after it. */
void raft_log_truncate(struct raft_log *l, uint64_t index);
/* Drops entries up to and including index (index <= last). */
void raft_log_compact(struct raft_log *l, uint64_t index);
/* Resets to empty after (index, term): a snapshot was installed. */
void raft_log_reset(struct raft_log *l, uint64_t index, uint64_t term);
/* Shallow copies of [lo, hi] with refs, into a new array; caller frees with raft_entries_free. */
int raft_log_slice(const struct raft_log *l, uint64_t lo, uint64_t hi, size_t max_bytes,
                   raft_entry_t **out, size_t *n);
void raft_entries_free(raft_entry_t *ents, size_t n);

/* ---- followers as the leader sees them (progress) ------------------------------------ */

enum { PR_PROBE = 0, PR_REPLICATE = 1, PR_SNAPSHOT = 2 };

struct progress {
    uint64_t id;
    bool voter;
    uint64_t match;
    uint64_t next;
    int state;
    bool probe_sent;    /* PROBE: one append outstanding until a reply or heartbeat */
    uint64_t *inflight; /* REPLICATE: last index of each append in flight (ring) */
    uint32_t in_head;
    uint32_t in_count;
    uint64_t acked_round;   /* highest heartbeat round echoed this term */
    uint64_t sent_round;    /* the newest round it was sent a message of (heartbeat, append,
                               snapshot chunk) ... */
    uint64_t sent_before;   /* ... and the round before that one it was sent */
    uint64_t session_heard; /* sessions: our tick when we last heard its stamp with a valid
                               lease, or when this row was made (office start) */
    uint64_t session_stamp; /* its last stamp so heard (0 = none yet), echoed with ... */
    uint64_t session_nonce; /* ... its nonce in our next heartbeat */
    uint64_t session_hold;  /* renew it only while it holds this index, committed (0: none);
                               raised by raft_session_hold, kept for the term */
    uint64_t match_round;   /* round of the acknowledgement that last raised match */
    uint64_t last_contact;
    bool recent_active;  /* heard from since the last CheckQuorum */
    uint64_t snap_index; /* SNAPSHOT: which snapshot, how far, and since when */
    uint64_t snap_offset;
    uint64_t snap_elapsed;
};

/* ---- the node ------------------------------------------------------------------------ */

struct pending_read {
    uint64_t ctx;
    uint64_t index;
    uint64_t round; /* satisfied once a quorum echoed this round */
};

struct raft {
    raft_config_t cfg;
    raft_storage_t storage;
    uint64_t id;
    uint32_t lease_ticks;
    uint32_t session_expire_ticks;
    uint64_t session_nonce; /* random, fixed for this raft_t: tells our stamps from a
                               previous run's */
    uint64_t session_until; /* tick; 0 = no session */
    uint64_t session_index; /* the commit index that came with the latest renewal */

    /* persistent */
    uint64_t term;
    uint64_t vote;
    uint64_t commit;

    raft_role_t role;
    uint64_t leader;
    struct raft_log log;
    uint64_t applied; /* last index handed to the driver to apply */
    raft_snapshot_meta_t snap;

    /* membership: conf is in force since the CONF entry at conf_index committed */
    raft_conf_t conf;
    uint64_t conf_index;
    uint64_t pending_conf_index; /* leader: newest CONF entry in the log */

    /* time */
    uint64_t now;
    uint64_t election_elapsed;
    uint64_t heartbeat_elapsed;
    uint32_t randomized_timeout;
    uint64_t leader_contact; /* tick when a leader (or this node as leader) was last heard */
    bool contact_seen;       /* leader_contact is meaningful */
    uint64_t contact_leader; /* ... which leader (this node after it led) */
    uint64_t contact_term;   /* ... in which term */
    uint64_t prng;

    /* elections */
    uint64_t granted[RAFT_MAX_MEMBERS];
    uint32_t n_granted;
    uint64_t rejected[RAFT_MAX_MEMBERS];
    uint32_t n_rejected;
    bool campaign_transfer; /* this campaign was started by TIMEOUT_NOW */
    bool campaign_stopped;  /* ... whose sender's workload had stopped */
    bool ranked_campaign;   /* this pre-campaign stood in rank after a leader was lost */
    /* Sessions: what the granted votes of this campaign said about the voters' latest
     * contact with a leader (raft_session_contact in election.c). */
    uint64_t vote_contact;        /* the latest such contact, in our ticks (an upper bound) */
    uint64_t vote_contact_term;   /* the highest term of a contact reported */
    uint64_t vote_contact_leader; /* ... and the leader of that term */
    bool vote_contact_unknown;    /* a granted voter could not tell: no use of the above */
    bool transfer_stopped;        /* reported in soft state once leader */
    uint64_t released_at;         /* a RELEASED notice of our leader in this term: campaign as if it
                                     had sent TIMEOUT_NOW (stopped) at this tick; 0 = none */
    /* Members' priorities (raft_set_priority): only the order in which followers stand. */
    struct {
        uint64_t id;
        uint8_t priority;
    } prios[RAFT_MAX_MEMBERS];
    uint32_t n_prios;

    /* leader */
    uint64_t term_start; /* index of this leader's term-start entry */
    struct progress prs[RAFT_MAX_MEMBERS];
    uint32_t n_prs;
    uint64_t round;
    uint64_t round_tick[ROUND_RING];
    uint64_t quorum_round_tick; /* start tick of the newest round a quorum echoed */
    uint64_t lease_until;
    uint64_t lease_after; /* no lease from rounds sent before this tick (a predecessor's
                             lease may still hold: elected by a transfer without "stopped") */
    bool lease_disabled;  /* a TIMEOUT_NOW left in this term: never claim a lease again */
    uint64_t transfer_target;
    uint64_t transfer_elapsed;
    bool transfer_sent;
    uint8_t transfer_flags;
    bool need_flush;         /* proposals appended since the last broadcast */
    bool need_round;         /* a read is waiting for a fresh heartbeat round */
    bool rotate;             /* raft_set_rotation: quiet rounds go to one follower in turn */
    uint64_t rounds_in_turn; /* rounds so sent since raft_open */
    struct pending_read *reads;
    size_t n_reads;
    size_t cap_reads;
    uint64_t stamp;

    /* follower receiving a snapshot */
    bool recv_active;
    raft_snapshot_meta_t recv_meta;
    uint64_t recv_offset;
    bool chunk_pending;
    raft_snapshot_chunk_t chunk;
    uint8_t *chunk_buf;

    /* messages produced since the last raft_ready_get; they own their payloads */
    raft_msg_t *msgs;
    size_t n_msgs;
    size_t cap_msgs;

    /* the batch handed out */
    bool ready_out;
    raft_ready_t out;
    raft_entry_t *out_entries;
    size_t out_n_entries;
    raft_entry_t *out_committed;
    size_t out_n_committed;
    raft_msg_t *out_msgs;
    size_t out_n_msgs;
    raft_read_t *out_reads;
    size_t out_n_reads;
    raft_read_t *done_reads; /* results waiting for the next batch */
    size_t n_done_reads;
    size_t cap_done_reads;
    bool out_chunk;

    /* what the driver last saw */
    raft_hard_state_t last_hs;
    raft_role_t last_role;
    uint64_t last_leader;
    uint64_t last_term;
    uint64_t last_lease;
    bool last_transfer_stopped;

    uint64_t dropped; /* invalid or unexpected messages ignored */

    int (*step_fn)(raft_t *r, const raft_msg_t *m);
    void (*tick_fn)(raft_t *r);
};

/* raft.c */
raft_msg_t *raft_msg_new(raft_t *r, uint8_t type, uint64_t to);
void raft_msg_free_payload(raft_msg_t *m);
uint64_t raft_prng_next(raft_t *r);

/* election.c */
void raft_become_follower(raft_t *r, uint64_t term, uint64_t leader);
void raft_become_leader(raft_t *r);
void raft_campaign_start(raft_t *r, bool pre, bool transfer);
int raft_step_vote_request(raft_t *r, const raft_msg_t *m);
bool raft_may_campaign(const raft_t *r);
bool raft_vote_refused_by_lease(const raft_t *r, const raft_msg_t *m);
/* This node heard `leader` lead in the current term now (itself, when it leads or led). */
void raft_note_contact(raft_t *r, uint64_t leader);
/* config.election_stagger_ticks: sets the election timeout of a follower that hears leader. */
void raft_follow_timeout(raft_t *r, uint64_t leader);
/* A RELEASED notice (raft.h): campaign at once, or after our rank among the others. */
int raft_step_released(raft_t *r, const raft_msg_t *m);
/* Campaign now as our leader's transfer target (stopped: its workload is gone). */
void raft_timeout_now(raft_t *r, bool stopped);
void raft_reset_randomized_timeout(raft_t *r);
void raft_send_timeout_now(raft_t *r, uint64_t to);

/* replication.c */
int raft_step_leader(raft_t *r, const raft_msg_t *m);
int raft_step_follower(raft_t *r, const raft_msg_t *m);
int raft_step_candidate(raft_t *r, const raft_msg_t *m);
void raft_tick_leader(raft_t *r);
void raft_bcast_append(raft_t *r);
void raft_bcast_heartbeat(raft_t *r);
void raft_start_round(raft_t *r);
/* A pre-candidate asks again at every tick of its campaign's first ticks (tick_election). */
static inline bool raft_prevote_retrying(const raft_t *r, uint64_t elapsed)
{
    return r->role == RAFT_PRECANDIDATE && elapsed <= r->cfg.heartbeat_ticks + 2u;
}
void raft_note_round_sent(const raft_t *r, struct progress *pr);
uint64_t raft_round_due(const raft_t *r, const struct progress *pr);
bool raft_maybe_commit(raft_t *r);
void raft_commit_to(raft_t *r, uint64_t index);
void raft_update_lease_and_reads(raft_t *r);
void raft_fail_pending_reads(raft_t *r);
void raft_send_append(raft_t *r, struct progress *pr, bool allow_empty);

/* membership.c */
uint32_t raft_quorum_of(const raft_conf_t *c);
/* The value that a quorum q of the n voters has reached: the q-th largest of vals[0..n)
 * (Raft §5.3 commit index; the lease's acknowledged round). Reorders vals. q <= n. */
uint64_t raft_quorum_value(uint64_t *vals, uint32_t n, uint32_t q);
bool raft_conf_is_voter(const raft_conf_t *c, uint64_t id);
struct progress *raft_progress_find(raft_t *r, uint64_t id);
void raft_progress_reset_all(raft_t *r);
void raft_progress_close_all(raft_t *r);
void raft_conf_apply(raft_t *r, const raft_entry_t *e);
int raft_conf_apply_committed(raft_t *r, uint64_t from, uint64_t to);

#endif
