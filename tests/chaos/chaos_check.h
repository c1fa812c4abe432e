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
#define CHECK_FROZEN_MAX   64
#define CHECK_FROZEN_GRACE 300000000ull /* 300 ms: a thawed primary's lease watchdog fires */

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

/* A window in which node `node` was frozen with its workload. */
typedef struct check_frozen {
    char node[16];
    uint64_t stop_ns;
    uint64_t cont_ns;
} check_frozen_t;

typedef struct check_overlap_report {
    int overlaps;             /* pairs of primary intervals that overlap */
    size_t first_a, first_b;  /* the first such pair (indices into ev) */
    int frozen_tails;         /* intervals that ran on after a thaw, excused (see above) */
    uint64_t longest_tail_ns; /* how long the longest such tail ran after the thaw */
} check_overlap_report_t;

/* Overlapping primary intervals of different processes. An interval of a node that was frozen
 * with its workload, that began before the freeze and ended within CHECK_FROZEN_GRACE after
 * the thaw, counts as ending at the freeze (and as a frozen tail). */
void check_overlaps(const events_t *ev, const check_frozen_t *fr, size_t n_fr,
                    check_overlap_report_t *rep);

#endif
