/* named.h — the runtime of named elections (issue 12): many single-primary workloads in one
 * group, each held by one member at a time, spread over the members. The whole interface of
 * sidecar/named/.
 *
 * Where each election runs is decided by the Raft leader with the pure placement function
 * (elections.h) and recorded in the replicated elections table (store.h: ELECTION_ASSIGN,
 * whose fencing token rises with every change of holder). Every member runs, for each
 * election it declares in its config file, one workload controller (workload.h, the same
 * supervise and hook modes as the default election), which runs the workload only while this
 * member holds the election — the table says so at an applied index at least the commit index
 * of its latest session renewal (raft_session_index) — and its Raft session is valid; the
 * session's end is the workload's deadline, enforced by the exec shim's watchdog even if
 * electd freezes (docs/guarantees.md, "Named elections").
 *
 * Records in the replicated KV (reserved prefix, read-only to the API):
 *   _electd/declared/<member>   what a member declares (JSON: its elections with their prefer
 *                               and avoid lists, and --no-primary); written by the member
 *                               itself (forwarded to the leader) whenever it differs
 *   _electd/handover/<election> a graceful move under way: "<token> <to> <from> <reason>"
 *                               (to 0: the best other member); the holder stops, then writes
 *   _electd/stopped/<election>  "<token> <from>": it stopped the workload of that tenure
 *                               cleanly; the leader then assigns the election to its successor.
 * A member whose session is declared over loses its elections at once (ASSIGN with a session
 * hold, raft.h); a healthy holder is never overlapped: a move waits for its "stopped".
 */
#ifndef ELECTD_SIDECAR_NAMED_H
#define ELECTD_SIDECAR_NAMED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "node.h"
#include "store.h"
#include "workload.h"

#define SIDECAR_NAMED_DECLARED_PREFIX SIDECAR_KV_RESERVED_PREFIX "declared/"
#define SIDECAR_NAMED_HANDOVER_PREFIX SIDECAR_KV_RESERVED_PREFIX "handover/"
#define SIDECAR_NAMED_STOPPED_PREFIX  SIDECAR_KV_RESERVED_PREFIX "stopped/"

#define SIDECAR_NAMED_ERRNO_MAP(X)                                                                 \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(NOTFOUND, -2, "no such election")                                                            \
    X(NOHOLDER, -3, "the election has no holder")                                                  \
    X(TARGET, -4, "the target is not a live member that declares the election")                    \
    X(BUSY, -5, "a handover of the election is already under way")                                 \
    X(NOLEADER, -6, "no leader is known")                                                          \
    X(STORE, -7, "the store cannot be read")

enum {
#define SIDECAR_NAMED_ERR_ENUM(name, code, text) SIDECAR_NAMED_E##name = code,
    SIDECAR_NAMED_ERRNO_MAP(SIDECAR_NAMED_ERR_ENUM)
#undef SIDECAR_NAMED_ERR_ENUM
};

const char *sidecar_named_strerror(int err);

typedef struct sidecar_named sidecar_named_t;

/* One election as this member sees it: the replicated row, and this member's part. */
typedef struct sidecar_named_status {
    char name[STORE_ELECTION_NAME_MAX + 1];
    uint64_t holder;        /* 0 = nobody */
    uint64_t token;         /* 0 = never assigned */
    uint64_t since_unix_ms; /* when the holder's tenure began (its ASSIGN), 0 */
    const char *state;      /* "held", "handover" (moving: the holder stops first), "unheld" */
    uint64_t handover_to;   /* with "handover": the member it moves to, 0 = best other */
    bool declared_here;     /* this member declares it */
    sidecar_workload_state_t local; /* this member's workload of it (standby if not declared) */
    uint64_t starts;   /* times this member started its workload since electd started */
    uint64_t restarts; /* its unplanned exits and failed starts here */
    /* Failovers of it to this member (its holder dead, removed or given up; not a handover):
     * from the first record applied here that showed the holder lost to its workload's start
     * here. NULL before the first; borrowed, valid until the loop turns. */
    const sidecar_hist_t *failover;
} sidecar_named_status_t;

/* Starts the runtime: a controller per declared election, the declaration kept in the store,
 * and (while this member leads) placement. cfg and node must outlive it. -1 with a message
 * in errbuf when a controller cannot be started. With no elections declared it still runs
 * (it places the other members' elections when this member leads). */
int sidecar_named_open(sidecar_named_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                       sidecar_node_t *node, char *errbuf, size_t errlen);

/* Every election this member knows of (declared by any member, or in the table), by name;
 * returns how many were written (at most cap) and sets *total to how many there are. */
size_t sidecar_named_list(sidecar_named_t *n, sidecar_named_status_t *out, size_t cap,
                          size_t *total);

/* One election; SIDECAR_NAMED_ENOTFOUND when no member declares it and it has no row. */
int sidecar_named_get(sidecar_named_t *n, const char *name, sidecar_named_status_t *out);

/* Asks for a graceful handover of election name to member `to` (0: the best other member):
 * the holder stops its workload, then the leader assigns the election to the successor under
 * a new token. Any member may ask (the request is forwarded to the leader). Errors:
 * SIDECAR_NAMED_ENOTFOUND, _ENOHOLDER, _ETARGET (to is not a member declaring it, or is the
 * holder), _EBUSY, _ENOLEADER, _ENOMEM. */
int sidecar_named_transfer(sidecar_named_t *n, const char *name, uint64_t to);

/* True when token is the ELECTD_WORKLOAD_TOKEN of one of this member's named workloads that
 * runs (sidecar_workload_token_check); *election gets that election's name (borrowed). */
bool sidecar_named_token_check(const sidecar_named_t *n, const char *token, size_t len,
                               const char **election);

/* SIGHUP: the elections this member declares are now *list (taken: the runtime frees it).
 * Added elections get a controller at once; a removed one is handed over gracefully (its
 * workload stops, then the leader moves it, or releases it when no member declares it) and
 * its controller closes; a kept one takes its new commands and timeouts at its next start.
 * Logs what changed. */
void sidecar_named_reload(sidecar_named_t *n, sidecar_election_list_t *list);

/* Shutdown: never start again. Held elections are handed over first (each workload stops,
 * the leader assigns a successor at once instead of after the session) for at most an
 * election timeout plus the longest stop; then every workload is stopped (hooks: on-stop)
 * and cb(ud) runs. */
void sidecar_named_stop(sidecar_named_t *n, void (*cb)(void *ud), void *ud);

/* Frees the runtime; cb(ud) once every handle is closed. Call after _stop. */
void sidecar_named_close(sidecar_named_t *n, void (*cb)(void *ud), void *ud);

#endif
