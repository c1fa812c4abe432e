/* test_members.c — membership changes on a real cluster: a fourth node joins as a learner
 * and is promoted once caught up, a follower is removed, then the leader removes itself;
 * the cluster keeps exactly one leader throughout and keeps committing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"

static itest_cluster_t C;

static void fini(void)
{
    itest_cluster_destroy(&C);
}

TestSuite(members, .fini = fini, .timeout = 120);

static bool voters_are(itest_cluster_t *c, int i, void *ud)
{
    itest_status_t st;
    return itest_status(c, i, &st) && st.voters == *(int *)ud && st.members == *(int *)ud;
}

static int leaders_now(void)
{
    int n = 0;
    for (int i = 0; i < C.n; i++) {
        itest_status_t st;
        if (itest_status(&C, i, &st) && strcmp(st.role, "leader") == 0)
            n++;
    }
    return n;
}

static int put_on(int node, const char *key)
{
    char path[64], body[4096];
    snprintf(path, sizeof(path), "/v1/kv/%s", key);
    return itest_http(C.nodes[node].http_port, "PUT", path, "v", body, sizeof(body));
}

Test(members, a_node_joins_is_promoted_and_members_including_the_leader_leave)
{
    itest_cluster_init(&C, 4, 3);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    C.nodes[3].extra[C.nodes[3].n_extra++] = "--join";
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    cr_assert_eq(put_on(l, "before"), 200);

    /* A joining node waits, passive, until it is added. */
    itest_node_start(&C, 3);
    itest_status_t st;
    bool up = false;
    for (int i = 0; i < 100 && !(up = itest_status(&C, 3, &st)); i++)
        usleep(50000); /* its API comes up first: poll, bounded */
    cr_assert(up, "the joining node's API never answered");
    usleep(300000); /* a negative check: time to bootstrap on its own, were it going to */
    cr_assert(itest_status(&C, 3, &st));
    cr_assert_eq(st.members, 0, "a joining node bootstrapped a configuration of its own");
    char body[8192], req[256];
    snprintf(req, sizeof(req), "{\"name\":\"d\",\"peer_addr\":\"127.0.0.1:%d\"}",
             C.nodes[3].peer_port);
    int code =
        itest_http(C.nodes[(l + 1) % 3].http_port, "POST", "/v1/members", req, body, sizeof(body));
    cr_assert_eq(code, 421, "a follower accepted a membership change: %s", body);
    code = itest_http(C.nodes[l].http_port, "POST", "/v1/members", req, body, sizeof(body));
    cr_assert_eq(code, 201, "%s", body);
    cr_assert(strstr(body, "\"name\":\"d\"") != NULL, "%s", body);
    code = itest_http(C.nodes[l].http_port, "POST", "/v1/members", req, body, sizeof(body));
    cr_assert(code == 409, "adding the same member twice: %d %s", code, body);
    int four = 4;
    cr_assert(itest_wait_all(&C, 10000, voters_are, &four), "d was not promoted everywhere");
    cr_assert_eq(leaders_now(), 1);
    cr_assert(itest_status(&C, 3, &st));
    cr_assert_eq(st.voters, 4);

    /* Remove a follower (not d). */
    int f = (l + 1) % 3;
    int rc = itest_member_remove(&C, l, C.nodes[f].name, body, sizeof(body));
    cr_assert_eq(rc, 200, "%s", body);
    itest_node_stop(&C, f);
    int three = 3;
    cr_assert(itest_wait_all(&C, 10000, voters_are, &three));
    cr_assert_eq(leaders_now(), 1);
    cr_assert_eq(put_on(l, "after-removal"), 200);

    /* The leader removes itself: it hands over, and a survivor leads. */
    rc = itest_member_remove(&C, l, C.nodes[l].name, body, sizeof(body));
    cr_assert_eq(rc, 200, "%s", body);
    itest_node_stop(&C, l);
    int l2 = itest_wait_leader(&C, 10000);
    cr_assert_geq(l2, 0, "no leader after the leader removed itself");
    cr_assert_neq(l2, l);
    cr_assert_eq(leaders_now(), 1);
    int two = 2;
    cr_assert(itest_wait_all(&C, 10000, voters_are, &two));
    cr_assert_eq(put_on(l2, "after-leader-left"), 200);
    cr_assert_eq(
        itest_http(C.nodes[l2].http_port, "GET", "/v1/kv/before", NULL, body, sizeof(body)), 200,
        "data written before the changes is gone: %s", body);
}
