/* test_cluster.c — real electd processes on loopback: elections, kill -9 failover, restart and
 * catch-up, graceful handover on SIGTERM, an idle member's wake-ups, refusal of intruders and
 * garbage on the peer port, and start-up refusals. Timeouts are generous bounds, not measurements
 * (see benchmarks). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

static itest_cluster_t C;

static void fini(void)
{
    itest_cluster_destroy(&C);
}

TestSuite(cluster, .fini = fini, .timeout = 120);

/* Fast timeouts keep the suite short; the default profile is exercised by the benchmark. */
static void fast(itest_cluster_t *c)
{
    itest_cluster_arg(c, "--heartbeat-interval=50ms");
    itest_cluster_arg(c, "--election-timeout=500ms");
    itest_cluster_arg(c, "--stop-timeout=200ms");
    itest_cluster_arg(c, "--log-level=debug");
}

static bool same_leader_count(int n_expected)
{
    int leaders = 0;
    for (int i = 0; i < C.n; i++) {
        itest_status_t st;
        if (itest_status(&C, i, &st) && strcmp(st.role, "leader") == 0)
            leaders++;
    }
    return leaders == n_expected;
}

static void elect_exactly_one(int n)
{
    itest_cluster_init(&C, n, n);
    fast(&C);
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0, "no leader agreed on by all %d nodes", n);
    cr_assert(same_leader_count(1), "more than one node claims to lead");
    itest_status_t st;
    for (int i = 0; i < n; i++) {
        cr_assert(itest_status(&C, i, &st));
        cr_assert_str_eq(st.leader, C.nodes[l].name);
        cr_assert_eq(st.voters, n);
    }
}

Test(cluster, three_nodes_elect_exactly_one_leader)
{
    elect_exactly_one(3);
}

Test(cluster, five_nodes_elect_exactly_one_leader)
{
    elect_exactly_one(5);
}

static bool caught_up_to(itest_cluster_t *c, int i, void *ud)
{
    itest_status_t st;
    return itest_status(c, i, &st) && st.applied >= *(uint64_t *)ud;
}

Test(cluster, kill_9_of_the_leader_fails_over_and_the_restarted_node_rejoins)
{
    itest_cluster_init(&C, 3, 3);
    fast(&C);
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    itest_status_t before;
    cr_assert(itest_status(&C, l, &before));

    uint64_t t0 = itest_now_ms();
    itest_node_signal(&C, l, SIGKILL);
    int l2 = itest_wait_leader(&C, 10000);
    uint64_t took = itest_now_ms() - t0;
    cr_assert_geq(l2, 0, "no new leader after kill -9");
    cr_assert_neq(l2, l);
    /* Bound: stickiness (E) + jitter + a round trip; 4 E is generous for a loaded machine. */
    cr_assert_lt(took, 4 * 500 + 2000, "failover took %llu ms", (unsigned long long)took);
    itest_status_t st;
    cr_assert(itest_status(&C, l2, &st));
    cr_assert_gt(st.term, before.term);

    itest_node_start(&C, l);
    cr_assert_eq(itest_wait_leader(&C, 10000), l2, "restarted node disturbed the leader");
    cr_assert(itest_status(&C, l2, &st));
    uint64_t target = st.commit;
    cr_assert(itest_wait_all(&C, 10000, caught_up_to, &target), "restarted node did not catch up");
    itest_status_t a, b;
    cr_assert(itest_status(&C, l, &a) && itest_status(&C, l2, &b));
    cr_assert_eq(a.last_index, b.last_index, "logs differ after catch-up");
    cr_assert_eq(a.term, b.term);
}

Test(cluster, sigterm_of_the_leader_hands_over_and_exits_cleanly)
{
    itest_cluster_init(&C, 3, 3);
    fast(&C);
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    int status = itest_node_stop(&C, l);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "electd did not exit 0 on SIGTERM");
    cr_assert_eq(itest_log_count(&C, l, "handing leadership over before exit"), 1);
    int l2 = itest_wait_leader(&C, 5000);
    cr_assert_geq(l2, 0);
    cr_assert_neq(l2, l);
    /* A follower's SIGTERM does not disturb the leader. */
    int f = 3 - l - l2;
    status = itest_node_stop(&C, f);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    itest_status_t st;
    cr_assert(itest_status(&C, l2, &st));
    cr_assert_str_eq(st.role, "leader");
}

/* How often pid's event loop went to sleep so far: its main thread's voluntary context
 * switches (/proc/PID/status is the thread group leader's, the thread the loop runs on). */
static long loop_sleeps(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return v;
}

/* An idle member wakes for work only: a heartbeat to send or to answer (about 7 a second at
 * the default 150 ms; a quiet leader reads the answers with its next heartbeat), not at every
 * 10 ms tick of the core's clock, nor for timers that have nothing to check. Counted over 3 s
 * with no request made to the members meanwhile. */
Test(cluster, an_idle_member_wakes_for_heartbeats_not_for_every_tick)
{
    itest_cluster_init(&C, 3, 3);
    itest_cluster_arg(&C, "--log-level=warn");
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0, "no leader");
    long before[3];
    for (int i = 0; i < 3; i++)
        before[i] = loop_sleeps(C.nodes[i].pid);
    const int seconds = 3;
    sleep(seconds);
    long after[3];
    for (int i = 0; i < 3; i++)
        after[i] = loop_sleeps(C.nodes[i].pid);
    cr_assert_eq(itest_wait_leader(&C, 5000), l, "the leader changed while the group was idle");
    for (int i = 0; i < 3; i++) {
        cr_assert(before[i] >= 0 && after[i] >= 0, "cannot read /proc for %s", C.nodes[i].name);
        double per_s = (double)(after[i] - before[i]) / seconds;
        /* The leader wakes to send each heartbeat (and for the replies, when it is not quiet);
         * a follower to answer. */
        cr_assert_lt(per_s, 50.0, "%s (%s) woke %.0f times a second while idle", C.nodes[i].name,
                     i == l ? "leader" : "follower", per_s);
    }
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

Test(cluster, intruders_and_garbage_on_the_peer_port_are_refused)
{
    itest_cluster_init(&C, 4, 3);
    fast(&C);
    itest_cluster_arg(&C, "--cluster-token=correct-horse");
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    itest_status_t before;
    cr_assert(itest_status(&C, l, &before));

    /* Garbage and an oversized frame claim on every node's peer port. */
    for (int i = 0; i < 3; i++) {
        int fd = raw_connect(C.nodes[i].peer_port);
        char junk[4096];
        for (size_t k = 0; k < sizeof(junk); k++)
            junk[k] = (char)(k * 131 + 7);
        cr_assert_eq(send(fd, junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
        close(fd);
    }
    /* A node with the wrong token, pretending to be node "a" of this cluster. */
    C.nodes[3].extra[C.nodes[3].n_extra++] = "--cluster-token=wrong";
    snprintf(C.nodes[3].name, sizeof(C.nodes[3].name), "a");
    C.nodes[3].joiner = false;
    itest_node_start(&C, 3);
    uint64_t deadline = itest_now_ms() + 5000;
    int refused = 0;
    while (itest_now_ms() < deadline && refused == 0) {
        for (int i = 0; i < 3; i++)
            refused += itest_log_count(&C, i, "cluster token mismatch");
        usleep(50000);
    }
    cr_assert_gt(refused, 0, "wrong token was not refused");
    itest_node_signal(&C, 3, SIGKILL);
    for (int i = 0; i < 3; i++) {
        cr_assert_gt(itest_log_count(&C, i, "dropping peer connection"), 0,
                     "node %d did not log the garbage", i);
        cr_assert_neq(C.nodes[i].pid, 0);
        cr_assert_eq(kill(C.nodes[i].pid, 0), 0, "node %d died", i);
    }
    cr_assert_eq(itest_wait_leader(&C, 5000), l, "leadership changed because of garbage");
    itest_status_t after;
    cr_assert(itest_status(&C, l, &after));
    cr_assert_eq(after.term, before.term);
}

Test(cluster, another_clusters_node_is_refused)
{
    itest_cluster_init(&C, 3, 3);
    fast(&C);
    itest_cluster_start(&C);
    cr_assert_geq(itest_wait_leader(&C, 15000), 0);
    /* Same names, different cluster name: a different cluster id. */
    itest_cluster_t other;
    itest_cluster_init(&other, 1, 1);
    char peers[256];
    snprintf(peers, sizeof(peers), "a=127.0.0.1:%d,b=127.0.0.1:%d", other.nodes[0].peer_port,
             C.nodes[1].peer_port);
    snprintf(other.peers, sizeof(other.peers), "%s", peers);
    itest_cluster_arg(&other, "--cluster-name=elsewhere");
    itest_node_start(&other, 0);
    uint64_t deadline = itest_now_ms() + 5000;
    while (itest_now_ms() < deadline && itest_log_count(&C, 1, "another cluster") == 0)
        usleep(50000);
    itest_cluster_destroy(&other);
    cr_assert_gt(itest_log_count(&C, 1, "another cluster"), 0, "foreign node not refused");
}

/* True when node i's member list names the impostor's HTTP address for some member. */
static bool members_mention(int i, const char *needle)
{
    char body[8192];
    if (itest_http(C.nodes[i].http_port, "GET", "/v1/members", NULL, body, sizeof(body)) != 200)
        return false;
    return strstr(body, needle) != NULL;
}

Test(cluster, a_second_process_under_a_members_name_is_refused)
{
    itest_cluster_init(&C, 4, 3);
    fast(&C);
    /* Node 3 is an impostor: b's name and --peers, but its own ports and a fresh data dir. */
    snprintf(C.nodes[3].name, sizeof(C.nodes[3].name), "b");
    itest_cluster_start(&C);
    cr_assert_geq(itest_wait_leader(&C, 15000), 0);
    char real[64], fake[64];
    snprintf(real, sizeof(real), "127.0.0.1:%d", C.nodes[1].http_port);
    snprintf(fake, sizeof(fake), "127.0.0.1:%d", C.nodes[3].http_port);
    uint64_t deadline = itest_now_ms() + 5000;
    while (itest_now_ms() < deadline && !(members_mention(0, real) && members_mention(2, real)))
        usleep(20000);
    cr_assert(members_mention(0, real) && members_mention(2, real), "b's address not learned");

    itest_node_start(&C, 3);
    deadline = itest_now_ms() + 5000;
    bool hijacked = false, refused = false;
    while (itest_now_ms() < deadline && !hijacked && !refused) {
        hijacked = members_mention(0, fake) || members_mention(2, fake);
        char body[8192];
        refused = itest_http(C.nodes[0].http_port, "GET", "/v1/status", NULL, body, sizeof(body)) ==
                      200 &&
                  strstr(body, "refused_peers") != NULL && strstr(body, "\"name\":\"b\"") &&
                  itest_log_count(&C, 2, "refused") > 0;
        usleep(20000);
    }
    cr_assert(!hijacked, "a member advertises the impostor's HTTP address for b");
    cr_assert(refused, "the impostor was not refused (status and log of a and c)");
    deadline = itest_now_ms() + 5000;
    while (itest_now_ms() < deadline && itest_log_count(&C, 3, "peer refused us") == 0)
        usleep(20000);
    cr_assert_gt(itest_log_count(&C, 3, "peer refused us"), 0, "the impostor was not told");
    itest_node_stop(&C, 3);
    cr_assert(members_mention(0, real) && members_mention(2, real));
    cr_assert(!members_mention(0, fake) && !members_mention(2, fake));

    /* The pin survives a restart: a restarted a still refuses the impostor. */
    itest_node_stop(&C, 0);
    itest_node_start(&C, 0);
    int before = itest_log_count(&C, 0, "refused a second process");
    itest_node_start(&C, 3);
    deadline = itest_now_ms() + 5000;
    while (itest_now_ms() < deadline &&
           itest_log_count(&C, 0, "refused a second process") == before)
        usleep(20000);
    cr_assert_gt(itest_log_count(&C, 0, "refused a second process"), before);
    cr_assert(!members_mention(0, fake));
}

static int run_electd(const char *const *args, char *out, size_t cap)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        alarm(10); /* a node that starts instead of refusing is stopped, and the test fails */
        const char *argv[32] = {ELECTD_BIN};
        for (int i = 0; args[i] && i < 30; i++)
            argv[i + 1] = args[i];
        execv(ELECTD_BIN, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(pipefd[0], out + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(startup, invalid_settings_are_refused_with_a_message_naming_them)
{
    char out[4096];
    const char *bad_duration[] = {"--name=a", "--peers=a=127.0.0.1:1", "--data-dir=/tmp/x",
                                  "--election-timeout=abc", NULL};
    cr_assert_eq(run_electd(bad_duration, out, sizeof(out)), 2);
    cr_assert(strstr(out, "--election-timeout") != NULL, "%s", out);
    const char *unknown[] = {"--no-such-flag", NULL};
    cr_assert_eq(run_electd(unknown, out, sizeof(out)), 2);
    cr_assert(strstr(out, "no-such-flag") != NULL, "%s", out);
    const char *hb[] = {"--name=a", "--peers=a=127.0.0.1:1", "--data-dir=/tmp/x",
                        "--heartbeat-interval=2s", NULL};
    cr_assert_eq(run_electd(hb, out, sizeof(out)), 2);
    cr_assert(strstr(out, "--heartbeat-interval") != NULL, "%s", out);
    const char *help[] = {"--help", NULL};
    cr_assert_eq(run_electd(help, out, sizeof(out)), 0);
    cr_assert(strstr(out, "--election-timeout") != NULL);
}

Test(startup, a_foreign_database_is_refused_not_reinitialised)
{
    char dir[] = "/tmp/electd-itest-db-XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    char path[300];
    snprintf(path, sizeof(path), "%s/electd.db", dir);
    FILE *f = fopen(path, "w");
    fputs("this is not a database, it is a text file that happens to be here\n", f);
    fclose(f);
    char dd[320], out[4096];
    snprintf(dd, sizeof(dd), "--data-dir=%s", dir);
    const char *args[] = {"--name=a", "--peers=a=127.0.0.1:1", dd, "--listen-http=127.0.0.1:0",
                          NULL};
    cr_assert_eq(run_electd(args, out, sizeof(out)), 1);
    cr_assert(strstr(out, "electd.db") != NULL, "%s", out);
    f = fopen(path, "r");
    char line[128];
    cr_assert(fgets(line, sizeof(line), f) != NULL);
    fclose(f);
    cr_assert(strncmp(line, "this is not a database", 22) == 0, "file was overwritten");
    unlink(path);
    rmdir(dir);
}

/* electd refuses a --peers list in which another member's address is its own listener. */
Test(startup, a_member_that_would_dial_itself_is_refused)
{
    int port = 20000 + (int)(getpid() % 20000);
    char peers[128], listen[64], out[4096];
    const char *dd = "--data-dir=/tmp/electd-itest-selfdial-never-created";
    snprintf(peers, sizeof(peers), "--peers=a=127.0.0.1:%d,b=[::ffff:127.0.0.1]:%d", port, port);
    const char *mapped[] = {"--name=a", peers, dd, "--listen-http=127.0.0.1:0", NULL};
    cr_assert_eq(run_electd(mapped, out, sizeof(out)), 2, "%s", out);
    cr_assert(strstr(out, "\"b\"") != NULL && strstr(out, "this node's own") != NULL, "%s", out);
    snprintf(peers, sizeof(peers), "--peers=a=127.0.0.1:%d,b=127.0.0.2:%d", port, port);
    snprintf(listen, sizeof(listen), "--listen-peer=0.0.0.0:%d", port);
    const char *wild[] = {
        "--name=a", peers, listen, dd, "--listen-http=127.0.0.1:0", "--cluster-token=t0ken", NULL};
    cr_assert_eq(run_electd(wild, out, sizeof(out)), 2, "%s", out);
    cr_assert(strstr(out, "this node's own") != NULL, "%s", out);
}
