/* lease.h — private to workload/: the lease timeline (docs/guarantees.md, "The lease
 * timeline") as pure arithmetic. Nothing here reads a clock, does I/O or touches libuv: every
 * function is given the node's state, the settings and "now" on the boot-time clock
 * (sidecar_clock_boot_ns), so that tests/sidecar/test_lease.c can check each rule at the
 * nanosecond where it turns.
 *
 *   t_r ─────────── workload may run ───────────┤ stop point ├── stopping ──┤ lease deadline
 *                                               deadline − stop_ns            killed by here
 *
 * The controller (controller.c, supervise.c, hooks.c) decides with workload_lease_want_primary
 * and wakes up at the stop point (workload_lease_wake_ms); the shim (shim.c) enforces the same
 * timeline on its own with a workload_watchdog_t, even when electd is frozen or dead. */
#ifndef ELECTD_SIDECAR_WORKLOAD_LEASE_H
#define ELECTD_SIDECAR_WORKLOAD_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "node.h" /* sidecar_node_state_t (a plain struct) */

/* ---- the controller's side ------------------------------------------------------------- */

/* What the controller holds against running the workload here, besides the lease. */
typedef struct workload_lease_holds {
    bool shutting_down;        /* sidecar_workload_stop was called: never start again */
    bool recovering;           /* on-stop is still owed to a run that died as primary */
    bool handover;             /* a handover is under way in handover_term */
    uint64_t handover_term;    /* with handover: the term it began in */
    uint64_t gave_up_term;     /* this member gave up in that term; 0: never */
    uint64_t backoff_until_ms; /* boot-time ms: nothing starts before (crash backoff) */
} workload_lease_holds_t;

/* True when this node may run the workload at now_ns by its lease alone: it leads, the
 * term-start entry of its term has applied (the fencing token is the current epoch), and the
 * lease still outlives the stop timeout: now_ns + stop_ns < lease deadline. */
bool workload_lease_outlives(const sidecar_node_state_t *st, uint64_t stop_ns, uint64_t now_ns);

/* True when the workload should run here at now_ns: the lease outlives the stop timeout
 * (workload_lease_outlives) and nothing in holds forbids it. When this turns false for a
 * running workload, stopping begins. */
bool workload_lease_want_primary(const sidecar_node_state_t *st, const workload_lease_holds_t *h,
                                 uint64_t stop_ns, uint64_t now_ns);

/* The stop point of the current lease: lease deadline − stop_ns (0 without a lease, or when
 * the lease is shorter than the stop timeout). */
uint64_t workload_lease_stop_at_ns(const sidecar_node_state_t *st, uint64_t stop_ns);

/* Milliseconds until the controller must look again: at most max_ms; for a running primary
 * (primary) no later than the stop point; no later than the end of the backoff. Never 0 (a
 * 0 ms libuv timer re-armed from its own callback starves the loop). */
uint64_t workload_lease_wake_ms(const sidecar_node_state_t *st, bool primary, uint64_t stop_ns,
                                uint64_t backoff_until_ms, uint64_t now_ns, uint64_t max_ms);

/* The deadline to hand to a running shim: the lease deadline when it is later than what the
 * shim has (sent_ns, 0 for none), else 0 (nothing to send). It never exceeds the lease. */
uint64_t workload_lease_renewal_ns(const sidecar_node_state_t *st, uint64_t sent_ns);

/* ---- the shim's side (the lease watchdog) ---------------------------------------------- */

/* The watchdog's state: SIGTERM to the group when the remaining lease drops to stop_ns
 * (or at once when electd is gone or asks), SIGKILL stop_ns after SIGTERM, and in any case
 * at the lease deadline. */
typedef struct workload_watchdog {
    uint64_t deadline_ns; /* the lease deadline last sent; UINT64_MAX: none to watch */
    uint64_t stop_ns;     /* STOP_MS */
    uint64_t kill_at_ns;  /* SIGKILL at the latest here once stopping began; 0 before */
    bool watch;           /* a lease to watch (false for a hook) */
    bool termed;          /* SIGTERM was sent */
} workload_watchdog_t;

/* A watchdog for a supervised workload (watch) or a hook (no lease: deadline never). */
void workload_watchdog_init(workload_watchdog_t *d, bool watch, uint64_t stop_ns);

/* A renewal from electd: the new deadline counts until stopping has begun. */
void workload_watchdog_renew(workload_watchdog_t *d, uint64_t deadline_ns);

/* True when the group must get SIGTERM at now_ns: not yet sent, and electd is gone (gone) or
 * the remaining lease is down to the stop timeout. */
bool workload_watchdog_term_due(const workload_watchdog_t *d, bool gone, uint64_t now_ns);

/* SIGTERM was sent at now_ns: SIGKILL follows stop_ns later (or at the deadline). */
void workload_watchdog_termed(workload_watchdog_t *d, uint64_t now_ns);

/* When the group gets SIGKILL: the earlier of the stop timeout after SIGTERM and the lease
 * deadline. Never after the lease deadline. */
uint64_t workload_watchdog_kill_ns(const workload_watchdog_t *d);

/* How long the shim may sleep in poll() at now_ns: until the next point of the timeline
 * (+1 ms, so that it wakes past it), at most max_ms (it also notices SIGCHLD and electd's
 * death by waking). */
int workload_watchdog_wait_ms(const workload_watchdog_t *d, uint64_t now_ns, int max_ms);

#endif
