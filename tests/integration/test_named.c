/* test_named.c — named elections on real processes: three members declare the same six
 * elections in their config file, each election's test workload logs its start/alive/stop
 * lines to a file of its own, and every test fails on any overlap of two primaries of one
 * election. Spread, kill -9 of a holder and of the Raft leader, SIGSTOP of a holder, prefer
 * and --no-primary. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "events.h"

#define N_ELECTIONS 6 /* declared at start: e0..e5 */
#define N_MAX       8 /* e6, e7: added by a reload */
#define E_MS        500

static itest_cluster_t C;
static char config_path[400];

static void fini(void)
{
    itest_cluster_destroy(&C);
}

TestSuite(named, .fini = fini, .timeout = 240);

static void events_path(int e, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/events-e%d", C.root, e);
}

/* Writes the config file: the supervised elections of mask (bit e: election "e<e>");
 * `extra_e0` is spliced into election e0's object (e.g. "\"prefer\":[\"c\"],"). */
static void write_config_mask(unsigned mask, const char *extra_e0)
{
    snprintf(config_path, sizeof(config_path), "%s/electd.json", C.root);
    char tmp[420];
    snprintf(tmp, sizeof(tmp), "%s.tmp", config_path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"elections\":{");
    const char *sep = "";
    for (int e = 0; e < N_MAX; e++) {
        if (!(mask & (1u << e)))
            continue;
        char path[400];
        events_path(e, path, sizeof(path));
        fprintf(f, "%s\"e%d\":{%s\"exec\":[\"%s\",\"%s\"]}", sep, e,
                e == 0 && extra_e0 ? extra_e0 : "", TESTWORKER_BIN, path);
        sep = ",";
    }
    fprintf(f, "}}\n");
    fclose(f);
    cr_assert_eq(rename(tmp, config_path), 0);
}

static void write_config(const char *extra_e0)
{
    write_config_mask((1u << N_ELECTIONS) - 1, extra_e0);
}

/* The cluster of every test: the six elections, with the given timings. */
static void setup_timed(const char *heartbeat, const char *election, const char *stop,
                        const char *extra_e0)
{
    itest_cluster_init(&C, 3, 3);
    itest_cluster_arg(&C, heartbeat);
    itest_cluster_arg(&C, election);
    itest_cluster_arg(&C, stop);
    write_config(extra_e0);
    itest_cluster_arg(&C, "--config");
    itest_cluster_arg(&C, config_path);
}

static void setup(const char *extra_e0)
{
    setup_timed("--heartbeat-interval=50ms", "--election-timeout=500ms", "--stop-timeout=200ms",
                extra_e0);
}

static void check_no_overlap(void)
{
    for (int e = 0; e < N_ELECTIONS; e++) {
        char path[400];
        events_path(e, path, sizeof(path));
        events_t ev;
        if (!events_load(path, &ev))
            continue;
        size_t a, b;
        if (events_overlap(&ev, &a, &b))
            cr_assert_fail("election e%d: primaries overlap: %s pid %d [%llu, %llu] and %s pid "
                           "%d [%llu, %llu]",
                           e, ev.iv[a].node, ev.iv[a].pid, (unsigned long long)ev.iv[a].start_ns,
                           (unsigned long long)ev.iv[a].end_ns, ev.iv[b].node, ev.iv[b].pid,
                           (unsigned long long)ev.iv[b].start_ns,
                           (unsigned long long)ev.iv[b].end_ns);
    }
}

/* The interval running election e now (newest, open), copied to *out; false if none. */
static bool running(int e, events_interval_t *out)
{
    char path[400];
    events_path(e, path, sizeof(path));
    events_t ev;
    if (!events_load(path, &ev) || ev.n == 0 || !ev.iv[ev.n - 1].open)
        return false;
    *out = ev.iv[ev.n - 1];
    return true;
}

/* Polls until every election runs somewhere, and (spread) no member runs more than
 * N_ELECTIONS / 3 of them; fills now[]. */
static bool wait_all_running(events_interval_t now[N_ELECTIONS], bool spread, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms, settled_since = 0;
    int pids[N_ELECTIONS] = {0};
    do {
        int per_node[3] = {0}, ok = 0;
        bool same = true;
        for (int e = 0; e < N_ELECTIONS; e++)
            if (running(e, &now[e])) {
                ok++;
                per_node[now[e].node[0] - 'a']++;
                same = same && now[e].pid == pids[e];
                pids[e] = now[e].pid;
            }
        bool even = per_node[0] <= N_ELECTIONS / 3 && per_node[1] <= N_ELECTIONS / 3 &&
                    per_node[2] <= N_ELECTIONS / 3;
        if (ok == N_ELECTIONS && !spread)
            return true;
        /* Spread, and no move for 3 E: a rebalancing that passes through 2/2/2 is over. */
        if (ok == N_ELECTIONS && even && same && settled_since == 0)
            settled_since = itest_now_ms();
        else if (!(ok == N_ELECTIONS && even && same))
            settled_since = 0;
        if (settled_since != 0 && itest_now_ms() - settled_since >= 3 * E_MS)
            return true;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return false;
}

/* Starts the members (after setup) and waits for the elections to settle 2/2/2; returns the
 * Raft leader's index. */
static int start_spread(events_interval_t before[N_ELECTIONS])
{
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    cr_assert(wait_all_running(before, true, 30000), "the six elections are not spread 2/2/2");
    return l;
}

static int node_index(const char *name)
{
    return name[0] - 'a';
}

/* After `victim` lost its elections: each of them runs elsewhere, every other election is
 * still the very same process (no stop, no restart). */
static void expect_only_victims_moved(const events_interval_t before[N_ELECTIONS],
                                      const char *victim)
{
    events_interval_t after[N_ELECTIONS];
    uint64_t deadline = itest_now_ms() + 20000;
    bool moved = false;
    while (!moved && itest_now_ms() < deadline) {
        moved = wait_all_running(after, false, 1000);
        for (int e = 0; moved && e < N_ELECTIONS; e++)
            moved = strcmp(after[e].node, victim) != 0 || strcmp(before[e].node, victim) != 0;
        if (!moved)
            usleep(20000);
    }
    cr_assert(moved, "the elections of %s do not run elsewhere", victim);
    for (int e = 0; e < N_ELECTIONS; e++) {
        if (strcmp(before[e].node, victim) == 0) {
            cr_assert_str_neq(after[e].node, victim, "e%d still on %s", e, victim);
        } else {
            cr_assert_eq(after[e].pid, before[e].pid,
                         "e%d on healthy %s was stopped or restarted (pid %d then %d)", e,
                         before[e].node, before[e].pid, after[e].pid);
        }
    }
}

/* Node i's electd_election_failover_duration_seconds for election e: its count (-1 when
 * /metrics does not answer or lacks the series) and its sum. */
static long failovers(int i, int e, double *sum)
{
    static char body[1 << 17];
    *sum = 0;
    if (itest_http(C.nodes[i].http_port, "GET", "/metrics", NULL, body, sizeof(body)) != 200)
        return -1;
    char key[128];
    snprintf(key, sizeof(key), "\nelectd_election_failover_duration_seconds_sum{election=\"e%d\"} ",
             e);
    const char *p = strstr(body, key);
    if (p != NULL)
        *sum = strtod(p + strlen(key), NULL);
    snprintf(key, sizeof(key),
             "\nelectd_election_failover_duration_seconds_count{election=\"e%d\"} ", e);
    p = strstr(body, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* No failover on any running member: placing, rebalancing, transfers and a member's shutdown
 * are graceful moves. */
static void expect_no_failovers(void)
{
    double sum;
    for (int i = 0; i < C.n; i++)
        for (int e = 0; e < N_ELECTIONS && C.nodes[i].pid != 0; e++)
            cr_assert_eq(failovers(i, e, &sum), 0, "%s counts a failover of e%d before any",
                         C.nodes[i].name, e);
}

/* After `victim` lost its elections: each of them counts one failover or more (of at most a
 * few election timeouts) on the member that took it over, the others none on any survivor. */
static void expect_failovers_of(const events_interval_t before[N_ELECTIONS], int victim)
{
    events_interval_t after[N_ELECTIONS];
    cr_assert(wait_all_running(after, false, 5000));
    for (int e = 0; e < N_ELECTIONS; e++) {
        bool moved = node_index(before[e].node) == victim;
        int holder = node_index(after[e].node);
        long count = -1;
        double sum = 0;
        /* The start is measured at the holder's next look (a heartbeat or so). */
        for (int tries = 0; tries < 100; tries++) {
            count = failovers(holder, e, &sum);
            if (!moved || count >= 1)
                break;
            usleep(20000);
        }
        if (moved) {
            cr_log_info("e%d: %ld failovers to %s, %.3f s", e, count, after[e].node, sum);
            cr_assert_geq(count, 1, "e%d moved to %s: no failover counted there", e, after[e].node);
            cr_assert(sum > 0 && sum < 20.0 * E_MS / 1000 * count, "e%d: %ld failovers, %.3f s", e,
                      count, sum);
        }
        for (int i = 0; i < C.n; i++)
            if (i != victim && (!moved || i != holder))
                cr_assert_eq(failovers(i, e, &sum), 0, "%s counts a failover of e%d",
                             C.nodes[i].name, e);
    }
}

Test(named, elections_spread_and_a_kill_9_of_a_holder_moves_only_its_elections)
{
    /* Workloads that take their whole stop timeout to stop (killed at its end): a move that
     * started the successor before the holder had stopped would overlap by that long. */
    setenv("TESTWORKER_IGNORE_TERM", "1", 1);
    setup(NULL);
    events_interval_t before[N_ELECTIONS];
    int l = start_spread(before);
    int victim = (l + 1) % 3; /* a holder that does not lead */
    int pids[N_ELECTIONS], n_pids = 0;
    for (int e = 0; e < N_ELECTIONS; e++)
        if (node_index(before[e].node) == victim)
            pids[n_pids++] = before[e].pid;
    cr_assert_eq(n_pids, 2);
    expect_no_failovers();
    itest_node_signal(&C, victim, SIGKILL);
    for (int i = 0; i < n_pids; i++)
        cr_assert(itest_pid_gone(pids[i], 2000), "a workload outlived its electd");
    expect_only_victims_moved(before, C.nodes[victim].name);
    expect_failovers_of(before, victim);
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

Test(named, a_kill_9_of_the_raft_leader_stops_nothing_on_the_healthy_members)
{
    setup(NULL);
    events_interval_t before[N_ELECTIONS];
    int l = start_spread(before);
    itest_node_signal(&C, l, SIGKILL);
    cr_assert_geq(itest_wait_leader(&C, 10000), 0, "no new leader");
    expect_only_victims_moved(before, C.nodes[l].name);
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

Test(named, a_frozen_holder_loses_its_elections_by_its_deadline_and_never_overlaps)
{
    setup(NULL);
    events_interval_t before[N_ELECTIONS];
    int l = start_spread(before);
    int victim = (l + 2) % 3;
    itest_node_signal(&C, victim, SIGSTOP);
    /* Its shims enforce the session's end on their own; the others take over after it. */
    expect_only_victims_moved(before, C.nodes[victim].name);
    itest_node_signal(&C, victim, SIGCONT);
    /* Back: it may get elections again (rebalance), always after their holders stopped. */
    events_interval_t again[N_ELECTIONS];
    cr_assert(wait_all_running(again, true, 30000), "not spread again after SIGCONT");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

Test(named, prefer_holds_an_election_where_preferred_and_no_primary_holds_nothing)
{
    setup("\"prefer\":[\"c\"],");
    itest_node_t *a = &C.nodes[0];
    a->extra[a->n_extra++] = "--no-primary";
    itest_cluster_start(&C);
    events_interval_t now[N_ELECTIONS];
    uint64_t deadline = itest_now_ms() + 30000;
    bool ok = false;
    while (!ok && itest_now_ms() < deadline) {
        ok = wait_all_running(now, false, 1000) && strcmp(now[0].node, "c") == 0;
        for (int e = 0; ok && e < N_ELECTIONS; e++)
            ok = strcmp(now[e].node, "a") != 0;
        for (int e = 0, on_b = 0, on_c = 0; ok && e < N_ELECTIONS; e++) {
            on_b += now[e].node[0] == 'b';
            on_c += now[e].node[0] == 'c';
            ok = e < N_ELECTIONS - 1 || (on_b == 3 && on_c == 3);
        }
    }
    cr_assert(ok, "e0 not on c, or an election on the --no-primary member a, or not 3/3");
    /* With b dead every election goes to c: the standby a holds only what no one else can. */
    itest_node_signal(&C, 1, SIGKILL);
    deadline = itest_now_ms() + 20000;
    bool all_on_c = false;
    while (!all_on_c && itest_now_ms() < deadline) {
        all_on_c = wait_all_running(now, false, 1000);
        for (int e = 0; all_on_c && e < N_ELECTIONS; e++)
            all_on_c = strcmp(now[e].node, "c") == 0;
        if (!all_on_c)
            usleep(20000);
    }
    cr_assert(all_on_c, "with b dead, c (not the standby a) does not hold every election");
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

static void sighup_all(void)
{
    for (int i = 0; i < C.n; i++)
        if (C.nodes[i].pid)
            kill(C.nodes[i].pid, SIGHUP);
}

static bool wait_log_all(const char *needle, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        bool all = true;
        for (int i = 0; i < C.n; i++)
            all = all && itest_log_count(&C, i, needle) > 0;
        if (all)
            return true;
        usleep(20000);
    } while (itest_now_ms() < deadline);
    return false;
}

Test(named, sighup_adds_and_removes_elections_and_refuses_an_invalid_file)
{
    setup(NULL);
    itest_cluster_start(&C);
    events_interval_t before[N_ELECTIONS];
    cr_assert(wait_all_running(before, true, 30000), "the six elections are not spread 2/2/2");

    /* An invalid file: refused, everything stays. */
    FILE *f = fopen(config_path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"elections\":{\"e0\":{\"exec\":[]}}\n");
    fclose(f);
    sighup_all();
    cr_assert(wait_log_all("reload refused", 5000), "an invalid file was not refused");

    /* e5 removed, e6 added. */
    write_config_mask(((1u << N_ELECTIONS) - 1 - (1u << 5)) | (1u << 6), NULL);
    sighup_all();
    cr_assert(wait_log_all("reload: named elections", 5000));
    events_interval_t e6;
    uint64_t deadline = itest_now_ms() + 20000;
    while (!running(6, &e6) && itest_now_ms() < deadline)
        usleep(20000);
    cr_assert(running(6, &e6), "the added election does not run");
    char path[400];
    events_path(5, path, sizeof(path));
    events_t ev;
    bool stopped = false;
    while (!stopped && itest_now_ms() < deadline) {
        stopped = events_load(path, &ev) && ev.n > 0 && !ev.iv[ev.n - 1].open;
        usleep(20000);
    }
    cr_assert(stopped, "the removed election still runs");
    cr_assert(ev.iv[ev.n - 1].stopped, "the removed election was not stopped gracefully");
    for (int e = 0; e < 5; e++) {
        events_interval_t now;
        cr_assert(running(e, &now), "e%d stopped", e);
        /* A kept election may move once (the spread changes), never two at once. */
        (void)now;
    }
    /* It stays stopped: nobody declares it any more. */
    usleep(3 * E_MS * 1000);
    cr_assert(events_load(path, &ev) && !ev.iv[ev.n - 1].open, "the removed election restarted");
    itest_cluster_stop_all(&C);
    check_no_overlap();
    char p6[400];
    events_path(6, p6, sizeof(p6));
    cr_assert(events_load(p6, &ev));
    size_t a, b;
    cr_assert(!events_overlap(&ev, &a, &b), "e6 overlaps");
}

Test(named, sigterm_of_a_holder_hands_its_elections_over_before_it_exits)
{
    setup(NULL);
    events_interval_t before[N_ELECTIONS];
    int l = start_spread(before);
    int victim = (l + 1) % 3;
    int status = itest_node_stop(&C, victim);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "electd did not exit cleanly");
    /* Handed over, not failed over: the leader assigned them for the shutdown. */
    cr_assert_geq(itest_log_count(&C, l, "why=shutdown"), 2,
                  "the stopping member's elections were not handed over");
    expect_only_victims_moved(before, C.nodes[victim].name);
    expect_no_failovers();
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* GET /v1/events on node i: the stream's socket. */
static int sse_open(int i)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)C.nodes[i].http_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *req = "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    return fd;
}

/* Reads the stream (bounded) until needle appears in it; false at the timeout. */
static bool sse_wait(int fd, const char *needle, int timeout_ms, char *got, size_t cap)
{
    size_t len = strlen(got);
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    while (strstr(got, needle) == NULL && itest_now_ms() < deadline && len < cap - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, got + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        got[len] = '\0';
    }
    return strstr(got, needle) != NULL;
}

/* The election's token from GET /v1/elections/{name} on node i (0 if unreadable). */
static uint64_t token_of(int i, int e)
{
    char path[64], body[2048];
    snprintf(path, sizeof(path), "/v1/elections/e%d", e);
    if (itest_http(C.nodes[i].http_port, "GET", path, NULL, body, sizeof(body)) != 200)
        return 0;
    const char *t = strstr(body, "\"fencing_token\":");
    return t ? strtoull(t + strlen("\"fencing_token\":"), NULL, 10) : 0;
}

Test(named, transfer_moves_one_election_gracefully_and_its_old_token_is_fenced)
{
    setup(NULL);
    /* Without rebalancing: a transfer unevens the spread, which would move another back. */
    itest_cluster_arg(&C, "--rebalance=false");
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    events_interval_t before[N_ELECTIONS];
    cr_assert(wait_all_running(before, false, 30000), "not every election runs");
    uint64_t old = token_of(l, 0);
    cr_assert_gt(old, 0);
    /* A write fenced by e0's token is accepted, on any member (through its leader). */
    char path[128], body[2048];
    snprintf(path, sizeof(path), "/v1/kv/k?fence=%llu&election=e0", (unsigned long long)old);
    cr_assert_eq(itest_http(C.nodes[l].http_port, "PUT", path, "v1", body, sizeof(body)), 200, "%s",
                 body);

    int to = (node_index(before[0].node) + 1) % 3;
    int sse = sse_open((l + 1) % 3);
    static char stream[1 << 16];
    stream[0] = '\0';
    cr_assert(sse_wait(sse, "event: state", 5000, stream, sizeof(stream)), "%s", stream);
    /* To the member after e0's holder. A target the leader has not yet heard from lately
     * (a busy host) is refused as not live (409): asked again, bounded. */
    int code = 0;
    uint64_t until = itest_now_ms() + 5000;
    for (;;) {
        events_interval_t cur;
        if (running(0, &cur))
            to = (node_index(cur.node) + 1) % 3;
        snprintf(path, sizeof(path), "/v1/elections/e0/transfer?to=%s", C.nodes[to].name);
        code = itest_http(C.nodes[(l + 2) % 3].http_port, "POST", path, NULL, body, sizeof(body));
        if (code != 409 || itest_now_ms() >= until)
            break;
        usleep(100000);
    }
    cr_assert_eq(code, 202, "transfer answered %d: %s", code, body);
    events_interval_t now;
    uint64_t deadline = itest_now_ms() + 15000;
    while (!(running(0, &now) && strcmp(now.node, C.nodes[to].name) == 0) &&
           itest_now_ms() < deadline)
        usleep(20000);
    cr_assert_str_eq(now.node, C.nodes[to].name, "e0 did not move to %s", C.nodes[to].name);
    uint64_t fresh = token_of(l, 0);
    cr_assert_gt(fresh, old, "the token did not rise with the new holder");
    cr_assert_eq(now.token, fresh, "the new workload did not get the new token");
    /* The event stream told of it. */
    char needle[128];
    snprintf(needle, sizeof(needle),
             "event: election\ndata: {\"name\":\"e0\",\"holder\":\"%s\",\"fencing_token\":%llu",
             C.nodes[to].name, (unsigned long long)fresh);
    cr_assert(sse_wait(sse, needle, 5000, stream, sizeof(stream)), "no election event:\n%s",
              stream);
    close(sse);

    /* The old holder's token is refused at apply time; the new one is accepted. */
    snprintf(path, sizeof(path), "/v1/kv/k?fence=%llu&election=e0", (unsigned long long)old);
    code = itest_http(C.nodes[l].http_port, "PUT", path, "stale", body, sizeof(body));
    cr_assert_eq(code, 409, "a stale token of e0 answered %d: %s", code, body);
    cr_assert(strstr(body, "fenced") != NULL, "%s", body);
    snprintf(path, sizeof(path), "/v1/kv/k?fence=%llu&election=e0", (unsigned long long)fresh);
    cr_assert_eq(itest_http(C.nodes[l].http_port, "PUT", path, "v2", body, sizeof(body)), 200, "%s",
                 body);
    /* Only e0 moved. */
    for (int e = 1; e < N_ELECTIONS; e++) {
        cr_assert(running(e, &now));
        cr_assert_eq(now.pid, before[e].pid, "e%d was restarted by e0's transfer", e);
    }
    expect_no_failovers();
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* A handover completes once the holder's workload has stopped, not at the holder's next
 * periodic look at its elections (every 4 heartbeats: 4 s here). Four transfers in a row take
 * well under what waiting for those looks does (about one period each: 7-8 s for four at 2 s
 * periods); with the call, under a second each even in the sanitizer build on a busy host. */
Test(named, a_handover_completes_when_the_workload_stops_not_at_the_next_periodic_look)
{
    setup_timed("--heartbeat-interval=1s", "--election-timeout=10s", "--stop-timeout=1s", NULL);
    itest_cluster_arg(&C, "--rebalance=false");
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 30000);
    cr_assert_geq(l, 0);
    events_interval_t now[N_ELECTIONS];
    cr_assert(wait_all_running(now, false, 60000), "not every election runs");
    uint64_t t0 = itest_now_ms();
    for (int k = 0; k < 4; k++) {
        cr_assert(running(0, &now[0]));
        int to = (node_index(now[0].node) + 1) % 3;
        char path[128], body[2048];
        snprintf(path, sizeof(path), "/v1/elections/e0/transfer?to=%s", C.nodes[to].name);
        /* A member's declaration is written at its first look at its elections, which can
         * come after the others already run every election (rebalancing is off): until the
         * leader has applied it, the member is not a valid target (409 invalid_target). */
        int code = 0;
        for (int tries = 0; tries < 100; tries++) {
            if (k == 0)
                t0 = itest_now_ms();
            code = itest_http(C.nodes[l].http_port, "POST", path, NULL, body, sizeof(body));
            if (k != 0 || code != 409 || strstr(body, "invalid_target") == NULL)
                break;
            usleep(100000);
        }
        cr_assert_eq(code, 202, "transfer %d answered %d: %s", k, code, body);
        uint64_t deadline = itest_now_ms() + 15000;
        while (!(running(0, &now[0]) && strcmp(now[0].node, C.nodes[to].name) == 0) &&
               itest_now_ms() < deadline)
            usleep(10000);
        cr_assert_str_eq(now[0].node, C.nodes[to].name, "transfer %d: e0 did not move", k);
    }
    uint64_t took = itest_now_ms() - t0;
    cr_assert_lt(took, 10000, "4 transfers took %llu ms: they waited for periodic looks",
                 (unsigned long long)took);
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* The checker bites: a build whose moves do not wait for the holder to stop (sidecar/named/
 * leader.c, ELECTD_MUTATION_NAMED_NO_HANDOVER) overlaps while it spreads the elections. */
Test(named, mutation_a_move_that_does_not_wait_for_the_stop_is_caught)
{
    setenv("TESTWORKER_IGNORE_TERM", "1", 1);
    setup(NULL);
    C.bin = ELECTD_MUT_NO_HANDOVER_BIN;
    /* Two members first, all six elections on them; the third then takes two by rebalancing,
     * so there are moves whatever the timing of the three declarations. */
    itest_node_start(&C, 0);
    itest_node_start(&C, 1);
    events_interval_t now[N_ELECTIONS];
    cr_assert(wait_all_running(now, false, 30000), "the six elections do not all run");
    itest_node_start(&C, 2);
    cr_assert(wait_all_running(now, true, 30000), "the six elections are not spread 2/2/2");
    itest_cluster_stop_all(&C);
    bool caught = false;
    for (int e = 0; e < N_ELECTIONS && !caught; e++) {
        char path[400];
        events_path(e, path, sizeof(path));
        events_t ev;
        size_t a, b;
        caught = events_load(path, &ev) && events_overlap(&ev, &a, &b);
    }
    cr_assert(caught, "the overlap check did not catch moves that skip the holder's stop");
}

/* A holder removed from the group: its elections move only once its last session is
 * provably over (its workloads take their whole stop timeout to die: an early move overlaps). */
Test(named, a_removed_holder_loses_its_elections_only_after_its_session)
{
    setenv("TESTWORKER_IGNORE_TERM", "1", 1);
    setup(NULL);
    events_interval_t before[N_ELECTIONS];
    int l = start_spread(before);
    int victim = (l + 1) % 3;
    char path[64], body[1024];
    snprintf(path, sizeof(path), "/v1/members/%s", C.nodes[victim].name);
    int code = itest_http(C.nodes[l].http_port, "DELETE", path, NULL, body, sizeof(body));
    cr_assert(code == 200 || code == 202, "DELETE %s answered %d: %s", path, code, body);
    expect_only_victims_moved(before, C.nodes[victim].name);
    expect_failovers_of(before, victim);
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* Elections on member `name` now (running there). */
static int held_by(const char *name)
{
    int n = 0;
    for (int e = 0; e < N_ELECTIONS; e++) {
        events_interval_t now;
        n += running(e, &now) && strcmp(now.node, name) == 0;
    }
    return n;
}

/* Maintenance mode (operations.md): a dead holder's elections still move (failover), but
 * when it comes back nothing is rebalanced onto it until maintenance is off. */
Test(named, maintenance_freezes_rebalancing_but_not_failover)
{
    setup(NULL);
    events_interval_t before[N_ELECTIONS];
    int l = start_spread(before);
    char body[1024];
    cr_assert_eq(itest_http(C.nodes[l].http_port, "POST", "/v1/maintenance",
                            "{\"enabled\":true,\"reason\":\"test\"}", body, sizeof(body)),
                 200, "%s", body);
    int victim = (l + 1) % 3;
    itest_node_signal(&C, victim, SIGKILL);
    expect_only_victims_moved(before, C.nodes[victim].name);
    itest_node_start(&C, victim);
    /* Rebalancing waits 4 E after the member is back; give it twice that, and more. */
    uint64_t deadline = itest_now_ms() + 12 * E_MS;
    while (itest_now_ms() < deadline) {
        cr_assert_eq(held_by(C.nodes[victim].name), 0,
                     "an election was rebalanced onto %s "
                     "during maintenance",
                     C.nodes[victim].name);
        usleep(20000);
    }
    int leader = itest_wait_leader(&C, 5000);
    cr_assert_geq(leader, 0);
    cr_assert_eq(itest_http(C.nodes[leader].http_port, "POST", "/v1/maintenance",
                            "{\"enabled\":false}", body, sizeof(body)),
                 200, "%s", body);
    events_interval_t after[N_ELECTIONS];
    cr_assert(wait_all_running(after, true, 30000), "no rebalancing once maintenance was off");
    cr_assert_eq(held_by(C.nodes[victim].name), N_ELECTIONS / 3);
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* The only member stops: nobody can succeed it, so the (stopping) leader releases its
 * elections once their stops completed, and it exits without waiting for a successor that no
 * one would choose (two election timeouts plus --hook-timeout, 30 s, with a hook election).
 * The same holds when every member of a group stops at once. */
Test(named, the_last_member_releases_its_elections_when_it_stops)
{
    itest_cluster_init(&C, 1, 1);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    char path[400];
    snprintf(config_path, sizeof(config_path), "%s/electd.json", C.root);
    events_path(1, path, sizeof(path));
    FILE *f = fopen(config_path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"elections\":{\"e0\":{\"on-start\":[\"/bin/true\"],\"on-stop\":[\"/bin/true\"]},"
            "\"e1\":{\"exec\":[\"%s\",\"%s\"]}}}\n",
            TESTWORKER_BIN, path);
    fclose(f);
    itest_cluster_arg(&C, "--config");
    itest_cluster_arg(&C, config_path);
    itest_cluster_start(&C);
    char body[4096] = "";
    int primaries = 0;
    for (int k = 0; k < 200 && primaries < 2; k++) {
        if (itest_http(C.nodes[0].http_port, "GET", "/v1/elections", NULL, body, sizeof(body)) ==
            200)
            primaries = events_count(body, "\"state\":\"primary\"");
        if (primaries < 2)
            usleep(50000);
    }
    cr_assert_eq(primaries, 2, "both elections should run on the only member: %s", body);
    int status = itest_node_stop(&C, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "electd did not exit cleanly (%d)",
              status);
    cr_assert_eq(itest_log_count(&C, 0, "not handed over in time"), 0,
                 "the stop waited for a handover nobody could complete");
    cr_assert_eq(itest_log_count(&C, 0, "named election released"), 2);
    check_no_overlap();
}

/* Every member stops at once (a fleet shut down): the last of them is left without a quorum to
 * record any handover. Each runs its on-stops and exits promptly, rather than wait for a
 * handover that no leader can complete (up to two election timeouts plus --hook-timeout, 30 s,
 * before). */
Test(named, every_member_stopped_at_once_runs_its_on_stops_and_exits)
{
    setup_timed("--heartbeat-interval=50ms", "--election-timeout=500ms", "--stop-timeout=200ms",
                NULL);
    char path[400];
    events_path(0, path, sizeof(path));
    FILE *f = fopen(config_path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"elections\":{");
    for (int e = 0; e < 3; e++)
        fprintf(f,
                "%s\"e%d\":{\"on-start\":[\"%s\",\"--stamp\",\"%s\",\"started\",\"e%d\"],"
                "\"on-stop\":[\"%s\",\"--stamp\",\"%s\",\"stopped\",\"e%d\"]}",
                e ? "," : "", e, TESTWORKER_BIN, path, e, TESTWORKER_BIN, path, e);
    fprintf(f, "}}\n");
    fclose(f);
    itest_cluster_start(&C);
    int started = 0;
    for (int k = 0; k < 200 && started < 3; k++) {
        started = events_count(events_read(path), " started ");
        if (started < 3)
            usleep(50000);
    }
    cr_assert_geq(started, 3, "the three hook elections did not start");
    for (int i = 0; i < 3; i++)
        kill(C.nodes[i].pid, SIGTERM);
    for (int i = 0; i < 3; i++) {
        int status = -1;
        for (int k = 0; k < 1600 && status == -1; k++) { /* 8 s */
            if (waitpid(C.nodes[i].pid, &status, WNOHANG) != C.nodes[i].pid)
                status = -1, usleep(5000);
        }
        cr_assert(status != -1, "%s did not exit within 8 s of SIGTERM", C.nodes[i].name);
        C.nodes[i].pid = 0;
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %d",
                  C.nodes[i].name, status);
    }
    const char *text = events_read(path);
    cr_assert_eq(events_count(text, " stopped "), events_count(text, " started "),
                 "every on-start is followed by its on-stop: %s", text);
}
