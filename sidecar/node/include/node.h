/* node.h — the Raft driver: runs the pure core on the libuv loop with the SQLite store and the
 * peer transport, and publishes what happens to the rest of the daemon.
 *
 * Per batch the driver keeps the core's order: persist (one store transaction, fsync) ->
 * send -> apply -> advance. If persisting or applying fails (disk full, I/O error) nothing
 * more is sent and the batch is retried every 100 ms until it goes through: the member then
 * grants no vote and wins no election, a leader falls silent (the healthy members elect
 * another), and the published state says store_ok = false with no lease, so the workload
 * stops and the API refuses what needs the store (503 store_failed).
 * Ticks come from the boot-time clock (CLOCK_BOOTTIME, sidecar_clock_boot_ns(): it counts
 * time the host spent suspended): after a stall or a suspend every missed tick is delivered
 * first, so the core's time never runs behind real time by more than one tick.
 *
 * Observers (the workload controller, the HTTP API) subscribe with sidecar_node_observe();
 * callbacks run on the loop thread after the batch that caused them was persisted.
 */
#ifndef ELECTD_SIDECAR_NODE_H
#define ELECTD_SIDECAR_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "raft.h"
#include "store.h"

typedef struct sidecar_transport sidecar_transport_t; /* node/transport.c */

#define SIDECAR_NODE_ERRNO_MAP(X)                                                                  \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(STORE, -2, "storage failure")                                                                \
    X(TRANSPORT, -3, "peer transport failure")                                                     \
    X(CONFIG, -4, "invalid configuration")                                                         \
    X(RAFT, -5, "raft core refused the state on disk")                                             \
    X(STOPPING, -6, "node is shutting down")

enum {
#define SIDECAR_NODE_ERR_ENUM(name, code, text) SIDECAR_NODE_E##name = code,
    SIDECAR_NODE_ERRNO_MAP(SIDECAR_NODE_ERR_ENUM)
#undef SIDECAR_NODE_ERR_ENUM
};

const char *sidecar_node_strerror(int err);

typedef struct sidecar_node sidecar_node_t;

/* The node as the rest of the daemon sees it. */
typedef struct sidecar_node_state {
    raft_role_t role;
    uint64_t term;
    uint64_t leader;            /* 0 = unknown */
    uint64_t lease_deadline_ns; /* boot-time ns (sidecar_clock_boot_ns) before which this
                                   leader's lease holds; 0 */
    uint64_t commit;
    uint64_t applied;
    uint64_t epoch;        /* fencing token: the term whose term-start entry applied last */
    bool transfer_stopped; /* became leader via a handover whose sender had stopped */
    bool store_ok;         /* false while a batch that failed to persist/apply is retried
                              (role, leader and term are then the core's, lease none) */
} sidecar_node_state_t;

typedef struct sidecar_node_observer {
    /* Role, leader, term, lease or epoch changed. */
    void (*changed_cb)(void *ud, const sidecar_node_state_t *st);
    /* A committed entry was applied (res: what the state machine did). */
    void (*applied_cb)(void *ud, const raft_entry_t *e, const store_result_t *res);
    /* A ReadIndex request completed; index 0 = failed (leadership lost). */
    void (*read_cb)(void *ud, uint64_t ctx, uint64_t index);
    void *ud;
    struct sidecar_node_observer *next; /* owned by the node's list */
} sidecar_node_observer_t;

/* Opens the store, loads the core, starts the transport and the tick timer. errbuf gets one
 * line saying what failed (e.g. the store's refusal message). cfg must outlive the node. */
int sidecar_node_open(sidecar_node_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                      char *errbuf, size_t errlen);

/* Adds an observer (obs is borrowed and must outlive the node, or be removed). */
void sidecar_node_observe(sidecar_node_t *n, sidecar_node_observer_t *obs);
void sidecar_node_unobserve(sidecar_node_t *n, sidecar_node_observer_t *obs);

void sidecar_node_state(const sidecar_node_t *n, sidecar_node_state_t *out);

/* Wrappers over the core. The batch a call causes runs on the loop after the call returns
 * (after this turn's input), never inside it: a caller, even one inside an observer callback
 * (the workload controller), is not called back before it returns. Errors: RAFT_E*. */
int sidecar_node_propose(sidecar_node_t *n, const void *data, size_t len, uint64_t *index);
/* Proposes on the leader (*index = the index it will have), or forwards to the leader this
 * follower knows (*index = 0; raft_forward: best effort, the caller watches for the effect and
 * retries). */
int sidecar_node_forward(sidecar_node_t *n, const void *data, size_t len, uint64_t *index);
int sidecar_node_read_index(sidecar_node_t *n, uint64_t ctx);
int sidecar_node_transfer(sidecar_node_t *n, uint64_t target, uint8_t flags);
/* A member's priority, which orders the followers' candidacy (raft_set_priority). */
int sidecar_node_set_priority(sidecar_node_t *n, uint64_t id, uint8_t priority);
int sidecar_node_propose_conf(sidecar_node_t *n, raft_conf_op_t op, uint64_t id, const char *addr,
                              uint64_t *index);

/* Read-only access for status reporting. The core is first brought up to the present tick
 * (it may sleep between the ticks it has work at), so leases, sessions and last contact
 * read through it are current. */
const raft_t *sidecar_node_raft(sidecar_node_t *n);
store_t *sidecar_node_store(sidecar_node_t *n);
uint64_t sidecar_node_id(const sidecar_node_t *n);
const char *sidecar_node_name(const sidecar_node_t *n);
/* "name=host:port" of a member (borrowed), NULL if unknown. This is how members are kept in
 * the Raft configuration (the core treats it as opaque). */
const char *sidecar_node_member_addr(const sidecar_node_t *n, uint64_t id);

/* Splits a member address "name=host:port": the name into name[name_size], *peer = the
 * "host:port" part (borrowed from addr). Returns 0, or -1 when addr is NULL, has no '=', or
 * the name does not fit. */
int sidecar_member_split(const char *addr, char *name, size_t name_size, const char **peer);

/* A member's name into buf; its id in hex when it is not in the configuration, "none" for 0. */
void sidecar_node_member_name(const sidecar_node_t *n, uint64_t id, char *buf, size_t len);
/* True when this member knows it was removed from the group: its configuration in force
 * lacks it, or a majority of that configuration's voters refuse it as a stranger (a removed
 * follower never applies its own removal). It then logs, once, that it was removed. */
bool sidecar_node_removed(const sidecar_node_t *n);
/* A member's advertised HTTP address "host:port" (borrowed), NULL if not known yet: learned
 * when that member dialled us (every leader dials every follower). */
const char *sidecar_node_member_http(const sidecar_node_t *n, uint64_t id);
/* The transport (for peer statistics, below). */
sidecar_transport_t *sidecar_node_transport(sidecar_node_t *n);
/* Boot-time ns of a core tick: what lease deadlines are computed with. */
uint64_t sidecar_node_tick_ns(const sidecar_node_t *n, uint64_t tick);
/* This member's own session (raft.h, "sessions"): until when it is valid (boot-time ns, 0 =
 * none) and the commit index that came with its latest renewal (raft_session_index). */
void sidecar_node_session(sidecar_node_t *n, uint64_t *until_ns, uint64_t *index);
/* How long after a member was last heard (or a leader took office) its session is provably
 * over: raft_session_expire_ticks() in ms. */
uint64_t sidecar_node_session_expire_ms(const sidecar_node_t *n);
/* Leader: when member id's session will be provably over unless it is heard before
 * (raft_session_expires), boot-time ns; 0 when not leader or no such member. */
uint64_t sidecar_node_session_expires_ns(sidecar_node_t *n, uint64_t id);
/* Leader: renew member id's session only once it holds index, committed (raft_session_hold). */
void sidecar_node_session_hold(sidecar_node_t *n, uint64_t id, uint64_t index);

/* Stops ticking, closes the transport and the store; cb(ud) once every handle is closed and
 * n is freed. Graceful handover is the caller's job (see main.c) before this. */
void sidecar_node_close(sidecar_node_t *n, void (*cb)(void *ud), void *ud);

/* ---- the peer transport, as the rest of the daemon sees it (node/transport.c) ---------- */

#define SIDECAR_TRANSPORT_HOST_MAX     256
#define SIDECAR_TRANSPORT_NAME_MAX     64
#define SIDECAR_TRANSPORT_INSTANCE_LEN 16
#define SIDECAR_TRANSPORT_REFUSED_MAX  8 /* impostors remembered for /v1/status */

/* A refused second process under a member's name (the newest SIDECAR_TRANSPORT_REFUSED_MAX). */
typedef struct sidecar_transport_refusal {
    uint64_t id;
    char name[SIDECAR_TRANSPORT_NAME_MAX];
    char remote[64];                             /* the connection's source address, "ip:port" */
    char advertised[SIDECAR_TRANSPORT_HOST_MAX]; /* "<http> <peer>" it claimed */
    char instance[2 * SIDECAR_TRANSPORT_INSTANCE_LEN + 1]; /* hex */
    uint64_t first_unix_ms, last_unix_ms;
    uint64_t count;
} sidecar_transport_refusal_t;

size_t sidecar_transport_refused(const sidecar_transport_t *t, sidecar_transport_refusal_t *out,
                                 size_t cap);

/* Handshakes and frames dropped because the sender is not a member (nor lingering, nor
 * admitted while joining). */
uint64_t sidecar_transport_unknown_dropped(const sidecar_transport_t *t);

typedef struct sidecar_transport_peer_stats {
    uint64_t id;
    bool connected;      /* outbound connection handshaken */
    uint64_t sent;       /* frames written */
    uint64_t dropped;    /* frames dropped (not connected / queue full) */
    uint64_t connects;   /* successful handshakes */
    uint64_t failures;   /* failed dials or handshakes */
    size_t queued_bytes; /* bytes waiting in the kernel-bound queue */
    /* Why the peer's last answer to our handshake refused us (static text, as the peer
     * words it: "peer belongs to another cluster" means us); NULL once it admitted us. */
    const char *refused_us;
} sidecar_transport_peer_stats_t;

/* One row per peer; returns the number written. */
size_t sidecar_transport_stats(const sidecar_transport_t *t, sidecar_transport_peer_stats_t *out,
                               size_t cap);

/* Inbound frames refused or connections dropped for bad input (handshake failures, frames
 * that do not decode, strangers, impostors) since start. */
uint64_t sidecar_transport_rejected(const sidecar_transport_t *t);

/* Peer connections (either direction) this member refused at the TLS layer since start: a
 * certificate that does not chain to the trusted CA, or does not name the member, none, or
 * plaintext on a TLS connection. */
uint64_t sidecar_transport_tls_refused(const sidecar_transport_t *t);

/* ---- the released-lease notice (node/transport_notice.c; docs/guarantees.md, "Released
 * lease on process death") ---------------------------------------------------------------- */

/* The notice kit's file name in the data directory: what the shim needs to speak as this
 * member (mode 0600: it holds the cluster token). The transport keeps it current. */
#define SIDECAR_NOTICE_KIT "notice-kit"
#define SIDECAR_NOTICE_MS  1000 /* the shim's whole budget for the notice */

/* Released-lease notices received from peers since start, whatever the core made of them
 * (it ignores one that does not name the leader it follows in its term). */
uint64_t sidecar_node_released_notices(const sidecar_node_t *n);
/* Ticks at which this node, a quiet leader, read its members' answers to the previous round
 * together with the round it then sent (node_batch.c, hold_update). */
uint64_t sidecar_node_quiet_rounds(const sidecar_node_t *n);
/* ... of which sent to one of two followers, in turn (raft_set_rotation). */
uint64_t sidecar_node_rounds_in_turn(const sidecar_node_t *n);

/* One line of outcome, for the shim's log. */
typedef void (*sidecar_notice_say_fn)(const char *line);

/* In the shim, after electd died and the workload's process group is confirmed gone: tells
 * every member in the kit at kit_path that this member's lease of `term` is released (a
 * RAFT_MSG_RELEASED message, over the member's own handshake and, when configured, peer TLS),
 * each member from its own forked process, all within budget_ms (+ one connect timeout).
 * say() gets one line per member. Returns how many members took it, or -1 when the kit is
 * missing or unusable (said too). Blocking; no libuv. */
int sidecar_notice_send(const char *kit_path, uint64_t term, uint32_t budget_ms,
                        sidecar_notice_say_fn say);

#endif
