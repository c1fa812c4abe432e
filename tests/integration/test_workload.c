/* test_workload.c — workload control on real processes: the test workload logs start/stop
 * with CLOCK_MONOTONIC to one shared file and every test fails on any overlap of primary
 * intervals. kill -9, SIGSTOP, SIGTERM handover, hooks (order, timeout, failure, at-least-once
 * stop), a crashing workload, and a witness. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "events.h"

#define E_MS 500

static itest_cluster_t C;
static char events_path[400];
static char hook_path[400];

static void fini(void)
{
    itest_cluster_destroy(&C);
}

TestSuite(workload, .fini = fini, .timeout = 180);

static void common_args(itest_cluster_t *c)
{
    itest_cluster_arg(c, "--heartbeat-interval=50ms");
    itest_cluster_arg(c, "--election-timeout=500ms");
    itest_cluster_arg(c, "--stop-timeout=200ms");
    itest_cluster_arg(c, "--hook-timeout=1s");
}

static void node_arg(itest_cluster_t *c, int i, const char *arg)
{
    itest_node_t *nd = &c->nodes[i];
    cr_assert_lt(nd->n_extra, ITEST_MAX_ARGS);
    nd->extra[nd->n_extra++] = arg;
}

static void supervise(itest_cluster_t *c, int i)
{
    node_arg(c, i, "--exec");
    node_arg(c, i, "--");
    node_arg(c, i, TESTWORKER_BIN);
    node_arg(c, i, events_path);
}

static void setup(int n, bool hooks)
{
    itest_cluster_init(&C, n, n);
    common_args(&C);
    snprintf(events_path, sizeof(events_path), "%s/events", C.root);
    snprintf(hook_path, sizeof(hook_path), "%s/hook.sh", C.root);
    if (!hooks)
        for (int i = 0; i < n; i++)
            supervise(&C, i);
}

static void check_no_overlap(void)
{
    char why[400];
    cr_assert(events_file_no_overlap(events_path, why, sizeof(why)), "%s", why);
}

/* Waits until the newest interval is open (a workload runs) on a node other than `not`
 * (-1: any); returns its index in the event list or -1. */
static int wait_running(const char *not_node, size_t min_starts, int timeout_ms)
{
    return events_wait_running(events_path, not_node, min_starts, timeout_ms);
}

/* Starts a 3-node supervised cluster and waits for the first primary; returns its node
 * index and its interval in *old. */
static int start_until_primary(events_interval_t *old)
{
    setup(3, false);
    itest_cluster_start(&C);
    cr_assert(events_first_primary(events_path, 15000, old), "no workload started");
    int l = itest_node_index(&C, old->node);
    cr_assert_geq(l, 0);
    return l;
}

Test(workload, kill_9_of_the_leader_takes_its_workload_down_and_another_starts)
{
    events_interval_t old;
    int l = start_until_primary(&old);
    events_t ev;
    events_load(events_path, &ev);
    itest_status_t st;
    cr_assert(itest_status(&C, l, &st));
    cr_assert_str_eq(st.role, "leader", "the workload runs on a node that does not lead");

    itest_node_signal(&C, l, SIGKILL);
    cr_assert(itest_pid_gone(old.pid, 2000), "the workload outlived its electd (orphan primary)");
    int next = wait_running(old.node, ev.n + 1, 10000);
    cr_assert_geq(next, 0, "no other node started the workload");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

Test(workload, sigstop_of_the_leader_lets_the_lease_kill_its_workload)
{
    events_interval_t old;
    int l = start_until_primary(&old);
    events_t ev;
    events_load(events_path, &ev);

    kill(C.nodes[l].pid, SIGSTOP);
    /* The frozen electd cannot stop anything: the shim's watchdog must. */
    cr_assert(itest_pid_gone(old.pid, 3 * E_MS), "workload still running after the lease expired");
    int next = wait_running(old.node, ev.n + 1, 10000);
    cr_assert_geq(next, 0, "no other node took over");
    usleep(3 * E_MS * 1000 - 500000);
    kill(C.nodes[l].pid, SIGCONT);
    /* The old leader wakes up, learns the new term and must not restart its workload. */
    usleep(4 * E_MS * 1000);
    itest_status_t st;
    cr_assert(itest_status(&C, l, &st));
    cr_assert_str_neq(st.role, "leader");
    events_load(events_path, &ev);
    cr_assert_eq(events_starts(&ev, old.node), 1, "the paused node restarted its workload");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* The leader's count of rounds sent as a quiet leader (electd_quiet_leader_rounds_total)
 * moves on within timeout_ms: it holds its members' reads. */
static bool quiet_rounds_rise(int l, int timeout_ms)
{
    long first = itest_metric(&C, l, "electd_quiet_leader_rounds_total");
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    while (first >= 0 && itest_now_ms() < deadline) {
        usleep(50000);
        if (itest_metric(&C, l, "electd_quiet_leader_rounds_total") > first)
            return true;
    }
    return false;
}

/* ... stays put for 12 heartbeats in a row within timeout_ms: it reads as things come. */
static bool quiet_rounds_stop(int l, int timeout_ms)
{
    long last = -1;
    int still = 0;
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    while (itest_now_ms() < deadline) {
        long now = itest_metric(&C, l, "electd_quiet_leader_rounds_total");
        still = now >= 0 && now == last ? still + 1 : 0;
        if (still >= 6)
            return true;
        last = now;
        usleep(100000);
    }
    return false;
}

/* An idle leader reads its members' answers once a round (docs/architecture.md, "A quiet
 * leader"). Through holding, a write, a member that stops answering and comes back, its
 * primary runs on: one start, never stopped, no overlap. */
Test(workload, a_quiet_leader_holds_its_members_reads_and_its_primary_runs_on)
{
    events_interval_t old;
    int l = start_until_primary(&old);
    cr_assert(quiet_rounds_rise(l, 10000), "the idle leader never held its members' reads");
    /* ... and sends its rounds in turn, every other one to each follower. */
    long in_turn = itest_metric(&C, l, "electd_rounds_in_turn_total");
    cr_assert(quiet_rounds_rise(l, 10000));
    cr_assert_gt(itest_metric(&C, l, "electd_rounds_in_turn_total"), in_turn,
                 "the quiet leader did not send its rounds in turn");

    char out[512];
    cr_assert_eq(
        itest_http(C.nodes[l].http_port, "PUT", "/v1/kv/quiet", "written", out, sizeof(out)), 200,
        "a write to a quiet leader: %s", out);
    int f = (l + 1) % 3, g = (l + 2) % 3;
    itest_status_t st;
    uint64_t deadline = itest_now_ms() + 5000;
    bool seen = false;
    while (!seen && itest_now_ms() < deadline) {
        seen = itest_http(C.nodes[f].http_port, "GET", "/v1/kv/quiet?stale", NULL, out,
                          sizeof(out)) == 200 &&
               strstr(out, "written") != NULL;
        if (!seen)
            usleep(50000);
    }
    cr_assert(seen, "the write did not reach a follower: %s", out);

    /* A member that stops answering ends the hold; the quorum left keeps the lease. */
    kill(C.nodes[g].pid, SIGSTOP);
    cr_assert(quiet_rounds_stop(l, 5000), "the leader kept holding with a member silent");
    kill(C.nodes[g].pid, SIGCONT);
    cr_assert(quiet_rounds_rise(l, 10000), "the leader did not hold again once all answered");

    cr_assert(itest_status(&C, l, &st));
    cr_assert_str_eq(st.role, "leader", "leadership moved while the group was quiet");
    events_t ev;
    events_load(events_path, &ev);
    cr_assert_eq(ev.n, 1, "the primary was stopped or another started (%zu intervals)", ev.n);
    cr_assert(ev.iv[0].open, "the primary is not running");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* A quiet leader's whole node vanishes at once, as with a host that dies: its shim, its
 * workload and electd killed together, so no released-lease notice; the lease path. Its
 * followers last heard it up to a round apart (rounds in turn): the first in rank asks again
 * until the other's refusal ends (docs/guarantees.md, "The lease timeline"), and a successor
 * starts, never overlapping the old primary. */
Test(workload, a_quiet_leaders_whole_node_killed_at_once_fails_over_with_no_overlap)
{
    events_interval_t old;
    int l = start_until_primary(&old);
    long in_turn = itest_metric(&C, l, "electd_rounds_in_turn_total");
    uint64_t deadline = itest_now_ms() + 10000;
    while (itest_metric(&C, l, "electd_rounds_in_turn_total") <= in_turn &&
           itest_now_ms() < deadline)
        usleep(20000);
    cr_assert_gt(itest_metric(&C, l, "electd_rounds_in_turn_total"), in_turn,
                 "the idle leader never sent its rounds in turn");
    events_t ev;
    events_load(events_path, &ev);
    cr_assert_gt(itest_node_kill_host(&C, l), 0, "no shim above the workload");
    int next = wait_running(old.node, ev.n + 1, 10000);
    cr_assert_geq(next, 0, "no other node started the workload");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(itest_log_count(&C, i, "released-lease notice received"), 0,
                     "a notice reached %s, though the shim was killed", C.nodes[i].name);
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

Test(workload, sigterm_hands_over_and_the_successor_starts_promptly)
{
    events_interval_t old;
    int l = start_until_primary(&old);
    events_t ev;
    events_load(events_path, &ev);
    int status = itest_node_stop(&C, l);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int next = wait_running(old.node, ev.n + 1, 5000);
    cr_assert_geq(next, 0, "no successor");
    events_load(events_path, &ev);
    events_interval_t *was = NULL;
    for (size_t i = 0; i < ev.n; i++)
        if (ev.iv[i].pid == old.pid)
            was = &ev.iv[i];
    cr_assert(was != NULL && was->stopped, "the old workload was not stopped gracefully");
    uint64_t gap_ms = (ev.iv[next].start_ns - was->end_ns) / 1000000;
    /* Generous bound; the benchmark measures it precisely. */
    cr_assert_lt(gap_ms, 1000, "successor started %llu ms after the stop",
                 (unsigned long long)gap_ms);
    cr_assert_gt(ev.iv[next].token, old.token, "the successor's fencing token is not newer");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

Test(workload, a_crashing_workload_is_restarted_then_leadership_moves)
{
    setup(3, false);
    itest_cluster_arg(&C, "--max-restarts=2");
    setenv("TESTWORKER_EXIT_AFTER_MS", "150", 1);
    itest_cluster_start(&C);
    unsetenv("TESTWORKER_EXIT_AFTER_MS");
    int l0 = itest_wait_leader(&C, 15000);
    cr_assert_geq(l0, 0);
    const char *first = C.nodes[l0].name;
    /* 1 start + 2 restarts on the first leader, then someone else leads and starts. */
    uint64_t deadline = itest_now_ms() + 20000;
    events_t ev;
    bool moved = false;
    while (!moved && itest_now_ms() < deadline) {
        events_load(events_path, &ev);
        for (size_t i = 0; i < ev.n; i++)
            if (strcmp(ev.iv[i].node, first) != 0)
                moved = true;
        usleep(20000);
    }
    cr_assert(moved, "leadership never moved away from the crash-looping node");
    cr_assert_geq(events_starts(&ev, first), 3, "the workload was not restarted before giving up");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

Test(workload, witness_never_runs_the_workload_and_two_copies_survive_either_loss)
{
    setup(3, true);
    supervise(&C, 0);
    supervise(&C, 1);
    node_arg(&C, 2, "--witness");
    itest_cluster_start(&C);
    for (int round = 0; round < 2; round++) {
        int cur = wait_running(NULL, (size_t)round + 1, 15000);
        cr_assert_geq(cur, 0, "no primary (round %d)", round);
        events_t ev;
        events_load(events_path, &ev);
        int victim = itest_node_index(&C, ev.iv[cur].node);
        cr_assert(victim == 0 || victim == 1, "the witness ran the workload");
        itest_node_signal(&C, victim, SIGKILL);
        int next = wait_running(ev.iv[cur].node, ev.n + 1, 10000);
        cr_assert_geq(next, 0, "the surviving copy did not take over (round %d)", round);
        events_load(events_path, &ev);
        cr_assert_str_neq(ev.iv[next].node, "c");
        itest_node_start(&C, victim);
        cr_assert_geq(itest_wait_leader(&C, 10000), 0);
    }
    events_t ev;
    events_load(events_path, &ev);
    cr_assert_eq(events_starts(&ev, "c"), 0);
    itest_status_t st;
    cr_assert(itest_status(&C, 2, &st));
    cr_assert_str_neq(st.role, "leader", "the witness kept leadership");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* ---- hooks --------------------------------------------------------------------------- */

static void write_hook(const char *body)
{
    FILE *f = fopen(hook_path, "w");
    cr_assert(f != NULL);
    fprintf(f, "#!/bin/sh\n# test hook: $1 = hook name, ELECTD_ROLE = role\nW=%s\nE=%s\n%s\n",
            TESTWORKER_BIN, events_path, body);
    fclose(f);
    chmod(hook_path, 0755);
}

static void hooks(itest_cluster_t *c)
{
    static char start[500], stop[500], change[500];
    snprintf(start, sizeof(start), "--on-start=%s start", hook_path);
    snprintf(stop, sizeof(stop), "--on-stop=%s stop", hook_path);
    snprintf(change, sizeof(change), "--on-change=%s change", hook_path);
    itest_cluster_arg(c, start);
    itest_cluster_arg(c, stop);
    itest_cluster_arg(c, change);
}

static char *slurp(const char *path)
{
    return events_read(path);
}

static int count(const char *text, const char *needle)
{
    return events_count(text, needle);
}

/* Issue 21 item 2: on-change runs on every change of role OR of leader (as the docs say and
 * keepalived's notify users expect), not only when this member's own role changes — in hook
 * mode and, beside a supervised workload, in supervise mode. */
static void on_change_case(bool supervised)
{
    setup(3, !supervised);
    static char change[500], changes_path[600];
    snprintf(change, sizeof(change), "--on-change=%s change", hook_path);
    snprintf(changes_path, sizeof(changes_path), "%s.changes", events_path);
    itest_cluster_arg(&C, change);
    write_hook("$W --stamp $E.changes change $ELECTD_ROLE leader=$ELECTD_LEADER_ID");
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    /* Leadership moves from l to t; the bystander b stays standby throughout. */
    int t = (l + 1) % 3, b = (l + 2) % 3;
    char path[128], body[512], needle[128];
    snprintf(path, sizeof(path), "/v1/leader/transfer?to=%s", C.nodes[t].name);
    int st = 0;
    for (int i = 0;
         i < 50 &&
         (st = itest_http(C.nodes[l].http_port, "POST", path, "", body, sizeof(body))) != 200 &&
         st != 202;
         i++)
        usleep(50000); /* the new leader's first round may still be under way */
    cr_assert(st == 200 || st == 202, "transfer: %d %s", st, body);
    uint64_t deadline = itest_now_ms() + 10000;
    int now = -1;
    while ((now = itest_wait_leader(&C, 1000)) != t && itest_now_ms() < deadline)
        ;
    cr_assert_eq(now, t, "leadership did not move to %s", C.nodes[t].name);
    const char *want[2][2] = {{C.nodes[b].name, "standby"}, {C.nodes[t].name, "primary"}};
    for (int k = 0; k < 2; k++) {
        snprintf(needle, sizeof(needle), "%s change %s leader=%s", want[k][0], want[k][1],
                 C.nodes[t].name);
        deadline = itest_now_ms() + 5000;
        while (count(slurp(changes_path), needle) == 0 && itest_now_ms() < deadline)
            usleep(20000);
        cr_assert_geq(count(slurp(changes_path), needle), 1, "no \"%s\":\n%s", needle,
                      slurp(changes_path));
    }
    itest_cluster_stop_all(&C);
    if (supervised)
        check_no_overlap();
}

Test(workload, on_change_runs_on_every_leader_change_not_only_on_role_changes)
{
    on_change_case(false);
}

Test(workload, on_change_runs_beside_a_supervised_workload_too)
{
    on_change_case(true);
}

/* The workload and its hooks start with no signal ignored or blocked, whatever electd ignores
 * or blocks itself (electd starts its children with posix_spawn, which leaves glibc's
 * reserved signals ignored in the shim; the shim gives the workload all of them back). */
static void signal_state_after(const char *path, char *out, size_t len)
{
    uint64_t deadline = itest_now_ms() + 15000;
    out[0] = '\0';
    while (strstr(out, "SigIgn") == NULL && itest_now_ms() < deadline) {
        snprintf(out, len, "%s", slurp(path));
        if (strstr(out, "SigIgn") == NULL)
            usleep(20000);
    }
}

Test(workload, the_workload_and_its_hooks_start_with_no_signal_ignored_or_blocked)
{
    setup(1, false);
    static char exec_cmd[2000], change[500], wl_path[450], hook_out[450];
    snprintf(wl_path, sizeof(wl_path), "%s/workload.sig", C.root);
    snprintf(hook_out, sizeof(hook_out), "%s/hook.sig", C.root);
    C.nodes[0].n_extra = 0;
    snprintf(exec_cmd, sizeof(exec_cmd),
             "grep -E '^Sig(Ign|Blk)' /proc/self/status > %s.tmp && mv %s.tmp %s; exec sleep 60",
             wl_path, wl_path, wl_path);
    node_arg(&C, 0, "--exec");
    node_arg(&C, 0, "--");
    node_arg(&C, 0, "/bin/sh");
    node_arg(&C, 0, "-c");
    node_arg(&C, 0, exec_cmd);
    snprintf(change, sizeof(change), "--on-change=%s change", hook_path);
    itest_cluster_arg(&C, change);
    char hook_body[2000];
    snprintf(hook_body, sizeof(hook_body),
             "grep -E '^Sig(Ign|Blk)' /proc/self/status > %s.tmp && mv %s.tmp %s", hook_out,
             hook_out, hook_out);
    write_hook(hook_body);
    itest_cluster_start(&C);
    const char *want = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    char got[256];
    signal_state_after(wl_path, got, sizeof(got));
    cr_assert_str_eq(got, want, "the workload's signal state:\n%s", got);
    signal_state_after(hook_out, got, sizeof(got));
    cr_assert_str_eq(got, want, "the hook's signal state:\n%s", got);
    itest_cluster_stop_all(&C);
}

Test(workload, hooks_run_in_order_never_overlap_and_stop_runs_after_a_restart_as_primary)
{
    setup(3, true);
    hooks(&C);
    /* A hook killed with its electd still records when it ended (stderr away from the dead
     * electd's pipe, or the shell's "Terminated" notice kills it with SIGPIPE first). */
    write_hook("exec 2>/dev/null\n"
               "trap '$W --stamp $E hook-end $1 killed; exit 1' TERM\n"
               "$W --stamp $E hook-begin $1 $ELECTD_ROLE $ELECTD_FENCING_TOKEN\n"
               "sleep 0.05\n"
               "$W --stamp $E hook-end $1");
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    char needle[64];
    snprintf(needle, sizeof(needle), "%s hook-end start", C.nodes[l].name);
    uint64_t deadline = itest_now_ms() + 5000;
    while (count(slurp(events_path), needle) == 0 && itest_now_ms() < deadline)
        usleep(20000);
    cr_assert_eq(count(slurp(events_path), needle), 1, "on-start did not run on the leader");

    /* Handover over the API: on-stop on the old leader, on-start on the new one. */
    char body[512];
    cr_assert_eq(
        itest_http(C.nodes[l].http_port, "POST", "/v1/leader/transfer", "", body, sizeof(body)),
        202, "%s", body);
    int l2 = -1;
    deadline = itest_now_ms() + 5000;
    while ((l2 = itest_wait_leader(&C, 200)) == l || l2 < 0)
        if (itest_now_ms() > deadline)
            break;
    cr_assert(l2 >= 0 && l2 != l, "no handover");
    snprintf(needle, sizeof(needle), "%s hook-end stop", C.nodes[l].name);
    cr_assert_eq(count(slurp(events_path), needle), 1, "on-stop did not run before handover");

    /* kill -9 the new primary, restart it: on-stop runs again before anything else. */
    snprintf(needle, sizeof(needle), "%s hook-end start", C.nodes[l2].name);
    deadline = itest_now_ms() + 5000;
    while (count(slurp(events_path), needle) == 0 && itest_now_ms() < deadline)
        usleep(20000);
    itest_node_signal(&C, l2, SIGKILL);
    itest_node_start(&C, l2);
    snprintf(needle, sizeof(needle), "%s hook-end stop", C.nodes[l2].name);
    deadline = itest_now_ms() + 5000;
    while (count(slurp(events_path), needle) == 0 && itest_now_ms() < deadline)
        usleep(20000);
    cr_assert_eq(count(slurp(events_path), needle), 1,
                 "a node that died as primary did not run on-stop after restarting");
    /* Whoever followed the killed primary led too (and runs on-stop when stopped). */
    int l3 = itest_wait_leader(&C, 15000);
    cr_assert_geq(l3, 0, "no leader after the restart");
    itest_cluster_stop_all(&C);
    const char *text = slurp(events_path);
    cr_assert(!events_hooks_overlap(text), "two hooks ran at once on one node:\n%s", text);
    /* A node that never led is told standby, never "stopped". */
    for (int i = 0; i < 3; i++) {
        if (i == l || i == l2 || i == l3)
            continue;
        snprintf(needle, sizeof(needle), "%s hook-begin stop", C.nodes[i].name);
        cr_assert_eq(count(text, needle), 0, "on-stop ran on a node that never led");
    }
}

/* The node name of the first event line containing needle. */
static void line_node(const char *text, const char *needle, char *out, size_t cap)
{
    const char *hit = strstr(text, needle);
    cr_assert(hit != NULL, "no %s in:\n%s", needle, text);
    const char *line = hit;
    while (line > text && line[-1] != '\n')
        line--;
    char node[16] = "";
    sscanf(line, "%*s %15s", node);
    snprintf(out, cap, "%s", node);
}

Test(workload, a_hanging_or_failing_on_start_is_killed_and_leadership_moves)
{
    setup(3, true);
    hooks(&C);
    itest_cluster_arg(&C, "--max-restarts=0");
    /* The first on-start anywhere hangs past the hook timeout; every later one succeeds. */
    static char body[1024];
    snprintf(body, sizeof(body),
             "if [ \"$1\" = start ] && mkdir %s/first 2>/dev/null; then\n"
             "  $W --stamp $E hang-begin; sleep 30; exit 0\n"
             "fi\n"
             "[ \"$1\" = start ] && $W --stamp $E started\n"
             "exit 0",
             C.root);
    write_hook(body);
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    uint64_t deadline = itest_now_ms() + 15000;
    while (count(slurp(events_path), "started") == 0 && itest_now_ms() < deadline)
        usleep(20000);
    const char *text = slurp(events_path);
    cr_assert_eq(count(text, "hang-begin"), 1, "%s", text);
    cr_assert_eq(count(text, "started"), 1, "no other node became primary:\n%s", text);
    /* The hung hook's node and the new primary differ. */
    char hung[16] = "", started[16] = "";
    line_node(text, " hang-begin", hung, sizeof(hung));
    line_node(text, " started", started, sizeof(started));
    cr_assert_str_neq(hung, started);
    int hi = itest_node_index(&C, hung);
    cr_assert_geq(hi, 0, "%s", hung);
    cr_assert_gt(itest_log_count(&C, hi, "hook timed out"), 0);
    itest_cluster_stop_all(&C);
}

Test(workload, a_leader_that_loses_its_quorum_stops_its_workload_by_the_lease_and_keeps_serving)
{
    /* The lease-driven stop: the leader is alive and well but hears nobody (both followers
     * frozen). Regression: the controller once re-armed a 0 ms timer from its own callback
     * at the stop point and the loop never turned again (found by the chaos harness). */
    events_interval_t old;
    int l = start_until_primary(&old);
    events_t ev;
    events_load(events_path, &ev);
    for (int i = 0; i < 3; i++)
        if (i != l)
            kill(C.nodes[i].pid, SIGSTOP);
    cr_assert(itest_pid_gone(old.pid, 3 * E_MS), "the workload outlived the leader's lease");
    events_load(events_path, &ev);
    for (size_t i = 0; i < ev.n; i++)
        if (ev.iv[i].pid == old.pid)
            cr_assert(ev.iv[i].stopped, "the workload was killed, not stopped, by its electd");
    /* The leader keeps serving: its loop turns, it steps down for lack of a quorum. */
    usleep(3 * E_MS * 1000);
    itest_status_t st;
    cr_assert(itest_status(&C, l, &st), "the isolated leader stopped answering");
    cr_assert_str_neq(st.role, "leader");
    for (int i = 0; i < 3; i++)
        if (i != l)
            kill(C.nodes[i].pid, SIGCONT);
    cr_assert_geq(wait_running(NULL, ev.n + 1, 10000), 0, "no primary after the followers woke");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* ---- hook-mode handovers under the overlap checker ------------------------------------------ */

/* What the first node to run on-start (the "bad" node) does with it, and whether the first
 * on-stop anywhere hangs. */
enum start_mode { START_OK, START_FAILS, START_HANGS };

/* How long an old leader's lease still ran, at least, after it handed over: the lease of
 * --election-timeout 500ms with the default drift and tick (floor(50·0.95/1.05) − 2 ticks =
 * 430 ms) less one heartbeat round (the newest acknowledged round may be that old) and a
 * margin. The successor of an on-stop that failed must not start before this. */
#define OLD_LEASE_MIN_NS (((uint64_t)430 - 50 - 10) * 1000000ull)

static void hook_scenario_script(enum start_mode start, bool hang_stop)
{
    static char body[2048];
    const char *bad_start = start == START_FAILS
                                ? "sleep 0.3; $W --stamp $E hook-end start failed; "
                                  "exit 7"
                            : start == START_HANGS ? "sleep 30; exit 0"
                                                   : ":";
    snprintf(body, sizeof(body),
             "R=%s\n"
             "exec 2>/dev/null\n"
             "trap '$W --stamp $E hook-end $1 killed; exit 1' TERM\n"
             "$W --stamp $E hook-begin $1 $ELECTD_ROLE\n"
             "if [ \"$1\" = start ]; then\n"
             "  mkdir $R/claimed 2>/dev/null && touch $R/bad-$ELECTD_NODE_ID\n"
             "  if [ -e $R/bad-$ELECTD_NODE_ID ]; then %s; fi\n"
             "fi\n"
             "if [ \"$1\" = stop ]; then\n"
             "  %s\n"
             "  sleep 0.2\n"
             "fi\n"
             "$W --stamp $E hook-end $1\n",
             C.root, bad_start, hang_stop ? "mkdir $R/stop-claimed 2>/dev/null && sleep 30" : ":");
    write_hook(body);
}

/* Lines "<ns> NODE hook-end start" (a successful on-start) of nodes other than not_node. */
static int clean_starts_elsewhere(const char *text, const char *not_node)
{
    int n = 0;
    const char *p = text;
    while ((p = strstr(p, " hook-end start\n")) != NULL) {
        const char *line = p;
        while (line > text && line[-1] != '\n')
            line--;
        char node[16] = "";
        sscanf(line, "%*s %15s", node);
        if (strcmp(node, not_node) != 0)
            n++;
        p++;
    }
    return n;
}

/* The bad node's trouble (failing or hanging on-start, or a hanging on-stop), then a
 * handover asked for by the operator (POST /v1/leader/transfer) or by SIGTERM: whatever
 * happens, the successor's on-start never begins before the old node's on-stop ended, or,
 * when that on-stop failed, before the old lease ran out. */
static void hook_scenario(enum start_mode start, bool hang_stop, bool sigterm)
{
    setup(3, true);
    static char on_start[500], on_stop[500];
    snprintf(on_start, sizeof(on_start), "--on-start=%s start", hook_path);
    snprintf(on_stop, sizeof(on_stop), "--on-stop=%s stop", hook_path);
    itest_cluster_arg(&C, on_start);
    itest_cluster_arg(&C, on_stop);
    itest_cluster_arg(&C, "--max-restarts=0");
    hook_scenario_script(start, hang_stop);
    itest_cluster_start(&C);
    const char *wait_for = start == START_OK ? " hook-end start\n" : " hook-begin start";
    uint64_t deadline = itest_now_ms() + 15000;
    while (strstr(slurp(events_path), wait_for) == NULL && itest_now_ms() < deadline)
        usleep(10000);
    char bad[16] = "";
    line_node(slurp(events_path), wait_for, bad, sizeof(bad));
    int bi = itest_node_index(&C, bad);
    cr_assert_geq(bi, 0);
    if (sigterm) {
        itest_node_stop(&C, bi);
    } else {
        char body[512];
        int code = itest_http(C.nodes[bi].http_port, "POST", "/v1/leader/transfer", "", body,
                              sizeof(body));
        cr_assert(code == 202 || code == 421 || code == 409, "transfer: %d %s", code, body);
    }
    deadline = itest_now_ms() + 15000;
    while (clean_starts_elsewhere(slurp(events_path), bad) == 0 && itest_now_ms() < deadline)
        usleep(10000);
    cr_assert_gt(clean_starts_elsewhere(slurp(events_path), bad), 0, "no successor:\n%s",
                 slurp(events_path));
    itest_cluster_stop_all(&C);
    const char *text = slurp(events_path);
    char why[256];
    cr_assert(!events_hook_primaries_overlap(text, OLD_LEASE_MIN_NS, why, sizeof(why)),
              "hook-mode primaries overlap: %s\n%s", why, text);
    cr_assert(!events_hooks_overlap(text), "two hooks ran at once on one node:\n%s", text);
}

Test(workload, hooks_a_failing_on_start_then_a_transfer_never_overlap)
{
    hook_scenario(START_FAILS, false, false);
}

Test(workload, hooks_a_failing_on_start_then_sigterm_never_overlap)
{
    hook_scenario(START_FAILS, false, true);
}

Test(workload, hooks_a_hanging_on_start_then_a_transfer_never_overlap)
{
    hook_scenario(START_HANGS, false, false);
}

Test(workload, hooks_a_hanging_on_start_then_sigterm_never_overlap)
{
    hook_scenario(START_HANGS, false, true);
}

Test(workload, hooks_a_hanging_on_stop_in_a_transfer_makes_the_successor_wait_out_the_lease)
{
    hook_scenario(START_OK, true, false);
}

Test(workload, hooks_a_hanging_on_stop_at_sigterm_makes_the_successor_wait_out_the_lease)
{
    hook_scenario(START_OK, true, true);
}

/* ---- a workload that can run on one member only ------------------------------------------- */

static bool body_has(int port, const char *path, const char *needle, char *body, size_t cap)
{
    return itest_http(port, "GET", path, NULL, body, cap) == 200 && strstr(body, needle) != NULL;
}

Test(workload, a_crash_loop_tries_every_member_once_and_converges_on_the_one_that_works)
{
    /* b can run the workload, a and c cannot. b joins last, so a or c leads first: giving up
     * must move on to a member that has not failed yet instead of bouncing between a and c
     * (transfers once broke ties by the lowest id, and b was never tried). */
    setup(3, false);
    itest_cluster_arg(&C, "--max-restarts=1");
    setenv("TESTWORKER_ONLY_ON", "b", 1);
    itest_node_start(&C, 0);
    itest_node_start(&C, 2);
    uint64_t deadline = itest_now_ms() + 30000;
    events_t ev;
    bool converged = false;
    /* Converged: b's workload has been running for a second. */
    while (!converged && itest_now_ms() < deadline) {
        if (C.nodes[1].pid == 0 && events_load(events_path, &ev) && ev.n > 0)
            itest_node_start(&C, 1);
        events_load(events_path, &ev);
        for (size_t i = 0; i < ev.n; i++)
            if (strcmp(ev.iv[i].node, "b") == 0 && ev.iv[i].open &&
                ev.iv[i].end_ns - ev.iv[i].start_ns > 1000000000ull)
                converged = true;
        usleep(20000);
    }
    unsetenv("TESTWORKER_ONLY_ON");
    size_t before_b = 0;
    while (before_b < ev.n && strcmp(ev.iv[before_b].node, "b") != 0)
        before_b++;
    events_t tried = ev;
    tried.n = before_b;
    cr_assert(converged, "the workload never settled on b: %zu starts on a, %zu on c",
              events_starts(&ev, "a"), events_starts(&ev, "c"));
    /* One round per member: 1 start + --max-restarts restarts, then it gives up. */
    cr_assert_leq(events_starts(&tried, "a"), 2, "a was tried again before b");
    cr_assert_leq(events_starts(&tried, "c"), 2, "c was tried again before b");
    cr_assert_gt(before_b, 0, "b led first: the test proved nothing");
    /* Who gave up, and why, is visible on every member. */
    const char *first = ev.iv[0].node;
    char body[1 << 15], needle[64];
    snprintf(needle, sizeof(needle), "\"member\":\"%s\"", first);
    deadline = itest_now_ms() + 3000;
    while (!body_has(C.nodes[1].http_port, "/v1/status", needle, body, sizeof(body)) &&
           itest_now_ms() < deadline)
        usleep(20000);
    cr_assert(strstr(body, "\"gave_up\":[") && strstr(body, needle) && strstr(body, "\"exit\""),
              "/v1/status does not say that %s gave up: %s", first, body);
    snprintf(needle, sizeof(needle), "electd_workload_gave_up{member=\"%s\"} 1", first);
    cr_assert(body_has(C.nodes[1].http_port, "/metrics", needle, body, sizeof(body)),
              "no %s in /metrics", needle);
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* ---- a workload that can run nowhere ------------------------------------------------------- */

static bool all_gave_up(int port, char *body, size_t cap)
{
    return body_has(port, "/v1/status", "\"member\":\"a\"", body, cap) &&
           strstr(body, "\"member\":\"b\"") && strstr(body, "\"member\":\"c\"");
}

Test(workload, when_every_member_gave_up_the_last_keeps_leadership_and_backs_off_longer)
{
    /* The workload fails at once everywhere. Each member gives up at its first failure and
     * hands over to one that has not failed yet; the third finds that every other voter gave
     * up within the decay (two restart windows: 30 s), so it must keep leadership and retry
     * after pauses of 1 s, 2 s, 4 s instead of bouncing leadership. */
    setup(3, false);
    itest_cluster_arg(&C, "--max-restarts=0");
    itest_cluster_arg(&C, "--restart-window=15s");
    setenv("TESTWORKER_EXIT_AFTER_MS", "0", 1);
    itest_cluster_start(&C);
    unsetenv("TESTWORKER_EXIT_AFTER_MS");
    /* Three members once each, then three retries by the last one. */
    enum { TRIES = 6 };
    uint64_t deadline = itest_now_ms() + 30000;
    events_t ev;
    while ((!events_load(events_path, &ev) || ev.n < TRIES) && itest_now_ms() < deadline)
        usleep(20000);
    cr_assert_geq(ev.n, TRIES, "only %zu starts in 30 s", ev.n);
    const char *last = ev.iv[2].node;
    cr_assert(strcmp(ev.iv[0].node, ev.iv[1].node) != 0 && strcmp(ev.iv[0].node, last) != 0 &&
                  strcmp(ev.iv[1].node, last) != 0,
              "the first three starts were not on three members: %s %s %s", ev.iv[0].node,
              ev.iv[1].node, last);
    /* Leadership stopped moving: every later start is the last member's, in the same term
     * (the fencing token is the epoch of the leader that started it). */
    for (size_t i = 3; i < ev.n; i++) {
        cr_assert_str_eq(ev.iv[i].node, last, "start %zu moved to %s after all gave up", i,
                         ev.iv[i].node);
        cr_assert_eq(ev.iv[i].token, ev.iv[2].token, "start %zu in another term (%llu, not %llu)",
                     i, (unsigned long long)ev.iv[i].token, (unsigned long long)ev.iv[2].token);
    }
    /* The pauses between its attempts double: 1 s, 2 s, 4 s (give or take a start's cost). */
    uint64_t gap[TRIES - 3];
    for (size_t i = 0; i < TRIES - 3; i++)
        gap[i] = (ev.iv[i + 3].start_ns - ev.iv[i + 2].start_ns) / 1000000;
    cr_assert_geq(gap[0], 900, "retried after %llu ms, not after the 1 s pause",
                  (unsigned long long)gap[0]);
    for (size_t i = 1; i < TRIES - 3; i++)
        cr_assert_geq(gap[i], gap[i - 1] * 3 / 2, "pause %zu (%llu ms) did not grow from %llu ms",
                      i, (unsigned long long)gap[i], (unsigned long long)gap[i - 1]);
    /* Every member sees that all three gave up. */
    char body[1 << 15];
    int any = itest_node_index(&C, ev.iv[0].node);
    deadline = itest_now_ms() + 3000;
    while (!all_gave_up(C.nodes[any].http_port, body, sizeof(body)) && itest_now_ms() < deadline)
        usleep(20000);
    cr_assert(all_gave_up(C.nodes[any].http_port, body, sizeof(body)),
              "/v1/status does not list every member in workload.gave_up: %s", body);
    /* The last start's failures end in one more pause: wait for its line (a slow build may
     * not have logged it yet when the starts were counted). */
    int l = itest_node_index(&C, last);
    deadline = itest_now_ms() + 15000;
    while (itest_log_count(&C, l, "every other member gave up: keeping leadership") < TRIES - 2 &&
           itest_now_ms() < deadline)
        usleep(50000);
    itest_cluster_stop_all(&C);
    /* The log says what each give-up did: a handover to whom, or a pause. */
    for (int k = 0; k < 2; k++) {
        char handed[96];
        snprintf(handed, sizeof(handed), "keeps failing: handing leadership over\" to=%s ",
                 ev.iv[k + 1].node);
        int i = itest_node_index(&C, ev.iv[k].node);
        cr_assert_geq(itest_log_count(&C, i, handed), 1, "%s's log lacks '%s'", ev.iv[k].node,
                      handed);
        /* Its first give-up handed over. (On a loaded machine leadership may come back to it
         * later, e.g. when the last member misses a lease round; it then rightly keeps it,
         * so a later "keeping leadership" line is not a failure.) */
        int first_keep = itest_log_find(&C, i, "keeping leadership");
        int first_hand = itest_log_find(&C, i, handed);
        cr_assert(first_keep < 0 || first_hand < first_keep,
                  "%s kept leadership before it handed over", ev.iv[k].node);
    }
    cr_assert_eq(itest_log_count(&C, l, "keeps failing: handing"), 0,
                 "%s logged a handover it did not make", last);
    cr_assert_geq(itest_log_count(&C, l, "every other member gave up: keeping leadership"),
                  TRIES - 2, "%s did not log each pause", last);
    check_no_overlap();
}
