/* sim_node.h — one simulated Raft node: the core plus an in-memory "disk" (hard state, log,
 * snapshot) and the test state machine, driven in the order raft.h prescribes (persist, send,
 * apply, advance). Shared by the simulator and the Raft benchmark.
 *
 * The state machine is a running 64-bit digest over the applied entries (sim_digest_next),
 * plus SIM_APP_BYTES of application state that the driver's `applied` hook keeps (the
 * simulator's named-elections table); a snapshot's data encodes (index, term, digest, app)
 * padded to SIM_SNAPSHOT_BYTES so that sending it takes several chunks. The state machine
 * lives in memory: a crash loses it, and a restart rebuilds it from the durable snapshot and
 * the core's re-delivery of committed entries.
 */
#ifndef ELECTD_SIM_NODE_H
#define ELECTD_SIM_NODE_H

#include "raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_SNAPSHOT_BYTES 200        /* size of every snapshot the sim takes */
#define SIM_SNAPSHOT_MAX   (1u << 20) /* largest snapshot a node accepts from a peer */
#define SIM_NODE_ERR_MAX   512        /* bytes of a contract-violation description */
#define SIM_APP_BYTES      64         /* application state beside the digest */

struct sim_node;

/* A storage fault on a node's disk (the simulator's disk-fault action). While one lasts, every
 * batch with something to persist fails as a whole: SIM_DISK_FULL writes nothing;
 * SIM_DISK_FSYNC reports the write failed, but it may have reached the disk anyway
 * (sim_node_t.fsync_lands, drawn per attempt), so a crash afterwards may keep it or lose it.
 * Either way the driver treats the batch as not durable: it sends nothing of it, applies
 * nothing of it, keeps it and retries it later, as the daemon does (node_batch.c). */
typedef enum sim_disk_fault { SIM_DISK_OK = 0, SIM_DISK_FULL, SIM_DISK_FSYNC } sim_disk_fault_t;

#define SIM_NODE_EDISK 1 /* sim_node_process: the persist failed; the batch is still held */

/* What the driver does with the parts of a ready batch that leave the node. */
typedef struct sim_node_hooks {
    void *ctx;
    /* m is borrowed: copy it (sim_msg_copy) to keep it. */
    void (*send)(void *ctx, struct sim_node *n, const raft_msg_t *m);
    /* after the state machine applied e; digest is the state after it. The hook keeps its
     * own state in n->app (applying e to it), which snapshots carry */
    void (*applied)(void *ctx, struct sim_node *n, const raft_entry_t *e, uint64_t digest);
    /* after a received snapshot replaced the state machine */
    void (*installed)(void *ctx, struct sim_node *n, const raft_snapshot_meta_t *meta,
                      uint64_t digest);
    void (*read)(void *ctx, struct sim_node *n, const raft_read_t *rd);
} sim_node_hooks_t;

typedef struct sim_node {
    uint64_t id;
    raft_config_t cfg;
    raft_conf_t boot_conf; /* initial configuration; n == 0 for a node that joins later */
    raft_t *r;             /* NULL while crashed */
    raft_storage_t storage;

    /* durable state ("disk") */
    raft_hard_state_t hs;
    raft_snapshot_meta_t snap;
    uint8_t *snap_data;
    uint8_t *staged; /* snapshot being received */
    uint64_t staged_len;
    size_t staged_cap;
    raft_entry_t *log; /* entries after snap.index, consecutive; data owned */
    size_t log_n, log_cap;

    /* state machine (volatile) */
    uint64_t applied;
    uint64_t digest;
    uint8_t app[SIM_APP_BYTES]; /* the hooks' state: zero at boot, saved in snapshots */

    /* the ready batch taken but not yet processed (a slow disk) */
    bool held;
    raft_ready_t rd;

    /* storage faults (sim_disk_fault_t); see above */
    int disk_fault;
    bool fsync_lands;     /* this attempt's failed write reached the disk all the same */
    bool persisted;       /* the held batch's writes are on disk (maybe through a failed fsync
                             that landed: durable only once a retry succeeds) */
    bool ack_unpersisted; /* a broken driver for tests: a failed persist is ignored and the
                             batch sent and applied as if it were durable */

    /* first contract violation seen while processing (empty = none) */
    char err[SIM_NODE_ERR_MAX];
} sim_node_t;

/* Sets up a node that has never run. boot_conf == NULL: a node that will join later. */
void sim_node_init(sim_node_t *n, const raft_config_t *cfg, const raft_conf_t *boot_conf);
/* Frees the core (if running) and the durable state. */
void sim_node_free(sim_node_t *n);

/* Starts the core from the durable state (a boot or a restart) with cfg.seed = seed. */
int sim_node_start(sim_node_t *n, uint64_t seed);
/* Crash: the core and everything not persisted (a held batch) are lost. */
void sim_node_crash(sim_node_t *n);

/* Takes the next ready batch if there is one and none is held. Returns true if taken (then
 * n->rd is the batch; call sim_node_process + sim_node_advance, or keep it held). */
bool sim_node_take(sim_node_t *n);
/* Persists, sends, applies the held batch. Returns 0, -1 if the core broke a contract (n->err
 * says how; the batch is still processed as far as possible), or SIM_NODE_EDISK if a disk
 * fault failed the persist: then nothing of the batch was sent or applied and it stays held,
 * to be processed again later (do not advance). */
int sim_node_process(sim_node_t *n, const sim_node_hooks_t *h);
/* raft_advance, then takes a snapshot if `every` entries were applied since the last one. */
int sim_node_advance(sim_node_t *n, uint64_t every, uint64_t keep);
/* Takes, processes and advances batches until the core has nothing ready. */
int sim_node_drain(sim_node_t *n, const sim_node_hooks_t *h, uint64_t every, uint64_t keep);

/* Log view over the running core (for sim_check). */
int sim_node_entry(void *ctx, uint64_t index, uint64_t *term, uint64_t *hash);

/* Deep copy of a message (entries, their data, snapshot data, conf); free with sim_msg_free. */
raft_msg_t *sim_msg_copy(const raft_msg_t *m);
void sim_msg_free(raft_msg_t *m);

/* The snapshot encoding: (index, term, digest, app) padded deterministically. decode's app
 * may be NULL. */
void sim_snapshot_encode(uint64_t index, uint64_t term, uint64_t digest,
                         const uint8_t app[SIM_APP_BYTES], uint8_t out[SIM_SNAPSHOT_BYTES]);
int sim_snapshot_decode(const uint8_t *buf, uint64_t len, uint64_t *index, uint64_t *term,
                        uint64_t *digest, uint8_t app[SIM_APP_BYTES]);

#endif
