/* test_binlog_verify.c — the demo's final verification (deploy/examples/binlog-worker/verify.c)
 * on hand-made histories: a correct failover and handover pass, and each broken promise —
 * a skipped event, a resume from before an acknowledged checkpoint, overlapping primaries,
 * a token going back, a run shipping out of order — fails with a message saying which. */
#include "verify.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static binlog_report_t *report;

static void setup(void)
{
    report = malloc(sizeof(*report));
    cr_assert_not_null(report);
}

static void teardown(void)
{
    free(report);
}

TestSuite(binlog_verify, .init = setup, .fini = teardown);

/* Sink lines "<seq> <node> <pid> <token> <ns> <text>" for events first..last. */
static char *sink_lines(char *buf, size_t cap, unsigned first, unsigned last, const char *node,
                        int pid, unsigned token, unsigned long long ns0)
{
    size_t off = strlen(buf);
    for (unsigned s = first; s <= last; s++)
        off += (size_t)snprintf(buf + off, cap - off, "%u %s %d %u %llu event %u\n", s, node, pid,
                                token, ns0 + s, s);
    return buf;
}

/* A clean history: a ships 1..30 (checkpoint 25 acknowledged), is killed, b resumes from
 * 25 and re-ships 26..30 then 31..40, hands over with a final checkpoint at 40, c goes on. */
static void good_history(char *sink, size_t cap, char *log, size_t logcap)
{
    sink[0] = '\0';
    sink_lines(sink, cap, 1, 30, "a", 100, 1, 1000);
    sink_lines(sink, cap, 26, 40, "b", 200, 2, 3000);
    sink_lines(sink, cap, 41, 50, "c", 300, 3, 5000);
    snprintf(log, logcap,
             "1000 a start 100 token=1 resume=0\n"
             "1026 a checkpoint 100 seq=25 ok\n"
             "1031 a checkpoint 100 seq=30 error cannot connect\n"
             "1032 a stop 100 last=30 sigterm\n"
             "3000 b start 200 token=2 resume=25\n"
             "3041 b checkpoint 200 seq=40 ok\n"
             "3042 b stop 200 last=40 sigterm\n"
             "5000 c start 300 token=3 resume=40\n");
}

Test(binlog_verify, failover_and_handover_pass_and_count_duplicates)
{
    char sink[8192], log[1024];
    good_history(sink, sizeof(sink), log, sizeof(log));
    cr_assert_eq(binlog_verify(sink, log, report), 0, "%s", report->first_problem);
    cr_assert_eq(report->nruns, 3);
    cr_assert_eq(report->max_seq, 50);
    cr_assert_eq(report->skipped, 0);
    cr_assert_eq(report->shipped_twice, 5); /* 26..30, after checkpoint 25 */
    cr_assert_eq(report->max_dup_run, 5);
    cr_assert_eq(report->overlaps, 0);
    cr_assert_eq(report->runs[0].acked, 25);
    cr_assert_str_eq(report->runs[1].reason, "sigterm");
    cr_assert(!report->runs[2].stopped);
}

Test(binlog_verify, a_skipped_event_fails)
{
    char sink[8192], log[1024];
    good_history(sink, sizeof(sink), log, sizeof(log));
    /* c resumes after 42 though b shipped only up to 40: 41 and 42 are never shipped. */
    sink[0] = '\0';
    sink_lines(sink, sizeof(sink), 1, 30, "a", 100, 1, 1000);
    sink_lines(sink, sizeof(sink), 26, 40, "b", 200, 2, 3000);
    sink_lines(sink, sizeof(sink), 43, 50, "c", 300, 3, 5000);
    char *at = strstr(log, "resume=40");
    cr_assert_not_null(at);
    memcpy(at, "resume=42", 9);
    cr_assert_eq(binlog_verify(sink, log, report), 1);
    cr_assert_eq(report->skipped, 2);
    cr_assert(strstr(report->first_problem, "2 events never shipped, the first is 41"), "%s",
              report->first_problem);
    cr_assert_gt(report->problems, 1, "the resume after an unshipped event is reported too");
}

Test(binlog_verify, resuming_before_an_acknowledged_checkpoint_fails)
{
    char sink[8192], log[1024];
    good_history(sink, sizeof(sink), log, sizeof(log));
    /* b resumes from 20 although 25 was acknowledged: an acknowledged write was lost. */
    sink[0] = '\0';
    sink_lines(sink, sizeof(sink), 1, 30, "a", 100, 1, 1000);
    sink_lines(sink, sizeof(sink), 21, 40, "b", 200, 2, 3000);
    sink_lines(sink, sizeof(sink), 41, 50, "c", 300, 3, 5000);
    char *at = strstr(log, "resume=25");
    memcpy(at, "resume=20", 9);
    cr_assert_eq(binlog_verify(sink, log, report), 1);
    cr_assert(strstr(report->first_problem, "checkpoint 25 had been acknowledged"), "%s",
              report->first_problem);
}

Test(binlog_verify, overlapping_primaries_fail)
{
    char sink[8192], log[1024];
    good_history(sink, sizeof(sink), log, sizeof(log));
    /* a is still shipping (and stops) after b started. */
    snprintf(log, sizeof(log),
             "1000 a start 100 token=1 resume=0\n"
             "1026 a checkpoint 100 seq=25 ok\n"
             "3000 b start 200 token=2 resume=25\n"
             "3021 a stop 100 last=30 sigterm\n"
             "3041 b checkpoint 200 seq=40 ok\n"
             "3042 b stop 200 last=40 sigterm\n"
             "5000 c start 300 token=3 resume=40\n");
    sink[0] = '\0';
    sink_lines(sink, sizeof(sink), 1, 30, "a", 100, 1, 2990);
    sink_lines(sink, sizeof(sink), 26, 40, "b", 200, 2, 3000);
    sink_lines(sink, sizeof(sink), 41, 50, "c", 300, 3, 5000);
    cr_assert_eq(binlog_verify(sink, log, report), 1);
    cr_assert_eq(report->overlaps, 1);
    cr_assert(strstr(report->first_problem, "overlapped"), "%s", report->first_problem);
}

Test(binlog_verify, a_token_that_goes_back_fails)
{
    char sink[8192], log[1024];
    good_history(sink, sizeof(sink), log, sizeof(log));
    sink[0] = '\0';
    sink_lines(sink, sizeof(sink), 1, 30, "a", 100, 1, 1000);
    sink_lines(sink, sizeof(sink), 26, 40, "b", 200, 1, 3000);
    sink_lines(sink, sizeof(sink), 41, 50, "c", 300, 3, 5000);
    char *at = strstr(log, "token=2");
    memcpy(at, "token=1", 7);
    cr_assert_eq(binlog_verify(sink, log, report), 1);
    cr_assert(strstr(report->first_problem, "fencing token went from 1 (a) to 1 (b)"), "%s",
              report->first_problem);
}

Test(binlog_verify, shipping_out_of_order_or_after_stop_fails)
{
    char sink[8192], log[1024];
    good_history(sink, sizeof(sink), log, sizeof(log));
    strcat(sink, "52 c 300 3 6000 event 52\n"); /* 51 jumped over by the same run */
    cr_assert_eq(binlog_verify(sink, log, report), 1);
    cr_assert(strstr(report->first_problem, "out of order"), "%s", report->first_problem);

    good_history(sink, sizeof(sink), log, sizeof(log));
    strcat(sink, "41 b 200 2 3050 event 41\n"); /* b after its stop line (at 3042) */
    cr_assert_eq(binlog_verify(sink, log, report), 1);
    cr_assert(strstr(report->first_problem, "after it logged stop"), "%s", report->first_problem);
}

Test(binlog_verify, unknown_writers_and_malformed_input_are_reported)
{
    char sink[8192], log[1024];
    good_history(sink, sizeof(sink), log, sizeof(log));
    strcat(sink, "51 z 999 3 6000 event 51\n");
    cr_assert_eq(binlog_verify(sink, log, report), 1);
    cr_assert(strstr(report->first_problem, "never started"), "%s", report->first_problem);

    cr_assert_eq(binlog_verify("1 a 100 1 1000 x\n", "garbage\n", report), -1);
    cr_assert(strstr(report->first_problem, "log line 1"));
    cr_assert_eq(binlog_verify("not a number\n", "", report), -1);
    cr_assert(strstr(report->first_problem, "sink line 1"));
    cr_assert_eq(binlog_verify("99999999999 a 1 1 1 x\n", "1 a start 1 token=1 resume=0\n", report),
                 -1, "an event number over the limit is refused, not allocated");
}

Test(binlog_verify, an_empty_history_fails)
{
    cr_assert_eq(binlog_verify("", "", report), 1);
    cr_assert(strstr(report->first_problem, "no primary ever started"));
}
