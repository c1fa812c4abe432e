/* test_chaos_check.c — the chaos checkers have teeth: hand-made histories with an overlap of
 * primaries, a non-linearizable register history, a lost acknowledged write and a stale
 * fenced write are each reported, and their correct counterparts are not. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "chaos_check.h"

#define MS 1000000ull

static check_op_t op(int client, check_kind_t kind, check_outcome_t out, uint64_t inv_ms,
                     uint64_t done_ms, const char *value, const char *expect)
{
    check_op_t o;
    memset(&o, 0, sizeof(o));
    o.client = client;
    o.kind = kind;
    o.outcome = out;
    o.invoke_ns = inv_ms * MS;
    o.complete_ns = out == CHECK_MAYBE ? CHECK_NEVER : done_ms * MS;
    snprintf(o.value, sizeof(o.value), "%s", value ? value : "");
    snprintf(o.expect, sizeof(o.expect), "%s", expect ? expect : "");
    return o;
}

Test(chaos_check, sequential_history_is_linearizable)
{
    check_op_t h[] = {
        op(0, CHECK_GET, CHECK_OK, 0, 1, "", NULL),
        op(0, CHECK_PUT, CHECK_OK, 2, 3, "x", NULL),
        op(1, CHECK_GET, CHECK_OK, 4, 5, "x", NULL),
        op(1, CHECK_CAS, CHECK_OK, 6, 7, "y", "x"),
        op(0, CHECK_CAS, CHECK_CONFLICT, 8, 9, "z", "x"),
        op(0, CHECK_GET, CHECK_OK, 10, 11, "y", NULL),
    };
    cr_assert_eq(check_linearizable(h, 6, NULL), CHECK_LINEARIZABLE);
}

Test(chaos_check, stale_read_is_not_linearizable)
{
    /* y overwrote x and was acknowledged; a read that starts afterwards returns x. */
    check_op_t h[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 1, "x", NULL),
        op(0, CHECK_PUT, CHECK_OK, 2, 3, "y", NULL),
        op(1, CHECK_GET, CHECK_OK, 4, 5, "x", NULL),
    };
    cr_assert_eq(check_linearizable(h, 3, NULL), CHECK_NOT_LINEARIZABLE);
}

Test(chaos_check, concurrent_reads_may_see_either_order)
{
    /* Two puts overlap; readers that overlap both may see x then y, but not y then x. */
    check_op_t ok[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 10, "x", NULL),  op(1, CHECK_PUT, CHECK_OK, 0, 10, "y", NULL),
        op(2, CHECK_GET, CHECK_OK, 1, 2, "x", NULL),   op(2, CHECK_GET, CHECK_OK, 3, 4, "y", NULL),
        op(2, CHECK_GET, CHECK_OK, 11, 12, "y", NULL),
    };
    cr_assert_eq(check_linearizable(ok, 5, NULL), CHECK_LINEARIZABLE);
    check_op_t bad[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 10, "x", NULL), op(1, CHECK_PUT, CHECK_OK, 0, 10, "y", NULL),
        op(2, CHECK_GET, CHECK_OK, 1, 2, "x", NULL),  op(2, CHECK_GET, CHECK_OK, 3, 4, "y", NULL),
        op(2, CHECK_GET, CHECK_OK, 5, 6, "x", NULL), /* x came back: no order explains it */
    };
    cr_assert_eq(check_linearizable(bad, 5, NULL), CHECK_NOT_LINEARIZABLE);
}

Test(chaos_check, two_cas_from_the_same_value_cannot_both_succeed)
{
    check_op_t h[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 1, "x", NULL),
        op(1, CHECK_CAS, CHECK_OK, 2, 5, "a", "x"),
        op(2, CHECK_CAS, CHECK_OK, 2, 5, "b", "x"),
    };
    cr_assert_eq(check_linearizable(h, 3, NULL), CHECK_NOT_LINEARIZABLE);
}

Test(chaos_check, a_timed_out_write_may_or_may_not_apply)
{
    /* The maybe-put of z explains the later read of z; without it the history is wrong. */
    check_op_t h[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 1, "x", NULL),
        op(1, CHECK_PUT, CHECK_MAYBE, 2, 0, "z", NULL),
        op(0, CHECK_GET, CHECK_OK, 3, 4, "x", NULL),
        op(0, CHECK_GET, CHECK_OK, 20, 21, "z", NULL),
    };
    cr_assert_eq(check_linearizable(h, 4, NULL), CHECK_LINEARIZABLE);
    h[1].outcome = CHECK_FAIL; /* definitely not applied */
    cr_assert_eq(check_linearizable(h, 4, NULL), CHECK_NOT_LINEARIZABLE);
    /* A maybe-cas explains a conflict: the register no longer held x. */
    check_op_t c[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 1, "x", NULL),
        op(1, CHECK_CAS, CHECK_MAYBE, 2, 0, "w", "x"),
        op(0, CHECK_CAS, CHECK_CONFLICT, 5, 6, "v", "x"),
    };
    cr_assert_eq(check_linearizable(c, 3, NULL), CHECK_LINEARIZABLE);
    c[1].outcome = CHECK_FAIL;
    cr_assert_eq(check_linearizable(c, 3, NULL), CHECK_NOT_LINEARIZABLE);
}

/* A key's history across a fault: writers time out (maybe-applied writes nobody ever reads),
 * while others go on writing and reading. Which of the timed-out writes took effect cannot
 * matter to anything after them, and the search must not try each subset of them: 40 such
 * writes once made it give up ("inconclusive") on a history with an obvious linearization. */
Test(chaos_check, many_unread_timed_out_writes_do_not_blow_the_search_up)
{
    static check_op_t h[600];
    size_t n = 0;
    char v[CHECK_VALUE_MAX];
    for (int i = 0; i < 40; i++) { /* timed out, interleaved with the others */
        snprintf(v, sizeof(v), "lost%d", i);
        h[n++] = op(2 + i % 2, CHECK_PUT, CHECK_MAYBE, 10 + 5 * (uint64_t)i, 0, v, NULL);
    }
    for (int i = 0; i < 250; i++) {
        snprintf(v, sizeof(v), "v%d", i);
        h[n++] = op(0, CHECK_PUT, CHECK_OK, 4 * (uint64_t)i, 4 * (uint64_t)i + 1, v, NULL);
        h[n++] = op(1, CHECK_GET, CHECK_OK, 4 * (uint64_t)i + 2, 4 * (uint64_t)i + 3, v, NULL);
    }
    uint64_t steps = 0;
    cr_assert_eq(check_linearizable(h, n, &steps), CHECK_LINEARIZABLE, "steps %llu",
                 (unsigned long long)steps);
    /* The same with one stale read: found, not given up on. */
    snprintf(h[n - 1].value, sizeof(h[n - 1].value), "v%d", 100);
    cr_assert_eq(check_linearizable(h, n, &steps), CHECK_NOT_LINEARIZABLE, "steps %llu",
                 (unsigned long long)steps);
    /* A conflict only a timed-out write explains is still explained (and only by one). */
    check_op_t c[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 1, "x", NULL),
        op(1, CHECK_PUT, CHECK_MAYBE, 2, 0, "w1", NULL),
        op(1, CHECK_PUT, CHECK_MAYBE, 2, 0, "w2", NULL),
        op(0, CHECK_CAS, CHECK_CONFLICT, 5, 6, "v", "x"),
        op(0, CHECK_GET, CHECK_OK, 7, 8, "", NULL), /* absent: never */
    };
    cr_assert_eq(check_linearizable(c, 4, NULL), CHECK_LINEARIZABLE);
    cr_assert_eq(check_linearizable(c, 5, NULL), CHECK_NOT_LINEARIZABLE);
    check_op_t two[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 1, "x", NULL),
        op(1, CHECK_PUT, CHECK_MAYBE, 2, 0, "w1", NULL),
        op(0, CHECK_CAS, CHECK_CONFLICT, 5, 6, "v", "x"),
        op(0, CHECK_PUT, CHECK_OK, 7, 8, "x", NULL),
        op(0, CHECK_CAS, CHECK_CONFLICT, 9, 10, "v", "x"), /* w1 cannot apply twice */
    };
    cr_assert_eq(check_linearizable(two, 5, NULL), CHECK_NOT_LINEARIZABLE);
    check_op_t three[6]; /* ... but a second timed-out write can */
    memcpy(three, two, sizeof(two));
    three[5] = op(1, CHECK_PUT, CHECK_MAYBE, 2, 0, "w3", NULL);
    cr_assert_eq(check_linearizable(three, 6, NULL), CHECK_LINEARIZABLE);
}

Test(chaos_check, a_lost_acknowledged_write_is_reported)
{
    check_op_t h[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 1, "x", NULL),
        op(0, CHECK_PUT, CHECK_OK, 2, 3, "y", NULL),
        op(1, CHECK_PUT, CHECK_MAYBE, 4, 0, "z", NULL),
    };
    char lost[CHECK_VALUE_MAX] = "";
    cr_assert_eq(check_lost_writes(h, 3, "y", lost), 0);
    cr_assert_eq(check_lost_writes(h, 3, "z", lost), 0); /* the maybe-write applied last */
    cr_assert_eq(check_lost_writes(h, 3, "x", lost), 1);
    cr_assert_str_eq(lost, "y");
    cr_assert_eq(check_lost_writes(h, 3, "", lost), 1); /* everything vanished */
    /* Concurrent acknowledged writes: either may be the last. */
    check_op_t c[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 5, "x", NULL),
        op(1, CHECK_PUT, CHECK_OK, 1, 6, "y", NULL),
    };
    cr_assert_eq(check_lost_writes(c, 2, "x", NULL), 0);
    cr_assert_eq(check_lost_writes(c, 2, "y", NULL), 0);
}

Test(chaos_check, a_stale_fence_acknowledged_late_is_reported)
{
    check_op_t h[] = {
        op(0, CHECK_PUT, CHECK_OK, 0, 1, "x", NULL),
        op(1, CHECK_PUT, CHECK_OK, 2, 3, "y", NULL),
        op(0, CHECK_PUT, CHECK_FAIL, 4, 5, "z", NULL),
    };
    h[0].fence = 3;
    h[1].fence = 5;
    h[2].fence = 3;
    h[2].fenced = true;
    cr_assert_eq(check_fencing(h, 3), 0);
    h[2].outcome = CHECK_OK; /* token 3 accepted after token 5 was: the store let it through */
    cr_assert_eq(check_fencing(h, 3), 1);
}

Test(chaos_check, overlapping_primaries_are_reported)
{
    events_t ev;
    events_parse("1000000000 a start 10 2\n"
                 "1005000000 a alive 10\n"
                 "1100000000 a stop 10\n"
                 "1200000000 b start 20 3\n"
                 "1300000000 b stop 20\n",
                 &ev);
    check_overlap_report_t rep;
    check_overlaps(&ev, NULL, 0, &rep);
    cr_assert_eq(rep.overlaps, 0);

    events_parse("1000000000 a start 10 2\n"
                 "1200000000 b start 20 3\n"
                 "1250000000 a alive 10\n" /* a still runs after b started */
                 "1260000000 a stop 10\n"
                 "1300000000 b stop 20\n",
                 &ev);
    check_overlaps(&ev, NULL, 0, &rep);
    cr_assert_eq(rep.overlaps, 1);
    cr_assert_str_eq(ev.iv[rep.first_a].node, "a");
    cr_assert_str_eq(ev.iv[rep.first_b].node, "b");
}

Test(chaos_check, a_frozen_machine_may_run_briefly_after_its_thaw_but_no_longer)
{
    /* a was frozen from 1.1 s to 3.0 s; b took over at 2.5 s; a's watchdog killed it 20 ms
     * after the thaw: excused as a frozen tail. */
    events_t ev;
    events_parse("1000000000 a start 10 2\n"
                 "1095000000 a alive 10\n"
                 "2500000000 b start 20 3\n"
                 "3015000000 a alive 10\n"
                 "3600000000 b stop 20\n",
                 &ev);
    check_frozen_t fr = {.node = "a", .stop_ns = 1100000000ull, .cont_ns = 3000000000ull};
    check_overlap_report_t rep;
    check_overlaps(&ev, &fr, 1, &rep);
    cr_assert_eq(rep.overlaps, 0);
    cr_assert_eq(rep.frozen_tails, 1);
    cr_assert(rep.longest_tail_ns >= 15000000ull && rep.longest_tail_ns <= 25000000ull);

    /* The same, but a kept running for a second after the thaw: a violation. */
    events_parse("1000000000 a start 10 2\n"
                 "1095000000 a alive 10\n"
                 "2500000000 b start 20 3\n"
                 "4000000000 a alive 10\n"
                 "4600000000 b stop 20\n",
                 &ev);
    check_overlaps(&ev, &fr, 1, &rep);
    cr_assert_eq(rep.overlaps, 1);
}

/* Hook mode: times in ms, the lease 1000 ms. */

Test(chaos_check, hook_primaries_overlap_unless_the_old_on_stop_ended_first)
{
    check_overlap_report_t rep;
    char why[256];
    const char *handover = "100000000 a hook-begin start primary\n"
                           "120000000 a hook-end start\n"
                           "900000000 a hook-begin stop standby\n"
                           "950000000 a hook-end stop\n"
                           "960000000 b hook-begin start primary\n"
                           "970000000 b hook-end start\n";
    cr_assert_eq(check_hook_overlaps(handover, NULL, 0, 1000 * MS, &rep, why, sizeof(why)), 2);
    cr_assert_eq(rep.overlaps, 0);
    /* b's on-start begins while a's on-stop still runs */
    const char *early = "100000000 a hook-begin start primary\n"
                        "900000000 a hook-begin stop standby\n"
                        "940000000 b hook-begin start primary\n"
                        "950000000 a hook-end stop\n";
    check_hook_overlaps(early, NULL, 0, 1000 * MS, &rep, why, sizeof(why));
    cr_assert_eq(rep.overlaps, 1);
    cr_assert(strstr(why, "a primary") != NULL, "%s", why);
    /* a's on-stop failed: a counts as primary for the lease after it */
    const char *failed = "100000000 a hook-begin start primary\n"
                         "900000000 a hook-end stop failed\n"
                         "1500000000 b hook-begin start primary\n";
    check_hook_overlaps(failed, NULL, 0, 1000 * MS, &rep, why, sizeof(why));
    cr_assert_eq(rep.overlaps, 1);
    check_hook_overlaps(failed, NULL, 0, 500 * MS, &rep, why, sizeof(why));
    cr_assert_eq(rep.overlaps, 0);
}

Test(chaos_check, a_killed_hook_primary_counts_until_its_kill)
{
    /* a is killed at 1 s while primary; its restart runs on-stop at 5 s. */
    const char *text = "100000000 a hook-begin start primary\n"
                       "120000000 a hook-end start\n"
                       "%llu b hook-begin start primary\n"
                       "5000000000 a hook-begin stop standby\n"
                       "5010000000 a hook-end stop\n";
    check_frozen_t kill = {
        .node = "a", .stop_ns = 1000 * MS, .cont_ns = 4000 * MS, .lapse = CHECK_KILLED};
    check_overlap_report_t rep;
    char buf[512], why[256];
    snprintf(buf, sizeof(buf), text, 1100ull * MS); /* after the kill: fine */
    cr_assert_eq(check_hook_overlaps(buf, &kill, 1, 1000 * MS, &rep, why, sizeof(why)), 2);
    cr_assert_eq(rep.overlaps, 0, "%s", why);
    snprintf(buf, sizeof(buf), text, 900ull * MS); /* while a still ran */
    check_hook_overlaps(buf, &kill, 1, 1000 * MS, &rep, why, sizeof(why));
    cr_assert_eq(rep.overlaps, 1);
    /* Without the kill on record a's period runs to its restart's on-stop. */
    snprintf(buf, sizeof(buf), text, 1100ull * MS);
    check_hook_overlaps(buf, NULL, 0, 1000 * MS, &rep, why, sizeof(why));
    cr_assert_eq(rep.overlaps, 1);
    /* A restart that does not run on-stop (its data was wiped) and leads again opens a new
     * period: b's at 2.1 s is within a's new one. */
    const char *again = "100000000 a hook-begin start primary\n"
                        "2000000000 a hook-begin start primary\n"
                        "2100000000 b hook-begin start primary\n";
    check_hook_overlaps(again, &kill, 1, 500 * MS, &rep, why, sizeof(why));
    cr_assert_eq(rep.overlaps, 1);
}

Test(chaos_check, a_frozen_hook_primary_counts_until_its_freeze_if_it_stops_at_thaw)
{
    /* a frozen from 1 s to 3 s; b starts at 2.2 s; a's on-stop ends at thaw + 50 ms. */
    const char *text = "100000000 a hook-begin start primary\n"
                       "%llu b hook-begin start primary\n"
                       "3000000000 a hook-begin stop standby\n"
                       "%llu a hook-end stop\n";
    check_frozen_t fr = {
        .node = "a", .stop_ns = 1000 * MS, .cont_ns = 3000 * MS, .lapse = CHECK_FROZEN_ELECTD};
    check_overlap_report_t rep;
    char buf[512], why[256];
    snprintf(buf, sizeof(buf), text, 2200ull * MS, 3050ull * MS);
    check_hook_overlaps(buf, &fr, 1, 1000 * MS, &rep, why, sizeof(why));
    cr_assert_eq(rep.overlaps, 0, "%s", why);
    cr_assert_eq(rep.frozen_tails, 1);
    /* b started before a froze */
    snprintf(buf, sizeof(buf), text, 900ull * MS, 3050ull * MS);
    check_hook_overlaps(buf, &fr, 1, 1000 * MS, &rep, why, sizeof(why));
    cr_assert_eq(rep.overlaps, 1);
    /* a's on-stop ended long after the thaw: it went on leading, and b overlaps it */
    snprintf(buf, sizeof(buf), text, 2200ull * MS, 4500ull * MS);
    check_hook_overlaps(buf, &fr, 1, 1000 * MS, &rep, why, sizeof(why));
    cr_assert_eq(rep.overlaps, 1);
}
