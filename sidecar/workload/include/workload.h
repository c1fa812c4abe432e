/* workload.h — workload control: runs the workload as primary only where this node leads
 * and holds a valid lease, and stops it everywhere else.
 *
 * Modes (one per node): supervise (--exec: the workload runs under the exec shim, which
 * enforces the lease even if electd freezes), hooks (--on-start / --on-stop / --on-change:
 * commands run in order, never two at once, each bounded by --hook-timeout), witness
 * (--witness: never runs anything and hands leadership away at once), or none.
 *
 * The lease timeline (docs/guarantees.md): the workload may run only while
 *   role == leader, the term-start entry of this term has applied (the fencing token is
 *   the current epoch), and now < lease deadline - stop timeout.
 * When that stops holding, stopping begins; the shim kills the workload by the deadline.
 */
#ifndef ELECTD_SIDECAR_WORKLOAD_H
#define ELECTD_SIDECAR_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "common.h"
#include "node.h"

typedef struct sidecar_workload sidecar_workload_t;

/* What the workload is doing, as /v1/status shows it. */
typedef enum sidecar_workload_state {
    SIDECAR_WORKLOAD_STANDBY = 0,  /* not running here */
    SIDECAR_WORKLOAD_STARTING = 1, /* on-start hook running */
    SIDECAR_WORKLOAD_PRIMARY = 2,  /* running as primary */
    SIDECAR_WORKLOAD_STOPPING = 3, /* being stopped */
} sidecar_workload_state_t;

const char *sidecar_workload_state_name(sidecar_workload_state_t s);

typedef struct sidecar_workload_info {
    sidecar_workload_state_t state;
    const char *mode;            /* "supervise", "hooks", "witness", "none" */
    int pid;                     /* supervised workload's shim pid, or running hook pid; 0 */
    uint64_t restarts;           /* unplanned exits / failed starts since electd started */
    int last_exit;               /* last exit status (128+sig for signals); -1 none */
    uint64_t hooks_run;          /* hook invocations */
    uint64_t hooks_failed;       /* non-zero exits and timeouts */
    uint64_t started_ms;         /* uv_now when the current primary period began, 0 */
    uint64_t starts;             /* times the workload was started (or on-start run) here */
    uint64_t gave_up;            /* times this member gave up and handed leadership on */
    bool maintenance_hold;       /* the workload exited during maintenance and is held back */
    sidecar_hist_t hook_seconds; /* how long hooks ran */
} sidecar_workload_info_t;

/* electd's own records in the replicated KV live under this prefix: the API refuses every
 * write and delete there (403 reserved_key), whoever asks; reads and listings stay open. */
#define SIDECAR_KV_RESERVED_PREFIX "_electd/"

/* Members that gave up on the workload recently (after --max-restarts failures within
 * --restart-window), from the replicated store: every member sees the same list. Leaders
 * hand over to members not on it; entries decay after two restart windows. The records live
 * in the KV under this prefix. */
#define SIDECAR_WORKLOAD_GAVE_UP_PREFIX SIDECAR_KV_RESERVED_PREFIX "gave_up/"
typedef struct sidecar_workload_gave_up {
    char member[64];
    char reason[32]; /* what failed: "exit", "on-start", "spawn", ... */
    int status;      /* the last exit status then (128+sig), -1 unknown */
    uint64_t ago_ms; /* by the wall clock of whoever gave up and this node's */
    uint64_t count;  /* give-ups in a row (each within the decay of the previous) */
} sidecar_workload_gave_up_t;

/* Fills out[cap] with the recent records; returns how many. */
size_t sidecar_workload_gave_up(sidecar_workload_t *w, sidecar_workload_gave_up_t *out, size_t cap);

/* ---- maintenance mode (maintenance.c; docs/operations.md, "Maintenance mode") -------------
 * One record in the replicated KV, written through the Raft log by POST /v1/maintenance (on
 * the leader; a follower forwards or redirects like any write), so every member sees the
 * same, and a restarted member finds it in its store: {"enabled":B,"reason":S,"since_ms":T}
 * (T: the leader's wall clock when it was turned on or off). While it is on, electd moves
 * nothing by itself that safety does not need: a workload that exits is not restarted (and
 * so never gives up), no member preempts by priority, named elections are not rebalanced,
 * and the API refuses voluntary transfers (409 maintenance). What it does not freeze: the
 * lease (a leader that loses it stops its workload), failover (a dead or cut-off leader is
 * replaced, and the new leader starts its workload; a dead holder's named elections move),
 * a member stopping (SIGTERM still hands over first) and a witness handing leadership away.
 * An older member does not know the key: it keeps to its old behaviour, which is safe. */
#define SIDECAR_MAINTENANCE_KEY        SIDECAR_KV_RESERVED_PREFIX "maintenance"
#define SIDECAR_MAINTENANCE_REASON_MAX 256 /* bytes of the reason */
typedef struct sidecar_maintenance {
    bool enabled;
    uint64_t since_ms; /* wall-clock ms it was last turned on or off; 0 = never */
    char reason[SIDECAR_MAINTENANCE_REASON_MAX + 1];
} sidecar_maintenance_t;

/* The record at this member's applied index into *out. Off (and 0) when there is none; a
 * value that does not parse reads as off (maintenance only ever holds things back, so an
 * unreadable record must not freeze the group) and returns STORE_EINVAL; a store error is
 * returned as it is (out off). */
int sidecar_maintenance_get(sidecar_node_t *node, sidecar_maintenance_t *out);
bool sidecar_maintenance_on(sidecar_node_t *node);
/* The record's JSON text for m into buf[cap]; its length, or -1 when it does not fit. */
int sidecar_maintenance_encode(const sidecar_maintenance_t *m, char *buf, size_t cap);

/* ---- priorities (priority.c; docs/operations.md, "Priorities") ---------------------------
 * Each member keeps its --priority and --preempt in the replicated KV under this prefix
 * (+ its name; {"priority":N,"preempt":B}), written by itself through the leader whenever
 * the store does not say what its settings say (no record reads as the defaults, so a member
 * with default settings writes none). Every member hands the table to its Raft core
 * (the order in which followers stand); the leader hands leadership, by graceful handover, to
 * a voter of higher priority that has been connected and caught up for 4 election timeouts
 * and has --preempt (any such voter when the leader's priority is 0; then at once when its
 * workload has not started yet). A member without a record (an older version) counts as
 * RAFT_PRIORITY_DEFAULT with preempt. */
#define SIDECAR_PRIORITY_PREFIX SIDECAR_KV_RESERVED_PREFIX "priority/"

/* A member's priority and preempt setting as the replicated table says (defaults without a
 * record). */
void sidecar_workload_priority(const sidecar_workload_t *w, uint64_t id, uint8_t *priority,
                               bool *preempt);

/* Starts the controller (the shim is electd's own executable, found with uv_exepath; -1 and
 * a message in errbuf when it cannot be). Before anything else, a node that died as primary
 * runs its on-stop hook (at-least-once stop). */
int sidecar_workload_open(sidecar_workload_t **out, uv_loop_t *loop, const sidecar_config_t *cfg,
                          sidecar_node_t *node, char *errbuf, size_t errlen);

void sidecar_workload_info(const sidecar_workload_t *w, sidecar_workload_info_t *out);

/* ---- a named election's controller (sidecar/named/ drives it) ----------------------------
 * The same controller and modes, told its right to run by its owner instead of following the
 * node: it runs the workload only while the tenure says it holds the election, and until its
 * deadline less the stop timeout; the shim's watchdog enforces the deadline. Its workload
 * and hooks get ELECTD_ELECTION=<name>, ELECTD_FENCING_TOKEN=<the election's token>,
 * ELECTD_LEADER_NAME = the holder. No leadership transfer, no give-up record: when it keeps
 * failing (more than max-restarts within --restart-window) it backs off and tells its owner
 * (SIDECAR_WORKLOAD_GAVE_UP) so that the election can move; once what it ran has stopped, it
 * tells its owner too (SIDECAR_WORKLOAD_STOPPED: a handover may complete). */
typedef struct sidecar_workload_tenure {
    bool holds;           /* this member holds the election now (its owner's verdict) */
    uint64_t token;       /* the election's fencing token (0: never assigned) */
    uint64_t holder;      /* its holder's id, 0 = none */
    uint64_t deadline_ns; /* with holds: boot-time ns (sidecar_clock_boot_ns) the right ends */
} sidecar_workload_tenure_t;

typedef enum sidecar_workload_news {
    SIDECAR_WORKLOAD_GAVE_UP, /* keeps failing: backs off, the election should move */
    SIDECAR_WORKLOAD_STOPPED, /* nothing of it runs here any more (after something did) */
} sidecar_workload_news_t;

/* Called from the loop (never from inside sidecar_workload_set_tenure's own work before it
 * returns, except with STOPPED when nothing was left to stop). */
typedef void (*sidecar_workload_owner_cb)(void *ud, sidecar_workload_t *w,
                                          sidecar_workload_news_t news);

/* Opens the controller of election `election` (copied) with cfg (the daemon's settings with
 * the election's exec or hooks and timeouts; borrowed, must outlive it). It holds nothing
 * until told. A previous run's role is recovered as for the default election (at-least-once
 * on-stop), under a key of its own. owner_cb may be NULL. */
int sidecar_workload_open_election(sidecar_workload_t **out, uv_loop_t *loop,
                                   const sidecar_config_t *cfg, const char *election,
                                   sidecar_node_t *node, sidecar_workload_owner_cb owner_cb,
                                   void *ud, char *errbuf, size_t errlen);

/* Tells a named election's controller its tenure now; it acts at once (not reentrant into
 * the caller: no callback runs before it returns, except through the loop later). */
void sidecar_workload_set_tenure(sidecar_workload_t *w, const sidecar_workload_tenure_t *t);

/* Many hook-mode controllers about to be told they hold their elections: their role
 * "primary" — durable before on-start runs, so that a crash leads to on-stop at the next start
 * — is written for all of them in one transaction (one fsync instead of one each); each then
 * finds it written. 0 or a STORE_E* code (then each writes its own, as without this call). */
int sidecar_workload_persist_primary(sidecar_workload_t *const *ws, size_t n);

/* True when nothing of the workload runs here (standby, no shim, no hook); *clean: the last
 * stop completed cleanly (the shim exited, or on-stop exited 0). */
bool sidecar_workload_idle(const sidecar_workload_t *w, bool *clean);

/* Graceful handover: stop the workload here, then transfer leadership (to `target`, 0 =
 * the most up-to-date voter) with the "stopped" flag. cb(ud, rv) once the transfer was
 * started (rv 0) or could not be (a RAFT_E* code). */
typedef void (*sidecar_workload_handover_cb)(void *ud, int rv);
int sidecar_workload_handover(sidecar_workload_t *w, uint64_t target,
                              sidecar_workload_handover_cb cb, void *ud);

/* Shutdown: never start again; stop what runs (hooks: on-stop), then cb(ud). */
void sidecar_workload_stop(sidecar_workload_t *w, void (*cb)(void *ud), void *ud);

/* Frees the controller; every handle is closed when cb(ud) runs. Call after _stop. */
void sidecar_workload_close(sidecar_workload_t *w, void (*cb)(void *ud), void *ud);

/* ---- the workload's credential (credential.c) -------------------------------------------
 * The operator's --http-token is kept out of the workload's environment; the workload and
 * its hooks get ELECTD_WORKLOAD_TOKEN instead: SIDECAR_WORKLOAD_TOKEN_BYTES random bytes
 * (getrandom) in hex, drawn afresh at every start of the workload. With --http-token set the
 * API accepts it only while the workload runs on this node (starting, primary or stopping),
 * and only for KV writes, which must then carry a fence; anything else it asks for is 403
 * (docs/api.md). */

#define SIDECAR_WORKLOAD_TOKEN_BYTES 16

/* True when token (len bytes) is the current workload token and the workload runs here
 * (not standby). Constant time in the token's bytes. */
bool sidecar_workload_token_check(const sidecar_workload_t *w, const char *token, size_t len);

/* ---- the exec shim (shim.c): electd's own binary in a hidden mode ---------------------- */

#define SIDECAR_SHIM_ARG "__shim" /* argv[1] that selects the shim */

/* Entry point of the hidden mode: argv as for main(). Never returns to the caller's
 * normal path (returns the exit status). */
int sidecar_shim_main(int argc, char **argv);

/* The resident process that starts shims by cloning itself (spawner.c): electd executes it
 * once, as `electd __spawner PARENT DATA_DIR PAD`. Returns its exit status. */
#define SIDECAR_SPAWNER_ARG "__spawner"
int sidecar_spawner_main(int argc, char **argv);

#endif
