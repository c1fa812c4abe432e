/* chaos_check.h — the chaos harness's checkers, kept apart from the harness so that they can be fed
 * hand-made histories (test_chaos_check.c shows that each of them can fail):
 *
 *   - linearizability of a single-key register with put / compare-and-set / get, by a
 *     Wing–Gong search with Lowe's memoisation (WGL);
 *   - no acknowledged write lost: the value read after the run must come from a write that no
 *     acknowledged write strictly followed;
 *   - fencing: no write acknowledged with a token older than one already acknowledged;
 *   - primary intervals never overlap (over tests/integration/events.h), where a node that was
 *     frozen together with its workload (SIGSTOP of the whole machine, as it were) may run on
 *     for a short grace after it is thawed: that is the case DESIGN.md leaves to fencing.
 *
 * Ownership: every function borrows its arguments and keeps no pointer to them.
 */
#ifndef ELECTD_TESTS_CHAOS_CHECK_H
#define ELECTD_TESTS_CHAOS_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"

#define CHECK_VALUE_MAX    48
#define CHECK_MAX_OPS      1024    /* ops of one key that the WGL search accepts */
#define CHECK_MAX_STEPS    4000000 /* search steps before a verdict of "inconclusive" */
#define CHECK_MAX_MEMO     400000  /* memoised (linearized set, state) pairs */
#define CHECK_NEVER        UINT64_MAX
#define CHECK_FROZEN_MAX   512
#define CHECK_FROZEN_GRACE 300000000ull /* 300 ms: a thawed primary's lease watchdog fires */
/* 700 ms: a thawed hook-mode primary's on-stop has run. Less than the harness's quiet gap after
 * a heal (0.5 s) plus the 380 ms a renewed lease takes to run low again, so an on-stop for a
 * later reason is never taken for the thaw's. */
#define CHECK_HOOK_GRACE 700000000ull

typedef enum check_kind { CHECK_GET, CHECK_PUT, CHECK_CAS } check_kind_t;

typedef enum check_outcome {
    CHECK_OK,       /* a get that read `value`; a put/cas that was applied */
    CHECK_CONFLICT, /* a cas answered 409 conflict: not applied, the register held another value */
    CHECK_FAIL,     /* definitely not applied (421, 409 fenced, 400...): ignored by the search */
    CHECK_MAYBE, /* timed out / 503 / connection lost after sending: may apply at any later time */
} check_outcome_t;

typedef struct check_op {
    int client;
    check_kind_t kind;
    check_outcome_t outcome;
    uint64_t invoke_ns;
    uint64_t complete_ns;         /* CHECK_NEVER for CHECK_MAYBE */
    char value[CHECK_VALUE_MAX];  /* put/cas: the value written; get: the value read, "" = absent */
    char expect[CHECK_VALUE_MAX]; /* cas: the value the writer expected ("" = absent) */
    uint64_t fence;               /* fencing token sent with a put, 0 = none */
    bool fenced;                  /* answered 409 fenced */
} check_op_t;

typedef enum check_verdict {
    CHECK_LINEARIZABLE,
    CHECK_NOT_LINEARIZABLE,
    CHECK_INCONCLUSIVE
} check_verdict_t;

/* Searches for a linearization of ops[0..n) (one key, initially absent). Ops may be in any
 * order. More than CHECK_MAX_OPS searched ops, or CHECK_MAX_STEPS steps, is INCONCLUSIVE.
 * *steps (if not NULL) receives the number of steps taken. */
check_verdict_t check_linearizable(const check_op_t *ops, size_t n, uint64_t *steps);

/* Ops of one key; `final_value` was read by a linearizable get after every op completed or
 * was given up. Returns the number of acknowledged writes that the final value proves lost
 * (0 or 1: the newest acknowledged write that the final value contradicts), and copies the
 * lost value into lost (if not NULL, CHECK_VALUE_MAX bytes). */
int check_lost_writes(const check_op_t *ops, size_t n, const char *final_value, char *lost);

/* Fenced puts: a put acknowledged with token t although a put with token t' > t had been
 * acknowledged before it was invoked. Returns the number of such puts. */
int check_fencing(const check_op_t *ops, size_t n);

/* What the harness did to a node's processes. */
typedef enum check_lapse {
    CHECK_FROZEN_ALL,    /* electd and everything under it stopped: a frozen machine */
    CHECK_FROZEN_ELECTD, /* electd alone stopped */
    CHECK_KILLED,        /* electd killed at stop_ns (restarted at cont_ns) */
} check_lapse_t;

/* A window in which node `node` was frozen (or from its kill to its restart). */
typedef struct check_frozen {
    char node[16];
    uint64_t stop_ns;
    uint64_t cont_ns;
    check_lapse_t lapse; /* CHECK_FROZEN_ALL unless set */
} check_frozen_t;

typedef struct check_overlap_report {
    int overlaps;             /* pairs of primary intervals that overlap */
    size_t first_a, first_b;  /* the first such pair (indices into ev) */
    int frozen_tails;         /* intervals that ran on after a thaw, excused (see above) */
    uint64_t longest_tail_ns; /* how long the longest such tail ran after the thaw */
} check_overlap_report_t;

/* Overlapping primary intervals of different processes. An interval of a node that was frozen
 * with its workload (CHECK_FROZEN_ALL; other lapses are ignored here), that began before the
 * freeze and ended within CHECK_FROZEN_GRACE after the thaw, counts as ending at the freeze
 * (and as a frozen tail). */
void check_overlaps(const events_t *ev, const check_frozen_t *fr, size_t n_fr,
                    check_overlap_report_t *rep);

/* Hook-mode primaries, from the hook lines of the event file ("<ns> <node> hook-begin start
 * ...", "<ns> <node> hook-end stop [failed|killed]"; events.h): a node is primary from the
 * begin of its on-start until the end of its next on-stop, plus lease_ns when that on-stop did
 * not complete. A node killed while primary is primary until the kill (the on-stop a restart
 * runs closes nothing); one frozen while primary whose on-stop ended within CHECK_HOOK_GRACE
 * of the thaw, until the freeze (a frozen tail when the on-stop ended after the thaw). Both are
 * the limits docs/guarantees.md states for hooks: electd cannot stop what a hook started, and
 * when it last renewed its lease is not seen from outside (the lease's timing is checked where
 * the shim enforces it: supervised runs, and the simulator). Returns the number of periods; rep
 * counts overlaps of different nodes' periods, and why[] names the first one. */
size_t check_hook_overlaps(const char *text, const check_frozen_t *fr, size_t n_fr,
                           uint64_t lease_ns, check_overlap_report_t *rep, char *why, size_t cap);

#endif
