/* raft.h — the whole public interface of electd's Raft consensus core.
 *
 * The core is a deterministic state machine with no I/O: no clock, no sockets, no disk, no
 * global state. Time arrives as raft_tick(), messages as raft_step(), commands as
 * raft_propose() and friends. Everything the core wants done leaves through one *ready*
 * batch (raft_ready_get), whose pointers are borrowed until raft_advance(). The driver
 * handles a batch in this order (etcd's): persist hard state + entries (+ snapshot) in one
 * durable transaction, then send the messages, then apply the committed entries, then
 * call raft_advance(). Messages that depend on durability (vote grants, append acks) are
 * in the same batch and so only leave after the persist step.
 *
 * Ownership: every pointer handed *to* the core is copied if kept (raft_step,
 * raft_propose, raft_open's boot). Every pointer handed *out* (ready batch, raft_conf) is
 * borrowed: valid until the next call that mutates the core (for the ready batch: until
 * raft_advance).
 */
#ifndef ELECTD_RAFT_H
#define ELECTD_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits ------------------------------------------------------------------------- */

#define RAFT_MAX_MEMBERS     16        /* voters + learners in one configuration */
#define RAFT_ADDR_MAX        128       /* bytes of a member's opaque address, NUL included */
#define RAFT_ENTRY_MAX       (1 << 20) /* bytes of one entry's payload */
#define RAFT_MSG_ENTRIES_MAX 4096      /* entries in one message */

/* ---- errors ------------------------------------------------------------------------- */

#define RAFT_ERRNO_MAP(X)                                                                          \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(INVAL, -2, "invalid argument")                                                               \
    X(NOTLEADER, -3, "this node is not the leader")                                                \
    X(BUSY, -4, "a configuration change is already pending")                                       \
    X(TRANSFERRING, -5, "a leadership transfer is in progress")                                    \
    X(MALFORMED, -6, "malformed message")                                                          \
    X(VERSION, -7, "unsupported wire format version")                                              \
    X(CHECKSUM, -8, "checksum mismatch")                                                           \
    X(TRUNCATED, -9, "truncated frame")                                                            \
    X(TOOBIG, -10, "too large")                                                                    \
    X(COMPACTED, -11, "index is compacted")                                                        \
    X(UNAVAILABLE, -12, "index is not in the log")                                                 \
    X(UNKNOWN_MEMBER, -13, "not a member of the configuration")                                    \
    X(STORAGE, -14, "storage read failed")                                                         \
    X(NOQUORUM, -15, "the leader has not yet committed an entry in its term")

enum {
#define RAFT_ERR_ENUM(name, code, text) RAFT_E##name = code,
    RAFT_ERRNO_MAP(RAFT_ERR_ENUM)
#undef RAFT_ERR_ENUM
};

/* Text for a RAFT_E* code (never NULL). */
const char *raft_strerror(int err);

/* ---- basic types -------------------------------------------------------------------- */

typedef enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRECANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
} raft_role_t;

const char *raft_role_name(raft_role_t role);

typedef enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0, /* application command, opaque to the core */
    RAFT_ENTRY_NOOP = 1,   /* term-start entry; data = raft_term_start encoding (16 bytes) */
    RAFT_ENTRY_CONF = 2,   /* configuration change; data = raft_conf encoding */
} raft_entry_type_t;

typedef struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* raft_entry_type_t */
    uint32_t len;
    uint8_t *data; /* len bytes; NULL when len == 0 */
} raft_entry_t;

/* What must survive a crash besides the log (Raft Figure 2 "persistent state"; commit is
 * persisted too so a restart re-applies nothing it already applied past). */
typedef struct raft_hard_state {
    uint64_t term;
    uint64_t vote; /* 0 = none */
    uint64_t commit;
} raft_hard_state_t;

typedef struct raft_member {
    uint64_t id;              /* never 0 */
    uint8_t voter;            /* 1 voter, 0 non-voting learner */
    char addr[RAFT_ADDR_MAX]; /* opaque to the core (the daemon keeps "name=host:port") */
} raft_member_t;

typedef struct raft_conf {
    uint32_t n;
    raft_member_t members[RAFT_MAX_MEMBERS];
} raft_conf_t;

/* The term-start (no-op) entry's payload: who won the term, and an opaque stamp the driver
 * supplied with raft_set_stamp() (electd uses wall-clock ms, for the leadership history). */
typedef struct raft_term_start {
    uint64_t leader;
    uint64_t stamp;
} raft_term_start_t;

typedef struct raft_snapshot_meta {
    uint64_t index;   /* last log index the snapshot covers; 0 = no snapshot */
    uint64_t term;    /* term of that entry */
    uint64_t size;    /* bytes of snapshot data */
    raft_conf_t conf; /* configuration as of index */
} raft_snapshot_meta_t;

/* ---- messages ------------------------------------------------------------------------ */

typedef enum raft_msg_type {
    RAFT_MSG_PREVOTE = 1,
    RAFT_MSG_PREVOTE_RESP = 2,
    RAFT_MSG_VOTE = 3,
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_APPEND = 5,
    RAFT_MSG_APPEND_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7,
    RAFT_MSG_HEARTBEAT_RESP = 8,
    RAFT_MSG_SNAPSHOT = 9,
    RAFT_MSG_SNAPSHOT_RESP = 10,
    RAFT_MSG_TIMEOUT_NOW = 11,
    RAFT_MSG_PROPOSE = 12, /* a follower's command forwarded to its leader (raft_forward) */
    RAFT_MSG_RELEASED =
        13, /* the shim of a dead leader: its lease of `term` is released (issue 17) */
} raft_msg_type_t;
#define RAFT_MSG_TYPE_MAX 13

const char *raft_msg_type_name(int type);

/* Message flags. */
#define RAFT_FLAG_REJECT   0x01 /* *_RESP: the request was refused */
#define RAFT_FLAG_TRANSFER 0x02 /* VOTE: campaign caused by TimeoutNow; overrides stickiness */
#define RAFT_FLAG_STOPPED  0x04 /* TIMEOUT_NOW / VOTE: the old leader's workload has stopped */
#define RAFT_FLAG_LAST     0x08 /* SNAPSHOT: final chunk */
#define RAFT_FLAGS_ALL     0x0f

/* One message. Field use by type (unused fields are 0):
 *
 *  type            index                 log_term            commit        hint        ctx
 *  PREVOTE/VOTE    last log index        last log term       -             -           -
 *  *VOTE_RESP      -                     -                   -             -           -
 *  APPEND          prev log index        prev log term       leader commit -           round
 *  APPEND_RESP     match (ok) or         hint term (reject)  -             conflict    round
 *                  rejected index                                          index hint
 *  HEARTBEAT       -                     session nonce       commit        session     round
 *                                        (echoed)                          stamp (echo)
 *  HEARTBEAT_RESP  last log index        session nonce       -             session     round
 *                                                                          stamp
 *  SNAPSHOT        snapshot index        snapshot term       -             offset      round
 *                  + size, data/len, conf (conf on every chunk)
 *  SNAPSHOT_RESP   snapshot index        -                   -             next offset round
 *  TIMEOUT_NOW     -                     -                   -             -           -
 *  PROPOSE         0                     -                   -             -           -
 *                  + exactly one NORMAL entry (index 1, the sender's term): its data only
 *  RELEASED        -                     -                   -             -           -
 *                  sent on behalf of leader `from` by its exec shim once its electd died
 *                  and its workload's process group is gone: the lease of `term` is
 *                  released (raft_step_released in election.c)
 *
 * `round` is the leader's heartbeat round at send time; responses echo it. A quorum of
 * echoes of round r means a quorum heard from the leader after r was started: that is
 * what leader leases and ReadIndex are built on.
 *
 * Sessions (when session_ticks > 0): a HEARTBEAT_RESP carries the sender's tick at sending
 * plus one (the stamp; 0 = none) and a random nonce fixed for the life of its raft_t; a
 * leader that receives it while holding a valid lease echoes both in its next HEARTBEAT.
 */
typedef struct raft_msg {
    uint8_t type;  /* raft_msg_type_t */
    uint8_t flags; /* RAFT_FLAG_* */
    uint64_t from;
    uint64_t to;
    uint64_t term;
    uint64_t index;
    uint64_t log_term;
    uint64_t commit;
    uint64_t hint;
    uint64_t ctx;
    uint32_t n_entries;
    raft_entry_t *entries;
    /* SNAPSHOT only */
    uint64_t snap_size;
    uint32_t len;
    const uint8_t *data;
    raft_conf_t *conf;
} raft_msg_t;

/* ---- codec (raft/codec.c): versioned binary frames ------------------------------------ */

#define RAFT_CODEC_VERSION 1
#define RAFT_FRAME_MAX     (8u << 20) /* bytes of one whole frame */
#define RAFT_FRAME_HEADER  4          /* the u32 length prefix */

/* Bytes raft_msg_encode() will write for m. */
size_t raft_msg_encoded_size(const raft_msg_t *m);

/* Encodes m as one frame into buf[0..cap). On success *len = bytes written.
 * Errors: RAFT_ETOOBIG (cap too small or frame over RAFT_FRAME_MAX), RAFT_EINVAL. */
int raft_msg_encode(const raft_msg_t *m, uint8_t *buf, size_t cap, size_t *len);

/* Given the first `avail` bytes of a stream, tells how long the next frame is.
 * Returns 0 and *frame_len when the length prefix is there (the frame may be incomplete),
 * RAFT_ETRUNCATED when fewer than RAFT_FRAME_HEADER bytes are available,
 * RAFT_ETOOBIG / RAFT_EMALFORMED for an impossible length. */
int raft_frame_len(const uint8_t *buf, size_t avail, size_t *frame_len);

/* Decodes one whole frame of exactly len bytes from untrusted input; never reads outside
 * buf[0..len). On success m->entries and m->conf are allocated by the decoder (release
 * them with raft_msg_free); entry data and m->data point into buf, so buf must outlive
 * m. Errors: RAFT_ETRUNCATED, RAFT_EMALFORMED, RAFT_EVERSION, RAFT_ECHECKSUM,
 * RAFT_ETOOBIG, RAFT_ENOMEM; on error nothing is allocated. */
int raft_msg_decode(const uint8_t *buf, size_t len, raft_msg_t *m);
void raft_msg_free(raft_msg_t *m);

/* Configuration and term-start payload encodings (the data of CONF and NOOP entries). */
size_t raft_conf_encoded_size(const raft_conf_t *c);
int raft_conf_encode(const raft_conf_t *c, uint8_t *buf, size_t cap, size_t *len);
int raft_conf_decode(const uint8_t *buf, size_t len, raft_conf_t *c);
#define RAFT_TERM_START_SIZE 16
void raft_term_start_encode(const raft_term_start_t *ts, uint8_t buf[RAFT_TERM_START_SIZE]);
int raft_term_start_decode(const uint8_t *buf, size_t len, raft_term_start_t *ts);

/* CRC32C (Castagnoli) of buf, continuing from crc (start with 0): by the CPU's crc32
 * instruction where raft_crc32c_hw_available(), else by raft_crc32c_table(), which tests
 * compare with it. */
uint32_t raft_crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t raft_crc32c_table(uint32_t crc, const void *buf, size_t len);
bool raft_crc32c_hw_available(void);

/* ---- storage: what the core reads ------------------------------------------------------ */

/* At start the driver hands the core everything it persisted (raft_open's boot). At run
 * time the core reads only snapshot data, to send it to followers in chunks. */
typedef struct raft_storage {
    void *ctx;
    /* Copies up to len bytes of the snapshot at `index` starting at `offset` into buf and
     * sets *n (0 only at the end). Returns 0 or a negative error (the core gives up on this
     * follower for now and retries later). */
    int (*snapshot_read)(void *ctx, uint64_t index, uint64_t offset, void *buf, size_t len,
                         size_t *n);
} raft_storage_t;

typedef struct raft_boot {
    raft_hard_state_t hs;
    raft_snapshot_meta_t snap;   /* snap.index == 0: no snapshot */
    uint64_t applied;            /* index the state machine has applied (0 = snap.index);
                                    committed entries after it are handed out again */
    raft_conf_t conf;            /* initial configuration; used only when the log and the
                                    snapshot hold none (a brand-new cluster) */
    const raft_entry_t *entries; /* the log after snap.index, consecutive; copied */
    size_t n_entries;
} raft_boot_t;

/* ---- configuration ------------------------------------------------------------------- */

typedef struct raft_config {
    uint64_t id;                     /* this node's id, never 0 */
    uint32_t election_ticks;         /* minimum election timeout E */
    uint32_t election_jitter_ticks;  /* actual timeout is random in [E, E + jitter); 0 = E.
                                        Safety never depends on it (stickiness is measured
                                        from E); a narrow range fails over faster at a
                                        slightly higher risk of a split vote. */
    uint32_t election_stagger_ticks; /* 0 = off. Else a follower that hears a leader times
                                       out, if the leader falls silent, after E + 2 +
                                       rank × stagger ticks, its rank its place among the
                                       voters other than that leader, by priority
                                       (raft_set_priority), then by id: the first one
                                       stands the moment the leader's lease is over, no
                                       split vote between healthy followers. Elections
                                       without a leader heard stay random (jitter). */
    uint32_t heartbeat_ticks;        /* < election_ticks */
    uint32_t max_drift_ppm;          /* bound on clock-rate difference, e.g. 50000 = 5% */
    uint64_t seed;                   /* PRNG seed for randomized timeouts and the session
                                        nonce: must differ from one run of a node to the next */
    uint32_t max_inflight;           /* append messages in flight per follower (default 64) */
    uint32_t max_msg_bytes;          /* entry bytes per append message (default 256 KiB) */
    uint32_t snapshot_chunk_bytes;   /* default 256 KiB */
    uint32_t session_ticks;          /* member sessions (named elections): a member's session
                                        holds for this many of its own ticks after a leader
                                        with a valid lease heard it; 0 = off. See "Sessions". */
    uint32_t test_mutation;          /* RAFT_MUT_*; honoured only when built with RAFT_MUTATIONS */
} raft_config_t;

/* Deliberate rule violations, used only by the simulator's "the checks bite" tests. */
enum {
    RAFT_MUT_NONE = 0,
    RAFT_MUT_VOTE_ANY_LOG = 1,          /* skip the up-to-date-log check on votes (§5.4.1) */
    RAFT_MUT_COMMIT_OLD_TERM = 2,       /* commit entries of older terms by counting (§5.4.2) */
    RAFT_MUT_NO_STICKINESS = 3,         /* grant votes while a live leader is heard */
    RAFT_MUT_VOTE_AFTER_RESTART = 4,    /* grant votes right after (re)start */
    RAFT_MUT_LONG_LEASE = 5,            /* lease ignores clock drift */
    RAFT_MUT_SESSION_NO_DRIFT = 6,      /* members expire after session_ticks, drift ignored */
    RAFT_MUT_SESSION_NO_HOLD = 7,       /* raft_session_hold is ignored */
    RAFT_MUT_SESSION_STALE = 8,         /* renew sessions without the commit index rule */
    RAFT_MUT_SESSION_SELF_NOW = 9,      /* a leader renews its own session from now */
    RAFT_MUT_RELEASE_EARLY = 10,        /* the simulator's shim model, not the core: a dead
                                           leader's shim sends RELEASED before its workload is
                                           gone */
    RAFT_MUT_SESSION_SELF_UNHEARD = 11, /* a leader renews its own session without counting
                                           itself heard: it finds its own session over while
                                           holding it */
};

/* The lease the leader may claim after a quorum echoed a round, in ticks:
 * floor(E × (1 − d)/(1 + d)) − 2 (two ticks of margin for tick quantisation). */
uint32_t raft_lease_ticks(const raft_config_t *cfg);

/* ---- ready batch --------------------------------------------------------------------- */

typedef struct raft_read {
    uint64_t ctx;   /* the caller's token from raft_read_index */
    uint64_t index; /* read is linearizable once applied_index >= index; 0 = the read
                       failed because this node lost leadership: retry on the leader */
} raft_read_t;

typedef struct raft_snapshot_chunk {
    raft_snapshot_meta_t meta; /* of the snapshot being received */
    uint64_t offset;
    const uint8_t *data;
    uint32_t len;
    bool last; /* the whole snapshot has arrived: install it (see raft_ready) */
} raft_snapshot_chunk_t;

typedef struct raft_ready {
    /* 1. persist, in one durable transaction, in this order: */
    bool hs_changed;
    raft_hard_state_t hs;
    const raft_snapshot_chunk_t *chunk; /* write chunk->data at chunk->offset of the staged
                                           snapshot (offset 0 starts a new one); if
                                           chunk->last, install it atomically: state machine
                                           := snapshot, log := empty after meta.index */
    const raft_entry_t *entries;        /* append; entries[0].index may be <= last index:
                                           delete the log from there first (conflict) */
    size_t n_entries;
    /* 2. then send: */
    raft_msg_t *msgs;
    size_t n_msgs;
    /* 3. then apply, in order (index > applied so far): */
    const raft_entry_t *committed;
    size_t n_committed;
    const raft_read_t *reads; /* ReadIndex results */
    size_t n_reads;
    /* soft state (always filled; changed says whether any of it differs from the last
     * batch) */
    bool soft_changed;
    raft_role_t role;
    uint64_t leader; /* 0 = unknown */
    uint64_t term;
    uint64_t lease_until_tick; /* leader: lease valid while raft_now(r) < this; else 0 */
    bool transfer_stopped;     /* became leader through a transfer whose sender said its
                                  workload had already stopped */
} raft_ready_t;

/* ---- the node ------------------------------------------------------------------------ */

typedef struct raft raft_t; /* opaque; see raft_size() */

/* Allocates and starts a node. *out is set on success. boot may describe a brand-new node
 * (all zero but boot->conf). Errors: RAFT_EINVAL (bad config, boot not consecutive, this
 * id not in a brand-new cluster's conf), RAFT_ENOMEM, RAFT_EMALFORMED (a CONF or NOOP entry
 * in the log does not decode). */
int raft_open(const raft_config_t *cfg, const raft_boot_t *boot, const raft_storage_t *storage,
              raft_t **out);
void raft_close(raft_t *r);

/* One tick of time. */
int raft_tick(raft_t *r);

/* The next tick (> raft_now) at which raft_tick() may have work: a heartbeat, an election
 * timeout (or a released lease's turn to stand), CheckQuorum, a transfer or a snapshot chunk
 * timing out. A tick before it leaves
 * raft_has_ready() as it was and changes nothing but state that depends on the time alone,
 * so a driver may sleep until then — provided it delivers every tick it skipped before
 * anything else reaches the core (a step, a request, a read of its time-dependent state:
 * leases, sessions, last contact). Valid until the next call into the core. */
uint64_t raft_tick_due(const raft_t *r);

/* One message from a peer. m is copied as needed; invalid messages are dropped and counted
 * (0 is still returned: a peer's garbage is not the caller's error) unless m is NULL or
 * not addressed to this node (RAFT_EINVAL). */
int raft_step(raft_t *r, const raft_msg_t *m);

/* Proposes an application command on the leader. *index = the index it will have.
 * Errors: RAFT_ENOTLEADER, RAFT_ETRANSFERRING, RAFT_ETOOBIG, RAFT_ENOMEM. */
int raft_propose(raft_t *r, const void *data, size_t len, uint64_t *index);

/* Proposes on the leader, or on a follower forwards the command to the leader it knows
 * (a PROPOSE message, best effort: it may be lost, or appended twice if the caller retries;
 * the caller sees the effect applied, or retries). *forwarded says which (index is then 0).
 * Errors: as raft_propose, and RAFT_ENOTLEADER when no leader is known. */
int raft_forward(raft_t *r, const void *data, size_t len, uint64_t *index, bool *forwarded);

typedef enum raft_conf_op {
    RAFT_CONF_ADD_LEARNER = 1,
    RAFT_CONF_PROMOTE = 2,
    RAFT_CONF_REMOVE = 3,
} raft_conf_op_t;

/* Proposes one membership change (one at a time: RAFT_EBUSY while one is uncommitted or the
 * leader has not committed its term-start entry). addr is stored with ADD_LEARNER.
 * Errors: RAFT_ENOTLEADER, RAFT_EBUSY, RAFT_EINVAL, RAFT_EUNKNOWN_MEMBER. */
int raft_propose_conf(raft_t *r, raft_conf_op_t op, uint64_t id, const char *addr, uint64_t *index);

/* Starts a leadership transfer (Raft dissertation §3.10) to `target` (0 = the most
 * up-to-date voter). The leader stops accepting proposals and gives up its lease at once;
 * when the target's log matches, it sends TIMEOUT_NOW carrying `flags` (RAFT_FLAG_STOPPED).
 * If no new leader appears within an election timeout, the leader steps down.
 * Errors: RAFT_ENOTLEADER, RAFT_ETRANSFERRING, RAFT_EUNKNOWN_MEMBER, RAFT_EINVAL (no
 * other voter, or target is self / a learner). */
int raft_transfer(raft_t *r, uint64_t target, uint8_t flags);

/* Members' priorities order the followers' candidacy (config.election_stagger_ticks, and
 * the turns after a RELEASED notice): a follower ranks after every other voter with a higher
 * priority, then after those of its own priority with a lower id. A member never set has
 * RAFT_PRIORITY_DEFAULT. Liveness only: no safety rule reads it, so members may disagree for
 * a while (they then may stand at the same time, as two followers without stagger would).
 * At most RAFT_MAX_MEMBERS ids are kept; setting more replaces nothing (RAFT_EBUSY). */
#define RAFT_PRIORITY_DEFAULT 100
int raft_set_priority(raft_t *r, uint64_t id, uint8_t priority);
uint8_t raft_priority(const raft_t *r, uint64_t id);

/* Requests a linearizable read point (Raft §6.4). The result arrives in a later ready's
 * reads[] once a quorum has confirmed leadership. Errors: RAFT_ENOTLEADER, RAFT_ENOQUORUM
 * (no entry of this term committed yet: retry shortly). */
int raft_read_index(raft_t *r, uint64_t ctx);

/* Starts an election now (through PreVote). For tests and bootstrap. RAFT_EBUSY within an
 * election timeout of hearing a leader (or of starting): its lease may still hold. */
int raft_campaign(raft_t *r);

/* The driver took a snapshot of the state machine at `index` (<= applied) with `size`
 * bytes; the core may now drop log entries up to index (keeping `keep` entries before it
 * for slow followers). Errors: RAFT_EINVAL (index beyond what was applied or below the
 * current snapshot), RAFT_EBUSY (a configuration change committed after index is not yet
 * part of the applied state: retry after applying further). */
int raft_compact(raft_t *r, uint64_t index, uint64_t size, uint64_t keep);

/* Opaque 64-bit stamp written into term-start entries this node creates as leader. */
void raft_set_stamp(raft_t *r, uint64_t stamp);

/* Rounds in turn: while on, the leader of a group of three voters that is quiet (raft_quiet)
 * when a heartbeat round starts sends that round to one of its two followers, the other the
 * next round, so each hears it every other round. Either follower with the leader is a
 * quorum, so every round echoed renews the lease as a round to both would. The first round
 * that finds a member behind goes to both again. The driver turns it on while it holds a
 * quiet leader's reads (node_batch.c). The followers' last contacts may then be a round
 * apart: a pre-candidate asks again at every tick for a heartbeat interval (a voter that
 * heard the leader later grants as soon as its refusal ends), and while it does, a
 * pre-candidate that stood in rank grants no PreVote to one that stands after it with the
 * same log (the two may have stood at the same moment). Off at raft_open. */
void raft_set_rotation(raft_t *r, bool on);
uint64_t raft_rounds_in_turn(const raft_t *r); /* rounds so sent since raft_open */
/* Whether this leader sent member id its current round (true too when id is no member it
 * tracks, or this node does not lead): false only for the follower a round in turn skipped. */
bool raft_round_sent_to(const raft_t *r, uint64_t id);

bool raft_has_ready(const raft_t *r);
/* Fills rd with everything pending. Pointers inside are borrowed until raft_advance. At
 * most one batch is outstanding. Returns RAFT_EBUSY if a batch is outstanding. */
int raft_ready_get(raft_t *r, raft_ready_t *rd);
/* The batch handed out by raft_ready_get has been persisted, sent and applied. */
void raft_advance(raft_t *r);

/* ---- queries (no side effects) -------------------------------------------------------- */

uint64_t raft_id(const raft_t *r);
raft_role_t raft_role(const raft_t *r);
uint64_t raft_term(const raft_t *r);
uint64_t raft_leader(const raft_t *r);
uint64_t raft_commit_index(const raft_t *r);
uint64_t raft_applied_index(const raft_t *r);
uint64_t raft_last_index(const raft_t *r);
uint64_t raft_first_index(const raft_t *r); /* first index held in memory */
uint64_t raft_now(const raft_t *r);         /* ticks since raft_open */
uint64_t raft_lease_until(const raft_t *r); /* tick; 0 when no lease */
bool raft_lease_valid(const raft_t *r);     /* leader and raft_now < raft_lease_until */
/* A leader with nothing under way: every other member echoed the last round it was sent
 * before the current one and holds the whole log, all of it committed, no read waits for a
 * round, no transfer, no snapshot. What its members send it then is only the echoes of its
 * rounds, which it may read at its next round rather than as they come (node_batch.c). */
bool raft_quiet(const raft_t *r);

/* ---- sessions (config.session_ticks > 0): the basis of named elections ----------------
 * A member's session is valid while raft_now() < raft_session_until(): S = session_ticks of
 * its own ticks after it sent a heartbeat reply that a leader holding a valid lease received
 * (the leader echoes the reply's stamp; a leader's own session is renewed at each of its
 * ticks while its lease is valid). A leader declares a member's session over only when it
 * holds a valid lease and has not heard the member, with a valid lease, for
 * raft_session_expire_ticks() of its own ticks since that hearing or since it took office.
 * Why that is safe: a hearing with a valid lease happens before any later leader takes
 * office, and S ticks of the slowest clock last no longer than ceil(S(1+d)/(1-d)) ticks of
 * the fastest, so a member's session is over, in real time, before any leader — this one or
 * a later one — can declare it over (docs/guarantees.md, "Named elections"). A session ends
 * with the raft_t: a restarted member has none until a leader hears it again. */

/* ceil(S × (1 + d)/(1 − d)) + 2 (tick quantisation on both sides); 0 when sessions are off. */
uint32_t raft_session_expire_ticks(const raft_config_t *cfg);

/* Tick until which this node's own session is valid; 0 when it has none. */
uint64_t raft_session_until(const raft_t *r);

/* The commit index that came with this node's latest session renewal (it only grows). What
 * the session entitles a member to is what its state machine says once it has applied at
 * least this index. A renewal is sent only by a leader that has committed an entry of its
 * own term, and carries the part of the commit index the member holds (a member takes it only
 * when its own commit index has reached it); it is sent only once that part covers the
 * leader's term-start entry — so every command an earlier leader committed — and every index
 * the leader held the member at (raft_session_hold). So a member that has applied this far
 * has seen every committed move of its elections away from it after a session of it was
 * declared over. */
uint64_t raft_session_index(const raft_t *r);

/* Leader: renew member id's session only while it holds index and index is committed. Called
 * with the index of a command that moves elections away from a member whose session was
 * declared over, in the same step as proposing it, so that the member's next session comes
 * with that command. In force for the rest of this leader's term (it stops nothing once the
 * member holds the index, and holds again a member that loses entries it had); a lower index
 * than one already held changes nothing; no-op off the leader or for a non-member. The leader
 * itself can be held too (it may find its own session over before it renewed it in its
 * term): it then renews its own session only once index is committed. A member added while this
 * node leads is held at the log's end as it was then (it may have been removed earlier in the term,
 * with its hold). */
void raft_session_hold(raft_t *r, uint64_t id, uint64_t index);

/* Leader holding a valid lease only: true when the session of member id is provably over
 * (see above). False otherwise, also when this node cannot tell (not leader, no lease, no
 * such member, sessions off). */
bool raft_session_expired(const raft_t *r, uint64_t id);

/* Leader only: the tick from which raft_session_expired(id) turns true unless the member is
 * heard before (with a valid lease); 0 when not leader, no such member or sessions off. */
uint64_t raft_session_expires(const raft_t *r, uint64_t id);
uint64_t raft_dropped(const raft_t *r); /* invalid or unexpected messages ignored */
const raft_conf_t *raft_conf(const raft_t *r);
const raft_snapshot_meta_t *raft_snapshot(const raft_t *r);
/* Term of the entry at index; RAFT_ECOMPACTED / RAFT_EUNAVAILABLE. */
int raft_entry_term(const raft_t *r, uint64_t index, uint64_t *term);
/* Entry at index (borrowed), or NULL if not held in memory. */
const raft_entry_t *raft_entry_at(const raft_t *r, uint64_t index);

typedef struct raft_progress {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    uint64_t last_contact_tick; /* raft_now() when last heard from (leader only) */
    uint8_t voter;
    uint8_t state; /* 0 probe, 1 replicate, 2 snapshot */
} raft_progress_t;

/* Leader only: fills out[] with one row per member (self included), returns the count. */
size_t raft_progress(const raft_t *r, raft_progress_t *out, size_t cap);

/* Helpers over configurations. */
const raft_member_t *raft_conf_find(const raft_conf_t *c, uint64_t id);
uint32_t raft_conf_voters(const raft_conf_t *c);

#endif
