/* sim_check.h — the simulator's safety checkers, kept apart from the scheduler so they can be
 * unit-tested on hand-made histories without a Raft core.
 *
 * A checker owns a record of what the whole cluster has done so far (who led which term, which
 * entry was applied at which index, the state digest after each index, which term had committed
 * how far). Each sim_check_* call adds an observation and returns 0, or records the first
 * violation (kind + human-readable text) and returns its kind. Later violations are counted but
 * the text of the first one is kept: it is the one a replay should be read for.
 */
#ifndef ELECTD_SIM_CHECK_H
#define ELECTD_SIM_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_CHECK_MSG_MAX   1024 /* bytes of the first violation's description */
#define SIM_CHECK_NODES_MAX 16   /* node ids the per-node records cover (1..15) */

#define SIM_VIOLATION_MAP(X)                                                                       \
    X(NONE, 0, "none")                                                                             \
    X(ELECTION, 1, "election safety: two leaders in one term")                                     \
    X(LOG_MATCHING, 2, "log matching")                                                             \
    X(LEADER_COMPLETENESS, 3, "leader completeness")                                               \
    X(STATE_MACHINE, 4, "state machine safety")                                                    \
    X(LEASE, 5, "lease safety: two valid leases at one instant")                                   \
    X(READ, 6, "read index below an index already applied")                                        \
    X(LIVENESS, 7, "liveness: no progress after faults healed")                                    \
    X(CONTRACT, 8, "core broke its driver contract")                                               \
    X(DURABILITY, 9, "a node lost log entries it had acknowledged")                                \
    X(SESSION, 10, "session safety: a member's session declared over while it still held")         \
    X(NAMED, 11, "named election safety: two members run one election at once")

typedef enum sim_violation {
#define SIM_V_ENUM(name, code, text) SIM_V_##name = code,
    SIM_VIOLATION_MAP(SIM_V_ENUM)
#undef SIM_V_ENUM
} sim_violation_t;

const char *sim_violation_name(int kind);

/* Read-only view of one node's log, so log checks work on a live core or on a test array.
 * entry() returns 0 and the entry's term and content hash, or non-zero if index is not held
 * (compacted or beyond the end). Indexes first..last are those the view may hold. */
typedef struct sim_log_view {
    uint64_t node;
    uint64_t first;
    uint64_t last;
    void *ctx;
    int (*entry)(void *ctx, uint64_t index, uint64_t *term, uint64_t *hash);
} sim_log_view_t;

/* One node's lease belief at an instant: it holds a lease iff valid; until_us is when it ends
 * (real simulated time). */
typedef struct sim_lease {
    uint64_t node;
    uint64_t term;
    bool valid;
    uint64_t until_us;
} sim_lease_t;

/* A member running a named election's workload at an instant: by its own state (its table
 * says it holds the election, it has applied its session's commit index, its session is
 * valid), or, crashed, under its watchdog until the session end it last had. */
typedef struct sim_runner {
    uint64_t node;
    uint64_t token;    /* the election's fencing token in that member's table */
    uint64_t until_us; /* its session end: the watchdog's deadline */
    bool crashed;      /* run by the watchdog of a crashed run */
} sim_runner_t;

typedef struct sim_check {
    /* election safety: leader_of[term] (0 = none seen) */
    uint64_t *leader_of;
    size_t leader_cap;
    /* per log index (index 0 unused): what was applied there and the digest after it */
    uint64_t *entry_term;
    uint64_t *entry_hash;
    uint64_t *digest;
    uint8_t *known; /* bit 1: entry known, bit 2: digest known */
    size_t index_cap;
    uint64_t max_applied; /* highest index applied anywhere */
    /* commit_upto[term] = highest index known committed by the end of that term */
    uint64_t *commit_upto;
    size_t commit_cap;
    /* acknowledged log end per node id (< SIM_CHECK_NODES_MAX) */
    uint64_t ack_term[SIM_CHECK_NODES_MAX];
    uint64_t ack_index[SIM_CHECK_NODES_MAX];
    /* first violation */
    sim_violation_t first;
    uint64_t violations;
    char msg[SIM_CHECK_MSG_MAX];
    bool oom;
} sim_check_t;

void sim_check_init(sim_check_t *c);
void sim_check_free(sim_check_t *c);

/* Records a violation found by the caller (liveness, contract). Returns kind. */
int sim_check_fail(sim_check_t *c, sim_violation_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* FNV-1a over an entry's identity (index, term, type, data): equal entries hash equal. */
uint64_t sim_entry_hash(uint64_t index, uint64_t term, uint8_t type, const void *data,
                        uint32_t len);
/* The state machine: digest after applying an entry with hash h to a state with digest d. */
uint64_t sim_digest_next(uint64_t d, uint64_t h);

/* Election safety: node `id` was seen as leader of `term`. */
int sim_check_leader(sim_check_t *c, uint64_t term, uint64_t id, uint64_t now_us);

/* Node `node`, whose current term is `node_term`, applied the entry (index, term, hash) and its
 * state digest is now `digest`. State machine safety: every node applies the same entry at an
 * index and reaches the same digest. Also records that `index` was committed by `node_term`. */
int sim_check_applied(sim_check_t *c, uint64_t node, uint64_t node_term, uint64_t index,
                      uint64_t term, uint64_t hash, uint64_t digest);

/* Node installed a snapshot covering up to (index, term) whose state digest is `digest`. */
int sim_check_snapshot(sim_check_t *c, uint64_t node, uint64_t index, uint64_t term,
                       uint64_t digest);

/* A leader of `term` reported commit index `commit`: everything up to it is committed no later
 * than `term`. */
void sim_check_commit(sim_check_t *c, uint64_t term, uint64_t commit);

/* Leader completeness (Raft §5.4): a leader of `term` holds every entry committed in an earlier
 * term, with the same term, at each index its log still holds (below view->first: compacted). */
int sim_check_leader_log(sim_check_t *c, uint64_t term, const sim_log_view_t *log);

/* Log matching (Raft §5.3): if two logs hold an entry with the same index and term, they are
 * identical in all entries up to it (and that entry is the same entry). */
int sim_check_log_matching(sim_check_t *c, const sim_log_view_t *a, const sim_log_view_t *b);

/* Session safety (named elections): a leader holding a valid lease declared member's session
 * over at now_us; the member (alive, or crashed with its workload's watchdog still armed)
 * holds it until held_until_us. Fails unless held_until_us <= now_us. */
int sim_check_session(sim_check_t *c, uint64_t now_us, uint64_t leader, uint64_t member,
                      uint64_t held_until_us);

/* Named election safety: at instant now_us, runs[0..n) are every member running `election`;
 * fails when they are more than one member (one member's crashed run and its new run count
 * as one: the same machine). */
int sim_check_election_runs(sim_check_t *c, uint64_t now_us, uint32_t election,
                            const sim_runner_t *runs, size_t n);

/* Lease safety: at instant now_us at most one of leases[0..n) is valid. */
int sim_check_leases(sim_check_t *c, uint64_t now_us, const sim_lease_t *leases, size_t n);

/* ReadIndex: a read requested when `floor` was the highest index applied anywhere returned
 * `index` on `node`; it must not be below floor (it would miss an acknowledged write). */
int sim_check_read(sim_check_t *c, uint64_t node, uint64_t ctx, uint64_t floor, uint64_t index);

/* Acknowledged entries stay: within one term a node only ever appends to or overwrites the
 * log suffix its leader sends, so once it acknowledged (APPEND_RESP) index `index` to the
 * leader of `term`, its log must reach at least `index` for as long as it stays in `term`.
 * sim_check_ack records an acknowledgement; sim_check_log_end checks the node's log end. */
void sim_check_ack(sim_check_t *c, uint64_t node, uint64_t term, uint64_t index);
int sim_check_log_end(sim_check_t *c, uint64_t node, uint64_t term, uint64_t last, uint64_t now_us);

/* Term of the entry applied at index, if any node applied it. */
bool sim_check_entry_known(const sim_check_t *c, uint64_t index, uint64_t *term, uint64_t *hash);

#endif
