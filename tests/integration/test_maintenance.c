/* test_maintenance.c — maintenance mode and priorities on real processes, supervised test
 * workloads logging to one shared file, every test failing on any overlap of primaries:
 * maintenance holds back the restart of an exited workload and refuses transfers, is the same
 * on every member and survives a restart of one; a member of higher priority takes leadership
 * over when it comes back (not with --preempt=false); a member of priority 0 (--no-primary)
 * never runs the workload while another can. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "events.h"

#define E_MS          500
#define HYSTERESIS_MS (4 * E_MS) /* the leader's wait before preempting (priority.c) */

static itest_cluster_t C;
static char events_path[400];

static void fini(void)
{
    itest_cluster_destroy(&C);
}

TestSuite(maintenance, .fini = fini, .timeout = 240);

static void node_arg(int i, const char *arg)
{
    itest_node_t *nd = &C.nodes[i];
    cr_assert_lt(nd->n_extra, ITEST_MAX_ARGS);
    nd->extra[nd->n_extra++] = arg;
}

static bool supervised[3]; /* the workload command is the last of a node's arguments */

static void setup(void)
{
    itest_cluster_init(&C, 3, 3);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    snprintf(events_path, sizeof(events_path), "%s/events", C.root);
    memset(supervised, 0, sizeof(supervised));
}

/* Starts node i supervising the test workload (after the node's own flags). */
static void start(int i)
{
    if (!supervised[i]) {
        supervised[i] = true;
        node_arg(i, "--exec");
        node_arg(i, "--");
        node_arg(i, TESTWORKER_BIN);
        node_arg(i, events_path);
    }
    itest_node_start(&C, i);
}

static void start_all(void)
{
    for (int i = 0; i < 3; i++)
        start(i);
}

static void check_no_overlap(void)
{
    char why[400];
    cr_assert(events_file_no_overlap(events_path, why, sizeof(why)), "%s", why);
}

/* Polls until the newest interval is open (a workload runs) on node `name`; its index, or -1
 * after timeout_ms. */
static int wait_running_on(const char *name, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        events_t ev;
        if (events_load(events_path, &ev) && ev.n > 0 && ev.iv[ev.n - 1].open &&
            strcmp(ev.iv[ev.n - 1].node, name) == 0)
            return (int)ev.n - 1;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return -1;
}

static size_t starts_of(const char *name)
{
    events_t ev;
    events_load(events_path, &ev);
    return events_starts(&ev, name);
}

/* Polls node i's GET path until its body holds needle; false after timeout_ms. */
static bool wait_body(int i, const char *path, const char *needle, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    char body[1 << 15];
    do {
        if (C.nodes[i].pid != 0 &&
            itest_http(C.nodes[i].http_port, "GET", path, NULL, body, sizeof(body)) == 200 &&
            strstr(body, needle) != NULL)
            return true;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return false;
}

static bool wait_log(int i, const char *needle, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    while (itest_log_count(&C, i, needle) == 0) {
        if (itest_now_ms() >= deadline)
            return false;
        usleep(20000);
    }
    return true;
}

/* POST /v1/maintenance on node i; the status code, the reply in body. */
static int maintenance(int i, const char *json, char *body, size_t cap)
{
    return itest_http(C.nodes[i].http_port, "POST", "/v1/maintenance", json, body, cap);
}

/* No new start anywhere for ms (a bounded look: what must not happen, for long enough that it
 * would have — the restart backoff is 100 ms, the preemption's hysteresis 4 E). */
static void expect_no_start_for(size_t starts, int ms, const char *what)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)ms;
    while (itest_now_ms() < deadline) {
        events_t ev;
        events_load(events_path, &ev);
        cr_assert_eq(ev.n, starts, "%s", what);
        usleep(20000);
    }
}

Test(maintenance, holds_a_restart_refuses_transfers_and_survives_a_restart_of_a_member)
{
    setup();
    start_all();
    events_interval_t first;
    cr_assert(events_first_primary(events_path, 15000, &first), "no workload started");
    int l = itest_node_index(&C, first.node), f = (l + 1) % 3;
    char body[4096];

    /* Bad input is refused and changes nothing. */
    cr_assert_eq(maintenance(l, "{\"enabled\":\"yes\"}", body, sizeof(body)), 400, "%s", body);
    cr_assert_eq(maintenance(l, "{\"reason\":\"x\"}", body, sizeof(body)), 400, "%s", body);
    cr_assert_eq(maintenance(l, "{\"enabled\":true,\"other\":1}", body, sizeof(body)), 400);
    cr_assert_eq(maintenance(l, "not json", body, sizeof(body)), 400);
    cr_assert_eq(maintenance(l, "{\"enabled\":true,\"reason\":\"\xff\"}", body, sizeof(body)), 400,
                 "a reason that is not UTF-8 (found by fuzz_api): %s", body);
    /* A follower does not write it itself: it points at the leader (no --forward here). */
    cr_assert_eq(maintenance(f, "{\"enabled\":true}", body, sizeof(body)), 421, "%s", body);

    cr_assert_eq(maintenance(l, "{\"enabled\":true,\"reason\":\"db upgrade\"}", body, sizeof(body)),
                 200, "%s", body);
    cr_assert(strstr(body, "\"enabled\":true") && strstr(body, "\"reason\":\"db upgrade\""), "%s",
              body);
    for (int i = 0; i < 3; i++)
        cr_assert(wait_body(i, "/v1/maintenance", "\"enabled\":true", 5000),
                  "%s does not see maintenance on", C.nodes[i].name);
    cr_assert(wait_body(f, "/v1/status",
                        "\"maintenance\":{\"enabled\":true,\"reason\":\"db upgrade\"", 1000));
    cr_assert_eq(itest_metric(&C, l, "electd_maintenance"), 1);

    /* No voluntary transfer. */
    cr_assert_eq(
        itest_http(C.nodes[l].http_port, "POST", "/v1/leader/transfer", "", body, sizeof(body)),
        409, "%s", body);
    cr_assert(strstr(body, "\"code\":\"maintenance\"") && strstr(body, "db upgrade"), "%s", body);

    /* The workload exits on its own: not restarted while maintenance is on. */
    size_t starts = starts_of(NULL);
    kill(first.pid, SIGKILL);
    cr_assert(itest_pid_gone(first.pid, 2000));
    cr_assert(wait_log(l, "workload failed during maintenance", 3000),
              "the leader did not say it holds the restart back");
    expect_no_start_for(starts, 3 * E_MS, "the exited workload was restarted during maintenance");
    cr_assert(wait_body(l, "/v1/status", "\"reason\":{\"code\":\"maintenance\"", 1000),
              "the leader's status does not say maintenance holds its workload");
    cr_assert(wait_body(l, "/v1/status", "\"held_by_maintenance\":true", 1000));

    /* A restarted member still knows (its own store), and the leader still leads. */
    cr_assert_eq(itest_node_stop(&C, f), 0);
    start(f);
    cr_assert(wait_body(f, "/v1/maintenance", "\"reason\":\"db upgrade\"", 5000),
              "maintenance forgotten by a restarted member");
    cr_assert(wait_body(f, "/v1/status", "\"enabled\":true", 1000));
    itest_status_t st;
    cr_assert(itest_status(&C, l, &st));
    cr_assert_str_eq(st.role, "leader");
    expect_no_start_for(starts, E_MS, "the exited workload was restarted during maintenance");

    /* Off: the workload starts again where it stopped, in the same term. */
    cr_assert_eq(maintenance(l, "{\"enabled\":false}", body, sizeof(body)), 200, "%s", body);
    cr_assert(strstr(body, "\"enabled\":false"), "%s", body);
    cr_assert_geq(wait_running_on(C.nodes[l].name, 5000), 0,
                  "the workload did not start again once maintenance was off");
    cr_assert(wait_body(l, "/v1/status", "\"held_by_maintenance\":false", 1000));
    cr_assert_eq(itest_metric(&C, l, "electd_maintenance"), 0);
    cr_assert_eq(
        itest_http(C.nodes[l].http_port, "POST", "/v1/leader/transfer", "", body, sizeof(body)),
        202, "%s", body);
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

Test(maintenance, a_dead_leader_is_still_replaced_and_its_successor_starts)
{
    setup();
    start_all();
    events_interval_t first;
    cr_assert(events_first_primary(events_path, 15000, &first), "no workload started");
    int l = itest_node_index(&C, first.node);
    char body[4096];
    cr_assert_eq(maintenance(l, "{\"enabled\":true,\"reason\":\"freeze\"}", body, sizeof(body)),
                 200, "%s", body);
    for (int i = 0; i < 3; i++)
        cr_assert(wait_body(i, "/v1/maintenance", "\"enabled\":true", 5000));
    itest_node_signal(&C, l, SIGKILL);
    cr_assert(itest_pid_gone(first.pid, 2000), "the workload outlived its electd");
    int next = events_wait_running(events_path, first.node, 2, 10000);
    cr_assert_geq(next, 0, "maintenance stopped the failover of a dead leader");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* ---- priorities ----------------------------------------------------------------------------- */

Test(maintenance, a_member_of_higher_priority_takes_over_when_it_comes_back)
{
    setup();
    node_arg(0, "--priority=200");
    start_all();
    /* Whoever wins the first election, a ends up primary. */
    cr_assert_geq(wait_running_on("a", 15000), 0, "a (priority 200) never became primary");
    cr_assert(wait_body(0, "/v1/status", "\"priority\":200,\"preempt\":true", 1000));
    cr_assert_eq(itest_node_stop(&C, 0), 0);
    int other = events_wait_running(events_path, "a", 1, 10000);
    cr_assert_geq(other, 0, "nobody took over from a");
    events_t ev;
    events_load(events_path, &ev);
    int holder = itest_node_index(&C, ev.iv[other].node);
    start(0);
    cr_assert_geq(wait_running_on("a", 15000), 0, "a did not take over when it came back");
    cr_assert(wait_log(holder, "a member of higher priority is ready", 1000),
              "%s did not say why it handed over", C.nodes[holder].name);
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* Waits until member i holds everything the leader l has committed. */
static bool wait_caught_up(int i, int l, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        itest_status_t si, sl;
        if (itest_status(&C, i, &si) && itest_status(&C, l, &sl) && si.applied >= sl.commit &&
            sl.commit > 0)
            return true;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return false;
}

Test(maintenance, without_preempt_a_member_of_higher_priority_waits_for_a_failure)
{
    setup();
    node_arg(0, "--priority=200");
    node_arg(0, "--preempt=false");
    start(1);
    start(2);
    events_interval_t first;
    cr_assert(events_first_primary(events_path, 15000, &first), "no workload started");
    int l = itest_node_index(&C, first.node);
    start(0);
    cr_assert(wait_caught_up(0, l, 10000), "a did not catch up");
    cr_assert(wait_body(0, "/v1/status", "\"priority\":200,\"preempt\":false", 1000));
    expect_no_start_for(1, HYSTERESIS_MS + 4 * E_MS, "a took over with --preempt=false");
    /* Its priority still counts once the primary fails: it stands first. */
    itest_node_signal(&C, l, SIGKILL);
    cr_assert_geq(wait_running_on("a", 10000), 0, "a did not take over from a failed leader");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

Test(maintenance, a_member_of_priority_0_never_runs_the_workload_while_another_can)
{
    setup();
    node_arg(2, "--no-primary"); /* the alias of --priority 0 */
    start(0);
    start(2);
    /* c may win the first election: it hands over to a before its workload starts. */
    cr_assert_geq(wait_running_on("a", 15000), 0, "a never became primary");
    cr_assert(wait_body(2, "/v1/status", "\"priority\":0,", 1000));
    start(1);
    cr_assert(wait_caught_up(1, 0, 10000), "b did not catch up");
    itest_node_signal(&C, 0, SIGKILL);
    cr_assert_geq(wait_running_on("b", 10000), 0, "b did not take over from a");
    cr_assert_eq(starts_of("c"), 0, "c (priority 0) ran the workload");
    itest_cluster_stop_all(&C);
    check_no_overlap();
    cr_assert_eq(starts_of("c"), 0, "c (priority 0) ran the workload");
}
