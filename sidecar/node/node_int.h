/* node_int.h — private to the Raft driver's files (node*.c): the node object and what they
 * call of one another.
 *
 *   node.c           the interface: requests to the core, observers, read-only accessors
 *   node_batch.c     the batch loop: persist -> send -> apply -> advance, published state
 *   node_members.c   the configuration told to the transport; learners promoted
 *   node_compact.c   snapshots and log compaction
 *   node_identity.c  this data directory's instance id; the members' pinned ids
 *   node_start.c     start (store and core, identity, transport, timers) and close
 */
#ifndef ELECTD_SIDECAR_NODE_INT_H
#define ELECTD_SIDECAR_NODE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "transport.h"

struct sidecar_node {
    uv_loop_t *loop;
    const sidecar_config_t *cfg;
    uint64_t id;
    store_t *store;
    raft_t *raft;
    sidecar_transport_t *transport;
    uv_timer_t ticker;
    uv_check_t check; /* runs the batch once per loop turn, after all input was stepped */
    uv_idle_t idle;   /* keeps that turn's poll from sleeping while a batch is scheduled */
    uint64_t start_ns;
    uint64_t tick_ns;
    uint64_t session_expire_ms; /* raft_session_expire_ticks in ms */
    char http_addr[300];        /* --advertise-http as host:port */
    char peer_addr[300];        /* where peers can dial us, "" when unknown */
    raft_conf_t boot_conf;
    raft_conf_t synced_conf; /* membership the transport was last told about */
    bool removed;            /* peers refuse us as a stranger (node_members.c) */
    bool removed_logged;     /* this member's removal has been logged */
    uint8_t instance[SIDECAR_TRANSPORT_INSTANCE_LEN];
    sidecar_transport_pin_t pins[RAFT_MAX_MEMBERS]; /* loaded at start, given to the transport */
    size_t n_pins;
    sidecar_node_observer_t *observers;
    sidecar_node_state_t state;
    bool batch_out;
    bool persisted;
    bool sent_early; /* the leader's appends of this batch already left */
    raft_ready_t rd;
    store_result_t *results;
    size_t cap_results;
    bool in_process;
    bool batch_failing;        /* the batch out failed to persist or apply: being retried */
    uint64_t failing_since_ns; /* when it first failed */
    uint64_t retry_at_ns;      /* not before */
    uint64_t store_fail_logged_ns;
    uint64_t compact_retry_at;
    uint64_t released_notices; /* RAFT_MSG_RELEASED received (sidecar_node_released_notices) */
    bool holding;              /* the members' connections are not read until the next tick */
    uint64_t quiet_rounds;     /* ticks at which a holding leader drained them */
    uint64_t stirred_ns;       /* uv_hrtime() of the last peer message other than an echo */
    bool closing;
    int open_handles;
    void (*close_cb)(void *);
    void *close_ud;
};

/* ---- node_batch.c ---- */

/* Runs every ready batch now (not re-entrantly: a call from inside one does nothing, the
 * running loop picks up what it caused). */
void node_process(sidecar_node_t *n);
/* Runs the batch loop on this loop turn's check phase, after the input already read. */
void node_schedule(sidecar_node_t *n);
/* Delivers every tick the boot-time clock has passed (none from inside the batch loop, which
 * did so when it began); schedules the batch if they made the core ready. Called before
 * anything reaches the core: a message, a request, a read of its time-dependent state. */
void node_clock(sidecar_node_t *n);
/* The tick timer, armed for the next tick due (raft_tick_due): the ticks, then the batch. */
void node_tick_cb(uv_timer_t *h);
/* The transport's receive callback: steps the core with a peer's message. */
void node_recv_cb(void *ud, const raft_msg_t *m);
/* Logs a store failure, at most once a second while it lasts. */
void node_store_failed(sidecar_node_t *n, const char *what, int rv);

/* ---- node_members.c ---- */

/* Tells the transport about every member of the configuration in force. */
void node_peers_sync(sidecar_node_t *n);
/* Leader: promotes one learner that has caught up with the commit index. */
void node_learner_promote(sidecar_node_t *n);

/* ---- node_compact.c ---- */

/* Snapshots the state machine and drops the log below it once enough entries applied. */
void node_compact(sidecar_node_t *n);

/* ---- node_identity.c ---- */

/* Loads (creating it at the first start) this data directory's instance id, and the pinned
 * instance ids of the members into n->pins. errbuf says what failed; SIDECAR_NODE_ESTORE. */
int node_identity_load(sidecar_node_t *n, char *errbuf, size_t errlen);
/* Persists the transport's pins of the members; a failure is logged. */
void node_pins_save(sidecar_node_t *n);
/* The transport's pinned_cb (ud is the node). */
void node_pinned_cb(void *ud);

#endif
