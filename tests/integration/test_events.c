/* test_events.c — the overlap checkers must bite: hand-made histories with and without a
 * violation. */
#include <criterion/criterion.h>

#include "events.h"

Test(events, overlapping_primaries_are_reported)
{
    events_t ev;
    events_parse("100 a start 1 5\n105 a alive 1\n110 b start 2 6\n120 a stop 1\n", &ev);
    size_t x, y;
    cr_assert(events_overlap(&ev, &x, &y), "overlap not found");
    cr_assert_eq(ev.iv[x].pid, 1);
    cr_assert_eq(ev.iv[y].pid, 2);
}

Test(events, a_killed_workload_ends_one_alive_period_after_its_last_sign_of_life)
{
    events_t ev;
    /* a was killed after its alive at 1000; b started 1 ms later: within the period. */
    events_parse("0 a start 1 1\n1000 a alive 1\n1001000 b start 2 2\n", &ev);
    size_t x, y;
    cr_assert(events_overlap(&ev, &x, &y));
    events_parse("0 a start 1 1\n1000 a alive 1\n9000000 b start 2 2\n", &ev);
    cr_assert(!events_overlap(&ev, &x, &y));
}

Test(events, the_same_pid_on_two_nodes_is_two_processes)
{
    /* Workloads in containers each have their own PID namespace: a and b both run pid 7. */
    events_t ev;
    events_parse("0 a start 7 1\n1000 a alive 7\n2000 b start 7 2\n9000000 b alive 7\n", &ev);
    size_t x, y;
    cr_assert(events_overlap(&ev, &x, &y), "overlap of a's and b's pid 7 not found");
    cr_assert_eq(ev.iv[0].end_ns, 1000 + EVENTS_ALIVE_NS, "b's alive line was taken for a's");
    events_parse("0 a start 7 1\n1000 a stop 7\n2000 b start 7 2\n3000 b alive 7\n", &ev);
    cr_assert(!events_overlap(&ev, &x, &y));
}

Test(events, handed_over_primaries_do_not_overlap)
{
    events_t ev;
    events_parse("100 a start 1 5\n200 a stop 1\n201 b start 2 6\nnoise line\n", &ev);
    size_t x, y;
    cr_assert(!events_overlap(&ev, &x, &y));
    cr_assert_eq(events_starts(&ev, "a"), 1);
    cr_assert_eq(events_starts(&ev, NULL), 2);
    cr_assert(ev.iv[1].open, "b is still running");
}

Test(events, concurrent_hooks_on_one_node_are_reported)
{
    cr_assert(events_hooks_overlap("1 a hook-begin start\n2 a hook-begin change\n"
                                   "3 a hook-end change\n4 a hook-end start\n"));
    cr_assert(!events_hooks_overlap("1 a hook-begin start\n2 b hook-begin start\n"
                                    "3 a hook-end start\n4 a hook-begin change\n"));
}

Test(events, hook_primaries_overlap_until_on_stop_ends_or_the_lease_runs_out)
{
    char why[256];
    /* b's on-start began while a's on-stop still ran. */
    cr_assert(events_hook_primaries_overlap("1 a hook-begin start primary\n2 a hook-end start\n"
                                            "3 a hook-begin stop standby\n4 b hook-begin start\n"
                                            "5 a hook-end stop\n",
                                            0, why, sizeof(why)));
    cr_assert(!events_hook_primaries_overlap("1 a hook-begin start primary\n2 a hook-end start\n"
                                             "3 a hook-begin stop standby\n5 a hook-end stop\n"
                                             "6 b hook-begin start\n",
                                             100, why, sizeof(why)));
    /* a's on-stop was killed: b must wait out a's lease (100 ns here). */
    const char *killed = "1 a hook-begin start primary\n3 a hook-begin stop standby\n"
                         "5 a hook-end stop killed\n50 b hook-begin start\n";
    cr_assert(events_hook_primaries_overlap(killed, 100, why, sizeof(why)));
    cr_assert(!events_hook_primaries_overlap(killed, 40, why, sizeof(why)));
    /* An on-stop that never ended: the period never ends. */
    cr_assert(events_hook_primaries_overlap("1 a hook-begin start p\n3 a hook-begin stop s\n"
                                            "900 b hook-begin start p\n",
                                            0, why, sizeof(why)));
}
