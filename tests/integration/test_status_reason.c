/* test_status_reason.c — why a member is not the primary: /v1/status carries "reason" (a code
 * and a message) for a standby with a known leader, a witness, a member left without quorum,
 * a member that gave up on its workload, one waiting to join and one its peers refuse (another
 * cluster: the refusals in both logs name both sides); the leader logs each membership change
 * with the member's name; a removed member says so (and logs it), a member whose disk is full
 * says its store fails; `electd status` prints the reason. Real electd processes on
 * 127.0.0.1. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

static itest_cluster_t C;
static bool mounted; /* node 0's data dir is a tmpfs (store_failed) */

static void fini(void)
{
    for (int i = 0; i < C.n; i++)
        if (C.nodes[i].pid)
            itest_node_signal(&C, i, SIGKILL);
    if (mounted)
        umount2(C.nodes[0].dir, MNT_DETACH);
    mounted = false;
    itest_cluster_destroy(&C);
}

TestSuite(status_reason, .fini = fini, .timeout = 120);

/* Node i's reason code ("" when none) and message; false when the status did not answer. */
static bool reason_of(int i, char *code, size_t clen, char *msg, size_t mlen)
{
    char body[16384];
    code[0] = msg[0] = '\0';
    if (itest_http(C.nodes[i].http_port, "GET", "/v1/status", NULL, body, sizeof(body)) != 200)
        return false;
    cJSON *o = cJSON_Parse(body);
    if (o == NULL)
        return false;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "reason");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "message");
    if (cJSON_IsString(c))
        snprintf(code, clen, "%s", c->valuestring);
    if (cJSON_IsString(m))
        snprintf(msg, mlen, "%s", m->valuestring);
    cJSON_Delete(o);
    return true;
}

/* Polls node i until its reason code is want ("" = none), at most timeout_ms; the last
 * message goes to msg. */
static bool wait_reason(int i, const char *want, int timeout_ms, char *msg, size_t mlen)
{
    char code[64];
    uint64_t end = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        if (reason_of(i, code, sizeof(code), msg, mlen) && strcmp(code, want) == 0)
            return true;
        usleep(50000);
    } while (itest_now_ms() < end);
    cr_log_warn("node %s: reason [%s: %s], wanted [%s]", C.nodes[i].name, code, msg, want);
    return false;
}

static void fast(void)
{
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
}

Test(status_reason, standby_witness_leader_and_no_quorum)
{
    itest_cluster_init(&C, 3, 3);
    fast();
    C.nodes[2].extra[C.nodes[2].n_extra++] = "--witness";
    itest_cluster_start(&C);
    /* A witness may win an election; it hands leadership on at once, so it must not stay. */
    int l = itest_wait_leader(&C, 15000);
    uint64_t end = itest_now_ms() + 5000;
    while (l == 2 && itest_now_ms() < end) {
        usleep(20000);
        l = itest_wait_leader(&C, 5000);
    }
    cr_assert_geq(l, 0);
    cr_assert_neq(l, 2, "the witness still leads after 5 s");
    int s = l == 0 ? 1 : 0;
    char msg[512], want[64];
    cr_assert(wait_reason(l, "", 10000, msg, sizeof(msg)), "the leader has a reason: %s", msg);
    cr_assert(wait_reason(s, "standby", 5000, msg, sizeof(msg)));
    snprintf(want, sizeof(want), "leader is %s", C.nodes[l].name);
    cr_assert_str_eq(msg, want);
    cr_assert(wait_reason(2, "witness", 5000, msg, sizeof(msg)));

    /* two of three stopped: the survivor knows no leader and says whom it cannot reach */
    itest_node_signal(&C, l, SIGKILL);
    itest_node_signal(&C, 2, SIGKILL);
    cr_assert(wait_reason(s, "no_leader", 10000, msg, sizeof(msg)));
    cr_assert(strstr(msg, "no connection to") != NULL, "%s", msg);
    cr_assert(strstr(msg, C.nodes[l].name) != NULL && strstr(msg, C.nodes[2].name) != NULL, "%s",
              msg);
}

Test(status_reason, a_member_that_gave_up_says_so)
{
    itest_cluster_init(&C, 1, 1);
    fast();
    itest_cluster_arg(&C, "--max-restarts=1");
    itest_cluster_arg(&C, "--exec=/bin/false");
    itest_cluster_start(&C);
    char msg[512];
    cr_assert(wait_reason(0, "gave_up", 20000, msg, sizeof(msg)));
    cr_assert(strstr(msg, "gave up on the workload") != NULL, "%s", msg);
}

Test(status_reason, the_leader_logs_membership_changes_and_a_joiner_says_it_waits)
{
    itest_cluster_init(&C, 4, 3);
    fast();
    C.nodes[3].extra[C.nodes[3].n_extra++] = "--join";
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    itest_node_start(&C, 3);
    char msg[512], body[8192], req[256];
    cr_assert(wait_reason(3, "joining", 10000, msg, sizeof(msg)));
    snprintf(req, sizeof(req), "{\"name\":\"d\",\"peer_addr\":\"127.0.0.1:%d\"}",
             C.nodes[3].peer_port);
    int code = itest_http(C.nodes[l].http_port, "POST", "/v1/members", req, body, sizeof(body));
    cr_assert_eq(code, 201, "%s", body);
    cr_assert(wait_reason(3, "standby", 10000, msg, sizeof(msg)), "d never became a standby");
    int rc = 0;
    for (int tries = 0; tries < 50; tries++) {
        rc = itest_http(C.nodes[l].http_port, "DELETE", "/v1/members/d", NULL, body, sizeof(body));
        if (rc != 409)
            break;
        usleep(50000); /* the promotion may still be settling */
    }
    cr_assert_eq(rc, 200, "%s", body);
    uint64_t end = itest_now_ms() + 5000;
    while (itest_log_count(&C, l, "member removed") == 0 && itest_now_ms() < end)
        usleep(50000);
    cr_assert_eq(itest_log_count(&C, l, "member added"), 1);
    cr_assert_eq(itest_log_count(&C, l, "member promoted to voter"), 1);
    cr_assert_eq(itest_log_count(&C, l, "member removed"), 1);
    cr_assert_eq(itest_log_count(&C, (l + 1) % 3, "member added"), 0, "only the leader logs");
}

/* True when a line of node i's log holds every one of needles[0..n). */
static bool log_line_with(int i, const char *const *needles, size_t n)
{
    FILE *f = fopen(C.nodes[i].log, "r");
    if (f == NULL)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        found = true;
        for (size_t k = 0; k < n && found; k++)
            found = strstr(line, needles[k]) != NULL;
    }
    fclose(f);
    return found;
}

static bool wait_log_line(int i, const char *const *needles, size_t n, int timeout_ms)
{
    uint64_t end = itest_now_ms() + (uint64_t)timeout_ms;
    do {
        if (log_line_with(i, needles, n))
            return true;
        usleep(50000);
    } while (itest_now_ms() < end);
    return false;
}

/* c was started with another cluster name (another cluster id): a and b refuse it. c says so
 * in its reason (who refused it and why), and the refusals in the logs name both sides. */
Test(status_reason, a_member_refused_by_its_peers_says_who_refused_it_and_why)
{
    itest_cluster_init(&C, 3, 3);
    fast();
    C.nodes[2].extra[C.nodes[2].n_extra++] = "--cluster-name=another";
    itest_cluster_start(&C);
    itest_status_t st = {0};
    uint64_t end = itest_now_ms() + 15000;
    while (!(itest_status(&C, 0, &st) &&
             (strcmp(st.leader, "a") == 0 || strcmp(st.leader, "b") == 0)) &&
           itest_now_ms() < end)
        usleep(50000);
    cr_assert(strcmp(st.leader, "a") == 0 || strcmp(st.leader, "b") == 0,
              "a and b elect no leader");
    char msg[512];
    cr_assert(wait_reason(2, "refused", 10000, msg, sizeof(msg)));
    cr_log_info("c: %s", msg);
    cr_assert(strstr(msg, "peer refused us: ") == msg, "%s", msg);
    cr_assert(strstr(msg, "a: peer belongs to another cluster") != NULL, "%s", msg);
    cr_assert(strstr(msg, "b: peer belongs to another cluster") != NULL, "%s", msg);
    cr_assert(strstr(msg, "our cluster id ") != NULL, "%s", msg);

    const char *refusing[] = {
        "refused peer connection", "self=a",         "our_cluster=", "peer_name=c",
        "their_cluster=",          "another cluster"};
    cr_assert(wait_log_line(0, refusing, 6, 5000), "a's refusal does not name both sides");
    const char *refused[] = {"peer refused us", "self=c", "peer_name=a",
                             "our_cluster=", "another cluster"};
    cr_assert(wait_log_line(2, refused, 5, 5000), "c's log does not name both sides");
}

/* `electd status` against node i: its exit code; its stdout in out. */
static int cli_status(int i, char *out, size_t cap)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "%s status --http 127.0.0.1:%d 2>&1", ELECTD_BIN,
             C.nodes[i].http_port);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A follower removed from the group keeps running: it says `removed` (in /v1/status and in
 * `electd status`) instead of standing for election as if nothing happened, and logs its own
 * removal once. */
Test(status_reason, a_removed_member_says_so_and_logs_it)
{
    itest_cluster_init(&C, 3, 3);
    fast();
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    int f = (l + 1) % 3;
    char msg[512], body[8192], path[64];
    cr_assert(wait_reason(f, "standby", 5000, msg, sizeof(msg)));
    snprintf(path, sizeof(path), "/v1/members/%s", C.nodes[f].name);
    int rc = itest_http(C.nodes[l].http_port, "DELETE", path, NULL, body, sizeof(body));
    cr_assert_eq(rc, 200, "%s", body);
    cr_assert(wait_reason(f, "removed", 10000, msg, sizeof(msg)));
    cr_assert_str_eq(msg, "removed from the group's configuration");
    const char *own[] = {"this member was removed from the group", C.nodes[f].name};
    cr_assert(wait_log_line(f, own, 2, 5000), "the removed member does not log its removal");
    cr_assert_eq(itest_log_count(&C, f, "this member was removed from the group"), 1);
    cr_assert_eq(itest_log_count(&C, l, "this member was removed from the group"), 0);

    static char out[16384];
    cr_assert_eq(cli_status(f, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "reason    removed: removed from the group's configuration\n") != NULL,
              "electd status does not print the reason:\n%s", out);
    /* and it stays removed: it neither leads nor takes the remaining two's leadership */
    cr_assert_eq(itest_wait_leader(&C, 0) == f, false);
    cr_assert(wait_reason(f, "removed", 0, msg, sizeof(msg)));
}

#define DISK_SIZE   "size=8m"   /* the tmpfs of the member whose disk fills */
#define FREE_LEFT   (256 << 10) /* bytes the filler leaves free */
#define VALUE_BYTES (48 << 10)  /* one PUT's value: a few of them fill what is left */
#define MAX_PUTS    64          /* more than FREE_LEFT / VALUE_BYTES, with room to spare */

/* One member alone on a small tmpfs (root only, as test_disk): writes fill its disk; while the
 * store fails it says `store_failed` (and `electd status` prints it); once space returns the
 * reason goes. */
Test(status_reason, a_member_whose_store_fails_says_so)
{
    itest_cluster_init(&C, 1, 1);
    fast();
    itest_node_t *nd = &C.nodes[0];
    cr_assert_eq(mkdir(nd->dir, 0700), 0, "mkdir %s: %s", nd->dir, strerror(errno));
    if (mount("itest", nd->dir, "tmpfs", MS_NOSUID | MS_NODEV, DISK_SIZE) != 0)
        cr_skip("cannot mount a tmpfs on %s (%s): this test needs root (CAP_SYS_ADMIN) to make a "
                "disk full",
                nd->dir, strerror(errno));
    mounted = true;
    itest_cluster_start(&C);
    cr_assert_eq(itest_wait_leader(&C, 15000), 0);
    char msg[512];
    cr_assert(wait_reason(0, "", 10000, msg, sizeof(msg)), "the lone leader has a reason: %s", msg);
    int rc = itest_fs_fill(nd->dir, FREE_LEFT);
    cr_assert_eq(rc, 0, "filling %s: %s", nd->dir, strerror(rc));
    static char value[VALUE_BYTES + 1], body[8192];
    memset(value, 'v', VALUE_BYTES);
    int code = 200;
    for (int k = 0; k < MAX_PUTS && (code == 200 || code == 201); k++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/kv/fill/k%d", k);
        code = itest_http(nd->http_port, "PUT", path, value, body, sizeof(body));
    }
    cr_assert(code == 503 && strstr(body, "store_failed") != NULL,
              "%d writes of %d bytes did not fill the disk: %d %s", MAX_PUTS, VALUE_BYTES, code,
              body);
    cr_assert(wait_reason(0, "store_failed", 5000, msg, sizeof(msg)));
    cr_assert_str_eq(msg, "the store is failing; retrying (see the log)");
    static char out[16384];
    cli_status(0, out, sizeof(out));
    cr_assert(strstr(out, "reason    store_failed: the store is failing") != NULL,
              "electd status does not print the reason:\n%s", out);
    cr_assert(strstr(out, "store     FAILING\n") != NULL, "%s", out);

    char filler[400];
    snprintf(filler, sizeof(filler), "%s/filler", nd->dir);
    cr_assert_eq(unlink(filler), 0);
    cr_assert(wait_reason(0, "", 10000, msg, sizeof(msg)), "the reason stays once space returned");
}
