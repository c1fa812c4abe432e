/* test_lease.c — the rules of the lease timeline (docs/guarantees.md, "The lease timeline" and
 * "Supervise"), checked on the pure arithmetic that the controller and the shim both use
 * (sidecar/workload/lease.c): no clock, no processes — every rule at the nanosecond where it
 * turns — and the start invariant the controller asserts (workload_check_may_start). The
 * real-process tests (tests/integration/test_workload.c) check the same rules end
 * to end under the overlap checker. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "lease.h"
#include "workload_int.h"

#define MS      1000000ull
#define STOP_NS (500 * MS)        /* the default --stop-timeout */
#define LEASE   (880 * MS)        /* the default lease (guarantees.md) */
#define T0      (1000000000 * MS) /* an arbitrary boot-time instant */
#define EVAL_MS 100               /* the controller's periodic look */

/* A leader of term 7 whose term-start entry applied and whose lease ends at deadline. */
static sidecar_node_state_t leader(uint64_t deadline)
{
    return (sidecar_node_state_t){.role = RAFT_LEADER,
                                  .term = 7,
                                  .leader = 1,
                                  .epoch = 7,
                                  .lease_deadline_ns = deadline,
                                  .store_ok = true};
}

static const workload_lease_holds_t no_holds = {0};

static bool want(const sidecar_node_state_t *st, uint64_t now)
{
    return workload_lease_want_primary(st, &no_holds, STOP_NS, now);
}

TestSuite(lease);

/* "The leader may run the workload only while it leads, its term-start entry has applied
 * (so its fencing token is the current epoch) and its lease holds." */
Test(lease, never_starts_without_leading_with_a_lease_and_the_current_epoch)
{
    sidecar_node_state_t st = leader(T0 + LEASE);
    cr_assert(want(&st, T0), "a leader with a fresh lease runs the workload");
    st.lease_deadline_ns = 0;
    cr_assert_not(want(&st, T0), "no lease, no workload");
    st = leader(T0 + LEASE);
    st.epoch = 6;
    cr_assert_not(want(&st, T0), "the term-start entry of this term has not applied yet");
    raft_role_t others[] = {RAFT_FOLLOWER, RAFT_CANDIDATE};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        st = leader(T0 + LEASE);
        st.role = others[i];
        cr_assert_not(want(&st, T0), "role %d holds a lease deadline but does not lead", others[i]);
        cr_assert_not(workload_lease_outlives(&st, STOP_NS, T0));
    }
}

/* A start needs a lease that outlives it: the remaining lease must exceed the stop timeout
 * (else the workload would be due to stop the moment it starts). The boundary is strict. */
Test(lease, a_start_needs_more_lease_left_than_the_stop_timeout)
{
    sidecar_node_state_t st = leader(T0 + STOP_NS);
    cr_assert_not(want(&st, T0), "remaining == stop timeout: too little to start");
    cr_assert(want(&st, T0 - 1), "remaining == stop timeout + 1 ns: may start");
    cr_assert_not(want(&st, T0 + 1));
    cr_assert_not(want(&st, T0 + STOP_NS), "expired");
    cr_assert_not(want(&st, T0 + STOP_NS + LEASE), "long expired");
    /* Whatever the deadline, a remaining lease of at most the stop timeout never allows a
     * start, and one longer always does (without holds). */
    for (uint64_t left = 0; left <= 2 * STOP_NS; left += STOP_NS / 50) {
        st = leader(T0 + LEASE);
        cr_assert_eq(want(&st, T0 + LEASE - left), left > STOP_NS, "remaining %llu ms",
                     (unsigned long long)(left / MS));
    }
}

/* "When the remaining lease falls below --stop-timeout without renewal, stopping begins." */
Test(lease, stopping_begins_when_the_unrenewed_lease_drops_to_the_stop_timeout)
{
    sidecar_node_state_t st = leader(T0 + LEASE);
    uint64_t stop_at = workload_lease_stop_at_ns(&st, STOP_NS);
    cr_assert_eq(stop_at, T0 + LEASE - STOP_NS);
    cr_assert(want(&st, stop_at - 1));
    cr_assert_not(want(&st, stop_at), "stopping begins at deadline - stop timeout");
    /* A fresh acknowledgement (a later deadline) moves the stop point; the workload runs on. */
    st.lease_deadline_ns = stop_at + LEASE;
    cr_assert(want(&st, stop_at));
    /* Losing leadership or the lease stops it at once, whatever the deadline said. */
    st.role = RAFT_FOLLOWER;
    cr_assert_not(want(&st, stop_at));
    st = leader(0);
    cr_assert_not(want(&st, T0));
}

/* The controller wakes up at the stop point by itself (no event needed): walking its own
 * wake-ups from any instant, it sees "stop" within 1 ms after the stop point, and never
 * sleeps past it. */
Test(lease, the_controller_wakes_at_the_stop_point_of_a_running_primary)
{
    sidecar_node_state_t st = leader(T0 + LEASE);
    uint64_t stop_at = workload_lease_stop_at_ns(&st, STOP_NS);
    for (uint64_t start = T0; start < stop_at; start += 37 * MS + 123457) {
        uint64_t now = start;
        int steps = 0;
        while (want(&st, now)) {
            uint64_t d = workload_lease_wake_ms(&st, true, STOP_NS, 0, now, EVAL_MS);
            cr_assert(d >= 1 && d <= EVAL_MS);
            cr_assert_leq(now + d * MS, stop_at + MS, "slept past the stop point");
            now += d * MS;
            cr_assert_lt(++steps, 100, "bounded number of wake-ups");
        }
        cr_assert_geq(now, stop_at);
        cr_assert_leq(now, stop_at + MS, "stop noticed %llu ns late",
                      (unsigned long long)(now - stop_at));
    }
}

Test(lease, wake_ups_are_never_0_ms_and_at_most_the_periodic_look)
{
    sidecar_node_state_t st = leader(T0 + LEASE);
    uint64_t stop_at = workload_lease_stop_at_ns(&st, STOP_NS);
    cr_assert_eq(workload_lease_wake_ms(&st, true, STOP_NS, 0, stop_at, EVAL_MS), 1,
                 "0 ms would starve libuv's loop");
    cr_assert_eq(workload_lease_wake_ms(&st, true, STOP_NS, 0, stop_at + LEASE, EVAL_MS), 1);
    cr_assert_eq(workload_lease_wake_ms(&st, true, STOP_NS, 0, T0, EVAL_MS), EVAL_MS);
    /* Not (yet) primary, or already stopping: the stop point is not waited for. */
    cr_assert_eq(workload_lease_wake_ms(&st, false, STOP_NS, 0, stop_at - MS, EVAL_MS), EVAL_MS);
    /* The end of a backoff is: the workload restarts when it ends, not up to 100 ms later. */
    uint64_t until_ms = (T0 + 30 * MS) / MS;
    cr_assert_eq(workload_lease_wake_ms(&st, false, STOP_NS, until_ms, T0, EVAL_MS), 30);
    cr_assert_eq(workload_lease_wake_ms(&st, false, STOP_NS, until_ms, T0 + 30 * MS, EVAL_MS),
                 EVAL_MS);
}

/* Crash backoff (100 ms doubling) and the holds of the controller forbid a start even under a
 * valid lease; a handover or a give-up holds only in the term it began in. */
Test(lease, holds_forbid_a_start_under_a_valid_lease)
{
    sidecar_node_state_t st = leader(T0 + LEASE);
    workload_lease_holds_t h = {.backoff_until_ms = T0 / MS + 100};
    cr_assert_not(workload_lease_want_primary(&st, &h, STOP_NS, T0), "backing off");
    cr_assert_not(workload_lease_want_primary(&st, &h, STOP_NS, T0 + 100 * MS - 1));
    cr_assert(workload_lease_want_primary(&st, &h, STOP_NS, T0 + 100 * MS), "backoff over");

    h = (workload_lease_holds_t){.shutting_down = true};
    cr_assert_not(workload_lease_want_primary(&st, &h, STOP_NS, T0), "shutting down");
    h = (workload_lease_holds_t){.recovering = true};
    cr_assert_not(workload_lease_want_primary(&st, &h, STOP_NS, T0), "on-stop owed first");

    h = (workload_lease_holds_t){.handover = true, .handover_term = 7};
    cr_assert_not(workload_lease_want_primary(&st, &h, STOP_NS, T0), "handing over");
    h.handover_term = 6;
    cr_assert(workload_lease_want_primary(&st, &h, STOP_NS, T0), "a handover of an old term");
    h = (workload_lease_holds_t){.handover_term = 7};
    cr_assert(workload_lease_want_primary(&st, &h, STOP_NS, T0), "no handover under way");

    h = (workload_lease_holds_t){.gave_up_term = 7};
    cr_assert_not(workload_lease_want_primary(&st, &h, STOP_NS, T0), "gave up in this term");
    h.gave_up_term = 5;
    cr_assert(workload_lease_want_primary(&st, &h, STOP_NS, T0), "gave up in an old term");
}

/* "electd sends it the lease deadline after every renewal": only later deadlines, never one
 * past the lease the node holds, nothing once the lease is lost (then stopping begins). */
Test(lease, the_shim_gets_each_renewal_and_never_more_than_the_lease)
{
    sidecar_node_state_t st = leader(T0 + LEASE);
    cr_assert_eq(workload_lease_renewal_ns(&st, 0), T0 + LEASE, "the first deadline");
    cr_assert_eq(workload_lease_renewal_ns(&st, T0 + LEASE), 0, "nothing new");
    cr_assert_eq(workload_lease_renewal_ns(&st, T0 + LEASE + 1), 0, "never moved back or up");
    st.lease_deadline_ns = T0 + 2 * LEASE;
    cr_assert_eq(workload_lease_renewal_ns(&st, T0 + LEASE), T0 + 2 * LEASE);
    st.lease_deadline_ns = 0;
    cr_assert_eq(workload_lease_renewal_ns(&st, T0 + LEASE), 0, "lost: nothing to send");
    for (uint64_t sent = 0; sent < T0 + 3 * LEASE; sent += LEASE / 3) {
        st.lease_deadline_ns = T0 + 2 * LEASE;
        uint64_t v = workload_lease_renewal_ns(&st, sent);
        cr_assert(v == 0 || (v > sent && v <= st.lease_deadline_ns));
    }
}

/* ---- the shim's watchdog ---------------------------------------------------------------- */

/* "at deadline − stop timeout it sends SIGTERM to the whole group, at the deadline SIGKILL —
 * even when electd is frozen": no renewal comes, the watchdog acts on its own. */
Test(lease, the_watchdog_terms_at_the_stop_point_and_kills_at_the_deadline)
{
    workload_watchdog_t d;
    workload_watchdog_init(&d, true, STOP_NS);
    workload_watchdog_renew(&d, T0 + LEASE);
    uint64_t stop_at = T0 + LEASE - STOP_NS;
    cr_assert_not(workload_watchdog_term_due(&d, false, stop_at - 1));
    cr_assert(workload_watchdog_term_due(&d, false, stop_at));
    workload_watchdog_termed(&d, stop_at);
    cr_assert_not(workload_watchdog_term_due(&d, false, stop_at + 1), "SIGTERM once");
    cr_assert_eq(workload_watchdog_kill_ns(&d), T0 + LEASE, "SIGKILL at the deadline");
    /* electd and its shim agree on the stop point to the nanosecond. */
    sidecar_node_state_t st = leader(T0 + LEASE);
    cr_assert_eq(workload_lease_stop_at_ns(&st, STOP_NS), stop_at);
}

/* "a supervised workload is dead by lease expiry": however late stopping begins (a late 'T',
 * a renewal just before it), SIGKILL is due no later than the deadline, and the stop timeout
 * after SIGTERM when that comes first. */
Test(lease, the_watchdog_kills_no_later_than_the_lease_deadline)
{
    for (uint64_t t = T0; t <= T0 + 2 * LEASE; t += 7 * MS + 1) {
        workload_watchdog_t d;
        workload_watchdog_init(&d, true, STOP_NS);
        workload_watchdog_renew(&d, T0 + LEASE);
        workload_watchdog_termed(&d, t); /* 'T' from electd, or its own stop point */
        uint64_t k = workload_watchdog_kill_ns(&d);
        cr_assert_leq(k, T0 + LEASE, "SIGKILL after the lease deadline");
        cr_assert_leq(k, t + STOP_NS, "SIGKILL later than the stop timeout after SIGTERM");
        cr_assert(k == T0 + LEASE || k == t + STOP_NS);
    }
}

/* Once stopping has begun a renewal no longer counts: a stop is never taken back. */
Test(lease, a_renewal_after_sigterm_does_not_extend_the_kill)
{
    workload_watchdog_t d;
    workload_watchdog_init(&d, true, STOP_NS);
    workload_watchdog_renew(&d, T0 + LEASE);
    workload_watchdog_termed(&d, T0 + LEASE - 100 * MS);
    workload_watchdog_renew(&d, T0 + 5 * LEASE);
    cr_assert_eq(d.deadline_ns, T0 + LEASE);
    cr_assert_eq(workload_watchdog_kill_ns(&d), T0 + LEASE);
}

/* "If electd dies (even kill -9) ... the group is stopped": SIGTERM at once, SIGKILL a stop
 * timeout later, also for a hook, which has no lease to watch. */
Test(lease, electd_gone_stops_at_once_also_a_hook)
{
    workload_watchdog_t d;
    workload_watchdog_init(&d, false, STOP_NS);
    cr_assert_eq(d.deadline_ns, UINT64_MAX);
    cr_assert_not(workload_watchdog_term_due(&d, false, T0 + 1000 * LEASE), "no lease to watch");
    cr_assert_eq(workload_watchdog_wait_ms(&d, T0, 100), 100);
    cr_assert(workload_watchdog_term_due(&d, true, T0));
    workload_watchdog_termed(&d, T0);
    cr_assert_eq(workload_watchdog_kill_ns(&d), T0 + STOP_NS);

    workload_watchdog_init(&d, true, STOP_NS);
    workload_watchdog_renew(&d, T0 + LEASE);
    cr_assert(workload_watchdog_term_due(&d, true, T0), "gone with most of the lease left");
}

/* The shim sleeps in poll() between points of its timeline; walking its own waits from any
 * instant, it never sleeps past a point by more than the 1 ms rounding, nor ever longer than
 * its cap (which keeps it noticing SIGCHLD and electd's death). */
Test(lease, the_watchdog_wakes_for_each_point_of_its_timeline)
{
    for (uint64_t start = T0; start < T0 + LEASE; start += 29 * MS + 98765) {
        workload_watchdog_t d;
        workload_watchdog_init(&d, true, STOP_NS);
        workload_watchdog_renew(&d, T0 + LEASE);
        uint64_t now = start, termed_at = 0;
        for (int steps = 0; now < workload_watchdog_kill_ns(&d); steps++) {
            cr_assert_lt(steps, 1000, "bounded number of wake-ups");
            if (workload_watchdog_term_due(&d, false, now)) {
                termed_at = now;
                workload_watchdog_termed(&d, now);
                continue;
            }
            int ms = workload_watchdog_wait_ms(&d, now, 100);
            cr_assert(ms >= 0 && ms <= 100);
            now += (uint64_t)ms * MS;
        }
        uint64_t stop_at = T0 + LEASE - STOP_NS;
        if (start <= stop_at)
            cr_assert(termed_at >= stop_at && termed_at <= stop_at + MS, "SIGTERM %llu late",
                      (unsigned long long)(termed_at - stop_at));
        cr_assert_leq(now, T0 + LEASE + MS, "SIGKILL %llu ns after the deadline",
                      (unsigned long long)(now - T0 - LEASE));
    }
}

/* ---- the start invariant, asserted where the workload starts ------------------------------ */

/* A controller that was never started (no loop, no node): enough for the steps to reach
 * their start and its ELECTD_CHECK, which must stop the process before anything runs. */
static sidecar_config_t check_cfg = {.stop_timeout_ms = STOP_NS / MS};
static sidecar_workload_t check_w;

static void check_setup(void)
{
    memset(&check_w, 0, sizeof(check_w));
    check_w.cfg = &check_cfg;
    check_w.ctl_fd = -1;
}

TestSuite(start_check, .init = check_setup);

Test(start_check, a_start_under_a_lease_that_outlives_the_stop_timeout_passes)
{
    check_w.st = leader(T0 + LEASE);
    workload_check_may_start(&check_w, T0);
    workload_check_may_start(&check_w, T0 + LEASE - STOP_NS - 1);
}

Test(start_check, a_start_at_the_stop_point_aborts, .signal = SIGABRT)
{
    check_w.st = leader(T0 + LEASE);
    workload_check_may_start(&check_w, T0 + LEASE - STOP_NS);
}

Test(start_check, a_supervised_start_without_a_lease_aborts, .signal = SIGABRT)
{
    check_w.mode = MODE_SUPERVISE;
    check_w.st = leader(0);
    workload_supervise_step(&check_w, true, T0);
}

Test(start_check, an_on_start_of_a_follower_aborts, .signal = SIGABRT)
{
    check_w.mode = MODE_HOOKS;
    check_w.st = leader(T0 + LEASE);
    check_w.st.role = RAFT_FOLLOWER;
    workload_hooks_step(&check_w, true, T0);
}
