/* test_api.c — the watch and observability endpoints on a real cluster: /v1/primary on
 * exactly one node, the long poll and the event stream waking on a leader change, and
 * /metrics as valid Prometheus text exposition. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"

static itest_cluster_t C;

static void fini(void)
{
    itest_cluster_destroy(&C);
}

TestSuite(api, .fini = fini, .timeout = 120);

static int start3(void)
{
    itest_cluster_init(&C, 3, 3);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    return l;
}

Test(api, primary_answers_200_on_exactly_one_node)
{
    int l = start3();
    uint64_t deadline = itest_now_ms() + 5000;
    int ok = 0, who = -1;
    while (itest_now_ms() < deadline) {
        ok = 0;
        for (int i = 0; i < 3; i++)
            if (itest_http(C.nodes[i].http_port, "GET", "/v1/primary", NULL, NULL, 0) == 200) {
                ok++;
                who = i;
            }
        if (ok == 1)
            break;
        usleep(20000);
    }
    cr_assert_eq(ok, 1, "%d nodes claim to be primary", ok);
    cr_assert_eq(who, l);
}

struct poll_arg {
    int port;
    char path[128];
    int status;
    char body[4096];
    uint64_t done_ms;
};

static void *do_poll(void *p)
{
    struct poll_arg *a = p;
    a->status = itest_http(a->port, "GET", a->path, NULL, a->body, sizeof(a->body));
    a->done_ms = itest_now_ms();
    return NULL;
}

Test(api, long_poll_wakes_on_a_leader_change)
{
    int l = start3();
    int f = (l + 1) % 3;
    itest_status_t st;
    cr_assert(itest_status(&C, f, &st));
    struct poll_arg a = {.port = C.nodes[f].http_port};
    snprintf(a.path, sizeof(a.path), "/v1/leader?wait=4s&term=%llu", (unsigned long long)st.term);
    pthread_t th;
    pthread_create(&th, NULL, do_poll, &a);
    usleep(200000);
    cr_assert_eq(a.status, 0, "the long poll returned before anything changed: %s", a.body);
    uint64_t t0 = itest_now_ms();
    itest_node_signal(&C, l, SIGKILL);
    pthread_join(th, NULL);
    cr_assert_eq(a.status, 200, "%s", a.body);
    cr_assert(strstr(a.body, "\"changed\":true") != NULL, "%s", a.body);
    cr_assert_lt(a.done_ms - t0, 3000, "the long poll woke %llu ms after the kill",
                 (unsigned long long)(a.done_ms - t0));
    /* An already different term answers at once. */
    char body[4096];
    cr_assert_eq(itest_http(C.nodes[f].http_port, "GET", "/v1/leader?wait=4s&term=1", NULL, body,
                            sizeof(body)),
                 200);
    cr_assert_eq(
        itest_http(C.nodes[f].http_port, "GET", "/v1/leader?wait=abc", NULL, body, sizeof(body)),
        400);
}

Test(api, event_stream_reports_the_state_then_the_leader_change)
{
    int l = start3();
    int f = (l + 1) % 3;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)C.nodes[f].http_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *req = "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    static char got[1 << 16];
    size_t len = 0;
    bool killed = false;
    uint64_t deadline = itest_now_ms() + 8000;
    while (itest_now_ms() < deadline && len < sizeof(got) - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            ssize_t n = read(fd, got + len, sizeof(got) - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            got[len] = '\0';
        }
        if (!killed && strstr(got, "event: state") != NULL) {
            itest_node_signal(&C, l, SIGKILL);
            killed = true;
        }
        if (killed && strstr(got, "event: leader") != NULL)
            break;
    }
    close(fd);
    cr_assert(strstr(got, "text/event-stream") != NULL, "%s", got);
    cr_assert(strstr(got, "event: state") != NULL, "%s", got);
    cr_assert(strstr(got, "event: leader") != NULL, "no leader event after the kill:\n%s", got);
}

/* A small validator of the text exposition format: every sample belongs to a family declared
 * by # TYPE, names and labels are well formed, values parse, histogram buckets are
 * cumulative and end with +Inf equal to _count. Returns NULL or what is wrong. */
static const char *check_exposition(char *text)
{
    static char why[256];
    char families[256][96];
    int n_fam = 0;
    double last_bucket = -1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[96], type[32];
            if (sscanf(line + 7, "%95s %31s", name, type) != 2)
                return "bad TYPE line";
            if (strcmp(type, "gauge") && strcmp(type, "counter") && strcmp(type, "histogram"))
                return "unknown type";
            if (n_fam < 256)
                snprintf(families[n_fam++], sizeof(families[0]), "%s", name);
            last_bucket = -1;
            continue;
        }
        if (line[0] == '#')
            continue;
        size_t i = 0;
        if (!(isalpha((unsigned char)line[0]) || line[0] == '_'))
            return "sample name does not start with a letter";
        while (isalnum((unsigned char)line[i]) || line[i] == '_' || line[i] == ':')
            i++;
        char name[96];
        snprintf(name, sizeof(name), "%.*s", (int)i, line);
        bool declared = false;
        for (int k = 0; k < n_fam && !declared; k++) {
            size_t fl = strlen(families[k]);
            declared = strncmp(name, families[k], fl) == 0 &&
                       (name[fl] == '\0' || !strcmp(name + fl, "_bucket") ||
                        !strcmp(name + fl, "_sum") || !strcmp(name + fl, "_count"));
        }
        if (!declared) {
            snprintf(why, sizeof(why), "sample %s has no # TYPE", name);
            return why;
        }
        if (line[i] == '{') {
            i++;
            while (line[i] != '}') {
                if (!(isalpha((unsigned char)line[i]) || line[i] == '_'))
                    return "bad label name";
                while (isalnum((unsigned char)line[i]) || line[i] == '_')
                    i++;
                if (line[i] != '=' || line[i + 1] != '"')
                    return "label without =\"";
                i += 2;
                while (line[i] != '"') {
                    if (line[i] == '\0')
                        return "unterminated label value";
                    i += line[i] == '\\' && line[i + 1] ? 2 : 1;
                }
                i++;
                if (line[i] == ',')
                    i++;
                else if (line[i] != '}')
                    return "labels not separated by commas";
            }
            i++;
        }
        if (line[i] != ' ')
            return "no space before the value";
        char *end;
        double v = strtod(line + i + 1, &end);
        if (end == line + i + 1 || *end != '\0') {
            snprintf(why, sizeof(why), "bad value in: %s", line);
            return why;
        }
        if (strstr(name, "_bucket")) {
            if (v < last_bucket)
                return "histogram buckets are not cumulative";
            last_bucket = v;
        }
    }
    return n_fam > 10 ? NULL : "too few metric families";
}

Test(api, metrics_are_valid_prometheus_text)
{
    int l = start3();
    char body[8192];
    cr_assert_eq(itest_http(C.nodes[l].http_port, "PUT", "/v1/kv/m", "v", body, sizeof(body)), 200);
    static char text[1 << 16];
    cr_assert_eq(itest_http(C.nodes[l].http_port, "GET", "/metrics", NULL, text, sizeof(text)),
                 200);
    cr_assert(strstr(text, "electd_role{role=\"leader\"} 1") != NULL, "%s", text);
    cr_assert(strstr(text, "electd_peer_connected{peer=\"") != NULL, "%s", text);
    cr_assert(strstr(text, "electd_http_requests_total{method=\"PUT\",route=\"/v1/kv/{key...}\","
                           "code=\"200\"} 1") != NULL,
              "%s", text);
    const char *why = check_exposition(text);
    cr_assert(why == NULL, "invalid exposition: %s", why);
    /* The validator bites. */
    char bad1[] = "# TYPE x gauge\nx{a=\"b\" 1\n";
    cr_assert(check_exposition(bad1) != NULL);
    char bad2[] = "# TYPE x gauge\ny 1\n";
    cr_assert(check_exposition(bad2) != NULL);
}

/* ---- connection floods ------------------------------------------------------------------- */

static int connect_http(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* 1 once the server closed fd (EOF or reset) within timeout_ms; reads are discarded. */
static bool closed_within(int fd, int timeout_ms)
{
    uint64_t deadline = itest_now_ms() + (uint64_t)timeout_ms;
    char buf[4096];
    while (itest_now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) > 0 && read(fd, buf, sizeof(buf)) <= 0)
            return true;
    }
    return false;
}

static void start1(const char *a, const char *b)
{
    itest_cluster_init(&C, 1, 1);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    if (a != NULL)
        itest_cluster_arg(&C, a);
    if (b != NULL)
        itest_cluster_arg(&C, b);
    itest_cluster_start(&C);
    cr_assert_eq(itest_wait_leader(&C, 15000), 0);
}

/* With --http-max-connections taken by clients that never send a request, the health probes
 * are still answered (the probe reserve), everything else is refused at once, and the idle
 * clients are dropped after --http-header-timeout, after which /v1/status answers again. */
Test(api, probes_answer_while_idle_connections_exhaust_the_limit)
{
    start1("--http-max-connections=6", "--http-header-timeout=700ms");
    int port = C.nodes[0].http_port;
    char body[8192];
    int idle[6];
    for (int i = 0; i < 6; i++)
        idle[i] = connect_http(port);
    usleep(100000); /* accepted before the probes below, in listen-queue order */
    uint64_t start = itest_now_ms();
    cr_assert_eq(itest_http(port, "GET", "/healthz", NULL, body, sizeof(body)), 200, "%s", body);
    cr_assert_eq(itest_http(port, "GET", "/readyz", NULL, body, sizeof(body)), 200, "%s", body);
    int st = itest_http(port, "GET", "/v1/status", NULL, body, sizeof(body));
    cr_assert_eq(st, 503, "%d %s", st, body);
    cr_assert(strstr(body, "too_many_connections") != NULL, "%s", body);
    cr_assert_lt(itest_now_ms() - start, 600, "the probes waited for the header timeout");
    /* The silent clients are dropped by the header timeout, and the API serves again. */
    for (int i = 0; i < 6; i++) {
        cr_assert(closed_within(idle[i], 3000), "idle connection %d was not closed", i);
        close(idle[i]);
    }
    cr_assert_eq(itest_http(port, "GET", "/v1/status", NULL, body, sizeof(body)), 200);

    /* Half a header, and a slowloris trickling a byte every 50 ms: the header timeout is on
     * the whole head, so both are closed after about 700 ms however often bytes arrive. */
    int half = connect_http(port);
    int slow = connect_http(port);
    const char *head = "GET /v1/status HTTP/1.1\r\nHost: x\r\n";
    cr_assert_eq(send(half, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    cr_assert_eq(send(slow, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    start = itest_now_ms();
    bool slow_closed = false;
    for (int i = 0; i < 100 && !slow_closed; i++) { /* 5 s at most */
        (void)send(slow, "X", 1, MSG_NOSIGNAL);
        slow_closed = closed_within(slow, 50);
    }
    cr_assert(slow_closed, "a trickling client kept its connection for 5 s");
    cr_assert_lt(itest_now_ms() - start, 2500);
    cr_assert(closed_within(half, 2000), "half a header kept its connection");
    close(half);
    close(slow);
}

/* ---- the workload's credential ------------------------------------------------------------ */

#define ADMIN_TOKEN "admin-token-of-the-operator"

static void write_script(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL, "%s", path);
    fprintf(f, "#!/bin/sh\n%s\n", text);
    fclose(f);
    cr_assert_eq(chmod(path, 0755), 0);
}

/* The last line of path once it has at least `lines` lines (bounded poll), else "". */
static void wait_line(const char *path, int lines, char *out, size_t cap)
{
    out[0] = '\0';
    for (int t = 0; t < 500; t++) { /* 10 s */
        FILE *f = fopen(path, "r");
        int n = 0;
        char line[256];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            line[strcspn(line, "\n")] = '\0';
            if (++n >= lines) {
                snprintf(out, cap, "%.100s", line);
                break;
            }
        }
        if (f != NULL)
            fclose(f);
        if (n >= lines)
            return;
        usleep(20000);
    }
}

/* Status of one request with "Authorization: Bearer token" (NULL: no header). */
static int as(const char *token, int port, const char *method, const char *path, const char *body,
              char *out, size_t cap)
{
    char hdr[160];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token ? token : "");
    return itest_http_h(port, method, path, token ? hdr : NULL, body, out, cap);
}

static uint64_t status_u64(int port, const char *key)
{
    char body[8192], needle[64];
    cr_assert_eq(itest_http(port, "GET", "/v1/status", NULL, body, sizeof(body)), 200);
    snprintf(needle, sizeof(needle), "\"%s\":", key);
    const char *p = strstr(body, needle);
    cr_assert(p != NULL, "%s", body);
    return strtoull(p + strlen(needle), NULL, 10);
}

/* With --http-token set, the workload (here an on-start hook) gets a token of its own that
 * reads and writes the KV fenced, and nothing more; it never shows in electd's log, even
 * when a hook prints it. */
Test(api, the_workload_token_allows_fenced_kv_writes_and_nothing_else)
{
    itest_cluster_init(&C, 1, 1);
    char hook[300], tokfile[300], arg[320];
    snprintf(hook, sizeof(hook), "%s/start.sh", C.root);
    snprintf(tokfile, sizeof(tokfile), "%s/wt", C.root);
    char script[600];
    snprintf(script, sizeof(script),
             "echo \"hook sees $ELECTD_WORKLOAD_TOKEN\"\necho \"$ELECTD_WORKLOAD_TOKEN\" > %s",
             tokfile);
    write_script(hook, script);
    snprintf(arg, sizeof(arg), "--on-start=%s", hook);
    itest_cluster_arg(&C, "--http-token=" ADMIN_TOKEN);
    itest_cluster_arg(&C, arg);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    itest_cluster_start(&C);
    cr_assert_eq(itest_wait_leader(&C, 15000), 0);
    char wt[128], body[8192], path[96];
    wait_line(tokfile, 1, wt, sizeof(wt));
    cr_assert_eq(strlen(wt), 2 * 16, "ELECTD_WORKLOAD_TOKEN is \"%s\"", wt);
    cr_assert_eq(strspn(wt, "0123456789abcdef"), strlen(wt), "%s", wt);
    int port = C.nodes[0].http_port;
    uint64_t fence = status_u64(port, "fencing_token");
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu", (unsigned long long)fence);
    /* Allowed: fenced writes, reads, status. The hook may still be finishing: poll. */
    int st = 0;
    for (int i = 0; i < 100 && (st = as(wt, port, "PUT", path, "42", body, sizeof(body))) != 200;
         i++)
        usleep(20000);
    cr_assert_eq(st, 200, "fenced PUT with the workload token: %d %s", st, body);
    cr_assert_eq(as(wt, port, "GET", "/v1/kv/pos", NULL, body, sizeof(body)), 200, "%s", body);
    cr_assert(strstr(body, "\"42\"") != NULL, "%s", body);
    cr_assert_eq(as(wt, port, "GET", "/v1/status", NULL, body, sizeof(body)), 200);
    cr_assert_eq(as(wt, port, "GET", "/v1/leader", NULL, body, sizeof(body)), 200);
    /* Refused with 403 and a code that says why. */
    st = as(wt, port, "PUT", "/v1/kv/pos", "43", body, sizeof(body));
    cr_assert_eq(st, 403, "unfenced PUT with the workload token: %d %s", st, body);
    cr_assert(strstr(body, "fence_required") != NULL, "%s", body);
    st = as(wt, port, "DELETE", "/v1/kv/pos", NULL, body, sizeof(body));
    cr_assert_eq(st, 403, "%d %s", st, body);
    cr_assert(strstr(body, "fence_required") != NULL, "%s", body);
    /* It writes what the default election protects, not a named election's. */
    char epath[128];
    snprintf(epath, sizeof(epath), "/v1/kv/pos?fence=%llu&election=e1", (unsigned long long)fence);
    st = as(wt, port, "PUT", epath, "43", body, sizeof(body));
    cr_assert_eq(st, 403, "PUT fenced by a named election with the default workload's token: %d %s",
                 st, body);
    cr_assert(strstr(body, "wrong_election") != NULL, "%s", body);
    st = as(wt, port, "POST", "/v1/leader/transfer", "", body, sizeof(body));
    cr_assert_eq(st, 403, "transfer with the workload token: %d %s", st, body);
    cr_assert(strstr(body, "insufficient_scope") != NULL, "%s", body);
    st = as(wt, port, "POST", "/v1/members", "{\"name\":\"z\",\"peer_addr\":\"127.0.0.1:1\"}", body,
            sizeof(body));
    cr_assert_eq(st, 403, "members add with the workload token: %d %s", st, body);
    cr_assert(strstr(body, "insufficient_scope") != NULL, "%s", body);
    cr_assert_eq(as(wt, port, "DELETE", "/v1/members/a", NULL, body, sizeof(body)), 403);
    /* Neither no token nor a wrong one writes; the operator's token still does anything. */
    cr_assert_eq(as(NULL, port, "PUT", path, "44", body, sizeof(body)), 401);
    cr_assert_eq(
        as("0123456789abcdef0123456789abcdef", port, "PUT", path, "44", body, sizeof(body)), 401);
    cr_assert_eq(as(ADMIN_TOKEN, port, "PUT", "/v1/kv/pos", "45", body, sizeof(body)), 200, "%s",
                 body);
    cr_assert_eq(as(wt, port, "DELETE", path, NULL, body, sizeof(body)), 200, "%s", body);
    /* The hook printed it; the log shows the line, redacted. */
    cr_assert_gt(itest_log_count(&C, 0, "hook sees"), 0, "the hook's output was not logged");
    cr_assert_eq(itest_log_count(&C, 0, wt), 0, "the workload token is in the log");
    cr_assert_eq(itest_log_count(&C, 0, ADMIN_TOKEN), 0);
}

/* Every start of the workload draws a new token; the previous run's is refused from then on,
 * and a stopped workload's token is refused too. Supervise mode; the first run exits when
 * told to, the restart (after electd's backoff) keeps running. */
Test(api, a_previous_runs_workload_token_is_refused_after_a_restart_or_a_stop)
{
    itest_cluster_init(&C, 3, 3);
    char script[300], go[300], body[8192], path[96], cmd[1200];
    snprintf(script, sizeof(script), "%s/worker.sh", C.root);
    snprintf(go, sizeof(go), "%s/go", C.root);
    snprintf(cmd, sizeof(cmd),
             "f=%s/wt.$ELECTD_NODE_ID\n"
             "echo \"$ELECTD_WORKLOAD_TOKEN\" >> $f\n"
             "if [ $(wc -l < $f) -ge 2 ] || [ -e %s ]; then exec sleep 600; fi\n"
             "i=0\n"
             "while [ ! -e %s.$ELECTD_NODE_ID ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); "
             "done\n"
             "exit 1",
             C.root, go, go);
    write_script(script, cmd);
    itest_cluster_arg(&C, "--http-token=" ADMIN_TOKEN);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=200ms");
    itest_cluster_arg(&C, "--exec");
    itest_cluster_arg(&C, "--");
    itest_cluster_arg(&C, script);
    itest_cluster_start(&C);
    int l = itest_wait_leader(&C, 15000);
    cr_assert_geq(l, 0);
    int port = C.nodes[l].http_port;
    char tokfile[320], gofile[320], first[128], second[128];
    snprintf(tokfile, sizeof(tokfile), "%s/wt.%s", C.root, C.nodes[l].name);
    snprintf(gofile, sizeof(gofile), "%s.%s", go, C.nodes[l].name);
    wait_line(tokfile, 1, first, sizeof(first));
    cr_assert_eq(strlen(first), 32, "first run's token \"%s\"", first);
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu",
             (unsigned long long)status_u64(port, "fencing_token"));
    cr_assert_eq(as(first, port, "PUT", path, "1", body, sizeof(body)), 200, "%s", body);
    /* The first run exits; electd restarts it with a fresh token. */
    FILE *f = fopen(gofile, "w");
    cr_assert(f != NULL);
    fclose(f);
    wait_line(tokfile, 2, second, sizeof(second));
    cr_assert_eq(strlen(second), 32, "no restart seen");
    cr_assert_str_neq(first, second);
    int st = 0;
    for (int i = 0; i < 100 && (st = as(second, port, "PUT", path, "2", body, sizeof(body))) != 200;
         i++)
        usleep(20000);
    cr_assert_eq(st, 200, "the restarted run's token: %d %s", st, body);
    st = as(first, port, "PUT", path, "3", body, sizeof(body));
    cr_assert_eq(st, 401, "the previous run's token still writes: %d %s", st, body);
    /* A handover stops the workload here: its token stops working with it. */
    f = fopen(go, "w"); /* the next primary's workload just runs */
    cr_assert(f != NULL);
    fclose(f);
    cr_assert_eq(as(ADMIN_TOKEN, port, "POST", "/v1/leader/transfer", "", body, sizeof(body)), 202,
                 "%s", body);
    st = 0;
    for (int i = 0; i < 200 && (st = as(second, port, "PUT", path, "4", body, sizeof(body))) != 401;
         i++)
        usleep(20000);
    cr_assert_eq(st, 401, "a stopped workload's token still accepted: %d %s", st, body);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(itest_log_count(&C, i, first) + itest_log_count(&C, i, second), 0,
                     "a workload token is in node %s's log", C.nodes[i].name);
}

#ifdef WORKER_BIN
/* The example worker saves its checkpoints with the workload token when --http-token is set
 * (the setup getting-started and kubernetes.md recommend). */
Test(api, the_example_worker_checkpoints_with_its_workload_token)
{
    itest_cluster_init(&C, 1, 1);
    char src[300], sink[300], log[300], cmd[700];
    snprintf(src, sizeof(src), "%s/binlog", C.root);
    snprintf(sink, sizeof(sink), "%s/sink", C.root);
    snprintf(log, sizeof(log), "%s/history", C.root);
    snprintf(cmd, sizeof(cmd), "%s generate %s 100000", WORKER_BIN, src);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    itest_cluster_arg(&C, "--http-token=" ADMIN_TOKEN);
    itest_cluster_arg(&C, "--heartbeat-interval=50ms");
    itest_cluster_arg(&C, "--election-timeout=500ms");
    itest_cluster_arg(&C, "--stop-timeout=400ms");
    const char *exec[] = {"--exec", "--",    WORKER_BIN, "run",     "--source", src,      "--sink",
                          sink,     "--log", log,        "--every", "5",        "--rate", "500"};
    for (size_t i = 0; i < sizeof(exec) / sizeof(exec[0]); i++)
        itest_cluster_arg(&C, exec[i]);
    itest_cluster_start(&C);
    cr_assert_eq(itest_wait_leader(&C, 15000), 0);
    char body[8192];
    int st = 0;
    for (int i = 0; i < 250; i++) { /* 5 s */
        st = itest_http(C.nodes[0].http_port, "GET", "/v1/kv/binlog/position", NULL, body,
                        sizeof(body));
        if (st == 200)
            break;
        usleep(20000);
    }
    cr_assert_eq(st, 200, "no checkpoint saved: %d %s (worker history: %s)", st, body, log);
    cr_assert(strstr(body, "seq=") != NULL, "%s", body);
    cr_assert_eq(itest_log_count(&C, 0, "error {\"error\":{\"code\":\"unauthorized\""), 0);
}
#endif
