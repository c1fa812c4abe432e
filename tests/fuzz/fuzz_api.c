/* fuzz_api.c — fuzz target over electd's whole request path: HTTP parser, router and the real
 * handlers (status, KV, members, transfer, leader long poll, events, metrics, named elections)
 * of a one-node electd running in this process on its own loop and data directory (without the
 * named elections' runtime: the API reads the elections table). Each input is fed to an
 * in-memory connection; the loop then runs a few turns so asynchronous answers (writes through
 * Raft, linearizable reads) complete. The store starts with a key and a value that are not
 * UTF-8, as an older version could store them, and an election held by the node. Properties
 * checked: no crash or sanitizer report, every answer is an HTTP/1.1 response whose JSON body
 * (and every complete server-sent event's data) is one strict JSON document
 * (tests/json_check.h), the node stays leader and healthy. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "../json_check.h"
#include "api.h"
#include "config.h"
#include "fuzz.h"
#include "common.h"
#include "node.h"
#include "workload.h"

static uv_loop_t loop;
static sidecar_config_t cfg;
static sidecar_node_t *node;
static sidecar_workload_t *workload;
static sidecar_api_t *api;
static char dir[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        abort();
    close(fd);
    return ntohs(sa.sin_port);
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (dir[0])
        (void)!system(cmd);
}

static void init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/electd-fuzz-api-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    atexit(cleanup);
    char peers[64], data_dir[96];
    snprintf(peers, sizeof(peers), "--peers=a=127.0.0.1:%d", free_port());
    snprintf(data_dir, sizeof(data_dir), "--data-dir=%s/a", dir);
    char *argv[] = {"electd",
                    "--name=a",
                    peers,
                    data_dir,
                    "--listen-http=127.0.0.1:0",
                    "--election-timeout=100ms",
                    "--heartbeat-interval=20ms",
                    "--stop-timeout=20ms",
                    "--snapshot-entries=500",
                    "--log-level=error",
                    NULL};
    sidecar_config_source_t src = {.argc = 10, .argv = argv};
    char err[512];
    if (sidecar_config_parse(&cfg, &src, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_api: %s\n", err);
        abort();
    }
    sidecar_log_init(SIDECAR_LOG_ERROR, SIDECAR_LOG_TEXT, 2, "fuzz");
    if (uv_loop_init(&loop) != 0 || sidecar_node_open(&node, &loop, &cfg, err, sizeof(err)) != 0 ||
        sidecar_workload_open(&workload, &loop, &cfg, node, err, sizeof(err)) != 0 ||
        sidecar_api_open(&api, &loop, &cfg, node, workload, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_api: %s\n", err);
        abort();
    }
    /* Bounded: a one-node cluster elects itself within a few election timeouts. */
    for (int i = 0; i < 5000; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        sidecar_node_state_t st;
        sidecar_node_state(node, &st);
        if (st.role == RAFT_LEADER && st.epoch == st.term && st.lease_deadline_ns > uv_hrtime())
            return;
        usleep(1000);
    }
    fprintf(stderr, "fuzz_api: the node did not become leader\n");
    abort();
}

/* Proposes buf[0..len) through Raft and runs the loop until it applied (bounded). */
static void propose_applied(const uint8_t *buf, size_t len, const char *what)
{
    uint64_t index = 0;
    if (sidecar_node_propose(node, buf, len, &index) != 0)
        abort();
    for (int i = 0; i < 5000; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (store_applied_index(sidecar_node_store(node)) >= index)
            return;
        usleep(1000);
    }
    fprintf(stderr, "fuzz_api: %s was not applied\n", what);
    abort();
}

/* Assigns election e1 to this node, as the named elections' runtime would (once). */
static void store_election(void)
{
    store_election_t row;
    if (store_election_get(sidecar_node_store(node), "e1", &row) == 0)
        return;
    uint8_t buf[STORE_CMD_ELECTION_MAX];
    size_t len = 0;
    if (store_cmd_encode_election_assign("e1", sidecar_node_id(node), 0, 1, buf, sizeof(buf),
                                         &len) != 0)
        abort();
    propose_applied(buf, len, "the election");
}

/* Stores (unless present) a key and a value that are not UTF-8 through Raft, bypassing the API
 * (which now refuses such keys), as a version that took any bytes left them. */
static void store_legacy_key(void)
{
    static const char key[] = "legacy/\xff\xfe\x80";
    static uint8_t buf[STORE_CMD_MAX];
    store_kv_t kv;
    if (store_kv_get(sidecar_node_store(node), key, strlen(key), &kv) == 0) {
        store_kv_clear(&kv);
        return; /* still there (an input may delete it) */
    }
    store_cond_t cond = {0};
    size_t len = 0;
    if (store_cmd_encode_put(key, strlen(key), "\xc0\x80", 2, &cond, buf, sizeof(buf), &len) != 0)
        abort();
    propose_applied(buf, len, "the legacy key");
}

static void json_fail(const char *what, const char *body, size_t len)
{
    fprintf(stderr, "fuzz_api: %s is not strict JSON: %.*s\n", what, (int)(len > 400 ? 400 : len),
            body);
    abort();
}

/* Each complete "data:" line of a server-sent event stream is one JSON document. */
static void check_events(const char *body, size_t len)
{
    for (const char *p = body, *end = body + len; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            return;
        if ((size_t)(eol - p) > 6 && memcmp(p, "data: ", 6) == 0) {
            cJSON *o = json_check_parse(p + 6, (size_t)(eol - p - 6));
            if (o == NULL)
                json_fail("an event", p, (size_t)(eol - p));
            cJSON_Delete(o);
        }
        p = eol + 1;
    }
}

/* Walks the responses in out: each JSON body must parse strictly. A response to HEAD has no
 * body although it may announce one, so inputs with HEAD are not walked. */
static void check_replies(const uint8_t *in, size_t in_len, const char *out, size_t len)
{
    if (memmem(in, in_len, "HEAD", 4) != NULL)
        return;
    while (len > 0) {
        http_response_t r;
        http_response_open(&r, 0, 0);
        int rv = http_response_feed(&r, out, len);
        const char *type = r.headers_done ? http_response_header(&r, "Content-Type") : NULL;
        size_t blen = 0;
        const char *body = http_response_body(&r, &blen);
        if (type != NULL && strncmp(type, "text/event-stream", 17) == 0) {
            check_events(body, blen);
        } else if (rv == 1 && type != NULL && strncmp(type, "application/json", 16) == 0) {
            cJSON *o = json_check_parse(body, blen);
            if (o == NULL)
                json_fail("a reply", body, blen);
            cJSON_Delete(o);
        }
        size_t used = rv == 1 ? (size_t)r.used : len;
        http_response_close(&r);
        if (rv != 1 || used == 0)
            return;
        out += used;
        len -= used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (node == NULL)
        init();
    store_legacy_key();
    store_election();
    http_memconn_t *mc = NULL;
    if (http_memconn_open(sidecar_api_server(api), &mc) != 0)
        abort();
    http_memconn_feed(mc, data, size);
    for (int i = 0; i < 8; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    size_t len = 0;
    const char *out = http_memconn_output(mc, &len);
    if (len > 0 && (len < 12 || memcmp(out, "HTTP/1.1 ", 9) != 0)) {
        fprintf(stderr, "fuzz_api: output is not an HTTP/1.1 response\n");
        abort();
    }
    check_replies(data, size, out, len);
    http_memconn_close(mc);
    uv_run(&loop, UV_RUN_NOWAIT);
    sidecar_node_state_t st;
    sidecar_node_state(node, &st);
    if (!st.store_ok) {
        fprintf(stderr, "fuzz_api: a request broke the store\n");
        abort();
    }
    return 0;
}

static const char *const SEEDS[] = {
    "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n",
    "PUT /v1/kv/binlog/pos?fence=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\n12345",
    "PUT /v1/kv/k HTTP/1.1\r\nIf-Match: 3\r\nX-Electd-Fence: 9\r\nContent-Length: 1\r\n\r\nx",
    "PUT /v1/kv/n HTTP/1.1\r\nIf-None-Match: *\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n0\r\n\r\n",
    "GET /v1/kv/binlog/pos HTTP/1.1\r\n\r\nGET /v1/kv/binlog/pos?stale&raw HTTP/1.1\r\n\r\n",
    "DELETE /v1/kv/k HTTP/1.1\r\n\r\nGET /v1/kv?prefix=bin&limit=2&after=a HTTP/1.1\r\n\r\n",
    "PUT /v1/kv/%ff%fe%80 HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"
    "GET /v1/kv?prefix= HTTP/1.1\r\n\r\nGET /v1/kv?prefix=legacy/&after=legacy/%ff "
    "HTTP/1.1\r\n\r\n",
    "GET /v1/kv/legacy/%ff%fe%80 HTTP/1.1\r\n\r\nDELETE /v1/kv/legacy/%ff%fe%80 HTTP/1.1\r\n\r\n"
    "GET /v1/kv?prefix=&limit=1 HTTP/1.1\r\n\r\n",
    "POST /v1/members HTTP/1.1\r\nContent-Length: 43\r\n\r\n"
    "{\"name\":\"zz\",\"peer_addr\":\"127.0.0.1:9\"}  ",
    "DELETE /v1/members/zz HTTP/1.1\r\n\r\nGET /v1/members HTTP/1.1\r\n\r\n",
    "GET /v1/leader?wait=10ms&term=1 HTTP/1.1\r\n\r\nGET /v1/leader HTTP/1.1\r\n\r\n",
    "GET /v1/events HTTP/1.1\r\n\r\n",
    "GET /metrics HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\nGET /readyz HTTP/1.1\r\n\r\n",
    "POST /v1/leader/transfer?to=a HTTP/1.1\r\n\r\nGET /v1/primary HTTP/1.1\r\n\r\n",
    "PUT /v1/kv/pos?fence=1&election=e1 HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"
    "DELETE /v1/kv/pos HTTP/1.1\r\nX-Electd-Fence: 2\r\nX-Electd-Election: e1\r\n\r\n",
    "GET /v1/elections HTTP/1.1\r\n\r\nGET /v1/elections?after=a&limit=2 HTTP/1.1\r\n\r\n"
    "GET /v1/elections/e1 HTTP/1.1\r\n\r\nGET /v1/elections/e1?wait=10ms&token=1 HTTP/1.1\r\n\r\n",
    "POST /v1/elections/e1/transfer?to=a HTTP/1.1\r\n\r\n"
    "GET /v1/primary?election=e1 HTTP/1.1\r\n\r\n",
    "POST /v1/maintenance HTTP/1.1\r\nContent-Length: 35\r\n\r\n"
    "{\"enabled\":true,\"reason\":\"upgrade\"}"
    "GET /v1/maintenance HTTP/1.1\r\n\r\nPOST /v1/leader/transfer HTTP/1.1\r\n\r\n"
    "POST /v1/maintenance HTTP/1.1\r\nContent-Length: 17\r\n\r\n{\"enabled\":false}",
};

size_t fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    if (i >= sizeof(SEEDS) / sizeof(SEEDS[0]))
        return 0;
    size_t n = strlen(SEEDS[i]);
    if (n > cap)
        n = cap;
    memcpy(buf, SEEDS[i], n);
    return n;
}
