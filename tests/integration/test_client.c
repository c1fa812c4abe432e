/* test_client.c — the `electd status|leader|transfer|kv|members|elections` subcommands run as
 * subprocesses against a real 3-node cluster (on the leader and through followers: one 421
 * redirect followed) and against canned servers in this process (IPv6, timeouts, oversized and
 * 5xx replies); checks their output and the exit codes scripts rely on (0 ok, 1 not found or
 * condition failed, 2 error). */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../sidecar/private_hosts.h"
#include "cluster.h"

#define OUT_CAP      65536
#define RUN_LIMIT_MS 20000 /* a client that runs longer than this is killed: the test fails */
#define MAX_CLI_ARGS 24

static itest_cluster_t C;
static bool started;

static void fini(void)
{
    if (started)
        itest_cluster_destroy(&C);
    started = false;
}

TestSuite(client, .fini = fini, .timeout = 120);

static void init3(void)
{
    itest_cluster_init(&C, 3, 3);
    started = true;
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
}

static int start3(void)
{
    init3();
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    return l;
}

/* ---- running the client ---------------------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int out, err;
} child_t;

/* Starts ELECTD_BIN with args (NULL-terminated); env_http, when set, is ELECTD_HTTP. The
 * child gets stdin_data on stdin (or /dev/null-like EOF when NULL). */
static child_t spawn(const char *env_http, const char *stdin_data, const char *const *args)
{
    const char *argv[MAX_CLI_ARGS + 2];
    size_t n = 0;
    argv[n++] = ELECTD_BIN;
    for (; args[n - 1] != NULL && n < MAX_CLI_ARGS + 1; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int in[2], out[2], err[2];
    cr_assert(pipe(in) == 0 && pipe(out) == 0 && pipe(err) == 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        unsetenv("ELECTD_HTTP_TOKEN");
        if (env_http)
            setenv("ELECTD_HTTP", env_http, 1);
        else
            unsetenv("ELECTD_HTTP");
        execv(ELECTD_BIN, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (stdin_data != NULL) {
        size_t len = strlen(stdin_data);
        cr_assert_eq(write(in[1], stdin_data, len), (ssize_t)len);
    }
    close(in[1]);
    return (child_t){.pid = pid, .out = out[0], .err = err[0]};
}

/* Collects the child's stdout and stderr (NUL-terminated, truncated to OUT_CAP) and its exit
 * code; kills it after RUN_LIMIT_MS. */
static int finish(child_t ch, char *out, char *err)
{
    size_t n[2] = {0, 0};
    char *buf[2] = {out, err};
    int fds[2] = {ch.out, ch.err};
    uint64_t deadline = itest_now_ms() + RUN_LIMIT_MS;
    while ((fds[0] >= 0 || fds[1] >= 0) && itest_now_ms() < deadline) {
        struct pollfd p[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
        if (poll(p, 2, 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || p[i].revents == 0)
                continue;
            char tmp[4096];
            ssize_t r = read(fds[i], tmp, sizeof(tmp));
            if (r <= 0) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            size_t take = (size_t)r < OUT_CAP - 1 - n[i] ? (size_t)r : OUT_CAP - 1 - n[i];
            memcpy(buf[i] + n[i], tmp, take);
            n[i] += take;
        }
    }
    out[n[0]] = err[n[1]] = '\0';
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    int status = 0;
    if (waitpid(ch.pid, &status, WNOHANG) == 0) {
        uint64_t end = itest_now_ms() + 2000;
        while (waitpid(ch.pid, &status, WNOHANG) == 0 && itest_now_ms() < end)
            usleep(5000);
        if (itest_now_ms() >= end) {
            kill(ch.pid, SIGKILL);
            waitpid(ch.pid, &status, 0);
            cr_assert_fail("the client did not exit in time; stdout: %s stderr: %s", out, err);
        }
    }
    cr_assert(WIFEXITED(status), "the client died of signal %d", WTERMSIG(status));
    return WEXITSTATUS(status);
}

static char OUT[OUT_CAP], ERR[OUT_CAP];

/* Runs the client: run(stdin or NULL, "kv", "get", ..., NULL); output in OUT and ERR. */
static int run(const char *stdin_data, ...)
{
    const char *args[MAX_CLI_ARGS + 1];
    size_t n = 0;
    va_list ap;
    va_start(ap, stdin_data);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < MAX_CLI_ARGS;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return finish(spawn(NULL, stdin_data, args), OUT, ERR);
}

static const char *http_of(int i)
{
    static char buf[ITEST_MAX_NODES][32];
    snprintf(buf[i], sizeof(buf[i]), "127.0.0.1:%d", C.nodes[i].http_port);
    return buf[i];
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "%.*s", (int)(len < sizeof(tmp) ? len : sizeof(tmp) - 1), line);
        if (strstr(tmp, needle) != NULL)
            n++;
        line = eol ? eol + 1 : NULL;
    }
    return n;
}

static uint64_t fencing_token(int node)
{
    char body[8192];
    cr_assert_eq(itest_http(C.nodes[node].http_port, "GET", "/v1/status", NULL, body, sizeof(body)),
                 200);
    cJSON *o = cJSON_Parse(body);
    const cJSON *v = cJSON_GetObjectItem(o, "fencing_token");
    uint64_t t = cJSON_IsNumber(v) ? (uint64_t)v->valuedouble : 0;
    cJSON_Delete(o);
    return t;
}

/* ---- against a real cluster ------------------------------------------------------------------ */

Test(client, status_leader_and_members_answer_on_every_node)
{
    int l = start3();
    char want[64];
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(run(NULL, "status", "--http", http_of(i), NULL), 0, "%s", ERR);
        snprintf(want, sizeof(want), "node      %s", C.nodes[i].name);
        cr_assert(strstr(OUT, want) != NULL, "%s", OUT);
        cr_assert(strstr(OUT, i == l ? "role      leader" : "role      follower") != NULL, "%s",
                  OUT);
        snprintf(want, sizeof(want), "leader    %s (http %s", C.nodes[l].name, http_of(l));
        cr_assert(strstr(OUT, want) != NULL, "%s", OUT);
        cr_assert_eq(count_lines_with(OUT, "voter"), 3, "%s", OUT);

        cr_assert_eq(run(NULL, "leader", "--http", http_of(i), NULL), 0, "%s", ERR);
        snprintf(want, sizeof(want), "%s (http %s) term ", C.nodes[l].name, http_of(l));
        cr_assert(strncmp(OUT, want, strlen(want)) == 0, "%s", OUT);

        cr_assert_eq(run(NULL, "members", "--http", http_of(i), NULL), 0, "%s", ERR);
        cr_assert_eq(count_lines_with(OUT, "voter"), 3, "%s", OUT);
        for (int k = 0; k < 3; k++) {
            snprintf(want, sizeof(want), "127.0.0.1:%d", C.nodes[k].peer_port);
            cr_assert(strstr(OUT, want) != NULL, "%s", OUT);
        }
    }
    /* --json prints the server's object; ELECTD_HTTP picks the node when --http is absent. */
    int f = (l + 1) % 3;
    const char *args[] = {"status", "--json", NULL};
    cr_assert_eq(finish(spawn(http_of(f), NULL, args), OUT, ERR), 0, "%s", ERR);
    cJSON *o = cJSON_Parse(OUT);
    cr_assert_not_null(o, "%s", OUT);
    cr_assert_str_eq(cJSON_GetObjectItem(o, "node")->valuestring, C.nodes[f].name);
    cr_assert_str_eq(cJSON_GetObjectItem(o, "role")->valuestring, "follower");
    cJSON_Delete(o);
}

Test(client, kv_through_a_follower_with_exit_codes_for_missing_and_conflicts)
{
    int l = start3();
    int f = (l + 1) % 3;
    const char *fh = http_of(f);
    /* A write through a follower follows the 421 to the leader. */
    cr_assert_eq(run(NULL, "kv", "put", "app/config", "mysql-bin.000042:1337", "--http", fh, NULL),
                 0, "%s", ERR);
    cr_assert(strncmp(OUT, "OK revision ", 12) == 0, "%s", OUT);
    uint64_t rev = strtoull(OUT + 12, NULL, 10);
    cr_assert_gt(rev, 0);
    /* --ephemeral through the follower: the redirect names it, so the key is bound to it. */
    cr_assert_eq(
        run(NULL, "kv", "put", "services/web/f", "10.0.0.2:80", "--ephemeral", "--http", fh, NULL),
        0, "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "get", "services/web/f", "--json", "--http", fh, NULL), 0, "%s",
                 ERR);
    cJSON *e = cJSON_Parse(OUT);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(e, "ephemeral")), "%s", OUT);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(e, "owner")), C.nodes[f].name);
    cJSON_Delete(e);
    /* A linearizable read through the follower sees it at once. */
    cr_assert_eq(run(NULL, "kv", "get", "app/config", "--http", fh, NULL), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "mysql-bin.000042:1337\n");
    cr_assert_eq(run(NULL, "kv", "get", "app/config", "--json", "--http", fh, NULL), 0, "%s", ERR);
    cJSON *o = cJSON_Parse(OUT);
    cr_assert_not_null(o, "%s", OUT);
    cr_assert_eq((uint64_t)cJSON_GetObjectItem(o, "mod_revision")->valuedouble, rev);
    cJSON_Delete(o);
    /* A stale read on the follower catches up (bounded poll). */
    bool seen = false;
    for (int i = 0; i < 50 && !seen; i++) {
        seen = run(NULL, "kv", "get", "app/config", "--stale", "--http", fh, NULL) == 0 &&
               strcmp(OUT, "mysql-bin.000042:1337\n") == 0;
        if (!seen)
            usleep(20000);
    }
    cr_assert(seen, "the follower never applied the write: %s %s", OUT, ERR);

    /* Missing key: 1. */
    cr_assert_eq(run(NULL, "kv", "get", "no/such/key", "--http", fh, NULL), 1, "%s %s", OUT, ERR);
    cr_assert(strstr(ERR, "not_found") != NULL, "%s", ERR);
    cr_assert_str_eq(OUT, "");

    /* Compare-and-set: a wrong revision is a condition failure (1), the right one wins. */
    cr_assert_eq(
        run(NULL, "kv", "put", "app/config", "v2", "--if-match", "999999", "--http", fh, NULL), 1,
        "%s %s", OUT, ERR);
    cr_assert(strstr(ERR, "conflict") != NULL, "%s", ERR);
    char revs[32];
    snprintf(revs, sizeof(revs), "%llu", (unsigned long long)rev);
    cr_assert_eq(
        run(NULL, "kv", "put", "app/config", "v2", "--if-match", revs, "--http", http_of(l), NULL),
        0, "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "get", "app/config", "--http", http_of(l), NULL), 0);
    cr_assert_str_eq(OUT, "v2\n");

    /* A value from stdin, bytes exact with --raw; values that look like options after --. */
    cr_assert_eq(run("line one\nline two\n", "kv", "put", "app/multi", "-", "--http", fh, NULL), 0,
                 "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "get", "app/multi", "--raw", "--http", fh, NULL), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "line one\nline two\n");
    cr_assert_eq(run(NULL, "kv", "put", "--http", fh, "--", "app/neg", "-5", NULL), 0, "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "get", "app/neg", "--http", fh, NULL), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "-5\n");
    /* Keys with spaces and reserved characters survive the URL. */
    cr_assert_eq(run(NULL, "kv", "put", "odd key&x=1?#%", "odd", "--http", fh, NULL), 0, "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "get", "odd key&x=1?#%", "--http", fh, NULL), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "odd\n");

    /* ls by prefix, through the follower. */
    cr_assert_eq(run(NULL, "kv", "ls", "app/", "--http", fh, NULL), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "app/config\tv2\napp/multi\tline one\\nline two\\n\napp/neg\t-5\n");
    cr_assert_eq(run(NULL, "kv", "ls", "app/", "--json", "--http", fh, NULL), 0, "%s", ERR);
    o = cJSON_Parse(OUT);
    cr_assert_not_null(o, "%s", OUT);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "items")), 3, "%s", OUT);
    cJSON_Delete(o);

    /* Delete: 0, then the key is gone (1), and deleting again is 1. */
    cr_assert_eq(run(NULL, "kv", "del", "app/neg", "--http", fh, NULL), 0, "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "get", "app/neg", "--http", fh, NULL), 1, "%s", OUT);
    cr_assert_eq(run(NULL, "kv", "del", "app/neg", "--http", fh, NULL), 1, "%s", OUT);

    /* A fencing token that is not the current one: 1, and the message says "fenced" (a
     * token from an older term: see the transfer test). */
    uint64_t token = fencing_token(l);
    cr_assert_gt(token, 0);
    char stale[32], cur[32];
    snprintf(stale, sizeof(stale), "%llu", (unsigned long long)(token + 1));
    snprintf(cur, sizeof(cur), "%llu", (unsigned long long)token);
    cr_assert_eq(run(NULL, "kv", "put", "app/pos", "1", "--fence", stale, "--http", fh, NULL), 1,
                 "%s %s", OUT, ERR);
    cr_assert(strstr(ERR, "fenced") != NULL, "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "put", "app/pos", "1", "--fence", cur, "--http", fh, NULL), 0,
                 "%s", ERR);
}

/* `kv ls` lists everything however large the values: 80 values of 60 KB (4.8 MB, more than
 * one reply may carry) come in pages the server bounds in bytes, and the client follows them;
 * a binary value shows its size as stored, not its base64 length. */
Test(client, kv_ls_pages_through_large_values_and_shows_binary_sizes)
{
    enum { N_BIG = 80, BIG_BYTES = 60 * 1024 };
    int l = start3();
    int port = C.nodes[l].http_port;
    static char value[BIG_BYTES + 1], bin[65536 + 1];
    char path[64], body[4096], want[64];
    for (int i = 0; i < N_BIG; i++) {
        memset(value, 'a' + i % 26, BIG_BYTES);
        snprintf(path, sizeof(path), "/v1/kv/big/%02d", i);
        cr_assert_eq(itest_http(port, "PUT", path, value, body, sizeof(body)), 200, "%s: %s", path,
                     body);
    }
    cr_assert_eq(run(NULL, "kv", "ls", "big/", "--http", http_of(l), NULL), 0, "%s", ERR);
    cr_assert_eq(count_lines_with(OUT, "big/"), N_BIG, "%s", ERR);
    for (int i = 0; i < N_BIG; i++) {
        snprintf(want, sizeof(want), "big/%02d\t%c%c%c", i, 'a' + i % 26, 'a' + i % 26,
                 'a' + i % 26);
        cr_assert_eq(count_lines_with(OUT, want), 1, "%s missing: %.300s", want, OUT);
    }

    /* Binary values of the largest size and of sizes that need base64 padding. */
    memset(bin, 0xff, 65536);
    cr_assert_eq(itest_http(port, "PUT", "/v1/kv/bin/a", bin, body, sizeof(body)), 200, "%s", body);
    cr_assert_eq(itest_http(port, "PUT", "/v1/kv/bin/b", "\xff", body, sizeof(body)), 200, "%s",
                 body);
    cr_assert_eq(itest_http(port, "PUT", "/v1/kv/bin/c", "\xff\xfe", body, sizeof(body)), 200, "%s",
                 body);
    cr_assert_eq(itest_http(port, "PUT", "/v1/kv/bin/d", "\xff\xfe\xfd", body, sizeof(body)), 200,
                 "%s", body);
    cr_assert_eq(run(NULL, "kv", "ls", "bin/", "--http", http_of(l), NULL), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "bin/a\t(binary, 65536 bytes)\nbin/b\t(binary, 1 byte)\n"
                          "bin/c\t(binary, 2 bytes)\nbin/d\t(binary, 3 bytes)\n");
}

Test(client, transfer_moves_leadership_and_old_tokens_are_fenced)
{
    int l = start3();
    int f = (l + 1) % 3;
    uint64_t token = fencing_token(l);
    char tok[32], want[64];
    snprintf(tok, sizeof(tok), "%llu", (unsigned long long)token);
    cr_assert_eq(run(NULL, "kv", "put", "pos", "100", "--fence", tok, "--http", http_of(l), NULL),
                 0, "%s", ERR);

    /* Asked on a follower: the redirect reaches the leader, which hands over. */
    cr_assert_eq(run(NULL, "transfer", "--http", http_of(f), NULL), 0, "%s %s", OUT, ERR);
    snprintf(want, sizeof(want), "leadership moved from %s to ", C.nodes[l].name);
    cr_assert(strncmp(OUT, want, strlen(want)) == 0, "%s", OUT);
    int l2 = itest_wait_leader(&C, 10000);
    cr_assert_geq(l2, 0);
    cr_assert_neq(l2, l);
    cr_assert(strstr(OUT, C.nodes[l2].name) != NULL, "%s", OUT);

    /* The old primary's token is now stale. */
    int rc = 2;
    for (int i = 0; i < 50 && rc == 2; i++) {
        rc = run(NULL, "kv", "put", "pos", "200", "--fence", tok, "--http", http_of(f), NULL);
        if (rc == 2)
            usleep(20000); /* the new leader's term-start entry may still be applying */
    }
    cr_assert_eq(rc, 1, "%s %s", OUT, ERR);
    cr_assert(strstr(ERR, "fenced") != NULL, "%s", ERR);

    /* --to picks the successor. */
    int target = (l2 + 1) % 3;
    cr_assert_eq(run(NULL, "transfer", "--to", C.nodes[target].name, "--http", http_of(l2), NULL),
                 0, "%s %s", OUT, ERR);
    int l3 = itest_wait_leader(&C, 10000);
    cr_assert_eq(l3, target, "%s", OUT);
    /* To the member that leads already (asked through a follower): nothing moves, nothing is
     * stopped, the term stays (a handover to itself used to stop its workload and then find
     * no one to hand over to). */
    itest_status_t before, after;
    cr_assert(itest_status(&C, l3, &before));
    cr_assert_eq(
        run(NULL, "transfer", "--to", C.nodes[l3].name, "--http", http_of((l3 + 1) % 3), NULL), 0,
        "%s %s", OUT, ERR);
    cr_assert(strstr(OUT, "leads already") != NULL, "%s", OUT);
    cr_assert(itest_status(&C, l3, &after));
    cr_assert_str_eq(after.role, "leader");
    cr_assert_eq(after.term, before.term, "leadership moved");
    cr_assert_eq(run(NULL, "transfer", "--to", "nosuchnode", "--http", http_of(l3), NULL), 1,
                 "%s %s", OUT, ERR);
    cr_assert(strstr(ERR, "unknown_member") != NULL, "%s", ERR);
}

/* `electd maintenance on|off` through a follower (the redirect reaches the leader), shown by
 * `maintenance` and `status` on every member; transfers refused meanwhile (exit 1). */
Test(client, maintenance_on_and_off_through_a_follower)
{
    int l = start3();
    int f = (l + 1) % 3, g = (l + 2) % 3;
    cr_assert_eq(
        run(NULL, "maintenance", "on", "--reason", "kernel upgrade", "--http", http_of(f), NULL), 0,
        "%s %s", OUT, ERR);
    cr_assert(strstr(OUT, "maint     ON since ") && strstr(OUT, ": kernel upgrade"), "%s", OUT);
    int rc = 1;
    for (int i = 0; i < 100 && rc == 1; i++) { /* g applies it a heartbeat or so later */
        rc = run(NULL, "status", "--http", http_of(g), NULL) == 0 &&
                     strstr(OUT, "maint     ON since ") != NULL
                 ? 0
                 : 1;
        if (rc == 1)
            usleep(20000);
    }
    cr_assert_eq(rc, 0, "%s %s", OUT, ERR);
    cr_assert(strstr(OUT, "priority  100\n") != NULL, "%s", OUT);
    cr_assert_eq(run(NULL, "transfer", "--http", http_of(f), NULL), 1, "%s %s", OUT, ERR);
    cr_assert(strstr(ERR, "maintenance") && strstr(ERR, "kernel upgrade"), "%s", ERR);
    cr_assert_eq(run(NULL, "maintenance", "--json", "--http", http_of(g), NULL), 0, "%s", ERR);
    cr_assert(strstr(OUT, "\"enabled\":true"), "%s", OUT);
    cr_assert_eq(run(NULL, "maintenance", "off", "--http", http_of(g), NULL), 0, "%s %s", OUT, ERR);
    cr_assert_str_eq(OUT, "maint     off\n");
    cr_assert_eq(run(NULL, "maintenance", "on", "--reason", "--http", http_of(g), NULL), 2);
    cr_assert_eq(run(NULL, "maintenance", "sideways", "--http", http_of(g), NULL), 2);
}

/* Issue 21 item 1: a transfer (and a --wait) must return as soon as the new leader is known. A
 * long poll that compared with the leader the server knew on arrival, not with what the client
 * last saw, missed a leader found in between and slept out the whole timeout. */
Test(client, back_to_back_transfers_each_return_as_soon_as_the_new_leader_is_known)
{
    int l = start3();
    for (int i = 0; i < 12; i++) {
        uint64_t t0 = itest_now_ms();
        int rc = run(NULL, "transfer", "--timeout", "10s", "--http", http_of(l), NULL);
        uint64_t took = itest_now_ms() - t0;
        cr_assert_eq(rc, 0, "transfer %d: %s %s", i, OUT, ERR);
        /* the election timeout is 500 ms: a transfer completes in well under it */
        cr_assert_lt(took, 3000, "transfer %d took %llu ms (the timeout is 10 s): %s", i,
                     (unsigned long long)took, OUT);
        int next = itest_wait_leader(&C, 10000);
        cr_assert_geq(next, 0);
        cr_assert_neq(next, l, "transfer %d did not move leadership", i);
        l = next;
    }
}

/* How many GET /v1/leader requests node i has answered 200 (electd_http_requests_total): a
 * waiter has taken its first look once this grows. */
static uint64_t leader_answers(int i)
{
    static char body[65536];
    if (itest_http(C.nodes[i].http_port, "GET", "/metrics", NULL, body, sizeof(body)) != 200)
        return 0;
    const char *row =
        "electd_http_requests_total{method=\"GET\",route=\"/v1/leader\",code=\"200\"} ";
    const char *at = strstr(body, row);
    return at ? strtoull(at + strlen(row), NULL, 10) : 0;
}

/* Issue 21 item 1: `electd leader --wait` returns as soon as the next leader is known, on every
 * member, change after change. A waiter on a member that first saw the new term with no leader
 * yet re-polled with that term only, and the server, comparing with the leader it knew by then,
 * slept out the whole wait. Each waiter's first look is taken before the change (counted in
 * /metrics), so each must see this change and no other. */
Test(client, leader_wait_returns_promptly_after_each_of_many_changes)
{
    int l = start3();
    for (int i = 0; i < 8; i++) {
        int target = (l + 1 + i % 2) % 3;
        uint64_t seen[3];
        child_t waiters[3];
        for (int w = 0; w < 3; w++) {
            seen[w] = leader_answers(w);
            const char *args[] = {"leader", "--wait=10s", "--json", "--http", http_of(w), NULL};
            waiters[w] = spawn(NULL, NULL, args);
        }
        for (int w = 0; w < 3; w++) {
            uint64_t deadline = itest_now_ms() + 5000;
            while (leader_answers(w) <= seen[w] && itest_now_ms() < deadline)
                usleep(5000);
            cr_assert_gt(leader_answers(w), seen[w], "change %d: waiter %d never asked", i, w);
        }
        char path[96], body[512];
        snprintf(path, sizeof(path), "/v1/leader/transfer?to=%s", C.nodes[target].name);
        uint64_t t0 = itest_now_ms();
        int code = itest_http(C.nodes[l].http_port, "POST", path, NULL, body, sizeof(body));
        cr_assert(code == 200 || code == 202, "change %d: transfer answered %d %s", i, code, body);
        for (int w = 0; w < 3; w++) {
            int rc = finish(waiters[w], OUT, ERR);
            uint64_t took = itest_now_ms() - t0;
            cr_assert_eq(rc, 0, "change %d, waiter on %s: %s %s", i, C.nodes[w].name, OUT, ERR);
            /* the election timeout is 500 ms and the wait 10 s */
            cr_assert_lt(took, 3000, "change %d, waiter on %s: returned %llu ms after the transfer",
                         i, C.nodes[w].name, (unsigned long long)took);
            cJSON *o = cJSON_Parse(OUT);
            const cJSON *name = cJSON_GetObjectItem(o, "name");
            cr_assert(cJSON_IsString(name) && strcmp(name->valuestring, C.nodes[target].name) == 0,
                      "change %d, waiter on %s: %s", i, C.nodes[w].name, OUT);
            cJSON_Delete(o);
        }
        cr_assert_eq(itest_wait_leader(&C, 10000), target, "change %d", i);
        l = target;
    }
}

Test(client, leader_wait_returns_once_a_leader_is_elected)
{
    init3();
    itest_node_start(&C, 0);
    char body[256];
    uint64_t deadline = itest_now_ms() + 10000;
    while (itest_http(C.nodes[0].http_port, "GET", "/healthz", NULL, body, sizeof(body)) != 200 &&
           itest_now_ms() < deadline)
        usleep(20000);
    /* One node alone has no quorum: no leader. */
    cr_assert_eq(run(NULL, "leader", "--http", http_of(0), NULL), 1, "%s %s", OUT, ERR);
    cr_assert(strstr(OUT, "no leader known") != NULL, "%s", OUT);
    cr_assert_eq(run(NULL, "leader", "--wait=300ms", "--http", http_of(0), NULL), 1, "%s", OUT);
    cr_assert(strstr(ERR, "no change of leadership") != NULL, "%s", ERR);

    const char *args[] = {"leader", "--wait=15s", "--json", "--http", http_of(0), NULL};
    child_t waiter = spawn(NULL, NULL, args);
    itest_node_start(&C, 1);
    itest_node_start(&C, 2);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    cr_assert_eq(finish(waiter, OUT, ERR), 0, "%s %s", OUT, ERR);
    cJSON *o = cJSON_Parse(OUT);
    cr_assert_not_null(o, "%s", OUT);
    const cJSON *name = cJSON_GetObjectItem(o, "name");
    cr_assert(cJSON_IsString(name), "%s", OUT);
    cJSON_Delete(o);
}

Test(client, members_add_and_remove_through_a_follower)
{
    int l = start3();
    int f = (l + 1) % 3;
    /* A learner that never shows up does not affect the quorum; it can be removed again. */
    cr_assert_eq(run(NULL, "members", "add", "spare", "127.0.0.1:9", "--http", http_of(f), NULL), 0,
                 "%s %s", OUT, ERR);
    cr_assert(strstr(OUT, "added spare as a learner") != NULL, "%s", OUT);
    cr_assert_eq(run(NULL, "members", "--http", http_of(l), NULL), 0, "%s", ERR);
    cr_assert_eq(count_lines_with(OUT, "learner"), 1, "%s", OUT);
    cr_assert_eq(count_lines_with(OUT, "voter"), 3, "%s", OUT);
    cr_assert_eq(run(NULL, "members", "add", "spare", "127.0.0.1:9", "--http", http_of(l), NULL), 1,
                 "%s %s", OUT, ERR);
    cr_assert_eq(run(NULL, "members", "remove", "spare", "--http", http_of(f), NULL), 0, "%s %s",
                 OUT, ERR);
    cr_assert_eq(run(NULL, "members", "list", "--http", http_of(l), NULL), 0, "%s", ERR);
    cr_assert_eq(count_lines_with(OUT, "learner"), 0, "%s", OUT);
    cr_assert_eq(run(NULL, "members", "remove", "spare", "--http", http_of(l), NULL), 1, "%s %s",
                 OUT, ERR);
}

/* ---- errors and canned servers --------------------------------------------------------------- */

/* A socket bound to loopback (v6: ::1) port *port (0: any), listening with that backlog;
 * returns the fd and the port. */
static int listen_loopback_at(bool v6, int *port, int backlog)
{
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons((uint16_t)*port);
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons((uint16_t)*port);
        len = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        close(fd);
        return -1;
    }
    *port =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* A socket bound to loopback (v6: ::1) port 0, listening; returns the fd and the port. */
static int listen_loopback(bool v6, int *port)
{
    *port = 0;
    return listen_loopback_at(v6, port, 8);
}

/* Serves one connection: reads the request head, answers `status` with `body` (or, when
 * pad_bytes > 0, that many bytes with no Content-Length), closes. */
typedef struct canned {
    int fd;
    const char *status; /* "503 Service Unavailable" */
    const char *raw;    /* when set, sent as is instead of a reply */
    const char *body;
    size_t pad_bytes;
    char request[4096];
} canned_t;

static void *canned_serve(void *arg)
{
    canned_t *cs = arg;
    struct pollfd p = {.fd = cs->fd, .events = POLLIN};
    if (poll(&p, 1, RUN_LIMIT_MS) <= 0)
        return NULL;
    int c = accept(cs->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    size_t n = 0;
    while (n < sizeof(cs->request) - 1 && strstr(cs->request, "\r\n\r\n") == NULL) {
        struct pollfd q = {.fd = c, .events = POLLIN};
        if (poll(&q, 1, 5000) <= 0)
            break;
        ssize_t r = read(c, cs->request + n, sizeof(cs->request) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        cs->request[n] = '\0';
    }
    char head[2048];
    if (cs->raw != NULL)
        snprintf(head, sizeof(head), "%s", cs->raw);
    else if (cs->pad_bytes > 0)
        snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: application/json\r\n\r\n",
                 cs->status);
    else
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                 cs->status, strlen(cs->body), cs->body);
    (void)!write(c, head, strlen(head));
    static char pad[65536];
    memset(pad, 'x', sizeof(pad));
    for (size_t sent = 0; sent < cs->pad_bytes;) {
        size_t k = cs->pad_bytes - sent < sizeof(pad) ? cs->pad_bytes - sent : sizeof(pad);
        ssize_t w = send(c, pad, k, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        sent += (size_t)w;
    }
    close(c);
    return NULL;
}

Test(client, errors_and_bad_usage_exit_2)
{
    /* Connection refused: a port that was just free. */
    int port;
    int fd = listen_loopback(false, &port);
    cr_assert_geq(fd, 0);
    close(fd);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    cr_assert_eq(run(NULL, "status", "--http", addr, NULL), 2, "%s", OUT);
    cr_assert(strstr(ERR, "refused") != NULL, "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "put", "k", "v", "--http", addr, NULL), 2);

    /* A server that accepts but never answers: a timeout, 2. */
    fd = listen_loopback(false, &port);
    cr_assert_geq(fd, 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    uint64_t t0 = itest_now_ms();
    cr_assert_eq(run(NULL, "leader", "--timeout", "300ms", "--http", addr, NULL), 2, "%s", OUT);
    cr_assert(strstr(ERR, "timed out") != NULL, "%s", ERR);
    cr_assert_lt(itest_now_ms() - t0, RUN_LIMIT_MS);
    close(fd);

    /* Bad usage: 2 and a usage line. */
    const char *bad[][6] = {
        {"kv", "put", "onlykey", NULL},
        {"kv", "frob", NULL},
        {"status", "--bogus", NULL},
        {"kv", "get", "k", "--fence", "3", NULL},
        {"kv", "put", "k", "v", "--fence", "abc"},
        {"leader", "--wait=soon", NULL},
        {"status", "--http", "nocolon", NULL},
        {"status", "--timeout", "0", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[8] = {0};
        for (size_t k = 0; k < 6 && bad[i][k] != NULL; k++)
            args[k] = bad[i][k];
        cr_assert_eq(finish(spawn(NULL, NULL, args), OUT, ERR), 2, "case %zu: %s", i, ERR);
        cr_assert(strstr(ERR, "usage: electd") != NULL, "case %zu: %s", i, ERR);
    }
    /* Help is not an error. */
    cr_assert_eq(run(NULL, "help", NULL), 0);
    cr_assert(strstr(OUT, "electd kv put KEY") != NULL, "%s", OUT);
    cr_assert_eq(run(NULL, "kv", "get", "--help", NULL), 0);
    cr_assert(strstr(OUT, "usage: electd kv get KEY") != NULL, "%s", OUT);
    cr_assert(strstr(OUT, "--fence") == NULL, "kv get does not take --fence: %s", OUT);
}

Test(client, replies_from_canned_servers)
{
    pthread_t th;
    canned_t cs = {0};
    char addr[64];
    int port;

    /* 5xx: 2, with the server's code on stderr. */
    cs.fd = listen_loopback(false, &port);
    cr_assert_geq(cs.fd, 0);
    cs.status = "503 Service Unavailable";
    cs.body = "{\"error\":{\"code\":\"no_quorum\",\"message\":\"no quorum confirmed\"}}";
    pthread_create(&th, NULL, canned_serve, &cs);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    cr_assert_eq(run(NULL, "kv", "put", "k", "v", "--token", "s3cret", "--http", addr, NULL), 2);
    pthread_join(th, NULL);
    cr_assert(strstr(ERR, "no_quorum") != NULL, "%s", ERR);
    cr_assert(strstr(cs.request, "PUT /v1/kv/k HTTP/1.1\r\n") == cs.request, "%s", cs.request);
    cr_assert(strstr(cs.request, "Authorization: Bearer s3cret\r\n") != NULL, "%s", cs.request);
    cr_assert(strstr(cs.request, "Content-Length: 1\r\n") != NULL, "%s", cs.request);
    close(cs.fd);

    /* A reply over the size limit: 2, not a crash or a hang. */
    memset(&cs, 0, sizeof(cs));
    cs.fd = listen_loopback(false, &port);
    cs.status = "200 OK";
    cs.pad_bytes = 5u << 20;
    pthread_create(&th, NULL, canned_serve, &cs);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    cr_assert_eq(run(NULL, "status", "--http", addr, NULL), 2);
    pthread_join(th, NULL);
    cr_assert(strstr(ERR, "too large") != NULL, "%s", ERR);
    close(cs.fd);

    /* Not HTTP at all: 2. */
    memset(&cs, 0, sizeof(cs));
    cs.fd = listen_loopback(false, &port);
    cs.raw = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    pthread_create(&th, NULL, canned_serve, &cs);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    cr_assert_eq(run(NULL, "members", "--http", addr, NULL), 2);
    pthread_join(th, NULL);
    cr_assert(strstr(ERR, "malformed") != NULL, "%s", ERR);
    close(cs.fd);

    /* IPv6 literal addresses, brackets in the Host header. */
    memset(&cs, 0, sizeof(cs));
    cs.fd = listen_loopback(true, &port);
    if (cs.fd < 0) {
        cr_log_warn("no IPv6 loopback here; skipping the [::1] case");
        return;
    }
    cs.status = "200 OK";
    cs.body = "{\"id\":\"1\",\"name\":\"zed\",\"peer_addr\":\"[::1]:1\",\"http\":\"[::1]:2\","
              "\"term\":7}";
    pthread_create(&th, NULL, canned_serve, &cs);
    snprintf(addr, sizeof(addr), "[::1]:%d", port);
    cr_assert_eq(run(NULL, "leader", "--http", addr, NULL), 0, "%s", ERR);
    pthread_join(th, NULL);
    cr_assert_str_eq(OUT, "zed (http [::1]:2) term 7\n");
    char host[64];
    snprintf(host, sizeof(host), "Host: [::1]:%d\r\n", port);
    cr_assert(strstr(cs.request, host) != NULL, "%s", cs.request);
    close(cs.fd);
}

Test(client, kv_follows_store_failed_to_the_leader_it_names)
{
    pthread_t th_follower, th_leader;
    canned_t follower = {0}, leader = {0};
    char addr[64], body[256];
    int fport, lport;

    /* The member asked cannot use its store but names the leader: the client asks there. */
    leader.fd = listen_loopback(false, &lport);
    follower.fd = listen_loopback(false, &fport);
    cr_assert(leader.fd >= 0 && follower.fd >= 0);
    leader.status = "200 OK";
    leader.body = "{\"revision\":42}";
    follower.status = "503 Service Unavailable";
    snprintf(body, sizeof(body),
             "{\"error\":{\"code\":\"store_failed\",\"message\":\"disk full\","
             "\"leader\":{\"id\":\"2\",\"name\":\"b\",\"peer_addr\":\"127.0.0.1:1\","
             "\"http\":\"127.0.0.1:%d\"}}}",
             lport);
    follower.body = body;
    pthread_create(&th_leader, NULL, canned_serve, &leader);
    pthread_create(&th_follower, NULL, canned_serve, &follower);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fport);
    int rc = run(NULL, "kv", "put", "k", "v", "--timeout", "5s", "--http", addr, NULL);
    if (rc != 0)
        pthread_cancel(th_leader); /* the client may never have come */
    pthread_join(th_follower, NULL);
    pthread_join(th_leader, NULL);
    cr_assert_eq(rc, 0, "%s %s", OUT, ERR);
    cr_assert_str_eq(OUT, "OK revision 42\n");
    cr_assert(strstr(leader.request, "PUT /v1/kv/k HTTP/1.1\r\n") == leader.request, "%s",
              leader.request);
    close(leader.fd);
    close(follower.fd);

    /* Without a leader named there is nowhere to go: the error, 2. */
    memset(&follower, 0, sizeof(follower));
    follower.fd = listen_loopback(false, &fport);
    follower.status = "503 Service Unavailable";
    follower.body = "{\"error\":{\"code\":\"store_failed\",\"message\":\"disk full\"}}";
    pthread_create(&th_follower, NULL, canned_serve, &follower);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fport);
    cr_assert_eq(run(NULL, "kv", "get", "k", "--http", addr, NULL), 2, "%s", OUT);
    pthread_join(th_follower, NULL);
    cr_assert(strstr(ERR, "store_failed") != NULL, "%s", ERR);
    close(follower.fd);
}

/* A name whose first address never answers (a listener on ::1 whose accept queue is full: the
 * kernel drops the SYNs) and whose second one does: the first may take a bounded share of
 * --timeout, not all of it. */
Test(client, a_silent_first_address_leaves_time_for_the_next)
{
    int port = 0;
    canned_t cs = {0};
    cs.fd = listen_loopback(false, &port);
    cr_assert_geq(cs.fd, 0);
    int silent = listen_loopback_at(true, &port, 0);
    if (silent < 0) {
        close(cs.fd);
        cr_skip_test("no IPv6 loopback here (or its port %d is taken)", port);
    }
    int filler = socket(AF_INET6, SOCK_STREAM, 0); /* fills the accept queue of backlog 0 */
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    sa.sin6_addr = in6addr_loopback;
    cr_assert_eq(connect(filler, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    private_hosts("electd-dual-stack"); /* ::1 first, then 127.0.0.1 */

    pthread_t th;
    cs.status = "200 OK";
    cs.body = "{\"id\":\"1\",\"name\":\"zed\",\"http\":\"127.0.0.1:2\",\"term\":3}";
    pthread_create(&th, NULL, canned_serve, &cs);
    char addr[64];
    snprintf(addr, sizeof(addr), "electd-dual-stack:%d", port);
    uint64_t t0 = itest_now_ms();
    int rc = run(NULL, "leader", "--timeout", "6s", "--http", addr, NULL);
    uint64_t took = itest_now_ms() - t0;
    if (rc != 0)
        pthread_cancel(th); /* the client may never have come */
    pthread_join(th, NULL);
    cr_assert_eq(rc, 0, "%s %s", OUT, ERR);
    cr_assert_str_eq(OUT, "zed (http 127.0.0.1:2) term 3\n");
    cr_assert_lt(took, 4000, "took %llu ms", (unsigned long long)took);
    close(filler);
    close(silent);
    close(cs.fd);
}

/* ---- named elections ------------------------------------------------------------------------- */

Test(client, elections_list_and_transfer_against_a_real_cluster)
{
    int l = start3();
    int f = (l + 1) % 3;
    /* None yet (the daemon runs no named elections here): the table's head, exit 0. */
    cr_assert_eq(run(NULL, "elections", "--http", http_of(f), NULL), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "NAME  HOLDER  TOKEN  STATE  SINCE  LOCAL\n");
    cr_assert_eq(run(NULL, "elections", "list", "--json", "--http", http_of(f), NULL), 0, "%s",
                 ERR);
    cr_assert_str_eq(OUT, "{\"elections\":[],\"total\":0,\"more\":false}\n");
    /* Not found: 1; a bad name or member: the server's code. */
    cr_assert_eq(run(NULL, "elections", "transfer", "nosuch", "--http", http_of(f), NULL), 1, "%s",
                 OUT);
    cr_assert(strstr(ERR, "not_found") != NULL, "%s", ERR);
    cr_assert_eq(run(NULL, "elections", "transfer", "a/b", "--http", http_of(f), NULL), 2, "%s",
                 OUT);
    cr_assert(strstr(ERR, "invalid_election") != NULL, "%s", ERR);
    cr_assert_eq(run(NULL, "elections", "transfer", "e1", "--to", "zz", "--http", http_of(f), NULL),
                 1);
    cr_assert(strstr(ERR, "unknown_member") != NULL, "%s", ERR);
    /* A write fenced by an election nobody holds is fenced (through a follower: one redirect). */
    char token[24];
    snprintf(token, sizeof(token), "%llu", (unsigned long long)fencing_token(l));
    cr_assert_eq(run(NULL, "kv", "put", "k", "v", "--fence", token, "--election", "e1", "--http",
                     http_of(f), NULL),
                 1, "%s", OUT);
    cr_assert(strstr(ERR, "fenced") != NULL, "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "put", "k", "v", "--fence", token, "--http", http_of(f), NULL), 0,
                 "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "del", "k", "--election", "e1", NULL), 2);
    cr_assert(strstr(ERR, "usage: electd kv del") != NULL, "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "del", "k", "--fence", "1", "--election", "-x", NULL), 2);
    cr_assert_eq(run(NULL, "elections", "list", "extra", NULL), 2);
}

/* Serves cs[0], then cs[1] on cs[0].fd: two requests of one command. */
static void *canned_serve_two(void *arg)
{
    canned_t *cs = arg;
    cs[1].fd = cs[0].fd;
    canned_serve(&cs[0]);
    canned_serve(&cs[1]);
    return NULL;
}

Test(client, elections_table_follows_the_pages_and_transfer_prints_the_handover)
{
    pthread_t th;
    canned_t cs[2];
    char addr[64];
    int port;
    memset(cs, 0, sizeof(cs));
    cs[0].fd = listen_loopback(false, &port);
    cr_assert_geq(cs[0].fd, 0);
    cs[0].status = cs[1].status = "200 OK";
    cs[0].body = "{\"elections\":[{\"name\":\"bin-1\",\"holder\":\"a\",\"fencing_token\":7,"
                 "\"state\":\"held\",\"since_ms\":192000,\"local\":{\"declared\":true,"
                 "\"state\":\"primary\",\"starts\":1,\"restarts\":0}}],\"total\":2,\"more\":true}";
    cs[1].body = "{\"elections\":[{\"name\":\"bin-2\",\"holder\":null,\"fencing_token\":3,"
                 "\"state\":\"handover\",\"since_ms\":null,\"handover_to\":\"c\",\"local\":{"
                 "\"declared\":false,\"state\":\"standby\",\"starts\":0,\"restarts\":0}}],"
                 "\"total\":2,\"more\":false}";
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    pthread_create(&th, NULL, canned_serve_two, cs);
    cr_assert_eq(run(NULL, "elections", "--http", addr, NULL), 0, "%s", ERR);
    pthread_join(th, NULL);
    cr_assert_str_eq(OUT, "NAME   HOLDER  TOKEN  STATE          SINCE  LOCAL\n"
                          "bin-1  a       7      held           3m12s  primary\n"
                          "bin-2  -       3      handover to c  -      -\n");
    cr_assert(strstr(cs[0].request, "GET /v1/elections HTTP/1.1\r\n") == cs[0].request, "%s",
              cs[0].request);
    cr_assert(strstr(cs[1].request, "GET /v1/elections?after=bin-1 HTTP/1.1\r\n") == cs[1].request,
              "%s", cs[1].request);
    /* --json: the pages merged. */
    memset(cs[0].request, 0, sizeof(cs[0].request));
    memset(cs[1].request, 0, sizeof(cs[1].request));
    pthread_create(&th, NULL, canned_serve_two, cs);
    cr_assert_eq(run(NULL, "elections", "--json", "--http", addr, NULL), 0, "%s", ERR);
    pthread_join(th, NULL);
    cJSON *o = cJSON_Parse(OUT);
    cr_assert_not_null(o, "%s", OUT);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "elections")), 2, "%s", OUT);
    cr_assert_eq(cJSON_GetObjectItem(o, "total")->valuedouble, 2);
    cJSON_Delete(o);
    close(cs[0].fd);

    /* transfer: the request, the answer printed; refusals exit 1, a 503 exits 2. */
    static const struct {
        const char *status, *body, *out, *err;
        int rc;
    } cases[] = {
        {"202 Accepted",
         "{\"name\":\"bin-1\",\"holder\":\"a\",\"fencing_token\":7,\"state\":\"handover\","
         "\"since_ms\":5,\"handover_to\":\"b\",\"local\":{\"declared\":false,\"state\":"
         "\"standby\",\"starts\":0,\"restarts\":0}}",
         "handover of bin-1 requested: held by a (token 7), moving to b\n", "", 0},
        {"409 Conflict",
         "{\"error\":{\"code\":\"transfer_in_progress\",\"message\":\"a handover is under way\"}}",
         "", "transfer_in_progress", 1},
        {"503 Service Unavailable",
         "{\"error\":{\"code\":\"no_leader\",\"message\":\"no leader is known\"}}", "", "no_leader",
         2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        canned_t one = {.status = cases[i].status, .body = cases[i].body};
        one.fd = listen_loopback(false, &port);
        cr_assert_geq(one.fd, 0);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        pthread_create(&th, NULL, canned_serve, &one);
        int rc = run(NULL, "elections", "transfer", "bin-1", "--to", "b", "--token", "op", "--http",
                     addr, NULL);
        pthread_join(th, NULL);
        close(one.fd);
        cr_assert_eq(rc, cases[i].rc, "case %zu: %s %s", i, OUT, ERR);
        cr_assert_str_eq(OUT, cases[i].out, "case %zu", i);
        cr_assert(strstr(ERR, cases[i].err) != NULL, "case %zu: %s", i, ERR);
        cr_assert(strstr(one.request, "POST /v1/elections/bin-1/transfer?to=b HTTP/1.1\r\n") ==
                      one.request,
                  "%s", one.request);
        cr_assert(strstr(one.request, "Authorization: Bearer op\r\n") != NULL, "%s", one.request);
    }
}

/* Reads the child's stdout until it holds `lines` lines or 10 s passed; NUL-terminated. */
static size_t read_lines(int fd, char *out, size_t cap, int lines)
{
    size_t n = 0;
    uint64_t deadline = itest_now_ms() + 10000;
    while (count_lines_with(out, "") < lines && itest_now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        out[n] = '\0';
    }
    return n;
}

static uint64_t put_revision(int port, const char *method, const char *path, const char *value)
{
    char body[512];
    cr_assert_eq(itest_http(port, method, path, value, body, sizeof(body)), 200, "%s", body);
    const char *r = strstr(body, "\"revision\":");
    cr_assert_not_null(r, "%s", body);
    return strtoull(r + strlen("\"revision\":"), NULL, 10);
}

Test(client, kv_watch_prints_each_change_of_a_prefix_in_order_on_a_follower)
{
    int l = start3();
    int f = (l + 1) % 3, port = C.nodes[l].http_port;
    uint64_t r1 = put_revision(port, "PUT", "/v1/kv/w/a", "1");
    char from[32];
    snprintf(from, sizeof(from), "%" PRIu64, r1 - 1);
    const char *args[] = {"kv", "watch",  "--prefix", "w/", "--from",
                          from, "--http", http_of(f), NULL};
    child_t ch = spawn(NULL, NULL, args);
    uint64_t r2 = put_revision(port, "PUT", "/v1/kv/w/b", "two words");
    put_revision(port, "PUT", "/v1/kv/x/c", "not watched");
    uint64_t r3 = put_revision(port, "DELETE", "/v1/kv/w/a", NULL);
    static char out[4096];
    out[0] = '\0';
    read_lines(ch.out, out, sizeof(out), 3);
    kill(ch.pid, SIGINT);
    int status = 0;
    waitpid(ch.pid, &status, 0);
    close(ch.out);
    close(ch.err);
    char want[256];
    snprintf(want, sizeof(want),
             "%" PRIu64 "\tput\tw/a\t1\n%" PRIu64 "\tput\tw/b\ttwo words\n%" PRIu64
             "\tdelete\tw/a\n",
             r1, r2, r3);
    cr_assert_str_eq(out, want);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "status %d", status);

    /* One KEY, --json, and bad usage. */
    cr_assert_eq(run(NULL, "kv", "watch", "w/a", "--prefix", "w/", NULL), 2);
    cr_assert(strstr(ERR, "give one KEY or --prefix PREFIX") != NULL, "%s", ERR);
    cr_assert_eq(run(NULL, "kv", "watch", "--from", "x", "w/a", NULL), 2);
}
