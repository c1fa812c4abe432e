/* workload_int.h — private to workload/: the controller's state and the functions its files
 * (controller.c, supervise.c, hooks.c, child.c, restarts.c, handover.c, gaveup.c,
 * procscan.c) call in one another. workload.h is the part's public interface; nothing here is
 * seen outside sidecar/workload/.
 *
 * Ownership: one sidecar_workload_t per daemon, on the loop's thread; it lives until its
 * timer and every child's handles have closed after sidecar_workload_close
 * (workload_close_done frees it). */
#ifndef ELECTD_SIDECAR_WORKLOAD_INT_H
#define ELECTD_SIDECAR_WORKLOAD_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "common.h"
#include "credential.h"
#include "lease.h"
#include "launch.h"
#include "workload.h"

#define HOOK_LINE_MAX    1024 /* bytes of one line of hook output before it is cut */
#define MAX_CRASHES_KEPT 64   /* failures remembered within --restart-window */

enum workload_mode { MODE_NONE, MODE_SUPERVISE, MODE_HOOKS, MODE_WITNESS };

/* The priority table and preemption (priority.c). */
struct workload_priorities {
    struct workload_priority {
        uint64_t id;
        uint8_t priority;
        bool preempt;
    } entries[RAFT_MAX_MEMBERS];
    size_t n;
    bool dirty;               /* a record (or the membership) changed: read the table again */
    bool stored;              /* the store holds this member's record as its settings say */
    uint64_t applied;         /* the last index applied_cb told of: a gap is a snapshot */
    uint64_t sent_ms;         /* when this member's record was last proposed */
    uint64_t preempt_to;      /* the member of higher priority seen ready, 0 = none */
    uint64_t preempt_from_ms; /* ... since when, without a break */
};

struct sidecar_workload {
    workload_cred_t cred; /* ELECTD_WORKLOAD_TOKEN (credential.c) */
    /* A named election's controller (sidecar_workload_open_election): its name (owned), and
     * what it is told instead of the node's state; NULL for the default election. */
    char *election;
    char role_key[96]; /* node-local key: the role last handed to the workload */
    sidecar_workload_owner_cb owner_cb;
    void *owner_ud;
    bool ran; /* something ran at the last evaluation: STOPPED is due once idle */
    uv_loop_t *loop;
    const sidecar_config_t *cfg;
    sidecar_node_t *node;
    enum workload_mode mode;
    sidecar_node_observer_t obs;
    sidecar_node_state_t st;
    uv_timer_t timer;
    bool timer_open;
    sidecar_workload_state_t state;
    const char *exe;      /* electd's own executable (the shim), shared by every controller */
    const char *data_dir; /* canonical --data-dir, named in every shim's command line; shared */
    uint64_t eval_ms;     /* the longest the controller waits before it looks again */
    char parent_pid[24];
    char stop_ms[24];

    /* supervise (supervise.c) */
    struct workload_child *shim;
    int ctl_fd;
    uint64_t sent_deadline_ns; /* the lease deadline the shim has */
    uint64_t sent_term;        /* the term the shim was told its deadlines belong to ('E') */

    /* hooks (hooks.c) */
    struct workload_child *hook;
    bool handed_primary;  /* on-start ran (or was attempted) and on-stop has not yet run */
    bool stop_clean;      /* the last stop completed (on-stop exited 0, or the shim exited):
                             only then may a handover say "stopped" */
    const char *told;     /* role last given to on-change; NULL = none yet */
    uint64_t told_leader; /* leader (id, 0 = none known) last given to on-change */
    bool recovering;      /* at-least-once stop after a restart as primary */

    /* restarts (restarts.c) */
    uint64_t *crashes_ms; /* MAX_CRASHES_KEPT, allocated at the first failure */
    size_t n_crashes;
    uint64_t backoff_until_ms;
    uint64_t gave_up_term;

    /* handover (operator, SIGTERM, or giving up) and shutdown: the workload stops first, the
     * transfer leaves once nothing runs here any more (handover.c) */
    bool handover;     /* do not run the workload in handover_term */
    bool handover_due; /* the transfer is still to be sent */
    uint64_t handover_term;
    uint64_t handover_target; /* 0: the most suitable member */
    sidecar_workload_handover_cb handover_cb;
    void *handover_ud;
    bool shutting_down;
    void (*stop_cb)(void *);
    void *stop_ud;
    uint64_t witness_try_ms;

    /* maintenance (restarts.c): the workload exited in this term while maintenance was on,
     * and is not started again in it until maintenance is off */
    bool maint_hold;
    uint64_t maint_hold_term;

    /* priorities (priority.c): the default election's controller only (NULL in a named
     * election's: a thousand of them need none) */
    struct workload_priorities *prio;

    int open_children;
    void (*close_cb)(void *);
    void *close_ud;

    sidecar_workload_info_t info;
};

/* A spawned process: the shim, or a hook with its output captured. */
struct workload_child {
    workload_proc_t proc;
    uv_pipe_t out[2];
    uv_timer_t timeout;
    sidecar_workload_t *w;
    int handles; /* open libuv handles; the child is freed when the last one has closed */
    bool is_hook;
    const char *name; /* hook name: "on-start", ... */
    int64_t status;   /* exit status (128+sig) once exited */
    bool exited;
    bool timed_out;
    uint64_t started_ns;
    char *line[2]; /* HOOK_LINE_MAX bytes each, allocated at the stream's first byte */
    size_t line_len[2];
    size_t logged;
};

/* Milliseconds on the boot-time clock (sidecar_clock_boot_ns). */
static inline uint64_t workload_now_ms(void)
{
    return sidecar_clock_boot_ns() / 1000000;
}

static inline uint64_t workload_stop_ns(const sidecar_workload_t *w)
{
    return (uint64_t)w->cfg->stop_timeout_ms * 1000000ull;
}

/* The start invariant (docs/guarantees.md, "The lease timeline"): the workload is handed the
 * primary role only by a leader of the current epoch whose lease outlives the stop timeout at
 * now_ns, the instant the decision to start was made. */
static inline void workload_check_may_start(const sidecar_workload_t *w, uint64_t now_ns)
{
    ELECTD_CHECK(workload_lease_outlives(&w->st, workload_stop_ns(w), now_ns));
}

/* ---- controller.c --------------------------------------------------------------------- */

/* One step towards the state wanted now, then the next wake-up. Re-entrant from callbacks
 * of the loop; does nothing once the controller is closing. */
void workload_evaluate(sidecar_workload_t *w);
void workload_set_state(sidecar_workload_t *w, sidecar_workload_state_t s);
/* Records the role last handed to the workload in the node-local store (at-least-once stop). */
void workload_persist_role(sidecar_workload_t *w, const char *role);
/* Frees w and calls its close callback once the timer and every child have closed. */
void workload_close_done(sidecar_workload_t *w);

/* ---- supervise.c: the supervised workload under the exec shim --------------------------- */

/* One step towards want, decided at now_ns (boot-time). */
void workload_supervise_step(sidecar_workload_t *w, bool want, uint64_t now_ns);
/* Closing: tells a running shim to stop and closes the control pipe. */
void workload_supervise_close(sidecar_workload_t *w);

/* ---- hooks.c: on-start / on-stop / on-change, serialized and coalesced ------------------ */

/* One step towards want, decided at now_ns (boot-time). */
void workload_hooks_step(sidecar_workload_t *w, bool want, uint64_t now_ns);
/* Runs on-change (when set) if this member's role or the leader changed since it last ran;
 * hook mode and supervise mode alike. */
void workload_on_change_step(sidecar_workload_t *w, const char *role);

/* ---- child.c: what every child gets, and its end -------------------------------------- */

/* argv for the shim running cmd (+ an optional last argument); fd_arg "-1" for a hook.
 * *cmd_at (when not NULL) gets the index where cmd begins: args + *cmd_at is the command's
 * own argv, which the spawner runs without a shim (a hook). Borrows everything; the caller
 * frees the array only. NULL when out of memory. */
char **workload_child_argv(sidecar_workload_t *w, const char *fd_arg, const sidecar_argv_t *cmd,
                           const char *last, size_t *cmd_at);
/* environ without ELECTD_* plus the ELECTD_* variables for role. Returned array and strings
 * are malloc'd (workload_strv_free); NULL when out of memory. */
char **workload_child_env(sidecar_workload_t *w, const char *role);
void workload_strv_free(char **v);
/* Closes every handle of c; c is freed (and w, when closing) once they have closed. */
void workload_child_close(struct workload_child *c);
/* An exit status as the shell shows it: 128 + signal for a signal. */
int64_t workload_exit_code(int64_t status, int sig);

/* ---- restarts.c: crash accounting ------------------------------------------------------- */

/* The workload (or on-start) failed here: back off before the next start, or give up after
 * --max-restarts failures within --restart-window. */
void workload_failure_record(sidecar_workload_t *w, const char *what);

/* ---- handover.c: leaving leadership ----------------------------------------------------- */

/* Asks for a transfer once the workload has stopped here (workload_handover_send). A
 * pending one keeps its target unless this one names a member. */
void workload_handover_arm(sidecar_workload_t *w, uint64_t target);
/* Sends the armed transfer ("stopped" only when the stop completed) and tells whoever asked. */
void workload_handover_send(sidecar_workload_t *w);
/* A witness hands leadership away as soon as it has it (trying at most once per retry_ms). */
void workload_witness_step(sidecar_workload_t *w, uint64_t retry_ms);

/* ---- gaveup.c: the replicated records of members that gave up --------------------------- */

/* The most suitable voter to hand over to: not this node, no recent record of giving up; one
 * heard within an election timeout first, then the highest priority, the most up-to-date
 * log, the lowest id. 0 when every other voter gave up recently. */
uint64_t workload_gave_up_choose(sidecar_workload_t *w);
/* Proposes the record prefix + this member's name = value (at most 256 bytes): on the leader,
 * or with forward from a follower to the leader (best effort: the caller looks for it applied
 * and retries). 0 or a RAFT_E* code. */
int workload_record_put(sidecar_workload_t *w, const char *prefix, const char *value, bool forward);
/* Replicates that this member gave up; returns how many times in a row it has. */
uint64_t workload_gave_up_publish(sidecar_workload_t *w, const char *what);

/* The best voter to hand over to whose priority is above `above` and that has --preempt
 * (any when above is 0), connected and holding everything committed; 0 when none. */
uint64_t workload_gave_up_choose_above(sidecar_workload_t *w, uint8_t above);

/* ---- priority.c: the priority table and preemption ---------------------------------------- */

/* Reads the table again when a record changed, keeps this member's record in the store, and,
 * on a leader, arms a handover to a member of higher priority that has been ready for the
 * hysteresis (not while maintenance is on). Default election only. */
void workload_priority_step(sidecar_workload_t *w);
/* Whether the controller must look again soon although nothing runs (no workload mode). */
bool workload_priority_busy(const sidecar_workload_t *w);
/* An applied entry: does it change the table? (the node's applied_cb) */
void workload_priority_applied(sidecar_workload_t *w, const raft_entry_t *e);

/* ---- procscan.c: the previous run's shims ------------------------------------------------ */

/* Waits (bounded: the stop timeout plus a margin) until no shim of a previous run of electd
 * on data_dir is left. */
void workload_procscan_wait(const char *data_dir, uint32_t stop_timeout_ms);

#endif
