/* test_kv.c — the replicated KV store across a real 3-node cluster: writes on the leader,
 * 421 with the leader's address on followers, linearizable and stale reads, CAS, fencing
 * tokens that go stale at failover, 503 without quorum, a wiped node that rejoins through a
 * snapshot, and keys that are not UTF-8 (refused at the write, key_base64 when stored). */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../json_check.h"
#include "../sidecar/private_hosts.h"
#include "cluster.h"
#include "raft.h"

static itest_cluster_t C;

static void fini(void)
{
    itest_cluster_destroy(&C);
}

TestSuite(kv, .fini = fini, .timeout = 120);

static int start3_with(const char *extra)
{
    itest_cluster_init(&C, 3, 3);
    if (extra != NULL)
        itest_cluster_arg(&C, extra);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    itest_cluster_arg(&C, "--snapshot-entries=20");
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    return l;
}

static int start3(void)
{
    return start3_with(NULL);
}

static int put(int node, const char *path, const char *value, char *out, size_t cap)
{
    return itest_http(C.nodes[node].http_port, "PUT", path, value, out, cap);
}

static uint64_t json_u64(const char *body, const char *key)
{
    cJSON *o = cJSON_Parse(body);
    cJSON *err = cJSON_GetObjectItem(o, "error");
    const cJSON *v = cJSON_GetObjectItem(err ? err : o, key);
    uint64_t r = cJSON_IsNumber(v) ? (uint64_t)v->valuedouble : 0;
    cJSON_Delete(o);
    return r;
}

static uint64_t fencing_token(int node)
{
    char body[8192];
    cr_assert_eq(itest_http(C.nodes[node].http_port, "GET", "/v1/status", NULL, body, sizeof(body)),
                 200);
    return json_u64(body, "fencing_token");
}

Test(kv, writes_go_to_the_leader_and_reads_are_linearizable)
{
    int l = start3();
    int f = (l + 1) % 3;
    char body[8192];
    cr_assert_eq(put(l, "/v1/kv/binlog/pos", "mysql-bin.000042:1337", body, sizeof(body)), 200,
                 "%s", body);
    /* A follower points at the leader. */
    int st = put(f, "/v1/kv/binlog/pos", "x", body, sizeof(body));
    cr_assert_eq(st, 421, "%d %s", st, body);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", C.nodes[l].http_port);
    cr_assert(strstr(body, want) != NULL, "421 does not name the leader's HTTP address: %s", body);
    cr_assert_eq(
        itest_http(C.nodes[f].http_port, "GET", "/v1/kv/binlog/pos", NULL, body, sizeof(body)),
        421);
    /* Linearizable read on the leader sees the acknowledged write. */
    cr_assert_eq(
        itest_http(C.nodes[l].http_port, "GET", "/v1/kv/binlog/pos", NULL, body, sizeof(body)),
        200);
    cr_assert(strstr(body, "mysql-bin.000042:1337") != NULL, "%s", body);
    /* A stale read on a follower catches up (bounded poll). */
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        seen = itest_http(C.nodes[f].http_port, "GET", "/v1/kv/binlog/pos?stale", NULL, body,
                          sizeof(body)) == 200 &&
               strstr(body, "1337") != NULL;
        if (!seen)
            usleep(20000);
    }
    cr_assert(seen, "follower never applied the write");
}

/* Issue 21 item 7: a listing's limit is 1..1000, as documented: 0 was taken as "the default". */
Test(kv, a_listing_limit_outside_1_to_1000_is_refused)
{
    int l = start3();
    char body[8192];
    const char *bad[] = {"0", "1001", "-1", "", "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/kv?prefix=&limit=%s", bad[i]);
        int st = itest_http(C.nodes[l].http_port, "GET", path, NULL, body, sizeof(body));
        cr_assert_eq(st, 400, "limit=%s: %d %s", bad[i], st, body);
        cr_assert(strstr(body, "invalid_limit") != NULL, "%s", body);
    }
    cr_assert_eq(
        itest_http(C.nodes[l].http_port, "GET", "/v1/kv?prefix=&limit=1", NULL, body, sizeof(body)),
        200, "%s", body);
}

Test(kv, compare_and_set_conflicts_answer_409)
{
    int l = start3();
    char body[8192];
    cr_assert_eq(put(l, "/v1/kv/lock", "v1", body, sizeof(body)), 200);
    uint64_t rev = json_u64(body, "mod_revision");
    cr_assert_gt(rev, 0);
    /* A wrong revision conflicts; the right one wins once; reusing it conflicts. */
    cr_assert_eq(itest_http_h(C.nodes[l].http_port, "PUT", "/v1/kv/lock", "If-Match: 999", "v2",
                              body, sizeof(body)),
                 409, "%s", body);
    cr_assert_eq(json_u64(body, "mod_revision"), rev);
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "If-Match: %llu", (unsigned long long)rev);
    cr_assert_eq(
        itest_http_h(C.nodes[l].http_port, "PUT", "/v1/kv/lock", hdr, "v2", body, sizeof(body)),
        200, "%s", body);
    cr_assert_eq(
        itest_http_h(C.nodes[l].http_port, "PUT", "/v1/kv/lock", hdr, "v3", body, sizeof(body)),
        409, "%s", body);
    cr_assert_eq(itest_http_h(C.nodes[l].http_port, "PUT", "/v1/kv/new", "If-None-Match: *", "n",
                              body, sizeof(body)),
                 200, "%s", body);
    cr_assert_eq(itest_http_h(C.nodes[l].http_port, "PUT", "/v1/kv/new", "If-None-Match: *", "n",
                              body, sizeof(body)),
                 409, "%s", body);
}

Test(kv, a_stale_fencing_token_is_refused_after_failover)
{
    int l = start3();
    char body[8192], path[64];
    uint64_t token = fencing_token(l);
    cr_assert_gt(token, 0);
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu", (unsigned long long)token);
    cr_assert_eq(put(l, path, "100", body, sizeof(body)), 200, "%s", body);

    itest_node_signal(&C, l, SIGKILL);
    int l2 = itest_wait_leader(&C, 10000);
    cr_assert_geq(l2, 0);
    /* The old primary's token is now stale: refused deterministically. */
    int st = 0;
    for (int i = 0; i < 100; i++) {
        st = put(l2, path, "200", body, sizeof(body));
        if (st != 503)
            break;
        usleep(20000);
    }
    cr_assert_eq(st, 409, "%s", body);
    cr_assert(strstr(body, "fenced") != NULL, "%s", body);
    uint64_t token2 = fencing_token(l2);
    cr_assert_gt(token2, token);
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu", (unsigned long long)token2);
    cr_assert_eq(put(l2, path, "200", body, sizeof(body)), 200, "%s", body);
    cr_assert_eq(itest_http(C.nodes[l2].http_port, "GET", "/v1/kv/pos", NULL, body, sizeof(body)),
                 200);
    cr_assert(strstr(body, "\"200\"") != NULL, "%s", body);
}

Test(kv, writes_without_a_quorum_answer_503)
{
    int l = start3();
    char body[8192];
    for (int i = 0; i < 3; i++)
        if (i != l)
            itest_node_signal(&C, i, SIGKILL);
    int st = 0;
    uint64_t deadline = itest_now_ms() + 10000;
    do {
        st = put(l, "/v1/kv/k", "v", body, sizeof(body));
    } while (st != 503 && itest_now_ms() < deadline);
    cr_assert_eq(st, 503, "%d %s", st, body);
    /* Not acknowledged, and nothing was lost that was: the node itself is still healthy. */
    cr_assert_eq(itest_http(C.nodes[l].http_port, "GET", "/healthz", NULL, body, sizeof(body)),
                 200);
}

static bool caught_up(itest_cluster_t *c, int i, void *ud)
{
    itest_status_t st;
    return itest_status(c, i, &st) && st.applied >= *(uint64_t *)ud;
}

Test(kv, a_node_whose_data_dir_was_wiped_rejoins_through_a_snapshot)
{
    int l = start3();
    int f = (l + 1) % 3;
    char body[8192], path[64], val[32];
    for (int i = 0; i < 60; i++) {
        snprintf(path, sizeof(path), "/v1/kv/key%02d", i);
        snprintf(val, sizeof(val), "value-%d", i);
        cr_assert_eq(put(l, path, val, body, sizeof(body)), 200, "%s", body);
    }
    itest_node_signal(&C, f, SIGKILL);
    itest_node_wipe(&C, f);
    itest_node_start(&C, f);
    /* A new data directory is a new instance: the members refuse it under f's name ... */
    uint64_t deadline = itest_now_ms() + 10000;
    while (itest_now_ms() < deadline && itest_log_count(&C, l, "refused a second process") == 0)
        usleep(20000);
    cr_assert_gt(itest_log_count(&C, l, "refused a second process"), 0);
    /* ... until the operator removes the member and adds it again (docs/operations.md). */
    snprintf(path, sizeof(path), "/v1/members/%s", C.nodes[f].name);
    int rc = 0;
    for (int tries = 0; tries < 50 && (rc = itest_http(C.nodes[l].http_port, "DELETE", path, NULL,
                                                       body, sizeof(body))) == 409;
         tries++)
        usleep(50000);
    cr_assert_eq(rc, 200, "%s", body);
    char req[128];
    snprintf(req, sizeof(req), "{\"name\":\"%s\",\"peer_addr\":\"127.0.0.1:%d\"}", C.nodes[f].name,
             C.nodes[f].peer_port);
    for (int tries = 0; tries < 50 && (rc = itest_http(C.nodes[l].http_port, "POST", "/v1/members",
                                                       req, body, sizeof(body))) == 409;
         tries++)
        usleep(50000);
    cr_assert_eq(rc, 201, "%s", body);
    itest_status_t st;
    cr_assert(itest_status(&C, l, &st));
    uint64_t target = st.commit;
    cr_assert(itest_wait_all(&C, 15000, caught_up, &target), "wiped node did not catch up");
    cr_assert_gt(itest_log_count(&C, f, "snapshot installed"), 0,
                 "caught up without a snapshot: compaction did not happen");
    cr_assert_eq(
        itest_http(C.nodes[f].http_port, "GET", "/v1/kv/key07?stale", NULL, body, sizeof(body)),
        200);
    cr_assert(strstr(body, "value-7") != NULL, "%s", body);
    cr_assert_eq(
        itest_http(C.nodes[f].http_port, "GET", "/v1/kv/key59?stale", NULL, body, sizeof(body)),
        200);
    cr_assert(strstr(body, "value-59") != NULL, "%s", body);
}

Test(kv, with_forward_followers_relay_writes_and_reads_to_the_leader)
{
    int l = start3_with("--forward");
    int f = (l + 1) % 3;
    char body[8192];
    /* The follower may learn the leader's HTTP address a moment after the election. */
    int st = 0;
    for (int i = 0;
         i < 100 && (st = put(f, "/v1/kv/fwd", "through-a-follower", body, sizeof(body))) != 200;
         i++)
        usleep(20000);
    cr_assert_eq(st, 200, "%d %s", st, body);
    cr_assert_eq(itest_http(C.nodes[f].http_port, "GET", "/v1/kv/fwd", NULL, body, sizeof(body)),
                 200, "%s", body);
    cr_assert(strstr(body, "through-a-follower") != NULL, "%s", body);
    /* The answer to a HEAD ends with its head, whatever its Content-Length says. */
    cr_assert_eq(itest_http(C.nodes[f].http_port, "HEAD", "/v1/kv/fwd", NULL, body, sizeof(body)),
                 200, "HEAD was not relayed");
    cr_assert_eq(itest_http_h(C.nodes[f].http_port, "PUT", "/v1/kv/fwd", "If-Match: 1", "x", body,
                              sizeof(body)),
                 409, "conditions were not forwarded: %s", body);
}

/* A worker that reads an unset token as 0 (${ELECTD_FENCING_TOKEN:-0}) must learn at once
 * that its write would not be fenced: a fence that is present must be a valid epoch. */
Test(kv, a_zero_or_empty_fence_is_refused_not_taken_as_unfenced)
{
    int l = start3();
    int port = C.nodes[l].http_port;
    char body[8192];
    cr_assert_eq(put(l, "/v1/kv/pos", "1", body, sizeof(body)), 200, "%s", body);
    cr_assert_gt(fencing_token(l), 0);
    const struct {
        const char *method, *path, *header;
    } bad[] = {
        {"PUT", "/v1/kv/pos?fence=0", NULL},
        {"PUT", "/v1/kv/pos?fence=", NULL},
        {"PUT", "/v1/kv/pos?fence", NULL},
        {"PUT", "/v1/kv/pos?fence=00", NULL},
        {"PUT", "/v1/kv/pos", "X-Electd-Fence: 0"},
        {"PUT", "/v1/kv/pos", "X-Electd-Fence:"},
        {"DELETE", "/v1/kv/pos?fence=0", NULL},
        {"DELETE", "/v1/kv/pos", "X-Electd-Fence: 0"},
        {"PUT", "/v1/kv/pos?fence=0", "If-Match: 1"},
        {"PUT", "/v1/kv/pos?fence=0", "If-None-Match: *"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st =
            itest_http_h(port, bad[i].method, bad[i].path, bad[i].header, "2", body, sizeof(body));
        cr_assert_eq(st, 400, "%s %s [%s]: %d %s", bad[i].method, bad[i].path,
                     bad[i].header ? bad[i].header : "", st, body);
        cr_assert(strstr(body, "invalid_fence") != NULL, "%s", body);
    }
    /* Nothing was written or deleted by the refused requests. */
    cr_assert_eq(itest_http(port, "GET", "/v1/kv/pos", NULL, body, sizeof(body)), 200, "%s", body);
    cr_assert(strstr(body, "\"1\"") != NULL, "%s", body);
}

/* Nodes advertise their HTTP address by a name that resolves to ::1 first (where nothing
 * listens) and 127.0.0.1 second, as localhost does on stock Debian: forwarding must try both. */
Test(kv, forward_reaches_a_leader_advertised_by_a_name_with_several_addresses)
{
    private_hosts("electd-dual-stack"); /* this process and the nodes it starts */
    itest_cluster_init(&C, 3, 3);
    itest_cluster_arg(&C, "--forward");
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    static char adv[3][64];
    for (int i = 0; i < 3; i++) {
        snprintf(adv[i], sizeof(adv[i]), "--advertise-http=electd-dual-stack:%d",
                 C.nodes[i].http_port);
        C.nodes[i].extra[C.nodes[i].n_extra++] = adv[i];
    }
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    int f = (l + 1) % 3;
    char body[8192];
    int st = 0;
    for (int i = 0;
         i < 100 && (st = put(f, "/v1/kv/named", "via-a-name", body, sizeof(body))) != 200; i++)
        usleep(20000);
    cr_assert_eq(st, 200, "not forwarded to the leader's second address: %d %s", st, body);
}

/* electd keeps its own records under _electd/ (members that gave up on the workload):
 * nobody may overwrite or delete them through the API, not even the operator; reading and
 * listing them stays allowed. */
Test(kv, keys_under_electd_are_read_only_whatever_the_credential)
{
#define OPERATOR "Authorization: Bearer operator-token"
    int l = start3_with("--http-token=operator-token");
    int port = C.nodes[l].http_port;
    int follower = (l + 1) % 3;
    char body[8192], path[128], fence_q[48], fence_h[128];
    uint64_t fence = fencing_token(l);
    cr_assert_gt(fence, 0);
    snprintf(fence_q, sizeof(fence_q), "?fence=%llu", (unsigned long long)fence);
    snprintf(fence_h, sizeof(fence_h), OPERATOR "\r\nX-Electd-Fence: %llu",
             (unsigned long long)fence);
    const struct {
        const char *method, *key, *query, *header;
        int node;
    } refused[] = {
        {"PUT", "_electd/gave_up/a", "", OPERATOR, l},
        {"PUT", "_electd/", "", OPERATOR, l},
        {"PUT", "%5Felectd%2Fgave_up%2Fa", "", OPERATOR, l},
        {"PUT", "_electd/gave_up/a", fence_q, OPERATOR, l},
        {"PUT", "_electd/gave_up/a", "", fence_h, l},
        {"PUT", "_electd/gave_up/a", "", OPERATOR "\r\nIf-Match: 0", l},
        {"PUT", "_electd/gave_up/a", "", OPERATOR "\r\nIf-None-Match: *", l},
        {"DELETE", "_electd/gave_up/a", "", OPERATOR, l},
        {"DELETE", "_electd/gave_up/a", fence_q, OPERATOR, l},
        {"DELETE", "_electd/gave_up/a", "", OPERATOR "\r\nIf-Match: 5", l},
        {"PUT", "_electd/gave_up/a", "", OPERATOR, follower},
        {"DELETE", "_electd/gave_up/a", "", OPERATOR, follower},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        snprintf(path, sizeof(path), "/v1/kv/%s%s", refused[i].key, refused[i].query);
        int st = itest_http_h(C.nodes[refused[i].node].http_port, refused[i].method, path,
                              refused[i].header, "forged", body, sizeof(body));
        cr_assert_eq(st, 403, "%s %s [%s] on %s: %d %s", refused[i].method, path, refused[i].header,
                     refused[i].node == l ? "the leader" : "a follower", st, body);
        cr_assert(strstr(body, "\"reserved_key\"") != NULL, "%s", body);
    }
    /* Nothing was written; reads and listings of the prefix answer as for any key. */
    cr_assert_eq(itest_http(port, "GET", "/v1/kv/_electd/gave_up/a", NULL, body, sizeof(body)), 404,
                 "%s", body);
    cr_assert_eq(itest_http(port, "GET", "/v1/kv?prefix=_electd/", NULL, body, sizeof(body)), 200,
                 "%s", body);
    cr_assert(strstr(body, "\"items\":[]") != NULL, "%s", body);
    /* Only the prefix itself is reserved. */
    const char *allowed[] = {"/v1/kv/_electd", "/v1/kv/_electdx/a", "/v1/kv/a/_electd/b"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        cr_assert_eq(itest_http_h(port, "PUT", allowed[i], OPERATOR, "1", body, sizeof(body)), 200,
                     "%s: %s", allowed[i], body);
#undef OPERATOR
}

/* One strict JSON document (valid UTF-8, nothing after it, unique names), or the test fails. */
static cJSON *strict_json(const char *body)
{
    cJSON *o = json_check_parse(body, strlen(body));
    cr_assert_not_null(o, "not one strict JSON document: %s", body);
    return o;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A key must be UTF-8 (a JSON reply could not carry it otherwise): refused at the write, and
 * the listing that follows stays one JSON document. */
Test(kv, a_key_that_is_not_utf8_is_refused_and_listings_stay_json)
{
    int l = start3();
    char body[8192];
    /* Invalid bytes, an overlong NUL, a surrogate, past U+10FFFF. */
    const char *bad[] = {"/v1/kv/%ff%fe%80", "/v1/kv/a%c0%80", "/v1/kv/a%ed%a0%80",
                         "/v1/kv/a%f4%90%80%80", "/v1/kv/cut%e2%82"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = put(l, bad[i], "v", body, sizeof(body));
        cr_assert_eq(st, 400, "PUT %s: %d %s", bad[i], st, body);
        cr_assert(strstr(body, "\"invalid_key\"") != NULL, "%s", body);
        cJSON_Delete(strict_json(body));
    }
    cr_assert_eq(put(l, "/v1/kv/caf%c3%a9/%f0%9f%94%91", "v", body, sizeof(body)), 200, "%s", body);
    cr_assert_eq(
        itest_http(C.nodes[l].http_port, "GET", "/v1/kv?prefix=", NULL, body, sizeof(body)), 200,
        "%s", body);
    cJSON *o = strict_json(body);
    const cJSON *items = cJSON_GetObjectItem(o, "items");
    cr_assert_eq(cJSON_GetArraySize(items), 1, "%s", body);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(items, 0), "key"), "caf\xc3\xa9/\xf0\x9f\x94\x91");
    cJSON_Delete(o);
}

/* The checksum electd keeps with a KV row (store_int.h: CRC32C over the key's and the value's
 * lengths and bytes, then the three revisions, each number 8 bytes little-endian). */
static uint32_t row_crc(const void *key, size_t key_len, const void *value, size_t value_len,
                        const int64_t rev[3])
{
    uint8_t n[24];
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)((uint64_t)key_len >> (8 * i));
    uint32_t crc = raft_crc32c(raft_crc32c(0, n, 8), key, key_len);
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)((uint64_t)value_len >> (8 * i));
    crc = raft_crc32c(raft_crc32c(crc, n, 8), value, value_len);
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 8; i++)
            n[8 * r + i] = (uint8_t)((uint64_t)rev[r] >> (8 * i));
    return raft_crc32c(crc, n, sizeof(n));
}

/* Rewrites one key in a stopped node's electd.db, as a version that took any bytes left it
 * (with the row's checksum, as the migration computes it for rows an older version left). */
static void rewrite_key(int node, const char *from, const void *to, size_t to_len)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/electd.db", C.nodes[node].dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK, "%s", path);
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "SELECT value, create_rev, mod_rev, version FROM kv "
                                    "WHERE key = ?1",
                                    -1, &s, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_bind_blob(s, 1, from, (int)strlen(from), SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s", sqlite3_errmsg(db));
    int64_t rev[3] = {sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
                      sqlite3_column_int64(s, 3)};
    uint32_t crc =
        row_crc(to, to_len, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0), rev);
    sqlite3_finalize(s);
    cr_assert_eq(
        sqlite3_prepare_v2(db, "UPDATE kv SET key = ?1, crc = ?3 WHERE key = ?2", -1, &s, NULL),
        SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_bind_blob(s, 1, to, (int)to_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, from, (int)strlen(from), SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, crc);
    cr_assert_eq(sqlite3_step(s), SQLITE_DONE, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_changes(db), 1);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* A key that is not UTF-8 stored by an older version (or arriving in a snapshot from one) is
 * still served as valid JSON — as key_base64, like a binary value — and can be paged past,
 * read and deleted. */
Test(kv, a_stored_key_that_is_not_utf8_is_answered_as_key_base64)
{
    itest_cluster_init(&C, 1, 1);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    itest_cluster_start(&C);
    cr_assert_eq(itest_wait_leader(&C, 15000), 0);
    int port = C.nodes[0].http_port;
    char body[8192];
    cr_assert_eq(itest_http(port, "PUT", "/v1/kv/old/k1", "\xff\xfe", body, sizeof(body)), 200,
                 "%s", body);
    cr_assert_eq(itest_http(port, "PUT", "/v1/kv/old/k2", "two", body, sizeof(body)), 200, "%s",
                 body);
    cr_assert_eq(itest_node_stop(&C, 0), 0);
    rewrite_key(0, "old/k1", "old/\xff\xfe\x80", 7);
    itest_node_start(&C, 0);
    cr_assert_eq(itest_wait_leader(&C, 15000), 0);
    port = C.nodes[0].http_port;

    cr_assert_eq(itest_http(port, "GET", "/v1/kv?prefix=old/", NULL, body, sizeof(body)), 200, "%s",
                 body);
    cJSON *o = strict_json(body);
    const cJSON *items = cJSON_GetObjectItem(o, "items");
    cr_assert_eq(cJSON_GetArraySize(items), 2, "%s", body);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(items, 0), "key"), "old/k2", "%s", body);
    const cJSON *legacy = cJSON_GetArrayItem(items, 1);
    cr_assert_null(jstr(legacy, "key"), "%s", body);
    cr_assert_str_eq(jstr(legacy, "key_base64"), "b2xkL//+gA==", "%s", body);
    cr_assert_str_eq(jstr(legacy, "value_base64"), "//4=", "%s", body);
    cJSON_Delete(o);

    /* Paging reaches it, and its bytes, percent-encoded as after=, end the listing. */
    cr_assert_eq(itest_http(port, "GET", "/v1/kv?prefix=old/&after=old/k2&limit=1", NULL, body,
                            sizeof(body)),
                 200, "%s", body);
    o = strict_json(body);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "items"), 0), "key_base64"),
                     "b2xkL//+gA==", "%s", body);
    cJSON_Delete(o);
    cr_assert_eq(
        itest_http(port, "GET", "/v1/kv?prefix=old/&after=old/%ff%fe%80", NULL, body, sizeof(body)),
        200, "%s", body);
    cr_assert(strstr(body, "\"items\":[]") != NULL, "%s", body);

    /* Read and delete it by its bytes; both answers are JSON. */
    cr_assert_eq(itest_http(port, "GET", "/v1/kv/old/%ff%fe%80", NULL, body, sizeof(body)), 200,
                 "%s", body);
    o = strict_json(body);
    cr_assert_str_eq(jstr(o, "key_base64"), "b2xkL//+gA==", "%s", body);
    cJSON_Delete(o);
    cr_assert_eq(itest_http(port, "DELETE", "/v1/kv/old/%ff%fe%80", NULL, body, sizeof(body)), 200,
                 "%s", body);
    o = strict_json(body);
    cr_assert_str_eq(jstr(o, "key_base64"), "b2xkL//+gA==", "%s", body);
    cJSON_Delete(o);
    cr_assert_eq(itest_http(port, "GET", "/v1/kv/old/%ff%fe%80", NULL, body, sizeof(body)), 404,
                 "%s", body);
}
