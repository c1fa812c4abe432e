/* test_release.c — the released-lease notice on real processes (docs/guarantees.md, "Released
 * lease on process death"), every test under the overlap checker: kill -9 of the primary's
 * electd makes its shim, once the workload's group is gone, tell both other members (plain
 * and over peer TLS) and the successor starts before the lease would have ended; a frozen
 * electd (SIGSTOP) sends nothing and the failover waits out the lease; a notice from a
 * stranger (another cluster token) is refused at the handshake; a process of the workload's
 * group that is still there (a zombie nobody has reaped yet) holds the notice back until it
 * is gone. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "events.h"
#include "node.h"

#define E_MS 2000 /* long enough that "before the lease would have ended" is unmistakable */

static itest_cluster_t C;
static char events_path[400];
static char certs[300];

static void fini(void)
{
    itest_cluster_destroy(&C);
    if (certs[0] != '\0') {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
        (void)!system(cmd);
    }
}

TestSuite(release, .fini = fini, .timeout = 180);

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void node_arg(itest_cluster_t *c, int i, const char *arg)
{
    itest_node_t *nd = &c->nodes[i];
    cr_assert_lt(nd->n_extra, ITEST_MAX_ARGS);
    nd->extra[nd->n_extra++] = arg;
}

static void make_certs(void)
{
    cr_assert(itest_peer_certs(MAKE_PEER_CERTS_SH, certs, sizeof(certs)),
              "make_peer_certs.sh failed (is the openssl CLI installed?)");
    static char args[3][3][450];
    for (int i = 0; i < 3; i++) {
        const char *n = C.nodes[i].name;
        snprintf(args[i][0], sizeof(args[i][0]), "--peer-cert-file=%s/%s.crt", certs, n);
        snprintf(args[i][1], sizeof(args[i][1]), "--peer-key-file=%s/%s.key", certs, n);
        snprintf(args[i][2], sizeof(args[i][2]), "--peer-trusted-ca-file=%s/trust.crt", certs);
        for (int k = 0; k < 3; k++)
            node_arg(&C, i, args[i][k]);
    }
}

/* A 3-member group running the test worker, through `sh -c` when script is set (a format with
 * one %s, the cluster's root directory; the worker is exec'd after it), with peer TLS when
 * tls is set. */
static void setup(const char *script, bool tls)
{
    static char sh[1200], pre[700];
    itest_cluster_init(&C, 3, 3);
    itest_cluster_arg(&C, "--heartbeat-interval=100ms");
    itest_cluster_arg(&C, "--election-timeout=2000ms");
    itest_cluster_arg(&C, "--stop-timeout=300ms");
    snprintf(events_path, sizeof(events_path), "%s/events", C.root);
    if (tls)
        make_certs();
    if (script != NULL) {
        snprintf(pre, sizeof(pre), script, C.root);
        snprintf(sh, sizeof(sh), "%s; exec '%s' '%s'", pre, TESTWORKER_BIN, events_path);
    }
    for (int i = 0; i < 3; i++) {
        node_arg(&C, i, "--exec");
        node_arg(&C, i, "--");
        if (script != NULL) {
            node_arg(&C, i, "/bin/sh");
            node_arg(&C, i, "-c");
            node_arg(&C, i, sh);
        } else {
            node_arg(&C, i, TESTWORKER_BIN);
            node_arg(&C, i, events_path);
        }
    }
}

/* Starts the group and waits for the first primary; its node index, its interval in *old. */
static int start_until_primary(events_interval_t *old)
{
    itest_cluster_start(&C);
    cr_assert(events_first_primary(events_path, 20000, old), "no workload started");
    int l = itest_node_index(&C, old->node);
    cr_assert_geq(l, 0);
    return l;
}

static bool wait_log(int i, const char *needle, int count, int ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)ms;
    do {
        if (itest_log_count(&C, i, needle) >= count)
            return true;
        usleep(10000);
    } while (itest_now_ms() < deadline);
    return false;
}

static void check_no_overlap(void)
{
    char why[400];
    cr_assert(events_file_no_overlap(events_path, why, sizeof(why)), "%s", why);
}

/* kill -9 of the primary's electd: the notice reaches both members (logged by the shim and by
 * each receiver), and the successor's workload starts well before the lease would have
 * ended. */
static int kill_9_fast_failover(void)
{
    events_interval_t old;
    int l = start_until_primary(&old);
    events_t ev;
    events_load(events_path, &ev);
    uint64_t killed_ns = mono_ns();
    itest_node_signal(&C, l, SIGKILL);
    cr_assert(itest_pid_gone(old.pid, 2000), "the workload outlived its electd");
    cr_assert(wait_log(l, "released-lease notice sent", 2, 3000),
              "the shim did not announce the released lease to both members");
    cr_assert_eq(itest_log_count(&C, l, "released-lease notice not delivered"), 0);
    for (int i = 0; i < 3; i++)
        if (i != l) {
            cr_assert(wait_log(i, "released-lease notice received", 1, 2000),
                      "member %s did not receive the notice", C.nodes[i].name);
            cr_assert_eq(itest_metric(&C, i, "electd_released_notices_received_total"), 1);
        }
    int next = events_wait_running(events_path, old.node, ev.n + 1, 10000);
    cr_assert_geq(next, 0, "no other node started the workload");
    events_load(events_path, &ev);
    /* With the Raft side of the notice: the lease (about 0.9 x 2 s) is not waited for. */
    uint64_t took_ms = (ev.iv[next].start_ns - killed_ns) / 1000000u;
    cr_assert_lt(took_ms, E_MS / 2,
                 "the successor started %llu ms after kill -9: the lease was waited out",
                 (unsigned long long)took_ms);
    itest_cluster_stop_all(&C);
    check_no_overlap();
    return l;
}

Test(release, kill_9_of_the_primarys_electd_announces_the_released_lease)
{
    setup(NULL, false);
    kill_9_fast_failover();
}

Test(release, the_notice_gets_through_over_peer_tls)
{
    setup(NULL, true);
    int l = kill_9_fast_failover();
    cr_assert_eq(itest_log_count(&C, l, "over TLS"), 2);
}

/* SIGSTOP of the primary's electd: its shim kills the workload at the lease's end and sends
 * nothing; the successor waits the lease out. */
Test(release, a_frozen_electd_sends_no_notice_and_the_lease_is_waited_out)
{
    setup(NULL, false);
    events_interval_t old;
    int l = start_until_primary(&old);
    events_t ev;
    events_load(events_path, &ev);
    uint64_t stopped_ns = mono_ns();
    kill(C.nodes[l].pid, SIGSTOP);
    int next = events_wait_running(events_path, old.node, ev.n + 1, 15000);
    cr_assert_geq(next, 0, "no other node took over");
    events_load(events_path, &ev);
    uint64_t took_ms = (ev.iv[next].start_ns - stopped_ns) / 1000000u;
    cr_assert_geq(took_ms, E_MS / 2, "the successor started after %llu ms, inside the lease",
                  (unsigned long long)took_ms);
    kill(C.nodes[l].pid, SIGCONT);
    itest_cluster_stop_all(&C);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(itest_log_count(&C, i, "released-lease notice"), 0,
                     "a notice on %s, though electd was only frozen", C.nodes[i].name);
    }
    check_no_overlap();
}

/* A process of the workload's group that is still there — a zombie whose reaper (this test,
 * a subreaper) has not collected it yet — holds the notice back; once it is reaped the notice
 * follows. */
Test(release, a_process_left_in_the_workloads_group_holds_the_notice_back)
{
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    setup("sleep 60 & echo $! > '%s/straggler'", false);
    events_interval_t old;
    int l = start_until_primary(&old);
    char path[400];
    snprintf(path, sizeof(path), "%s/straggler", C.root);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    int straggler = 0;
    cr_assert_eq(fscanf(f, "%d", &straggler), 1);
    fclose(f);

    itest_node_signal(&C, l, SIGKILL);
    cr_assert(itest_pid_gone(old.pid, 2000), "the workload outlived its electd");
    /* The straggler died with its group but is a zombie of ours now: still in the group. */
    cr_assert_not(wait_log(l, "released-lease notice sent", 1, 800),
                  "the notice left while a process of the workload's group was still there");
    cr_assert_eq(waitpid(straggler, NULL, 0), straggler, "the straggler was not ours to reap");
    cr_assert(wait_log(l, "released-lease notice sent", 2, 3000),
              "no notice once the group was gone");
    int line_gone = itest_log_find(&C, l, "process group is gone");
    cr_assert_geq(line_gone, 0);
    cr_assert_lt(line_gone, itest_log_find(&C, l, "released-lease notice sent"));
    itest_cluster_stop_all(&C);
    check_no_overlap();
}

/* The outcome lines of sidecar_notice_send, into a file (each member's line comes from its
 * own forked process). */
static char say_path[400];

static void say_to_file(const char *line)
{
    int fd = open(say_path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd >= 0) {
        dprintf(fd, "%s\n", line);
        close(fd);
    }
}

/* A notice with a member's own kit but another cluster token: refused at the handshake, no
 * frame reaches the core, the leader stays. */
Test(release, a_notice_from_a_stranger_is_refused)
{
    setup(NULL, false);
    itest_cluster_arg(&C, "--cluster-token=s3cret-s3cret"); /* given before each node's own */
    events_interval_t old;
    int l = start_until_primary(&old);
    itest_status_t before;
    cr_assert(itest_status(&C, l, &before));
    int forger = (l + 1) % 3;
    /* The follower's kit with the token replaced: a stranger who knows everything else. */
    char kit[400], forged[400], line[1024];
    snprintf(kit, sizeof(kit), "%s/%s", C.nodes[forger].dir, SIDECAR_NOTICE_KIT);
    snprintf(forged, sizeof(forged), "%s/forged-kit", C.root);
    snprintf(say_path, sizeof(say_path), "%s/forged-say", C.root);
    FILE *in = fopen(kit, "r"), *out = fopen(forged, "w");
    cr_assert(in != NULL && out != NULL, "no notice kit in %s", C.nodes[forger].dir);
    while (fgets(line, sizeof(line), in) != NULL)
        fputs(strncmp(line, "token ", 6) == 0 ? "token 77726f6e67\n" : line, out);
    fclose(in);
    fclose(out);
    struct stat sb;
    cr_assert_eq(stat(kit, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "the kit holds the token: mode 0600");

    cr_assert_eq(sidecar_notice_send(forged, before.term, 1000, say_to_file), 0);
    FILE *said = fopen(say_path, "r");
    cr_assert_not_null(said);
    int refused = 0;
    while (fgets(line, sizeof(line), said) != NULL)
        refused += strstr(line, "cluster token mismatch") != NULL;
    fclose(said);
    cr_assert_eq(refused, 2, "both members must refuse the stranger");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(itest_log_count(&C, i, "released-lease notice received"), 0);
    itest_status_t after;
    cr_assert(itest_status(&C, l, &after));
    cr_assert_str_eq(after.role, "leader");
    cr_assert_eq(after.term, before.term);
    itest_cluster_stop_all(&C);
    check_no_overlap();
}
