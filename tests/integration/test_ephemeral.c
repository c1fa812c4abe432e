/* test_ephemeral.c — ephemeral keys on a real 3-node cluster: a key PUT with ?ephemeral=true
 * on a member is bound to it (through a follower's relay too), kept while the member lives —
 * also across a leader change and a restart within the session's expiry — and deleted through
 * the log once it is killed (a watch sees the delete) or removed from the group. Every wait is
 * a bounded poll. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cluster.h"

static itest_cluster_t C;

static void fini(void)
{
    itest_cluster_destroy(&C);
}

TestSuite(ephemeral, .fini = fini, .timeout = 240);

/* 3 members relaying writes to the leader (--forward); E the election timeout in ms. The
 * session expiry is then about 2.24 E after a member was last heard. */
static int start(int e_ms, bool forward)
{
    static char et[64], hb[64];
    snprintf(et, sizeof(et), "--election-timeout=%dms", e_ms);
    snprintf(hb, sizeof(hb), "--heartbeat-interval=%dms", e_ms / 10);
    itest_cluster_init(&C, 3, 3);
    if (forward)
        itest_cluster_arg(&C, "--forward");
    itest_cluster_arg(&C, hb);
    itest_cluster_arg(&C, et);
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    return l;
}

static int start3(int e_ms)
{
    return start(e_ms, true);
}

/* PUT services/web/<member i's name> = value on member i itself (ephemeral or not), retried
 * while no leader is known; the revision. */
static uint64_t put_on(int i, const char *key, const char *value, bool ephemeral)
{
    char path[256], body[4096];
    snprintf(path, sizeof(path), "/v1/kv/%s%s", key, ephemeral ? "?ephemeral=true" : "");
    uint64_t deadline = itest_now_ms() + 15000;
    int code = -1;
    while (itest_now_ms() < deadline) {
        code = itest_http(C.nodes[i].http_port, "PUT", path, value, body, sizeof(body));
        if (code == 200) {
            cJSON *o = cJSON_Parse(body);
            uint64_t rev = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "revision"));
            cJSON_Delete(o);
            return rev;
        }
        usleep(50000);
    }
    cr_assert_fail("PUT %s on %s: %d %s", path, C.nodes[i].name, code, body);
    return 0;
}

/* The key's owner as member `via` reads it (stale: local state): "" for an ordinary key,
 * NULL when the key does not exist. */
static const char *owner_of(int via, const char *key, char *out, size_t cap)
{
    char path[256], body[8192];
    snprintf(path, sizeof(path), "/v1/kv/%s?stale", key);
    int code = itest_http(C.nodes[via].http_port, "GET", path, NULL, body, sizeof(body));
    if (code == 404)
        return NULL;
    cr_assert_eq(code, 200, "GET %s: %d %s", path, code, body);
    cJSON *o = cJSON_Parse(body);
    const char *owner = cJSON_GetStringValue(cJSON_GetObjectItem(o, "owner"));
    bool eph = cJSON_IsTrue(cJSON_GetObjectItem(o, "ephemeral"));
    cr_assert_eq(eph, owner != NULL, "%s", body);
    snprintf(out, cap, "%s", owner ? owner : "");
    cJSON_Delete(o);
    return out;
}

/* Polls member via until key is gone (bounded); the time it took, in ms, or -1. */
static long wait_gone(int via, const char *key, int timeout_ms)
{
    uint64_t t0 = itest_now_ms();
    char o[64];
    while (itest_now_ms() - t0 < (uint64_t)timeout_ms) {
        if (owner_of(via, key, o, sizeof(o)) == NULL)
            return (long)(itest_now_ms() - t0);
        usleep(20000);
    }
    return -1;
}

/* Checks for ms that the key stays (polled). */
static void stays(int via, const char *key, const char *owner, int ms)
{
    uint64_t t0 = itest_now_ms();
    char o[64];
    while (itest_now_ms() - t0 < (uint64_t)ms) {
        cr_assert_not_null(owner_of(via, key, o, sizeof(o)), "%s vanished while %s lives", key,
                           owner);
        cr_assert_str_eq(o, owner);
        usleep(100000);
    }
}

/* The whole answer (head and body) to one request sent as it is, with Connection: close. */
static void raw_request(int port, const char *head, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = 0;
    close(fd);
}

static void key_of(int i, char *out, size_t cap)
{
    snprintf(out, cap, "services/web/%s", C.nodes[i].name);
}

Test(ephemeral, a_killed_members_keys_are_deleted_and_a_watch_sees_it)
{
    int l = start3(500);
    int f = (l + 1) % 3, g = (l + 2) % 3;
    char kf[64], kg[64], o[64];
    key_of(f, kf, sizeof(kf));
    key_of(g, kg, sizeof(kg));
    /* written on the follower beside the workload: relayed to the leader, bound to f */
    uint64_t rev = put_on(f, kf, "10.0.0.2:80", true);
    put_on(g, kg, "10.0.0.3:80", true);
    put_on(f, "services/plain", "stays", false);
    cr_assert_not_null(owner_of(l, kf, o, sizeof(o)));
    cr_assert_str_eq(o, C.nodes[f].name);
    /* the listing shows it too */
    char body[8192];
    cr_assert_eq(itest_http(C.nodes[l].http_port, "GET", "/v1/kv?prefix=services/web/", NULL, body,
                            sizeof(body)),
                 200);
    cr_assert(strstr(body, "\"ephemeral\":true") != NULL, "%s", body);

    /* kept while its member lives: three session expiries */
    stays(l, kf, C.nodes[f].name, 3500);

    itest_node_signal(&C, f, SIGKILL);
    long took = wait_gone(l, kf, 10000);
    cr_assert_geq(took, 0, "%s's key outlived it by 10 s", C.nodes[f].name);
    cr_assert_not_null(owner_of(l, kg, o, sizeof(o)), "a live member's key went too");
    cr_assert_not_null(owner_of(l, "services/plain", o, sizeof(o)));
    cr_assert_str_eq(o, "");

    /* a watch from the PUT's revision sees the delete as an ordinary delete */
    char path[256];
    snprintf(path, sizeof(path), "/v1/kv/%s?wait=2s&from=%llu", kf, (unsigned long long)rev);
    cr_assert_eq(itest_http(C.nodes[g].http_port, "GET", path, NULL, body, sizeof(body)), 200, "%s",
                 body);
    cJSON *resp = cJSON_Parse(body);
    cJSON *evs = cJSON_GetObjectItem(resp, "events");
    cr_assert_eq(cJSON_GetArraySize(evs), 1, "%s", body);
    cJSON *ev = cJSON_GetArrayItem(evs, 0);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "type")), "delete", "%s", body);
    cr_assert_gt(cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "mod_revision")), (double)rev);
    cJSON_Delete(resp);
    cr_log_info("the killed member's key went after %ld ms", took);
}

Test(ephemeral, kept_across_a_leader_change_and_gone_with_a_killed_leader)
{
    int l = start3(500);
    char k[3][64], o[64];
    for (int i = 0; i < 3; i++) {
        key_of(i, k[i], sizeof(k[i]));
        put_on(i, k[i], "addr", true);
    }
    /* a planned leader change: every member lives, every key stays */
    int to = (l + 1) % 3;
    char path[128], body[4096];
    snprintf(path, sizeof(path), "/v1/leader/transfer?to=%s", C.nodes[to].name);
    int code = itest_http(C.nodes[l].http_port, "POST", path, NULL, body, sizeof(body));
    cr_assert(code == 200 || code == 202, "%d %s", code, body);
    int l2 = -1;
    uint64_t deadline = itest_now_ms() + 10000;
    while (l2 != to && itest_now_ms() < deadline)
        l2 = itest_wait_leader(&C, 1000);
    cr_assert_eq(l2, to);
    for (int i = 0; i < 3; i++)
        stays(l2, k[i], C.nodes[i].name, i == 0 ? 3000 : 100);

    /* the leader dies: the next leader deletes its keys, and only its */
    itest_node_signal(&C, l2, SIGKILL);
    int l3 = itest_wait_leader(&C, 10000);
    cr_assert_geq(l3, 0);
    long took = wait_gone(l3, k[l2], 15000);
    cr_assert_geq(took, 0, "the killed leader's key outlived it");
    for (int i = 0; i < 3; i++)
        if (i != l2)
            cr_assert_not_null(owner_of(l3, k[i], o, sizeof(o)), "%s went too", k[i]);
    cr_log_info("the killed leader's key went %ld ms after the next leader was known", took);
}

Test(ephemeral, a_removed_members_keys_are_deleted)
{
    int l = start3(500);
    int f = (l + 1) % 3;
    char kf[64], kl[64], o[64];
    key_of(f, kf, sizeof(kf));
    key_of(l, kl, sizeof(kl));
    put_on(f, kf, "x", true);
    put_on(l, kl, "y", true);
    char body[4096];
    int rc = itest_member_remove(&C, l, C.nodes[f].name, body, sizeof(body));
    cr_assert_eq(rc, 200, "%s", body);
    /* removed, not dead: the key goes at once, well before a session could expire */
    long took = wait_gone(l, kf, 5000);
    cr_assert_geq(took, 0, "a removed member's key stayed");
    cr_assert_not_null(owner_of(l, kl, o, sizeof(o)));
    itest_node_stop(&C, f);
}

Test(ephemeral, survives_a_restart_of_its_owner_within_the_expiry)
{
    /* E = 1.5 s: the expiry (about 3.4 s) leaves room for a restart on a busy machine */
    int l = start3(1500);
    int f = (l + 1) % 3;
    char kf[64];
    key_of(f, kf, sizeof(kf));
    put_on(f, kf, "x", true);
    itest_node_signal(&C, f, SIGKILL);
    itest_node_start(&C, f);
    itest_status_t st;
    uint64_t deadline = itest_now_ms() + 3000;
    while (!(itest_status(&C, f, &st) && st.leader[0] != 0) && itest_now_ms() < deadline)
        usleep(20000);
    cr_assert(st.leader[0] != 0, "%s did not come back in time", C.nodes[f].name);
    stays(l, kf, C.nodes[f].name, 8000);
    /* ... and the key still goes when it dies for good */
    itest_node_signal(&C, f, SIGKILL);
    cr_assert_geq(wait_gone(l, kf, 15000), 0);
}

Test(ephemeral, a_follower_without_forward_redirects_naming_itself)
{
    int l = start(500, false);
    int f = (l + 1) % 3;
    char body[4096], path[128];
    /* the leader takes an owner named by the redirect; a stranger is refused */
    snprintf(path, sizeof(path), "/v1/kv/services/x?ephemeral=true&owner=%s", C.nodes[f].name);
    cr_assert_eq(itest_http(C.nodes[l].http_port, "PUT", path, "v", body, sizeof(body)), 200, "%s",
                 body);
    char o[64];
    cr_assert_str_eq(owner_of(l, "services/x", o, sizeof(o)), C.nodes[f].name);
    cr_assert_eq(itest_http(C.nodes[l].http_port, "PUT",
                            "/v1/kv/services/x?ephemeral=true&owner=zz", "v", body, sizeof(body)),
                 400);
    cr_assert_eq(itest_http(C.nodes[l].http_port, "PUT", "/v1/kv/services/x?owner=a", "v", body,
                            sizeof(body)),
                 400);
    cr_assert_eq(itest_http(C.nodes[l].http_port, "DELETE", "/v1/kv/services/x?ephemeral=true",
                            NULL, body, sizeof(body)),
                 400);
    /* a plain PUT makes it an ordinary key */
    cr_assert_eq(
        itest_http(C.nodes[l].http_port, "PUT", "/v1/kv/services/x", "v", body, sizeof(body)), 200);
    cr_assert_str_eq(owner_of(l, "services/x", o, sizeof(o)), "");
    /* a follower's 421 sends the client to the leader with itself as the owner */
    raw_request(C.nodes[f].http_port,
                "PUT /v1/kv/services/y?ephemeral=true HTTP/1.1\r\nHost: x\r\nConnection: "
                "close\r\nContent-Length: 1\r\n\r\nv",
                body, sizeof(body));
    cr_assert(strncmp(body, "HTTP/1.1 421", 12) == 0, "%s", body);
    char want[128];
    snprintf(want, sizeof(want), "/v1/kv/services/y?ephemeral=true&owner=%s\r\n", C.nodes[f].name);
    cr_assert(strstr(body, want) != NULL, "no Location ending in %s: %s", want, body);
}
