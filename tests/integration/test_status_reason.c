/* test_status_reason.c — why a member is not the primary: /v1/status carries "reason" (a code
 * and a message) for a standby with a known leader, a witness, a member left without quorum,
 * a member that gave up on its workload, one waiting to join and one its peers refuse (another
 * cluster: the refusals in both logs name both sides); the leader logs each membership change
 * with the member's name. Real electd processes on 127.0.0.1. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"

static itest_cluster_t C;

static void fini(void)
{
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
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    cr_assert_neq(l, 2, "the witness leads");
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
