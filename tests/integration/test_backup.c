/* test_backup.c — real processes: `electd backup FILE` from a running member and a new group
 * started with --restore FILE (the data there, fencing tokens and revisions carried on), and a
 * value changed in a stopped member's electd.db refused when read (500 corrupt_value, counted
 * in electd_store_corrupt_values_total). */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

#define RUN_LIMIT_MS 30000

static itest_cluster_t A, B;
static bool a_started, b_started;

static void fini(void)
{
    if (a_started)
        itest_cluster_destroy(&A);
    if (b_started)
        itest_cluster_destroy(&B);
    a_started = b_started = false;
}

TestSuite(backup, .fini = fini, .timeout = 240);

static void init(itest_cluster_t *c, int n)
{
    itest_cluster_init(c, n, n);
    itest_cluster_arg(c, "--heartbeat-interval=50ms");
    itest_cluster_arg(c, "--election-timeout=500ms");
    itest_cluster_arg(c, "--stop-timeout=200ms");
}

static uint64_t json_u64(const char *body, const char *name)
{
    cJSON *o = cJSON_Parse(body);
    const cJSON *v = cJSON_GetObjectItem(o, name);
    uint64_t r = cJSON_IsNumber(v) ? (uint64_t)v->valuedouble : 0;
    cJSON_Delete(o);
    return r;
}

static uint64_t fencing_token(int port)
{
    char body[16384];
    cr_assert_eq(itest_http(port, "GET", "/v1/status", NULL, body, sizeof(body)), 200);
    return json_u64(body, "fencing_token");
}

/* Runs `electd args...` (NULL-terminated) to completion within RUN_LIMIT_MS; its stdout and
 * stderr into out. Returns its exit status. */
static int run_cli(const char *const *args, char *out, size_t cap)
{
    char path[] = "/tmp/electd-backup-cli-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *argv[16] = {ELECTD_BIN};
    for (size_t i = 0; args[i] != NULL && i < 14; i++)
        argv[i + 1] = args[i];
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        execv(ELECTD_BIN, (char *const *)argv);
        _exit(127);
    }
    int status = -1;
    uint64_t deadline = itest_now_ms() + RUN_LIMIT_MS;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (itest_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            cr_assert_fail("electd %s did not finish", args[0]);
        }
        usleep(10000);
    }
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static uint64_t put(int port, const char *key, const char *value)
{
    char path[200], body[4096];
    snprintf(path, sizeof(path), "/v1/kv/%s", key);
    cr_assert_eq(itest_http(port, "PUT", path, value, body, sizeof(body)), 200, "%s", body);
    return json_u64(body, "mod_revision");
}

static int transfer_and_wait(itest_cluster_t *c, int leader)
{
    char body[4096];
    int code = itest_http(c->nodes[leader].http_port, "POST", "/v1/leader/transfer", "", body,
                          sizeof(body));
    cr_assert(code == 200 || code == 202, "%d %s", code, body);
    for (int tries = 0; tries < 300; tries++) {
        int l = itest_wait_leader(c, 15000);
        if (l >= 0 && l != leader)
            return l;
        usleep(10000);
    }
    cr_assert_fail("leadership did not move");
    return -1;
}

Test(backup, a_backup_restored_into_a_new_group_keeps_data_tokens_and_revisions_rising)
{
    init(&A, 3);
    a_started = true;
    itest_cluster_start(&A);
    int l = itest_wait_leader(&A, 15000);
    cr_assert_geq(l, 0);
    uint64_t top_rev = 0, top_token = 0;
    char key[32], value[64];
    for (int round = 0; round < 3; round++) { /* three terms, each with its token and writes */
        uint64_t token = fencing_token(A.nodes[l].http_port);
        top_token = token > top_token ? token : top_token;
        for (int i = 0; i < 5; i++) {
            snprintf(key, sizeof(key), "app/k%d-%d", round, i);
            snprintf(value, sizeof(value), "value %d of term token %llu", i,
                     (unsigned long long)token);
            uint64_t rev = put(A.nodes[l].http_port, key, value);
            top_rev = rev > top_rev ? rev : top_rev;
        }
        if (round < 2)
            l = transfer_and_wait(&A, l);
    }
    cr_assert_geq(top_token, 3);

    /* the backup, from a running member (here a follower: any member will do) */
    int f = (l + 1) % 3;
    char file[400], http[64], out[8192];
    snprintf(file, sizeof(file), "%s/group-a.backup", A.root);
    snprintf(http, sizeof(http), "127.0.0.1:%d", A.nodes[f].http_port);
    /* the follower may still be applying the last write: wait until it has it */
    snprintf(key, sizeof(key), "/v1/kv/app/k2-4?stale");
    for (int tries = 0;
         tries < 500 && itest_http(A.nodes[f].http_port, "GET", key, NULL, out, sizeof(out)) != 200;
         tries++)
        usleep(10000);
    const char *args[] = {"backup", file, "--http", http, NULL};
    int rc = run_cli(args, out, sizeof(out));
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "written to") != NULL, "%s", out);
    cr_assert_neq(run_cli(args, out, sizeof(out)), 0, "an existing file is never replaced");
    cr_assert(strstr(out, "exists") != NULL, "%s", out);
    cr_assert_eq(itest_http(A.nodes[f].http_port, "GET", "/v1/backup", NULL, NULL, 0), 200);

    /* a new group, every member started from the backup */
    init(&B, 3);
    b_started = true;
    static char restore[460];
    snprintf(restore, sizeof(restore), "--restore=%s", file);
    itest_cluster_arg(&B, restore);
    itest_cluster_start(&B);
    int bl = itest_wait_leader(&B, 20000);
    cr_assert_geq(bl, 0);
    cr_assert_geq(itest_log_find(&B, bl, "restored from backup"), 0);
    int bp = B.nodes[bl].http_port;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 5; i++) {
            char path[64];
            snprintf(path, sizeof(path), "/v1/kv/app/k%d-%d", round, i);
            cr_assert_eq(itest_http(bp, "GET", path, NULL, out, sizeof(out)), 200, "%s: %s", path,
                         out);
            cr_assert(strstr(out, "value ") != NULL, "%s", out);
        }
    uint64_t token = fencing_token(bp);
    cr_assert_gt(token, top_token, "the new group's token %llu must exceed %llu",
                 (unsigned long long)token, (unsigned long long)top_token);
    char fenced[64], body[4096];
    snprintf(fenced, sizeof(fenced), "/v1/kv/app/late?fence=%llu", (unsigned long long)top_token);
    cr_assert_eq(itest_http(bp, "PUT", fenced, "stale", body, sizeof(body)), 409,
                 "a token of the old group is stale: %s", body);
    uint64_t rev = put(bp, "app/after", "new group");
    cr_assert_gt(rev, top_rev, "revision %llu after %llu", (unsigned long long)rev,
                 (unsigned long long)top_rev);
    /* a restarted member keeps its state; --restore is then ignored */
    int other = (bl + 1) % 3;
    cr_assert_eq(itest_node_stop(&B, other), 0);
    itest_node_start(&B, other);
    cr_assert_geq(itest_wait_leader(&B, 20000), 0);
    cr_assert_geq(itest_log_find(&B, other, "--restore ignored"), 0);
}

/* Flips the first byte of key's value in a stopped member's electd.db. */
static void flip_value(itest_cluster_t *c, int node, const char *key)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/electd.db", c->nodes[node].dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK, "%s", path);
    cr_assert_eq(sqlite3_prepare_v2(db, "UPDATE kv SET value = ?2 WHERE key = ?1", -1, &s, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_bind_blob(s, 1, key, (int)strlen(key), SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, "wecret", 6, SQLITE_STATIC); /* was "secret": one bit flipped */
    cr_assert_eq(sqlite3_step(s), SQLITE_DONE, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_changes(db), 1);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static uint64_t metric(int port, const char *name)
{
    static char body[1 << 18];
    cr_assert_eq(itest_http(port, "GET", "/metrics", NULL, body, sizeof(body)), 200);
    char needle[128];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *p = strstr(body, needle);
    cr_assert_not_null(p, "%s not in /metrics", name);
    return strtoull(p + strlen(needle), NULL, 10);
}

Test(backup, a_value_changed_on_disk_is_refused_and_counted)
{
    init(&A, 3);
    a_started = true;
    itest_cluster_start(&A);
    int l = itest_wait_leader(&A, 15000);
    cr_assert_geq(l, 0);
    put(A.nodes[l].http_port, "cfg/password", "secret");
    put(A.nodes[l].http_port, "cfg/user", "admin");
    int f = (l + 1) % 3;
    char out[4096];
    for (int tries = 0;
         tries < 500 && itest_http(A.nodes[f].http_port, "GET", "/v1/kv/cfg/user?stale", NULL, out,
                                   sizeof(out)) != 200;
         tries++)
        usleep(10000);
    cr_assert_eq(itest_node_stop(&A, f), 0);
    flip_value(&A, f, "cfg/password");
    itest_node_start(&A, f);
    cr_assert_geq(itest_wait_leader(&A, 15000), 0);
    int port = A.nodes[f].http_port;
    cr_assert_eq(metric(port, "electd_store_corrupt_values_total"), 0);

    cr_assert_eq(itest_http(port, "GET", "/v1/kv/cfg/password?stale", NULL, out, sizeof(out)), 500,
                 "%s", out);
    cr_assert(strstr(out, "\"corrupt_value\"") != NULL, "%s", out);
    cr_assert(strstr(out, "\"key\":\"cfg/password\"") != NULL, "%s", out);
    cr_assert(strstr(out, "wecret") == NULL, "the value is never served: %s", out);
    cr_assert_eq(itest_http(port, "GET", "/v1/kv?prefix=cfg/&stale", NULL, out, sizeof(out)), 500,
                 "%s", out);
    cr_assert(strstr(out, "\"corrupt_value\"") != NULL, "%s", out);
    cr_assert_eq(itest_http(port, "GET", "/v1/kv/cfg/user?stale", NULL, out, sizeof(out)), 200,
                 "%s", out);
    cr_assert_eq(itest_http(port, "GET", "/v1/backup", NULL, out, sizeof(out)), 500, "%s", out);
    cr_assert_eq(metric(port, "electd_store_corrupt_values_total"), 3);
    cr_assert_geq(itest_log_find(&A, f, "fails its checksum"), 0);
    /* the other members serve their intact copy; overwriting the key repairs this one */
    cr_assert_eq(itest_http(A.nodes[l].http_port, "GET", "/v1/kv/cfg/password?stale", NULL, out,
                            sizeof(out)),
                 200, "%s", out);
    put(A.nodes[itest_wait_leader(&A, 15000)].http_port, "cfg/password", "secret2");
    int ok = 0;
    for (int tries = 0; tries < 500 && ok != 200; tries++) {
        ok = itest_http(port, "GET", "/v1/kv/cfg/password?stale", NULL, out, sizeof(out));
        if (ok != 200)
            usleep(10000);
    }
    cr_assert_eq(ok, 200, "%s", out);
}
