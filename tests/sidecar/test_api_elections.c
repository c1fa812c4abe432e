/* test_api_elections.c — the named elections in the HTTP API, in process: one (or two) real
 * electd members (node, store, workload controller, API) on one loop, with election rows made
 * the way the runtime makes them (ELECTION_ASSIGN proposed through the node), and requests
 * through in-memory connections (the real parser, router and handlers). Checks KV writes fenced
 * by an election, the workload credential of a named election, GET /v1/elections (and its long
 * poll), POST /v1/elections/{name}/transfer, GET /v1/primary?election= and the metrics.
 *
 * The runtime (named.h) is replaced here by a fake defined below (it takes the place of
 * sidecar/named/ at link time): it says what the test sets, so that the API's use of it —
 * preferred to the table, its transfer errors, its workload tokens — is checked on its own. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "loop_poll.h"
#include "../json_check.h"
#include "api.h"
#include "common.h"
#include "config.h"
#include "named.h"
#include "node.h"
#include "workload.h"

#define MAX_NODES 2
#define OP_TOKEN  "operator-token"
#define WL_TOKEN  "workload-token-of-e1"

/* ---- the fake runtime ------------------------------------------------------------------------ */

struct sidecar_named {
    int unused;
};

static sidecar_named_t fake;
static struct {
    sidecar_named_status_t items[4]; /* what it knows, by name */
    size_t n;
    int transfer_rv;
    char transfer_name[STORE_ELECTION_NAME_MAX + 1];
    uint64_t transfer_to;
    int transfers;
} F;

const char *sidecar_named_strerror(int err)
{
    return err == SIDECAR_NAMED_ESTORE ? "the store cannot be read" : "fake error";
}

size_t sidecar_named_list(sidecar_named_t *n, sidecar_named_status_t *out, size_t cap,
                          size_t *total)
{
    cr_assert_eq(n, &fake);
    size_t k = F.n < cap ? F.n : cap;
    memcpy(out, F.items, k * sizeof(*out));
    *total = F.n;
    return k;
}

int sidecar_named_get(sidecar_named_t *n, const char *name, sidecar_named_status_t *out)
{
    cr_assert_eq(n, &fake);
    for (size_t i = 0; i < F.n; i++)
        if (strcmp(F.items[i].name, name) == 0) {
            *out = F.items[i];
            return 0;
        }
    return SIDECAR_NAMED_ENOTFOUND;
}

int sidecar_named_transfer(sidecar_named_t *n, const char *name, uint64_t to)
{
    cr_assert_eq(n, &fake);
    snprintf(F.transfer_name, sizeof(F.transfer_name), "%s", name);
    F.transfer_to = to;
    F.transfers++;
    return F.transfer_rv;
}

bool sidecar_named_token_check(const sidecar_named_t *n, const char *token, size_t len,
                               const char **election)
{
    cr_assert_eq(n, &fake);
    if (len != strlen(WL_TOKEN) || memcmp(token, WL_TOKEN, len) != 0)
        return false;
    *election = "e1";
    return true;
}

static void fake_item(const char *name, uint64_t holder, uint64_t token, const char *state)
{
    sidecar_named_status_t *e = &F.items[F.n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->holder = holder;
    e->token = token;
    e->state = state;
    e->local = SIDECAR_WORKLOAD_STANDBY;
}

/* ---- members on one loop ----------------------------------------------------------------------
 */

static uv_loop_t loop;
static char root[64];
static int n_nodes;
static sidecar_config_t cfg[MAX_NODES];
static sidecar_node_t *nodes[MAX_NODES];
static sidecar_workload_t *workloads[MAX_NODES];
static sidecar_api_t *apis[MAX_NODES];
static int closed;

#define RUN_UNTIL(cond) LOOP_RUN_UNTIL(&loop, cond, 10)

static void config_node(int i, const char *peers)
{
    char name[2] = {(char)('a' + i), 0}, dir[128], http[64];
    snprintf(dir, sizeof(dir), "%s/%s", root, name);
    snprintf(http, sizeof(http), "127.0.0.1:%d", loop_free_port());
    char *const argv[] = {"electd",
                          "--name",
                          name,
                          "--peers",
                          (char *)peers,
                          "--data-dir",
                          dir,
                          "--listen-http",
                          http,
                          "--http-token=" OP_TOKEN,
                          "--forward",
                          "--heartbeat-interval=20ms",
                          "--election-timeout=200ms",
                          "--stop-timeout=20ms",
                          "--log-level=error",
                          NULL};
    sidecar_config_source_t src = {.argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1, .argv = argv};
    char err[512];
    cr_assert_eq(sidecar_config_parse(&cfg[i], &src, err, sizeof(err)), 0, "%s", err);
}

/* The member that leads with its lease and term start confirmed, or -1. */
static int leader(void)
{
    for (int i = 0; i < n_nodes; i++) {
        sidecar_node_state_t st;
        sidecar_node_state(nodes[i], &st);
        if (st.role == RAFT_LEADER && st.epoch == st.term &&
            st.lease_deadline_ns > sidecar_clock_boot_ns())
            return i;
    }
    return -1;
}

/* Starts n members; once one leads, opens the APIs: the fake runtime on member with_fake
 * (-1: none; -2: the follower), NULL on the others. Returns the leader. */
static int start(int n, int with_fake)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    sidecar_log_init(SIDECAR_LOG_ERROR, SIDECAR_LOG_TEXT, 2, "test");
    n_nodes = n;
    closed = 0;
    snprintf(root, sizeof(root), "/tmp/electd-api-el-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    char peers[256];
    size_t off = 0;
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(peers + off, sizeof(peers) - off, "%s%c=127.0.0.1:%d", i ? "," : "",
                                'a' + i, loop_free_port());
    char err[512] = "";
    for (int i = 0; i < n; i++) {
        config_node(i, peers);
        cr_assert_eq(sidecar_node_open(&nodes[i], &loop, &cfg[i], err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(
            sidecar_workload_open(&workloads[i], &loop, &cfg[i], nodes[i], err, sizeof(err)), 0,
            "%s", err);
    }
    RUN_UNTIL(leader() >= 0);
    int l = leader();
    cr_assert_geq(l, 0, "no leader");
    for (int i = 0; i < n; i++) {
        bool fake_here = with_fake == i || (with_fake == -2 && i != l);
        cr_assert_eq(sidecar_api_open(&apis[i], &loop, &cfg[i], nodes[i], workloads[i],
                                      fake_here ? &fake : NULL, err, sizeof(err)),
                     0, "%s", err);
    }
    return l;
}

static void closed_cb(void *ud)
{
    (void)ud;
    closed++;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void stop(void)
{
    for (int i = 0; i < n_nodes; i++)
        sidecar_api_close(apis[i], closed_cb, NULL);
    RUN_UNTIL(closed == n_nodes);
    for (int i = 0; i < n_nodes; i++)
        sidecar_workload_close(workloads[i], closed_cb, NULL);
    RUN_UNTIL(closed == 2 * n_nodes);
    for (int i = 0; i < n_nodes; i++)
        sidecar_node_close(nodes[i], closed_cb, NULL);
    RUN_UNTIL(closed == 3 * n_nodes);
    cr_assert_eq(closed, 3 * n_nodes);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles leaked");
    for (int i = 0; i < n_nodes; i++)
        sidecar_config_free(&cfg[i]);
    nftw(root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- requests ------------------------------------------------------------------------------- */

static char BODY[4u << 20];

/* A request sent to member i's API whose answer is still to come. */
struct pending {
    http_memconn_t *mc;
};

/* Sends a request (with the operator's token unless headers carry an Authorization). */
static struct pending send_request(int i, const char *method, const char *target,
                                   const char *headers, const char *body)
{
    char head[2048];
    const char *auth = headers != NULL && strstr(headers, "Authorization:")
                           ? ""
                           : "Authorization: Bearer " OP_TOKEN "\r\n";
    snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: %zu\r\n\r\n",
             method, target, auth, headers ? headers : "", headers ? "\r\n" : "",
             body ? strlen(body) : 0);
    struct pending p;
    cr_assert_eq(http_memconn_open(sidecar_api_server(apis[i]), &p.mc), 0);
    http_memconn_feed(p.mc, head, strlen(head));
    if (body != NULL)
        http_memconn_feed(p.mc, body, strlen(body));
    return p;
}

static size_t pending_output(struct pending *p)
{
    size_t len = 0;
    http_memconn_output(p->mc, &len);
    return len;
}

/* The answer once it came (bounded), its body into BODY; returns the status. */
static int pending_finish(struct pending *p)
{
    http_response_t r;
    int rv = 0;
    uint64_t deadline = uv_hrtime() + 10000000000ull;
    while (uv_hrtime() < deadline) {
        uv_run(&loop, UV_RUN_NOWAIT);
        http_response_open(&r, 0, sizeof(BODY) - 1);
        size_t len = 0;
        const char *out = http_memconn_output(p->mc, &len);
        rv = http_response_feed(&r, out, len);
        if (rv == 1)
            break;
        http_response_close(&r);
        usleep(300);
    }
    cr_assert_eq(rv, 1, "no complete answer");
    size_t blen = 0;
    const char *b = http_response_body(&r, &blen);
    memcpy(BODY, b, blen);
    BODY[blen] = '\0';
    int status = r.status;
    http_response_close(&r);
    http_memconn_close(p->mc);
    return status;
}

/* One request and its answer: the status, the body in BODY. */
static int request(int i, const char *method, const char *target, const char *headers,
                   const char *body)
{
    struct pending p = send_request(i, method, target, headers, body);
    return pending_finish(&p);
}

static cJSON *body_json(void)
{
    cJSON *o = json_check_parse(BODY, strlen(BODY));
    cr_assert_not_null(o, "not strict JSON: %s", BODY);
    return o;
}

static const char *error_code(void)
{
    static char code[64];
    cJSON *o = body_json();
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "error"), "code");
    snprintf(code, sizeof(code), "%s", cJSON_IsString(c) ? c->valuestring : "");
    cJSON_Delete(o);
    return code;
}

static uint64_t num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    cr_assert(cJSON_IsNumber(v), "%s is not a number", key);
    return (uint64_t)v->valuedouble;
}

/* ---- elections made as the runtime makes them ---------------------------------------------- */

/* Proposes ELECTION_ASSIGN of name to holder on the leader l and waits until it applied;
 * returns the election's new token. */
static uint64_t assign(int l, const char *name, uint64_t holder)
{
    store_election_t row;
    uint64_t expect = 0;
    if (store_election_get(sidecar_node_store(nodes[l]), name, &row) == 0)
        expect = row.token;
    uint8_t buf[STORE_CMD_ELECTION_MAX];
    size_t len = 0;
    uint64_t index = 0;
    cr_assert_eq(store_cmd_encode_election_assign(name, holder, expect, 1700000000000ull, buf,
                                                  sizeof(buf), &len),
                 0);
    cr_assert_eq(sidecar_node_propose(nodes[l], buf, len, &index), 0);
    RUN_UNTIL(store_applied_index(sidecar_node_store(nodes[l])) >= index);
    cr_assert_eq(store_election_get(sidecar_node_store(nodes[l]), name, &row), 0);
    cr_assert_eq(row.holder, holder);
    return row.token;
}

static uint64_t self_id(int i)
{
    return sidecar_node_id(nodes[i]);
}

/* ---- KV writes fenced by an election ------------------------------------------------------- */

TestSuite(api_elections, .timeout = 60);

Test(api_elections, a_write_fenced_by_an_election_needs_its_current_token)
{
    int l = start(1, -1);
    uint64_t t1 = assign(l, "e1", self_id(l));
    char path[128];
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu&election=e1", (unsigned long long)t1);
    cr_assert_eq(request(l, "PUT", path, NULL, "1"), 200, "%s", BODY);

    /* A new tenure (even to the same holder) makes the old token stale, at apply time. */
    uint64_t t2 = assign(l, "e1", self_id(l));
    cr_assert_gt(t2, t1);
    cr_assert_eq(request(l, "PUT", path, NULL, "2"), 409, "%s", BODY);
    cJSON *o = body_json();
    cJSON *err = cJSON_GetObjectItem(o, "error");
    cr_assert_str_eq(cJSON_GetObjectItem(err, "code")->valuestring, "fenced");
    cr_assert_str_eq(cJSON_GetObjectItem(err, "election")->valuestring, "e1");
    cr_assert_eq(num(err, "fencing_token"), t2);
    cJSON_Delete(o);
    cr_assert_eq(request(l, "DELETE", path, NULL, NULL), 409, "%s", BODY);
    cr_assert_eq(request(l, "PUT", "/v1/kv/pos?fence=1&election=e1", "If-Match: 1", "3"), 409);
    cr_assert_str_eq(error_code(), "fenced");

    /* The header forms; the current token writes, with If-Match too. */
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "X-Electd-Fence: %llu\r\nX-Electd-Election: e1",
             (unsigned long long)t2);
    cr_assert_eq(request(l, "PUT", "/v1/kv/pos", hdr, "4"), 200, "%s", BODY);
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu", (unsigned long long)t2);
    snprintf(hdr, sizeof(hdr), "X-Electd-Election: e1\r\nIf-None-Match: *");
    cr_assert_eq(request(l, "PUT", path, hdr, "5"), 409, "%s", BODY);
    cr_assert_str_eq(error_code(), "conflict");

    /* An election nobody holds, or that does not exist, fences every token. */
    uint64_t t3 = assign(l, "e1", 0);
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu&election=e1", (unsigned long long)t3);
    cr_assert_eq(request(l, "PUT", path, NULL, "6"), 409, "%s", BODY);
    cr_assert_eq(request(l, "PUT", "/v1/kv/pos?fence=1&election=nosuch", NULL, "7"), 409);
    cr_assert_str_eq(error_code(), "fenced");
    stop();
}

Test(api_elections, a_fence_without_an_election_keeps_the_default_meaning)
{
    int l = start(1, -1);
    assign(l, "e1", self_id(l));
    sidecar_node_state_t st;
    sidecar_node_state(nodes[l], &st);
    char path[128];
    snprintf(path, sizeof(path), "/v1/kv/k?fence=%llu", (unsigned long long)st.epoch);
    cr_assert_eq(request(l, "PUT", path, NULL, "v"), 200, "%s", BODY);
    snprintf(path, sizeof(path), "/v1/kv/k?fence=%llu", (unsigned long long)st.epoch + 1);
    cr_assert_eq(request(l, "PUT", path, NULL, "v"), 409, "%s", BODY);
    cJSON *o = body_json();
    cr_assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "error"), "election"));
    cJSON_Delete(o);
    stop();
}

Test(api_elections, a_bad_election_or_one_without_a_fence_is_refused)
{
    int l = start(1, -1);
    const char *bad[] = {"/v1/kv/k?fence=1&election=-x",
                         "/v1/kv/k?fence=1&election=", "/v1/kv/k?fence=1&election=a%2Fb",
                         "/v1/kv/k?fence=1&election="
                         "x123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(request(l, "PUT", bad[i], NULL, "v"), 400, "%s: %s", bad[i], BODY);
        cr_assert_str_eq(error_code(), "invalid_election");
    }
    cr_assert_eq(request(l, "PUT", "/v1/kv/k", "X-Electd-Election: e 1", "v"), 400);
    cr_assert_str_eq(error_code(), "invalid_election");
    cr_assert_eq(request(l, "PUT", "/v1/kv/k?election=e1", NULL, "v"), 400, "%s", BODY);
    cr_assert_str_eq(error_code(), "election_without_fence");
    cr_assert_eq(request(l, "DELETE", "/v1/kv/k", "X-Electd-Election: e1", NULL), 400);
    cr_assert_str_eq(error_code(), "election_without_fence");
    stop();
}

/* ---- the workload credential of a named election ------------------------------------------- */

Test(api_elections, a_named_workload_token_writes_only_fenced_by_its_own_election)
{
    int l = start(1, 0);
    fake_item("e1", self_id(l), 0, "held");
    uint64_t t1 = assign(l, "e1", self_id(l));
    uint64_t t2 = assign(l, "e2", self_id(l));
    F.items[0].token = t1;
    const char *wl = "Authorization: Bearer " WL_TOKEN;
    char path[128];
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu&election=e1", (unsigned long long)t1);
    cr_assert_eq(request(l, "PUT", path, wl, "1"), 200, "%s", BODY);
    cr_assert_eq(request(l, "DELETE", path, wl, NULL), 200, "%s", BODY);
    /* Unfenced, fenced by the default election, or by another election: refused. */
    cr_assert_eq(request(l, "PUT", "/v1/kv/pos", wl, "2"), 403, "%s", BODY);
    cr_assert_str_eq(error_code(), "fence_required");
    sidecar_node_state_t st;
    sidecar_node_state(nodes[l], &st);
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu", (unsigned long long)st.epoch);
    cr_assert_eq(request(l, "PUT", path, wl, "3"), 403, "%s", BODY);
    cr_assert_str_eq(error_code(), "wrong_election");
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu&election=e2", (unsigned long long)t2);
    cr_assert_eq(request(l, "PUT", path, wl, "4"), 403, "%s", BODY);
    cr_assert_str_eq(error_code(), "wrong_election");
    /* The operator's token writes fenced by any election. */
    cr_assert_eq(request(l, "PUT", path, NULL, "5"), 200, "%s", BODY);
    /* A stale token of its own election: 409 at apply time. */
    assign(l, "e1", self_id(l));
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu&election=e1", (unsigned long long)t1);
    cr_assert_eq(request(l, "PUT", path, wl, "6"), 409, "%s", BODY);
    cr_assert_str_eq(error_code(), "fenced");
    /* Not a credential for anything else. */
    cr_assert_eq(request(l, "POST", "/v1/elections/e1/transfer", wl, NULL), 403, "%s", BODY);
    cr_assert_eq(request(l, "PUT", "/v1/kv/pos", "Authorization: Bearer nope", "7"), 401);
    stop();
}

/* A named election's holder is often not the leader: its member, which alone can check the
 * workload's token, relays the write (--forward) with its own credential. */
Test(api_elections, a_follower_relays_a_named_workloads_fenced_write_to_the_leader)
{
    int l = start(2, -2);
    int f = 1 - l;
    fake_item("e1", self_id(f), 0, "held");
    uint64_t t1 = assign(l, "e1", self_id(f));
    RUN_UNTIL(store_applied_index(sidecar_node_store(nodes[f])) >=
                  store_applied_index(sidecar_node_store(nodes[l])) &&
              sidecar_node_member_http(nodes[f], self_id(l)) != NULL);
    const char *wl = "Authorization: Bearer " WL_TOKEN;
    char path[128];
    snprintf(path, sizeof(path), "/v1/kv/pos?fence=%llu&election=e1", (unsigned long long)t1);
    cr_assert_eq(request(f, "PUT", path, wl, "1"), 200, "%s", BODY);
    /* Its rules were applied before the relay. */
    cr_assert_eq(request(f, "PUT", "/v1/kv/pos?fence=1", wl, "2"), 403, "%s", BODY);
    cr_assert_str_eq(error_code(), "wrong_election");
    /* The leader itself does not know the token. */
    cr_assert_eq(request(l, "PUT", path, wl, "3"), 401, "%s", BODY);
    stop();
}

/* ---- GET /v1/elections ----------------------------------------------------------------------- */

static cJSON *find(cJSON *arr, const char *name)
{
    cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (strcmp(cJSON_GetObjectItem(e, "name")->valuestring, name) == 0)
            return e;
    }
    return NULL;
}

Test(api_elections, the_list_shows_the_table_without_a_runtime)
{
    int l = start(1, -1);
    cr_assert_eq(request(l, "GET", "/v1/elections", NULL, NULL), 200, "%s", BODY);
    cr_assert_str_eq(BODY, "{\"elections\":[],\"total\":0,\"more\":false}");
    uint64_t tb = assign(l, "bin-1", self_id(l));
    assign(l, "abc", 0);
    cr_assert_eq(request(l, "GET", "/v1/elections", NULL, NULL), 200, "%s", BODY);
    cJSON *o = body_json();
    cr_assert_eq(num(o, "total"), 2);
    cJSON *arr = cJSON_GetObjectItem(o, "elections");
    cr_assert_eq(cJSON_GetArraySize(arr), 2);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "name")->valuestring, "abc");
    cJSON *b = find(arr, "bin-1");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "holder")->valuestring, "a");
    cr_assert_eq(num(b, "fencing_token"), tb);
    cr_assert_str_eq(cJSON_GetObjectItem(b, "state")->valuestring, "held");
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(b, "since_ms")));
    cr_assert_null(cJSON_GetObjectItem(b, "handover_to"));
    cJSON *local = cJSON_GetObjectItem(b, "local");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(local, "declared")));
    cr_assert_str_eq(cJSON_GetObjectItem(local, "state")->valuestring, "standby");
    cr_assert_eq(num(local, "starts"), 0);
    cr_assert_eq(num(local, "restarts"), 0);
    cJSON *a = find(arr, "abc");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(a, "holder")));
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(a, "since_ms")));
    cr_assert_str_eq(cJSON_GetObjectItem(a, "state")->valuestring, "unheld");
    cJSON_Delete(o);

    /* One of them; unknown and malformed names. */
    cr_assert_eq(request(l, "GET", "/v1/elections/bin-1", NULL, NULL), 200, "%s", BODY);
    o = body_json();
    cr_assert_str_eq(cJSON_GetObjectItem(o, "name")->valuestring, "bin-1");
    cr_assert_eq(num(o, "fencing_token"), tb);
    cJSON_Delete(o);
    cr_assert_eq(request(l, "GET", "/v1/elections/nosuch", NULL, NULL), 404);
    cr_assert_str_eq(error_code(), "not_found");
    cr_assert_eq(request(l, "GET", "/v1/elections/_x", NULL, NULL), 400);
    cr_assert_str_eq(error_code(), "invalid_election");
    stop();
}

Test(api_elections, the_runtimes_view_is_preferred_and_merged_with_the_table)
{
    int l = start(1, 0);
    uint64_t t = assign(l, "b", self_id(l));
    assign(l, "c", self_id(l));
    /* The runtime knows b (moving, declared here) and a (declared, never assigned). */
    fake_item("a", 0, 0, "unheld");
    F.items[0].declared_here = true;
    fake_item("b", self_id(l), t, "handover");
    F.items[1].declared_here = true;
    F.items[1].local = SIDECAR_WORKLOAD_STOPPING;
    F.items[1].starts = 3;
    F.items[1].restarts = 2;
    F.items[1].since_unix_ms = 1;
    cr_assert_eq(request(l, "GET", "/v1/elections", NULL, NULL), 200, "%s", BODY);
    cJSON *o = body_json();
    cr_assert_eq(num(o, "total"), 3);
    cJSON *arr = cJSON_GetObjectItem(o, "elections");
    const char *want[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), "name")->valuestring,
                         want[i]);
    cJSON *b = find(arr, "b");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "state")->valuestring, "handover");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(b, "handover_to")), "%s", BODY);
    cJSON *local = cJSON_GetObjectItem(b, "local");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(local, "declared")));
    cr_assert_str_eq(cJSON_GetObjectItem(local, "state")->valuestring, "stopping");
    cr_assert_eq(num(local, "starts"), 3);
    cr_assert_eq(num(local, "restarts"), 2);
    cr_assert(cJSON_IsTrue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(find(arr, "a"), "local"), "declared")));
    cr_assert_str_eq(cJSON_GetObjectItem(find(arr, "c"), "state")->valuestring, "held");
    cJSON_Delete(o);
    /* One at a time: the runtime's, else the table's. */
    cr_assert_eq(request(l, "GET", "/v1/elections/a", NULL, NULL), 200, "%s", BODY);
    cr_assert_eq(request(l, "GET", "/v1/elections/c", NULL, NULL), 200, "%s", BODY);
    cr_assert(strstr(BODY, "\"state\":\"held\"") != NULL, "%s", BODY);
    stop();
}

Test(api_elections, a_thousand_elections_list_in_pages_and_have_metrics)
{
    int l = start(1, -1);
    enum { N = 1000 };
    uint8_t buf[STORE_CMD_ELECTION_MAX];
    uint64_t index = 0;
    for (int i = 0; i < N; i++) {
        char name[16];
        size_t len = 0;
        snprintf(name, sizeof(name), "e%04d", i);
        cr_assert_eq(store_cmd_encode_election_assign(name, i % 2 ? self_id(l) : 12345, 0, 1, buf,
                                                      sizeof(buf), &len),
                     0);
        cr_assert_eq(sidecar_node_propose(nodes[l], buf, len, &index), 0);
    }
    RUN_UNTIL(store_applied_index(sidecar_node_store(nodes[l])) >= index);
    cr_assert_eq(request(l, "GET", "/v1/elections", NULL, NULL), 200);
    cJSON *o = body_json();
    cr_assert_eq(num(o, "total"), N);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "elections")), N);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "more")));
    cJSON_Delete(o);
    cr_assert_eq(request(l, "GET", "/v1/elections?limit=10&after=e0495", NULL, NULL), 200);
    o = body_json();
    cJSON *arr = cJSON_GetObjectItem(o, "elections");
    cr_assert_eq(cJSON_GetArraySize(arr), 10);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "name")->valuestring, "e0496");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "more")));
    cr_assert_eq(num(o, "total"), N);
    cJSON_Delete(o);
    cr_assert_eq(request(l, "GET", "/v1/elections?limit=0", NULL, NULL), 400);
    cr_assert_eq(request(l, "GET", "/v1/elections?limit=1001", NULL, NULL), 400);
    cr_assert_eq(request(l, "GET", "/v1/elections?after=%2F", NULL, NULL), 400);

    cr_assert_eq(request(l, "GET", "/metrics", NULL, NULL), 200);
    cr_assert(strstr(BODY, "\nelectd_elections 1000\n") != NULL);
    cr_assert(strstr(BODY, "\nelectd_elections_held 500\n") != NULL);
    cr_assert(strstr(BODY, "\nelectd_election_is_holder{election=\"e0001\"} 1\n") != NULL);
    cr_assert(strstr(BODY, "\nelectd_election_is_holder{election=\"e0998\"} 0\n") != NULL);
    cr_assert(strstr(BODY, "\nelectd_election_fencing_token{election=\"e0999\"} 1\n") != NULL);
    cr_assert(strstr(BODY, "\nelectd_election_starts_total{election=\"e0500\"} 0\n") != NULL);
    cr_assert(strstr(BODY, "\nelectd_election_restarts_total{election=\"e0000\"} 0\n") != NULL);
    /* Each family's series together, under one TYPE line. */
    const char *fam[] = {"electd_election_is_holder", "electd_election_fencing_token",
                         "electd_election_starts_total", "electd_election_restarts_total"};
    for (size_t k = 0; k < 4; k++) {
        char type[96];
        snprintf(type, sizeof(type), "# TYPE %s ", fam[k]);
        const char *at = strstr(BODY, type);
        cr_assert_not_null(at, "%s", fam[k]);
        cr_assert_null(strstr(at + 1, type));
        int series = 0;
        for (const char *p = strchr(at, '\n') + 1; strncmp(p, fam[k], strlen(fam[k])) == 0;
             p = strchr(p, '\n') + 1)
            series++;
        cr_assert_eq(series, N, "%s: %d series in a row", fam[k], series);
    }
    stop();
}

Test(api_elections, metrics_come_from_the_runtime_where_it_knows_the_election)
{
    int l = start(1, 0);
    fake_item("w.1", self_id(l), 7, "held");
    F.items[0].starts = 4;
    F.items[0].restarts = 1;
    cr_assert_eq(request(l, "GET", "/metrics", NULL, NULL), 200);
    cr_assert(strstr(BODY, "\nelectd_election_is_holder{election=\"w.1\"} 1\n") != NULL, "%s",
              BODY);
    cr_assert(strstr(BODY, "\nelectd_election_fencing_token{election=\"w.1\"} 7\n") != NULL);
    cr_assert(strstr(BODY, "\nelectd_election_starts_total{election=\"w.1\"} 4\n") != NULL);
    cr_assert(strstr(BODY, "\nelectd_election_restarts_total{election=\"w.1\"} 1\n") != NULL);
    stop();
}

/* ---- the long poll ----------------------------------------------------------------------------
 */

Test(api_elections, the_long_poll_answers_when_the_token_moves)
{
    int l = start(1, -1);
    uint64_t t1 = assign(l, "e1", self_id(l));
    char target[128];
    snprintf(target, sizeof(target), "/v1/elections/e1?wait=5s&token=%llu", (unsigned long long)t1);
    struct pending p = send_request(l, "GET", target, NULL, NULL);
    /* Another election's change does not wake it. */
    assign(l, "e2", self_id(l));
    uint64_t t0 = uv_hrtime();
    RUN_UNTIL(uv_hrtime() - t0 > 200000000ull);
    cr_assert_eq(pending_output(&p), 0, "answered before its election changed");
    uint64_t t2 = assign(l, "e1", 0);
    cr_assert_eq(pending_finish(&p), 200, "%s", BODY);
    cJSON *o = body_json();
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "changed")));
    cr_assert_eq(num(o, "fencing_token"), t2);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "holder")));
    cJSON_Delete(o);

    /* What the caller saw is out of date: at once (no lost wake-up between two polls). */
    cr_assert_eq(request(l, "GET", target, NULL, NULL), 200, "%s", BODY);
    cr_assert(strstr(BODY, "\"changed\":true") != NULL, "%s", BODY);
    /* Nothing happens: the wait runs out. */
    snprintf(target, sizeof(target), "/v1/elections/e1?wait=100ms&token=%llu",
             (unsigned long long)t2);
    cr_assert_eq(request(l, "GET", target, NULL, NULL), 200, "%s", BODY);
    cr_assert(strstr(BODY, "\"changed\":false") != NULL, "%s", BODY);
    /* An election that does not exist yet: token 0 waits for it to appear. */
    p = send_request(l, "GET", "/v1/elections/later?wait=5s&token=0", NULL, NULL);
    t0 = uv_hrtime();
    RUN_UNTIL(uv_hrtime() - t0 > 100000000ull);
    cr_assert_eq(pending_output(&p), 0);
    assign(l, "later", self_id(l));
    cr_assert_eq(pending_finish(&p), 200, "%s", BODY);
    cr_assert(strstr(BODY, "\"name\":\"later\"") != NULL, "%s", BODY);
    cr_assert_eq(request(l, "GET", "/v1/elections/e1?wait=soon", NULL, NULL), 400);
    cr_assert_eq(request(l, "GET", "/v1/elections/e1?wait=1s&token=x", NULL, NULL), 400);
    cr_assert_eq(request(l, "GET", "/v1/elections/e1?wait=nan", NULL, NULL), 400);
    cr_assert_eq(request(l, "GET", "/v1/elections/e1?wait=inf", NULL, NULL), 400);
    /* Any number is a wait, capped (fuzz_api: one past what an int64 holds was undefined
     * behaviour, and answered 400); an out-of-date token answers at once. */
    snprintf(target, sizeof(target), "/v1/elections/e1?wait=1e300ms&token=%llu",
             (unsigned long long)t1);
    cr_assert_eq(request(l, "GET", target, NULL, NULL), 200, "%s", BODY);
    cr_assert(strstr(BODY, "\"changed\":true") != NULL, "%s", BODY);
    stop();
}

/* ---- transfer -----------------------------------------------------------------------------------
 */

Test(api_elections, transfer_asks_the_runtime_and_maps_its_errors)
{
    int l = start(1, 0);
    uint64_t t = assign(l, "e1", self_id(l));
    fake_item("e1", self_id(l), t, "handover");
    F.items[0].handover_to = self_id(l);
    cr_assert_eq(request(l, "POST", "/v1/elections/e1/transfer?to=a", NULL, NULL), 202, "%s", BODY);
    cr_assert_str_eq(F.transfer_name, "e1");
    cr_assert_eq(F.transfer_to, self_id(l));
    cJSON *o = body_json();
    cr_assert_str_eq(cJSON_GetObjectItem(o, "name")->valuestring, "e1");
    cr_assert_str_eq(cJSON_GetObjectItem(o, "handover_to")->valuestring, "a");
    cJSON_Delete(o);
    cr_assert_eq(request(l, "POST", "/v1/elections/e1/transfer", NULL, NULL), 202, "%s", BODY);
    cr_assert_eq(F.transfer_to, 0);

    static const struct {
        int rv, status;
        const char *code;
    } map[] = {
        {SIDECAR_NAMED_ENOTFOUND, 404, "not_found"},
        {SIDECAR_NAMED_ENOHOLDER, 409, "no_holder"},
        {SIDECAR_NAMED_ETARGET, 409, "invalid_target"},
        {SIDECAR_NAMED_EBUSY, 409, "transfer_in_progress"},
        {SIDECAR_NAMED_ENOLEADER, 503, "no_leader"},
        {SIDECAR_NAMED_ENOMEM, 503, "busy"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        F.transfer_rv = map[i].rv;
        cr_assert_eq(request(l, "POST", "/v1/elections/e1/transfer", NULL, NULL), map[i].status,
                     "%d: %s", map[i].rv, BODY);
        cr_assert_str_eq(error_code(), map[i].code);
    }
    int before = F.transfers;
    cr_assert_eq(request(l, "POST", "/v1/elections/e1/transfer?to=zz", NULL, NULL), 404);
    cr_assert_str_eq(error_code(), "unknown_member");
    cr_assert_eq(request(l, "POST", "/v1/elections/-/transfer", NULL, NULL), 400);
    cr_assert_eq(request(l, "POST", "/v1/elections/e1/transfer", "Authorization: Bearer x", NULL),
                 401);
    cr_assert_eq(F.transfers, before, "refused requests reached the runtime");
    stop();
}

Test(api_elections, transfer_without_a_runtime_says_so)
{
    int l = start(1, -1);
    assign(l, "e1", self_id(l));
    cr_assert_eq(request(l, "POST", "/v1/elections/e1/transfer", NULL, NULL), 503, "%s", BODY);
    cr_assert_str_eq(error_code(), "no_runtime");
    cr_assert_eq(request(l, "POST", "/v1/elections/nosuch/transfer", NULL, NULL), 404);
    stop();
}

/* ---- /v1/primary?election= ------------------------------------------------------------------- */

Test(api_elections, primary_of_an_election_answers_where_it_is_held)
{
    int l = start(1, 0);
    assign(l, "mine", self_id(l));
    assign(l, "theirs", 4242);
    cr_assert_eq(request(l, "GET", "/v1/primary?election=mine", NULL, NULL), 200, "%s", BODY);
    cr_assert_str_eq(BODY, "primary\n");
    cr_assert_eq(request(l, "GET", "/v1/primary?election=theirs", NULL, NULL), 503);
    cr_assert_str_eq(error_code(), "not_primary");
    cr_assert_eq(request(l, "GET", "/v1/primary?election=nosuch", NULL, NULL), 404);
    cr_assert_eq(request(l, "GET", "/v1/primary?election=%2F", NULL, NULL), 400);
    /* Declared here: primary only while its workload runs here. */
    fake_item("mine", self_id(l), 1, "held");
    F.items[0].declared_here = true;
    F.items[0].local = SIDECAR_WORKLOAD_STARTING;
    cr_assert_eq(request(l, "GET", "/v1/primary?election=mine", NULL, NULL), 503);
    F.items[0].local = SIDECAR_WORKLOAD_PRIMARY;
    cr_assert_eq(request(l, "GET", "/v1/primary?election=mine", NULL, NULL), 200);
    stop();
}
